#!/usr/bin/env bash
# `aistack convert --hf` (safetensors + config.json + tokenizer.json -> GGUF)
# against a PyTorch forward pass with Hugging Face's conventions; see check_hf.py.
set -euo pipefail
py=${AISTACK_PYTHON:-/usr/bin/python3}
if ! "$py" -c 'import torch, numpy' 2>/dev/null; then
  echo "SKIP: $py has no torch/numpy (Debian python3-torch python3-numpy)"; exit 77
fi
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
"$py" "$AISTACK_SRC/tests/ref/check_hf.py" "$AISTACK_BIN" "$tmp"
