/*
 * proxy.c - the OpenAI-compatible endpoints: /v1/chat/completions,
 * /v1/completions, /v1/embeddings (forwarded) and GET /v1/models (answered).
 *
 * One struct px per client request lives on its worker thread from the handler
 * to the last callback: the upstream call (the worker's http_client), retry
 * timers and the client stream all run on that thread's loop, so no locks are
 * needed here. Until the first byte goes to the client every failure is
 * invisible: the request is retried (backoff + jitter, Retry-After honoured),
 * moved to another deployment, or to a fallback model. Once a stream has begun,
 * a broken upstream ends it with an SSE error event and never a [DONE].
 * Streams are re-framed event by event (to read and, unless the client asked
 * for it, strip the usage chunk the gateway requests), never buffered whole.
 * Not for: choosing deployments (router.c), keys and limits (keys.c).
 */
#include "gw.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/http_client.h"
#include "core/http_server.h"
#include "core/json.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/metrics.h"
#include "core/sse.h"

#define PX_MAX_ERR_BODY   (64u << 10)
#define PX_MAX_RESPONSE   (32u << 20)
#define PX_MAX_OUT        (1u << 20)
#define PX_WRITE_PIECE    (64u << 10)
#define PX_MAX_MODEL_HOPS 4

struct px {
    struct gw_ctx *ctx;
    struct http_req *req; /* until a response or stream begins */
    struct http_stream *stream;
    struct http_client *client;
    struct loop *loop;
    struct gw_table *table;
    struct gw_model *model;
    const char *endpoint; /* "/chat/completions", ... */
    char public_model[GW_MAX_NAME];
    cJSON *body;
    int stream_req, client_usage;
    int strategy;
    char force[GW_MAX_NAME];
    char req_id[72];
    uint8_t tried[GW_MAX_DEPLOYMENTS];
    int retries, hops, attempts;
    struct gw_deployment *dep;
    struct http_client_req *up;
    int up_status;
    uint64_t retry_after_ms;
    struct buf errbody;
    struct sse_parser sse;
    struct buf out;
    size_t out_off;
    int paused, saw_done, gone, done_pending, events;
    int64_t tok_in, tok_out, chunks;
    int usage_seen;
    struct gw_principal principal;
    struct loop_timer *timer;
    uint64_t t_start, t_submit, upstream_ns, wait_ns, t_first;
    /* the answer to give if every attempt fails */
    int last_status;
    struct buf last_body;
    char last_retry_after[24];
    int final_status;
    size_t body_len;
};

static void px_attempt(struct px *p, int idx);

/* ---- helpers ----------------------------------------------------------------- */

static struct http_client *worker_client(struct gw_ctx *ctx, struct loop *l)
{
    for (int i = 0; i < ctx->n_clients; i++)
        if (http_server_worker_loop(ctx->srv, i) == l)
            return ctx->clients[i];
    return NULL;
}

static uint64_t parse_retry_after(const struct http_header *h, size_t n)
{
    const struct http_header *ms = http_header_find(h, n, "retry-after-ms");
    const struct http_header *s = http_header_find(h, n, "retry-after");
    char tmp[32];
    const struct http_header *use = ms ? ms : s;
    if (!use || use->value.len == 0 || use->value.len >= sizeof tmp)
        return 0;
    memcpy(tmp, use->value.p, use->value.len);
    tmp[use->value.len] = 0;
    char *end;
    double v = strtod(tmp, &end);
    if (*end || !isfinite(v) || v < 0) /* HTTP-date or junk: fall back to our backoff */
        return 0;
    v = ms ? v : v * 1000.0;
    return v > 3600e3 ? 3600000 : (uint64_t)v;
}

static void px_usage_from(struct px *p, const cJSON *usage)
{
    const cJSON *pt = cJSON_GetObjectItemCaseSensitive(usage, "prompt_tokens");
    const cJSON *ct = cJSON_GetObjectItemCaseSensitive(usage, "completion_tokens");
    if (cJSON_IsNumber(pt) && pt->valuedouble >= 0 && pt->valuedouble < 1e12)
        p->tok_in = (int64_t)pt->valuedouble, p->usage_seen = 1;
    if (cJSON_IsNumber(ct) && ct->valuedouble >= 0 && ct->valuedouble < 1e12)
        p->tok_out = (int64_t)ct->valuedouble, p->usage_seen = 1;
}

static void px_free(struct px *p)
{
    if (p->timer)
        loop_timer_cancel(p->loop, p->timer);
    cJSON_Delete(p->body);
    buf_free(&p->errbody);
    buf_free(&p->out);
    buf_free(&p->last_body);
    sse_parser_free(&p->sse);
    gw_table_release(p->table);
    free(p);
}

/* Accounting once the client has its answer, then frees p. */
static void px_finish(struct px *p, int status)
{
    uint64_t now = loop_now_ns();
    struct gw_deployment *d = p->dep;
    if (!p->usage_seen) { /* rough count: ~4 bytes a token in, one token a chunk out */
        p->tok_in = (int64_t)(p->body_len / 4);
        p->tok_out = p->chunks;
    }
    double cost = 0;
    if (d && status < 400) {
        cost = (double)p->tok_in * d->in_price / 1e6 + (double)p->tok_out * d->out_price / 1e6;
        metric_add(d->m_tok_in, (double)p->tok_in);
        metric_add(d->m_tok_out, (double)p->tok_out);
        metric_add(d->m_cost, cost);
    }
    char code[8];
    snprintf(code, sizeof code, "%d", status);
    metric_inc(metric_labels(gw_mf.requests, p->public_model, code));
    uint64_t end = p->t_first ? p->t_first : now;
    uint64_t total = end - p->t_start, outside = p->upstream_ns + p->wait_ns;
    metric_observe(metric_nolabels(gw_mf.added),
                   total > outside ? (double)(total - outside) / 1e9 : 0.0);
    if (p->ctx->keys && status < 400)
        gw_keys_charge(p->ctx->keys, &p->principal, p->tok_in + p->tok_out, cost);
    if (p->ctx->ledger) {
        struct gw_usage u = {
            .key_id = p->principal.key_id,
            .model = p->public_model,
            .deployment = d ? d->name : "",
            .request_id = p->req_id,
            .tokens_in = status < 400 ? p->tok_in : 0,
            .tokens_out = status < 400 ? p->tok_out : 0,
            .cost = cost,
            .latency_ms = (double)(now - p->t_start) / 1e6,
            .status = status,
        };
        gw_ledger_add(p->ctx->ledger, &u);
    }
    px_free(p);
}

/* ---- client stream output ---------------------------------------------------- */

/* Writes pending output. 0 when all is out, AS_EAGAIN when the client is slow,
 * AS_ECLOSED when it is gone. */
static int px_flush(struct px *p)
{
    while (p->out_off < p->out.len) {
        size_t n = p->out.len - p->out_off;
        n = n > PX_WRITE_PIECE ? PX_WRITE_PIECE : n;
        int rc = http_stream_write(p->stream, p->out.data + p->out_off, n);
        if (rc)
            return rc == AS_EAGAIN ? AS_EAGAIN : AS_ECLOSED;
        p->out_off += n;
    }
    buf_reset(&p->out);
    p->out_off = 0;
    return 0;
}

static void px_stream_close(struct px *p)
{
    http_stream_end(p->stream);
    p->stream = NULL;
    px_finish(p, p->final_status);
}

static void on_gone(struct http_stream *s, void *ud)
{
    struct px *p = ud;
    p->gone = 1;
    if (p->up) {
        http_client_cancel(p->up); /* on_done ends the stream */
        return;
    }
    if (p->done_pending)
        px_stream_close(p);
}

static void on_writable(struct http_stream *s, void *ud)
{
    struct px *p = ud;
    int rc = px_flush(p);
    if (rc == AS_EAGAIN)
        return;
    if (p->done_pending) {
        px_stream_close(p);
        return;
    }
    if (p->paused && p->up) {
        p->paused = 0;
        http_client_resume(p->up);
    }
}

/* Starts the client's stream on the first output; after this, failures are visible. */
static int px_begin_stream(struct px *p)
{
    if (p->stream)
        return 0;
    if (p->ctx->keys)
        gw_keys_ratelimit_headers(p->ctx->keys, &p->principal, p->req);
    http_resp_header(p->req, "x-aistack-deployment", p->dep->name);
    p->stream = http_stream_begin(p->req, 200, "text/event-stream");
    p->req = NULL;
    p->final_status = 200;
    p->t_first = loop_now_ns();
    p->upstream_ns += p->t_first - p->t_submit;
    metric_observe(p->dep->m_ttft, (double)(p->t_first - p->t_submit) / 1e9);
    if (!p->stream) {
        p->gone = 1;
        return AS_ECLOSED;
    }
    http_stream_set_callbacks(p->stream, on_gone, on_writable, p);
    return 0;
}

static int append_event(struct buf *b, const struct sse_event *ev)
{
    int rc = 0;
    if (ev->type_len)
        rc |= buf_append_cstr(b, "event: ") | buf_append(b, ev->type, ev->type_len) |
              buf_append_char(b, '\n');
    const char *d = ev->data, *e = ev->data + ev->data_len;
    do {
        const char *nl = memchr(d, '\n', (size_t)(e - d));
        const char *le = nl ? nl : e;
        rc |= buf_append(b, "data: ", 6) | buf_append(b, d, (size_t)(le - d)) |
              buf_append_char(b, '\n');
        d = nl ? nl + 1 : e;
    } while (d < e);
    return rc | buf_append_char(b, '\n');
}

/* One upstream event: note usage / [DONE], then queue it for the client. */
static int on_event(void *ud, const struct sse_event *ev)
{
    struct px *p = ud;
    if (ev->data_len == 6 && !memcmp(ev->data, "[DONE]", 6)) {
        p->saw_done = 1;
    } else if (p->saw_done) {
        return 0; /* nothing may follow [DONE] */
    } else {
        p->chunks++;
        if (ev->data_len > 8 && memmem(ev->data, ev->data_len, "\"usage\"", 7)) {
            cJSON *j = json_parse(ev->data, ev->data_len, 0, 0, NULL);
            const cJSON *u = j ? cJSON_GetObjectItemCaseSensitive(j, "usage") : NULL;
            const cJSON *ch = j ? cJSON_GetObjectItemCaseSensitive(j, "choices") : NULL;
            int usage_only = cJSON_IsObject(u) && (!ch || cJSON_GetArraySize(ch) == 0);
            if (cJSON_IsObject(u))
                px_usage_from(p, u);
            cJSON_Delete(j);
            if (usage_only) {
                p->chunks--;
                if (!p->client_usage)
                    return 0;
            }
        }
    }
    p->events++;
    return append_event(&p->out, ev) ? AS_ENOMEM : 0;
}

/* ---- upstream callbacks ------------------------------------------------------- */

static int up_headers(struct http_client_req *r, int status, const struct http_header *h, size_t n,
                      void *ud)
{
    struct px *p = ud;
    p->up_status = status;
    p->retry_after_ms = parse_retry_after(h, n);
    return HTTP_CLIENT_CONTINUE;
}

static int up_data(struct http_client_req *r, const char *data, size_t len, void *ud)
{
    struct px *p = ud;
    if (p->up_status < 200 || p->up_status > 299) { /* kept for the error answer */
        size_t room = PX_MAX_ERR_BODY - p->errbody.len;
        buf_append(&p->errbody, data, len < room ? len : room);
        return HTTP_CLIENT_CONTINUE;
    }
    if (p->gone)
        return HTTP_CLIENT_ABORT;
    if (p->out.len > p->out_off) { /* the client has not taken the last chunk yet */
        if (px_flush(p) == AS_EAGAIN) {
            p->paused = 1;
            return HTTP_CLIENT_PAUSE;
        }
    }
    if (sse_parser_feed(&p->sse, data, len) != 0)
        return HTTP_CLIENT_ABORT;
    if (p->out.len == 0)
        return HTTP_CLIENT_CONTINUE;
    if (px_begin_stream(p) != 0)
        return HTTP_CLIENT_ABORT;
    int rc = px_flush(p);
    if (rc == AS_ECLOSED)
        return HTTP_CLIENT_ABORT;
    return HTTP_CLIENT_CONTINUE;
}

static void retry_timer_cb(struct loop *l, void *ud)
{
    struct px *p = ud;
    p->timer = NULL;
    p->wait_ns += loop_now_ns() - p->t_submit;
    px_attempt(p, -1);
}

/* Remembers a failed attempt's answer, for the client if nothing better comes. */
static void px_keep_failure(struct px *p, const struct http_client_result *res, const char *body,
                            size_t len)
{
    buf_reset(&p->last_body);
    p->last_retry_after[0] = 0;
    if (res->err == HTTP_CLIENT_OK && p->up_status) {
        p->last_status = p->up_status;
        cJSON *j = len ? json_parse(body, len, 0, 0, NULL) : NULL;
        if (j) /* only JSON bodies are relayed */
            buf_append(&p->last_body, body, len);
        cJSON_Delete(j);
        if (p->retry_after_ms)
            snprintf(p->last_retry_after, sizeof p->last_retry_after, "%llu",
                     (unsigned long long)((p->retry_after_ms + 999) / 1000));
        return;
    }
    int timeout =
        res->err == HTTP_CLIENT_E_TIMEOUT || res->err == HTTP_CLIENT_E_FIRST_BYTE_TIMEOUT ||
        res->err == HTTP_CLIENT_E_IDLE_TIMEOUT || res->err == HTTP_CLIENT_E_CONNECT_TIMEOUT;
    p->last_status = timeout ? 504 : 502;
    char msg[200];
    snprintf(msg, sizeof msg, "upstream %s: %s", p->dep->name, http_client_strerror(res->err));
    as_error_body(&p->last_body, msg, "server_error", NULL,
                  timeout ? "upstream_timeout" : "upstream_unavailable");
}

static void up_done(struct http_client_req *r, const struct http_client_result *res, void *ud)
{
    struct px *p = ud;
    struct gw_deployment *d = p->dep;
    const struct gw_settings *set = &p->table->set;
    p->up = NULL;
    uint64_t now = loop_now_ns();
    if (!p->stream)
        p->upstream_ns += now - p->t_submit;
    int http_ok = res->err == HTTP_CLIENT_OK && p->up_status >= 200 && p->up_status <= 299;
    if (p->stream_req && http_ok && sse_parser_finish(&p->sse) == 0 && p->saw_done) {
        metric_observe(d->m_latency, (double)res->total_us / 1e6);
    } else if (p->stream_req) {
        http_ok = 0;
    }

    if (p->stream) { /* committed: the client sees whatever happened */
        int clean = http_ok && p->saw_done;
        gw_route_end(d, set, clean, !clean && !p->gone, res->total_us, p->tok_in + p->tok_out, 0);
        metric_inc(clean ? d->m_ok : d->m_err);
        if (p->gone) {
            px_stream_close(p);
            return;
        }
        if (!clean) {
            struct buf e;
            buf_init(&e, 1024);
            char msg[200];
            snprintf(msg, sizeof msg, "upstream stream from %s broke: %s", d->name,
                     res->err ? http_client_strerror(res->err) : "ended without [DONE]");
            buf_append_cstr(&p->out, "data: ");
            as_error_body(&e, msg, "server_error", NULL, "upstream_stream_error");
            buf_append(&p->out, e.data, e.len);
            buf_append_cstr(&p->out, "\n\n");
            buf_free(&e);
            p->final_status = 502;
        }
        if (px_flush(p) == AS_EAGAIN) {
            p->done_pending = 1;
            return;
        }
        px_stream_close(p);
        return;
    }

    const char *body = p->stream_req ? p->errbody.data : res->body;
    size_t blen = p->stream_req ? p->errbody.len : res->body_len;
    if (http_ok && !p->stream_req) {
        metric_observe(d->m_latency, (double)res->total_us / 1e6);
        cJSON *j = json_parse(body, blen, 0, 0, NULL);
        const cJSON *u = j ? cJSON_GetObjectItemCaseSensitive(j, "usage") : NULL;
        if (cJSON_IsObject(u))
            px_usage_from(p, u);
        cJSON_Delete(j);
        gw_route_end(d, set, 1, 0, res->total_us, p->tok_in + p->tok_out, 0);
        metric_inc(d->m_ok);
        if (p->ctx->keys)
            gw_keys_ratelimit_headers(p->ctx->keys, &p->principal, p->req);
        http_resp_header(p->req, "x-aistack-deployment", d->name);
        http_respond(p->req, p->up_status, "application/json", body ? body : "", blen);
        p->req = NULL;
        p->t_first = loop_now_ns();
        px_finish(p, p->up_status);
        return;
    }

    /* failed before the first byte reached the client: decide what comes next */
    metric_inc(d->m_err);
    int st = res->err == HTTP_CLIENT_OK ? p->up_status : 0;
    int ctx_len = st == 400 && body && memmem(body, blen, "context_length_exceeded", 23);
    int retryable = res->err != HTTP_CLIENT_OK || st == 408 || st == 429 || st >= 500 || ctx_len ||
                    (p->stream_req && http_ok);
    int counts_as_failure = res->err != HTTP_CLIENT_OK || st >= 500 || (p->stream_req && http_ok);
    uint64_t cool = st == 429 ? (p->retry_after_ms ? p->retry_after_ms : 1000) : 0;
    gw_route_end(d, set, 0, counts_as_failure, 0, 0, cool);
    log_warn("upstream attempt failed", "request_id=%s deployment=%s status=%d err=%s", p->req_id,
             d->name, st, http_client_strerror(res->err));
    if (!retryable) { /* the caller's own mistake: relay the upstream's answer as is */
        http_resp_header(p->req, "x-aistack-deployment", d->name);
        http_respond(p->req, st, "application/json", body ? body : "", blen);
        p->req = NULL;
        px_finish(p, st);
        return;
    }
    px_keep_failure(p, res, body, blen);
    buf_reset(&p->errbody);
    sse_parser_reset(&p->sse);
    buf_reset(&p->out);
    p->saw_done = 0;
    p->chunks = p->events = 0;
    p->dep = NULL;
    /* another untried deployment goes at once; the same one again after a backoff */
    int next = gw_route_pick(p->model, p->tried, p->strategy, p->force);
    if (next >= 0) {
        metric_inc(metric_labels(gw_mf.fallbacks, p->public_model));
        px_attempt(p, next);
        return;
    }
    if (!ctx_len && p->retries < set->num_retries &&
        (p->retry_after_ms == 0 || p->retry_after_ms <= set->retry_max_ms)) {
        p->retries++;
        metric_inc(metric_labels(gw_mf.retries, p->public_model));
        double backoff = (double)set->retry_base_ms * (double)(1u << (p->retries - 1));
        if (backoff > set->retry_max_ms)
            backoff = set->retry_max_ms;
        backoff *= 0.5 + (double)(rand() % 1000) / 2000.0; /* jitter: 50%..100% */
        uint64_t wait = p->retry_after_ms > backoff ? p->retry_after_ms : (uint64_t)backoff;
        memset(p->tried, 0, sizeof p->tried);
        p->t_submit = loop_now_ns();
        p->timer = loop_timer_add(p->loop, wait, retry_timer_cb, p);
        if (p->timer)
            return;
    }
    px_attempt(p, -1); /* model fallbacks, or the final error */
}

/* ---- attempts ----------------------------------------------------------------- */

static void px_fail(struct px *p, int status, const char *msg, const char *code)
{
    if (p->last_status && p->last_body.len) {
        if (p->last_retry_after[0])
            http_resp_header(p->req, "Retry-After", p->last_retry_after);
        http_respond(p->req, p->last_status, "application/json", p->last_body.data,
                     p->last_body.len);
        status = p->last_status;
    } else {
        http_resp_header(p->req, "Retry-After", "1");
        http_respond_error(p->req, status, msg, NULL, NULL, code);
    }
    p->req = NULL;
    px_finish(p, status);
}

/* Sends the next attempt to deployment idx of the current model, or to the
 * router's pick when idx < 0 (moving on to fallback models when none is left). */
static void px_attempt(struct px *p, int idx)
{
    char url[GW_MAX_URL + 64];
    const char *hdrs[6];
    while (idx < 0) {
        idx = gw_route_pick(p->model, p->tried, p->strategy, p->force);
        if (idx >= 0)
            break;
        if (p->force[0] || p->hops >= (int)p->model->n_fallbacks || p->hops >= PX_MAX_MODEL_HOPS) {
            px_fail(p, 503, "no deployment of this model is available", "no_healthy_deployment");
            return;
        }
        struct gw_model *fb =
            (struct gw_model *)gw_table_find(p->table, p->model->fallbacks[p->hops]);
        p->hops++;
        if (!fb)
            continue;
        metric_inc(metric_labels(gw_mf.fallbacks, p->public_model));
        p->model = fb;
        p->retries = 0;
        memset(p->tried, 0, sizeof p->tried);
    }
    struct gw_deployment *d = &p->model->dep[idx];
    p->dep = d;
    p->tried[idx] = 1;
    p->attempts++;
    p->up_status = 0;
    p->retry_after_ms = 0;

    cJSON *m = cJSON_CreateString(d->model);
    if (!m || !cJSON_ReplaceItemInObjectCaseSensitive(p->body, "model", m)) {
        cJSON_Delete(m);
        goto nomem;
    }
    char *json = cJSON_PrintUnformatted(p->body);
    if (!json)
        goto nomem;
    int n = snprintf(url, sizeof url, "%s%s", d->base_url, p->endpoint);
    if (n < 0 || (size_t)n >= sizeof url) {
        free(json);
        goto nomem;
    }
    char rid[96];
    snprintf(rid, sizeof rid, "X-Request-Id: %s", p->req_id);
    int h = 0;
    hdrs[h++] = "Content-Type: application/json";
    hdrs[h++] = rid;
    if (d->auth_header[0])
        hdrs[h++] = d->auth_header;
    if (p->stream_req)
        hdrs[h++] = "Accept: text/event-stream";
    hdrs[h] = NULL;
    struct http_client_request r = {
        .method = "POST",
        .url = url,
        .headers = hdrs,
        .body = json,
        .body_len = strlen(json),
        .connect_timeout_ms = d->timeout_ms < 10000 ? d->timeout_ms : 10000,
        .timeout_ms = p->stream_req ? 0 : d->timeout_ms,
        .first_byte_timeout_ms = d->timeout_ms,
        .idle_timeout_ms = p->stream_req ? d->timeout_ms : 0,
        .max_response_bytes = PX_MAX_RESPONSE,
        .on_headers = up_headers,
        .on_data = p->stream_req ? up_data : NULL,
        .on_done = up_done,
        .ud = p,
    };
    gw_route_begin(d);
    p->t_submit = loop_now_ns();
    int rc = http_client_submit(p->client, &r, &p->up);
    free(json);
    if (rc == 0)
        return;
    gw_route_end(d, &p->table->set, 0, 0, 0, 0, 0);
nomem:
    px_fail(p, 500, "gateway could not build the upstream request", "internal_error");
}

/* ---- handlers ----------------------------------------------------------------- */

static void h_forward(struct http_req *req, const char *endpoint, struct gw_ctx *ctx)
{
    struct json_err je;
    struct px *p = calloc(1, sizeof(*p));
    if (!p) {
        http_respond_error(req, 503, "out of memory", NULL, NULL, NULL);
        return;
    }
    p->ctx = ctx;
    p->req = req;
    p->endpoint = endpoint;
    p->t_start = loop_now_ns();
    p->loop = http_req_loop(req);
    p->client = worker_client(ctx, p->loop);
    p->final_status = 200;
    p->strategy = -1;
    buf_init(&p->errbody, PX_MAX_ERR_BODY + 1);
    buf_init(&p->out, PX_MAX_OUT + (SSE_DEFAULT_MAX_LINE));
    buf_init(&p->last_body, PX_MAX_ERR_BODY + 1024);
    sse_parser_init(&p->sse, 0, PX_MAX_OUT, on_event, p);
    snprintf(p->req_id, sizeof p->req_id, "%s", http_req_id(req));
    struct str b = http_req_body(req);
    const char *model;
    p->body_len = b.len;
    p->body = json_parse(b.p, b.len, ctx->max_body, 0, &je);
    if (!p->body || !cJSON_IsObject(p->body)) {
        http_respond_error(req, 400, p->body ? "request body must be a JSON object" : je.msg,
                           "invalid_request_error", NULL, NULL);
        goto done;
    }
    if (json_get_string(p->body, "model", &model, &je) != 0) {
        http_respond_error(req, 400, je.msg, "invalid_request_error", je.param, NULL);
        goto done;
    }
    snprintf(p->public_model, sizeof p->public_model, "%s", model);
    if (ctx->keys && gw_keys_authorize(ctx->keys, req, p->public_model, &p->principal) != 0) {
        p->req = NULL;
        goto done;
    }
    p->table = gw_current_acquire();
    p->model = p->table ? (struct gw_model *)gw_table_find(p->table, p->public_model) : NULL;
    if (!p->model || !p->client) {
        http_respond_error(req, 404, "The model does not exist or you do not have access to it.",
                           "invalid_request_error", "model", "model_not_found");
        goto done;
    }
    bool stream = false;
    if (json_get_bool(p->body, "stream", &stream, &je) == AS_EINVAL) {
        http_respond_error(req, 400, je.msg, "invalid_request_error", je.param, NULL);
        goto done;
    }
    p->stream_req = stream && strcmp(endpoint, "/embeddings") != 0;
    if (p->stream_req) {
        bool inc = false;
        json_get_bool(p->body, "stream_options.include_usage", &inc, NULL);
        p->client_usage = inc;
        cJSON *so = cJSON_CreateObject();
        if (!so || !cJSON_AddTrueToObject(so, "include_usage")) {
            cJSON_Delete(so);
            http_respond_error(req, 503, "out of memory", NULL, NULL, NULL);
            goto done;
        }
        cJSON_DeleteItemFromObjectCaseSensitive(p->body, "stream_options");
        cJSON_AddItemToObject(p->body, "stream_options", so);
    }
    const char *force = http_req_header(req, "x-aistack-deployment");
    const char *strat = http_req_header(req, "x-aistack-strategy");
    if (force)
        snprintf(p->force, sizeof p->force, "%s", force);
    if (strat && (p->strategy = gw_strategy_parse(strat)) < 0) {
        http_respond_error(req, 400, "x-aistack-strategy must be weighted, least-busy or latency",
                           "invalid_request_error", NULL, NULL);
        goto done;
    }
    px_attempt(p, -1);
    return;
done:
    px_free(p);
}

static void h_chat(struct http_req *req, void *ud)
{
    h_forward(req, "/chat/completions", ud);
}

static void h_completions(struct http_req *req, void *ud)
{
    h_forward(req, "/completions", ud);
}

static void h_embeddings(struct http_req *req, void *ud)
{
    h_forward(req, "/embeddings", ud);
}

int gw_proxy_routes(struct http_server *srv, struct gw_ctx *ctx)
{
    return http_server_route(srv, "POST", "/v1/chat/completions", h_chat, ctx) ||
           http_server_route(srv, "POST", "/v1/completions", h_completions, ctx) ||
           http_server_route(srv, "POST", "/v1/embeddings", h_embeddings, ctx) ||
           http_server_route(srv, "GET", "/v1/models", gw_models_handler, ctx);
}
