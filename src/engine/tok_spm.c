/*
 * tok_spm.c - SentencePiece-style ("llama") merging of one text fragment.
 *
 * llama.cpp's algorithm: start from UTF-8 characters, repeatedly merge the
 * adjacent pair whose concatenation is the highest-scoring token (ties: the
 * leftmost), using a heap and a linked list, so the cost is O(n log n). Symbols
 * that end up not being tokens are emitted as byte tokens (<0xXX>). Not for:
 * space escaping and special tokens (tokenizer.c), unigram (Viterbi) models.
 */
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "engine/tok_internal.h"
#include "engine/tok_unicode.h"

static void try_bigram(const struct tokenizer *t, const char *text, const struct tok_sym *sym,
                       int32_t left, int32_t right, struct tok_bigram *heap, size_t *nheap)
{
    if (left < 0 || right < 0)
        return;
    size_t n = sym[left].n + sym[right].n;
    if (n > t->max_token_len)
        return;
    int64_t id = tok__strmap_get(&t->tokmap, t->text, text + sym[left].start, n);
    if (id < 0)
        return;
    struct tok_bigram b = {-t->score[id], left, right, (uint32_t)n};
    tok__heap_push(heap, nheap, b);
}

static int is_space_sym(const char *text, const struct tok_sym *y)
{
    return y->n == 3 && !memcmp(text + y->start, "\xE2\x96\x81", 3);
}

/* Merges symbols [a, b) (linked among themselves) and appends their ids. */
static int merge_range(const struct tokenizer *t, const char *text, struct tok_sym *sym, int32_t a,
                       int32_t b, struct tok_bigram *heap, struct tok_ids *out)
{
    size_t nheap = 0;
    sym[a].prev = -1;
    sym[b - 1].next = -1;
    for (int32_t i = a + 1; i < b; i++)
        try_bigram(t, text, sym, i - 1, i, heap, &nheap);

    while (nheap > 0) {
        struct tok_bigram bg = tok__heap_pop(heap, &nheap);
        struct tok_sym *l = &sym[bg.left], *r = &sym[bg.right];
        if (l->n == 0 || r->n == 0 || l->n + r->n != bg.size)
            continue; /* stale: one side was merged meanwhile */
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0)
            sym[r->next].prev = bg.left;
        try_bigram(t, text, sym, l->prev, bg.left, heap, &nheap);
        try_bigram(t, text, sym, bg.left, l->next, heap, &nheap);
    }

    for (int32_t i = a; i != -1; i = sym[i].next) {
        const char *p = text + sym[i].start;
        int64_t id = tok__strmap_get(&t->tokmap, t->text, p, sym[i].n);
        int rc;
        if (id >= 0) {
            if ((rc = tok_ids_push(out, (int32_t)id)))
                return rc;
            continue;
        }
        for (uint32_t j = 0; j < sym[i].n; j++) { /* byte fallback */
            int32_t bt = t->byte_tok[(uint8_t)p[j]];
            if (bt < 0)
                bt = t->unk;
            if (bt >= 0 && (rc = tok_ids_push(out, bt)))
                return rc;
        }
    }
    return 0;
}

int tok__spm_encode(const struct tokenizer *t, const char *text, size_t len, struct tok_scratch *s,
                    struct tok_ids *out)
{
    size_t nsym = 0;
    if (len == 0)
        return 0;
    if (tok__grow(&s->sym, &s->sym_cap, len, sizeof(struct tok_sym)) ||
        tok__grow(&s->heap, &s->heap_cap, 3 * len + 3, sizeof(struct tok_bigram)))
        return AS_ENOMEM;
    struct tok_sym *sym = s->sym;
    for (size_t off = 0; off < len;) {
        size_t n = tok_utf8_len((uint8_t)text[off]);
        if (n > len - off)
            n = len - off;
        sym[nsym] =
            (struct tok_sym){(uint32_t)off, (uint32_t)n, (int32_t)nsym - 1, (int32_t)nsym + 1};
        nsym++;
        off += n;
    }
    if (!t->spm_word_split)
        return merge_range(t, text, sym, 0, (int32_t)nsym, s->heap, out);
    /*
     * No token has "▁" after another character, so no merge crosses the start
     * of a word ("▁" after a non-"▁" symbol): merging word by word gives the
     * same ids with small, cache-friendly heaps.
     */
    int32_t a = 0;
    for (int32_t i = 1; i <= (int32_t)nsym; i++) {
        if (i < (int32_t)nsym && !(is_space_sym(text, &sym[i]) && !is_space_sym(text, &sym[i - 1])))
            continue;
        int rc = merge_range(t, text, sym, a, i, s->heap, out);
        if (rc)
            return rc;
        a = i;
    }
    return 0;
}
