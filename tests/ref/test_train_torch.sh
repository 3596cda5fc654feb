#!/usr/bin/env bash
# Trainer parity with an independent PyTorch model (float64): loss and every
# gradient after one micro-batch, then losses over ten AdamW steps, within 1e-4
# relative, for untied and tied output embeddings.
set -euo pipefail
py=${AISTACK_PYTHON:-/usr/bin/python3}
if ! "$py" -c 'import torch, numpy' 2>/dev/null; then
  echo "SKIP: $py has no torch/numpy (Debian python3-torch python3-numpy)"; exit 77
fi
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
for tied in 0 1; do
  mkdir -p "$tmp/$tied"
  "$AISTACK_BIN/train_dump" "$tmp/$tied" $tied 10
  echo "== tied=$tied"
  "$py" "$AISTACK_SRC/tests/ref/ref_train.py" "$tmp/$tied"
done
