#!/usr/bin/env bash
# The official `openai` npm package against aistack-infer: models.list, chat
# completion, streaming with include_usage, stop, n, logprobs, completions,
# embeddings (float and the SDK's default base64), tool_choice named/required
# (forced calls, streamed through the SDK's stream helper), and the SDK's error
# classes for 400/404. The package is installed once into $AISTACK_BIN/npm-openai (npm
# registry); skips with a message without node/npm or when the install fails.
set -u
B=${AISTACK_BIN:-build}
command -v node >/dev/null && command -v npm >/dev/null || { echo "SKIP: node/npm missing"; exit 77; }
NPM_DIR=$(cd "$B" && pwd)/npm-openai
if [ ! -f "$NPM_DIR/node_modules/openai/package.json" ]; then
  mkdir -p "$NPM_DIR"
  if ! timeout 180 npm install --prefix "$NPM_DIR" --no-audit --no-fund --loglevel=error openai@4 \
      > "$NPM_DIR/install.log" 2>&1; then
    echo "SKIP: npm install openai failed (see $NPM_DIR/install.log)"; exit 77
  fi
fi
tmp=$(mktemp -d); pid=""
cleanup() { if [ -n "$pid" ]; then kill -9 "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true; fi; rm -rf "$tmp"; }
trap cleanup EXIT
"$B/aistack" model synth --shape tiny --type q8_0 --seed 3 -o "$tmp/tiny.gguf" > /dev/null 2>&1 || { echo "FAIL: synth"; exit 1; }
"$B/aistack-infer" --model "$tmp/tiny.gguf" --model-id tiny --port 0 --server-port-file "$tmp/port" \
  --threads 2 --log-level warn > "$tmp/infer.log" 2>&1 &
pid=$!
for _ in $(seq 1 200); do
  [ -s "$tmp/port" ] && curl -sf "localhost:$(cat "$tmp/port")/health/ready" >/dev/null 2>&1 && break
  sleep 0.1
done
[ -s "$tmp/port" ] || { echo "FAIL: infer did not start"; cat "$tmp/infer.log"; exit 1; }
port=$(cat "$tmp/port")
cat > "$tmp/t.mjs" <<'JS'
import OpenAI from "openai";
import assert from "node:assert/strict";
const client = new OpenAI({ baseURL: process.env.URL, apiKey: "unused", maxRetries: 0 });
const models = await client.models.list();
assert.equal(models.data[0].id, "tiny");
const msgs = [{ role: "user", content: "hello" }];
const c = await client.chat.completions.create({ model: "tiny", messages: msgs, max_tokens: 8, temperature: 0 });
assert.equal(c.object, "chat.completion");
assert.equal(c.choices[0].message.role, "assistant");
assert.ok(c.usage.completion_tokens > 0 && c.usage.completion_tokens <= 8);
const full = c.choices[0].message.content;
const stream = await client.chat.completions.create({ model: "tiny", messages: msgs, max_tokens: 8,
  temperature: 0, stream: true, stream_options: { include_usage: true } });
let text = "", usage = null, finish = null;
for await (const ch of stream) {
  if (ch.choices.length) { text += ch.choices[0].delta.content ?? ""; finish = ch.choices[0].finish_reason ?? finish; }
  if (ch.usage) usage = ch.usage;
}
assert.equal(text, full);
assert.ok(finish === "stop" || finish === "length");
assert.equal(usage.completion_tokens, c.usage.completion_tokens);
const n = await client.chat.completions.create({ model: "tiny", messages: msgs, max_tokens: 4, n: 2,
  logprobs: true, top_logprobs: 3, seed: 1 });
assert.equal(n.choices.length, 2);
assert.equal(n.choices[1].logprobs.content[0].top_logprobs.length, 3);
if (full.length > 4) {
  const stop = full.slice(2, 4);
  const s = await client.chat.completions.create({ model: "tiny", messages: msgs, max_tokens: 8, temperature: 0, stop: [stop] });
  assert.equal(s.choices[0].message.content, full.slice(0, full.indexOf(stop)));
}
const comp = await client.completions.create({ model: "tiny", prompt: "once upon", max_tokens: 4, temperature: 0 });
assert.equal(comp.object, "text_completion");
const e1 = await client.embeddings.create({ model: "tiny", input: ["a", "b"], encoding_format: "float" });
const e2 = await client.embeddings.create({ model: "tiny", input: ["a", "b"] }); // SDK default: base64
assert.equal(e1.data.length, 2);
assert.equal(e2.data[0].embedding.length, e1.data[0].embedding.length);
for (let i = 0; i < e1.data[0].embedding.length; i++)
  assert.ok(Math.abs(e1.data[0].embedding[i] - e2.data[0].embedding[i]) < 1e-6);
await assert.rejects(client.chat.completions.create({ model: "nope", messages: msgs }), OpenAI.NotFoundError);
await assert.rejects(client.chat.completions.create({ model: "tiny", messages: msgs, temperature: 9 }),
  (e) => e instanceof OpenAI.BadRequestError && e.param === "temperature");
// tool_choice named / required: the constrained decoder forces calls that follow the schema
const tools = [
  { type: "function", function: { name: "get_weather", parameters: { type: "object",
    properties: { unit: { enum: ["c", "f"] }, days: { type: "integer" }, alerts: { type: "boolean" } },
    required: ["unit", "days"], additionalProperties: false } } },
  { type: "function", function: { name: "set_mode", parameters: { type: "object",
    properties: { mode: { enum: ["on", "off"] } }, required: ["mode"] } } },
];
const checkCall = (tc, want) => {
  assert.equal(tc.type, "function");
  assert.ok(tc.id.startsWith("call_"), tc.id);
  if (want) assert.equal(tc.function.name, want);
  const a = JSON.parse(tc.function.arguments);
  if (tc.function.name === "get_weather") {
    assert.ok(["c", "f"].includes(a.unit) && Number.isInteger(a.days), tc.function.arguments);
    assert.ok(a.alerts === undefined || typeof a.alerts === "boolean", tc.function.arguments);
    assert.deepEqual(Object.keys(a).filter((k) => !["unit", "days", "alerts"].includes(k)), []);
  } else {
    assert.equal(tc.function.name, "set_mode");
    assert.ok(["on", "off"].includes(a.mode), tc.function.arguments);
  }
};
const named = { type: "function", function: { name: "get_weather" } };
const tc = await client.chat.completions.create({ model: "tiny", messages: msgs, max_tokens: 600,
  seed: 5, tools, tool_choice: named });
assert.equal(tc.choices[0].finish_reason, "stop");
assert.equal(tc.choices[0].message.content, null);
assert.equal(tc.choices[0].message.tool_calls.length, 1);
checkCall(tc.choices[0].message.tool_calls[0], "get_weather");
// the SDK's streaming helper assembles the deltas into the same call
const runner = client.beta.chat.completions.stream({ model: "tiny", messages: msgs, max_tokens: 600,
  seed: 5, tools, tool_choice: named });
const streamed = await runner.finalChatCompletion();
assert.equal(streamed.choices[0].finish_reason, "stop");
assert.equal(streamed.choices[0].message.tool_calls.length, 1);
checkCall(streamed.choices[0].message.tool_calls[0], "get_weather");
assert.equal(streamed.choices[0].message.tool_calls[0].function.arguments,
  tc.choices[0].message.tool_calls[0].function.arguments);
const req = await client.chat.completions.create({ model: "tiny", messages: msgs, max_tokens: 600,
  seed: 5, tools, tool_choice: "required", parallel_tool_calls: false });
assert.equal(req.choices[0].finish_reason, "tool_calls");
assert.equal(req.choices[0].message.tool_calls.length, 1);
checkCall(req.choices[0].message.tool_calls[0]);
await assert.rejects(client.chat.completions.create({ model: "tiny", messages: msgs, tools,
  tool_choice: { type: "function", function: { name: "nope" } } }),
  (e) => e instanceof OpenAI.BadRequestError && e.param === "tool_choice");
await assert.rejects(client.chat.completions.create({ model: "tiny", messages: msgs,
  tool_choice: "required" }),
  (e) => e instanceof OpenAI.BadRequestError && e.param === "tool_choice");
console.log("openai SDK against infer: all checks passed");
JS
cp "$tmp/t.mjs" "$NPM_DIR/t-infer.mjs"
URL="http://127.0.0.1:$port/v1" node "$NPM_DIR/t-infer.mjs" || { tail -20 "$tmp/infer.log"; exit 1; }
