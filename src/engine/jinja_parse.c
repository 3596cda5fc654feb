/*
 * jinja_parse.c - statement parser of the Jinja interpreter (for, if, set,
 * macro, call, filter, with, ...), the compile-time checks jinja2 makes,
 * and jinja_template_parse() / jinja_template_free().
 * Statements nest as in jinja2's parser.py.
 * Not for: expressions (jinja_parse_expr.c), evaluation (jinja_eval.c) or
 * tokenising (jinja_lex.c).
 */
#include "engine/jinja_parse_internal.h"

#include "core/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JJ_MAX_SOURCE (16u << 20)

int jj__pvec_push(struct parser *P, struct pvec *v, void *x)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 4;
        void **np = jj_alloc(P->a, cap * sizeof(void *));
        if (!np)
            return AS_ENOMEM;
        if (v->n)
            memcpy(np, v->p, v->n * sizeof(void *));
        v->p = np;
        v->cap = cap;
    }
    v->p[v->n++] = x;
    return 0;
}

const char *jj__tok_desc(const struct jt *t, char *buf, size_t n)
{
    switch (t->kind) {
    case JT_EOF:
        return "end of template";
    case JT_DATA:
        return "template data";
    case JT_VAR_BEGIN:
        return "'{{'";
    case JT_VAR_END:
        return "end of print statement";
    case JT_BLOCK_BEGIN:
        return "'{%'";
    case JT_BLOCK_END:
        return "end of statement block";
    case JT_NAME:
        snprintf(buf, n, "'%.*s'", (int)(t->len > 40 ? 40 : t->len), t->p);
        return buf;
    case JT_STRING:
        return "string";
    case JT_INT:
        return "integer";
    case JT_FLOAT:
        return "float";
    default:
        if (t->op < 32) {
            static const char *two[] = {"", "//", "**", "==", "!=", "<=", ">="};
            snprintf(buf, n, "'%s'", two[t->op < 7 ? t->op : 0]);
        } else {
            snprintf(buf, n, "'%c'", t->op);
        }
        return buf;
    }
}

int jj__pfail(struct parser *P, const char *what)
{
    char b[64];
    if (P->err) {
        P->err->line = cur(P)->line;
        P->err->raised = 0;
        snprintf(P->err->msg, sizeof(P->err->msg), "syntax error: %s (got %s)", what,
                 jj__tok_desc(cur(P), b, sizeof(b)));
    }
    return AS_EINVAL;
}

int jj__poom(struct parser *P)
{
    if (P->err) {
        P->err->line = cur(P)->line;
        snprintf(P->err->msg, sizeof(P->err->msg), "out of memory while parsing template");
    }
    return AS_ENOMEM;
}

int jj__expect_op(struct parser *P, int op, const char *what)
{
    if (!tok_is_op(cur(P), op))
        return jj__pfail(P, what);
    adv(P);
    return 0;
}

int jj__expect_kind(struct parser *P, int kind, const char *what)
{
    if (cur(P)->kind != kind)
        return jj__pfail(P, what);
    adv(P);
    return 0;
}

struct jn *jj__node(struct parser *P, int kind, int line)
{
    struct jn *x = jj_alloc(P->a, sizeof(*x));
    if (x) {
        x->kind = (uint8_t)kind;
        x->line = line;
    }
    return x;
}

static int parse_body(struct parser *P, const char *const *ends, struct jbody *body, int *which);

/* Reads the name of an end tag found by parse_body and the block end after it. */
static int finish_tag(struct parser *P)
{
    adv(P); /* the end name */
    return jj__expect_kind(P, JT_BLOCK_END, "expected end of statement block");
}

static int parse_signature(struct parser *P, struct js *s)
{
    int rc;
    struct pvec names = {0}, defs = {0};
    if ((rc = jj__expect_op(P, '(', "expected '('")))
        return rc;
    while (!tok_is_op(cur(P), ')')) {
        if (names.n && (rc = jj__expect_op(P, ',', "expected ',' or ')'")))
            return rc;
        if (cur(P)->kind != JT_NAME)
            return jj__pfail(P, "expected a parameter name");
        struct str *nm = jj_alloc(P->a, sizeof(*nm));
        struct jn *d = NULL;
        if (!nm)
            return jj__poom(P);
        nm->p = cur(P)->p;
        nm->len = cur(P)->len;
        adv(P);
        if (tok_is_op(cur(P), '=')) {
            adv(P);
            if ((rc = jj__parse_expr(P, 1, &d)))
                return rc;
        } else if (defs.n && defs.p[defs.n - 1]) {
            return jj__pfail(P, "non-default argument follows default argument");
        }
        if (jj__pvec_push(P, &names, nm) || jj__pvec_push(P, &defs, d))
            return jj__poom(P);
    }
    adv(P);
    s->nparams = names.n;
    s->defaults = (struct jn **)defs.p;
    if (names.n && !(s->params = jj_alloc(P->a, names.n * sizeof(struct str))))
        return jj__poom(P);
    for (size_t i = 0; i < names.n; i++)
        s->params[i] = *(struct str *)names.p[i];
    return 0;
}

static int parse_statement(struct parser *P, struct js **out)
{
    int rc, which;
    const struct jt *t = cur(P);
    struct js *s = jj_alloc(P->a, sizeof(*s));
    if (!s)
        return jj__poom(P);
    s->line = t->line;
    *out = s;
    if (t->kind != JT_NAME)
        return jj__pfail(P, "expected a statement name");
    if (tok_is_name(t, "for")) {
        static const char *const e1[] = {"endfor", "else", NULL}, *const e2[] = {"endfor", NULL};
        s->kind = JS_FOR;
        adv(P);
        if ((rc = jj__parse_assign_target(P, "in", 0, &s->target)))
            return rc;
        if (!tok_is_name(cur(P), "in"))
            return jj__pfail(P, "expected 'in'");
        adv(P);
        if ((rc = jj__parse_tuple(P, 0, 0, "recursive", 0, &s->expr)))
            return rc;
        if (tok_is_name(cur(P), "if")) {
            adv(P);
            if ((rc = jj__parse_expr(P, 1, &s->cond)))
                return rc;
        }
        if (tok_is_name(cur(P), "recursive"))
            return jj__pfail(P, "recursive for loops are not supported");
        if ((rc = jj__expect_kind(P, JT_BLOCK_END, "expected end of statement block")))
            return rc;
        P->loops++;
        rc = parse_body(P, e1, &s->body, &which);
        P->loops--;
        if (rc)
            return rc;
        if (which == 1) {
            if ((rc = finish_tag(P)) || (rc = parse_body(P, e2, &s->other, &which)))
                return rc;
        }
        return finish_tag(P);
    }
    if (tok_is_name(t, "if")) {
        static const char *const e[] = {"elif", "else", "endif", NULL}, *const e2[] = {"endif",
                                                                                       NULL};
        struct js *node_if = s;
        s->kind = JS_IF;
        adv(P);
        for (;;) {
            if ((rc = jj__parse_tuple(P, 0, 0, NULL, 0, &node_if->expr)) ||
                (rc = jj__expect_kind(P, JT_BLOCK_END, "expected end of statement block")) ||
                (rc = parse_body(P, e, &node_if->body, &which)))
                return rc;
            if (which == 0) { /* elif */
                struct js *n2 = jj_alloc(P->a, sizeof(*n2));
                if (!n2 || !(node_if->other.s = jj_alloc(P->a, sizeof(struct js *))))
                    return jj__poom(P);
                n2->kind = JS_IF;
                n2->line = cur(P)->line;
                node_if->other.n = 1;
                node_if->other.s[0] = n2;
                node_if = n2;
                adv(P);
                continue;
            }
            if (which == 1) {
                if ((rc = finish_tag(P)) || (rc = parse_body(P, e2, &node_if->other, &which)))
                    return rc;
            }
            return finish_tag(P);
        }
    }
    if (tok_is_name(t, "set")) {
        static const char *const e[] = {"endset", NULL};
        adv(P);
        if ((rc = jj__parse_assign_target(P, NULL, 1, &s->target)))
            return rc;
        if (tok_is_op(cur(P), '=')) {
            s->kind = JS_SET;
            adv(P);
            if ((rc = jj__parse_tuple(P, 0, 1, NULL, 0, &s->expr)))
                return rc;
            return jj__expect_kind(P, JT_BLOCK_END, "expected end of statement block");
        }
        s->kind = JS_SETBLOCK;
        if (s->target->kind == JN_TUPLE)
            return jj__pfail(P, "block set needs a single name");
        if (tok_is_op(cur(P), '|')) {
            if ((rc = jj__parse_filter(P, &s->filter, 0)))
                return rc;
        }
        if ((rc = jj__expect_kind(P, JT_BLOCK_END, "expected '=' or end of statement block")) ||
            (rc = parse_body(P, e, &s->body, &which)))
            return rc;
        return finish_tag(P);
    }
    if (tok_is_name(t, "macro") || tok_is_name(t, "call")) {
        static const char *const em[] = {"endmacro", NULL}, *const ec[] = {"endcall", NULL};
        int macro = tok_is_name(t, "macro");
        int loops = P->loops;
        adv(P);
        if (macro) {
            s->kind = JS_MACRO;
            if (cur(P)->kind != JT_NAME)
                return jj__pfail(P, "expected macro name");
            s->name.p = cur(P)->p;
            s->name.len = cur(P)->len;
            adv(P);
            if ((rc = parse_signature(P, s)))
                return rc;
        } else {
            s->kind = JS_CALLBLOCK;
            if (tok_is_op(cur(P), '(') && (rc = parse_signature(P, s)))
                return rc;
            if ((rc = jj__parse_expr(P, 1, &s->expr)))
                return rc;
            if (s->expr->kind != JN_CALL)
                return jj__pfail(P, "expected a call expression");
        }
        if ((rc = jj__expect_kind(P, JT_BLOCK_END, "expected end of statement block")))
            return rc;
        P->loops = 0;
        rc = parse_body(P, macro ? em : ec, &s->body, &which);
        P->loops = loops;
        if (rc)
            return rc;
        return finish_tag(P);
    }
    if (tok_is_name(t, "filter")) {
        static const char *const e[] = {"endfilter", NULL};
        s->kind = JS_FILTERBLOCK;
        adv(P);
        if ((rc = jj__parse_filter(P, &s->filter, 1)) ||
            (rc = jj__expect_kind(P, JT_BLOCK_END, "expected end of statement block")) ||
            (rc = parse_body(P, e, &s->body, &which)))
            return rc;
        return finish_tag(P);
    }
    if (tok_is_name(t, "with")) {
        static const char *const e[] = {"endwith", NULL};
        struct pvec tg = {0}, vals = {0};
        s->kind = JS_WITH;
        adv(P);
        while (cur(P)->kind != JT_BLOCK_END) {
            struct jn *x;
            if (tg.n && (rc = jj__expect_op(P, ',', "expected ','")))
                return rc;
            if ((rc = jj__parse_assign_target(P, NULL, 0, &x)) || jj__pvec_push(P, &tg, x))
                return rc ? rc : jj__poom(P);
            if ((rc = jj__expect_op(P, '=', "expected '='")) || (rc = jj__parse_expr(P, 1, &x)) ||
                jj__pvec_push(P, &vals, x))
                return rc ? rc : jj__poom(P);
        }
        if (!(s->target = jj__node(P, JN_TUPLE, s->line)) ||
            !(s->expr = jj__node(P, JN_TUPLE, s->line)))
            return jj__poom(P);
        s->target->items = (struct jn **)tg.p;
        s->target->n = tg.n;
        s->expr->items = (struct jn **)vals.p;
        s->expr->n = vals.n;
        if ((rc = jj__expect_kind(P, JT_BLOCK_END, "expected end of statement block")) ||
            (rc = parse_body(P, e, &s->body, &which)))
            return rc;
        return finish_tag(P);
    }
    if (tok_is_name(t, "generation")) {
        static const char *const e[] = {"endgeneration", NULL};
        s->kind = JS_BLOCK;
        adv(P);
        if ((rc = jj__expect_kind(P, JT_BLOCK_END, "expected end of statement block")) ||
            (rc = parse_body(P, e, &s->body, &which)))
            return rc;
        return finish_tag(P);
    }
    if (tok_is_name(t, "break") || tok_is_name(t, "continue")) {
        if (!P->loops)
            return jj__pfail(P, "'break' / 'continue' outside of a loop");
        s->kind = tok_is_name(t, "break") ? JS_BREAK : JS_CONTINUE;
        adv(P);
        return jj__expect_kind(P, JT_BLOCK_END, "expected end of statement block");
    }
    return jj__pfail(P, "unknown or unsupported tag");
}

/*
 * Parses statements until EOF (ends == NULL) or a `{% name` whose name is in
 * ends; then *which is its index and the current token is that name.
 */
static int parse_body(struct parser *P, const char *const *ends, struct jbody *body, int *which)
{
    int rc;
    struct pvec v = {0};
    if (++P->depth > JJ_MAX_PARSE_DEPTH)
        return jj__pfail(P, "statements nested too deeply");
    for (;;) {
        const struct jt *t = cur(P);
        struct js *s = NULL;
        if (t->kind == JT_EOF) {
            if (ends) {
                char msg[128];
                size_t k = (size_t)snprintf(msg, sizeof(msg),
                                            "unexpected end of template, "
                                            "expected ");
                for (int e = 0; ends[e] && k < sizeof(msg); e++)
                    k += (size_t)snprintf(msg + k, sizeof(msg) - k, "%s'%s'", e ? " or " : "",
                                          ends[e]);
                return jj__pfail(P, msg);
            }
            break;
        }
        if (t->kind == JT_DATA) {
            if (!(s = jj_alloc(P->a, sizeof(*s))))
                return jj__poom(P);
            s->kind = JS_TEXT;
            s->line = t->line;
            s->text.p = t->p;
            s->text.len = t->len;
            adv(P);
        } else if (t->kind == JT_VAR_BEGIN) {
            adv(P);
            if (!(s = jj_alloc(P->a, sizeof(*s))))
                return jj__poom(P);
            s->kind = JS_OUT;
            s->line = t->line;
            if ((rc = jj__parse_tuple(P, 0, 1, NULL, 0, &s->expr)) ||
                (rc = jj__expect_kind(P, JT_VAR_END, "expected end of print statement")))
                return rc;
        } else if (t->kind == JT_BLOCK_BEGIN) {
            adv(P);
            const struct jt *nm = cur(P);
            for (int k = 0; ends && ends[k]; k++) {
                if (tok_is_name(nm, ends[k])) {
                    *which = k;
                    goto done;
                }
            }
            if ((rc = parse_statement(P, &s)))
                return rc;
        } else {
            return jj__pfail(P, "unexpected token");
        }
        if (jj__pvec_push(P, &v, s))
            return jj__poom(P);
    }
done:
    P->depth--;
    body->n = v.n;
    body->s = (struct js **)v.p;
    return 0;
}

/*
 * jinja2 reports an unknown filter or test when compiling, except inside an
 * `if` (test and branches) or a conditional expression, where it becomes a
 * runtime error of the branch actually taken. soft: inside such a construct.
 */
static int check_expr(struct parser *P, const struct jn *x, int soft, int depth);

static int check_args_names(struct parser *P, const struct jn_args *a, int soft, int depth)
{
    for (size_t i = 0; a && i < a->npos; i++)
        if (check_expr(P, a->pos[i], soft, depth))
            return AS_EINVAL;
    for (size_t i = 0; a && i < a->nkw; i++)
        if (check_expr(P, a->kw[i], soft, depth))
            return AS_EINVAL;
    return 0;
}

static int check_expr(struct parser *P, const struct jn *x, int soft, int depth)
{
    if (!x)
        return 0;
    if (depth > 4 * JJ_MAX_PARSE_DEPTH)
        return 0;
    if (x->kind == JN_COND)
        soft = 1;
    if (!soft && ((x->kind == JN_FILTER && !jj_filter_known(x->name)) ||
                  (x->kind == JN_TEST && !jj_test_known(x->name)))) {
        if (P->err) {
            P->err->line = x->line;
            snprintf(P->err->msg, sizeof(P->err->msg), "syntax error: no %s named '%.*s'",
                     x->kind == JN_FILTER ? "filter" : "test",
                     (int)(x->name.len > 40 ? 40 : x->name.len), x->name.p);
        }
        return AS_EINVAL;
    }
    if (check_expr(P, x->a, soft, depth + 1) || check_expr(P, x->b, soft, depth + 1) ||
        check_expr(P, x->c, soft, depth + 1) || check_args_names(P, x->args, soft, depth + 1))
        return AS_EINVAL;
    for (size_t i = 0; i < x->n; i++)
        if (check_expr(P, x->items[i], soft, depth + 1))
            return AS_EINVAL;
    return 0;
}

static int check_body(struct parser *P, const struct jbody *b, int soft)
{
    for (size_t i = 0; i < b->n; i++) {
        const struct js *s = b->s[i];
        int in = s->kind == JS_IF || s->kind == JS_BLOCK ? (s->kind == JS_IF ? 1 : soft) : 0;
        if (check_expr(P, s->expr, s->kind == JS_IF ? 1 : soft, 0) ||
            check_expr(P, s->cond, 0, 0) || check_expr(P, s->filter, soft, 0) ||
            check_body(P, &s->body, in) || check_body(P, &s->other, in))
            return AS_EINVAL;
        for (size_t k = 0; k < s->nparams; k++)
            if (s->defaults && check_expr(P, s->defaults[k], soft, 0))
                return AS_EINVAL;
    }
    return 0;
}

int jj_parse(struct jj_arena *a, const struct jt *toks, size_t ntoks, struct jbody *body,
             struct jinja_error *err)
{
    struct parser P = {.a = a, .t = toks, .n = ntoks, .err = err};
    int which;
    int rc = parse_body(&P, NULL, body, &which);
    if (!rc && check_body(&P, body, 0))
        rc = AS_EINVAL;
    return rc;
}

struct jinja_template *jinja_template_parse(const char *src, size_t len, struct jinja_error *err)
{
    struct jinja_template *t = NULL;
    struct jt *toks = NULL;
    size_t ntoks = 0;
    char *norm;
    size_t k = 0;
    int rc;
    if (err) {
        err->line = 0;
        err->raised = 0;
        err->msg[0] = '\0';
    }
    if (len > JJ_MAX_SOURCE) {
        if (err)
            snprintf(err->msg, sizeof(err->msg), "template too large (%zu bytes)", len);
        return NULL;
    }
    t = calloc(1, sizeof(*t));
    if (!t)
        goto oom;
    jj_arena_init(&t->arena, 64 * (size_t)len + (1u << 20));
    /* jinja2 turns \r\n and \r into \n and drops one trailing newline */
    norm = jj_alloc(&t->arena, len + 1);
    if (!norm)
        goto oom;
    for (size_t i = 0; i < len; i++) {
        if (src[i] == '\r') {
            norm[k++] = '\n';
            if (i + 1 < len && src[i + 1] == '\n')
                i++;
        } else {
            norm[k++] = src[i];
        }
    }
    if (k > 0 && norm[k - 1] == '\n')
        k--;
    norm[k] = '\0';
    rc = jj_lex(&t->arena, norm, k, &toks, &ntoks, err);
    if (rc == 0)
        rc = jj_parse(&t->arena, toks, ntoks, &t->body, err);
    if (rc) {
        jinja_template_free(t);
        return NULL;
    }
    return t;
oom:
    if (err)
        snprintf(err->msg, sizeof(err->msg), "out of memory while parsing template");
    jinja_template_free(t);
    return NULL;
}

void jinja_template_free(struct jinja_template *t)
{
    if (!t)
        return;
    jj_arena_free(&t->arena);
    free(t);
}
