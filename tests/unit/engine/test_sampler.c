/*
 * test_sampler.c - sampler: greedy, each truncation rule against a brute-force
 * recomputation, penalties with OpenAI / llama semantics, logit bias,
 * reproducibility from the seed, log-probabilities, and the empirical
 * distribution of draws.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engine/sampler.h"

#define NV 1000

static float logits[NV];

static void make_logits(unsigned seed)
{
    srand(seed);
    for (int i = 0; i < NV; i++)
        logits[i] = (float)((double)rand() / RAND_MAX * 10.0 - 5.0);
}

static struct sampler *mk(float temp, int top_k, float top_p, float min_p, uint64_t seed)
{
    struct sampler_params p;
    sampler_params_default(&p);
    p.temperature = temp;
    p.top_k = top_k;
    p.top_p = top_p;
    p.min_p = min_p;
    p.seed = seed;
    struct sampler *s = sampler_new(&p, NV);
    assert_non_null(s);
    return s;
}

static int argmax_of(const float *w)
{
    int b = 0;
    for (int i = 1; i < NV; i++)
        if (w[i] > w[b])
            b = i;
    return b;
}

static void test_greedy(void **state)
{
    (void)state;
    make_logits(1);
    struct sampler *s = mk(0, 0, 1, 0, 1);
    assert_int_equal(sampler_sample(s, logits, 0, NULL), argmax_of(logits));
    /* ties go to the lowest id */
    float w[NV] = {0};
    w[7] = w[3] = 2;
    assert_int_equal(sampler_sample(s, w, 0, NULL), 3);
    sampler_free(s);
    sampler_free(NULL);
}

/* rank of token t among logits (0 = best) */
static int rank_of(const float *w, int t)
{
    int r = 0;
    for (int i = 0; i < NV; i++)
        if (w[i] > w[t] || (w[i] == w[t] && i < t))
            r++;
    return r;
}

static void test_top_k(void **state)
{
    (void)state;
    make_logits(2);
    struct sampler *s = mk(5.0f, 10, 1, 0, 42);
    int seen[NV] = {0};
    for (int i = 0; i < 2000; i++) {
        int t = sampler_sample(s, logits, 0, NULL);
        assert_true(rank_of(logits, t) < 10);
        seen[t]++;
    }
    int distinct = 0;
    for (int i = 0; i < NV; i++)
        distinct += seen[i] > 0;
    assert_int_equal(distinct, 10); /* high temperature: all ten get drawn */
    sampler_free(s);

    /* the heap's worst cases: ascending logits (every token displaces the
     * root), equal logits (ties keep the lower ids) and NaN (never kept) */
    float up[NV], flat[NV];
    for (int i = 0; i < NV; i++) {
        up[i] = (float)i / NV;
        flat[i] = i % 7 == 3 ? NAN : 0.5f;
    }
    s = mk(1.0f, 10, 1, 0, 3);
    int lo = NV, hi = 0;
    for (int i = 0; i < 500; i++) {
        int t = sampler_sample(s, up, 0, NULL);
        lo = t < lo ? t : lo;
        hi = t > hi ? t : hi;
    }
    assert_int_equal(lo, NV - 10);
    assert_int_equal(hi, NV - 1);
    memset(seen, 0, sizeof seen);
    for (int i = 0; i < 500; i++)
        seen[sampler_sample(s, flat, 0, NULL)]++;
    for (int i = 0; i < NV; i++) /* the first ten ids that are not NaN: 0-2, 4-9, 11 */
        assert_true((seen[i] > 0) == (i < 12 && i != 3 && i != 10));
    sampler_free(s);
}

static void test_top_p_min_p(void **state)
{
    (void)state;
    make_logits(3);
    /* brute force: sorted probabilities, the smallest prefix reaching p */
    double prob[NV], z = 0, m = logits[argmax_of(logits)];
    for (int i = 0; i < NV; i++)
        z += (prob[i] = exp(logits[i] - m));
    int order[NV];
    for (int i = 0; i < NV; i++) /* ranks are distinct: place each token at its rank */
        order[rank_of(logits, i)] = i;
    double cum = 0;
    int n_keep = 0;
    while (cum < 0.9 * z)
        cum += prob[order[n_keep++]];
    struct sampler *s = mk(1.0f, 0, 0.9f, 0, 7);
    int max_rank = 0, rank[NV];
    for (int i = 0; i < NV; i++)
        rank[order[i]] = i;
    for (int i = 0; i < 3000; i++) {
        int r = rank[sampler_sample(s, logits, 0, NULL)];
        assert_true(r < n_keep);
        max_rank = r > max_rank ? r : max_rank;
    }
    assert_true(max_rank > n_keep / 2); /* the tail of the nucleus is reachable */
    sampler_free(s);

    /* equal logits: the nucleus is the lower ids (ties go to the lower id), and
     * a crossing bucket spanning the whole vocabulary is cut exactly */
    float flat[NV];
    for (int i = 0; i < NV; i++)
        flat[i] = 0.25f;
    s = mk(1.0f, 0, 0.5f, 0, 11);
    int max_t = 0;
    for (int i = 0; i < 2000; i++) {
        int t = sampler_sample(s, flat, 0, NULL);
        assert_true(t <= NV / 2);
        max_t = t > max_t ? t : max_t;
    }
    assert_true(max_t >= NV / 2 - 20);
    sampler_free(s);

    /* min-p 0.5: only tokens with p >= 0.5 * p_max */
    s = mk(1.0f, 0, 1, 0.5f, 9);
    for (int i = 0; i < 1000; i++) {
        int t = sampler_sample(s, logits, 0, NULL);
        assert_true(logits[t] >= m + logf(0.5f) - 1e-5f);
    }
    sampler_free(s);
}

static void test_distribution(void **state)
{
    (void)state;
    /* three tokens with probabilities 0.5, 0.3, 0.2 at temperature 1 */
    float w[NV];
    for (int i = 0; i < NV; i++)
        w[i] = -INFINITY;
    w[10] = logf(0.5f);
    w[20] = logf(0.3f);
    w[30] = logf(0.2f);
    struct sampler *s = mk(1.0f, 0, 1, 0, 123);
    int c10 = 0, c20 = 0, c30 = 0, n = 20000;
    for (int i = 0; i < n; i++) {
        int t = sampler_sample(s, w, 0, NULL);
        c10 += t == 10;
        c20 += t == 20;
        c30 += t == 30;
    }
    assert_int_equal(c10 + c20 + c30, n);
    assert_true(fabs(c10 / (double)n - 0.5) < 0.02);
    assert_true(fabs(c20 / (double)n - 0.3) < 0.02);
    assert_true(fabs(c30 / (double)n - 0.2) < 0.02);
    sampler_free(s);
    /* temperature 0.5 squares the odds: 25:9:4 */
    s = mk(0.5f, 0, 1, 0, 5);
    c10 = 0;
    for (int i = 0; i < n; i++)
        c10 += sampler_sample(s, w, 0, NULL) == 10;
    assert_true(fabs(c10 / (double)n - 25.0 / 38) < 0.02);
    sampler_free(s);
}

static void test_seed_reproducible(void **state)
{
    (void)state;
    make_logits(4);
    struct sampler *a = mk(1.0f, 50, 0.95f, 0.01f, 99), *b = mk(1.0f, 50, 0.95f, 0.01f, 99),
                   *c = mk(1.0f, 50, 0.95f, 0.01f, 100);
    int same_c = 0;
    int seq_a[64];
    for (int i = 0; i < 64; i++) {
        int ta = sampler_sample(a, logits, 0, NULL), tb = sampler_sample(b, logits, 0, NULL);
        assert_int_equal(ta, tb);
        seq_a[i] = ta;
        same_c += ta == sampler_sample(c, logits, 0, NULL);
    }
    assert_true(same_c < 64);
    sampler_reset(a, 99);
    for (int i = 0; i < 64; i++)
        assert_int_equal(sampler_sample(a, logits, 0, NULL), seq_a[i]);
    sampler_free(a);
    sampler_free(b);
    sampler_free(c);
}

static void test_penalties(void **state)
{
    (void)state;
    float w[NV] = {0};
    w[1] = 3.0f;
    w[2] = 2.9f;
    w[3] = -1.0f;
    struct sampler_params p;
    sampler_params_default(&p);
    p.temperature = 0;
    p.presence_penalty = 0.5f;
    p.frequency_penalty = 0.0f;
    struct sampler *s = sampler_new(&p, NV);
    assert_non_null(s);
    struct sampler_result r;
    sampler_accept(s, 1, 0); /* prompt tokens do not count for presence */
    assert_int_equal(sampler_sample(s, w, 3, &r), 1);
    sampler_accept(s, 1, 1);
    assert_int_equal(sampler_sample(s, w, 3, &r), 2); /* 3.0 - 0.5 < 2.9 */
    /* log-probabilities are taken after penalties: token 1 is at 2.5 now */
    assert_int_equal(r.top[0].token, 2);
    assert_int_equal(r.top[1].token, 1);
    assert_true(fabsf((r.top[0].logprob - r.top[1].logprob) - 0.4f) < 1e-5f);
    sampler_free(s);

    /* frequency: count * penalty */
    p.presence_penalty = 0;
    p.frequency_penalty = 0.06f;
    s = sampler_new(&p, NV);
    sampler_accept(s, 1, 1);
    assert_int_equal(sampler_sample(s, w, 0, NULL), 1); /* 2.94 > 2.9 */
    sampler_accept(s, 1, 1);
    assert_int_equal(sampler_sample(s, w, 0, NULL), 2); /* 2.88 < 2.9 */
    sampler_free(s);

    /* llama repetition penalty over the last n: divides positive, multiplies negative */
    sampler_params_default(&p);
    p.temperature = 0;
    p.repeat_penalty = 2.0f;
    p.repeat_last_n = 2;
    s = sampler_new(&p, NV);
    sampler_accept(s, 1, 0);
    sampler_accept(s, 1, 0); /* counted once though present twice */
    assert_int_equal(sampler_sample(s, w, 3, &r), 2);
    assert_int_equal(r.top[1].token, 1); /* 3.0 / 2 = 1.5 */
    assert_true(fabsf((r.top[0].logprob - r.top[1].logprob) - 1.4f) < 1e-5f);
    sampler_accept(s, 5, 0);
    sampler_accept(s, 6, 0); /* token 1 left the window */
    assert_int_equal(sampler_sample(s, w, 0, NULL), 1);
    float wn[NV];
    for (int i = 0; i < NV; i++)
        wn[i] = -5.0f;
    wn[6] = -1.0f;
    wn[7] = -1.5f;
    assert_int_equal(sampler_sample(s, wn, 0, NULL), 7); /* -1 * 2 < -1.5 */
    sampler_free(s);
}

static void test_bias_and_logprobs(void **state)
{
    (void)state;
    make_logits(5);
    struct sampler_bias bias[2] = {{17, 100.0f}, {argmax_of(logits), -100.0f}};
    struct sampler_params p;
    sampler_params_default(&p);
    p.temperature = 0;
    p.bias = bias;
    p.n_bias = 2;
    struct sampler *s = sampler_new(&p, NV);
    assert_non_null(s);
    struct sampler_result r;
    assert_int_equal(sampler_sample(s, logits, 5, &r), 17);
    assert_int_equal(r.token, 17);
    assert_int_equal(r.n_top, 5);
    assert_int_equal(r.top[0].token, 17);
    assert_true(r.logprob <= 0 && r.logprob > -1e-3f);
    for (uint32_t i = 1; i < r.n_top; i++)
        assert_true(r.top[i].logprob <= r.top[i - 1].logprob);
    sampler_free(s);

    /* log-probabilities sum to 1 over the vocabulary, independent of temperature */
    sampler_params_default(&p);
    p.temperature = 0.3f;
    s = sampler_new(&p, NV);
    sampler_sample(s, logits, SAMPLER_MAX_TOP + 10, &r);
    assert_int_equal(r.n_top, SAMPLER_MAX_TOP);
    double m = logits[argmax_of(logits)], z = 0;
    for (int i = 0; i < NV; i++)
        z += exp(logits[i] - m);
    assert_true(fabs(r.top[0].logprob - (0 - log(z))) < 1e-4);
    assert_true(fabs(r.logprob - (logits[r.token] - m - log(z))) < 1e-4);
    sampler_free(s);

    /* NaN logits never index out of bounds */
    float nanl[NV];
    for (int i = 0; i < NV; i++)
        nanl[i] = NAN;
    sampler_params_default(&p);
    p.min_p = 0.1f;
    p.top_p = 0.9f;
    s = sampler_new(&p, NV);
    int32_t t = sampler_sample(s, nanl, 3, &r);
    assert_true(t >= 0 && t < NV);
    sampler_free(s);

    /* invalid bias token */
    struct sampler_bias bad = {NV, 1.0f};
    p.bias = &bad;
    p.n_bias = 1;
    assert_null(sampler_new(&p, NV));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_greedy),
        cmocka_unit_test(test_top_k),
        cmocka_unit_test(test_top_p_min_p),
        cmocka_unit_test(test_distribution),
        cmocka_unit_test(test_seed_reproducible),
        cmocka_unit_test(test_penalties),
        cmocka_unit_test(test_bias_and_logprobs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
