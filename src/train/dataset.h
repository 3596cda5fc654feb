/*
 * dataset.h - tokenized training data: a file of variable-length token
 * sequences with a per-token loss mask, and the sampler that packs them into
 * batches.
 *
 * File layout (little-endian): "ASTOKENS" magic, u32 version (1), u32 vocab
 * size, u64 n_seq, u64 n_tok, u64 offsets[n_seq + 1] (token index where each
 * sequence starts), i32 tokens[n_tok], u8 mask[n_tok] (1: the model is trained
 * to predict this token). Files are validated on open and written atomically.
 * Not for: tokenization (see the engine's tokenizer and bpe_train.h).
 */
#ifndef AISTACK_TRAIN_DATASET_H
#define AISTACK_TRAIN_DATASET_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

struct dataset {
    uint32_t vocab;
    uint64_t n_seq, n_tok;
    const uint64_t *offsets; /* (n_seq + 1) */
    const int32_t *tokens;   /* (n_tok) */
    const uint8_t *mask;     /* (n_tok) */
    void *map;
    size_t map_size;
};

/* Maps and validates path. 0, or AS_E* with a message in err. */
int dataset_open(struct dataset *d, const char *path, char *err, size_t errlen);
void dataset_close(struct dataset *d);

/* Accumulates sequences in memory, then writes them atomically. */
struct dataset_builder {
    uint32_t vocab;
    struct buf offsets, tokens, mask;
};
void dataset_builder_init(struct dataset_builder *b, uint32_t vocab);
void dataset_builder_free(struct dataset_builder *b);
/* Appends one sequence; mask may be NULL (all 1). 0 or AS_ENOMEM / AS_EINVAL. */
int dataset_builder_add(struct dataset_builder *b, const int32_t *tok, const uint8_t *mask,
                        size_t n);
int dataset_builder_write(struct dataset_builder *b, const char *path, char *err, size_t errlen);

/*
 * Packs sequences into a batch in a seeded random order (a new permutation
 * each epoch). position counts sequences consumed since the start, so a run
 * resumed from a checkpoint continues with exactly the same batches.
 */
struct batcher {
    const struct dataset *d;
    uint64_t seed;
    uint64_t position; /* sequences consumed */
    uint64_t *perm;    /* (n_seq) permutation of the current epoch */
    uint64_t perm_epoch;
    int max_seq;    /* longest input a sequence contributes (longer ones are cropped) */
    int max_tokens; /* capacity of the arrays below */
    int32_t *tokens, *targets, *pos, *seq_start;
};
int batcher_init(struct batcher *bt, const struct dataset *d, uint64_t seed, int max_seq,
                 int max_tokens);
void batcher_free(struct batcher *bt);
/* Fills the batch arrays with whole sequences up to max_tokens; returns the token count. */
int batcher_next(struct batcher *bt);

#endif
