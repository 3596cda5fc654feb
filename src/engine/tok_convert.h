/*
 * tok_convert.h - tokenizer files as models ship them -> GGUF tokenizer metadata.
 *
 * Each converter reads one file format and sets the tokenizer.ggml.* keys
 * (model, pre, tokens, token_type, scores or merges, special ids, add_bos /
 * add_eos, add_space_prefix) on a GGUF writer; the caller adds the rest of
 * the model (general.*, tensors) and writes the file. Inputs are untrusted:
 * sizes and counts are bounded, malformed files are an error message.
 * Not for: tokenizing (tokenizer.h), training vocabularies.
 */
#ifndef AISTACK_ENGINE_TOK_CONVERT_H
#define AISTACK_ENGINE_TOK_CONVERT_H

#include <stddef.h>
#include <stdint.h>

struct gguf_writer;

/* Largest tokenizer file accepted (bytes). */
#define TOK_CONVERT_MAX_FILE (256u << 20)

/* Which model family a tiktoken rank file belongs to (decides the special tokens). */
enum tok_tiktoken_flavor {
    /* Llama 3.x: pre "llama-bpe", 256 specials from 128000 (<|begin_of_text|>, ...,
       <|eot_id|> = 128009, <|reserved_special_token_N|>), bos 128000, eos 128001,
       eot 128009, add_bos */
    TOK_TIKTOKEN_LLAMA3 = 1,
    /* Qwen2/2.5: pre "qwen2", <|endoftext|> 151643 (bos, eos, pad), <|im_start|> 151644,
       <|im_end|> 151645 (eot), no add_bos */
    TOK_TIKTOKEN_QWEN2 = 2,
};

/*
 * tiktoken ranks ("base64 rank" per line): tokens are the ranks in GPT-2's byte
 * alphabet, merges are recovered by re-running BPE on each token with the
 * lower ranks, the flavor's special tokens follow the ranks. 0 or AS_E* with
 * a message in err.
 */
int tok_convert_tiktoken(struct gguf_writer *w, const char *path, enum tok_tiktoken_flavor flavor,
                         char *err, size_t errlen);
int tok_convert_tiktoken_mem(struct gguf_writer *w, const void *data, size_t size,
                             enum tok_tiktoken_flavor flavor, char *err, size_t errlen);

/* Options for the Hugging Face converter; -1 / NULL = detect from the file. */
struct tok_hf_opts {
    const char *pre;       /* tokenizer.ggml.pre to write (byte-level BPE) */
    int32_t bos, eos, pad; /* token ids */
    int add_bos;           /* 0/1 */
};

/*
 * Hugging Face tokenizer.json with a BPE model: byte-level ("gpt2": vocab,
 * merges, added tokens as control / user-defined, pre-tokenizer detected from
 * the pre_tokenizer section unless opts->pre is given) or SentencePiece-style
 * with byte fallback ("llama": scores from merge order). opts may be NULL.
 */
int tok_convert_hf_json(struct gguf_writer *w, const char *path, const struct tok_hf_opts *opts,
                        char *err, size_t errlen);
int tok_convert_hf_json_mem(struct gguf_writer *w, const char *json, size_t len,
                            const struct tok_hf_opts *opts, char *err, size_t errlen);

/*
 * SentencePiece ModelProto (tokenizer.model): pieces, scores and types, the
 * unk/bos/eos/pad ids of its trainer spec and add_dummy_prefix of its
 * normalizer spec, as model "llama".
 */
int tok_convert_spm_model(struct gguf_writer *w, const char *path, char *err, size_t errlen);
int tok_convert_spm_model_mem(struct gguf_writer *w, const void *data, size_t size, char *err,
                              size_t errlen);

#endif
