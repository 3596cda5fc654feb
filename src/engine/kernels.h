/*
 * kernels.h - the engine's compute kernels: matrix products over GGUF weight
 * types and the vectorised element-wise helpers a transformer forward needs.
 *
 * Every kernel has a scalar implementation and, where the CPU has them,
 * AVX2+FMA and AVX-512 (F/BW/VL/DQ/VNNI) ones, picked once at run time from
 * the CPU's flags (kern_isa_set() can force a lower level for tests/benches;
 * the AISTACK_ISA environment variable caps it for a whole process).
 *
 * Matrix products: y = x * W^T, with W stored as GGUF rows (n_rows rows of k
 * elements of the weight type, row-major, contiguous) and x, y float. For the
 * quantized types the activations are quantized on the fly to 8 bits per
 * 32-element block (float scale), once per call into the context's scratch.
 * A batch of B activation rows is processed in one pass over the weights.
 *
 * Not for: attention over the KV cache as a whole, sampling, tensor layouts
 * other than row-major contiguous. Reference (scalar, exact) quantization lives
 * in quant.h; this module only needs to agree with it within stated tolerances.
 */
#ifndef AISTACK_ENGINE_KERNELS_H
#define AISTACK_ENGINE_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "engine/fp16.h"
#include "engine/ggml_types.h"
#include "engine/threadpool.h"

/* Instruction-set levels, ordered. */
enum kern_isa {
    KERN_ISA_SCALAR = 0,
    KERN_ISA_AVX2 = 1,   /* AVX2 + FMA + F16C */
    KERN_ISA_AVX512 = 2, /* + AVX-512 F/BW/VL/DQ/VNNI */
};

/* The best level this CPU supports (cached after the first call). */
enum kern_isa kern_isa_best(void);
/* The level in use (initially kern_isa_best()). */
enum kern_isa kern_isa_get(void);
/*
 * Forces the level used by all kernels from now on (process-wide; call while
 * no kernel runs). Returns 0, or AS_EUNSUP if the CPU lacks that level.
 */
int kern_isa_set(enum kern_isa isa);
/* "scalar", "avx2", "avx512". */
const char *kern_isa_name(enum kern_isa isa);

/*
 * A kernel context: the thread pool to use and the scratch memory for
 * activation quantization and weight-panel unpacking. Scratch grows to the
 * largest shape seen (or reserved) and is then reused: no allocation per call.
 * One context per thread that issues kernel calls.
 */
struct kern_ctx;

/* New context using pool tp (borrowed; may be NULL for single-threaded). NULL on OOM. */
struct kern_ctx *kern_ctx_new(struct tp_pool *tp);
/* Frees the context (not the pool). Accepts NULL. */
void kern_ctx_free(struct kern_ctx *kc);
/* The pool the context uses (may be NULL). */
struct tp_pool *kern_ctx_pool(const struct kern_ctx *kc);
/* Pre-allocates scratch for products with up to max_b rows of up to max_k elements. 0 or AS_ENOMEM.
 */
int kern_ctx_reserve(struct kern_ctx *kc, int64_t max_b, int64_t max_k);

/* True if kern_matmul supports weight type t (F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0,
 * Q2_K..Q6_K). */
int kern_type_supported(enum ggml_type t);

/*
 * y (B, n_rows) = x (B, k) * W^T, W = n_rows rows of k elements of type wtype.
 * k must be a multiple of the type's block size (32, or 256 for K-quants).
 * x and y must not overlap. Work is split over the context's pool.
 * Returns 0, AS_EUNSUP for an unsupported type, AS_EINVAL for bad sizes,
 * AS_ENOMEM if scratch could not grow.
 */
int kern_matmul(struct kern_ctx *kc, enum ggml_type wtype, const void *W, int64_t n_rows, int64_t k,
                const float *x, int64_t B, float *y);

/*
 * Packed matrices: the rows of a weight matrix rearranged once (at model load)
 * into tiles that the kernels read without transposing. Tile t of 16 rows
 * takes the same bytes as its rows [16t, 16t + 16) in GGUF form (16 row
 * sizes, same place), so a packed matrix is as large as the original. For
 * Q4_0 and Q8_0, a tile holds first, per 32-block, the rows' quant bytes in
 * 64-byte pieces (piece j: bytes 4j..4j+3 of row r's quants at 4r), then, per
 * block, the 16 rows' fp16 scales (32 bytes). Q4_K the same way with its
 * 32 quant dwords per super-block and, after them, per super-block the 16
 * rows' 16-byte heads (d, dmin, 12 scale bytes) in 2-byte units: unit u of
 * the 16 rows side by side (32 bytes), units 0 to 7. Products over a packed matrix give
 * the same results as over the original, within float rounding.
 */
#define KERN_PACK_ROWS 16

/*
 * Whether the kernels in use have a packed form of type t: Q4_0 and Q8_0 with
 * AVX2 or AVX-512 VNNI, Q4_K and Q5_0 with AVX2 (AVX-512 reads their GGUF
 * form in lanes directly). Only then is packing worth it; kern_matmul_packed() still
 * works at any level (more slowly: it unpacks tile by tile).
 */
int kern_pack_supported(enum ggml_type t);
/*
 * Writes n_rows rows of k elements of type t (GGUF form, at W) packed to P
 * (same size; P must not overlap W). n_rows must be a multiple of
 * KERN_PACK_ROWS, t a type with a packed form. 0, or AS_EINVAL/AS_EUNSUP.
 */
int kern_pack(enum ggml_type t, const void *W, int64_t n_rows, int64_t k, void *P);
/* The inverse of kern_pack(): P back to GGUF rows at W. Same contract. */
int kern_unpack(enum ggml_type t, const void *P, int64_t n_rows, int64_t k, void *W);
/* kern_matmul() over a matrix that kern_pack() wrote. */
int kern_matmul_packed(struct kern_ctx *kc, enum ggml_type wtype, const void *P, int64_t n_rows,
                       int64_t k, const float *x, int64_t B, float *y);

/*
 * Measures streaming read bandwidth in GB/s (1e9 bytes/s) over a fresh buffer
 * of `bytes` (should be many times the last-level cache), read by all threads
 * of tp (NULL: the caller alone) in `slices` separately timed slices, the
 * best slice of `reps` passes. 32 slices time spans like one matrix product's
 * (robust to other processes on a shared machine, and an upper bound); 1
 * slice is STREAM's method, best whole pass, the rate sustained over spans
 * like one decoded token's. 0 on allocation failure or a tiny buffer.
 */
double kern_membw(struct tp_pool *tp, size_t bytes, int reps, int slices);

/* --- element-wise helpers (single-threaded; call them per row/slice) --- */

/* out[i] = x[i] / sqrt(mean(x^2) + eps) * w[i]; w may be NULL (no weight). out may equal x. */
void kern_rmsnorm(float *out, const float *x, const float *w, int64_t n, float eps);
/* In-place softmax of x[0..n) (max-subtracted; -INFINITY entries give 0). n >= 1. */
void kern_softmax(float *x, int64_t n);
/*
 * Index of the first largest element of x[0..n) (NaN entries never count; 0
 * when all are NaN or n == 0). Greedy sampling over a vocabulary: the plain
 * loop took 0.5 ms for 128256 logits, a vectorized pass ~30 us.
 */
int64_t kern_argmax(const float *x, int64_t n);
/* out[i] = silu(gate[i]) * up[i] (SwiGLU); out may equal gate or up. */
void kern_swiglu(float *out, const float *gate, const float *up, int64_t n);
/* y[i] += x[i] */
void kern_add(float *y, const float *x, int64_t n);
/* x[i] *= s */
void kern_scale(float *x, float s, int64_t n);
/* y[i] += a * x[i] */
void kern_axpy(float *y, float a, const float *x, int64_t n);
/* sum x[i] * y[i] */
float kern_dot(const float *x, const float *y, int64_t n);

/*
 * Rotary embedding applied in place to n_heads heads of head_dim floats
 * (head h at x + h * head_dim). cos_t/sin_t hold n_rot/2 values for this
 * position (theta_i = pos * freq_i). Only the first n_rot dims of a head rotate.
 * neox = 0: pairs (2i, 2i+1) (llama); neox = 1: pairs (i, i + n_rot/2) (qwen2/NeoX).
 */
void kern_rope(float *x, int n_heads, int head_dim, int n_rot, const float *cos_t,
               const float *sin_t, int neox);

/* dst[i] = fp16(src[i]) (round to nearest even) */
void kern_f32_to_f16(ggml_fp16_t *dst, const float *src, int64_t n);
/* dst[i] = float(src[i]) */
void kern_f16_to_f32(float *dst, const ggml_fp16_t *src, int64_t n);
/* sum float(a[i]) * b[i] (attention scores over an F16 K cache) */
float kern_dot_f16_f32(const ggml_fp16_t *a, const float *b, int64_t n);
/* y[i] += s * float(x[i]) (attention output over an F16 V cache) */
void kern_axpy_f16(float *y, float s, const ggml_fp16_t *x, int64_t n);

#endif
