/*
 * fp16.h - IEEE half and bfloat16 conversions (scalar, inline).
 * Vector code uses F16C / AVX-512 BF16 instructions directly; these are the
 * portable reference that those must agree with.
 */
#ifndef AISTACK_ENGINE_FP16_H
#define AISTACK_ENGINE_FP16_H

#include <stdint.h>
#include <string.h>

typedef uint16_t ggml_fp16_t;
typedef uint16_t ggml_bf16_t;

static inline uint32_t fp32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static inline float fp32_from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static inline float fp16_to_fp32(ggml_fp16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t man = h & 0x3ff;
    if (exp == 0x1f) /* inf / nan */
        return fp32_from_bits(sign | 0x7f800000u | (man << 13));
    if (exp == 0) {
        if (man == 0)
            return fp32_from_bits(sign);
        /* subnormal: value = man * 2^-24 */
        float v = (float)man * 5.9604644775390625e-8f;
        return sign ? -v : v;
    }
    return fp32_from_bits(sign | ((exp + 112) << 23) | (man << 13));
}

/* Round to nearest even, as F16C's vcvtps2ph with rounding mode 0. */
static inline ggml_fp16_t fp32_to_fp16(float f)
{
    uint32_t x = fp32_bits(f);
    uint32_t sign = (x >> 16) & 0x8000;
    uint32_t ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u) /* inf or nan */
        return (ggml_fp16_t)(sign | 0x7c00 | (ax > 0x7f800000u ? 0x200 : 0));
    if (ax >= 0x477ff000u) /* rounds to >= 65520: overflow to inf */
        return (ggml_fp16_t)(sign | 0x7c00);
    if (ax < 0x38800000u) { /* below the smallest normal half: subnormal or zero */
        float v = fp32_from_bits(ax) * 16777216.0f; /* * 2^24, exact */
        /* round half to even in integer domain */
        uint32_t i = (uint32_t)v;
        float frac = v - (float)i;
        if (frac > 0.5f || (frac == 0.5f && (i & 1)))
            i++;
        return (ggml_fp16_t)(sign | i);
    }
    uint32_t mant_odd = (ax >> 13) & 1;
    ax += 0xfffu + mant_odd; /* round to nearest even at bit 13 */
    return (ggml_fp16_t)(sign | ((ax - 0x38000000u) >> 13));
}

static inline float bf16_to_fp32(ggml_bf16_t h)
{
    return fp32_from_bits((uint32_t)h << 16);
}

/* Round to nearest even; NaN stays NaN (quiet). */
static inline ggml_bf16_t fp32_to_bf16(float f)
{
    uint32_t x = fp32_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u)
        return (ggml_bf16_t)((x >> 16) | 64);
    return (ggml_bf16_t)((x + (0x7fffu + ((x >> 16) & 1))) >> 16);
}

#endif
