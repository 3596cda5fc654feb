/*
 * jsonc_internal.h - what the jsonc files share: the compiled schema graph
 * (built by jsonc_schema.c) and the automaton state (run by jsonc.c, scanned
 * by jsonc_mask.c). Not a public interface.
 */
#ifndef AISTACK_ENGINE_JSONC_INTERNAL_H
#define AISTACK_ENGINE_JSONC_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "engine/jsonc.h"

enum jn_kind {
    JN_OBJECT = 1, /* props[first..first+count); child = value node of free keys or -1 */
    JN_ARRAY,      /* child = items; min/max items */
    JN_STRING,
    JN_NUMBER,
    JN_INTEGER,
    JN_LITS,  /* lits[first..first+count), sorted by bytes, distinct */
    JN_UNION, /* alts[first..first+count), none of them a union */
};

/* Fixed nodes present in every graph. */
#define JN_ANY     0 /* union of the five below */
#define JN_ANY_OBJ 1
#define JN_ANY_ARR 2
#define JN_ANY_STR 3
#define JN_ANY_NUM 4
#define JN_ANY_LIT 5 /* false, null, true */

struct jnode {
    uint8_t kind;
    int32_t first, count;
    int32_t child;
    int32_t last_required; /* JN_OBJECT: highest required prop index, -1 if none */
    uint32_t min_items, max_items;
};

struct jprop {
    uint32_t off, len; /* JSON-escaped name (no quotes) in pool */
    int32_t node;
    uint8_t required;
};

struct jlit {
    uint32_t off, len; /* JSON text in pool */
};

struct jschema {
    struct jnode *nodes;
    size_t n_nodes, cap_nodes;
    struct jprop *props;
    size_t n_props, cap_props;
    struct jlit *lits;
    size_t n_lits, cap_lits;
    int32_t *alts;
    size_t n_alts, cap_alts;
    struct buf pool;        /* names and literals */
    struct buf unsupported; /* "kw1,kw2" */
    int32_t root;
};

/* Graph with only the fixed nodes (root = JN_ANY_OBJ). NULL on ENOMEM. */
struct jschema *jsonc__schema_any(void);
/* Compiles a schema. NULL with err. */
struct jschema *jsonc__schema_compile(const void *cjson_schema, char *err, size_t errlen);
/*
 * Compiles OpenAI tools into one call object (see jsonc_new_tools), or with
 * args_only into the arguments object of the tool named only
 * (jsonc_new_tool_args). NULL with err.
 */
struct jschema *jsonc__schema_tools(const void *tools, const char *only, const char *args_key,
                                    int as_array, int args_only, char *err, size_t errlen);
void jsonc__schema_free(struct jschema *s);

/* ---- automaton state (jsonc.c), shared with the mask (jsonc_mask.c) ---------- */

#define SCAN_DEPTH 32 /* token prefix bytes whose states are kept by the scan */

enum jf_kind { JF_VAL = 1, JF_OBJ, JF_ARR, JF_STR, JF_NUM, JF_LIT };
enum { OS_OPEN, OS_COMMA, OS_KEY, OS_KEYM, OS_COLON, OS_VAL, OS_AFTER };
enum { AS_OPEN, AS_VAL, AS_AFTER };
enum { SS_NORM, SS_ESC, SS_U1, SS_U2, SS_U3, SS_U4 };
enum { NS_START, NS_MINUS, NS_ZERO, NS_INT, NS_DOT, NS_FRAC, NS_E, NS_ESIGN, NS_EXP };

struct jframe {
    uint16_t node;
    uint8_t kind, st;
    uint16_t pos;      /* key / literal / number byte position; pending UTF-8 bytes */
    uint16_t b;        /* object: current prop; literal: hi; string: UTF-8 range / surrogate flag */
    uint32_t a;        /* object: next prop index; array: items so far; literal: lo */
    uint32_t mlo, mhi; /* object key match: candidate bit mask relative to a */
};

struct jthread {
    uint8_t depth, ws;
    struct jframe f[JSONC_MAX_DEPTH];
};

struct jstate {
    uint32_t n;
    struct jthread th[JSONC_MAX_THREADS];
};

struct jsonc {
    struct jschema *s;
    struct jstate cur;
    struct jstate *scan; /* SCAN_DEPTH + 3 states, allocated by the first mask */
    uint8_t *allowed;
    uint32_t n_allowed;
    int finished;
};

/* Copies the used part of a thread. */
void jsonc__thread_copy(struct jthread *d, const struct jthread *s);
/* Advances every thread of in by byte c into out (out->n == 0: c is refused). */
void jsonc__step(const struct jschema *s, const struct jstate *in, int c, struct jstate *out);
/* String frame f on byte c: 1 stays in the string, 2 closes it, 0 refuses. */
int jsonc__str_byte(struct jframe *f, int c);
/* Allocates c->scan once. 0 or AS_ENOMEM. */
int jsonc__ensure_scan(struct jsonc *c);

#endif
