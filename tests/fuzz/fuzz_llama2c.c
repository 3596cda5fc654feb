/*
 * fuzz_llama2c.c - libFuzzer target for the llama2.c importer (llama2c_build):
 * the input is split into a checkpoint and a tokenizer at a 4-byte offset
 * taken from its first bytes. Nothing is written to disk.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/gguf.h"
#include "engine/llama2c.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4)
        return 0;
    uint32_t split;
    memcpy(&split, data, 4);
    data += 4;
    size -= 4;
    split = size ? split % (uint32_t)(size + 1) : 0;
    /* separate exact-size copies so overreads of either part are caught */
    uint8_t *model = malloc(split ? split : 1), *tok = malloc(size - split ? size - split : 1);
    struct gguf_writer *w = gguf_writer_new();
    if (model && tok && w) {
        memcpy(model, data, split);
        memcpy(tok, data + split, size - split);
        char err[256];
        (void)llama2c_build(w, model, split, tok, size - split, err, sizeof err);
    }
    gguf_writer_free(w);
    free(model);
    free(tok);
    return 0;
}
