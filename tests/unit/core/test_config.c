/* test_config.c - config layers (default < file < env < flag), messages, YAML tree, parsers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"

static const struct cfg_option schema[] = {
    {.key = "server.port",
     .type = CFG_INT,
     .def = "8080",
     .help = "TCP port to listen on",
     .min = 1,
     .max = 65535,
     .alias = "port"},
    {.key = "server.host", .type = CFG_STRING, .def = "127.0.0.1", .help = "Address to bind"},
    {.key = "server.request_timeout",
     .type = CFG_DURATION,
     .def = "30s",
     .help = "Deadline",
     .min = 1,
     .max = 3600000},
    {.key = "server.max_body", .type = CFG_SIZE, .def = "10MB", .help = "Largest body"},
    {.key = "verbose", .type = CFG_BOOL, .def = "false", .help = "Chatty logs", .alias = "v"},
    {.key = "sampling.temperature",
     .type = CFG_DOUBLE,
     .def = "0.7",
     .help = "Temperature",
     .dmin = 0,
     .dmax = 2},
    {.key = "cors.origins", .type = CFG_STRLIST, .def = "a.com, b.com", .help = "Origins"},
    {.key = "model_list", .type = CFG_NODE, .help = "Models to route"},
    {.key = "workers", .type = CFG_INT, .help = "Worker threads"},
    CFG_END,
};

static char g_path[64];

/* Writes text to a fresh temp file; returns its path (static). */
static const char *write_file(const char *text)
{
    snprintf(g_path, sizeof g_path, "/tmp/aistack_cfg_XXXXXX");
    int fd = mkstemp(g_path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return g_path;
}

static int load(const char *file_text, char **env, int argc, char **argv, struct config **c,
                struct buf *msg)
{
    char *noenv[] = {NULL};
    const char *file = file_text ? write_file(file_text) : NULL;
    buf_reset(msg);
    int rc = config_load_ex(schema, argc, argv, env ? env : noenv, file, c, msg);
    if (file)
        unlink(file);
    return rc;
}

static void test_defaults(void **state)
{
    (void)state;
    struct buf msg;
    struct config *c = NULL;
    char *argv[] = {"svc", NULL};
    buf_init(&msg, 1 << 16);
    assert_int_equal(load(NULL, NULL, 1, argv, &c, &msg), 0);
    assert_int_equal(config_int(c, "server.port"), 8080);
    assert_string_equal(config_str(c, "server.host"), "127.0.0.1");
    assert_int_equal(config_duration_ms(c, "server.request_timeout"), 30000);
    assert_int_equal(config_size(c, "server.max_body"), 10000000);
    assert_false(config_bool(c, "verbose"));
    assert_true(config_double(c, "sampling.temperature") == 0.7);
    size_t n = 0;
    const char *const *l = config_strlist(c, "cors.origins", &n);
    assert_int_equal(n, 2);
    assert_string_equal(l[0], "a.com");
    assert_string_equal(l[1], "b.com");
    assert_null(config_node(c, "model_list"));
    assert_int_equal(config_int(c, "workers"), 0);
    assert_false(config_is_set(c, "server.port"));
    assert_string_equal(config_source(c, "server.port"), "default");
    assert_null(config_file(c));
    config_free(c);
    config_free(NULL);
    buf_free(&msg);
}

static const char *FILE_OK = "# service config\n"
                             "server:\n"
                             "  port: 9000\n"
                             "  host: \"0.0.0.0\"\n"
                             "  request_timeout: 1m30s\n"
                             "  max_body: 1GiB\n"
                             "verbose: yes\n"
                             "sampling: {temperature: 1.25}\n"
                             "cors:\n"
                             "  origins:\n"
                             "    - x.org\n"
                             "    - 'y.org'\n"
                             "model_list:\n"
                             "  - model_name: gpt-4o\n"
                             "    params: {model: openai/gpt-4o, rpm: 60}\n"
                             "  - model_name: local\n";

static void test_file_and_tree(void **state)
{
    (void)state;
    struct buf msg;
    struct config *c = NULL;
    char *argv[] = {"svc", NULL};
    buf_init(&msg, 1 << 16);
    assert_int_equal(load(FILE_OK, NULL, 1, argv, &c, &msg), 0);
    assert_int_equal(config_int(c, "server.port"), 9000);
    assert_string_equal(config_str(c, "server.host"), "0.0.0.0");
    assert_int_equal(config_duration_ms(c, "server.request_timeout"), 90000);
    assert_int_equal(config_size(c, "server.max_body"), 1073741824);
    assert_true(config_bool(c, "verbose"));
    assert_true(config_double(c, "sampling.temperature") == 1.25);
    size_t n = 0;
    const char *const *l = config_strlist(c, "cors.origins", &n);
    assert_int_equal(n, 2);
    assert_string_equal(l[1], "y.org");
    char want[96];
    snprintf(want, sizeof want, "%s:3", g_path);
    assert_string_equal(config_source(c, "server.port"), want);
    assert_true(config_is_set(c, "server.port"));
    assert_string_equal(config_file(c), g_path);

    const struct cfg_node *ml = config_node(c, "model_list");
    assert_non_null(ml);
    assert_int_equal(ml->type, CFG_NODE_SEQ);
    assert_int_equal(ml->n, 2);
    assert_int_equal(ml->line, 14);
    const struct cfg_node *m0 = ml->items[0];
    assert_int_equal(m0->type, CFG_NODE_MAP);
    assert_string_equal(cfg_node_get(m0, "model_name")->str, "gpt-4o");
    const struct cfg_node *params = cfg_node_get(m0, "params");
    assert_int_equal(params->line, 15);
    assert_string_equal(cfg_node_get(params, "rpm")->str, "60");
    assert_true(cfg_node_get(params, "rpm")->plain);
    assert_int_equal(m0->key_lines[1], 15);
    assert_null(cfg_node_get(m0, "nope"));
    assert_int_equal(ml->items[1]->line, 16);
    config_free(c);
    buf_free(&msg);
}

static void test_precedence(void **state)
{
    (void)state;
    struct buf msg;
    struct config *c = NULL;
    buf_init(&msg, 1 << 16);
    char *env[] = {
        "PATH=/bin",           "AISTACK_SERVER_PORT=9001", "AISTACK_CORS_ORIGINS= p.io ,q.io,",
        "AISTACK_VERBOSE=off", "AISTACK_UNRELATED=1",      NULL};
    char *argv1[] = {"svc", NULL};
    assert_int_equal(load(FILE_OK, env, 1, argv1, &c, &msg), 0);
    assert_int_equal(config_int(c, "server.port"), 9001);
    assert_string_equal(config_source(c, "server.port"), "env AISTACK_SERVER_PORT");
    assert_false(config_bool(c, "verbose"));
    size_t n = 0;
    const char *const *l = config_strlist(c, "cors.origins", &n);
    assert_int_equal(n, 2);
    assert_string_equal(l[0], "p.io");
    assert_string_equal(l[1], "q.io");
    config_free(c);

    char *argv2[] = {
        "svc", "--server-port", "9002", "--verbose", "--server-host=::1", "--workers=4", NULL};
    assert_int_equal(load(FILE_OK, env, 6, argv2, &c, &msg), 0);
    assert_int_equal(config_int(c, "server.port"), 9002);
    assert_string_equal(config_source(c, "server.port"), "flag --server-port");
    assert_true(config_bool(c, "verbose"));
    assert_string_equal(config_str(c, "server.host"), "::1");
    assert_int_equal(config_int(c, "workers"), 4);
    config_free(c);

    /* aliases, --no-<bool>, a later flag wins over an earlier one */
    char *argv3[] = {"svc", "--port=1", "-v", "--no-verbose", "--port", "2", NULL};
    assert_int_equal(load(NULL, NULL, 6, argv3, &c, &msg), 0);
    assert_int_equal(config_int(c, "server.port"), 2);
    assert_false(config_bool(c, "verbose"));
    config_free(c);

    /* --config on the command line beats AISTACK_CONFIG and the default path */
    char path[64];
    write_file("server: {port: 7777}\n");
    snprintf(path, sizeof path, "%s", g_path);
    char envc[128];
    snprintf(envc, sizeof envc, "AISTACK_CONFIG=/nonexistent/x.yaml");
    char *env2[] = {envc, NULL};
    char *argv4[] = {"svc", "--config", path, NULL};
    char *noenv[] = {NULL};
    buf_reset(&msg);
    assert_int_equal(config_load_ex(schema, 3, argv4, env2, "/nonexistent/y.yaml", &c, &msg), 0);
    assert_int_equal(config_int(c, "server.port"), 7777);
    config_free(c);
    buf_reset(&msg);
    assert_int_equal(config_load_ex(schema, 1, argv4, env2, NULL, &c, &msg), AS_EINVAL);
    assert_non_null(strstr(msg.data, "/nonexistent/x.yaml: cannot open config file"));
    assert_null(c);
    char *argv5[] = {"svc", "-c", path, NULL};
    assert_int_equal(config_load_ex(schema, 3, argv5, noenv, NULL, &c, &msg), 0);
    assert_int_equal(config_int(c, "server.port"), 7777);
    config_free(c);
    unlink(path);
    buf_free(&msg);
}

static void test_errors(void **state)
{
    (void)state;
    struct buf msg;
    struct config *c = NULL;
    buf_init(&msg, 1 << 16);
    const char *bad = "server:\n"
                      "  prot: 80\n"
                      "  port: abc\n"
                      "  request_timeout: 30\n"
                      "  max_body: lots\n"
                      "verbose: maybe\n"
                      "sampling:\n"
                      "  temperature: 3\n"
                      "cors: {origins: x.org}\n"
                      "extra: 1\n"
                      "workers: [1, 2]\n"
                      "server_host: x\n";
    char *env[] = {"AISTACK_SERVER_REQUEST_TIMEOUT=2h", "AISTACK_WORKERS=", NULL};
    char *argv[] = {"svc",   "--server-porr", "1",           "--port",
                    "70000", "stray",         "--verbose=2", "--workers"};
    assert_int_equal(load(bad, env, 8, argv, &c, &msg), AS_EINVAL);
    assert_null(c);
    const char *f = g_path;
    char want[256];
#define HAS(...)                                                                                   \
    do {                                                                                           \
        snprintf(want, sizeof want, __VA_ARGS__);                                                  \
        if (!strstr(msg.data, want))                                                               \
            fail_msg("missing '%s' in:\n%s", want, msg.data);                                      \
    } while (0)
    HAS("%s:2: key 'server.prot': unknown key (did you mean 'server.port'?)\n", f);
    HAS("%s:3: key 'server.port': expected an integer, got 'abc'\n", f);
    HAS("%s:4: key 'server.request_timeout': expected a duration like 30s, 500ms, 1m30s or 2h, "
        "got '30'\n",
        f);
    HAS("%s:5: key 'server.max_body': expected a size like 512, 64KB, 10MB or 1GiB, got 'lots'\n",
        f);
    HAS("%s:6: key 'verbose': expected true or false, got 'maybe'\n", f);
    HAS("%s:8: key 'sampling.temperature': 3 is out of range [0, 2]\n", f);
    HAS("%s:9: key 'cors.origins': expected a list\n", f);
    HAS("%s:10: key 'extra': unknown key\n", f);
    HAS("%s:11: key 'workers': expected a single value, not a list\n", f);
    HAS("%s:12: key 'server_host': unknown key (did you mean 'server.host'?)\n", f);
    HAS("env AISTACK_SERVER_REQUEST_TIMEOUT: 2h is out of range [1ms, 1h]\n");
    HAS("env AISTACK_WORKERS: expected an integer, got ''\n");
    HAS("flag --server-porr: unknown flag (did you mean --server-port?)\n");
    HAS("flag --port: 70000 is out of range [1, 65535]\n");
    HAS("argument 'stray': unexpected");
    HAS("flag --verbose: expected true or false, got '2'\n");
    HAS("flag --workers: missing value\n");
    /* one line per problem */
    size_t lines = 0;
    for (size_t i = 0; i < msg.len; i++)
        lines += msg.data[i] == '\n';
    assert_int_equal(lines, 17);

    /* YAML-level problems carry the line too */
    assert_int_equal(load("server:\n  port: 1\n  port: 2\n", NULL, 1, argv, &c, &msg), AS_EINVAL);
    HAS("%s:3: duplicate key 'port'\n", g_path);
    assert_int_equal(load("a: &x 1\nb: *x\n", NULL, 1, argv, &c, &msg), AS_EINVAL);
    HAS("%s:2: YAML aliases (*name) are not supported\n", g_path);
    assert_int_equal(load("server:\n  port: [1\n", NULL, 1, argv, &c, &msg), AS_EINVAL);
    HAS("%s:3: invalid YAML: ", g_path);
    assert_int_equal(load("- 1\n- 2\n", NULL, 1, argv, &c, &msg), AS_EINVAL);
    HAS("%s:1: the file must be a mapping of settings (key: value)\n", g_path);
    assert_int_equal(load("a: 1\n---\nb: 2\n", NULL, 1, argv, &c, &msg), AS_EINVAL);
    HAS("only one YAML document is allowed");
    assert_int_equal(load("server:\n  port:\n", NULL, 1, argv, &c, &msg), AS_EINVAL);
    HAS("%s:2: key 'server.port': missing value\n", g_path);
    assert_int_equal(load("server: 5\n", NULL, 1, argv, &c, &msg), AS_EINVAL);
    HAS("%s:1: key 'server': expected a mapping of settings\n", g_path);
    /* an empty file and an empty section are fine */
    assert_int_equal(load("", NULL, 1, argv, &c, &msg), 0);
    config_free(c);
    assert_int_equal(load("server:\n# nothing yet\n", NULL, 1, argv, &c, &msg), 0);
    config_free(c);
#undef HAS
    buf_free(&msg);
}

static void test_help_and_schema(void **state)
{
    (void)state;
    struct buf msg;
    struct config *c = NULL;
    buf_init(&msg, 1 << 16);
    char *argv[] = {"aistack-infer", "--port", "bad", "--help", NULL};
    assert_int_equal(load(NULL, NULL, 4, argv, &c, &msg), CONFIG_HELP);
    assert_null(c);
    assert_non_null(strstr(msg.data, "Usage: aistack-infer [--config FILE] [options]"));
    assert_non_null(strstr(msg.data, "  --port, --server-port INT\n      TCP port to listen on "
                                     "(default: 8080) [1..65535]\n      file: server.port, env: "
                                     "AISTACK_SERVER_PORT\n"));
    assert_non_null(strstr(msg.data, "  -v, --verbose\n"));
    assert_non_null(strstr(msg.data, "off: --no-verbose\n"));
    assert_non_null(strstr(msg.data, "[1ms..1h]"));
    assert_non_null(strstr(msg.data, "model_list (file only)"));

    char *argv1[] = {"svc", NULL};
    char *noenv[] = {NULL};
    static const struct cfg_option bad_default[] = {
        {.key = "a.b", .type = CFG_INT, .def = "x", .help = "h"}, CFG_END};
    buf_reset(&msg);
    assert_int_equal(config_load_ex(bad_default, 1, argv1, noenv, NULL, &c, &msg), AS_EINVAL);
    assert_non_null(strstr(msg.data, "schema: default of 'a.b': expected an integer"));
    static const struct cfg_option overlap[] = {{.key = "a", .type = CFG_INT, .help = "h"},
                                                {.key = "a.b", .type = CFG_INT, .help = "h"},
                                                {.key = "A", .type = CFG_INT, .help = "h"},
                                                CFG_END};
    buf_reset(&msg);
    assert_int_equal(config_load_ex(overlap, 1, argv1, noenv, NULL, &c, &msg), AS_EINVAL);
    assert_non_null(strstr(msg.data, "schema: options 'a' and 'a.b' overlap"));
    assert_non_null(strstr(msg.data, "schema: option 'A': invalid key or type"));
    static const struct cfg_option aliases[] = {
        {.key = "x", .type = CFG_INT, .help = "h", .alias = "c"},
        {.key = "y", .type = CFG_INT, .help = "h", .alias = "x"},
        {.key = "z", .type = CFG_INT, .help = "h", .alias = "x"},
        {.key = "w", .type = CFG_INT, .help = "h", .alias = "v"},
        {.key = "v", .type = CFG_INT, .help = "h"},
        CFG_END};
    buf_reset(&msg);
    assert_int_equal(config_load_ex(aliases, 1, argv1, noenv, NULL, &c, &msg), AS_EINVAL);
    assert_non_null(strstr(msg.data, "schema: option 'x': alias 'c' is reserved or invalid"));
    assert_non_null(strstr(msg.data, "schema: option 'y': alias 'x' is taken"));
    assert_non_null(strstr(msg.data, "schema: option 'z': alias 'x' is taken"));
    assert_non_null(strstr(msg.data, "schema: option 'v': flag --v is taken by an alias"));

    char name[64];
    assert_int_equal(config_env_name("server.max_body", name, sizeof name), 0);
    assert_string_equal(name, "AISTACK_SERVER_MAX_BODY");
    assert_int_equal(config_flag_name("server.max_body", name, sizeof name), 0);
    assert_string_equal(name, "server-max-body");
    assert_int_equal(config_env_name("x", name, 9), AS_ERANGE);
    buf_free(&msg);
}

static void test_scalar_parsers(void **state)
{
    (void)state;
    int64_t v = 0;
    double d = 0;
    bool b = false;
    const char *why = NULL;
    struct {
        const char *s;
        int64_t ms;
    } durs[] = {{"0", 0},         {"500ms", 500}, {"30s", 30000},
                {"1.5s", 1500},   {"2m", 120000}, {"1h30m", 5400000},
                {"1d", 86400000}, {"10S", 10000}, {"1m0.5s", 60500}};
    for (size_t i = 0; i < sizeof durs / sizeof durs[0]; i++) {
        assert_int_equal(cfg_parse_duration_ms(durs[i].s, &v, &why), 0);
        assert_int_equal(v, durs[i].ms);
    }
    const char *bad_durs[] = {"", "30", "-1s", "1e3s", "s", "1x", "1 s", "1.2.3s", "inf", "nans"};
    for (size_t i = 0; i < sizeof bad_durs / sizeof bad_durs[0]; i++)
        assert_int_not_equal(cfg_parse_duration_ms(bad_durs[i], &v, &why), 0);
    assert_int_equal(cfg_parse_duration_ms("99999999999999999999d", &v, &why), AS_ERANGE);

    struct {
        const char *s;
        int64_t b;
    } sizes[] = {
        {"0", 0},          {"512", 512},        {"512B", 512},          {"64KB", 64000},
        {"64k", 64000},    {"1KiB", 1024},      {"1.5KiB", 1536},       {"10MB", 10000000},
        {"1MiB", 1048576}, {"2Gi", 2147483648}, {"1TB", 1000000000000}, {"1tib", 1099511627776}};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        assert_int_equal(cfg_parse_size(sizes[i].s, &v, &why), 0);
        assert_int_equal(v, sizes[i].b);
    }
    const char *bad_sizes[] = {"", "-1", "1e3", "10 MB", "10XB", "MB", "1.5.5KB"};
    for (size_t i = 0; i < sizeof bad_sizes / sizeof bad_sizes[0]; i++)
        assert_int_not_equal(cfg_parse_size(bad_sizes[i], &v, &why), 0);
    assert_int_equal(cfg_parse_size("9999999999TiB", &v, &why), AS_ERANGE);

    assert_int_equal(cfg_parse_int("-42", &v, &why), 0);
    assert_int_equal(v, -42);
    assert_int_equal(cfg_parse_int(" 1", &v, &why), AS_EINVAL);
    assert_int_equal(cfg_parse_int("1.0", &v, &why), AS_EINVAL);
    assert_int_equal(cfg_parse_int("0x10", &v, &why), AS_EINVAL);
    assert_int_equal(cfg_parse_int("99999999999999999999", &v, &why), AS_ERANGE);
    assert_int_equal(cfg_parse_double("1e-3", &d, &why), 0);
    assert_true(d == 1e-3);
    assert_int_equal(cfg_parse_double("inf", &d, &why), AS_EINVAL);
    assert_int_equal(cfg_parse_double("nan", &d, &why), AS_EINVAL);
    assert_int_equal(cfg_parse_double("1x", &d, &why), AS_EINVAL);
    assert_int_equal(cfg_parse_bool("ON", &b, &why), 0);
    assert_true(b);
    assert_int_equal(cfg_parse_bool("0", &b, &why), 0);
    assert_false(b);
    assert_int_equal(cfg_parse_bool("nope", &b, &why), AS_EINVAL);
}

static void test_yaml_limits(void **state)
{
    (void)state;
    struct cfg_node *n = NULL;
    char err[256];
    /* deep nesting is refused with a line number, not a crash */
    struct buf b;
    buf_init(&b, 1 << 20);
    for (int i = 0; i < 100; i++)
        buf_append_cstr(&b, "[");
    for (int i = 0; i < 100; i++)
        buf_append_cstr(&b, "]");
    assert_int_equal(cfg_node_parse(b.data, b.len, &n, err, sizeof err), AS_ERANGE);
    assert_string_equal(err, "1: nesting deeper than 32 levels");
    assert_null(n);
    buf_free(&b);
    /* a NUL byte inside the text is a YAML error */
    assert_int_not_equal(cfg_node_parse("a: \0b", 5, &n, err, sizeof err), 0);
    /* non-scalar keys are refused */
    assert_int_equal(cfg_node_parse("? [a]\n: 1\n", 10, &n, err, sizeof err), AS_EINVAL);
    assert_string_equal(err, "1: mapping keys must be plain strings");
    /* null detection */
    assert_int_equal(cfg_node_parse("a: ~\nb: 'null'\nc:\n", 18, &n, err, sizeof err), 0);
    assert_true(cfg_node_is_null(cfg_node_get(n, "a")));
    assert_false(cfg_node_is_null(cfg_node_get(n, "b")));
    assert_true(cfg_node_is_null(cfg_node_get(n, "c")));
    cfg_node_free(n);
}

static void test_load_yaml_text(void **state)
{
    (void)state;
    struct buf msg;
    struct config *c = NULL;
    buf_init(&msg, 1 << 16);
    const char *y = "server: {port: 1234}\n";
    assert_int_equal(config_load_yaml(schema, y, strlen(y), "inline.yaml", &c, &msg), 0);
    assert_int_equal(config_int(c, "server.port"), 1234);
    assert_string_equal(config_source(c, "server.port"), "inline.yaml:1");
    config_free(c);
    y = "server: {port: 0}\n";
    assert_int_equal(config_load_yaml(schema, y, strlen(y), "inline.yaml", &c, &msg), AS_EINVAL);
    assert_string_equal(msg.data,
                        "inline.yaml:1: key 'server.port': 0 is out of range [1, 65535]\n");
    buf_free(&msg);
}

static void test_required_and_positional(void **state)
{
    (void)state;
    static const struct cfg_option cli[] = {
        {.key = "model", .type = CFG_STRING, .help = "model", .required = true},
        {.key = "files", .type = CFG_STRLIST, .def = "x", .help = "inputs", .positional = true},
        {.key = "n", .type = CFG_INT, .def = "1", .help = "count"},
        CFG_END,
    };
    struct buf msg;
    struct config *c = NULL;
    char *noenv[] = {NULL};
    buf_init(&msg, 1 << 16);
    char *a1[] = {"tool", "a.txt", "--n", "3", "b.txt", "--", "--c.txt", NULL};
    assert_int_equal(config_load_ex(cli, 7, a1, noenv, NULL, &c, &msg), AS_EINVAL);
    assert_string_equal(msg.data, "key 'model': required (set it in the config file, "
                                  "AISTACK_MODEL or --model)\n");
    char *env[] = {"AISTACK_MODEL=m", NULL};
    buf_reset(&msg);
    assert_int_equal(config_load_ex(cli, 7, a1, env, NULL, &c, &msg), 0);
    size_t n = 0;
    const char *const *l = config_strlist(c, "files", &n);
    assert_int_equal(n, 3);
    assert_string_equal(l[0], "a.txt");
    assert_string_equal(l[1], "b.txt");
    assert_string_equal(l[2], "--c.txt");
    assert_int_equal(config_int(c, "n"), 3);
    assert_string_equal(config_source(c, "files"), "arguments");
    config_free(c);

    buf_reset(&msg);
    assert_int_equal(config_help(cli, "tool", &msg), 0);
    assert_non_null(strstr(msg.data, "Usage: tool [--config FILE] [options] [--] files...\n"));
    assert_non_null(strstr(msg.data, "(required)"));

    static const struct cfg_option one[] = {
        {.key = "prompt", .type = CFG_STRING, .help = "prompt", .positional = true}, CFG_END};
    char *a2[] = {"tool", "hello", "world", NULL};
    buf_reset(&msg);
    assert_int_equal(config_load_ex(one, 3, a2, noenv, NULL, &c, &msg), AS_EINVAL);
    assert_string_equal(msg.data, "argument 'world': only one prompt may be given\n");
    assert_int_equal(config_load_ex(one, 2, a2, noenv, NULL, &c, &msg), 0);
    assert_string_equal(config_str(c, "prompt"), "hello");
    config_free(c);

    static const struct cfg_option two[] = {
        {.key = "a", .type = CFG_STRING, .help = "a", .positional = true},
        {.key = "b", .type = CFG_INT, .help = "b", .positional = true},
        {.key = "c", .type = CFG_STRING, .help = "c", .positional = true},
        CFG_END};
    buf_reset(&msg);
    assert_int_equal(config_load_ex(two, 1, a2, noenv, NULL, &c, &msg), AS_EINVAL);
    assert_non_null(
        strstr(msg.data, "schema: option 'b': only strings and lists can be positional"));
    assert_non_null(strstr(msg.data, "schema: option 'c': a second positional option"));
    buf_free(&msg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_file_and_tree),
        cmocka_unit_test(test_precedence),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_help_and_schema),
        cmocka_unit_test(test_scalar_parsers),
        cmocka_unit_test(test_yaml_limits),
        cmocka_unit_test(test_load_yaml_text),
        cmocka_unit_test(test_required_and_positional),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
