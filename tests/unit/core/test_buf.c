/* test_buf.c - bounded buffer, JSON string escaping, error body, log helpers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/log.h"

static void test_append_and_max(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 8);
    assert_int_equal(buf_append_cstr(&b, "abcd"), 0);
    assert_int_equal(buf_append_cstr(&b, "efgh"), 0);
    assert_int_equal(b.len, 8);
    assert_string_equal(b.data, "abcdefgh");
    /* one byte past the maximum fails and leaves the buffer unchanged */
    assert_int_equal(buf_append_char(&b, 'x'), AS_ENOMEM);
    assert_int_equal(b.len, 8);
    assert_string_equal(b.data, "abcdefgh");
    buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_int_equal(buf_printf(&b, "%d-%s", 42, "ok"), 0);
    assert_string_equal(b.data, "42-ok");
    assert_int_equal(buf_printf(&b, "%s", "toolong"), AS_ENOMEM);
    buf_free(&b);
    buf_free(NULL);
}

static void test_printf_large(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 1 << 20);
    char big[1000];
    memset(big, 'q', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    for (int i = 0; i < 100; i++)
        assert_int_equal(buf_printf(&b, "%s%d", big, i), 0);
    assert_int_equal(b.len, 100 * 999 + 10 * 1 + 90 * 2);
    assert_int_equal(strlen(b.data), b.len);
    char *s = buf_steal(&b);
    assert_null(b.data);
    assert_int_equal(s[0], 'q');
    free(s);
}

static void test_json_escape_roundtrip(void **state)
{
    (void)state;
    /* every byte 1..127 plus UTF-8 must survive a parse by cJSON */
    char in[200];
    size_t n = 0;
    for (int c = 1; c < 128; c++)
        in[n++] = (char)c;
    memcpy(in + n, "\xc3\xa9\xe2\x82\xac", 5);
    n += 5;
    struct buf b;
    buf_init(&b, 4096);
    assert_int_equal(buf_append_json_str(&b, in, n), 0);
    cJSON *j = cJSON_ParseWithLength(b.data, b.len);
    assert_non_null(j);
    assert_true(cJSON_IsString(j));
    assert_int_equal(strlen(j->valuestring), n);
    assert_memory_equal(j->valuestring, in, n);
    cJSON_Delete(j);
    /* a too-small buffer fails cleanly */
    struct buf s;
    buf_init(&s, 4);
    assert_int_equal(buf_append_json_str(&s, "\n\n\n", 3), AS_ENOMEM);
    buf_free(&s);
    buf_free(&b);
}

static void test_error_body(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 4096);
    assert_int_equal(as_error_body(&b, "bad \"x\"", "invalid_request_error", "x", NULL), 0);
    cJSON *j = cJSON_Parse(b.data);
    assert_non_null(j);
    cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
    assert_string_equal(cJSON_GetObjectItem(e, "message")->valuestring, "bad \"x\"");
    assert_string_equal(cJSON_GetObjectItem(e, "type")->valuestring, "invalid_request_error");
    assert_string_equal(cJSON_GetObjectItem(e, "param")->valuestring, "x");
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(e, "code")));
    cJSON_Delete(j);
    buf_free(&b);
    assert_string_equal(as_error_type_for_status(429), "rate_limit_error");
    assert_string_equal(as_error_type_for_status(502), "server_error");
    assert_string_equal(as_error_type_for_status(400), "invalid_request_error");
    assert_string_equal(as_strerror(AS_ENOMEM), "out of memory");
    assert_string_equal(as_strerror(12345), "unknown error");
}

static void test_log_helpers(void **state)
{
    (void)state;
    enum log_level l;
    assert_int_equal(log_parse_level("warn", &l), 0);
    assert_int_equal(l, LOG_WARN);
    assert_int_equal(log_parse_level("loud", &l), AS_EINVAL);
    char a[33], b[33];
    log_new_request_id(a);
    log_new_request_id(b);
    assert_int_equal(strlen(a), 32);
    assert_true(strspn(a, "0123456789abcdef") == 32);
    assert_string_not_equal(a, b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append_and_max),        cmocka_unit_test(test_printf_large),
        cmocka_unit_test(test_json_escape_roundtrip), cmocka_unit_test(test_error_body),
        cmocka_unit_test(test_log_helpers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
