/*
 * request.c - parsing and validation of OpenAI /v1/chat/completions and
 * /v1/completions bodies into a gen_request: the prompt rendered through the
 * model's chat template and tokenized, sampling parameters checked with the
 * offending field named in 400 answers. Unknown fields are ignored, as OpenAI
 * clients expect.
 */
#include "services/infer/infer.h"

#include "core/err.h"
#include "core/json.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define MAX_BODY_DEPTH 64

/* every call a forced array may hold comes out of the parser */
_Static_assert(JSONC_MAX_TOOL_CALLS <= TOOLCALL_MAX_CALLS, "forced calls past the parser's limit");

struct perr {
    struct buf *msg;
    const char **param, **code;
};

static int bad(struct perr *e, int status, const char *param, const char *code, const char *fmt,
               ...) __attribute__((format(printf, 5, 6)));
static int bad(struct perr *e, int status, const char *param, const char *code, const char *fmt,
               ...)
{
    va_list ap;
    va_start(ap, fmt);
    buf_reset(e->msg);
    buf_vprintf(e->msg, fmt, ap);
    va_end(ap);
    *e->param = param;
    *e->code = code;
    return status;
}

/* A json_get_* failure as a 400 naming the field; absent optional fields are fine. */
static int field(struct perr *e, int rc, const struct json_err *je, const char *param)
{
    if (rc == 0 || rc == AS_ENOENT)
        return 0;
    return bad(e, 400, param, NULL, "%s", je->msg);
}

static int get_num(const cJSON *o, const char *key, double lo, double hi, double *out,
                   struct perr *e)
{
    struct json_err je;
    return field(e, json_get_double(o, key, lo, hi, out, &je), &je, key);
}

static int get_int(const cJSON *o, const char *key, int64_t lo, int64_t hi, int64_t *out,
                   struct perr *e)
{
    struct json_err je;
    return field(e, json_get_int(o, key, lo, hi, out, &je), &je, key);
}

static int parse_stop(const cJSON *body, struct gen_request *r, struct perr *e)
{
    const cJSON *stop = cJSON_GetObjectItemCaseSensitive(body, "stop");
    if (!stop || cJSON_IsNull(stop))
        return 0;
    if (cJSON_IsString(stop)) {
        if (stop->valuestring[0] && !(r->stop[r->n_stop++] = strdup(stop->valuestring)))
            return bad(e, 500, NULL, NULL, "out of memory");
        return 0;
    }
    if (!cJSON_IsArray(stop))
        return bad(e, 400, "stop", NULL, "'stop' must be a string or an array of strings");
    const cJSON *s;
    cJSON_ArrayForEach(s, stop)
    {
        if (!cJSON_IsString(s))
            return bad(e, 400, "stop", NULL, "'stop' must contain only strings");
        if (r->n_stop == INFER_MAX_STOP)
            return bad(e, 400, "stop", NULL, "at most %d stop sequences", INFER_MAX_STOP);
        if (s->valuestring[0] && !(r->stop[r->n_stop++] = strdup(s->valuestring)))
            return bad(e, 500, NULL, NULL, "out of memory");
    }
    return 0;
}

static int parse_bias(const cJSON *body, struct gen_request *r, uint32_t n_vocab, struct perr *e)
{
    const cJSON *lb = cJSON_GetObjectItemCaseSensitive(body, "logit_bias");
    if (!lb || cJSON_IsNull(lb))
        return 0;
    if (!cJSON_IsObject(lb))
        return bad(e, 400, "logit_bias", NULL, "'logit_bias' must be an object");
    int n = cJSON_GetArraySize(lb);
    if (n > 1024)
        return bad(e, 400, "logit_bias", NULL, "'logit_bias' has more than 1024 entries");
    r->bias = calloc((size_t)(n ? n : 1), sizeof *r->bias);
    if (!r->bias)
        return bad(e, 500, NULL, NULL, "out of memory");
    const cJSON *it;
    cJSON_ArrayForEach(it, lb)
    {
        char *end;
        long id = strtol(it->string, &end, 10);
        if (*it->string == '\0' || *end || id < 0 || (unsigned long)id >= n_vocab)
            return bad(e, 400, "logit_bias", NULL, "'logit_bias' key '%.40s' is not a token id",
                       it->string);
        if (!cJSON_IsNumber(it) || it->valuedouble < -100 || it->valuedouble > 100)
            return bad(e, 400, "logit_bias", NULL, "'logit_bias' values must be in [-100, 100]");
        r->bias[r->n_bias].token = (int32_t)id;
        r->bias[r->n_bias].bias = (float)it->valuedouble;
        r->n_bias++;
    }
    r->sampling.bias = r->bias;
    r->sampling.n_bias = r->n_bias;
    return 0;
}

/* Copies messages into the template context, flattening content parts into text. */
static int build_messages(const cJSON *body, cJSON *ctx, struct perr *e)
{
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(body, "messages");
    if (!msgs)
        return bad(e, 400, "messages", NULL, "'messages' is required");
    if (!cJSON_IsArray(msgs) || cJSON_GetArraySize(msgs) == 0)
        return bad(e, 400, "messages", NULL, "'messages' must be a non-empty array");
    cJSON *out = cJSON_AddArrayToObject(ctx, "messages");
    const cJSON *m;
    int i = 0;
    char param[64];
    cJSON_ArrayForEach(m, msgs)
    {
        snprintf(param, sizeof param, "messages.%d", i);
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
        if (!cJSON_IsObject(m) || !cJSON_IsString(role))
            return bad(e, 400, "messages", NULL, "'%s.role' must be a string", param);
        static const char *const roles[] = {"system", "user", "assistant", "tool", "developer"};
        int known = 0;
        for (size_t k = 0; k < sizeof roles / sizeof roles[0]; k++)
            known |= !strcmp(role->valuestring, roles[k]);
        if (!known)
            return bad(e, 400, "messages", NULL,
                       "'%s.role' must be one of system, user, "
                       "assistant, tool, developer",
                       param);
        cJSON *copy = cJSON_Duplicate(m, 1);
        if (!copy || !cJSON_AddItemToArray(out, copy))
            return bad(e, 500, NULL, NULL, "out of memory");
        if (!strcmp(role->valuestring, "developer")) /* OpenAI's newer name for system */
            cJSON_ReplaceItemInObjectCaseSensitive(copy, "role", cJSON_CreateString("system"));
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
        if (cJSON_IsArray(content)) {
            struct buf text;
            buf_init(&text, 1 << 24);
            const cJSON *part;
            cJSON_ArrayForEach(part, content)
            {
                const cJSON *type = cJSON_GetObjectItemCaseSensitive(part, "type");
                const cJSON *t = cJSON_GetObjectItemCaseSensitive(part, "text");
                if (!cJSON_IsString(type) || strcmp(type->valuestring, "text") ||
                    !cJSON_IsString(t)) {
                    buf_free(&text);
                    return bad(e, 400, "messages", NULL,
                               "'%s.content': only parts of type 'text' are supported", param);
                }
                if (buf_append_cstr(&text, t->valuestring)) {
                    buf_free(&text);
                    return bad(e, 400, "messages", NULL, "'%s.content' is too long", param);
                }
            }
            cJSON_ReplaceItemInObjectCaseSensitive(copy, "content",
                                                   cJSON_CreateString(text.data ? text.data : ""));
            buf_free(&text);
        } else if (content && !cJSON_IsString(content) && !cJSON_IsNull(content)) {
            return bad(e, 400, "messages", NULL, "'%s.content' must be a string or an array",
                       param);
        } else if (!content && strcmp(role->valuestring, "assistant")) {
            return bad(e, 400, "messages", NULL, "'%s.content' is required", param);
        }
        i++;
    }
    return 0;
}

/* The tool named name in tools, or NULL. */
static const cJSON *find_tool(const cJSON *tools, const char *name)
{
    const cJSON *t;
    cJSON_ArrayForEach(t, tools)
    {
        const cJSON *n = json_get(t, "function.name");
        if (cJSON_IsString(n) && !strcmp(n->valuestring, name))
            return t;
    }
    return NULL;
}

/*
 * tools: a list of {"type":"function","function":{"name",...}} (may be absent);
 * tool_choice "auto" (default), "none" (the tools are not shown to the
 * model), "required" or {"type":"function","function":{"name": N}} (the
 * output is forced to be a call, see gen_request_tool_constraint);
 * parallel_tool_calls (default true).
 */
static int parse_tools(const cJSON *body, const cJSON *tools, struct gen_request *r, struct perr *e)
{
    static const char choice_shape[] = "'tool_choice' must be 'none', 'auto', 'required' or "
                                       "{\"type\": \"function\", \"function\": {\"name\": ...}}";
    int n = 0;
    if (tools) {
        if (!cJSON_IsArray(tools) || cJSON_GetArraySize(tools) > 128)
            return bad(e, 400, "tools", NULL, "'tools' must be an array of at most 128 tools");
        const cJSON *t;
        cJSON_ArrayForEach(t, tools)
        {
            const cJSON *type = cJSON_GetObjectItemCaseSensitive(t, "type");
            const cJSON *name = json_get(t, "function.name");
            const cJSON *params = json_get(t, "function.parameters");
            if (!cJSON_IsString(type) || strcmp(type->valuestring, "function") ||
                !cJSON_IsString(name) || !name->valuestring[0])
                return bad(e, 400, "tools", NULL,
                           "'tools.%d' must be {\"type\": \"function\", \"function\": {\"name\": "
                           "...}}",
                           n);
            if (params && !cJSON_IsNull(params) && !cJSON_IsObject(params))
                return bad(e, 400, "tools", NULL,
                           "'tools.%d.function.parameters' must be a JSON schema object", n);
            n++;
        }
    }
    struct json_err je;
    bool parallel = true;
    int rc = field(e, json_get_bool(body, "parallel_tool_calls", &parallel, &je), &je,
                   "parallel_tool_calls");
    if (rc)
        return rc;
    r->parallel_tool_calls = parallel;
    const cJSON *choice = cJSON_GetObjectItemCaseSensitive(body, "tool_choice");
    const char *named = NULL;
    int forced = 0;
    if (cJSON_IsString(choice)) {
        if (!strcmp(choice->valuestring, "none"))
            return 0;
        forced = !strcmp(choice->valuestring, "required");
        if (!forced && strcmp(choice->valuestring, "auto"))
            return bad(e, 400, "tool_choice", NULL, "%s", choice_shape);
    } else if (cJSON_IsObject(choice)) {
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(choice, "type");
        const cJSON *name = json_get(choice, "function.name");
        if (!cJSON_IsString(type) || strcmp(type->valuestring, "function") ||
            !cJSON_IsString(name) || !name->valuestring[0])
            return bad(e, 400, "tool_choice", NULL, "%s", choice_shape);
        named = name->valuestring;
        forced = 1;
    } else if (choice && !cJSON_IsNull(choice)) {
        return bad(e, 400, "tool_choice", NULL, "%s", choice_shape);
    }
    if (forced && n == 0)
        return bad(e, 400, "tool_choice", NULL,
                   "'tool_choice' %s%.100s%s requires a non-empty 'tools'", named ? "'" : "",
                   named ? named : "'required'", named ? "'" : "");
    if (named && !find_tool(tools, named))
        return bad(e, 400, "tool_choice", NULL,
                   "'tool_choice' names the function '%.100s', which is not in 'tools'", named);
    if (n && !(r->tools = cJSON_Duplicate(tools, 1)))
        return bad(e, 500, NULL, NULL, "out of memory");
    r->tool_forced = forced;
    if (named && !(r->tool_name = strdup(named)))
        return bad(e, 500, NULL, NULL, "out of memory");
    return 0;
}

struct jsonc *gen_request_tool_constraint(const struct gen_request *r, char *err, size_t errlen)
{
    if (!r->tool_name)
        return jsonc_new_tools(r->tools, NULL, r->tool_form.args_key, r->tool_form.as_array, err,
                               errlen);
    return jsonc_new_tool_args(r->tools, r->tool_name, err, errlen);
}

/*
 * A forced call: the prompt ends where the style's call begins, the constraint
 * is compiled once here so that an unusable schema is a 400, and
 * response_format gives way (the output is the call, not content).
 */
static int force_tool_call(struct infer_model *im, struct gen_request *r, struct buf *prompt,
                           struct perr *e)
{
    if (toolcall_forced_prompt(im->tool_style, r->tool_name, r->parallel_tool_calls, prompt,
                               &r->tool_form))
        return bad(e, 400, "messages", "context_length_exceeded", "the prompt is too long");
    char err[256] = "";
    struct jsonc *probe = gen_request_tool_constraint(r, err, sizeof err);
    if (!probe)
        return bad(e, 400, "tools", NULL, "unsupported 'parameters' schema: %s", err);
    jsonc_free(probe);
    r->json_mode = 0;
    cJSON_Delete(r->schema);
    r->schema = NULL;
    return 0;
}

static int render_chat(struct infer_model *im, const cJSON *body, struct gen_request *r,
                       struct buf *prompt, struct perr *e)
{
    int rc = 0;
    cJSON *ctx = cJSON_CreateObject();
    if (!ctx)
        return bad(e, 500, NULL, NULL, "out of memory");
    if ((rc = build_messages(body, ctx, e)))
        goto out;
    const cJSON *tools = cJSON_GetObjectItemCaseSensitive(body, "tools");
    if ((rc = parse_tools(body, cJSON_IsNull(tools) ? NULL : tools, r, e)))
        goto out;
    if (r->tools && !cJSON_AddItemReferenceToObject(ctx, "tools", r->tools)) {
        rc = bad(e, 500, NULL, NULL, "out of memory");
        goto out;
    }
    cJSON_AddBoolToObject(ctx, "add_generation_prompt", 1);
    cJSON_AddStringToObject(ctx, "bos_token", im->bos_text);
    cJSON_AddStringToObject(ctx, "eos_token", im->eos_text);
    struct jinja_error je;
    struct jinja_opts jo = {0};
    if (jinja_render(im->tmpl, ctx, &jo, prompt, &je)) {
        rc = je.raised
                 ? bad(e, 400, "messages", NULL, "%s", je.msg)
                 : bad(e, 500, NULL, NULL, "chat template failed at line %d: %s", je.line, je.msg);
        goto out;
    }
    if (r->tool_forced)
        rc = force_tool_call(im, r, prompt, e);
out:
    cJSON_Delete(ctx);
    return rc;
}

static int parse_response_format(const cJSON *body, struct gen_request *r, struct perr *e)
{
    const cJSON *rf = cJSON_GetObjectItemCaseSensitive(body, "response_format");
    if (!rf || cJSON_IsNull(rf))
        return 0;
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(rf, "type");
    if (!cJSON_IsObject(rf) || !cJSON_IsString(type))
        return bad(e, 400, "response_format", NULL, "'response_format.type' must be a string");
    if (!strcmp(type->valuestring, "text"))
        return 0;
    if (!strcmp(type->valuestring, "json_object")) {
        r->json_mode = 1;
        return 0;
    }
    if (strcmp(type->valuestring, "json_schema"))
        return bad(e, 400, "response_format", NULL,
                   "'response_format.type' must be text, json_object or json_schema");
    const cJSON *schema = json_get(rf, "json_schema.schema");
    if (!cJSON_IsObject(schema))
        return bad(e, 400, "response_format", NULL,
                   "'response_format.json_schema.schema' must be an object");
    /* compile once here so that a bad schema is a 400 now, not a failure later */
    char err[256];
    struct jsonc *probe = jsonc_new_schema(schema, err, sizeof err);
    if (!probe)
        return bad(e, 400, "response_format", NULL, "unsupported JSON schema: %s", err);
    jsonc_free(probe);
    if (!(r->schema = cJSON_Duplicate(schema, 1)))
        return bad(e, 500, NULL, NULL, "out of memory");
    r->json_mode = 2;
    return 0;
}

int gen_request_parse(struct infer *inf, enum gen_kind kind, const char *body_text, size_t len,
                      struct gen_request *r, struct buf *msg, const char **param, const char **code)
{
    struct perr e = {msg, param, code};
    struct json_err je;
    struct buf prompt;
    struct tok_ids ids;
    int rc = 0;
    memset(r, 0, sizeof *r);
    r->kind = kind;
    *param = *code = NULL;
    buf_init(&prompt, 1 << 24);
    tok_ids_init(&ids, 1 << 20);
    cJSON *body = json_parse(body_text, len, len + 1, MAX_BODY_DEPTH, &je);
    if (!body) {
        rc = bad(&e, 400, NULL, NULL, "invalid JSON body: %s", je.msg);
        goto out;
    }
    if (!cJSON_IsObject(body)) {
        rc = bad(&e, 400, NULL, NULL, "the body must be a JSON object");
        goto out;
    }
    const char *model = "";
    if ((rc = field(&e, json_get_string(body, "model", &model, &je), &je, "model")))
        goto out;
    if (!(r->model = infer_find_model(inf, model))) {
        rc = bad(&e, 404, "model", "model_not_found", "The model '%.100s' does not exist", model);
        goto out;
    }
    struct infer_model *im = r->model;
    sampler_params_default(&r->sampling);
    double d;
    int64_t i64;
    bool b;
    r->n = 1;
    /* numbers: OpenAI's ranges */
    d = 1.0;
    if ((rc = get_num(body, "temperature", 0, 2, &d, &e)))
        goto out;
    r->sampling.temperature = (float)d;
    d = 1.0;
    if ((rc = get_num(body, "top_p", 0, 1, &d, &e)))
        goto out;
    r->sampling.top_p = (float)d;
    d = 0;
    if ((rc = get_num(body, "min_p", 0, 1, &d, &e)))
        goto out;
    r->sampling.min_p = (float)d;
    i64 = 0;
    if ((rc = get_int(body, "top_k", -1, 1 << 20, &i64, &e)))
        goto out;
    r->sampling.top_k = (int32_t)i64;
    d = 0;
    if ((rc = get_num(body, "presence_penalty", -2, 2, &d, &e)))
        goto out;
    r->sampling.presence_penalty = (float)d;
    d = 0;
    if ((rc = get_num(body, "frequency_penalty", -2, 2, &d, &e)))
        goto out;
    r->sampling.frequency_penalty = (float)d;
    d = 1;
    if ((rc = get_num(body, "repetition_penalty", 0.01, 10, &d, &e)))
        goto out;
    r->sampling.repeat_penalty = (float)d;
    r->sampling.repeat_last_n = d != 1 ? 64 : 0;
    i64 = 0;
    if ((rc = get_int(body, "seed", INT64_MIN, INT64_MAX, &i64, &e)))
        goto out;
    if (json_get(body, "seed"))
        r->sampling.seed = (uint64_t)i64;
    else
        getrandom(&r->sampling.seed, sizeof r->sampling.seed, 0);
    i64 = 1;
    if ((rc = get_int(body, "n", 1, INFER_MAX_N, &i64, &e)))
        goto out;
    r->n = (uint32_t)i64;
    i64 = 0;
    if ((rc = get_int(body, "max_tokens", 1, INT32_MAX, &i64, &e)) ||
        (rc = get_int(body, "max_completion_tokens", 1, INT32_MAX, &i64, &e)))
        goto out;
    r->max_tokens = i64 ? (uint32_t)i64 : inf->default_max_tokens;
    b = false;
    if ((rc = field(&e, json_get_bool(body, "stream", &b, &je), &je, "stream")))
        goto out;
    r->stream = b;
    b = false;
    if ((rc = field(&e, json_get_bool(body, "ignore_eos", &b, &je), &je, "ignore_eos")))
        goto out;
    r->ignore_eos = b;
    const cJSON *so = json_get(body, "stream_options");
    if (so && !cJSON_IsNull(so)) {
        b = false;
        if ((rc = field(&e, json_get_bool(body, "stream_options.include_usage", &b, &je), &je,
                        "stream_options")))
            goto out;
        r->include_usage = b;
    }
    if (kind == GEN_CHAT) {
        b = false;
        if ((rc = field(&e, json_get_bool(body, "logprobs", &b, &je), &je, "logprobs")))
            goto out;
        r->logprobs = b;
        i64 = 0;
        if ((rc = get_int(body, "top_logprobs", 0, 20, &i64, &e)))
            goto out;
        r->top_logprobs = (uint32_t)i64;
        if (r->top_logprobs && !r->logprobs) {
            rc = bad(&e, 400, "top_logprobs", NULL, "'top_logprobs' requires 'logprobs': true");
            goto out;
        }
    } else {
        i64 = -1;
        if ((rc = get_int(body, "logprobs", 0, 5, &i64, &e)))
            goto out;
        r->logprobs = i64 >= 0;
        r->top_logprobs = i64 > 0 ? (uint32_t)i64 : 0;
    }
    if ((rc = parse_stop(body, r, &e)) || (rc = parse_bias(body, r, tok_n_vocab(im->tok), &e)) ||
        (rc = parse_response_format(body, r, &e)))
        goto out;
    const char *user;
    if ((rc = field(&e, json_get_string(body, "user", &user, &je), &je, "user")))
        goto out;

    /* the prompt */
    unsigned flags = TOK_ENCODE_PARSE_SPECIAL;
    if (kind == GEN_CHAT) {
        if ((rc = render_chat(im, body, r, &prompt, &e)))
            goto out;
    } else {
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(body, "prompt");
        if (cJSON_IsArray(p) && cJSON_GetArraySize(p) == 1 && cJSON_IsString(p->child))
            p = p->child;
        if (!cJSON_IsString(p)) {
            rc = bad(&e, 400, "prompt", NULL,
                     "'prompt' must be a string (or an array of one string)");
            goto out;
        }
        if (buf_append_cstr(&prompt, p->valuestring)) {
            rc = bad(&e, 400, "prompt", NULL, "'prompt' is too long");
            goto out;
        }
        flags |= TOK_ENCODE_ADD_SPECIAL;
    }
    if (tok_encode(im->tok, prompt.data ? prompt.data : "", prompt.len, flags, &ids)) {
        rc = bad(&e, 400, kind == GEN_CHAT ? "messages" : "prompt", "context_length_exceeded",
                 "the prompt is too long");
        goto out;
    }
    if (ids.n == 0) {
        rc = bad(&e, 400, kind == GEN_CHAT ? "messages" : "prompt", NULL, "the prompt is empty");
        goto out;
    }
    if (ids.n >= im->n_ctx) {
        rc = bad(&e, 400, kind == GEN_CHAT ? "messages" : "prompt", "context_length_exceeded",
                 "This model's maximum context length is %u tokens, but the prompt has %zu "
                 "tokens",
                 im->n_ctx, ids.n);
        goto out;
    }
    r->prompt = ids.ids;
    r->n_prompt = (uint32_t)ids.n;
    ids.ids = NULL;
out:
    cJSON_Delete(body);
    buf_free(&prompt);
    tok_ids_free(&ids);
    if (rc)
        gen_request_free(r);
    return rc;
}

void gen_request_free(struct gen_request *r)
{
    if (!r)
        return;
    for (int i = 0; i < r->n_stop; i++)
        free(r->stop[i]);
    free(r->bias);
    cJSON_Delete(r->schema);
    cJSON_Delete(r->tools);
    free(r->tool_name);
    free(r->prompt);
    memset(r, 0, sizeof *r);
}
