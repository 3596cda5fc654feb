/*
 * metrics.c - Prometheus registry (see metrics.h).
 *
 * Hot-path updates are wait-free or lock-free atomics on the series itself:
 * counters keep an integer part (fetch_add) plus a double part (CAS on the
 * bit pattern) for fractional adds; gauges are one CAS'd double; histograms
 * keep one non-cumulative count per bucket (fetch_add) and a CAS'd sum. Each
 * series is cache-line aligned so that hot series never share a line.
 *
 * Families hold their series in a chained hash table guarded by a rwlock:
 * lookups of existing series share it, creation and rendering take it
 * exclusively/shared. The registry's mutex only guards the family list.
 */
#include "core/metrics.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/json.h"
#include "core/log.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

const double metrics_buckets_latency[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                          0.5,   1,      2.5,   5,    10,    30,   60};
const size_t metrics_buckets_latency_n =
    sizeof metrics_buckets_latency / sizeof metrics_buckets_latency[0];
const double metrics_buckets_count[] = {1,   2,    4,    8,    16,   32,    64,    128,  256,
                                        512, 1024, 2048, 4096, 8192, 16384, 32768, 65536};
const size_t metrics_buckets_count_n =
    sizeof metrics_buckets_count / sizeof metrics_buckets_count[0];

#define CACHE_LINE 64

struct metric {
    _Atomic uint64_t ival;  /* counter: integral increments */
    _Atomic uint64_t dbits; /* counter fraction / gauge value / histogram sum (double) */
    struct metric_family *fam;
    struct metric *hnext; /* hash chain */
    struct metric *next;  /* creation order, for rendering */
    uint64_t hash;
    char **values;             /* nlabels label values (UTF-8 repaired) */
    _Atomic uint64_t counts[]; /* histogram: nbuckets + 1 (last is +Inf) */
};

struct metric_family {
    struct metric_family *next;
    char *name;
    char *help;
    enum metric_type type;
    size_t nlabels;
    char **labels;
    double *buckets;
    size_t nbuckets;
    pthread_rwlock_t lock;
    struct metric **table; /* chained hash table, tcap buckets (power of two) */
    size_t tcap;
    size_t nseries;
    _Atomic size_t max_series;
    struct metric *first, *last;
    bool warned;
};

#define MAX_COLLECTORS 32

struct metrics_registry {
    pthread_mutex_t mu;
    struct metric_family *first, *last;
    metrics_collect_fn collect[MAX_COLLECTORS];
    void *collect_ud[MAX_COLLECTORS];
    void (*release[MAX_COLLECTORS])(void *ud);
    size_t ncollect;
    bool process_registered;
};

/* ---- atomics on doubles ---------------------------------------------------- */

static inline double bits_to_double(uint64_t u)
{
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

static inline uint64_t double_to_bits(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}

static void atomic_add_double(_Atomic uint64_t *p, double v)
{
    uint64_t old = atomic_load_explicit(p, memory_order_relaxed);
    for (;;) {
        uint64_t nw = double_to_bits(bits_to_double(old) + v);
        if (atomic_compare_exchange_weak_explicit(p, &old, nw, memory_order_relaxed,
                                                  memory_order_relaxed))
            return;
    }
}

static double atomic_load_double(const _Atomic uint64_t *p)
{
    return bits_to_double(atomic_load_explicit((_Atomic uint64_t *)p, memory_order_relaxed));
}

/* ---- hot path -------------------------------------------------------------- */

void metric_inc(struct metric *m)
{
    if (!m)
        return;
    if (m->fam->type == METRIC_COUNTER)
        atomic_fetch_add_explicit(&m->ival, 1, memory_order_relaxed);
    else if (m->fam->type == METRIC_GAUGE)
        atomic_add_double(&m->dbits, 1.0);
}

void metric_add(struct metric *m, double v)
{
    if (!m)
        return;
    if (m->fam->type == METRIC_COUNTER) {
        if (!(v >= 0)) /* negative or NaN: counters only go up */
            return;
        if (v <= 9007199254740992.0 && v == (double)(uint64_t)v)
            atomic_fetch_add_explicit(&m->ival, (uint64_t)v, memory_order_relaxed);
        else
            atomic_add_double(&m->dbits, v);
    } else if (m->fam->type == METRIC_GAUGE) {
        atomic_add_double(&m->dbits, v);
    }
}

void metric_dec(struct metric *m)
{
    if (m && m->fam->type == METRIC_GAUGE)
        atomic_add_double(&m->dbits, -1.0);
}

void metric_set(struct metric *m, double v)
{
    if (!m || m->fam->type == METRIC_HISTOGRAM)
        return;
    if (m->fam->type == METRIC_COUNTER)
        atomic_store_explicit(&m->ival, 0, memory_order_relaxed);
    atomic_store_explicit(&m->dbits, double_to_bits(v), memory_order_relaxed);
}

void metric_observe(struct metric *m, double v)
{
    if (!m || m->fam->type != METRIC_HISTOGRAM || isnan(v))
        return;
    const struct metric_family *f = m->fam;
    size_t i = 0;
    while (i < f->nbuckets && v > f->buckets[i])
        i++;
    atomic_fetch_add_explicit(&m->counts[i], 1, memory_order_relaxed);
    atomic_add_double(&m->dbits, v);
}

static double counter_value(const struct metric *m)
{
    uint64_t i = atomic_load_explicit((_Atomic uint64_t *)&m->ival, memory_order_relaxed);
    return (double)i + atomic_load_double(&m->dbits);
}

static uint64_t hist_total(const struct metric *m, uint64_t *cum)
{
    uint64_t total = 0;
    for (size_t i = 0; i <= m->fam->nbuckets; i++) {
        total += atomic_load_explicit((_Atomic uint64_t *)&m->counts[i], memory_order_relaxed);
        if (cum)
            cum[i] = total;
    }
    return total;
}

double metric_value(const struct metric *m)
{
    if (!m)
        return 0;
    switch (m->fam->type) {
    case METRIC_COUNTER:
        return counter_value(m);
    case METRIC_GAUGE:
        return atomic_load_double(&m->dbits);
    case METRIC_HISTOGRAM:
        return (double)hist_total(m, NULL);
    }
    return 0;
}

double metric_hist_sum(const struct metric *m)
{
    if (!m || m->fam->type != METRIC_HISTOGRAM)
        return 0;
    return atomic_load_double(&m->dbits);
}

/* ---- registry and families ------------------------------------------------- */

struct metrics_registry *metrics_registry_new(void)
{
    struct metrics_registry *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    pthread_mutex_init(&r->mu, NULL);
    return r;
}

static void series_free(struct metric *m, size_t nlabels)
{
    if (!m)
        return;
    if (m->values)
        for (size_t i = 0; i < nlabels; i++)
            free(m->values[i]);
    free(m->values);
    free(m);
}

static void family_free(struct metric_family *f)
{
    if (!f)
        return;
    for (struct metric *m = f->first, *n; m; m = n) {
        n = m->next;
        series_free(m, f->nlabels);
    }
    for (size_t i = 0; f->labels && i < f->nlabels; i++)
        free(f->labels[i]);
    free(f->labels);
    free(f->table);
    free(f->buckets);
    free(f->name);
    free(f->help);
    pthread_rwlock_destroy(&f->lock);
    free(f);
}

void metrics_registry_free(struct metrics_registry *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->ncollect; i++)
        if (r->release[i])
            r->release[i](r->collect_ud[i]);
    for (struct metric_family *f = r->first, *n; f; f = n) {
        n = f->next;
        family_free(f);
    }
    pthread_mutex_destroy(&r->mu);
    free(r);
}

static struct metrics_registry *g_default;
static pthread_once_t g_default_once = PTHREAD_ONCE_INIT;

static void default_init(void)
{
    g_default = metrics_registry_new();
}

struct metrics_registry *metrics_default(void)
{
    pthread_once(&g_default_once, default_init);
    if (!g_default) {
        /* Start-up allocation failure: nothing sensible can continue. */
        log_error("metrics: cannot allocate the default registry", NULL);
        abort();
    }
    return g_default;
}

static bool valid_metric_name(const char *s)
{
    if (!s || !*s)
        return false;
    for (size_t i = 0; s[i]; i++) {
        char c = s[i];
        bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
        if (!alpha && !(i > 0 && c >= '0' && c <= '9'))
            return false;
    }
    return true;
}

static bool valid_label_name(const char *s)
{
    if (!valid_metric_name(s) || strchr(s, ':') || strncmp(s, "__", 2) == 0)
        return false;
    return strcmp(s, "le") != 0 && strcmp(s, "quantile") != 0;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

static bool same_shape(const struct metric_family *f, enum metric_type type,
                       const char *const *labels, size_t nl, const double *buckets, size_t nb)
{
    if (f->type != type || f->nlabels != nl || f->nbuckets != nb)
        return false;
    for (size_t i = 0; i < nl; i++)
        if (strcmp(f->labels[i], labels[i]) != 0)
            return false;
    for (size_t i = 0; i < nb; i++)
        if (f->buckets[i] != buckets[i])
            return false;
    return true;
}

static struct metric *series_alloc(struct metric_family *f)
{
    size_t extra = f->type == METRIC_HISTOGRAM ? (f->nbuckets + 1) * sizeof(_Atomic uint64_t) : 0;
    size_t size = sizeof(struct metric) + extra;
    size = (size + CACHE_LINE - 1) / CACHE_LINE * CACHE_LINE;
    struct metric *m = aligned_alloc(CACHE_LINE, size);
    if (!m)
        return NULL;
    memset(m, 0, size);
    m->fam = f;
    return m;
}

static struct metric_family *family_create(struct metrics_registry *r, enum metric_type type,
                                           const char *name, const char *help,
                                           const char *const *labels, const double *buckets,
                                           size_t nb)
{
    struct metric_family *f = NULL, *ret = NULL;
    size_t nl = 0;
    const char *why = NULL;

    if (!r)
        r = metrics_default();
    if (!valid_metric_name(name)) {
        why = "invalid metric name";
        goto out;
    }
    if (!help || !*help) {
        why = "help text required";
        goto out;
    }
    if (type == METRIC_COUNTER && !ends_with(name, "_total")) {
        why = "counter names must end in _total";
        goto out;
    }
    if (type != METRIC_COUNTER && ends_with(name, "_total")) {
        why = "only counters may end in _total";
        goto out;
    }
    while (labels && labels[nl]) {
        if (nl >= METRICS_MAX_LABELS) {
            why = "too many labels";
            goto out;
        }
        if (!valid_label_name(labels[nl])) {
            why = "invalid label name";
            goto out;
        }
        for (size_t j = 0; j < nl; j++)
            if (strcmp(labels[j], labels[nl]) == 0) {
                why = "duplicate label name";
                goto out;
            }
        nl++;
    }
    if (type == METRIC_HISTOGRAM) {
        if (!buckets || nb == 0 || nb > METRICS_MAX_BUCKETS) {
            why = "histogram needs 1..64 buckets";
            goto out;
        }
        for (size_t i = 0; i < nb; i++)
            if (!isfinite(buckets[i]) || (i > 0 && !(buckets[i] > buckets[i - 1]))) {
                why = "buckets must be finite and strictly increasing";
                goto out;
            }
    } else {
        nb = 0;
    }

    pthread_mutex_lock(&r->mu);
    for (struct metric_family *e = r->first; e; e = e->next) {
        if (strcmp(e->name, name) == 0) {
            ret = same_shape(e, type, labels, nl, buckets, nb) ? e : NULL;
            if (!ret)
                why = "registered before with a different type, labels or buckets";
            pthread_mutex_unlock(&r->mu);
            goto out;
        }
    }
    f = calloc(1, sizeof *f);
    if (!f)
        goto unlock;
    pthread_rwlock_init(&f->lock, NULL);
    f->type = type;
    f->name = strdup(name);
    f->help = strdup(help);
    f->nlabels = nl;
    f->labels = calloc(nl + 1, sizeof *f->labels);
    f->tcap = 16;
    f->table = calloc(f->tcap, sizeof *f->table);
    atomic_init(&f->max_series, METRICS_DEFAULT_MAX_SERIES);
    if (!f->name || !f->help || !f->labels || !f->table)
        goto unlock;
    for (size_t i = 0; i < nl; i++)
        if (!(f->labels[i] = strdup(labels[i])))
            goto unlock;
    if (nb) {
        f->buckets = malloc(nb * sizeof *f->buckets);
        if (!f->buckets)
            goto unlock;
        memcpy(f->buckets, buckets, nb * sizeof *f->buckets);
        f->nbuckets = nb;
    }
    if (nl == 0) {
        /* The single series exists from the start so that it renders as 0. */
        struct metric *m = series_alloc(f);
        if (!m || !(m->values = calloc(1, sizeof *m->values))) {
            free(m);
            goto unlock;
        }
        f->first = f->last = m;
        f->table[0] = m;
        f->nseries = 1;
    }
    if (r->last)
        r->last->next = f;
    else
        r->first = f;
    r->last = f;
    ret = f;
    f = NULL;
unlock:
    pthread_mutex_unlock(&r->mu);
    if (!ret && !why)
        why = "out of memory";
out:
    family_free(f);
    if (!ret)
        log_error("metrics: cannot register family", "name=%s reason=\"%s\"", name ? name : "",
                  why ? why : "unknown");
    return ret;
}

struct metric_family *metrics_counter_new(struct metrics_registry *r, const char *name,
                                          const char *help, const char *const *labels)
{
    return family_create(r, METRIC_COUNTER, name, help, labels, NULL, 0);
}

struct metric_family *metrics_gauge_new(struct metrics_registry *r, const char *name,
                                        const char *help, const char *const *labels)
{
    return family_create(r, METRIC_GAUGE, name, help, labels, NULL, 0);
}

struct metric_family *metrics_histogram_new(struct metrics_registry *r, const char *name,
                                            const char *help, const char *const *labels,
                                            const double *buckets, size_t n)
{
    return family_create(r, METRIC_HISTOGRAM, name, help, labels, buckets, n);
}

void metric_family_set_max_series(struct metric_family *f, size_t max)
{
    if (f)
        atomic_store(&f->max_series, max);
}

/* ---- series lookup --------------------------------------------------------- */

static uint64_t hash_values(size_t n, const char *const *values)
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a, with a separator between values */
    for (size_t i = 0; i < n; i++) {
        for (const unsigned char *p = (const unsigned char *)values[i]; *p; p++)
            h = (h ^ *p) * 0x100000001b3ull;
        h = (h ^ 0xff) * 0x100000001b3ull;
    }
    return h;
}

/* Copies s, replacing invalid UTF-8 with U+FFFD so the exposition stays valid UTF-8. */
static char *dup_utf8(const char *s)
{
    struct buf b;
    buf_init(&b, 1u << 20);
    size_t n = strlen(s);
    for (size_t i = 0; i < n;) {
        size_t k = json_utf8_seq((const unsigned char *)s + i, n - i);
        int rc = k ? buf_append(&b, s + i, k) : buf_append(&b, "\xEF\xBF\xBD", 3);
        if (rc) {
            buf_free(&b);
            return NULL;
        }
        i += k ? k : 1;
    }
    return buf_steal(&b);
}

static bool series_matches(const struct metric *m, uint64_t h, size_t n, const char *const *v,
                           char *const *repaired)
{
    if (m->hash != h)
        return false;
    for (size_t i = 0; i < n; i++)
        if (strcmp(m->values[i], repaired ? repaired[i] : v[i]) != 0)
            return false;
    return true;
}

static struct metric *find_series(struct metric_family *f, uint64_t h, size_t n,
                                  const char *const *v)
{
    for (struct metric *m = f->table[h & (f->tcap - 1)]; m; m = m->hnext)
        if (series_matches(m, h, n, v, NULL))
            return m;
    return NULL;
}

static int grow_table(struct metric_family *f)
{
    size_t cap = f->tcap * 2;
    struct metric **t = calloc(cap, sizeof *t);
    if (!t)
        return AS_ENOMEM;
    for (struct metric *m = f->first; m; m = m->next) {
        m->hnext = t[m->hash & (cap - 1)];
        t[m->hash & (cap - 1)] = m;
    }
    free(f->table);
    f->table = t;
    f->tcap = cap;
    return 0;
}

struct metric *metric_family_series(struct metric_family *f, size_t n, const char *const *values)
{
    if (!f || n != f->nlabels)
        return NULL;
    if (n == 0)
        return f->first;
    for (size_t i = 0; i < n; i++)
        if (!values[i])
            return NULL;
    uint64_t h = hash_values(n, values);

    pthread_rwlock_rdlock(&f->lock);
    struct metric *m = find_series(f, h, n, values);
    pthread_rwlock_unlock(&f->lock);
    if (m)
        return m;

    /* Label values are stored UTF-8-repaired; hash the stored form so lookups agree. */
    char *rep[METRICS_MAX_LABELS] = {0};
    bool changed = false;
    for (size_t i = 0; i < n; i++) {
        if (!(rep[i] = dup_utf8(values[i])))
            goto out;
        changed |= strcmp(rep[i], values[i]) != 0;
    }
    if (changed) {
        h = hash_values(n, (const char *const *)rep);
        pthread_rwlock_rdlock(&f->lock);
        m = find_series(f, h, n, (const char *const *)rep);
        pthread_rwlock_unlock(&f->lock);
        if (m)
            goto out; /* found: free the copies, return m */
    }

    pthread_rwlock_wrlock(&f->lock);
    m = find_series(f, h, n, (const char *const *)rep);
    if (m)
        goto unlock;
    if (f->nseries >= atomic_load(&f->max_series)) {
        if (!f->warned)
            log_warn("metrics: series limit reached; new label values not recorded",
                     "family=%s limit=%zu", f->name, f->nseries);
        f->warned = true;
        goto unlock;
    }
    if (f->nseries >= f->tcap && grow_table(f))
        goto unlock;
    m = series_alloc(f);
    if (!m || !(m->values = calloc(n, sizeof *m->values))) {
        free(m);
        m = NULL;
        goto unlock;
    }
    for (size_t i = 0; i < n; i++) {
        m->values[i] = rep[i];
        rep[i] = NULL;
    }
    m->hash = h;
    m->hnext = f->table[h & (f->tcap - 1)];
    f->table[h & (f->tcap - 1)] = m;
    if (f->last)
        f->last->next = m;
    else
        f->first = m;
    f->last = m;
    f->nseries++;
unlock:
    pthread_rwlock_unlock(&f->lock);
out:
    for (size_t i = 0; i < n; i++)
        free(rep[i]);
    return m;
}

/* ---- exposition ------------------------------------------------------------ */

static int put_escaped(struct buf *out, const char *s, bool quote)
{
    size_t run = 0, i = 0;
    for (; s[i]; i++) {
        const char *esc = NULL;
        if (s[i] == '\\')
            esc = "\\\\";
        else if (s[i] == '\n')
            esc = "\\n";
        else if (quote && s[i] == '"')
            esc = "\\\"";
        if (!esc)
            continue;
        if (buf_append(out, s + run, i - run) || buf_append_cstr(out, esc))
            return AS_ENOMEM;
        run = i + 1;
    }
    return buf_append(out, s + run, i - run);
}

static int put_value(struct buf *out, double v)
{
    char tmp[JSON_DOUBLE_MAX];
    size_t n = json_format_double(tmp, v);
    return buf_append(out, tmp, n);
}

/* name{l1="v1",...[,le="x"]} value\n */
static int put_sample(struct buf *out, const struct metric_family *f, const char *suffix,
                      const struct metric *m, const char *le, double v)
{
    int rc = buf_append_cstr(out, f->name);
    rc = rc ? rc : buf_append_cstr(out, suffix);
    if (!rc && (f->nlabels || le)) {
        rc = buf_append_char(out, '{');
        for (size_t i = 0; !rc && i < f->nlabels; i++) {
            rc = buf_printf(out, "%s%s=\"", i ? "," : "", f->labels[i]);
            rc = rc ? rc : put_escaped(out, m->values[i], true);
            rc = rc ? rc : buf_append_char(out, '"');
        }
        if (!rc && le)
            rc = buf_printf(out, "%sle=\"%s\"", f->nlabels ? "," : "", le);
        rc = rc ? rc : buf_append_char(out, '}');
    }
    rc = rc ? rc : buf_append_char(out, ' ');
    rc = rc ? rc : put_value(out, v);
    return rc ? rc : buf_append_char(out, '\n');
}

static int render_family(struct metric_family *f, struct buf *out)
{
    static const char *const type_names[] = {"counter", "gauge", "histogram"};
    uint64_t cum[METRICS_MAX_BUCKETS + 1];
    int rc = buf_printf(out, "# HELP %s ", f->name);
    rc = rc ? rc : put_escaped(out, f->help, false);
    rc = rc ? rc : buf_printf(out, "\n# TYPE %s %s\n", f->name, type_names[f->type]);
    pthread_rwlock_rdlock(&f->lock);
    for (const struct metric *m = f->first; m && !rc; m = m->next) {
        if (f->type == METRIC_COUNTER) {
            rc = put_sample(out, f, "", m, NULL, counter_value(m));
        } else if (f->type == METRIC_GAUGE) {
            rc = put_sample(out, f, "", m, NULL, atomic_load_double(&m->dbits));
        } else {
            uint64_t total = hist_total(m, cum);
            for (size_t i = 0; !rc && i < f->nbuckets; i++) {
                char le[JSON_DOUBLE_MAX];
                json_format_double(le, f->buckets[i]);
                rc = put_sample(out, f, "_bucket", m, le, (double)cum[i]);
            }
            rc = rc ? rc : put_sample(out, f, "_bucket", m, "+Inf", (double)total);
            rc = rc ? rc : put_sample(out, f, "_sum", m, NULL, atomic_load_double(&m->dbits));
            rc = rc ? rc : put_sample(out, f, "_count", m, NULL, (double)total);
        }
    }
    pthread_rwlock_unlock(&f->lock);
    return rc;
}

int metrics_registry_add_collector(struct metrics_registry *r, metrics_collect_fn fn, void *ud,
                                   void (*release)(void *ud))
{
    int rc = 0;
    if (!r)
        r = metrics_default();
    pthread_mutex_lock(&r->mu);
    if (r->ncollect == MAX_COLLECTORS) {
        rc = AS_ERANGE;
    } else {
        r->collect[r->ncollect] = fn;
        r->release[r->ncollect] = release;
        r->collect_ud[r->ncollect++] = ud;
    }
    pthread_mutex_unlock(&r->mu);
    return rc;
}

bool metrics__claim_process(struct metrics_registry *r)
{
    pthread_mutex_lock(&r->mu);
    bool first = !r->process_registered;
    r->process_registered = true;
    pthread_mutex_unlock(&r->mu);
    return first;
}

int metrics_registry_render(struct metrics_registry *r, struct buf *out)
{
    int rc = 0;
    if (!r)
        r = metrics_default();
    pthread_mutex_lock(&r->mu);
    for (size_t i = 0; i < r->ncollect; i++)
        r->collect[i](r->collect_ud[i]);
    for (struct metric_family *f = r->first; f && !rc; f = f->next)
        rc = render_family(f, out);
    pthread_mutex_unlock(&r->mu);
    return rc;
}

int metrics_render(struct buf *out)
{
    return metrics_registry_render(metrics_default(), out);
}
