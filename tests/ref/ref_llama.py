#!/usr/bin/python3
"""ref_llama.py - an independent PyTorch reference for the engine's llama-family models.

It reads GGUF files with its own reader (numpy dequantization of F32, F16, BF16,
Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K), runs a plain float64 forward
pass of the `llama` and `qwen2` architectures (GQA, RoPE normal / NeoX with
linear / llama3 scaling via rope_freqs, RMSNorm, SwiGLU, tied or separate
output) over the whole sequence (no cache), and writes synthetic GGUF models
with random weights for the tests.

Not for: speed, or sharing code with the engine (that would defeat the point).
Run with Debian's /usr/bin/python3 (python3-torch, python3-numpy).

  ref_llama.py synth --arch llama --type f32 -o m.gguf [shape options]
  ref_llama.py logits m.gguf --tokens 1,2,3 -o logits.f32   (all positions)
  ref_llama.py greedy m.gguf --tokens 1 -n 20               (prints token ids)
  ref_llama.py hfsynth --arch llama -o DIR                   (HF checkpoint: config.json,
                                                              2 safetensors shards, tokenizer.json)
  ref_llama.py hflogits DIR --tokens 1,2,3 -o logits.f32     (HF semantics: rotate-half RoPE
                                                              on the un-permuted weights)
"""
import argparse
import json
import math
import os
import struct
import sys

import numpy as np
import torch

# ---- GGUF reading -----------------------------------------------------------

GGML_F32, GGML_F16, GGML_Q4_0, GGML_Q4_1 = 0, 1, 2, 3
GGML_Q5_0, GGML_Q5_1, GGML_Q8_0 = 6, 7, 8
GGML_Q4_K, GGML_Q5_K, GGML_Q6_K, GGML_BF16 = 12, 13, 14, 30

# type -> (elements per block, bytes per block)
BLOCK = {
    GGML_F32: (1, 4), GGML_F16: (1, 2), GGML_BF16: (1, 2),
    GGML_Q4_0: (32, 18), GGML_Q4_1: (32, 20), GGML_Q5_0: (32, 22), GGML_Q5_1: (32, 24),
    GGML_Q8_0: (32, 34), GGML_Q4_K: (256, 144), GGML_Q5_K: (256, 176), GGML_Q6_K: (256, 210),
}

SCALAR_FMT = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?",
              10: "<Q", 11: "<q", 12: "<d"}


class Reader:
    def __init__(self, data):
        self.d = data
        self.o = 0

    def take(self, n):
        if self.o + n > len(self.d):
            raise ValueError("truncated GGUF")
        b = self.d[self.o:self.o + n]
        self.o += n
        return b

    def scalar(self, t):
        fmt = SCALAR_FMT[t]
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def string(self):
        n = self.scalar(10)
        return bytes(self.take(n)).decode("utf-8", errors="replace")

    def value(self, t):
        if t == 8:
            return self.string()
        if t == 9:
            et = self.scalar(4)
            n = self.scalar(10)
            return [self.value(et) for _ in range(n)]
        return self.scalar(t)


class GGUF:
    def __init__(self, path):
        with open(path, "rb") as f:
            self.data = f.read()
        r = Reader(self.data)
        if bytes(r.take(4)) != b"GGUF":
            raise ValueError("not a GGUF file")
        self.version = r.scalar(4)
        if self.version not in (2, 3):
            raise ValueError("unsupported GGUF version %d" % self.version)
        n_tensors = r.scalar(10)
        n_kv = r.scalar(10)
        self.kv = {}
        for _ in range(n_kv):
            k = r.string()
            t = r.scalar(4)
            self.kv[k] = r.value(t)
        self.tensors = {}
        for _ in range(n_tensors):
            name = r.string()
            nd = r.scalar(4)
            ne = [r.scalar(10) for _ in range(nd)]
            t = r.scalar(4)
            off = r.scalar(10)
            self.tensors[name] = (ne, t, off)
        align = self.kv.get("general.alignment", 32)
        self.data_start = (r.o + align - 1) // align * align

    def tensor(self, name):
        """The tensor as a float64 numpy array of shape reversed(ne) (rows last-dim contiguous)."""
        ne, t, off = self.tensors[name]
        n = int(np.prod(ne))
        bs, ts = BLOCK[t]
        nbytes = n // bs * ts
        raw = np.frombuffer(self.data, dtype=np.uint8, count=nbytes, offset=self.data_start + off)
        x = dequantize(t, raw, n)
        return x.reshape(list(reversed(ne)))


def _f16(b):
    return b.view(np.float16).astype(np.float64)


def _k_scale_min(sc):
    """Q4_K/Q5_K 6-bit scales and mins, sc: (nb, 12) uint8 -> (nb, 8), (nb, 8)."""
    sc = sc.astype(np.int32)
    s = np.zeros((sc.shape[0], 8), np.int32)
    m = np.zeros((sc.shape[0], 8), np.int32)
    for j in range(8):
        if j < 4:
            s[:, j] = sc[:, j] & 63
            m[:, j] = sc[:, j + 4] & 63
        else:
            s[:, j] = (sc[:, j + 4] & 0xF) | ((sc[:, j - 4] >> 6) << 4)
            m[:, j] = (sc[:, j + 4] >> 4) | ((sc[:, j] >> 6) << 4)
    return s, m


def dequantize(t, raw, n):
    if t == GGML_F32:
        return raw.view(np.float32).astype(np.float64)
    if t == GGML_F16:
        return _f16(raw)
    if t == GGML_BF16:
        return (raw.view(np.uint16).astype(np.uint32) << 16).view(np.float32).astype(np.float64)
    bs, ts = BLOCK[t]
    b = raw.reshape(-1, ts)
    if t == GGML_Q8_0:
        d = _f16(b[:, 0:2].copy())
        q = b[:, 2:].view(np.int8).astype(np.float64)
        return (d * q).reshape(-1)
    if t in (GGML_Q4_0, GGML_Q4_1):
        d = _f16(b[:, 0:2].copy())
        qs = b[:, 4 if t == GGML_Q4_1 else 2:].astype(np.int32)
        q = np.concatenate([qs & 0xF, qs >> 4], axis=1).astype(np.float64)
        if t == GGML_Q4_0:
            return ((q - 8) * d).reshape(-1)
        m = _f16(b[:, 2:4].copy())
        return (q * d + m).reshape(-1)
    if t in (GGML_Q5_0, GGML_Q5_1):
        o = 4 if t == GGML_Q5_1 else 2
        d = _f16(b[:, 0:2].copy())
        qh = b[:, o:o + 4].copy().view(np.uint32).astype(np.int64)
        qs = b[:, o + 4:].astype(np.int64)
        j = np.arange(16)
        h0 = ((qh >> j) << 4) & 0x10
        h1 = (qh >> (j + 12)) & 0x10
        q = np.concatenate([(qs & 0xF) | h0, (qs >> 4) | h1], axis=1).astype(np.float64)
        if t == GGML_Q5_0:
            return ((q - 16) * d).reshape(-1)
        m = _f16(b[:, 2:4].copy())
        return (q * d + m).reshape(-1)
    if t in (GGML_Q4_K, GGML_Q5_K):
        d = _f16(b[:, 0:2].copy())
        dmin = _f16(b[:, 2:4].copy())
        s, m = _k_scale_min(b[:, 4:16])
        if t == GGML_Q4_K:
            qs = b[:, 16:144].astype(np.int32)
            qh = None
        else:
            qh = b[:, 16:48].astype(np.int32)
            qs = b[:, 48:176].astype(np.int32)
        out = np.zeros((b.shape[0], 256))
        for c in range(4):  # 64-element chunks: low nibbles then high nibbles of 32 bytes
            ql = qs[:, 32 * c:32 * c + 32]
            lo, hi = ql & 0xF, ql >> 4
            if qh is not None:
                lo = lo + np.where(qh & (1 << (2 * c)), 16, 0)
                hi = hi + np.where(qh & (2 << (2 * c)), 16, 0)
            out[:, 64 * c:64 * c + 32] = d * s[:, 2 * c:2 * c + 1] * lo - dmin * m[:, 2 * c:2 * c + 1]
            out[:, 64 * c + 32:64 * c + 64] = (d * s[:, 2 * c + 1:2 * c + 2] * hi
                                               - dmin * m[:, 2 * c + 1:2 * c + 2])
        return out.reshape(-1)
    if t == GGML_Q6_K:
        ql = b[:, 0:128].astype(np.int32)
        qh = b[:, 128:192].astype(np.int32)
        sc = b[:, 192:208].view(np.int8).astype(np.float64)
        d = _f16(b[:, 208:210].copy())
        out = np.zeros((b.shape[0], 256))
        for half in range(2):
            l_ = ql[:, 64 * half:64 * half + 64]
            h_ = qh[:, 32 * half:32 * half + 32]
            s_ = sc[:, 8 * half:8 * half + 8]
            q1 = ((l_[:, :32] & 0xF) | ((h_ & 3) << 4)) - 32
            q2 = ((l_[:, 32:] & 0xF) | (((h_ >> 2) & 3) << 4)) - 32
            q3 = ((l_[:, :32] >> 4) | (((h_ >> 4) & 3) << 4)) - 32
            q4 = ((l_[:, 32:] >> 4) | (((h_ >> 6) & 3) << 4)) - 32
            for k, q in enumerate((q1, q2, q3, q4)):
                for l16 in range(2):
                    is_ = l16 + 2 * k
                    seg = slice(128 * half + 32 * k + 16 * l16, 128 * half + 32 * k + 16 * l16 + 16)
                    out[:, seg] = d * s_[:, is_:is_ + 1] * q[:, 16 * l16:16 * l16 + 16]
        return out.reshape(-1)
    raise ValueError("unsupported tensor type %d" % t)


# ---- model ------------------------------------------------------------------

def q8_blocks(x):
    """x with each 32-element block rounded to 8 bits (scale amax/127), as the kernels quantize
    activations for quantized weights (kernels.h)."""
    sh = x.shape
    b = x.reshape(-1, 32)
    d = b.abs().max(dim=1, keepdim=True).values / 127
    inv = torch.where(d > 0, 1 / torch.where(d > 0, d, torch.ones_like(d)), torch.zeros_like(d))
    return (torch.round(b * inv) * d).reshape(sh)


class Model:
    def __init__(self, path, act_q8=False):
        """act_q8: emulate the kernels' 8-bit activations in products with quantized weights."""
        g = GGUF(path)
        self.act_q8 = act_q8
        self.g = g
        arch = g.kv["general.architecture"]
        if arch not in ("llama", "qwen2"):
            raise ValueError("unsupported architecture " + arch)
        self.arch = arch
        kv = lambda k, dflt=None: g.kv.get(arch + "." + k, dflt)
        self.n_embd = kv("embedding_length")
        self.n_layer = kv("block_count")
        self.n_head = kv("attention.head_count")
        self.n_head_kv = kv("attention.head_count_kv", self.n_head)
        self.head_dim = kv("attention.key_length", self.n_embd // self.n_head)
        self.n_rot = kv("rope.dimension_count", self.head_dim)
        self.eps = kv("attention.layer_norm_rms_epsilon", 1e-5)
        theta = kv("rope.freq_base", 10000.0)
        scale = 1.0
        if kv("rope.scaling.type") == "linear":
            scale = 1.0 / kv("rope.scaling.factor")
        half = self.n_rot // 2
        freq = scale * theta ** (-2.0 * np.arange(half) / self.n_rot)
        if "rope_freqs.weight" in g.tensors:
            freq = freq / g.tensor("rope_freqs.weight")
        elif kv("rope.scaling.type") == "llama3":
            freq = freq / llama3_divisors(theta, self.n_rot, kv("rope.scaling.factor", 8.0),
                                          kv("rope.scaling.low_freq_factor", 1.0),
                                          kv("rope.scaling.high_freq_factor", 4.0),
                                          kv("rope.scaling.original_context_length", 8192))
        self.freq = torch.tensor(freq, dtype=torch.float64)
        self.neox = arch == "qwen2"
        T = lambda n: torch.from_numpy(g.tensor(n).copy())
        self.emb = T("token_embd.weight")
        self.out = T("output.weight") if "output.weight" in g.tensors else self.emb
        outname = "output.weight" if "output.weight" in g.tensors else "token_embd.weight"
        self.out_q = g.tensors[outname][1] not in (GGML_F32, GGML_F16, GGML_BF16)
        self.out_norm = T("output_norm.weight")
        self.layers = []
        for i in range(self.n_layer):
            p = "blk.%d." % i
            L = {k: T(p + k + ".weight") for k in ("attn_norm", "attn_q", "attn_k", "attn_v",
                                                   "attn_output", "ffn_norm", "ffn_gate",
                                                   "ffn_up", "ffn_down")}
            for k in ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up",
                      "ffn_down"):
                L[k + ".q"] = g.tensors[p + k + ".weight"][1] not in (GGML_F32, GGML_F16,
                                                                       GGML_BF16)
            for k in ("attn_q", "attn_k", "attn_v"):
                if p + k + ".bias" in g.tensors:
                    L[k + ".bias"] = T(p + k + ".bias")
            self.layers.append(L)

    def lin(self, x, w, quantized):
        if self.act_q8 and quantized:
            x = q8_blocks(x)
        return x @ w.T

    def rmsnorm(self, x, w):
        return x / torch.sqrt((x * x).mean(-1, keepdim=True) + self.eps) * w

    def rope(self, x, pos):
        # x: (T, H, hd)
        half = self.n_rot // 2
        ang = pos[:, None].double() * self.freq[None, :]  # (T, half)
        c, s = torch.cos(ang)[:, None, :], torch.sin(ang)[:, None, :]
        x = x.clone()
        if self.neox:
            a, b = x[..., :half].clone(), x[..., half:self.n_rot].clone()
            x[..., :half] = a * c - b * s
            x[..., half:self.n_rot] = a * s + b * c
        else:
            a, b = x[..., 0:self.n_rot:2].clone(), x[..., 1:self.n_rot:2].clone()
            x[..., 0:self.n_rot:2] = a * c - b * s
            x[..., 1:self.n_rot:2] = a * s + b * c
        return x

    def forward(self, tokens):
        """Logits (T, n_vocab) for every position of tokens."""
        T_ = len(tokens)
        hd, H, Hkv = self.head_dim, self.n_head, self.n_head_kv
        x = self.emb[torch.tensor(tokens)]
        pos = torch.arange(T_)
        mask = torch.full((T_, T_), float("-inf"), dtype=torch.float64).triu(1)
        for L in self.layers:
            h = self.rmsnorm(x, L["attn_norm"])
            q = self.lin(h, L["attn_q"], L["attn_q.q"])
            k = self.lin(h, L["attn_k"], L["attn_k.q"])
            v = self.lin(h, L["attn_v"], L["attn_v.q"])
            if "attn_q.bias" in L:
                q, k, v = q + L["attn_q.bias"], k + L["attn_k.bias"], v + L["attn_v.bias"]
            q = self.rope(q.view(T_, H, hd), pos)
            k = self.rope(k.view(T_, Hkv, hd), pos)
            v = v.view(T_, Hkv, hd)
            rep = H // Hkv
            k = k.repeat_interleave(rep, dim=1)
            v = v.repeat_interleave(rep, dim=1)
            att = torch.einsum("thd,shd->hts", q, k) / math.sqrt(hd) + mask
            att = torch.softmax(att, dim=-1)
            o = torch.einsum("hts,shd->thd", att, v).reshape(T_, H * hd)
            x = x + self.lin(o, L["attn_output"], L["attn_output.q"])
            h = self.rmsnorm(x, L["ffn_norm"])
            g_ = self.lin(h, L["ffn_gate"], L["ffn_gate.q"])
            u = self.lin(h, L["ffn_up"], L["ffn_up.q"])
            x = x + self.lin(torch.nn.functional.silu(g_) * u, L["ffn_down"], L["ffn_down.q"])
        return self.lin(self.rmsnorm(x, self.out_norm), self.out, self.out_q)

    def greedy(self, tokens, n):
        toks = list(tokens)
        for _ in range(n):
            logits = self.forward(toks)[-1]
            toks.append(int(torch.argmax(logits)))
        return toks[len(tokens):]


# ---- GGUF writing (synthetic models) ----------------------------------------

def _w_str(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def _w_kv(key, val):
    out = _w_str(key)
    if isinstance(val, str):
        return out + struct.pack("<I", 8) + _w_str(val)
    if isinstance(val, bool):
        return out + struct.pack("<I?", 7, val)
    if isinstance(val, float):
        return out + struct.pack("<If", 6, val)
    if isinstance(val, int):
        return out + struct.pack("<II", 4, val)
    if isinstance(val, list):
        if all(isinstance(v, str) for v in val):
            return out + struct.pack("<IIQ", 9, 8, len(val)) + b"".join(_w_str(v) for v in val)
        if all(isinstance(v, float) for v in val):
            return out + struct.pack("<IIQ", 9, 6, len(val)) + struct.pack("<%df" % len(val), *val)
        return out + struct.pack("<IIQ", 9, 5, len(val)) + struct.pack("<%di" % len(val), *val)
    raise TypeError(key)


def _encode(t, a):
    a = np.ascontiguousarray(a, dtype=np.float32)
    if t == GGML_F32:
        return a.tobytes()
    if t == GGML_F16:
        return a.astype(np.float16).tobytes()
    if t == GGML_BF16:
        u = a.view(np.uint32).astype(np.uint64)
        u = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
        return u.astype(np.uint16).tobytes()
    if t == GGML_Q8_0:
        b = a.reshape(-1, 32)
        amax = np.abs(b).max(axis=1)
        d = amax / 127.0
        inv = np.where(d > 0, 1.0 / np.where(d > 0, d, 1), 0)
        q = np.round(b * inv[:, None]).astype(np.int8)
        out = np.zeros((b.shape[0], 34), np.uint8)
        out[:, 0:2] = d.astype(np.float16).view(np.uint8).reshape(-1, 2)
        out[:, 2:] = q.view(np.uint8)
        return out.tobytes()
    if t == GGML_Q4_0:
        b = a.reshape(-1, 32)
        idx = np.abs(b).argmax(axis=1)
        mx = b[np.arange(b.shape[0]), idx]
        d = mx / -8.0
        inv = np.where(d != 0, 1.0 / np.where(d != 0, d, 1), 0)
        q = np.clip(np.floor(b * inv[:, None] + 8.5), 0, 15).astype(np.uint8)
        out = np.zeros((b.shape[0], 18), np.uint8)
        out[:, 0:2] = d.astype(np.float16).view(np.uint8).reshape(-1, 2)
        out[:, 2:] = q[:, :16] | (q[:, 16:] << 4)
        return out.tobytes()
    raise ValueError("synth cannot write type %d" % t)


def write_gguf(path, kvs, tensors, align=32):
    """tensors: list of (name, ggml type, numpy array of shape reversed(ne))."""
    head = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs))
    head += b"".join(_w_kv(k, v) for k, v in kvs)
    blobs, off = [], 0
    for name, t, a in tensors:
        ne = list(reversed(a.shape))
        head += _w_str(name) + struct.pack("<I", len(ne)) + struct.pack("<%dQ" % len(ne), *ne)
        head += struct.pack("<IQ", t, off)
        blob = _encode(t, a)
        pad = (-len(blob)) % align
        blobs.append(blob + b"\0" * pad)
        off += len(blob) + pad
    head += b"\0" * ((-len(head)) % align)
    with open(path, "wb") as f:
        f.write(head)
        for b in blobs:
            f.write(b)


def llama3_divisors(theta, n_rot, factor, lo, hi, orig):
    out = []
    for j in range(n_rot // 2):
        freq = theta ** (-2.0 * j / n_rot)
        wl = 2 * math.pi / freq
        if wl < orig / hi:
            out.append(1.0)
        elif wl > orig / lo:
            out.append(factor)
        else:
            s = (orig / wl - lo) / (hi - lo)
            out.append(1.0 / ((1 - s) / factor + s))
    return np.array(out)


def synth(a):
    rng = np.random.default_rng(a.seed)
    types = {"f32": GGML_F32, "f16": GGML_F16, "bf16": GGML_BF16, "q8_0": GGML_Q8_0,
             "q4_0": GGML_Q4_0}
    wt = types[a.type]
    d, hd = a.dim, a.dim // a.heads
    arch = a.arch
    kvs = [("general.architecture", arch), ("general.name", "synthetic"),
           (arch + ".context_length", a.ctx), (arch + ".embedding_length", d),
           (arch + ".block_count", a.layers), (arch + ".feed_forward_length", a.ff),
           (arch + ".attention.head_count", a.heads),
           (arch + ".attention.head_count_kv", a.kv_heads),
           (arch + ".rope.dimension_count", hd),
           (arch + ".rope.freq_base", float(a.theta)),
           (arch + ".attention.layer_norm_rms_epsilon", 1e-5 if arch == "llama" else 1e-6)]
    if a.linear_scale:
        kvs += [(arch + ".rope.scaling.type", "linear"),
                (arch + ".rope.scaling.factor", float(a.linear_scale))]
    # a byte-level vocabulary so the file also carries a tokenizer
    toks = ["<unk>", "<s>", "</s>"] + ["<0x%02X>" % i for i in range(256)]
    toks += ["tok%d" % i for i in range(a.vocab - len(toks))]
    toks = toks[:a.vocab]
    ttype = [2, 3, 3] + [6] * 256 + [1] * (a.vocab - 259)
    kvs += [("tokenizer.ggml.model", "llama"), ("tokenizer.ggml.tokens", toks),
            ("tokenizer.ggml.scores", [float(-i) for i in range(a.vocab)]),
            ("tokenizer.ggml.token_type", ttype[:a.vocab]),
            ("tokenizer.ggml.bos_token_id", 1), ("tokenizer.ggml.eos_token_id", 2)]
    W = lambda *shape: rng.standard_normal(shape) * (1.0 / math.sqrt(shape[-1]))
    N = lambda n: 1.0 + 0.1 * rng.standard_normal(n)
    tens = [("token_embd.weight", wt, rng.standard_normal((a.vocab, d)))]
    if not a.tied:
        tens.append(("output.weight", wt, W(a.vocab, d)))
    tens.append(("output_norm.weight", GGML_F32, N(d)))
    if a.llama3:
        tens.append(("rope_freqs.weight", GGML_F32,
                     llama3_divisors(a.theta, hd, 8.0, 1.0, 4.0, a.ctx // 4)))
    if getattr(a, "llama3_meta", False):  # scaling from metadata only, no rope_freqs tensor
        kvs += [(arch + ".rope.scaling.type", "llama3"), (arch + ".rope.scaling.factor", 16.0),
                (arch + ".rope.scaling.low_freq_factor", 2.0),
                (arch + ".rope.scaling.high_freq_factor", 8.0),
                (arch + ".rope.scaling.original_context_length", a.ctx // 2)]
    qd, kvd = a.heads * hd, a.kv_heads * hd
    for i in range(a.layers):
        p = "blk.%d." % i
        tens += [(p + "attn_norm.weight", GGML_F32, N(d)), (p + "ffn_norm.weight", GGML_F32, N(d)),
                 (p + "attn_q.weight", wt, W(qd, d)), (p + "attn_k.weight", wt, W(kvd, d)),
                 (p + "attn_v.weight", wt, W(kvd, d)), (p + "attn_output.weight", wt, W(d, qd)),
                 (p + "ffn_gate.weight", wt, W(a.ff, d)), (p + "ffn_up.weight", wt, W(a.ff, d)),
                 (p + "ffn_down.weight", wt, W(d, a.ff))]
        if arch == "qwen2":
            tens += [(p + "attn_q.bias", GGML_F32, 0.5 * rng.standard_normal(qd)),
                     (p + "attn_k.bias", GGML_F32, 0.5 * rng.standard_normal(kvd)),
                     (p + "attn_v.bias", GGML_F32, 0.5 * rng.standard_normal(kvd))]
    write_gguf(a.o, kvs, tens)


# ---- Hugging Face checkpoints ------------------------------------------------

ST_DTYPES = {"F32": np.float32, "F16": np.float16, "BF16": "bf16"}


def write_safetensors(path, tensors):
    """tensors: dict name -> (dtype name, numpy array)."""
    header, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
    for name, (dt, a) in tensors.items():
        a32 = np.ascontiguousarray(a, dtype=np.float32)
        if dt == "F32":
            b = a32.tobytes()
        elif dt == "F16":
            b = a32.astype(np.float16).tobytes()
        else:
            b = _encode(GGML_BF16, a32)
        header[name] = {"dtype": dt, "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b" " * ((-len(h)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for b in blobs:
            f.write(b)


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    out = {}
    for name, v in header.items():
        if name == "__metadata__":
            continue
        b, e = v["data_offsets"]
        raw = np.frombuffer(data, dtype=np.uint8, count=e - b, offset=8 + n + b)
        if v["dtype"] == "BF16":
            x = dequantize(GGML_BF16, raw, (e - b) // 2)
        else:
            x = raw.view(ST_DTYPES[v["dtype"]]).astype(np.float64)
        out[name] = x.reshape(v["shape"])
    return out


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def hf_tokenizer_json(vocab_size):
    """A small byte-level BPE tokenizer.json: 256 bytes, merges, one special token last."""
    b2u = bytes_to_unicode()
    vocab = {b2u[b]: b for b in range(256)}
    merges = []
    letters = "ethaoinsrd"
    for a in letters:
        for b in letters:
            if len(vocab) >= vocab_size - 1:
                break
            merges.append(a + " " + b)
            vocab[a + b] = len(vocab)
    eos = len(vocab)
    return {"version": "1.0", "truncation": None, "padding": None,
            "added_tokens": [{"id": eos, "content": "<|endoftext|>", "single_word": False,
                              "lstrip": False, "rstrip": False, "normalized": False,
                              "special": True}],
            "normalizer": None,
            "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False,
                              "trim_offsets": True, "use_regex": True},
            "post_processor": None, "decoder": {"type": "ByteLevel"},
            "model": {"type": "BPE", "dropout": None, "unk_token": None,
                      "continuing_subword_prefix": None, "end_of_word_suffix": None,
                      "fuse_unk": False, "byte_fallback": False, "vocab": vocab,
                      "merges": merges}}


def hfsynth(a):
    rng = np.random.default_rng(a.seed)
    os.makedirs(a.o, exist_ok=True)
    d, H, Hkv, ff, V, nl = a.dim, a.heads, a.kv_heads, a.ff, a.vocab, a.layers
    hd = d // H
    cfg = {"architectures": ["Qwen2ForCausalLM" if a.arch == "qwen2" else "LlamaForCausalLM"],
           "model_type": a.arch, "hidden_size": d, "intermediate_size": ff,
           "num_hidden_layers": nl, "num_attention_heads": H, "num_key_value_heads": Hkv,
           "max_position_embeddings": a.ctx, "rms_norm_eps": 1e-5, "rope_theta": a.theta,
           "tie_word_embeddings": bool(a.tied), "vocab_size": V, "torch_dtype": "float32"}
    if a.llama3:
        cfg["rope_scaling"] = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                               "high_freq_factor": 4.0,
                               "original_max_position_embeddings": a.ctx // 4}
    with open(os.path.join(a.o, "config.json"), "w") as f:
        json.dump(cfg, f)
    with open(os.path.join(a.o, "tokenizer.json"), "w") as f:
        json.dump(hf_tokenizer_json(V), f)
    W = lambda *shape: rng.standard_normal(shape) * (1.0 / math.sqrt(shape[-1]))
    N = lambda n: 1.0 + 0.1 * rng.standard_normal(n)
    dt = a.dtype
    shards = [{}, {}]
    shards[0]["model.embed_tokens.weight"] = (dt, rng.standard_normal((V, d)))
    if not a.tied:
        shards[1]["lm_head.weight"] = (dt, W(V, d))
    shards[1]["model.norm.weight"] = (dt, N(d))
    for i in range(nl):
        p = "model.layers.%d." % i
        s = shards[i % 2]
        s[p + "input_layernorm.weight"] = (dt, N(d))
        s[p + "post_attention_layernorm.weight"] = (dt, N(d))
        s[p + "self_attn.q_proj.weight"] = (dt, W(H * hd, d))
        s[p + "self_attn.k_proj.weight"] = (dt, W(Hkv * hd, d))
        s[p + "self_attn.v_proj.weight"] = (dt, W(Hkv * hd, d))
        s[p + "self_attn.o_proj.weight"] = (dt, W(d, H * hd))
        s[p + "mlp.gate_proj.weight"] = (dt, W(ff, d))
        s[p + "mlp.up_proj.weight"] = (dt, W(ff, d))
        s[p + "mlp.down_proj.weight"] = (dt, W(d, ff))
        if a.arch == "qwen2":
            s[p + "self_attn.q_proj.bias"] = (dt, 0.5 * rng.standard_normal(H * hd))
            s[p + "self_attn.k_proj.bias"] = (dt, 0.5 * rng.standard_normal(Hkv * hd))
            s[p + "self_attn.v_proj.bias"] = (dt, 0.5 * rng.standard_normal(Hkv * hd))
        s[p + "self_attn.rotary_emb.inv_freq"] = ("F32", np.zeros(hd // 2))  # ignored
    for k, s in enumerate(shards):
        write_safetensors(os.path.join(a.o, "model-%05d-of-00002.safetensors" % (k + 1)), s)


class HFModel(Model):
    """The same forward pass over a Hugging Face checkpoint, with HF's own conventions:
    rotate-half RoPE (pairs (i, i + d/2)) on the un-permuted q/k weights, for every arch."""

    def __init__(self, path):
        cfg = json.load(open(os.path.join(path, "config.json")))
        t = {}
        for fn in sorted(os.listdir(path)):
            if fn.endswith(".safetensors"):
                t.update(read_safetensors(os.path.join(path, fn)))
        T = lambda n: torch.from_numpy(np.ascontiguousarray(t[n]))
        self.act_q8 = False
        self.n_embd = cfg["hidden_size"]
        self.n_head = cfg["num_attention_heads"]
        self.n_head_kv = cfg.get("num_key_value_heads", self.n_head)
        self.head_dim = cfg.get("head_dim", self.n_embd // self.n_head)
        self.n_rot = self.head_dim
        self.eps = cfg.get("rms_norm_eps", 1e-6)
        theta = cfg.get("rope_theta", 10000.0)
        inv = theta ** (-np.arange(0, self.head_dim, 2) / self.head_dim)
        rs = cfg.get("rope_scaling")
        if rs and rs.get("rope_type", rs.get("type")) == "llama3":
            # transformers' _compute_llama3_parameters
            factor, lo, hi = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"]
            old = rs["original_max_position_embeddings"]
            wl = 2 * math.pi / inv
            smooth = (old / wl - lo) / (hi - lo)
            scaled = np.where(wl > old / lo, inv / factor, inv)
            mid = ~(wl < old / hi) & ~(wl > old / lo)
            inv = np.where(mid, (1 - smooth) * scaled / factor + smooth * scaled, scaled)
        self.freq = torch.tensor(inv, dtype=torch.float64)
        self.neox = True
        self.emb = T("model.embed_tokens.weight")
        self.out = self.emb if cfg.get("tie_word_embeddings") else T("lm_head.weight")
        self.out_q = False
        self.out_norm = T("model.norm.weight")
        self.layers = []
        names = {"attn_norm": "input_layernorm", "attn_q": "self_attn.q_proj",
                 "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
                 "attn_output": "self_attn.o_proj", "ffn_norm": "post_attention_layernorm",
                 "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj"}
        for i in range(cfg["num_hidden_layers"]):
            p = "model.layers.%d." % i
            L = {}
            for g, h in names.items():
                L[g] = T(p + h + ".weight")
                L[g + ".q"] = False
            for g in ("attn_q", "attn_k", "attn_v"):
                if p + names[g] + ".bias" in t:
                    L[g + ".bias"] = T(p + names[g] + ".bias")
            self.layers.append(L)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("synth")
    s.add_argument("--arch", default="llama", choices=["llama", "qwen2"])
    s.add_argument("--type", default="f32")
    s.add_argument("--dim", type=int, default=64)
    s.add_argument("--layers", type=int, default=2)
    s.add_argument("--heads", type=int, default=4)
    s.add_argument("--kv-heads", type=int, default=2)
    s.add_argument("--ff", type=int, default=128)
    s.add_argument("--vocab", type=int, default=300)
    s.add_argument("--ctx", type=int, default=1024)
    s.add_argument("--theta", type=float, default=10000.0)
    s.add_argument("--tied", action="store_true")
    s.add_argument("--llama3", action="store_true", help="write llama3 rope_freqs")
    s.add_argument("--llama3-meta", action="store_true", help="llama3 scaling as metadata only")
    s.add_argument("--linear-scale", type=float, default=0)
    s.add_argument("--seed", type=int, default=1)
    s.add_argument("-o", required=True)
    lg = sub.add_parser("logits")
    lg.add_argument("model")
    lg.add_argument("--tokens", required=True)
    lg.add_argument("-o", required=True)
    gr = sub.add_parser("greedy")
    gr.add_argument("model")
    gr.add_argument("--tokens", required=True)
    gr.add_argument("-n", type=int, default=16)
    hs = sub.add_parser("hfsynth")
    hs.add_argument("--arch", default="llama", choices=["llama", "qwen2", "mistral"])
    hs.add_argument("--dtype", default="F32", choices=["F32", "F16", "BF16"])
    hs.add_argument("--dim", type=int, default=64)
    hs.add_argument("--layers", type=int, default=2)
    hs.add_argument("--heads", type=int, default=4)
    hs.add_argument("--kv-heads", type=int, default=2)
    hs.add_argument("--ff", type=int, default=128)
    hs.add_argument("--vocab", type=int, default=300)
    hs.add_argument("--ctx", type=int, default=1024)
    hs.add_argument("--theta", type=float, default=10000.0)
    hs.add_argument("--tied", action="store_true")
    hs.add_argument("--llama3", action="store_true")
    hs.add_argument("--seed", type=int, default=1)
    hs.add_argument("-o", required=True)
    hl = sub.add_parser("hflogits")
    hl.add_argument("model")
    hl.add_argument("--tokens", required=True)
    hl.add_argument("-o", required=True)
    a = ap.parse_args()
    if a.cmd == "synth":
        synth(a)
        return 0
    if a.cmd == "hfsynth":
        hfsynth(a)
        return 0
    m = HFModel(a.model) if a.cmd == "hflogits" else Model(a.model)
    toks = [int(t) for t in a.tokens.split(",")]
    if a.cmd in ("logits", "hflogits"):
        m.forward(toks).numpy().astype(np.float32).tofile(a.o)
    else:
        print(" ".join(str(t) for t in m.greedy(toks, a.n)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
