#!/usr/bin/env bash
# bench/gateway/run.sh - aistack-gateway as an OpenAI proxy against nginx as a
# plain reverse proxy, both in front of the same fast mock upstream, same run.
#
# For 1, 64 and 1000 keep-alive connections, wrk POSTs a small chat completion
# (non-streamed) directly to the mock, through nginx (1 worker, upstream
# keepalive) and through the gateway (1 worker thread), REPEATS times in turn.
# Prints the median requests/s, p50/p99, the p50 added over the direct call,
# the proxy's CPU time per request (utime+stime from /proc over the run), its RSS
# after the runs, and the gateway/nginx throughput ratio (min and median over
# the repeats, each ratio from back-to-back runs). wrk at N connections is a
# closed loop that saturates the proxy, so its p50 is about N / throughput; the
# added latency at moderate load is measured by a paced run: PACED_CONNS
# connections each sending one request every PACED_MS ms. Then the streaming
# case: N_STREAMS concurrent streams of 50 events (one per 100 ms) through each
# proxy, restarted first so that the RSS sampled while all streams are open is
# theirs alone (the RSS after the 1000-connection runs is in the first table).
#
# Usage: bench/gateway/run.sh [BUILD_DIR]     (default: build)
# Env:   DURATION (5 s), CONNS ("1 64 1000"), REPEATS (3), N_STREAMS (1000),
#        THREADS (1), PACED_CONNS (32), PACED_MS (10),
#        PIN (unset; 1: each proxy on CPU 1, the mock and the load generators on CPU 0, so
#        that the proxy's latency is not the scheduler's, as when it has its own cores)
set -eu
BUILD=${1:-${AISTACK_BIN:-build}}
GW="$BUILD/aistack-gateway"
MOCK="$BUILD/mock_upstream"
DURATION=${DURATION:-5}
CONNS=${CONNS:-"1 64 1000"}
N_STREAMS=${N_STREAMS:-1000}
THREADS=${THREADS:-1}
REPEATS=${REPEATS:-3}
PACED_CONNS=${PACED_CONNS:-32}
PACED_MS=${PACED_MS:-10}
if [ -n "${PIN:-}" ]; then PROXY_CPU="taskset -c 1"; LOAD_CPU="taskset -c 0"; else PROXY_CPU=""; LOAD_CPU=""; fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
PY=${AISTACK_PYTHON:-/usr/bin/python3}
[ -x "$GW" ] && [ -x "$MOCK" ] || { echo "build aistack-gateway and mock_upstream in $BUILD"; exit 1; }
[ -x "$NGINX" ] || { echo "nginx not found (Debian package nginx-light)"; exit 1; }
command -v wrk >/dev/null || { echo "wrk not found (Debian package wrk)"; exit 1; }
ulimit -n 65536 2>/dev/null || ulimit -n 16384 2>/dev/null || true

TMP=$(mktemp -d /tmp/aistack-bench-gw.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT
wait_file() { for _ in $(seq 1 200); do [ -s "$1" ] && return 0; sleep 0.05; done; return 1; }
free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rss_kb() { # total RSS of a process and its children
    local t=0 p
    for p in $1 $(pgrep -P "$1" || true); do
        t=$((t + $(awk '/^VmRSS/ {print $2}' "/proc/$p/status")))
    done
    echo $t
}
cpu_ticks() { # utime + stime of a process and its children (nginx's worker)
    local t=0 p
    for p in $1 $(pgrep -P "$1" || true); do
        t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat")))
    done
    echo $t
}
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
minimum() { tr ' ' '\n' | grep -v '^$' | sort -g | head -1; }

# the upstream: fast non-streamed answers; streamed ones 50 events 100 ms apart
$LOAD_CPU "$MOCK" --port 0 --port-file "$TMP/mock.port" --threads "$THREADS" --chunks 50 \
    --interval-ms 100 --log-level error 2>/dev/null &
PIDS+=($!)
wait_file "$TMP/mock.port"
UP_PORT=$(cat "$TMP/mock.port")

cat >"$TMP/gw.yaml" <<EOF
server: {port: 0, port_file: $TMP/gw.port, threads: $THREADS, max_connections: 20000}
log: {level: error}
model_list:
  - model_name: bench
    base_url: http://127.0.0.1:$UP_PORT/v1
    model: ok
EOF
start_gw() {
    rm -f "$TMP/gw.port"
    $PROXY_CPU "$GW" --config "$TMP/gw.yaml" 2>>"$TMP/gw.log" &
    GW_PID=$!
    PIDS+=($GW_PID)
    wait_file "$TMP/gw.port"
    GW_PORT=$(cat "$TMP/gw.port")
}
start_gw

NGX_PORT=$(free_port)
mkdir -p "$TMP/ngx"
cat >"$TMP/ngx/nginx.conf" <<EOF
worker_processes $THREADS;
daemon off;
pid $TMP/ngx/nginx.pid;
error_log $TMP/ngx/error.log error;
worker_rlimit_nofile 65536;
events { worker_connections 20000; }
http {
  access_log off;
  client_body_temp_path $TMP/ngx/body;
  proxy_temp_path $TMP/ngx/proxy;
  fastcgi_temp_path $TMP/ngx/fastcgi;
  uwsgi_temp_path $TMP/ngx/uwsgi;
  scgi_temp_path $TMP/ngx/scgi;
  keepalive_requests 10000000;
  upstream mock { server 127.0.0.1:$UP_PORT; keepalive 1024; }
  server {
    listen 127.0.0.1:$NGX_PORT reuseport;
    location / {
      proxy_pass http://mock;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
    }
  }
}
EOF
start_ngx() {
    $PROXY_CPU "$NGINX" -c "$TMP/ngx/nginx.conf" -p "$TMP/ngx" 2>/dev/null &
    NGX_PID=$!
    PIDS+=($NGX_PID)
    for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$NGX_PORT/v1/models" && break; sleep 0.05; done
}
start_ngx

cat >"$TMP/post.lua" <<'EOF'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = os.getenv("BODY")
local pace = tonumber(os.getenv("PACE_MS") or "0")
if pace > 0 then
  function delay() return pace end
end
EOF
# run_wrk PORT CONNS MODEL [PID] -> "rps p50_us p99_us non2xx cpu_us_per_request"
run_wrk() {
    local t=2 c0=0 c1=0
    [ "$2" -lt 2 ] && t=1
    [ -n "${4:-}" ] && c0=$(cpu_ticks "$4")
    BODY="{\"model\":\"$3\",\"messages\":[{\"role\":\"user\",\"content\":\"hello\"}]}" \
        $LOAD_CPU wrk -t$t -c"$2" -d"${DURATION}s" --latency --timeout 10s -s "$TMP/post.lua" \
        "http://127.0.0.1:$1/v1/chat/completions" >"$TMP/wrk" 2>&1 || true
    [ -n "${4:-}" ] && c1=$(cpu_ticks "$4")
    awk -v ticks=$((c1 - c0)) -v hz="$(getconf CLK_TCK)" '
    function us(v) {
        if (v ~ /us$/) return v + 0; if (v ~ /ms$/) return v * 1000;
        if (v ~ /s$/) return v * 1000000; return v
    }
    /requests in/ { n = $1 }
    /Requests\/sec/ { rps = $2 }
    $1 == "50%" { p50 = us($2) }
    $1 == "99%" { p99 = us($2) }
    /Non-2xx/ { bad = $4 }
    END { printf "%d %.0f %.0f %d %.1f\n", rps, p50, p99, bad, n ? ticks * 1e6 / hz / n : 0 }' "$TMP/wrk"
}

echo "# gateway vs nginx ($THREADS worker each) in front of mock_upstream; wrk ${DURATION}s x $REPEATS, $(nproc) CPUs"
echo
echo "| conns | target  | req/s | p50 µs | p99 µs | added p50 µs | CPU µs/req | RSS MB | non-2xx |"
echo "|------:|---------|------:|-------:|-------:|-------------:|-----------:|-------:|--------:|"
RATIOS=""
for c in $CONNS; do
    declare -A R=()
    for _ in $(seq 1 "$REPEATS"); do
        read -r a b d e f <<<"$(run_wrk "$UP_PORT" "$c" ok)"
        R[d_rps]+=" $a" R[d_p50]+=" $b" R[d_p99]+=" $d" R[d_bad]+=" $e"
        read -r a b d e f <<<"$(run_wrk "$NGX_PORT" "$c" ok "$NGX_PID")"
        R[n_rps]+=" $a" R[n_p50]+=" $b" R[n_p99]+=" $d" R[n_bad]+=" $e" R[n_cpu]+=" $f"
        n_rps=$a
        read -r a b d e f <<<"$(run_wrk "$GW_PORT" "$c" bench "$GW_PID")"
        R[g_rps]+=" $a" R[g_p50]+=" $b" R[g_p99]+=" $d" R[g_bad]+=" $e" R[g_cpu]+=" $f"
        R[ratio]+=" $(awk -v g="$a" -v n="$n_rps" 'BEGIN {printf "%.2f", n ? g / n : 0}')"
    done
    d50=$(median <<<"${R[d_p50]}")
    echo "| $c | direct | $(median <<<"${R[d_rps]}") | $d50 | $(median <<<"${R[d_p99]}") | - | - | - | $(median <<<"${R[d_bad]}") |"
    p50=$(median <<<"${R[n_p50]}")
    echo "| $c | nginx | $(median <<<"${R[n_rps]}") | $p50 | $(median <<<"${R[n_p99]}") | $((p50 - d50)) | $(median <<<"${R[n_cpu]}") | $(($(rss_kb $NGX_PID) / 1024)) | $(median <<<"${R[n_bad]}") |"
    p50=$(median <<<"${R[g_p50]}")
    echo "| $c | gateway | $(median <<<"${R[g_rps]}") | $p50 | $(median <<<"${R[g_p99]}") | $((p50 - d50)) | $(median <<<"${R[g_cpu]}") | $(($(rss_kb $GW_PID) / 1024)) | $(median <<<"${R[g_bad]}") |"
    RATIOS+="$c conns: gateway/nginx req/s min $(minimum <<<"${R[ratio]}") median $(median <<<"${R[ratio]}") (each:${R[ratio]})"$'\n'
    unset R
done
echo
printf "%s" "$RATIOS"

# moderate load: paced requests, far below either proxy's capacity
echo
echo "| paced: $PACED_CONNS conns, 1 req / $PACED_MS ms each | req/s | p50 µs | p99 µs | added p50 µs | added p99 µs |"
echo "|---------|------:|-------:|-------:|-------------:|-------------:|"
declare -A P=()
for _ in $(seq 1 "$REPEATS"); do
    for tg in direct nginx gateway; do
        case $tg in
        direct) port=$UP_PORT model=ok ;;
        nginx) port=$NGX_PORT model=ok ;;
        gateway) port=$GW_PORT model=bench ;;
        esac
        read -r a b d e f <<<"$(PACE_MS=$PACED_MS run_wrk "$port" "$PACED_CONNS" "$model")"
        P[${tg}_rps]+=" $a" P[${tg}_p50]+=" $b" P[${tg}_p99]+=" $d"
    done
done
d50=$(median <<<"${P[direct_p50]}") d99=$(median <<<"${P[direct_p99]}")
for tg in direct nginx gateway; do
    p50=$(median <<<"${P[${tg}_p50]}") p99=$(median <<<"${P[${tg}_p99]}")
    if [ $tg = direct ]; then add50=- add99=-; else add50=$((p50 - d50)) add99=$((p99 - d99)); fi
    echo "| $tg | $(median <<<"${P[${tg}_rps]}") | $p50 | $p99 | $add50 | $add99 |"
done

# streaming: N_STREAMS concurrent 5 s streams; RSS sampled while all are open
cat >"$TMP/streams.py" <<'EOF'
import asyncio, json, sys, time
port, model, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
body = json.dumps({"model": model, "stream": True, "messages": []}).encode()
req = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
       b"Content-Length: %d\r\n\r\n" % len(body)) + body
async def one(stats):
    t0 = time.time()
    r, w = await asyncio.open_connection("127.0.0.1", port)
    w.write(req); await w.drain()
    first = None; events = 0; buf = b""
    while True:
        d = await r.read(65536)
        if not d: break
        if first is None: first = time.time() - t0
        buf += d
        if b"data: [DONE]" in buf: break
    events = buf.count(b"\ndata: ") + buf.count(b"\r\ndata: ") * 0
    stats.append((first or 0, b"data: [DONE]" in buf))
    w.close()
async def main():
    stats = []
    await asyncio.gather(*(one(stats) for _ in range(n)))
    ok = sum(1 for s in stats if s[1])
    ttfb = sorted(s[0] for s in stats)
    print("%d %.1f %.1f" % (ok, ttfb[len(ttfb) // 2] * 1000, ttfb[int(len(ttfb) * 0.99)] * 1000))
asyncio.run(main())
EOF
# fresh proxies: the RSS below is what the open streams take, not what is left from above
kill "$GW_PID" "$NGX_PID" 2>/dev/null || true
wait "$GW_PID" "$NGX_PID" 2>/dev/null || true
start_gw
start_ngx
echo
echo "| streams | target | completed | first byte p50 ms | p99 ms | RSS MB idle | RSS MB with all open |"
echo "|--------:|--------|----------:|------------------:|-------:|------------:|---------------------:|"
for target in nginx gateway; do
    if [ $target = nginx ]; then port=$NGX_PORT pid=$NGX_PID model=ok; else port=$GW_PORT pid=$GW_PID model=bench; fi
    idle=$(($(rss_kb $pid) / 1024))
    $LOAD_CPU "$PY" "$TMP/streams.py" "$port" "$model" "$N_STREAMS" >"$TMP/streams.out" &
    sp=$!
    sleep 3
    rss=$(($(rss_kb $pid) / 1024))
    wait $sp
    read -r okn p50 p99 <"$TMP/streams.out"
    echo "| $N_STREAMS | $target | $okn | $p50 | $p99 | $idle | $rss |"
done
