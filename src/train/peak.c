/* peak.c - FMA throughput micro-benchmark (see peak.h). */
#include "train/peak.h"

#include <cblas.h>
#include <immintrin.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/*
 * 12 independent accumulator chains hide the FMA latency on current cores.
 * Intrinsics, because ISO C mode does not contract a * b + c into an FMA.
 */
#define CHAINS 12

__attribute__((target("avx512f"))) static float fma_avx512(long iters)
{
    __m512 acc[CHAINS], a = _mm512_set1_ps(0.999f), b = _mm512_set1_ps(1e-7f);
    for (int i = 0; i < CHAINS; i++)
        acc[i] = _mm512_setzero_ps();
    for (long it = 0; it < iters; it++)
#pragma GCC unroll 12
        for (int i = 0; i < CHAINS; i++)
            acc[i] = _mm512_fmadd_ps(acc[i], a, b);
    float s = 0;
    for (int i = 0; i < CHAINS; i++)
        s += _mm512_reduce_add_ps(acc[i]);
    return s;
}

__attribute__((target("avx2,fma"))) static float fma_avx2(long iters)
{
    __m256 acc[CHAINS], a = _mm256_set1_ps(0.999f), b = _mm256_set1_ps(1e-7f);
    for (int i = 0; i < CHAINS; i++)
        acc[i] = _mm256_setzero_ps();
    for (long it = 0; it < iters; it++)
#pragma GCC unroll 12
        for (int i = 0; i < CHAINS; i++)
            acc[i] = _mm256_fmadd_ps(acc[i], a, b);
    float s = 0, t[8];
    for (int i = 0; i < CHAINS; i++) {
        _mm256_storeu_ps(t, acc[i]);
        for (int j = 0; j < 8; j++)
            s += t[j];
    }
    return s;
}

static float fma_scalar(long iters)
{
    float acc[CHAINS] = {0};
    for (long it = 0; it < iters; it++)
#pragma GCC unroll 12
        for (int i = 0; i < CHAINS; i++)
            acc[i] = fmaf(acc[i], 0.999f, 1e-7f);
    float s = 0;
    for (int i = 0; i < CHAINS; i++)
        s += acc[i];
    return s;
}

struct peak_job {
    int kind; /* 2 avx512, 1 avx2, 0 scalar */
    long iters;
    volatile float sink;
};

static void *peak_thread(void *arg)
{
    struct peak_job *j = arg;
    j->sink = j->kind == 2   ? fma_avx512(j->iters)
              : j->kind == 1 ? fma_avx2(j->iters)
                             : fma_scalar(j->iters);
    return NULL;
}

double peak_flops(int n_threads, int ms, const char **isa)
{
    __builtin_cpu_init();
    int kind = __builtin_cpu_supports("avx512f")                                   ? 2
               : (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) ? 1
                                                                                   : 0;
    int lanes = kind == 2 ? 16 : kind == 1 ? 8 : 1;
    if (isa)
        *isa = kind == 2 ? "avx512" : kind == 1 ? "avx2+fma" : "scalar";
    if (n_threads < 1)
        n_threads = 1;
    /* calibrate on one thread, then run all threads for about ms */
    long iters = 1 << 16;
    double t0 = now_s();
    struct peak_job cal = {kind, iters, 0};
    peak_thread(&cal);
    double dt = now_s() - t0;
    if (dt > 0)
        iters = (long)((double)iters * ((double)ms / 1000.0) / dt);
    if (iters < 1 << 16)
        iters = 1 << 16;
    struct peak_job *jobs = calloc((size_t)n_threads, sizeof *jobs);
    pthread_t *th = calloc((size_t)n_threads, sizeof *th);
    if (!jobs || !th) {
        free(jobs);
        free(th);
        return 0;
    }
    t0 = now_s();
    for (int i = 0; i < n_threads; i++) {
        jobs[i] = (struct peak_job){kind, iters, 0};
        if (i && pthread_create(&th[i], NULL, peak_thread, &jobs[i]))
            jobs[i].iters = -1;
    }
    peak_thread(&jobs[0]);
    for (int i = 1; i < n_threads; i++)
        if (jobs[i].iters >= 0)
            pthread_join(th[i], NULL);
    dt = now_s() - t0;
    int ran = 0;
    for (int i = 0; i < n_threads; i++)
        ran += jobs[i].iters >= 0;
    free(jobs);
    free(th);
    return (double)ran * (double)iters * CHAINS * lanes * 2.0 / dt;
}

double peak_sgemm_flops(int n)
{
    float *a = malloc((size_t)n * n * 4), *b = malloc((size_t)n * n * 4),
          *c = malloc((size_t)n * n * 4);
    double best = 0;
    if (a && b && c) {
        for (size_t i = 0; i < (size_t)n * n; i++)
            a[i] = b[i] = (float)(i % 7) * 0.1f;
        for (int rep = 0; rep < 3; rep++) {
            double t0 = now_s();
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f,
                        c, n);
            double f = 2.0 * n * n * (double)n / (now_s() - t0);
            best = f > best ? f : best;
        }
    }
    free(a);
    free(b);
    free(c);
    return best;
}
