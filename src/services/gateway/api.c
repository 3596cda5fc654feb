/*
 * api.c - what the gateway answers itself: GET /v1/models (the union of the
 * public model names) and its Prometheus metric families.
 * Not for: forwarded endpoints (proxy.c), admin routes (keys.c, ledger.c).
 */
#include "gw.h"

#include "core/err.h"
#include "core/http_server.h"
#include "core/json.h"
#include "core/metrics.h"

struct gw_metric_families gw_mf;

void gw_models_handler(struct http_req *req, void *ud)
{
    struct buf b;
    struct json_writer w;
    struct gw_table *t = gw_current_acquire();
    buf_init(&b, 4u << 20);
    json_writer_init(&w, &b);
    json_obj_begin(&w);
    json_kv_str(&w, "object", "list");
    json_key(&w, "data");
    json_arr_begin(&w);
    for (size_t i = 0; t && i < t->n_models; i++) {
        json_obj_begin(&w);
        json_kv_str(&w, "id", t->models[i].name);
        json_kv_str(&w, "object", "model");
        json_kv_int(&w, "created", 0);
        json_kv_str(&w, "owned_by", "aistack-gateway");
        json_obj_end(&w);
    }
    json_arr_end(&w);
    json_obj_end(&w);
    gw_table_release(t);
    if (json_writer_finish(&w) == 0)
        http_respond_json(req, 200, b.data, b.len);
    else
        http_respond_error(req, 500, "cannot list models", NULL, NULL, NULL);
    buf_free(&b);
}

int gw_metrics_init(void)
{
    static const char *const ml[] = {"model", "code", NULL};
    static const char *const md[] = {"model", "deployment", NULL};
    static const char *const mdo[] = {"model", "deployment", "outcome", NULL};
    static const char *const mdk[] = {"model", "deployment", "kind", NULL};
    static const char *const m1[] = {"model", NULL};
    static const double added[] = {0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005,
                                   0.001,   0.0025,   0.005,   0.01,   0.05};
    gw_mf.requests = metrics_counter_new(NULL, "gateway_requests_total",
                                         "Client requests by public model and status", ml);
    gw_mf.upstream = metrics_counter_new(NULL, "gateway_upstream_requests_total",
                                         "Upstream attempts by deployment and outcome", mdo);
    gw_mf.retries =
        metrics_counter_new(NULL, "gateway_retries_total", "Retries after a backoff", m1);
    gw_mf.fallbacks = metrics_counter_new(NULL, "gateway_fallbacks_total",
                                          "Moves to another deployment or model", m1);
    gw_mf.latency = metrics_histogram_new(NULL, "gateway_upstream_latency_seconds",
                                          "Upstream response time (whole response)", md,
                                          metrics_buckets_latency, metrics_buckets_latency_n);
    gw_mf.ttft = metrics_histogram_new(NULL, "gateway_time_to_first_token_seconds",
                                       "Upstream submit to first streamed event", md,
                                       metrics_buckets_latency, metrics_buckets_latency_n);
    gw_mf.tokens = metrics_counter_new(NULL, "gateway_tokens_total", "Tokens by kind", mdk);
    gw_mf.cost = metrics_counter_new(NULL, "gateway_cost_usd_total", "Spend in USD", md);
    gw_mf.healthy = metrics_gauge_new(NULL, "gateway_deployment_healthy",
                                      "1 unless the deployment is cooling down", md);
    gw_mf.added = metrics_histogram_new(NULL, "gateway_added_latency_seconds",
                                        "Time spent in the gateway, upstream time excluded", NULL,
                                        added, sizeof added / sizeof added[0]);
    return gw_mf.requests && gw_mf.upstream && gw_mf.retries && gw_mf.fallbacks && gw_mf.latency &&
                   gw_mf.ttft && gw_mf.tokens && gw_mf.cost && gw_mf.healthy && gw_mf.added
               ? 0
               : AS_ENOMEM;
}
