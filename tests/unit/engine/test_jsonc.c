/*
 * test_jsonc.c - JSON constrained decoding: texts accepted/refused against
 * schemas, hostile schemas refused, and random walks through the token mask
 * (synthetic vocabulary, and real GGUF vocabularies from ../shared when
 * present) whose output must parse and validate against the schema with an
 * independent validator written here. Prints mask times per step.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

#include "core/buf.h"
#include "core/err.h"
#include "engine/gguf.h"
#include "engine/tok_convert.h"
#include "engine/jsonc.h"
#include "engine/tokenizer.h"

/* ---- an independent validator for the supported subset ---------------------- */

static int validate(const cJSON *v, const cJSON *sch, const cJSON *root, int depth);

static const cJSON *resolve(const cJSON *root, const char *ref)
{
    const char *sect = !strncmp(ref, "#/$defs/", 8) ? "$defs" : "definitions";
    const char *name = strrchr(ref, '/') + 1;
    return cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, sect), name);
}

static int type_ok(const cJSON *v, const char *t)
{
    if (!strcmp(t, "object"))
        return cJSON_IsObject(v);
    if (!strcmp(t, "array"))
        return cJSON_IsArray(v);
    if (!strcmp(t, "string"))
        return cJSON_IsString(v);
    if (!strcmp(t, "number"))
        return cJSON_IsNumber(v);
    if (!strcmp(t, "integer"))
        return cJSON_IsNumber(v) && v->valuedouble == floor(v->valuedouble);
    if (!strcmp(t, "boolean"))
        return cJSON_IsBool(v);
    if (!strcmp(t, "null"))
        return cJSON_IsNull(v);
    return 0;
}

static int validate(const cJSON *v, const cJSON *sch, const cJSON *root, int depth)
{
    if (depth > 64)
        return 0;
    if (cJSON_IsTrue(sch))
        return 1;
    const cJSON *x;
    if ((x = cJSON_GetObjectItemCaseSensitive(sch, "$ref")))
        return validate(v, resolve(root, x->valuestring), root, depth + 1);
    if ((x = cJSON_GetObjectItemCaseSensitive(sch, "const")))
        return cJSON_Compare(v, x, 1);
    if ((x = cJSON_GetObjectItemCaseSensitive(sch, "enum"))) {
        for (const cJSON *e = x->child; e; e = e->next)
            if (cJSON_Compare(v, e, 1))
                return 1;
        return 0;
    }
    if ((x = cJSON_GetObjectItemCaseSensitive(sch, "anyOf")) ||
        (x = cJSON_GetObjectItemCaseSensitive(sch, "oneOf"))) {
        for (const cJSON *e = x->child; e; e = e->next)
            if (validate(v, e, root, depth + 1))
                return 1;
        return 0;
    }
    if ((x = cJSON_GetObjectItemCaseSensitive(sch, "type"))) {
        int ok = 0;
        if (cJSON_IsString(x))
            ok = type_ok(v, x->valuestring);
        for (const cJSON *e = cJSON_IsArray(x) ? x->child : NULL; e; e = e->next)
            ok |= type_ok(v, e->valuestring);
        if (!ok)
            return 0;
    }
    const cJSON *props = cJSON_GetObjectItemCaseSensitive(sch, "properties");
    if (cJSON_IsObject(v) && props) {
        for (const cJSON *m = v->child; m; m = m->next) {
            const cJSON *ps = cJSON_GetObjectItemCaseSensitive(props, m->string);
            if (!ps || !validate(m, ps, root, depth + 1))
                return 0;
        }
        x = cJSON_GetObjectItemCaseSensitive(sch, "required");
        for (const cJSON *r = x ? x->child : NULL; r; r = r->next)
            if (!cJSON_GetObjectItemCaseSensitive(v, r->valuestring))
                return 0;
    }
    if (cJSON_IsArray(v)) {
        int n = cJSON_GetArraySize(v);
        if ((x = cJSON_GetObjectItemCaseSensitive(sch, "minItems")) && n < x->valueint)
            return 0;
        if ((x = cJSON_GetObjectItemCaseSensitive(sch, "maxItems")) && n > x->valueint)
            return 0;
        if ((x = cJSON_GetObjectItemCaseSensitive(sch, "items")))
            for (const cJSON *e = v->child; e; e = e->next)
                if (!validate(e, x, root, depth + 1))
                    return 0;
    }
    return 1;
}

/* ---- accept / refuse ----------------------------------------------------------- */

static struct jsonc *mk(const char *schema_json)
{
    char err[256];
    cJSON *s = cJSON_Parse(schema_json);
    assert_non_null(s);
    struct jsonc *c = jsonc_new_schema(s, err, sizeof err);
    cJSON_Delete(s);
    if (!c)
        fail_msg("schema refused: %s", err);
    return c;
}

/* "TOOLS:" + an OpenAI tools array: the constraint for one call of any of them. */
static const char tools_tag[] = "TOOLS:";

static struct jsonc *mk_any(const char *schema)
{
    if (!schema)
        return jsonc_new_object();
    if (strncmp(schema, tools_tag, strlen(tools_tag)))
        return mk(schema);
    char err[256];
    cJSON *tools = cJSON_Parse(schema + strlen(tools_tag));
    assert_non_null(tools);
    struct jsonc *c = jsonc_new_tools(tools, NULL, "arguments", 0, err, sizeof err);
    cJSON_Delete(tools);
    if (!c)
        fail_msg("tools refused: %s", err);
    return c;
}

/* Validates doc against schema, or as a call of one of the tools. */
static int validate_any(const cJSON *doc, const char *schema)
{
    if (schema && !strncmp(schema, tools_tag, strlen(tools_tag))) {
        cJSON *tools = cJSON_Parse(schema + strlen(tools_tag));
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(doc, "name");
        const cJSON *args = cJSON_GetObjectItemCaseSensitive(doc, "arguments");
        int ok = 0;
        for (const cJSON *t = tools->child; t && cJSON_IsString(name); t = t->next) {
            const cJSON *fn = cJSON_GetObjectItemCaseSensitive(t, "function");
            const cJSON *params = cJSON_GetObjectItemCaseSensitive(fn, "parameters");
            if (!strcmp(cJSON_GetObjectItemCaseSensitive(fn, "name")->valuestring,
                        name->valuestring))
                ok = cJSON_GetArraySize(doc) == 2 && args && validate(args, params, params, 0);
        }
        cJSON_Delete(tools);
        return ok;
    }
    cJSON *sch = schema ? cJSON_Parse(schema) : cJSON_Parse("{\"type\":\"object\"}");
    int ok = validate(doc, sch, sch, 0);
    cJSON_Delete(sch);
    return ok;
}

/* 1 if text is accepted as a complete document by schema (NULL: json_object). */
static int accepts(const char *schema, const char *text)
{
    struct jsonc *c = mk_any(schema);
    assert_non_null(c);
    int ok = jsonc_accept(c, text, strlen(text)) == 0 && jsonc_done(c);
    /* Byte by byte must agree with all at once. */
    struct jsonc *d = mk_any(schema);
    int ok2 = 1;
    for (const char *p = text; *p && ok2; p++)
        ok2 = jsonc_accept(d, p, 1) == 0;
    ok2 = ok2 && jsonc_done(d);
    assert_int_equal(ok, ok2);
    jsonc_free(c);
    jsonc_free(d);
    return ok;
}

static void test_object_mode(void **state)
{
    (void)state;
    assert_true(accepts(NULL, "{}"));
    assert_true(accepts(NULL, "{\"a\": [1, -2.5e3, true, null, \"x\\u00e9\\n\"], \"b\": {}}"));
    assert_true(accepts(NULL, " {\n  \"k\": \"caf\xc3\xa9\"\n}"));
    assert_false(accepts(NULL, "[]"));
    assert_false(accepts(NULL, "{\"a\":}"));
    assert_false(accepts(NULL, "{\"a\":1,}"));
    assert_false(accepts(NULL, "{\"a\":01}"));
    assert_false(accepts(NULL, "{\"a\":1} x"));
    assert_false(accepts(NULL, "{\"a\":1"));
    assert_false(accepts(NULL, "{\"a\":\"\\ud800\"}"));      /* lone surrogate escape */
    assert_false(accepts(NULL, "{\"a\":\"\xc3\"}"));         /* truncated UTF-8 */
    assert_false(accepts(NULL, "{\"a\":\"\xed\xa0\x80\"}")); /* encoded surrogate */
    assert_false(accepts(NULL, "{\"a\":\"x\ny\"}"));         /* raw control char */
    assert_false(accepts(NULL, "{                    }"));   /* too much whitespace */
    assert_false(accepts(NULL, "{\"a\":123456789012345678901234567890123456789012345}"));
}

static void test_types_required_enum(void **state)
{
    (void)state;
    const char *s = "{\"type\":\"object\",\"properties\":{"
                    "\"name\":{\"type\":\"string\"},"
                    "\"age\":{\"type\":\"integer\"},"
                    "\"color\":{\"enum\":[\"red\",\"green\",\"blue\",1,12,null]},"
                    "\"ok\":{\"type\":\"boolean\"}},"
                    "\"required\":[\"name\",\"ok\"]}";
    assert_true(accepts(s, "{\"name\":\"x\",\"ok\":true}"));
    assert_true(accepts(s, "{\"name\":\"x\",\"age\":3,\"color\":\"green\",\"ok\":false}"));
    assert_true(accepts(s, "{\"name\":\"x\",\"color\":12,\"ok\":false}"));
    assert_true(accepts(s, "{\"name\":\"x\",\"color\":1,\"ok\":false}"));
    assert_true(accepts(s, "{\"name\":\"x\",\"color\":null,\"ok\":false}"));
    assert_false(accepts(s, "{\"name\":\"x\"}"));                         /* ok missing */
    assert_false(accepts(s, "{\"ok\":true}"));                            /* name missing */
    assert_false(accepts(s, "{\"name\":\"x\",\"age\":3.5,\"ok\":true}")); /* integer */
    assert_false(accepts(s, "{\"name\":\"x\",\"color\":\"pink\",\"ok\":true}"));
    assert_false(accepts(s, "{\"name\":\"x\",\"color\":13,\"ok\":true}"));
    assert_false(accepts(s, "{\"name\":\"x\",\"zz\":1,\"ok\":true}")); /* undeclared key */
    assert_false(accepts(s, "{\"name\":1,\"ok\":true}"));
    assert_false(accepts(s, "{\"name\":\"x\",\"ok\":\"true\"}"));
    assert_true(accepts("{\"const\":\"only\"}", "\"only\""));
    assert_false(accepts("{\"const\":\"only\"}", "\"onl\""));
    assert_true(accepts("{\"type\":\"number\"}", "-0.5e+7"));
    assert_true(accepts("{\"type\":[\"string\",\"null\"]}", "null"));
    assert_true(accepts("{\"type\":[\"string\",\"null\"]}", "\"s\""));
    assert_false(accepts("{\"type\":[\"string\",\"null\"]}", "1"));
}

static void test_arrays_nested(void **state)
{
    (void)state;
    const char *s = "{\"type\":\"object\",\"properties\":{\"items\":{\"type\":\"array\","
                    "\"minItems\":1,\"maxItems\":2,\"items\":{\"type\":\"object\","
                    "\"properties\":{\"id\":{\"type\":\"integer\"},\"tags\":{\"type\":\"array\","
                    "\"items\":{\"type\":\"string\"}}},\"required\":[\"id\",\"tags\"]}}},"
                    "\"required\":[\"items\"]}";
    assert_true(accepts(s, "{\"items\":[{\"id\":1,\"tags\":[]}]}"));
    assert_true(accepts(s, "{\"items\": [ {\"id\": 1, \"tags\": [\"a\", \"b\"]}, "
                           "{\"id\": 2, \"tags\": []} ]}"));
    assert_false(accepts(s, "{\"items\":[]}"));
    assert_false(accepts(s, "{\"items\":[{\"id\":1,\"tags\":[]},{\"id\":1,\"tags\":[]},"
                            "{\"id\":1,\"tags\":[]}]}"));
    assert_false(accepts(s, "{\"items\":[{\"id\":1}]}"));
    assert_false(accepts(s, "{\"items\":[{\"id\":1,\"tags\":[1]}]}"));
}

static void test_anyof_ref(void **state)
{
    (void)state;
    const char *s = "{\"$defs\":{\"pt\":{\"type\":\"object\",\"properties\":{\"x\":{\"type\":"
                    "\"number\"},\"y\":{\"type\":\"number\"}},\"required\":[\"x\",\"y\"]},"
                    "\"named\":{\"type\":\"object\",\"properties\":{\"x\":{\"type\":\"string\"}},"
                    "\"required\":[\"x\"]}},"
                    "\"type\":\"object\",\"properties\":{\"shape\":{\"anyOf\":["
                    "{\"$ref\":\"#/$defs/pt\"},{\"$ref\":\"#/$defs/named\"},"
                    "{\"type\":\"array\",\"items\":{\"$ref\":\"#/definitions/pt\"}}]}},"
                    "\"definitions\":{\"pt\":{\"$ref\":\"#/$defs/pt\"}},"
                    "\"required\":[\"shape\"]}";
    assert_true(accepts(s, "{\"shape\":{\"x\":1,\"y\":2}}"));
    assert_true(accepts(s, "{\"shape\":{\"x\":\"a\"}}"));
    assert_true(accepts(s, "{\"shape\":[{\"x\":1,\"y\":2}]}"));
    assert_false(accepts(s, "{\"shape\":{\"x\":1}}"));
    assert_false(accepts(s, "{\"shape\":{\"x\":\"a\",\"y\":2}}"));
    assert_false(accepts(s, "{\"shape\":[{\"x\":\"a\"}]}"));
    assert_true(accepts("{\"allOf\":[{\"type\":\"integer\"}]}", "42"));
}

/* Three tools: one with an enum, one whose parameters use $defs, one without parameters. */
#define WALK_TOOLS                                                                                 \
    "TOOLS:[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"parameters\":{"        \
    "\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"},\"unit\":{\"enum\":"       \
    "[\"c\",\"f\"]}},\"required\":[\"city\"]}}},{\"type\":\"function\",\"function\":{\"name\":"    \
    "\"tag\",\"parameters\":{\"$defs\":{\"t\":{\"type\":\"array\",\"items\":{\"type\":"            \
    "\"integer\"},\"maxItems\":3}},\"type\":\"object\",\"properties\":{\"tags\":{\"$ref\":"        \
    "\"#/$defs/t\"}}}}},{\"type\":\"function\",\"function\":{\"name\":\"now\"}}]"

/* Whether text is a complete document for c (a fresh constraint, freed here). */
static int takes(struct jsonc *c, const char *text)
{
    assert_non_null(c);
    int ok = jsonc_accept(c, text, strlen(text)) == 0 && jsonc_done(c);
    jsonc_free(c);
    return ok;
}

/* jsonc_new_tool_args: one tool's arguments; parameters must describe objects only. */
static void test_tool_args(void **state)
{
    (void)state;
    char err[256];
    const char *walk_tools = WALK_TOOLS;
    cJSON *t = cJSON_Parse(walk_tools + strlen(tools_tag));
    assert_non_null(t);
    assert_true(takes(jsonc_new_tool_args(t, "get_weather", err, sizeof err),
                      "{\"city\": \"P\", \"unit\": \"f\"}"));
    assert_false(takes(jsonc_new_tool_args(t, "get_weather", err, sizeof err), "{}"));
    assert_false(takes(jsonc_new_tool_args(t, "get_weather", err, sizeof err), "\"P\""));
    assert_true(takes(jsonc_new_tool_args(t, "tag", err, sizeof err), "{\"tags\":[1,2,3]}"));
    assert_false(takes(jsonc_new_tool_args(t, "tag", err, sizeof err), "{\"tags\":[1,2,3,4]}"));
    assert_true(takes(jsonc_new_tool_args(t, "now", err, sizeof err), "{\"a\": [null]}"));
    assert_false(takes(jsonc_new_tool_args(t, "now", err, sizeof err), "1"));
    err[0] = 0;
    assert_null(jsonc_new_tool_args(t, "nope", err, sizeof err));
    assert_non_null(strstr(err, "no tool"));
    cJSON_Delete(t);

    /* {} is any object; a schema that admits non-objects is refused, in both constructors */
    static const char *const ok[] = {
        "{}",
        "true",
        ("{\"anyOf\":[{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\"}},"
         "\"required\":[\"a\"]},{\"type\":\"object\"}]}"),
        "{\"const\":{\"k\":1}}",
    };
    static const char *const refused[] = {
        "{\"type\":\"string\"}",
        "{\"anyOf\":[{\"type\":\"object\"},{\"type\":\"integer\"}]}",
        "{\"type\":[\"object\",\"null\"]}",
        "{\"enum\":[{\"k\":1},2]}",
    };
    char json[512];
    for (size_t i = 0; i < sizeof ok / sizeof ok[0] + sizeof refused / sizeof refused[0]; i++) {
        int good = i < sizeof ok / sizeof ok[0];
        const char *p = good ? ok[i] : refused[i - sizeof ok / sizeof ok[0]];
        snprintf(json, sizeof json,
                 "[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":%s}}]", p);
        t = cJSON_Parse(json);
        assert_non_null(t);
        err[0] = 0;
        struct jsonc *a = jsonc_new_tool_args(t, "f", err, sizeof err);
        struct jsonc *c = jsonc_new_tools(t, NULL, "arguments", 0, err, sizeof err);
        if (good) {
            assert_non_null(a);
            assert_non_null(c);
            assert_int_equal(jsonc_accept(a, "3", 1), AS_EINVAL);
        } else {
            assert_null(a);
            assert_null(c);
            assert_non_null(strstr(err, "object"));
        }
        jsonc_free(a);
        jsonc_free(c);
        cJSON_Delete(t);
    }
    t = cJSON_Parse("[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":{}}}]");
    assert_true(takes(jsonc_new_tool_args(t, "f", err, sizeof err), "{\"x\": [1]}"));
    assert_false(takes(jsonc_new_tool_args(t, "f", err, sizeof err), "[1]"));
    cJSON_Delete(t);
}

static void test_tools(void **state)
{
    (void)state;
    const char *tools = WALK_TOOLS;
    assert_true(accepts(tools, "{\"name\": \"get_weather\", \"arguments\": {\"city\": \"P\"}}"));
    assert_true(accepts(tools, "{\"name\":\"tag\",\"arguments\":{\"tags\":[1,2]}}"));
    assert_true(accepts(tools, "{\"name\":\"now\",\"arguments\":{\"any\":[true]}}"));
    assert_false(accepts(tools, "{\"name\":\"tag\",\"arguments\":{\"city\":\"P\"}}"));
    assert_false(accepts(tools, "{\"name\":\"get_weather\",\"arguments\":{}}"));
    assert_false(accepts(tools, "{\"name\":\"nope\",\"arguments\":{}}"));
    assert_false(accepts(tools, "{\"name\":\"now\"}"));

    char err[256];
    cJSON *t = cJSON_Parse(tools + strlen(tools_tag));
    struct jsonc *c = jsonc_new_tools(t, "tag", "parameters", 1, err, sizeof err);
    assert_non_null(c);
    const char *ok = "[{\"name\": \"tag\", \"parameters\": {}}]";
    assert_int_equal(jsonc_accept(c, ok, strlen(ok)), 0);
    assert_true(jsonc_done(c));
    jsonc_free(c);
    c = jsonc_new_tools(t, "tag", "parameters", 1, err, sizeof err);
    const char *bad = "[{\"name\": \"now\"";
    assert_int_not_equal(jsonc_accept(c, bad, strlen(bad)), 0);
    jsonc_free(c);
    /* the array holds at most JSONC_MAX_TOOL_CALLS calls (what the tool-call parser keeps) */
    c = jsonc_new_tools(t, "tag", "parameters", 1, err, sizeof err);
    assert_non_null(c);
    const char *one = "{\"name\":\"tag\",\"parameters\":{}}";
    assert_int_equal(jsonc_accept(c, "[", 1), 0);
    for (int i = 0; i < JSONC_MAX_TOOL_CALLS; i++) {
        assert_int_equal(jsonc_accept(c, one, strlen(one)), 0);
        if (i + 1 < JSONC_MAX_TOOL_CALLS)
            assert_int_equal(jsonc_accept(c, ",", 1), 0);
    }
    assert_int_not_equal(jsonc_accept(c, ",", 1), 0);
    assert_int_equal(jsonc_accept(c, "]", 1), 0);
    assert_true(jsonc_done(c));
    jsonc_free(c);
    assert_null(jsonc_new_tools(t, "missing", "arguments", 0, err, sizeof err));
    assert_non_null(strstr(err, "no tool"));
    cJSON_Delete(t);
    t = cJSON_Parse("[{\"type\":\"function\",\"function\":{\"parameters\":{}}}]");
    assert_null(jsonc_new_tools(t, NULL, "arguments", 0, err, sizeof err));
    assert_non_null(strstr(err, "name"));
    cJSON_Delete(t);
}

static void refused(const char *schema, const char *needle)
{
    char err[256];
    cJSON *s = cJSON_Parse(schema);
    assert_non_null(s);
    struct jsonc *c = jsonc_new_schema(s, err, sizeof err);
    cJSON_Delete(s);
    assert_null(c);
    if (!strstr(err, needle))
        fail_msg("message '%s' lacks '%s'", err, needle);
}

static void test_hostile_and_unsupported(void **state)
{
    (void)state;
    refused("{\"$defs\":{\"a\":{\"type\":\"object\",\"properties\":{\"x\":{\"$ref\":"
            "\"#/$defs/a\"}}}},\"$ref\":\"#/$defs/a\"}",
            "recursive");
    refused("{\"$ref\":\"#/$defs/missing\"}", "not found");
    refused("{\"$ref\":\"http://x/y\"}", "unsupported $ref");
    refused("{\"type\":\"frob\"}", "unknown type");
    refused("{\"enum\":[]}", "empty");
    refused("{\"type\":\"array\",\"minItems\":3,\"maxItems\":2}", "minItems");
    refused("{\"properties\":{\"a\":{}},\"required\":[\"b\"]}", "not in properties");
    /* 40 levels of nesting */
    char deep[2048];
    size_t n = 0;
    for (int i = 0; i < 40; i++)
        n += (size_t)snprintf(deep + n, sizeof deep - n, "{\"type\":\"array\",\"items\":");
    n += (size_t)snprintf(deep + n, sizeof deep - n, "{}");
    for (int i = 0; i < 40; i++)
        deep[n++] = '}';
    deep[n] = 0;
    refused(deep, "too deeply");
    /* exponential $ref fan-out hits the node limit, not the machine */
    struct buf b;
    buf_init(&b, 1 << 20);
    buf_append_cstr(&b, "{\"$defs\":{");
    for (int i = 0; i < 20; i++)
        buf_printf(&b,
                   "%s\"d%d\":{\"type\":\"array\",\"items\":{\"anyOf\":[{\"$ref\":\"#/$defs/d%d\"},"
                   "{\"type\":\"object\",\"properties\":{\"p\":{\"$ref\":\"#/$defs/d%d\"}}}]}}",
                   i ? "," : "", i, i + 1, i + 1);
    buf_append_cstr(&b, ",\"d20\":{\"type\":\"string\"}},\"$ref\":\"#/$defs/d0\"}");
    refused(b.data, "too");
    buf_free(&b);

    struct jsonc *c = mk("{\"type\":\"object\",\"title\":\"T\",\"properties\":{\"s\":{\"type\":"
                         "\"string\",\"pattern\":\"^a\",\"minLength\":2,\"format\":\"date\"},"
                         "\"n\":{\"type\":\"number\",\"minimum\":0,\"pattern\":\"x\"}}}");
    assert_string_equal(jsonc_unsupported(c), "pattern,minLength,format,minimum");
    jsonc_free(c);
    c = mk("{\"type\":\"object\",\"description\":\"d\"}");
    assert_string_equal(jsonc_unsupported(c), "");
    jsonc_free(c);
}

/* ---- random walks through the mask ---------------------------------------------- */

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts); /* the shared machine skews wall time */
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

struct walk_stats {
    double total_ms, max_ms;
    int steps;
    int brute; /* check every token against jsonc_accept_token */
};

/*
 * Samples allowed tokens at random until an EOG token is drawn; the text must
 * then parse and validate. Late in the walk, tokens that close something are
 * preferred so walks end.
 */
static void walk(const struct tokenizer *t, const struct jsonc_vocab *v, const char *schema,
                 uint64_t seed, int max_steps, struct walk_stats *ws)
{
    struct jsonc *c = mk_any(schema);
    uint32_t n = jsonc_vocab_n(v);
    float *logits = malloc(n * sizeof *logits);
    int32_t *ok = malloc(n * sizeof *ok);
    struct buf text, piece;
    buf_init(&text, 1 << 20);
    buf_init(&piece, 1 << 16);
    int ended = 0;
    for (int step = 0; step < max_steps && !ended; step++) {
        for (uint32_t i = 0; i < n; i++)
            logits[i] = 0;
        double t0 = now_ms();
        int n_ok = jsonc_mask(c, v, logits);
        double dt = now_ms() - t0;
        ws->total_ms += dt;
        ws->steps++;
        if (dt > ws->max_ms)
            ws->max_ms = dt;
        if (getenv("JSONC_SLOW") && dt > 2.0)
            print_message("slow %.2f ms after '%s'\n", dt, text.data ? text.data : "");
        if (n_ok <= 0)
            fail_msg("dead end after '%s' (schema %s)", text.data ? text.data : "",
                     schema ? schema : "object");
        int m = 0, m_close = 0;
        for (uint32_t i = 0; i < n; i++)
            if (logits[i] == 0)
                ok[m++] = (int32_t)i;
        assert_int_equal(m, n_ok);
        if (ws->brute) {
            /* The mask must agree with jsonc_accept_token token by token. */
            for (uint32_t i = 0; i < n; i++) {
                struct jsonc *d = mk_any(schema);
                assert_int_equal(jsonc_accept(d, text.data ? text.data : "", text.len), 0);
                int acc = jsonc_accept_token(d, v, (int32_t)i) == 0;
                if (acc != (logits[i] == 0))
                    fail_msg("token %u: mask %d, accept %d after '%s'", i, logits[i] == 0, acc,
                             text.data ? text.data : "");
                jsonc_free(d);
            }
        }
        int32_t pick = ok[rng_next(&seed) % (uint64_t)m];
        if (step > max_steps / 3) {
            /* Prefer EOG and tokens that end containers or strings. */
            for (int i = 0; i < m; i++) {
                buf_reset(&piece);
                tok_piece(t, ok[i], 0, &piece);
                if (tok_is_eog(t, ok[i]) || (piece.len == 1 && strchr("]}\"", piece.data[0])))
                    ok[m_close++] = ok[i];
            }
            if (m_close)
                pick = ok[rng_next(&seed) % (uint64_t)m_close];
        }
        if (tok_is_eog(t, pick)) {
            assert_true(jsonc_done(c));
            ended = 1;
            break;
        }
        buf_reset(&piece);
        assert_int_equal(tok_piece(t, pick, 0, &piece), 0);
        assert_int_equal(jsonc_accept_token(c, v, pick), 0);
        buf_append(&text, piece.data, piece.len);
    }
    if (!ended) {
        /* Ran out of steps: the document need not be complete; check it is a prefix. */
        jsonc_free(c);
        free(logits);
        free(ok);
        buf_free(&text);
        buf_free(&piece);
        return;
    }
    cJSON *doc = cJSON_ParseWithLength(text.data ? text.data : "", text.len);
    if (!doc)
        fail_msg("walk output does not parse: %s", text.data);
    if (!validate_any(doc, schema))
        fail_msg("walk output does not validate: %s", text.data);
    cJSON_Delete(doc);
    jsonc_free(c);
    free(logits);
    free(ok);
    buf_free(&text);
    buf_free(&piece);
}

static const char *walk_schemas[] = {
    NULL,
    "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\"},\"age\":{\"type\":"
    "\"integer\"},\"color\":{\"enum\":[\"red\",\"green\",\"blue\"]},\"tags\":{\"type\":\"array\","
    "\"items\":{\"type\":\"string\"},\"maxItems\":3}},\"required\":[\"name\",\"color\"]}",
    "{\"type\":\"array\",\"minItems\":1,\"maxItems\":3,\"items\":{\"anyOf\":[{\"type\":\"object\","
    "\"properties\":{\"x\":{\"type\":\"number\"},\"y\":{\"type\":\"number\"}},\"required\":[\"x\","
    "\"y\"]},{\"type\":\"object\",\"properties\":{\"x\":{\"type\":\"boolean\"}},\"required\":"
    "[\"x\"]},{\"type\":[\"null\",\"string\"]}]}}",
    "{\"$defs\":{\"e\":{\"type\":\"object\",\"properties\":{\"a\":{\"const\":true},\"b\":"
    "{\"type\":\"array\",\"items\":{\"type\":\"integer\"},\"maxItems\":4}},\"required\":[\"a\"]}},"
    "\"type\":\"object\",\"properties\":{\"e\":{\"$ref\":\"#/$defs/"
    "e\"},\"f\":{\"type\":\"number\"}},"
    "\"required\":[\"e\",\"f\"]}",
    "{\"type\":\"number\"}",
    WALK_TOOLS,
};

static struct tokenizer *synthetic_vocab(void)
{
    static const char *const toks[] = {
        "<unk>",
        "<s>",
        "</s>",
        "{",
        "}",
        "[",
        "]",
        ",",
        ":",
        "\"",
        "{\"",
        "\":",
        "\",",
        "\":\"",
        "true",
        "false",
        "null",
        "nul",
        "tr",
        "0",
        "1",
        "2",
        "5",
        "9",
        "12",
        "-",
        ".",
        "e",
        "E",
        "+",
        "a",
        "b",
        "c",
        "x",
        "y",
        "e\"",
        "name",
        "age",
        "color",
        "tags",
        "red",
        "green",
        "gre",
        "en",
        "blue",
        "▁",
        "▁\"",
        "\n",
        "\\",
        "\\n",
        "\\u",
        "00",
        "e9",
        "é",
        "<0xC3>",
        "<0xA9>",
        "<0x0A>",
        "<0x22>",
        ",▁\"",
        "}]",
        "]}",
        "\"}",
        "1.5",
        "f",
        "\"e\":",
        "\"b\":[",
        "l",
        "ue",
        "s",
        "se",
        "d",
        "g",
        "h",
        "i",
        "j",
        "k",
        "m",
        "n",
        "o",
        "p",
        "q",
        "r",
        "t",
        "u",
        "v",
        "w",
        "z",
        "ge",
        "_",
        "weather",
        /* longer than the 32 prefix states the mask scan keeps */
        "abcdefghijklmnopqrstuvwxyz0123456789\"",
        "\"name\":\"abcdefghijklmnopqrstuvwxyz0123456789",
        "\"name\": \"abcdefghijklmnopqrstuvwxyz0123456789\", \"age\": 1",
        "▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁",
        "123456789012345678901234567890123456789",
        "\\u00e9\\n\\t\\\"abcdefghijklmnopqrstuvwxyz0123",
    };
    size_t n = sizeof toks / sizeof toks[0];
    struct str *s = calloc(n, sizeof *s);
    int32_t *types = calloc(n, sizeof *types);
    for (size_t i = 0; i < n; i++) {
        s[i].p = toks[i];
        s[i].len = strlen(toks[i]);
        types[i] = i < 3                         ? TOK_TT_CONTROL
                   : !strncmp(toks[i], "<0x", 3) ? TOK_TT_BYTE
                                                 : TOK_TT_NORMAL;
    }
    types[0] = TOK_TT_UNKNOWN;
    struct tok_vocab_desc d = {
        .model = "llama",
        .n_tokens = (uint32_t)n,
        .tokens = s,
        .types = types,
        .bos = 1,
        .eos = 2,
        .unk = 0,
        .pad = -1,
        .eot = -1,
        .eom = -1,
        .add_bos = -1,
        .add_eos = -1,
        .add_space_prefix = -1,
    };
    char err[256];
    struct tokenizer *t = tok_new(&d, err, sizeof err);
    if (!t)
        fail_msg("tok_new: %s", err);
    free(s);
    free(types);
    return t;
}

static void test_walk_synthetic(void **state)
{
    (void)state;
    struct tokenizer *t = synthetic_vocab();
    struct jsonc_vocab *v = jsonc_vocab_new(t);
    assert_non_null(v);
    int sanitize = getenv("AISTACK_SANITIZE") && !strcmp(getenv("AISTACK_SANITIZE"), "1");
    struct walk_stats ws = {0};
    for (size_t k = 0; k < sizeof walk_schemas / sizeof walk_schemas[0]; k++)
        for (uint64_t seed = 1; seed <= (sanitize ? 8u : 24u); seed++) {
            ws.brute = seed <= (sanitize ? 1u : 2u);
            walk(t, v, walk_schemas[k], seed * 7919 + k, 400, &ws);
        }
    jsonc_vocab_free(v);
    tok_free(t);
}

static const char *shared_dir(void)
{
    const char *s = getenv("AISTACK_SHARED");
    return s ? s : "../shared";
}

/* A tokenizer from vocab/ggml-vocab-NAME.gguf, or from tokenizers/NAME.tiktoken (Qwen2). */
static struct tokenizer *load_vocab(const char *name)
{
    char path[1024], err[256];
    struct gguf_file *f = NULL;
    int tiktoken = strstr(name, ".tiktoken") != NULL;
    if (tiktoken)
        snprintf(path, sizeof path, "%s/testdata/tokenizers/%s", shared_dir(), name);
    else
        snprintf(path, sizeof path, "%s/testdata/vocab/ggml-vocab-%s.gguf", shared_dir(), name);
    if (access(path, R_OK) != 0)
        return NULL;
    if (tiktoken) {
        char out[256];
        snprintf(out, sizeof out, "test_jsonc_%d.gguf", (int)getpid());
        struct gguf_writer *w = gguf_writer_new();
        assert_non_null(w);
        if (tok_convert_tiktoken(w, path, TOK_TIKTOKEN_QWEN2, err, sizeof err))
            fail_msg("%s: %s", path, err);
        assert_int_equal(gguf_writer_write(w, out), 0);
        gguf_writer_free(w);
        f = gguf_open(out, err, sizeof err);
        unlink(out);
    } else {
        f = gguf_open(path, err, sizeof err);
    }
    if (!f)
        fail_msg("%s: %s", path, err);
    struct tokenizer *t = tok_new_from_gguf(f, err, sizeof err);
    gguf_close(f);
    if (!t)
        fail_msg("%s: %s", name, err);
    return t;
}

static void walk_gguf(const char *name, int big)
{
    const char *san = getenv("AISTACK_SANITIZE");
    if (big && san && !strcmp(san, "1")) {
        print_message("skip: %s is a timing run, too slow under ASan\n", name);
        skip();
    }
    struct tokenizer *t = load_vocab(name);
    if (!t) {
        print_message("skip: %s absent from %s/testdata\n", name, shared_dir());
        skip();
    }
    double t0 = now_ms();
    struct jsonc_vocab *v = jsonc_vocab_new(t);
    double build = now_ms() - t0;
    assert_non_null(v);
    int sanitize = getenv("AISTACK_SANITIZE") && !strcmp(getenv("AISTACK_SANITIZE"), "1");
    struct walk_stats ws = {0};
    for (size_t k = 0; k < sizeof walk_schemas / sizeof walk_schemas[0]; k++)
        for (uint64_t seed = 1; seed <= (sanitize ? 1u : 3u); seed++)
            walk(t, v, walk_schemas[k], seed * 104729 + k, sanitize ? 30 : 80, &ws);
    print_message("jsonc %s: %u tokens, vocab build %.1f ms, mask %.3f ms/step mean, %.3f ms max "
                  "(%d steps)\n",
                  name, tok_n_vocab(t), build, ws.total_ms / ws.steps, ws.max_ms, ws.steps);
    /* Fixed states, including the slow ones (no plain-string shortcut after \ or half a UTF-8). */
    static const char *const prefixes[] = {
        "", "{\"a\": ", "{\"a\": \"x", "{\"a\": \"x\\", "{\"a\": \"\xc3", "{\"a\": [1, 2"};
    float *logits = malloc(tok_n_vocab(t) * sizeof *logits);
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++) {
        struct jsonc *c = jsonc_new_object();
        assert_int_equal(jsonc_accept(c, prefixes[i], strlen(prefixes[i])), 0);
        double best = 1e9;
        int n_ok = 0;
        for (int rep = 0; rep < 5; rep++) {
            double t1 = now_ms();
            n_ok = jsonc_mask(c, v, logits);
            double dt = now_ms() - t1;
            best = dt < best ? dt : best;
        }
        print_message("  after '%s': %d allowed, %.3f ms\n", prefixes[i], n_ok, best);
        jsonc_free(c);
    }
    free(logits);
    jsonc_vocab_free(v);
    tok_free(t);
}

static void test_walk_llama_spm(void **state)
{
    (void)state;
    walk_gguf("llama-spm", 0);
}

static void test_walk_deepseek_bpe(void **state)
{
    (void)state;
    walk_gguf("deepseek-llm", 1);
}

static void test_walk_qwen2(void **state)
{
    (void)state;
    walk_gguf("qwen.tiktoken", 1);
}

static void test_walk_gpt2(void **state)
{
    (void)state;
    walk_gguf("gpt-2", 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_object_mode),
        cmocka_unit_test(test_types_required_enum),
        cmocka_unit_test(test_arrays_nested),
        cmocka_unit_test(test_anyof_ref),
        cmocka_unit_test(test_hostile_and_unsupported),
        cmocka_unit_test(test_tools),
        cmocka_unit_test(test_tool_args),
        cmocka_unit_test(test_walk_synthetic),
        cmocka_unit_test(test_walk_llama_spm),
        cmocka_unit_test(test_walk_gpt2),
        cmocka_unit_test(test_walk_deepseek_bpe),
        cmocka_unit_test(test_walk_qwen2),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
