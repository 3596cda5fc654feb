/*
 * jinja_parse_expr.c - expression parser of the Jinja interpreter.
 *
 * The grammar and operator precedence follow jinja2's parser.py so that
 * expressions group exactly as they do in Python (e.g. `-x|abs` is
 * `(-x)|abs`, `a + b|trim` is `a + (b|trim)`, `not x is y` is `not (x is y)`).
 * Not for: statements (jinja_parse.c).
 */
#include "engine/jinja_parse_internal.h"

#include "core/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int parse_unary(struct parser *P, int with_filter, struct jn **out);
static int parse_primary(struct parser *P, struct jn **out);
static int parse_postfix(struct parser *P, struct jn **x);

static int parse_call_args(struct parser *P, struct jn_args **out)
{
    struct pvec pos = {0}, kw = {0}, names = {0};
    int rc;
    if ((rc = jj__expect_op(P, '(', "expected '('")))
        return rc;
    while (!tok_is_op(cur(P), ')')) {
        if (pos.n + kw.n > 0 && (rc = jj__expect_op(P, ',', "expected ',' or ')'")))
            return rc;
        if (tok_is_op(cur(P), ')'))
            break;
        if (tok_is_op(cur(P), '*') || tok_is_op(cur(P), JOP_POW))
            return jj__pfail(P, "*args / **kwargs in calls are not supported");
        struct jn *x;
        if (cur(P)->kind == JT_NAME && tok_is_op(peek(P, 1), '=')) {
            struct str *nm = jj_alloc(P->a, sizeof(*nm));
            if (!nm)
                return jj__poom(P);
            nm->p = cur(P)->p;
            nm->len = cur(P)->len;
            adv(P);
            adv(P);
            if ((rc = jj__parse_expr(P, 1, &x)))
                return rc;
            if (jj__pvec_push(P, &names, nm) || jj__pvec_push(P, &kw, x))
                return jj__poom(P);
        } else {
            if (kw.n)
                return jj__pfail(P, "positional argument after keyword argument");
            if ((rc = jj__parse_expr(P, 1, &x)))
                return rc;
            if (jj__pvec_push(P, &pos, x))
                return jj__poom(P);
        }
    }
    adv(P);
    struct jn_args *a = jj_alloc(P->a, sizeof(*a));
    if (!a)
        return jj__poom(P);
    a->npos = pos.n;
    a->pos = (struct jn **)pos.p;
    a->nkw = kw.n;
    a->kw = (struct jn **)kw.p;
    if (kw.n) {
        a->kwnames = jj_alloc(P->a, kw.n * sizeof(struct str));
        if (!a->kwnames)
            return jj__poom(P);
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
        return jj__pfail(P, "expected a filter or test name");
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

int jj__parse_filter(struct parser *P, struct jn **x, int start_inline)
{
    int rc;
    while (tok_is_op(cur(P), '|') || start_inline) {
        if (!start_inline)
            adv(P);
        start_inline = 0;
        struct jn *f = jj__node(P, JN_FILTER, cur(P)->line);
        if (!f)
            return jj__poom(P);
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
    struct jn *t = jj__node(P, JN_TEST, cur(P)->line);
    if (!t)
        return jj__poom(P);
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
            return jj__pfail(P, "you cannot chain multiple tests with is");
        struct jn *arg;
        if ((rc = parse_primary(P, &arg)) || (rc = parse_postfix(P, &arg)))
            return rc;
        t->args = jj_alloc(P->a, sizeof(*t->args));
        if (!t->args || !(t->args->pos = jj_alloc(P->a, sizeof(struct jn *))))
            return jj__poom(P);
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
        if ((rc = jj__parse_expr(P, 1, &parts[0])))
            return rc;
        if (!tok_is_op(cur(P), ':')) {
            *out = parts[0];
            return 0;
        }
    }
    adv(P); /* : */
    if (!tok_is_op(cur(P), ']') && !tok_is_op(cur(P), ',') && !tok_is_op(cur(P), ':') &&
        (rc = jj__parse_expr(P, 1, &parts[1])))
        return rc;
    if (tok_is_op(cur(P), ':')) {
        adv(P);
        if (!tok_is_op(cur(P), ']') && !tok_is_op(cur(P), ',') &&
            (rc = jj__parse_expr(P, 1, &parts[2])))
            return rc;
    }
    struct jn *s = jj__node(P, JN_SLICE, line);
    if (!s || !(s->items = jj_alloc(P->a, 3 * sizeof(struct jn *))))
        return jj__poom(P);
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
            struct jn *g = jj__node(P, JN_ATTR, line);
            if (!g)
                return jj__poom(P);
            g->name.p = t->p;
            g->name.len = t->len;
            g->a = *x;
            adv(P);
            *x = g;
            return 0;
        }
        if (t->kind == JT_INT) {
            struct jn *g = jj__node(P, JN_ITEM, line), *k = jj__node(P, JN_LIT, line);
            if (!g || !k)
                return jj__poom(P);
            k->lit = jv_int(t->i);
            g->a = *x;
            g->b = k;
            adv(P);
            *x = g;
            return 0;
        }
        return jj__pfail(P, "expected name or number after '.'");
    }
    adv(P); /* [ */
    struct pvec args = {0};
    while (!tok_is_op(cur(P), ']')) {
        if (args.n && (rc = jj__expect_op(P, ',', "expected ',' or ']'")))
            return rc;
        struct jn *s = NULL;
        if ((rc = parse_subscribed(P, &s)))
            return rc;
        if (jj__pvec_push(P, &args, s))
            return jj__poom(P);
    }
    adv(P);
    if (args.n == 0)
        return jj__pfail(P, "expected a subscript");
    struct jn *arg = args.p[0];
    if (args.n > 1) {
        arg = jj__node(P, JN_TUPLE, line);
        if (!arg)
            return jj__poom(P);
        arg->items = (struct jn **)args.p;
        arg->n = args.n;
    }
    if (arg->kind == JN_SLICE && arg->a == NULL) {
        arg->a = *x;
        *x = arg;
        return 0;
    }
    struct jn *g = jj__node(P, JN_ITEM, line);
    if (!g)
        return jj__poom(P);
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
            struct jn *c = jj__node(P, JN_CALL, t->line);
            if (!c)
                return jj__poom(P);
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
            if ((rc = jj__parse_filter(P, x, 0)))
                return rc;
        } else if (tok_is_name(t, "is")) {
            if ((rc = parse_test(P, x)))
                return rc;
        } else if (tok_is_op(t, '(')) {
            struct jn *c = jj__node(P, JN_CALL, t->line);
            if (!c)
                return jj__poom(P);
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
        return jj__pfail(P, "expression nested too deeply");
    switch (t->kind) {
    case JT_NAME:
        if (!(x = jj__node(P, JN_LIT, t->line)))
            return jj__poom(P);
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
        if (!(x = jj__node(P, JN_LIT, t->line)))
            return jj__poom(P);
        if (j == P->i + 1) {
            x->lit = jv_str(t->p, t->len);
        } else {
            char *s = jj_alloc(P->a, total + 1);
            if (!s)
                return jj__poom(P);
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
        if (!(x = jj__node(P, JN_LIT, t->line)))
            return jj__poom(P);
        x->lit = t->kind == JT_INT ? jv_int(t->i) : jv_float(t->f);
        adv(P);
        break;
    case JT_OP:
        if (t->op == '(') {
            adv(P);
            if ((rc = jj__parse_tuple(P, 0, 1, NULL, 1, &x)))
                return rc;
            if ((rc = jj__expect_op(P, ')', "expected ')'")))
                return rc;
            break;
        }
        if (t->op == '[' || t->op == '{') {
            int dict = t->op == '{';
            int close = dict ? '}' : ']';
            struct pvec items = {0};
            if (!(x = jj__node(P, dict ? JN_DICT : JN_LIST, t->line)))
                return jj__poom(P);
            adv(P);
            while (!tok_is_op(cur(P), close)) {
                struct jn *e;
                if (items.n && (rc = jj__expect_op(
                                    P, ',', dict ? "expected ',' or '}'" : "expected ',' or ']'")))
                    return rc;
                if (tok_is_op(cur(P), close))
                    break;
                if ((rc = jj__parse_expr(P, 1, &e)) || jj__pvec_push(P, &items, e))
                    return rc ? rc : jj__poom(P);
                if (dict) {
                    if ((rc = jj__expect_op(P, ':', "expected ':' in dict literal")))
                        return rc;
                    if ((rc = jj__parse_expr(P, 1, &e)) || jj__pvec_push(P, &items, e))
                        return rc ? rc : jj__poom(P);
                }
            }
            adv(P);
            x->items = (struct jn **)items.p;
            x->n = items.n;
            break;
        }
        return jj__pfail(P, "unexpected operator");
    default:
        return jj__pfail(P, "expected an expression");
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
        return jj__pfail(P, "expression nested too deeply");
    if (tok_is_op(t, '-') || tok_is_op(t, '+')) {
        if (!(x = jj__node(P, t->op == '-' ? JN_NEG : JN_POS, t->line)))
            return jj__poom(P);
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
    struct jn *x = jj__node(P, kind, line);
    if (!x)
        return jj__poom(P);
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
    if (jj__pvec_push(P, &items, l))
        return jj__poom(P);
    while (tok_is_op(cur(P), '~')) {
        adv(P);
        if ((rc = parse_math2(P, &l)))
            return rc;
        if (jj__pvec_push(P, &items, l))
            return jj__poom(P);
    }
    struct jn *x = jj__node(P, JN_CONCAT, line);
    if (!x)
        return jj__poom(P);
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
    if (jj__pvec_push(P, &items, l))
        return jj__poom(P);
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
            return jj__pfail(P, "too many chained comparisons");
        ops[nops++] = (uint8_t)op;
        if ((rc = parse_math1(P, &l)))
            return rc;
        if (jj__pvec_push(P, &items, l))
            return jj__poom(P);
    }
    if (nops == 0) {
        *out = items.p[0];
        return 0;
    }
    struct jn *x = jj__node(P, JN_CMP, line);
    if (!x || !(x->ops = jj_alloc(P->a, nops)))
        return jj__poom(P);
    memcpy(x->ops, ops, nops);
    x->items = (struct jn **)items.p;
    x->n = items.n;
    *out = x;
    return 0;
}

static int parse_not(struct parser *P, struct jn **out)
{
    if (tok_is_name(cur(P), "not")) {
        struct jn *x = jj__node(P, JN_NOT, cur(P)->line);
        if (!x)
            return jj__poom(P);
        adv(P);
        if (++P->depth > JJ_MAX_PARSE_DEPTH)
            return jj__pfail(P, "expression nested too deeply");
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

int jj__parse_expr(struct parser *P, int with_condexpr, struct jn **out)
{
    int rc;
    struct jn *x;
    if (++P->depth > JJ_MAX_PARSE_DEPTH)
        return jj__pfail(P, "expression nested too deeply");
    if ((rc = parse_or(P, &x)))
        return rc;
    while (with_condexpr && tok_is_name(cur(P), "if")) {
        struct jn *c = jj__node(P, JN_COND, cur(P)->line);
        if (!c)
            return jj__poom(P);
        adv(P);
        c->a = x;
        if ((rc = parse_or(P, &c->b)))
            return rc;
        if (tok_is_name(cur(P), "else")) {
            adv(P);
            if ((rc = jj__parse_expr(P, 1, &c->c)))
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

int jj__parse_tuple(struct parser *P, int simplified, int with_condexpr, const char *extra_end,
                    int explicit_parens, struct jn **out)
{
    int rc;
    struct pvec items = {0};
    int is_tuple = 0, line = cur(P)->line;
    for (;;) {
        if (items.n && (rc = jj__expect_op(P, ',', "expected ','")))
            return rc;
        if (is_tuple_end(P, extra_end))
            break;
        struct jn *x;
        if (simplified)
            rc = parse_primary(P, &x);
        else
            rc = jj__parse_expr(P, with_condexpr, &x);
        if (rc)
            return rc;
        if (jj__pvec_push(P, &items, x))
            return jj__poom(P);
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
            return jj__pfail(P, "expected an expression");
    }
    struct jn *x = jj__node(P, JN_TUPLE, line);
    if (!x)
        return jj__poom(P);
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
    return jj__pfail(P, "cannot assign to this expression");
}

int jj__parse_assign_target(struct parser *P, const char *extra_end, int with_namespace,
                            struct jn **out)
{
    int rc;
    if (with_namespace && cur(P)->kind == JT_NAME && tok_is_op(peek(P, 1), '.') &&
        peek(P, 2)->kind == JT_NAME) {
        struct jn *ns = jj__node(P, JN_NAME, cur(P)->line), *g = jj__node(P, JN_ATTR, cur(P)->line);
        if (!ns || !g)
            return jj__poom(P);
        ns->name.p = cur(P)->p;
        ns->name.len = cur(P)->len;
        g->a = ns;
        g->name.p = peek(P, 2)->p;
        g->name.len = peek(P, 2)->len;
        P->i += 3;
        *out = g;
        return 0;
    }
    if ((rc = jj__parse_tuple(P, 1, 0, extra_end, 0, out)))
        return rc;
    return check_target(P, *out);
}
