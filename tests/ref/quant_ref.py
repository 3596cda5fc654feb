#!/usr/bin/env python3
"""quant_ref.py - an independent numpy reading of GGUF block layouts.

Checks `aistack quantize` against code written from the format description
alone (no shared source with src/engine):
  1. writes an f32 GGUF with its own minimal writer,
  2. has aistack quantize it to q8_0, q4_0, q4_k_m (-> q4_K / q6_K) and q6_k,
  3. parses the results with its own reader and dequantizes Q8_0, Q4_0, Q4_K
     and Q6_K blocks in numpy,
  4. requires those values to equal aistack's own dequantization (aistack
     quantize X f32) exactly, and to be close to the original floats,
  5. requires Q8_0 and Q4_0 blocks to be bit-identical to a numpy quantizer.

usage: quant_ref.py AISTACK_BINARY WORKDIR
"""
import os
import struct
import subprocess
import sys

import numpy as np

GGML_F32, GGML_Q4_0, GGML_Q8_0, GGML_Q4_K, GGML_Q6_K = 0, 2, 8, 12, 14
BLOCK = {GGML_F32: (1, 4), GGML_Q4_0: (32, 18), GGML_Q8_0: (32, 34),
         GGML_Q4_K: (256, 144), GGML_Q6_K: (256, 210), 1: (1, 2), 6: (32, 22), 7: (32, 24)}


# ---- minimal GGUF writer / reader ---------------------------------------------

def write_gguf(path, tensors, kv):
    out = bytearray(b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kv)))
    for k, v in kv.items():
        kb = k.encode()
        out += struct.pack("<Q", len(kb)) + kb
        if isinstance(v, str):
            vb = v.encode()
            out += struct.pack("<IQ", 8, len(vb)) + vb
        else:
            out += struct.pack("<II", 4, v)
    off = 0
    offsets = []
    for name, arr in tensors:
        nb = name.encode()
        out += struct.pack("<Q", len(nb)) + nb
        dims = list(reversed(arr.shape))  # ggml order: ne[0] is the row length
        out += struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
        out += struct.pack("<IQ", GGML_F32, off)
        offsets.append(off)
        off += arr.nbytes
        off += (-off) % 32
    out += b"\0" * ((-len(out)) % 32)
    base = len(out)
    for (name, arr), o in zip(tensors, offsets):
        out += b"\0" * (base + o - len(out))
        out += arr.astype("<f4").tobytes()
    with open(path, "wb") as f:
        f.write(out)


def read_gguf(path):
    data = open(path, "rb").read()
    assert data[:4] == b"GGUF", "bad magic"
    _, n_t, n_kv = struct.unpack_from("<IQQ", data, 4)
    p = 24
    sizes = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}

    def rstr(p):
        n, = struct.unpack_from("<Q", data, p)
        return data[p + 8:p + 8 + n].decode("utf-8", "replace"), p + 8 + n

    def skip_val(t, p):
        if t == 8:
            return rstr(p)[1]
        if t == 9:
            at, n = struct.unpack_from("<IQ", data, p)
            p += 12
            for _ in range(n):
                p = skip_val(at, p)
            return p
        return p + sizes[t]

    kv = {}
    for _ in range(n_kv):
        k, p = rstr(p)
        t, = struct.unpack_from("<I", data, p)
        p += 4
        if t == 4:
            kv[k] = struct.unpack_from("<I", data, p)[0]
        p = skip_val(t, p)
    infos = []
    for _ in range(n_t):
        name, p = rstr(p)
        nd, = struct.unpack_from("<I", data, p)
        p += 4
        ne = struct.unpack_from("<%dQ" % nd, data, p)
        p += 8 * nd
        t, off = struct.unpack_from("<IQ", data, p)
        p += 12
        infos.append((name, ne, t, off))
    align = kv.get("general.alignment", 32)
    base = p + (-p) % align
    out = {}
    for name, ne, t, off in infos:
        blk, bsz = BLOCK[t]
        n = int(np.prod(ne))
        nbytes = n // blk * bsz
        out[name] = (t, ne, np.frombuffer(data, np.uint8, nbytes, base + off))
    return kv, out


# ---- dequantizers, written from the layout description ---------------------------

def f16(raw):
    return raw.copy().view("<f2").astype(np.float32)


def deq_q8_0(b):
    b = b.reshape(-1, 34)
    d = f16(b[:, 0:2])
    q = b[:, 2:].view(np.int8).astype(np.float32)
    return (q * d).reshape(-1)


def deq_q4_0(b):
    b = b.reshape(-1, 18)
    d = f16(b[:, 0:2])
    qs = b[:, 2:]
    lo = (qs & 15).astype(np.float32) - 8  # elements 0..15
    hi = (qs >> 4).astype(np.float32) - 8  # elements 16..31
    return (np.concatenate([lo, hi], axis=1) * d).reshape(-1)


def k4_scales(s):
    """8 six-bit scales and mins from the 12 packed bytes (rows of a 2-D array)."""
    s = s.astype(np.int32)
    sc = np.zeros((s.shape[0], 8), np.int32)
    mn = np.zeros((s.shape[0], 8), np.int32)
    for j in range(4):
        sc[:, j] = s[:, j] & 63
        mn[:, j] = s[:, j + 4] & 63
    for j in range(4, 8):
        sc[:, j] = (s[:, j + 4] & 15) | ((s[:, j - 4] >> 6) << 4)
        mn[:, j] = (s[:, j + 4] >> 4) | ((s[:, j] >> 6) << 4)
    return sc.astype(np.float32), mn.astype(np.float32)


def deq_q4_K(b):
    b = b.reshape(-1, 144)
    d = f16(b[:, 0:2])
    dmin = f16(b[:, 2:4])
    sc, mn = k4_scales(b[:, 4:16])
    qs = b[:, 16:].reshape(-1, 4, 32)  # 4 chunks of 64 elements
    out = np.zeros((b.shape[0], 256), np.float32)
    for c in range(4):
        lo = (qs[:, c] & 15).astype(np.float32)
        hi = (qs[:, c] >> 4).astype(np.float32)
        out[:, 64 * c:64 * c + 32] = d * sc[:, 2 * c:2 * c + 1] * lo - dmin * mn[:, 2 * c:2 * c + 1]
        out[:, 64 * c + 32:64 * c + 64] = (d * sc[:, 2 * c + 1:2 * c + 2] * hi
                                          - dmin * mn[:, 2 * c + 1:2 * c + 2])
    return out.reshape(-1)


def deq_q6_K(b):
    b = b.reshape(-1, 210)
    ql = b[:, 0:128].astype(np.int32)
    qh = b[:, 128:192].astype(np.int32)
    scales = b[:, 192:208].view(np.int8).astype(np.float32)
    d = f16(b[:, 208:210])
    q = np.zeros((b.shape[0], 256), np.int32)
    for h in range(2):  # two halves of 128
        L = ql[:, 64 * h:64 * h + 64]
        H = qh[:, 32 * h:32 * h + 32]
        base = 128 * h
        q[:, base + 0:base + 32] = (L[:, 0:32] & 15) | (((H >> 0) & 3) << 4)
        q[:, base + 32:base + 64] = (L[:, 32:64] & 15) | (((H >> 2) & 3) << 4)
        q[:, base + 64:base + 96] = (L[:, 0:32] >> 4) | (((H >> 4) & 3) << 4)
        q[:, base + 96:base + 128] = (L[:, 32:64] >> 4) | (((H >> 6) & 3) << 4)
    q = (q - 32).astype(np.float32)
    s = np.repeat(scales, 16, axis=1)
    return (d * s * q).reshape(-1)


DEQ = {GGML_Q8_0: deq_q8_0, GGML_Q4_0: deq_q4_0, GGML_Q4_K: deq_q4_K, GGML_Q6_K: deq_q6_K}


# ---- reference quantizers for the two simple types -------------------------------

def q8_0_bytes(x):
    x = x.reshape(-1, 32).astype(np.float32)
    amax = np.abs(x).max(axis=1, keepdims=True)
    d = (amax / np.float32(127)).astype(np.float32)
    with np.errstate(divide="ignore"):
        idv = np.where(d != 0, np.float32(1) / d, np.float32(0)).astype(np.float32)
    v = (x * idv).astype(np.float32)
    q = (np.sign(v) * np.floor(np.abs(v) + np.float32(0.5))).astype(np.int8)  # roundf
    out = np.zeros((x.shape[0], 34), np.uint8)
    out[:, 0:2] = d.astype("<f2").view(np.uint8).reshape(-1, 2)
    out[:, 2:] = q.view(np.uint8)
    return out.reshape(-1)


def q4_0_bytes(x):
    x = x.reshape(-1, 32).astype(np.float32)
    idx = np.abs(x).argmax(axis=1)  # first index of the largest |x|, as a strict > scan gives
    mx = x[np.arange(x.shape[0]), idx][:, None]
    d = (mx / np.float32(-8)).astype(np.float32)
    with np.errstate(divide="ignore"):
        idv = np.where(d != 0, np.float32(1) / d, np.float32(0)).astype(np.float32)
    v = (x * idv + np.float32(8.5)).astype(np.float32)
    q = np.minimum(np.trunc(v), 15).astype(np.uint8)
    out = np.zeros((x.shape[0], 18), np.uint8)
    out[:, 0:2] = d.astype("<f2").view(np.uint8).reshape(-1, 2)
    out[:, 2:] = q[:, :16] | (q[:, 16:] << 4)
    return out.reshape(-1)


def run(aistack, *args):
    r = subprocess.run([aistack, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if r.returncode:
        sys.exit("FAIL: aistack %s: %s" % (" ".join(args), r.stderr))


def main():
    aistack, work = sys.argv[1], sys.argv[2]
    rng = np.random.default_rng(1234)
    src = os.path.join(work, "src.gguf")
    tensors = [
        # 2-D weights (rows of 512: every type applies)
        ("blk.0.ffn_up.weight", rng.standard_normal((24, 512)).astype(np.float32) * 0.05),
        ("blk.0.attn_q.weight", (rng.standard_normal((16, 512)) * np.linspace(0.1, 3, 512))
         .astype(np.float32)),
        # with a mean offset and an outlier block
        ("blk.0.ffn_gate.weight", (rng.standard_normal((8, 768)) + 0.4).astype(np.float32)),
        ("blk.0.attn_norm.weight", np.ones(512, np.float32)),
    ]
    tensors[2][1][3, 100] = 40.0
    write_gguf(src, tensors, {"general.architecture": "llama", "general.alignment": 32})
    orig = {n: a.reshape(-1) for n, a in tensors}
    failures = 0
    for ftype, want in (("q8_0", GGML_Q8_0), ("q4_0", GGML_Q4_0), ("q4_k_m", GGML_Q4_K),
                        ("q6_k", GGML_Q6_K)):
        qpath = os.path.join(work, "q_%s.gguf" % ftype)
        back = os.path.join(work, "back_%s.gguf" % ftype)
        run(aistack, "quantize", src, qpath, ftype)
        run(aistack, "quantize", qpath, back, "f32")
        kv, q = read_gguf(qpath)
        _, b = read_gguf(back)
        for name, x in orig.items():
            t, ne, raw = q[name]
            if x.ndim == 1 and name.endswith("norm.weight"):
                if t != GGML_F32:
                    print("FAIL %s %s: norm became type %d" % (ftype, name, t))
                    failures += 1
                continue
            if t != want:
                print("FAIL %s %s: type %d, expected %d" % (ftype, name, t, want))
                failures += 1
                continue
            mine = DEQ[t](raw)
            theirs = b[name][2].view("<f4")
            if not np.array_equal(mine, theirs):
                bad = np.flatnonzero(mine != theirs)
                print("FAIL %s %s: numpy and aistack dequantization differ at %d elements, "
                      "first %d: %r vs %r" % (ftype, name, bad.size, bad[0], mine[bad[0]],
                                              theirs[bad[0]]))
                failures += 1
            rel = np.sqrt(np.mean((mine - x) ** 2) / np.mean(x ** 2))
            bound = {GGML_Q8_0: 0.01, GGML_Q4_0: 0.12, GGML_Q4_K: 0.09, GGML_Q6_K: 0.03}[t]
            if rel > bound:
                print("FAIL %s %s: relative rmse %.4f > %.4f" % (ftype, name, rel, bound))
                failures += 1
            ref = {GGML_Q8_0: q8_0_bytes, GGML_Q4_0: q4_0_bytes}.get(t)
            if ref is not None and not np.array_equal(ref(x), raw):
                print("FAIL %s %s: quantized bytes differ from the numpy quantizer" % (ftype, name))
                failures += 1
            print("ok   %-6s %-24s %-5d rel rmse %.4f" % (ftype, name, t, rel))
        if kv.get("general.file_type") != {"q8_0": 7, "q4_0": 2, "q4_k_m": 15, "q6_k": 18}[ftype]:
            print("FAIL %s: general.file_type %r" % (ftype, kv.get("general.file_type")))
            failures += 1
    if failures:
        sys.exit("%d failures" % failures)
    print("all numpy cross-checks passed")


if __name__ == "__main__":
    main()
