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
#include <stdint.h>

#define PK2_ROWS 16 /* KERN_PACK_ROWS */
#define PK2_NBR  2  /* batch rows per register tile */

static inline __m256i bcast4(const int8_t *p)
{
    int32_t v;
    __builtin_memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

/*
 * Tile t (nb blocks) against batch rows b0..b0+nbr-1 of a: out[b][r] for the
 * tile's 16 rows. pf: the next tile, prefetched a block ahead (or NULL).
 */
static inline __attribute__((always_inline)) void
pk2_tile(const uint8_t *t, int64_t nb, const struct kern__act *a, int64_t b0, const int nbr,
         const int q8, const uint8_t *pf, float out[PK2_NBR][PK2_ROWS])
{
    const size_t qb = q8 ? 512 : 256; /* quant bytes of a block of the tile */
    const uint8_t *sc = t + (size_t)nb * qb;
    const __m256i m4 = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1);
    const int8_t *aq[PK2_NBR];
    const float *ad[PK2_NBR];
    const int32_t *ai[PK2_NBR];
    __m256 accf[PK2_NBR][2];
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
        for (int c = 0; c < nbr; c++)
            acc[c][0] = acc[c][1] = _mm256_setzero_si256();
        if (q8) {
            for (int j = 0; j < 8; j++) {
                const __m256i w0 = _mm256_loadu_si256((const __m256i *)(q + 64 * j));
                const __m256i w1 = _mm256_loadu_si256((const __m256i *)(q + 64 * j + 32));
                const __m256i u0 = _mm256_abs_epi8(w0), u1 = _mm256_abs_epi8(w1);
                for (int c = 0; c < nbr; c++) {
                    const __m256i x = bcast4(aq[c] + blk * 32 + 4 * j);
                    const __m256i p0 = _mm256_maddubs_epi16(u0, _mm256_sign_epi8(x, w0));
                    const __m256i p1 = _mm256_maddubs_epi16(u1, _mm256_sign_epi8(x, w1));
                    acc[c][0] = _mm256_add_epi32(acc[c][0], _mm256_madd_epi16(p0, ones));
                    acc[c][1] = _mm256_add_epi32(acc[c][1], _mm256_madd_epi16(p1, ones));
                }
            }
        } else { /* low nibbles: elements 4j..4j+3; high: 16 + 4j.. */
            for (int j = 0; j < 4; j++) {
                const __m256i v0 = _mm256_loadu_si256((const __m256i *)(q + 64 * j));
                const __m256i v1 = _mm256_loadu_si256((const __m256i *)(q + 64 * j + 32));
                const __m256i l0 = _mm256_and_si256(v0, m4), l1 = _mm256_and_si256(v1, m4);
                const __m256i h0 = _mm256_and_si256(_mm256_srli_epi16(v0, 4), m4);
                const __m256i h1 = _mm256_and_si256(_mm256_srli_epi16(v1, 4), m4);
                for (int c = 0; c < nbr; c++) {
                    const __m256i xl = bcast4(aq[c] + blk * 32 + 4 * j);
                    const __m256i xh = bcast4(aq[c] + blk * 32 + 16 + 4 * j);
                    acc[c][0] = _mm256_add_epi16(acc[c][0], _mm256_maddubs_epi16(l0, xl));
                    acc[c][1] = _mm256_add_epi16(acc[c][1], _mm256_maddubs_epi16(l1, xl));
                    acc[c][0] = _mm256_add_epi16(acc[c][0], _mm256_maddubs_epi16(h0, xh));
                    acc[c][1] = _mm256_add_epi16(acc[c][1], _mm256_maddubs_epi16(h1, xh));
                }
            }
        }
        const __m256 dw0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(sc + blk * 32)));
        const __m256 dw1 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(sc + blk * 32 + 16)));
        for (int c = 0; c < nbr; c++) {
            __m256i i0 = acc[c][0], i1 = acc[c][1];
            if (!q8) {
                const __m256i off = _mm256_set1_epi32(8 * (ai[c][2 * blk] + ai[c][2 * blk + 1]));
                i0 = _mm256_sub_epi32(_mm256_madd_epi16(i0, ones), off);
                i1 = _mm256_sub_epi32(_mm256_madd_epi16(i1, ones), off);
            }
            const __m256 da = _mm256_set1_ps(ad[c][blk]);
            accf[c][0] =
                _mm256_fmadd_ps(_mm256_cvtepi32_ps(i0), _mm256_mul_ps(dw0, da), accf[c][0]);
            accf[c][1] =
                _mm256_fmadd_ps(_mm256_cvtepi32_ps(i1), _mm256_mul_ps(dw1, da), accf[c][1]);
        }
    }
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
                for (int i = 0; i < PK2_ROWS; i++)
                    y[(b + c) * ldy + r + i] = out[c][i];
        }
    }
}

#define PK2_TYPE(NAME, Q8)                                                                         \
    static void NAME##_1(const uint8_t *t, int64_t nb, const struct kern__act *a, int64_t b0,      \
                         const uint8_t *pf, float out[PK2_NBR][PK2_ROWS])                          \
    {                                                                                              \
        pk2_tile(t, nb, a, b0, 1, Q8, pf, out);                                                    \
    }                                                                                              \
    static void NAME##_2(const uint8_t *t, int64_t nb, const struct kern__act *a, int64_t b0,      \
                         const uint8_t *pf, float out[PK2_NBR][PK2_ROWS])                          \
    {                                                                                              \
        pk2_tile(t, nb, a, b0, 2, Q8, pf, out);                                                    \
    }                                                                                              \
    static void NAME##_gemm(const void *P, size_t row_bytes, int64_t k, int64_t r0, int64_t r1,    \
                            const struct kern__act *a, float *y, int64_t ldy)                      \
    {                                                                                              \
        pk2_run(NAME##_1, NAME##_2, k / 32, P, row_bytes, r0, r1, a, y, ldy);                      \
    }
PK2_TYPE(pk2_q4_0, 0)
PK2_TYPE(pk2_q8_0, 1)

void kern__init_avx2_gemm(struct kern__ops *o)
{
    o->pk_gemm[GGML_TYPE_Q4_0] = pk2_q4_0_gemm;
    o->pk_gemm[GGML_TYPE_Q8_0] = pk2_q8_0_gemm;
    o->pk_natural = 1;
}

#else

void kern__init_avx2_gemm(struct kern__ops *o)
{
    (void)o;
}

#endif
