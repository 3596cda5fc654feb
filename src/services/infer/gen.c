/*
 * gen.c - one generation request from submission to the last byte: the n
 * choices run as scheduler requests; their tokens are detokenized (never half
 * a UTF-8 character), matched against stop strings across token boundaries
 * (text that could begin a stop string is held back, and a matched stop
 * string never reaches the client), and written as SSE chunks or gathered
 * into one JSON answer, in OpenAI's shapes.
 *
 * Threads: the handler (HTTP worker) parses and submits; token and done
 * callbacks run on the model's scheduler thread; a client going away is seen
 * on the worker. The job is released on the worker, after its answer, so a
 * late "client gone" callback never sees freed memory.
 */
#include "services/infer/infer.h"

#include "core/err.h"
#include "core/json.h"
#include "core/log.h"
#include "core/loop.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define TEXT_MAX (64u << 20)

struct job;

struct choice {
    struct job *job;
    uint32_t index;
    uint64_t sched_id;
    struct tok_stream ts;
    struct buf held; /* decoded text not yet emitted (may begin a stop string) */
    struct buf text; /* non-streaming: the emitted text */
    struct buf lp;   /* non-streaming: logprob entries, comma-separated JSON */
    struct buf lp_tokens, lp_values, lp_tops, lp_offsets; /* completions' logprobs arrays */
    uint64_t text_offset;
    int stopped; /* a stop string matched */
    int role_sent;
    uint32_t n_gen;
    struct jsonc *jc;           /* JSON constraint, or NULL */
    struct toolcall_parser *tc; /* tool-call extraction, or NULL */
    size_t tc_sent;             /* tool calls already streamed */
    double t_last;              /* time of the previous token, for inter-token latency */
    const char *finish_reason;
};

struct job {
    struct infer *inf;
    struct infer_model *im;
    struct gen_request r;
    struct http_req *req;       /* non-streaming answer target */
    struct http_stream *stream; /* streaming answer */
    struct loop *loop;          /* the request's worker, where the job is released */
    char id[48];
    int64_t created;
    pthread_mutex_t mu;
    int handler_done, all_done, finalized;
    atomic_int gone;
    uint32_t n_done;
    int broken;         /* a stream write failed: stop producing */
    int fail_status;    /* nonzero: answer this error instead (queue full) */
    struct buf chunk;   /* scheduler thread: the chunk being written */
    struct buf content; /* scheduler thread: text the tool-call parser released */
    struct choice ch[INFER_MAX_N];
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void job_free(struct job *j)
{
    for (uint32_t i = 0; i < INFER_MAX_N; i++) {
        struct choice *c = &j->ch[i];
        buf_free(&c->held);
        buf_free(&c->text);
        buf_free(&c->lp);
        buf_free(&c->lp_tokens);
        buf_free(&c->lp_values);
        buf_free(&c->lp_tops);
        buf_free(&c->lp_offsets);
        jsonc_free(c->jc);
        toolcall_parser_free(c->tc);
    }
    buf_free(&j->chunk);
    buf_free(&j->content);
    gen_request_free(&j->r);
    pthread_mutex_destroy(&j->mu);
    free(j);
}

static void job_free_cb(struct loop *l, void *ud)
{
    (void)l;
    job_free(ud);
}

/* ---- JSON pieces ------------------------------------------------------------ */

static void write_bytes_array(struct json_writer *w, const char *p, size_t n)
{
    json_arr_begin(w);
    for (size_t i = 0; i < n; i++)
        json_uint(w, (unsigned char)p[i]);
    json_arr_end(w);
}

/* The text of token id, as OpenAI's logprobs show it. */
static void token_text(struct job *j, int32_t id, struct buf *out)
{
    buf_reset(out);
    tok_piece(j->im->tok, id, TOK_DECODE_SPECIAL, out);
}

/* Chat logprobs entry {"token","logprob","bytes","top_logprobs":[...]}. */
static void write_chat_lp(struct job *j, struct json_writer *w, const struct sampler_result *res)
{
    struct buf t;
    buf_init(&t, 1 << 16);
    token_text(j, res->token, &t);
    json_obj_begin(w);
    json_key(w, "token");
    json_strn(w, t.data ? t.data : "", t.len);
    json_kv_double(w, "logprob", res->logprob);
    json_key(w, "bytes");
    write_bytes_array(w, t.data, t.len);
    json_key(w, "top_logprobs");
    json_arr_begin(w);
    for (uint32_t k = 0; k < res->n_top && k < j->r.top_logprobs; k++) {
        token_text(j, res->top[k].token, &t);
        json_obj_begin(w);
        json_key(w, "token");
        json_strn(w, t.data ? t.data : "", t.len);
        json_kv_double(w, "logprob", res->top[k].logprob);
        json_key(w, "bytes");
        write_bytes_array(w, t.data, t.len);
        json_obj_end(w);
    }
    json_arr_end(w);
    json_obj_end(w);
    buf_free(&t);
}

/* Completions logprobs, one token: appended to the four parallel arrays. */
static void add_completion_lp(struct job *j, struct choice *c, const struct sampler_result *res)
{
    struct buf t;
    struct json_writer w;
    buf_init(&t, 1 << 16);
    token_text(j, res->token, &t);
    if (c->lp_tokens.len)
        buf_append_char(&c->lp_tokens, ','), buf_append_char(&c->lp_values, ','),
            buf_append_char(&c->lp_tops, ','), buf_append_char(&c->lp_offsets, ',');
    json_append_str(&c->lp_tokens, t.data ? t.data : "", t.len);
    char num[JSON_DOUBLE_MAX];
    buf_append(&c->lp_values, num, json_format_double(num, res->logprob));
    buf_printf(&c->lp_offsets, "%llu", (unsigned long long)c->text_offset);
    json_writer_init(&w, &c->lp_tops);
    json_obj_begin(&w);
    for (uint32_t k = 0; k < res->n_top && k < j->r.top_logprobs; k++) {
        token_text(j, res->top[k].token, &t);
        json_keyn(&w, t.data ? t.data : "", t.len);
        json_double(&w, res->top[k].logprob);
    }
    json_obj_end(&w);
    buf_free(&t);
}

static void write_completion_lp(struct json_writer *w, const struct choice *c)
{
    json_key(w, "logprobs");
    json_obj_begin(w);
    json_key(w, "tokens");
    json_arr_begin(w);
    json_raw(w, c->lp_tokens.data ? c->lp_tokens.data : "", c->lp_tokens.len);
    json_arr_end(w);
    json_key(w, "token_logprobs");
    json_arr_begin(w);
    json_raw(w, c->lp_values.data ? c->lp_values.data : "", c->lp_values.len);
    json_arr_end(w);
    json_key(w, "top_logprobs");
    json_arr_begin(w);
    json_raw(w, c->lp_tops.data ? c->lp_tops.data : "", c->lp_tops.len);
    json_arr_end(w);
    json_key(w, "text_offset");
    json_arr_begin(w);
    json_raw(w, c->lp_offsets.data ? c->lp_offsets.data : "", c->lp_offsets.len);
    json_arr_end(w);
    json_obj_end(w);
}

static void write_usage(struct json_writer *w, const struct job *j)
{
    uint64_t gen = 0;
    for (uint32_t i = 0; i < j->r.n; i++)
        gen += j->ch[i].n_gen;
    json_key(w, "usage");
    json_obj_begin(w);
    json_kv_int(w, "prompt_tokens", j->r.n_prompt);
    json_kv_int(w, "completion_tokens", (int64_t)gen);
    json_kv_int(w, "total_tokens", (int64_t)(j->r.n_prompt + gen));
    json_obj_end(w);
}

static void chunk_head(struct job *j, struct json_writer *w)
{
    buf_reset(&j->chunk);
    json_writer_init(w, &j->chunk);
    json_obj_begin(w);
    json_kv_str(w, "id", j->id);
    json_kv_str(w, "object", j->r.kind == GEN_CHAT ? "chat.completion.chunk" : "text_completion");
    json_kv_int(w, "created", j->created);
    json_kv_str(w, "model", j->im->id);
    json_kv_null(w, "system_fingerprint");
}

static void stream_send(struct job *j)
{
    if (j->broken || atomic_load(&j->gone))
        return;
    int rc = http_sse_event(j->stream, NULL, j->chunk.data, j->chunk.len);
    if (rc) {
        /* gone, or a client so slow that 256 KiB of chunks wait: stop generating */
        j->broken = 1;
        for (uint32_t i = 0; i < j->r.n; i++)
            sched_cancel(j->im->sched, j->ch[i].sched_id);
    }
}

/*
 * A streamed chunk for choice c: text delta (may be empty), the token's
 * logprobs (res, may be NULL), finish_reason (may be NULL).
 */
static void stream_chunk(struct job *j, struct choice *c, const char *text, size_t n,
                         const struct sampler_result *res, const char *finish)
{
    struct json_writer w;
    chunk_head(j, &w);
    json_key(&w, "choices");
    json_arr_begin(&w);
    json_obj_begin(&w);
    json_kv_int(&w, "index", c->index);
    if (j->r.kind == GEN_CHAT) {
        json_key(&w, "delta");
        json_obj_begin(&w);
        if (!c->role_sent) {
            json_kv_str(&w, "role", "assistant");
            c->role_sent = 1;
        }
        if (n || !finish) {
            json_key(&w, "content");
            json_strn(&w, text, n);
        }
        json_obj_end(&w);
        json_key(&w, "logprobs");
        if (res && j->r.logprobs) {
            json_obj_begin(&w);
            json_key(&w, "content");
            json_arr_begin(&w);
            write_chat_lp(j, &w, res);
            json_arr_end(&w);
            json_obj_end(&w);
        } else {
            json_null(&w);
        }
    } else {
        json_key(&w, "text");
        json_strn(&w, text, n);
        if (res && j->r.logprobs) {
            buf_reset(&c->lp_tokens), buf_reset(&c->lp_values), buf_reset(&c->lp_tops),
                buf_reset(&c->lp_offsets);
            add_completion_lp(j, c, res);
            write_completion_lp(&w, c);
        } else {
            json_kv_null(&w, "logprobs");
        }
    }
    if (finish)
        json_kv_str(&w, "finish_reason", finish);
    else
        json_kv_null(&w, "finish_reason");
    json_obj_end(&w);
    json_arr_end(&w);
    if (j->r.include_usage)
        json_kv_null(&w, "usage");
    json_obj_end(&w);
    stream_send(j);
}

/* {"index"?, "id", "type":"function", "function": {"name", "arguments"}} for call i. */
static void write_tool_call(struct json_writer *w, const struct toolcall *tc, int index)
{
    json_obj_begin(w);
    if (index >= 0)
        json_kv_int(w, "index", index);
    json_kv_str(w, "id", tc->id);
    json_kv_str(w, "type", "function");
    json_key(w, "function");
    json_obj_begin(w);
    json_kv_str(w, "name", tc->name);
    json_kv_str(w, "arguments", tc->arguments);
    json_obj_end(w);
    json_obj_end(w);
}

/* Calls of choice c to answer: parallel_tool_calls false keeps only the first. */
static size_t n_tool_calls(const struct job *j, const struct choice *c)
{
    size_t n = c->tc ? toolcall_count(c->tc) : 0;
    return !j->r.parallel_tool_calls && n > 1 ? 1 : n;
}

/* Streams the tool calls the parser completed since the last chunk. */
static void stream_tool_calls(struct job *j, struct choice *c)
{
    size_t n = n_tool_calls(j, c);
    for (; c->tc_sent < n; c->tc_sent++) {
        struct json_writer w;
        chunk_head(j, &w);
        json_key(&w, "choices");
        json_arr_begin(&w);
        json_obj_begin(&w);
        json_kv_int(&w, "index", c->index);
        json_key(&w, "delta");
        json_obj_begin(&w);
        if (!c->role_sent) {
            json_kv_str(&w, "role", "assistant");
            c->role_sent = 1;
        }
        json_key(&w, "tool_calls");
        json_arr_begin(&w);
        write_tool_call(&w, toolcall_get(c->tc, c->tc_sent), (int)c->tc_sent);
        json_arr_end(&w);
        json_obj_end(&w);
        json_kv_null(&w, "logprobs");
        json_kv_null(&w, "finish_reason");
        json_obj_end(&w);
        json_arr_end(&w);
        if (j->r.include_usage)
            json_kv_null(&w, "usage");
        json_obj_end(&w);
        stream_send(j);
    }
}

/* ---- stop strings ---------------------------------------------------------------- */

/*
 * Replaces invalid UTF-8 in b[from..] with U+FFFD, as clients will see it, so
 * that stop strings are matched against the text the client receives.
 */
static int utf8_sanitize(struct buf *b, size_t from)
{
    size_t i = from;
    while (i < b->len) {
        size_t l = json_utf8_seq((const unsigned char *)b->data + i, b->len - i);
        if (l) {
            i += l;
            continue;
        }
        if (buf_reserve(b, 2))
            return AS_ENOMEM;
        memmove(b->data + i + 3, b->data + i + 1, b->len - i - 1);
        memcpy(b->data + i, "\xef\xbf\xbd", 3);
        b->len += 2;
        b->data[b->len] = '\0';
        i += 3;
    }
    return 0;
}

/*
 * Emits what of c->held can no longer be part of a stop string. Returns 1 if a
 * stop string matched (the text before it was emitted, the rest dropped).
 */
static int emit_held(struct job *j, struct choice *c, const struct sampler_result *res, int final)
{
    const char *h = c->held.data ? c->held.data : "";
    size_t n = c->held.len, emit = n, cut = n;
    int matched = 0;
    for (int s = 0; s < j->r.n_stop; s++) {
        const char *hit = memmem(h, n, j->r.stop[s], strlen(j->r.stop[s]));
        if (hit && (size_t)(hit - h) < cut) {
            cut = (size_t)(hit - h);
            matched = 1;
        }
    }
    if (matched) {
        emit = cut;
    } else if (!final) {
        /* hold back the longest tail that is a proper prefix of some stop string */
        for (int s = 0; s < j->r.n_stop; s++) {
            size_t sl = strlen(j->r.stop[s]);
            for (size_t k = sl - 1 < n ? sl - 1 : n; k > 0; k--) {
                if (!memcmp(h + n - k, j->r.stop[s], k)) {
                    if (n - k < emit)
                        emit = n - k;
                    break;
                }
            }
        }
        emit = json_utf8_complete_len(h, emit);
    }
    const char *out = h;
    size_t out_n = emit;
    if (c->tc) { /* only text that cannot be part of a tool call is content */
        buf_reset(&j->content);
        toolcall_feed(c->tc, h, emit, &j->content);
        out = j->content.data ? j->content.data : "";
        out_n = j->content.len;
    }
    if (j->r.stream) {
        if (out_n || (res && j->r.logprobs))
            stream_chunk(j, c, out, out_n, res, NULL);
        if (c->tc)
            stream_tool_calls(j, c);
    } else {
        if (buf_append(&c->text, out, out_n))
            matched = 1; /* absurdly long output: end it */
        if (res && j->r.logprobs) {
            if (j->r.kind == GEN_CHAT) {
                struct json_writer w;
                if (c->lp.len)
                    buf_append_char(&c->lp, ',');
                json_writer_init(&w, &c->lp);
                write_chat_lp(j, &w, res);
            } else {
                add_completion_lp(j, c, res);
            }
        }
    }
    c->text_offset += emit;
    if (matched)
        buf_reset(&c->held);
    else if (emit) {
        memmove(c->held.data, c->held.data + emit, n - emit);
        c->held.len = n - emit;
        c->held.data[c->held.len] = '\0';
    }
    return matched;
}

/* ---- finishing --------------------------------------------------------------------- */

static void respond_whole(struct job *j)
{
    struct buf out;
    struct json_writer w;
    buf_init(&out, TEXT_MAX * 2);
    json_writer_init(&w, &out);
    json_obj_begin(&w);
    json_kv_str(&w, "id", j->id);
    json_kv_str(&w, "object", j->r.kind == GEN_CHAT ? "chat.completion" : "text_completion");
    json_kv_int(&w, "created", j->created);
    json_kv_str(&w, "model", j->im->id);
    json_kv_null(&w, "system_fingerprint");
    json_key(&w, "choices");
    json_arr_begin(&w);
    for (uint32_t i = 0; i < j->r.n; i++) {
        struct choice *c = &j->ch[i];
        json_obj_begin(&w);
        json_kv_int(&w, "index", i);
        if (j->r.kind == GEN_CHAT) {
            size_t n_calls = n_tool_calls(j, c);
            json_key(&w, "message");
            json_obj_begin(&w);
            json_kv_str(&w, "role", "assistant");
            json_key(&w, "content");
            if (n_calls && c->text.len == 0)
                json_null(&w);
            else
                json_strn(&w, c->text.data ? c->text.data : "", c->text.len);
            if (n_calls) {
                json_key(&w, "tool_calls");
                json_arr_begin(&w);
                for (size_t k = 0; k < n_calls; k++)
                    write_tool_call(&w, toolcall_get(c->tc, k), -1);
                json_arr_end(&w);
            }
            json_obj_end(&w);
            json_key(&w, "logprobs");
            if (j->r.logprobs) {
                json_obj_begin(&w);
                json_key(&w, "content");
                json_arr_begin(&w);
                json_raw(&w, c->lp.data ? c->lp.data : "", c->lp.len);
                json_arr_end(&w);
                json_obj_end(&w);
            } else {
                json_null(&w);
            }
        } else {
            json_key(&w, "text");
            json_strn(&w, c->text.data ? c->text.data : "", c->text.len);
            if (j->r.logprobs)
                write_completion_lp(&w, c);
            else
                json_kv_null(&w, "logprobs");
        }
        json_kv_str(&w, "finish_reason", c->finish_reason ? c->finish_reason : "stop");
        json_obj_end(&w);
    }
    json_arr_end(&w);
    write_usage(&w, j);
    json_obj_end(&w);
    if (json_writer_finish(&w))
        http_respond_error(j->req, 500, "the response is too large", NULL, NULL, NULL);
    else
        http_respond_json(j->req, 200, out.data, out.len);
    buf_free(&out);
}

static void stream_finish(struct job *j)
{
    if (j->r.include_usage) {
        struct json_writer w;
        chunk_head(j, &w);
        json_key(&w, "choices");
        json_arr_begin(&w);
        json_arr_end(&w);
        write_usage(&w, j);
        json_obj_end(&w);
        stream_send(j);
    }
    if (!j->broken && !atomic_load(&j->gone))
        http_sse_event(j->stream, NULL, "[DONE]", 6);
    http_stream_end(j->stream);
}

/* Answers and releases the job; exactly once, after the handler returned. */
static void finalize(struct job *j)
{
    struct loop *l = j->loop;
    if (j->fail_status) {
        const char *busy = j->fail_status == 429
                               ? "the server is busy: too many waiting requests, retry later"
                               : "out of memory";
        if (j->r.stream) { /* the 200 is already sent: an error event, never [DONE] */
            struct buf b;
            buf_init(&b, 1024);
            as_error_body(&b, busy, as_error_type_for_status(j->fail_status), NULL, NULL);
            if (!atomic_load(&j->gone))
                http_sse_event(j->stream, NULL, b.data, b.len);
            buf_free(&b);
            http_stream_end(j->stream);
            job_free(j);
            return;
        }
        if (j->fail_status == 429)
            http_resp_header(j->req, "Retry-After", "1");
        http_respond_error(j->req, j->fail_status, busy, NULL, NULL, NULL);
        if (loop_post(l, job_free_cb, j))
            log_error("infer: cannot release a finished request", NULL);
        return;
    }
    if (j->r.stream) {
        stream_finish(j);
        job_free(j); /* stream callbacks never run after http_stream_end() */
        return;
    }
    respond_whole(j);
    /* released on the worker after the response is handed over there, so that a
     * client-gone callback racing with the answer still finds the job */
    if (loop_post(l, job_free_cb, j))
        log_error("infer: cannot release a finished request", NULL);
}

static void maybe_finalize(struct job *j, int from_handler)
{
    pthread_mutex_lock(&j->mu);
    if (from_handler)
        j->handler_done = 1;
    else
        j->all_done = 1;
    int go = j->handler_done && j->all_done && !j->finalized;
    if (go)
        j->finalized = 1;
    pthread_mutex_unlock(&j->mu);
    if (go)
        finalize(j);
}

/* ---- scheduler callbacks ------------------------------------------------------------- */

/* Masks every token that cannot continue a valid JSON document (logit filter). */
static void json_filter(void *ud, float *logits, uint32_t n_vocab)
{
    struct choice *c = ud;
    const struct jsonc_vocab *v = c->job->im->jvocab;
    for (uint32_t t = jsonc_vocab_n(v); t < n_vocab; t++)
        logits[t] = -INFINITY; /* padding past the tokenizer's vocabulary */
    if (jsonc_mask(c->jc, v, logits) == 0)
        for (uint32_t t = 0; t < n_vocab; t++) /* dead end: let end-of-generation through */
            logits[t] = tok_is_eog(c->job->im->tok, (int32_t)t) ? 0.0f : -INFINITY;
}

static int on_token(void *ud, const struct sampler_result *res)
{
    struct choice *c = ud;
    struct job *j = c->job;
    if (c->jc) {
        if (jsonc_accept_token(c->jc, j->im->jvocab, res->token))
            return 1;
        if (jsonc_done(c->jc)) { /* nothing may follow the document: emit it and stop */
            size_t from = c->held.len;
            tok_stream_push(&c->ts, res->token, &c->held);
            utf8_sanitize(&c->held, from);
            c->n_gen++;
            emit_held(j, c, res, 0);
            return 1;
        }
    }
    struct infer_metrics *met = &j->im->met;
    double t = now_s();
    if (c->n_gen > 0)
        metric_observe(met->itl, t - c->t_last);
    c->t_last = t;
    c->n_gen++;
    if (atomic_load(&j->gone) || j->broken)
        return 1;
    size_t from = c->held.len;
    if (tok_stream_push(&c->ts, res->token, &c->held) || utf8_sanitize(&c->held, from))
        return 1;
    return emit_held(j, c, res, 0);
}

static void on_done(void *ud, enum sched_finish why, const struct sched_stats *st)
{
    struct choice *c = ud;
    struct job *j = c->job;
    struct infer_metrics *met = &j->im->met;
    if (!c->stopped && why != SCHED_FINISH_CANCELLED) {
        size_t from = c->held.len;
        tok_stream_flush(&c->ts, &c->held);
        utf8_sanitize(&c->held, from);
        c->stopped = emit_held(j, c, NULL, 1);
    }
    if (c->tc && why != SCHED_FINISH_CANCELLED) {
        buf_reset(&j->content);
        toolcall_finish(c->tc, &j->content);
        if (j->r.stream) {
            if (j->content.len)
                stream_chunk(j, c, j->content.data, j->content.len, NULL, NULL);
            stream_tool_calls(j, c);
        } else {
            buf_append(&c->text, j->content.data ? j->content.data : "", j->content.len);
        }
    }
    switch (why) {
    case SCHED_FINISH_STOP:
        c->finish_reason = "stop";
        break;
    case SCHED_FINISH_LENGTH:
    case SCHED_FINISH_DEADLINE:
        c->finish_reason = "length";
        break;
    default:
        c->finish_reason = "stop";
        break;
    }
    /* OpenAI answers "stop" for a call of the function tool_choice named */
    if (n_tool_calls(j, c) > 0 && why == SCHED_FINISH_STOP && !j->r.tool_name)
        c->finish_reason = "tool_calls";
    if (why == SCHED_FINISH_CANCELLED || why == SCHED_FINISH_ERROR) {
        metric_inc(met->aborted);
    } else {
        metric_inc(why == SCHED_FINISH_STOP ? met->ok_stop : met->ok_length);
        if (st->n_gen)
            metric_observe(met->ttft, st->ttft_ms / 1e3);
        metric_observe(met->e2e, st->total_ms / 1e3);
        metric_observe(met->queue, st->queue_ms / 1e3);
    }
    if (log_get_level() <= LOG_DEBUG) {
        double gen_ms = st->total_ms - st->ttft_ms;
        log_debug("request done",
                  "model=%s prompt=%u cached=%u gen=%u queue_ms=%.1f ttft_ms=%.1f total_ms=%.1f "
                  "gen_tps=%.1f finish=%s",
                  j->im->id, st->n_prompt, st->n_cached, st->n_gen, st->queue_ms, st->ttft_ms,
                  st->total_ms, st->n_gen > 1 && gen_ms > 0 ? (st->n_gen - 1) * 1e3 / gen_ms : 0.0,
                  why == SCHED_FINISH_CANCELLED ? "cancelled"
                  : why == SCHED_FINISH_ERROR   ? "error"
                                                : c->finish_reason);
    }
    if (j->r.stream && !j->fail_status)
        stream_chunk(j, c, "", 0, NULL, c->finish_reason);
    pthread_mutex_lock(&j->mu);
    int last = ++j->n_done == j->r.n;
    pthread_mutex_unlock(&j->mu);
    if (last)
        maybe_finalize(j, 0);
}

/* ---- the client going away ----------------------------------------------------------- */

static void cancel_all(struct job *j)
{
    atomic_store(&j->gone, 1);
    for (uint32_t i = 0; i < j->r.n; i++)
        if (j->ch[i].sched_id)
            sched_cancel(j->im->sched, j->ch[i].sched_id);
}

static void on_req_gone(struct http_req *req, void *ud)
{
    (void)req;
    cancel_all(ud);
}

static void on_stream_gone(struct http_stream *s, void *ud)
{
    (void)s;
    cancel_all(ud);
}

/* ---- start ----------------------------------------------------------------------------- */

void gen_start(struct infer *inf, struct http_req *req, struct gen_request *r)
{
    struct job *j = calloc(1, sizeof *j);
    if (!j) {
        gen_request_free(r);
        http_respond_error(req, 500, "out of memory", NULL, NULL, NULL);
        return;
    }
    j->inf = inf;
    j->im = r->model;
    j->r = *r;
    memset(r, 0, sizeof *r);
    j->loop = http_req_loop(req);
    j->created = (int64_t)time(NULL);
    pthread_mutex_init(&j->mu, NULL);
    buf_init(&j->chunk, TEXT_MAX);
    buf_init(&j->content, TEXT_MAX);
    unsigned char rnd[12];
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
        memset(rnd, 0, sizeof rnd);
    int o = snprintf(j->id, sizeof j->id, "%s", j->r.kind == GEN_CHAT ? "chatcmpl-" : "cmpl-");
    for (size_t i = 0; i < sizeof rnd && o + 2 < (int)sizeof j->id; i++)
        o += snprintf(j->id + o, sizeof j->id - (size_t)o, "%02x", rnd[i]);
    for (uint32_t i = 0; i < INFER_MAX_N; i++) {
        struct choice *c = &j->ch[i];
        c->job = j;
        c->index = i;
        buf_init(&c->held, TEXT_MAX);
        buf_init(&c->text, TEXT_MAX);
        buf_init(&c->lp, TEXT_MAX);
        buf_init(&c->lp_tokens, TEXT_MAX);
        buf_init(&c->lp_values, TEXT_MAX);
        buf_init(&c->lp_tops, TEXT_MAX);
        buf_init(&c->lp_offsets, TEXT_MAX);
        tok_stream_init(&c->ts, j->im->tok, 0);
    }
    if (j->r.stream) {
        j->stream = http_stream_begin(req, 200, "text/event-stream");
        if (!j->stream) { /* client already gone */
            job_free(j);
            return;
        }
        http_stream_set_callbacks(j->stream, on_stream_gone, NULL, j);
    } else {
        j->req = req;
        http_req_on_gone(req, on_req_gone, j);
    }
    struct sched_request sr = {0};
    sr.prompt = j->r.prompt;
    sr.n_prompt = j->r.n_prompt;
    sr.max_tokens = j->r.max_tokens;
    sr.logprobs = j->r.logprobs;
    sr.n_top_logprobs = j->r.top_logprobs;
    sr.ignore_eog = j->r.ignore_eos;
    if (j->r.tools) {
        for (uint32_t i = 0; i < j->r.n; i++) {
            uint64_t seed;
            if (getrandom(&seed, sizeof seed, 0) != (ssize_t)sizeof seed)
                seed = (uint64_t)j->created * 1000003u + i;
            j->ch[i].tc = j->r.tool_forced
                              ? toolcall_parser_new_forced(j->im->tool_style, j->r.tool_name, seed)
                              : toolcall_parser_new(j->im->tool_style, seed);
            if (!j->ch[i].tc) {
                j->fail_status = 500;
                j->r.n = 0;
                maybe_finalize(j, 0);
                maybe_finalize(j, 1);
                return;
            }
        }
    }
    if (j->r.json_mode || j->r.tool_forced) {
        char err[256];
        for (uint32_t i = 0; i < j->r.n; i++) {
            if (j->r.tool_forced)
                j->ch[i].jc = gen_request_tool_constraint(&j->r, err, sizeof err);
            else
                j->ch[i].jc = j->r.json_mode == 1 ? jsonc_new_object()
                                                  : jsonc_new_schema(j->r.schema, err, sizeof err);
            if (!j->ch[i].jc) { /* the schema compiled in the handler: out of memory */
                j->fail_status = 500;
                j->r.n = 0;
                maybe_finalize(j, 0);
                maybe_finalize(j, 1);
                return;
            }
        }
        sr.logit_filter = json_filter;
        sr.ignore_eog = 0;
    }
    sr.on_token = on_token;
    sr.on_done = on_done;
    if (j->inf->request_timeout_ms)
        sr.deadline_ms = loop_now_ms() + j->inf->request_timeout_ms;
    uint32_t submitted = 0;
    int rc = 0;
    for (uint32_t i = 0; i < j->r.n; i++) {
        sr.sampling = j->r.sampling;
        sr.sampling.seed = j->r.sampling.seed + i; /* n choices differ, reproducibly */
        sr.ud = &j->ch[i];
        if ((rc = sched_submit(j->im->sched, &sr, &j->ch[i].sched_id)))
            break;
        submitted++;
    }
    if (rc) {
        /* the queue filled up between the handler's check and here: cancel what
         * went in; the answer is a 429 once those finish */
        j->fail_status = 429;
        cancel_all(j);
        pthread_mutex_lock(&j->mu);
        j->r.n = submitted;
        int last = j->n_done == submitted;
        pthread_mutex_unlock(&j->mu);
        if (last)
            maybe_finalize(j, 0);
    }
    maybe_finalize(j, 1);
}
