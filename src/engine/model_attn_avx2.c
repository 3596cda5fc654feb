/*
 * model_attn_avx2.c - AVX2+FMA attention products (see model_attn.h).
 * Scores take 2 queries x 4 keys per step (8 accumulators, 6 loads per 8
 * FMAs) and reduce the 4 dot products of a query with three hadds; the
 * weighted sum keeps 2 queries x 32 output floats in registers while it walks
 * the value rows. hd must be a multiple of 8.
 */
#include "engine/model_attn.h"

#if defined(__x86_64__)
#include <immintrin.h>

/* The four horizontal sums of a, b, c, d as one 128-bit vector. */
static inline __m128 hsum4(__m256 a, __m256 b, __m256 c, __m256 d)
{
    __m256 ab = _mm256_hadd_ps(a, b), cd = _mm256_hadd_ps(c, d);
    __m256 abcd = _mm256_hadd_ps(ab, cd); /* per 128-bit lane: a b c d partial sums */
    return _mm_add_ps(_mm256_castps256_ps128(abcd), _mm256_extractf128_ps(abcd, 1));
}

static inline float hsum1(__m256 a)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    s = _mm_hadd_ps(s, s);
    s = _mm_hadd_ps(s, s);
    return _mm_cvtss_f32(s);
}

void model__attn_scores_avx2(const float *Q, uint32_t nq, const float *K, uint32_t nt, uint32_t hd,
                             float scale, float *S, size_t s_stride)
{
    __m128 vs = _mm_set1_ps(scale);
    uint32_t q = 0;
    for (; q + 2 <= nq; q += 2) {
        const float *q0 = Q + (size_t)q * hd, *q1 = q0 + hd;
        float *s0 = S + (size_t)q * s_stride, *s1 = s0 + s_stride;
        uint32_t t = 0;
        for (; t + 4 <= nt; t += 4) {
            const float *k0 = K + (size_t)t * hd;
            __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
            __m256 b0 = a0, b1 = a0, b2 = a0, b3 = a0;
            for (uint32_t d = 0; d < hd; d += 8) {
                __m256 x0 = _mm256_loadu_ps(q0 + d), x1 = _mm256_loadu_ps(q1 + d);
                __m256 k = _mm256_loadu_ps(k0 + d);
                a0 = _mm256_fmadd_ps(x0, k, a0);
                b0 = _mm256_fmadd_ps(x1, k, b0);
                k = _mm256_loadu_ps(k0 + hd + d);
                a1 = _mm256_fmadd_ps(x0, k, a1);
                b1 = _mm256_fmadd_ps(x1, k, b1);
                k = _mm256_loadu_ps(k0 + 2 * hd + d);
                a2 = _mm256_fmadd_ps(x0, k, a2);
                b2 = _mm256_fmadd_ps(x1, k, b2);
                k = _mm256_loadu_ps(k0 + 3 * hd + d);
                a3 = _mm256_fmadd_ps(x0, k, a3);
                b3 = _mm256_fmadd_ps(x1, k, b3);
            }
            _mm_storeu_ps(s0 + t, _mm_mul_ps(hsum4(a0, a1, a2, a3), vs));
            _mm_storeu_ps(s1 + t, _mm_mul_ps(hsum4(b0, b1, b2, b3), vs));
        }
        for (; t < nt; t++) {
            const float *k = K + (size_t)t * hd;
            __m256 a = _mm256_setzero_ps(), b = a;
            for (uint32_t d = 0; d < hd; d += 8) {
                __m256 kv = _mm256_loadu_ps(k + d);
                a = _mm256_fmadd_ps(_mm256_loadu_ps(q0 + d), kv, a);
                b = _mm256_fmadd_ps(_mm256_loadu_ps(q1 + d), kv, b);
            }
            s0[t] = hsum1(a) * scale;
            s1[t] = hsum1(b) * scale;
        }
    }
    for (; q < nq; q++) {
        const float *q0 = Q + (size_t)q * hd;
        float *s0 = S + (size_t)q * s_stride;
        for (uint32_t t = 0; t < nt; t++) {
            const float *k = K + (size_t)t * hd;
            __m256 a = _mm256_setzero_ps();
            for (uint32_t d = 0; d < hd; d += 8)
                a = _mm256_fmadd_ps(_mm256_loadu_ps(q0 + d), _mm256_loadu_ps(k + d), a);
            s0[t] = hsum1(a) * scale;
        }
    }
}

/* O rows o0, o1 += P V over output columns [d, d + 32): 8 accumulators in registers. */
static inline void av_cols32(const float *p0, const float *p1, const float *V, uint32_t nt,
                             uint32_t hd, float *o0, float *o1, uint32_t d)
{
    __m256 a0 = _mm256_loadu_ps(o0 + d), a1 = _mm256_loadu_ps(o0 + d + 8);
    __m256 a2 = _mm256_loadu_ps(o0 + d + 16), a3 = _mm256_loadu_ps(o0 + d + 24);
    __m256 b0 = _mm256_loadu_ps(o1 + d), b1 = _mm256_loadu_ps(o1 + d + 8);
    __m256 b2 = _mm256_loadu_ps(o1 + d + 16), b3 = _mm256_loadu_ps(o1 + d + 24);
    for (uint32_t t = 0; t < nt; t++) {
        const float *v = V + (size_t)t * hd + d;
        __m256 w0 = _mm256_broadcast_ss(p0 + t), w1 = _mm256_broadcast_ss(p1 + t);
        __m256 x0 = _mm256_loadu_ps(v), x1 = _mm256_loadu_ps(v + 8);
        __m256 x2 = _mm256_loadu_ps(v + 16), x3 = _mm256_loadu_ps(v + 24);
        a0 = _mm256_fmadd_ps(w0, x0, a0);
        a1 = _mm256_fmadd_ps(w0, x1, a1);
        a2 = _mm256_fmadd_ps(w0, x2, a2);
        a3 = _mm256_fmadd_ps(w0, x3, a3);
        b0 = _mm256_fmadd_ps(w1, x0, b0);
        b1 = _mm256_fmadd_ps(w1, x1, b1);
        b2 = _mm256_fmadd_ps(w1, x2, b2);
        b3 = _mm256_fmadd_ps(w1, x3, b3);
    }
    _mm256_storeu_ps(o0 + d, a0);
    _mm256_storeu_ps(o0 + d + 8, a1);
    _mm256_storeu_ps(o0 + d + 16, a2);
    _mm256_storeu_ps(o0 + d + 24, a3);
    _mm256_storeu_ps(o1 + d, b0);
    _mm256_storeu_ps(o1 + d + 8, b1);
    _mm256_storeu_ps(o1 + d + 16, b2);
    _mm256_storeu_ps(o1 + d + 24, b3);
}

/* One row o0 += P V over columns [d, d + 8). */
static inline void av_cols8(const float *p0, const float *V, uint32_t nt, uint32_t hd, float *o0,
                            uint32_t d)
{
    __m256 a = _mm256_loadu_ps(o0 + d);
    for (uint32_t t = 0; t < nt; t++)
        a = _mm256_fmadd_ps(_mm256_broadcast_ss(p0 + t), _mm256_loadu_ps(V + (size_t)t * hd + d),
                            a);
    _mm256_storeu_ps(o0 + d, a);
}

void model__attn_av_avx2(const float *P, size_t p_stride, uint32_t nq, const float *V, uint32_t nt,
                         uint32_t hd, float *O)
{
    uint32_t q = 0;
    for (; q + 2 <= nq; q += 2) {
        const float *p0 = P + (size_t)q * p_stride, *p1 = p0 + p_stride;
        float *o0 = O + (size_t)q * hd, *o1 = o0 + hd;
        uint32_t d = 0;
        for (; d + 32 <= hd; d += 32)
            av_cols32(p0, p1, V, nt, hd, o0, o1, d);
        for (; d < hd; d += 8) {
            av_cols8(p0, V, nt, hd, o0, d);
            av_cols8(p1, V, nt, hd, o1, d);
        }
    }
    if (q < nq)
        for (uint32_t d = 0; d < hd; d += 8)
            av_cols8(P + (size_t)q * p_stride, V, nt, hd, O + (size_t)q * hd, d);
}

#endif /* __x86_64__ */
