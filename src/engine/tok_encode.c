/*
 * tok_encode.c - tok_encode(): special tokens are cut out of the text first
 * (llama.cpp's partitioning, longest token first), then each raw fragment goes
 * to the SentencePiece or BPE merge loop; BOS/EOS as the vocabulary asks.
 * Not for: the merge loops themselves (tok_spm.c, tok_bpe.c).
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "engine/tok_internal.h"

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
