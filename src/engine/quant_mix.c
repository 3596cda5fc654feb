/*
 * quant_mix.c - llama.cpp file types, the per-tensor type rules, and threaded
 * row conversion (see quant_mix.h).
 */
#include "engine/quant_mix.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/err.h"
#include "engine/ggml_types.h"
#include "engine/quant.h"

/* LLAMA_FTYPE_* numbers as llama.cpp writes them to general.file_type. */
static const struct quant_ftype ftypes[] = {
    {"f32", 0, GGML_TYPE_F32, 0},      {"f16", 1, GGML_TYPE_F16, 0},
    {"bf16", 32, GGML_TYPE_BF16, 0},   {"q4_0", 2, GGML_TYPE_Q4_0, 1},
    {"q4_1", 3, GGML_TYPE_Q4_1, 1},    {"q5_0", 8, GGML_TYPE_Q5_0, 1},
    {"q5_1", 9, GGML_TYPE_Q5_1, 1},    {"q8_0", 7, GGML_TYPE_Q8_0, 1},
    {"q4_k_s", 14, GGML_TYPE_Q4_K, 1}, {"q4_k_m", 15, GGML_TYPE_Q4_K, 1},
    {"q5_k_s", 16, GGML_TYPE_Q5_K, 1}, {"q5_k_m", 17, GGML_TYPE_Q5_K, 1},
    {"q6_k", 18, GGML_TYPE_Q6_K, 1},
};

const struct quant_ftype *quant_ftype_find(const char *name)
{
    if (!name)
        return NULL;
    for (size_t i = 0; i < sizeof ftypes / sizeof ftypes[0]; i++)
        if (!strcasecmp(name, ftypes[i].name))
            return &ftypes[i];
    return NULL;
}

const char *quant_ftype_names(void)
{
    return "f32, f16, bf16, q4_0, q4_1, q5_0, q5_1, q8_0, q4_k_s, q4_k_m, q5_k_s, q5_k_m, q6_k";
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !memcmp(s + n - m, suffix, m);
}

/* llama.cpp's choice of layers that get more bits: first and last eighth, every third between. */
static int use_more_bits(int i_layer, int n_layers)
{
    return i_layer < n_layers / 8 || i_layer >= 7 * n_layers / 8 ||
           (i_layer - n_layers / 8) % 3 == 2;
}

static int layer_of(const char *name)
{
    int il;
    return sscanf(name, "blk.%d.", &il) == 1 ? il : -1;
}

/* K types need rows that are a multiple of 256: fall back as llama.cpp does. */
static uint32_t fallback(uint32_t t, uint64_t ne0)
{
    const struct ggml_type_info *ti = ggml_type_get(t);
    if (ne0 % ti->blck_size == 0)
        return t;
    switch (t) {
    case GGML_TYPE_Q2_K:
    case GGML_TYPE_Q3_K:
        t = GGML_TYPE_Q4_0;
        break;
    case GGML_TYPE_Q4_K:
        t = GGML_TYPE_Q5_0;
        break;
    case GGML_TYPE_Q5_K:
        t = GGML_TYPE_Q5_1;
        break;
    case GGML_TYPE_Q6_K:
        t = GGML_TYPE_Q8_0;
        break;
    default:
        break;
    }
    return ne0 % ggml_type_get(t)->blck_size == 0 ? t : GGML_TYPE_F16;
}

uint32_t quant_mix_tensor_type(const struct quant_mix *m, const char *name, uint32_t cur_type,
                               uint32_t n_dims, const uint64_t *ne)
{
    const struct quant_ftype *ft = m->ft;
    int quantize = ends_with(name, "weight") && n_dims >= 2 && !strstr(name, "_norm.weight") &&
                   !strstr(name, "ffn_gate_inp.weight") && strcmp(name, "position_embd.weight") &&
                   strcmp(name, "token_types.weight");
    if (!quantize)
        return cur_type;
    uint32_t t = ft->base_type;
    if (!ft->mixture)
        return t;
    const int lft = ft->llama_ftype;
    if (!strcmp(name, "output.weight") || (!m->has_output && !strcmp(name, "token_embd.weight"))) {
        if (ne[0] % 256)
            t = GGML_TYPE_Q8_0;
        else if (t != GGML_TYPE_Q8_0)
            t = GGML_TYPE_Q6_K;
    } else if (strstr(name, "attn_v.weight")) {
        int il = layer_of(name);
        if ((lft == 15 || lft == 17) && il >= 0 && use_more_bits(il, m->n_attn_v))
            t = GGML_TYPE_Q6_K;
        else if (lft == 14 && il >= 0 && il < 4)
            t = GGML_TYPE_Q5_K;
    } else if (strstr(name, "ffn_down")) {
        int il = layer_of(name), n = m->n_ffn_down;
        if ((lft == 15 || lft == 17) && il >= 0 && use_more_bits(il, n))
            t = GGML_TYPE_Q6_K;
        else if (lft == 14 && il >= 0 && il < n / 8)
            t = GGML_TYPE_Q5_K;
    } else if (strstr(name, "attn_qkv.weight")) {
        if (lft == 15)
            t = GGML_TYPE_Q5_K;
        else if (lft == 17)
            t = GGML_TYPE_Q6_K;
    }
    return fallback(t, ne[0]);
}

/* ---- conversion ------------------------------------------------------------ */

struct convert_job {
    uint32_t src_type, dst_type;
    const uint8_t *src;
    uint8_t *dst;
    int64_t ne0, row0, row1;
    size_t src_row, dst_row;
    int rc;
};

static void *convert_worker(void *arg)
{
    struct convert_job *j = arg;
    float *tmp = NULL;
    if (j->src_type != GGML_TYPE_F32 && j->dst_type != GGML_TYPE_F32) {
        tmp = malloc((size_t)j->ne0 * sizeof *tmp);
        if (!tmp) {
            j->rc = AS_ENOMEM;
            return NULL;
        }
    }
    for (int64_t r = j->row0; r < j->row1 && !j->rc; r++) {
        const uint8_t *s = j->src + (size_t)r * j->src_row;
        uint8_t *d = j->dst + (size_t)r * j->dst_row;
        if (j->src_type == GGML_TYPE_F32)
            j->rc = quant_quantize_row(j->dst_type, (const float *)s, d, j->ne0);
        else if (j->dst_type == GGML_TYPE_F32)
            j->rc = quant_dequantize_row(j->src_type, s, (float *)d, j->ne0);
        else if (!(j->rc = quant_dequantize_row(j->src_type, s, tmp, j->ne0)))
            j->rc = quant_quantize_row(j->dst_type, tmp, d, j->ne0);
    }
    free(tmp);
    return NULL;
}

int quant_convert_rows(uint32_t src_type, const void *src, uint32_t dst_type, void *dst,
                       int64_t ne0, int64_t n_rows, int n_threads)
{
    size_t src_row = ggml_row_size(src_type, (uint64_t)ne0);
    size_t dst_row = ggml_row_size(dst_type, (uint64_t)ne0);
    if (ne0 <= 0 || n_rows < 0 || !src_row || !dst_row)
        return AS_EINVAL;
    if (src_type == dst_type) {
        memcpy(dst, src, src_row * (size_t)n_rows);
        return 0;
    }
    if (!quant_get_traits(src_type) || !quant_get_traits(dst_type) ||
        !quant_get_traits(dst_type)->from_float)
        return AS_EUNSUP;
    if (n_threads < 1)
        n_threads = 1;
    if (n_threads > 64)
        n_threads = 64;
    if (n_threads > n_rows)
        n_threads = n_rows > 0 ? (int)n_rows : 1;
    struct convert_job jobs[64];
    pthread_t th[64];
    int started[64] = {0};
    for (int i = 0; i < n_threads; i++) {
        jobs[i] = (struct convert_job){
            src_type, dst_type, src, dst, ne0, n_rows * i / n_threads, n_rows * (i + 1) / n_threads,
            src_row,  dst_row,  0};
    }
    for (int i = 1; i < n_threads; i++)
        started[i] = !pthread_create(&th[i], NULL, convert_worker, &jobs[i]);
    convert_worker(&jobs[0]);
    int rc = jobs[0].rc;
    for (int i = 1; i < n_threads; i++) {
        if (started[i])
            pthread_join(th[i], NULL);
        else
            convert_worker(&jobs[i]); /* thread creation failed: do it here */
        if (!rc)
            rc = jobs[i].rc;
    }
    return rc;
}
