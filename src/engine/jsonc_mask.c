/*
 * jsonc_mask.c - the per-tokenizer byte table and the logit mask (see jsonc.h).
 *
 * The vocabulary's token byte strings are sorted once (jsonc_vocab); the scan
 * walks them in order keeping the automaton state after every prefix byte of
 * the previous token, so a shared prefix is simulated once (an implicit trie),
 * and a token whose prefix died is skipped without simulation. Inside a
 * string every "plain" token (no quote, backslash, control byte, only whole
 * UTF-8 characters) is allowed wholesale and only the rest is scanned.
 * Not for: the automaton itself (jsonc.c), schema compilation (jsonc_schema.c).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "engine/jsonc.h"
#include "engine/jsonc_internal.h"
#include "engine/tokenizer.h"

struct jtok {
    const char *p; /* into the vocabulary's byte pool */
    uint32_t len, id;
};

struct jsonc_vocab {
    uint32_t n;
    char *bytes;
    uint8_t *flags; /* (n) VF_* */
    uint32_t *all;  /* ids of non-empty non-EOG tokens sorted by bytes */
    uint16_t *lcp;  /* lcp[i] = common prefix of all[i-1] and all[i] */
    uint32_t n_all;
    uint32_t *np; /* the same for tokens that are not plain */
    uint16_t *np_lcp;
    uint32_t n_np;
    uint32_t *off, *len;
};

enum { VF_EOG = 1, VF_PLAIN = 2 };

int jsonc_accept_token(struct jsonc *c, const struct jsonc_vocab *v, int32_t id)
{
    if (id < 0 || (uint32_t)id >= v->n)
        return AS_EINVAL;
    if (v->flags[id] & VF_EOG) {
        if (!jsonc_done(c))
            return AS_EINVAL;
        c->finished = 1;
        return 0;
    }
    if (v->len[id] == 0)
        return AS_EINVAL;
    return jsonc_accept(c, v->bytes + v->off[id], v->len[id]);
}

/* ---- vocabulary ------------------------------------------------------------ */

static int plain_bytes(const unsigned char *p, size_t n)
{
    struct jframe f;
    memset(&f, 0, sizeof f);
    for (size_t i = 0; i < n; i++)
        if (jsonc__str_byte(&f, p[i]) != 1)
            return 0;
    return f.st == SS_NORM && f.pos == 0;
}

static int tok_cmp(const void *x, const void *y)
{
    const struct jtok *a = x, *b = y;
    size_t n = a->len < b->len ? a->len : b->len;
    int r = memcmp(a->p, b->p, n);
    if (r)
        return r;
    return a->len < b->len ? -1 : a->len > b->len;
}

static uint16_t lcp_of(const struct jtok *a, const struct jtok *b)
{
    size_t n = a->len < b->len ? a->len : b->len, i = 0;
    while (i < n && i < 65535 && a->p[i] == b->p[i])
        i++;
    return (uint16_t)i;
}

void jsonc_vocab_free(struct jsonc_vocab *v)
{
    if (!v)
        return;
    free(v->bytes);
    free(v->flags);
    free(v->all);
    free(v->lcp);
    free(v->np);
    free(v->np_lcp);
    free(v->off);
    free(v->len);
    free(v);
}

uint32_t jsonc_vocab_n(const struct jsonc_vocab *v)
{
    return v->n;
}

struct jsonc_vocab *jsonc_vocab_new(const struct tokenizer *t)
{
    struct jsonc_vocab *v = calloc(1, sizeof *v);
    struct jtok *toks = NULL;
    struct buf all, piece;
    buf_init(&all, (size_t)1 << 30);
    buf_init(&piece, TOK_MAX_TOKEN_BYTES + 16);
    if (!v)
        goto fail;
    v->n = tok_n_vocab(t);
    v->flags = calloc(v->n ? v->n : 1, 1);
    v->off = calloc(v->n ? v->n : 1, sizeof *v->off);
    v->len = calloc(v->n ? v->n : 1, sizeof *v->len);
    toks = calloc(v->n ? v->n : 1, sizeof *toks);
    v->all = calloc(v->n ? v->n : 1, sizeof *v->all);
    v->lcp = calloc(v->n ? v->n : 1, sizeof *v->lcp);
    v->np = calloc(v->n ? v->n : 1, sizeof *v->np);
    v->np_lcp = calloc(v->n ? v->n : 1, sizeof *v->np_lcp);
    if (!v->flags || !v->off || !v->len || !toks || !v->all || !v->lcp || !v->np || !v->np_lcp)
        goto fail;
    uint32_t nt = 0;
    for (uint32_t id = 0; id < v->n; id++) {
        if (tok_is_eog(t, (int32_t)id)) {
            v->flags[id] = VF_EOG;
            continue;
        }
        buf_reset(&piece);
        if (tok_piece(t, (int32_t)id, 0, &piece))
            goto fail;
        v->off[id] = (uint32_t)all.len;
        v->len[id] = (uint32_t)piece.len;
        if (piece.len == 0)
            continue;
        if (buf_append(&all, piece.data, piece.len) || all.len > UINT32_MAX)
            goto fail;
        if (plain_bytes((const unsigned char *)piece.data, piece.len))
            v->flags[id] |= VF_PLAIN;
        toks[nt].len = v->len[id];
        toks[nt].id = id;
        nt++;
    }
    v->bytes = buf_steal(&all);
    if (!v->bytes && !(v->bytes = calloc(1, 1)))
        goto fail;
    for (uint32_t i = 0; i < nt; i++)
        toks[i].p = v->bytes + v->off[toks[i].id];
    qsort(toks, nt, sizeof *toks, tok_cmp);
    int prev_np = -1;
    for (uint32_t i = 0; i < nt; i++) {
        v->all[i] = toks[i].id;
        v->lcp[i] = i ? lcp_of(&toks[i - 1], &toks[i]) : 0;
        if (!(v->flags[toks[i].id] & VF_PLAIN)) {
            v->np[v->n_np] = toks[i].id;
            v->np_lcp[v->n_np] = prev_np >= 0 ? lcp_of(&toks[prev_np], &toks[i]) : 0;
            v->n_np++;
            prev_np = (int)i;
        }
    }
    v->n_all = nt;
    free(toks);
    buf_free(&piece);
    return v;
fail:
    free(toks);
    buf_free(&all);
    buf_free(&piece);
    jsonc_vocab_free(v);
    return NULL;
}

/* ---- mask ------------------------------------------------------------------ */

/* Marks allowed[id] for every token in list whose bytes keep base alive. */
static void scan(struct jsonc *c, const struct jsonc_vocab *v, const uint32_t *list,
                 const uint16_t *lcp, uint32_t n)
{
    struct jstate *st = c->scan; /* st[0..SCAN_DEPTH]: state after k bytes; 2 spare */
    struct jstate *spare = &st[SCAN_DEPTH + 1];
    size_t alive = 0;            /* st[0..alive] hold the previous token's prefix states */
    size_t dead_at = (size_t)-1; /* byte index at which the previous token died */
    for (uint32_t i = 0; i < n; i++) {
        uint32_t id = list[i];
        size_t l = lcp[i];
        if (dead_at != (size_t)-1 && l > dead_at)
            continue; /* shares the byte that killed the previous token */
        const unsigned char *p = (const unsigned char *)v->bytes + v->off[id];
        size_t len = v->len[id];
        size_t k = l < alive ? l : alive;
        const struct jstate *in = &st[k];
        dead_at = (size_t)-1;
        for (; k < len; k++) {
            struct jstate *o = k + 1 <= SCAN_DEPTH ? &st[k + 1] : &spare[(k & 1)];
            jsonc__step(c->s, in, p[k], o);
            if (o->n == 0) {
                dead_at = k;
                break;
            }
            in = o;
        }
        if (dead_at == (size_t)-1) {
            c->allowed[id] = 1;
            alive = len < SCAN_DEPTH ? len : SCAN_DEPTH;
        } else {
            alive = dead_at < SCAN_DEPTH ? dead_at : SCAN_DEPTH;
        }
    }
}

int jsonc_mask(struct jsonc *c, const struct jsonc_vocab *v, float *logits)
{
    if (jsonc__ensure_scan(c))
        return AS_ENOMEM;
    if (c->n_allowed < v->n || !c->allowed) {
        uint8_t *a = realloc(c->allowed, v->n ? v->n : 1);
        if (!a)
            return AS_ENOMEM;
        c->allowed = a;
        c->n_allowed = v->n;
    }
    memset(c->allowed, 0, v->n);
    int done = jsonc_done(c);
    if (!c->finished) {
        struct jstate *base = &c->scan[0];
        base->n = c->cur.n;
        int plain = 0;
        for (uint32_t i = 0; i < c->cur.n; i++) {
            const struct jthread *t = &c->cur.th[i];
            jsonc__thread_copy(&base->th[i], t);
            const struct jframe *f = t->depth ? &t->f[t->depth - 1] : NULL;
            if (f && f->kind == JF_STR && f->st == SS_NORM && f->pos == 0)
                plain = 1;
        }
        if (plain) {
            for (uint32_t id = 0; id < v->n; id++)
                if (v->flags[id] & VF_PLAIN)
                    c->allowed[id] = 1;
            scan(c, v, v->np, v->np_lcp, v->n_np);
        } else {
            scan(c, v, v->all, v->lcp, v->n_all);
        }
    }
    int n_ok = 0;
    for (uint32_t id = 0; id < v->n; id++) {
        if ((v->flags[id] & VF_EOG) && done)
            c->allowed[id] = 1;
        if (c->allowed[id])
            n_ok++;
        else
            logits[id] = -INFINITY;
    }
    return n_ok;
}
