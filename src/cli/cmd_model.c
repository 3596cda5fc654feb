/*
 * cmd_model.c - `aistack model synth ...`: writes a GGUF model with random
 * weights of a real model's shape (see engine/model_synth.h). Not for:
 * converting real checkpoints (cmd_convert).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "engine/model_synth.h"
#include "engine/quant_mix.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: aistack model synth --shape SHAPE --type TYPE -o OUT.gguf\n"
            "                           [--vocab VOCAB.gguf] [--seed S] [--threads N] [--quiet]\n"
            "  --threads defaults to all CPUs; the output does not depend on it.\n"
            "  SHAPE: %s\n"
            "  TYPE:  %s\n"
            "  --vocab copies tokenizer.* from a GGUF (padded to the shape's vocabulary size);\n"
            "  without it a byte-level BPE vocabulary is generated.\n",
            synth_shape_names(), quant_ftype_names());
}

static int parse_u64(const char *s, uint64_t *out)
{
    char *end;
    if (!s || !*s || *s == '-')
        return -1;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end)
        return -1;
    *out = v;
    return 0;
}

static int synth(int argc, char **argv)
{
    struct synth_opts o = {0};
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    o.n_threads = ncpu < 1 ? 1 : ncpu > 64 ? 64 : (int)ncpu;
    o.progress = 1;
    const char *shape = NULL, *type = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        uint64_t u;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--quiet")) {
            o.progress = 0;
            continue;
        } else if (!v) {
            fprintf(stderr, "aistack model synth: %s needs a value\n", a);
            return 2;
        } else if (!strcmp(a, "--shape")) {
            shape = v;
        } else if (!strcmp(a, "--type")) {
            type = v;
        } else if (!strcmp(a, "--vocab")) {
            o.vocab_path = v;
        } else if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
            o.out_path = v;
        } else if (!strcmp(a, "--seed")) {
            if (parse_u64(v, &o.seed)) {
                fprintf(stderr, "aistack model synth: bad --seed '%s'\n", v);
                return 2;
            }
        } else if (!strcmp(a, "--threads") || !strcmp(a, "-t")) {
            if (parse_u64(v, &u) || u < 1 || u > 64) {
                fprintf(stderr, "aistack model synth: --threads needs a number in 1..64\n");
                return 2;
            }
            o.n_threads = (int)u;
        } else {
            fprintf(stderr, "aistack model synth: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        }
        i++;
    }
    if (!shape || !type || !o.out_path) {
        usage(stderr);
        return 2;
    }
    if (!(o.shape = synth_shape_find(shape))) {
        fprintf(stderr, "aistack model synth: unknown shape '%s' (one of: %s)\n", shape,
                synth_shape_names());
        return 2;
    }
    if (!(o.ftype = quant_ftype_find(type))) {
        fprintf(stderr, "aistack model synth: unknown type '%s' (one of: %s)\n", type,
                quant_ftype_names());
        return 2;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    char err[512];
    if (synth_write(&o, err, sizeof err)) {
        fprintf(stderr, "aistack model synth: %s\n", err);
        return 1;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (o.progress)
        fprintf(stderr, "wrote %s (%s, %s) in %.1f s\n", o.out_path, o.shape->name, o.ftype->name,
                (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9);
    return 0;
}

int cmd_model(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "synth"))
        return synth(argc - 1, argv + 1);
    if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "aistack model: unknown or missing subcommand (available: synth)\n");
    usage(stderr);
    return 2;
}
