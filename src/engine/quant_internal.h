/*
 * quant_internal.h - per-type reference functions shared by quant.c (float
 * and 32-element block types, dispatch) and quant_k.c (256-element K types).
 * Not for use outside those files: go through quant.h's traits.
 */
#ifndef AISTACK_ENGINE_QUANT_INTERNAL_H
#define AISTACK_ENGINE_QUANT_INTERNAL_H

#include <stdint.h>

#include "engine/fp16.h"

/* Round to nearest, ties to even, for |x| < 2^22: adding 1.5 * 2^23 leaves the
 * rounded integer in the low mantissa bits. Inline so scale searches vectorize. */
static inline int quant__nearest_int(float x)
{
    return (int)(fp32_bits(x + 12582912.f) & 0x007fffff) - 0x00400000;
}

#define QUANT__DECL(t)                                                                             \
    void quant__dequant_##t(const void *src, float *dst, int64_t n);                               \
    void quant__quant_##t(const float *src, void *dst, int64_t n);

QUANT__DECL(q2_K)
QUANT__DECL(q3_K)
QUANT__DECL(q4_K)
QUANT__DECL(q5_K)
QUANT__DECL(q6_K)
QUANT__DECL(q8_K)

float quant__dot_q2_K(int64_t n, const void *w, const void *x);
float quant__dot_q3_K(int64_t n, const void *w, const void *x);
float quant__dot_q4_K(int64_t n, const void *w, const void *x);
float quant__dot_q5_K(int64_t n, const void *w, const void *x);
float quant__dot_q6_K(int64_t n, const void *w, const void *x);

#endif
