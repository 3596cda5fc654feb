/*
 * fuzz_config.c - YAML bytes through the config loader with a sample schema,
 * plus the YAML tree parser and scalar parsers on the raw text. Nothing may
 * crash, leak or hang; a successful load must be readable through the getters.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct cfg_option schema[] = {
    {.key = "server.port", .type = CFG_INT, .def = "8080", .help = "port", .min = 1, .max = 65535},
    {.key = "server.host", .type = CFG_STRING, .def = "127.0.0.1", .help = "host"},
    {.key = "server.timeout", .type = CFG_DURATION, .def = "30s", .help = "timeout"},
    {.key = "server.max_body", .type = CFG_SIZE, .def = "1MB", .help = "body"},
    {.key = "log.verbose", .type = CFG_BOOL, .def = "no", .help = "verbose"},
    {.key = "sampling.temperature",
     .type = CFG_DOUBLE,
     .def = "1",
     .help = "t",
     .dmin = 0,
     .dmax = 2},
    {.key = "keys", .type = CFG_STRLIST, .help = "keys"},
    {.key = "model_list", .type = CFG_NODE, .help = "models"},
    CFG_END,
};

static size_t count_nodes(const struct cfg_node *n)
{
    size_t c = 1;
    for (size_t i = 0; i < n->n; i++)
        c += count_nodes(n->items[i]);
    return c;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct buf msg;
    struct config *c = NULL;
    buf_init(&msg, 1u << 20);
    int rc = config_load_yaml(schema, (const char *)data, size, "fuzz.yaml", &c, &msg);
    if (rc == 0) {
        size_t n;
        (void)config_int(c, "server.port");
        (void)config_str(c, "server.host");
        (void)config_duration_ms(c, "server.timeout");
        (void)config_size(c, "server.max_body");
        (void)config_bool(c, "log.verbose");
        (void)config_double(c, "sampling.temperature");
        (void)config_strlist(c, "keys", &n);
        const struct cfg_node *ml = config_node(c, "model_list");
        if (ml && count_nodes(ml) > CFG_MAX_NODES)
            abort();
        if (msg.len != 0)
            abort(); /* success means no problem was reported */
    } else if (msg.len == 0) {
        abort(); /* every failure explains itself */
    }
    config_free(c);
    buf_free(&msg);

    /* the scalar parsers on the raw text */
    char *s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    int64_t v;
    double d;
    bool b;
    const char *why;
    cfg_parse_int(s, &v, &why);
    cfg_parse_double(s, &d, &why);
    cfg_parse_bool(s, &b, &why);
    cfg_parse_duration_ms(s, &v, &why);
    cfg_parse_size(s, &v, &why);
    free(s);
    return 0;
}
