/*
 * fuzz_spm_model.c - libFuzzer target for the SentencePiece ModelProto reader
 * (tok_convert_spm_model_mem): hostile protobuf must give an error, never a
 * crash, a hang or a huge allocation.
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
    uint8_t *copy = malloc(size ? size : 1); /* exact size: overreads are caught */
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    struct gguf_writer *w = gguf_writer_new();
    char err[256];
    if (w)
        (void)tok_convert_spm_model_mem(w, copy, size, err, sizeof err);
    gguf_writer_free(w);
    free(copy);
    return 0;
}
