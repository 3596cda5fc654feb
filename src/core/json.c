/*
 * json.c - bounded cJSON parsing, typed getters and the streaming writer (see json.h).
 *
 * The writer is on the per-token path of every streamed completion, so it
 * avoids printf for strings and integers and copies unescaped runs with one
 * memcpy. Doubles use printf with the fewest digits that round-trip.
 */
#include "core/json.h"
#include "core/buf.h"
#include "core/err.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- errors ---------------------------------------------------------------- */

void json_err_set(struct json_err *err, const char *path, const char *fmt, ...)
{
    if (!err)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    snprintf(err->param, sizeof err->param, "%s", path ? path : "");
}

/* ---- parsing --------------------------------------------------------------- */

/* Deepest nesting of [ and { outside strings, stopping early once past limit. */
static int max_nesting(const char *s, size_t n, int limit)
{
    int depth = 0, deepest = 0;
    bool in_str = false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = false;
        } else if (c == '"') {
            in_str = true;
        } else if (c == '[' || c == '{') {
            if (++depth > deepest && (deepest = depth) > limit)
                return deepest;
        } else if ((c == ']' || c == '}') && depth > 0) {
            depth--;
        }
    }
    return deepest;
}

cJSON *json_parse(const char *data, size_t len, size_t max_bytes, int max_depth,
                  struct json_err *err)
{
    if (!max_bytes)
        max_bytes = JSON_DEFAULT_MAX_BYTES;
    if (max_depth <= 0)
        max_depth = JSON_DEFAULT_MAX_DEPTH;
    if (len > max_bytes) {
        json_err_set(err, NULL, "request body exceeds %zu bytes", max_bytes);
        return NULL;
    }
    if (!data || len == 0) {
        json_err_set(err, NULL, "request body is empty; expected JSON");
        return NULL;
    }
    if (max_nesting(data, len, max_depth) > max_depth) {
        json_err_set(err, NULL, "JSON nested deeper than %d levels", max_depth);
        return NULL;
    }
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(data, len, &end, 0);
    if (!root) {
        size_t at = end && end >= data && end <= data + len ? (size_t)(end - data) : 0;
        json_err_set(err, NULL, "invalid JSON at byte %zu", at);
        return NULL;
    }
    for (const char *p = end; p && p < data + len; p++) {
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            json_err_set(err, NULL, "unexpected data after JSON value at byte %zu",
                         (size_t)(p - data));
            cJSON_Delete(root);
            return NULL;
        }
    }
    return root;
}

/* ---- getters --------------------------------------------------------------- */

const cJSON *json_get(const cJSON *obj, const char *path)
{
    char seg[256];
    const cJSON *cur = obj;
    const char *p = path;
    if (!obj || !path)
        return NULL;
    while (cur) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        if (n >= sizeof seg)
            return NULL;
        memcpy(seg, p, n);
        seg[n] = '\0';
        if (cJSON_IsArray(cur)) {
            char *e = NULL;
            if (n == 0 || seg[0] < '0' || seg[0] > '9')
                return NULL;
            unsigned long idx = strtoul(seg, &e, 10);
            if (*e || idx > 1000000000ul)
                return NULL;
            cur = cJSON_GetArrayItem(cur, (int)idx);
        } else if (cJSON_IsObject(cur)) {
            cur = cJSON_GetObjectItemCaseSensitive(cur, seg);
        } else {
            return NULL;
        }
        if (!dot)
            return cur;
        p = dot + 1;
    }
    return NULL;
}

/* The node at path, or NULL with AS_ENOENT reported ("'x' is required"). */
static const cJSON *get_present(const cJSON *obj, const char *path, struct json_err *err)
{
    const cJSON *v = json_get(obj, path);
    if (!v || cJSON_IsNull(v)) {
        json_err_set(err, path, "'%s' is required", path);
        return NULL;
    }
    return v;
}

int json_get_string(const cJSON *obj, const char *path, const char **out, struct json_err *err)
{
    const cJSON *v = get_present(obj, path, err);
    if (!v)
        return AS_ENOENT;
    if (!cJSON_IsString(v) || !v->valuestring) {
        json_err_set(err, path, "'%s' must be a string", path);
        return AS_EINVAL;
    }
    *out = v->valuestring;
    return 0;
}

int json_get_int(const cJSON *obj, const char *path, int64_t min, int64_t max, int64_t *out,
                 struct json_err *err)
{
    const cJSON *v = get_present(obj, path, err);
    if (!v)
        return AS_ENOENT;
    double d = v->valuedouble;
    /* 2^63 is exactly representable; anything >= it does not fit int64. */
    if (!cJSON_IsNumber(v) || !isfinite(d) || d != floor(d) || d >= 9223372036854775808.0 ||
        d < -9223372036854775808.0) {
        json_err_set(err, path, "'%s' must be an integer", path);
        return AS_EINVAL;
    }
    int64_t i = (int64_t)d;
    if (i < min || i > max) {
        json_err_set(err, path, "'%s' must be between %lld and %lld", path, (long long)min,
                     (long long)max);
        return AS_EINVAL;
    }
    *out = i;
    return 0;
}

int json_get_double(const cJSON *obj, const char *path, double min, double max, double *out,
                    struct json_err *err)
{
    const cJSON *v = get_present(obj, path, err);
    if (!v)
        return AS_ENOENT;
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble)) {
        json_err_set(err, path, "'%s' must be a number", path);
        return AS_EINVAL;
    }
    if (v->valuedouble < min || v->valuedouble > max) {
        char a[JSON_DOUBLE_MAX], b[JSON_DOUBLE_MAX];
        json_format_double(a, min);
        json_format_double(b, max);
        json_err_set(err, path, "'%s' must be between %s and %s", path, a, b);
        return AS_EINVAL;
    }
    *out = v->valuedouble;
    return 0;
}

int json_get_bool(const cJSON *obj, const char *path, bool *out, struct json_err *err)
{
    const cJSON *v = get_present(obj, path, err);
    if (!v)
        return AS_ENOENT;
    if (!cJSON_IsBool(v)) {
        json_err_set(err, path, "'%s' must be a boolean", path);
        return AS_EINVAL;
    }
    *out = cJSON_IsTrue(v);
    return 0;
}

int json_get_object(const cJSON *obj, const char *path, const cJSON **out, struct json_err *err)
{
    const cJSON *v = get_present(obj, path, err);
    if (!v)
        return AS_ENOENT;
    if (!cJSON_IsObject(v)) {
        json_err_set(err, path, "'%s' must be an object", path);
        return AS_EINVAL;
    }
    *out = v;
    return 0;
}

int json_get_array(const cJSON *obj, const char *path, const cJSON **out, struct json_err *err)
{
    const cJSON *v = get_present(obj, path, err);
    if (!v)
        return AS_ENOENT;
    if (!cJSON_IsArray(v)) {
        json_err_set(err, path, "'%s' must be an array", path);
        return AS_EINVAL;
    }
    *out = v;
    return 0;
}

/* ---- numbers --------------------------------------------------------------- */

/* Decimal digits of v into the end of tmp[24]; returns the start. */
static char *u64_digits(uint64_t v, char *end)
{
    char *p = end;
    do {
        *--p = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return p;
}

size_t json_format_double(char out[JSON_DOUBLE_MAX], double v)
{
    if (isnan(v)) {
        memcpy(out, "NaN", 4);
        return 3;
    }
    if (isinf(v)) {
        memcpy(out, v > 0 ? "+Inf" : "-Inf", 5);
        return 4;
    }
    if (v == floor(v) && fabs(v) < 1e16) {
        char tmp[24], *end = tmp + sizeof tmp;
        char *p = u64_digits((uint64_t)fabs(v), end);
        if (signbit(v))
            *--p = '-';
        size_t n = (size_t)(end - p);
        memcpy(out, p, n);
        out[n] = '\0';
        return n;
    }
    int n = 0;
    for (int prec = 15; prec <= 17; prec++) {
        n = snprintf(out, JSON_DOUBLE_MAX, "%.*g", prec, v);
        if (prec == 17 || strtod(out, NULL) == v)
            break;
    }
    return n > 0 ? (size_t)n : 0;
}

/* ---- UTF-8 ----------------------------------------------------------------- */

/* For a lead byte: sequence length and the allowed range of the second byte. */
static int utf8_lead(unsigned char c, unsigned char *lo, unsigned char *hi)
{
    *lo = 0x80, *hi = 0xBF;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        return 2;
    if (c >= 0xE0 && c <= 0xEF) {
        if (c == 0xE0)
            *lo = 0xA0; /* no overlongs */
        else if (c == 0xED)
            *hi = 0x9F; /* no surrogates */
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (c == 0xF0)
            *lo = 0x90;
        else if (c == 0xF4)
            *hi = 0x8F; /* <= U+10FFFF */
        return 4;
    }
    return 0;
}

/* Number of leading bytes of s[0..n) that form a valid (possibly incomplete) sequence. */
static size_t utf8_valid_prefix(const unsigned char *s, size_t n, int *need)
{
    unsigned char lo, hi;
    int len = utf8_lead(s[0], &lo, &hi);
    *need = len;
    if (len == 0)
        return 0;
    size_t k = 1;
    for (; k < (size_t)len && k < n; k++) {
        unsigned char c = s[k];
        if (k == 1 ? (c < lo || c > hi) : (c < 0x80 || c > 0xBF))
            return 0;
    }
    return k;
}

size_t json__utf8_seq(const unsigned char *s, size_t n)
{
    if (n == 0)
        return 0;
    if (s[0] < 0x80)
        return 1;
    int need;
    size_t k = utf8_valid_prefix(s, n, &need);
    return k && k == (size_t)need ? k : 0;
}

size_t json_utf8_complete_len(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    /* The last sequence starts at most 3 bytes before the end. */
    for (size_t back = 1; back <= 4 && back <= n; back++) {
        unsigned char c = u[n - back];
        if ((c & 0xC0) == 0x80)
            continue; /* continuation byte: keep looking for its lead */
        int need;
        size_t k = utf8_valid_prefix(u + n - back, back, &need);
        if (need > 1 && k == back && back < (size_t)need)
            return n - back; /* valid so far but incomplete: hold it back */
        return n;
    }
    return n;
}

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
        if (cls == 2 && (k = json__utf8_seq(u + i, n - i)) != 0) {
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
    char *p = u64_digits(v, tmp + sizeof tmp);
    return put(w, p, (size_t)(tmp + sizeof tmp - p));
}

int json_int(struct json_writer *w, int64_t v)
{
    char tmp[24];
    uint64_t mag = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    char *p = u64_digits(mag, tmp + sizeof tmp);
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
