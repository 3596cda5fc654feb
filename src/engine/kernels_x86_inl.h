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

#endif
