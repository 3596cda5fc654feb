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
 * every raw fragment is split at the token's occurrences, scanning left to
 * right without overlaps. The same result without rescanning the text per
 * token: one pass over the text with the specials' trie lists every
 * occurrence; then, token by token in the same order, an occurrence is taken
 * when none of its bytes is taken yet (that is "inside one raw fragment", and
 * ascending order gives the leftmost non-overlapping scan). Whitespace that
 * LSTRIP/RSTRIP remove is marked dropped. Cost O(text * longest special).
 */
#define MARK_FREE (-1)
#define MARK_DROP (-2)
#define MARK_CONT (-3)

struct occ {
    uint32_t node, pos;
};

static int partition(const struct tokenizer *t, const char *text, size_t len, int parse_special,
                     struct frags *out)
{
    struct occ *occ = NULL, *sorted = NULL;
    size_t nocc = 0, cap = 0;
    uint32_t *start = NULL;
    int32_t *mark = NULL;
    int rc = AS_ENOMEM;
    out->n = 0;
    if (t->n_special == 0)
        return frags_push(out, -1, 0, len);
    for (size_t i = 0; i < len; i++) {
        uint32_t node = 0;
        for (size_t j = i; j < len && j - i < t->max_special_len; j++) {
            if (!(node = tok__trie_child(t, node, (uint8_t)text[j])))
                break;
            if (t->trie_term[node]) {
                if (tok__grow((void **)&occ, &cap, nocc + 1, sizeof *occ))
                    goto out;
                occ[nocc++] = (struct occ){node, (uint32_t)i};
            }
        }
    }
    if (nocc == 0) {
        rc = frags_push(out, -1, 0, len);
        goto out;
    }
    /* group occurrences by node, positions stay ascending (counting sort) */
    start = calloc((size_t)t->trie_nodes + 1, sizeof *start);
    sorted = malloc(nocc * sizeof *sorted);
    mark = malloc(len * sizeof *mark);
    if (!start || !sorted || !mark)
        goto out;
    for (size_t k = 0; k < nocc; k++)
        start[occ[k].node + 1]++;
    for (uint32_t k = 0; k < t->trie_nodes; k++)
        start[k + 1] += start[k];
    for (size_t k = 0; k < nocc; k++)
        sorted[start[occ[k].node]++] = occ[k];
    for (uint32_t k = t->trie_nodes; k > 0; k--) /* back to group starts */
        start[k] = start[k - 1];
    start[0] = 0;
    for (size_t i = 0; i < len; i++)
        mark[i] = MARK_FREE;

    for (uint32_t si = 0; si < t->n_special; si++) {
        int32_t id = t->special[si];
        uint8_t ty = t->type[id];
        if (!parse_special && (ty == TOK_TT_CONTROL || ty == TOK_TT_UNKNOWN))
            continue;
        uint32_t node = t->special_node[si];
        size_t n = t->text[id].len;
        for (uint32_t k = start[node]; k < start[node + 1]; k++) {
            size_t p = sorted[k].pos, j = 0;
            while (j < n && mark[p + j] == MARK_FREE)
                j++;
            if (j < n)
                continue; /* overlaps a token or stripped space */
            mark[p] = id;
            for (j = 1; j < n; j++)
                mark[p + j] = MARK_CONT;
            if (t->attr[id] & TOK_ATTR_LSTRIP)
                for (size_t q = p;
                     q > 0 && mark[q - 1] == MARK_FREE && isspace((unsigned char)text[q - 1]); q--)
                    mark[q - 1] = MARK_DROP;
            if (t->attr[id] & TOK_ATTR_RSTRIP)
                for (size_t q = p + n;
                     q < len && mark[q] == MARK_FREE && isspace((unsigned char)text[q]); q++)
                    mark[q] = MARK_DROP;
        }
    }
    for (size_t i = 0; i < len;) {
        if (mark[i] >= 0) {
            size_t n = t->text[mark[i]].len;
            if ((rc = frags_push(out, mark[i], i, n)))
                goto out;
            i += n;
        } else if (mark[i] == MARK_FREE) {
            size_t j = i;
            while (j < len && mark[j] == MARK_FREE)
                j++;
            if ((rc = frags_push(out, -1, i, j - i)))
                goto out;
            i = j;
        } else {
            i++; /* dropped whitespace */
        }
    }
    rc = 0;
out:
    free(occ);
    free(sorted);
    free(start);
    free(mark);
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
