/*
 * jinja_parse.c - recursive-descent parser of the Jinja interpreter, plus
 * jinja_template_parse() / jinja_template_free().
 *
 * The grammar and operator precedence follow jinja2's parser.py so that
 * expressions group exactly as they do in Python (e.g. `-x|abs` is
 * `(-x)|abs`, `a + b|trim` is `a + (b|trim)`, `not x is y` is `not (x is y)`).
 * Not for: evaluation (jinja_eval.c) or tokenising (jinja_lex.c).
 */
#include "engine/jinja_internal.h"

#include "core/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JJ_MAX_PARSE_DEPTH 200
#define JJ_MAX_SOURCE      (16u << 20)

struct parser {
    struct jj_arena *a;
    const struct jt *t;
    size_t n, i;
    int depth;
    int loops; /* enclosing for loops (break/continue allowed) */
    struct jinja_error *err;
};

/* A growable array of pointers in the arena (old storage is abandoned on growth). */
struct pvec {
    void **p;
    size_t n, cap;
};

static int pvec_push(struct parser *P, struct pvec *v, void *x)
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

static const struct jt *cur(const struct parser *P)
{
    return &P->t[P->i < P->n ? P->i : P->n - 1];
}

static const struct jt *peek(const struct parser *P, size_t k)
{
    size_t j = P->i + k;
    return &P->t[j < P->n ? j : P->n - 1];
}

static void adv(struct parser *P)
{
    if (P->i + 1 < P->n)
        P->i++;
}

static int tok_is_name(const struct jt *t, const char *s)
{
    return t->kind == JT_NAME && t->len == strlen(s) && memcmp(t->p, s, t->len) == 0;
}

static int tok_is_op(const struct jt *t, int op)
{
    return t->kind == JT_OP && t->op == op;
}

static const char *tok_desc(const struct jt *t, char *buf, size_t n)
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

static int pfail(struct parser *P, const char *what)
{
    char b[64];
    if (P->err) {
        P->err->line = cur(P)->line;
        P->err->raised = 0;
        snprintf(P->err->msg, sizeof(P->err->msg), "syntax error: %s (got %s)", what,
                 tok_desc(cur(P), b, sizeof(b)));
    }
    return AS_EINVAL;
}

static int poom(struct parser *P)
{
    if (P->err) {
        P->err->line = cur(P)->line;
        snprintf(P->err->msg, sizeof(P->err->msg), "out of memory while parsing template");
    }
    return AS_ENOMEM;
}

static int expect_op(struct parser *P, int op, const char *what)
{
    if (!tok_is_op(cur(P), op))
        return pfail(P, what);
    adv(P);
    return 0;
}

static int expect_kind(struct parser *P, int kind, const char *what)
{
    if (cur(P)->kind != kind)
        return pfail(P, what);
    adv(P);
    return 0;
}

static struct jn *node(struct parser *P, int kind, int line)
{
    struct jn *x = jj_alloc(P->a, sizeof(*x));
    if (x) {
        x->kind = (uint8_t)kind;
        x->line = line;
    }
    return x;
}

static int parse_expr(struct parser *P, int with_condexpr, struct jn **out);
static int parse_unary(struct parser *P, int with_filter, struct jn **out);
static int parse_primary(struct parser *P, struct jn **out);
static int parse_postfix(struct parser *P, struct jn **x);
static int parse_filter(struct parser *P, struct jn **x, int start_inline);
static int parse_tuple(struct parser *P, int simplified, int with_condexpr, const char *extra_end,
                       int explicit_parens, struct jn **out);

static int parse_call_args(struct parser *P, struct jn_args **out)
{
    struct pvec pos = {0}, kw = {0}, names = {0};
    int rc;
    if ((rc = expect_op(P, '(', "expected '('")))
        return rc;
    while (!tok_is_op(cur(P), ')')) {
        if (pos.n + kw.n > 0 && (rc = expect_op(P, ',', "expected ',' or ')'")))
            return rc;
        if (tok_is_op(cur(P), ')'))
            break;
        if (tok_is_op(cur(P), '*') || tok_is_op(cur(P), JOP_POW))
            return pfail(P, "*args / **kwargs in calls are not supported");
        struct jn *x;
        if (cur(P)->kind == JT_NAME && tok_is_op(peek(P, 1), '=')) {
            struct str *nm = jj_alloc(P->a, sizeof(*nm));
            if (!nm)
                return poom(P);
            nm->p = cur(P)->p;
            nm->len = cur(P)->len;
            adv(P);
            adv(P);
            if ((rc = parse_expr(P, 1, &x)))
                return rc;
            if (pvec_push(P, &names, nm) || pvec_push(P, &kw, x))
                return poom(P);
        } else {
            if (kw.n)
                return pfail(P, "positional argument after keyword argument");
            if ((rc = parse_expr(P, 1, &x)))
                return rc;
            if (pvec_push(P, &pos, x))
                return poom(P);
        }
    }
    adv(P);
    struct jn_args *a = jj_alloc(P->a, sizeof(*a));
    if (!a)
        return poom(P);
    a->npos = pos.n;
    a->pos = (struct jn **)pos.p;
    a->nkw = kw.n;
    a->kw = (struct jn **)kw.p;
    if (kw.n) {
        a->kwnames = jj_alloc(P->a, kw.n * sizeof(struct str));
        if (!a->kwnames)
            return poom(P);
        for (size_t i = 0; i < kw.n; i++)
            a->kwnames[i] = *(struct str *)names.p[i];
    }
    *out = a;
    return 0;
}

/* name[.name...] of a filter or test */
static int parse_dotted_name(struct parser *P, struct str *name)
{
    if (cur(P)->kind != JT_NAME)
        return pfail(P, "expected a filter or test name");
    name->p = cur(P)->p;
    name->len = cur(P)->len;
    adv(P);
    while (tok_is_op(cur(P), '.') && peek(P, 1)->kind == JT_NAME) {
        /* tokens are contiguous source text: extend the slice */
        const struct jt *t = peek(P, 1);
        name->len = (size_t)(t->p + t->len - name->p);
        adv(P);
        adv(P);
    }
    return 0;
}

static int parse_filter(struct parser *P, struct jn **x, int start_inline)
{
    int rc;
    while (tok_is_op(cur(P), '|') || start_inline) {
        if (!start_inline)
            adv(P);
        start_inline = 0;
        struct jn *f = node(P, JN_FILTER, cur(P)->line);
        if (!f)
            return poom(P);
        if ((rc = parse_dotted_name(P, &f->name)))
            return rc;
        if (tok_is_op(cur(P), '(') && (rc = parse_call_args(P, &f->args)))
            return rc;
        f->a = *x;
        *x = f;
    }
    return 0;
}

static int parse_test(struct parser *P, struct jn **x)
{
    int rc;
    struct jn *t = node(P, JN_TEST, cur(P)->line);
    if (!t)
        return poom(P);
    adv(P); /* is */
    if (tok_is_name(cur(P), "not")) {
        t->negate = 1;
        adv(P);
    }
    if ((rc = parse_dotted_name(P, &t->name)))
        return rc;
    const struct jt *c = cur(P);
    if (tok_is_op(c, '(')) {
        if ((rc = parse_call_args(P, &t->args)))
            return rc;
    } else if ((c->kind == JT_NAME || c->kind == JT_STRING || c->kind == JT_INT ||
                c->kind == JT_FLOAT || tok_is_op(c, '(') || tok_is_op(c, '[') ||
                tok_is_op(c, '{')) &&
               !tok_is_name(c, "else") && !tok_is_name(c, "or") && !tok_is_name(c, "and")) {
        if (tok_is_name(c, "is"))
            return pfail(P, "you cannot chain multiple tests with is");
        struct jn *arg;
        if ((rc = parse_primary(P, &arg)) || (rc = parse_postfix(P, &arg)))
            return rc;
        t->args = jj_alloc(P->a, sizeof(*t->args));
        if (!t->args || !(t->args->pos = jj_alloc(P->a, sizeof(struct jn *))))
            return poom(P);
        t->args->npos = 1;
        t->args->pos[0] = arg;
    }
    t->a = *x;
    *x = t;
    return 0;
}

/* One subscript: an expression or a slice a:b:c (returned as JN_SLICE with a == NULL). */
static int parse_subscribed(struct parser *P, struct jn **out)
{
    int rc;
    struct jn *parts[3] = {NULL, NULL, NULL};
    int line = cur(P)->line;
    if (!tok_is_op(cur(P), ':')) {
        if ((rc = parse_expr(P, 1, &parts[0])))
            return rc;
        if (!tok_is_op(cur(P), ':')) {
            *out = parts[0];
            return 0;
        }
    }
    adv(P); /* : */
    if (!tok_is_op(cur(P), ']') && !tok_is_op(cur(P), ',') && !tok_is_op(cur(P), ':') &&
        (rc = parse_expr(P, 1, &parts[1])))
        return rc;
    if (tok_is_op(cur(P), ':')) {
        adv(P);
        if (!tok_is_op(cur(P), ']') && !tok_is_op(cur(P), ',') &&
            (rc = parse_expr(P, 1, &parts[2])))
            return rc;
    }
    struct jn *s = node(P, JN_SLICE, line);
    if (!s || !(s->items = jj_alloc(P->a, 3 * sizeof(struct jn *))))
        return poom(P);
    memcpy(s->items, parts, sizeof(parts));
    s->n = 3;
    *out = s;
    return 0;
}

static int parse_subscript(struct parser *P, struct jn **x)
{
    int rc;
    int line = cur(P)->line;
    if (tok_is_op(cur(P), '.')) {
        adv(P);
        const struct jt *t = cur(P);
        if (t->kind == JT_NAME) {
            struct jn *g = node(P, JN_ATTR, line);
            if (!g)
                return poom(P);
            g->name.p = t->p;
            g->name.len = t->len;
            g->a = *x;
            adv(P);
            *x = g;
            return 0;
        }
        if (t->kind == JT_INT) {
            struct jn *g = node(P, JN_ITEM, line), *k = node(P, JN_LIT, line);
            if (!g || !k)
                return poom(P);
            k->lit = jv_int(t->i);
            g->a = *x;
            g->b = k;
            adv(P);
            *x = g;
            return 0;
        }
        return pfail(P, "expected name or number after '.'");
    }
    adv(P); /* [ */
    struct pvec args = {0};
    while (!tok_is_op(cur(P), ']')) {
        if (args.n && (rc = expect_op(P, ',', "expected ',' or ']'")))
            return rc;
        struct jn *s;
        if ((rc = parse_subscribed(P, &s)))
            return rc;
        if (pvec_push(P, &args, s))
            return poom(P);
    }
    adv(P);
    if (args.n == 0)
        return pfail(P, "expected a subscript");
    struct jn *arg = args.p[0];
    if (args.n > 1) {
        arg = node(P, JN_TUPLE, line);
        if (!arg)
            return poom(P);
        arg->items = (struct jn **)args.p;
        arg->n = args.n;
    }
    if (arg->kind == JN_SLICE && arg->a == NULL) {
        arg->a = *x;
        *x = arg;
        return 0;
    }
    struct jn *g = node(P, JN_ITEM, line);
    if (!g)
        return poom(P);
    g->a = *x;
    g->b = arg;
    *x = g;
    return 0;
}

static int parse_postfix(struct parser *P, struct jn **x)
{
    int rc;
    for (;;) {
        const struct jt *t = cur(P);
        if (tok_is_op(t, '.') || tok_is_op(t, '[')) {
            if ((rc = parse_subscript(P, x)))
                return rc;
        } else if (tok_is_op(t, '(')) {
            struct jn *c = node(P, JN_CALL, t->line);
            if (!c)
                return poom(P);
            if ((rc = parse_call_args(P, &c->args)))
                return rc;
            c->a = *x;
            *x = c;
        } else {
            return 0;
        }
    }
}

static int parse_filter_expr(struct parser *P, struct jn **x)
{
    int rc;
    for (;;) {
        const struct jt *t = cur(P);
        if (tok_is_op(t, '|')) {
            if ((rc = parse_filter(P, x, 0)))
                return rc;
        } else if (tok_is_name(t, "is")) {
            if ((rc = parse_test(P, x)))
                return rc;
        } else if (tok_is_op(t, '(')) {
            struct jn *c = node(P, JN_CALL, t->line);
            if (!c)
                return poom(P);
            if ((rc = parse_call_args(P, &c->args)))
                return rc;
            c->a = *x;
            *x = c;
        } else {
            return 0;
        }
    }
}

static int parse_primary(struct parser *P, struct jn **out)
{
    int rc;
    const struct jt *t = cur(P);
    struct jn *x = NULL;
    if (++P->depth > JJ_MAX_PARSE_DEPTH)
        return pfail(P, "expression nested too deeply");
    switch (t->kind) {
    case JT_NAME:
        if (!(x = node(P, JN_LIT, t->line)))
            return poom(P);
        if (tok_is_name(t, "true") || tok_is_name(t, "True")) {
            x->lit = jv_bool(1);
        } else if (tok_is_name(t, "false") || tok_is_name(t, "False")) {
            x->lit = jv_bool(0);
        } else if (tok_is_name(t, "none") || tok_is_name(t, "None")) {
            x->lit = jv_none();
        } else {
            x->kind = JN_NAME;
            x->name.p = t->p;
            x->name.len = t->len;
        }
        adv(P);
        break;
    case JT_STRING: {
        size_t total = 0, k = 0;
        size_t j;
        for (j = P->i; j < P->n && P->t[j].kind == JT_STRING; j++)
            total += P->t[j].len;
        if (!(x = node(P, JN_LIT, t->line)))
            return poom(P);
        if (j == P->i + 1) {
            x->lit = jv_str(t->p, t->len);
        } else {
            char *s = jj_alloc(P->a, total + 1);
            if (!s)
                return poom(P);
            for (size_t m = P->i; m < j; m++) {
                memcpy(s + k, P->t[m].p, P->t[m].len);
                k += P->t[m].len;
            }
            x->lit = jv_str(s, total);
        }
        P->i = j;
        break;
    }
    case JT_INT:
    case JT_FLOAT:
        if (!(x = node(P, JN_LIT, t->line)))
            return poom(P);
        x->lit = t->kind == JT_INT ? jv_int(t->i) : jv_float(t->f);
        adv(P);
        break;
    case JT_OP:
        if (t->op == '(') {
            adv(P);
            if ((rc = parse_tuple(P, 0, 1, NULL, 1, &x)))
                return rc;
            if ((rc = expect_op(P, ')', "expected ')'")))
                return rc;
            break;
        }
        if (t->op == '[' || t->op == '{') {
            int dict = t->op == '{';
            int close = dict ? '}' : ']';
            struct pvec items = {0};
            if (!(x = node(P, dict ? JN_DICT : JN_LIST, t->line)))
                return poom(P);
            adv(P);
            while (!tok_is_op(cur(P), close)) {
                struct jn *e;
                if (items.n &&
                    (rc = expect_op(P, ',', dict ? "expected ',' or '}'" : "expected ',' or ']'")))
                    return rc;
                if (tok_is_op(cur(P), close))
                    break;
                if ((rc = parse_expr(P, 1, &e)) || pvec_push(P, &items, e))
                    return rc ? rc : poom(P);
                if (dict) {
                    if ((rc = expect_op(P, ':', "expected ':' in dict literal")))
                        return rc;
                    if ((rc = parse_expr(P, 1, &e)) || pvec_push(P, &items, e))
                        return rc ? rc : poom(P);
                }
            }
            adv(P);
            x->items = (struct jn **)items.p;
            x->n = items.n;
            break;
        }
        return pfail(P, "unexpected operator");
    default:
        return pfail(P, "expected an expression");
    }
    P->depth--;
    *out = x;
    return 0;
}

static int parse_unary(struct parser *P, int with_filter, struct jn **out)
{
    int rc;
    const struct jt *t = cur(P);
    struct jn *x;
    if (++P->depth > JJ_MAX_PARSE_DEPTH)
        return pfail(P, "expression nested too deeply");
    if (tok_is_op(t, '-') || tok_is_op(t, '+')) {
        if (!(x = node(P, t->op == '-' ? JN_NEG : JN_POS, t->line)))
            return poom(P);
        adv(P);
        if ((rc = parse_unary(P, 0, &x->a)))
            return rc;
    } else if ((rc = parse_primary(P, &x))) {
        return rc;
    }
    if ((rc = parse_postfix(P, &x)))
        return rc;
    if (with_filter && (rc = parse_filter_expr(P, &x)))
        return rc;
    P->depth--;
    *out = x;
    return 0;
}

static int bin_node(struct parser *P, int kind, int op, struct jn *l, struct jn *r, int line,
                    struct jn **out)
{
    struct jn *x = node(P, kind, line);
    if (!x)
        return poom(P);
    x->op = (uint8_t)op;
    x->a = l;
    x->b = r;
    *out = x;
    return 0;
}

static int parse_pow(struct parser *P, struct jn **out)
{
    int rc;
    struct jn *l, *r;
    if ((rc = parse_unary(P, 1, &l)))
        return rc;
    while (tok_is_op(cur(P), JOP_POW)) {
        int line = cur(P)->line;
        adv(P);
        if ((rc = parse_unary(P, 1, &r)) || (rc = bin_node(P, JN_BIN, JOP_POW, l, r, line, &l)))
            return rc;
    }
    *out = l;
    return 0;
}

static int parse_math2(struct parser *P, struct jn **out)
{
    int rc;
    struct jn *l, *r;
    if ((rc = parse_pow(P, &l)))
        return rc;
    for (;;) {
        const struct jt *t = cur(P);
        if (!(tok_is_op(t, '*') || tok_is_op(t, '/') || tok_is_op(t, JOP_FLOORDIV) ||
              tok_is_op(t, '%')))
            break;
        int op = t->op, line = t->line;
        adv(P);
        if ((rc = parse_pow(P, &r)) || (rc = bin_node(P, JN_BIN, op, l, r, line, &l)))
            return rc;
    }
    *out = l;
    return 0;
}

static int parse_concat(struct parser *P, struct jn **out)
{
    int rc;
    struct jn *l;
    struct pvec items = {0};
    int line = cur(P)->line;
    if ((rc = parse_math2(P, &l)))
        return rc;
    if (!tok_is_op(cur(P), '~')) {
        *out = l;
        return 0;
    }
    if (pvec_push(P, &items, l))
        return poom(P);
    while (tok_is_op(cur(P), '~')) {
        adv(P);
        if ((rc = parse_math2(P, &l)))
            return rc;
        if (pvec_push(P, &items, l))
            return poom(P);
    }
    struct jn *x = node(P, JN_CONCAT, line);
    if (!x)
        return poom(P);
    x->items = (struct jn **)items.p;
    x->n = items.n;
    *out = x;
    return 0;
}

static int parse_math1(struct parser *P, struct jn **out)
{
    int rc;
    struct jn *l, *r;
    if ((rc = parse_concat(P, &l)))
        return rc;
    while (tok_is_op(cur(P), '+') || tok_is_op(cur(P), '-')) {
        int op = cur(P)->op, line = cur(P)->line;
        adv(P);
        if ((rc = parse_concat(P, &r)) || (rc = bin_node(P, JN_BIN, op, l, r, line, &l)))
            return rc;
    }
    *out = l;
    return 0;
}

static int parse_compare(struct parser *P, struct jn **out)
{
    int rc;
    struct jn *l;
    struct pvec items = {0};
    uint8_t ops[64];
    size_t nops = 0;
    int line = cur(P)->line;
    if ((rc = parse_math1(P, &l)))
        return rc;
    if (pvec_push(P, &items, l))
        return poom(P);
    for (;;) {
        const struct jt *t = cur(P);
        int op;
        if (t->kind == JT_OP && (t->op == JOP_EQ || t->op == JOP_NE || t->op == JOP_LE ||
                                 t->op == JOP_GE || t->op == '<' || t->op == '>')) {
            op = t->op;
            adv(P);
        } else if (tok_is_name(t, "in")) {
            op = JCMP_IN;
            adv(P);
        } else if (tok_is_name(t, "not") && tok_is_name(peek(P, 1), "in")) {
            op = JCMP_NOTIN;
            adv(P);
            adv(P);
        } else {
            break;
        }
        if (nops == sizeof(ops))
            return pfail(P, "too many chained comparisons");
        ops[nops++] = (uint8_t)op;
        if ((rc = parse_math1(P, &l)))
            return rc;
        if (pvec_push(P, &items, l))
            return poom(P);
    }
    if (nops == 0) {
        *out = items.p[0];
        return 0;
    }
    struct jn *x = node(P, JN_CMP, line);
    if (!x || !(x->ops = jj_alloc(P->a, nops)))
        return poom(P);
    memcpy(x->ops, ops, nops);
    x->items = (struct jn **)items.p;
    x->n = items.n;
    *out = x;
    return 0;
}

static int parse_not(struct parser *P, struct jn **out)
{
    if (tok_is_name(cur(P), "not")) {
        struct jn *x = node(P, JN_NOT, cur(P)->line);
        if (!x)
            return poom(P);
        adv(P);
        if (++P->depth > JJ_MAX_PARSE_DEPTH)
            return pfail(P, "expression nested too deeply");
        int rc = parse_not(P, &x->a);
        if (rc)
            return rc;
        P->depth--;
        *out = x;
        return 0;
    }
    return parse_compare(P, out);
}

static int parse_and(struct parser *P, struct jn **out)
{
    int rc;
    struct jn *l, *r;
    if ((rc = parse_not(P, &l)))
        return rc;
    while (tok_is_name(cur(P), "and")) {
        int line = cur(P)->line;
        adv(P);
        if ((rc = parse_not(P, &r)) || (rc = bin_node(P, JN_AND, 0, l, r, line, &l)))
            return rc;
    }
    *out = l;
    return 0;
}

static int parse_or(struct parser *P, struct jn **out)
{
    int rc;
    struct jn *l, *r;
    if ((rc = parse_and(P, &l)))
        return rc;
    while (tok_is_name(cur(P), "or")) {
        int line = cur(P)->line;
        adv(P);
        if ((rc = parse_and(P, &r)) || (rc = bin_node(P, JN_OR, 0, l, r, line, &l)))
            return rc;
    }
    *out = l;
    return 0;
}

static int parse_expr(struct parser *P, int with_condexpr, struct jn **out)
{
    int rc;
    struct jn *x;
    if (++P->depth > JJ_MAX_PARSE_DEPTH)
        return pfail(P, "expression nested too deeply");
    if ((rc = parse_or(P, &x)))
        return rc;
    while (with_condexpr && tok_is_name(cur(P), "if")) {
        struct jn *c = node(P, JN_COND, cur(P)->line);
        if (!c)
            return poom(P);
        adv(P);
        c->a = x;
        if ((rc = parse_or(P, &c->b)))
            return rc;
        if (tok_is_name(cur(P), "else")) {
            adv(P);
            if ((rc = parse_expr(P, 1, &c->c)))
                return rc;
        }
        x = c;
    }
    P->depth--;
    *out = x;
    return 0;
}

static int is_tuple_end(struct parser *P, const char *extra_end)
{
    const struct jt *t = cur(P);
    return t->kind == JT_VAR_END || t->kind == JT_BLOCK_END || tok_is_op(t, ')') ||
           (extra_end && tok_is_name(t, extra_end));
}

static int parse_tuple(struct parser *P, int simplified, int with_condexpr, const char *extra_end,
                       int explicit_parens, struct jn **out)
{
    int rc;
    struct pvec items = {0};
    int is_tuple = 0, line = cur(P)->line;
    for (;;) {
        if (items.n && (rc = expect_op(P, ',', "expected ','")))
            return rc;
        if (is_tuple_end(P, extra_end))
            break;
        struct jn *x;
        if (simplified)
            rc = parse_primary(P, &x);
        else
            rc = parse_expr(P, with_condexpr, &x);
        if (rc)
            return rc;
        if (pvec_push(P, &items, x))
            return poom(P);
        if (tok_is_op(cur(P), ','))
            is_tuple = 1;
        else
            break;
    }
    if (!is_tuple) {
        if (items.n) {
            *out = items.p[0];
            return 0;
        }
        if (!explicit_parens)
            return pfail(P, "expected an expression");
    }
    struct jn *x = node(P, JN_TUPLE, line);
    if (!x)
        return poom(P);
    x->items = (struct jn **)items.p;
    x->n = items.n;
    *out = x;
    return 0;
}

static int check_target(struct parser *P, const struct jn *x)
{
    if (x->kind == JN_NAME)
        return 0;
    if (x->kind == JN_TUPLE) {
        for (size_t i = 0; i < x->n; i++)
            if (check_target(P, x->items[i]))
                return AS_EINVAL;
        return 0;
    }
    return pfail(P, "cannot assign to this expression");
}

static int parse_assign_target(struct parser *P, const char *extra_end, int with_namespace,
                               struct jn **out)
{
    int rc;
    if (with_namespace && cur(P)->kind == JT_NAME && tok_is_op(peek(P, 1), '.') &&
        peek(P, 2)->kind == JT_NAME) {
        struct jn *ns = node(P, JN_NAME, cur(P)->line), *g = node(P, JN_ATTR, cur(P)->line);
        if (!ns || !g)
            return poom(P);
        ns->name.p = cur(P)->p;
        ns->name.len = cur(P)->len;
        g->a = ns;
        g->name.p = peek(P, 2)->p;
        g->name.len = peek(P, 2)->len;
        P->i += 3;
        *out = g;
        return 0;
    }
    if ((rc = parse_tuple(P, 1, 0, extra_end, 0, out)))
        return rc;
    return check_target(P, *out);
}

static int parse_body(struct parser *P, const char *const *ends, struct jbody *body, int *which);

/* Reads the name of an end tag found by parse_body and the block end after it. */
static int finish_tag(struct parser *P)
{
    adv(P); /* the end name */
    return expect_kind(P, JT_BLOCK_END, "expected end of statement block");
}

static int parse_signature(struct parser *P, struct js *s)
{
    int rc;
    struct pvec names = {0}, defs = {0};
    if ((rc = expect_op(P, '(', "expected '('")))
        return rc;
    while (!tok_is_op(cur(P), ')')) {
        if (names.n && (rc = expect_op(P, ',', "expected ',' or ')'")))
            return rc;
        if (cur(P)->kind != JT_NAME)
            return pfail(P, "expected a parameter name");
        struct str *nm = jj_alloc(P->a, sizeof(*nm));
        struct jn *d = NULL;
        if (!nm)
            return poom(P);
        nm->p = cur(P)->p;
        nm->len = cur(P)->len;
        adv(P);
        if (tok_is_op(cur(P), '=')) {
            adv(P);
            if ((rc = parse_expr(P, 1, &d)))
                return rc;
        } else if (defs.n && defs.p[defs.n - 1]) {
            return pfail(P, "non-default argument follows default argument");
        }
        if (pvec_push(P, &names, nm) || pvec_push(P, &defs, d))
            return poom(P);
    }
    adv(P);
    s->nparams = names.n;
    s->defaults = (struct jn **)defs.p;
    if (names.n && !(s->params = jj_alloc(P->a, names.n * sizeof(struct str))))
        return poom(P);
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
        return poom(P);
    s->line = t->line;
    *out = s;
    if (t->kind != JT_NAME)
        return pfail(P, "expected a statement name");
    if (tok_is_name(t, "for")) {
        static const char *const e1[] = {"endfor", "else", NULL}, *const e2[] = {"endfor", NULL};
        s->kind = JS_FOR;
        adv(P);
        if ((rc = parse_assign_target(P, "in", 0, &s->target)))
            return rc;
        if (!tok_is_name(cur(P), "in"))
            return pfail(P, "expected 'in'");
        adv(P);
        if ((rc = parse_tuple(P, 0, 0, "recursive", 0, &s->expr)))
            return rc;
        if (tok_is_name(cur(P), "if")) {
            adv(P);
            if ((rc = parse_expr(P, 1, &s->cond)))
                return rc;
        }
        if (tok_is_name(cur(P), "recursive"))
            return pfail(P, "recursive for loops are not supported");
        if ((rc = expect_kind(P, JT_BLOCK_END, "expected end of statement block")))
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
            if ((rc = parse_tuple(P, 0, 0, NULL, 0, &node_if->expr)) ||
                (rc = expect_kind(P, JT_BLOCK_END, "expected end of statement block")) ||
                (rc = parse_body(P, e, &node_if->body, &which)))
                return rc;
            if (which == 0) { /* elif */
                struct js *n2 = jj_alloc(P->a, sizeof(*n2));
                if (!n2 || !(node_if->other.s = jj_alloc(P->a, sizeof(struct js *))))
                    return poom(P);
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
        if ((rc = parse_assign_target(P, NULL, 1, &s->target)))
            return rc;
        if (tok_is_op(cur(P), '=')) {
            s->kind = JS_SET;
            adv(P);
            if ((rc = parse_tuple(P, 0, 1, NULL, 0, &s->expr)))
                return rc;
            return expect_kind(P, JT_BLOCK_END, "expected end of statement block");
        }
        s->kind = JS_SETBLOCK;
        if (s->target->kind == JN_TUPLE)
            return pfail(P, "block set needs a single name");
        if (tok_is_op(cur(P), '|')) {
            if ((rc = parse_filter(P, &s->filter, 0)))
                return rc;
        }
        if ((rc = expect_kind(P, JT_BLOCK_END, "expected '=' or end of statement block")) ||
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
                return pfail(P, "expected macro name");
            s->name.p = cur(P)->p;
            s->name.len = cur(P)->len;
            adv(P);
            if ((rc = parse_signature(P, s)))
                return rc;
        } else {
            s->kind = JS_CALLBLOCK;
            if (tok_is_op(cur(P), '(') && (rc = parse_signature(P, s)))
                return rc;
            if ((rc = parse_expr(P, 1, &s->expr)))
                return rc;
            if (s->expr->kind != JN_CALL)
                return pfail(P, "expected a call expression");
        }
        if ((rc = expect_kind(P, JT_BLOCK_END, "expected end of statement block")))
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
        if ((rc = parse_filter(P, &s->filter, 1)) ||
            (rc = expect_kind(P, JT_BLOCK_END, "expected end of statement block")) ||
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
            if (tg.n && (rc = expect_op(P, ',', "expected ','")))
                return rc;
            if ((rc = parse_assign_target(P, NULL, 0, &x)) || pvec_push(P, &tg, x))
                return rc ? rc : poom(P);
            if ((rc = expect_op(P, '=', "expected '='")) || (rc = parse_expr(P, 1, &x)) ||
                pvec_push(P, &vals, x))
                return rc ? rc : poom(P);
        }
        if (!(s->target = node(P, JN_TUPLE, s->line)) || !(s->expr = node(P, JN_TUPLE, s->line)))
            return poom(P);
        s->target->items = (struct jn **)tg.p;
        s->target->n = tg.n;
        s->expr->items = (struct jn **)vals.p;
        s->expr->n = vals.n;
        if ((rc = expect_kind(P, JT_BLOCK_END, "expected end of statement block")) ||
            (rc = parse_body(P, e, &s->body, &which)))
            return rc;
        return finish_tag(P);
    }
    if (tok_is_name(t, "generation")) {
        static const char *const e[] = {"endgeneration", NULL};
        s->kind = JS_BLOCK;
        adv(P);
        if ((rc = expect_kind(P, JT_BLOCK_END, "expected end of statement block")) ||
            (rc = parse_body(P, e, &s->body, &which)))
            return rc;
        return finish_tag(P);
    }
    if (tok_is_name(t, "break") || tok_is_name(t, "continue")) {
        if (!P->loops)
            return pfail(P, "'break' / 'continue' outside of a loop");
        s->kind = tok_is_name(t, "break") ? JS_BREAK : JS_CONTINUE;
        adv(P);
        return expect_kind(P, JT_BLOCK_END, "expected end of statement block");
    }
    return pfail(P, "unknown or unsupported tag");
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
        return pfail(P, "statements nested too deeply");
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
                return pfail(P, msg);
            }
            break;
        }
        if (t->kind == JT_DATA) {
            if (!(s = jj_alloc(P->a, sizeof(*s))))
                return poom(P);
            s->kind = JS_TEXT;
            s->line = t->line;
            s->text.p = t->p;
            s->text.len = t->len;
            adv(P);
        } else if (t->kind == JT_VAR_BEGIN) {
            adv(P);
            if (!(s = jj_alloc(P->a, sizeof(*s))))
                return poom(P);
            s->kind = JS_OUT;
            s->line = t->line;
            if ((rc = parse_tuple(P, 0, 1, NULL, 0, &s->expr)) ||
                (rc = expect_kind(P, JT_VAR_END, "expected end of print statement")))
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
            return pfail(P, "unexpected token");
        }
        if (pvec_push(P, &v, s))
            return poom(P);
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
