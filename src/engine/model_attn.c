/*
 * model_attn.c - scalar attention products and the choice of implementation
 * (see model_attn.h).
 */
#include "engine/model_attn.h"

#include "engine/kernels.h"

static void scores_scalar(const float *Q, uint32_t nq, const float *K, uint32_t nt, uint32_t hd,
                          float scale, float *S, size_t s_stride)
{
    for (uint32_t q = 0; q < nq; q++)
        for (uint32_t t = 0; t < nt; t++) {
            const float *a = Q + (size_t)q * hd, *b = K + (size_t)t * hd;
            float s = 0;
            for (uint32_t d = 0; d < hd; d++)
                s += a[d] * b[d];
            S[(size_t)q * s_stride + t] = s * scale;
        }
}

static void av_scalar(const float *P, size_t p_stride, uint32_t nq, const float *V, uint32_t nt,
                      uint32_t hd, float *O)
{
    for (uint32_t q = 0; q < nq; q++)
        for (uint32_t t = 0; t < nt; t++) {
            float w = P[(size_t)q * p_stride + t];
            const float *v = V + (size_t)t * hd;
            float *o = O + (size_t)q * hd;
            for (uint32_t d = 0; d < hd; d++)
                o[d] += w * v[d];
        }
}

static const struct model_attn_ops ops_scalar = {scores_scalar, av_scalar};
#if defined(__x86_64__)
static const struct model_attn_ops ops_avx2 = {model__attn_scores_avx2, model__attn_av_avx2};
#endif

const struct model_attn_ops *model__attn_ops(uint32_t hd)
{
#if defined(__x86_64__)
    if (kern_isa_get() >= KERN_ISA_AVX2 && hd % 8 == 0)
        return &ops_avx2;
#endif
    (void)hd;
    return &ops_scalar;
}
