#!/usr/bin/env bash
# bench/gateway/run.sh - aistack-gateway as an OpenAI proxy against nginx as a
# plain reverse proxy, both in front of the same fast mock upstream, same run.
#
# For 1, 64 and 1000 keep-alive connections, wrk POSTs a small chat completion
# (non-streamed) directly to the mock, through nginx (1 worker, upstream
# keepalive) and through the gateway (1 worker thread). Prints requests/s,
# p50/p99, the p50 added over the direct call, and each proxy's RSS after the
# run. Then the streaming case: N_STREAMS concurrent streams of 50 events (one
# per 100 ms) through each proxy, with RSS while they are all open.
#
# Usage: bench/gateway/run.sh [BUILD_DIR]     (default: build)
# Env:   DURATION (5 s), CONNS ("1 64 1000"), N_STREAMS (1000), THREADS (1)
set -eu
BUILD=${1:-${AISTACK_BIN:-build}}
GW="$BUILD/aistack-gateway"
MOCK="$BUILD/mock_upstream"
DURATION=${DURATION:-5}
CONNS=${CONNS:-"1 64 1000"}
N_STREAMS=${N_STREAMS:-1000}
THREADS=${THREADS:-1}
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

# the upstream: fast non-streamed answers; streamed ones 50 events 100 ms apart
"$MOCK" --port 0 --port-file "$TMP/mock.port" --threads "$THREADS" --chunks 50 \
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
"$GW" --config "$TMP/gw.yaml" 2>"$TMP/gw.log" &
GW_PID=$!
PIDS+=($GW_PID)
wait_file "$TMP/gw.port"
GW_PORT=$(cat "$TMP/gw.port")

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
"$NGINX" -c "$TMP/ngx/nginx.conf" -p "$TMP/ngx" 2>/dev/null &
NGX_PID=$!
PIDS+=($NGX_PID)
for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$NGX_PORT/v1/models" && break; sleep 0.05; done

cat >"$TMP/post.lua" <<'EOF'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = os.getenv("BODY")
EOF
# run_wrk PORT CONNS MODEL -> "rps p50_us p99_us non2xx"
run_wrk() {
    local t=2
    [ "$2" -lt 2 ] && t=1
    BODY="{\"model\":\"$3\",\"messages\":[{\"role\":\"user\",\"content\":\"hello\"}]}" \
        wrk -t$t -c"$2" -d"${DURATION}s" --latency --timeout 10s -s "$TMP/post.lua" \
        "http://127.0.0.1:$1/v1/chat/completions" >"$TMP/wrk" 2>&1 || true
    awk '
    function us(v) {
        if (v ~ /us$/) return v + 0; if (v ~ /ms$/) return v * 1000;
        if (v ~ /s$/) return v * 1000000; return v
    }
    /Requests\/sec/ { rps = $2 }
    $1 == "50%" { p50 = us($2) }
    $1 == "99%" { p99 = us($2) }
    /Non-2xx/ { bad = $4 }
    END { printf "%d %.0f %.0f %d\n", rps, p50, p99, bad }' "$TMP/wrk"
}

echo "# gateway vs nginx (1 worker each) in front of mock_upstream; wrk ${DURATION}s, $(nproc) CPUs"
echo
echo "| conns | target  | req/s | p50 µs | p99 µs | added p50 µs | RSS MB | non-2xx |"
echo "|------:|---------|------:|-------:|-------:|-------------:|-------:|--------:|"
for c in $CONNS; do
    read -r d_rps d_p50 d_p99 d_bad <<<"$(run_wrk "$UP_PORT" "$c" ok)"
    echo "| $c | direct | $d_rps | $d_p50 | $d_p99 | - | - | $d_bad |"
    read -r rps p50 p99 bad <<<"$(run_wrk "$NGX_PORT" "$c" ok)"
    echo "| $c | nginx | $rps | $p50 | $p99 | $((p50 - d_p50)) | $(($(rss_kb $NGX_PID) / 1024)) | $bad |"
    read -r rps p50 p99 bad <<<"$(run_wrk "$GW_PORT" "$c" bench)"
    echo "| $c | gateway | $rps | $p50 | $p99 | $((p50 - d_p50)) | $(($(rss_kb $GW_PID) / 1024)) | $bad |"
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
echo
echo "| streams | target | completed | first byte p50 ms | p99 ms | RSS MB with all open |"
echo "|--------:|--------|----------:|------------------:|-------:|---------------------:|"
for target in nginx gateway; do
    if [ $target = nginx ]; then port=$NGX_PORT pid=$NGX_PID model=ok; else port=$GW_PORT pid=$GW_PID model=bench; fi
    "$PY" "$TMP/streams.py" "$port" "$model" "$N_STREAMS" >"$TMP/streams.out" &
    sp=$!
    sleep 3
    rss=$(($(rss_kb $pid) / 1024))
    wait $sp
    read -r okn p50 p99 <"$TMP/streams.out"
    echo "| $N_STREAMS | $target | $okn | $p50 | $p99 | $rss |"
done
