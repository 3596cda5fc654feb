/* test_json.c - bounded parsing, typed getters, number formatting, UTF-8, the writer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/json.h"

static cJSON *parse(const char *s, struct json_err *e)
{
    return json_parse(s, strlen(s), 0, 0, e);
}

static void test_parse_limits(void **state)
{
    (void)state;
    struct json_err e;
    cJSON *j = parse(" {\"a\": [1, 2, {\"b\": null}]} \n", &e);
    assert_non_null(j);
    cJSON_Delete(j);

    assert_null(json_parse("{\"a\":1}", 7, 6, 0, &e));
    assert_string_equal(e.msg, "request body exceeds 6 bytes");
    assert_null(parse("", &e));
    assert_null(parse("{\"a\":}", &e));
    assert_string_equal(e.msg, "invalid JSON at byte 5");
    assert_null(parse("{} x", &e));
    assert_string_equal(e.msg, "unexpected data after JSON value at byte 3");
    /* brackets inside strings do not count as nesting */
    j = json_parse("[\"[[[[[[\\\"[[[[\"]", 16, 0, 2, &e);
    assert_non_null(j);
    cJSON_Delete(j);

    /* deep nesting is refused before cJSON recurses */
    size_t n = 100000;
    char *deep = malloc(2 * n);
    memset(deep, '[', n);
    memset(deep + n, ']', n);
    assert_null(json_parse(deep, 2 * n, 0, 0, &e));
    assert_string_equal(e.msg, "JSON nested deeper than 64 levels");
    assert_null(json_parse(deep + n - 5, 10, 0, 4, &e));
    j = json_parse(deep + n - 4, 8, 0, 4, &e);
    assert_non_null(j);
    cJSON_Delete(j);
    free(deep);

    /* input need not be NUL-terminated: only len bytes are read */
    char exact[2] = {'[', ']'};
    j = json_parse(exact, 2, 0, 0, &e);
    assert_non_null(j);
    cJSON_Delete(j);
}

static void test_getters(void **state)
{
    (void)state;
    struct json_err e;
    cJSON *j = parse("{\"model\":\"m\",\"n\":3,\"t\":0.5,\"s\":true,\"bad\":7,\"nul\":null,"
                     "\"big\":1e30,\"frac\":2.5,"
                     "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"},{\"role\":5}],"
                     "\"rf\":{\"type\":\"json_object\"}}",
                     &e);
    assert_non_null(j);
    const char *s = NULL;
    int64_t i = 0;
    double d = 0;
    bool b = false;
    const cJSON *o = NULL;

    assert_int_equal(json_get_string(j, "model", &s, &e), 0);
    assert_string_equal(s, "m");
    assert_int_equal(json_get_string(j, "bad", &s, &e), AS_EINVAL);
    assert_string_equal(e.msg, "'bad' must be a string");
    assert_string_equal(e.param, "bad");
    assert_int_equal(json_get_string(j, "absent", &s, &e), AS_ENOENT);
    assert_string_equal(e.msg, "'absent' is required");
    assert_int_equal(json_get_string(j, "nul", &s, &e), AS_ENOENT);

    assert_int_equal(json_get_int(j, "n", 1, 10, &i, &e), 0);
    assert_int_equal(i, 3);
    assert_int_equal(json_get_int(j, "n", 4, 10, &i, &e), AS_EINVAL);
    assert_string_equal(e.msg, "'n' must be between 4 and 10");
    assert_int_equal(json_get_int(j, "frac", 0, 10, &i, &e), AS_EINVAL);
    assert_string_equal(e.msg, "'frac' must be an integer");
    assert_int_equal(json_get_int(j, "big", INT64_MIN, INT64_MAX, &i, &e), AS_EINVAL);
    assert_int_equal(json_get_int(j, "model", 0, 1, &i, &e), AS_EINVAL);

    assert_int_equal(json_get_double(j, "t", 0, 2, &d, &e), 0);
    assert_true(d == 0.5);
    assert_int_equal(json_get_double(j, "t", 1, 2, &d, &e), AS_EINVAL);
    assert_string_equal(e.msg, "'t' must be between 1 and 2");
    assert_int_equal(json_get_double(j, "s", 0, 1, &d, &e), AS_EINVAL);
    assert_string_equal(e.msg, "'s' must be a number");

    assert_int_equal(json_get_bool(j, "s", &b, &e), 0);
    assert_true(b);
    assert_int_equal(json_get_bool(j, "n", &b, &e), AS_EINVAL);
    assert_string_equal(e.msg, "'n' must be a boolean");

    assert_int_equal(json_get_string(j, "messages.0.content", &s, &e), 0);
    assert_string_equal(s, "hi");
    assert_int_equal(json_get_string(j, "messages.1.role", &s, &e), AS_EINVAL);
    assert_string_equal(e.msg, "'messages.1.role' must be a string");
    assert_string_equal(e.param, "messages.1.role");
    assert_int_equal(json_get_string(j, "messages.2.role", &s, &e), AS_ENOENT);
    assert_int_equal(json_get_string(j, "messages.x", &s, &e), AS_ENOENT);
    assert_int_equal(json_get_string(j, "rf.type", &s, &e), 0);
    assert_string_equal(s, "json_object");
    assert_int_equal(json_get_object(j, "rf", &o, &e), 0);
    assert_int_equal(json_get_object(j, "messages", &o, &e), AS_EINVAL);
    assert_string_equal(e.msg, "'messages' must be an object");
    assert_int_equal(json_get_array(j, "messages", &o, &e), 0);
    assert_int_equal(cJSON_GetArraySize(o), 2);
    assert_int_equal(json_get_array(j, "rf", &o, &e), AS_EINVAL);
    /* err may be NULL */
    assert_int_equal(json_get_string(j, "bad", &s, NULL), AS_EINVAL);
    cJSON_Delete(j);
}

static void check_double(double v, const char *want)
{
    char out[JSON_DOUBLE_MAX];
    size_t n = json_format_double(out, v);
    assert_int_equal(n, strlen(out));
    if (want)
        assert_string_equal(out, want);
    if (isfinite(v))
        assert_true(strtod(out, NULL) == v);
}

static void test_format_double(void **state)
{
    (void)state;
    check_double(0, "0");
    check_double(-0.0, "-0");
    check_double(1, "1");
    check_double(-42, "-42");
    check_double(0.1, "0.1");
    check_double(0.3, "0.3");
    check_double(1.0 / 3, "0.3333333333333333");
    check_double(0.1 + 0.2, "0.30000000000000004");
    check_double(1e300, "1e+300");
    check_double(123456789012345.0, "123456789012345");
    check_double(5e-324, "4.94065645841247e-324");
    check_double(1.7976931348623157e308, "1.7976931348623157e+308");
    check_double(NAN, "NaN");
    check_double(INFINITY, "+Inf");
    check_double(-INFINITY, "-Inf");
    /* random bit patterns round-trip */
    uint64_t x = 88172645463325252ull;
    for (int i = 0; i < 20000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        double d;
        memcpy(&d, &x, sizeof d);
        check_double(d, NULL);
    }
}

/* True if s[0..n) is valid UTF-8. */
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

static void test_utf8(void **state)
{
    (void)state;
    const unsigned char *u = (const unsigned char *)"\xE2\x82\xAC";
    assert_int_equal(json_utf8_seq(u, 3), 3);
    assert_int_equal(json_utf8_seq(u, 2), 0);
    assert_int_equal(json_utf8_seq((const unsigned char *)"\xC0\xAF", 2), 0);     /* overlong */
    assert_int_equal(json_utf8_seq((const unsigned char *)"\xED\xA0\x80", 3), 0); /* surrogate */
    assert_int_equal(json_utf8_seq((const unsigned char *)"\xF4\x90\x80\x80", 4), 0);
    assert_int_equal(json_utf8_seq((const unsigned char *)"\xF0\x9F\x98\x80", 4), 4);

    assert_int_equal(json_utf8_complete_len("abc", 3), 3);
    assert_int_equal(json_utf8_complete_len("abc\xE2\x82", 5), 3);
    assert_int_equal(json_utf8_complete_len("abc\xE2", 4), 3);
    assert_int_equal(json_utf8_complete_len("abc\xE2\x82\xAC", 6), 6);
    assert_int_equal(json_utf8_complete_len("\xF0\x9F\x98", 3), 0);
    assert_int_equal(json_utf8_complete_len("\xF0\x9F\x98\x80", 4), 4);
    /* invalid tails are not held back (they will be replaced) */
    assert_int_equal(json_utf8_complete_len("a\xff", 2), 2);
    assert_int_equal(json_utf8_complete_len("a\xE2"
                                            "b",
                                            3),
                     3);
    assert_int_equal(json_utf8_complete_len("\x80\x80\x80\x80\x80", 5), 5);
    assert_int_equal(json_utf8_complete_len("", 0), 0);
}

static void test_writer_chunk(void **state)
{
    (void)state;
    struct buf b;
    struct json_writer w;
    buf_init(&b, 4096);
    json_writer_init(&w, &b);
    json_obj_begin(&w);
    json_kv_str(&w, "id", "chatcmpl-1");
    json_kv_str(&w, "object", "chat.completion.chunk");
    json_kv_int(&w, "created", 1700000000);
    json_kv_str(&w, "model", "m");
    json_key(&w, "choices");
    json_arr_begin(&w);
    json_obj_begin(&w);
    json_kv_int(&w, "index", 0);
    json_key(&w, "delta");
    json_obj_begin(&w);
    json_kv_str(&w, "content", "Hi \"there\"\n");
    json_obj_end(&w);
    json_key(&w, "logprobs");
    json_arr_begin(&w);
    json_double(&w, -0.25);
    json_double(&w, NAN);
    json_uint(&w, UINT64_MAX);
    json_int(&w, INT64_MIN);
    json_bool(&w, false);
    json_str(&w, NULL);
    json_arr_begin(&w);
    json_arr_end(&w);
    json_arr_end(&w);
    json_kv_null(&w, "finish_reason");
    json_kv_bool(&w, "t", true);
    json_kv_double(&w, "x", 1e-7);
    json_obj_end(&w);
    json_arr_end(&w);
    json_obj_end(&w);
    assert_int_equal(json_writer_finish(&w), 0);
    assert_string_equal(
        b.data,
        "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,"
        "\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi "
        "\\\"there\\\"\\n\"},\"logprobs\":[-0.25,null,18446744073709551615,"
        "-9223372036854775808,false,null,[]],\"finish_reason\":null,\"t\":true,\"x\":1e-07}]}");
    cJSON *j = json_parse(b.data, b.len, 0, 0, NULL);
    assert_non_null(j);
    cJSON_Delete(j);
    buf_free(&b);
}

static void test_writer_misuse(void **state)
{
    (void)state;
    struct buf b;
    struct json_writer w;
    buf_init(&b, 4096);

    json_writer_init(&w, &b);
    json_obj_begin(&w);
    assert_int_equal(json_int(&w, 1), AS_EINVAL); /* value without key */
    assert_int_equal(json_writer_finish(&w), AS_EINVAL);

    json_writer_init(&w, &b);
    json_arr_begin(&w);
    assert_int_equal(json_key(&w, "k"), AS_EINVAL); /* key in array */

    json_writer_init(&w, &b);
    json_obj_begin(&w);
    assert_int_equal(json_arr_end(&w), AS_EINVAL); /* mismatched end */

    json_writer_init(&w, &b);
    json_obj_begin(&w);
    json_key(&w, "k");
    assert_int_equal(json_obj_end(&w), AS_EINVAL); /* dangling key */

    json_writer_init(&w, &b);
    json_int(&w, 1);
    assert_int_equal(json_int(&w, 2), AS_EINVAL); /* two top-level values */

    json_writer_init(&w, &b);
    json_obj_begin(&w);
    assert_int_equal(json_writer_finish(&w), AS_EINVAL); /* unclosed */

    json_writer_init(&w, &b);
    for (int i = 0; i < JSON_WRITER_MAX_DEPTH; i++)
        assert_int_equal(json_arr_begin(&w), 0);
    assert_int_equal(json_arr_begin(&w), AS_ERANGE);

    /* a full buffer is a sticky AS_ENOMEM */
    struct buf small;
    buf_init(&small, 10);
    json_writer_init(&w, &small);
    json_obj_begin(&w);
    json_kv_str(&w, "key", "a long value");
    assert_int_equal(json_writer_finish(&w), AS_ENOMEM);
    assert_int_equal(json_obj_end(&w), AS_ENOMEM);
    buf_free(&small);
    buf_free(&b);
}

static void test_writer_escaping(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 1 << 16);
    /* every byte value, one at a time */
    for (int c = 0; c < 256; c++) {
        char in[3] = {'a', (char)c, 'b'};
        buf_reset(&b);
        assert_int_equal(json_append_str(&b, in, 3), 0);
        assert_true(valid_utf8(b.data, b.len));
        for (size_t i = 0; i < b.len; i++)
            assert_true((unsigned char)b.data[i] >= 0x20);
        cJSON *j = json_parse(b.data, b.len, 0, 0, NULL);
        assert_non_null(j);
        if (c >= 1 && c < 0x80) /* NUL truncates inside cJSON; non-ASCII is replaced */
            assert_memory_equal(j->valuestring, in, 3);
        else if (c >= 0x80)
            assert_string_equal(j->valuestring, "a\xEF\xBF\xBD"
                                                "b");
        cJSON_Delete(j);
    }
    buf_reset(&b);
    assert_int_equal(json_append_str(&b, "\x01\x1f\"\\/\b\f\n\r\t", 10), 0);
    assert_string_equal(b.data, "\"\\u0001\\u001f\\\"\\\\/\\b\\f\\n\\r\\t\"");
    /* half of a 3-byte character at the end of a token */
    buf_reset(&b);
    assert_int_equal(json_append_str(&b, "x\xE2\x82", 3), 0);
    assert_string_equal(b.data, "\"x\xEF\xBF\xBD\xEF\xBF\xBD\"");
    /* valid multibyte text passes through unchanged */
    buf_reset(&b);
    const char *ok = "h\xC3\xA9llo \xE2\x82\xAC \xF0\x9F\x98\x80";
    assert_int_equal(json_append_str(&b, ok, strlen(ok)), 0);
    assert_int_equal(b.len, strlen(ok) + 2);
    assert_memory_equal(b.data + 1, ok, strlen(ok));
    /* random bytes: always valid UTF-8, always re-parses */
    uint32_t x = 12345;
    char rnd[64];
    for (int it = 0; it < 5000; it++) {
        for (size_t i = 0; i < sizeof rnd; i++) {
            x = x * 1103515245u + 12345u;
            rnd[i] = (char)(x >> 16);
        }
        buf_reset(&b);
        assert_int_equal(json_append_str(&b, rnd, (size_t)(it % 64)), 0);
        assert_true(valid_utf8(b.data, b.len));
        cJSON *j = json_parse(b.data, b.len, 0, 0, NULL);
        assert_non_null(j);
        cJSON_Delete(j);
    }
    buf_free(&b);
}

static void test_writer_cjson_roundtrip(void **state)
{
    (void)state;
    const char *in = "{\"a\":[1,2.5,-3e-9,true,false,null,\"x\\u0000y\"],\"b\":{\"c\":{}},"
                     "\"d\":[],\"e\":\"\\u00e9\\ud83d\\ude00\",\"big\":12345678901234567890}";
    cJSON *j = json_parse(in, strlen(in), 0, 0, NULL);
    assert_non_null(j);
    struct buf b;
    struct json_writer w;
    buf_init(&b, 4096);
    json_writer_init(&w, &b);
    json_cjson(&w, j);
    assert_int_equal(json_writer_finish(&w), 0);
    assert_string_equal(b.data, "{\"a\":[1,2.5,-3e-09,true,false,null,\"x\"],\"b\":{\"c\":{}},"
                                "\"d\":[],\"e\":\"\xC3\xA9\xF0\x9F\x98\x80\","
                                "\"big\":1.2345678901234567e+19}");
    cJSON *k = json_parse(b.data, b.len, 0, 0, NULL);
    assert_non_null(k);
    assert_true(cJSON_Compare(j, k, 1));
    cJSON_Delete(k);
    cJSON_Delete(j);
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_limits),    cmocka_unit_test(test_getters),
        cmocka_unit_test(test_format_double),   cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_writer_chunk),    cmocka_unit_test(test_writer_misuse),
        cmocka_unit_test(test_writer_escaping), cmocka_unit_test(test_writer_cjson_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
