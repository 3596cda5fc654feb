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
print("FAILED: %d" % len(failures) if failures else "all checks passed")
sys.exit(1 if failures else 0)
