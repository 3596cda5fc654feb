/*
 * embed.c - POST /v1/embeddings: mean-pooled, L2-normalised final hidden
 * states, for a string, a list of strings, or pre-tokenized input, as float
 * arrays or base64 (little-endian float32), in OpenAI's shape.
 *
 * Each model has one embedding thread with its own model context, fed by a
 * bounded queue, so the HTTP workers never run compute; answers are posted
 * back to the request's worker loop.
 */
#include "services/infer/infer.h"

#include "core/err.h"
#include "core/json.h"
#include "core/log.h"
#include "core/loop.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EMBED_MAX_INPUTS 2048
#define EMBED_QUEUE      64

struct embed_job {
    struct http_req *req;
    struct loop *loop;
    struct infer_model *im;
    int base64;
    uint32_t n_inputs;
    int32_t **tokens; /* (n_inputs) owned */
    uint32_t *n_tokens;
    uint64_t total_tokens;
    int status; /* answer: 200 with body, or an error status with message */
    struct buf body;
    struct embed_job *next;
};

struct embedder {
    struct infer_model *im;
    struct model_ctx *ctx;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct embed_job *head, *tail;
    uint32_t queued;
    int stop;
};

static void job_free(struct embed_job *j)
{
    if (!j)
        return;
    for (uint32_t i = 0; j->tokens && i < j->n_inputs; i++)
        free(j->tokens[i]);
    free(j->tokens);
    free(j->n_tokens);
    buf_free(&j->body);
    free(j);
}

/* On the request's worker: the handler has returned, so answering is allowed. */
static void respond_cb(struct loop *l, void *ud)
{
    (void)l;
    struct embed_job *j = ud;
    if (j->status == 200)
        http_respond_json(j->req, 200, j->body.data, j->body.len);
    else
        http_respond_error(j->req, j->status, j->body.data ? j->body.data : "embedding failed",
                           NULL, NULL, NULL);
    job_free(j);
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int append_base64(struct buf *b, const unsigned char *p, size_t n)
{
    if (buf_reserve(b, (n + 2) / 3 * 4))
        return AS_ENOMEM;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)p[i] << 16 | (i + 1 < n ? (unsigned)p[i + 1] << 8 : 0) |
                     (i + 2 < n ? p[i + 2] : 0);
        char o[4] = {b64[v >> 18], b64[(v >> 12) & 63], i + 1 < n ? b64[(v >> 6) & 63] : '=',
                     i + 2 < n ? b64[v & 63] : '='};
        buf_append(b, o, 4);
    }
    return 0;
}

static void run_job(struct embedder *e, struct embed_job *j)
{
    uint32_t dim = model_get_hparams(e->im->m)->n_embd;
    float *v = malloc(dim * sizeof *v);
    struct json_writer w;
    buf_reset(&j->body);
    if (!v) {
        j->status = 500;
        buf_append_cstr(&j->body, "out of memory");
        return;
    }
    json_writer_init(&w, &j->body);
    json_obj_begin(&w);
    json_kv_str(&w, "object", "list");
    json_key(&w, "data");
    json_arr_begin(&w);
    for (uint32_t i = 0; i < j->n_inputs; i++) {
        int rc = model_embed(e->ctx, j->tokens[i], j->n_tokens[i], v);
        if (rc) {
            buf_reset(&j->body);
            j->status = rc == AS_ERANGE ? 400 : 500;
            buf_printf(&j->body, "embedding input %u failed: %s", i, as_strerror(rc));
            free(v);
            return;
        }
        json_obj_begin(&w);
        json_kv_str(&w, "object", "embedding");
        json_kv_int(&w, "index", i);
        json_key(&w, "embedding");
        if (j->base64) {
            /* float32 little-endian, as the OpenAI SDKs decode it */
            struct buf enc;
            buf_init(&enc, (size_t)dim * 8 + 16);
            append_base64(&enc, (const unsigned char *)v, dim * sizeof *v);
            json_strn(&w, enc.data ? enc.data : "", enc.len);
            buf_free(&enc);
        } else {
            json_arr_begin(&w);
            for (uint32_t d = 0; d < dim; d++)
                json_double(&w, v[d]);
            json_arr_end(&w);
        }
        json_obj_end(&w);
    }
    json_arr_end(&w);
    json_kv_str(&w, "model", e->im->id);
    json_key(&w, "usage");
    json_obj_begin(&w);
    json_kv_int(&w, "prompt_tokens", (int64_t)j->total_tokens);
    json_kv_int(&w, "total_tokens", (int64_t)j->total_tokens);
    json_obj_end(&w);
    json_obj_end(&w);
    free(v);
    j->status = json_writer_finish(&w) ? 500 : 200;
}

static void *embed_thread(void *arg)
{
    struct embedder *e = arg;
    for (;;) {
        pthread_mutex_lock(&e->mu);
        while (!e->stop && !e->head)
            pthread_cond_wait(&e->cv, &e->mu);
        struct embed_job *j = e->head;
        if (j) {
            e->head = j->next;
            if (!e->head)
                e->tail = NULL;
            e->queued--;
        }
        int stop = e->stop;
        pthread_mutex_unlock(&e->mu);
        if (!j && stop)
            return NULL;
        if (stop) {
            j->status = 503;
            buf_reset(&j->body);
            buf_append_cstr(&j->body, "the server is shutting down");
        } else {
            run_job(e, j);
        }
        if (loop_post(j->loop, respond_cb, j)) {
            log_error("infer: cannot post an embedding answer", NULL);
            job_free(j); /* the request stays unanswered until the drain ends it */
        }
    }
}

struct embedder *embedder_new(struct infer_model *im, uint32_t n_threads, char *err, size_t errlen)
{
    struct embedder *e = calloc(1, sizeof *e);
    if (!e) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    e->im = im;
    struct model_ctx_params cp = {
        .n_threads = n_threads, .max_batch = 256, .max_seqs = 1, .n_ctx = im->n_ctx};
    if (!(e->ctx = model_ctx_new(im->m, &cp, err, errlen))) {
        free(e);
        return NULL;
    }
    pthread_mutex_init(&e->mu, NULL);
    pthread_cond_init(&e->cv, NULL);
    if (pthread_create(&e->thread, NULL, embed_thread, e)) {
        snprintf(err, errlen, "cannot start the embedding thread");
        model_ctx_free(e->ctx);
        free(e);
        return NULL;
    }
    return e;
}

void embedder_free(struct embedder *e)
{
    if (!e)
        return;
    pthread_mutex_lock(&e->mu);
    e->stop = 1;
    pthread_cond_signal(&e->cv);
    pthread_mutex_unlock(&e->mu);
    pthread_join(e->thread, NULL);
    model_ctx_free(e->ctx);
    pthread_mutex_destroy(&e->mu);
    pthread_cond_destroy(&e->cv);
    free(e);
}

/* Tokenizes one input: a string, or an array of token ids. 0, or a 400 message in msg. */
static int input_tokens(struct infer_model *im, const cJSON *in, uint32_t i, struct embed_job *j,
                        struct buf *msg)
{
    struct tok_ids ids;
    tok_ids_init(&ids, im->n_ctx);
    int rc = 0;
    if (cJSON_IsString(in)) {
        if (tok_encode(im->tok, in->valuestring, strlen(in->valuestring), TOK_ENCODE_ADD_SPECIAL,
                       &ids)) {
            buf_printf(msg, "input %u is longer than the context (%u tokens)", i, im->n_ctx);
            rc = -1;
        }
    } else if (cJSON_IsArray(in)) {
        const cJSON *t;
        cJSON_ArrayForEach(t, in)
        {
            if (!cJSON_IsNumber(t) || t->valuedouble < 0 ||
                t->valuedouble >= tok_n_vocab(im->tok) ||
                tok_ids_push(&ids, (int32_t)t->valuedouble)) {
                buf_printf(msg, "input %u: token ids of this model, at most %u of them", i,
                           im->n_ctx);
                rc = -1;
                break;
            }
        }
    } else {
        buf_printf(msg, "'input' must be a string, an array of strings or of token ids");
        rc = -1;
    }
    if (rc == 0 && ids.n == 0) {
        buf_printf(msg, "input %u is empty", i);
        rc = -1;
    }
    if (rc == 0) {
        j->tokens[i] = ids.ids;
        j->n_tokens[i] = (uint32_t)ids.n;
        j->total_tokens += ids.n;
        ids.ids = NULL;
    }
    tok_ids_free(&ids);
    return rc;
}

void embed_handle(struct infer *inf, struct http_req *req)
{
    struct json_err je;
    struct buf msg;
    struct str body = http_req_body(req);
    struct embed_job *j = NULL;
    buf_init(&msg, 4096);
    cJSON *b = json_parse(body.p, body.len, body.len + 1, 16, &je);
    const char *model = "", *fmt = "float";
    if (!b || !cJSON_IsObject(b)) {
        http_respond_error(req, 400, b ? "the body must be a JSON object" : je.msg, NULL, NULL,
                           NULL);
        goto out;
    }
    if (json_get_string(b, "model", &model, &je) == AS_EINVAL ||
        json_get_string(b, "encoding_format", &fmt, &je) == AS_EINVAL ||
        (strcmp(fmt, "float") && strcmp(fmt, "base64"))) {
        http_respond_error(req, 400, "'encoding_format' must be float or base64", NULL,
                           "encoding_format", NULL);
        goto out;
    }
    struct infer_model *im = infer_find_model(inf, model);
    if (!im) {
        http_respond_error(req, 404, "The model does not exist", NULL, "model", "model_not_found");
        goto out;
    }
    const cJSON *input = cJSON_GetObjectItemCaseSensitive(b, "input");
    /* a string, a list of strings, a list of ids, or a list of lists of ids */
    int list = cJSON_IsArray(input) && input->child &&
               (cJSON_IsString(input->child) || cJSON_IsArray(input->child));
    uint32_t n = list ? (uint32_t)cJSON_GetArraySize(input) : 1;
    if (!input || n == 0 || n > EMBED_MAX_INPUTS) {
        http_respond_error(req, 400, "'input' must hold 1 to 2048 inputs", NULL, "input", NULL);
        goto out;
    }
    j = calloc(1, sizeof *j);
    if (!j || !(j->tokens = calloc(n, sizeof *j->tokens)) ||
        !(j->n_tokens = calloc(n, sizeof *j->n_tokens))) {
        http_respond_error(req, 500, "out of memory", NULL, NULL, NULL);
        goto out;
    }
    j->n_inputs = n;
    buf_init(&j->body, (size_t)1 << 30);
    uint32_t i = 0;
    const cJSON *it = list ? input->child : input;
    for (; it && i < n; it = list ? it->next : NULL, i++) {
        if (input_tokens(im, it, i, j, &msg)) {
            http_respond_error(req, 400, msg.data, NULL, "input", NULL);
            goto out;
        }
    }
    j->req = req;
    j->loop = http_req_loop(req);
    j->im = im;
    j->base64 = !strcmp(fmt, "base64");
    struct embedder *e = im->embedder;
    pthread_mutex_lock(&e->mu);
    int full = e->queued >= EMBED_QUEUE;
    if (!full) {
        if (e->tail)
            e->tail->next = j;
        else
            e->head = j;
        e->tail = j;
        e->queued++;
        pthread_cond_signal(&e->cv);
    }
    pthread_mutex_unlock(&e->mu);
    if (full) {
        http_resp_header(req, "Retry-After", "1");
        http_respond_error(req, 429, "too many embedding requests waiting, retry later", NULL, NULL,
                           NULL);
        goto out;
    }
    j = NULL; /* the embedding thread owns it now */
out:
    job_free(j);
    cJSON_Delete(b);
    buf_free(&msg);
}
