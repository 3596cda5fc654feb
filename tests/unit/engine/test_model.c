/*
 * test_model.c - the model API around the forward pass: load errors (an
 * unsupported architecture is named, missing tensors, wrong shapes), batch
 * validation that leaves the KV cache untouched, a shared prompt prefix giving
 * the same logits as recomputing it, KV budget exhaustion (AS_EAGAIN) and
 * embeddings. Numerical agreement with an independent reference is
 * tests/ref/test_logits.sh; here the engine is checked against itself.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/err.h"
#include "engine/ggml_types.h"
#include "engine/gguf.h"
#include "engine/kernels.h"
#include "engine/kvcache.h"
#include "engine/model.h"
#include "engine/quant.h"

#define D    32
#define FF   64
#define NH   4
#define NKV  2
#define HD   (D / NH)
#define NV   50
#define NL   2
#define NCTX 128

static char path_ok[64], path_tmp[64];
static float *blob; /* random weights, enough for every tensor */

static uint64_t rng_state = 88172645463325252ull;
static float frand(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((double)(rng_state >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

enum variant { V_OK, V_ARCH, V_MISSING, V_SHAPE, V_ROPE };

/* The layers' matrices in this type (test_packed); norms and token_embd stay F32. */
static enum ggml_type g_mat_type = GGML_TYPE_F32;
static void *g_qbufs[8 * NL];
static int g_nq;

static void add2(struct gguf_writer *w, const char *name, uint64_t n0, uint64_t n1, size_t *off)
{
    uint64_t ne[2] = {n0, n1};
    const void *data = blob + *off;
    enum ggml_type t = GGML_TYPE_F32;
    if (g_mat_type != GGML_TYPE_F32 && n1 > 1 && strstr(name, "blk.")) {
        size_t rb = ggml_row_size(g_mat_type, n0);
        uint8_t *q = malloc(rb * n1);
        assert_non_null(q);
        for (uint64_t r = 0; r < n1; r++)
            assert_int_equal(
                quant_quantize_row(g_mat_type, blob + *off + r * n0, q + r * rb, (int64_t)n0), 0);
        g_qbufs[g_nq++] = q;
        data = q;
        t = g_mat_type;
    }
    assert_int_equal(gguf_writer_add_tensor(w, name, t, n1 > 1 ? 2 : 1, ne, data), 0);
    *off += n0 * n1;
}

static void write_model(const char *path, enum variant v)
{
    struct gguf_writer *w = gguf_writer_new();
    assert_non_null(w);
    const char *arch = v == V_ARCH ? "gpt-j" : "llama";
    char k[96];
    gguf_writer_set_str(w, "general.architecture", arch);
#define SETU(key, val)                                                                             \
    snprintf(k, sizeof k, "%s." key, arch);                                                        \
    gguf_writer_set_u32(w, k, val)
    SETU("context_length", NCTX);
    SETU("embedding_length", D);
    SETU("block_count", NL);
    SETU("feed_forward_length", FF);
    SETU("attention.head_count", NH);
    SETU("attention.head_count_kv", NKV);
#undef SETU
    if (v == V_ROPE) {
        snprintf(k, sizeof k, "%s.rope.scaling.type", arch);
        gguf_writer_set_str(w, k, "yarn");
    }
    size_t off = 0;
    add2(w, "token_embd.weight", D, NV, &off);
    add2(w, "output_norm.weight", D, 1, &off);
    for (int il = 0; il < NL; il++) {
        char n[64];
#define T(sfx, a, b)                                                                               \
    snprintf(n, sizeof n, "blk.%d." sfx, il);                                                      \
    add2(w, n, a, b, &off)
        T("attn_norm.weight", D, 1);
        T("ffn_norm.weight", D, 1);
        T("attn_q.weight", D, D);
        T("attn_k.weight", D, v == V_SHAPE ? D : HD * NKV);
        T("attn_v.weight", D, HD * NKV);
        T("attn_output.weight", D, D);
        T("ffn_gate.weight", D, FF);
        T("ffn_up.weight", D, FF);
        if (!(v == V_MISSING && il == 1)) {
            T("ffn_down.weight", FF, D);
        }
#undef T
    }
    assert_int_equal(gguf_writer_write(w, path), 0);
    gguf_writer_free(w);
    while (g_nq > 0)
        free(g_qbufs[--g_nq]);
}

static int setup(void **state)
{
    (void)state;
    size_t n = (size_t)NV * D * 2 + (size_t)NL * (4 * D * D + 3 * D * FF + 2 * D) + D + 4096;
    blob = malloc(n * sizeof *blob);
    for (size_t i = 0; i < n; i++)
        blob[i] = frand() * 0.5f + 0.02f;
    /* norms near 1 keep activations tame */
    snprintf(path_ok, sizeof path_ok, "/tmp/test_model_%d.gguf", (int)getpid());
    snprintf(path_tmp, sizeof path_tmp, "/tmp/test_model_%d_b.gguf", (int)getpid());
    write_model(path_ok, V_OK);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unlink(path_ok);
    unlink(path_tmp);
    free(blob);
    return 0;
}

static void test_load_errors(void **state)
{
    (void)state;
    char err[256];
    write_model(path_tmp, V_ARCH);
    assert_null(model_load(path_tmp, NULL, err, sizeof err));
    assert_non_null(strstr(err, "unsupported architecture 'gpt-j'"));
    write_model(path_tmp, V_MISSING);
    assert_null(model_load(path_tmp, NULL, err, sizeof err));
    assert_non_null(strstr(err, "blk.1.ffn_down.weight"));
    write_model(path_tmp, V_SHAPE);
    assert_null(model_load(path_tmp, NULL, err, sizeof err));
    assert_non_null(strstr(err, "blk.0.attn_k.weight"));
    write_model(path_tmp, V_ROPE);
    assert_null(model_load(path_tmp, NULL, err, sizeof err));
    assert_non_null(strstr(err, "yarn"));
    assert_null(model_load("/nonexistent.gguf", NULL, err, sizeof err));

    struct model_params mp = {.n_ctx_max = 64};
    struct model *m = model_load(path_ok, &mp, err, sizeof err);
    assert_non_null(m);
    const struct model_hparams *hp = model_get_hparams(m);
    assert_int_equal(hp->n_vocab, NV);
    assert_int_equal(hp->head_dim, HD);
    assert_int_equal(hp->n_head_kv, NKV);
    assert_int_equal(hp->rope_type, MODEL_ROPE_NORMAL);
    assert_true(hp->tied_output);
    assert_int_equal(model_n_ctx(m), 64);
    assert_true(model_weight_bytes(m) > 0);
    model_free(m);
    model_free(NULL);
}

static struct model_ctx *mkctx(struct model *m, uint32_t seqs, uint32_t kv_tokens)
{
    char err[256];
    struct model_ctx_params cp = {.n_threads = 2,
                                  .max_batch = 64,
                                  .max_seqs = seqs,
                                  .max_logits = 64,
                                  .kv_budget_tokens = kv_tokens,
                                  .kv_f32 = 1};
    struct model_ctx *ctx = model_ctx_new(m, &cp, err, sizeof err);
    assert_non_null(ctx);
    return ctx;
}

static void test_batch_validation(void **state)
{
    (void)state;
    char err[256];
    struct model *m = model_load(path_ok, NULL, err, sizeof err);
    struct model_ctx *ctx = mkctx(m, 2, 0);
    struct kv_cache *kv = model_ctx_kv(ctx);
    struct model_batch b;
    assert_int_equal(model_batch_init(&b, 4), 0);
    int s = kv_seq_alloc(kv);
    assert_int_equal(model_batch_add(&b, 1, s, 0, 1), 0);
    assert_int_equal(model_batch_add(&b, 2, s, 2, 1), 0); /* gap in positions */
    assert_int_equal(model_forward(ctx, &b), AS_EINVAL);
    assert_int_equal(kv_seq_len(kv, s), 0);
    model_batch_clear(&b);
    model_batch_add(&b, NV, s, 0, 1); /* token out of range */
    assert_int_equal(model_forward(ctx, &b), AS_EINVAL);
    model_batch_clear(&b);
    model_batch_add(&b, 1, 1, 0, 1); /* sequence not allocated */
    assert_int_equal(model_forward(ctx, &b), AS_EINVAL);
    model_batch_clear(&b);
    assert_int_equal(model_forward(ctx, &b), AS_EINVAL); /* empty */
    model_batch_add(&b, 1, s, 0, 0);
    model_batch_add(&b, 2, s, 1, 1);
    assert_int_equal(model_forward(ctx, &b), 0);
    assert_null(model_logits(ctx, 0));
    assert_non_null(model_logits(ctx, 1));
    assert_null(model_logits(ctx, 2));
    assert_int_equal(kv_seq_len(kv, s), 2);
    assert_int_equal(model_batch_add(&b, 3, s, 2, 1), 0);
    assert_int_equal(model_batch_add(&b, 3, s, 3, 1), 0);
    assert_int_equal(model_batch_add(&b, 3, s, 4, 1), AS_ERANGE); /* batch full */
    model_batch_free(&b);
    model_ctx_free(ctx);
    model_free(m);
}

static void run(struct model_ctx *ctx, int seq, const int32_t *t, uint32_t n, uint32_t pos0,
                float *last)
{
    struct model_batch b;
    assert_int_equal(model_batch_init(&b, n), 0);
    for (uint32_t i = 0; i < n; i++)
        model_batch_add(&b, t[i], seq, pos0 + i, i == n - 1);
    assert_int_equal(model_forward(ctx, &b), 0);
    memcpy(last, model_logits(ctx, n - 1), NV * sizeof(float));
    model_batch_free(&b);
}

static void test_prefix_sharing(void **state)
{
    (void)state;
    char err[256];
    struct model *m = model_load(path_ok, NULL, err, sizeof err);
    struct model_ctx *ctx = mkctx(m, 3, 0);
    struct kv_cache *kv = model_ctx_kv(ctx);
    int32_t t[60];
    for (int i = 0; i < 60; i++)
        t[i] = (int32_t)((i * 7 + 3) % NV);
    float full[NV], shared[NV], again[NV];
    /* reference: a fresh sequence over all 45 tokens */
    int a = kv_seq_alloc(kv);
    run(ctx, a, t, 45, 0, full);
    /* a second sequence takes 40 positions of the first, then its own 5 tokens */
    int b = kv_seq_alloc(kv);
    assert_int_equal(kv_seq_copy_prefix(kv, b, a, 40), 0);
    run(ctx, b, t + 40, 5, 40, shared);
    for (int i = 0; i < NV; i++)
        assert_true(fabsf(shared[i] - full[i]) <= 1e-5f * (1 + fabsf(full[i])));
    /* truncating and recomputing reproduces it; diverging does not disturb a */
    assert_int_equal(kv_seq_truncate(kv, b, 42), 0);
    int32_t other[3] = {5, 6, 7};
    run(ctx, b, other, 3, 42, again);
    assert_int_equal(kv_seq_truncate(kv, b, 42), 0);
    run(ctx, b, t + 42, 3, 42, again);
    for (int i = 0; i < NV; i++)
        assert_true(fabsf(again[i] - full[i]) <= 1e-5f * (1 + fabsf(full[i])));
    run(ctx, a, t + 45, 1, 45, again);
    int c = kv_seq_alloc(kv);
    run(ctx, c, t, 46, 0, full);
    for (int i = 0; i < NV; i++)
        assert_true(fabsf(again[i] - full[i]) <= 1e-5f * (1 + fabsf(full[i])));
    model_ctx_free(ctx);
    model_free(m);
}

static void test_kv_budget(void **state)
{
    (void)state;
    char err[256];
    struct model *m = model_load(path_ok, NULL, err, sizeof err);
    struct model_ctx *ctx = mkctx(m, 2, 2 * KV_BLOCK_TOKENS);
    struct kv_cache *kv = model_ctx_kv(ctx);
    int32_t t[64] = {0};
    float l[NV];
    int a = kv_seq_alloc(kv), b = kv_seq_alloc(kv);
    run(ctx, a, t, 40, 0, l); /* two blocks: the whole budget */
    struct model_batch bt;
    model_batch_init(&bt, 2);
    model_batch_add(&bt, 1, a, 40, 1);
    model_batch_add(&bt, 1, b, 0, 1);
    assert_int_equal(model_forward(ctx, &bt), AS_EAGAIN);
    assert_int_equal(kv_seq_len(kv, a), 40); /* rolled back */
    assert_int_equal(kv_seq_len(kv, b), 0);
    kv_seq_truncate(kv, a, 31); /* a keeps one block, b can take the other */
    assert_int_equal(model_forward(ctx, &bt), AS_EINVAL); /* a's next position is 31 now */
    bt.t[0].pos = 31;
    assert_int_equal(model_forward(ctx, &bt), 0);
    model_batch_free(&bt);
    model_ctx_free(ctx);
    model_free(m);
}

static void test_default_budget(void **state)
{
    (void)state;
    char err[256];
    struct model *m = model_load(path_ok, NULL, err, sizeof err);
    /* 33 positions take two blocks: three full sequences need six */
    struct model_ctx_params cp = {.max_batch = 33, .max_seqs = 3, .n_ctx = 33};
    struct model_ctx *ctx = model_ctx_new(m, &cp, err, sizeof err);
    assert_non_null(ctx);
    struct kv_cache *kv = model_ctx_kv(ctx);
    int32_t t[33] = {0};
    float l[NV];
    for (int i = 0; i < 3; i++)
        run(ctx, kv_seq_alloc(kv), t, 33, 0, l);
    struct kv_cache_usage u;
    kv_cache_usage(kv, &u);
    assert_int_equal(u.blocks_used, 6);
    model_ctx_free(ctx);
    model_free(m);
}

static void test_embed(void **state)
{
    (void)state;
    char err[256];
    struct model *m = model_load(path_ok, NULL, err, sizeof err);
    struct model_ctx *ctx = mkctx(m, 1, 0);
    int32_t t[100];
    for (int i = 0; i < 100; i++)
        t[i] = (int32_t)((i * 13 + 1) % NV);
    float e1[D], e2[D];
    /* 100 tokens go through in chunks of max_batch (64) */
    assert_int_equal(model_embed(ctx, t, 100, e1), 0);
    double n2 = 0;
    for (int i = 0; i < D; i++)
        n2 += (double)e1[i] * e1[i];
    assert_true(fabs(n2 - 1) < 1e-5);
    /* the same as averaging model_hidden() over one forward pass */
    struct kv_cache *kv = model_ctx_kv(ctx);
    int s = kv_seq_alloc(kv);
    struct model_batch b;
    model_batch_init(&b, 64);
    double acc[D] = {0};
    for (int c = 0; c < 100; c += 50) {
        model_batch_clear(&b);
        for (int i = 0; i < 50; i++)
            model_batch_add(&b, t[c + i], s, (uint32_t)(c + i), 1);
        assert_int_equal(model_forward(ctx, &b), 0);
        for (int i = 0; i < 50; i++)
            for (int j = 0; j < D; j++)
                acc[j] += model_hidden(ctx, (uint32_t)i)[j];
    }
    n2 = 0;
    for (int j = 0; j < D; j++)
        n2 += acc[j] * acc[j];
    for (int j = 0; j < D; j++)
        e2[j] = (float)(acc[j] / sqrt(n2));
    for (int j = 0; j < D; j++)
        assert_true(fabsf(e1[j] - e2[j]) < 1e-5f);
    assert_int_equal(kv_seq_len(kv, s), 100);
    kv_seq_free(kv, s);
    assert_int_equal(model_embed(ctx, t, 0, e1), AS_EINVAL);
    model_batch_free(&b);
    model_ctx_free(ctx);
    model_free(m);
}

/*
 * Logits of prompts of 7..3 tokens (one forward each), then 2 steps of 5
 * sequences decoding together and one step of the first alone (B = 1).
 */
static void logits_run(struct model *m, float out[4][5][NV])
{
    memset(out, 0, sizeof(float) * 4 * 5 * NV);
    struct model_ctx *ctx = mkctx(m, 5, 0);
    struct kv_cache *kv = model_ctx_kv(ctx);
    int seqs[5];
    int32_t t[7];
    for (int i = 0; i < 7; i++)
        t[i] = (int32_t)((i * 11 + 2) % NV);
    for (int s = 0; s < 5; s++) {
        seqs[s] = kv_seq_alloc(kv);
        run(ctx, seqs[s], t, 7 - (uint32_t)s, 0, out[0][s]);
    }
    struct model_batch b;
    assert_int_equal(model_batch_init(&b, 5), 0);
    for (int step = 1; step < 4; step++) {
        model_batch_clear(&b);
        for (int s = 0; s < (step < 3 ? 5 : 1); s++)
            model_batch_add(&b, (int32_t)((step * 7 + s) % NV), seqs[s], 7 - (uint32_t)s + step - 1,
                            1);
        assert_int_equal(model_forward(ctx, &b), 0);
        for (int s = 0; s < (step < 3 ? 5 : 1); s++)
            memcpy(out[step][s], model_logits(ctx, (uint32_t)s), NV * sizeof(float));
    }
    model_batch_free(&b);
    model_ctx_free(ctx);
}

/*
 * Q4_0 and Q8_0 matrices: model_load() packs them where the kernels have a
 * packed form (not with no_pack or MODEL_LOAD_MMAP, never the tied output),
 * and the logits agree with the unpacked model's (other kernels, other
 * summation order: within 1e-4 of the largest logit) at batches of 1 to 7.
 */
static void test_packed(void **state)
{
    (void)state;
    static const enum ggml_type types[] = {GGML_TYPE_Q4_0, GGML_TYPE_Q8_0};
    static float a[4][5][NV], b[4][5][NV];
    char err[256];
    for (size_t ti = 0; ti < 2; ti++) {
        g_mat_type = types[ti];
        write_model(path_tmp, V_OK);
        g_mat_type = GGML_TYPE_F32;
        struct model_params plain = {.no_pack = 1}, mm = {.load = MODEL_LOAD_MMAP};
        struct model *mp = model_load(path_tmp, NULL, err, sizeof err);
        struct model *mu = model_load(path_tmp, &plain, err, sizeof err);
        struct model *mm_ = model_load(path_tmp, &mm, err, sizeof err);
        assert_true(mp && mu && mm_);
        /* 7 matrices per layer; the output is token_embd (tied) */
        assert_int_equal(model_weights_packed(mp), kern_pack_supported(types[ti]) ? 7 * NL : 0);
        assert_int_equal(model_weights_packed(mu), 0);
        assert_int_equal(model_weights_packed(mm_), 0);
        logits_run(mp, a);
        logits_run(mu, b);
        for (int st = 0; st < 4; st++)
            for (int s = 0; s < 5; s++) {
                double mag = 0;
                for (int i = 0; i < NV; i++)
                    mag = fmax(mag, fabs(b[st][s][i]));
                for (int i = 0; i < NV; i++)
                    if (fabs(a[st][s][i] - b[st][s][i]) > 1e-4 * mag + 1e-6)
                        fail_msg("%s step %d seq %d logit %d: packed %g, unpacked %g",
                                 ggml_type_get(types[ti])->name, st, s, i, a[st][s][i],
                                 b[st][s][i]);
            }
        model_free(mp);
        model_free(mu);
        model_free(mm_);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_errors),    cmocka_unit_test(test_batch_validation),
        cmocka_unit_test(test_prefix_sharing), cmocka_unit_test(test_kv_budget),
        cmocka_unit_test(test_default_budget), cmocka_unit_test(test_embed),
        cmocka_unit_test(test_packed),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
