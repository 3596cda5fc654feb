/*
 * tok_convert.c - tiktoken rank files to GGUF tokenizer metadata (see
 * tok_convert.h), and the helpers the converters share. tokenizer.json is read
 * in tok_convert_hf.c, SentencePiece protobuf in tok_convert_spm.c.
 *
 * tiktoken files carry only ranks: the BPE merges are recovered as every split
 * of a token into two tokens, ordered by the token's rank (then the parts'
 * ranks), as Hugging Face's converter does; merging by merge index then picks
 * the pair whose result has the lowest rank, which is tiktoken's rule.
 * Not for: tokenizing.
 */
#include "engine/tok_convert.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "engine/gguf.h"
#include "engine/tok_convert_int.h"
#include "engine/tok_internal.h"
#include "engine/tok_unicode.h"

/* ---- shared helpers -------------------------------------------------------------- */

void tok__cerr(char *err, size_t errlen, const char *msg, const char *arg)
{
    if (err && errlen) {
        snprintf(err, errlen, "convert tokenizer: %s%s%s", msg, arg ? " " : "", arg ? arg : "");
    }
}

int tok__read_file(const char *path, char **data, size_t *size, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    char *p = NULL;
    int rc = AS_EIO;
    long n;
    if (!f) {
        tok__cerr(err, errlen, "cannot open", path);
        return AS_EIO;
    }
    if (fseek(f, 0, SEEK_END) || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET)) {
        tok__cerr(err, errlen, "cannot read", path);
        goto out;
    }
    if ((unsigned long)n > TOK_CONVERT_MAX_FILE) {
        tok__cerr(err, errlen, "too large:", path);
        rc = AS_ERANGE;
        goto out;
    }
    p = malloc((size_t)n + 1);
    if (!p) {
        rc = AS_ENOMEM;
        goto out;
    }
    if (fread(p, 1, (size_t)n, f) != (size_t)n) {
        tok__cerr(err, errlen, "cannot read", path);
        goto out;
    }
    p[n] = 0;
    *data = p;
    *size = (size_t)n;
    p = NULL;
    rc = 0;
out:
    free(p);
    fclose(f);
    return rc;
}

void tok__strlist_free(struct tok_strlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

int tok__strlist_push(struct tok_strlist *l, const char *s, size_t n)
{
    if (tok__grow((void **)&l->v, &l->cap, l->n + 1, sizeof *l->v))
        return AS_ENOMEM;
    char *p = malloc(n + 1);
    if (!p)
        return AS_ENOMEM;
    memcpy(p, s, n);
    p[n] = 0;
    l->v[l->n++] = p;
    return 0;
}

/* Appends bytes b[0..n) in GPT-2's byte alphabet to out (3 * n + 1 bytes). */
static size_t bytes_to_alphabet(const uint8_t *b, size_t n, char *out)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += tok_utf8_encode(tok__byte_to_cpt(b[i]), out + k);
    out[k] = 0;
    return k;
}

/* ---- tiktoken ----------------------------------------------------------------------- */

static int b64val(int c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* Decodes standard base64 (padding optional); returns the length or -1. */
static long b64decode(const char *s, size_t n, uint8_t *out, size_t cap)
{
    uint32_t acc = 0;
    int bits = 0;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '=')
            break;
        int v = b64val((unsigned char)s[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (k >= cap)
                return -1;
            out[k++] = (uint8_t)(acc >> bits);
        }
    }
    return (long)k;
}

struct rank_tab {
    uint32_t n;
    struct str *tok; /* (n) raw bytes by rank, into blob */
    uint8_t *blob;
    struct tok_strmap map;
};

static void rank_tab_free(struct rank_tab *r)
{
    free(r->tok);
    free(r->blob);
    tok__strmap_free(&r->map);
}

static int parse_tiktoken(const char *data, size_t size, struct rank_tab *r, char *err,
                          size_t errlen)
{
    uint32_t lines = 0;
    for (size_t i = 0; i < size; i++)
        lines += data[i] == '\n';
    lines += 1;
    if (lines > TOK_MAX_VOCAB) {
        tok__cerr(err, errlen, "too many ranks", NULL);
        return AS_ERANGE;
    }
    r->tok = calloc(lines, sizeof *r->tok);
    r->blob = malloc(size + 1);
    if (!r->tok || !r->blob)
        return AS_ENOMEM;
    size_t used = 0;
    uint32_t n = 0;
    const char *p = data, *end = data + size;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        const char *sp = memchr(p, ' ', (size_t)(le - p));
        if (le > p && le[-1] == '\r')
            le--;
        if (le == p) { /* blank line */
            p = nl ? nl + 1 : end;
            continue;
        }
        if (!sp || sp == p) {
            tok__cerr(err, errlen, "bad tiktoken line", NULL);
            return AS_EFORMAT;
        }
        uint64_t rank = 0;
        const char *q = sp + 1;
        if (q >= le)
            goto bad;
        for (; q < le; q++) {
            if (*q < '0' || *q > '9' || rank > TOK_MAX_VOCAB)
                goto bad;
            rank = rank * 10 + (uint64_t)(*q - '0');
        }
        if (rank >= lines)
            goto bad;
        long k = b64decode(p, (size_t)(sp - p), r->blob + used, size - used);
        if (k <= 0 || (size_t)k > TOK_MAX_TOKEN_BYTES || r->tok[rank].p)
            goto bad;
        r->tok[rank] = (struct str){(const char *)r->blob + used, (size_t)k};
        used += (size_t)k;
        if (rank + 1 > n)
            n = (uint32_t)rank + 1;
        p = nl ? nl + 1 : end;
    }
    for (uint32_t i = 0; i < n; i++)
        if (!r->tok[i].p) {
            tok__cerr(err, errlen, "tiktoken ranks are not contiguous", NULL);
            return AS_EFORMAT;
        }
    if (n < 256) {
        tok__cerr(err, errlen, "tiktoken file has fewer than 256 ranks", NULL);
        return AS_EFORMAT;
    }
    r->n = n;
    if (tok__strmap_init(&r->map, n))
        return AS_ENOMEM;
    for (uint32_t i = 0; i < n; i++)
        tok__strmap_put(&r->map, r->tok, i, 0);
    return 0;
bad:
    tok__cerr(err, errlen, "bad tiktoken line", NULL);
    return AS_EFORMAT;
}

/* One way to split a token into two tokens: (left rank, right rank, left length). */
struct split {
    uint32_t lr, rr, len;
};

static int cmp_split(const void *a, const void *b)
{
    const struct split *x = a, *y = b;
    if (x->lr != y->lr)
        return x->lr < y->lr ? -1 : 1;
    return x->rr < y->rr ? -1 : x->rr > y->rr;
}

/*
 * Every split of tok into two tokens, ordered by (left rank, right rank): the
 * merges Hugging Face's TikTokenConverter derives, so that merging by merge
 * index reproduces tiktoken's "lowest rank of the result first".
 */
static size_t token_splits(const struct rank_tab *r, struct str tok, struct split *out)
{
    size_t n = 0;
    for (size_t i = 1; i < tok.len; i++) {
        int64_t lr = tok__strmap_get(&r->map, r->tok, tok.p, i);
        if (lr < 0)
            continue;
        int64_t rr = tok__strmap_get(&r->map, r->tok, tok.p + i, tok.len - i);
        if (rr < 0)
            continue;
        out[n++] = (struct split){(uint32_t)lr, (uint32_t)rr, (uint32_t)i};
    }
    qsort(out, n, sizeof *out, cmp_split);
    return n;
}

static int tiktoken_specials(enum tok_tiktoken_flavor flavor, uint32_t n_ranks,
                             struct tok_strlist *tokens, int32_t *types, char *err, size_t errlen)
{
    char name[64];
    if (flavor == TOK_TIKTOKEN_LLAMA3) {
        static const char *const first[] = {
            "<|begin_of_text|>",
            "<|end_of_text|>",
            "<|reserved_special_token_0|>",
            "<|reserved_special_token_1|>",
            "<|finetune_right_pad_id|>",
            "<|reserved_special_token_2|>",
            "<|start_header_id|>",
            "<|end_header_id|>",
            "<|eom_id|>",
            "<|eot_id|>",
            "<|python_tag|>",
        };
        for (uint32_t i = 0; i < 256; i++) {
            const char *s = name;
            if (i < 11)
                s = first[i];
            else
                snprintf(name, sizeof name, "<|reserved_special_token_%u|>", i - 11 + 3);
            if (tok__strlist_push(tokens, s, strlen(s)))
                return AS_ENOMEM;
            types[n_ranks + i] = TOK_TT_CONTROL;
        }
        return 0;
    }
    if (flavor == TOK_TIKTOKEN_QWEN2) {
        static const char *const q[] = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};
        for (uint32_t i = 0; i < 3; i++) {
            if (tok__strlist_push(tokens, q[i], strlen(q[i])))
                return AS_ENOMEM;
            types[n_ranks + i] = TOK_TT_CONTROL;
        }
        return 0;
    }
    tok__cerr(err, errlen, "unknown tiktoken flavor", NULL);
    return AS_EINVAL;
}

int tok_convert_tiktoken_mem(struct gguf_writer *w, const void *data, size_t size,
                             enum tok_tiktoken_flavor flavor, char *err, size_t errlen)
{
    struct rank_tab r = {0};
    struct tok_strlist tokens = {0}, merges = {0};
    int32_t *types = NULL;
    struct split *splits = NULL;
    char *sbuf = NULL;
    int rc;
    uint32_t n_special = flavor == TOK_TIKTOKEN_LLAMA3 ? 256 : 3;

    if (flavor != TOK_TIKTOKEN_LLAMA3 && flavor != TOK_TIKTOKEN_QWEN2) {
        tok__cerr(err, errlen, "unknown tiktoken flavor", NULL);
        return AS_EINVAL;
    }
    if ((rc = parse_tiktoken(data, size, &r, err, errlen)))
        goto out;
    size_t maxlen = 0;
    for (uint32_t i = 0; i < r.n; i++)
        if (r.tok[i].len > maxlen)
            maxlen = r.tok[i].len;
    rc = AS_ENOMEM;
    types = malloc((r.n + n_special) * sizeof *types);
    splits = malloc((maxlen + 1) * sizeof *splits);
    sbuf = malloc(6 * maxlen + 4);
    if (!types || !splits || !sbuf)
        goto out;
    for (uint32_t i = 0; i < r.n; i++) {
        struct str t = r.tok[i];
        size_t k = bytes_to_alphabet((const uint8_t *)t.p, t.len, sbuf);
        if (tok__strlist_push(&tokens, sbuf, k))
            goto out;
        types[i] = TOK_TT_NORMAL;
        if (t.len < 2)
            continue;
        size_t ns = token_splits(&r, t, splits);
        for (size_t j = 0; j < ns; j++) {
            size_t split = splits[j].len;
            k = bytes_to_alphabet((const uint8_t *)t.p, split, sbuf);
            sbuf[k++] = ' ';
            k += bytes_to_alphabet((const uint8_t *)t.p + split, t.len - split, sbuf + k);
            if (tok__strlist_push(&merges, sbuf, k))
                goto out;
        }
    }
    if ((rc = tiktoken_specials(flavor, r.n, &tokens, types, err, errlen)))
        goto out;
    int llama3 = flavor == TOK_TIKTOKEN_LLAMA3;
    uint32_t base = r.n;
    if ((rc = gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2")) ||
        (rc = gguf_writer_set_str(w, "tokenizer.ggml.pre", llama3 ? "llama-bpe" : "qwen2")) ||
        (rc = gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)tokens.v,
                                      tokens.n)) ||
        (rc = gguf_writer_set_arr_i32(w, "tokenizer.ggml.token_type", types, tokens.n)) ||
        (rc = gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", (const char *const *)merges.v,
                                      merges.n)) ||
        (rc = gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", base)) ||
        (rc = gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", base + (llama3 ? 1 : 0))) ||
        (rc = gguf_writer_set_u32(w, "tokenizer.ggml.eot_token_id", base + (llama3 ? 9 : 2))) ||
        (rc = gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", llama3)) ||
        (rc = gguf_writer_set_bool(w, "tokenizer.ggml.add_eos_token", 0)))
        goto out;
    if (!llama3 && (rc = gguf_writer_set_u32(w, "tokenizer.ggml.padding_token_id", base)))
        goto out;
    rc = 0;
out:
    if (rc == AS_ENOMEM)
        tok__cerr(err, errlen, "out of memory", NULL);
    rank_tab_free(&r);
    tok__strlist_free(&tokens);
    tok__strlist_free(&merges);
    free(types);
    free(splits);
    free(sbuf);
    return rc;
}

int tok_convert_tiktoken(struct gguf_writer *w, const char *path, enum tok_tiktoken_flavor flavor,
                         char *err, size_t errlen)
{
    char *data = NULL;
    size_t size = 0;
    int rc = tok__read_file(path, &data, &size, err, errlen);
    if (rc == 0)
        rc = tok_convert_tiktoken_mem(w, data, size, flavor, err, errlen);
    free(data);
    return rc;
}
