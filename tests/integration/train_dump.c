/*
 * train_dump.c - test harness for the PyTorch training parity test
 * (tests/ref/test_train_torch.sh). Builds a small model, then writes into DIR:
 *   model.json  config + tensor table + run settings
 *   params.bin  initial parameters (flat f32, tensor table order)
 *   batch.bin   micro-batches: per batch int32 n, tokens, targets, pos, seq_start
 *   grads.bin   gradients of the first micro-batch's mean loss (flat f32)
 *   losses.txt  "step loss grad_norm" for each optimizer step
 * Usage: train_dump DIR tied(0|1) [steps]
 */
#include "train/optim.h"
#include "train/tmodel.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_MICRO 2
#define MAXN    24

static int write_file(const char *dir, const char *name, const void *p, size_t n)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n) {
        perror(path);
        return -1;
    }
    return fclose(f);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: train_dump DIR tied [steps]\n");
        return 2;
    }
    const char *dir = argv[1];
    int tied = argv[2][0] == '1';
    int steps = argc > 3 ? (int)strtol(argv[3], NULL, 10) : 10;
    struct tm_config c = {.vocab = 29,
                          .dim = 32,
                          .n_layer = 2,
                          .n_head = 4,
                          .n_kv_head = 2,
                          .ffn = 48,
                          .max_seq = 16,
                          .tied = tied,
                          .rope_theta = 10000.0f,
                          .norm_eps = 1e-5f};
    const float lr = 3e-3f, min_lr = 3e-4f, wd = 0.1f, clip = 1.0f;
    const int warmup = 3;
    char err[256];
    struct tmodel *m = tm_new(&c, MAXN, 2, 42, err, sizeof err);
    if (!m) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    /* micro-batches of 3 and 2 sequences of different lengths */
    static int32_t bt[N_MICRO][4][MAXN];
    struct tm_batch b[N_MICRO];
    static const int lens[N_MICRO][3] = {{9, 4, 7}, {12, 5, 0}};
    uint64_t s = 99;
    FILE *fb = NULL;
    char path[512];
    snprintf(path, sizeof path, "%s/batch.bin", dir);
    fb = fopen(path, "wb");
    if (!fb)
        return 1;
    for (int mb = 0; mb < N_MICRO; mb++) {
        int n = 0;
        for (int q = 0; q < 3 && lens[mb][q]; q++) {
            int start = n;
            for (int i = 0; i < lens[mb][q]; i++, n++) {
                s = s * 6364136223846793005ull + 1442695040888963407ull;
                bt[mb][0][n] = (int32_t)((s >> 33) % (uint64_t)c.vocab);
                bt[mb][2][n] = i;
                bt[mb][3][n] = start;
            }
            for (int i = start; i < n; i++)
                bt[mb][1][i] = i + 1 < n ? bt[mb][0][i + 1] : -1;
            bt[mb][1][start] = -1; /* a masked position inside a sequence, as for prompts */
        }
        b[mb] = (struct tm_batch){n, bt[mb][0], bt[mb][1], bt[mb][2], bt[mb][3]};
        fwrite(&n, 4, 1, fb);
        for (int k = 0; k < 4; k++)
            fwrite(bt[mb][k], 4, (size_t)n, fb);
    }
    fclose(fb);

    size_t np = tm_param_count(&c);
    int nt;
    const struct tm_tensor *t = tm_tensors(m, &nt);
    snprintf(path, sizeof path, "%s/model.json", dir);
    FILE *fj = fopen(path, "w");
    if (!fj)
        return 1;
    fprintf(fj,
            "{\"vocab\":%d,\"dim\":%d,\"n_layer\":%d,\"n_head\":%d,\"n_kv_head\":%d,\"ffn\":%d,"
            "\"max_seq\":%d,\"tied\":%d,\"rope_theta\":%g,\"norm_eps\":%g,\"lr\":%g,"
            "\"min_lr\":%g,\"wd\":%g,\"clip\":%g,\"warmup\":%d,\"steps\":%d,\"n_micro\":%d,"
            "\"tensors\":[",
            c.vocab, c.dim, c.n_layer, c.n_head, c.n_kv_head, c.ffn, c.max_seq, c.tied,
            (double)c.rope_theta, (double)c.norm_eps, (double)lr, (double)min_lr, (double)wd,
            (double)clip, warmup, steps, N_MICRO);
    for (int i = 0; i < nt; i++)
        fprintf(fj, "%s{\"name\":\"%s\",\"offset\":%zu,\"rows\":%d,\"cols\":%d}", i ? "," : "",
                t[i].name, t[i].offset, t[i].rows, t[i].cols);
    fprintf(fj, "]}\n");
    fclose(fj);
    if (write_file(dir, "params.bin", tm_params_flat(m), np * sizeof(float)))
        return 1;

    struct adamw opt;
    if (adamw_init(&opt, np, 0.9f, 0.95f, 1e-8f, wd))
        return 1;
    for (int i = 0; i < nt; i++)
        if (t[i].rows == 1)
            adamw_set_decay(&opt, t[i].offset, (size_t)t[i].cols, 0);
    snprintf(path, sizeof path, "%s/losses.txt", dir);
    FILE *fl = fopen(path, "w");
    if (!fl)
        return 1;
    for (int step = 0; step < steps; step++) {
        tm_zero_grad(m);
        double loss = 0;
        for (int mb = 0; mb < N_MICRO; mb++) {
            loss += tm_forward(m, &b[mb]) / N_MICRO;
            tm_backward(m, &b[mb], 1.0f / N_MICRO);
            if (step == 0 && mb == 0) {
                /* gradient of the first micro-batch alone (scaled back to its own mean) */
                float *g = malloc(np * sizeof *g);
                for (size_t j = 0; j < np; j++)
                    g[j] = tm_grads_flat(m)[j] * N_MICRO;
                write_file(dir, "grads.bin", g, np * sizeof(float));
                free(g);
            }
        }
        float norm = grad_clip(tm_grads_flat(m), np, clip);
        adamw_step(&opt, tm_params_flat(m), tm_grads_flat(m),
                   lr_schedule(step, warmup, steps, lr, min_lr));
        fprintf(fl, "%d %.9g %.9g\n", step, loss, (double)norm);
    }
    fclose(fl);
    adamw_free(&opt);
    tm_free(m);
    return 0;
}
