/* test_sse.c - unit tests for the incremental SSE parser (src/core/sse.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/sse.h"

/* Events serialised as "[type|data|id|retry]" so whole sequences compare as strings. */
struct collect {
    struct buf out;
    int n;
    int stop_after; /* return 7 from the callback after this many events (0 = never) */
};

static int collect_cb(void *ud, const struct sse_event *ev)
{
    struct collect *c = ud;
    assert_int_equal(strlen(ev->type), ev->type_len);
    assert_int_equal(strlen(ev->id), ev->id_len);
    buf_append_char(&c->out, '[');
    buf_append(&c->out, ev->type, ev->type_len);
    buf_append_char(&c->out, '|');
    buf_append(&c->out, ev->data, ev->data_len);
    buf_printf(&c->out, "|%s|%ld]", ev->id, ev->retry_ms);
    c->n++;
    if (c->stop_after && c->n >= c->stop_after)
        return 7;
    return 0;
}

/* Parses s in one feed and returns the serialised events (caller frees c->out). */
static void parse_all(struct collect *c, const char *s, size_t n, int *feed_rc, int *finish_rc)
{
    struct sse_parser p;
    memset(c, 0, sizeof(*c));
    buf_init(&c->out, 1 << 20);
    sse_parser_init(&p, 64, 256, collect_cb, c);
    *feed_rc = sse_parser_feed(&p, s, n);
    *finish_rc = sse_parser_finish(&p);
    sse_parser_free(&p);
}

static const char *events_of(struct collect *c)
{
    return c->out.data ? c->out.data : "";
}

static void test_basic(void **state)
{
    (void)state;
    struct collect c;
    int rc, frc;
    const char *s = "data: hello\n\n"
                    "event: add\ndata: 73857293\n\n"
                    "data: a\ndata:b\ndata:  c\n\n"
                    "id: 42\nretry: 1500\ndata\n\n"
                    ": comment line\n\n"
                    "event: lonely\n\n"
                    "data: after\nunknown: field\n\n";
    parse_all(&c, s, strlen(s), &rc, &frc);
    assert_int_equal(rc, 0);
    assert_int_equal(frc, 0);
    assert_string_equal(events_of(&c), "[|hello||-1]"
                                       "[add|73857293||-1]"
                                       "[|a\nb\n c||-1]"
                                       "[||42|1500]"
                                       "[|after|42|-1]");
    buf_free(&c.out);
}

static void test_line_endings(void **state)
{
    (void)state;
    struct collect c;
    int rc, frc;
    const char *s = "data: crlf\r\n\r\ndata: cr\r\rdata: x\r\ndata: y\n\r\n";
    parse_all(&c, s, strlen(s), &rc, &frc);
    assert_int_equal(rc, 0);
    assert_int_equal(frc, 0);
    assert_string_equal(events_of(&c), "[|crlf||-1][|cr||-1][|x\ny||-1]");
    buf_free(&c.out);
}

static void test_bom_and_ids(void **state)
{
    (void)state;
    struct collect c;
    int rc, frc;
    /* A BOM is stripped only at the very start; "id" with a NUL is ignored. */
    const char s[] = "\xEF\xBB\xBF"
                     "data: 1\nid: a\n\n"
                     "id: b\0c\ndata: 2\n\n"
                     "retry: 12x\ndata: 3\n\n";
    parse_all(&c, s, sizeof(s) - 1, &rc, &frc);
    assert_int_equal(rc, 0);
    assert_string_equal(events_of(&c), "[|1|a|-1][|2|a|-1][|3|a|-1]");
    buf_free(&c.out);

    const char t[] = "\xEF\xBB"
                     "data: x\n\n";
    parse_all(&c, t, sizeof(t) - 1, &rc, &frc);
    assert_int_equal(rc, 0);
    assert_int_equal(c.n, 0); /* field "\xEF\xBBdata" is unknown */
    buf_free(&c.out);
}

static void test_finish_reports_cut_stream(void **state)
{
    (void)state;
    struct collect c;
    int rc, frc;
    parse_all(&c, "data: 1\n\ndata: partial", 22, &rc, &frc);
    assert_int_equal(rc, 0);
    assert_int_equal(frc, AS_EFORMAT);
    assert_string_equal(events_of(&c), "[|1||-1]");
    buf_free(&c.out);

    parse_all(&c, "data: 1\n\ndata: 2\n", 17, &rc, &frc);
    assert_int_equal(frc, AS_EFORMAT); /* event not terminated by a blank line: dropped */
    assert_int_equal(c.n, 1);
    buf_free(&c.out);

    parse_all(&c, "data: 1\n\n: ping\n", 16, &rc, &frc);
    assert_int_equal(frc, 0); /* a trailing comment is not a cut event */
    buf_free(&c.out);
}

static void test_limits(void **state)
{
    (void)state;
    struct collect c;
    int rc, frc;
    char big[200];
    memset(big, 'x', sizeof(big));
    memcpy(big, "data: ", 6);
    big[sizeof(big) - 1] = '\n';
    /* line limit is 64 in parse_all: one 199-byte line must fail, in one feed or many */
    parse_all(&c, big, sizeof(big), &rc, &frc);
    assert_int_equal(rc, AS_ERANGE);
    assert_int_equal(frc, AS_ERANGE);
    buf_free(&c.out);

    struct sse_parser p;
    memset(&c, 0, sizeof(c));
    buf_init(&c.out, 1 << 16);
    sse_parser_init(&p, 64, 256, collect_cb, &c);
    for (size_t i = 0; i < sizeof(big) - 1; i++) {
        rc = sse_parser_feed(&p, big + i, 1);
        if (rc)
            break;
    }
    assert_int_equal(rc, AS_ERANGE);
    assert_int_equal(sse_parser_feed(&p, "\n\n", 2), AS_ERANGE); /* sticky */
    sse_parser_reset(&p);
    assert_int_equal(sse_parser_feed(&p, "data: ok\n\n", 10), 0);
    assert_string_equal(events_of(&c), "[|ok||-1]");

    /* event limit 256: many short data lines add up */
    sse_parser_reset(&p);
    rc = 0;
    for (int i = 0; i < 100 && rc == 0; i++)
        rc = sse_parser_feed(&p, "data: 0123456789\n", 17);
    assert_int_equal(rc, AS_ERANGE);
    sse_parser_free(&p);
    buf_free(&c.out);
}

static void test_callback_stop(void **state)
{
    (void)state;
    struct collect c;
    struct sse_parser p;
    memset(&c, 0, sizeof(c));
    buf_init(&c.out, 1 << 16);
    c.stop_after = 2;
    sse_parser_init(&p, 0, 0, collect_cb, &c);
    const char *s = "data: 1\n\ndata: 2\n\ndata: 3\n\n";
    assert_int_equal(sse_parser_feed(&p, s, strlen(s)), 7);
    assert_int_equal(c.n, 2);
    sse_parser_free(&p);
    buf_free(&c.out);
}

/* The stream used by the split tests: every feature, every line ending. */
static const char split_stream[] = "\xEF\xBB\xBF: hello\r\n"
                                   "event: first\r\ndata: {\"a\":1}\r\nid: 9\r\n\r\n"
                                   "data: line1\rdata: line2\r\r"
                                   "data\n\n"
                                   "retry: 250\ndata: x\n\n"
                                   "data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\n"
                                   "event:e\r\ndata:crlf at end\r\n\r\n"
                                   "data: [DONE]\n\n";

static void test_split_every_position(void **state)
{
    (void)state;
    const size_t n = sizeof(split_stream) - 1;
    struct collect ref;
    int rc, frc;
    parse_all(&ref, split_stream, n, &rc, &frc);
    assert_int_equal(rc, 0);
    assert_int_equal(frc, 0);
    assert_int_equal(ref.n, 7);

    for (size_t cut = 0; cut <= n; cut++) {
        struct collect c;
        struct sse_parser p;
        memset(&c, 0, sizeof(c));
        buf_init(&c.out, 1 << 16);
        sse_parser_init(&p, 64, 256, collect_cb, &c);
        assert_int_equal(sse_parser_feed(&p, split_stream, cut), 0);
        assert_int_equal(sse_parser_feed(&p, split_stream + cut, n - cut), 0);
        assert_int_equal(sse_parser_finish(&p), 0);
        assert_string_equal(events_of(&c), events_of(&ref));
        sse_parser_free(&p);
        buf_free(&c.out);
    }
    /* and one byte at a time, and in three pieces at every pair of positions */
    for (size_t a = 0; a <= n; a += 1) {
        for (size_t b = a; b <= n; b += 3) {
            struct collect c;
            struct sse_parser p;
            memset(&c, 0, sizeof(c));
            buf_init(&c.out, 1 << 16);
            sse_parser_init(&p, 64, 256, collect_cb, &c);
            assert_int_equal(sse_parser_feed(&p, split_stream, a), 0);
            assert_int_equal(sse_parser_feed(&p, split_stream + a, b - a), 0);
            assert_int_equal(sse_parser_feed(&p, split_stream + b, n - b), 0);
            assert_int_equal(sse_parser_finish(&p), 0);
            assert_string_equal(events_of(&c), events_of(&ref));
            sse_parser_free(&p);
            buf_free(&c.out);
        }
    }
    struct collect c;
    struct sse_parser p;
    memset(&c, 0, sizeof(c));
    buf_init(&c.out, 1 << 16);
    sse_parser_init(&p, 64, 256, collect_cb, &c);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(sse_parser_feed(&p, split_stream + i, 1), 0);
    assert_int_equal(sse_parser_finish(&p), 0);
    assert_string_equal(events_of(&c), events_of(&ref));
    sse_parser_free(&p);
    buf_free(&c.out);
    buf_free(&ref.out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic),
        cmocka_unit_test(test_line_endings),
        cmocka_unit_test(test_bom_and_ids),
        cmocka_unit_test(test_finish_reports_cut_stream),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_callback_stop),
        cmocka_unit_test(test_split_every_position),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
