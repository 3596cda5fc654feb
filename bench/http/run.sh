#!/usr/bin/env bash
# bench/http/run.sh - hello-world JSON: our HTTP server (testserver) against nginx.
#
# Both serve the same 27 bytes ({"message":"Hello, World!"}, application/json)
# on loopback with 1 and 2 workers; wrk drives 1, 64 and 1024 keep-alive
# connections. Runs alternate between the two servers so that load from other
# processes hits both alike. Prints requests/s (median and min of REPEATS runs),
# p50/p99 latency (medians), the ratio ours/nginx of the medians, and the
# server's CPU time per request (user + system, from /proc; medians), which
# stays meaningful when other load on the machine makes req/s noisy.
#
# Usage: bench/http/run.sh [BUILD_DIR]     (default: build)
# Env:   DURATION (5 s), REPEATS (3), CONNS ("1 64 1024"), WORKERS ("1 2"),
#        LOGS=1 to keep per-request logs on both sides (ours to /dev/null),
#        VS=mhd to compare with bench_mhd_internal (bare libmicrohttpd in its own
#        thread pool) instead of nginx: the design choice of docs/adr/0001.
set -eu
BUILD=${1:-${AISTACK_BIN:-build}}
TS="$BUILD/testserver"
DURATION=${DURATION:-5}
REPEATS=${REPEATS:-3}
CONNS=${CONNS:-"1 64 1024"}
WORKERS=${WORKERS:-"1 2"}
LOGS=${LOGS:-0}
VS=${VS:-nginx}
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$TS" ] || { echo "build $TS first (cmake --build $BUILD --target testserver)"; exit 1; }
[ "$VS" = mhd ] || [ -x "$NGINX" ] || { echo "nginx not found (Debian package nginx-light)"; exit 1; }
[ "$VS" != mhd ] || [ -x "$BUILD/bench_mhd_internal" ] || { echo "build bench_mhd_internal first"; exit 1; }
command -v wrk >/dev/null || { echo "wrk not found (Debian package wrk)"; exit 1; }

TMP=$(mktemp -d /tmp/aistack-bench-http.XXXXXX)
SRV_PID=
cleanup() {
    [ -n "$SRV_PID" ] && kill "$SRV_PID" 2>/dev/null && wait "$SRV_PID" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT
BODY='{"message":"Hello, World!"}'

free_port() { "${AISTACK_PYTHON:-python3}" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start_ours() { # workers
    local port
    port=$(free_port)
    local lvl=warn
    [ "$LOGS" = 1 ] && lvl=info
    "$TS" --port "$port" --threads "$1" --max-conns 8192 --log-level $lvl 2>/dev/null &
    SRV_PID=$!
    PORT=$port
}

start_other() { # workers
    if [ "$VS" = mhd ]; then
        PORT=$(free_port)
        "$BUILD/bench_mhd_internal" --port "$PORT" --threads "$1" &
        SRV_PID=$!
    else
        start_nginx "$1"
    fi
}

start_nginx() { # workers
    local port
    port=$(free_port)
    mkdir -p "$TMP/ngx"
    local log="access_log off;"
    [ "$LOGS" = 1 ] && log="access_log /dev/null;"
    cat >"$TMP/ngx/nginx.conf" <<EOF
worker_processes $1;
daemon off;
pid $TMP/ngx/nginx.pid;
error_log $TMP/ngx/error.log warn;
worker_rlimit_nofile 16384;
events { worker_connections 8192; }
http {
  $log
  client_body_temp_path $TMP/ngx/body;
  proxy_temp_path $TMP/ngx/proxy;
  fastcgi_temp_path $TMP/ngx/fastcgi;
  uwsgi_temp_path $TMP/ngx/uwsgi;
  scgi_temp_path $TMP/ngx/scgi;
  keepalive_requests 10000000;
  server {
    listen 127.0.0.1:$port reuseport;
    location = /hello { default_type application/json; return 200 '$BODY'; }
  }
}
EOF
    "$NGINX" -c "$TMP/ngx/nginx.conf" -p "$TMP/ngx" 2>/dev/null &
    SRV_PID=$!
    PORT=$port
}

stop_server() {
    kill "$SRV_PID" 2>/dev/null || true
    wait "$SRV_PID" 2>/dev/null || true
    SRV_PID=
}

wait_up() {
    for _ in $(seq 1 100); do
        [ "$(curl -s "http://127.0.0.1:$PORT/hello" 2>/dev/null)" = "$BODY" ] && return 0
        sleep 0.05
    done
    echo "server on port $PORT did not come up"
    exit 1
}

HZ=$(getconf CLK_TCK)
# CPU ticks (user + system) of the server: its process and, for nginx, its workers
cpu_ticks() {
    local t=0 p
    for p in $SRV_PID $(pgrep -P "$SRV_PID" || true); do
        t=$((t + $(sed 's/^.*) //' "/proc/$p/stat" | awk '{print $12 + $13}')))
    done
    echo $t
}

# run_wrk CONNS -> "rps p50_us p99_us errors cpu_us_per_request"
run_wrk() {
    local c=$1 t=2 t0 t1
    [ "$c" -lt 2 ] && t=1
    t0=$(cpu_ticks)
    wrk -t$t -c"$c" -d"${DURATION}s" --latency --timeout 5s "http://127.0.0.1:$PORT/hello" >"$TMP/wrk" 2>&1
    awk '
    function us(v) {
        if (v ~ /us$/) return v + 0; if (v ~ /ms$/) return v * 1000;
        if (v ~ /s$/) return v * 1000000; return v
    }
    /Requests\/sec/ { rps = $2 }
    $1 == "50%" { p50 = us($2) }
    $1 == "99%" { p99 = us($2) }
    /Socket errors|Non-2xx/ { err = 1 }
    / requests in / { n = $1 }
    END { printf "%d %.0f %.0f %d %.2f\n", rps, p50, p99, err, n ? ticks * 1e6 / hz / n : 0 }' \
        ticks=$(($(cpu_ticks) - t0)) hz="$HZ" "$TMP/wrk"
}

median() { sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
minimum() { sort -n | head -1; }

echo "# HTTP hello-world benchmark: $(date -u '+%Y-%m-%d %H:%M UTC'), nproc=$(nproc), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "# wrk ${DURATION}s x ${REPEATS} per cell, keep-alive, loopback; logs: $([ "$LOGS" = 1 ] && echo on || echo off)"
echo
echo "| workers | conns | ours req/s (median / min) | $VS req/s (median / min) | ours/$VS | ours p50 / p99 | $VS p50 / p99 | server CPU us/req ours / $VS |"
echo "|---|---|---|---|---|---|---|---|"
for w in $WORKERS; do
    for c in $CONNS; do
        : >"$TMP/ours" && : >"$TMP/nginx"
        for _ in $(seq 1 "$REPEATS"); do
            start_ours "$w" && wait_up && run_wrk "$c" >>"$TMP/ours" && stop_server
            start_other "$w" && wait_up && run_wrk "$c" >>"$TMP/nginx" && stop_server
        done
        o_med=$(cut -d' ' -f1 "$TMP/ours" | median)
        o_min=$(cut -d' ' -f1 "$TMP/ours" | minimum)
        n_med=$(cut -d' ' -f1 "$TMP/nginx" | median)
        n_min=$(cut -d' ' -f1 "$TMP/nginx" | minimum)
        o_p50=$(cut -d' ' -f2 "$TMP/ours" | median)
        o_p99=$(cut -d' ' -f3 "$TMP/ours" | median)
        n_p50=$(cut -d' ' -f2 "$TMP/nginx" | median)
        n_p99=$(cut -d' ' -f3 "$TMP/nginx" | median)
        errs=$(awk '{s += $4} END {print s}' "$TMP/ours" "$TMP/nginx")
        o_cpu=$(cut -d' ' -f5 "$TMP/ours" | median)
        n_cpu=$(cut -d' ' -f5 "$TMP/nginx" | median)
        ratio=$(awk -v a="$o_med" -v b="$n_med" 'BEGIN {printf "%.2f", b ? a / b : 0}')
        note=""
        [ "$errs" != 0 ] && note=" (errors in $errs run(s))"
        echo "| $w | $c | $o_med / $o_min | $n_med / $n_min | **${ratio}x**$note | ${o_p50} / ${o_p99} us | ${n_p50} / ${n_p99} us | $o_cpu / $n_cpu |"
    done
done
