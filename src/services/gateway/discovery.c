/*
 * discovery.c - replicas from DNS: a dns_discovery deployment becomes one
 * deployment per IPv4 address of its host (a Kubernetes headless Service), and
 * the comparison main.c's refresher uses to publish only real changes.
 * Not for: parsing the config (gw_config.c); IPv6 replicas.
 */
#include "gw.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"

static int cmp_str(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* Splits "scheme://host[:port]/rest" around the host. 0 or -1. */
static int split_url(const char *url, size_t *host_at, size_t *host_len)
{
    const char *p = strstr(url, "://");
    if (!p)
        return -1;
    p += 3;
    if (*p == '[') /* an IPv6 literal needs no resolving */
        return -1;
    size_t n = strcspn(p, ":/");
    if (n == 0 || n >= 254)
        return -1;
    *host_at = (size_t)(p - url);
    *host_len = n;
    return 0;
}

int gw_table_resolve(struct gw_table *t)
{
    int found = 0;
    for (size_t i = 0; i < t->n_models; i++) {
        struct gw_model *m = &t->models[i];
        size_t n0 = m->n_dep;
        for (size_t j = 0; j < n0; j++) {
            struct gw_deployment *d = &m->dep[j];
            size_t at, hl;
            if (!d->dns || split_url(d->base_url, &at, &hl))
                continue;
            found++;
            char host[256], addrs[GW_MAX_DEPLOYMENTS][INET_ADDRSTRLEN];
            size_t na = 0;
            memcpy(host, d->base_url + at, hl);
            host[hl] = 0;
            struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res = NULL;
            if (getaddrinfo(host, NULL, &hints, &res) != 0) {
                log_warn("dns_discovery: host does not resolve", "deployment=%s host=%s", d->name,
                         host);
                continue;
            }
            for (struct addrinfo *a = res; a && na < GW_MAX_DEPLOYMENTS; a = a->ai_next) {
                const struct sockaddr_in *sin = (const struct sockaddr_in *)a->ai_addr;
                char ip[INET_ADDRSTRLEN];
                if (!inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof ip))
                    continue;
                int dup = 0;
                for (size_t k = 0; k < na; k++)
                    dup |= !strcmp(addrs[k], ip);
                if (!dup)
                    memcpy(addrs[na++], ip, sizeof ip);
            }
            freeaddrinfo(res);
            qsort(addrs, na, sizeof addrs[0], cmp_str);
            struct gw_deployment tmpl = *d;
            for (size_t k = 0; k < na; k++) {
                struct gw_deployment *x = k == 0                          ? d
                                          : m->n_dep < GW_MAX_DEPLOYMENTS ? &m->dep[m->n_dep++]
                                                                          : NULL;
                if (!x)
                    break;
                if (k > 0) {
                    *x = tmpl;
                    pthread_mutex_init(&x->st.win_mu, NULL);
                    x->api_key = tmpl.api_key ? strdup(tmpl.api_key) : NULL;
                }
                snprintf(x->name, sizeof x->name, "%.80s@%s", tmpl.name, addrs[k]);
                snprintf(x->base_url, sizeof x->base_url, "%.*s%s%s", (int)at, tmpl.base_url,
                         addrs[k], tmpl.base_url + at + hl);
            }
        }
    }
    return found;
}

int gw_table_same_targets(const struct gw_table *a, const struct gw_table *b)
{
    if (!a || !b || a->n_models != b->n_models)
        return 0;
    for (size_t i = 0; i < a->n_models; i++) {
        const struct gw_model *x = &a->models[i], *y = &b->models[i];
        if (strcmp(x->name, y->name) || x->n_dep != y->n_dep)
            return 0;
        for (size_t j = 0; j < x->n_dep; j++)
            if (strcmp(x->dep[j].name, y->dep[j].name) ||
                strcmp(x->dep[j].base_url, y->dep[j].base_url))
                return 0;
    }
    return 1;
}
