/*
 * model_synth.h - synthetic GGUF models: random weights of a real model's
 * shape, for tests and benchmarks.
 *
 * Weights are N(0, 0.02)-like (norm weights 1), generated from a counter-based
 * generator keyed by (seed, tensor name, element index), so a file is the
 * same whatever the thread count. Tensors are produced and quantized a chunk
 * at a time while the file is written, so even a 1B-parameter model needs
 * only a few MB of memory. The vocabulary is copied from a GGUF vocab file or
 * generated (byte-level BPE, gpt2-style) so the file is self-contained.
 * Not for: anything that should produce meaningful text.
 */
#ifndef AISTACK_ENGINE_MODEL_SYNTH_H
#define AISTACK_ENGINE_MODEL_SYNTH_H

#include <stddef.h>
#include <stdint.h>

#include "engine/quant_mix.h"

/* Hyperparameters of a named shape. */
struct synth_shape {
    const char *name; /* "tinyllama-1.1b", "llama3.2-1b", "qwen2.5-0.5b", "tiny" */
    const char *arch; /* "llama" or "qwen2" */
    uint32_t n_embd, n_layer, n_head, n_head_kv, n_ff, n_vocab, n_ctx;
    float rope_theta, rms_eps;
    int tied_output;          /* no output.weight: the output projection reuses token_embd */
    int qkv_bias;             /* attn_q/k/v.bias (qwen2) */
    float llama3_rope_factor; /* > 0: write rope_freqs.weight for llama3 rope scaling */
};

/* Shape by name, NULL if unknown. */
const struct synth_shape *synth_shape_find(const char *name);
/* Comma-separated list of the shape names, for usage messages. */
const char *synth_shape_names(void);

struct synth_opts {
    const struct synth_shape *shape;
    const struct quant_ftype *ftype;
    const char *vocab_path; /* GGUF to copy tokenizer.* from; NULL: generate one */
    uint64_t seed;
    int n_threads; /* for generation + quantization; < 1 means 1 */
    int progress;  /* print a line per tensor to stderr */
    const char *out_path;
};

/* Writes the model to o->out_path. 0 or AS_E* with a message in err. */
int synth_write(const struct synth_opts *o, char *err, size_t errlen);

#endif
