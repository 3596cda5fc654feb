/*
 * test_tokenizer_vocab.c - the tokenizers against llama.cpp's reference
 * tokenizations (../shared/testdata/vocab/NAME.inp and .out), exact id for id.
 *
 * GGUF vocabularies are read directly; llama-bpe and qwen2 are first built
 * from their tiktoken files with the converter (tok_convert.h) and written
 * as GGUF, so the converter is checked by the same pairs. Every string also
 * round-trips through the decoder and the streaming decoder. Skips when the
 * shared testdata is absent.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/buf.h"
#include "engine/gguf.h"
#include "engine/tok_convert.h"
#include "engine/tokenizer.h"

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *p = malloc((size_t)n + 1);
    if (p && fread(p, 1, (size_t)n, f) != (size_t)n) {
        free(p);
        p = NULL;
    }
    fclose(f);
    if (p) {
        p[n] = 0;
        *len = (size_t)n;
    }
    return p;
}

static const char *shared_dir(void)
{
    const char *s = getenv("AISTACK_SHARED");
    return s ? s : "../shared";
}

static int have_testdata(void)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/testdata/vocab/ggml-vocab-gpt-2.gguf.inp", shared_dir());
    return access(path, R_OK) == 0;
}

/* Checks every .inp/.out pair of vocab NAME with tokenizer t. */
static void check_pairs(const struct tokenizer *t, const char *name)
{
    char path[1024];
    size_t ilen, olen;
    snprintf(path, sizeof path, "%s/testdata/vocab/ggml-vocab-%s.gguf.inp", shared_dir(), name);
    char *inp = read_file(path, &ilen);
    snprintf(path, sizeof path, "%s/testdata/vocab/ggml-vocab-%s.gguf.out", shared_dir(), name);
    char *outp = read_file(path, &olen);
    assert_non_null(inp);
    assert_non_null(outp);
    static const char sep[] = "\n__ggml_vocab_test__\n";
    char *p = inp, *line = outp;
    int n_cases = 0, n_fail = 0;
    for (;;) {
        char *e = strstr(p, sep);
        if (!e)
            break;
        size_t tlen = (size_t)(e - p);
        char *nl = strchr(line, '\n');
        assert_non_null(nl);
        *nl = 0;
        struct tok_ids ids;
        tok_ids_init(&ids, 0);
        assert_int_equal(tok_encode(t, p, tlen, 0, &ids), 0);
        /* expected: " id id id" */
        struct buf got;
        buf_init(&got, 1 << 20);
        for (size_t i = 0; i < ids.n; i++)
            buf_printf(&got, " %d", ids.ids[i]);
        if (strcmp(got.data ? got.data : "", line)) {
            n_fail++;
            fprintf(stderr, "%s case %d '%.*s'\n  want:%s\n  got: %s\n", name, n_cases, (int)tlen,
                    p, line, got.data ? got.data : "");
        }
        /* decode(encode(x)) == x, in one go and streamed token by token */
        struct buf dec, str;
        buf_init(&dec, 1 << 20);
        buf_init(&str, 1 << 20);
        assert_int_equal(tok_decode(t, ids.ids, ids.n, TOK_DECODE_STRIP_SPACE, &dec), 0);
        if (dec.len != tlen || (tlen && memcmp(dec.data, p, tlen))) {
            n_fail++;
            fprintf(stderr, "%s case %d: decode '%s' != input\n", name, n_cases, dec.data);
        }
        struct tok_stream ts;
        tok_stream_init(&ts, t, TOK_DECODE_STRIP_SPACE);
        for (size_t i = 0; i < ids.n; i++) {
            assert_int_equal(tok_stream_push(&ts, ids.ids[i], &str), 0);
            if (str.len > 0) { /* the output so far ends on a character boundary */
                unsigned char last = (unsigned char)str.data[str.len - 1];
                size_t back = 0;
                while (back < 3 && back < str.len &&
                       ((unsigned char)str.data[str.len - 1 - back] & 0xC0) == 0x80)
                    back++;
                unsigned char lead = (unsigned char)str.data[str.len - 1 - back];
                size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
                assert_true(last < 0x80 || need == back + 1);
            }
        }
        assert_int_equal(tok_stream_flush(&ts, &str), 0);
        assert_int_equal(str.len, tlen);
        assert_memory_equal(str.data ? str.data : "", p, tlen);
        buf_free(&dec);
        buf_free(&str);
        buf_free(&got);
        tok_ids_free(&ids);
        n_cases++;
        p = e + strlen(sep);
        line = nl + 1;
    }
    assert_true(n_cases >= 40);
    assert_int_equal(n_fail, 0);
    free(inp);
    free(outp);
}

static struct tokenizer *load_gguf_vocab(const char *name)
{
    char path[1024], err[256];
    snprintf(path, sizeof path, "%s/testdata/vocab/ggml-vocab-%s.gguf", shared_dir(), name);
    struct gguf_file *f = gguf_open(path, err, sizeof err);
    if (!f)
        fail_msg("%s: %s", path, err);
    struct tokenizer *t = tok_new_from_gguf(f, err, sizeof err);
    gguf_close(f);
    if (!t)
        fail_msg("%s: %s", name, err);
    return t;
}

static void run_gguf(const char *name)
{
    if (!have_testdata())
        skip();
    struct tokenizer *t = load_gguf_vocab(name);
    check_pairs(t, name);
    tok_free(t);
}

static void test_llama_spm(void **state)
{
    run_gguf("llama-spm");
}
static void test_phi3(void **state)
{
    run_gguf("phi-3");
}
static void test_gpt2(void **state)
{
    run_gguf("gpt-2");
}
static void test_deepseek_llm(void **state)
{
    run_gguf("deepseek-llm");
}

/* Converts a tiktoken file, writes it as GGUF, reads it back. */
static struct tokenizer *load_tiktoken(const char *file, enum tok_tiktoken_flavor flavor)
{
    char path[1024], out[256], err[256];
    snprintf(path, sizeof path, "%s/testdata/tokenizers/%s", shared_dir(), file);
    snprintf(out, sizeof out, "test_tokenizer_vocab_%d.gguf", (int)getpid());
    struct gguf_writer *w = gguf_writer_new();
    assert_non_null(w);
    if (tok_convert_tiktoken(w, path, flavor, err, sizeof err))
        fail_msg("%s: %s", file, err);
    assert_int_equal(gguf_writer_write(w, out), 0);
    gguf_writer_free(w);
    struct gguf_file *f = gguf_open(out, err, sizeof err);
    if (!f)
        fail_msg("%s: %s", out, err);
    struct tokenizer *t = tok_new_from_gguf(f, err, sizeof err);
    gguf_close(f);
    unlink(out);
    if (!t)
        fail_msg("%s: %s", file, err);
    return t;
}

static void test_llama_bpe(void **state)
{
    if (!have_testdata())
        skip();
    struct tokenizer *t = load_tiktoken("llama3-tokenizer.tiktoken", TOK_TIKTOKEN_LLAMA3);
    assert_int_equal(tok_n_vocab(t), 128256);
    assert_int_equal(tok_bos(t), 128000);
    struct str s = tok_token_text(t, 128009);
    assert_int_equal(s.len, strlen("<|eot_id|>"));
    assert_memory_equal(s.p, "<|eot_id|>", s.len);
    assert_true(tok_is_eog(t, 128009));
    check_pairs(t, "llama-bpe");
    /* special tokens: parsed only when asked */
    struct tok_ids ids;
    tok_ids_init(&ids, 0);
    const char *txt = "<|start_header_id|>user<|end_header_id|>";
    assert_int_equal(
        tok_encode(t, txt, strlen(txt), TOK_ENCODE_PARSE_SPECIAL | TOK_ENCODE_ADD_SPECIAL, &ids),
        0);
    assert_int_equal(ids.n, 4);
    assert_int_equal(ids.ids[0], 128000);
    assert_int_equal(ids.ids[1], 128006);
    assert_int_equal(ids.ids[3], 128007);
    ids.n = 0;
    assert_int_equal(tok_encode(t, txt, strlen(txt), 0, &ids), 0);
    assert_true(ids.n > 4);
    for (size_t i = 0; i < ids.n; i++)
        assert_true(ids.ids[i] < 128000);
    tok_ids_free(&ids);
    tok_free(t);
}

static void test_qwen2(void **state)
{
    if (!have_testdata())
        skip();
    struct tokenizer *t = load_tiktoken("qwen.tiktoken", TOK_TIKTOKEN_QWEN2);
    assert_int_equal(tok_n_vocab(t), 151646);
    assert_int_equal(tok_lookup(t, "<|im_end|>", 10), 151645);
    assert_true(tok_is_eog(t, 151645));
    check_pairs(t, "qwen2");
    tok_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_llama_spm), cmocka_unit_test(test_phi3),
        cmocka_unit_test(test_gpt2),      cmocka_unit_test(test_deepseek_llm),
        cmocka_unit_test(test_llama_bpe), cmocka_unit_test(test_qwen2),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
