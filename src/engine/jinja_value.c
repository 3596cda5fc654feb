/*
 * jinja_value.c - values of the Jinja interpreter: the arena, Python-exact
 * printing (str(), repr(), float repr, json.dumps), equality and ordering,
 * conversion from cJSON, and the UTF-8 helpers strings need (Python indexes
 * strings by code point). Not for: operators and filters (jinja_eval.c,
 * jinja_filters.c).
 */
#include "engine/jinja_internal.h"

#include "core/err.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JJ_MAX_NESTING 200 /* printing / comparing nested containers */

/* ---- arena ---------------------------------------------------------------- */

struct jj_chunk {
    struct jj_chunk *next;
    size_t size, used;
    _Alignas(16) unsigned char data[];
};

void jj_arena_init(struct jj_arena *a, size_t max)
{
    a->head = NULL;
    a->total = 0;
    a->max = max;
}

void jj_arena_free(struct jj_arena *a)
{
    if (!a)
        return;
    struct jj_chunk *c = a->head;
    while (c) {
        struct jj_chunk *n = c->next;
        free(c);
        c = n;
    }
    a->head = NULL;
    a->total = 0;
}

void *jj_alloc(struct jj_arena *a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    if (n == 0)
        n = 16;
    struct jj_chunk *c = a->head;
    if (!c || c->size - c->used < n) {
        size_t size = c ? c->size * 2 : 16384;
        if (size > (1u << 20))
            size = 1u << 20;
        if (size < n)
            size = n;
        if (n > a->max || a->total > a->max - size)
            return NULL;
        c = malloc(sizeof(*c) + size);
        if (!c)
            return NULL;
        c->size = size;
        c->used = 0;
        c->next = a->head;
        a->head = c;
        a->total += size;
    }
    void *p = c->data + c->used;
    c->used += n;
    memset(p, 0, n);
    return p;
}

char *jj_strndup(struct jj_arena *a, const char *p, size_t n)
{
    char *s = jj_alloc(a, n + 1);
    if (s && n)
        memcpy(s, p, n);
    return s;
}

/* ---- UTF-8 ---------------------------------------------------------------- */

uint32_t jj_utf8_decode(const char *p, size_t n, size_t *adv)
{
    const unsigned char *s = (const unsigned char *)p;
    unsigned c = s[0];
    size_t len = c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
    if (c >= 0x80 && c < 0xc0)
        len = 1;
    if (len > n)
        len = 1;
    uint32_t cp = len == 1 ? c : len == 2 ? c & 0x1f : len == 3 ? c & 0x0f : c & 0x07;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) {
            *adv = 1;
            return c;
        }
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    *adv = len;
    return cp;
}

size_t jj_utf8_len(const char *p, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += ((unsigned char)p[i] & 0xc0) != 0x80;
    return k;
}

size_t jj_utf8_offset(const char *p, size_t n, size_t cp)
{
    size_t i = 0;
    while (i < n && cp > 0) {
        size_t adv;
        jj_utf8_decode(p + i, n - i, &adv);
        i += adv;
        cp--;
    }
    return i;
}

int jj_is_space(uint32_t c)
{
    return (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x20) || c == 0x85 || c == 0xa0 ||
           c == 0x1680 || (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 ||
           c == 0x202f || c == 0x205f || c == 0x3000;
}

/* ---- constructors ----------------------------------------------------------- */

struct jv_list *jv_list_new(struct jj_ctx *c, size_t len)
{
    struct jv_list *l = jj_alloc(&c->arena, sizeof(*l));
    if (!l)
        return NULL;
    l->len = len;
    /* never NULL, so empty lists can be memcpy'd from */
    if (!(l->items = jj_alloc(&c->arena, (len ? len : 1) * sizeof(struct jv))))
        return NULL;
    return l;
}

struct jv_dict *jv_dict_new(struct jj_ctx *c, size_t cap)
{
    struct jv_dict *d = jj_alloc(&c->arena, sizeof(*d));
    if (!d)
        return NULL;
    if (cap < 4)
        cap = 4;
    d->cap = cap;
    d->keys = jj_alloc(&c->arena, cap * sizeof(struct jv));
    d->vals = jj_alloc(&c->arena, cap * sizeof(struct jv));
    return d->keys && d->vals ? d : NULL;
}

struct jv *jv_dict_get(struct jv_dict *d, struct jv key)
{
    for (size_t i = 0; i < d->len; i++)
        if (jv_equal(d->keys[i], key))
            return &d->vals[i];
    return NULL;
}

struct jv *jv_dict_get_str(struct jv_dict *d, const char *p, size_t len)
{
    for (size_t i = 0; i < d->len; i++)
        if (d->keys[i].kind == JV_STR && d->keys[i].u.s.len == len &&
            memcmp(d->keys[i].u.s.p, p, len) == 0)
            return &d->vals[i];
    return NULL;
}

int jv_dict_set(struct jj_ctx *c, struct jv_dict *d, struct jv key, struct jv val)
{
    struct jv *slot = jv_dict_get(d, key);
    if (slot) {
        *slot = val;
        return 0;
    }
    if (d->len == d->cap) {
        size_t cap = d->cap * 2;
        struct jv *k = jj_alloc(&c->arena, cap * sizeof(struct jv));
        struct jv *v = jj_alloc(&c->arena, cap * sizeof(struct jv));
        if (!k || !v)
            return JJ_OOM(c);
        memcpy(k, d->keys, d->len * sizeof(struct jv));
        memcpy(v, d->vals, d->len * sizeof(struct jv));
        d->keys = k;
        d->vals = v;
        d->cap = cap;
    }
    d->keys[d->len] = key;
    d->vals[d->len] = val;
    d->len++;
    return 0;
}

int jv_from_buf(struct jj_ctx *c, const struct buf *b, struct jv *out)
{
    char *s = jj_strndup(&c->arena, b->data ? b->data : "", b->len);
    if (!s)
        return JJ_OOM(c);
    *out = jv_str(s, b->len);
    return 0;
}

int jv_from_json(struct jj_ctx *c, const cJSON *j, struct jv *out, int depth)
{
    int rc;
    if (depth > 1000)
        return jj_fail(c, AS_ERANGE, "context JSON nested too deeply");
    if (!j || cJSON_IsNull(j)) {
        *out = jv_none();
    } else if (cJSON_IsBool(j)) {
        *out = jv_bool(cJSON_IsTrue(j));
    } else if (cJSON_IsNumber(j)) {
        double d = j->valuedouble;
        if (d == floor(d) && fabs(d) < 9.2e18)
            *out = jv_int((int64_t)d);
        else
            *out = jv_float(d);
    } else if (cJSON_IsString(j)) {
        const char *s = j->valuestring ? j->valuestring : "";
        *out = jv_str(s, strlen(s));
    } else if (cJSON_IsArray(j)) {
        size_t n = (size_t)cJSON_GetArraySize(j), i = 0;
        struct jv_list *l = jv_list_new(c, n);
        if (!l)
            return JJ_OOM(c);
        for (const cJSON *e = j->child; e && i < n; e = e->next, i++)
            if ((rc = jv_from_json(c, e, &l->items[i], depth + 1)))
                return rc;
        *out = jv_list(l, 0);
    } else if (cJSON_IsObject(j)) {
        struct jv_dict *d = jv_dict_new(c, (size_t)cJSON_GetArraySize(j));
        if (!d)
            return JJ_OOM(c);
        for (const cJSON *e = j->child; e; e = e->next) {
            struct jv v;
            const char *k = e->string ? e->string : "";
            if ((rc = jv_from_json(c, e, &v, depth + 1)) ||
                (rc = jv_dict_set(c, d, jv_str(k, strlen(k)), v)))
                return rc;
        }
        *out = jv_dict(d);
    } else {
        *out = jv_none();
    }
    return 0;
}

/* ---- truthiness, equality, ordering -------------------------------------- */

int jv_truthy(struct jv v)
{
    switch (v.kind) {
    case JV_UNDEF:
    case JV_NONE:
        return 0;
    case JV_BOOL:
    case JV_INT:
        return v.u.i != 0;
    case JV_FLOAT:
        return v.u.f != 0.0;
    case JV_STR:
        return v.u.s.len != 0;
    case JV_LIST:
        return v.seq == JSEQ_GEN || v.seq == JSEQ_REVITER || v.u.l->len != 0;
    case JV_DICT:
        return v.u.d->len != 0;
    default:
        return 1;
    }
}

const char *jv_type_name(struct jv v)
{
    static const char *names[] = {"Undefined", "NoneType",    "bool",    "int",
                                  "float",     "str",         "list",    "dict",
                                  "Namespace", "LoopContext", "function"};
    if (v.kind == JV_LIST && v.seq != JSEQ_LIST) {
        static const char *const seqs[] = {"list",       "generator", "list_reverseiterator",
                                           "dict_items", "dict_keys", "dict_values"};
        return seqs[v.seq < 6 ? v.seq : 0];
    }
    if (v.kind == JV_LIST && v.tuple)
        return "tuple";
    return v.kind <= JV_FUNC ? names[v.kind] : "object";
}

static int is_num(struct jv v)
{
    return v.kind == JV_BOOL || v.kind == JV_INT || v.kind == JV_FLOAT;
}

static double num_f(struct jv v)
{
    return v.kind == JV_FLOAT ? v.u.f : (double)v.u.i;
}

static int equal_rec(struct jv a, struct jv b, int depth)
{
    if (depth > JJ_MAX_NESTING)
        return 0;
    if (is_num(a) && is_num(b)) {
        if (a.kind != JV_FLOAT && b.kind != JV_FLOAT)
            return a.u.i == b.u.i;
        return num_f(a) == num_f(b);
    }
    if (a.kind != b.kind)
        return 0;
    switch (a.kind) {
    case JV_UNDEF:
    case JV_NONE:
        return 1;
    case JV_STR:
        return a.u.s.len == b.u.s.len && memcmp(a.u.s.p, b.u.s.p, a.u.s.len) == 0;
    case JV_LIST:
        if (a.seq != b.seq || ((a.seq == JSEQ_GEN || a.seq == JSEQ_REVITER) && a.u.l != b.u.l))
            return 0;
        if (a.tuple != b.tuple || a.u.l->len != b.u.l->len)
            return 0;
        for (size_t i = 0; i < a.u.l->len; i++)
            if (!equal_rec(a.u.l->items[i], b.u.l->items[i], depth + 1))
                return 0;
        return 1;
    case JV_DICT:
        if (a.u.d->len != b.u.d->len)
            return 0;
        for (size_t i = 0; i < a.u.d->len; i++) {
            struct jv *o = NULL;
            for (size_t k = 0; k < b.u.d->len; k++)
                if (equal_rec(a.u.d->keys[i], b.u.d->keys[k], depth + 1)) {
                    o = &b.u.d->vals[k];
                    break;
                }
            if (!o || !equal_rec(a.u.d->vals[i], *o, depth + 1))
                return 0;
        }
        return 1;
    case JV_NS:
        return a.u.d == b.u.d;
    case JV_LOOP:
        return a.u.loop == b.u.loop;
    case JV_FUNC:
        return a.u.fn == b.u.fn;
    default:
        return 0;
    }
}

int jv_equal(struct jv a, struct jv b)
{
    return equal_rec(a, b, 0);
}

static int less_rec(struct jj_ctx *c, struct jv a, struct jv b, int *lt, int depth)
{
    if (depth > JJ_MAX_NESTING)
        return jj_fail(c, AS_ERANGE, "values nested too deeply to compare");
    if (is_num(a) && is_num(b)) {
        if (a.kind != JV_FLOAT && b.kind != JV_FLOAT)
            *lt = a.u.i < b.u.i;
        else
            *lt = num_f(a) < num_f(b);
        return 0;
    }
    if (a.kind == JV_STR && b.kind == JV_STR) {
        /* UTF-8 byte order is code point order */
        size_t n = a.u.s.len < b.u.s.len ? a.u.s.len : b.u.s.len;
        int r = n ? memcmp(a.u.s.p, b.u.s.p, n) : 0;
        *lt = r < 0 || (r == 0 && a.u.s.len < b.u.s.len);
        return 0;
    }
    if (a.kind == JV_LIST && b.kind == JV_LIST && a.tuple == b.tuple) {
        size_t n = a.u.l->len < b.u.l->len ? a.u.l->len : b.u.l->len;
        for (size_t i = 0; i < n; i++) {
            if (equal_rec(a.u.l->items[i], b.u.l->items[i], depth + 1))
                continue;
            return less_rec(c, a.u.l->items[i], b.u.l->items[i], lt, depth + 1);
        }
        *lt = a.u.l->len < b.u.l->len;
        return 0;
    }
    return jj_fail(c, AS_EINVAL, "'<' not supported between instances of '%s' and '%s'",
                   jv_type_name(a), jv_type_name(b));
}

int jv_less(struct jj_ctx *c, struct jv a, struct jv b, int *lt)
{
    return less_rec(c, a, b, lt, 0);
}

/* ---- printing --------------------------------------------------------------- */

static int out_err(struct jj_ctx *c, int rc)
{
    if (rc == AS_ENOMEM) /* a bounded buffer hit its maximum */
        return jj_fail(c, AS_ERANGE, "string too large (template output limit)");
    return rc;
}

int jv_write_float(struct buf *b, double f)
{
    char tmp[40], digits[24];
    if (isnan(f))
        return buf_append_cstr(b, "nan");
    if (isinf(f))
        return buf_append_cstr(b, f < 0 ? "-inf" : "inf");
    if (f == 0.0)
        return buf_append_cstr(b, signbit(f) ? "-0.0" : "0.0");
    /* shortest %.{p}e that round-trips, as Python's repr does */
    int p;
    for (p = 0; p < 17; p++) {
        snprintf(tmp, sizeof(tmp), "%.*e", p, f);
        if (strtod(tmp, NULL) == f)
            break;
    }
    if (p == 17)
        snprintf(tmp, sizeof(tmp), "%.16e", f);
    /* split "-d.ddde+XX" into sign, digits and exponent */
    const char *s = tmp;
    int neg = 0, nd = 0;
    if (*s == '-') {
        neg = 1;
        s++;
    }
    for (; *s && *s != 'e'; s++)
        if (*s != '.')
            digits[nd++] = *s;
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    digits[nd] = '\0';
    int exp10 = atoi(s + 1);
    int rc = 0;
    if (neg)
        rc |= buf_append_char(b, '-');
    if (exp10 >= -4 && exp10 < 16) {
        if (exp10 < 0) {
            rc |= buf_append_cstr(b, "0.");
            for (int i = 0; i < -exp10 - 1; i++)
                rc |= buf_append_char(b, '0');
            rc |= buf_append(b, digits, (size_t)nd);
        } else if (exp10 + 1 >= nd) {
            rc |= buf_append(b, digits, (size_t)nd);
            for (int i = nd; i < exp10 + 1; i++)
                rc |= buf_append_char(b, '0');
            rc |= buf_append_cstr(b, ".0");
        } else {
            rc |= buf_append(b, digits, (size_t)exp10 + 1);
            rc |= buf_append_char(b, '.');
            rc |= buf_append(b, digits + exp10 + 1, (size_t)(nd - exp10 - 1));
        }
    } else {
        rc |= buf_append_char(b, digits[0]);
        if (nd > 1) {
            rc |= buf_append_char(b, '.');
            rc |= buf_append(b, digits + 1, (size_t)nd - 1);
        }
        rc |= buf_printf(b, "e%c%02d", exp10 < 0 ? '-' : '+', exp10 < 0 ? -exp10 : exp10);
    }
    return rc ? AS_ENOMEM : 0;
}

/* Code points Python's str.isprintable() rejects (a practical subset). */
static int py_unprintable(uint32_t cp)
{
    return cp < 0x20 || (cp >= 0x7f && cp <= 0xa0) || cp == 0xad || cp == 0x1680 ||
           (cp >= 0x2000 && cp <= 0x200f) || (cp >= 0x2028 && cp <= 0x202f) ||
           (cp >= 0x205f && cp <= 0x2064) || cp == 0x3000 || cp == 0xfeff ||
           (cp >= 0xe000 && cp <= 0xf8ff) || (cp >= 0xfff9 && cp <= 0xfffb);
}

static int write_str_repr(struct buf *b, const char *p, size_t n)
{
    int has_sq = memchr(p, '\'', n) != NULL, has_dq = memchr(p, '"', n) != NULL;
    char q = has_sq && !has_dq ? '"' : '\'';
    int rc = buf_append_char(b, q);
    size_t i = 0;
    while (i < n && !rc) {
        size_t adv;
        uint32_t cp = jj_utf8_decode(p + i, n - i, &adv);
        if (cp == (uint32_t)q || cp == '\\') {
            rc = buf_append_char(b, '\\') || buf_append_char(b, (char)cp);
        } else if (cp == '\n') {
            rc = buf_append_cstr(b, "\\n");
        } else if (cp == '\r') {
            rc = buf_append_cstr(b, "\\r");
        } else if (cp == '\t') {
            rc = buf_append_cstr(b, "\\t");
        } else if (py_unprintable(cp)) {
            rc = cp < 0x100 ? buf_printf(b, "\\x%02x", cp) : buf_printf(b, "\\u%04x", cp);
        } else {
            rc = buf_append(b, p + i, adv);
        }
        i += adv;
    }
    if (!rc)
        rc = buf_append_char(b, q);
    return rc ? AS_ENOMEM : 0;
}

static int write_rec(struct jj_ctx *c, struct buf *b, struct jv v, int repr, int depth)
{
    int rc = 0;
    if (depth > JJ_MAX_NESTING)
        return jj_fail(c, AS_ERANGE, "value nested too deeply to print");
    switch (v.kind) {
    case JV_UNDEF: /* str() is empty, repr() inside a container names it */
        rc = repr ? buf_append_cstr(b, "Undefined") : 0;
        break;
    case JV_NONE:
        rc = buf_append_cstr(b, "None");
        break;
    case JV_BOOL:
        rc = buf_append_cstr(b, v.u.i ? "True" : "False");
        break;
    case JV_INT:
        rc = buf_printf(b, "%lld", (long long)v.u.i);
        break;
    case JV_FLOAT:
        rc = jv_write_float(b, v.u.f);
        break;
    case JV_STR:
        if (jj_charge(c, v.u.s.len / 64))
            return AS_ERANGE;
        rc = repr ? write_str_repr(b, v.u.s.p, v.u.s.len) : buf_append(b, v.u.s.p, v.u.s.len);
        break;
    case JV_LIST: {
        const struct jv_list *l = v.u.l;
        static const char *const views[] = {
            "", "", "", "dict_items(", "dict_keys(", "dict_values("};
        if (v.seq == JSEQ_GEN || v.seq == JSEQ_REVITER) {
            /* Python prints an address here; nothing stable to match */
            rc = buf_append_cstr(b, v.seq == JSEQ_GEN ? "<generator object>"
                                                      : "<list_reverseiterator object>");
            break;
        }
        if (jj_charge(c, l->len))
            return AS_ERANGE;
        if (v.seq != JSEQ_LIST && buf_append_cstr(b, views[v.seq]))
            return out_err(c, AS_ENOMEM);
        rc = buf_append_char(b, v.tuple ? '(' : '[');
        for (size_t i = 0; i < l->len && !rc; i++) {
            if (i)
                rc = buf_append_cstr(b, ", ");
            if (!rc)
                rc = write_rec(c, b, l->items[i], 1, depth + 1);
        }
        if (!rc && v.tuple && l->len == 1)
            rc = buf_append_char(b, ',');
        if (!rc)
            rc = buf_append_char(b, v.tuple ? ')' : ']');
        if (!rc && v.seq != JSEQ_LIST)
            rc = buf_append_char(b, ')');
        break;
    }
    case JV_DICT:
    case JV_NS: {
        const struct jv_dict *d = v.u.d;
        if (jj_charge(c, d->len))
            return AS_ERANGE;
        if (v.kind == JV_NS)
            rc = buf_append_cstr(b, "<Namespace ");
        if (!rc)
            rc = buf_append_char(b, '{');
        for (size_t i = 0; i < d->len && !rc; i++) {
            if (i)
                rc = buf_append_cstr(b, ", ");
            if (!rc)
                rc = write_rec(c, b, d->keys[i], 1, depth + 1);
            if (!rc)
                rc = buf_append_cstr(b, ": ");
            if (!rc)
                rc = write_rec(c, b, d->vals[i], 1, depth + 1);
        }
        if (!rc)
            rc = buf_append_char(b, '}');
        if (!rc && v.kind == JV_NS)
            rc = buf_append_char(b, '>');
        break;
    }
    case JV_LOOP:
        rc = buf_printf(b, "<LoopContext %zu/%zu>", v.u.loop->index0 + 1, v.u.loop->items->len);
        break;
    case JV_FUNC:
        if (v.u.fn->kind == JF_MACRO)
            rc = buf_printf(b, "<Macro '%.*s'>", (int)v.u.fn->macro->name.len,
                            v.u.fn->macro->name.p);
        else
            rc = buf_append_cstr(b, "<function>");
        break;
    }
    if (rc && rc != AS_ENOMEM)
        return rc;
    return out_err(c, rc);
}

int jv_write_str(struct jj_ctx *c, struct buf *b, struct jv v)
{
    return write_rec(c, b, v, 0, 0);
}

int jv_write_repr(struct jj_ctx *c, struct buf *b, struct jv v)
{
    return write_rec(c, b, v, 1, 0);
}

int jv_to_str(struct jj_ctx *c, struct jv v, struct jv *out)
{
    if (v.kind == JV_STR) {
        *out = v;
        return 0;
    }
    if (v.kind == JV_UNDEF) {
        *out = jv_str("", 0);
        return 0;
    }
    struct buf b;
    buf_init(&b, c->opts.max_output);
    int rc = jv_write_str(c, &b, v);
    if (!rc)
        rc = jv_from_buf(c, &b, out);
    buf_free(&b);
    return rc;
}

/* ---- json.dumps ------------------------------------------------------------- */

struct json_opts {
    const char *indent;
    size_t indent_len;
    int use_indent;
    struct str item_sep, key_sep;
    int sort_keys;
};

static int json_newline(struct buf *b, const struct json_opts *o, int level)
{
    int rc = buf_append_char(b, '\n');
    for (int i = 0; i < level && !rc; i++)
        rc = buf_append(b, o->indent, o->indent_len);
    return rc;
}

static int json_rec(struct jj_ctx *c, struct buf *b, struct jv v, const struct json_opts *o,
                    int level);

static int json_key(struct jj_ctx *c, struct buf *b, struct jv k)
{
    switch (k.kind) {
    case JV_STR:
        return buf_append_json_str(b, k.u.s.p, k.u.s.len);
    case JV_NONE:
        return buf_append_cstr(b, "\"null\"");
    case JV_BOOL:
        return buf_append_cstr(b, k.u.i ? "\"true\"" : "\"false\"");
    case JV_INT:
        return buf_printf(b, "\"%lld\"", (long long)k.u.i);
    case JV_FLOAT: {
        int rc = buf_append_char(b, '"');
        if (!rc)
            rc = isinf(k.u.f)   ? buf_append_cstr(b, k.u.f < 0 ? "-Infinity" : "Infinity")
                 : isnan(k.u.f) ? buf_append_cstr(b, "NaN")
                                : jv_write_float(b, k.u.f);
        return rc ? rc : buf_append_char(b, '"');
    }
    default:
        return jj_fail(c, AS_EINVAL, "keys must be str, int, float, bool or None, not %s",
                       jv_type_name(k));
    }
}

static int json_rec(struct jj_ctx *c, struct buf *b, struct jv v, const struct json_opts *o,
                    int level)
{
    int rc = 0;
    if (level > JJ_MAX_NESTING)
        return jj_fail(c, AS_ERANGE, "value nested too deeply for tojson");
    switch (v.kind) {
    case JV_NONE:
        return buf_append_cstr(b, "null");
    case JV_BOOL:
        return buf_append_cstr(b, v.u.i ? "true" : "false");
    case JV_INT:
        return buf_printf(b, "%lld", (long long)v.u.i);
    case JV_FLOAT:
        if (isnan(v.u.f))
            return buf_append_cstr(b, "NaN");
        if (isinf(v.u.f))
            return buf_append_cstr(b, v.u.f < 0 ? "-Infinity" : "Infinity");
        return jv_write_float(b, v.u.f);
    case JV_STR:
        if (jj_charge(c, v.u.s.len / 64))
            return AS_ERANGE;
        return buf_append_json_str(b, v.u.s.p, v.u.s.len);
    case JV_LIST: {
        const struct jv_list *l = v.u.l;
        if (v.seq != JSEQ_LIST)
            return jj_fail(c, AS_EINVAL, "Object of type %s is not JSON serializable",
                           jv_type_name(v));
        if (jj_charge(c, l->len))
            return AS_ERANGE;
        if (l->len == 0)
            return buf_append_cstr(b, "[]");
        rc = buf_append_char(b, '[');
        for (size_t i = 0; i < l->len && !rc; i++) {
            if (i)
                rc = buf_append(b, o->item_sep.p, o->item_sep.len);
            if (!rc && o->use_indent)
                rc = json_newline(b, o, level + 1);
            if (!rc)
                rc = json_rec(c, b, l->items[i], o, level + 1);
        }
        if (!rc && o->use_indent)
            rc = json_newline(b, o, level);
        return rc ? rc : buf_append_char(b, ']');
    }
    case JV_DICT: {
        const struct jv_dict *d = v.u.d;
        size_t *order = NULL;
        if (jj_charge(c, d->len))
            return AS_ERANGE;
        if (d->len == 0)
            return buf_append_cstr(b, "{}");
        if (o->sort_keys) {
            order = jj_alloc(&c->arena, d->len * sizeof(size_t));
            if (!order)
                return JJ_OOM(c);
            /* insertion sort: dicts in templates are small, and it is stable */
            for (size_t i = 0; i < d->len; i++) {
                size_t j = i;
                while (j > 0) {
                    int lt;
                    if ((rc = jv_less(c, d->keys[i], d->keys[order[j - 1]], &lt)))
                        return rc;
                    if (!lt)
                        break;
                    order[j] = order[j - 1];
                    j--;
                }
                order[j] = i;
            }
        }
        rc = buf_append_char(b, '{');
        for (size_t k = 0; k < d->len && !rc; k++) {
            size_t i = order ? order[k] : k;
            if (k)
                rc = buf_append(b, o->item_sep.p, o->item_sep.len);
            if (!rc && o->use_indent)
                rc = json_newline(b, o, level + 1);
            if (!rc)
                rc = json_key(c, b, d->keys[i]);
            if (!rc)
                rc = buf_append(b, o->key_sep.p, o->key_sep.len);
            if (!rc)
                rc = json_rec(c, b, d->vals[i], o, level + 1);
        }
        if (!rc && o->use_indent)
            rc = json_newline(b, o, level);
        return rc ? rc : buf_append_char(b, '}');
    }
    default:
        return jj_fail(c, AS_EINVAL, "Object of type %s is not JSON serializable", jv_type_name(v));
    }
}

int jv_write_json(struct jj_ctx *c, struct buf *b, struct jv v, const char *indent,
                  size_t indent_len, int use_indent, struct str item_sep, struct str key_sep,
                  int sort_keys)
{
    struct json_opts o = {indent, indent_len, use_indent, item_sep, key_sep, sort_keys};
    int rc = json_rec(c, b, v, &o, 0);
    return rc == AS_ENOMEM ? out_err(c, rc) : rc;
}

/* ---- iteration ---------------------------------------------------------------- */

int jv_iterate(struct jj_ctx *c, struct jv v, struct jv_list **out)
{
    struct jv_list *l;
    switch (v.kind) {
    case JV_UNDEF:
        if (!(l = jv_list_new(c, 0)))
            return JJ_OOM(c);
        *out = l;
        return 0;
    case JV_LIST:
        if (v.u.l->deferred)
            return jj_fail(c, AS_EINVAL, "%s", v.u.l->deferred);
        *out = v.u.l;
        return 0;
    case JV_DICT:
        if (!(l = jv_list_new(c, v.u.d->len)))
            return JJ_OOM(c);
        memcpy(l->items, v.u.d->keys, v.u.d->len * sizeof(struct jv));
        *out = l;
        return 0;
    case JV_STR: {
        size_t n = jj_utf8_len(v.u.s.p, v.u.s.len), i = 0;
        if (jj_charge(c, n))
            return AS_ERANGE;
        if (!(l = jv_list_new(c, n)))
            return JJ_OOM(c);
        for (size_t k = 0; k < n; k++) {
            size_t adv;
            jj_utf8_decode(v.u.s.p + i, v.u.s.len - i, &adv);
            l->items[k] = jv_str(v.u.s.p + i, adv);
            i += adv;
        }
        *out = l;
        return 0;
    }
    default:
        return jj_fail(c, AS_EINVAL, "'%s' object is not iterable", jv_type_name(v));
    }
}
