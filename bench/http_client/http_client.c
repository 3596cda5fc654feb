/*
 * bench_http_client - throughput and latency of the loop-driven HTTP client.
 *
 *   bench_http_client URL [concurrency=64] [requests=100000] [post_bytes=0]
 *
 * Keeps `concurrency` requests in flight on one loop (one thread), each new one
 * submitted from the previous one's on_done, until `requests` are done; prints
 * requests/s and p50/p99/max latency. Point it at a fast upstream (nginx serving
 * a small file) to see the client's own cost. Not a test: it asserts nothing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/http_client.h"
#include "core/loop.h"

struct bench {
    struct loop *loop;
    struct http_client *cli;
    struct http_client_request req;
    long target, submitted, done, errors, new_conns;
    uint64_t *lat_ns;
};

struct slot {
    struct bench *b;
    uint64_t t0;
};

static void bench_submit(struct bench *b, struct slot *s);

static void bench_done(struct http_client_req *req, const struct http_client_result *r, void *ud)
{
    struct slot *s = ud;
    struct bench *b = s->b;
    if (r->err != HTTP_CLIENT_OK || r->status != 200) {
        if (b->errors++ < 5)
            fprintf(stderr, "error: %s %d %s\n", http_client_strerror(r->err), r->status,
                    r->message);
    }
    b->new_conns += !r->reused;
    b->lat_ns[b->done++] = loop_now_ns() - s->t0;
    if (b->submitted < b->target)
        bench_submit(b, s);
    else if (b->done == b->target)
        loop_stop(b->loop);
}

static void bench_submit(struct bench *b, struct slot *s)
{
    b->req.ud = s;
    s->t0 = loop_now_ns();
    b->submitted++;
    if (http_client_submit(b->cli, &b->req, NULL) != 0) {
        fprintf(stderr, "submit failed\n");
        exit(1);
    }
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s URL [concurrency] [requests] [post_bytes]\n", argv[0]);
        return 2;
    }
    long conc = argc > 2 ? strtol(argv[2], NULL, 10) : 64;
    long total = argc > 3 ? strtol(argv[3], NULL, 10) : 100000;
    long post = argc > 4 ? strtol(argv[4], NULL, 10) : 0;
    if (conc < 1 || total < conc || post < 0 || post > (64 << 20)) {
        fprintf(stderr, "bad arguments\n");
        return 2;
    }
    struct bench b = {0};
    b.loop = loop_new();
    b.cli = b.loop ? http_client_new(b.loop) : NULL;
    b.lat_ns = calloc((size_t)total, sizeof(uint64_t));
    struct slot *slots = calloc((size_t)conc, sizeof(*slots));
    char *body = post ? malloc((size_t)post) : NULL;
    if (!b.cli || !b.lat_ns || !slots || (post && !body)) {
        fprintf(stderr, "setup failed\n");
        return 1;
    }
    static const char *hdrs[] = {"Content-Type: application/json", NULL};
    b.req.url = argv[1];
    b.req.on_done = bench_done;
    b.req.timeout_ms = 10000;
    if (post) {
        memset(body, 'x', (size_t)post);
        b.req.method = "POST";
        b.req.headers = hdrs;
        b.req.body = body;
        b.req.body_len = (size_t)post;
        b.req.body_borrowed = 1;
    }
    b.target = total;
    uint64_t t0 = loop_now_ns();
    for (long i = 0; i < conc; i++) {
        slots[i].b = &b;
        bench_submit(&b, &slots[i]);
    }
    loop_run(b.loop);
    double secs = (double)(loop_now_ns() - t0) / 1e9;
    qsort(b.lat_ns, (size_t)b.done, sizeof(uint64_t), cmp_u64);
    printf("requests=%ld concurrency=%ld errors=%ld new_connections=%ld time=%.2fs rps=%.0f "
           "p50=%.1fus p99=%.1fus max=%.1fus\n",
           b.done, conc, b.errors, b.new_conns, secs, (double)b.done / secs,
           (double)b.lat_ns[b.done / 2] / 1e3, (double)b.lat_ns[b.done * 99 / 100] / 1e3,
           (double)b.lat_ns[b.done - 1] / 1e3);
    http_client_free(b.cli);
    loop_free(b.loop);
    free(b.lat_ns);
    free(slots);
    free(body);
    return b.errors ? 1 : 0;
}
