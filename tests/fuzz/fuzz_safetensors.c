/*
 * fuzz_safetensors.c - libFuzzer target for the safetensors reader
 * (st_open_memory). Every tensor an accepted file lists is read end to end, so
 * an offset the reader failed to check shows up under ASan.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *copy = malloc(size ? size : 1); /* exact size: overreads are caught */
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    char err[256];
    struct st_file *f = st_open_memory(copy, size, err, sizeof err);
    volatile uint8_t sink = 0;
    if (f) {
        for (size_t i = 0; i < f->n_tensors; i++) {
            const struct st_tensor *t = &f->tensors[i];
            for (uint64_t j = 0; j < t->size; j++)
                sink ^= t->data[j];
            (void)st_find(f, t->name);
        }
        st_close(f);
    }
    (void)sink;
    free(copy);
    return 0;
}
