/*
 * test_kernels.c - kern_matmul for every weight type and ISA level against
 * an independent scalar reference, and the element-wise helpers.
 *
 * References: dequantization written here from the GGUF block definitions
 * (independent of kernels.c's unpacking), plus kern__quantize_row_ref for the
 * activation side. Tolerances:
 *  - "exact": with the activations quantized the same way, the kernel's sum
 *    differs from a double-precision sum of w[i] * xq[i] only by float
 *    rounding of the per-block scaling and accumulation: |err| <= 2e-5 * sum|w*xq|.
 *  - "float": against w . x in double, the extra error is the activation
 *    quantization, bounded by sum |w[i]| * d_blk / 2 (rounding to nearest).
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
#include "engine/kernels.h"
#include "engine/kernels_impl.h"
#include "engine/quant_blocks.h"

static uint64_t g_rng = 0x9e3779b97f4a7c15ULL;

static uint32_t rnd_u32(void)
{
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (uint32_t)(g_rng >> 11);
}

static float rnd_f(float lo, float hi)
{
    return lo + (hi - lo) * (float)(rnd_u32() & 0xffffff) / 16777216.0f;
}

/* ---- reference dequantization (from the block definitions) ---------------- */

static void ref_dequant_block(enum ggml_type t, const void *blk, float *y)
{
    switch (t) {
    case GGML_TYPE_Q4_0: {
        const block_q4_0 *x = blk;
        float d = fp16_to_fp32(x->d);
        for (int j = 0; j < 16; j++) {
            y[j] = d * ((x->qs[j] & 15) - 8);
            y[j + 16] = d * ((x->qs[j] >> 4) - 8);
        }
        break;
    }
    case GGML_TYPE_Q4_1: {
        const block_q4_1 *x = blk;
        float d = fp16_to_fp32(x->d), m = fp16_to_fp32(x->m);
        for (int j = 0; j < 16; j++) {
            y[j] = d * (x->qs[j] & 15) + m;
            y[j + 16] = d * (x->qs[j] >> 4) + m;
        }
        break;
    }
    case GGML_TYPE_Q5_0:
    case GGML_TYPE_Q5_1: {
        const uint8_t *qs, *qhp;
        float d, m = 0.0f;
        int off = 0;
        if (t == GGML_TYPE_Q5_0) {
            const block_q5_0 *x = blk;
            d = fp16_to_fp32(x->d);
            qs = x->qs;
            qhp = x->qh;
            off = 16;
        } else {
            const block_q5_1 *x = blk;
            d = fp16_to_fp32(x->d);
            m = fp16_to_fp32(x->m);
            qs = x->qs;
            qhp = x->qh;
        }
        uint32_t qh = (uint32_t)qhp[0] | (uint32_t)qhp[1] << 8 | (uint32_t)qhp[2] << 16 |
                      (uint32_t)qhp[3] << 24;
        for (int j = 0; j < 32; j++) {
            int nib = j < 16 ? (qs[j] & 15) : (qs[j - 16] >> 4);
            int hb = (qh >> j) & 1;
            y[j] = d * ((nib | hb << 4) - off) + m;
        }
        break;
    }
    case GGML_TYPE_Q8_0: {
        const block_q8_0 *x = blk;
        for (int j = 0; j < 32; j++)
            y[j] = fp16_to_fp32(x->d) * x->qs[j];
        break;
    }
    case GGML_TYPE_Q2_K: {
        const block_q2_K *x = blk;
        float d = fp16_to_fp32(x->d), dm = fp16_to_fp32(x->dmin);
        for (int i = 0; i < 256; i++) {
            int half = i / 128, r = i % 128, shift = (r / 32) * 2, l = r % 32;
            int sc = x->scales[i / 16];
            int q = (x->qs[half * 32 + l] >> shift) & 3;
            y[i] = d * (sc & 15) * q - dm * (sc >> 4);
        }
        break;
    }
    case GGML_TYPE_Q3_K: {
        const block_q3_K *x = blk;
        float d = fp16_to_fp32(x->d);
        for (int i = 0; i < 256; i++) {
            int is = i / 16;
            /* 6-bit scale: low 4 bits from scales[0..7] nibbles, high 2 from scales[8..11] */
            int lo = is < 8 ? (x->scales[is] & 15) : (x->scales[is - 8] >> 4);
            int hi = (x->scales[8 + is % 4] >> (2 * (is / 4))) & 3;
            int sc = (lo | hi << 4) - 32;
            int half = i / 128, r = i % 128, shift = (r / 32) * 2, l = r % 32;
            int q = (x->qs[half * 32 + l] >> shift) & 3;
            int h = (x->hmask[l] >> (half * 4 + r / 32)) & 1;
            y[i] = d * sc * (q - (h ? 0 : 4));
        }
        break;
    }
    case GGML_TYPE_Q4_K:
    case GGML_TYPE_Q5_K: {
        const uint8_t *sc12, *qs, *qh = NULL;
        float d, dm;
        if (t == GGML_TYPE_Q4_K) {
            const block_q4_K *x = blk;
            d = fp16_to_fp32(x->d);
            dm = fp16_to_fp32(x->dmin);
            sc12 = x->scales;
            qs = x->qs;
        } else {
            const block_q5_K *x = blk;
            d = fp16_to_fp32(x->d);
            dm = fp16_to_fp32(x->dmin);
            sc12 = x->scales;
            qs = x->qs;
            qh = x->qh;
        }
        for (int i = 0; i < 256; i++) {
            int is = i / 32, sc, mn;
            if (is < 4) {
                sc = sc12[is] & 63;
                mn = sc12[is + 4] & 63;
            } else {
                sc = (sc12[is + 4] & 15) | (sc12[is - 4] >> 6) << 4;
                mn = (sc12[is + 4] >> 4) | (sc12[is] >> 6) << 4;
            }
            int l = i % 32, pair = i / 64;
            int q = (is & 1) ? (qs[pair * 32 + l] >> 4) : (qs[pair * 32 + l] & 15);
            if (qh)
                q += ((qh[l] >> is) & 1) << 4;
            y[i] = d * sc * q - dm * mn;
        }
        break;
    }
    case GGML_TYPE_Q6_K: {
        const block_q6_K *x = blk;
        float d = fp16_to_fp32(x->d);
        for (int i = 0; i < 256; i++) {
            int half = i / 128, r = i % 128, quarter = r / 32, l = r % 32;
            int lowbyte = x->ql[half * 64 + (quarter & 1) * 32 + l];
            int low = quarter < 2 ? (lowbyte & 15) : (lowbyte >> 4);
            int high = (x->qh[half * 32 + l] >> (2 * quarter)) & 3;
            int q = (low | high << 4) - 32;
            y[i] = d * x->scales[i / 16] * q;
        }
        break;
    }
    default:
        fail_msg("no reference for type %d", t);
    }
}

static void ref_dequant_row(enum ggml_type t, const void *row, int64_t k, float *y)
{
    const struct ggml_type_info *ti = ggml_type_get(t);
    for (int64_t i = 0; i < k; i++) {
        if (t == GGML_TYPE_F32)
            y[i] = ((const float *)row)[i];
        else if (t == GGML_TYPE_F16)
            y[i] = fp16_to_fp32(((const ggml_fp16_t *)row)[i]);
        else if (t == GGML_TYPE_BF16)
            y[i] = bf16_to_fp32(((const ggml_bf16_t *)row)[i]);
    }
    if (t == GGML_TYPE_F32 || t == GGML_TYPE_F16 || t == GGML_TYPE_BF16)
        return;
    for (int64_t b = 0; b < k / ti->blck_size; b++)
        ref_dequant_block(t, (const char *)row + b * ti->type_size, y + b * ti->blck_size);
}

/* Random weights: random bits, then sane fp16 scales. */
static void *make_weights(enum ggml_type t, int64_t n, int64_t k)
{
    const struct ggml_type_info *ti = ggml_type_get(t);
    size_t rb = ggml_row_size(t, (uint64_t)k);
    uint8_t *w = malloc(rb * (size_t)n);
    assert_non_null(w);
    for (size_t i = 0; i < rb * (size_t)n; i++)
        w[i] = (uint8_t)rnd_u32();
    int64_t nblk = n * (k / ti->blck_size);
    for (int64_t b = 0; b < nblk; b++) {
        void *blk = w + b * ti->type_size;
        ggml_fp16_t d = fp32_to_fp16(rnd_f(0.002f, 0.02f));
        ggml_fp16_t m = fp32_to_fp16(rnd_f(-0.05f, 0.05f));
        switch (t) {
        case GGML_TYPE_F32:
            ((float *)w)[b] = rnd_f(-1.0f, 1.0f);
            break;
        case GGML_TYPE_F16:
            ((ggml_fp16_t *)w)[b] = fp32_to_fp16(rnd_f(-1.0f, 1.0f));
            break;
        case GGML_TYPE_BF16:
            ((ggml_bf16_t *)w)[b] = fp32_to_bf16(rnd_f(-1.0f, 1.0f));
            break;
        case GGML_TYPE_Q4_0:
            ((block_q4_0 *)blk)->d = d;
            break;
        case GGML_TYPE_Q4_1:
            ((block_q4_1 *)blk)->d = d;
            ((block_q4_1 *)blk)->m = m;
            break;
        case GGML_TYPE_Q5_0:
            ((block_q5_0 *)blk)->d = d;
            break;
        case GGML_TYPE_Q5_1:
            ((block_q5_1 *)blk)->d = d;
            ((block_q5_1 *)blk)->m = m;
            break;
        case GGML_TYPE_Q8_0:
            ((block_q8_0 *)blk)->d = d;
            break;
        case GGML_TYPE_Q2_K:
            ((block_q2_K *)blk)->d = d;
            ((block_q2_K *)blk)->dmin = d;
            break;
        case GGML_TYPE_Q3_K:
            ((block_q3_K *)blk)->d = d;
            break;
        case GGML_TYPE_Q4_K:
            ((block_q4_K *)blk)->d = d;
            ((block_q4_K *)blk)->dmin = d;
            break;
        case GGML_TYPE_Q5_K:
            ((block_q5_K *)blk)->d = d;
            ((block_q5_K *)blk)->dmin = d;
            break;
        case GGML_TYPE_Q6_K:
            ((block_q6_K *)blk)->d = d;
            break;
        default:
            break;
        }
    }
    return w;
}

static const enum ggml_type all_types[] = {
    GGML_TYPE_F32,  GGML_TYPE_F16,  GGML_TYPE_BF16, GGML_TYPE_Q4_0, GGML_TYPE_Q4_1,
    GGML_TYPE_Q5_0, GGML_TYPE_Q5_1, GGML_TYPE_Q8_0, GGML_TYPE_Q2_K, GGML_TYPE_Q3_K,
    GGML_TYPE_Q4_K, GGML_TYPE_Q5_K, GGML_TYPE_Q6_K,
};

static int is_float_type(enum ggml_type t)
{
    return t == GGML_TYPE_F32 || t == GGML_TYPE_F16 || t == GGML_TYPE_BF16;
}

/*
 * Checks one product shape for type t under the current ISA and pool; with
 * packed, over the matrix packed by kern_pack() (and checks that kern_unpack()
 * gives the rows back).
 */
static void check_matmul_p(struct kern_ctx *kc, enum ggml_type t, int64_t n, int64_t k, int64_t B,
                           int packed)
{
    void *W = make_weights(t, n, k);
    size_t rb = ggml_row_size(t, (uint64_t)k);
    float *x = malloc(sizeof(float) * (size_t)(B * k));
    float *xq = malloc(sizeof(float) * (size_t)(B * k));
    float *dblk = malloc(sizeof(float) * (size_t)(B * k / 32));
    float *y = malloc(sizeof(float) * (size_t)(B * n));
    float *wr = malloc(sizeof(float) * (size_t)k);
    int8_t *q = malloc((size_t)k);
    float *ds = malloc(sizeof(float) * (size_t)k);
    assert_true(x && xq && dblk && y && wr && q && ds);
    for (int64_t i = 0; i < B * k; i++)
        x[i] = rnd_f(-1.0f, 1.0f) * (i % 7 == 0 ? 4.0f : 1.0f);
    for (int64_t b = 0; b < B; b++) {
        kern__quantize_row_ref(x + b * k, k, q, dblk + b * (k / 32), ds, ds + k / 32);
        for (int64_t i = 0; i < k; i++)
            xq[b * k + i] = q[i] * dblk[b * (k / 32) + i / 32];
    }
    for (int64_t i = 0; i < B * n; i++)
        y[i] = NAN;

    if (packed) {
        uint8_t *P = malloc(rb * (size_t)n), *back = malloc(rb * (size_t)n);
        assert_true(P && back);
        assert_int_equal(kern_pack(t, W, n, k, P), 0);
        assert_int_equal(kern_matmul_packed(kc, t, P, n, k, x, B, y), 0);
        assert_int_equal(kern_unpack(t, P, n, k, back), 0);
        assert_memory_equal(back, W, rb * (size_t)n);
        free(P);
        free(back);
    } else {
        assert_int_equal(kern_matmul(kc, t, W, n, k, x, B, y), 0);
    }

    for (int64_t r = 0; r < n; r++) {
        ref_dequant_row(t, (const char *)W + (size_t)r * rb, k, wr);
        for (int64_t b = 0; b < B; b++) {
            double exact = 0, mag = 0, fl = 0, bound = 0;
            for (int64_t i = 0; i < k; i++) {
                exact += (double)wr[i] * xq[b * k + i];
                mag += fabs((double)wr[i] * xq[b * k + i]) + fabs((double)wr[i] * x[b * k + i]);
                fl += (double)wr[i] * x[b * k + i];
                bound += fabs((double)wr[i]) * dblk[b * (k / 32) + i / 32] * 0.5;
            }
            double got = y[b * n + r];
            if (is_float_type(t)) {
                if (fabs(got - fl) > 1e-5 * mag + 1e-6)
                    fail_msg("%s %s n=%lld k=%lld B=%lld row %lld b %lld: got %.7g want %.7g",
                             ggml_type_get(t)->name, kern_isa_name(kern_isa_get()), (long long)n,
                             (long long)k, (long long)B, (long long)r, (long long)b, got, fl);
                continue;
            }
            if (!(fabs(got - exact) <= 2e-5 * mag + 1e-6))
                fail_msg("%s %s n=%lld k=%lld B=%lld row %lld b %lld: got %.7g want %.7g (mag %g)",
                         ggml_type_get(t)->name, kern_isa_name(kern_isa_get()), (long long)n,
                         (long long)k, (long long)B, (long long)r, (long long)b, got, exact, mag);
            assert_true(fabs(got - fl) <= bound * 1.001 + 2e-5 * mag + 1e-6);
        }
    }
    free(W);
    free(x);
    free(xq);
    free(dblk);
    free(y);
    free(wr);
    free(q);
    free(ds);
}

static void check_matmul(struct kern_ctx *kc, enum ggml_type t, int64_t n, int64_t k, int64_t B)
{
    check_matmul_p(kc, t, n, k, B, 0);
}

static void test_matmul_all(void **state)
{
    (void)state;
    static const int64_t batches[] = {1, 2, 3, 4, 5, 7, 8, 17, 130};
    for (int isa = 0; isa <= (int)kern_isa_best(); isa++) {
        assert_int_equal(kern_isa_set((enum kern_isa)isa), 0);
        for (int nth = 1; nth <= 2; nth++) {
            struct tp_pool *tp = tp_new(nth);
            assert_non_null(tp);
            struct kern_ctx *kc = kern_ctx_new(tp);
            assert_non_null(kc);
            for (size_t ti = 0; ti < sizeof(all_types) / sizeof(all_types[0]); ti++) {
                enum ggml_type t = all_types[ti];
                int64_t k = ggml_type_get(t)->blck_size == 256 ? 512 : 320;
                for (size_t bi = 0; bi < sizeof(batches) / sizeof(batches[0]); bi++)
                    check_matmul(kc, t, 37, k, batches[bi]);
                check_matmul(kc, t, 1, k, 2);
                if (t != GGML_TYPE_Q4_0 && t != GGML_TYPE_Q8_0 && t != GGML_TYPE_Q4_K &&
                    t != GGML_TYPE_Q5_0)
                    continue;
                /* packed: 3 tiles; with 3 blocks per row, tiles not 64-byte aligned */
                const int64_t bk = ggml_type_get(t)->blck_size;
                for (size_t bi = 0; bi < sizeof(batches) / sizeof(batches[0]); bi++) {
                    check_matmul_p(kc, t, 48, k, batches[bi], 1);
                    check_matmul_p(kc, t, 48, 3 * bk, batches[bi], 1);
                }
            }
            kern_ctx_free(kc);
            tp_free(tp);
        }
    }
    assert_int_equal(kern_isa_set(kern_isa_best()), 0);
}

/*
 * Weights whose quants are all zero give exactly zero for any activations, at
 * every batch size: the kernels that store them with an offset (Q4_0 as q + 8,
 * Q5_0 as q + 16, Q8_0 as q + 128 in the products, Q6_K as q + 32) must remove
 * it exactly. In float, o * d_x * sum(q_x) against d_x * sum(u * q_x) leaves
 * rounding residue (the direct kernels did, and it flipped later 8-bit
 * roundings in a model).
 */
static void test_matmul_zero_quants(void **state)
{
    (void)state;
    enum { N = 16, K = 512 };
    static const enum ggml_type types[] = {GGML_TYPE_Q4_0, GGML_TYPE_Q5_0, GGML_TYPE_Q8_0,
                                           GGML_TYPE_Q6_K};
    static const int64_t batches[] = {1, 2, 4, 8, 17, 40};
    struct tp_pool *tp = tp_new(2);
    struct kern_ctx *kc = kern_ctx_new(tp);
    assert_non_null(kc);
    float *x = malloc(sizeof(float) * 40 * K), *y = malloc(sizeof(float) * 40 * N);
    assert_true(x && y);
    for (int i = 0; i < 40 * K; i++)
        x[i] = rnd_f(0.1f, 3.0f) * (i % 5 ? 1.0f : -1.0f);
    for (size_t ti = 0; ti < sizeof(types) / sizeof(types[0]); ti++) {
        enum ggml_type t = types[ti];
        size_t rb = ggml_row_size(t, K);
        uint8_t *W = malloc(rb * N), *P = malloc(rb * N);
        assert_true(W && P);
        ggml_fp16_t one = fp32_to_fp16(1.0f);
        for (int r = 0; r < N; r++) {
            uint8_t *row = W + (size_t)r * rb;
            if (t == GGML_TYPE_Q4_0) {
                for (block_q4_0 *b = (block_q4_0 *)row; (uint8_t *)b < row + rb; b++) {
                    b->d = one;
                    memset(b->qs, 0x88, sizeof(b->qs)); /* nibbles 8: q = 0 */
                }
            } else if (t == GGML_TYPE_Q5_0) {
                for (block_q5_0 *b = (block_q5_0 *)row; (uint8_t *)b < row + rb; b++) {
                    b->d = one;
                    memset(b->qh, 0xFF, sizeof(b->qh)); /* fifth bits 1, nibbles 0: q = 0 */
                    memset(b->qs, 0, sizeof(b->qs));
                }
            } else if (t == GGML_TYPE_Q8_0) {
                for (block_q8_0 *b = (block_q8_0 *)row; (uint8_t *)b < row + rb; b++) {
                    b->d = one;
                    memset(b->qs, 0, sizeof(b->qs));
                }
            } else {
                for (block_q6_K *b = (block_q6_K *)row; (uint8_t *)b < row + rb; b++) {
                    b->d = one;
                    memset(b->ql, 0, sizeof(b->ql));
                    memset(b->qh, 0xAA, sizeof(b->qh)); /* high bits 2: u = 32, q = 0 */
                    memset(b->scales, 1, sizeof(b->scales));
                }
            }
        }
        for (int isa = 0; isa <= (int)kern_isa_best(); isa++) {
            assert_int_equal(kern_isa_set((enum kern_isa)isa), 0);
            for (size_t bi = 0; bi < sizeof(batches) / sizeof(batches[0]); bi++) {
                int64_t B = batches[bi];
                /*
                 * Not yet the AVX-512 Q6_K GEMV (B <= 4): it folds -32 * d * sc *
                 * (d_x * sum q_x) into its float accumulator (residue 6e-5 here);
                 * making it exact needs integer activation sums in its layout too.
                 */
                if (t == GGML_TYPE_Q6_K && B <= 4 && isa == KERN_ISA_AVX512)
                    continue;
                for (int packed = 0;
                     packed <= (t == GGML_TYPE_Q4_0 || t == GGML_TYPE_Q8_0 || t == GGML_TYPE_Q4_K);
                     packed++) {
                    if (packed) {
                        assert_int_equal(kern_pack(t, W, N, K, P), 0);
                        assert_int_equal(kern_matmul_packed(kc, t, P, N, K, x, B, y), 0);
                    } else {
                        assert_int_equal(kern_matmul(kc, t, W, N, K, x, B, y), 0);
                    }
                    for (int64_t i = 0; i < B * N; i++)
                        if (y[i] != 0.0f)
                            fail_msg("%s%s %s B=%lld: y[%lld] = %g, want exactly 0",
                                     ggml_type_get(t)->name, packed ? " packed" : "",
                                     kern_isa_name((enum kern_isa)isa), (long long)B, (long long)i,
                                     y[i]);
                }
            }
        }
        assert_int_equal(kern_isa_set(kern_isa_best()), 0);
        free(W);
        free(P);
    }
    free(x);
    free(y);
    kern_ctx_free(kc);
    tp_free(tp);
}

/* A larger shape (panels, many blocks, uneven thread split) on the best ISA. */
static void test_matmul_large(void **state)
{
    (void)state;
    struct tp_pool *tp = tp_new(2);
    struct kern_ctx *kc = kern_ctx_new(tp);
    assert_non_null(kc);
    check_matmul(kc, GGML_TYPE_Q4_0, 67, 2048, 33);
    check_matmul(kc, GGML_TYPE_Q8_0, 67, 2048, 9);
    check_matmul(kc, GGML_TYPE_Q4_K, 35, 2048, 12);
    check_matmul(kc, GGML_TYPE_Q6_K, 35, 1024, 1);
    /* direct kernels up to B = 64 (5 and 8 groups of 8), panels past it */
    check_matmul(kc, GGML_TYPE_Q6_K, 35, 1024, 37);
    check_matmul(kc, GGML_TYPE_Q4_K, 19, 1024, 64);
    check_matmul(kc, GGML_TYPE_Q4_0, 19, 1024, 61);
    check_matmul(kc, GGML_TYPE_Q8_0, 19, 1024, 65);
    check_matmul(kc, GGML_TYPE_Q8_0, 37, 128, 44);
    check_matmul(kc, GGML_TYPE_Q8_0, 300, 256, 44);
    check_matmul(kc, GGML_TYPE_F16, 35, 1040, 7);
    /* Q4_0 tails: 12 blocks (a full group of 4 after 8) and 28 blocks */
    check_matmul(kc, GGML_TYPE_Q4_0, 9, 384, 1);
    check_matmul(kc, GGML_TYPE_Q4_0, 9, 896, 2);
    check_matmul(kc, GGML_TYPE_Q8_0, 9, 896, 1);
    /* Q5_0/Q5_1/Q4_1 GEMVs (1-4 rows): units of 16 blocks, then 1-3 groups of 4, then 0-3 blocks */
    check_matmul(kc, GGML_TYPE_Q5_0, 9, 31 * 32, 3);
    check_matmul(kc, GGML_TYPE_Q5_0, 9, 24 * 32, 2);
    check_matmul(kc, GGML_TYPE_Q5_0, 9, 28 * 32, 4);
    check_matmul(kc, GGML_TYPE_Q5_1, 9, 37 * 32, 4);
    check_matmul(kc, GGML_TYPE_Q5_1, 9, 31 * 32, 1);
    check_matmul(kc, GGML_TYPE_Q5_1, 9, 22 * 32, 2);
    check_matmul(kc, GGML_TYPE_Q4_1, 9, 31 * 32, 4);
    check_matmul(kc, GGML_TYPE_Q4_1, 9, 37 * 32, 1);
    check_matmul(kc, GGML_TYPE_Q4_1, 21, 37 * 32, 9); /* rows in lanes, 2 groups */
    check_matmul(kc, GGML_TYPE_Q3_K, 19, 1024, 11);   /* Q3_K's and Q2_K's GEMVs run up to B = 12 */
    check_matmul(kc, GGML_TYPE_Q2_K, 19, 1024, 12);
    /* float weights blocked over k (with a k tail) and over the batch */
    check_matmul(kc, GGML_TYPE_F16, 9, 1040, 70);
    check_matmul(kc, GGML_TYPE_BF16, 5, 528, 67);
    check_matmul(kc, GGML_TYPE_F32, 37, 300, 66);
    check_matmul(kc, GGML_TYPE_F16, 20, 272, 73);
    /* the smallest batches of the AVX-512 outer-product form: one group of 12 and a part */
    check_matmul(kc, GGML_TYPE_F16, 33, 512, 17);
    check_matmul(kc, GGML_TYPE_F32, 40, 264, 24);
    /* direct small-batch kernels at their largest batch and one past it (panels) */
    check_matmul(kc, GGML_TYPE_Q4_0, 21, 1024, 32);
    check_matmul(kc, GGML_TYPE_Q8_0, 21, 1024, 16);
    check_matmul(kc, GGML_TYPE_Q4_K, 19, 1024, 32);
    check_matmul(kc, GGML_TYPE_Q4_K, 19, 1024, 33);
    /* several batch chunks in the interleaved mode */
    check_matmul(kc, GGML_TYPE_Q5_K, 12, 8192, 40); /* 32 rows per chunk at k = 8192 */
    /* packed Q4_K past one chunk of unpacked scales (16 super-blocks at the AVX2 level) */
    check_matmul_p(kc, GGML_TYPE_Q4_K, 32, 18 * 256, 1, 1);
    check_matmul_p(kc, GGML_TYPE_Q4_K, 32, 18 * 256, 5, 1);
    kern_ctx_free(kc);
    tp_free(tp);
}

/*
 * Q5_0/Q5_1 weights at their largest quant (31) against activations at +-127
 * of one sign per row: the integer partial sums reach their largest size
 * (16 products per half block, 62992), which an int16 step in the reduction
 * would saturate. Every ISA, batches 1 to 8, against the exact product; Q5_0
 * also in kern_pack's form. Q6_K likewise at its largest quant (63, with the
 * scales at 127 and -128): the AVX2 8-row tile adds two pieces' pair sums in
 * int16 (4 * 63 * 127 = 32004) before the scale.
 */
static void test_matmul_int16_extremes(void **state)
{
    (void)state;
    enum { N = 16, KMAX = 5 * 256, BMAX = 8 };
    struct tp_pool *tp = tp_new(2);
    struct kern_ctx *kc = kern_ctx_new(tp);
    assert_non_null(kc);
    float *x = malloc(sizeof(float) * BMAX * KMAX), *y = malloc(sizeof(float) * BMAX * N);
    float *wr = malloc(sizeof(float) * KMAX);
    assert_true(x && y && wr);
    static const enum ggml_type types[] = {GGML_TYPE_Q5_0, GGML_TYPE_Q5_1, GGML_TYPE_Q6_K};
    for (size_t ti = 0; ti < sizeof(types) / sizeof(types[0]); ti++) {
        enum ggml_type t = types[ti];
        const int64_t K = t == GGML_TYPE_Q6_K ? KMAX : 37 * 32;
        for (int b = 0; b < BMAX; b++)
            for (int i = 0; i < K; i++) /* 1.0 quantizes to 127 exactly; one sign per row */
                x[b * K + i] = b % 2 ? -1.0f : 1.0f;
        size_t rb = ggml_row_size(t, K);
        uint8_t *W = malloc(rb * N);
        assert_non_null(W);
        ggml_fp16_t d = fp32_to_fp16(0.25f), m = fp32_to_fp16(-2.0f);
        for (int r = 0; r < N; r++) {
            uint8_t *row = W + (size_t)r * rb;
            for (int bi = 0; t == GGML_TYPE_Q6_K && bi < K / 256; bi++) {
                block_q6_K *b = (block_q6_K *)row + bi;
                b->d = d;
                memset(b->ql, 0xFF, sizeof(b->ql));
                memset(b->qh, 0xFF, sizeof(b->qh));
                for (int j = 0; j < 16; j++)
                    b->scales[j] = (int8_t)((j + r) % 2 ? -128 : 127);
            }
            for (int bi = 0; t != GGML_TYPE_Q6_K && bi < K / 32; bi++) {
                if (t == GGML_TYPE_Q5_0) {
                    block_q5_0 *b = (block_q5_0 *)row + bi;
                    b->d = d;
                    memset(b->qh, 0xFF, sizeof(b->qh));
                    memset(b->qs, 0xFF, sizeof(b->qs));
                } else {
                    block_q5_1 *b = (block_q5_1 *)row + bi;
                    b->d = d;
                    b->m = m;
                    memset(b->qh, 0xFF, sizeof(b->qh));
                    memset(b->qs, 0xFF, sizeof(b->qs));
                }
            }
        }
        ref_dequant_row(t, W, K, wr);
        for (int isa = 0; isa <= (int)kern_isa_best(); isa++) {
            assert_int_equal(kern_isa_set((enum kern_isa)isa), 0);
            for (int64_t B = 1; B <= 2 * BMAX; B++) {
                const int packed = B > BMAX; /* Q5_0 only: kern_pack's form */
                if (packed && t != GGML_TYPE_Q5_0)
                    break;
                if (packed) {
                    uint8_t *P = malloc(rb * N);
                    assert_non_null(P);
                    assert_int_equal(kern_pack(t, W, N, K, P), 0);
                    assert_int_equal(kern_matmul_packed(kc, t, P, N, K, x, B - BMAX, y), 0);
                    free(P);
                } else {
                    assert_int_equal(kern_matmul(kc, t, W, N, K, x, B, y), 0);
                }
                for (int64_t b = 0; b < (packed ? B - BMAX : B); b++) {
                    double want = 0;
                    for (int i = 0; i < K; i++)
                        want += (double)wr[i] * x[b * K + i];
                    for (int r = 0; r < N; r++)
                        if (fabs(y[b * N + r] - want) > 1e-4 * fabs(want) + 1e-3)
                            fail_msg("%s%s %s B=%lld row %d b %lld: got %.7g want %.7g",
                                     ggml_type_get(t)->name, packed ? " packed" : "",
                                     kern_isa_name(kern_isa_get()),
                                     (long long)(packed ? B - BMAX : B), r, (long long)b,
                                     y[b * N + r], want);
                }
            }
        }
        free(W);
    }
    assert_int_equal(kern_isa_set(kern_isa_best()), 0);
    free(x);
    free(y);
    free(wr);
    kern_ctx_free(kc);
    tp_free(tp);
}

static void test_membw(void **state)
{
    (void)state;
    struct tp_pool *tp = tp_new(2);
    double gbs = kern_membw(tp, 4u << 20, 1, 32);
    assert_true(gbs > 0.0 && gbs < 1e5);
    gbs = kern_membw(tp, 4u << 20, 2, 1);
    assert_true(gbs > 0.0 && gbs < 1e5);
    assert_true(kern_membw(NULL, 0, 1, 32) == 0.0);
    tp_free(tp);
}

static void test_matmul_errors(void **state)
{
    (void)state;
    struct kern_ctx *kc = kern_ctx_new(NULL);
    float x[64] = {0}, y[4];
    uint8_t w[256] = {0};
    assert_int_equal(kern_matmul(kc, GGML_TYPE_Q4_0, w, 1, 48, x, 1, y), AS_EINVAL);
    assert_int_equal(kern_matmul(kc, GGML_TYPE_Q4_K, w, 1, 64, x, 1, y), AS_EINVAL);
    assert_int_equal(kern_matmul(kc, GGML_TYPE_Q8_1, w, 1, 32, x, 1, y), AS_EUNSUP);
    assert_int_equal(kern_matmul(kc, GGML_TYPE_I32, w, 1, 32, x, 1, y), AS_EUNSUP);
    assert_int_equal(kern_matmul(NULL, GGML_TYPE_F32, w, 1, 32, x, 1, y), AS_EINVAL);
    assert_int_equal(kern_matmul(kc, GGML_TYPE_F32, w, 0, 32, x, 1, y), 0);
    /* packed: whole tiles of 16 rows, types with a packed form, whole blocks */
    static uint8_t pw[16 * 34], pp[16 * 34];
    assert_int_equal(kern_pack(GGML_TYPE_Q4_0, pw, 8, 32, pp), AS_EINVAL);
    assert_int_equal(kern_pack(GGML_TYPE_Q4_0, pw, 16, 48, pp), AS_EINVAL);
    assert_int_equal(kern_pack(GGML_TYPE_Q6_K, pw, 16, 256, pp), AS_EUNSUP);
    assert_int_equal(kern_pack(GGML_TYPE_Q4_0, NULL, 16, 32, pp), AS_EINVAL);
    assert_int_equal(kern_unpack(GGML_TYPE_Q8_0, pp, 17, 32, pw), AS_EINVAL);
    assert_int_equal(kern_pack(GGML_TYPE_Q8_0, pw, 16, 32, pp), 0);
    assert_int_equal(kern_matmul_packed(kc, GGML_TYPE_Q8_0, pp, 8, 32, x, 1, y), AS_EINVAL);
    assert_int_equal(kern_matmul_packed(kc, GGML_TYPE_Q8_0, pp, 16, 48, x, 1, y), AS_EINVAL);
    assert_int_equal(kern_matmul_packed(kc, GGML_TYPE_Q6_K, pp, 16, 256, x, 1, y), AS_EUNSUP);
    assert_false(kern_pack_supported(GGML_TYPE_Q6_K));
    /* Q4_K is packed for the AVX2 kernels only (AVX-512 reads its GGUF form in lanes) */
    assert_int_equal(kern_pack_supported(GGML_TYPE_Q4_K), kern_isa_get() == KERN_ISA_AVX2);
    assert_int_equal(kern_isa_set((enum kern_isa)7), AS_EUNSUP);
    kern_ctx_free(kc);
    kern_ctx_free(NULL);
}

/* ---- helpers --------------------------------------------------------------- */

static void test_helpers(void **state)
{
    (void)state;
    enum { N = 203 };
    float a[N], b[N], c[N], o[N], r[N];
    ggml_fp16_t h[N];
    for (int isa = 0; isa <= (int)kern_isa_best(); isa++) {
        assert_int_equal(kern_isa_set((enum kern_isa)isa), 0);
        for (int i = 0; i < N; i++) {
            a[i] = rnd_f(-3, 3);
            b[i] = rnd_f(-3, 3);
            c[i] = rnd_f(0.5f, 1.5f);
        }
        /* rmsnorm */
        double ss = 0;
        for (int i = 0; i < N; i++)
            ss += (double)a[i] * a[i];
        double inv = 1.0 / sqrt(ss / N + 1e-5);
        kern_rmsnorm(o, a, c, N, 1e-5f);
        for (int i = 0; i < N; i++)
            assert_float_equal(o[i], a[i] * inv * c[i], 1e-5 * (1 + fabs(a[i] * inv * c[i])));
        /* softmax */
        memcpy(o, a, sizeof(a));
        o[5] = -INFINITY;
        kern_softmax(o, N);
        double mx = -1e30, sum = 0;
        for (int i = 0; i < N; i++)
            if (i != 5 && a[i] > mx)
                mx = a[i];
        for (int i = 0; i < N; i++)
            sum += i == 5 ? 0 : exp(a[i] - mx);
        for (int i = 0; i < N; i++) {
            double want = i == 5 ? 0 : exp(a[i] - mx) / sum;
            assert_float_equal(o[i], want, 1e-6 + 1e-5 * want);
        }
        /* argmax: the first largest, NaN never counts, every length and position */
        for (int n = 0; n <= 40; n++)
            for (int at = 0; at < n; at++) {
                for (int i = 0; i < n; i++)
                    o[i] = (float)(i % 5) - 10.0f;
                o[at] = 5.0f;
                if (at + 3 < n)
                    o[at + 3] = 5.0f; /* a tie after it: still at */
                if (at > 0)
                    o[at - 1] = NAN;
                assert_int_equal(kern_argmax(o, n), at);
            }
        assert_int_equal(kern_argmax(a, 0), 0);
        int64_t want_i = 0;
        for (int i = 1; i < N; i++)
            if (a[i] > a[want_i])
                want_i = i;
        assert_int_equal(kern_argmax(a, N), want_i);
        for (int i = 0; i < N; i++)
            o[i] = NAN;
        assert_int_equal(kern_argmax(o, N), 0);
        o[N - 1] = -INFINITY; /* the only number: found even at -inf */
        assert_int_equal(kern_argmax(o, N), N - 1);
        /* swiglu */
        kern_swiglu(o, a, b, N);
        for (int i = 0; i < N; i++) {
            double want = a[i] / (1 + exp(-a[i])) * b[i];
            assert_float_equal(o[i], want, 1e-5 * (1 + fabs(want)));
        }
        /* add, scale, axpy, dot */
        memcpy(o, a, sizeof(a));
        kern_add(o, b, N);
        for (int i = 0; i < N; i++)
            assert_float_equal(o[i], a[i] + b[i], 1e-6);
        kern_scale(o, 0.5f, N);
        for (int i = 0; i < N; i++)
            assert_float_equal(o[i], (a[i] + b[i]) * 0.5f, 1e-6);
        memcpy(o, a, sizeof(a));
        kern_axpy(o, 0.25f, b, N);
        for (int i = 0; i < N; i++)
            assert_float_equal(o[i], a[i] + 0.25f * b[i], 1e-6);
        double dot = 0;
        for (int i = 0; i < N; i++)
            dot += (double)a[i] * b[i];
        assert_float_equal(kern_dot(a, b, N), dot, 1e-4);
        /* f16 conversions: exact against fp16.h, NaN/inf/subnormals included */
        a[0] = 1e-7f;
        a[1] = 70000.0f;
        a[2] = -INFINITY;
        a[3] = 3.0e-5f;
        kern_f32_to_f16(h, a, N);
        for (int i = 0; i < N; i++)
            assert_int_equal(h[i], fp32_to_fp16(a[i]));
        kern_f16_to_f32(r, h, N);
        for (int i = 0; i < N; i++)
            assert_true(r[i] == fp16_to_fp32(h[i]));
        kern_f32_to_f16(h, b, N);
        dot = 0;
        for (int i = 0; i < N; i++)
            dot += (double)fp16_to_fp32(h[i]) * c[i];
        assert_float_equal(kern_dot_f16_f32(h, c, N), dot, 1e-4);
        memcpy(o, c, sizeof(c));
        kern_axpy_f16(o, -0.5f, h, N);
        for (int i = 0; i < N; i++)
            assert_float_equal(o[i], c[i] - 0.5f * fp16_to_fp32(h[i]), 1e-6);
    }
    assert_int_equal(kern_isa_set(kern_isa_best()), 0);
}

static void test_rope(void **state)
{
    (void)state;
    enum { HD = 16, NH = 3, NROT = 12 };
    float x[NH * HD], v[NH * HD], cs[NROT / 2], sn[NROT / 2];
    for (int i = 0; i < NROT / 2; i++) {
        double th = 7 * pow(10000.0, -2.0 * i / NROT);
        cs[i] = (float)cos(th);
        sn[i] = (float)sin(th);
    }
    for (int neox = 0; neox <= 1; neox++) {
        for (int i = 0; i < NH * HD; i++)
            x[i] = v[i] = rnd_f(-1, 1);
        kern_rope(x, NH, HD, NROT, cs, sn, neox);
        for (int h = 0; h < NH; h++) {
            for (int i = 0; i < NROT / 2; i++) {
                int i0 = neox ? i : 2 * i, i1 = neox ? i + NROT / 2 : 2 * i + 1;
                float a = v[h * HD + i0], b = v[h * HD + i1];
                assert_float_equal(x[h * HD + i0], a * cs[i] - b * sn[i], 1e-6);
                assert_float_equal(x[h * HD + i1], a * sn[i] + b * cs[i], 1e-6);
            }
            for (int i = NROT; i < HD; i++) /* not rotated */
                assert_true(x[h * HD + i] == v[h * HD + i]);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matmul_all),
        cmocka_unit_test(test_matmul_large),
        cmocka_unit_test(test_matmul_zero_quants),
        cmocka_unit_test(test_matmul_int16_extremes),
        cmocka_unit_test(test_matmul_errors),
        cmocka_unit_test(test_helpers),
        cmocka_unit_test(test_rope),
        cmocka_unit_test(test_membw),
    };
    printf("best ISA: %s\n", kern_isa_name(kern_isa_best()));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
