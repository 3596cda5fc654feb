/*
 * bench_train.c - training throughput: tokens/s and model FLOP utilisation
 * for llama models of about 1M, 10M and 100M parameters, against the
 * machine's peak f32 FLOP/s (FMA loop) and OpenBLAS sgemm rate measured in
 * the same run. One step = forward + backward + AdamW on one packed batch.
 *
 * usage: bench_train [--threads N] [--steps N] [--sizes 1m,10m,100m]
 */
#include "train/optim.h"
#include "train/peak.h"
#include "train/tmodel.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct size {
    const char *name;
    struct tm_config c;
    int tokens, seq;
};

static const struct size sizes[] = {
    {"1m", {512, 128, 4, 4, 4, 352, 128, 1, 10000.0f, 1e-5f}, 4096, 128},
    {"10m", {4096, 320, 8, 5, 5, 864, 256, 1, 10000.0f, 1e-5f}, 4096, 256},
    {"100m", {32000, 768, 12, 12, 12, 2048, 256, 1, 10000.0f, 1e-5f}, 2048, 256},
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    int threads = 2, steps = 3;
    const char *which = "1m,10m,100m";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--threads"))
            threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--steps"))
            steps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--sizes"))
            which = argv[i + 1];
    }
    const char *isa;
    openblas_set_num_threads(threads);
    double peak = peak_flops(threads, 500, &isa);
    double sgemm = peak_sgemm_flops(1024);
    printf(
        "threads %d | peak %.1f GFLOP/s (%s FMA) | OpenBLAS sgemm 1024^3 %.1f GFLOP/s (%.0f%% of "
        "peak)\n\n",
        threads, peak / 1e9, isa, sgemm / 1e9, 100 * sgemm / peak);
    printf("| model | params | tokens/step | s/step (min) | tokens/s | GFLOP/s | MFU |\n");
    printf("|---|---|---|---|---|---|---|\n");
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        if (!strstr(which, sizes[s].name))
            continue;
        const struct size *z = &sizes[s];
        char err[256];
        struct tmodel *m = tm_new(&z->c, z->tokens, threads, 1, err, sizeof err);
        if (!m) {
            fprintf(stderr, "%s: %s\n", z->name, err);
            return 1;
        }
        size_t np = tm_param_count(&z->c);
        struct adamw opt;
        if (adamw_init(&opt, np, 0.9f, 0.95f, 1e-8f, 0.1f))
            return 1;
        int n = z->tokens;
        int32_t *tok = malloc((size_t)n * 4 * 4), *tgt = tok + n, *pos = tgt + n, *st = pos + n;
        uint64_t r = 42;
        for (int i = 0; i < n; i++) {
            r = r * 6364136223846793005ull + 1442695040888963407ull;
            tok[i] = (int32_t)((r >> 33) % (uint64_t)z->c.vocab);
            pos[i] = i % z->seq;
            st[i] = i - pos[i];
        }
        for (int i = 0; i < n; i++)
            tgt[i] = pos[i] + 1 < z->seq && i + 1 < n ? tok[i + 1] : -1;
        struct tm_batch b = {n, tok, tgt, pos, st};
        double flops = tm_flops(&z->c, &b), best = 1e30;
        for (int it = 0; it <= steps; it++) { /* the first step warms up */
            double t0 = now_s();
            tm_zero_grad(m);
            tm_forward(m, &b);
            tm_backward(m, &b, 1.0f);
            grad_clip(tm_grads_flat(m), np, 1.0f);
            adamw_step(&opt, tm_params_flat(m), tm_grads_flat(m), 1e-4f);
            double dt = now_s() - t0;
            if (it > 0 && dt < best)
                best = dt;
        }
        printf("| %s | %.1fM | %d | %.3f | %.0f | %.1f | %.1f%% |\n", z->name, (double)np / 1e6, n,
               best, n / best, flops / best / 1e9, 100 * flops / best / peak);
        fflush(stdout);
        free(tok);
        adamw_free(&opt);
        tm_free(m);
    }
    return 0;
}
