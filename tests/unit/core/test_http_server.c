/*
 * test_http_server.c - unit tests for src/core/http_server.c and http_stream.c.
 *
 * Each test starts a real server on 127.0.0.1 (ephemeral port, two workers) and
 * talks to it with libcurl (a real, independent HTTP client) or raw sockets.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/http_server.h"
#include "core/log.h"
#include "core/loop.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- a small client ------------------------------------------------------------ */

struct resp {
    long status;
    struct buf body;
    struct buf headers;
};

static size_t on_data(char *p, size_t sz, size_t n, void *ud)
{
    return buf_append(ud, p, sz * n) == 0 ? sz * n : 0;
}

/*
 * A slow reader for fetch() when set: a 4 KiB socket receive buffer (no
 * autotuning) and curl's receive rate capped, so that a long stream fills the
 * server's queue whatever the scheduler does.
 */
static long slow_client_bps;

static int small_rcvbuf(void *ud, curl_socket_t fd, curlsocktype purpose)
{
    (void)ud;
    (void)purpose;
    int sz = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
    return CURL_SOCKOPT_OK;
}

/* Performs one request and returns curl's result (callable off the main thread, where a
 * cmocka assertion cannot be reported); extra_header may be NULL. */
static CURLcode fetch_rc(uint16_t port, const char *method, const char *path, const char *body,
                         const char *extra_header, struct resp *r)
{
    char url[512];
    snprintf(url, sizeof url, "http://127.0.0.1:%u%s", (unsigned)port, path);
    buf_init(&r->body, 16u << 20);
    buf_init(&r->headers, 1u << 20);
    r->status = 0;
    CURL *c = curl_easy_init();
    if (!c)
        return CURLE_FAILED_INIT;
    struct curl_slist *h = extra_header ? curl_slist_append(NULL, extra_header) : NULL;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (!strcmp(method, "HEAD"))
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    if (body)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r->body);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &r->headers);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
    if (slow_client_bps) {
        curl_easy_setopt(c, CURLOPT_SOCKOPTFUNCTION, small_rcvbuf);
        curl_easy_setopt(c, CURLOPT_MAX_RECV_SPEED_LARGE, (curl_off_t)slow_client_bps);
    }
    CURLcode rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return rc;
}

/* Performs one request, which must succeed; extra_header may be NULL. */
static void fetch(uint16_t port, const char *method, const char *path, const char *body,
                  const char *extra_header, struct resp *r)
{
    assert_int_equal(fetch_rc(port, method, path, body, extra_header, r), CURLE_OK);
}

static void resp_free(struct resp *r)
{
    buf_free(&r->body);
    buf_free(&r->headers);
}

static int has_header(const struct resp *r, const char *line)
{
    return r->headers.data && strcasestr(r->headers.data, line) != NULL;
}

/* ---- handlers ------------------------------------------------------------------ */

static void h_hello(struct http_req *req, void *ud)
{
    http_resp_header(req, "Retry-After", "7");
    assert_int_not_equal(http_resp_header(req, "Bad\r\nName", "x"), 0);
    http_respond_json(req, 200, "{\"hi\":1}", 8);
}

static void h_param(struct http_req *req, void *ud)
{
    struct str p = http_req_param(req);
    char out[256];
    const char *q = http_req_query(req, "q");
    const char *flag = http_req_query(req, "flag");
    int n = snprintf(out, sizeof out, "%s|%.*s|%s|%s|%s", (const char *)ud, (int)p.len, p.p,
                     q ? q : "(null)", flag ? (*flag ? flag : "(empty)") : "(null)",
                     http_req_method(req));
    http_respond(req, 200, "text/plain", out, (size_t)n);
}

static void h_echo(struct http_req *req, void *ud)
{
    struct str b = http_req_body(req);
    const char *h = http_req_header(req, "x-test");
    char out[64];
    int n = snprintf(out, sizeof out, "%zu:%s:", b.len, h ? h : "-");
    struct buf o;
    buf_init(&o, 1u << 22);
    buf_append(&o, out, (size_t)n);
    buf_append(&o, b.p, b.len);
    http_respond(req, 201, "application/octet-stream", o.data, o.len);
    buf_free(&o);
}

static void h_error(struct http_req *req, void *ud)
{
    http_resp_header(req, "Retry-After", "3");
    http_respond_error(req, 429, "slow \"down\"", NULL, "model", "rate_limited");
}

/* answered from another thread after the handler returned */
static void *late_main(void *arg)
{
    usleep(30000);
    http_respond(arg, 202, "text/plain", "late", 4);
    return NULL;
}

static void h_async(struct http_req *req, void *ud)
{
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, late_main, req), 0);
    pthread_detach(t);
}

/* answered on the worker loop by a timer (same thread, after the handler returned) */
static void timer_answer(struct loop *l, void *ud)
{
    http_respond(ud, 200, "text/plain", "timer", 5);
}

static void h_timer(struct http_req *req, void *ud)
{
    assert_ptr_equal(http_server_current_loop(), http_req_loop(req));
    assert_non_null(loop_timer_add(http_req_loop(req), 10, timer_answer, req));
}

/* kept until the test answers it; on_gone counts the hang-up */
static struct http_req *_Atomic parked;
static atomic_int req_gone_calls;

static void on_req_gone(struct http_req *req, void *ud)
{
    assert_ptr_equal(req, atomic_load(&parked));
    assert_ptr_equal(ud, &req_gone_calls);
    atomic_fetch_add(&req_gone_calls, 1);
}

static void h_park(struct http_req *req, void *ud)
{
    http_req_on_gone(req, on_req_gone, &req_gone_calls);
    atomic_store(&parked, req);
}

/* ---- streaming ---------------------------------------------------------------- */

static atomic_int gone_calls, writable_calls, stopped_early;
/* index of the first event a producer had to retry (AS_EAGAIN), -1 if none */
static atomic_int first_eagain;
static atomic_int producers;     /* h_sse producers begun and not yet past http_stream_end */
static atomic_int streams_begun; /* h_sse calls */

struct prod {
    struct http_stream *s;
    int n;
    int idle; /* after the first event, wait for on_gone instead of writing */
    atomic_int stop;
};

static void on_gone(struct http_stream *s, void *ud)
{
    struct prod *p = ud;
    atomic_fetch_add(&gone_calls, 1);
    atomic_store(&p->stop, 1);
}

static void on_writable(struct http_stream *s, void *ud)
{
    atomic_fetch_add(&writable_calls, 1);
}

static void *prod_main(void *arg)
{
    struct prod *p = arg;
    for (int i = 0; i < p->n && !atomic_load(&p->stop); i++) {
        char line[64];
        int len = snprintf(line, sizeof line, "%d\nline2", i);
        int rc;
        while ((rc = http_sse_event(p->s, i % 2 ? "tick" : NULL, line, (size_t)len)) == AS_EAGAIN) {
            int none = -1;
            atomic_compare_exchange_strong(&first_eagain, &none, i);
            usleep(200);
        }
        if (rc != 0) {
            assert_int_equal(rc, AS_ECLOSED);
            atomic_fetch_add(&stopped_early, 1);
            break;
        }
        if (p->n < 100)
            usleep(2000);
        for (int w = 0; p->idle && w < 500 && !atomic_load(&p->stop); w++)
            usleep(10000);
    }
    http_stream_end(p->s); /* afterwards no callback runs: p may go */
    free(p);
    atomic_fetch_sub(&producers, 1);
    return NULL;
}

/* Waits up to 3 s for every h_sse producer to have ended its stream; 1 if they did. */
static int producers_done(void)
{
    for (int i = 0; i < 300 && atomic_load(&producers) > 0; i++)
        usleep(10000);
    return atomic_load(&producers) == 0;
}

static void h_sse(struct http_req *req, void *ud)
{
    struct prod *p = calloc(1, sizeof *p);
    const char *n = http_req_query(req, "n");
    p->n = n ? (int)strtol(n, NULL, 10) : 5;
    p->idle = http_req_query(req, "idle") != NULL;
    p->s = http_stream_begin(req, 200, "text/event-stream");
    assert_non_null(p->s);
    http_stream_set_callbacks(p->s, on_gone, on_writable, p);
    atomic_fetch_add(&producers, 1);
    atomic_fetch_add(&streams_begun, 1);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, prod_main, p), 0);
    pthread_detach(t);
}

/* the stream itself begins on another thread, after the handler returned */
static void *late_stream_main(void *arg)
{
    usleep(20000);
    struct http_stream *st = http_stream_begin(arg, 200, "text/event-stream");
    assert_non_null(st);
    for (int i = 0; i < 3; i++) {
        char d[8];
        int n = snprintf(d, sizeof d, "%d", i);
        assert_int_equal(http_sse_event(st, NULL, d, (size_t)n), 0);
        usleep(5000);
    }
    assert_int_equal(http_sse_event(st, "e", "a\r\nb\rc\n", 7), 0);
    assert_int_equal(http_sse_comment(st, "done"), 0);
    assert_int_equal(http_sse_event(st, "bad\nname", "x", 1), AS_EINVAL);
    http_stream_end(st);
    return NULL;
}

static void h_late_stream(struct http_req *req, void *ud)
{
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, late_stream_main, req), 0);
    pthread_detach(t);
}

/* ---- fixture ------------------------------------------------------------------- */

static struct http_server *start(unsigned max_body, unsigned header_ms)
{
    struct http_server_config cfg = {.bind_addr = "127.0.0.1",
                                     .threads = 2,
                                     .max_body_bytes = max_body,
                                     .header_timeout_ms = header_ms,
                                     .drain_timeout_ms = 3000,
                                     .stream_queue_bytes = 4096};
    char err[256] = "";
    struct http_server *srv = http_server_new(&cfg, err, sizeof err);
    assert_non_null(srv);
    assert_int_not_equal(http_server_port(srv), 0);
    assert_int_equal(http_server_threads(srv), 2);
    assert_non_null(http_server_worker_loop(srv, 1));
    assert_null(http_server_worker_loop(srv, 2));
    assert_int_equal(http_server_route(srv, "GET", "/hello", h_hello, NULL), 0);
    assert_int_equal(http_server_route(srv, "GET", "/models/{id}", h_param, "one"), 0);
    assert_int_equal(http_server_route(srv, "DELETE", "/models/{id}", h_param, "del"), 0);
    assert_int_equal(http_server_route(srv, "GET", "/files/{path*}", h_param, "rest"), 0);
    assert_int_equal(http_server_route(srv, "GET", "/a/{x}/b", h_param, "mid"), 0);
    assert_int_equal(http_server_route(srv, "POST", "/echo", h_echo, NULL), 0);
    assert_int_equal(http_server_route(srv, NULL, "/error", h_error, NULL), 0);
    assert_int_equal(http_server_route(srv, "GET", "/async", h_async, NULL), 0);
    assert_int_equal(http_server_route(srv, "GET", "/timer", h_timer, NULL), 0);
    assert_int_equal(http_server_route(srv, "GET", "/sse", h_sse, NULL), 0);
    assert_int_equal(http_server_route(srv, "GET", "/park", h_park, NULL), 0);
    assert_int_equal(http_server_route(srv, "GET", "/latesse", h_late_stream, NULL), 0);
    /* malformed patterns */
    assert_int_equal(http_server_route(srv, "GET", "nope", h_hello, NULL), AS_EINVAL);
    assert_int_equal(http_server_route(srv, "GET", "/x/{a}/{b}", h_hello, NULL), AS_EINVAL);
    assert_int_equal(http_server_route(srv, "GET", "/x/{}", h_hello, NULL), AS_EINVAL);
    assert_int_equal(http_server_route(srv, "GET", "/x/{a*}/y", h_hello, NULL), AS_EINVAL);
    assert_int_equal(http_server_route(srv, "GET", "/x/{a", h_hello, NULL), AS_EINVAL);
    assert_int_equal(http_server_start(srv), 0);
    return srv;
}

static void test_routing(void **state)
{
    struct http_server *srv = start(0, 0);
    uint16_t port = http_server_port(srv);
    struct resp r;

    fetch(port, "GET", "/hello", NULL, "X-Request-Id: abc-123", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body.data, "{\"hi\":1}");
    assert_true(has_header(&r, "X-Request-Id: abc-123"));
    assert_true(has_header(&r, "Retry-After: 7"));
    assert_true(has_header(&r, "Content-Type: application/json"));
    resp_free(&r);

    /* a hostile request id is replaced by a generated one */
    fetch(port, "GET", "/hello", NULL, "X-Request-Id: a b\"c", &r);
    assert_false(has_header(&r, "a b\"c"));
    assert_true(has_header(&r, "X-Request-Id: "));
    resp_free(&r);

    fetch(port, "HEAD", "/hello", NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body.len, 0);
    resp_free(&r);

    fetch(port, "GET", "/models/llama-3?q=a%20b&flag", NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body.data, "one|llama-3|a b|(empty)|GET");
    resp_free(&r);

    fetch(port, "DELETE", "/models/x", NULL, NULL, &r);
    assert_string_equal(r.body.data, "del|x|(null)|(null)|DELETE");
    resp_free(&r);

    fetch(port, "GET", "/files/a/b/c.txt", NULL, NULL, &r);
    assert_string_equal(r.body.data, "rest|a/b/c.txt|(null)|(null)|GET");
    resp_free(&r);

    fetch(port, "GET", "/a/42/b", NULL, NULL, &r);
    assert_string_equal(r.body.data, "mid|42|(null)|(null)|GET");
    resp_free(&r);

    /* {id} is one non-empty segment */
    const char *misses[] = {"/models/", "/models/a/b", "/a//b", "/a/1/2/b", "/nope", "/hello/"};
    for (size_t i = 0; i < sizeof misses / sizeof *misses; i++) {
        fetch(port, "GET", misses[i], NULL, NULL, &r);
        assert_int_equal(r.status, 404);
        assert_string_equal(r.body.data, "{\"error\":{\"message\":\"no route for this path\","
                                         "\"type\":\"not_found_error\",\"param\":null,"
                                         "\"code\":\"not_found\"}}");
        resp_free(&r);
    }

    fetch(port, "PUT", "/models/x", NULL, NULL, &r);
    assert_int_equal(r.status, 405);
    assert_true(has_header(&r, "Allow: GET, DELETE"));
    assert_non_null(strstr(r.body.data, "\"code\":\"method_not_allowed\""));
    resp_free(&r);

    fetch(port, "PATCH", "/error", NULL, NULL, &r); /* NULL method matches any */
    assert_int_equal(r.status, 429);
    assert_true(has_header(&r, "Retry-After: 3"));
    assert_string_equal(
        r.body.data, "{\"error\":{\"message\":\"slow \\\"down\\\"\",\"type\":\"rate_limit_error\","
                     "\"param\":\"model\",\"code\":\"rate_limited\"}}");
    resp_free(&r);

    fetch(port, "GET", "/health/live", NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    fetch(port, "GET", "/health/ready", NULL, NULL, &r);
    assert_int_equal(r.status, 503);
    assert_non_null(strstr(r.body.data, "service_unavailable_error"));
    resp_free(&r);
    http_server_set_ready(srv, 1);
    fetch(port, "GET", "/health/ready", NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    fetch(port, "GET", "/metrics", NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_true(has_header(&r, "text/plain; version=0.0.4"));
    assert_non_null(strstr(r.body.data, "http_requests_total{code=\"404\"}"));
    resp_free(&r);

    assert_int_equal(http_server_drain(srv), 0);
    http_server_free(srv);
}

static void test_bodies(void **state)
{
    struct http_server *srv = start(1000, 0);
    uint16_t port = http_server_port(srv);
    struct resp r;

    fetch(port, "POST", "/echo", "hello body", "X-Test: yes", &r);
    assert_int_equal(r.status, 201);
    assert_string_equal(r.body.data, "10:yes:hello body");
    resp_free(&r);

    char big[1001];
    memset(big, 'a', 1000);
    big[1000] = '\0';
    fetch(port, "POST", "/echo", big, NULL, &r); /* exactly the cap */
    assert_int_equal(r.status, 201);
    assert_int_equal(r.body.len, 1000 + 7);
    resp_free(&r);

    char *huge = malloc(100001);
    memset(huge, 'b', 100000);
    huge[100000] = '\0';
    fetch(port, "POST", "/echo", huge, NULL, &r); /* Content-Length over the cap */
    assert_int_equal(r.status, 413);
    assert_non_null(strstr(r.body.data, "\"code\":\"request_too_large\""));
    resp_free(&r);

    /* chunked upload past the cap: no Content-Length to check up front */
    fetch(port, "POST", "/echo", huge, "Transfer-Encoding: chunked", &r);
    assert_int_equal(r.status, 413);
    resp_free(&r);
    free(huge);

    /* the server still works afterwards */
    fetch(port, "POST", "/echo", "x", NULL, &r);
    assert_string_equal(r.body.data, "1:-:x");
    resp_free(&r);
    http_server_free(srv); /* drains */
}

static void test_async(void **state)
{
    struct http_server *srv = start(0, 0);
    uint16_t port = http_server_port(srv);
    struct resp r;
    for (int i = 0; i < 3; i++) {
        fetch(port, "GET", "/async", NULL, "X-Request-Id: async-1", &r);
        assert_int_equal(r.status, 202);
        assert_string_equal(r.body.data, "late");
        assert_true(has_header(&r, "X-Request-Id: async-1"));
        resp_free(&r);
        fetch(port, "GET", "/timer", NULL, NULL, &r);
        assert_int_equal(r.status, 200);
        assert_string_equal(r.body.data, "timer");
        resp_free(&r);
    }
    http_server_free(srv);
}

static void test_sse(void **state)
{
    struct http_server *srv = start(0, 0);
    uint16_t port = http_server_port(srv);
    struct resp r;
    fetch(port, "GET", "/sse?n=3", NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_true(has_header(&r, "Content-Type: text/event-stream"));
    assert_true(has_header(&r, "Cache-Control: no-cache"));
    assert_true(has_header(&r, "Transfer-Encoding: chunked"));
    assert_string_equal(r.body.data, "data: 0\ndata: line2\n\n"
                                     "event: tick\ndata: 1\ndata: line2\n\n"
                                     "data: 2\ndata: line2\n\n");
    resp_free(&r);

    fetch(port, "GET", "/latesse", NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body.data, "data: 0\n\ndata: 1\n\ndata: 2\n\n"
                                     "event: e\ndata: a\ndata: b\ndata: c\ndata: \n\n: done\n\n");
    resp_free(&r);

    /*
     * many events through a 4 KiB queue to a slow reader (~0.3 s for the 530 KB):
     * nothing lost or reordered, and backpressure: once the producer saw
     * AS_EAGAIN with events still to write, on_writable must follow. Whether
     * the queue fills at all is up to the kernel (the server's socket send
     * buffer can grow to hold the whole stream) and the scheduler: with a
     * fast reader it did not in 1 run of 40, with this slow one in 2 of 12
     * under ctest -j2, so on_writable is required only when it happened with
     * more than 1000 events (~26 KB) left, i.e. long before the stream ends
     * (after the end no callback runs).
     */
    atomic_store(&writable_calls, 0);
    atomic_store(&first_eagain, -1);
    slow_client_bps = 2 << 20;
    fetch(port, "GET", "/sse?n=20000", NULL, NULL, &r);
    slow_client_bps = 0;
    assert_int_equal(r.status, 200);
    const char *p = r.body.data;
    for (int i = 0; i < 20000; i++) {
        char want[64];
        int n = snprintf(want, sizeof want, "%sdata: %d\ndata: line2\n\n",
                         i % 2 ? "event: tick\n" : "", i);
        assert_memory_equal(p, want, (size_t)n);
        p += n;
    }
    assert_ptr_equal(p, r.body.data + r.body.len);
    int fe = atomic_load(&first_eagain);
    if (fe >= 0 && fe < 20000 - 1000)
        assert_true(atomic_load(&writable_calls) > 0);
    resp_free(&r);
    http_server_free(srv);
}

/* Raw socket helpers for what curl will not do. */
static int dial(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    return fd;
}

/* Reads until EOF or timeout; returns bytes read, -1 on timeout. */
static long read_all(int fd, char *out, size_t cap, int timeout_ms)
{
    size_t len = 0;
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, timeout_ms) <= 0)
            return -1;
        ssize_t n = read(fd, out + len, cap - len - 1);
        if (n <= 0)
            break;
        len += (size_t)n;
        if (len + 1 >= cap)
            break;
    }
    out[len] = '\0';
    return (long)len;
}

/*
 * Opens /sse, reads until the first event has arrived, then hangs up. Reading only
 * the first bytes is not enough: the response headers go out before the producer's
 * first event, and a client gone before that write sees the write fail instead of
 * on_gone (1 run in 130 under load).
 */
static void hang_up_mid_stream(uint16_t port, const char *path)
{
    int fd = dial(port);
    char req[256];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path);
    assert_int_equal(write(fd, req, (size_t)n), n);
    char buf[8192];
    size_t len = 0;
    buf[0] = '\0';
    while (!strstr(buf, "data: 0\n") && len + 1 < sizeof buf) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        assert_int_equal(poll(&p, 1, 2000), 1);
        ssize_t got = read(fd, buf + len, sizeof buf - 1 - len);
        assert_true(got > 0);
        len += (size_t)got;
        buf[len] = '\0';
    }
    assert_non_null(strstr(buf, "data: 0\n"));
    close(fd);
}

static void test_client_gone(void **state)
{
    struct http_server *srv = start(0, 0);
    uint16_t port = http_server_port(srv);
    /* a busy producer learns it from a failing write or from on_gone, and stops; the
     * counters are read only once it has ended, after which no callback of it runs */
    assert_true(producers_done());
    atomic_store(&gone_calls, 0);
    atomic_store(&stopped_early, 0);
    hang_up_mid_stream(port, "/sse?n=1000000");
    assert_true(producers_done());
    assert_true(atomic_load(&gone_calls) + atomic_load(&stopped_early) >= 1);

    /* an idle producer (its event sent, connection suspended, nothing more to send)
     * learns it only from on_gone: it does not write again for 5 s */
    atomic_store(&gone_calls, 0);
    atomic_store(&stopped_early, 0);
    hang_up_mid_stream(port, "/sse?n=2&idle=1");
    for (int i = 0; i < 300 && atomic_load(&gone_calls) == 0; i++)
        usleep(10000);
    assert_int_equal(atomic_load(&gone_calls), 1);
    assert_true(producers_done());
    assert_int_equal(atomic_load(&gone_calls), 1);
    assert_int_equal(atomic_load(&stopped_early), 0);
    http_server_free(srv);
}

static void test_async_gone(void **state)
{
    struct http_server *srv = start(0, 0);
    uint16_t port = http_server_port(srv);
    atomic_store(&parked, NULL);
    atomic_store(&req_gone_calls, 0);
    int fd = dial(port);
    const char req[] = "GET /park HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_int_equal(write(fd, req, sizeof req - 1), (ssize_t)(sizeof req - 1));
    for (int i = 0; i < 300 && !atomic_load(&parked); i++)
        usleep(10000);
    assert_non_null(atomic_load(&parked));
    usleep(50000);
    assert_int_equal(atomic_load(&req_gone_calls), 0); /* still connected */
    close(fd);
    for (int i = 0; i < 300 && atomic_load(&req_gone_calls) == 0; i++)
        usleep(10000);
    assert_int_equal(atomic_load(&req_gone_calls), 1);
    /* the answer is still owed, and dropped */
    assert_int_equal(http_respond(atomic_load(&parked), 200, "text/plain", "late", 4), 0);
    struct resp r;
    fetch(port, "GET", "/hello", NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    http_server_free(srv);
}

static void test_header_timeout(void **state)
{
    struct http_server *srv = start(0, 300);
    uint16_t port = http_server_port(srv);
    int fd = dial(port);
    /* one byte per 100 ms never completes the headers within 300 ms */
    const char *req = "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n";
    uint64_t t0 = loop_now_ms();
    int closed = 0;
    for (size_t i = 0; req[i] && !closed; i++) {
        if (send(fd, req + i, 1, MSG_NOSIGNAL) != 1)
            closed = 1;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 100) == 1) {
            char c;
            closed = read(fd, &c, 1) <= 0;
        }
    }
    uint64_t el = loop_now_ms() - t0;
    assert_true(closed);
    assert_true(el >= 250 && el < 2000);
    close(fd);

    /* a prompt client on the same server is unaffected; pipelined keep-alive works */
    fd = dial(port);
    const char two[] = "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"
                       "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    assert_int_equal(write(fd, two, sizeof two - 1), (ssize_t)(sizeof two - 1));
    char out[8192];
    assert_true(read_all(fd, out, sizeof out, 2000) > 0);
    const char *first = strstr(out, "{\"hi\":1}");
    assert_non_null(first);
    assert_non_null(strstr(first + 1, "{\"hi\":1}"));
    close(fd);
    http_server_free(srv);
}

struct client_job {
    uint16_t port;
    CURLcode rc;
    struct resp r;
};

static void *sse_client(void *arg)
{
    struct client_job *j = arg;
    j->rc = fetch_rc(j->port, "GET", "/sse?n=40", NULL, NULL, &j->r);
    return NULL;
}

static void test_drain(void **state)
{
    struct http_server *srv = start(0, 0);
    uint16_t port = http_server_port(srv);
    http_server_set_ready(srv, 1);
    /*
     * a stream of 40 events * 2 ms is in flight when the drain starts: it completes.
     * In flight means its handler has run; a fixed sleep was not enough under load
     * (the client had not even connected when the listener closed, 1 run in 100).
     */
    int begun = atomic_load(&streams_begun);
    struct client_job j = {.port = port};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, sse_client, &j), 0);
    for (int i = 0; i < 3000 && atomic_load(&streams_begun) == begun; i++)
        usleep(1000);
    assert_int_equal(atomic_load(&streams_begun), begun + 1);
    assert_int_equal(http_server_drain(srv), 0);
    pthread_join(t, NULL);
    if (j.rc != CURLE_OK)
        fail_msg("curl: %s (%zu bytes of body: %.*s)", curl_easy_strerror(j.rc), j.r.body.len,
                 (int)j.r.body.len, j.r.body.data ? j.r.body.data : "");
    assert_int_equal(j.r.status, 200);
    assert_non_null(strstr(j.r.body.data, "data: 39\n"));
    resp_free(&j.r);
    /* nothing listens any more */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_not_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    close(fd);
    http_server_free(srv);
}

/* A request the client has sent when the drain starts is answered, even if the worker
 * has not accepted its connection yet (it is only in the listener's backlog). */
static void test_drain_pending(void **state)
{
    struct http_server *srv = start(0, 0);
    uint16_t port = http_server_port(srv);
    int fd = dial(port);
    const char req[] = "GET /sse?n=40 HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_int_equal(write(fd, req, sizeof req - 1), (ssize_t)(sizeof req - 1));
    assert_int_equal(http_server_drain(srv), 0);
    char out[16384];
    assert_true(read_all(fd, out, sizeof out, 2000) > 0);
    assert_non_null(strstr(out, "HTTP/1.1 200"));
    assert_non_null(strstr(out, "data: 39\n"));
    assert_non_null(strstr(out, "\r\n0\r\n\r\n")); /* the last chunk: the stream ended */
    close(fd);
    http_server_free(srv);
}

static void *shutdown_later(void *arg)
{
    usleep(50000);
    http_server_shutdown(arg);
    return NULL;
}

static void test_run_shutdown(void **state)
{
    struct http_server *srv = start(0, 0);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, shutdown_later, srv), 0);
    assert_int_equal(http_server_run(srv), 0);
    pthread_join(t, NULL);
    http_server_free(srv);
    http_server_free(NULL);
    /* a port in use is refused, SO_REUSEPORT notwithstanding */
    struct http_server *a = start(0, 0);
    struct http_server_config same = {.bind_addr = "127.0.0.1", .port = http_server_port(a)};
    char err1[128] = "";
    assert_null(http_server_new(&same, err1, sizeof err1));
    assert_non_null(strstr(err1, "cannot bind"));
    http_server_free(a);
    /* a bad address fails cleanly */
    struct http_server_config cfg = {.bind_addr = "not-an-ip"};
    char err[128] = "";
    assert_null(http_server_new(&cfg, err, sizeof err));
    assert_non_null(strstr(err, "bind address"));
}

int main(void)
{
    log_set_level(LOG_WARN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_routing),        cmocka_unit_test(test_bodies),
        cmocka_unit_test(test_async),          cmocka_unit_test(test_sse),
        cmocka_unit_test(test_client_gone),    cmocka_unit_test(test_async_gone),
        cmocka_unit_test(test_header_timeout), cmocka_unit_test(test_drain),
        cmocka_unit_test(test_drain_pending),  cmocka_unit_test(test_run_shutdown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
