/*
 * tok_gguf.c - tok_new_from_gguf(): the tokenizer.ggml.* metadata of a GGUF
 * file as a struct tok_vocab_desc. Arrays are validated through the GGUF
 * reader's bounds-checked accessors. Not for: other model metadata.
 */
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "engine/gguf.h"
#include "engine/tok_internal.h"

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
        tok__err(err, errlen, "tokenizer.ggml.model missing", NULL);
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
        tok__err(err, errlen, "tokenizer.ggml.tokens missing or invalid", NULL);
        goto out;
    }
    uint32_t n = (uint32_t)kt->arr_len;
    tokens = calloc(n, sizeof *tokens);
    if (!tokens)
        goto oom;
    for (uint32_t i = 0; i < n; i++)
        if (gguf_arr_str(kt, i, &tokens[i])) {
            tok__err(err, errlen, "bad token string", NULL);
            goto out;
        }
    const struct gguf_kv *ks = gguf_find_kv(f, "tokenizer.ggml.scores");
    if (ks && ks->type == GGUF_VT_ARRAY && ks->arr_len == n) {
        if (!(scores = malloc(n * sizeof *scores)))
            goto oom;
        for (uint32_t i = 0; i < n; i++)
            if (gguf_arr_f32(ks, i, &scores[i])) {
                tok__err(err, errlen, "bad tokenizer.ggml.scores", NULL);
                goto out;
            }
    }
    const struct gguf_kv *ky = gguf_find_kv(f, "tokenizer.ggml.token_type");
    if (ky && ky->type == GGUF_VT_ARRAY && ky->arr_len == n) {
        if (!(types = malloc(n * sizeof *types)))
            goto oom;
        for (uint32_t i = 0; i < n; i++)
            if (gguf_arr_i32(ky, i, &types[i])) {
                tok__err(err, errlen, "bad tokenizer.ggml.token_type", NULL);
                goto out;
            }
    }
    const struct gguf_kv *km = gguf_find_kv(f, "tokenizer.ggml.merges");
    if (km && km->type == GGUF_VT_ARRAY && km->arr_type == GGUF_VT_STRING) {
        if (km->arr_len > TOK_MAX_MERGES) {
            tok__err(err, errlen, "too many merges", NULL);
            goto out;
        }
        d.n_merges = (uint32_t)km->arr_len;
        if (!(merges = calloc(d.n_merges ? d.n_merges : 1, sizeof *merges)))
            goto oom;
        for (uint32_t i = 0; i < d.n_merges; i++)
            if (gguf_arr_str(km, i, &merges[i])) {
                tok__err(err, errlen, "bad merge string", NULL);
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
    tok__err(err, errlen, "out of memory", NULL);
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
