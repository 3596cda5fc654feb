/*
 * tok_convert_hf.c - Hugging Face tokenizer.json (BPE models) to GGUF
 * tokenizer metadata (see tok_convert.h).
 *
 * Byte-level vocabularies keep their merges; the pre-tokenizer name is
 * recognised from the pre_tokenizer section (the regexes llama.cpp knows).
 * SentencePiece-style ones (byte fallback, "▁") get scores from merge order so
 * that the score-driven merge replays the BPE. Not for: WordPiece / Unigram.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "engine/gguf.h"
#include "engine/tok_convert.h"
#include "engine/tok_convert_int.h"
#include "engine/tok_internal.h"

static const char re_llama3[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char re_qwen2[] = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
                               "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char re_gpt2[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)";

static const char *jstr(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int jtype_is(const cJSON *o, const char *type)
{
    const char *t = jstr(o, "type");
    return t && !strcmp(t, type);
}

/* Does a pre-tokenizer / decoder (or a Sequence of them) contain one of this type? */
static int json_has_type(const cJSON *o, const char *type)
{
    if (!cJSON_IsObject(o))
        return 0;
    if (jtype_is(o, type))
        return 1;
    const cJSON *seq = cJSON_GetObjectItemCaseSensitive(o, "pretokenizers");
    if (!seq)
        seq = cJSON_GetObjectItemCaseSensitive(o, "decoders");
    if (!seq)
        seq = cJSON_GetObjectItemCaseSensitive(o, "normalizers");
    const cJSON *it;
    cJSON_ArrayForEach(it, seq) if (json_has_type(it, type)) return 1;
    return 0;
}

/* The llama.cpp pre-tokenizer name for a byte-level pre_tokenizer section, or NULL. */
static const char *detect_pre(const cJSON *pt)
{
    if (jtype_is(pt, "ByteLevel"))
        return "gpt-2";
    if (!jtype_is(pt, "Sequence"))
        return NULL;
    const cJSON *seq = cJSON_GetObjectItemCaseSensitive(pt, "pretokenizers"), *it;
    int digits = 0, bytelevel = 0, n = 0;
    const char *regex = NULL;
    cJSON_ArrayForEach(it, seq)
    {
        n++;
        if (jtype_is(it, "Digits") &&
            cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(it, "individual_digits")))
            digits++;
        else if (jtype_is(it, "ByteLevel"))
            bytelevel++;
        else if (jtype_is(it, "Split") && !regex)
            regex = jstr(cJSON_GetObjectItemCaseSensitive(it, "pattern"), "Regex");
        else
            return NULL;
    }
    if (n == 2 && digits == 1 && bytelevel == 1)
        return "smollm";
    if (n == 2 && regex && bytelevel == 1) {
        if (!strcmp(regex, re_llama3))
            return "llama-bpe";
        if (!strcmp(regex, re_qwen2))
            return "qwen2";
        if (!strcmp(regex, re_gpt2))
            return "gpt-2";
    }
    return NULL;
}

struct hf_vocab {
    struct tok_strlist tokens;
    int32_t *types;
    float *scores;
    uint32_t n;
};

static int find_token(const struct hf_vocab *v, const char *const *names, size_t n_names)
{
    for (size_t k = 0; k < n_names; k++)
        for (uint32_t i = 0; i < v->n; i++)
            if (v->types[i] != TOK_TT_UNUSED && !strcmp(v->tokens.v[i], names[k]))
                return (int)i;
    return -1;
}

static int hf_put(struct hf_vocab *v, int64_t id, const char *text, int32_t type)
{
    if (id < 0 || (uint64_t)id >= v->n || strlen(text) > TOK_MAX_TOKEN_BYTES)
        return AS_EFORMAT;
    size_t len = strlen(text) + 1;
    char *p = malloc(len);
    if (!p)
        return AS_ENOMEM;
    memcpy(p, text, len);
    free(v->tokens.v[id]);
    v->tokens.v[id] = p;
    v->types[id] = type;
    return 0;
}

int tok_convert_hf_json_mem(struct gguf_writer *w, const char *json, size_t len,
                            const struct tok_hf_opts *opts, char *err, size_t errlen)
{
    cJSON *root = NULL;
    struct hf_vocab v = {0};
    struct tok_strlist merges = {0};
    int rc = AS_EFORMAT;
    const cJSON *it;

    if (len > TOK_CONVERT_MAX_FILE) {
        tok__cerr(err, errlen, "tokenizer.json too large", NULL);
        return AS_ERANGE;
    }
    root = cJSON_ParseWithLength(json, len);
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    const cJSON *jmerges = cJSON_GetObjectItemCaseSensitive(model, "merges");
    const cJSON *added = cJSON_GetObjectItemCaseSensitive(root, "added_tokens");
    if (!root || !cJSON_IsObject(vocab)) {
        tok__cerr(err, errlen, "not a tokenizer.json with a model vocabulary", NULL);
        goto out;
    }
    if (!jtype_is(model, "BPE")) {
        tok__cerr(err, errlen, "unsupported tokenizer model type", jstr(model, "type"));
        rc = AS_EUNSUP;
        goto out;
    }
    /* size: the largest id of the vocabulary and the added tokens */
    int64_t max_id = -1;
    cJSON_ArrayForEach(it, vocab)
    {
        if (!cJSON_IsNumber(it) || it->valuedouble < 0 || it->valuedouble >= TOK_MAX_VOCAB)
            goto bad;
        if (it->valueint > max_id)
            max_id = it->valueint;
    }
    cJSON_ArrayForEach(it, added)
    {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(it, "id");
        if (!cJSON_IsNumber(id) || id->valuedouble < 0 || id->valuedouble >= TOK_MAX_VOCAB ||
            !jstr(it, "content"))
            goto bad;
        if (id->valueint > max_id)
            max_id = id->valueint;
    }
    if (max_id < 0)
        goto bad;
    v.n = (uint32_t)max_id + 1;
    rc = AS_ENOMEM;
    v.tokens.v = calloc(v.n, sizeof *v.tokens.v);
    v.types = calloc(v.n, sizeof *v.types);
    v.scores = calloc(v.n, sizeof *v.scores);
    if (!v.tokens.v || !v.types || !v.scores)
        goto out;
    v.tokens.n = v.tokens.cap = v.n;
    for (uint32_t i = 0; i < v.n; i++)
        v.types[i] = TOK_TT_UNUSED;
    cJSON_ArrayForEach(
        it, vocab) if ((rc = hf_put(&v, it->valueint, it->string, TOK_TT_NORMAL))) goto out;
    cJSON_ArrayForEach(it, added)
    {
        int special = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(it, "special"));
        if ((rc = hf_put(&v, cJSON_GetObjectItemCaseSensitive(it, "id")->valueint,
                         jstr(it, "content"), special ? TOK_TT_CONTROL : TOK_TT_USER_DEFINED)))
            goto out;
    }
    for (uint32_t i = 0; i < v.n; i++)
        if (!v.tokens.v[i]) {
            char name[32];
            snprintf(name, sizeof name, "[PAD%u]", i);
            if ((rc = hf_put(&v, i, name, TOK_TT_UNUSED)))
                goto out;
        }
    /* merges: "a b" strings or ["a", "b"] pairs */
    cJSON_ArrayForEach(it, jmerges)
    {
        if (merges.n >= TOK_MAX_MERGES)
            goto bad;
        if (cJSON_IsString(it)) {
            rc = tok__strlist_push(&merges, it->valuestring, strlen(it->valuestring));
        } else if (cJSON_GetArraySize(it) == 2 && cJSON_IsString(cJSON_GetArrayItem(it, 0)) &&
                   cJSON_IsString(cJSON_GetArrayItem(it, 1))) {
            const char *a = cJSON_GetArrayItem(it, 0)->valuestring;
            const char *b = cJSON_GetArrayItem(it, 1)->valuestring;
            size_t la = strlen(a), lb = strlen(b);
            char *m = malloc(la + lb + 2);
            if (!m)
                goto out;
            memcpy(m, a, la);
            m[la] = ' ';
            memcpy(m + la + 1, b, lb + 1);
            rc = tok__strlist_push(&merges, m, la + lb + 1);
            free(m);
        } else {
            goto bad;
        }
        if (rc)
            goto out;
    }

    const cJSON *pt = cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer");
    const cJSON *dec = cJSON_GetObjectItemCaseSensitive(root, "decoder");
    int bytelevel = json_has_type(pt, "ByteLevel") || json_has_type(dec, "ByteLevel");
    int spm =
        !bytelevel && (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(model, "byte_fallback")) ||
                       json_has_type(dec, "ByteFallback"));
    if (!bytelevel && !spm) {
        tok__cerr(err, errlen, "BPE without byte-level or byte-fallback is not supported", NULL);
        rc = AS_EUNSUP;
        goto out;
    }
    const char *pre = opts && opts->pre ? opts->pre : NULL;
    if (bytelevel && !pre && !(pre = detect_pre(pt))) {
        tok__cerr(err, errlen, "unknown pre-tokenizer; name it (tok_hf_opts.pre)", NULL);
        rc = AS_EUNSUP;
        goto out;
    }
    if (spm) {
        /* SentencePiece-style: the earlier a merge, the higher the piece's score */
        for (uint32_t i = 0; i < v.n; i++) {
            int b = strlen(v.tokens.v[i]) == 6 && !strncmp(v.tokens.v[i], "<0x", 3);
            if (v.types[i] == TOK_TT_NORMAL && b)
                v.types[i] = TOK_TT_BYTE;
            v.scores[i] = v.types[i] == TOK_TT_NORMAL ? -1e9f : 0.0f;
        }
        struct tok_strmap map = {0};
        struct str *keys = calloc(v.n, sizeof *keys);
        if (!keys || tok__strmap_init(&map, v.n)) {
            free(keys);
            rc = AS_ENOMEM;
            goto out;
        }
        for (uint32_t i = 0; i < v.n; i++) {
            keys[i] = (struct str){v.tokens.v[i], strlen(v.tokens.v[i])};
            tok__strmap_put(&map, keys, i, 0);
        }
        for (size_t i = 0; i < merges.n; i++) {
            const char *m = merges.v[i], *sp = strchr(m + (m[0] != 0), ' ');
            if (!sp)
                continue;
            size_t la = (size_t)(sp - m), lb = strlen(sp + 1);
            char *cat = malloc(la + lb + 1);
            if (!cat)
                break;
            memcpy(cat, m, la);
            memcpy(cat + la, sp + 1, lb);
            int64_t id = tok__strmap_get(&map, keys, cat, la + lb);
            free(cat);
            if (id >= 0 && v.types[id] == TOK_TT_NORMAL && v.scores[id] <= -1e9f)
                v.scores[id] = -(float)i;
        }
        for (uint32_t i = 0; i < v.n; i++) /* single characters: after every merge */
            if (v.scores[i] <= -1e9f)
                v.scores[i] = -(float)merges.n - 1.0f;
        tok__strmap_free(&map);
        free(keys);
    }

    static const char *const bos_names[] = {"<|begin_of_text|>", "<s>", "<|startoftext|>",
                                            "<｜begin▁of▁sentence｜>", "<|endoftext|>"};
    static const char *const eos_names[] = {"<|end_of_text|>", "</s>", "<|endoftext|>",
                                            "<｜end▁of▁sentence｜>", "<|im_end|>"};
    int bos = opts && opts->bos >= 0 ? opts->bos : find_token(&v, bos_names, 5);
    int eos = opts && opts->eos >= 0 ? opts->eos : find_token(&v, eos_names, 5);
    int pad = opts && opts->pad >= 0 ? opts->pad : -1;
    const cJSON *padding = cJSON_GetObjectItemCaseSensitive(root, "padding");
    const cJSON *pad_id = cJSON_GetObjectItemCaseSensitive(padding, "pad_id");
    if (pad < 0 && cJSON_IsNumber(pad_id) && pad_id->valuedouble >= 0 && pad_id->valuedouble < v.n)
        pad = pad_id->valueint;
    int add_bos = opts && opts->add_bos >= 0 ? opts->add_bos : spm;
    if (!opts || opts->add_bos < 0) {
        const cJSON *pp = cJSON_GetObjectItemCaseSensitive(root, "post_processor");
        if (json_has_type(pp, "TemplateProcessing"))
            add_bos = 1;
    }
    int prefix =
        spm && (json_has_type(cJSON_GetObjectItemCaseSensitive(root, "normalizer"), "Prepend") ||
                json_has_type(pt, "Metaspace"));

    if ((rc = gguf_writer_set_str(w, "tokenizer.ggml.model", spm ? "llama" : "gpt2")) ||
        (rc = gguf_writer_set_str(w, "tokenizer.ggml.pre", spm ? "default" : pre)) ||
        (rc = gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)v.tokens.v,
                                      v.n)) ||
        (rc = gguf_writer_set_arr_i32(w, "tokenizer.ggml.token_type", v.types, v.n)) ||
        (rc = gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", add_bos)) ||
        (rc = gguf_writer_set_bool(w, "tokenizer.ggml.add_eos_token", 0)))
        goto out;
    if (spm && ((rc = gguf_writer_set_arr_f32(w, "tokenizer.ggml.scores", v.scores, v.n)) ||
                (rc = gguf_writer_set_bool(w, "tokenizer.ggml.add_space_prefix", prefix))))
        goto out;
    if (!spm && (rc = gguf_writer_set_arr_str(w, "tokenizer.ggml.merges",
                                              (const char *const *)merges.v, merges.n)))
        goto out;
    if ((bos >= 0 && (rc = gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)bos))) ||
        (eos >= 0 && (rc = gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)eos))) ||
        (pad >= 0 &&
         (rc = gguf_writer_set_u32(w, "tokenizer.ggml.padding_token_id", (uint32_t)pad))))
        goto out;
    rc = 0;
    goto out;
bad:
    tok__cerr(err, errlen, "malformed tokenizer.json", NULL);
    rc = AS_EFORMAT;
out:
    if (rc == AS_ENOMEM)
        tok__cerr(err, errlen, "out of memory", NULL);
    cJSON_Delete(root);
    tok__strlist_free(&v.tokens);
    free(v.types);
    free(v.scores);
    tok__strlist_free(&merges);
    return rc;
}

int tok_convert_hf_json(struct gguf_writer *w, const char *path, const struct tok_hf_opts *opts,
                        char *err, size_t errlen)
{
    char *data = NULL;
    size_t size = 0;
    int rc = tok__read_file(path, &data, &size, err, errlen);
    if (rc == 0)
        rc = tok_convert_hf_json_mem(w, data, size, opts, err, errlen);
    free(data);
    return rc;
}
