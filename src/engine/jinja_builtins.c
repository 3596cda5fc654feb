/*
 * jinja_builtins.c - filters, tests, globals (range, namespace, dict,
 * raise_exception, strftime_now) and the str/dict methods of the Jinja
 * interpreter, each behaving like its jinja2 / Python counterpart.
 * Case mapping (upper, lower, title, capitalize) is ASCII-only; other
 * characters pass through unchanged.
 * Not for: the evaluator itself (jinja_eval.c).
 */
#include "engine/jinja_internal.h"

#include "core/err.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_RANGE 100000 /* jinja2's sandbox limit */

enum {
    B_RANGE = 1,
    B_NAMESPACE,
    B_DICT,
    B_RAISE,
    B_STRFTIME,
    /* str methods */
    M_STRIP,
    M_LSTRIP,
    M_RSTRIP,
    M_SPLIT,
    M_RSPLIT,
    M_STARTSWITH,
    M_ENDSWITH,
    M_UPPER,
    M_LOWER,
    M_TITLE,
    M_CAPITALIZE,
    M_REPLACE,
    M_FIND,
    M_RFIND,
    M_COUNT,
    M_JOIN,
    M_FORMAT,
    M_SPLITLINES,
    M_ISDIGIT,
    M_ISALPHA,
    M_ISSPACE,
    M_ISUPPER,
    M_ISLOWER,
    /* dict methods */
    M_ITEMS,
    M_KEYS,
    M_VALUES,
    M_GET,
};

static int str_eq(struct str s, const char *lit)
{
    size_t n = strlen(lit);
    return s.len == n && memcmp(s.p, lit, n) == 0;
}

/* Positional argument i or keyword `name`; 1 when given. */
static int arg(const struct jj_callargs *a, size_t i, const char *name, struct jv *out)
{
    if (i < a->npos) {
        *out = a->pos[i];
        return 1;
    }
    for (size_t k = 0; name && k < a->nkw; k++)
        if (str_eq(a->kwnames[k], name)) {
            *out = a->kw[k];
            return 1;
        }
    return 0;
}

static int want_str(struct jj_ctx *c, struct jv v, const char *what)
{
    if (v.kind == JV_STR)
        return 0;
    return jj_fail(c, AS_EINVAL, "%s must be a string, not %s", what, jv_type_name(v));
}

static int want_int(struct jj_ctx *c, struct jv v, const char *what, int64_t *out)
{
    if (v.kind == JV_INT || v.kind == JV_BOOL) {
        *out = v.u.i;
        return 0;
    }
    return jj_fail(c, AS_EINVAL, "%s must be an integer, not %s", what, jv_type_name(v));
}

static int str_from_buf(struct jj_ctx *c, struct buf *b, int rc, struct jv *out)
{
    if (rc == AS_ENOMEM)
        rc = jj_fail(c, AS_ERANGE, "string too long");
    if (!rc)
        rc = jv_from_buf(c, b, out);
    buf_free(b);
    return rc;
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

static const char *const no_kw[1] = {0};

static int check_args(struct jj_ctx *c, const char *kind, struct str name,
                      const struct jj_callargs *a, int max_pos, const char *const *kw, int nkw)
{
    if (max_pos >= 0 && a->npos > (size_t)max_pos)
        return jj_fail(c, AS_EINVAL, "%s '%.*s' takes at most %d argument(s), %zu given", kind,
                       (int)(name.len > 40 ? 40 : name.len), name.p, max_pos, a->npos);
    for (size_t k = 0; k < a->nkw; k++) {
        int ok = 0;
        for (int j = 0; j < nkw && kw[j] && !ok; j++)
            ok = a->kwnames[k].len == strlen(kw[j]) &&
                 memcmp(a->kwnames[k].p, kw[j], a->kwnames[k].len) == 0;
        if (!ok)
            return jj_fail(c, AS_EINVAL, "%s '%.*s' got an unexpected keyword argument '%.*s'",
                           kind, (int)(name.len > 40 ? 40 : name.len), name.p,
                           (int)(a->kwnames[k].len > 40 ? 40 : a->kwnames[k].len), a->kwnames[k].p);
    }
    return 0;
}

static int undef_fail(struct jj_ctx *c, struct jv u)
{
    if (u.u.s.p && u.u.s.len)
        return jj_fail(c, AS_EINVAL, "'%.*s' is undefined", (int)(u.u.s.len > 60 ? 60 : u.u.s.len),
                       u.u.s.p);
    return jj_fail(c, AS_EINVAL, "undefined value used");
}

/* ---- string helpers ----------------------------------------------------------- */

static char lower_c(char ch)
{
    return ch >= 'A' && ch <= 'Z' ? (char)(ch + 32) : ch;
}

static char upper_c(char ch)
{
    return ch >= 'a' && ch <= 'z' ? (char)(ch - 32) : ch;
}

static int is_alpha_c(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
}

/* mode: 'u' upper, 'l' lower, 't' str.title, 'c' capitalize, 'T' jinja title filter */
static int case_map(struct jj_ctx *c, struct jv s, int mode, struct jv *out)
{
    char *o = jj_alloc(&c->arena, s.u.s.len + 1);
    if (!o)
        return JJ_OOM(c);
    int prev_cased = 0, word_start = 1;
    for (size_t i = 0; i < s.u.s.len; i++) {
        char ch = s.u.s.p[i];
        switch (mode) {
        case 'u':
            o[i] = upper_c(ch);
            break;
        case 'l':
            o[i] = lower_c(ch);
            break;
        case 'c':
            o[i] = i == 0 ? upper_c(ch) : lower_c(ch);
            break;
        case 't':
            o[i] = is_alpha_c(ch) ? (prev_cased ? lower_c(ch) : upper_c(ch)) : ch;
            prev_cased = is_alpha_c(ch);
            break;
        default: { /* jinja: words start after runs of -, whitespace, ( { [ < */
            int delim = ch == '-' || ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' ||
                        ch == '\v' || ch == '\f' || ch == '(' || ch == '{' || ch == '[' ||
                        ch == '<';
            o[i] = delim ? ch : word_start ? upper_c(ch) : lower_c(ch);
            word_start = delim;
        }
        }
    }
    *out = jv_str(o, s.u.s.len);
    return 0;
}

static int in_chars(uint32_t cp, struct jv chars)
{
    size_t i = 0;
    while (i < chars.u.s.len) {
        size_t adv;
        if (jj_utf8_decode(chars.u.s.p + i, chars.u.s.len - i, &adv) == cp)
            return 1;
        i += adv;
    }
    return 0;
}

/* str.strip/lstrip/rstrip: chars NONE/UNDEF = whitespace. which: 'b', 'l', 'r'. */
static int do_strip(struct jj_ctx *c, struct jv s, struct jv chars, int which, struct jv *out)
{
    int ws = chars.kind == JV_NONE || chars.kind == JV_UNDEF;
    if (!ws && chars.kind != JV_STR)
        return jj_fail(c, AS_EINVAL, "strip arg must be None or str");
    const char *p = s.u.s.p;
    size_t n = s.u.s.len, b = 0, e = n, i = 0;
    if (which != 'r') {
        while (i < n) {
            size_t adv;
            uint32_t cp = jj_utf8_decode(p + i, n - i, &adv);
            if (ws ? !jj_is_space(cp) : !in_chars(cp, chars))
                break;
            i += adv;
        }
        b = i;
    }
    if (which != 'l') {
        size_t keep = b;
        i = b;
        while (i < n) {
            size_t adv;
            uint32_t cp = jj_utf8_decode(p + i, n - i, &adv);
            i += adv;
            if (ws ? !jj_is_space(cp) : !in_chars(cp, chars))
                keep = i;
        }
        e = keep;
    }
    *out = jv_str(p + b, e - b);
    return 0;
}

static int do_split(struct jj_ctx *c, struct jv s, struct jv sep, int64_t maxsplit, int right,
                    struct jv *out)
{
    const char *p = s.u.s.p;
    size_t len = s.u.s.len;
    int ws = sep.kind == JV_NONE || sep.kind == JV_UNDEF;
    if (!ws && (sep.kind != JV_STR || sep.u.s.len == 0))
        return jj_fail(c, AS_EINVAL, "split separator must be a non-empty string or None");
    if (maxsplit < 0)
        maxsplit = INT64_MAX;
    /* collect [start, end) pieces left to right; rsplit with a limit splits from the right */
    struct {
        size_t b, e;
    } *pieces = jj_alloc(&c->arena, (len + 2) * sizeof(*pieces));
    size_t np = 0;
    if (!pieces)
        return JJ_OOM(c);
    if (!right || maxsplit == INT64_MAX) {
        size_t i = 0;
        int64_t splits = 0;
        if (ws) {
            for (;;) {
                while (i < len && jj_is_space((unsigned char)p[i]))
                    i++;
                if (i >= len)
                    break;
                if (splits == maxsplit) {
                    size_t e = len;
                    while (e > i && jj_is_space((unsigned char)p[e - 1]))
                        e--;
                    pieces[np].b = i, pieces[np].e = e, np++;
                    break;
                }
                size_t b = i;
                while (i < len && !jj_is_space((unsigned char)p[i]))
                    i++;
                pieces[np].b = b, pieces[np].e = i, np++;
                splits++;
            }
        } else {
            size_t b = 0;
            while (splits < maxsplit) {
                const char *hit = memmem(p + i, len - i, sep.u.s.p, sep.u.s.len);
                if (!hit)
                    break;
                size_t at = (size_t)(hit - p);
                pieces[np].b = b, pieces[np].e = at, np++;
                i = b = at + sep.u.s.len;
                splits++;
            }
            pieces[np].b = b, pieces[np].e = len, np++;
        }
    } else {
        /* rsplit with maxsplit: scan from the right */
        size_t e = len, i = len;
        int64_t splits = 0;
        size_t rev_n = 0;
        if (ws) {
            for (;;) {
                while (i > 0 && jj_is_space((unsigned char)p[i - 1]))
                    i--;
                if (i == 0)
                    break;
                if (splits == maxsplit) {
                    size_t b = 0;
                    while (b < i && jj_is_space((unsigned char)p[b]))
                        b++;
                    pieces[rev_n].b = b, pieces[rev_n].e = i, rev_n++;
                    break;
                }
                e = i;
                while (i > 0 && !jj_is_space((unsigned char)p[i - 1]))
                    i--;
                pieces[rev_n].b = i, pieces[rev_n].e = e, rev_n++;
                splits++;
            }
        } else {
            while (splits < maxsplit && i >= sep.u.s.len) {
                size_t at = SIZE_MAX;
                for (size_t k = i - sep.u.s.len + 1; k-- > 0;)
                    if (memcmp(p + k, sep.u.s.p, sep.u.s.len) == 0) {
                        at = k;
                        break;
                    }
                if (at == SIZE_MAX)
                    break;
                pieces[rev_n].b = at + sep.u.s.len, pieces[rev_n].e = e, rev_n++;
                e = i = at;
                splits++;
            }
            pieces[rev_n].b = 0, pieces[rev_n].e = e, rev_n++;
        }
        for (size_t k = 0; k < rev_n / 2; k++) {
            size_t b = pieces[k].b, ee = pieces[k].e;
            pieces[k] = pieces[rev_n - 1 - k];
            pieces[rev_n - 1 - k].b = b, pieces[rev_n - 1 - k].e = ee;
        }
        np = rev_n;
    }
    if (jj_charge(c, np))
        return AS_ERANGE;
    struct jv_list *l = jv_list_new(c, np);
    if (!l)
        return JJ_OOM(c);
    for (size_t k = 0; k < np; k++)
        l->items[k] = jv_str(p + pieces[k].b, pieces[k].e - pieces[k].b);
    *out = jv_list(l, 0);
    return 0;
}

static int do_replace(struct jj_ctx *c, struct jv s, struct jv old, struct jv nw, int64_t count,
                      struct jv *out)
{
    struct buf b;
    int rc = 0;
    if (old.kind != JV_STR || nw.kind != JV_STR)
        return jj_fail(c, AS_EINVAL, "replace() arguments must be strings");
    if (count < 0)
        count = INT64_MAX;
    buf_init(&b, c->opts.max_output);
    const char *p = s.u.s.p;
    size_t n = s.u.s.len, i = 0;
    if (old.u.s.len == 0) {
        /* Python inserts `new` before every character and at the end */
        int64_t done = 0;
        while (!rc) {
            if (done < count) {
                rc = buf_append(&b, nw.u.s.p, nw.u.s.len);
                done++;
            }
            if (i >= n)
                break;
            size_t adv;
            jj_utf8_decode(p + i, n - i, &adv);
            if (!rc)
                rc = buf_append(&b, p + i, adv);
            i += adv;
        }
        return str_from_buf(c, &b, rc, out);
    }
    for (int64_t done = 0; done < count && !rc; done++) {
        const char *hit = memmem(p + i, n - i, old.u.s.p, old.u.s.len);
        if (!hit)
            break;
        size_t at = (size_t)(hit - p);
        rc = buf_append(&b, p + i, at - i);
        if (!rc)
            rc = buf_append(&b, nw.u.s.p, nw.u.s.len);
        i = at + old.u.s.len;
    }
    if (!rc)
        rc = buf_append(&b, p + i, n - i);
    if (!rc && jj_charge(c, b.len / 64))
        rc = AS_ERANGE;
    return str_from_buf(c, &b, rc, out);
}

static int affix_match(struct jv s, struct jv a, int end)
{
    if (a.u.s.len > s.u.s.len)
        return 0;
    const char *p = end ? s.u.s.p + s.u.s.len - a.u.s.len : s.u.s.p;
    return memcmp(p, a.u.s.p, a.u.s.len) == 0;
}

static int do_affix(struct jj_ctx *c, struct jv s, struct jv a, int end, struct jv *out)
{
    if (a.kind == JV_STR) {
        *out = jv_bool(affix_match(s, a, end));
        return 0;
    }
    if (a.kind == JV_LIST && a.tuple) {
        for (size_t i = 0; i < a.u.l->len; i++) {
            if (a.u.l->items[i].kind != JV_STR)
                return jj_fail(c, AS_EINVAL, "tuple for startswith/endswith must hold str");
            if (affix_match(s, a.u.l->items[i], end)) {
                *out = jv_bool(1);
                return 0;
            }
        }
        *out = jv_bool(0);
        return 0;
    }
    return jj_fail(c, AS_EINVAL, "startswith/endswith first arg must be str or a tuple of str");
}

static int do_join(struct jj_ctx *c, struct jv seq, struct jv sep, struct jv attr, int has_attr,
                   struct jv *out);

/* Python str.format for {} {0} {name} {{ }} with an optional !s / !r and no format spec. */
static int do_str_format(struct jj_ctx *c, struct jv fmt, struct jj_callargs *a, struct jv *out)
{
    struct buf b;
    int rc = 0;
    size_t auto_i = 0;
    const char *p = fmt.u.s.p;
    size_t n = fmt.u.s.len;
    buf_init(&b, c->opts.max_output);
    for (size_t i = 0; i < n && !rc; i++) {
        if (p[i] == '}' && i + 1 < n && p[i + 1] == '}') {
            rc = buf_append_char(&b, '}');
            i++;
            continue;
        }
        if (p[i] != '{') {
            rc = buf_append_char(&b, p[i]);
            continue;
        }
        if (i + 1 < n && p[i + 1] == '{') {
            rc = buf_append_char(&b, '{');
            i++;
            continue;
        }
        size_t j = i + 1;
        while (j < n && p[j] != '}' && p[j] != '!' && p[j] != ':')
            j++;
        struct str field = {p + i + 1, j - i - 1};
        char conv = 's';
        if (j + 1 < n && p[j] == '!') {
            conv = p[j + 1];
            j += 2;
        }
        if (j >= n || p[j] != '}') {
            rc = jj_fail(c, AS_EINVAL, "str.format: unsupported or malformed replacement field");
            break;
        }
        struct jv v;
        int found = 0;
        if (field.len == 0) {
            found = arg(a, auto_i++, NULL, &v);
        } else if (field.p[0] >= '0' && field.p[0] <= '9') {
            size_t idx = 0;
            for (size_t k = 0; k < field.len && idx < 1000; k++)
                idx = idx * 10 + (size_t)(field.p[k] - '0');
            found = arg(a, idx, NULL, &v);
        } else {
            for (size_t k = 0; k < a->nkw; k++)
                if (a->kwnames[k].len == field.len &&
                    memcmp(a->kwnames[k].p, field.p, field.len) == 0) {
                    v = a->kw[k];
                    found = 1;
                }
        }
        if (!found) {
            rc = jj_fail(c, AS_EINVAL, "str.format: missing argument for '{%.*s}'",
                         (int)(field.len > 40 ? 40 : field.len), field.p);
            break;
        }
        rc = conv == 'r' ? jv_write_repr(c, &b, v) : jv_write_str(c, &b, v);
        i = j;
    }
    return str_from_buf(c, &b, rc, out);
}

/* ---- methods ------------------------------------------------------------------ */

int jj_method(struct jj_ctx *c, struct jv self, struct str name, struct jv *out)
{
    static const struct {
        const char *name;
        int id;
    } str_m[] =
        {{"strip", M_STRIP},       {"lstrip", M_LSTRIP},         {"rstrip", M_RSTRIP},
         {"split", M_SPLIT},       {"rsplit", M_RSPLIT},         {"startswith", M_STARTSWITH},
         {"endswith", M_ENDSWITH}, {"upper", M_UPPER},           {"lower", M_LOWER},
         {"title", M_TITLE},       {"capitalize", M_CAPITALIZE}, {"replace", M_REPLACE},
         {"find", M_FIND},         {"rfind", M_RFIND},           {"count", M_COUNT},
         {"join", M_JOIN},         {"format", M_FORMAT},         {"splitlines", M_SPLITLINES},
         {"isdigit", M_ISDIGIT},   {"isalpha", M_ISALPHA},       {"isspace", M_ISSPACE},
         {"isupper", M_ISUPPER},   {"islower", M_ISLOWER}},
      dict_m[] = {{"items", M_ITEMS}, {"keys", M_KEYS}, {"values", M_VALUES}, {"get", M_GET}};
    int id = 0;
    if (self.kind == JV_STR) {
        for (size_t i = 0; i < sizeof(str_m) / sizeof(str_m[0]) && !id; i++)
            if (str_eq(name, str_m[i].name))
                id = str_m[i].id;
    } else if (self.kind == JV_DICT) {
        for (size_t i = 0; i < sizeof(dict_m) / sizeof(dict_m[0]) && !id; i++)
            if (str_eq(name, dict_m[i].name))
                id = dict_m[i].id;
    }
    if (!id)
        return 0;
    struct jv_func *fn = jj_alloc(&c->arena, sizeof(*fn));
    if (!fn)
        return 0;
    fn->kind = JF_METHOD;
    fn->id = id;
    fn->self = self;
    out->kind = JV_FUNC;
    out->u.fn = fn;
    return 1;
}

static int dict_pairs(struct jj_ctx *c, struct jv_dict *d, struct jv *out)
{
    struct jv_list *l = jv_list_new(c, d->len);
    if (!l)
        return JJ_OOM(c);
    for (size_t i = 0; i < d->len; i++) {
        struct jv_list *p = jv_list_new(c, 2);
        if (!p)
            return JJ_OOM(c);
        p->items[0] = d->keys[i];
        p->items[1] = d->vals[i];
        l->items[i] = jv_list(p, 1);
    }
    *out = jv_list(l, 0);
    return 0;
}

static int is_ascii_class(struct jv s, int (*pred)(int))
{
    if (s.u.s.len == 0)
        return 0;
    for (size_t i = 0; i < s.u.s.len; i++)
        if (!pred((unsigned char)s.u.s.p[i]))
            return 0;
    return 1;
}

static int p_digit(int ch)
{
    return ch >= '0' && ch <= '9';
}
static int p_alpha(int ch)
{
    return is_alpha_c((char)ch);
}

static int call_method(struct jj_ctx *c, const struct jv_func *fn, struct jj_callargs *a,
                       struct jv *out)
{
    struct jv s = fn->self, x, y, z;
    int64_t n = -1;
    static const char *const split_kw[] = {"sep", "maxsplit"};
    static const struct str mname = {"method", 6};
    int max_pos = 0, rc, is_split = fn->id == M_SPLIT || fn->id == M_RSPLIT;
    switch (fn->id) {
    case M_STRIP:
    case M_LSTRIP:
    case M_RSTRIP:
    case M_STARTSWITH:
    case M_ENDSWITH:
    case M_FIND:
    case M_RFIND:
    case M_COUNT:
    case M_JOIN:
        max_pos = 1;
        break;
    case M_SPLIT:
    case M_RSPLIT:
    case M_GET:
        max_pos = 2;
        break;
    case M_REPLACE:
        max_pos = 3;
        break;
    default:
        break;
    }
    if (fn->id != M_FORMAT && (rc = check_args(c, "str/dict", mname, a, max_pos,
                                               is_split ? split_kw : no_kw, is_split ? 2 : 0)))
        return rc;
    switch (fn->id) {
    case M_STRIP:
    case M_LSTRIP:
    case M_RSTRIP:
        if (!arg(a, 0, "chars", &x))
            x = jv_none();
        return do_strip(c, s, x, fn->id == M_STRIP ? 'b' : fn->id == M_LSTRIP ? 'l' : 'r', out);
    case M_SPLIT:
    case M_RSPLIT:
        if (!arg(a, 0, "sep", &x))
            x = jv_none();
        if (arg(a, 1, "maxsplit", &y) && want_int(c, y, "maxsplit", &n))
            return AS_EINVAL;
        return do_split(c, s, x, n, fn->id == M_RSPLIT, out);
    case M_STARTSWITH:
    case M_ENDSWITH:
        if (!arg(a, 0, NULL, &x))
            return jj_fail(c, AS_EINVAL, "startswith/endswith takes one argument");
        return do_affix(c, s, x, fn->id == M_ENDSWITH, out);
    case M_UPPER:
        return case_map(c, s, 'u', out);
    case M_LOWER:
        return case_map(c, s, 'l', out);
    case M_TITLE:
        return case_map(c, s, 't', out);
    case M_CAPITALIZE:
        return case_map(c, s, 'c', out);
    case M_REPLACE:
        if (!arg(a, 0, NULL, &x) || !arg(a, 1, NULL, &y))
            return jj_fail(c, AS_EINVAL, "replace() takes at least 2 arguments");
        if (arg(a, 2, "count", &z) && want_int(c, z, "count", &n))
            return AS_EINVAL;
        return do_replace(c, s, x, y, n, out);
    case M_FIND:
    case M_RFIND:
    case M_COUNT: {
        if (!arg(a, 0, NULL, &x) || want_str(c, x, "substring"))
            return jj_fail(c, AS_EINVAL, "find/count needs a string argument");
        if (fn->id == M_COUNT) {
            int64_t k = 0;
            if (x.u.s.len == 0) {
                *out = jv_int((int64_t)jj_utf8_len(s.u.s.p, s.u.s.len) + 1);
                return 0;
            }
            for (size_t i = 0; i + x.u.s.len <= s.u.s.len;) {
                const char *h = memmem(s.u.s.p + i, s.u.s.len - i, x.u.s.p, x.u.s.len);
                if (!h)
                    break;
                k++;
                i = (size_t)(h - s.u.s.p) + x.u.s.len;
            }
            *out = jv_int(k);
            return 0;
        }
        const char *hit = NULL;
        if (fn->id == M_FIND) {
            hit = memmem(s.u.s.p, s.u.s.len, x.u.s.p, x.u.s.len);
        } else if (x.u.s.len <= s.u.s.len) {
            for (size_t k = s.u.s.len - x.u.s.len + 1; k-- > 0;)
                if (memcmp(s.u.s.p + k, x.u.s.p, x.u.s.len) == 0) {
                    hit = s.u.s.p + k;
                    break;
                }
        }
        *out = jv_int(hit ? (int64_t)jj_utf8_len(s.u.s.p, (size_t)(hit - s.u.s.p)) : -1);
        return 0;
    }
    case M_JOIN:
        if (!arg(a, 0, NULL, &x))
            return jj_fail(c, AS_EINVAL, "join() takes one argument");
        if (x.kind == JV_LIST)
            for (size_t i = 0; i < x.u.l->len; i++)
                if (x.u.l->items[i].kind != JV_STR)
                    return jj_fail(c, AS_EINVAL,
                                   "sequence item %zu: expected str instance, %s found", i,
                                   jv_type_name(x.u.l->items[i]));
        return do_join(c, x, s, jv_none(), 0, out);
    case M_FORMAT:
        return do_str_format(c, s, a, out);
    case M_SPLITLINES: {
        struct jv_list *l = jv_list_new(c, s.u.s.len + 1);
        size_t k = 0, b = 0, i = 0;
        if (!l)
            return JJ_OOM(c);
        while (i < s.u.s.len) {
            char ch = s.u.s.p[i];
            if (ch == '\n' || ch == '\r' || ch == '\v' || ch == '\f' ||
                (ch >= 0x1c && ch <= 0x1e)) {
                l->items[k++] = jv_str(s.u.s.p + b, i - b);
                i += (ch == '\r' && i + 1 < s.u.s.len && s.u.s.p[i + 1] == '\n') ? 2 : 1;
                b = i;
            } else {
                i++;
            }
        }
        if (b < s.u.s.len)
            l->items[k++] = jv_str(s.u.s.p + b, s.u.s.len - b);
        l->len = k;
        *out = jv_list(l, 0);
        return 0;
    }
    case M_ISDIGIT:
        *out = jv_bool(is_ascii_class(s, p_digit));
        return 0;
    case M_ISALPHA:
        *out = jv_bool(is_ascii_class(s, p_alpha));
        return 0;
    case M_ISSPACE: {
        size_t i = 0;
        int r = s.u.s.len > 0;
        while (i < s.u.s.len && r) {
            size_t adv;
            r = jj_is_space(jj_utf8_decode(s.u.s.p + i, s.u.s.len - i, &adv));
            i += adv;
        }
        *out = jv_bool(r);
        return 0;
    }
    case M_ISUPPER:
    case M_ISLOWER: {
        int cased = 0, ok = 1;
        for (size_t i = 0; i < s.u.s.len; i++) {
            char ch = s.u.s.p[i];
            if (ch >= 'a' && ch <= 'z') {
                cased = 1;
                ok &= fn->id == M_ISLOWER;
            } else if (ch >= 'A' && ch <= 'Z') {
                cased = 1;
                ok &= fn->id == M_ISUPPER;
            }
        }
        *out = jv_bool(cased && ok);
        return 0;
    }
    case M_ITEMS:
        return dict_pairs(c, s.u.d, out);
    case M_KEYS:
    case M_VALUES: {
        struct jv_list *l = jv_list_new(c, s.u.d->len);
        if (!l)
            return JJ_OOM(c);
        memcpy(l->items, fn->id == M_KEYS ? s.u.d->keys : s.u.d->vals,
               s.u.d->len * sizeof(struct jv));
        *out = jv_list(l, 0);
        return 0;
    }
    case M_GET: {
        if (!arg(a, 0, NULL, &x))
            return jj_fail(c, AS_EINVAL, "get() takes at least 1 argument");
        struct jv *v = jv_dict_get(s.u.d, x);
        if (v)
            *out = *v;
        else if (!arg(a, 1, NULL, out))
            *out = jv_none();
        return 0;
    }
    }
    return jj_fail(c, AS_EINVAL, "unknown method");
}

/* ---- globals -------------------------------------------------------------------- */

static struct jv_func g_range = {.kind = JF_BUILTIN, .id = B_RANGE};
static struct jv_func g_namespace = {.kind = JF_BUILTIN, .id = B_NAMESPACE};
static struct jv_func g_dict = {.kind = JF_BUILTIN, .id = B_DICT};
static struct jv_func g_raise = {.kind = JF_BUILTIN, .id = B_RAISE};
static struct jv_func g_strftime = {.kind = JF_BUILTIN, .id = B_STRFTIME};

int jj_global(struct str name, struct jv *out, struct jj_ctx *c)
{
    struct jv_func *fn = NULL;
    (void)c;
    if (str_eq(name, "range"))
        fn = &g_range;
    else if (str_eq(name, "namespace"))
        fn = &g_namespace;
    else if (str_eq(name, "dict"))
        fn = &g_dict;
    else if (str_eq(name, "raise_exception"))
        fn = &g_raise;
    else if (str_eq(name, "strftime_now"))
        fn = &g_strftime;
    if (!fn)
        return 0;
    memset(out, 0, sizeof(*out));
    out->kind = JV_FUNC;
    out->u.fn = fn;
    return 1;
}

static int kwargs_dict(struct jj_ctx *c, struct jj_callargs *a, size_t first_pos, struct jv *out)
{
    int rc;
    struct jv_dict *d = jv_dict_new(c, a->nkw);
    if (!d)
        return JJ_OOM(c);
    if (a->npos > first_pos + 1)
        return jj_fail(c, AS_EINVAL, "expected at most 1 positional argument");
    if (a->npos > first_pos) {
        struct jv m = a->pos[first_pos];
        if (m.kind == JV_UNDEF)
            return undef_fail(c, m);
        if (m.kind == JV_DICT || m.kind == JV_NS) {
            for (size_t i = 0; i < m.u.d->len; i++)
                if ((rc = jv_dict_set(c, d, m.u.d->keys[i], m.u.d->vals[i])))
                    return rc;
        } else {
            struct jv_list *l;
            if ((rc = jv_iterate(c, m, &l)))
                return rc;
            for (size_t i = 0; i < l->len; i++) {
                struct jv p = l->items[i];
                if (p.kind != JV_LIST || p.u.l->len != 2)
                    return jj_fail(c, AS_EINVAL,
                                   "dictionary update sequence element #%zu "
                                   "has wrong length",
                                   i);
                if ((rc = jv_dict_set(c, d, p.u.l->items[0], p.u.l->items[1])))
                    return rc;
            }
        }
    }
    for (size_t i = 0; i < a->nkw; i++)
        if ((rc = jv_dict_set(c, d, jv_str(a->kwnames[i].p, a->kwnames[i].len), a->kw[i])))
            return rc;
    *out = jv_dict(d);
    return 0;
}

int jj_call_builtin(struct jj_ctx *c, const struct jv_func *fn, struct jj_callargs *a,
                    struct jv *out)
{
    int rc;
    if (fn->kind == JF_METHOD)
        return call_method(c, fn, a, out);
    if (fn->kind == JF_CYCLE) {
        const struct jj_loop *l = fn->self.u.loop;
        if (a->npos == 0)
            return jj_fail(c, AS_EINVAL, "no items for cycling given");
        *out = a->pos[l->index0 % a->npos];
        return 0;
    }
    switch (fn->id) {
    case B_RANGE: {
        int64_t v[3] = {0, 0, 1};
        if (a->npos < 1 || a->npos > 3 || a->nkw)
            return jj_fail(c, AS_EINVAL, "range expected 1 to 3 integer arguments");
        for (size_t i = 0; i < a->npos; i++)
            if (want_int(c, a->pos[i], "range() argument", &v[i]))
                return AS_EINVAL;
        int64_t start = a->npos == 1 ? 0 : v[0], stop = a->npos == 1 ? v[0] : v[1];
        int64_t step = a->npos == 3 ? v[2] : 1, n = 0;
        if (step == 0)
            return jj_fail(c, AS_EINVAL, "range() arg 3 must not be zero");
        if (step > 0 && start < stop)
            n = (int64_t)(((uint64_t)stop - (uint64_t)start - 1) / (uint64_t)step + 1);
        else if (step < 0 && stop < start)
            n = (int64_t)(((uint64_t)start - (uint64_t)stop - 1) / (uint64_t)(-(step + 1) + 1) + 1);
        if (n > MAX_RANGE)
            return jj_fail(c, AS_ERANGE, "range too big, maximum size for range is %d", MAX_RANGE);
        if ((rc = jj_charge(c, (uint64_t)n)))
            return rc;
        struct jv_list *l = jv_list_new(c, (size_t)n);
        if (!l)
            return JJ_OOM(c);
        for (int64_t i = 0; i < n; i++)
            l->items[i] = jv_int(start + i * step);
        *out = jv_list(l, 0);
        return 0;
    }
    case B_NAMESPACE:
        if ((rc = kwargs_dict(c, a, 0, out)))
            return rc;
        out->kind = JV_NS;
        return 0;
    case B_DICT:
        return kwargs_dict(c, a, 0, out);
    case B_RAISE: {
        struct jv msg = jv_str("", 0);
        if (a->npos > 0 && (rc = jv_to_str(c, a->pos[0], &msg)))
            return rc;
        if (c->err && c->err->msg[0] == '\0') {
            size_t n =
                msg.u.s.len < sizeof(c->err->msg) - 1 ? msg.u.s.len : sizeof(c->err->msg) - 1;
            memcpy(c->err->msg, msg.u.s.p, n);
            c->err->msg[n] = '\0';
            for (size_t k = 0; k < n; k++) /* keep the message a C string */
                if (c->err->msg[k] == '\0')
                    c->err->msg[k] = '?';
            if (n == 0)
                snprintf(c->err->msg, sizeof(c->err->msg), "raise_exception");
            c->err->raised = 1;
            c->err->line = c->line;
        }
        return AS_EINVAL;
    }
    case B_STRFTIME: {
        struct jv f;
        char tmp[512];
        struct tm tm;
        if (!arg(a, 0, "format", &f) || want_str(c, f, "strftime_now format"))
            return AS_EINVAL;
        if (f.u.s.len > 128)
            return jj_fail(c, AS_EINVAL, "strftime_now format too long");
        char fmt[130];
        memcpy(fmt, f.u.s.p, f.u.s.len);
        fmt[f.u.s.len] = '\0';
        time_t t = (time_t)c->opts.now;
        if (!localtime_r(&t, &tm))
            return jj_fail(c, AS_EINVAL, "strftime_now: bad time");
            /* the format comes from the template, like Python's datetime.strftime */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
        size_t n = fmt[0] ? strftime(tmp, sizeof(tmp), fmt, &tm) : 0;
#pragma GCC diagnostic pop
        char *s = jj_strndup(&c->arena, tmp, n);
        if (!s)
            return JJ_OOM(c);
        *out = jv_str(s, n);
        return 0;
    }
    }
    return jj_fail(c, AS_EINVAL, "unknown builtin");
}

/* ---- tests -------------------------------------------------------------------------- */

static int is_num(struct jv v)
{
    return v.kind == JV_BOOL || v.kind == JV_INT || v.kind == JV_FLOAT;
}

int jj_test(struct jj_ctx *c, struct str name, struct jv v, struct jj_callargs *a, int *out)
{
    struct jv x;
    int has = arg(a, 0, NULL, &x);
    int rc, lt;
#define T(s) str_eq(name, s)
    {
        int one = T("divisibleby") || T("eq") || T("equalto") || T("==") || T("ne") || T("!=") ||
                  T("lt") || T("lessthan") || T("<") || T("le") || T("<=") || T("gt") ||
                  T("greaterthan") || T(">") || T("ge") || T(">=") || T("in") || T("sameas");
        if ((rc = check_args(c, "test", name, a, one, no_kw, 0)))
            return rc;
        if (one && !has)
            return jj_fail(c, AS_EINVAL, "test '%.*s' needs an argument",
                           (int)(name.len > 40 ? 40 : name.len), name.p);
    }
    if (T("defined"))
        *out = v.kind != JV_UNDEF;
    else if (T("undefined"))
        *out = v.kind == JV_UNDEF;
    else if (T("none"))
        *out = v.kind == JV_NONE;
    else if (T("boolean"))
        *out = v.kind == JV_BOOL;
    else if (T("true"))
        *out = v.kind == JV_BOOL && v.u.i;
    else if (T("false"))
        *out = v.kind == JV_BOOL && !v.u.i;
    else if (T("integer"))
        *out = v.kind == JV_INT;
    else if (T("float"))
        *out = v.kind == JV_FLOAT;
    else if (T("number"))
        *out = is_num(v);
    else if (T("string"))
        *out = v.kind == JV_STR;
    else if (T("mapping"))
        *out = v.kind == JV_DICT;
    else if (T("iterable"))
        *out = v.kind == JV_STR || v.kind == JV_LIST || v.kind == JV_DICT || v.kind == JV_UNDEF;
    else if (T("sequence"))
        *out = v.kind == JV_STR || v.kind == JV_LIST || v.kind == JV_DICT;
    else if (T("callable"))
        *out = v.kind == JV_FUNC;
    else if (T("odd") || T("even")) {
        if (v.kind != JV_INT && v.kind != JV_BOOL)
            return jj_fail(c, AS_EINVAL, "odd/even test needs an integer");
        *out = (v.u.i & 1) == T("odd");
    } else if (T("divisibleby")) {
        if (!has || !is_num(x) || !is_num(v))
            return jj_fail(c, AS_EINVAL, "divisibleby needs numbers");
        if (v.kind != JV_FLOAT && x.kind != JV_FLOAT) {
            if (x.u.i == 0)
                return jj_fail(c, AS_EINVAL, "integer division or modulo by zero");
            *out = x.u.i == -1 || v.u.i % x.u.i == 0;
        } else {
            double d = x.kind == JV_FLOAT ? x.u.f : (double)x.u.i;
            double n = v.kind == JV_FLOAT ? v.u.f : (double)v.u.i;
            if (d == 0)
                return jj_fail(c, AS_EINVAL, "float modulo by zero");
            *out = fmod(n, d) == 0;
        }
    } else if (T("eq") || T("equalto") || T("==")) {
        *out = has && jv_equal(v, x);
    } else if (T("ne") || T("!=")) {
        *out = !(has && jv_equal(v, x));
    } else if (T("lt") || T("lessthan") || T("<") || T("ge") || T(">=")) {
        if (!has || (rc = jv_less(c, v, x, &lt)))
            return has ? rc : jj_fail(c, AS_EINVAL, "comparison test needs an argument");
        *out = (T("lt") || T("lessthan") || T("<")) ? lt : !lt;
    } else if (T("gt") || T("greaterthan") || T(">") || T("le") || T("<=")) {
        if (!has || (rc = jv_less(c, x, v, &lt)))
            return has ? rc : jj_fail(c, AS_EINVAL, "comparison test needs an argument");
        *out = (T("gt") || T("greaterthan") || T(">")) ? lt : !lt;
    } else if (T("in")) {
        if (!has)
            return jj_fail(c, AS_EINVAL, "in test needs an argument");
        if (x.kind == JV_STR && v.kind == JV_STR)
            *out = v.u.s.len == 0 || memmem(x.u.s.p, x.u.s.len, v.u.s.p, v.u.s.len) != NULL;
        else if (x.kind == JV_DICT)
            *out = jv_dict_get(x.u.d, v) != NULL;
        else if (x.kind == JV_LIST) {
            *out = 0;
            for (size_t i = 0; i < x.u.l->len && !*out; i++)
                *out = jv_equal(x.u.l->items[i], v);
        } else
            return jj_fail(c, AS_EINVAL, "in test: unsupported container");
    } else if (T("sameas")) {
        /* Python identity: None/bools are singletons, small ints are cached */
        *out = v.kind == x.kind &&
               (v.kind == JV_NONE || (v.kind == JV_BOOL && v.u.i == x.u.i) ||
                (v.kind == JV_INT && v.u.i == x.u.i && v.u.i >= -5 && v.u.i <= 256) ||
                (v.kind == JV_STR && v.u.s.p == x.u.s.p && v.u.s.len == x.u.s.len) ||
                (v.kind == JV_LIST && v.u.l == x.u.l) ||
                ((v.kind == JV_DICT || v.kind == JV_NS) && v.u.d == x.u.d));
    } else if (T("lower") || T("upper")) {
        struct jv s;
        if ((rc = jv_to_str(c, v, &s)))
            return rc;
        int cased = 0, ok = 1;
        for (size_t i = 0; i < s.u.s.len; i++) {
            char ch = s.u.s.p[i];
            if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z')) {
                cased = 1;
                ok &= (ch >= 'a' && ch <= 'z') == T("lower");
            }
        }
        *out = cased && ok;
    } else if (T("escaped")) {
        *out = 0;
    } else {
        return jj_fail(c, AS_EINVAL, "no test named '%.*s'", (int)(name.len > 40 ? 40 : name.len),
                       name.p);
    }
#undef T
    return 0;
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
    return case_map(c, v, 'l', out);
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

static int do_join(struct jj_ctx *c, struct jv seq, struct jv sep, struct jv attr, int has_attr,
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
    return str_from_buf(c, &b, rc, out);
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
    if (attr && !arg(a, 0, NULL, &path))
        return jj_fail(c, AS_EINVAL, "selectattr/rejectattr need an attribute");
    int has_test = a->npos > skip;
    if (has_test) {
        testname = a->pos[skip];
        if ((rc = want_str(c, testname, "test name")))
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
    return 0;
}

static int do_indent(struct jj_ctx *c, struct jv s, struct jj_callargs *a, struct jv *out)
{
    struct jv w, fv, bv;
    struct buf ind, b;
    int rc = 0;
    int first = arg(a, 1, "first", &fv) && jv_truthy(fv);
    int blank = arg(a, 2, "blank", &bv) && jv_truthy(bv);
    buf_init(&ind, 4096);
    if (!arg(a, 0, "width", &w))
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
    return str_from_buf(c, &b, rc, out);
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
    if (arg(a, 0, "precision", &pv) && want_int(c, pv, "precision", &prec))
        return AS_EINVAL;
    if (!is_num(v))
        return jj_fail(c, AS_EINVAL, "round needs a number");
    if (v.kind != JV_FLOAT && (!arg(a, 1, "method", &mv) || (mv.kind == JV_STR && mv.u.s.len == 6 &&
                                                             memcmp(mv.u.s.p, "common", 6) == 0))) {
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
    if (arg(a, 1, "method", &mv)) {
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
    if (arg(a, 1, "indent", &iv) && iv.kind != JV_NONE) {
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
    if (arg(a, 2, "separators", &sv) && sv.kind != JV_NONE) {
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
    int sort_keys = arg(a, 3, "sort_keys", &kv) && jv_truthy(kv);
    int ascii = arg(a, 0, "ensure_ascii", &av) && jv_truthy(av);
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
    return str_from_buf(c, &b, rc, out);
}

static int do_unique(struct jj_ctx *c, struct jv seq, struct jj_callargs *a, struct jv *out)
{
    struct jv_list *l, *r;
    struct jv csv, attr;
    int rc;
    int cs = arg(a, 0, "case_sensitive", &csv) && jv_truthy(csv);
    int has_attr = arg(a, 1, "attribute", &attr) && attr.kind != JV_NONE;
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
    return 0;
}

static int do_minmax(struct jj_ctx *c, struct jv seq, struct jj_callargs *a, int want_max,
                     struct jv *out)
{
    struct jv_list *l;
    struct jv csv, attr, best = jv_undef(NULL), bestk = jv_none();
    int rc;
    int cs = arg(a, 0, "case_sensitive", &csv) && jv_truthy(csv);
    int has_attr = arg(a, 1, "attribute", &attr) && attr.kind != JV_NONE;
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
        if (str_eq(name, filter_specs[k].name)) {
            if ((rc = check_args(c, "filter", name, a, filter_specs[k].max_pos, filter_specs[k].kw,
                                 5)))
                return rc;
            break;
        }
    }
#define F(s) str_eq(name, s)
    if (F("safe") || F("e") || F("escape") || F("forceescape")) {
        if (F("safe")) {
            *out = v;
            return 0;
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
        return str_from_buf(c, &b, rc, out);
    }
    if (F("tojson"))
        return do_tojson(c, v, a, out);
    if (F("trim")) {
        if (!arg(a, 0, "chars", &y))
            y = jv_none();
        if ((rc = jv_to_str(c, v, &x)))
            return rc;
        return do_strip(c, x, y, 'b', out);
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
        return case_map(c, x, F("upper") ? 'u' : F("lower") ? 'l' : F("title") ? 'T' : 'c', out);
    }
    if (F("default") || F("d")) {
        struct jv bv;
        int boolean = arg(a, 1, "boolean", &bv) && jv_truthy(bv);
        if (v.kind == JV_UNDEF || (boolean && !jv_truthy(v))) {
            if (!arg(a, 0, "default_value", out))
                *out = jv_str("", 0);
        } else {
            *out = v;
        }
        return 0;
    }
    if (F("first") || F("last")) {
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
            return 0;
        }
        if (v.kind != JV_DICT)
            return jj_fail(c, AS_EINVAL, "Can only get item pairs from a mapping.");
        return dict_pairs(c, v.u.d, out);
    }
    if (F("join")) {
        struct jv attr;
        int has_attr = arg(a, 1, "attribute", &attr) && attr.kind != JV_NONE;
        if (!arg(a, 0, "d", &x))
            x = jv_str("", 0);
        return do_join(c, v, x, attr, has_attr, out);
    }
    if (F("replace")) {
        struct jv z;
        n = -1;
        if (!arg(a, 0, "old", &x) || !arg(a, 1, "new", &y))
            return jj_fail(c, AS_EINVAL, "replace filter needs old and new");
        if (arg(a, 2, "count", &z) && z.kind != JV_NONE && want_int(c, z, "count", &n))
            return AS_EINVAL;
        struct jv s;
        if ((rc = jv_to_str(c, v, &s)))
            return rc;
        return do_replace(c, s, x, y, n, out);
    }
    if ((F("int") || F("float") || F("indent")) && v.kind == JV_UNDEF)
        return undef_fail(c, v);
    if (F("int")) {
        struct jv dv, bv;
        int64_t base = 10;
        if (!arg(a, 0, "default", &dv))
            dv = jv_int(0);
        if (arg(a, 1, "base", &bv) &&
            (want_int(c, bv, "base", &base) || base == 1 || base < 0 || base > 36))
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
        if (!arg(a, 0, "default", &x))
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
        return 0;
    }
    if (F("sort") || F("dictsort")) {
        struct jv rv, csv, attr;
        int dsort = F("dictsort");
        int reverse, cs, has_attr = 0;
        if (dsort) {
            struct jv by;
            cs = arg(a, 0, "case_sensitive", &csv) && jv_truthy(csv);
            int by_value = arg(a, 1, "by", &by) && by.kind == JV_STR && by.u.s.len == 5 &&
                           memcmp(by.u.s.p, "value", 5) == 0;
            if (arg(a, 1, "by", &by) && !by_value &&
                !(by.kind == JV_STR && by.u.s.len == 3 && memcmp(by.u.s.p, "key", 3) == 0))
                return jj_fail(c, AS_EINVAL, "You can only sort by either \"key\" or \"value\"");
            reverse = arg(a, 2, "reverse", &rv) && jv_truthy(rv);
            if (v.kind != JV_DICT)
                return jj_fail(c, AS_EINVAL, "dictsort needs a mapping");
            if ((rc = dict_pairs(c, v.u.d, &x)))
                return rc;
            l = x.u.l;
            attr = jv_int(by_value ? 1 : 0);
            has_attr = 1;
        } else {
            reverse = arg(a, 0, "reverse", &rv) && jv_truthy(rv);
            cs = arg(a, 1, "case_sensitive", &csv) && jv_truthy(csv);
            has_attr = arg(a, 2, "attribute", &attr) && attr.kind != JV_NONE;
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
            if (str_eq(a->kwnames[k], "attribute")) {
                attr = a->kw[k];
                has_attr = 1;
            }
        int has_default = 0;
        for (size_t k = 0; k < a->nkw; k++)
            if (str_eq(a->kwnames[k], "default")) {
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
                if (str_eq(fname, "map"))
                    return jj_fail(c, AS_EINVAL, "map cannot map itself");
                if ((rc = jj_filter(c, fname, l->items[i], &fa, &r->items[i])))
                    return rc;
            }
        }
        *out = jv_list(r, 0);
        return 0;
    }
    if (F("batch")) {
        struct jv fill;
        int64_t size;
        if (!arg(a, 0, "linecount", &x) || want_int(c, x, "linecount", &size) || size <= 0)
            return jj_fail(c, AS_EINVAL, "batch needs a positive linecount");
        int has_fill = arg(a, 1, "fill_with", &fill) && fill.kind != JV_NONE;
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
        return 0;
    }
    if (F("attr")) {
        if (!arg(a, 0, "name", &x) || (rc = want_str(c, x, "attribute name")))
            return jj_fail(c, AS_EINVAL, "attr needs a name");
        struct str nm = {x.u.s.p, x.u.s.len};
        return jj_getattr(c, v, nm, out);
    }
    if (F("sum")) {
        struct jv attr, start;
        int has_attr = arg(a, 0, "attribute", &attr) && attr.kind != JV_NONE;
        if (!arg(a, 1, "start", &start))
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
        if ((rc = jv_to_str(c, v, &x)))
            return rc;
        return do_indent(c, x, a, out);
    }
    if (F("wordcount")) {
        if ((rc = jv_to_str(c, v, &x)))
            return rc;
        int64_t words = 0;
        int in = 0;
        for (size_t i = 0; i < x.u.s.len; i++) {
            unsigned char ch = (unsigned char)x.u.s.p[i];
            int w = ch >= 0x80 || ch == '_' || (ch >= '0' && ch <= '9') || is_alpha_c((char)ch);
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
