/*
 * router.c - choosing a deployment for each attempt, and the per-deployment
 * health state (cooldown circuit breaker, half-open probe, rpm/tpm windows,
 * latency EWMA, outstanding requests).
 *
 * Order of decisions: deployments already tried by this request are skipped;
 * so are those cooling down (after allowed_fails consecutive failures, or a
 * 429's Retry-After) and those over their rpm/tpm in the current minute. Of
 * the rest, only the lowest priority group is considered (group 0: the
 * self-hosted replicas; the next group takes over only when every member of
 * the first is unavailable), and the strategy picks within it. When a cooldown
 * ends the deployment is half-open: exactly one request probes it; success
 * closes the breaker, failure opens it for another cooldown.
 * All state is atomics or a tiny per-deployment mutex, shared by the workers.
 * Not for: retries and backoff (proxy.c).
 */
#include "gw.h"

#include <string.h>
#include <time.h>

#include "core/loop.h"
#include "core/metrics.h"

static _Thread_local uint64_t rng_state;

static uint64_t rnd(void)
{
    if (!rng_state)
        rng_state = loop_now_ns() ^ (uint64_t)(uintptr_t)&rng_state ^ 0x9e3779b97f4a7c15ull;
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

int gw_strategy_parse(const char *s)
{
    if (!strcmp(s, "weighted") || !strcmp(s, "simple-shuffle") || !strcmp(s, "random"))
        return GW_STRAT_WEIGHTED;
    if (!strcmp(s, "least-busy") || !strcmp(s, "least-outstanding"))
        return GW_STRAT_LEAST_BUSY;
    if (!strcmp(s, "latency") || !strcmp(s, "latency-based-routing") || !strcmp(s, "p2c"))
        return GW_STRAT_LATENCY;
    return -1;
}

/* Rolls the minute window; returns 1 while d is under its rpm and tpm. */
static int under_limits(struct gw_deployment *d, uint64_t now)
{
    if (!d->rpm && !d->tpm)
        return 1;
    pthread_mutex_lock(&d->st.win_mu);
    if (now - d->st.win_start_ms >= 60000) {
        d->st.win_start_ms = now;
        d->st.win_requests = d->st.win_tokens = 0;
    }
    int ok = (!d->rpm || d->st.win_requests < d->rpm) && (!d->tpm || d->st.win_tokens < d->tpm);
    pthread_mutex_unlock(&d->st.win_mu);
    return ok;
}

static int healthy_now(struct gw_deployment *d, uint64_t now)
{
    if (now < atomic_load(&d->st.cool_until))
        return 0;
    return !atomic_load(&d->st.cooled) || !atomic_load(&d->st.probing);
}

int gw_route_available(struct gw_deployment *d)
{
    uint64_t now = loop_now_ms();
    return healthy_now(d, now) && under_limits(d, now);
}

static int pick_among(struct gw_model *m, const int *cand, int n, int strategy)
{
    if (n == 1)
        return cand[0];
    switch (strategy) {
    case GW_STRAT_LEAST_BUSY: {
        int best = -1, best_out = 0, ties = 0;
        for (int i = 0; i < n; i++) {
            int o = atomic_load(&m->dep[cand[i]].st.outstanding);
            if (best < 0 || o < best_out) {
                best = cand[i], best_out = o, ties = 1;
            } else if (o == best_out && rnd() % (uint64_t)++ties == 0) {
                best = cand[i];
            }
        }
        return best;
    }
    case GW_STRAT_LATENCY: {
        int ia = (int)(rnd() % (uint64_t)n), ib = (int)(rnd() % (uint64_t)(n - 1));
        if (ib >= ia) /* drawn from the others: never the same one */
            ib++;
        int a = cand[ia], b = cand[ib];
        /* cost: expected latency scaled by the queue it would join */
        uint64_t la = atomic_load(&m->dep[a].st.ewma_us), lb = atomic_load(&m->dep[b].st.ewma_us);
        uint64_t ca = la * (uint64_t)(1 + atomic_load(&m->dep[a].st.outstanding));
        uint64_t cb = lb * (uint64_t)(1 + atomic_load(&m->dep[b].st.outstanding));
        return ca <= cb ? a : b;
    }
    default: {
        uint64_t total = 0;
        for (int i = 0; i < n; i++)
            total += (uint64_t)m->dep[cand[i]].weight;
        uint64_t r = rnd() % total;
        for (int i = 0; i < n; i++) {
            if (r < (uint64_t)m->dep[cand[i]].weight)
                return cand[i];
            r -= (uint64_t)m->dep[cand[i]].weight;
        }
        return cand[n - 1];
    }
    }
}

int gw_route_pick(struct gw_model *m, const uint8_t *tried, int strategy, const char *force)
{
    uint64_t now = loop_now_ms();
    int avail[GW_MAX_DEPLOYMENTS];
    uint8_t skip[GW_MAX_DEPLOYMENTS] = {0};
    if (strategy < 0)
        strategy = (int)m->strategy;
    if (force && *force) {
        for (size_t i = 0; i < m->n_dep; i++)
            if (!strcmp(m->dep[i].name, force))
                return tried[i] ? -1 : (int)i;
        return -1;
    }
    for (int round = 0; round < GW_MAX_DEPLOYMENTS; round++) {
        int n = 0, best_prio = 1 << 30;
        for (size_t i = 0; i < m->n_dep; i++) {
            struct gw_deployment *d = &m->dep[i];
            if (tried[i] || skip[i] || !healthy_now(d, now) || !under_limits(d, now))
                continue;
            if (d->priority < best_prio) {
                best_prio = d->priority;
                n = 0;
            }
            if (d->priority == best_prio)
                avail[n++] = (int)i;
        }
        if (!n)
            return -1;
        int i = pick_among(m, avail, n, strategy);
        struct gw_deployment *d = &m->dep[i];
        if (!atomic_load(&d->st.cooled))
            return i;
        int z = 0; /* half-open: only the request that takes the probe slot goes */
        if (atomic_compare_exchange_strong(&d->st.probing, &z, 1))
            return i;
        skip[i] = 1;
    }
    return -1;
}

void gw_route_begin(struct gw_deployment *d)
{
    atomic_fetch_add(&d->st.outstanding, 1);
    if (d->rpm || d->tpm) {
        pthread_mutex_lock(&d->st.win_mu);
        d->st.win_requests++;
        pthread_mutex_unlock(&d->st.win_mu);
    }
}

void gw_route_end(struct gw_deployment *d, const struct gw_settings *s, int ok, int fail,
                  uint64_t latency_us, int64_t tokens, uint64_t retry_after_ms)
{
    uint64_t now = loop_now_ms();
    atomic_fetch_sub(&d->st.outstanding, 1);
    if (tokens > 0 && d->tpm) {
        pthread_mutex_lock(&d->st.win_mu);
        d->st.win_tokens += tokens;
        pthread_mutex_unlock(&d->st.win_mu);
    }
    if (ok) {
        uint64_t old = atomic_load(&d->st.ewma_us);
        /* alpha = 1/8; a racing update may be lost, which only delays convergence */
        atomic_store(&d->st.ewma_us, old ? old - old / 8 + latency_us / 8 : latency_us);
        atomic_store(&d->st.consec_fail, 0);
        if (atomic_exchange(&d->st.cooled, 0))
            metric_set(d->m_healthy, 1);
        atomic_store(&d->st.probing, 0);
        return;
    }
    uint64_t until = 0;
    if (retry_after_ms)
        until = now + retry_after_ms;
    if (fail) {
        int n = atomic_fetch_add(&d->st.consec_fail, 1) + 1;
        if (n >= s->allowed_fails || atomic_load(&d->st.probing))
            until = until > now + s->cooldown_ms ? until : now + s->cooldown_ms;
    }
    if (until) {
        uint64_t cur = atomic_load(&d->st.cool_until);
        if (until > cur)
            atomic_store(&d->st.cool_until, until);
        atomic_store(&d->st.cooled, 1);
        metric_set(d->m_healthy, 0);
    }
    atomic_store(&d->st.probing, 0);
}

void gw_route_health(struct gw_deployment *d, const struct gw_settings *s, int ok)
{
    if (ok) {
        /* a pass lifts only a cooldown the checks themselves caused: a deployment that
         * fails real requests but answers the probe waits for its half-open probe */
        if (atomic_exchange(&d->st.health_down, 0) && atomic_load(&d->st.cooled)) {
            atomic_store(&d->st.cool_until, 0);
            atomic_store(&d->st.consec_fail, 0);
            atomic_store(&d->st.cooled, 0);
            metric_set(d->m_healthy, 1);
        }
        return;
    }
    atomic_store(&d->st.health_down, 1);
    atomic_fetch_add(&d->st.outstanding, 1); /* gw_route_end takes it back */
    gw_route_end(d, s, 0, 1, 0, 0, 0);
}
