/*
 * quant_blocks.h - the GGUF quantized block layouts, bit-exact.
 *
 * Shared by the reference (de)quantizers (quant.c) and the SIMD kernels.
 * Sizes are checked at compile time against ggml_types.c's table.
 */
#ifndef AISTACK_ENGINE_QUANT_BLOCKS_H
#define AISTACK_ENGINE_QUANT_BLOCKS_H

#include <assert.h>
#include <stdint.h>

#include "engine/fp16.h"

#define QK4_0        32
#define QK4_1        32
#define QK5_0        32
#define QK5_1        32
#define QK8_0        32
#define QK8_1        32
#define QK_K         256
#define K_SCALE_SIZE 12

typedef struct {
    ggml_fp16_t d;         /* scale */
    uint8_t qs[QK4_0 / 2]; /* nibbles: low nibble = element j, high = element j + 16 */
} block_q4_0;

typedef struct {
    ggml_fp16_t d, m; /* scale, min */
    uint8_t qs[QK4_1 / 2];
} block_q4_1;

typedef struct {
    ggml_fp16_t d;
    uint8_t qh[4]; /* 5th bit of each of the 32 elements */
    uint8_t qs[QK5_0 / 2];
} block_q5_0;

typedef struct {
    ggml_fp16_t d, m;
    uint8_t qh[4];
    uint8_t qs[QK5_1 / 2];
} block_q5_1;

typedef struct {
    ggml_fp16_t d;
    int8_t qs[QK8_0];
} block_q8_0;

typedef struct {
    ggml_fp16_t d, s; /* scale, d * sum(qs) */
    int8_t qs[QK8_1];
} block_q8_1;

typedef struct {
    uint8_t scales[QK_K / 16]; /* 4-bit scale | 4-bit min per 16 elements */
    uint8_t qs[QK_K / 4];      /* 2-bit quants */
    ggml_fp16_t d, dmin;
} block_q2_K;

typedef struct {
    uint8_t hmask[QK_K / 8]; /* high bit */
    uint8_t qs[QK_K / 4];    /* low 2 bits */
    uint8_t scales[12];      /* 16 6-bit scales */
    ggml_fp16_t d;
} block_q3_K;

typedef struct {
    ggml_fp16_t d, dmin;
    uint8_t scales[K_SCALE_SIZE]; /* 8 6-bit scales and 8 6-bit mins, packed */
    uint8_t qs[QK_K / 2];
} block_q4_K;

typedef struct {
    ggml_fp16_t d, dmin;
    uint8_t scales[K_SCALE_SIZE];
    uint8_t qh[QK_K / 8];
    uint8_t qs[QK_K / 2];
} block_q5_K;

typedef struct {
    uint8_t ql[QK_K / 2];     /* low 4 bits */
    uint8_t qh[QK_K / 4];     /* high 2 bits */
    int8_t scales[QK_K / 16]; /* 8-bit scales */
    ggml_fp16_t d;
} block_q6_K;

typedef struct {
    float d;
    int8_t qs[QK_K];
    int16_t bsums[QK_K / 16]; /* sums of groups of 16 quants */
} block_q8_K;

static_assert(sizeof(block_q4_0) == 18, "q4_0 layout");
static_assert(sizeof(block_q4_1) == 20, "q4_1 layout");
static_assert(sizeof(block_q5_0) == 22, "q5_0 layout");
static_assert(sizeof(block_q5_1) == 24, "q5_1 layout");
static_assert(sizeof(block_q8_0) == 34, "q8_0 layout");
static_assert(sizeof(block_q8_1) == 36, "q8_1 layout");
static_assert(sizeof(block_q2_K) == 84, "q2_K layout");
static_assert(sizeof(block_q3_K) == 110, "q3_K layout");
static_assert(sizeof(block_q4_K) == 144, "q4_K layout");
static_assert(sizeof(block_q5_K) == 176, "q5_K layout");
static_assert(sizeof(block_q6_K) == 210, "q6_K layout");
static_assert(sizeof(block_q8_K) == 292, "q8_K layout");

#endif
