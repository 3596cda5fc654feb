/*
 * quant.c - reference quantization for the float types and the 32-element
 * block types (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1), and the per-type traits
 * table (see quant.h). The K types live in quant_k.c.
 *
 * Rounding mirrors ggml's reference code so that a row quantized here is
 * byte-identical to one quantized by ggml from the same floats.
 */
#include "engine/quant.h"

#include <math.h>
#include <string.h>

#include "core/err.h"
#include "engine/fp16.h"
#include "engine/quant_internal.h"

int quant_nearest_int(float x)
{
    return quant__nearest_int(x);
}

/* ---- float types ----------------------------------------------------------- */

static void dequant_f32(const void *src, float *dst, int64_t n)
{
    memcpy(dst, src, (size_t)n * sizeof(float));
}

static void quant_f32(const float *src, void *dst, int64_t n)
{
    memcpy(dst, src, (size_t)n * sizeof(float));
}

static void dequant_f16(const void *src, float *dst, int64_t n)
{
    const ggml_fp16_t *s = src;
    for (int64_t i = 0; i < n; i++)
        dst[i] = fp16_to_fp32(s[i]);
}

static void quant_f16(const float *src, void *dst, int64_t n)
{
    ggml_fp16_t *d = dst;
    for (int64_t i = 0; i < n; i++)
        d[i] = fp32_to_fp16(src[i]);
}

static void dequant_bf16(const void *src, float *dst, int64_t n)
{
    const ggml_bf16_t *s = src;
    for (int64_t i = 0; i < n; i++)
        dst[i] = bf16_to_fp32(s[i]);
}

static void quant_bf16(const float *src, void *dst, int64_t n)
{
    ggml_bf16_t *d = dst;
    for (int64_t i = 0; i < n; i++)
        d[i] = fp32_to_bf16(src[i]);
}

static float dot_f32(int64_t n, const void *w, const void *x)
{
    const float *a = w, *b = x;
    double s = 0;
    for (int64_t i = 0; i < n; i++)
        s += (double)a[i] * b[i];
    return (float)s;
}

static float dot_f16(int64_t n, const void *w, const void *x)
{
    const ggml_fp16_t *a = w;
    const float *b = x;
    double s = 0;
    for (int64_t i = 0; i < n; i++)
        s += (double)fp16_to_fp32(a[i]) * b[i];
    return (float)s;
}

static float dot_bf16(int64_t n, const void *w, const void *x)
{
    const ggml_bf16_t *a = w;
    const float *b = x;
    double s = 0;
    for (int64_t i = 0; i < n; i++)
        s += (double)bf16_to_fp32(a[i]) * b[i];
    return (float)s;
}

/* ---- 32-element blocks ------------------------------------------------------ */

/*
 * MIN(hi, (int)v) with truncation, as ggml's (int8_t) casts compute it for
 * the v >= 0 that finite inputs give, but defined for NaN and out-of-range v
 * (a hostile file's weights must not reach an undefined float->int cast).
 */
static int trunc_q(float v, int hi)
{
    if (!(v > 0.f))
        return 0;
    return v >= (float)hi ? hi : (int)v;
}

/* roundf(v) as int8, same guard (finite inputs give |v| <= 127). */
static int8_t round_q8(float v)
{
    if (v != v)
        return 0;
    return (int8_t)(v <= -127.f ? -127 : v >= 127.f ? 127 : (int)roundf(v));
}

/* Largest |x| of a block, and the signed value that has it. */
static float block_absmax(const float *x, int n, float *signed_max)
{
    float amax = 0.f, max = 0.f;
    for (int j = 0; j < n; j++) {
        if (fabsf(x[j]) > amax) {
            amax = fabsf(x[j]);
            max = x[j];
        }
    }
    *signed_max = max;
    return amax;
}

static void block_minmax(const float *x, int n, float *mn, float *mx)
{
    float lo = INFINITY, hi = -INFINITY;
    for (int j = 0; j < n; j++) {
        lo = x[j] < lo ? x[j] : lo;
        hi = x[j] > hi ? x[j] : hi;
    }
    *mn = lo;
    *mx = hi;
}

static void quant_q4_0(const float *src, void *dst, int64_t n)
{
    block_q4_0 *y = dst;
    for (int64_t i = 0; i < n / QK4_0; i++, src += QK4_0) {
        float max;
        block_absmax(src, QK4_0, &max);
        /* the extreme value maps to -8, using the full asymmetric range */
        const float d = max / -8, id = d ? 1.0f / d : 0.0f;
        y[i].d = fp32_to_fp16(d);
        for (int j = 0; j < QK4_0 / 2; j++) {
            const int q0 = trunc_q(src[j] * id + 8.5f, 15);
            const int q1 = trunc_q(src[j + QK4_0 / 2] * id + 8.5f, 15);
            y[i].qs[j] = (uint8_t)(q0 | (q1 << 4));
        }
    }
}

static void dequant_q4_0(const void *src, float *dst, int64_t n)
{
    const block_q4_0 *x = src;
    for (int64_t i = 0; i < n / QK4_0; i++, dst += QK4_0) {
        const float d = fp16_to_fp32(x[i].d);
        for (int j = 0; j < QK4_0 / 2; j++) {
            dst[j] = (float)((x[i].qs[j] & 0xf) - 8) * d;
            dst[j + QK4_0 / 2] = (float)((x[i].qs[j] >> 4) - 8) * d;
        }
    }
}

static void quant_q4_1(const float *src, void *dst, int64_t n)
{
    block_q4_1 *y = dst;
    for (int64_t i = 0; i < n / QK4_1; i++, src += QK4_1) {
        float mn, mx;
        block_minmax(src, QK4_1, &mn, &mx);
        const float d = (mx - mn) / 15, id = d ? 1.0f / d : 0.0f;
        y[i].d = fp32_to_fp16(d);
        y[i].m = fp32_to_fp16(mn);
        for (int j = 0; j < QK4_1 / 2; j++) {
            const int q0 = trunc_q((src[j] - mn) * id + 0.5f, 15);
            const int q1 = trunc_q((src[j + QK4_1 / 2] - mn) * id + 0.5f, 15);
            y[i].qs[j] = (uint8_t)(q0 | (q1 << 4));
        }
    }
}

static void dequant_q4_1(const void *src, float *dst, int64_t n)
{
    const block_q4_1 *x = src;
    for (int64_t i = 0; i < n / QK4_1; i++, dst += QK4_1) {
        const float d = fp16_to_fp32(x[i].d), m = fp16_to_fp32(x[i].m);
        for (int j = 0; j < QK4_1 / 2; j++) {
            dst[j] = (float)(x[i].qs[j] & 0xf) * d + m;
            dst[j + QK4_1 / 2] = (float)(x[i].qs[j] >> 4) * d + m;
        }
    }
}

static void quant_q5_0(const float *src, void *dst, int64_t n)
{
    block_q5_0 *y = dst;
    for (int64_t i = 0; i < n / QK5_0; i++, src += QK5_0) {
        float max;
        block_absmax(src, QK5_0, &max);
        const float d = max / -16, id = d ? 1.0f / d : 0.0f;
        y[i].d = fp32_to_fp16(d);
        uint32_t qh = 0;
        for (int j = 0; j < QK5_0 / 2; j++) {
            const int q0 = trunc_q(src[j] * id + 16.5f, 31);
            const int q1 = trunc_q(src[j + QK5_0 / 2] * id + 16.5f, 31);
            y[i].qs[j] = (uint8_t)((q0 & 0xf) | ((q1 & 0xf) << 4));
            qh |= (uint32_t)((q0 >> 4) & 1) << j;
            qh |= (uint32_t)((q1 >> 4) & 1) << (j + QK5_0 / 2);
        }
        memcpy(y[i].qh, &qh, 4);
    }
}

static void dequant_q5_0(const void *src, float *dst, int64_t n)
{
    const block_q5_0 *x = src;
    for (int64_t i = 0; i < n / QK5_0; i++, dst += QK5_0) {
        const float d = fp16_to_fp32(x[i].d);
        uint32_t qh;
        memcpy(&qh, x[i].qh, 4);
        for (int j = 0; j < QK5_0 / 2; j++) {
            int h0 = (int)((qh >> j) & 1) << 4, h1 = (int)((qh >> (j + 16)) & 1) << 4;
            dst[j] = (float)(((x[i].qs[j] & 0xf) | h0) - 16) * d;
            dst[j + QK5_0 / 2] = (float)(((x[i].qs[j] >> 4) | h1) - 16) * d;
        }
    }
}

static void quant_q5_1(const float *src, void *dst, int64_t n)
{
    block_q5_1 *y = dst;
    for (int64_t i = 0; i < n / QK5_1; i++, src += QK5_1) {
        float mn, mx;
        block_minmax(src, QK5_1, &mn, &mx);
        const float d = (mx - mn) / 31, id = d ? 1.0f / d : 0.0f;
        y[i].d = fp32_to_fp16(d);
        y[i].m = fp32_to_fp16(mn);
        uint32_t qh = 0;
        for (int j = 0; j < QK5_1 / 2; j++) {
            const int q0 = trunc_q((src[j] - mn) * id + 0.5f, 31);
            const int q1 = trunc_q((src[j + QK5_1 / 2] - mn) * id + 0.5f, 31);
            y[i].qs[j] = (uint8_t)((q0 & 0xf) | ((q1 & 0xf) << 4));
            qh |= (uint32_t)((q0 >> 4) & 1) << j;
            qh |= (uint32_t)((q1 >> 4) & 1) << (j + QK5_1 / 2);
        }
        memcpy(y[i].qh, &qh, 4);
    }
}

static void dequant_q5_1(const void *src, float *dst, int64_t n)
{
    const block_q5_1 *x = src;
    for (int64_t i = 0; i < n / QK5_1; i++, dst += QK5_1) {
        const float d = fp16_to_fp32(x[i].d), m = fp16_to_fp32(x[i].m);
        uint32_t qh;
        memcpy(&qh, x[i].qh, 4);
        for (int j = 0; j < QK5_1 / 2; j++) {
            int h0 = (int)((qh >> j) & 1) << 4, h1 = (int)((qh >> (j + 16)) & 1) << 4;
            dst[j] = (float)((x[i].qs[j] & 0xf) | h0) * d + m;
            dst[j + QK5_1 / 2] = (float)((x[i].qs[j] >> 4) | h1) * d + m;
        }
    }
}

static void quant_q8_0(const float *src, void *dst, int64_t n)
{
    block_q8_0 *y = dst;
    for (int64_t i = 0; i < n / QK8_0; i++, src += QK8_0) {
        float max;
        const float amax = block_absmax(src, QK8_0, &max);
        const float d = amax / 127, id = d ? 1.0f / d : 0.0f;
        y[i].d = fp32_to_fp16(d);
        for (int j = 0; j < QK8_0; j++)
            y[i].qs[j] = round_q8(src[j] * id);
    }
}

static void dequant_q8_0(const void *src, float *dst, int64_t n)
{
    const block_q8_0 *x = src;
    for (int64_t i = 0; i < n / QK8_0; i++, dst += QK8_0) {
        const float d = fp16_to_fp32(x[i].d);
        for (int j = 0; j < QK8_0; j++)
            dst[j] = (float)x[i].qs[j] * d;
    }
}

static void quant_q8_1(const float *src, void *dst, int64_t n)
{
    block_q8_1 *y = dst;
    for (int64_t i = 0; i < n / QK8_1; i++, src += QK8_1) {
        float max;
        const float amax = block_absmax(src, QK8_1, &max);
        const float d = amax / 127, id = d ? 1.0f / d : 0.0f;
        int sum = 0;
        for (int j = 0; j < QK8_1; j++) {
            y[i].qs[j] = round_q8(src[j] * id);
            sum += y[i].qs[j];
        }
        y[i].d = fp32_to_fp16(d);
        y[i].s = fp32_to_fp16((float)sum * d);
    }
}

static void dequant_q8_1(const void *src, float *dst, int64_t n)
{
    const block_q8_1 *x = src;
    for (int64_t i = 0; i < n / QK8_1; i++, dst += QK8_1) {
        const float d = fp16_to_fp32(x[i].d);
        for (int j = 0; j < QK8_1; j++)
            dst[j] = (float)x[i].qs[j] * d;
    }
}

/*
 * Dot products against Q8_0/Q8_1 activations: integer sums per block, scaled
 * once per block in float, as the kernels do. For the types with a min (Q4_1,
 * Q5_1) the min term uses the activation block's precomputed s = d * sum(q).
 */
static float dot_q4_0(int64_t n, const void *w, const void *xv)
{
    const block_q4_0 *a = w;
    const block_q8_0 *b = xv;
    float s = 0;
    for (int64_t i = 0; i < n / QK4_0; i++) {
        int sumi = 0;
        for (int j = 0; j < QK4_0 / 2; j++) {
            sumi += ((a[i].qs[j] & 0xf) - 8) * b[i].qs[j];
            sumi += ((a[i].qs[j] >> 4) - 8) * b[i].qs[j + QK4_0 / 2];
        }
        s += (float)sumi * fp16_to_fp32(a[i].d) * fp16_to_fp32(b[i].d);
    }
    return s;
}

static float dot_q4_1(int64_t n, const void *w, const void *xv)
{
    const block_q4_1 *a = w;
    const block_q8_1 *b = xv;
    float s = 0;
    for (int64_t i = 0; i < n / QK4_1; i++) {
        int sumi = 0;
        for (int j = 0; j < QK4_1 / 2; j++) {
            sumi += (a[i].qs[j] & 0xf) * b[i].qs[j];
            sumi += (a[i].qs[j] >> 4) * b[i].qs[j + QK4_1 / 2];
        }
        s += (float)sumi * fp16_to_fp32(a[i].d) * fp16_to_fp32(b[i].d) +
             fp16_to_fp32(a[i].m) * fp16_to_fp32(b[i].s);
    }
    return s;
}

static float dot_q5_0(int64_t n, const void *w, const void *xv)
{
    const block_q5_0 *a = w;
    const block_q8_0 *b = xv;
    float s = 0;
    for (int64_t i = 0; i < n / QK5_0; i++) {
        uint32_t qh;
        memcpy(&qh, a[i].qh, 4);
        int sumi = 0;
        for (int j = 0; j < QK5_0 / 2; j++) {
            int h0 = (int)((qh >> j) & 1) << 4, h1 = (int)((qh >> (j + 16)) & 1) << 4;
            sumi += (((a[i].qs[j] & 0xf) | h0) - 16) * b[i].qs[j];
            sumi += (((a[i].qs[j] >> 4) | h1) - 16) * b[i].qs[j + QK5_0 / 2];
        }
        s += (float)sumi * fp16_to_fp32(a[i].d) * fp16_to_fp32(b[i].d);
    }
    return s;
}

static float dot_q5_1(int64_t n, const void *w, const void *xv)
{
    const block_q5_1 *a = w;
    const block_q8_1 *b = xv;
    float s = 0;
    for (int64_t i = 0; i < n / QK5_1; i++) {
        uint32_t qh;
        memcpy(&qh, a[i].qh, 4);
        int sumi = 0;
        for (int j = 0; j < QK5_1 / 2; j++) {
            int h0 = (int)((qh >> j) & 1) << 4, h1 = (int)((qh >> (j + 16)) & 1) << 4;
            sumi += ((a[i].qs[j] & 0xf) | h0) * b[i].qs[j];
            sumi += ((a[i].qs[j] >> 4) | h1) * b[i].qs[j + QK5_1 / 2];
        }
        s += (float)sumi * fp16_to_fp32(a[i].d) * fp16_to_fp32(b[i].d) +
             fp16_to_fp32(a[i].m) * fp16_to_fp32(b[i].s);
    }
    return s;
}

static float dot_q8_0(int64_t n, const void *w, const void *xv)
{
    const block_q8_0 *a = w;
    const block_q8_0 *b = xv;
    float s = 0;
    for (int64_t i = 0; i < n / QK8_0; i++) {
        int sumi = 0;
        for (int j = 0; j < QK8_0; j++)
            sumi += a[i].qs[j] * b[i].qs[j];
        s += (float)sumi * fp16_to_fp32(a[i].d) * fp16_to_fp32(b[i].d);
    }
    return s;
}

/* ---- traits ---------------------------------------------------------------- */

#define NONE GGML_TYPE_COUNT

static const struct quant_traits traits[GGML_TYPE_COUNT] = {
    [GGML_TYPE_F32] = {dequant_f32, quant_f32, dot_f32, GGML_TYPE_F32},
    [GGML_TYPE_F16] = {dequant_f16, quant_f16, dot_f16, GGML_TYPE_F32},
    [GGML_TYPE_BF16] = {dequant_bf16, quant_bf16, dot_bf16, GGML_TYPE_F32},
    [GGML_TYPE_Q4_0] = {dequant_q4_0, quant_q4_0, dot_q4_0, GGML_TYPE_Q8_0},
    [GGML_TYPE_Q4_1] = {dequant_q4_1, quant_q4_1, dot_q4_1, GGML_TYPE_Q8_1},
    [GGML_TYPE_Q5_0] = {dequant_q5_0, quant_q5_0, dot_q5_0, GGML_TYPE_Q8_0},
    [GGML_TYPE_Q5_1] = {dequant_q5_1, quant_q5_1, dot_q5_1, GGML_TYPE_Q8_1},
    [GGML_TYPE_Q8_0] = {dequant_q8_0, quant_q8_0, dot_q8_0, GGML_TYPE_Q8_0},
    [GGML_TYPE_Q8_1] = {dequant_q8_1, quant_q8_1, NULL, NONE},
    [GGML_TYPE_Q2_K] = {quant__dequant_q2_K, quant__quant_q2_K, quant__dot_q2_K, GGML_TYPE_Q8_K},
    [GGML_TYPE_Q3_K] = {quant__dequant_q3_K, quant__quant_q3_K, quant__dot_q3_K, GGML_TYPE_Q8_K},
    [GGML_TYPE_Q4_K] = {quant__dequant_q4_K, quant__quant_q4_K, quant__dot_q4_K, GGML_TYPE_Q8_K},
    [GGML_TYPE_Q5_K] = {quant__dequant_q5_K, quant__quant_q5_K, quant__dot_q5_K, GGML_TYPE_Q8_K},
    [GGML_TYPE_Q6_K] = {quant__dequant_q6_K, quant__quant_q6_K, quant__dot_q6_K, GGML_TYPE_Q8_K},
    [GGML_TYPE_Q8_K] = {quant__dequant_q8_K, quant__quant_q8_K, NULL, NONE},
};

const struct quant_traits *quant_get_traits(uint32_t type)
{
    if (type >= GGML_TYPE_COUNT || !traits[type].to_float)
        return NULL;
    return &traits[type];
}

uint32_t quant_vec_dot_type(uint32_t type)
{
    const struct quant_traits *t = quant_get_traits(type);
    return t && t->vec_dot ? t->vec_dot_type : NONE;
}

static int check_n(uint32_t type, int64_t n)
{
    const struct ggml_type_info *ti = ggml_type_get(type);
    if (!ti || n < 0 || n % ti->blck_size)
        return AS_EINVAL;
    return 0;
}

int quant_dequantize_row(uint32_t type, const void *src, float *dst, int64_t n)
{
    const struct quant_traits *t = quant_get_traits(type);
    if (!t)
        return AS_EUNSUP;
    if (check_n(type, n))
        return AS_EINVAL;
    t->to_float(src, dst, n);
    return 0;
}

int quant_quantize_row(uint32_t type, const float *src, void *dst, int64_t n)
{
    const struct quant_traits *t = quant_get_traits(type);
    if (!t || !t->from_float)
        return AS_EUNSUP;
    if (check_n(type, n))
        return AS_EINVAL;
    t->from_float(src, dst, n);
    return 0;
}

int quant_vec_dot(uint32_t type, int64_t n, const void *w_row, const void *x_row, float *out)
{
    const struct quant_traits *t = quant_get_traits(type);
    if (!t || !t->vec_dot)
        return AS_EUNSUP;
    if (check_n(type, n) || check_n(t->vec_dot_type, n))
        return AS_EINVAL;
    *out = t->vec_dot(n, w_row, x_row);
    return 0;
}
