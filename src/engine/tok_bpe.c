/*
 * tok_bpe.c - byte-level BPE ("gpt2") of one text fragment.
 *
 * The fragment is split into pre-tokens (tok_pretok.c); each pre-token's bytes
 * are mapped to GPT-2's printable byte alphabet and merged by rank (lowest
 * merge index first, ties leftmost) with a heap over a linked list of symbols,
 * as llama.cpp does. Every input byte is one initial symbol, so any byte string
 * can be encoded and decoded back. Not for: SentencePiece vocabularies (tok_spm.c).
 */
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "engine/tok_internal.h"
#include "engine/tok_unicode.h"

uint32_t tok__byte_to_cpt(uint8_t b)
{
    if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174)
        return b;
    if (b <= 32)
        return 256u + b;
    if (b <= 160)
        return 256u + 33u + (b - 127u);
    return 256u + 67u; /* 173 */
}

int tok__cpt_to_byte(uint32_t cp)
{
    if ((cp >= 33 && cp <= 126) || (cp >= 161 && cp <= 172) || (cp >= 174 && cp <= 255))
        return (int)cp;
    if (cp >= 256 && cp <= 288)
        return (int)(cp - 256);
    if (cp >= 289 && cp <= 322)
        return (int)(cp - 289 + 127);
    if (cp == 323)
        return 173;
    return -1;
}

struct bpe_word {
    const struct tokenizer *t;
    const char *w; /* mapped text */
    struct tok_sym *sym;
    char *key; /* max_merge_len + 1 bytes */
};

static void add_bigram(struct bpe_word *bw, int32_t left, int32_t right, struct tok_bigram *heap,
                       size_t *nheap)
{
    const struct tokenizer *t = bw->t;
    if (left < 0 || right < 0)
        return;
    size_t ln = bw->sym[left].n, rn = bw->sym[right].n;
    if (ln + rn + 1 > t->max_merge_len)
        return;
    memcpy(bw->key, bw->w + bw->sym[left].start, ln);
    bw->key[ln] = ' ';
    memcpy(bw->key + ln + 1, bw->w + bw->sym[right].start, rn);
    int64_t rank = tok__strmap_get(&t->mergemap, t->merge, bw->key, ln + rn + 1);
    if (rank < 0 || t->merge_split[rank] != ln)
        return;
    struct tok_bigram b = {(float)rank, left, right, (uint32_t)(ln + rn)};
    tok__heap_push(heap, nheap, b);
}

/* Merges one pre-token (already mapped to the byte alphabet) and appends its ids. */
static int bpe_word(const struct tokenizer *t, const char *w, size_t wlen, struct tok_scratch *s,
                    char *key, struct tok_ids *out)
{
    int rc;
    if (t->ignore_merges) {
        int64_t id = tok__strmap_get(&t->tokmap, t->text, w, wlen);
        if (id >= 0)
            return tok_ids_push(out, (int32_t)id);
    }
    if (tok__grow(&s->sym, &s->sym_cap, wlen, sizeof(struct tok_sym)) ||
        tok__grow(&s->heap, &s->heap_cap, 3 * wlen + 3, sizeof(struct tok_bigram)))
        return AS_ENOMEM;
    struct tok_sym *sym = s->sym;
    struct tok_bigram *heap = s->heap;
    struct bpe_word bw = {t, w, sym, key};
    size_t nsym = 0, nheap = 0;
    for (size_t off = 0; off < wlen;) {
        size_t n = tok_utf8_len((uint8_t)w[off]);
        if (n > wlen - off)
            n = wlen - off;
        sym[nsym] = (struct tok_sym){(uint32_t)off, (uint32_t)n, (int32_t)nsym - 1,
                                     off + n == wlen ? -1 : (int32_t)nsym + 1};
        nsym++;
        off += n;
    }
    for (size_t i = 1; i < nsym; i++)
        add_bigram(&bw, (int32_t)i - 1, (int32_t)i, heap, &nheap);
    while (nheap > 0) {
        struct tok_bigram b = tok__heap_pop(heap, &nheap);
        struct tok_sym *l = &sym[b.left], *r = &sym[b.right];
        if (l->n == 0 || r->n == 0 || l->n + r->n != b.size)
            continue; /* outdated */
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0)
            sym[r->next].prev = b.left;
        add_bigram(&bw, l->prev, b.left, heap, &nheap);
        add_bigram(&bw, b.left, l->next, heap, &nheap);
    }
    for (int32_t i = 0; i != -1; i = sym[i].next) {
        const char *p = w + sym[i].start;
        int64_t id = tok__strmap_get(&t->tokmap, t->text, p, sym[i].n);
        if (id >= 0) {
            if ((rc = tok_ids_push(out, (int32_t)id)))
                return rc;
            continue;
        }
        /* not a token (incomplete vocabulary): single bytes that are tokens, as llama.cpp */
        for (uint32_t j = 0; j < sym[i].n; j++) {
            int32_t bt = t->byte_tok[(uint8_t)p[j]];
            if (bt >= 0 && (rc = tok_ids_push(out, bt)))
                return rc;
        }
    }
    return 0;
}

int tok__bpe_encode(const struct tokenizer *t, const char *text, size_t len, struct tok_scratch *s,
                    struct tok_ids *out)
{
    const uint32_t *spans;
    size_t nspans;
    int rc = tok__pretok_split(t->pre, text, len, s, &spans, &nspans);
    if (rc)
        return rc;
    size_t maxw = 0;
    for (size_t i = 0; i < nspans; i++)
        if (spans[2 * i + 1] > maxw)
            maxw = spans[2 * i + 1];
    /* mapped word (<= 2 bytes per input byte) followed by the merge key buffer */
    if (tok__grow((void **)&s->bytes, &s->bytes_cap, 2 * maxw + t->max_merge_len + 2, 1))
        return AS_ENOMEM;
    char *w = s->bytes, *key = s->bytes + 2 * maxw + 1;
    for (size_t i = 0; i < nspans; i++) {
        const uint8_t *p = (const uint8_t *)text + spans[2 * i];
        size_t n = spans[2 * i + 1], wl = 0;
        for (size_t j = 0; j < n; j++)
            wl += tok_utf8_encode(tok__byte_to_cpt(p[j]), w + wl);
        if ((rc = bpe_word(t, w, wl, s, key, out)))
            return rc;
    }
    return 0;
}
