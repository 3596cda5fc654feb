/*
 * jinja_parse_internal.h - the parser state and helpers shared by
 * jinja_parse.c (statements, template entry points) and jinja_parse_expr.c
 * (expressions). Not a public contract.
 */
#ifndef AISTACK_ENGINE_JINJA_PARSE_INTERNAL_H
#define AISTACK_ENGINE_JINJA_PARSE_INTERNAL_H

#include "engine/jinja_internal.h"

#include <string.h>

#define JJ_MAX_PARSE_DEPTH 200

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

static inline const struct jt *cur(const struct parser *P)
{
    return &P->t[P->i < P->n ? P->i : P->n - 1];
}

static inline const struct jt *peek(const struct parser *P, size_t k)
{
    size_t j = P->i + k;
    return &P->t[j < P->n ? j : P->n - 1];
}

static inline void adv(struct parser *P)
{
    if (P->i + 1 < P->n)
        P->i++;
}

static inline int tok_is_name(const struct jt *t, const char *s)
{
    return t->kind == JT_NAME && t->len == strlen(s) && memcmp(t->p, s, t->len) == 0;
}

static inline int tok_is_op(const struct jt *t, int op)
{
    return t->kind == JT_OP && t->op == op;
}

/* Appends x to v (arena storage); 0 or AS_ENOMEM. */
int jj__pvec_push(struct parser *P, struct pvec *v, void *x);
/* How a token reads in an error message ("'for'", "end of statement block"). */
const char *jj__tok_desc(const struct jt *t, char *buf, size_t n);
/* Records a syntax error at the current token; returns AS_EINVAL. */
int jj__pfail(struct parser *P, const char *what);
int jj__poom(struct parser *P);
int jj__expect_op(struct parser *P, int op, const char *what);
int jj__expect_kind(struct parser *P, int kind, const char *what);
/* A zeroed AST node of that kind and line, or NULL. */
struct jn *jj__node(struct parser *P, int kind, int line);

/* Expressions (jinja_parse_expr.c), named after jinja2's parser methods. */
int jj__parse_expr(struct parser *P, int with_condexpr, struct jn **out);
int jj__parse_tuple(struct parser *P, int simplified, int with_condexpr, const char *extra_end,
                    int explicit_parens, struct jn **out);
/* `|name(args)...` applied to *x; start_inline: the first `|` is already consumed. */
int jj__parse_filter(struct parser *P, struct jn **x, int start_inline);
int jj__parse_assign_target(struct parser *P, const char *extra_end, int with_namespace,
                            struct jn **out);

#endif
