/*
 * test_model_import.c - the importers' handling of hostile input: safetensors
 * headers (length, JSON, dtype, shape vs offsets, overlap) and llama2.c
 * checkpoints / tokenizers (header ranges, size mismatch, truncation), plus a
 * small valid llama2.c round trip through the GGUF reader.
 * Numerical correctness of imports is tests/ref/test_hf_convert.sh and
 * tests/ref/test_stories.sh.
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
#include "engine/gguf.h"
#include "engine/llama2c.h"
#include "engine/safetensors.h"

static size_t st_image(uint8_t *out, const char *json, size_t data_len)
{
    size_t n = strlen(json);
    for (int i = 0; i < 8; i++)
        out[i] = (uint8_t)((uint64_t)n >> (8 * i));
    memcpy(out + 8, json, n);
    memset(out + 8 + n, 0x3c, data_len); /* floats of 0.0117 */
    return 8 + n + data_len;
}

static void test_safetensors(void **state)
{
    (void)state;
    uint8_t img[1024];
    char err[256];
    size_t n = st_image(img,
                        "{\"__metadata__\":{\"a\":\"b\"},"
                        "\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
                        "\"b\":{\"dtype\":\"BF16\",\"shape\":[4],\"data_offsets\":[24,32]},"
                        "\"i\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[32,40]}}",
                        40);
    struct st_file *f = st_open_memory(img, n, err, sizeof err);
    assert_non_null(f);
    assert_int_equal(f->n_tensors, 3);
    const struct st_tensor *w = st_find(f, "w");
    assert_non_null(w);
    assert_int_equal(w->dtype, ST_DTYPE_F32);
    assert_int_equal(w->n_dims, 2);
    assert_int_equal(w->shape[1], 3);
    assert_int_equal(w->size, 24);
    assert_int_equal(st_find(f, "i")->dtype, ST_DTYPE_OTHER);
    assert_null(st_find(f, "nope"));
    st_close(f);
    st_close(NULL);

    static const char *const bad[] = {
        "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,20]}}",      /* size */
        "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[24,48]}}",     /* past end */
        "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[8,0]}}",       /* reversed */
        "{\"w\":{\"dtype\":\"Q4\",\"shape\":[2],\"data_offsets\":[0,8]}}",          /* dtype */
        "{\"w\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}",        /* negative */
        "{\"w\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,8]}}",       /* fraction */
        "{\"w\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,2],\"data_offsets\":[0,8]}}", /* dims */
        ("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}}"), /* overlap */
        "{\"w\":{\"dtype\":\"F32\",\"shape\":[2]}}",                          /* no offsets */
        "{\"w\":[1,2]}",
        "[1,2,3]",
        "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}", /* unterminated */
        "{\"__metadata__\":3}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        n = st_image(img, bad[i], 24);
        f = st_open_memory(img, n, err, sizeof err);
        if (f)
            fail_msg("accepted bad header %zu: %s", i, bad[i]);
        assert_true(strlen(err) > 0);
    }
    /* header length beyond the file, and absurd */
    n = st_image(img, "{}", 0);
    img[0] = 200;
    assert_null(st_open_memory(img, n, err, sizeof err));
    memset(img, 0xff, 8);
    assert_null(st_open_memory(img, n, err, sizeof err));
    assert_null(st_open_memory(img, 5, err, sizeof err));
}

static char dir[64];

/* Path of name in the test directory; four rotating buffers, so one call may take several. */
static const char *tmp(const char *name)
{
    static char p[4][128];
    static int k;
    k = (k + 1) % 4;
    snprintf(p[k], sizeof p[k], "%s/%s", dir, name);
    return p[k];
}

static void write_file(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    fclose(f);
}

/* A legacy llama2.c checkpoint: dim 8, hidden 16, 1 layer, 2 heads, 1 kv head, vocab v. */
static size_t l2c_image(uint8_t **out, int32_t vocab, int32_t seq_len)
{
    int32_t h[7] = {8, 16, 1, 2, 1, vocab, seq_len};
    int32_t V = vocab < 0 ? -vocab : vocab;
    size_t nf = (size_t)V * 8 + 8 + 64 + 32 + 32 + 64 + 8 + 3 * 128 + 8 + (size_t)seq_len * 4;
    if (vocab < 0)
        nf += (size_t)V * 8;
    size_t n = 28 + nf * 4;
    uint8_t *p = calloc(1, n);
    memcpy(p, h, 28);
    float *w = (float *)(void *)(p + 28);
    for (size_t i = 0; i < nf; i++)
        w[i] = (float)(i % 17) * 0.01f;
    *out = p;
    return n;
}

static void write_tok(const char *path, int n_tok, int corrupt)
{
    uint8_t buf[4096];
    size_t o = 0;
    int32_t max_len = 8;
    memcpy(buf, &max_len, 4);
    o = 4;
    for (int i = 0; i < n_tok; i++) {
        char s[16];
        if (i == 0)
            snprintf(s, sizeof s, "<unk>");
        else if (i == 1)
            snprintf(s, sizeof s, "\n<s>\n");
        else if (i == 2)
            snprintf(s, sizeof s, "\n</s>\n");
        else if (i < 6)
            snprintf(s, sizeof s, "<0x%02X>", i + 0x3d);
        else
            snprintf(s, sizeof s, " t%d", i);
        float score = (float)-i;
        int32_t len = (int32_t)strlen(s);
        if (corrupt && i == n_tok - 1)
            len = 100;
        memcpy(buf + o, &score, 4);
        memcpy(buf + o + 4, &len, 4);
        memcpy(buf + o + 8, s, strlen(s));
        o += 8 + strlen(s);
    }
    write_file(path, buf, o);
}

static void test_llama2c(void **state)
{
    (void)state;
    char err[256];
    snprintf(dir, sizeof dir, "/tmp/test_import.XXXXXX");
    assert_non_null(mkdtemp(dir));
    uint8_t *img;
    size_t n = l2c_image(&img, -10, 16); /* separate classifier */
    write_file(tmp("m.bin"), img, n);
    write_tok(tmp("t.bin"), 10, 0);
    if (llama2c_convert(tmp("m.bin"), tmp("t.bin"), tmp("o.gguf"), err, sizeof err))
        fail_msg("%s", err);
    struct gguf_file *g = gguf_open(tmp("o.gguf"), err, sizeof err);
    assert_non_null(g);
    assert_non_null(gguf_find_tensor(g, "output.weight"));
    assert_non_null(gguf_find_tensor(g, "blk.0.ffn_down.weight"));
    assert_int_equal(gguf_find_tensor(g, "blk.0.attn_k.weight")->ne[1], 4);
    const struct gguf_kv *tk = gguf_find_kv(g, "tokenizer.ggml.tokens");
    struct str s;
    assert_int_equal(gguf_arr_str(tk, 1, &s), 0);
    assert_true(s.len == 3 && !memcmp(s.p, "<s>", 3));
    assert_int_equal(gguf_arr_str(tk, 7, &s), 0);
    assert_true(s.len == 5 && !memcmp(s.p, "\xe2\x96\x81t7", 5)); /* space -> U+2581 */
    int32_t ty;
    assert_int_equal(gguf_arr_i32(gguf_find_kv(g, "tokenizer.ggml.token_type"), 4, &ty), 0);
    assert_int_equal(ty, 6); /* byte */
    assert_int_equal(gguf_arr_i32(gguf_find_kv(g, "tokenizer.ggml.token_type"), 2, &ty), 0);
    assert_int_equal(ty, 3); /* control */
    gguf_close(g);

    /* size mismatch: one float missing */
    write_file(tmp("m2.bin"), img, n - 4);
    assert_int_equal(llama2c_convert(tmp("m2.bin"), tmp("t.bin"), tmp("o2.gguf"), err, sizeof err),
                     AS_EFORMAT);
    assert_non_null(strstr(err, "size"));
    /* header out of range */
    int32_t bad_heads = 3; /* 8 % 3 != 0 */
    memcpy(img + 12, &bad_heads, 4);
    write_file(tmp("m3.bin"), img, n);
    assert_int_equal(llama2c_convert(tmp("m3.bin"), tmp("t.bin"), tmp("o3.gguf"), err, sizeof err),
                     AS_EFORMAT);
    free(img);
    /* tokenizer: too few tokens, bad length */
    n = l2c_image(&img, 10, 16);
    write_file(tmp("m4.bin"), img, n);
    write_tok(tmp("t2.bin"), 9, 0);
    assert_int_equal(llama2c_convert(tmp("m4.bin"), tmp("t2.bin"), tmp("o4.gguf"), err, sizeof err),
                     AS_EFORMAT);
    write_tok(tmp("t3.bin"), 10, 1);
    assert_int_equal(llama2c_convert(tmp("m4.bin"), tmp("t3.bin"), tmp("o4.gguf"), err, sizeof err),
                     AS_EFORMAT);
    assert_int_equal(llama2c_convert(tmp("m4.bin"), tmp("t.bin"), tmp("o4.gguf"), err, sizeof err),
                     0);
    assert_int_not_equal(
        llama2c_convert(tmp("none.bin"), tmp("t.bin"), tmp("o5.gguf"), err, sizeof err), 0);
    free(img);
    const char *names[] = {"m.bin",  "m2.bin", "m3.bin", "m4.bin",  "t.bin",
                           "t2.bin", "t3.bin", "o.gguf", "o4.gguf", "o4.gguf.tmp"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        unlink(tmp(names[i]));
    rmdir(dir);
}

/* value i of a checkpoint's weights, so every tensor's source offset can be checked */
static float wval(size_t i)
{
    return (float)i * 0.001f;
}

/* first element of a tensor in the converted file, as its offset in the source weights */
static long first_index(const struct gguf_file *g, const char *name)
{
    const struct gguf_tensor *t = gguf_find_tensor(g, name);
    if (!t)
        return -1;
    float v;
    memcpy(&v, t->data, 4);
    return lroundf(v / 0.001f);
}

static void test_llama2c_v1(void **state)
{
    (void)state;
    char err[256];
    snprintf(dir, sizeof dir, "/tmp/test_import.XXXXXX");
    assert_non_null(mkdtemp(dir));
    /* version 1 export: dim 8, hidden 16, 2 layers, 2 heads, 1 kv head, vocab 10, seq 16 */
    const size_t d = 8, hid = 16, nl = 2, kvd = 4, V = 10;
    size_t nf = nl * d * 2 + d + V * d + nl * (d * d + 2 * d * kvd + d * d + 3 * d * hid) + V * d;
    size_t n = 256 + nf * 4;
    uint8_t *img = calloc(1, n);
    int32_t h[9] = {0x616b3432, 1, (int32_t)d, (int32_t)hid, (int32_t)nl, 2, 1, (int32_t)V, 16};
    memcpy(img, h, sizeof h);
    img[36] = 0; /* separate classifier */
    float *w = (float *)(void *)(img + 256);
    for (size_t i = 0; i < nf; i++)
        w[i] = wval(i);
    write_file(tmp("v1.bin"), img, n);
    write_tok(tmp("t.bin"), 10, 0);
    if (llama2c_convert(tmp("v1.bin"), tmp("t.bin"), tmp("v1.gguf"), err, sizeof err))
        fail_msg("%s", err);
    struct gguf_file *g = gguf_open(tmp("v1.gguf"), err, sizeof err);
    assert_non_null(g);
    /* v1 order: attention norms, ffn norms, final norm, embeddings, then wq.. w3 per kind */
    size_t o_ffn_norm = nl * d, o_final = 2 * nl * d, o_tok = o_final + d, o_wq = o_tok + V * d;
    size_t o_wk = o_wq + nl * d * d, o_wv = o_wk + nl * d * kvd, o_wo = o_wv + nl * d * kvd;
    size_t o_w1 = o_wo + nl * d * d, o_w2 = o_w1 + nl * d * hid, o_w3 = o_w2 + nl * d * hid;
    size_t o_cls = o_w3 + nl * d * hid;
    assert_int_equal(first_index(g, "blk.1.attn_norm.weight"), d);
    assert_int_equal(first_index(g, "blk.0.ffn_norm.weight"), o_ffn_norm);
    assert_int_equal(first_index(g, "output_norm.weight"), o_final);
    assert_int_equal(first_index(g, "token_embd.weight"), o_tok);
    assert_int_equal(first_index(g, "blk.1.attn_q.weight"), o_wq + d * d);
    assert_int_equal(first_index(g, "blk.1.attn_k.weight"), o_wk + d * kvd);
    assert_int_equal(first_index(g, "blk.0.attn_v.weight"), o_wv);
    assert_int_equal(first_index(g, "blk.1.attn_output.weight"), o_wo + d * d);
    assert_int_equal(first_index(g, "blk.1.ffn_gate.weight"), o_w1 + d * hid);
    assert_int_equal(first_index(g, "blk.0.ffn_down.weight"), o_w2);
    assert_int_equal(first_index(g, "blk.1.ffn_up.weight"), o_w3 + d * hid);
    assert_int_equal(first_index(g, "output.weight"), o_cls);
    gguf_close(g);
    /* the legacy layout, same check on a few tensors */
    uint8_t *leg;
    n = l2c_image(&leg, -10, 16);
    float *lw = (float *)(void *)(leg + 28);
    for (size_t i = 0; i < (n - 28) / 4; i++)
        lw[i] = wval(i);
    write_file(tmp("leg.bin"), leg, n);
    if (llama2c_convert(tmp("leg.bin"), tmp("t.bin"), tmp("leg.gguf"), err, sizeof err))
        fail_msg("%s", err);
    g = gguf_open(tmp("leg.gguf"), err, sizeof err);
    assert_non_null(g);
    /* tok 80, rms_att 8, wq 64, wk 32, wv 32, wo 64, rms_ffn 8, w1 128, w2 128, w3 128,
       rms_final 8, freq_cis 64, then the classifier */
    assert_int_equal(first_index(g, "blk.0.attn_norm.weight"), 80);
    assert_int_equal(first_index(g, "blk.0.attn_k.weight"), 80 + 8 + 64);
    assert_int_equal(first_index(g, "blk.0.ffn_norm.weight"), 80 + 8 + 64 + 32 + 32 + 64);
    assert_int_equal(first_index(g, "blk.0.ffn_up.weight"), 288 + 256);
    assert_int_equal(first_index(g, "output_norm.weight"), 288 + 384);
    assert_int_equal(first_index(g, "output.weight"), 288 + 384 + 8 + 64);
    gguf_close(g);
    free(leg);
    free(img);
    const char *names[] = {"v1.bin", "t.bin", "v1.gguf", "leg.bin", "leg.gguf"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        unlink(tmp(names[i]));
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_safetensors),
        cmocka_unit_test(test_llama2c),
        cmocka_unit_test(test_llama2c_v1),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
