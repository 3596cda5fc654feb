/*
 * quant_k.c - reference quantization for the 256-element "K" super-block
 * types: Q2_K, Q3_K, Q4_K, Q5_K, Q6_K and the Q8_K activation type.
 *
 * A super-block holds 8 or 16 sub-blocks, each with its own scale (and, for
 * Q2_K/Q4_K/Q5_K, min), themselves quantized against one fp16 super-scale.
 * Sub-block scales are found by a small least-squares search (ggml's
 * make_qkx2_quants for the affine types, make_qx_quants / make_q3_quants for
 * the symmetric ones), then the quants are recomputed with the rounded scales
 * so that dequantization sees exactly what the search optimised.
 * Not for: speed (kernels), importance-matrix quantization.
 */
#include <math.h>
#include <string.h>

#include "engine/fp16.h"
#include "engine/quant.h"
#include "engine/quant_internal.h"

#define GROUP_MAX_EPS 1e-15f

/*
 * The scale searches accumulate their sums in LANES interleaved partial sums
 * (combined pairwise): this breaks the floating-point dependency chains that
 * otherwise make K-type quantization ~4x slower. It changes the last bits of
 * the sums relative to a plain loop (and to ggml), which can at most flip a
 * choice between two candidate scales of near-identical error.
 */
#define LANES 4

static float sum_lanes(const float *a)
{
    return (a[0] + a[1]) + (a[2] + a[3]);
}

static int clampi(int v, int lo, int hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/*
 * Affine quantization x ~ scale * L + min with L in [0, nmax], minimizing the
 * weighted error (squared, or absolute if use_mad). Tries nstep+1 candidate
 * inverse scales around nmax / (max - min) and, for each, the closed-form
 * least-squares scale and min for the rounded L. Returns scale; *the_min gets
 * -min (a non-negative offset).
 */
static float make_qkx2_quants(int n, int nmax, const float *x, const float *weights, uint8_t *L,
                              float *the_min, uint8_t *Laux, float rmin, float rdelta, int nstep,
                              int use_mad)
{
    float min = x[0], max = x[0];
    float sum_w = weights[0], sum_x = sum_w * x[0];
    for (int i = 1; i < n; i++) {
        min = x[i] < min ? x[i] : min;
        max = x[i] > max ? x[i] : max;
        sum_w += weights[i];
        sum_x += weights[i] * x[i];
    }
    if (min > 0)
        min = 0; /* the min is subtracted: keep zero representable */
    if (max == min) {
        memset(L, 0, (size_t)n);
        *the_min = -min;
        return 0.f;
    }
    float iscale = nmax / (max - min), scale = 1 / iscale, best_error = 0;
    for (int i = 0; i < n; i++) {
        L[i] = (uint8_t)clampi(quant__nearest_int(iscale * (x[i] - min)), 0, nmax);
        float diff = scale * L[i] + min - x[i];
        diff = use_mad ? fabsf(diff) : diff * diff;
        best_error += weights[i] * diff;
    }
    if (nstep < 1) {
        *the_min = -min;
        return scale;
    }
    for (int is = 0; is <= nstep; is++) {
        iscale = (rmin + rdelta * is + nmax) / (max - min);
        float lf[32], sl[LANES] = {0}, sl2[LANES] = {0}, sxl[LANES] = {0};
        for (int i = 0; i < n; i++) {
            int l = quant__nearest_int(iscale * (x[i] - min));
            l = l < 0 ? 0 : l > nmax ? nmax : l;
            Laux[i] = (uint8_t)l;
            lf[i] = (float)l;
        }
        for (int i = 0; i < n; i += LANES) {
            for (int k = 0; k < LANES; k++) {
                float w = weights[i + k], l = lf[i + k];
                sl[k] += w * l;
                sl2[k] += w * l * l;
                sxl[k] += w * l * x[i + k];
            }
        }
        float sum_l = sum_lanes(sl), sum_l2 = sum_lanes(sl2), sum_xl = sum_lanes(sxl);
        float D = sum_w * sum_l2 - sum_l * sum_l;
        if (D > 0) {
            float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
            float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
            if (this_min > 0) {
                this_min = 0;
                this_scale = sum_xl / sum_l2;
            }
            float err[LANES] = {0};
            for (int i = 0; i < n; i += LANES) {
                for (int k = 0; k < LANES; k++) {
                    float diff = this_scale * lf[i + k] + this_min - x[i + k];
                    diff = use_mad ? fabsf(diff) : diff * diff;
                    err[k] += weights[i + k] * diff;
                }
            }
            float cur_error = sum_lanes(err);
            if (cur_error < best_error) {
                memcpy(L, Laux, (size_t)n);
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    *the_min = -min;
    return scale;
}

/*
 * Symmetric quantization x ~ scale * (L - nmax), L in [0, 2*nmax), weights
 * x^2. Starts from the extreme value mapping to -nmax and tries nearby
 * inverse scales, keeping the one with the best weighted least-squares fit.
 */
static float make_qx_quants(int n, int nmax, const float *x, int8_t *L)
{
    float max = 0, amax = 0;
    for (int i = 0; i < n; i++) {
        if (fabsf(x[i]) > amax) {
            amax = fabsf(x[i]);
            max = x[i];
        }
    }
    if (amax < GROUP_MAX_EPS) {
        memset(L, 0, (size_t)n);
        return 0.f;
    }
    float iscale = -nmax / max, sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        int l = clampi(quant__nearest_int(iscale * x[i]), -nmax, nmax - 1);
        L[i] = (int8_t)(l + nmax);
        float w = x[i] * x[i];
        sumlx += w * x[i] * l;
        suml2 += w * l * l;
    }
    float scale = suml2 ? sumlx / suml2 : 0.0f;
    float best = scale * sumlx;
    for (int is = -9; is <= 9; ++is) {
        if (is == 0)
            continue;
        iscale = -(nmax + 0.1f * is) / max;
        float slx[LANES] = {0}, sl2[LANES] = {0};
        for (int i = 0; i < n; i += LANES) {
            for (int k = 0; k < LANES; k++) {
                int l = clampi(quant__nearest_int(iscale * x[i + k]), -nmax, nmax - 1);
                float w = x[i + k] * x[i + k];
                slx[k] += w * x[i + k] * l;
                sl2[k] += w * l * l;
            }
        }
        sumlx = sum_lanes(slx);
        suml2 = sum_lanes(sl2);
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; i++)
                L[i] = (int8_t)(nmax + clampi(quant__nearest_int(iscale * x[i]), -nmax, nmax - 1));
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

/*
 * Symmetric quantization for Q3_K: L in [-nmax, nmax-1] stored +nmax; refines
 * single quants coordinate-wise while the weighted fit improves.
 */
static float make_q3_quants(int n, int nmax, const float *x, int8_t *L)
{
    float max = 0, amax = 0;
    for (int i = 0; i < n; i++) {
        if (fabsf(x[i]) > amax) {
            amax = fabsf(x[i]);
            max = x[i];
        }
    }
    if (amax < GROUP_MAX_EPS) {
        memset(L, 0, (size_t)n);
        return 0.f;
    }
    float iscale = -nmax / max, sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        int l = clampi(quant__nearest_int(iscale * x[i]), -nmax, nmax - 1);
        L[i] = (int8_t)l;
        float w = x[i] * x[i];
        sumlx += w * x[i] * l;
        suml2 += w * l * l;
    }
    for (int itry = 0; itry < 5; ++itry) {
        int n_changed = 0;
        for (int i = 0; i < n; i++) {
            float w = x[i] * x[i];
            float slx = sumlx - w * x[i] * L[i];
            if (slx > 0) {
                float sl2 = suml2 - w * L[i] * L[i];
                int new_l = clampi(quant__nearest_int(x[i] * sl2 / slx), -nmax, nmax - 1);
                if (new_l != L[i]) {
                    slx += w * x[i] * new_l;
                    sl2 += w * new_l * new_l;
                    if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
                        L[i] = (int8_t)new_l;
                        sumlx = slx;
                        suml2 = sl2;
                        ++n_changed;
                    }
                }
            }
        }
        if (!n_changed)
            break;
    }
    for (int i = 0; i < n; i++)
        L[i] = (int8_t)(L[i] + nmax);
    return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

/* 6-bit scale and min of sub-block j (0..7) from the 12 packed bytes of Q4_K/Q5_K. */
static void get_scale_min_k4(int j, const uint8_t *q, uint8_t *d, uint8_t *m)
{
    if (j < 4) {
        *d = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *d = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

/* Inverse of get_scale_min_k4 for all 8 pairs. */
static void set_scales_mins_k4(uint8_t *q, const uint8_t *ls, const uint8_t *lm)
{
    memset(q, 0, K_SCALE_SIZE);
    for (int j = 0; j < 8; j++) {
        if (j < 4) {
            q[j] = ls[j];
            q[j + 4] = lm[j];
        } else {
            q[j + 4] = (uint8_t)((ls[j] & 0xF) | ((lm[j] & 0xF) << 4));
            q[j - 4] |= (uint8_t)((ls[j] >> 4) << 6);
            q[j] |= (uint8_t)((lm[j] >> 4) << 6);
        }
    }
}

/* 6-bit signed (offset 32) scale of sub-block i (0..15) from Q3_K's 12 bytes. */
static int q3k_scale(const uint8_t *s, int i)
{
    int lo = i < 8 ? s[i] & 0xF : s[i - 8] >> 4;
    int hi = (s[8 + i % 4] >> (2 * (i / 4))) & 3;
    return (lo | (hi << 4)) - 32;
}

/*
 * Shared by Q4_K and Q5_K: finds the 8 sub-block scales/mins (nmax 15 or 31)
 * of one super-block, packs them, and returns the quants in L.
 */
static void quant_k_affine(const float *x, int nmax, ggml_fp16_t *dd, ggml_fp16_t *dmin,
                           uint8_t *packed, uint8_t *L)
{
    uint8_t Laux[32], ls[8], lm[8];
    float weights[32], mins[8], scales[8];
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < 8; j++) {
        float sum_x2 = 0;
        for (int l = 0; l < 32; l++)
            sum_x2 += x[32 * j + l] * x[32 * j + l];
        float av_x = sqrtf(sum_x2 / 32);
        for (int l = 0; l < 32; l++)
            weights[l] = av_x + fabsf(x[32 * j + l]);
        scales[j] = nmax == 15 ? make_qkx2_quants(32, 15, x + 32 * j, weights, L + 32 * j, &mins[j],
                                                  Laux, -1.f, 0.1f, 20, 0)
                               : make_qkx2_quants(32, 31, x + 32 * j, weights, L + 32 * j, &mins[j],
                                                  Laux, -0.5f, 0.1f, 15, 0);
        max_scale = scales[j] > max_scale ? scales[j] : max_scale;
        max_min = mins[j] > max_min ? mins[j] : max_min;
    }
    float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    for (int j = 0; j < 8; j++) {
        ls[j] = (uint8_t)clampi(quant__nearest_int(inv_scale * scales[j]), 0, 63);
        lm[j] = (uint8_t)clampi(quant__nearest_int(inv_min * mins[j]), 0, 63);
    }
    set_scales_mins_k4(packed, ls, lm);
    *dd = fp32_to_fp16(max_scale / 63.f);
    *dmin = fp32_to_fp16(max_min / 63.f);
    /* recompute the quants against the scales as they will be decoded */
    for (int j = 0; j < 8; j++) {
        uint8_t sc, m;
        get_scale_min_k4(j, packed, &sc, &m);
        const float d = fp16_to_fp32(*dd) * sc;
        if (!d)
            continue;
        const float dm = fp16_to_fp32(*dmin) * m;
        for (int ii = 0; ii < 32; ii++)
            L[32 * j + ii] =
                (uint8_t)clampi(quant__nearest_int((x[32 * j + ii] + dm) / d), 0, nmax);
    }
}

/* ---- Q4_K -------------------------------------------------------------------- */

void quant__quant_q4_K(const float *src, void *dst, int64_t n)
{
    block_q4_K *y = dst;
    uint8_t L[QK_K];
    for (int64_t i = 0; i < n / QK_K; i++, src += QK_K) {
        quant_k_affine(src, 15, &y[i].d, &y[i].dmin, y[i].scales, L);
        uint8_t *q = y[i].qs;
        for (int j = 0; j < QK_K; j += 64, q += 32)
            for (int l = 0; l < 32; l++)
                q[l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 4));
    }
}

void quant__dequant_q4_K(const void *src, float *y, int64_t n)
{
    const block_q4_K *x = src;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = fp16_to_fp32(x[i].d), min = fp16_to_fp32(x[i].dmin);
        const uint8_t *q = x[i].qs;
        for (int j = 0, is = 0; j < QK_K; j += 64, is += 2, q += 32) {
            uint8_t sc, m;
            get_scale_min_k4(is, x[i].scales, &sc, &m);
            const float d1 = d * sc, m1 = min * m;
            get_scale_min_k4(is + 1, x[i].scales, &sc, &m);
            const float d2 = d * sc, m2 = min * m;
            for (int l = 0; l < 32; l++)
                *y++ = d1 * (q[l] & 0xF) - m1;
            for (int l = 0; l < 32; l++)
                *y++ = d2 * (q[l] >> 4) - m2;
        }
    }
}

/* ---- Q5_K -------------------------------------------------------------------- */

void quant__quant_q5_K(const float *src, void *dst, int64_t n)
{
    block_q5_K *y = dst;
    uint8_t L[QK_K];
    for (int64_t i = 0; i < n / QK_K; i++, src += QK_K) {
        quant_k_affine(src, 31, &y[i].d, &y[i].dmin, y[i].scales, L);
        uint8_t *ql = y[i].qs, *qh = y[i].qh;
        memset(qh, 0, QK_K / 8);
        uint8_t m1 = 1, m2 = 2;
        for (int j = 0; j < QK_K; j += 64, ql += 32, m1 <<= 2, m2 <<= 2) {
            for (int l = 0; l < 32; l++) {
                int l1 = L[j + l], l2 = L[j + l + 32];
                if (l1 > 15) {
                    l1 -= 16;
                    qh[l] |= m1;
                }
                if (l2 > 15) {
                    l2 -= 16;
                    qh[l] |= m2;
                }
                ql[l] = (uint8_t)(l1 | (l2 << 4));
            }
        }
    }
}

void quant__dequant_q5_K(const void *src, float *y, int64_t n)
{
    const block_q5_K *x = src;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = fp16_to_fp32(x[i].d), min = fp16_to_fp32(x[i].dmin);
        const uint8_t *ql = x[i].qs, *qh = x[i].qh;
        uint8_t u1 = 1, u2 = 2;
        for (int j = 0, is = 0; j < QK_K; j += 64, is += 2, ql += 32, u1 <<= 2, u2 <<= 2) {
            uint8_t sc, m;
            get_scale_min_k4(is, x[i].scales, &sc, &m);
            const float d1 = d * sc, m1 = min * m;
            get_scale_min_k4(is + 1, x[i].scales, &sc, &m);
            const float d2 = d * sc, m2 = min * m;
            for (int l = 0; l < 32; l++)
                *y++ = d1 * ((ql[l] & 0xF) + (qh[l] & u1 ? 16 : 0)) - m1;
            for (int l = 0; l < 32; l++)
                *y++ = d2 * ((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
        }
    }
}

/* ---- Q6_K -------------------------------------------------------------------- */

void quant__quant_q6_K(const float *src, void *dst, int64_t n)
{
    block_q6_K *y = dst;
    int8_t L[QK_K];
    float scales[QK_K / 16];
    for (int64_t i = 0; i < n / QK_K; i++, src += QK_K) {
        float max_scale = 0, max_abs_scale = 0;
        for (int ib = 0; ib < QK_K / 16; ib++) {
            const float scale = make_qx_quants(16, 32, src + 16 * ib, L + 16 * ib);
            scales[ib] = scale;
            if (fabsf(scale) > max_abs_scale) {
                max_abs_scale = fabsf(scale);
                max_scale = scale;
            }
        }
        if (max_abs_scale < GROUP_MAX_EPS) {
            memset(&y[i], 0, sizeof y[i]);
            continue;
        }
        const float iscale = -128.f / max_scale;
        y[i].d = fp32_to_fp16(1 / iscale);
        for (int ib = 0; ib < QK_K / 16; ib++) {
            int v = quant__nearest_int(iscale * scales[ib]);
            y[i].scales[ib] = (int8_t)(v < 127 ? v : 127);
        }
        for (int j = 0; j < QK_K / 16; j++) {
            const float d = fp16_to_fp32(y[i].d) * y[i].scales[j];
            if (!d)
                continue;
            for (int ii = 0; ii < 16; ii++) {
                int l = clampi(quant__nearest_int(src[16 * j + ii] / d), -32, 31);
                L[16 * j + ii] = (int8_t)(l + 32);
            }
        }
        uint8_t *ql = y[i].ql, *qh = y[i].qh;
        for (int j = 0; j < QK_K; j += 128, ql += 64, qh += 32) {
            for (int l = 0; l < 32; l++) {
                const uint8_t q1 = (uint8_t)L[j + l], q2 = (uint8_t)L[j + l + 32];
                const uint8_t q3 = (uint8_t)L[j + l + 64], q4 = (uint8_t)L[j + l + 96];
                ql[l] = (uint8_t)((q1 & 0xF) | ((q3 & 0xF) << 4));
                ql[l + 32] = (uint8_t)((q2 & 0xF) | ((q4 & 0xF) << 4));
                qh[l] =
                    (uint8_t)((q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6));
            }
        }
    }
}

/* The 256 signed 6-bit quants of a Q6_K block, in element order. */
static void q6k_decode(const block_q6_K *b, int8_t *q)
{
    const uint8_t *ql = b->ql, *qh = b->qh;
    for (int n = 0; n < QK_K; n += 128, ql += 64, qh += 32) {
        for (int l = 0; l < 32; l++) {
            q[n + l] = (int8_t)(((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32);
            q[n + l + 32] = (int8_t)(((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32);
            q[n + l + 64] = (int8_t)(((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
            q[n + l + 96] = (int8_t)(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
        }
    }
}

void quant__dequant_q6_K(const void *src, float *y, int64_t n)
{
    const block_q6_K *x = src;
    int8_t q[QK_K];
    for (int64_t i = 0; i < n / QK_K; i++, y += QK_K) {
        const float d = fp16_to_fp32(x[i].d);
        q6k_decode(&x[i], q);
        for (int j = 0; j < QK_K; j++)
            y[j] = d * x[i].scales[j / 16] * q[j];
    }
}

/* ---- Q3_K -------------------------------------------------------------------- */

/* Packs 256 2-bit values (0..3): byte j/4 + l of each 128 half holds 4 of them. */
static void pack_2bit(const int8_t *L, uint8_t *qs)
{
    for (int j = 0; j < QK_K; j += 128)
        for (int l = 0; l < 32; l++)
            qs[j / 4 + l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) |
                                      (L[j + l + 96] << 6));
}

/* Element e's 2-bit value from pack_2bit's layout. */
static int unpack_2bit(const uint8_t *qs, int e)
{
    int half = e / 128, r = e % 128;
    return (qs[half * 32 + r % 32] >> (2 * (r / 32))) & 3;
}

void quant__quant_q3_K(const float *src, void *dst, int64_t n)
{
    block_q3_K *y = dst;
    int8_t L[QK_K];
    float scales[QK_K / 16];
    for (int64_t i = 0; i < n / QK_K; i++, src += QK_K) {
        float max_scale = 0, amax = 0;
        for (int j = 0; j < QK_K / 16; j++) {
            scales[j] = make_q3_quants(16, 4, src + 16 * j, L + 16 * j);
            if (fabsf(scales[j]) > amax) {
                amax = fabsf(scales[j]);
                max_scale = scales[j];
            }
        }
        memset(y[i].scales, 0, sizeof y[i].scales);
        if (max_scale) {
            const float iscale = -32.f / max_scale;
            for (int j = 0; j < QK_K / 16; j++) {
                int l = clampi(quant__nearest_int(iscale * scales[j]), -32, 31) + 32;
                if (j < 8)
                    y[i].scales[j] = (uint8_t)(l & 0xF);
                else
                    y[i].scales[j - 8] |= (uint8_t)((l & 0xF) << 4);
                y[i].scales[j % 4 + 8] |= (uint8_t)((l >> 4) << (2 * (j / 4)));
            }
            y[i].d = fp32_to_fp16(1 / iscale);
        } else {
            y[i].d = fp32_to_fp16(0.f);
        }
        for (int j = 0; j < QK_K / 16; j++) {
            const float d = fp16_to_fp32(y[i].d) * q3k_scale(y[i].scales, j);
            if (!d)
                continue;
            for (int ii = 0; ii < 16; ii++)
                L[16 * j + ii] =
                    (int8_t)(clampi(quant__nearest_int(src[16 * j + ii] / d), -4, 3) + 4);
        }
        /* the high bit of element e lives in hmask[e % 32], bit e / 32 */
        memset(y[i].hmask, 0, sizeof y[i].hmask);
        for (int j = 0; j < QK_K; j++) {
            if (L[j] > 3) {
                y[i].hmask[j % 32] |= (uint8_t)(1 << (j / 32));
                L[j] -= 4;
            }
        }
        pack_2bit(L, y[i].qs);
    }
}

/* The 256 signed 3-bit quants (-4..3) of a Q3_K block. */
static void q3k_decode(const block_q3_K *b, int8_t *q)
{
    for (int e = 0; e < QK_K; e++) {
        int hi = (b->hmask[e % 32] >> (e / 32)) & 1;
        q[e] = (int8_t)(unpack_2bit(b->qs, e) - (hi ? 0 : 4));
    }
}

void quant__dequant_q3_K(const void *src, float *y, int64_t n)
{
    const block_q3_K *x = src;
    int8_t q[QK_K];
    for (int64_t i = 0; i < n / QK_K; i++, y += QK_K) {
        const float d = fp16_to_fp32(x[i].d);
        q3k_decode(&x[i], q);
        for (int j = 0; j < QK_K; j++)
            y[j] = d * (float)q3k_scale(x[i].scales, j / 16) * q[j];
    }
}

/* ---- Q2_K -------------------------------------------------------------------- */

void quant__quant_q2_K(const float *src, void *dst, int64_t n)
{
    block_q2_K *y = dst;
    uint8_t L[QK_K], Laux[16];
    int8_t Ls[QK_K];
    float weights[16], mins[QK_K / 16], scales[QK_K / 16];
    for (int64_t i = 0; i < n / QK_K; i++, src += QK_K) {
        float max_scale = 0, max_min = 0;
        for (int j = 0; j < QK_K / 16; j++) {
            for (int l = 0; l < 16; l++)
                weights[l] = fabsf(src[16 * j + l]);
            scales[j] = make_qkx2_quants(16, 3, src + 16 * j, weights, L + 16 * j, &mins[j], Laux,
                                         -0.5f, 0.1f, 15, 1);
            max_scale = scales[j] > max_scale ? scales[j] : max_scale;
            max_min = mins[j] > max_min ? mins[j] : max_min;
        }
        if (max_scale > 0) {
            const float iscale = 15.f / max_scale;
            for (int j = 0; j < QK_K / 16; j++)
                y[i].scales[j] = (uint8_t)quant__nearest_int(iscale * scales[j]);
            y[i].d = fp32_to_fp16(max_scale / 15.f);
        } else {
            memset(y[i].scales, 0, sizeof y[i].scales);
            y[i].d = fp32_to_fp16(0.f);
        }
        if (max_min > 0) {
            const float iscale = 15.f / max_min;
            for (int j = 0; j < QK_K / 16; j++)
                y[i].scales[j] |= (uint8_t)(quant__nearest_int(iscale * mins[j]) << 4);
            y[i].dmin = fp32_to_fp16(max_min / 15.f);
        } else {
            y[i].dmin = fp32_to_fp16(0.f);
        }
        for (int j = 0; j < QK_K / 16; j++) {
            const float d = fp16_to_fp32(y[i].d) * (y[i].scales[j] & 0xF);
            if (!d)
                continue;
            const float dm = fp16_to_fp32(y[i].dmin) * (y[i].scales[j] >> 4);
            for (int ii = 0; ii < 16; ii++)
                L[16 * j + ii] =
                    (uint8_t)clampi(quant__nearest_int((src[16 * j + ii] + dm) / d), 0, 3);
        }
        for (int j = 0; j < QK_K; j++)
            Ls[j] = (int8_t)L[j];
        pack_2bit(Ls, y[i].qs);
    }
}

void quant__dequant_q2_K(const void *src, float *y, int64_t n)
{
    const block_q2_K *x = src;
    for (int64_t i = 0; i < n / QK_K; i++, y += QK_K) {
        const float d = fp16_to_fp32(x[i].d), min = fp16_to_fp32(x[i].dmin);
        for (int j = 0; j < QK_K; j++) {
            const uint8_t sc = x[i].scales[j / 16];
            y[j] = d * (sc & 0xF) * unpack_2bit(x[i].qs, j) - min * (sc >> 4);
        }
    }
}

/* ---- Q8_K -------------------------------------------------------------------- */

void quant__quant_q8_K(const float *src, void *dst, int64_t n)
{
    block_q8_K *y = dst;
    for (int64_t i = 0; i < n / QK_K; i++, src += QK_K) {
        float max = 0, amax = 0;
        for (int j = 0; j < QK_K; j++) {
            if (fabsf(src[j]) > amax) {
                amax = fabsf(src[j]);
                max = src[j];
            }
        }
        if (!amax) {
            memset(&y[i], 0, sizeof y[i]);
            continue;
        }
        const float iscale = -127.f / max;
        for (int j = 0; j < QK_K; j++) {
            int v = quant__nearest_int(iscale * src[j]);
            y[i].qs[j] = (int8_t)(v < 127 ? v : 127);
        }
        for (int j = 0; j < QK_K / 16; j++) {
            int sum = 0;
            for (int ii = 0; ii < 16; ii++)
                sum += y[i].qs[16 * j + ii];
            y[i].bsums[j] = (int16_t)sum;
        }
        y[i].d = 1 / iscale;
    }
}

void quant__dequant_q8_K(const void *src, float *y, int64_t n)
{
    const block_q8_K *x = src;
    for (int64_t i = 0; i < n / QK_K; i++, y += QK_K)
        for (int j = 0; j < QK_K; j++)
            y[j] = x[i].d * x[i].qs[j];
}

/* ---- dot products against Q8_K ----------------------------------------------
 * Integer sums per sub-block, scaled per super-block; the mins of the affine
 * types are applied through the activation's 16-element sums (bsums), which
 * is the identity the SIMD kernels rely on.
 */

float quant__dot_q2_K(int64_t n, const void *w, const void *xv)
{
    const block_q2_K *a = w;
    const block_q8_K *b = xv;
    float s = 0;
    for (int64_t i = 0; i < n / QK_K; i++) {
        int isum = 0, summs = 0;
        for (int j = 0; j < QK_K / 16; j++) {
            int sub = 0;
            for (int l = 0; l < 16; l++)
                sub += unpack_2bit(a[i].qs, 16 * j + l) * b[i].qs[16 * j + l];
            isum += (a[i].scales[j] & 0xF) * sub;
            summs += (a[i].scales[j] >> 4) * b[i].bsums[j];
        }
        const float dall = b[i].d * fp16_to_fp32(a[i].d);
        const float dmin = b[i].d * fp16_to_fp32(a[i].dmin);
        s += dall * (float)isum - dmin * (float)summs;
    }
    return s;
}

float quant__dot_q3_K(int64_t n, const void *w, const void *xv)
{
    const block_q3_K *a = w;
    const block_q8_K *b = xv;
    int8_t q[QK_K];
    float s = 0;
    for (int64_t i = 0; i < n / QK_K; i++) {
        q3k_decode(&a[i], q);
        int isum = 0;
        for (int j = 0; j < QK_K / 16; j++) {
            int sub = 0;
            for (int l = 0; l < 16; l++)
                sub += q[16 * j + l] * b[i].qs[16 * j + l];
            isum += q3k_scale(a[i].scales, j) * sub;
        }
        s += fp16_to_fp32(a[i].d) * b[i].d * (float)isum;
    }
    return s;
}

/* Shared by Q4_K and Q5_K: q holds the 256 unsigned quants. */
static float dot_k_affine(const block_q8_K *b, const uint8_t *q, const uint8_t *packed, float d,
                          float dmin)
{
    int isum = 0, summs = 0;
    for (int j = 0; j < 8; j++) {
        uint8_t sc, m;
        get_scale_min_k4(j, packed, &sc, &m);
        int sub = 0;
        for (int l = 0; l < 32; l++)
            sub += q[32 * j + l] * b->qs[32 * j + l];
        isum += sc * sub;
        summs += m * (b->bsums[2 * j] + b->bsums[2 * j + 1]);
    }
    return d * b->d * (float)isum - dmin * b->d * (float)summs;
}

float quant__dot_q4_K(int64_t n, const void *w, const void *xv)
{
    const block_q4_K *a = w;
    const block_q8_K *b = xv;
    uint8_t q[QK_K];
    float s = 0;
    for (int64_t i = 0; i < n / QK_K; i++) {
        for (int j = 0; j < QK_K / 64; j++)
            for (int l = 0; l < 32; l++) {
                q[64 * j + l] = a[i].qs[32 * j + l] & 0xF;
                q[64 * j + l + 32] = a[i].qs[32 * j + l] >> 4;
            }
        s += dot_k_affine(&b[i], q, a[i].scales, fp16_to_fp32(a[i].d), fp16_to_fp32(a[i].dmin));
    }
    return s;
}

float quant__dot_q5_K(int64_t n, const void *w, const void *xv)
{
    const block_q5_K *a = w;
    const block_q8_K *b = xv;
    uint8_t q[QK_K];
    float s = 0;
    for (int64_t i = 0; i < n / QK_K; i++) {
        for (int j = 0; j < QK_K / 64; j++)
            for (int l = 0; l < 32; l++) {
                const uint8_t h = a[i].qh[l];
                q[64 * j + l] =
                    (uint8_t)((a[i].qs[32 * j + l] & 0xF) | (((h >> (2 * j)) & 1) << 4));
                q[64 * j + l + 32] =
                    (uint8_t)((a[i].qs[32 * j + l] >> 4) | (((h >> (2 * j + 1)) & 1) << 4));
            }
        s += dot_k_affine(&b[i], q, a[i].scales, fp16_to_fp32(a[i].d), fp16_to_fp32(a[i].dmin));
    }
    return s;
}

float quant__dot_q6_K(int64_t n, const void *w, const void *xv)
{
    const block_q6_K *a = w;
    const block_q8_K *b = xv;
    int8_t q[QK_K];
    float s = 0;
    for (int64_t i = 0; i < n / QK_K; i++) {
        q6k_decode(&a[i], q);
        int isum = 0;
        for (int j = 0; j < QK_K / 16; j++) {
            int sub = 0;
            for (int l = 0; l < 16; l++)
                sub += q[16 * j + l] * b[i].qs[16 * j + l];
            isum += a[i].scales[j] * sub;
        }
        s += fp16_to_fp32(a[i].d) * b[i].d * (float)isum;
    }
    return s;
}
