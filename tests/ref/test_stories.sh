#!/usr/bin/env bash
# The real stories260K llama2.c checkpoint (../shared/testdata/models): convert
# it with `aistack convert --llama2c`, check that greedy `aistack generate` from
# BOS tells the known story, that the engine's greedy tokens equal the PyTorch
# reference's (ref_llama.py, reading the converted GGUF), and that the logits
# along that sequence match within 1e-4 relative.
set -euo pipefail
py=${AISTACK_PYTHON:-/usr/bin/python3}
models="$AISTACK_SHARED/testdata/models"
if [ ! -f "$models/stories260K.bin" ] || [ ! -f "$models/tok512.bin" ]; then
  echo "SKIP: $models/stories260K.bin / tok512.bin absent"; exit 77
fi
if ! "$py" -c 'import torch, numpy' 2>/dev/null; then
  echo "SKIP: $py has no torch/numpy"; exit 77
fi
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
"$AISTACK_BIN/aistack" convert --llama2c "$models/stories260K.bin" \
  --tokenizer "$models/tok512.bin" -o "$tmp/s.gguf"

out=$("$AISTACK_BIN/aistack" generate -m "$tmp/s.gguf" -p "" -n 40 --temp 0 2>"$tmp/err")
want="Once upon a time, there was a little girl named Lily. She loved to play outside in the park."
case "$out" in
  "$want"*) echo "generate: ok: $out" ;;
  *) echo "generate: got '$out'"; echo "expected it to start with '$want'"; exit 1 ;;
esac
grep -q "generation: 40 tokens" "$tmp/err" || { echo "missing speed line:"; cat "$tmp/err"; exit 1; }
# a prompt continues without a stray space, and the same seed gives the same text
a=$("$AISTACK_BIN/aistack" generate -m "$tmp/s.gguf" -p "Once upon a time" -n 30 --temp 0.9 --seed 7 2>/dev/null)
b=$("$AISTACK_BIN/aistack" generate -m "$tmp/s.gguf" -p "Once upon a time" -n 30 --temp 0.9 --seed 7 2>/dev/null)
[ "$a" = "$b" ] || { echo "seeded generation not reproducible: '$a' vs '$b'"; exit 1; }
case "$a" in
  " "[!\ ]*|","*) echo "seeded: ok: $a" ;;
  *) echo "continuation should start with one space or a comma: '$a'"; exit 1 ;;
esac

n=120
eng=$("$AISTACK_BIN/dump_logits" -m "$tmp/s.gguf" --greedy $n 1)
ref=$("$py" "$AISTACK_SRC/tests/ref/ref_llama.py" greedy "$tmp/s.gguf" --tokens 1 -n $n)
if [ "$eng" != "$ref" ]; then
  echo "greedy tokens differ"; echo "engine:    $eng"; echo "reference: $ref"; exit 1
fi
echo "greedy: $n tokens equal the reference"

toks="1,$(echo "$eng" | tr ' ' ',')"
"$AISTACK_BIN/dump_logits" -m "$tmp/s.gguf" --kv-f32 -o "$tmp/e.f32" "$toks:1"
"$py" "$AISTACK_SRC/tests/ref/ref_llama.py" logits "$tmp/s.gguf" --tokens "$toks" -o "$tmp/r.f32"
"$py" - "$tmp/e.f32" "$tmp/r.f32" <<'PY'
import sys
import numpy as np
e, r = (np.fromfile(p, dtype=np.float32) for p in sys.argv[1:3])
err = float(np.abs(e - r).max() / np.abs(r).max())
print("logits along the greedy sequence: rel err %.2e (tol 1e-4)" % err)
sys.exit(0 if e.shape == r.shape and err <= 1e-4 else 1)
PY
