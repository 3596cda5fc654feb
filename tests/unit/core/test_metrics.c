/* test_metrics.c - metrics registry: kinds, labels, bounds, exposition text, concurrency. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/log.h"
#include "core/metrics.h"

static const char *const L_MODEL_CODE[] = {"model", "code", NULL};

static char *render(struct metrics_registry *r)
{
    struct buf b;
    buf_init(&b, 1u << 20);
    assert_int_equal(metrics_registry_render(r, &b), 0);
    return buf_steal(&b);
}

static void test_counter_gauge(void **state)
{
    (void)state;
    struct metrics_registry *r = metrics_registry_new();
    struct metric_family *c = metrics_counter_new(r, "req_total", "Requests.", L_MODEL_CODE);
    struct metric_family *g = metrics_gauge_new(r, "inflight", "In flight.", NULL);
    assert_non_null(c);
    assert_non_null(g);
    struct metric *a = metric_labels(c, "m1", "200");
    struct metric *b = metric_labels(c, "m1", "500");
    assert_non_null(a);
    assert_ptr_equal(a, metric_labels(c, "m1", "200"));
    assert_ptr_not_equal(a, b);
    metric_inc(a);
    metric_add(a, 2);
    metric_add(a, 0.5);
    metric_add(a, -7); /* ignored: counters only go up */
    assert_true(metric_value(a) == 3.5);
    /* wrong number of label values */
    assert_null(metric_labels(c, "m1"));
    assert_null(metric_nolabels(c));
    struct metric *gm = metric_nolabels(g);
    metric_inc(gm);
    metric_inc(gm);
    metric_dec(gm);
    metric_add(gm, -3);
    assert_true(metric_value(gm) == -2);
    metric_set(gm, 42.25);
    assert_true(metric_value(gm) == 42.25);
    /* NULL handles are no-ops */
    metric_inc(NULL);
    metric_observe(NULL, 1);

    char *t = render(r);
    assert_non_null(strstr(t, "# HELP req_total Requests.\n# TYPE req_total counter\n"));
    assert_non_null(strstr(t, "req_total{model=\"m1\",code=\"200\"} 3.5\n"));
    assert_non_null(strstr(t, "req_total{model=\"m1\",code=\"500\"} 0\n"));
    assert_non_null(strstr(t, "# TYPE inflight gauge\ninflight 42.25\n"));
    free(t);
    metrics_registry_free(r);
}

static void test_registration_rules(void **state)
{
    (void)state;
    struct metrics_registry *r = metrics_registry_new();
    log_set_level(LOG_OFF);
    assert_null(metrics_counter_new(r, "no_suffix", "x", NULL));
    assert_null(metrics_gauge_new(r, "g_total", "x", NULL));
    assert_null(metrics_gauge_new(r, "9bad", "x", NULL));
    assert_null(metrics_gauge_new(r, "ok", "", NULL));
    assert_null(metrics_gauge_new(r, "ok", "x", (const char *[]){"le", NULL}));
    assert_null(metrics_gauge_new(r, "ok", "x", (const char *[]){"__x", NULL}));
    assert_null(metrics_gauge_new(r, "ok", "x", (const char *[]){"a", "a", NULL}));
    double bad[] = {1, 1};
    assert_null(metrics_histogram_new(r, "h", "x", NULL, bad, 2));
    assert_null(metrics_histogram_new(r, "h", "x", NULL, NULL, 0));
    /* same shape twice returns the same family; a different shape fails */
    struct metric_family *f = metrics_gauge_new(r, "ok", "x", (const char *[]){"a", NULL});
    assert_non_null(f);
    assert_ptr_equal(f, metrics_gauge_new(r, "ok", "x", (const char *[]){"a", NULL}));
    assert_null(metrics_gauge_new(r, "ok", "x", (const char *[]){"b", NULL}));
    assert_null(metrics_counter_new(r, "ok", "x", (const char *[]){"a", NULL}));
    log_set_level(LOG_INFO);
    metrics_registry_free(r);
}

static void test_series_bound(void **state)
{
    (void)state;
    struct metrics_registry *r = metrics_registry_new();
    struct metric_family *f = metrics_counter_new(r, "x_total", "x", (const char *[]){"k", NULL});
    metric_family_set_max_series(f, 50);
    log_set_level(LOG_OFF);
    char v[16];
    for (int i = 0; i < 100; i++) {
        snprintf(v, sizeof v, "v%d", i);
        struct metric *m = metric_labels(f, v);
        if (i < 50)
            assert_non_null(m);
        else
            assert_null(m);
        metric_inc(m);
    }
    /* existing series are still found after the bound is hit */
    assert_non_null(metric_labels(f, "v7"));
    assert_true(metric_value(metric_labels(f, "v7")) == 1);
    log_set_level(LOG_INFO);
    metrics_registry_free(r);
}

static void test_histogram_and_escaping(void **state)
{
    (void)state;
    struct metrics_registry *r = metrics_registry_new();
    double bk[] = {0.1, 1, 10};
    struct metric_family *h =
        metrics_histogram_new(r, "lat_seconds", "Latency\\help\nline.", L_MODEL_CODE, bk, 3);
    assert_non_null(h);
    struct metric *m = metric_labels(h, "a\"b\\c\nd", "\xff");
    assert_non_null(m);
    metric_observe(m, 0.05);
    metric_observe(m, 0.1); /* le is inclusive */
    metric_observe(m, 5);
    metric_observe(m, 100);
    assert_true(metric_value(m) == 4);
    assert_true(metric_hist_sum(m) == 105.15);
    char *t = render(r);
    assert_non_null(strstr(t, "# HELP lat_seconds Latency\\\\help\\nline.\n"));
    const char *lbl = "{model=\"a\\\"b\\\\c\\nd\",code=\"\xEF\xBF\xBD\"";
    char line[256];
    snprintf(line, sizeof line, "lat_seconds_bucket%s,le=\"0.1\"} 2\n", lbl);
    assert_non_null(strstr(t, line));
    snprintf(line, sizeof line, "lat_seconds_bucket%s,le=\"1\"} 2\n", lbl);
    assert_non_null(strstr(t, line));
    snprintf(line, sizeof line, "lat_seconds_bucket%s,le=\"10\"} 3\n", lbl);
    assert_non_null(strstr(t, line));
    snprintf(line, sizeof line, "lat_seconds_bucket%s,le=\"+Inf\"} 4\n", lbl);
    assert_non_null(strstr(t, line));
    snprintf(line, sizeof line, "lat_seconds_count%s} 4\n", lbl);
    assert_non_null(strstr(t, line));
    snprintf(line, sizeof line, "lat_seconds_sum%s} 105.15\n", lbl);
    assert_non_null(strstr(t, line));
    /* the repaired label value finds the same series */
    assert_ptr_equal(m, metric_labels(h, "a\"b\\c\nd", "\xff"));
    free(t);
    metrics_registry_free(r);
}

#define NTHREADS 8
#define NITER    100000

struct worker {
    struct metric_family *c, *g, *h;
    int id;
    pthread_barrier_t *start;
};

static void *hammer(void *arg)
{
    struct worker *w = arg;
    pthread_barrier_wait(w->start); /* all threads hammer at once */
    /* half of the threads look the series up once, half look up every time */
    struct metric *c = metric_labels(w->c, "m", "200");
    struct metric *g = metric_nolabels(w->g);
    struct metric *h = metric_labels(w->h, "m", "200");
    for (int i = 0; i < NITER; i++) {
        if (w->id & 1) {
            c = metric_labels(w->c, "m", "200");
            h = metric_labels(w->h, "m", "200");
        }
        metric_inc(c);
        metric_add(c, 0.5);
        metric_add(g, 1);
        metric_add(g, -0.25);
        metric_observe(h, (double)(i % 4));
        if (i % 1000 == 0) { /* new series appear concurrently */
            char v[32];
            snprintf(v, sizeof v, "t%d-%d", w->id, i);
            metric_inc(metric_labels(w->c, v, "x"));
        }
    }
    return NULL;
}

static void test_concurrency_exact(void **state)
{
    (void)state;
    struct metrics_registry *r = metrics_registry_new();
    double bk[] = {0.5, 1.5, 2.5};
    struct worker w[NTHREADS];
    pthread_t t[NTHREADS];
    struct metric_family *c = metrics_counter_new(r, "c_total", "c", L_MODEL_CODE);
    struct metric_family *g = metrics_gauge_new(r, "g", "g", NULL);
    struct metric_family *h = metrics_histogram_new(r, "h", "h", L_MODEL_CODE, bk, 3);
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, NTHREADS);
    for (int i = 0; i < NTHREADS; i++) {
        w[i] = (struct worker){c, g, h, i, &start};
        assert_int_equal(pthread_create(&t[i], NULL, hammer, &w[i]), 0);
    }
    /* rendering while updating must be safe */
    for (int i = 0; i < 20; i++)
        free(render(r));
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(t[i], NULL);
    pthread_barrier_destroy(&start);
    double n = (double)NTHREADS * NITER;
    assert_true(metric_value(metric_labels(c, "m", "200")) == n * 1.5);
    assert_true(metric_value(metric_nolabels(g)) == n * 0.75);
    struct metric *hm = metric_labels(h, "m", "200");
    assert_true(metric_value(hm) == n);
    assert_true(metric_hist_sum(hm) == n / 4 * (0 + 1 + 2 + 3));
    char *txt = render(r);
    char line[128];
    snprintf(line, sizeof line, "h_bucket{model=\"m\",code=\"200\",le=\"1.5\"} %d\n",
             NTHREADS * NITER / 2);
    assert_non_null(strstr(txt, line));
    free(txt);
    metrics_registry_free(r);
}

static void test_default_registry(void **state)
{
    (void)state;
    struct metric_family *f = metrics_counter_new(NULL, "test_default_total", "d", NULL);
    assert_non_null(f);
    metric_inc(metric_nolabels(f));
    struct buf b;
    buf_init(&b, 1u << 16);
    assert_int_equal(metrics_render(&b), 0);
    assert_non_null(strstr(b.data, "test_default_total 1\n"));
    buf_free(&b);
}

static double g_depth;

static void collect_depth(void *ud)
{
    metric_set(ud, g_depth);
}

static void test_collectors_and_process(void **state)
{
    (void)state;
    struct metrics_registry *r = metrics_registry_new();
    struct metric *q = metric_nolabels(metrics_gauge_new(r, "queue_depth", "Queued.", NULL));
    assert_int_equal(metrics_registry_add_collector(r, collect_depth, q, NULL), 0);
    assert_int_equal(metrics_register_process(r), 0);
    assert_int_equal(metrics_register_process(r), 0); /* idempotent */
    g_depth = 7;
    char *t = render(r);
    assert_non_null(strstr(t, "queue_depth 7\n"));
    assert_non_null(strstr(t, "# TYPE process_cpu_seconds_total counter\n"));
    assert_null(strstr(t, "process_resident_memory_bytes 0\n"));
    assert_null(strstr(t, "process_open_fds 0\n"));
    assert_null(strstr(t, "process_start_time_seconds 0\n"));
    const char *p = strstr(t, "\nprocess_start_time_seconds ");
    assert_non_null(p);
    assert_true(strtod(p + 28, NULL) > 1.5e9); /* a real epoch time */
    free(t);
    g_depth = 9;
    t = render(r);
    assert_non_null(strstr(t, "queue_depth 9\n"));
    free(t);
    metrics_registry_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counter_gauge),
        cmocka_unit_test(test_registration_rules),
        cmocka_unit_test(test_series_bound),
        cmocka_unit_test(test_histogram_and_escaping),
        cmocka_unit_test(test_concurrency_exact),
        cmocka_unit_test(test_default_registry),
        cmocka_unit_test(test_collectors_and_process),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
