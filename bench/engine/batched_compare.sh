#!/bin/sh
# Several sequences decoding together, our engine against llama.cpp's llama-batched-bench on the
# same GGUF files, runs alternated so that load from other users of the machine hits both alike.
#
#   bench/engine/batched_compare.sh [-r ROUNDS] [-t THREADS] [-n TOKENS] [-s SEQS] [-B BUILD] FILE.gguf...
#
# Per round and file: ours (BUILD/bench_engine -s SEQS: one sequence, then SEQS sequences each
# decoding TOKENS tokens, one forward pass per step for all), then llama-batched-bench
# (-npl 1,SEQS -ntg TOKENS, each sequence after a 16-token prompt of its own). One JSON line per
# measurement goes to stdout, a median table to stderr at the end: generation tokens/s of one
# sequence and of SEQS together (all sequences' tokens), the speed-up over one, and ours / llama.cpp.
# LLAMA_BATCHED_BENCH names the binary (default: the one 'llamacpp.sh --llama-batched-bench' built,
# which it builds if missing). The AVX2 levels of both engines on an AVX-512 machine:
#   AISTACK_ISA=avx2 LLAMA_BENCH_ISA=avx2 bench/engine/batched_compare.sh FILE.gguf...
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
rounds=3 threads=2 tokens=64 seqs=8 build="$root/build"
while [ $# -gt 0 ]; do
    case "$1" in
        -r) rounds=$2; shift 2 ;;
        -t) threads=$2; shift 2 ;;
        -n) tokens=$2; shift 2 ;;
        -s) seqs=$2; shift 2 ;;
        -B) build=$2; shift 2 ;;
        -h|--help) sed -n 2,14p "$0"; exit 0 ;;
        *) break ;;
    esac
done
usage="usage: $0 [-r ROUNDS] [-t THREADS] [-n TOKENS] [-s SEQS] [-B BUILD] FILE.gguf..."
[ $# -gt 0 ] || { echo "$usage" >&2; exit 2; }
[ -x "$build/bench_engine" ] || { echo "batched_compare.sh: no $build/bench_engine (-B BUILD)" >&2; exit 2; }
if [ -z "${LLAMA_BATCHED_BENCH:-}" ]; then
    sub=.llama-bench-build
    [ "${LLAMA_BENCH_ISA:-native}" = avx2 ] && sub=.llama-bench-build-avx2
    LLAMA_BATCHED_BENCH="$here/llamacpp/node_modules/$sub/build/bin/llama-batched-bench"
    [ -x "$LLAMA_BATCHED_BENCH" ] || "$here/llamacpp.sh" --llama-batched-bench --help >/dev/null 2>&1 ||
        { echo "batched_compare.sh: cannot build llama-batched-bench (bench/engine/llamacpp.sh --llama-batched-bench)" >&2; exit 3; }
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
load1() { cut -d' ' -f1 /proc/loadavg; }

for r in $(seq 1 "$rounds"); do
    for f in "$@"; do
        name=$(basename "$f")
        j=$("$build/bench_engine" -m "$f" -t "$threads" -p 16 -n "$tokens" -r 1 -s "$seqs" --no-membw --json)
        /usr/bin/python3 -c 'import json, sys
j = json.loads(sys.argv[1]); s = sys.argv[4]
print(json.dumps({"engine": "aistack", "file": sys.argv[2], "round": int(sys.argv[3]), "seqs": int(s),
                  "tg1_tps": j["tg_tps"], "agg_tps": j["agg%s_tps" % s], "load1": float(sys.argv[5])}))' \
            "$j" "$name" "$r" "$seqs" "$(load1)" | tee -a "$tmp/rows"
        "$LLAMA_BATCHED_BENCH" -m "$f" -c $(((16 + tokens) * seqs + 64)) -b 512 -ub 512 -npp 16 \
            -ntg "$tokens" -npl "1,$seqs" -t "$threads" --output-format jsonl 2>/dev/null >"$tmp/ll"
        /usr/bin/python3 -c 'import json, sys
rows = {}
for line in open(sys.argv[1]):
    if line.startswith("{"):
        d = json.loads(line); rows[d["pl"]] = d["speed_tg"]
s = int(sys.argv[4])
print(json.dumps({"engine": "llama.cpp", "file": sys.argv[2], "round": int(sys.argv[3]), "seqs": s,
                  "tg1_tps": rows[1], "agg_tps": rows[s], "load1": float(sys.argv[5])}))' \
            "$tmp/ll" "$name" "$r" "$seqs" "$(load1)" | tee -a "$tmp/rows"
    done
done

/usr/bin/python3 - "$tmp/rows" "$seqs" "$threads" "$tokens" >&2 <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
s = sys.argv[2]
print(f"\nmedians, {sys.argv[3]} threads, {sys.argv[4]} tokens per sequence, {s} sequences together")
print(f"| file | ours 1 seq t/s | ours {s} seqs t/s (x one) | llama.cpp 1 seq | llama.cpp {s} seqs (x one) | ours / llama.cpp, {s} seqs |")
print("|---|---|---|---|---|---|")
for f in dict.fromkeys(r["file"] for r in rows):
    m = {}
    for e in ("aistack", "llama.cpp"):
        sel = [r for r in rows if r["file"] == f and r["engine"] == e]
        m[e] = (statistics.median(r["tg1_tps"] for r in sel), statistics.median(r["agg_tps"] for r in sel))
    a, l = m["aistack"], m["llama.cpp"]
    print(f"| {f} | {a[0]:.1f} | {a[1]:.1f} ({a[1] / a[0]:.2f}x) | {l[0]:.1f} | {l[1]:.1f} ({l[1] / l[0]:.2f}x) | {a[1] / l[1]:.2f}x |")
EOF
