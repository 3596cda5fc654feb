"""Streaming load client for bench/infer/run.sh (standard library only).

C clients stream N chat completions each at once; prints one JSON line with
aggregate generation tokens/s, TTFT and inter-token latency percentiles.
usage: client.py URL MODEL CLIENTS REQUESTS_PER_CLIENT MAX_TOKENS
"""
import http.client
import json
import sys
import threading
import time
import urllib.parse

url, model, clients, per_client, max_tokens = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:6])
u = urllib.parse.urlparse(url)
ttft, itl, tokens, errors = [], [], [0], [0]
lock = threading.Lock()


def one(i):
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=600)
    body = json.dumps({"model": model, "stream": True, "max_tokens": max_tokens,
                       "temperature": 1.0, "seed": i, "ignore_eos": True,
                       "messages": [{"role": "user", "content": f"Tell me a story number {i}."}]})
    t0 = time.perf_counter()
    conn.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
    r = conn.getresponse()
    if r.status != 200:
        with lock:
            errors[0] += 1
        return
    last, n, first, gaps = None, 0, None, []
    for line in r:
        line = line.strip()
        if not line.startswith(b"data: ") or line == b"data: [DONE]":
            continue
        d = json.loads(line[6:])
        if not d.get("choices") or not d["choices"][0]["delta"].get("content"):
            continue
        t = time.perf_counter()
        if first is None:
            first = t - t0
        else:
            gaps.append(t - last)
        last, n = t, n + 1
    with lock:
        if first is not None:
            ttft.append(first)
        itl.extend(gaps)
        tokens[0] += n


def worker(c):
    for k in range(per_client):
        one(c * 1000 + k)


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(p / 100 * len(v)))] if v else float("nan")


start = time.perf_counter()
ts = [threading.Thread(target=worker, args=(c,)) for c in range(clients)]
for t in ts:
    t.start()
for t in ts:
    t.join()
wall = time.perf_counter() - start
print(json.dumps({"clients": clients, "tokens": tokens[0], "seconds": round(wall, 2),
                  "tok_s": round(tokens[0] / wall, 2), "errors": errors[0],
                  "ttft_p50_ms": round(pct(ttft, 50) * 1e3, 1), "ttft_p99_ms": round(pct(ttft, 99) * 1e3, 1),
                  "itl_p50_ms": round(pct(itl, 50) * 1e3, 2), "itl_p99_ms": round(pct(itl, 99) * 1e3, 2)}))
