#!/usr/bin/env bash
# bench/infer: aistack-infer under 1, 4, 8 and 16 concurrent streaming clients on
# a synthetic model of a real shape (default llama3.2-1b, q4_0): aggregate
# generation tokens/s, time to first token and inter-token latency (p50/p99),
# and the speed-up over one stream.
# usage: bench/infer/run.sh [BUILD_DIR]   env: SHAPE TYPE TOKENS CLIENTS THREADS
set -euo pipefail
build=${1:-build}
shape=${SHAPE:-llama3.2-1b}; type=${TYPE:-q4_0}; tokens=${TOKENS:-64}
clients=${CLIENTS:-"1 4 8 16"}; threads=${THREADS:-$(nproc)}
py=/usr/bin/python3
here=$(cd "$(dirname "$0")" && pwd)
model=${MODEL:-$build/bench-$shape-$type.gguf}
[ -f "$model" ] || "$build/aistack" model synth --shape "$shape" --type "$type" -o "$model"
port=$((30000 + RANDOM % 10000))
"$build/aistack-infer" --model "$model" --model-id bench --port $port --threads "$threads" \
  --batch-max-running 16 --batch-max-queue 256 --ctx-size 512 --log-level warn &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null || true' EXIT
for _ in $(seq 1 600); do curl -sf "localhost:$port/health/ready" >/dev/null && break; sleep 0.2; done
# warm-up (not measured): the first request after loading pays the page faults of the
# weights (mmap), which would otherwise land in the single-stream row only
"$py" "$here/client.py" "http://127.0.0.1:$port" bench 1 1 8 >/dev/null
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(date -u +%F)"
echo "model: $shape $type, $tokens tokens per request, $threads threads"
echo "| clients | tokens/s | x one stream | TTFT p50 / p99 ms | inter-token p50 / p99 ms |"
echo "|---|---|---|---|---|"
base=""
for c in $clients; do
  r=$("$py" "$here/client.py" "http://127.0.0.1:$port" bench "$c" 2 "$tokens")
  read -r tps t50 t99 i50 i99 <<< "$("$py" -c 'import json,sys; d=json.loads(sys.argv[1]); print(d["tok_s"], d["ttft_p50_ms"], d["ttft_p99_ms"], d["itl_p50_ms"], d["itl_p99_ms"])' "$r")"
  [ -n "$base" ] || base=$tps
  echo "| $c | $tps | $("$py" -c "print(round($tps/$base, 2))") | $t50 / $t99 | $i50 / $i99 |"
done
