/*
 * jsonc.c - the JSON constraint automaton (see jsonc.h).
 *
 * State: up to JSONC_MAX_THREADS parse stacks ("threads"); a union node forks
 * one thread per alternative whose first byte fits, dead threads vanish and
 * identical ones merge. Frames are small fixed structs so a step is a few
 * copies of a few dozen bytes. Numbers and literals (enum values) end lazily:
 * the byte after them pops the frame and is fed to the parent.
 * Not for: the token mask (jsonc_mask.c), schema compilation (jsonc_schema.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "engine/jsonc.h"
#include "engine/jsonc_internal.h"

/* ---- automaton ------------------------------------------------------------- */

static int is_ws(int c)
{
    return c == ' ' || c == '\n' || c == '\t' || c == '\r';
}

static int is_hex(int c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

void jsonc__thread_copy(struct jthread *d, const struct jthread *s)
{
    d->depth = s->depth;
    d->ws = s->ws;
    memcpy(d->f, s->f, s->depth * sizeof s->f[0]);
}

static void emit(struct jstate *out, const struct jthread *t)
{
    size_t sz = t->depth * sizeof t->f[0];
    for (uint32_t i = 0; i < out->n; i++) {
        const struct jthread *o = &out->th[i];
        if (o->depth == t->depth && o->ws == t->ws && !memcmp(o->f, t->f, sz))
            return;
    }
    if (out->n < JSONC_MAX_THREADS)
        jsonc__thread_copy(&out->th[out->n++], t);
}

static int push(struct jthread *t, uint8_t kind, int32_t node)
{
    if (t->depth >= JSONC_MAX_DEPTH)
        return -1;
    struct jframe *f = &t->f[t->depth++];
    memset(f, 0, sizeof *f);
    f->kind = kind;
    f->node = (uint16_t)node;
    return 0;
}

static const struct jlit *lit(const struct jschema *s, uint32_t i)
{
    return &s->lits[i];
}

static int lit_byte(const struct jschema *s, uint32_t i, uint32_t pos)
{
    return (unsigned char)s->pool.data[s->lits[i].off + pos];
}

/* Could a value of (non-union) node n start with byte c? */
static int first_ok(const struct jschema *s, int32_t n, int c)
{
    const struct jnode *nd = &s->nodes[n];
    switch (nd->kind) {
    case JN_OBJECT:
        return c == '{';
    case JN_ARRAY:
        return c == '[';
    case JN_STRING:
        return c == '"';
    case JN_NUMBER:
    case JN_INTEGER:
        return c == '-' || (c >= '0' && c <= '9');
    case JN_LITS:
        for (int32_t i = 0; i < nd->count; i++)
            if (lit_byte(s, (uint32_t)(nd->first + i), 0) == c)
                return 1;
        return 0;
    }
    return 0;
}

static int num_complete(int st)
{
    return st == NS_ZERO || st == NS_INT || st == NS_FRAC || st == NS_EXP;
}

/* Next number state on byte c, or -1. */
static int num_next(int st, int c, int integer)
{
    int digit = c >= '0' && c <= '9';
    switch (st) {
    case NS_START:
        return c == '-' ? NS_MINUS : c == '0' ? NS_ZERO : digit ? NS_INT : -1;
    case NS_MINUS:
        return c == '0' ? NS_ZERO : digit ? NS_INT : -1;
    case NS_ZERO:
    case NS_INT:
        if (digit)
            return st == NS_INT ? NS_INT : -1;
        if (integer)
            return -1;
        return c == '.' ? NS_DOT : (c == 'e' || c == 'E') ? NS_E : -1;
    case NS_DOT:
        return digit ? NS_FRAC : -1;
    case NS_FRAC:
        return digit ? NS_FRAC : (c == 'e' || c == 'E') ? NS_E : -1;
    case NS_E:
        return (c == '+' || c == '-') ? NS_ESIGN : digit ? NS_EXP : -1;
    case NS_ESIGN:
    case NS_EXP:
        return digit ? NS_EXP : -1;
    }
    return -1;
}

static int lit_complete(const struct jschema *s, const struct jframe *f)
{
    return f->a < f->b && lit(s, f->a)->len == f->pos;
}

/*
 * Candidate keys of object node nd when the next declared prop index is lo:
 * lo up to the first required prop (inclusive), at most 64, as a bit mask
 * relative to lo.
 */
static void key_window(const struct jschema *s, const struct jnode *nd, uint32_t lo, uint32_t *mlo,
                       uint32_t *mhi)
{
    *mlo = *mhi = 0;
    for (uint32_t i = lo; i < (uint32_t)nd->count && i < lo + 64; i++) {
        if (i - lo < 32)
            *mlo |= 1u << (i - lo);
        else
            *mhi |= 1u << (i - lo - 32);
        if (s->props[nd->first + (int32_t)i].required)
            break;
    }
}

static int obj_closable(const struct jnode *nd, const struct jframe *f)
{
    return (int32_t)f->a > nd->last_required;
}

/* Called after the child on top of t was popped. */
static void child_done(struct jthread *t)
{
    if (t->depth == 0)
        return;
    struct jframe *p = &t->f[t->depth - 1];
    if (p->kind == JF_OBJ) {
        p->st = p->st == OS_KEY ? OS_COLON : OS_AFTER;
    } else if (p->kind == JF_ARR) {
        p->st = AS_AFTER;
        if (p->a < UINT32_MAX)
            p->a++;
    }
}

static void feed(const struct jschema *s, struct jthread *t, int c, struct jstate *out);

/* Starts a key in object frame f of node nd at '"'. 0 or -1. */
static int obj_key_start(const struct jschema *s, struct jthread *t, struct jframe *f)
{
    const struct jnode *nd = &s->nodes[f->node];
    if (nd->child >= 0 && nd->count == 0) {
        f->st = OS_KEY;
        return push(t, JF_STR, JN_ANY_STR);
    }
    key_window(s, nd, f->a, &f->mlo, &f->mhi);
    if (!f->mlo && !f->mhi)
        return -1;
    f->st = OS_KEYM;
    f->pos = 0;
    return 0;
}

/* Object key matching byte c. 0 or -1. */
static int obj_key_byte(const struct jschema *s, struct jframe *f, int c)
{
    const struct jnode *nd = &s->nodes[f->node];
    uint32_t lo = 0, hi = 0;
    int closed = -1;
    for (uint32_t k = 0; k < 64; k++) {
        uint32_t bit = k < 32 ? (f->mlo >> k) & 1u : (f->mhi >> (k - 32)) & 1u;
        if (!bit)
            continue;
        const struct jprop *p = &s->props[nd->first + (int32_t)(f->a + k)];
        if (p->len == f->pos) {
            if (c == '"' && closed < 0)
                closed = (int)k;
        } else if ((unsigned char)s->pool.data[p->off + f->pos] == c) {
            if (k < 32)
                lo |= 1u << k;
            else
                hi |= 1u << (k - 32);
        }
    }
    if (closed >= 0) {
        f->b = (uint16_t)(f->a + (uint32_t)closed);
        f->a = f->a + (uint32_t)closed + 1;
        f->st = OS_COLON;
        return 0;
    }
    if (!lo && !hi)
        return -1;
    f->mlo = lo;
    f->mhi = hi;
    f->pos++;
    return 0;
}

/* String content byte c. 1 stay, 2 closed, 0 reject. */
int jsonc__str_byte(struct jframe *f, int c)
{
    switch (f->st) {
    case SS_NORM:
        if (f->pos) {
            if (c < (f->b & 0xff) || c > (f->b >> 8))
                return 0;
            f->pos--;
            f->b = 0x80 | (0xbf << 8);
            return 1;
        }
        if (c == '"')
            return 2;
        if (c == '\\') {
            f->st = SS_ESC;
            return 1;
        }
        if (c < 0x20)
            return 0;
        if (c < 0x80)
            return 1;
        if (c >= 0xc2 && c <= 0xdf) {
            f->pos = 1;
            f->b = 0x80 | (0xbf << 8);
        } else if (c >= 0xe0 && c <= 0xef) {
            f->pos = 2;
            f->b = c == 0xe0   ? (0xa0 | (0xbf << 8))
                   : c == 0xed ? (0x80 | (0x9f << 8))
                               : (0x80 | (0xbf << 8));
        } else if (c >= 0xf0 && c <= 0xf4) {
            f->pos = 3;
            f->b = c == 0xf0   ? (0x90 | (0xbf << 8))
                   : c == 0xf4 ? (0x80 | (0x8f << 8))
                               : (0x80 | (0xbf << 8));
        } else {
            return 0;
        }
        return 1;
    case SS_ESC:
        if (c == 'u') {
            f->st = SS_U1;
            f->b = 0;
            return 1;
        }
        if (!strchr("\"\\/bfnrt", c) || c == 0)
            return 0;
        f->st = SS_NORM;
        return 1;
    case SS_U1:
        if (!is_hex(c))
            return 0;
        f->b = (c == 'd' || c == 'D');
        f->st = SS_U2;
        return 1;
    case SS_U2:
        /* \uD800-\uDFFF (surrogates) refused: a lone one breaks parsers. */
        if (!is_hex(c) || (f->b && !(c >= '0' && c <= '7')))
            return 0;
        f->b = 0;
        f->st = SS_U3;
        return 1;
    case SS_U3:
        if (!is_hex(c))
            return 0;
        f->st = SS_U4;
        return 1;
    case SS_U4:
        if (!is_hex(c))
            return 0;
        f->st = SS_NORM;
        return 1;
    }
    return 0;
}

/* Narrows literal frame f by byte c. 1 ok, 0 no candidate continues. */
static int lit_byte_step(const struct jschema *s, struct jframe *f, int c)
{
    uint32_t lo = f->a, hi = f->b, pos = f->pos;
    if (lo < hi && lit(s, lo)->len == pos)
        lo++; /* the complete one sorts first; it cannot continue */
    /* [lo, hi) share the first pos bytes and are sorted: binary search on byte pos. */
    uint32_t l = lo, h = hi;
    while (l < h) {
        uint32_t m = l + (h - l) / 2;
        if (lit_byte(s, m, pos) < c)
            l = m + 1;
        else
            h = m;
    }
    uint32_t first = l;
    h = hi;
    while (l < h) {
        uint32_t m = l + (h - l) / 2;
        if (lit_byte(s, m, pos) <= c)
            l = m + 1;
        else
            h = m;
    }
    if (first == l)
        return 0;
    f->a = first;
    f->b = (uint16_t)l;
    f->pos++;
    return 1;
}

static void feed(const struct jschema *s, struct jthread *t, int c, struct jstate *out)
{
    int ws = is_ws(c);
again:
    if (t->depth == 0)
        return; /* nothing may follow the document */
    struct jframe *f = &t->f[t->depth - 1];
    const struct jnode *nd = &s->nodes[f->node];
    switch (f->kind) {
    case JF_VAL:
        if (ws) {
            if (++t->ws > JSONC_MAX_WS)
                return;
            emit(out, t);
            return;
        }
        t->ws = 0;
        if (nd->kind == JN_UNION) {
            for (int32_t i = 0; i < nd->count; i++) {
                int32_t alt = s->alts[nd->first + i];
                if (!first_ok(s, alt, c))
                    continue;
                struct jthread u;
                jsonc__thread_copy(&u, t);
                u.f[u.depth - 1].node = (uint16_t)alt;
                feed(s, &u, c, out);
            }
            return;
        }
        switch (nd->kind) {
        case JN_OBJECT:
            if (c != '{')
                return;
            f->kind = JF_OBJ;
            f->st = OS_OPEN;
            f->a = 0;
            emit(out, t);
            return;
        case JN_ARRAY:
            if (c != '[')
                return;
            f->kind = JF_ARR;
            f->st = AS_OPEN;
            f->a = 0;
            emit(out, t);
            return;
        case JN_STRING:
            if (c != '"')
                return;
            f->kind = JF_STR;
            f->st = SS_NORM;
            emit(out, t);
            return;
        case JN_NUMBER:
        case JN_INTEGER:
            f->kind = JF_NUM;
            f->st = NS_START;
            f->b = nd->kind == JN_INTEGER;
            goto again;
        case JN_LITS:
            f->kind = JF_LIT;
            f->a = (uint32_t)nd->first;
            f->b = (uint16_t)(nd->first + nd->count);
            f->pos = 0;
            goto again;
        }
        return;
    case JF_OBJ:
        if (ws && f->st != OS_KEYM) {
            if (++t->ws > JSONC_MAX_WS)
                return;
            emit(out, t);
            return;
        }
        t->ws = 0;
        switch (f->st) {
        case OS_OPEN:
        case OS_COMMA:
            if (c == '"') {
                if (obj_key_start(s, t, f))
                    return;
            } else if (c == '}' && f->st == OS_OPEN && obj_closable(nd, f)) {
                t->depth--;
                child_done(t);
            } else {
                return;
            }
            emit(out, t);
            return;
        case OS_KEYM:
            if (obj_key_byte(s, f, c))
                return;
            emit(out, t);
            return;
        case OS_COLON:
            if (c != ':')
                return;
            f->st = OS_VAL;
            if (push(t, JF_VAL, nd->count ? s->props[nd->first + f->b].node : nd->child))
                return;
            emit(out, t);
            return;
        case OS_AFTER:
            if (c == ',') {
                if (nd->count && (int32_t)f->a >= nd->count)
                    return;
                f->st = OS_COMMA;
            } else if (c == '}' && obj_closable(nd, f)) {
                t->depth--;
                child_done(t);
            } else {
                return;
            }
            emit(out, t);
            return;
        }
        return;
    case JF_ARR:
        if (ws) {
            if (++t->ws > JSONC_MAX_WS)
                return;
            emit(out, t);
            return;
        }
        t->ws = 0;
        if (f->st == AS_OPEN || f->st == AS_AFTER) {
            if (c == ']' && f->a >= nd->min_items) {
                t->depth--;
                child_done(t);
                emit(out, t);
                return;
            }
            if (f->a >= nd->max_items)
                return;
            if (f->st == AS_AFTER) {
                if (c != ',')
                    return;
                f->st = AS_VAL;
                if (push(t, JF_VAL, nd->child))
                    return;
                emit(out, t);
                return;
            }
            f->st = AS_VAL;
            if (push(t, JF_VAL, nd->child))
                return;
            goto again;
        }
        return;
    case JF_STR:
        switch (jsonc__str_byte(f, c)) {
        case 0:
            return;
        case 2:
            t->depth--;
            child_done(t);
            break;
        }
        emit(out, t);
        return;
    case JF_NUM: {
        int st = num_next(f->st, c, f->b);
        /* Keep room to finish: an incomplete state needs one more digit. */
        int need = st < 0 ? 0 : num_complete(st) ? 1 : 2;
        if (st >= 0 && f->pos + need <= JSONC_MAX_NUMBER) {
            f->st = (uint8_t)st;
            f->pos++;
            t->ws = 0;
            emit(out, t);
            return;
        }
        if (st >= 0 || !num_complete(f->st))
            return;
        t->depth--;
        child_done(t);
        goto again;
    }
    case JF_LIT:
        if (lit_byte_step(s, f, c)) {
            t->ws = 0;
            emit(out, t);
            return;
        }
        if (!lit_complete(s, f))
            return;
        t->depth--;
        child_done(t);
        goto again;
    }
}

void jsonc__step(const struct jschema *s, const struct jstate *in, int c, struct jstate *out)
{
    out->n = 0;
    for (uint32_t i = 0; i < in->n; i++) {
        struct jthread t;
        jsonc__thread_copy(&t, &in->th[i]);
        feed(s, &t, c, out);
    }
}

static int thread_complete(const struct jschema *s, const struct jthread *t)
{
    if (t->depth == 0)
        return 1;
    if (t->depth != 1)
        return 0;
    const struct jframe *f = &t->f[0];
    return (f->kind == JF_NUM && num_complete(f->st)) || (f->kind == JF_LIT && lit_complete(s, f));
}

static int state_complete(const struct jschema *s, const struct jstate *st)
{
    for (uint32_t i = 0; i < st->n; i++)
        if (thread_complete(s, &st->th[i]))
            return 1;
    return 0;
}

/* ---- lifecycle ------------------------------------------------------------- */

static struct jsonc *jsonc_wrap(struct jschema *s)
{
    if (!s)
        return NULL;
    struct jsonc *c = calloc(1, sizeof *c);
    if (!c) {
        jsonc__schema_free(s);
        return NULL;
    }
    c->s = s;
    c->cur.n = 1;
    c->cur.th[0].depth = 1;
    c->cur.th[0].f[0].kind = JF_VAL;
    c->cur.th[0].f[0].node = (uint16_t)s->root;
    return c;
}

struct jsonc *jsonc_new_object(void)
{
    return jsonc_wrap(jsonc__schema_any());
}

struct jsonc *jsonc_new_schema(const cJSON *schema, char *err, size_t errlen)
{
    struct jsonc *c = jsonc_wrap(jsonc__schema_compile(schema, err, errlen));
    if (!c && err && errlen && !err[0])
        snprintf(err, errlen, "out of memory");
    return c;
}

struct jsonc *jsonc_new_tools(const cJSON *tools, const char *only, const char *args_key,
                              int as_array, char *err, size_t errlen)
{
    struct jsonc *c = jsonc_wrap(jsonc__schema_tools(tools, only, args_key ? args_key : "arguments",
                                                     as_array, 0, err, errlen));
    if (!c && err && errlen && !err[0])
        snprintf(err, errlen, "out of memory");
    return c;
}

struct jsonc *jsonc_new_tool_args(const cJSON *tools, const char *name, char *err, size_t errlen)
{
    struct jsonc *c = jsonc_wrap(jsonc__schema_tools(tools, name, "arguments", 0, 1, err, errlen));
    if (!c && err && errlen && !err[0])
        snprintf(err, errlen, "out of memory");
    return c;
}

void jsonc_free(struct jsonc *c)
{
    if (!c)
        return;
    jsonc__schema_free(c->s);
    free(c->scan);
    free(c->allowed);
    free(c);
}

const char *jsonc_unsupported(const struct jsonc *c)
{
    return c->s->unsupported.data ? c->s->unsupported.data : "";
}

/* The scan states (SCAN_DEPTH + 1 prefix states and 2 spares), allocated once per jsonc. */
int jsonc__ensure_scan(struct jsonc *c)
{
    if (!c->scan)
        c->scan = malloc((SCAN_DEPTH + 3) * sizeof *c->scan);
    return c->scan ? 0 : AS_ENOMEM;
}

int jsonc_accept(struct jsonc *c, const char *bytes, size_t n)
{
    if (c->finished)
        return n ? AS_EINVAL : 0;
    if (n == 0)
        return 0;
    if (jsonc__ensure_scan(c))
        return AS_ENOMEM;
    struct jstate *a = &c->scan[SCAN_DEPTH + 1];
    const struct jstate *in = &c->cur;
    for (size_t i = 0; i < n; i++) {
        struct jstate *o = &a[i & 1];
        jsonc__step(c->s, in, (unsigned char)bytes[i], o);
        if (o->n == 0)
            return AS_EINVAL;
        in = o;
    }
    c->cur.n = in->n;
    for (uint32_t i = 0; i < in->n; i++)
        jsonc__thread_copy(&c->cur.th[i], &in->th[i]);
    return 0;
}

int jsonc_done(const struct jsonc *c)
{
    return c->finished || state_complete(c->s, &c->cur);
}
