/*
 * jinja_globals.c - the global functions of the Jinja interpreter: range
 * (with jinja2's sandbox size limit), namespace, dict, and transformers'
 * raise_exception and strftime_now; plus the dispatch of builtin calls.
 * Not for: methods (jinja_str.c).
 */
#include "engine/jinja_internal.h"

#include "core/err.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#define MAX_RANGE 100000 /* jinja2's sandbox limit */

enum { B_RANGE = 1, B_NAMESPACE, B_DICT, B_RAISE, B_STRFTIME };

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
    if (jj__str_eq(name, "range"))
        fn = &g_range;
    else if (jj__str_eq(name, "namespace"))
        fn = &g_namespace;
    else if (jj__str_eq(name, "dict"))
        fn = &g_dict;
    else if (jj__str_eq(name, "raise_exception"))
        fn = &g_raise;
    else if (jj__str_eq(name, "strftime_now"))
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
            return jj__undef_fail(c, m);
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
        return jj__call_method(c, fn, a, out);
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
            if (jj__want_int(c, a->pos[i], "range() argument", &v[i]))
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
        if (!jj__arg(a, 0, "format", &f) || jj__want_str(c, f, "strftime_now format"))
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
