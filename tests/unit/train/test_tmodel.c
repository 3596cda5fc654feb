/*
 * test_tmodel.c - the trainer's hand-written backward pass against finite
 * differences, tensor by tensor, for tied and untied models with GQA and a
 * packed batch of sequences of different lengths (with ignored targets).
 *
 * For each tensor we compare the analytic directional derivative g . d with
 * the central difference (L(p + e d) - L(p - e d)) / 2e along a random
 * direction d and along the gradient itself; every op's backward feeds some
 * tensor's gradient, so a wrong term anywhere shows up here.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train/optim.h"
#include "train/tmodel.h"

/* two sequences (5 and 3 tokens) packed; one ignored target in each */
static const int32_t tokens[] = {1, 5, 9, 3, 7, 2, 11, 4};
static const int32_t targets[] = {5, 9, -1, 7, 12, 11, 4, -1};
static const int32_t pos[] = {0, 1, 2, 3, 4, 0, 1, 2};
static const int32_t seq_start[] = {0, 0, 0, 0, 0, 5, 5, 5};

static uint64_t rs = 12345;
static float rnd(void)
{
    rs = rs * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((rs >> 40) / 16777216.0) * 2.0f - 1.0f;
}

static void check_model(int tied)
{
    struct tm_config c = {.vocab = 17,
                          .dim = 16,
                          .n_layer = 2,
                          .n_head = 4,
                          .n_kv_head = 2,
                          .ffn = 24,
                          .max_seq = 8,
                          .tied = tied,
                          .rope_theta = 10000.0f,
                          .norm_eps = 1e-5f};
    char err[256];
    struct tmodel *m = tm_new(&c, 8, 1, 7, err, sizeof err);
    assert_non_null(m);
    struct tm_batch b = {8, tokens, targets, pos, seq_start};
    float *p = tm_params_flat(m);
    int nt;
    const struct tm_tensor *t = tm_tensors(m, &nt);
    /* larger weights than the training init, so every path carries signal */
    for (int i = 0; i < nt; i++)
        for (size_t j = 0; j < (size_t)t[i].rows * t[i].cols; j++)
            p[t[i].offset + j] = t[i].rows == 1 ? 1.0f + 0.3f * rnd() : 0.4f * rnd();
    tm_zero_grad(m);
    float loss = tm_forward(m, &b);
    assert_true(loss > 0 && isfinite(loss));
    tm_backward(m, &b, 1.0f);
    size_t np = tm_param_count(&c);
    float *g = malloc(np * sizeof *g);
    memcpy(g, tm_grads_flat(m), np * sizeof *g);
    for (int i = 0; i < nt; i++) {
        size_t n = (size_t)t[i].rows * t[i].cols, off = t[i].offset;
        float *d = malloc(n * sizeof *d);
        for (int dir = 0; dir < 2; dir++) {
            double norm = 0;
            for (size_t j = 0; j < n; j++) {
                d[j] = dir == 0 ? rnd() : g[off + j];
                norm += (double)d[j] * d[j];
            }
            if (norm == 0)
                fail_msg("tensor %s has an all-zero gradient", t[i].name);
            double an = 0;
            for (size_t j = 0; j < n; j++) {
                d[j] = (float)(d[j] / sqrt(norm));
                an += (double)g[off + j] * d[j];
            }
            const float e = 1e-2f;
            for (size_t j = 0; j < n; j++)
                p[off + j] += e * d[j];
            double lp = tm_forward(m, &b);
            for (size_t j = 0; j < n; j++)
                p[off + j] -= 2 * e * d[j];
            double lm = tm_forward(m, &b);
            for (size_t j = 0; j < n; j++)
                p[off + j] += e * d[j];
            double fd = (lp - lm) / (2 * e);
            double tol = 1e-3 + 2e-2 * fabs(an);
            if (fabs(fd - an) > tol)
                fail_msg("%s (%s, dir %d): analytic %.6g vs finite difference %.6g", t[i].name,
                         tied ? "tied" : "untied", dir, an, fd);
            if (dir == 1 && an < 1e-3)
                fail_msg("%s: gradient too small (%g) for a meaningful check", t[i].name, an);
        }
        free(d);
    }
    /* accumulation: a second backward with scale 0.5 adds half the gradient */
    tm_forward(m, &b);
    tm_backward(m, &b, 0.5f);
    const float *g2 = tm_grads_flat(m);
    for (size_t j = 0; j < np; j += 37)
        assert_true(fabsf(g2[j] - 1.5f * g[j]) <= 1e-5f + 1e-4f * fabsf(g[j]));
    free(g);
    tm_free(m);
}

static void test_grad_untied(void **s)
{
    (void)s;
    check_model(0);
}

static void test_grad_tied(void **s)
{
    (void)s;
    check_model(1);
}

static void test_config_errors(void **s)
{
    (void)s;
    char err[256];
    struct tm_config c = {.vocab = 17,
                          .dim = 16,
                          .n_layer = 1,
                          .n_head = 3,
                          .n_kv_head = 1,
                          .ffn = 8,
                          .max_seq = 8,
                          .rope_theta = 1e4f,
                          .norm_eps = 1e-5f};
    assert_null(tm_new(&c, 8, 1, 1, err, sizeof err));
    assert_non_null(strstr(err, "n_head"));
    c.n_head = 4, c.n_kv_head = 3;
    assert_null(tm_new(&c, 8, 1, 1, err, sizeof err));
    assert_non_null(strstr(err, "n_kv_head"));
}

static void test_schedule_and_clip(void **s)
{
    (void)s;
    assert_float_equal(lr_schedule(0, 10, 100, 1.0f, 0.1f), 0.1f, 1e-6);
    assert_float_equal(lr_schedule(9, 10, 100, 1.0f, 0.1f), 1.0f, 1e-6);
    assert_float_equal(lr_schedule(10, 10, 100, 1.0f, 0.1f), 1.0f, 1e-6);
    assert_float_equal(lr_schedule(55, 10, 100, 1.0f, 0.1f), 0.55f, 1e-5);
    assert_float_equal(lr_schedule(100, 10, 100, 1.0f, 0.1f), 0.1f, 1e-6);
    float g[4] = {3, 4, 0, 0};
    assert_float_equal(grad_clip(g, 4, 1.0f), 5.0f, 1e-6);
    assert_float_equal(g[0], 0.6f, 1e-5);
    assert_float_equal(g[1], 0.8f, 1e-5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grad_untied),
        cmocka_unit_test(test_grad_tied),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_schedule_and_clip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
