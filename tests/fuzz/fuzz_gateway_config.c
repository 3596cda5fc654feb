/*
 * fuzz_gateway_config.c - YAML bytes through the gateway's model_list and
 * router_settings parser (src/services/gateway/gw_config.c), then one routing
 * decision per model (router.c). Nothing may crash, leak or hang; a table that
 * builds must hold only valid deployments.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/services/gateway/gw_config.c"
#include "../../src/services/gateway/router.c"

struct gw_metric_families gw_mf; /* no registry: series handles stay NULL */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cfg_node *root = NULL;
    char err[256];
    struct buf msg;
    if (size > 1 << 16)
        return 0;
    buf_init(&msg, 1u << 20);
    if (cfg_node_parse((const char *)data, size, &root, err, sizeof err) == 0) {
        struct gw_table *t =
            gw_table_build(cfg_node_get(root, "model_list"), cfg_node_get(root, "router_settings"),
                           "fuzz.yaml", &msg);
        if (t) {
            gw_table_bind_metrics(t);
            for (size_t i = 0; i < t->n_models; i++) {
                struct gw_model *m = &t->models[i];
                uint8_t tried[GW_MAX_DEPLOYMENTS] = {0};
                if (m->n_dep == 0 || m->n_dep > GW_MAX_DEPLOYMENTS)
                    abort();
                int k = gw_route_pick(m, tried, -1, NULL);
                if (k < 0 || (size_t)k >= m->n_dep || m->dep[k].weight < 1 ||
                    strncmp(m->dep[k].base_url, "http", 4))
                    abort();
                gw_route_begin(&m->dep[k]);
                gw_route_end(&m->dep[k], &t->set, 0, 1, 0, 0, 0);
                if (!gw_table_find(t, m->name))
                    abort();
            }
            gw_table_release(t);
        } else if (msg.len == 0) {
            abort(); /* a refused table always says why */
        }
    }
    cfg_node_free(root);
    buf_free(&msg);
    return 0;
}
