/*
 * toolcall.c - streaming extraction of tool calls from generated text (see toolcall.h).
 *
 * One byte-at-a-time state machine per message. In text, the bytes that could
 * start the style's marker (and the whitespace before them) are held back; a
 * mismatch releases them as content. Every marker's first byte occurs in it
 * only once, so on a mismatch no shorter partial match can be pending and the
 * plain restart below is exact. A call body is collected raw (marker
 * included) so that a failed parse hands back exactly what the model wrote.
 * Not for: chat template rendering, JSON validation beyond what cJSON does.
 */
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/err.h"
#include "engine/toolcall.h"

enum tc_state {
    TC_START, /* message start (whole-message JSON styles): whitespace held */
    TC_AFTER, /* after a whole-message call: whitespace and ';' held */
    TC_TEXT,
    TC_BODY_CLOSE, /* inside open..close markers */
    TC_BODY_JSON,  /* a JSON value after a marker or at message start */
};

struct toolcall_parser {
    enum toolcall_style style;
    const char *open, *close; /* close NULL: the body ends with its JSON value */
    size_t olen, clen;
    int whole_json;
    enum tc_state st;
    struct buf hold; /* TEXT/START/AFTER: whitespace + partial marker */
    size_t mpos;     /* bytes of the open marker matched at the end of hold */
    struct buf raw;  /* body with its marker or leading whitespace */
    size_t body_off; /* where the body proper starts in raw */
    int started, depth, in_str, esc;
    int bare;      /* BODY_JSON without a marker (whole-message styles) */
    size_t key_at; /* raw offset of the first key's quote; 0 = not seen */
    int key_done;
    struct toolcall *calls;
    size_t n_calls;
    uint64_t seed;
    int finished;
    int forced;        /* the whole message is the call (toolcall_parser_new_forced) */
    char *forced_name; /* forced: the text is this function's arguments */
};

static int is_ws(int c)
{
    return c == ' ' || c == '\n' || c == '\t' || c == '\r';
}

static int contains(const char *s, size_t n, const char *needle)
{
    size_t k = strlen(needle);
    for (size_t i = 0; k <= n && i <= n - k; i++)
        if (s[i] == needle[0] && !memcmp(s + i, needle, k))
            return 1;
    return 0;
}

enum toolcall_style toolcall_detect(const char *t, size_t n)
{
    if (!t)
        return TOOLCALL_GENERIC;
    if (contains(t, n, "[TOOL_CALLS]"))
        return TOOLCALL_MISTRAL;
    if (contains(t, n, "<|tool_call|>"))
        return TOOLCALL_GRANITE;
    if (contains(t, n, "<tool_call>"))
        return TOOLCALL_HERMES;
    if (contains(t, n, "<|python_tag|>") || contains(t, n, "\"parameters\": "))
        return TOOLCALL_LLAMA3;
    return TOOLCALL_GENERIC;
}

const char *toolcall_style_name(enum toolcall_style s)
{
    switch (s) {
    case TOOLCALL_HERMES:
        return "hermes";
    case TOOLCALL_LLAMA3:
        return "llama3";
    case TOOLCALL_MISTRAL:
        return "mistral";
    case TOOLCALL_GRANITE:
        return "granite";
    case TOOLCALL_GENERIC:
        break;
    }
    return "generic";
}

struct toolcall_parser *toolcall_parser_new(enum toolcall_style style, uint64_t seed)
{
    struct toolcall_parser *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->style = style;
    p->seed = seed;
    switch (style) {
    case TOOLCALL_MISTRAL:
        p->open = "[TOOL_CALLS]";
        break;
    case TOOLCALL_GRANITE:
        p->open = "<|tool_call|>";
        break;
    case TOOLCALL_LLAMA3:
        p->open = "<|python_tag|>";
        p->whole_json = 1;
        break;
    case TOOLCALL_GENERIC:
        p->whole_json = 1;
        /* fall through */
    default:
        p->style = style == TOOLCALL_HERMES ? style : TOOLCALL_GENERIC;
        p->open = "<tool_call>";
        p->close = "</tool_call>";
        break;
    }
    p->olen = strlen(p->open);
    p->clen = p->close ? strlen(p->close) : 0;
    p->st = p->whole_json ? TC_START : TC_TEXT;
    buf_init(&p->hold, TOOLCALL_MAX_BYTES);
    buf_init(&p->raw, TOOLCALL_MAX_BYTES);
    return p;
}

struct toolcall_parser *toolcall_parser_new_forced(enum toolcall_style style, const char *name,
                                                   uint64_t seed)
{
    struct toolcall_parser *p = toolcall_parser_new(style, seed);
    if (!p)
        return NULL;
    p->forced = 1;
    p->whole_json = 1;
    p->st = TC_START;
    if (name && !(p->forced_name = strdup(name))) {
        toolcall_parser_free(p);
        return NULL;
    }
    return p;
}

int toolcall_forced_prompt(enum toolcall_style style, const char *name, int parallel,
                           struct buf *prompt, struct toolcall_form *form)
{
    const char *marker = "";
    int array_style = 0;
    form->args_key = "arguments";
    switch (style) {
    case TOOLCALL_HERMES:
        marker = "<tool_call>\n";
        break;
    case TOOLCALL_LLAMA3:
        form->args_key = "parameters";
        break;
    case TOOLCALL_MISTRAL:
        marker = "[TOOL_CALLS]";
        array_style = 1;
        break;
    case TOOLCALL_GRANITE:
        marker = "<|tool_call|>";
        array_style = 1;
        break;
    case TOOLCALL_GENERIC:
        break;
    }
    /* Generic templates show no syntax: an unmarked array, as vLLM constrains "required". */
    form->as_array = !name && parallel && (array_style || style == TOOLCALL_GENERIC);
    if (buf_append_cstr(prompt, marker))
        return AS_ENOMEM;
    /* One call in an array style: open the array here, the call is the output. */
    if (array_style && !form->as_array && buf_append_char(prompt, '['))
        return AS_ENOMEM;
    if (!name)
        return 0;
    char *quoted = NULL;
    cJSON *js = cJSON_CreateString(name);
    if (js)
        quoted = cJSON_PrintUnformatted(js);
    cJSON_Delete(js);
    int r = !quoted || buf_append_cstr(prompt, "{\"name\": ") || buf_append_cstr(prompt, quoted) ||
            buf_append_cstr(prompt, ", \"") || buf_append_cstr(prompt, form->args_key) ||
            buf_append_cstr(prompt, "\": ");
    cJSON_free(quoted);
    return r ? AS_ENOMEM : 0;
}

void toolcall_parser_free(struct toolcall_parser *p)
{
    if (!p)
        return;
    free(p->forced_name);
    for (size_t i = 0; i < p->n_calls; i++) {
        free(p->calls[i].name);
        free(p->calls[i].arguments);
    }
    free(p->calls);
    buf_free(&p->hold);
    buf_free(&p->raw);
    free(p);
}

size_t toolcall_count(const struct toolcall_parser *p)
{
    return p->n_calls;
}

const struct toolcall *toolcall_get(const struct toolcall_parser *p, size_t i)
{
    return i < p->n_calls ? &p->calls[i] : NULL;
}

int toolcall_holding(const struct toolcall_parser *p)
{
    return p->hold.len > 0 || p->st == TC_BODY_CLOSE || p->st == TC_BODY_JSON;
}

/* ---- turning JSON into calls ------------------------------------------------- */

static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static void make_id(struct toolcall_parser *p, char *id, size_t cap)
{
    static const char alnum[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    size_t o = 0;
    if (p->style != TOOLCALL_MISTRAL) {
        memcpy(id, "call_", 5);
        o = 5;
    }
    uint64_t r = mix(p->seed ^ mix(p->n_calls + 1));
    for (int i = 0; i < 9 && o + 1 < cap; i++) {
        id[o++] = alnum[r % 62];
        r /= 62;
    }
    id[o] = 0;
}

/* Name and arguments of one call object; 0, or -1 if it is not a call. */
static int call_fields(const cJSON *o, const char **name, char **args)
{
    if (!cJSON_IsObject(o))
        return -1;
    const cJSON *fn = cJSON_GetObjectItemCaseSensitive(o, "function");
    const cJSON *nm = cJSON_GetObjectItemCaseSensitive(o, "name");
    if (!nm && cJSON_IsObject(fn)) {
        o = fn;
        nm = cJSON_GetObjectItemCaseSensitive(o, "name");
    }
    if (!cJSON_IsString(nm) || !nm->valuestring[0] || strlen(nm->valuestring) > 256)
        return -1;
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, "arguments");
    if (!a)
        a = cJSON_GetObjectItemCaseSensitive(o, "parameters");
    *name = nm->valuestring;
    if (!a)
        *args = strdup("{}");
    else if (cJSON_IsString(a)) {
        /* Arguments already encoded as a string must hold a JSON object. */
        cJSON *inner = cJSON_Parse(a->valuestring);
        int ok = cJSON_IsObject(inner);
        cJSON_Delete(inner);
        if (!ok)
            return -1;
        *args = strdup(a->valuestring);
    } else if (cJSON_IsObject(a))
        *args = cJSON_PrintUnformatted(a);
    else
        return -1;
    return *args ? 0 : -1;
}

/* Parses body as one call or an array of calls and queues them. 0, or -1 (nothing queued). */
static int take_calls(struct toolcall_parser *p, const char *body, size_t n)
{
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(body, n, &end, 0);
    int r = -1;
    struct toolcall *nc = NULL;
    size_t k = 0;
    if (!j)
        return -1;
    for (const char *q = end; q && q < body + n; q++)
        if (!is_ws((unsigned char)*q))
            goto out;
    /* forced_name: the text is the arguments object of one call of that function */
    int many = !p->forced_name && cJSON_IsArray(j);
    if (p->forced_name && !cJSON_IsObject(j))
        goto out;
    size_t want = many ? (size_t)cJSON_GetArraySize(j) : 1;
    if (want == 0 || p->n_calls + want > TOOLCALL_MAX_CALLS)
        goto out;
    nc = realloc(p->calls, (p->n_calls + want) * sizeof *nc);
    if (!nc)
        goto out;
    p->calls = nc;
    const cJSON *o = many ? j->child : j;
    for (; o && k < want; o = o->next, k++) {
        struct toolcall *c = &p->calls[p->n_calls + k];
        const char *name = p->forced_name;
        char *args = NULL;
        if (name ? !(args = cJSON_PrintUnformatted(o)) : call_fields(o, &name, &args) != 0) {
            free(args);
            goto out;
        }
        c->arguments = args;
        c->name = strdup(name);
        if (!c->name) {
            k++;
            goto out;
        }
    }
    for (size_t i = 0; i < want; i++) {
        size_t save = p->n_calls;
        make_id(p, p->calls[save].id, sizeof p->calls[save].id);
        p->n_calls++;
    }
    k = 0;
    r = 0;
out:
    for (size_t i = 0; i < k; i++) {
        free(p->calls[p->n_calls + i].name);
        free(p->calls[p->n_calls + i].arguments);
    }
    cJSON_Delete(j);
    return r;
}

/* ---- the state machine ----------------------------------------------------- */

/* Gives the collected body back as text. */
static int body_failed(struct toolcall_parser *p, struct buf *content)
{
    int r = buf_append(content, p->raw.data, p->raw.len);
    buf_reset(&p->raw);
    p->st = TC_TEXT;
    return r;
}

static void json_reset(struct toolcall_parser *p)
{
    p->started = p->depth = p->in_str = p->esc = p->bare = p->key_done = 0;
    p->key_at = 0;
}

/*
 * A bare JSON message is released as text as soon as its first key shows it
 * is no call, so JSON answers still stream.
 */
static int first_key_ok(const char *k, size_t n)
{
    static const char *const keys[] = {"name", "type", "function", "arguments", "parameters", "id"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (strlen(keys[i]) == n && !memcmp(keys[i], k, n))
            return 1;
    return 0;
}

static int flush_hold(struct toolcall_parser *p, struct buf *content)
{
    int r = buf_append(content, p->hold.data, p->hold.len);
    buf_reset(&p->hold);
    p->mpos = 0;
    return r;
}

static int text_byte(struct toolcall_parser *p, int c, struct buf *content)
{
    char ch = (char)c;
    if (p->mpos > 0) {
        if (c == (unsigned char)p->open[p->mpos]) {
            if (buf_append_char(&p->hold, ch))
                return AS_ENOMEM;
            if (++p->mpos < p->olen)
                return 0;
            /*
             * Marker complete: the whitespace before it goes with the body,
             * dropped if a call comes out, given back if not.
             */
            buf_reset(&p->raw);
            if (buf_append(&p->raw, p->hold.data, p->hold.len))
                return AS_ENOMEM;
            p->body_off = p->hold.len;
            buf_reset(&p->hold);
            p->mpos = 0;
            json_reset(p);
            p->st = p->close ? TC_BODY_CLOSE : TC_BODY_JSON;
            return 0;
        }
        if (flush_hold(p, content))
            return AS_ENOMEM;
    }
    if (c == (unsigned char)p->open[0]) {
        p->mpos = 1;
        return buf_append_char(&p->hold, ch);
    }
    if (is_ws(c) && p->hold.len < 4096)
        return buf_append_char(&p->hold, ch);
    if (flush_hold(p, content))
        return AS_ENOMEM;
    return buf_append_char(content, ch);
}

/* raw is full: the body is not a call; give it and c back as text. */
static int body_overflow(struct toolcall_parser *p, int c, struct buf *content)
{
    if (body_failed(p, content))
        return AS_ENOMEM;
    return buf_append_char(content, (char)c);
}

static int json_byte(struct toolcall_parser *p, int c, struct buf *content)
{
    if (buf_append_char(&p->raw, (char)c))
        return body_overflow(p, c, content);
    if (!p->started) {
        if (is_ws(c))
            return 0;
        if (c != '{' && c != '[')
            return body_failed(p, content);
        p->started = 1;
        p->depth = 1;
        return 0;
    }
    if (p->in_str) {
        if (p->esc) {
            p->esc = 0;
        } else if (c == '\\') {
            p->esc = 1;
        } else if (c == '"') {
            p->in_str = 0;
            if (p->key_at && !p->key_done) {
                p->key_done = 1;
                if (!first_key_ok(p->raw.data + p->key_at + 1, p->raw.len - p->key_at - 2))
                    return body_failed(p, content);
            }
        }
        return 0;
    }
    if (c == '"') {
        p->in_str = 1;
        if (p->bare && !p->key_done && !p->key_at && p->depth == 1 &&
            p->raw.data[p->body_off] == '{')
            p->key_at = p->raw.len - 1;
    } else if (c == '{' || c == '[')
        p->depth++;
    else if (c == '}' || c == ']')
        p->depth--;
    if (p->depth > 0)
        return 0;
    if (take_calls(p, p->raw.data + p->body_off, p->raw.len - p->body_off))
        return body_failed(p, content);
    buf_reset(&p->raw);
    p->st = p->whole_json ? TC_AFTER : TC_TEXT;
    return 0;
}

static int close_byte(struct toolcall_parser *p, int c, struct buf *content)
{
    if (buf_append_char(&p->raw, (char)c))
        return body_overflow(p, c, content);
    /* The closing tag inside a JSON string (arguments quoting it) does not close. */
    if (p->in_str) {
        if (p->esc)
            p->esc = 0;
        else if (c == '\\')
            p->esc = 1;
        else if (c == '"')
            p->in_str = 0;
        return 0;
    }
    if (c == '"') {
        p->in_str = 1;
        return 0;
    }
    size_t n = p->raw.len - p->body_off;
    if (n < p->clen || memcmp(p->raw.data + p->raw.len - p->clen, p->close, p->clen))
        return 0;
    if (take_calls(p, p->raw.data + p->body_off, n - p->clen))
        return body_failed(p, content);
    buf_reset(&p->raw);
    p->st = TC_TEXT;
    return 0;
}

static int start_byte(struct toolcall_parser *p, int c, struct buf *content)
{
    if ((is_ws(c) || (p->st == TC_AFTER && c == ';')) && p->hold.len < 4096)
        return buf_append_char(&p->hold, (char)c);
    if (c == '{' || c == '[') {
        /* Held whitespace goes into raw so a failure gives it back. */
        buf_reset(&p->raw);
        if (buf_append(&p->raw, p->hold.data, p->hold.len))
            return AS_ENOMEM;
        p->body_off = p->hold.len;
        buf_reset(&p->hold);
        json_reset(p);
        p->bare = !p->forced; /* a forced call's first key may be any argument's */
        p->st = TC_BODY_JSON;
        return json_byte(p, c, content);
    }
    p->st = TC_TEXT;
    return text_byte(p, c, content);
}

int toolcall_feed(struct toolcall_parser *p, const char *text, size_t n, struct buf *content)
{
    if (p->finished)
        return AS_EINVAL;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)text[i], r = 0;
        switch (p->st) {
        case TC_START:
        case TC_AFTER:
            r = start_byte(p, c, content);
            break;
        case TC_TEXT:
            r = text_byte(p, c, content);
            break;
        case TC_BODY_CLOSE:
            r = close_byte(p, c, content);
            break;
        case TC_BODY_JSON:
            r = json_byte(p, c, content);
            break;
        }
        if (r)
            return r;
    }
    return 0;
}

int toolcall_finish(struct toolcall_parser *p, struct buf *content)
{
    if (p->finished)
        return AS_EINVAL;
    p->finished = 1;
    int r = 0;
    if (p->st == TC_BODY_CLOSE) {
        /* EOS cut the closing tag: a complete call before it still counts. */
        if (take_calls(p, p->raw.data + p->body_off, p->raw.len - p->body_off) == 0)
            buf_reset(&p->raw);
        else
            r = body_failed(p, content);
    } else if (p->st == TC_BODY_JSON) {
        r = body_failed(p, content);
    }
    if (flush_hold(p, content))
        r = AS_ENOMEM;
    return r;
}
