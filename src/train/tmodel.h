/*
 * tmodel.h - the trainable llama-architecture model: parameters, forward and
 * hand-written backward passes, in f32.
 *
 * The model is the one the engine serves (embeddings, RMSNorm, attention with
 * RoPE on adjacent pairs as llama.cpp's "normal" rope, GQA, SwiGLU, tied or
 * separate output), so an exported GGUF needs no conversion. Large matrix
 * products go through OpenBLAS; the rest runs on a thread count fixed at
 * creation and is deterministic for a given thread count.
 *
 * A batch is packed: N tokens from several sequences of different lengths laid
 * end to end; each token carries its position and the index of its sequence's
 * first token, and attends only within its sequence. Not for: optimisation
 * (see optim.h), checkpoints (ckpt.h), inference (the engine).
 */
#ifndef AISTACK_TRAIN_TMODEL_H
#define AISTACK_TRAIN_TMODEL_H

#include <stddef.h>
#include <stdint.h>

struct tm_config {
    int vocab;     /* vocabulary size */
    int dim;       /* model width C */
    int n_layer;   /* transformer blocks */
    int n_head;    /* query heads */
    int n_kv_head; /* key/value heads (divides n_head) */
    int ffn;       /* SwiGLU hidden width */
    int max_seq;   /* longest sequence (positions) */
    int tied;      /* 1: output projection shares the token embedding */
    float rope_theta;
    float norm_eps;
};

/* Pointers into one flat f32 array (parameters, gradients or optimizer moments). */
struct tm_layer {
    float *attn_norm; /* (dim) */
    float *wq;        /* (n_head*hd, dim) */
    float *wk;        /* (n_kv_head*hd, dim) */
    float *wv;        /* (n_kv_head*hd, dim) */
    float *wo;        /* (dim, n_head*hd) */
    float *ffn_norm;  /* (dim) */
    float *wg;        /* (ffn, dim) */
    float *wu;        /* (ffn, dim) */
    float *wd;        /* (dim, ffn) */
};

struct tm_params {
    float *tok_emb; /* (vocab, dim) */
    struct tm_layer *layers;
    float *out_norm; /* (dim) */
    float *output;   /* (vocab, dim); == tok_emb when tied */
};

/* One named tensor of the flat layout, for export, checkpoints and weight decay. */
struct tm_tensor {
    char name[48];  /* GGUF name, e.g. "blk.3.attn_q.weight" */
    size_t offset;  /* in floats, into the flat array */
    int rows, cols; /* 1-D tensors have rows == 1 */
};

/* A packed batch of n tokens (borrowed by the calls below). */
struct tm_batch {
    int n;
    const int32_t *tokens;    /* (n) input token ids */
    const int32_t *targets;   /* (n) next-token ids, -1 = no loss at this position */
    const int32_t *pos;       /* (n) position within the sequence */
    const int32_t *seq_start; /* (n) index of the first token of this token's sequence */
};

struct tmodel;

/* Number of f32 parameters of a config (0 if the config is invalid). */
size_t tm_param_count(const struct tm_config *c);
/* Validates c; on error writes a message to err and returns AS_EINVAL. */
int tm_config_check(const struct tm_config *c, char *err, size_t errlen);

/*
 * Creates a model able to process batches of up to max_tokens tokens with
 * n_threads threads. Parameters are initialised from seed (N(0, 0.02), output
 * projections scaled by 1/sqrt(2*n_layer), norms 1). NULL on failure.
 */
struct tmodel *tm_new(const struct tm_config *c, int max_tokens, int n_threads, uint64_t seed,
                      char *err, size_t errlen);
void tm_free(struct tmodel *m);

const struct tm_config *tm_get_config(const struct tmodel *m);
/* The flat parameter / gradient arrays (tm_param_count floats each). */
float *tm_params_flat(struct tmodel *m);
float *tm_grads_flat(struct tmodel *m);
/* The tensor table (count written to *n). */
const struct tm_tensor *tm_tensors(const struct tmodel *m, int *n);

/*
 * Forward pass. Returns the mean cross-entropy over tokens with a target
 * (0 if none) and saves the activations backward needs.
 */
float tm_forward(struct tmodel *m, const struct tm_batch *b);
/* Logits of the last forward pass: (n, vocab), valid until the next call. */
const float *tm_logits(const struct tmodel *m);
/*
 * Backward pass for the last forward, accumulating scale * d(loss)/d(param)
 * into the gradients (so micro-batches can be accumulated). Call
 * tm_zero_grad() before the first micro-batch of a step.
 */
void tm_backward(struct tmodel *m, const struct tm_batch *b, float scale);
void tm_zero_grad(struct tmodel *m);

/* Floating-point operations of one forward+backward over b (for MFU). */
double tm_flops(const struct tm_config *c, const struct tm_batch *b);

/* Runs fn(ctx, i) for i in [0, n) on the model's threads, in fixed chunks. */
void tm_parallel_for(struct tmodel *m, int n, void (*fn)(void *ctx, int i), void *ctx);

#endif
