/*
 * kernels.c (bench_kernels) - memory bandwidth, and kern_matmul speed per weight type.
 *
 * GEMV (B = 1): the weights of a 1B-model-sized set of matrices (more than
 * the last-level cache, cycled) stream from memory once per product; reported
 * as achieved GB/s of weight bytes and as a fraction of the best streaming-read
 * bandwidth measured in the same run with the same thread count (re-measured
 * before each row, since other processes may share the machine).
 * GEMM (B = 8, 16, 32, 64, 512): GOP/s (2 * n * k * B / time). Minimum time of
 * several repeats (the machine is shared).
 *
 * usage: bench_kernels [-t threads] [-T type,type,...] [-i isa] [-q] [-c] [-P]
 *   -q  quick: fewer repeats and sizes (smoke run)
 *   -c  compute ceilings instead: a small matrix that stays in cache, many
 *       repeats timed in CPU time (B=1 as GB/s of weights, batches as GOP/s);
 *       shows what the kernels can do per core when memory is not the limit
 *   -P  the matrices packed (kern_pack) where the type has a packed form, as
 *       model_load() places them; such rows are marked "p" after the type
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/hugemem.h"
#include "engine/kernels.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static uint64_t g_rng = 88172645463325252ULL;

static uint32_t rnd(void)
{
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (uint32_t)(g_rng >> 17);
}

/* Random weight bytes with sane fp16 scales: every 16-bit word that could be
 * a scale is made a small positive half (harmless for the quant bits). */
static void fill_weights(enum ggml_type t, uint8_t *w, size_t bytes)
{
    for (size_t i = 0; i < bytes; i++)
        w[i] = (uint8_t)rnd();
    if (t == GGML_TYPE_F32) {
        float *f = (float *)w;
        for (size_t i = 0; i < bytes / 4; i++)
            f[i] = (float)(rnd() % 2001) / 1000.0f - 1.0f;
        return;
    }
    if (t == GGML_TYPE_F16 || t == GGML_TYPE_BF16) {
        uint16_t *h = (uint16_t *)w;
        for (size_t i = 0; i < bytes / 2; i++)
            h[i] = t == GGML_TYPE_F16 ? fp32_to_fp16((float)(rnd() % 2001) / 1000.0f - 1.0f)
                                      : fp32_to_bf16((float)(rnd() % 2001) / 1000.0f - 1.0f);
        return;
    }
    const struct ggml_type_info *ti = ggml_type_get(t);
    size_t nb = bytes / ti->type_size;
    for (size_t b = 0; b < nb; b++) {
        uint8_t *blk = w + b * ti->type_size;
        ggml_fp16_t d = fp32_to_fp16(0.01f);
        /* scale fields: first 2 or 4 bytes for the 32-blocks and Q4_K/Q5_K, last 2 for Q2_K..Q6_K
         */
        if (t == GGML_TYPE_Q2_K || t == GGML_TYPE_Q3_K || t == GGML_TYPE_Q6_K)
            memcpy(blk + ti->type_size - 2, &d, 2);
        else
            memcpy(blk, &d, 2);
        if (t == GGML_TYPE_Q2_K || t == GGML_TYPE_Q4_K || t == GGML_TYPE_Q5_K ||
            t == GGML_TYPE_Q4_1 || t == GGML_TYPE_Q5_1)
            memcpy(blk + (t == GGML_TYPE_Q2_K ? ti->type_size - 4 : 2), &d, 2);
    }
}

static void noop(void *ctx, int ith, int nth)
{
    (void)ctx;
    (void)ith;
    (void)nth;
}

static enum ggml_type parse_type(const char *s)
{
    for (uint32_t t = 0; t < GGML_TYPE_COUNT; t++) {
        const struct ggml_type_info *ti = ggml_type_get(t);
        if (ti && strcasecmp(ti->name, s) == 0)
            return (enum ggml_type)t;
    }
    return GGML_TYPE_COUNT;
}

static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int g_pack; /* -P: products over packed matrices (kern_pack) where the type has them */

/* Packs the nmat matrices of n rows at w in place, if -P and type t has a packed form. */
static int maybe_pack(enum ggml_type t, uint8_t *w, int64_t n, int64_t k, int nmat)
{
    if (!g_pack || !kern_pack_supported(t) || n % KERN_PACK_ROWS)
        return 0;
    size_t mbytes = ggml_row_size(t, (uint64_t)k) * (size_t)n;
    uint8_t *tmp = malloc(mbytes);
    if (!tmp)
        return 0;
    for (int m = 0; m < nmat; m++) {
        kern_pack(t, w + (size_t)m * mbytes, n, k, tmp);
        memcpy(w + (size_t)m * mbytes, tmp, mbytes);
    }
    free(tmp);
    return 1;
}

static void matmul(struct kern_ctx *kc, enum ggml_type t, int packed, const void *W, int64_t n,
                   int64_t k, const float *x, int64_t B, float *y)
{
    if (packed)
        kern_matmul_packed(kc, t, W, n, k, x, B, y);
    else
        kern_matmul(kc, t, W, n, k, x, B, y);
}

/*
 * Minimum over reps of the process CPU time of one call divided by the
 * thread count: unlike wall time it does not grow when other processes
 * preempt us (waiting threads spin, so it never undercounts the work).
 */
static double time_min(struct kern_ctx *kc, enum ggml_type t, int packed, const void *w, int64_t n,
                       int64_t k, const float *x, int64_t B, float *y, int reps)
{
    double best = 1e30;
    int nth = tp_n_threads(kern_ctx_pool(kc));
    for (int rep = 0; rep < reps; rep++) {
        double t0 = cpu_s();
        matmul(kc, t, packed, w, n, k, x, B, y);
        double dt = (cpu_s() - t0) / nth;
        best = dt < best ? dt : best;
    }
    return best;
}

/* -c: cache-resident matrices, so the numbers are compute ceilings. */
static int run_in_cache(struct kern_ctx *kc, const char *types)
{
    const int64_t n = 512, k = 2048;
    printf("in-cache ceilings (n x k = %lld x %lld; B=512 on 256 rows), min CPU time of many "
           "calls\n",
           (long long)n, (long long)k);
    static const int64_t Bs[] = {2, 4, 6, 8, 16, 32, 64};
    static const int reps[] = {200, 100, 100, 100, 60, 40, 30};
    printf("%-6s %9s %9s", "type", "B=1 GB/s", "B=2 GOP/s");
    for (size_t i = 1; i < sizeof(Bs) / sizeof(Bs[0]); i++) {
        char h[16];
        snprintf(h, sizeof(h), "B=%lld", (long long)Bs[i]);
        printf(" %9s", h);
    }
    printf(" %9s\n", "B=512");
    float *x = malloc(sizeof(float) * (size_t)(k * 512));
    float *y = malloc(sizeof(float) * (size_t)(n * 512));
    char tl[256];
    snprintf(tl, sizeof(tl), "%s", types);
    for (char *save = NULL, *tn = strtok_r(tl, ",", &save); tn && x && y;
         tn = strtok_r(NULL, ",", &save)) {
        enum ggml_type t = parse_type(tn);
        if (t == GGML_TYPE_COUNT || !kern_type_supported(t))
            continue;
        size_t mbytes = ggml_row_size(t, (uint64_t)k) * (size_t)n;
        uint8_t *w = malloc(mbytes);
        if (!w)
            break;
        fill_weights(t, w, mbytes);
        int packed = maybe_pack(t, w, n, k, 1);
        for (int64_t i = 0; i < k * 512; i++)
            x[i] = (float)(rnd() % 2001) / 1000.0f - 1.0f;
        double t1 = time_min(kc, t, packed, w, n, k, x, 1, y, 300);
        printf("%-6s%s %9.1f", ggml_type_get(t)->name, packed ? "p" : "",
               (double)mbytes / t1 / 1e9);
        for (size_t i = 0; i < sizeof(Bs) / sizeof(Bs[0]); i++)
            printf(" %9.1f", 2.0 * n * k * (double)Bs[i] /
                                 time_min(kc, t, packed, w, n, k, x, Bs[i], y, reps[i]) / 1e9);
        double t512 = time_min(kc, t, packed, w, 256, k, x, 512, y, 20);
        printf(" %9.1f\n", 2.0 * 256 * k * 512 / t512 / 1e9);
        free(w);
    }
    free(x);
    free(y);
    return x && y ? 0 : 1;
}

int main(int argc, char **argv)
{
    int nth = 2, quick = 0, in_cache = 0;
    const char *types = "q4_0,q8_0,q4_K,q5_K,q6_K,f16,q4_1,q5_0,q5_1,q2_K,q3_K,bf16,f32";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-t") && i + 1 < argc)
            nth = (int)strtol(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "-T") && i + 1 < argc)
            types = argv[++i];
        else if (!strcmp(argv[i], "-i") && i + 1 < argc) {
            const char *n = argv[++i];
            enum kern_isa isa = !strcmp(n, "scalar") ? KERN_ISA_SCALAR
                                : !strcmp(n, "avx2") ? KERN_ISA_AVX2
                                                     : KERN_ISA_AVX512;
            if (kern_isa_set(isa) != 0) {
                fprintf(stderr, "isa %s not supported here\n", n);
                return 1;
            }
        } else if (!strcmp(argv[i], "-q"))
            quick = 1;
        else if (!strcmp(argv[i], "-c"))
            in_cache = 1;
        else if (!strcmp(argv[i], "-P"))
            g_pack = 1;
        else {
            fprintf(stderr,
                    "usage: %s [-t threads] [-T types] [-i scalar|avx2|avx512] [-q] [-c] [-P]\n",
                    argv[0]);
            return 2;
        }
    }
    struct tp_pool *tp = tp_new(nth);
    struct kern_ctx *kc = kern_ctx_new(tp);
    if (!tp || !kc) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    if (in_cache) {
        printf("isa %s, threads %d\n", kern_isa_name(kern_isa_get()), nth);
        int rc = run_in_cache(kc, types);
        kern_ctx_free(kc);
        tp_free(tp);
        return rc;
    }
    size_t bw_bytes = quick ? (64u << 20) : (512u << 20);
    double bw = kern_membw(tp, bw_bytes, quick ? 2 : 5, 32);
    struct tp_pool *tp1 = nth > 1 ? tp_new(1) : NULL;
    double bw1 = nth > 1 ? kern_membw(tp1, bw_bytes, quick ? 2 : 5, 32) : bw;
    tp_free(tp1);
    printf("isa %s, threads %d\n", kern_isa_name(kern_isa_get()), nth);
    printf("memory read bandwidth: %.1f GB/s (%d threads), %.1f GB/s (1 thread)\n", bw, nth, bw1);

    double lat = 1e30;
    for (int rep = 0; rep < 5; rep++) {
        double t0 = now_s();
        for (int i = 0; i < 1000; i++)
            tp_run(tp, noop, NULL);
        double dt = (now_s() - t0) / 1000;
        lat = dt < lat ? dt : lat;
    }
    printf("tp_run round trip (%d threads): %.2f us\n", nth, lat * 1e6);

    static const int64_t shapes[][2] = {{8192, 2048}, {2048, 8192}};
    static const int64_t batches[] = {8, 16, 32, 64, 512};
    printf("GEMV: B=1, weights streamed from memory, min per call; %%bw = GB/s / read bandwidth\n"
           "x8: 8 * t(B=1) / t(B=8), the gain from batching 8 rows; then GOP/s = 2*n*k*B / t\n");
    printf("%-6s %-11s %8s %7s %6s %8s %5s %9s %9s %9s %9s %9s\n", "type", "n x k", "B=1 us",
           "GB/s", "%bw", "B=8 us", "x8", "B=8 GOP/s", "B=16", "B=32", "B=64", "B=512");
    char tl[256];
    snprintf(tl, sizeof(tl), "%s", types);
    for (char *save = NULL, *tn = strtok_r(tl, ",", &save); tn; tn = strtok_r(NULL, ",", &save)) {
        enum ggml_type t = parse_type(tn);
        if (t == GGML_TYPE_COUNT || !kern_type_supported(t)) {
            fprintf(stderr, "skipping unknown type %s\n", tn);
            continue;
        }
        for (int si = 0; si < 2; si++) {
            int64_t n = shapes[si][0], k = shapes[si][1];
            size_t mbytes = ggml_row_size(t, (uint64_t)k) * (size_t)n;
            /* enough distinct matrices to exceed the caches several times */
            size_t total = quick ? (64u << 20) : (384u << 20);
            int nmat = (int)((total + mbytes - 1) / mbytes);
            /* in huge pages, as model_load() places the weights */
            uint8_t *w = hugemem_alloc(mbytes * (size_t)nmat);
            float *x = malloc(sizeof(float) * (size_t)(k * 512));
            float *y = malloc(sizeof(float) * (size_t)(n * 512));
            if (!w || !x || !y) {
                fprintf(stderr, "out of memory\n");
                return 1;
            }
            fill_weights(t, w, mbytes * (size_t)nmat);
            int packed = maybe_pack(t, w, n, k, nmat);
            for (int64_t i = 0; i < k * 512; i++)
                x[i] = (float)(rnd() % 2001) / 1000.0f - 1.0f;
            kern_ctx_reserve(kc, 512, k);

            /* the machine may be shared: %bw is against the best bandwidth seen so far */
            double bwl = kern_membw(tp, bw_bytes / 2, 2, 32);
            if (bwl > bw)
                bw = bwl;
            /* per call minimum: each call streams a matrix last touched nmat calls ago */
            double best = 1e30;
            for (int rep = 0; rep < (quick ? 2 : 6); rep++) {
                for (int m = 0; m < nmat; m++) {
                    double t0 = now_s();
                    matmul(kc, t, packed, w + (size_t)m * mbytes, n, k, x, 1, y);
                    double dt = now_s() - t0;
                    if (dt < best)
                        best = dt;
                }
            }
            double gbs = (double)mbytes / best / 1e9;
            printf("%-5s%s %5lldx%-5lld %8.1f %7.1f %5.0f%%", ggml_type_get(t)->name,
                   packed ? "p" : " ", (long long)n, (long long)k, best * 1e6, gbs,
                   100.0 * gbs / bw);
            for (size_t bi = 0; bi < sizeof(batches) / sizeof(batches[0]); bi++) {
                int64_t B = batches[bi];
                if (quick && B > 64) {
                    printf(" %9s", "-");
                    continue;
                }
                double bt = 1e30;
                int reps = B >= 512 ? 3 : B >= 64 ? 6 : B >= 16 ? nmat : 3 * nmat;
                for (int rep = 0; rep < reps; rep++) {
                    double t0 = now_s();
                    matmul(kc, t, packed, w + (size_t)(rep % nmat) * mbytes, n, k, x, B, y);
                    double dt = now_s() - t0;
                    if (dt < bt)
                        bt = dt;
                }
                if (B == 8)
                    printf(" %8.1f %5.2f", bt * 1e6, 8.0 * best / bt);
                printf(" %9.1f", 2.0 * (double)n * (double)k * (double)B / bt / 1e9);
            }
            printf("\n");
            fflush(stdout);
            hugemem_free(w, mbytes * (size_t)nmat);
            free(x);
            free(y);
        }
    }
    double bw_end = kern_membw(tp, bw_bytes, quick ? 2 : 5, 32);
    printf("memory read bandwidth at the end: %.1f GB/s (%d threads); best seen %.1f GB/s\n",
           bw_end, nth, bw_end > bw ? bw_end : bw);
    kern_ctx_free(kc);
    tp_free(tp);
    return 0;
}
