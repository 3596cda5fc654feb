"""Independent PyTorch reference for the trainer (tests/ref/test_train_torch.sh).

Reads what tests/integration/train_dump wrote, rebuilds the same llama model
in float64 with plain torch ops (per-sequence causal attention, adjacent-pair
rope, GQA, SwiGLU, RMSNorm), and checks the first micro-batch's loss and every
parameter's gradient, then ten AdamW steps (torch.optim.AdamW, clip_grad_norm_,
linear warmup + cosine schedule, gradient accumulation over micro-batches).
"""
import json
import math
import sys

import numpy as np
import torch

d = sys.argv[1]
cfg = json.load(open(f"{d}/model.json"))
flat = np.fromfile(f"{d}/params.bin", dtype=np.float32)
C, NH, KV, V = cfg["dim"], cfg["n_head"], cfg["n_kv_head"], cfg["vocab"]
hd = C // NH
torch.set_default_dtype(torch.float64)

params = {}
for t in cfg["tensors"]:
    a = flat[t["offset"]: t["offset"] + t["rows"] * t["cols"]].astype(np.float64)
    shape = (t["cols"],) if t["rows"] == 1 else (t["rows"], t["cols"])
    params[t["name"]] = torch.tensor(a.reshape(shape), requires_grad=True)

raw = np.fromfile(f"{d}/batch.bin", dtype=np.int32)
batches, at = [], 0
for _ in range(cfg["n_micro"]):
    n = int(raw[at]); at += 1
    arrs = [raw[at + k * n: at + (k + 1) * n] for k in range(4)]
    at += 4 * n
    batches.append(arrs)


def rmsnorm(x, w):
    return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + cfg["norm_eps"]) * w


def rope(x, pos):  # x (T, H, hd): rotate adjacent pairs
    i = torch.arange(hd // 2, dtype=torch.float64)
    freq = cfg["rope_theta"] ** (-2.0 * i / hd)
    ang = torch.tensor(pos, dtype=torch.float64)[:, None] * freq[None, :]
    c, s = torch.cos(ang)[:, None, :], torch.sin(ang)[:, None, :]
    a, b = x[..., 0::2], x[..., 1::2]
    out = torch.stack([a * c - b * s, a * s + b * c], dim=-1)
    return out.reshape(x.shape)


def seq_logits(tokens, pos):
    P = params
    x = P["token_embd.weight"][torch.tensor(tokens, dtype=torch.long)]
    T = len(tokens)
    mask = torch.full((T, T), float("-inf")).triu(1)
    for l in range(cfg["n_layer"]):
        g = lambda n: P[f"blk.{l}.{n}.weight"]
        h = rmsnorm(x, g("attn_norm"))
        q = rope((h @ g("attn_q").T).view(T, NH, hd), pos)
        k = rope((h @ g("attn_k").T).view(T, KV, hd), pos)
        v = (h @ g("attn_v").T).view(T, KV, hd)
        k = k.repeat_interleave(NH // KV, dim=1)
        v = v.repeat_interleave(NH // KV, dim=1)
        att = torch.einsum("thd,shd->hts", q, k) / math.sqrt(hd) + mask
        o = torch.einsum("hts,shd->thd", att.softmax(-1), v).reshape(T, NH * hd)
        x = x + o @ g("attn_output").T
        h = rmsnorm(x, g("ffn_norm"))
        x = x + (torch.nn.functional.silu(h @ g("ffn_gate").T) * (h @ g("ffn_up").T)) @ g("ffn_down").T
    out = P["output.weight"] if "output.weight" in P else P["token_embd.weight"]
    return rmsnorm(x, P["output_norm.weight"]) @ out.T


def batch_loss(b):
    tokens, targets, pos, start = b
    total, count, i = 0.0, 0, 0
    while i < len(tokens):
        j = i
        while j < len(tokens) and start[j] == i:
            j += 1
        logits = seq_logits(tokens[i:j], pos[i:j])
        tg = torch.tensor(targets[i:j], dtype=torch.long)
        keep = tg >= 0
        total = total + torch.nn.functional.cross_entropy(logits[keep], tg[keep], reduction="sum")
        count += int(keep.sum())
        i = j
    return total / count


def close(name, a, b, rtol):
    err = np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30)
    if not err <= rtol:
        print(f"FAIL {name}: max abs diff / max abs ref = {err:.3g} > {rtol}")
        return False
    return True


ok = True
grads_c = np.fromfile(f"{d}/grads.bin", dtype=np.float32)
loss0 = batch_loss(batches[0])
loss0.backward()
losses_c = [tuple(map(float, l.split()))[1:] for l in open(f"{d}/losses.txt")]
worst = 0.0
for t in cfg["tensors"]:
    gc = grads_c[t["offset"]: t["offset"] + t["rows"] * t["cols"]]
    gr = params[t["name"]].grad.numpy().reshape(-1)
    ok &= close("grad " + t["name"], gc, gr, 1e-4)
    worst = max(worst, np.max(np.abs(gc - gr)) / np.max(np.abs(gr)))
print(f"gradients: {len(cfg['tensors'])} tensors, worst relative error {worst:.2e}")

# ten AdamW steps with accumulation over the micro-batches
for p in params.values():
    p.grad = None
decay = [p for n, p in params.items() if p.dim() == 2]
nodecay = [p for n, p in params.items() if p.dim() == 1]
opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg["wd"]},
                         {"params": nodecay, "weight_decay": 0.0}],
                        lr=cfg["lr"], betas=(0.9, 0.95), eps=1e-8)
steps, warm, lr, min_lr = cfg["steps"], cfg["warmup"], cfg["lr"], cfg["min_lr"]
for step in range(steps):
    if step < warm:
        cur = lr * (step + 1) / warm
    else:
        r = (step - warm) / (steps - warm)
        cur = min_lr + 0.5 * (lr - min_lr) * (1 + math.cos(math.pi * r))
    for g in opt.param_groups:
        g["lr"] = cur
    opt.zero_grad()
    loss = 0.0
    for b in batches:
        l = batch_loss(b) / len(batches)
        l.backward()
        loss += float(l)
    norm = float(torch.nn.utils.clip_grad_norm_(list(params.values()), cfg["clip"]))
    opt.step()
    lc, nc = losses_c[step]
    rel = abs(lc - loss) / abs(loss)
    print(f"step {step}: loss C {lc:.7f} torch {loss:.7f} rel {rel:.1e}  grad norm C {nc:.5f} torch {norm:.5f}")
    if not rel <= 1e-4:
        print(f"FAIL step {step} loss")
        ok = False
sys.exit(0 if ok else 1)
