/*
 * tokenizer.c - vocabulary loading, special-token partitioning, encode/decode
 * drivers and the streaming detokenizer.
 *
 * The model-specific merge loops live in tok_spm.c and tok_bpe.c, the regex
 * pre-tokenizers in tok_pretok.c. Behaviour follows llama.cpp's llama-vocab so
 * that ids match it exactly (see tests/unit/engine/test_tokenizer_vocab.c).
 * Not for: reading tokenizer files other than GGUF (see tok_convert.c).
 */
#include "engine/tokenizer.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "engine/gguf.h"
#include "engine/tok_internal.h"
#include "engine/tok_unicode.h"

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

static void set_err(char *err, size_t errlen, const char *msg, const char *arg)
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

static int valid_id(const struct tokenizer *t, int32_t id)
{
    return id >= 0 && (uint32_t)id < t->n_vocab;
}

/* Tokens that end a turn by their text, as llama.cpp recognises them. */
static const char *const eot_texts[] = {
    "<|eot_id|>",      "<|im_end|>", "<|end|>", "<end_of_turn>",
    "<|endoftext|>",   "<EOT>",      "_<EOT>",  "<｜end▁of▁sentence｜>",
    "<|end_of_text|>", "<|eom_id|>", "</s>",
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

static void build_eog(struct tokenizer *t)
{
    for (size_t k = 0; k < sizeof eot_texts / sizeof eot_texts[0]; k++) {
        int id = find_text(t, eot_texts[k]);
        if (id < 0 || (t->type[id] != TOK_TT_CONTROL && t->type[id] != TOK_TT_USER_DEFINED))
            continue;
        if (!strcmp(eot_texts[k], "</s>") && id != t->eos)
            continue;
        t->eog[id] = 1;
        if (t->eot < 0 && strcmp(eot_texts[k], "<|endoftext|>") && strcmp(eot_texts[k], "</s>") &&
            strcmp(eot_texts[k], "<|end_of_text|>") && strcmp(eot_texts[k], "<|eom_id|>"))
            t->eot = id;
        if (t->eom < 0 && !strcmp(eot_texts[k], "<|eom_id|>"))
            t->eom = id;
    }
    if (valid_id(t, t->eos))
        t->eog[t->eos] = 1;
    if (valid_id(t, t->eot))
        t->eog[t->eot] = 1;
    if (valid_id(t, t->eom))
        t->eog[t->eom] = 1;
}

static int parse_byte_token(struct str s)
{
    static const char hex[] = "0123456789ABCDEF";
    if (s.len != 6 || memcmp(s.p, "<0x", 3) || s.p[5] != '>')
        return -1;
    const char *a = strchr(hex, toupper((unsigned char)s.p[3]));
    const char *b = strchr(hex, toupper((unsigned char)s.p[4]));
    if (!a || !b || !*a || !*b)
        return -1;
    return (int)((a - hex) * 16 + (b - hex));
}

static int load_merges(struct tokenizer *t, const struct tok_vocab_desc *d, char *err,
                       size_t errlen)
{
    size_t total = 0;
    if (d->n_merges > TOK_MAX_MERGES) {
        set_err(err, errlen, "too many merges", NULL);
        return AS_ERANGE;
    }
    for (uint32_t i = 0; i < d->n_merges; i++) {
        if (d->merges[i].len > TOK_MAX_TOKEN_BYTES * 2) {
            set_err(err, errlen, "merge too long", NULL);
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
        set_err(err, errlen, "no vocabulary", NULL);
        return NULL;
    }
    if (d->n_tokens > TOK_MAX_VOCAB) {
        set_err(err, errlen, "vocabulary too large", NULL);
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
        set_err(err, errlen, "unsupported tokenizer model", d->model);
        goto fail;
    }
    if (t->model == TOK_MODEL_BPE) {
        const char *pre = d->pre && *d->pre ? d->pre : "default";
        if (tok__pre_from_name(pre, &t->pre, &t->ignore_merges)) {
            set_err(err, errlen, "unsupported pre-tokenizer", pre);
            goto fail;
        }
    }
    t->n_vocab = d->n_tokens;
    size_t total = 0;
    for (uint32_t i = 0; i < d->n_tokens; i++) {
        if (d->tokens[i].len > TOK_MAX_TOKEN_BYTES) {
            set_err(err, errlen, "token too long", NULL);
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
            set_err(err, errlen, "merges missing", NULL);
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
    if (!valid_id(t, t->bos))
        t->bos = -1;
    if (!valid_id(t, t->eos))
        t->eos = -1;
    if (!valid_id(t, t->unk))
        t->unk = -1;
    if (!valid_id(t, t->pad))
        t->pad = -1;
    if (!valid_id(t, t->eot))
        t->eot = -1;
    if (!valid_id(t, t->eom))
        t->eom = -1;
    t->add_space_prefix = d->add_space_prefix >= 0 ? d->add_space_prefix : spm;
    t->add_bos = d->add_bos >= 0 ? d->add_bos : spm || t->pre == TOK_PRE_LLAMA3;
    t->add_eos = d->add_eos >= 0 ? d->add_eos : 0;
    if (t->add_bos && t->bos < 0)
        t->add_bos = 0;
    if (t->add_eos && t->eos < 0)
        t->add_eos = 0;
    if (build_specials(t, d->name))
        goto oom;
    build_eog(t);
    t->chat_template = malloc(d->chat_template.len + 1);
    if (!t->chat_template)
        goto oom;
    if (d->chat_template.len)
        memcpy(t->chat_template, d->chat_template.p, d->chat_template.len);
    t->chat_template[d->chat_template.len] = 0;
    t->chat_template_len = d->chat_template.len;
    return t;
oom:
    set_err(err, errlen, "out of memory", NULL);
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
    free(t->chat_template);
    free(t);
}

/* ---- encoding ---------------------------------------------------------------- */

/* A piece of the input: raw text (id < 0) or an already matched special token. */
struct frag {
    int32_t id;
    uint32_t off, len;
};

struct frags {
    struct frag *v;
    size_t n, cap;
};

static int frags_push(struct frags *f, int32_t id, size_t off, size_t len)
{
    if (tok__grow((void **)&f->v, &f->cap, f->n + 1, sizeof *f->v))
        return AS_ENOMEM;
    f->v[f->n++] = (struct frag){id, (uint32_t)off, (uint32_t)len};
    return 0;
}

/*
 * llama.cpp's tokenizer_st_partition: for each special token, longest first,
 * split every raw fragment at each of its occurrences. Done in the same order
 * so that overlapping specials resolve the same way.
 */
static int partition(const struct tokenizer *t, const char *text, size_t len, int parse_special,
                     struct frags *cur)
{
    struct frags next = {0};
    int rc = 0;
    uint8_t *pairs = NULL; /* which byte pairs occur: skips specials that cannot match */
    cur->n = 0;
    if ((rc = frags_push(cur, -1, 0, len)))
        goto out;
    if (t->n_special == 0 || len == 0)
        goto out;
    pairs = calloc(65536 / 8, 1);
    uint8_t single[32] = {0};
    if (!pairs) {
        rc = AS_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < len; i++) {
        uint8_t a = (uint8_t)text[i];
        single[a >> 3] |= (uint8_t)(1u << (a & 7));
        if (i + 1 < len) {
            unsigned k = (unsigned)a << 8 | (uint8_t)text[i + 1];
            pairs[k >> 3] |= (uint8_t)(1u << (k & 7));
        }
    }
    for (uint32_t si = 0; si < t->n_special; si++) {
        int32_t id = t->special[si];
        uint8_t ty = t->type[id];
        if (!parse_special && (ty == TOK_TT_CONTROL || ty == TOK_TT_UNKNOWN))
            continue;
        struct str sp = t->text[id];
        if (sp.len > len)
            continue;
        uint8_t a = (uint8_t)sp.p[0];
        if (sp.len == 1 && !(single[a >> 3] & (1u << (a & 7))))
            continue;
        if (sp.len > 1) {
            unsigned k = (unsigned)a << 8 | (uint8_t)sp.p[1];
            if (!(pairs[k >> 3] & (1u << (k & 7))))
                continue;
        }
        int found = 0;
        next.n = 0;
        for (size_t fi = 0; fi < cur->n; fi++) {
            struct frag f = cur->v[fi];
            if (f.id >= 0) {
                if ((rc = frags_push(&next, f.id, f.off, f.len)))
                    goto out;
                continue;
            }
            size_t off = f.off, flen = f.len;
            while (flen > 0) {
                const char *m = memmem(text + off, flen, sp.p, sp.len);
                if (!m) {
                    if ((rc = frags_push(&next, -1, off, flen)))
                        goto out;
                    break;
                }
                found = 1;
                size_t mpos = (size_t)(m - text);
                size_t left = mpos - off;
                if (t->attr[id] & TOK_ATTR_LSTRIP)
                    while (left > 0 && isspace((unsigned char)text[off + left - 1]))
                        left--;
                if (left > 0 && (rc = frags_push(&next, -1, off, left)))
                    goto out;
                if ((rc = frags_push(&next, id, mpos, sp.len)))
                    goto out;
                size_t roff = mpos + sp.len, rlen = off + flen - roff;
                if (t->attr[id] & TOK_ATTR_RSTRIP)
                    while (rlen > 0 && isspace((unsigned char)text[roff])) {
                        roff++;
                        rlen--;
                    }
                off = roff;
                flen = rlen;
            }
        }
        if (found) {
            struct frags tmp = *cur;
            *cur = next;
            next = tmp;
        }
    }
out:
    free(pairs);
    free(next.v);
    return rc;
}

/* SPM: escape spaces as "▁", with the leading space llama.cpp adds after specials. */
static int spm_fragment(const struct tokenizer *t, const char *p, size_t n, int prefix,
                        struct tok_scratch *s, struct tok_ids *out)
{
    size_t spaces = prefix ? 1 : 0;
    for (size_t i = 0; i < n; i++)
        spaces += p[i] == ' ';
    size_t need = n + spaces * 2 + (prefix ? 1 : 0) + 1;
    if (tok__grow((void **)&s->bytes, &s->bytes_cap, need, 1))
        return AS_ENOMEM;
    char *q = s->bytes;
    if (prefix) {
        memcpy(q, "\xE2\x96\x81", 3);
        q += 3;
    }
    for (size_t i = 0; i < n; i++) {
        if (p[i] == ' ') {
            memcpy(q, "\xE2\x96\x81", 3);
            q += 3;
        } else {
            *q++ = p[i];
        }
    }
    return tok__spm_encode(t, s->bytes, (size_t)(q - s->bytes), s, out);
}

int tok_encode(const struct tokenizer *t, const char *text, size_t len, unsigned flags,
               struct tok_ids *out)
{
    struct frags fr = {0};
    struct tok_scratch s = {0};
    int rc = 0;
    int add_special = (flags & TOK_ENCODE_ADD_SPECIAL) != 0;
    if (len > UINT32_MAX / 4)
        return AS_ERANGE;
    if (add_special && t->add_bos && (rc = tok_ids_push(out, t->bos)))
        goto out;
    if (len > 0 && (rc = partition(t, text, len, (flags & TOK_ENCODE_PARSE_SPECIAL) != 0, &fr)))
        goto out;
    int prev_special = 1;
    for (size_t i = 0; i < fr.n; i++) {
        struct frag f = fr.v[i];
        if (f.id >= 0) {
            if ((rc = tok_ids_push(out, f.id)))
                goto out;
            prev_special = 1;
            continue;
        }
        if (t->model == TOK_MODEL_SPM)
            rc = spm_fragment(t, text + f.off, f.len, t->add_space_prefix && prev_special, &s, out);
        else
            rc = tok__bpe_encode(t, text + f.off, f.len, &s, out);
        if (rc)
            goto out;
        prev_special = 0;
    }
    if (add_special && t->add_eos && (rc = tok_ids_push(out, t->eos)))
        goto out;
out:
    free(fr.v);
    tok__scratch_free(&s);
    return rc;
}

/* ---- decoding ---------------------------------------------------------------- */

static int is_special_type(uint8_t ty)
{
    return ty == TOK_TT_CONTROL || ty == TOK_TT_USER_DEFINED || ty == TOK_TT_UNKNOWN;
}

/* Appends a token's text; *strip asks to drop one leading space (SPM prefix). */
static int piece(const struct tokenizer *t, int32_t id, unsigned flags, int strip, struct buf *out)
{
    if (!valid_id(t, id))
        return AS_EINVAL;
    uint8_t ty = t->type[id];
    struct str s = t->text[id];
    if ((ty == TOK_TT_CONTROL || ty == TOK_TT_UNKNOWN) && !(flags & TOK_DECODE_SPECIAL))
        return 0;
    if (is_special_type(ty))
        return buf_append(out, s.p, s.len);
    if (t->model == TOK_MODEL_SPM) {
        if (ty == TOK_TT_BYTE) {
            int b = parse_byte_token(s);
            char c = (char)b;
            return b < 0 ? 0 : buf_append(out, &c, 1);
        }
        if (ty != TOK_TT_NORMAL)
            return 0;
        size_t i = 0;
        if (strip && s.len >= 3 && !memcmp(s.p, "\xE2\x96\x81", 3))
            i = 3;
        while (i < s.len) {
            const char *m = s.len - i >= 3 ? memmem(s.p + i, s.len - i, "\xE2\x96\x81", 3) : NULL;
            size_t run = m ? (size_t)(m - (s.p + i)) : s.len - i;
            int rc = buf_append(out, s.p + i, run);
            if (rc)
                return rc;
            i += run;
            if (m) {
                if ((rc = buf_append_char(out, ' ')))
                    return rc;
                i += 3;
            }
        }
        return 0;
    }
    if (ty != TOK_TT_NORMAL)
        return 0;
    const uint8_t *p = (const uint8_t *)s.p;
    size_t i = 0;
    while (i < s.len) {
        uint32_t cp;
        size_t n = tok_utf8_decode(p + i, s.len - i, &cp);
        int b = n > 1 || cp < 0x80 ? tok__cpt_to_byte(cp) : -1;
        int rc;
        if (b >= 0) {
            char c = (char)b;
            rc = buf_append(out, &c, 1);
        } else {
            rc = buf_append(out, p + i, n); /* not of the byte alphabet: keep as is */
        }
        if (rc)
            return rc;
        i += n;
    }
    return 0;
}

int tok_piece(const struct tokenizer *t, int32_t id, unsigned flags, struct buf *out)
{
    return piece(t, id, flags, 0, out);
}

/* Whether the next text piece starts with the space the SPM encoder added. */
static int strip_after(const struct tokenizer *t, unsigned flags, int32_t id, int cur)
{
    if (!(flags & TOK_DECODE_STRIP_SPACE) || t->model != TOK_MODEL_SPM || !t->add_space_prefix)
        return 0;
    if (!valid_id(t, id))
        return cur;
    if (is_special_type(t->type[id]))
        return 1;
    return 0;
}

int tok_decode(const struct tokenizer *t, const int32_t *ids, size_t n, unsigned flags,
               struct buf *out)
{
    int strip =
        (flags & TOK_DECODE_STRIP_SPACE) && t->model == TOK_MODEL_SPM && t->add_space_prefix;
    for (size_t i = 0; i < n; i++) {
        int rc = piece(t, ids[i], flags, strip, out);
        if (rc)
            return rc;
        strip = strip_after(t, flags, ids[i], strip);
    }
    return 0;
}

void tok_stream_init(struct tok_stream *s, const struct tokenizer *t, unsigned flags)
{
    memset(s, 0, sizeof *s);
    s->t = t;
    s->flags = flags;
    s->after_special =
        (flags & TOK_DECODE_STRIP_SPACE) && t->model == TOK_MODEL_SPM && t->add_space_prefix;
}

/* Bytes at the end of p[0..n) that start a UTF-8 character still missing bytes. */
static size_t incomplete_tail(const uint8_t *p, size_t n)
{
    for (size_t k = 1; k <= 3 && k <= n; k++) {
        uint8_t c = p[n - k];
        if ((c & 0xC0) == 0x80)
            continue; /* continuation byte: look further back */
        size_t need = c >= 0xF0 && c <= 0xF7  ? 4
                      : c >= 0xE0 && c < 0xF0 ? 3
                      : c >= 0xC0 && c < 0xE0 ? 2
                                              : 1;
        return need > k ? k : 0;
    }
    return 0;
}

int tok_stream_push(struct tok_stream *s, int32_t id, struct buf *out)
{
    size_t start = out->len;
    int rc;
    if (!valid_id(s->t, id))
        return AS_EINVAL;
    if ((rc = buf_append(out, s->pend, s->npend)) ||
        (rc = piece(s->t, id, s->flags, s->after_special, out))) {
        out->len = start; /* the held-back bytes stay in s->pend */
        if (out->data)
            out->data[start] = 0;
        return rc;
    }
    s->npend = 0;
    s->after_special = strip_after(s->t, s->flags, id, s->after_special);
    if (out->len == start)
        return 0;
    size_t tail = incomplete_tail((const uint8_t *)out->data + start, out->len - start);
    memcpy(s->pend, out->data + out->len - tail, tail);
    s->npend = tail;
    out->len -= tail;
    out->data[out->len] = 0;
    return 0;
}

int tok_stream_flush(struct tok_stream *s, struct buf *out)
{
    int rc = buf_append(out, s->pend, s->npend);
    s->npend = 0;
    return rc;
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
    return valid_id(t, id) && t->eog[id];
}

int tok_is_control(const struct tokenizer *t, int32_t id)
{
    return valid_id(t, id) && (t->type[id] == TOK_TT_CONTROL || t->type[id] == TOK_TT_UNKNOWN);
}

struct str tok_token_text(const struct tokenizer *t, int32_t id)
{
    if (!valid_id(t, id))
        return (struct str){"", 0};
    return t->text[id];
}

enum tok_token_type tok_token_type(const struct tokenizer *t, int32_t id)
{
    return valid_id(t, id) ? (enum tok_token_type)t->type[id] : TOK_TT_UNDEFINED;
}

int32_t tok_lookup(const struct tokenizer *t, const char *s, size_t len)
{
    return (int32_t)tok__strmap_get(&t->tokmap, t->text, s, len);
}

struct str tok_chat_template(const struct tokenizer *t)
{
    return (struct str){t->chat_template, t->chat_template_len};
}

/* ---- GGUF -------------------------------------------------------------------- */

static int get_id(const struct gguf_file *f, const char *key, int32_t *out)
{
    uint32_t v;
    *out = -1;
    if (gguf_get_u32(f, key, &v) == 0 && v < TOK_MAX_VOCAB)
        *out = (int32_t)v;
    return 0;
}

static int get_flag(const struct gguf_file *f, const char *key)
{
    int v;
    return gguf_get_bool(f, key, &v) == 0 ? (v != 0) : -1;
}

static char *str_dup(struct str s)
{
    char *p = malloc(s.len + 1);
    if (p) {
        memcpy(p, s.p, s.len);
        p[s.len] = 0;
    }
    return p;
}

struct tokenizer *tok_new_from_gguf(const struct gguf_file *f, char *err, size_t errlen)
{
    struct tokenizer *t = NULL;
    struct tok_vocab_desc d = {0};
    struct str *tokens = NULL, *merges = NULL;
    float *scores = NULL;
    int32_t *types = NULL;
    char *model = NULL, *pre = NULL, *name = NULL;
    struct str s;

    if (gguf_get_str(f, "tokenizer.ggml.model", &s)) {
        set_err(err, errlen, "tokenizer.ggml.model missing", NULL);
        goto out;
    }
    model = str_dup(s);
    if (gguf_get_str(f, "tokenizer.ggml.pre", &s) == 0)
        pre = str_dup(s);
    if (gguf_get_str(f, "general.name", &s) == 0)
        name = str_dup(s);
    const struct gguf_kv *kt = gguf_find_kv(f, "tokenizer.ggml.tokens");
    if (!model || !kt || kt->type != GGUF_VT_ARRAY || kt->arr_type != GGUF_VT_STRING ||
        kt->arr_len == 0 || kt->arr_len > TOK_MAX_VOCAB) {
        set_err(err, errlen, "tokenizer.ggml.tokens missing or invalid", NULL);
        goto out;
    }
    uint32_t n = (uint32_t)kt->arr_len;
    tokens = calloc(n, sizeof *tokens);
    if (!tokens)
        goto oom;
    for (uint32_t i = 0; i < n; i++)
        if (gguf_arr_str(kt, i, &tokens[i])) {
            set_err(err, errlen, "bad token string", NULL);
            goto out;
        }
    const struct gguf_kv *ks = gguf_find_kv(f, "tokenizer.ggml.scores");
    if (ks && ks->type == GGUF_VT_ARRAY && ks->arr_len == n) {
        if (!(scores = malloc(n * sizeof *scores)))
            goto oom;
        for (uint32_t i = 0; i < n; i++)
            if (gguf_arr_f32(ks, i, &scores[i])) {
                set_err(err, errlen, "bad tokenizer.ggml.scores", NULL);
                goto out;
            }
    }
    const struct gguf_kv *ky = gguf_find_kv(f, "tokenizer.ggml.token_type");
    if (ky && ky->type == GGUF_VT_ARRAY && ky->arr_len == n) {
        if (!(types = malloc(n * sizeof *types)))
            goto oom;
        for (uint32_t i = 0; i < n; i++)
            if (gguf_arr_i32(ky, i, &types[i])) {
                set_err(err, errlen, "bad tokenizer.ggml.token_type", NULL);
                goto out;
            }
    }
    const struct gguf_kv *km = gguf_find_kv(f, "tokenizer.ggml.merges");
    if (km && km->type == GGUF_VT_ARRAY && km->arr_type == GGUF_VT_STRING) {
        if (km->arr_len > TOK_MAX_MERGES) {
            set_err(err, errlen, "too many merges", NULL);
            goto out;
        }
        d.n_merges = (uint32_t)km->arr_len;
        if (!(merges = calloc(d.n_merges ? d.n_merges : 1, sizeof *merges)))
            goto oom;
        for (uint32_t i = 0; i < d.n_merges; i++)
            if (gguf_arr_str(km, i, &merges[i])) {
                set_err(err, errlen, "bad merge string", NULL);
                goto out;
            }
    }
    d.model = model;
    d.pre = pre;
    d.name = name;
    d.n_tokens = n;
    d.tokens = tokens;
    d.scores = scores;
    d.types = types;
    d.merges = merges;
    get_id(f, "tokenizer.ggml.bos_token_id", &d.bos);
    get_id(f, "tokenizer.ggml.eos_token_id", &d.eos);
    get_id(f, "tokenizer.ggml.unknown_token_id", &d.unk);
    get_id(f, "tokenizer.ggml.padding_token_id", &d.pad);
    get_id(f, "tokenizer.ggml.eot_token_id", &d.eot);
    get_id(f, "tokenizer.ggml.eom_token_id", &d.eom);
    d.add_bos = get_flag(f, "tokenizer.ggml.add_bos_token");
    d.add_eos = get_flag(f, "tokenizer.ggml.add_eos_token");
    d.add_space_prefix = get_flag(f, "tokenizer.ggml.add_space_prefix");
    if (gguf_get_str(f, "tokenizer.chat_template", &s) == 0)
        d.chat_template = s;
    t = tok_new(&d, err, errlen);
    goto out;
oom:
    set_err(err, errlen, "out of memory", NULL);
out:
    free(tokens);
    free(merges);
    free(scores);
    free(types);
    free(model);
    free(pre);
    free(name);
    return t;
}
