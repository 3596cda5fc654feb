/*
 * jinja_filters.c - the filters of the Jinja interpreter, each
 * behaving like its jinja2 3.1 counterpart in transformers' chat-template
 * environment (tojson is json.dumps with ensure_ascii=False). Filters that
 * return generators in jinja2 (select, map, unique, items, batch) return
 * JSEQ_GEN lists so that truthiness, printing and len() match.
 * Not for: tests (jinja_tests.c), str/dict methods (jinja_str.c), globals
 * (jinja_globals.c).
 */
#include "engine/jinja_internal.h"

#include "core/err.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- names ---------------------------------------------------------------------- */

static const char *const filter_names[] = {
    "abs",      "attr",  "batch",  "capitalize", "count",      "d",           "default",
    "dictsort", "e",     "escape", "first",      "float",      "forceescape", "format",
    "indent",   "int",   "items",  "join",       "last",       "length",      "list",
    "lower",    "map",   "max",    "min",        "reject",     "rejectattr",  "replace",
    "reverse",  "round", "safe",   "select",     "selectattr", "sort",        "string",
    "sum",      "title", "tojson", "trim",       "unique",     "upper",       "wordcount"};

int jj__name_in(struct str name, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (jj__str_eq(name, list[i]))
            return 1;
    return 0;
}

int jj_filter_known(struct str name)
{
    return jj__name_in(name, filter_names, sizeof(filter_names) / sizeof(filter_names[0]));
}

/* ---- argument checking ------------------------------------------------------ */

/* Python's signature of a filter/test/method: extra positional or unknown keyword
 * arguments are TypeErrors there, so they are errors here too. max_pos < 0: any. */
struct argspec {
    const char *name;
    int max_pos;
    const char *kw[5];
};

static const struct argspec filter_specs[] = {
    {"safe", 0, {0}},
    {"e", 0, {0}},
    {"escape", 0, {0}},
    {"forceescape", 0, {0}},
    {"tojson", 4, {"ensure_ascii", "indent", "separators", "sort_keys"}},
    {"trim", 1, {"chars"}},
    {"length", 0, {0}},
    {"count", 0, {0}},
    {"string", 0, {0}},
    {"upper", 0, {0}},
    {"lower", 0, {0}},
    {"title", 0, {0}},
    {"capitalize", 0, {0}},
    {"default", 2, {"default_value", "boolean"}},
    {"d", 2, {"default_value", "boolean"}},
    {"first", 0, {0}},
    {"last", 0, {0}},
    {"list", 0, {0}},
    {"items", 0, {0}},
    {"join", 2, {"d", "attribute"}},
    {"replace", 3, {"old", "new", "count"}},
    {"int", 2, {"default", "base"}},
    {"float", 1, {"default"}},
    {"abs", 0, {0}},
    {"round", 2, {"precision", "method"}},
    {"reverse", 0, {0}},
    {"sort", 3, {"reverse", "case_sensitive", "attribute"}},
    {"dictsort", 3, {"case_sensitive", "by", "reverse"}},
    {"unique", 2, {"case_sensitive", "attribute"}},
    {"min", 2, {"case_sensitive", "attribute"}},
    {"max", 2, {"case_sensitive", "attribute"}},
    {"attr", 1, {"name"}},
    {"sum", 2, {"attribute", "start"}},
    {"indent", 3, {"width", "first", "blank"}},
    {"wordcount", 0, {0}},
    {"batch", 2, {"linecount", "fill_with"}},
};

static int is_num(struct jv v)
{
    return v.kind == JV_BOOL || v.kind == JV_INT || v.kind == JV_FLOAT;
}

/* ---- filters ---------------------------------------------------------------------- */

/* jinja2's make_attrgetter: "a.b.0" walks getitem per part (ints for digit parts). */
static int get_attr_path(struct jj_ctx *c, struct jv v, struct jv path, struct jv *out)
{
    int rc;
    if (path.kind == JV_INT)
        return jj_getitem(c, v, path, out);
    if (path.kind != JV_STR)
        return jj_fail(c, AS_EINVAL, "attribute must be a string");
    const char *p = path.u.s.p, *end = p + path.u.s.len;
    while (p <= end) {
        const char *dot = memchr(p, '.', (size_t)(end - p));
        size_t n = dot ? (size_t)(dot - p) : (size_t)(end - p);
        int digits = n > 0;
        int64_t iv = 0;
        for (size_t i = 0; i < n; i++) {
            if (p[i] < '0' || p[i] > '9' || iv > 1000000000) {
                digits = 0;
                break;
            }
            iv = iv * 10 + (p[i] - '0');
        }
        if ((rc = jj_getitem(c, v, digits ? jv_int(iv) : jv_str(p, n), &v)))
            return rc;
        if (!dot)
            break;
        p = dot + 1;
    }
    *out = v;
    return 0;
}

static int lower_key(struct jj_ctx *c, struct jv v, int case_sensitive, struct jv *out)
{
    if (case_sensitive || v.kind != JV_STR) {
        *out = v;
        return 0;
    }
    return jj__case_map(c, v, 'l', out);
}

/* Stable merge sort of idx[] by keys[idx]; reverse keeps equal items in order like Python. */
static int sort_idx(struct jj_ctx *c, const struct jv *keys, size_t *idx, size_t *tmp, size_t n,
                    int reverse)
{
    int rc;
    if (n < 2)
        return 0;
    size_t h = n / 2;
    if ((rc = sort_idx(c, keys, idx, tmp, h, reverse)) ||
        (rc = sort_idx(c, keys, idx + h, tmp, n - h, reverse)))
        return rc;
    if ((rc = jj_charge(c, n)))
        return rc;
    size_t i = 0, j = h, k = 0;
    while (i < h && j < n) {
        int lt;
        if (reverse)
            rc = jv_less(c, keys[idx[i]], keys[idx[j]], &lt);
        else
            rc = jv_less(c, keys[idx[j]], keys[idx[i]], &lt);
        if (rc)
            return rc;
        tmp[k++] = lt ? idx[j++] : idx[i++];
    }
    while (i < h)
        tmp[k++] = idx[i++];
    while (j < n)
        tmp[k++] = idx[j++];
    memcpy(idx, tmp, n * sizeof(size_t));
    return 0;
}

static int sorted_list(struct jj_ctx *c, struct jv_list *l, const struct jv *keys, int reverse,
                       struct jv *out)
{
    size_t *idx = jj_alloc(&c->arena, (l->len + 1) * sizeof(size_t));
    size_t *tmp = jj_alloc(&c->arena, (l->len + 1) * sizeof(size_t));
    struct jv_list *r = jv_list_new(c, l->len);
    int rc;
    if (!idx || !tmp || !r)
        return JJ_OOM(c);
    for (size_t i = 0; i < l->len; i++)
        idx[i] = i;
    if ((rc = sort_idx(c, keys, idx, tmp, l->len, reverse)))
        return rc;
    for (size_t i = 0; i < l->len; i++)
        r->items[i] = l->items[idx[i]];
    *out = jv_list(r, 0);
    return 0;
}

int jj__join(struct jj_ctx *c, struct jv seq, struct jv sep, struct jv attr, int has_attr,
             struct jv *out)
{
    struct jv_list *l;
    struct buf b;
    int rc;
    if ((rc = jv_iterate(c, seq, &l)))
        return rc;
    if ((rc = jj_charge(c, l->len)))
        return rc;
    buf_init(&b, c->opts.max_output);
    for (size_t i = 0; i < l->len && !rc; i++) {
        struct jv v = l->items[i];
        if (i && sep.kind == JV_STR)
            rc = buf_append(&b, sep.u.s.p, sep.u.s.len);
        else if (i && sep.kind != JV_UNDEF && sep.kind != JV_NONE)
            rc = jv_write_str(c, &b, sep);
        if (!rc && has_attr)
            rc = get_attr_path(c, v, attr, &v);
        if (!rc)
            rc = jv_write_str(c, &b, v);
    }
    return jj__str_from_buf(c, &b, rc, out);
}

static int length_of(struct jj_ctx *c, struct jv v, int64_t *n)
{
    switch (v.kind) {
    case JV_UNDEF:
        *n = 0;
        return 0;
    case JV_STR:
        *n = (int64_t)jj_utf8_len(v.u.s.p, v.u.s.len);
        return 0;
    case JV_LIST:
        if (v.seq == JSEQ_GEN || v.seq == JSEQ_REVITER)
            return jj_fail(c, AS_EINVAL, "object of type '%s' has no len()", jv_type_name(v));
        *n = (int64_t)v.u.l->len;
        return 0;
    case JV_DICT:
        *n = (int64_t)v.u.d->len;
        return 0;
    default:
        return jj_fail(c, AS_EINVAL, "object of type '%s' has no len()", jv_type_name(v));
    }
}

/* select / reject / selectattr / rejectattr */
static int do_select(struct jj_ctx *c, struct jv seq, struct jj_callargs *a, int attr, int want,
                     struct jv *out)
{
    struct jv_list *l, *r;
    int rc;
    size_t skip = attr ? 1 : 0;
    struct jv path = jv_none(), testname;
    if (attr && !jj__arg(a, 0, NULL, &path))
        return jj_fail(c, AS_EINVAL, "selectattr/rejectattr need an attribute");
    int has_test = a->npos > skip;
    if (has_test) {
        testname = a->pos[skip];
        if ((rc = jj__want_str(c, testname, "test name")))
            return rc;
    }
    struct jj_callargs ta = {0};
    if (has_test) {
        ta.npos = a->npos - skip - 1;
        ta.pos = a->pos + skip + 1;
        ta.nkw = a->nkw;
        ta.kwnames = a->kwnames;
        ta.kw = a->kw;
    }
    if ((rc = jv_iterate(c, seq, &l)))
        return rc;
    if ((rc = jj_charge(c, l->len)) || !(r = jv_list_new(c, l->len)))
        return rc ? rc : JJ_OOM(c);
    size_t n = 0;
    for (size_t i = 0; i < l->len; i++) {
        struct jv v = l->items[i];
        int ok;
        if (attr && (rc = get_attr_path(c, v, path, &v)))
            return rc;
        if (has_test) {
            struct str tn = {testname.u.s.p, testname.u.s.len};
            if ((rc = jj_test(c, tn, v, &ta, &ok)))
                return rc;
        } else {
            ok = jv_truthy(v);
        }
        if (ok == want)
            r->items[n++] = l->items[i];
    }
    r->len = n;
    *out = jv_list(r, 0);
    out->seq = JSEQ_GEN;
    return 0;
}

static int do_indent(struct jj_ctx *c, struct jv s, struct jj_callargs *a, struct jv *out)
{
    struct jv w, fv, bv;
    struct buf ind, b;
    int rc = 0;
    int first = jj__arg(a, 1, "first", &fv) && jv_truthy(fv);
    int blank = jj__arg(a, 2, "blank", &bv) && jv_truthy(bv);
    buf_init(&ind, 4096);
    if (!jj__arg(a, 0, "width", &w))
        w = jv_int(4);
    if (w.kind == JV_STR) {
        rc = buf_append(&ind, w.u.s.p, w.u.s.len);
    } else if (w.kind == JV_INT && w.u.i >= 0 && w.u.i <= 1024) {
        for (int64_t i = 0; i < w.u.i && !rc; i++)
            rc = buf_append_char(&ind, ' ');
    } else {
        buf_free(&ind);
        return jj_fail(c, AS_EINVAL, "indent width must be a string or an int in 0..1024");
    }
    buf_init(&b, c->opts.max_output);
    if (!rc && first)
        rc = buf_append(&b, ind.data, ind.len);
    /* lines of s (s + "\n" split by splitlines, so a trailing newline yields no extra line) */
    size_t i = 0, line = 0;
    const char *p = s.u.s.p;
    size_t n = s.u.s.len;
    while (!rc && i <= n) {
        size_t e = i;
        while (e < n && p[e] != '\n' && p[e] != '\r')
            e++;
        if (line > 0) {
            rc = buf_append_char(&b, '\n');
            if (!rc && (blank || e > i))
                rc = buf_append(&b, ind.data, ind.len);
        }
        if (!rc)
            rc = buf_append(&b, p + i, e - i);
        line++;
        if (e >= n)
            break;
        i = e + ((p[e] == '\r' && e + 1 < n && p[e + 1] == '\n') ? 2 : 1);
    }
    buf_free(&ind);
    return jj__str_from_buf(c, &b, rc, out);
}

static int parse_py_int(struct jv s, int64_t base, int64_t *out)
{
    const char *p = s.u.s.p, *e = p + s.u.s.len;
    while (p < e && jj_is_space((unsigned char)*p))
        p++;
    while (e > p && jj_is_space((unsigned char)e[-1]))
        e--;
    int neg = 0;
    if (p < e && (*p == '+' || *p == '-'))
        neg = *p++ == '-';
    if (p >= e)
        return 0;
    /* Python accepts 0x/0o/0b with the matching base, and base 0 picks by prefix */
    if (e - p > 2 && p[0] == '0') {
        char k = (char)(p[1] | 0x20);
        int pb = k == 'x' ? 16 : k == 'o' ? 8 : k == 'b' ? 2 : 0;
        if (pb && (base == pb || base == 0)) {
            base = pb;
            p += 2;
            if (*p == '_')
                p++;
        }
    }
    if (base == 0)
        base = 10;
    int64_t v = 0;
    int prev_us = 1;
    for (; p < e; p++) {
        if (*p == '_' && !prev_us) {
            prev_us = 1;
            continue;
        }
        int d = *p >= '0' && *p <= '9'   ? *p - '0'
                : *p >= 'a' && *p <= 'z' ? *p - 'a' + 10
                : *p >= 'A' && *p <= 'Z' ? *p - 'A' + 10
                                         : 99;
        if (d >= base || v > (INT64_MAX - d) / base)
            return 0;
        v = v * base + d;
        prev_us = 0;
    }
    if (prev_us)
        return 0;
    *out = neg ? -v : v;
    return 1;
}

static int parse_py_float(struct jv s, double *out)
{
    char tmp[64];
    const char *p = s.u.s.p, *e = p + s.u.s.len;
    while (p < e && jj_is_space((unsigned char)*p))
        p++;
    while (e > p && jj_is_space((unsigned char)e[-1]))
        e--;
    size_t n = 0;
    for (; p < e && n + 1 < sizeof(tmp); p++)
        if (*p != '_')
            tmp[n++] = *p;
    if (n == 0 || p < e)
        return 0;
    tmp[n] = '\0';
    char *end;
    double d = strtod(tmp, &end);
    if (*end || (tmp[0] == '0' && (tmp[1] == 'x' || tmp[1] == 'X')))
        return 0;
    *out = d;
    return 1;
}

static int do_round(struct jj_ctx *c, struct jv v, struct jj_callargs *a, struct jv *out)
{
    struct jv pv, mv;
    int64_t prec = 0;
    if (jj__arg(a, 0, "precision", &pv) && jj__want_int(c, pv, "precision", &prec))
        return AS_EINVAL;
    if (!is_num(v))
        return jj_fail(c, AS_EINVAL, "round needs a number");
    if (v.kind != JV_FLOAT &&
        (!jj__arg(a, 1, "method", &mv) ||
         (mv.kind == JV_STR && mv.u.s.len == 6 && memcmp(mv.u.s.p, "common", 6) == 0))) {
        /* Python's round() of an int stays an int (half to even for negative precision) */
        int64_t x = v.u.i, m = 1;
        if (prec >= 0) {
            *out = jv_int(x);
            return 0;
        }
        for (int64_t k = prec; k < 0; k++) {
            if (m > INT64_MAX / 10) {
                *out = jv_int(0);
                return 0;
            }
            m *= 10;
        }
        int64_t q = x / m, r = x % m;
        if (r < 0) {
            r += m;
            q -= 1;
        }
        if (r * 2 > m || (r * 2 == m && (q & 1)))
            q += 1;
        if (__builtin_mul_overflow(q, m, &x))
            return jj_fail(c, AS_ERANGE, "integer overflow in round");
        *out = jv_int(x);
        return 0;
    }
    double x = v.kind == JV_FLOAT ? v.u.f : (double)v.u.i, r;
    const char *method = "common";
    char mbuf[16] = "common";
    if (jj__arg(a, 1, "method", &mv)) {
        if (mv.kind != JV_STR || mv.u.s.len >= sizeof(mbuf))
            return jj_fail(c, AS_EINVAL, "method must be common, ceil or floor");
        memcpy(mbuf, mv.u.s.p, mv.u.s.len);
        mbuf[mv.u.s.len] = '\0';
        method = mbuf;
    }
    if (prec > 300)
        prec = 300;
    if (prec < -300)
        prec = -300;
    if (strcmp(method, "common") == 0) {
        if (!isfinite(x)) {
            r = x;
        } else if (prec >= 0) {
            /* glibc printf rounds the exact binary value half-to-even, as Python's round() */
            char tmp[400];
            snprintf(tmp, sizeof(tmp), "%.*f", (int)(prec > 40 ? 40 : prec), x);
            r = prec > 40 ? x : strtod(tmp, NULL);
        } else {
            double m = pow(10.0, (double)-prec);
            r = x / m;
            double fr = floor(r);
            double diff = r - fr;
            r = diff > 0.5 || (diff == 0.5 && fmod(fr, 2.0) != 0) ? fr + 1 : fr;
            r *= m;
        }
    } else if (strcmp(method, "ceil") == 0 || strcmp(method, "floor") == 0) {
        double m = pow(10.0, (double)prec);
        r = (method[0] == 'c' ? ceil(x * m) : floor(x * m)) / m;
    } else {
        return jj_fail(c, AS_EINVAL, "method must be common, ceil or floor");
    }
    *out = jv_float(r);
    return 0;
}

static int do_tojson(struct jj_ctx *c, struct jv v, struct jj_callargs *a, struct jv *out)
{
    struct jv iv, sv, kv, av;
    struct buf ind, b;
    int rc = 0, use_indent = 0;
    struct str item_sep = {", ", 2}, key_sep = {": ", 2};
    buf_init(&ind, 4096);
    if (jj__arg(a, 1, "indent", &iv) && iv.kind != JV_NONE) {
        use_indent = 1;
        item_sep.len = 1;
        if (iv.kind == JV_STR) {
            rc = buf_append(&ind, iv.u.s.p, iv.u.s.len);
        } else if (iv.kind == JV_INT && iv.u.i <= 1024) {
            for (int64_t i = 0; i < iv.u.i && !rc; i++)
                rc = buf_append_char(&ind, ' ');
        } else {
            buf_free(&ind);
            return jj_fail(c, AS_EINVAL, "tojson indent must be an int or a string");
        }
    }
    if (jj__arg(a, 2, "separators", &sv) && sv.kind != JV_NONE) {
        if (sv.kind != JV_LIST || sv.u.l->len != 2 || sv.u.l->items[0].kind != JV_STR ||
            sv.u.l->items[1].kind != JV_STR) {
            buf_free(&ind);
            return jj_fail(c, AS_EINVAL, "tojson separators must be two strings");
        }
        item_sep.p = sv.u.l->items[0].u.s.p;
        item_sep.len = sv.u.l->items[0].u.s.len;
        key_sep.p = sv.u.l->items[1].u.s.p;
        key_sep.len = sv.u.l->items[1].u.s.len;
    }
    int sort_keys = jj__arg(a, 3, "sort_keys", &kv) && jv_truthy(kv);
    int ascii = jj__arg(a, 0, "ensure_ascii", &av) && jv_truthy(av);
    buf_init(&b, c->opts.max_output);
    if (!rc)
        rc = jv_write_json(c, &b, v, ind.data ? ind.data : "", ind.len, use_indent, item_sep,
                           key_sep, sort_keys);
    buf_free(&ind);
    if (!rc && ascii) {
        /* non-ASCII only occurs inside strings: escape as \uXXXX (surrogate pairs) */
        struct buf e;
        buf_init(&e, c->opts.max_output);
        for (size_t i = 0; i < b.len && !rc;) {
            size_t adv;
            uint32_t cp = jj_utf8_decode(b.data + i, b.len - i, &adv);
            if (cp < 0x80)
                rc = buf_append_char(&e, (char)cp);
            else if (cp < 0x10000)
                rc = buf_printf(&e, "\\u%04x", cp);
            else
                rc = buf_printf(&e, "\\u%04x\\u%04x", 0xd800 + ((cp - 0x10000) >> 10),
                                0xdc00 + ((cp - 0x10000) & 0x3ff));
            i += adv;
        }
        buf_free(&b);
        b = e;
    }
    return jj__str_from_buf(c, &b, rc, out);
}

static int do_unique(struct jj_ctx *c, struct jv seq, struct jj_callargs *a, struct jv *out)
{
    struct jv_list *l, *r;
    struct jv csv, attr;
    int rc;
    int cs = jj__arg(a, 0, "case_sensitive", &csv) && jv_truthy(csv);
    int has_attr = jj__arg(a, 1, "attribute", &attr) && attr.kind != JV_NONE;
    if ((rc = jv_iterate(c, seq, &l)))
        return rc;
    struct jv *keys = jj_alloc(&c->arena, (l->len + 1) * sizeof(struct jv));
    if (!keys || !(r = jv_list_new(c, l->len)))
        return JJ_OOM(c);
    if ((rc = jj_charge(c, l->len * (l->len / 16 + 1))))
        return rc;
    size_t n = 0;
    for (size_t i = 0; i < l->len; i++) {
        struct jv k = l->items[i];
        if ((has_attr && (rc = get_attr_path(c, k, attr, &k))) || (rc = lower_key(c, k, cs, &k)))
            return rc;
        int seen = 0;
        for (size_t j = 0; j < n && !seen; j++)
            seen = jv_equal(keys[j], k);
        if (!seen) {
            keys[n] = k;
            r->items[n++] = l->items[i];
        }
    }
    r->len = n;
    *out = jv_list(r, 0);
    out->seq = JSEQ_GEN;
    return 0;
}

static int do_minmax(struct jj_ctx *c, struct jv seq, struct jj_callargs *a, int want_max,
                     struct jv *out)
{
    struct jv_list *l;
    struct jv csv, attr, best = jv_undef(NULL), bestk = jv_none();
    int rc;
    int cs = jj__arg(a, 0, "case_sensitive", &csv) && jv_truthy(csv);
    int has_attr = jj__arg(a, 1, "attribute", &attr) && attr.kind != JV_NONE;
    if ((rc = jv_iterate(c, seq, &l)))
        return rc;
    for (size_t i = 0; i < l->len; i++) {
        struct jv k = l->items[i];
        int lt;
        if ((has_attr && (rc = get_attr_path(c, k, attr, &k))) || (rc = lower_key(c, k, cs, &k)))
            return rc;
        if (i > 0) {
            if ((rc = want_max ? jv_less(c, bestk, k, &lt) : jv_less(c, k, bestk, &lt)))
                return rc;
            if (!lt)
                continue;
        }
        best = l->items[i];
        bestk = k;
    }
    *out = best;
    return 0;
}

int jj_filter(struct jj_ctx *c, struct str name, struct jv v, struct jj_callargs *a, struct jv *out)
{
    struct jv x, y;
    int rc;
    int64_t n = 0;
    struct jv_list *l;
    for (size_t k = 0; k < sizeof(filter_specs) / sizeof(filter_specs[0]); k++) {
        if (jj__str_eq(name, filter_specs[k].name)) {
            if ((rc = jj__check_args(c, "filter", name, a, filter_specs[k].max_pos,
                                     filter_specs[k].kw, 5)))
                return rc;
            break;
        }
    }
#define F(s) jj__str_eq(name, s)
    if (!c->in_generator && (F("select") || F("reject") || F("selectattr") || F("rejectattr") ||
                             F("map") || F("unique") || F("items") || F("batch"))) {
        /* jinja2's generator filters do their work, errors included, only when the
           result is consumed: a failure here becomes an error of the consumer */
        c->in_generator = 1;
        rc = jj_filter(c, name, v, a, out);
        c->in_generator = 0;
        if (rc != AS_EINVAL || !c->err || c->err->raised)
            return rc;
        const char *msg = jj_strndup(&c->arena, c->err->msg, strlen(c->err->msg));
        if (!(l = jv_list_new(c, 0)) || !msg)
            return JJ_OOM(c);
        c->err->msg[0] = '\0';
        c->err->line = 0;
        l->deferred = msg;
        *out = jv_list(l, 0);
        out->seq = JSEQ_GEN;
        return 0;
    }
    if (F("safe") || F("e") || F("escape") || F("forceescape")) {
        if (F("safe")) { /* Markup(value): a string */
            return v.kind == JV_STR ? (*out = v, 0) : jv_to_str(c, v, out);
        }
        struct buf b;
        if ((rc = jv_to_str(c, v, &x)))
            return rc;
        buf_init(&b, c->opts.max_output);
        rc = 0;
        for (size_t i = 0; i < x.u.s.len && !rc; i++) {
            char ch = x.u.s.p[i];
            rc = ch == '&'    ? buf_append_cstr(&b, "&amp;")
                 : ch == '<'  ? buf_append_cstr(&b, "&lt;")
                 : ch == '>'  ? buf_append_cstr(&b, "&gt;")
                 : ch == '"'  ? buf_append_cstr(&b, "&#34;")
                 : ch == '\'' ? buf_append_cstr(&b, "&#39;")
                              : buf_append_char(&b, ch);
        }
        return jj__str_from_buf(c, &b, rc, out);
    }
    if (F("tojson"))
        return do_tojson(c, v, a, out);
    if (F("trim")) {
        if (!jj__arg(a, 0, "chars", &y))
            y = jv_none();
        if ((rc = jv_to_str(c, v, &x)))
            return rc;
        return jj__strip(c, x, y, 'b', out);
    }
    if (F("length") || F("count")) {
        if ((rc = length_of(c, v, &n)))
            return rc;
        *out = jv_int(n);
        return 0;
    }
    if (F("string")) {
        return jv_to_str(c, v, out);
    }
    if (F("upper") || F("lower") || F("title") || F("capitalize")) {
        if ((rc = jv_to_str(c, v, &x)))
            return rc;
        return jj__case_map(c, x,
                            F("upper")   ? 'u'
                            : F("lower") ? 'l'
                            : F("title") ? 'T'
                                         : 'c',
                            out);
    }
    if (F("default") || F("d")) {
        struct jv bv;
        int boolean = jj__arg(a, 1, "boolean", &bv) && jv_truthy(bv);
        if (v.kind == JV_UNDEF || (boolean && !jv_truthy(v))) {
            if (!jj__arg(a, 0, "default_value", out))
                *out = jv_str("", 0);
        } else {
            *out = v;
        }
        return 0;
    }
    if (F("first") || F("last")) {
        if (F("last") && v.kind == JV_LIST && (v.seq == JSEQ_GEN || v.seq == JSEQ_REVITER))
            return jj_fail(c, AS_EINVAL, "'%s' object is not reversible", jv_type_name(v));
        if (v.kind == JV_STR || v.kind == JV_LIST || v.kind == JV_DICT || v.kind == JV_UNDEF) {
            if ((rc = jv_iterate(c, v, &l)))
                return rc;
            if (l->len == 0)
                *out = jv_undef(NULL);
            else
                *out = l->items[F("first") ? 0 : l->len - 1];
            return 0;
        }
        return jj_fail(c, AS_EINVAL, "'%s' object is not iterable", jv_type_name(v));
    }
    if (F("list")) {
        if ((rc = jv_iterate(c, v, &l)))
            return rc;
        if (v.kind == JV_LIST && v.tuple) {
            struct jv_list *copy = jv_list_new(c, l->len);
            if (!copy)
                return JJ_OOM(c);
            memcpy(copy->items, l->items, l->len * sizeof(struct jv));
            l = copy;
        }
        *out = jv_list(l, 0);
        return 0;
    }
    if (F("items")) {
        if (v.kind == JV_UNDEF) {
            if (!(l = jv_list_new(c, 0)))
                return JJ_OOM(c);
            *out = jv_list(l, 0);
        } else if (v.kind != JV_DICT) {
            return jj_fail(c, AS_EINVAL, "Can only get item pairs from a mapping.");
        } else if ((rc = jj__dict_pairs(c, v.u.d, out))) {
            return rc;
        }
        out->seq = JSEQ_GEN;
        return 0;
    }
    if (F("join")) {
        struct jv attr;
        int has_attr = jj__arg(a, 1, "attribute", &attr) && attr.kind != JV_NONE;
        if (!jj__arg(a, 0, "d", &x))
            x = jv_str("", 0);
        return jj__join(c, v, x, attr, has_attr, out);
    }
    if (F("replace")) {
        struct jv z;
        n = -1;
        if (!jj__arg(a, 0, "old", &x) || !jj__arg(a, 1, "new", &y))
            return jj_fail(c, AS_EINVAL, "replace filter needs old and new");
        if (jj__arg(a, 2, "count", &z) && z.kind != JV_NONE && jj__want_int(c, z, "count", &n))
            return AS_EINVAL;
        struct jv s;
        if ((rc = jv_to_str(c, v, &s)))
            return rc;
        return jj__replace(c, s, x, y, n, out);
    }
    if ((F("int") || F("float") || F("indent")) && v.kind == JV_UNDEF)
        return jj__undef_fail(c, v);
    if (F("int")) {
        struct jv dv, bv;
        int64_t base = 10;
        if (!jj__arg(a, 0, "default", &dv))
            dv = jv_int(0);
        if (jj__arg(a, 1, "base", &bv) &&
            (jj__want_int(c, bv, "base", &base) || base == 1 || base < 0 || base > 36))
            return jj_fail(c, AS_EINVAL, "int base must be 0 or 2..36");
        double d;
        if (v.kind == JV_INT || v.kind == JV_BOOL) {
            *out = jv_int(v.u.i);
        } else if (v.kind == JV_FLOAT) {
            if (!isfinite(v.u.f) || fabs(v.u.f) >= 9.2e18)
                *out = dv;
            else
                *out = jv_int((int64_t)v.u.f);
        } else if (v.kind == JV_STR && parse_py_int(v, base, &n)) {
            *out = jv_int(n);
        } else if (v.kind == JV_STR && parse_py_float(v, &d) && isfinite(d) && fabs(d) < 9.2e18) {
            *out = jv_int((int64_t)d);
        } else {
            *out = dv;
        }
        return 0;
    }
    if (F("float")) {
        double d;
        if (!jj__arg(a, 0, "default", &x))
            x = jv_float(0.0);
        if (is_num(v))
            *out = jv_float(v.kind == JV_FLOAT ? v.u.f : (double)v.u.i);
        else if (v.kind == JV_STR && parse_py_float(v, &d))
            *out = jv_float(d);
        else
            *out = x;
        return 0;
    }
    if (F("abs")) {
        if (v.kind == JV_FLOAT)
            *out = jv_float(fabs(v.u.f));
        else if ((v.kind == JV_INT || v.kind == JV_BOOL) && v.u.i != INT64_MIN)
            *out = jv_int(v.u.i < 0 ? -v.u.i : v.u.i);
        else
            return jj_fail(c, AS_EINVAL, "bad operand type for abs(): '%s'", jv_type_name(v));
        return 0;
    }
    if (F("round"))
        return do_round(c, v, a, out);
    if (F("reverse")) {
        if (v.kind == JV_STR) {
            char *s = jj_alloc(&c->arena, v.u.s.len + 1);
            size_t i = 0;
            if (!s)
                return JJ_OOM(c);
            while (i < v.u.s.len) {
                size_t adv;
                jj_utf8_decode(v.u.s.p + i, v.u.s.len - i, &adv);
                memcpy(s + v.u.s.len - i - adv, v.u.s.p + i, adv);
                i += adv;
            }
            *out = jv_str(s, v.u.s.len);
            return 0;
        }
        if ((rc = jv_iterate(c, v, &l)))
            return rc;
        struct jv_list *r = jv_list_new(c, l->len);
        if (!r)
            return JJ_OOM(c);
        for (size_t i = 0; i < l->len; i++)
            r->items[i] = l->items[l->len - 1 - i];
        *out = jv_list(r, 0);
        out->seq = JSEQ_REVITER;
        return 0;
    }
    if (F("sort") || F("dictsort")) {
        struct jv rv, csv, attr;
        int dsort = F("dictsort");
        int reverse, cs, has_attr = 0;
        if (dsort) {
            struct jv by;
            cs = jj__arg(a, 0, "case_sensitive", &csv) && jv_truthy(csv);
            int by_value = jj__arg(a, 1, "by", &by) && by.kind == JV_STR && by.u.s.len == 5 &&
                           memcmp(by.u.s.p, "value", 5) == 0;
            if (jj__arg(a, 1, "by", &by) && !by_value &&
                !(by.kind == JV_STR && by.u.s.len == 3 && memcmp(by.u.s.p, "key", 3) == 0))
                return jj_fail(c, AS_EINVAL, "You can only sort by either \"key\" or \"value\"");
            reverse = jj__arg(a, 2, "reverse", &rv) && jv_truthy(rv);
            if (v.kind != JV_DICT)
                return jj_fail(c, AS_EINVAL, "dictsort needs a mapping");
            if ((rc = jj__dict_pairs(c, v.u.d, &x)))
                return rc;
            l = x.u.l;
            attr = jv_int(by_value ? 1 : 0);
            has_attr = 1;
        } else {
            reverse = jj__arg(a, 0, "reverse", &rv) && jv_truthy(rv);
            cs = jj__arg(a, 1, "case_sensitive", &csv) && jv_truthy(csv);
            has_attr = jj__arg(a, 2, "attribute", &attr) && attr.kind != JV_NONE;
            if ((rc = jv_iterate(c, v, &l)))
                return rc;
        }
        struct jv *keys = jj_alloc(&c->arena, (l->len + 1) * sizeof(struct jv));
        if (!keys)
            return JJ_OOM(c);
        for (size_t i = 0; i < l->len; i++) {
            struct jv k = l->items[i];
            if ((has_attr && (rc = get_attr_path(c, k, attr, &k))) ||
                (rc = lower_key(c, k, cs, &keys[i])))
                return rc;
        }
        return sorted_list(c, l, keys, reverse, out);
    }
    if (F("unique"))
        return do_unique(c, v, a, out);
    if (F("min") || F("max"))
        return do_minmax(c, v, a, F("max"), out);
    if (F("select") || F("reject"))
        return do_select(c, v, a, 0, F("select"), out);
    if (F("selectattr") || F("rejectattr"))
        return do_select(c, v, a, 1, F("selectattr"), out);
    if (F("map")) {
        struct jv attr, dflt;
        int has_attr = 0;
        for (size_t k = 0; k < a->nkw; k++)
            if (jj__str_eq(a->kwnames[k], "attribute")) {
                attr = a->kw[k];
                has_attr = 1;
            }
        int has_default = 0;
        for (size_t k = 0; k < a->nkw; k++)
            if (jj__str_eq(a->kwnames[k], "default")) {
                dflt = a->kw[k];
                has_default = 1;
            }
        if (!has_attr && (a->npos == 0 || a->pos[0].kind != JV_STR))
            return jj_fail(c, AS_EINVAL, "map needs a filter name or attribute=");
        if ((rc = jv_iterate(c, v, &l)))
            return rc;
        struct jv_list *r = jv_list_new(c, l->len);
        if (!r || (rc = jj_charge(c, l->len)))
            return r ? rc : JJ_OOM(c);
        struct jj_callargs fa = {0};
        if (!has_attr) {
            fa.npos = a->npos - 1;
            fa.pos = a->pos + 1;
            fa.nkw = a->nkw;
            fa.kwnames = a->kwnames;
            fa.kw = a->kw;
        }
        for (size_t i = 0; i < l->len; i++) {
            if (has_attr) {
                if ((rc = get_attr_path(c, l->items[i], attr, &r->items[i])))
                    return rc;
                if (has_default && r->items[i].kind == JV_UNDEF)
                    r->items[i] = dflt;
            } else {
                struct str fname = {a->pos[0].u.s.p, a->pos[0].u.s.len};
                if (jj__str_eq(fname, "map"))
                    return jj_fail(c, AS_EINVAL, "map cannot map itself");
                if ((rc = jj_filter(c, fname, l->items[i], &fa, &r->items[i])))
                    return rc;
            }
        }
        *out = jv_list(r, 0);
        out->seq = JSEQ_GEN;
        return 0;
    }
    if (F("batch")) {
        struct jv fill;
        int64_t size;
        if (!jj__arg(a, 0, "linecount", &x) || jj__want_int(c, x, "linecount", &size) || size <= 0)
            return jj_fail(c, AS_EINVAL, "batch needs a positive linecount");
        int has_fill = jj__arg(a, 1, "fill_with", &fill) && fill.kind != JV_NONE;
        if ((rc = jv_iterate(c, v, &l)))
            return rc;
        size_t nb = (l->len + (size_t)size - 1) / (size_t)size;
        struct jv_list *r = jv_list_new(c, nb);
        if (!r || (rc = jj_charge(c, l->len)))
            return r ? rc : JJ_OOM(c);
        for (size_t b = 0; b < nb; b++) {
            size_t from = b * (size_t)size, cnt = l->len - from;
            if (cnt > (size_t)size)
                cnt = (size_t)size;
            struct jv_list *row = jv_list_new(c, has_fill ? (size_t)size : cnt);
            if (!row)
                return JJ_OOM(c);
            memcpy(row->items, l->items + from, cnt * sizeof(struct jv));
            for (size_t k = cnt; k < row->len; k++)
                row->items[k] = fill;
            r->items[b] = jv_list(row, 0);
        }
        *out = jv_list(r, 0);
        out->seq = JSEQ_GEN;
        return 0;
    }
    if (F("attr")) {
        if (!jj__arg(a, 0, "name", &x) || (rc = jj__want_str(c, x, "attribute name")))
            return jj_fail(c, AS_EINVAL, "attr needs a name");
        struct str nm = {x.u.s.p, x.u.s.len};
        return jj_getattr(c, v, nm, out);
    }
    if (F("sum")) {
        struct jv attr, start;
        int has_attr = jj__arg(a, 0, "attribute", &attr) && attr.kind != JV_NONE;
        if (!jj__arg(a, 1, "start", &start))
            start = jv_int(0);
        if ((rc = jv_iterate(c, v, &l)))
            return rc;
        struct jv acc = start;
        for (size_t i = 0; i < l->len; i++) {
            struct jv e = l->items[i];
            if (has_attr && (rc = get_attr_path(c, e, attr, &e)))
                return rc;
            if (!is_num(e) || !is_num(acc))
                return jj_fail(c, AS_EINVAL, "sum needs numbers");
            if (acc.kind == JV_FLOAT || e.kind == JV_FLOAT)
                acc = jv_float((acc.kind == JV_FLOAT ? acc.u.f : (double)acc.u.i) +
                               (e.kind == JV_FLOAT ? e.u.f : (double)e.u.i));
            else if (__builtin_add_overflow(acc.u.i, e.u.i, &n))
                return jj_fail(c, AS_ERANGE, "integer overflow in sum");
            else
                acc = jv_int(n);
        }
        *out = acc;
        return 0;
    }
    if (F("format")) {
        struct jv_list *args = jv_list_new(c, a->npos);
        if ((rc = jv_to_str(c, v, &x)))
            return rc;
        if (!args)
            return JJ_OOM(c);
        if (a->npos)
            memcpy(args->items, a->pos, a->npos * sizeof(struct jv));
        return jj_py_format(c, x, jv_list(args, 1), out);
    }
    if (F("indent")) {
        if (v.kind != JV_STR) /* jinja2 appends "\n" to the value: a TypeError otherwise */
            return jj_fail(c, AS_EINVAL, "indent needs a string, not %s", jv_type_name(v));
        return do_indent(c, v, a, out);
    }
    if (F("wordcount")) {
        if ((rc = jv_to_str(c, v, &x)))
            return rc;
        int64_t words = 0;
        int in = 0;
        for (size_t i = 0; i < x.u.s.len; i++) {
            unsigned char ch = (unsigned char)x.u.s.p[i];
            int w = ch >= 0x80 || ch == '_' || (ch >= '0' && ch <= '9') ||
                    ((ch | 0x20) >= 'a' && (ch | 0x20) <= 'z');
            words += w && !in;
            in = w;
        }
        *out = jv_int(words);
        return 0;
    }
#undef F
    return jj_fail(c, AS_EINVAL, "no filter named '%.*s'", (int)(name.len > 40 ? 40 : name.len),
                   name.p);
}
