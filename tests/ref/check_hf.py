#!/usr/bin/python3
"""check_hf.py - `aistack convert --hf` against the PyTorch reference.

Writes small Hugging Face checkpoints (config.json, two safetensors shards,
tokenizer.json) with ref_llama.py, converts them, and compares the engine's
logits on the GGUF with a forward pass that uses HF's own conventions
(rotate-half RoPE on the un-permuted weights, transformers' llama3 frequency
scaling) straight from the safetensors. This checks the q/k permutation, the
tensor mapping, dtype conversion and the rope_scaling translation.

  check_hf.py BIN_DIR WORK_DIR
"""
import argparse
import json
import os
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ref_llama  # noqa: E402

BIN, WORK = sys.argv[1], sys.argv[2]
failures = []


def case(label, out_type, tol, n_tokens, **kw):
    d = os.path.join(WORK, label.replace(" ", "_"))
    a = dict(arch="llama", dtype="F32", dim=64, layers=2, heads=4, kv_heads=2, ff=128, vocab=300,
             ctx=1024, theta=10000.0, tied=False, llama3=False, seed=1, o=d)
    a.update(kw)
    ref_llama.hfsynth(argparse.Namespace(**a))
    gguf = d + ".gguf"
    subprocess.run([os.path.join(BIN, "aistack"), "convert", "--hf", d, "--type", out_type,
                    "-o", gguf], check=True)
    g = ref_llama.GGUF(gguf)
    vocab = kw.get("vocab", 300)
    ok_tok = len(g.kv.get("tokenizer.ggml.tokens", [])) == vocab
    rng = np.random.default_rng(n_tokens)
    toks = [int(x) for x in rng.integers(0, vocab, n_tokens)]
    out = os.path.join(WORK, "e.f32")
    extra = ["--kv-f32"] if out_type == "f32" else []
    subprocess.run([os.path.join(BIN, "dump_logits"), "-m", gguf, "-o", out] + extra +
                   ["%s:%d" % (",".join(map(str, toks)), max(1, n_tokens - 3))], check=True)
    got = np.fromfile(out, dtype=np.float32).reshape(n_tokens, -1)
    want = ref_llama.HFModel(d).forward(toks).numpy()
    err = float(np.abs(got - want).max() / np.abs(want).max())
    ok = err <= tol and ok_tok
    print("%-40s rel err %.2e (tol %.0e), vocab %s %s" % (label, err, tol,
          "ok" if ok_tok else "MISSING", "ok" if ok else "FAIL"))
    if not ok:
        failures.append(label)


os.makedirs(WORK, exist_ok=True)
case("llama gqa f32", "f32", 1e-4, 40, arch="llama")
case("llama3 scaling f16 src", "f32", 1e-4, 200, arch="llama", dtype="F16", llama3=True,
     theta=500000, ctx=512, heads=4, kv_heads=1)
case("mistral bf16 src", "f32", 1e-4, 20, arch="mistral", dtype="BF16", heads=8, kv_heads=2)
case("qwen2 tied bias", "f32", 1e-4, 40, arch="qwen2", tied=True, heads=4, kv_heads=2)
case("qwen2 to f16", "f16", 1e-2, 40, arch="qwen2")
case("llama to bf16", "bf16", 1e-2, 40, arch="llama")


def expect_error(label, mutate, needle):
    """A damaged checkpoint is an error naming the problem, never a crash."""
    d = os.path.join(WORK, "bad_" + label.replace(" ", "_"))
    a = dict(arch="llama", dtype="F32", dim=32, layers=1, heads=2, kv_heads=1, ff=64, vocab=300,
             ctx=64, theta=10000.0, tied=False, llama3=False, seed=2, o=d)
    ref_llama.hfsynth(argparse.Namespace(**a))
    mutate(d)
    r = subprocess.run([os.path.join(BIN, "aistack"), "convert", "--hf", d, "-o", d + ".gguf"],
                       capture_output=True, text=True)
    ok = r.returncode == 1 and needle in r.stderr
    print("%-40s %s %s" % ("rejects " + label, r.stderr.strip()[:70], "ok" if ok else "FAIL"))
    if not ok:
        failures.append(label)


def edit_config(**kw):
    def f(d):
        p = os.path.join(d, "config.json")
        c = json.load(open(p))
        c.update(kw)
        json.dump(c, open(p, "w"))
    return f


def truncate_shard(d):
    p = os.path.join(d, "model-00002-of-00002.safetensors")
    data = open(p, "rb").read()
    open(p, "wb").write(data[:len(data) - 100])


expect_error("wrong hidden size", edit_config(hidden_size=64), "shape")
expect_error("unknown model type", edit_config(model_type="gpt2"), "gpt2")
expect_error("bad head count", edit_config(num_key_value_heads=3), "config.json")
expect_error("truncated shard", truncate_shard, "safetensors")
expect_error("missing tokenizer", lambda d: os.remove(os.path.join(d, "tokenizer.json")),
             "tokenizer")
print("FAILED: %d" % len(failures) if failures else "all checks passed")
sys.exit(1 if failures else 0)
