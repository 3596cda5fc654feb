/*
 * http_client_parse.c - the native HTTP client's response parser (see
 * http_client_int.h): status line, header fields, framing (Content-Length,
 * chunked with trailers, until close), in the caller's buffer.
 *
 * Upstream input is hostile by default: every length is bounded (head and
 * trailers by HTTP_CLIENT_MAX_HEADER_BYTES, fields by the caller's array,
 * chunk-size lines by HTTP_RESP_MAX_LINE, sizes by their digit count), anything
 * malformed in the framing is an error rather than a guess, and conflicting
 * framing (Transfer-Encoding with Content-Length, differing lengths) ends the
 * connection's reuse. Not for: requests, HTTP/2, content codings.
 */
#include "core/http_client_int.h"

#include <string.h>
#include <strings.h>

enum {
    HTTP_RESP_MAX_LINE = 4096, /* chunk-size line with its extensions */
    HTTP_RESP_MAX_1XX = 16,    /* interim heads before the final one */
};

enum {
    ST_HEAD,
    ST_LEN,
    ST_CHUNK_SIZE,
    ST_CHUNK_DATA,
    ST_CHUNK_CRLF,
    ST_TRAILER,
    ST_CLOSE, /* body until the connection closes */
    ST_END,   /* the response ended; DONE is reported */
    ST_FAILED,
};

void http_client__resp_init(struct http_client__resp *p, int no_body, struct http_header *hdrs,
                            size_t hcap)
{
    memset(p, 0, sizeof(*p));
    p->no_body = no_body;
    p->hdrs = hdrs;
    p->hcap = hcap;
    p->content_length = -1;
    p->state = ST_HEAD;
}

int http_client__resp_in_head(const struct http_client__resp *p)
{
    return p->state == ST_HEAD;
}

static int fail(struct http_client__resp *p, int ev, const char *why)
{
    p->state = ST_FAILED;
    p->err = why;
    return ev;
}

/* 1 if the comma-separated list v contains token t (case-insensitive). */
static int has_token(struct str v, const char *t)
{
    size_t k = strlen(t), i = 0;
    while (i < v.len) {
        while (i < v.len && (v.p[i] == ' ' || v.p[i] == '\t' || v.p[i] == ','))
            i++;
        size_t s = i;
        while (i < v.len && v.p[i] != ',')
            i++;
        size_t e = i;
        while (e > s && (v.p[e - 1] == ' ' || v.p[e - 1] == '\t'))
            e--;
        if (e - s == k && strncasecmp(v.p + s, t, k) == 0)
            return 1;
    }
    return 0;
}

/* 1 if the last coding of a Transfer-Encoding value is chunked. */
static int last_is_chunked(struct str v)
{
    size_t e = v.len;
    while (e > 0 && (v.p[e - 1] == ' ' || v.p[e - 1] == '\t'))
        e--;
    size_t s = e;
    while (s > 0 && v.p[s - 1] != ',')
        s--;
    while (s < e && (v.p[s] == ' ' || v.p[s] == '\t'))
        s++;
    return e - s == 7 && strncasecmp(v.p + s, "chunked", 7) == 0;
}

/* "HTTP/1.x NNN[ reason]": 0, or -1. */
static int parse_status_line(struct http_client__resp *p, const char *s, size_t n)
{
    if (n && s[n - 1] == '\r')
        n--;
    if (n < 12 || memcmp(s, "HTTP/1.", 7) != 0 || s[7] < '0' || s[7] > '9' || s[8] != ' ')
        return -1;
    for (int i = 9; i < 12; i++)
        if (s[i] < '0' || s[i] > '9')
            return -1;
    if (n > 12 && s[12] != ' ')
        return -1;
    p->minor = s[7] - '0';
    p->status = (s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0');
    return p->status >= 100 ? 0 : -1;
}

/* Decides how the body is framed once the final head is in. 0 or an event. */
static int set_framing(struct http_client__resp *p)
{
    const struct str *te = NULL, *cl = NULL;
    int ka_close = 0, ka_keep = 0;
    for (size_t i = 0; i < p->nhdrs; i++) {
        const struct http_header *h = &p->hdrs[i];
        if (h->name.len == 17 && strncasecmp(h->name.p, "Transfer-Encoding", 17) == 0) {
            te = &h->value; /* the last one decides; several mean a list */
        } else if (h->name.len == 14 && strncasecmp(h->name.p, "Content-Length", 14) == 0) {
            if (cl && (cl->len != h->value.len || memcmp(cl->p, h->value.p, cl->len) != 0))
                return fail(p, HTTP_RESP_ERROR, "conflicting Content-Length headers");
            cl = &h->value;
        } else if (h->name.len == 10 && strncasecmp(h->name.p, "Connection", 10) == 0) {
            ka_close |= has_token(h->value, "close");
            ka_keep |= has_token(h->value, "keep-alive");
        }
    }
    p->keep_alive = !ka_close && (p->minor >= 1 || ka_keep);
    if (cl) {
        uint64_t v = 0;
        if (cl->len == 0 || cl->len > 18)
            return fail(p, HTTP_RESP_ERROR, "invalid Content-Length");
        for (size_t i = 0; i < cl->len; i++) {
            if (cl->p[i] < '0' || cl->p[i] > '9')
                return fail(p, HTTP_RESP_ERROR, "invalid Content-Length");
            v = v * 10 + (uint64_t)(cl->p[i] - '0');
        }
        p->content_length = (int64_t)v;
    }
    if (p->no_body || p->status == 204 || p->status == 304) {
        p->content_length = -1;
        p->state = ST_END;
    } else if (te) {
        /* with both, Transfer-Encoding wins and the connection is not trusted again */
        if (cl)
            p->keep_alive = 0;
        p->content_length = -1;
        if (last_is_chunked(*te)) {
            p->state = ST_CHUNK_SIZE;
        } else {
            p->state = ST_CLOSE;
            p->keep_alive = 0;
        }
    } else if (cl) {
        p->left = (uint64_t)p->content_length;
        p->state = p->left ? ST_LEN : ST_END;
    } else {
        p->state = ST_CLOSE;
        p->keep_alive = 0;
    }
    return 0;
}

/* Looks for the blank line ending a head in buf[0..len). Its length, or 0. */
static size_t find_head_end(struct http_client__resp *p, const char *buf, size_t len)
{
    size_t i = p->scan;
    while (i < len) {
        const char *nl = memchr(buf + i, '\n', len - i);
        if (!nl)
            break;
        size_t e = (size_t)(nl - buf);
        /* a line from i to e: blank (\n or \r\n) ends the head, unless it is the first */
        if (i > 0 && (e == i || (e == i + 1 && buf[i] == '\r')))
            return e + 1;
        i = e + 1;
    }
    p->scan = i; /* the start of the unfinished line */
    return 0;
}

static int parse_head(struct http_client__resp *p, const char *buf, size_t len, size_t *used)
{
    for (;;) {
        size_t hl = find_head_end(p, buf, len);
        if (!hl) {
            if (len > HTTP_CLIENT_MAX_HEADER_BYTES)
                return fail(p, HTTP_RESP_TOO_LARGE, "response headers too large");
            return HTTP_RESP_MORE;
        }
        if (hl > HTTP_CLIENT_MAX_HEADER_BYTES)
            return fail(p, HTTP_RESP_TOO_LARGE, "response headers too large");
        if (memchr(buf, '\0', hl))
            return fail(p, HTTP_RESP_ERROR, "NUL byte in the response head");
        const char *eol = memchr(buf, '\n', hl);
        if (parse_status_line(p, buf, (size_t)(eol - buf)) != 0)
            return fail(p, HTTP_RESP_ERROR, "malformed response status line");
        p->scan = 0;
        if (p->status < 200) {
            if (p->status == 101)
                return fail(p, HTTP_RESP_ERROR, "unexpected 101 Switching Protocols");
            if (++p->extra > HTTP_RESP_MAX_1XX)
                return fail(p, HTTP_RESP_ERROR, "too many 1xx responses");
            *used += hl; /* 100 Continue & co: wait for the real one */
            buf += hl;
            len -= hl;
            continue;
        }
        ssize_t n = http_client__parse_headers(buf, hl, p->hdrs, p->hcap);
        if (n < 0)
            return fail(p, HTTP_RESP_TOO_LARGE, "too many response headers");
        p->nhdrs = (size_t)n;
        p->extra = 0;
        int ev = set_framing(p);
        if (ev)
            return ev;
        *used += hl;
        return HTTP_RESP_HEAD;
    }
}

/* A chunk-size line in buf[0..len): its length, 0 if incomplete, -1 if malformed. */
static long parse_chunk_size(struct http_client__resp *p, const char *buf, size_t len)
{
    size_t lim = len < HTTP_RESP_MAX_LINE ? len : HTTP_RESP_MAX_LINE;
    const char *nl = memchr(buf, '\n', lim);
    if (!nl)
        return len >= HTTP_RESP_MAX_LINE ? -1 : 0;
    size_t e = (size_t)(nl - buf), i = 0;
    uint64_t v = 0;
    for (; i < e; i++) {
        char ch = buf[i];
        int d = ch >= '0' && ch <= '9'   ? ch - '0'
                : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
                : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
                                         : -1;
        if (d < 0)
            break;
        if (i == 15)
            return -1; /* more than 2^60 */
        v = v * 16 + (uint64_t)d;
    }
    if (i == 0)
        return -1;
    while (i < e && (buf[i] == ' ' || buf[i] == '\t'))
        i++;
    /* extensions after ';' are ignored; a bare LF ends the line too */
    if (i < e && buf[i] != ';' && !(buf[i] == '\r' && i + 1 == e))
        return -1;
    p->left = v;
    return (long)(e + 1);
}

int http_client__resp_feed(struct http_client__resp *p, const char *buf, size_t len, size_t *used,
                           const char **data, size_t *dlen)
{
    *used = 0;
    *data = NULL;
    *dlen = 0;
    for (;;) {
        switch (p->state) {
        case ST_HEAD: {
            size_t u = 0;
            int ev = parse_head(p, buf, len, &u);
            *used += u;
            return ev;
        }
        case ST_LEN:
        case ST_CHUNK_DATA:
            if (!len)
                return HTTP_RESP_MORE;
            *data = buf;
            *dlen = (uint64_t)len < p->left ? len : (size_t)p->left;
            return HTTP_RESP_DATA;
        case ST_CLOSE:
            if (!len)
                return HTTP_RESP_MORE;
            *data = buf;
            *dlen = len;
            return HTTP_RESP_DATA;
        case ST_CHUNK_SIZE: {
            long n = parse_chunk_size(p, buf, len);
            if (n < 0)
                return fail(p, HTTP_RESP_ERROR, "malformed chunk size");
            if (n == 0)
                return HTTP_RESP_MORE;
            *used += (size_t)n;
            buf += n;
            len -= (size_t)n;
            p->state = p->left ? ST_CHUNK_DATA : ST_TRAILER;
            p->extra = 0;
            break;
        }
        case ST_CHUNK_CRLF: {
            if (!len)
                return HTTP_RESP_MORE;
            size_t n = buf[0] == '\n' ? 1 : 2;
            if (n == 2 && len < 2)
                return HTTP_RESP_MORE;
            if (n == 2 && (buf[0] != '\r' || buf[1] != '\n'))
                return fail(p, HTTP_RESP_ERROR, "missing CRLF after a chunk");
            *used += n;
            buf += n;
            len -= n;
            p->state = ST_CHUNK_SIZE;
            break;
        }
        case ST_TRAILER: {
            const char *nl = memchr(buf, '\n', len);
            size_t n = nl ? (size_t)(nl - buf) + 1 : len;
            if (p->extra + n > HTTP_CLIENT_MAX_HEADER_BYTES)
                return fail(p, HTTP_RESP_TOO_LARGE, "response trailers too large");
            if (!nl)
                return HTTP_RESP_MORE;
            p->extra += n;
            *used += n;
            buf += n;
            len -= n;
            if (n == 1 || (n == 2 && nl[-1] == '\r'))
                p->state = ST_END;
            break;
        }
        case ST_END:
            return HTTP_RESP_DONE;
        default:
            return fail(p, HTTP_RESP_ERROR, p->err ? p->err : "parser used after an error");
        }
    }
}

void http_client__resp_consume(struct http_client__resp *p, size_t n)
{
    if (p->state == ST_LEN || p->state == ST_CHUNK_DATA) {
        p->left -= n < p->left ? n : p->left;
        if (!p->left)
            p->state = p->state == ST_LEN ? ST_END : ST_CHUNK_CRLF;
    }
}

int http_client__resp_eof(struct http_client__resp *p)
{
    if (p->state == ST_CLOSE || p->state == ST_END) {
        p->state = ST_END;
        return HTTP_RESP_DONE;
    }
    if (p->state != ST_FAILED)
        fail(p, HTTP_RESP_ERROR, "connection closed before the end of the response");
    return HTTP_RESP_ERROR;
}
