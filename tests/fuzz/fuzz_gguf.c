/*
 * fuzz_gguf.c - libFuzzer target for the GGUF reader (gguf_open_memory).
 *
 * Accepted files are walked through every accessor so that any pointer the
 * reader hands out is dereferenced under ASan: each kv by name, each string
 * array element, numeric array elements, and the first and last byte of every
 * tensor.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/gguf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* exact-size copy: reads past the end are caught even for libFuzzer's own buffer */
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    char err[256];
    struct gguf_file *f = gguf_open_memory(copy, size, err, sizeof err);
    volatile uint32_t sink = 0;
    if (f) {
        for (uint64_t i = 0; i < f->n_kv; i++) {
            const struct gguf_kv *kv = &f->kv[i];
            char key[128];
            size_t n = kv->key.len < sizeof key - 1 ? kv->key.len : sizeof key - 1;
            memcpy(key, kv->key.p, n);
            key[n] = 0;
            uint32_t u32;
            uint64_t u64;
            float fl;
            int b;
            struct str s;
            (void)gguf_find_kv(f, key);
            sink += (uint32_t)gguf_get_u32(f, key, &u32) + (uint32_t)gguf_get_u64(f, key, &u64);
            sink += (uint32_t)gguf_get_f32(f, key, &fl) + (uint32_t)gguf_get_bool(f, key, &b);
            if (!gguf_get_str(f, key, &s) && s.len)
                sink += (uint8_t)s.p[s.len - 1];
            if (kv->type != GGUF_VT_ARRAY)
                continue;
            for (uint64_t j = 0; j < kv->arr_len && j < 4096; j++) {
                int32_t i32;
                if (!gguf_arr_str(kv, j, &s) && s.len)
                    sink += (uint8_t)s.p[0] + (uint8_t)s.p[s.len - 1];
                if (!gguf_arr_i32(kv, j, &i32))
                    sink += (uint32_t)i32;
                if (!gguf_arr_f32(kv, j, &fl))
                    sink += fl > 0;
            }
        }
        for (uint64_t i = 0; i < f->n_tensors; i++) {
            const struct gguf_tensor *t = &f->tensors[i];
            const uint8_t *p = t->data;
            sink += p[0] + p[t->size - 1];
            char name[128];
            size_t n = t->name.len < sizeof name - 1 ? t->name.len : sizeof name - 1;
            memcpy(name, t->name.p, n);
            name[n] = 0;
            (void)gguf_find_tensor(f, name);
        }
    }
    (void)sink;
    gguf_close(f);
    free(copy);
    return 0;
}
