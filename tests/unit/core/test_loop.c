/* test_loop.c - unit tests for the epoll event loop (src/core/loop.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/loop.h"

#include <pthread.h>
#include <string.h>
#include <unistd.h>

/* ---- timers ------------------------------------------------------------------ */

struct rec {
    struct loop *l;
    int order[64];
    int n;
    int stop_at;
};

struct tctx {
    struct rec *r;
    int id;
};

static void record(struct loop *l, void *ud)
{
    struct tctx *t = ud;
    t->r->order[t->r->n++] = t->id;
    if (t->r->n == t->r->stop_at)
        loop_stop(l);
}

static void test_timer_order(void **state)
{
    struct loop *l = loop_new();
    assert_non_null(l);
    struct rec r = {.l = l, .stop_at = 5};
    struct tctx t[5];
    uint64_t delays[5] = {30, 10, 20, 10, 0};
    for (int i = 0; i < 5; i++) {
        t[i] = (struct tctx){&r, i};
        assert_non_null(loop_timer_add(l, delays[i], record, &t[i]));
    }
    uint64_t t0 = loop_now_ms();
    assert_int_equal(loop_run(l), 0);
    uint64_t el = loop_now_ms() - t0;
    /* by deadline, and equal deadlines in the order added */
    int want[5] = {4, 1, 3, 2, 0};
    assert_memory_equal(r.order, want, sizeof want);
    assert_true(el >= 29 && el < 1000);
    loop_free(l);
}

static void test_timer_cancel(void **state)
{
    struct loop *l = loop_new();
    struct rec r = {.l = l, .stop_at = 2};
    struct tctx t[4];
    struct loop_timer *h[4];
    for (int i = 0; i < 4; i++) {
        t[i] = (struct tctx){&r, i};
        h[i] = loop_timer_add(l, (uint64_t)(5 * (i + 1)), record, &t[i]);
        assert_non_null(h[i]);
    }
    loop_timer_cancel(l, h[0]);
    loop_timer_cancel(l, h[2]);
    loop_timer_cancel(l, h[2]); /* twice: no-op */
    loop_timer_cancel(l, NULL);
    assert_int_equal(loop_run(l), 0);
    assert_int_equal(r.n, 2);
    assert_int_equal(r.order[0], 1);
    assert_int_equal(r.order[1], 3);
    /* handles of fired timers stay harmless even when their slots are reused */
    struct tctx t9 = {&r, 9};
    r.stop_at = 3;
    struct loop_timer *fresh = loop_timer_add(l, 5, record, &t9);
    assert_non_null(fresh);
    loop_timer_cancel(l, h[1]); /* fired */
    loop_timer_cancel(l, h[3]); /* fired */
    assert_int_equal(loop_run(l), 0);
    assert_int_equal(r.n, 3);
    assert_int_equal(r.order[2], 9);
    loop_free(l);
}

/* Many timers in random order come out sorted (exercises the heap). */
static void collect(struct loop *l, void *ud)
{
    struct rec *r = ((struct tctx *)ud)->r;
    r->order[r->n++] = ((struct tctx *)ud)->id;
    if (r->n == r->stop_at)
        loop_stop(l);
}

static void test_timer_heap(void **state)
{
    struct loop *l = loop_new();
    struct rec r = {.l = l, .stop_at = 40};
    struct tctx t[60];
    struct loop_timer *h[60];
    unsigned x = 12345;
    uint64_t t0 = loop_now_ms();
    for (int i = 0; i < 60; i++) {
        x = x * 1103515245u + 12345u;
        t[i] = (struct tctx){&r, (int)((x >> 16) % 30)};
        h[i] = loop_timer_add(l, (uint64_t)t[i].id, collect, &t[i]);
    }
    /* deadlines are "now + ms" at each add: a slow machine may add later ones later */
    int slack = (int)(loop_now_ms() - t0);
    for (int i = 0; i < 60; i += 3)
        loop_timer_cancel(l, h[i]);
    assert_int_equal(loop_run(l), 0);
    assert_int_equal(r.n, 40);
    for (int i = 1; i < r.n; i++)
        assert_true(r.order[i - 1] <= r.order[i] + slack);
    loop_free(l);
}

/* A callback adding a 0 ms timer does not starve the loop: it runs next iteration. */
static int zero_count;
static void rearm(struct loop *l, void *ud)
{
    if (++zero_count == 100)
        loop_stop(l);
    else
        loop_timer_add(l, 0, rearm, NULL);
}

static void test_timer_zero_rearm(void **state)
{
    struct loop *l = loop_new();
    zero_count = 0;
    loop_timer_add(l, 0, rearm, NULL);
    assert_int_equal(loop_run(l), 0);
    assert_int_equal(zero_count, 100);
    loop_free(l);
}

/* ---- fd watchers ------------------------------------------------------------------ */

struct fdctx {
    int rfd[2], wfd[2];
    int reads, writes;
    char got[16];
};

static void on_pipe(struct loop *l, int fd, int events, void *ud)
{
    struct fdctx *c = ud;
    if (events & LOOP_READ) {
        ssize_t n = read(fd, c->got, sizeof c->got);
        assert_true(n > 0);
        c->reads++;
        loop_stop(l);
    }
}

static void on_writable(struct loop *l, int fd, int events, void *ud)
{
    struct fdctx *c = ud;
    assert_true(events & LOOP_WRITE);
    c->writes++;
    /* removing itself from inside the callback is allowed */
    assert_int_equal(loop_fd_del(l, fd), 0);
    assert_int_equal(write(fd, "ping", 4), 4);
}

static void test_fd_watch(void **state)
{
    struct loop *l = loop_new();
    struct fdctx c = {0};
    assert_int_equal(pipe(c.rfd), 0);
    assert_int_equal(loop_fd_add(l, c.rfd[0], LOOP_READ, on_pipe, &c), 0);
    assert_int_not_equal(loop_fd_add(l, c.rfd[0], LOOP_READ, on_pipe, &c), 0); /* one per fd */
    assert_int_equal(loop_fd_add(l, c.rfd[1], LOOP_WRITE, on_writable, &c), 0);
    assert_int_equal(loop_run(l), 0);
    assert_int_equal(c.writes, 1);
    assert_int_equal(c.reads, 1);
    assert_memory_equal(c.got, "ping", 4);
    /* modify to write interest, then delete; bad fds are refused */
    assert_int_equal(loop_fd_mod(l, c.rfd[0], LOOP_READ | LOOP_WRITE), 0);
    assert_int_equal(loop_fd_del(l, c.rfd[0]), 0);
    assert_int_not_equal(loop_fd_del(l, c.rfd[0]), 0);
    assert_int_not_equal(loop_fd_mod(l, 999, LOOP_READ), 0);
    assert_int_not_equal(loop_fd_add(l, -1, LOOP_READ, on_pipe, &c), 0);
    close(c.rfd[0]);
    close(c.rfd[1]);
    loop_free(l);
}

/* Two fds ready in the same batch: the first callback removes the second's watcher. */
struct pairctx {
    int a[2], b[2];
    int a_calls;
};

static void stop_cb(struct loop *l, void *ud)
{
    loop_stop(l);
}

static void on_a(struct loop *l, int fd, int events, void *ud)
{
    struct pairctx *p = ud;
    p->a_calls++;
    loop_fd_del(l, p->b[0]);
    loop_fd_del(l, p->a[0]);
    loop_timer_add(l, 20, stop_cb, NULL);
}

static void test_fd_del_in_batch(void **state)
{
    struct loop *l = loop_new();
    struct pairctx p = {0};
    assert_int_equal(pipe(p.a), 0);
    assert_int_equal(pipe(p.b), 0);
    assert_int_equal(write(p.a[1], "x", 1), 1);
    assert_int_equal(write(p.b[1], "x", 1), 1);
    /* whichever fires first removes both, so exactly one callback runs */
    assert_int_equal(loop_fd_add(l, p.a[0], LOOP_READ, on_a, &p), 0);
    assert_int_equal(loop_fd_add(l, p.b[0], LOOP_READ, on_a, &p), 0);
    assert_int_equal(loop_run(l), 0);
    assert_int_equal(p.a_calls, 1);
    for (int i = 0; i < 2; i++) {
        close(p.a[i]);
        close(p.b[i]);
    }
    loop_free(l);
}

/* Parking: no callback while parked, one re-add brings the watcher back, an event
 * on a parked fd removes it, and a parked fd closed and reused is added afresh. */
struct parkctx {
    int calls;
    char got;
};

static void on_park_read(struct loop *l, int fd, int events, void *ud)
{
    struct parkctx *c = ud;
    c->calls++;
    assert_int_equal(read(fd, &c->got, 1), 1);
    loop_stop(l);
}

static void run_briefly(struct loop *l)
{
    assert_non_null(loop_timer_add(l, 30, stop_cb, NULL));
    assert_int_equal(loop_run(l), 0);
}

static void test_fd_park(void **state)
{
    struct loop *l = loop_new();
    struct parkctx c = {0};
    int p[2];
    assert_int_equal(pipe(p), 0);
    assert_int_not_equal(loop_fd_park(l, p[0]), 0); /* not watched */
    assert_int_equal(loop_fd_add(l, p[0], LOOP_READ, on_park_read, &c), 0);
    assert_int_equal(loop_fd_park(l, p[0]), 0);
    assert_int_not_equal(loop_fd_park(l, p[0]), 0);
    assert_int_not_equal(loop_fd_mod(l, p[0], LOOP_READ), 0);
    /* re-added while still registered (EPOLL_CTL_MOD): delivered as before */
    assert_int_equal(loop_fd_add(l, p[0], LOOP_READ, on_park_read, &c), 0);
    assert_int_equal(write(p[1], "a", 1), 1);
    assert_int_equal(loop_run(l), 0);
    assert_int_equal(c.calls, 1);
    assert_int_equal(c.got, 'a');
    /* an event while parked reaches no one and unregisters the fd */
    assert_int_equal(loop_fd_park(l, p[0]), 0);
    assert_int_equal(write(p[1], "b", 1), 1);
    run_briefly(l);
    assert_int_equal(c.calls, 1);
    assert_int_equal(loop_fd_add(l, p[0], LOOP_READ, on_park_read, &c), 0);
    assert_int_equal(loop_run(l), 0); /* the pending byte */
    assert_int_equal(c.calls, 2);
    assert_int_equal(c.got, 'b');
    /* parked, closed, and the number reused by another pipe: added afresh */
    assert_int_equal(loop_fd_park(l, p[0]), 0);
    int old = p[0];
    close(p[0]);
    close(p[1]);
    assert_int_equal(pipe(p), 0);
    assert_int_equal(p[0], old);
    assert_int_equal(loop_fd_add(l, p[0], LOOP_READ, on_park_read, &c), 0);
    assert_int_equal(write(p[1], "c", 1), 1);
    assert_int_equal(loop_run(l), 0);
    assert_int_equal(c.calls, 3);
    assert_int_equal(c.got, 'c');
    /* deleting a parked fd is allowed */
    assert_int_equal(loop_fd_park(l, p[0]), 0);
    assert_int_equal(loop_fd_del(l, p[0]), 0);
    close(p[0]);
    close(p[1]);
    loop_free(l);
}

/* ---- posts from other threads ----------------------------------------------------- */

#define POSTERS    4
#define PER_POSTER 2000

struct postctx {
    struct loop *l;
    int last[POSTERS];
    int total;
    int out_of_order;
};

struct postmsg {
    struct postctx *c;
    int thread, seq;
};

static struct postmsg msgs[POSTERS][PER_POSTER];

static void on_post(struct loop *l, void *ud)
{
    struct postmsg *m = ud;
    struct postctx *c = m->c;
    if (m->seq != c->last[m->thread] + 1)
        c->out_of_order++;
    c->last[m->thread] = m->seq;
    if (++c->total == POSTERS * PER_POSTER)
        loop_stop(l);
}

static void *poster(void *arg)
{
    struct postmsg *row = arg;
    for (int i = 0; i < PER_POSTER; i++)
        assert_int_equal(loop_post(row[i].c->l, on_post, &row[i]), 0);
    return NULL;
}

static void test_post_order(void **state)
{
    struct loop *l = loop_new();
    struct postctx c = {.l = l};
    for (int t = 0; t < POSTERS; t++) {
        c.last[t] = -1;
        for (int i = 0; i < PER_POSTER; i++)
            msgs[t][i] = (struct postmsg){&c, t, i};
    }
    pthread_t th[POSTERS];
    for (int t = 0; t < POSTERS; t++)
        assert_int_equal(pthread_create(&th[t], NULL, poster, msgs[t]), 0);
    assert_int_equal(loop_run(l), 0);
    for (int t = 0; t < POSTERS; t++)
        pthread_join(th[t], NULL);
    assert_int_equal(c.total, POSTERS * PER_POSTER);
    assert_int_equal(c.out_of_order, 0); /* FIFO per posting thread */
    loop_free(l);
}

static void *stopper(void *arg)
{
    usleep(20000);
    loop_stop(arg);
    return NULL;
}

static void test_stop_from_thread(void **state)
{
    struct loop *l = loop_new();
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, stopper, l), 0);
    uint64_t t0 = loop_now_ms();
    assert_int_equal(loop_run(l), 0); /* nothing watched: only the stop wakes it */
    assert_true(loop_now_ms() - t0 < 2000);
    pthread_join(t, NULL);
    /* posts queued but never run are freed by loop_free (ASan checks) */
    loop_post(l, on_post, NULL);
    loop_free(l);
    loop_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_timer_order),      cmocka_unit_test(test_timer_cancel),
        cmocka_unit_test(test_timer_heap),       cmocka_unit_test(test_timer_zero_rearm),
        cmocka_unit_test(test_fd_watch),         cmocka_unit_test(test_fd_del_in_batch),
        cmocka_unit_test(test_fd_park),          cmocka_unit_test(test_post_order),
        cmocka_unit_test(test_stop_from_thread),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
