/*
 * test_toolcall.c - tool call extraction: every supported format, several
 * calls, malformed calls given back as content, and streaming: the same input
 * split at every byte (and fed byte by byte) gives the same content and
 * calls, and no marker ever reaches the streamed content early. Style
 * detection runs on ../shared/testdata/chat-templates when present.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/buf.h"
#include "engine/toolcall.h"

struct result {
    struct buf content;
    struct toolcall_parser *p;
};

static void result_free(struct result *r)
{
    buf_free(&r->content);
    toolcall_parser_free(r->p);
}

/* parse() makes forced parsers (toolcall_parser_new_forced) while this is set. */
static int g_forced;
static const char *g_forced_name;

static struct toolcall_parser *new_parser(enum toolcall_style st)
{
    return g_forced ? toolcall_parser_new_forced(st, g_forced_name, 42)
                    : toolcall_parser_new(st, 42);
}

/* Feeds text in chunks of the given cut points (sorted, ascending). */
static void run_cuts(enum toolcall_style st, const char *text, const size_t *cuts, size_t n_cuts,
                     struct result *r)
{
    size_t len = strlen(text), at = 0;
    buf_init(&r->content, 1 << 20);
    r->p = new_parser(st);
    assert_non_null(r->p);
    for (size_t i = 0; i <= n_cuts; i++) {
        size_t end = i < n_cuts ? cuts[i] : len;
        assert_int_equal(toolcall_feed(r->p, text + at, end - at, &r->content), 0);
        at = end;
    }
    assert_int_equal(toolcall_finish(r->p, &r->content), 0);
    assert_int_equal(toolcall_feed(r->p, "x", 1, &r->content), -2 /* AS_EINVAL */);
}

static void same(const struct result *a, const struct result *b)
{
    assert_int_equal(a->content.len, b->content.len);
    if (a->content.len)
        assert_memory_equal(a->content.data, b->content.data, a->content.len);
    assert_int_equal(toolcall_count(a->p), toolcall_count(b->p));
    for (size_t i = 0; i < toolcall_count(a->p); i++) {
        const struct toolcall *x = toolcall_get(a->p, i), *y = toolcall_get(b->p, i);
        assert_string_equal(x->id, y->id);
        assert_string_equal(x->name, y->name);
        assert_string_equal(x->arguments, y->arguments);
    }
}

/*
 * Parses text whole, then split at every byte and byte by byte, checking all
 * agree; while streaming byte by byte, content must never show a marker that
 * the final result turned into a call. Returns the whole-input result.
 */
static struct result parse(enum toolcall_style st, const char *text)
{
    struct result whole;
    run_cuts(st, text, NULL, 0, &whole);
    size_t len = strlen(text);
    for (size_t cut = 1; cut < len; cut++) {
        struct result r;
        run_cuts(st, text, &cut, 1, &r);
        same(&whole, &r);
        result_free(&r);
    }
    size_t *cuts = calloc(len + 1, sizeof *cuts);
    for (size_t i = 0; i < len; i++)
        cuts[i] = i + 1;
    struct result r;
    run_cuts(st, text, cuts, len ? len - 1 : 0, &r);
    same(&whole, &r);
    result_free(&r);
    free(cuts);
    /* Streamed content is always a prefix of the final content. */
    struct buf c;
    buf_init(&c, 1 << 20);
    struct toolcall_parser *p = new_parser(st);
    for (size_t i = 0; i < len; i++) {
        assert_int_equal(toolcall_feed(p, text + i, 1, &c), 0);
        assert_true(c.len <= whole.content.len);
        if (c.len)
            assert_memory_equal(c.data, whole.content.data, c.len);
    }
    toolcall_parser_free(p);
    buf_free(&c);
    return whole;
}

static void expect_call(const struct result *r, size_t i, const char *name, const char *args)
{
    assert_true(i < toolcall_count(r->p));
    const struct toolcall *c = toolcall_get(r->p, i);
    assert_string_equal(c->name, name);
    assert_string_equal(c->arguments, args);
}

static const char *content(const struct result *r)
{
    return r->content.data ? r->content.data : "";
}

static void test_hermes(void **state)
{
    (void)state;
    struct result r =
        parse(TOOLCALL_HERMES, "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": "
                               "{\"city\": \"Paris\", \"unit\": \"c\"}}\n</tool_call>");
    assert_int_equal(toolcall_count(r.p), 1);
    expect_call(&r, 0, "get_weather", "{\"city\":\"Paris\",\"unit\":\"c\"}");
    assert_string_equal(content(&r), "");
    assert_int_equal(strncmp(toolcall_get(r.p, 0)->id, "call_", 5), 0);
    assert_int_equal(strlen(toolcall_get(r.p, 0)->id), 14);
    result_free(&r);

    r = parse(TOOLCALL_HERMES, "Let me check both.\n<tool_call>\n{\"name\": \"a\", \"arguments\": "
                               "{\"x\": [1, \"}\"]}}\n</tool_call>\n<tool_call>\n{\"name\": \"b\", "
                               "\"arguments\": {}}\n</tool_call>");
    assert_int_equal(toolcall_count(r.p), 2);
    expect_call(&r, 0, "a", "{\"x\":[1,\"}\"]}");
    expect_call(&r, 1, "b", "{}");
    assert_string_equal(content(&r), "Let me check both.");
    assert_string_not_equal(toolcall_get(r.p, 0)->id, toolcall_get(r.p, 1)->id);
    result_free(&r);

    /* EOS before </tool_call>: the complete JSON still counts. */
    r = parse(TOOLCALL_HERMES, "<tool_call>\n{\"name\": \"f\", \"arguments\": {\"a\": 1}}\n");
    assert_int_equal(toolcall_count(r.p), 1);
    expect_call(&r, 0, "f", "{\"a\":1}");
    result_free(&r);

    /* The closing tag quoted inside the arguments does not end the call. */
    r = parse(TOOLCALL_HERMES, "<tool_call>{\"name\": \"echo\", \"arguments\": {\"s\": "
                               "\"</tool_call> \\\"q\\\"\"}}</tool_call>");
    assert_int_equal(toolcall_count(r.p), 1);
    expect_call(&r, 0, "echo", "{\"s\":\"</tool_call> \\\"q\\\"\"}");
    assert_string_equal(content(&r), "");
    result_free(&r);

    /* Arguments given as a string pass through. */
    r = parse(TOOLCALL_HERMES,
              "<tool_call>{\"name\": \"f\", \"arguments\": \"{\\\"a\\\": 1}\"}</tool_call>");
    expect_call(&r, 0, "f", "{\"a\": 1}");
    result_free(&r);
}

static void test_malformed_is_content(void **state)
{
    (void)state;
    const char *bad[] = {
        "<tool_call>\n{\"name\": \"x\", \"arguments\": {\n</tool_call> tail",
        "<tool_call>{\"arguments\": {}}</tool_call>",           /* no name */
        "<tool_call>{\"name\": 3}</tool_call>",                 /* name not a string */
        "<tool_call>[]</tool_call>",                            /* no calls */
        "<tool_call>{\"name\": \"x\"} junk</tool_call>",        /* trailing junk */
        "a <tooltip> b <tool_cal",                              /* not a marker */
        "<tool_call>{\"name\": \"x\", \"arguments\": {\"a\": ", /* cut mid-JSON */
        "x < y and <<tool_call",
        "a \n<tool_call>bad</tool_call>\n", /* whitespace before a failed call kept */
        "<tool_call>{\"name\": \"f\", \"arguments\": \"not json\"}</tool_call>",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct result r = parse(TOOLCALL_HERMES, bad[i]);
        assert_int_equal(toolcall_count(r.p), 0);
        assert_string_equal(content(&r), bad[i]);
        result_free(&r);
    }
    /* A good call after a bad one still works. */
    struct result r = parse(TOOLCALL_HERMES, "<tool_call>nope</tool_call> and <tool_call>{\"name\":"
                                             "\"g\"}</tool_call>");
    assert_int_equal(toolcall_count(r.p), 1);
    expect_call(&r, 0, "g", "{}");
    assert_string_equal(content(&r), "<tool_call>nope</tool_call> and");
    result_free(&r);
}

static void test_llama3(void **state)
{
    (void)state;
    struct result r = parse(TOOLCALL_LLAMA3, "{\"name\": \"get_weather\", \"parameters\": "
                                             "{\"city\": \"Paris\"}}");
    assert_int_equal(toolcall_count(r.p), 1);
    expect_call(&r, 0, "get_weather", "{\"city\":\"Paris\"}");
    assert_string_equal(content(&r), "");
    result_free(&r);

    r = parse(TOOLCALL_LLAMA3, "<|python_tag|>{\"type\": \"function\", \"name\": \"f\", "
                               "\"parameters\": {\"q\": \"a;b\"}}; {\"name\": \"g\", "
                               "\"parameters\": {}}");
    assert_int_equal(toolcall_count(r.p), 2);
    expect_call(&r, 0, "f", "{\"q\":\"a;b\"}");
    expect_call(&r, 1, "g", "{}");
    assert_string_equal(content(&r), "");
    result_free(&r);

    r = parse(TOOLCALL_LLAMA3, "  \n{\"answer\": 42}");
    assert_int_equal(toolcall_count(r.p), 0);
    assert_string_equal(content(&r), "  \n{\"answer\": 42}");
    result_free(&r);

    /* A JSON answer streams once its first key shows it is no call. */
    struct buf c;
    buf_init(&c, 4096);
    struct toolcall_parser *p = toolcall_parser_new(TOOLCALL_LLAMA3, 1);
    assert_int_equal(toolcall_feed(p, " {\"answ", strlen(" {\"answ"), &c), 0);
    assert_int_equal(c.len, 0);
    assert_int_equal(toolcall_feed(p, "er\": 4", strlen("er\": 4"), &c), 0);
    assert_string_equal(c.data, " {\"answer\": 4");
    assert_int_equal(toolcall_feed(p, "2, \"name\": \"f\"}", strlen("2, \"name\": \"f\"}"), &c), 0);
    assert_string_equal(c.data, " {\"answer\": 42, \"name\": \"f\"}");
    assert_int_equal(toolcall_finish(p, &c), 0);
    assert_int_equal(toolcall_count(p), 0);
    toolcall_parser_free(p);
    buf_free(&c);

    r = parse(TOOLCALL_LLAMA3, "The call would be {\"name\": \"f\", \"parameters\": {}}");
    assert_int_equal(toolcall_count(r.p), 0);
    assert_string_equal(content(&r), "The call would be {\"name\": \"f\", \"parameters\": {}}");
    result_free(&r);

    r = parse(TOOLCALL_LLAMA3, "{\"name\": \"f\", \"parameters\": {}}\nDone.");
    assert_int_equal(toolcall_count(r.p), 1);
    assert_string_equal(content(&r), "\nDone.");
    result_free(&r);

    r = parse(TOOLCALL_LLAMA3, "{\"name\": \"f\", \"parameters\": {\"a\": \"}");
    assert_int_equal(toolcall_count(r.p), 0);
    assert_string_equal(content(&r), "{\"name\": \"f\", \"parameters\": {\"a\": \"}");
    result_free(&r);
}

static void test_mistral_granite(void **state)
{
    (void)state;
    struct result r = parse(TOOLCALL_MISTRAL, "[TOOL_CALLS][{\"name\": \"a\", \"arguments\": "
                                              "{\"x\": 1}}, {\"name\": \"b\", \"arguments\": {}, "
                                              "\"id\": \"abcDEF123\"}]");
    assert_int_equal(toolcall_count(r.p), 2);
    expect_call(&r, 0, "a", "{\"x\":1}");
    expect_call(&r, 1, "b", "{}");
    assert_int_equal(strlen(toolcall_get(r.p, 0)->id), 9);
    assert_string_equal(content(&r), "");
    result_free(&r);

    r = parse(TOOLCALL_MISTRAL, "[TOOL_CALLS] nope");
    assert_int_equal(toolcall_count(r.p), 0);
    assert_string_equal(content(&r), "[TOOL_CALLS] nope");
    result_free(&r);

    r = parse(TOOLCALL_MISTRAL, "[1, 2] [TOOL_CALL");
    assert_string_equal(content(&r), "[1, 2] [TOOL_CALL");
    result_free(&r);

    r = parse(TOOLCALL_GRANITE, "<|tool_call|>[{\"arguments\": {\"q\": \"s\"}, \"name\": "
                                "\"search\"}]");
    assert_int_equal(toolcall_count(r.p), 1);
    expect_call(&r, 0, "search", "{\"q\":\"s\"}");
    result_free(&r);
}

static void test_generic(void **state)
{
    (void)state;
    struct result r = parse(TOOLCALL_GENERIC, "{\"function\": {\"name\": \"f\", \"arguments\": "
                                              "{\"k\": true}}}");
    assert_int_equal(toolcall_count(r.p), 1);
    expect_call(&r, 0, "f", "{\"k\":true}");
    result_free(&r);

    r = parse(TOOLCALL_GENERIC, "ok <tool_call>{\"name\": \"g\", \"arguments\": {}}</tool_call>");
    assert_int_equal(toolcall_count(r.p), 1);
    assert_string_equal(content(&r), "ok");
    result_free(&r);

    r = parse(TOOLCALL_GENERIC, "Hello, world.");
    assert_int_equal(toolcall_count(r.p), 0);
    assert_string_equal(content(&r), "Hello, world.");
    result_free(&r);
}

/* parse() with a forced parser: name NULL for tool_choice "required". */
static struct result parse_forced(enum toolcall_style st, const char *name, const char *text)
{
    g_forced = 1;
    g_forced_name = name;
    struct result r = parse(st, text);
    g_forced = 0;
    g_forced_name = NULL;
    return r;
}

static void test_forced(void **state)
{
    (void)state;
    /* named: the text is the arguments, whatever its first key */
    struct result r =
        parse_forced(TOOLCALL_HERMES, "get_weather", "{\"city\": \"Paris\", \"unit\": \"c\"}");
    assert_int_equal(toolcall_count(r.p), 1);
    expect_call(&r, 0, "get_weather", "{\"city\":\"Paris\",\"unit\":\"c\"}");
    assert_memory_equal(toolcall_get(r.p, 0)->id, "call_", 5);
    assert_int_equal(strlen(toolcall_get(r.p, 0)->id), 14);
    assert_string_equal(content(&r), "");
    result_free(&r);

    r = parse_forced(TOOLCALL_MISTRAL, "f", " {}");
    assert_int_equal(toolcall_count(r.p), 1);
    expect_call(&r, 0, "f", "{}");
    assert_int_equal(strlen(toolcall_get(r.p, 0)->id), 9);
    result_free(&r);

    /* named but no object (cut by max_tokens, or an array): content, byte for byte */
    r = parse_forced(TOOLCALL_HERMES, "f", "{\"city\": \"Par");
    assert_int_equal(toolcall_count(r.p), 0);
    assert_string_equal(content(&r), "{\"city\": \"Par");
    result_free(&r);
    r = parse_forced(TOOLCALL_GENERIC, "f", "[1]");
    assert_int_equal(toolcall_count(r.p), 0);
    assert_string_equal(content(&r), "[1]");
    result_free(&r);

    /* required: one call or an array of calls, either arguments key */
    r = parse_forced(TOOLCALL_GENERIC, NULL,
                     "[{\"name\": \"a\", \"arguments\": {\"x\": 1}}, "
                     "{\"name\": \"b\", \"arguments\": {}}]");
    assert_int_equal(toolcall_count(r.p), 2);
    expect_call(&r, 0, "a", "{\"x\":1}");
    expect_call(&r, 1, "b", "{}");
    assert_string_equal(content(&r), "");
    result_free(&r);
    r = parse_forced(TOOLCALL_LLAMA3, NULL, "{\"name\": \"a\", \"parameters\": {\"q\": [true]}}");
    assert_int_equal(toolcall_count(r.p), 1);
    expect_call(&r, 0, "a", "{\"q\":[true]}");
    result_free(&r);
    r = parse_forced(TOOLCALL_GENERIC, NULL, "{\"name\": \"a\", \"argu");
    assert_int_equal(toolcall_count(r.p), 0);
    assert_string_equal(content(&r), "{\"name\": \"a\", \"argu");
    result_free(&r);
}

/* toolcall_forced_prompt's text and output shape for every style. */
static void test_forced_prompt(void **state)
{
    (void)state;
    static const struct {
        enum toolcall_style st;
        const char *name;
        int parallel;
        const char *prompt, *key;
        int as_array;
    } cases[] = {
        {TOOLCALL_HERMES, NULL, 1, "<tool_call>\n", "arguments", 0},
        {TOOLCALL_HERMES, "f", 1, "<tool_call>\n{\"name\": \"f\", \"arguments\": ", "arguments", 0},
        {TOOLCALL_LLAMA3, NULL, 1, "", "parameters", 0},
        {TOOLCALL_LLAMA3, "f", 0, "{\"name\": \"f\", \"parameters\": ", "parameters", 0},
        {TOOLCALL_MISTRAL, NULL, 1, "[TOOL_CALLS]", "arguments", 1},
        {TOOLCALL_MISTRAL, NULL, 0, "[TOOL_CALLS][", "arguments", 0},
        {TOOLCALL_MISTRAL, "f", 1, "[TOOL_CALLS][{\"name\": \"f\", \"arguments\": ", "arguments",
         0},
        {TOOLCALL_GRANITE, NULL, 1, "<|tool_call|>", "arguments", 1},
        {TOOLCALL_GRANITE, NULL, 0, "<|tool_call|>[", "arguments", 0},
        {TOOLCALL_GENERIC, NULL, 1, "", "arguments", 1},
        {TOOLCALL_GENERIC, NULL, 0, "", "arguments", 0},
        {TOOLCALL_GENERIC, "a\"b\n", 1, "{\"name\": \"a\\\"b\\n\", \"arguments\": ", "arguments",
         0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct buf b;
        buf_init(&b, 4096);
        assert_int_equal(buf_append_cstr(&b, "PROMPT"), 0);
        struct toolcall_form form;
        assert_int_equal(
            toolcall_forced_prompt(cases[i].st, cases[i].name, cases[i].parallel, &b, &form), 0);
        assert_true(b.len >= 6 && !memcmp(b.data, "PROMPT", 6));
        assert_int_equal(b.len - 6, strlen(cases[i].prompt));
        assert_memory_equal(b.data + 6, cases[i].prompt, b.len - 6);
        assert_string_equal(form.args_key, cases[i].key);
        assert_int_equal(form.as_array, cases[i].as_array);
        buf_free(&b);
    }
}

static void test_holding(void **state)
{
    (void)state;
    struct buf c;
    buf_init(&c, 4096);
    struct toolcall_parser *p = toolcall_parser_new(TOOLCALL_HERMES, 1);
    assert_int_equal(toolcall_feed(p, "Hi ", 3, &c), 0);
    assert_string_equal(c.data, "Hi");
    assert_true(toolcall_holding(p)); /* the space might precede a call */
    assert_int_equal(toolcall_feed(p, "<tool_ca", 8, &c), 0);
    assert_string_equal(c.data, "Hi");
    assert_true(toolcall_holding(p));
    assert_int_equal(toolcall_feed(p, "ll", 2, &c), 0);
    assert_string_equal(c.data, "Hi"); /* "<tool_call" still could become the marker */
    assert_int_equal(toolcall_feed(p, "!", 1, &c), 0);
    assert_string_equal(c.data, "Hi <tool_call!");
    assert_false(toolcall_holding(p));
    toolcall_parser_free(p);
    buf_free(&c);

    /* Too many calls: the excess stays content. */
    struct buf big;
    buf_init(&big, 1 << 20);
    for (int i = 0; i < TOOLCALL_MAX_CALLS + 1; i++)
        buf_printf(&big, "<tool_call>{\"name\":\"f%d\"}</tool_call>", i);
    buf_init(&c, 1 << 20);
    p = toolcall_parser_new(TOOLCALL_HERMES, 1);
    assert_int_equal(toolcall_feed(p, big.data, big.len, &c), 0);
    assert_int_equal(toolcall_finish(p, &c), 0);
    assert_int_equal(toolcall_count(p), TOOLCALL_MAX_CALLS);
    assert_non_null(strstr(c.data, "f64"));
    toolcall_parser_free(p);
    buf_free(&c);
    buf_free(&big);
}

static void test_detect(void **state)
{
    (void)state;
    assert_int_equal(toolcall_detect("x [TOOL_CALLS] y", 16), TOOLCALL_MISTRAL);
    assert_int_equal(toolcall_detect("plain", 5), TOOLCALL_GENERIC);
    const char *sh = getenv("AISTACK_SHARED");
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/testdata/chat-templates", sh ? sh : "../shared");
    if (access(dir, R_OK) != 0) {
        print_message("skip: %s absent\n", dir);
        skip();
    }
    static const struct {
        const char *file;
        enum toolcall_style st;
    } cases[] = {
        {"NousResearch-Hermes-2-Pro-Llama-3-8B-tool_use.jinja", TOOLCALL_HERMES},
        {"Qwen-Qwen2.5-7B-Instruct.jinja", TOOLCALL_HERMES},
        {"Qwen-Qwen3-0.6B.jinja", TOOLCALL_HERMES},
        {"meta-llama-Llama-3.1-8B-Instruct.jinja", TOOLCALL_LLAMA3},
        {"meta-llama-Llama-3.2-3B-Instruct.jinja", TOOLCALL_LLAMA3},
        {"mistralai-Mistral-Nemo-Instruct-2407.jinja", TOOLCALL_MISTRAL},
        {"ibm-granite-granite-3.3-2B-Instruct.jinja", TOOLCALL_GRANITE},
        {"google-gemma-2-2b-it.jinja", TOOLCALL_GENERIC},
        {"microsoft-Phi-3.5-mini-instruct.jinja", TOOLCALL_GENERIC},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char path[1200];
        snprintf(path, sizeof path, "%s/%s", dir, cases[i].file);
        FILE *f = fopen(path, "rb");
        assert_non_null(f);
        static char text[1 << 16];
        size_t n = fread(text, 1, sizeof text, f);
        fclose(f);
        enum toolcall_style got = toolcall_detect(text, n);
        if (got != cases[i].st)
            fail_msg("%s: %s", cases[i].file, toolcall_style_name(got));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hermes),        cmocka_unit_test(test_malformed_is_content),
        cmocka_unit_test(test_llama3),        cmocka_unit_test(test_mistral_granite),
        cmocka_unit_test(test_generic),       cmocka_unit_test(test_holding),
        cmocka_unit_test(test_detect),        cmocka_unit_test(test_forced),
        cmocka_unit_test(test_forced_prompt),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
