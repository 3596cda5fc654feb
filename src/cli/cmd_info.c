/*
 * cmd_info.c - `aistack info FILE.gguf [--no-tensors]`: a GGUF file's header,
 * metadata (arrays abbreviated to their first elements) and tensor table,
 * with a per-type summary. Strings are printed escaped so that a hostile file
 * cannot send control sequences to the terminal. Not for: machine-readable
 * output.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "engine/ggml_types.h"
#include "engine/gguf.h"

#define STR_SHOW 64 /* bytes of a string value shown */
#define ARR_SHOW 6  /* elements of an array shown */

static void put_escaped(const char *p, size_t n, size_t max)
{
    putchar('"');
    for (size_t i = 0; i < n && i < max; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c == '\n')
            fputs("\\n", stdout);
        else if (c < 0x20 || c == 0x7f)
            printf("\\x%02x", c);
        else
            putchar(c);
    }
    putchar('"');
    if (n > max)
        printf("...(%zu bytes)", n);
}

/* Prints one scalar of type t at p (p is in bounds: validated by the reader). */
static void put_scalar(uint32_t t, const uint8_t *p)
{
    union {
        uint8_t u8;
        int8_t i8;
        uint16_t u16;
        int16_t i16;
        uint32_t u32;
        int32_t i32;
        float f32;
        uint64_t u64;
        int64_t i64;
        double f64;
    } v;
    memcpy(&v, p, gguf_vtype_size(t));
    switch (t) {
    case GGUF_VT_UINT8:
        printf("%u", v.u8);
        break;
    case GGUF_VT_INT8:
        printf("%d", v.i8);
        break;
    case GGUF_VT_UINT16:
        printf("%u", v.u16);
        break;
    case GGUF_VT_INT16:
        printf("%d", v.i16);
        break;
    case GGUF_VT_UINT32:
        printf("%u", v.u32);
        break;
    case GGUF_VT_INT32:
        printf("%d", v.i32);
        break;
    case GGUF_VT_FLOAT32:
        printf("%g", (double)v.f32);
        break;
    case GGUF_VT_BOOL:
        fputs(v.u8 ? "true" : "false", stdout);
        break;
    case GGUF_VT_UINT64:
        printf("%llu", (unsigned long long)v.u64);
        break;
    case GGUF_VT_INT64:
        printf("%lld", (long long)v.i64);
        break;
    case GGUF_VT_FLOAT64:
        printf("%g", v.f64);
        break;
    default:
        fputs("?", stdout);
    }
}

static void put_kv(const struct gguf_kv *kv)
{
    printf("  %-44.*s ", (int)(kv->key.len > 200 ? 200 : kv->key.len), kv->key.p);
    if (kv->type == GGUF_VT_STRING) {
        uint64_t n;
        memcpy(&n, kv->val, 8);
        printf("%-8s ", "string");
        put_escaped((const char *)kv->val + 8, (size_t)n, STR_SHOW);
    } else if (kv->type == GGUF_VT_ARRAY) {
        char ty[48];
        snprintf(ty, sizeof ty, "[%s x %llu]", gguf_vtype_name(kv->arr_type),
                 (unsigned long long)kv->arr_len);
        printf("%-8s ", ty);
        size_t es = gguf_vtype_size(kv->arr_type);
        for (uint64_t i = 0; i < kv->arr_len && i < ARR_SHOW; i++) {
            if (i)
                fputs(", ", stdout);
            struct str s;
            if (kv->arr_type == GGUF_VT_STRING && !gguf_arr_str(kv, i, &s))
                put_escaped(s.p, s.len, 24);
            else if (es)
                put_scalar(kv->arr_type, kv->val + i * es);
            else
                fputs("[...]", stdout);
        }
        if (kv->arr_len > ARR_SHOW)
            fputs(", ...", stdout);
    } else {
        printf("%-8s ", gguf_vtype_name(kv->type));
        put_scalar(kv->type, kv->val);
    }
    putchar('\n');
}

int cmd_info(int argc, char **argv)
{
    const char *path = NULL;
    int show_tensors = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf("usage: aistack info FILE.gguf [--no-tensors]\n");
            return 0;
        } else if (!strcmp(argv[i], "--no-tensors")) {
            show_tensors = 0;
        } else if (!path) {
            path = argv[i];
        } else {
            fprintf(stderr, "usage: aistack info FILE.gguf [--no-tensors]\n");
            return 2;
        }
    }
    if (!path) {
        fprintf(stderr, "usage: aistack info FILE.gguf [--no-tensors]\n");
        return 2;
    }
    char err[512];
    struct gguf_file *f = gguf_open(path, err, sizeof err);
    if (!f) {
        fprintf(stderr, "aistack info: %s\n", err);
        return 1;
    }
    printf("%s: GGUF v%u, %zu bytes, alignment %u, tensor data at %zu\n", path, f->version,
           f->map_size, f->alignment, f->data_offset);
    printf("metadata: %llu keys\n", (unsigned long long)f->n_kv);
    for (uint64_t i = 0; i < f->n_kv; i++)
        put_kv(&f->kv[i]);
    uint64_t n_params = 0, n_bytes = 0;
    uint64_t by_type_n[GGML_TYPE_COUNT] = {0}, by_type_bytes[GGML_TYPE_COUNT] = {0};
    printf("tensors: %llu\n", (unsigned long long)f->n_tensors);
    if (show_tensors && f->n_tensors)
        printf("  %5s %-40s %-5s %-26s %12s %12s\n", "#", "name", "type", "shape", "offset",
               "bytes");
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const struct gguf_tensor *t = &f->tensors[i];
        uint64_t ne = t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
        n_params += ne;
        n_bytes += t->size;
        by_type_n[t->type]++;
        by_type_bytes[t->type] += t->size;
        if (!show_tensors)
            continue;
        char shape[96];
        int n = snprintf(shape, sizeof shape, "%llu", (unsigned long long)t->ne[0]);
        for (uint32_t d = 1; d < t->n_dims && n > 0 && (size_t)n < sizeof shape; d++)
            n += snprintf(shape + n, sizeof shape - (size_t)n, " x %llu",
                          (unsigned long long)t->ne[d]);
        printf("  %5llu %-40.*s %-5s %-26s %12llu %12llu\n", (unsigned long long)i,
               (int)(t->name.len > 120 ? 120 : t->name.len), t->name.p,
               ggml_type_get(t->type)->name, shape, (unsigned long long)t->offset,
               (unsigned long long)t->size);
    }
    printf("total: %llu parameters, %.2f MiB of tensor data", (unsigned long long)n_params,
           n_bytes / 1048576.0);
    if (n_params)
        printf(", %.3f bits per weight", 8.0 * (double)n_bytes / (double)n_params);
    putchar('\n');
    for (uint32_t t = 0; t < GGML_TYPE_COUNT; t++)
        if (by_type_n[t])
            printf("  %-5s %5llu tensors %10.2f MiB\n", ggml_type_get(t)->name,
                   (unsigned long long)by_type_n[t], by_type_bytes[t] / 1048576.0);
    gguf_close(f);
    return 0;
}
