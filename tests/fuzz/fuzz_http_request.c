/*
 * fuzz_http_request.c - raw bytes as an HTTP request to a live http_server.
 *
 * One server (one worker) runs for the whole fuzzing session. Each input is
 * written into one end of a socketpair whose other end the server adopts with
 * http_server_add_connection(); the fuzzer then half-closes its end and reads
 * until the server closes. So the input reaches libmicrohttpd's parser and then
 * our code: routing with {param} and {rest*} patterns, query and header
 * lookups, X-Request-Id checks, body caps (413 with and without
 * Content-Length), asynchronous answers, streams and SSE formatting. A hang
 * (no close within 10 s) aborts, as does any sanitizer report.
 */
#include "core/err.h"
#include "core/http_server.h"
#include "core/log.h"
#include "core/loop.h"

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct http_server *srv;

static void h_echo(struct http_req *req, void *ud)
{
    struct str b = http_req_body(req);
    const char *ct = http_req_header(req, "Content-Type");
    http_resp_header(req, "X-Echo-Len", ct ? ct : "none");
    http_respond(req, 200, ct ? ct : "text/plain", b.p, b.len);
}

static void h_param(struct http_req *req, void *ud)
{
    struct str p = http_req_param(req);
    const char *q = http_req_query(req, "q");
    struct buf b;
    buf_init(&b, 1 << 16);
    buf_append_cstr(&b, "{\"p\":");
    buf_append_json_str(&b, p.p, p.len);
    buf_append_cstr(&b, ",\"q\":");
    if (q)
        buf_append_json_str(&b, q, strlen(q));
    else
        buf_append_cstr(&b, "null");
    buf_append_cstr(&b, ",\"remote\":");
    buf_append_json_str(&b, http_req_remote(req), strlen(http_req_remote(req)));
    buf_append_char(&b, '}');
    http_respond_json(req, 200, b.data, b.len);
    buf_free(&b);
}

static void later(struct loop *l, void *ud)
{
    http_respond_error(ud, 503, "try later", NULL, NULL, "busy");
}

static void h_async(struct http_req *req, void *ud)
{
    if (!loop_timer_add(http_req_loop(req), 0, later, req))
        http_respond_error(req, 500, "no timer", NULL, NULL, NULL);
}

static void h_sse(struct http_req *req, void *ud)
{
    const char *n = http_req_query(req, "n");
    const char *data = http_req_query(req, "data");
    long count = n ? strtol(n, NULL, 10) : 2;
    if (count < 0 || count > 50)
        count = 2;
    struct http_stream *s = http_stream_begin(req, 200, "text/event-stream");
    if (!s)
        return;
    for (long i = 0; i < count; i++)
        if (http_sse_event(s, i % 2 ? "e" : NULL, data ? data : "x", data ? strlen(data) : 1))
            break;
    http_sse_comment(s, "bye");
    http_stream_end(s);
}

static int setup(void)
{
    log_set_level(LOG_OFF);
    struct http_server_config cfg = {.bind_addr = "127.0.0.1",
                                     .threads = 1,
                                     .max_body_bytes = 4096,
                                     .header_timeout_ms = 400, /* incomplete requests end fast */
                                     .idle_timeout_ms = 1000,
                                     .stream_queue_bytes = 8192};
    char err[256];
    srv = http_server_new(&cfg, err, sizeof err);
    if (!srv) {
        fprintf(stderr, "fuzz_http_request: %s\n", err);
        abort();
    }
    int rc = http_server_route(srv, "POST", "/echo", h_echo, NULL);
    rc |= http_server_route(srv, NULL, "/v1/models/{id}", h_param, NULL);
    rc |= http_server_route(srv, "GET", "/files/{path*}", h_param, NULL);
    rc |= http_server_route(srv, "PUT", "/a/{x}.json", h_param, NULL);
    rc |= http_server_route(srv, "GET", "/async", h_async, NULL);
    rc |= http_server_route(srv, "GET", "/sse", h_sse, NULL);
    if (rc != 0 || http_server_start(srv) != 0)
        abort();
    http_server_set_ready(srv, 1);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready)
        ready = setup() == 0;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        return 0;
    if (http_server_add_connection(srv, sv[0]) != 0) {
        close(sv[1]);
        return 0;
    }
    /* write what fits without blocking, reading replies as they come */
    size_t off = 0;
    char buf[65536];
    for (;;) {
        struct pollfd p = {.fd = sv[1], .events = POLLIN | (off < size ? POLLOUT : 0)};
        if (off == size) {
            shutdown(sv[1], SHUT_WR);
            off = size + 1;
            p.events = POLLIN;
        }
        int n = poll(&p, 1, 10000);
        if (n < 0 && errno == EINTR)
            continue; /* libFuzzer's -timeout alarm */
        if (n <= 0) {
            fprintf(stderr, "fuzz_http_request: server did not close the connection\n");
            abort();
        }
        if (p.revents & POLLOUT) {
            ssize_t w = send(sv[1], data + off, size - off, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (w > 0)
                off += (size_t)w;
            else if (w < 0)
                off = size; /* server closed its end: stop writing */
        }
        if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t r = recv(sv[1], buf, sizeof buf, MSG_DONTWAIT);
            if (r == 0 || (r < 0 && (p.revents & (POLLHUP | POLLERR))))
                break;
        }
    }
    close(sv[1]);
    return 0;
}
