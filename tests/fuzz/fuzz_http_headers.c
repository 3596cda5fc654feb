/*
 * fuzz_http_headers.c - libFuzzer target for the HTTP client's response-head
 * splitter (http_client__parse_headers), which reads what upstream servers send.
 * Checks that every field lies inside the input, names are non-empty and free of
 * ':' and line ends, values are trimmed, and the cap is honoured.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/http_client.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct http_header h[16];
    if (size < 1)
        return 0;
    size_t cap = data[0] % 17;
    const char *p = (const char *)data + 1;
    size_t len = size - 1;
    ssize_t n = http_client__parse_headers(p, len, h, cap);
    if (n < -1 || n > (ssize_t)cap)
        abort();
    for (ssize_t i = 0; i < n; i++) {
        const struct str *nm = &h[i].name, *v = &h[i].value;
        if (nm->len == 0 || nm->p < p || nm->p + nm->len > p + len || v->p < p ||
            v->p + v->len > p + len)
            abort();
        if (memchr(nm->p, ':', nm->len) || memchr(nm->p, '\n', nm->len) ||
            memchr(v->p, '\n', v->len) || nm->p[0] == ' ' || nm->p[0] == '\t')
            abort();
        if (v->len && (v->p[0] == ' ' || v->p[0] == '\t' || v->p[v->len - 1] == ' ' ||
                       v->p[v->len - 1] == '\t' || v->p[v->len - 1] == '\r'))
            abort();
        if (http_header_find(h, (size_t)n, "") != NULL)
            abort(); /* names are never empty */
    }
    return 0;
}
