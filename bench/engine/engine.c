/*
 * engine.c (bench_engine) - model-level speed of the engine on one GGUF file,
 * like llama-bench: prompt processing (one sequence, a P-token prompt in one
 * forward pass), generation (N tokens one at a time, greedy), aggregate
 * generation with S sequences decoding together (one forward pass per step
 * serves all S), time to load and to the first token, and peak RSS.
 *
 * Each figure is the best (and median) of R repeats; the machine may be
 * shared, so the minimum time is the one that reflects the code. Generation
 * is also given as a fraction of the streaming-read bandwidth measured in the
 * same process with the same thread count (bytes of weights one token reads
 * / time per token / bandwidth), and prompt processing as GFLOP/s of the
 * matrix products and attention. The bandwidth is STREAM's figure (best whole
 * pass over 512 MB), measured right before each generation repeat so that
 * both see the same machine (this VM's bandwidth swings from 30 to 60 GB/s
 * with its neighbours' load); the best 16 MB slice, an upper bound, is
 * reported too (membw_peak_gbs).
 *
 * usage: bench_engine -m MODEL.gguf [-t threads] [-p 512] [-n 128] [-s 4,8]
 *                     [-r repeats] [--no-membw] [--mmap|--copy] [--no-pack] [--json]
 * --no-pack: the weight matrices stay in GGUF form (model_params.no_pack).
 * Output: one markdown row (or one JSON object with --json) on stdout.
 * Not for: the HTTP service (bench/infer), kernels in isolation (bench_kernels).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/kernels.h"
#include "engine/kvcache.h"
#include "engine/model.h"
#include "engine/threadpool.h"

#define MAX_SEQ_RUNS 8
#define MAX_REPEATS  32

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Peak resident set size in bytes (VmHWM), 0 if unknown. */
static uint64_t peak_rss(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    uint64_t kb = 0;
    if (!f)
        return 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %lu kB", &kb) == 1)
            break;
    fclose(f);
    return kb * 1024;
}

/*
 * Resets VmHWM to the current RSS, so that the bandwidth probe's buffer (freed
 * by then) does not count as the model's memory. Returns 0 on success.
 */
static int reset_peak_rss(void)
{
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (!f)
        return -1;
    int ok = fputs("5", f) >= 0;
    return fclose(f) == 0 && ok ? 0 : -1;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* min and median of v[0..n), sorting v */
static void min_med(double *v, int n, double *mn, double *med)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    *mn = v[0];
    *med = n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static int32_t argmax(const float *x, uint32_t n)
{
    return (int32_t)kern_argmax(x, n);
}

/* A deterministic pseudo-random prompt of n tokens (ids in [1, vocab)). */
static void make_prompt(int32_t *t, uint32_t n, uint32_t vocab, uint32_t salt)
{
    uint64_t s = 0x9e3779b97f4a7c15ULL * (salt + 1);
    for (uint32_t i = 0; i < n; i++) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        t[i] = (int32_t)(1 + s % (vocab - 1));
    }
}

struct bench {
    struct model *m;
    struct model_ctx *ctx;
    struct model_batch b;
    const struct model_hparams *hp;
    int32_t *prompt;
    int seqs[MAX_SEQ_RUNS * 2];
};

static void die(const char *what, int rc)
{
    fprintf(stderr, "bench_engine: %s failed (%d)\n", what, rc);
    exit(1);
}

/* Prompt processing: n tokens of one fresh sequence in one forward pass; seconds. */
static double run_prompt(struct bench *bx, uint32_t n, uint32_t salt)
{
    struct kv_cache *kv = model_ctx_kv(bx->ctx);
    int seq = kv_seq_alloc(kv);
    if (seq < 0)
        die("kv_seq_alloc", seq);
    make_prompt(bx->prompt, n, bx->hp->n_vocab, salt);
    model_batch_clear(&bx->b);
    for (uint32_t i = 0; i < n; i++)
        model_batch_add(&bx->b, bx->prompt[i], seq, i, i + 1 == n);
    double t0 = now_s();
    int rc = model_forward(bx->ctx, &bx->b);
    double t = now_s() - t0;
    if (rc)
        die("prompt forward", rc);
    kv_seq_free(kv, seq);
    return t;
}

/*
 * Generation: S sequences, each started from one token, decode n tokens
 * greedily, one forward pass per step for all S; seconds for the n steps.
 */
static double run_decode(struct bench *bx, uint32_t S, uint32_t n, uint32_t salt)
{
    struct kv_cache *kv = model_ctx_kv(bx->ctx);
    int32_t next[MAX_SEQ_RUNS * 2];
    for (uint32_t s = 0; s < S; s++) {
        if ((bx->seqs[s] = kv_seq_alloc(kv)) < 0)
            die("kv_seq_alloc", bx->seqs[s]);
        make_prompt(&next[s], 1, bx->hp->n_vocab, salt * 97 + s);
    }
    double t0 = now_s();
    for (uint32_t step = 0; step < n; step++) {
        model_batch_clear(&bx->b);
        for (uint32_t s = 0; s < S; s++)
            if (model_batch_add(&bx->b, next[s], bx->seqs[s], step, 1))
                die("batch add", -1);
        int rc = model_forward(bx->ctx, &bx->b);
        if (rc)
            die("decode forward", rc);
        for (uint32_t s = 0; s < S; s++)
            next[s] = argmax(model_logits(bx->ctx, s), bx->hp->n_vocab);
    }
    double t = now_s() - t0;
    for (uint32_t s = 0; s < S; s++)
        kv_seq_free(kv, bx->seqs[s]);
    return t;
}

/* FLOPs of one token's matrix products (weights only), and attention at position pos. */
static double token_flops(const struct model_hparams *hp, double pos)
{
    double d = hp->n_embd, qd = (double)hp->n_head * hp->head_dim,
           kvd = (double)hp->n_head_kv * hp->head_dim, ff = hp->n_ff;
    double per_layer = d * qd + 2 * d * kvd + qd * d + 3 * d * ff;
    return 2.0 * hp->n_layer * (per_layer + 2.0 * (pos + 1) * qd);
}

static void usage(void)
{
    fprintf(stderr,
            "usage: bench_engine -m MODEL.gguf [-t threads] [-p prompt_tokens] "
            "[-n gen_tokens] [-s 4,8] [-r repeats] [--no-membw] [--mmap|--copy] [--no-pack] "
            "[--json]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    double t_start = now_s();
    const char *path = NULL;
    int threads = 2, repeats = 3, membw = 1, json = 0, no_pack = 0;
    enum model_load_mode load = MODEL_LOAD_AUTO;
    uint32_t P = 512, N = 128, seq_runs[MAX_SEQ_RUNS] = {4, 8}, n_seq_runs = 2;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--no-membw")) {
            membw = 0;
            continue;
        }
        if (!strcmp(a, "--mmap") || !strcmp(a, "--copy")) {
            load = a[2] == 'm' ? MODEL_LOAD_MMAP : MODEL_LOAD_COPY;
            continue;
        }
        if (!strcmp(a, "--json")) {
            json = 1;
            continue;
        }
        if (!strcmp(a, "--no-pack")) {
            no_pack = 1;
            continue;
        }
        if (!v)
            usage();
        i++;
        if (!strcmp(a, "-m"))
            path = v;
        else if (!strcmp(a, "-t"))
            threads = atoi(v);
        else if (!strcmp(a, "-p"))
            P = (uint32_t)atoi(v);
        else if (!strcmp(a, "-n"))
            N = (uint32_t)atoi(v);
        else if (!strcmp(a, "-r"))
            repeats = atoi(v);
        else if (!strcmp(a, "-s")) {
            n_seq_runs = 0;
            for (char *s = (char *)v; *s && n_seq_runs < MAX_SEQ_RUNS;) {
                long x = strtol(s, &s, 10);
                if (x < 1 || x > MAX_SEQ_RUNS * 2)
                    usage();
                seq_runs[n_seq_runs++] = (uint32_t)x;
                if (*s == ',')
                    s++;
            }
        } else
            usage();
    }
    if (!path || threads < 1 || threads > 64 || P < 1 || P > 4096 || N < 1 || N > 4096 ||
        repeats < 1 || repeats > MAX_REPEATS)
        usage();

    char err[256];
    struct bench bx = {0};
    uint32_t max_s = 1;
    for (uint32_t i = 0; i < n_seq_runs; i++)
        max_s = seq_runs[i] > max_s ? seq_runs[i] : max_s;
    struct model_params mp = {
        .n_ctx_max = (P > N + 1 ? P : N + 1), .load = load, .no_pack = no_pack};
    bx.m = model_load(path, &mp, err, sizeof err);
    if (!bx.m) {
        fprintf(stderr, "bench_engine: %s\n", err);
        return 1;
    }
    bx.hp = model_get_hparams(bx.m);
    struct model_ctx_params cp = {
        .n_threads = (uint32_t)threads,
        .max_batch = P > max_s ? P : max_s,
        .max_seqs = max_s,
        .max_logits = max_s,
        .n_ctx = mp.n_ctx_max,
    };
    bx.ctx = model_ctx_new(bx.m, &cp, err, sizeof err);
    if (!bx.ctx) {
        fprintf(stderr, "bench_engine: %s\n", err);
        return 1;
    }
    if (model_batch_init(&bx.b, P > max_s ? P : max_s) ||
        !(bx.prompt = malloc(P * sizeof(int32_t))))
        die("allocation", -1);
    double t_loaded = now_s();
    /* first token: an 8-token prompt, then one decode step (weights now paged in) */
    {
        struct kv_cache *kv = model_ctx_kv(bx.ctx);
        int seq = kv_seq_alloc(kv);
        uint32_t n0 = P < 8 ? P : 8;
        make_prompt(bx.prompt, n0, bx.hp->n_vocab, 999);
        model_batch_clear(&bx.b);
        for (uint32_t i = 0; i < n0; i++)
            model_batch_add(&bx.b, bx.prompt[i], seq, i, i + 1 == n0);
        if (model_forward(bx.ctx, &bx.b))
            die("first forward", -1);
        kv_seq_free(kv, seq);
    }
    double t_first = now_s();

    double v[MAX_REPEATS], pp_min, pp_med, tg_min, tg_med;
    double agg_min[MAX_SEQ_RUNS], agg_med[MAX_SEQ_RUNS];
    for (int r = 0; r < repeats; r++)
        v[r] = run_prompt(&bx, P, (uint32_t)r);
    min_med(v, repeats, &pp_min, &pp_med);
    uint64_t rss = peak_rss(); /* loading and prompt processing */
    double bw = 0, bw_peak = 0;
    struct tp_pool *bw_tp = membw && threads > 1 ? tp_new(threads) : NULL;
    for (int r = 0; r < repeats; r++) {
        if (membw) {
            double b = kern_membw(bw_tp, (size_t)512 << 20, 2, 1);
            bw = b > bw ? b : bw;
        }
        v[r] = run_decode(&bx, 1, N, (uint32_t)r);
    }
    min_med(v, repeats, &tg_min, &tg_med);
    if (membw && reset_peak_rss() != 0) {
        fprintf(stderr, "bench_engine: cannot reset VmHWM; peak RSS is not reported\n");
        rss = 0;
    }
    for (uint32_t i = 0; i < n_seq_runs; i++) {
        for (int r = 0; r < repeats; r++)
            v[r] = run_decode(&bx, seq_runs[i], N, (uint32_t)r);
        min_med(v, repeats, &agg_min[i], &agg_med[i]);
    }
    if (rss) {
        uint64_t r2 = peak_rss(); /* decoding, several sequences */
        rss = r2 > rss ? r2 : rss;
    }

    if (membw)
        bw_peak = kern_membw(bw_tp, (size_t)512 << 20, 3, 32);
    tp_free(bw_tp);
    double wbytes = (double)model_weight_bytes(bx.m);
    double pp_flops = 0;
    for (uint32_t i = 0; i < P; i++)
        pp_flops += token_flops(bx.hp, i);
    pp_flops += 2.0 * bx.hp->n_embd * bx.hp->n_vocab; /* logits of the last token */
    double pp_tps = P / pp_min, tg_tps = N / tg_min;
    double bw_frac = bw > 0 ? tg_tps * wbytes / (bw * 1e9) : 0;
    uint64_t kv_bytes = kv_cache_bytes_per_token(model_ctx_kv(bx.ctx)) *
                        kv_cache_config(model_ctx_kv(bx.ctx))->budget_tokens;

    if (json) {
        printf("{\"model\":\"%s\",\"threads\":%d,\"weight_mb\":%.1f,\"load_s\":%.3f,"
               "\"first_token_s\":%.3f,\"pp\":%u,\"pp_tps\":%.2f,\"pp_tps_med\":%.2f,"
               "\"pp_gflops\":%.1f,\"tg\":%u,\"tg_tps\":%.2f,\"tg_tps_med\":%.2f,"
               "\"membw_gbs\":%.1f,\"membw_peak_gbs\":%.1f,\"tg_bw_frac\":%.3f",
               path, threads, wbytes / 1e6, t_loaded - t_start, t_first - t_start, P, pp_tps,
               P / pp_med, pp_flops / pp_min / 1e9, N, tg_tps, N / tg_med, bw, bw_peak, bw_frac);
        for (uint32_t i = 0; i < n_seq_runs; i++)
            printf(",\"agg%u_tps\":%.2f,\"agg%u_tps_med\":%.2f,\"agg%u_x\":%.2f", seq_runs[i],
                   seq_runs[i] * N / agg_min[i], seq_runs[i], seq_runs[i] * N / agg_med[i],
                   seq_runs[i], seq_runs[i] * N / agg_min[i] / tg_tps);
        printf(",\"peak_rss_mb\":%.1f,\"kv_mb\":%.1f,\"weights\":\"%s\",\"packed\":%u}\n",
               rss / 1e6, kv_bytes / 1e6, model_weights_memory(bx.m), model_weights_packed(bx.m));
    } else {
        printf("| %d | %.1f (%.1f) | %.0f | %.1f (%.1f) | %.0f%% |", threads, pp_tps, P / pp_med,
               pp_flops / pp_min / 1e9, tg_tps, N / tg_med, 100 * bw_frac);
        for (uint32_t i = 0; i < n_seq_runs; i++)
            printf(" %.1f (%.2fx) |", seq_runs[i] * N / agg_min[i],
                   seq_runs[i] * N / agg_min[i] / tg_tps);
        printf(" %.0f | %.2f / %.2f |\n", rss / 1e6, t_loaded - t_start, t_first - t_start);
    }
    free(bx.prompt);
    model_batch_free(&bx.b);
    model_ctx_free(bx.ctx);
    model_free(bx.m);
    return 0;
}
