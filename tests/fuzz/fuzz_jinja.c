/*
 * fuzz_jinja.c - libFuzzer target for the Jinja interpreter (engine/jinja.h):
 * the input is template source, rendered against a fixed chat-like context
 * (messages, tools, tool calls, namespace-friendly values) with tight limits.
 * Checks that parsing and rendering never crash, hang or leak, that errors
 * carry a message, and that output respects max_output.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "engine/jinja.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char ctx_json[] =
    "{\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},"
    "{\"role\":\"user\",\"content\":\"Hi \\u00e9 <think>x</think>\"},"
    "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"call12345\","
    "\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":{\"a\":1,\"b\":[true,"
    "null,0.5]}}}]},{\"role\":\"tool\",\"tool_call_id\":\"call12345\",\"content\":\"ok\"}],"
    "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"description\":\"d\","
    "\"parameters\":{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\"}}}}}],"
    "\"add_generation_prompt\":true,\"bos_token\":\"<s>\",\"eos_token\":\"</s>\","
    "\"n\":7,\"s\":\"text\",\"l\":[3,1,2],\"d\":{\"k\":\"v\",\"n\":null}}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static cJSON *ctx;
    struct jinja_error err;
    struct jinja_opts opts = {.now = 1721990400,
                              .max_output = 1 << 16,
                              .max_memory = 8u << 20,
                              .max_work = 200000,
                              .max_depth = 16};
    struct buf out;
    if (!ctx && !(ctx = cJSON_Parse(ctx_json)))
        abort();
    struct jinja_template *t = jinja_template_parse((const char *)data, size, &err);
    if (!t) {
        if (err.msg[0] == '\0')
            abort();
        return 0;
    }
    buf_init(&out, 1 << 20);
    int rc = jinja_render(t, ctx, &opts, &out, &err);
    if (rc != 0 && err.msg[0] == '\0')
        abort();
    if (rc == 0 && out.len > opts.max_output)
        abort();
    buf_free(&out);
    jinja_template_free(t);
    return 0;
}
