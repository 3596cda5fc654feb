/*
 * test_quant.c - reference quantizers: error bounds per type on gaussian data,
 * dot products against the dequantized rows, a hand-decoded Q4_K block, and
 * bit-level properties (fixed points, zero and constant blocks).
 *
 * RMSE bounds are 3-5% above what the implementation measures on this fixed
 * seed (printed with QUANT_TEST_VERBOSE=1): q8_0 0.54%, q4_0 8.6%, q4_1 7.8%,
 * q5_0 4.3%, q5_1 3.8%, q2_K 29.7%, q3_K 15.2%, q4_K 7.2%, q5_K 3.6%,
 * q6_K 1.8%. A swapped nibble or a lost high bit gives several times that; a
 * K-type scale search reduced to plain min/max is caught by the comparisons
 * against Q4_1/Q5_1.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/err.h"
#include "engine/fp16.h"
#include "engine/quant.h"

#define N (64 * 1024)

static uint64_t rng_state;

static double rnd_uniform(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return ((rng_state >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

static void gaussian(float *x, int64_t n, uint64_t seed)
{
    rng_state = seed * 0x9E3779B97F4A7C15ull + 1;
    for (int64_t i = 0; i < n; i += 2) {
        double u1 = rnd_uniform(), u2 = rnd_uniform();
        double r = sqrt(-2 * log(u1));
        x[i] = (float)(r * cos(2 * M_PI * u2));
        if (i + 1 < n)
            x[i + 1] = (float)(r * sin(2 * M_PI * u2));
    }
}

static size_t row_bytes(uint32_t t, int64_t n)
{
    return ggml_row_size(t, (uint64_t)n);
}

/* Relative RMSE of quantize -> dequantize of x. */
static double roundtrip_rel_rmse(uint32_t t, const float *x, int64_t n)
{
    void *q = malloc(row_bytes(t, n));
    float *y = malloc((size_t)n * sizeof *y);
    assert_int_equal(quant_quantize_row(t, x, q, n), 0);
    assert_int_equal(quant_dequantize_row(t, q, y, n), 0);
    double se = 0, ss = 0;
    for (int64_t i = 0; i < n; i++) {
        assert_false(isnan(y[i]));
        se += (double)(x[i] - y[i]) * (x[i] - y[i]);
        ss += (double)x[i] * x[i];
    }
    free(q);
    free(y);
    return sqrt(se / ss);
}

static const struct {
    uint32_t type;
    double max_rel_rmse;
} rmse_bounds[] = {
    {GGML_TYPE_F32, 0.0},     {GGML_TYPE_F16, 0.00023}, {GGML_TYPE_BF16, 0.0018},
    {GGML_TYPE_Q8_0, 0.0056}, {GGML_TYPE_Q8_1, 0.0056}, {GGML_TYPE_Q8_K, 0.0073},
    {GGML_TYPE_Q5_0, 0.0445}, {GGML_TYPE_Q5_1, 0.0392}, {GGML_TYPE_Q4_0, 0.089},
    {GGML_TYPE_Q4_1, 0.081},  {GGML_TYPE_Q6_K, 0.0185}, {GGML_TYPE_Q5_K, 0.0375},
    {GGML_TYPE_Q4_K, 0.0745}, {GGML_TYPE_Q3_K, 0.158},  {GGML_TYPE_Q2_K, 0.31},
};

static void test_rmse(void **state)
{
    (void)state;
    float *x = malloc(N * sizeof *x);
    gaussian(x, N, 1);
    int verbose = getenv("QUANT_TEST_VERBOSE") != NULL;
    for (size_t i = 0; i < sizeof rmse_bounds / sizeof rmse_bounds[0]; i++) {
        uint32_t t = rmse_bounds[i].type;
        double e = roundtrip_rel_rmse(t, x, N);
        if (verbose)
            printf("%-5s rel rmse %.5f (bound %.5f)\n", ggml_type_get(t)->name, e,
                   rmse_bounds[i].max_rel_rmse);
        if (e > rmse_bounds[i].max_rel_rmse && !verbose)
            fail_msg("%s: relative rmse %.5f > %.5f", ggml_type_get(t)->name, e,
                     rmse_bounds[i].max_rel_rmse);
    }
    /* the K types' scale search must beat the plain min/max types of the same width */
    assert_true(roundtrip_rel_rmse(GGML_TYPE_Q4_K, x, N) <
                0.95 * roundtrip_rel_rmse(GGML_TYPE_Q4_1, x, N));
    assert_true(roundtrip_rel_rmse(GGML_TYPE_Q5_K, x, N) <
                0.98 * roundtrip_rel_rmse(GGML_TYPE_Q5_1, x, N));
    free(x);
}

/* Each weight type against its activation type: vec_dot == dot of the dequantized rows. */
static void test_vec_dot(void **state)
{
    (void)state;
    static const uint32_t types[] = {GGML_TYPE_F32,  GGML_TYPE_F16,  GGML_TYPE_BF16, GGML_TYPE_Q4_0,
                                     GGML_TYPE_Q4_1, GGML_TYPE_Q5_0, GGML_TYPE_Q5_1, GGML_TYPE_Q8_0,
                                     GGML_TYPE_Q2_K, GGML_TYPE_Q3_K, GGML_TYPE_Q4_K, GGML_TYPE_Q5_K,
                                     GGML_TYPE_Q6_K};
    const int64_t n = 4096;
    float *w = malloc(n * sizeof *w), *x = malloc(n * sizeof *x);
    float *wd = malloc(n * sizeof *wd), *xd = malloc(n * sizeof *xd);
    void *wq = malloc(n * 4), *xq = malloc(n * 4);
    for (int trial = 0; trial < 3; trial++) {
        gaussian(w, n, 100 + (uint64_t)trial);
        gaussian(x, n, 200 + (uint64_t)trial);
        if (trial == 2) /* a mean offset exercises the min terms */
            for (int64_t i = 0; i < n; i++)
                x[i] += 0.7f;
        for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
            uint32_t t = types[k], vt = quant_vec_dot_type(t);
            assert_int_not_equal(vt, GGML_TYPE_COUNT);
            assert_int_equal(quant_quantize_row(t, w, wq, n), 0);
            assert_int_equal(quant_quantize_row(vt, x, xq, n), 0);
            assert_int_equal(quant_dequantize_row(t, wq, wd, n), 0);
            assert_int_equal(quant_dequantize_row(vt, xq, xd, n), 0);
            double ref = 0, mag = 0, exact = 0;
            for (int64_t i = 0; i < n; i++) {
                ref += (double)wd[i] * xd[i];
                mag += fabs((double)wd[i] * xd[i]);
                exact += (double)w[i] * x[i];
            }
            float got;
            assert_int_equal(quant_vec_dot(t, n, wq, xq, &got), 0);
            /* Q8_1's s is rounded to fp16: allow for it in Q4_1/Q5_1 */
            double tol = 2e-5 * mag + ((vt == GGML_TYPE_Q8_1) ? 1e-3 * mag : 0);
            if (fabs(got - ref) > tol)
                fail_msg("%s: vec_dot %.6f vs dequantized %.6f (tol %.2e)", ggml_type_get(t)->name,
                         got, ref, tol);
            /* and close to the unquantized dot relative to its magnitude */
            if (fabs(got - exact) > 0.1 * mag)
                fail_msg("%s: vec_dot %.4f vs exact %.4f", ggml_type_get(t)->name, got, exact);
        }
    }
    free(w);
    free(x);
    free(wd);
    free(xd);
    free(wq);
    free(xq);
}

static void test_pairing(void **state)
{
    (void)state;
    assert_int_equal(quant_vec_dot_type(GGML_TYPE_Q4_0), GGML_TYPE_Q8_0);
    assert_int_equal(quant_vec_dot_type(GGML_TYPE_Q5_0), GGML_TYPE_Q8_0);
    assert_int_equal(quant_vec_dot_type(GGML_TYPE_Q8_0), GGML_TYPE_Q8_0);
    assert_int_equal(quant_vec_dot_type(GGML_TYPE_Q4_1), GGML_TYPE_Q8_1);
    assert_int_equal(quant_vec_dot_type(GGML_TYPE_Q5_1), GGML_TYPE_Q8_1);
    assert_int_equal(quant_vec_dot_type(GGML_TYPE_Q4_K), GGML_TYPE_Q8_K);
    assert_int_equal(quant_vec_dot_type(GGML_TYPE_Q6_K), GGML_TYPE_Q8_K);
    assert_int_equal(quant_vec_dot_type(GGML_TYPE_F16), GGML_TYPE_F32);
    assert_int_equal(quant_vec_dot_type(GGML_TYPE_BF16), GGML_TYPE_F32);
    assert_int_equal(quant_vec_dot_type(GGML_TYPE_Q8_K), GGML_TYPE_COUNT);
    assert_int_equal(quant_vec_dot_type(GGML_TYPE_I32), GGML_TYPE_COUNT);
    assert_int_equal(quant_vec_dot_type(999), GGML_TYPE_COUNT);
    float f[32] = {0}, out;
    uint8_t q[64];
    assert_int_equal(quant_quantize_row(GGML_TYPE_Q4_0, f, q, 31), AS_EINVAL);
    assert_int_equal(quant_quantize_row(GGML_TYPE_I32, f, q, 32), AS_EUNSUP);
    assert_int_equal(quant_dequantize_row(GGML_TYPE_Q4_K, q, f, 32), AS_EINVAL);
    assert_int_equal(quant_vec_dot(GGML_TYPE_Q8_K, 256, q, q, &out), AS_EUNSUP);
    assert_int_equal(quant_nearest_int(2.5f), 2);
    assert_int_equal(quant_nearest_int(3.5f), 4);
    assert_int_equal(quant_nearest_int(-2.5f), -2);
    assert_int_equal(quant_nearest_int(-2.6f), -3);
}

/*
 * A Q4_K block written byte by byte: d = 1, dmin = 0.5, scales
 * {1,2,3,4,17,33,48,63}, mins {0,1,2,3,20,40,1,62} (6-bit, the high bits of
 * sub-blocks 4..7 in the top bits of bytes 0..7), and qs[b] = (b % 16) |
 * (15 - b % 16) << 4. Element e of 64-chunk c: low nibble of qs[32c + e%32]
 * (sub-block 2c) for the first 32, high nibble (sub-block 2c+1) for the rest.
 */
static void test_q4_K_hand_block(void **state)
{
    (void)state;
    block_q4_K b;
    b.d = 0x3C00;    /* 1.0 */
    b.dmin = 0x3800; /* 0.5 */
    const uint8_t packed[12] = {0x41, 0x82, 0xC3, 0xC4, 0x40, 0x81,
                                0x02, 0xC3, 0x41, 0x81, 0x10, 0xEF};
    memcpy(b.scales, packed, 12);
    for (int i = 0; i < 128; i++)
        b.qs[i] = (uint8_t)((i % 16) | ((15 - i % 16) << 4));
    const int sc[8] = {1, 2, 3, 4, 17, 33, 48, 63}, mn[8] = {0, 1, 2, 3, 20, 40, 1, 62};
    float y[256];
    assert_int_equal(quant_dequantize_row(GGML_TYPE_Q4_K, &b, y, 256), 0);
    for (int e = 0; e < 256; e++) {
        int c = e / 64, r = e % 64, l = r % 32;
        int nib = r < 32 ? l % 16 : 15 - l % 16, sub = 2 * c + (r >= 32);
        float want = (float)(sc[sub] * nib) - 0.5f * (float)mn[sub];
        if (y[e] != want)
            fail_msg("element %d: %g, want %g", e, y[e], want);
    }
    /* a few worked by hand */
    assert_true(y[0] == 0.f);
    assert_true(y[33] == 27.5f);   /* nib 14 * 2 - 0.5 * 1 */
    assert_true(y[130] == 24.f);   /* nib 2 * 17 - 0.5 * 20 */
    assert_true(y[170] == 145.f);  /* nib 5 * 33 - 0.5 * 40 */
    assert_true(y[200] == 383.5f); /* nib 8 * 48 - 0.5 * 1 */
    assert_true(y[255] == -31.f);  /* nib 0 * 63 - 0.5 * 62 */
}

/* Hand-made Q6_K, Q8_0 and Q4_0 blocks: a few elements decoded by hand. */
static void test_hand_blocks(void **state)
{
    (void)state;
    block_q8_0 q8 = {.d = 0x3800}; /* 0.5 */
    for (int i = 0; i < 32; i++)
        q8.qs[i] = (int8_t)(i - 16);
    float y[256];
    assert_int_equal(quant_dequantize_row(GGML_TYPE_Q8_0, &q8, y, 32), 0);
    assert_true(y[0] == -8.f && y[31] == 7.5f);
    block_q4_0 q4 = {.d = 0x4000}; /* 2.0 */
    for (int i = 0; i < 16; i++)
        q4.qs[i] = (uint8_t)(i | ((15 - i) << 4));
    assert_int_equal(quant_dequantize_row(GGML_TYPE_Q4_0, &q4, y, 32), 0);
    assert_true(y[0] == -16.f && y[15] == 14.f && y[16] == 14.f && y[31] == -16.f);
    /* Q6_K: all quants 32 + 5 except element 200 (half 1, l = 8, third quarter) = 32 - 32 */
    block_q6_K q6;
    memset(&q6, 0, sizeof q6);
    q6.d = 0x3C00;
    for (int i = 0; i < 16; i++)
        q6.scales[i] = (int8_t)(i - 8);
    for (int i = 0; i < 128; i++)
        q6.ql[i] = 0x55; /* low 4 bits of every quant = 5 */
    for (int i = 0; i < 64; i++)
        q6.qh[i] = 0xAA; /* high 2 bits = 2 -> 5 + 32 = 37 -> 37 - 32 = 5 */
    /* element 200 = 128 + 72: ql[64 + 8] high nibble, qh[32 + 8] bits 4..5 */
    q6.ql[72] = 0x05;
    q6.qh[40] = 0x8A;
    assert_int_equal(quant_dequantize_row(GGML_TYPE_Q6_K, &q6, y, 256), 0);
    assert_true(y[0] == 5.f * -8);
    assert_true(y[255] == 5.f * 7);
    assert_true(y[200] == -32.f * (200 / 16 - 8));
    assert_true(y[199] == 5.f * (199 / 16 - 8));
}

/* quantize(dequantize(quantize(x))) == quantize(x) where the format allows it. */
static void test_fixed_points(void **state)
{
    (void)state;
    static const uint32_t types[] = {GGML_TYPE_Q8_0, GGML_TYPE_Q4_0, GGML_TYPE_Q5_0,
                                     GGML_TYPE_Q8_K};
    const int64_t n = 1024;
    float *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
    uint8_t *q1 = malloc(n * 4), *q2 = malloc(n * 4);
    gaussian(x, n, 7);
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        uint32_t t = types[k];
        size_t sz = row_bytes(t, n);
        assert_int_equal(quant_quantize_row(t, x, q1, n), 0);
        assert_int_equal(quant_dequantize_row(t, q1, y, n), 0);
        assert_int_equal(quant_quantize_row(t, y, q2, n), 0);
        if (memcmp(q1, q2, sz))
            fail_msg("%s: requantizing the dequantized row changed it", ggml_type_get(t)->name);
    }
    free(x);
    free(y);
    free(q1);
    free(q2);
}

/* All-zero and constant rows: finite output, zeros stay zeros. */
static void test_degenerate(void **state)
{
    (void)state;
    static const uint32_t types[] = {GGML_TYPE_Q4_0, GGML_TYPE_Q4_1, GGML_TYPE_Q5_0,
                                     GGML_TYPE_Q5_1, GGML_TYPE_Q8_0, GGML_TYPE_Q8_1,
                                     GGML_TYPE_Q2_K, GGML_TYPE_Q3_K, GGML_TYPE_Q4_K,
                                     GGML_TYPE_Q5_K, GGML_TYPE_Q6_K, GGML_TYPE_Q8_K};
    float x[512], y[512];
    uint8_t q[2048];
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        uint32_t t = types[k];
        memset(x, 0, sizeof x);
        assert_int_equal(quant_quantize_row(t, x, q, 512), 0);
        assert_int_equal(quant_dequantize_row(t, q, y, 512), 0);
        for (int i = 0; i < 512; i++)
            if (y[i] != 0.f)
                fail_msg("%s: zero row decodes to %g at %d", ggml_type_get(t)->name, y[i], i);
        for (int i = 0; i < 512; i++)
            x[i] = 0.75f;
        assert_int_equal(quant_quantize_row(t, x, q, 512), 0);
        assert_int_equal(quant_dequantize_row(t, q, y, 512), 0);
        for (int i = 0; i < 512; i++)
            if (!isfinite(y[i]) || fabsf(y[i] - 0.75f) > 0.06f)
                fail_msg("%s: constant 0.75 decodes to %g at %d", ggml_type_get(t)->name, y[i], i);
    }
}

/*
 * Hostile values: NaN, infinities, huge and subnormal floats must quantize
 * without undefined behaviour (the sanitizer build aborts on a bad float->int
 * cast), and random bytes must dequantize and dot without faults.
 */
static void test_hostile_values(void **state)
{
    (void)state;
    static const uint32_t types[] = {GGML_TYPE_F16,  GGML_TYPE_BF16, GGML_TYPE_Q4_0, GGML_TYPE_Q4_1,
                                     GGML_TYPE_Q5_0, GGML_TYPE_Q5_1, GGML_TYPE_Q8_0, GGML_TYPE_Q8_1,
                                     GGML_TYPE_Q2_K, GGML_TYPE_Q3_K, GGML_TYPE_Q4_K, GGML_TYPE_Q5_K,
                                     GGML_TYPE_Q6_K, GGML_TYPE_Q8_K};
    const float specials[] = {NAN, INFINITY, -INFINITY, 3e38f, -3e38f, 1e-40f, -1e-45f, 0.f};
    float x[512], y[512];
    uint8_t q[4096], xq[4096];
    gaussian(x, 512, 99);
    for (int i = 0; i < 512; i += 7)
        x[i] = specials[(i / 7) % 8];
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        assert_int_equal(quant_quantize_row(types[k], x, q, 512), 0);
        assert_int_equal(quant_dequantize_row(types[k], q, y, 512), 0);
    }
    /* huge but finite values: finite results for the block types */
    for (int i = 0; i < 512; i++)
        x[i] = (i % 3 ? 1e30f : -2e30f) * (float)(i % 5);
    for (size_t k = 2; k < sizeof types / sizeof types[0]; k++) {
        assert_int_equal(quant_quantize_row(types[k], x, q, 512), 0);
        assert_int_equal(quant_dequantize_row(types[k], q, y, 512), 0);
    }
    rng_state = 12345;
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        for (size_t i = 0; i < sizeof q; i++) {
            q[i] = (uint8_t)(rnd_uniform() * 256);
            xq[i] = (uint8_t)(rnd_uniform() * 256);
        }
        assert_int_equal(quant_dequantize_row(types[k], q, y, 512), 0);
        float out;
        uint32_t vt = quant_vec_dot_type(types[k]);
        if (vt != GGML_TYPE_COUNT)
            assert_int_equal(quant_vec_dot(types[k], 512, q, xq, &out), 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rmse),        cmocka_unit_test(test_vec_dot),
        cmocka_unit_test(test_pairing),     cmocka_unit_test(test_q4_K_hand_block),
        cmocka_unit_test(test_hand_blocks), cmocka_unit_test(test_fixed_points),
        cmocka_unit_test(test_degenerate),  cmocka_unit_test(test_hostile_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
