/*
 * http_client_native.c - the plain-HTTP/1.1 transport of http_client.h, for
 * http:// URLs without a proxy (service-to-service calls; the gateway's replicas).
 *
 * Modelled on nginx's upstream keepalive: one struct hn_conn per TCP connection,
 * with its own receive buffer, kept per client (= per worker loop) in an idle
 * list per host:port and watched by the loop while idle, so that a server closing
 * it is noticed and it is dropped. A request is serialized into one buffer and
 * sent with one sendmsg(); the response is parsed in the connection's buffer by
 * http_client_parse.c and handed out from there. Request objects and their
 * buffers are recycled through a free list: in steady state a request allocates
 * nothing. A request that finds its reused connection closed before any response
 * byte is sent again once on a fresh connection when its body can be replayed
 * (not with read_body), as curl and nginx do.
 *
 * Host names are resolved with a blocking getaddrinfo() on the loop thread and
 * cached per client for HN_DNS_TTL_MS; numeric hosts never are; every address is
 * tried in turn. Not for: TLS, proxies, HTTP/2, pipelining, Expect: 100-continue
 * (never sent unless the caller sets it; a 100 is skipped like any 1xx).
 */
#include "core/err.h"
#include "core/http_client.h"
#include "core/http_client_int.h"
#include "core/loop.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

enum {
    HN_RBUF = 4096,                                    /* receive buffer of a connection */
    HN_RBUF_MAX = HTTP_CLIENT_MAX_HEADER_BYTES + 8192, /* grown for a long head, at most */
    HN_UPLOAD = 16384,                                 /* read_body staging buffer */
    HN_KEEP_OUT = 16384,     /* request buffer kept with a recycled request */
    HN_FREE_REQS = 256,      /* recycled request objects kept */
    HN_KEEPALIVE_MS = 60000, /* idle pooled connections are closed after this */
    HN_SWEEP_MS = 5000,      /* how often idle connections are checked */
    HN_DNS_TTL_MS = 30000,   /* resolved names are reused this long */
    HN_MAX_ADDRS = 4,        /* addresses tried per name */
    HN_MAX_HOSTS = 64,       /* host entries kept (unused ones are dropped past it) */
    HN_HOST_MAX = 256,
};

struct hn_host {
    struct hn_host *next;
    char name[HN_HOST_MAX]; /* as in the URL, without brackets */
    uint16_t port;
    int numeric;
    struct sockaddr_storage addr[HN_MAX_ADDRS];
    socklen_t alen[HN_MAX_ADDRS];
    int naddr, pref;
    uint64_t resolved_ms;
    /* idle connections, newest first: those that went idle in loop iteration
     * fresh_iter (and only they) in fresh, older ones in idle */
    struct hn_conn *idle, *fresh, *fresh_tail;
    uint64_t fresh_iter;
    size_t refs; /* requests and connections pointing here */
};

struct hn_conn {
    struct hnat *n;
    struct hn_host *h;
    int fd;
    int events; /* watched by the loop */
    int connecting;
    int addr_idx;
    struct hn_req *req; /* NULL while idle */
    char *rbuf;
    size_t rcap, rlen, roff;
    uint64_t idle_ms, idle_iter; /* when it went idle: clock, loop iteration */
    struct hn_conn *prev, *next; /* the host's idle list */
};

struct hn_req {
    struct http_client_req base; /* first: the handle users see */
    struct hnat *n;
    struct hn_host *h;
    struct hn_conn *conn;
    http_client_headers_cb on_headers;
    http_client_data_cb on_data;
    http_client_read_cb read_body;
    http_client_done_cb on_done;
    void *ud;

    char *out; /* request head, then the body unless borrowed */
    size_t out_cap, out_len, out_off;
    const char *xbody; /* borrowed body, sent after out */
    size_t xbody_len, xbody_off;
    char *up; /* read_body staging: chunk framing + data */
    size_t up_len, up_off;
    int64_t up_left; /* body bytes still to read with a known size, -1 chunked */
    int up_chunked, up_eof, paused_send, want_resume_send;

    struct http_client__resp p;
    struct buf body; /* buffered body when on_data is NULL */
    size_t max_resp;
    uint64_t rx_bytes;
    int status;
    int head_req, headers_done, done, paused_recv, want_resume_recv;
    int reused, retried, got_byte, reusable, addr_tries;
    enum http_client_err abort_err; /* deferred end, 0 if none */
    char msg[192];

    uint64_t t_start_ns, t_first_ns, t_last_rx_ns, t_conn_ns, connect_us;
    uint64_t conn_timeout_ns, total_ns, fb_ns, idle_ns;
    struct loop_timer *watchdog;

    struct hn_req *prev, *next; /* active requests; free list through next */
    struct hn_req *todo_next;
    int in_todo;
};

struct hnat {
    struct loop *loop;
    struct hn_host *hosts;
    size_t nhosts;
    struct hn_req *reqs;
    size_t active;
    struct hn_req *todo_head, *todo_tail;
    struct loop_timer *kick, *sweep;
    struct hn_req *free_reqs;
    size_t nfree, nidle;
    int closing;
    struct http_header hdrs[HTTP_CLIENT_MAX_HEADERS]; /* fields of the head being handed out */
};

static void hn_on_fd(struct loop *l, int fd, int events, void *ud);
static void hn_on_kick(struct loop *l, void *ud);
static void hn_on_watchdog(struct loop *l, void *ud);
static void hn_write(struct hn_req *r);
static void hn_start(struct hn_req *r);

/* ---- connections ------------------------------------------------------------------ */

static int hn_watch(struct hn_conn *k, int ev)
{
    if (k->events == ev)
        return 0;
    int rc = ev == 0          ? loop_fd_del(k->n->loop, k->fd)
             : k->events == 0 ? loop_fd_add(k->n->loop, k->fd, ev, hn_on_fd, k)
                              : loop_fd_mod(k->n->loop, k->fd, ev);
    if (rc == 0)
        k->events = ev;
    return rc;
}

static void hn_idle_unlink(struct hn_conn *k)
{
    struct hn_host *h = k->h;
    int fresh = k->idle_iter == h->fresh_iter;
    if (k->prev)
        k->prev->next = k->next;
    else if (fresh)
        h->fresh = k->next;
    else
        h->idle = k->next;
    if (k->next)
        k->next->prev = k->prev;
    else if (fresh)
        h->fresh_tail = k->prev;
    k->prev = k->next = NULL;
    k->n->nidle--;
}

/* Moves connections that went idle in an earlier loop iteration to the older list. */
static void hn_host_age(struct hn_host *h, uint64_t iter)
{
    if (h->fresh_iter == iter)
        return;
    if (h->fresh) {
        h->fresh_tail->next = h->idle;
        if (h->idle)
            h->idle->prev = h->fresh_tail;
        h->idle = h->fresh;
        h->fresh = h->fresh_tail = NULL;
    }
    h->fresh_iter = iter;
}

static void hn_conn_close(struct hn_conn *k)
{
    if (!k)
        return;
    if (k->events)
        loop_fd_del(k->n->loop, k->fd);
    close(k->fd);
    k->h->refs--;
    free(k->rbuf);
    free(k);
}

static void hn_on_sweep(struct loop *l, void *ud)
{
    struct hnat *n = ud;
    uint64_t now = loop_now_ms();
    n->sweep = NULL;
    for (struct hn_host *h = n->hosts; h; h = h->next) {
        hn_host_age(h, loop_iteration(l));
        struct hn_conn *k = h->idle;
        while (k && k->next)
            k = k->next;
        while (k && now - k->idle_ms >= HN_KEEPALIVE_MS) { /* oldest at the tail */
            struct hn_conn *p = k->prev;
            hn_idle_unlink(k);
            hn_conn_close(k);
            k = p;
        }
    }
    if (n->nidle)
        n->sweep = loop_timer_add(l, HN_SWEEP_MS, hn_on_sweep, n);
}

/* Puts a connection whose response ended cleanly back in its host's idle list. */
static void hn_conn_idle(struct hn_conn *k)
{
    struct hnat *n = k->n;
    if (n->closing || n->nidle >= HTTP_CLIENT_MAX_IDLE_CONNS || k->roff != k->rlen ||
        hn_watch(k, LOOP_READ) != 0) {
        hn_conn_close(k);
        return;
    }
    k->roff = k->rlen = 0;
    if (k->rcap > HN_RBUF) { /* grown for a long head: give it back */
        char *b = realloc(k->rbuf, HN_RBUF);
        if (b) {
            k->rbuf = b;
            k->rcap = HN_RBUF;
        }
    }
    struct hn_host *h = k->h;
    k->idle_ms = loop_now_ms();
    k->idle_iter = loop_iteration(n->loop);
    hn_host_age(h, k->idle_iter);
    k->prev = NULL;
    k->next = h->fresh;
    if (k->next)
        k->next->prev = k;
    else
        h->fresh_tail = k;
    h->fresh = k;
    n->nidle++;
    if (!n->sweep)
        n->sweep = loop_timer_add(n->loop, HN_SWEEP_MS, hn_on_sweep, n);
}

/*
 * The newest idle connection to h that is still open, or NULL. Those that went
 * idle before this loop iteration come first: epoll would have reported a close.
 * One that went idle in this iteration (a request chained from on_done, or an
 * answer and the next request in one batch) gets a MSG_PEEK first.
 */
static struct hn_conn *hn_conn_take(struct hnat *n, struct hn_host *h)
{
    hn_host_age(h, loop_iteration(n->loop));
    struct hn_conn *k;
    if ((k = h->idle)) {
        hn_idle_unlink(k);
        return k;
    }
    while ((k = h->fresh)) {
        hn_idle_unlink(k);
        char b;
        ssize_t got = recv(k->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
        if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return k;
        hn_conn_close(k);
    }
    return NULL;
}

/* ---- hosts ------------------------------------------------------------------------- */

static struct hn_host *hn_host_get(struct hnat *n, const char *name, size_t nlen, uint16_t port)
{
    struct hn_host **pp, *h;
    for (h = n->hosts; h; h = h->next)
        if (h->port == port && strlen(h->name) == nlen && memcmp(h->name, name, nlen) == 0)
            return h;
    if (n->nhosts >= HN_MAX_HOSTS) { /* drop one nobody uses */
        for (pp = &n->hosts; *pp; pp = &(*pp)->next) {
            if ((*pp)->refs == 0 && !(*pp)->idle && !(*pp)->fresh) {
                h = *pp;
                *pp = h->next;
                free(h);
                n->nhosts--;
                break;
            }
        }
    }
    h = calloc(1, sizeof(*h));
    if (!h)
        return NULL;
    memcpy(h->name, name, nlen);
    h->port = port;
    struct in6_addr a6;
    struct in_addr a4;
    if (inet_pton(AF_INET, h->name, &a4) == 1) {
        struct sockaddr_in *s = (struct sockaddr_in *)&h->addr[0];
        s->sin_family = AF_INET;
        s->sin_port = htons(port);
        s->sin_addr = a4;
        h->alen[0] = sizeof(*s);
        h->naddr = 1;
        h->numeric = 1;
    } else if (inet_pton(AF_INET6, h->name, &a6) == 1) {
        struct sockaddr_in6 *s = (struct sockaddr_in6 *)&h->addr[0];
        s->sin6_family = AF_INET6;
        s->sin6_port = htons(port);
        s->sin6_addr = a6;
        h->alen[0] = sizeof(*s);
        h->naddr = 1;
        h->numeric = 1;
    }
    h->next = n->hosts;
    n->hosts = h;
    n->nhosts++;
    return h;
}

/* Resolves h unless it is numeric or resolved recently. 0 or -1 (r->msg says why). */
static int hn_host_resolve(struct hn_host *h, struct hn_req *r)
{
    uint64_t now = loop_now_ms();
    if (h->numeric || (h->naddr && now - h->resolved_ms < HN_DNS_TTL_MS))
        return 0;
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_ADDRCONFIG};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(h->name, NULL, &hints, &res);
    if (rc != 0 || !res) {
        snprintf(r->msg, sizeof(r->msg), "could not resolve host %.128s: %s", h->name,
                 gai_strerror(rc));
        if (res)
            freeaddrinfo(res);
        return -1;
    }
    int k = 0;
    for (struct addrinfo *a = res; a && k < HN_MAX_ADDRS; a = a->ai_next) {
        if ((a->ai_family != AF_INET && a->ai_family != AF_INET6) ||
            a->ai_addrlen > sizeof(h->addr[0]))
            continue;
        memcpy(&h->addr[k], a->ai_addr, a->ai_addrlen);
        if (a->ai_family == AF_INET)
            ((struct sockaddr_in *)&h->addr[k])->sin_port = htons(h->port);
        else
            ((struct sockaddr_in6 *)&h->addr[k])->sin6_port = htons(h->port);
        h->alen[k++] = a->ai_addrlen;
    }
    freeaddrinfo(res);
    if (!k) {
        snprintf(r->msg, sizeof(r->msg), "no usable address for host %.128s", h->name);
        return -1;
    }
    if (h->naddr != k || h->pref >= k)
        h->pref = 0;
    h->naddr = k;
    h->resolved_ms = now;
    return 0;
}

/* ---- finishing -------------------------------------------------------------------- */

static void hn_todo_push(struct hn_req *r)
{
    struct hnat *n = r->n;
    if (!r->in_todo) {
        r->in_todo = 1;
        r->todo_next = NULL;
        if (n->todo_tail)
            n->todo_tail->todo_next = r;
        else
            n->todo_head = r;
        n->todo_tail = r;
    }
    if (!n->kick)
        n->kick = loop_timer_add(n->loop, 0, hn_on_kick, n);
}

static void hn_todo_unlink(struct hn_req *r)
{
    struct hnat *n = r->n;
    if (!r->in_todo)
        return;
    struct hn_req **pp = &n->todo_head, *prev = NULL;
    while (*pp && *pp != r) {
        prev = *pp;
        pp = &(*pp)->todo_next;
    }
    if (*pp)
        *pp = r->todo_next;
    if (n->todo_tail == r)
        n->todo_tail = prev;
    r->in_todo = 0;
    r->todo_next = NULL;
}

/* Records a reason to end r that the next kick acts on (never ends it right here). */
static void hn_fail_later(struct hn_req *r, enum http_client_err err, const char *msg)
{
    if (r->abort_err || r->done)
        return;
    r->abort_err = err;
    if (msg != r->msg)
        snprintf(r->msg, sizeof(r->msg), "%s", msg);
    hn_todo_push(r);
}

static void hn_recycle(struct hn_req *r)
{
    struct hnat *n = r->n;
    n->active--;
    if (r->h)
        r->h->refs--;
    free(r->up);
    r->up = NULL;
    if (n->closing || n->nfree >= HN_FREE_REQS) {
        free(r->out);
        buf_free(&r->body);
        free(r);
        return;
    }
    if (r->out_cap > HN_KEEP_OUT) {
        free(r->out);
        r->out = NULL;
        r->out_cap = 0;
    }
    if (r->body.cap > HN_KEEP_OUT)
        buf_free(&r->body);
    r->next = n->free_reqs;
    n->free_reqs = r;
    n->nfree++;
}

/* Ends r: gives its connection back or closes it, calls on_done once, recycles r. */
static void hn_finish(struct hn_req *r, enum http_client_err err, const char *msg)
{
    struct hnat *n = r->n;
    if (r->done)
        return;
    r->done = 1;
    if (r->watchdog) {
        loop_timer_cancel(n->loop, r->watchdog);
        r->watchdog = NULL;
    }
    hn_todo_unlink(r);
    struct hn_conn *k = r->conn;
    if (k) {
        r->conn = NULL;
        k->req = NULL;
        /* before on_done, so that a request it chains can take the connection */
        if (err == HTTP_CLIENT_OK && r->reusable)
            hn_conn_idle(k);
        else
            hn_conn_close(k);
    }
    if (r->prev)
        r->prev->next = r->next;
    else
        n->reqs = r->next;
    if (r->next)
        r->next->prev = r->prev;

    uint64_t now = loop_now_ns();
    struct http_client_result res = {
        .err = err,
        .status = r->status,
        .message = msg ? msg : "",
        .body = r->body.data ? r->body.data : "",
        .body_len = r->body.len,
        .bytes_received = r->rx_bytes,
        .connect_us = r->connect_us,
        .first_byte_us = r->t_first_ns ? (r->t_first_ns - r->t_start_ns) / 1000 : 0,
        .total_us = (now - r->t_start_ns) / 1000,
        .reused = r->reused,
    };
    r->on_done(&r->base, &res, r->ud);
    hn_recycle(r);
}

/* ---- timers ------------------------------------------------------------------------ */

static void hn_arm_watchdog(struct hn_req *r, uint64_t now)
{
    uint64_t due = UINT64_MAX;
    if (r->conn && r->conn->connecting)
        due = r->t_conn_ns + r->conn_timeout_ns;
    if (r->total_ns && r->t_start_ns + r->total_ns < due)
        due = r->t_start_ns + r->total_ns;
    if (!r->t_first_ns && r->fb_ns && r->t_start_ns + r->fb_ns < due)
        due = r->t_start_ns + r->fb_ns;
    if (r->idle_ns) {
        /* before the first byte or while paused the idle clock is not running */
        uint64_t base = (r->t_first_ns && !r->paused_recv) ? r->t_last_rx_ns : now;
        if (base + r->idle_ns < due)
            due = base + r->idle_ns;
    }
    if (r->watchdog) {
        loop_timer_cancel(r->n->loop, r->watchdog);
        r->watchdog = NULL;
    }
    if (due == UINT64_MAX)
        return;
    uint64_t ms = due > now ? (due - now + 999999) / 1000000 : 0;
    r->watchdog = loop_timer_add(r->n->loop, ms, hn_on_watchdog, r);
}

static void hn_on_watchdog(struct loop *l, void *ud)
{
    struct hn_req *r = ud;
    uint64_t now = loop_now_ns();
    r->watchdog = NULL;
    if (r->done)
        return;
    int connecting = r->conn && r->conn->connecting;
    if (connecting && now - r->t_conn_ns >= r->conn_timeout_ns) {
        snprintf(r->msg, sizeof(r->msg), "connect timed out after %llu ms",
                 (unsigned long long)(r->conn_timeout_ns / 1000000));
        hn_finish(r, HTTP_CLIENT_E_CONNECT_TIMEOUT, r->msg);
    } else if (r->total_ns && now - r->t_start_ns >= r->total_ns) {
        snprintf(r->msg, sizeof(r->msg), "request timed out after %llu ms",
                 (unsigned long long)(r->total_ns / 1000000));
        hn_finish(r, connecting ? HTTP_CLIENT_E_CONNECT_TIMEOUT : HTTP_CLIENT_E_TIMEOUT, r->msg);
    } else if (!r->t_first_ns && r->fb_ns && now - r->t_start_ns >= r->fb_ns) {
        snprintf(r->msg, sizeof(r->msg), "no response within %llu ms",
                 (unsigned long long)(r->fb_ns / 1000000));
        hn_finish(r, HTTP_CLIENT_E_FIRST_BYTE_TIMEOUT, r->msg);
    } else if (r->t_first_ns && r->idle_ns && !r->paused_recv &&
               now - r->t_last_rx_ns >= r->idle_ns) {
        snprintf(r->msg, sizeof(r->msg), "response stalled for %llu ms",
                 (unsigned long long)(r->idle_ns / 1000000));
        hn_finish(r, HTTP_CLIENT_E_IDLE_TIMEOUT, r->msg);
    } else {
        hn_arm_watchdog(r, now);
    }
}

/* ---- connecting ---------------------------------------------------------------------- */

/* Opens a connection to the next address of r's host. 0, or -1 with r->msg set. */
static int hn_connect(struct hn_req *r)
{
    struct hn_host *h = r->h;
    int err = 0;
    if (!h->naddr && hn_host_resolve(h, r) != 0)
        return -2;
    while (r->addr_tries < h->naddr) {
        int idx = (h->pref + r->addr_tries++) % h->naddr;
        int fd = socket(h->addr[idx].ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            err = errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
        int rc = connect(fd, (struct sockaddr *)&h->addr[idx], h->alen[idx]);
        if (rc != 0 && errno != EINPROGRESS) {
            err = errno;
            close(fd);
            continue;
        }
        struct hn_conn *k = calloc(1, sizeof(*k));
        char *b = malloc(HN_RBUF);
        if (!k || !b) {
            free(k);
            free(b);
            close(fd);
            snprintf(r->msg, sizeof(r->msg), "out of memory");
            return -3;
        }
        k->n = r->n;
        k->h = h;
        k->fd = fd;
        k->rbuf = b;
        k->rcap = HN_RBUF;
        k->addr_idx = idx;
        k->connecting = rc != 0;
        k->req = r;
        h->refs++;
        if (hn_watch(k, LOOP_READ | LOOP_WRITE) != 0) {
            hn_conn_close(k);
            snprintf(r->msg, sizeof(r->msg), "cannot watch the connection");
            return -3;
        }
        r->conn = k;
        if (!k->connecting)
            h->pref = idx;
        return 0;
    }
    snprintf(r->msg, sizeof(r->msg), "connect to %.128s port %u failed: %s", h->name,
             (unsigned)h->port, strerror(err ? err : ECONNREFUSED));
    return -1;
}

/* Gives r a connection: an idle one, else a new one. Ends r (later) on failure. */
static void hn_start(struct hn_req *r)
{
    uint64_t now = loop_now_ns();
    struct hn_conn *k = r->retried ? NULL : hn_conn_take(r->n, r->h);
    r->got_byte = 0;
    if (k) {
        k->req = r;
        r->conn = k;
        r->reused = 1;
        r->connect_us = 0;
        hn_write(r);
        return;
    }
    r->reused = 0;
    r->addr_tries = 0;
    r->t_conn_ns = now;
    int rc = hn_connect(r);
    if (rc != 0) {
        hn_fail_later(r,
                      rc == -2   ? HTTP_CLIENT_E_RESOLVE
                      : rc == -3 ? HTTP_CLIENT_E_NOMEM
                                 : HTTP_CLIENT_E_CONNECT,
                      r->msg);
        return;
    }
    hn_arm_watchdog(r, now);
    if (!r->conn->connecting) {
        r->connect_us = (loop_now_ns() - r->t_conn_ns) / 1000;
        hn_write(r);
    }
}

/* The connect of k ended (writable or error): go on sending, or try the next address. */
static void hn_connected(struct hn_conn *k)
{
    struct hn_req *r = k->req;
    int err = 0;
    socklen_t el = sizeof(err);
    if (getsockopt(k->fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0)
        err = errno;
    if (err) {
        r->conn = NULL;
        k->req = NULL;
        hn_conn_close(k);
        int rc = hn_connect(r);
        if (rc != 0) {
            if (rc == -1)
                snprintf(r->msg, sizeof(r->msg), "connect to %.128s port %u failed: %s", r->h->name,
                         (unsigned)r->h->port, strerror(err));
            hn_finish(r, rc == -3 ? HTTP_CLIENT_E_NOMEM : HTTP_CLIENT_E_CONNECT, r->msg);
        } else if (!r->conn->connecting) {
            r->connect_us = (loop_now_ns() - r->t_conn_ns) / 1000;
            hn_write(r);
        }
        return;
    }
    k->connecting = 0;
    r->h->pref = k->addr_idx;
    r->connect_us = (loop_now_ns() - r->t_conn_ns) / 1000;
    hn_write(r);
}

/* ---- sending ----------------------------------------------------------------------- */

/* Sends r on a fresh connection after its reused one turned out closed. 0 if it did. */
static int hn_retry(struct hn_req *r)
{
    if (!r->reused || r->got_byte || r->retried || r->read_body || r->abort_err)
        return -1;
    struct hn_conn *k = r->conn;
    r->conn = NULL;
    k->req = NULL;
    hn_conn_close(k);
    r->retried = 1;
    r->out_off = r->xbody_off = 0;
    http_client__resp_init(&r->p, r->head_req, r->n->hdrs, HTTP_CLIENT_MAX_HEADERS);
    hn_start(r);
    return 0;
}

/* Fills r->up with the next piece of a read_body upload. 1 if paused, -1 if ended r. */
static int hn_upload_fill(struct hn_req *r)
{
    if (!r->up && !(r->up = malloc(HN_UPLOAD))) {
        hn_finish(r, HTTP_CLIENT_E_NOMEM, "out of memory");
        return -1;
    }
    r->up_len = r->up_off = 0;
    const size_t pre = 18; /* room for a chunk-size line */
    size_t cap = HN_UPLOAD - pre - 2 - 5;
    if (!r->up_chunked && (uint64_t)r->up_left < cap)
        cap = (size_t)r->up_left;
    long got = cap ? r->read_body(&r->base, r->up + pre, cap, r->ud) : 0;
    if (r->abort_err) {
        hn_finish(r, r->abort_err, r->msg);
        return -1;
    }
    if (got == HTTP_CLIENT_READ_PAUSE) {
        r->paused_send = 1;
        return 1;
    }
    if (got < 0 || (size_t)got > cap) {
        hn_finish(r, HTTP_CLIENT_E_ABORTED, "aborted by read_body");
        return -1;
    }
    if (got == 0 && !r->up_chunked && r->up_left > 0) {
        hn_finish(r, HTTP_CLIENT_E_SEND, "read_body ended before body_size bytes");
        return -1;
    }
    if (!r->up_chunked) {
        r->up_off = pre;
        r->up_len = pre + (size_t)got;
        r->up_left -= got;
        r->up_eof = r->up_left == 0;
        return 0;
    }
    char line[20];
    int ln = snprintf(line, sizeof(line), "%lx\r\n", (unsigned long)got);
    r->up_off = pre - (size_t)ln;
    memcpy(r->up + r->up_off, line, (size_t)ln);
    r->up_len = pre + (size_t)got;
    if (got) {
        memcpy(r->up + r->up_len, "\r\n", 2);
        r->up_len += 2;
    } else {
        memcpy(r->up + r->up_len, "\r\n", 2); /* "0\r\n" + the empty trailer line */
        r->up_len += 2;
        r->up_eof = 1;
    }
    return 0;
}

/* Sends what r has to send; watches for writability while the socket is full. */
static void hn_write(struct hn_req *r)
{
    struct hn_conn *k = r->conn;
    for (;;) {
        struct iovec iov[2];
        int n = 0;
        if (r->out_off < r->out_len)
            iov[n++] = (struct iovec){r->out + r->out_off, r->out_len - r->out_off};
        if (r->xbody_off < r->xbody_len)
            iov[n++] = (struct iovec){(char *)r->xbody + r->xbody_off, r->xbody_len - r->xbody_off};
        if (!n && r->read_body && r->up_off < r->up_len)
            iov[n++] = (struct iovec){r->up + r->up_off, r->up_len - r->up_off};
        if (!n && r->read_body && !r->up_eof && !r->paused_send) {
            int rc = hn_upload_fill(r);
            if (rc < 0)
                return;
            if (rc == 0)
                continue;
        }
        if (!n) { /* all sent, or the upload waits: only the response matters now */
            if (hn_watch(k, r->paused_recv ? 0 : LOOP_READ) != 0)
                hn_finish(r, HTTP_CLIENT_E_INTERNAL, "cannot watch the connection");
            return;
        }
        struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)n};
        ssize_t w = sendmsg(k->fd, &mh, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                int ev = LOOP_WRITE | (r->paused_recv ? 0 : LOOP_READ);
                if (hn_watch(k, ev) != 0)
                    hn_finish(r, HTTP_CLIENT_E_INTERNAL, "cannot watch the connection");
                return;
            }
            int e = errno;
            if (hn_retry(r) == 0)
                return;
            snprintf(r->msg, sizeof(r->msg), "send failed: %s", strerror(e));
            hn_fail_later(r, HTTP_CLIENT_E_SEND, r->msg); /* may run inside submit */
            return;
        }
        size_t left = (size_t)w;
        for (int i = 0; i < n && left; i++) {
            size_t take = left < iov[i].iov_len ? left : iov[i].iov_len;
            if (iov[i].iov_base == r->out + r->out_off)
                r->out_off += take;
            else if (r->xbody && iov[i].iov_base == r->xbody + r->xbody_off)
                r->xbody_off += take;
            else
                r->up_off += take;
            left -= take;
        }
    }
}

/* ---- receiving --------------------------------------------------------------------- */

static int hn_headers(struct hn_req *r)
{
    r->status = r->p.status;
    r->headers_done = 1;
    if (r->p.content_length >= 0 && (uint64_t)r->p.content_length > r->max_resp) {
        snprintf(r->msg, sizeof(r->msg), "response body exceeds %zu bytes", r->max_resp);
        hn_finish(r, HTTP_CLIENT_E_TOO_LARGE, r->msg);
        return -1;
    }
    if (!r->on_headers)
        return 0;
    int rc = r->on_headers(&r->base, r->status, r->p.hdrs, r->p.nhdrs, r->ud);
    if (r->abort_err) {
        hn_finish(r, r->abort_err, r->msg);
        return -1;
    }
    if (rc != HTTP_CLIENT_CONTINUE) {
        hn_finish(r, HTTP_CLIENT_E_ABORTED, "aborted by on_headers");
        return -1;
    }
    return 0;
}

/* Hands out a body piece. 0 taken, 1 paused, -1 ended r. */
static int hn_body(struct hn_req *r, const char *d, size_t len)
{
    if (len > r->max_resp || r->rx_bytes > r->max_resp - len) {
        snprintf(r->msg, sizeof(r->msg), "response body exceeds %zu bytes", r->max_resp);
        hn_finish(r, HTTP_CLIENT_E_TOO_LARGE, r->msg);
        return -1;
    }
    if (!r->on_data) {
        if (buf_append(&r->body, d, len)) {
            hn_finish(r, HTTP_CLIENT_E_NOMEM, "out of memory buffering the body");
            return -1;
        }
        r->rx_bytes += len;
        return 0;
    }
    int rc = r->on_data(&r->base, d, len, r->ud);
    if (r->abort_err) {
        hn_finish(r, r->abort_err, r->msg);
        return -1;
    }
    if (rc == HTTP_CLIENT_PAUSE) {
        r->paused_recv = 1;
        return 1;
    }
    if (rc != HTTP_CLIENT_CONTINUE) {
        hn_finish(r, HTTP_CLIENT_E_ABORTED, "aborted by on_data");
        return -1;
    }
    r->rx_bytes += len;
    return 0;
}

/* Parses what the connection buffered for r. 0 wants more, 1 paused, -1 r ended. */
static int hn_process(struct hn_req *r)
{
    struct hn_conn *k = r->conn;
    for (;;) {
        if (r->abort_err) {
            hn_finish(r, r->abort_err, r->msg);
            return -1;
        }
        size_t used, dlen;
        const char *d;
        int ev =
            http_client__resp_feed(&r->p, k->rbuf + k->roff, k->rlen - k->roff, &used, &d, &dlen);
        k->roff += used;
        switch (ev) {
        case HTTP_RESP_MORE:
            return 0;
        case HTTP_RESP_HEAD:
            if (hn_headers(r) != 0)
                return -1;
            break;
        case HTTP_RESP_DATA: {
            int rc = hn_body(r, d, dlen);
            if (rc != 0)
                return rc;
            http_client__resp_consume(&r->p, dlen);
            k->roff += dlen;
            break;
        }
        case HTTP_RESP_DONE:
            /* a connection still sending the request, or with bytes past the answer, is
             * not in a state to carry another one */
            r->reusable = r->p.keep_alive && k->roff == k->rlen && r->out_off == r->out_len &&
                          r->xbody_off == r->xbody_len && (!r->read_body || r->up_eof) &&
                          r->up_off == r->up_len;
            hn_finish(r, HTTP_CLIENT_OK, "");
            return -1;
        case HTTP_RESP_TOO_LARGE:
            hn_finish(r, HTTP_CLIENT_E_TOO_LARGE, r->p.err);
            return -1;
        default:
            hn_finish(r, HTTP_CLIENT_E_PROTOCOL, r->p.err ? r->p.err : "malformed response");
            return -1;
        }
    }
}

static void hn_eof(struct hn_req *r, int err)
{
    if (hn_retry(r) == 0)
        return;
    if (!err && http_client__resp_eof(&r->p) == HTTP_RESP_DONE) {
        r->reusable = 0;
        hn_finish(r, HTTP_CLIENT_OK, "");
        return;
    }
    const char *why = !r->got_byte ? "connection closed before any response"
                      : http_client__resp_in_head(&r->p)
                          ? "connection closed inside the response headers"
                          : "connection closed before the end of the response";
    if (err)
        snprintf(r->msg, sizeof(r->msg), "%s (%s)", why, strerror(err));
    else
        snprintf(r->msg, sizeof(r->msg), "%s", why);
    hn_finish(r, HTTP_CLIENT_E_RECV, r->msg);
}

static void hn_read(struct hn_req *r)
{
    struct hn_conn *k = r->conn;
    for (;;) {
        if (k->roff == k->rlen)
            k->roff = k->rlen = 0;
        if (k->rlen == k->rcap) {
            if (k->roff) {
                memmove(k->rbuf, k->rbuf + k->roff, k->rlen - k->roff);
                k->rlen -= k->roff;
                k->roff = 0;
            } else {
                size_t nc = k->rcap * 2 > HN_RBUF_MAX ? HN_RBUF_MAX : k->rcap * 2;
                char *b = nc > k->rcap ? realloc(k->rbuf, nc) : NULL;
                if (!b) { /* the parser's own limits are below HN_RBUF_MAX */
                    hn_finish(r, HTTP_CLIENT_E_TOO_LARGE, "response line too long");
                    return;
                }
                k->rbuf = b;
                k->rcap = nc;
            }
        }
        size_t room = k->rcap - k->rlen;
        ssize_t got = recv(k->fd, k->rbuf + k->rlen, room, 0);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (got <= 0) {
            hn_eof(r, got < 0 ? errno : 0);
            return;
        }
        uint64_t now = loop_now_ns();
        if (!r->t_first_ns)
            r->t_first_ns = now;
        r->t_last_rx_ns = now;
        r->got_byte = 1;
        k->rlen += (size_t)got;
        int rc = hn_process(r);
        if (rc < 0)
            return;
        if (rc > 0) { /* paused: stop reading until resumed */
            if (hn_watch(k, k->events & LOOP_WRITE) != 0)
                hn_finish(r, HTTP_CLIENT_E_INTERNAL, "cannot watch the connection");
            return;
        }
        if ((size_t)got < room)
            return; /* drained for now; epoll says when there is more */
    }
}

static void hn_on_fd(struct loop *l, int fd, int events, void *ud)
{
    struct hn_conn *k = ud;
    struct hn_req *r = k->req;
    if (!r) { /* idle: the server closed it, or sent what nobody asked for */
        hn_idle_unlink(k);
        hn_conn_close(k);
        return;
    }
    if (r->abort_err) {
        hn_finish(r, r->abort_err, r->msg);
        return;
    }
    if (k->connecting) {
        if (events & (LOOP_WRITE | LOOP_READ))
            hn_connected(k);
        return;
    }
    if ((events & LOOP_WRITE) && !r->paused_send) {
        hn_write(r);
        if (r->done || r->conn != k)
            return;
    }
    if ((events & LOOP_READ) && !r->paused_recv)
        hn_read(r);
}

/* ---- deferred work ------------------------------------------------------------------ */

static void hn_on_kick(struct loop *l, void *ud)
{
    struct hnat *n = ud;
    n->kick = NULL;
    struct hn_req *r;
    while ((r = n->todo_head)) {
        n->todo_head = r->todo_next;
        if (!n->todo_head)
            n->todo_tail = NULL;
        r->in_todo = 0;
        r->todo_next = NULL;
        if (r->done)
            continue;
        if (r->abort_err) {
            hn_finish(r, r->abort_err, r->msg);
            continue;
        }
        if (r->want_resume_recv) {
            r->want_resume_recv = 0;
            r->paused_recv = 0;
            r->t_last_rx_ns = loop_now_ns();
            int rc = hn_process(r);
            if (rc < 0)
                continue;
            if (rc == 0 && hn_watch(r->conn, r->conn->events | LOOP_READ) != 0) {
                hn_finish(r, HTTP_CLIENT_E_INTERNAL, "cannot watch the connection");
                continue;
            }
            if (r->idle_ns)
                hn_arm_watchdog(r, loop_now_ns());
        }
        if (r->want_resume_send && !r->done) {
            r->want_resume_send = 0;
            r->paused_send = 0;
            if (r->conn && !r->conn->connecting)
                hn_write(r);
        }
    }
}

/* ---- requests ------------------------------------------------------------------------ */

/* Splits an http:// URL. 0, or 1 when it is not one this transport takes. */
static int hn_parse_url(const char *url, const char **host, size_t *hlen, uint16_t *port,
                        const char **path, size_t *plen)
{
    if (strncasecmp(url, "http://", 7) != 0)
        return 1;
    for (const char *s = url; *s; s++)
        if ((unsigned char)*s <= 0x20 || *s == 0x7f)
            return 1;
    const char *a = url + 7, *ae = a + strcspn(a, "/?#");
    if (memchr(a, '@', (size_t)(ae - a)))
        return 1; /* credentials: curl turns them into Basic auth */
    const char *hs = a, *he, *pp;
    if (*a == '[') {
        hs = a + 1;
        he = memchr(hs, ']', (size_t)(ae - hs));
        if (!he)
            return 1;
        pp = he + 1;
    } else {
        he = memchr(a, ':', (size_t)(ae - a));
        if (!he)
            he = ae;
        pp = he;
        for (const char *s = hs; s < he; s++)
            if (!(*s == '-' || *s == '.' || *s == '_' || (*s >= '0' && *s <= '9') ||
                  (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z')))
                return 1;
    }
    if (he == hs || he - hs >= HN_HOST_MAX)
        return 1;
    unsigned long pv = 80;
    if (pp < ae) {
        if (*pp != ':')
            return 1;
        pp++;
        if (pp < ae) {
            pv = 0;
            for (; pp < ae; pp++) {
                if (*pp < '0' || *pp > '9' || pv > 65535)
                    return 1;
                pv = pv * 10 + (unsigned long)(*pp - '0');
            }
            if (pv == 0 || pv > 65535)
                return 1;
        }
    }
    *host = hs;
    *hlen = (size_t)(he - hs);
    *port = (uint16_t)pv;
    *path = ae;
    *plen = strcspn(ae, "#");
    return 0;
}

/* 1 when curl would take a proxy from the environment for this http:// request. */
static int hn_env_proxy(void)
{
    static const char *vars[] = {"http_proxy", "all_proxy", "ALL_PROXY"};
    for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
        const char *v = getenv(vars[i]);
        if (v && *v)
            return 1;
    }
    return 0;
}

static int hn_reserve(struct hn_req *r, size_t need)
{
    if (need <= r->out_cap)
        return 0;
    size_t cap = r->out_cap ? r->out_cap : 1024;
    while (cap < need)
        cap *= 2;
    char *o = realloc(r->out, cap);
    if (!o)
        return AS_ENOMEM;
    r->out = o;
    r->out_cap = cap;
    return 0;
}

static void hn_put(struct hn_req *r, const char *s, size_t n)
{
    memcpy(r->out + r->out_len, s, n);
    r->out_len += n;
}

/* Writes the request head (and the body unless borrowed) into r->out. */
static int hn_serialize(struct hn_req *r, const struct http_client_request *q, const char *method,
                        const char *host, size_t hlen, uint16_t port, const char *path, size_t plen)
{
    size_t mlen = strlen(method), need = mlen + plen + 64 + hlen + 8;
    int has_host = 0, has_accept = 0, has_cl = 0, has_te = 0, te_chunked = 0;
    for (const char *const *h = q->headers; h && *h; h++) {
        const char *colon = strchr(*h, ':');
        if (!colon || colon == *h || strpbrk(*h, "\r\n"))
            return AS_EINVAL;
        size_t nl = (size_t)(colon - *h);
        has_host |= nl == 4 && strncasecmp(*h, "Host", 4) == 0;
        has_accept |= nl == 6 && strncasecmp(*h, "Accept", 6) == 0;
        has_cl |= nl == 14 && strncasecmp(*h, "Content-Length", 14) == 0;
        if (nl == 17 && strncasecmp(*h, "Transfer-Encoding", 17) == 0) {
            has_te = 1;
            te_chunked |= strcasestr(colon, "chunked") != NULL;
        }
        need += strlen(*h) + 2;
    }
    int has_body = q->body || q->body_len || q->read_body;
    if (q->read_body) {
        r->up_chunked = q->body_size < 0 || te_chunked;
        r->up_left = q->body_size < 0 ? -1 : q->body_size;
    }
    if (has_body && !q->read_body && !q->body_borrowed)
        need += q->body_len;
    if (hn_reserve(r, need + 96))
        return AS_ENOMEM;
    r->out_len = 0;
    hn_put(r, method, mlen);
    hn_put(r, " ", 1);
    if (plen == 0 || *path != '/')
        hn_put(r, "/", 1);
    hn_put(r, path, plen);
    hn_put(r, " HTTP/1.1\r\n", 11);
    if (!has_host) {
        int v6 = memchr(host, ':', hlen) != NULL;
        hn_put(r, "Host: ", 6);
        if (v6)
            hn_put(r, "[", 1);
        hn_put(r, host, hlen);
        if (v6)
            hn_put(r, "]", 1);
        if (port != 80)
            r->out_len += (size_t)snprintf(r->out + r->out_len, 8, ":%u", (unsigned)port);
        hn_put(r, "\r\n", 2);
    }
    for (const char *const *h = q->headers; h && *h; h++) {
        const char *v = strchr(*h, ':') + 1;
        while (*v == ' ' || *v == '\t')
            v++;
        if (!*v)
            continue; /* "Name:" with no value: not sent (curl's way of removing one) */
        hn_put(r, *h, strlen(*h));
        hn_put(r, "\r\n", 2);
    }
    if (!has_accept)
        hn_put(r, "Accept: */*\r\n", 13);
    if (q->read_body) {
        if (r->up_chunked && !has_te)
            hn_put(r, "Transfer-Encoding: chunked\r\n", 28);
        else if (!r->up_chunked && !has_cl)
            r->out_len += (size_t)snprintf(r->out + r->out_len, 48, "Content-Length: %lld\r\n",
                                           (long long)q->body_size);
    } else if ((has_body || strcmp(method, "POST") == 0) && !has_cl) {
        r->out_len +=
            (size_t)snprintf(r->out + r->out_len, 48, "Content-Length: %zu\r\n", q->body_len);
    }
    hn_put(r, "\r\n", 2);
    r->xbody = NULL;
    r->xbody_len = r->xbody_off = 0;
    if (has_body && !q->read_body && q->body_len) {
        if (q->body_borrowed) {
            r->xbody = q->body;
            r->xbody_len = q->body_len;
        } else {
            hn_put(r, q->body, q->body_len);
        }
    }
    return 0;
}

int http_client__nat_submit(struct hnat *n, const struct http_client_request *q,
                            struct http_client_req **out)
{
    const char *host, *path;
    size_t hlen, plen;
    uint16_t port;
    if (!q->url || q->proxy || (q->proxy_from_env && hn_env_proxy()) ||
        hn_parse_url(q->url, &host, &hlen, &port, &path, &plen) != 0)
        return 1;
    const char *method = q->method ? q->method : "GET";
    if (!*method || strpbrk(method, " \r\n\t") || (q->body_len && !q->body))
        return AS_EINVAL;
    if (n->closing)
        return AS_ECLOSED;

    struct hn_req *r = n->free_reqs;
    if (r) {
        n->free_reqs = r->next;
        n->nfree--;
        char *o = r->out;
        size_t oc = r->out_cap;
        struct buf b = r->body;
        memset(r, 0, sizeof(*r));
        r->out = o;
        r->out_cap = oc;
        r->body = b;
        buf_reset(&r->body);
    } else if (!(r = calloc(1, sizeof(*r)))) {
        return AS_ENOMEM;
    }
    r->base.native = 1;
    r->n = n;
    r->max_resp = q->max_response_bytes ? q->max_response_bytes : HTTP_CLIENT_DEFAULT_MAX_RESPONSE;
    r->body.max = r->max_resp;
    int err = hn_serialize(r, q, method, host, hlen, port, path, plen);
    if (err)
        goto fail;
    if (!(r->h = hn_host_get(n, host, hlen, port))) {
        err = AS_ENOMEM;
        goto fail;
    }
    r->h->refs++;
    r->on_headers = q->on_headers;
    r->on_data = q->on_data;
    r->read_body = q->read_body;
    r->on_done = q->on_done;
    r->ud = q->ud;
    r->head_req = strcmp(method, "HEAD") == 0;
    http_client__resp_init(&r->p, r->head_req, n->hdrs, HTTP_CLIENT_MAX_HEADERS);
    r->conn_timeout_ns =
        (uint64_t)(q->connect_timeout_ms ? q->connect_timeout_ms
                                         : HTTP_CLIENT_DEFAULT_CONNECT_TIMEOUT_MS) *
        1000000u;
    r->total_ns = (uint64_t)q->timeout_ms * 1000000u;
    r->fb_ns = (uint64_t)q->first_byte_timeout_ms * 1000000u;
    r->idle_ns = (uint64_t)q->idle_timeout_ms * 1000000u;
    r->t_start_ns = loop_now_ns();

    r->next = n->reqs;
    if (n->reqs)
        n->reqs->prev = r;
    n->reqs = r;
    n->active++;
    if (out)
        *out = &r->base;
    hn_start(r);
    if (!r->done && !r->watchdog && !r->abort_err)
        hn_arm_watchdog(r, r->t_start_ns);
    return 0;
fail:
    n->active++; /* hn_recycle counts it back down */
    r->h = NULL;
    hn_recycle(r);
    return err;
}

void http_client__nat_cancel(struct http_client_req *req)
{
    struct hn_req *r = (struct hn_req *)req;
    if (r->done || r->abort_err)
        return;
    hn_fail_later(r, HTTP_CLIENT_E_CANCELLED, "cancelled");
}

void http_client__nat_resume(struct http_client_req *req)
{
    struct hn_req *r = (struct hn_req *)req;
    if (r->done || !r->paused_recv)
        return;
    r->want_resume_recv = 1;
    hn_todo_push(r);
}

void http_client__nat_resume_body(struct http_client_req *req)
{
    struct hn_req *r = (struct hn_req *)req;
    if (r->done || !r->paused_send)
        return;
    r->want_resume_send = 1;
    hn_todo_push(r);
}

size_t http_client__nat_active(const struct hnat *n)
{
    return n->active;
}

size_t http_client__nat_idle(const struct hnat *n)
{
    return n->nidle;
}

struct hnat *http_client__nat_new(struct loop *l)
{
    struct hnat *n = calloc(1, sizeof(*n));
    if (n)
        n->loop = l;
    return n;
}

void http_client__nat_free(struct hnat *n)
{
    if (!n)
        return;
    n->closing = 1;
    while (n->reqs)
        hn_finish(n->reqs, HTTP_CLIENT_E_CANCELLED, "client shut down");
    if (n->kick)
        loop_timer_cancel(n->loop, n->kick);
    if (n->sweep)
        loop_timer_cancel(n->loop, n->sweep);
    while (n->hosts) {
        struct hn_host *h = n->hosts;
        hn_host_age(h, loop_iteration(n->loop) + 1);
        while (h->idle) {
            struct hn_conn *k = h->idle;
            hn_idle_unlink(k);
            hn_conn_close(k);
        }
        n->hosts = h->next;
        free(h);
    }
    while (n->free_reqs) {
        struct hn_req *r = n->free_reqs;
        n->free_reqs = r->next;
        free(r->out);
        buf_free(&r->body);
        free(r);
    }
    free(n);
}
