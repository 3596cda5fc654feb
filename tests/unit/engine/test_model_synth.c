/*
 * test_model_synth.c - synthetic models: tensor set and shapes, weight
 * statistics, thread-count independence, and a valid generated vocabulary
 * (every merge joins two tokens into a third that exists).
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

#include "engine/ggml_types.h"
#include "engine/gguf.h"
#include "engine/model_synth.h"
#include "engine/quant.h"

static char path1[64], path2[64];

static void synth(const char *ftype, int threads, uint64_t seed, const char *path,
                  const char *vocab)
{
    struct synth_opts o = {0};
    o.shape = synth_shape_find("tiny");
    o.ftype = quant_ftype_find(ftype);
    o.seed = seed;
    o.n_threads = threads;
    o.out_path = path;
    o.vocab_path = vocab;
    char err[256];
    if (synth_write(&o, err, sizeof err))
        fail_msg("synth %s: %s", ftype, err);
}

static uint8_t *slurp(const char *p, size_t *n)
{
    FILE *f = fopen(p, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(*n);
    assert_int_equal(fread(b, 1, *n, f), *n);
    fclose(f);
    return b;
}

static void test_tiny_f32(void **state)
{
    (void)state;
    synth("f32", 1, 42, path1, NULL);
    char err[256];
    struct gguf_file *f = gguf_open(path1, err, sizeof err);
    if (!f)
        fail_msg("%s", err);
    struct str s;
    assert_int_equal(gguf_get_str(f, "general.architecture", &s), 0);
    assert_memory_equal(s.p, "llama", 5);
    assert_memory_equal(f->kv[0].key.p, "general.architecture", 20);
    uint32_t u;
    assert_int_equal(gguf_get_u32(f, "llama.block_count", &u), 0);
    assert_int_equal(u, 2);
    assert_int_equal(gguf_get_u32(f, "llama.attention.head_count_kv", &u), 0);
    assert_int_equal(u, 2);
    assert_int_equal(gguf_get_u32(f, "general.file_type", &u), 0);
    assert_int_equal(u, 0);
    assert_int_equal(f->n_tensors, 2 + 2 * 9 + 1);
    const struct gguf_tensor *t = gguf_find_tensor(f, "token_embd.weight");
    assert_non_null(t);
    assert_int_equal(t->ne[0], 64);
    assert_int_equal(t->ne[1], 512);
    t = gguf_find_tensor(f, "blk.1.attn_k.weight");
    assert_non_null(t);
    assert_int_equal(t->ne[0], 64);
    assert_int_equal(t->ne[1], 32); /* 2 kv heads of 16 */
    t = gguf_find_tensor(f, "blk.1.ffn_down.weight");
    assert_int_equal(t->ne[0], 192);
    assert_int_equal(t->ne[1], 64);
    assert_non_null(gguf_find_tensor(f, "output.weight"));
    t = gguf_find_tensor(f, "blk.0.attn_norm.weight");
    for (int i = 0; i < 64; i++)
        assert_true(((const float *)t->data)[i] == 1.f);
    /* weights: mean ~0, std ~0.02, bounded tails */
    t = gguf_find_tensor(f, "blk.0.ffn_gate.weight");
    const float *w = t->data;
    double sum = 0, sq = 0, mx = 0;
    int n = 64 * 192;
    for (int i = 0; i < n; i++) {
        sum += w[i];
        sq += (double)w[i] * w[i];
        mx = fabs(w[i]) > mx ? fabs(w[i]) : mx;
    }
    double mean = sum / n, sd = sqrt(sq / n - mean * mean);
    assert_true(fabs(mean) < 0.001);
    assert_true(sd > 0.019 && sd < 0.021);
    assert_true(mx < 0.02 * 3.5 && mx > 0.02 * 2.5);
    /* different tensors are not copies of each other */
    const float *w2 = gguf_find_tensor(f, "blk.0.ffn_up.weight")->data;
    assert_true(memcmp(w, w2, 64 * sizeof *w) != 0);
    gguf_close(f);
}

static int has_token(const struct gguf_kv *tk, const char *s, size_t n)
{
    for (uint64_t i = 0; i < tk->arr_len; i++) {
        struct str t;
        gguf_arr_str(tk, i, &t);
        if (t.len == n && !memcmp(t.p, s, n))
            return 1;
    }
    return 0;
}

static void test_generated_vocab(void **state)
{
    (void)state;
    synth("q8_0", 1, 1, path1, NULL);
    char err[256];
    struct gguf_file *f = gguf_open(path1, err, sizeof err);
    assert_non_null(f);
    const struct gguf_kv *tk = gguf_find_kv(f, "tokenizer.ggml.tokens");
    const struct gguf_kv *mg = gguf_find_kv(f, "tokenizer.ggml.merges");
    const struct gguf_kv *ty = gguf_find_kv(f, "tokenizer.ggml.token_type");
    assert_non_null(tk);
    assert_non_null(mg);
    assert_int_equal(tk->arr_len, 512);
    assert_int_equal(ty->arr_len, 512);
    assert_int_equal(mg->arr_len, 512 - 256 - 3);
    struct str s;
    assert_int_equal(gguf_arr_str(tk, ' ', &s), 0);
    assert_int_equal(s.len, 2);
    assert_memory_equal(s.p, "\xc4\xa0", 2); /* "Ġ": byte-level space */
    assert_int_equal(gguf_arr_str(tk, 'a', &s), 0);
    assert_memory_equal(s.p, "a", 1);
    for (uint64_t i = 0; i < mg->arr_len; i++) {
        assert_int_equal(gguf_arr_str(mg, i, &s), 0);
        const char *sp = memchr(s.p, ' ', s.len);
        assert_non_null(sp);
        size_t la = (size_t)(sp - s.p), lb = s.len - la - 1;
        char joined[64];
        assert_true(s.len < sizeof joined);
        memcpy(joined, s.p, la);
        memcpy(joined + la, sp + 1, lb);
        if (!has_token(tk, s.p, la) || !has_token(tk, sp + 1, lb) ||
            !has_token(tk, joined, la + lb))
            fail_msg("merge %llu '%.*s' is not valid", (unsigned long long)i, (int)s.len, s.p);
    }
    uint32_t bos;
    assert_int_equal(gguf_get_u32(f, "tokenizer.ggml.bos_token_id", &bos), 0);
    assert_int_equal(gguf_arr_str(tk, bos, &s), 0);
    assert_int_equal(s.len, strlen("<|endoftext|>"));
    int32_t typ;
    assert_int_equal(gguf_arr_i32(ty, bos, &typ), 0);
    assert_int_equal(typ, 3);
    gguf_close(f);
}

static void test_deterministic(void **state)
{
    (void)state;
    static const char *types[] = {"q4_0", "q4_k_m", "bf16"};
    for (size_t k = 0; k < 3; k++) {
        synth(types[k], 1, 7, path1, NULL);
        synth(types[k], 3, 7, path2, NULL);
        size_t n1, n2;
        uint8_t *a = slurp(path1, &n1), *b = slurp(path2, &n2);
        assert_int_equal(n1, n2);
        assert_memory_equal(a, b, n1);
        free(b);
        synth(types[k], 2, 8, path2, NULL);
        b = slurp(path2, &n2);
        assert_int_equal(n1, n2);
        assert_true(memcmp(a, b, n1) != 0);
        free(a);
        free(b);
    }
}

static void test_vocab_copy(void **state)
{
    (void)state;
    const char *shared = getenv("AISTACK_SHARED");
    char vocab[512];
    snprintf(vocab, sizeof vocab, "%s/testdata/vocab/ggml-vocab-llama-spm.gguf",
             shared ? shared : "../shared");
    if (access(vocab, R_OK))
        skip();
    synth("q4_0", 2, 1, path1, vocab);
    char err[256];
    struct gguf_file *f = gguf_open(path1, err, sizeof err);
    assert_non_null(f);
    /* the vocab (32000) is larger than the tiny shape's 512: the model grows to it */
    const struct gguf_kv *tk = gguf_find_kv(f, "tokenizer.ggml.tokens");
    assert_int_equal(tk->arr_len, 32000);
    assert_int_equal(gguf_find_kv(f, "tokenizer.ggml.scores")->arr_len, 32000);
    uint32_t u;
    assert_int_equal(gguf_get_u32(f, "llama.vocab_size", &u), 0);
    assert_int_equal(u, 32000);
    assert_int_equal(gguf_find_tensor(f, "token_embd.weight")->ne[1], 32000);
    assert_int_equal(gguf_find_tensor(f, "output.weight")->ne[1], 32000);
    struct str s;
    assert_int_equal(gguf_get_str(f, "tokenizer.ggml.model", &s), 0);
    assert_memory_equal(s.p, "llama", 5);
    gguf_close(f);
}

/* A vocab smaller than the shape is padded with unused tokens. */
static void test_vocab_pad(void **state)
{
    (void)state;
    char vpath[80];
    snprintf(vpath, sizeof vpath, "%s.vocab", path2);
    struct gguf_writer *w = gguf_writer_new();
    const char *toks[300];
    char buf[300][8];
    float scores[300];
    for (int i = 0; i < 300; i++) {
        snprintf(buf[i], sizeof buf[i], "t%d", i);
        toks[i] = buf[i];
        scores[i] = (float)-i;
    }
    assert_int_equal(gguf_writer_set_str(w, "tokenizer.ggml.model", "llama"), 0);
    assert_int_equal(gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, 300), 0);
    assert_int_equal(gguf_writer_set_arr_f32(w, "tokenizer.ggml.scores", scores, 300), 0);
    assert_int_equal(gguf_writer_set_str(w, "general.name", "not copied"), 0);
    assert_int_equal(gguf_writer_write(w, vpath), 0);
    gguf_writer_free(w);
    synth("f16", 1, 1, path1, vpath);
    char err[256];
    struct gguf_file *f = gguf_open(path1, err, sizeof err);
    assert_non_null(f);
    const struct gguf_kv *tk = gguf_find_kv(f, "tokenizer.ggml.tokens");
    const struct gguf_kv *sc = gguf_find_kv(f, "tokenizer.ggml.scores");
    const struct gguf_kv *ty = gguf_find_kv(f, "tokenizer.ggml.token_type");
    assert_int_equal(tk->arr_len, 512);
    assert_int_equal(sc->arr_len, 512);
    assert_int_equal(ty->arr_len, 512);
    struct str s;
    assert_int_equal(gguf_arr_str(tk, 299, &s), 0);
    assert_memory_equal(s.p, "t299", 4);
    assert_int_equal(gguf_arr_str(tk, 300, &s), 0);
    assert_int_equal(s.len, 8);
    assert_memory_equal(s.p, "[PAD300]", 8);
    int32_t t;
    assert_int_equal(gguf_arr_i32(ty, 511, &t), 0);
    assert_int_equal(t, 5);
    assert_int_equal(gguf_get_str(f, "general.name", &s), 0);
    assert_memory_equal(s.p, "synthetic tiny", 14);
    assert_int_equal(gguf_find_tensor(f, "token_embd.weight")->ne[1], 512);
    gguf_close(f);
    unlink(vpath);
}

int main(void)
{
    snprintf(path1, sizeof path1, "/tmp/test_synth_%d_a.gguf", (int)getpid());
    snprintf(path2, sizeof path2, "/tmp/test_synth_%d_b.gguf", (int)getpid());
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tiny_f32),      cmocka_unit_test(test_generated_vocab),
        cmocka_unit_test(test_deterministic), cmocka_unit_test(test_vocab_copy),
        cmocka_unit_test(test_vocab_pad),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    unlink(path1);
    unlink(path2);
    return rc;
}
