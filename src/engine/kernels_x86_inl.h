/*
 * kernels_x86_inl.h - block-unpacking helpers shared by the AVX2 and AVX-512
 * kernel files (both are compiled with at least AVX2 + FMA + F16C).
 *
 * Only for files compiled with those flags (names ending in _avx2.c or
 * _avx512.c, and headers only they include).
 */
#ifndef AISTACK_ENGINE_KERNELS_X86_INL_H
#define AISTACK_ENGINE_KERNELS_X86_INL_H

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "engine/fp16.h"
#include "engine/ggml_types.h"
#include "engine/kernels_impl.h"
#include "engine/quant_blocks.h"

/* Sum of the 8 lanes of v. */
static inline float kern_hsum8(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* Element i of a row of float weights (F32, F16 or BF16), as a float. */
static inline float kern_load_w1(enum ggml_type t, const void *row, int64_t i)
{
    if (t == GGML_TYPE_F16)
        return _cvtsh_ss(((const uint16_t *)row)[i]);
    if (t == GGML_TYPE_BF16)
        return bf16_to_fp32(((const uint16_t *)row)[i]);
    return ((const float *)row)[i];
}

/* v[i] = row i of an 8 x 8 block becomes v[j] = column j. */
static inline void kern_transpose8(__m256 v[8])
{
    __m256 u[8];
    KERN_UNROLL(4)
    for (int i = 0; i < 8; i += 2) {
        u[i] = _mm256_unpacklo_ps(v[i], v[i + 1]);
        u[i + 1] = _mm256_unpackhi_ps(v[i], v[i + 1]);
    }
    /* per 128-bit lane: v[4m + p] holds rows 4m..4m+3 of column c(p) (low) and 4 + c(p) (high) */
    KERN_UNROLL(2)
    for (int i = 0; i < 8; i += 4) {
        KERN_UNROLL(2)
        for (int q = 0; q < 2; q++) {
            v[i + q] = _mm256_shuffle_ps(u[i + q], u[i + 2 + q], _MM_SHUFFLE(1, 0, 1, 0));
            v[i + 2 + q] = _mm256_shuffle_ps(u[i + q], u[i + 2 + q], _MM_SHUFFLE(3, 2, 3, 2));
        }
    }
    static const int c_of[4] = {0, 2, 1, 3}; /* p for column c */
    KERN_UNROLL(4)
    for (int c = 0; c < 4; c++) {
        u[c] = _mm256_permute2f128_ps(v[c_of[c]], v[4 + c_of[c]], 0x20);
        u[4 + c] = _mm256_permute2f128_ps(v[c_of[c]], v[4 + c_of[c]], 0x31);
    }
    KERN_UNROLL(8)
    for (int c = 0; c < 8; c++)
        v[c] = u[c];
}

/* Eight weights of a row from element i, as floats. */
static inline __m256 kern_load_w8(enum ggml_type t, const char *row, int64_t i)
{
    if (t == GGML_TYPE_F16)
        return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)row + i)));
    if (t == GGML_TYPE_BF16)
        return _mm256_castsi256_ps(_mm256_slli_epi32(
            _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)((const uint16_t *)row + i))),
            16));
    return _mm256_loadu_ps((const float *)row + i);
}

/*
 * Rows [r, r + nr) of float weights W (F32/F16/BF16), k in [k0, k0 + kc),
 * converted to float and stored k-major, R (a multiple of 8, at most 32) rows
 * per k: wt[kk * R + i], rows past nr zero. 8 x 8 pieces transposed in
 * registers. For the outer-product float products of both x86 levels.
 */
static inline __attribute__((always_inline)) void kern_pack_wt(enum ggml_type t, const void *W,
                                                               size_t row_bytes, int64_t r, int nr,
                                                               int64_t k0, int kc, float *wt,
                                                               const int R)
{
    const char *rows[32];
    for (int i = 0; i < R; i++)
        rows[i] = (const char *)W + (size_t)(r + (i < nr ? i : 0)) * row_bytes;
    int kk = 0;
    for (; kk + 8 <= kc; kk += 8) {
        KERN_UNROLL(4)
        for (int h = 0; h < R / 8; h++) {
            __m256 v[8];
            KERN_UNROLL(8)
            for (int i = 0; i < 8; i++)
                v[i] = 8 * h + i < nr ? kern_load_w8(t, rows[8 * h + i], k0 + kk)
                                      : _mm256_setzero_ps();
            kern_transpose8(v);
            KERN_UNROLL(8)
            for (int q = 0; q < 8; q++)
                _mm256_storeu_ps(wt + (kk + q) * R + 8 * h, v[q]);
        }
    }
    for (; kk < kc; kk++)
        for (int i = 0; i < R; i++)
            wt[kk * R + i] = i < nr ? kern_load_w1(t, rows[i], k0 + kk) : 0.0f;
}

/*
 * The lines of a block of n bytes at p, KERN_PF_AHEAD bytes ahead, into L2:
 * the GEMVs over GGUF blocks on Intel CPUs, whose hardware prefetchers stay
 * too close for loops with this much work per line (measurements in the
 * note before act_rows in kernels_avx512.c).
 */
#define KERN_PF_AHEAD 4096
static inline __attribute__((always_inline)) void kern_pf_ahead(const void *p, int n)
{
    KERN_UNROLL(4)
    for (int l = 0; l < n; l += 64)
        _mm_prefetch((const char *)p + KERN_PF_AHEAD + l, _MM_HINT_T1);
}

/* Sums of the two 16-byte halves of 32 unsigned bytes. */
static inline void sum_u8_16x2(__m256i u, int32_t *s0, int32_t *s1)
{
    __m256i s = _mm256_sad_epu8(u, _mm256_setzero_si256());
    __m128i lo = _mm256_castsi256_si128(s), hi = _mm256_extracti128_si256(s, 1);
    *s0 = _mm_cvtsi128_si32(_mm_add_epi64(lo, _mm_unpackhi_epi64(lo, lo)));
    *s1 = _mm_cvtsi128_si32(_mm_add_epi64(hi, _mm_unpackhi_epi64(hi, hi)));
}

/*
 * The 8 6-bit scales (bytes 0..7) and 8 mins (bytes 8..15) of a Q4_K/Q5_K
 * super-block from its 12 scale bytes in the low bytes of v. With u0..u2 the
 * three little-endian words of the 12 bytes, the unpacked 16 bytes are
 *   u0 & 0x3f.., u2 & 0x0f.. | ((u0 >> 6) & 0x03..) << 4,
 *   u1 & 0x3f.., (u2 >> 4) & 0x0f.. | ((u1 >> 6) & 0x03..) << 4
 * computed in one vector (no scalar stores feeding a vector load).
 */
static inline __m128i kern_k4_scales_u8(__m128i v)
{
    __m128i lo = _mm_shuffle_epi32(v, _MM_SHUFFLE(2, 1, 2, 0)); /* u0 u2 u1 u2 */
    __m128i hi = _mm_shuffle_epi32(v, _MM_SHUFFLE(1, 1, 0, 0)); /* -- u0 -- u1 */
    lo = _mm_and_si128(_mm_srlv_epi32(lo, _mm_setr_epi32(0, 0, 0, 4)),
                       _mm_setr_epi32(0x3f3f3f3f, 0x0f0f0f0f, 0x3f3f3f3f, 0x0f0f0f0f));
    hi = _mm_slli_epi32(_mm_and_si128(_mm_srli_epi32(hi, 6), _mm_set1_epi32(0x03030303)), 4);
    hi = _mm_and_si128(hi, _mm_setr_epi32(0, -1, 0, -1));
    return _mm_or_si128(lo, hi);
}

/*
 * The 6-bit quants (0..63, offset 32 not removed) of one half (128 elements)
 * of a Q6_K super-block: l0, l1 = ql[0..31], ql[32..63], h = qh[0..31] of the
 * half; u[m] = elements 32m..32m+31.
 */
static inline void kern_q6k_unpack(__m256i l0, __m256i l1, __m256i h, __m256i u[4])
{
    const __m256i m4 = _mm256_set1_epi8(0x0F), m30 = _mm256_set1_epi8(0x30);
    u[0] =
        _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_and_si256(_mm256_slli_epi16(h, 4), m30));
    u[1] =
        _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_and_si256(_mm256_slli_epi16(h, 2), m30));
    u[2] =
        _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), _mm256_and_si256(h, m30));
    u[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                           _mm256_and_si256(_mm256_srli_epi16(h, 2), m30));
}

/*
 * One Q2_K super-block in the packed-row form (kernels_impl.h, 16-element
 * blocks): q[256] (0..3), s[16] = d * scale, m[16] = -dmin * min, qs128[16].
 */
static inline void kern_unpack_q2k(const block_q2_K *x, int8_t *q, float *s, float *m,
                                   int32_t *qs128)
{
    const __m256i m3 = _mm256_set1_epi8(3);
    const float d = _cvtsh_ss(x->d), dmin = _cvtsh_ss(x->dmin);
    const __m128i sc8 = _mm_loadu_si128((const __m128i *)x->scales);
    for (int h = 0; h < 2; h++) {
        const __m256i sc = _mm256_cvtepu8_epi32(h ? _mm_srli_si128(sc8, 8) : sc8);
        _mm256_storeu_ps(s + 8 * h, _mm256_mul_ps(_mm256_cvtepi32_ps(
                                                      _mm256_and_si256(sc, _mm256_set1_epi32(0xF))),
                                                  _mm256_set1_ps(d)));
        _mm256_storeu_ps(m + 8 * h, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(sc, 4)),
                                                  _mm256_set1_ps(-dmin)));
    }
    /* element 128n + 32j + l is bits 2j of qs[32n + l] */
    for (int n = 0; n < 2; n++) {
        __m256i v = _mm256_loadu_si256((const __m256i *)(x->qs + 32 * n));
        for (int j = 0; j < 4; j++, q += 32) {
            __m256i u = _mm256_and_si256(_mm256_srli_epi16(v, 2 * j), m3);
            _mm256_storeu_si256((__m256i *)q, u);
            int32_t s0, s1;
            sum_u8_16x2(u, &s0, &s1);
            *qs128++ = 128 * s0;
            *qs128++ = 128 * s1;
        }
    }
}

/* Q3_K's 16 6-bit scales (0..63, stored + 32) from its 12 bytes, per 16 elements. */
static inline void kern_q3k_scales(const uint8_t s12[12], int8_t sc[16])
{
    const uint32_t km1 = 0x03030303, km2 = 0x0f0f0f0f;
    uint32_t aux[4];
    memcpy(aux, s12, 12);
    uint32_t tmp = aux[2];
    aux[2] = ((aux[0] >> 4) & km2) | (((tmp >> 4) & km1) << 4);
    aux[3] = ((aux[1] >> 4) & km2) | (((tmp >> 6) & km1) << 4);
    aux[0] = (aux[0] & km2) | (((tmp >> 0) & km1) << 4);
    aux[1] = (aux[1] & km2) | (((tmp >> 2) & km1) << 4);
    memcpy(sc, aux, 16);
}

/* One Q3_K super-block in the packed-row form: q[256] (-4..3), s[16] = d * (scale - 32), m = 0. */
static inline void kern_unpack_q3k(const block_q3_K *x, int8_t *q, float *s, float *m,
                                   int32_t *qs128)
{
    const __m256i m3 = _mm256_set1_epi8(3), c4 = _mm256_set1_epi8(4);
    int8_t sc[16];
    kern_q3k_scales(x->scales, sc);
    float d = _cvtsh_ss(x->d);
    for (int j = 0; j < 16; j++) {
        s[j] = d * (float)(sc[j] - 32);
        m[j] = 0.0f;
    }
    /* element 128n + 32j + l: bits 2j of qs[32n + l], minus 4 unless hmask bit 4n + j */
    __m256i h = _mm256_loadu_si256((const __m256i *)x->hmask);
    for (int n = 0; n < 2; n++) {
        __m256i v = _mm256_loadu_si256((const __m256i *)(x->qs + 32 * n));
        for (int j = 0; j < 4; j++, q += 32) {
            __m256i bit = _mm256_set1_epi8((char)(1 << (4 * n + j)));
            __m256i hs = _mm256_cmpeq_epi8(_mm256_and_si256(h, bit), bit);
            /* u = q + 4 in 0..7 */
            __m256i u = _mm256_add_epi8(_mm256_and_si256(_mm256_srli_epi16(v, 2 * j), m3),
                                        _mm256_and_si256(hs, c4));
            _mm256_storeu_si256((__m256i *)q, _mm256_sub_epi8(u, c4));
            int32_t s0, s1;
            sum_u8_16x2(u, &s0, &s1);
            *qs128++ = 128 * (s0 - 4 * 16);
            *qs128++ = 128 * (s1 - 4 * 16);
        }
    }
}

#endif
