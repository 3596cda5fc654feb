/*
 * tok_internal.h - shared internals of the tokenizer files (tokenizer.c,
 * tok_spm.c, tok_bpe.c, tok_pretok.c). Not a public interface.
 */
#ifndef AISTACK_ENGINE_TOK_INTERNAL_H
#define AISTACK_ENGINE_TOK_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "engine/tokenizer.h"

/* Token attributes beyond the GGUF type (llama.cpp's per-model rules). */
#define TOK_ATTR_LSTRIP 1u
#define TOK_ATTR_RSTRIP 2u

/* Pre-tokenizers: the regex sets that tokenizer.ggml.pre selects. */
enum tok_pre {
    TOK_PRE_DEFAULT = 0,
    TOK_PRE_LLAMA3, /* llama3, llama-bpe, dbrx, smaug-bpe, ... */
    TOK_PRE_QWEN2,  /* qwen2, stablelm2, ... */
    TOK_PRE_GPT2,   /* gpt-2, mpt, olmo, ... */
    TOK_PRE_DEEPSEEK_LLM,
    TOK_PRE_DEEPSEEK_CODER,
    TOK_PRE_FALCON,
    TOK_PRE_STARCODER, /* starcoder, refact, smollm, command-r, ... */
};

/*
 * Open-addressing map from a string key to an index. Keys live outside the map
 * (keys[idx]); slots hold idx + 1, 0 = empty. Capacity is a power of two at
 * least twice the number of keys, so probes stay short.
 */
struct tok_strmap {
    uint32_t *slots;
    uint32_t *hashes;
    uint32_t mask;
};

uint32_t tok__hash(const char *p, size_t n);
/* 0 or AS_ENOMEM. */
int tok__strmap_init(struct tok_strmap *m, uint32_t n_keys);
void tok__strmap_free(struct tok_strmap *m);
/* Inserts idx under keys[idx]; with replace=0 an existing equal key is kept. */
void tok__strmap_put(struct tok_strmap *m, const struct str *keys, uint32_t idx, int replace);
/* Index of key p[0..n) or -1. */
int64_t tok__strmap_get(const struct tok_strmap *m, const struct str *keys, const char *p,
                        size_t n);

struct tokenizer {
    enum tok_model model;
    enum tok_pre pre;
    int ignore_merges; /* BPE: a pre-token that is itself a token is not merged */
    uint32_t n_vocab;
    struct str *text; /* (n_vocab) into blob */
    float *score;     /* (n_vocab) */
    uint8_t *type;    /* (n_vocab) enum tok_token_type */
    uint8_t *attr;    /* (n_vocab) TOK_ATTR_* */
    uint8_t *eog;     /* (n_vocab) 1 = ends generation */
    char *blob;
    struct tok_strmap tokmap;
    size_t max_token_len;
    int spm_word_split; /* SPM: no token has "▁" after another character */

    /* BPE merges: key "left right", left part length, rank = index */
    uint32_t n_merges;
    struct str *merge;
    uint32_t *merge_split;
    char *merge_blob;
    struct tok_strmap mergemap;
    size_t max_merge_len;

    int32_t byte_tok[256]; /* SPM byte fallback / BPE single-byte tokens; -1 absent */

    int32_t *special; /* specials to match in text, longest first */
    uint32_t n_special;
    /* byte trie of the specials' texts: finds every occurrence in one pass */
    uint32_t trie_nodes;
    uint8_t *trie_term;  /* (trie_nodes) 1 = a special's text ends here */
    uint64_t *trie_keys; /* hash of (parent << 8 | byte) + 1, 0 = empty */
    uint32_t *trie_child;
    uint32_t trie_mask;
    uint32_t *special_node; /* (n_special) trie node where special i ends */
    size_t max_special_len;

    int32_t bos, eos, eot, eom, unk, pad;
    int add_bos, add_eos, add_space_prefix;
    char *chat_template;
    size_t chat_template_len;
};

static inline int tok__valid_id(const struct tokenizer *t, int32_t id)
{
    return id >= 0 && (uint32_t)id < t->n_vocab;
}

/* Child of trie node `node` for byte c, or 0 (the root is never a child). */
static inline uint32_t tok__trie_child(const struct tokenizer *t, uint32_t node, uint8_t c)
{
    uint64_t key = ((uint64_t)node << 8 | c) + 1;
    for (uint32_t i = (uint32_t)((key * 0x9E3779B97F4A7C15ull) >> 32) & t->trie_mask;;
         i = (i + 1) & t->trie_mask) {
        if (t->trie_keys[i] == key)
            return t->trie_child[i];
        if (t->trie_keys[i] == 0)
            return 0;
    }
}

/* Writes "tokenizer: MSG[ ARG]" into err (arg may be NULL). */
void tok__err(char *err, size_t errlen, const char *msg, const char *arg);

/* Scratch arrays reused across the pieces of one tok_encode() call. */
struct tok_scratch {
    char *bytes;
    size_t bytes_cap;
    void *sym;
    size_t sym_cap;
    void *heap;
    size_t heap_cap;
    uint32_t *cpt;
    uint8_t *cflags;
    uint32_t *coff;
    size_t cpt_cap;
    uint32_t *spans[2];
    size_t spans_cap[2];
};
void tok__scratch_free(struct tok_scratch *s);
/* Grows *p to hold n elements of size sz. 0 or AS_ENOMEM. */
int tok__grow(void **p, size_t *cap, size_t n, size_t sz);

/* SentencePiece merge of one text fragment (spaces already escaped). */
int tok__spm_encode(const struct tokenizer *t, const char *text, size_t len, struct tok_scratch *s,
                    struct tok_ids *out);
/* Byte-level BPE of one text fragment: pre-tokenize, byte-encode, merge. */
int tok__bpe_encode(const struct tokenizer *t, const char *text, size_t len, struct tok_scratch *s,
                    struct tok_ids *out);
/*
 * Splits text into pre-tokens. On success *spans holds *n_spans pairs
 * (byte offset, byte length) covering text in order (points into s).
 */
int tok__pretok_split(enum tok_pre pre, const char *text, size_t len, struct tok_scratch *s,
                      const uint32_t **spans, size_t *n_spans);
/* Maps a tokenizer.ggml.pre name; AS_EUNSUP for names we do not know. */
int tok__pre_from_name(const char *name, enum tok_pre *out, int *ignore_merges);

/* GPT-2 byte <-> unicode alphabet. */
uint32_t tok__byte_to_cpt(uint8_t b);
/* Byte for a code point of the alphabet, or -1. */
int tok__cpt_to_byte(uint32_t cp);

/* One merge candidate: a min-heap on (key, left). */
struct tok_bigram {
    float key;
    int32_t left, right;
    uint32_t size;
};

static inline int tok__bigram_less(const struct tok_bigram *a, const struct tok_bigram *b)
{
    return a->key < b->key || (a->key == b->key && a->left < b->left);
}

static inline void tok__heap_push(struct tok_bigram *h, size_t *n, struct tok_bigram v)
{
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!tok__bigram_less(&v, &h[p]))
            break;
        h[i] = h[p];
        i = p;
    }
    h[i] = v;
}

static inline struct tok_bigram tok__heap_pop(struct tok_bigram *h, size_t *n)
{
    struct tok_bigram top = h[0], last = h[--(*n)];
    size_t i = 0, m = *n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= m)
            break;
        if (c + 1 < m && tok__bigram_less(&h[c + 1], &h[c]))
            c++;
        if (!tok__bigram_less(&h[c], &last))
            break;
        h[i] = h[c];
        i = c;
    }
    if (m > 0)
        h[i] = last;
    return top;
}

/* A symbol of the merge loops: a byte range of the working text in a linked list. */
struct tok_sym {
    uint32_t start, n;
    int32_t prev, next;
};

#endif
