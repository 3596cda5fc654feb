/*
 * config_internal.h - shared between config.c and config_args.c only; not
 * part of the config API (services include config.h).
 */
#ifndef AISTACK_CORE_CONFIG_INTERNAL_H
#define AISTACK_CORE_CONFIG_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/config.h"

struct buf;

struct cfg_value {
    const struct cfg_option *opt;
    bool has;     /* holds a value (default or set) */
    bool set;     /* set by file, env or flag */
    char *source; /* where the value came from */
    int64_t i;    /* CFG_INT, CFG_DURATION (ms), CFG_SIZE (bytes) */
    double d;
    bool b;
    char *s;
    char **list;
    size_t nlist;
    const struct cfg_node *node; /* CFG_NODE: borrowed from config->root */
};

struct config {
    size_t n;
    struct cfg_value *v;
    char *file;
    struct cfg_node *root;
};

/* Collects problems, one per line, into msg. */
struct report {
    struct buf *msg;
    int nerr;
};

/* Appends one problem line ("fmt\n") to r->msg and counts it. */
void config__report(struct report *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The schema key closest to key (compared as flag names if as_flag), or NULL. */
const char *config__suggest(const struct config *c, const char *key, bool as_flag);
/* Frees a value's string and list storage. */
void config__value_clear(struct cfg_value *v);
/* Moves the parsed temporary tmp into v, recording source. 0 or AS_ENOMEM. */
int config__commit(struct cfg_value *v, struct cfg_value *tmp, const char *source, bool set);
/* Parses text into v; on error reports "<where>: <reason>". */
int config__apply_text(struct cfg_value *v, const char *text, const char *where, bool set,
                       struct report *r);
/* A bound of an int-like option in its own units ("1h", "10MB", "65535"). */
void config__fmt_bound(const struct cfg_option *o, int64_t v, char *out, size_t cap);
/* Value of NAME in a NULL-terminated "K=V" array, or NULL. */
const char *config__env_get(char **envp, const char *name);
/* The environment layer. */
void config__apply_env(struct config *c, char **envp, struct report *r);
/* The command-line layer (flags and positional arguments). */
void config__apply_flags(struct config *c, int argc, char **argv, struct report *r);
/* True for "--config" / "-c" (which take the next argument). */
bool config__is_config_flag(const char *a);

#endif
