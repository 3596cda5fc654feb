/*
 * tokenizer.c - vocabulary construction (token map, merges, special tokens,
 * end-of-generation set) and accessors.
 *
 * Encoding is in tok_encode.c (special-token partitioning, drivers),
 * tok_spm.c and tok_bpe.c (merge loops), tok_pretok.c (pre-tokenizers);
 * decoding and the streaming detokenizer in tok_decode.c; GGUF loading in
 * tok_gguf.c. Behaviour follows llama.cpp's llama-vocab so that ids match it
 * exactly (see tests/unit/engine/test_tokenizer_vocab.c). Not for: reading
 * tokenizer files other than GGUF (see tok_convert.h).
 */
#include "engine/tokenizer.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/log.h"
#include "engine/tok_internal.h"

/* ---- small helpers ----------------------------------------------------------- */

uint32_t tok__hash(const char *p, size_t n)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h ^= (uint8_t)p[i];
        h *= 16777619u;
    }
    return h;
}

int tok__strmap_init(struct tok_strmap *m, uint32_t n_keys)
{
    uint32_t cap = 16;
    while (cap < 2u * n_keys + 2)
        cap *= 2;
    m->slots = calloc(cap, sizeof *m->slots);
    m->hashes = calloc(cap, sizeof *m->hashes);
    m->mask = cap - 1;
    if (!m->slots || !m->hashes) {
        tok__strmap_free(m);
        return AS_ENOMEM;
    }
    return 0;
}

void tok__strmap_free(struct tok_strmap *m)
{
    if (!m)
        return;
    free(m->slots);
    free(m->hashes);
    m->slots = NULL;
    m->hashes = NULL;
}

void tok__strmap_put(struct tok_strmap *m, const struct str *keys, uint32_t idx, int replace)
{
    const struct str *k = &keys[idx];
    uint32_t h = tok__hash(k->p, k->len);
    for (uint32_t i = h & m->mask;; i = (i + 1) & m->mask) {
        uint32_t s = m->slots[i];
        if (s == 0) {
            m->slots[i] = idx + 1;
            m->hashes[i] = h;
            return;
        }
        const struct str *o = &keys[s - 1];
        if (m->hashes[i] == h && o->len == k->len && !memcmp(o->p, k->p, k->len)) {
            if (replace)
                m->slots[i] = idx + 1;
            return;
        }
    }
}

int64_t tok__strmap_get(const struct tok_strmap *m, const struct str *keys, const char *p, size_t n)
{
    uint32_t h = tok__hash(p, n);
    for (uint32_t i = h & m->mask;; i = (i + 1) & m->mask) {
        uint32_t s = m->slots[i];
        if (s == 0)
            return -1;
        const struct str *o = &keys[s - 1];
        if (m->hashes[i] == h && o->len == n && !memcmp(o->p, p, n))
            return (int64_t)s - 1;
    }
}

int tok__grow(void **p, size_t *cap, size_t n, size_t sz)
{
    if (n <= *cap)
        return 0;
    size_t c = *cap ? *cap : 64;
    while (c < n)
        c *= 2;
    if (c > SIZE_MAX / sz)
        return AS_ENOMEM;
    void *q = realloc(*p, c * sz);
    if (!q)
        return AS_ENOMEM;
    *p = q;
    *cap = c;
    return 0;
}

void tok__scratch_free(struct tok_scratch *s)
{
    free(s->bytes);
    free(s->sym);
    free(s->heap);
    free(s->cpt);
    free(s->cflags);
    free(s->coff);
    free(s->spans[0]);
    free(s->spans[1]);
    memset(s, 0, sizeof *s);
}

void tok_ids_init(struct tok_ids *v, size_t max)
{
    memset(v, 0, sizeof *v);
    v->max = max;
}

void tok_ids_free(struct tok_ids *v)
{
    if (!v)
        return;
    free(v->ids);
    v->ids = NULL;
    v->n = v->cap = 0;
}

int tok_ids_push(struct tok_ids *v, int32_t id)
{
    if (v->max && v->n >= v->max)
        return AS_ENOMEM;
    if (v->n == v->cap && tok__grow((void **)&v->ids, &v->cap, v->n + 1, sizeof *v->ids))
        return AS_ENOMEM;
    v->ids[v->n++] = id;
    return 0;
}

/* ---- construction ------------------------------------------------------------ */

void tok__err(char *err, size_t errlen, const char *msg, const char *arg)
{
    if (err && errlen)
        snprintf(err, errlen, "tokenizer: %s%s%s", msg, arg ? " " : "", arg ? arg : "");
}

static int cmp_special(const void *a, const void *b, void *ctx)
{
    const struct tokenizer *t = ctx;
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    if (t->text[x].len != t->text[y].len)
        return t->text[x].len > t->text[y].len ? -1 : 1;
    return x < y ? -1 : x > y;
}

/*
 * Tokens llama.cpp recognises by their text: end-of-turn candidates (tok_eot,
 * preferred in this order) and the end-of-generation set. Found ones become
 * control tokens, as there.
 */
static const char *const eot_texts[] = {
    "<|eot_id|>",      "<|im_end|>", "<|end|>", "<end_of_turn>",         "<|endoftext|>",
    "<|end_of_text|>", "<EOT>",      "_<EOT>",  "<｜end▁of▁sentence｜>", "<end_of_utterance>",
};
static const char *const eog_texts[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>",         "<|return|>",         "<|call|>",
    "<|flush|>",  "<|calls|>",  "<end_of_turn>",   "<|endoftext|>",      "<|eom_id|>",
    "<EOT>",      "_<EOT>",     "<|end_of_text|>", "<end_of_utterance>",
};

static int str_contains_ci(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (; *hay; hay++) {
        size_t i = 0;
        while (i < n && hay[i] && tolower((unsigned char)hay[i]) == needle[i])
            i++;
        if (i == n)
            return 1;
    }
    return 0;
}

static int find_text(const struct tokenizer *t, const char *s)
{
    int64_t id = tok__strmap_get(&t->tokmap, t->text, s, strlen(s));
    return (int)id;
}

/* The byte trie over the specials' texts (see tok_encode.c). */
static int build_trie(struct tokenizer *t)
{
    size_t total = 1;
    for (uint32_t i = 0; i < t->n_special; i++) {
        total += t->text[t->special[i]].len;
        if (t->text[t->special[i]].len > t->max_special_len)
            t->max_special_len = t->text[t->special[i]].len;
    }
    uint32_t cap = 16;
    while (cap < 2 * total)
        cap *= 2;
    t->trie_mask = cap - 1;
    t->trie_term = calloc(total, 1);
    t->trie_keys = calloc(cap, sizeof *t->trie_keys);
    t->trie_child = calloc(cap, sizeof *t->trie_child);
    t->special_node = calloc(t->n_special ? t->n_special : 1, sizeof *t->special_node);
    if (!t->trie_term || !t->trie_keys || !t->trie_child || !t->special_node)
        return AS_ENOMEM;
    t->trie_nodes = 1;
    for (uint32_t i = 0; i < t->n_special; i++) {
        struct str x = t->text[t->special[i]];
        uint32_t node = 0;
        for (size_t k = 0; k < x.len; k++) {
            uint32_t child = tok__trie_child(t, node, (uint8_t)x.p[k]);
            if (!child) {
                uint64_t key = ((uint64_t)node << 8 | (uint8_t)x.p[k]) + 1;
                uint32_t j = (uint32_t)((key * 0x9E3779B97F4A7C15ull) >> 32) & t->trie_mask;
                while (t->trie_keys[j])
                    j = (j + 1) & t->trie_mask;
                child = t->trie_nodes++;
                t->trie_keys[j] = key;
                t->trie_child[j] = child;
            }
            node = child;
        }
        t->trie_term[node] = 1;
        t->special_node[i] = node;
    }
    return 0;
}

static int build_specials(struct tokenizer *t, const char *name)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < t->n_vocab; i++) {
        uint8_t ty = t->type[i];
        if ((ty == TOK_TT_CONTROL || ty == TOK_TT_USER_DEFINED || ty == TOK_TT_UNKNOWN) &&
            t->text[i].len > 0)
            n++;
    }
    t->special = malloc((n ? n : 1) * sizeof *t->special);
    if (!t->special)
        return AS_ENOMEM;
    for (uint32_t i = 0; i < t->n_vocab; i++) {
        uint8_t ty = t->type[i];
        if ((ty == TOK_TT_CONTROL || ty == TOK_TT_USER_DEFINED || ty == TOK_TT_UNKNOWN) &&
            t->text[i].len > 0)
            t->special[t->n_special++] = (int32_t)i;
    }
    qsort_r(t->special, t->n_special, sizeof *t->special, cmp_special, t);
    if (build_trie(t))
        return AS_ENOMEM;

    /* llama.cpp: Phi-3 strips whitespace after its special tokens */
    if (name && (str_contains_ci(name, "phi-3") || str_contains_ci(name, "phi3"))) {
        for (uint32_t i = 0; i < t->n_special; i++)
            t->attr[t->special[i]] |= TOK_ATTR_RSTRIP;
        int id = find_text(t, "</s>");
        if (id >= 0)
            t->attr[id] |= TOK_ATTR_RSTRIP;
        static const char *const keep[] = {"<unk>", "<s>", "<|endoftext|>"};
        for (size_t k = 0; k < sizeof keep / sizeof keep[0]; k++)
            if ((id = find_text(t, keep[k])) >= 0)
                t->attr[id] &= (uint8_t)~TOK_ATTR_RSTRIP;
    }
    return 0;
}

/* Marks id as ending generation; found by text, it also becomes a control token. */
static void mark_eog(struct tokenizer *t, int id)
{
    t->eog[id] = 1;
    t->type[id] = TOK_TT_CONTROL;
}

/* Runs before build_specials(): it may turn tokens into control tokens. */
static void build_eog(struct tokenizer *t)
{
    int id;
    for (size_t k = 0; k < sizeof eot_texts / sizeof eot_texts[0] && t->eot < 0; k++)
        if ((id = find_text(t, eot_texts[k])) >= 0)
            mark_eog(t, t->eot = id);
    if (t->eom < 0 && (id = find_text(t, "<|eom_id|>")) >= 0)
        mark_eog(t, t->eom = id);
    for (size_t k = 0; k < sizeof eog_texts / sizeof eog_texts[0]; k++)
        if ((id = find_text(t, eog_texts[k])) >= 0)
            mark_eog(t, id);
    if (tok__valid_id(t, t->eos))
        t->eog[t->eos] = 1;
    if (tok__valid_id(t, t->eot))
        t->eog[t->eot] = 1;
    if (tok__valid_id(t, t->eom))
        t->eog[t->eom] = 1;
}

static int load_merges(struct tokenizer *t, const struct tok_vocab_desc *d, char *err,
                       size_t errlen)
{
    size_t total = 0;
    if (d->n_merges > TOK_MAX_MERGES) {
        tok__err(err, errlen, "too many merges", NULL);
        return AS_ERANGE;
    }
    for (uint32_t i = 0; i < d->n_merges; i++) {
        if (d->merges[i].len > TOK_MAX_TOKEN_BYTES * 2) {
            tok__err(err, errlen, "merge too long", NULL);
            return AS_ERANGE;
        }
        total += d->merges[i].len;
    }
    t->n_merges = d->n_merges;
    t->merge = calloc(d->n_merges ? d->n_merges : 1, sizeof *t->merge);
    t->merge_split = calloc(d->n_merges ? d->n_merges : 1, sizeof *t->merge_split);
    t->merge_blob = malloc(total ? total : 1);
    if (!t->merge || !t->merge_split || !t->merge_blob ||
        tok__strmap_init(&t->mergemap, d->n_merges))
        return AS_ENOMEM;
    char *p = t->merge_blob;
    for (uint32_t i = 0; i < d->n_merges; i++) {
        struct str m = d->merges[i];
        memcpy(p, m.p, m.len);
        t->merge[i] = (struct str){p, m.len};
        p += m.len;
        /* llama.cpp splits at the first space after the first byte */
        const char *sp = m.len > 1 ? memchr(m.p + 1, ' ', m.len - 1) : NULL;
        if (!sp) {
            t->merge_split[i] = UINT32_MAX; /* unusable, never matches */
            continue;
        }
        t->merge_split[i] = (uint32_t)(sp - m.p);
        if (m.len > t->max_merge_len)
            t->max_merge_len = m.len;
        tok__strmap_put(&t->mergemap, t->merge, i, 0); /* first rank wins */
    }
    return 0;
}

struct tokenizer *tok_new(const struct tok_vocab_desc *d, char *err, size_t errlen)
{
    struct tokenizer *t = NULL;
    int rc = AS_ENOMEM;
    if (!d || !d->model || !d->tokens || d->n_tokens == 0) {
        tok__err(err, errlen, "no vocabulary", NULL);
        return NULL;
    }
    if (d->n_tokens > TOK_MAX_VOCAB) {
        tok__err(err, errlen, "vocabulary too large", NULL);
        return NULL;
    }
    t = calloc(1, sizeof *t);
    if (!t)
        goto oom;
    if (!strcmp(d->model, "llama")) {
        t->model = TOK_MODEL_SPM;
    } else if (!strcmp(d->model, "gpt2")) {
        t->model = TOK_MODEL_BPE;
    } else {
        tok__err(err, errlen, "unsupported tokenizer model", d->model);
        goto fail;
    }
    if (t->model == TOK_MODEL_BPE) {
        const char *pre = d->pre && *d->pre ? d->pre : "default";
        if (tok__pre_from_name(pre, &t->pre, &t->ignore_merges)) {
            /* as llama.cpp: an unknown pre-tokenizer falls back to the default regexes */
            log_warn("unknown tokenizer pre-tokenizer, using default", "pre=%s", pre);
            t->pre = TOK_PRE_DEFAULT;
            t->ignore_merges = 0;
        }
    }
    t->n_vocab = d->n_tokens;
    size_t total = 0;
    for (uint32_t i = 0; i < d->n_tokens; i++) {
        if (d->tokens[i].len > TOK_MAX_TOKEN_BYTES) {
            tok__err(err, errlen, "token too long", NULL);
            goto fail;
        }
        total += d->tokens[i].len;
    }
    t->text = calloc(t->n_vocab, sizeof *t->text);
    t->score = calloc(t->n_vocab, sizeof *t->score);
    t->type = calloc(t->n_vocab, 1);
    t->attr = calloc(t->n_vocab, 1);
    t->eog = calloc(t->n_vocab, 1);
    t->blob = malloc(total ? total : 1);
    if (!t->text || !t->score || !t->type || !t->attr || !t->eog || !t->blob)
        goto oom;
    if (tok__strmap_init(&t->tokmap, t->n_vocab))
        goto oom;
    char *p = t->blob;
    for (uint32_t i = 0; i < t->n_vocab; i++) {
        struct str s = d->tokens[i];
        if (s.len)
            memcpy(p, s.p, s.len);
        t->text[i] = (struct str){p, s.len};
        p += s.len;
        t->score[i] = d->scores ? d->scores[i] : 0.0f;
        int32_t ty = d->types ? d->types[i] : TOK_TT_NORMAL;
        t->type[i] = (uint8_t)(ty >= 0 && ty <= TOK_TT_BYTE ? ty : TOK_TT_UNDEFINED);
        if (s.len > t->max_token_len)
            t->max_token_len = s.len;
        if (s.len)
            tok__strmap_put(&t->tokmap, t->text, i, 1); /* last id wins, as in llama.cpp */
    }

    for (int b = 0; b < 256; b++)
        t->byte_tok[b] = -1;
    if (t->model == TOK_MODEL_SPM) {
        t->spm_word_split = 1;
        for (uint32_t i = 0; i < t->n_vocab && t->spm_word_split; i++) {
            struct str x = t->text[i];
            size_t k = 0;
            while (k + 3 <= x.len && !memcmp(x.p + k, "\xE2\x96\x81", 3))
                k += 3;
            if (x.len - k >= 3 && memmem(x.p + k, x.len - k, "\xE2\x96\x81", 3))
                t->spm_word_split = 0;
        }
        for (int b = 0; b < 256; b++) {
            char name[8];
            snprintf(name, sizeof name, "<0x%02X>", b);
            t->byte_tok[b] = (int32_t)tok__strmap_get(&t->tokmap, t->text, name, 6);
        }
        for (int b = 0; b < 256; b++) { /* fall back to the byte itself as a token */
            char c = (char)b;
            if (t->byte_tok[b] < 0)
                t->byte_tok[b] = (int32_t)tok__strmap_get(&t->tokmap, t->text, &c, 1);
        }
    } else {
        for (int b = 0; b < 256; b++) {
            char c = (char)b;
            t->byte_tok[b] = (int32_t)tok__strmap_get(&t->tokmap, t->text, &c, 1);
        }
        if (d->n_merges && !d->merges) {
            tok__err(err, errlen, "merges missing", NULL);
            goto fail;
        }
        if ((rc = load_merges(t, d, err, errlen)))
            goto fail;
    }

    /* special ids: model defaults as in llama.cpp, overridden by the metadata */
    int spm = t->model == TOK_MODEL_SPM;
    t->bos = d->bos >= 0 ? d->bos : spm ? 1 : 11;
    t->eos = d->eos >= 0 ? d->eos : spm ? 2 : 11;
    t->unk = d->unk >= 0 ? d->unk : spm ? 0 : -1;
    t->pad = d->pad;
    t->eot = d->eot;
    t->eom = d->eom;
    if (!tok__valid_id(t, t->bos))
        t->bos = -1;
    if (!tok__valid_id(t, t->eos))
        t->eos = -1;
    if (!tok__valid_id(t, t->unk))
        t->unk = -1;
    if (!tok__valid_id(t, t->pad))
        t->pad = -1;
    if (!tok__valid_id(t, t->eot))
        t->eot = -1;
    if (!tok__valid_id(t, t->eom))
        t->eom = -1;
    t->add_space_prefix = d->add_space_prefix >= 0 ? d->add_space_prefix : spm;
    t->add_bos = d->add_bos >= 0 ? d->add_bos : spm || t->pre == TOK_PRE_LLAMA3;
    t->add_eos = d->add_eos >= 0 ? d->add_eos : 0;
    if (t->add_bos && t->bos < 0)
        t->add_bos = 0;
    if (t->add_eos && t->eos < 0)
        t->add_eos = 0;
    build_eog(t);
    if (build_specials(t, d->name))
        goto oom;
    t->chat_template = malloc(d->chat_template.len + 1);
    if (!t->chat_template)
        goto oom;
    if (d->chat_template.len)
        memcpy(t->chat_template, d->chat_template.p, d->chat_template.len);
    t->chat_template[d->chat_template.len] = 0;
    t->chat_template_len = d->chat_template.len;
    return t;
oom:
    tok__err(err, errlen, "out of memory", NULL);
fail:
    (void)rc;
    tok_free(t);
    return NULL;
}

void tok_free(struct tokenizer *t)
{
    if (!t)
        return;
    free(t->text);
    free(t->score);
    free(t->type);
    free(t->attr);
    free(t->eog);
    free(t->blob);
    tok__strmap_free(&t->tokmap);
    free(t->merge);
    free(t->merge_split);
    free(t->merge_blob);
    tok__strmap_free(&t->mergemap);
    free(t->special);
    free(t->trie_term);
    free(t->trie_keys);
    free(t->trie_child);
    free(t->special_node);
    free(t->chat_template);
    free(t);
}

/* ---- accessors ---------------------------------------------------------------- */

enum tok_model tok_model(const struct tokenizer *t)
{
    return t->model;
}
uint32_t tok_n_vocab(const struct tokenizer *t)
{
    return t->n_vocab;
}
int32_t tok_bos(const struct tokenizer *t)
{
    return t->bos;
}
int32_t tok_eos(const struct tokenizer *t)
{
    return t->eos;
}
int32_t tok_eot(const struct tokenizer *t)
{
    return t->eot;
}
int32_t tok_unk(const struct tokenizer *t)
{
    return t->unk;
}
int32_t tok_pad(const struct tokenizer *t)
{
    return t->pad;
}
int tok_add_bos(const struct tokenizer *t)
{
    return t->add_bos;
}
int tok_add_eos(const struct tokenizer *t)
{
    return t->add_eos;
}

int tok_is_eog(const struct tokenizer *t, int32_t id)
{
    return tok__valid_id(t, id) && t->eog[id];
}

int tok_is_control(const struct tokenizer *t, int32_t id)
{
    return tok__valid_id(t, id) && (t->type[id] == TOK_TT_CONTROL || t->type[id] == TOK_TT_UNKNOWN);
}

struct str tok_token_text(const struct tokenizer *t, int32_t id)
{
    if (!tok__valid_id(t, id))
        return (struct str){"", 0};
    return t->text[id];
}

enum tok_token_type tok_token_type(const struct tokenizer *t, int32_t id)
{
    return tok__valid_id(t, id) ? (enum tok_token_type)t->type[id] : TOK_TT_UNDEFINED;
}

int32_t tok_lookup(const struct tokenizer *t, const char *s, size_t len)
{
    return (int32_t)tok__strmap_get(&t->tokmap, t->text, s, len);
}

struct str tok_chat_template(const struct tokenizer *t)
{
    return (struct str){t->chat_template, t->chat_template_len};
}
