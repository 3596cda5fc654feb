/* sse.c - incremental Server-Sent Events parser (see sse.h). */
#include "core/sse.h"
#include "core/err.h"

#include <string.h>

static const char sse_bom[3] = {'\xEF', '\xBB', '\xBF'};

void sse_parser_init(struct sse_parser *p, size_t max_line, size_t max_event, sse_event_cb cb,
                     void *ud)
{
    memset(p, 0, sizeof(*p));
    p->cb = cb;
    p->ud = ud;
    p->max_line = max_line ? max_line : SSE_DEFAULT_MAX_LINE;
    buf_init(&p->line, p->max_line);
    buf_init(&p->data, max_event ? max_event : SSE_DEFAULT_MAX_EVENT);
    buf_init(&p->type, p->max_line);
    buf_init(&p->id, p->max_line);
    p->retry_ms = -1;
}

void sse_parser_free(struct sse_parser *p)
{
    if (!p)
        return;
    buf_free(&p->line);
    buf_free(&p->data);
    buf_free(&p->type);
    buf_free(&p->id);
}

static void sse__clear_event(struct sse_parser *p)
{
    buf_reset(&p->data);
    buf_reset(&p->type);
    p->have_data = 0;
    p->retry_ms = -1;
    p->mid_event = 0;
}

void sse_parser_reset(struct sse_parser *p)
{
    sse__clear_event(p);
    buf_reset(&p->line);
    buf_reset(&p->id);
    p->skip_lf = 0;
    p->bom_state = 0;
    p->err = 0;
}

static int sse__dispatch(struct sse_parser *p)
{
    if (!p->have_data) {
        /* The spec drops events without data (e.g. a lone `event:` line). */
        sse__clear_event(p);
        return 0;
    }
    struct sse_event ev = {
        .type = p->type.data ? p->type.data : "",
        .type_len = p->type.len,
        .data = p->data.data ? p->data.data : "",
        .data_len = p->data.len,
        .id = p->id.data ? p->id.data : "",
        .id_len = p->id.len,
        .retry_ms = p->retry_ms,
    };
    int rc = p->cb ? p->cb(p->ud, &ev) : 0;
    sse__clear_event(p);
    return rc;
}

static int sse__field_is(const char *f, size_t n, const char *name)
{
    size_t k = strlen(name);
    return n == k && memcmp(f, name, k) == 0;
}

/* Parses a retry value: ASCII digits only, else ignored (-1). */
static long sse__parse_retry(const char *v, size_t n)
{
    if (n == 0 || n > 9)
        return -1;
    long r = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return -1;
        r = r * 10 + (v[i] - '0');
    }
    return r;
}

/* Handles one complete line (without its line end). A limit error is made sticky in p->err. */
static int sse__line(struct sse_parser *p, const char *l, size_t n)
{
    if (n == 0)
        return sse__dispatch(p);
    if (l[0] == ':')
        return 0; /* comment, e.g. a keep-alive ping */
    p->mid_event = 1;
    const char *colon = memchr(l, ':', n);
    size_t flen = colon ? (size_t)(colon - l) : n;
    const char *v = colon ? colon + 1 : l + n;
    size_t vlen = (size_t)(l + n - v);
    if (vlen && v[0] == ' ') {
        v++;
        vlen--;
    }
    if (sse__field_is(l, flen, "data")) {
        if (p->have_data && buf_append_char(&p->data, '\n'))
            return p->err = AS_ERANGE;
        if (buf_append(&p->data, v, vlen))
            return p->err = AS_ERANGE;
        p->have_data = 1;
    } else if (sse__field_is(l, flen, "event")) {
        buf_reset(&p->type);
        if (buf_append(&p->type, v, vlen))
            return p->err = AS_ERANGE;
    } else if (sse__field_is(l, flen, "id")) {
        if (!memchr(v, '\0', vlen)) {
            buf_reset(&p->id);
            if (buf_append(&p->id, v, vlen))
                return p->err = AS_ERANGE;
        }
    } else if (sse__field_is(l, flen, "retry")) {
        long r = sse__parse_retry(v, vlen);
        if (r >= 0)
            p->retry_ms = r;
    }
    /* other fields are ignored, as the spec says */
    return 0;
}

/* Index of the first '\r' or '\n' in s[0..n), or n. */
static size_t sse__find_eol(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] == '\n' || s[i] == '\r')
            return i;
    return n;
}

int sse_parser_feed(struct sse_parser *p, const char *s, size_t n)
{
    size_t i = 0;
    int rc;
    if (p->err)
        return p->err;
    while (p->bom_state < 3 && i < n) {
        if (s[i] == sse_bom[p->bom_state]) {
            p->bom_state++;
            i++;
            continue;
        }
        /* Not a BOM after all: the bytes matched so far are line content. */
        if (buf_append(&p->line, sse_bom, (size_t)p->bom_state))
            goto range;
        p->bom_state = 3;
    }
    if (p->skip_lf && i < n) {
        if (s[i] == '\n')
            i++;
        p->skip_lf = 0;
    }
    while (i < n) {
        size_t j = i + sse__find_eol(s + i, n - i);
        if (j == n) {
            if (buf_append(&p->line, s + i, n - i))
                goto range;
            return 0;
        }
        if (p->line.len == 0) {
            if (j - i > p->max_line)
                goto range;
            rc = sse__line(p, s + i, j - i);
        } else {
            if (buf_append(&p->line, s + i, j - i))
                goto range;
            rc = sse__line(p, p->line.data, p->line.len);
            buf_reset(&p->line);
        }
        if (p->err)
            return p->err;
        if (s[j] == '\r') {
            if (j + 1 < n) {
                if (s[j + 1] == '\n')
                    j++;
            } else {
                p->skip_lf = 1;
            }
        }
        i = j + 1;
        if (rc)
            return rc;
    }
    return 0;
range:
    p->err = AS_ERANGE;
    return p->err;
}

int sse_parser_finish(struct sse_parser *p)
{
    if (p->err)
        return p->err;
    int partial = p->line.len > 0 || p->mid_event || (p->bom_state > 0 && p->bom_state < 3);
    sse__clear_event(p);
    buf_reset(&p->line);
    p->skip_lf = 0;
    p->bom_state = 0;
    return partial ? AS_EFORMAT : 0;
}
