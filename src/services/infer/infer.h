/*
 * infer.h - aistack-infer, the OpenAI-compatible inference service: shared
 * definitions of its files (main.c: configuration, models, routes;
 * request.c: request parsing and validation; gen.c: running a generation and
 * writing its response).
 *
 * Requests are parsed on the HTTP worker thread, tokenized there and handed
 * to the model's continuous-batching scheduler (engine/sched.h); tokens come
 * back on the scheduler thread, which detokenizes, matches stop strings and
 * writes SSE chunks or the final JSON. Not for: compute (the engine).
 */
#ifndef AISTACK_INFER_H
#define AISTACK_INFER_H

#include <stdint.h>

#include <cjson/cJSON.h>

#include "core/buf.h"
#include "core/http_server.h"
#include "core/metrics.h"
#include "engine/jinja.h"
#include "engine/jsonc.h"
#include "engine/model.h"
#include "engine/sched.h"
#include "engine/tokenizer.h"
#include "engine/toolcall.h"

#define INFER_MAX_STOP    16
#define INFER_MAX_N       16
#define INFER_MAX_ALIASES 8

/* Per-model metric series (vLLM's names, label model_name). */
struct infer_metrics {
    struct metric *running, *waiting, *kv_usage, *kv_usage_vllm;
    struct metric *prompt_tokens, *gen_tokens;
    struct metric *ttft, *itl, *e2e, *queue;
    struct metric *ok_stop, *ok_length, *aborted;
    uint64_t last_prompt, last_gen; /* scheduler totals already added to the counters */
};

struct embedder;

struct infer_model {
    char id[128];
    char *aliases[INFER_MAX_ALIASES];
    int n_aliases;
    const char *path;
    struct model *m;
    struct tokenizer *tok;
    struct jinja_template *tmpl; /* the model's chat template, or a ChatML fallback */
    char bos_text[64], eos_text[64];
    struct sched *sched;
    struct embedder *embedder;      /* /v1/embeddings, its own context and thread */
    struct jsonc_vocab *jvocab;     /* token bytes for JSON-constrained decoding */
    enum toolcall_style tool_style; /* how its chat template asks for tool calls */
    uint32_t n_ctx;
    int64_t created;
    struct infer_metrics met;
};

struct infer {
    struct infer_model *models;
    int n_models;
    struct http_server *srv;
    struct auth_keyset *keys; /* NULL: no authentication */
    uint32_t default_max_tokens;
    uint32_t max_queue;
    uint64_t request_timeout_ms;
};

enum gen_kind { GEN_CHAT = 0, GEN_COMPLETION = 1 };

/* A parsed /v1/chat/completions or /v1/completions request. */
struct gen_request {
    enum gen_kind kind;
    struct infer_model *model;
    int stream, include_usage;
    int ignore_eos; /* vLLM's extension: generate past end-of-generation tokens */
    uint32_t n;
    uint32_t max_tokens;   /* 0: until the context is full */
    int logprobs;          /* chat: logprobs true; completions: logprobs >= 0 */
    uint32_t top_logprobs; /* alternatives per token */
    char *stop[INFER_MAX_STOP];
    int n_stop;
    struct sampler_params sampling;
    struct sampler_bias *bias; /* owned */
    size_t n_bias;
    cJSON *tools;    /* owned: the request's tools, when tool calls are parsed */
    int tool_forced; /* tool_choice "required" or a named function: the output is the call */
    char *tool_name; /* owned: tool_choice's named function, or NULL */
    int parallel_tool_calls;        /* 0: at most one call */
    struct toolcall_form tool_form; /* forced: how the constrained call is written */
    int json_mode;                  /* response_format: 0 text, 1 json_object, 2 json_schema */
    cJSON *schema;                  /* owned, for json_schema */
    int32_t *prompt;                /* owned, tokenized prompt */
    uint32_t n_prompt;
};

/*
 * Parses and validates body into r, rendering the chat template and
 * tokenizing. On failure returns the HTTP status (400, 404) and fills msg,
 * *param (the offending field, may be NULL) and *code (may be NULL).
 */
int gen_request_parse(struct infer *inf, enum gen_kind kind, const char *body, size_t len,
                      struct gen_request *r, struct buf *msg, const char **param,
                      const char **code);
void gen_request_free(struct gen_request *r);
/*
 * The decoding constraint of a forced tool call (r->tool_forced): the named
 * function's arguments object, or a call (or array of calls) of any of the
 * tools. Caller frees. NULL with a message in err.
 */
struct jsonc *gen_request_tool_constraint(const struct gen_request *r, char *err, size_t errlen);

/* Finds a model by id or alias; NULL if none. An empty name picks the first model. */
struct infer_model *infer_find_model(struct infer *inf, const char *name);

/* The embedding worker of a model (embed.c). */
struct embedder *embedder_new(struct infer_model *im, uint32_t n_threads, char *err, size_t errlen);
void embedder_free(struct embedder *e);
/* POST /v1/embeddings. */
void embed_handle(struct infer *inf, struct http_req *req);

/* Runs r (taking ownership of it) and answers req, streaming or not. */
void gen_start(struct infer *inf, struct http_req *req, struct gen_request *r);

#endif
