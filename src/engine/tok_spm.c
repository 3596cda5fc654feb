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

int tok__spm_encode(const struct tokenizer *t, const char *text, size_t len, struct tok_scratch *s,
                    struct tok_ids *out)
{
    size_t nsym = 0, nheap = 0;
    if (len == 0)
        return 0;
    if (tok__grow(&s->sym, &s->sym_cap, len, sizeof(struct tok_sym)) ||
        tok__grow(&s->heap, &s->heap_cap, 3 * len + 3, sizeof(struct tok_bigram)))
        return AS_ENOMEM;
    struct tok_sym *sym = s->sym;
    struct tok_bigram *heap = s->heap;

    for (size_t off = 0; off < len;) {
        size_t n = tok_utf8_len((uint8_t)text[off]);
        if (n > len - off)
            n = len - off;
        sym[nsym] = (struct tok_sym){(uint32_t)off, (uint32_t)n, (int32_t)nsym - 1,
                                     off + n == len ? -1 : (int32_t)nsym + 1};
        nsym++;
        off += n;
    }
    for (size_t i = 1; i < nsym; i++)
        try_bigram(t, text, sym, (int32_t)i - 1, (int32_t)i, heap, &nheap);

    while (nheap > 0) {
        struct tok_bigram b = tok__heap_pop(heap, &nheap);
        struct tok_sym *l = &sym[b.left], *r = &sym[b.right];
        if (l->n == 0 || r->n == 0 || l->n + r->n != b.size)
            continue; /* stale: one side was merged meanwhile */
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0)
            sym[r->next].prev = b.left;
        try_bigram(t, text, sym, l->prev, b.left, heap, &nheap);
        try_bigram(t, text, sym, b.left, l->next, heap, &nheap);
    }

    for (int32_t i = 0; i != -1; i = sym[i].next) {
        const char *p = text + sym[i].start;
        int64_t id = tok__strmap_get(&t->tokmap, t->text, p, sym[i].n);
        int rc;
        if (id >= 0) {
            if ((rc = tok_ids_push(out, (int32_t)id)))
                return rc;
            continue;
        }
        for (uint32_t j = 0; j < sym[i].n; j++) {
            int32_t bt = t->byte_tok[(uint8_t)p[j]];
            if (bt < 0)
                bt = t->unk;
            if (bt >= 0 && (rc = tok_ids_push(out, bt)))
                return rc;
        }
    }
    return 0;
}
