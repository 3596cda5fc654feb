/*
 * test_model_kvcache.c - KV cache: slots, growth, the memory budget (all or
 * nothing), truncation, shared prefixes with copy on write, usage figures.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/err.h"
#include "engine/ggml_types.h"
#include "engine/kvcache.h"

#define KVD 8

static struct kv_cache *mk(uint32_t tokens, uint32_t seqs, uint32_t ctx, uint32_t type)
{
    char err[128];
    struct kv_cache_config c = {.n_layer = 2,
                                .kv_dim = KVD,
                                .type = type,
                                .budget_tokens = tokens,
                                .max_seqs = seqs,
                                .max_seq_tokens = ctx};
    struct kv_cache *kv = kv_cache_new(&c, err, sizeof err);
    assert_non_null(kv);
    return kv;
}

/* writes a value identifying (layer, pos, tag) into every element of the row */
static void fill(struct kv_cache *kv, int seq, uint32_t pos, float tag)
{
    for (uint32_t il = 0; il < 2; il++) {
        float *k = kv_k_row(kv, il, seq, pos), *v = kv_v_row(kv, il, seq, pos);
        assert_non_null(k);
        assert_non_null(v);
        for (int i = 0; i < KVD; i++) {
            k[i] = tag + (float)pos + 1000.0f * (float)il;
            v[i] = -k[i];
        }
    }
}

static int holds(struct kv_cache *kv, int seq, uint32_t pos, float tag)
{
    for (uint32_t il = 0; il < 2; il++) {
        const float *k = kv_k_row(kv, il, seq, pos), *v = kv_v_row(kv, il, seq, pos);
        if (!k || !v)
            return 0;
        float want = tag + (float)pos + 1000.0f * (float)il;
        for (int i = 0; i < KVD; i++)
            if (k[i] != want || v[i] != -want)
                return 0;
    }
    return 1;
}

static void test_config(void **state)
{
    (void)state;
    char err[128];
    struct kv_cache_config c = {.n_layer = 2,
                                .kv_dim = KVD,
                                .type = GGML_TYPE_F16,
                                .budget_tokens = 10,
                                .max_seqs = 1,
                                .max_seq_tokens = 64};
    assert_null(kv_cache_new(&c, err, sizeof err)); /* below one block */
    assert_non_null(strstr(err, "budget"));
    c.budget_tokens = 64;
    c.type = GGML_TYPE_Q4_0;
    assert_null(kv_cache_new(&c, err, sizeof err));
    c.type = GGML_TYPE_F16;
    c.max_seqs = 0;
    assert_null(kv_cache_new(&c, err, sizeof err));
    /* a byte budget: 2 layers * 2 * 8 * 2 bytes = 64 bytes per token */
    c.max_seqs = 1;
    c.budget_tokens = 0;
    c.budget_bytes = 64 * 100;
    struct kv_cache *kv = kv_cache_new(&c, err, sizeof err);
    assert_non_null(kv);
    assert_int_equal(kv_cache_bytes_per_token(kv), 64);
    struct kv_cache_usage u;
    kv_cache_usage(kv, &u);
    assert_int_equal(u.tokens_total, 96); /* 3 whole blocks of 32 */
    assert_int_equal(u.blocks_total, 3);
    assert_int_equal(u.bytes_total, 96 * 64);
    kv_cache_free(kv);
    kv_cache_free(NULL);
}

static void test_slots_and_growth(void **state)
{
    (void)state;
    struct kv_cache *kv = mk(4 * KV_BLOCK_TOKENS, 2, 100, GGML_TYPE_F32);
    int a = kv_seq_alloc(kv), b = kv_seq_alloc(kv);
    assert_true(a >= 0 && b >= 0 && a != b);
    assert_int_equal(kv_seq_alloc(kv), AS_EAGAIN);
    assert_int_equal(kv_seq_len(kv, a), 0);
    assert_int_equal(kv_seq_append(kv, a, 40), 0);
    assert_int_equal(kv_seq_len(kv, a), 40);
    for (uint32_t p = 0; p < 40; p++)
        fill(kv, a, p, 0.5f);
    assert_null(kv_k_row(kv, 0, a, 40)); /* past the end */
    assert_null(kv_k_row(kv, 2, a, 0));  /* no such layer */
    /* max_seq_tokens */
    assert_int_equal(kv_seq_append(kv, a, 61), AS_ERANGE);
    assert_int_equal(kv_seq_len(kv, a), 40);
    /* pool: a holds 2 blocks; b may take 2 more, not 3 */
    assert_int_equal(kv_seq_blocks_needed(kv, b, 65), 3);
    assert_int_equal(kv_seq_append(kv, b, 65), AS_EAGAIN);
    assert_int_equal(kv_seq_len(kv, b), 0);
    assert_int_equal(kv_seq_append(kv, b, 64), 0);
    assert_int_equal(kv_cache_blocks_free(kv), 0);
    /* truncation frees whole blocks only */
    assert_int_equal(kv_seq_truncate(kv, a, 33), 0);
    assert_int_equal(kv_cache_blocks_free(kv), 0);
    assert_int_equal(kv_seq_truncate(kv, a, 32), 0);
    assert_int_equal(kv_cache_blocks_free(kv), 1);
    for (uint32_t p = 0; p < 32; p++)
        assert_true(holds(kv, a, p, 0.5f));
    kv_seq_free(kv, b);
    assert_int_equal(kv_cache_blocks_free(kv), 3);
    assert_false(kv_seq_active(kv, b));
    assert_int_equal(kv_seq_append(kv, b, 1), AS_EINVAL);
    assert_int_equal(kv_seq_truncate(kv, 99, 0), AS_EINVAL);
    kv_seq_free(kv, 99); /* ignored */
    struct kv_cache_usage u;
    kv_cache_usage(kv, &u);
    assert_int_equal(u.seqs_active, 1);
    assert_int_equal(u.blocks_used, 1);
    kv_cache_free(kv);
}

static void test_shared_prefix(void **state)
{
    (void)state;
    struct kv_cache *kv = mk(8 * KV_BLOCK_TOKENS, 3, 256, GGML_TYPE_F32);
    int src = kv_seq_alloc(kv), dst = kv_seq_alloc(kv), dst2 = kv_seq_alloc(kv);
    assert_int_equal(kv_seq_append(kv, src, 70), 0); /* 3 blocks, the last partial */
    for (uint32_t p = 0; p < 70; p++)
        fill(kv, src, p, 0.25f);
    assert_int_equal(kv_seq_copy_prefix(kv, dst, src, 71), AS_EINVAL);
    assert_int_equal(kv_seq_copy_prefix(kv, src, src, 10), AS_EINVAL);
    assert_int_equal(kv_seq_copy_prefix(kv, dst, src, 50), 0);
    assert_int_equal(kv_seq_len(kv, dst), 50);
    assert_int_equal(kv_cache_blocks_free(kv), 5); /* nothing copied */
    for (uint32_t p = 0; p < 50; p++)
        assert_true(holds(kv, dst, p, 0.25f));
    /* dst writes into the shared partial block: it gets its own copy */
    assert_int_equal(kv_seq_blocks_needed(kv, dst, 1), 1);
    assert_int_equal(kv_seq_append(kv, dst, 1), 0);
    assert_int_equal(kv_cache_blocks_free(kv), 4);
    fill(kv, dst, 50, 7.0f);
    for (uint32_t p = 0; p < 50; p++)
        assert_true(holds(kv, dst, p, 0.25f));
    assert_true(holds(kv, src, 50, 0.25f)); /* src unchanged */
    /* a block-aligned prefix shares whole blocks and needs no copy to grow */
    assert_int_equal(kv_seq_copy_prefix(kv, dst2, src, 64), 0);
    assert_int_equal(kv_seq_blocks_needed(kv, dst2, 1), 1);
    assert_int_equal(kv_seq_append(kv, dst2, 1), 0);
    assert_int_equal(kv_cache_blocks_free(kv), 3);
    /* freeing the source keeps shared blocks alive for the others */
    kv_seq_free(kv, src);
    for (uint32_t p = 0; p < 64; p++)
        assert_true(holds(kv, dst2, p, 0.25f));
    for (uint32_t p = 0; p < 50; p++)
        assert_true(holds(kv, dst, p, 0.25f));
    assert_true(holds(kv, dst, 50, 7.0f));
    /* copy over a sequence that held data drops its old blocks */
    assert_int_equal(kv_seq_copy_prefix(kv, dst, dst2, 10), 0);
    assert_int_equal(kv_seq_len(kv, dst), 10);
    kv_seq_free(kv, dst);
    kv_seq_free(kv, dst2);
    assert_int_equal(kv_cache_blocks_free(kv), 8);
    kv_cache_free(kv);
}

static void test_f16_rows(void **state)
{
    (void)state;
    struct kv_cache *kv = mk(KV_BLOCK_TOKENS, 1, 32, GGML_TYPE_F16);
    int s = kv_seq_alloc(kv);
    assert_int_equal(kv_seq_append(kv, s, 32), 0);
    uint16_t *r0 = kv_k_row(kv, 1, s, 0), *r1 = kv_k_row(kv, 1, s, 1);
    assert_ptr_equal((uint8_t *)r1 - (uint8_t *)r0, KVD * 2);
    const uint32_t *blocks = kv_seq_blocks(kv, s);
    assert_ptr_equal(kv_block_k(kv, 1, blocks[0]), r0);
    assert_int_equal(kv_seq_append(kv, s, 1), AS_ERANGE);
    kv_cache_free(kv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config),
        cmocka_unit_test(test_slots_and_growth),
        cmocka_unit_test(test_shared_prefix),
        cmocka_unit_test(test_f16_rows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
