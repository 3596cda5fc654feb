/*
 * kvcache.h - the attention key/value cache: a fixed memory budget shared by
 * per-sequence slots, in blocks of KV_BLOCK_TOKENS positions.
 *
 * All memory (the block pool, the per-sequence block tables) is allocated once
 * by kv_cache_new(); nothing is allocated per token. A sequence owns a table of
 * block ids; blocks are reference-counted so that a prompt prefix can be shared
 * between sequences without copying (kv_seq_copy_prefix): a shared block is
 * copied only when a sequence writes into it (copy on write).
 *
 * Storage is layer-major: for each layer, a K pool and a V pool of
 * n_blocks * KV_BLOCK_TOKENS rows of kv_dim elements (F16 or F32).
 *
 * Not for: attention math (see model.c). Not thread-safe: one thread manages
 * sequences; the model's worker threads only write rows of blocks that
 * kv_seq_append() made exclusive to their sequence.
 */
#ifndef AISTACK_ENGINE_KVCACHE_H
#define AISTACK_ENGINE_KVCACHE_H

#include <stddef.h>
#include <stdint.h>

/* Positions per block. */
#define KV_BLOCK_TOKENS 32

struct kv_cache_config {
    uint32_t n_layer;
    uint32_t kv_dim;         /* n_head_kv * head_dim */
    uint32_t type;           /* GGML_TYPE_F16 or GGML_TYPE_F32 */
    uint64_t budget_bytes;   /* memory for K and V; used when budget_tokens is 0 */
    uint32_t budget_tokens;  /* total positions over all sequences; wins over budget_bytes */
    uint32_t max_seqs;       /* sequence slots (ids 0..max_seqs-1) */
    uint32_t max_seq_tokens; /* positions one sequence may hold (the context length) */
};

/* Memory use, for metrics and admission control. */
struct kv_cache_usage {
    uint32_t blocks_total;
    uint32_t blocks_used; /* blocks referenced by at least one sequence */
    uint32_t tokens_total;
    uint32_t seqs_active;
    uint32_t seqs_max;
    uint64_t bytes_total; /* bytes of the K and V pools */
};

struct kv_cache;

/*
 * Allocates the cache. type must be GGML_TYPE_F16 or GGML_TYPE_F32. Returns
 * NULL with a message in err on invalid sizes or allocation failure.
 */
struct kv_cache *kv_cache_new(const struct kv_cache_config *cfg, char *err, size_t errlen);
/* Frees the cache. Accepts NULL. */
void kv_cache_free(struct kv_cache *kv);
/* The configuration the cache was built with (n_blocks rounded). */
const struct kv_cache_config *kv_cache_config(const struct kv_cache *kv);
/* Fills *u. */
void kv_cache_usage(const struct kv_cache *kv, struct kv_cache_usage *u);
/* Bytes one position of one sequence takes over all layers (K and V). */
uint64_t kv_cache_bytes_per_token(const struct kv_cache *kv);

/* Takes a free slot: its id (>= 0, empty sequence), or AS_EAGAIN if none is free. */
int kv_seq_alloc(struct kv_cache *kv);
/* Releases slot seq and its blocks. Ignores ids that are not active. */
void kv_seq_free(struct kv_cache *kv, int seq);
/* 1 if seq is an active slot. */
int kv_seq_active(const struct kv_cache *kv, int seq);
/* Positions held by seq (0 for an inactive slot). */
uint32_t kv_seq_len(const struct kv_cache *kv, int seq);
/* Drops positions >= n of seq (no-op if n >= len). 0 or AS_EINVAL. */
int kv_seq_truncate(struct kv_cache *kv, int seq, uint32_t n);
/*
 * Makes dst hold the first n positions of src (dst's previous contents are
 * dropped). Blocks are shared, not copied. 0, AS_EINVAL (bad ids, dst == src,
 * n > len(src)).
 */
int kv_seq_copy_prefix(struct kv_cache *kv, int dst, int src, uint32_t n);
/*
 * Grows seq by n positions (len += n) and makes every block those positions
 * fall in exclusive to seq, so that their rows can be written. All or nothing:
 * AS_EAGAIN if the pool lacks free blocks, AS_ERANGE if len + n passes
 * max_seq_tokens, AS_EINVAL for a bad id.
 */
int kv_seq_append(struct kv_cache *kv, int seq, uint32_t n);
/* Free blocks needed for kv_seq_append(kv, seq, n) to succeed now. */
uint32_t kv_seq_blocks_needed(const struct kv_cache *kv, int seq, uint32_t n);
/* Free blocks in the pool. */
uint32_t kv_cache_blocks_free(const struct kv_cache *kv);

/*
 * Row of layer il at position pos of seq (pos < len): kv_dim elements of the
 * cache type. Borrowed; valid until the sequence is truncated or freed.
 */
void *kv_k_row(struct kv_cache *kv, uint32_t il, int seq, uint32_t pos);
void *kv_v_row(struct kv_cache *kv, uint32_t il, int seq, uint32_t pos);
/*
 * The block ids of seq (ceil(len / KV_BLOCK_TOKENS) of them) and the start of
 * a block's rows (KV_BLOCK_TOKENS rows of kv_dim elements) in layer il, for
 * attention loops that walk a sequence block by block.
 */
const uint32_t *kv_seq_blocks(const struct kv_cache *kv, int seq);
const void *kv_block_k(const struct kv_cache *kv, uint32_t il, uint32_t block);
const void *kv_block_v(const struct kv_cache *kv, uint32_t il, uint32_t block);

#endif
