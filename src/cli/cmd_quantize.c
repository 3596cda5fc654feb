/*
 * cmd_quantize.c - `aistack quantize IN.gguf OUT.gguf TYPE [--threads N]`.
 *
 * Copies every metadata key, sets general.file_type to the llama.cpp file
 * type number, and converts each tensor to the type quant_mix picks for it
 * (dequantizing first when the input is already quantized). Tensors are
 * streamed a few MB at a time from the mapped input to the output, so memory
 * stays small whatever the model size. Not for: conversion from other formats
 * (cmd_convert).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/err.h"
#include "engine/ggml_types.h"
#include "engine/gguf.h"
#include "engine/quant_mix.h"

struct qtensor {
    const struct gguf_tensor *t;
    uint32_t new_type;
    int index, count, n_threads;
    uint64_t n_rows;
    size_t src_row, dst_row;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int fill_tensor(void *ud, uint64_t row0, uint64_t n_rows, void *dst)
{
    struct qtensor *q = ud;
    const uint8_t *src = (const uint8_t *)q->t->data + row0 * q->src_row;
    int rc = quant_convert_rows(q->t->type, src, q->new_type, dst, (int64_t)q->t->ne[0],
                                (int64_t)n_rows, q->n_threads);
    if (rc)
        return rc;
    if (row0 + n_rows == q->n_rows) {
        char shape[96];
        int n = snprintf(shape, sizeof shape, "%llu", (unsigned long long)q->t->ne[0]);
        for (uint32_t d = 1; d < q->t->n_dims && n > 0 && (size_t)n < sizeof shape; d++)
            n += snprintf(shape + n, sizeof shape - (size_t)n, " x %llu",
                          (unsigned long long)q->t->ne[d]);
        printf("[%4d/%4d] %-36.*s %-5s -> %-5s [%s] %9.2f MiB -> %9.2f MiB\n", q->index + 1,
               q->count, (int)q->t->name.len, q->t->name.p, ggml_type_get(q->t->type)->name,
               ggml_type_get(q->new_type)->name, shape, q->t->size / 1048576.0,
               (double)q->dst_row * (double)q->n_rows / 1048576.0);
        fflush(stdout);
    }
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: aistack quantize IN.gguf OUT.gguf TYPE [--threads N (default: all CPUs)]\n"
            "  TYPE: %s\n"
            "  *_m / *_s types mix tensor types as llama.cpp does (e.g. q4_k_m: q4_K with\n"
            "  q6_K for the output and for attn_v/ffn_down of about half the layers);\n"
            "  1-D tensors (norms, biases) are kept as they are.\n",
            quant_ftype_names());
}

int cmd_quantize(int argc, char **argv)
{
    const char *pos[3] = {0};
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    int npos = 0, n_threads = ncpu < 1 ? 1 : ncpu > 64 ? 64 : (int)ncpu;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--threads") || !strcmp(argv[i], "-t")) {
            char *end;
            long v = i + 1 < argc ? strtol(argv[i + 1], &end, 10) : 0;
            if (i + 1 >= argc || *end || v < 1 || v > 64) {
                fprintf(stderr, "aistack quantize: --threads needs a number in 1..64\n");
                return 2;
            }
            n_threads = (int)v;
            i++;
        } else if (npos < 3) {
            pos[npos++] = argv[i];
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (npos != 3) {
        usage(stderr);
        return 2;
    }
    const struct quant_ftype *ft = quant_ftype_find(pos[2]);
    if (!ft) {
        fprintf(stderr, "aistack quantize: unknown type '%s' (one of: %s)\n", pos[2],
                quant_ftype_names());
        return 2;
    }
    char err[512];
    int rc = 1;
    struct gguf_writer *w = NULL;
    struct qtensor *qt = NULL;
    struct gguf_file *f = gguf_open(pos[0], err, sizeof err);
    if (!f) {
        fprintf(stderr, "aistack quantize: %s\n", err);
        return 1;
    }
    double t0 = now_s();
    struct quant_mix mix = {ft, 0, 0, 0};
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const struct str *nm = &f->tensors[i].name;
        if (nm->len >= 13 && !memcmp(nm->p + nm->len - 13, "attn_v.weight", 13))
            mix.n_attn_v++;
        if (nm->len >= 15 && !memcmp(nm->p + nm->len - 15, "ffn_down.weight", 15))
            mix.n_ffn_down++;
        if (nm->len == 13 && !memcmp(nm->p, "output.weight", 13))
            mix.has_output = 1;
    }
    w = gguf_writer_new();
    qt = calloc(f->n_tensors ? f->n_tensors : 1, sizeof *qt);
    if (!w || !qt) {
        fprintf(stderr, "aistack quantize: out of memory\n");
        goto out;
    }
    /* general.quantization_version goes right after general.file_type, where llama.cpp
     * and our synth put it, so that equal models give byte-identical files */
    for (uint64_t i = 0; i < f->n_kv; i++) {
        const struct gguf_kv *kv = &f->kv[i];
        int is_ft = kv->key.len == 17 && !memcmp(kv->key.p, "general.file_type", 17);
        if ((rc = gguf_writer_copy_kv(w, kv)) ||
            (is_ft &&
             (rc = gguf_writer_set_u32(w, "general.file_type", (uint32_t)ft->llama_ftype))) ||
            (is_ft && ft->mixture &&
             (rc = gguf_writer_set_u32(w, "general.quantization_version", 2)))) {
            fprintf(stderr, "aistack quantize: copying metadata: %s\n", as_strerror(rc));
            rc = 1;
            goto out;
        }
    }
    gguf_writer_set_u32(w, "general.file_type", (uint32_t)ft->llama_ftype);
    if (ft->mixture)
        gguf_writer_set_u32(w, "general.quantization_version", 2);
    else
        gguf_writer_remove_kv(w, "general.quantization_version");
    uint64_t in_bytes = 0, out_bytes = 0;
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const struct gguf_tensor *t = &f->tensors[i];
        char name[256];
        if (t->name.len >= sizeof name) {
            fprintf(stderr, "aistack quantize: tensor name too long\n");
            rc = 1;
            goto out;
        }
        memcpy(name, t->name.p, t->name.len);
        name[t->name.len] = 0;
        struct qtensor *q = &qt[i];
        q->t = t;
        q->new_type = quant_mix_tensor_type(&mix, name, t->type, t->n_dims, t->ne);
        q->index = (int)i;
        q->count = (int)f->n_tensors;
        q->n_threads = n_threads;
        q->n_rows = t->ne[1] * t->ne[2] * t->ne[3];
        q->src_row = ggml_row_size(t->type, t->ne[0]);
        q->dst_row = ggml_row_size(q->new_type, t->ne[0]);
        if (!q->dst_row) {
            fprintf(stderr, "aistack quantize: tensor '%s': %llu columns do not fit type %s\n",
                    name, (unsigned long long)t->ne[0], ggml_type_get(q->new_type)->name);
            rc = 1;
            goto out;
        }
        in_bytes += t->size;
        out_bytes += q->dst_row * q->n_rows;
        if ((rc = gguf_writer_add_tensor_cb(w, name, q->new_type, t->n_dims, t->ne, fill_tensor,
                                            q))) {
            fprintf(stderr, "aistack quantize: %s\n", gguf_writer_errmsg(w));
            rc = 1;
            goto out;
        }
    }
    if ((rc = gguf_writer_write(w, pos[1]))) {
        fprintf(stderr, "aistack quantize: %s: %s\n", pos[1], gguf_writer_errmsg(w));
        rc = 1;
        goto out;
    }
    printf("%s: %.2f MiB -> %.2f MiB (%s, file type %d) in %.1f s\n", pos[1], in_bytes / 1048576.0,
           out_bytes / 1048576.0, ft->name, ft->llama_ftype, now_s() - t0);
    rc = 0;
out:
    free(qt);
    gguf_writer_free(w);
    gguf_close(f);
    return rc;
}
