/*
 * test_threadpool.c - tp_run covers every thread exactly once per call,
 * barriers order phases, workers wake after sleeping, split is balanced.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "engine/threadpool.h"

struct count_ctx {
    atomic_int calls;
    atomic_int seen[8];
    int nth_seen;
};

static void count_fn(void *arg, int ith, int nth)
{
    struct count_ctx *c = arg;
    atomic_fetch_add(&c->calls, 1);
    atomic_fetch_add(&c->seen[ith], 1);
    c->nth_seen = nth;
}

static void test_run_all_threads(void **state)
{
    (void)state;
    for (int n = 1; n <= 4; n++) {
        struct tp_pool *tp = tp_new(n);
        assert_non_null(tp);
        assert_int_equal(tp_n_threads(tp), n);
        struct count_ctx c;
        memset(&c, 0, sizeof(c));
        for (int it = 0; it < 300; it++)
            tp_run(tp, count_fn, &c);
        assert_int_equal(atomic_load(&c.calls), 300 * n);
        for (int i = 0; i < n; i++)
            assert_int_equal(atomic_load(&c.seen[i]), 300);
        assert_int_equal(c.nth_seen, n);
        tp_free(tp);
    }
    struct count_ctx c;
    memset(&c, 0, sizeof(c));
    tp_run(NULL, count_fn, &c);
    assert_int_equal(atomic_load(&c.calls), 1);
    assert_int_equal(tp_n_threads(NULL), 1);
    tp_free(NULL);
    assert_null(tp_new(TP_MAX_THREADS + 1));
}

/* Workers that went to sleep (past the spin window) must wake for the next job. */
static void test_wake_after_sleep(void **state)
{
    (void)state;
    struct tp_pool *tp = tp_new(3);
    assert_non_null(tp);
    struct count_ctx c;
    memset(&c, 0, sizeof(c));
    for (int it = 0; it < 5; it++) {
        struct timespec ts = {0, 2 * 1000 * 1000};
        nanosleep(&ts, NULL);
        tp_run(tp, count_fn, &c);
    }
    assert_int_equal(atomic_load(&c.calls), 15);
    tp_free(tp);
}

struct phase_ctx {
    struct tp_pool *tp;
    int n;
    long long data[64];
    long long sums[8];
    atomic_int bad;
};

/* Each phase reads what the other threads wrote in the previous phase. */
static void phase_fn(void *arg, int ith, int nth)
{
    struct phase_ctx *c = arg;
    for (int round = 0; round < 20; round++) {
        long long s, e;
        tp_split(64, ith, nth, &s, &e);
        for (long long i = s; i < e; i++)
            c->data[i] = round * 1000 + i;
        tp_barrier(c->tp);
        long long sum = 0;
        for (int i = 0; i < 64; i++)
            sum += c->data[i];
        if (sum != round * 1000LL * 64 + 63 * 64 / 2)
            atomic_fetch_add(&c->bad, 1);
        tp_barrier(c->tp);
    }
}

static void test_barrier(void **state)
{
    (void)state;
    for (int n = 1; n <= 3; n++) {
        struct phase_ctx c;
        memset(&c, 0, sizeof(c));
        c.tp = tp_new(n);
        assert_non_null(c.tp);
        for (int it = 0; it < 10; it++)
            tp_run(c.tp, phase_fn, &c);
        assert_int_equal(atomic_load(&c.bad), 0);
        tp_free(c.tp);
    }
}

static void test_split(void **state)
{
    (void)state;
    for (int nth = 1; nth <= 5; nth++) {
        for (long long n = 0; n < 23; n++) {
            long long prev = 0;
            for (int i = 0; i < nth; i++) {
                long long s, e;
                tp_split(n, i, nth, &s, &e);
                assert_int_equal(s, prev);
                assert_true(e >= s && e - s <= n / nth + 1 && e - s >= n / nth);
                prev = e;
            }
            assert_int_equal(prev, n);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_run_all_threads),
        cmocka_unit_test(test_wake_after_sleep),
        cmocka_unit_test(test_barrier),
        cmocka_unit_test(test_split),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
