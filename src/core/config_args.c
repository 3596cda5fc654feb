/*
 * config_args.c - the environment and command-line layers of the config
 * loader, and --help generated from the schema (see config.h). The loader
 * itself, the value parsing and the file layer are in config.c.
 */
#include "core/buf.h"
#include "core/config.h"
#include "core/config_internal.h"
#include "core/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- environment and flags ------------------------------------------------- */

const char *config__env_get(char **envp, const char *name)
{
    size_t n = strlen(name);
    for (char **e = envp; e && *e; e++)
        if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
            return *e + n + 1;
    return NULL;
}

void config__apply_env(struct config *c, char **envp, struct report *r)
{
    for (size_t i = 0; i < c->n; i++) {
        char name[128], where[160];
        struct cfg_value *v = &c->v[i];
        if (v->opt->type == CFG_NODE || config_env_name(v->opt->key, name, sizeof name))
            continue;
        const char *val = config__env_get(envp, name);
        if (!val)
            continue;
        snprintf(where, sizeof where, "env %s", name);
        config__apply_text(v, val, where, true, r);
    }
}

/* Matches a flag name (without dashes) to an option, by derived name or alias. */
static struct cfg_value *find_flag(struct config *c, const char *name, size_t n, bool shortf)
{
    for (size_t i = 0; i < c->n; i++) {
        const struct cfg_option *o = c->v[i].opt;
        char fl[128];
        if (o->type == CFG_NODE)
            continue;
        if (o->alias && strlen(o->alias) == n && strncmp(o->alias, name, n) == 0 &&
            (strlen(o->alias) == 1) == shortf)
            return &c->v[i];
        if (!shortf && !config_flag_name(o->key, fl, sizeof fl) && strlen(fl) == n &&
            strncmp(fl, name, n) == 0)
            return &c->v[i];
    }
    return NULL;
}

bool config__is_config_flag(const char *a)
{
    return strcmp(a, "--config") == 0 || strcmp(a, "-c") == 0;
}

/* Positional arguments go to the option marked positional, if any. */
static void add_positional(struct config *c, const char *a, bool *first, struct report *r)
{
    struct cfg_value *v = NULL;
    for (size_t i = 0; i < c->n; i++)
        if (c->v[i].opt->positional)
            v = &c->v[i];
    if (!v) {
        config__report(r, "argument '%.100s': unexpected (settings are given as --name value)", a);
        return;
    }
    if (v->opt->type == CFG_STRING) {
        if (!*first) {
            config__report(r, "argument '%.100s': only one %s may be given", a, v->opt->key);
            return;
        }
        config__apply_text(v, a, "arguments", true, r);
    } else {
        struct cfg_value tmp = {0};
        if (!*first) { /* keep the items collected so far */
            tmp.list = v->list, tmp.nlist = v->nlist;
            v->list = NULL, v->nlist = 0;
        }
        char **l = realloc(tmp.list, (tmp.nlist + 1) * sizeof *l);
        if (!l || !(l[tmp.nlist] = strdup(a))) {
            if (l)
                tmp.list = l;
            config__value_clear(&tmp);
            config__report(r, "argument '%.100s': out of memory", a);
            return;
        }
        tmp.list = l;
        tmp.nlist++;
        config__commit(v, &tmp, "arguments", true);
    }
    *first = false;
}

void config__apply_flags(struct config *c, int argc, char **argv, struct report *r)
{
    bool first_pos = true, only_pos = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        char where[160];
        if (only_pos) {
            add_positional(c, a, &first_pos, r);
            continue;
        }
        if (strcmp(a, "--") == 0) {
            only_pos = true;
            continue;
        }
        if (config__is_config_flag(a)) {
            i++; /* handled before the file layer */
            continue;
        }
        if (strncmp(a, "--config=", 9) == 0)
            continue;
        if (a[0] != '-' || a[1] == '\0') {
            add_positional(c, a, &first_pos, r);
            continue;
        }
        bool shortf = a[1] != '-';
        const char *name = a + (shortf ? 1 : 2);
        const char *eq = strchr(name, '=');
        size_t n = eq ? (size_t)(eq - name) : strlen(name);
        const char *val = eq ? eq + 1 : NULL;
        struct cfg_value *v = find_flag(c, name, n, shortf);
        bool negated = false;
        if (!v && !shortf && n > 3 && strncmp(name, "no-", 3) == 0) {
            v = find_flag(c, name + 3, n - 3, false);
            if (v && v->opt->type == CFG_BOOL && !val)
                negated = true;
            else
                v = NULL;
        }
        snprintf(where, sizeof where, "flag %s%.*s", shortf ? "-" : "--", (int)(n > 100 ? 100 : n),
                 name);
        if (!v) {
            char flag[128];
            snprintf(flag, sizeof flag, "%.*s", (int)(n > 100 ? 100 : n), name);
            const char *hint = shortf ? NULL : config__suggest(c, flag, true);
            char hf[128] = "";
            if (hint)
                config_flag_name(hint, hf, sizeof hf);
            config__report(r, "%s: unknown flag%s%s%s", where, hint ? " (did you mean --" : "", hf,
                           hint ? "?)" : "");
            /* its value, if any, belongs to it: do not report it as a stray argument */
            if (!eq && i + 1 < argc && argv[i + 1][0] != '-')
                i++;
            continue;
        }
        if (v->opt->type == CFG_BOOL && !val) {
            config__apply_text(v, negated ? "false" : "true", where, true, r);
            continue;
        }
        if (!val) {
            if (i + 1 >= argc) {
                config__report(r, "%s: missing value", where);
                continue;
            }
            val = argv[++i];
        }
        config__apply_text(v, val, where, true, r);
    }
}

/* ---- help ------------------------------------------------------------------ */

static const char *type_hint(enum cfg_type t)
{
    switch (t) {
    case CFG_INT:
        return "INT";
    case CFG_DOUBLE:
        return "NUM";
    case CFG_BOOL:
        return "";
    case CFG_STRING:
        return "STR";
    case CFG_DURATION:
        return "DURATION";
    case CFG_SIZE:
        return "SIZE";
    case CFG_STRLIST:
        return "A,B,...";
    case CFG_NODE:
        return "";
    }
    return "";
}

int config_help(const struct cfg_option *schema, const char *prog, struct buf *out)
{
    const char *pos = NULL;
    bool pos_list = false;
    for (const struct cfg_option *o = schema; o->key; o++)
        if (o->positional) {
            pos = o->key;
            pos_list = o->type == CFG_STRLIST;
        }
    char args[128] = "";
    if (pos)
        snprintf(args, sizeof args, " [--] %s%s", pos, pos_list ? "..." : "");
    int rc = buf_printf(out,
                        "Usage: %s [--config FILE] [options]%s\n\n"
                        "Settings come from the YAML file (--config, or AISTACK_CONFIG), then\n"
                        "environment variables, then flags; later ones win.\n\n"
                        "Options:\n"
                        "  -c, --config FILE\n      YAML configuration file\n"
                        "  -h, --help\n      show this help and exit\n",
                        prog ? prog : "aistack", args);
    for (const struct cfg_option *o = schema; !rc && o->key; o++) {
        char fl[128], env[128], alias[64] = "";
        if (config_flag_name(o->key, fl, sizeof fl) || config_env_name(o->key, env, sizeof env))
            continue;
        if (o->alias)
            snprintf(alias, sizeof alias, "%s%s, ", strlen(o->alias) == 1 ? "-" : "--", o->alias);
        if (o->type == CFG_NODE) {
            rc = buf_printf(out, "  %s (file only)\n      %s\n", o->key, o->help ? o->help : "");
            continue;
        }
        const char *th = type_hint(o->type);
        rc = buf_printf(out, "  %s--%s%s%s\n      %s", alias, fl, *th ? " " : "", th,
                        o->help ? o->help : "");
        if (!rc && o->def)
            rc = buf_printf(out, " (default: %s)", *o->def ? o->def : "\"\"");
        if (!rc && o->required)
            rc = buf_printf(out, " (required)");
        if (!rc && (o->type == CFG_INT || o->type == CFG_DURATION || o->type == CFG_SIZE) &&
            o->min < o->max) {
            char lo[32], hi[32];
            config__fmt_bound(o, o->min, lo, sizeof lo);
            config__fmt_bound(o, o->max, hi, sizeof hi);
            rc = buf_printf(out, " [%s..%s]", lo, hi);
        }
        if (!rc && o->type == CFG_DOUBLE && o->dmin < o->dmax)
            rc = buf_printf(out, " [%g..%g]", o->dmin, o->dmax);
        if (!rc)
            rc = buf_printf(out, "\n      file: %s, env: %s", o->key, env);
        if (!rc && o->type == CFG_BOOL)
            rc = buf_printf(out, ", off: --no-%s", fl);
        if (!rc)
            rc = buf_append_char(out, '\n');
    }
    return rc;
}
