/*
 * gw_config.c - the gateway's routing table from YAML (model_list, router_settings),
 * and the refcounted "current table" swapped on SIGHUP.
 *
 * model_list follows LiteLLM's shape: a sequence of entries, each one deployment
 * of a public model_name; entries sharing a model_name form that model's
 * deployment set. Every problem is reported as "FILE:LINE: reason" and the whole
 * build fails, so a bad reload leaves the running table untouched.
 * Not for: the server/key settings (main.c's schema), routing decisions (router.c).
 */
#include "gw.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "core/metrics.h"

#define GW_MAX_KEY_BYTES 4096

static void cerr(struct buf *err, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void cerr(struct buf *err, const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    buf_printf(err, "%s:%d: ", file ? file : "config", line);
    va_start(ap, fmt);
    buf_vprintf(err, fmt, ap);
    va_end(ap);
    buf_append_char(err, '\n');
}

static const char *scalar(const struct cfg_node *n)
{
    if (!n || n->type != CFG_NODE_SCALAR || strlen(n->str) != n->len)
        return NULL;
    return n->str;
}

/* Copies a scalar into dst[cap]; 0, or reports and returns -1. */
static int get_str(const struct cfg_node *n, const char *key, char *dst, size_t cap,
                   const char *file, struct buf *err)
{
    const char *s = scalar(n);
    if (!s || !*s) {
        cerr(err, file, n ? n->line : 0, "'%s' must be a non-empty string", key);
        return -1;
    }
    if (strlen(s) >= cap) {
        cerr(err, file, n->line, "'%s' is too long", key);
        return -1;
    }
    memcpy(dst, s, strlen(s) + 1);
    return 0;
}

static int get_int(const struct cfg_node *n, const char *key, int64_t lo, int64_t hi, int64_t *out,
                   const char *file, struct buf *err)
{
    const char *why = "expected an integer";
    const char *s = scalar(n);
    if (!s || cfg_parse_int(s, out, &why) != 0 || *out < lo || *out > hi) {
        if (s && !cfg_parse_int(s, out, NULL))
            why = "out of range";
        cerr(err, file, n ? n->line : 0, "'%s': %s", key, why);
        return -1;
    }
    return 0;
}

static int get_dur(const struct cfg_node *n, const char *key, uint32_t *out, const char *file,
                   struct buf *err)
{
    const char *why = "expected a duration like 30s or 500ms";
    int64_t v;
    const char *s = scalar(n);
    if (!s || cfg_parse_duration_ms(s, &v, &why) != 0 || v < 0 || v > 24 * 3600 * 1000) {
        cerr(err, file, n ? n->line : 0, "'%s': %s", key, why);
        return -1;
    }
    *out = (uint32_t)v;
    return 0;
}

static int get_price(const struct cfg_node *n, const char *key, double *out, const char *file,
                     struct buf *err)
{
    const char *s = scalar(n);
    if (!s || cfg_parse_double(s, out, NULL) != 0 || *out < 0 || *out > 1e6) {
        cerr(err, file, n ? n->line : 0, "'%s': expected a price in USD per million tokens", key);
        return -1;
    }
    return 0;
}

/* Reads a secret file (first line, trailing whitespace dropped). NULL on error. */
static char *read_key_file(const char *path, const char **why)
{
    char tmp[GW_MAX_KEY_BYTES + 1];
    size_t len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        *why = "cannot open api_key_file";
        return NULL;
    }
    for (;;) {
        ssize_t r = read(fd, tmp + len, sizeof tmp - 1 - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        len += (size_t)r;
        if (len == sizeof tmp - 1)
            break;
    }
    close(fd);
    if (len >= GW_MAX_KEY_BYTES) {
        *why = "api_key_file is larger than 4 KiB";
        return NULL;
    }
    tmp[len] = 0;
    char *nl = strpbrk(tmp, "\r\n");
    if (nl)
        *nl = 0;
    len = strlen(tmp);
    while (len && (tmp[len - 1] == ' ' || tmp[len - 1] == '\t'))
        tmp[--len] = 0;
    char *k = strdup(tmp);
    memset(tmp, 0, sizeof tmp);
    if (!k)
        *why = "out of memory";
    return k;
}

static int key_ok(const char *k)
{
    for (; *k; k++)
        if ((unsigned char)*k < 0x21 || (unsigned char)*k > 0x7e)
            return 0;
    return 1;
}

/* Parses one model_list entry into d; 0 or -1 (reported). */
static int parse_deployment(const struct cfg_node *e, struct gw_deployment *d, const char *file,
                            struct buf *err)
{
    int bad = 0;
    int64_t v;
    d->weight = 1;
    d->provider = GW_PROVIDER_COMPAT;
    d->timeout_ms = 600000;
    for (size_t i = 0; i < e->n; i++) {
        const char *k = e->keys[i];
        const struct cfg_node *n = e->items[i];
        if (!strcmp(k, "model_name")) {
            continue;
        } else if (!strcmp(k, "provider")) {
            const char *s = scalar(n);
            if (s && !strcmp(s, "openai"))
                d->provider = GW_PROVIDER_OPENAI;
            else if (s && !strcmp(s, "openai-compatible"))
                d->provider = GW_PROVIDER_COMPAT;
            else if (s && !strcmp(s, "aistack"))
                d->provider = GW_PROVIDER_AISTACK;
            else {
                cerr(err, file, n->line, "'provider' must be openai, openai-compatible or aistack");
                bad = 1;
            }
        } else if (!strcmp(k, "name")) {
            bad |= get_str(n, k, d->name, sizeof d->name, file, err);
        } else if (!strcmp(k, "base_url")) {
            if (get_str(n, k, d->base_url, sizeof d->base_url, file, err) == 0) {
                if (strncmp(d->base_url, "http://", 7) && strncmp(d->base_url, "https://", 8)) {
                    cerr(err, file, n->line, "'base_url' must start with http:// or https://");
                    bad = 1;
                }
                size_t l = strlen(d->base_url);
                while (l && d->base_url[l - 1] == '/')
                    d->base_url[--l] = 0;
            } else
                bad = 1;
        } else if (!strcmp(k, "model")) {
            bad |= get_str(n, k, d->model, sizeof d->model, file, err);
        } else if (!strcmp(k, "api_key_env") || !strcmp(k, "api_key_file")) {
            char ref[GW_MAX_URL];
            if (get_str(n, k, ref, sizeof ref, file, err)) {
                bad = 1;
                continue;
            }
            if (d->api_key) {
                cerr(err, file, n->line, "give only one of api_key_env and api_key_file");
                bad = 1;
                continue;
            }
            const char *why = NULL;
            if (k[8] == 'e') {
                const char *val = getenv(ref);
                if (!val || !*val)
                    why = "environment variable named by api_key_env is not set";
                else if (!(d->api_key = strdup(val)))
                    why = "out of memory";
            } else {
                d->api_key = read_key_file(ref, &why);
            }
            if (!why && d->api_key && !key_ok(d->api_key))
                why = "the API key contains spaces or control characters";
            if (why) {
                cerr(err, file, n->line, "%s", why);
                bad = 1;
            }
        } else if (!strcmp(k, "api_key")) {
            cerr(err, file, n->line,
                 "'api_key' is not accepted in the file: use api_key_env or api_key_file");
            bad = 1;
        } else if (!strcmp(k, "weight")) {
            bad |= get_int(n, k, 1, 1000000, &v, file, err) ? 1 : (d->weight = (int)v, 0);
        } else if (!strcmp(k, "priority")) {
            bad |= get_int(n, k, 0, 100, &v, file, err) ? 1 : (d->priority = (int)v, 0);
        } else if (!strcmp(k, "rpm")) {
            bad |= get_int(n, k, 0, INT64_C(1) << 40, &d->rpm, file, err) ? 1 : 0;
        } else if (!strcmp(k, "tpm")) {
            bad |= get_int(n, k, 0, INT64_C(1) << 50, &d->tpm, file, err) ? 1 : 0;
        } else if (!strcmp(k, "timeout")) {
            bad |= get_dur(n, k, &d->timeout_ms, file, err) ? 1 : 0;
        } else if (!strcmp(k, "dns_discovery")) {
            bool b = false;
            const char *x = scalar(n);
            if (!x || cfg_parse_bool(x, &b, NULL) != 0) {
                cerr(err, file, n->line, "'dns_discovery' must be true or false");
                bad = 1;
            }
            d->dns = b;
        } else if (!strcmp(k, "input_price")) {
            bad |= get_price(n, k, &d->in_price, file, err) ? 1 : 0;
        } else if (!strcmp(k, "output_price")) {
            bad |= get_price(n, k, &d->out_price, file, err) ? 1 : 0;
        } else {
            cerr(err, file, e->key_lines[i], "unknown key '%s' in a model_list entry", k);
            bad = 1;
        }
    }
    if (!d->base_url[0]) {
        if (d->provider == GW_PROVIDER_OPENAI)
            memcpy(d->base_url, "https://api.openai.com/v1", sizeof "https://api.openai.com/v1");
        else {
            cerr(err, file, e->line, "'base_url' is required for this provider");
            bad = 1;
        }
    }
    if (!d->model[0]) {
        cerr(err, file, e->line, "'model' (the upstream model name) is required");
        bad = 1;
    }
    if (d->api_key) {
        int n =
            snprintf(d->auth_header, sizeof d->auth_header, "Authorization: Bearer %s", d->api_key);
        if (n < 0 || (size_t)n >= sizeof d->auth_header) {
            cerr(err, file, e->line, "the API key is too long");
            bad = 1;
        }
    }
    return bad ? -1 : 0;
}

static struct gw_model *find_or_add(struct gw_table *t, const char *name)
{
    for (size_t i = 0; i < t->n_models; i++)
        if (!strcmp(t->models[i].name, name))
            return &t->models[i];
    if (t->n_models == GW_MAX_MODELS)
        return NULL;
    struct gw_model *m = &t->models[t->n_models++];
    memcpy(m->name, name, strlen(name) + 1);
    return m;
}

static int parse_settings(const struct cfg_node *s, struct gw_table *t, const char *file,
                          struct buf *err)
{
    struct gw_settings *st = &t->set;
    int bad = 0;
    int64_t v;
    st->num_retries = 2;
    st->retry_base_ms = 100;
    st->retry_max_ms = 5000;
    st->allowed_fails = 3;
    st->cooldown_ms = 30000;
    st->dns_refresh_ms = 30000;
    int strategy = GW_STRAT_WEIGHTED;
    const struct cfg_node *fb = NULL;
    if (s && s->type != CFG_NODE_MAP && !cfg_node_is_null(s)) {
        cerr(err, file, s->line, "'router_settings' must be a map");
        return -1;
    }
    for (size_t i = 0; s && s->type == CFG_NODE_MAP && i < s->n; i++) {
        const char *k = s->keys[i];
        const struct cfg_node *n = s->items[i];
        if (!strcmp(k, "routing_strategy")) {
            const char *x = scalar(n);
            strategy = x ? gw_strategy_parse(x) : -1;
            if (strategy < 0) {
                cerr(err, file, n->line,
                     "'routing_strategy' must be weighted, least-busy or latency");
                bad = 1;
            }
        } else if (!strcmp(k, "num_retries")) {
            bad |= get_int(n, k, 0, 10, &v, file, err) ? 1 : (st->num_retries = (int)v, 0);
        } else if (!strcmp(k, "allowed_fails")) {
            bad |= get_int(n, k, 1, 1000, &v, file, err) ? 1 : (st->allowed_fails = (int)v, 0);
        } else if (!strcmp(k, "retry_base")) {
            bad |= get_dur(n, k, &st->retry_base_ms, file, err) ? 1 : 0;
        } else if (!strcmp(k, "retry_max")) {
            bad |= get_dur(n, k, &st->retry_max_ms, file, err) ? 1 : 0;
        } else if (!strcmp(k, "cooldown")) {
            bad |= get_dur(n, k, &st->cooldown_ms, file, err) ? 1 : 0;
        } else if (!strcmp(k, "health_check_interval")) {
            bad |= get_dur(n, k, &st->health_interval_ms, file, err) ? 1 : 0;
        } else if (!strcmp(k, "dns_refresh")) {
            bad |= get_dur(n, k, &st->dns_refresh_ms, file, err) ? 1 : 0;
        } else if (!strcmp(k, "fallbacks")) {
            fb = n;
            if (n->type != CFG_NODE_MAP) {
                cerr(err, file, n->line,
                     "'fallbacks' must map a model name to a list of model names");
                bad = 1;
                fb = NULL;
            }
        } else {
            cerr(err, file, s->key_lines[i], "unknown key '%s' in router_settings", k);
            bad = 1;
        }
    }
    for (size_t i = 0; i < t->n_models; i++)
        t->models[i].strategy = strategy < 0 ? GW_STRAT_WEIGHTED : (enum gw_strategy)strategy;
    for (size_t i = 0; fb && i < fb->n; i++) {
        struct gw_model *m = NULL;
        for (size_t j = 0; j < t->n_models; j++)
            if (!strcmp(t->models[j].name, fb->keys[i]))
                m = &t->models[j];
        const struct cfg_node *l = fb->items[i];
        if (!m) {
            cerr(err, file, fb->key_lines[i], "fallbacks: unknown model '%s'", fb->keys[i]);
            bad = 1;
            continue;
        }
        if (l->type != CFG_NODE_SEQ || l->n > 8) {
            cerr(err, file, l->line, "fallbacks of '%s' must be a list of at most 8 names",
                 fb->keys[i]);
            bad = 1;
            continue;
        }
        m->fallbacks = calloc(l->n ? l->n : 1, sizeof(char *));
        for (size_t j = 0; m->fallbacks && j < l->n; j++) {
            const char *x = scalar(l->items[j]);
            if (!x || !gw_table_find(t, x) || !strcmp(x, m->name)) {
                cerr(err, file, l->items[j]->line,
                     "fallback '%s' is not another model of model_list", x ? x : "?");
                bad = 1;
                continue;
            }
            if ((m->fallbacks[m->n_fallbacks] = strdup(x)))
                m->n_fallbacks++;
        }
    }
    return bad ? -1 : 0;
}

struct gw_table *gw_table_build(const struct cfg_node *list, const struct cfg_node *settings,
                                const char *file, struct buf *err)
{
    static atomic_uint_fast64_t generation;
    struct gw_table *t = calloc(1, sizeof(*t));
    int bad = 0;
    if (!t || !(t->models = calloc(GW_MAX_MODELS, sizeof(struct gw_model)))) {
        buf_append_cstr(err, "out of memory\n");
        goto fail;
    }
    atomic_init(&t->refs, 1);
    t->generation = ++generation;
    if (list && list->type != CFG_NODE_SEQ && !cfg_node_is_null(list)) {
        cerr(err, file, list->line, "'model_list' must be a list of deployments");
        goto fail;
    }
    for (size_t i = 0; list && list->type == CFG_NODE_SEQ && i < list->n; i++) {
        const struct cfg_node *e = list->items[i];
        if (e->type != CFG_NODE_MAP) {
            cerr(err, file, e->line, "a model_list entry must be a map");
            bad = 1;
            continue;
        }
        char name[GW_MAX_NAME];
        const struct cfg_node *mn = cfg_node_get(e, "model_name");
        if (!mn) {
            cerr(err, file, e->line, "'model_name' is required");
            bad = 1;
            continue;
        }
        if (get_str(mn, "model_name", name, sizeof name, file, err)) {
            bad = 1;
            continue;
        }
        struct gw_model *m = find_or_add(t, name);
        if (!m) {
            cerr(err, file, e->line, "more than 256 models");
            bad = 1;
            break;
        }
        if (m->n_dep == GW_MAX_DEPLOYMENTS) {
            cerr(err, file, e->line, "more than 64 deployments of '%s'", name);
            bad = 1;
            continue;
        }
        if (!m->dep && !(m->dep = calloc(GW_MAX_DEPLOYMENTS, sizeof(struct gw_deployment)))) {
            buf_append_cstr(err, "out of memory\n");
            goto fail;
        }
        struct gw_deployment *d = &m->dep[m->n_dep++];
        pthread_mutex_init(&d->st.win_mu, NULL);
        if (parse_deployment(e, d, file, err))
            bad = 1;
        if (!d->name[0])
            snprintf(d->name, sizeof d->name, "%.100s/%zu", name, m->n_dep - 1);
        for (size_t j = 0; j + 1 < m->n_dep; j++)
            if (!strcmp(m->dep[j].name, d->name)) {
                cerr(err, file, e->line, "duplicate deployment name '%s'", d->name);
                bad = 1;
            }
    }
    if (parse_settings(settings, t, file, err))
        bad = 1;
    if (bad)
        goto fail;
    return t;
fail:
    gw_table_release(t);
    return NULL;
}

void gw_table_bind_metrics(struct gw_table *t)
{
    for (size_t i = 0; i < t->n_models; i++) {
        struct gw_model *m = &t->models[i];
        for (size_t j = 0; j < m->n_dep; j++) {
            struct gw_deployment *d = &m->dep[j];
            d->m_ok = metric_labels(gw_mf.upstream, m->name, d->name, "ok");
            d->m_err = metric_labels(gw_mf.upstream, m->name, d->name, "error");
            d->m_latency = metric_labels(gw_mf.latency, m->name, d->name);
            d->m_ttft = metric_labels(gw_mf.ttft, m->name, d->name);
            d->m_tok_in = metric_labels(gw_mf.tokens, m->name, d->name, "input");
            d->m_tok_out = metric_labels(gw_mf.tokens, m->name, d->name, "output");
            d->m_cost = metric_labels(gw_mf.cost, m->name, d->name);
            d->m_healthy = metric_labels(gw_mf.healthy, m->name, d->name);
        }
    }
}

void gw_table_release(struct gw_table *t)
{
    if (!t || atomic_fetch_sub(&t->refs, 1) != 1)
        return;
    for (size_t i = 0; t->models && i < t->n_models; i++) {
        struct gw_model *m = &t->models[i];
        for (size_t j = 0; j < m->n_dep; j++) {
            struct gw_deployment *d = &m->dep[j];
            if (d->api_key) {
                memset(d->api_key, 0, strlen(d->api_key));
                free(d->api_key);
            }
            memset(d->auth_header, 0, sizeof d->auth_header);
            pthread_mutex_destroy(&d->st.win_mu);
        }
        for (size_t j = 0; j < m->n_fallbacks; j++)
            free(m->fallbacks[j]);
        free(m->fallbacks);
        free(m->dep);
    }
    free(t->models);
    free(t);
}

const struct gw_model *gw_table_find(const struct gw_table *t, const char *name)
{
    for (size_t i = 0; t && i < t->n_models; i++)
        if (!strcmp(t->models[i].name, name))
            return &t->models[i];
    return NULL;
}

void gw_table_inherit(struct gw_table *t, const struct gw_table *old)
{
    for (size_t i = 0; old && i < t->n_models; i++) {
        const struct gw_model *om = gw_table_find(old, t->models[i].name);
        for (size_t j = 0; om && j < t->models[i].n_dep; j++) {
            struct gw_deployment *d = &t->models[i].dep[j];
            for (size_t k = 0; k < om->n_dep; k++) {
                const struct gw_dep_state *o = &om->dep[k].st;
                if (strcmp(om->dep[k].name, d->name) || strcmp(om->dep[k].base_url, d->base_url))
                    continue;
                atomic_store(&d->st.consec_fail, atomic_load(&o->consec_fail));
                atomic_store(&d->st.cool_until, atomic_load(&o->cool_until));
                atomic_store(&d->st.cooled, atomic_load(&o->cooled));
                atomic_store(&d->st.health_down, atomic_load(&o->health_down));
                atomic_store(&d->st.ewma_us, atomic_load(&o->ewma_us));
            }
        }
    }
}

static pthread_mutex_t cur_mu = PTHREAD_MUTEX_INITIALIZER;
static struct gw_table *cur_table;

struct gw_table *gw_current_acquire(void)
{
    pthread_mutex_lock(&cur_mu);
    struct gw_table *t = cur_table;
    if (t)
        atomic_fetch_add(&t->refs, 1);
    pthread_mutex_unlock(&cur_mu);
    return t;
}

void gw_current_publish(struct gw_table *t)
{
    /* the health gauges are shared by every table with the same names: the published
     * table owns them (tables built and dropped by the DNS refresher never touch them) */
    for (size_t i = 0; t && i < t->n_models; i++)
        for (size_t j = 0; j < t->models[i].n_dep; j++)
            metric_set(t->models[i].dep[j].m_healthy,
                       atomic_load(&t->models[i].dep[j].st.cooled) ? 0 : 1);
    pthread_mutex_lock(&cur_mu);
    struct gw_table *old = cur_table;
    cur_table = t;
    pthread_mutex_unlock(&cur_mu);
    gw_table_release(old);
}
