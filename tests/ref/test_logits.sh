#!/usr/bin/env bash
# Engine logits against the independent PyTorch reference (ref_llama.py):
# llama and qwen2 shapes with GQA, tied and separate outputs, llama3 and linear
# RoPE scaling; F32 (1e-4 relative), F16/BF16 (1e-2), Q8_0/Q4_0 and the
# K-quants written by `aistack quantize` (3e-2, and exact-ish with the kernels'
# 8-bit activations emulated); prompts of 1, 7 and 300 tokens plus decode
# steps, chunked prefill, and batches of sequences that must equal their
# single-sequence runs. See check_logits.py.
set -euo pipefail
py=${AISTACK_PYTHON:-/usr/bin/python3}
if ! "$py" -c 'import torch, numpy' 2>/dev/null; then
  echo "SKIP: $py has no torch/numpy (Debian python3-torch python3-numpy)"; exit 77
fi
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
quick=()
if [ "${AISTACK_SANITIZE:-0}" = 1 ]; then quick=(--quick); fi
"$py" "$AISTACK_SRC/tests/ref/check_logits.py" "$AISTACK_BIN" "$tmp" "${quick[@]}"
