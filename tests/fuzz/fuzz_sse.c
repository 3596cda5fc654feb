/*
 * fuzz_sse.c - libFuzzer target for the SSE parser (src/core/sse.c).
 *
 * Differential: the input is parsed once in one piece and once split into
 * pieces whose sizes come from the input's first bytes; both must produce the
 * same events and the same return codes. Small limits make the bound checks run.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/sse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int fz_cb(void *ud, const struct sse_event *ev)
{
    struct buf *b = ud;
    /* type and data may hold NULs (the lengths rule); an id never does */
    if (strlen(ev->id) != ev->id_len || ev->type[ev->type_len] || ev->data[ev->data_len])
        abort();
    buf_printf(b, "[%zu:", ev->type_len);
    buf_append(b, ev->type, ev->type_len);
    buf_printf(b, "|%zu:", ev->data_len);
    buf_append(b, ev->data, ev->data_len);
    buf_printf(b, "|%zu:", ev->id_len);
    buf_append(b, ev->id, ev->id_len);
    buf_printf(b, "|%ld]", ev->retry_ms);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4)
        return 0;
    uint8_t step_seed = data[0];
    size_t max_line = 1 + data[1] % 64, max_event = 1 + (size_t)data[2] * 2;
    data += 3;
    size -= 3;

    struct buf ea, eb;
    buf_init(&ea, 1 << 24);
    buf_init(&eb, 1 << 24);
    struct sse_parser a, b;
    sse_parser_init(&a, max_line, max_event, fz_cb, &ea);
    sse_parser_init(&b, max_line, max_event, fz_cb, &eb);

    int ra = sse_parser_feed(&a, (const char *)data, size);
    int fa = sse_parser_finish(&a);

    int rb = 0;
    size_t off = 0, k = 0;
    while (off < size && rb == 0) {
        size_t n = 1 + ((step_seed >> (k % 8)) & 7) + (k % 3);
        k++;
        if (n > size - off)
            n = size - off;
        rb = sse_parser_feed(&b, (const char *)data + off, n);
        off += n;
    }
    int fb = sse_parser_finish(&b);

    if (ra != rb || fa != fb || ea.len != eb.len || (ea.len && memcmp(ea.data, eb.data, ea.len)))
        abort();

    sse_parser_free(&a);
    sse_parser_free(&b);
    buf_free(&ea);
    buf_free(&eb);
    return 0;
}
