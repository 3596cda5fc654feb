/*
 * ggml_types.h - tensor element types, numbered as in the GGUF format.
 *
 * Block layouts are bit-exact to GGUF/ggml so that files from the wild load:
 * a row of n elements of a block type occupies (n / blck_size) * type_size bytes.
 * Not for: kernels (see quant.h and the kernel modules).
 */
#ifndef AISTACK_ENGINE_GGML_TYPES_H
#define AISTACK_ENGINE_GGML_TYPES_H

#include <stddef.h>
#include <stdint.h>

enum ggml_type {
    GGML_TYPE_F32 = 0,
    GGML_TYPE_F16 = 1,
    GGML_TYPE_Q4_0 = 2,
    GGML_TYPE_Q4_1 = 3,
    GGML_TYPE_Q5_0 = 6,
    GGML_TYPE_Q5_1 = 7,
    GGML_TYPE_Q8_0 = 8,
    GGML_TYPE_Q8_1 = 9,
    GGML_TYPE_Q2_K = 10,
    GGML_TYPE_Q3_K = 11,
    GGML_TYPE_Q4_K = 12,
    GGML_TYPE_Q5_K = 13,
    GGML_TYPE_Q6_K = 14,
    GGML_TYPE_Q8_K = 15,
    GGML_TYPE_I8 = 24,
    GGML_TYPE_I16 = 25,
    GGML_TYPE_I32 = 26,
    GGML_TYPE_I64 = 27,
    GGML_TYPE_F64 = 28,
    GGML_TYPE_BF16 = 30,
    GGML_TYPE_COUNT = 40, /* upper bound for tables indexed by type */
};

/* Static facts about a type. blck_size 0 means "unknown/unsupported type". */
struct ggml_type_info {
    const char *name;   /* "f32", "q4_K", ... as ggml names them */
    uint32_t blck_size; /* elements per block */
    uint32_t type_size; /* bytes per block */
};

/* Info for t, or NULL if t is not a known type. */
const struct ggml_type_info *ggml_type_get(uint32_t t);
/* Bytes of a row of n elements; 0 if t is unknown or n is not a multiple of the block size. */
size_t ggml_row_size(uint32_t t, uint64_t n);

#endif
