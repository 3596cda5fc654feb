#!/usr/bin/env bash
# test_http_server.sh - the HTTP server (src/core) against real clients on loopback.
#
# Starts tests/integration/testserver and checks: routing and the OpenAI error
# body, 413 for oversized bodies, slow headers closed by the header timeout,
# a connection cap that refuses the excess and keeps serving, SSE correctness,
# a client leaving mid-stream, 1024 concurrent keep-alive connections under wrk,
# 10k SSE events per second without memory growth, and SIGTERM draining an
# active stream before exiting 0. Shorter runs under AddressSanitizer.
set -u
BIN=${AISTACK_BIN:-build}
PY=${AISTACK_PYTHON:-/usr/bin/python3}
TS="$BIN/testserver"
[ -x "$TS" ] || { echo "SKIP: $TS not built"; exit 77; }
command -v curl >/dev/null || { echo "SKIP: curl missing"; exit 77; }
ASAN=${AISTACK_SANITIZE:-0}
[ "$ASAN" = 1 ] && { WRK_S=2; SSE_N=10000; } || { WRK_S=3; SSE_N=40000; }

TMP=$(mktemp -d /tmp/aistack-http-test.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT
FAILS=0
ok() { echo "ok   $*"; }
fail() { echo "FAIL $*"; FAILS=$((FAILS + 1)); }
check() { # check "description" command...
    local d=$1; shift
    if "$@"; then ok "$d"; else fail "$d"; fi
}

# start NAME ARGS...: starts a testserver, sets PORT and PID
start() {
    local name=$1; shift
    rm -f "$TMP/$name.port"
    "$TS" --port 0 --port-file "$TMP/$name.port" --log-level warn "$@" 2>"$TMP/$name.log" &
    PID=$!
    PIDS+=("$PID")
    for _ in $(seq 1 100); do [ -s "$TMP/$name.port" ] && break; sleep 0.05; done
    PORT=$(cat "$TMP/$name.port" 2>/dev/null)
    [ -n "$PORT" ] || { echo "testserver $name did not start"; cat "$TMP/$name.log"; exit 1; }
}

start main --threads 2 --max-body 65536 --header-timeout-ms 1000 --idle-timeout-ms 5000 \
    --max-conns 4096 --drain-timeout-ms 10000
MAIN_PID=$PID
MAIN_PORT=$PORT
URL="http://127.0.0.1:$PORT"

# ---- routing and error bodies -------------------------------------------------
check "GET /hello" test "$(curl -s "$URL/hello")" = '{"message":"Hello, World!"}'
check "X-Request-Id echoed" bash -c "curl -si -H 'X-Request-Id: it-42' '$URL/hello' | grep -qi '^X-Request-Id: it-42'"
check "X-Request-Id generated" bash -c "curl -si '$URL/hello' | grep -qiE '^X-Request-Id: [0-9a-f]{32}'"
check "POST /echo" test "$(curl -s -d 'ping' "$URL/echo")" = "ping"
check "path parameter" test "$(curl -s "$URL/items/abc")" = '{"id":"abc"}'
shape() { # shape STATUS TYPE: the OpenAI error body, status and type
    "$PY" -c '
import json, sys
b = json.load(sys.stdin)
e = b["error"]
assert set(b) == {"error"}, b
assert set(e) == {"message", "type", "param", "code"}, e
assert isinstance(e["message"], str) and e["message"], e
assert e["type"] == sys.argv[1], e
' "$1"
}
check "404 status" test "$(curl -s -o "$TMP/404" -w '%{http_code}' "$URL/nope")" = 404
check "404 body shape" shape not_found_error <"$TMP/404"
check "405 status" test "$(curl -s -D "$TMP/405.h" -o "$TMP/405" -w '%{http_code}' -X DELETE "$URL/hello")" = 405
check "405 body shape" shape invalid_request_error <"$TMP/405"
check "405 Allow header" grep -qi '^Allow: GET' "$TMP/405.h"
check "/health/live" test "$(curl -s -o /dev/null -w '%{http_code}' "$URL/health/live")" = 200
check "/health/ready" test "$(curl -s -o /dev/null -w '%{http_code}' "$URL/health/ready")" = 200
check "/metrics" bash -c "curl -s '$URL/metrics' | grep -q '^http_requests_total{code=\"200\"}'"

# ---- limits -------------------------------------------------------------------
head -c 200000 /dev/zero | tr '\0' a >"$TMP/big"
check "oversized body -> 413" test "$(curl -s -o "$TMP/413" -w '%{http_code}' --data-binary @"$TMP/big" "$URL/echo")" = 413
check "413 body shape" shape invalid_request_error <"$TMP/413"
check "oversized chunked body -> 413" test "$(curl -s -o /dev/null -w '%{http_code}' -H 'Transfer-Encoding: chunked' --data-binary @"$TMP/big" "$URL/echo")" = 413

slowloris() { # one header byte every 300 ms; the 1 s header timeout must close it
    "$PY" - "$PORT" <<'EOF'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.settimeout(0.3)
req = b"GET /hello HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100 + b"\r\n\r\n"
t0 = time.time()
for b in req:
    try:
        s.send(bytes([b]))
        if s.recv(1) == b"":
            break
    except socket.timeout:
        continue
    except OSError:
        break
el = time.time() - t0
sys.exit(0 if 0.8 <= el <= 3.5 else print("closed after", el) or 1)
EOF
}
check "slow headers closed by the header timeout" slowloris
check "server still serves after slowloris" test "$(curl -s "$URL/hello")" = '{"message":"Hello, World!"}'

start capped --threads 1 --max-conns 50
CAP_PORT=$PORT
too_many() { # 300 connections against a cap of 50
    "$PY" - "$CAP_PORT" <<'EOF'
import socket, sys, time
port = int(sys.argv[1])
socks, refused = [], 0
for _ in range(300):
    try:
        socks.append(socket.create_connection(("127.0.0.1", port), timeout=2))
    except OSError:
        refused += 1
for s in socks:
    try:
        s.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
    except OSError:
        pass
time.sleep(1.0)
served = closed = 0
for s in socks:
    s.setblocking(False)
    try:
        got = s.recv(4096)
        if b"Hello" in got:
            served += 1
        elif got == b"":
            closed += 1
    except BlockingIOError:
        pass
    except OSError:
        closed += 1
for s in socks:
    s.close()
# the excess waits in the listen queue (MHD stops accepting at the cap) or is
# refused/closed; never more than the cap are served at once
print("     refused", refused, "closed", closed, "served", served, "waiting",
      len(socks) - served - closed)
sys.exit(0 if 40 <= served <= 50 else 1)
EOF
}
check "connections over the cap wait or are refused" too_many
sleep 0.3
check "capped server still serves" test "$(curl -s --max-time 5 "http://127.0.0.1:$CAP_PORT/hello")" = '{"message":"Hello, World!"}'
kill -TERM "$PID"; wait "$PID" 2>/dev/null
PORT=$MAIN_PORT

# ---- streaming ----------------------------------------------------------------
sse_ok() { # sse_ok N < body: N data events in order, then the done event
    "$PY" -c '
import json, sys
n = int(sys.argv[1])
events = sys.stdin.read().split("\n\n")
assert events[-1] == "", "stream must end with a blank line"
events = events[:-1]
assert len(events) == n + 1, (len(events), n)
for i, e in enumerate(events[:-1]):
    assert e.startswith("data: "), e
    assert json.loads(e[6:]) == {"i": i, "n": n}, e
assert events[-1] == "event: done\ndata: [DONE]", events[-1]
' "$1"
}
curl -sN "$URL/sse?n=500" >"$TMP/sse500"
check "SSE stream of 500 events" sse_ok 500 <"$TMP/sse500"
check "SSE headers" bash -c "curl -sN -D - -o /dev/null '$URL/sse?n=1' | grep -qi '^Content-Type: text/event-stream'"

gone_before=$(curl -s "$URL/stats" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["gone"])')
hangup() { # read the start of a slow stream, then hang up
    "$PY" - "$PORT" <<'EOF'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(b"GET /sse?n=100000&interval_ms=20 HTTP/1.1\r\nHost: x\r\n\r\n")
got = b""
while got.count(b"data: ") < 3:
    got += s.recv(4096)
s.close()
EOF
}
hangup
gone_seen() {
    for _ in $(seq 1 50); do
        g=$(curl -s "$URL/stats" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["gone"])')
        [ "$g" -gt "$gone_before" ] && return 0
        sleep 0.1
    done
    return 1
}
check "client disconnect mid-stream reaches the producer" gone_seen

# ---- load -------------------------------------------------------------------------
if command -v wrk >/dev/null; then
    wrk -t2 -c1024 -d${WRK_S}s --timeout 5s "$URL/hello" >"$TMP/wrk" 2>&1
    keepalive_ok() {
        grep -q "Requests/sec" "$TMP/wrk" && ! grep -q "Socket errors" "$TMP/wrk" &&
            ! grep -q "Non-2xx" "$TMP/wrk"
    }
    check "1024 keep-alive connections: $(grep Requests/sec "$TMP/wrk" | tr -s ' ')" keepalive_ok
    keepalive_ok || cat "$TMP/wrk"
else
    echo "skip 1024 connections (no wrk)"
fi

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$MAIN_PID/status"; }
sse_rate() { # N events over one stream; prints events/s
    "$PY" - "$PORT" "$1" <<'EOF'
import socket, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
s = socket.create_connection(("127.0.0.1", port), timeout=10)
t0 = time.time()
# HTTP/1.0: no chunked framing, the body ends when the server closes
s.sendall(b"GET /sse?n=%d HTTP/1.0\r\nHost: x\r\n\r\n" % n)
data = bytearray()
while True:
    b = s.recv(1 << 16)
    if not b:
        break
    data += b
el = time.time() - t0
body = bytes(data).split(b"\r\n\r\n", 1)[-1]
count = body.count(b"data: {\"i\":")
ok = count == n and body.endswith(b"event: done\ndata: [DONE]\n\n")
print(int(n / el) if ok else -count)
EOF
}
rate1=$(sse_rate "$SSE_N")
rss1=$(rss_kb)
rate2=$(sse_rate "$SSE_N")
rate3=$(sse_rate "$SSE_N")
rss3=$(rss_kb)
echo "     SSE events/s: $rate1 $rate2 $rate3; RSS ${rss1} kB -> ${rss3} kB"
check "10k SSE events/s" test "$rate2" -ge 10000 -a "$rate3" -ge 10000 -a "$rate1" -gt 0
check "no RSS growth over SSE runs (< 4 MB)" test $((rss3 - rss1)) -lt 4096

# ---- SIGTERM drains an active stream -----------------------------------------------
curl -sN "$URL/sse?n=20&interval_ms=100" >"$TMP/drain.out" &
CURL_PID=$!
sleep 0.5
kill -TERM "$MAIN_PID"
sleep 0.2
check "no new connections while draining" bash -c "! curl -s --max-time 2 '$URL/hello' >/dev/null"
wait "$CURL_PID"
check "stream completes during the drain" sse_ok 20 <"$TMP/drain.out"
wait "$MAIN_PID"
rc=$?
check "exit status 0 after SIGTERM (got $rc)" test "$rc" = 0

[ "$FAILS" = 0 ] && echo "all HTTP server checks passed" || echo "$FAILS check(s) failed"
[ "$FAILS" = 0 ]
