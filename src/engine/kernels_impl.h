/*
 * kernels_impl.h - internal contract between the kernel driver (kernels.c)
 * and its per-ISA implementations (kernels_avx2.c, kernels_avx512.c).
 *
 * Not a public header: model code uses kernels.h only.
 *
 * Quantized products run in one of two modes:
 *  - plain (small batches): activations are signed int8 rows + per-32 float
 *    scales; weight rows are either handled by a type-specific direct kernel
 *    or unpacked one row at a time ("packed row", below) and dotted.
 *  - interleaved (larger batches, AVX-512 VNNI): activations are stored as
 *    unsigned (q + 128) with 8 rows interleaved per 4-byte step, so that one
 *    vpdpbusd on a 256-bit register advances 8 batch rows against a broadcast
 *    4-byte piece of one weight row; weights are unpacked panel by panel.
 *
 * Packed row: a weight row unpacked to int8 q[k], with per-block (16 or 32
 * elements, see kern__pack_bs) float scale s and bias m such that
 * w[i] = s[blk] * q[i] + m[blk], and qs128[blk] = 128 * sum(q over blk)
 * (the correction for unsigned activations).
 */
#ifndef AISTACK_ENGINE_KERNELS_IMPL_H
#define AISTACK_ENGINE_KERNELS_IMPL_H

#include <stdint.h>

#include "engine/ggml_types.h"
#include "engine/kernels.h"

/*
 * KERN_UNROLL(n) before a loop: unrolled n times. Not under the sanitizers:
 * clang -O1 with ASan/UBSan spent more than 19 minutes on
 * kernels_direct_avx512.c with its tiles unrolled, 19 s without; the
 * sanitized build runs the same code, rolled.
 */
#if defined(__SANITIZE_ADDRESS__)
#define KERN_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(undefined_behavior_sanitizer)
#define KERN_SANITIZED 1
#endif
#endif
#ifdef KERN_SANITIZED
#define KERN_UNROLL(n)
#else
#define KERN__PRAGMA(x) _Pragma(#x)
#define KERN_UNROLL(n)  KERN__PRAGMA(GCC unroll n)
#endif

/* Activation rows interleaved per group in the interleaved layout. */
#define KERN_IL 8

enum kern__layout {
    KERN_ACT_PLAIN = 0,   /* signed, natural order */
    KERN_ACT_IL8 = 1,     /* unsigned (q + 128), 8 rows interleaved per 4 bytes */
    KERN_ACT_Q4P = 2,     /* signed; per unit of 16 full blocks, for m = 0..3: the first
                             halves of blocks m, 4 + m, 8 + m, 12 + m, then their second halves
                             (the Q4_0 GEMV's nibble vectors); after the last unit, per group of
                             4 full blocks the 4 first halves, then the 4 second; tail natural */
    KERN_ACT_U8 = 3,      /* unsigned (q + 128), natural order */
    KERN_ACT_K4P = 4,     /* signed; in each 128 elements the 32-byte pieces ordered 0, 2, 1, 3
                             (matches a 64-byte Q4_K nibble load: low nibbles hold pieces 0 and 2) */
    KERN_ACT_IL8S = 5,    /* as KERN_ACT_IL8 but signed (no + 128): for direct kernels whose
                             weight quants are the unsigned side of vpdpbusd */
    KERN_ACT_IL8S8 = 6,   /* as KERN_ACT_IL8S but 8 bytes per row per step: per group and
                             32-block, (4, 8, 8): elements 8m..8m+7 of the 8 rows, m = 0..3
                             (for kernels that put weight rows in lanes) */
    KERN_ACT_PLAIN_I = 7, /* as KERN_ACT_PLAIN plus is16: one row against packed matrices */
};

/* Quantized activations: B rows of k elements, per-32 scales. */
struct kern__act {
    int64_t B, k;
    int64_t nb32; /* k / 32 */
    int layout;
    /*
     * plain: qs (B, k) signed; d, ds (B, nb32); ds16 (B, 2 * nb32)
     * il8:   qs (G, k / 4, 8, 4) as uint8 q + 128, G = ceil(B / 8), pad rows 0;
     *        d, ds (G, nb32, 8); ds16 (G, 2 * nb32, 8)
     */
    int8_t *qs;
    float *d;    /* block scale */
    float *ds;   /* d * sum(q) over the 32-block */
    float *ds16; /* d * sum(q) over each 16-element half */
    /*
     * il8 only: sum(q) over each 16-element half as an integer, (G, 2 * nb32, 8),
     * so the direct kernels remove their weights' offsets exactly in int32 (in
     * float, -128 * d * sum(q) cancelled most of d * sum(u * q) and lost digits)
     */
    int32_t *is16;
};

/* A panel of nr packed weight rows (row r: q + r * k, block arrays + r * nblk). */
struct kern__panel {
    int nr;
    int64_t k;
    int bs;               /* 16 or 32 */
    int64_t nblk;         /* k / bs */
    int has_min;          /* m is meaningful (else all zero) */
    const int8_t *q;      /* (nr, k) */
    const float *s;       /* (nr, nblk) */
    const float *m;       /* (nr, nblk) */
    const int32_t *qs128; /* (nr, nblk) */
};

/*
 * Direct product for a quantized type against plain activations:
 * y[b * ldy + r] for r in [r0, r1), b in [b0, b1). W points at row 0.
 */
typedef void (*kern__gemv_fn)(const void *W, size_t row_bytes, int64_t k, int64_t r0, int64_t r1,
                              const struct kern__act *a, int64_t b0, int64_t b1, float *y,
                              int64_t ldy);

/*
 * Per-thread scratch of the float products (gemm_float), in floats: 4 rows of
 * k, or a block of up to KERN_FLOAT_BLK_ROWS x KERN_FLOAT_KC converted weights
 * plus a KERN_FLOAT_KC-wide slice of the B batch rows rounded up to a group of
 * at most 16 (the outer-product forms of kernels_avx512.c and
 * kernels_gemm_avx2.c check their tiles against these).
 */
#define KERN_FLOAT_BLK_ROWS 32
#define KERN_FLOAT_KC       256
static inline size_t kern__float_scratch(int64_t B, int64_t k)
{
    size_t blk = ((size_t)KERN_FLOAT_BLK_ROWS + (size_t)B + 16) * KERN_FLOAT_KC;
    return 4 * (size_t)k > blk ? 4 * (size_t)k : blk;
}

/* Per-ISA operations. NULL entries fall back to the generic packed path. */
struct kern__ops {
    enum kern_isa isa;
    /* Quantizes rows [r0, r1) of x (row stride k) into a (layout a->layout). */
    void (*quantize_act)(const float *x, int64_t r0, int64_t r1, struct kern__act *a);
    /* Packed row (r = 0 of p) dotted with activation row b (layout packed_layout). */
    float (*dot_packed)(const struct kern__panel *p, const struct kern__act *a, int64_t b);
    uint8_t packed_layout;
    /* Unpacks a row (same contract as kern__pack_row). */
    void (*pack_row)(enum ggml_type t, const void *row, int64_t k, int8_t *q, float *s, float *m,
                     int32_t *qs128);
    /* Panel times all interleaved activation groups: y[b * ldy + r], r < p->nr, b < B. NULL: no il8
     * mode. */
    void (*panel_gemm)(const struct kern__panel *p, const struct kern__act *a, float *y,
                       int64_t ldy);
    kern__gemv_fn gemv[GGML_TYPE_COUNT];
    /*
     * Direct small-batch products over KERN_ACT_IL8S activations (no weight
     * unpacking): y[b * ldy + r] for r in [r0, r1) (r0 a multiple of 8), all
     * a->B rows. NULL: the type goes through packed panels.
     */
    void (*il8_gemm[GGML_TYPE_COUNT])(const void *W, size_t row_bytes, int64_t k, int64_t r0,
                                      int64_t r1, const struct kern__act *a, float *y, int64_t ldy);
    /*
     * Products over packed matrices (kern_pack) at every batch size, against
     * KERN_ACT_IL8S8 activations: y[b * ldy + r] for r in [r0, r1) (multiples
     * of KERN_PACK_ROWS), all a->B rows (at most KERN_DIRECT_CHUNK_B). NULL:
     * no packed form at this level.
     */
    void (*pk_gemm[GGML_TYPE_COUNT])(const void *P, size_t row_bytes, int64_t k, int64_t r0,
                                     int64_t r1, const struct kern__act *a, float *y, int64_t ldy);
    /*
     * 1: pk_gemm takes KERN_ACT_PLAIN activations (with is16) at every batch
     * size; 0: KERN_ACT_IL8S8, and KERN_ACT_PLAIN_I for one row.
     */
    uint8_t pk_natural;
    /* 1: il8_gemm[t] takes KERN_ACT_IL8S8 activations (else KERN_ACT_IL8S). */
    uint8_t il8_s8[GGML_TYPE_COUNT];
    /* Activation layout gemv[t] expects (KERN_ACT_PLAIN or KERN_ACT_Q4P). */
    uint8_t gemv_layout[GGML_TYPE_COUNT];
    /*
     * Largest batch that gemv[t] serves (its weight unpacking shared by several
     * activation rows); 0 means KERN_IL_MIN_B - 1.
     */
    uint8_t gemv_max_b[GGML_TYPE_COUNT];
    /*
     * Float weights (F32/F16/BF16): rows [r0, r1) for all B rows of x. scratch:
     * the thread's, at least kern__float_scratch(B, k) floats.
     */
    void (*gemm_float)(enum ggml_type t, const void *W, size_t row_bytes, int64_t k, int64_t r0,
                       int64_t r1, const float *x, int64_t B, float *y, int64_t ldy,
                       float *scratch);
    /* helpers, same contracts as in kernels.h */
    void (*rmsnorm)(float *out, const float *x, const float *w, int64_t n, float eps);
    void (*softmax)(float *x, int64_t n);
    void (*swiglu)(float *out, const float *gate, const float *up, int64_t n);
    void (*add)(float *y, const float *x, int64_t n);
    void (*scale)(float *x, float s, int64_t n);
    void (*axpy)(float *y, float a, const float *x, int64_t n);
    float (*dot)(const float *x, const float *y, int64_t n);
    int64_t (*argmax)(const float *x, int64_t n);
    void (*f32_to_f16)(ggml_fp16_t *dst, const float *src, int64_t n);
    void (*f16_to_f32)(float *dst, const ggml_fp16_t *src, int64_t n);
    float (*dot_f16_f32)(const ggml_fp16_t *a, const float *b, int64_t n);
    void (*axpy_f16)(float *y, float s, const ggml_fp16_t *x, int64_t n);
};

/* Block size of the packed form of type t (16 or 32), 0 if t is not a quantized type we pack. */
int kern__pack_bs(enum ggml_type t);
/* Whether packed t has a nonzero bias m. */
int kern__pack_has_min(enum ggml_type t);
/* Unpacks one row of k elements of type t into q (k), s, m, qs128 (k / bs each). */
void kern__pack_row(enum ggml_type t, const void *row, int64_t k, int8_t *q, float *s, float *m,
                    int32_t *qs128);

/* Scalar activation quantization of one row: q (k), d, ds (k/32), ds16 (k/16). */
void kern__quantize_row_ref(const float *x, int64_t k, int8_t *q, float *d, float *ds, float *ds16);

/*
 * Whether the GEMVs over GGUF blocks prefetch ahead: AISTACK_PREFETCH=0|1, else
 * on Intel CPUs (where it pays). Read when the kernel tables are built.
 */
int kern__gemv_prefetch(void);

/*
 * Per-ISA tables are layered: kern__init_scalar() fills the base table, the
 * AVX2 table starts as a copy of the scalar one and kern__init_avx2() overrides what it implements;
 * the AVX-512 table starts from the AVX2 one. Each init sets o->isa.
 */
void kern__init_scalar(struct kern__ops *o);
void kern__init_avx2(struct kern__ops *o);
void kern__init_avx512(struct kern__ops *o);
/* The products over packed matrices at the AVX2 level (kernels_gemm_avx2.c), called by
 * kern__init_avx2. */
void kern__init_avx2_gemm(struct kern__ops *o);
/* The batched-product part of the AVX-512 level (kernels_gemm_avx512.c), called by
 * kern__init_avx512. */
void kern__init_avx512_gemm(struct kern__ops *o);
/* The direct small-batch products (kernels_direct_avx512.c), called by kern__init_avx512_gemm. */
void kern__init_avx512_direct(struct kern__ops *o);

#endif
