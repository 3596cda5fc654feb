#!/usr/bin/env bash
# A/B of kernel builds in cache: runs `bench_kernels -c -t 1 -T TYPE` from each given
# binary in turn, ROUNDS times (alternated, so the machine's phases hit all alike), and
# prints the best and the median GOP/s at B = 4, 8, 64 and 512 per binary.
#
#   bench/engine/ab_kernels.sh TYPE ROUNDS BENCH_KERNELS...
#   e.g. bench/engine/ab_kernels.sh q4_k 5 /tmp/old/bench_kernels build/bench_kernels
set -euo pipefail
[ $# -ge 3 ] || { sed -n 2,7p "$0" >&2; exit 2; }
type=$1 rounds=$2
shift 2
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for _ in $(seq 1 "$rounds"); do
  for b in "$@"; do echo "$b $("$b" -c -t 1 -T "$type" | tail -1)"; done
done > "$out"
/usr/bin/python3 - "$out" "$@" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    f = line.split()
    rows.setdefault(f[0], []).append([float(x) for x in f[2:]])
cols = {"B=4": 2, "B=8": 4, "B=64": 7, "B=512": 8}  # after the type: B=1 GB/s, B=2, 4, 6, 8, 16, 32, 64, 512
for b in sys.argv[2:]:
    v = rows[b]
    print(b, "  ".join(f"{c} best {max(x[i] for x in v):.0f} median {statistics.median(x[i] for x in v):.0f}"
                        for c, i in cols.items()))
PY
