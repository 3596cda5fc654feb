/* ggml_types.c - the table of tensor types (see ggml_types.h). */
#include "engine/ggml_types.h"

#define QK4_0 32
#define QK_K  256

static const struct ggml_type_info types[GGML_TYPE_COUNT] = {
    [GGML_TYPE_F32] = {"f32", 1, 4},
    [GGML_TYPE_F16] = {"f16", 1, 2},
    [GGML_TYPE_Q4_0] = {"q4_0", QK4_0, 2 + QK4_0 / 2},
    [GGML_TYPE_Q4_1] = {"q4_1", QK4_0, 4 + QK4_0 / 2},
    [GGML_TYPE_Q5_0] = {"q5_0", QK4_0, 2 + 4 + QK4_0 / 2},
    [GGML_TYPE_Q5_1] = {"q5_1", QK4_0, 4 + 4 + QK4_0 / 2},
    [GGML_TYPE_Q8_0] = {"q8_0", QK4_0, 2 + QK4_0},
    [GGML_TYPE_Q8_1] = {"q8_1", QK4_0, 4 + QK4_0},
    [GGML_TYPE_Q2_K] = {"q2_K", QK_K, QK_K / 16 + QK_K / 4 + 4},
    [GGML_TYPE_Q3_K] = {"q3_K", QK_K, QK_K / 8 + QK_K / 4 + 12 + 2},
    [GGML_TYPE_Q4_K] = {"q4_K", QK_K, 4 + 12 + QK_K / 2},
    [GGML_TYPE_Q5_K] = {"q5_K", QK_K, 4 + 12 + QK_K / 8 + QK_K / 2},
    [GGML_TYPE_Q6_K] = {"q6_K", QK_K, QK_K / 2 + QK_K / 4 + QK_K / 16 + 2},
    [GGML_TYPE_Q8_K] = {"q8_K", QK_K, 4 + QK_K + QK_K / 16 * 2},
    [GGML_TYPE_I8] = {"i8", 1, 1},
    [GGML_TYPE_I16] = {"i16", 1, 2},
    [GGML_TYPE_I32] = {"i32", 1, 4},
    [GGML_TYPE_I64] = {"i64", 1, 8},
    [GGML_TYPE_F64] = {"f64", 1, 8},
    [GGML_TYPE_BF16] = {"bf16", 1, 2},
};

const struct ggml_type_info *ggml_type_get(uint32_t t)
{
    if (t >= GGML_TYPE_COUNT || types[t].blck_size == 0)
        return 0;
    return &types[t];
}

size_t ggml_row_size(uint32_t t, uint64_t n)
{
    const struct ggml_type_info *ti = ggml_type_get(t);
    if (!ti || n % ti->blck_size)
        return 0;
    return (size_t)(n / ti->blck_size) * ti->type_size;
}
