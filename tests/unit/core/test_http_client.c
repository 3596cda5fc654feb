/*
 * test_http_client.c - unit tests for the loop-driven HTTP client (src/core/http_client.c).
 *
 * A tiny HTTP/1.1 server runs inside the test on loopback (one thread per
 * connection, raw sockets) so the client is tested against behaviour we control
 * exactly: keep-alive, chunked streams with pauses, hangs, stalls, oversize
 * bodies, cut connections. It is deliberately minimal and trusts its client.
 * TLS is tested against `openssl s_server` with a certificate made at run time
 * (skipped when the openssl command is missing). Every test runs twice: on the
 * native transport (plain http://), then with AISTACK_HTTP_CLIENT=curl on libcurl.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/http_client.h"
#include "core/http_server.h"
#include "core/loop.h"
#include "core/sse.h"

/* ==== the test server ============================================================= */

#define TS_MAX_CONN 512

struct tsrv {
    int lfd;
    int port;
    pthread_t accept_thr;
    atomic_int accepted;
    atomic_int stop;
    pthread_mutex_t mu;
    pthread_t thr[TS_MAX_CONN];
    int fds[TS_MAX_CONN];
    int n;
};

struct tconn {
    struct tsrv *s;
    int fd;
    int idx; /* slot in s->fds */
    char buf[65536];
    size_t len; /* bytes buffered, not yet consumed */
};

static void ms_sleep(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static int ts_write(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

static int ts_printf(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int ts_printf(int fd, const char *fmt, ...)
{
    char tmp[4096];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(tmp))
        return -1;
    return ts_write(fd, tmp, (size_t)n);
}

static int ts_chunk(int fd, const char *p, size_t n)
{
    if (ts_printf(fd, "%zx\r\n", n) || ts_write(fd, p, n) || ts_write(fd, "\r\n", 2))
        return -1;
    return 0;
}

/* Reads more bytes into the connection buffer; -1 on EOF/error. */
static int tc_fill(struct tconn *c)
{
    if (c->len == sizeof(c->buf))
        return -1;
    ssize_t r;
    do
        r = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
    while (r < 0 && errno == EINTR);
    if (r <= 0)
        return -1;
    c->len += (size_t)r;
    return 0;
}

static void tc_consume(struct tconn *c, size_t n)
{
    memmove(c->buf, c->buf + n, c->len - n);
    c->len -= n;
}

/* Reads one CRLF-terminated line into out (without CRLF). */
static int tc_line(struct tconn *c, char *out, size_t cap)
{
    for (;;) {
        char *e = memmem(c->buf, c->len, "\r\n", 2);
        if (e) {
            size_t n = (size_t)(e - c->buf);
            if (n >= cap)
                return -1;
            memcpy(out, c->buf, n);
            out[n] = '\0';
            tc_consume(c, n + 2);
            return 0;
        }
        if (tc_fill(c))
            return -1;
    }
}

static int tc_bytes(struct tconn *c, struct buf *body, size_t n)
{
    while (c->len < n && c->len < sizeof(c->buf))
        if (tc_fill(c))
            return -1;
    size_t take = n < c->len ? n : c->len;
    if (buf_append(body, c->buf, take))
        return -1;
    tc_consume(c, take);
    return take == n ? 0 : tc_bytes(c, body, n - take);
}

/* Blocks until the peer closes the connection. */
static void tc_wait_close(struct tconn *c)
{
    char tmp[512];
    while (recv(c->fd, tmp, sizeof(tmp), 0) > 0)
        ;
}

static long query_num(const char *path, const char *key, long dflt)
{
    const char *q = strchr(path, '?');
    size_t k = strlen(key);
    while (q) {
        q++;
        if (strncmp(q, key, k) == 0 && q[k] == '=')
            return strtol(q + k + 1, NULL, 10);
        q = strchr(q, '&');
    }
    return dflt;
}

/* Serves one request; returns 0 to keep the connection, -1 to close it. */
static int tc_serve(struct tconn *c)
{
    char line[8192], method[16], path[1024];
    long clen = -1;
    int chunked = 0, rc = -1;
    struct buf body;
    buf_init(&body, 16 << 20);
    if (tc_line(c, line, sizeof(line)) || sscanf(line, "%15s %1023s", method, path) != 2)
        goto out;
    for (;;) {
        if (tc_line(c, line, sizeof(line)))
            goto out;
        if (!line[0])
            break;
        if (strncasecmp(line, "Content-Length:", 15) == 0)
            clen = strtol(line + 15, NULL, 10);
        if (strncasecmp(line, "Transfer-Encoding:", 18) == 0 && strstr(line, "chunked"))
            chunked = 1;
    }
    if (chunked) {
        for (;;) {
            if (tc_line(c, line, sizeof(line)))
                goto out;
            long n = strtol(line, NULL, 16);
            if (n == 0) {
                if (tc_line(c, line, sizeof(line))) /* no trailers: the final CRLF */
                    goto out;
                break;
            }
            if (tc_bytes(c, &body, (size_t)n) || tc_line(c, line, sizeof(line)))
                goto out;
        }
    } else if (clen > 0 && tc_bytes(c, &body, (size_t)clen)) {
        goto out;
    }
    const char *b = body.data ? body.data : "";
    int fd = c->fd;

    if (strncmp(path, "/echo", 5) == 0) {
        char out[4096];
        int n = snprintf(out, sizeof(out), "{\"method\":\"%s\",\"path\":\"%s\",\"received\":%s}",
                         method, path, body.len ? b : "null");
        rc = ts_printf(fd,
                       "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Test:  yes \r\n"
                       "Content-Length: %d\r\n\r\n",
                       n) ||
             (strcmp(method, "HEAD") != 0 && ts_write(fd, out, (size_t)n));
        if (strstr(path, "close"))
            rc = -1; /* closes a keep-alive connection without saying so */
    } else if (strncmp(path, "/stream", 7) == 0) {
        long n = query_num(path, "n", 5), ms = query_num(path, "ms", 50);
        rc = ts_printf(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
        for (long i = 0; i < n && !rc; i++) {
            char ch[32];
            int k = snprintf(ch, sizeof(ch), "chunk %ld\n", i);
            rc = ts_chunk(fd, ch, (size_t)k);
            if (i + 1 < n)
                ms_sleep((int)ms);
        }
        rc = rc || ts_write(fd, "0\r\n\r\n", 5);
    } else if (strncmp(path, "/sse", 4) == 0) {
        /* events written in pieces that split lines and CRLFs */
        static const char *pieces[] = {"data: {\"i\":0}\r",
                                       "\n\r\ndata: {\"i\"",
                                       ":1}\n\n: ping\n\nevent: usage\ndata: {\"tok",
                                       "ens\":3}\n",
                                       "\n",
                                       "data: [DONE]\n\n"};
        rc = ts_printf(fd, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                           "Transfer-Encoding: chunked\r\n\r\n");
        for (size_t i = 0; i < sizeof(pieces) / sizeof(pieces[0]) && !rc; i++) {
            rc = ts_chunk(fd, pieces[i], strlen(pieces[i]));
            ms_sleep(5);
        }
        rc = rc || ts_write(fd, "0\r\n\r\n", 5);
    } else if (strncmp(path, "/hang", 5) == 0) {
        tc_wait_close(c);
    } else if (strncmp(path, "/stall", 6) == 0) {
        if (!ts_printf(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n") &&
            !ts_chunk(fd, "first\n", 6))
            tc_wait_close(c);
    } else if (strncmp(path, "/bigchunked", 11) == 0) {
        long n = query_num(path, "n", 1 << 20);
        char blk[16384];
        memset(blk, 'x', sizeof(blk));
        rc = ts_printf(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
        for (long left = n; left > 0 && !rc; left -= (long)sizeof(blk))
            rc = ts_chunk(fd, blk, left < (long)sizeof(blk) ? (size_t)left : sizeof(blk));
        rc = rc || ts_write(fd, "0\r\n\r\n", 5);
    } else if (strncmp(path, "/big", 4) == 0) {
        long n = query_num(path, "n", 1 << 20);
        char blk[16384];
        memset(blk, 'x', sizeof(blk));
        rc = ts_printf(fd, "HTTP/1.1 200 OK\r\nContent-Length: %ld\r\n\r\n", n);
        for (long left = n; left > 0 && !rc; left -= (long)sizeof(blk))
            rc = ts_write(fd, blk, left < (long)sizeof(blk) ? (size_t)left : sizeof(blk));
    } else if (strncmp(path, "/infinite", 9) == 0) {
        rc = ts_printf(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
        while (!rc && !atomic_load(&c->s->stop)) {
            rc = ts_chunk(fd, "tick\n", 5);
            ms_sleep(10);
        }
        rc = -1;
    } else if (strncmp(path, "/429", 4) == 0) {
        const char *e = "{\"error\":{\"message\":\"slow down\"}}";
        rc = ts_printf(fd,
                       "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 7\r\n"
                       "Content-Length: %zu\r\n\r\n%s",
                       strlen(e), e);
    } else if (strncmp(path, "/chunkcut", 9) == 0) {
        /* a stream that breaks midway: no terminating 0-chunk */
        ts_printf(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
        ts_chunk(fd, "data: {}\n\n", 10);
        rc = -1;
    } else if (strncmp(path, "/headcut", 8) == 0) {
        ts_printf(fd, "HTTP/1.1 200 OK\r\nX-A: b\r\n"); /* the head never ends */
        rc = -1;
    } else if (strncmp(path, "/folded", 7) == 0) {
        /* a folded line first: with reused easy handles curl 7.88 read freed memory here */
        rc = ts_printf(fd, "HTTP/1.1 200 OK\r\n folded: x\r\nContent-Length: 2\r\n\r\nok");
    } else if (strncmp(path, "/cut", 4) == 0) {
        ts_printf(fd, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789");
        rc = -1;
    } else if (strncmp(path, "/upload", 7) == 0) {
        unsigned long sum = 0;
        for (size_t i = 0; i < body.len; i++)
            sum = sum * 31 + (unsigned char)b[i];
        char out[128];
        int n = snprintf(out, sizeof(out), "%s %zu %lu %s", method, body.len, sum,
                         chunked ? "chunked" : "length");
        rc = ts_printf(fd, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", n, out);
    } else {
        rc = ts_printf(fd, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
    }
out:
    buf_free(&body);
    return rc ? -1 : 0;
}

static void *tc_main(void *arg)
{
    struct tconn *c = arg;
    while (!atomic_load(&c->s->stop) && tc_serve(c) == 0)
        ;
    pthread_mutex_lock(&c->s->mu);
    c->s->fds[c->idx] = -1; /* so ts_stop never shuts down a reused fd number */
    close(c->fd);
    pthread_mutex_unlock(&c->s->mu);
    free(c);
    return NULL;
}

static void *ts_accept_main(void *arg)
{
    struct tsrv *s = arg;
    for (;;) {
        int fd = accept(s->lfd, NULL, NULL);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            break;
        }
        if (atomic_load(&s->stop)) {
            close(fd);
            break;
        }
        atomic_fetch_add(&s->accepted, 1);
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        struct tconn *c = calloc(1, sizeof(*c));
        pthread_mutex_lock(&s->mu);
        if (!c || s->n == TS_MAX_CONN) {
            pthread_mutex_unlock(&s->mu);
            free(c);
            close(fd);
            continue;
        }
        c->s = s;
        c->fd = fd;
        c->idx = s->n;
        s->fds[s->n] = fd;
        if (pthread_create(&s->thr[s->n], NULL, tc_main, c) != 0) {
            pthread_mutex_unlock(&s->mu);
            close(fd);
            free(c);
            continue;
        }
        s->n++;
        pthread_mutex_unlock(&s->mu);
    }
    return NULL;
}

static int ts_listen(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof(a);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &al) != 0 || listen(fd, 256) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    *port = ntohs(a.sin_port);
    return fd;
}

static struct tsrv *ts_start(void)
{
    struct tsrv *s = calloc(1, sizeof(*s));
    assert_non_null(s);
    pthread_mutex_init(&s->mu, NULL);
    s->lfd = ts_listen(&s->port);
    assert_true(s->lfd >= 0);
    assert_int_equal(pthread_create(&s->accept_thr, NULL, ts_accept_main, s), 0);
    return s;
}

static void ts_stop(struct tsrv *s)
{
    atomic_store(&s->stop, 1);
    shutdown(s->lfd, SHUT_RDWR);
    pthread_join(s->accept_thr, NULL);
    close(s->lfd);
    pthread_mutex_lock(&s->mu);
    int n = s->n;
    for (int i = 0; i < n; i++)
        if (s->fds[i] >= 0)
            shutdown(s->fds[i], SHUT_RDWR);
    pthread_mutex_unlock(&s->mu);
    for (int i = 0; i < n; i++)
        pthread_join(s->thr[i], NULL);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

/* ==== client-side helpers ========================================================== */

struct env {
    struct tsrv *srv;
    struct loop *loop;
    struct http_client *cli;
    struct loop_timer *guard;
    int pending; /* requests not done; the loop stops at 0 */
    int guard_fired;
    char url[256];
};

/* What one request saw. */
struct rq {
    struct env *e;
    int done_calls;
    enum http_client_err err;
    int status;
    char msg[512];
    struct buf body; /* from on_data, or copied from the result */
    int headers_calls;
    int header_status;
    char retry_after[32];
    char x_test[32];
    int data_calls;
    uint64_t first_data_ns, last_data_ns, done_ns, submit_ns;
    struct http_client_result res; /* copy; pointers invalid after on_done */
    int cancel_after;              /* cancel in on_data after this many calls */
    int headers_rc;                /* on_headers return value */
    int pause_first;               /* on_data: pause the first delivery once */
    struct http_client_req *req;
    struct http_client_request *chain; /* submit this from on_done (keep-alive test) */
    int chain_left;
};

static void guard_cb(struct loop *l, void *ud)
{
    struct env *e = ud;
    e->guard = NULL;
    e->guard_fired = 1;
    loop_stop(l);
}

/* Runs the loop until every request is done; fails the test after limit_ms. */
static void env_run(struct env *e, int limit_ms)
{
    if (e->pending == 0)
        return;
    e->guard = loop_timer_add(e->loop, (uint64_t)limit_ms, guard_cb, e);
    loop_run(e->loop);
    loop_timer_cancel(e->loop, e->guard);
    e->guard = NULL;
    assert_false(e->guard_fired);
}

static int rq_headers(struct http_client_req *req, int status, const struct http_header *h,
                      size_t n, void *ud)
{
    struct rq *q = ud;
    q->headers_calls++;
    q->header_status = status;
    const struct http_header *ra = http_header_find(h, n, "retry-after");
    if (ra)
        snprintf(q->retry_after, sizeof(q->retry_after), "%.*s", (int)ra->value.len, ra->value.p);
    const struct http_header *xt = http_header_find(h, n, "X-TEST");
    if (xt)
        snprintf(q->x_test, sizeof(q->x_test), "%.*s", (int)xt->value.len, xt->value.p);
    return q->headers_rc;
}

static void resume_cb(struct loop *l, void *ud)
{
    struct rq *q = ud;
    http_client_resume(q->req);
}

static int rq_data(struct http_client_req *req, const char *d, size_t n, void *ud)
{
    struct rq *q = ud;
    assert_int_equal(q->done_calls, 0);
    if (q->pause_first) {
        q->pause_first = 0;
        q->req = req;
        loop_timer_add(q->e->loop, 150, resume_cb, q);
        return HTTP_CLIENT_PAUSE;
    }
    uint64_t now = loop_now_ns();
    if (!q->data_calls)
        q->first_data_ns = now;
    q->last_data_ns = now;
    q->data_calls++;
    assert_int_equal(buf_append(&q->body, d, n), 0);
    if (q->cancel_after && q->data_calls == q->cancel_after)
        http_client_cancel(req);
    return HTTP_CLIENT_CONTINUE;
}

static void rq_done(struct http_client_req *req, const struct http_client_result *r, void *ud)
{
    struct rq *q = ud;
    q->done_calls++;
    q->done_ns = loop_now_ns();
    q->err = r->err;
    q->status = r->status;
    q->res = *r;
    snprintf(q->msg, sizeof(q->msg), "%s", r->message);
    if (r->body_len)
        assert_int_equal(buf_append(&q->body, r->body, r->body_len), 0);
    q->res.body = NULL;
    q->res.message = NULL;
    if (q->chain && q->chain_left > 0) {
        q->chain_left--;
        buf_reset(&q->body);
        assert_int_equal(http_client_submit(q->e->cli, q->chain, NULL), 0);
        return; /* still pending */
    }
    if (--q->e->pending == 0)
        loop_stop(q->e->loop);
}

static void rq_init(struct rq *q, struct env *e)
{
    memset(q, 0, sizeof(*q));
    q->e = e;
    buf_init(&q->body, 64 << 20);
}

static const char *rq_body(struct rq *q)
{
    return q->body.data ? q->body.data : "";
}

/* Fills a request for path on the test server with rq callbacks. */
static void req_for(struct env *e, struct http_client_request *r, struct rq *q, const char *path,
                    int streaming)
{
    memset(r, 0, sizeof(*r));
    snprintf(e->url, sizeof(e->url), "http://127.0.0.1:%d%s", e->srv->port, path);
    r->url = e->url; /* copied by submit */
    r->on_headers = rq_headers;
    r->on_data = streaming ? rq_data : NULL;
    r->on_done = rq_done;
    r->ud = q;
    r->timeout_ms = 5000;
}

static void submit_ok(struct env *e, struct http_client_request *r, struct http_client_req **out)
{
    assert_int_equal(http_client_submit(e->cli, r, out), 0);
    e->pending++;
}

static int env_setup(void **state)
{
    struct env *e = calloc(1, sizeof(*e));
    assert_non_null(e);
    e->srv = ts_start();
    e->loop = loop_new();
    assert_non_null(e->loop);
    e->cli = http_client_new(e->loop);
    assert_non_null(e->cli);
    *state = e;
    return 0;
}

static int env_teardown(void **state)
{
    struct env *e = *state;
    http_client_free(e->cli);
    ts_stop(e->srv);
    loop_free(e->loop);
    free(e);
    return 0;
}

static double ms_between(uint64_t a, uint64_t b)
{
    return (double)(b - a) / 1e6;
}

/* ==== tests ========================================================================== */

static void test_get_post_json(void **state)
{
    struct env *e = *state;
    struct http_client_request r;
    struct rq g, p, u;
    rq_init(&g, e);
    rq_init(&p, e);
    rq_init(&u, e);

    req_for(e, &r, &g, "/echo/get", 0);
    submit_ok(e, &r, NULL);

    static const char *hdrs[] = {"Content-Type: application/json", "X-Request-Id: abc", NULL};
    char json[] = "{\"model\":\"m\",\"stream\":false}";
    req_for(e, &r, &p, "/echo/post", 0);
    r.method = "POST";
    r.headers = hdrs;
    r.body = json;
    r.body_len = strlen(json);
    submit_ok(e, &r, NULL);
    memset(json, 'Z', strlen(json)); /* the body was copied */

    req_for(e, &r, &u, "/upload", 1);
    r.method = "PUT";
    r.body = "abc";
    r.body_len = 3;
    r.body_borrowed = 1;
    submit_ok(e, &r, NULL);

    env_run(e, 5000);
    assert_int_equal(g.done_calls, 1);
    assert_int_equal(g.err, HTTP_CLIENT_OK);
    assert_int_equal(g.status, 200);
    assert_int_equal(g.headers_calls, 1);
    assert_string_equal(g.x_test, "yes");
    assert_string_equal(rq_body(&g),
                        "{\"method\":\"GET\",\"path\":\"/echo/get\",\"received\":null}");
    assert_int_equal(p.err, HTTP_CLIENT_OK);
    assert_string_equal(rq_body(&p), "{\"method\":\"POST\",\"path\":\"/echo/post\",\"received\":"
                                     "{\"model\":\"m\",\"stream\":false}}");
    assert_int_equal(p.res.bytes_received, strlen(rq_body(&p)));
    assert_int_equal(u.err, HTTP_CLIENT_OK);
    assert_int_equal(strncmp(rq_body(&u), "PUT 3 ", 6), 0);
    buf_free(&g.body);
    buf_free(&p.body);
    buf_free(&u.body);
}

static void test_streaming_chunks_arrive_early(void **state)
{
    struct env *e = *state;
    struct http_client_request r;
    struct rq q;
    rq_init(&q, e);
    req_for(e, &r, &q, "/stream?n=5&ms=60", 1);
    submit_ok(e, &r, NULL);
    env_run(e, 5000);
    assert_int_equal(q.err, HTTP_CLIENT_OK);
    assert_string_equal(rq_body(&q), "chunk 0\nchunk 1\nchunk 2\nchunk 3\nchunk 4\n");
    /* 4 gaps of 60 ms: the first chunk must be delivered long before the end */
    assert_true(q.data_calls >= 4);
    assert_true(ms_between(q.first_data_ns, q.done_ns) >= 180.0);
    assert_true(q.res.first_byte_us > 0 && q.res.first_byte_us + 180000 <= q.res.total_us);
    buf_free(&q.body);
}

static void test_connect_refused_fast(void **state)
{
    struct env *e = *state;
    int port;
    int fd = ts_listen(&port);
    assert_true(fd >= 0);
    close(fd); /* nothing listens there now */
    struct http_client_request r;
    struct rq q;
    rq_init(&q, e);
    req_for(e, &r, &q, "/", 1);
    snprintf(e->url, sizeof(e->url), "http://127.0.0.1:%d/", port);
    uint64_t t0 = loop_now_ns();
    submit_ok(e, &r, NULL);
    env_run(e, 3000);
    assert_int_equal(q.err, HTTP_CLIENT_E_CONNECT);
    assert_true(http_client_err_before_send(q.err));
    assert_int_equal(q.status, 0);
    assert_int_equal(q.headers_calls, 0);
    assert_true(ms_between(t0, q.done_ns) < 500.0);
    assert_string_equal(http_client_strerror(q.err), "connect_failed");
    buf_free(&q.body);
}

static void test_connect_timeout(void **state)
{
    struct env *e = *state;
    /* A listener whose accept queue is full drops SYNs, so connecting hangs. */
    int port, fill[4];
    int lfd = ts_listen(&port);
    assert_true(lfd >= 0);
    assert_int_equal(listen(lfd, 0), 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    for (int i = 0; i < 4; i++) {
        fill[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        connect(fill[i], (struct sockaddr *)&a, sizeof(a));
    }
    ms_sleep(20);
    struct http_client_request r;
    struct rq q;
    rq_init(&q, e);
    req_for(e, &r, &q, "/", 1);
    snprintf(e->url, sizeof(e->url), "http://127.0.0.1:%d/", port);
    r.connect_timeout_ms = 200;
    uint64_t t0 = loop_now_ns();
    submit_ok(e, &r, NULL);
    env_run(e, 3000);
    double ms = ms_between(t0, q.done_ns);
    for (int i = 0; i < 4; i++)
        close(fill[i]);
    close(lfd);
    assert_int_equal(q.err, HTTP_CLIENT_E_CONNECT_TIMEOUT);
    assert_true(http_client_err_before_send(q.err));
    assert_true(ms >= 190.0 && ms < 1000.0);
    buf_free(&q.body);
}

static void test_total_timeout(void **state)
{
    struct env *e = *state;
    struct http_client_request r;
    struct rq q;
    rq_init(&q, e);
    req_for(e, &r, &q, "/hang", 1);
    r.timeout_ms = 300;
    uint64_t t0 = loop_now_ns();
    submit_ok(e, &r, NULL);
    env_run(e, 3000);
    double ms = ms_between(t0, q.done_ns);
    assert_int_equal(q.err, HTTP_CLIENT_E_TIMEOUT);
    assert_false(http_client_err_before_send(q.err));
    assert_true(ms >= 280.0 && ms < 1500.0);
    buf_free(&q.body);
}

static void test_first_byte_timeout(void **state)
{
    struct env *e = *state;
    struct http_client_request r;
    struct rq q;
    rq_init(&q, e);
    req_for(e, &r, &q, "/hang", 1);
    r.first_byte_timeout_ms = 200;
    uint64_t t0 = loop_now_ns();
    submit_ok(e, &r, NULL);
    env_run(e, 3000);
    double ms = ms_between(t0, q.done_ns);
    assert_int_equal(q.err, HTTP_CLIENT_E_FIRST_BYTE_TIMEOUT);
    assert_true(ms >= 190.0 && ms < 1000.0);
    assert_int_equal(q.headers_calls, 0);
    buf_free(&q.body);
}

static void test_idle_timeout_mid_stream(void **state)
{
    struct env *e = *state;
    struct http_client_request r;
    struct rq q;
    rq_init(&q, e);
    req_for(e, &r, &q, "/stall", 1);
    r.first_byte_timeout_ms = 1000;
    r.idle_timeout_ms = 200;
    submit_ok(e, &r, NULL);
    env_run(e, 3000);
    assert_int_equal(q.err, HTTP_CLIENT_E_IDLE_TIMEOUT);
    assert_int_equal(q.status, 200); /* the headers had arrived */
    assert_string_equal(rq_body(&q), "first\n");
    double ms = ms_between(q.last_data_ns, q.done_ns);
    assert_true(ms >= 190.0 && ms < 1000.0);
    buf_free(&q.body);
}

static void test_response_too_large(void **state)
{
    struct env *e = *state;
    struct http_client_request r;
    struct rq q[4];
    const char *paths[4] = {"/big?n=1000000", "/bigchunked?n=1000000", "/big?n=1000000",
                            "/bigchunked?n=65536"};
    for (int i = 0; i < 4; i++) {
        rq_init(&q[i], e);
        req_for(e, &r, &q[i], paths[i], i == 2);
        r.max_response_bytes = 65536;
        submit_ok(e, &r, NULL);
    }
    env_run(e, 5000);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(q[i].err, HTTP_CLIENT_E_TOO_LARGE);
        assert_true(q[i].body.len <= 65536);
        assert_non_null(strstr(q[i].msg, "65536"));
    }
    /* exactly at the limit is fine */
    assert_int_equal(q[3].err, HTTP_CLIENT_OK);
    assert_int_equal(q[3].body.len, 65536);
    for (int i = 0; i < 4; i++)
        buf_free(&q[i].body);
}

static void cancel_cb(struct loop *l, void *ud)
{
    struct rq *q = ud;
    http_client_cancel(q->req);
    http_client_cancel(q->req); /* twice is a no-op */
}

static void test_cancel_mid_stream(void **state)
{
    struct env *e = *state;
    struct http_client_request r;
    struct rq a, b;
    rq_init(&a, e);
    rq_init(&b, e);
    req_for(e, &r, &a, "/infinite", 1);
    a.cancel_after = 3; /* from inside on_data */
    submit_ok(e, &r, NULL);
    req_for(e, &r, &b, "/infinite", 1);
    submit_ok(e, &r, &b.req);
    loop_timer_add(e->loop, 100, cancel_cb, &b); /* from outside any callback */
    env_run(e, 3000);
    assert_int_equal(a.err, HTTP_CLIENT_E_CANCELLED);
    assert_int_equal(a.data_calls, 3); /* nothing delivered after the cancel */
    assert_int_equal(a.done_calls, 1);
    assert_int_equal(b.err, HTTP_CLIENT_E_CANCELLED);
    assert_int_equal(b.done_calls, 1);
    assert_true(b.data_calls >= 1);
    assert_int_equal(http_client_active(e->cli), 0);
    buf_free(&a.body);
    buf_free(&b.body);
}

static void test_100_concurrent(void **state)
{
    struct env *e = *state;
    enum { N = 100 };
    struct rq *q = calloc(N, sizeof(*q));
    assert_non_null(q);
    struct http_client_request r;
    char path[64];
    for (int i = 0; i < N; i++) {
        rq_init(&q[i], e);
        snprintf(path, sizeof(path), "/echo/%d", i);
        req_for(e, &r, &q[i], path, i % 2);
        submit_ok(e, &r, NULL);
    }
    assert_int_equal(http_client_active(e->cli), N);
    env_run(e, 10000);
    for (int i = 0; i < N; i++) {
        char want[128];
        snprintf(want, sizeof(want), "{\"method\":\"GET\",\"path\":\"/echo/%d\",\"received\":null}",
                 i);
        assert_int_equal(q[i].done_calls, 1);
        assert_int_equal(q[i].err, HTTP_CLIENT_OK);
        assert_string_equal(rq_body(&q[i]), want);
        buf_free(&q[i].body);
    }
    assert_int_equal(http_client_active(e->cli), 0);
    free(q);
}

static void test_keepalive_reuse(void **state)
{
    struct env *e = *state;
    struct http_client_request r;
    struct rq q;
    rq_init(&q, e);
    req_for(e, &r, &q, "/echo/ka", 0);
    q.chain = &r; /* on_done submits the same request again, 9 times */
    q.chain_left = 9;
    submit_ok(e, &r, NULL);
    env_run(e, 5000);
    assert_int_equal(q.done_calls, 10);
    assert_int_equal(q.err, HTTP_CLIENT_OK);
    assert_int_equal(q.res.reused, 1);
    assert_int_equal(q.res.connect_us, 0);
    assert_int_equal(atomic_load(&e->srv->accepted), 1);
    buf_free(&q.body);
}

static void test_methods_and_dead_keepalive(void **state)
{
    struct env *e = *state;
    struct http_client_request r;
    struct rq h, d, c;
    rq_init(&h, e);
    rq_init(&d, e);
    rq_init(&c, e);
    req_for(e, &r, &h, "/echo/head", 0);
    r.method = "HEAD";
    submit_ok(e, &r, NULL);
    req_for(e, &r, &d, "/echo/delete", 0);
    r.method = "DELETE";
    submit_ok(e, &r, NULL);
    env_run(e, 3000);
    assert_int_equal(h.err, HTTP_CLIENT_OK);
    assert_int_equal(h.status, 200);
    assert_int_equal(h.body.len, 0);
    assert_int_equal(d.err, HTTP_CLIENT_OK);
    assert_string_equal(rq_body(&d),
                        "{\"method\":\"DELETE\",\"path\":\"/echo/delete\",\"received\":null}");

    /* The server drops the connection after each answer: the next request must not
     * fail. The two kept-alive connections above serve one each, then two new ones. */
    req_for(e, &r, &c, "/echo/close", 0);
    c.chain = &r;
    c.chain_left = 3;
    assert_int_equal(atomic_load(&e->srv->accepted), 2);
    submit_ok(e, &r, NULL);
    env_run(e, 3000);
    assert_int_equal(c.done_calls, 4);
    assert_int_equal(c.err, HTTP_CLIENT_OK);
    assert_int_equal(c.res.reused, 0);
    assert_int_equal(atomic_load(&e->srv->accepted), 4);
    buf_free(&h.body);
    buf_free(&d.body);
    buf_free(&c.body);
}

static void test_429_headers_before_body(void **state)
{
    struct env *e = *state;
    struct http_client_request r;
    struct rq a, b;
    rq_init(&a, e);
    rq_init(&b, e);
    req_for(e, &r, &a, "/429", 1);
    submit_ok(e, &r, NULL);
    req_for(e, &r, &b, "/429", 1);
    b.headers_rc = HTTP_CLIENT_ABORT; /* a proxy deciding to retry elsewhere */
    submit_ok(e, &r, NULL);
    env_run(e, 3000);
    assert_int_equal(a.err, HTTP_CLIENT_OK);
    assert_int_equal(a.status, 429);
    assert_int_equal(a.header_status, 429);
    assert_string_equal(a.retry_after, "7");
    assert_string_equal(rq_body(&a), "{\"error\":{\"message\":\"slow down\"}}");
    assert_int_equal(b.err, HTTP_CLIENT_E_ABORTED);
    assert_int_equal(b.status, 429);
    assert_int_equal(b.data_calls, 0);
    buf_free(&a.body);
    buf_free(&b.body);
}

static void test_cut_response(void **state)
{
    struct env *e = *state;
    struct http_client_request r;
    struct rq q, k;
    rq_init(&q, e);
    rq_init(&k, e);
    req_for(e, &r, &q, "/cut", 1);
    submit_ok(e, &r, NULL);
    req_for(e, &r, &k, "/chunkcut", 1);
    submit_ok(e, &r, NULL);
    env_run(e, 3000);
    assert_int_equal(q.err, HTTP_CLIENT_E_RECV);
    assert_int_equal(q.status, 200);
    assert_string_equal(rq_body(&q), "0123456789");
    assert_int_equal(k.err, HTTP_CLIENT_E_RECV);
    assert_int_equal(k.status, 200);
    assert_string_equal(rq_body(&k), "data: {}\n\n");
    assert_true(k.res.bytes_received == 10);
    buf_free(&q.body);
    buf_free(&k.body);

    struct rq h, f1, f2;
    rq_init(&h, e);
    rq_init(&f1, e);
    rq_init(&f2, e);
    req_for(e, &r, &h, "/headcut", 1);
    submit_ok(e, &r, NULL);
    env_run(e, 3000);
    assert_int_equal(h.err, HTTP_CLIENT_E_RECV); /* curl alone would call this a success */
    assert_int_equal(h.headers_calls, 0);
    req_for(e, &r, &f1, "/echo/first", 1);
    submit_ok(e, &r, NULL);
    env_run(e, 3000);
    req_for(e, &r, &f2, "/folded", 1);
    submit_ok(e, &r, NULL);
    env_run(e, 3000);
    assert_int_equal(f1.err, HTTP_CLIENT_OK);
    assert_int_equal(f2.done_calls, 1);
    buf_free(&h.body);
    buf_free(&f1.body);
    buf_free(&f2.body);
}

static void test_pause_resume_response(void **state)
{
    struct env *e = *state;
    struct http_client_request r;
    struct rq q;
    rq_init(&q, e);
    req_for(e, &r, &q, "/stream?n=3&ms=10", 1);
    r.idle_timeout_ms = 60; /* a paused stream is not idle */
    q.pause_first = 1;
    uint64_t t0 = loop_now_ns();
    submit_ok(e, &r, NULL);
    env_run(e, 3000);
    assert_int_equal(q.err, HTTP_CLIENT_OK);
    /* the refused first piece came again, nothing was lost, and nothing came during the
     * 150 ms pause although the whole body had long arrived (lower bounds only: load-proof) */
    assert_string_equal(rq_body(&q), "chunk 0\nchunk 1\nchunk 2\n");
    assert_true(ms_between(t0, q.first_data_ns) >= 145.0);
    assert_true(q.res.total_us >= 145000);
    buf_free(&q.body);
}

/* Streams a request body of 3 parts, pausing before each until a timer resumes it. */
struct upload {
    struct rq q;
    struct http_client_req *req;
    int part;
    int ready;
    char want[64];
};

static void upload_resume_cb(struct loop *l, void *ud)
{
    struct upload *u = ud;
    u->ready = 1;
    http_client_resume_body(u->req);
}

static long upload_read(struct http_client_req *req, char *buf, size_t cap, void *ud)
{
    struct upload *u = ud;
    static const char *parts[] = {"hello ", "streaming ", "world"};
    u->req = req;
    if (u->part == 3)
        return 0;
    if (!u->ready) {
        loop_timer_add(u->q.e->loop, 20, upload_resume_cb, u);
        return HTTP_CLIENT_READ_PAUSE;
    }
    u->ready = 0;
    size_t n = strlen(parts[u->part]);
    assert_true(n <= cap);
    memcpy(buf, parts[u->part++], n);
    return (long)n;
}

static void upload_done(struct http_client_req *req, const struct http_client_result *r, void *ud)
{
    rq_done(req, r, ud); /* struct upload starts with its rq */
}

static void test_streaming_upload(void **state)
{
    struct env *e = *state;
    struct http_client_request r;
    struct upload u;
    memset(&u, 0, sizeof(u));
    rq_init(&u.q, e);
    req_for(e, &r, &u.q, "/upload", 0);
    r.method = "POST";
    r.read_body = upload_read;
    r.body_size = -1;
    r.on_done = upload_done;
    r.ud = &u;
    submit_ok(e, &r, NULL);
    env_run(e, 3000);
    assert_int_equal(u.q.err, HTTP_CLIENT_OK);
    unsigned long sum = 0;
    for (const char *p = "hello streaming world"; *p; p++)
        sum = sum * 31 + (unsigned char)*p;
    char want[128];
    snprintf(want, sizeof(want), "POST 21 %lu chunked", sum);
    assert_string_equal(rq_body(&u.q), want);
    assert_int_equal(u.part, 3);
    buf_free(&u.q.body);
}

struct sse_collect {
    struct rq q;
    struct sse_parser p;
    struct buf events;
};

static int sse_ev(void *ud, const struct sse_event *ev)
{
    struct sse_collect *s = ud;
    buf_printf(&s->events, "<%s:%s>", ev->type, ev->data);
    return 0;
}

static int sse_data(struct http_client_req *req, const char *d, size_t n, void *ud)
{
    struct sse_collect *s = ud;
    return sse_parser_feed(&s->p, d, n) ? HTTP_CLIENT_ABORT : HTTP_CLIENT_CONTINUE;
}

static void test_sse_stream_through_parser(void **state)
{
    struct env *e = *state;
    struct http_client_request r;
    struct sse_collect s;
    memset(&s, 0, sizeof(s));
    rq_init(&s.q, e);
    buf_init(&s.events, 4096);
    sse_parser_init(&s.p, 0, 0, sse_ev, &s);
    req_for(e, &r, &s.q, "/sse", 1);
    r.on_data = sse_data;
    r.on_headers = NULL;
    r.ud = &s;
    submit_ok(e, &r, NULL);
    env_run(e, 3000);
    assert_int_equal(s.q.err, HTTP_CLIENT_OK);
    assert_int_equal(sse_parser_finish(&s.p), 0);
    assert_string_equal(s.events.data, "<:{\"i\":0}><:{\"i\":1}><usage:{\"tokens\":3}><:[DONE]>");
    sse_parser_free(&s.p);
    buf_free(&s.events);
    buf_free(&s.q.body);
}

static void test_proxy_env(void **state)
{
    struct env *e = *state;
    /* a proxy that refuses connections: only used when asked for */
    int port;
    int fd = ts_listen(&port);
    assert_true(fd >= 0);
    close(fd);
    char proxy[64];
    snprintf(proxy, sizeof(proxy), "http://127.0.0.1:%d", port);
    setenv("http_proxy", proxy, 1);
    unsetenv("no_proxy");
    unsetenv("NO_PROXY");
    struct http_client_request r;
    struct rq a, b, c;
    rq_init(&a, e);
    rq_init(&b, e);
    rq_init(&c, e);
    req_for(e, &r, &a, "/echo/direct", 0);
    submit_ok(e, &r, NULL);
    req_for(e, &r, &b, "/echo/env", 0);
    r.proxy_from_env = 1;
    submit_ok(e, &r, NULL);
    req_for(e, &r, &c, "/echo/explicit", 0);
    r.proxy = proxy;
    submit_ok(e, &r, NULL);
    env_run(e, 3000);
    unsetenv("http_proxy");
    assert_int_equal(a.err, HTTP_CLIENT_OK);
    assert_int_equal(b.err, HTTP_CLIENT_E_CONNECT);
    assert_int_equal(c.err, HTTP_CLIENT_E_CONNECT);
    buf_free(&a.body);
    buf_free(&b.body);
    buf_free(&c.body);
}

static void test_submit_errors(void **state)
{
    struct env *e = *state;
    struct http_client_request r;
    struct rq q;
    rq_init(&q, e);
    struct http_client_req *h = (struct http_client_req *)&q;
    req_for(e, &r, &q, "/", 1);
    r.on_done = NULL;
    assert_int_equal(http_client_submit(e->cli, &r, &h), AS_EINVAL);
    assert_null(h);
    req_for(e, &r, &q, "/", 1);
    r.method = "GET X";
    assert_int_equal(http_client_submit(e->cli, &r, NULL), AS_EINVAL);
    static const char *bad[] = {"X-Evil: a\r\nInjected: b", NULL};
    req_for(e, &r, &q, "/", 1);
    r.headers = bad;
    assert_int_equal(http_client_submit(e->cli, &r, NULL), AS_EINVAL);
    req_for(e, &r, &q, "/", 1);
    r.url = NULL;
    assert_int_equal(http_client_submit(e->cli, &r, NULL), AS_EINVAL);
    assert_int_equal(http_client_active(e->cli), 0);
    assert_int_equal(q.done_calls, 0);

    /* a scheme we do not speak fails through on_done, not inside submit */
    req_for(e, &r, &q, "/", 1);
    r.url = "ftp://127.0.0.1/x";
    submit_ok(e, &r, NULL);
    assert_int_equal(q.done_calls, 0);
    env_run(e, 3000);
    assert_int_equal(q.err, HTTP_CLIENT_E_INVALID);
    buf_free(&q.body);
}

static void test_free_cancels_pending(void **state)
{
    struct env *e = *state;
    struct http_client_request r;
    struct rq q;
    rq_init(&q, e);
    req_for(e, &r, &q, "/hang", 1);
    submit_ok(e, &r, NULL);
    e->guard = loop_timer_add(e->loop, 100, guard_cb, e); /* let it connect and send */
    loop_run(e->loop);
    assert_int_equal(q.done_calls, 0);
    http_client_free(e->cli);
    assert_int_equal(q.done_calls, 1);
    assert_int_equal(q.err, HTTP_CLIENT_E_CANCELLED);
    e->cli = http_client_new(e->loop); /* for the teardown */
    assert_non_null(e->cli);
    buf_free(&q.body);
}

/* Submitting from another thread: loop_post a function that submits on the loop thread. */
struct xthread {
    struct env *e;
    struct http_client_request r;
    struct rq q;
    int post_rc, submit_rc;
};

static void xthread_submit(struct loop *l, void *ud)
{
    struct xthread *x = ud;
    x->submit_rc = http_client_submit(x->e->cli, &x->r, NULL);
}

static void *xthread_main(void *arg)
{
    struct xthread *x = arg;
    x->post_rc = loop_post(x->e->loop, xthread_submit, x);
    return NULL;
}

static void test_submit_from_other_thread(void **state)
{
    struct env *e = *state;
    struct xthread x;
    memset(&x, 0, sizeof(x));
    x.e = e;
    rq_init(&x.q, e);
    req_for(e, &x.r, &x.q, "/echo/x", 0);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, xthread_main, &x), 0);
    pthread_join(t, NULL);
    assert_int_equal(x.post_rc, 0);
    e->pending++; /* the post runs inside env_run */
    env_run(e, 3000);
    assert_int_equal(x.submit_rc, 0);
    assert_int_equal(x.q.err, HTTP_CLIENT_OK);
    assert_int_equal(x.q.status, 200);
    buf_free(&x.q.body);
}

static void test_parse_headers(void **state)
{
    (void)state;
    static const char head[] = "HTTP/1.1 429 Too Many Requests\r\n"
                               "Retry-After:   7 \r\n"
                               "retry-after-ms: 1500\n"
                               "X-Folded: a\r\n"
                               "  continued: line\r\n"
                               "NoColon\r\n"
                               ": no name\r\n"
                               "Empty:\r\n";
    struct http_header h[8];
    ssize_t n = http_client__parse_headers(head, sizeof(head) - 1, h, 8);
    assert_int_equal(n, 4);
    const struct http_header *ra = http_header_find(h, (size_t)n, "RETRY-AFTER");
    assert_non_null(ra);
    assert_int_equal(ra->value.len, 1);
    assert_memory_equal(ra->value.p, "7", 1);
    const struct http_header *ms = http_header_find(h, (size_t)n, "Retry-After-Ms");
    assert_non_null(ms);
    assert_int_equal(ms->value.len, 4);
    const struct http_header *f = http_header_find(h, (size_t)n, "x-folded");
    assert_non_null(f);
    assert_memory_equal(f->value.p, "a", f->value.len);
    const struct http_header *e = http_header_find(h, (size_t)n, "empty");
    assert_non_null(e);
    assert_int_equal(e->value.len, 0);
    assert_null(http_header_find(h, (size_t)n, "Retry"));
    assert_int_equal(http_client__parse_headers(head, sizeof(head) - 1, h, 3), -1);
}

/* ---- a proxy on the real server: MHD and curl sharing one worker loop ----------------- */

static struct http_client *px_cli; /* the client of the server's only worker loop */

struct up_gen { /* upstream SSE generator with backpressure */
    struct http_stream *st;
    int i, n;
};

static void up_pump(struct http_stream *st, void *ud)
{
    struct up_gen *g = ud;
    char ev[128];
    while (g->i < g->n) {
        int k = snprintf(ev, sizeof(ev), "{\"i\":%d,\"pad\":\"%060d\"}", g->i, g->i);
        int rc = http_sse_event(st, NULL, ev, (size_t)k);
        if (rc == AS_EAGAIN)
            return; /* on_writable calls us again */
        if (rc != 0)
            break;
        g->i++;
    }
    http_stream_end(st);
    free(g);
}

static void up_gone(struct http_stream *st, void *ud)
{
    http_stream_end(st);
    free(ud);
}

static void h_up_sse(struct http_req *req, void *ud)
{
    const char *n = http_req_query(req, "n");
    struct up_gen *g = calloc(1, sizeof(*g));
    if (!g) {
        http_respond_error(req, 500, "oom", NULL, NULL, NULL);
        return;
    }
    g->n = n ? (int)strtol(n, NULL, 10) : 10;
    g->st = http_stream_begin(req, 200, "text/event-stream");
    if (!g->st) {
        free(g);
        return;
    }
    http_stream_set_callbacks(g->st, up_gone, up_pump, g);
    up_pump(g->st, g);
}

struct px {
    struct http_req *req; /* until the response starts */
    struct http_stream *st;
    struct http_client_req *up;
    int paused;
};

static atomic_int px_pauses;

static void px_gone(struct http_stream *st, void *ud)
{
    struct px *p = ud;
    http_client_cancel(p->up); /* on_done ends the stream */
}

static void px_writable(struct http_stream *st, void *ud)
{
    struct px *p = ud;
    if (p->paused) {
        p->paused = 0;
        http_client_resume(p->up);
    }
}

static int px_headers(struct http_client_req *up, int status, const struct http_header *h, size_t n,
                      void *ud)
{
    struct px *p = ud;
    if (status != 200)
        return HTTP_CLIENT_ABORT; /* a gateway would retry elsewhere here */
    p->st = http_stream_begin(p->req, status, "text/event-stream");
    p->req = NULL;
    if (!p->st)
        return HTTP_CLIENT_ABORT;
    http_stream_set_callbacks(p->st, px_gone, px_writable, p);
    return HTTP_CLIENT_CONTINUE;
}

static int px_data(struct http_client_req *up, const char *d, size_t n, void *ud)
{
    struct px *p = ud;
    int rc = http_stream_write(p->st, d, n);
    if (rc == 0)
        return HTTP_CLIENT_CONTINUE;
    if (rc == AS_EAGAIN) {
        p->paused = 1;
        atomic_fetch_add(&px_pauses, 1);
        return HTTP_CLIENT_PAUSE; /* the same bytes come again after resume */
    }
    return HTTP_CLIENT_ABORT;
}

static void px_done(struct http_client_req *up, const struct http_client_result *r, void *ud)
{
    struct px *p = ud;
    if (p->st) {
        if (r->err != HTTP_CLIENT_OK) { /* never a clean end after a broken stream */
            char ev[160];
            int k = snprintf(ev, sizeof(ev), "{\"error\":\"%s\"}", http_client_strerror(r->err));
            http_sse_event(p->st, "error", ev, (size_t)k);
        }
        http_stream_end(p->st);
    } else {
        http_respond_error(p->req, 502, http_client_strerror(r->err), NULL, NULL, NULL);
    }
    free(p);
}

static void h_proxy(struct http_req *req, void *ud)
{
    struct px *p = calloc(1, sizeof(*p));
    const char *to = http_req_query(req, "to");
    if (!p || !to) {
        free(p);
        http_respond_error(req, 400, "need ?to=", NULL, NULL, NULL);
        return;
    }
    p->req = req;
    struct http_client_request r = {.url = to,
                                    .timeout_ms = 10000,
                                    .idle_timeout_ms = 2000,
                                    .on_headers = px_headers,
                                    .on_data = px_data,
                                    .on_done = px_done,
                                    .ud = p};
    if (http_client_submit(px_cli, &r, &p->up) != 0) {
        free(p);
        http_respond_error(req, 500, "submit failed", NULL, NULL, NULL);
    }
}

/* The client side of the test pauses once, so the proxy's stream queue fills up. */
static int slow_data(struct http_client_req *req, const char *d, size_t n, void *ud)
{
    struct rq *q = ud;
    if (q->data_calls == 0 && q->pause_first) {
        q->pause_first = 0;
        q->req = req;
        loop_timer_add(q->e->loop, 200, resume_cb, q);
        return HTTP_CLIENT_PAUSE;
    }
    q->data_calls++;
    return buf_append(&q->body, d, n) ? HTTP_CLIENT_ABORT : HTTP_CLIENT_CONTINUE;
}

static void test_proxy_on_server_loop(void **state)
{
    struct env *e = *state;
    struct http_server_config cfg = {.bind_addr = "127.0.0.1",
                                     .threads = 1,
                                     .drain_timeout_ms = 2000,
                                     .stream_queue_bytes = 32768};
    char err[256] = "";
    struct http_server *srv = http_server_new(&cfg, err, sizeof(err));
    assert_non_null(srv);
    /* creating the client touches nothing of the loop: fine before the worker runs */
    px_cli = http_client_new(http_server_worker_loop(srv, 0));
    assert_non_null(px_cli);
    assert_int_equal(http_server_route(srv, "GET", "/up/sse", h_up_sse, NULL), 0);
    assert_int_equal(http_server_route(srv, "GET", "/proxy", h_proxy, NULL), 0);
    assert_int_equal(http_server_start(srv), 0);
    int port = http_server_port(srv);

    enum { NEV = 20000 }; /* about 1.8 MB of events */
    struct rq ok, cut, refused;
    struct http_client_request r;
    rq_init(&ok, e);
    rq_init(&cut, e);
    rq_init(&refused, e);
    char url[256];
    snprintf(url, sizeof(url),
             "http://127.0.0.1:%d/proxy?to=http%%3A%%2F%%2F127.0.0.1%%3A%d%%2Fup%%2Fsse%%3Fn%%3D%d",
             port, port, NEV);
    req_for(e, &r, &ok, "/", 1);
    r.url = url;
    r.on_data = slow_data;
    ok.pause_first = 1;
    submit_ok(e, &r, NULL);

    char url2[256];
    snprintf(url2, sizeof(url2),
             "http://127.0.0.1:%d/proxy?to=http%%3A%%2F%%2F127.0.0.1%%3A%d%%2Fchunkcut", port,
             e->srv->port);
    req_for(e, &r, &cut, "/", 1);
    r.url = url2;
    submit_ok(e, &r, NULL);

    int dead;
    int fd = ts_listen(&dead);
    assert_true(fd >= 0);
    close(fd);
    char url3[256];
    snprintf(url3, sizeof(url3), "http://127.0.0.1:%d/proxy?to=http%%3A%%2F%%2F127.0.0.1%%3A%d%%2F",
             port, dead);
    req_for(e, &r, &refused, "/", 0);
    r.url = url3;
    submit_ok(e, &r, NULL);

    env_run(e, 20000);
    assert_int_equal(http_server_drain(srv), 0);
    http_client_free(px_cli); /* the worker loop no longer runs */
    px_cli = NULL;
    http_server_free(srv);

    assert_int_equal(ok.err, HTTP_CLIENT_OK);
    assert_int_equal(ok.status, 200);
    /* every event, in order, nothing lost or doubled across pauses */
    struct buf want;
    buf_init(&want, 8 << 20);
    for (int i = 0; i < NEV; i++)
        buf_printf(&want, "data: {\"i\":%d,\"pad\":\"%060d\"}\n\n", i, i);
    assert_int_equal(ok.body.len, want.len);
    assert_memory_equal(ok.body.data, want.data, want.len);
    buf_free(&want);
    fprintf(stderr, "proxy paused %d times for backpressure\n", atomic_load(&px_pauses));

    assert_int_equal(cut.err, HTTP_CLIENT_OK);
    assert_int_equal(cut.status, 200);
    assert_string_equal(rq_body(&cut),
                        "data: {}\n\nevent: error\ndata: {\"error\":\"recv_failed\"}\n\n");

    assert_int_equal(refused.status, 502);
    assert_non_null(strstr(rq_body(&refused), "connect_failed"));
    buf_free(&ok.body);
    buf_free(&cut.body);
    buf_free(&refused.body);
}

/* ---- TLS against openssl s_server --------------------------------------------------- */

static int run_cmd(const char *cmd)
{
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static void test_tls(void **state)
{
    struct env *e = *state;
    if (run_cmd("command -v openssl >/dev/null 2>&1") != 0) {
        fprintf(stderr, "skip: openssl command not installed (scripts/deps.sh installs it)\n");
        skip();
    }
    char dir[] = "/tmp/aistack-tls-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char cmd[1024], ca[300];
    snprintf(cmd, sizeof(cmd),
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
             "-keyout %s/key.pem -out %s/cert.pem -days 1 -subj /CN=127.0.0.1 "
             "-addext subjectAltName=IP:127.0.0.1 >/dev/null 2>&1",
             dir, dir);
    assert_int_equal(run_cmd(cmd), 0);
    snprintf(ca, sizeof(ca), "%s/cert.pem", dir);

    int port;
    int lfd = ts_listen(&port);
    assert_true(lfd >= 0);
    close(lfd);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char portarg[32], key[300];
        snprintf(portarg, sizeof(portarg), "127.0.0.1:%d", port);
        snprintf(key, sizeof(key), "%s/key.pem", dir);
        sigset_t none; /* http_server_start() blocked SIGTERM in this thread; exec keeps masks */
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        int devnull = open("/dev/null", O_RDWR);
        dup2(devnull, 0);
        dup2(devnull, 1);
        dup2(devnull, 2);
        execlp("openssl", "openssl", "s_server", "-accept", portarg, "-cert", ca, "-key", key,
               "-www", "-quiet", (char *)NULL);
        _exit(127);
    }
    /* wait until it listens */
    int up = 0;
    for (int i = 0; i < 100 && !up; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_port = htons((uint16_t)port),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        up = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
        close(fd);
        if (!up)
            ms_sleep(20);
    }

    struct http_client_request r;
    struct rq ok, bad;
    char url[64];
    snprintf(url, sizeof(url), "https://127.0.0.1:%d/", port);
    rq_init(&ok, e);
    rq_init(&bad, e);
    if (up) {
        req_for(e, &r, &ok, "/", 0);
        r.url = url;
        r.ca_file = ca;
        submit_ok(e, &r, NULL);
        env_run(e, 5000);
        req_for(e, &r, &bad, "/", 0); /* the system store does not know our CA */
        r.url = url;
        submit_ok(e, &r, NULL);
        env_run(e, 5000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    run_cmd(cmd);
    assert_true(up);
    assert_int_equal(ok.err, HTTP_CLIENT_OK);
    assert_int_equal(ok.status, 200);
    assert_true(ok.res.connect_us > 0);
    assert_int_equal(bad.err, HTTP_CLIENT_E_TLS);
    assert_true(http_client_err_before_send(bad.err));
    buf_free(&ok.body);
    buf_free(&bad.body);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
#define T(f) cmocka_unit_test_setup_teardown(f, env_setup, env_teardown)
    const struct CMUnitTest tests[] = {
        T(test_get_post_json),
        T(test_streaming_chunks_arrive_early),
        T(test_connect_refused_fast),
        T(test_connect_timeout),
        T(test_total_timeout),
        T(test_first_byte_timeout),
        T(test_idle_timeout_mid_stream),
        T(test_response_too_large),
        T(test_cancel_mid_stream),
        T(test_100_concurrent),
        T(test_keepalive_reuse),
        T(test_methods_and_dead_keepalive),
        T(test_429_headers_before_body),
        T(test_cut_response),
        T(test_pause_resume_response),
        T(test_streaming_upload),
        T(test_sse_stream_through_parser),
        T(test_proxy_env),
        T(test_submit_errors),
        T(test_free_cancels_pending),
        T(test_submit_from_other_thread),
        T(test_proxy_on_server_loop),
        T(test_tls),
        cmocka_unit_test(test_parse_headers),
    };
#undef T
    /* the same contract on both transports: native for http:// by default, then
     * libcurl for everything (as with AISTACK_HTTP_CLIENT=curl) */
    unsetenv("AISTACK_HTTP_CLIENT");
    int failed = cmocka_run_group_tests_name("native transport", tests, NULL, NULL);
    setenv("AISTACK_HTTP_CLIENT", "curl", 1);
    failed += cmocka_run_group_tests_name("libcurl transport", tests, NULL, NULL);
    return failed;
}
