/*
 * http_server.h - the HTTP/1.1 server every service is built on (libmicrohttpd).
 *
 * N worker threads each run one event loop (loop.h) holding their own
 * libmicrohttpd daemon in external-loop epoll mode on a SO_REUSEPORT listener,
 * so the kernel spreads connections over the workers and a request never
 * changes threads unless its handler hands it to one (the inference engine,
 * say). The HTTP client of a worker shares that loop.
 *
 * Built in: a route table (exact paths and one {param} per pattern), 404/405
 * and every other error in the OpenAI error body, a request body cap (413
 * before the body is read), header and idle timeouts, a connection cap,
 * X-Request-Id propagated or generated, one log line per request,
 * /health/live, /health/ready, /metrics, asynchronous responses from any
 * thread, chunked/SSE streaming with backpressure and a callback when the
 * client goes away, and a graceful drain on SIGTERM/SIGINT.
 *
 * Threads: handlers run on a worker thread. Functions marked "any thread" may
 * be called from anywhere; the rest only from the request's worker thread
 * while its handler runs. Not for: parsing HTTP by hand, TLS termination (put
 * a proxy in front), HTTP/2.
 */
#ifndef AISTACK_CORE_HTTP_SERVER_H
#define AISTACK_CORE_HTTP_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

struct loop;
struct http_server;
struct http_req;
struct http_stream;

/* Settings; zero fields take the defaults named here. */
struct http_server_config {
    const char *bind_addr;      /* IPv4/IPv6 literal; NULL = "0.0.0.0" */
    uint16_t port;              /* 0 = an ephemeral port (see http_server_port()) */
    int threads;                /* worker threads; 0 = 1 */
    size_t max_body_bytes;      /* larger request bodies get 413; 0 = 1 MiB */
    unsigned header_timeout_ms; /* request line + headers must arrive within; 0 = 10 s */
    unsigned idle_timeout_ms;   /* inactivity, and the keep-alive wait; 0 = 60 s */
    unsigned max_connections;   /* over all workers; excess ones wait in the listen queue;
                                   0 = 4096 */
    unsigned drain_timeout_ms;  /* how long a drain waits for requests; 0 = 30 s */
    size_t stream_queue_bytes;  /* per stream, before http_stream_write says AS_EAGAIN;
                                   0 = 256 KiB */
    const char *service;        /* name for log lines; NULL = none */
};

/* Request handler; runs on a worker thread. It either answers before returning
 * (http_respond*, http_stream_begin) or keeps req and answers later from any thread. */
typedef void (*http_handler_fn)(struct http_req *req, void *ud);

/* Creates a server and binds its listeners (nothing is served before
 * http_server_start()). NULL on failure, with a message in err[err_len]. */
struct http_server *http_server_new(const struct http_server_config *cfg, char *err,
                                    size_t err_len);
/* Stops the server if running (draining first) and frees it. Accepts NULL. */
void http_server_free(struct http_server *srv);

/*
 * Adds a route (before http_server_start()). method: "GET", "POST", ... or NULL
 * for any. pattern: an exact path ("/v1/models"), or a path with one parameter
 * ("/v1/models/{id}": one non-empty segment; "/files/{path*}": the non-empty rest,
 * slashes included), read with http_req_param(). Routes are tried in the order
 * added. HEAD requests match GET routes. 0 or AS_EINVAL / AS_ENOMEM.
 */
int http_server_route(struct http_server *srv, const char *method, const char *pattern,
                      http_handler_fn fn, void *ud);

/* Starts the worker threads (SIGPIPE blocked in them). 0 or AS_E*. */
int http_server_start(struct http_server *srv);
/* Starts the server if needed, serves until SIGTERM/SIGINT or http_server_shutdown(),
 * then drains (see http_server_drain()) and stops the workers. It installs its own
 * SIGTERM/SIGINT handlers while it runs (a second signal during the drain kills the
 * process) and restores the previous ones. Returns 0, AS_ETIMEDOUT when the drain
 * had to cut requests off, or AS_E* if the server could not start. One server per
 * process may be running it at a time. */
int http_server_run(struct http_server *srv);
/* Any thread: makes http_server_run() begin its drain and return. */
void http_server_shutdown(struct http_server *srv);
/* Drains and stops a started server: /health/ready says 503, the listeners close,
 * responses carry "Connection: close", in-flight requests and streams get up to
 * drain_timeout_ms to finish, then the rest are cut off and the workers stop.
 * Returns 0 if everything finished in time, AS_ETIMEDOUT otherwise. */
int http_server_drain(struct http_server *srv);

/* The bound TCP port (the real one when the config said 0). */
uint16_t http_server_port(const struct http_server *srv);
/* Any thread: sets what /health/ready answers (200 when ready and not draining, else 503). */
void http_server_set_ready(struct http_server *srv, int ready);
/* Number of worker threads. */
int http_server_threads(const struct http_server *srv);
/* Worker i's event loop (0 <= i < threads); valid from http_server_new() to _free(). */
struct loop *http_server_worker_loop(struct http_server *srv, int i);
/* The loop of the worker running the calling thread, NULL on other threads. */
struct loop *http_server_current_loop(void);
/* Any thread: hands an already connected stream socket to worker 0 (tests, socket
 * activation). The server owns fd afterwards, also on failure. 0 or AS_E*. */
int http_server_add_connection(struct http_server *srv, int fd);

/* ---- the request (accessors valid until the response is submitted) ------- */

/* "GET", "POST", ... */
const char *http_req_method(const struct http_req *req);
/* The decoded path without the query string. */
const char *http_req_path(const struct http_req *req);
/* The {param} of the matched route (empty when the route has none). */
struct str http_req_param(const struct http_req *req);
/* A request header (case-insensitive name), NULL if absent. Worker thread, in the handler. */
const char *http_req_header(struct http_req *req, const char *name);
/* A decoded query argument, NULL if absent ("" for "?flag"). Worker thread, in the handler. */
const char *http_req_query(struct http_req *req, const char *name);
/* The request body (NUL-terminated, len excludes the NUL; empty if none). Valid
 * until the response is submitted; any thread. */
struct str http_req_body(const struct http_req *req);
/* The request id: X-Request-Id from the client if sane, else a generated one. */
const char *http_req_id(const struct http_req *req);
/* The peer address as text ("127.0.0.1", "::1"); "-" if unknown. */
const char *http_req_remote(struct http_req *req);
/* The loop of the request's worker (where to post work back to). */
struct loop *http_req_loop(const struct http_req *req);
/* The server the request belongs to. */
struct http_server *http_req_server(const struct http_req *req);
/* A pointer for the service to keep with the request. */
void http_req_set_user(struct http_req *req, void *user);
void *http_req_user(const struct http_req *req);

/* Called on the worker thread with the request. */
typedef void (*http_req_cb)(struct http_req *req, void *ud);
/* Worker thread, in the handler, for a request answered later: cb runs (on the
 * worker) if the client hangs up before the answer is submitted, so the work can
 * be cancelled. The answer must still be submitted; it is then dropped. */
void http_req_on_gone(struct http_req *req, http_req_cb cb, void *ud);

/* ---- responses (exactly one per request; any thread once the handler returned) -- */

/* Adds a response header (e.g. "Retry-After") to the response submitted next by the
 * same thread. Call before http_respond* / http_stream_begin. 0 or AS_EINVAL/AS_ENOMEM. */
int http_resp_header(struct http_req *req, const char *name, const char *value);
/* Submits a complete response; body is copied. After this, req must not be used. 0 or AS_E*
 * (on error the request is still finished: the client gets a 500 or a closed connection). */
int http_respond(struct http_req *req, int status, const char *content_type, const void *body,
                 size_t len);
/* http_respond() with "application/json". */
int http_respond_json(struct http_req *req, int status, const char *json, size_t len);
/* Submits the OpenAI error body {"error":{"message","type","param","code"}}.
 * type NULL = as_error_type_for_status(status); param and code may be NULL. */
int http_respond_error(struct http_req *req, int status, const char *message, const char *type,
                       const char *param, const char *code);

/* ---- streaming (chunked transfer; Server-Sent Events) --------------------- */

/* Called on the request's worker thread; s stays valid until http_stream_end(). */
typedef void (*http_stream_cb)(struct http_stream *s, void *ud);

/*
 * Starts a streamed response (chunked for HTTP/1.1): it is the response, so req
 * must not be used afterwards. For "text/event-stream" also sends
 * Cache-Control: no-cache and X-Accel-Buffering: no. Returns NULL if the client
 * is already gone or memory ran out (the request is finished either way);
 * otherwise the caller must call http_stream_end() exactly once, also after the
 * client went away.
 */
struct http_stream *http_stream_begin(struct http_req *req, int status, const char *content_type);
/*
 * Any thread. on_gone: the client went away or the server cut the stream off
 * (drain timeout) before http_stream_end(); stop producing and end the stream.
 * on_writable: the queue drained to half after a write said AS_EAGAIN. Either
 * may be NULL. If the client is already gone, on_gone is still called (soon, on
 * the worker thread). Neither runs once http_stream_end() has returned, so the
 * producer may free ud right after it (a callback may itself call http_stream_end()).
 */
void http_stream_set_callbacks(struct http_stream *s, http_stream_cb on_gone,
                               http_stream_cb on_writable, void *ud);
/*
 * Any thread: queues data (copied). 0; AS_EAGAIN when the queue is full (nothing
 * was queued: wait for on_writable, or retry later); AS_ECLOSED when the client
 * is gone; AS_ERANGE if len alone exceeds the queue size; AS_EINVAL after end.
 */
int http_stream_write(struct http_stream *s, const void *data, size_t len);
/* Any thread: formats one SSE event ("event: NAME\n" if event is non-NULL, one
 * "data: " line per line of data, then a blank line) and queues it whole. As
 * http_stream_write(). */
int http_sse_event(struct http_stream *s, const char *event, const char *data, size_t len);
/* Any thread: queues an SSE comment line (": text\n\n"), e.g. as a keep-alive. */
int http_sse_comment(struct http_stream *s, const char *text);
/* Any thread: 1 once the client is gone (writes would say AS_ECLOSED). */
int http_stream_gone(struct http_stream *s);
/* Any thread: finishes the stream after the queued data is sent, and releases s. */
void http_stream_end(struct http_stream *s);

#endif
