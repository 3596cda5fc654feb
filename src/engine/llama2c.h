/*
 * llama2c.h - importer for llama2.c checkpoints (Karpathy's run.c format) and
 * their tokenizer.bin, to a GGUF `llama` model with a SentencePiece-style
 * (`llama`) vocabulary that the engine's tokenizer runs.
 *
 * Checkpoints: the legacy format (7 int32: dim, hidden_dim, n_layers,
 * n_heads, n_kv_heads, vocab_size (negative = separate classifier), seq_len;
 * then f32 weights, the RoPE tables, and the classifier if separate) and
 * version 1 of export.py (magic "ak42", f32, 256-byte header). llama2.c
 * rotates adjacent pairs of its un-permuted q/k weights, which is what the
 * engine's "normal" RoPE does, so weights are copied unchanged.
 *
 * Tokenizer: int32 max_token_length, then per token: f32 score, int32 length,
 * bytes. "<unk>" becomes UNKNOWN, "<s>"/"</s>" CONTROL, "<0xXX>" BYTE, spaces
 * become U+2581 as SentencePiece writes them.
 *
 * Inputs are untrusted: every size is checked against the files. Not for:
 * quantization (quantize afterwards), other checkpoint formats.
 */
#ifndef AISTACK_ENGINE_LLAMA2C_H
#define AISTACK_ENGINE_LLAMA2C_H

#include <stddef.h>

struct gguf_writer;

/*
 * Converts model_path + tok_path to a GGUF file at out_path (written
 * atomically). Returns 0, or AS_E* with a message in err.
 */
int llama2c_convert(const char *model_path, const char *tok_path, const char *out_path, char *err,
                    size_t errlen);
/*
 * Sets the metadata and tensors of the converted model on w from in-memory
 * images of the checkpoint and tokenizer (borrowed: tensor data points into
 * model until w is written or freed). 0 or AS_E* with a message in err.
 */
int llama2c_build(struct gguf_writer *w, const void *model, size_t model_size, const void *tok,
                  size_t tok_size, char *err, size_t errlen);

#endif
