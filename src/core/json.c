/*
 * json.c - bounded cJSON parsing, typed getters, number formatting and UTF-8
 * helpers (see json.h). The streaming writer is in json_writer.c.
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

char *json__u64_digits(uint64_t v, char *end)
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
        char *p = json__u64_digits((uint64_t)fabs(v), end);
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

size_t json_utf8_seq(const unsigned char *s, size_t n)
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
