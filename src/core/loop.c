/*
 * loop.c - the per-thread epoll event loop (see loop.h).
 *
 * Three sources feed one epoll_wait():
 *   - fd watchers, kept in an array indexed by fd; each epoll event carries the
 *     fd and a generation so that an event for an fd removed (or removed and
 *     re-added) earlier in the same batch is dropped instead of misdelivered;
 *     a parked watcher keeps its epoll registration without a callback, so that
 *     re-adding the same socket is one EPOLL_CTL_MOD;
 *   - timers, a binary min-heap of slot indices ordered by (deadline, sequence),
 *     so timers due at the same millisecond fire in the order they were added;
 *   - an eventfd that other threads write after queueing a loop_post() callback
 *     (only the first post since the last drain writes, to keep posting cheap).
 * Timer handles are not pointers to memory: they encode (generation, slot), so
 * cancelling a timer that already fired, even after its slot was reused, is a
 * harmless no-op as loop.h promises. Not for: anything blocking.
 */
#include "core/loop.h"
#include "core/err.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define LOOP_MAX_EVENTS 128
#define LOOP_WAKE_TAG   UINT64_MAX /* epoll data of the eventfd */

struct watcher {
    loop_fd_cb cb;
    void *ud;
    uint32_t gen; /* bumped on every add/del; stale events carry an old one */
    int events;   /* 0 = not watched */
    int parked;   /* loop_fd_park(): still in the epoll set, no callback */
};

struct tslot {
    uint64_t deadline_ms;
    uint64_t seq;
    loop_cb cb;
    void *ud;
    uint32_t gen;  /* part of the handle; bumped when the slot is released */
    int heap_idx;  /* position in the heap, -1 when free */
    int next_free; /* free list link */
};

struct post {
    struct post *next;
    loop_cb cb;
    void *ud;
};

struct loop {
    int epfd;
    int wakefd;
    atomic_int stop;

    struct watcher *w; /* indexed by fd */
    int nw;

    struct tslot *slots;
    int nslots;
    int free_slot; /* head of the free list, -1 if none */
    int *heap;     /* slot indices */
    int nheap;
    uint64_t seq;

    pthread_mutex_t mu; /* guards the post queue */
    struct post *post_head, *post_tail;
    atomic_int wake_pending;
    uint64_t iter; /* epoll_wait() calls so far */
};

uint64_t loop_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t loop_now_ms(void)
{
    return loop_now_ns() / 1000000u;
}

struct loop *loop_new(void)
{
    struct loop *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->epfd = -1;
    l->wakefd = -1;
    l->free_slot = -1;
    if (pthread_mutex_init(&l->mu, NULL) != 0) {
        free(l);
        return NULL;
    }
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    l->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (l->epfd < 0 || l->wakefd < 0)
        goto fail;
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = LOOP_WAKE_TAG};
    if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->wakefd, &ev) != 0)
        goto fail;
    return l;
fail:
    loop_free(l);
    return NULL;
}

void loop_free(struct loop *l)
{
    if (!l)
        return;
    if (l->epfd >= 0)
        close(l->epfd);
    if (l->wakefd >= 0)
        close(l->wakefd);
    struct post *p = l->post_head;
    while (p) {
        struct post *n = p->next;
        free(p);
        p = n;
    }
    pthread_mutex_destroy(&l->mu);
    free(l->w);
    free(l->slots);
    free(l->heap);
    free(l);
}

/* ---- fd watchers ---------------------------------------------------------- */

static uint32_t to_epoll(int events)
{
    uint32_t e = 0;
    if (events & LOOP_READ)
        e |= EPOLLIN | EPOLLRDHUP;
    if (events & LOOP_WRITE)
        e |= EPOLLOUT;
    return e;
}

static int grow_watchers(struct loop *l, int fd)
{
    if (fd < l->nw)
        return 0;
    int n = l->nw ? l->nw : 64;
    while (n <= fd)
        n *= 2;
    struct watcher *w = realloc(l->w, (size_t)n * sizeof *w);
    if (!w)
        return AS_ENOMEM;
    memset(w + l->nw, 0, (size_t)(n - l->nw) * sizeof *w);
    l->w = w;
    l->nw = n;
    return 0;
}

int loop_fd_add(struct loop *l, int fd, int events, loop_fd_cb cb, void *ud)
{
    if (fd < 0 || !cb || !(events & (LOOP_READ | LOOP_WRITE)))
        return AS_EINVAL;
    if (grow_watchers(l, fd) != 0)
        return AS_ENOMEM;
    struct watcher *w = &l->w[fd];
    if (w->events && !w->parked)
        return AS_EINVAL;
    w->gen++;
    struct epoll_event ev = {.events = to_epoll(events),
                             .data.u64 = ((uint64_t)w->gen << 32) | (uint32_t)fd};
    /* a parked fd is normally still registered; if it was closed meanwhile (and the
     * number reused), the kernel dropped that registration and MOD fails with ENOENT */
    int rc = -1;
    if (w->parked) {
        w->parked = 0;
        w->events = 0;
        rc = epoll_ctl(l->epfd, EPOLL_CTL_MOD, fd, &ev);
    }
    if (rc != 0 && epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) != 0)
        return errno == ENOMEM ? AS_ENOMEM : AS_EINVAL;
    w->cb = cb;
    w->ud = ud;
    w->events = events;
    return 0;
}

int loop_fd_mod(struct loop *l, int fd, int events)
{
    if (fd < 0 || fd >= l->nw || !l->w[fd].events || l->w[fd].parked ||
        !(events & (LOOP_READ | LOOP_WRITE)))
        return AS_EINVAL;
    struct watcher *w = &l->w[fd];
    struct epoll_event ev = {.events = to_epoll(events),
                             .data.u64 = ((uint64_t)w->gen << 32) | (uint32_t)fd};
    if (epoll_ctl(l->epfd, EPOLL_CTL_MOD, fd, &ev) != 0)
        return AS_EIO;
    w->events = events;
    return 0;
}

int loop_fd_del(struct loop *l, int fd)
{
    if (fd < 0 || fd >= l->nw || !l->w[fd].events)
        return AS_EINVAL;
    struct watcher *w = &l->w[fd];
    w->events = 0;
    w->parked = 0;
    w->cb = NULL;
    w->gen++;
    /* fails harmlessly if the fd was already closed (epoll dropped it then) */
    epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
    return 0;
}

int loop_fd_park(struct loop *l, int fd)
{
    if (fd < 0 || fd >= l->nw || !l->w[fd].events || l->w[fd].parked)
        return AS_EINVAL;
    struct watcher *w = &l->w[fd];
    w->parked = 1;
    w->cb = NULL;
    w->ud = NULL;
    /* gen stays: an event of the registration must still find this watcher, so that
     * it can be removed (level-triggered, it would otherwise repeat forever) */
    return 0;
}

/* ---- timers ---------------------------------------------------------------- */

static int timer_less(const struct loop *l, int a, int b)
{
    const struct tslot *x = &l->slots[a], *y = &l->slots[b];
    return x->deadline_ms < y->deadline_ms || (x->deadline_ms == y->deadline_ms && x->seq < y->seq);
}

static void heap_set(struct loop *l, int i, int slot)
{
    l->heap[i] = slot;
    l->slots[slot].heap_idx = i;
}

static void heap_up(struct loop *l, int i)
{
    int s = l->heap[i];
    while (i > 0) {
        int p = (i - 1) / 2;
        if (!timer_less(l, s, l->heap[p]))
            break;
        heap_set(l, i, l->heap[p]);
        i = p;
    }
    heap_set(l, i, s);
}

static void heap_down(struct loop *l, int i)
{
    int s = l->heap[i];
    for (;;) {
        int c = 2 * i + 1;
        if (c >= l->nheap)
            break;
        if (c + 1 < l->nheap && timer_less(l, l->heap[c + 1], l->heap[c]))
            c++;
        if (!timer_less(l, l->heap[c], s))
            break;
        heap_set(l, i, l->heap[c]);
        i = c;
    }
    heap_set(l, i, s);
}

static void heap_remove(struct loop *l, int i)
{
    int last = l->heap[--l->nheap];
    if (i == l->nheap)
        return;
    heap_set(l, i, last);
    heap_up(l, i);
    heap_down(l, l->slots[last].heap_idx);
}

static void slot_release(struct loop *l, int s)
{
    l->slots[s].gen++;
    l->slots[s].heap_idx = -1;
    l->slots[s].cb = NULL;
    l->slots[s].next_free = l->free_slot;
    l->free_slot = s;
}

struct loop_timer *loop_timer_add(struct loop *l, uint64_t ms, loop_cb cb, void *ud)
{
    if (!cb)
        return NULL;
    if (l->free_slot < 0) {
        int n = l->nslots ? l->nslots * 2 : 16;
        struct tslot *slots = realloc(l->slots, (size_t)n * sizeof *slots);
        if (!slots)
            return NULL;
        l->slots = slots;
        int *heap = realloc(l->heap, (size_t)n * sizeof *heap);
        if (!heap)
            return NULL;
        l->heap = heap;
        for (int i = n - 1; i >= l->nslots; i--) {
            slots[i].gen = 1;
            slots[i].heap_idx = -1;
            slots[i].cb = NULL;
            slots[i].next_free = l->free_slot;
            l->free_slot = i;
        }
        l->nslots = n;
    }
    int s = l->free_slot;
    struct tslot *t = &l->slots[s];
    l->free_slot = t->next_free;
    t->deadline_ms = loop_now_ms() + ms;
    t->seq = l->seq++;
    t->cb = cb;
    t->ud = ud;
    l->heap[l->nheap] = s;
    t->heap_idx = l->nheap++;
    heap_up(l, t->heap_idx);
    return (struct loop_timer *)(uintptr_t)(((uint64_t)t->gen << 32) | (uint32_t)(s + 1));
}

void loop_timer_cancel(struct loop *l, struct loop_timer *t)
{
    if (!t)
        return;
    uint64_t h = (uint64_t)(uintptr_t)t;
    int s = (int)(uint32_t)h - 1;
    uint32_t gen = (uint32_t)(h >> 32);
    if (s < 0 || s >= l->nslots || l->slots[s].gen != gen || l->slots[s].heap_idx < 0)
        return;
    heap_remove(l, l->slots[s].heap_idx);
    slot_release(l, s);
}

/* Milliseconds until the first timer, or -1 when there is none. */
static int next_timeout(const struct loop *l)
{
    if (l->nheap == 0)
        return -1;
    uint64_t now = loop_now_ms(), d = l->slots[l->heap[0]].deadline_ms;
    if (d <= now)
        return 0;
    return d - now > 60000 ? 60000 : (int)(d - now);
}

static void run_timers(struct loop *l)
{
    uint64_t now = loop_now_ms();
    /* timers added by callbacks with ms == 0 are due now too, but each one gets a
     * later sequence number, so this terminates: stop at the first one added here */
    uint64_t seq_end = l->seq;
    while (l->nheap > 0 && !atomic_load_explicit(&l->stop, memory_order_relaxed)) {
        int s = l->heap[0];
        struct tslot *t = &l->slots[s];
        if (t->deadline_ms > now || t->seq >= seq_end)
            break;
        loop_cb cb = t->cb;
        void *ud = t->ud;
        heap_remove(l, 0);
        slot_release(l, s);
        cb(l, ud);
    }
}

/* ---- cross-thread posts ---------------------------------------------------- */

int loop_post(struct loop *l, loop_cb cb, void *ud)
{
    struct post *p = malloc(sizeof *p);
    if (!p)
        return AS_ENOMEM;
    p->next = NULL;
    p->cb = cb;
    p->ud = ud;
    pthread_mutex_lock(&l->mu);
    if (l->post_tail)
        l->post_tail->next = p;
    else
        l->post_head = p;
    l->post_tail = p;
    pthread_mutex_unlock(&l->mu);
    if (!atomic_exchange(&l->wake_pending, 1)) {
        uint64_t one = 1;
        ssize_t w = write(l->wakefd, &one, sizeof one);
        (void)w; /* EAGAIN only if the counter is saturated: a wakeup is pending anyway */
    }
    return 0;
}

static void run_posts(struct loop *l)
{
    uint64_t v;
    /* read first, then clear: a post that saw wake_pending set before the clear is
     * already in the queue taken below; one after it writes the eventfd again */
    ssize_t r = read(l->wakefd, &v, sizeof v);
    (void)r;
    atomic_store(&l->wake_pending, 0);
    pthread_mutex_lock(&l->mu);
    struct post *p = l->post_head;
    l->post_head = l->post_tail = NULL;
    pthread_mutex_unlock(&l->mu);
    while (p) {
        struct post *n = p->next;
        p->cb(l, p->ud);
        free(p);
        p = n;
    }
}

uint64_t loop_iteration(const struct loop *l)
{
    return l->iter;
}

void loop_stop(struct loop *l)
{
    atomic_store(&l->stop, 1);
    uint64_t one = 1;
    ssize_t w = write(l->wakefd, &one, sizeof one);
    (void)w;
}

int loop_run(struct loop *l)
{
    struct epoll_event evs[LOOP_MAX_EVENTS];
    while (!atomic_load(&l->stop)) {
        int n = epoll_wait(l->epfd, evs, LOOP_MAX_EVENTS, next_timeout(l));
        l->iter++;
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return AS_EIO;
        }
        for (int i = 0; i < n; i++) {
            uint64_t d = evs[i].data.u64;
            if (d == LOOP_WAKE_TAG) {
                run_posts(l);
                continue;
            }
            int fd = (int)(uint32_t)d;
            if (fd >= l->nw)
                continue;
            struct watcher *w = &l->w[fd];
            if (!w->events || w->gen != (uint32_t)(d >> 32))
                continue;    /* removed earlier in this batch */
            if (w->parked) { /* e.g. the peer closed an idle pooled connection */
                loop_fd_del(l, fd);
                continue;
            }
            uint32_t e = evs[i].events;
            int got = 0;
            if (e & (EPOLLERR | EPOLLHUP))
                got = LOOP_READ | LOOP_WRITE;
            if (e & (EPOLLIN | EPOLLRDHUP))
                got |= LOOP_READ;
            if (e & EPOLLOUT)
                got |= LOOP_WRITE;
            w->cb(l, fd, got, w->ud);
        }
        run_timers(l);
    }
    atomic_store(&l->stop, 0);
    /* posts that arrived with the stop stay queued for a later loop_run() */
    return 0;
}
