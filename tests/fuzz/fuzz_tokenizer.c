/*
 * fuzz_tokenizer.c - libFuzzer target for encoding and decoding.
 *
 * Two small vocabularies are built in memory once: a byte-level BPE one (the
 * 256 byte tokens, a few merges, a control and a user-defined token) and a
 * SentencePiece one (byte fallback, a few pieces, <s>/</s>). The first input
 * byte picks the vocabulary / pre-tokenizer and flags, the rest is the text.
 * Checked: every id is in range, pre-token spans tile the text, byte-level
 * BPE decodes back to the exact input, SentencePiece does for valid UTF-8
 * without U+2581 and '<', SentencePiece's word-by-word merging equals
 * whole-text merging, and the streaming decoder's output equals the one-shot
 * decode.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "engine/tok_internal.h"
#include "engine/tok_unicode.h"
#include "engine/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const pre_names[] = {"default",      "llama3",         "qwen2",  "gpt-2",
                                        "deepseek-llm", "deepseek-coder", "falcon", "starcoder"};
static struct tokenizer *bpe[8], *spm;

static struct tokenizer *make_bpe(const char *pre)
{
    static char storage[256][3];
    struct str tokens[270];
    int32_t types[270];
    uint32_t n = 0;
    for (int b = 0; b < 256; b++) {
        size_t k = tok_utf8_encode(tok__byte_to_cpt((uint8_t)b), storage[b]);
        tokens[n] = (struct str){storage[b], k};
        types[n++] = TOK_TT_NORMAL;
    }
    static const char *const extra[] = {"\xc4\xa0t", "he",      "\xc4\xa0the", "in",
                                        "ing",       "<|eot|>", "<ud>"};
    static const int32_t et[] = {1, 1, 1, 1, 1, TOK_TT_CONTROL, TOK_TT_USER_DEFINED};
    for (int i = 0; i < 7; i++) {
        tokens[n] = (struct str){extra[i], strlen(extra[i])};
        types[n++] = et[i];
    }
    static const struct str merges[] = {
        {"\xc4\xa0 t", 4}, {"h e", 3}, {"\xc4\xa0t he", 7}, {"i n", 3}, {"in g", 4}};
    struct tok_vocab_desc d = {.model = "gpt2",
                               .pre = pre,
                               .n_tokens = n,
                               .tokens = tokens,
                               .types = types,
                               .n_merges = 5,
                               .merges = merges,
                               .bos = 261,
                               .eos = 261,
                               .unk = -1,
                               .pad = -1,
                               .eot = -1,
                               .eom = -1,
                               .add_bos = 1,
                               .add_eos = 1,
                               .add_space_prefix = -1};
    char err[128];
    return tok_new(&d, err, sizeof err);
}

static struct tokenizer *make_spm(void)
{
    static char names[256][8];
    struct str tokens[270];
    float scores[270];
    int32_t types[270];
    uint32_t n = 0;
    static const char *const head[] = {"<unk>", "<s>", "</s>"};
    for (int i = 0; i < 3; i++) {
        tokens[n] = (struct str){head[i], strlen(head[i])};
        scores[n] = 0;
        types[n++] = i == 0 ? TOK_TT_UNKNOWN : TOK_TT_CONTROL;
    }
    for (int b = 0; b < 256; b++) {
        snprintf(names[b], sizeof names[b], "<0x%02X>", b);
        tokens[n] = (struct str){names[b], 6};
        scores[n] = 0;
        types[n++] = TOK_TT_BYTE;
    }
    static const char *const pieces[] = {
        "\xe2\x96\x81", "\xe2\x96\x81t", "he", "\xe2\x96\x81the", "a", "t", "h", "e", "\xc3\xa9"};
    for (int i = 0; i < 9; i++) {
        tokens[n] = (struct str){pieces[i], strlen(pieces[i])};
        scores[n] = -(float)i;
        types[n++] = TOK_TT_NORMAL;
    }
    struct tok_vocab_desc d = {.model = "llama",
                               .n_tokens = n,
                               .tokens = tokens,
                               .scores = scores,
                               .types = types,
                               .bos = 1,
                               .eos = 2,
                               .unk = 0,
                               .pad = -1,
                               .eot = -1,
                               .eom = -1,
                               .add_bos = -1,
                               .add_eos = -1,
                               .add_space_prefix = -1};
    char err[128];
    return tok_new(&d, err, sizeof err);
}

static int valid_utf8_plain(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t k = tok_utf8_decode(p + i, n - i, &cp);
        if ((cp == TOK_CPT_INVALID && !(k == 3 && p[i] == 0xEF)) || cp == 0x2581 || cp == '<')
            return 0;
        i += k;
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!spm) {
        for (int i = 0; i < 8; i++)
            if (!(bpe[i] = make_bpe(pre_names[i])))
                abort();
        if (!(spm = make_spm()) || !spm->spm_word_split)
            abort();
    }
    if (size < 1)
        return 0;
    unsigned sel = data[0] % 9, flags = (data[0] >> 4) & 3u;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    const struct tokenizer *t = sel < 8 ? bpe[sel] : spm;

    if (sel < 8) { /* spans tile the text */
        struct tok_scratch s = {0};
        const uint32_t *sp;
        size_t n, off = 0;
        if (tok__pretok_split(t->pre, text, len, &s, &sp, &n) == 0)
            for (size_t k = 0; k < n; k++) {
                if (sp[2 * k] != off || sp[2 * k + 1] == 0)
                    abort();
                off += sp[2 * k + 1];
            }
        if (off != len)
            abort();
        tok__scratch_free(&s);
    }

    struct tok_ids ids;
    struct buf a, b;
    tok_ids_init(&ids, 0);
    buf_init(&a, 1 << 24);
    buf_init(&b, 1 << 24);
    if (tok_encode(t, text, len, flags, &ids))
        abort();
    for (size_t i = 0; i < ids.n; i++)
        if (ids.ids[i] < 0 || (uint32_t)ids.ids[i] >= tok_n_vocab(t))
            abort();
    if (sel == 8) { /* word-by-word merging equals whole-text merging */
        struct tok_ids whole;
        tok_ids_init(&whole, 0);
        spm->spm_word_split = 0;
        int rc = tok_encode(spm, text, len, flags, &whole);
        spm->spm_word_split = 1;
        if (rc || whole.n != ids.n ||
            (ids.n && memcmp(whole.ids, ids.ids, ids.n * sizeof *ids.ids)))
            abort();
        tok_ids_free(&whole);
    }
    /* without the BOS/EOS the encoder added, decoding gives the text back */
    size_t first = (flags & TOK_ENCODE_ADD_SPECIAL) && tok_add_bos(t) ? 1 : 0;
    size_t last = ids.n - ((flags & TOK_ENCODE_ADD_SPECIAL) && tok_add_eos(t) ? 1 : 0);
    unsigned dflags = TOK_DECODE_STRIP_SPACE | TOK_DECODE_SPECIAL;
    if (last > first && tok_decode(t, ids.ids + first, last - first, dflags, &a))
        abort();
    int exact = sel < 8 || valid_utf8_plain((const uint8_t *)text, len);
    if (exact && (a.len != len || (len && memcmp(a.data, text, len))))
        abort();
    struct tok_stream st;
    tok_stream_init(&st, t, dflags);
    for (size_t i = first; i < last; i++)
        if (tok_stream_push(&st, ids.ids[i], &b))
            abort();
    if (tok_stream_flush(&st, &b) || a.len != b.len || (a.len && memcmp(a.data, b.data, a.len)))
        abort();
    tok_ids_free(&ids);
    buf_free(&a);
    buf_free(&b);
    return 0;
}
