/*
 * fuzz_http_client.c - libFuzzer target for what upstream servers send the HTTP client.
 *
 * Each input is served verbatim, as the whole response, by a listener on the same
 * loop as the client; the first byte picks the client's mode (buffered or
 * streaming, pause on the first piece, abort in on_headers, a small body limit).
 * Checks the contract: on_done exactly once, on_headers at most once and before
 * any body byte, nothing after on_done, never more body than the limit. The input
 * is also split by http_client__parse_headers(), whose fields must lie inside it,
 * with non-empty names and trimmed values. The native transport's response parser
 * is also fed the input directly, split at points drawn from the input, taking
 * only part of some body pieces (as a paused consumer does): events must stay
 * inside the buffer, the body within Content-Length, and errors final.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/http_client.h"
#include "core/http_client_int.h"
#include "core/loop.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fz {
    struct loop *loop;
    struct http_client *cli;
    int lfd;
    char url[64];
    /* the current input */
    const uint8_t *resp;
    size_t resp_len, sent;
    int sfd; /* accepted connection, -1 if none */
    /* what the client did */
    int headers, done, pause_once;
    size_t body, limit;
    struct http_client_req *req;
    struct loop_timer *resume_timer;
};

static struct fz fz_state;

static void fz_check_headers(const char *p, size_t len)
{
    struct http_header h[16];
    size_t cap = len ? (unsigned char)p[0] % 17 : 0;
    ssize_t n = http_client__parse_headers(p, len, h, cap);
    if (n < -1 || n > (ssize_t)cap)
        abort();
    for (ssize_t i = 0; i < n; i++) {
        const struct str *nm = &h[i].name, *v = &h[i].value;
        if (nm->len == 0 || nm->p < p || nm->p + nm->len > p + len || v->p < p ||
            v->p + v->len > p + len)
            abort();
        if (memchr(nm->p, ':', nm->len) || memchr(nm->p, '\n', nm->len) ||
            memchr(v->p, '\n', v->len) || nm->p[0] == ' ' || nm->p[0] == '\t')
            abort();
        if (v->len && (v->p[0] == ' ' || v->p[0] == '\t' || v->p[v->len - 1] == ' ' ||
                       v->p[v->len - 1] == '\t' || v->p[v->len - 1] == '\r'))
            abort();
    }
}

static char fz_win[1 << 17];

static void fz_check_parser(const uint8_t *data, size_t size)
{
    static struct http_header h[HTTP_CLIENT_MAX_HEADERS];
    struct http_client__resp p;
    uint32_t rng = size ? data[0] * 2654435761u + (uint32_t)size : 1;
    http_client__resp_init(&p, size && (data[0] & 32), h, HTTP_CLIENT_MAX_HEADERS);
    size_t have = 0, fed = 0, body = 0;
    int ended = 0;
    while (!ended) {
        rng = rng * 1103515245u + 12345u;
        size_t n = 1 + (rng >> 16) % 97;
        if (n > size - fed)
            n = size - fed;
        memcpy(fz_win + have, data + fed, n);
        have += n;
        fed += n;
        for (;;) {
            size_t used, dl;
            const char *d;
            int ev = http_client__resp_feed(&p, fz_win, have, &used, &d, &dl);
            if (used > have)
                abort();
            if (ev == HTTP_RESP_HEAD &&
                (p.status < 200 || p.status > 999 || p.nhdrs > HTTP_CLIENT_MAX_HEADERS))
                abort();
            if (ev == HTTP_RESP_DATA) {
                if (d != fz_win + used || dl == 0 || used + dl > have)
                    abort();
                rng = rng * 1103515245u + 12345u;
                size_t take = (rng >> 20) & 1 ? dl : dl / 2; /* a paused consumer */
                http_client__resp_consume(&p, take);
                body += take;
                used += take;
                if (p.content_length >= 0 && body > (uint64_t)p.content_length)
                    abort();
            }
            memmove(fz_win, fz_win + used, have - used);
            have -= used;
            if (ev == HTTP_RESP_ERROR || ev == HTTP_RESP_TOO_LARGE) {
                if (!p.err ||
                    http_client__resp_feed(&p, fz_win, have, &used, &d, &dl) != HTTP_RESP_ERROR)
                    abort();
                ended = 1;
                break;
            }
            if (ev == HTTP_RESP_DONE) {
                ended = 1;
                break;
            }
            if (ev == HTTP_RESP_MORE)
                break;
        }
        if (!ended && fed == size) {
            int ev = http_client__resp_eof(&p);
            if (ev != HTTP_RESP_DONE && ev != HTTP_RESP_ERROR)
                abort();
            ended = 1;
        }
    }
}

static void fz_close_server(struct fz *f)
{
    if (f->sfd >= 0) {
        loop_fd_del(f->loop, f->sfd);
        close(f->sfd);
        f->sfd = -1;
    }
}

/* Server side: write the input, then half-close and read until the client hangs up. */
static void fz_on_conn(struct loop *l, int fd, int events, void *ud)
{
    struct fz *f = ud;
    char tmp[4096];
    if (events & LOOP_READ) {
        ssize_t r = recv(fd, tmp, sizeof(tmp), MSG_DONTWAIT);
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
            fz_close_server(f);
            return;
        }
    }
    if ((events & LOOP_WRITE) && f->sent < f->resp_len) {
        ssize_t w = send(fd, f->resp + f->sent, f->resp_len - f->sent, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w > 0)
            f->sent += (size_t)w;
        else if (w < 0 && errno != EAGAIN && errno != EINTR) {
            fz_close_server(f);
            return;
        }
        if (f->sent == f->resp_len) {
            shutdown(fd, SHUT_WR);
            loop_fd_mod(l, fd, LOOP_READ);
        }
    }
}

static void fz_on_accept(struct loop *l, int fd, int events, void *ud)
{
    struct fz *f = ud;
    int c = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (c < 0)
        return;
    if (f->sfd >= 0) { /* curl retried on a new connection: serve that one */
        fz_close_server(f);
    }
    f->sfd = c;
    f->sent = 0;
    if (f->resp_len == 0) {
        shutdown(c, SHUT_WR);
        loop_fd_add(l, c, LOOP_READ, fz_on_conn, f);
    } else {
        loop_fd_add(l, c, LOOP_READ | LOOP_WRITE, fz_on_conn, f);
    }
}

static void fz_resume(struct loop *l, void *ud)
{
    struct fz *f = ud;
    f->resume_timer = NULL;
    if (!f->done)
        http_client_resume(f->req);
}

static int fz_headers(struct http_client_req *req, int status, const struct http_header *h,
                      size_t n, void *ud)
{
    struct fz *f = ud;
    if (f->done || f->headers || f->body)
        abort();
    f->headers++;
    for (size_t i = 0; i < n; i++)
        if (h[i].name.len == 0)
            abort();
    return status == 299 ? HTTP_CLIENT_ABORT : HTTP_CLIENT_CONTINUE;
}

static int fz_data(struct http_client_req *req, const char *d, size_t n, void *ud)
{
    struct fz *f = ud;
    if (f->done)
        abort();
    if (f->pause_once) {
        f->pause_once = 0;
        f->req = req;
        f->resume_timer = loop_timer_add(f->loop, 1, fz_resume, f);
        return HTTP_CLIENT_PAUSE;
    }
    f->body += n;
    if (f->body > f->limit)
        abort();
    return HTTP_CLIENT_CONTINUE;
}

static void fz_done(struct http_client_req *req, const struct http_client_result *r, void *ud)
{
    struct fz *f = ud;
    if (f->done++)
        abort();
    if (r->body_len > f->limit || !r->message || (r->err == HTTP_CLIENT_OK && r->status == 0))
        abort();
    loop_stop(f->loop);
}

static int fz_init(struct fz *f)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof(a);
    f->loop = loop_new();
    f->cli = f->loop ? http_client_new(f->loop) : NULL;
    f->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    f->sfd = -1;
    if (!f->cli || f->lfd < 0 || bind(f->lfd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        getsockname(f->lfd, (struct sockaddr *)&a, &al) != 0 || listen(f->lfd, 64) != 0 ||
        loop_fd_add(f->loop, f->lfd, LOOP_READ, fz_on_accept, f) != 0)
        return -1;
    snprintf(f->url, sizeof(f->url), "http://127.0.0.1:%d/v1/chat/completions", ntohs(a.sin_port));
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fz *f = &fz_state;
    if (!f->loop && fz_init(f) != 0)
        abort();
    if (size < 1 || size > 65536)
        return 0;
    fz_check_headers((const char *)data + 1, size - 1);
    fz_check_parser(data + 1, size - 1);

    uint8_t mode = data[0];
    f->resp = data + 1;
    f->resp_len = size - 1;
    f->headers = f->done = 0;
    f->body = 0;
    f->pause_once = (mode & 2) != 0;
    f->limit = (mode & 4) ? 64 : 1 << 20;
    struct http_client_request r = {
        .method = (mode & 8) ? "POST" : "GET",
        .url = f->url,
        .body = (mode & 8) ? "{\"stream\":true}" : NULL,
        .body_len = (mode & 8) ? 15 : 0,
        .timeout_ms = 2000,
        .idle_timeout_ms = (mode & 16) ? 50 : 0,
        .max_response_bytes = f->limit,
        .on_headers = fz_headers,
        .on_data = (mode & 1) ? fz_data : NULL,
        .on_done = fz_done,
        .ud = f,
    };
    if (http_client_submit(f->cli, &r, NULL) != 0)
        abort();
    loop_run(f->loop);
    loop_timer_cancel(f->loop, f->resume_timer);
    f->resume_timer = NULL;
    if (f->done != 1 || http_client_active(f->cli) != 0)
        abort();
    fz_close_server(f);
    return 0;
}
