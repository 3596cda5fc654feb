/*
 * jinja_internal.h - types shared by the files of the Jinja interpreter:
 * jinja_lex.c (tokens), jinja_parse.c / jinja_parse_expr.c (AST),
 * jinja_value.c (values, printing), jinja_eval.c / jinja_exec.c (evaluation),
 * jinja_filters.c, jinja_tests.c, jinja_str.c, jinja_globals.c (builtins).
 * Not a public contract: other modules use jinja.h.
 *
 * Memory model: the parser allocates tokens and the AST from the template's
 * arena; a render allocates every value from its own arena, freed in one go
 * when the render returns. Values are therefore plain structs that are copied
 * freely and never freed one by one; lists are immutable once built (the
 * sandbox forbids mutation) while dicts used as namespace() objects are
 * mutated in place.
 */
#ifndef AISTACK_ENGINE_JINJA_INTERNAL_H
#define AISTACK_ENGINE_JINJA_INTERNAL_H

#include <stdint.h>
#include <stddef.h>

#include "core/buf.h"
#include "engine/jinja.h"

/* ---- arena ---------------------------------------------------------------- */

struct jj_chunk;

struct jj_arena {
    struct jj_chunk *head;
    size_t total; /* bytes held in chunks */
    size_t max;   /* allocations past this fail */
};

void jj_arena_init(struct jj_arena *a, size_t max);
void jj_arena_free(struct jj_arena *a);
/* Zeroed, 16-byte aligned; NULL when the arena would pass its maximum. */
void *jj_alloc(struct jj_arena *a, size_t n);
/* Copies p[0..n) plus a NUL into the arena. */
char *jj_strndup(struct jj_arena *a, const char *p, size_t n);

/* ---- values --------------------------------------------------------------- */

enum jv_kind {
    JV_UNDEF = 0,
    JV_NONE,
    JV_BOOL,
    JV_INT,
    JV_FLOAT,
    JV_STR,
    JV_LIST, /* also tuples (jv.tuple = 1) */
    JV_DICT,
    JV_NS,   /* namespace(): a mutable dict with attribute access */
    JV_LOOP, /* the `loop` variable of a for loop */
    JV_FUNC, /* builtin, bound method, macro, caller */
};

/*
 * jinja2 filters such as select/map/unique/items return generators and dict
 * methods return views; they iterate like lists but print, test, index and
 * measure differently (a generator is always true, even when empty).
 */
enum jv_seq {
    JSEQ_LIST = 0,
    JSEQ_GEN,     /* generator: always truthy, no len(), not subscriptable */
    JSEQ_REVITER, /* reversed(list): like a generator */
    JSEQ_ITEMS,   /* dict.items() view: has len(), not subscriptable */
    JSEQ_KEYS,
    JSEQ_VALUES,
};

struct jv_list;
struct jv_dict;
struct jj_loop;
struct jv_func;

struct jv {
    uint8_t kind;
    uint8_t tuple; /* JV_LIST printed as a Python tuple */
    uint8_t seq;   /* JV_LIST: enum jv_seq, what Python object the list stands for */
    union {
        int64_t i; /* JV_BOOL (0/1), JV_INT */
        double f;
        struct {
            const char *p; /* UTF-8, not NUL-terminated; for JV_UNDEF the name (may be NULL) */
            size_t len;
        } s;
        struct jv_list *l;
        struct jv_dict *d; /* JV_DICT, JV_NS */
        struct jj_loop *loop;
        struct jv_func *fn;
    } u;
};

struct jv_list {
    size_t len;
    struct jv *items;
    const char *deferred; /* JSEQ_GEN: the error jinja2 raises once it is consumed */
};

struct jv_dict {
    size_t len, cap;
    struct jv *keys;
    struct jv *vals;
};

struct js;
struct jj_frame;

enum jf_kind { JF_BUILTIN, JF_METHOD, JF_MACRO, JF_CALLER, JF_CYCLE };

struct jv_func {
    int kind;
    int id;                 /* builtin / method id */
    struct jv self;         /* receiver of a bound method, loop of cycle() */
    const struct js *macro; /* JF_MACRO: the macro statement; JF_CALLER: the call block */
    struct jj_frame *scope; /* JF_CALLER: frame the call block body sees */
    struct jv caller;       /* JF_MACRO invoked from a call block: its caller() */
};

struct jj_loop {
    struct jv_list *items;
    size_t index0;
};

static inline struct jv jv_undef(const char *name)
{
    struct jv v = {0};
    v.kind = JV_UNDEF;
    v.u.s.p = name;
    v.u.s.len = name ? strlen(name) : 0;
    return v;
}
static inline struct jv jv_none(void)
{
    struct jv v = {0};
    v.kind = JV_NONE;
    return v;
}
static inline struct jv jv_bool(int b)
{
    struct jv v = {0};
    v.kind = JV_BOOL;
    v.u.i = b ? 1 : 0;
    return v;
}
static inline struct jv jv_int(int64_t i)
{
    struct jv v = {0};
    v.kind = JV_INT;
    v.u.i = i;
    return v;
}
static inline struct jv jv_float(double f)
{
    struct jv v = {0};
    v.kind = JV_FLOAT;
    v.u.f = f;
    return v;
}
static inline struct jv jv_str(const char *p, size_t len)
{
    struct jv v = {0};
    v.kind = JV_STR;
    v.u.s.p = p;
    v.u.s.len = len;
    return v;
}
static inline struct jv jv_list(struct jv_list *l, int tuple)
{
    struct jv v = {0};
    v.kind = JV_LIST;
    v.tuple = (uint8_t)tuple;
    v.u.l = l;
    return v;
}
static inline struct jv jv_dict(struct jv_dict *d)
{
    struct jv v = {0};
    v.kind = JV_DICT;
    v.u.d = d;
    return v;
}

/* ---- tokens ---------------------------------------------------------------- */

enum jt_kind {
    JT_EOF = 0,
    JT_DATA,
    JT_VAR_BEGIN,
    JT_VAR_END,
    JT_BLOCK_BEGIN,
    JT_BLOCK_END,
    JT_NAME,
    JT_STRING,
    JT_INT,
    JT_FLOAT,
    JT_OP,
};

/* Two-character operators; one-character operators use their own character. */
enum jt_op {
    JOP_FLOORDIV = 1, /* // */
    JOP_POW,          /* ** */
    JOP_EQ,           /* == */
    JOP_NE,           /* != */
    JOP_LE,           /* <= */
    JOP_GE,           /* >= */
};

struct jt {
    uint8_t kind;
    uint8_t op; /* JT_OP: a character or enum jt_op */
    int line;
    const char *p; /* JT_DATA/JT_NAME: source text; JT_STRING: decoded text (arena) */
    size_t len;
    int64_t i;
    double f;
};

/* Tokenises src (newlines already normalised). Tokens live in a; 0 or AS_E* with err. */
int jj_lex(struct jj_arena *a, const char *src, size_t len, struct jt **toks, size_t *ntoks,
           struct jinja_error *err);

/* ---- AST ------------------------------------------------------------------- */

enum jn_kind {
    JN_LIT,
    JN_NAME,
    JN_LIST,
    JN_TUPLE,
    JN_DICT,   /* items: key, value, key, value... */
    JN_ATTR,   /* a.name */
    JN_ITEM,   /* a[b] */
    JN_SLICE,  /* a[items[0]:items[1]:items[2]], NULL parts omitted */
    JN_CALL,   /* a(args) */
    JN_FILTER, /* a|name(args); a is NULL inside {% filter %} */
    JN_TEST,   /* a is [not] name(args) */
    JN_NEG,
    JN_POS,
    JN_NOT,
    JN_BIN, /* a op b: + - * / // % ** */
    JN_AND,
    JN_OR,
    JN_CMP,    /* items[0] ops[0] items[1] ops[1] ... */
    JN_CONCAT, /* items joined with ~ */
    JN_COND,   /* a if b else c (c may be NULL) */
};

/* Comparison operators of JN_CMP beyond those of enum jt_op. */
enum { JCMP_LT = '<', JCMP_GT = '>', JCMP_IN = 'i', JCMP_NOTIN = 'n' };

struct jn_args {
    size_t npos, nkw;
    struct jn **pos;
    struct str *kwnames;
    struct jn **kw;
};

struct jn {
    uint8_t kind;
    uint8_t op;     /* JN_BIN operator */
    uint8_t negate; /* JN_TEST: `is not` */
    int line;
    struct jn *a, *b, *c;
    struct str name;
    struct jv lit;
    struct jn **items;
    size_t n;
    uint8_t *ops;
    struct jn_args *args;
};

enum js_kind {
    JS_TEXT,
    JS_OUT,
    JS_IF,
    JS_FOR,
    JS_SET,
    JS_SETBLOCK,
    JS_MACRO,
    JS_CALLBLOCK,
    JS_FILTERBLOCK,
    JS_BLOCK, /* plain body: {% generation %} */
    JS_WITH,  /* {% with a = x, ... %}: target and expr are JN_TUPLEs of targets / values */
    JS_BREAK,
    JS_CONTINUE,
};

struct jbody {
    size_t n;
    struct js **s;
};

struct js {
    uint8_t kind;
    int line;
    struct str text;    /* JS_TEXT */
    struct jn *expr;    /* OUT, IF condition, FOR iterable, SET value, CALLBLOCK call */
    struct jn *cond;    /* FOR `if` filter */
    struct jn *target;  /* SET/SETBLOCK/FOR target: NAME, TUPLE of NAMEs, or ATTR */
    struct jn *filter;  /* SETBLOCK / FILTERBLOCK: filter chain applied to the body */
    struct jbody body;  /* IF then-branch, FOR body, ... */
    struct jbody other; /* IF else-branch (elif is a nested IF), FOR else */
    struct str name;    /* MACRO name */
    size_t nparams;     /* MACRO / CALLBLOCK parameters */
    struct str *params;
    struct jn **defaults; /* NULL entries: no default */
};

/* Parses the token stream into body. AST lives in a; 0 or AS_E* with err. */
int jj_parse(struct jj_arena *a, const struct jt *toks, size_t ntoks, struct jbody *body,
             struct jinja_error *err);

struct jinja_template {
    struct jj_arena arena;
    struct jbody body;
};

/* ---- render context -------------------------------------------------------- */

struct jj_frame {
    struct jj_frame *parent;
    size_t n, cap;
    struct str *names;
    struct jv *vals;
};

struct jj_ctx {
    struct jj_arena arena;
    struct jinja_opts opts;
    struct buf *out; /* current sink: the caller's buffer or a capture */
    struct jinja_error *err;
    uint64_t work;
    int depth;
    int line;              /* line of the construct being evaluated */
    int folding;           /* evaluating an all-constant {{ }} (see JS_OUT) */
    int in_generator;      /* inside a generator filter: its errors are deferred */
    struct jv_dict *vars;  /* context variables from the caller's JSON */
    struct jj_frame *root; /* top-level template frame */
};

/* Records an error at the current line and returns code. */
int jj_fail(struct jj_ctx *c, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Adds n work units; AS_ERANGE once past the limit. */
int jj_charge(struct jj_ctx *c, uint64_t n);
#define JJ_OOM(c) jj_fail((c), AS_ENOMEM, "out of memory (template arena limit)")

/* values (jinja_value.c) */
int jv_truthy(struct jv v);
const char *jv_type_name(struct jv v);
/* Python ==; depth-bounded, so cyclic namespaces cannot recurse forever. */
int jv_equal(struct jv a, struct jv b);
/* Python <: sets *lt; AS_EINVAL for unorderable types (with message). */
int jv_less(struct jj_ctx *c, struct jv a, struct jv b, int *lt);
/* Appends str(v) as Python prints it ({{ v }}). */
int jv_write_str(struct jj_ctx *c, struct buf *b, struct jv v);
/* Appends repr(v). */
int jv_write_repr(struct jj_ctx *c, struct buf *b, struct jv v);
/* Appends json.dumps(v, ensure_ascii=False, indent=indent (<0: None), separators, sort_keys). */
int jv_write_json(struct jj_ctx *c, struct buf *b, struct jv v, const char *indent,
                  size_t indent_len, int use_indent, struct str item_sep, struct str key_sep,
                  int sort_keys);
/* Appends Python's repr() of a float. */
int jv_write_float(struct buf *b, double f);
/* str(v) as a string value (no copy for strings). */
int jv_to_str(struct jj_ctx *c, struct jv v, struct jv *out);
/* Converts a cJSON value to an interpreter value (strings borrowed from the cJSON). */
int jv_from_json(struct jj_ctx *c, const cJSON *j, struct jv *out, int depth);

struct jv_list *jv_list_new(struct jj_ctx *c, size_t len);
struct jv_dict *jv_dict_new(struct jj_ctx *c, size_t cap);
/* Inserts or replaces key (Python dict semantics, order of first insertion kept). */
int jv_dict_set(struct jj_ctx *c, struct jv_dict *d, struct jv key, struct jv val);
/* Looks key up; NULL when missing. */
struct jv *jv_dict_get(struct jv_dict *d, struct jv key);
struct jv *jv_dict_get_str(struct jv_dict *d, const char *p, size_t len);
/* Turns a sequence (list, tuple, str, dict keys; undefined: empty) into a list. */
int jv_iterate(struct jj_ctx *c, struct jv v, struct jv_list **out);
/* Builds a string value from a buffer's contents (copied into the arena). */
int jv_from_buf(struct jj_ctx *c, const struct buf *b, struct jv *out);

/* UTF-8 helpers */
size_t jj_utf8_len(const char *p, size_t n);
/* Byte offset of code point index cp (clamped to n). */
size_t jj_utf8_offset(const char *p, size_t n, size_t cp);
/* Decodes one code point at p (n > 0); sets *adv to its byte length. */
uint32_t jj_utf8_decode(const char *p, size_t n, size_t *adv);
/* Python str.isspace() for a code point. */
int jj_is_space(uint32_t cp);

/* helpers shared by jinja_str.c and jinja_filters.c */
int jj__str_eq(struct str s, const char *lit);
struct jj_callargs;
/* Positional argument i or keyword `name` (may be NULL); 1 when given. */
int jj__arg(const struct jj_callargs *a, size_t i, const char *name, struct jv *out);
int jj__want_str(struct jj_ctx *c, struct jv v, const char *what);
int jj__want_int(struct jj_ctx *c, struct jv v, const char *what, int64_t *out);
/* Turns a finished buffer into a string value (rc: the appends' status); frees b. */
int jj__str_from_buf(struct jj_ctx *c, struct buf *b, int rc, struct jv *out);
extern const char *const jj__no_kw[1];
/* Python's TypeError for too many positional or unknown keyword arguments. */
int jj__check_args(struct jj_ctx *c, const char *kind, struct str name, const struct jj_callargs *a,
                   int max_pos, const char *const *kw, int nkw);
int jj__undef_fail(struct jj_ctx *c, struct jv u);
/* str.upper ('u'), lower ('l'), title ('t'), capitalize ('c'), jinja's title filter ('T'). */
int jj__case_map(struct jj_ctx *c, struct jv s, int mode, struct jv *out);
/* str.strip/lstrip/rstrip (which: 'b', 'l', 'r'); chars none = whitespace. */
int jj__strip(struct jj_ctx *c, struct jv s, struct jv chars, int which, struct jv *out);
/* str.replace(old, new, count); count < 0: all. */
int jj__replace(struct jj_ctx *c, struct jv s, struct jv old, struct jv nw, int64_t count,
                struct jv *out);
/* The (key, value) tuples of a dict, as a list. */
int jj__dict_pairs(struct jj_ctx *c, struct jv_dict *d, struct jv *out);
/* sep.join(str(x) for x in seq), optionally of an attribute of each item. */
int jj__join(struct jj_ctx *c, struct jv seq, struct jv sep, struct jv attr, int has_attr,
             struct jv *out);

/* Whether name is one of the n strings of list. */
int jj__name_in(struct str name, const char *const *list, size_t n);
/* Calls a bound str/dict method (jinja_str.c). */
int jj__call_method(struct jj_ctx *c, const struct jv_func *fn, struct jj_callargs *a,
                    struct jv *out);

/* builtins: jinja_globals.c (globals, calls), jinja_str.c (methods),
   jinja_filters.c (filters), jinja_tests.c (tests) */
struct jj_callargs {
    size_t npos, nkw;
    struct jv *pos;
    struct str *kwnames;
    struct jv *kw;
};
/* Whether a filter / test of that name exists (jinja2 checks at compile time). */
int jj_filter_known(struct str name);
int jj_test_known(struct str name);
/* Applies filter `name` to v. */
int jj_filter(struct jj_ctx *c, struct str name, struct jv v, struct jj_callargs *a,
              struct jv *out);
/* Evaluates test `name` on v. */
int jj_test(struct jj_ctx *c, struct str name, struct jv v, struct jj_callargs *a, int *out);
/* Looks up a builtin global (range, namespace, ...); 0 when there is none. */
int jj_global(struct str name, struct jv *out, struct jj_ctx *c);
/* Attribute of a str/dict value that is a method: a bound JV_FUNC; 0 when none. */
int jj_method(struct jj_ctx *c, struct jv self, struct str name, struct jv *out);
/* Calls a builtin or bound method. */
int jj_call_builtin(struct jj_ctx *c, const struct jv_func *fn, struct jj_callargs *a,
                    struct jv *out);

/* evaluator internals shared by jinja_eval.c and jinja_exec.c */
int jj__eval(struct jj_ctx *c, const struct jn *x, struct jj_frame *f, struct jv *out);
/* Evaluates call arguments, leaving room for extra_kw more keyword arguments. */
int jj__eval_args(struct jj_ctx *c, const struct jn_args *a, struct jj_frame *f,
                  struct jj_callargs *ca, size_t extra_kw);
/* Applies the filter chain x to subject (x's innermost `a == NULL` stands for it). */
int jj__eval_filter_chain(struct jj_ctx *c, const struct jn *x, struct jj_frame *f,
                          struct jv subject, struct jv *out);
/* A name's value: frames, then the context, then the globals; Undefined otherwise. */
int jj__lookup(struct jj_ctx *c, struct jj_frame *f, struct str name, struct jv *out);
/* jinja2's UndefinedError for using u. */
int jj__undefined_error(struct jj_ctx *c, struct jv u);

/* eval (jinja_eval.c): attribute / item access with jinja2's sandbox semantics */
int jj_getattr(struct jj_ctx *c, struct jv obj, struct str name, struct jv *out);
int jj_getitem(struct jj_ctx *c, struct jv obj, struct jv key, struct jv *out);
/* Python `fmt % args` (args a tuple or one value) for %s %r %d %i %f %%. */
int jj_py_format(struct jj_ctx *c, struct jv fmt, struct jv args, struct jv *out);
/* Calls any callable value (macro, builtin, method). */
int jj_call(struct jj_ctx *c, struct jv fn, struct jj_callargs *a, struct jv *out);

#endif
