/*
 * test_quant_mix.c - file types and per-tensor type rules (llama.cpp's
 * mixtures), and threaded row conversion.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/err.h"
#include "engine/ggml_types.h"
#include "engine/quant.h"
#include "engine/quant_mix.h"

static uint32_t type_of(const struct quant_mix *m, const char *name, uint64_t ne0, uint64_t ne1)
{
    uint64_t ne[2] = {ne0, ne1};
    return quant_mix_tensor_type(m, name, GGML_TYPE_F32, ne1 > 1 ? 2 : 1, ne);
}

static void test_ftypes(void **state)
{
    (void)state;
    const struct quant_ftype *ft = quant_ftype_find("Q4_K_M");
    assert_non_null(ft);
    assert_int_equal(ft->llama_ftype, 15);
    assert_int_equal(ft->base_type, GGML_TYPE_Q4_K);
    assert_int_equal(quant_ftype_find("q5_k_m")->llama_ftype, 17);
    assert_int_equal(quant_ftype_find("q8_0")->llama_ftype, 7);
    assert_int_equal(quant_ftype_find("q4_0")->llama_ftype, 2);
    assert_int_equal(quant_ftype_find("q6_k")->llama_ftype, 18);
    assert_int_equal(quant_ftype_find("f16")->llama_ftype, 1);
    assert_int_equal(quant_ftype_find("bf16")->llama_ftype, 32);
    assert_int_equal(quant_ftype_find("f32")->llama_ftype, 0);
    assert_null(quant_ftype_find("q3_q"));
    assert_null(quant_ftype_find(NULL));
}

/* 22 layers (TinyLlama): the use_more_bits layers are 0,1,2, 19,20,21 and 2+3k+... */
static void test_q4_k_m_rules(void **state)
{
    (void)state;
    struct quant_mix m = {quant_ftype_find("q4_k_m"), 22, 22, 1};
    int n_q6 = 0;
    for (int l = 0; l < 22; l++) {
        char name[64];
        snprintf(name, sizeof name, "blk.%d.attn_v.weight", l);
        uint32_t t = type_of(&m, name, 2048, 256);
        /* n/8 = 2, 7n/8 = 19: layers < 2, >= 19, and (l - 2) % 3 == 2 */
        int more = l < 2 || l >= 19 || (l - 2) % 3 == 2;
        assert_int_equal(t, more ? GGML_TYPE_Q6_K : GGML_TYPE_Q4_K);
        n_q6 += more;
        snprintf(name, sizeof name, "blk.%d.ffn_down.weight", l);
        assert_int_equal(type_of(&m, name, 5632, 2048), more ? GGML_TYPE_Q6_K : GGML_TYPE_Q4_K);
        snprintf(name, sizeof name, "blk.%d.attn_q.weight", l);
        assert_int_equal(type_of(&m, name, 2048, 2048), GGML_TYPE_Q4_K);
        snprintf(name, sizeof name, "blk.%d.ffn_norm.weight", l);
        assert_int_equal(type_of(&m, name, 2048, 1), GGML_TYPE_F32);
    }
    assert_int_equal(n_q6, 10); /* about half: 0, 1, 4, 7, 10, 13, 16, 19, 20, 21 */
    assert_int_equal(type_of(&m, "output.weight", 2048, 32000), GGML_TYPE_Q6_K);
    assert_int_equal(type_of(&m, "token_embd.weight", 2048, 32000), GGML_TYPE_Q4_K);
    assert_int_equal(type_of(&m, "output_norm.weight", 2048, 1), GGML_TYPE_F32);
    assert_int_equal(type_of(&m, "rope_freqs.weight", 32, 1), GGML_TYPE_F32);
    /* tied: the embedding is the output */
    m.has_output = 0;
    assert_int_equal(type_of(&m, "token_embd.weight", 2048, 128256), GGML_TYPE_Q6_K);
    /* rows not a multiple of 256 (qwen2.5-0.5b, dim 896) fall back */
    assert_int_equal(type_of(&m, "token_embd.weight", 896, 151936), GGML_TYPE_Q8_0);
    assert_int_equal(type_of(&m, "blk.5.attn_q.weight", 896, 896), GGML_TYPE_Q5_0);
    assert_int_equal(type_of(&m, "blk.0.attn_v.weight", 896, 128), GGML_TYPE_Q8_0);
    assert_int_equal(type_of(&m, "blk.0.ffn_down.weight", 4864, 896), GGML_TYPE_Q6_K);
    /* biases stay */
    assert_int_equal(type_of(&m, "blk.0.attn_q.bias", 896, 1), GGML_TYPE_F32);
}

static void test_other_rules(void **state)
{
    (void)state;
    struct quant_mix m = {quant_ftype_find("q4_0"), 16, 16, 1};
    assert_int_equal(type_of(&m, "blk.0.attn_v.weight", 2048, 512), GGML_TYPE_Q4_0);
    assert_int_equal(type_of(&m, "output.weight", 2048, 1000), GGML_TYPE_Q6_K);
    assert_int_equal(type_of(&m, "token_embd.weight", 2048, 1000), GGML_TYPE_Q4_0);
    assert_int_equal(type_of(&m, "blk.0.attn_q.weight", 48, 48), GGML_TYPE_F16); /* 48 % 32 */
    m.ft = quant_ftype_find("q8_0");
    assert_int_equal(type_of(&m, "output.weight", 2048, 1000), GGML_TYPE_Q8_0);
    m.ft = quant_ftype_find("f16");
    assert_int_equal(type_of(&m, "output.weight", 2048, 1000), GGML_TYPE_F16);
    assert_int_equal(type_of(&m, "blk.0.attn_norm.weight", 2048, 1), GGML_TYPE_F32);
    m.ft = quant_ftype_find("q5_k_m");
    assert_int_equal(type_of(&m, "blk.0.attn_v.weight", 2048, 512), GGML_TYPE_Q6_K);
    assert_int_equal(type_of(&m, "blk.3.attn_v.weight", 2048, 512), GGML_TYPE_Q5_K);
    assert_int_equal(type_of(&m, "blk.3.ffn_up.weight", 1248, 512), GGML_TYPE_Q5_1);
    m.ft = quant_ftype_find("q4_k_s");
    assert_int_equal(type_of(&m, "blk.3.attn_v.weight", 2048, 512), GGML_TYPE_Q5_K);
    assert_int_equal(type_of(&m, "blk.4.attn_v.weight", 2048, 512), GGML_TYPE_Q4_K);
    assert_int_equal(type_of(&m, "blk.1.ffn_down.weight", 2048, 512), GGML_TYPE_Q5_K);
    assert_int_equal(type_of(&m, "blk.2.ffn_down.weight", 2048, 512), GGML_TYPE_Q4_K);
}

static void test_convert_rows(void **state)
{
    (void)state;
    const int64_t ne0 = 512, rows = 37;
    float *x = malloc(ne0 * rows * sizeof *x), *y = malloc(ne0 * rows * sizeof *y);
    for (int64_t i = 0; i < ne0 * rows; i++)
        x[i] = (float)((i * 7919) % 1000) / 500.f - 1.f;
    size_t qsz = ggml_row_size(GGML_TYPE_Q4_K, ne0) * rows;
    uint8_t *q1 = malloc(qsz), *q2 = malloc(qsz);
    assert_int_equal(quant_convert_rows(GGML_TYPE_F32, x, GGML_TYPE_Q4_K, q1, ne0, rows, 1), 0);
    assert_int_equal(quant_convert_rows(GGML_TYPE_F32, x, GGML_TYPE_Q4_K, q2, ne0, rows, 3), 0);
    assert_memory_equal(q1, q2, qsz);
    /* requantize q4_K -> q8_0 -> f32 matches dequantizing directly within q8_0 error */
    uint8_t *q8 = malloc(ggml_row_size(GGML_TYPE_Q8_0, ne0) * rows);
    assert_int_equal(quant_convert_rows(GGML_TYPE_Q4_K, q1, GGML_TYPE_Q8_0, q8, ne0, rows, 2), 0);
    assert_int_equal(quant_convert_rows(GGML_TYPE_Q8_0, q8, GGML_TYPE_F32, y, ne0, rows, 2), 0);
    float *z = malloc(ne0 * rows * sizeof *z);
    assert_int_equal(quant_dequantize_row(GGML_TYPE_Q4_K, q1, z, ne0 * rows), 0);
    for (int64_t i = 0; i < ne0 * rows; i++)
        assert_true(y[i] - z[i] < 0.02f && z[i] - y[i] < 0.02f);
    assert_int_equal(quant_convert_rows(GGML_TYPE_F32, x, GGML_TYPE_Q4_K, q1, 100, 1, 1),
                     AS_EINVAL);
    assert_int_equal(quant_convert_rows(GGML_TYPE_I32, x, GGML_TYPE_F16, q1, 32, 1, 1), AS_EUNSUP);
    free(x);
    free(y);
    free(z);
    free(q1);
    free(q2);
    free(q8);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ftypes),
        cmocka_unit_test(test_q4_k_m_rules),
        cmocka_unit_test(test_other_rules),
        cmocka_unit_test(test_convert_rows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
