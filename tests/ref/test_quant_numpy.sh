#!/usr/bin/env bash
# Block layouts against an independent numpy reading (tests/ref/quant_ref.py):
# aistack quantize output for Q8_0, Q4_0, Q4_K and Q6_K must dequantize in
# numpy to exactly aistack's own dequantization, and Q8_0/Q4_0 blocks must be
# byte-identical to a numpy quantizer.
set -euo pipefail
py=${AISTACK_PYTHON:-/usr/bin/python3}
if ! "$py" -c 'import numpy' 2>/dev/null; then
  echo "SKIP: $py has no numpy (Debian python3-numpy)"; exit 77
fi
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
"$py" "$AISTACK_SRC/tests/ref/quant_ref.py" "$AISTACK_BIN/aistack" "$tmp"
