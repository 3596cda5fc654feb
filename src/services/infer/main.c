/*
 * main.c - aistack-infer: serves GGUF models with the OpenAI API.
 *
 *   aistack-infer --model FILE.gguf [--model-id ID] [--port N] [--threads T]
 *
 * Settings come from --config FILE.yaml, AISTACK_* variables and flags. The
 * server answers /health/live at once and /health/ready (503) once every
 * model is loaded. Routes: POST /v1/chat/completions, /v1/completions, /v1/embeddings,
 * /tokenize, /detokenize; GET /v1/models, /v1/models/{id}, /metrics.
 */
#include "services/infer/infer.h"

#include "core/auth.h"
#include "core/config.h"
#include "core/err.h"
#include "core/json.h"
#include "core/log.h"
#include "engine/gguf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const struct cfg_option schema[] = {
    {.key = "model", .type = CFG_STRLIST, .help = "GGUF model file(s) to serve", .alias = "m"},
    {.key = "model_id",
     .type = CFG_STRLIST,
     .help = "public id of each model (default: the file name without .gguf)"},
    {.key = "model_alias",
     .type = CFG_STRLIST,
     .help = "extra names of the first model (comma-separated)"},
    {.key = "server.host",
     .type = CFG_STRING,
     .def = "0.0.0.0",
     .help = "address to listen on",
     .alias = "host"},
    {.key = "server.port",
     .type = CFG_INT,
     .def = "8081",
     .help = "port",
     .min = 0,
     .max = 65535,
     .alias = "port"},
    {.key = "server.port_file",
     .type = CFG_STRING,
     .help = "write the bound port here once listening (useful with --port 0)"},
    {.key = "server.http_threads",
     .type = CFG_INT,
     .def = "1",
     .help = "HTTP worker threads",
     .min = 1,
     .max = 64},
    {.key = "server.max_body",
     .type = CFG_SIZE,
     .def = "8MB",
     .help = "largest request body",
     .min = 1024,
     .max = (int64_t)1 << 30},
    {.key = "threads",
     .type = CFG_INT,
     .def = "0",
     .help = "compute threads (0: all CPUs)",
     .min = 0,
     .max = 256,
     .alias = "t"},
    {.key = "weights",
     .type = CFG_STRING,
     .def = "auto",
     .help = "where weights live: auto (2 MB pages: a huge-page file mapping, else a private "
             "copy; Q4_0/Q8_0 matrices repacked for the kernels), mmap (plain file mapping, "
             "page cache shared across processes, nothing repacked), copy"},
    {.key = "ctx_size",
     .type = CFG_INT,
     .def = "0",
     .help = "context length per sequence (0: the model's, capped at 8192)",
     .min = 0,
     .max = 1 << 20},
    {.key = "batch.max_running",
     .type = CFG_INT,
     .def = "16",
     .help = "requests decoding together",
     .min = 1,
     .max = 1024,
     .alias = "parallel"},
    {.key = "batch.max_tokens",
     .type = CFG_INT,
     .def = "256",
     .help = "tokens per step (decodes + prompt chunks)",
     .min = 1,
     .max = 65536},
    {.key = "batch.max_queue",
     .type = CFG_INT,
     .def = "64",
     .help = "waiting requests before 429",
     .min = 1,
     .max = 100000},
    {.key = "batch.prefix_cache",
     .type = CFG_INT,
     .def = "8",
     .help = "finished sequences kept for prompt prefix reuse",
     .min = 0,
     .max = 1024},
    {.key = "batch.kv_tokens",
     .type = CFG_INT,
     .def = "0",
     .help = "KV cache size in tokens over all sequences (0: ctx_size x slots)",
     .min = 0,
     .max = (int64_t)1 << 31},
    {.key = "default_max_tokens",
     .type = CFG_INT,
     .def = "0",
     .help = "max_tokens when a request gives none (0: until the context is full)",
     .min = 0,
     .max = 1 << 20},
    {.key = "request_timeout",
     .type = CFG_DURATION,
     .def = "10m",
     .help = "longest a request may run"},
    {.key = "auth.keys",
     .type = CFG_STRLIST,
     .help = "API keys (plain, or sha256:HEX); none: no authentication",
     .alias = "api-key"},
    {.key = "log.level", .type = CFG_STRING, .def = "info", .help = "debug, info, warn, error"},
    CFG_END,
};

static const char chatml_template[] =
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + "
    "message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ "
    "'<|im_start|>assistant\\n' }}{% endif %}";

struct infer_model *infer_find_model(struct infer *inf, const char *name)
{
    if (!name || !*name)
        return inf->n_models ? &inf->models[0] : NULL;
    for (int i = 0; i < inf->n_models; i++) {
        struct infer_model *m = &inf->models[i];
        if (!strcmp(m->id, name))
            return m;
        for (int a = 0; a < m->n_aliases; a++)
            if (!strcmp(m->aliases[a], name))
                return m;
    }
    return NULL;
}

/* ---- handlers ---------------------------------------------------------------- */

static int authorized(struct infer *inf, struct http_req *req)
{
    if (!inf->keys || auth_check_header(inf->keys, http_req_header(req, "Authorization")) >= 0)
        return 1;
    http_resp_header(req, "WWW-Authenticate", "Bearer");
    http_respond_error(req, 401, "Incorrect API key provided", "invalid_request_error", NULL,
                       "invalid_api_key");
    return 0;
}

static void handle_gen(struct http_req *req, struct infer *inf, enum gen_kind kind)
{
    if (!authorized(inf, req))
        return;
    struct gen_request r;
    struct buf msg;
    const char *param, *code;
    buf_init(&msg, 4096);
    struct str body = http_req_body(req);
    int status = gen_request_parse(inf, kind, body.p, body.len, &r, &msg, &param, &code);
    if (status) {
        http_respond_error(req, status, msg.data ? msg.data : "bad request", NULL, param, code);
        buf_free(&msg);
        return;
    }
    buf_free(&msg);
    struct sched_metrics sm;
    sched_get_metrics(r.model->sched, &sm);
    if (sm.waiting + r.n > inf->max_queue) {
        gen_request_free(&r);
        http_resp_header(req, "Retry-After", "1");
        http_respond_error(req, 429, "the server is busy: too many waiting requests, retry later",
                           NULL, NULL, NULL);
        return;
    }
    gen_start(inf, req, &r);
}

static void h_chat(struct http_req *req, void *ud)
{
    handle_gen(req, ud, GEN_CHAT);
}

static void h_completions(struct http_req *req, void *ud)
{
    handle_gen(req, ud, GEN_COMPLETION);
}

static void h_embeddings(struct http_req *req, void *ud)
{
    struct infer *inf = ud;
    if (authorized(inf, req))
        embed_handle(inf, req);
}

static void write_model(struct json_writer *w, const struct infer_model *m)
{
    json_obj_begin(w);
    json_kv_str(w, "id", m->id);
    json_kv_str(w, "object", "model");
    json_kv_int(w, "created", m->created);
    json_kv_str(w, "owned_by", "aistack");
    json_kv_int(w, "max_model_len", m->n_ctx);
    json_obj_end(w);
}

static void h_models(struct http_req *req, void *ud)
{
    struct infer *inf = ud;
    if (!authorized(inf, req))
        return;
    struct buf b;
    struct json_writer w;
    buf_init(&b, 1 << 20);
    json_writer_init(&w, &b);
    json_obj_begin(&w);
    json_kv_str(&w, "object", "list");
    json_key(&w, "data");
    json_arr_begin(&w);
    for (int i = 0; i < inf->n_models; i++)
        write_model(&w, &inf->models[i]);
    json_arr_end(&w);
    json_obj_end(&w);
    http_respond_json(req, 200, b.data, b.len);
    buf_free(&b);
}

static void h_model(struct http_req *req, void *ud)
{
    struct infer *inf = ud;
    if (!authorized(inf, req))
        return;
    struct str id = http_req_param(req);
    char name[256];
    snprintf(name, sizeof name, "%.*s", (int)(id.len < 255 ? id.len : 255), id.p);
    struct infer_model *m = infer_find_model(inf, name);
    if (!m || !name[0]) {
        http_respond_error(req, 404, "The model does not exist", NULL, "model", "model_not_found");
        return;
    }
    struct buf b;
    struct json_writer w;
    buf_init(&b, 4096);
    json_writer_init(&w, &b);
    write_model(&w, m);
    http_respond_json(req, 200, b.data, b.len);
    buf_free(&b);
}

/*
 * The common start of the small JSON endpoints: the body parsed as an object
 * and its "model" found. Answers 400/404 itself and returns NULL on failure.
 */
static cJSON *parse_model_body(struct infer *inf, struct http_req *req, struct infer_model **out)
{
    struct json_err je;
    struct str body = http_req_body(req);
    cJSON *j = json_parse(body.p, body.len, body.len + 1, 16, &je);
    const char *model = "";
    if (!j || !cJSON_IsObject(j) || json_get_string(j, "model", &model, &je) == AS_EINVAL) {
        http_respond_error(req, 400,
                           j && cJSON_IsObject(j) ? je.msg : "the body must be a JSON object", NULL,
                           j && cJSON_IsObject(j) ? "model" : NULL, NULL);
        cJSON_Delete(j);
        return NULL;
    }
    if (!(*out = infer_find_model(inf, model))) {
        http_respond_error(req, 404, "The model does not exist", NULL, "model", "model_not_found");
        cJSON_Delete(j);
        return NULL;
    }
    return j;
}

/* POST /tokenize {"model","prompt"|"content","add_special"} -> {"tokens":[...],"count"} */
static void h_tokenize(struct http_req *req, void *ud)
{
    struct infer *inf = ud;
    if (!authorized(inf, req))
        return;
    struct json_err je;
    struct infer_model *m;
    cJSON *j = parse_model_body(inf, req, &m);
    const char *text = NULL;
    bool add_special = true;
    struct tok_ids ids;
    struct buf b;
    tok_ids_init(&ids, 1 << 22);
    buf_init(&b, 64u << 20);
    if (!j)
        goto out;
    if ((json_get_string(j, "prompt", &text, &je) && json_get_string(j, "content", &text, &je)) ||
        json_get_bool(j, "add_special", &add_special, &je) == AS_EINVAL) {
        http_respond_error(req, 400, text ? je.msg : "'prompt' must be a string", NULL, "prompt",
                           NULL);
        goto out;
    }
    if (tok_encode(m->tok, text, strlen(text),
                   TOK_ENCODE_PARSE_SPECIAL | (add_special ? TOK_ENCODE_ADD_SPECIAL : 0), &ids)) {
        http_respond_error(req, 400, "the text is too long", NULL, "prompt", NULL);
        goto out;
    }
    struct json_writer w;
    json_writer_init(&w, &b);
    json_obj_begin(&w);
    json_key(&w, "tokens");
    json_arr_begin(&w);
    for (size_t i = 0; i < ids.n; i++)
        json_int(&w, ids.ids[i]);
    json_arr_end(&w);
    json_kv_int(&w, "count", (int64_t)ids.n);
    json_kv_int(&w, "max_model_len", m->n_ctx);
    json_obj_end(&w);
    http_respond_json(req, 200, b.data, b.len);
out:
    cJSON_Delete(j);
    tok_ids_free(&ids);
    buf_free(&b);
}

/* POST /detokenize {"model","tokens":[...]} -> {"prompt": "..."} */
static void h_detokenize(struct http_req *req, void *ud)
{
    struct infer *inf = ud;
    if (!authorized(inf, req))
        return;
    struct json_err je;
    struct infer_model *m;
    cJSON *j = parse_model_body(inf, req, &m);
    const cJSON *arr = NULL;
    struct buf text, b;
    int32_t *ids = NULL;
    buf_init(&text, 64u << 20);
    buf_init(&b, 128u << 20);
    if (!j)
        goto out;
    if (json_get_array(j, "tokens", &arr, &je)) {
        http_respond_error(req, 400, je.msg, NULL, "tokens", NULL);
        goto out;
    }
    int n = cJSON_GetArraySize(arr), i = 0;
    if (!(ids = malloc((size_t)(n ? n : 1) * sizeof *ids))) {
        http_respond_error(req, 500, "out of memory", NULL, NULL, NULL);
        goto out;
    }
    const cJSON *t;
    cJSON_ArrayForEach(t, arr)
    {
        if (!cJSON_IsNumber(t) || t->valuedouble < 0 || t->valuedouble >= tok_n_vocab(m->tok) ||
            t->valuedouble != (double)(int32_t)t->valuedouble) {
            http_respond_error(req, 400, "'tokens' must hold token ids of this model", NULL,
                               "tokens", NULL);
            goto out;
        }
        ids[i++] = (int32_t)t->valuedouble;
    }
    if (tok_decode(m->tok, ids, (size_t)i, 0, &text)) {
        http_respond_error(req, 400, "the text is too long", NULL, "tokens", NULL);
        goto out;
    }
    struct json_writer w;
    json_writer_init(&w, &b);
    json_obj_begin(&w);
    json_key(&w, "prompt");
    json_strn(&w, text.data ? text.data : "", text.len);
    json_obj_end(&w);
    http_respond_json(req, 200, b.data, b.len);
out:
    cJSON_Delete(j);
    free(ids);
    buf_free(&text);
    buf_free(&b);
}

/* ---- metrics ------------------------------------------------------------------- */

static void metrics_init(struct infer *inf)
{
    struct metrics_registry *r = metrics_default();
    static const char *const lm[] = {"model_name", NULL};
    static const char *const lf[] = {"model_name", "finished_reason", NULL};
    struct metric_family *running = metrics_gauge_new(
        r, "vllm:num_requests_running", "Requests decoding in the running batch.", lm);
    struct metric_family *waiting =
        metrics_gauge_new(r, "vllm:num_requests_waiting", "Requests waiting to be scheduled.", lm);
    struct metric_family *kv = metrics_gauge_new(r, "vllm:kv_cache_usage_perc",
                                                 "KV cache usage; 1 means 100 percent.", lm);
    struct metric_family *kv_old = metrics_gauge_new(
        r, "vllm:gpu_cache_usage_perc", "KV cache usage (name kept for vLLM dashboards).", lm);
    struct metric_family *pt =
        metrics_counter_new(r, "vllm:prompt_tokens_total", "Prompt tokens processed.", lm);
    struct metric_family *gt =
        metrics_counter_new(r, "vllm:generation_tokens_total", "Tokens generated.", lm);
    struct metric_family *ttft =
        metrics_histogram_new(r, "vllm:time_to_first_token_seconds", "Time to the first token.", lm,
                              metrics_buckets_latency, metrics_buckets_latency_n);
    struct metric_family *itl = metrics_histogram_new(
        r, "vllm:time_per_output_token_seconds", "Time between generated tokens.", lm,
        metrics_buckets_latency, metrics_buckets_latency_n);
    struct metric_family *e2e = metrics_histogram_new(
        r, "vllm:e2e_request_latency_seconds", "Request latency from arrival to the end.", lm,
        metrics_buckets_latency, metrics_buckets_latency_n);
    struct metric_family *queue = metrics_histogram_new(
        r, "vllm:request_queue_time_seconds", "Time requests waited to be scheduled.", lm,
        metrics_buckets_latency, metrics_buckets_latency_n);
    struct metric_family *ok = metrics_counter_new(r, "vllm:request_success_total",
                                                   "Requests finished, by finish reason.", lf);
    struct metric_family *ab =
        metrics_counter_new(r, "aistack_infer_requests_aborted_total",
                            "Requests cancelled (client gone, deadline, shutdown).", lm);
    for (int i = 0; i < inf->n_models; i++) {
        struct infer_metrics *m = &inf->models[i].met;
        const char *id = inf->models[i].id;
        m->running = metric_family_series(running, 1, &id);
        m->waiting = metric_family_series(waiting, 1, &id);
        m->kv_usage = metric_family_series(kv, 1, &id);
        m->kv_usage_vllm = metric_family_series(kv_old, 1, &id);
        m->prompt_tokens = metric_family_series(pt, 1, &id);
        m->gen_tokens = metric_family_series(gt, 1, &id);
        m->ttft = metric_family_series(ttft, 1, &id);
        m->itl = metric_family_series(itl, 1, &id);
        m->e2e = metric_family_series(e2e, 1, &id);
        m->queue = metric_family_series(queue, 1, &id);
        const char *stop[] = {id, "stop"}, *len[] = {id, "length"};
        m->ok_stop = metric_family_series(ok, 2, stop);
        m->ok_length = metric_family_series(ok, 2, len);
        m->aborted = metric_family_series(ab, 1, &id);
    }
}

/* Runs at each scrape: the scheduler's gauges and token totals. */
static void metrics_collect(void *ud)
{
    struct infer *inf = ud;
    for (int i = 0; i < inf->n_models; i++) {
        struct infer_model *im = &inf->models[i];
        if (!im->sched)
            continue;
        struct sched_metrics sm;
        sched_get_metrics(im->sched, &sm);
        metric_set(im->met.running, sm.running);
        metric_set(im->met.waiting, sm.waiting);
        metric_set(im->met.kv_usage, sm.kv_usage);
        metric_set(im->met.kv_usage_vllm, sm.kv_usage);
        metric_add(im->met.prompt_tokens, (double)(sm.prompt_tokens - im->met.last_prompt));
        metric_add(im->met.gen_tokens, (double)(sm.generated_tokens - im->met.last_gen));
        im->met.last_prompt = sm.prompt_tokens;
        im->met.last_gen = sm.generated_tokens;
    }
}

/* ---- models ------------------------------------------------------------------- */

static void token_text_or_empty(const struct tokenizer *t, int32_t id, char *out, size_t cap)
{
    out[0] = '\0';
    if (id < 0)
        return;
    struct str s = tok_token_text(t, id);
    snprintf(out, cap, "%.*s", (int)(s.len < cap - 1 ? s.len : cap - 1), s.p);
}

static double wall_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

struct load_progress {
    const char *id;
    double t0, last;
};

/* A progress line per second of loading (a cold multi-GB file takes a while). */
static void on_load_progress(void *ud, uint64_t done, uint64_t total)
{
    struct load_progress *lp = ud;
    double t = wall_s();
    if (t - lp->last < 1.0 || done >= total)
        return;
    lp->last = t;
    log_info("loading model", "id=%s read_mb=%.0f total_mb=%.0f pct=%.0f", lp->id, done / 1e6,
             total / 1e6, 100.0 * (double)done / (double)total);
}

/* The weights setting: auto, mmap or copy. -1 for anything else. */
static int parse_weights(const char *v, enum model_load_mode *out)
{
    static const char *const names[] = {
        [MODEL_LOAD_AUTO] = "auto", [MODEL_LOAD_MMAP] = "mmap", [MODEL_LOAD_COPY] = "copy"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(v, names[i])) {
            *out = (enum model_load_mode)i;
            return 0;
        }
    return -1;
}

/* Loads one model; load: the weights setting, parse_weights() of it. */
static int load_model(struct infer_model *im, const struct config *cfg, enum model_load_mode load,
                      char *err, size_t errlen)
{
    struct load_progress lp = {.id = im->id, .t0 = wall_s()};
    lp.last = lp.t0;
    struct model_params mp = {.load = load, .progress = on_load_progress, .progress_ud = &lp};
    uint32_t ctx = (uint32_t)config_int(cfg, "ctx_size");
    double t0 = (double)clock() / CLOCKS_PER_SEC;
    log_info("loading model", "path=%s id=%s", im->path, im->id);
    if (!(im->m = model_load(im->path, &mp, err, errlen)))
        return AS_EFORMAT;
    if (!(im->tok = tok_new_from_gguf(model_get_gguf(im->m), err, errlen)))
        return AS_EFORMAT;
    struct str tmpl = tok_chat_template(im->tok);
    const char *src = tmpl.len ? tmpl.p : chatml_template;
    size_t len = tmpl.len ? tmpl.len : strlen(chatml_template);
    struct jinja_error je;
    if (!(im->tmpl = jinja_template_parse(src, len, &je))) {
        snprintf(err, errlen, "%s: chat template line %d: %s", im->path, je.line, je.msg);
        return AS_EFORMAT;
    }
    im->tool_style = toolcall_detect(src, len);
    if (!(im->jvocab = jsonc_vocab_new(im->tok))) {
        snprintf(err, errlen, "out of memory");
        return AS_ENOMEM;
    }
    token_text_or_empty(im->tok, tok_bos(im->tok), im->bos_text, sizeof im->bos_text);
    token_text_or_empty(im->tok, tok_eos(im->tok), im->eos_text, sizeof im->eos_text);
    uint32_t n_ctx = model_n_ctx(im->m);
    if (ctx)
        n_ctx = ctx < n_ctx ? ctx : n_ctx;
    else if (n_ctx > 8192)
        n_ctx = 8192;
    int threads = (int)config_int(cfg, "threads");
    if (threads == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        threads = n > 0 ? (int)n : 1;
    }
    struct sched_params sp = {
        .n_threads = (uint32_t)threads,
        .max_running = (uint32_t)config_int(cfg, "batch.max_running"),
        .max_batch = (uint32_t)config_int(cfg, "batch.max_tokens"),
        .max_queue = (uint32_t)config_int(cfg, "batch.max_queue"),
        .cache_seqs = (uint32_t)config_int(cfg, "batch.prefix_cache"),
        .n_ctx = n_ctx,
        .kv_tokens = (uint32_t)config_int(cfg, "batch.kv_tokens"),
    };
    if (!(im->sched = sched_new(im->m, &sp, err, errlen)))
        return AS_ENOMEM;
    im->n_ctx = sched_n_ctx(im->sched);
    if (!(im->embedder = embedder_new(im, (uint32_t)threads, err, errlen)))
        return AS_ENOMEM;
    im->created = (int64_t)time(NULL);
    log_info("model ready",
             "id=%s n_ctx=%u threads=%d weights=%s packed=%u load_s=%.2f load_cpu_s=%.2f", im->id,
             im->n_ctx, threads, model_weights_memory(im->m), model_weights_packed(im->m),
             wall_s() - lp.t0, (double)clock() / CLOCKS_PER_SEC - t0);
    return 0;
}

static void free_models(struct infer *inf)
{
    for (int i = 0; i < inf->n_models; i++) {
        struct infer_model *im = &inf->models[i];
        embedder_free(im->embedder);
        sched_free(im->sched);
        jinja_template_free(im->tmpl);
        jsonc_vocab_free(im->jvocab);
        tok_free(im->tok);
        model_free(im->m);
        for (int a = 0; a < im->n_aliases; a++)
            free(im->aliases[a]);
    }
    free(inf->models);
}

/* Public ids and aliases, before anything is loaded (so config errors come first). */
static int plan_models(struct infer *inf, const struct config *cfg, struct buf *msg)
{
    size_t n, n_id, n_alias;
    const char *const *paths = config_strlist(cfg, "model", &n);
    const char *const *ids = config_strlist(cfg, "model_id", &n_id);
    const char *const *aliases = config_strlist(cfg, "model_alias", &n_alias);
    if (n == 0) {
        buf_printf(msg, "no model: give --model FILE.gguf\n");
        return AS_EINVAL;
    }
    if (n_id && n_id != n) {
        buf_printf(msg, "--model-id must be given once per --model (%zu models, %zu ids)\n", n,
                   n_id);
        return AS_EINVAL;
    }
    inf->models = calloc(n, sizeof *inf->models);
    if (!inf->models)
        return AS_ENOMEM;
    inf->n_models = (int)n;
    for (size_t i = 0; i < n; i++) {
        struct infer_model *im = &inf->models[i];
        im->path = paths[i];
        if (n_id) {
            snprintf(im->id, sizeof im->id, "%s", ids[i]);
        } else {
            const char *base = strrchr(paths[i], '/');
            base = base ? base + 1 : paths[i];
            size_t bl = strlen(base);
            if (bl > 5 && !strcmp(base + bl - 5, ".gguf"))
                bl -= 5;
            snprintf(im->id, sizeof im->id, "%.*s", (int)(bl < 127 ? bl : 127), base);
        }
        for (size_t k = 0; k < i; k++)
            if (!strcmp(inf->models[k].id, im->id)) {
                buf_printf(msg, "two models have the id '%s': set --model-id\n", im->id);
                return AS_EINVAL;
            }
    }
    for (size_t a = 0; a < n_alias && a < INFER_MAX_ALIASES; a++)
        inf->models[0].aliases[inf->models[0].n_aliases++] = strdup(aliases[a]);
    return 0;
}

/* Writes the bound port to path atomically (temp file, rename). */
static int write_port_file(const char *path, unsigned port)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return -1;
    FILE *f = fopen(tmp, "w");
    if (!f)
        return -1;
    fprintf(f, "%u\n", port);
    if (fclose(f) || rename(tmp, path)) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct config *cfg = NULL;
    struct buf msg;
    struct infer inf = {0};
    struct http_server *srv = NULL;
    int rc = 1;
    char err[512];
    buf_init(&msg, 1 << 16);
    log_set_service("infer");
    int lrc = config_load(schema, argc, argv, &cfg, &msg);
    if (lrc == CONFIG_HELP) {
        fputs(msg.data ? msg.data : "", stdout);
        rc = 0;
        goto out;
    }
    if (lrc) {
        fprintf(stderr, "aistack-infer: %s", msg.data ? msg.data : "bad configuration\n");
        rc = 2;
        goto out;
    }
    enum log_level lvl;
    if (log_parse_level(config_str(cfg, "log.level"), &lvl) == 0)
        log_set_level(lvl);
    enum model_load_mode load_mode;
    if (parse_weights(config_str(cfg, "weights"), &load_mode)) {
        fprintf(stderr, "aistack-infer: weights: '%s' is not auto, mmap or copy\n",
                config_str(cfg, "weights"));
        rc = 2;
        goto out;
    }
    if (plan_models(&inf, cfg, &msg)) {
        fprintf(stderr, "aistack-infer: %s", msg.data ? msg.data : "out of memory\n");
        rc = 2;
        goto out;
    }
    size_t n_keys;
    const char *const *keys = config_strlist(cfg, "auth.keys", &n_keys);
    if (n_keys) {
        size_t bad_i = 0;
        const char *why = "out of memory";
        inf.keys = auth_keyset_new();
        if (!inf.keys || auth_keyset_add_list(inf.keys, keys, n_keys, &bad_i, &why)) {
            fprintf(stderr, "aistack-infer: auth.keys entry %zu: %s\n", bad_i + 1,
                    why ? why : "invalid");
            rc = 2;
            goto out;
        }
    }
    inf.default_max_tokens = (uint32_t)config_int(cfg, "default_max_tokens");
    inf.request_timeout_ms = (uint64_t)config_duration_ms(cfg, "request_timeout");
    inf.max_queue = (uint32_t)config_int(cfg, "batch.max_queue");
    struct http_server_config hc = {
        .bind_addr = config_str(cfg, "server.host"),
        .port = (uint16_t)config_int(cfg, "server.port"),
        .threads = (int)config_int(cfg, "server.http_threads"),
        .max_body_bytes = (size_t)config_size(cfg, "server.max_body"),
        .service = "infer",
    };
    if (!(srv = http_server_new(&hc, err, sizeof err))) {
        fprintf(stderr, "aistack-infer: %s\n", err);
        goto out;
    }
    inf.srv = srv;
    metrics_register_process(NULL);
    metrics_init(&inf);
    metrics_registry_add_collector(metrics_default(), metrics_collect, &inf, NULL);
    if (http_server_route(srv, "POST", "/v1/chat/completions", h_chat, &inf) ||
        http_server_route(srv, "POST", "/v1/completions", h_completions, &inf) ||
        http_server_route(srv, "POST", "/v1/embeddings", h_embeddings, &inf) ||
        http_server_route(srv, "GET", "/v1/models", h_models, &inf) ||
        http_server_route(srv, "GET", "/v1/models/{id}", h_model, &inf) ||
        http_server_route(srv, "POST", "/tokenize", h_tokenize, &inf) ||
        http_server_route(srv, "POST", "/detokenize", h_detokenize, &inf)) {
        fprintf(stderr, "aistack-infer: cannot register routes\n");
        goto out;
    }
    /* live at once, ready once every model is loaded */
    if (http_server_start(srv)) {
        fprintf(stderr, "aistack-infer: cannot start the HTTP server\n");
        goto out;
    }
    log_info("listening", "port=%u", http_server_port(srv));
    const char *port_file = config_str(cfg, "server.port_file");
    if (port_file && write_port_file(port_file, http_server_port(srv))) {
        fprintf(stderr, "aistack-infer: cannot write %s\n", port_file);
        goto out;
    }
    for (int i = 0; i < inf.n_models; i++) {
        if (load_model(&inf.models[i], cfg, load_mode, err, sizeof err)) {
            fprintf(stderr, "aistack-infer: %s: %s\n", inf.models[i].path, err);
            goto out;
        }
    }
    http_server_set_ready(srv, 1);
    log_info("ready", "models=%d", inf.n_models);
    rc = http_server_run(srv) == AS_ETIMEDOUT ? 1 : 0;
    log_info("stopped", "drained=%s", rc ? "no" : "yes");
out:
    http_server_free(srv);
    free_models(&inf);
    auth_keyset_free(inf.keys);
    config_free(cfg);
    buf_free(&msg);
    return rc;
}
