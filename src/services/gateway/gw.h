/*
 * gw.h - internal contracts between the gateway's modules (config, router,
 * proxy, keys, ledger, main). Not a public API: only src/services/gateway and
 * its fuzz target include it.
 *
 * Data flow: main loads a struct gw_table from the YAML model_list (gw_config.c),
 * publishes it through gw_table_acquire/release (refcounted, swapped on SIGHUP);
 * proxy.c picks deployments through router.c, forwards with the worker's
 * http_client, and hands one struct gw_usage per request to ledger.c; keys.c
 * authenticates and rate-limits callers.
 */
#ifndef AISTACK_GATEWAY_GW_H
#define AISTACK_GATEWAY_GW_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

struct cfg_node;
struct metric;
struct metric_family;
struct http_client;
struct http_req;
struct gw_keys;
struct gw_ledger;

enum gw_provider { GW_PROVIDER_OPENAI = 1, GW_PROVIDER_COMPAT, GW_PROVIDER_AISTACK };

enum gw_strategy { GW_STRAT_WEIGHTED = 0, GW_STRAT_LEAST_BUSY, GW_STRAT_LATENCY };

/* Limits on what a config may declare. */
#define GW_MAX_MODELS      256
#define GW_MAX_DEPLOYMENTS 64 /* per model */
#define GW_MAX_NAME        128
#define GW_MAX_URL         512

/* Live state of one deployment, shared by all worker threads (atomics only). */
struct gw_dep_state {
    atomic_int outstanding;          /* requests in flight */
    atomic_int consec_fail;          /* consecutive failures (passive outlier detection) */
    atomic_uint_fast64_t cool_until; /* loop_now_ms() before which it is skipped */
    atomic_int probing;              /* half-open: 1 while the single probe is in flight */
    atomic_int cooled;               /* 1 once it went into cooldown and has not recovered */
    atomic_int health_down;          /* the last active health check failed */
    atomic_uint_fast64_t ewma_us;    /* latency EWMA in microseconds (0 = no sample yet) */
    pthread_mutex_t win_mu;          /* guards the rpm/tpm minute window */
    uint64_t win_start_ms;
    int64_t win_requests, win_tokens;
};

/* One upstream deployment of a public model. Immutable after loading, except st. */
struct gw_deployment {
    char name[GW_MAX_NAME]; /* "model/index" unless given; metrics label */
    enum gw_provider provider;
    char base_url[GW_MAX_URL];         /* without trailing '/' */
    char *api_key;                     /* secret; NULL = none; never logged */
    char model[GW_MAX_NAME];           /* upstream model name */
    int weight;                        /* >= 1 */
    int priority;                      /* group; 0 first */
    int dns;                           /* dns_discovery: one deployment per IPv4 of the host */
    int64_t rpm, tpm;                  /* 0 = unlimited */
    uint32_t timeout_ms;               /* whole non-streamed request; first byte for streams */
    double in_price, out_price;        /* USD per million tokens */
    char auth_header[GW_MAX_URL + 32]; /* "Authorization: Bearer ..." (secret) */
    struct gw_dep_state st;
    struct metric *m_ok, *m_err, *m_latency, *m_ttft, *m_tok_in, *m_tok_out, *m_cost, *m_healthy;
};

/* A public model name and its deployments. */
struct gw_model {
    char name[GW_MAX_NAME];
    enum gw_strategy strategy;
    size_t n_dep;
    struct gw_deployment *dep; /* n_dep */
    char **fallbacks;          /* other public model names tried after these deployments */
    size_t n_fallbacks;
};

/* Gateway-wide settings from the router_settings section. */
struct gw_settings {
    int num_retries;             /* extra attempts after the first */
    uint32_t retry_base_ms;      /* backoff base */
    uint32_t retry_max_ms;       /* longest wait between attempts (Retry-After capped) */
    int allowed_fails;           /* consecutive failures before a cooldown */
    uint32_t cooldown_ms;        /* cooldown length */
    uint32_t health_interval_ms; /* active health checks; 0 = off */
    uint32_t dns_refresh_ms;     /* re-resolving dns_discovery hosts; 0 = off */
};

/* The routing table built from one config load; refcounted, swapped on reload. */
struct gw_table {
    atomic_int refs;
    struct gw_settings set;
    size_t n_models;
    struct gw_model *models; /* n_models */
    uint64_t generation;
    int has_dns; /* some deployment uses dns_discovery */
};

/* ---- gw_config.c ------------------------------------------------------------- */

/*
 * Builds a table from the model_list and router_settings nodes (either may be
 * NULL: an empty table / defaults). file names the config for messages
 * ("FILE:LINE: reason"), appended to err. Secrets are read from the environment
 * (api_key_env) or files (api_key_file, at most 4 KiB). Returns the table with
 * one reference, or NULL with every problem in err.
 */
struct gw_table *gw_table_build(const struct cfg_node *model_list, const struct cfg_node *settings,
                                const char *file, struct buf *err);
/*
 * Expands every dns_discovery deployment into one deployment per IPv4 address
 * of its host (named "NAME@ADDR", base_url with the address), sorted, at most
 * GW_MAX_DEPLOYMENTS per model. A host that does not resolve stays as it is
 * (its requests fail and it cools down). Returns the number of dns deployments.
 */
int gw_table_resolve(struct gw_table *t);
/* 1 if a and b route to the same deployments (names and base URLs). */
int gw_table_same_targets(const struct gw_table *a, const struct gw_table *b);
/* Registers the table's metric series (after a successful build). */
void gw_table_bind_metrics(struct gw_table *t);
/* Carries health state (cooldowns, failure counts, latency EWMA) over from old to t
 * for deployments with the same model, name and base_url (reloads). old may be NULL. */
void gw_table_inherit(struct gw_table *t, const struct gw_table *old);
/* Drops one reference; frees the table (and wipes secrets) at zero. Accepts NULL. */
void gw_table_release(struct gw_table *t);
/* The model called name, or NULL. */
const struct gw_model *gw_table_find(const struct gw_table *t, const char *name);

/* The current table, shared by every request (one reference for the caller). */
struct gw_table *gw_current_acquire(void);
/* Publishes t as the current table (takes over the caller's reference). */
void gw_current_publish(struct gw_table *t);

/* Metric families shared by the modules (created by gw_metrics_init). */
struct gw_metric_families {
    struct metric_family *requests, *upstream, *retries, *fallbacks, *latency, *ttft, *tokens,
        *cost, *healthy, *added;
};
extern struct gw_metric_families gw_mf;

/* ---- router.c ----------------------------------------------------------------- */

/* A deployment is tried at most once per request; tried[] marks them. */
#define GW_MAX_TRIED GW_MAX_DEPLOYMENTS

/*
 * Picks a deployment of m for the next attempt: the lowest priority group with
 * an available deployment (not cooling down, under rpm/tpm, not in tried),
 * then the strategy within it. force_name selects one deployment by name;
 * strategy overrides m's when >= 0. Returns the index, or -1 when none is
 * available. Takes a half-open probe slot if the pick is one.
 */
int gw_route_pick(struct gw_model *m, const uint8_t *tried, int strategy, const char *force_name);
/* The request is starting on d (outstanding, rpm window). */
void gw_route_begin(struct gw_deployment *d);
/* The attempt on d ended. ok: success; fail: counts toward cooldown; latency_us
 * feeds the EWMA when ok; tokens feed tpm; retry_after_ms > 0 cools d down that long. */
void gw_route_end(struct gw_deployment *d, const struct gw_settings *s, int ok, int fail,
                  uint64_t latency_us, int64_t tokens, uint64_t retry_after_ms);
/* An active health check of d passed (ok) or failed. */
void gw_route_health(struct gw_deployment *d, const struct gw_settings *s, int ok);
/* 1 if d may take traffic now (for health gauges and /admin/deployments). */
int gw_route_available(struct gw_deployment *d);
/* Parses "weighted", "least-busy", "latency" (and LiteLLM's spellings); -1 if unknown. */
int gw_strategy_parse(const char *s);

/* ---- proxy.c ------------------------------------------------------------------ */

/* Global services the proxy uses (set up by main before the server starts). */
struct gw_ctx {
    struct http_server *srv;
    struct http_client **clients; /* one per worker loop */
    int n_clients;
    struct gw_keys *keys;     /* may be NULL (no master key: open gateway) */
    struct gw_ledger *ledger; /* may be NULL */
    size_t max_body;
};

/* Installs the /v1 routes. */
int gw_proxy_routes(struct http_server *srv, struct gw_ctx *ctx);
/* Starts the active health checks on worker 0 (after http_server_start). 0 or AS_E*. */
int gw_health_start(struct gw_ctx *ctx);
/* GET /v1/models: the public model names of the current table (api.c). */
void gw_models_handler(struct http_req *req, void *ud);
/* Registers the gateway's metric families (once, before serving). */
int gw_metrics_init(void);

/* ---- keys.c ------------------------------------------------------------------- */

/* What a request is allowed to do, filled by gw_keys_authorize. */
struct gw_principal {
    int is_master;
    char key_id[40]; /* "" for master / open mode */
    int key_slot;    /* index into the key cache, -1 for none */
};

/*
 * Opens (creating) the SQLite database at path (WAL mode) and loads the keys.
 * master_key may be NULL (then every caller is anonymous and admin routes 403).
 */
struct gw_keys *gw_keys_open(const char *path, const char *master_key, char *err, size_t errlen);
void gw_keys_free(struct gw_keys *k);
/* Installs /admin/keys routes and /admin/usage (needs the ledger). */
int gw_keys_routes(struct http_server *srv, struct gw_keys *k, struct gw_ledger *lg);
/*
 * Checks the caller's Authorization against the master and virtual keys, the
 * model allow-list, rpm/tpm and budget. 0 = allowed (principal filled); else it
 * has already answered the request (401/403/429) and returns nonzero.
 */
int gw_keys_authorize(struct gw_keys *k, struct http_req *req, const char *model,
                      struct gw_principal *p);
/* Accounts tokens and cost to the key after a request. */
void gw_keys_charge(struct gw_keys *k, const struct gw_principal *p, int64_t tokens, double cost);
/* Adds the x-ratelimit-* headers for p's key to the response about to be sent. */
void gw_keys_ratelimit_headers(struct gw_keys *k, const struct gw_principal *p,
                               struct http_req *req);
/* The database handle path (for the ledger to share the file). */
const char *gw_keys_path(const struct gw_keys *k);

/* ---- ledger.c ----------------------------------------------------------------- */

/* One usage row. Strings are copied by gw_ledger_add. */
struct gw_usage {
    const char *key_id, *model, *deployment, *request_id;
    int64_t tokens_in, tokens_out;
    double cost;
    double latency_ms;
    int status;
    int64_t ts_ms; /* wall clock */
};

/* Starts the writer thread on the SQLite file path. NULL on failure (err filled). */
struct gw_ledger *gw_ledger_new(const char *path, char *err, size_t errlen);
/* Flushes what is queued and stops the writer. Accepts NULL. */
void gw_ledger_free(struct gw_ledger *lg);
/* Queues a row without waiting for the disk (drops it and counts if the queue is full). */
void gw_ledger_add(struct gw_ledger *lg, const struct gw_usage *u);
/* Waits until everything queued so far is on disk (admin reads, tests). */
void gw_ledger_flush(struct gw_ledger *lg);
/* Answers GET /admin/usage (group_by=key|model|deployment, since/until epoch seconds). */
void gw_ledger_usage_handler(struct gw_ledger *lg, struct http_req *req);

#endif
