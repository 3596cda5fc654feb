#!/usr/bin/env bash
# `aistack generate` as other tools use it: only generated text on stdout,
# speeds on stderr, greedy and seeded runs reproducible, -n respected, bad
# arguments exit 2, bad models exit 1 with a message. Uses a synthetic model
# (`aistack model synth --shape tiny`).
set -euo pipefail
A="$AISTACK_BIN/aistack"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
"$A" model synth --shape tiny --type q8_0 -o "$tmp/m.gguf" --quiet

fail() { echo "FAIL: $*"; exit 1; }

a=$("$A" generate -m "$tmp/m.gguf" -p "hello world" -n 12 --temp 0 2>"$tmp/err")
b=$("$A" generate -m "$tmp/m.gguf" -p "hello world" -n 12 --temp 0 --threads 1 2>/dev/null)
[ -n "$a" ] || fail "greedy output empty"
[ "$a" = "$b" ] || fail "greedy differs between 2 threads and 1: '$a' vs '$b'"
grep -q "^prompt: [0-9]* tokens in .* tokens/s)" "$tmp/err" || fail "no prompt speed on stderr"
grep -q "^generation: 12 tokens in .* tokens/s)" "$tmp/err" || fail "no generation speed on stderr"
case "$a" in *tokens/s*) fail "speed leaked into stdout" ;; esac
grep -q "^load: .* s (kernels [a-z0-9]*)" "$tmp/err" || fail "no load line with the kernel level on stderr"

# AISTACK_ISA caps the kernel level; the answer does not depend on it beyond rounding,
# and a bad value is a warning, not a failure
sc=$(AISTACK_ISA=scalar "$A" generate -m "$tmp/m.gguf" -p "hello world" -n 4 --temp 0 2>"$tmp/err")
grep -q "(kernels scalar)" "$tmp/err" || fail "AISTACK_ISA=scalar not applied: $(cat "$tmp/err")"
[ -n "$sc" ] || fail "scalar kernels: empty output"
AISTACK_ISA=bogus "$A" generate -m "$tmp/m.gguf" -p "x" -n 1 --temp 0 >/dev/null 2>"$tmp/err" ||
    fail "a bad AISTACK_ISA should not fail the run"
grep -q "AISTACK_ISA is not scalar, avx2 or avx512" "$tmp/err" || fail "no warning for a bad AISTACK_ISA"
AISTACK_PREFETCH=2 "$A" generate -m "$tmp/m.gguf" -p "x" -n 1 --temp 0 >/dev/null 2>"$tmp/err" ||
    fail "a bad AISTACK_PREFETCH should not fail the run"
[ "$(grep -c "AISTACK_PREFETCH is not 0 or 1" "$tmp/err")" -eq 1 ] || fail "want one warning for a bad AISTACK_PREFETCH"

s1=$("$A" generate -m "$tmp/m.gguf" -p "hello" -n 16 --temp 1.5 --seed 42 2>/dev/null)
s2=$("$A" generate -m "$tmp/m.gguf" -p "hello" -n 16 --temp 1.5 --seed 42 2>/dev/null)
[ "$s1" = "$s2" ] || fail "same seed, different text"

set +e
"$A" generate -p "x" >/dev/null 2>&1; [ $? -eq 2 ] || fail "missing -m should exit 2"
"$A" generate -m "$tmp/m.gguf" -p "x" --temp abc >/dev/null 2>&1; [ $? -eq 2 ] || fail "bad --temp should exit 2"
"$A" generate -m "$tmp/m.gguf" -p "x" -n -3 >/dev/null 2>&1; [ $? -eq 2 ] || fail "bad -n should exit 2"
"$A" generate -m "$tmp/nope.gguf" -p "x" 2>"$tmp/err2" >/dev/null; rc=$?
[ $rc -eq 1 ] || fail "missing model should exit 1 (got $rc)"
grep -q "nope.gguf" "$tmp/err2" || fail "error should name the file"
head -c 100 "$tmp/m.gguf" > "$tmp/trunc.gguf"
"$A" generate -m "$tmp/trunc.gguf" -p "x" >/dev/null 2>&1; [ $? -eq 1 ] || fail "truncated model should exit 1"
n0=$("$A" generate -m "$tmp/m.gguf" -p "x" -n 0 2>/dev/null | wc -c)
[ "$n0" -eq 0 ] || fail "-n 0 should print nothing"
set -e
echo "ok"
