#!/usr/bin/env bash
# test_gateway_keys.sh - the gateway's master key, virtual keys (admin API, hashed
# storage in SQLite), per-key model allow-list, rpm/tpm limits with OpenAI's
# x-ratelimit-* headers, budgets (429 insufficient_quota, x-should-retry: false),
# revocation, the usage ledger behind GET /admin/usage, and keys surviving a restart.
set -u
BIN=${AISTACK_BIN:-build}
PY=${AISTACK_PYTHON:-/usr/bin/python3}
GW="$BIN/aistack-gateway"
MOCK="$BIN/mock_upstream"
[ -x "$GW" ] && [ -x "$MOCK" ] || { echo "SKIP: gateway or mock_upstream not built"; exit 77; }
command -v curl >/dev/null || { echo "SKIP: curl missing"; exit 77; }
command -v sqlite3 >/dev/null && HAVE_SQLITE=1 || HAVE_SQLITE=0

TMP=$(mktemp -d /tmp/aistack-gwkeys-test.XXXXXX)
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

"$MOCK" --port 0 --port-file "$TMP/a.port" --name A --log-level warn 2>"$TMP/a.log" &
PIDS+=($!)
wait_file "$TMP/a.port" || { echo "mock did not start"; exit 1; }
UP="http://127.0.0.1:$(cat "$TMP/a.port")/v1"
MASTER=sk-master-test-0123456789
cat >"$TMP/gw.yaml" <<EOF
server: {port: 0, port_file: $TMP/gw.port, threads: 2}
database: $TMP/gw.db
model_list:
  - model_name: cheap
    base_url: $UP
    model: ok
    input_price: 1000
    output_price: 2000
  - model_name: other
    base_url: $UP
    model: ok
EOF
start_gw() {
    rm -f "$TMP/gw.port"
    AISTACK_MASTER_KEY=$MASTER "$GW" --config "$TMP/gw.yaml" 2>>"$TMP/gw.log" &
    GW_PID=$!
    PIDS+=($GW_PID)
    wait_file "$TMP/gw.port" || { echo "gateway did not start"; cat "$TMP/gw.log"; exit 1; }
    URL="http://127.0.0.1:$(cat "$TMP/gw.port")"
}
start_gw

req() { # req KEY MODEL -> status in $TMP/status, headers in $TMP/headers
    curl -s -o "$TMP/body" -D "$TMP/headers" -w '%{http_code}' "$URL/v1/chat/completions" \
        -H "Authorization: Bearer $1" -d "{\"model\":\"$2\",\"messages\":[]}" >"$TMP/status"
}
status() { cat "$TMP/status"; }
header() { grep -i "^$1:" "$TMP/headers" | head -1 | cut -d' ' -f2- | tr -d '\r'; }
jget() { "$PY" -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
admin() { # admin METHOD PATH [JSON]
    curl -s -w '\n%{http_code}' -X "$1" -H "Authorization: Bearer $MASTER" "$URL$2" \
        ${3:+-d "$3"} >"$TMP/admin"
    head -n -1 "$TMP/admin"
}
admin_status() { tail -1 "$TMP/admin"; }

curl -s -o /dev/null -w '%{http_code}' "$URL/v1/chat/completions" -d '{"model":"cheap"}' \
    >"$TMP/status"
check "no key -> 401" test "$(status)" = 401
req sk-wrong-key-0000000000 cheap
check "unknown key -> 401 invalid_api_key" test "$(status)" = 401 -a \
    "$(jget 'd["error"]["code"]' <"$TMP/body")" = invalid_api_key
req $MASTER cheap
check "master key may call models" test "$(status)" = 200
curl -s -o /dev/null -w '%{http_code}' "$URL/admin/keys" -H 'Authorization: Bearer nope' \
    >"$TMP/status"
check "admin API refuses other keys" test "$(status)" = 401

k1=$(admin POST /admin/keys '{"name":"team-a","models":["cheap"],"rpm":3}')
check "create key" test "$(admin_status)" = 200
K1=$(echo "$k1" | jget 'd["key"]')
ID1=$(echo "$k1" | jget 'd["id"]')
check "key returned once, sk-as- prefix" bash -c "[[ '$K1' == sk-as-* ]]"
list=$(admin GET /admin/keys)
check "list does not reveal keys" bash -c "! echo '$list' | grep -q '$K1' && echo '$list' | grep -q '$ID1'"
if [ $HAVE_SQLITE = 1 ]; then
    check "database stores only a digest" bash -c \
        "! sqlite3 '$TMP/gw.db' 'select * from keys' | grep -q '$K1'"
fi
req "$K1" other
check "model outside the allow-list -> 403" test "$(status)" = 403
req "$K1" cheap
check "virtual key works" test "$(status)" = 200 -a "$(header x-ratelimit-limit-requests)" = 3
check "x-ratelimit-remaining-requests counts down" test \
    "$(header x-ratelimit-remaining-requests)" = 2
req "$K1" cheap
req "$K1" cheap
req "$K1" cheap
check "over rpm -> 429 with Retry-After and x-ratelimit headers" test "$(status)" = 429 -a \
    -n "$(header Retry-After)" -a "$(header x-ratelimit-remaining-requests)" = 0 -a \
    -n "$(header x-ratelimit-reset-requests)"
check "rpm 429 is rate_limit_exceeded" test "$(jget 'd["error"]["code"]' <"$TMP/body")" = \
    rate_limit_exceeded

k2=$(admin POST /admin/keys '{"name":"tokens","tpm":20}')
K2=$(echo "$k2" | jget 'd["key"]')
req "$K2" other
req "$K2" other
req "$K2" other
check "over tpm -> 429 with token headers" test "$(status)" = 429 -a \
    "$(header x-ratelimit-limit-tokens)" = 20

# (each request: 15 tokens; the window holds 30 > 20 after two)
# 10 prompt + 5 completion tokens at 1000/2000 USD per million = 0.02 USD a request
k3=$(admin POST /admin/keys '{"name":"budget","budget":0.03,"budget_period_s":86400}')
K3=$(echo "$k3" | jget 'd["key"]')
req "$K3" cheap
a=$(status)
req "$K3" cheap
b=$(status)
req "$K3" cheap
check "over budget -> 429 insufficient_quota, x-should-retry: false" test "$a$b" = 200200 -a \
    "$(status)" = 429 -a "$(jget 'd["error"]["code"]' <"$TMP/body")" = insufficient_quota -a \
    "$(header x-should-retry)" = false

u=$(admin GET '/admin/usage?group_by=key')
check "usage by key: 2 requests, cost 0.04 for the budget key" test "$(echo "$u" | jget \
    "[(r['requests'], round(r['cost'], 6)) for r in d['data'] if r['key_id'] == '$(echo "$k3" | jget 'd["id"]')'][0]")" = "(2, 0.04)"
u=$(admin GET '/admin/usage?group_by=model')
check "usage by model" test "$(echo "$u" | jget "sorted(r['model'] for r in d['data'])[:2]")" = \
    "['cheap', 'other']"
admin GET '/admin/usage?group_by=nonsense' >/dev/null
check "bad group_by -> 400" test "$(admin_status)" = 400
u=$(admin GET "/admin/usage?since=$(($(date +%s) + 3600))")
check "time range filters" test "$(echo "$u" | jget 'len(d["data"])')" = 0

admin DELETE "/admin/keys/$ID1" >/dev/null
check "revoke key" test "$(admin_status)" = 200
req "$K1" cheap
check "revoked key -> 401" test "$(status)" = 401
admin DELETE "/admin/keys/key-doesnotexist" >/dev/null
check "revoke unknown key -> 404" test "$(admin_status)" = 404

# keys and spend survive a restart (spend summed back from the ledger)
kill -TERM $GW_PID
wait $GW_PID
start_gw
req "$K2" other
check "key works after a restart" test "$(status)" = 200
req "$K3" cheap
check "budget spent before the restart still counts" test "$(status)" = 429
req "$K1" cheap
check "revoked key stays revoked after a restart" test "$(status)" = 401

echo "$FAILS failure(s)"
[ $FAILS = 0 ]
