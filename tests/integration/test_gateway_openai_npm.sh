#!/usr/bin/env bash
# test_gateway_openai_npm.sh - the official `openai` npm package talking to
# aistack-gateway (in front of mock_upstream): chat completion, streaming with
# and without usage, models list, a virtual key, and error mapping (404, 429).
# The package is installed once into $AISTACK_BIN/npm-openai (npm registry);
# the test skips with a message if node/npm or the install is unavailable.
set -u
BIN=${AISTACK_BIN:-build}
GW="$BIN/aistack-gateway"
MOCK="$BIN/mock_upstream"
[ -x "$GW" ] && [ -x "$MOCK" ] || { echo "SKIP: gateway or mock_upstream not built"; exit 77; }
command -v node >/dev/null && command -v npm >/dev/null || { echo "SKIP: node/npm missing"; exit 77; }
NPM_DIR=$(cd "$BIN" && pwd)/npm-openai
if [ ! -f "$NPM_DIR/node_modules/openai/package.json" ]; then
    mkdir -p "$NPM_DIR"
    if ! timeout 180 npm install --prefix "$NPM_DIR" --no-audit --no-fund --loglevel=error \
        openai@4 >"$NPM_DIR/install.log" 2>&1; then
        echo "SKIP: npm install openai failed (see $NPM_DIR/install.log)"
        exit 77
    fi
fi

TMP=$(mktemp -d /tmp/aistack-gwnpm-test.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT
wait_file() { for _ in $(seq 1 200); do [ -s "$1" ] && return 0; sleep 0.05; done; return 1; }

"$MOCK" --port 0 --port-file "$TMP/a.port" --name A --interval-ms 20 --log-level warn \
    2>"$TMP/a.log" &
PIDS+=($!)
wait_file "$TMP/a.port" || { echo "mock did not start"; exit 1; }
UP="http://127.0.0.1:$(cat "$TMP/a.port")/v1"
MASTER=sk-master-npm-test-000000
cat >"$TMP/gw.yaml" <<EOF
server: {port: 0, port_file: $TMP/gw.port, threads: 1}
database: $TMP/gw.db
router_settings: {num_retries: 0}
model_list:
  - {model_name: chat, base_url: "$UP", model: ok}
  - {model_name: limited, base_url: "$UP", model: "429"}
EOF
AISTACK_MASTER_KEY=$MASTER "$GW" --config "$TMP/gw.yaml" 2>"$TMP/gw.log" &
PIDS+=($!)
wait_file "$TMP/gw.port" || { echo "gateway did not start"; cat "$TMP/gw.log"; exit 1; }
URL="http://127.0.0.1:$(cat "$TMP/gw.port")"
KEY=$(curl -s -X POST "$URL/admin/keys" -H "Authorization: Bearer $MASTER" \
    -d '{"name":"npm","models":["chat","limited"]}' |
    node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).key))')

cat >"$TMP/client.js" <<'EOF'
const OpenAI = require(process.env.NPM_DIR + "/node_modules/openai");
const assert = require("assert");
let fails = 0;
async function t(name, fn) {
  try { await fn(); console.log("ok   " + name); }
  catch (e) { fails++; console.log("FAIL " + name + ": " + (e && e.message)); }
}
(async () => {
  const c = new OpenAI({ baseURL: process.env.URL + "/v1", apiKey: process.env.KEY, maxRetries: 0 });
  await t("chat.completions.create", async () => {
    const r = await c.chat.completions.create({ model: "chat", messages: [{ role: "user", content: "hi" }] });
    assert.strictEqual(r.choices[0].message.content, "hello from A");
    assert.strictEqual(r.usage.total_tokens, 15);
  });
  await t("streaming, no usage asked", async () => {
    const s = await c.chat.completions.create({ model: "chat", stream: true, messages: [] });
    let text = "", usage = 0;
    for await (const ch of s) { if (ch.usage) usage++; if (ch.choices.length) text += ch.choices[0].delta.content || ""; }
    assert.ok(text.startsWith("tok0 from A"), text);
    assert.strictEqual(usage, 0);
  });
  await t("streaming with include_usage", async () => {
    const s = await c.chat.completions.create({ model: "chat", stream: true, messages: [],
                                               stream_options: { include_usage: true } });
    let usage = null;
    for await (const ch of s) if (ch.usage) usage = ch.usage;
    assert.ok(usage && usage.completion_tokens === 5, JSON.stringify(usage));
  });
  await t("models.list", async () => {
    const ids = [];
    for await (const m of c.models.list()) ids.push(m.id);
    assert.deepStrictEqual(ids.sort(), ["chat", "limited"]);
  });
  await t("model outside the key's list -> PermissionDeniedError", async () => {
    await assert.rejects(c.chat.completions.create({ model: "nope", messages: [] }),
                         e => e instanceof OpenAI.PermissionDeniedError);
  });
  await t("unknown model (master key) -> NotFoundError", async () => {
    const m = new OpenAI({ baseURL: process.env.URL + "/v1", apiKey: process.env.MASTER, maxRetries: 0 });
    await assert.rejects(m.chat.completions.create({ model: "nope", messages: [] }),
                         e => e instanceof OpenAI.NotFoundError);
  });
  await t("upstream 429 -> RateLimitError", async () => {
    await assert.rejects(c.chat.completions.create({ model: "limited", messages: [] }),
                         e => e instanceof OpenAI.RateLimitError && e.status === 429);
  });
  await t("bad key -> AuthenticationError", async () => {
    const bad = new OpenAI({ baseURL: process.env.URL + "/v1", apiKey: "sk-bad-000000000000", maxRetries: 0 });
    await assert.rejects(bad.chat.completions.create({ model: "chat", messages: [] }),
                         e => e instanceof OpenAI.AuthenticationError);
  });
  console.log(fails + " failure(s)");
  process.exit(fails ? 1 : 0);
})();
EOF
NPM_DIR=$NPM_DIR URL=$URL KEY=$KEY MASTER=$MASTER timeout 60 node "$TMP/client.js"
