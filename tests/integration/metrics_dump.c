/*
 * metrics_dump.c - prints a registry holding every metric kind with awkward
 * label values, for test_metrics_promtool.sh to feed to `promtool check metrics`.
 */
#include <stdio.h>

#include "core/buf.h"
#include "core/metrics.h"

int main(void)
{
    int rc = 1;
    struct buf b;
    buf_init(&b, 1u << 20);
    struct metrics_registry *r = metrics_registry_new();
    static const char *const labels[] = {"model", "code", NULL};
    struct metric_family *req = metrics_counter_new(r, "aistack_requests_total",
                                                    "HTTP requests by model and code.", labels);
    struct metric_family *tok = metrics_counter_new(r, "aistack_tokens_generated_total",
                                                    "Tokens \\ generated\nacross models.", NULL);
    struct metric_family *infl =
        metrics_gauge_new(r, "aistack_inflight_requests", "Requests in flight.", NULL);
    struct metric_family *temp = metrics_gauge_new(
        r, "aistack_kv_cache_usage_ratio", "KV cache usage.", (const char *[]){"model", NULL});
    struct metric_family *lat =
        metrics_histogram_new(r, "aistack_request_duration_seconds", "Request latency.", labels,
                              metrics_buckets_latency, metrics_buckets_latency_n);
    struct metric_family *ntok =
        metrics_histogram_new(r, "aistack_completion_tokens", "Completion tokens per request.",
                              NULL, metrics_buckets_count, metrics_buckets_count_n);
    if (!req || !tok || !infl || !temp || !lat || !ntok || metrics_register_process(r))
        goto out;
    const char *tricky[] = {"plain",       "quote\"d", "back\\slash", "new\nline",      "ütf-8 ✓",
                            "bad\xff\xfe", "",         "{},=",        "# not a comment"};
    for (size_t i = 0; i < sizeof tricky / sizeof tricky[0]; i++) {
        metric_add(metric_labels(req, tricky[i], "200"), (double)i + 0.5);
        metric_inc(metric_labels(req, tricky[i], "500"));
        metric_set(metric_labels(temp, tricky[i]), -1.0 / 3.0 * (double)i);
        for (int k = 0; k < 50; k++)
            metric_observe(metric_labels(lat, tricky[i], "200"), 0.0007 * (double)(k * k));
    }
    metric_add(metric_nolabels(tok), 1e18);
    metric_set(metric_nolabels(infl), 3);
    metric_observe(metric_nolabels(ntok), 17);
    metric_observe(metric_nolabels(ntok), 1e9);
    if (metrics_registry_render(r, &b))
        goto out;
    fwrite(b.data, 1, b.len, stdout);
    rc = 0;
out:
    metrics_registry_free(r);
    buf_free(&b);
    return rc;
}
