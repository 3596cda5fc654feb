/*
 * mock_upstream.c - a small OpenAI-compatible upstream for the gateway's tests
 * and benchmark, built on src/core.
 *
 * Routes: POST /v1/chat/completions, /v1/completions, /v1/embeddings
 * (non-streamed and streamed), GET /v1/models, GET /stats ({"requests":N}),
 * GET /last (the last request's body, Authorization and X-Request-Id).
 * The behaviour is chosen by the requested "model" (what the gateway rewrote it
 * to), so one mock serves every case:
 *   ok      answers "hello from NAME" (usage: 10 prompt tokens, one per chunk)
 *   fail    500 server_error            ctx   400 context_length_exceeded
 *   429     429 with Retry-After: 1     hang  answers nothing for 60 s
 *   slow    first byte after --slow-ms  cut   streams 2 chunks, ends without [DONE]
 * Flags: --port N, --port-file PATH, --name NAME, --threads N, --chunks N,
 * --interval-ms N, --slow-ms N, --fail-first N (the first N requests get 500),
 * --expect-key KEY (401 unless "Authorization: Bearer KEY"), --log-level L.
 * Not for: anything but tests.
 */
#include "core/err.h"
#include "core/http_server.h"
#include "core/json.h"
#include "core/log.h"
#include "core/loop.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *name = "mock";
static long n_chunks = 5, interval_ms, slow_ms = 300, fail_first;
static const char *expect_key;
static atomic_long n_requests;
static pthread_mutex_t last_mu = PTHREAD_MUTEX_INITIALIZER;
static struct buf last;

struct mstream {
    struct http_stream *s;
    struct loop *loop;
    struct loop_timer *t;
    long left, sent;
    int usage, cut, gone;
    char model[64];
};

static void chunk(struct buf *b, const char *model, const char *content, int usage, long n)
{
    buf_append_cstr(b, "{\"id\":\"chatcmpl-mock\",\"object\":\"chat.completion.chunk\",\"model\":");
    buf_append_json_str(b, model, strlen(model));
    if (usage)
        buf_printf(b,
                   ",\"choices\":[],\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":%ld,"
                   "\"total_tokens\":%ld}}",
                   n, n + 10);
    else
        buf_printf(b, ",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"%s\"}}]}", content);
}

static void stream_step(struct loop *l, void *ud)
{
    struct mstream *m = ud;
    struct buf b;
    m->t = NULL;
    buf_init(&b, 4096);
    if (m->left > 0) {
        char tok[64];
        snprintf(tok, sizeof tok, "tok%ld from %s ", m->sent, name);
        chunk(&b, m->model, tok, 0, 0);
        http_sse_event(m->s, NULL, b.data, b.len);
        m->left--;
        m->sent++;
        if (m->cut && m->sent == 2)
            m->left = 0;
        else if (m->left > 0) {
            buf_free(&b);
            m->t = loop_timer_add(l, (uint64_t)interval_ms, stream_step, m);
            return;
        }
    }
    if (!m->cut) {
        if (m->usage) {
            buf_reset(&b);
            chunk(&b, m->model, "", 1, m->sent);
            http_sse_event(m->s, NULL, b.data, b.len);
        }
        http_sse_event(m->s, NULL, "[DONE]", 6);
    }
    buf_free(&b);
    http_stream_end(m->s);
    free(m);
}

static void on_gone(struct http_stream *s, void *ud)
{
    struct mstream *m = ud;
    if (m->t)
        loop_timer_cancel(m->loop, m->t);
    http_stream_end(m->s);
    free(m);
}

struct delayed {
    struct http_req *req;
    int stream, usage;
    char model[64];
};

static void answer(struct http_req *req, const char *model, int stream, int usage, int cut);

static void delayed_cb(struct loop *l, void *ud)
{
    struct delayed *d = ud;
    answer(d->req, d->model, d->stream, d->usage, 0);
    free(d);
}

static void answer(struct http_req *req, const char *model, int stream, int usage, int cut)
{
    if (stream) {
        struct mstream *m = calloc(1, sizeof(*m));
        if (!m) {
            http_respond_error(req, 500, "oom", NULL, NULL, NULL);
            return;
        }
        m->loop = http_req_loop(req);
        m->left = n_chunks;
        m->usage = usage;
        m->cut = cut;
        snprintf(m->model, sizeof m->model, "%s", model);
        m->s = http_stream_begin(req, 200, "text/event-stream");
        if (!m->s) {
            free(m);
            return;
        }
        http_stream_set_callbacks(m->s, on_gone, NULL, m);
        m->t = loop_timer_add(m->loop, 0, stream_step, m);
        return;
    }
    struct buf b;
    buf_init(&b, 4096);
    buf_append_cstr(&b, "{\"id\":\"chatcmpl-mock\",\"object\":\"chat.completion\",\"model\":");
    buf_append_json_str(&b, model, strlen(model));
    buf_printf(&b,
               ",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":"
               "\"hello from %s\"},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":10,"
               "\"completion_tokens\":%ld,\"total_tokens\":%ld}}",
               name, n_chunks, n_chunks + 10);
    http_respond_json(req, 200, b.data, b.len);
    buf_free(&b);
}

static void h_complete(struct http_req *req, void *ud)
{
    long n = atomic_fetch_add(&n_requests, 1) + 1;
    struct str body = http_req_body(req);
    const char *auth = http_req_header(req, "Authorization");
    const char *rid = http_req_header(req, "X-Request-Id");
    pthread_mutex_lock(&last_mu);
    buf_reset(&last);
    buf_append_cstr(&last, "{\"body\":");
    buf_append_json_str(&last, body.p, body.len);
    buf_append_cstr(&last, ",\"authorization\":");
    buf_append_json_str(&last, auth ? auth : "", auth ? strlen(auth) : 0);
    buf_append_cstr(&last, ",\"request_id\":");
    buf_append_json_str(&last, rid ? rid : "", rid ? strlen(rid) : 0);
    buf_append_char(&last, '}');
    pthread_mutex_unlock(&last_mu);

    if (expect_key) {
        char want[512];
        snprintf(want, sizeof want, "Bearer %s", expect_key);
        if (!auth || strcmp(auth, want)) {
            http_respond_error(req, 401, "bad upstream key", NULL, NULL, "invalid_api_key");
            return;
        }
    }
    cJSON *j = json_parse(body.p, body.len, 0, 0, NULL);
    const char *model = "ok";
    bool stream = false, usage = false;
    if (j) {
        json_get_string(j, "model", &model, NULL);
        json_get_bool(j, "stream", &stream, NULL);
        json_get_bool(j, "stream_options.include_usage", &usage, NULL);
    }
    char m[64];
    snprintf(m, sizeof m, "%s", model);
    cJSON_Delete(j);
    if (n <= fail_first || !strcmp(m, "fail")) {
        http_respond_error(req, 500, "mock failure", "server_error", NULL, NULL);
    } else if (!strcmp(m, "429")) {
        http_resp_header(req, "Retry-After", "1");
        http_respond_error(req, 429, "mock rate limit", "requests", NULL, "rate_limit_exceeded");
    } else if (!strcmp(m, "ctx")) {
        http_respond_error(req, 400, "This model's maximum context length is 8 tokens.",
                           "invalid_request_error", "messages", "context_length_exceeded");
    } else if (!strcmp(m, "hang") || !strcmp(m, "slow")) {
        struct delayed *d = calloc(1, sizeof(*d));
        if (!d) {
            http_respond_error(req, 500, "oom", NULL, NULL, NULL);
            return;
        }
        d->req = req;
        d->stream = stream;
        d->usage = usage;
        snprintf(d->model, sizeof d->model, "%s", m);
        loop_timer_add(http_req_loop(req), !strcmp(m, "hang") ? 60000 : (uint64_t)slow_ms,
                       delayed_cb, d);
    } else {
        answer(req, m, stream, usage, !strcmp(m, "cut"));
    }
}

static void h_models(struct http_req *req, void *ud)
{
    static const char body[] = "{\"object\":\"list\",\"data\":[{\"id\":\"ok\",\"object\":\"model\","
                               "\"created\":0,\"owned_by\":\"mock\"}]}";
    http_respond_json(req, 200, body, sizeof body - 1);
}

static void h_stats(struct http_req *req, void *ud)
{
    char b[64];
    int n = snprintf(b, sizeof b, "{\"requests\":%ld}", atomic_load(&n_requests));
    http_respond_json(req, 200, b, (size_t)n);
}

static void h_last(struct http_req *req, void *ud)
{
    pthread_mutex_lock(&last_mu);
    if (last.len)
        http_respond_json(req, 200, last.data, last.len);
    else
        http_respond_json(req, 200, "{}", 2);
    pthread_mutex_unlock(&last_mu);
}

static long num(const char *s)
{
    char *end;
    long v = strtol(s ? s : "", &end, 10);
    if (!s || !*s || *end || v < 0) {
        fprintf(stderr, "mock_upstream: bad number '%s'\n", s ? s : "");
        exit(2);
    }
    return v;
}

int main(int argc, char **argv)
{
    struct http_server_config cfg = {.service = "mock", .threads = 1, .idle_timeout_ms = 120000};
    const char *port_file = NULL;
    char err[256];
    buf_init(&last, 1 << 20);
    for (int i = 1; i < argc; i += 2) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--port"))
            cfg.port = (uint16_t)num(v);
        else if (!strcmp(a, "--port-file"))
            port_file = v;
        else if (!strcmp(a, "--name"))
            name = v;
        else if (!strcmp(a, "--threads"))
            cfg.threads = (int)num(v);
        else if (!strcmp(a, "--chunks"))
            n_chunks = num(v);
        else if (!strcmp(a, "--interval-ms"))
            interval_ms = num(v);
        else if (!strcmp(a, "--slow-ms"))
            slow_ms = num(v);
        else if (!strcmp(a, "--fail-first"))
            fail_first = num(v);
        else if (!strcmp(a, "--expect-key"))
            expect_key = v;
        else if (!strcmp(a, "--log-level")) {
            enum log_level l;
            if (v && log_parse_level(v, &l) == 0)
                log_set_level(l);
        } else {
            fprintf(stderr, "mock_upstream: unknown flag %s\n", a);
            return 2;
        }
        if (!v) {
            fprintf(stderr, "mock_upstream: %s needs a value\n", a);
            return 2;
        }
    }
    struct http_server *srv = http_server_new(&cfg, err, sizeof err);
    if (!srv) {
        fprintf(stderr, "mock_upstream: %s\n", err);
        return 1;
    }
    http_server_route(srv, "POST", "/v1/chat/completions", h_complete, NULL);
    http_server_route(srv, "POST", "/v1/completions", h_complete, NULL);
    http_server_route(srv, "POST", "/v1/embeddings", h_complete, NULL);
    http_server_route(srv, "GET", "/v1/models", h_models, NULL);
    http_server_route(srv, "GET", "/stats", h_stats, NULL);
    http_server_route(srv, "GET", "/last", h_last, NULL);
    if (http_server_start(srv) != 0) {
        fprintf(stderr, "mock_upstream: cannot start\n");
        return 1;
    }
    if (port_file) {
        char tmp[4096];
        snprintf(tmp, sizeof tmp, "%s.tmp", port_file);
        FILE *f = fopen(tmp, "w");
        if (!f || fprintf(f, "%u\n", http_server_port(srv)) < 0 || fclose(f) != 0 ||
            rename(tmp, port_file) != 0) {
            fprintf(stderr, "mock_upstream: cannot write %s\n", port_file);
            return 1;
        }
    }
    http_server_set_ready(srv, 1);
    int rc = http_server_run(srv);
    http_server_free(srv);
    buf_free(&last);
    return rc == 0 ? 0 : 1;
}
