/*
 * config.h - service configuration: schema, YAML file, AISTACK_* environment, flags.
 *
 * A service declares its settings once as a static array of struct cfg_option.
 * config_load() applies, in increasing precedence: the schema defaults, the
 * YAML file (--config FILE, or AISTACK_CONFIG), environment variables derived
 * from the key (server.port -> AISTACK_SERVER_PORT), then command-line flags
 * (--server-port 8080, --server-port=8080, --no-<bool>, plus an optional alias).
 * Every problem is reported, one per line, as
 *     FILE:LINE: key 'x.y': <reason>
 *     env AISTACK_X_Y: <reason>
 *     flag --x-y: <reason>
 * and config_load() fails, so a misconfigured service refuses to start.
 *
 * Options of type CFG_NODE accept any YAML subtree (e.g. the gateway's
 * model_list); the service walks the struct cfg_node tree itself and reports
 * errors with config_file() and the node's line.
 *
 * Not for: reloading at run time (load a new struct config and swap it),
 * YAML anchors/aliases/tags (aliases are rejected), multiple documents.
 */
#ifndef AISTACK_CORE_CONFIG_H
#define AISTACK_CORE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct buf;

enum cfg_type {
    CFG_INT = 1,  /* int64, bounded by [min, max] when min < max */
    CFG_DOUBLE,   /* finite double, bounded by [dmin, dmax] when dmin < dmax */
    CFG_BOOL,     /* true/false/yes/no/on/off/1/0 */
    CFG_STRING,   /* any text */
    CFG_DURATION, /* "30s", "500ms", "2m", "1h", "1.5s", "0"; stored as milliseconds */
    CFG_SIZE,     /* "512", "64KB"/"64K" (10^3), "10MB" (10^6), "1GiB"/"1Gi" (2^30); bytes */
    CFG_STRLIST,  /* YAML sequence of scalars; env/flags: comma-separated */
    CFG_NODE,     /* any YAML subtree; file only (no env/flag) */
};

/* One setting. Keep arrays of these static; config_load() borrows them. */
struct cfg_option {
    const char *key; /* dotted, lowercase [a-z0-9_.]: "server.port" */
    enum cfg_type type;
    const char *def;   /* default as text, parsed like a file value; NULL = unset */
    const char *help;  /* one line for --help */
    int64_t min, max;  /* CFG_INT / CFG_DURATION (ms) / CFG_SIZE bounds when min < max */
    double dmin, dmax; /* CFG_DOUBLE bounds when dmin < dmax */
    const char *alias; /* optional extra flag: "port" -> --port, "p" -> -p; NULL none */
    bool required;     /* loading fails unless some layer sets it */
    bool positional;   /* CFG_STRING/CFG_STRLIST: also takes the positional arguments
                          (at most one such option; a string takes exactly one) */
};

/* Terminates a schema array. */
#define CFG_END                                                                                    \
    {                                                                                              \
        0                                                                                          \
    }

enum cfg_node_type { CFG_NODE_SCALAR = 1, CFG_NODE_MAP, CFG_NODE_SEQ };

/* A parsed YAML node. Maps keep keys in file order; duplicates are rejected. */
struct cfg_node {
    enum cfg_node_type type;
    int line;                /* 1-based line in the file */
    char *str;               /* scalar text (NUL-terminated; may contain NULs: see len) */
    size_t len;              /* scalar length */
    bool plain;              /* scalar was unquoted (so "~"/"null" mean null) */
    size_t n;                /* map entries / seq items */
    char **keys;             /* map: n keys */
    int *key_lines;          /* map: line of each key */
    struct cfg_node **items; /* map values / seq items */
};

/* Parsing limits for YAML input. */
#define CFG_MAX_FILE_BYTES  (4u << 20)
#define CFG_MAX_DEPTH       32
#define CFG_MAX_NODES       100000
#define CFG_MAX_MAP_ENTRIES 4096

/*
 * Parses YAML text into a tree (empty input: an empty map). On error returns
 * AS_EINVAL/AS_ERANGE/AS_ENOMEM and writes "LINE: reason" into err (errlen
 * bytes). *out is caller-freed with cfg_node_free().
 */
int cfg_node_parse(const char *data, size_t len, struct cfg_node **out, char *err, size_t errlen);
void cfg_node_free(struct cfg_node *n);
/* Value of key in a map node, or NULL (also when n is not a map). */
const struct cfg_node *cfg_node_get(const struct cfg_node *n, const char *key);
/* True for a plain scalar "~", "null", "Null", "NULL" or empty. */
bool cfg_node_is_null(const struct cfg_node *n);

/*
 * Scalar parsers shared by the loader and services walking their own nodes.
 * Each returns 0 or AS_EINVAL / AS_ERANGE with a reason ("expected a
 * duration like 30s or 500ms") in why (may be NULL).
 */
int cfg_parse_int(const char *s, int64_t *out, const char **why);
int cfg_parse_double(const char *s, double *out, const char **why);
int cfg_parse_bool(const char *s, bool *out, const char **why);
int cfg_parse_duration_ms(const char *s, int64_t *out, const char **why);
int cfg_parse_size(const char *s, int64_t *out, const char **why);

struct config;

/* config_load() result codes besides 0 / AS_E*. */
#define CONFIG_HELP 1 /* --help was given: msg holds the help text; exit 0 */

/*
 * Loads a configuration for schema (terminated by CFG_END) from argv (argv[0]
 * is the program name), the environment and the file named by --config/-c or
 * AISTACK_CONFIG. Positional arguments are errors unless an option is marked
 * positional; after "--" every argument is positional. Returns 0 with *out set,
 * CONFIG_HELP with help text in msg, or a negative AS_E* with every problem in
 * msg (one per line). msg may be NULL. Invalid schemas are AS_EINVAL too.
 */
int config_load(const struct cfg_option *schema, int argc, char **argv, struct config **out,
                struct buf *msg);
/* As config_load but with an explicit environment (NULL-terminated "K=V" array) and file. */
int config_load_ex(const struct cfg_option *schema, int argc, char **argv, char **envp,
                   const char *file, struct config **out, struct buf *msg);
/*
 * Defaults plus YAML text only (no environment, no flags): for tests, fuzzing
 * and services that receive their file from elsewhere. name labels messages.
 */
int config_load_yaml(const struct cfg_option *schema, const char *data, size_t len,
                     const char *name, struct config **out, struct buf *msg);
void config_free(struct config *c);

/* Appends --help text generated from the schema. */
int config_help(const struct cfg_option *schema, const char *prog, struct buf *out);

/*
 * Typed getters. key must be in the schema with that type; anything else is a
 * programming error and aborts with a message (caught by the first test run).
 * Unset options (no default, not given) read as 0 / false / NULL / empty.
 */
int64_t config_int(const struct config *c, const char *key);
double config_double(const struct config *c, const char *key);
bool config_bool(const struct config *c, const char *key);
/* Borrowed until config_free(); NULL if unset. */
const char *config_str(const struct config *c, const char *key);
int64_t config_duration_ms(const struct config *c, const char *key);
int64_t config_size(const struct config *c, const char *key);
/* Borrowed list; *n receives the count. */
const char *const *config_strlist(const struct config *c, const char *key, size_t *n);
/* The YAML subtree of a CFG_NODE option, or NULL if absent. */
const struct cfg_node *config_node(const struct config *c, const char *key);
/* True if the option was set by the file, env or a flag (not just the default). */
bool config_is_set(const struct config *c, const char *key);
/* Where the value came from: "default", "FILE:LINE", "env NAME", "flag --x". */
const char *config_source(const struct config *c, const char *key);
/* The config file path, or NULL if none was used. */
const char *config_file(const struct config *c);

/* Environment variable name for key: "AISTACK_" + upper(key with '.' -> '_'). */
int config_env_name(const char *key, char *out, size_t cap);
/* Flag name for key without dashes: key with '.' and '_' -> '-'. */
int config_flag_name(const char *key, char *out, size_t cap);

#endif
