/*
 * tokenizer.h - text <-> token ids for the models the engine runs.
 *
 * Rebuilt from GGUF tokenizer metadata (tokenizer.ggml.*): SentencePiece-style
 * ("llama": score-driven merges, byte fallback, "▁" for spaces) and byte-level
 * BPE ("gpt2": merge ranks over the GPT-2 byte alphabet, with the regex
 * pre-tokenizer tokenizer.ggml.pre names). Output matches llama.cpp token for
 * token. Special tokens (control / user-defined) are matched in text as
 * llama.cpp does: user-defined always, control and unknown ones only with
 * TOK_ENCODE_PARSE_SPECIAL. A tokenizer is immutable after tok_new() and may be
 * shared by threads. Not for: chat template rendering (see jinja.h), training
 * tokenizers, converting tokenizer files (see tok_convert.h).
 */
#ifndef AISTACK_ENGINE_TOKENIZER_H
#define AISTACK_ENGINE_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

struct gguf_file;
struct tokenizer;

/* tokenizer.ggml.model */
enum tok_model {
    TOK_MODEL_SPM = 1, /* "llama" */
    TOK_MODEL_BPE = 2, /* "gpt2" */
};

/* tokenizer.ggml.token_type values (SentencePiece's piece types). */
enum tok_token_type {
    TOK_TT_UNDEFINED = 0,
    TOK_TT_NORMAL = 1,
    TOK_TT_UNKNOWN = 2,
    TOK_TT_CONTROL = 3,
    TOK_TT_USER_DEFINED = 4,
    TOK_TT_UNUSED = 5,
    TOK_TT_BYTE = 6,
};

/* Upper bounds on vocabularies we accept from files. */
#define TOK_MAX_VOCAB       (1u << 22)
#define TOK_MAX_MERGES      (1u << 23)
#define TOK_MAX_TOKEN_BYTES 65536u

/*
 * A vocabulary as plain arrays, everything borrowed for the duration of
 * tok_new() only (the tokenizer copies what it keeps). Ids that are absent are -1.
 */
struct tok_vocab_desc {
    const char *model; /* "llama" or "gpt2" */
    const char *pre;   /* tokenizer.ggml.pre; NULL or "" = "default" */
    const char *name;  /* general.name, may be NULL (a few models need per-name rules) */
    uint32_t n_tokens;
    const struct str *tokens; /* (n_tokens) */
    const float *scores;      /* (n_tokens) or NULL (all 0) */
    const int32_t *types;     /* (n_tokens) enum tok_token_type, or NULL (all normal) */
    uint32_t n_merges;
    const struct str *merges;               /* (n_merges) "left right", rank = index; BPE only */
    int32_t bos, eos, unk, pad, eot, eom;   /* -1 = absent (model defaults apply to bos/eos/unk) */
    int add_bos, add_eos, add_space_prefix; /* -1 = model default */
    struct str chat_template;               /* may be empty */
};

/* Builds a tokenizer. NULL with a message in err on a bad vocabulary. */
struct tokenizer *tok_new(const struct tok_vocab_desc *d, char *err, size_t errlen);
/* Builds a tokenizer from a GGUF file's tokenizer.ggml.* metadata (f may be closed afterwards). */
struct tokenizer *tok_new_from_gguf(const struct gguf_file *f, char *err, size_t errlen);
/* Frees. Accepts NULL. */
void tok_free(struct tokenizer *t);

/* A growable id array with a hard maximum; tok_ids_free() releases it. */
struct tok_ids {
    int32_t *ids;
    size_t n, cap;
    size_t max; /* 0 = no limit beyond memory */
};
void tok_ids_init(struct tok_ids *v, size_t max);
void tok_ids_free(struct tok_ids *v);
/* Appends one id. 0 or AS_ENOMEM (also when max is reached). */
int tok_ids_push(struct tok_ids *v, int32_t id);

/* Add BOS/EOS as the vocabulary asks (add_bos/add_eos). */
#define TOK_ENCODE_ADD_SPECIAL 1u
/* Match control tokens written in the text (user-defined ones always match). */
#define TOK_ENCODE_PARSE_SPECIAL 2u

/*
 * Appends the ids of text[0..len) (any bytes; invalid UTF-8 is kept byte for
 * byte where the vocabulary can express it) to out. Never quadratic in len.
 * Thread-safe on a shared tokenizer (all scratch memory is per call).
 * Returns 0, AS_ENOMEM (out's maximum reached or allocation failure) or
 * AS_ERANGE (text over 1 GiB).
 */
int tok_encode(const struct tokenizer *t, const char *text, size_t len, unsigned flags,
               struct tok_ids *out);

/* Render control/unknown tokens' text (else they are dropped; user-defined ones always show). */
#define TOK_DECODE_SPECIAL 1u
/*
 * SentencePiece with add_space_prefix: drop the space the encoder put before
 * the text at the start and after special tokens.
 */
#define TOK_DECODE_STRIP_SPACE 2u

/*
 * Appends the text of one token to out (bytes exactly; byte tokens are one
 * byte, possibly half a character). Returns 0, AS_EINVAL (id out of range) or
 * AS_ENOMEM.
 */
int tok_piece(const struct tokenizer *t, int32_t id, unsigned flags, struct buf *out);
/*
 * Appends the text of ids[0..n) to out. With TOK_DECODE_STRIP_SPACE (and
 * TOK_DECODE_SPECIAL if control tokens were parsed), decoding the ids of x
 * without the added BOS/EOS gives x back: any bytes for byte-level BPE, valid
 * UTF-8 without U+2581 for SentencePiece. 0, AS_EINVAL (bad id) or AS_ENOMEM.
 */
int tok_decode(const struct tokenizer *t, const int32_t *ids, size_t n, unsigned flags,
               struct buf *out);

/*
 * Streaming detokenizer: push generated ids one at a time; only complete UTF-8
 * characters come out, an incomplete tail waits for the next token (a sequence
 * that turns out malformed is passed through as is, so the concatenated output
 * always equals tok_decode() of all ids). Caller-allocated, no heap.
 */
struct tok_stream {
    const struct tokenizer *t;
    unsigned flags;
    int after_special; /* for TOK_DECODE_STRIP_SPACE */
    uint8_t pend[4];
    size_t npend;
};
void tok_stream_init(struct tok_stream *s, const struct tokenizer *t, unsigned flags);
/* Appends whatever complete text token id completes. 0, AS_EINVAL or AS_ENOMEM. */
int tok_stream_push(struct tok_stream *s, int32_t id, struct buf *out);
/* Appends any held-back bytes (end of generation). 0 or AS_ENOMEM. */
int tok_stream_flush(struct tok_stream *s, struct buf *out);

/* ---- vocabulary facts ------------------------------------------------------ */
enum tok_model tok_model(const struct tokenizer *t);
uint32_t tok_n_vocab(const struct tokenizer *t);
int32_t tok_bos(const struct tokenizer *t); /* -1 when absent */
int32_t tok_eos(const struct tokenizer *t);
int32_t tok_eot(const struct tokenizer *t); /* end of turn (<|eot_id|>, <|im_end|>, ...) */
int32_t tok_unk(const struct tokenizer *t);
int32_t tok_pad(const struct tokenizer *t);
int tok_add_bos(const struct tokenizer *t);
int tok_add_eos(const struct tokenizer *t);
/* 1 if id ends generation (EOS, EOT, EOM and the usual end-of-turn tokens). */
int tok_is_eog(const struct tokenizer *t, int32_t id);
/* 1 if id is a control/unknown token (not shown unless asked). */
int tok_is_control(const struct tokenizer *t, int32_t id);
/* The token's stored text (GGUF form: "▁" / byte-encoded), empty for a bad id. */
struct str tok_token_text(const struct tokenizer *t, int32_t id);
enum tok_token_type tok_token_type(const struct tokenizer *t, int32_t id);
/* Id of the token whose stored text is exactly s[0..len), or -1. */
int32_t tok_lookup(const struct tokenizer *t, const char *s, size_t len);
/* tokenizer.chat_template (empty if none); lives as long as t. */
struct str tok_chat_template(const struct tokenizer *t);

#endif
