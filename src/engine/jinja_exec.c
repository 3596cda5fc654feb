/*
 * jinja_exec.c - statement execution of the Jinja interpreter, scopes,
 * macro calls and jinja_render().
 *
 * Scoping follows jinja2: a for-loop iteration and a macro call each get a
 * fresh frame (a `set` inside them is not seen outside, nor by the next
 * iteration), `if` does not open a scope, and namespace() objects are the
 * way to carry state out of a loop.
 * Not for: expressions (jinja_eval.c).
 */
#include "engine/jinja_internal.h"

#include "core/err.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
enum { EX_OK = 0, EX_BREAK = 1, EX_CONTINUE = 2 };

/* ---- frames ------------------------------------------------------------------ */

static struct jj_frame *frame_new(struct jj_ctx *c, struct jj_frame *parent)
{
    struct jj_frame *f = jj_alloc(&c->arena, sizeof(*f));
    if (f)
        f->parent = parent;
    return f;
}

static int frame_set(struct jj_ctx *c, struct jj_frame *f, struct str name, struct jv v)
{
    for (size_t i = 0; i < f->n; i++) {
        if (f->names[i].len == name.len && memcmp(f->names[i].p, name.p, name.len) == 0) {
            f->vals[i] = v;
            return 0;
        }
    }
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 8;
        struct str *nn = jj_alloc(&c->arena, cap * sizeof(*nn));
        struct jv *nv = jj_alloc(&c->arena, cap * sizeof(*nv));
        if (!nn || !nv)
            return JJ_OOM(c);
        if (f->n) {
            memcpy(nn, f->names, f->n * sizeof(*nn));
            memcpy(nv, f->vals, f->n * sizeof(*nv));
        }
        f->names = nn;
        f->vals = nv;
        f->cap = cap;
    }
    f->names[f->n] = name;
    f->vals[f->n] = v;
    f->n++;
    return 0;
}

int jj__lookup(struct jj_ctx *c, struct jj_frame *f, struct str name, struct jv *out)
{
    for (; f; f = f->parent)
        for (size_t i = f->n; i-- > 0;)
            if (f->names[i].len == name.len && memcmp(f->names[i].p, name.p, name.len) == 0) {
                *out = f->vals[i];
                return 0;
            }
    struct jv *v = c->vars ? jv_dict_get_str(c->vars, name.p, name.len) : NULL;
    if (v) {
        *out = *v;
        return 0;
    }
    if (jj_global(name, out, c))
        return 0;
    *out = jv_undef(NULL);
    out->u.s.p = name.p;
    out->u.s.len = name.len;
    return 0;
}

/* ---- output ------------------------------------------------------------------ */

static int emit(struct jj_ctx *c, const char *p, size_t n)
{
    if (c->out->len + n > c->opts.max_output)
        return jj_fail(c, AS_ERANGE, "template output exceeds %zu bytes", c->opts.max_output);
    if (jj_charge(c, n / 64))
        return AS_ERANGE;
    if (buf_append(c->out, p, n))
        return jj_fail(c, AS_ENOMEM, "template output buffer full");
    return 0;
}

static int emit_value(struct jj_ctx *c, struct jv v)
{
    int rc = v.kind == JV_STR ? 0 : jv_to_str(c, v, &v);
    return rc ? rc : emit(c, v.u.s.p, v.u.s.len);
}

/* Whether jinja2's optimizer would fold x to a constant at compile time. */
static int is_const(const struct jn *x, int depth)
{
    if (!x)
        return 1;
    if (depth > 64 || x->kind == JN_NAME || x->kind == JN_CALL)
        return 0;
    if (!is_const(x->a, depth + 1) || !is_const(x->b, depth + 1) || !is_const(x->c, depth + 1))
        return 0;
    for (size_t i = 0; i < x->n; i++)
        if (!is_const(x->items[i], depth + 1))
            return 0;
    for (size_t i = 0; x->args && i < x->args->npos; i++)
        if (!is_const(x->args->pos[i], depth + 1))
            return 0;
    for (size_t i = 0; x->args && i < x->args->nkw; i++)
        if (!is_const(x->args->kw[i], depth + 1))
            return 0;
    return 1;
}

/* ---- statements ------------------------------------------------------------------ */

static int exec_body(struct jj_ctx *c, const struct jbody *b, struct jj_frame *f);

static int capture(struct jj_ctx *c, const struct jbody *body, struct jj_frame *f, struct jv *out)
{
    struct buf tmp;
    struct buf *saved = c->out;
    buf_init(&tmp, c->opts.max_output);
    c->out = &tmp;
    int rc = exec_body(c, body, f);
    c->out = saved;
    if (rc >= 0)
        rc = jv_from_buf(c, &tmp, out);
    buf_free(&tmp);
    return rc;
}

static int assign(struct jj_ctx *c, const struct jn *target, struct jv v, struct jj_frame *f)
{
    int rc;
    if (target->kind == JN_NAME)
        return frame_set(c, f, target->name, v);
    if (target->kind == JN_ATTR) {
        struct jv ns;
        if ((rc = jj__lookup(c, f, target->a->name, &ns)))
            return rc;
        if (ns.kind != JV_NS)
            return jj_fail(c, AS_EINVAL, "can't assign attribute on non-namespace object");
        return jv_dict_set(c, ns.u.d, jv_str(target->name.p, target->name.len), v);
    }
    /* tuple unpacking */
    struct jv_list *l;
    if (v.kind == JV_UNDEF || v.kind == JV_DICT || v.kind == JV_STR || v.kind == JV_LIST) {
        if ((rc = jv_iterate(c, v, &l)))
            return rc;
    } else {
        return jj_fail(c, AS_EINVAL, "cannot unpack non-iterable %s object", jv_type_name(v));
    }
    if (l->len != target->n)
        return jj_fail(c, AS_EINVAL, "cannot unpack %zu values into %zu names", l->len, target->n);
    for (size_t i = 0; i < target->n; i++)
        if ((rc = assign(c, target->items[i], l->items[i], f)))
            return rc;
    return 0;
}

static int exec_for(struct jj_ctx *c, const struct js *s, struct jj_frame *f)
{
    int rc;
    struct jv seq;
    struct jv_list *items;
    if ((rc = jj__eval(c, s->expr, f, &seq)))
        return rc;
    c->line = s->line;
    if ((rc = jv_iterate(c, seq, &items)))
        return rc;
    struct jj_frame *it = frame_new(c, f);
    if (!it)
        return JJ_OOM(c);
    if (s->cond) {
        struct jv_list *kept = jv_list_new(c, items->len);
        size_t n = 0;
        if (!kept)
            return JJ_OOM(c);
        for (size_t i = 0; i < items->len; i++) {
            struct jv keep;
            it->n = 0;
            if ((rc = jj_charge(c, 1)) || (rc = assign(c, s->target, items->items[i], it)) ||
                (rc = jj__eval(c, s->cond, it, &keep)))
                return rc;
            if (jv_truthy(keep))
                kept->items[n++] = items->items[i];
        }
        kept->len = n;
        items = kept;
    }
    struct jj_loop *loop = jj_alloc(&c->arena, sizeof(*loop));
    if (!loop)
        return JJ_OOM(c);
    loop->items = items;
    struct jv lv = {0};
    lv.kind = JV_LOOP;
    lv.u.loop = loop;
    static const struct str loop_name = {"loop", 4};
    for (size_t i = 0; i < items->len; i++) {
        loop->index0 = i;
        it->n = 0; /* a fresh scope per iteration, as in jinja2 */
        if ((rc = jj_charge(c, 1)) || (rc = frame_set(c, it, loop_name, lv)) ||
            (rc = assign(c, s->target, items->items[i], it)))
            return rc;
        rc = exec_body(c, &s->body, it);
        if (rc < 0)
            return rc;
        if (rc == EX_BREAK)
            break;
    }
    if (items->len == 0 && s->other.n)
        return exec_body(c, &s->other, f);
    return 0;
}

static int exec_stmt(struct jj_ctx *c, const struct js *s, struct jj_frame *f)
{
    int rc;
    struct jv v;
    c->line = s->line;
    switch (s->kind) {
    case JS_TEXT:
        return emit(c, s->text.p, s->text.len);
    case JS_OUT:
        /* jinja2 evaluates an all-constant {{ }} at compile time, where slicing goes
           through the sandbox's getitem (bad slices give Undefined, not TypeError) */
        c->folding = is_const(s->expr, 0);
        rc = jj__eval(c, s->expr, f, &v);
        c->folding = 0;
        if (rc)
            return rc;
        return emit_value(c, v);
    case JS_IF:
        if ((rc = jj__eval(c, s->expr, f, &v)))
            return rc;
        return exec_body(c, jv_truthy(v) ? &s->body : &s->other, f);
    case JS_FOR:
        return exec_for(c, s, f);
    case JS_SET:
        if ((rc = jj__eval(c, s->expr, f, &v)))
            return rc;
        c->line = s->line;
        return assign(c, s->target, v, f);
    case JS_SETBLOCK:
        if ((rc = capture(c, &s->body, f, &v)))
            return rc;
        if (s->filter && (rc = jj__eval_filter_chain(c, s->filter, f, v, &v)))
            return rc;
        c->line = s->line;
        return assign(c, s->target, v, f);
    case JS_FILTERBLOCK:
        if ((rc = capture(c, &s->body, f, &v)) ||
            (rc = jj__eval_filter_chain(c, s->filter, f, v, &v)))
            return rc;
        return emit_value(c, v);
    case JS_MACRO: {
        struct jv_func *fn = jj_alloc(&c->arena, sizeof(*fn));
        if (!fn)
            return JJ_OOM(c);
        fn->kind = JF_MACRO;
        fn->macro = s;
        fn->scope = f;
        v.kind = JV_FUNC;
        v.u.fn = fn;
        return frame_set(c, f, s->name, v);
    }
    case JS_CALLBLOCK: {
        struct jv callee;
        struct jj_callargs ca;
        struct jv_func *fn = jj_alloc(&c->arena, sizeof(*fn));
        if (!fn)
            return JJ_OOM(c);
        fn->kind = JF_CALLER;
        fn->macro = s;
        fn->scope = f;
        if ((rc = jj__eval(c, s->expr->a, f, &callee)) ||
            (rc = jj__eval_args(c, s->expr->args, f, &ca, 1)))
            return rc;
        ca.kwnames[ca.nkw].p = "caller";
        ca.kwnames[ca.nkw].len = 6;
        ca.kw[ca.nkw].kind = JV_FUNC;
        ca.kw[ca.nkw].u.fn = fn;
        ca.nkw++;
        c->line = s->line;
        if ((rc = jj_call(c, callee, &ca, &v)))
            return rc;
        return emit_value(c, v);
    }
    case JS_BLOCK:
        return exec_body(c, &s->body, f);
    case JS_WITH: {
        /* values are evaluated in the enclosing scope, the body sees a new one */
        struct jj_frame *w = frame_new(c, f);
        struct jv *vals = jj_alloc(&c->arena, (s->expr->n + 1) * sizeof(struct jv));
        if (!w || !vals)
            return JJ_OOM(c);
        for (size_t i = 0; i < s->expr->n; i++)
            if ((rc = jj__eval(c, s->expr->items[i], f, &vals[i])))
                return rc;
        c->line = s->line;
        for (size_t i = 0; i < s->target->n; i++)
            if ((rc = assign(c, s->target->items[i], vals[i], w)))
                return rc;
        return exec_body(c, &s->body, w);
    }
    case JS_BREAK:
        return EX_BREAK;
    case JS_CONTINUE:
        return EX_CONTINUE;
    }
    return jj_fail(c, AS_EINVAL, "unknown statement");
}

static int exec_body(struct jj_ctx *c, const struct jbody *b, struct jj_frame *f)
{
    for (size_t i = 0; i < b->n; i++) {
        int rc = exec_stmt(c, b->s[i], f);
        if (rc)
            return rc;
    }
    return 0;
}

/* Binds macro (or caller) parameters from the call arguments into frame m. */
static int bind_params(struct jj_ctx *c, const struct js *s, const char *what,
                       struct jj_callargs *a, struct jj_frame *m)
{
    int rc;
    static const struct str caller_name = {"caller", 6};
    if (a->npos > s->nparams)
        return jj_fail(c, AS_EINVAL, "%s takes not more than %zu argument(s)", what, s->nparams);
    for (size_t i = 0; i < a->npos; i++)
        if ((rc = frame_set(c, m, s->params[i], a->pos[i])))
            return rc;
    for (size_t k = 0; k < a->nkw; k++) {
        size_t i;
        for (i = 0; i < s->nparams; i++)
            if (s->params[i].len == a->kwnames[k].len &&
                memcmp(s->params[i].p, a->kwnames[k].p, a->kwnames[k].len) == 0)
                break;
        if (i == s->nparams) {
            if (a->kwnames[k].len == 6 && memcmp(a->kwnames[k].p, "caller", 6) == 0) {
                if ((rc = frame_set(c, m, caller_name, a->kw[k])))
                    return rc;
                continue;
            }
            return jj_fail(c, AS_EINVAL, "%s got an unexpected keyword argument '%.*s'", what,
                           (int)(a->kwnames[k].len > 60 ? 60 : a->kwnames[k].len), a->kwnames[k].p);
        }
        if (i < a->npos)
            return jj_fail(c, AS_EINVAL, "%s got multiple values for argument '%.*s'", what,
                           (int)(s->params[i].len > 60 ? 60 : s->params[i].len), s->params[i].p);
        if ((rc = frame_set(c, m, s->params[i], a->kw[k])))
            return rc;
    }
    for (size_t i = a->npos; i < s->nparams; i++) {
        int given = 0;
        for (size_t k = 0; k < a->nkw; k++)
            if (s->params[i].len == a->kwnames[k].len &&
                memcmp(s->params[i].p, a->kwnames[k].p, a->kwnames[k].len) == 0)
                given = 1;
        if (given)
            continue;
        struct jv v = jv_undef(NULL);
        v.u.s.p = s->params[i].p;
        v.u.s.len = s->params[i].len;
        if (s->defaults[i] && (rc = jj__eval(c, s->defaults[i], m, &v)))
            return rc;
        if ((rc = frame_set(c, m, s->params[i], v)))
            return rc;
    }
    return 0;
}

int jj_call(struct jj_ctx *c, struct jv fnv, struct jj_callargs *a, struct jv *out)
{
    int rc;
    if (fnv.kind == JV_UNDEF)
        return jj__undefined_error(c, fnv);
    if (fnv.kind != JV_FUNC)
        return jj_fail(c, AS_EINVAL, "'%s' object is not callable", jv_type_name(fnv));
    const struct jv_func *fn = fnv.u.fn;
    if (fn->kind == JF_BUILTIN || fn->kind == JF_METHOD || fn->kind == JF_CYCLE)
        return jj_call_builtin(c, fn, a, out);
    /* macro or caller(): a fresh frame whose parent is the defining scope */
    if (c->depth >= c->opts.max_depth)
        return jj_fail(c, AS_ERANGE, "macro recursion deeper than %d", c->opts.max_depth);
    if ((rc = jj_charge(c, 8)))
        return rc;
    struct jj_frame *m = frame_new(c, fn->scope);
    if (!m)
        return JJ_OOM(c);
    char what[96];
    snprintf(what, sizeof(what), fn->kind == JF_MACRO ? "macro '%.*s'" : "caller()",
             (int)(fn->macro->name.len > 60 ? 60 : fn->macro->name.len), fn->macro->name.p);
    int line = c->line;
    c->depth++;
    rc = bind_params(c, fn->macro, what, a, m);
    if (!rc)
        rc = capture(c, &fn->macro->body, m, out);
    c->depth--;
    c->line = line;
    return rc;
}

int jinja_render(const struct jinja_template *t, const cJSON *ctx, const struct jinja_opts *opts,
                 struct buf *out, struct jinja_error *err)
{
    struct jj_ctx c;
    struct jinja_error dummy;
    int rc;
    memset(&c, 0, sizeof(c));
    if (!err)
        err = &dummy;
    err->line = 0;
    err->raised = 0;
    err->msg[0] = '\0';
    if (opts)
        c.opts = *opts;
    if (!c.opts.max_output)
        c.opts.max_output = 4u << 20;
    if (!c.opts.max_memory)
        c.opts.max_memory = 64u << 20;
    if (!c.opts.max_work)
        c.opts.max_work = 50000000;
    if (!c.opts.max_depth)
        c.opts.max_depth = 64;
    if (!c.opts.now)
        c.opts.now = (int64_t)time(NULL);
    c.err = err;
    c.out = out;
    jj_arena_init(&c.arena, c.opts.max_memory);
    if (!t) {
        rc = jj_fail(&c, AS_EINVAL, "no template");
        goto out;
    }
    if (ctx && !cJSON_IsObject(ctx) && !cJSON_IsNull(ctx)) {
        rc = jj_fail(&c, AS_EINVAL, "render context must be a JSON object");
        goto out;
    }
    if (ctx && cJSON_IsObject(ctx)) {
        struct jv v;
        if ((rc = jv_from_json(&c, ctx, &v, 0)))
            goto out;
        c.vars = v.u.d;
    }
    c.root = frame_new(&c, NULL);
    if (!c.root) {
        rc = JJ_OOM(&c);
        goto out;
    }
    rc = exec_body(&c, &t->body, c.root);
    if (rc > 0)
        rc = 0;
out:
    jj_arena_free(&c.arena);
    return rc;
}
