/*
 * bpe_train.h - byte-level BPE tokenizer training from a text corpus.
 *
 * The corpus is split with the engine's pre-tokenizer (the one the result
 * names in tokenizer.ggml.pre, so training and inference split text alike),
 * then the most frequent adjacent pair is merged until the vocabulary reaches
 * its target size. Base tokens are all 256 bytes, so every byte sequence
 * round-trips. The result is written as GGUF tokenizer.* metadata (model
 * "gpt2") that the engine's tokenizer loads. Not for: encoding (tokenizer.h).
 *
 * Cost: O(merges x distinct pre-token symbols) time; fine for the corpora and
 * vocabularies of models trained here (up to ~10^5 distinct pre-tokens and a
 * few thousand merges).
 */
#ifndef AISTACK_TRAIN_BPE_TRAIN_H
#define AISTACK_TRAIN_BPE_TRAIN_H

#include <stddef.h>
#include <stdint.h>

struct gguf_writer;
struct bpe_trainer;

/*
 * Creates a trainer for pre-tokenizer pre (a tokenizer.ggml.pre name such as
 * "qwen2" or "llama-bpe"). NULL with a message in err.
 */
struct bpe_trainer *bpe_new(const char *pre, char *err, size_t errlen);
void bpe_free(struct bpe_trainer *b);
/* Adds text to the corpus statistics. 0 or AS_E*. */
int bpe_add_text(struct bpe_trainer *b, const char *text, size_t len);
/*
 * Learns merges until 256 + merges + n_special tokens reach vocab_size (or no
 * pair occurs twice). Specials (e.g. "<|im_start|>") are appended as control
 * tokens. progress, if non-NULL, is called now and then with (merges done, target).
 */
int bpe_train(struct bpe_trainer *b, uint32_t vocab_size, const char *const *specials,
              uint32_t n_special, void (*progress)(uint32_t done, uint32_t total));
/* Number of tokens of the trained vocabulary. */
uint32_t bpe_vocab_size(const struct bpe_trainer *b);
/* Id of a special token by its text, or -1. */
int32_t bpe_special_id(const struct bpe_trainer *b, const char *text);
/*
 * Writes tokenizer.ggml.* metadata (model gpt2, pre, tokens, token_type,
 * merges, bos/eos/eot/padding ids by name when present, add_bos false) and
 * chat_template (may be NULL) into w.
 */
int bpe_write_gguf(const struct bpe_trainer *b, struct gguf_writer *w, const char *bos,
                   const char *eos, const char *chat_template);

#endif
