/*
 * metrics.h - Prometheus metrics registry: counters, gauges, histograms with labels.
 *
 * A family (name, help, type, fixed label names) owns up to a bounded number of
 * series, one per distinct tuple of label values, created on first lookup. A
 * series handle (struct metric *) stays valid until its registry is freed, so
 * the hot path looks a series up once and then updates it with plain atomics:
 * no lock is taken by metric_inc/add/set/observe. Locks are taken only per
 * family when a series is looked up or created, and while rendering.
 *
 * Rendering writes the text exposition format 0.0.4 (the format `promtool
 * check metrics` reads). Histogram bucket counts are stored per bucket and
 * summed while rendering, so `_count` always equals the `+Inf` bucket.
 *
 * Not for: summaries/quantiles, exemplars, OpenMetrics, pushing.
 */
#ifndef AISTACK_CORE_METRICS_H
#define AISTACK_CORE_METRICS_H

#include <stdbool.h>
#include <stddef.h>

struct buf;
struct metrics_registry;
struct metric_family;
struct metric;

enum metric_type { METRIC_COUNTER = 0, METRIC_GAUGE = 1, METRIC_HISTOGRAM = 2 };

/* Most label names a family may declare. */
#define METRICS_MAX_LABELS 8
/* Default bound on series per family; lookups past it return NULL. */
#define METRICS_DEFAULT_MAX_SERIES 1000
/* Most histogram buckets (excluding +Inf). */
#define METRICS_MAX_BUCKETS 64

/* Latency buckets in seconds: 0.001 ... 60. */
extern const double metrics_buckets_latency[];
extern const size_t metrics_buckets_latency_n;
/* Buckets for small counts (tokens per request and the like): 1, 2, 4, ... 65536. */
extern const double metrics_buckets_count[];
extern const size_t metrics_buckets_count_n;

/* Creates an empty registry. NULL on allocation failure. */
struct metrics_registry *metrics_registry_new(void);
/* Frees a registry, its families and all series handles. Accepts NULL. */
void metrics_registry_free(struct metrics_registry *r);
/* The process-wide registry rendered by metrics_render(). Never NULL (created on first use). */
struct metrics_registry *metrics_default(void);

/*
 * Creates (or returns the identical existing) family in r; r NULL means the
 * default registry. name must match [a-zA-Z_:][a-zA-Z0-9_:]* and counters must
 * end in "_total". labels is a NULL-terminated array of label names
 * ([a-zA-Z_][a-zA-Z0-9_]*, not starting with "__", not "le"), or NULL for none.
 * All strings are copied. Returns NULL on invalid arguments, on a clash with a
 * family of the same name but different type/labels, or on allocation failure
 * (a message is logged).
 */
struct metric_family *metrics_counter_new(struct metrics_registry *r, const char *name,
                                          const char *help, const char *const *labels);
struct metric_family *metrics_gauge_new(struct metrics_registry *r, const char *name,
                                        const char *help, const char *const *labels);
/* Histogram with n strictly increasing finite upper bounds (+Inf is implicit). */
struct metric_family *metrics_histogram_new(struct metrics_registry *r, const char *name,
                                            const char *help, const char *const *labels,
                                            const double *buckets, size_t n);

/* Changes the series bound of a family (default METRICS_DEFAULT_MAX_SERIES). */
void metric_family_set_max_series(struct metric_family *f, size_t max);

/*
 * The series of f for the n label values (copied on creation; any bytes allowed,
 * escaped on output). n must equal the number of label names. Returns NULL if f
 * is NULL, n is wrong, the family already holds its maximum number of series,
 * or on allocation failure. Takes the family lock: look up once, keep the handle.
 */
struct metric *metric_family_series(struct metric_family *f, size_t n, const char *const *values);

/* metric_labels(fam, "model-a", "200"): the series for those label values. */
#define metric_labels(fam, ...)                                                                    \
    metric_family_series((fam), sizeof((const char *[]){__VA_ARGS__}) / sizeof(const char *),      \
                         (const char *[]){__VA_ARGS__})
/* The single series of a family without labels. */
#define metric_nolabels(fam) metric_family_series((fam), 0, NULL)

/*
 * Lock-free updates. All accept NULL (no-op), so a series refused by the
 * cardinality bound degrades to "not counted" rather than a crash.
 */
/* Counter or gauge: += 1. */
void metric_inc(struct metric *m);
/* Counter: += v (v < 0 or NaN is ignored for counters). Gauge: += v (any sign). */
void metric_add(struct metric *m, double v);
/*
 * Gauge: -= 1 / = v. metric_set also works on a counter that only a collector
 * feeds (mirroring an external total, e.g. CPU seconds); never mix it with
 * metric_inc/add on the same counter. Ignored for histograms.
 */
void metric_dec(struct metric *m);
void metric_set(struct metric *m, double v);
/* Histogram: records one observation (NaN ignored). */
void metric_observe(struct metric *m, double v);

/* Current value of a counter/gauge, or the observation count of a histogram (for tests). */
double metric_value(const struct metric *m);
/* Histogram sum of observations (0 for other kinds). */
double metric_hist_sum(const struct metric *m);

/*
 * A collector refreshes gauges whose value is computed on demand (queue depth,
 * process memory): it runs at the start of every render of r, in the rendering
 * thread, and typically calls metric_set() on handles it looked up earlier. It
 * must not create families in r (the registry lock is held). r NULL: default.
 * 0, or AS_ENOMEM / AS_ERANGE (more than 32 collectors).
 */
typedef void (*metrics_collect_fn)(void *ud);
/* release (may be NULL) is called with ud when r is freed. */
int metrics_registry_add_collector(struct metrics_registry *r, metrics_collect_fn fn, void *ud,
                                   void (*release)(void *ud));

/*
 * Registers the standard process_* metrics (cpu seconds, resident and virtual
 * memory, open and max fds, start time) in r, refreshed from /proc at each
 * render. Idempotent per registry. 0 or AS_E*.
 */
int metrics_register_process(struct metrics_registry *r);

/* Internal: true the first time it is called for r (process metrics registration). */
bool metrics__claim_process(struct metrics_registry *r);

/* Appends the exposition text of every family in r (NULL: default) to out. 0 or AS_ENOMEM. */
int metrics_registry_render(struct metrics_registry *r, struct buf *out);
/* metrics_registry_render(metrics_default(), out): the body of GET /metrics. */
int metrics_render(struct buf *out);
/* Content-Type of the rendered text. */
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

#endif
