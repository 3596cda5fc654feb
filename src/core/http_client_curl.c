/*
 * http_client_curl.c - the libcurl transport of http_client.h: https://, proxies,
 * and every request when AISTACK_HTTP_CLIENT=curl (plain http:// goes through
 * http_client_native.c otherwise). libcurl's multi interface driven by struct loop.
 *
 * curl tells us which sockets to watch (CURLMOPT_SOCKETFUNCTION -> loop_fd_*) and
 * when to call it back (CURLMOPT_TIMERFUNCTION -> one loop timer); we hand events
 * back with curl_multi_socket_action() and collect finished transfers with
 * curl_multi_info_read(). libcurl forbids curl_multi_add/remove_handle from inside
 * its callbacks, and users call us from those callbacks (on_data, on_headers), so
 * anything that must not run there - starting a transfer, ending one, unpausing -
 * is queued on a per-client "todo" list drained by a zero-delay loop timer. First
 * byte and idle timeouts are ours (one lazily re-armed watchdog timer per
 * request); connect and total timeouts are curl's.
 */
#include "core/err.h"
#include "core/http_client.h"
#include "core/http_client_int.h"
#include "core/loop.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct hc_sock {
    struct hcurl *c;
    curl_socket_t fd;
    int events;
    struct hc_sock *prev, *next;
};

struct hcurl {
    struct loop *loop;
    CURLM *multi;
    struct loop_timer *timer; /* curl's timeout */
    struct loop_timer *kick;  /* drains the todo list */
    struct hc_sock *socks;
    struct hcurl_req *reqs; /* every request not yet done */
    struct hcurl_req *todo_head, *todo_tail;
    size_t active;
    int in_curl; /* > 0 while curl may be calling back (no add/remove then) */
    int closing;
};

struct hcurl_req {
    struct http_client_req base; /* first: the handle users see */
    struct hcurl *c;
    CURL *easy;
    struct curl_slist *hdrs;
    char *body_copy;
    http_client_headers_cb on_headers;
    http_client_data_cb on_data;
    http_client_read_cb read_body;
    http_client_done_cb on_done;
    void *ud;

    struct buf hbuf; /* header lines of the response being received */
    struct buf body; /* buffered body when on_data is NULL */
    size_t max_resp;
    uint64_t rx_bytes;
    int status;

    uint64_t t_start_ns, t_first_ns, t_last_rx_ns;
    uint64_t fb_timeout_ns, idle_timeout_ns;
    struct loop_timer *watchdog;

    int added;        /* in the multi handle */
    int pending_add;  /* waiting to be added */
    int headers_done; /* on_headers was called */
    int done;         /* on_done is running or ran */
    int paused_recv, paused_send;
    int want_resume_recv, want_resume_send;
    enum http_client_err abort_err; /* our own reason to end it, 0 if none */
    char msg[CURL_ERROR_SIZE + 64];
    char errbuf[CURL_ERROR_SIZE];

    struct hcurl_req *prev, *next;
    struct hcurl_req *todo_prev, *todo_next;
    int in_todo;
};

static pthread_once_t hc_once = PTHREAD_ONCE_INIT;
static CURLcode hc_global_rc = CURLE_FAILED_INIT;

static void hc_global_init(void)
{
    hc_global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* ---- small helpers ------------------------------------------------------------ */

size_t http_client__curl_active(const struct hcurl *c)
{
    return c->active;
}

static enum http_client_err hc_map_curl(CURLcode rc, CURL *easy)
{
    switch (rc) {
    case CURLE_OK:
        return HTTP_CLIENT_OK;
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
    case CURLE_BAD_FUNCTION_ARGUMENT:
    case CURLE_NOT_BUILT_IN:
        return HTTP_CLIENT_E_INVALID;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        return HTTP_CLIENT_E_RESOLVE;
    case CURLE_COULDNT_CONNECT:
        return HTTP_CLIENT_E_CONNECT;
    case CURLE_OPERATION_TIMEDOUT: {
        /* curl reports both timeouts alike: "connected" is when the request could be sent. */
        curl_off_t pre = 0;
        if (curl_easy_getinfo(easy, CURLINFO_PRETRANSFER_TIME_T, &pre) == CURLE_OK && pre == 0)
            return HTTP_CLIENT_E_CONNECT_TIMEOUT;
        return HTTP_CLIENT_E_TIMEOUT;
    }
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_USE_SSL_FAILED:
        return HTTP_CLIENT_E_TLS;
    case CURLE_SEND_ERROR:
        return HTTP_CLIENT_E_SEND;
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
        return HTTP_CLIENT_E_RECV;
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_BAD_CONTENT_ENCODING:
        return HTTP_CLIENT_E_PROTOCOL;
    case CURLE_FILESIZE_EXCEEDED:
        return HTTP_CLIENT_E_TOO_LARGE;
    case CURLE_OUT_OF_MEMORY:
        return HTTP_CLIENT_E_NOMEM;
    case CURLE_WRITE_ERROR:
    case CURLE_READ_ERROR:
    case CURLE_ABORTED_BY_CALLBACK:
        return HTTP_CLIENT_E_ABORTED;
    default:
        return HTTP_CLIENT_E_INTERNAL;
    }
}

/* Records our own reason to end req (the first one wins). */
static void hc_set_abort(struct hcurl_req *r, enum http_client_err err, const char *msg)
{
    if (r->abort_err)
        return;
    r->abort_err = err;
    snprintf(r->msg, sizeof(r->msg), "%s", msg);
}

/* ---- todo list ---------------------------------------------------------------- */

static void hc_on_kick(struct loop *l, void *ud);

static void hc_todo_push(struct hcurl_req *r)
{
    struct hcurl *c = r->c;
    if (!r->in_todo) {
        r->in_todo = 1;
        r->todo_next = NULL;
        r->todo_prev = c->todo_tail;
        if (c->todo_tail)
            c->todo_tail->todo_next = r;
        else
            c->todo_head = r;
        c->todo_tail = r;
    }
    if (!c->kick)
        c->kick = loop_timer_add(c->loop, 0, hc_on_kick, c);
    /* If the timer cannot be armed, the next curl event or timeout drains the list. */
}

static void hc_todo_unlink(struct hcurl_req *r)
{
    struct hcurl *c = r->c;
    if (!r->in_todo)
        return;
    if (r->todo_prev)
        r->todo_prev->todo_next = r->todo_next;
    else
        c->todo_head = r->todo_next;
    if (r->todo_next)
        r->todo_next->todo_prev = r->todo_prev;
    else
        c->todo_tail = r->todo_prev;
    r->in_todo = 0;
    r->todo_next = r->todo_prev = NULL;
}

/* ---- finishing ---------------------------------------------------------------- */

/*
 * Easy handles are never reused (curl_easy_reset + reuse would save ~10% CPU):
 * libcurl 7.88's header API keeps a pointer to the previous transfer's last
 * header, and a folded header line at the start of the next response on the
 * same handle makes it read freed memory (found by fuzz_http_client).
 */
static void hc_req_free(struct hcurl_req *r)
{
    if (r->easy)
        curl_easy_cleanup(r->easy);
    curl_slist_free_all(r->hdrs);
    free(r->body_copy);
    buf_free(&r->hbuf);
    buf_free(&r->body);
    free(r);
}

/* Ends r with err: removes it from curl, calls on_done once, frees it. Never inside curl. */
static void hc_finish(struct hcurl_req *r, enum http_client_err err, const char *msg)
{
    struct hcurl *c = r->c;
    if (r->done)
        return;
    r->done = 1;
    if (r->watchdog) {
        loop_timer_cancel(c->loop, r->watchdog);
        r->watchdog = NULL;
    }
    hc_todo_unlink(r);

    struct http_client_result res = {.err = err, .status = r->status, .message = msg ? msg : ""};
    uint64_t now = loop_now_ns();
    res.total_us = (now - r->t_start_ns) / 1000;
    res.first_byte_us = r->t_first_ns ? (r->t_first_ns - r->t_start_ns) / 1000 : 0;
    res.bytes_received = r->rx_bytes;
    res.body = r->body.data ? r->body.data : "";
    res.body_len = r->body.len;
    if (r->added) {
        long nconn = 0;
        curl_off_t ct = 0, act = 0, pre = 0;
        curl_easy_getinfo(r->easy, CURLINFO_NUM_CONNECTS, &nconn);
        curl_easy_getinfo(r->easy, CURLINFO_CONNECT_TIME_T, &ct);
        curl_easy_getinfo(r->easy, CURLINFO_APPCONNECT_TIME_T, &act);
        curl_easy_getinfo(r->easy, CURLINFO_PRETRANSFER_TIME_T, &pre);
        res.reused = nconn == 0 && pre > 0;
        res.connect_us = nconn > 0 ? (uint64_t)(act > ct ? act : ct) : 0;
        curl_multi_remove_handle(c->multi, r->easy);
        r->added = 0;
    }

    if (r->prev)
        r->prev->next = r->next;
    else
        c->reqs = r->next;
    if (r->next)
        r->next->prev = r->prev;
    c->active--;

    r->on_done(&r->base, &res, r->ud);
    hc_req_free(r);
}

/* Collects transfers curl finished. */
static void hc_check_done(struct hcurl *c)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(c->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        char *priv = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv);
        struct hcurl_req *r = (struct hcurl_req *)priv;
        if (!r || r->done)
            continue;
        CURLcode rc = m->data.result;
        if (r->abort_err) {
            hc_finish(r, r->abort_err, r->msg);
        } else if (rc == CURLE_OK && !r->headers_done) {
            /* curl accepts a head cut by EOF; a proxy must not take it for an answer */
            long status = 0;
            curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
            r->status = (int)status;
            hc_finish(r, HTTP_CLIENT_E_RECV, "connection closed inside the response headers");
        } else if (rc == CURLE_OK) {
            hc_finish(r, HTTP_CLIENT_OK, "");
        } else {
            enum http_client_err e = hc_map_curl(rc, r->easy);
            if (e == HTTP_CLIENT_E_TOO_LARGE)
                snprintf(r->msg, sizeof(r->msg), "response body exceeds %zu bytes", r->max_resp);
            else
                snprintf(r->msg, sizeof(r->msg), "%s",
                         r->errbuf[0] ? r->errbuf : curl_easy_strerror(rc));
            hc_finish(r, e, r->msg);
        }
    }
}

static void hc_add(struct hcurl_req *r)
{
    struct hcurl *c = r->c;
    r->pending_add = 0;
    CURLMcode mc = curl_multi_add_handle(c->multi, r->easy);
    if (mc != CURLM_OK) {
        hc_finish(r, HTTP_CLIENT_E_INTERNAL, curl_multi_strerror(mc));
        return;
    }
    r->added = 1;
}

static void hc_unpause(struct hcurl_req *r)
{
    struct hcurl *c = r->c;
    if (r->want_resume_recv) {
        r->want_resume_recv = 0;
        r->paused_recv = 0;
        r->t_last_rx_ns = loop_now_ns();
    }
    if (r->want_resume_send) {
        r->want_resume_send = 0;
        r->paused_send = 0;
    }
    if (!r->added)
        return;
    int mask = (r->paused_recv ? CURLPAUSE_RECV : 0) | (r->paused_send ? CURLPAUSE_SEND : 0);
    c->in_curl++;
    /* May deliver held-back data to on_data right here; that is why it is deferred. */
    curl_easy_pause(r->easy, mask);
    c->in_curl--;
}

static void hc_drain_todo(struct hcurl *c)
{
    struct hcurl_req *r;
    while ((r = c->todo_head)) {
        hc_todo_unlink(r);
        if (r->abort_err)
            hc_finish(r, r->abort_err, r->msg);
        else if (r->pending_add)
            hc_add(r);
        else if (r->want_resume_recv || r->want_resume_send)
            hc_unpause(r);
    }
    hc_check_done(c);
}

static void hc_on_kick(struct loop *l, void *ud)
{
    struct hcurl *c = ud;
    c->kick = NULL;
    hc_drain_todo(c);
}

/* ---- curl <-> loop glue ------------------------------------------------------- */

static void hc_on_fd(struct loop *l, int fd, int events, void *ud)
{
    struct hc_sock *s = ud;
    struct hcurl *c = s->c; /* s may be freed inside socket_action */
    int action = ((events & LOOP_READ) ? CURL_CSELECT_IN : 0) |
                 ((events & LOOP_WRITE) ? CURL_CSELECT_OUT : 0);
    int running = 0;
    c->in_curl++;
    curl_multi_socket_action(c->multi, fd, action, &running);
    c->in_curl--;
    hc_drain_todo(c);
}

static void hc_on_timer(struct loop *l, void *ud)
{
    struct hcurl *c = ud;
    int running = 0;
    c->timer = NULL;
    c->in_curl++;
    curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    c->in_curl--;
    hc_drain_todo(c);
}

static int hc_socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *sockp)
{
    struct hcurl *c = userp;
    struct hc_sock *s = sockp;
    if (what == CURL_POLL_REMOVE) {
        if (s) {
            /* curl drops a connection's socket when it goes back to the cache: park
             * it, so that the connection's next request costs one epoll_ctl, not two */
            if (s->events &&
                (c->closing || s->events != LOOP_READ || loop_fd_park(c->loop, fd) != 0))
                loop_fd_del(c->loop, fd);
            if (s->prev)
                s->prev->next = s->next;
            else
                c->socks = s->next;
            if (s->next)
                s->next->prev = s->prev;
            free(s);
            curl_multi_assign(c->multi, fd, NULL);
        }
        return 0;
    }
    if (c->closing)
        return 0;
    int ev = ((what & CURL_POLL_IN) ? LOOP_READ : 0) | ((what & CURL_POLL_OUT) ? LOOP_WRITE : 0);
    if (!s) {
        s = calloc(1, sizeof(*s));
        if (!s)
            return -1;
        s->c = c;
        s->fd = fd;
        s->next = c->socks;
        if (c->socks)
            c->socks->prev = s;
        c->socks = s;
        curl_multi_assign(c->multi, fd, s);
    }
    if (s->events == ev)
        return 0;
    /* s->events == 0: known to curl but not watched by the loop (curl wants nothing now). */
    int rc = 0;
    if (ev == 0)
        rc = loop_fd_del(c->loop, fd);
    else if (s->events == 0)
        rc = loop_fd_add(c->loop, fd, ev, hc_on_fd, s);
    else
        rc = loop_fd_mod(c->loop, fd, ev);
    if (rc != 0)
        return -1;
    s->events = ev;
    return 0;
}

static int hc_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    struct hcurl *c = userp;
    if (c->timer) {
        loop_timer_cancel(c->loop, c->timer);
        c->timer = NULL;
    }
    if (timeout_ms < 0 || c->closing)
        return 0;
    c->timer = loop_timer_add(c->loop, (uint64_t)timeout_ms, hc_on_timer, c);
    return c->timer ? 0 : -1;
}

/* ---- per-request watchdog (first byte / idle) ------------------------------------ */

static void hc_on_watchdog(struct loop *l, void *ud);

static void hc_arm_watchdog(struct hcurl_req *r, uint64_t now)
{
    uint64_t due = UINT64_MAX;
    if (!r->t_first_ns && r->fb_timeout_ns)
        due = r->t_start_ns + r->fb_timeout_ns;
    if (r->idle_timeout_ns) {
        /* Before the first byte or while paused the idle clock is not running: look again later. */
        uint64_t base = (r->t_first_ns && !r->paused_recv) ? r->t_last_rx_ns : now;
        if (base + r->idle_timeout_ns < due)
            due = base + r->idle_timeout_ns;
    }
    if (due == UINT64_MAX)
        return;
    uint64_t ms = due > now ? (due - now + 999999) / 1000000 : 0;
    r->watchdog = loop_timer_add(r->c->loop, ms, hc_on_watchdog, r);
    /* Without a timer the request still ends by curl's timeouts. */
}

static void hc_on_watchdog(struct loop *l, void *ud)
{
    struct hcurl_req *r = ud;
    uint64_t now = loop_now_ns();
    r->watchdog = NULL;
    if (r->done || r->abort_err)
        return;
    if (!r->t_first_ns && r->fb_timeout_ns && now - r->t_start_ns >= r->fb_timeout_ns) {
        snprintf(r->msg, sizeof(r->msg), "no response within %llu ms",
                 (unsigned long long)(r->fb_timeout_ns / 1000000));
        r->abort_err = HTTP_CLIENT_E_FIRST_BYTE_TIMEOUT;
        hc_finish(r, r->abort_err, r->msg);
        return;
    }
    if (r->t_first_ns && r->idle_timeout_ns && !r->paused_recv &&
        now - r->t_last_rx_ns >= r->idle_timeout_ns) {
        snprintf(r->msg, sizeof(r->msg), "response stalled for %llu ms",
                 (unsigned long long)(r->idle_timeout_ns / 1000000));
        r->abort_err = HTTP_CLIENT_E_IDLE_TIMEOUT;
        hc_finish(r, r->abort_err, r->msg);
        return;
    }
    hc_arm_watchdog(r, now);
}

static void hc_note_rx(struct hcurl_req *r)
{
    uint64_t now = loop_now_ns();
    if (!r->t_first_ns)
        r->t_first_ns = now;
    r->t_last_rx_ns = now;
}

/* ---- curl easy callbacks --------------------------------------------------------- */

/* Splits the stored header lines into name/value pairs and calls on_headers. */
static int hc_deliver_headers(struct hcurl_req *r)
{
    struct http_header *h = NULL;
    size_t cap = 0;
    long status = 0;
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
    r->status = (int)status;
    r->headers_done = 1;
    if (status < 100 || status > 999) {
        /* curl 7.88 hands some mangled heads ("HTTP/200\t...") on as a response with
         * status 0 (found by fuzz_http_client): that is no answer to relay */
        hc_set_abort(r, HTTP_CLIENT_E_PROTOCOL, "malformed response status line");
        return -1;
    }
    if (!r->on_headers)
        return 0;
    const char *p = r->hbuf.data ? r->hbuf.data : "";
    for (size_t i = 0; i < r->hbuf.len; i++)
        cap += p[i] == '\n';
    if (cap > HTTP_CLIENT_MAX_HEADERS)
        cap = HTTP_CLIENT_MAX_HEADERS;
    if (cap && !(h = calloc(cap, sizeof(*h)))) {
        hc_set_abort(r, HTTP_CLIENT_E_NOMEM, "out of memory parsing headers");
        return -1;
    }
    ssize_t n = http_client__parse_headers(p, r->hbuf.len, h, cap);
    if (n < 0) {
        free(h);
        hc_set_abort(r, HTTP_CLIENT_E_TOO_LARGE, "too many response headers");
        return -1;
    }
    int rc = r->on_headers(&r->base, r->status, h, (size_t)n, r->ud);
    free(h);
    if (r->abort_err)
        return -1;
    if (rc != HTTP_CLIENT_CONTINUE) {
        hc_set_abort(r, HTTP_CLIENT_E_ABORTED, "aborted by on_headers");
        return -1;
    }
    return 0;
}

static size_t hc_header_cb(char *ptr, size_t size, size_t nmemb, void *ud)
{
    struct hcurl_req *r = ud;
    size_t n = size * nmemb;
    if (r->abort_err)
        return CURL_WRITEFUNC_ERROR;
    hc_note_rx(r);
    if (r->headers_done)
        return n; /* trailers of a chunked body: not delivered */
    if (n <= 2 && (n == 0 || ptr[0] == '\r' || ptr[0] == '\n')) {
        long status = 0;
        curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
        if (status >= 100 && status < 200) { /* 100 Continue & co: wait for the real one */
            buf_reset(&r->hbuf);
            return n;
        }
        return hc_deliver_headers(r) ? CURL_WRITEFUNC_ERROR : n;
    }
    if (buf_append(&r->hbuf, ptr, n)) {
        hc_set_abort(r, HTTP_CLIENT_E_TOO_LARGE, "response headers too large");
        return CURL_WRITEFUNC_ERROR;
    }
    return n;
}

static size_t hc_write_cb(char *ptr, size_t size, size_t nmemb, void *ud)
{
    struct hcurl_req *r = ud;
    size_t n = size * nmemb;
    if (r->abort_err)
        return CURL_WRITEFUNC_ERROR;
    hc_note_rx(r);
    if (!r->headers_done && hc_deliver_headers(r))
        return CURL_WRITEFUNC_ERROR;
    if (n > r->max_resp || r->rx_bytes > r->max_resp - n) {
        snprintf(r->msg, sizeof(r->msg), "response body exceeds %zu bytes", r->max_resp);
        r->abort_err = HTTP_CLIENT_E_TOO_LARGE;
        return CURL_WRITEFUNC_ERROR;
    }
    if (!r->on_data) {
        if (buf_append(&r->body, ptr, n)) {
            hc_set_abort(r, HTTP_CLIENT_E_NOMEM, "out of memory buffering the body");
            return CURL_WRITEFUNC_ERROR;
        }
        r->rx_bytes += n;
        return n;
    }
    int rc = r->on_data(&r->base, ptr, n, r->ud);
    if (r->abort_err)
        return CURL_WRITEFUNC_ERROR;
    if (rc == HTTP_CLIENT_PAUSE) {
        r->paused_recv = 1;
        return CURL_WRITEFUNC_PAUSE;
    }
    if (rc != HTTP_CLIENT_CONTINUE) {
        hc_set_abort(r, HTTP_CLIENT_E_ABORTED, "aborted by on_data");
        return CURL_WRITEFUNC_ERROR;
    }
    r->rx_bytes += n;
    return n;
}

static size_t hc_read_cb(char *buf, size_t size, size_t nitems, void *ud)
{
    struct hcurl_req *r = ud;
    size_t cap = size * nitems;
    if (r->abort_err)
        return CURL_READFUNC_ABORT;
    long rc = r->read_body(&r->base, buf, cap, r->ud);
    if (r->abort_err)
        return CURL_READFUNC_ABORT;
    if (rc == HTTP_CLIENT_READ_PAUSE) {
        r->paused_send = 1;
        return CURL_READFUNC_PAUSE;
    }
    if (rc < 0 || (size_t)rc > cap) {
        hc_set_abort(r, HTTP_CLIENT_E_ABORTED, "aborted by read_body");
        return CURL_READFUNC_ABORT;
    }
    return (size_t)rc;
}

/* ---- public API ----------------------------------------------------------------- */

struct hcurl *http_client__curl_new(struct loop *l)
{
    struct hcurl *c = NULL;
    pthread_once(&hc_once, hc_global_init);
    if (hc_global_rc != CURLE_OK || !l)
        return NULL;
    c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->loop = l;
    c->multi = curl_multi_init();
    if (!c->multi)
        goto fail;
    if (curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, hc_socket_cb) ||
        curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c) ||
        curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, hc_timer_cb) ||
        curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c) ||
        /* idle keep-alive connections kept for reuse, whatever the number in flight:
         * as many as a worker may have requests in flight, or a burst of N concurrent
         * requests closes all but the cap's worth afterwards and reconnects next time
         * (256 left thousands of sockets in TIME_WAIT at 1000 client connections) */
        curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, (long)HTTP_CLIENT_MAX_IDLE_CONNS))
        goto fail;
    return c;
fail:
    if (c->multi)
        curl_multi_cleanup(c->multi);
    free(c);
    return NULL;
}

void http_client__curl_free(struct hcurl *c)
{
    if (!c)
        return;
    c->closing = 1;
    while (c->reqs)
        hc_finish(c->reqs, HTTP_CLIENT_E_CANCELLED, "client shut down");
    if (c->kick)
        loop_timer_cancel(c->loop, c->kick);
    if (c->timer)
        loop_timer_cancel(c->loop, c->timer);
    c->kick = c->timer = NULL;
    /* Unwatch the cached connections' sockets before curl closes them. */
    while (c->socks) {
        struct hc_sock *s = c->socks;
        c->socks = s->next;
        if (s->events)
            loop_fd_del(c->loop, s->fd);
        curl_multi_assign(c->multi, s->fd, NULL);
        free(s);
    }
    curl_multi_cleanup(c->multi);
    free(c);
}

/* Builds the header list: the caller's, plus "Expect:" (no 100-continue round trip). */
static int hc_build_headers(struct hcurl_req *r, const struct http_client_request *q)
{
    int have_expect = 0, have_te = 0;
    for (const char *const *h = q->headers; h && *h; h++) {
        if (!strchr(*h, ':') || strpbrk(*h, "\r\n"))
            return AS_EINVAL;
        if (strncasecmp(*h, "Expect:", 7) == 0)
            have_expect = 1;
        if (strncasecmp(*h, "Transfer-Encoding:", 18) == 0)
            have_te = 1;
        struct curl_slist *nl = curl_slist_append(r->hdrs, *h);
        if (!nl)
            return AS_ENOMEM;
        r->hdrs = nl;
    }
    const char *extra[2] = {have_expect ? NULL : "Expect:", NULL};
    if (q->read_body && q->body_size < 0 && !have_te)
        extra[1] = "Transfer-Encoding: chunked";
    for (int i = 0; i < 2; i++) {
        if (!extra[i])
            continue;
        struct curl_slist *nl = curl_slist_append(r->hdrs, extra[i]);
        if (!nl)
            return AS_ENOMEM;
        r->hdrs = nl;
    }
    return 0;
}

/* Sets every curl option of the request. 0, AS_EINVAL or AS_ENOMEM. */
static int hc_setup(struct hcurl_req *r, const struct http_client_request *q)
{
    CURL *e = r->easy;
    const char *method = q->method ? q->method : "GET";
    int has_body = q->body || q->body_len || q->read_body;
    CURLcode rc = CURLE_OK;
    int err;

    if (!q->url || !*method || strpbrk(method, " \r\n\t") || (q->body_len && !q->body))
        return AS_EINVAL;
    if ((err = hc_build_headers(r, q)))
        return err;

#define SET(opt, val)                                                                              \
    do {                                                                                           \
        if ((rc = curl_easy_setopt(e, opt, val)) != CURLE_OK)                                      \
            goto out;                                                                              \
    } while (0)
    SET(CURLOPT_PRIVATE, r);
    SET(CURLOPT_ERRORBUFFER, r->errbuf);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_URL, q->url);
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    SET(CURLOPT_HTTPHEADER, r->hdrs);
    SET(CURLOPT_HEADERFUNCTION, hc_header_cb);
    SET(CURLOPT_HEADERDATA, r);
    SET(CURLOPT_WRITEFUNCTION, hc_write_cb);
    SET(CURLOPT_WRITEDATA, r);
    SET(CURLOPT_CONNECTTIMEOUT_MS,
        (long)(q->connect_timeout_ms ? q->connect_timeout_ms
                                     : HTTP_CLIENT_DEFAULT_CONNECT_TIMEOUT_MS));
    SET(CURLOPT_TIMEOUT_MS, (long)q->timeout_ms);
    if (r->max_resp <= (size_t)INT64_MAX) /* lets curl refuse a too large Content-Length early */
        SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)r->max_resp);
    SET(CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
    SET(CURLOPT_TCP_KEEPALIVE, 1L);
    /* a streamed response is relayed piece by piece: curl's default 16 KiB receive
     * buffer mostly sits empty for the stream's life (SSE events are ~200 bytes) */
    if (q->on_data)
        SET(CURLOPT_BUFFERSIZE, (long)HTTP_CLIENT_STREAM_BUFFER);
    SET(CURLOPT_SSL_VERIFYPEER, q->insecure ? 0L : 1L);
    SET(CURLOPT_SSL_VERIFYHOST, q->insecure ? 0L : 2L);
    if (q->ca_file)
        SET(CURLOPT_CAINFO, q->ca_file);
    if (q->proxy)
        SET(CURLOPT_PROXY, q->proxy);
    else if (!q->proxy_from_env)
        SET(CURLOPT_PROXY, ""); /* "" disables the environment's proxies */

    if (has_body) {
        SET(CURLOPT_POST, 1L);
        if (q->read_body) {
            SET(CURLOPT_READFUNCTION, hc_read_cb);
            SET(CURLOPT_READDATA, r);
            SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(q->body_size < 0 ? -1 : q->body_size));
        } else {
            const void *b = q->body ? q->body : "";
            if (!q->body_borrowed && q->body_len) {
                r->body_copy = malloc(q->body_len);
                if (!r->body_copy)
                    return AS_ENOMEM;
                memcpy(r->body_copy, q->body, q->body_len);
                b = r->body_copy;
            }
            SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)q->body_len);
            SET(CURLOPT_POSTFIELDS, b);
        }
        if (strcmp(method, "POST") != 0)
            SET(CURLOPT_CUSTOMREQUEST, method);
    } else if (strcmp(method, "GET") == 0) {
        SET(CURLOPT_HTTPGET, 1L);
    } else if (strcmp(method, "HEAD") == 0) {
        SET(CURLOPT_NOBODY, 1L);
    } else if (strcmp(method, "POST") == 0) {
        SET(CURLOPT_POST, 1L);
        SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
        SET(CURLOPT_POSTFIELDS, "");
    } else {
        SET(CURLOPT_CUSTOMREQUEST, method);
    }
#undef SET
out:
    if (rc == CURLE_OUT_OF_MEMORY)
        return AS_ENOMEM;
    return rc == CURLE_OK ? 0 : AS_EINVAL;
}

int http_client__curl_submit(struct hcurl *c, const struct http_client_request *q,
                             struct http_client_req **out)
{
    struct hcurl_req *r = NULL;
    int err = AS_EINVAL;
    if (out)
        *out = NULL;
    if (!c || !q || !q->on_done)
        return AS_EINVAL;
    if (c->closing)
        return AS_ECLOSED;
    r = calloc(1, sizeof(*r));
    if (!r)
        return AS_ENOMEM;
    r->c = c;
    r->on_headers = q->on_headers;
    r->on_data = q->on_data;
    r->read_body = q->read_body;
    r->on_done = q->on_done;
    r->ud = q->ud;
    r->max_resp = q->max_response_bytes ? q->max_response_bytes : HTTP_CLIENT_DEFAULT_MAX_RESPONSE;
    buf_init(&r->hbuf, HTTP_CLIENT_MAX_HEADER_BYTES);
    buf_init(&r->body, r->max_resp);
    r->fb_timeout_ns = (uint64_t)q->first_byte_timeout_ms * 1000000u;
    r->idle_timeout_ns = (uint64_t)q->idle_timeout_ms * 1000000u;
    r->easy = curl_easy_init();
    if (!r->easy) {
        err = AS_ENOMEM;
        goto fail;
    }
    if ((err = hc_setup(r, q)))
        goto fail;

    r->t_start_ns = loop_now_ns();
    r->next = c->reqs;
    if (c->reqs)
        c->reqs->prev = r;
    c->reqs = r;
    c->active++;
    if (c->in_curl) {
        r->pending_add = 1;
        hc_todo_push(r);
    } else {
        CURLMcode mc = curl_multi_add_handle(c->multi, r->easy);
        if (mc != CURLM_OK) {
            c->reqs = r->next;
            if (r->next)
                r->next->prev = NULL;
            c->active--;
            err = mc == CURLM_OUT_OF_MEMORY ? AS_ENOMEM : AS_EINVAL;
            goto fail;
        }
        r->added = 1;
    }
    hc_arm_watchdog(r, r->t_start_ns);
    if (out)
        *out = &r->base;
    return 0;
fail:
    hc_req_free(r);
    return err;
}

void http_client__curl_cancel(struct http_client_req *req)
{
    struct hcurl_req *r = (struct hcurl_req *)req;
    if (!r || r->done || r->abort_err)
        return;
    hc_set_abort(r, HTTP_CLIENT_E_CANCELLED, "cancelled");
    hc_todo_push(r);
}

void http_client__curl_resume(struct http_client_req *req)
{
    struct hcurl_req *r = (struct hcurl_req *)req;
    if (!r || r->done || !r->paused_recv)
        return;
    r->want_resume_recv = 1;
    hc_todo_push(r);
}

void http_client__curl_resume_body(struct http_client_req *req)
{
    struct hcurl_req *r = (struct hcurl_req *)req;
    if (!r || r->done || !r->paused_send)
        return;
    r->want_resume_send = 1;
    hc_todo_push(r);
}
