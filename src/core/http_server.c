/*
 * http_server.c - workers, listeners, routing, requests and responses (see http_server.h).
 *
 * Each worker thread runs loop_run() on its own loop; the loop watches the
 * epoll fd of the worker's libmicrohttpd daemon (external-loop epoll mode) and
 * keeps one timer at MHD_get_timeout(). libmicrohttpd parses HTTP and calls
 * on_access() once the headers are in, again per body chunk, and once more at
 * the end; the handler runs then. A handler that returns without answering
 * leaves the connection suspended; the answer arrives through loop_post() (or
 * directly when given on the worker thread) and MHD_resume_connection(), after
 * which MHD calls on_access() again and the stored response is queued (MHD only
 * accepts responses from its callbacks).
 *
 * The header timeout is ours: libmicrohttpd's connection timeout restarts on
 * every byte, so a client dribbling a header byte per second would never time
 * out. Connections waiting for request headers sit in two deadline-ordered
 * lists (first request: open + header_timeout; keep-alive: previous response +
 * idle_timeout); a sweep timer shuts down the sockets of the expired ones,
 * which MHD then sees as closed. Not for: streaming internals (http_stream.c).
 */
#include "core/http_server_int.h"
#include "core/err.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/metrics.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define HTTP_MAX_STATUS 600
/* libmicrohttpd's per-connection pool: request line + headers, and response headers,
 * must fit (larger requests get 431). It clears the pool for every request, so the
 * default 32 KiB cost ~8% of a worker at 30k requests/s. */
#define HTTP_CONN_MEMORY (16 * 1024)

struct http_server {
    struct http_server_config cfg;
    char bind_addr[64];
    char service[64];
    uint16_t port;
    int nthreads;
    struct http_worker *workers;
    struct http_route *routes;
    int nroutes, caproutes;
    atomic_int ready;
    atomic_int draining;
    atomic_int active; /* requests in flight over all workers */
    int started;
    int stopped;
    int shutdown_fd; /* eventfd: http_server_shutdown() */
    struct metric_family *m_requests, *m_duration, *m_inflight;
    struct metric *m_duration_all, *m_inflight_all;
    struct metric *_Atomic m_by_status[HTTP_MAX_STATUS];
};

static _Thread_local struct http_worker *tls_worker;

/* ---- small helpers ------------------------------------------------------- */

__attribute__((format(printf, 3, 4))) static void set_err(char *err, size_t len, const char *fmt,
                                                          ...)
{
    if (!err || !len)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, len, fmt, ap);
    va_end(ap);
}

int http__on_worker(const struct http_worker *w)
{
    return tls_worker == w;
}

struct loop *http_server_current_loop(void)
{
    return tls_worker ? tls_worker->loop : NULL;
}

uint16_t http_server_port(const struct http_server *srv)
{
    return srv->port;
}

int http_server_threads(const struct http_server *srv)
{
    return srv->nthreads;
}

struct loop *http_server_worker_loop(struct http_server *srv, int i)
{
    return i >= 0 && i < srv->nthreads ? srv->workers[i].loop : NULL;
}

void http_server_set_ready(struct http_server *srv, int ready)
{
    atomic_store(&srv->ready, ready ? 1 : 0);
}

/* ---- header-timeout lists ------------------------------------------------ */

static struct http_conn_list *conn_list(struct http_worker *w, int which)
{
    return which == 1 ? &w->first : which == 2 ? &w->keepalive : &w->lingering;
}

static void conn_unlink(struct http_conn *c)
{
    if (!c->list)
        return;
    struct http_conn_list *l = conn_list(c->w, c->list);
    if (c->prev)
        c->prev->next = c->next;
    else
        l->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        l->tail = c->prev;
    c->prev = c->next = NULL;
    c->list = 0;
}

static void conn_push(struct http_conn *c, int which, uint64_t deadline)
{
    conn_unlink(c);
    struct http_conn_list *l = conn_list(c->w, which);
    c->deadline_ms = deadline;
    c->list = which;
    c->prev = l->tail;
    c->next = NULL;
    if (l->tail)
        l->tail->next = c;
    else
        l->head = c;
    l->tail = c;
}

static struct http_conn *conn_of(struct MHD_Connection *mc)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(mc, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

/*
 * Lingering close, as nginx does it: a connection answered before its request
 * body was read (413, say) still has unread bytes coming, and closing it would
 * make the kernel send a reset that can destroy the answer before the client
 * reads it. So keep a duplicate of the socket, send FIN, and read and drop
 * whatever arrives until the client closes or LINGER_MS pass.
 */
#define LINGER_MS  2000
#define LINGER_MAX 256 /* per worker; past it, close at once */

static void linger_done(struct http_conn *c)
{
    conn_unlink(c);
    loop_fd_del(c->w->loop, c->fd);
    close(c->fd);
    c->w->n_lingering--;
    free(c);
}

static void linger_read(struct loop *l, int fd, int events, void *ud)
{
    char scratch[16384];
    for (;;) {
        ssize_t n = read(fd, scratch, sizeof scratch);
        if (n > 0)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        linger_done(ud);
        return;
    }
}

/* Takes over c (freed here or later); MHD is about to close c->fd. */
static void linger_start(struct http_conn *c)
{
    struct http_worker *w = c->w;
    int fd = c->fd < 0 || w->n_lingering >= LINGER_MAX ? -1 : fcntl(c->fd, F_DUPFD_CLOEXEC, 0);
    if (fd < 0) {
        free(c);
        return;
    }
    shutdown(fd, SHUT_WR);
    c->fd = fd;
    if (loop_fd_add(w->loop, fd, LOOP_READ, linger_read, c) != 0) {
        close(fd);
        free(c);
        return;
    }
    w->n_lingering++;
    conn_push(c, 3, loop_now_ms() + LINGER_MS);
}

static void on_connection(void *cls, struct MHD_Connection *mc, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    struct http_worker *w = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        struct http_conn *c = calloc(1, sizeof *c);
        if (!c)
            return; /* no header timeout for this one; MHD's idle timeout still applies */
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CONNECTION_FD);
        c->w = w;
        c->fd = ci ? ci->connect_fd : -1;
        conn_push(c, 1, loop_now_ms() + w->srv->cfg.header_timeout_ms);
        *socket_context = c;
        w->nconns++;
    } else if (*socket_context) {
        /* MHD stops watching its listener at the connection limit and only looks
         * again on its next run, which nothing would trigger: ask for one */
        if (w->nconns-- >= w->conn_limit)
            w->rerun = 1;
        struct http_conn *c = *socket_context;
        conn_unlink(c);
        *socket_context = NULL;
        if (c->linger && !w->stopping)
            linger_start(c);
        else
            free(c);
    }
}

static void sweep_list(struct http_conn_list *l, uint64_t now)
{
    while (l->head && l->head->deadline_ms <= now) {
        struct http_conn *c = l->head;
        conn_unlink(c);
        /* MHD owns the fd: shutting it down makes MHD read EOF and close it properly */
        if (c->fd >= 0)
            shutdown(c->fd, SHUT_RDWR);
    }
}

static void sweep_cb(struct loop *l, void *ud)
{
    struct http_worker *w = ud;
    uint64_t now = loop_now_ms();
    sweep_list(&w->first, now);
    sweep_list(&w->keepalive, now);
    while (w->lingering.head && w->lingering.head->deadline_ms <= now)
        linger_done(w->lingering.head);
    unsigned period = w->srv->cfg.header_timeout_ms / 4;
    period = period < 50 ? 50 : period > 1000 ? 1000 : period;
    w->sweep_timer = loop_timer_add(l, period, sweep_cb, w);
}

/* ---- driving MHD from the loop -------------------------------------------- */

static void run_mhd(struct http_worker *w);

static void mhd_timer_cb(struct loop *l, void *ud)
{
    struct http_worker *w = ud;
    w->mhd_timer = NULL;
    run_mhd(w);
}

static void run_mhd(struct http_worker *w)
{
    if (!w->d)
        return;
    MHD_run(w->d);
    if (w->rerun) {
        w->rerun = 0;
        MHD_run(w->d);
    }
    MHD_UNSIGNED_LONG_LONG to;
    loop_timer_cancel(w->loop, w->mhd_timer);
    w->mhd_timer = NULL;
    if (MHD_get_timeout(w->d, &to) == MHD_YES)
        w->mhd_timer = loop_timer_add(w->loop, to, mhd_timer_cb, w);
}

static void mhd_fd_cb(struct loop *l, int fd, int events, void *ud)
{
    run_mhd(ud);
}

static void scheduled_run_cb(struct loop *l, void *ud)
{
    struct http_worker *w = ud;
    w->run_scheduled = 0;
    run_mhd(w);
}

void http__schedule_run(struct http_worker *w)
{
    if (w->run_scheduled || !w->d)
        return;
    if (loop_timer_add(w->loop, 0, scheduled_run_cb, w))
        w->run_scheduled = 1;
}

/* ---- requests ---------------------------------------------------------------- */

static void req_free(struct http_req *r)
{
    if (r->resp)
        MHD_destroy_response(r->resp);
    buf_free(&r->body);
    buf_free(&r->hdrs);
    free(r);
}

void http__req_unref(struct http_req *r)
{
    if (r && atomic_fetch_sub(&r->refs, 1) == 1)
        req_free(r);
}

const char *http_req_method(const struct http_req *req)
{
    return req->method;
}

const char *http_req_path(const struct http_req *req)
{
    return req->path;
}

struct str http_req_param(const struct http_req *req)
{
    return req->param;
}

const char *http_req_header(struct http_req *req, const char *name)
{
    if (!atomic_load(&req->conn_alive))
        return NULL;
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *http_req_query(struct http_req *req, const char *name)
{
    if (!atomic_load(&req->conn_alive))
        return NULL;
    const char *v = MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
    if (!v && MHD_lookup_connection_value_n(req->conn, MHD_GET_ARGUMENT_KIND, name, strlen(name),
                                            NULL, NULL) == MHD_YES)
        return ""; /* "?flag" without a value */
    return v;
}

struct str http_req_body(const struct http_req *req)
{
    struct str s = {req->body.data ? req->body.data : "", req->body.len};
    return s;
}

const char *http_req_id(const struct http_req *req)
{
    return req->id;
}

const char *http_req_remote(struct http_req *req)
{
    if (req->remote[0] || !req->conn)
        return req->remote[0] ? req->remote : "-";
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = ci ? ci->client_addr : NULL;
    const char *ok = NULL;
    if (sa && sa->sa_family == AF_INET)
        ok = inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr,
                       req->remote, sizeof req->remote);
    else if (sa && sa->sa_family == AF_INET6)
        ok = inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr,
                       req->remote, sizeof req->remote);
    if (!ok)
        snprintf(req->remote, sizeof req->remote, "-");
    return req->remote;
}

struct loop *http_req_loop(const struct http_req *req)
{
    return req->w->loop;
}

struct http_server *http_req_server(const struct http_req *req)
{
    return req->w->srv;
}

void http_req_set_user(struct http_req *req, void *user)
{
    req->user = user;
}

void *http_req_user(const struct http_req *req)
{
    return req->user;
}

/*
 * A new request id: 128 bits from splitmix64 over a per-thread counter seeded
 * from getrandom() once. log_new_request_id() makes a getrandom() call per id,
 * which showed up as ~3% of a worker's time at 30k requests/s; splitmix64 is a
 * bijection of the counter, so one thread never repeats an id.
 */
static uint64_t splitmix64(uint64_t *st)
{
    uint64_t z = (*st += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void new_request_id(char out[33])
{
    static _Thread_local uint64_t state;
    static _Thread_local int seeded;
    static const char hex[] = "0123456789abcdef";
    if (!seeded) {
        if (getrandom(&state, sizeof state, GRND_NONBLOCK) != (ssize_t)sizeof state)
            state = loop_now_ns() ^ (uint64_t)(uintptr_t)&state;
        seeded = 1;
    }
    uint64_t a = splitmix64(&state), b = splitmix64(&state);
    for (int i = 0; i < 16; i++) {
        out[i] = hex[(a >> (60 - 4 * i)) & 15];
        out[16 + i] = hex[(b >> (60 - 4 * i)) & 15];
    }
    out[32] = '\0';
}

/* An incoming X-Request-Id is echoed only if it is short and plain. */
static int request_id_ok(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++) {
        char c = s[n];
        if (n >= 64 || !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                         (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' || c == ':'))
            return 0;
    }
    return n > 0;
}

/* ---- responses ------------------------------------------------------------------- */

static int header_ok(const char *s, int name)
{
    if (!s || (name && !*s))
        return 0;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '\r' || c == '\n' || (name && (c <= ' ' || c == ':' || c >= 127)))
            return 0;
    }
    return 1;
}

int http_resp_header(struct http_req *req, const char *name, const char *value)
{
    if (!header_ok(name, 1) || !header_ok(value, 0))
        return AS_EINVAL;
    size_t old = req->hdrs.len;
    if (buf_append(&req->hdrs, name, strlen(name) + 1) != 0 ||
        buf_append(&req->hdrs, value, strlen(value) + 1) != 0) {
        req->hdrs.len = old;
        return AS_ENOMEM;
    }
    return 0;
}

int http__add_headers(struct http_req *r, struct MHD_Response *resp, const char *content_type)
{
    int bad = 0;
    if (content_type)
        bad |= MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type) != MHD_YES;
    bad |= MHD_add_response_header(resp, "X-Request-Id", r->id) != MHD_YES;
    for (size_t off = 0; off < r->hdrs.len;) {
        const char *name = r->hdrs.data + off;
        const char *value = name + strlen(name) + 1;
        bad |= MHD_add_response_header(resp, name, value) != MHD_YES;
        off = (size_t)(value - r->hdrs.data) + strlen(value) + 1;
    }
    return bad ? AS_ENOMEM : 0;
}

/*
 * While a request waits suspended for its answer, MHD does not look at its
 * socket; if the service asked (http_req_on_gone), the loop does, so that a
 * client hanging up is noticed before the answer is ready. Worker thread only.
 */
static void req_unwatch(struct http_req *r)
{
    if (r->watch_fd >= 0) {
        loop_fd_del(r->w->loop, r->watch_fd);
        r->watch_fd = -1;
    }
}

static void req_peer_cb(struct loop *l, int fd, int events, void *ud)
{
    struct http_req *r = ud;
    char c;
    ssize_t n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    req_unwatch(r); /* bytes from the client (n > 0): cannot tell, stop watching */
    if (n > 0 || r->state != REQ_WAIT)
        return;
    r->aborted = 1; /* MHD closes the connection when it calls on_access() again */
    r->state = REQ_HANDLER;
    MHD_resume_connection(r->conn);
    http__schedule_run(r->w);
    http_req_cb cb = r->gone_cb;
    r->gone_cb = NULL;
    if (cb)
        cb(r, r->gone_ud);
}

void http_req_on_gone(struct http_req *req, http_req_cb cb, void *ud)
{
    req->gone_cb = cb;
    req->gone_ud = ud;
}

static void resume_cb(struct loop *l, void *ud)
{
    struct http_req *r = ud;
    if (atomic_load(&r->conn_alive) && r->state == REQ_WAIT && r->w->d) {
        req_unwatch(r);
        r->state = REQ_HANDLER; /* no longer suspended; on_access() queues r->resp */
        MHD_resume_connection(r->conn);
        http__schedule_run(r->w);
    }
    http__req_unref(r); /* the responder's reference */
}

int http__submit(struct http_req *r, struct MHD_Response *resp, int status)
{
    if (atomic_exchange(&r->responded, 1)) {
        if (resp)
            MHD_destroy_response(resp);
        return AS_EINVAL; /* answered twice: the first answer stands */
    }
    r->resp = resp;
    r->resp_status = status;
    if (r->in_handler && tls_worker == r->w) {
        r->sync_resp = 1; /* queued when the handler returns */
        return 0;
    }
    if (tls_worker == r->w) {
        /* answered later but on the worker itself (a proxied upstream's answer): resume
         * now; a loop_post() would cost a malloc and an eventfd write and read */
        resume_cb(r->w->loop, r);
        return 0;
    }
    if (loop_post(r->w->loop, resume_cb, r) != 0) {
        /* cannot wake the worker: the connection stays suspended until the drain cuts it
         * off; keep the reference so nothing is freed under it */
        log_error("http: cannot post a response", "request_id=%s", r->id);
        return AS_ENOMEM;
    }
    return 0;
}

int http_respond(struct http_req *req, int status, const char *content_type, const void *body,
                 size_t len)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *)(uintptr_t)body, MHD_RESPMEM_MUST_COPY);
    int rc = resp ? 0 : AS_ENOMEM;
    if (resp && http__add_headers(req, resp, content_type) != 0) {
        MHD_destroy_response(resp);
        resp = NULL;
        rc = AS_ENOMEM;
    }
    req->bytes = len;
    /* a NULL response closes the connection: the request is finished either way */
    int src = http__submit(req, resp, status);
    return rc ? rc : src;
}

int http_respond_json(struct http_req *req, int status, const char *json, size_t len)
{
    return http_respond(req, status, "application/json", json, len);
}

int http_respond_error(struct http_req *req, int status, const char *message, const char *type,
                       const char *param, const char *code)
{
    struct buf b;
    buf_init(&b, 64 * 1024);
    if (!type)
        type = as_error_type_for_status(status);
    int rc = as_error_body(&b, message, type, param, code);
    if (rc != 0) {
        buf_reset(&b);
        rc = as_error_body(&b, "error message too long", type, NULL, NULL);
    }
    int src = http_respond(req, status, "application/json", b.data ? b.data : "", b.len);
    buf_free(&b);
    return rc ? rc : src;
}

/* ---- routing -------------------------------------------------------------------- */

int http_server_route(struct http_server *srv, const char *method, const char *pattern,
                      http_handler_fn fn, void *ud)
{
    if (!pattern || pattern[0] != '/' || !fn || srv->started)
        return AS_EINVAL;
    const char *open = strchr(pattern, '{');
    const char *close = open ? strchr(open, '}') : NULL;
    if ((open && !close) || (!open && strchr(pattern, '}')) ||
        (close && (strchr(close + 1, '{') || strchr(close + 1, '}'))) ||
        (open && close == open + 1))
        return AS_EINVAL;
    int rest = close && close[-1] == '*';
    if (rest && close[1] != '\0')
        return AS_EINVAL; /* {name*} takes the rest of the path */
    if (srv->nroutes == srv->caproutes) {
        int n = srv->caproutes ? srv->caproutes * 2 : 16;
        struct http_route *r = realloc(srv->routes, (size_t)n * sizeof *r);
        if (!r)
            return AS_ENOMEM;
        srv->routes = r;
        srv->caproutes = n;
    }
    struct http_route *rt = &srv->routes[srv->nroutes];
    memset(rt, 0, sizeof *rt);
    rt->method = method ? strdup(method) : NULL;
    rt->prefix = open ? strndup(pattern, (size_t)(open - pattern)) : strdup(pattern);
    rt->suffix = close ? strdup(close + 1) : NULL;
    rt->rest = rest;
    rt->fn = fn;
    rt->ud = ud;
    if ((method && !rt->method) || !rt->prefix || (close && !rt->suffix)) {
        free(rt->method);
        free(rt->prefix);
        free(rt->suffix);
        return AS_ENOMEM;
    }
    srv->nroutes++;
    return 0;
}

static int route_path_match(const struct http_route *rt, const char *path, struct str *param)
{
    if (!rt->suffix)
        return strcmp(path, rt->prefix) == 0;
    size_t plen = strlen(rt->prefix);
    if (strncmp(path, rt->prefix, plen) != 0)
        return 0;
    const char *rest = path + plen;
    size_t rlen = strlen(rest), slen = strlen(rt->suffix);
    if (rlen <= slen || memcmp(rest + rlen - slen, rt->suffix, slen) != 0)
        return 0;
    size_t n = rlen - slen;
    if (!rt->rest && memchr(rest, '/', n))
        return 0;
    param->p = rest;
    param->len = n;
    return 1;
}

static int method_match(const char *want, const char *got)
{
    return !want || strcmp(want, got) == 0 || (strcmp(got, "HEAD") == 0 && !strcmp(want, "GET"));
}

/* The route for the request; NULL with *status 404 or 405 (Allow filled in) on a miss. */
static const struct http_route *route_find(struct http_server *srv, struct http_req *r, int *status,
                                           char *allow, size_t allow_len)
{
    int path_seen = 0;
    size_t alen = 0;
    allow[0] = '\0';
    for (int i = 0; i < srv->nroutes; i++) {
        const struct http_route *rt = &srv->routes[i];
        struct str param = {"", 0};
        if (!route_path_match(rt, r->path, &param))
            continue;
        if (method_match(rt->method, r->method)) {
            r->param = param;
            return rt;
        }
        path_seen = 1;
        int n = snprintf(allow + alen, allow_len - alen, "%s%s", alen ? ", " : "", rt->method);
        if (n > 0 && (size_t)n < allow_len - alen)
            alen += (size_t)n;
    }
    *status = path_seen ? 405 : 404;
    return NULL;
}

/* ---- built-in routes --------------------------------------------------------------- */

static void h_live(struct http_req *req, void *ud)
{
    static const char body[] = "{\"status\":\"ok\"}";
    http_respond_json(req, 200, body, sizeof body - 1);
}

static void h_ready(struct http_req *req, void *ud)
{
    struct http_server *srv = ud;
    static const char body[] = "{\"status\":\"ready\"}";
    if (atomic_load(&srv->ready) && !atomic_load(&srv->draining))
        http_respond_json(req, 200, body, sizeof body - 1);
    else
        http_respond_error(req, 503,
                           atomic_load(&srv->draining) ? "server is draining" : "not ready yet",
                           NULL, NULL, "not_ready");
}

static void h_metrics(struct http_req *req, void *ud)
{
    struct buf b;
    buf_init(&b, 64u << 20);
    if (metrics_render(&b) != 0)
        http_respond_error(req, 500, "cannot render metrics", NULL, NULL, NULL);
    else
        http_respond(req, 200, METRICS_CONTENT_TYPE, b.data ? b.data : "", b.len);
    buf_free(&b);
}

static void h_not_found(struct http_req *req, void *ud)
{
    http_respond_error(req, 404, "no route for this path", NULL, NULL, "not_found");
}

static void h_not_allowed(struct http_req *req, void *ud)
{
    http_respond_error(req, 405, "method not allowed for this path", NULL, NULL,
                       "method_not_allowed");
}

static void h_too_large(struct http_req *req, void *ud)
{
    char msg[96];
    snprintf(msg, sizeof msg, "request body is larger than %zu bytes",
             req->w->srv->cfg.max_body_bytes);
    http_respond_error(req, 413, msg, NULL, NULL, "request_too_large");
}

/* ---- the MHD callbacks ----------------------------------------------------------- */

static enum MHD_Result queue_resp(struct http_req *r)
{
    struct MHD_Response *resp = r->resp;
    r->resp = NULL;
    r->state = REQ_SENT;
    if (!resp)
        return MHD_NO;
    if (atomic_load(&r->w->srv->draining))
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    r->status = r->resp_status;
    enum MHD_Result ok = MHD_queue_response(r->conn, (unsigned)r->resp_status, resp);
    MHD_destroy_response(resp);
    return ok;
}

static enum MHD_Result dispatch(struct http_req *r, http_handler_fn fn, void *ud)
{
    r->state = REQ_HANDLER;
    atomic_fetch_add(&r->refs, 1); /* the responder's reference */
    r->in_handler = 1;
    fn(r, ud);
    r->in_handler = 0;
    if (r->sync_resp) {
        enum MHD_Result ok = queue_resp(r);
        http__req_unref(r); /* never the last: the connection holds one */
        return ok;
    }
    if (r->state == REQ_HANDLER) {
        r->state = REQ_WAIT;
        MHD_suspend_connection(r->conn);
        const union MHD_ConnectionInfo *ci =
            r->gone_cb ? MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD) : NULL;
        if (ci && loop_fd_add(r->w->loop, ci->connect_fd, LOOP_READ, req_peer_cb, r) == 0)
            r->watch_fd = ci->connect_fd;
    }
    return MHD_YES;
}

static enum MHD_Result req_first(struct http_worker *w, struct MHD_Connection *mc, const char *url,
                                 const char *method, void **con_cls)
{
    struct http_server *srv = w->srv;
    if (w->stopping)
        return MHD_NO;
    struct http_req *r = calloc(1, sizeof *r);
    if (!r)
        return MHD_NO;
    r->w = w;
    r->conn = mc;
    atomic_init(&r->refs, 1);
    atomic_init(&r->conn_alive, 1);
    atomic_init(&r->responded, 0);
    r->watch_fd = -1;
    r->start_ns = loop_now_ns();
    r->method = method;
    r->path = url;
    buf_init(&r->body, srv->cfg.max_body_bytes);
    buf_init(&r->hdrs, 8192);
    r->live_next = w->live;
    if (w->live)
        w->live->live_prev = r;
    w->live = r;
    atomic_fetch_add(&srv->active, 1);
    metric_inc(srv->m_inflight_all);
    *con_cls = r;

    struct http_conn *c = conn_of(mc);
    if (c)
        conn_unlink(c); /* headers are complete */

    const char *rid = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, "X-Request-Id");
    if (rid && request_id_ok(rid))
        snprintf(r->id, sizeof r->id, "%s", rid);
    else
        new_request_id(r->id);

    const char *cl = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, "Content-Length");
    const char *te = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, "Transfer-Encoding");
    unsigned long long clen = 0;
    if (cl) {
        /* MHD has already rejected a malformed Content-Length with 400 */
        char *end;
        errno = 0;
        clen = strtoull(cl, &end, 10);
        if (errno || end == cl)
            clen = ~0ull;
    }
    int has_body = clen > 0 || te;

    int status = 0;
    char allow[128];
    r->route = route_find(srv, r, &status, allow, sizeof allow);
    if (r->route) {
        r->fn = r->route->fn;
        r->fn_ud = r->route->ud;
    } else {
        if (status == 405)
            http_resp_header(r, "Allow", allow);
        r->fn = status == 405 ? h_not_allowed : h_not_found;
    }
    /* Answers are normally given on MHD's last callback, after the body: one given
     * now makes MHD close the connection, which is right only when a body we do not
     * want is on its way (and it is never read). */
    r->early = 1;
    if (r->route && clen > srv->cfg.max_body_bytes)
        return dispatch(r, h_too_large, NULL);
    if (!r->route && has_body)
        return dispatch(r, r->fn, r->fn_ud);
    r->early = 0;
    r->state = REQ_BODY;
    return MHD_YES;
}

/* Excess request body bytes read and dropped before a 413 rather than cutting the
 * connection (which could lose the answer). */
static size_t discard_budget(const struct http_server *srv)
{
    return srv->cfg.max_body_bytes + (1u << 20);
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *mc, const char *url,
                                 const char *method, const char *version, const char *upload,
                                 size_t *upload_size, void **con_cls)
{
    struct http_worker *w = cls;
    struct http_req *r = *con_cls;
    if (!r)
        return req_first(w, mc, url, method, con_cls);
    switch (r->state) {
    case REQ_BODY:
        if (*upload_size) {
            size_t n = *upload_size;
            *upload_size = 0;
            if (r->fn == h_too_large) {
                /* MHD takes no answer in mid-body (only before or after it): drop a
                 * bounded excess and answer at the end, or give up on the connection */
                r->discarded += n;
                return r->discarded <= discard_budget(w->srv) ? MHD_YES : MHD_NO;
            }
            if (buf_append(&r->body, upload, n) != 0) {
                r->fn = h_too_large; /* a chunked body grew past the cap */
                r->fn_ud = NULL;
                r->discarded = r->body.len + n;
                buf_free(&r->body);
            }
            return MHD_YES;
        }
        return dispatch(r, r->fn, r->fn_ud);
    case REQ_HANDLER: /* resumed with an answer */
        if (r->aborted)
            return MHD_NO;
        if (atomic_load(&r->responded))
            return queue_resp(r);
        r->state = REQ_WAIT;
        MHD_suspend_connection(mc);
        return MHD_YES;
    case REQ_WAIT:
    case REQ_SENT:
        *upload_size = 0; /* body after an early answer: discard */
        return r->aborted ? MHD_NO : MHD_YES;
    }
    return MHD_NO;
}

static struct metric *status_series(struct http_server *srv, int status)
{
    if (status < 100 || status >= HTTP_MAX_STATUS)
        status = 599;
    struct metric *m = atomic_load_explicit(&srv->m_by_status[status], memory_order_acquire);
    if (!m) {
        char code[8];
        snprintf(code, sizeof code, "%d", status);
        m = metric_labels(srv->m_requests, code);
        atomic_store_explicit(&srv->m_by_status[status], m, memory_order_release);
    }
    return m;
}

static void on_completed(void *cls, struct MHD_Connection *mc, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct http_worker *w = cls;
    struct http_server *srv = w->srv;
    struct http_req *r = *con_cls;
    if (!r)
        return;
    *con_cls = NULL;
    int ok = toe == MHD_REQUEST_TERMINATED_COMPLETED_OK;
    req_unwatch(r);
    if (r->stream) {
        r->bytes = r->stream->sent;
        http__stream_closed(r->stream, ok);
    }
    int status = r->state == REQ_SENT ? r->status : 499; /* 499: nothing was sent */
    double ms = (double)(loop_now_ns() - r->start_ns) / 1e6;
    struct log_request lr = {.request_id = r->id,
                             .method = r->method,
                             .path = r->path,
                             .status = status,
                             .bytes = r->bytes,
                             .duration_ms = ms,
                             .remote = http_req_remote(r)};
    log_request(&lr);
    metric_inc(status_series(srv, status));
    metric_observe(srv->m_duration_all, ms / 1000.0);
    metric_dec(srv->m_inflight_all);

    if (r->live_prev)
        r->live_prev->live_next = r->live_next;
    else
        w->live = r->live_next;
    if (r->live_next)
        r->live_next->live_prev = r->live_prev;
    atomic_fetch_sub(&srv->active, 1);
    atomic_store(&r->conn_alive, 0);
    r->method = r->path = "";
    r->param.p = "";
    r->param.len = 0;
    r->conn = NULL;

    struct http_conn *c = conn_of(mc);
    if (c && r->early)
        c->linger = 1;
    else if (c && ok)
        conn_push(c, 2, loop_now_ms() + srv->cfg.idle_timeout_ms);
    http__req_unref(r);
}

__attribute__((format(printf, 2, 0))) static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[256];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
        msg[--n] = '\0';
    log_msg(LOG_DEBUG, "libmicrohttpd", "detail=\"%s\"", msg);
}

/* ---- listeners and workers ----------------------------------------------------- */

/* addr (an IP literal) and port as a socket address. 0 or AS_EINVAL. */
static int parse_addr(const char *addr, uint16_t port, struct sockaddr_storage *ss, socklen_t *sl,
                      char *err, size_t err_len)
{
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, addr, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons(port);
        *sl = sizeof *in4;
    } else if (inet_pton(AF_INET6, addr, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(port);
        *sl = sizeof *in6;
    } else {
        set_err(err, err_len, "bad bind address '%s' (want an IP literal)", addr);
        return AS_EINVAL;
    }
    return 0;
}

static int listen_socket(const char *addr, uint16_t port, uint16_t *bound, char *err,
                         size_t err_len)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    if (parse_addr(addr, port, &ss, &sl, err, err_len) != 0)
        return -1;
    struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0 ||
        bind(fd, (struct sockaddr *)&ss, sl) != 0 || listen(fd, 4096) != 0) {
        set_err(err, err_len, "cannot listen: %s", strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
        *bound = ntohs(ss.ss_family == AF_INET ? in4->sin_port : in6->sin6_port);
    return fd;
}

/*
 * With SO_REUSEPORT a second process of the same user could bind the same port
 * and silently take half the connections; a plain bind first makes a port that
 * is already in use an error, as it would be without SO_REUSEPORT.
 */
static int port_free(const char *addr, uint16_t port, char *err, size_t err_len)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    if (parse_addr(addr, port, &ss, &sl, err, err_len) != 0)
        return AS_EINVAL;
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    int rc = fd >= 0 && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == 0 &&
                     bind(fd, (struct sockaddr *)&ss, sl) == 0
                 ? 0
                 : AS_EIO;
    if (rc != 0)
        set_err(err, err_len, "cannot bind %s:%u: %s", addr, (unsigned)port, strerror(errno));
    if (fd >= 0)
        close(fd);
    return rc;
}

static int worker_init(struct http_server *srv, struct http_worker *w, int i, char *err,
                       size_t err_len)
{
    w->srv = srv;
    w->index = i;
    w->listen_fd = -1;
    w->mhd_fd = -1;
    w->stream_queue = srv->cfg.stream_queue_bytes;
    w->loop = loop_new();
    if (!w->loop) {
        set_err(err, err_len, "%s", "cannot create event loop");
        return AS_ENOMEM;
    }
    uint16_t bound = 0;
    w->listen_fd = listen_socket(srv->bind_addr, srv->port, &bound, err, err_len);
    if (w->listen_fd < 0)
        return AS_EIO;
    if (srv->port == 0)
        srv->port = bound;
    unsigned per =
        (srv->cfg.max_connections + (unsigned)srv->nthreads - 1) / (unsigned)srv->nthreads;
    unsigned idle_s = (srv->cfg.idle_timeout_ms + 999) / 1000;
    w->conn_limit = per;
    w->d = MHD_start_daemon(
        MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_TURBO | MHD_USE_ERROR_LOG, 0, NULL, NULL,
        on_access, w, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, w, MHD_OPTION_LISTEN_SOCKET,
        w->listen_fd, MHD_OPTION_CONNECTION_LIMIT, per, MHD_OPTION_CONNECTION_TIMEOUT, idle_s,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTP_CONN_MEMORY, MHD_OPTION_NOTIFY_COMPLETED,
        on_completed, w, MHD_OPTION_NOTIFY_CONNECTION, on_connection, w, MHD_OPTION_END);
    if (!w->d) {
        set_err(err, err_len, "%s", "cannot start libmicrohttpd daemon");
        return AS_EIO;
    }
    w->listen_fd = -1; /* MHD owns it now; MHD_quiesce_daemon() hands it back */
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(w->d, MHD_DAEMON_INFO_EPOLL_FD);
    w->mhd_fd = di ? di->epoll_fd : -1;
    if (w->mhd_fd < 0 || loop_fd_add(w->loop, w->mhd_fd, LOOP_READ, mhd_fd_cb, w) != 0) {
        set_err(err, err_len, "%s", "cannot watch the libmicrohttpd epoll fd");
        return AS_EIO;
    }
    return 0;
}

/* Drop everything still queued on w's loop (run the posts, so references are released). */
static void stop_cb(struct loop *l, void *ud)
{
    loop_stop(l);
}

static void flush_posts(struct loop *l)
{
    if (loop_post(l, stop_cb, NULL) == 0)
        loop_run(l);
}

static void *worker_main(void *arg)
{
    struct http_worker *w = arg;
    tls_worker = w;
    w->sweep_timer = loop_timer_add(w->loop, 50, sweep_cb, w);
    run_mhd(w);
    if (loop_run(w->loop) != 0)
        log_error("http: event loop failed", "worker=%d", w->index);
    /* every suspended connection was resumed by cutoff_cb; MHD now closes all of them
     * and reports each request completed (streams see on_gone) */
    loop_fd_del(w->loop, w->mhd_fd);
    struct MHD_Daemon *d = w->d;
    MHD_stop_daemon(d);
    w->d = NULL;
    loop_timer_cancel(w->loop, w->mhd_timer);
    loop_timer_cancel(w->loop, w->sweep_timer);
    w->mhd_timer = w->sweep_timer = NULL;
    while (w->lingering.head)
        linger_done(w->lingering.head);
    flush_posts(w->loop);
    tls_worker = NULL;
    return NULL;
}

/* 1 if w's listener has a connection waiting to be accepted. */
static int backlog_pending(struct http_worker *w)
{
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(w->d, MHD_DAEMON_INFO_LISTEN_FD);
    struct pollfd p = {.fd = di ? di->listen_fd : -1, .events = POLLIN};
    return p.fd >= 0 && poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

/*
 * Closes w's listener for the drain. Its clients connected before the drain began
 * and may have sent requests the worker has not read yet, on connections it holds
 * or still in the listener's backlog: run MHD first, until the backlog is empty (MHD
 * accepts at most 10 connections per run), so that the drain counts those requests
 * as in flight instead of closing them unanswered at the cutoff.
 */
static void quiesce_cb(struct loop *l, void *ud)
{
    struct http_worker *w = ud;
    if (w->d) {
        run_mhd(w);
        for (int i = 0; i < 64 && backlog_pending(w); i++)
            run_mhd(w);
        MHD_socket s = MHD_quiesce_daemon(w->d);
        if (s != MHD_INVALID_SOCKET)
            close(s);
    }
    atomic_store(&w->quiesced, 1);
}

/* 1 once every started worker has closed its listener. */
static int all_quiesced(struct http_server *srv)
{
    for (int i = 0; i < srv->nthreads; i++)
        if (srv->workers[i].started && !atomic_load(&srv->workers[i].quiesced))
            return 0;
    return 1;
}

/* Drain timeout passed: resume everything suspended so MHD can close it, then stop. */
static void cutoff_cb(struct loop *l, void *ud)
{
    struct http_worker *w = ud;
    w->stopping = 1;
    for (struct http_req *r = w->live; r; r = r->live_next) {
        r->aborted = 1;
        req_unwatch(r);
        if (r->state == REQ_WAIT) {
            r->state = REQ_HANDLER;
            MHD_resume_connection(r->conn);
        }
        if (r->stream)
            http__stream_abort(r->stream);
    }
    loop_stop(l);
}

struct http_server *http_server_new(const struct http_server_config *cfg, char *err, size_t err_len)
{
    struct http_server *srv = calloc(1, sizeof *srv);
    if (!srv) {
        set_err(err, err_len, "%s", "out of memory");
        return NULL;
    }
    srv->shutdown_fd = -1;
    if (cfg)
        srv->cfg = *cfg;
    struct http_server_config *c = &srv->cfg;
    snprintf(srv->bind_addr, sizeof srv->bind_addr, "%s", c->bind_addr ? c->bind_addr : "0.0.0.0");
    snprintf(srv->service, sizeof srv->service, "%s", c->service ? c->service : "");
    c->bind_addr = srv->bind_addr;
    c->service = srv->service;
    if (c->threads <= 0)
        c->threads = 1;
    if (c->threads > 256)
        c->threads = 256;
    if (!c->max_body_bytes)
        c->max_body_bytes = 1u << 20;
    if (!c->header_timeout_ms)
        c->header_timeout_ms = 10000;
    if (!c->idle_timeout_ms)
        c->idle_timeout_ms = 60000;
    if (!c->max_connections)
        c->max_connections = 4096;
    if (!c->drain_timeout_ms)
        c->drain_timeout_ms = 30000;
    if (!c->stream_queue_bytes)
        c->stream_queue_bytes = 256u << 10;
    srv->port = c->port;
    srv->nthreads = c->threads;

    /* a server wants as many descriptors as it may hold connections */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }

    static const char *const code_label[] = {"code", NULL};
    srv->m_requests = metrics_counter_new(NULL, "http_requests_total",
                                          "HTTP requests answered, by status code", code_label);
    srv->m_duration =
        metrics_histogram_new(NULL, "http_request_duration_seconds",
                              "Time from request headers to the end of the response", NULL,
                              metrics_buckets_latency, metrics_buckets_latency_n);
    srv->m_inflight =
        metrics_gauge_new(NULL, "http_requests_in_flight", "HTTP requests being served", NULL);
    srv->m_duration_all = metric_nolabels(srv->m_duration);
    srv->m_inflight_all = metric_nolabels(srv->m_inflight);

    srv->shutdown_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    srv->workers = calloc((size_t)srv->nthreads, sizeof *srv->workers);
    if (srv->shutdown_fd < 0 || !srv->workers) {
        set_err(err, err_len, "%s", "out of memory");
        goto fail;
    }
    if (srv->port && port_free(srv->bind_addr, srv->port, err, err_len) != 0)
        goto fail;
    for (int i = 0; i < srv->nthreads; i++)
        if (worker_init(srv, &srv->workers[i], i, err, err_len) != 0)
            goto fail;
    if (http_server_route(srv, "GET", "/health/live", h_live, srv) != 0 ||
        http_server_route(srv, "GET", "/health/ready", h_ready, srv) != 0 ||
        http_server_route(srv, "GET", "/metrics", h_metrics, srv) != 0) {
        set_err(err, err_len, "%s", "out of memory");
        goto fail;
    }
    return srv;
fail:
    http_server_free(srv);
    return NULL;
}

int http_server_start(struct http_server *srv)
{
    if (srv->started)
        return 0;
    /* writes to a closed peer fail with EPIPE instead of killing the process (MHD
     * and curl pass MSG_NOSIGNAL, but services may write to pipes too) */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    for (int i = 0; i < srv->nthreads; i++) {
        struct http_worker *w = &srv->workers[i];
        if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
            log_error("http: cannot start worker thread", "worker=%d", i);
            srv->started = 1;
            http_server_drain(srv);
            return AS_ENOMEM;
        }
        w->started = 1;
    }
    srv->started = 1;
    log_info("http server listening", "addr=%s port=%u threads=%d", srv->bind_addr,
             (unsigned)srv->port, srv->nthreads);
    return 0;
}

int http_server_drain(struct http_server *srv)
{
    if (!srv->started || srv->stopped)
        return 0;
    atomic_store(&srv->draining, 1);
    for (int i = 0; i < srv->nthreads; i++) {
        struct http_worker *w = &srv->workers[i];
        if (w->started && loop_post(w->loop, quiesce_cb, w) != 0)
            atomic_store(&w->quiesced, 1); /* cannot ask; do not wait for it either */
    }
    uint64_t deadline = loop_now_ms() + srv->cfg.drain_timeout_ms;
    /* what is in flight is known only once no worker accepts any more: until then a
     * request can still arrive, and the cutoff would close it unanswered */
    while (!all_quiesced(srv) && loop_now_ms() < deadline)
        poll(NULL, 0, 1);
    while (atomic_load(&srv->active) > 0 && loop_now_ms() < deadline)
        poll(NULL, 0, 5);
    int left = atomic_load(&srv->active);
    if (left > 0)
        log_warn("http: drain timeout, cutting off requests", "left=%d", left);
    for (int i = 0; i < srv->nthreads; i++) {
        struct http_worker *w = &srv->workers[i];
        if (!w->started)
            continue;
        if (loop_post(w->loop, cutoff_cb, w) != 0)
            loop_stop(w->loop); /* cannot cut off politely; MHD_stop_daemon still closes */
    }
    for (int i = 0; i < srv->nthreads; i++) {
        struct http_worker *w = &srv->workers[i];
        if (w->started)
            pthread_join(w->thread, NULL);
        w->started = 0;
    }
    srv->stopped = 1;
    log_info("http server stopped", "left=%d", left);
    return left > 0 ? AS_ETIMEDOUT : 0;
}

void http_server_shutdown(struct http_server *srv)
{
    uint64_t one = 1;
    ssize_t w = write(srv->shutdown_fd, &one, sizeof one);
    (void)w;
}

/*
 * SIGTERM/SIGINT: the handler only writes to the server's eventfd (the self-pipe
 * trick); http_server_run() does the work. A handler rather than signalfd because
 * signalfd needs the signal blocked in every thread, and threads started before
 * us (sanitizer runtimes, libraries) would still take it and die. SA_RESETHAND:
 * a second signal during the drain kills the process the usual way.
 */
static int g_signal_fd = -1;
static volatile sig_atomic_t g_signal_no;

static void on_signal(int sig)
{
    int saved = errno;
    g_signal_no = sig;
    uint64_t one = 1;
    ssize_t w = write(g_signal_fd, &one, sizeof one);
    (void)w;
    errno = saved;
}

int http_server_run(struct http_server *srv)
{
    int rc = http_server_start(srv);
    if (rc != 0)
        return rc;
    struct sigaction sa, old_term, old_int;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART | SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    g_signal_no = 0;
    g_signal_fd = srv->shutdown_fd;
    sigaction(SIGTERM, &sa, &old_term);
    sigaction(SIGINT, &sa, &old_int);
    struct pollfd p = {.fd = srv->shutdown_fd, .events = POLLIN};
    while (poll(&p, 1, -1) <= 0 && errno == EINTR)
        ;
    uint64_t v;
    ssize_t r = read(srv->shutdown_fd, &v, sizeof v);
    (void)r;
    int sig = g_signal_no;
    log_info("http server draining", "reason=%s in_flight=%d",
             sig == SIGTERM  ? "SIGTERM"
             : sig == SIGINT ? "SIGINT"
                             : "shutdown",
             atomic_load(&srv->active));
    rc = http_server_drain(srv);
    sigaction(SIGTERM, &old_term, NULL);
    sigaction(SIGINT, &old_int, NULL);
    return rc;
}

static void add_conn_cb(struct loop *l, void *ud)
{
    struct http_worker *w = tls_worker;
    int fd = (int)(intptr_t)ud;
    if (!w || !w->d) {
        close(fd);
        return;
    }
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getpeername(fd, (struct sockaddr *)&ss, &sl) != 0 ||
        (ss.ss_family != AF_INET && ss.ss_family != AF_INET6)) {
        memcpy(&ss, &sin, sizeof sin);
        sl = sizeof sin;
    }
    if (MHD_add_connection(w->d, fd, (struct sockaddr *)&ss, sl) != MHD_YES)
        log_warn("http: cannot add connection", NULL);
    run_mhd(w);
}

int http_server_add_connection(struct http_server *srv, int fd)
{
    if (!srv->started || srv->stopped || atomic_load(&srv->draining)) {
        close(fd);
        return AS_ECLOSED;
    }
    if (loop_post(srv->workers[0].loop, add_conn_cb, (void *)(intptr_t)fd) != 0) {
        close(fd);
        return AS_ENOMEM;
    }
    return 0;
}

void http_server_free(struct http_server *srv)
{
    if (!srv)
        return;
    if (srv->started && !srv->stopped)
        http_server_drain(srv);
    for (int i = 0; srv->workers && i < srv->nthreads; i++) {
        struct http_worker *w = &srv->workers[i];
        if (w->d) { /* never started */
            if (w->loop && w->mhd_fd >= 0)
                loop_fd_del(w->loop, w->mhd_fd);
            MHD_stop_daemon(w->d);
            w->d = NULL;
        }
        if (w->listen_fd >= 0) /* the daemon never took it */
            close(w->listen_fd);
        if (w->loop) {
            flush_posts(w->loop); /* answers posted after the stop release their references */
            loop_free(w->loop);
        }
    }
    for (int i = 0; i < srv->nroutes; i++) {
        free(srv->routes[i].method);
        free(srv->routes[i].prefix);
        free(srv->routes[i].suffix);
    }
    free(srv->routes);
    free(srv->workers);
    if (srv->shutdown_fd >= 0)
        close(srv->shutdown_fd);
    free(srv);
}
