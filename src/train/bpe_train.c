/* bpe_train.c - byte-level BPE training (see bpe_train.h). */
#include "train/bpe_train.h"

#include "core/buf.h"
#include "core/err.h"
#include "engine/gguf.h"
#include "engine/tok_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A distinct pre-token: its symbols (token ids) and how often it occurs. */
struct word {
    int32_t *sym;
    uint32_t n;
    uint64_t count;
};

/* Open-addressing map from a 64-bit key to a value. */
struct u64map {
    uint64_t *keys; /* 0 = empty slot, so keys are stored + 1 */
    uint64_t *vals;
    size_t cap, used;
};

struct bpe_trainer {
    enum tok_pre pre;
    char pre_name[32];
    struct tok_scratch scratch;
    /* distinct pre-tokens, found through a byte-string map */
    struct word *words;
    size_t n_words, cap_words;
    struct u64map word_index; /* hash of bytes -> word index (collisions checked) */
    struct buf word_bytes;    /* the bytes of every word, for collision checks */
    uint64_t *word_off;       /* (n_words + 1) offsets into word_bytes */
    /* the vocabulary: 256 byte tokens, then merges, then specials */
    struct buf *tok; /* (n_tok) raw bytes of each token */
    uint32_t n_tok, cap_tok, n_merge_tok;
    int32_t (*merges)[2]; /* (n_merge_tok) left, right */
    uint32_t n_special;
};

static uint64_t hash_bytes(const char *p, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)p[i]) * 1099511628211ull;
    return h;
}

static int u64map_grow(struct u64map *m)
{
    size_t cap = m->cap ? m->cap * 2 : 1024;
    uint64_t *k = calloc(cap, 8), *v = calloc(cap, 8);
    if (!k || !v) {
        free(k);
        free(v);
        return AS_ENOMEM;
    }
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->keys[i])
            continue;
        size_t j = (m->keys[i] * 0x9e3779b97f4a7c15ull) & (cap - 1);
        while (k[j])
            j = (j + 1) & (cap - 1);
        k[j] = m->keys[i], v[j] = m->vals[i];
    }
    free(m->keys);
    free(m->vals);
    m->keys = k, m->vals = v, m->cap = cap;
    return 0;
}

/* Slot of key (stored as key + 1): existing or the empty slot where it would go. */
static size_t u64map_slot(const struct u64map *m, uint64_t key)
{
    size_t j = ((key + 1) * 0x9e3779b97f4a7c15ull) & (m->cap - 1);
    while (m->keys[j] && m->keys[j] != key + 1)
        j = (j + 1) & (m->cap - 1);
    return j;
}

static uint64_t *u64map_get_or_add(struct u64map *m, uint64_t key, int *added)
{
    if ((m->used + 1) * 2 > m->cap && u64map_grow(m))
        return NULL;
    size_t j = u64map_slot(m, key);
    *added = !m->keys[j];
    if (*added) {
        m->keys[j] = key + 1;
        m->vals[j] = 0;
        m->used++;
    }
    return &m->vals[j];
}

static void u64map_free(struct u64map *m)
{
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof *m);
}

static int add_token(struct bpe_trainer *b, const char *p, size_t n)
{
    if (b->n_tok == b->cap_tok) {
        uint32_t cap = b->cap_tok ? b->cap_tok * 2 : 512;
        struct buf *t = realloc(b->tok, cap * sizeof *t);
        if (!t)
            return AS_ENOMEM;
        b->tok = t, b->cap_tok = cap;
    }
    buf_init(&b->tok[b->n_tok], TOK_MAX_TOKEN_BYTES);
    if (buf_append(&b->tok[b->n_tok], p, n))
        return AS_ENOMEM;
    b->n_tok++;
    return 0;
}

struct bpe_trainer *bpe_new(const char *pre, char *err, size_t errlen)
{
    struct bpe_trainer *b = calloc(1, sizeof *b);
    int ignore;
    if (!b)
        goto oom;
    if (tok__pre_from_name(pre, &b->pre, &ignore)) {
        snprintf(err, errlen, "unknown pre-tokenizer '%s'", pre);
        free(b);
        return NULL;
    }
    snprintf(b->pre_name, sizeof b->pre_name, "%s", pre);
    buf_init(&b->word_bytes, (size_t)1 << 32);
    for (int i = 0; i < 256; i++) {
        char c = (char)i;
        if (add_token(b, &c, 1))
            goto oom;
    }
    return b;
oom:
    snprintf(err, errlen, "out of memory");
    bpe_free(b);
    return NULL;
}

void bpe_free(struct bpe_trainer *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->n_words; i++)
        free(b->words[i].sym);
    free(b->words);
    free(b->word_off);
    u64map_free(&b->word_index);
    buf_free(&b->word_bytes);
    for (uint32_t i = 0; i < b->n_tok; i++)
        buf_free(&b->tok[i]);
    free(b->tok);
    free(b->merges);
    tok__scratch_free(&b->scratch);
    free(b);
}

static int add_word(struct bpe_trainer *b, const char *p, size_t n)
{
    if (n == 0)
        return 0;
    uint64_t h = hash_bytes(p, n) >> 1;
    for (;;) { /* linear probing over hash values resolves the rare full-hash collision */
        int added;
        uint64_t *v = u64map_get_or_add(&b->word_index, h, &added);
        if (!v)
            return AS_ENOMEM;
        if (!added) {
            struct word *w = &b->words[*v];
            size_t off = b->word_off[*v], len = b->word_off[*v + 1] - off;
            if (len == n && !memcmp(b->word_bytes.data + off, p, n)) {
                w->count++;
                return 0;
            }
            h = (h + 1) & (UINT64_MAX >> 1);
            continue;
        }
        if (b->n_words == b->cap_words) {
            size_t cap = b->cap_words ? b->cap_words * 2 : 1024;
            struct word *nw = realloc(b->words, cap * sizeof *nw);
            uint64_t *no = nw ? realloc(b->word_off, (cap + 1) * sizeof *no) : NULL;
            if (nw)
                b->words = nw;
            if (!no)
                return AS_ENOMEM;
            b->word_off = no, b->cap_words = cap;
        }
        struct word *w = &b->words[b->n_words];
        w->sym = malloc(n * sizeof *w->sym);
        if (!w->sym || buf_append(&b->word_bytes, p, n))
            return AS_ENOMEM;
        for (size_t i = 0; i < n; i++)
            w->sym[i] = (uint8_t)p[i];
        w->n = (uint32_t)n;
        w->count = 1;
        if (b->n_words == 0)
            b->word_off[0] = 0;
        *v = b->n_words++;
        b->word_off[b->n_words] = b->word_bytes.len;
        return 0;
    }
}

int bpe_add_text(struct bpe_trainer *b, const char *text, size_t len)
{
    const uint32_t *spans;
    size_t n;
    int rc = tok__pretok_split(b->pre, text, len, &b->scratch, &spans, &n);
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = add_word(b, text + spans[2 * i], spans[2 * i + 1]);
    return rc;
}

static uint64_t pair_key(int32_t l, int32_t r)
{
    return ((uint64_t)(uint32_t)l << 32) | (uint32_t)r;
}

/* Best pair by count; ties go to the pair whose merged bytes compare smallest. */
static int better(const struct bpe_trainer *b, uint64_t cnt, uint64_t key, uint64_t best_cnt,
                  uint64_t best_key)
{
    if (cnt != best_cnt)
        return cnt > best_cnt;
    const struct buf *l1 = &b->tok[key >> 32], *r1 = &b->tok[(uint32_t)key];
    const struct buf *l2 = &b->tok[best_key >> 32], *r2 = &b->tok[(uint32_t)best_key];
    int c = memcmp(l1->data, l2->data, l1->len < l2->len ? l1->len : l2->len);
    if (c || l1->len != l2->len)
        return c ? c < 0 : l1->len < l2->len;
    c = memcmp(r1->data, r2->data, r1->len < r2->len ? r1->len : r2->len);
    return c ? c < 0 : r1->len < r2->len;
}

int bpe_train(struct bpe_trainer *b, uint32_t vocab_size, const char *const *specials,
              uint32_t n_special, void (*progress)(uint32_t done, uint32_t total))
{
    if (vocab_size < 256 + n_special || vocab_size > TOK_MAX_VOCAB)
        return AS_EINVAL;
    uint32_t target = vocab_size - 256 - n_special;
    int rc = 0;
    b->merges = calloc(target ? target : 1, sizeof *b->merges);
    if (!b->merges)
        return AS_ENOMEM;
    struct u64map counts = {0};
    while (b->n_merge_tok < target) {
        /* count adjacent pairs over distinct words, weighted by occurrences */
        for (size_t i = 0; i < counts.cap; i++)
            counts.keys[i] = 0;
        counts.used = 0;
        for (size_t i = 0; i < b->n_words; i++) {
            const struct word *w = &b->words[i];
            for (uint32_t j = 0; j + 1 < w->n; j++) {
                int added;
                uint64_t *v =
                    u64map_get_or_add(&counts, pair_key(w->sym[j], w->sym[j + 1]), &added);
                if (!v) {
                    rc = AS_ENOMEM;
                    goto out;
                }
                *v += w->count;
            }
        }
        uint64_t best = 0, best_cnt = 0;
        for (size_t i = 0; i < counts.cap; i++)
            if (counts.keys[i] && better(b, counts.vals[i], counts.keys[i] - 1, best_cnt, best))
                best_cnt = counts.vals[i], best = counts.keys[i] - 1;
        if (best_cnt < 2)
            break;
        int32_t l = (int32_t)(best >> 32), r = (int32_t)(uint32_t)best, id = -1;
        struct buf merged;
        buf_init(&merged, TOK_MAX_TOKEN_BYTES);
        rc = buf_append(&merged, b->tok[l].data, b->tok[l].len) |
             buf_append(&merged, b->tok[r].data, b->tok[r].len);
        /* two segmentations can spell the same bytes: one token per spelling */
        for (uint32_t t = 256; !rc && t < b->n_tok; t++)
            if (b->tok[t].len == merged.len && !memcmp(b->tok[t].data, merged.data, merged.len))
                id = (int32_t)t;
        if (!rc && id < 0) {
            id = (int32_t)b->n_tok;
            rc = add_token(b, merged.data, merged.len);
        }
        buf_free(&merged);
        if (rc)
            goto out;
        b->merges[b->n_merge_tok][0] = l;
        b->merges[b->n_merge_tok][1] = r;
        b->n_merge_tok++;
        /* apply the merge in every word, left to right */
        for (size_t i = 0; i < b->n_words; i++) {
            struct word *w = &b->words[i];
            uint32_t o = 0;
            for (uint32_t j = 0; j < w->n; j++) {
                if (j + 1 < w->n && w->sym[j] == l && w->sym[j + 1] == r)
                    w->sym[o++] = id, j++;
                else
                    w->sym[o++] = w->sym[j];
            }
            w->n = o;
        }
        if (progress && (b->n_merge_tok % 64 == 0 || b->n_merge_tok == target))
            progress(b->n_merge_tok, target);
    }
    for (uint32_t i = 0; i < n_special; i++)
        if ((rc = add_token(b, specials[i], strlen(specials[i]))))
            goto out;
    b->n_special = n_special;
out:
    u64map_free(&counts);
    return rc;
}

uint32_t bpe_vocab_size(const struct bpe_trainer *b)
{
    return b->n_tok;
}

int32_t bpe_special_id(const struct bpe_trainer *b, const char *text)
{
    size_t n = strlen(text);
    for (uint32_t i = b->n_tok - b->n_special; i < b->n_tok; i++)
        if (b->tok[i].len == n && !memcmp(b->tok[i].data, text, n))
            return (int32_t)i;
    return -1;
}

/* Appends the GPT-2 byte-to-unicode spelling of raw token bytes as UTF-8. */
static int encode_bytes(struct buf *out, const struct buf *raw)
{
    for (size_t i = 0; i < raw->len; i++) {
        uint32_t cp = tok__byte_to_cpt((uint8_t)raw->data[i]);
        char u[3];
        int n;
        if (cp < 0x80)
            u[0] = (char)cp, n = 1;
        else
            u[0] = (char)(0xc0 | (cp >> 6)), u[1] = (char)(0x80 | (cp & 0x3f)), n = 2;
        if (buf_append(out, u, (size_t)n))
            return AS_ENOMEM;
    }
    return 0;
}

int bpe_write_gguf(const struct bpe_trainer *b, struct gguf_writer *w, const char *bos,
                   const char *eos, const char *chat_template)
{
    int rc = AS_ENOMEM;
    uint32_t n = b->n_tok;
    struct buf *enc = calloc(n, sizeof *enc);
    const char **toks = calloc(n, sizeof *toks);
    const char **merges = calloc(b->n_merge_tok ? b->n_merge_tok : 1, sizeof *merges);
    struct buf *mbuf = calloc(b->n_merge_tok ? b->n_merge_tok : 1, sizeof *mbuf);
    int32_t *types = calloc(n, sizeof *types);
    if (!enc || !toks || !merges || !mbuf || !types)
        goto out;
    uint32_t first_special = n - b->n_special;
    for (uint32_t i = 0; i < n; i++) {
        buf_init(&enc[i], TOK_MAX_TOKEN_BYTES * 2);
        if (i >= first_special ? buf_append(&enc[i], b->tok[i].data, b->tok[i].len)
                               : encode_bytes(&enc[i], &b->tok[i]))
            goto out;
        if (buf_append(&enc[i], "", 0))
            goto out;
        toks[i] = enc[i].data;
        types[i] = i >= first_special ? TOK_TT_CONTROL : TOK_TT_NORMAL;
    }
    for (uint32_t i = 0; i < b->n_merge_tok; i++) {
        buf_init(&mbuf[i], TOK_MAX_TOKEN_BYTES * 4);
        if (buf_printf(&mbuf[i], "%s %s", toks[b->merges[i][0]], toks[b->merges[i][1]]))
            goto out;
        merges[i] = mbuf[i].data;
    }
    rc = gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2") |
         gguf_writer_set_str(w, "tokenizer.ggml.pre", b->pre_name) |
         gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, n) |
         gguf_writer_set_arr_i32(w, "tokenizer.ggml.token_type", types, n) |
         gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", merges, b->n_merge_tok) |
         gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", 0);
    int32_t id;
    if (bos && (id = bpe_special_id(b, bos)) >= 0)
        rc |= gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)id);
    if (eos && (id = bpe_special_id(b, eos)) >= 0) {
        rc |= gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)id);
        rc |= gguf_writer_set_u32(w, "tokenizer.ggml.eot_token_id", (uint32_t)id);
        rc |= gguf_writer_set_u32(w, "tokenizer.ggml.padding_token_id", (uint32_t)id);
    }
    if (chat_template)
        rc |= gguf_writer_set_str(w, "tokenizer.chat_template", chat_template);
    rc = rc ? AS_ENOMEM : 0;
out:
    for (uint32_t i = 0; enc && i < n; i++)
        buf_free(&enc[i]);
    for (uint32_t i = 0; mbuf && i < b->n_merge_tok; i++)
        buf_free(&mbuf[i]);
    free(enc);
    free(toks);
    free(merges);
    free(mbuf);
    free(types);
    return rc;
}
