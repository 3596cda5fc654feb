/*
 * quant_mix.h - whole-model quantization policy: llama.cpp's file types
 * ("q4_k_m", ...) and which tensor gets which type, plus multi-threaded row
 * conversion between any two types.
 *
 * The per-tensor rules follow llama.cpp's llama_tensor_get_type for the
 * llama/qwen2 families, so a Q4_K_M file written here has the same tensor
 * types as one written by llama-quantize: most weights q4_K, attn_v and
 * ffn_down of the "more bits" layers q6_K, the output (or tied embedding) q6_K,
 * K types falling back to 32-blocks for rows not a multiple of 256, and 1-D
 * tensors (norms, biases) left as they are. Not for: reading or writing files
 * (the quantize/synth commands drive gguf.h with this).
 */
#ifndef AISTACK_ENGINE_QUANT_MIX_H
#define AISTACK_ENGINE_QUANT_MIX_H

#include <stdint.h>

/* A target file type. */
struct quant_ftype {
    const char *name;   /* "q4_k_m" */
    int llama_ftype;    /* LLAMA_FTYPE_* number written to general.file_type */
    uint32_t base_type; /* enum ggml_type of most weights */
    int mixture;        /* 1: apply llama.cpp's per-tensor rules */
};

/* Looks up a file type by name (case-insensitive), NULL if unknown. */
const struct quant_ftype *quant_ftype_find(const char *name);
/* Comma-separated list of the supported names, for usage messages. */
const char *quant_ftype_names(void);

/* What the rules need to know about the whole model. */
struct quant_mix {
    const struct quant_ftype *ft;
    int n_attn_v;   /* number of blk.*.attn_v.weight tensors */
    int n_ffn_down; /* number of blk.*.ffn_down.weight tensors */
    int has_output; /* 0 when the output projection is tied to token_embd */
};

/*
 * Type for a tensor named name of shape ne (n_dims dims) currently of type
 * cur_type under mix m. Tensors that are not quantized keep cur_type.
 */
uint32_t quant_mix_tensor_type(const struct quant_mix *m, const char *name, uint32_t cur_type,
                               uint32_t n_dims, const uint64_t *ne);

/*
 * Converts n_rows rows of ne0 elements from src_type (src) to dst_type (dst),
 * via f32 when the types differ, on n_threads threads (<= 1: the caller's).
 * 0, AS_EUNSUP if a type cannot be converted, AS_EINVAL for a bad row size,
 * AS_ENOMEM.
 */
int quant_convert_rows(uint32_t src_type, const void *src, uint32_t dst_type, void *dst,
                       int64_t ne0, int64_t n_rows, int n_threads);

#endif
