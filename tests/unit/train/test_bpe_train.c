/*
 * test_bpe_train.c - BPE training on the default task's corpus: the written
 * GGUF loads in the engine's tokenizer, every byte string round-trips, the
 * learned merges shorten the corpus, digits stay one token each (qwen2
 * pre-tokenizer), and special tokens are single control tokens.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/buf.h"
#include "engine/gguf.h"
#include "engine/tokenizer.h"
#include "train/bpe_train.h"
#include "train/task.h"

static const char *const specials[] = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};

static void test_train_roundtrip(void **state)
{
    (void)state;
    char err[256];
    struct bpe_trainer *b = bpe_new("qwen2", err, sizeof err);
    assert_non_null(b);
    assert_null(bpe_new("no-such-pre", err, sizeof err));
    uint64_t rng = 5;
    struct buf corpus;
    buf_init(&corpus, 1 << 24);
    for (int i = 0; i < 3000; i++) {
        struct task_item it;
        task_sample(&rng, TASK_TRAIN, &it);
        buf_printf(&corpus, "user\n%s\nassistant\n%s\n", it.question, it.answer);
    }
    assert_int_equal(bpe_add_text(b, corpus.data, corpus.len), 0);
    assert_int_equal(bpe_train(b, 400, specials, 3, NULL), 0);
    assert_true(bpe_vocab_size(b) <= 400);
    assert_true(bpe_vocab_size(b) > 300);
    assert_int_equal(bpe_special_id(b, "<|im_end|>"), (int32_t)bpe_vocab_size(b) - 1);

    struct gguf_writer *w = gguf_writer_new();
    assert_int_equal(bpe_write_gguf(b, w, NULL, "<|im_end|>", task_chat_template), 0);
    char path[] = "/tmp/aistack-bpe-XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    assert_int_equal(gguf_writer_write(w, path), 0);
    gguf_writer_free(w);
    struct gguf_file *f = gguf_open(path, err, sizeof err);
    assert_non_null(f);
    struct tokenizer *t = tok_new_from_gguf(f, err, sizeof err);
    if (!t)
        fail_msg("%s", err);
    assert_int_equal(tok_n_vocab(t), bpe_vocab_size(b));
    assert_int_equal(tok_eos(t), bpe_special_id(b, "<|im_end|>"));

    /* the corpus compresses well and decodes back exactly */
    struct tok_ids ids;
    struct buf out;
    tok_ids_init(&ids, 0);
    buf_init(&out, 1 << 24);
    assert_int_equal(tok_encode(t, corpus.data, corpus.len, 0, &ids), 0);
    assert_true(ids.n * 3 < corpus.len * 2); /* > 1.5 bytes per token; bytes alone give 1 */
    assert_int_equal(tok_decode(t, ids.ids, ids.n, 0, &out), 0);
    assert_int_equal(out.len, corpus.len);
    assert_memory_equal(out.data, corpus.data, corpus.len);

    /* digits are single tokens; specials parse as one control token each */
    ids.n = 0;
    const char *s = "<|im_start|>user\n12345<|im_end|>";
    assert_int_equal(tok_encode(t, s, strlen(s), TOK_ENCODE_PARSE_SPECIAL, &ids), 0);
    assert_int_equal(ids.ids[0], bpe_special_id(b, "<|im_start|>"));
    assert_int_equal(ids.ids[ids.n - 1], bpe_special_id(b, "<|im_end|>"));
    int digits = 0;
    for (size_t i = 0; i < ids.n; i++) {
        struct str p = tok_token_text(t, ids.ids[i]);
        if (p.len == 1 && p.p[0] >= '0' && p.p[0] <= '9')
            digits++;
    }
    assert_int_equal(digits, 5);

    /* arbitrary bytes round-trip */
    unsigned seed = 3;
    for (int r = 0; r < 200; r++) {
        char raw[64];
        size_t n = (size_t)(rand_r(&seed) % 64);
        for (size_t i = 0; i < n; i++)
            raw[i] = (char)rand_r(&seed);
        ids.n = 0;
        buf_reset(&out);
        assert_int_equal(tok_encode(t, raw, n, 0, &ids), 0);
        assert_int_equal(tok_decode(t, ids.ids, ids.n, 0, &out), 0);
        assert_int_equal(out.len, n);
        assert_memory_equal(out.data, raw, n);
    }
    tok_ids_free(&ids);
    buf_free(&out);
    buf_free(&corpus);
    tok_free(t);
    gguf_close(f);
    unlink(path);
    bpe_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_train_roundtrip)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
