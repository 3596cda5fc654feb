/*
 * test_gguf.c - GGUF reader/writer: round trip, hostile files, real vocab files.
 *
 * The malformed-file tests build images byte by byte (struct img) so that each
 * one violates exactly one rule; every truncation of a valid file must fail
 * cleanly (run under ASan in the sanitizer build).
 */
#include <fcntl.h>
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

static char tmpdir_path[256];

static void save_seed(const char *name, const void *p, size_t n);

static const char *tmp_path(const char *name)
{
    static char p[512];
    if (!tmpdir_path[0]) {
        snprintf(tmpdir_path, sizeof tmpdir_path, "/tmp/test_gguf.XXXXXX");
        assert_non_null(mkdtemp(tmpdir_path));
    }
    snprintf(p, sizeof p, "%s/%s", tmpdir_path, name);
    return p;
}

static uint8_t *read_all(const char *path, size_t *n)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    fseek(fp, 0, SEEK_END);
    long sz = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    uint8_t *p = malloc(sz > 0 ? (size_t)sz : 1);
    assert_non_null(p);
    assert_int_equal(fread(p, 1, (size_t)sz, fp), (size_t)sz);
    fclose(fp);
    *n = (size_t)sz;
    return p;
}

static int fill_rows(void *ud, uint64_t row0, uint64_t n_rows, void *dst)
{
    /* row r of a (ne0 = 8 f32) tensor holds r*8 + i */
    (void)ud;
    float *f = dst;
    for (uint64_t r = 0; r < n_rows; r++)
        for (int i = 0; i < 8; i++)
            f[r * 8 + i] = (float)((row0 + r) * 8 + i);
    return 0;
}

/* Writes a small file exercising every value type and a few tensor types. */
static void write_sample(const char *path, uint8_t *q4k, size_t q4k_size, float *f32)
{
    struct gguf_writer *w = gguf_writer_new();
    assert_non_null(w);
    assert_int_equal(gguf_writer_set_str(w, "general.architecture", "llama"), 0);
    assert_int_equal(gguf_writer_set_u32(w, "llama.block_count", 22), 0);
    assert_int_equal(gguf_writer_set_i32(w, "test.i32", -7), 0);
    assert_int_equal(gguf_writer_set_u64(w, "test.u64", 1ull << 40), 0);
    assert_int_equal(gguf_writer_set_f32(w, "test.f32", 1.5f), 0);
    assert_int_equal(gguf_writer_set_bool(w, "test.bool", 1), 0);
    const char *toks[] = {"<unk>", "", "hello", "\xe2\x96\x81world"};
    assert_int_equal(gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, 4), 0);
    int32_t ids[] = {2, 3, -1, 1 << 30};
    assert_int_equal(gguf_writer_set_arr_i32(w, "tokenizer.ggml.token_type", ids, 4), 0);
    float sc[] = {0.f, -1.f, 2.5f};
    assert_int_equal(gguf_writer_set_arr_f32(w, "tokenizer.ggml.scores", sc, 3), 0);
    uint8_t u8[] = {1, 2, 3};
    assert_int_equal(gguf_writer_set_arr(w, "test.u8arr", GGUF_VT_UINT8, u8, 3), 0);
    /* replacing keeps the order and the latest value */
    assert_int_equal(gguf_writer_set_u32(w, "llama.block_count", 16), 0);
    assert_int_equal(gguf_writer_set_u32(w, "to.remove", 1), 0);
    assert_int_equal(gguf_writer_remove_kv(w, "to.remove"), 0);

    uint64_t ne_f32[2] = {8, 3};
    assert_int_equal(gguf_writer_add_tensor(w, "a.f32", GGML_TYPE_F32, 2, ne_f32, f32), 0);
    uint64_t ne_q4k[1] = {256 * q4k_size / 144};
    assert_int_equal(gguf_writer_add_tensor(w, "b.q4k", GGML_TYPE_Q4_K, 1, ne_q4k, q4k), 0);
    uint64_t ne_cb[3] = {8, 5, 2};
    assert_int_equal(gguf_writer_add_tensor_cb(w, "c.cb", GGML_TYPE_F32, 3, ne_cb, fill_rows, NULL),
                     0);
    /* rejected adds */
    assert_int_not_equal(gguf_writer_add_tensor(w, "a.f32", GGML_TYPE_F32, 2, ne_f32, f32), 0);
    uint64_t bad[1] = {33};
    assert_int_not_equal(gguf_writer_add_tensor(w, "bad", GGML_TYPE_Q4_0, 1, bad, f32), 0);
    assert_int_not_equal(gguf_writer_add_tensor(w, "bad", 99, 1, ne_q4k, f32), 0);

    assert_int_equal(gguf_writer_write(w, path), 0);
    gguf_writer_free(w);
    assert_int_not_equal(access(path, F_OK), -1);
}

static void test_roundtrip(void **state)
{
    (void)state;
    uint8_t q4k[2 * 144];
    for (size_t i = 0; i < sizeof q4k; i++)
        q4k[i] = (uint8_t)(i * 37 + 11);
    float f32[24];
    for (int i = 0; i < 24; i++)
        f32[i] = (float)i * 0.25f - 3.f;
    const char *path = tmp_path("rt.gguf");
    write_sample(path, q4k, sizeof q4k, f32);

    char err[256] = "";
    struct gguf_file *f = gguf_open(path, err, sizeof err);
    if (!f)
        fail_msg("open: %s", err);
    assert_int_equal(f->version, 3);
    assert_int_equal(f->n_kv, 10);
    assert_int_equal(f->n_tensors, 3);
    assert_int_equal(f->alignment, 32);
    /* order kept, replaced value in place */
    assert_int_equal(f->kv[1].key.len, strlen("llama.block_count"));
    uint32_t u32;
    assert_int_equal(gguf_get_u32(f, "llama.block_count", &u32), 0);
    assert_int_equal(u32, 16);
    assert_int_equal(gguf_get_u32(f, "test.i32", &u32), AS_EINVAL); /* negative */
    assert_int_equal(gguf_get_u32(f, "test.u64", &u32), AS_EINVAL); /* too big */
    assert_int_equal(gguf_get_u32(f, "nope", &u32), AS_ENOENT);
    uint64_t u64;
    assert_int_equal(gguf_get_u64(f, "test.u64", &u64), 0);
    assert_true(u64 == 1ull << 40);
    float fl;
    assert_int_equal(gguf_get_f32(f, "test.f32", &fl), 0);
    assert_true(fl == 1.5f);
    assert_int_equal(gguf_get_f32(f, "test.i32", &fl), AS_EINVAL);
    int b;
    assert_int_equal(gguf_get_bool(f, "test.bool", &b), 0);
    assert_int_equal(b, 1);
    struct str s;
    assert_int_equal(gguf_get_str(f, "general.architecture", &s), 0);
    assert_int_equal(s.len, 5);
    assert_memory_equal(s.p, "llama", 5);
    assert_int_equal(gguf_get_str(f, "test.f32", &s), AS_EINVAL);
    assert_null(gguf_find_kv(f, "to.remove"));

    const struct gguf_kv *kv = gguf_find_kv(f, "tokenizer.ggml.tokens");
    assert_non_null(kv);
    assert_int_equal(kv->arr_len, 4);
    const char *toks[] = {"<unk>", "", "hello", "\xe2\x96\x81world"};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(gguf_arr_str(kv, (uint64_t)i, &s), 0);
        assert_int_equal(s.len, strlen(toks[i]));
        assert_memory_equal(s.p, toks[i], s.len);
    }
    assert_int_equal(gguf_arr_str(kv, 4, &s), AS_ERANGE);
    int32_t i32;
    assert_int_equal(gguf_arr_i32(kv, 0, &i32), AS_EINVAL);
    kv = gguf_find_kv(f, "tokenizer.ggml.token_type");
    const int32_t ids[] = {2, 3, -1, 1 << 30};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(gguf_arr_i32(kv, (uint64_t)i, &i32), 0);
        assert_int_equal(i32, ids[i]);
    }
    kv = gguf_find_kv(f, "tokenizer.ggml.scores");
    assert_int_equal(gguf_arr_f32(kv, 2, &fl), 0);
    assert_true(fl == 2.5f);
    assert_int_equal(gguf_arr_f32(kv, 3, &fl), AS_ERANGE);
    kv = gguf_find_kv(f, "test.u8arr");
    assert_int_equal(gguf_arr_i32(kv, 2, &i32), 0);
    assert_int_equal(i32, 3);

    const struct gguf_tensor *t = gguf_find_tensor(f, "a.f32");
    assert_non_null(t);
    assert_int_equal(t->n_dims, 2);
    assert_int_equal(t->ne[0], 8);
    assert_int_equal(t->ne[1], 3);
    assert_int_equal(t->ne[2], 1);
    assert_int_equal(t->size, sizeof f32);
    assert_memory_equal(t->data, f32, sizeof f32);
    t = gguf_find_tensor(f, "b.q4k");
    assert_non_null(t);
    assert_int_equal(t->type, GGML_TYPE_Q4_K);
    assert_int_equal(t->ne[0], 512);
    assert_int_equal(t->size, sizeof q4k);
    assert_memory_equal(t->data, q4k, sizeof q4k);
    t = gguf_find_tensor(f, "c.cb");
    assert_non_null(t);
    assert_int_equal(t->size, 8 * 5 * 2 * 4);
    const float *cf = t->data;
    for (int i = 0; i < 80; i++)
        assert_true(cf[i] == (float)i);
    for (uint64_t i = 0; i < f->n_tensors; i++)
        assert_int_equal(((uintptr_t)f->tensors[i].data - (uintptr_t)f->map) % 32, 0);
    assert_null(gguf_find_tensor(f, "c.cb2"));

    /* copy every kv and tensor into a new file: byte-identical */
    struct gguf_writer *w = gguf_writer_new();
    for (uint64_t i = 0; i < f->n_kv; i++)
        assert_int_equal(gguf_writer_copy_kv(w, &f->kv[i]), 0);
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const struct gguf_tensor *ti = &f->tensors[i];
        char name[64];
        snprintf(name, sizeof name, "%.*s", (int)ti->name.len, ti->name.p);
        assert_int_equal(gguf_writer_add_tensor(w, name, ti->type, ti->n_dims, ti->ne, ti->data),
                         0);
    }
    const char *path2 = tmp_path("rt2.gguf");
    assert_int_equal(gguf_writer_write(w, path2), 0);
    gguf_writer_free(w);
    size_t n1, n2;
    uint8_t *b1 = read_all(path, &n1), *b2 = read_all(path2, &n2);
    save_seed("roundtrip", b1, n1);
    assert_int_equal(n1, n2);
    assert_memory_equal(b1, b2, n1);
    free(b1);
    free(b2);
    gguf_close(f);
    unlink(path);
    unlink(path2);
}

/* ---- hand-made images ------------------------------------------------------ */

struct img {
    uint8_t b[4096];
    size_t n;
};

static void put(struct img *m, const void *p, size_t n)
{
    assert_true(m->n + n <= sizeof m->b);
    memcpy(m->b + m->n, p, n);
    m->n += n;
}
static void p32(struct img *m, uint32_t v)
{
    put(m, &v, 4);
}
static void p64(struct img *m, uint64_t v)
{
    put(m, &v, 8);
}
static void pstr(struct img *m, const char *s)
{
    p64(m, strlen(s));
    put(m, s, strlen(s));
}
static void header(struct img *m, uint32_t version, uint64_t n_tensors, uint64_t n_kv)
{
    m->n = 0;
    put(m, "GGUF", 4);
    p32(m, version);
    p64(m, n_tensors);
    p64(m, n_kv);
}
static void tinfo(struct img *m, const char *name, uint32_t n_dims, const uint64_t *ne,
                  uint32_t type, uint64_t off)
{
    pstr(m, name);
    p32(m, n_dims);
    for (uint32_t i = 0; i < n_dims; i++)
        p64(m, ne[i]);
    p32(m, type);
    p64(m, off);
}
static void pad_data(struct img *m, size_t data_bytes)
{
    while (m->n % 32)
        m->b[m->n++] = 0;
    assert_true(m->n + data_bytes <= sizeof m->b);
    memset(m->b + m->n, 0x3c, data_bytes);
    m->n += data_bytes;
}

/* Expects the image to be rejected with a message containing want. */
static void expect_bad(const struct img *m, const char *want)
{
    char err[256] = "";
    struct gguf_file *f = gguf_open_memory(m->b, m->n, err, sizeof err);
    if (f) {
        gguf_close(f);
        fail_msg("accepted, expected error containing '%s'", want);
    }
    if (!strstr(err, want))
        fail_msg("error '%s' does not contain '%s'", err, want);
}

/*
 * With AISTACK_GGUF_SEED_DIR set, valid images are also saved there: this is
 * how tests/fuzz/corpus/fuzz_gguf/ was made.
 */
static void save_seed(const char *name, const void *p, size_t n)
{
    const char *dir = getenv("AISTACK_GGUF_SEED_DIR");
    if (!dir)
        return;
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(p, 1, n, fp), n);
    fclose(fp);
}

static void expect_ok(const struct img *m)
{
    static int seq;
    char name[32];
    snprintf(name, sizeof name, "img%d", seq++);
    save_seed(name, m->b, m->n);
    char err[256] = "";
    struct gguf_file *f = gguf_open_memory(m->b, m->n, err, sizeof err);
    if (!f)
        fail_msg("rejected: %s", err);
    gguf_close(f);
}

static void test_malformed_header(void **state)
{
    (void)state;
    struct img m;
    header(&m, 3, 0, 0);
    expect_ok(&m);
    m.b[0] = 'X';
    expect_bad(&m, "bad magic");
    header(&m, 1, 0, 0);
    expect_bad(&m, "version 1");
    header(&m, 0x03000000, 0, 0);
    expect_bad(&m, "big-endian");
    header(&m, 7, 0, 0);
    expect_bad(&m, "version 7");
    header(&m, 2, 0, 0); /* v2 is fine */
    expect_ok(&m);
    header(&m, 3, 0, 1ull << 62);
    expect_bad(&m, "kv count");
    header(&m, 3, UINT64_MAX, 0);
    expect_bad(&m, "tensor count");
    header(&m, 3, 0, 1); /* claims one kv, has none */
    expect_bad(&m, "kv count");
    header(&m, 3, 0, 0);
    m.n = 10;
    expect_bad(&m, "truncated");
    expect_bad(&(struct img){.n = 0}, "bad magic");
}

static void test_malformed_kv(void **state)
{
    (void)state;
    struct img m;
    /* huge key length */
    header(&m, 3, 0, 1);
    p64(&m, 1ull << 50);
    p32(&m, GGUF_VT_UINT32);
    p32(&m, 0);
    expect_bad(&m, "string length");
    /* unknown value type */
    header(&m, 3, 0, 1);
    pstr(&m, "k");
    p32(&m, 13);
    p32(&m, 0);
    expect_bad(&m, "unknown value type");
    /* empty key */
    header(&m, 3, 0, 1);
    pstr(&m, "");
    p32(&m, GGUF_VT_UINT32);
    p32(&m, 0);
    p32(&m, 0);
    expect_bad(&m, "empty key");
    /* huge string value */
    header(&m, 3, 0, 1);
    pstr(&m, "k");
    p32(&m, GGUF_VT_STRING);
    p64(&m, UINT64_MAX);
    expect_bad(&m, "string length");
    /* truncated scalar */
    header(&m, 3, 0, 1);
    pstr(&m, "k");
    p32(&m, GGUF_VT_UINT64);
    p32(&m, 0);
    expect_bad(&m, "truncated");
    /* duplicate key */
    header(&m, 3, 0, 2);
    pstr(&m, "k");
    p32(&m, GGUF_VT_UINT32);
    p32(&m, 1);
    pstr(&m, "k");
    p32(&m, GGUF_VT_UINT32);
    p32(&m, 2);
    expect_bad(&m, "duplicate key 'k'");
    /* numeric array whose n * size overflows */
    header(&m, 3, 0, 1);
    pstr(&m, "arr");
    p32(&m, GGUF_VT_ARRAY);
    p32(&m, GGUF_VT_UINT64);
    p64(&m, (UINT64_MAX / 8) + 2);
    p64(&m, 0);
    expect_bad(&m, "array of");
    /* string array with absurd count */
    header(&m, 3, 0, 1);
    pstr(&m, "arr");
    p32(&m, GGUF_VT_ARRAY);
    p32(&m, GGUF_VT_STRING);
    p64(&m, 1ull << 40);
    pstr(&m, "x");
    expect_bad(&m, "exceeds the limit");
    header(&m, 3, 0, 1);
    pstr(&m, "arr");
    p32(&m, GGUF_VT_ARRAY);
    p32(&m, GGUF_VT_STRING);
    p64(&m, 1000);
    pstr(&m, "x");
    expect_bad(&m, "exceeds the 9 bytes left");
    /* string array whose second string is too long */
    header(&m, 3, 0, 1);
    pstr(&m, "arr");
    p32(&m, GGUF_VT_ARRAY);
    p32(&m, GGUF_VT_STRING);
    p64(&m, 2);
    pstr(&m, "x");
    p64(&m, 1000);
    p64(&m, 0);
    expect_bad(&m, "string length");
    /* array of unknown type */
    header(&m, 3, 0, 1);
    pstr(&m, "arr");
    p32(&m, GGUF_VT_ARRAY);
    p32(&m, 77);
    p64(&m, 0);
    expect_bad(&m, "unknown array element type");
    /* nested arrays: valid, then inner count absurd, then too deep */
    header(&m, 3, 0, 1);
    pstr(&m, "nest");
    p32(&m, GGUF_VT_ARRAY);
    p32(&m, GGUF_VT_ARRAY);
    p64(&m, 2);
    p32(&m, GGUF_VT_UINT16);
    p64(&m, 2);
    p32(&m, 0x00010002);
    p32(&m, GGUF_VT_STRING);
    p64(&m, 1);
    pstr(&m, "abc");
    expect_ok(&m);
    header(&m, 3, 0, 1);
    pstr(&m, "nest");
    p32(&m, GGUF_VT_ARRAY);
    p32(&m, GGUF_VT_ARRAY);
    p64(&m, 1);
    p32(&m, GGUF_VT_UINT32);
    p64(&m, 1ull << 61);
    p64(&m, 0);
    expect_bad(&m, "array of");
    header(&m, 3, 0, 1);
    pstr(&m, "nest");
    p32(&m, GGUF_VT_ARRAY);
    for (int i = 0; i < 6; i++) {
        p32(&m, GGUF_VT_ARRAY);
        p64(&m, 1);
    }
    p32(&m, GGUF_VT_UINT8);
    p64(&m, 0);
    expect_bad(&m, "nested deeper");
    /* alignment not a power of two / wrong type */
    header(&m, 3, 0, 1);
    pstr(&m, "general.alignment");
    p32(&m, GGUF_VT_UINT32);
    p32(&m, 24);
    expect_bad(&m, "power of two");
    header(&m, 3, 0, 1);
    pstr(&m, "general.alignment");
    p32(&m, GGUF_VT_UINT64);
    p64(&m, 32);
    expect_bad(&m, "expected u32");
}

static void test_malformed_tensors(void **state)
{
    (void)state;
    struct img m;
    uint64_t ne2[2] = {32, 2};
    /* baseline: two q8_0 tensors of 2 rows x 34 bytes = 68 bytes, second at 96 */
    header(&m, 3, 2, 0);
    tinfo(&m, "a", 2, ne2, GGML_TYPE_Q8_0, 0);
    tinfo(&m, "b", 2, ne2, GGML_TYPE_Q8_0, 96);
    pad_data(&m, 96 + 68);
    expect_ok(&m);
    m.n--; /* one byte short */
    expect_bad(&m, "tensor 'b': data [");
    /* overlap */
    header(&m, 3, 2, 0);
    tinfo(&m, "a", 2, ne2, GGML_TYPE_Q8_0, 64);
    tinfo(&m, "b", 2, ne2, GGML_TYPE_Q8_0, 32);
    pad_data(&m, 256);
    expect_bad(&m, "overlap");
    /* identical offsets overlap too */
    header(&m, 3, 2, 0);
    tinfo(&m, "a", 2, ne2, GGML_TYPE_Q8_0, 0);
    tinfo(&m, "b", 2, ne2, GGML_TYPE_Q8_0, 0);
    pad_data(&m, 256);
    expect_bad(&m, "overlap");
    /* duplicate name */
    header(&m, 3, 2, 0);
    tinfo(&m, "a", 2, ne2, GGML_TYPE_Q8_0, 0);
    tinfo(&m, "a", 2, ne2, GGML_TYPE_Q8_0, 96);
    pad_data(&m, 256);
    expect_bad(&m, "duplicate tensor name 'a'");
    /* unaligned offset */
    header(&m, 3, 1, 0);
    tinfo(&m, "a", 2, ne2, GGML_TYPE_Q8_0, 16);
    pad_data(&m, 256);
    expect_bad(&m, "not a multiple of 32");
    /* bad type, too many dims, zero dim, row not a block multiple, overflow */
    header(&m, 3, 1, 0);
    tinfo(&m, "a", 2, ne2, 4 /* removed Q4_2 */, 0);
    pad_data(&m, 256);
    expect_bad(&m, "unknown type 4");
    header(&m, 3, 1, 0);
    tinfo(&m, "a", 2, ne2, 1000, 0);
    pad_data(&m, 256);
    expect_bad(&m, "unknown type 1000");
    uint64_t ne5[5] = {1, 1, 1, 1, 1};
    header(&m, 3, 1, 0);
    tinfo(&m, "a", 5, ne5, GGML_TYPE_F32, 0);
    pad_data(&m, 64);
    expect_bad(&m, "n_dims 5");
    header(&m, 3, 1, 0);
    tinfo(&m, "a", 0, ne5, GGML_TYPE_F32, 0);
    pad_data(&m, 64);
    expect_bad(&m, "n_dims 0");
    uint64_t ne0[2] = {32, 0};
    header(&m, 3, 1, 0);
    tinfo(&m, "a", 2, ne0, GGML_TYPE_F32, 0);
    pad_data(&m, 64);
    expect_bad(&m, "dimension 1 is 0");
    uint64_t ne33[1] = {33};
    header(&m, 3, 1, 0);
    tinfo(&m, "a", 1, ne33, GGML_TYPE_Q4_0, 0);
    pad_data(&m, 64);
    expect_bad(&m, "not a multiple of the q4_0 block size");
    uint64_t nebig[3] = {1ull << 40, 1ull << 30, 1ull << 10};
    header(&m, 3, 1, 0);
    tinfo(&m, "a", 3, nebig, GGML_TYPE_F32, 0);
    pad_data(&m, 64);
    expect_bad(&m, "overflows");
    uint64_t nehuge[2] = {1ull << 30, 1ull << 20};
    header(&m, 3, 1, 0);
    tinfo(&m, "a", 2, nehuge, GGML_TYPE_F32, 0);
    pad_data(&m, 64);
    expect_bad(&m, "past end of file");
    /* offset near UINT64_MAX must not wrap */
    header(&m, 3, 1, 0);
    tinfo(&m, "a", 2, ne2, GGML_TYPE_Q8_0, UINT64_MAX - 31);
    pad_data(&m, 64);
    expect_bad(&m, "past end of file");
    /* alignment 64 honoured */
    header(&m, 3, 1, 1);
    pstr(&m, "general.alignment");
    p32(&m, GGUF_VT_UINT32);
    p32(&m, 64);
    tinfo(&m, "a", 2, ne2, GGML_TYPE_Q8_0, 32);
    pad_data(&m, 256);
    expect_bad(&m, "not a multiple of 64");
}

/* Every prefix of a valid file shorter than its last tensor byte is rejected. */
static void test_truncations(void **state)
{
    (void)state;
    uint8_t q4k[144];
    memset(q4k, 0x5a, sizeof q4k);
    float f32[24] = {1};
    const char *path = tmp_path("trunc.gguf");
    write_sample(path, q4k, sizeof q4k, f32);
    size_t n;
    uint8_t *full = read_all(path, &n);
    char err[256];
    struct gguf_file *f = gguf_open_memory(full, n, err, sizeof err);
    assert_non_null(f);
    size_t need = 0;
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        size_t end = f->data_offset + f->tensors[i].offset + f->tensors[i].size;
        if (end > need)
            need = end;
    }
    gguf_close(f);
    for (size_t k = 0; k < n; k++) {
        /* exact-size heap copy so ASan catches any read past k */
        uint8_t *p = malloc(k ? k : 1);
        memcpy(p, full, k);
        err[0] = 0;
        f = gguf_open_memory(p, k, err, sizeof err);
        if (k < need) {
            if (f)
                fail_msg("prefix of %zu/%zu bytes accepted", k, n);
            assert_true(err[0] != 0);
        } else {
            if (!f)
                fail_msg("prefix of %zu bytes (data ends at %zu) rejected: %s", k, need, err);
            gguf_close(f);
        }
        free(p);
    }
    /* flipping any single header byte never crashes */
    for (size_t k = 0; k < need && k < 1024; k++) {
        uint8_t *p = malloc(n);
        memcpy(p, full, n);
        p[k] ^= 0xff;
        f = gguf_open_memory(p, n, err, sizeof err);
        gguf_close(f);
        free(p);
    }
    free(full);
    unlink(path);
}

static void test_open_errors(void **state)
{
    (void)state;
    char err[256] = "";
    assert_null(gguf_open("/nonexistent/x.gguf", err, sizeof err));
    assert_non_null(strstr(err, "/nonexistent/x.gguf"));
    assert_null(gguf_open("/tmp", err, sizeof err));
    gguf_close(NULL);
    gguf_writer_free(NULL);
}

struct progress_log {
    uint64_t last, total;
    int calls, backwards;
};

static void on_progress(void *ud, uint64_t done, uint64_t total)
{
    struct progress_log *p = ud;
    p->backwards += done < p->last || done > total;
    p->last = done;
    p->total = total;
    p->calls++;
}

/*
 * Every way of bringing a file in (plain mapping, huge-page mapping or its
 * fallback, private copy) yields the file's exact bytes; a file of 77 MB takes
 * the copy's multi-threaded path. Which of the two the huge-page mode gets
 * depends on the filesystem (ext4 with large folios: the mapping). Progress only grows and ends at
 * the total.
 */
static void test_open_huge(void **state)
{
    (void)state;
    const char *path = tmp_path("big.gguf");
    struct gguf_writer *w = gguf_writer_new();
    assert_non_null(w);
    assert_int_equal(gguf_writer_set_str(w, "general.architecture", "llama"), 0);
    uint64_t ne[2] = {8, 2400000}; /* 76.8 MB */
    assert_int_equal(gguf_writer_add_tensor_cb(w, "big", GGML_TYPE_F32, 2, ne, fill_rows, NULL), 0);
    assert_int_equal(gguf_writer_write(w, path), 0);
    gguf_writer_free(w);
    size_t n;
    uint8_t *want = read_all(path, &n);
    assert_true(n > (size_t)72e6);
    static const enum gguf_huge modes[] = {GGUF_HUGE_NO, GGUF_HUGE_MAP_OR_READ, GGUF_HUGE_READ};
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        if (modes[i] == GGUF_HUGE_MAP_OR_READ) {
            /* out of the page cache, so the huge-page mapping really reads it (a file cached
               in small pages goes straight to the copy) */
            int fd = open(path, O_RDONLY);
            assert_true(fd >= 0);
            assert_int_equal(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
            close(fd);
        }
        struct progress_log pl = {0};
        struct gguf_open_opts o = {.huge = modes[i], .progress = on_progress, .ud = &pl};
        char err[256];
        struct gguf_file *f = gguf_open_ex(path, &o, err, sizeof err);
        if (!f)
            fail_msg("mode %d: %s", (int)modes[i], err);
        assert_int_equal(f->map_size, n);
        assert_memory_equal(f->map, want, n);
        enum gguf_memory mem = gguf_memory_of(f);
        if (modes[i] == GGUF_HUGE_NO)
            assert_int_equal(mem, GGUF_MEM_MAP);
        else if (modes[i] == GGUF_HUGE_READ)
            assert_int_equal(mem, GGUF_MEM_READ);
        else
            assert_true(mem == GGUF_MEM_MAP_HUGE || mem == GGUF_MEM_READ);
        if (modes[i] != GGUF_HUGE_NO) {
            assert_true(pl.calls > 0);
            assert_int_equal(pl.backwards, 0);
            assert_int_equal(pl.last, n);
            assert_int_equal(pl.total, n);
        }
        gguf_close(f);
    }
    char err[256] = "";
    struct gguf_open_opts o = {.huge = GGUF_HUGE_READ};
    assert_null(gguf_open_ex("/nonexistent/x.gguf", &o, err, sizeof err));
    assert_non_null(strstr(err, "/nonexistent/x.gguf"));
    free(want);
    unlink(path);
}

static void test_vocab_files(void **state)
{
    (void)state;
    const char *shared = getenv("AISTACK_SHARED");
    char path[1024];
    static const struct {
        const char *file;
        uint64_t n_tokens;
        const char *tok0;
        int64_t n_merges;
    } want[] = {
        {"ggml-vocab-llama-spm.gguf", 32000, "<unk>", -1},
        {"ggml-vocab-gpt-2.gguf", 50257, "!", 50000},
        {"ggml-vocab-deepseek-llm.gguf", 102400, "!", 99757},
        {"ggml-vocab-phi-3.gguf", 32064, "<unk>", -1},
    };
    int found = 0;
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        snprintf(path, sizeof path, "%s/testdata/vocab/%s", shared ? shared : "../shared",
                 want[i].file);
        if (access(path, R_OK))
            continue;
        found++;
        char err[256];
        struct gguf_file *f = gguf_open(path, err, sizeof err);
        if (!f)
            fail_msg("%s: %s", path, err);
        const struct gguf_kv *kv = gguf_find_kv(f, "tokenizer.ggml.tokens");
        assert_non_null(kv);
        assert_int_equal(kv->arr_len, want[i].n_tokens);
        struct str s;
        assert_int_equal(gguf_arr_str(kv, 0, &s), 0);
        assert_int_equal(s.len, strlen(want[i].tok0));
        assert_memory_equal(s.p, want[i].tok0, s.len);
        /* every token readable, contiguous */
        size_t total = 0;
        for (uint64_t t = 0; t < kv->arr_len; t++) {
            assert_int_equal(gguf_arr_str(kv, t, &s), 0);
            total += s.len + 8;
        }
        assert_int_equal(total, kv->val_size);
        const struct gguf_kv *tt = gguf_find_kv(f, "tokenizer.ggml.token_type");
        assert_non_null(tt);
        assert_int_equal(tt->arr_len, want[i].n_tokens);
        int32_t ty;
        assert_int_equal(gguf_arr_i32(tt, want[i].n_tokens - 1, &ty), 0);
        const struct gguf_kv *mg = gguf_find_kv(f, "tokenizer.ggml.merges");
        if (want[i].n_merges < 0)
            assert_null(mg);
        else
            assert_int_equal(mg->arr_len, (uint64_t)want[i].n_merges);
        struct str model;
        assert_int_equal(gguf_get_str(f, "tokenizer.ggml.model", &model), 0);
        uint32_t bos;
        assert_int_equal(gguf_get_u32(f, "tokenizer.ggml.bos_token_id", &bos), 0);
        assert_true(bos < want[i].n_tokens);
        gguf_close(f);
    }
    if (!found)
        skip();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),    cmocka_unit_test(test_malformed_header),
        cmocka_unit_test(test_malformed_kv), cmocka_unit_test(test_malformed_tensors),
        cmocka_unit_test(test_truncations),  cmocka_unit_test(test_open_errors),
        cmocka_unit_test(test_vocab_files),  cmocka_unit_test(test_open_huge),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    if (tmpdir_path[0])
        rmdir(tmpdir_path);
    return rc;
}
