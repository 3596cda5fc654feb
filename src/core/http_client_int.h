/*
 * http_client_int.h - what the two transports of http_client.h share, for
 * http_client.c (the dispatcher), http_client_curl.c, http_client_native.c, and
 * the tests and fuzz targets of the native response parser. Not a public API.
 */
#ifndef AISTACK_CORE_HTTP_CLIENT_INT_H
#define AISTACK_CORE_HTTP_CLIENT_INT_H

#include <stddef.h>
#include <stdint.h>

#include "core/http_client.h"

/* The first member of each transport's request: the handle users hold. */
struct http_client_req {
    int native; /* 1: http_client_native.c, 0: http_client_curl.c */
};

struct hcurl;
struct hnat;

/* Idle keep-alive connections in the client's native pool (tests). */
size_t http_client__idle_conns(const struct http_client *c);

/* ---- libcurl transport (http_client_curl.c) -------------------------------------- */
struct hcurl *http_client__curl_new(struct loop *l);
void http_client__curl_free(struct hcurl *c);
int http_client__curl_submit(struct hcurl *c, const struct http_client_request *q,
                             struct http_client_req **out);
void http_client__curl_cancel(struct http_client_req *r);
void http_client__curl_resume(struct http_client_req *r);
void http_client__curl_resume_body(struct http_client_req *r);
size_t http_client__curl_active(const struct hcurl *c);

/* ---- native plain-HTTP/1.1 transport (http_client_native.c) ------------------------ */
struct hnat *http_client__nat_new(struct loop *l);
void http_client__nat_free(struct hnat *n);
/*
 * Like http_client_submit(), or 1 when the request is not for this transport (not
 * http://, a proxy, a URL it does not parse): then nothing happened and the caller
 * hands it to libcurl.
 */
int http_client__nat_submit(struct hnat *n, const struct http_client_request *q,
                            struct http_client_req **out);
void http_client__nat_cancel(struct http_client_req *r);
void http_client__nat_resume(struct http_client_req *r);
void http_client__nat_resume_body(struct http_client_req *r);
size_t http_client__nat_active(const struct hnat *n);
/* Idle keep-alive connections the native transport holds (tests). */
size_t http_client__nat_idle(const struct hnat *n);

/* ---- the native transport's response parser ---------------------------------------- */

/* What http_client__resp_feed() found. */
enum {
    HTTP_RESP_MORE = 0,      /* needs more bytes */
    HTTP_RESP_HEAD = 1,      /* final response head parsed: status, hdrs, framing */
    HTTP_RESP_DATA = 2,      /* a piece of the body at *data */
    HTTP_RESP_DONE = 3,      /* the response ended */
    HTTP_RESP_ERROR = 4,     /* malformed (p->err says why) */
    HTTP_RESP_TOO_LARGE = 5, /* head or trailers past their limits (p->err) */
};

/*
 * An incremental HTTP/1.x response parser that works in the caller's buffer: it
 * keeps no bytes itself, so a head must lie whole in the buffer (at most
 * HTTP_CLIENT_MAX_HEADER_BYTES) before it is reported, and a chunk-size or trailer
 * line must too (both bounded). Bodies: Content-Length, chunked (trailers read and
 * dropped), or until the connection closes; none for HEAD, 1xx, 204 and 304.
 */
struct http_client__resp {
    /* set by http_client__resp_init() */
    int no_body;              /* the request was HEAD */
    struct http_header *hdrs; /* where the head's fields go */
    size_t hcap;              /* room in hdrs */
    /* valid after HTTP_RESP_HEAD; hdrs point into the fed buffer */
    int status;
    int minor; /* HTTP/1.<minor> */
    size_t nhdrs;
    int keep_alive;         /* the connection may carry another request afterwards */
    int64_t content_length; /* -1 when there is none or it does not frame the body */
    /* internal */
    int state;
    uint64_t left; /* body or chunk bytes still to come */
    size_t scan;   /* head bytes already searched for the blank line */
    size_t extra;  /* 1xx heads skipped / trailer bytes read */
    const char *err;
};

void http_client__resp_init(struct http_client__resp *p, int no_body, struct http_header *hdrs,
                            size_t hcap);
/*
 * Parses buf[0..len). Returns an HTTP_RESP_* event; *used is the number of bytes
 * that are consumed as framing before it (the caller drops them from its buffer).
 * For HTTP_RESP_DATA the body piece is (*data, *dlen), at buf + *used: call
 * http_client__resp_consume() with the bytes taken; bytes not taken come again
 * from the next call.
 */
int http_client__resp_feed(struct http_client__resp *p, const char *buf, size_t len, size_t *used,
                           const char **data, size_t *dlen);
/* Marks n bytes of the last HTTP_RESP_DATA piece as taken. */
void http_client__resp_consume(struct http_client__resp *p, size_t n);
/* The peer closed: HTTP_RESP_DONE when that ends the response, else HTTP_RESP_ERROR. */
int http_client__resp_eof(struct http_client__resp *p);
/* 1 before any byte of the final response head was parsed (nothing but 1xx heads). */
int http_client__resp_in_head(const struct http_client__resp *p);

#endif
