/*
 * kvcache.c - block-pooled key/value cache with shared, copy-on-write blocks
 * (see kvcache.h). Not for: attention math.
 */
#include "engine/kvcache.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "engine/ggml_types.h"

#define KV_NONE UINT32_MAX

struct kv_seq {
    int active;
    uint32_t len;
    uint32_t *blocks; /* into kv->tables: max_blocks_per_seq entries */
};

struct kv_cache {
    struct kv_cache_config cfg;
    uint32_t n_blocks;
    uint32_t max_blocks_per_seq;
    size_t esize;       /* bytes per element */
    size_t block_bytes; /* bytes of one block in one pool (KV_BLOCK_TOKENS rows) */
    uint8_t *pool;      /* n_layer * 2 pools of n_blocks blocks */
    uint32_t *refcnt;   /* (n_blocks) */
    uint32_t *free_ids; /* stack of free block ids */
    uint32_t n_free;
    uint32_t *tables; /* (max_seqs, max_blocks_per_seq) */
    struct kv_seq *seqs;
    uint32_t n_active;
};

static size_t pool_index(const struct kv_cache *kv, uint32_t il, int is_v)
{
    return ((size_t)il * 2 + (size_t)is_v) * kv->n_blocks;
}

static uint8_t *block_ptr(const struct kv_cache *kv, uint32_t il, int is_v, uint32_t block)
{
    return kv->pool + (pool_index(kv, il, is_v) + block) * kv->block_bytes;
}

struct kv_cache *kv_cache_new(const struct kv_cache_config *cfg, char *err, size_t errlen)
{
    struct kv_cache *kv = NULL;
    if (!cfg || cfg->n_layer == 0 || cfg->kv_dim == 0 || cfg->max_seqs == 0 ||
        cfg->max_seq_tokens == 0 || cfg->max_seqs > 65536 || cfg->kv_dim > (1u << 20) ||
        cfg->n_layer > 4096) {
        snprintf(err, errlen, "kv cache: invalid configuration");
        return NULL;
    }
    if (cfg->type != GGML_TYPE_F16 && cfg->type != GGML_TYPE_F32) {
        snprintf(err, errlen, "kv cache: type must be f16 or f32");
        return NULL;
    }
    size_t esize = cfg->type == GGML_TYPE_F16 ? 2 : 4;
    uint64_t per_token = (uint64_t)cfg->n_layer * 2 * cfg->kv_dim * esize;
    uint64_t tokens = cfg->budget_tokens ? cfg->budget_tokens : cfg->budget_bytes / per_token;
    uint64_t n_blocks = tokens / KV_BLOCK_TOKENS;
    if (n_blocks == 0) {
        snprintf(err, errlen, "kv cache: budget below one block of %d tokens (%llu bytes)",
                 KV_BLOCK_TOKENS, (unsigned long long)(per_token * KV_BLOCK_TOKENS));
        return NULL;
    }
    if (n_blocks > (1u << 24) || n_blocks * KV_BLOCK_TOKENS * per_token > ((uint64_t)1 << 40)) {
        snprintf(err, errlen, "kv cache: budget too large");
        return NULL;
    }
    kv = calloc(1, sizeof *kv);
    if (!kv)
        goto oom;
    kv->cfg = *cfg;
    kv->n_blocks = (uint32_t)n_blocks;
    kv->cfg.budget_tokens = kv->n_blocks * KV_BLOCK_TOKENS;
    kv->cfg.budget_bytes = (uint64_t)kv->cfg.budget_tokens * per_token;
    kv->max_blocks_per_seq = (cfg->max_seq_tokens + KV_BLOCK_TOKENS - 1) / KV_BLOCK_TOKENS;
    kv->esize = esize;
    kv->block_bytes = (size_t)KV_BLOCK_TOKENS * cfg->kv_dim * esize;
    kv->pool = malloc(kv->cfg.budget_bytes);
    kv->refcnt = calloc(kv->n_blocks, sizeof *kv->refcnt);
    kv->free_ids = malloc((size_t)kv->n_blocks * sizeof *kv->free_ids);
    kv->tables = malloc((size_t)cfg->max_seqs * kv->max_blocks_per_seq * sizeof *kv->tables);
    kv->seqs = calloc(cfg->max_seqs, sizeof *kv->seqs);
    if (!kv->pool || !kv->refcnt || !kv->free_ids || !kv->tables || !kv->seqs)
        goto oom;
    /* lowest ids on top of the stack, so a fresh cache fills the pool in order */
    for (uint32_t i = 0; i < kv->n_blocks; i++)
        kv->free_ids[i] = kv->n_blocks - 1 - i;
    kv->n_free = kv->n_blocks;
    for (uint32_t s = 0; s < cfg->max_seqs; s++)
        kv->seqs[s].blocks = kv->tables + (size_t)s * kv->max_blocks_per_seq;
    return kv;
oom:
    snprintf(err, errlen, "kv cache: out of memory (%llu bytes)",
             (unsigned long long)(n_blocks * KV_BLOCK_TOKENS * per_token));
    kv_cache_free(kv);
    return NULL;
}

void kv_cache_free(struct kv_cache *kv)
{
    if (!kv)
        return;
    free(kv->pool);
    free(kv->refcnt);
    free(kv->free_ids);
    free(kv->tables);
    free(kv->seqs);
    free(kv);
}

const struct kv_cache_config *kv_cache_config(const struct kv_cache *kv)
{
    return &kv->cfg;
}

void kv_cache_usage(const struct kv_cache *kv, struct kv_cache_usage *u)
{
    memset(u, 0, sizeof *u);
    u->blocks_total = kv->n_blocks;
    u->blocks_used = kv->n_blocks - kv->n_free;
    u->tokens_total = kv->cfg.budget_tokens;
    u->seqs_active = kv->n_active;
    u->seqs_max = kv->cfg.max_seqs;
    u->bytes_total = kv->cfg.budget_bytes;
}

uint64_t kv_cache_bytes_per_token(const struct kv_cache *kv)
{
    return (uint64_t)kv->cfg.n_layer * 2 * kv->cfg.kv_dim * kv->esize;
}

uint32_t kv_cache_blocks_free(const struct kv_cache *kv)
{
    return kv->n_free;
}

static struct kv_seq *get_seq(const struct kv_cache *kv, int seq)
{
    if (seq < 0 || (uint32_t)seq >= kv->cfg.max_seqs || !kv->seqs[seq].active)
        return NULL;
    return &kv->seqs[seq];
}

static uint32_t n_blocks_for(uint32_t len)
{
    return (len + KV_BLOCK_TOKENS - 1) / KV_BLOCK_TOKENS;
}

static void block_unref(struct kv_cache *kv, uint32_t b)
{
    if (--kv->refcnt[b] == 0)
        kv->free_ids[kv->n_free++] = b;
}

static uint32_t block_take(struct kv_cache *kv)
{
    uint32_t b = kv->free_ids[--kv->n_free];
    kv->refcnt[b] = 1;
    return b;
}

int kv_seq_alloc(struct kv_cache *kv)
{
    for (uint32_t s = 0; s < kv->cfg.max_seqs; s++) {
        if (!kv->seqs[s].active) {
            kv->seqs[s].active = 1;
            kv->seqs[s].len = 0;
            kv->n_active++;
            return (int)s;
        }
    }
    return AS_EAGAIN;
}

void kv_seq_free(struct kv_cache *kv, int seq)
{
    struct kv_seq *s = get_seq(kv, seq);
    if (!s)
        return;
    kv_seq_truncate(kv, seq, 0);
    s->active = 0;
    kv->n_active--;
}

int kv_seq_active(const struct kv_cache *kv, int seq)
{
    return get_seq(kv, seq) != NULL;
}

uint32_t kv_seq_len(const struct kv_cache *kv, int seq)
{
    const struct kv_seq *s = get_seq(kv, seq);
    return s ? s->len : 0;
}

int kv_seq_truncate(struct kv_cache *kv, int seq, uint32_t n)
{
    struct kv_seq *s = get_seq(kv, seq);
    if (!s)
        return AS_EINVAL;
    if (n >= s->len)
        return 0;
    uint32_t keep = n_blocks_for(n);
    for (uint32_t i = keep; i < n_blocks_for(s->len); i++)
        block_unref(kv, s->blocks[i]);
    s->len = n;
    return 0;
}

int kv_seq_copy_prefix(struct kv_cache *kv, int dst, int src, uint32_t n)
{
    struct kv_seq *d = get_seq(kv, dst), *s = get_seq(kv, src);
    if (!d || !s || dst == src || n > s->len)
        return AS_EINVAL;
    kv_seq_truncate(kv, dst, 0);
    uint32_t nb = n_blocks_for(n);
    for (uint32_t i = 0; i < nb; i++) {
        d->blocks[i] = s->blocks[i];
        kv->refcnt[s->blocks[i]]++;
    }
    d->len = n;
    return 0;
}

uint32_t kv_seq_blocks_needed(const struct kv_cache *kv, int seq, uint32_t n)
{
    const struct kv_seq *s = get_seq(kv, seq);
    if (!s || n == 0)
        return 0;
    uint32_t have = n_blocks_for(s->len);
    uint32_t need = n_blocks_for(s->len + n) - have;
    /* a shared partial last block must be copied before it is written */
    if (s->len % KV_BLOCK_TOKENS && kv->refcnt[s->blocks[have - 1]] > 1)
        need++;
    return need;
}

int kv_seq_append(struct kv_cache *kv, int seq, uint32_t n)
{
    struct kv_seq *s = get_seq(kv, seq);
    if (!s)
        return AS_EINVAL;
    if (n == 0)
        return 0;
    if ((uint64_t)s->len + n > kv->cfg.max_seq_tokens)
        return AS_ERANGE;
    if (kv_seq_blocks_needed(kv, seq, n) > kv->n_free)
        return AS_EAGAIN;
    uint32_t have = n_blocks_for(s->len);
    if (s->len % KV_BLOCK_TOKENS) {
        uint32_t old = s->blocks[have - 1];
        if (kv->refcnt[old] > 1) {
            uint32_t nb = block_take(kv);
            size_t rows = (size_t)(s->len % KV_BLOCK_TOKENS) * kv->cfg.kv_dim * kv->esize;
            for (uint32_t il = 0; il < kv->cfg.n_layer; il++)
                for (int v = 0; v < 2; v++)
                    memcpy(block_ptr(kv, il, v, nb), block_ptr(kv, il, v, old), rows);
            kv->refcnt[old]--;
            s->blocks[have - 1] = nb;
        }
    }
    uint32_t want = n_blocks_for(s->len + n);
    for (uint32_t i = have; i < want; i++)
        s->blocks[i] = block_take(kv);
    s->len += n;
    return 0;
}

static void *row_ptr(struct kv_cache *kv, uint32_t il, int is_v, int seq, uint32_t pos)
{
    const struct kv_seq *s = get_seq(kv, seq);
    if (!s || pos >= s->len || il >= kv->cfg.n_layer)
        return NULL;
    return block_ptr(kv, il, is_v, s->blocks[pos / KV_BLOCK_TOKENS]) +
           (size_t)(pos % KV_BLOCK_TOKENS) * kv->cfg.kv_dim * kv->esize;
}

void *kv_k_row(struct kv_cache *kv, uint32_t il, int seq, uint32_t pos)
{
    return row_ptr(kv, il, 0, seq, pos);
}

void *kv_v_row(struct kv_cache *kv, uint32_t il, int seq, uint32_t pos)
{
    return row_ptr(kv, il, 1, seq, pos);
}

const uint32_t *kv_seq_blocks(const struct kv_cache *kv, int seq)
{
    const struct kv_seq *s = get_seq(kv, seq);
    return s ? s->blocks : NULL;
}

const void *kv_block_k(const struct kv_cache *kv, uint32_t il, uint32_t block)
{
    return block_ptr(kv, il, 0, block);
}

const void *kv_block_v(const struct kv_cache *kv, uint32_t il, uint32_t block)
{
    return block_ptr(kv, il, 1, block);
}
