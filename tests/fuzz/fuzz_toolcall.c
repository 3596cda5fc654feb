/*
 * fuzz_toolcall.c - tool call extraction on hostile text, fed in random chunks.
 *
 * Input: byte 0 picks the style (% 5) and the parser (/ 5 % 3: free text,
 * a forced call of any tool, a forced call of function "f"), byte 1 seeds
 * the chunk sizes, the rest is the generated text. Properties checked: no crash or hang; chunked
 * feeding gives the same content and calls as one feed; when no call comes out the content is
 * exactly the input; every call has a name, an id, and arguments that parse as a JSON object;
 * content never grows past the input's length.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/buf.h"
#include "engine/toolcall.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct toolcall_parser *run(enum toolcall_style st, int mode, const char *t, size_t n,
                                   unsigned seed, struct buf *content)
{
    struct toolcall_parser *p = mode == 0
                                    ? toolcall_parser_new(st, 7)
                                    : toolcall_parser_new_forced(st, mode == 2 ? "f" : NULL, 7);
    if (!p)
        abort();
    size_t at = 0;
    while (at < n) {
        size_t k = seed ? 1 + (seed = seed * 1103515245u + 12345u, (seed >> 16) % 17) : n - at;
        if (k > n - at)
            k = n - at;
        if (toolcall_feed(p, t + at, k, content))
            abort();
        at += k;
    }
    if (toolcall_finish(p, content))
        abort();
    return p;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    enum toolcall_style st = (enum toolcall_style)(data[0] % 5);
    int mode = data[0] / 5 % 3;
    unsigned seed = data[1] | 1u;
    const char *t = (const char *)data + 2;
    size_t n = size - 2;
    struct buf a, b;
    buf_init(&a, 1 << 24);
    buf_init(&b, 1 << 24);
    struct toolcall_parser *p = run(st, mode, t, n, 0, &a);
    struct toolcall_parser *q = run(st, mode, t, n, seed, &b);
    if (a.len != b.len || (a.len && memcmp(a.data, b.data, a.len)) || a.len > n)
        abort();
    if (toolcall_count(p) != toolcall_count(q))
        abort();
    if (toolcall_count(p) == 0 && (a.len != n || (n && memcmp(a.data, t, n))))
        abort();
    for (size_t i = 0; i < toolcall_count(p); i++) {
        const struct toolcall *x = toolcall_get(p, i), *y = toolcall_get(q, i);
        if (strcmp(x->name, y->name) || strcmp(x->arguments, y->arguments) || strcmp(x->id, y->id))
            abort();
        if (!x->name[0] || strlen(x->id) < 9 || (mode == 2 && strcmp(x->name, "f")))
            abort();
        cJSON *j = cJSON_Parse(x->arguments);
        if (!cJSON_IsObject(j))
            abort();
        cJSON_Delete(j);
    }
    toolcall_parser_free(p);
    toolcall_parser_free(q);
    buf_free(&a);
    buf_free(&b);
    return 0;
}
