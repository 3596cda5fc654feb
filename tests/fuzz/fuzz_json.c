/*
 * fuzz_json.c - json_parse + the streaming writer on hostile bytes.
 *
 * Properties checked: parsing never crashes; a parsed tree re-serialized by
 * the writer is valid UTF-8, re-parses, and serializes to the same bytes
 * again; the string escaper's output is always valid UTF-8 JSON and, for valid
 * UTF-8 input without NUL, decodes back to the input; the typed getters never
 * crash on any tree.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool valid_utf8(const char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        size_t k = json_utf8_seq((const unsigned char *)s + i, n - i);
        if (!k)
            return false;
        i += k;
    }
    return true;
}

static void write_tree(const cJSON *j, struct buf *out)
{
    struct json_writer w;
    buf_reset(out);
    json_writer_init(&w, out);
    json_cjson(&w, j);
    if (json_writer_finish(&w) != 0)
        abort();
    if (!valid_utf8(out->data, out->len))
        abort();
}

static void check_string_escaper(const uint8_t *data, size_t size)
{
    struct buf b;
    buf_init(&b, 16u << 20);
    if (json_append_str(&b, (const char *)data, size))
        abort();
    if (!valid_utf8(b.data, b.len))
        abort();
    for (size_t i = 0; i < b.len; i++)
        if ((unsigned char)b.data[i] < 0x20)
            abort();
    cJSON *j = json_parse(b.data, b.len, 0, 0, NULL);
    if (!j || !cJSON_IsString(j))
        abort();
    if (valid_utf8((const char *)data, size) && !memchr(data, 0, size) &&
        (strlen(j->valuestring) != size || memcmp(j->valuestring, data, size) != 0))
        abort();
    cJSON_Delete(j);
    buf_free(&b);

    size_t keep = json_utf8_complete_len((const char *)data, size);
    if (keep > size || size - keep > 3)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct json_err err;
    check_string_escaper(data, size);

    cJSON *j = json_parse((const char *)data, size, 1u << 20, 0, &err);
    if (!j)
        return 0;
    const char *s;
    int64_t i;
    double d;
    bool b;
    const cJSON *o;
    json_get_string(j, "model", &s, &err);
    json_get_int(j, "max_tokens", 1, 1 << 20, &i, &err);
    json_get_double(j, "temperature", 0, 2, &d, &err);
    json_get_bool(j, "stream", &b, &err);
    json_get_array(j, "messages", &o, &err);
    json_get_string(j, "messages.0.content", &s, &err);
    json_get_object(j, "response_format", &o, &err);
    json_get(j, "a.b.0.c.1");

    struct buf one, two;
    buf_init(&one, 64u << 20);
    buf_init(&two, 64u << 20);
    write_tree(j, &one);
    cJSON *k = json_parse(one.data, one.len, 64u << 20, 0, &err);
    if (!k)
        abort();
    write_tree(k, &two);
    if (one.len != two.len || memcmp(one.data, two.data, one.len) != 0)
        abort();
    cJSON_Delete(k);
    cJSON_Delete(j);
    buf_free(&one);
    buf_free(&two);
    return 0;
}
