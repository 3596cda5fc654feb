/*
 * fuzz_tok_convert.c - libFuzzer target for the tiktoken and tokenizer.json
 * converters. The first byte picks the converter (and tiktoken flavor), the
 * rest is the file.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/gguf.h"
#include "engine/tok_convert.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    char *copy = malloc(size);
    if (!copy)
        return 0;
    memcpy(copy, data + 1, size - 1);
    struct gguf_writer *w = gguf_writer_new();
    char err[256];
    if (w) {
        if (data[0] & 1)
            (void)tok_convert_hf_json_mem(w, copy, size - 1, NULL, err, sizeof err);
        else
            (void)tok_convert_tiktoken_mem(w, copy, size - 1,
                                           data[0] & 2 ? TOK_TIKTOKEN_QWEN2 : TOK_TIKTOKEN_LLAMA3,
                                           err, sizeof err);
    }
    gguf_writer_free(w);
    free(copy);
    return 0;
}
