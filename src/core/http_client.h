/*
 * http_client.h - asynchronous HTTP/1.1 client driven by a struct loop (see loop.h).
 *
 * For service-to-service calls and hosted APIs over TLS, above all the gateway's
 * proxying of OpenAI-compatible requests: response headers are delivered before
 * the body (decide on 429/5xx before forwarding anything), the body is streamed
 * chunk by chunk as it arrives (SSE), with backpressure (pause/resume), and the
 * request body can be streamed too. Connections are kept alive and reused.
 * Every request ends with exactly one on_done call carrying a clear error
 * category (connect, timeout, TLS, too large, ...).
 *
 * Two transports behind the one API, chosen per request:
 *   - native (http_client_native.c): plain http:// without a proxy (proxy NULL,
 *     and proxy_from_env 0 or no http_proxy/all_proxy set). Written for the
 *     gateway's hot path, like nginx's upstream keepalive: one object per pooled
 *     connection, per client and host:port (at most HTTP_CLIENT_MAX_IDLE_CONNS
 *     idle, each closed after 60 s idle or when the server closes it), the
 *     request sent with one system call, the response parsed in the connection's
 *     buffer, nothing allocated per request in steady state. A request whose
 *     reused connection turns out closed before any response byte is sent again
 *     once on a new connection, unless its body comes from read_body. Host names
 *     are resolved with a blocking getaddrinfo() on the loop's thread and cached
 *     for 30 s (numeric hosts are used as they are).
 *   - libcurl (http_client_curl.c, the multi interface): https://, proxies, and
 *     URLs the native transport does not take (credentials in the URL, unusual
 *     host names); and every request when the environment variable
 *     AISTACK_HTTP_CLIENT=curl is set when the client is made (for A/B checks).
 * Differences a caller may notice: the native transport sends no default
 * Content-Type for a POST body (curl sends application/x-www-form-urlencoded),
 * and its error messages are its own; error categories are the same.
 *
 * Threads: one client per loop (per worker thread). Every function except
 * http_client_new() must be called on the loop's thread; callbacks run there
 * too. To start a request from another thread, loop_post() a function that
 * calls http_client_submit() on the loop's thread (everything the request
 * borrows must stay valid until then). A proxy handler on an http_server worker
 * uses the client made for that worker's loop (http_server_worker_loop()): the
 * upstream request never changes threads.
 *
 * Proxies: by default the *_proxy environment variables are ignored (loopback and
 * cluster traffic must never go through a proxy by accident); set
 * http_client_request.proxy to a URL, or proxy_from_env to honour the environment.
 * Redirects are not followed. Not for: HTTP/2, cookies, authentication schemes
 * other than headers the caller sets.
 */
#ifndef AISTACK_CORE_HTTP_CLIENT_H
#define AISTACK_CORE_HTTP_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/buf.h"

struct loop;
struct http_client;
struct http_client_req;

/* Why a request ended. Stable names via http_client_strerror(). */
enum http_client_err {
    HTTP_CLIENT_OK = 0,                    /* a complete response arrived (any HTTP status) */
    HTTP_CLIENT_E_INVALID = 1,             /* bad URL, method or options */
    HTTP_CLIENT_E_RESOLVE = 2,             /* host name could not be resolved */
    HTTP_CLIENT_E_CONNECT = 3,             /* TCP connect refused or unreachable */
    HTTP_CLIENT_E_CONNECT_TIMEOUT = 4,     /* connect (and TLS handshake) took too long */
    HTTP_CLIENT_E_TLS = 5,                 /* TLS handshake or certificate verification */
    HTTP_CLIENT_E_SEND = 6,                /* failed sending the request */
    HTTP_CLIENT_E_RECV = 7,                /* connection closed or reset before the end */
    HTTP_CLIENT_E_PROTOCOL = 8,            /* malformed HTTP response */
    HTTP_CLIENT_E_TIMEOUT = 9,             /* total timeout */
    HTTP_CLIENT_E_FIRST_BYTE_TIMEOUT = 10, /* no response byte within first_byte_timeout_ms */
    HTTP_CLIENT_E_IDLE_TIMEOUT = 11,       /* response stalled longer than idle_timeout_ms */
    HTTP_CLIENT_E_TOO_LARGE = 12,          /* response body or headers past their limit */
    HTTP_CLIENT_E_CANCELLED = 13,          /* http_client_cancel() or http_client_free() */
    HTTP_CLIENT_E_ABORTED = 14,            /* a callback returned HTTP_CLIENT_ABORT */
    HTTP_CLIENT_E_NOMEM = 15,              /* out of memory */
    HTTP_CLIENT_E_INTERNAL = 16,           /* anything else (see message) */
};

/* Short stable name of an error, e.g. "connect_timeout". Never NULL. */
const char *http_client_strerror(enum http_client_err err);

/*
 * True for errors where the request surely never reached the server's
 * application (resolve, connect, connect timeout, TLS): always safe to retry
 * elsewhere, even for non-idempotent requests.
 */
int http_client_err_before_send(enum http_client_err err);

/* One response header. Borrowed: valid only during the on_headers call. */
struct http_header {
    struct str name;  /* as sent, e.g. "Retry-After" */
    struct str value; /* surrounding whitespace removed */
};

/* Case-insensitive lookup of a header; the first match or NULL. */
const struct http_header *http_header_find(const struct http_header *h, size_t n, const char *name);

/* Return values of the on_headers / on_data callbacks. */
enum {
    HTTP_CLIENT_CONTINUE = 0, /* go on */
    HTTP_CLIENT_PAUSE = 1,  /* on_data only: not consumed; redelivered after http_client_resume() */
    HTTP_CLIENT_ABORT = -1, /* stop the request; on_done gets HTTP_CLIENT_E_ABORTED */
};

/* Return values of the read_body callback other than a byte count. */
enum {
    HTTP_CLIENT_READ_PAUSE = -1, /* no data yet; call http_client_resume_body() when there is */
    HTTP_CLIENT_READ_ABORT = -2, /* stop the request; on_done gets HTTP_CLIENT_E_ABORTED */
};

/* The outcome of a request, borrowed during on_done. */
struct http_client_result {
    enum http_client_err err;
    int status;          /* HTTP status, 0 if no response headers arrived */
    const char *message; /* human-readable detail, never NULL ("" when ok) */
    const char *body;    /* buffered body when on_data was NULL ("" otherwise) */
    size_t body_len;
    uint64_t bytes_received; /* response body bytes delivered */
    uint64_t connect_us;     /* connect (+ TLS) time; 0 when the connection was reused */
    uint64_t first_byte_us;  /* submit to first response byte, 0 if none arrived */
    uint64_t total_us;       /* submit to end */
    int reused;              /* 1 if an existing keep-alive connection was used */
};

/*
 * Called once when the final response headers are complete (1xx responses are
 * skipped), before any body byte. h[0..n) borrowed for the call. Return
 * HTTP_CLIENT_CONTINUE or HTTP_CLIENT_ABORT.
 */
typedef int (*http_client_headers_cb)(struct http_client_req *req, int status,
                                      const struct http_header *h, size_t n, void *ud);
/*
 * Called with each piece of the response body as it arrives (data borrowed for
 * the call). Return HTTP_CLIENT_CONTINUE, HTTP_CLIENT_PAUSE or HTTP_CLIENT_ABORT.
 */
typedef int (*http_client_data_cb)(struct http_client_req *req, const char *data, size_t len,
                                   void *ud);
/*
 * Fills buf[0..cap) with the next request body bytes. Returns the count, 0 at
 * the end of the body, HTTP_CLIENT_READ_PAUSE or HTTP_CLIENT_READ_ABORT.
 */
typedef long (*http_client_read_cb)(struct http_client_req *req, char *buf, size_t cap, void *ud);
/* Called exactly once per submitted request; req is freed when it returns. */
typedef void (*http_client_done_cb)(struct http_client_req *req,
                                    const struct http_client_result *res, void *ud);

/* Defaults used when a request leaves a field 0. */
enum {
    HTTP_CLIENT_DEFAULT_CONNECT_TIMEOUT_MS = 10000,
    HTTP_CLIENT_DEFAULT_MAX_RESPONSE = 64 << 20,
    HTTP_CLIENT_MAX_HEADER_BYTES = 64 << 10, /* all response header lines together */
    HTTP_CLIENT_MAX_HEADERS = 256,           /* response header fields */
    HTTP_CLIENT_MAX_IDLE_CONNS = 4096,       /* keep-alive connections cached per client */
    HTTP_CLIENT_STREAM_BUFFER = 4096,        /* receive buffer of a request with on_data */
};

/*
 * What to send and how. Everything is copied by http_client_submit() except
 * what says "borrowed". Zero-initialise and fill what you need.
 */
struct http_client_request {
    const char *method;         /* "GET" when NULL; "POST" etc. */
    const char *url;            /* http:// or https:// */
    const char *const *headers; /* NULL-terminated "Name: value" strings, may be NULL */
    const void *body;           /* request body, may be NULL */
    size_t body_len;
    int body_borrowed;             /* 1: body is borrowed until on_done instead of copied */
    http_client_read_cb read_body; /* streams the body instead of body/body_len */
    int64_t body_size;             /* with read_body: total size, or -1 for chunked encoding */

    uint32_t connect_timeout_ms;    /* 0 = HTTP_CLIENT_DEFAULT_CONNECT_TIMEOUT_MS */
    uint32_t timeout_ms;            /* whole request; 0 = none */
    uint32_t first_byte_timeout_ms; /* submit to first response byte; 0 = none */
    uint32_t idle_timeout_ms;       /* longest silence once the response started; 0 = none */
    size_t max_response_bytes;      /* body limit; 0 = HTTP_CLIENT_DEFAULT_MAX_RESPONSE */

    const char *ca_file; /* PEM CA bundle to verify against; NULL = system store */
    int insecure;        /* 1 disables TLS peer and host verification (tests only) */
    const char *proxy;   /* proxy URL; NULL = no proxy */
    int proxy_from_env;  /* 1 = honour http_proxy/https_proxy/no_proxy (when proxy NULL) */

    http_client_headers_cb on_headers; /* optional */
    http_client_data_cb on_data;       /* optional; when NULL the body is buffered for on_done */
    http_client_done_cb on_done;       /* required */
    void *ud;                          /* passed to every callback */
};

/*
 * Creates a client on loop l (borrowed; must outlive the client). NULL on
 * failure. Touches nothing of the loop, so it may run on any thread, e.g. on the
 * main thread for each worker loop before the workers start.
 */
struct http_client *http_client_new(struct loop *l);

/*
 * Frees the client. Requests still running end first with
 * HTTP_CLIENT_E_CANCELLED (their on_done runs inside this call). Call it on
 * the loop's thread or once the loop no longer runs, never from one of the
 * client's callbacks. Accepts NULL.
 */
void http_client_free(struct http_client *c);

/*
 * Starts a request. On success returns 0, stores the handle in *out (if out is
 * not NULL; valid until on_done returns), and on_done will be called exactly
 * once, never from inside this call. On failure returns AS_EINVAL, AS_ENOMEM
 * or AS_ECLOSED (client shutting down) and no callback is ever called. Safe to
 * call from callbacks.
 */
int http_client_submit(struct http_client *c, const struct http_client_request *r,
                       struct http_client_req **out);

/*
 * Cancels a request: no more on_headers/on_data/read_body calls; on_done
 * follows soon (never from inside this call) with HTTP_CLIENT_E_CANCELLED.
 * No-op if the request is already ending. Safe from any of its callbacks
 * except on_done.
 */
void http_client_cancel(struct http_client_req *req);

/* Resumes delivery after on_data returned HTTP_CLIENT_PAUSE (deferred; never re-enters). */
void http_client_resume(struct http_client_req *req);

/* Resumes the upload after read_body returned HTTP_CLIENT_READ_PAUSE (deferred). */
void http_client_resume_body(struct http_client_req *req);

/* Number of requests submitted and not yet done. */
size_t http_client_active(const struct http_client *c);

/*
 * Internal, exposed for tests and the fuzz target: splits a response head
 * (status line, then "Name: value" lines ending in \n or \r\n) into out[0..cap).
 * Skips the status line, folded continuation lines and lines without a name.
 * Returns the count, or -1 if there are more than cap fields.
 */
ssize_t http_client__parse_headers(const char *p, size_t len, struct http_header *out, size_t cap);

#endif
