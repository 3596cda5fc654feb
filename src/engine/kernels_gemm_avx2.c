/*
 * kernels_gemm_avx2.c - AVX2 products over packed Q4_0/Q8_0 matrices (kern_pack's
 * 16-row tiles), at every batch size: one token decoding, several sequences
 * decoding together, prompts.
 *
 * A tile block holds, per 4-byte piece j of the 32-element block, the piece of
 * each of the 16 rows side by side, so one 256-bit load gives 8 rows' pieces
 * in its 32-bit lanes and a broadcast of the matching 4 activation bytes of
 * one batch row multiplies all 8 rows at once (vpmaddubsw, then pairs summed
 * by vpmaddwd); no horizontal sums, and each weight piece serves every
 * batch row of the register tile. Activations are plain signed int8 rows
 * (KERN_ACT_PLAIN) with their per-16 integer sums (is16).
 *
 *  - Q4_0: the nibbles q (0..15) are the unsigned operand, the activations
 *    the signed one. A pair sum is at most 2 * 15 * 127, so the eight pieces
 *    of a block add up in 16 bits (<= 30480) and become 32-bit once per block.
 *    The offset 8 is removed in int32 with the activations' integer sums:
 *      y += d_w * d_a * (sum(q * a) - 8 * sum(a))
 *  - Q8_0: signed weights, so the sign trick: |w| times a * sign(w). A pair
 *    sum reaches 2 * 127 * 127, so each piece goes to 32 bits at once.
 *
 * Register tile: the tile's 16 rows (two 256-bit halves) x 2 batch rows; a
 * larger batch runs pair after pair over the tile, whose weights are in L1
 * or L2 by then. Only called after run-time detection (kernels.c).
 */
#include "engine/kernels_impl.h"

#if defined(__x86_64__)

#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/fp16.h"
#include "engine/kernels_x86_inl.h"
#include "engine/quant_blocks.h"

#define PK2_ROWS 16 /* KERN_PACK_ROWS */
#define PK2_NBR  2  /* batch rows per register tile */

static inline __m256i bcast4(const int8_t *p)
{
    int32_t v;
    __builtin_memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

/* Bit s (0..7) of each byte of h moved to bit 4, the rest zero. */
static inline __attribute__((always_inline)) __m256i pk2_bit4(__m256i h, const int s)
{
    const __m256i v = s <= 4 ? _mm256_slli_epi16(h, 4 - s) : _mm256_srli_epi16(h, s - 4);
    return _mm256_and_si256(v, _mm256_set1_epi8(0x10));
}

/*
 * Tile t (nb blocks) against batch rows b0..b0+nbr-1 of a: out[b][r] for the
 * tile's 16 rows. pf: the next tile, prefetched a block ahead (or NULL).
 * Q5_0 (q5): the tile's first dword per row is qh in kern_pack's order (bit
 * 2j + h of byte t: the fifth bit of nibble h of byte t of quant dword j), so
 * its fifth bits reach bit 4 with one shift and one AND per 8 rows; its sums
 * leave int16 after each pair of quant dwords (8 products of 0..31 by -128..127).
 */
static inline __attribute__((always_inline)) void
pk2_tile(const uint8_t *t, int64_t nb, const struct kern__act *a, int64_t b0, const int nbr,
         const int q8, const int q5, const uint8_t *pf, float out[PK2_NBR][PK2_ROWS])
{
    const size_t qb = q8 ? 512 : q5 ? 320 : 256; /* quant bytes of a block of the tile */
    const size_t qs0 = q5 ? 64 : 0;              /* the quant dwords after Q5_0's qh */
    const uint8_t *sc = t + (size_t)nb * qb;
    const __m256i m4 = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1);
    const int8_t *aq[PK2_NBR];
    const float *ad[PK2_NBR];
    const int32_t *ai[PK2_NBR];
    __m256 accf[PK2_NBR][2];
    KERN_UNROLL(2)
    for (int c = 0; c < nbr; c++) {
        aq[c] = a->qs + (b0 + c) * a->k;
        ad[c] = a->d + (b0 + c) * a->nb32;
        ai[c] = a->is16 + (b0 + c) * 2 * a->nb32;
        accf[c][0] = accf[c][1] = _mm256_setzero_ps();
    }
    for (int64_t blk = 0; blk < nb; blk++) {
        const uint8_t *q = t + (size_t)blk * qb;
        if (pf) {
            for (size_t l = 0; l < qb; l += 64)
                _mm_prefetch((const char *)pf + (size_t)blk * qb + l, _MM_HINT_T0);
            _mm_prefetch((const char *)pf + (size_t)nb * qb + (size_t)blk * 32, _MM_HINT_T0);
        }
        __m256i acc[PK2_NBR][2];
        KERN_UNROLL(2)
        for (int c = 0; c < nbr; c++)
            acc[c][0] = acc[c][1] = _mm256_setzero_si256();
        if (q8) {
            KERN_UNROLL(8)
            for (int j = 0; j < 8; j++) {
                const __m256i w0 = _mm256_loadu_si256((const __m256i *)(q + 64 * j));
                const __m256i w1 = _mm256_loadu_si256((const __m256i *)(q + 64 * j + 32));
                const __m256i u0 = _mm256_abs_epi8(w0), u1 = _mm256_abs_epi8(w1);
                KERN_UNROLL(2)
                for (int c = 0; c < nbr; c++) {
                    const __m256i x = bcast4(aq[c] + blk * 32 + 4 * j);
                    const __m256i p0 = _mm256_maddubs_epi16(u0, _mm256_sign_epi8(x, w0));
                    const __m256i p1 = _mm256_maddubs_epi16(u1, _mm256_sign_epi8(x, w1));
                    acc[c][0] = _mm256_add_epi32(acc[c][0], _mm256_madd_epi16(p0, ones));
                    acc[c][1] = _mm256_add_epi32(acc[c][1], _mm256_madd_epi16(p1, ones));
                }
            }
        } else { /* low nibbles: elements 4j..4j+3; high: 16 + 4j.. */
            __m256i H0 = _mm256_setzero_si256(), H1 = _mm256_setzero_si256();
            __m256i a16[PK2_NBR][2]; /* Q5_0: int16 sums of a pair of quant dwords */
            if (q5) {
                H0 = _mm256_loadu_si256((const __m256i *)q);
                H1 = _mm256_loadu_si256((const __m256i *)(q + 32));
            }
            KERN_UNROLL(4)
            for (int j = 0; j < 4; j++) {
                const __m256i v0 = _mm256_loadu_si256((const __m256i *)(q + qs0 + 64 * j));
                const __m256i v1 = _mm256_loadu_si256((const __m256i *)(q + qs0 + 64 * j + 32));
                __m256i l0 = _mm256_and_si256(v0, m4), l1 = _mm256_and_si256(v1, m4);
                __m256i h0 = _mm256_and_si256(_mm256_srli_epi16(v0, 4), m4);
                __m256i h1 = _mm256_and_si256(_mm256_srli_epi16(v1, 4), m4);
                if (q5) { /* bit 2j (low nibbles) and 2j + 1 (high) of each byte to bit 4 */
                    l0 = _mm256_or_si256(l0, pk2_bit4(H0, 2 * j));
                    l1 = _mm256_or_si256(l1, pk2_bit4(H1, 2 * j));
                    h0 = _mm256_or_si256(h0, pk2_bit4(H0, 2 * j + 1));
                    h1 = _mm256_or_si256(h1, pk2_bit4(H1, 2 * j + 1));
                }
                KERN_UNROLL(2)
                for (int c = 0; c < nbr; c++) {
                    const __m256i xl = bcast4(aq[c] + blk * 32 + 4 * j);
                    const __m256i xh = bcast4(aq[c] + blk * 32 + 16 + 4 * j);
                    if (q5) {
                        const __m256i p0 = _mm256_add_epi16(_mm256_maddubs_epi16(l0, xl),
                                                            _mm256_maddubs_epi16(h0, xh));
                        const __m256i p1 = _mm256_add_epi16(_mm256_maddubs_epi16(l1, xl),
                                                            _mm256_maddubs_epi16(h1, xh));
                        if (j % 2 == 0) {
                            a16[c][0] = p0;
                            a16[c][1] = p1;
                        } else {
                            acc[c][0] = _mm256_add_epi32(
                                acc[c][0],
                                _mm256_madd_epi16(_mm256_add_epi16(a16[c][0], p0), ones));
                            acc[c][1] = _mm256_add_epi32(
                                acc[c][1],
                                _mm256_madd_epi16(_mm256_add_epi16(a16[c][1], p1), ones));
                        }
                        continue;
                    }
                    acc[c][0] = _mm256_add_epi16(acc[c][0], _mm256_maddubs_epi16(l0, xl));
                    acc[c][1] = _mm256_add_epi16(acc[c][1], _mm256_maddubs_epi16(l1, xl));
                    acc[c][0] = _mm256_add_epi16(acc[c][0], _mm256_maddubs_epi16(h0, xh));
                    acc[c][1] = _mm256_add_epi16(acc[c][1], _mm256_maddubs_epi16(h1, xh));
                }
            }
        }
        const __m256 dw0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(sc + blk * 32)));
        const __m256 dw1 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(sc + blk * 32 + 16)));
        KERN_UNROLL(2)
        for (int c = 0; c < nbr; c++) {
            __m256i i0 = acc[c][0], i1 = acc[c][1];
            if (!q8) { /* the offset, 8 (Q4_0) or 16 (Q5_0) x the block's sum, exact */
                const __m256i off =
                    _mm256_set1_epi32((q5 ? 16 : 8) * (ai[c][2 * blk] + ai[c][2 * blk + 1]));
                if (!q5) {
                    i0 = _mm256_madd_epi16(i0, ones);
                    i1 = _mm256_madd_epi16(i1, ones);
                }
                i0 = _mm256_sub_epi32(i0, off);
                i1 = _mm256_sub_epi32(i1, off);
            }
            const __m256 da = _mm256_set1_ps(ad[c][blk]);
            accf[c][0] =
                _mm256_fmadd_ps(_mm256_cvtepi32_ps(i0), _mm256_mul_ps(dw0, da), accf[c][0]);
            accf[c][1] =
                _mm256_fmadd_ps(_mm256_cvtepi32_ps(i1), _mm256_mul_ps(dw1, da), accf[c][1]);
        }
    }
    KERN_UNROLL(2)
    for (int c = 0; c < nbr; c++) {
        _mm256_storeu_ps(out[c], accf[c][0]);
        _mm256_storeu_ps(out[c] + 8, accf[c][1]);
    }
}

typedef void (*pk2_tile_fn)(const uint8_t *t, int64_t nb, const struct kern__act *a, int64_t b0,
                            const uint8_t *pf, float out[PK2_NBR][PK2_ROWS]);

/* Rows [r0, r1) (whole tiles) of packed P, all a->B batch rows, pairs of rows at a time. */
static void pk2_run(pk2_tile_fn one, pk2_tile_fn two, int64_t nb, const void *P, size_t row_bytes,
                    int64_t r0, int64_t r1, const struct kern__act *a, float *y, int64_t ldy)
{
    float out[PK2_NBR][PK2_ROWS];
    const size_t tb = row_bytes * PK2_ROWS;
    for (int64_t r = r0; r < r1; r += PK2_ROWS) {
        const uint8_t *t = (const uint8_t *)P + (size_t)(r / PK2_ROWS) * tb;
        for (int64_t b = 0; b < a->B; b += PK2_NBR) {
            const int here = a->B - b < PK2_NBR ? (int)(a->B - b) : PK2_NBR;
            const uint8_t *pf = b == 0 && r + PK2_ROWS < r1 ? t + tb : NULL;
            (here == 2 ? two : one)(t, nb, a, b, pf, out);
            for (int c = 0; c < here; c++)
                KERN_UNROLL(16)
            for (int i = 0; i < PK2_ROWS; i++)
                y[(b + c) * ldy + r + i] = out[c][i];
        }
    }
}

#define PK2_TYPE(NAME, Q8, Q5)                                                                     \
    static void NAME##_1(const uint8_t *t, int64_t nb, const struct kern__act *a, int64_t b0,      \
                         const uint8_t *pf, float out[PK2_NBR][PK2_ROWS])                          \
    {                                                                                              \
        pk2_tile(t, nb, a, b0, 1, Q8, Q5, pf, out);                                                \
    }                                                                                              \
    static void NAME##_2(const uint8_t *t, int64_t nb, const struct kern__act *a, int64_t b0,      \
                         const uint8_t *pf, float out[PK2_NBR][PK2_ROWS])                          \
    {                                                                                              \
        pk2_tile(t, nb, a, b0, 2, Q8, Q5, pf, out);                                                \
    }                                                                                              \
    static void NAME##_gemm(const void *P, size_t row_bytes, int64_t k, int64_t r0, int64_t r1,    \
                            const struct kern__act *a, float *y, int64_t ldy)                      \
    {                                                                                              \
        pk2_run(NAME##_1, NAME##_2, k / 32, P, row_bytes, r0, r1, a, y, ldy);                      \
    }
PK2_TYPE(pk2_q4_0, 0, 0)
PK2_TYPE(pk2_q8_0, 1, 0)
PK2_TYPE(pk2_q5_0, 0, 1)

/* ---- float weights, larger batches: outer products ------------------------------- */

#define OP2_H  3           /* 8-lane vectors of weight rows per register tile */
#define OP2_R  (8 * OP2_H) /* weight rows per register tile */
#define OP2_C  4           /* batch rows per register tile */
#define OP2_KC 256         /* k per converted block (24 x 256 floats, 24 KB, in L1) */

_Static_assert(OP2_R <= KERN_FLOAT_BLK_ROWS && OP2_KC <= KERN_FLOAT_KC,
               "the converted block must fit kern__float_scratch");

/*
 * y[(c + j) * ldy + r + i] (+)= sum over kk < kc of wt[kk][i] * x[(c + j) * k + k0 + kk]
 * for j < nc, i < nr: 24 rows x nc (<= 4) batch rows of accumulators (3
 * weight loads and 4 broadcasts per 12 FMAs; 16 x 6 measured 2-7% slower from
 * memory and at model level), one broadcast per batch row and k. first: store
 * instead of add.
 */
static inline __attribute__((always_inline)) void op2_tile(const float *wt, int kc, const float *x,
                                                           int64_t k, int64_t c, const int nc,
                                                           float *y, int64_t ldy, int64_t r, int nr,
                                                           int first)
{
    __m256 acc[OP2_C][OP2_H];
    KERN_UNROLL(6)
    for (int j = 0; j < nc; j++)
        KERN_UNROLL(3)
    for (int h = 0; h < OP2_H; h++)
        acc[j][h] = _mm256_setzero_ps();
    const float *xr = x + c * k;
    for (int kk = 0; kk < kc; kk++) {
        __m256 w[OP2_H];
        KERN_UNROLL(3)
        for (int h = 0; h < OP2_H; h++)
            w[h] = _mm256_loadu_ps(wt + kk * OP2_R + 8 * h);
        KERN_UNROLL(6)
        for (int j = 0; j < nc; j++) {
            const __m256 xv = _mm256_broadcast_ss(xr + j * k + kk);
            KERN_UNROLL(3)
            for (int h = 0; h < OP2_H; h++)
                acc[j][h] = _mm256_fmadd_ps(w[h], xv, acc[j][h]);
        }
    }
    KERN_UNROLL(6)
    for (int j = 0; j < nc; j++) {
        float *yr = y + (c + j) * ldy + r;
        if (nr == OP2_R) {
            KERN_UNROLL(3)
            for (int h = 0; h < OP2_H; h++) {
                __m256 v = acc[j][h];
                if (!first)
                    v = _mm256_add_ps(v, _mm256_loadu_ps(yr + 8 * h));
                _mm256_storeu_ps(yr + 8 * h, v);
            }
        } else {
            float o[OP2_R];
            KERN_UNROLL(3)
            for (int h = 0; h < OP2_H; h++)
                _mm256_storeu_ps(o + 8 * h, acc[j][h]);
            for (int i = 0; i < nr; i++)
                yr[i] = first ? o[i] : yr[i] + o[i];
        }
    }
}

#define OP2_TILE(NC)                                                                               \
    static void op2_tile##NC(const float *wt, int kc, const float *x, int64_t k, int64_t c,        \
                             float *y, int64_t ldy, int64_t r, int nr, int first)                  \
    {                                                                                              \
        op2_tile(wt, kc, x, k, c, NC, y, ldy, r, nr, first);                                       \
    }
OP2_TILE(1)
OP2_TILE(2)
OP2_TILE(3)
OP2_TILE(4)

/* Smallest batch that the outer-product form serves (below: the dot form of kernels_avx2.c). */
#define OP2_MIN_B 12

/*
 * Float weights (F32/F16/BF16) for rows [r0, r1) and all B rows of x: per 24
 * weight rows and 256 k, the block converted once into scratch (24 KB) and
 * swept by every batch row, so an F16 weight is converted once per product
 * instead of once per batch row, and no horizontal sums.
 */
static void avx2_gemm_float_op(enum ggml_type t, const void *W, size_t row_bytes, int64_t k,
                               int64_t r0, int64_t r1, const float *x, int64_t B, float *y,
                               int64_t ldy, float *scratch)
{
    typedef void (*tile_fn)(const float *, int, const float *, int64_t, int64_t, float *, int64_t,
                            int64_t, int, int);
    static const tile_fn tiles[OP2_C + 1] = {NULL, op2_tile1, op2_tile2, op2_tile3, op2_tile4};
    for (int64_t r = r0; r < r1; r += OP2_R) {
        const int nr = r1 - r < OP2_R ? (int)(r1 - r) : OP2_R;
        for (int64_t k0 = 0; k0 < k; k0 += OP2_KC) {
            const int kc = k - k0 < OP2_KC ? (int)(k - k0) : OP2_KC;
            kern_pack_wt(t, W, row_bytes, r, nr, k0, kc, scratch, OP2_R);
            for (int64_t c = 0; c < B; c += OP2_C) {
                const int nc = B - c < OP2_C ? (int)(B - c) : OP2_C;
                tiles[nc](scratch, kc, x + k0, k, c, y, ldy, r, nr, k0 == 0);
            }
        }
    }
}

/* ---- Q4_K, straight from the GGUF blocks ----------------------------------------- */

/*
 * On Intel CPUs the GEMVs below prefetch into L2 4 KB ahead of each weight
 * super-block (or pair of 32-element blocks): one core of a Xeon (Emerald
 * Rapids) at this level streamed them from memory at 6-8 GB/s against a 20-28
 * GB/s read probe, the hardware prefetchers keeping too close for loops with
 * this much work per line (kern_pf_ahead, as at the AVX-512 level).
 * Set at init; AMD cores keep the plain loops. Only for 1-4 batch rows (one
 * tile per weight row): with more, each line feeds enough work that the
 * prefetches only cost (7% in cache for Q5_0).
 */
static int g_kx_pf;

#define K4_NC 4  /* batch rows per register tile */
#define K4_RB 16 /* weight rows per L1/L2 block */
#define K4_BC 64 /* batch rows per L2 chunk */

/*
 * The 8 6-bit scales and mins of a Q4_K super-block times d and dmin, as
 * floats, from its 12 scale bytes in the low bytes of v (k4_scales: from a
 * GGUF block, where x->scales is followed by the quants, so 16 bytes are readable).
 */
static inline void k4_scales_v(__m128i v, float d, float dmin, __m256 *sc, __m256 *mn)
{
    const __m128i u = kern_k4_scales_u8(v);
    *sc = _mm256_mul_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(u)));
    *mn = _mm256_mul_ps(_mm256_set1_ps(dmin),
                        _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(u, 8))));
}

static inline void k4_scales(const block_q4_K *x, __m256 *sc, __m256 *mn)
{
    k4_scales_v(_mm_loadu_si128((const __m128i *)x->scales), _cvtsh_ss(x->d), _cvtsh_ss(x->dmin),
                sc, mn);
}

/* Per byte: bit `bit` of hb moved to bit 4 (the fifth bit of a Q5_K quant). */
static inline __m256i k5_bit16(__m256i hb, const int bit)
{
    const __m256i v = bit < 4    ? _mm256_slli_epi16(hb, 4 - bit)
                      : bit == 4 ? hb
                                 : _mm256_srli_epi16(hb, bit - 4);
    return _mm256_and_si256(v, _mm256_set1_epi8(0x10));
}

/*
 * One weight row (Q4_K, or Q5_K with q5: its fifth bits in qh[32] before the
 * quants; super-blocks bsz bytes apart, nsb of them) against nc batch rows from
 * b of a: y[(b + c) * ldy]. Per 32-element sub-block j and batch row c the
 * integer sum of q * a (q the unsigned quants) is scaled by d * sc_j * d_a; the
 * mins take dmin * m_j * (d_a * sum a) off, all in 8 float lanes summed at the end.
 */
static inline __attribute__((always_inline)) void
k4_tile(const uint8_t *x0, const size_t bsz, const int q5, int64_t nsb, const struct kern__act *a,
        int64_t b, const int nc, float *y, int64_t ldy, const int pf)
{
    const __m256i m4 = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1);
    __m256 acc[K4_NC];
    KERN_UNROLL(6)
    for (int c = 0; c < nc; c++)
        acc[c] = _mm256_setzero_ps();
    for (int64_t sb = 0; sb < nsb; sb++) {
        const uint8_t *blk = x0 + (size_t)sb * bsz;
        if (pf)
            kern_pf_ahead(blk, (int)bsz);
        const uint8_t *qs = blk + 4 + K_SCALE_SIZE + (q5 ? QK_K / 8 : 0);
        __m256 vsc, vmn; /* d, dmin and the scales sit alike in both layouts */
        k4_scales((const block_q4_K *)blk, &vsc, &vmn);
        const __m256i hb = q5 ? _mm256_loadu_si256((const __m256i *)(blk + 4 + K_SCALE_SIZE))
                              : _mm256_setzero_si256();
        float s[K4_NC][8];
        KERN_UNROLL(6)
        for (int c = 0; c < nc; c++) {
            const float *ad = a->d + (b + c) * a->nb32 + sb * 8;
            const float *ads = a->ds + (b + c) * a->nb32 + sb * 8;
            _mm256_storeu_ps(s[c], _mm256_mul_ps(vsc, _mm256_loadu_ps(ad)));
            acc[c] = _mm256_fnmadd_ps(vmn, _mm256_loadu_ps(ads), acc[c]);
        }
        KERN_UNROLL(4)
        for (int g = 0; g < 4; g++) {
            const __m256i v = _mm256_loadu_si256((const __m256i *)(qs + 32 * g));
            __m256i lo = _mm256_and_si256(v, m4);
            __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
            if (q5) { /* element 64g + l: bit 2g of qh[l]; 64g + 32 + l: bit 2g + 1 */
                lo = _mm256_or_si256(lo, k5_bit16(hb, 2 * g));
                hi = _mm256_or_si256(hi, k5_bit16(hb, 2 * g + 1));
            }
            KERN_UNROLL(6)
            for (int c = 0; c < nc; c++) {
                const int8_t *aq = a->qs + (b + c) * a->k + sb * 256 + 64 * g;
                const __m256i pl = _mm256_madd_epi16(
                    _mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)aq)), ones);
                const __m256i ph = _mm256_madd_epi16(
                    _mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i *)(aq + 32))), ones);
                const __m256 f = _mm256_fmadd_ps(
                    _mm256_cvtepi32_ps(ph), _mm256_broadcast_ss(&s[c][2 * g + 1]),
                    _mm256_mul_ps(_mm256_cvtepi32_ps(pl), _mm256_broadcast_ss(&s[c][2 * g])));
                acc[c] = _mm256_add_ps(acc[c], f);
            }
        }
    }
    KERN_UNROLL(6)
    for (int c = 0; c < nc; c++)
        y[(b + c) * ldy] = kern_hsum8(acc[c]);
}

static inline __attribute__((always_inline)) void q4k_tile(const block_q4_K *x, int64_t nsb,
                                                           const struct kern__act *a, int64_t b,
                                                           const int nc, float *y, int64_t ldy,
                                                           const int pf)
{
    k4_tile((const uint8_t *)x, sizeof(block_q4_K), 0, nsb, a, b, nc, y, ldy, pf);
}

static inline __attribute__((always_inline)) void q5k_tile(const block_q5_K *x, int64_t nsb,
                                                           const struct kern__act *a, int64_t b,
                                                           const int nc, float *y, int64_t ldy,
                                                           const int pf)
{
    k4_tile((const uint8_t *)x, sizeof(block_q5_K), 1, nsb, a, b, nc, y, ldy, pf);
}

/* ---- Q4_K packed: 16-row tiles, rows in lanes ------------------------------------ */

/*
 * kern_pack's Q4_K tile: per super-block, the 32 quant dwords of the 16 rows
 * ((blk * 32 + j) * 16 + row) * 4, then after all super-blocks the 16-byte
 * heads (d, dmin, 12 scale bytes) in 2-byte units: unit u of row r at
 * blk * 256 + (u * 16 + r) * 2. Dword j holds, in
 * its low nibbles, elements 64 (j / 8) + 4 (j % 8) .. + 3 (sub-block 2 (j / 8)) and
 * in its high nibbles the same 32 further on (sub-block 2 (j / 8) + 1).
 *
 * Per tile and chunk of super-blocks the scales and mins are unpacked once,
 * rows in lanes, for every batch row to use: the 6-bit scales as 16-bit
 * pairs, d and dmin * m as floats. Per sub-block the 8 pieces of a row sum in
 * 16 bits (<= 8 * 2 * 15 * 127), vpmaddwd with the scale makes them 32-bit
 * (exact), then one conversion and d * d_a; the mins' term, dmin * m * (d_a *
 * sum a), is a separate sum over the chunk.
 */
#define K4P_NB 16 /* super-blocks per scale chunk (k = 4096) */

struct k4p_scales {
    /* [super-block][sub-block][half]: the 6-bit scale of row 8 * half + i in 16-bit lanes 2i, 2i +
     * 1 */
    _Alignas(32) int16_t sc[K4P_NB][8][2][PK2_ROWS];
    _Alignas(32) float d[K4P_NB][PK2_ROWS];     /* [super-block][row] */
    _Alignas(32) float mn[K4P_NB][8][PK2_ROWS]; /* [super-block][sub-block][row]: dmin * m */
};

/* 16 rows' 16-bit values (lanes) to floats times f (rows 0-7, 8-15): S row pair. */
static inline void k4p_store16(__m256i v, __m256 f_lo, __m256 f_hi, float *dst)
{
    _mm256_store_ps(
        dst,
        _mm256_mul_ps(f_lo, _mm256_cvtepi32_ps(_mm256_cvtepu16_epi32(_mm256_castsi256_si128(v)))));
    _mm256_store_ps(dst + 8, _mm256_mul_ps(f_hi, _mm256_cvtepi32_ps(_mm256_cvtepu16_epi32(
                                                     _mm256_extracti128_si256(v, 1)))));
}

/* 16 rows' 16-bit scales (lanes) to each row's scale twice, rows 0-7 then 8-15 (vpmaddwd operands).
 */
static inline void k4p_sc16(__m256i v, int16_t dst[2][PK2_ROWS])
{
    const __m256i x =
        _mm256_permute4x64_epi64(v, _MM_SHUFFLE(3, 1, 2, 0)); /* rows 0-3 8-11 4-7 12-15 */
    _mm256_store_si256((__m256i *)dst[0], _mm256_unpacklo_epi16(x, x));
    _mm256_store_si256((__m256i *)dst[1], _mm256_unpackhi_epi16(x, x));
}

/*
 * Super-blocks [b0, b0 + n) of the tile whose heads start at hd. A head is
 * stored in 2-byte units, each unit for the 16 rows together (kern_pack): d,
 * dmin, then the scale bytes in pairs, so the 16 rows' scale byte i is one
 * 16-bit lane per row and the 6-bit unpacking runs on all rows at once.
 */
static void k4p_unpack_scales(const uint8_t *hd, int64_t b0, int n, struct k4p_scales *S)
{
    const __m256i lo8 = _mm256_set1_epi16(0x00FF), m6 = _mm256_set1_epi16(63);
    const __m256i m4 = _mm256_set1_epi16(0x0F), top2 = _mm256_set1_epi16(0x30);
    for (int b = 0; b < n; b++) {
        const uint8_t *u = hd + (size_t)(b0 + b) * 256; /* 8 units x 16 rows x 2 bytes */
        const __m256 d_lo = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)u));
        const __m256 d_hi = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(u + 16)));
        const __m256 m_lo = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(u + 32)));
        const __m256 m_hi = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(u + 48)));
        __m256i B[12]; /* scale byte i of the 16 rows */
        KERN_UNROLL(6)
        for (int i = 0; i < 6; i++) {
            const __m256i v = _mm256_loadu_si256((const __m256i *)(u + 64 + 32 * i));
            B[2 * i] = _mm256_and_si256(v, lo8);
            B[2 * i + 1] = _mm256_srli_epi16(v, 8);
        }
        _mm256_store_ps(S->d[b], d_lo);
        _mm256_store_ps(S->d[b] + 8, d_hi);
        KERN_UNROLL(4)
        for (int j = 0; j < 4; j++) {
            k4p_sc16(_mm256_and_si256(B[j], m6), S->sc[b][j]);
            k4p_store16(_mm256_and_si256(B[j + 4], m6), m_lo, m_hi, S->mn[b][j]);
            /* j + 4: low 4 bits from byte j + 8, high 2 from the top of byte j (sc) / j + 4 (m) */
            const __m256i sc = _mm256_or_si256(_mm256_and_si256(B[j + 8], m4),
                                               _mm256_and_si256(_mm256_srli_epi16(B[j], 2), top2));
            const __m256i mn =
                _mm256_or_si256(_mm256_srli_epi16(B[j + 8], 4),
                                _mm256_and_si256(_mm256_srli_epi16(B[j + 4], 2), top2));
            k4p_sc16(sc, S->sc[b][j + 4]);
            k4p_store16(mn, m_lo, m_hi, S->mn[b][j + 4]);
        }
    }
}

/* The mins' term of half h of super-block b for one batch row (ds: its 8 d_a * sum a). */
static inline __m256 k4p_mins(const struct k4p_scales *S, int b, int h, const float *ds)
{
    __m256 m[4];
    KERN_UNROLL(4)
    for (int j = 0; j < 8; j += 2) /* summed as a tree */
        m[j / 2] = _mm256_fmadd_ps(
            _mm256_load_ps(&S->mn[b][j + 1][8 * h]), _mm256_broadcast_ss(ds + j + 1),
            _mm256_mul_ps(_mm256_load_ps(&S->mn[b][j][8 * h]), _mm256_broadcast_ss(ds + j)));
    return _mm256_add_ps(_mm256_add_ps(m[0], m[1]), _mm256_add_ps(m[2], m[3]));
}

/*
 * Sub-blocks 2g, 2g + 1 of half h: the 16-bit sums sl, sh times the 6-bit
 * scales (exact, int32), then converted and scaled by d * d_a (d: the two d_a).
 */
static inline void k4p_scale_add(__m256 acc[2], __m256i sl, __m256i sh, const struct k4p_scales *S,
                                 int b, int g, int h, __m256 dw, const float *d)
{
    const __m256i s0 =
        _mm256_madd_epi16(sl, _mm256_load_si256((const __m256i *)S->sc[b][2 * g][h]));
    const __m256i s1 =
        _mm256_madd_epi16(sh, _mm256_load_si256((const __m256i *)S->sc[b][2 * g + 1][h]));
    acc[0] =
        _mm256_fmadd_ps(_mm256_cvtepi32_ps(s0), _mm256_mul_ps(dw, _mm256_broadcast_ss(d)), acc[0]);
    acc[1] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s1), _mm256_mul_ps(dw, _mm256_broadcast_ss(d + 1)),
                             acc[1]);
}

/*
 * Half h (rows 8h..8h+7) of tile t, super-blocks [b0, b0 + n), against the two
 * batch rows bb, bb + 1: out[c][8h + i] = the chunk's sum for row 8h + i.
 */
static void k4p_rows2(const uint8_t *t, int64_t b0, int n, const struct k4p_scales *S, int h,
                      const struct kern__act *a, int64_t bb, float out[PK2_NBR][PK2_ROWS])
{
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    const int8_t *aq[2];
    const float *ad[2], *ads[2];
    __m256 acc[2][2], accm[2];
    KERN_UNROLL(2)
    for (int c = 0; c < 2; c++) {
        aq[c] = a->qs + (bb + c) * a->k + b0 * 256;
        ad[c] = a->d + (bb + c) * a->nb32 + b0 * 8;
        ads[c] = a->ds + (bb + c) * a->nb32 + b0 * 8;
        acc[c][0] = acc[c][1] = accm[c] = _mm256_setzero_ps();
    }
    for (int b = 0; b < n; b++) {
        const uint8_t *q = t + (size_t)(b0 + b) * 2048 + 32 * h;
        KERN_UNROLL(2)
        for (int c = 0; c < 2; c++)
            accm[c] = _mm256_add_ps(accm[c], k4p_mins(S, b, h, ads[c] + b * 8));
        const __m256 dw = _mm256_load_ps(&S->d[b][8 * h]);
        KERN_UNROLL(4)
        for (int g = 0; g < 4; g++) {
            __m256i sl[2], sh[2];
            sl[0] = sl[1] = sh[0] = sh[1] = _mm256_setzero_si256();
            KERN_UNROLL(4)
            for (int jj = 0; jj < 8; jj += 2) { /* two pieces per add into the sums */
                const __m256i v0 = _mm256_loadu_si256((const __m256i *)(q + (8 * g + jj) * 64));
                const __m256i v1 = _mm256_loadu_si256((const __m256i *)(q + (8 * g + jj + 1) * 64));
                const __m256i lo0 = _mm256_and_si256(v0, m4), lo1 = _mm256_and_si256(v1, m4);
                const __m256i hi0 = _mm256_and_si256(_mm256_srli_epi16(v0, 4), m4);
                const __m256i hi1 = _mm256_and_si256(_mm256_srli_epi16(v1, 4), m4);
                KERN_UNROLL(2)
                for (int c = 0; c < 2; c++) {
                    const int8_t *x = aq[c] + b * 256 + 64 * g + 4 * jj;
                    sl[c] = _mm256_add_epi16(
                        sl[c], _mm256_add_epi16(_mm256_maddubs_epi16(lo0, bcast4(x)),
                                                _mm256_maddubs_epi16(lo1, bcast4(x + 4))));
                    sh[c] = _mm256_add_epi16(
                        sh[c], _mm256_add_epi16(_mm256_maddubs_epi16(hi0, bcast4(x + 32)),
                                                _mm256_maddubs_epi16(hi1, bcast4(x + 36))));
                }
            }
            KERN_UNROLL(2)
            for (int c = 0; c < 2; c++)
                k4p_scale_add(acc[c], sl[c], sh[c], S, b, g, h, dw, ad[c] + b * 8 + 2 * g);
        }
    }
    KERN_UNROLL(2)
    for (int c = 0; c < 2; c++)
        _mm256_storeu_ps(out[c] + 8 * h,
                         _mm256_sub_ps(_mm256_add_ps(acc[c][0], acc[c][1]), accm[c]));
}

/*
 * One batch row, both halves: per 4-byte piece of the activations one pair of
 * broadcasts serves the 16 rows (the two halves' pieces share a 64-byte line).
 */
static void k4p_rows1(const uint8_t *t, int64_t b0, int n, const struct k4p_scales *S,
                      const struct kern__act *a, int64_t bb, float out[PK2_ROWS])
{
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    const int8_t *aq = a->qs + bb * a->k + b0 * 256;
    const float *ad = a->d + bb * a->nb32 + b0 * 8, *ads = a->ds + bb * a->nb32 + b0 * 8;
    __m256 acc[2][2], accm[2];
    KERN_UNROLL(2)
    for (int h = 0; h < 2; h++)
        acc[h][0] = acc[h][1] = accm[h] = _mm256_setzero_ps();
    for (int b = 0; b < n; b++) {
        const uint8_t *q = t + (size_t)(b0 + b) * 2048;
        KERN_UNROLL(2)
        for (int h = 0; h < 2; h++)
            accm[h] = _mm256_add_ps(accm[h], k4p_mins(S, b, h, ads + b * 8));
        KERN_UNROLL(4)
        for (int g = 0; g < 4; g++) {
            __m256i sl[2], sh[2];
            sl[0] = sl[1] = sh[0] = sh[1] = _mm256_setzero_si256();
            KERN_UNROLL(8)
            for (int jj = 0; jj < 8; jj++) {
                const int8_t *x = aq + b * 256 + 64 * g + 4 * jj;
                const __m256i xl = bcast4(x), xh = bcast4(x + 32);
                KERN_UNROLL(2)
                for (int h = 0; h < 2; h++) {
                    const __m256i v =
                        _mm256_loadu_si256((const __m256i *)(q + (8 * g + jj) * 64 + 32 * h));
                    sl[h] =
                        _mm256_add_epi16(sl[h], _mm256_maddubs_epi16(_mm256_and_si256(v, m4), xl));
                    sh[h] = _mm256_add_epi16(
                        sh[h],
                        _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(v, 4), m4), xh));
                }
            }
            KERN_UNROLL(2)
            for (int h = 0; h < 2; h++)
                k4p_scale_add(acc[h], sl[h], sh[h], S, b, g, h, _mm256_load_ps(&S->d[b][8 * h]),
                              ad + b * 8 + 2 * g);
        }
    }
    KERN_UNROLL(2)
    for (int h = 0; h < 2; h++)
        _mm256_storeu_ps(out + 8 * h, _mm256_sub_ps(_mm256_add_ps(acc[h][0], acc[h][1]), accm[h]));
}

static void pk2_q4_k_gemm(const void *P, size_t row_bytes, int64_t k, int64_t r0, int64_t r1,
                          const struct kern__act *a, float *y, int64_t ldy)
{
    struct k4p_scales S;
    const int64_t nb = k / 256;
    const size_t tb = row_bytes * PK2_ROWS;
    for (int64_t r = r0; r < r1; r += PK2_ROWS) {
        const uint8_t *t = (const uint8_t *)P + (size_t)(r / PK2_ROWS) * tb;
        for (int64_t b0 = 0; b0 < nb; b0 += K4P_NB) {
            const int n = nb - b0 < K4P_NB ? (int)(nb - b0) : K4P_NB;
            k4p_unpack_scales(t + (size_t)nb * 2048, b0, n, &S);
            for (int64_t bb = 0; bb < a->B; bb += PK2_NBR) {
                const int here = a->B - bb < PK2_NBR ? (int)(a->B - bb) : PK2_NBR;
                float out[PK2_NBR][PK2_ROWS];
                if (here == 2) {
                    k4p_rows2(t, b0, n, &S, 0, a, bb, out);
                    k4p_rows2(t, b0, n, &S, 1, a, bb, out);
                } else {
                    k4p_rows1(t, b0, n, &S, a, bb, out[0]);
                }
                for (int c = 0; c < here; c++) {
                    float *yr = y + (bb + c) * ldy + r;
                    for (int i = 0; i < PK2_ROWS; i++)
                        yr[i] = b0 ? yr[i] + out[c][i] : out[c][i];
                }
            }
        }
    }
}

/* ---- Q6_K, straight from the GGUF blocks ----------------------------------------- */

/*
 * h[i] = hadd(v[2i], v[2i + 1]) of 8 vectors v[j] of 8 int32 lanes -> lane j =
 * the sum of v[j]'s lanes.
 */
static inline __m256i hsum4x8_epi32(const __m256i h[4])
{
    const __m256i a = _mm256_hadd_epi32(h[0], h[1]), b = _mm256_hadd_epi32(h[2], h[3]);
    /* a: sums of v[0..3] over lanes 0-3 | over lanes 4-7; b: the same for v[4..7] */
    return _mm256_add_epi32(_mm256_permute2x128_si256(a, b, 0x20),
                            _mm256_permute2x128_si256(a, b, 0x31));
}

/*
 * Per 32-element sub-block j of a Q6_K super-block: the 6-bit quants e (0..63)
 * of one weight row times one batch row's activations (vpmaddubsw, pairs <=
 * 2 * 63 * 127), the two 16-element halves weighted by their int8 scales
 * (vpmaddwd), 8 int32 lanes. Per super-block the 8 sub-blocks' lanes are
 * summed into one vector (lane j: sub-block j), the offset 32 * sum(sc * a)
 * comes off in int32 from the activations' integer sums per 16, and one
 * conversion and one FMA with d * d_a (8 activation scales) finish it: exact
 * before the conversion.
 */
static inline __attribute__((always_inline)) void k6_tile(const block_q6_K *x, int64_t nsb,
                                                          const struct kern__act *a, int64_t b,
                                                          const int nc, float *y, int64_t ldy,
                                                          const int pf)
{
    static const int8_t ctrl[8][32] = {
#define K6C(j)                                                                                     \
    {-128, 2 * j,     -128, 2 * j,     -128, 2 * j,     -128, 2 * j,                               \
     -128, 2 * j,     -128, 2 * j,     -128, 2 * j,     -128, 2 * j,                               \
     -128, 2 * j + 1, -128, 2 * j + 1, -128, 2 * j + 1, -128, 2 * j + 1,                           \
     -128, 2 * j + 1, -128, 2 * j + 1, -128, 2 * j + 1, -128, 2 * j + 1}
        K6C(0), K6C(1), K6C(2), K6C(3), K6C(4),
        K6C(5), K6C(6), K6C(7)
#undef K6C
    };
    __m256 acc[K4_NC];
    KERN_UNROLL(6)
    for (int c = 0; c < nc; c++)
        acc[c] = _mm256_setzero_ps();
    for (int64_t sb = 0; sb < nsb; sb++) {
        const block_q6_K *xb = x + sb;
        if (pf)
            kern_pf_ahead(xb, (int)sizeof *xb);
        const __m128i sc8 = _mm_loadu_si128((const __m128i *)xb->scales);
        const __m256i S = _mm256_broadcastsi128_si256(sc8);
        const __m256i sc_lo = _mm256_cvtepi8_epi32(sc8);
        const __m256i sc_hi = _mm256_cvtepi8_epi32(_mm_srli_si128(sc8, 8));
        const __m256 d = _mm256_set1_ps(_cvtsh_ss(xb->d));
        __m256i q[K4_NC][4]; /* pairs of sub-blocks, horizontally added */
        KERN_UNROLL(2)
        for (int h = 0; h < 2; h++) {
            const __m256i L0 = _mm256_loadu_si256((const __m256i *)(xb->ql + 64 * h));
            const __m256i L1 = _mm256_loadu_si256((const __m256i *)(xb->ql + 64 * h + 32));
            const __m256i H = _mm256_loadu_si256((const __m256i *)(xb->qh + 32 * h));
            __m256i e[4];
            kern_q6k_unpack(L0, L1, H, e);
            KERN_UNROLL(2)
            for (int m = 0; m < 4; m += 2) {
                const int j = 4 * h + m; /* sub-blocks j, j + 1 */
                const __m256i sc0 = _mm256_srai_epi16(
                    _mm256_shuffle_epi8(S, _mm256_loadu_si256((const __m256i *)ctrl[j])), 8);
                const __m256i sc1 = _mm256_srai_epi16(
                    _mm256_shuffle_epi8(S, _mm256_loadu_si256((const __m256i *)ctrl[j + 1])), 8);
                KERN_UNROLL(6)
                for (int c = 0; c < nc; c++) {
                    const int8_t *aq = a->qs + (b + c) * a->k + sb * 256 + 32 * j;
                    const __m256i q0 = _mm256_madd_epi16(
                        _mm256_maddubs_epi16(e[m], _mm256_loadu_si256((const __m256i *)aq)), sc0);
                    const __m256i q1 = _mm256_madd_epi16(
                        _mm256_maddubs_epi16(e[m + 1],
                                             _mm256_loadu_si256((const __m256i *)(aq + 32))),
                        sc1);
                    q[c][j / 2] = _mm256_hadd_epi32(q0, q1);
                }
            }
        }
        KERN_UNROLL(6)
        for (int c = 0; c < nc; c++) {
            const int32_t *is = a->is16 + (b + c) * 2 * a->nb32 + sb * 16;
            const __m256i p_lo = _mm256_mullo_epi32(sc_lo, _mm256_loadu_si256((const __m256i *)is));
            const __m256i p_hi =
                _mm256_mullo_epi32(sc_hi, _mm256_loadu_si256((const __m256i *)(is + 8)));
            /* hadd gives sub-blocks 0, 1, 4, 5 | 2, 3, 6, 7 */
            const __m256i off = _mm256_slli_epi32(
                _mm256_permute4x64_epi64(_mm256_hadd_epi32(p_lo, p_hi), _MM_SHUFFLE(3, 1, 2, 0)),
                5);
            const __m256i t = _mm256_sub_epi32(hsum4x8_epi32(q[c]), off);
            const __m256 da = _mm256_loadu_ps(a->d + (b + c) * a->nb32 + sb * 8);
            acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(t), _mm256_mul_ps(d, da), acc[c]);
        }
    }
    KERN_UNROLL(6)
    for (int c = 0; c < nc; c++)
        y[(b + c) * ldy] = kern_hsum8(acc[c]);
}

#define KX_TILE(NAME, BODY, BLOCK, NC)                                                             \
    static void NAME##NC(const void *x, int64_t nsb, const struct kern__act *a, int64_t b,         \
                         float *y, int64_t ldy)                                                    \
    {                                                                                              \
        BODY((const BLOCK *)x, nsb, a, b, NC, y, ldy, 0);                                          \
    }                                                                                              \
    static void NAME##NC##_pf(const void *x, int64_t nsb, const struct kern__act *a, int64_t b,    \
                              float *y, int64_t ldy)                                               \
    {                                                                                              \
        BODY((const BLOCK *)x, nsb, a, b, NC, y, ldy, 1);                                          \
    }
KX_TILE(k4_tile, q4k_tile, block_q4_K, 1)
KX_TILE(k4_tile, q4k_tile, block_q4_K, 2)
KX_TILE(k4_tile, q4k_tile, block_q4_K, 3)
KX_TILE(k4_tile, q4k_tile, block_q4_K, 4)
KX_TILE(k5_tile, q5k_tile, block_q5_K, 1)
KX_TILE(k5_tile, q5k_tile, block_q5_K, 2)
KX_TILE(k5_tile, q5k_tile, block_q5_K, 3)
KX_TILE(k5_tile, q5k_tile, block_q5_K, 4)
KX_TILE(k6_tile, k6_tile, block_q6_K, 1)
KX_TILE(k6_tile, k6_tile, block_q6_K, 2)
KX_TILE(k6_tile, k6_tile, block_q6_K, 3)
KX_TILE(k6_tile, k6_tile, block_q6_K, 4)

typedef void (*kx_tile_fn)(const void *x, int64_t nsb, const struct kern__act *a, int64_t b,
                           float *y, int64_t ldy);

/*
 * Rows [r0, r1) x batch rows [b0, b1), KERN_ACT_PLAIN activations: blocks of
 * 16 weight rows (in L1/L2) against chunks of 64 batch rows (in L2). tiles[1]
 * are the prefetching variants (see g_kx_pf).
 */
static void kx_run(const kx_tile_fn tiles2[2][K4_NC + 1], const void *W, size_t row_bytes,
                   int64_t nsb, int64_t r0, int64_t r1, const struct kern__act *a, int64_t b0,
                   int64_t b1, float *y, int64_t ldy)
{
    const kx_tile_fn *tiles = tiles2[g_kx_pf && b1 - b0 <= K4_NC];
    for (int64_t rb = r0; rb < r1; rb += K4_RB) {
        const int64_t re = rb + K4_RB < r1 ? rb + K4_RB : r1;
        for (int64_t bc = b0; bc < b1; bc += K4_BC) {
            const int64_t be = bc + K4_BC < b1 ? bc + K4_BC : b1;
            for (int64_t r = rb; r < re; r++) {
                const void *x = (const char *)W + (size_t)r * row_bytes;
                for (int64_t b = bc; b < be; b += K4_NC) {
                    const int nc = be - b < K4_NC ? (int)(be - b) : K4_NC;
                    tiles[nc](x, nsb, a, b, y + r, ldy);
                }
            }
        }
    }
}

/*
 * Q4_1, Q5_0, Q5_1 (32-element blocks: d, [m], [qh], 16 nibble bytes), one
 * weight row against nc batch rows, straight from the GGUF blocks. The
 * unsigned quants u (0..15, or 0..31 with the fifth bits of qh) are the
 * vpmaddubsw operand. Q5_0 (w = d (u - 16)) takes 16 a off each pair in 16
 * bits, so its sums are exact before the conversion; Q4_1/Q5_1 (w = d u + m)
 * add m * (d_a * sum a).
 */
static inline __attribute__((always_inline)) void b32_tile(const uint8_t *x0, const int type,
                                                           int64_t nb, const struct kern__act *a,
                                                           int64_t b, const int nc, float *y,
                                                           int64_t ldy, const int pf)
{
    const int has_m = type != GGML_TYPE_Q5_0, has_h = type != GGML_TYPE_Q4_1;
    const size_t bsz = type == GGML_TYPE_Q4_1   ? sizeof(block_q4_1)
                       : type == GGML_TYPE_Q5_0 ? sizeof(block_q5_0)
                                                : sizeof(block_q5_1);
    const size_t qh_at = has_m ? 4 : 2, qs_at = qh_at + (has_h ? 4 : 0);
    const __m256i m4 = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1);
    const __m256i k16 = _mm256_set1_epi8(16);
    /* byte i of the 32 picks byte i / 8 of qh, then tests bit i % 8 */
    const __m256i hsel = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2,
                                          2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
    const __m256i hbit = _mm256_set1_epi64x(0x8040201008040201LL);
    __m256 acc[K4_NC][2];
    float accm[K4_NC];
    KERN_UNROLL(6)
    for (int c = 0; c < nc; c++) {
        acc[c][0] = acc[c][1] = _mm256_setzero_ps();
        accm[c] = 0.0f;
    }
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *blk = x0 + (size_t)i * bsz;
        if (pf && !(i & 1)) /* two blocks: 36-48 bytes */
            kern_pf_ahead(blk, 1);
        uint16_t dh, mh = 0;
        __builtin_memcpy(&dh, blk, 2);
        if (has_m)
            __builtin_memcpy(&mh, blk + 2, 2);
        const float d = _cvtsh_ss(dh);
        const __m128i v = _mm_loadu_si128((const __m128i *)(blk + qs_at));
        __m256i u = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(v, 4), v), m4);
        if (has_h) {
            int32_t qh;
            __builtin_memcpy(&qh, blk + qh_at, 4);
            const __m256i hb = _mm256_shuffle_epi8(_mm256_set1_epi32(qh), hsel);
            u = _mm256_or_si256(
                u, _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(hb, hbit), hbit), k16));
        }
        KERN_UNROLL(6)
        for (int c = 0; c < nc; c++) {
            const __m256i x =
                _mm256_loadu_si256((const __m256i *)(a->qs + (b + c) * a->k + 32 * i));
            __m256i p = _mm256_maddubs_epi16(u, x);
            if (!has_m)
                p = _mm256_sub_epi16(p, _mm256_maddubs_epi16(k16, x));
            const float da = a->d[(b + c) * a->nb32 + i];
            acc[c][i & 1] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_madd_epi16(p, ones)),
                                            _mm256_set1_ps(d * da), acc[c][i & 1]);
            if (has_m)
                accm[c] += _cvtsh_ss(mh) * a->ds[(b + c) * a->nb32 + i];
        }
    }
    KERN_UNROLL(6)
    for (int c = 0; c < nc; c++)
        y[(b + c) * ldy] = kern_hsum8(_mm256_add_ps(acc[c][0], acc[c][1])) + accm[c];
}

#define B32_TILE(NAME, TYPE, NC, SUF, PF)                                                          \
    static void NAME##NC##SUF(const void *x, int64_t nb, const struct kern__act *a, int64_t b,     \
                              float *y, int64_t ldy)                                               \
    {                                                                                              \
        b32_tile((const uint8_t *)x, TYPE, nb, a, b, NC, y, ldy, PF);                              \
    }
#define B32_TILES(NAME, TYPE)                                                                      \
    B32_TILE(NAME, TYPE, 1, , 0)                                                                   \
    B32_TILE(NAME, TYPE, 2, , 0)                                                                   \
    B32_TILE(NAME, TYPE, 3, , 0)                                                                   \
    B32_TILE(NAME, TYPE, 4, , 0)                                                                   \
    B32_TILE(NAME, TYPE, 1, _pf, 1)                                                                \
    B32_TILE(NAME, TYPE, 2, _pf, 1)                                                                \
    B32_TILE(NAME, TYPE, 3, _pf, 1)                                                                \
    B32_TILE(NAME, TYPE, 4, _pf, 1)                                                                \
    static void gemv_##NAME(const void *W, size_t row_bytes, int64_t k, int64_t r0, int64_t r1,    \
                            const struct kern__act *a, int64_t b0, int64_t b1, float *y,           \
                            int64_t ldy)                                                           \
    {                                                                                              \
        static const kx_tile_fn tiles[2][K4_NC + 1] = {                                            \
            {NULL, NAME##1, NAME##2, NAME##3, NAME##4},                                            \
            {NULL, NAME##1_pf, NAME##2_pf, NAME##3_pf, NAME##4_pf}};                               \
        kx_run(tiles, W, row_bytes, k / 32, r0, r1, a, b0, b1, y, ldy);                            \
    }
B32_TILES(q4_1_, GGML_TYPE_Q4_1)
B32_TILES(q5_0_, GGML_TYPE_Q5_0)
B32_TILES(q5_1_, GGML_TYPE_Q5_1)

static void gemv_q4_k(const void *W, size_t row_bytes, int64_t k, int64_t r0, int64_t r1,
                      const struct kern__act *a, int64_t b0, int64_t b1, float *y, int64_t ldy)
{
    static const kx_tile_fn tiles[2][K4_NC + 1] = {
        {NULL, k4_tile1, k4_tile2, k4_tile3, k4_tile4},
        {NULL, k4_tile1_pf, k4_tile2_pf, k4_tile3_pf, k4_tile4_pf}};
    kx_run(tiles, W, row_bytes, k / QK_K, r0, r1, a, b0, b1, y, ldy);
}

static void gemv_q5_k(const void *W, size_t row_bytes, int64_t k, int64_t r0, int64_t r1,
                      const struct kern__act *a, int64_t b0, int64_t b1, float *y, int64_t ldy)
{
    static const kx_tile_fn tiles[2][K4_NC + 1] = {
        {NULL, k5_tile1, k5_tile2, k5_tile3, k5_tile4},
        {NULL, k5_tile1_pf, k5_tile2_pf, k5_tile3_pf, k5_tile4_pf}};
    kx_run(tiles, W, row_bytes, k / QK_K, r0, r1, a, b0, b1, y, ldy);
}

/*
 * Q6_K, larger batches (K6T_MIN_B and up): 8 weight rows in the 8 lanes. Per
 * super-block the 8 rows' GGUF blocks are transposed once into a small L1
 * buffer (struct k6t_sb: 4-byte pieces of the 8 rows side by side, quants
 * unpacked to 0..63; the scales as int16 pairs per row), which then serves
 * every batch row of the chunk: per 4 activation bytes of a batch row one
 * broadcast and one vpmaddubsw multiply all 8 rows (no horizontal sums). Two
 * pieces' pair sums add in int16 (<= 2 * 2 * 63 * 127); vpmaddwd with the
 * sub-block scale takes them to int32; the offset 32 * sum(sc * a) comes off
 * per 32-element block from the activations' integer sums per 16, exact
 * before the conversion.
 */
#define K6T_MIN_B 2

struct k6t_sb {
    __m256i w[64];  /* piece p of block m (elements 32m + 4p..): w[8m + p], lane i = row i */
    __m256i sc[16]; /* sub-block j: lane i = sc_i[j] in both int16 halves */
    __m256i scp[8]; /* block m: lane i = (sc_i[2m], sc_i[2m + 1]) as int16 */
    __m256 d;       /* lane i = d_i */
};

/*
 * out[p] = dword p of the 32 bytes at off in block b[i], i = 0..7 (lane i from b[i]):
 * rows i and i + 4 loaded into the two 128-bit halves of one register, so a
 * 4x4 transpose within the halves finishes it (16 shuffles, not 24).
 */
static inline __attribute__((always_inline)) void k6t_load_t(const block_q6_K *const b[8],
                                                             size_t off, __m256i out[8])
{
    KERN_UNROLL(2)
    for (int h = 0; h < 2; h++) {
        __m256i r[4], t[4];
        KERN_UNROLL(4)
        for (int i = 0; i < 4; i++)
            r[i] = _mm256_loadu2_m128i((const __m128i *)((const uint8_t *)b[i + 4] + off + 16 * h),
                                       (const __m128i *)((const uint8_t *)b[i] + off + 16 * h));
        t[0] = _mm256_unpacklo_epi32(r[0], r[1]);
        t[1] = _mm256_unpackhi_epi32(r[0], r[1]);
        t[2] = _mm256_unpacklo_epi32(r[2], r[3]);
        t[3] = _mm256_unpackhi_epi32(r[2], r[3]);
        out[4 * h] = _mm256_unpacklo_epi64(t[0], t[2]);
        out[4 * h + 1] = _mm256_unpackhi_epi64(t[0], t[2]);
        out[4 * h + 2] = _mm256_unpacklo_epi64(t[1], t[3]);
        out[4 * h + 3] = _mm256_unpackhi_epi64(t[1], t[3]);
    }
}

/* Super-block sb of the 8 rows at x (row_bytes apart) into s. */
static void k6t_prep(const uint8_t *x, size_t row_bytes, int64_t sb, struct k6t_sb *s)
{
    const block_q6_K *b[8];
    KERN_UNROLL(8)
    for (int i = 0; i < 8; i++)
        b[i] = (const block_q6_K *)(x + (size_t)i * row_bytes) + sb;
    KERN_UNROLL(2)
    for (int h = 0; h < 2; h++) {
        __m256i l0[8], l1[8], hb[8];
        k6t_load_t(b, offsetof(block_q6_K, ql) + 64 * h, l0);
        k6t_load_t(b, offsetof(block_q6_K, ql) + 64 * h + 32, l1);
        k6t_load_t(b, offsetof(block_q6_K, qh) + 32 * h, hb);
        /* kern_q6k_unpack is lane-wise: piece p of (ql, ql + 32, qh) gives piece p of
           the half's four 32-element blocks */
        KERN_UNROLL(8)
        for (int p = 0; p < 8; p++) {
            __m256i e[4];
            kern_q6k_unpack(l0[p], l1[p], hb[p], e);
            KERN_UNROLL(4)
            for (int q = 0; q < 4; q++)
                s->w[8 * (4 * h + q) + p] = e[q];
        }
    }
    __m256 r[8]; /* row i's 16 scales as int16; transposed, dword m of the 8 rows */
    uint16_t dh[8];
    KERN_UNROLL(8)
    for (int i = 0; i < 8; i++) {
        r[i] = _mm256_castsi256_ps(
            _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)b[i]->scales)));
        dh[i] = b[i]->d;
    }
    kern_transpose8(r);
    KERN_UNROLL(8)
    for (int m = 0; m < 8; m++)
        s->scp[m] = _mm256_castps_si256(r[m]);
    const __m256i lo = _mm256_setr_epi8(0, 1, 0, 1, 4, 5, 4, 5, 8, 9, 8, 9, 12, 13, 12, 13, 0, 1, 0,
                                        1, 4, 5, 4, 5, 8, 9, 8, 9, 12, 13, 12, 13);
    const __m256i hi = _mm256_add_epi8(lo, _mm256_set1_epi8(2));
    KERN_UNROLL(8)
    for (int m = 0; m < 8; m++) {
        s->sc[2 * m] = _mm256_shuffle_epi8(s->scp[m], lo);
        s->sc[2 * m + 1] = _mm256_shuffle_epi8(s->scp[m], hi);
    }
    s->d = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)dh));
}

/*
 * Super-block sb of s against batch rows b .. b + nc - 1 of a: acc[c] (lane i:
 * row i) += the super-block's sums.
 */
static inline __attribute__((always_inline)) void k6t_tile(const struct k6t_sb *s,
                                                           const struct kern__act *a, int64_t b,
                                                           const int nc, int64_t sb, __m256 *acc)
{
    int32_t isp[K4_NC][8]; /* per block m: (is16[2m], is16[2m + 1]) as int16 */
    const int8_t *aq[K4_NC];
    const float *ad[K4_NC];
    __m256 accf[K4_NC];
    KERN_UNROLL(4)
    for (int c = 0; c < nc; c++) {
        const int32_t *is = a->is16 + (b + c) * 2 * a->nb32 + sb * 16;
        const __m256i v = _mm256_packs_epi32(_mm256_loadu_si256((const __m256i *)is),
                                             _mm256_loadu_si256((const __m256i *)(is + 8)));
        _mm256_storeu_si256((__m256i *)isp[c],
                            _mm256_permute4x64_epi64(v, _MM_SHUFFLE(3, 1, 2, 0)));
        aq[c] = a->qs + (b + c) * a->k + sb * 256;
        ad[c] = a->d + (b + c) * a->nb32 + sb * 8;
        accf[c] = acc[c];
    }
    for (int m = 0; m < 8; m++) {
        __m256i t[K4_NC][2];
        KERN_UNROLL(2)
        for (int g = 0; g < 2; g++) { /* sub-block 2m + g: pieces 4g .. 4g + 3 */
            const __m256i w0 = s->w[8 * m + 4 * g], w1 = s->w[8 * m + 4 * g + 1];
            const __m256i w2 = s->w[8 * m + 4 * g + 2], w3 = s->w[8 * m + 4 * g + 3];
            const __m256i sc = s->sc[2 * m + g];
            KERN_UNROLL(4)
            for (int c = 0; c < nc; c++) {
                const int8_t *x = aq[c] + 32 * m + 16 * g;
                const __m256i p01 = _mm256_add_epi16(_mm256_maddubs_epi16(w0, bcast4(x)),
                                                     _mm256_maddubs_epi16(w1, bcast4(x + 4)));
                const __m256i p23 = _mm256_add_epi16(_mm256_maddubs_epi16(w2, bcast4(x + 8)),
                                                     _mm256_maddubs_epi16(w3, bcast4(x + 12)));
                t[c][g] = _mm256_add_epi32(_mm256_madd_epi16(p01, sc), _mm256_madd_epi16(p23, sc));
            }
        }
        const __m256i scp = s->scp[m];
        KERN_UNROLL(4)
        for (int c = 0; c < nc; c++) {
            const __m256i off =
                _mm256_slli_epi32(_mm256_madd_epi16(scp, _mm256_set1_epi32(isp[c][m])), 5);
            const __m256i i32 = _mm256_sub_epi32(_mm256_add_epi32(t[c][0], t[c][1]), off);
            accf[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(i32),
                                      _mm256_mul_ps(s->d, _mm256_broadcast_ss(ad[c] + m)), accf[c]);
        }
    }
    KERN_UNROLL(4)
    for (int c = 0; c < nc; c++)
        acc[c] = accf[c];
}

#define K6T_NC(NC)                                                                                 \
    static void k6t_tile##NC(const struct k6t_sb *s, const struct kern__act *a, int64_t b,         \
                             int64_t sb, __m256 *acc)                                              \
    {                                                                                              \
        k6t_tile(s, a, b, NC, sb, acc);                                                            \
    }
K6T_NC(1)
K6T_NC(2)
K6T_NC(3)
K6T_NC(4)

/* Rows [r0, r1) (a multiple of 8 of them) x batch rows [b0, b1). */
static void k6t_run(const void *W, size_t row_bytes, int64_t nsb, int64_t r0, int64_t r1,
                    const struct kern__act *a, int64_t b0, int64_t b1, float *y, int64_t ldy)
{
    typedef void (*tile_fn)(const struct k6t_sb *, const struct kern__act *, int64_t, int64_t,
                            __m256 *);
    static const tile_fn tiles[K4_NC + 1] = {NULL, k6t_tile1, k6t_tile2, k6t_tile3, k6t_tile4};
    struct k6t_sb s;
    __m256 acc[K4_BC];
    for (int64_t r = r0; r < r1; r += 8) {
        const uint8_t *x = (const uint8_t *)W + (size_t)r * row_bytes;
        for (int64_t bc = b0; bc < b1; bc += K4_BC) {
            const int64_t be = bc + K4_BC < b1 ? bc + K4_BC : b1;
            for (int64_t b = bc; b < be; b++)
                acc[b - bc] = _mm256_setzero_ps();
            for (int64_t sb = 0; sb < nsb; sb++) {
                k6t_prep(x, row_bytes, sb, &s);
                for (int64_t b = bc; b < be; b += K4_NC) {
                    const int nc = be - b < K4_NC ? (int)(be - b) : K4_NC;
                    tiles[nc](&s, a, b, sb, acc + (b - bc));
                }
            }
            for (int64_t b = bc; b < be; b++) {
                float o[8];
                _mm256_storeu_ps(o, acc[b - bc]);
                for (int i = 0; i < 8; i++)
                    y[b * ldy + r + i] = o[i];
            }
        }
    }
}

static void gemv_q6_k(const void *W, size_t row_bytes, int64_t k, int64_t r0, int64_t r1,
                      const struct kern__act *a, int64_t b0, int64_t b1, float *y, int64_t ldy)
{
    static const kx_tile_fn tiles[2][K4_NC + 1] = {
        {NULL, k6_tile1, k6_tile2, k6_tile3, k6_tile4},
        {NULL, k6_tile1_pf, k6_tile2_pf, k6_tile3_pf, k6_tile4_pf}};
    if (b1 - b0 >= K6T_MIN_B) { /* whole groups of 8 rows in lanes, the rest one by one */
        const int64_t r8 = r0 + (r1 - r0) / 8 * 8;
        k6t_run(W, row_bytes, k / QK_K, r0, r8, a, b0, b1, y, ldy);
        r0 = r8;
    }
    kx_run(tiles, W, row_bytes, k / QK_K, r0, r1, a, b0, b1, y, ldy);
}

/*
 * Float weights, small batches (below OP2_MIN_B): 4 weight rows against one
 * batch row at a time, two accumulators per row (8 independent FMA chains,
 * enough to cover the FMA latency with one batch row); the 4 rows (at most
 * 32 KB of F16 at k = 4096) stay in L1 for the next batch rows.
 */
static inline __attribute__((always_inline)) void
dot4_float(enum ggml_type t, const char *const rows[4], int64_t k, const float *x, float out[4])
{
    __m256 acc[4][2];
    KERN_UNROLL(4)
    for (int i = 0; i < 4; i++)
        acc[i][0] = acc[i][1] = _mm256_setzero_ps();
    int64_t kk = 0;
    for (; kk + 16 <= k; kk += 16) {
        const __m256 x0 = _mm256_loadu_ps(x + kk), x1 = _mm256_loadu_ps(x + kk + 8);
        KERN_UNROLL(4)
        for (int i = 0; i < 4; i++) {
            acc[i][0] = _mm256_fmadd_ps(kern_load_w8(t, rows[i], kk), x0, acc[i][0]);
            acc[i][1] = _mm256_fmadd_ps(kern_load_w8(t, rows[i], kk + 8), x1, acc[i][1]);
        }
    }
    for (; kk + 8 <= k; kk += 8) {
        const __m256 x0 = _mm256_loadu_ps(x + kk);
        KERN_UNROLL(4)
        for (int i = 0; i < 4; i++)
            acc[i][0] = _mm256_fmadd_ps(kern_load_w8(t, rows[i], kk), x0, acc[i][0]);
    }
    KERN_UNROLL(4)
    for (int i = 0; i < 4; i++) {
        float v = kern_hsum8(_mm256_add_ps(acc[i][0], acc[i][1]));
        for (int64_t q = kk; q < k; q++)
            v += kern_load_w1(t, rows[i], q) * x[q];
        out[i] = v;
    }
}

#define DOT4(NAME, T)                                                                              \
    static void NAME(const char *const rows[4], int64_t k, const float *x, float out[4])           \
    {                                                                                              \
        dot4_float(T, rows, k, x, out);                                                            \
    }
DOT4(dot4_f32, GGML_TYPE_F32)
DOT4(dot4_f16, GGML_TYPE_F16)
DOT4(dot4_bf16, GGML_TYPE_BF16)

static void avx2_gemv_float(enum ggml_type t, const void *W, size_t row_bytes, int64_t k,
                            int64_t r0, int64_t r1, const float *x, int64_t B, float *y,
                            int64_t ldy)
{
    void (*dot4)(const char *const[4], int64_t, const float *, float[4]) =
        t == GGML_TYPE_F16    ? dot4_f16
        : t == GGML_TYPE_BF16 ? dot4_bf16
                              : dot4_f32;
    for (int64_t r = r0; r < r1; r += 4) {
        const int nr = r1 - r < 4 ? (int)(r1 - r) : 4;
        const char *rows[4];
        for (int i = 0; i < 4; i++) /* past the end: row r again, its sums unused */
            rows[i] = (const char *)W + (size_t)(r + (i < nr ? i : 0)) * row_bytes;
        for (int64_t b = 0; b < B; b++) {
            float out[4];
            dot4(rows, k, x + b * k, out);
            for (int i = 0; i < nr; i++)
                y[b * ldy + r + i] = out[i];
        }
    }
}

/*
 * Packed-row unpacking (kern__ops.pack_row) for the types that still take the
 * packed-row path at this level: Q2_K and Q3_K vectorized, the rest scalar.
 */
static void avx2_pack_row(enum ggml_type t, const void *row, int64_t k, int8_t *q, float *s,
                          float *m, int32_t *qs128)
{
    if (qs128 && t == GGML_TYPE_Q2_K)
        for (int64_t i = 0; i < k / QK_K; i++, q += QK_K, s += 16, m += 16, qs128 += 16)
            kern_unpack_q2k((const block_q2_K *)row + i, q, s, m, qs128);
    else if (qs128 && t == GGML_TYPE_Q3_K)
        for (int64_t i = 0; i < k / QK_K; i++, q += QK_K, s += 16, m += 16, qs128 += 16)
            kern_unpack_q3k((const block_q3_K *)row + i, q, s, m, qs128);
    else
        kern__pack_row(t, row, k, q, s, m, qs128);
}

/* Float weights: 4-row dot products for small batches, else outer products. */
static void avx2_gemm_float(enum ggml_type t, const void *W, size_t row_bytes, int64_t k,
                            int64_t r0, int64_t r1, const float *x, int64_t B, float *y,
                            int64_t ldy, float *scratch)
{
    if (B >= OP2_MIN_B && scratch)
        avx2_gemm_float_op(t, W, row_bytes, k, r0, r1, x, B, y, ldy, scratch);
    else
        avx2_gemv_float(t, W, row_bytes, k, r0, r1, x, B, y, ldy);
}

void kern__init_avx2_gemm(struct kern__ops *o)
{
    o->gemm_float = avx2_gemm_float;
    o->pack_row = avx2_pack_row;
    o->gemv[GGML_TYPE_Q4_K] = gemv_q4_k;
    o->gemv_layout[GGML_TYPE_Q4_K] = KERN_ACT_PLAIN;
    o->gemv_max_b[GGML_TYPE_Q4_K] = 255;
    static const enum ggml_type b32[] = {GGML_TYPE_Q4_1, GGML_TYPE_Q5_0, GGML_TYPE_Q5_1};
    const kern__gemv_fn b32_fn[] = {gemv_q4_1_, gemv_q5_0_, gemv_q5_1_};
    for (int i = 0; i < 3; i++) {
        o->gemv[b32[i]] = b32_fn[i];
        o->gemv_layout[b32[i]] = KERN_ACT_PLAIN;
        o->gemv_max_b[b32[i]] = 255;
    }
    o->gemv[GGML_TYPE_Q5_K] = gemv_q5_k;
    o->gemv_layout[GGML_TYPE_Q5_K] = KERN_ACT_PLAIN;
    o->gemv_max_b[GGML_TYPE_Q5_K] = 255;
    o->gemv[GGML_TYPE_Q6_K] = gemv_q6_k;
    o->gemv_layout[GGML_TYPE_Q6_K] = KERN_ACT_PLAIN;
    o->gemv_max_b[GGML_TYPE_Q6_K] = 255;
    o->pk_gemm[GGML_TYPE_Q4_0] = pk2_q4_0_gemm;
    o->pk_gemm[GGML_TYPE_Q8_0] = pk2_q8_0_gemm;
    o->pk_gemm[GGML_TYPE_Q5_0] = pk2_q5_0_gemm;
    o->pk_gemm[GGML_TYPE_Q4_K] = pk2_q4_k_gemm;
    o->pk_natural = 1;
    g_kx_pf = kern__gemv_prefetch();
}

#else

void kern__init_avx2_gemm(struct kern__ops *o)
{
    (void)o;
}

#endif
