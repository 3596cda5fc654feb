#!/usr/bin/env bash
# bench/engine: the engine on synthetic models of real shapes, llama-bench style.
# For each shape, weight type and thread count: prompt processing (pp, one
# forward of a P-token prompt) in tokens/s and GFLOP/s, generation (tg, N
# tokens one at a time) in tokens/s and as a fraction of the memory bandwidth
# measured in the same process (weight bytes per token / time per token /
# bandwidth), aggregate tokens/s with 4 and 8 sequences decoding together and
# their speed-up over one, peak RSS against file + KV cache, time to load and
# to the first token. Best of R repeats (median in parentheses).
#
# usage: bench/engine/run.sh [BUILD_DIR]
#   env: SHAPES="llama3.2-1b qwen2.5-0.5b" TYPES="f16 q8_0 q4_0 q4_k_m" THREADS="1 2"
#        P=512 N=128 R=3 MODELS=DIR (synthetic models are cached there)
#        WEIGHTS=auto|mmap|copy (where the weights live; see bench_engine --mmap/--copy)
#        NOPACK=1 (matrices stay in GGUF form; default: packed where the kernels have a
#        packed form, the weights column then says how many matrices were)
set -euo pipefail
build=${1:-build}
shapes=${SHAPES:-"llama3.2-1b qwen2.5-0.5b"}
types=${TYPES:-"f16 q8_0 q4_0 q4_k_m"}
threads=${THREADS:-"1 2"}
P=${P:-512}; N=${N:-128}; R=${R:-3}
models=${MODELS:-$build/bench-models}
weights=${WEIGHTS:-auto}
case $weights in auto) wflag= ;; mmap) wflag=--mmap ;; copy) wflag=--copy ;;
  *) echo "bench/engine: WEIGHTS must be auto, mmap or copy" >&2; exit 1 ;; esac
[ "${NOPACK:-0}" = 1 ] && wflag="$wflag --no-pack"
mkdir -p "$models"
[ -x "$build/bench_engine" ] || { echo "bench/engine: build first ($build/bench_engine missing)" >&2; exit 1; }

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)," \
     "flags: $(grep -m1 flags /proc/cpuinfo | tr ' ' '\n' | grep -E '^(avx2|fma|f16c|avx512f|avx512bw|avx512_vnni|avx512_bf16)$' | xargs)"
echo "date: $(date -u '+%F %H:%M UTC'), load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "pp$P, tg$N, best of $R (median)"
echo
echo "| shape | type | file MB | thr | pp t/s | pp GFLOP/s | tg t/s | tg % of membw (GB/s) | 4 seqs t/s (x tg) | 8 seqs t/s (x tg) | peak RSS MB (file + KV) | load / first token s (weights) |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
for shape in $shapes; do
  for type in $types; do
    m="$models/$shape-$type.gguf"
    if [ ! -f "$m" ]; then
      echo "synthesizing $m ..." >&2
      "$build/aistack" model synth --shape "$shape" --type "$type" -o "$m.tmp" >/dev/null 2>&1 ||
        { echo "bench/engine: model synth --shape $shape --type $type failed" >&2; exit 1; }
      mv "$m.tmp" "$m"
    fi
    mb=$(( $(stat -c %s "$m") / 1000000 ))
    for t in $threads; do
      j=$("$build/bench_engine" -m "$m" -t "$t" -p "$P" -n "$N" -r "$R" -s 4,8 $wflag --json)
      /usr/bin/python3 - "$shape" "$type" "$mb" "$j" <<'EOF'
import json, sys
shape, typ, mb, j = sys.argv[1], sys.argv[2], int(sys.argv[3]), json.loads(sys.argv[4])
print(f"| {shape} | {typ} | {mb} | {j['threads']} "
      f"| {j['pp_tps']:.1f} ({j['pp_tps_med']:.1f}) | {j['pp_gflops']:.0f} "
      f"| {j['tg_tps']:.1f} ({j['tg_tps_med']:.1f}) | {100 * j['tg_bw_frac']:.0f}% ({j['membw_gbs']:.1f}) "
      f"| {j['agg4_tps']:.1f} ({j['agg4_x']:.2f}x) | {j['agg8_tps']:.1f} ({j['agg8_x']:.2f}x) "
      f"| {j['peak_rss_mb']:.0f} ({mb + j['kv_mb']:.0f}) | {j['load_s']:.2f} / {j['first_token_s']:.2f} ({j['weights']}{', %d packed' % j['packed'] if j['packed'] else ''}) |")
EOF
    done
  done
done
