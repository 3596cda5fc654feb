/*
 * jsonc_schema.c - compiles a JSON schema (cJSON tree) into the node graph the
 * jsonc automaton walks (see jsonc_internal.h).
 *
 * Every limit is checked while compiling so a hostile schema costs bounded
 * time and memory: node, property and literal counts, literal bytes, nesting
 * depth, and $ref chains (a $ref back into itself is refused rather than
 * compiled into a cycle, because a required recursive member could make the
 * output impossible to finish within the runtime depth bound).
 * Not for: running the automaton (jsonc.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/err.h"
#include "engine/jsonc.h"
#include "engine/jsonc_internal.h"

struct build {
    struct jschema *s;
    const cJSON *root;
    char *err;
    size_t errlen;
    const char *refs[JSONC_MAX_REFS];
    int n_refs;
};

static int grow(void **p, size_t *cap, size_t n, size_t elem)
{
    if (n < *cap)
        return 0;
    size_t nc = *cap ? *cap * 2 : 16;
    void *q = realloc(*p, nc * elem);
    if (!q)
        return AS_ENOMEM;
    *p = q;
    *cap = nc;
    return 0;
}

static int32_t fail(struct build *b, const char *msg, const char *arg)
{
    if (b->err && b->errlen && !b->err[0])
        snprintf(b->err, b->errlen, "%s%s%s", msg, arg ? ": " : "", arg ? arg : "");
    return -1;
}

static int32_t add_node(struct build *b, uint8_t kind)
{
    struct jschema *s = b->s;
    if (s->n_nodes >= JSONC_MAX_NODES)
        return fail(b, "schema too large (too many nodes)", NULL);
    if (grow((void **)&s->nodes, &s->cap_nodes, s->n_nodes, sizeof *s->nodes))
        return fail(b, "out of memory", NULL);
    struct jnode *n = &s->nodes[s->n_nodes];
    memset(n, 0, sizeof *n);
    n->kind = kind;
    n->child = -1;
    n->last_required = -1;
    n->max_items = UINT32_MAX;
    return (int32_t)s->n_nodes++;
}

static int lit_cmp(const void *x, const void *y, const char *pool)
{
    const struct jlit *a = x, *c = y;
    size_t n = a->len < c->len ? a->len : c->len;
    int r = memcmp(pool + a->off, pool + c->off, n);
    if (r)
        return r;
    return a->len < c->len ? -1 : a->len > c->len;
}

/* Sorts and dedupes lits[first..first+count); returns the new count. */
static size_t sort_lits(struct jschema *s, size_t first, size_t count)
{
    struct jlit *l = s->lits + first;
    const char *pool = s->pool.data;
    /* Shell sort: no libc extension needed for the pool context. */
    for (size_t gap = count / 2; gap > 0; gap /= 2)
        for (size_t i = gap; i < count; i++) {
            struct jlit t = l[i];
            size_t j = i;
            for (; j >= gap && lit_cmp(&l[j - gap], &t, pool) > 0; j -= gap)
                l[j] = l[j - gap];
            l[j] = t;
        }
    size_t out = 0;
    for (size_t i = 0; i < count; i++)
        if (out == 0 || lit_cmp(&l[out - 1], &l[i], pool) != 0)
            l[out++] = l[i];
    return out;
}

static int add_lit_text(struct build *b, const char *txt, size_t len)
{
    struct jschema *s = b->s;
    if (s->n_lits >= JSONC_MAX_LITS)
        return fail(b, "schema too large (too many enum values)", NULL), -1;
    if (len == 0 || len > 65535 || s->pool.len + len > JSONC_MAX_LIT_BYTES)
        return fail(b, "schema too large (enum values)", NULL), -1;
    if (grow((void **)&s->lits, &s->cap_lits, s->n_lits, sizeof *s->lits))
        return fail(b, "out of memory", NULL), -1;
    s->lits[s->n_lits].off = (uint32_t)s->pool.len;
    s->lits[s->n_lits].len = (uint32_t)len;
    if (buf_append(&s->pool, txt, len))
        return fail(b, "out of memory", NULL), -1;
    s->n_lits++;
    return 0;
}

/* A JN_LITS node from the array `list`, or from the one value `single`. */
static int32_t lits_node(struct build *b, const cJSON *list, const cJSON *single)
{
    size_t first = b->s->n_lits;
    const cJSON *v = single ? single : list->child;
    for (; v; v = single ? NULL : v->next) {
        char *txt = cJSON_PrintUnformatted(v);
        if (!txt)
            return fail(b, "out of memory", NULL);
        int r = add_lit_text(b, txt, strlen(txt));
        free(txt);
        if (r)
            return -1;
    }
    size_t count = b->s->n_lits - first;
    if (count == 0)
        return fail(b, "enum is empty", NULL);
    count = sort_lits(b->s, first, count);
    b->s->n_lits = first + count;
    int32_t id = add_node(b, JN_LITS);
    if (id < 0)
        return -1;
    b->s->nodes[id].first = (int32_t)first;
    b->s->nodes[id].count = (int32_t)count;
    return id;
}

static int32_t lits_const(struct build *b, const char *const *texts, size_t n)
{
    size_t first = b->s->n_lits;
    for (size_t i = 0; i < n; i++)
        if (add_lit_text(b, texts[i], strlen(texts[i])))
            return -1;
    int32_t id = add_node(b, JN_LITS);
    if (id < 0)
        return -1;
    b->s->nodes[id].first = (int32_t)first;
    b->s->nodes[id].count = (int32_t)sort_lits(b->s, first, n);
    return id;
}

/* Appends alternative a (flattening unions) to alts; dedupes. */
static int push_alt(struct build *b, int32_t a)
{
    struct jschema *s = b->s;
    if (s->nodes[a].kind == JN_UNION) {
        int32_t f = s->nodes[a].first, c = s->nodes[a].count;
        for (int32_t i = 0; i < c; i++)
            if (push_alt(b, s->alts[f + i]))
                return -1;
        return 0;
    }
    if (grow((void **)&s->alts, &s->cap_alts, s->n_alts, sizeof *s->alts))
        return fail(b, "out of memory", NULL), -1;
    s->alts[s->n_alts++] = a;
    return 0;
}

/* Makes a union node of alts[first..n_alts) (or the single alternative). */
static int32_t finish_union(struct build *b, size_t first)
{
    struct jschema *s = b->s;
    size_t out = first;
    for (size_t i = first; i < s->n_alts; i++) {
        size_t j = first;
        while (j < out && s->alts[j] != s->alts[i])
            j++;
        if (j == out)
            s->alts[out++] = s->alts[i];
    }
    s->n_alts = out;
    if (out - first == 1) {
        int32_t a = s->alts[first];
        s->n_alts = first;
        return a;
    }
    if (out == first)
        return fail(b, "anyOf/oneOf is empty", NULL);
    int32_t id = add_node(b, JN_UNION);
    if (id < 0)
        return -1;
    s->nodes[id].first = (int32_t)first;
    s->nodes[id].count = (int32_t)(out - first);
    return id;
}

static void note_unsupported(struct build *b, const char *kw)
{
    static const char *const known[] = {
        "type",        "properties", "required",    "additionalProperties",
        "enum",        "const",      "items",       "minItems",
        "maxItems",    "anyOf",      "oneOf",       "allOf",
        "$ref",        "$defs",      "definitions", "title",
        "description", "default",    "examples",    "$schema",
        "$id",         "$comment",   "deprecated",  "readOnly",
        "writeOnly",   "strict",     "name",
    };
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (!strcmp(kw, known[i]))
            return;
    struct buf *u = &b->s->unsupported;
    size_t kl = strlen(kw);
    const char *p = u->data;
    while (p && *p) {
        const char *e = strchr(p, ',');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l == kl && !memcmp(p, kw, kl))
            return;
        p = e ? e + 1 : p + l;
    }
    if (u->len + kl + 1 > 1024)
        return; /* enough to tell the user; the rest is elided */
    if (u->len)
        buf_append_char(u, ',');
    buf_append(u, kw, kl);
}

static int32_t build(struct build *b, const cJSON *sch, int depth);

static int32_t build_ref(struct build *b, const char *ref, int depth)
{
    const char *name = NULL, *sect = NULL;
    if (!strncmp(ref, "#/$defs/", 8)) {
        sect = "$defs";
        name = ref + 8;
    } else if (!strncmp(ref, "#/definitions/", 14)) {
        sect = "definitions";
        name = ref + 14;
    } else if (!strcmp(ref, "#")) {
        return fail(b, "recursive $ref", ref);
    } else {
        return fail(b, "unsupported $ref (only #/$defs/NAME and #/definitions/NAME)", ref);
    }
    char dec[256];
    size_t n = 0;
    for (const char *p = name; *p; p++) {
        char c = *p;
        if (c == '/')
            return fail(b, "unsupported $ref (nested path)", ref);
        if (c == '~' && (p[1] == '0' || p[1] == '1'))
            c = *++p == '0' ? '~' : '/';
        if (n + 1 >= sizeof dec)
            return fail(b, "$ref name too long", NULL);
        dec[n++] = c;
    }
    dec[n] = 0;
    for (int i = 0; i < b->n_refs; i++)
        if (!strcmp(b->refs[i], ref))
            return fail(b, "recursive $ref", ref);
    if (b->n_refs >= JSONC_MAX_REFS)
        return fail(b, "$ref chain too long", ref);
    const cJSON *defs = cJSON_GetObjectItemCaseSensitive(b->root, sect);
    const cJSON *target = cJSON_IsObject(defs) ? cJSON_GetObjectItemCaseSensitive(defs, dec) : NULL;
    if (!target)
        return fail(b, "$ref target not found", ref);
    b->refs[b->n_refs++] = ref;
    int32_t id = build(b, target, depth + 1);
    b->n_refs--;
    return id;
}

/* Appends a declared property (name JSON-escaped into the pool). 0 or -1. */
static int add_prop(struct build *b, const char *k, int32_t node, int required)
{
    struct jschema *s = b->s;
    if (s->n_props >= JSONC_MAX_PROPS)
        return fail(b, "schema too large (too many properties)", NULL), -1;
    if (grow((void **)&s->props, &s->cap_props, s->n_props, sizeof *s->props))
        return fail(b, "out of memory", NULL), -1;
    size_t off = s->pool.len, kl = strlen(k);
    if (kl > 1024)
        return fail(b, "property name too long", NULL), -1;
    if (buf_append_json_str(&s->pool, k, kl) || s->pool.len > JSONC_MAX_LIT_BYTES)
        return fail(b, "schema too large (names)", NULL), -1;
    /* Keep the escaped text without its quotes. */
    struct jprop *pr = &s->props[s->n_props++];
    pr->off = (uint32_t)off + 1;
    pr->len = (uint32_t)(s->pool.len - off - 2);
    pr->node = node;
    pr->required = (uint8_t)required;
    return 0;
}

static int32_t build_object(struct build *b, const cJSON *sch, int depth)
{
    struct jschema *s = b->s;
    const cJSON *props = cJSON_GetObjectItemCaseSensitive(sch, "properties");
    const cJSON *req = cJSON_GetObjectItemCaseSensitive(sch, "required");
    const cJSON *ap = cJSON_GetObjectItemCaseSensitive(sch, "additionalProperties");
    if (props && !cJSON_IsObject(props))
        return fail(b, "properties must be an object", NULL);
    if (req && !cJSON_IsArray(req))
        return fail(b, "required must be an array", NULL);
    if (!props) {
        int32_t child = JN_ANY;
        if (cJSON_IsFalse(ap))
            child = -1;
        else if (cJSON_IsObject(ap) && (child = build(b, ap, depth + 1)) < 0)
            return -1;
        if (req && req->child)
            return fail(b, "required keys need properties", NULL);
        if (child == JN_ANY)
            return JN_ANY_OBJ;
        int32_t id = add_node(b, JN_OBJECT);
        if (id >= 0)
            s->nodes[id].child = child;
        return id;
    }
    /* Children first (they append props of their own), then this object's props. */
    int np = cJSON_GetArraySize(props);
    if (np > 1024)
        return fail(b, "schema too large (more than 1024 properties in one object)", NULL);
    int32_t kids[1024];
    int i = 0;
    for (const cJSON *p = props->child; p; p = p->next, i++)
        if ((kids[i] = build(b, p, depth + 1)) < 0)
            return -1;
    if (s->n_props + (size_t)np > JSONC_MAX_PROPS)
        return fail(b, "schema too large (too many properties)", NULL);
    size_t first = s->n_props;
    int32_t last_req = -1;
    i = 0;
    for (const cJSON *p = props->child; p; p = p->next, i++) {
        const char *k = p->string ? p->string : "";
        int required = 0;
        for (const cJSON *r = req ? req->child : NULL; r; r = r->next)
            if (cJSON_IsString(r) && !strcmp(r->valuestring, k))
                required = 1;
        if (required)
            last_req = i;
        if (add_prop(b, k, kids[i], required))
            return -1;
    }
    for (const cJSON *r = req ? req->child : NULL; r; r = r->next) {
        if (!cJSON_IsString(r))
            return fail(b, "required must list strings", NULL);
        if (!cJSON_GetObjectItemCaseSensitive(props, r->valuestring))
            return fail(b, "required key is not in properties", r->valuestring);
    }
    int32_t id = add_node(b, JN_OBJECT);
    if (id < 0)
        return -1;
    s->nodes[id].first = (int32_t)first;
    s->nodes[id].count = np;
    s->nodes[id].child = -1;
    s->nodes[id].last_required = last_req;
    return id;
}

static int get_count(const cJSON *j, uint32_t *out)
{
    if (!j)
        return 0;
    if (!cJSON_IsNumber(j) || j->valuedouble < 0)
        return -1;
    *out = j->valuedouble >= 4e9 ? UINT32_MAX : (uint32_t)j->valuedouble;
    return 0;
}

static int32_t build_typed(struct build *b, const cJSON *sch, const char *type, int depth)
{
    static const char *const bools[] = {"false", "true"};
    static const char *const nul[] = {"null"};
    if (!strcmp(type, "object"))
        return build_object(b, sch, depth);
    if (!strcmp(type, "array")) {
        const cJSON *items = cJSON_GetObjectItemCaseSensitive(sch, "items");
        int32_t child = JN_ANY;
        if (cJSON_IsObject(items)) {
            if ((child = build(b, items, depth + 1)) < 0)
                return -1;
        } else if (cJSON_IsArray(items)) {
            note_unsupported(b, "items (array form)");
        } else if (cJSON_IsFalse(items)) {
            child = -1;
        }
        uint32_t mn = 0, mx = UINT32_MAX;
        if (get_count(cJSON_GetObjectItemCaseSensitive(sch, "minItems"), &mn) ||
            get_count(cJSON_GetObjectItemCaseSensitive(sch, "maxItems"), &mx))
            return fail(b, "minItems/maxItems must be non-negative numbers", NULL);
        if (child < 0)
            mx = 0;
        if (mn > mx)
            return fail(b, "minItems is greater than maxItems", NULL);
        if (child == JN_ANY && mn == 0 && mx == UINT32_MAX)
            return JN_ANY_ARR;
        int32_t id = add_node(b, JN_ARRAY);
        if (id < 0)
            return -1;
        b->s->nodes[id].child = child < 0 ? JN_ANY : child;
        b->s->nodes[id].min_items = mn;
        b->s->nodes[id].max_items = mx;
        return id;
    }
    if (!strcmp(type, "string"))
        return JN_ANY_STR;
    if (!strcmp(type, "number"))
        return JN_ANY_NUM;
    if (!strcmp(type, "integer"))
        return add_node(b, JN_INTEGER);
    if (!strcmp(type, "boolean"))
        return lits_const(b, bools, 2);
    if (!strcmp(type, "null"))
        return lits_const(b, nul, 1);
    return fail(b, "unknown type", type);
}

static int32_t build(struct build *b, const cJSON *sch, int depth)
{
    if (depth > JSONC_MAX_SCHEMA_DEPTH)
        return fail(b, "schema nested too deeply", NULL);
    if (cJSON_IsTrue(sch))
        return JN_ANY;
    if (cJSON_IsFalse(sch))
        return fail(b, "schema false cannot be satisfied", NULL);
    if (!cJSON_IsObject(sch))
        return fail(b, "schema must be an object", NULL);
    for (const cJSON *k = sch->child; k; k = k->next)
        if (k->string)
            note_unsupported(b, k->string);

    const cJSON *ref = cJSON_GetObjectItemCaseSensitive(sch, "$ref");
    if (ref) {
        if (!cJSON_IsString(ref))
            return fail(b, "$ref must be a string", NULL);
        return build_ref(b, ref->valuestring, depth);
    }
    const cJSON *cst = cJSON_GetObjectItemCaseSensitive(sch, "const");
    if (cst)
        return lits_node(b, NULL, cst);
    const cJSON *en = cJSON_GetObjectItemCaseSensitive(sch, "enum");
    if (en) {
        if (!cJSON_IsArray(en))
            return fail(b, "enum must be an array", NULL);
        return lits_node(b, en, NULL);
    }
    const cJSON *any = cJSON_GetObjectItemCaseSensitive(sch, "anyOf");
    if (!any)
        any = cJSON_GetObjectItemCaseSensitive(sch, "oneOf");
    if (any) {
        if (!cJSON_IsArray(any))
            return fail(b, "anyOf/oneOf must be an array", NULL);
        if (cJSON_GetArraySize(any) > 256)
            return fail(b, "schema too large (anyOf)", NULL);
        /* Build every alternative before collecting, since builds append alts too. */
        int32_t kids[256];
        int n = 0;
        for (const cJSON *a = any->child; a; a = a->next)
            if ((kids[n++] = build(b, a, depth + 1)) < 0)
                return -1;
        size_t first = b->s->n_alts;
        for (int i = 0; i < n; i++)
            if (push_alt(b, kids[i]))
                return -1;
        return finish_union(b, first);
    }
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(sch, "type");
    const cJSON *all = cJSON_GetObjectItemCaseSensitive(sch, "allOf");
    if (all && cJSON_IsArray(all) && cJSON_GetArraySize(all) == 1 && !type &&
        !cJSON_GetObjectItemCaseSensitive(sch, "properties"))
        return build(b, all->child, depth + 1);
    if (all)
        note_unsupported(b, "allOf (more than one schema)");
    if (cJSON_IsString(type))
        return build_typed(b, sch, type->valuestring, depth);
    if (cJSON_IsArray(type)) {
        int n = cJSON_GetArraySize(type);
        if (n == 0 || n > 8)
            return fail(b, "type array must list 1 to 8 types", NULL);
        int32_t kids[8];
        int i = 0;
        for (const cJSON *t = type->child; t; t = t->next, i++) {
            if (!cJSON_IsString(t))
                return fail(b, "type must be a string", NULL);
            if ((kids[i] = build_typed(b, sch, t->valuestring, depth)) < 0)
                return -1;
        }
        size_t first = b->s->n_alts;
        for (i = 0; i < n; i++)
            if (push_alt(b, kids[i]))
                return -1;
        return finish_union(b, first);
    }
    if (type)
        return fail(b, "type must be a string or an array", NULL);
    if (cJSON_GetObjectItemCaseSensitive(sch, "properties"))
        return build_object(b, sch, depth);
    if (cJSON_GetObjectItemCaseSensitive(sch, "items"))
        return build_typed(b, sch, "array", depth);
    return JN_ANY;
}

void jsonc__schema_free(struct jschema *s)
{
    if (!s)
        return;
    free(s->nodes);
    free(s->props);
    free(s->lits);
    free(s->alts);
    buf_free(&s->pool);
    buf_free(&s->unsupported);
    free(s);
}

struct jschema *jsonc__schema_any(void)
{
    static const char *const lits[] = {"false", "null", "true"};
    struct jschema *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    buf_init(&s->pool, JSONC_MAX_LIT_BYTES + 4096);
    buf_init(&s->unsupported, 4096);
    struct build b = {.s = s};
    char err[8];
    err[0] = 0;
    b.err = err;
    b.errlen = sizeof err;
    /* Order matters: ids must equal the JN_ANY_* constants. */
    if (add_node(&b, JN_UNION) != JN_ANY || add_node(&b, JN_OBJECT) != JN_ANY_OBJ ||
        add_node(&b, JN_ARRAY) != JN_ANY_ARR || add_node(&b, JN_STRING) != JN_ANY_STR ||
        add_node(&b, JN_NUMBER) != JN_ANY_NUM || lits_const(&b, lits, 3) != JN_ANY_LIT)
        goto fail;
    s->nodes[JN_ANY_OBJ].child = JN_ANY;
    s->nodes[JN_ANY_ARR].child = JN_ANY;
    for (int32_t i = JN_ANY_OBJ; i <= JN_ANY_LIT; i++)
        if (grow((void **)&s->alts, &s->cap_alts, s->n_alts, sizeof *s->alts) == 0)
            s->alts[s->n_alts++] = i;
        else
            goto fail;
    s->nodes[JN_ANY].first = 0;
    s->nodes[JN_ANY].count = 5;
    s->root = JN_ANY_OBJ;
    return s;
fail:
    jsonc__schema_free(s);
    return NULL;
}

struct jschema *jsonc__schema_compile(const void *schema, char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = 0;
    struct jschema *s = jsonc__schema_any();
    if (!s) {
        if (err && errlen)
            snprintf(err, errlen, "out of memory");
        return NULL;
    }
    struct build b = {.s = s, .root = schema, .err = err, .errlen = errlen};
    int32_t root = build(&b, schema, 0);
    if (root < 0) {
        if (err && errlen && !err[0])
            snprintf(err, errlen, "invalid schema");
        jsonc__schema_free(s);
        return NULL;
    }
    s->root = root;
    return s;
}

/* 1 if node id accepts nothing but objects. */
static int only_objects(const struct jschema *s, int32_t id)
{
    const struct jnode *n = &s->nodes[id];
    if (n->kind == JN_OBJECT)
        return 1;
    if (n->kind == JN_LITS) {
        for (int32_t i = 0; i < n->count; i++)
            if (s->pool.data[s->lits[n->first + i].off] != '{')
                return 0;
        return n->count > 0;
    }
    if (n->kind != JN_UNION)
        return 0;
    for (int32_t i = 0; i < n->count; i++) /* alternatives are never unions */
        if (!only_objects(s, s->alts[n->first + i]))
            return 0;
    return 1;
}

/*
 * A tool's arguments: any object when it has no parameters (or {} / true),
 * else its parameters schema (whose $refs resolve inside it), which must
 * accept nothing but objects: a call's arguments are an object.
 */
static int32_t tool_args(struct build *b, const cJSON *params)
{
    if (!params || cJSON_IsNull(params))
        return JN_ANY_OBJ;
    b->root = params;
    b->n_refs = 0;
    int32_t pn = build(b, params, 1);
    if (pn < 0 || pn == JN_ANY_OBJ)
        return pn;
    if (pn == JN_ANY)
        return JN_ANY_OBJ;
    if (!only_objects(b->s, pn))
        return fail(b, "parameters must describe a JSON object", NULL);
    return pn;
}

struct jschema *jsonc__schema_tools(const void *tools_json, const char *only, const char *args_key,
                                    int as_array, int args_only, char *err, size_t errlen)
{
    const cJSON *tools = tools_json;
    if (err && errlen)
        err[0] = 0;
    struct jschema *s = jsonc__schema_any();
    if (!s) {
        if (err && errlen)
            snprintf(err, errlen, "out of memory");
        return NULL;
    }
    struct build b = {.s = s, .err = err, .errlen = errlen};
    int32_t kids[256];
    int n = 0;
    if (!cJSON_IsArray(tools) || cJSON_GetArraySize(tools) > 256) {
        fail(&b, "tools must be an array of at most 256 tools", NULL);
        goto fail;
    }
    for (const cJSON *t = tools->child; t; t = t->next) {
        const cJSON *fn = cJSON_GetObjectItemCaseSensitive(t, "function");
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(fn, "name");
        const cJSON *params = cJSON_GetObjectItemCaseSensitive(fn, "parameters");
        if (!cJSON_IsString(name) || !name->valuestring[0]) {
            fail(&b, "tool without function.name", NULL);
            goto fail;
        }
        if (only && strcmp(only, name->valuestring))
            continue;
        int32_t pn = tool_args(&b, params);
        if (pn >= 0 && args_only) {
            s->root = pn;
            return s;
        }
        int32_t nn = pn < 0 ? -1 : lits_node(&b, NULL, name);
        size_t first = s->n_props;
        if (nn < 0 || add_prop(&b, "name", nn, 1) || add_prop(&b, args_key, pn, 1))
            goto fail;
        int32_t id = add_node(&b, JN_OBJECT);
        if (id < 0)
            goto fail;
        s->nodes[id].first = (int32_t)first;
        s->nodes[id].count = 2;
        s->nodes[id].last_required = 1;
        kids[n++] = id;
    }
    if (n == 0) {
        fail(&b, only ? "no tool has that name" : "no tools", only);
        goto fail;
    }
    size_t first = s->n_alts;
    for (int i = 0; i < n; i++)
        if (push_alt(&b, kids[i]))
            goto fail;
    int32_t root = finish_union(&b, first);
    if (root >= 0 && as_array) {
        int32_t arr = add_node(&b, JN_ARRAY);
        if (arr >= 0) {
            s->nodes[arr].child = root;
            s->nodes[arr].min_items = 1;
            s->nodes[arr].max_items = JSONC_MAX_TOOL_CALLS;
        }
        root = arr;
    }
    if (root < 0)
        goto fail;
    s->root = root;
    return s;
fail:
    if (err && errlen && !err[0])
        snprintf(err, errlen, "invalid tools");
    jsonc__schema_free(s);
    return NULL;
}
