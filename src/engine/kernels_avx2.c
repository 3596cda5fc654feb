/*
 * kernels_avx2.c - AVX2 + FMA + F16C kernels.
 *
 * Built with those flags; only called after run-time detection (kernels.c).
 * The element-wise helpers here also serve the AVX-512 level (which inherits
 * this table). Quantized dot products use the sign trick: |w| (unsigned) times
 * a * sign(w) (signed) with vpmaddubsw, pairs summed by vpmaddwd.
 *
 * Not for: products over packed Q4_0/Q8_0 matrices (kernels_gemm_avx2.c).
 * Other quantized types run the row-at-a-time path at every batch size.
 */
#include "engine/kernels_impl.h"

#if defined(__x86_64__)

#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "engine/kernels_x86_inl.h"
#include "engine/quant_blocks.h"

static inline float h2f(ggml_fp16_t h)
{
    return _cvtsh_ss(h);
}

/* ---- activation quantization (PLAIN / U8) ------------------------------------ */

static void avx2_quantize_act(const float *x, int64_t r0, int64_t r1, struct kern__act *a)
{
    const __m256 sign = _mm256_set1_ps(-0.0f);
    int64_t k = a->k, nb = a->nb32;
    for (int64_t r = r0; r < r1; r++) {
        int8_t *qs = a->qs + r * k;
        float *d = a->d + r * nb, *ds = a->ds + r * nb, *ds16 = a->ds16 + r * 2 * nb;
        int32_t *is16 = a->is16 + r * 2 * nb;
        for (int64_t b = 0; b < nb; b++) {
            const float *xb = x + r * k + b * 32;
            __m256 v[4];
            __m256 mx = _mm256_setzero_ps();
            for (int j = 0; j < 4; j++) {
                v[j] = _mm256_loadu_ps(xb + 8 * j);
                mx = _mm256_max_ps(mx, _mm256_andnot_ps(sign, v[j]));
            }
            __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(mx), _mm256_extractf128_ps(mx, 1));
            m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
            m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
            float amax = _mm_cvtss_f32(m4);
            float id = amax > 0.0f ? 127.0f / amax : 0.0f;
            d[b] = amax / 127.0f;
            __m256i iv[4];
            for (int j = 0; j < 4; j++)
                iv[j] = _mm256_cvtps_epi32(_mm256_mul_ps(v[j], _mm256_set1_ps(id)));
            __m256i s01 = _mm256_add_epi32(iv[0], iv[1]), s23 = _mm256_add_epi32(iv[2], iv[3]);
            __m128i t0 =
                _mm_add_epi32(_mm256_castsi256_si128(s01), _mm256_extracti128_si256(s01, 1));
            __m128i t1 =
                _mm_add_epi32(_mm256_castsi256_si128(s23), _mm256_extracti128_si256(s23, 1));
            t0 = _mm_hadd_epi32(t0, t1);
            t0 = _mm_hadd_epi32(t0, t0); /* lanes: sum01, sum23 */
            int s0 = _mm_cvtsi128_si32(t0), s1 = _mm_extract_epi32(t0, 1);
            /* pack 32 int32 to int8 in order: packs work per 128-bit lane, fix with a permute */
            __m256i p01 = _mm256_packs_epi32(iv[0], iv[1]);
            __m256i p23 = _mm256_packs_epi32(iv[2], iv[3]);
            __m256i p = _mm256_packs_epi16(p01, p23);
            p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
            if (a->layout == KERN_ACT_U8)
                p = _mm256_xor_si256(p, _mm256_set1_epi8((char)0x80));
            _mm256_storeu_si256((__m256i *)(qs + b * 32), p);
            ds[b] = d[b] * (float)(s0 + s1);
            ds16[2 * b] = d[b] * (float)s0;
            ds16[2 * b + 1] = d[b] * (float)s1;
            is16[2 * b] = s0;
            is16[2 * b + 1] = s1;
        }
    }
}

/* ---- quantized dot products ----------------------------------------------------- */

/* Sum of w[i] * a[i] over 32 signed bytes, as 8 int32 lanes. */
static inline __m256i dot_s8(__m256i w, __m256i a)
{
    __m256i p = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(a, w));
    return _mm256_madd_epi16(p, _mm256_set1_epi16(1));
}

static float avx2_dot_packed(const struct kern__panel *p, const struct kern__act *a, int64_t b)
{
    const int8_t *aq = a->qs + b * a->k;
    const float *ad = a->d + b * a->nb32;
    float sum = 0.0f;
    __m256 acc = _mm256_setzero_ps();
    if (p->bs == 32) {
        const float *ads = a->ds + b * a->nb32;
        for (int64_t j = 0; j < p->nblk; j++) {
            __m256i s = dot_s8(_mm256_loadu_si256((const __m256i *)(p->q + 32 * j)),
                               _mm256_loadu_si256((const __m256i *)(aq + 32 * j)));
            acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_set1_ps(p->s[j] * ad[j]), acc);
            sum += p->m[j] * ads[j];
        }
        return sum + kern_hsum8(acc);
    }
    const float *ads = a->ds16 + b * 2 * a->nb32;
    for (int64_t j = 0; j < p->nblk; j += 2) {
        /* two 16-blocks per 256-bit vector: lanes 0-3 and 4-7 */
        __m256i s = dot_s8(_mm256_loadu_si256((const __m256i *)(p->q + 16 * j)),
                           _mm256_loadu_si256((const __m256i *)(aq + 16 * j)));
        __m256 sc = _mm256_setr_m128(_mm_set1_ps(p->s[j]), _mm_set1_ps(p->s[j + 1]));
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_mul_ps(sc, _mm256_set1_ps(ad[j / 2])),
                              acc);
        sum += p->m[j] * ads[j] + p->m[j + 1] * ads[j + 1];
    }
    return sum + kern_hsum8(acc);
}

static void gemv_q4_0(const void *W, size_t row_bytes, int64_t k, int64_t r0, int64_t r1,
                      const struct kern__act *a, int64_t b0, int64_t b1, float *y, int64_t ldy)
{
    const __m256i m4 = _mm256_set1_epi8(0x0F), off = _mm256_set1_epi8(8);
    int64_t nb = k / 32;
    for (int64_t r = r0; r < r1; r++) {
        const block_q4_0 *x = (const block_q4_0 *)((const char *)W + (size_t)r * row_bytes);
        for (int64_t b = b0; b < b1; b++) {
            const int8_t *aq = a->qs + b * k;
            const float *ad = a->d + b * nb;
            __m256 acc = _mm256_setzero_ps();
            for (int64_t i = 0; i < nb; i++) {
                __m128i v = _mm_loadu_si128((const __m128i *)x[i].qs);
                __m256i w = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(v, 4), v), m4);
                w = _mm256_sub_epi8(w, off);
                __m256i s = dot_s8(w, _mm256_loadu_si256((const __m256i *)(aq + 32 * i)));
                acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_set1_ps(h2f(x[i].d) * ad[i]),
                                      acc);
            }
            y[b * ldy + r] = kern_hsum8(acc);
        }
    }
}

static void gemv_q8_0(const void *W, size_t row_bytes, int64_t k, int64_t r0, int64_t r1,
                      const struct kern__act *a, int64_t b0, int64_t b1, float *y, int64_t ldy)
{
    int64_t nb = k / 32;
    for (int64_t r = r0; r < r1; r++) {
        const block_q8_0 *x = (const block_q8_0 *)((const char *)W + (size_t)r * row_bytes);
        for (int64_t b = b0; b < b1; b++) {
            const int8_t *aq = a->qs + b * k;
            const float *ad = a->d + b * nb;
            __m256 acc = _mm256_setzero_ps();
            for (int64_t i = 0; i < nb; i++) {
                __m256i s = dot_s8(_mm256_loadu_si256((const __m256i *)x[i].qs),
                                   _mm256_loadu_si256((const __m256i *)(aq + 32 * i)));
                acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_set1_ps(h2f(x[i].d) * ad[i]),
                                      acc);
            }
            y[b * ldy + r] = kern_hsum8(acc);
        }
    }
}

/* ---- element-wise helpers ------------------------------------------------------ */

/* e^x, relative error ~1e-7 (Cephes-style range reduction and polynomial); 0 below -87.3. */
static inline __m256 exp8(__m256 x)
{
    const __m256 lo = _mm256_set1_ps(-87.3f), hi = _mm256_set1_ps(88.3f);
    __m256 under = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
    x = _mm256_min_ps(_mm256_max_ps(x, lo), hi);
    __m256 fx = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(0.693359375f), x);
    x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(-2.12194440e-4f), x);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, x, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, x, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, x, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, x, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, x, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(x, x), _mm256_add_ps(x, _mm256_set1_ps(1.0f)));
    __m256i e =
        _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(fx), _mm256_set1_epi32(127)), 23);
    return _mm256_andnot_ps(under, _mm256_mul_ps(p, _mm256_castsi256_ps(e)));
}

static void avx2_rmsnorm(float *out, const float *x, const float *w, int64_t n, float eps)
{
    __m256 acc = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        acc = _mm256_fmadd_ps(v, v, acc);
    }
    float ss = kern_hsum8(acc);
    for (; i < n; i++)
        ss += x[i] * x[i];
    float sc = 1.0f / sqrtf(ss / (float)n + eps);
    __m256 vs = _mm256_set1_ps(sc);
    for (i = 0; i + 8 <= n; i += 8) {
        __m256 v = _mm256_mul_ps(_mm256_loadu_ps(x + i), vs);
        if (w)
            v = _mm256_mul_ps(v, _mm256_loadu_ps(w + i));
        _mm256_storeu_ps(out + i, v);
    }
    for (; i < n; i++)
        out[i] = x[i] * sc * (w ? w[i] : 1.0f);
}

/* As scalar_argmax: the maximum 8 lanes at a time (max_ps keeps its second operand
   when the first is NaN), then the first index holding it. */
static int64_t avx2_argmax(const float *x, int64_t n)
{
    __m256 vm = _mm256_set1_ps(-INFINITY);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        vm = _mm256_max_ps(_mm256_loadu_ps(x + i), vm);
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(vm), _mm256_extractf128_ps(vm, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    float mx = _mm_cvtss_f32(m4);
    for (; i < n; i++)
        if (x[i] > mx)
            mx = x[i];
    const __m256 vmx = _mm256_set1_ps(mx);
    for (i = 0; i + 8 <= n; i += 8) {
        int eq = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(x + i), vmx, _CMP_EQ_OQ));
        if (eq)
            return i + __builtin_ctz((unsigned)eq);
    }
    for (; i < n; i++)
        if (x[i] == mx)
            return i;
    return 0;
}

static void avx2_softmax(float *x, int64_t n)
{
    __m256 vm = _mm256_set1_ps(-INFINITY);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        vm = _mm256_max_ps(vm, _mm256_loadu_ps(x + i));
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(vm), _mm256_extractf128_ps(vm, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    float mx = _mm_cvtss_f32(m4);
    for (; i < n; i++)
        mx = fmaxf(mx, x[i]);
    if (mx == -INFINITY) {
        memset(x, 0, (size_t)n * sizeof(float));
        return;
    }
    __m256 vmx = _mm256_set1_ps(mx), acc = _mm256_setzero_ps();
    for (i = 0; i + 8 <= n; i += 8) {
        __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), vmx));
        _mm256_storeu_ps(x + i, e);
        acc = _mm256_add_ps(acc, e);
    }
    float sum = kern_hsum8(acc);
    for (; i < n; i++) {
        x[i] = expf(x[i] - mx);
        sum += x[i];
    }
    float inv = 1.0f / sum;
    __m256 vi = _mm256_set1_ps(inv);
    for (i = 0; i + 8 <= n; i += 8)
        _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), vi));
    for (; i < n; i++)
        x[i] *= inv;
}

static void avx2_swiglu(float *out, const float *gate, const float *up, int64_t n)
{
    const __m256 one = _mm256_set1_ps(1.0f), neg = _mm256_set1_ps(-0.0f);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 g = _mm256_loadu_ps(gate + i);
        __m256 e = exp8(_mm256_xor_ps(g, neg));
        __m256 s = _mm256_div_ps(g, _mm256_add_ps(one, e));
        _mm256_storeu_ps(out + i, _mm256_mul_ps(s, _mm256_loadu_ps(up + i)));
    }
    for (; i < n; i++)
        out[i] = gate[i] / (1.0f + expf(-gate[i])) * up[i];
}

static void avx2_add(float *y, const float *x, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_add_ps(_mm256_loadu_ps(y + i), _mm256_loadu_ps(x + i)));
    for (; i < n; i++)
        y[i] += x[i];
}

static void avx2_scale(float *x, float s, int64_t n)
{
    __m256 vs = _mm256_set1_ps(s);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), vs));
    for (; i < n; i++)
        x[i] *= s;
}

static void avx2_axpy(float *y, float a, const float *x, int64_t n)
{
    __m256 va = _mm256_set1_ps(a);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i,
                         _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    for (; i < n; i++)
        y[i] += a * x[i];
}

static float avx2_dot(const float *x, const float *y, int64_t n)
{
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 8), _mm256_loadu_ps(y + i + 8), a1);
    }
    for (; i + 8 <= n; i += 8)
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), a0);
    float s = kern_hsum8(_mm256_add_ps(a0, a1));
    for (; i < n; i++)
        s += x[i] * y[i];
    return s;
}

static void avx2_f32_to_f16(ggml_fp16_t *dst, const float *src, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(dst + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++)
        dst[i] = fp32_to_fp16(src[i]);
}

static void avx2_f16_to_f32(float *dst, const ggml_fp16_t *src, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + i))));
    for (; i < n; i++)
        dst[i] = fp16_to_fp32(src[i]);
}

static float avx2_dot_f16_f32(const ggml_fp16_t *a, const float *b, int64_t n)
{
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        a0 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(a + i))),
                             _mm256_loadu_ps(b + i), a0);
        a1 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(a + i + 8))),
                             _mm256_loadu_ps(b + i + 8), a1);
    }
    for (; i + 8 <= n; i += 8)
        a0 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(a + i))),
                             _mm256_loadu_ps(b + i), a0);
    float s = kern_hsum8(_mm256_add_ps(a0, a1));
    for (; i < n; i++)
        s += fp16_to_fp32(a[i]) * b[i];
    return s;
}

static void avx2_axpy_f16(float *y, float s, const ggml_fp16_t *x, int64_t n)
{
    __m256 vs = _mm256_set1_ps(s);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(
            y + i, _mm256_fmadd_ps(vs, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i))),
                                   _mm256_loadu_ps(y + i)));
    for (; i < n; i++)
        y[i] += s * fp16_to_fp32(x[i]);
}

void kern__init_avx2(struct kern__ops *o)
{
    o->isa = KERN_ISA_AVX2;
    o->quantize_act = avx2_quantize_act;
    o->dot_packed = avx2_dot_packed;
    o->packed_layout = KERN_ACT_PLAIN;
    o->gemv[GGML_TYPE_Q4_0] = gemv_q4_0;
    o->gemv_layout[GGML_TYPE_Q4_0] = KERN_ACT_PLAIN;
    o->gemv[GGML_TYPE_Q8_0] = gemv_q8_0;
    o->gemv_layout[GGML_TYPE_Q8_0] = KERN_ACT_PLAIN;
    o->rmsnorm = avx2_rmsnorm;
    o->softmax = avx2_softmax;
    o->argmax = avx2_argmax;
    o->swiglu = avx2_swiglu;
    o->add = avx2_add;
    o->scale = avx2_scale;
    o->axpy = avx2_axpy;
    o->dot = avx2_dot;
    o->f32_to_f16 = avx2_f32_to_f16;
    o->f16_to_f32 = avx2_f16_to_f32;
    o->dot_f16_f32 = avx2_dot_f16_f32;
    o->axpy_f16 = avx2_axpy_f16;
    kern__init_avx2_gemm(o);
}

#else

void kern__init_avx2(struct kern__ops *o)
{
    (void)o;
}

#endif
