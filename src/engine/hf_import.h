/*
 * hf_import.h - importer for Hugging Face llama / mistral / qwen2 checkpoints
 * (config.json + *.safetensors + tokenizer.json or tokenizer.model) to GGUF.
 *
 * Tensors are renamed to llama.cpp's GGUF names; llama q/k projections are
 * permuted from HF's rotate-half layout to the adjacent-pair layout the
 * engine's "normal" RoPE expects (as llama.cpp's converter does); qwen2 keeps
 * HF's layout and uses NeoX RoPE. Llama 3 rope_scaling becomes a
 * rope_freqs.weight tensor, linear scaling becomes metadata. Tensors are
 * converted row by row while the file is written, so memory stays bounded.
 * Inputs are untrusted (sizes capped, shapes checked). Not for: quantization.
 */
#ifndef AISTACK_ENGINE_HF_IMPORT_H
#define AISTACK_ENGINE_HF_IMPORT_H

#include <stddef.h>
#include <stdint.h>

struct hf_import_opts {
    uint32_t type; /* GGML_TYPE_F32, F16 or BF16 for matrices (norms/biases stay F32) */
};

/* "f32", "f16", "bf16" -> GGML type. 0 or AS_EINVAL. */
int hf_import_parse_type(const char *s, uint32_t *out);

/* Converts the checkpoint in dir to a GGUF file at out_path. 0 or AS_E* with err set. */
int hf_import(const char *dir, const char *out_path, const struct hf_import_opts *o, char *err,
              size_t errlen);

#endif
