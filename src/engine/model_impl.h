/*
 * model_impl.h - the loaded model's layout, shared by model_load.c (which
 * fills it from GGUF) and model.c (which runs it). Internal to the engine:
 * users go through model.h.
 */
#ifndef AISTACK_ENGINE_MODEL_IMPL_H
#define AISTACK_ENGINE_MODEL_IMPL_H

#include <stdint.h>

#include "engine/model.h"

/* A weight matrix: n_out rows of n_in elements of type, in the mapping. */
struct model_mat {
    const void *data;
    uint32_t type; /* enum ggml_type */
    uint32_t n_in;
    uint32_t n_out;
    uint32_t packed; /* data is in kern_pack()'s layout (in model->packed) */
};

struct model_layer {
    const float *attn_norm;  /* (n_embd) */
    const float *ffn_norm;   /* (n_embd) */
    const float *bq;         /* (n_head * head_dim) or NULL */
    const float *bk;         /* (n_head_kv * head_dim) or NULL */
    const float *bv;         /* (n_head_kv * head_dim) or NULL */
    struct model_mat wq;     /* (n_head * head_dim, n_embd) */
    struct model_mat wk;     /* (n_head_kv * head_dim, n_embd) */
    struct model_mat wv;     /* (n_head_kv * head_dim, n_embd) */
    struct model_mat wo;     /* (n_embd, n_head * head_dim) */
    struct model_mat w_gate; /* (n_ff, n_embd) */
    struct model_mat w_up;   /* (n_ff, n_embd) */
    struct model_mat w_down; /* (n_embd, n_ff) */
};

struct model {
    struct model_hparams hp;
    struct gguf_file *owned; /* opened by model_load(), else NULL */
    const struct gguf_file *f;
    uint32_t n_ctx;
    struct model_mat tok_embd;                                     /* (n_vocab, n_embd) */
    void (*embd_to_float)(const void *src, float *dst, int64_t n); /* row decoder */
    struct model_mat output;    /* (n_vocab, n_embd); tok_embd when tied */
    const float *output_norm;   /* (n_embd) */
    struct model_layer *layers; /* (n_layer) */
    double *rope_freq;          /* (n_rot / 2) radians per position, scaling applied */
    float *small;               /* F32 copies of norms and biases */
    uint64_t weight_bytes;
    void *packed; /* the packed matrices (hugemem_alloc), or NULL */
    size_t packed_size;
    uint32_t n_packed;
};

/* Writes the embedding of token tok (in range) to out (n_embd floats). */
void model__embed_row(const struct model *m, int32_t tok, float *out);

#endif
