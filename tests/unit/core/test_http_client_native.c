/*
 * test_http_client_native.c - the native plain-HTTP transport of the HTTP client
 * (src/core/http_client_native.c, http_client_parse.c) against a scripted server.
 *
 * The server answers each request with a canned byte sequence picked by path,
 * written in pieces with short pauses so that the client sees the head, chunk
 * sizes, CRLFs and trailers split across reads; some paths close the connection
 * afterwards or on the next request, to exercise keep-alive and the retry of a
 * request on a pooled connection the server had closed. The contract tests
 * shared with libcurl (timeouts, pause/resume, cancel, limits, uploads) are in
 * test_http_client.c, which runs on this transport for http:// URLs. Also unit
 * tests of the response parser fed byte by byte.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/http_client.h"
#include "core/http_client_int.h"
#include "core/loop.h"

/* ==== scripted server ================================================================ */

/* A canned answer: pieces written 3 ms apart; then keep (0), close (1) or close on the
 * next request without answering it (2). */
struct canned {
    const char *path;
    const char *pieces[8];
    int after;
};

static const struct canned canned[] = {
    {"/split",
     {"HTTP/1.1 200 OK\r\nTransfer-", "Encoding: chunked\r\nX-A: 1\r\n\r", "\n5\r",
      "\nhello\r\n6;ext=1\r\n wor", "ld\r", "\n0\r\nX-Trailer: t\r\n", "\r\n"},
     0},
    {"/untilclose", {"HTTP/1.0 200 OK\r\nX-B: 2\r\n\r\nuntil ", "close"}, 1},
    {"/interim",
     {"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: x\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"},
     0},
    {"/nobody", {"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n"}, 0},
    {"/notmod", {"HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n"}, 0},
    {"/connclose", {"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"}, 0},
    {"/http10ka", {"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok"}, 0},
    {"/lf", {"HTTP/1.1 200 OK\nContent-Length: 3\n\nabc"}, 0},
    {"/armdrop", {"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\narmed"}, 2},
    {"/ok", {"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"}, 0},
    {"/headok", {"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n"}, 0}, /* to a HEAD */
    /* malformed: each must end in protocol_error */
    {"/bad/status", {"HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n"}, 1},
    {"/bad/version", {"ICY 200 OK\r\n\r\n"}, 1},
    {"/bad/cl", {"HTTP/1.1 200 OK\r\nContent-Length: 12abc\r\n\r\n"}, 1},
    {"/bad/cl2", {"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok"}, 1},
    {"/bad/chunk", {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhi\r\n"}, 1},
    {"/bad/crlf", {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhiXX0\r\n\r\n"}, 1},
    {"/bad/101", {"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n"}, 1},
    {"/bad/nul", {"HTTP/1.1 200 OK\r\nX-A: a\0b\r\n\r\n"}, 1},
};

struct srv {
    int lfd, port;
    pthread_t thr;
    atomic_int accepted, stop;
    pthread_mutex_t mu;
    int fds[64];
    pthread_t cthr[64];
    int n;
    const char *huge; /* /bad/hugehead and /bad/manyheaders answers */
    const char *many;
};

struct sconn {
    struct srv *s;
    int fd;
};

static void ms_sleep(int ms)
{
    struct timespec ts = {0, (long)ms * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static int s_write(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads one request (head, then a Content-Length or chunked body). Its path in path. */
static int s_read_request(int fd, char *buf, size_t cap, size_t *have, char *path, size_t pcap,
                          size_t *body_len)
{
    char *end;
    while (!(end = memmem(buf, *have, "\r\n\r\n", 4))) {
        if (*have == cap)
            return -1;
        ssize_t r = recv(fd, buf + *have, cap - *have, 0);
        if (r <= 0)
            return -1;
        *have += (size_t)r;
    }
    size_t hl = (size_t)(end - buf) + 4;
    if (sscanf(buf, "%*s %255s", path) != 1 || pcap < 256)
        return -1;
    long clen = 0;
    int chunked = 0;
    for (char *l = strstr(buf, "\r\n") + 2; l < end; l = strstr(l, "\r\n") + 2) {
        if (strncasecmp(l, "Content-Length:", 15) == 0)
            clen = strtol(l + 15, NULL, 10);
        if (strncasecmp(l, "Transfer-Encoding: chunked", 26) == 0)
            chunked = 1;
    }
    /* the body: until its length, or the chunked terminator */
    for (;;) {
        size_t bl = *have - hl;
        if (!chunked && bl >= (size_t)clen) {
            *body_len = (size_t)clen;
            hl += (size_t)clen;
            break;
        }
        char *t = chunked ? memmem(buf + hl, bl, "0\r\n\r\n", 5) : NULL;
        if (t) { /* the decoded length: sizes of the chunks before the last one */
            *body_len = 0;
            for (char *q = buf + hl; q < t;) {
                char *e2;
                size_t n = strtoul(q, &e2, 16);
                *body_len += n;
                q = strstr(e2, "\r\n") + 2 + n + 2;
            }
            hl = (size_t)(t - buf) + 5;
            break;
        }
        if (*have == cap)
            return -1;
        ssize_t r = recv(fd, buf + *have, cap - *have, 0);
        if (r <= 0)
            return -1;
        *have += (size_t)r;
    }
    memmove(buf, buf + hl, *have - hl);
    *have -= hl;
    return 0;
}

static void *s_conn_main(void *arg)
{
    struct sconn *c = arg;
    enum { CAP = 1 << 16 };
    char *b = malloc(CAP);
    char path[256];
    size_t have = 0, body_len = 0;
    int drop_next = 0;
    while (b && !atomic_load(&c->s->stop) &&
           s_read_request(c->fd, b, CAP, &have, path, sizeof(path), &body_len) == 0) {
        if (drop_next)
            break; /* closes a kept-alive connection with the request unanswered */
        int after = 0;
        if (strcmp(path, "/bad/hugehead") == 0 || strcmp(path, "/bad/manyheaders") == 0) {
            const char *r = path[5] == 'h' ? c->s->huge : c->s->many;
            s_write(c->fd, r, strlen(r));
            after = 1;
        } else if (strncmp(path, "/len", 4) == 0) {
            char out[128];
            int n = snprintf(out, sizeof(out), "%zu", body_len);
            char head[128];
            int hn =
                snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", n);
            s_write(c->fd, head, (size_t)hn);
            s_write(c->fd, out, (size_t)n);
        } else {
            const struct canned *k = NULL;
            for (size_t i = 0; i < sizeof(canned) / sizeof(canned[0]); i++)
                if (strcmp(canned[i].path, path) == 0)
                    k = &canned[i];
            if (!k) {
                s_write(c->fd, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", 45);
                continue;
            }
            for (int i = 0; i < 8 && k->pieces[i]; i++) {
                /* /bad/nul carries a NUL: its one piece is written whole */
                size_t n = strcmp(k->path, "/bad/nul") == 0 ? 29 : strlen(k->pieces[i]);
                s_write(c->fd, k->pieces[i], n);
                if (k->pieces[i + 1])
                    ms_sleep(3);
            }
            after = k->after;
        }
        if (after == 1)
            break;
        if (after == 2)
            drop_next = 1;
    }
    free(b);
    pthread_mutex_lock(&c->s->mu);
    for (int i = 0; i < c->s->n; i++)
        if (c->s->fds[i] == c->fd)
            c->s->fds[i] = -1;
    close(c->fd);
    pthread_mutex_unlock(&c->s->mu);
    free(c);
    return NULL;
}

static void *s_accept_main(void *arg)
{
    struct srv *s = arg;
    for (;;) {
        int fd = accept(s->lfd, NULL, NULL);
        if (fd < 0 || atomic_load(&s->stop)) {
            if (fd >= 0)
                close(fd);
            if (fd < 0 && errno == EINTR)
                continue;
            break;
        }
        atomic_fetch_add(&s->accepted, 1);
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        struct sconn *c = calloc(1, sizeof(*c));
        pthread_mutex_lock(&s->mu);
        if (!c || s->n == 64) {
            pthread_mutex_unlock(&s->mu);
            free(c);
            close(fd);
            continue;
        }
        c->s = s;
        c->fd = fd;
        s->fds[s->n] = fd;
        if (pthread_create(&s->cthr[s->n], NULL, s_conn_main, c) != 0) {
            close(fd);
            free(c);
        } else {
            s->n++;
        }
        pthread_mutex_unlock(&s->mu);
    }
    return NULL;
}

/* ==== client side ===================================================================== */

struct env {
    struct srv s;
    struct loop *loop;
    struct http_client *cli;
    int pending;
    char url[256];
    char *huge, *many;
};

struct rq {
    struct env *e;
    int done_calls, headers_calls, status;
    enum http_client_err err;
    char msg[256];
    struct buf body;
    struct http_client_result res;
    char hdr_a[16];
};

static void stop_cb(struct loop *l, void *ud)
{
    *(int *)ud = 1;
    loop_stop(l);
}

static void env_run(struct env *e, int limit_ms)
{
    int fired = 0;
    struct loop_timer *t = loop_timer_add(e->loop, (uint64_t)limit_ms, stop_cb, &fired);
    if (e->pending)
        loop_run(e->loop);
    loop_timer_cancel(e->loop, t);
    assert_false(fired);
}

/* Runs the loop for ms milliseconds whatever happens. */
static void env_spin(struct env *e, int ms)
{
    int fired = 0;
    loop_timer_add(e->loop, (uint64_t)ms, stop_cb, &fired);
    loop_run(e->loop);
}

static int rq_headers(struct http_client_req *req, int status, const struct http_header *h,
                      size_t n, void *ud)
{
    struct rq *q = ud;
    q->headers_calls++;
    const struct http_header *a = http_header_find(h, n, "x-a");
    if (a)
        snprintf(q->hdr_a, sizeof(q->hdr_a), "%.*s", (int)a->value.len, a->value.p);
    return HTTP_CLIENT_CONTINUE;
}

static int rq_data(struct http_client_req *req, const char *d, size_t n, void *ud)
{
    struct rq *q = ud;
    assert_int_equal(buf_append(&q->body, d, n), 0);
    return HTTP_CLIENT_CONTINUE;
}

static void rq_done(struct http_client_req *req, const struct http_client_result *r, void *ud)
{
    struct rq *q = ud;
    q->done_calls++;
    q->err = r->err;
    q->status = r->status;
    q->res = *r;
    snprintf(q->msg, sizeof(q->msg), "%s", r->message);
    if (r->body_len)
        assert_int_equal(buf_append(&q->body, r->body, r->body_len), 0);
    if (--q->e->pending == 0)
        loop_stop(q->e->loop);
}

/* Runs one request for path to completion; stream: with on_data. */
static void run_one(struct env *e, struct rq *q, const char *method, const char *path, int stream)
{
    memset(q, 0, sizeof(*q));
    q->e = e;
    buf_init(&q->body, 1 << 20);
    snprintf(e->url, sizeof(e->url), "http://127.0.0.1:%d%s", e->s.port, path);
    struct http_client_request r = {
        .method = method,
        .url = e->url,
        .timeout_ms = 3000,
        .on_headers = rq_headers,
        .on_data = stream ? rq_data : NULL,
        .on_done = rq_done,
        .ud = q,
    };
    assert_int_equal(http_client_submit(e->cli, &r, NULL), 0);
    e->pending++;
    env_run(e, 5000);
    assert_int_equal(q->done_calls, 1);
}

static const char *rq_body(struct rq *q)
{
    return q->body.data ? q->body.data : "";
}

static int env_setup(void **state)
{
    struct env *e = calloc(1, sizeof(*e));
    assert_non_null(e);
    unsetenv("AISTACK_HTTP_CLIENT");
    pthread_mutex_init(&e->s.mu, NULL);
    e->s.lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof(a);
    assert_int_equal(bind(e->s.lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(e->s.lfd, (struct sockaddr *)&a, &al), 0);
    assert_int_equal(listen(e->s.lfd, 64), 0);
    e->s.port = ntohs(a.sin_port);
    /* a head past HTTP_CLIENT_MAX_HEADER_BYTES, and one with too many fields */
    struct buf h;
    buf_init(&h, 1 << 20);
    buf_append_cstr(&h, "HTTP/1.1 200 OK\r\n");
    for (int i = 0; i < 1100; i++)
        buf_printf(&h, "X-Pad-%04d: %060d\r\n", i, i);
    buf_append_cstr(&h, "\r\n");
    e->huge = buf_steal(&h);
    buf_init(&h, 1 << 20);
    buf_append_cstr(&h, "HTTP/1.1 200 OK\r\n");
    for (int i = 0; i < HTTP_CLIENT_MAX_HEADERS + 1; i++)
        buf_printf(&h, "X-%d: v\r\n", i);
    buf_append_cstr(&h, "Content-Length: 0\r\n\r\n");
    e->many = buf_steal(&h);
    e->s.huge = e->huge;
    e->s.many = e->many;
    assert_int_equal(pthread_create(&e->s.thr, NULL, s_accept_main, &e->s), 0);
    e->loop = loop_new();
    e->cli = http_client_new(e->loop);
    assert_non_null(e->cli);
    *state = e;
    return 0;
}

static int env_teardown(void **state)
{
    struct env *e = *state;
    http_client_free(e->cli);
    atomic_store(&e->s.stop, 1);
    shutdown(e->s.lfd, SHUT_RDWR);
    pthread_join(e->s.thr, NULL);
    close(e->s.lfd);
    pthread_mutex_lock(&e->s.mu);
    for (int i = 0; i < e->s.n; i++)
        if (e->s.fds[i] >= 0)
            shutdown(e->s.fds[i], SHUT_RDWR);
    pthread_mutex_unlock(&e->s.mu);
    for (int i = 0; i < e->s.n; i++)
        pthread_join(e->s.cthr[i], NULL);
    pthread_mutex_destroy(&e->s.mu);
    loop_free(e->loop);
    free(e->huge);
    free(e->many);
    free(e);
    return 0;
}

/* ==== tests ============================================================================ */

static void test_chunked_split_and_reuse(void **state)
{
    struct env *e = *state;
    struct rq q;
    for (int stream = 0; stream < 2; stream++) {
        run_one(e, &q, NULL, "/split", stream);
        assert_int_equal(q.err, HTTP_CLIENT_OK);
        assert_int_equal(q.status, 200);
        assert_string_equal(q.hdr_a, "1");
        assert_string_equal(rq_body(&q), "hello world"); /* extension and trailer dropped */
        assert_int_equal(q.res.bytes_received, 11);
        assert_int_equal(q.res.reused, stream); /* the second one on the same connection */
        assert_true(stream || q.res.connect_us > 0);
        buf_free(&q.body);
    }
    assert_int_equal(atomic_load(&e->s.accepted), 1);
}

static void test_bodiless_and_interim(void **state)
{
    struct env *e = *state;
    struct rq q;
    run_one(e, &q, "HEAD", "/headok", 0); /* a HEAD answer's Content-Length has no body */
    assert_int_equal(q.err, HTTP_CLIENT_OK);
    assert_int_equal(q.body.len, 0);
    buf_free(&q.body);
    run_one(e, &q, NULL, "/nobody", 1);
    assert_int_equal(q.err, HTTP_CLIENT_OK);
    assert_int_equal(q.status, 204);
    assert_int_equal(q.body.len, 0);
    buf_free(&q.body);
    run_one(e, &q, NULL, "/notmod", 0);
    assert_int_equal(q.status, 304);
    assert_int_equal(q.err, HTTP_CLIENT_OK);
    buf_free(&q.body);
    run_one(e, &q, NULL, "/interim", 0); /* 100 and 103 are skipped */
    assert_int_equal(q.err, HTTP_CLIENT_OK);
    assert_int_equal(q.status, 200);
    assert_int_equal(q.headers_calls, 1);
    assert_string_equal(rq_body(&q), "ok");
    buf_free(&q.body);
    run_one(e, &q, NULL, "/lf", 0); /* bare LF line ends */
    assert_int_equal(q.err, HTTP_CLIENT_OK);
    assert_string_equal(rq_body(&q), "abc");
    assert_int_equal(q.res.reused, 1);
    buf_free(&q.body);
    /* all of them kept the one connection */
    assert_int_equal(atomic_load(&e->s.accepted), 1);
}

static void test_until_close_and_connection_close(void **state)
{
    struct env *e = *state;
    struct rq q;
    run_one(e, &q, NULL, "/untilclose", 1);
    assert_int_equal(q.err, HTTP_CLIENT_OK);
    assert_string_equal(rq_body(&q), "until close");
    assert_string_equal(http_client_strerror(q.err), "ok");
    buf_free(&q.body);
    run_one(e, &q, NULL, "/connclose", 0);
    assert_int_equal(q.err, HTTP_CLIENT_OK);
    assert_int_equal(q.res.reused, 0);
    buf_free(&q.body);
    assert_int_equal(http_client__idle_conns(e->cli), 0); /* neither was kept */
    run_one(e, &q, NULL, "/http10ka", 0);
    assert_int_equal(q.err, HTTP_CLIENT_OK);
    buf_free(&q.body);
    assert_int_equal(http_client__idle_conns(e->cli), 1); /* HTTP/1.0 with keep-alive is */
    run_one(e, &q, NULL, "/ok", 0);
    assert_int_equal(q.res.reused, 1);
    buf_free(&q.body);
    assert_int_equal(atomic_load(&e->s.accepted), 3);
}

struct up {
    struct rq q; /* first: rq_done takes it */
    size_t sent, total;
};

static long up_read(struct http_client_req *req, char *buf, size_t cap, void *ud)
{
    struct up *u = ud;
    size_t n = u->total - u->sent < 7 ? u->total - u->sent : 7;
    if (n > cap)
        n = cap;
    memset(buf, 'u', n);
    u->sent += n;
    return (long)n;
}

static void test_retry_on_closed_pooled_connection(void **state)
{
    struct env *e = *state;
    struct rq q;
    /* the server answers /armdrop, then closes the connection when the next request
     * arrives on it, unanswered: a request on a pooled connection that the server
     * dropped. It is sent again on a fresh connection. */
    run_one(e, &q, NULL, "/armdrop", 0);
    assert_string_equal(rq_body(&q), "armed");
    buf_free(&q.body);
    run_one(e, &q, "POST", "/ok", 0);
    assert_int_equal(q.err, HTTP_CLIENT_OK);
    assert_string_equal(rq_body(&q), "ok");
    assert_int_equal(q.res.reused, 0);
    assert_int_equal(atomic_load(&e->s.accepted), 2);
    buf_free(&q.body);

    /* a streamed request body cannot be replayed: that one fails */
    run_one(e, &q, NULL, "/armdrop", 0);
    buf_free(&q.body);
    struct up u;
    memset(&u, 0, sizeof(u));
    u.q.e = e;
    u.total = 30;
    buf_init(&u.q.body, 1 << 20);
    snprintf(e->url, sizeof(e->url), "http://127.0.0.1:%d/len", e->s.port);
    struct http_client_request r = {.method = "POST",
                                    .url = e->url,
                                    .read_body = up_read,
                                    .body_size = 30,
                                    .timeout_ms = 3000,
                                    .on_done = rq_done,
                                    .ud = &u};
    assert_int_equal(http_client_submit(e->cli, &r, NULL), 0);
    e->pending++;
    env_run(e, 5000);
    assert_int_equal(u.q.err, HTTP_CLIENT_E_RECV);
    assert_int_equal(u.q.res.reused, 1);
    buf_free(&u.q.body);

    /* the same upload on a fresh connection: sized (Content-Length), then chunked */
    for (int chunked = 0; chunked < 2; chunked++) {
        memset(&u, 0, sizeof(u));
        u.q.e = e;
        u.total = 30;
        buf_init(&u.q.body, 1 << 20);
        r.body_size = chunked ? -1 : 30;
        assert_int_equal(http_client_submit(e->cli, &r, NULL), 0);
        e->pending++;
        env_run(e, 5000);
        assert_int_equal(u.q.err, HTTP_CLIENT_OK);
        assert_string_equal(rq_body(&u.q), "30");
        buf_free(&u.q.body);
    }
}

static void test_idle_connection_closed_by_server_is_dropped(void **state)
{
    struct env *e = *state;
    struct rq q;
    run_one(e, &q, NULL, "/ok", 0);
    buf_free(&q.body);
    assert_int_equal(http_client__idle_conns(e->cli), 1);
    /* the server closes it on its next request; close it from here instead: the
     * loop watches idle connections, so a hangup drops it without a request */
    run_one(e, &q, NULL, "/armdrop", 0);
    buf_free(&q.body);
    assert_int_equal(http_client__idle_conns(e->cli), 1);
    pthread_mutex_lock(&e->s.mu);
    for (int i = 0; i < e->s.n; i++)
        if (e->s.fds[i] >= 0)
            shutdown(e->s.fds[i], SHUT_RDWR);
    pthread_mutex_unlock(&e->s.mu);
    env_spin(e, 100);
    assert_int_equal(http_client__idle_conns(e->cli), 0);
    run_one(e, &q, NULL, "/ok", 0);
    assert_int_equal(q.err, HTTP_CLIENT_OK);
    assert_int_equal(q.res.reused, 0);
    buf_free(&q.body);
}

static void test_malformed_responses(void **state)
{
    struct env *e = *state;
    static const char *bad[] = {"/bad/status", "/bad/version", "/bad/cl",  "/bad/cl2",
                                "/bad/chunk",  "/bad/crlf",    "/bad/101", "/bad/nul"};
    struct rq q;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        run_one(e, &q, NULL, bad[i], (int)(i & 1));
        if (q.err != HTTP_CLIENT_E_PROTOCOL)
            fail_msg("%s: %s (%s)", bad[i], http_client_strerror(q.err), q.msg);
        assert_true(q.msg[0] != '\0');
        buf_free(&q.body);
    }
    run_one(e, &q, NULL, "/bad/hugehead", 0);
    assert_int_equal(q.err, HTTP_CLIENT_E_TOO_LARGE);
    assert_int_equal(q.headers_calls, 0);
    buf_free(&q.body);
    run_one(e, &q, NULL, "/bad/manyheaders", 0);
    assert_int_equal(q.err, HTTP_CLIENT_E_TOO_LARGE);
    buf_free(&q.body);
    assert_int_equal(http_client__idle_conns(e->cli), 0);
    assert_int_equal(http_client_active(e->cli), 0);
}

static void test_localhost_and_forced_curl(void **state)
{
    struct env *e = *state;
    struct rq q;
    memset(&q, 0, sizeof(q));
    q.e = e;
    buf_init(&q.body, 1 << 20);
    /* a name: resolved (and cached); ::1 may be tried first and refused */
    snprintf(e->url, sizeof(e->url), "http://localhost:%d/ok", e->s.port);
    struct http_client_request r = {
        .url = e->url, .timeout_ms = 3000, .on_done = rq_done, .ud = &q};
    assert_int_equal(http_client_submit(e->cli, &r, NULL), 0);
    e->pending++;
    env_run(e, 5000);
    assert_int_equal(q.err, HTTP_CLIENT_OK);
    assert_string_equal(rq_body(&q), "ok");
    buf_free(&q.body);
    assert_int_equal(http_client__idle_conns(e->cli), 1);

    /* AISTACK_HTTP_CLIENT=curl: libcurl for everything, nothing in the native pool */
    setenv("AISTACK_HTTP_CLIENT", "curl", 1);
    struct http_client *c2 = http_client_new(e->loop);
    unsetenv("AISTACK_HTTP_CLIENT");
    assert_non_null(c2);
    memset(&q, 0, sizeof(q));
    q.e = e;
    buf_init(&q.body, 1 << 20);
    snprintf(e->url, sizeof(e->url), "http://127.0.0.1:%d/split", e->s.port);
    assert_int_equal(http_client_submit(c2, &r, NULL), 0);
    e->pending++;
    env_run(e, 5000);
    assert_int_equal(q.err, HTTP_CLIENT_OK);
    assert_string_equal(rq_body(&q), "hello world");
    assert_int_equal(http_client__idle_conns(c2), 0);
    http_client_free(c2);
    buf_free(&q.body);
}

/* ---- the parser alone, fed every split of a response ---------------------------------- */

/* Feeds resp in pieces of step bytes; returns the last event, body in out. */
static int feed_all(const char *resp, size_t len, size_t step, int no_body, struct buf *out,
                    int *status)
{
    struct http_header h[16];
    struct http_client__resp p;
    http_client__resp_init(&p, no_body, h, 16);
    char win[512];
    size_t have = 0, fed = 0;
    for (;;) {
        size_t n = len - fed < step ? len - fed : step;
        assert_true(have + n <= sizeof(win));
        memcpy(win + have, resp + fed, n);
        have += n;
        fed += n;
        for (;;) {
            size_t used, dl;
            const char *d;
            int ev = http_client__resp_feed(&p, win, have, &used, &d, &dl);
            assert_true(used <= have);
            if (ev == HTTP_RESP_HEAD)
                *status = p.status;
            if (ev == HTTP_RESP_DATA) {
                assert_true(d == win + used && used + dl <= have && dl > 0);
                buf_append(out, d, dl);
                http_client__resp_consume(&p, dl);
                used += dl;
            }
            memmove(win, win + used, have - used);
            have -= used;
            if (ev == HTTP_RESP_MORE)
                break;
            if (ev == HTTP_RESP_DONE || ev == HTTP_RESP_ERROR || ev == HTTP_RESP_TOO_LARGE)
                return ev;
        }
        if (fed == len)
            return http_client__resp_eof(&p);
    }
}

static void test_parser_every_split(void **state)
{
    (void)state;
    static const struct {
        const char *resp;
        int no_body, ev, status;
        const char *body;
    } cases[] = {
        {"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", 0, HTTP_RESP_DONE, 200, "hello"},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n3;a=b\r\nabc\r\n"
         "A\r\n0123456789\r\n0\r\nT: 1\r\nU: 2\r\n\r\n",
         0, HTTP_RESP_DONE, 200, "abc0123456789"},
        {"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 1\r\n\r\nx", 0,
         HTTP_RESP_DONE, 201, "x"},
        {"HTTP/1.0 200 OK\r\n\r\nto the end", 0, HTTP_RESP_DONE, 200, "to the end"},
        {"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n", 1, HTTP_RESP_DONE, 200, ""},
        {"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort", 0, HTTP_RESP_ERROR, 200, "short"},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabcde", 0, HTTP_RESP_ERROR, 200,
         "abcde"},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\n", 0,
         HTTP_RESP_ERROR, 200, ""},
        {"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", 0, HTTP_RESP_ERROR, 0, ""},
        {"HTTP/1.1 20 OK\r\n\r\n", 0, HTTP_RESP_ERROR, 0, ""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t len = strlen(cases[i].resp);
        for (size_t step = 1; step <= len; step++) {
            struct buf out;
            buf_init(&out, 4096);
            int status = 0;
            int ev = feed_all(cases[i].resp, len, step, cases[i].no_body, &out, &status);
            if (ev != cases[i].ev || status != cases[i].status ||
                strcmp(out.data ? out.data : "", cases[i].body) != 0)
                fail_msg("case %zu step %zu: ev %d status %d body '%s'", i, step, ev, status,
                         out.data ? out.data : "");
            buf_free(&out);
        }
    }
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
#define T(f) cmocka_unit_test_setup_teardown(f, env_setup, env_teardown)
    const struct CMUnitTest tests[] = {
        T(test_chunked_split_and_reuse),
        T(test_bodiless_and_interim),
        T(test_until_close_and_connection_close),
        T(test_retry_on_closed_pooled_connection),
        T(test_idle_connection_closed_by_server_is_dropped),
        T(test_malformed_responses),
        T(test_localhost_and_forced_curl),
        cmocka_unit_test(test_parser_every_split),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
