#!/usr/bin/env bash
# aistack-infer on loopback with a small generated model: OpenAI shapes
# (non-streaming, streaming, usage chunk), stop strings matched across tokens
# and never leaked, n > 1, logprobs, max_tokens/length, response_format,
# tool_choice required/named (forced calls from a random model), /v1/models,
# /tokenize + /detokenize, 400/404/401 errors with OpenAI bodies, concurrent
# clients, queue overflow -> 429, a client disconnecting mid-stream (slot
# freed), /metrics with vLLM names, SIGTERM drain, --weights auto|mmap|copy.
set -euo pipefail
B=$AISTACK_BIN; py=${AISTACK_PYTHON:-/usr/bin/python3}
tmp=$(mktemp -d); pid=""
cleanup() { if [ -n "$pid" ]; then kill -9 "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true; fi; rm -rf "$tmp"; }
trap cleanup EXIT
fail() { echo "FAIL: $*"; [ -f "$tmp/infer.log" ] && tail -20 "$tmp/infer.log"; exit 1; }

"$B/aistack" model synth --shape tiny --type f32 --seed 7 -o "$tmp/tiny.gguf" --quiet 2>/dev/null \
  || "$B/aistack" model synth --shape tiny --type f32 --seed 7 -o "$tmp/tiny.gguf" >/dev/null 2>&1 \
  || fail "model synth"
start() {
  rm -f "$tmp/port"
  "$B/aistack-infer" --model "$tmp/tiny.gguf" --model-id tiny --model-alias tiny-alias --port 0 \
    --server-port-file "$tmp/port" --threads 2 --batch-max-running "${RUNNING:-4}" \
    --batch-max-queue "${QUEUE:-8}" "$@" \
    > "$tmp/infer.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 200); do
    if [ -s "$tmp/port" ]; then
      port=$(cat "$tmp/port"); U="http://localhost:$port"
      curl -sf "$U/health/ready" >/dev/null 2>&1 && return 0
    fi
    kill -0 $pid 2>/dev/null || fail "server died"; sleep 0.1
  done
  fail "not ready"
}
port=""; U=""
post() { curl -s -o "$tmp/out" -w '%{http_code}' "$U$1" -H 'Content-Type: application/json' -d "$2"; }
check() { "$py" - "$tmp/out" "$@" || fail "check: $*"; }

start
# models
[ "$(post /v1/models '' ; true)" ] || true
curl -sf "$U/v1/models" > "$tmp/out" || fail "models"
check <<'PY'
import json,sys; d=json.load(open(sys.argv[1])); assert d["object"]=="list" and d["data"][0]["id"]=="tiny", d
PY
curl -s -o "$tmp/out" -w '%{http_code}' "$U/v1/models/nope" | grep -q 404 || fail "404 model"

# non-streaming chat: shapes, usage, length
code=$(post /v1/chat/completions '{"model":"tiny","messages":[{"role":"user","content":"hi"}],"max_tokens":12,"temperature":0}')
[ "$code" = 200 ] || fail "chat $code"
check <<'PY'
import json,sys; d=json.load(open(sys.argv[1]))
assert d["object"]=="chat.completion" and d["id"].startswith("chatcmpl-"), d
c=d["choices"][0]; assert c["message"]["role"]=="assistant" and c["finish_reason"] in ("length","stop"), c
u=d["usage"]; assert u["total_tokens"]==u["prompt_tokens"]+u["completion_tokens"] and u["completion_tokens"]<=12, u
open(sys.argv[1]+".text","w").write(c["message"]["content"])
PY
full=$(cat "$tmp/out.text")

# streaming gives the same text (greedy), a usage chunk, and [DONE] last
curl -sN "$U/v1/chat/completions" -d '{"model":"tiny-alias","messages":[{"role":"user","content":"hi"}],"max_tokens":12,"temperature":0,"stream":true,"stream_options":{"include_usage":true}}' > "$tmp/out"
FULL="$full" check <<'PY'
import json,os,sys
lines=[l for l in open(sys.argv[1]).read().split("\n") if l]
assert all(l.startswith("data: ") for l in lines), lines
assert lines[-1]=="data: [DONE]", lines[-1]
chunks=[json.loads(l[6:]) for l in lines[:-1]]
text="".join(c["choices"][0]["delta"].get("content","") for c in chunks if c["choices"])
assert text==os.environ["FULL"], (text, os.environ["FULL"])
assert chunks[0]["choices"][0]["delta"]["role"]=="assistant"
assert chunks[-1]["choices"]==[] and chunks[-1]["usage"]["completion_tokens"]>0
assert chunks[-2]["choices"][0]["finish_reason"] in ("stop","length")
PY

# stop string from the middle of the greedy text: cut there, never leaked
if [ ${#full} -ge 6 ]; then
  stop=${full:3:2}
  export STOP="$stop" FULL="$full"
  body=$("$py" -c 'import json,os; print(json.dumps({"model":"tiny","messages":[{"role":"user","content":"hi"}],"max_tokens":12,"temperature":0,"stop":[os.environ["STOP"],"zzzz"]}))')
  [ "$(post /v1/chat/completions "$body")" = 200 ] || fail "stop"
  check <<'PY'
import json,os,sys; d=json.load(open(sys.argv[1])); t=d["choices"][0]["message"]["content"]
full,stop=os.environ["FULL"],os.environ["STOP"]
assert t==full[:full.index(stop)], (t, full, stop)
assert d["choices"][0]["finish_reason"]=="stop"
PY
  body=$("$py" -c 'import json,os; print(json.dumps({"model":"tiny","messages":[{"role":"user","content":"hi"}],"max_tokens":12,"temperature":0,"stream":True,"stop":os.environ["STOP"]}))')
  curl -sN "$U/v1/chat/completions" -d "$body" > "$tmp/out"
  check <<'PY'
import json,os,sys
ls=[l[6:] for l in open(sys.argv[1]).read().split("\n") if l.startswith("data: ")][:-1]
t="".join(json.loads(l)["choices"][0]["delta"].get("content","") for l in ls)
full,stop=os.environ["FULL"],os.environ["STOP"]; assert t==full[:full.index(stop)], (t, full)
PY
fi

# n > 1 with sampling, logprobs with alternatives
[ "$(post /v1/chat/completions '{"model":"tiny","messages":[{"role":"user","content":"hi"}],"max_tokens":5,"n":3,"temperature":1.0,"seed":5,"logprobs":true,"top_logprobs":2}')" = 200 ] || fail "n=3"
check <<'PY'
import json,sys; d=json.load(open(sys.argv[1])); cs=d["choices"]
assert [c["index"] for c in cs]==[0,1,2], cs
for c in cs:
    lp=c["logprobs"]["content"]; assert len(lp)>=1
    for e in lp: assert e["logprob"]<=0 and len(e["top_logprobs"])==2 and isinstance(e["bytes"],list)
assert d["usage"]["completion_tokens"]==sum(len(c["logprobs"]["content"]) for c in cs)
PY

# completions endpoint with logprobs
[ "$(post /v1/completions '{"model":"tiny","prompt":"hello","max_tokens":4,"temperature":0,"logprobs":1}')" = 200 ] || fail "completions"
check <<'PY'
import json,sys; d=json.load(open(sys.argv[1])); c=d["choices"][0]
assert d["object"]=="text_completion" and len(c["logprobs"]["tokens"])==d["usage"]["completion_tokens"], d
PY

# tokenize / detokenize round trip
[ "$(post /tokenize '{"model":"tiny","prompt":"hello world","add_special":false}')" = 200 ] || fail tokenize
ids=$("$py" -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1]))["tokens"]))' "$tmp/out")
[ "$(post /detokenize "{\"model\":\"tiny\",\"tokens\":$ids}")" = 200 ] || fail detokenize
check <<'PY'
import json,sys; assert json.load(open(sys.argv[1]))["prompt"]=="hello world"
PY

# embeddings: unit length, one per input, base64 decodes to the same floats
[ "$(post /v1/embeddings '{"model":"tiny","input":["hello world","hi"]}')" = 200 ] || fail embeddings
cp "$tmp/out" "$tmp/emb_float"
[ "$(post /v1/embeddings '{"model":"tiny","input":"hello world","encoding_format":"base64"}')" = 200 ] || fail "embeddings base64"
"$py" - "$tmp/emb_float" "$tmp/out" <<'PY' || fail "embeddings shape"
import base64,json,math,struct,sys
f=json.load(open(sys.argv[1])); b=json.load(open(sys.argv[2]))
assert f["object"]=="list" and [d["index"] for d in f["data"]]==[0,1] and f["usage"]["prompt_tokens"]>0
v=f["data"][0]["embedding"]; assert abs(math.sqrt(sum(x*x for x in v))-1)<1e-4
raw=base64.b64decode(b["data"][0]["embedding"]); w=struct.unpack("<%df"%(len(raw)//4), raw)
assert len(w)==len(v) and max(abs(x-y) for x,y in zip(v,w))<1e-6
assert f["data"][0]["embedding"]!=f["data"][1]["embedding"]
PY
[ "$(post /v1/embeddings '{"model":"tiny","input":[]}')" = 400 ] || fail "empty embeddings input"

# response_format: output parses (and matches the schema's types, required keys, enums)
[ "$(post /v1/chat/completions '{"model":"tiny","messages":[{"role":"user","content":"hi"}],"max_tokens":200,"temperature":1,"seed":3,"response_format":{"type":"json_object"}}')" = 200 ] || fail "json_object"
check <<'PY'
import json,sys; c=json.load(open(sys.argv[1]))["choices"][0]
assert c["finish_reason"]=="stop", c; assert isinstance(json.loads(c["message"]["content"]), dict)
PY
schema='{"type":"object","properties":{"ok":{"type":"boolean"},"kind":{"enum":["cat","dog","cow"]},"n":{"type":"integer"},"tags":{"type":"array","items":{"enum":["a","b"]},"maxItems":3}},"required":["ok","kind","n"]}'
for seed in 1 2 3; do
  [ "$(post /v1/chat/completions "{\"model\":\"tiny\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":200,\"temperature\":1,\"seed\":$seed,\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"x\",\"schema\":$schema}}}")" = 200 ] || fail "json_schema"
  check <<'PY'
import json,sys; c=json.load(open(sys.argv[1]))["choices"][0]; d=json.loads(c["message"]["content"])
assert set(d) <= {"ok","kind","n","tags"} and {"ok","kind","n"} <= set(d), d
assert isinstance(d["ok"], bool) and d["kind"] in ("cat","dog","cow") and isinstance(d["n"], int), d
assert all(t in ("a","b") for t in d.get("tags", [])) and len(d.get("tags", [])) <= 3, d
PY
done
[ "$(post /v1/chat/completions '{"model":"tiny","messages":[{"role":"user","content":"hi"}],"response_format":{"type":"json_schema","json_schema":{"schema":{"$ref":"#/nope"}}}}')" = 400 ] || fail "bad schema"
grep -q '"param":"response_format"' "$tmp/out" || fail "bad schema param"

# tool_choice required / named: the constrained decoder makes even this random model call a tool
# with arguments that follow the schema (enums, integers, booleans: values a random model ends)
tools='[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"unit":{"enum":["c","f"]},"days":{"type":"integer"},"alerts":{"type":"boolean"}},"required":["unit","days"],"additionalProperties":false}}},{"type":"function","function":{"name":"set_mode","parameters":{"type":"object","properties":{"mode":{"enum":["on","off"]}},"required":["mode"]}}}]'
tool_req() { echo "{\"model\":\"tiny\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":600,\"temperature\":1,\"seed\":$1,\"tools\":$tools,\"tool_choice\":$2${3:-}}"; }
cat > "$tmp/calls.py" <<'PY'
import json
def check_call(tc, want=None):
    assert tc["type"]=="function" and tc["id"].startswith("call_"), tc
    name=tc["function"]["name"]; a=json.loads(tc["function"]["arguments"])
    assert want is None or name==want, (name, want)
    if name=="get_weather":
        assert set(a) <= {"unit","days","alerts"} and {"unit","days"} <= set(a), a
        assert a["unit"] in ("c","f") and type(a["days"]) is int and type(a.get("alerts",False)) is bool, a
    else:
        assert name=="set_mode" and a["mode"] in ("on","off"), (name, a)
def stream_calls(path):
    lines=[l for l in open(path).read().split("\n") if l]
    assert lines[-1]=="data: [DONE]", lines[-1]
    calls={}; finish=None; text=""
    for l in lines[:-1]:
        c=json.loads(l[6:])["choices"][0]; d=c["delta"]; text+=d.get("content") or ""
        for t in d.get("tool_calls",[]):
            e=calls.setdefault(t["index"], {"id":"","type":"","function":{"name":"","arguments":""}})
            e["id"]+=t.get("id",""); e["type"]+=t.get("type","")
            e["function"]["name"]+=t.get("function",{}).get("name","")
            e["function"]["arguments"]+=t.get("function",{}).get("arguments","")
        finish=c["finish_reason"] or finish
    return [calls[i] for i in sorted(calls)], finish, text
PY
for seed in 1 2 3; do
  named='{"type":"function","function":{"name":"get_weather"}}'
  [ "$(post /v1/chat/completions "$(tool_req $seed "$named")")" = 200 ] || fail "named tool_choice"
  check <<'PY'
import json,sys; sys.path.insert(0, sys.argv[1].rsplit("/",1)[0]); from calls import *
c=json.load(open(sys.argv[1]))["choices"][0]; m=c["message"]
assert c["finish_reason"]=="stop" and m["content"] is None and len(m["tool_calls"])==1, c
check_call(m["tool_calls"][0], "get_weather"); open(sys.argv[1]+".call","w").write(json.dumps(m["tool_calls"][0]))
PY
  cp "$tmp/out.call" "$tmp/named.call"
  # streaming the same request (same seed): the same call as deltas, no content
  curl -sN "$U/v1/chat/completions" -d "$(tool_req $seed "$named" ',"stream":true')" > "$tmp/out"
  check "$tmp/named.call" <<'PY'
import json,sys; sys.path.insert(0, sys.argv[1].rsplit("/",1)[0]); from calls import *
calls,finish,text=stream_calls(sys.argv[1]); want=json.load(open(sys.argv[2]))
assert finish=="stop" and text=="" and len(calls)==1, (calls, finish, text)
check_call(calls[0], "get_weather")
assert calls[0]["function"]==want["function"], (calls[0], want)
PY
  [ "$(post /v1/chat/completions "$(tool_req $seed '"required"')")" = 200 ] || fail "required tool_choice"
  check <<'PY'
import json,sys; sys.path.insert(0, sys.argv[1].rsplit("/",1)[0]); from calls import *
c=json.load(open(sys.argv[1]))["choices"][0]; m=c["message"]
assert c["finish_reason"]=="tool_calls" and m["content"] is None and len(m["tool_calls"])>=1, c
for t in m["tool_calls"]: check_call(t)
assert len({t["id"] for t in m["tool_calls"]})==len(m["tool_calls"])
PY
  curl -sN "$U/v1/chat/completions" -d "$(tool_req $seed '"required"' ',"stream":true,"parallel_tool_calls":false')" > "$tmp/out"
  check <<'PY'
import json,sys; sys.path.insert(0, sys.argv[1].rsplit("/",1)[0]); from calls import *
calls,finish,text=stream_calls(sys.argv[1])
assert finish=="tool_calls" and text=="" and len(calls)==1, (calls, finish, text)
check_call(calls[0])
PY
done
# bad tool_choice / tools / parallel_tool_calls: 400 naming the field
for case in "{\"type\":\"function\",\"function\":{\"name\":\"nope\"}}|$tools|tool_choice" \
            '"required"|[]|tool_choice' \
            '{"type":"function","function":{"name":"get_weather"}}|null|tool_choice' \
            '"sometimes"|'"$tools"'|tool_choice' \
            '{"type":"function"}|'"$tools"'|tool_choice' \
            '7|'"$tools"'|tool_choice' \
            '"required"|[{"type":"function","function":{"name":"f","parameters":{"$ref":"#/nope"}}}]|tools' \
            '"required"|[{"type":"function","function":{"name":"f","parameters":"x"}}]|tools' \
            '{"type":"function","function":{"name":"f"}}|[{"type":"function","function":{"name":"f","parameters":{"type":"string"}}}]|tools' \
            '"auto"|'"$tools"',"parallel_tool_calls":"yes"|parallel_tool_calls'; do
  IFS='|' read -r choice tl param <<< "$case"
  code=$(post /v1/chat/completions "{\"model\":\"tiny\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"tools\":$tl,\"tool_choice\":$choice}")
  [ "$code" = 400 ] || fail "tool_choice $choice with tools $tl: $code"
  grep -q "\"param\":\"$param\"" "$tmp/out" || fail "tool_choice $choice: param $(cat "$tmp/out")"
  grep -q '"type":"invalid_request_error"' "$tmp/out" || fail "tool_choice $choice: type"
done

# errors: OpenAI bodies with param
for case in '{"model":"tiny","messages":[]}|400|messages' \
            '{"model":"tiny","messages":[{"role":"user","content":"x"}],"temperature":5}|400|temperature' \
            '{"model":"tiny","messages":[{"role":"user","content":"x"}],"n":0}|400|n' \
            '{"model":"nope","messages":[{"role":"user","content":"x"}]}|404|model' \
            'not json|400|' \
            '{"model":"tiny","messages":[{"role":"wizard","content":"x"}]}|400|messages'; do
  IFS='|' read -r body want param <<< "$case"
  code=$(post /v1/chat/completions "$body")
  [ "$code" = "$want" ] || fail "want $want got $code for $body"
  PARAM="$param" check <<'PY'
import json,os,sys; e=json.load(open(sys.argv[1]))["error"]
assert e["message"] and e["type"] and set(e)=={"message","type","param","code"}, e
if os.environ["PARAM"]: assert e["param"]==os.environ["PARAM"], e
PY
done
long=$("$py" -c 'print("{\"model\":\"tiny\",\"prompt\":\"" + "hello " * 5000 + "\"}")')
[ "$(post /v1/completions "$long")" = 400 ] || fail "over-long prompt"
grep -q context_length_exceeded "$tmp/out" || fail "no context_length_exceeded code"

# concurrency: 8 clients at once, all complete with the same greedy text
pids=()
for i in $(seq 1 8); do
  curl -s "$U/v1/chat/completions" -d '{"model":"tiny","messages":[{"role":"user","content":"hi"}],"max_tokens":12,"temperature":0}' > "$tmp/c$i" &
  pids+=($!)
done
wait "${pids[@]}"
for i in $(seq 1 8); do
  FULL="$full" "$py" -c 'import json,os,sys; d=json.load(open(sys.argv[1])); assert d["choices"][0]["message"]["content"]==os.environ["FULL"], d' "$tmp/c$i" || fail "concurrent $i"
done

# a client disconnecting mid-stream frees its slot
timeout 0.5 curl -sN "$U/v1/chat/completions" -d '{"model":"tiny","messages":[{"role":"user","content":"hi"}],"max_tokens":100000,"stream":true,"temperature":1}' > /dev/null || true
for _ in $(seq 1 50); do
  curl -s "$U/metrics" > "$tmp/m"
  grep -q '^vllm:num_requests_running{model_name="tiny"} 0' "$tmp/m" && break; sleep 0.1
done
grep -q '^vllm:num_requests_running{model_name="tiny"} 0' "$tmp/m" || fail "slot not freed after disconnect"
for name in vllm:num_requests_waiting vllm:kv_cache_usage_perc vllm:prompt_tokens_total \
            vllm:generation_tokens_total vllm:time_to_first_token_seconds_bucket \
            vllm:time_per_output_token_seconds_count vllm:e2e_request_latency_seconds_sum \
            vllm:request_queue_time_seconds_count aistack_infer_requests_aborted_total; do
  grep -q "^$name" "$tmp/m" || fail "metric $name missing"
done
# vLLM's names contain ':' (which promtool's lint reserves for recording rules); we keep
# them for dashboard compatibility: any other finding fails
if command -v promtool >/dev/null; then
  promtool check metrics < "$tmp/m" > "$tmp/lint" 2>&1 || true
  if grep -v "metric names should not contain ':'" "$tmp/lint" | grep -q .; then
    cat "$tmp/lint"; fail "promtool"
  fi
fi

# queue overflow: 1 running + 2 waiting, the rest get 429 with Retry-After
kill -TERM $pid; wait $pid || true; pid=""
RUNNING=1 QUEUE=2 start
pids=()
for i in $(seq 1 24); do
  curl -s -o /dev/null -D "$tmp/h$i" -w '%{http_code}\n' "$U/v1/chat/completions" \
    -d '{"model":"tiny","messages":[{"role":"user","content":"hi"}],"max_tokens":100000,"ignore_eos":true}' > "$tmp/s$i" &
  pids+=($!)
done
wait "${pids[@]}"
n429=$(cat "$tmp"/s* | grep -c 429 || true); n200=$(cat "$tmp"/s* | grep -c 200 || true)
[ "$n429" -ge 1 ] && [ "$n200" -ge 3 ] && [ $((n200 + n429)) -eq 24 ] || fail "queue overflow: $n200 x 200, $n429 x 429"
grep -qi '^retry-after:' $(grep -l 429 "$tmp"/s* | head -1 | sed 's/s\([0-9]*\)$/h\1/') || fail "no Retry-After"
echo "queue: $n200 answered, $n429 x 429"

# SIGTERM during a stream: the stream finishes with [DONE], then exit 0
curl -sN "$U/v1/chat/completions" -d '{"model":"tiny","messages":[{"role":"user","content":"hi"}],"max_tokens":60,"stream":true,"temperature":1}' > "$tmp/drain" &
cpid=$!
sleep 0.3
kill -TERM $pid
wait $cpid || true
tail -2 "$tmp/drain" | grep -q 'data: \[DONE\]' || fail "stream cut by SIGTERM"
wait $pid; rc=$?; pid=""
[ $rc -eq 0 ] || fail "exit status $rc after SIGTERM"

# where the weights live (--weights): each mode is named in the log and answers the same greedy
# text; a bad value is refused before listening (exit 2)
grep -Eq 'msg="model ready".* weights=(mmap-huge|copy|mmap) ' "$tmp/infer.log" \
  || fail "model ready names no weights: $(grep 'model ready' "$tmp/infer.log")"
for w in mmap copy; do
  start --weights $w --log-level debug
  grep -q " weights=$w " "$tmp/infer.log" || fail "--weights $w: $(grep 'model ready' "$tmp/infer.log")"
  [ "$(post /v1/chat/completions '{"model":"tiny","messages":[{"role":"user","content":"hi"}],"max_tokens":12,"temperature":0}')" = 200 ] \
    || fail "--weights $w: chat"
  FULL="$full" check <<'PY'
import json,os,sys; d=json.load(open(sys.argv[1]))
assert d["choices"][0]["message"]["content"]==os.environ["FULL"], (d, os.environ["FULL"])
PY
  # the debug log's line for the finished request agrees with the response's usage
  kill -TERM $pid; wait $pid || true; pid=""
  "$py" - "$tmp/out" "$tmp/infer.log" <<'PY' || fail "--log-level debug: no matching request line"
import json,re,sys
d=json.load(open(sys.argv[1])); u=d["usage"]; fin=d["choices"][0]["finish_reason"]
lines=[l for l in open(sys.argv[2]) if 'msg="request done"' in l]
assert len(lines)==1, lines
m=re.search(r'model=tiny prompt=(\d+) cached=\d+ gen=(\d+) queue_ms=[\d.]+ ttft_ms=[\d.]+ '
            r'total_ms=[\d.]+ gen_tps=[\d.]+ finish=(\w+)', lines[0])
assert m and int(m[1])==u["prompt_tokens"] and int(m[2])==u["completion_tokens"] and m[3]==fin, (lines, u, fin)
PY
done
rc=0; "$B/aistack-infer" --model "$tmp/tiny.gguf" --port 0 --weights bogus > "$tmp/bad" 2>&1 || rc=$?
[ $rc -eq 2 ] && grep -q "weights: 'bogus' is not auto, mmap or copy" "$tmp/bad" || fail "--weights bogus: rc $rc, $(cat "$tmp/bad")"

# API keys
start --api-key sk-test-0123456789abcdef
[ "$(post /v1/chat/completions '{"messages":[{"role":"user","content":"x"}]}')" = 401 ] || fail "no key accepted"
code=$(curl -s -o "$tmp/out" -w '%{http_code}' "$U/v1/chat/completions" -H 'Authorization: Bearer sk-test-0123456789abcdef' -d '{"messages":[{"role":"user","content":"x"}],"max_tokens":2}')
[ "$code" = 200 ] || fail "key refused ($code)"
curl -sf "$U/health/live" >/dev/null || fail "health needs no key"
echo "infer: all checks passed"
