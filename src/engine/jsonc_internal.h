/*
 * jsonc_internal.h - the compiled schema graph shared by jsonc_schema.c (the
 * compiler) and jsonc.c (the automaton and the mask). Not a public interface.
 */
#ifndef AISTACK_ENGINE_JSONC_INTERNAL_H
#define AISTACK_ENGINE_JSONC_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

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
void jsonc__schema_free(struct jschema *s);

#endif
