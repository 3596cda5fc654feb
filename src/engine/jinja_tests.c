/*
 * jinja_tests.c - the tests of the Jinja interpreter (`x is defined`,
 * `is string`, `is divisibleby 3`, `is equalto`, ...), as in jinja2 3.1.
 * Not for: filters (jinja_filters.c).
 */
#include "engine/jinja_internal.h"

#include "core/err.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const char *const test_names[] = {
    "!=",       "<",           "<=",      "==",        ">",       ">=",       "boolean", "callable",
    "defined",  "divisibleby", "eq",      "equalto",   "escaped", "even",     "false",   "float",
    "ge",       "greaterthan", "gt",      "in",        "integer", "iterable", "le",      "lessthan",
    "lower",    "lt",          "mapping", "ne",        "none",    "number",   "odd",     "sameas",
    "sequence", "string",      "true",    "undefined", "upper"};

int jj_test_known(struct str name)
{
    return jj__name_in(name, test_names, sizeof(test_names) / sizeof(test_names[0]));
}

/* ---- tests -------------------------------------------------------------------------- */

static int is_num(struct jv v)
{
    return v.kind == JV_BOOL || v.kind == JV_INT || v.kind == JV_FLOAT;
}

int jj_test(struct jj_ctx *c, struct str name, struct jv v, struct jj_callargs *a, int *out)
{
    struct jv x;
    int has = jj__arg(a, 0, NULL, &x);
    int rc, lt;
#define T(s) jj__str_eq(name, s)
    {
        int one = T("divisibleby") || T("eq") || T("equalto") || T("==") || T("ne") || T("!=") ||
                  T("lt") || T("lessthan") || T("<") || T("le") || T("<=") || T("gt") ||
                  T("greaterthan") || T(">") || T("ge") || T(">=") || T("in") || T("sameas");
        if ((rc = jj__check_args(c, "test", name, a, one, jj__no_kw, 0)))
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
        *out = v.kind == JV_STR || (v.kind == JV_LIST && v.seq == JSEQ_LIST) || v.kind == JV_DICT;
    else if (T("callable"))
        *out = v.kind == JV_FUNC;
    else if (T("odd") || T("even")) {
        if (v.kind == JV_FLOAT) { /* value % 2 == 1 (odd) / == 0 (even), Python's float mod */
            double m = fmod(v.u.f, 2.0);
            if (m < 0)
                m += 2.0;
            *out = T("odd") ? m == 1.0 : m == 0.0;
        } else if (v.kind == JV_INT || v.kind == JV_BOOL) {
            *out = (v.u.i & 1) == T("odd");
        } else if (v.kind == JV_UNDEF) {
            return jj__undef_fail(c, v);
        } else {
            return jj_fail(c, AS_EINVAL, "odd/even test needs a number, not %s", jv_type_name(v));
        }
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
            if (x.u.l->deferred)
                return jj_fail(c, AS_EINVAL, "%s", x.u.l->deferred);
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
