/*
 * config_yaml.c - YAML text to a line-numbered struct cfg_node tree, and the
 * scalar parsers (int, double, bool, duration, size) shared by the config
 * loader and services that walk their own subtrees (see config.h).
 *
 * Built on libyaml's event parser. The input is hostile (a config file may be
 * written by anyone with access to a deployment), so size, depth and node
 * count are capped and aliases are refused (no "billion laughs"). Not for:
 * writing YAML, tags, anchors/aliases, multiple documents.
 */
#include "core/config.h"
#include "core/err.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

/* ---- tree ------------------------------------------------------------------ */

void cfg_node_free(struct cfg_node *n)
{
    if (!n)
        return;
    for (size_t i = 0; i < n->n; i++) {
        if (n->keys)
            free(n->keys[i]);
        if (n->items)
            cfg_node_free(n->items[i]);
    }
    free(n->keys);
    free(n->key_lines);
    free(n->items);
    free(n->str);
    free(n);
}

const struct cfg_node *cfg_node_get(const struct cfg_node *n, const char *key)
{
    if (!n || n->type != CFG_NODE_MAP || !key)
        return NULL;
    for (size_t i = 0; i < n->n; i++)
        if (strcmp(n->keys[i], key) == 0)
            return n->items[i];
    return NULL;
}

bool cfg_node_is_null(const struct cfg_node *n)
{
    if (!n || n->type != CFG_NODE_SCALAR || !n->plain)
        return false;
    return n->len == 0 || strcmp(n->str, "~") == 0 || strcmp(n->str, "null") == 0 ||
           strcmp(n->str, "Null") == 0 || strcmp(n->str, "NULL") == 0;
}

struct yparse {
    yaml_parser_t p;
    size_t nodes;
    char *err;
    size_t errlen;
    int rc;
};

static int perr(struct yparse *y, int line, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int perr(struct yparse *y, int line, int rc, const char *fmt, ...)
{
    if (y->rc)
        return y->rc; /* keep the first error */
    if (y->err && y->errlen) {
        int n = snprintf(y->err, y->errlen, "%d: ", line);
        if (n >= 0 && (size_t)n < y->errlen) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(y->err + n, y->errlen - (size_t)n, fmt, ap);
            va_end(ap);
        }
    }
    y->rc = rc;
    return rc;
}

static int next_event(struct yparse *y, yaml_event_t *ev)
{
    if (!yaml_parser_parse(&y->p, ev)) {
        int line = (int)y->p.problem_mark.line + 1;
        return perr(y, line, AS_EINVAL, "invalid YAML: %s%s%s",
                    y->p.problem ? y->p.problem : "syntax error", y->p.context ? " " : "",
                    y->p.context ? y->p.context : "");
    }
    return 0;
}

static struct cfg_node *node_new(struct yparse *y, enum cfg_node_type type, int line)
{
    if (++y->nodes > CFG_MAX_NODES) {
        perr(y, line, AS_ERANGE, "more than %d YAML nodes", CFG_MAX_NODES);
        return NULL;
    }
    struct cfg_node *n = calloc(1, sizeof *n);
    if (!n) {
        perr(y, line, AS_ENOMEM, "out of memory");
        return NULL;
    }
    n->type = type;
    n->line = line;
    return n;
}

static int node_push(struct yparse *y, struct cfg_node *parent, char *key, int key_line,
                     struct cfg_node *child)
{
    size_t cap = parent->n + 1;
    struct cfg_node **items = realloc(parent->items, cap * sizeof *items);
    if (items)
        parent->items = items;
    if (parent->type == CFG_NODE_MAP) {
        char **keys = realloc(parent->keys, cap * sizeof *keys);
        if (keys)
            parent->keys = keys;
        int *lines = realloc(parent->key_lines, cap * sizeof *lines);
        if (lines)
            parent->key_lines = lines;
        if (!keys || !lines)
            items = NULL;
    }
    if (!items)
        return perr(y, child->line, AS_ENOMEM, "out of memory");
    if (parent->type == CFG_NODE_MAP) {
        parent->keys[parent->n] = key;
        parent->key_lines[parent->n] = key_line;
    }
    parent->items[parent->n++] = child;
    return 0;
}

/* Builds the node that starts with ev (consumed). NULL on error (y->rc set). */
static struct cfg_node *parse_node(struct yparse *y, yaml_event_t *ev, int depth)
{
    int line = (int)ev->start_mark.line + 1;
    struct cfg_node *n = NULL;
    yaml_event_t e;

    if (depth > CFG_MAX_DEPTH) {
        perr(y, line, AS_ERANGE, "nesting deeper than %d levels", CFG_MAX_DEPTH);
        return NULL;
    }
    switch (ev->type) {
    case YAML_SCALAR_EVENT:
        if (!(n = node_new(y, CFG_NODE_SCALAR, line)))
            return NULL;
        n->len = ev->data.scalar.length;
        n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
        n->str = malloc(n->len + 1);
        if (!n->str) {
            perr(y, line, AS_ENOMEM, "out of memory");
            goto fail;
        }
        memcpy(n->str, ev->data.scalar.value, n->len);
        n->str[n->len] = '\0';
        return n;
    case YAML_ALIAS_EVENT:
        perr(y, line, AS_EINVAL, "YAML aliases (*name) are not supported");
        return NULL;
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT:
        break;
    default:
        perr(y, line, AS_EINVAL, "unexpected YAML event");
        return NULL;
    }

    bool is_map = ev->type == YAML_MAPPING_START_EVENT;
    if (!(n = node_new(y, is_map ? CFG_NODE_MAP : CFG_NODE_SEQ, line)))
        return NULL;
    for (;;) {
        if (next_event(y, &e))
            goto fail;
        if (e.type == (is_map ? YAML_MAPPING_END_EVENT : YAML_SEQUENCE_END_EVENT)) {
            yaml_event_delete(&e);
            return n;
        }
        char *key = NULL;
        int key_line = (int)e.start_mark.line + 1;
        if (is_map) {
            if (e.type != YAML_SCALAR_EVENT) {
                perr(y, key_line, AS_EINVAL, "mapping keys must be plain strings");
                yaml_event_delete(&e);
                goto fail;
            }
            if (memchr(e.data.scalar.value, '\0', e.data.scalar.length) ||
                !(key = strdup((const char *)e.data.scalar.value))) {
                perr(y, key_line, AS_EINVAL, "invalid mapping key");
                yaml_event_delete(&e);
                goto fail;
            }
            yaml_event_delete(&e);
            if (n->n >= CFG_MAX_MAP_ENTRIES) {
                perr(y, key_line, AS_ERANGE, "more than %d keys in one mapping",
                     CFG_MAX_MAP_ENTRIES);
                free(key);
                goto fail;
            }
            if (cfg_node_get(n, key)) {
                perr(y, key_line, AS_EINVAL, "duplicate key '%s'", key);
                free(key);
                goto fail;
            }
            if (next_event(y, &e)) {
                free(key);
                goto fail;
            }
        }
        struct cfg_node *child = parse_node(y, &e, depth + 1);
        yaml_event_delete(&e);
        if (!child || node_push(y, n, key, key_line, child)) {
            free(key);
            cfg_node_free(child);
            goto fail;
        }
    }
fail:
    cfg_node_free(n);
    return NULL;
}

int cfg_node_parse(const char *data, size_t len, struct cfg_node **out, char *err, size_t errlen)
{
    struct yparse y = {.err = err, .errlen = errlen};
    struct cfg_node *root = NULL;
    yaml_event_t ev;
    bool have_ev = false;

    *out = NULL;
    if (err && errlen)
        err[0] = '\0';
    if (len > CFG_MAX_FILE_BYTES)
        return perr(&y, 1, AS_ERANGE, "file larger than %u bytes", CFG_MAX_FILE_BYTES);
    if (!yaml_parser_initialize(&y.p))
        return perr(&y, 1, AS_ENOMEM, "out of memory");
    yaml_parser_set_input_string(&y.p, (const unsigned char *)(data ? data : ""), len);

    /* STREAM_START, then DOCUMENT_START or STREAM_END */
    if (next_event(&y, &ev))
        goto out;
    yaml_event_delete(&ev);
    if (next_event(&y, &ev))
        goto out;
    have_ev = true;
    if (ev.type == YAML_STREAM_END_EVENT) {
        root = node_new(&y, CFG_NODE_MAP, 1);
        goto out;
    }
    yaml_event_delete(&ev);
    have_ev = false;
    if (next_event(&y, &ev))
        goto out;
    root = parse_node(&y, &ev, 0);
    yaml_event_delete(&ev);
    if (!root)
        goto out;
    if (next_event(&y, &ev)) /* DOCUMENT_END */
        goto out;
    yaml_event_delete(&ev);
    if (next_event(&y, &ev))
        goto out;
    have_ev = true;
    if (ev.type != YAML_STREAM_END_EVENT)
        perr(&y, (int)ev.start_mark.line + 1, AS_EINVAL, "only one YAML document is allowed");
out:
    if (have_ev)
        yaml_event_delete(&ev);
    yaml_parser_delete(&y.p);
    if (y.rc) {
        cfg_node_free(root);
        return y.rc;
    }
    *out = root;
    return 0;
}

/* ---- scalar parsers -------------------------------------------------------- */

static int why_fail(const char **why, const char *msg, int rc)
{
    if (why)
        *why = msg;
    return rc;
}

int cfg_parse_int(const char *s, int64_t *out, const char **why)
{
    char *end = NULL;
    if (!s || !*s || (*s != '-' && *s != '+' && (*s < '0' || *s > '9')))
        return why_fail(why, "expected an integer", AS_EINVAL);
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*end)
        return why_fail(why, "expected an integer", AS_EINVAL);
    if (errno == ERANGE)
        return why_fail(why, "integer out of range", AS_ERANGE);
    *out = v;
    return 0;
}

int cfg_parse_double(const char *s, double *out, const char **why)
{
    char *end = NULL;
    if (!s || !*s || strchr(" \t\n\r\f\v", *s))
        return why_fail(why, "expected a number", AS_EINVAL);
    double v = strtod(s, &end);
    if (*end || !isfinite(v))
        return why_fail(why, "expected a finite number", AS_EINVAL);
    *out = v;
    return 0;
}

int cfg_parse_bool(const char *s, bool *out, const char **why)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    for (size_t i = 0; s && i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return why_fail(why, "expected true or false", AS_EINVAL);
}

struct unit {
    const char *name;
    double mult;
};

/* Parses "<decimal><unit>" with unit from units (case-insensitive), no sign, no exponent. */
static int parse_number_unit(const char **ps, const struct unit *units, double *num, double *mult)
{
    const char *s = *ps;
    size_t i = 0, digits = 0;
    char tmp[64];
    while ((s[i] >= '0' && s[i] <= '9') || s[i] == '.') {
        digits += s[i] != '.';
        i++;
    }
    if (digits == 0 || i >= sizeof tmp)
        return AS_EINVAL;
    memcpy(tmp, s, i);
    tmp[i] = '\0';
    char *end = NULL;
    *num = strtod(tmp, &end);
    if (*end)
        return AS_EINVAL;
    size_t j = i;
    while ((s[j] >= 'a' && s[j] <= 'z') || (s[j] >= 'A' && s[j] <= 'Z'))
        j++;
    for (const struct unit *u = units; u->name; u++) {
        if (strlen(u->name) == j - i && strncasecmp(s + i, u->name, j - i) == 0) {
            *mult = u->mult;
            *ps = s + j;
            return 0;
        }
    }
    return AS_EINVAL;
}

/* Largest value accepted for durations (ms) and sizes (bytes): 2^62. */
#define CFG_MAX_MAGNITUDE 4611686018427387904.0

int cfg_parse_duration_ms(const char *s, int64_t *out, const char **why)
{
    static const struct unit units[] = {{"ms", 1},      {"s", 1000},     {"m", 60000},
                                        {"h", 3600000}, {"d", 86400000}, {NULL, 0}};
    static const char *msg = "expected a duration like 30s, 500ms, 1m30s or 2h";
    if (!s || !*s)
        return why_fail(why, msg, AS_EINVAL);
    if (strcmp(s, "0") == 0) {
        *out = 0;
        return 0;
    }
    double total = 0;
    while (*s) { /* one or more number+unit terms: "1h30m" */
        double num, mult;
        if (parse_number_unit(&s, units, &num, &mult))
            return why_fail(why, msg, AS_EINVAL);
        total += num * mult;
        if (total > CFG_MAX_MAGNITUDE)
            return why_fail(why, "duration too large", AS_ERANGE);
    }
    *out = (int64_t)llround(total);
    return 0;
}

int cfg_parse_size(const char *s, int64_t *out, const char **why)
{
    static const struct unit units[] = {{"", 1},
                                        {"b", 1},
                                        {"k", 1e3},
                                        {"kb", 1e3},
                                        {"ki", 1024.0},
                                        {"kib", 1024.0},
                                        {"m", 1e6},
                                        {"mb", 1e6},
                                        {"mi", 1048576.0},
                                        {"mib", 1048576.0},
                                        {"g", 1e9},
                                        {"gb", 1e9},
                                        {"gi", 1073741824.0},
                                        {"gib", 1073741824.0},
                                        {"t", 1e12},
                                        {"tb", 1e12},
                                        {"ti", 1099511627776.0},
                                        {"tib", 1099511627776.0},
                                        {NULL, 0}};
    static const char *msg = "expected a size like 512, 64KB, 10MB or 1GiB";
    double num, mult;
    const char *p = s;
    if (!s || parse_number_unit(&p, units, &num, &mult) || *p)
        return why_fail(why, msg, AS_EINVAL);
    double v = num * mult;
    if (v > CFG_MAX_MAGNITUDE)
        return why_fail(why, "size too large", AS_ERANGE);
    *out = (int64_t)llround(v);
    return 0;
}
