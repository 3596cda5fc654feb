/*
 * loop.h - one epoll event loop per thread: fd watchers, timers, cross-thread wakeups.
 *
 * Each service worker thread owns one loop; its HTTP server daemon (libmicrohttpd
 * in external-loop mode) and its HTTP client (its own sockets, or curl multi's for
 * https) both register their sockets and timers here, so a proxied request never
 * changes threads.
 * All functions except loop_post() and loop_stop() must be called from the loop's
 * own thread. Not for: blocking work (compute runs on other threads and posts back).
 */
#ifndef AISTACK_CORE_LOOP_H
#define AISTACK_CORE_LOOP_H

#include <stdint.h>

struct loop;
struct loop_timer;

enum { LOOP_READ = 1, LOOP_WRITE = 2 };

/* Called with the ready events (LOOP_READ|LOOP_WRITE; errors/hangups report as both). */
typedef void (*loop_fd_cb)(struct loop *l, int fd, int events, void *ud);
typedef void (*loop_cb)(struct loop *l, void *ud);

/* Creates a loop. NULL on failure. */
struct loop *loop_new(void);
/* Frees the loop; watchers must have been removed, pending timers are dropped. Accepts NULL. */
void loop_free(struct loop *l);

/* Watches fd for events (LOOP_READ/LOOP_WRITE). One watcher per fd. 0 or AS_E*. */
int loop_fd_add(struct loop *l, int fd, int events, loop_fd_cb cb, void *ud);
/* Changes the watched events of fd. */
int loop_fd_mod(struct loop *l, int fd, int events);
/* Stops watching fd (does not close it). Safe to call from within the fd's callback. */
int loop_fd_del(struct loop *l, int fd);
/*
 * Stops delivering fd's events like loop_fd_del(), but leaves it in the kernel's
 * epoll set, so that a later loop_fd_add() of the same socket costs one epoll_ctl
 * instead of two (a pooled keep-alive connection between requests). An event on a
 * parked fd removes it for real. Only for an fd that is not dup()ed: closing it must
 * drop the kernel's registration. Safe from within the fd's callback.
 */
int loop_fd_park(struct loop *l, int fd);

/* One-shot timer firing after ms milliseconds. NULL on failure. */
struct loop_timer *loop_timer_add(struct loop *l, uint64_t ms, loop_cb cb, void *ud);
/* Cancels a pending timer (no-op if it already fired or t is NULL). */
void loop_timer_cancel(struct loop *l, struct loop_timer *t);

/* Thread-safe: runs cb(l, ud) on the loop's thread soon. 0 or AS_ENOMEM. */
int loop_post(struct loop *l, loop_cb cb, void *ud);

/* Runs until loop_stop(). Returns 0, or AS_EIO if epoll fails. */
int loop_run(struct loop *l);
/* Thread-safe: makes loop_run() return after the current iteration. */
void loop_stop(struct loop *l);

/*
 * Counts the loop's waits for events: two calls that return the same number ran
 * without an epoll_wait() between them, so no event that arrived in between has
 * been delivered yet (the HTTP client checks a connection it pooled in the same
 * iteration before reusing it).
 */
uint64_t loop_iteration(const struct loop *l);

/* Monotonic clock in milliseconds / nanoseconds. */
uint64_t loop_now_ms(void);
uint64_t loop_now_ns(void);

#endif
