#!/usr/bin/env bash
# test_gateway.sh - aistack-gateway against mock upstreams on loopback: proxying,
# streaming pass-through, every resilience rule, the override headers, metrics,
# SIGHUP reload with a request in flight, a bad config, and the SIGTERM drain.
# Keys, limits and budgets are in test_gateway_keys.sh.
set -u
BIN=${AISTACK_BIN:-build}
PY=${AISTACK_PYTHON:-/usr/bin/python3}
GW="$BIN/aistack-gateway"
MOCK="$BIN/mock_upstream"
[ -x "$GW" ] && [ -x "$MOCK" ] || { echo "SKIP: gateway or mock_upstream not built"; exit 77; }
command -v curl >/dev/null || { echo "SKIP: curl missing"; exit 77; }

TMP=$(mktemp -d /tmp/aistack-gw-test.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    [ "${KEEP:-0}" = 1 ] || rm -rf "$TMP"
}
trap cleanup EXIT
FAILS=0
ok() { echo "ok   $*"; }
fail() { echo "FAIL $*"; FAILS=$((FAILS + 1)); }
check() { local d=$1; shift; if "$@"; then ok "$d"; else fail "$d"; fi; }

wait_file() { for _ in $(seq 1 200); do [ -s "$1" ] && return 0; sleep 0.05; done; return 1; }
# mock NAME ARGS...: starts a mock upstream; sets its port in var PORT_<NAME>
mock() {
    local n=$1; shift
    "$MOCK" --port 0 --port-file "$TMP/$n.port" --name "$n" --log-level warn "$@" \
        2>"$TMP/$n.log" &
    PIDS+=($!)
    wait_file "$TMP/$n.port" || { echo "mock $n did not start"; exit 1; }
    eval "PORT_$n=$(cat "$TMP/$n.port")"
}
mock A
mock B
mock C
mock F --fail-first 2
mock S --interval-ms 100 --chunks 10
mock K --expect-key sk-upstream-secret-123

dep() { # dep MODEL_NAME MOCK UPSTREAM_MODEL [extra yaml lines...]
    local m=$1 mk=$2 up=$3; shift 3
    local port; eval "port=\$PORT_$mk"
    echo "  - model_name: $m"
    echo "    base_url: http://127.0.0.1:$port/v1"
    echo "    model: $up"
    for l in "$@"; do echo "    $l"; done
}
write_config() {
    {
        echo "server: {port: 0, port_file: $TMP/gw.port, threads: 2, drain_timeout: 10s}"
        echo "router_settings:"
        echo "  num_retries: 2"
        echo "  retry_base: 50ms"
        echo "  retry_max: 3s"
        echo "  allowed_fails: 3"
        echo "  cooldown: 2s"
        echo "  fallbacks: {primary: [backup]}"
        echo "  health_check_interval: 200ms"
        echo "  dns_refresh: 300ms"
        echo "model_list:"
        dep m A ok
        dep keyed K ok "api_key_env: GW_TEST_UPSTREAM_KEY"
        dep keyfile K ok "api_key_file: $TMP/upstream.key"
        dep w A ok "name: w-a" "weight: 9"
        dep w B ok "name: w-b" "weight: 1"
        dep lat A slow "name: lat-slow"
        dep lat B ok "name: lat-fast"
        dep fb500 A fail "priority: 0"
        dep fb500 B ok "priority: 1"
        dep fb429 A 429 "priority: 0"
        dep fb429 B ok "priority: 1"
        dep only429 A 429
        dep hang A hang "timeout: 300ms" "priority: 0"
        dep hang B ok "priority: 1"
        dep ctx A ctx "priority: 0"
        dep ctx B ok "priority: 1"
        dep cut A cut
        dep retry F ok
        dep slow S ok
        dep two A ok "name: two-a"
        dep two B ok "name: two-b"
        dep primary A fail
        dep backup B ok
        dep cool C fail "priority: 0"
        dep cool B ok "priority: 1"
        echo "  - model_name: disc"
        echo "    base_url: http://localhost:$PORT_B/v1"
        echo "    model: ok"
        echo "    dns_discovery: true"
        echo "  - model_name: dead"
        echo "    base_url: http://127.0.0.1:1/v1"
        echo "    model: ok"
        for l in "$@"; do echo "$l"; done
    } >"$TMP/gw.yaml"
}
printf 'sk-upstream-secret-123\n' >"$TMP/upstream.key"
write_config
export GW_TEST_UPSTREAM_KEY=sk-upstream-secret-123
"$GW" --config "$TMP/gw.yaml" 2>"$TMP/gw.log" &
GW_PID=$!
PIDS+=($GW_PID)
wait_file "$TMP/gw.port" || { echo "gateway did not start"; cat "$TMP/gw.log"; exit 1; }
URL="http://127.0.0.1:$(cat "$TMP/gw.port")"

chat() { # chat MODEL [curl args...] -> body on stdout, status in $TMP/status
    local m=$1; shift
    curl -s -o "$TMP/body" -w '%{http_code}' -D "$TMP/headers" "$@" "$URL/v1/chat/completions" \
        -H 'Content-Type: application/json' \
        -d "{\"model\":\"$m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}" >"$TMP/status"
    cat "$TMP/body"
}
status() { cat "$TMP/status"; }
header() { grep -i "^$1:" "$TMP/headers" | head -1 | cut -d' ' -f2- | tr -d '\r'; }
stats() { local port; eval "port=\$PORT_$1"; curl -s "http://127.0.0.1:$port/stats" |
    "$PY" -c 'import json,sys; print(json.load(sys.stdin)["requests"])'; }
jget() { "$PY" -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

# ---- proxying -------------------------------------------------------------------
out=$(chat m -H 'X-Request-Id: gw-test-1')
check "non-streamed answer relayed" test "$(status)" = 200 -a \
    "$(echo "$out" | jget 'd["choices"][0]["message"]["content"]')" = "hello from A"
last=$(curl -s "http://127.0.0.1:$PORT_A/last")
check "model rewritten to the upstream name" test \
    "$(echo "$last" | jget 'json.loads(d["body"])["model"]')" = ok
check "X-Request-Id forwarded upstream" test "$(echo "$last" | jget 'd["request_id"]')" = gw-test-1
check "X-Request-Id returned to the client" test "$(header X-Request-Id)" = gw-test-1
chat keyed >/dev/null
check "upstream key from api_key_env sent" test "$(status)" = 200
chat keyfile >/dev/null
check "upstream key from api_key_file sent" test "$(status)" = 200
check "upstream key never logged" bash -c "! grep -q sk-upstream-secret '$TMP/gw.log'"
models=$(curl -s "$URL/v1/models" | jget '",".join(sorted(m["id"] for m in d["data"]))')
check "/v1/models lists the public names" test "$models" = \
    "backup,cool,ctx,cut,dead,disc,fb429,fb500,hang,keyed,keyfile,lat,m,only429,primary,retry,slow,two,w"
chat disc >/dev/null
check "dns_discovery: one deployment per address of the host" test "$(status)" = 200 -a \
    "$(header x-aistack-deployment)" = disc/0@127.0.0.1
chat nosuch >/dev/null
check "unknown model -> 404 model_not_found" test "$(status)" = 404 -a \
    "$(jget 'd["error"]["code"]' <"$TMP/body")" = model_not_found
curl -s -o "$TMP/body" -w '%{http_code}' "$URL/v1/chat/completions" -d '{"model":' >"$TMP/status"
check "malformed JSON -> 400" test "$(status)" = 400
curl -s -o "$TMP/body" -w '%{http_code}' "$URL/v1/embeddings" -d '{"model":"m","input":"x"}' \
    >"$TMP/status"
check "/v1/embeddings forwarded" test "$(status)" = 200

# ---- streaming ------------------------------------------------------------------
cat >"$TMP/stream.py" <<'EOF'
import http.client, json, sys, time
port, model, usage = int(sys.argv[1]), sys.argv[2], sys.argv[3] == "1"
body = {"model": model, "stream": True, "messages": [{"role": "user", "content": "hi"}]}
if usage:
    body["stream_options"] = {"include_usage": True}
c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
t0 = time.time()
c.request("POST", "/v1/chat/completions", json.dumps(body), {"Content-Type": "application/json"})
r = c.getresponse()
first = None; events = []
for line in r:
    line = line.decode().rstrip("\r\n")
    if line.startswith("data: "):
        if first is None: first = time.time() - t0
        events.append(line[6:])
total = time.time() - t0
done = events[-1:] == ["[DONE]"]
err = any('"error"' in e for e in events)
use = [e for e in events if e != "[DONE]" and json.loads(e).get("usage")]
content = "".join(json.loads(e)["choices"][0]["delta"].get("content", "")
                  for e in events if e != "[DONE]" and '"error"' not in e and json.loads(e)["choices"])
print(json.dumps({"status": r.status, "first": first, "total": total, "n": len(events),
                  "done": done, "error": err, "usage": len(use), "content": content}))
EOF
st=$("$PY" "$TMP/stream.py" "${URL##*:}" slow 0)
check "stream: events pass through as they arrive" bash -c "echo '$st' | \"$PY\" -c '
import json,sys; d=json.load(sys.stdin); sys.exit(not (d[\"first\"] < 0.5 and d[\"total\"] > 0.8 and d[\"done\"]))'"
check "stream: usage chunk stripped when not asked for" test "$(echo "$st" | jget 'd["usage"]')" = 0
st=$("$PY" "$TMP/stream.py" "${URL##*:}" m 1)
check "stream: usage chunk kept when asked for" test "$(echo "$st" | jget 'd["usage"]')" = 1
check "stream: gateway asks upstream for usage" test "$(curl -s "http://127.0.0.1:$PORT_A/last" |
    jget 'json.loads(d["body"])["stream_options"]["include_usage"]')" = True
st=$("$PY" "$TMP/stream.py" "${URL##*:}" cut 0)
check "stream cut midway -> SSE error event, no [DONE]" test \
    "$(echo "$st" | jget 'd["error"] and not d["done"]')" = True
st=$("$PY" "$TMP/stream.py" "${URL##*:}" fb500 0)
check "stream: upstream failure before the first byte is invisible" test \
    "$(echo "$st" | jget 'd["done"] and not d["error"] and "from B" in d["content"]')" = True

# ---- resilience -----------------------------------------------------------------
chat fb500 >/dev/null
check "5xx -> fallback to the next priority group" test "$(status)" = 200 -a \
    "$(header x-aistack-deployment)" = fb500/1
chat fb429 >/dev/null
check "429 -> fallback" test "$(status)" = 200 -a "$(header x-aistack-deployment)" = fb429/1
t0=$(date +%s%N)
chat hang >/dev/null
t1=$(date +%s%N)
check "timeout -> fallback within the deployment timeout" test "$(status)" = 200 -a \
    $(((t1 - t0) / 1000000)) -lt 2500
chat ctx >/dev/null
check "context_length_exceeded -> fallback" test "$(status)" = 200 -a \
    "$(header x-aistack-deployment)" = ctx/1
chat retry >/dev/null
check "retries with backoff until the upstream recovers" test "$(status)" = 200 -a \
    "$(stats F)" = 3
t0=$(date +%s%N)
chat only429 >/dev/null
t1=$(date +%s%N)
check "429 everywhere -> 429 with Retry-After after honouring it" test "$(status)" = 429 -a \
    "$(header Retry-After)" = 1 -a $(((t1 - t0) / 1000000)) -ge 1900
chat primary >/dev/null
check "model fallback (primary -> backup)" test "$(status)" = 200 -a \
    "$(header x-aistack-deployment)" = backup/0
for i in 1 2 3; do chat cool >/dev/null; done
c3=$(stats C)
for i in 1 2 3 4; do chat cool >/dev/null; done
check "cooldown: a failing deployment is skipped" test "$c3" = 3 -a "$(stats C)" = 3 -a \
    "$(status)" = 200
sleep 2.2
chat cool >/dev/null
chat cool >/dev/null
check "half-open: one probe after the cooldown, then cooling again" test "$(stats C)" = 4 -a \
    "$(status)" = 200
okall=1
for i in 1 2 3 4 5 6; do
    chat two -H 'x-aistack-deployment: two-b' >/dev/null
    [ "$(header x-aistack-deployment)" = two-b ] || okall=0
done
check "x-aistack-deployment pins a deployment" test $okall = 1
na=0
for i in $(seq 1 40); do
    chat w >/dev/null
    [ "$(header x-aistack-deployment)" = w-a ] && na=$((na + 1))
done
check "weighted routing follows the weights (9:1 -> $na/40 on w-a)" test $na -ge 28 -a $na -le 40
nf=0
for i in $(seq 1 8); do
    chat lat -H 'x-aistack-strategy: latency' >/dev/null
    [ $i -gt 3 ] && [ "$(header x-aistack-deployment)" = lat-fast ] && nf=$((nf + 1))
done
check "latency strategy (EWMA, two choices) settles on the fast deployment" test $nf = 5
chat two -H 'x-aistack-strategy: least-busy' >/dev/null
check "x-aistack-strategy accepted" test "$(status)" = 200
chat two -H 'x-aistack-strategy: bogus' >/dev/null
check "bad x-aistack-strategy -> 400" test "$(status)" = 400

# ---- metrics --------------------------------------------------------------------
curl -s "$URL/metrics" >"$TMP/metrics"
for m in gateway_requests_total gateway_upstream_requests_total gateway_retries_total \
    gateway_fallbacks_total gateway_upstream_latency_seconds_bucket \
    gateway_time_to_first_token_seconds_bucket gateway_tokens_total gateway_cost_usd_total \
    gateway_deployment_healthy gateway_added_latency_seconds_bucket; do
    check "metric $m" grep -q "^$m" "$TMP/metrics"
done
check "deployment health gauge says 0 for a cooled deployment" \
    grep -q '^gateway_deployment_healthy{model="cool",deployment="cool/0"} 0' "$TMP/metrics"
check "active health check marks an unreachable deployment unhealthy" \
    grep -q '^gateway_deployment_healthy{model="dead",deployment="dead/0"} 0' "$TMP/metrics"
check "active health check keeps a reachable one healthy" \
    grep -q '^gateway_deployment_healthy{model="m",deployment="m/0"} 1' "$TMP/metrics"
if command -v promtool >/dev/null; then
    check "promtool accepts /metrics" bash -c "promtool check metrics <'$TMP/metrics' >/dev/null 2>&1"
fi

check "dns_discovery: unchanged replicas are not republished" \
    bash -c "! grep -q 'replicas changed' '$TMP/gw.log'"

# ---- SIGHUP reload with a stream in flight ----------------------------------------
"$PY" "$TMP/stream.py" "${URL##*:}" slow 0 >"$TMP/inflight" &
SPID=$!
sleep 0.3
write_config "$(dep newmodel B ok)"
kill -HUP $GW_PID
sleep 0.5
chat newmodel >/dev/null
check "SIGHUP: a new model is served" test "$(status)" = 200
wait $SPID
check "SIGHUP: the stream in flight finished cleanly" test \
    "$(jget 'd["done"] and d["n"] == 11' <"$TMP/inflight")" = True
echo "model_list: [{model_name: x, base_url: ftp://nope, model: y}]" >"$TMP/gw.yaml"
kill -HUP $GW_PID
sleep 0.3
chat newmodel >/dev/null
check "SIGHUP with a bad file keeps the running table" test "$(status)" = 200
check "bad reload logged with file:line" grep -q "gw.yaml:1" "$TMP/gw.log"

# ---- bad config at start ------------------------------------------------------------
printf 'model_list:\n  - model_name: x\n    base_url: http://h\n    model: y\n    weight: -3\n' \
    >"$TMP/bad.yaml"
"$GW" --config "$TMP/bad.yaml" 2>"$TMP/bad.log"
rc=$?
check "bad config -> exit 2 with FILE:LINE" test $rc = 2 -a -n "$(grep 'bad.yaml:5' "$TMP/bad.log")"

# ---- SIGTERM drains a stream ---------------------------------------------------------
"$PY" "$TMP/stream.py" "${URL##*:}" slow 0 >"$TMP/drain" &
SPID=$!
sleep 0.3
kill -TERM $GW_PID
wait $SPID
wait $GW_PID
rc=$?
check "SIGTERM: the stream in flight completes" test "$(jget 'd["done"]' <"$TMP/drain")" = True
check "SIGTERM: the gateway exits 0 after the drain" test $rc = 0

[ $FAILS = 0 ] || tail -5 "$TMP/gw.log"
echo "$FAILS failure(s)"
[ $FAILS = 0 ]
