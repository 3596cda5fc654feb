/*
 * kernels_direct_avx512.c - AVX-512 VNNI products for small batches (several
 * sequences decoding together) straight from the GGUF blocks: no weight row
 * is unpacked into a panel first.
 *
 * Activations are quantized signed, 8 batch rows interleaved (KERN_ACT_IL8S:
 * per 4-byte step, for Q6_K; KERN_ACT_IL8S8: per 8-byte step, for the
 * rows-in-lanes tiles), with per-32 scales d, block sums ds = d * sum q, ds16
 * per half block and integer sums per half block. Q6_K broadcasts a 4-byte
 * piece of a weight row against the matching 4 activations of all 8 batch
 * rows; the rows-in-lanes tiles (the other types) hold 16 weight rows' pieces
 * in the lanes and broadcast one batch row's 4 activations. Each weight byte
 * is read once per step for the whole batch, and its bit unpacking is shared
 * by every group of 8 batch rows.
 *
 * Per (row, sub-block) the int32 sums become floats once. Where the offset
 * is a constant o (Q4_0: 8, Q8_0: 128 since u = q + 128, Q6_K: 32) it is
 * removed in int32 with the activations' integer sums, so the result is exact
 * before its one conversion:
 *   y += d_x * S * (sum(u * q_x) - o * sum q_x)
 * (in float, o * d_x * sum q_x cancelled most of the first term and lost
 * digits: at 44 tokens the 8-bit-emulation reference check of ref/test_logits
 * failed for Q8_0). Q4_K/Q5_K's mins (and Q4_1/Q5_1's m) are per row, so they
 * stay a float term:
 *   y += d_x * S * sum(u * q_x) - dmin * m * (d_x * sum q_x)
 *
 * Q6_K unpacks each super-block of the tile's rows into an L1 buffer first
 * (forming 6-bit quants from broadcast pieces took more vector operations
 * than the products), then broadcasts 4-byte pieces from there.
 *
 * Register tiles: Q6_K runs two rows x 8 batch rows per 512-bit register, one
 * group of 8 batch rows after another (a 512-bit vpdpbusd issues as fast as a
 * 256-bit one here, 2 per cycle). Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K and Q5_K
 * put 16 weight rows in the lanes of 512-bit registers against broadcast
 * activations (KERN_ACT_IL8S8), one group after another, at every batch size
 * from 4 (kern_matmul runs larger batches in chunks of 64 rows). Only called
 * after run-time detection. Not for: batch 1 (kernels_avx512.c) or the other
 * types (Q2_K, Q3_K: GEMVs, then panels, kernels_gemm_avx512.c).
 */
#include "engine/kernels_impl.h"

#if defined(__x86_64__)

#include "engine/kernels_avx512_inl.h"

#define DRMAX 8

/* Activation pointers of one group: quants, per-32 scales/sums, per-16 sums. */
struct dgrp {
    const int8_t *q; /* (k / 4, 8, 4) */
    const float *d;  /* (nb32, 8) */
    const float *ds; /* (nb32, 8) */
    const float *ds16;
    const int32_t *is16; /* (2 * nb32, 8) integer sums of the quants per 16 */
};

/* Group g's pointers into a. */
static inline struct dgrp dgrp_of(const struct kern__act *a, int64_t g)
{
    const int64_t nb = a->nb32;
    return (struct dgrp){a->qs + g * KERN_IL * a->k, a->d + g * nb * KERN_IL,
                         a->ds + g * nb * KERN_IL, a->ds16 + g * 2 * nb * KERN_IL,
                         a->is16 + g * 2 * nb * KERN_IL};
}

/*
 * Prefetches block [off, off + len) of each of the next tile's pr rows
 * (row_bytes apart) while this tile works on the same block of its own rows:
 * every line arrives one tile ahead of its use, in the order it is used. A
 * tile reads 8 rows of 1-5 KB side by side: streams too short for the
 * hardware prefetcher to learn before they end. The lines are taken from the
 * block's end backwards in 64-byte steps: the line holding its first byte was
 * taken with the previous block, unless it starts at off. Prefetching the next
 * tile front to back instead (its first row first) left the last rows' lines
 * one eighth of a tile ahead: 8192 x 2048 Q4_0 at B = 8 from memory ran at 169
 * GOP/s on one core, 231 with this order (in cache: 239).
 */
static inline void prefetch_next(const uint8_t *pf, size_t row_bytes, int pr, size_t off,
                                 size_t len)
{
    for (int i = 0; i < pr; i++)
        for (ptrdiff_t o = (ptrdiff_t)len - 1; o >= 0; o -= 64)
            pf_t0(pf + (size_t)i * row_bytes + off + (size_t)o);
}

/* The 8 batch rows' integer sums of 16-element half h16 (2 per 32-block). */
static inline __m256i is16v(const struct dgrp *g, int64_t h16)
{
    return _mm256_loadu_si256((const __m256i *)(g->is16 + h16 * KERN_IL));
}

static inline __m256i actv(const struct dgrp *g, int64_t blk32, int dw)
{
    return _mm256_load_si256((const __m256i *)(g->q + blk32 * 32 * KERN_IL + 32 * dw));
}

/* -(sum << sh): an accumulator's start that removes a weight offset of 2^sh exactly. */
static inline __m256i neg_shl(__m256i sum, int sh)
{
    return _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(sum, sh));
}

/* ---- Q4_0: weight rows in lanes (KERN_ACT_IL8S8) ------------------------------ */

/*
 * Tiles with 8 batch rows in the lanes (two weight rows per 512-bit register,
 * as Q6_K's below) broadcast each 4-byte weight piece (two loads and a merge
 * per pair of rows and piece) and spend three operations per product. Here
 * lane r of a 512-bit register holds row r of 16 weight rows: register j
 * holds quant dword j of each row (a 4 x 4 dword transpose in each 128-bit
 * lane of four 4-row loads), its low nibbles elements 4j..4j+3 and its high
 * nibbles 16+4j..16+4j+3, and each batch row's 4 activation bytes for them are
 * broadcast by the product itself: per block, 8 weight registers serve all 8
 * batch rows, and the sums land as a row vector per batch row (no
 * transposition at the end). The products go piece after piece over the
 * batch rows, so 8 independent sums are in flight rather than one chain of 8.
 * In cache, 1 thread, best of 5 (2026-12-05): B=8 366 -> 381 GOP/s, B=64
 * 385 -> 418 against the earlier 8 rows x 2 pieces per register.
 */
#define RL_ROWS 16

/*
 * The fp16 scales at off of 16 rows as floats. Four scales are merged in a
 * general register each (the integer units are idle here), so the vector
 * units see 4 inserts and one conversion instead of 16 word inserts.
 */
static inline __m512 scales16(const uint8_t *const *w, size_t off)
{
    uint64_t q[4];
    KERN_UNROLL(4)
    for (int i = 0; i < 4; i++) {
        uint16_t h[4];
        KERN_UNROLL(4)
        for (int j = 0; j < 4; j++)
            memcpy(&h[j], w[4 * i + j] + off, 2);
        q[i] = (uint64_t)h[0] | (uint64_t)h[1] << 16 | (uint64_t)h[2] << 32 | (uint64_t)h[3] << 48;
    }
    const __m128i lo = _mm_insert_epi64(_mm_cvtsi64_si128((long long)q[0]), (long long)q[1], 1);
    const __m128i hi = _mm_insert_epi64(_mm_cvtsi64_si128((long long)q[2]), (long long)q[3], 1);
    return _mm512_cvtph_ps(_mm256_inserti128_si256(_mm256_castsi128_si256(lo), hi, 1));
}

/*
 * acc + w (unsigned bytes) . the 4 signed bytes at p in every lane. With gcc the
 * product reads p itself ({1to16}): gcc 12 emits a separate vpbroadcastd for
 * the intrinsics, and the folded form measured 3-5% faster in the rows-in-lanes
 * tiles (bench/engine/ab_kernels.sh, Q4_0 and Q4_K, 3-4 rounds). Sanitizer
 * builds (their checks see plain loads) and clang use the intrinsics.
 */
static inline __m512i dpbusd_bcast(__m512i acc, __m512i w, const uint8_t *p)
{
#if defined(__SANITIZE_ADDRESS__) || defined(__clang__)
    int32_t v;
    memcpy(&v, p, 4);
    return _mm512_dpbusd_epi32(acc, w, _mm512_set1_epi32(v));
#else
    __asm__("vpdpbusd %2%{1to16%}, %1, %0" : "+v"(acc) : "v"(w), "m"(*(const int32_t *)p));
    return acc;
#endif
}

/* The 16 quant bytes at off of 4 rows, one row per 128-bit lane. */
static inline __m512i rows4(const uint8_t *const *w, size_t off)
{
    __m512i v = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)(w[0] + off)));
    v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(w[1] + off)), 1);
    v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(w[2] + off)), 2);
    return _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(w[3] + off)), 3);
}

/* The row pointers in the order rows16() loads them: rows s, 4 + s, 8 + s, 12 + s together. */
static inline void rl_order(const uint8_t *const w[RL_ROWS], const uint8_t *wt[RL_ROWS])
{
    for (int s = 0; s < 4; s++)
        for (int q = 0; q < 4; q++)
            wt[4 * s + q] = w[4 * q + s];
}

/*
 * Dword j of the 16 bytes at off of 16 rows into lane r of q[j], r = row:
 * four 4-row loads (rl_order), then a 4 x 4 dword transpose in each 128-bit lane.
 */
static inline __attribute__((always_inline)) void rows16(const uint8_t *const wt[RL_ROWS],
                                                         size_t off, __m512i q[4])
{
    __m512i x[4];
    KERN_UNROLL(4)
    for (int s = 0; s < 4; s++)
        x[s] = rows4(wt + 4 * s, off);
    const __m512i t0 = _mm512_unpacklo_epi32(x[0], x[1]), t1 = _mm512_unpackhi_epi32(x[0], x[1]);
    const __m512i t2 = _mm512_unpacklo_epi32(x[2], x[3]), t3 = _mm512_unpackhi_epi32(x[2], x[3]);
    q[0] = _mm512_unpacklo_epi64(t0, t2);
    q[1] = _mm512_unpackhi_epi64(t0, t2);
    q[2] = _mm512_unpacklo_epi64(t1, t3);
    q[3] = _mm512_unpackhi_epi64(t1, t3);
}

/*
 * The first nbr batch rows' sums over one 32-element block: w[J] holds
 * elements 4J..4J+3 of each of 16 rows, from 8-byte activation piece J / 2
 * (half J % 2). Piece after piece over the batch rows, so nbr independent
 * sums are in flight. nbr is a constant after inlining.
 */
static inline __attribute__((always_inline)) void rl_dot(__m512i acc[KERN_IL], const __m512i w[8],
                                                         const uint8_t *aq, const int nbr)
{
    KERN_UNROLL(8)
    for (int J = 0; J < 8; J++)
        KERN_UNROLL(8)
    for (int b = 0; b < nbr; b++)
        acc[b] = dpbusd_bcast(acc[b], w[J], aq + ((J >> 1) * KERN_IL + b) * 8 + 4 * (J & 1));
}

/* accf[b] += float(acc[b]) * dw * d_x[b], d_x the batch rows' block scales, b < nbr. */
static inline __attribute__((always_inline)) void rl_scale(__m512 accf[KERN_IL],
                                                           const __m512i acc[KERN_IL], __m512 dw,
                                                           const float *dx, const int nbr)
{
    KERN_UNROLL(8)
    for (int b = 0; b < nbr; b++)
        accf[b] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc[b]),
                                  _mm512_mul_ps(dw, _mm512_set1_ps(dx[b])), accf[b]);
}

/* accf[b] += mw * ds_x[b]: a per-row minimum times the batch rows' d_x * sum(q_x). */
static inline __attribute__((always_inline)) void rl_min(__m512 accf[KERN_IL], __m512 mw,
                                                         const float *dsx)
{
    KERN_UNROLL(8)
    for (int b = 0; b < KERN_IL; b++)
        accf[b] = _mm512_fmadd_ps(mw, _mm512_set1_ps(dsx[b]), accf[b]);
}

/*
 * Sums (b < nbr) starting at the batch rows' integer block sums << sh,
 * negated: a weight offset of 2^sh.
 */
static inline __attribute__((always_inline)) void
rl_start(__m512i acc[KERN_IL], const struct dgrp *G, int64_t blk, int sh, const int nbr)
{
    _Alignas(32) int32_t off[KERN_IL];
    _mm256_store_si256((__m256i *)off,
                       neg_shl(_mm256_add_epi32(is16v(G, 2 * blk), is16v(G, 2 * blk + 1)), sh));
    KERN_UNROLL(8)
    for (int b = 0; b < nbr; b++)
        acc[b] = _mm512_set1_epi32(off[b]);
}

static void tile_q4_0_rl(const uint8_t *const w[RL_ROWS], const struct dgrp *G, int64_t nb,
                         const uint8_t *pf, int pfr, size_t row_bytes,
                         float acc_out[KERN_IL][RL_ROWS])
{
    const uint8_t *wt[RL_ROWS];
    rl_order(w, wt);
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    __m512 accf[KERN_IL];
    KERN_UNROLL(8)
    for (int b = 0; b < KERN_IL; b++)
        accf[b] = _mm512_setzero_ps();
    for (int64_t blk = 0; blk < nb; blk++) {
        const size_t boff = (size_t)blk * sizeof(block_q4_0);
        if (pf)
            prefetch_next(pf, row_bytes, pfr, boff, sizeof(block_q4_0));
        __m512i q[4];
        rows16(wt, boff + 2, q);
        /* lo[j]: elements 4j..4j+3 of each row; hi[j]: 16 + 4j..16 + 4j + 3 */
        __m512i lo[4], hi[4];
        KERN_UNROLL(4)
        for (int j = 0; j < 4; j++) {
            lo[j] = _mm512_and_si512(q[j], m4);
            hi[j] = _mm512_and_si512(_mm512_srli_epi16(q[j], 4), m4);
        }
        /* -8 x the batch rows' block sums start the sums: the weights' offset of 8 */
        const __m512i w8[8] = {lo[0], lo[1], lo[2], lo[3], hi[0], hi[1], hi[2], hi[3]};
        __m512i acc[KERN_IL];
        rl_start(acc, G, blk, 3, KERN_IL);
        rl_dot(acc, w8, (const uint8_t *)G->q + blk * 32 * KERN_IL, KERN_IL);
        rl_scale(accf, acc, scales16(w, boff), G->d + blk * KERN_IL, KERN_IL);
    }
    KERN_UNROLL(8)
    for (int b = 0; b < KERN_IL; b++)
        _mm512_storeu_ps(acc_out[b], accf[b]);
}

typedef void (*rl_tile_fn)(const uint8_t *const w[RL_ROWS], const struct dgrp *G, int64_t nblocks,
                           const uint8_t *pf, int pfr, size_t row_bytes,
                           float out[KERN_IL][RL_ROWS]);

/* Rows [r0, r1) against KERN_ACT_IL8S8 activations, 16 rows per tile. */
static void rl_run(rl_tile_fn tile, int64_t nblocks, const void *W, size_t row_bytes, int64_t r0,
                   int64_t r1, const struct kern__act *a, float *y, int64_t ldy)
{
    _Alignas(64) float out[KERN_IL][RL_ROWS];
    const int64_t ng = (a->B + KERN_IL - 1) / KERN_IL;
    for (int64_t r = r0; r < r1; r += RL_ROWS) {
        const int nr = (int)(r1 - r < RL_ROWS ? r1 - r : RL_ROWS);
        const uint8_t *w[RL_ROWS];
        for (int i = 0; i < RL_ROWS; i++) /* past the end: the last row again */
            w[i] = (const uint8_t *)W + (size_t)(r + (i < nr ? i : nr - 1)) * row_bytes;
        const int64_t left = r1 - r - RL_ROWS; /* rows of the next tile */
        const __mmask16 keep = (__mmask16)((1u << nr) - 1);
        /* group after group over the same 16 rows: from the second on, from L1 or L2 */
        for (int64_t g = 0; g < ng; g++) {
            const struct dgrp grp = dgrp_of(a, g);
            const uint8_t *pf =
                g == 0 && left > 0 ? (const uint8_t *)W + (size_t)(r + RL_ROWS) * row_bytes : NULL;
            tile(w, &grp, nblocks, pf, left < RL_ROWS ? (int)left : RL_ROWS, row_bytes, out);
            const int64_t here = a->B - g * KERN_IL < KERN_IL ? a->B - g * KERN_IL : KERN_IL;
            for (int64_t b = 0; b < here; b++)
                _mm512_mask_storeu_ps(y + (g * KERN_IL + b) * ldy + r, keep,
                                      _mm512_load_ps(out[b]));
        }
    }
}

static void direct_q4_0_rl(const void *W, size_t row_bytes, int64_t k, int64_t r0, int64_t r1,
                           const struct kern__act *a, float *y, int64_t ldy)
{
    rl_run(tile_q4_0_rl, k / 32, W, row_bytes, r0, r1, a, y, ldy);
}

/*
 * Q5_0 with rows in lanes, as Q4_0 plus the fifth bits: qh (32 bits, one per
 * element) of 16 rows transposed into one register. For the 4 elements of a
 * dword, a byte shuffle copies the qh byte that holds their bits into all 4
 * bytes of the lane, a test against per-byte bit masks gives a byte mask, and
 * 0x10 is OR-ed into the nibbles under it. u = q + 16; the offset, -16 x the
 * batch row's block sum, starts each sum. Q5_1 has no offset and a minimum
 * m per block instead: y += m * (d_x * sum q_x), as Q4_K's minima; Q4_1 is
 * Q5_1 without the fifth bits (before, it went through the panels: one core
 * in cache, GOP/s at B = 8 93 -> 216, B = 64 177 -> 232).
 */
static inline __attribute__((always_inline)) void
tile_q5_rl(const uint8_t *const w[RL_ROWS], const struct dgrp *G, int64_t nb, const uint8_t *pf,
           int pfr, size_t row_bytes, float acc_out[KERN_IL][RL_ROWS], const int q5_1,
           const int q4_1)
{
    /* Q5_0: d, qh, qs (22 bytes); Q5_1: d, m, qh, qs (24); Q4_1: d, m, qs (20) */
    const size_t bsz = q4_1 ? sizeof(block_q4_1) : q5_1 ? sizeof(block_q5_1) : sizeof(block_q5_0);
    const size_t oqh = q5_1 ? 4 : 2, oqs = q4_1 ? 4 : oqh + 4;
    const uint8_t *wt[RL_ROWS];
    rl_order(w, wt);
    const __m512i m4 = _mm512_set1_epi8(0x0F), x10 = _mm512_set1_epi8(0x10);
    /*
     * qsel[k] copies byte k of each lane's qh dword into its 4 bytes (vpshufb
     * indexes within 128-bit lanes: dword d of a lane starts at byte 4d);
     * bits[h] tests bits 4h..4h+3, one per byte.
     */
    __m512i qsel[4];
    for (int k = 0; k < 4; k++)
        qsel[k] = _mm512_broadcast_i32x4(_mm_setr_epi32(
            k * 0x01010101, (4 + k) * 0x01010101, (8 + k) * 0x01010101, (12 + k) * 0x01010101));
    const __m512i bits[2] = {_mm512_set1_epi32(0x08040201), _mm512_set1_epi32((int)0x80402010u)};
    __m512 accf[KERN_IL];
    KERN_UNROLL(8)
    for (int b = 0; b < KERN_IL; b++)
        accf[b] = _mm512_setzero_ps();
    for (int64_t blk = 0; blk < nb; blk++) {
        const size_t boff = (size_t)blk * bsz;
        if (pf)
            prefetch_next(pf, row_bytes, pfr, boff, bsz);
        __m512i q[4], qh[4];
        rows16(wt, boff + oqs, q);
        if (!q4_1)
            rows16(wt, boff + oqh, qh); /* only qh[0], the qh dwords, is used */
        __m512i lo[4], hi[4];
        KERN_UNROLL(4)
        for (int j = 0; j < 4; j++) {
            const __m512i nl = _mm512_and_si512(q[j], m4);
            const __m512i nh = _mm512_and_si512(_mm512_srli_epi16(q[j], 4), m4);
            if (q4_1) {
                lo[j] = nl;
                hi[j] = nh;
                continue;
            }
            /* elements 4j..4j+3: qh byte j / 2, bits 4(j % 2)..; 16 + 4j..: byte 2 + j / 2 */
            const __mmask64 kl =
                _mm512_test_epi8_mask(_mm512_shuffle_epi8(qh[0], qsel[j >> 1]), bits[j & 1]);
            const __mmask64 kh =
                _mm512_test_epi8_mask(_mm512_shuffle_epi8(qh[0], qsel[2 + (j >> 1)]), bits[j & 1]);
            lo[j] = _mm512_mask_add_epi8(nl, kl, nl, x10); /* bit 4 is clear: + is | */
            hi[j] = _mm512_mask_add_epi8(nh, kh, nh, x10);
        }
        __m512i acc[KERN_IL];
        if (q5_1 || q4_1) { /* no offset; the minima are a float term */
            KERN_UNROLL(8)
            for (int b = 0; b < KERN_IL; b++)
                acc[b] = _mm512_setzero_si512();
            rl_min(accf, scales16(w, boff + 2), G->ds + blk * KERN_IL);
        } else {
            rl_start(acc, G, blk, 4, KERN_IL);
        }
        const __m512i w8[8] = {lo[0], lo[1], lo[2], lo[3], hi[0], hi[1], hi[2], hi[3]};
        rl_dot(acc, w8, (const uint8_t *)G->q + blk * 32 * KERN_IL, KERN_IL);
        rl_scale(accf, acc, scales16(w, boff), G->d + blk * KERN_IL, KERN_IL);
    }
    KERN_UNROLL(8)
    for (int b = 0; b < KERN_IL; b++)
        _mm512_storeu_ps(acc_out[b], accf[b]);
}

static void tile_q5_0_rl(const uint8_t *const w[RL_ROWS], const struct dgrp *G, int64_t nb,
                         const uint8_t *pf, int pfr, size_t row_bytes,
                         float acc_out[KERN_IL][RL_ROWS])
{
    tile_q5_rl(w, G, nb, pf, pfr, row_bytes, acc_out, 0, 0);
}

static void tile_q5_1_rl(const uint8_t *const w[RL_ROWS], const struct dgrp *G, int64_t nb,
                         const uint8_t *pf, int pfr, size_t row_bytes,
                         float acc_out[KERN_IL][RL_ROWS])
{
    tile_q5_rl(w, G, nb, pf, pfr, row_bytes, acc_out, 1, 0);
}

static void tile_q4_1_rl(const uint8_t *const w[RL_ROWS], const struct dgrp *G, int64_t nb,
                         const uint8_t *pf, int pfr, size_t row_bytes,
                         float acc_out[KERN_IL][RL_ROWS])
{
    tile_q5_rl(w, G, nb, pf, pfr, row_bytes, acc_out, 0, 1);
}

static void direct_q4_1_rl(const void *W, size_t row_bytes, int64_t k, int64_t r0, int64_t r1,
                           const struct kern__act *a, float *y, int64_t ldy)
{
    rl_run(tile_q4_1_rl, k / 32, W, row_bytes, r0, r1, a, y, ldy);
}

static void direct_q5_1_rl(const void *W, size_t row_bytes, int64_t k, int64_t r0, int64_t r1,
                           const struct kern__act *a, float *y, int64_t ldy)
{
    rl_run(tile_q5_1_rl, k / 32, W, row_bytes, r0, r1, a, y, ldy);
}

static void direct_q5_0_rl(const void *W, size_t row_bytes, int64_t k, int64_t r0, int64_t r1,
                           const struct kern__act *a, float *y, int64_t ldy)
{
    rl_run(tile_q5_0_rl, k / 32, W, row_bytes, r0, r1, a, y, ldy);
}

/*
 * Q8_0 with rows in lanes: a block's 32 quant bytes of 16 rows as 8 dword
 * registers, each byte + 128 (unsigned side); the offset, -128 x the batch
 * row's block sum, starts each sum (exact in int32).
 */
static void tile_q8_0_rl(const uint8_t *const w[RL_ROWS], const struct dgrp *G, int64_t nb,
                         const uint8_t *pf, int pfr, size_t row_bytes,
                         float acc_out[KERN_IL][RL_ROWS])
{
    const uint8_t *wt[RL_ROWS];
    rl_order(w, wt);
    const __m512i x80 = _mm512_set1_epi8((char)0x80);
    __m512 accf[KERN_IL];
    KERN_UNROLL(8)
    for (int b = 0; b < KERN_IL; b++)
        accf[b] = _mm512_setzero_ps();
    for (int64_t blk = 0; blk < nb; blk++) {
        const size_t boff = (size_t)blk * sizeof(block_q8_0);
        if (pf)
            prefetch_next(pf, row_bytes, pfr, boff, sizeof(block_q8_0));
        __m512i q[8];
        rows16(wt, boff + 2, q);
        rows16(wt, boff + 18, q + 4);
        KERN_UNROLL(8)
        for (int j = 0; j < 8; j++)
            q[j] = _mm512_xor_si512(q[j], x80);
        __m512i acc[KERN_IL];
        rl_start(acc, G, blk, 7, KERN_IL);
        rl_dot(acc, q, (const uint8_t *)G->q + blk * 32 * KERN_IL, KERN_IL);
        rl_scale(accf, acc, scales16(w, boff), G->d + blk * KERN_IL, KERN_IL);
    }
    KERN_UNROLL(8)
    for (int b = 0; b < KERN_IL; b++)
        _mm512_storeu_ps(acc_out[b], accf[b]);
}

static void direct_q8_0_rl(const void *W, size_t row_bytes, int64_t k, int64_t r0, int64_t r1,
                           const struct kern__act *a, float *y, int64_t ldy)
{
    rl_run(tile_q8_0_rl, k / 32, W, row_bytes, r0, r1, a, y, ldy);
}

/*
 * Q4_K (and Q5_K) with rows in lanes, as Q4_0: per super-block, the 16 header
 * bytes of 16 rows (d, dmin, 12 bytes of 6-bit scales and minima) transposed
 * so that lane r holds row r's, the 8 scales and minima unpacked in the lanes;
 * per 64-element chunk, 32 quant bytes per row as 8 dword registers, whose
 * low nibbles are one 32-element sub-block and high nibbles the next. A
 * sub-block is one activation block: 8 products per batch row, then one float
 * scaling and one term for the minima (-dmin * m * d_x * sum(q_x)).
 *
 * Q5_K adds qh[32] after the header: bit s of byte l is the fifth bit of
 * element l of sub-block s. Its 8 dwords per row are transposed once per
 * super-block, and each sub-block's quants are nibble | (bit s moved to bit 4)
 * (one shift and one ternary-logic op per dword more than Q4_K). Before, Q5_K
 * had no direct kernel: B = 5-64 went through the panels (one core in cache,
 * bench_kernels -c -t 1, GOP/s at B = 8 97 -> 216, B = 64 179 -> 240; Xeon,
 * Emerald Rapids).
 */
static inline __attribute__((always_inline)) void
tile_qk_rl(const uint8_t *const w[RL_ROWS], const struct dgrp *G, int64_t nsb, const uint8_t *pf,
           int pfr, size_t row_bytes, float acc_out[KERN_IL][RL_ROWS], const int q5)
{
    const size_t bsz = q5 ? sizeof(block_q5_K) : sizeof(block_q4_K), qs = q5 ? 48 : 16;
    const uint8_t *wt[RL_ROWS];
    rl_order(w, wt);
    const __m512i m4 = _mm512_set1_epi8(0x0F), m6 = _mm512_set1_epi32(0x3F),
                  m30 = _mm512_set1_epi32(0x30), m4d = _mm512_set1_epi32(0x0F);
    _Alignas(64) float S[8][RL_ROWS], M[8][RL_ROWS]; /* d * sc and -dmin * m per sub-block */
    _Alignas(64) int32_t Q[8][RL_ROWS];              /* a chunk's quant dwords */
    _Alignas(64) int32_t H[8][RL_ROWS];              /* Q5_K: the super-block's qh dwords */
    __m512 accf[KERN_IL];
    KERN_UNROLL(8)
    for (int b = 0; b < KERN_IL; b++)
        accf[b] = _mm512_setzero_ps();
    for (int64_t sb = 0; sb < nsb; sb++) {
        const size_t boff = (size_t)sb * bsz;
        if (pf)
            prefetch_next(pf, row_bytes, pfr, boff, bsz);
        __m512i h[4]; /* d | dmin << 16; scale bytes 0-3, 4-7, 8-11 */
        rows16(wt, boff, h);
        const __m512 d = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(h[0]));
        const __m512 dmin = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(h[0], 16)));
        KERN_UNROLL(4)
        for (int j = 0; j < 4; j++) { /* get_scale_min_k4, lane-wise */
            const __m512i sc = _mm512_and_si512(_mm512_srli_epi32(h[1], 8 * j), m6);
            const __m512i mn = _mm512_and_si512(_mm512_srli_epi32(h[2], 8 * j), m6);
            const __m512i sc4 =
                _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(h[3], 8 * j), m4d),
                                _mm512_and_si512(_mm512_srli_epi32(h[1], 8 * j + 2), m30));
            const __m512i mn4 =
                _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(h[3], 8 * j + 4), m4d),
                                _mm512_and_si512(_mm512_srli_epi32(h[2], 8 * j + 2), m30));
            _mm512_store_ps(S[j], _mm512_mul_ps(_mm512_cvtepi32_ps(sc), d));
            _mm512_store_ps(M[j], _mm512_mul_ps(_mm512_cvtepi32_ps(mn), -dmin));
            _mm512_store_ps(S[4 + j], _mm512_mul_ps(_mm512_cvtepi32_ps(sc4), d));
            _mm512_store_ps(M[4 + j], _mm512_mul_ps(_mm512_cvtepi32_ps(mn4), -dmin));
        }
        if (q5) {
            __m512i qh[8];
            rows16(wt, boff + 16, qh);
            rows16(wt, boff + 32, qh + 4);
            KERN_UNROLL(8)
            for (int j = 0; j < 8; j++)
                _mm512_store_si512(H[j], qh[j]);
        }
        for (int c = 0; c < 4; c++) {
            __m512i q[8];
            rows16(wt, boff + qs + 32 * c, q);
            rows16(wt, boff + qs + 16 + 32 * c, q + 4);
            KERN_UNROLL(8)
            for (int j = 0; j < 8; j++)
                _mm512_store_si512(Q[j], q[j]);
            KERN_UNROLL(2)
            for (int hh = 0; hh < 2; hh++) { /* sub-block 2c + hh: low, then high nibbles */
                const int64_t blk = sb * 8 + 2 * c + hh; /* its activation block */
                const int s5 = 2 * c + hh;               /* Q5_K: its bit in qh */
                const uint8_t *aq = (const uint8_t *)G->q + blk * 32 * KERN_IL;
                __m512i wq[8], acc[KERN_IL];
                KERN_UNROLL(8)
                for (int j = 0; j < 8; j++) {
                    const __m512i v = hh ? _mm512_srli_epi16(_mm512_load_si512(Q[j]), 4)
                                         : _mm512_load_si512(Q[j]);
                    if (q5) {
                        const __m512i hb = _mm512_load_si512(H[j]);
                        const __m512i b4 =
                            s5 <= 4 ? _mm512_slli_epi16(hb, 4 - s5) : _mm512_srli_epi16(hb, s5 - 4);
                        /* (v & 0x0F) | (b4 & 0x10): per bit, m4 ? v : b4 & 0x10 */
                        wq[j] = _mm512_ternarylogic_epi32(
                            v, _mm512_and_si512(b4, _mm512_set1_epi8(0x10)), m4, 0xE4);
                    } else {
                        wq[j] = _mm512_and_si512(v, m4);
                    }
                }
                KERN_UNROLL(8)
                for (int b = 0; b < KERN_IL; b++)
                    acc[b] = _mm512_setzero_si512();
                rl_dot(acc, wq, aq, KERN_IL);
                rl_min(accf, _mm512_load_ps(M[2 * c + hh]), G->ds + blk * KERN_IL);
                rl_scale(accf, acc, _mm512_load_ps(S[2 * c + hh]), G->d + blk * KERN_IL, KERN_IL);
            }
        }
    }
    KERN_UNROLL(8)
    for (int b = 0; b < KERN_IL; b++)
        _mm512_storeu_ps(acc_out[b], accf[b]);
}

static void tile_q4_k_rl(const uint8_t *const w[RL_ROWS], const struct dgrp *G, int64_t nsb,
                         const uint8_t *pf, int pfr, size_t row_bytes,
                         float acc_out[KERN_IL][RL_ROWS])
{
    tile_qk_rl(w, G, nsb, pf, pfr, row_bytes, acc_out, 0);
}

static void tile_q5_k_rl(const uint8_t *const w[RL_ROWS], const struct dgrp *G, int64_t nsb,
                         const uint8_t *pf, int pfr, size_t row_bytes,
                         float acc_out[KERN_IL][RL_ROWS])
{
    tile_qk_rl(w, G, nsb, pf, pfr, row_bytes, acc_out, 1);
}

static void direct_q4_k_rl(const void *W, size_t row_bytes, int64_t k, int64_t r0, int64_t r1,
                           const struct kern__act *a, float *y, int64_t ldy)
{
    rl_run(tile_q4_k_rl, k / QK_K, W, row_bytes, r0, r1, a, y, ldy);
}

static void direct_q5_k_rl(const void *W, size_t row_bytes, int64_t k, int64_t r0, int64_t r1,
                           const struct kern__act *a, float *y, int64_t ldy)
{
    rl_run(tile_q5_k_rl, k / QK_K, W, row_bytes, r0, r1, a, y, ldy);
}

/* ---- packed matrices (kern_pack) ------------------------------------------------ */

/*
 * The rows-in-lanes tiles above spend most of their non-product work on
 * getting 16 rows into the lanes: 16 row pointers (spilled, reloaded), 16
 * loads and a transpose per block, 16 scale loads merged in general
 * registers. A packed matrix (kern_pack, at model load) stores each block of
 * a 16-row tile that way already: 4 (Q4_0) or 8 (Q8_0) aligned 64-byte loads
 * give the lanes, one 32-byte load the 16 scales. The same sums as the
 * rows-in-lanes tiles, so the same results. One tile serves every batch size:
 * nbr (1, 2, 4 or 8) batch rows per group, so B = 1 (GEMV) and B = 2-4 need
 * no other kernel. In a standalone test against the rows-in-lanes Q4_0 tile,
 * 1 thread, 2026-12-05: B = 8 in cache 410 -> 615 GOP/s; from memory (8192 x
 * 2048, 4 matrices in turn) B = 8 385 -> 595, B = 4 211 -> 495.
 */
static inline __attribute__((always_inline)) void
tile_pk(const uint8_t *t, const struct dgrp *G, int64_t nb, const uint8_t *pf,
        float acc_out[KERN_IL][RL_ROWS], const int q8, const int nbr, const int plain)
{
    const size_t qb = q8 ? 512 : 256; /* quant bytes of a block of the tile */
    const uint8_t *sc = t + (size_t)nb * qb;
    const __m512i m4 = _mm512_set1_epi8(0x0F), x80 = _mm512_set1_epi8((char)0x80);
    __m512 accf[KERN_IL];
    KERN_UNROLL(8)
    for (int b = 0; b < nbr; b++)
        accf[b] = _mm512_setzero_ps();
    for (int64_t blk = 0; blk < nb; blk++) {
        const uint8_t *q = t + (size_t)blk * qb;
        if (pf) { /* the next tile's block, one tile ahead */
            KERN_UNROLL(8)
            for (size_t l = 0; l < qb; l += 64)
                pf_t0(pf + (size_t)blk * qb + l);
            pf_t0(pf + (size_t)nb * qb + (size_t)blk * 32);
        }
        __m512i w8[8];
        if (q8) { /* u = q + 128; the offset starts the sums */
            KERN_UNROLL(8)
            for (int j = 0; j < 8; j++)
                w8[j] = _mm512_xor_si512(_mm512_loadu_si512((const void *)(q + 64 * j)), x80);
        } else { /* low nibbles: elements 4j..; high: 16 + 4j.. */
            KERN_UNROLL(4)
            for (int j = 0; j < 4; j++) {
                const __m512i v = _mm512_loadu_si512((const void *)(q + 64 * j));
                w8[j] = _mm512_and_si512(v, m4);
                w8[4 + j] = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
            }
        }
        const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(sc + blk * 32)));
        if (plain) { /* one row, KERN_ACT_PLAIN_I: element 4J at byte 4J of the block */
            const int32_t *is = G->is16 + 2 * blk;
            __m512i acc = _mm512_set1_epi32(-(is[0] + is[1]) * (q8 ? 128 : 8));
            const uint8_t *aq = (const uint8_t *)G->q + blk * 32;
            KERN_UNROLL(8)
            for (int J = 0; J < 8; J++)
                acc = dpbusd_bcast(acc, w8[J], aq + 4 * J);
            accf[0] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc),
                                      _mm512_mul_ps(dw, _mm512_set1_ps(G->d[blk])), accf[0]);
            continue;
        }
        __m512i acc[KERN_IL];
        rl_start(acc, G, blk, q8 ? 7 : 3, nbr);
        rl_dot(acc, w8, (const uint8_t *)G->q + blk * 32 * KERN_IL, nbr);
        rl_scale(accf, acc, dw, G->d + blk * KERN_IL, nbr);
    }
    KERN_UNROLL(8)
    for (int b = 0; b < nbr; b++)
        _mm512_store_ps(acc_out[b], accf[b]);
}

typedef void (*pk_tile_fn)(const uint8_t *t, const struct dgrp *G, int64_t nb, const uint8_t *pf,
                           float out[KERN_IL][RL_ROWS]);

#define PK_TILE(NAME, Q8, NBR, PLAIN)                                                              \
    static void NAME##_##NBR(const uint8_t *t, const struct dgrp *G, int64_t nb,                   \
                             const uint8_t *pf, float out[KERN_IL][RL_ROWS])                       \
    {                                                                                              \
        tile_pk(t, G, nb, pf, out, Q8, NBR > 0 ? NBR : 1, PLAIN);                                  \
    }
/* Rows [r0, r1) (whole tiles) of packed P, all a->B batch rows in groups of up to 8. */
static void pk_run(const pk_tile_fn tiles[9], int64_t nb, const void *P, size_t row_bytes,
                   int64_t r0, int64_t r1, const struct kern__act *a, float *y, int64_t ldy)
{
    _Alignas(64) float out[KERN_IL][RL_ROWS];
    const int64_t ng = (a->B + KERN_IL - 1) / KERN_IL, tb = (int64_t)row_bytes * RL_ROWS;
    for (int64_t r = r0; r < r1; r += RL_ROWS) {
        const uint8_t *t = (const uint8_t *)P + (r / RL_ROWS) * tb;
        for (int64_t g = 0; g < ng; g++) { /* from the second group on, from L1 or L2 */
            const struct dgrp grp = dgrp_of(a, g);
            const int64_t here = a->B - g * KERN_IL < KERN_IL ? a->B - g * KERN_IL : KERN_IL;
            tiles[a->layout == KERN_ACT_PLAIN_I ? 0 : here](
                t, &grp, nb, g == 0 && r + RL_ROWS < r1 ? t + tb : NULL, out);
            for (int64_t b = 0; b < here; b++)
                _mm512_storeu_ps(y + (g * KERN_IL + b) * ldy + r, _mm512_load_ps(out[b]));
        }
    }
}

/*
 * NAME[nbr]: the tile for a group of nbr batch rows; NAME[0]: one row in
 * KERN_ACT_PLAIN_I. NAME##_gemm: the product (kern__ops.pk_gemm).
 */
#define PK_TILES(NAME, Q8)                                                                         \
    PK_TILE(NAME, Q8, 0, 1)                                                                        \
    PK_TILE(NAME, Q8, 1, 0)                                                                        \
    PK_TILE(NAME, Q8, 2, 0)                                                                        \
    PK_TILE(NAME, Q8, 4, 0)                                                                        \
    PK_TILE(NAME, Q8, 8, 0)                                                                        \
    static const pk_tile_fn NAME[9] = {NAME##_0, NAME##_1, NAME##_2, NAME##_4, NAME##_4,           \
                                       NAME##_8, NAME##_8, NAME##_8, NAME##_8};                    \
    static void NAME##_gemm(const void *P, size_t row_bytes, int64_t k, int64_t r0, int64_t r1,    \
                            const struct kern__act *a, float *y, int64_t ldy)                      \
    {                                                                                              \
        pk_run(NAME, k / 32, P, row_bytes, r0, r1, a, y, ldy);                                     \
    }
PK_TILES(pk_q4_0, 0)
PK_TILES(pk_q8_0, 1)

/* ---- Q6_K ------------------------------------------------------------------- */

/*
 * Q6_K with one group, rows in pairs, interleaved while unpacking: the L1
 * buffer of rows 2p and 2p + 1 holds their 4-byte pieces side by side (one
 * _mm512_unpack{lo,hi}_epi32 per 64 bytes), so a single 8-byte broadcast puts
 * row 2p's piece in the even lanes and row 2p + 1's in the odd ones, against
 * the 8 batch rows' piece with each duplicated into lanes 2b and 2b + 1. One
 * load and one product per piece and pair, where two rows each broadcast
 * separately cost two loads and a merge. The scales are paired the same way.
 */

/* Lane 2b and 2b + 1 get dword b of v (b < 8). */
static inline __m512i dup32(__m256i v)
{
    const __m512i idx = _mm512_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
    return _mm512_permutexvar_epi32(idx, _mm512_castsi256_si512(v));
}

/*
 * Where piece r (0..15) of a 64-byte chunk lands, in 8-byte units, after
 * unpack{lo,hi}_epi32 of two rows' chunks stored lo then hi: lo holds pieces
 * 4L and 4L + 1 of each 128-bit lane L, hi pieces 4L + 2 and 4L + 3.
 */
static inline int il_unit(int r)
{
    return (r & 3) < 2 ? 2 * (r >> 2) + (r & 1) : 8 + 2 * (r >> 2) + (r & 1);
}

static inline __attribute__((always_inline)) void tile_q6_k_x2(const uint8_t *const w[DRMAX],
                                                               const struct dgrp *G, int64_t nsb,
                                                               const uint8_t *pf,
                                                               float out[2][DRMAX][8])
{
    enum { NP = DRMAX / 2 };
    _Alignas(64) uint8_t UP[NP][2 * QK_K]; /* per pair: chunk n = 128 bytes, lo then hi */
    _Alignas(64) float SP[NP][2 * QK_K / 16];
    __m512 accf[NP];
    KERN_UNROLL(4)
    for (int p = 0; p < NP; p++)
        accf[p] = _mm512_setzero_ps();
    for (int64_t sb = 0; sb < nsb; sb++) {
        const size_t boff = (size_t)sb * sizeof(block_q6_K);
        if (pf)
            prefetch_next(pf, (size_t)nsb * sizeof(block_q6_K), DRMAX, boff, sizeof(block_q6_K));
        KERN_UNROLL(4)
        for (int p = 0; p < NP; p++) {
            const block_q6_K *xa = (const block_q6_K *)(w[2 * p] + boff);
            const block_q6_K *xb = (const block_q6_K *)(w[2 * p + 1] + boff);
            __m512i wa[4], wb[4];
            q6_k_quants(xa, wa);
            q6_k_quants(xb, wb);
            KERN_UNROLL(4)
            for (int n = 0; n < 4; n++) {
                _mm512_store_si512(UP[p] + 128 * n, _mm512_unpacklo_epi32(wa[n], wb[n]));
                _mm512_store_si512(UP[p] + 128 * n + 64, _mm512_unpackhi_epi32(wa[n], wb[n]));
            }
            __m512 sa = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(
                                          _mm_loadu_si128((const __m128i *)xa->scales))),
                                      _mm512_set1_ps(h2f(xa->d)));
            __m512 sbv = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(
                                           _mm_loadu_si128((const __m128i *)xb->scales))),
                                       _mm512_set1_ps(h2f(xb->d)));
            _mm512_store_ps(SP[p], _mm512_unpacklo_ps(sa, sbv));
            _mm512_store_ps(SP[p] + 16, _mm512_unpackhi_ps(sa, sbv));
        }
        for (int cc = 0; cc < 4; cc++) /* chunk: activation blocks 2cc, 2cc + 1 */
            KERN_UNROLL(2)
        for (int c2 = 0; c2 < 2; c2++) {
            const int64_t b = sb * 8 + 2 * cc + c2; /* activation block */
            __m512i acc[2][NP];                     /* [sub-block][row pair] */
            KERN_UNROLL(2)
            for (int h = 0; h < 2; h++) { /* -32 x the activations' sum, exact */
                const __m512i off = dup32(neg_shl(is16v(G, 2 * b + h), 5));
                KERN_UNROLL(4)
                for (int p = 0; p < NP; p++)
                    acc[h][p] = off;
            }
            /* both sub-blocks in step: 8 independent accumulator chains */
            KERN_UNROLL(4)
            for (int j = 0; j < 4; j++) {
                KERN_UNROLL(2)
                for (int h = 0; h < 2; h++) {
                    const int jj = 4 * h + j, unit = 16 * cc + il_unit(8 * c2 + jj);
                    const __m512i av = dup32(actv(G, b, jj));
                    KERN_UNROLL(4)
                    for (int p = 0; p < NP; p++) {
                        int64_t q;
                        memcpy(&q, UP[p] + 8 * unit, 8);
                        acc[h][p] = _mm512_dpbusd_epi32(acc[h][p], _mm512_set1_epi64(q), av);
                    }
                }
            }
            const __m512 da = _mm512_castsi512_ps(
                dup32(_mm256_castps_si256(_mm256_loadu_ps(G->d + b * KERN_IL))));
            KERN_UNROLL(2)
            for (int h = 0; h < 2; h++) {
                /* the scales of sub-block 4cc + 2c2 + h sit as the pieces do */
                const int su = il_unit(4 * cc + 2 * c2 + h);
                KERN_UNROLL(4)
                for (int p = 0; p < NP; p++) {
                    double sc;
                    memcpy(&sc, SP[p] + 2 * su, 8);
                    __m512 v = _mm512_mul_ps(_mm512_cvtepi32_ps(acc[h][p]), da);
                    accf[p] = _mm512_fmadd_ps(v, _mm512_castpd_ps(_mm512_set1_pd(sc)), accf[p]);
                }
            }
        }
    }
    /* lanes 2b + r (row 2p + r, batch b) -> row 2p's 8 batch rows, then row 2p + 1's */
    const __m512i deil = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15);
    KERN_UNROLL(4)
    for (int p = 0; p < NP; p++)
        _mm512_storeu_ps(out[0][2 * p], _mm512_permutexvar_ps(deil, accf[p]));
}

/* ---- drivers ------------------------------------------------------------------ */

/*
 * Rows [r0, r1) in tiles of 8: a tile's weights stay in L1/L2 while every
 * group of 8 batch rows passes, one group at a time through the 512-bit pair
 * tile. A tile of 4 rows x 2 groups in 256-bit registers (one unpacking for
 * 16 batch rows) served B > 8 before: one core in cache (bench_kernels -c -t
 * 1), GOP/s at B = 16-64, 139 -> 187, B = 512 127 -> 165; two cores from
 * memory 290 -> 380-400 (Xeon, Emerald Rapids): the unpacking is the smaller
 * cost.
 */
static void direct_q6_k(const void *W, size_t row_bytes, int64_t k, int64_t r0, int64_t r1,
                        const struct kern__act *a, float *y, int64_t ldy)
{
    const int64_t G = (a->B + KERN_IL - 1) / KERN_IL, nsb = k / QK_K;
    float out[2][DRMAX][8];
    for (int64_t rt = r0; rt < r1; rt += KERN_IL) {
        const int nr = (int)(r1 - rt < DRMAX ? r1 - rt : DRMAX);
        const uint8_t *w[DRMAX];
        for (int i = 0; i < DRMAX; i++)
            w[i] = (const uint8_t *)W + (size_t)(rt + (i < nr ? i : 0)) * row_bytes;
        const uint8_t *pf =
            rt + DRMAX < r1 ? (const uint8_t *)W + (size_t)(rt + DRMAX) * row_bytes : NULL;
        for (int64_t g = 0; g < G; g++) {
            const struct dgrp grp = dgrp_of(a, g);
            tile_q6_k_x2(w, &grp, nsb, pf, out);
            store_tile8(out, 1, nr, g, a->B, y, ldy, rt);
        }
    }
}

void kern__init_avx512_direct(struct kern__ops *o)
{
    o->il8_gemm[GGML_TYPE_Q4_0] = direct_q4_0_rl;
    o->il8_s8[GGML_TYPE_Q4_0] = 1;
    o->il8_s8[GGML_TYPE_Q4_K] = 1;
    o->il8_s8[GGML_TYPE_Q8_0] = 1;
    o->il8_s8[GGML_TYPE_Q5_0] = 1;
    o->il8_gemm[GGML_TYPE_Q5_0] = direct_q5_0_rl;
    o->il8_s8[GGML_TYPE_Q5_1] = 1;
    o->il8_gemm[GGML_TYPE_Q5_1] = direct_q5_1_rl;
    o->il8_s8[GGML_TYPE_Q4_1] = 1;
    o->il8_gemm[GGML_TYPE_Q4_1] = direct_q4_1_rl;
    o->il8_gemm[GGML_TYPE_Q8_0] = direct_q8_0_rl;
    o->il8_gemm[GGML_TYPE_Q4_K] = direct_q4_k_rl;
    o->il8_s8[GGML_TYPE_Q5_K] = 1;
    o->il8_gemm[GGML_TYPE_Q5_K] = direct_q5_k_rl;
    o->il8_gemm[GGML_TYPE_Q6_K] = direct_q6_k;
    o->pk_gemm[GGML_TYPE_Q4_0] = pk_q4_0_gemm;
    o->pk_gemm[GGML_TYPE_Q8_0] = pk_q8_0_gemm;
    /* packed at the AVX2 level only (their GEMVs and rows-in-lanes direct kernels read the
       GGUF form here) */
    o->pk_gemm[GGML_TYPE_Q4_K] = NULL;
    o->pk_gemm[GGML_TYPE_Q5_0] = NULL;
    o->pk_natural = 0;
}

#else

void kern__init_avx512_direct(struct kern__ops *o)
{
    (void)o;
}

#endif
