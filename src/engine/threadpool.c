/*
 * threadpool.c - persistent worker pool with spin-then-futex waiting.
 *
 * Jobs are published by bumping a generation counter; workers spin on it for
 * TP_SPIN_NS after their last job (a forward pass issues hundreds of jobs per
 * token, microseconds apart) and then sleep in futex_wait. Completion and
 * barriers use the same scheme. Linux-only (futex).
 */
#include "engine/threadpool.h"

#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define tp_cpu_relax() _mm_pause()
#elif defined(__aarch64__)
#define tp_cpu_relax() __asm__ __volatile__("yield")
#else
#define tp_cpu_relax() ((void)0)
#endif

/* How long a waiter spins before sleeping. */
#define TP_SPIN_NS 200000LL
/* Iterations of pure spinning (a few microseconds) before yielding starts. */
#define TP_SPIN_PURE 256

struct tp_worker {
    struct tp_pool *tp;
    pthread_t thread;
    int ith;
};

struct tp_pool {
    int n;                     /* threads in all, the caller included */
    struct tp_worker *workers; /* (n - 1) */
    int n_started;

    tp_fn fn;
    void *ctx;

    _Alignas(64) atomic_uint gen; /* bumped per job; futex word */
    atomic_int sleepers;          /* workers in futex_wait on gen */
    atomic_int stop;

    _Alignas(64) atomic_uint n_done; /* workers finished with the current job; futex word */
    atomic_int caller_sleeping;

    _Alignas(64) atomic_uint bar_count;
    atomic_uint bar_gen; /* futex word */
    atomic_int bar_sleepers;
};

static long tp__futex(atomic_uint *addr, int op, unsigned val)
{
    return syscall(SYS_futex, (unsigned *)addr, op | FUTEX_PRIVATE_FLAG, val, NULL, NULL, 0);
}

static long long tp__now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/*
 * One step of a spin-wait: pause for the first TP_SPIN_PURE iterations, then
 * also yield the core, so that an oversubscribed machine (more runnable
 * threads than cores) still lets the thread we wait for run.
 */
static void tp__backoff(int spins)
{
    if (spins < TP_SPIN_PURE)
        tp_cpu_relax();
    else
        sched_yield();
}

/*
 * Waits until *word != old: spins for TP_SPIN_NS, then sleeps. *sleepers is
 * raised around the sleep so that the waker knows to call futex_wake.
 */
static unsigned tp__wait_change(atomic_uint *word, unsigned old, atomic_int *sleepers)
{
    unsigned v;
    long long deadline = 0;
    for (int spins = 0;; spins++) {
        v = atomic_load_explicit(word, memory_order_acquire);
        if (v != old)
            return v;
        if ((spins & 255) == 255) {
            long long now = tp__now_ns();
            if (deadline == 0)
                deadline = now + TP_SPIN_NS;
            else if (now > deadline)
                break;
        }
        tp__backoff(spins);
    }
    atomic_fetch_add(sleepers, 1);
    while ((v = atomic_load(word)) == old)
        tp__futex(word, FUTEX_WAIT, old);
    atomic_fetch_sub(sleepers, 1);
    return v;
}

static void *tp__worker_main(void *arg)
{
    struct tp_worker *w = arg;
    struct tp_pool *tp = w->tp;
    unsigned seen = 0;
    for (;;) {
        seen = tp__wait_change(&tp->gen, seen, &tp->sleepers);
        if (atomic_load_explicit(&tp->stop, memory_order_acquire))
            break;
        tp->fn(tp->ctx, w->ith, tp->n);
        unsigned done = atomic_fetch_add(&tp->n_done, 1) + 1;
        if (done == (unsigned)(tp->n - 1) && atomic_load(&tp->caller_sleeping))
            tp__futex(&tp->n_done, FUTEX_WAKE, INT_MAX);
    }
    return NULL;
}

struct tp_pool *tp_new(int n_threads)
{
    if (n_threads <= 0) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        n_threads = c > 0 ? (int)(c < TP_MAX_THREADS ? c : TP_MAX_THREADS) : 1;
    }
    if (n_threads > TP_MAX_THREADS)
        return NULL;
    struct tp_pool *tp = calloc(1, sizeof(*tp));
    if (!tp)
        return NULL;
    tp->n = n_threads;
    if (n_threads > 1) {
        tp->workers = calloc((size_t)n_threads - 1, sizeof(*tp->workers));
        if (!tp->workers)
            goto fail;
    }
    for (int i = 1; i < n_threads; i++) {
        struct tp_worker *w = &tp->workers[i - 1];
        w->tp = tp;
        w->ith = i;
        if (pthread_create(&w->thread, NULL, tp__worker_main, w) != 0)
            goto fail;
        tp->n_started++;
    }
    return tp;
fail:
    tp_free(tp);
    return NULL;
}

void tp_free(struct tp_pool *tp)
{
    if (!tp)
        return;
    if (tp->n_started > 0) {
        atomic_store(&tp->stop, 1);
        atomic_fetch_add(&tp->gen, 1);
        tp__futex(&tp->gen, FUTEX_WAKE, INT_MAX);
        for (int i = 0; i < tp->n_started; i++)
            pthread_join(tp->workers[i].thread, NULL);
    }
    free(tp->workers);
    free(tp);
}

int tp_n_threads(const struct tp_pool *tp)
{
    return tp ? tp->n : 1;
}

void tp_run(struct tp_pool *tp, tp_fn fn, void *ctx)
{
    if (!tp || tp->n == 1) {
        fn(ctx, 0, 1);
        return;
    }
    tp->fn = fn;
    tp->ctx = ctx;
    atomic_store(&tp->n_done, 0);
    atomic_fetch_add(&tp->gen, 1); /* seq_cst: pairs with the sleepers increment */
    if (atomic_load(&tp->sleepers) > 0)
        tp__futex(&tp->gen, FUTEX_WAKE, INT_MAX);

    fn(ctx, 0, tp->n);

    unsigned want = (unsigned)(tp->n - 1);
    long long deadline = 0;
    for (int spins = 0;; spins++) {
        if (atomic_load_explicit(&tp->n_done, memory_order_acquire) == want)
            return;
        if ((spins & 255) == 255) {
            long long now = tp__now_ns();
            if (deadline == 0)
                deadline = now + TP_SPIN_NS;
            else if (now > deadline)
                break;
        }
        tp__backoff(spins);
    }
    atomic_store(&tp->caller_sleeping, 1);
    unsigned d;
    while ((d = atomic_load(&tp->n_done)) != want)
        tp__futex(&tp->n_done, FUTEX_WAIT, d);
    atomic_store(&tp->caller_sleeping, 0);
}

void tp_barrier(struct tp_pool *tp)
{
    if (!tp || tp->n == 1)
        return;
    unsigned g = atomic_load(&tp->bar_gen);
    if (atomic_fetch_add(&tp->bar_count, 1) + 1 == (unsigned)tp->n) {
        atomic_store(&tp->bar_count, 0);
        atomic_fetch_add(&tp->bar_gen, 1);
        if (atomic_load(&tp->bar_sleepers) > 0)
            tp__futex(&tp->bar_gen, FUTEX_WAKE, INT_MAX);
        return;
    }
    tp__wait_change(&tp->bar_gen, g, &tp->bar_sleepers);
}

void tp_split(long long n, int ith, int nth, long long *start, long long *end)
{
    if (nth <= 0)
        nth = 1;
    long long per = n / nth, rem = n % nth;
    long long s = ith * per + (ith < rem ? ith : rem);
    *start = s;
    *end = s + per + (ith < rem ? 1 : 0);
}
