/*
 * threadpool.h - persistent worker threads for the engine's parallel kernels.
 *
 * A pool of n threads (the caller counts as thread 0) created once per model
 * context. tp_run() hands the same function to every thread and returns when
 * all have finished; there is no thread creation per call or per token.
 * Idle workers spin briefly (so back-to-back calls within a forward pass cost
 * a few microseconds) and then sleep on a futex, so an idle server burns no CPU.
 *
 * Not for: general task queues or blocking I/O. One tp_run() at a time per
 * pool: a pool must not be shared by threads that call tp_run() concurrently.
 */
#ifndef AISTACK_ENGINE_THREADPOOL_H
#define AISTACK_ENGINE_THREADPOOL_H

/* Work function: ith is this thread's index in [0, nth), nth the pool size. */
typedef void (*tp_fn)(void *ctx, int ith, int nth);

struct tp_pool;

/* Most threads a pool may have. */
#define TP_MAX_THREADS 256

/*
 * Creates a pool of n_threads threads in all, the caller included (so
 * n_threads - 1 workers are started). n_threads <= 0 means "number of online
 * CPUs". Returns NULL on failure (out of memory, thread creation failed,
 * n_threads > TP_MAX_THREADS).
 */
struct tp_pool *tp_new(int n_threads);

/* Stops and joins the workers and frees the pool. Accepts NULL. */
void tp_free(struct tp_pool *tp);

/* Number of threads, the caller included. 1 for a NULL pool. */
int tp_n_threads(const struct tp_pool *tp);

/*
 * Runs fn(ctx, ith, nth) on every thread of the pool (the caller runs ith 0)
 * and returns when all calls have returned. With tp == NULL, runs fn(ctx, 0, 1).
 * Memory written by any thread before its fn returns is visible to the caller
 * after tp_run returns.
 */
void tp_run(struct tp_pool *tp, tp_fn fn, void *ctx);

/*
 * Barrier among all threads of the pool, callable only from inside a
 * function running under tp_run (every thread must call it the same number of
 * times). Writes before the barrier are visible to all threads after it.
 * No-op for a NULL pool or a pool of one thread.
 */
void tp_barrier(struct tp_pool *tp);

/* The range [*start, *end) of n items that thread ith of nth takes (contiguous, balanced). */
void tp_split(long long n, int ith, int nth, long long *start, long long *end);

#endif
