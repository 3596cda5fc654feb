/*
 * quant.h - reference (scalar) quantization, dequantization and dot products
 * for every GGUF tensor type the engine runs.
 *
 * Layouts are those of quant_blocks.h, bit-exact to ggml, and the quantizers
 * follow ggml's reference algorithms (make_qkx2_quants-style scale/min search
 * for Q2_K/Q4_K/Q5_K, make_qx_quants/make_q3_quants-style for Q6_K/Q3_K), so
 * files we write load in llama.cpp and vice versa. These functions are the
 * correctness reference the SIMD kernels are tested against; they favour
 * clarity over speed. All are pure and thread-safe. Not for: hot loops (see
 * the kernel modules).
 */
#ifndef AISTACK_ENGINE_QUANT_H
#define AISTACK_ENGINE_QUANT_H

#include <stddef.h>
#include <stdint.h>

#include "engine/ggml_types.h"
#include "engine/quant_blocks.h"

/* Dequantizes n elements (a multiple of the block size) of src into dst. */
typedef void (*quant_to_float_fn)(const void *src, float *dst, int64_t n);
/* Quantizes n elements (a multiple of the block size) of src into dst. */
typedef void (*quant_from_float_fn)(const float *src, void *dst, int64_t n);
/*
 * Dot product of n elements: w is a row of the weight type, x a row of the
 * activation type quant_vec_dot_type() names for it.
 */
typedef float (*quant_vec_dot_fn)(int64_t n, const void *w, const void *x);

/* What the reference implementation offers for one type. */
struct quant_traits {
    quant_to_float_fn to_float;     /* NULL if the type cannot be dequantized */
    quant_from_float_fn from_float; /* NULL if the type cannot be produced */
    quant_vec_dot_fn vec_dot;       /* NULL if the type is not a weight type */
    uint32_t vec_dot_type;          /* activation type for vec_dot */
};

/* Traits of type, or NULL when the type has no reference implementation. */
const struct quant_traits *quant_get_traits(uint32_t type);

/*
 * Activation type that weights of type are multiplied with:
 *   Q4_0, Q5_0, Q8_0 -> Q8_0;  Q4_1, Q5_1 -> Q8_1;
 *   Q2_K, Q3_K, Q4_K, Q5_K, Q6_K -> Q8_K;  F32, F16, BF16 -> F32.
 * Returns GGML_TYPE_COUNT for types that are not weight types.
 */
uint32_t quant_vec_dot_type(uint32_t type);

/*
 * Checked wrappers over the traits: 0, AS_EUNSUP for a type without that
 * operation, AS_EINVAL if n is negative or not a multiple of the block size.
 * Supported: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1, Q2_K, Q3_K,
 * Q4_K, Q5_K, Q6_K, Q8_K.
 */
int quant_dequantize_row(uint32_t type, const void *src, float *dst, int64_t n);
int quant_quantize_row(uint32_t type, const float *src, void *dst, int64_t n);
/* *out = w_row . x_row where x_row is of type quant_vec_dot_type(type). */
int quant_vec_dot(uint32_t type, int64_t n, const void *w_row, const void *x_row, float *out);

/* Round to nearest, ties to even, as ggml's nearest_int (valid for |x| < 2^22). */
int quant_nearest_int(float x);

#endif
