/*
 * model_attn.h - the two small dense products inside attention, for a chunk
 * of queries against one block of cached keys/values already converted to
 * F32: scores S = scale * Q K^T and the weighted sum O += P V. Internal to the
 * engine (model.c). A scalar version and an AVX2+FMA one (model_attn_avx2.c);
 * model__attn_ops() picks by kern_isa_get(). Not for: softmax, masking, the
 * KV cache layout (model.c handles those).
 */
#ifndef AISTACK_ENGINE_MODEL_ATTN_H
#define AISTACK_ENGINE_MODEL_ATTN_H

#include <stddef.h>
#include <stdint.h>

struct model_attn_ops {
    /*
     * S[q * s_stride + t] = scale * dot(Q[q * hd ..], K[t * hd ..]) for q < nq, t < nt.
     * Q, K contiguous rows of hd floats.
     */
    void (*scores)(const float *Q, uint32_t nq, const float *K, uint32_t nt, uint32_t hd,
                   float scale, float *S, size_t s_stride);
    /* O[q * hd + d] += sum_t P[q * p_stride + t] * V[t * hd + d] for q < nq, t < nt, d < hd. */
    void (*av)(const float *P, size_t p_stride, uint32_t nq, const float *V, uint32_t nt,
               uint32_t hd, float *O);
};

/* The best implementation for the current kernel ISA level and head size hd. */
const struct model_attn_ops *model__attn_ops(uint32_t hd);

/* The AVX2+FMA version (hd a multiple of 8); defined in model_attn_avx2.c. */
void model__attn_scores_avx2(const float *Q, uint32_t nq, const float *K, uint32_t nt, uint32_t hd,
                             float scale, float *S, size_t s_stride);
void model__attn_av_avx2(const float *P, size_t p_stride, uint32_t nq, const float *V, uint32_t nt,
                         uint32_t hd, float *O);

#endif
