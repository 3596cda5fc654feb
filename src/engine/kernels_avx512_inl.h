/*
 * kernels_avx512_inl.h - small inline helpers shared by the AVX-512 kernel
 * files (kernels_avx512.c, kernels_gemm_avx512.c).
 *
 * Only for files compiled with the AVX-512 flags (names ending in _avx512.c).
 */
#ifndef AISTACK_ENGINE_KERNELS_AVX512_INL_H
#define AISTACK_ENGINE_KERNELS_AVX512_INL_H

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "engine/kernels_impl.h"
#include "engine/kernels_x86_inl.h"
#include "engine/quant_blocks.h"

/*
 * Software prefetch of the line holding p into every cache level. Inline asm,
 * not _mm_prefetch: gcc 12's dead code elimination (-O2, tree-dce) silently
 * dropped the _MM_HINT_T0 prefetches of these kernels' loops, so the binary
 * had none (found by reading the disassembly; -fno-tree-dce brought them back).
 * An asm operand is no access for the compiler or the sanitizers.
 */
static inline __attribute__((always_inline)) void pf_t0(const void *p)
{
    __asm__ volatile("prefetcht0 %0" : : "m"(*(const char *)p));
}

/*
 * One Q6_K super-block's 256 quants as unsigned u = q + 32 (0..63), in natural
 * order in w[0..3] (64 each): a 64-byte load of ql gives 64 elements in its
 * low nibbles and the next 64 in its high ones; the 2-bit highs come from qh
 * with per-half variable shifts (bits shifted in from a neighbouring byte are
 * masked off). Used by the GEMV and by the direct kernels' L1 unpacking.
 */
static inline __attribute__((always_inline)) void q6_k_quants(const block_q6_K *x, __m512i w[4])
{
    const __m512i m4 = _mm512_set1_epi8(0x0F), m30 = _mm512_set1_epi8(0x30);
    const __m512i shl_lo = _mm512_setr_epi64(4, 4, 4, 4, 2, 2, 2, 2);
    const __m512i shr_hi = _mm512_setr_epi64(0, 0, 0, 0, 2, 2, 2, 2);
    KERN_UNROLL(2)
    for (int n = 0; n < 2; n++) {
        __m512i l = _mm512_loadu_si512(x->ql + 64 * n);
        __m512i h = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(x->qh + 32 * n)));
        w[2 * n] = _mm512_or_si512(_mm512_and_si512(l, m4),
                                   _mm512_and_si512(_mm512_sllv_epi64(h, shl_lo), m30));
        w[2 * n + 1] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(l, 4), m4),
                                       _mm512_and_si512(_mm512_srlv_epi64(h, shr_hi), m30));
    }
}

/* fp16 -> float with F16C (exact, like fp16.h's reference). */
static inline float h2f(ggml_fp16_t h)
{
    return _cvtsh_ss(h);
}

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

/* Sum of 32 unsigned bytes. */
static inline int32_t sum_u8_32(__m256i u)
{
    __m256i s = _mm256_sad_epu8(u, _mm256_setzero_si256());
    __m128i t = _mm_add_epi64(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    t = _mm_add_epi64(t, _mm_unpackhi_epi64(t, t));
    return _mm_cvtsi128_si32(t);
}

/*
 * The 8 6-bit scales (lanes 0..7) and mins (lanes 8..15) of a Q4_K/Q5_K
 * super-block, as floats. sc12 must have 16 readable bytes.
 */
static inline __m512 k4_scales_mins(const uint8_t *sc12)
{
    const __m128i u = kern_k4_scales_u8(_mm_loadu_si128((const __m128i *)sc12));
    return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(u));
}

/*
 * Stores a register tile's results: out[gg][i][c] is weight row r + i (i < nr)
 * for batch row (g + gg) * 8 + c, for ng groups of 8 (rows past B skipped).
 */
static inline void store_tile8(float out[2][8][8], int ng, int nr, int64_t g, int64_t B, float *y,
                               int64_t ldy, int64_t r)
{
    for (int gg = 0; gg < ng; gg++) {
        int64_t base = (g + gg) * KERN_IL;
        int here = (int)(B - base < KERN_IL ? B - base : KERN_IL);
        if (nr == 8) {
            /* a full tile: transpose 8 x 8 in registers, one 8-float store per batch row */
            __m256 v[8], t[8];
            for (int i = 0; i < 8; i++)
                v[i] = _mm256_loadu_ps(out[gg][i]);
            for (int i = 0; i < 8; i += 2) {
                t[i] = _mm256_unpacklo_ps(v[i], v[i + 1]);
                t[i + 1] = _mm256_unpackhi_ps(v[i], v[i + 1]);
            }
            for (int i = 0; i < 8; i += 4)
                for (int h = 0; h < 2; h++) {
                    v[i + 2 * h] = _mm256_shuffle_ps(t[i + h], t[i + 2 + h], 0x44);
                    v[i + 2 * h + 1] = _mm256_shuffle_ps(t[i + h], t[i + 2 + h], 0xEE);
                }
            /* v[i + c], c < 4: column c of rows i..i+3 | column c + 4 of the same rows */
            for (int c = 0; c < 4; c++) {
                t[c] = _mm256_permute2f128_ps(v[c], v[4 + c], 0x20);
                t[4 + c] = _mm256_permute2f128_ps(v[c], v[4 + c], 0x31);
            }
            for (int c = 0; c < here; c++)
                _mm256_storeu_ps(y + (base + c) * ldy + r, t[c]);
            continue;
        }
        for (int i = 0; i < nr; i++)
            for (int c = 0; c < here; c++)
                y[(base + c) * ldy + r + i] = out[gg][i][c];
    }
}

#endif
