/*
 * testserver.c - a small server on src/core for the integration test and the benchmark.
 *
 * Routes:
 *   GET  /hello              {"message":"Hello, World!"} (the benchmark's bytes)
 *   POST /echo               the request body, same content type
 *   GET  /sse?n=N&interval_ms=M  N Server-Sent Events from a producer thread
 *   GET  /slow?ms=M          answered M ms later from another thread
 *   GET  /items/{id}         {"id":"<id>"}
 *   GET  /stats              counters: streams gone / completed / active
 * Flags: --port N (0 = ephemeral), --port-file PATH (bound port written there),
 * --threads, --max-body, --header-timeout-ms, --idle-timeout-ms, --max-conns,
 * --drain-timeout-ms, --log-level. Exits 0 after a drain on SIGTERM/SIGINT.
 * Not for: production use.
 */
#include "core/err.h"
#include "core/http_server.h"
#include "core/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static atomic_int n_gone, n_completed, n_active, n_threads;

static const char hello[] = "{\"message\":\"Hello, World!\"}";

static int parse_num(const char *s, long lo, long hi, long *out)
{
    if (!s || !*s)
        return AS_EINVAL;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < lo || v > hi)
        return AS_EINVAL;
    *out = v;
    return 0;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static void h_hello(struct http_req *req, void *ud)
{
    http_respond_json(req, 200, hello, sizeof hello - 1);
}

static void h_echo(struct http_req *req, void *ud)
{
    const char *ct = http_req_header(req, "Content-Type");
    struct str b = http_req_body(req);
    http_respond(req, 200, ct ? ct : "application/octet-stream", b.p, b.len);
}

static void h_item(struct http_req *req, void *ud)
{
    struct buf b;
    buf_init(&b, 4096);
    struct str id = http_req_param(req);
    if (buf_append_cstr(&b, "{\"id\":") || buf_append_json_str(&b, id.p, id.len) ||
        buf_append_char(&b, '}'))
        http_respond_error(req, 400, "id too long", NULL, "id", NULL);
    else
        http_respond_json(req, 200, b.data, b.len);
    buf_free(&b);
}

static void h_stats(struct http_req *req, void *ud)
{
    char body[160];
    int n = snprintf(body, sizeof body, "{\"gone\":%d,\"completed\":%d,\"active\":%d}",
                     atomic_load(&n_gone), atomic_load(&n_completed), atomic_load(&n_active));
    http_respond_json(req, 200, body, (size_t)n);
}

/* ---- /slow: answered from another thread -------------------------------------- */

struct slow {
    struct http_req *req;
    long ms;
};

static void *slow_main(void *arg)
{
    struct slow *s = arg;
    sleep_ms(s->ms);
    char body[64];
    int n = snprintf(body, sizeof body, "{\"slept_ms\":%ld}", s->ms);
    http_respond_json(s->req, 200, body, (size_t)n);
    free(s);
    atomic_fetch_sub(&n_threads, 1);
    return NULL;
}

static int spawn(void *(*fn)(void *), void *arg)
{
    pthread_t t;
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    atomic_fetch_add(&n_threads, 1);
    int rc = pthread_create(&t, &a, fn, arg);
    pthread_attr_destroy(&a);
    if (rc != 0)
        atomic_fetch_sub(&n_threads, 1);
    return rc;
}

static void h_slow(struct http_req *req, void *ud)
{
    long ms = 100;
    const char *q = http_req_query(req, "ms");
    if (q && parse_num(q, 0, 60000, &ms) != 0) {
        http_respond_error(req, 400, "ms must be 0..60000", NULL, "ms", NULL);
        return;
    }
    struct slow *s = malloc(sizeof *s);
    if (!s) {
        http_respond_error(req, 500, "out of memory", NULL, NULL, NULL);
        return;
    }
    s->req = req;
    s->ms = ms;
    if (spawn(slow_main, s) != 0) {
        free(s);
        http_respond_error(req, 503, "cannot start a thread", NULL, NULL, NULL);
    }
}

/* ---- /sse: a producer thread with backpressure --------------------------------- */

struct producer {
    struct http_stream *s;
    long n, interval_ms;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int signalled;
};

static void prod_wake(struct http_stream *s, void *ud)
{
    struct producer *p = ud;
    pthread_mutex_lock(&p->mu);
    p->signalled = 1;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

/* The producer learns that the client left from here or from a failing write, and
 * counts it once when it stops. */
static void prod_gone(struct http_stream *s, void *ud)
{
    prod_wake(s, ud);
}

static void prod_wait(struct producer *p)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 100 * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&p->mu);
    while (!p->signalled && pthread_cond_timedwait(&p->cv, &p->mu, &ts) == 0)
        ;
    p->signalled = 0;
    pthread_mutex_unlock(&p->mu);
}

static void *prod_main(void *arg)
{
    struct producer *p = arg;
    int ok = 1;
    for (long i = 0; i < p->n && ok; i++) {
        char data[64];
        int len = snprintf(data, sizeof data, "{\"i\":%ld,\"n\":%ld}", i, p->n);
        for (;;) {
            int rc = http_sse_event(p->s, NULL, data, (size_t)len);
            if (rc == 0)
                break;
            if (rc != AS_EAGAIN) {
                ok = 0;
                break;
            }
            prod_wait(p);
        }
        if (ok && p->interval_ms > 0 && i + 1 < p->n)
            sleep_ms(p->interval_ms);
    }
    if (ok)
        ok = http_sse_event(p->s, "done", "[DONE]", 6) == 0;
    /* ending also happens when the client is gone: the stream must be released */
    http_stream_end(p->s);
    atomic_fetch_add(ok ? &n_completed : &n_gone, 1);
    atomic_fetch_sub(&n_active, 1);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p);
    atomic_fetch_sub(&n_threads, 1);
    return NULL;
}

static void h_sse(struct http_req *req, void *ud)
{
    long n = 10, interval = 0;
    const char *qn = http_req_query(req, "n"), *qi = http_req_query(req, "interval_ms");
    if ((qn && parse_num(qn, 0, 100000000L, &n) != 0) ||
        (qi && parse_num(qi, 0, 10000, &interval) != 0)) {
        http_respond_error(req, 400, "bad n or interval_ms", NULL, NULL, NULL);
        return;
    }
    struct producer *p = calloc(1, sizeof *p);
    if (!p) {
        http_respond_error(req, 500, "out of memory", NULL, NULL, NULL);
        return;
    }
    p->n = n;
    p->interval_ms = interval;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    p->s = http_stream_begin(req, 200, "text/event-stream");
    if (!p->s) {
        pthread_cond_destroy(&p->cv);
        pthread_mutex_destroy(&p->mu);
        free(p);
        return;
    }
    http_stream_set_callbacks(p->s, prod_gone, prod_wake, p);
    atomic_fetch_add(&n_active, 1);
    if (spawn(prod_main, p) != 0) {
        http_stream_end(p->s);
        atomic_fetch_sub(&n_active, 1);
        pthread_cond_destroy(&p->cv);
        pthread_mutex_destroy(&p->mu);
        free(p);
    }
}

static int usage(void)
{
    fprintf(stderr, "usage: testserver [--port N] [--port-file PATH] [--threads N] [--max-body N]\n"
                    "  [--header-timeout-ms N] [--idle-timeout-ms N] [--max-conns N]\n"
                    "  [--drain-timeout-ms N] [--log-level LEVEL]\n");
    return 2;
}

int main(int argc, char **argv)
{
    struct http_server_config cfg = {.bind_addr = "127.0.0.1", .service = "testserver"};
    const char *port_file = NULL;
    for (int i = 1; i < argc; i += 2) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        long n = 0;
        if (!strcmp(a, "--port-file") && v) {
            port_file = v;
        } else if (!strcmp(a, "--log-level") && v) {
            enum log_level lv;
            if (log_parse_level(v, &lv) != 0)
                return usage();
            log_set_level(lv);
        } else if (!strcmp(a, "--bind") && v) {
            cfg.bind_addr = v;
        } else if (v && parse_num(v, 0, 1L << 40, &n) == 0) {
            if (!strcmp(a, "--port") && n < 65536)
                cfg.port = (uint16_t)n;
            else if (!strcmp(a, "--threads") && n <= 256)
                cfg.threads = (int)n;
            else if (!strcmp(a, "--max-body"))
                cfg.max_body_bytes = (size_t)n;
            else if (!strcmp(a, "--header-timeout-ms") && n < 1L << 31)
                cfg.header_timeout_ms = (unsigned)n;
            else if (!strcmp(a, "--idle-timeout-ms") && n < 1L << 31)
                cfg.idle_timeout_ms = (unsigned)n;
            else if (!strcmp(a, "--max-conns") && n < 1L << 31)
                cfg.max_connections = (unsigned)n;
            else if (!strcmp(a, "--drain-timeout-ms") && n < 1L << 31)
                cfg.drain_timeout_ms = (unsigned)n;
            else
                return usage();
        } else {
            return usage();
        }
    }
    log_set_service("testserver");
    char err[256];
    struct http_server *srv = http_server_new(&cfg, err, sizeof err);
    if (!srv) {
        fprintf(stderr, "testserver: %s\n", err);
        return 1;
    }
    int rc = http_server_route(srv, "GET", "/hello", h_hello, NULL);
    rc |= http_server_route(srv, "POST", "/echo", h_echo, NULL);
    rc |= http_server_route(srv, "GET", "/sse", h_sse, NULL);
    rc |= http_server_route(srv, "GET", "/slow", h_slow, NULL);
    rc |= http_server_route(srv, "GET", "/items/{id}", h_item, NULL);
    rc |= http_server_route(srv, "GET", "/stats", h_stats, NULL);
    if (rc != 0) {
        fprintf(stderr, "testserver: cannot add routes\n");
        http_server_free(srv);
        return 1;
    }
    if (port_file) {
        char tmp[4096];
        snprintf(tmp, sizeof tmp, "%s.tmp", port_file);
        FILE *f = fopen(tmp, "w");
        if (!f || fprintf(f, "%u\n", (unsigned)http_server_port(srv)) < 0 || fclose(f) != 0 ||
            rename(tmp, port_file) != 0) {
            fprintf(stderr, "testserver: cannot write %s\n", port_file);
            http_server_free(srv);
            return 1;
        }
    }
    http_server_set_ready(srv, 1);
    rc = http_server_run(srv);
    /* producers and /slow threads still hold streams/requests: let them finish first */
    for (int i = 0; i < 500 && atomic_load(&n_threads) > 0; i++)
        sleep_ms(10);
    http_server_free(srv);
    return rc == 0 || rc == AS_ETIMEDOUT ? 0 : 1;
}
