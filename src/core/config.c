/*
 * config.c - layered service configuration: schema defaults < YAML file <
 * AISTACK_* environment < command-line flags (see config.h).
 *
 * Every layer is applied in full and every problem collected, so an operator
 * sees all mistakes at once, each with its file:line, variable or flag. This
 * file holds the loader, value parsing and the file layer; the environment,
 * flags and --help are in config_args.c, the YAML tree in config_yaml.c.
 * Not for: run-time reload, secrets storage.
 */
#include "core/config.h"
#include "core/config_internal.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern char **environ;

void config__report(struct report *r, const char *fmt, ...)
{
    r->nerr++;
    if (!r->msg)
        return;
    va_list ap;
    va_start(ap, fmt);
    buf_vprintf(r->msg, fmt, ap);
    va_end(ap);
    buf_append_char(r->msg, '\n');
}

/* ---- names ----------------------------------------------------------------- */

int config_env_name(const char *key, char *out, size_t cap)
{
    size_t n = strlen(key);
    if (n + 9 > cap)
        return AS_ERANGE;
    memcpy(out, "AISTACK_", 8);
    for (size_t i = 0; i < n; i++) {
        char c = key[i];
        out[8 + i] = c == '.' ? '_' : (c >= 'a' && c <= 'z') ? (char)(c - 32) : c;
    }
    out[8 + n] = '\0';
    return 0;
}

int config_flag_name(const char *key, char *out, size_t cap)
{
    size_t n = strlen(key);
    if (n + 1 > cap)
        return AS_ERANGE;
    for (size_t i = 0; i < n; i++)
        out[i] = key[i] == '.' || key[i] == '_' ? '-' : key[i];
    out[n] = '\0';
    return 0;
}

static bool valid_key(const char *k)
{
    if (!k || !*k || *k == '.' || k[strlen(k) - 1] == '.' || strstr(k, ".."))
        return false;
    for (const char *p = k; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' || *p == '.'))
            return false;
    return strlen(k) < 100;
}

/* Edit distance, for "did you mean" hints (short strings only). */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), row[128];
    if (la >= 127 || lb >= 127)
        return 1000;
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

/* The schema key closest to key (as key or as flag name), or NULL if none is close. */
const char *config__suggest(const struct config *c, const char *key, bool as_flag)
{
    const char *best = NULL;
    size_t bestd = strlen(key) / 3 + 1;
    if (bestd > 3)
        bestd = 3;
    for (size_t i = 0; i < c->n; i++) {
        char name[128];
        const char *cand = c->v[i].opt->key;
        if (as_flag) {
            config_flag_name(cand, name, sizeof name);
            cand = name;
        }
        size_t d = edit_distance(key, cand);
        if (d < bestd || (d == bestd && !best)) {
            bestd = d;
            best = c->v[i].opt->key;
        }
    }
    return best;
}

/* ---- values ---------------------------------------------------------------- */

static struct cfg_value *find(const struct config *c, const char *key)
{
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->v[i].opt->key, key) == 0)
            return &c->v[i];
    return NULL;
}

void config__value_clear(struct cfg_value *v)
{
    free(v->s);
    v->s = NULL;
    for (size_t i = 0; i < v->nlist; i++)
        free(v->list[i]);
    free(v->list);
    v->list = NULL;
    v->nlist = 0;
}

static void fmt_duration(char *out, size_t cap, int64_t ms)
{
    static const struct {
        int64_t div;
        const char *unit;
    } u[] = {{86400000, "d"}, {3600000, "h"}, {60000, "m"}, {1000, "s"}};
    for (size_t i = 0; i < 4; i++)
        if (ms != 0 && ms % u[i].div == 0) {
            snprintf(out, cap, "%lld%s", (long long)(ms / u[i].div), u[i].unit);
            return;
        }
    snprintf(out, cap, "%lldms", (long long)ms);
}

static void fmt_size(char *out, size_t cap, int64_t b)
{
    static const struct {
        int64_t div;
        const char *unit;
    } u[] = {{1099511627776, "TiB"}, {1000000000000, "TB"}, {1073741824, "GiB"}, {1000000000, "GB"},
             {1048576, "MiB"},       {1000000, "MB"},       {1024, "KiB"},       {1000, "KB"}};
    for (size_t i = 0; i < sizeof u / sizeof u[0]; i++)
        if (b != 0 && b % u[i].div == 0) {
            snprintf(out, cap, "%lld%s", (long long)(b / u[i].div), u[i].unit);
            return;
        }
    snprintf(out, cap, "%lld", (long long)b);
}

/* Range of an int-like option as text, in the option's own units. */
void config__fmt_bound(const struct cfg_option *o, int64_t v, char *out, size_t cap)
{
    if (o->type == CFG_DURATION)
        fmt_duration(out, cap, v);
    else if (o->type == CFG_SIZE)
        fmt_size(out, cap, v);
    else
        snprintf(out, cap, "%lld", (long long)v);
}

/*
 * Parses text for option o into a temporary value and checks its bounds.
 * On failure writes the reason into why[cap] and returns AS_EINVAL.
 */
static int parse_scalar(const struct cfg_option *o, const char *text, struct cfg_value *tmp,
                        char *why, size_t cap)
{
    const char *r = NULL;
    int rc = 0;
    switch (o->type) {
    case CFG_INT:
        rc = cfg_parse_int(text, &tmp->i, &r);
        break;
    case CFG_DURATION:
        rc = cfg_parse_duration_ms(text, &tmp->i, &r);
        break;
    case CFG_SIZE:
        rc = cfg_parse_size(text, &tmp->i, &r);
        break;
    case CFG_DOUBLE:
        rc = cfg_parse_double(text, &tmp->d, &r);
        if (!rc && o->dmin < o->dmax && (tmp->d < o->dmin || tmp->d > o->dmax)) {
            snprintf(why, cap, "%s is out of range [%g, %g]", text, o->dmin, o->dmax);
            return AS_EINVAL;
        }
        break;
    case CFG_BOOL:
        rc = cfg_parse_bool(text, &tmp->b, &r);
        break;
    case CFG_STRING:
        if (!(tmp->s = strdup(text))) {
            snprintf(why, cap, "out of memory");
            return AS_ENOMEM;
        }
        return 0;
    default:
        snprintf(why, cap, "not a scalar setting");
        return AS_EINVAL;
    }
    if (rc) {
        snprintf(why, cap, "%s, got '%.80s'", r ? r : "invalid value", text);
        return AS_EINVAL;
    }
    if ((o->type == CFG_INT || o->type == CFG_DURATION || o->type == CFG_SIZE) && o->min < o->max &&
        (tmp->i < o->min || tmp->i > o->max)) {
        char lo[32], hi[32];
        config__fmt_bound(o, o->min, lo, sizeof lo);
        config__fmt_bound(o, o->max, hi, sizeof hi);
        snprintf(why, cap, "%.80s is out of range [%s, %s]", text, lo, hi);
        return AS_EINVAL;
    }
    return 0;
}

/* Splits "a, b,c" into a list (items trimmed, empty items dropped). */
static int split_list(const char *text, struct cfg_value *tmp)
{
    const char *p = text;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        const char *s = p;
        while (n && (*s == ' ' || *s == '\t'))
            s++, n--;
        while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
            n--;
        if (n) {
            char **l = realloc(tmp->list, (tmp->nlist + 1) * sizeof *l);
            if (!l)
                return AS_ENOMEM;
            tmp->list = l;
            if (!(l[tmp->nlist] = strndup(s, n)))
                return AS_ENOMEM;
            tmp->nlist++;
        }
        p = e ? e + 1 : p + strlen(p);
    }
    return 0;
}

/* Moves a parsed temporary into v, recording its source. */
int config__commit(struct cfg_value *v, struct cfg_value *tmp, const char *source, bool set)
{
    char *src = strdup(source);
    if (!src) {
        config__value_clear(tmp);
        return AS_ENOMEM;
    }
    config__value_clear(v);
    free(v->source);
    v->source = src;
    v->i = tmp->i, v->d = tmp->d, v->b = tmp->b, v->s = tmp->s;
    v->list = tmp->list, v->nlist = tmp->nlist, v->node = tmp->node;
    memset(tmp, 0, sizeof *tmp);
    v->has = true;
    v->set = set;
    return 0;
}

/* Parses text (env, flag or default) for v; on error reports "<where>: <reason>". */
int config__apply_text(struct cfg_value *v, const char *text, const char *where, bool set,
                       struct report *r)
{
    struct cfg_value tmp = {0};
    char why[256];
    int rc;
    if (v->opt->type == CFG_STRLIST)
        rc = split_list(text, &tmp);
    else
        rc = parse_scalar(v->opt, text, &tmp, why, sizeof why);
    if (rc) {
        if (v->opt->type == CFG_STRLIST)
            snprintf(why, sizeof why, "out of memory");
        config__report(r, "%s: %s", where, why);
        config__value_clear(&tmp);
        return rc;
    }
    return config__commit(v, &tmp, where, set);
}

/* ---- file layer ------------------------------------------------------------ */

static int apply_node(struct cfg_value *v, const struct cfg_node *n, const char *file,
                      const char *key, struct report *r)
{
    struct cfg_value tmp = {0};
    char why[256], src[512];
    snprintf(src, sizeof src, "%s:%d", file, n->line);
    if (v->opt->type == CFG_NODE) {
        tmp.node = n;
        return config__commit(v, &tmp, src, true);
    }
    if (cfg_node_is_null(n)) {
        config__report(r, "%s: key '%s': missing value", src, key);
        return AS_EINVAL;
    }
    if (v->opt->type == CFG_STRLIST) {
        if (n->type != CFG_NODE_SEQ) {
            config__report(r, "%s: key '%s': expected a list", src, key);
            return AS_EINVAL;
        }
        for (size_t i = 0; i < n->n; i++) {
            const struct cfg_node *it = n->items[i];
            if (it->type != CFG_NODE_SCALAR || strlen(it->str) != it->len) {
                config__report(r, "%s:%d: key '%s': list items must be strings", file, it->line,
                               key);
                config__value_clear(&tmp);
                return AS_EINVAL;
            }
            char **l = realloc(tmp.list, (tmp.nlist + 1) * sizeof *l);
            if (!l || !(l[tmp.nlist] = strdup(it->str))) {
                if (l)
                    tmp.list = l;
                config__value_clear(&tmp);
                return AS_ENOMEM;
            }
            tmp.list = l;
            tmp.nlist++;
        }
        return config__commit(v, &tmp, src, true);
    }
    if (n->type != CFG_NODE_SCALAR) {
        config__report(r, "%s: key '%s': expected a single value, not a %s", src, key,
                       n->type == CFG_NODE_MAP ? "mapping" : "list");
        return AS_EINVAL;
    }
    if (strlen(n->str) != n->len) {
        config__report(r, "%s: key '%s': value contains a NUL byte", src, key);
        return AS_EINVAL;
    }
    if (parse_scalar(v->opt, n->str, &tmp, why, sizeof why)) {
        config__report(r, "%s: key '%s': %s", src, key, why);
        config__value_clear(&tmp);
        return AS_EINVAL;
    }
    return config__commit(v, &tmp, src, true);
}

/* True if some schema key starts with prefix + ".". */
static bool is_section(const struct config *c, const char *prefix)
{
    size_t n = strlen(prefix);
    for (size_t i = 0; i < c->n; i++) {
        const char *k = c->v[i].opt->key;
        if (strncmp(k, prefix, n) == 0 && k[n] == '.')
            return true;
    }
    return false;
}

static void walk_map(struct config *c, const struct cfg_node *map, const char *prefix,
                     const char *file, struct report *r)
{
    for (size_t i = 0; i < map->n; i++) {
        char key[256];
        int kn = snprintf(key, sizeof key, "%s%s%s", prefix, *prefix ? "." : "", map->keys[i]);
        const struct cfg_node *val = map->items[i];
        struct cfg_value *v = kn > 0 && (size_t)kn < sizeof key ? find(c, key) : NULL;
        if (v) {
            apply_node(v, val, file, key, r);
        } else if (kn > 0 && (size_t)kn < sizeof key && is_section(c, key)) {
            if (val->type == CFG_NODE_MAP)
                walk_map(c, val, key, file, r);
            else if (!cfg_node_is_null(val))
                config__report(r, "%s:%d: key '%s': expected a mapping of settings", file,
                               val->line, key);
        } else {
            const char *hint = config__suggest(c, key, false);
            config__report(r, "%s:%d: key '%.200s': unknown key%s%s%s", file, map->key_lines[i],
                           key, hint ? " (did you mean '" : "", hint ? hint : "",
                           hint ? "'?)" : "");
        }
    }
}

static int apply_yaml(struct config *c, const char *data, size_t len, const char *name,
                      struct report *r)
{
    char err[300];
    struct cfg_node *root = NULL;
    int rc = cfg_node_parse(data, len, &root, err, sizeof err);
    if (rc) {
        config__report(r, "%s:%s", name, err);
        return rc;
    }
    if (!(c->file = strdup(name))) {
        cfg_node_free(root);
        return AS_ENOMEM;
    }
    c->root = root;
    if (root->type == CFG_NODE_MAP)
        walk_map(c, root, "", name, r);
    else if (!cfg_node_is_null(root))
        config__report(r, "%s:%d: the file must be a mapping of settings (key: value)", name,
                       root->line);
    return 0;
}

static int load_file(struct config *c, const char *path, struct report *r)
{
    FILE *f = fopen(path, "rb");
    char *data = NULL;
    int rc = AS_EIO;
    if (!f) {
        config__report(r, "%s: cannot open config file: %s", path, strerror(errno));
        goto out;
    }
    data = malloc(CFG_MAX_FILE_BYTES + 1);
    if (!data) {
        rc = AS_ENOMEM;
        goto out;
    }
    size_t len = fread(data, 1, CFG_MAX_FILE_BYTES + 1, f);
    if (ferror(f)) {
        config__report(r, "%s: cannot read config file", path);
        goto out;
    }
    if (len > CFG_MAX_FILE_BYTES) {
        config__report(r, "%s: config file larger than %u bytes", path, CFG_MAX_FILE_BYTES);
        rc = AS_ERANGE;
        goto out;
    }
    rc = apply_yaml(c, data, len, path, r);
out:
    if (f)
        fclose(f);
    free(data);
    return rc;
}

/* ---- schema, help, load ---------------------------------------------------- */

static int check_schema(const struct cfg_option *schema, size_t *count, struct report *r)
{
    size_t n = 0, npos = 0;
    for (; schema[n].key; n++) {
        const struct cfg_option *o = &schema[n];
        if (!valid_key(o->key) || o->type < CFG_INT || o->type > CFG_NODE) {
            config__report(r, "schema: option '%s': invalid key or type", o->key);
            continue;
        }
        if (strcmp(o->key, "config") == 0 || strcmp(o->key, "help") == 0)
            config__report(r, "schema: option '%s': reserved name", o->key);
        if (o->alias && (!*o->alias || strchr(o->alias, '=') || strcmp(o->alias, "c") == 0 ||
                         strcmp(o->alias, "h") == 0 || strcmp(o->alias, "config") == 0 ||
                         strcmp(o->alias, "help") == 0))
            config__report(r, "schema: option '%s': alias '%s' is reserved or invalid", o->key,
                           o->alias);
        for (size_t j = 0; o->alias && j < n; j++) {
            char fl[128];
            const char *other = schema[j].alias;
            if ((other && strcmp(other, o->alias) == 0) ||
                (!config_flag_name(schema[j].key, fl, sizeof fl) && strcmp(fl, o->alias) == 0))
                config__report(r, "schema: option '%s': alias '%s' is taken", o->key, o->alias);
        }
        char own[128];
        for (size_t j = 0; j < n && !config_flag_name(o->key, own, sizeof own); j++)
            if (schema[j].alias && strcmp(schema[j].alias, own) == 0)
                config__report(r, "schema: option '%s': flag --%s is taken by an alias", o->key,
                               own);
        if (o->positional && o->type != CFG_STRING && o->type != CFG_STRLIST)
            config__report(r, "schema: option '%s': only strings and lists can be positional",
                           o->key);
        if (o->positional && npos++)
            config__report(r, "schema: option '%s': a second positional option", o->key);
        for (size_t j = 0; j < n; j++) {
            size_t lj = strlen(schema[j].key);
            if (strcmp(schema[j].key, o->key) == 0)
                config__report(r, "schema: option '%s': duplicate", o->key);
            else if ((strncmp(schema[j].key, o->key, lj) == 0 && o->key[lj] == '.') ||
                     (strncmp(o->key, schema[j].key, strlen(o->key)) == 0 &&
                      schema[j].key[strlen(o->key)] == '.'))
                config__report(r, "schema: options '%s' and '%s' overlap", schema[j].key, o->key);
        }
    }
    *count = n;
    return r->nerr ? AS_EINVAL : 0;
}

void config_free(struct config *c)
{
    if (!c)
        return;
    for (size_t i = 0; c->v && i < c->n; i++) {
        config__value_clear(&c->v[i]);
        free(c->v[i].source);
    }
    free(c->v);
    free(c->file);
    cfg_node_free(c->root);
    free(c);
}

static void check_required(const struct config *c, struct report *r)
{
    for (size_t i = 0; i < c->n; i++) {
        const struct cfg_option *o = c->v[i].opt;
        char env[128], fl[128];
        if (!o->required || c->v[i].has)
            continue;
        if (o->type == CFG_NODE) {
            config__report(r, "key '%s': required (set it in the config file)", o->key);
            continue;
        }
        config_env_name(o->key, env, sizeof env);
        config_flag_name(o->key, fl, sizeof fl);
        config__report(r, "key '%s': required (set it in the config file, %s or --%s%s)", o->key,
                       env, fl, o->positional ? " or as an argument" : "");
    }
}

static struct config *config_new(const struct cfg_option *schema, struct report *r)
{
    size_t n = 0;
    if (check_schema(schema, &n, r))
        return NULL;
    struct config *c = calloc(1, sizeof *c);
    if (!c || !(c->v = calloc(n ? n : 1, sizeof *c->v))) {
        free(c);
        config__report(r, "out of memory");
        return NULL;
    }
    c->n = n;
    for (size_t i = 0; i < n; i++) {
        c->v[i].opt = &schema[i];
        if (!schema[i].def || schema[i].type == CFG_NODE)
            continue;
        char where[160];
        snprintf(where, sizeof where, "schema: default of '%s'", schema[i].key);
        if (config__apply_text(&c->v[i], schema[i].def, where, false, r) == 0) {
            free(c->v[i].source);
            c->v[i].source = strdup("default");
        }
    }
    if (r->nerr) {
        config_free(c);
        return NULL;
    }
    return c;
}

int config_load_ex(const struct cfg_option *schema, int argc, char **argv, char **envp,
                   const char *file, struct config **out, struct buf *msg)
{
    struct report r = {.msg = msg};
    struct config *c = NULL;
    int rc = AS_EINVAL;

    *out = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            if (!msg)
                return CONFIG_HELP;
            return config_help(schema, argv[0], msg) ? AS_ENOMEM : CONFIG_HELP;
        }
    }
    const char *env_file = config__env_get(envp, "AISTACK_CONFIG");
    if (env_file && *env_file)
        file = env_file;
    for (int i = 1; i < argc; i++) {
        if (config__is_config_flag(argv[i])) {
            if (i + 1 >= argc)
                config__report(&r, "flag %s: missing value", argv[i]);
            else
                file = argv[++i];
        } else if (strncmp(argv[i], "--config=", 9) == 0) {
            file = argv[i] + 9;
        }
    }
    if (!(c = config_new(schema, &r)))
        goto out;
    if (file && *file && load_file(c, file, &r) == AS_ENOMEM)
        goto out;
    config__apply_env(c, envp, &r);
    config__apply_flags(c, argc, argv, &r);
    check_required(c, &r);
    if (r.nerr == 0) {
        *out = c;
        c = NULL;
        rc = 0;
    }
out:
    config_free(c);
    return rc;
}

int config_load(const struct cfg_option *schema, int argc, char **argv, struct config **out,
                struct buf *msg)
{
    return config_load_ex(schema, argc, argv, environ, NULL, out, msg);
}

int config_load_yaml(const struct cfg_option *schema, const char *data, size_t len,
                     const char *name, struct config **out, struct buf *msg)
{
    struct report r = {.msg = msg};
    struct config *c = NULL;
    int rc = AS_EINVAL;
    *out = NULL;
    if (!(c = config_new(schema, &r)))
        goto out;
    if (apply_yaml(c, data, len, name ? name : "<config>", &r) == AS_ENOMEM)
        goto out;
    check_required(c, &r);
    if (r.nerr == 0) {
        *out = c;
        c = NULL;
        rc = 0;
    }
out:
    config_free(c);
    return rc;
}

/* ---- getters --------------------------------------------------------------- */

static const struct cfg_value *getv(const struct config *c, const char *key, enum cfg_type t)
{
    const struct cfg_value *v = c ? find(c, key) : NULL;
    if (!v || v->opt->type != t) {
        /* A programming error in the service, caught by its first start. */
        log_error("config: no such option of this type", "key=%s", key ? key : "");
        abort();
    }
    return v;
}

int64_t config_int(const struct config *c, const char *key)
{
    return getv(c, key, CFG_INT)->i;
}

double config_double(const struct config *c, const char *key)
{
    return getv(c, key, CFG_DOUBLE)->d;
}

bool config_bool(const struct config *c, const char *key)
{
    return getv(c, key, CFG_BOOL)->b;
}

const char *config_str(const struct config *c, const char *key)
{
    return getv(c, key, CFG_STRING)->s;
}

int64_t config_duration_ms(const struct config *c, const char *key)
{
    return getv(c, key, CFG_DURATION)->i;
}

int64_t config_size(const struct config *c, const char *key)
{
    return getv(c, key, CFG_SIZE)->i;
}

const char *const *config_strlist(const struct config *c, const char *key, size_t *n)
{
    const struct cfg_value *v = getv(c, key, CFG_STRLIST);
    *n = v->nlist;
    return (const char *const *)v->list;
}

const struct cfg_node *config_node(const struct config *c, const char *key)
{
    return getv(c, key, CFG_NODE)->node;
}

bool config_is_set(const struct config *c, const char *key)
{
    const struct cfg_value *v = c ? find(c, key) : NULL;
    return v && v->set;
}

const char *config_source(const struct config *c, const char *key)
{
    const struct cfg_value *v = c ? find(c, key) : NULL;
    return v && v->source ? v->source : "unset";
}

const char *config_file(const struct config *c)
{
    return c ? c->file : NULL;
}
