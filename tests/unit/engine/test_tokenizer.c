/*
 * test_tokenizer.c - tokenizer behaviour beyond the fixture pairs: each
 * pre-tokenizer's splits (written out from its regex by hand), special-token
 * matching, BOS/EOS, byte round trips of random input, the streaming
 * detokenizer, linear-time encoding of pathological input, and the
 * converters (SentencePiece .model against the fixture GGUF, tokenizer.json).
 * Tests that need ../shared/testdata skip without it.
 */
#include <ctype.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/buf.h"
#include "core/err.h"
#include "engine/gguf.h"
#include "engine/tok_convert.h"
#include "engine/tok_internal.h"
#include "engine/tok_unicode.h"
#include "engine/tokenizer.h"

static const char *shared_dir(void)
{
    const char *s = getenv("AISTACK_SHARED");
    return s ? s : "../shared";
}

static int have(const char *rel)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/testdata/%s", shared_dir(), rel);
    return access(path, R_OK) == 0;
}

static struct tokenizer *load_vocab(const char *name)
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

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ---- pre-tokenizers ------------------------------------------------------------ */

/* Splits text with pre and compares with the NULL-terminated list of pieces. */
static void expect_split(enum tok_pre pre, const char *text, const char *const *want)
{
    struct tok_scratch s = {0};
    const uint32_t *sp;
    size_t n;
    assert_int_equal(tok__pretok_split(pre, text, strlen(text), &s, &sp, &n), 0);
    size_t k = 0;
    for (; want[k]; k++) {
        if (k >= n)
            fail_msg("pre %d '%s': only %zu pieces, want '%s' next", pre, text, n, want[k]);
        if (strlen(want[k]) != sp[2 * k + 1] || memcmp(text + sp[2 * k], want[k], sp[2 * k + 1]))
            fail_msg("pre %d '%s': piece %zu is '%.*s', want '%s'", pre, text, k,
                     (int)sp[2 * k + 1], text + sp[2 * k], want[k]);
    }
    assert_int_equal(n, k);
    tok__scratch_free(&s);
}

static void test_pretok_gpt2(void **state)
{
    const char *const w[] = {"Hello", " world", "'s", " 123", " ", " abc", "\n\n", " x", NULL};
    expect_split(TOK_PRE_GPT2, "Hello world's 123  abc\n\n x", w);
    /* contractions are case-sensitive for GPT-2 */
    const char *const w2b[] = {"'re", "'", "RE", "  ", NULL};
    expect_split(TOK_PRE_GPT2, "'re'RE  ", w2b);
}

static void test_pretok_default(void **state)
{
    const char *const w[] = {"a", "+=", "b", " ", "123", "45", "!?", NULL};
    expect_split(TOK_PRE_DEFAULT, "a+=b 12345!?", w);
}

static void test_pretok_starcoder(void **state)
{
    const char *const w[] = {"ab", " ", "1", "2", "3", " x", NULL};
    expect_split(TOK_PRE_STARCODER, "ab 123 x", w);
    int im;
    enum tok_pre p;
    assert_int_equal(tok__pre_from_name("refact", &p, &im), 0);
    assert_int_equal(p, TOK_PRE_STARCODER);
    assert_int_equal(tok__pre_from_name("mpt", &p, &im), 0);
    assert_int_equal(p, TOK_PRE_GPT2);
    assert_int_equal(tok__pre_from_name("llama3", &p, &im), 0);
    assert_int_equal(p, TOK_PRE_LLAMA3);
    assert_int_equal(im, 1);
    assert_int_not_equal(tok__pre_from_name("no-such-pre", &p, &im), 0);
}

static void test_pretok_falcon(void **state)
{
    const char *const w[] = {"x", "`", "y", " ", "123", "4", NULL};
    expect_split(TOK_PRE_FALCON, "x`y 1234", w);
}

static void test_pretok_deepseek_coder(void **state)
{
    const char *const w[] = {"a", "\n", "b", ",", " ", "1", "2", "中文", NULL};
    expect_split(TOK_PRE_DEEPSEEK_CODER, "a\nb, 12中文", w);
}

static void test_pretok_deepseek_llm(void **state)
{
    const char *const w[] = {"H", "é", "llo", " ", "12", " world", "\n", NULL};
    expect_split(TOK_PRE_DEEPSEEK_LLM, "Héllo 12 world\n", w);
    /* \s+$ splits trailing whitespace off a chunk */
    const char *const w2[] = {"ab", "  ", NULL};
    expect_split(TOK_PRE_DEEPSEEK_LLM, "ab  ", w2);
}

static void test_pretok_llama3_qwen2(void **state)
{
    const char *text = "I'M 12345 ok!\r\n\n  x";
    const char *const l3[] = {"I", "'M", " ", "123", "45", " ok", "!\r\n\n", " ", " x", NULL};
    expect_split(TOK_PRE_LLAMA3, text, l3);
    const char *const q2[] = {"I", "'M",  " ",       "1", "2",  "3", "4",
                              "5", " ok", "!\r\n\n", " ", " x", NULL};
    expect_split(TOK_PRE_QWEN2, text, q2);
    /* \s*[\r\n]+ stops at the last newline; non-ASCII letters and whitespace */
    const char *const w[] = {" \n", "  ", " мир", "\xe3\x80\x80", NULL};
    expect_split(TOK_PRE_LLAMA3, " \n   мир\xe3\x80\x80", w);
}

static void test_pretok_invalid_utf8(void **state)
{
    /* malformed bytes are kept, one unit each, and classified like U+FFFD (a symbol) */
    const char text[] = "ab\xff\xfe cd\xe2\x82";
    struct tok_scratch s = {0};
    const uint32_t *sp;
    size_t n;
    for (int pre = TOK_PRE_DEFAULT; pre <= TOK_PRE_STARCODER; pre++) {
        assert_int_equal(tok__pretok_split((enum tok_pre)pre, text, sizeof text - 1, &s, &sp, &n),
                         0);
        size_t off = 0;
        for (size_t k = 0; k < n; k++) {
            assert_int_equal(sp[2 * k], off);
            assert_true(sp[2 * k + 1] > 0);
            off += sp[2 * k + 1];
        }
        assert_int_equal(off, sizeof text - 1);
    }
    tok__scratch_free(&s);
}

/* ---- a small in-memory BPE vocabulary ------------------------------------------ */

/* 256 byte tokens in GPT-2's alphabet, a few merges, two specials. */
static struct tokenizer *small_bpe(const char *pre)
{
    static char storage[256][4];
    struct str tokens[262];
    int32_t types[262];
    uint32_t n = 0;
    for (int b = 0; b < 256; b++) {
        size_t k = 0;
        uint32_t cp = tok__byte_to_cpt((uint8_t)b);
        if (cp < 0x80)
            storage[b][k++] = (char)cp;
        else {
            storage[b][k++] = (char)(0xC0 | (cp >> 6));
            storage[b][k++] = (char)(0x80 | (cp & 0x3F));
        }
        tokens[n] = (struct str){storage[b], k};
        types[n++] = TOK_TT_NORMAL;
    }
    const char *extra[] = {"he", "ll", "hell", "hello", "<|ctl|>", "<ud>"};
    const int32_t et[] = {1, 1, 1, 1, TOK_TT_CONTROL, TOK_TT_USER_DEFINED};
    for (int i = 0; i < 6; i++) {
        tokens[n] = (struct str){extra[i], strlen(extra[i])};
        types[n++] = et[i];
    }
    const struct str merges[] = {{"h e", 3}, {"l l", 3}, {"he ll", 5}, {"hell o", 6}};
    struct tok_vocab_desc d = {
        .model = "gpt2",
        .pre = pre,
        .n_tokens = n,
        .tokens = tokens,
        .types = types,
        .n_merges = 4,
        .merges = merges,
        .bos = 260,
        .eos = 260,
        .unk = -1,
        .pad = -1,
        .eot = -1,
        .eom = -1,
        .add_bos = 1,
        .add_eos = 1,
        .add_space_prefix = -1,
    };
    char err[128];
    struct tokenizer *t = tok_new(&d, err, sizeof err);
    if (!t)
        fail_msg("%s", err);
    return t;
}

static void test_small_bpe_specials(void **state)
{
    struct tokenizer *t = small_bpe("gpt-2");
    struct tok_ids ids;
    tok_ids_init(&ids, 0);
    const char *txt = "hello<|ctl|>x<ud>";
    assert_int_equal(tok_encode(t, txt, strlen(txt), 0, &ids), 0);
    /* hello | < | | | ctl | | | > x | <ud>: control text stays text, user-defined matches */
    assert_int_equal(ids.ids[0], 259);
    assert_int_equal(ids.ids[ids.n - 1], 261);
    size_t n_plain = ids.n;
    ids.n = 0;
    assert_int_equal(
        tok_encode(t, txt, strlen(txt), TOK_ENCODE_PARSE_SPECIAL | TOK_ENCODE_ADD_SPECIAL, &ids),
        0);
    assert_int_equal(ids.n, 6); /* BOS hello <|ctl|> x <ud> EOS */
    assert_int_equal(ids.ids[0], 260);
    assert_int_equal(ids.ids[1], 259);
    assert_int_equal(ids.ids[2], 260);
    assert_int_equal(ids.ids[4], 261);
    assert_int_equal(ids.ids[5], 260);
    assert_true(n_plain > ids.n);
    /* control tokens are dropped from text unless asked for */
    struct buf b;
    buf_init(&b, 1 << 16);
    assert_int_equal(tok_decode(t, ids.ids, ids.n, 0, &b), 0);
    assert_string_equal(b.data, "hellox<ud>");
    buf_reset(&b);
    assert_int_equal(tok_decode(t, ids.ids, ids.n, TOK_DECODE_SPECIAL, &b), 0);
    assert_string_equal(b.data, "<|ctl|>hello<|ctl|>x<ud><|ctl|>");
    /* an id out of range is an error, not a crash */
    int32_t bad = 9999;
    assert_int_equal(tok_decode(t, &bad, 1, 0, &b), AS_EINVAL);
    buf_free(&b);
    tok_ids_free(&ids);
    tok_free(t);
}

static void test_small_bpe_roundtrip_bytes(void **state)
{
    struct tokenizer *t = small_bpe("llama-bpe");
    uint32_t seed = 12345;
    struct buf b;
    buf_init(&b, 1 << 20);
    struct tok_ids ids;
    tok_ids_init(&ids, 0);
    char text[300];
    for (int iter = 0; iter < 300; iter++) {
        size_t n = (size_t)(iter % 290);
        for (size_t i = 0; i < n; i++) {
            seed = seed * 1103515245u + 12345u;
            text[i] = (char)(seed >> 16);
        }
        ids.n = 0;
        buf_reset(&b);
        assert_int_equal(tok_encode(t, text, n, 0, &ids), 0);
        assert_int_equal(tok_decode(t, ids.ids, ids.n, 0, &b), 0);
        assert_int_equal(b.len, n);
        if (n)
            assert_memory_equal(b.data, text, n);
    }
    /* the id array's maximum is honoured */
    struct tok_ids small;
    tok_ids_init(&small, 3);
    assert_int_equal(tok_encode(t, "a b c d e f", 11, 0, &small), AS_ENOMEM);
    tok_ids_free(&small);
    tok_ids_free(&ids);
    buf_free(&b);
    tok_free(t);
}

/* ---- special-token partitioning against a direct transcription of llama.cpp's ---- */

struct ref_frag {
    int32_t id; /* -1 = raw text */
    size_t off, len;
};

/* llama.cpp's tokenizer_st_partition, done the slow way: per special, rescan every raw fragment. */
static size_t ref_partition(const struct tokenizer *t, const char *text, size_t len, int parse,
                            struct ref_frag *f, size_t cap)
{
    size_t n = 1;
    f[0] = (struct ref_frag){-1, 0, len};
    for (uint32_t si = 0; si < t->n_special; si++) {
        int32_t id = t->special[si];
        if (!parse && (t->type[id] == TOK_TT_CONTROL || t->type[id] == TOK_TT_UNKNOWN))
            continue;
        struct str sp = t->text[id];
        struct ref_frag next[512];
        size_t m = 0;
        for (size_t k = 0; k < n; k++) {
            if (f[k].id >= 0) {
                next[m++] = f[k];
                continue;
            }
            size_t off = f[k].off, flen = f[k].len;
            while (flen > 0) {
                const char *hit = memmem(text + off, flen, sp.p, sp.len);
                if (!hit) {
                    next[m++] = (struct ref_frag){-1, off, flen};
                    break;
                }
                size_t pos = (size_t)(hit - text), left = pos - off;
                if (t->attr[id] & TOK_ATTR_LSTRIP)
                    while (left > 0 && isspace((unsigned char)text[off + left - 1]))
                        left--;
                if (left)
                    next[m++] = (struct ref_frag){-1, off, left};
                next[m++] = (struct ref_frag){id, pos, sp.len};
                size_t roff = pos + sp.len, rlen = off + flen - roff;
                if (t->attr[id] & TOK_ATTR_RSTRIP)
                    while (rlen > 0 && isspace((unsigned char)text[roff])) {
                        roff++;
                        rlen--;
                    }
                off = roff;
                flen = rlen;
            }
        }
        assert_true(m <= cap);
        memcpy(f, next, m * sizeof *f);
        n = m;
    }
    return n;
}

static void test_partition_matches_reference(void **state)
{
    /* overlapping (also self-overlapping) specials of both kinds; the name makes llama.cpp's
       Phi-3 rule add RSTRIP */
    static char storage[256][3];
    struct str tokens[270];
    int32_t types[270];
    uint32_t n = 0;
    for (int b = 0; b < 256; b++) {
        tokens[n] =
            (struct str){storage[b], tok_utf8_encode(tok__byte_to_cpt((uint8_t)b), storage[b])};
        types[n++] = TOK_TT_NORMAL;
    }
    static const char *const sp[] = {"<a>", "<a><b>", "a>", "ab", "<|x|>", "b", "<a><b>", "bb"};
    static const int32_t st[] = {TOK_TT_CONTROL,      TOK_TT_USER_DEFINED, TOK_TT_CONTROL,
                                 TOK_TT_USER_DEFINED, TOK_TT_CONTROL,      TOK_TT_USER_DEFINED,
                                 TOK_TT_CONTROL,      TOK_TT_USER_DEFINED};
    for (int i = 0; i < 8; i++) {
        tokens[n] = (struct str){sp[i], strlen(sp[i])};
        types[n++] = st[i];
    }
    for (int model = 0; model < 2; model++) {
        struct tok_vocab_desc d = {.model = model ? "llama" : "gpt2",
                                   .name = model ? "phi3-test" : NULL,
                                   .n_tokens = n,
                                   .tokens = tokens,
                                   .types = types,
                                   .bos = -1,
                                   .eos = -1,
                                   .unk = -1,
                                   .pad = -1,
                                   .eot = -1,
                                   .eom = -1,
                                   .add_bos = 0,
                                   .add_eos = 0,
                                   .add_space_prefix = -1};
        char err[128];
        struct tokenizer *t = tok_new(&d, err, sizeof err);
        assert_non_null(t);
        static const char *const parts[] = {"<a>", "<b>", "<a><b>", "a",     "b", ">",  "<",
                                            " ",   "  ",  "\n",     "<|x|>", "x", "ab", "bbb"};
        uint32_t seed = 77;
        struct ref_frag f[512];
        struct tok_ids got, want;
        tok_ids_init(&got, 0);
        tok_ids_init(&want, 0);
        for (int iter = 0; iter < 2000; iter++) {
            char text[256];
            size_t len = 0;
            for (int k = 0; k < iter % 30; k++) {
                seed = seed * 1103515245u + 12345u;
                const char *p = parts[(seed >> 16) % (sizeof parts / sizeof parts[0])];
                memcpy(text + len, p, strlen(p));
                len += strlen(p);
            }
            int parse = iter & 1;
            size_t nf = ref_partition(t, text, len, parse, f, 512);
            want.n = 0;
            for (size_t k = 0; k < nf; k++) {
                if (f[k].id >= 0)
                    assert_int_equal(tok_ids_push(&want, f[k].id), 0);
                else /* a raw fragment holds no special any more: plain encoding */
                    assert_int_equal(tok_encode(t, text + f[k].off, f[k].len, 0, &want), 0);
            }
            got.n = 0;
            assert_int_equal(tok_encode(t, text, len, parse ? TOK_ENCODE_PARSE_SPECIAL : 0, &got),
                             0);
            if (got.n != want.n || (got.n && memcmp(got.ids, want.ids, got.n * sizeof *got.ids)))
                fail_msg("model %d parse %d: '%.*s' partitions differently", model, parse, (int)len,
                         text);
        }
        tok_ids_free(&got);
        tok_ids_free(&want);
        tok_free(t);
    }
}

static void test_bad_vocab(void **state)
{
    char err[128];
    struct str tok = {"a", 1};
    struct tok_vocab_desc d = {.model = "unigram",
                               .n_tokens = 1,
                               .tokens = &tok,
                               .bos = -1,
                               .eos = -1,
                               .unk = -1,
                               .pad = -1,
                               .eot = -1,
                               .eom = -1,
                               .add_bos = -1,
                               .add_eos = -1,
                               .add_space_prefix = -1};
    assert_null(tok_new(&d, err, sizeof err));
    assert_non_null(strstr(err, "unigram"));
    /* an unknown pre-tokenizer falls back to the default one, as in llama.cpp */
    d.model = "gpt2";
    d.pre = "no-such-pre";
    struct tokenizer *t = tok_new(&d, err, sizeof err);
    assert_non_null(t);
    assert_int_equal(t->pre, TOK_PRE_DEFAULT);
    tok_free(t);
    d.n_tokens = 0;
    assert_null(tok_new(&d, err, sizeof err));
}

/* ---- fixture vocabularies ------------------------------------------------------- */

static void test_gpt2_random_bytes(void **state)
{
    if (!have("vocab/ggml-vocab-gpt-2.gguf"))
        skip();
    struct tokenizer *t = load_vocab("gpt-2");
    uint32_t seed = 7;
    struct buf b;
    buf_init(&b, 1 << 20);
    struct tok_ids ids;
    tok_ids_init(&ids, 0);
    char text[200];
    for (int iter = 0; iter < 500; iter++) {
        size_t n = (size_t)(iter % 200);
        for (size_t i = 0; i < n; i++) {
            seed = seed * 1103515245u + 12345u;
            /* mix ASCII-heavy text with arbitrary bytes */
            uint8_t r = (uint8_t)(seed >> 16);
            text[i] = (char)(iter & 1 ? r : (r & 0x7F) | ((r & 0x80) && (r & 1) ? 0x80 : 0));
        }
        ids.n = 0;
        buf_reset(&b);
        assert_int_equal(tok_encode(t, text, n, TOK_ENCODE_PARSE_SPECIAL, &ids), 0);
        assert_int_equal(tok_decode(t, ids.ids, ids.n, TOK_DECODE_SPECIAL, &b), 0);
        assert_int_equal(b.len, n);
        if (n)
            assert_memory_equal(b.data, text, n);
    }
    tok_ids_free(&ids);
    buf_free(&b);
    tok_free(t);
}

static void test_spm_bos_and_roundtrip(void **state)
{
    if (!have("vocab/ggml-vocab-llama-spm.gguf"))
        skip();
    struct tokenizer *t = load_vocab("llama-spm");
    assert_int_equal(tok_model(t), TOK_MODEL_SPM);
    assert_int_equal(tok_bos(t), 1);
    assert_int_equal(tok_eos(t), 2);
    assert_true(tok_add_bos(t));
    assert_true(tok_is_eog(t, 2));
    struct tok_ids ids;
    tok_ids_init(&ids, 0);
    assert_int_equal(tok_encode(t, "", 0, TOK_ENCODE_ADD_SPECIAL, &ids), 0);
    assert_int_equal(ids.n, 1);
    assert_int_equal(ids.ids[0], 1);
    ids.n = 0;
    const char *txt = "<s>Hello</s>";
    assert_int_equal(
        tok_encode(t, txt, strlen(txt), TOK_ENCODE_ADD_SPECIAL | TOK_ENCODE_PARSE_SPECIAL, &ids),
        0);
    /* BOS <s> ▁Hello </s> */
    assert_int_equal(ids.n, 4);
    assert_int_equal(ids.ids[0], 1);
    assert_int_equal(ids.ids[1], 1);
    assert_int_equal(ids.ids[3], 2);
    struct buf b;
    buf_init(&b, 1 << 20);
    assert_int_equal(
        tok_decode(t, ids.ids + 1, ids.n - 1, TOK_DECODE_SPECIAL | TOK_DECODE_STRIP_SPACE, &b), 0);
    assert_string_equal(b.data, txt);
    /* random valid UTF-8 (SentencePiece splits malformed bytes with their neighbours, and
       cannot tell U+2581 from a space) survives, unknown characters through byte fallback */
    uint32_t seed = 99;
    char text[500];
    for (int iter = 0; iter < 200; iter++) {
        size_t n = 0;
        for (int c = 0; c < iter % 100; c++) {
            seed = seed * 1103515245u + 12345u;
            uint32_t r = seed >> 8, cp;
            switch (r % 4) {
            case 0:
                cp = 0x20 + r / 4 % 0x5F;
                break;
            case 1:
                cp = 0x80 + r / 4 % 0x780;
                break;
            case 2:
                cp = 0x800 + r / 4 % 0xF800;
                break;
            default:
                cp = 0x10000 + r / 4 % 0x100000;
                break;
            }
            if ((cp >= 0xD800 && cp <= 0xDFFF) || cp == 0x2581)
                cp = 'x';
            n += tok_utf8_encode(cp, text + n);
        }
        ids.n = 0;
        buf_reset(&b);
        assert_int_equal(tok_encode(t, text, n, 0, &ids), 0);
        assert_int_equal(tok_decode(t, ids.ids, ids.n, TOK_DECODE_STRIP_SPACE, &b), 0);
        assert_int_equal(b.len, n);
        if (n)
            assert_memory_equal(b.data, text, n);
    }
    buf_free(&b);
    tok_ids_free(&ids);
    tok_free(t);
}

/* Word-by-word SentencePiece merging must give exactly the whole-text result. */
static void test_spm_word_split(void **state)
{
    if (!have("vocab/ggml-vocab-llama-spm.gguf"))
        skip();
    struct tokenizer *t = load_vocab("llama-spm");
    assert_true(t->spm_word_split);
    static const char *const parts[] = {
        " ",     "  ",       "the", "The",          " of",
        "\n",    "\t",       "ing", "\xc3\xa9",     "\xf0\x9f\xa6\x99",
        "\xff",  "\xe2\x96", "42",  "\xe4\xb8\xad", "<s>",
        "don't", "   x"};
    uint32_t seed = 5;
    char text[2048];
    struct tok_ids a, b;
    tok_ids_init(&a, 0);
    tok_ids_init(&b, 0);
    for (int iter = 0; iter < 300; iter++) {
        size_t n = 0;
        for (int k = 0; k < iter % 60; k++) {
            seed = seed * 1103515245u + 12345u;
            const char *p = parts[(seed >> 16) % (sizeof parts / sizeof parts[0])];
            memcpy(text + n, p, strlen(p));
            n += strlen(p);
        }
        a.n = b.n = 0;
        t->spm_word_split = 1;
        assert_int_equal(tok_encode(t, text, n, TOK_ENCODE_PARSE_SPECIAL, &a), 0);
        t->spm_word_split = 0;
        assert_int_equal(tok_encode(t, text, n, TOK_ENCODE_PARSE_SPECIAL, &b), 0);
        assert_int_equal(a.n, b.n);
        if (a.n)
            assert_memory_equal(a.ids, b.ids, a.n * sizeof *a.ids);
    }
    tok_ids_free(&a);
    tok_ids_free(&b);
    tok_free(t);
}

static void test_stream_utf8(void **state)
{
    if (!have("vocab/ggml-vocab-llama-spm.gguf"))
        skip();
    struct tokenizer *t = load_vocab("llama-spm");
    /* U+1F999 is not in the vocabulary: four byte tokens */
    const char *txt = "a \xf0\x9f\xa6\x99 b";
    struct tok_ids ids;
    tok_ids_init(&ids, 0);
    assert_int_equal(tok_encode(t, txt, strlen(txt), 0, &ids), 0);
    struct buf out;
    buf_init(&out, 1 << 16);
    struct tok_stream s;
    tok_stream_init(&s, t, 0);
    int saw_hold = 0;
    for (size_t i = 0; i < ids.n; i++) {
        size_t before = out.len;
        assert_int_equal(tok_stream_push(&s, ids.ids[i], &out), 0);
        if (tok_token_type(t, ids.ids[i]) == TOK_TT_BYTE && out.len == before)
            saw_hold = 1;
        /* never ends inside a character */
        for (size_t k = before; k < out.len; k++)
            if (((unsigned char)out.data[k] & 0xC0) == 0xC0)
                assert_true(k + 1 < out.len);
    }
    assert_true(saw_hold);
    assert_int_equal(tok_stream_flush(&s, &out), 0);
    assert_string_equal(out.data, " a \xf0\x9f\xa6\x99 b");
    /* an incomplete tail comes out at flush */
    buf_reset(&out);
    tok_stream_init(&s, t, 0);
    int32_t e2 = tok_lookup(t, "<0xE2>", 6);
    assert_true(e2 >= 0);
    assert_int_equal(tok_stream_push(&s, e2, &out), 0);
    assert_int_equal(out.len, 0);
    assert_int_equal(tok_stream_flush(&s, &out), 0);
    assert_int_equal(out.len, 1);
    buf_free(&out);
    tok_ids_free(&ids);
    tok_free(t);
}

/* Encoding time must grow linearly, also for one huge word or run of spaces. */
static double encode_time(const struct tokenizer *t, const char *text, size_t n)
{
    double best = 1e9;
    for (int rep = 0; rep < 3; rep++) { /* the fastest of three: the machine is shared */
        struct tok_ids ids;
        tok_ids_init(&ids, 0);
        double t0 = now_s();
        assert_int_equal(tok_encode(t, text, n, 0, &ids), 0);
        double dt = now_s() - t0;
        tok_ids_free(&ids);
        if (dt < best)
            best = dt;
    }
    return best;
}

static void test_linear_time(void **state)
{
    if (!have("vocab/ggml-vocab-gpt-2.gguf"))
        skip();
    const char *names[] = {"gpt-2", "llama-spm", "deepseek-llm"};
    const char *san = getenv("AISTACK_SANITIZE");
    size_t n = san && !strcmp(san, "1") ? 5000 : 25000;
    char *text = malloc(8 * n);
    assert_non_null(text);
    for (size_t v = 0; v < 3; v++) {
        struct tokenizer *t = load_vocab(names[v]);
        for (int kind = 0; kind < 3; kind++) {
            for (size_t i = 0; i < 8 * n; i++)
                text[i] = kind == 0 ? ' ' : kind == 1 ? 'a' : "ab cd, ef!\n"[i % 11];
            /* 8x the text: linear is 8x the time, quadratic 64x */
            double a = encode_time(t, text, n), b = encode_time(t, text, 8 * n);
            print_message("%s kind %d: %zu bytes %.1f ms, %zu bytes %.1f ms\n", names[v], kind, n,
                          a * 1e3, 8 * n, b * 1e3);
            assert_true(b < 40 * a + 0.2); /* n log n with cache misses, not n^2 */
        }
        tok_free(t);
    }
    free(text);
}

/* ---- converters ------------------------------------------------------------------ */

static struct gguf_file *write_and_open(struct gguf_writer *w, const char *tag)
{
    char path[256], err[256];
    snprintf(path, sizeof path, "test_tokenizer_%s_%d.gguf", tag, (int)getpid());
    assert_int_equal(gguf_writer_write(w, path), 0);
    struct gguf_file *f = gguf_open(path, err, sizeof err);
    unlink(path);
    if (!f)
        fail_msg("%s", err);
    return f;
}

static void test_convert_spm_model(void **state)
{
    if (!have("tokenizers/llama2-tokenizer.model") || !have("vocab/ggml-vocab-llama-spm.gguf"))
        skip();
    char path[1024], err[256];
    snprintf(path, sizeof path, "%s/testdata/tokenizers/llama2-tokenizer.model", shared_dir());
    struct gguf_writer *w = gguf_writer_new();
    if (tok_convert_spm_model(w, path, err, sizeof err))
        fail_msg("%s", err);
    struct gguf_file *got = write_and_open(w, "spm");
    gguf_writer_free(w);
    snprintf(path, sizeof path, "%s/testdata/vocab/ggml-vocab-llama-spm.gguf", shared_dir());
    struct gguf_file *ref = gguf_open(path, err, sizeof err);
    assert_non_null(ref);
    const char *keys[] = {"tokenizer.ggml.tokens", "tokenizer.ggml.scores",
                          "tokenizer.ggml.token_type"};
    for (int k = 0; k < 3; k++) {
        const struct gguf_kv *a = gguf_find_kv(got, keys[k]), *b = gguf_find_kv(ref, keys[k]);
        assert_non_null(a);
        assert_non_null(b);
        assert_int_equal(a->arr_len, 32000);
        assert_int_equal(a->arr_len, b->arr_len);
        for (uint64_t i = 0; i < a->arr_len; i++) {
            if (k == 0) {
                struct str x, y;
                assert_int_equal(gguf_arr_str(a, i, &x), 0);
                assert_int_equal(gguf_arr_str(b, i, &y), 0);
                assert_int_equal(x.len, y.len);
                assert_memory_equal(x.p, y.p, x.len);
            } else if (k == 1) {
                float x, y;
                assert_int_equal(gguf_arr_f32(a, i, &x), 0);
                assert_int_equal(gguf_arr_f32(b, i, &y), 0);
                assert_true(x == y);
            } else {
                int32_t x, y;
                assert_int_equal(gguf_arr_i32(a, i, &x), 0);
                assert_int_equal(gguf_arr_i32(b, i, &y), 0);
                assert_int_equal(x, y);
            }
        }
    }
    uint32_t v;
    assert_int_equal(gguf_get_u32(got, "tokenizer.ggml.bos_token_id", &v), 0);
    assert_int_equal(v, 1);
    assert_int_equal(gguf_get_u32(got, "tokenizer.ggml.eos_token_id", &v), 0);
    assert_int_equal(v, 2);
    gguf_close(got);
    gguf_close(ref);
    /* hostile inputs: truncations and garbage are errors */
    static const uint8_t bad[][6] = {
        {0x0a, 0x05, 0x0a}, {0x0b}, {0x0a, 0xff, 0xff, 0xff, 0xff, 0x7f}};
    for (int i = 0; i < 3; i++) {
        w = gguf_writer_new();
        assert_int_not_equal(tok_convert_spm_model_mem(w, bad[i], sizeof bad[i], err, sizeof err),
                             0);
        gguf_writer_free(w);
    }
}

/* A second real SentencePiece model: converts, loads and round-trips text. */
static void test_convert_spm_model_mistral(void **state)
{
    if (!have("tokenizers/mistral-v1-tokenizer.model"))
        skip();
    char path[1024], err[256];
    snprintf(path, sizeof path, "%s/testdata/tokenizers/mistral-v1-tokenizer.model", shared_dir());
    struct gguf_writer *w = gguf_writer_new();
    if (tok_convert_spm_model(w, path, err, sizeof err))
        fail_msg("%s", err);
    struct gguf_file *f = write_and_open(w, "mistral");
    gguf_writer_free(w);
    struct tokenizer *t = tok_new_from_gguf(f, err, sizeof err);
    gguf_close(f);
    if (!t)
        fail_msg("%s", err);
    assert_int_equal(tok_n_vocab(t), 32000);
    assert_int_equal(tok_token_type(t, 0), TOK_TT_UNKNOWN);
    assert_int_equal(tok_token_type(t, 1), TOK_TT_CONTROL);
    assert_true(tok_lookup(t, "<0xFF>", 6) >= 0);
    const char *txt = "Hello world! Привет, мир. 🦙 x  y\n\tz";
    struct tok_ids ids;
    tok_ids_init(&ids, 0);
    assert_int_equal(tok_encode(t, txt, strlen(txt), TOK_ENCODE_ADD_SPECIAL, &ids), 0);
    assert_int_equal(ids.ids[0], 1);
    assert_true(ids.n < strlen(txt)); /* merges happened */
    struct buf b;
    buf_init(&b, 1 << 16);
    assert_int_equal(tok_decode(t, ids.ids + 1, ids.n - 1, TOK_DECODE_STRIP_SPACE, &b), 0);
    assert_string_equal(b.data, txt);
    buf_free(&b);
    tok_ids_free(&ids);
    tok_free(t);
}

static void test_convert_hf_json(void **state)
{
    if (!have("tokenizers/smollm-tokenizer.json"))
        skip();
    char path[1024], err[256];
    snprintf(path, sizeof path, "%s/testdata/tokenizers/smollm-tokenizer.json", shared_dir());
    struct gguf_writer *w = gguf_writer_new();
    if (tok_convert_hf_json(w, path, NULL, err, sizeof err))
        fail_msg("%s", err);
    struct gguf_file *f = write_and_open(w, "hf");
    gguf_writer_free(w);
    struct str pre;
    assert_int_equal(gguf_get_str(f, "tokenizer.ggml.pre", &pre), 0);
    assert_int_equal(pre.len, 6);
    assert_memory_equal(pre.p, "smollm", 6);
    assert_int_equal(gguf_find_kv(f, "tokenizer.ggml.merges")->arr_len, 48900);
    struct tokenizer *t = tok_new_from_gguf(f, err, sizeof err);
    gguf_close(f);
    if (!t)
        fail_msg("%s", err);
    assert_int_equal(tok_n_vocab(t), 49153);
    assert_int_equal(tok_token_type(t, 0), TOK_TT_CONTROL);
    assert_int_equal(tok_lookup(t, "<|im_end|>", 10), 2);
    assert_true(tok_is_eog(t, 2));
    /* whole words merge to their vocabulary entries; digits are split one by one */
    const char *txt = "Hello world 2024<|im_start|>";
    struct tok_ids ids;
    tok_ids_init(&ids, 0);
    assert_int_equal(tok_encode(t, txt, strlen(txt), TOK_ENCODE_PARSE_SPECIAL, &ids), 0);
    const char *want[] = {"Hello", "\xc4\xa0world", "\xc4\xa0", "2", "0", "2", "4", "<|im_start|>"};
    assert_int_equal(ids.n, 8);
    for (int i = 0; i < 8; i++)
        assert_int_equal(ids.ids[i], tok_lookup(t, want[i], strlen(want[i])));
    tok_ids_free(&ids);
    tok_free(t);
    /* malformed JSON is an error */
    w = gguf_writer_new();
    assert_int_not_equal(tok_convert_hf_json_mem(w, "{\"model\":{\"type\":\"BPE\",\"vocab\":[]}",
                                                 33, NULL, err, sizeof err),
                         0);
    assert_int_not_equal(tok_convert_hf_json_mem(w, "{", 1, NULL, err, sizeof err), 0);
    gguf_writer_free(w);
}

/* A SentencePiece-style tokenizer.json (byte fallback, "▁"): scores replay the merges. */
static void test_convert_hf_json_spm(void **state)
{
    static const char json[] =
        "{\"normalizer\":{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"Prepend\","
        "\"prepend\":\"\u2581\"},{\"type\":\"Replace\"}]},"
        "\"decoder\":{\"type\":\"Sequence\",\"decoders\":[{\"type\":\"ByteFallback\"}]},"
        "\"added_tokens\":[{\"id\":0,\"content\":\"<unk>\",\"special\":true},"
        "{\"id\":1,\"content\":\"<s>\",\"special\":true},"
        "{\"id\":2,\"content\":\"</s>\",\"special\":true}],"
        "\"model\":{\"type\":\"BPE\",\"byte_fallback\":true,\"vocab\":{\"<unk>\":0,\"<s>\":1,"
        "\"</s>\":2,\"<0x41>\":3,\"\u2581\":4,\"a\":5,\"b\":6,\"\u2581a\":7,\"ab\":8,"
        "\"\u2581ab\":9},\"merges\":[\"\u2581 a\",\"a b\",\"\u2581a b\"]}}";
    char err[256];
    struct gguf_writer *w = gguf_writer_new();
    if (tok_convert_hf_json_mem(w, json, sizeof json - 1, NULL, err, sizeof err))
        fail_msg("%s", err);
    struct gguf_file *f = write_and_open(w, "hfspm");
    gguf_writer_free(w);
    struct tokenizer *t = tok_new_from_gguf(f, err, sizeof err);
    gguf_close(f);
    if (!t)
        fail_msg("%s", err);
    assert_int_equal(tok_model(t), TOK_MODEL_SPM);
    assert_int_equal(tok_bos(t), 1);
    assert_int_equal(tok_token_type(t, 3), TOK_TT_BYTE);
    struct tok_ids ids;
    tok_ids_init(&ids, 0);
    assert_int_equal(tok_encode(t, "ab ab A", 7, TOK_ENCODE_ADD_SPECIAL, &ids), 0);
    const int32_t want[] = {1, 9, 9, 4, 3};
    assert_int_equal(ids.n, 5);
    assert_memory_equal(ids.ids, want, sizeof want);
    struct buf b;
    buf_init(&b, 1024);
    assert_int_equal(tok_decode(t, ids.ids, ids.n, TOK_DECODE_STRIP_SPACE, &b), 0);
    assert_string_equal(b.data, "ab ab A");
    buf_free(&b);
    tok_ids_free(&ids);
    tok_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pretok_gpt2),
        cmocka_unit_test(test_pretok_default),
        cmocka_unit_test(test_pretok_starcoder),
        cmocka_unit_test(test_pretok_falcon),
        cmocka_unit_test(test_pretok_deepseek_coder),
        cmocka_unit_test(test_pretok_deepseek_llm),
        cmocka_unit_test(test_pretok_llama3_qwen2),
        cmocka_unit_test(test_pretok_invalid_utf8),
        cmocka_unit_test(test_small_bpe_specials),
        cmocka_unit_test(test_small_bpe_roundtrip_bytes),
        cmocka_unit_test(test_partition_matches_reference),
        cmocka_unit_test(test_bad_vocab),
        cmocka_unit_test(test_gpt2_random_bytes),
        cmocka_unit_test(test_spm_bos_and_roundtrip),
        cmocka_unit_test(test_spm_word_split),
        cmocka_unit_test(test_stream_utf8),
        cmocka_unit_test(test_linear_time),
        cmocka_unit_test(test_convert_spm_model),
        cmocka_unit_test(test_convert_spm_model_mistral),
        cmocka_unit_test(test_convert_hf_json),
        cmocka_unit_test(test_convert_hf_json_spm),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
