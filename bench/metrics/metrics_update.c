/*
 * metrics_update.c - ns per hot-path metrics update (counter inc, gauge add,
 * histogram observe, label lookup), single-threaded and with T threads on one
 * series. Usage: bench_metrics_update [iterations] [threads]
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "core/metrics.h"

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static long g_iters;
static struct metric *g_counter, *g_hist;

static void *contend(void *arg)
{
    (void)arg;
    for (long i = 0; i < g_iters; i++) {
        metric_inc(g_counter);
        metric_observe(g_hist, (double)(i & 1023) * 1e-4);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? strtol(argv[1], NULL, 10) : 10000000;
    int nt = argc > 2 ? atoi(argv[2]) : 2;
    if (n <= 0 || nt <= 0 || nt > 64)
        return 2;
    struct metrics_registry *r = metrics_registry_new();
    static const char *const labels[] = {"model", "code", NULL};
    struct metric_family *c = metrics_counter_new(r, "bench_requests_total", "b", labels);
    struct metric_family *g = metrics_gauge_new(r, "bench_inflight", "b", NULL);
    struct metric_family *h =
        metrics_histogram_new(r, "bench_latency_seconds", "b", labels, metrics_buckets_latency,
                              metrics_buckets_latency_n);
    struct metric *cm = metric_labels(c, "model-a", "200");
    struct metric *gm = metric_nolabels(g);
    struct metric *hm = metric_labels(h, "model-a", "200");

    double t0 = now_ns();
    for (long i = 0; i < n; i++)
        metric_inc(cm);
    printf("counter inc:        %6.2f ns/op\n", (now_ns() - t0) / (double)n);
    t0 = now_ns();
    for (long i = 0; i < n; i++)
        metric_add(gm, 0.5);
    printf("gauge add (CAS):    %6.2f ns/op\n", (now_ns() - t0) / (double)n);
    t0 = now_ns();
    for (long i = 0; i < n; i++)
        metric_observe(hm, (double)(i & 1023) * 1e-4);
    printf("histogram observe:  %6.2f ns/op (15 buckets)\n", (now_ns() - t0) / (double)n);
    long nl = n / 10;
    t0 = now_ns();
    for (long i = 0; i < nl; i++)
        metric_inc(metric_labels(c, "model-a", (i & 1) ? "200" : "500"));
    printf("lookup + inc:       %6.2f ns/op\n", (now_ns() - t0) / (double)nl);

    g_iters = n / nt;
    g_counter = cm;
    g_hist = hm;
    pthread_t t[64];
    t0 = now_ns();
    for (int i = 0; i < nt; i++)
        pthread_create(&t[i], NULL, contend, NULL);
    for (int i = 0; i < nt; i++)
        pthread_join(t[i], NULL);
    printf("%d threads, same series, inc+observe: %6.2f ns/op-pair (wall per pair overall)\n", nt,
           (now_ns() - t0) / (double)(g_iters * nt));
    metrics_registry_free(r);
    return 0;
}
