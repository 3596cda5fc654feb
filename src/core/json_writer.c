/*
 * json_writer.c - the streaming JSON writer and string escaper (see json.h).
 *
 * The writer is on the per-token path of every streamed completion, so it
 * avoids printf for strings and integers, tests 8 bytes at a time for bytes
 * that need escaping and copies unescaped runs with one memcpy. Doubles use
 * json_format_double (fewest digits that round-trip).
 */
#include "core/buf.h"
#include "core/err.h"
#include "core/json.h"

#include <math.h>
#include <string.h>

/* ---- writer ---------------------------------------------------------------- */

/*
 * Inlined appends: the common case (room left) costs a compare and a memcpy
 * instead of a call into buf.c. buf keeps cap <= max + 1, so fitting in cap
 * also means fitting under max.
 */
static inline int out_bytes(struct buf *b, const char *p, size_t n)
{
    if (b->data && b->cap - b->len > n) {
        memcpy(b->data + b->len, p, n);
        b->len += n;
        b->data[b->len] = '\0';
        return 0;
    }
    return buf_append(b, p, n);
}

static inline int out_char(struct buf *b, char c)
{
    if (b->data && b->cap - b->len > 1) {
        b->data[b->len++] = c;
        b->data[b->len] = '\0';
        return 0;
    }
    return buf_append_char(b, c);
}

/* 0: copy as is; 1: ASCII needing an escape; 2: non-ASCII (validate). */
static const unsigned char esc_class[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
};

#define ONES  0x0101010101010101ull
#define HIGHS 0x8080808080808080ull

/* Nonzero if some byte of x is < 0x20, '"', '\\' or >= 0x80 (may flag extra bytes after one). */
static inline uint64_t swar_special(uint64_t x)
{
    uint64_t q = x ^ (ONES * '"'), bs = x ^ (ONES * '\\');
    uint64_t lt = x - ONES * 0x20;
    uint64_t zq = q - ONES, zb = bs - ONES;
    return ((lt & ~x) | (zq & ~q) | (zb & ~bs) | x) & HIGHS;
}

int json_append_str(struct buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *u = (const unsigned char *)s;
    /* The common case (nothing to escape) needs exactly n + 2 bytes. */
    if (!(b->data && b->cap - b->len > n + 2) && buf_reserve(b, n + 2))
        return AS_ENOMEM;
    b->data[b->len++] = '"';
    size_t run = 0, i = 0;
    while (i < n) {
        /* Skip 8 plain ASCII bytes at a time (no control char, quote, backslash or high bit). */
        while (n - i >= 8) {
            uint64_t x;
            memcpy(&x, u + i, 8);
            if (swar_special(x))
                break;
            i += 8;
        }
        if (i >= n)
            break;
        if (n - i < 8 && n >= 8) { /* tail: test the last 8 bytes (overlapping) in one go */
            uint64_t x;
            memcpy(&x, u + n - 8, 8);
            if (!swar_special(x)) {
                i = n;
                break;
            }
        }
        unsigned char cls = esc_class[u[i]];
        if (cls == 0) {
            i++;
            continue;
        }
        size_t k = 0;
        if (cls == 2 && (k = json_utf8_seq(u + i, n - i)) != 0) {
            i += k;
            continue;
        }
        if (out_bytes(b, s + run, i - run))
            return AS_ENOMEM;
        char e[6];
        size_t en = 2;
        e[0] = '\\';
        switch (u[i]) {
        case '"':
            e[1] = '"';
            break;
        case '\\':
            e[1] = '\\';
            break;
        case '\n':
            e[1] = 'n';
            break;
        case '\r':
            e[1] = 'r';
            break;
        case '\t':
            e[1] = 't';
            break;
        case '\b':
            e[1] = 'b';
            break;
        case '\f':
            e[1] = 'f';
            break;
        default:
            if (cls == 2) { /* invalid UTF-8 byte: U+FFFD */
                e[0] = (char)0xEF, e[1] = (char)0xBF, e[2] = (char)0xBD;
                en = 3;
            } else {
                e[1] = 'u', e[2] = '0', e[3] = '0', e[4] = hex[u[i] >> 4], e[5] = hex[u[i] & 15];
                en = 6;
            }
        }
        if (out_bytes(b, e, en))
            return AS_ENOMEM;
        run = ++i;
    }
    if (out_bytes(b, s + run, n - run) || out_char(b, '"'))
        return AS_ENOMEM;
    return 0;
}

void json_writer_init(struct json_writer *w, struct buf *b)
{
    memset(w, 0, sizeof *w);
    w->b = b;
}

int json_writer_finish(const struct json_writer *w)
{
    if (w->err)
        return w->err;
    return w->depth == 0 && w->top_done && !w->after_key ? 0 : AS_EINVAL;
}

enum { ST_OBJ = 1, ST_COMMA = 2 };

static inline int fail(struct json_writer *w, int err)
{
    if (!w->err)
        w->err = err;
    return w->err;
}

/* Writes the separator a value needs here, or fails on misuse. */
static inline int before_value(struct json_writer *w)
{
    if (w->err)
        return w->err;
    if (w->depth == 0) {
        if (w->top_done)
            return fail(w, AS_EINVAL);
        return 0;
    }
    uint8_t *st = &w->state[w->depth];
    if (*st & ST_OBJ) {
        if (!w->after_key)
            return fail(w, AS_EINVAL);
        w->after_key = false;
        return 0;
    }
    if ((*st & ST_COMMA) && out_char(w->b, ','))
        return fail(w, AS_ENOMEM);
    *st |= ST_COMMA;
    return 0;
}

static inline int after_value(struct json_writer *w, int rc)
{
    if (rc)
        return fail(w, rc);
    if (w->depth == 0)
        w->top_done = true;
    return 0;
}

static int put(struct json_writer *w, const char *s, size_t n)
{
    if (before_value(w))
        return w->err;
    return after_value(w, out_bytes(w->b, s, n));
}

static int open_container(struct json_writer *w, char c, uint8_t st)
{
    if (before_value(w))
        return w->err;
    if (w->depth >= JSON_WRITER_MAX_DEPTH)
        return fail(w, AS_ERANGE);
    if (out_char(w->b, c))
        return fail(w, AS_ENOMEM);
    w->state[++w->depth] = st;
    return 0;
}

static int close_container(struct json_writer *w, char c, uint8_t obj)
{
    if (w->err)
        return w->err;
    if (w->depth == 0 || (w->state[w->depth] & ST_OBJ) != obj || w->after_key)
        return fail(w, AS_EINVAL);
    if (out_char(w->b, c))
        return fail(w, AS_ENOMEM);
    w->depth--;
    return after_value(w, 0);
}

int json_obj_begin(struct json_writer *w)
{
    return open_container(w, '{', ST_OBJ);
}

int json_obj_end(struct json_writer *w)
{
    return close_container(w, '}', ST_OBJ);
}

int json_arr_begin(struct json_writer *w)
{
    return open_container(w, '[', 0);
}

int json_arr_end(struct json_writer *w)
{
    return close_container(w, ']', 0);
}

int json_keyn(struct json_writer *w, const char *k, size_t n)
{
    if (w->err)
        return w->err;
    uint8_t *st = &w->state[w->depth];
    if (w->depth == 0 || !(*st & ST_OBJ) || w->after_key)
        return fail(w, AS_EINVAL);
    if ((*st & ST_COMMA) && out_char(w->b, ','))
        return fail(w, AS_ENOMEM);
    *st |= ST_COMMA;
    if (json_append_str(w->b, k, n) || out_char(w->b, ':'))
        return fail(w, AS_ENOMEM);
    w->after_key = true;
    return 0;
}

int json_key(struct json_writer *w, const char *k)
{
    return json_keyn(w, k, strlen(k));
}

int json_strn(struct json_writer *w, const char *s, size_t n)
{
    if (!s)
        return json_null(w);
    if (before_value(w))
        return w->err;
    return after_value(w, json_append_str(w->b, s, n));
}

int json_str(struct json_writer *w, const char *s)
{
    return json_strn(w, s, s ? strlen(s) : 0);
}

int json_uint(struct json_writer *w, uint64_t v)
{
    char tmp[24];
    char *p = json__u64_digits(v, tmp + sizeof tmp);
    return put(w, p, (size_t)(tmp + sizeof tmp - p));
}

int json_int(struct json_writer *w, int64_t v)
{
    char tmp[24];
    uint64_t mag = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    char *p = json__u64_digits(mag, tmp + sizeof tmp);
    if (v < 0)
        *--p = '-';
    return put(w, p, (size_t)(tmp + sizeof tmp - p));
}

int json_double(struct json_writer *w, double v)
{
    if (!isfinite(v))
        return json_null(w);
    char tmp[JSON_DOUBLE_MAX];
    size_t n = json_format_double(tmp, v);
    return put(w, tmp, n);
}

int json_bool(struct json_writer *w, bool v)
{
    return v ? put(w, "true", 4) : put(w, "false", 5);
}

int json_null(struct json_writer *w)
{
    return put(w, "null", 4);
}

int json_raw(struct json_writer *w, const char *json, size_t n)
{
    return put(w, json, n);
}

int json_cjson(struct json_writer *w, const cJSON *v)
{
    if (!v)
        return json_null(w);
    if (cJSON_IsObject(v)) {
        json_obj_begin(w);
        for (const cJSON *c = v->child; c && !w->err; c = c->next) {
            json_key(w, c->string ? c->string : "");
            json_cjson(w, c);
        }
        return json_obj_end(w);
    }
    if (cJSON_IsArray(v)) {
        json_arr_begin(w);
        for (const cJSON *c = v->child; c && !w->err; c = c->next)
            json_cjson(w, c);
        return json_arr_end(w);
    }
    if (cJSON_IsString(v))
        return json_str(w, v->valuestring);
    if (cJSON_IsNumber(v))
        return json_double(w, v->valuedouble);
    if (cJSON_IsBool(v))
        return json_bool(w, cJSON_IsTrue(v));
    if (cJSON_IsRaw(v) && v->valuestring)
        return json_raw(w, v->valuestring, strlen(v->valuestring));
    return json_null(w);
}

int json_kv_str(struct json_writer *w, const char *k, const char *s)
{
    json_key(w, k);
    return json_str(w, s);
}

int json_kv_int(struct json_writer *w, const char *k, int64_t v)
{
    json_key(w, k);
    return json_int(w, v);
}

int json_kv_double(struct json_writer *w, const char *k, double v)
{
    json_key(w, k);
    return json_double(w, v);
}

int json_kv_bool(struct json_writer *w, const char *k, bool v)
{
    json_key(w, k);
    return json_bool(w, v);
}

int json_kv_null(struct json_writer *w, const char *k)
{
    json_key(w, k);
    return json_null(w);
}
