#!/usr/bin/env bash
# aistack model synth / quantize / info end to end: every file type on the tiny
# shape, quantize round trips keep the tensor set, hostile files are refused
# with a message, and (outside the sanitizer build) a real-shape synth stays
# within a small memory budget while streaming ~0.5 GB.
set -euo pipefail
A="$AISTACK_BIN/aistack"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

for t in f32 f16 bf16 q8_0 q4_0 q4_1 q5_0 q5_1 q4_k_s q4_k_m q5_k_s q5_k_m q6_k; do
  "$A" model synth --shape tiny --type $t --seed 3 --quiet -o "$tmp/tiny-$t.gguf"
  "$A" info "$tmp/tiny-$t.gguf" > "$tmp/info-$t.txt"
  grep -q '^tensors: 21$' "$tmp/info-$t.txt" || fail "$t: tensor count"
done
grep -q 'general.file_type *u32 *15' "$tmp/info-q4_k_m.txt" || fail "q4_k_m file type"
grep -Eq 'blk.0.attn_q.weight +q4_0' "$tmp/info-q4_0.txt" || fail "q4_0 tensor type"
grep -Eq 'blk.0.attn_norm.weight +f32' "$tmp/info-q4_0.txt" || fail "norms must stay f32"

# quantize: f32 -> q4_k_m equals a direct synth at q4_k_m (same weights, same rules)
"$A" quantize "$tmp/tiny-f32.gguf" "$tmp/rq.gguf" q4_k_m --threads 2 > "$tmp/q.log"
grep -q 'file type 15' "$tmp/q.log" || fail "quantize summary"
[ "$(grep -c '^\[' "$tmp/q.log")" = 21 ] || fail "one progress line per tensor"
cmp -s "$tmp/rq.gguf" "$tmp/tiny-q4_k_m.gguf" || fail "quantize f32->q4_k_m differs from synth q4_k_m"
# requantizing and dequantizing work and keep the tensor set
"$A" quantize "$tmp/rq.gguf" "$tmp/back.gguf" f32 > /dev/null
"$A" info "$tmp/back.gguf" | grep -q '^tensors: 21$' || fail "round trip tensor count"
"$A" quantize "$tmp/rq.gguf" "$tmp/q8.gguf" q8_0 --threads 3 > /dev/null

# bad input: usage errors exit 2, bad files exit 1 with a message, no output left behind
set +e
"$A" quantize "$tmp/tiny-f32.gguf" "$tmp/x.gguf" q7_7 2> "$tmp/err"; rc=$?
[ $rc = 2 ] && grep -q "unknown type" "$tmp/err" || fail "unknown type: rc=$rc"
head -c 3000 "$tmp/tiny-f32.gguf" > "$tmp/trunc.gguf"
"$A" info "$tmp/trunc.gguf" 2> "$tmp/err"; rc=$?
[ $rc = 1 ] && grep -q "trunc.gguf" "$tmp/err" || fail "truncated file: rc=$rc $(cat "$tmp/err")"
"$A" quantize "$tmp/trunc.gguf" "$tmp/x.gguf" q4_0 2> /dev/null; rc=$?
[ $rc = 1 ] && [ ! -e "$tmp/x.gguf" ] && [ ! -e "$tmp/x.gguf.tmp" ] || fail "quantize of bad file"
"$A" model synth --shape nope --type q4_0 -o "$tmp/x.gguf" 2> /dev/null; rc=$?
[ $rc = 2 ] || fail "unknown shape: rc=$rc"
set -e

if [ "${AISTACK_SANITIZE:-0}" = 1 ]; then
  echo "sanitizer build: skipping the real-shape synth"; echo PASS; exit 0
fi
# qwen2.5-0.5b at q4_0: ~0.5 GB streamed; peak RSS must stay far below the file size
/usr/bin/time -f '%M %e' -o "$tmp/time" \
  "$A" model synth --shape qwen2.5-0.5b --type q4_0 --threads 2 --quiet -o "$tmp/qw.gguf"
read -r rss_kb secs < "$tmp/time"
echo "qwen2.5-0.5b q4_0: peak RSS $((rss_kb / 1024)) MiB, ${secs} s, $(stat -c %s "$tmp/qw.gguf") bytes"
[ "$rss_kb" -lt 200000 ] || fail "synth peak RSS ${rss_kb} kB"
"$A" info "$tmp/qw.gguf" > "$tmp/qw.txt"
grep -Eq 'token_embd.weight +q8_0 +896 x 151936' "$tmp/qw.txt" || fail "qwen tied embedding type/shape"
grep -Eq 'blk.23.attn_k.bias +f32 +128' "$tmp/qw.txt" || fail "qwen k bias"
grep -q 'qwen2.attention.head_count_kv *u32 *2' "$tmp/qw.txt" || fail "qwen kv heads"
echo PASS
