/*
 * model.h - llama-family transformer models loaded from GGUF: hyperparameters
 * from metadata, weights as pointers into the mapping, and a batched forward
 * pass for continuous batching.
 *
 * Architectures: `llama` (Llama 2 / 3.x incl. llama3 RoPE scaling, Mistral,
 * TinyLlama, SmolLM; RoPE on adjacent pairs, as llama.cpp's "normal" mode,
 * because GGUF llama files store q/k permuted for it) and `qwen2` (q/k/v
 * biases, NeoX RoPE on the two halves of a head). GQA, RMSNorm, SwiGLU, tied
 * or separate output embeddings. Any weight type the kernels support.
 *
 * Lifecycle: a `struct model` (read-only weights; may be shared by several
 * contexts) and a `struct model_ctx` (KV cache, scratch buffers sized for a
 * maximum batch, thread pool) that runs forward passes. Nothing is allocated
 * per token. A context is not thread-safe: one thread drives it; the forward
 * pass itself uses the context's worker threads.
 *
 * Not for: tokenization (tokenizer.h), sampling (sampler.h), scheduling which
 * sequences go into a batch (the infer service).
 */
#ifndef AISTACK_ENGINE_MODEL_H
#define AISTACK_ENGINE_MODEL_H

#include <stddef.h>
#include <stdint.h>

struct gguf_file;
struct kv_cache;

enum model_arch {
    MODEL_ARCH_LLAMA = 0,
    MODEL_ARCH_QWEN2 = 1,
};

enum model_rope_type {
    MODEL_ROPE_NORMAL = 0, /* rotate adjacent pairs (x[2i], x[2i+1]) */
    MODEL_ROPE_NEOX = 1,   /* rotate (x[i], x[i + n_rot/2]) */
};

/* Hyperparameters, from `{arch}.*` GGUF metadata. */
struct model_hparams {
    enum model_arch arch;
    char arch_name[32];
    uint32_t n_vocab;
    uint32_t n_embd;
    uint32_t n_layer;
    uint32_t n_head;
    uint32_t n_head_kv;
    uint32_t head_dim; /* {arch}.attention.key_length, else n_embd / n_head */
    uint32_t n_ff;
    uint32_t n_ctx_train; /* {arch}.context_length */
    uint32_t n_rot;       /* {arch}.rope.dimension_count, else head_dim */
    enum model_rope_type rope_type;
    float rope_theta;      /* {arch}.rope.freq_base (default 10000) */
    float rope_freq_scale; /* 1 / {arch}.rope.scaling.factor for linear scaling, else 1 */
    float rms_eps;         /* {arch}.attention.layer_norm_rms_epsilon */
    int has_rope_freqs;    /* per-dimension frequency divisors (llama3 scaling) in use */
    int tied_output;       /* output projection is token_embd.weight */
};

/* How model_load() brings the weights in (see gguf_open_opts). */
enum model_load_mode {
    /* with transparent huge pages: a huge-page file mapping, else a private copy in
       huge pages; without: as MODEL_LOAD_MMAP */
    MODEL_LOAD_AUTO = 0,
    MODEL_LOAD_MMAP, /* a plain file mapping: zero-copy, lazy, shared page cache */
    MODEL_LOAD_COPY, /* a private copy in anonymous memory advised for huge pages */
};

/* Options for model_load(). Zeroed means defaults. */
struct model_params {
    uint32_t n_ctx_max;        /* cap on the context length (0: the model's own) */
    enum model_load_mode load; /* MODEL_LOAD_AUTO when zeroed */
    /* Unless mapping lazily: progress as bytes arrive, on the loading thread (may be NULL). */
    void (*progress)(void *ud, uint64_t done, uint64_t total);
    void *progress_ud;
    /*
     * 1: keep every matrix in GGUF form. Otherwise model_load() packs the
     * matrices the kernels have a packed form for (kern_pack: Q4_0 and Q8_0
     * with AVX-512 VNNI) into memory of its own and drops their pages of the
     * file, except with MODEL_LOAD_MMAP (zero-copy is what that asks for).
     */
    int no_pack;
};

struct model;

/*
 * Opens and maps a GGUF file and binds its tensors, checking every shape and
 * type. Returns NULL and a message in err (naming e.g. an unsupported
 * architecture or a missing tensor) on failure.
 */
struct model *model_load(const char *path, const struct model_params *p, char *err, size_t errlen);
/*
 * Like model_load() over an already-open GGUF file; the model borrows f,
 * which must outlive it.
 */
struct model *model_load_gguf(const struct gguf_file *f, const struct model_params *p, char *err,
                              size_t errlen);
/*
 * Where the weights live: "mmap" (file mapping, 4 KB pages), "mmap-huge" (file
 * mapping in 2 MB pages), "copy" (private copy advised for huge pages).
 */
const char *model_weights_memory(const struct model *m);
/* How many weight matrices model_load() packed (see model_params.no_pack). */
uint32_t model_weights_packed(const struct model *m);
/* Frees the model (and unmaps the file if model_load() opened it). Accepts NULL. */
void model_free(struct model *m);
/* The hyperparameters. Borrowed for the model's lifetime. */
const struct model_hparams *model_get_hparams(const struct model *m);
/* The GGUF file (for tokenizer metadata). Borrowed for the model's lifetime. */
const struct gguf_file *model_get_gguf(const struct model *m);
/* Context length in effect: the model's, capped by model_params.n_ctx_max. */
uint32_t model_n_ctx(const struct model *m);
/* Bytes of weights a single-token forward pass reads (for bandwidth figures). */
uint64_t model_weight_bytes(const struct model *m);

/*
 * Llama 3 RoPE scaling as divisors of the n_rot / 2 base frequencies
 * theta^(-2j / n_rot): 1 for high frequencies, factor for low ones, a smooth
 * blend between (the values llama.cpp stores as rope_freqs.weight).
 */
void model_rope_llama3_divisors(double theta, uint32_t n_rot, double factor, double lo, double hi,
                                uint32_t orig_ctx, double *div);

/* Options for model_ctx_new(). Zeroed fields take the defaults noted. */
struct model_ctx_params {
    uint32_t n_threads;        /* worker threads incl. the caller (0: 1) */
    uint32_t max_batch;        /* most tokens per model_forward() (0: 512) */
    uint32_t max_seqs;         /* sequence slots in the KV cache (0: 1) */
    uint32_t max_logits;       /* most tokens per batch that want logits (0: max_seqs) */
    uint32_t n_ctx;            /* positions per sequence (0: model_n_ctx()) */
    uint64_t kv_budget_bytes;  /* KV cache memory (0: room for max_seqs full contexts) */
    uint32_t kv_budget_tokens; /* KV positions over all sequences; wins over bytes */
    int kv_f32;                /* store K/V as F32 instead of F16 */
};

struct model_ctx;

/* Builds a context: KV cache, scratch for max_batch tokens, threads. NULL + err on failure. */
struct model_ctx *model_ctx_new(const struct model *m, const struct model_ctx_params *p, char *err,
                                size_t errlen);
/* Stops the threads and frees everything. Accepts NULL. */
void model_ctx_free(struct model_ctx *ctx);
/* The context's KV cache: allocate, free, truncate, share sequences through it. */
struct kv_cache *model_ctx_kv(struct model_ctx *ctx);
/* The model the context runs. */
const struct model *model_ctx_model(const struct model_ctx *ctx);
/*
 * Runs fn(arg, ith, nth) on every thread of the context's pool (the caller is
 * thread 0) and returns when all have returned; fn(arg, 0, 1) without a pool.
 * For per-step work around model_forward() (sampling several sequences):
 * only from the thread that calls model_forward(), never during it.
 */
void model_ctx_run(struct model_ctx *ctx, void (*fn)(void *arg, int ith, int nth), void *arg);

/* One token of a batch. */
struct model_batch_token {
    int32_t token;
    int32_t seq;     /* a sequence id allocated with kv_seq_alloc() */
    uint32_t pos;    /* its position; see model_forward() */
    int want_logits; /* compute the logits of this token */
};

/* A batch of tokens from one or several sequences. Owns its array. */
struct model_batch {
    uint32_t n;
    uint32_t cap;
    struct model_batch_token *t;
};

/* Allocates room for cap tokens. 0 or AS_ENOMEM. */
int model_batch_init(struct model_batch *b, uint32_t cap);
/* Frees the array. Accepts NULL. */
void model_batch_free(struct model_batch *b);
/* Empties the batch. */
void model_batch_clear(struct model_batch *b);
/* Appends a token. 0 or AS_ERANGE when full. */
int model_batch_add(struct model_batch *b, int32_t token, int32_t seq, uint32_t pos,
                    int want_logits);

/*
 * Runs the model over a batch: one pass over the weights for all tokens.
 * Each sequence's tokens must appear in order with consecutive positions, the
 * first at the sequence's current KV length (kv_seq_len()), so each token
 * attends to its sequence's cached positions and its own earlier tokens in the
 * batch. On success the KV cache of each sequence has grown by its tokens and
 * model_logits() gives the logits of the tokens that asked for them.
 * Errors (nothing is changed): AS_EINVAL (bad token id, sequence or position,
 * batch larger than max_batch, more than max_logits tokens wanting logits),
 * AS_ERANGE (a sequence would pass n_ctx),
 * AS_EAGAIN (the KV cache has no room: free or truncate sequences, retry).
 */
int model_forward(struct model_ctx *ctx, const struct model_batch *b);
/*
 * Logits (n_vocab floats) of batch token i from the last model_forward(), or
 * NULL if it did not ask for them. Borrowed until the next forward.
 */
const float *model_logits(const struct model_ctx *ctx, uint32_t i);
/*
 * Final hidden state (after the output norm, n_embd floats) of batch token i
 * from the last model_forward(), or NULL if it did not ask for logits.
 */
const float *model_hidden(const struct model_ctx *ctx, uint32_t i);

/*
 * Sentence embedding of tokens[0..n): mean over the tokens of the final
 * hidden states (after the output norm), L2-normalised, written to out
 * (n_embd floats). Uses a temporary sequence of the context's KV cache (so
 * one slot and ceil(n / 32) blocks must be free), processed in chunks of
 * max_batch. 0 or an error as model_forward(); AS_EAGAIN if no slot is free.
 */
int model_embed(struct model_ctx *ctx, const int32_t *tokens, uint32_t n, float *out);

#endif
