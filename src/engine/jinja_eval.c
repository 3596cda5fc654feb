/*
 * jinja_eval.c - expression evaluation of the Jinja interpreter: attribute
 * and item access with jinja2's sandbox semantics, slicing by code point,
 * Python arithmetic and comparisons, `%` formatting, and the evaluator of
 * every expression node. Undefined follows jinja2's default Undefined:
 * printing, iterating, testing or `length` of it are fine; attribute access,
 * arithmetic or calling it are errors.
 * Not for: statements, scopes and calls (jinja_exec.c), filters (jinja_filters.c).
 */
#include "engine/jinja_internal.h"

#include "core/err.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_CALL_ARGS 64

int jj_fail(struct jj_ctx *c, int code, const char *fmt, ...)
{
    if (c->err && c->err->msg[0] == '\0') {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->err->msg, sizeof(c->err->msg), fmt, ap);
        va_end(ap);
        c->err->line = c->line;
        if (c->err->msg[0] == '\0')
            snprintf(c->err->msg, sizeof(c->err->msg), "%s", as_strerror(code));
    }
    return code;
}

int jj_charge(struct jj_ctx *c, uint64_t n)
{
    c->work += n;
    if (c->work > c->opts.max_work)
        return jj_fail(c, AS_ERANGE, "template exceeded its work limit");
    return 0;
}

int jj__undefined_error(struct jj_ctx *c, struct jv u)
{
    if (u.u.s.p && u.u.s.len)
        return jj_fail(c, AS_EINVAL, "'%.*s' is undefined", (int)(u.u.s.len > 60 ? 60 : u.u.s.len),
                       u.u.s.p);
    return jj_fail(c, AS_EINVAL, "undefined value used");
}

/* ---- attribute / item access -------------------------------------------------- */

static int loop_attr(struct jj_ctx *c, struct jv obj, struct str name, struct jv *out)
{
    const struct jj_loop *l = obj.u.loop;
    size_t n = l->items->len, i = l->index0;
#define IS(s) (name.len == sizeof(s) - 1 && memcmp(name.p, s, name.len) == 0)
    if (IS("index"))
        *out = jv_int((int64_t)i + 1);
    else if (IS("index0"))
        *out = jv_int((int64_t)i);
    else if (IS("revindex"))
        *out = jv_int((int64_t)(n - i));
    else if (IS("revindex0"))
        *out = jv_int((int64_t)(n - i - 1));
    else if (IS("first"))
        *out = jv_bool(i == 0);
    else if (IS("last"))
        *out = jv_bool(i + 1 == n);
    else if (IS("length"))
        *out = jv_int((int64_t)n);
    else if (IS("depth"))
        *out = jv_int(1);
    else if (IS("depth0"))
        *out = jv_int(0);
    else if (IS("previtem"))
        *out = i > 0 ? l->items->items[i - 1] : jv_undef("previtem");
    else if (IS("nextitem"))
        *out = i + 1 < n ? l->items->items[i + 1] : jv_undef("nextitem");
    else if (IS("cycle")) {
        struct jv_func *fn = jj_alloc(&c->arena, sizeof(*fn));
        if (!fn)
            return JJ_OOM(c);
        fn->kind = JF_CYCLE;
        fn->self = obj;
        out->kind = JV_FUNC;
        out->u.fn = fn;
    } else
        *out = jv_undef(NULL);
#undef IS
    return 0;
}

int jj_getattr(struct jj_ctx *c, struct jv obj, struct str name, struct jv *out)
{
    struct jv *v;
    switch (obj.kind) {
    case JV_UNDEF:
        return jj__undefined_error(c, obj);
    case JV_DICT:
        if (jj_method(c, obj, name, out))
            return 0;
        v = jv_dict_get_str(obj.u.d, name.p, name.len);
        break;
    case JV_NS:
        v = jv_dict_get_str(obj.u.d, name.p, name.len);
        break;
    case JV_STR:
        if (jj_method(c, obj, name, out))
            return 0;
        v = NULL;
        break;
    case JV_LOOP:
        return loop_attr(c, obj, name, out);
    default:
        v = NULL;
    }
    if (v) {
        *out = *v;
    } else {
        *out = jv_undef(NULL);
        out->u.s.p = name.p;
        out->u.s.len = name.len;
    }
    return 0;
}

static int as_index(struct jv k, int64_t *i)
{
    if (k.kind == JV_INT || k.kind == JV_BOOL) {
        *i = k.u.i;
        return 1;
    }
    return 0;
}

int jj_getitem(struct jj_ctx *c, struct jv obj, struct jv key, struct jv *out)
{
    int64_t i;
    struct jv *v;
    switch (obj.kind) {
    case JV_UNDEF:
        return jj__undefined_error(c, obj);
    case JV_DICT:
    case JV_NS:
        if ((v = jv_dict_get(obj.u.d, key))) {
            *out = *v;
            return 0;
        }
        break;
    case JV_LIST:
        if (obj.seq != JSEQ_LIST) /* generators and views are not subscriptable */
            break;
        if (as_index(key, &i)) {
            int64_t n = (int64_t)obj.u.l->len;
            if (i < 0)
                i += n;
            if (i >= 0 && i < n) {
                *out = obj.u.l->items[i];
                return 0;
            }
            *out = jv_undef(NULL);
            return 0;
        }
        break;
    case JV_STR:
        if (as_index(key, &i)) {
            int64_t n = (int64_t)jj_utf8_len(obj.u.s.p, obj.u.s.len);
            if (i < 0)
                i += n;
            if (i >= 0 && i < n) {
                size_t off = jj_utf8_offset(obj.u.s.p, obj.u.s.len, (size_t)i), adv;
                jj_utf8_decode(obj.u.s.p + off, obj.u.s.len - off, &adv);
                *out = jv_str(obj.u.s.p + off, adv);
                return 0;
            }
            *out = jv_undef(NULL);
            return 0;
        }
        break;
    default:
        break;
    }
    /* jinja2 falls back to the attribute of that name */
    if (key.kind == JV_STR && obj.kind != JV_NS) {
        struct str nm = {key.u.s.p, key.u.s.len};
        return jj_getattr(c, obj, nm, out);
    }
    *out = jv_undef(NULL);
    if (key.kind == JV_STR) {
        out->u.s.p = key.u.s.p;
        out->u.s.len = key.u.s.len;
    }
    return 0;
}

/* Python slice.indices(): start/stop/step normalised for a sequence of length n. */
static int slice_indices(struct jj_ctx *c, const struct jv *parts, int64_t n, int64_t *start,
                         int64_t *stop, int64_t *step, int *ok)
{
    int64_t v[3];
    int given[3];
    *ok = 1;
    for (int k = 0; k < 3; k++) {
        if (parts[k].kind == JV_UNDEF)
            return jj_fail(c, AS_EINVAL, "slice indices must be integers or None");
        given[k] = parts[k].kind != JV_NONE;
        if (given[k] && !as_index(parts[k], &v[k])) {
            *ok = 0;
            return 0;
        }
    }
    *step = given[2] ? v[2] : 1;
    if (*step == 0)
        return jj_fail(c, AS_EINVAL, "slice step cannot be zero");
    if (*step == INT64_MIN)
        *step = -INT64_MAX;
    int64_t lo = *step < 0 ? -1 : 0, hi = *step < 0 ? n - 1 : n;
    if (!given[0]) {
        *start = *step < 0 ? hi : lo;
    } else {
        *start = v[0];
        if (*start < 0) {
            *start = *start < -n ? lo : *start + n;
        } else if (*start > hi) {
            *start = hi;
        }
    }
    if (!given[1]) {
        *stop = *step < 0 ? lo : hi;
    } else {
        *stop = v[1];
        if (*stop < 0) {
            *stop = *stop < -n ? lo : *stop + n;
        } else if (*stop > hi) {
            *stop = hi;
        }
    }
    return 0;
}

static int do_slice(struct jj_ctx *c, struct jv obj, const struct jv *parts, int folded,
                    struct jv *out)
{
    int64_t start = 0, stop = 0, step = 1, n;
    int ok, rc;
    size_t *offs = NULL;
    if (obj.kind == JV_UNDEF)
        return jj__undefined_error(c, obj);
    if ((obj.kind != JV_LIST && obj.kind != JV_STR) ||
        (obj.kind == JV_LIST && obj.seq != JSEQ_LIST)) {
        /* jinja2 slices with plain Python (a TypeError), except when its optimizer
           folded an all-constant slice through getitem (an Undefined) */
        if (!folded)
            return jj_fail(c, AS_EINVAL, "'%s' object is not subscriptable", jv_type_name(obj));
        *out = jv_undef(NULL);
        return 0;
    }
    size_t ncp = obj.kind == JV_STR ? jj_utf8_len(obj.u.s.p, obj.u.s.len) : 0;
    n = obj.kind == JV_LIST ? (int64_t)obj.u.l->len : (int64_t)ncp;
    if ((rc = slice_indices(c, parts, n, &start, &stop, &step, &ok)))
        return rc;
    if (!ok) {
        if (!folded)
            return jj_fail(c, AS_EINVAL, "slice indices must be integers or None");
        *out = jv_undef(NULL);
        return 0;
    }
    int64_t count = 0;
    if (step > 0 && start < stop)
        count = (stop - start - 1) / step + 1;
    else if (step < 0 && stop < start)
        count = (start - stop - 1) / (-step) + 1;
    if ((rc = jj_charge(c, (uint64_t)count)))
        return rc;
    if (obj.kind == JV_LIST) {
        struct jv_list *l = jv_list_new(c, (size_t)count);
        if (!l)
            return JJ_OOM(c);
        for (int64_t k = 0; k < count; k++)
            l->items[k] = obj.u.l->items[start + k * step];
        *out = jv_list(l, obj.tuple);
        return 0;
    }
    if (ncp == obj.u.s.len && step == 1) { /* ASCII fast path: no copy */
        *out = jv_str(obj.u.s.p + start, (size_t)count);
        return 0;
    }
    /* byte offset of every code point, plus the end */
    if (!(offs = jj_alloc(&c->arena, (ncp + 1) * sizeof(size_t))))
        return JJ_OOM(c);
    for (size_t i = 0, k = 0; k <= ncp; k++) {
        offs[k] = i;
        if (i < obj.u.s.len) {
            size_t adv;
            jj_utf8_decode(obj.u.s.p + i, obj.u.s.len - i, &adv);
            i += adv;
        }
    }
    if (step == 1) {
        *out = jv_str(obj.u.s.p + offs[start], offs[start + count] - offs[start]);
        return 0;
    }
    char *s = jj_alloc(&c->arena, (size_t)count * 4 + 1);
    size_t len = 0;
    if (!s)
        return JJ_OOM(c);
    for (int64_t k = 0; k < count; k++) {
        int64_t cp = start + k * step;
        size_t w = offs[cp + 1] - offs[cp];
        memcpy(s + len, obj.u.s.p + offs[cp], w);
        len += w;
    }
    *out = jv_str(s, len);
    return 0;
}

/* ---- arithmetic ----------------------------------------------------------------- */

static int is_num(struct jv v)
{
    return v.kind == JV_BOOL || v.kind == JV_INT || v.kind == JV_FLOAT;
}

static double num_f(struct jv v)
{
    return v.kind == JV_FLOAT ? v.u.f : (double)v.u.i;
}

static int type_error(struct jj_ctx *c, const char *op, struct jv a, struct jv b)
{
    if (a.kind == JV_UNDEF)
        return jj__undefined_error(c, a);
    if (b.kind == JV_UNDEF)
        return jj__undefined_error(c, b);
    return jj_fail(c, AS_EINVAL, "unsupported operand type(s) for %s: '%s' and '%s'", op,
                   jv_type_name(a), jv_type_name(b));
}

static int concat2(struct jj_ctx *c, struct jv a, struct jv b, struct jv *out)
{
    size_t n = a.u.s.len + b.u.s.len;
    if (n > c->opts.max_output)
        return jj_fail(c, AS_ERANGE, "string too long");
    if (jj_charge(c, n / 64))
        return AS_ERANGE;
    char *s = jj_alloc(&c->arena, n + 1);
    if (!s)
        return JJ_OOM(c);
    memcpy(s, a.u.s.p, a.u.s.len);
    memcpy(s + a.u.s.len, b.u.s.p, b.u.s.len);
    *out = jv_str(s, n);
    return 0;
}

static int repeat(struct jj_ctx *c, struct jv seq, int64_t times, struct jv *out)
{
    if (times < 0)
        times = 0;
    size_t unit = seq.kind == JV_STR ? seq.u.s.len : seq.u.l->len;
    if (unit && (uint64_t)times > c->opts.max_output / unit)
        return jj_fail(c, AS_ERANGE, "sequence repetition too large");
    size_t n = unit * (size_t)times;
    if (jj_charge(c, seq.kind == JV_STR ? n / 64 : n))
        return AS_ERANGE;
    if (seq.kind == JV_STR) {
        char *s = jj_alloc(&c->arena, n + 1);
        if (!s)
            return JJ_OOM(c);
        for (int64_t k = 0; k < times; k++)
            memcpy(s + (size_t)k * unit, seq.u.s.p, unit);
        *out = jv_str(s, n);
        return 0;
    }
    struct jv_list *l = jv_list_new(c, n);
    if (!l)
        return JJ_OOM(c);
    for (int64_t k = 0; k < times; k++)
        memcpy(l->items + (size_t)k * unit, seq.u.l->items, unit * sizeof(struct jv));
    *out = jv_list(l, seq.tuple);
    return 0;
}

static int binop(struct jj_ctx *c, int op, struct jv a, struct jv b, struct jv *out)
{
    static const char *names[] = {"", "//", "**"};
    char opname[3] = {(char)op, 0, 0};
    const char *on = op < 32 ? names[op < 3 ? op : 0] : opname;
    if (op == '%' && a.kind == JV_STR)
        return jj_py_format(c, a, b, out);
    if (!is_num(a) || !is_num(b)) {
        if (op == '+' && a.kind == JV_STR && b.kind == JV_STR)
            return concat2(c, a, b, out);
        if (op == '+' && a.kind == JV_LIST && b.kind == JV_LIST && a.tuple == b.tuple &&
            a.seq == JSEQ_LIST && b.seq == JSEQ_LIST) {
            size_t n = a.u.l->len + b.u.l->len;
            if (jj_charge(c, n))
                return AS_ERANGE;
            struct jv_list *l = jv_list_new(c, n);
            if (!l)
                return JJ_OOM(c);
            memcpy(l->items, a.u.l->items, a.u.l->len * sizeof(struct jv));
            memcpy(l->items + a.u.l->len, b.u.l->items, b.u.l->len * sizeof(struct jv));
            *out = jv_list(l, a.tuple);
            return 0;
        }
        if (op == '*' && (a.kind == JV_STR || (a.kind == JV_LIST && a.seq == JSEQ_LIST)) &&
            (b.kind == JV_INT || b.kind == JV_BOOL))
            return repeat(c, a, b.u.i, out);
        if (op == '*' && (b.kind == JV_STR || (b.kind == JV_LIST && b.seq == JSEQ_LIST)) &&
            (a.kind == JV_INT || a.kind == JV_BOOL))
            return repeat(c, b, a.u.i, out);
        return type_error(c, on, a, b);
    }
    if (a.kind != JV_FLOAT && b.kind != JV_FLOAT && op != '/') {
        int64_t x = a.u.i, y = b.u.i, r;
        switch (op) {
        case '+':
            if (__builtin_add_overflow(x, y, &r))
                goto overflow;
            break;
        case '-':
            if (__builtin_sub_overflow(x, y, &r))
                goto overflow;
            break;
        case '*':
            if (__builtin_mul_overflow(x, y, &r))
                goto overflow;
            break;
        case JOP_FLOORDIV:
        case '%':
            if (y == 0)
                return jj_fail(c, AS_EINVAL, "integer division or modulo by zero");
            if (x == INT64_MIN && y == -1)
                goto overflow;
            r = op == '%' ? x % y : x / y;
            if (op == '%') {
                if (r != 0 && ((r < 0) != (y < 0)))
                    r += y;
            } else if ((x % y != 0) && ((x < 0) != (y < 0))) {
                r -= 1;
            }
            break;
        case JOP_POW:
            if (y < 0) {
                if (x == 0)
                    return jj_fail(c, AS_EINVAL, "0.0 cannot be raised to a negative power");
                *out = jv_float(pow((double)x, (double)y));
                return 0;
            }
            r = 1;
            for (int64_t base = x, e = y; e > 0; e >>= 1) {
                if ((e & 1) && __builtin_mul_overflow(r, base, &r))
                    goto overflow;
                if (e > 1 && __builtin_mul_overflow(base, base, &base))
                    goto overflow;
            }
            break;
        default:
            return type_error(c, on, a, b);
        }
        *out = jv_int(r);
        return 0;
    overflow:
        return jj_fail(c, AS_ERANGE, "integer overflow in '%s'", on);
    }
    double x = num_f(a), y = num_f(b), r;
    switch (op) {
    case '+':
        r = x + y;
        break;
    case '-':
        r = x - y;
        break;
    case '*':
        r = x * y;
        break;
    case '/':
        if (y == 0)
            return jj_fail(c, AS_EINVAL, "division by zero");
        r = x / y;
        break;
    case JOP_FLOORDIV:
    case '%': {
        if (y == 0)
            return jj_fail(c, AS_EINVAL, "float modulo or division by zero");
        double m = fmod(x, y);
        double d = (x - m) / y;
        if (m != 0 && ((y < 0) != (m < 0))) {
            m += y;
            d -= 1.0;
        }
        if (op == '%') {
            r = m != 0 ? m : copysign(0.0, y);
        } else {
            double fd = floor(d);
            if (d - fd > 0.5)
                fd += 1.0;
            r = d != 0 ? fd : copysign(0.0, x / y);
        }
        break;
    }
    case JOP_POW:
        if (x == 0 && y < 0)
            return jj_fail(c, AS_EINVAL, "0.0 cannot be raised to a negative power");
        r = pow(x, y);
        if (isnan(r) && !isnan(x) && !isnan(y))
            return jj_fail(c, AS_EINVAL, "math domain error in '**'");
        break;
    default:
        return type_error(c, on, a, b);
    }
    *out = jv_float(r);
    return 0;
}

/* printf-style `str % args` for %s %r %d %i %f %% (what templates use). */
int jj_py_format(struct jj_ctx *c, struct jv fmt, struct jv args, struct jv *out)
{
    struct buf b;
    size_t ai = 0;
    int rc = 0;
    const struct jv *av = &args;
    size_t an = 1;
    if (args.kind == JV_LIST && args.tuple) {
        av = args.u.l->items;
        an = args.u.l->len;
    }
    buf_init(&b, c->opts.max_output);
    for (size_t i = 0; i < fmt.u.s.len && !rc; i++) {
        char ch = fmt.u.s.p[i];
        if (ch != '%') {
            rc = buf_append_char(&b, ch) ? jj_fail(c, AS_ENOMEM, "string too long") : 0;
            continue;
        }
        if (++i >= fmt.u.s.len) {
            rc = jj_fail(c, AS_EINVAL, "incomplete format");
            break;
        }
        ch = fmt.u.s.p[i];
        if (ch == '%') {
            rc = buf_append_char(&b, '%') ? jj_fail(c, AS_ENOMEM, "string too long") : 0;
            continue;
        }
        if (ai >= an) {
            rc = jj_fail(c, AS_EINVAL, "not enough arguments for format string");
            break;
        }
        struct jv v = av[ai++];
        if (ch == 's') {
            rc = jv_write_str(c, &b, v);
        } else if (ch == 'r') {
            rc = jv_write_repr(c, &b, v);
        } else if ((ch == 'd' || ch == 'i') && is_num(v)) {
            rc = buf_printf(&b, "%lld", (long long)(v.kind == JV_FLOAT ? (int64_t)v.u.f : v.u.i))
                     ? jj_fail(c, AS_ENOMEM, "string too long")
                     : 0;
        } else if (ch == 'f' && is_num(v)) {
            rc = buf_printf(&b, "%f", num_f(v)) ? jj_fail(c, AS_ENOMEM, "string too long") : 0;
        } else {
            rc = jj_fail(c, AS_EINVAL, "unsupported format character '%c'", ch);
        }
    }
    if (!rc && ai < an)
        rc = jj_fail(c, AS_EINVAL, "not all arguments converted during string formatting");
    if (!rc)
        rc = jv_from_buf(c, &b, out);
    buf_free(&b);
    return rc;
}

static int contains(struct jj_ctx *c, struct jv hay, struct jv needle, int *res)
{
    switch (hay.kind) {
    case JV_UNDEF:
        *res = 0;
        return 0;
    case JV_STR:
        if (needle.kind != JV_STR)
            return jj_fail(c, AS_EINVAL, "'in <string>' requires string as left operand, not %s",
                           jv_type_name(needle));
        *res = needle.u.s.len == 0 ||
               memmem(hay.u.s.p, hay.u.s.len, needle.u.s.p, needle.u.s.len) != NULL;
        return 0;
    case JV_LIST:
        if (hay.u.l->deferred)
            return jj_fail(c, AS_EINVAL, "%s", hay.u.l->deferred);
        if (jj_charge(c, hay.u.l->len))
            return AS_ERANGE;
        *res = 0;
        for (size_t i = 0; i < hay.u.l->len && !*res; i++)
            *res = jv_equal(hay.u.l->items[i], needle);
        return 0;
    case JV_DICT:
        *res = jv_dict_get(hay.u.d, needle) != NULL;
        return 0;
    default:
        return jj_fail(c, AS_EINVAL, "argument of type '%s' is not iterable", jv_type_name(hay));
    }
}

/* ---- expressions ------------------------------------------------------------------ */

int jj__eval_args(struct jj_ctx *c, const struct jn_args *a, struct jj_frame *f,
                  struct jj_callargs *ca, size_t extra_kw)
{
    int rc;
    memset(ca, 0, sizeof(*ca));
    if (!a && !extra_kw)
        return 0;
    size_t npos = a ? a->npos : 0, nkw = a ? a->nkw : 0;
    if (npos > MAX_CALL_ARGS || nkw > MAX_CALL_ARGS)
        return jj_fail(c, AS_EINVAL, "too many call arguments");
    ca->pos = jj_alloc(&c->arena, (npos + 1) * sizeof(struct jv));
    ca->kw = jj_alloc(&c->arena, (nkw + extra_kw + 1) * sizeof(struct jv));
    ca->kwnames = jj_alloc(&c->arena, (nkw + extra_kw + 1) * sizeof(struct str));
    if (!ca->pos || !ca->kw || !ca->kwnames)
        return JJ_OOM(c);
    for (size_t i = 0; i < npos; i++)
        if ((rc = jj__eval(c, a->pos[i], f, &ca->pos[i])))
            return rc;
    for (size_t i = 0; i < nkw; i++) {
        if ((rc = jj__eval(c, a->kw[i], f, &ca->kw[i])))
            return rc;
        ca->kwnames[i] = a->kwnames[i];
    }
    ca->npos = npos;
    ca->nkw = nkw;
    return 0;
}

int jj__eval_filter_chain(struct jj_ctx *c, const struct jn *x, struct jj_frame *f,
                          struct jv subject, struct jv *out)
{
    int rc;
    struct jv v = subject;
    if (x->a) {
        /* inner filters first; the innermost a == NULL stands for the subject */
        if (x->a->kind == JN_FILTER)
            rc = jj__eval_filter_chain(c, x->a, f, subject, &v);
        else
            rc = jj__eval(c, x->a, f, &v);
        if (rc)
            return rc;
    }
    struct jj_callargs ca;
    if ((rc = jj__eval_args(c, x->args, f, &ca, 0)))
        return rc;
    c->line = x->line;
    return jj_filter(c, x->name, v, &ca, out);
}

int jj__eval(struct jj_ctx *c, const struct jn *x, struct jj_frame *f, struct jv *out)
{
    int rc;
    struct jv a, b;
    if ((rc = jj_charge(c, 1)))
        return rc;
    c->line = x->line;
    switch (x->kind) {
    case JN_LIT:
        *out = x->lit;
        return 0;
    case JN_NAME:
        return jj__lookup(c, f, x->name, out);
    case JN_LIST:
    case JN_TUPLE: {
        struct jv_list *l = jv_list_new(c, x->n);
        if (!l)
            return JJ_OOM(c);
        for (size_t i = 0; i < x->n; i++)
            if ((rc = jj__eval(c, x->items[i], f, &l->items[i])))
                return rc;
        *out = jv_list(l, x->kind == JN_TUPLE);
        return 0;
    }
    case JN_DICT: {
        struct jv_dict *d = jv_dict_new(c, x->n / 2);
        if (!d)
            return JJ_OOM(c);
        for (size_t i = 0; i + 1 < x->n; i += 2) {
            if ((rc = jj__eval(c, x->items[i], f, &a)) ||
                (rc = jj__eval(c, x->items[i + 1], f, &b)))
                return rc;
            if (a.kind == JV_LIST && !a.tuple)
                return jj_fail(c, AS_EINVAL, "unhashable type: 'list'");
            if (a.kind == JV_DICT)
                return jj_fail(c, AS_EINVAL, "unhashable type: 'dict'");
            if ((rc = jv_dict_set(c, d, a, b)))
                return rc;
        }
        *out = jv_dict(d);
        return 0;
    }
    case JN_ATTR:
        if ((rc = jj__eval(c, x->a, f, &a)))
            return rc;
        c->line = x->line;
        return jj_getattr(c, a, x->name, out);
    case JN_ITEM:
        if ((rc = jj__eval(c, x->a, f, &a)) || (rc = jj__eval(c, x->b, f, &b)))
            return rc;
        c->line = x->line;
        return jj_getitem(c, a, b, out);
    case JN_SLICE: {
        struct jv parts[3];
        if (!x->a) { /* a slice inside a tuple subscript (x[::, 1]): never a valid key */
            *out = jv_undef(NULL);
            return 0;
        }
        if ((rc = jj__eval(c, x->a, f, &a)))
            return rc;
        for (int k = 0; k < 3; k++) {
            parts[k] = jv_none();
            if (x->items[k] && (rc = jj__eval(c, x->items[k], f, &parts[k])))
                return rc;
        }
        c->line = x->line;
        return do_slice(c, a, parts, c->folding, out);
    }
    case JN_CALL: {
        struct jj_callargs ca;
        if ((rc = jj__eval(c, x->a, f, &a)) || (rc = jj__eval_args(c, x->args, f, &ca, 0)))
            return rc;
        c->line = x->line;
        return jj_call(c, a, &ca, out);
    }
    case JN_FILTER:
        return jj__eval_filter_chain(c, x, f, jv_undef(NULL), out);
    case JN_TEST: {
        struct jj_callargs ca;
        int r;
        if ((rc = jj__eval(c, x->a, f, &a)) || (rc = jj__eval_args(c, x->args, f, &ca, 0)))
            return rc;
        c->line = x->line;
        if ((rc = jj_test(c, x->name, a, &ca, &r)))
            return rc;
        *out = jv_bool(x->negate ? !r : r);
        return 0;
    }
    case JN_NOT:
        if ((rc = jj__eval(c, x->a, f, &a)))
            return rc;
        *out = jv_bool(!jv_truthy(a));
        return 0;
    case JN_NEG:
    case JN_POS:
        if ((rc = jj__eval(c, x->a, f, &a)))
            return rc;
        c->line = x->line;
        if (a.kind == JV_UNDEF)
            return jj__undefined_error(c, a);
        if (!is_num(a))
            return jj_fail(c, AS_EINVAL, "bad operand type for unary %c: '%s'",
                           x->kind == JN_NEG ? '-' : '+', jv_type_name(a));
        if (x->kind == JN_POS)
            *out = a.kind == JV_BOOL ? jv_int(a.u.i) : a;
        else if (a.kind == JV_FLOAT)
            *out = jv_float(-a.u.f);
        else if (a.u.i == INT64_MIN)
            return jj_fail(c, AS_ERANGE, "integer overflow in unary -");
        else
            *out = jv_int(-a.u.i);
        return 0;
    case JN_BIN:
        if ((rc = jj__eval(c, x->a, f, &a)) || (rc = jj__eval(c, x->b, f, &b)))
            return rc;
        c->line = x->line;
        return binop(c, x->op, a, b, out);
    case JN_AND:
    case JN_OR:
        if ((rc = jj__eval(c, x->a, f, &a)))
            return rc;
        if (jv_truthy(a) == (x->kind == JN_OR)) {
            *out = a;
            return 0;
        }
        return jj__eval(c, x->b, f, out);
    case JN_CMP: {
        if ((rc = jj__eval(c, x->items[0], f, &a)))
            return rc;
        for (size_t i = 1; i < x->n; i++) {
            int r = 0, op = x->ops[i - 1];
            if ((rc = jj__eval(c, x->items[i], f, &b)))
                return rc;
            c->line = x->line;
            switch (op) {
            case JOP_EQ:
                r = jv_equal(a, b);
                break;
            case JOP_NE:
                r = !jv_equal(a, b);
                break;
            case JCMP_IN:
            case JCMP_NOTIN:
                if ((rc = contains(c, b, a, &r)))
                    return rc;
                if (op == JCMP_NOTIN)
                    r = !r;
                break;
            default: {
                if (a.kind == JV_UNDEF)
                    return jj__undefined_error(c, a);
                if (b.kind == JV_UNDEF)
                    return jj__undefined_error(c, b);
                int lt;
                if (op == '<' || op == JOP_GE)
                    rc = jv_less(c, a, b, &lt);
                else
                    rc = jv_less(c, b, a, &lt);
                if (rc)
                    return rc;
                r = (op == '<' || op == '>') ? lt : !lt;
            }
            }
            if (!r) {
                *out = jv_bool(0);
                return 0;
            }
            a = b;
        }
        *out = jv_bool(1);
        return 0;
    }
    case JN_CONCAT: {
        struct buf bb;
        buf_init(&bb, c->opts.max_output);
        rc = 0;
        for (size_t i = 0; i < x->n && !rc; i++) {
            rc = jj__eval(c, x->items[i], f, &a);
            if (!rc)
                rc = jv_write_str(c, &bb, a);
        }
        if (!rc)
            rc = jv_from_buf(c, &bb, out);
        buf_free(&bb);
        return rc;
    }
    case JN_COND:
        if ((rc = jj__eval(c, x->b, f, &a)))
            return rc;
        if (jv_truthy(a))
            return jj__eval(c, x->a, f, out);
        if (x->c)
            return jj__eval(c, x->c, f, out);
        *out = jv_undef(NULL);
        return 0;
    }
    return jj_fail(c, AS_EINVAL, "unknown expression node");
}
