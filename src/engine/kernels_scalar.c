/*
 * kernels_scalar.c - portable reference kernels and the weight-row unpacking
 * ("packing") shared by all ISA levels.
 *
 * The scalar table is the base every SIMD level starts from; these functions
 * define the numerics the SIMD kernels must reproduce (tests compare them).
 * Not for: speed (kernels_avx2.c, kernels_avx512.c, kernels_gemm_avx512.c).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/kernels_impl.h"
#include "engine/quant_blocks.h"

/* ---- weight unpacking ---------------------------------------------------- */

int kern__pack_bs(enum ggml_type t)
{
    switch (t) {
    case GGML_TYPE_Q4_0:
    case GGML_TYPE_Q4_1:
    case GGML_TYPE_Q5_0:
    case GGML_TYPE_Q5_1:
    case GGML_TYPE_Q8_0:
    case GGML_TYPE_Q4_K:
    case GGML_TYPE_Q5_K:
        return 32;
    case GGML_TYPE_Q2_K:
    case GGML_TYPE_Q3_K:
    case GGML_TYPE_Q6_K:
        return 16;
    default:
        return 0;
    }
}

int kern__pack_has_min(enum ggml_type t)
{
    return t == GGML_TYPE_Q4_1 || t == GGML_TYPE_Q5_1 || t == GGML_TYPE_Q2_K ||
           t == GGML_TYPE_Q4_K || t == GGML_TYPE_Q5_K;
}

/* The 6-bit scale and min of sub-block j of a Q4_K/Q5_K super-block. */
static void kern__scale_min_k4(int j, const uint8_t *q, int *d, int *m)
{
    if (j < 4) {
        *d = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *d = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
        *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

/* Fills qs128 from q: 128 * sum over each block of bs. */
static void kern__fill_qs128(const int8_t *q, int64_t k, int bs, int32_t *qs128)
{
    for (int64_t b = 0; b < k / bs; b++) {
        int32_t s = 0;
        for (int i = 0; i < bs; i++)
            s += q[b * bs + i];
        qs128[b] = 128 * s;
    }
}

static void kern__pack_q4_0(const block_q4_0 *x, int64_t nb, int8_t *q, float *s)
{
    for (int64_t i = 0; i < nb; i++, q += 32) {
        s[i] = fp16_to_fp32(x[i].d);
        for (int j = 0; j < 16; j++) {
            q[j] = (int8_t)((x[i].qs[j] & 0xF) - 8);
            q[j + 16] = (int8_t)((x[i].qs[j] >> 4) - 8);
        }
    }
}

static void kern__pack_q4_1(const block_q4_1 *x, int64_t nb, int8_t *q, float *s, float *m)
{
    for (int64_t i = 0; i < nb; i++, q += 32) {
        s[i] = fp16_to_fp32(x[i].d);
        m[i] = fp16_to_fp32(x[i].m);
        for (int j = 0; j < 16; j++) {
            q[j] = (int8_t)(x[i].qs[j] & 0xF);
            q[j + 16] = (int8_t)(x[i].qs[j] >> 4);
        }
    }
}

static void kern__pack_q5(const uint8_t *qs, const uint8_t *qhb, int off, int8_t *q)
{
    uint32_t qh;
    memcpy(&qh, qhb, 4);
    for (int j = 0; j < 16; j++) {
        int h0 = ((qh >> j) << 4) & 0x10;
        int h1 = (qh >> (j + 12)) & 0x10;
        q[j] = (int8_t)(((qs[j] & 0xF) | h0) - off);
        q[j + 16] = (int8_t)(((qs[j] >> 4) | h1) - off);
    }
}

static void kern__pack_q4_k(const block_q4_K *x, int64_t nb, int8_t *q, float *s, float *m)
{
    for (int64_t i = 0; i < nb; i++) {
        float d = fp16_to_fp32(x[i].d), dmin = fp16_to_fp32(x[i].dmin);
        const uint8_t *qs = x[i].qs;
        for (int j = 0; j < 4; j++, qs += 32, q += 64) {
            int sc, mn;
            kern__scale_min_k4(2 * j, x[i].scales, &sc, &mn);
            *s++ = d * (float)sc;
            *m++ = -dmin * (float)mn;
            kern__scale_min_k4(2 * j + 1, x[i].scales, &sc, &mn);
            *s++ = d * (float)sc;
            *m++ = -dmin * (float)mn;
            for (int l = 0; l < 32; l++) {
                q[l] = (int8_t)(qs[l] & 0xF);
                q[l + 32] = (int8_t)(qs[l] >> 4);
            }
        }
    }
}

static void kern__pack_q5_k(const block_q5_K *x, int64_t nb, int8_t *q, float *s, float *m)
{
    for (int64_t i = 0; i < nb; i++) {
        float d = fp16_to_fp32(x[i].d), dmin = fp16_to_fp32(x[i].dmin);
        const uint8_t *ql = x[i].qs;
        int u1 = 1, u2 = 2;
        for (int j = 0; j < 4; j++, ql += 32, q += 64, u1 <<= 2, u2 <<= 2) {
            int sc, mn;
            kern__scale_min_k4(2 * j, x[i].scales, &sc, &mn);
            *s++ = d * (float)sc;
            *m++ = -dmin * (float)mn;
            kern__scale_min_k4(2 * j + 1, x[i].scales, &sc, &mn);
            *s++ = d * (float)sc;
            *m++ = -dmin * (float)mn;
            for (int l = 0; l < 32; l++) {
                q[l] = (int8_t)((ql[l] & 0xF) + ((x[i].qh[l] & u1) ? 16 : 0));
                q[l + 32] = (int8_t)((ql[l] >> 4) + ((x[i].qh[l] & u2) ? 16 : 0));
            }
        }
    }
}

static void kern__pack_q6_k(const block_q6_K *x, int64_t nb, int8_t *q, float *s)
{
    for (int64_t i = 0; i < nb; i++) {
        float d = fp16_to_fp32(x[i].d);
        const uint8_t *ql = x[i].ql, *qh = x[i].qh;
        const int8_t *sc = x[i].scales;
        for (int n = 0; n < 2; n++, ql += 64, qh += 32, sc += 8, q += 128) {
            for (int l = 0; l < 32; l++) {
                q[l] = (int8_t)(((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32);
                q[l + 32] = (int8_t)(((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32);
                q[l + 64] = (int8_t)(((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
                q[l + 96] = (int8_t)(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
            }
            for (int j = 0; j < 8; j++)
                *s++ = d * (float)sc[j];
        }
    }
}

static void kern__pack_q2_k(const block_q2_K *x, int64_t nb, int8_t *q, float *s, float *m)
{
    for (int64_t i = 0; i < nb; i++) {
        float d = fp16_to_fp32(x[i].d), dmin = fp16_to_fp32(x[i].dmin);
        const uint8_t *qs = x[i].qs;
        int is = 0;
        for (int n = 0; n < 2; n++, qs += 32) {
            for (int shift = 0; shift < 8; shift += 2) {
                for (int h = 0; h < 2; h++, q += 16) {
                    uint8_t sc = x[i].scales[is++];
                    *s++ = d * (float)(sc & 0xF);
                    *m++ = -dmin * (float)(sc >> 4);
                    for (int l = 0; l < 16; l++)
                        q[l] = (int8_t)((qs[l + 16 * h] >> shift) & 3);
                }
            }
        }
    }
}

static void kern__pack_q3_k(const block_q3_K *x, int64_t nb, int8_t *q, float *s)
{
    const uint32_t kmask1 = 0x03030303, kmask2 = 0x0f0f0f0f;
    for (int64_t i = 0; i < nb; i++) {
        uint32_t aux[4];
        int8_t scales[16];
        memcpy(aux, x[i].scales, 12);
        uint32_t tmp = aux[2];
        aux[2] = ((aux[0] >> 4) & kmask2) | (((tmp >> 4) & kmask1) << 4);
        aux[3] = ((aux[1] >> 4) & kmask2) | (((tmp >> 6) & kmask1) << 4);
        aux[0] = (aux[0] & kmask2) | (((tmp >> 0) & kmask1) << 4);
        aux[1] = (aux[1] & kmask2) | (((tmp >> 2) & kmask1) << 4);
        memcpy(scales, aux, 16);
        float d = fp16_to_fp32(x[i].d);
        const uint8_t *qs = x[i].qs, *hm = x[i].hmask;
        int is = 0;
        uint8_t mbit = 1;
        for (int n = 0; n < 2; n++, qs += 32) {
            for (int shift = 0; shift < 8; shift += 2, mbit <<= 1) {
                for (int h = 0; h < 2; h++, q += 16) {
                    *s++ = d * (float)(scales[is++] - 32);
                    for (int l = 0; l < 16; l++) {
                        int v = (qs[l + 16 * h] >> shift) & 3;
                        q[l] = (int8_t)(v - ((hm[l + 16 * h] & mbit) ? 0 : 4));
                    }
                }
            }
        }
    }
}

void kern__pack_row(enum ggml_type t, const void *row, int64_t k, int8_t *q, float *s, float *m,
                    int32_t *qs128)
{
    int bs = kern__pack_bs(t);
    int64_t nblk = k / bs;
    if (!kern__pack_has_min(t))
        memset(m, 0, (size_t)nblk * sizeof(float));
    switch (t) {
    case GGML_TYPE_Q4_0:
        kern__pack_q4_0(row, k / 32, q, s);
        break;
    case GGML_TYPE_Q4_1:
        kern__pack_q4_1(row, k / 32, q, s, m);
        break;
    case GGML_TYPE_Q5_0: {
        const block_q5_0 *x = row;
        for (int64_t i = 0; i < k / 32; i++) {
            s[i] = fp16_to_fp32(x[i].d);
            kern__pack_q5(x[i].qs, x[i].qh, 16, q + 32 * i);
        }
        break;
    }
    case GGML_TYPE_Q5_1: {
        const block_q5_1 *x = row;
        for (int64_t i = 0; i < k / 32; i++) {
            s[i] = fp16_to_fp32(x[i].d);
            m[i] = fp16_to_fp32(x[i].m);
            kern__pack_q5(x[i].qs, x[i].qh, 0, q + 32 * i);
        }
        break;
    }
    case GGML_TYPE_Q8_0: {
        const block_q8_0 *x = row;
        for (int64_t i = 0; i < k / 32; i++) {
            s[i] = fp16_to_fp32(x[i].d);
            memcpy(q + 32 * i, x[i].qs, 32);
        }
        break;
    }
    case GGML_TYPE_Q2_K:
        kern__pack_q2_k(row, k / QK_K, q, s, m);
        break;
    case GGML_TYPE_Q3_K:
        kern__pack_q3_k(row, k / QK_K, q, s);
        break;
    case GGML_TYPE_Q4_K:
        kern__pack_q4_k(row, k / QK_K, q, s, m);
        break;
    case GGML_TYPE_Q5_K:
        kern__pack_q5_k(row, k / QK_K, q, s, m);
        break;
    case GGML_TYPE_Q6_K:
        kern__pack_q6_k(row, k / QK_K, q, s);
        break;
    default:
        return;
    }
    if (qs128)
        kern__fill_qs128(q, k, bs, qs128);
}

/* ---- scalar kernels ------------------------------------------------------ */

void kern__quantize_row_ref(const float *x, int64_t k, int8_t *q, float *d, float *ds, float *ds16)
{
    for (int64_t b = 0; b < k / 32; b++) {
        const float *xb = x + 32 * b;
        float amax = 0.0f;
        for (int i = 0; i < 32; i++)
            amax = fmaxf(amax, fabsf(xb[i]));
        float dd = amax / 127.0f;
        float id = dd > 0.0f ? 127.0f / amax : 0.0f;
        int s0 = 0, s1 = 0;
        for (int i = 0; i < 32; i++) {
            int v = (int)lrintf(xb[i] * id);
            q[32 * b + i] = (int8_t)v;
            if (i < 16)
                s0 += v;
            else
                s1 += v;
        }
        d[b] = dd;
        ds[b] = dd * (float)(s0 + s1);
        ds16[2 * b] = dd * (float)s0;
        ds16[2 * b + 1] = dd * (float)s1;
    }
}

static void scalar_quantize_act(const float *x, int64_t r0, int64_t r1, struct kern__act *a)
{
    int64_t k = a->k, nb = a->nb32;
    for (int64_t r = r0; r < r1; r++)
        kern__quantize_row_ref(x + r * k, k, a->qs + r * k, a->d + r * nb, a->ds + r * nb,
                               a->ds16 + r * 2 * nb);
}

static float scalar_dot_packed(const struct kern__panel *p, const struct kern__act *a, int64_t b)
{
    const int8_t *aq = a->qs + b * a->k;
    const float *ad = a->d + b * a->nb32;
    const float *ads = p->bs == 32 ? a->ds + b * a->nb32 : a->ds16 + b * 2 * a->nb32;
    int per = 32 / p->bs; /* weight blocks per activation block */
    float sum = 0.0f;
    for (int64_t j = 0; j < p->nblk; j++) {
        int32_t isum = 0;
        for (int i = 0; i < p->bs; i++)
            isum += (int32_t)p->q[j * p->bs + i] * aq[j * p->bs + i];
        sum += p->s[j] * ad[j / per] * (float)isum + p->m[j] * ads[j];
    }
    return sum;
}

static float scalar_load_w(enum ggml_type t, const void *row, int64_t i)
{
    switch (t) {
    case GGML_TYPE_F32:
        return ((const float *)row)[i];
    case GGML_TYPE_F16:
        return fp16_to_fp32(((const ggml_fp16_t *)row)[i]);
    default:
        return bf16_to_fp32(((const ggml_bf16_t *)row)[i]);
    }
}

static void scalar_gemm_float(enum ggml_type t, const void *W, size_t row_bytes, int64_t k,
                              int64_t r0, int64_t r1, const float *x, int64_t B, float *y,
                              int64_t ldy, float *scratch)
{
    for (int64_t r = r0; r < r1; r++) {
        const void *row = (const char *)W + (size_t)r * row_bytes;
        for (int64_t i = 0; i < k; i++)
            scratch[i] = scalar_load_w(t, row, i);
        for (int64_t b = 0; b < B; b++) {
            const float *xb = x + b * k;
            double s = 0.0;
            for (int64_t i = 0; i < k; i++)
                s += (double)scratch[i] * xb[i];
            y[b * ldy + r] = (float)s;
        }
    }
}

static void scalar_rmsnorm(float *out, const float *x, const float *w, int64_t n, float eps)
{
    double ss = 0.0;
    for (int64_t i = 0; i < n; i++)
        ss += (double)x[i] * x[i];
    float sc = 1.0f / sqrtf((float)(ss / (double)n) + eps);
    for (int64_t i = 0; i < n; i++)
        out[i] = x[i] * sc * (w ? w[i] : 1.0f);
}

/* The largest non-NaN value, then its first index (kern_argmax's contract). */
static int64_t scalar_argmax(const float *x, int64_t n)
{
    float mx = -INFINITY;
    for (int64_t i = 0; i < n; i++)
        if (x[i] > mx)
            mx = x[i];
    for (int64_t i = 0; i < n; i++)
        if (x[i] == mx)
            return i;
    return 0;
}

static void scalar_softmax(float *x, int64_t n)
{
    float mx = -INFINITY;
    for (int64_t i = 0; i < n; i++)
        mx = fmaxf(mx, x[i]);
    if (mx == -INFINITY) {
        memset(x, 0, (size_t)n * sizeof(float));
        return;
    }
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) {
        x[i] = expf(x[i] - mx);
        sum += x[i];
    }
    float inv = (float)(1.0 / sum);
    for (int64_t i = 0; i < n; i++)
        x[i] *= inv;
}

static void scalar_swiglu(float *out, const float *gate, const float *up, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        float g = gate[i];
        out[i] = g / (1.0f + expf(-g)) * up[i];
    }
}

static void scalar_add(float *y, const float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        y[i] += x[i];
}

static void scalar_scale(float *x, float s, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        x[i] *= s;
}

static void scalar_axpy(float *y, float a, const float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        y[i] += a * x[i];
}

static float scalar_dot(const float *x, const float *y, int64_t n)
{
    float s = 0.0f;
    for (int64_t i = 0; i < n; i++)
        s += x[i] * y[i];
    return s;
}

static void scalar_f32_to_f16(ggml_fp16_t *dst, const float *src, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        dst[i] = fp32_to_fp16(src[i]);
}

static void scalar_f16_to_f32(float *dst, const ggml_fp16_t *src, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        dst[i] = fp16_to_fp32(src[i]);
}

static float scalar_dot_f16_f32(const ggml_fp16_t *a, const float *b, int64_t n)
{
    float s = 0.0f;
    for (int64_t i = 0; i < n; i++)
        s += fp16_to_fp32(a[i]) * b[i];
    return s;
}

static void scalar_axpy_f16(float *y, float s, const ggml_fp16_t *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        y[i] += s * fp16_to_fp32(x[i]);
}

static const struct kern__ops kern__scalar_ops = {
    .isa = KERN_ISA_SCALAR,
    .quantize_act = scalar_quantize_act,
    .dot_packed = scalar_dot_packed,
    .packed_layout = KERN_ACT_PLAIN,
    .pack_row = kern__pack_row,
    .panel_gemm = NULL,
    .gemm_float = scalar_gemm_float,
    .rmsnorm = scalar_rmsnorm,
    .softmax = scalar_softmax,
    .argmax = scalar_argmax,
    .swiglu = scalar_swiglu,
    .add = scalar_add,
    .scale = scalar_scale,
    .axpy = scalar_axpy,
    .dot = scalar_dot,
    .f32_to_f16 = scalar_f32_to_f16,
    .f16_to_f32 = scalar_f16_to_f32,
    .dot_f16_f32 = scalar_dot_f16_f32,
    .axpy_f16 = scalar_axpy_f16,
};

void kern__init_scalar(struct kern__ops *o)
{
    *o = kern__scalar_ops;
}
