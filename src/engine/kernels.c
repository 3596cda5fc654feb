/*
 * kernels.c - kernel dispatch, the matrix-product driver, the public
 * helper entry points and the memory-bandwidth probe.
 *
 * The driver quantizes activations (phase 1, rows split over threads), meets
 * at a barrier, and multiplies (phase 2, weight rows split over threads), all
 * inside one tp_run so a product costs a single wake-up of the pool.
 *
 * Not for: kernels themselves (kernels_scalar.c, kernels_avx2.c, kernels_avx512.c,
 * kernels_gemm_avx512.c).
 */
#include "engine/kernels.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/err.h"
#include "core/hugemem.h"
#include "core/log.h"
#include "engine/kernels_impl.h"
#include "engine/quant_blocks.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

/* ---- dispatch ------------------------------------------------------------ */

static enum kern_isa kern__detect(void)
{
#if defined(__x86_64__) || defined(__i386__)
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return KERN_ISA_SCALAR;
    int fma = (c >> 12) & 1, osxsave = (c >> 27) & 1, avx = (c >> 28) & 1, f16c = (c >> 29) & 1;
    if (!(fma && osxsave && avx && f16c))
        return KERN_ISA_SCALAR;
    unsigned xlo, xhi;
    __asm__ volatile("xgetbv" : "=a"(xlo), "=d"(xhi) : "c"(0));
    if ((xlo & 0x6) != 0x6) /* OS saves XMM and YMM state */
        return KERN_ISA_SCALAR;
    if (__get_cpuid_max(0, NULL) < 7)
        return KERN_ISA_SCALAR;
    __cpuid_count(7, 0, a, b, c, d);
    if (!((b >> 5) & 1)) /* AVX2 */
        return KERN_ISA_SCALAR;
    int f = (b >> 16) & 1, dq = (b >> 17) & 1, bw = (b >> 30) & 1, vl = (b >> 31) & 1;
    int vnni = (c >> 11) & 1;
    if (f && dq && bw && vl && vnni && (xlo & 0xe6) == 0xe6) /* + opmask, ZMM state */
        return KERN_ISA_AVX512;
    return KERN_ISA_AVX2;
#else
    return KERN_ISA_SCALAR;
#endif
}

/*
 * Whether the GEMVs over GGUF blocks prefetch ahead (kern_pf_ahead): on Intel
 * CPUs, where it was measured to pay; AISTACK_PREFETCH=1 or 0 decides instead
 * (to measure it on another CPU, and so that the tests run both variants on
 * any machine).
 */
static int kern__gemv_prefetch_read(void)
{
    const char *e = getenv("AISTACK_PREFETCH");
    if (e && (!strcmp(e, "0") || !strcmp(e, "1")))
        return e[0] == '1';
    if (e && *e)
        log_warn("AISTACK_PREFETCH is not 0 or 1; ignored", "prefetch=%s", e);
#if defined(__x86_64__) || defined(__i386__)
    unsigned a, b, c, d;
    if (!__get_cpuid(0, &a, &b, &c, &d))
        return 0;
    return b == 0x756e6547u && d == 0x49656e69u && c == 0x6c65746eu; /* "Genu" "ineI" "ntel" */
#else
    return 0;
#endif
}

/* Called by both x86 levels' init, inside kern__tables_init (pthread_once): read once. */
int kern__gemv_prefetch(void)
{
    static int pf = -1;
    if (pf < 0)
        pf = kern__gemv_prefetch_read();
    return pf;
}

static _Atomic(const struct kern__ops *) g_ops;
static atomic_int g_best = -1;

/*
 * AISTACK_ISA=scalar|avx2|avx512 caps the level the CPU's flags allow: to
 * compare levels on one machine, or to leave AVX-512 off where its clock
 * penalty costs more than it gains. A level above the CPU's is not granted.
 */
static int kern__isa_cap(int detected)
{
    const char *e = getenv("AISTACK_ISA");
    if (!e || !*e)
        return detected;
    static const char *const names[] = {"scalar", "avx2", "avx512"};
    for (int i = 0; i < 3; i++)
        if (strcmp(e, names[i]) == 0) {
            if (i > detected)
                log_warn("AISTACK_ISA is above what this CPU supports; ignored", "isa=%s cpu=%s", e,
                         names[detected]);
            return i < detected ? i : detected;
        }
    log_warn("AISTACK_ISA is not scalar, avx2 or avx512; ignored", "isa=%s", e);
    return detected;
}

enum kern_isa kern_isa_best(void)
{
    int b = atomic_load(&g_best);
    if (b < 0) {
        b = kern__isa_cap((int)kern__detect());
        atomic_store(&g_best, b);
    }
    return (enum kern_isa)b;
}

static struct kern__ops g_tables[3];
static pthread_once_t g_tables_once = PTHREAD_ONCE_INIT;

static void kern__tables_init(void)
{
    kern__init_scalar(&g_tables[KERN_ISA_SCALAR]);
    g_tables[KERN_ISA_AVX2] = g_tables[KERN_ISA_SCALAR];
    kern__init_avx2(&g_tables[KERN_ISA_AVX2]);
    g_tables[KERN_ISA_AVX512] = g_tables[KERN_ISA_AVX2];
    kern__init_avx512(&g_tables[KERN_ISA_AVX512]);
}

static const struct kern__ops *kern__ops_for(enum kern_isa isa)
{
    pthread_once(&g_tables_once, kern__tables_init);
    return &g_tables[isa];
}

static const struct kern__ops *kern__ops(void)
{
    const struct kern__ops *o = atomic_load_explicit(&g_ops, memory_order_acquire);
    if (!o) {
        o = kern__ops_for(kern_isa_best());
        atomic_store(&g_ops, o);
    }
    return o;
}

enum kern_isa kern_isa_get(void)
{
    return kern__ops()->isa;
}

int kern_isa_set(enum kern_isa isa)
{
    if ((int)isa < 0 || isa > kern_isa_best())
        return AS_EUNSUP;
    atomic_store(&g_ops, kern__ops_for(isa));
    return 0;
}

const char *kern_isa_name(enum kern_isa isa)
{
    switch (isa) {
    case KERN_ISA_SCALAR:
        return "scalar";
    case KERN_ISA_AVX2:
        return "avx2";
    case KERN_ISA_AVX512:
        return "avx512";
    }
    return "unknown";
}

/* ---- context and matrix-product driver ----------------------------------- */

/* Rows per weight panel in interleaved mode. */
#define KERN_PANEL 16
/* Bytes of quantized activations per L2-resident batch chunk in interleaved mode. */
#define KERN_CHUNK_BYTES (256 * 1024)
/* Smallest batch that uses the interleaved mode (when the ISA has it). */
#define KERN_IL_MIN_B 4
/*
 * Batch rows per call of a direct interleaved kernel (decoding several
 * sequences, prompts). A larger batch runs in chunks of this many rows over
 * each thread's weight rows: the chunk's activations stay in L2 and the
 * weights of a 16-row tile in L1 while the tile's groups go by. In cache, one
 * core (bench_kernels -c -t 1, 2026-12-05), direct at B = 64 against the
 * panels at B = 512: Q4_0 381 vs 269 GOP/s, Q8_0 294 vs 262 (351 since its
 * rows-in-lanes tile), Q4_K 282 vs 254 (418 since its rows-in-lanes tile),
 * Q6_K 261 vs 249; so the types with a direct kernel use it at every batch.
 */
#define KERN_DIRECT_CHUNK_B 64

struct kern_ctx {
    struct tp_pool *tp;
    int nth;
    void *act_mem;
    size_t act_cap;
    void *thr_mem; /* nth slices of thr_each bytes */
    size_t thr_each;
};

struct kern_ctx *kern_ctx_new(struct tp_pool *tp)
{
    struct kern_ctx *kc = calloc(1, sizeof(*kc));
    if (!kc)
        return NULL;
    kc->tp = tp;
    kc->nth = tp_n_threads(tp);
    return kc;
}

void kern_ctx_free(struct kern_ctx *kc)
{
    if (!kc)
        return;
    free(kc->act_mem);
    free(kc->thr_mem);
    free(kc);
}

struct tp_pool *kern_ctx_pool(const struct kern_ctx *kc)
{
    return kc ? kc->tp : NULL;
}

static size_t kern__round64(size_t n)
{
    return (n + 63) & ~(size_t)63;
}

/* Bytes of activation scratch for B rows of k (rows rounded up to the interleave). */
static size_t kern__act_bytes(int64_t B, int64_t k)
{
    size_t rows = (size_t)((B + KERN_IL - 1) / KERN_IL * KERN_IL);
    size_t nb = (size_t)k / 32;
    return kern__round64(rows * (size_t)k) + 4 * kern__round64(rows * nb * 2 * sizeof(float));
}

/* Per-thread scratch: a panel of packed rows, or float rows and blocks. */
static size_t kern__thr_bytes(int64_t B, int64_t k)
{
    size_t kk = (size_t)k;
    size_t panel = kern__round64(KERN_PANEL * kk) + 3 * kern__round64(KERN_PANEL * kk / 16 * 4);
    size_t fl = kern__float_scratch(B, k) * sizeof(float);
    return kern__round64(panel > fl ? panel : fl);
}

static int kern__grow(void **mem, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    void *p = aligned_alloc(64, kern__round64(need));
    if (!p)
        return AS_ENOMEM;
    free(*mem);
    *mem = p;
    *cap = need;
    return 0;
}

int kern_ctx_reserve(struct kern_ctx *kc, int64_t max_b, int64_t max_k)
{
    if (!kc || max_b < 0 || max_k < 0 || max_k > (1LL << 30) || max_b > (1LL << 24))
        return AS_EINVAL;
    int rc = kern__grow(&kc->act_mem, &kc->act_cap, kern__act_bytes(max_b, max_k));
    if (rc)
        return rc;
    size_t each = kern__thr_bytes(max_b, max_k);
    if (each > kc->thr_each) {
        size_t cap = 0;
        void *p = NULL;
        rc = kern__grow(&p, &cap, each * (size_t)kc->nth);
        if (rc)
            return rc;
        free(kc->thr_mem);
        kc->thr_mem = p;
        kc->thr_each = each;
    }
    return 0;
}

int kern_type_supported(enum ggml_type t)
{
    return t == GGML_TYPE_F32 || t == GGML_TYPE_F16 || t == GGML_TYPE_BF16 || kern__pack_bs(t) > 0;
}

struct kern__job {
    const struct kern__ops *ops;
    struct kern_ctx *kc;
    enum ggml_type t;
    const void *W;
    size_t row_bytes;
    int64_t n, k, B;
    const float *x;
    float *y;
    int packed; /* W is packed (kern_pack) */
    struct kern__act act;
    _Alignas(64) atomic_llong next; /* first unit not yet taken (kern__grab) */
};

/*
 * Takes the next chunk of [0, units) for a thread: guided scheduling, each
 * chunk a 2*nth-th of what is left but at least minc units, so a thread that
 * runs slower (a vCPU another tenant's load steals from) takes fewer chunks
 * instead of making the other wait at the end. Returns 0 when all is taken.
 */
static int kern__grab(struct kern__job *j, int64_t units, int64_t minc, int nth, int64_t *s,
                      int64_t *e)
{
    long long cur = atomic_load_explicit(&j->next, memory_order_relaxed);
    for (;;) {
        if (cur >= units)
            return 0;
        int64_t c = (units - cur) / (2 * nth);
        c = c < minc ? minc : c;
        c = c > units - cur ? units - cur : c;
        if (atomic_compare_exchange_weak_explicit(&j->next, &cur, cur + c, memory_order_relaxed,
                                                  memory_order_relaxed)) {
            *s = cur;
            *e = cur + c;
            return 1;
        }
    }
}

/* Units of the smallest chunk: about KERN_CHUNK_MIN_BYTES of weight rows. */
#define KERN_CHUNK_MIN_BYTES (32 << 10)
static int64_t kern__min_chunk(const struct kern__job *j, int64_t unit_rows)
{
    int64_t rows = KERN_CHUNK_MIN_BYTES / (int64_t)j->row_bytes;
    int64_t u = rows / unit_rows;
    return u < 1 ? 1 : u;
}

static void *kern__thr_scratch(struct kern_ctx *kc, int ith)
{
    return (char *)kc->thr_mem + (size_t)ith * kc->thr_each;
}

/* Carves a panel of up to KERN_PANEL rows out of the thread's scratch. */
static void kern__panel_init(struct kern__panel *p, void *mem, enum ggml_type t, int64_t k)
{
    int bs = kern__pack_bs(t);
    size_t qbytes = kern__round64((size_t)KERN_PANEL * (size_t)k);
    size_t fbytes = kern__round64((size_t)KERN_PANEL * (size_t)k / 16 * 4);
    char *c = mem;
    p->k = k;
    p->bs = bs;
    p->nblk = k / bs;
    p->has_min = kern__pack_has_min(t);
    p->q = (int8_t *)c;
    p->s = (float *)(c + qbytes);
    p->m = (float *)(c + qbytes + fbytes);
    p->qs128 = (int32_t *)(c + qbytes + 2 * fbytes);
    p->nr = 0;
}

static void kern__pack_panel(struct kern__panel *p, const struct kern__job *j, int64_t r0, int nr)
{
    p->nr = nr;
    for (int r = 0; r < nr; r++)
        j->ops->pack_row(j->t, (const char *)j->W + (size_t)(r0 + r) * j->row_bytes, j->k,
                         (int8_t *)p->q + (size_t)r * (size_t)j->k, (float *)p->s + r * p->nblk,
                         (float *)p->m + r * p->nblk, (int32_t *)p->qs128 + r * p->nblk);
}

/* Batch rows [row0, row0 + max) of interleaved activations (row0 a multiple of KERN_IL). */
static struct kern__act kern__act_rows(const struct kern__act *a, int64_t row0, int64_t max)
{
    struct kern__act sub = *a;
    const int64_t nb = a->k / 32;
    sub.B = a->B - row0 < max ? a->B - row0 : max;
    sub.qs += row0 * a->k;
    sub.d += row0 * nb;
    sub.ds += row0 * nb;
    sub.ds16 += row0 * 2 * nb;
    sub.is16 += row0 * 2 * nb;
    return sub;
}

static void kern__job_run(void *arg, int ith, int nth)
{
    struct kern__job *j = arg;
    const struct kern__ops *ops = j->ops;
    long long s, e;

    if (j->t == GGML_TYPE_F32 || j->t == GGML_TYPE_F16 || j->t == GGML_TYPE_BF16) {
        tp_split(j->n, ith, nth, &s, &e);
        if (s < e)
            ops->gemm_float(j->t, j->W, j->row_bytes, j->k, s, e, j->x, j->B, j->y, j->n,
                            kern__thr_scratch(j->kc, ith));
        return;
    }

    int il8 = j->act.layout == KERN_ACT_IL8 || j->act.layout == KERN_ACT_IL8S ||
              j->act.layout == KERN_ACT_IL8S8;
    /* phase 1: quantize activations */
    if (il8) {
        int64_t groups = (j->B + KERN_IL - 1) / KERN_IL;
        tp_split(groups, ith, nth, &s, &e);
        s *= KERN_IL;
        e = e * KERN_IL < j->B ? e * KERN_IL : j->B;
        if (s < e)
            ops->quantize_act(j->x, s, e, &j->act);
    } else {
        tp_split(j->B, ith, nth, &s, &e);
        if (s < e)
            ops->quantize_act(j->x, s, e, &j->act);
    }
    if (nth > 1)
        tp_barrier(j->kc->tp);

    /* phase 2: multiply, weight rows split over threads */
    if (j->packed) {
        /* whole tiles, the whole batch per tile range in chunks */
        int64_t units = j->n / KERN_PACK_ROWS, us, ue;
        while (kern__grab(j, units, kern__min_chunk(j, KERN_PACK_ROWS), nth, &us, &ue))
            for (int64_t row0 = 0; row0 < j->B; row0 += KERN_DIRECT_CHUNK_B) {
                struct kern__act sub = kern__act_rows(&j->act, row0, KERN_DIRECT_CHUNK_B);
                ops->pk_gemm[j->t](j->W, j->row_bytes, j->k, us * KERN_PACK_ROWS,
                                   ue * KERN_PACK_ROWS, &sub, j->y + row0 * j->n, j->n);
            }
        return;
    }
    if (j->act.layout == KERN_ACT_IL8S || j->act.layout == KERN_ACT_IL8S8) {
        /* direct kernel: units of 8 rows, the whole batch per unit */
        int64_t units = (j->n + KERN_IL - 1) / KERN_IL, us, ue;
        while (kern__grab(j, units, kern__min_chunk(j, KERN_IL), nth, &us, &ue)) {
            int64_t r1 = ue * KERN_IL < j->n ? ue * KERN_IL : j->n;
            for (int64_t row0 = 0; row0 < j->B; row0 += KERN_DIRECT_CHUNK_B) {
                struct kern__act sub = kern__act_rows(&j->act, row0, KERN_DIRECT_CHUNK_B);
                ops->il8_gemm[j->t](j->W, j->row_bytes, j->k, us * KERN_IL, r1, &sub,
                                    j->y + row0 * j->n, j->n);
            }
        }
        return;
    }
    if (il8) {
        struct kern__panel p;
        kern__panel_init(&p, kern__thr_scratch(j->kc, ith), j->t, j->k);
        int64_t panels = (j->n + KERN_PANEL - 1) / KERN_PANEL;
        tp_split(panels, ith, nth, &s, &e);
        /*
         * Batch rows in chunks whose activations stay in L2 while the panels
         * stream by (a panel is re-unpacked per chunk, cheap next to the chunk's work).
         */
        int64_t groups = (j->B + KERN_IL - 1) / KERN_IL;
        int64_t cg = KERN_CHUNK_BYTES / (KERN_IL * j->k); /* groups per chunk, even */
        cg = cg < 2 ? 2 : cg > 64 ? 64 : cg & ~(int64_t)1;
        for (int64_t g0 = 0; g0 < groups; g0 += cg) {
            int64_t row0 = g0 * KERN_IL;
            struct kern__act sub = kern__act_rows(&j->act, row0, cg * KERN_IL);
            for (int64_t pi = s; pi < e; pi++) {
                int64_t r0 = pi * KERN_PANEL;
                int nr = (int)(j->n - r0 < KERN_PANEL ? j->n - r0 : KERN_PANEL);
                kern__pack_panel(&p, j, r0, nr);
                ops->panel_gemm(&p, &sub, j->y + row0 * j->n + r0, j->n);
            }
        }
        return;
    }
    kern__gemv_fn gemv = ops->gemv[j->t];
    if (gemv) {
        /* units of 4 rows so SIMD kernels can tile rows */
        int64_t units = (j->n + 3) / 4, us, ue;
        while (kern__grab(j, units, kern__min_chunk(j, 4), nth, &us, &ue)) {
            int64_t r1 = ue * 4 < j->n ? ue * 4 : j->n;
            gemv(j->W, j->row_bytes, j->k, us * 4, r1, &j->act, 0, j->B, j->y, j->n);
        }
        return;
    }
    struct kern__panel p;
    kern__panel_init(&p, kern__thr_scratch(j->kc, ith), j->t, j->k);
    tp_split(j->n, ith, nth, &s, &e);
    for (int64_t r = s; r < e; r++) {
        kern__pack_panel(&p, j, r, 1);
        for (int64_t b = 0; b < j->B; b++)
            j->y[b * j->n + r] = ops->dot_packed(&p, &j->act, b);
    }
}

/* Multiply-adds below which a product runs on the calling thread alone. */
#define KERN_SERIAL_MACS (1 << 18)

static int kern__matmul(struct kern_ctx *kc, enum ggml_type wtype, const void *W, int64_t n_rows,
                        int64_t k, const float *x, int64_t B, float *y, int packed)
{
    if (!kc || n_rows < 0 || k <= 0 || B < 0 || (n_rows > 0 && B > 0 && (!W || !x || !y)))
        return AS_EINVAL;
    if (!kern_type_supported(wtype))
        return AS_EUNSUP;
    const struct ggml_type_info *ti = ggml_type_get((uint32_t)wtype);
    if (!ti || k % ti->blck_size != 0)
        return AS_EINVAL;
    if (n_rows == 0 || B == 0)
        return 0;
    int rc = kern_ctx_reserve(kc, B, k);
    if (rc)
        return rc;

    struct kern__job j = {
        .ops = kern__ops(),
        .kc = kc,
        .t = wtype,
        .W = W,
        .row_bytes = ggml_row_size(wtype, (uint64_t)k),
        .n = n_rows,
        .k = k,
        .B = B,
        .x = x,
        .y = y,
        .packed = packed,
    };
    if (wtype != GGML_TYPE_F32 && wtype != GGML_TYPE_F16 && wtype != GGML_TYPE_BF16) {
        struct kern__act *a = &j.act;
        size_t rows = (size_t)((B + KERN_IL - 1) / KERN_IL * KERN_IL);
        size_t nb = (size_t)k / 32;
        char *c = kc->act_mem;
        a->B = B;
        a->k = k;
        a->nb32 = k / 32;
        int64_t gemv_max = j.ops->gemv_max_b[wtype] ? j.ops->gemv_max_b[wtype] : KERN_IL_MIN_B - 1;
        /* packed, one row: natural order (a row of 8192 is 8 KB, in L1; interleaved, 64 KB) */
        if (packed && j.ops->pk_natural)
            a->layout = KERN_ACT_PLAIN;
        else if (packed)
            a->layout = B == 1 ? KERN_ACT_PLAIN_I : KERN_ACT_IL8S8;
        else if (j.ops->gemv[wtype] && B <= gemv_max)
            a->layout = j.ops->gemv_layout[wtype];
        else if (j.ops->il8_gemm[wtype] && B >= KERN_IL_MIN_B)
            a->layout = j.ops->il8_s8[wtype] ? KERN_ACT_IL8S8 : KERN_ACT_IL8S;
        else if (j.ops->panel_gemm && B >= KERN_IL_MIN_B)
            a->layout = KERN_ACT_IL8;
        else if (j.ops->gemv[wtype])
            a->layout = j.ops->gemv_layout[wtype];
        else
            a->layout = j.ops->packed_layout;
        a->qs = (int8_t *)c;
        c += kern__round64(rows * (size_t)k);
        a->d = (float *)c;
        c += kern__round64(rows * nb * 2 * sizeof(float));
        a->ds = (float *)c;
        c += kern__round64(rows * nb * 2 * sizeof(float));
        a->ds16 = (float *)c;
        c += kern__round64(rows * nb * 2 * sizeof(float));
        a->is16 = (int32_t *)c;
    }
    /*
     * A small product finishes on the caller sooner than the pool wakes up, and
     * on a busy machine every wake-up of a descheduled worker costs a time slice.
     */
    if ((double)n_rows * (double)k * (double)B < KERN_SERIAL_MACS)
        kern__job_run(&j, 0, 1);
    else
        tp_run(kc->tp, kern__job_run, &j);
    return 0;
}

int kern_matmul(struct kern_ctx *kc, enum ggml_type wtype, const void *W, int64_t n_rows, int64_t k,
                const float *x, int64_t B, float *y)
{
    return kern__matmul(kc, wtype, W, n_rows, k, x, B, y, 0);
}

/* ---- packed matrices ---------------------------------------------------------- */

/* Bytes per block before its quants (the fp16 scale), for the types with a packed form; 0: none. */
static size_t kern__pack_head(enum ggml_type t)
{
    return t == GGML_TYPE_Q4_0 || t == GGML_TYPE_Q8_0 || t == GGML_TYPE_Q5_0 ? 2
           : t == GGML_TYPE_Q4_K                                             ? 16
                                                                             : 0;
}

/*
 * Q5_0's qh in packed form: bit 2j + h of byte t is the fifth bit of element
 * 16h + 4j + t (the GGUF form's bit 16h + 4j + t), so that for quant dword j
 * the fifth bits of its low (h = 0) or high (h = 1) nibbles sit at one bit
 * position of each byte: one shift and one AND put them at bit 4. The bit
 * permutation goes through tables of each input byte's contribution
 * ([to_tile][byte][value]; a loop over the 32 bits took 72% of a model load).
 */
static uint32_t g_q5_qh_tab[2][4][256];
static pthread_once_t g_q5_qh_once = PTHREAD_ONCE_INIT;

static void kern__q5_qh_init(void)
{
    for (int t = 0; t < 4; t++)
        for (int j = 0; j < 4; j++)
            for (int h = 0; h < 2; h++) {
                const int g = 16 * h + 4 * j + t, p = 8 * t + 2 * j + h;
                for (int v = 0; v < 256; v++) {
                    if (v >> (g % 8) & 1)
                        g_q5_qh_tab[1][g / 8][v] |= 1u << p;
                    if (v >> (p % 8) & 1)
                        g_q5_qh_tab[0][p / 8][v] |= 1u << g;
                }
            }
}

static inline uint32_t kern__q5_qh(uint32_t v, int to_tile)
{
    const uint32_t(*T)[256] = g_q5_qh_tab[to_tile];
    return T[0][v & 0xFF] | T[1][v >> 8 & 0xFF] | T[2][v >> 16 & 0xFF] | T[3][v >> 24];
}

int kern_pack_supported(enum ggml_type t)
{
    return kern__pack_head(t) && kern__ops()->pk_gemm[t] != NULL;
}

/*
 * One tile of KERN_PACK_ROWS rows from GGUF form (rows row_bytes apart) to
 * packed form (to_tile), or back. Per block of S bytes, the first head bytes
 * are scales (Q4_0/Q8_0/Q5_0: d; Q4_K: d, dmin, 12 scale bytes) and the rest quant
 * dwords. The heads go after all quants, per block in 2-byte units, each unit
 * of the 16 rows together (for Q4_0/Q8_0 the 16 fp16 scales in a row).
 */
static void kern__pack_tile(const uint8_t *src, uint8_t *dst, size_t row_bytes, int64_t nb,
                            size_t S, size_t head, int q5, int to_tile)
{
    const size_t nd = (S - head) / 4; /* quant dwords per block */
    const size_t scales = (size_t)nb * nd * 4 * KERN_PACK_ROWS;
    for (int64_t b = 0; b < nb; b++)
        for (size_t r = 0; r < KERN_PACK_ROWS; r++) {
            const size_t rp = r * row_bytes + (size_t)b * S; /* the block in GGUF form */
            for (size_t u = 0; u < head / 2; u++) { /* 2-byte units, the 16 rows' side by side */
                const size_t tp = scales + ((size_t)b * head / 2 + u) * KERN_PACK_ROWS * 2 + r * 2;
                memcpy(dst + (to_tile ? tp : rp + 2 * u), src + (to_tile ? rp + 2 * u : tp), 2);
            }
            for (size_t j = 0; j < nd; j++) {
                const size_t tq = (((size_t)b * nd + j) * KERN_PACK_ROWS + r) * 4;
                const size_t rq = rp + head + 4 * j;
                uint32_t v;
                memcpy(&v, src + (to_tile ? rq : tq), 4);
                if (q5 && j == 0) /* Q5_0's qh, the first dword after d */
                    v = kern__q5_qh(v, to_tile);
                memcpy(dst + (to_tile ? tq : rq), &v, 4);
            }
        }
}

static int kern__pack_all(enum ggml_type t, const void *src, int64_t n_rows, int64_t k, void *dst,
                          int to_tile)
{
    if (t == GGML_TYPE_Q5_0)
        pthread_once(&g_q5_qh_once, kern__q5_qh_init);
    const struct ggml_type_info *ti = ggml_type_get((uint32_t)t);
    const size_t head = kern__pack_head(t);
    if (!head || !ti)
        return AS_EUNSUP;
    if (!src || !dst || k <= 0 || n_rows < 0 || n_rows % KERN_PACK_ROWS || k % ti->blck_size)
        return AS_EINVAL;
    const size_t rb = ggml_row_size(t, (uint64_t)k);
    for (int64_t r = 0; r < n_rows; r += KERN_PACK_ROWS)
        kern__pack_tile((const uint8_t *)src + (size_t)r * rb, (uint8_t *)dst + (size_t)r * rb, rb,
                        k / ti->blck_size, ti->type_size, head, t == GGML_TYPE_Q5_0, to_tile);
    return 0;
}

int kern_pack(enum ggml_type t, const void *W, int64_t n_rows, int64_t k, void *P)
{
    return kern__pack_all(t, W, n_rows, k, P, 1);
}

int kern_unpack(enum ggml_type t, const void *P, int64_t n_rows, int64_t k, void *W)
{
    return kern__pack_all(t, P, n_rows, k, W, 0);
}

int kern_matmul_packed(struct kern_ctx *kc, enum ggml_type wtype, const void *P, int64_t n_rows,
                       int64_t k, const float *x, int64_t B, float *y)
{
    if (!kern__pack_head(wtype))
        return AS_EUNSUP;
    if (!kc || n_rows < 0 || n_rows % KERN_PACK_ROWS || k <= 0 || B < 0)
        return AS_EINVAL;
    if (kern__ops()->pk_gemm[wtype])
        return kern__matmul(kc, wtype, P, n_rows, k, x, B, y, 1);
    if (n_rows == 0 || B == 0)
        return 0;
    /* no packed kernels at this level: tile by tile through the GGUF form */
    const size_t rb = ggml_row_size(wtype, (uint64_t)k);
    uint8_t *rows = malloc(rb * KERN_PACK_ROWS);
    float *ty = malloc(sizeof(float) * (size_t)B * KERN_PACK_ROWS);
    int rc = rows && ty ? 0 : AS_ENOMEM;
    for (int64_t r = 0; !rc && r < n_rows; r += KERN_PACK_ROWS) {
        rc = kern_unpack(wtype, (const uint8_t *)P + (size_t)r * rb, KERN_PACK_ROWS, k, rows);
        if (!rc)
            rc = kern_matmul(kc, wtype, rows, KERN_PACK_ROWS, k, x, B, ty);
        for (int64_t b = 0; !rc && b < B; b++)
            memcpy(y + b * n_rows + r, ty + b * KERN_PACK_ROWS, sizeof(float) * KERN_PACK_ROWS);
    }
    free(rows);
    free(ty);
    return rc;
}

/* ---- helpers --------------------------------------------------------------- */

void kern_rmsnorm(float *out, const float *x, const float *w, int64_t n, float eps)
{
    kern__ops()->rmsnorm(out, x, w, n, eps);
}

void kern_softmax(float *x, int64_t n)
{
    kern__ops()->softmax(x, n);
}

int64_t kern_argmax(const float *x, int64_t n)
{
    return kern__ops()->argmax(x, n);
}

void kern_swiglu(float *out, const float *gate, const float *up, int64_t n)
{
    kern__ops()->swiglu(out, gate, up, n);
}

void kern_add(float *y, const float *x, int64_t n)
{
    kern__ops()->add(y, x, n);
}

void kern_scale(float *x, float s, int64_t n)
{
    kern__ops()->scale(x, s, n);
}

void kern_axpy(float *y, float a, const float *x, int64_t n)
{
    kern__ops()->axpy(y, a, x, n);
}

float kern_dot(const float *x, const float *y, int64_t n)
{
    return kern__ops()->dot(x, y, n);
}

void kern_rope(float *x, int n_heads, int head_dim, int n_rot, const float *cos_t,
               const float *sin_t, int neox)
{
    int half = n_rot / 2;
    for (int h = 0; h < n_heads; h++) {
        float *v = x + (size_t)h * (size_t)head_dim;
        if (neox) {
            for (int i = 0; i < half; i++) {
                float a = v[i], b = v[i + half];
                v[i] = a * cos_t[i] - b * sin_t[i];
                v[i + half] = a * sin_t[i] + b * cos_t[i];
            }
        } else {
            for (int i = 0; i < half; i++) {
                float a = v[2 * i], b = v[2 * i + 1];
                v[2 * i] = a * cos_t[i] - b * sin_t[i];
                v[2 * i + 1] = a * sin_t[i] + b * cos_t[i];
            }
        }
    }
}

void kern_f32_to_f16(ggml_fp16_t *dst, const float *src, int64_t n)
{
    kern__ops()->f32_to_f16(dst, src, n);
}

void kern_f16_to_f32(float *dst, const ggml_fp16_t *src, int64_t n)
{
    kern__ops()->f16_to_f32(dst, src, n);
}

float kern_dot_f16_f32(const ggml_fp16_t *a, const float *b, int64_t n)
{
    return kern__ops()->dot_f16_f32(a, b, n);
}

void kern_axpy_f16(float *y, float s, const ggml_fp16_t *x, int64_t n)
{
    kern__ops()->axpy_f16(y, s, x, n);
}

/* ---- memory bandwidth ------------------------------------------------------ */

struct kern__bw_job {
    const uint64_t *buf;
    size_t n; /* uint64 words in this slice */
    uint64_t sink[TP_MAX_THREADS];
};

static void kern__bw_run(void *arg, int ith, int nth)
{
    struct kern__bw_job *j = arg;
    long long s, e;
    tp_split((long long)(j->n / 8), ith, nth, &s, &e);
    const uint64_t *p = j->buf + s * 8;
    uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0, a6 = 0, a7 = 0;
    for (long long i = s; i < e; i++, p += 8) {
        a0 += p[0];
        a1 += p[1];
        a2 += p[2];
        a3 += p[3];
        a4 += p[4];
        a5 += p[5];
        a6 += p[6];
        a7 += p[7];
    }
    j->sink[ith] = a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7;
}

double kern_membw(struct tp_pool *tp, size_t bytes, int reps, int slices)
{
    /*
     * The buffer is read in slices timed one by one (each slice is far from
     * the caches by the time it is read again): the best slice is what the
     * memory delivers when nothing else interferes over a slice's span.
     */
    const size_t nslice = slices > 1 ? (size_t)slices : 1;
    size_t words = bytes / sizeof(uint64_t) / (8 * nslice) * (8 * nslice);
    if (words == 0)
        return 0.0;
    /* in huge pages, like the weights it is the yardstick for */
    size_t bytes_used = words * sizeof(uint64_t);
    uint64_t *buf = hugemem_alloc(bytes_used);
    if (!buf)
        return 0.0;
    for (size_t i = 0; i < words; i++)
        buf[i] = i;
    struct kern__bw_job j = {0};
    j.n = words / nslice;
    double best = 0.0;
    for (int r = 0; r < (reps > 0 ? reps : 1); r++) {
        for (size_t sl = 0; sl < nslice; sl++) {
            j.buf = buf + sl * j.n;
            struct timespec t0, t1;
            clock_gettime(CLOCK_MONOTONIC, &t0);
            tp_run(tp, kern__bw_run, &j);
            clock_gettime(CLOCK_MONOTONIC, &t1);
            double sec = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
            double gbs = (double)(j.n * sizeof(uint64_t)) / sec / 1e9;
            if (gbs > best)
                best = gbs;
        }
    }
    hugemem_free(buf, bytes_used);
    return best;
}
