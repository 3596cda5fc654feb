/*
 * bench_sampler - time of one sampler_sample() call over a vocabulary of
 * random logits, per setting (the serving loop pays it per token and stream).
 * usage: bench_sampler [-v n_vocab] [-s spread] [-r repeats]
 * spread: logits uniform in [-spread/2, spread/2]; 10 is flat (the worst case
 * for top-p), 40 is closer to a trained model's peaked distribution.
 */
#include "engine/sampler.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

int main(int argc, char **argv)
{
    unsigned n = 128256, reps = 5;
    float spread = 10;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "-v"))
            n = (unsigned)strtoul(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "-s"))
            spread = strtof(argv[i + 1], NULL);
        else if (!strcmp(argv[i], "-r"))
            reps = (unsigned)strtoul(argv[i + 1], NULL, 10);
        else {
            fprintf(stderr, "usage: bench_sampler [-v n_vocab] [-s spread] [-r repeats]\n");
            return 2;
        }
    }
    if (n < 64 || reps < 1) {
        fprintf(stderr, "bench_sampler: need -v >= 64 and -r >= 1\n");
        return 2;
    }
    float *logits = malloc(n * sizeof *logits);
    if (!logits)
        return 1;
    uint64_t x = 88172645463325252ull;
    for (unsigned i = 0; i < n; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        logits[i] = ((float)(x >> 40) / (float)(1 << 24) - 0.5f) * spread;
    }
    static const struct {
        const char *name;
        float temp, top_p, min_p;
        int top_k, logprobs;
    } cfg[] = {
        {"greedy", 0, 1, 0, 0, 0},
        {"temperature 1", 1, 1, 0, 0, 0},
        {"top_p 0.95", 0.8f, 0.95f, 0, 0, 0},
        {"top_k 40", 0.8f, 1, 0, 40, 0},
        {"top_k 40 top_p 0.95 min_p 0.05", 0.8f, 0.95f, 0.05f, 40, 0},
        {"temperature 1 + logprobs 5", 1, 1, 0, 0, 1},
    };
    printf("vocab %u, logits spread %.0f, best of %u x 100 calls\n", n, spread, reps);
    printf("| setting | ms per token |\n|---|---|\n");
    for (size_t c = 0; c < sizeof cfg / sizeof cfg[0]; c++) {
        struct sampler_params p;
        sampler_params_default(&p);
        p.temperature = cfg[c].temp;
        p.top_p = cfg[c].top_p;
        p.top_k = cfg[c].top_k;
        p.min_p = cfg[c].min_p;
        p.seed = 1;
        struct sampler *s = sampler_new(&p, n);
        if (!s)
            return 1;
        struct sampler_result r;
        double best = 1e30;
        for (unsigned k = 0; k < reps; k++) {
            double t0 = now_ms();
            for (int i = 0; i < 100; i++)
                sampler_sample(s, logits, cfg[c].logprobs ? 5 : 0, cfg[c].logprobs ? &r : NULL);
            double t = (now_ms() - t0) / 100;
            best = t < best ? t : best;
        }
        printf("| %s | %.3f |\n", cfg[c].name, best);
        sampler_free(s);
    }
    free(logits);
    return 0;
}
