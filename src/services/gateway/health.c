/*
 * health.c - active health checks of every deployment, from worker 0's loop.
 *
 * Every router_settings.health_check_interval (off when 0; re-read after each
 * reload) each deployment of the current table gets one probe: GET
 * {base}/health/ready for provider aistack (base_url without its /v1), GET
 * {base_url}/models for the others, with the deployment's key. A failed probe
 * counts like a failed request (toward allowed_fails and the cooldown); a
 * passing probe ends a cooldown early. Probes hold a table reference, so a
 * reload in between is harmless. Not for: passive detection (router.c).
 */
#include "gw.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/http_client.h"
#include "core/http_server.h"
#include "core/log.h"
#include "core/loop.h"

#define HEALTH_TICK_MS 100

struct probe {
    struct gw_table *t;
    struct gw_deployment *d;
};

static struct gw_ctx *h_ctx;
static uint64_t h_next_ms;

static void probe_done(struct http_client_req *r, const struct http_client_result *res, void *ud)
{
    struct probe *p = ud;
    int ok = res->err == HTTP_CLIENT_OK && res->status >= 200 && res->status <= 299;
    gw_route_health(p->d, &p->t->set, ok);
    if (!ok)
        log_warn("health check failed", "deployment=%s status=%d err=%s", p->d->name, res->status,
                 http_client_strerror(res->err));
    gw_table_release(p->t);
    free(p);
}

static void probe(struct gw_table *t, struct gw_deployment *d, uint32_t timeout_ms)
{
    char url[GW_MAX_URL + 32];
    const char *hdrs[2] = {d->auth_header[0] ? d->auth_header : NULL, NULL};
    size_t n = strlen(d->base_url);
    if (d->provider == GW_PROVIDER_AISTACK && n >= 3 && !strcmp(d->base_url + n - 3, "/v1"))
        snprintf(url, sizeof url, "%.*s/health/ready", (int)(n - 3), d->base_url);
    else if (d->provider == GW_PROVIDER_AISTACK)
        snprintf(url, sizeof url, "%s/health/ready", d->base_url);
    else
        snprintf(url, sizeof url, "%s/models", d->base_url);
    struct probe *p = malloc(sizeof(*p));
    if (!p)
        return;
    atomic_fetch_add(&t->refs, 1);
    p->t = t;
    p->d = d;
    struct http_client_request rq = {
        .url = url,
        .headers = hdrs,
        .timeout_ms = timeout_ms,
        .connect_timeout_ms = timeout_ms,
        .max_response_bytes = 1 << 20,
        .on_done = probe_done,
        .ud = p,
    };
    if (http_client_submit(h_ctx->clients[0], &rq, NULL) != 0) {
        gw_table_release(t);
        free(p);
    }
}

static void tick(struct loop *l, void *ud)
{
    struct gw_table *t = gw_current_acquire();
    uint64_t now = loop_now_ms();
    if (t && t->set.health_interval_ms && now >= h_next_ms) {
        uint32_t iv = t->set.health_interval_ms;
        h_next_ms = now + iv;
        for (size_t i = 0; i < t->n_models; i++)
            for (size_t j = 0; j < t->models[i].n_dep; j++)
                probe(t, &t->models[i].dep[j], iv < 5000 ? (iv > 50 ? iv : 50) : 5000);
    }
    gw_table_release(t);
    loop_timer_add(l, HEALTH_TICK_MS, tick, NULL);
}

static void start(struct loop *l, void *ud)
{
    loop_timer_add(l, HEALTH_TICK_MS, tick, NULL);
}

int gw_health_start(struct gw_ctx *ctx)
{
    h_ctx = ctx;
    return loop_post(http_server_worker_loop(ctx->srv, 0), start, NULL);
}
