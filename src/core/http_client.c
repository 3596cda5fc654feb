/*
 * http_client.c - the public side of http_client.h: picks a transport for each
 * request (http_client_native.c for plain http:// without a proxy,
 * http_client_curl.c for everything else or when AISTACK_HTTP_CLIENT=curl) and
 * holds what both share (error names, header lookup and splitting). Not for:
 * any I/O; that is in the transports.
 */
#include "core/http_client.h"
#include "core/err.h"
#include "core/http_client_int.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct http_client {
    struct loop *loop;
    struct hcurl *curl;
    struct hnat *nat; /* NULL when AISTACK_HTTP_CLIENT=curl */
};

const char *http_client_strerror(enum http_client_err err)
{
    switch (err) {
    case HTTP_CLIENT_OK:
        return "ok";
    case HTTP_CLIENT_E_INVALID:
        return "invalid_request";
    case HTTP_CLIENT_E_RESOLVE:
        return "resolve_failed";
    case HTTP_CLIENT_E_CONNECT:
        return "connect_failed";
    case HTTP_CLIENT_E_CONNECT_TIMEOUT:
        return "connect_timeout";
    case HTTP_CLIENT_E_TLS:
        return "tls_error";
    case HTTP_CLIENT_E_SEND:
        return "send_failed";
    case HTTP_CLIENT_E_RECV:
        return "recv_failed";
    case HTTP_CLIENT_E_PROTOCOL:
        return "protocol_error";
    case HTTP_CLIENT_E_TIMEOUT:
        return "timeout";
    case HTTP_CLIENT_E_FIRST_BYTE_TIMEOUT:
        return "first_byte_timeout";
    case HTTP_CLIENT_E_IDLE_TIMEOUT:
        return "idle_timeout";
    case HTTP_CLIENT_E_TOO_LARGE:
        return "too_large";
    case HTTP_CLIENT_E_CANCELLED:
        return "cancelled";
    case HTTP_CLIENT_E_ABORTED:
        return "aborted";
    case HTTP_CLIENT_E_NOMEM:
        return "out_of_memory";
    case HTTP_CLIENT_E_INTERNAL:
        return "internal_error";
    }
    return "unknown";
}

int http_client_err_before_send(enum http_client_err err)
{
    return err == HTTP_CLIENT_E_RESOLVE || err == HTTP_CLIENT_E_CONNECT ||
           err == HTTP_CLIENT_E_CONNECT_TIMEOUT || err == HTTP_CLIENT_E_TLS;
}

const struct http_header *http_header_find(const struct http_header *h, size_t n, const char *name)
{
    size_t k = strlen(name);
    for (size_t i = 0; i < n; i++)
        if (h[i].name.len == k && strncasecmp(h[i].name.p, name, k) == 0)
            return &h[i];
    return NULL;
}

ssize_t http_client__parse_headers(const char *p, size_t len, struct http_header *out, size_t cap)
{
    const char *end = p + len;
    size_t n = 0;
    int first = 1;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *next = eol ? eol + 1 : end;
        const char *le = eol ? eol : end;
        if (le > p && le[-1] == '\r')
            le--;
        const char *colon = memchr(p, ':', (size_t)(le - p));
        /* skip the status line, obsolete folded continuations and lines without a name */
        if (!first && colon && colon > p && *p != ' ' && *p != '\t') {
            const char *v = colon + 1, *ve = le;
            while (v < ve && (*v == ' ' || *v == '\t'))
                v++;
            while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t' || ve[-1] == '\r'))
                ve--;
            if (n == cap)
                return -1;
            out[n].name = (struct str){p, (size_t)(colon - p)};
            out[n].value = (struct str){v, (size_t)(ve - v)};
            n++;
        }
        first = 0;
        p = next;
    }
    return (ssize_t)n;
}

struct http_client *http_client_new(struct loop *l)
{
    if (!l)
        return NULL;
    struct http_client *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->loop = l;
    const char *force = getenv("AISTACK_HTTP_CLIENT");
    c->curl = http_client__curl_new(l);
    if (!c->curl)
        goto fail;
    if (!(force && strcasecmp(force, "curl") == 0) && !(c->nat = http_client__nat_new(l)))
        goto fail;
    return c;
fail:
    http_client__curl_free(c->curl);
    free(c);
    return NULL;
}

void http_client_free(struct http_client *c)
{
    if (!c)
        return;
    http_client__nat_free(c->nat);
    http_client__curl_free(c->curl);
    free(c);
}

int http_client_submit(struct http_client *c, const struct http_client_request *r,
                       struct http_client_req **out)
{
    if (out)
        *out = NULL;
    if (!c || !r || !r->on_done)
        return AS_EINVAL;
    if (c->nat) {
        int rc = http_client__nat_submit(c->nat, r, out);
        if (rc <= 0)
            return rc;
    }
    return http_client__curl_submit(c->curl, r, out);
}

void http_client_cancel(struct http_client_req *req)
{
    if (!req)
        return;
    if (req->native)
        http_client__nat_cancel(req);
    else
        http_client__curl_cancel(req);
}

void http_client_resume(struct http_client_req *req)
{
    if (!req)
        return;
    if (req->native)
        http_client__nat_resume(req);
    else
        http_client__curl_resume(req);
}

void http_client_resume_body(struct http_client_req *req)
{
    if (!req)
        return;
    if (req->native)
        http_client__nat_resume_body(req);
    else
        http_client__curl_resume_body(req);
}

size_t http_client_active(const struct http_client *c)
{
    return http_client__curl_active(c->curl) + (c->nat ? http_client__nat_active(c->nat) : 0);
}

size_t http_client__idle_conns(const struct http_client *c)
{
    return c->nat ? http_client__nat_idle(c->nat) : 0;
}
