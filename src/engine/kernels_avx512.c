/*
 * kernels_avx512.c - AVX-512 (F/BW/VL/DQ/VNNI) kernels for batch-1 products,
 * activation quantization and float weights.
 *
 * Built with AVX-512 flags; only called after run-time detection (kernels.c).
 * Integer dot products use vpdpbusd (unsigned x signed bytes, summed by 4
 * into int32 lanes):
 *  - Q4_0 / Q4_K / Q5_K / Q6_K GEMV: weight quants are the unsigned side,
 *    activations the signed side; offsets (-8, -32) and mins are applied per
 *    block with the activation block sums.
 *  - Q8_0 GEMV: weights are made unsigned by XOR 0x80 (w + 128); the +128
 *    offset is removed the same way.
 * Batched products live in kernels_gemm_avx512.c.
 *
 * Not for: anything that must run without AVX-512.
 */
#include "engine/kernels_impl.h"

#if defined(__x86_64__)

#include <math.h>
#include <string.h>

#include "engine/kernels_avx512_inl.h"

/* ---- activation quantization ----------------------------------------------- */

/* Quantizes one 32-block: q (32 int8, natural order), returns d and the two half sums. */
static inline void q8_block(const float *x, int8_t *q, float *d, int *s0, int *s1)
{
    __m512 v0 = _mm512_loadu_ps(x), v1 = _mm512_loadu_ps(x + 16);
    __m512 amax = _mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1));
    float m = _mm512_reduce_max_ps(amax);
    if (!(m <= 3.402823466e38f)) {
        /* NaN or Inf in the block: the product is meaningless either way; keep the
         * integer path defined (no INT_MIN lanes to sum) and let NaN reach the result */
        memset(q, 0, 32);
        *d = m - m; /* NaN */
        *s0 = *s1 = 0;
        return;
    }
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

/*
 * Interleaved layouts: quantizes block b of row i of group g into q (zeros
 * for rows past B) and stores the row's scale and sums at lane i.
 */
static inline void il_quantize(const float *x, const struct kern__act *a, int64_t g, int64_t b,
                               int i, int8_t q[32])
{
    const int64_t nb = a->nb32, r = g * KERN_IL + i, k = a->k;
    float *d = a->d + g * nb * KERN_IL, *ds = a->ds + g * nb * KERN_IL;
    float *ds16 = a->ds16 + g * 2 * nb * KERN_IL;
    int32_t *is16 = a->is16 + g * 2 * nb * KERN_IL;
    float dd = 0.0f;
    int s0 = 0, s1 = 0;
    if (r < a->B)
        q8_block(x + r * k + b * 32, q, &dd, &s0, &s1);
    else
        memset(q, 0, 32);
    d[b * KERN_IL + i] = dd;
    ds[b * KERN_IL + i] = dd * (float)(s0 + s1);
    ds16[2 * b * KERN_IL + i] = dd * (float)s0;
    ds16[(2 * b + 1) * KERN_IL + i] = dd * (float)s1;
    is16[2 * b * KERN_IL + i] = s0;
    is16[(2 * b + 1) * KERN_IL + i] = s1;
}

static void avx512_quantize_act(const float *x, int64_t r0, int64_t r1, struct kern__act *a)
{
    int64_t k = a->k, nb = a->nb32;
    int8_t q[32];
    if (a->layout == KERN_ACT_IL8S8) {
        /* whole groups ([r0, r1) covers them): each block's 8 rows quantized, then their
           8-byte pieces interleaved; rows of the last group past B are zero */
        for (int64_t g = r0 / KERN_IL; g < (r1 + KERN_IL - 1) / KERN_IL; g++)
            for (int64_t b = 0; b < nb; b++) {
                uint8_t *dst = (uint8_t *)a->qs + g * KERN_IL * k + b * 32 * KERN_IL;
                for (int i = 0; i < KERN_IL; i++) {
                    il_quantize(x, a, g, b, i, q);
                    for (int m = 0; m < 4; m++)
                        memcpy(dst + (m * KERN_IL + i) * 8, q + 8 * m, 8);
                }
            }
        return;
    }
    if (a->layout == KERN_ACT_IL8 || a->layout == KERN_ACT_IL8S) {
        /* r0 is a multiple of 8; rows of the last group past B are zero */
        const __m256i flip = _mm256_set1_epi8(a->layout == KERN_ACT_IL8 ? (char)0x80 : 0);
        int64_t g0 = r0 / KERN_IL, g1 = (r1 + KERN_IL - 1) / KERN_IL;
        for (int64_t g = g0; g < g1; g++) {
            uint8_t *qs = (uint8_t *)a->qs + g * KERN_IL * k;
            for (int64_t b = 0; b < nb; b++) {
                /* quantize block b of the 8 rows, then transpose 8 x 8 dwords */
                __m256i v[8];
                for (int i = 0; i < KERN_IL; i++) {
                    il_quantize(x, a, g, b, i, q);
                    v[i] = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)q), flip);
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
                /*
                 * unit u = b / 16 of 16 blocks, lane l = b % 16 / 4, slot m = b % 4:
                 * halves at u*512 + m*128 + l*16 and + 64; past the last unit,
                 * group g = b / 4: at g*128 + m*16 and + 64
                 */
                q8_block(x + r * k + b * 32, q, &d[b], &s0, &s1);
                int64_t off = b < nb / 16 * 16 ? b / 16 * 512 + b % 4 * 128 + b % 16 / 4 * 16
                                               : b / 4 * 128 + b % 4 * 16;
                int8_t *gp = qs + off;
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
            if (a->layout == KERN_ACT_PLAIN_I) {
                a->is16[r * 2 * nb + 2 * b] = s0;
                a->is16[r * 2 * nb + 2 * b + 1] = s1;
            }
        }
    }
}

/* ---- Q4_0 / Q8_0 direct products --------------------------------------------- */

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

/*
 * The GEMVs below leave their weight streams to the hardware prefetcher: a
 * thread reads its rows front to back. Software prefetches 1 KB ahead (T0)
 * made them slower on one core, from memory: 8192 x 2048 Q4_0 24.0 -> 22.5
 * GB/s, Q8_0 29 -> 25 (bench_kernels -t 1, 3 alternated pairs). An earlier
 * version of that prefetch had measured +2-11%, but gcc had compiled it out
 * (see pf_t0): the gain was noise.
 */

/*
 * Except on Intel CPUs, for the GEMVs that read the GGUF blocks: there one core
 * streams a thread's rows at 7-10 GB/s where its read probe reaches 20-28 (Xeon,
 * Emerald Rapids: the hardware prefetchers run too short a distance ahead for
 * a loop with this much work per line), and a prefetch into L2 4 KB ahead of
 * each super-block or group of blocks (kern_pf_ahead, kernels_x86_inl.h, also
 * used by the AVX2 level's GEMVs) raises one core's Q4_K GEMV from memory
 * to 14 GB/s, Q4_0/Q8_0 to 14-15, Q5_0/Q5_1 to 10-11, and two cores' Q4_K
 * from 16-18 to 28-31 GB/s (bench_kernels -t 1|2, alternated). The
 * prefetching variants (pf = 1) are chosen at start-up on GenuineIntel CPUs;
 * the AMD cores measured (Zen 4/5) keep the plain ones.
 */

/*
 * Pointers to activation rows b0 .. b0 + nr - 1: quants, per-32 scales and
 * sums (per-16 sums with per16), for the multi-row GEMVs below.
 */
static inline __attribute__((always_inline)) void act_rows(const struct kern__act *a, int64_t b0,
                                                           int nr, int per16, const int8_t *aq[4],
                                                           const float *ad[4], const float *as[4])
{
    const int64_t nb = a->nb32;
    KERN_UNROLL(4)
    for (int i = 0; i < nr; i++) {
        aq[i] = a->qs + (b0 + i) * a->k;
        ad[i] = a->d + (b0 + i) * nb;
        as[i] = per16 ? a->ds16 + (b0 + i) * 2 * nb : a->ds + (b0 + i) * nb;
    }
}

/* act_rows, and the float accumulators of the rows (sums and offset terms) at zero. */
static inline __attribute__((always_inline)) void
act_rows_acc(const struct kern__act *a, int64_t b0, int nr, int per16, const int8_t *aq[4],
             const float *ad[4], const float *as[4], __m512 acc[4], __m512 corr[4])
{
    act_rows(a, b0, nr, per16, aq, ad, as);
    KERN_UNROLL(4)
    for (int i = 0; i < nr; i++) {
        acc[i] = _mm512_setzero_ps();
        corr[i] = _mm512_setzero_ps();
    }
}

/*
 * Q4_0 row . NR activation rows (1..4; Q4P layout). Per unit of 16 blocks the
 * weights' nibbles are gathered once and serve every activation row: a few
 * sequences decoding together cost little more than one (the direct 8-row
 * kernels pad 2-4 rows to 8).
 *
 * Vector m (0..3) holds in 128-bit lane L the 16 nibble bytes of block
 * 4L + m, gathered with 16-byte loads (two 256-bit inserts from memory and
 * one 512-bit insert) instead of two-source word permutes. Per row, the four
 * vpdpbusd sums (four int32 lanes per block) are reduced per block in
 * integer, by packs and vpmaddwd by ones, leaving the 16 block sums in
 * natural order: per row and 16 blocks one conversion, one multiply and two
 * FMAs (one for the -8 offset) instead of four conversions, four permutes,
 * four FMAs and two 256-bit multiply/FMA pairs.
 *
 * On Zen 4 (bench_kernels -c -t 1) this is as fast as the 8-block kernel it
 * replaced at B = 1 and faster at B = 2 and 4, where the per-row work
 * dominates. Dropping the scale gather or one per-row FMA (ablations) did not
 * make B = 1 faster: the loop is bound by the total of 512-bit ops and loads.
 */
static inline __attribute__((always_inline)) void dot_q4_0_rows(const block_q4_0 *x, int64_t nb,
                                                                const struct kern__act *a,
                                                                int64_t b0, int nr, const int pf,
                                                                float *out)
{
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    const __m512i ones = _mm512_set1_epi16(1);
    const int8_t *aq[4];
    const float *ad[4], *ads[4];
    __m512 acc[4], corr[4];
    act_rows_acc(a, b0, nr, 0, aq, ad, ads, acc, corr);
    /*
     * The 16 fp16 scales of a unit (288 bytes, block i's scale at 18i): blocks
     * 0..7 from the 64-byte loads at 0 and 64, blocks 8..15 from those at 144
     * and 208 (words 0, 9, ..., 63 of each pair).
     */
    const __m512i sidx = _mm512_castsi256_si512(
        _mm256_setr_epi16(0, 9, 18, 27, 36, 45, 54, 63, 0, 9, 18, 27, 36, 45, 54, 63));
    int64_t b = 0;
    const int64_t n16 = nb / 16 * 16;
    for (; b < n16; b += 16) {
        const char *xb = (const char *)&x[b];
        if (pf)
            kern_pf_ahead(xb, 16 * (int)sizeof *x);
        __m512i sa =
            _mm512_permutex2var_epi16(_mm512_loadu_si512(xb), sidx, _mm512_loadu_si512(xb + 64));
        __m512i sb = _mm512_permutex2var_epi16(_mm512_loadu_si512(xb + 144), sidx,
                                               _mm512_loadu_si512(xb + 208));
        __m512 dw = _mm512_cvtph_ps(
            _mm256_blend_epi32(_mm512_castsi512_si256(sa), _mm512_castsi512_si256(sb), 0xF0));
        __m512i w[8];
        KERN_UNROLL(4)
        for (int m = 0; m < 4; m++) {
            const char *p = xb + 18 * m + 2;
            __m256i lo =
                _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)p)),
                                        _mm_loadu_si128((const __m128i *)(p + 72)), 1);
            __m256i hi = _mm256_inserti128_si256(
                _mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(p + 144))),
                _mm_loadu_si128((const __m128i *)(p + 216)), 1);
            __m512i v = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
            w[2 * m] = _mm512_and_si512(v, m4);
            w[2 * m + 1] = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
        }
        KERN_UNROLL(4)
        for (int i = 0; i < nr; i++) {
            const int8_t *ap = aq[i] + b * 32;
            __m512i s[4];
            KERN_UNROLL(4)
            for (int m = 0; m < 4; m++) {
                s[m] = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w[2 * m],
                                           _mm512_loadu_si512(ap + 128 * m));
                s[m] =
                    _mm512_dpbusd_epi32(s[m], w[2 * m + 1], _mm512_loadu_si512(ap + 128 * m + 64));
            }
            /*
             * Exact in int16: a lane sums 8 products of 0..15 by -128..127
             * (at most 15360 in size), a pair of lanes at most 30720.
             */
            __m512i p01 = _mm512_madd_epi16(_mm512_packs_epi32(s[0], s[1]), ones);
            __m512i p23 = _mm512_madd_epi16(_mm512_packs_epi32(s[2], s[3]), ones);
            __m512i q = _mm512_madd_epi16(_mm512_packs_epi32(p01, p23), ones);
            __m512 da = _mm512_mul_ps(dw, _mm512_loadu_ps(ad[i] + b));
            acc[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(q), da, acc[i]);
            corr[i] = _mm512_fmadd_ps(dw, _mm512_loadu_ps(ads[i] + b), corr[i]);
        }
    }
    const int64_t nq = nb / 4 * 4;
    KERN_UNROLL(4)
    for (int i = 0; i < nr; i++) {
        float sum = _mm512_reduce_add_ps(_mm512_fnmadd_ps(corr[i], _mm512_set1_ps(8.0f), acc[i]));
        /* remaining blocks: groups of 4 (lo halves, then hi halves), then natural order */
        for (int64_t bq = n16; bq < nq; bq += 4) {
            const int8_t *ap = aq[i] + bq * 32;
            const char *p = (const char *)&x[bq] + 2;
            __m512i v = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)p));
            v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(p + 18)), 1);
            v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(p + 36)), 2);
            v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(p + 54)), 3);
            __m512i s = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_and_si512(v, m4),
                                            _mm512_loadu_si512(ap));
            s = _mm512_dpbusd_epi32(s, _mm512_and_si512(_mm512_srli_epi16(v, 4), m4),
                                    _mm512_loadu_si512(ap + 64));
            int32_t t[16];
            _mm512_storeu_si512(t, s);
            for (int j = 0; j < 4; j++) {
                int isum = t[4 * j] + t[4 * j + 1] + t[4 * j + 2] + t[4 * j + 3];
                sum += h2f(x[bq + j].d) * (ad[i][bq + j] * (float)isum - 8.0f * ads[i][bq + j]);
            }
        }
        for (b = nq; b < nb; b++) {
            const int8_t *ap = aq[i] + b * 32;
            int isum = 0;
            for (int j = 0; j < 16; j++)
                isum += ((x[b].qs[j] & 0xF) - 8) * ap[j] + ((x[b].qs[j] >> 4) - 8) * ap[j + 16];
            sum += h2f(x[b].d) * ad[i][b] * (float)isum;
        }
        out[i] = sum;
    }
}

/*
 * Activation rows b0..b1 of a GEMV in runs of up to 4 (multi_rows(x, a, b, n,
 * out) with a constant n, so each variant keeps its accumulators in registers).
 */
#define GEMV_MULTI(NAME, ROWFN, XT)                                                                \
    static void NAME(const void *W, size_t row_bytes, int64_t k, int64_t r0, int64_t r1,           \
                     const struct kern__act *a, int64_t b0, int64_t b1, float *y, int64_t ldy)     \
    {                                                                                              \
        for (int64_t r = r0; r < r1; r++) {                                                        \
            const XT *x = (const XT *)((const char *)W + (size_t)r * row_bytes);                   \
            for (int64_t b = b0; b < b1;) {                                                        \
                float out[4];                                                                      \
                int n = b1 - b >= 4 ? 4 : (int)(b1 - b);                                           \
                switch (n) {                                                                       \
                case 4:                                                                            \
                    ROWFN(x, k, a, b, 4, out);                                                     \
                    break;                                                                         \
                case 3:                                                                            \
                    ROWFN(x, k, a, b, 3, out);                                                     \
                    break;                                                                         \
                case 2:                                                                            \
                    ROWFN(x, k, a, b, 2, out);                                                     \
                    break;                                                                         \
                default:                                                                           \
                    ROWFN(x, k, a, b, 1, out);                                                     \
                    break;                                                                         \
                }                                                                                  \
                for (int i = 0; i < n; i++)                                                        \
                    y[(b + i) * ldy + r] = out[i];                                                 \
                b += n;                                                                            \
            }                                                                                      \
        }                                                                                          \
    }

#define Q4_0_ROWS(x, k, a, b, n, out)    dot_q4_0_rows(x, (k) / 32, a, b, n, 0, out)
#define Q4_0_ROWS_PF(x, k, a, b, n, out) dot_q4_0_rows(x, (k) / 32, a, b, n, 1, out)
GEMV_MULTI(gemv_q4_0, Q4_0_ROWS, block_q4_0)
GEMV_MULTI(gemv_q4_0_pf, Q4_0_ROWS_PF, block_q4_0)

/*
 * Q8_0 row . NR activation rows, 8 blocks at a time, two per 512-bit register.
 * The signed quants go as |q| against the activations with q's sign, which
 * dpbusd takes exactly (an offset of +128 on the weights, removed afterwards in
 * float as 128 * d * sum, left a residue where the true product is 0).
 */
static inline __attribute__((always_inline)) void dot_q8_0_rows(const block_q8_0 *x, int64_t nb,
                                                                const struct kern__act *a,
                                                                int64_t b0, int nr, const int pf,
                                                                float *out)
{
    const __m512i idx[4] = {
        _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1),
        _mm512_setr_epi32(2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3),
        _mm512_setr_epi32(4, 4, 4, 4, 4, 4, 4, 4, 5, 5, 5, 5, 5, 5, 5, 5),
        _mm512_setr_epi32(6, 6, 6, 6, 6, 6, 6, 6, 7, 7, 7, 7, 7, 7, 7, 7),
    };
    const int8_t *aq[4];
    const float *ad[4], *ads[4];
    __m512 acc[4];
    act_rows(a, b0, nr, 0, aq, ad, ads);
    KERN_UNROLL(4)
    for (int r = 0; r < nr; r++)
        acc[r] = _mm512_setzero_ps();
    int64_t b = 0;
    for (; b + 8 <= nb; b += 8) {
        if (pf)
            kern_pf_ahead(&x[b], 8 * (int)sizeof *x);
        __m256 dw = load_scales8((const uint8_t *)&x[b].d, sizeof *x);
        __m512i v[4];
        __mmask64 neg[4];
        KERN_UNROLL(4)
        for (int h = 0; h < 4; h++) {
            const int64_t i = b + 2 * h;
            __m512i w = _mm512_inserti64x4(
                _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)x[i].qs)),
                _mm256_loadu_si256((const __m256i *)x[i + 1].qs), 1);
            neg[h] = _mm512_movepi8_mask(w);
            v[h] = _mm512_abs_epi8(w);
        }
        KERN_UNROLL(4)
        for (int r = 0; r < nr; r++) {
            __m512 s16 = _mm512_castps256_ps512(_mm256_mul_ps(dw, _mm256_loadu_ps(ad[r] + b)));
            KERN_UNROLL(4)
            for (int h = 0; h < 4; h++) {
                __m512i q = _mm512_loadu_si512(aq[r] + (b + 2 * h) * 32);
                q = _mm512_mask_sub_epi8(q, neg[h], _mm512_setzero_si512(), q);
                __m512i sd = _mm512_dpbusd_epi32(_mm512_setzero_si512(), v[h], q);
                acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sd), _mm512_permutexvar_ps(idx[h], s16),
                                         acc[r]);
            }
        }
    }
    const int64_t btail = b;
    KERN_UNROLL(4)
    for (int r = 0; r < nr; r++) {
        float sum = _mm512_reduce_add_ps(acc[r]);
        for (b = btail; b < nb; b++) {
            int isum = 0;
            for (int j = 0; j < 32; j++)
                isum += x[b].qs[j] * aq[r][b * 32 + j];
            sum += h2f(x[b].d) * ad[r][b] * (float)isum;
        }
        out[r] = sum;
    }
}

#define Q8_0_ROWS(x, k, a, b, n, out)    dot_q8_0_rows(x, (k) / 32, a, b, n, 0, out)
#define Q8_0_ROWS_PF(x, k, a, b, n, out) dot_q8_0_rows(x, (k) / 32, a, b, n, 1, out)
GEMV_MULTI(gemv_q8_0, Q8_0_ROWS, block_q8_0)
GEMV_MULTI(gemv_q8_0_pf, Q8_0_ROWS_PF, block_q8_0)

/*
 * Q5_0 and Q5_1 are what Q4_K_M and Q5_K_M files use for rows that are not a
 * multiple of 256 long (most of Qwen2.5-0.5B's). Their GEMV is the Q4_0 one
 * (KERN_ACT_Q4P activations, units of 16 blocks, vector m holding in lane L
 * block 4L + m's nibbles) plus the fifth bits: the unsigned 5-bit quants u are
 * the nibbles with 16 added under a byte mask, and the offset (Q5_0: -16 d) or
 * minimum (Q5_1: m) is a float term per block with the activation sums.
 * Q4_1 (d, m, nibbles) runs the same code without the fifth bits: it had no
 * GEMV at this level before (packed rows: 7.3 -> 23.5 GB/s at B = 1 in cache,
 * B = 4 48 -> 152 GOP/s).
 *
 * A unit's 16 scales (and Q5_1's minima) are gathered with word permutes
 * from three pairs of 64-byte loads (at 0, 6 blocks and 16 blocks - 128
 * bytes: each block's d and m lie whole in one pair, a static assertion checks it).
 * Its eight 64-bit masks (mask 2m + h: the qh halves h of blocks m, 4 + m,
 * 8 + m, 12 + m, one per lane) are built in general registers from 16-bit
 * loads: the vector ports are the busy ones, and forming the masks there
 * (permuted into one vector, then extracted or stored and reloaded as mask
 * registers) measured 17-29% slower. In cache, one core (bench_kernels -c -t
 * 1), GB/s at B = 1: Q5_0 9.5 -> 20.0, Q5_1 11.1 -> 21.5 over the version
 * that formed each block's 32 quants apart; from memory 9.5 -> 12.8 and
 * 10.6 -> 12.7 (Xeon, Emerald Rapids).
 *
 * Exactness: a lane after two dpbusd sums 8 products of 0..31 by -128..127
 * (at most 31744 in size), packed to int16 once; the next level (pair sums up
 * to 63488) is added in int32.
 *
 * The last partial unit (1 to 3 groups of 4 blocks; KERN_ACT_Q4P lays these
 * out group by group) runs the same code with group g in vector g, masked loads
 * and block sums transposed back to natural order.
 */
/*
 * Kind 0 Q5_0 (d, qh, qs), 1 Q5_1 (d, m, qh, qs), 2 Q4_1 (d, m, qs): block size,
 * whether it has m and qh, the byte offset of the load pair p in a unit, of qh
 * and of qs in a block.
 */
#define Q5_BSZ(kind)                                                                               \
    ((kind) == 0   ? (int)sizeof(block_q5_0)                                                       \
     : (kind) == 1 ? (int)sizeof(block_q5_1)                                                       \
                   : (int)sizeof(block_q4_1))
#define Q5_HAS_M(kind)  ((kind) != 0)
#define Q5_HAS_H(kind)  ((kind) != 2)
#define Q5_OFF(kind, p) ((p) == 0 ? 0 : (p) == 1 ? 6 * Q5_BSZ(kind) : 16 * Q5_BSZ(kind) - 128)
#define Q5_QH(kind)     ((kind) == 1 ? 4 : 2)
#define Q5_QS(kind)     (Q5_HAS_H(kind) ? Q5_QH(kind) + 4 : 4)

/*
 * The word permutes gathering a unit's 16 scales (and the minima of Q5_1 and
 * Q4_1) from its three load pairs: q5_idx[kind][p] for pair p, and the words
 * taken from pairs 1 (blocks 6-11) and 2 (blocks 12-15). Word w is d (w < 16)
 * or m (w >= 16, kinds with m; d again for Q5_0) of block w % 16.
 */
#define Q5_PAIR(blk)     ((blk) < 6 ? 0 : (blk) < 12 ? 1 : 2)
#define Q5_BYTE(kind, w) ((w) < 16 || !Q5_HAS_M(kind) ? 0 : 2)
#define Q5_IX(kind, p, w)                                                                          \
    (Q5_PAIR((w) % 16) == (p) ? ((w) % 16 * Q5_BSZ(kind) + Q5_BYTE(kind, w) - Q5_OFF(kind, p)) / 2 \
                              : 0)
#define Q5_IX8(kind, p, w)                                                                         \
    Q5_IX(kind, p, w), Q5_IX(kind, p, w + 1), Q5_IX(kind, p, w + 2), Q5_IX(kind, p, w + 3),        \
        Q5_IX(kind, p, w + 4), Q5_IX(kind, p, w + 5), Q5_IX(kind, p, w + 6), Q5_IX(kind, p, w + 7)
#define Q5_IX32(kind, p)                                                                           \
    {                                                                                              \
        Q5_IX8(kind, p, 0), Q5_IX8(kind, p, 8), Q5_IX8(kind, p, 16), Q5_IX8(kind, p, 24)           \
    }
#define Q5_IXK(kind)                                                                               \
    {                                                                                              \
        Q5_IX32(kind, 0), Q5_IX32(kind, 1), Q5_IX32(kind, 2)                                       \
    }
static _Alignas(64) const uint16_t q5_idx[3][3][32] = {Q5_IXK(0), Q5_IXK(1), Q5_IXK(2)};
#define Q5_SEL1 0x0FC00FC0u /* words of blocks 6-11 */
#define Q5_SEL2 0xF000F000u /* words of blocks 12-15 */
/* Each block's d and m lie whole in its pair (blocks 5 and 11 end inside theirs). */
_Static_assert(5 * (int)sizeof(block_q5_1) + 4 <= 128 && 5 * (int)sizeof(block_q4_1) + 4 <= 128 &&
                   5 * (int)sizeof(block_q5_0) + 2 <= 128,
               "Q5 load pairs");

/* The 64 bytes at p, only the first n when masked (the rest zero). */
static inline __m512i q5_load(const char *p, int n, const int masked)
{
    if (!masked)
        return _mm512_loadu_si512(p);
    __mmask64 m = n >= 64 ? ~(__mmask64)0 : n <= 0 ? 0 : (((__mmask64)1 << n) - 1);
    return _mm512_maskz_loadu_epi8(m, p);
}

/*
 * One unit at xb (groups = 4) or partial unit (1..3 groups, tail) times NR
 * activation rows starting at block b: the weights' quants, scales and masks
 * formed once, then per row the integer dot products of the 16 blocks, their
 * block sums in natural order, and the float terms.
 */
static inline __attribute__((always_inline)) void
q5_unit(const char *xb, int64_t b, int groups, const int tail, const int kind, int nr,
        const int8_t *const aq[4], const float *const ad[4], const float *const ads[4],
        __m512 acc[4], __m512 corr[4])
{
    const int bsz = Q5_BSZ(kind), lim = groups * 4 * bsz;
    __m512i L[6];
    KERN_UNROLL(3)
    for (int p = 0; p < 3; p++) {
        L[2 * p] = q5_load(xb + Q5_OFF(kind, p), lim - Q5_OFF(kind, p), tail);
        L[2 * p + 1] = q5_load(xb + Q5_OFF(kind, p) + 64, lim - Q5_OFF(kind, p) - 64, tail);
    }
    const __m512i *ix = (const __m512i *)q5_idx[kind];
    __m512i sc = _mm512_permutex2var_epi16(L[0], _mm512_load_si512(ix), L[1]);
    sc = _mm512_mask_blend_epi16(Q5_SEL1, sc,
                                 _mm512_permutex2var_epi16(L[2], _mm512_load_si512(ix + 1), L[3]));
    sc = _mm512_mask_blend_epi16(Q5_SEL2, sc,
                                 _mm512_permutex2var_epi16(L[4], _mm512_load_si512(ix + 2), L[5]));
    const __m512 dw = _mm512_cvtph_ps(_mm512_castsi512_si256(sc));
    const __m512 mw = _mm512_cvtph_ps(_mm512_extracti64x4_epi64(sc, 1));
    /* mask 2v + h: the qh halves h of the four blocks of vector v, one per lane */
    uint64_t hm[8] = {0};
    KERN_UNROLL(4)
    for (int v = 0; v < 4; v++) {
        if (v >= groups || !Q5_HAS_H(kind))
            break;
        const int st = tail ? 1 : 4, bb = tail ? 4 * v : v;
        uint64_t lo = 0, hi = 0;
        KERN_UNROLL(4)
        for (int l = 0; l < 4; l++) {
            uint16_t h0, h1;
            memcpy(&h0, xb + (bb + l * st) * bsz + Q5_QH(kind), 2);
            memcpy(&h1, xb + (bb + l * st) * bsz + Q5_QH(kind) + 2, 2);
            lo |= (uint64_t)h0 << (16 * l);
            hi |= (uint64_t)h1 << (16 * l);
        }
        hm[2 * v] = lo;
        hm[2 * v + 1] = hi;
    }
    const __m512i m4 = _mm512_set1_epi8(0x0F), b16 = _mm512_set1_epi8(16);
    __m512i w[8];
    KERN_UNROLL(4)
    for (int v = 0; v < 4; v++) {
        if (v >= groups) {
            w[2 * v] = w[2 * v + 1] = _mm512_setzero_si512();
            continue;
        }
        /* lane L: block 4L + v (unit) or 4v + L (partial unit) */
        const int st = (tail ? 1 : 4) * bsz;
        const char *p = xb + (tail ? 4 * v : v) * bsz + Q5_QS(kind);
        __m256i lo =
            _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)p)),
                                    _mm_loadu_si128((const __m128i *)(p + st)), 1);
        __m256i hi = _mm256_inserti128_si256(
            _mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(p + 2 * st))),
            _mm_loadu_si128((const __m128i *)(p + 3 * st)), 1);
        __m512i x = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
        __m512i n0 = _mm512_and_si512(x, m4), n1 = _mm512_and_si512(_mm512_srli_epi16(x, 4), m4);
        w[2 * v] =
            Q5_HAS_H(kind) ? _mm512_mask_add_epi8(n0, _cvtu64_mask64(hm[2 * v]), n0, b16) : n0;
        w[2 * v + 1] =
            Q5_HAS_H(kind) ? _mm512_mask_add_epi8(n1, _cvtu64_mask64(hm[2 * v + 1]), n1, b16) : n1;
    }
    const __m512i tr = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    const __m512i ones = _mm512_set1_epi16(1);
    const __mmask16 valid = (__mmask16)((1u << (4 * groups)) - 1);
    KERN_UNROLL(4)
    for (int i = 0; i < nr; i++) {
        const int8_t *ap = aq[i] + b * 32;
        __m512i s[4];
        KERN_UNROLL(4)
        for (int v = 0; v < 4; v++) {
            s[v] = _mm512_setzero_si512();
            if (v >= groups)
                continue;
            s[v] = _mm512_dpbusd_epi32(s[v], w[2 * v], _mm512_loadu_si512(ap + 128 * v));
            s[v] = _mm512_dpbusd_epi32(s[v], w[2 * v + 1], _mm512_loadu_si512(ap + 128 * v + 64));
        }
        __m512i p01 = _mm512_madd_epi16(_mm512_packs_epi32(s[0], s[1]), ones);
        __m512i p23 = _mm512_madd_epi16(_mm512_packs_epi32(s[2], s[3]), ones);
        /* per lane L: the sums of s[0..3] (blocks 4L + v, or 4v + L in a partial unit) */
        __m512 e = _mm512_shuffle_ps(_mm512_castsi512_ps(p01), _mm512_castsi512_ps(p23), 0x88);
        __m512 o = _mm512_shuffle_ps(_mm512_castsi512_ps(p01), _mm512_castsi512_ps(p23), 0xDD);
        __m512i q = _mm512_add_epi32(_mm512_castps_si512(e), _mm512_castps_si512(o));
        if (tail)
            q = _mm512_permutexvar_epi32(tr, q);
        __m512 da = tail ? _mm512_maskz_loadu_ps(valid, ad[i] + b) : _mm512_loadu_ps(ad[i] + b);
        __m512 ds = tail ? _mm512_maskz_loadu_ps(valid, ads[i] + b) : _mm512_loadu_ps(ads[i] + b);
        acc[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(q), _mm512_mul_ps(dw, da), acc[i]);
        corr[i] = _mm512_fmadd_ps(Q5_HAS_M(kind) ? mw : dw, ds, corr[i]);
    }
}

static inline __attribute__((always_inline)) void dot_q5_rows(const void *xv, int64_t nb,
                                                              const struct kern__act *a, int64_t b0,
                                                              int nr, const int kind, const int pf,
                                                              float *out)
{
    const int bsz = Q5_BSZ(kind);
    const char *x = xv;
    const int8_t *aq[4];
    const float *ad[4], *ads[4];
    __m512 acc[4], corr[4];
    act_rows_acc(a, b0, nr, 0, aq, ad, ads, acc, corr);
    const int64_t n16 = nb / 16 * 16, nq = nb / 4 * 4;
    for (int64_t b = 0; b < n16; b += 16) {
        if (pf)
            kern_pf_ahead(x + b * bsz, 16 * bsz);
        q5_unit(x + b * bsz, b, 4, 0, kind, nr, aq, ad, ads, acc, corr);
    }
    if (nq > n16)
        q5_unit(x + n16 * bsz, n16, (int)(nq - n16) / 4, 1, kind, nr, aq, ad, ads, acc, corr);
    KERN_UNROLL(4)
    for (int i = 0; i < nr; i++) {
        float sum = _mm512_reduce_add_ps(
            Q5_HAS_M(kind) ? _mm512_add_ps(acc[i], corr[i])
                           : _mm512_fnmadd_ps(corr[i], _mm512_set1_ps(16.0f), acc[i]));
        for (int64_t b = nq; b < nb; b++) { /* natural order */
            const char *blk = x + b * bsz;
            const uint8_t *q4 = (const uint8_t *)blk + Q5_QS(kind);
            uint32_t qh = 0;
            if (Q5_HAS_H(kind))
                memcpy(&qh, blk + Q5_QH(kind), 4);
            const int8_t *ap = aq[i] + b * 32;
            int isum = 0;
            for (int j = 0; j < 16; j++)
                isum += ((q4[j] & 0xF) | ((qh >> j & 1) << 4)) * ap[j] +
                        ((q4[j] >> 4) | ((qh >> (j + 16) & 1) << 4)) * ap[j + 16];
            ggml_fp16_t d, m;
            memcpy(&d, blk, 2);
            memcpy(&m, blk + 2, 2);
            sum += h2f(d) * ad[i][b] * (float)isum +
                   (Q5_HAS_M(kind) ? h2f(m) : -16.0f * h2f(d)) * ads[i][b];
        }
        out[i] = sum;
    }
}

#define Q5_0_ROWS(x, k, a, b, n, out)    dot_q5_rows(x, (k) / 32, a, b, n, 0, 0, out)
#define Q5_1_ROWS(x, k, a, b, n, out)    dot_q5_rows(x, (k) / 32, a, b, n, 1, 0, out)
#define Q5_0_ROWS_PF(x, k, a, b, n, out) dot_q5_rows(x, (k) / 32, a, b, n, 0, 1, out)
#define Q5_1_ROWS_PF(x, k, a, b, n, out) dot_q5_rows(x, (k) / 32, a, b, n, 1, 1, out)
GEMV_MULTI(gemv_q5_0, Q5_0_ROWS, block_q5_0)
GEMV_MULTI(gemv_q5_1, Q5_1_ROWS, block_q5_1)
GEMV_MULTI(gemv_q5_0_pf, Q5_0_ROWS_PF, block_q5_0)
GEMV_MULTI(gemv_q5_1_pf, Q5_1_ROWS_PF, block_q5_1)
#define Q4_1_ROWS(x, k, a, b, n, out)    dot_q5_rows(x, (k) / 32, a, b, n, 2, 0, out)
#define Q4_1_ROWS_PF(x, k, a, b, n, out) dot_q5_rows(x, (k) / 32, a, b, n, 2, 1, out)
GEMV_MULTI(gemv_q4_1, Q4_1_ROWS, block_q4_1)
GEMV_MULTI(gemv_q4_1_pf, Q4_1_ROWS_PF, block_q4_1)

/*
 * Q3_K (and Q2_K) row . NR activation rows (KERN_ACT_PLAIN). Per super-block: the 64 qs
 * bytes as one vector, whose 2-bit fields j = 0..3 are elements 32j + l
 * (bytes 0-31) and 128 + 32j + l (bytes 32-63); 4 is added where the hmask
 * bit is set (hmask, and hmask >> 4 for the second half, tested per byte), so
 * u = q + 4 in 0..7 is the unsigned side of vpdpbusd against two 32-byte
 * activation pieces. Per row, two packs and two vpmaddwd by the 6-bit scales
 * (lanes of 4 products at most 3584, exact in int16) leave int32 sums per
 * 16-element half and activation block, converted once and scaled by d * d_a;
 * the offset -4 is a float term, 4 d sc * (d_a * sum a) per 16 elements.
 * Before, Q3_K had no GEMV at this level: its rows were unpacked to int8 and
 * dotted. One core in cache (bench_kernels -c -t 1): B = 1 2.3 -> 9.5 GB/s,
 * B = 2 19.5 -> 67 GOP/s, B = 4 30.6 -> 86, B = 8 60 -> 89 (Xeon, Emerald
 * Rapids). The 6-bit scales are unpacked in one register: the scalar
 * kern_q3k_scales and a reload of its 4 dword stores cost 40% at B = 1.
 *
 * Q2_K is the same without hmask (u = q in 0..3), with 4-bit scales, and
 * dmin * m (its 4-bit minima) as the float term: B = 1 3.7 -> 9.5 GB/s, B =
 * 2 27 -> 64-78 GOP/s; from memory 3.6 -> 9.7-9.9 GB/s.
 */
static inline __attribute__((always_inline)) void dot_q23_k_rows(const void *xv, int64_t nsb,
                                                                 const struct kern__act *a,
                                                                 int64_t b0, int nr, const int pf,
                                                                 const int q2, float *out)
{
    /*
     * sidx[p]: the scale of each word of packs(s[2p], s[2p + 1]) (lane L: 4
     * words of s[2p], then 4 of s[2p + 1]; s[j] lane L is elements 16L.. of
     * piece j (L < 2) or of piece 4 + j); daidx[p]: the activation block of
     * each dword after vpmaddwd.
     */
#define Q3_SC(p, w) (((w) / 8 < 2 ? 0 : 8) + 2 * (2 * (p) + ((w) % 8 >= 4)) + ((w) / 8 & 1))
#define Q3_SC8(p, L)                                                                               \
    Q3_SC(p, 8 * (L)), Q3_SC(p, 8 * (L) + 1), Q3_SC(p, 8 * (L) + 2), Q3_SC(p, 8 * (L) + 3),        \
        Q3_SC(p, 8 * (L) + 4), Q3_SC(p, 8 * (L) + 5), Q3_SC(p, 8 * (L) + 6), Q3_SC(p, 8 * (L) + 7)
    static const int16_t sidx_w[2][32] = {
        {Q3_SC8(0, 0), Q3_SC8(0, 1), Q3_SC8(0, 2), Q3_SC8(0, 3)},
        {Q3_SC8(1, 0), Q3_SC8(1, 1), Q3_SC8(1, 2), Q3_SC8(1, 3)},
    };
#undef Q3_SC8
#undef Q3_SC
    const __m512i sidx[2] = {_mm512_loadu_si512(sidx_w[0]), _mm512_loadu_si512(sidx_w[1])};
    const __m512i daidx[2] = {
        _mm512_setr_epi32(0, 0, 1, 1, 0, 0, 1, 1, 4, 4, 5, 5, 4, 4, 5, 5),
        _mm512_setr_epi32(2, 2, 3, 3, 2, 2, 3, 3, 6, 6, 7, 7, 6, 6, 7, 7),
    };
    const __m512i m3 = _mm512_set1_epi8(3), c4 = _mm512_set1_epi8(4);
    const int8_t *aq[4];
    const float *ad[4], *ads[4];
    __m512 acc[4], corr[4];
    act_rows_acc(a, b0, nr, 1, aq, ad, ads, acc, corr);
    const size_t bsz = q2 ? sizeof(block_q2_K) : sizeof(block_q3_K);
    for (int64_t sb = 0; sb < nsb; sb++) {
        const uint8_t *blk = (const uint8_t *)xv + (size_t)sb * bsz;
        const block_q2_K *x2 = (const block_q2_K *)blk;
        const block_q3_K *x3 = (const block_q3_K *)blk;
        if (pf)
            kern_pf_ahead(blk, (int)bsz);
        const __m512i Q = _mm512_loadu_si512(q2 ? x2->qs : x3->qs);
        __m512i H = _mm512_setzero_si512();
        if (!q2) {
            const __m256i hv = _mm256_loadu_si256((const __m256i *)x3->hmask);
            H = _mm512_inserti64x4(_mm512_castsi256_si512(hv), _mm256_srli_epi16(hv, 4), 1);
        }
        /* Q3_K: kern_q3k_scales in one register (dwords a0 a1 a2 of the 12 bytes); Q2_K:
         * scale | min << 4 per byte */
        const __m128i s12 =
            _mm_maskz_loadu_epi8(q2 ? 0xFFFF : 0x0FFF, q2 ? x2->scales : x3->scales);
        const __m128i lo =
            _mm_and_si128(_mm_srlv_epi32(_mm_shuffle_epi32(s12, 0x44), _mm_setr_epi32(0, 0, 4, 4)),
                          _mm_set1_epi32(0x0f0f0f0f));
        const __m128i hi = _mm_slli_epi32(
            _mm_and_si128(_mm_srlv_epi32(_mm_shuffle_epi32(s12, 0xAA), _mm_setr_epi32(0, 2, 4, 6)),
                          _mm_set1_epi32(0x03030303)),
            4);
        const __m256i S16 = q2 ? _mm256_cvtepu8_epi16(_mm_and_si128(s12, _mm_set1_epi8(0x0F)))
                               : _mm256_sub_epi16(_mm256_cvtepi8_epi16(_mm_or_si128(lo, hi)),
                                                  _mm256_set1_epi16(32));
        const __m512i SC[2] = {_mm512_permutexvar_epi16(sidx[0], _mm512_castsi256_si512(S16)),
                               _mm512_permutexvar_epi16(sidx[1], _mm512_castsi256_si512(S16))};
        const float d = h2f(q2 ? x2->d : x3->d);
        /* the term taken off per 16 elements: Q3_K 4 d sc, Q2_K dmin m */
        const __m512 scd = q2 ? _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_and_si128(
                                                  _mm_srli_epi16(s12, 4), _mm_set1_epi8(0x0F)))),
                                              _mm512_set1_ps(h2f(x2->dmin)))
                              : _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi16_epi32(S16)),
                                              _mm512_set1_ps(4.0f * d));
        __m512i u[4];
        KERN_UNROLL(4)
        for (int j = 0; j < 4; j++) {
            const __m512i qq = _mm512_and_si512(j ? _mm512_srli_epi16(Q, 2 * j) : Q, m3);
            const __mmask64 hb = _mm512_test_epi8_mask(H, _mm512_set1_epi8((char)(1 << j)));
            u[j] = q2 ? qq : _mm512_mask_add_epi8(qq, hb, qq, c4);
        }
        KERN_UNROLL(4)
        for (int i = 0; i < nr; i++) {
            const int8_t *ap = aq[i] + sb * QK_K;
            __m512i s[4];
            KERN_UNROLL(4)
            for (int j = 0; j < 4; j++) {
                const __m512i av = _mm512_inserti64x4(
                    _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(ap + 32 * j))),
                    _mm256_loadu_si256((const __m256i *)(ap + 128 + 32 * j)), 1);
                s[j] = _mm512_dpbusd_epi32(_mm512_setzero_si512(), u[j], av);
            }
            const __m512 dd = _mm512_castps256_ps512(
                _mm256_mul_ps(_mm256_loadu_ps(ad[i] + sb * 8), _mm256_set1_ps(d)));
            KERN_UNROLL(2)
            for (int p = 0; p < 2; p++) {
                const __m512i r =
                    _mm512_madd_epi16(_mm512_packs_epi32(s[2 * p], s[2 * p + 1]), SC[p]);
                acc[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(r), _mm512_permutexvar_ps(daidx[p], dd),
                                         acc[i]);
            }
            corr[i] = _mm512_fmadd_ps(scd, _mm512_loadu_ps(ads[i] + sb * 16), corr[i]);
        }
    }
    KERN_UNROLL(4)
    for (int i = 0; i < nr; i++)
        out[i] = _mm512_reduce_add_ps(_mm512_sub_ps(acc[i], corr[i]));
}

#define Q3_K_ROWS(x, k, a, b, n, out)    dot_q23_k_rows(x, (k) / QK_K, a, b, n, 0, 0, out)
#define Q3_K_ROWS_PF(x, k, a, b, n, out) dot_q23_k_rows(x, (k) / QK_K, a, b, n, 1, 0, out)
#define Q2_K_ROWS(x, k, a, b, n, out)    dot_q23_k_rows(x, (k) / QK_K, a, b, n, 0, 1, out)
#define Q2_K_ROWS_PF(x, k, a, b, n, out) dot_q23_k_rows(x, (k) / QK_K, a, b, n, 1, 1, out)
GEMV_MULTI(gemv_q3_k, Q3_K_ROWS, block_q3_K)
GEMV_MULTI(gemv_q3_k_pf, Q3_K_ROWS_PF, block_q3_K)
GEMV_MULTI(gemv_q2_k, Q2_K_ROWS, block_q2_K)
GEMV_MULTI(gemv_q2_k_pf, Q2_K_ROWS_PF, block_q2_K)

/* ---- K-quant direct products ------------------------------------------------ */

/*
 * Q4_K / Q5_K row . K4P activations. Per super-block: two 64-byte nibble loads
 * give sub-blocks (0,2), (1,3), (4,6), (5,7) as 512-bit vectors; for Q5_K the
 * fifth bits come from qh (bit j of qh[l] belongs to sub-block j), moved to
 * bit 4 with per-half shifts. The four vpdpbusd results are reduced per
 * sub-block and multiplied by the 6-bit scales in integer, so each activation
 * row costs one conversion and one FMA (d * d_act per lane) per super-block
 * instead of four of each; mins are applied with d_act * sum(a).
 *
 * On Zen 4 the loop is bound by the vector shuffle/shift and multiply ports
 * rather than by the weight bytes, so the scales are unpacked with few of
 * those: in cache, one core (bench_kernels -c -t 1), B = 1 went from 19.8 to
 * 24.7 GB/s and B = 4 from 122 to 148 GOP/s against four float FMAs, four
 * conversions and four permutes per activation row and a float scale unpack.
 */
static inline __attribute__((always_inline)) void dot_k4_rows(const uint8_t *row, size_t bsz,
                                                              int is5, int64_t nsb,
                                                              const struct kern__act *a, int64_t b0,
                                                              int nr, const int pf, float *out)
{
    const __m512i m4 = _mm512_set1_epi8(0x0F), b4 = _mm512_set1_epi8(0x10);
    /* shifts bringing qh bit j to bit 4, for sub-blocks (0,2) (1,3) left, (4,6) (5,7) right */
    const __m512i sl0 = _mm512_setr_epi64(4, 4, 4, 4, 2, 2, 2, 2);
    const __m512i sl1 = _mm512_setr_epi64(3, 3, 3, 3, 1, 1, 1, 1);
    const __m512i sr2 = _mm512_setr_epi64(0, 0, 0, 0, 2, 2, 2, 2);
    const __m512i sr3 = _mm512_setr_epi64(1, 1, 1, 1, 3, 3, 3, 3);
    /*
     * The four products (16 int32 lanes = 2 sub-blocks each) are summed per
     * sub-block by packs (signed saturation to words; exact, as sums of up to 8
     * products of 0..31 by -128..127 fit) and vpmaddwd: by ones, then by the
     * scales. That leaves one vector of 16-element sums times their scale; per
     * 128-bit lane L the sub-blocks X, Y, X + 4, Y + 4 with (X, Y) = (0, 1) for
     * L < 2, (2, 3) for L >= 2.
     *
     * The scales and mins are unpacked from the 12 bytes b (layout as in
     * k4_scales_mins) into dwords sc_j | m_j << 16, word by word as
     * M & (w >> s) | ~M & (w >> 10) with w one or two bytes of b and M = 0x3f
     * (j < 4) or 0x0f (j >= 4):
     *   j < 4:  sc_j = b[j] & 0x3f, m_j = b[j + 4] & 0x3f (w = the byte, s = 0)
     *   j >= 4: sc_j = b[j + 4] & 0x0f | (b[j - 4] >> 6) << 4 (w = b[j + 4] | b[j - 4] << 8,
     *           s = 0), m_j = b[j + 4] >> 4 | (b[j] >> 6) << 4 (w = b[j + 4] | b[j] << 8, s = 4)
     * smidx: the bytes of each w (-128 for zero), per dword sc then m.
     */
    const __m256i smidx =
        _mm256_setr_epi8(0, -128, 4, -128, 1, -128, 5, -128, 2, -128, 6, -128, 3, -128, 7, -128, 8,
                         0, 8, 4, 9, 1, 9, 5, 10, 2, 10, 6, 11, 3, 11, 7);
    const __m256i smsh = _mm256_setr_epi16(0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 4, 0, 4, 0, 4);
    const __m256i smmask = _mm256_setr_epi16(0x3F, 0x3F, 0x3F, 0x3F, 0x3F, 0x3F, 0x3F, 0x3F, 0x0F,
                                             0x0F, 0x0F, 0x0F, 0x0F, 0x0F, 0x0F, 0x0F);
    /*
     * The scale words for the last vpmaddwd, picked from the dwords (word 2j is
     * sc_j): per 128-bit lane, two words each of sub-blocks X, Y, X + 4, Y + 4.
     */
    const __m512i scidx = _mm512_set_epi16(14, 14, 12, 12, 6, 6, 4, 4, 14, 14, 12, 12, 6, 6, 4, 4,
                                           10, 10, 8, 8, 2, 2, 0, 0, 10, 10, 8, 8, 2, 2, 0, 0);
    const __m256i mhi = _mm256_set1_epi32((int)0xFFFF0000u);
    const __m512i ones = _mm512_set1_epi16(1);
    /* d * d_act per lane of the sums */
    const __m512i fidx = _mm512_setr_epi32(0, 1, 4, 5, 0, 1, 4, 5, 2, 3, 6, 7, 2, 3, 6, 7);
    const int8_t *aq[4];
    const float *ad[4], *ads[4];
    __m512 acc[4];
    __m256 accm[4];
    act_rows(a, b0, nr, 0, aq, ad, ads);
    KERN_UNROLL(4)
    for (int r = 0; r < nr; r++) {
        acc[r] = _mm512_setzero_ps();
        accm[r] = _mm256_setzero_ps();
    }
    for (int64_t i = 0; i < nsb; i++) {
        const uint8_t *xb = row + (size_t)i * bsz;
        const uint8_t *qs = xb + 4 + K_SCALE_SIZE + (is5 ? QK_K / 8 : 0);
        if (pf)
            kern_pf_ahead(xb, (int)bsz);
        uint32_t ddm;
        memcpy(&ddm, xb, 4);
        __m128 dd = _mm_cvtph_ps(_mm_cvtsi32_si128((int)ddm));
        __m256 dw = _mm256_broadcastss_ps(dd);
        __m256i sw = _mm256_shuffle_epi8(
            _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(xb + 4))), smidx);
        __m256i sm = _mm256_ternarylogic_epi32(smmask, _mm256_srlv_epi16(sw, smsh),
                                               _mm256_srli_epi16(sw, 10), 0xCA);
        __m512i sc = _mm512_permutexvar_epi16(scidx, _mm512_castsi256_si512(sm));
        /* 65536 * m_j * dmin (the 65536 is taken out at the end) */
        __m256 mf = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_and_si256(sm, mhi)),
                                  _mm256_broadcastss_ps(_mm_movehdup_ps(dd)));
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
        KERN_UNROLL(4)
        for (int r = 0; r < nr; r++) {
            const int8_t *ap = aq[r] + 256 * i;
            accm[r] = _mm256_fmadd_ps(mf, _mm256_loadu_ps(ads[r] + 8 * i), accm[r]);
            __m512 da = _mm512_castps256_ps512(_mm256_mul_ps(dw, _mm256_loadu_ps(ad[r] + 8 * i)));
            __m512i a0 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w0, _mm512_loadu_si512(ap));
            __m512i a1 =
                _mm512_dpbusd_epi32(_mm512_setzero_si512(), w1, _mm512_loadu_si512(ap + 64));
            __m512i a2 =
                _mm512_dpbusd_epi32(_mm512_setzero_si512(), w2, _mm512_loadu_si512(ap + 128));
            __m512i a3 =
                _mm512_dpbusd_epi32(_mm512_setzero_si512(), w3, _mm512_loadu_si512(ap + 192));
            __m512i p01 = _mm512_madd_epi16(_mm512_packs_epi32(a0, a1), ones);
            __m512i p45 = _mm512_madd_epi16(_mm512_packs_epi32(a2, a3), ones);
            __m512i q = _mm512_madd_epi16(_mm512_packs_epi32(p01, p45), sc);
            acc[r] =
                _mm512_fmadd_ps(_mm512_cvtepi32_ps(q), _mm512_permutexvar_ps(fidx, da), acc[r]);
        }
    }
    KERN_UNROLL(4)
    for (int r = 0; r < nr; r++)
        out[r] = _mm512_reduce_add_ps(acc[r]) - hsum256(accm[r]) * (1.0f / 65536.0f);
}

#define Q4_K_ROWS(x, k, a, b, n, out)                                                              \
    dot_k4_rows((const uint8_t *)(x), sizeof(block_q4_K), 0, (k) / QK_K, a, b, n, 0, out)
#define Q5_K_ROWS(x, k, a, b, n, out)                                                              \
    dot_k4_rows((const uint8_t *)(x), sizeof(block_q5_K), 1, (k) / QK_K, a, b, n, 0, out)
#define Q4_K_ROWS_PF(x, k, a, b, n, out)                                                           \
    dot_k4_rows((const uint8_t *)(x), sizeof(block_q4_K), 0, (k) / QK_K, a, b, n, 1, out)
#define Q5_K_ROWS_PF(x, k, a, b, n, out)                                                           \
    dot_k4_rows((const uint8_t *)(x), sizeof(block_q5_K), 1, (k) / QK_K, a, b, n, 1, out)
GEMV_MULTI(gemv_q4_k, Q4_K_ROWS, uint8_t)
GEMV_MULTI(gemv_q5_k, Q5_K_ROWS, uint8_t)
GEMV_MULTI(gemv_q4_k_pf, Q4_K_ROWS_PF, uint8_t)
GEMV_MULTI(gemv_q5_k_pf, Q5_K_ROWS_PF, uint8_t)

/*
 * Q6_K row . plain activations. A 64-byte load of ql gives elements 0..63 of
 * a 128-half in its low nibbles and 64..127 in its high nibbles; the 2-bit
 * highs come from qh with per-half shifts. Values are 0..63 (the -32 offset
 * is applied with the activation sums), 16-element sub-blocks = 4 lanes.
 *
 * The four products (128-bit lane L of product q = sub-block 4q + L) are
 * reduced in integer as in dot_k4_rows: packed to words in pairs and
 * multiplied by the int8 scales with vpmaddwd, leaving two vectors of
 * scale * 8-element sums per row, each converted and FMA'd with d * d_act
 * (two conversions, FMAs and permutes per row and super-block instead of
 * four of each plus a scale multiply). The -32 offset goes into the same
 * accumulator: -32 * d * sc times the per-16 activation sums.
 * Bounds (activations -127..127, scales -128..127): a product lane sums
 * 4 * 63 * 127 = 32004 (fits int16, so packs is exact); a vpmaddwd dword
 * 2 * 32004 * 128 = 8,193,024 < 2^24 (exact in int32 and in float).
 *
 * On Zen 4 the loop is bound by the shuffle/shift ports: adding the two
 * sub-blocks of an activation block across lanes before one conversion
 * (two vshufi32x4 + add) was slower than the second conversion and FMA; so
 * were vpshufb + vpsraw for the scale words (instead of vpermw) and
 * two-source dword permutes (vpermt2d).
 */
static inline __attribute__((always_inline)) void dot_q6_k_rows(const block_q6_K *x, int64_t nsb,
                                                                const struct kern__act *a,
                                                                int64_t b0, int nr, const int pf,
                                                                float *out)
{
    /*
     * Scale words for packs(p0, p1) and packs(p2, p3): per 128-bit lane L,
     * four words of sub-block L then four of L + 4 (+ 8 for the second).
     */
    const __m512i sidx01 = _mm512_set_epi16(7, 7, 7, 7, 3, 3, 3, 3, 6, 6, 6, 6, 2, 2, 2, 2, 5, 5, 5,
                                            5, 1, 1, 1, 1, 4, 4, 4, 4, 0, 0, 0, 0);
    const __m512i sidx23 = _mm512_add_epi16(sidx01, _mm512_set1_epi16(8));
    /* d * d_act per dword of m01: per lane blocks (0, 2) (0, 2) (1, 3) (1, 3), two each; m23 + 4 */
    const __m512i fidx01 = _mm512_setr_epi32(0, 0, 2, 2, 0, 0, 2, 2, 1, 1, 3, 3, 1, 1, 3, 3);
    const __m512i fidx23 = _mm512_add_epi32(fidx01, _mm512_set1_epi32(4));
    const int8_t *aq[4];
    const float *ad[4], *ads16[4];
    __m512 acc[4];
    act_rows(a, b0, nr, 1, aq, ad, ads16);
    KERN_UNROLL(4)
    for (int r = 0; r < nr; r++)
        acc[r] = _mm512_setzero_ps();
    for (int64_t i = 0; i < nsb; i++) {
        const block_q6_K *xb = x + i;
        if (pf)
            kern_pf_ahead(xb, (int)sizeof *xb);
        __m128i sb = _mm_loadu_si128((const __m128i *)xb->scales);
        float d = h2f(xb->d);
        /* -32 * d * sc per sub-block, times d_act * (sum of its activations) */
        __m512 scf =
            _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(sb)), _mm512_set1_ps(-32.0f * d));
        __m512i s16 = _mm512_castsi256_si512(_mm256_cvtepi8_epi16(sb));
        __m512i sc01 = _mm512_permutexvar_epi16(sidx01, s16);
        __m512i sc23 = _mm512_permutexvar_epi16(sidx23, s16);
        __m256 dw = _mm256_set1_ps(d);
        __m512i w[4];
        q6_k_quants(xb, w);
        KERN_UNROLL(4)
        for (int r = 0; r < nr; r++) {
            const int8_t *ap = aq[r] + 256 * i;
            acc[r] = _mm512_fmadd_ps(scf, _mm512_loadu_ps(ads16[r] + 16 * i), acc[r]);
            __m512 da = _mm512_castps256_ps512(_mm256_mul_ps(dw, _mm256_loadu_ps(ad[r] + 8 * i)));
            __m512i p0 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w[0], _mm512_loadu_si512(ap));
            __m512i p1 =
                _mm512_dpbusd_epi32(_mm512_setzero_si512(), w[1], _mm512_loadu_si512(ap + 64));
            __m512i p2 =
                _mm512_dpbusd_epi32(_mm512_setzero_si512(), w[2], _mm512_loadu_si512(ap + 128));
            __m512i p3 =
                _mm512_dpbusd_epi32(_mm512_setzero_si512(), w[3], _mm512_loadu_si512(ap + 192));
            /* per lane L: sub-blocks L, L + 4 (m01) and L + 8, L + 12 (m23), two dwords each */
            __m512i m01 = _mm512_madd_epi16(_mm512_packs_epi32(p0, p1), sc01);
            __m512i m23 = _mm512_madd_epi16(_mm512_packs_epi32(p2, p3), sc23);
            acc[r] =
                _mm512_fmadd_ps(_mm512_cvtepi32_ps(m01), _mm512_permutexvar_ps(fidx01, da), acc[r]);
            acc[r] =
                _mm512_fmadd_ps(_mm512_cvtepi32_ps(m23), _mm512_permutexvar_ps(fidx23, da), acc[r]);
        }
    }
    KERN_UNROLL(4)
    for (int r = 0; r < nr; r++)
        out[r] = _mm512_reduce_add_ps(acc[r]);
}

#define Q6_K_ROWS(x, k, a, b, n, out)    dot_q6_k_rows(x, (k) / QK_K, a, b, n, 0, out)
#define Q6_K_ROWS_PF(x, k, a, b, n, out) dot_q6_k_rows(x, (k) / QK_K, a, b, n, 1, out)
GEMV_MULTI(gemv_q6_k, Q6_K_ROWS, block_q6_K)
GEMV_MULTI(gemv_q6_k_pf, Q6_K_ROWS_PF, block_q6_K)

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
    KERN_UNROLL(4)
    for (int i = 0; i < RB; i++) {
        KERN_UNROLL(4)
        for (int j = 0; j < CB; j++)
            acc[i][j] = _mm512_setzero_ps();
    }
    const void *rows[4];
    const size_t esz = t == GGML_TYPE_F32 ? 4 : 2;
    KERN_UNROLL(4)
    for (int i = 0; i < RB; i++)
        rows[i] = (const char *)W + (size_t)(r + i) * rb_bytes;
    int64_t kk = k0;
    for (; kk + 16 <= k1; kk += 16) {
        __m512 xv[4];
        KERN_UNROLL(4)
        for (int j = 0; j < CB; j++)
            xv[j] = _mm512_loadu_ps(x + (c + j) * k + kk);
        KERN_UNROLL(4)
        for (int i = 0; i < RB; i++) {
            /*
             * The next tile's rows, same offset: RB rows of a few KB each read
             * side by side are separate streams that restart at every page, and
             * the hardware prefetcher alone left F16 decoding at a third of the
             * memory bandwidth. Prefetches never fault past the matrix's end.
             */
            _mm_prefetch((const char *)rows[i] + (size_t)RB * rb_bytes + (size_t)kk * esz,
                         _MM_HINT_T1);
            __m512 wv = load_w16(t, rows[i], kk);
            KERN_UNROLL(4)
            for (int j = 0; j < CB; j++)
                acc[i][j] = _mm512_fmadd_ps(wv, xv[j], acc[i][j]);
        }
    }
    KERN_UNROLL(4)
    for (int i = 0; i < RB; i++) {
        KERN_UNROLL(4)
        for (int j = 0; j < CB; j++) {
            float sum = _mm512_reduce_add_ps(acc[i][j]);
            for (int64_t q = kk; q < k1; q++)
                sum += kern_load_w1(t, rows[i], q) * x[(c + j) * k + q];
            float *out = &y[(c + j) * ldy + r + i];
            *out = acc_y ? *out + sum : sum;
        }
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

/*
 * Large batches use the outer-product form instead, blocked like BLIS: per
 * OP_KC slice of k, the batch rows' slice is copied k-major in groups of OP_CB
 * rows (xp, in L2), then each block of OP_RB weight rows is converted to float
 * and transposed k-major (pk, 32 KB, in L1), and swept by every group: per k,
 * two 16-row weight vectors and one broadcast per batch row feed OP_CB x 2
 * accumulators, no horizontal sums, results stored as whole vectors into y
 * rows (added to them after the first slice). k is the outer loop so that the
 * x slice stays in L2 while the weight blocks pass.
 */
#define OP_RB 32
#define OP_KC 256
#define OP_CB 12
/* Batches above this use the outer-product form. */
#define FLOAT_OUTER_MIN_B 16

_Static_assert(OP_RB <= KERN_FLOAT_BLK_ROWS && OP_KC <= KERN_FLOAT_KC && OP_CB <= 16,
               "the outer-product blocks must fit kern__float_scratch");

/* xp[(g * kc + kk) * OP_CB + j] = x[(g * OP_CB + j) * k + k0 + kk], batch rows past B zero. */
static void float_pack_x(const float *x, int64_t k, int64_t B, int64_t k0, int kc, float *xp)
{
    for (int64_t c0 = 0; c0 < B; c0 += OP_CB) {
        float *g = xp + c0 * kc;
        for (int j = 0; j < OP_CB; j++) {
            if (c0 + j >= B) {
                for (int kk = 0; kk < kc; kk++)
                    g[kk * OP_CB + j] = 0.0f;
                continue;
            }
            const float *xr = x + (c0 + j) * k + k0;
            for (int kk = 0; kk < kc; kk++)
                g[kk * OP_CB + j] = xr[kk];
        }
    }
}

/*
 * y[j * ldy + i] (+)= sum over kk < kc of pk[kk][i] * xp[kk][j] for j < nc,
 * rows i under the masks m0 (0-15) and m1 (16-31). All OP_CB columns are
 * computed (xp is zero past the batch); 2 weight loads and OP_CB broadcasts
 * per 2 * OP_CB FMAs.
 */
static void float_outer(const float *pk, int kc, const float *xp, float *y, int64_t ldy,
                        __mmask16 m0, __mmask16 m1, int acc_y, int nc)
{
    __m512 acc[OP_CB][2];
    KERN_UNROLL(12)
    for (int j = 0; j < OP_CB; j++) {
        acc[j][0] = acc[j][1] = _mm512_setzero_ps();
        /* the tile's y rows, needed when the k loop ends (from L3 when y is large) */
        if (acc_y && j < nc) {
            _mm_prefetch((const char *)(y + j * ldy), _MM_HINT_T0);
            _mm_prefetch((const char *)(y + j * ldy + 16), _MM_HINT_T0);
            _mm_prefetch((const char *)(y + j * ldy + 31), _MM_HINT_T0);
        }
    }
    for (int kk = 0; kk < kc; kk++) {
        const __m512 w0 = _mm512_loadu_ps(pk + kk * OP_RB);
        const __m512 w1 = _mm512_loadu_ps(pk + kk * OP_RB + 16);
        KERN_UNROLL(12)
        for (int j = 0; j < OP_CB; j++) {
            const __m512 xb = _mm512_set1_ps(xp[kk * OP_CB + j]);
            acc[j][0] = _mm512_fmadd_ps(w0, xb, acc[j][0]);
            acc[j][1] = _mm512_fmadd_ps(w1, xb, acc[j][1]);
        }
    }
    KERN_UNROLL(12)
    for (int j = 0; j < OP_CB; j++) {
        if (j >= nc)
            break;
        float *yo = y + j * ldy;
        if (acc_y) {
            acc[j][0] = _mm512_add_ps(acc[j][0], _mm512_maskz_loadu_ps(m0, yo));
            acc[j][1] = _mm512_add_ps(acc[j][1], _mm512_maskz_loadu_ps(m1, yo + 16));
        }
        _mm512_mask_storeu_ps(yo, m0, acc[j][0]);
        _mm512_mask_storeu_ps(yo + 16, m1, acc[j][1]);
    }
}

/*
 * The block that follows (rb, k0) in avx512_gemm_float's order, fetched into L2
 * piecewise while the current one is multiplied: its OP_RB row pieces are short
 * reads from separate rows, which no hardware prefetcher follows, and
 * converting them straight from memory stalled on every line (14-36% of an F16
 * prompt's time, depending on the machine's memory latency at the moment).
 */
struct float_pf {
    const char *base;        /* first row's first byte of the piece */
    size_t row_bytes, lines; /* lines per row piece (rounded up, one for misalignment) */
    int64_t total, next;     /* lines in the block, next to fetch */
};

static void float_pf_init(struct float_pf *pf, enum ggml_type t, const void *W, size_t row_bytes,
                          int64_t k, int64_t k0, int64_t rb, int64_t r0, int64_t r1)
{
    const size_t esz = t == GGML_TYPE_F32 ? 4 : 2;
    int64_t nk0 = k0, nrb = rb + OP_RB;
    if (nrb >= r1) {
        nk0 = k0 + OP_KC;
        nrb = r0;
    }
    pf->base = W;
    pf->row_bytes = row_bytes;
    pf->lines = 1;
    pf->total = pf->next = 0;
    if (nk0 >= k)
        return;
    int64_t nk1 = nk0 + OP_KC < k ? nk0 + OP_KC : k;
    int64_t nr = r1 - nrb < OP_RB ? r1 - nrb : OP_RB;
    pf->base = (const char *)W + (size_t)nrb * row_bytes + (size_t)nk0 * esz;
    pf->lines = ((size_t)(nk1 - nk0) * esz + 63) / 64 + 1;
    pf->total = nr * (int64_t)pf->lines;
}

static inline void float_pf_run(struct float_pf *pf, int64_t n)
{
    for (int64_t e = pf->next + n < pf->total ? pf->next + n : pf->total; pf->next < e;
         pf->next++) {
        int64_t i = pf->next / (int64_t)pf->lines, q = pf->next % (int64_t)pf->lines;
        _mm_prefetch(pf->base + (size_t)i * pf->row_bytes + (size_t)q * 64, _MM_HINT_T1);
    }
}

static void avx512_gemm_float(enum ggml_type t, const void *W, size_t row_bytes, int64_t k,
                              int64_t r0, int64_t r1, const float *x, int64_t B, float *y,
                              int64_t ldy, float *scratch)
{
    static const float_tile_fn t4[5] = {NULL, float_tile_4_1, float_tile_4_2, float_tile_4_3,
                                        float_tile_4_4};
    static const float_tile_fn t1[5] = {NULL, float_tile_1_1, float_tile_1_2, float_tile_1_3,
                                        float_tile_1_4};
    if (B <= FLOAT_OUTER_MIN_B) {
        /* dot-product form: the weights stream once, full k per tile */
        int64_t r = r0;
        for (; r + 4 <= r1; r += 4)
            for (int64_t c = 0; c < B; c += 4)
                t4[B - c < 4 ? B - c : 4](t, W, row_bytes, k, 0, k, r, x, c, y, ldy, 0);
        for (; r < r1; r++)
            for (int64_t c = 0; c < B; c += 4)
                t1[B - c < 4 ? B - c : 4](t, W, row_bytes, k, 0, k, r, x, c, y, ldy, 0);
        return;
    }
    float *pk = scratch, *xp = scratch + OP_RB * OP_KC;
    const int64_t groups = (B + OP_CB - 1) / OP_CB;
    for (int64_t k0 = 0; k0 < k; k0 += OP_KC) {
        const int kc = k - k0 < OP_KC ? (int)(k - k0) : OP_KC;
        float_pack_x(x, k, B, k0, kc, xp);
        for (int64_t rb = r0; rb < r1; rb += OP_RB) {
            int nr = (int)(r1 - rb < OP_RB ? r1 - rb : OP_RB);
            __mmask16 m0 = (__mmask16)(nr >= 16 ? 0xFFFF : (1u << nr) - 1);
            __mmask16 m1 = (__mmask16)(nr >= 32 ? 0xFFFF : nr > 16 ? (1u << (nr - 16)) - 1 : 0);
            kern_pack_wt(t, W, row_bytes, rb, nr, k0, kc, pk, OP_RB);
            struct float_pf pf;
            float_pf_init(&pf, t, W, row_bytes, k, k0, rb, r0, r1);
            const int64_t per = (pf.total + groups - 1) / groups;
            for (int64_t g = 0; g < groups; g++) {
                const int64_t c = g * OP_CB;
                float_pf_run(&pf, per);
                float_outer(pk, kc, xp + c * kc, y + c * ldy + rb, ldy, m0, m1, k0 > 0,
                            B - c < OP_CB ? (int)(B - c) : OP_CB);
            }
        }
    }
}

void kern__init_avx512(struct kern__ops *o)
{
    o->gemm_float = avx512_gemm_float;
    o->isa = KERN_ISA_AVX512;
    o->quantize_act = avx512_quantize_act;
    kern__init_avx512_gemm(o);
    const int pf = kern__gemv_prefetch(); /* see kern_pf_ahead */
    static const struct {
        enum ggml_type t;
        kern__gemv_fn plain, prefetching;
        enum kern__layout layout;
    } gemvs[] = {
        {GGML_TYPE_Q4_0, gemv_q4_0, gemv_q4_0_pf, KERN_ACT_Q4P},
        {GGML_TYPE_Q4_1, gemv_q4_1, gemv_q4_1_pf, KERN_ACT_Q4P},
        {GGML_TYPE_Q5_0, gemv_q5_0, gemv_q5_0_pf, KERN_ACT_Q4P},
        {GGML_TYPE_Q5_1, gemv_q5_1, gemv_q5_1_pf, KERN_ACT_Q4P},
        {GGML_TYPE_Q8_0, gemv_q8_0, gemv_q8_0_pf, KERN_ACT_PLAIN},
        {GGML_TYPE_Q2_K, gemv_q2_k, gemv_q2_k_pf, KERN_ACT_PLAIN},
        {GGML_TYPE_Q3_K, gemv_q3_k, gemv_q3_k_pf, KERN_ACT_PLAIN},
        {GGML_TYPE_Q4_K, gemv_q4_k, gemv_q4_k_pf, KERN_ACT_K4P},
        {GGML_TYPE_Q5_K, gemv_q5_k, gemv_q5_k_pf, KERN_ACT_K4P},
        {GGML_TYPE_Q6_K, gemv_q6_k, gemv_q6_k_pf, KERN_ACT_PLAIN},
    };
    for (size_t i = 0; i < sizeof(gemvs) / sizeof(gemvs[0]); i++) {
        o->gemv[gemvs[i].t] = pf ? gemvs[i].prefetching : gemvs[i].plain;
        o->gemv_layout[gemvs[i].t] = gemvs[i].layout;
    }
    /*
     * Up to 4 activation rows share each weight unpacking in the GEMVs. In
     * cache, one core (bench_kernels -c -t 1), GOP/s at B = 4, GEMV vs the
     * direct 8-row kernels (panels for Q6_K), which pad 4 rows to 8: Q4_0 161
     * vs 126, Q8_0 125 vs 115, Q4_K 148 vs 106, Q6_K 112 vs 73, Q5_0 137 vs
     * 100. From B = 6 the direct kernels / panels are as fast or faster (Q4_0
     * 186 vs 155).
     */
    static const enum ggml_type multi[] = {GGML_TYPE_Q4_0, GGML_TYPE_Q4_1, GGML_TYPE_Q8_0,
                                           GGML_TYPE_Q5_0, GGML_TYPE_Q5_1, GGML_TYPE_Q3_K,
                                           GGML_TYPE_Q4_K, GGML_TYPE_Q5_K, GGML_TYPE_Q6_K};
    for (size_t i = 0; i < sizeof(multi) / sizeof(multi[0]); i++)
        o->gemv_max_b[multi[i]] = 4;
    /* Q3_K and Q2_K have no direct kernel: their GEMV beats the panels up to B = 12 (Q3_K
     * B = 8: 89 vs 60 GOP/s, B = 16: 86 vs 96-102) */
    o->gemv_max_b[GGML_TYPE_Q3_K] = o->gemv_max_b[GGML_TYPE_Q2_K] = 12;
}

#else

void kern__init_avx512(struct kern__ops *o)
{
    (void)o;
}

#endif
