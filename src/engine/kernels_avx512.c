/*
 * kernels_avx512.c - AVX-512 (F/BW/VL/DQ/VNNI) kernels.
 *
 * Built with AVX-512 flags; only called after run-time detection (kernels.c).
 * Integer dot products use vpdpbusd (unsigned x signed bytes, summed by 4
 * into int32 lanes):
 *  - Q4_0 GEMV: weight nibbles are the unsigned side (0..15), activations the
 *    signed side; the -8 offset is applied once per block as -8 * d * sum(a).
 *  - Q8_0 GEMV: weights are made unsigned by XOR 0x80 (w + 128); the +128
 *    offset is removed the same way.
 *  - Batched products (panel_gemm): activations are the unsigned side (q + 128),
 *    8 batch rows interleaved so one 256-bit vpdpbusd against a broadcast
 *    4-byte piece of a packed weight row advances 8 rows; the offset is
 *    removed with the packed row's 128 * sum(q) per block.
 *
 * Not for: anything that must run without AVX-512.
 */
#include "engine/kernels_impl.h"

#if defined(__x86_64__)

#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "engine/quant_blocks.h"

/* fp16 -> float with F16C (exact, like fp16.h's reference). */
static inline float h2f(ggml_fp16_t h)
{
    return _cvtsh_ss(h);
}

/* ---- activation quantization ----------------------------------------------- */

/* Quantizes one 32-block: q (32 int8, natural order), returns d and the two half sums. */
static inline void q8_block(const float *x, int8_t *q, float *d, int *s0, int *s1)
{
    __m512 v0 = _mm512_loadu_ps(x), v1 = _mm512_loadu_ps(x + 16);
    __m512 amax = _mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1));
    float m = _mm512_reduce_max_ps(amax);
    float id = m > 0.0f ? 127.0f / m : 0.0f;
    *d = m / 127.0f;
    __m512 vid = _mm512_set1_ps(id);
    __m512i i0 = _mm512_cvtps_epi32(_mm512_mul_ps(v0, vid));
    __m512i i1 = _mm512_cvtps_epi32(_mm512_mul_ps(v1, vid));
    _mm_storeu_si128((__m128i *)q, _mm512_cvtsepi32_epi8(i0));
    _mm_storeu_si128((__m128i *)(q + 16), _mm512_cvtsepi32_epi8(i1));
    *s0 = _mm512_reduce_add_epi32(i0);
    *s1 = _mm512_reduce_add_epi32(i1);
}

static void avx512_quantize_act(const float *x, int64_t r0, int64_t r1, struct kern__act *a)
{
    int64_t k = a->k, nb = a->nb32;
    int8_t q[32];
    if (a->layout == KERN_ACT_IL8) {
        /* r0 is a multiple of 8; rows of the last group past B are zero */
        int64_t g0 = r0 / KERN_IL, g1 = (r1 + KERN_IL - 1) / KERN_IL;
        for (int64_t g = g0; g < g1; g++) {
            uint8_t *qs = (uint8_t *)a->qs + g * KERN_IL * k;
            float *d = a->d + g * nb * KERN_IL, *ds = a->ds + g * nb * KERN_IL;
            float *ds16 = a->ds16 + g * 2 * nb * KERN_IL;
            for (int64_t b = 0; b < nb; b++) {
                /* quantize block b of the 8 rows, then transpose 8 x 8 dwords */
                __m256i v[8];
                for (int i = 0; i < KERN_IL; i++) {
                    int64_t r = g * KERN_IL + i;
                    float dd = 0.0f;
                    int s0 = 0, s1 = 0;
                    if (r < a->B)
                        q8_block(x + r * k + b * 32, q, &dd, &s0, &s1);
                    else
                        memset(q, 0, sizeof(q));
                    v[i] = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)q),
                                            _mm256_set1_epi8((char)0x80));
                    d[b * KERN_IL + i] = dd;
                    ds[b * KERN_IL + i] = dd * (float)(s0 + s1);
                    ds16[2 * b * KERN_IL + i] = dd * (float)s0;
                    ds16[(2 * b + 1) * KERN_IL + i] = dd * (float)s1;
                }
                __m256i t[8], u[8];
                for (int i = 0; i < 8; i += 2) {
                    t[i] = _mm256_unpacklo_epi32(v[i], v[i + 1]);
                    t[i + 1] = _mm256_unpackhi_epi32(v[i], v[i + 1]);
                }
                for (int i = 0; i < 8; i += 4) {
                    u[i] = _mm256_unpacklo_epi64(t[i], t[i + 2]);
                    u[i + 1] = _mm256_unpackhi_epi64(t[i], t[i + 2]);
                    u[i + 2] = _mm256_unpacklo_epi64(t[i + 1], t[i + 3]);
                    u[i + 3] = _mm256_unpackhi_epi64(t[i + 1], t[i + 3]);
                }
                /* u[0..3]: dwords 0..3 (low lane) and 4..7 (high lane) of rows 0..3; u[4..7]
                 * rows 4..7 */
                __m256i *dst = (__m256i *)(qs + b * 32 * KERN_IL);
                for (int j = 0; j < 4; j++) {
                    _mm256_store_si256(dst + j, _mm256_permute2x128_si256(u[j], u[j + 4], 0x20));
                    _mm256_store_si256(dst + j + 4,
                                       _mm256_permute2x128_si256(u[j], u[j + 4], 0x31));
                }
            }
        }
        return;
    }
    for (int64_t r = r0; r < r1; r++) {
        int8_t *qs = a->qs + r * k;
        float *d = a->d + r * nb, *ds = a->ds + r * nb, *ds16 = a->ds16 + r * 2 * nb;
        int64_t full = a->layout == KERN_ACT_Q4P ? nb / 4 * 4 : 0;
        for (int64_t b = 0; b < nb; b++) {
            int s0, s1;
            if (b < full) {
                /* group g = b / 4, block j = b % 4: halves at g*128 + j*16 and + 64 */
                q8_block(x + r * k + b * 32, q, &d[b], &s0, &s1);
                int8_t *gp = qs + (b / 4) * 128 + (b % 4) * 16;
                memcpy(gp, q, 16);
                memcpy(gp + 64, q + 16, 16);
            } else if (a->layout == KERN_ACT_K4P) {
                /* piece p of each 128 goes to slot (0, 2, 1, 3)[p] */
                static const int slot[4] = {0, 2, 1, 3};
                int64_t base = (b / 4) * 128;
                q8_block(x + r * k + b * 32, qs + base + slot[b % 4] * 32, &d[b], &s0, &s1);
            } else if (a->layout == KERN_ACT_U8) {
                q8_block(x + r * k + b * 32, q, &d[b], &s0, &s1);
                __m256i v = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)q),
                                             _mm256_set1_epi8((char)0x80));
                _mm256_storeu_si256((__m256i *)(qs + b * 32), v);
            } else {
                q8_block(x + r * k + b * 32, qs + b * 32, &d[b], &s0, &s1);
            }
            ds[b] = d[b] * (float)(s0 + s1);
            ds16[2 * b] = d[b] * (float)s0;
            ds16[2 * b + 1] = d[b] * (float)s1;
        }
    }
}

/* ---- Q4_0 / Q8_0 direct products --------------------------------------------- */

static inline float hsum256(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline int32_t hsum256_epi32(__m256i v)
{
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 1));
    return _mm_cvtsi128_si32(s);
}

/* Eight fp16 scales at p, p + stride, ... (scalar loads: cheaper than a gather here). */
static inline __m256 load_scales8(const uint8_t *p, int stride)
{
    uint16_t h[8];
    for (int i = 0; i < 8; i++)
        memcpy(&h[i], p + i * stride, 2);
    __m128i v = _mm_cvtsi32_si128(h[0]);
    v = _mm_insert_epi16(v, h[1], 1);
    v = _mm_insert_epi16(v, h[2], 2);
    v = _mm_insert_epi16(v, h[3], 3);
    v = _mm_insert_epi16(v, h[4], 4);
    v = _mm_insert_epi16(v, h[5], 5);
    v = _mm_insert_epi16(v, h[6], 6);
    v = _mm_insert_epi16(v, h[7], 7);
    return _mm256_cvtph_ps(v);
}

static float dot_q4_0_row(const block_q4_0 *x, int64_t nb, const int8_t *aq, const float *ad,
                          const float *ads)
{
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    const __m512i idx0 = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
    const __m512i idx1 = _mm512_add_epi32(idx0, _mm512_set1_epi32(4));
    __m512 acc = _mm512_setzero_ps();
    __m256 corr = _mm256_setzero_ps();
    int64_t b = 0;
    /*
     * A group of 8 blocks is 144 bytes; block i's scale is word 9i, its 16
     * nibble bytes words 9i+1..9i+8. Four 64-byte loads inside the group and
     * three word permutes collect the 8 scales and the 2 x 64 nibble bytes.
     */
    const __m512i widx = _mm512_castsi128_si512(_mm_setr_epi16(0, 9, 18, 27, 36, 45, 54, 63));
    const __m512i qidx0 = _mm512_setr_epi32(
        1 | 2 << 16, 3 | 4 << 16, 5 | 6 << 16, 7 | 8 << 16, 10 | 11 << 16, 12 | 13 << 16,
        14 | 15 << 16, 16 | 17 << 16, 19 | 20 << 16, 21 | 22 << 16, 23 | 24 << 16, 25 | 26 << 16,
        28 | 29 << 16, 30 | 31 << 16, 32 | 33 << 16, 34 | 35 << 16);
    /* second half: loads at +72 and +80 bytes; words >= 32 come from the +80 load */
    const __m512i qidx1 = _mm512_setr_epi32(
        1 | 2 << 16, 3 | 4 << 16, 5 | 6 << 16, 7 | 8 << 16, 10 | 11 << 16, 12 | 13 << 16,
        14 | 15 << 16, 16 | 17 << 16, 19 | 20 << 16, 21 | 22 << 16, 23 | 24 << 16, 25 | 26 << 16,
        28 | 29 << 16, 30 | 31 << 16, 60 | 61 << 16, 62 | 63 << 16);
    for (; b + 8 <= nb; b += 8) {
        const char *gp = (const char *)&x[b];
        __m512i z0 = _mm512_loadu_si512(gp), z1 = _mm512_loadu_si512(gp + 64);
        __m512i z2 = _mm512_loadu_si512(gp + 72), z3 = _mm512_loadu_si512(gp + 80);
        __m256 dw =
            _mm256_cvtph_ps(_mm512_castsi512_si128(_mm512_permutex2var_epi16(z0, widx, z1)));
        __m256 s8 = _mm256_mul_ps(dw, _mm256_loadu_ps(ad + b));
        corr = _mm256_fmadd_ps(dw, _mm256_loadu_ps(ads + b), corr);
        __m512 s16 = _mm512_castps256_ps512(s8);
        __m512i v0 = _mm512_permutex2var_epi16(z0, qidx0, z1);
        __m512i v1 = _mm512_permutex2var_epi16(z2, qidx1, z3);
        const int8_t *ap = aq + b * 32;
        __m512i s0 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_and_si512(v0, m4),
                                         _mm512_loadu_si512(ap));
        s0 = _mm512_dpbusd_epi32(s0, _mm512_and_si512(_mm512_srli_epi16(v0, 4), m4),
                                 _mm512_loadu_si512(ap + 64));
        __m512i s1 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_and_si512(v1, m4),
                                         _mm512_loadu_si512(ap + 128));
        s1 = _mm512_dpbusd_epi32(s1, _mm512_and_si512(_mm512_srli_epi16(v1, 4), m4),
                                 _mm512_loadu_si512(ap + 192));
        acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s0), _mm512_permutexvar_ps(idx0, s16), acc);
        acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s1), _mm512_permutexvar_ps(idx1, s16), acc);
    }
    float sum = _mm512_reduce_add_ps(acc) - 8.0f * hsum256(corr);
    /* remaining blocks: groups of 4 in Q4P order, then natural order */
    for (; b < nb; b++) {
        const int8_t *lo_a, *hi_a;
        if (b < nb / 4 * 4) {
            lo_a = aq + (b / 4) * 128 + (b % 4) * 16;
            hi_a = lo_a + 64;
        } else {
            lo_a = aq + b * 32;
            hi_a = lo_a + 16;
        }
        int isum = 0;
        for (int j = 0; j < 16; j++)
            isum += ((x[b].qs[j] & 0xF) - 8) * lo_a[j] + ((x[b].qs[j] >> 4) - 8) * hi_a[j];
        sum += h2f(x[b].d) * ad[b] * (float)isum;
    }
    return sum;
}

static void gemv_q4_0(const void *W, size_t row_bytes, int64_t k, int64_t r0, int64_t r1,
                      const struct kern__act *a, int64_t b0, int64_t b1, float *y, int64_t ldy)
{
    int64_t nb = k / 32;
    for (int64_t r = r0; r < r1; r++) {
        const block_q4_0 *x = (const block_q4_0 *)((const char *)W + (size_t)r * row_bytes);
        for (int64_t b = b0; b < b1; b++)
            y[b * ldy + r] = dot_q4_0_row(x, nb, a->qs + b * k, a->d + b * nb, a->ds + b * nb);
    }
}

static float dot_q8_0_row(const block_q8_0 *x, int64_t nb, const int8_t *aq, const float *ad,
                          const float *ads)
{
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    const __m512i idx[4] = {
        _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1),
        _mm512_setr_epi32(2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3),
        _mm512_setr_epi32(4, 4, 4, 4, 4, 4, 4, 4, 5, 5, 5, 5, 5, 5, 5, 5),
        _mm512_setr_epi32(6, 6, 6, 6, 6, 6, 6, 6, 7, 7, 7, 7, 7, 7, 7, 7),
    };
    __m512 acc = _mm512_setzero_ps();
    __m256 corr = _mm256_setzero_ps();
    int64_t b = 0;
    for (; b + 8 <= nb; b += 8) {
        __m256 dw = load_scales8((const uint8_t *)&x[b].d, sizeof(block_q8_0));
        __m256 s8 = _mm256_mul_ps(dw, _mm256_loadu_ps(ad + b));
        corr = _mm256_fmadd_ps(dw, _mm256_loadu_ps(ads + b), corr);
        __m512 s16 = _mm512_castps256_ps512(s8);
#pragma GCC unroll 4
        for (int h = 0; h < 4; h++) {
            const block_q8_0 *xb = x + b + 2 * h;
            __m512i v = _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)xb[0].qs));
            v = _mm512_inserti64x4(v, _mm256_loadu_si256((const __m256i *)xb[1].qs), 1);
            v = _mm512_xor_si512(v, flip);
            __m512i s = _mm512_dpbusd_epi32(_mm512_setzero_si512(), v,
                                            _mm512_loadu_si512(aq + (b + 2 * h) * 32));
            acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_permutexvar_ps(idx[h], s16), acc);
        }
    }
    float sum = _mm512_reduce_add_ps(acc) - 128.0f * hsum256(corr);
    for (; b < nb; b++) {
        int isum = 0;
        for (int j = 0; j < 32; j++)
            isum += x[b].qs[j] * aq[b * 32 + j];
        sum += h2f(x[b].d) * ad[b] * (float)isum;
    }
    return sum;
}

static void gemv_q8_0(const void *W, size_t row_bytes, int64_t k, int64_t r0, int64_t r1,
                      const struct kern__act *a, int64_t b0, int64_t b1, float *y, int64_t ldy)
{
    int64_t nb = k / 32;
    for (int64_t r = r0; r < r1; r++) {
        const block_q8_0 *x = (const block_q8_0 *)((const char *)W + (size_t)r * row_bytes);
        for (int64_t b = b0; b < b1; b++)
            y[b * ldy + r] = dot_q8_0_row(x, nb, a->qs + b * k, a->d + b * nb, a->ds + b * nb);
    }
}

/* ---- K-quant direct products ------------------------------------------------ */

/*
 * The 8 6-bit scales (lanes 0..7) and mins (lanes 8..15) of a Q4_K/Q5_K
 * super-block, as floats. sc12 must have 16 readable bytes. With u0..u2 the
 * three little-endian words of the 12 bytes, the unpacked 16 bytes are
 *   u0 & 0x3f.., u2 & 0x0f.. | ((u0 >> 6) & 0x03..) << 4,
 *   u1 & 0x3f.., (u2 >> 4) & 0x0f.. | ((u1 >> 6) & 0x03..) << 4
 * computed here in one vector (no scalar stores feeding a vector load).
 */
static inline __m512 k4_scales_mins(const uint8_t *sc12)
{
    __m128i v = _mm_loadu_si128((const __m128i *)sc12);
    __m128i lo = _mm_shuffle_epi32(v, _MM_SHUFFLE(2, 1, 2, 0)); /* u0 u2 u1 u2 */
    __m128i hi = _mm_shuffle_epi32(v, _MM_SHUFFLE(1, 1, 0, 0)); /* -- u0 -- u1 */
    lo = _mm_and_si128(_mm_srlv_epi32(lo, _mm_setr_epi32(0, 0, 0, 4)),
                       _mm_setr_epi32(0x3f3f3f3f, 0x0f0f0f0f, 0x3f3f3f3f, 0x0f0f0f0f));
    hi = _mm_slli_epi32(_mm_and_si128(_mm_srli_epi32(hi, 6), _mm_set1_epi32(0x03030303)), 4);
    hi = _mm_and_si128(hi, _mm_setr_epi32(0, -1, 0, -1));
    return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_or_si128(lo, hi)));
}

/*
 * Q4_K / Q5_K row . K4P activations. Per super-block: two 64-byte nibble loads
 * give sub-blocks (0,2), (1,3), (4,6), (5,7) as 512-bit vectors; for Q5_K the
 * fifth bits come from qh (bit j of qh[l] belongs to sub-block j), moved to
 * bit 4 with per-half shifts. Each lane group gets its sub-block's
 * d * scale * d_act; mins are applied with d_act * sum(a).
 */
static inline __attribute__((always_inline)) float dot_k4_row(const uint8_t *row, size_t bsz,
                                                              int is5, int64_t nsb,
                                                              const int8_t *aq, const float *ad,
                                                              const float *ads)
{
    const __m512i m4 = _mm512_set1_epi8(0x0F), b4 = _mm512_set1_epi8(0x10);
    const __m512i il0 = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 2, 2, 2, 2, 2, 2, 2, 2);
    const __m512i ih0 = _mm512_setr_epi32(1, 1, 1, 1, 1, 1, 1, 1, 3, 3, 3, 3, 3, 3, 3, 3);
    const __m512i il1 = _mm512_add_epi32(il0, _mm512_set1_epi32(4));
    const __m512i ih1 = _mm512_add_epi32(ih0, _mm512_set1_epi32(4));
    /* shifts bringing qh bit j to bit 4, for sub-blocks (0,2) (1,3) left, (4,6) (5,7) right */
    const __m512i sl0 = _mm512_setr_epi64(4, 4, 4, 4, 2, 2, 2, 2);
    const __m512i sl1 = _mm512_setr_epi64(3, 3, 3, 3, 1, 1, 1, 1);
    const __m512i sr2 = _mm512_setr_epi64(0, 0, 0, 0, 2, 2, 2, 2);
    const __m512i sr3 = _mm512_setr_epi64(1, 1, 1, 1, 3, 3, 3, 3);
    __m512 acc = _mm512_setzero_ps();
    __m256 accm = _mm256_setzero_ps();
    for (int64_t i = 0; i < nsb; i++) {
        const uint8_t *xb = row + (size_t)i * bsz;
        ggml_fp16_t dh, dmh;
        memcpy(&dh, xb, 2);
        memcpy(&dmh, xb + 2, 2);
        const uint8_t *qs = xb + 4 + K_SCALE_SIZE + (is5 ? QK_K / 8 : 0);
        __m512 sm = k4_scales_mins(xb + 4);
        __m256 s8 =
            _mm256_mul_ps(_mm512_castps512_ps256(sm),
                          _mm256_mul_ps(_mm256_set1_ps(h2f(dh)), _mm256_loadu_ps(ad + 8 * i)));
        accm =
            _mm256_fmadd_ps(_mm256_mul_ps(_mm512_extractf32x8_ps(sm, 1), _mm256_set1_ps(h2f(dmh))),
                            _mm256_loadu_ps(ads + 8 * i), accm);
        __m512 s16 = _mm512_castps256_ps512(s8);
        const int8_t *ap = aq + 256 * i;
        __m512i z0 = _mm512_loadu_si512(qs), z1 = _mm512_loadu_si512(qs + 64);
        __m512i w0 = _mm512_and_si512(z0, m4), w1 = _mm512_and_si512(_mm512_srli_epi16(z0, 4), m4);
        __m512i w2 = _mm512_and_si512(z1, m4), w3 = _mm512_and_si512(_mm512_srli_epi16(z1, 4), m4);
        if (is5) {
            __m512i h = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(xb + 16)));
            w0 = _mm512_or_si512(w0, _mm512_and_si512(_mm512_sllv_epi64(h, sl0), b4));
            w1 = _mm512_or_si512(w1, _mm512_and_si512(_mm512_sllv_epi64(h, sl1), b4));
            w2 = _mm512_or_si512(w2, _mm512_and_si512(_mm512_srlv_epi64(h, sr2), b4));
            w3 = _mm512_or_si512(w3, _mm512_and_si512(_mm512_srlv_epi64(h, sr3), b4));
        }
        __m512i a0 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w0, _mm512_loadu_si512(ap));
        __m512i a1 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w1, _mm512_loadu_si512(ap + 64));
        __m512i a2 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w2, _mm512_loadu_si512(ap + 128));
        __m512i a3 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w3, _mm512_loadu_si512(ap + 192));
        acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(a0), _mm512_permutexvar_ps(il0, s16), acc);
        acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(a1), _mm512_permutexvar_ps(ih0, s16), acc);
        acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(a2), _mm512_permutexvar_ps(il1, s16), acc);
        acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(a3), _mm512_permutexvar_ps(ih1, s16), acc);
    }
    return _mm512_reduce_add_ps(acc) - hsum256(accm);
}

static void gemv_q4_k(const void *W, size_t row_bytes, int64_t k, int64_t r0, int64_t r1,
                      const struct kern__act *a, int64_t b0, int64_t b1, float *y, int64_t ldy)
{
    int64_t nb = k / 32;
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *x = (const uint8_t *)W + (size_t)r * row_bytes;
        for (int64_t b = b0; b < b1; b++)
            y[b * ldy + r] = dot_k4_row(x, sizeof(block_q4_K), 0, k / QK_K, a->qs + b * k,
                                        a->d + b * nb, a->ds + b * nb);
    }
}

static void gemv_q5_k(const void *W, size_t row_bytes, int64_t k, int64_t r0, int64_t r1,
                      const struct kern__act *a, int64_t b0, int64_t b1, float *y, int64_t ldy)
{
    int64_t nb = k / 32;
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *x = (const uint8_t *)W + (size_t)r * row_bytes;
        for (int64_t b = b0; b < b1; b++)
            y[b * ldy + r] = dot_k4_row(x, sizeof(block_q5_K), 1, k / QK_K, a->qs + b * k,
                                        a->d + b * nb, a->ds + b * nb);
    }
}

/*
 * Q6_K row . plain activations. A 64-byte load of ql gives elements 0..63 of
 * a 128-half in its low nibbles and 64..127 in its high nibbles; the 2-bit
 * highs come from qh with per-half shifts. Values are 0..63 (the -32 offset
 * is applied with the activation sums), 16-element sub-blocks = 4 lanes.
 */
static float dot_q6_k_row(const block_q6_K *x, int64_t nsb, const int8_t *aq, const float *ad,
                          const float *ads16)
{
    const __m512i m4 = _mm512_set1_epi8(0x0F), m30 = _mm512_set1_epi8(0x30);
    const __m512i shl_lo = _mm512_setr_epi64(4, 4, 4, 4, 2, 2, 2, 2);
    const __m512i shr_hi = _mm512_setr_epi64(0, 0, 0, 0, 2, 2, 2, 2);
    const __m512i dup = _mm512_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
    const __m512i ix[4] = {
        _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3),
        _mm512_setr_epi32(4, 4, 4, 4, 5, 5, 5, 5, 6, 6, 6, 6, 7, 7, 7, 7),
        _mm512_setr_epi32(8, 8, 8, 8, 9, 9, 9, 9, 10, 10, 10, 10, 11, 11, 11, 11),
        _mm512_setr_epi32(12, 12, 12, 12, 13, 13, 13, 13, 14, 14, 14, 14, 15, 15, 15, 15),
    };
    __m512 acc = _mm512_setzero_ps(), corr = _mm512_setzero_ps();
    for (int64_t i = 0; i < nsb; i++) {
        const block_q6_K *xb = x + i;
        __m512 sc = _mm512_mul_ps(
            _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)xb->scales))),
            _mm512_set1_ps(h2f(xb->d)));
        /* per 16-element sub-block: d * sc * d_act (d_act per 32) */
        __m512 da16 =
            _mm512_permutexvar_ps(dup, _mm512_castps256_ps512(_mm256_loadu_ps(ad + 8 * i)));
        __m512 s16 = _mm512_mul_ps(sc, da16);
        corr = _mm512_fmadd_ps(sc, _mm512_loadu_ps(ads16 + 16 * i), corr);
#pragma GCC unroll 4
        for (int n = 0; n < 2; n++) {
            __m512i l = _mm512_loadu_si512(xb->ql + 64 * n);
            __m512i h =
                _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(xb->qh + 32 * n)));
            __m512i lo = _mm512_or_si512(_mm512_and_si512(l, m4),
                                         _mm512_and_si512(_mm512_sllv_epi64(h, shl_lo), m30));
            __m512i hi = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(l, 4), m4),
                                         _mm512_and_si512(_mm512_srlv_epi64(h, shr_hi), m30));
            const int8_t *ap = aq + 256 * i + 128 * n;
            __m512i d0 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), lo, _mm512_loadu_si512(ap));
            __m512i d1 =
                _mm512_dpbusd_epi32(_mm512_setzero_si512(), hi, _mm512_loadu_si512(ap + 64));
            acc =
                _mm512_fmadd_ps(_mm512_cvtepi32_ps(d0), _mm512_permutexvar_ps(ix[2 * n], s16), acc);
            acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d1), _mm512_permutexvar_ps(ix[2 * n + 1], s16),
                                  acc);
        }
    }
    return _mm512_reduce_add_ps(acc) - 32.0f * _mm512_reduce_add_ps(corr);
}

static void gemv_q6_k(const void *W, size_t row_bytes, int64_t k, int64_t r0, int64_t r1,
                      const struct kern__act *a, int64_t b0, int64_t b1, float *y, int64_t ldy)
{
    int64_t nb = k / 32;
    for (int64_t r = r0; r < r1; r++) {
        const block_q6_K *x = (const block_q6_K *)((const char *)W + (size_t)r * row_bytes);
        for (int64_t b = b0; b < b1; b++)
            y[b * ldy + r] =
                dot_q6_k_row(x, k / QK_K, a->qs + b * k, a->d + b * nb, a->ds16 + b * 2 * nb);
    }
}

/* ---- packed rows ------------------------------------------------------------ */

/* Sum of 32 unsigned bytes. */
static inline int32_t sum_u8_32(__m256i u)
{
    __m256i s = _mm256_sad_epu8(u, _mm256_setzero_si256());
    __m128i t = _mm_add_epi64(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    t = _mm_add_epi64(t, _mm_unpackhi_epi64(t, t));
    return _mm_cvtsi128_si32(t);
}

/* Sums of the two 16-byte halves of 32 unsigned bytes. */
static inline void sum_u8_16x2(__m256i u, int32_t *s0, int32_t *s1)
{
    __m256i s = _mm256_sad_epu8(u, _mm256_setzero_si256());
    __m128i lo = _mm256_castsi256_si128(s), hi = _mm256_extracti128_si256(s, 1);
    *s0 = _mm_cvtsi128_si32(_mm_add_epi64(lo, _mm_unpackhi_epi64(lo, lo)));
    *s1 = _mm_cvtsi128_si32(_mm_add_epi64(hi, _mm_unpackhi_epi64(hi, hi)));
}

static void avx512_pack_row(enum ggml_type t, const void *row, int64_t k, int8_t *q, float *s,
                            float *m, int32_t *qs128)
{
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    switch (t) {
    case GGML_TYPE_Q4_0: {
        const block_q4_0 *x = row;
        int64_t nb = k / 32, i = 0;
        /* 8 blocks at a time, with the word permutes of dot_q4_0_row */
        const __m512i widx = _mm512_castsi128_si512(_mm_setr_epi16(0, 9, 18, 27, 36, 45, 54, 63));
        const __m512i qidx0 = _mm512_setr_epi32(
            1 | 2 << 16, 3 | 4 << 16, 5 | 6 << 16, 7 | 8 << 16, 10 | 11 << 16, 12 | 13 << 16,
            14 | 15 << 16, 16 | 17 << 16, 19 | 20 << 16, 21 | 22 << 16, 23 | 24 << 16,
            25 | 26 << 16, 28 | 29 << 16, 30 | 31 << 16, 32 | 33 << 16, 34 | 35 << 16);
        const __m512i qidx1 = _mm512_setr_epi32(
            1 | 2 << 16, 3 | 4 << 16, 5 | 6 << 16, 7 | 8 << 16, 10 | 11 << 16, 12 | 13 << 16,
            14 | 15 << 16, 16 | 17 << 16, 19 | 20 << 16, 21 | 22 << 16, 23 | 24 << 16,
            25 | 26 << 16, 28 | 29 << 16, 30 | 31 << 16, 60 | 61 << 16, 62 | 63 << 16);
        /* qword lanes: (lo block j, hi block j) pairs for blocks 0,1 then 2,3 */
        const __m512i il0 = _mm512_setr_epi64(0, 1, 8, 9, 2, 3, 10, 11);
        const __m512i il1 = _mm512_setr_epi64(4, 5, 12, 13, 6, 7, 14, 15);
        const __m512i even = _mm512_setr_epi64(0, 2, 4, 6, 8, 10, 12, 14);
        const __m512i m4z = _mm512_set1_epi8(0x0F), c8 = _mm512_set1_epi8(8);
        for (; i + 8 <= nb; i += 8) {
            const char *gp = (const char *)&x[i];
            __m512i z0 = _mm512_loadu_si512(gp), z1 = _mm512_loadu_si512(gp + 64);
            __m512i z2 = _mm512_loadu_si512(gp + 72), z3 = _mm512_loadu_si512(gp + 80);
            _mm256_storeu_ps(s + i, _mm256_cvtph_ps(_mm512_castsi512_si128(
                                        _mm512_permutex2var_epi16(z0, widx, z1))));
            _mm256_storeu_ps(m + i, _mm256_setzero_ps());
            __m512i v[2] = {_mm512_permutex2var_epi16(z0, qidx0, z1),
                            _mm512_permutex2var_epi16(z2, qidx1, z3)};
            __m512i bsum[2];
#pragma GCC unroll 2
            for (int h = 0; h < 2; h++) {
                __m512i lo = _mm512_and_si512(v[h], m4z);
                __m512i hi = _mm512_and_si512(_mm512_srli_epi16(v[h], 4), m4z);
                int8_t *qo = q + (i + 4 * h) * 32;
                _mm512_storeu_si512(qo,
                                    _mm512_sub_epi8(_mm512_permutex2var_epi64(lo, il0, hi), c8));
                _mm512_storeu_si512(qo + 64,
                                    _mm512_sub_epi8(_mm512_permutex2var_epi64(lo, il1, hi), c8));
                /* per block: sum of its 4 qword SADs (2 in lo, 2 in hi) */
                __m512i sd = _mm512_add_epi64(_mm512_sad_epu8(lo, _mm512_setzero_si512()),
                                              _mm512_sad_epu8(hi, _mm512_setzero_si512()));
                bsum[h] = _mm512_add_epi64(sd, _mm512_shuffle_epi32(sd, _MM_PERM_BADC));
            }
            __m256i sums = _mm512_cvtepi64_epi32(_mm512_permutex2var_epi64(bsum[0], even, bsum[1]));
            _mm256_storeu_si256(
                (__m256i *)(qs128 + i),
                _mm256_slli_epi32(_mm256_sub_epi32(sums, _mm256_set1_epi32(256)), 7));
        }
        for (; i < nb; i++) {
            __m128i v = _mm_loadu_si128((const __m128i *)x[i].qs);
            __m256i u = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(v, 4), v), m4);
            _mm256_storeu_si256((__m256i *)(q + 32 * i), _mm256_sub_epi8(u, _mm256_set1_epi8(8)));
            s[i] = h2f(x[i].d);
            m[i] = 0.0f;
            qs128[i] = 128 * (sum_u8_32(u) - 256);
        }
        return;
    }
    case GGML_TYPE_Q4_1: {
        const block_q4_1 *x = row;
        for (int64_t i = 0; i < k / 32; i++) {
            __m128i v = _mm_loadu_si128((const __m128i *)x[i].qs);
            __m256i u = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(v, 4), v), m4);
            _mm256_storeu_si256((__m256i *)(q + 32 * i), u);
            s[i] = h2f(x[i].d);
            m[i] = h2f(x[i].m);
            qs128[i] = 128 * sum_u8_32(u);
        }
        return;
    }
    case GGML_TYPE_Q5_0:
    case GGML_TYPE_Q5_1: {
        /* fifth bit j of qh (little-endian 32 bits) belongs to element j */
        const int is1 = t == GGML_TYPE_Q5_1;
        const size_t bsz = is1 ? sizeof(block_q5_1) : sizeof(block_q5_0);
        const int off = is1 ? 0 : 16;
        for (int64_t i = 0; i < k / 32; i++) {
            const uint8_t *blk = (const uint8_t *)row + (size_t)i * bsz;
            const uint8_t *qh = blk + (is1 ? 4 : 2), *qsb = qh + 4;
            uint32_t hb;
            memcpy(&hb, qh, 4);
            __m128i v = _mm_loadu_si128((const __m128i *)qsb);
            __m256i u = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(v, 4), v), m4);
            u = _mm256_or_si256(u, _mm256_and_si256(_mm256_movm_epi8(hb), _mm256_set1_epi8(16)));
            _mm256_storeu_si256((__m256i *)(q + 32 * i),
                                _mm256_sub_epi8(u, _mm256_set1_epi8((char)off)));
            ggml_fp16_t dh, mh = 0;
            memcpy(&dh, blk, 2);
            if (is1)
                memcpy(&mh, blk + 2, 2);
            s[i] = h2f(dh);
            m[i] = is1 ? h2f(mh) : 0.0f;
            qs128[i] = 128 * (sum_u8_32(u) - 32 * off);
        }
        return;
    }
    case GGML_TYPE_Q8_0: {
        const block_q8_0 *x = row;
        for (int64_t i = 0; i < k / 32; i++) {
            __m256i v = _mm256_loadu_si256((const __m256i *)x[i].qs);
            _mm256_storeu_si256((__m256i *)(q + 32 * i), v);
            s[i] = h2f(x[i].d);
            m[i] = 0.0f;
            qs128[i] =
                128 * (sum_u8_32(_mm256_xor_si256(v, _mm256_set1_epi8((char)0x80))) - 128 * 32);
        }
        return;
    }
    case GGML_TYPE_Q4_K:
    case GGML_TYPE_Q5_K: {
        const int is5 = t == GGML_TYPE_Q5_K;
        size_t bsz = is5 ? sizeof(block_q5_K) : sizeof(block_q4_K);
        for (int64_t i = 0; i < k / QK_K; i++) {
            const uint8_t *blk = (const uint8_t *)row + (size_t)i * bsz;
            /* both layouts start d, dmin, scales[12]; Q5_K then has qh[32] before qs */
            ggml_fp16_t dh, dmh;
            memcpy(&dh, blk, 2);
            memcpy(&dmh, blk + 2, 2);
            const uint8_t *sc = blk + 4;
            const uint8_t *qs = blk + 4 + K_SCALE_SIZE + (is5 ? QK_K / 8 : 0);
            __m256i hb = is5 ? _mm256_loadu_si256((const __m256i *)(blk + 4 + K_SCALE_SIZE))
                             : _mm256_setzero_si256();
            float d = h2f(dh), dmin = h2f(dmh);
            __m512 scm = k4_scales_mins(sc);
            _mm256_storeu_ps(s, _mm256_mul_ps(_mm512_castps512_ps256(scm), _mm256_set1_ps(d)));
            _mm256_storeu_ps(m,
                             _mm256_mul_ps(_mm512_extractf32x8_ps(scm, 1), _mm256_set1_ps(-dmin)));
            s += 8;
            m += 8;
            for (int j = 0; j < 4; j++, q += 64) {
                __m256i v = _mm256_loadu_si256((const __m256i *)(qs + 32 * j));
                __m256i lo = _mm256_and_si256(v, m4);
                __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
                if (is5) {
                    __m256i b0 = _mm256_set1_epi8((char)(1 << (2 * j)));
                    __m256i b1 = _mm256_set1_epi8((char)(2 << (2 * j)));
                    __m256i s16 = _mm256_set1_epi8(16);
                    lo = _mm256_or_si256(
                        lo, _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(hb, b0), b0), s16));
                    hi = _mm256_or_si256(
                        hi, _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(hb, b1), b1), s16));
                }
                _mm256_storeu_si256((__m256i *)q, lo);
                _mm256_storeu_si256((__m256i *)(q + 32), hi);
                *qs128++ = 128 * sum_u8_32(lo);
                *qs128++ = 128 * sum_u8_32(hi);
            }
        }
        return;
    }
    case GGML_TYPE_Q6_K: {
        const block_q6_K *x = row;
        const __m256i m30 = _mm256_set1_epi8(0x30), c32 = _mm256_set1_epi8(32);
        for (int64_t i = 0; i < k / QK_K; i++) {
            float d = h2f(x[i].d);
#pragma GCC unroll 4
            for (int n = 0; n < 2; n++) {
                const uint8_t *ql = x[i].ql + 64 * n, *qh = x[i].qh + 32 * n;
                __m256i l0 = _mm256_loadu_si256((const __m256i *)ql);
                __m256i l1 = _mm256_loadu_si256((const __m256i *)(ql + 32));
                __m256i h = _mm256_loadu_si256((const __m256i *)qh);
                __m256i u[4];
                u[0] = _mm256_or_si256(_mm256_and_si256(l0, m4),
                                       _mm256_and_si256(_mm256_slli_epi16(h, 4), m30));
                u[1] = _mm256_or_si256(_mm256_and_si256(l1, m4),
                                       _mm256_and_si256(_mm256_slli_epi16(h, 2), m30));
                u[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                                       _mm256_and_si256(h, m30));
                u[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                                       _mm256_and_si256(_mm256_srli_epi16(h, 2), m30));
                for (int j = 0; j < 4; j++, q += 32) {
                    _mm256_storeu_si256((__m256i *)q, _mm256_sub_epi8(u[j], c32));
                    int32_t s0, s1;
                    sum_u8_16x2(u[j], &s0, &s1);
                    *qs128++ = 128 * (s0 - 32 * 16);
                    *qs128++ = 128 * (s1 - 32 * 16);
                }
                __m256 sc8 = _mm256_cvtepi32_ps(
                    _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(x[i].scales + 8 * n))));
                _mm256_storeu_ps(s, _mm256_mul_ps(sc8, _mm256_set1_ps(d)));
                _mm256_storeu_ps(m, _mm256_setzero_ps());
                s += 8;
                m += 8;
            }
        }
        return;
    }
    default:
        kern__pack_row(t, row, k, q, s, m, qs128);
    }
}

/*
 * Packed row . unsigned activations (KERN_ACT_U8): vpdpbusd(a + 128, q) per
 * block, minus the row's 128 * sum(q); scales applied per lane group.
 */
static float avx512_dot_packed(const struct kern__panel *p, const struct kern__act *a, int64_t b)
{
    const uint8_t *au = (const uint8_t *)a->qs + b * a->k;
    const float *ad = a->d + b * a->nb32;
    __m512 acc = _mm512_setzero_ps();
    __m256 corr = _mm256_setzero_ps(), accm = _mm256_setzero_ps();
    int64_t j = 0, nblk = p->nblk;
    if (p->bs == 32) {
        const float *ads = a->ds + b * a->nb32;
        const __m512i idx[4] = {
            _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1),
            _mm512_setr_epi32(2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3),
            _mm512_setr_epi32(4, 4, 4, 4, 4, 4, 4, 4, 5, 5, 5, 5, 5, 5, 5, 5),
            _mm512_setr_epi32(6, 6, 6, 6, 6, 6, 6, 6, 7, 7, 7, 7, 7, 7, 7, 7),
        };
        for (; j + 8 <= nblk; j += 8) {
            __m256 s8 = _mm256_mul_ps(_mm256_loadu_ps(p->s + j), _mm256_loadu_ps(ad + j));
            corr = _mm256_fmadd_ps(
                s8, _mm256_cvtepi32_ps(_mm256_loadu_si256((const __m256i *)(p->qs128 + j))), corr);
            accm = _mm256_fmadd_ps(_mm256_loadu_ps(p->m + j), _mm256_loadu_ps(ads + j), accm);
            __m512 s16 = _mm512_castps256_ps512(s8);
#pragma GCC unroll 4
            for (int h = 0; h < 4; h++) {
                __m512i w = _mm512_loadu_si512(p->q + (j + 2 * h) * 32);
                __m512i av = _mm512_loadu_si512(au + (j + 2 * h) * 32);
                __m512i si = _mm512_dpbusd_epi32(_mm512_setzero_si512(), av, w);
                acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(si), _mm512_permutexvar_ps(idx[h], s16),
                                      acc);
            }
        }
        float sum = _mm512_reduce_add_ps(acc) - hsum256(corr) + hsum256(accm);
        for (; j < nblk; j++) {
            __m256i si = _mm256_dpbusd_epi32(_mm256_setzero_si256(),
                                             _mm256_loadu_si256((const __m256i *)(au + j * 32)),
                                             _mm256_loadu_si256((const __m256i *)(p->q + j * 32)));
            /* not a scalar loop: gcc 12 -O2 mis-vectorizes (u8 - 128) * s8 sums */
            int32_t isum = hsum256_epi32(si) - p->qs128[j];
            sum += p->s[j] * ad[j] * (float)isum + p->m[j] * ads[j];
        }
        return sum;
    }
    /* bs == 16: nblk is a multiple of 16 (K-quants) */
    const float *ads = a->ds16 + b * 2 * a->nb32;
    const __m256i dup = _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3);
    const __m512i idx[2] = {
        _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3),
        _mm512_setr_epi32(4, 4, 4, 4, 5, 5, 5, 5, 6, 6, 6, 6, 7, 7, 7, 7),
    };
    for (; j + 8 <= nblk; j += 8) {
        __m256 da = _mm256_permutexvar_ps(dup, _mm256_castps128_ps256(_mm_loadu_ps(ad + j / 2)));
        __m256 s8 = _mm256_mul_ps(_mm256_loadu_ps(p->s + j), da);
        corr = _mm256_fmadd_ps(
            s8, _mm256_cvtepi32_ps(_mm256_loadu_si256((const __m256i *)(p->qs128 + j))), corr);
        accm = _mm256_fmadd_ps(_mm256_loadu_ps(p->m + j), _mm256_loadu_ps(ads + j), accm);
        __m512 s16 = _mm512_castps256_ps512(s8);
#pragma GCC unroll 4
        for (int h = 0; h < 2; h++) {
            __m512i w = _mm512_loadu_si512(p->q + (j + 4 * h) * 16);
            __m512i av = _mm512_loadu_si512(au + (j + 4 * h) * 16);
            __m512i si = _mm512_dpbusd_epi32(_mm512_setzero_si512(), av, w);
            acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(si), _mm512_permutexvar_ps(idx[h], s16), acc);
        }
    }
    return _mm512_reduce_add_ps(acc) - hsum256(corr) + hsum256(accm);
}

/*
 * Panel of packed rows times all interleaved activation groups. The register
 * tile is 4 weight rows x NG groups of 8 batch rows: each broadcast 4-byte
 * piece of a weight row feeds NG vpdpbusd, each activation load feeds 4.
 */
#define PRMAX 8
static inline __attribute__((always_inline)) void
panel_tile(const struct kern__panel *p, const int rows[PRMAX], const uint8_t *A, int64_t gstride,
           const float *d8, const float *ds8, const float *ds16_8, int64_t mstride, int ng, int bs,
           int pr, float out[2][PRMAX][8])
{
    const int64_t k = p->k, nblk = p->nblk;
    const int8_t *q[PRMAX];
    const float *sp[PRMAX], *mp[PRMAX];
    const int32_t *cp[PRMAX];
    __m256 accf[2][PRMAX];
#pragma GCC unroll 8
    for (int i = 0; i < pr; i++) {
        q[i] = p->q + (size_t)rows[i] * (size_t)k;
        sp[i] = p->s + rows[i] * nblk;
        mp[i] = p->m + rows[i] * nblk;
        cp[i] = p->qs128 + rows[i] * nblk;
        accf[0][i] = _mm256_setzero_ps();
        accf[1][i] = _mm256_setzero_ps();
    }
    for (int64_t blk = 0; blk < nblk; blk++) {
        __m256i acc[2][PRMAX];
#pragma GCC unroll 8
        for (int i = 0; i < pr; i++) {
            acc[0][i] = _mm256_set1_epi32(-cp[i][blk]);
            acc[1][i] = acc[0][i];
        }
        const uint8_t *ab = A + blk * bs * KERN_IL;
        const int64_t off = blk * bs;
#pragma GCC unroll 8
        for (int j = 0; j < bs / 4; j++) {
            __m256i av0 = _mm256_load_si256((const __m256i *)(ab + 32 * j));
            __m256i av1 =
                ng > 1 ? _mm256_load_si256((const __m256i *)(ab + gstride + 32 * j)) : av0;
#pragma GCC unroll 8
            for (int i = 0; i < pr; i++) {
                int32_t wv;
                memcpy(&wv, q[i] + off + 4 * j, 4);
                __m256i wb = _mm256_set1_epi32(wv);
                acc[0][i] = _mm256_dpbusd_epi32(acc[0][i], av0, wb);
                if (ng > 1)
                    acc[1][i] = _mm256_dpbusd_epi32(acc[1][i], av1, wb);
            }
        }
        const int64_t di = (blk * bs / 32) * KERN_IL;
#pragma GCC unroll 2
        for (int g = 0; g < ng; g++) {
            __m256 da = _mm256_loadu_ps(d8 + g * mstride + di);
            __m256 dsv = _mm256_setzero_ps();
            if (p->has_min)
                dsv = bs == 32 ? _mm256_loadu_ps(ds8 + g * mstride + blk * KERN_IL)
                               : _mm256_loadu_ps(ds16_8 + 2 * g * mstride + blk * KERN_IL);
#pragma GCC unroll 8
            for (int i = 0; i < pr; i++) {
                accf[g][i] =
                    _mm256_fmadd_ps(_mm256_cvtepi32_ps(acc[g][i]),
                                    _mm256_mul_ps(da, _mm256_set1_ps(sp[i][blk])), accf[g][i]);
                if (p->has_min)
                    accf[g][i] = _mm256_fmadd_ps(dsv, _mm256_set1_ps(mp[i][blk]), accf[g][i]);
            }
        }
    }
#pragma GCC unroll 2
    for (int g = 0; g < ng; g++)
#pragma GCC unroll 8
        for (int i = 0; i < pr; i++)
            _mm256_storeu_ps(out[g][i], accf[g][i]);
}

#define PANEL_TILE_FN(BS, NG, NR)                                                                  \
    static void panel_tile_##BS##_##NG(const struct kern__panel *p, const int rows[PRMAX],         \
                                       const uint8_t *A, int64_t gs, const float *d8,              \
                                       const float *ds8, const float *ds16_8, int64_t ms,          \
                                       float out[2][PRMAX][8])                                     \
    {                                                                                              \
        panel_tile(p, rows, A, gs, d8, ds8, ds16_8, ms, NG, BS, NR, out);                          \
    }
/* one group: 8 rows per tile (each activation load feeds 8); two groups: 4 rows */
PANEL_TILE_FN(32, 1, 8)
PANEL_TILE_FN(32, 2, 4)
PANEL_TILE_FN(16, 1, 8)
PANEL_TILE_FN(16, 2, 4)

static void avx512_panel_gemm(const struct kern__panel *p, const struct kern__act *a, float *y,
                              int64_t ldy)
{
    int64_t k = a->k, nb = a->nb32;
    int64_t G = (a->B + KERN_IL - 1) / KERN_IL;
    float out[2][PRMAX][8];
    for (int64_t g = 0; g < G; g += 2) {
        int ng = G - g >= 2 ? 2 : 1;
        const uint8_t *A = (const uint8_t *)a->qs + g * KERN_IL * k;
        const float *d8 = a->d + g * nb * KERN_IL, *ds8 = a->ds + g * nb * KERN_IL;
        const float *ds16_8 = a->ds16 + g * 2 * nb * KERN_IL;
        const int pr = ng == 2 ? 4 : 8;
        for (int r0 = 0; r0 < p->nr; r0 += pr) {
            int nr = p->nr - r0 < pr ? p->nr - r0 : pr;
            int rows[PRMAX];
            for (int i = 0; i < PRMAX; i++)
                rows[i] = r0 + (i < nr ? i : 0);
            if (p->bs == 32)
                (ng == 2 ? panel_tile_32_2 : panel_tile_32_1)(p, rows, A, KERN_IL * k, d8, ds8,
                                                              ds16_8, nb * KERN_IL, out);
            else
                (ng == 2 ? panel_tile_16_2 : panel_tile_16_1)(p, rows, A, KERN_IL * k, d8, ds8,
                                                              ds16_8, nb * KERN_IL, out);
            for (int gg = 0; gg < ng; gg++) {
                int64_t base = (g + gg) * KERN_IL;
                int here = (int)(a->B - base < KERN_IL ? a->B - base : KERN_IL);
                for (int i = 0; i < nr; i++)
                    for (int c = 0; c < here; c++)
                        y[(base + c) * ldy + r0 + i] = out[gg][i][c];
            }
        }
    }
}

/* ---- float weights (F32 / F16 / BF16) ------------------------------------------ */

/* 16 weights at element i of a row of type t, as floats. */
static inline __m512 load_w16(enum ggml_type t, const void *row, int64_t i)
{
    if (t == GGML_TYPE_F16)
        return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)((const uint16_t *)row + i)));
    if (t == GGML_TYPE_BF16)
        return _mm512_castsi512_ps(_mm512_slli_epi32(
            _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)((const uint16_t *)row + i))),
            16));
    return _mm512_loadu_ps((const float *)row + i);
}

static inline float load_w1(enum ggml_type t, const void *row, int64_t i)
{
    if (t == GGML_TYPE_F16)
        return h2f(((const uint16_t *)row)[i]);
    if (t == GGML_TYPE_BF16)
        return bf16_to_fp32(((const uint16_t *)row)[i]);
    return ((const float *)row)[i];
}

/*
 * RB weight rows x CB activation rows, dot-product form over k in [k0, k1)
 * (both operands are k-contiguous): RB * CB accumulators, each weight load
 * feeds CB FMAs and each activation load RB. acc: add to y instead of storing.
 */
static inline __attribute__((always_inline)) void
float_tile(enum ggml_type t, const void *W, size_t rb_bytes, int64_t k, int64_t k0, int64_t k1,
           int64_t r, const float *x, int64_t c, float *y, int64_t ldy, int RB, int CB, int acc_y)
{
    __m512 acc[4][4];
#pragma GCC unroll 4
    for (int i = 0; i < RB; i++)
#pragma GCC unroll 4
        for (int j = 0; j < CB; j++)
            acc[i][j] = _mm512_setzero_ps();
    const void *rows[4];
#pragma GCC unroll 4
    for (int i = 0; i < RB; i++)
        rows[i] = (const char *)W + (size_t)(r + i) * rb_bytes;
    int64_t kk = k0;
    for (; kk + 16 <= k1; kk += 16) {
        __m512 xv[4];
#pragma GCC unroll 4
        for (int j = 0; j < CB; j++)
            xv[j] = _mm512_loadu_ps(x + (c + j) * k + kk);
#pragma GCC unroll 4
        for (int i = 0; i < RB; i++) {
            __m512 wv = load_w16(t, rows[i], kk);
#pragma GCC unroll 4
            for (int j = 0; j < CB; j++)
                acc[i][j] = _mm512_fmadd_ps(wv, xv[j], acc[i][j]);
        }
    }
#pragma GCC unroll 4
    for (int i = 0; i < RB; i++)
#pragma GCC unroll 4
        for (int j = 0; j < CB; j++) {
            float sum = _mm512_reduce_add_ps(acc[i][j]);
            for (int64_t q = kk; q < k1; q++)
                sum += load_w1(t, rows[i], q) * x[(c + j) * k + q];
            float *out = &y[(c + j) * ldy + r + i];
            *out = acc_y ? *out + sum : sum;
        }
}

typedef void (*float_tile_fn)(enum ggml_type, const void *, size_t, int64_t, int64_t, int64_t,
                              int64_t, const float *, int64_t, float *, int64_t, int);

#define FLOAT_TILE_FN(RB, CB)                                                                      \
    static void float_tile_##RB##_##CB(enum ggml_type t, const void *W, size_t rbb, int64_t k,     \
                                       int64_t k0, int64_t k1, int64_t r, const float *x,          \
                                       int64_t c, float *y, int64_t ldy, int acc_y)                \
    {                                                                                              \
        float_tile(t, W, rbb, k, k0, k1, r, x, c, y, ldy, RB, CB, acc_y);                          \
    }
FLOAT_TILE_FN(4, 4)
FLOAT_TILE_FN(4, 3)
FLOAT_TILE_FN(4, 2)
FLOAT_TILE_FN(4, 1)
FLOAT_TILE_FN(1, 4)
FLOAT_TILE_FN(1, 3)
FLOAT_TILE_FN(1, 2)
FLOAT_TILE_FN(1, 1)

/* k and batch block sizes for large products: a (FLOAT_CB x FLOAT_KC) block of x is 128 KiB */
#define FLOAT_KC 512
#define FLOAT_CB 64

static void avx512_gemm_float(enum ggml_type t, const void *W, size_t row_bytes, int64_t k,
                              int64_t r0, int64_t r1, const float *x, int64_t B, float *y,
                              int64_t ldy, float *scratch)
{
    static const float_tile_fn t4[5] = {NULL, float_tile_4_1, float_tile_4_2, float_tile_4_3,
                                        float_tile_4_4};
    static const float_tile_fn t1[5] = {NULL, float_tile_1_1, float_tile_1_2, float_tile_1_3,
                                        float_tile_1_4};
    (void)scratch;
    /*
     * Small batches stream the weights once, full k per tile. Large batches
     * are blocked over k and the batch so that the x block and the weight
     * rows' k-slices stay in L2 while every row of this thread passes.
     */
    int64_t kc = B <= FLOAT_CB ? k : FLOAT_KC, cb = B <= FLOAT_CB ? B : FLOAT_CB;
    for (int64_t k0 = 0; k0 < k; k0 += kc) {
        int64_t k1 = k0 + kc < k ? k0 + kc : k;
        for (int64_t c0 = 0; c0 < B; c0 += cb) {
            int64_t c1 = c0 + cb < B ? c0 + cb : B;
            int64_t r = r0;
            for (; r + 4 <= r1; r += 4)
                for (int64_t c = c0; c < c1; c += 4)
                    t4[c1 - c < 4 ? c1 - c : 4](t, W, row_bytes, k, k0, k1, r, x, c, y, ldy,
                                                k0 > 0);
            for (; r < r1; r++)
                for (int64_t c = c0; c < c1; c += 4)
                    t1[c1 - c < 4 ? c1 - c : 4](t, W, row_bytes, k, k0, k1, r, x, c, y, ldy,
                                                k0 > 0);
        }
    }
}

void kern__init_avx512(struct kern__ops *o)
{
    o->gemm_float = avx512_gemm_float;
    o->isa = KERN_ISA_AVX512;
    o->quantize_act = avx512_quantize_act;
    o->dot_packed = avx512_dot_packed;
    o->packed_layout = KERN_ACT_U8;
    o->pack_row = avx512_pack_row;
    o->panel_gemm = avx512_panel_gemm;
    o->gemv[GGML_TYPE_Q4_0] = gemv_q4_0;
    o->gemv_layout[GGML_TYPE_Q4_0] = KERN_ACT_Q4P;
    o->gemv[GGML_TYPE_Q8_0] = gemv_q8_0;
    o->gemv_layout[GGML_TYPE_Q8_0] = KERN_ACT_PLAIN;
    o->gemv[GGML_TYPE_Q4_K] = gemv_q4_k;
    o->gemv_layout[GGML_TYPE_Q4_K] = KERN_ACT_K4P;
    o->gemv[GGML_TYPE_Q5_K] = gemv_q5_k;
    o->gemv_layout[GGML_TYPE_Q5_K] = KERN_ACT_K4P;
    o->gemv[GGML_TYPE_Q6_K] = gemv_q6_k;
    o->gemv_layout[GGML_TYPE_Q6_K] = KERN_ACT_PLAIN;
}

#else

void kern__init_avx512(struct kern__ops *o)
{
    (void)o;
}

#endif
