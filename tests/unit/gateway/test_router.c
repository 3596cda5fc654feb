/*
 * test_router.c - the gateway's routing table and routing decisions, without
 * sockets: config errors with file:line, priority groups, weights, rpm limits,
 * cooldown after allowed_fails, the single half-open probe, 429 cooldowns,
 * health state carried across a reload. (Proxying is covered by
 * tests/integration/test_gateway.sh.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../../src/services/gateway/gw_config.c"
#include "../../../src/services/gateway/router.c"

struct gw_metric_families gw_mf; /* no registry: series handles stay NULL */

static struct gw_table *build(const char *yaml, struct buf *err)
{
    struct cfg_node *root = NULL;
    char perr[256];
    assert_int_equal(cfg_node_parse(yaml, strlen(yaml), &root, perr, sizeof perr), 0);
    struct gw_table *t = gw_table_build(cfg_node_get(root, "model_list"),
                                        cfg_node_get(root, "router_settings"), "t.yaml", err);
    cfg_node_free(root);
    return t;
}

static const char two_groups[] = "router_settings: {allowed_fails: 2, cooldown: 200ms}\n"
                                 "model_list:\n"
                                 "  - {model_name: m, name: a, base_url: 'http://a/v1', model: x,"
                                 " weight: 3}\n"
                                 "  - {model_name: m, name: b, base_url: 'http://b/v1', model: x,"
                                 " weight: 1}\n"
                                 "  - {model_name: m, name: c, base_url: 'http://c/v1', model: x,"
                                 " priority: 1, rpm: 2}\n";

static void test_config_errors(void **state)
{
    struct buf err;
    buf_init(&err, 1 << 16);
    assert_null(build("model_list:\n  - model_name: m\n    base_url: ftp://x\n    model: y\n"
                      "    weight: 0\n    api_key: plain\n",
                      &err));
    assert_non_null(strstr(err.data, "t.yaml:3: 'base_url' must start"));
    assert_non_null(strstr(err.data, "t.yaml:5: 'weight'"));
    assert_non_null(strstr(err.data, "t.yaml:6: 'api_key' is not accepted"));
    buf_reset(&err);
    assert_null(
        build("model_list:\n  - {model_name: m, model: y}\nrouter_settings: {bogus: 1}\n", &err));
    assert_non_null(strstr(err.data, "'base_url' is required"));
    assert_non_null(strstr(err.data, "t.yaml:3: unknown key 'bogus'"));
    buf_reset(&err);
    setenv("GW_UNIT_KEY", "sk-unit-123", 1);
    struct gw_table *t = build("model_list:\n  - {model_name: m, provider: openai, model: g,"
                               " api_key_env: GW_UNIT_KEY}\n",
                               &err);
    assert_non_null(t);
    assert_string_equal(t->models[0].dep[0].base_url, "https://api.openai.com/v1");
    assert_string_equal(t->models[0].dep[0].auth_header, "Authorization: Bearer sk-unit-123");
    gw_table_release(t);
    buf_free(&err);
}

static void test_priority_and_weights(void **state)
{
    struct buf err;
    buf_init(&err, 1 << 16);
    struct gw_table *t = build(two_groups, &err);
    assert_non_null(t);
    struct gw_model *m = &t->models[0];
    uint8_t tried[GW_MAX_DEPLOYMENTS] = {0};
    int n[3] = {0};
    for (int i = 0; i < 4000; i++) {
        int k = gw_route_pick(m, tried, -1, NULL);
        assert_true(k == 0 || k == 1); /* group 1 never while group 0 is fine */
        n[k]++;
    }
    assert_in_range(n[0], 2800, 3200); /* 3:1 */
    tried[0] = tried[1] = 1;
    assert_int_equal(gw_route_pick(m, tried, -1, NULL), 2); /* next group */
    gw_route_begin(&m->dep[2]);
    gw_route_begin(&m->dep[2]);
    assert_int_equal(gw_route_pick(m, tried, -1, NULL), -1); /* over its rpm */
    memset(tried, 0, sizeof tried);
    assert_int_equal(gw_route_pick(m, tried, -1, "b"), 1); /* pinned */
    assert_int_equal(gw_route_pick(m, tried, -1, "nope"), -1);
    gw_table_release(t);
    buf_free(&err);
}

static void test_cooldown_half_open(void **state)
{
    struct buf err;
    buf_init(&err, 1 << 16);
    struct gw_table *t = build(two_groups, &err);
    struct gw_model *m = &t->models[0];
    struct gw_deployment *a = &m->dep[0];
    uint8_t tried[GW_MAX_DEPLOYMENTS] = {0};
    tried[1] = 1; /* only a and the other group */
    gw_route_begin(a);
    gw_route_end(a, &t->set, 0, 1, 0, 0, 0);
    assert_int_equal(gw_route_pick(m, tried, -1, NULL), 0); /* one failure: still in */
    gw_route_begin(a);
    gw_route_end(a, &t->set, 0, 1, 0, 0, 0);
    assert_false(gw_route_available(a)); /* allowed_fails reached: cooling down */
    assert_int_equal(gw_route_pick(m, tried, -1, NULL), 2);
    usleep(250000);
    assert_int_equal(gw_route_pick(m, tried, -1, NULL), 0); /* half-open: the probe */
    assert_int_equal(gw_route_pick(m, tried, -1, NULL), 2); /* only one probe at a time */
    gw_route_begin(a);
    gw_route_end(a, &t->set, 0, 1, 0, 0, 0); /* probe failed: cooling again */
    assert_int_equal(gw_route_pick(m, tried, -1, NULL), 2);
    usleep(250000);
    assert_int_equal(gw_route_pick(m, tried, -1, NULL), 0);
    gw_route_begin(a);
    gw_route_end(a, &t->set, 1, 0, 1000, 10, 0); /* probe passed: closed */
    assert_int_equal(gw_route_pick(m, tried, -1, NULL), 0);
    assert_int_equal(gw_route_pick(m, tried, -1, NULL), 0);
    /* a 429 cools down for its Retry-After, whatever allowed_fails says */
    gw_route_begin(a);
    gw_route_end(a, &t->set, 0, 0, 0, 0, 150);
    assert_false(gw_route_available(a));
    /* a reload keeps the state of deployments with the same name and URL */
    struct gw_table *t2 = build(two_groups, &err);
    gw_table_inherit(t2, t);
    assert_false(gw_route_available(&t2->models[0].dep[0]));
    assert_true(gw_route_available(&t2->models[0].dep[1]));
    gw_table_release(t2);
    gw_table_release(t);
    buf_free(&err);
}

static void test_latency_strategy(void **state)
{
    struct buf err;
    buf_init(&err, 1 << 16);
    struct gw_table *t = build(two_groups, &err);
    struct gw_model *m = &t->models[0];
    uint8_t tried[GW_MAX_DEPLOYMENTS] = {0};
    gw_route_begin(&m->dep[0]);
    gw_route_end(&m->dep[0], &t->set, 1, 0, 50000, 0, 0);
    gw_route_begin(&m->dep[1]);
    gw_route_end(&m->dep[1], &t->set, 1, 0, 1000, 0, 0);
    for (int i = 0; i < 100; i++)
        assert_int_equal(gw_route_pick(m, tried, GW_STRAT_LATENCY, NULL), 1);
    gw_route_begin(&m->dep[1]); /* least-busy avoids the one with a request in flight */
    for (int i = 0; i < 100; i++)
        assert_int_equal(gw_route_pick(m, tried, GW_STRAT_LEAST_BUSY, NULL), 0);
    gw_table_release(t);
    buf_free(&err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_priority_and_weights),
        cmocka_unit_test(test_cooldown_half_open),
        cmocka_unit_test(test_latency_strategy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
