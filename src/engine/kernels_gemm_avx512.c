/*
 * kernels_gemm_avx512.c - AVX-512 VNNI batched products: weight-row
 * unpacking, the packed-row dot product, and the interleaved panel GEMM.
 *
 * Activations for batches are stored unsigned (q + 128) with 8 batch rows
 * interleaved per 4 bytes, so one 256-bit vpdpbusd against a broadcast 4-byte
 * piece of an unpacked (int8) weight row advances 8 batch rows; the +128
 * offset is removed with the row's 128 * sum(q) per block.
 * Only called after run-time detection (kernels.c). Not for: batch-1
 * products (kernels_avx512.c).
 */
#include "engine/kernels_impl.h"

#if defined(__x86_64__)

#include "engine/kernels_avx512_inl.h"

/* ---- packed rows ------------------------------------------------------------ */

static void avx512_pack_row(enum ggml_type t, const void *row, int64_t k, int8_t *q, float *s,
                            float *m, int32_t *qs128)
{
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    switch (t) {
    case GGML_TYPE_Q4_0: {
        const block_q4_0 *x = row;
        int64_t nb = k / 32, i = 0;
        /* 8 blocks at a time, with the word permutes of dot_q4_0_row */
        const __m512i widx = _mm512_castsi128_si512(_mm_setr_epi16(0, 9, 18, 27, 36, 45, 54, 63));
        const __m512i qidx0 = _mm512_setr_epi32(
            1 | 2 << 16, 3 | 4 << 16, 5 | 6 << 16, 7 | 8 << 16, 10 | 11 << 16, 12 | 13 << 16,
            14 | 15 << 16, 16 | 17 << 16, 19 | 20 << 16, 21 | 22 << 16, 23 | 24 << 16,
            25 | 26 << 16, 28 | 29 << 16, 30 | 31 << 16, 32 | 33 << 16, 34 | 35 << 16);
        const __m512i qidx1 = _mm512_setr_epi32(
            1 | 2 << 16, 3 | 4 << 16, 5 | 6 << 16, 7 | 8 << 16, 10 | 11 << 16, 12 | 13 << 16,
            14 | 15 << 16, 16 | 17 << 16, 19 | 20 << 16, 21 | 22 << 16, 23 | 24 << 16,
            25 | 26 << 16, 28 | 29 << 16, 30 | 31 << 16, 60 | 61 << 16, 62 | 63 << 16);
        /* qword lanes: (lo block j, hi block j) pairs for blocks 0,1 then 2,3 */
        const __m512i il0 = _mm512_setr_epi64(0, 1, 8, 9, 2, 3, 10, 11);
        const __m512i il1 = _mm512_setr_epi64(4, 5, 12, 13, 6, 7, 14, 15);
        const __m512i even = _mm512_setr_epi64(0, 2, 4, 6, 8, 10, 12, 14);
        const __m512i m4z = _mm512_set1_epi8(0x0F), c8 = _mm512_set1_epi8(8);
        for (; i + 8 <= nb; i += 8) {
            const char *gp = (const char *)&x[i];
            __m512i z0 = _mm512_loadu_si512(gp), z1 = _mm512_loadu_si512(gp + 64);
            __m512i z2 = _mm512_loadu_si512(gp + 72), z3 = _mm512_loadu_si512(gp + 80);
            _mm256_storeu_ps(s + i, _mm256_cvtph_ps(_mm512_castsi512_si128(
                                        _mm512_permutex2var_epi16(z0, widx, z1))));
            _mm256_storeu_ps(m + i, _mm256_setzero_ps());
            __m512i v[2] = {_mm512_permutex2var_epi16(z0, qidx0, z1),
                            _mm512_permutex2var_epi16(z2, qidx1, z3)};
            __m512i bsum[2];
            KERN_UNROLL(2)
            for (int h = 0; h < 2; h++) {
                __m512i lo = _mm512_and_si512(v[h], m4z);
                __m512i hi = _mm512_and_si512(_mm512_srli_epi16(v[h], 4), m4z);
                int8_t *qo = q + (i + 4 * h) * 32;
                _mm512_storeu_si512(qo,
                                    _mm512_sub_epi8(_mm512_permutex2var_epi64(lo, il0, hi), c8));
                _mm512_storeu_si512(qo + 64,
                                    _mm512_sub_epi8(_mm512_permutex2var_epi64(lo, il1, hi), c8));
                /* per block: sum of its 4 qword SADs (2 in lo, 2 in hi) */
                __m512i sd = _mm512_add_epi64(_mm512_sad_epu8(lo, _mm512_setzero_si512()),
                                              _mm512_sad_epu8(hi, _mm512_setzero_si512()));
                bsum[h] = _mm512_add_epi64(sd, _mm512_shuffle_epi32(sd, _MM_PERM_BADC));
            }
            __m256i sums = _mm512_cvtepi64_epi32(_mm512_permutex2var_epi64(bsum[0], even, bsum[1]));
            _mm256_storeu_si256(
                (__m256i *)(qs128 + i),
                _mm256_slli_epi32(_mm256_sub_epi32(sums, _mm256_set1_epi32(256)), 7));
        }
        for (; i < nb; i++) {
            __m128i v = _mm_loadu_si128((const __m128i *)x[i].qs);
            __m256i u = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(v, 4), v), m4);
            _mm256_storeu_si256((__m256i *)(q + 32 * i), _mm256_sub_epi8(u, _mm256_set1_epi8(8)));
            s[i] = h2f(x[i].d);
            m[i] = 0.0f;
            qs128[i] = 128 * (sum_u8_32(u) - 256);
        }
        return;
    }
    case GGML_TYPE_Q4_1: {
        const block_q4_1 *x = row;
        for (int64_t i = 0; i < k / 32; i++) {
            __m128i v = _mm_loadu_si128((const __m128i *)x[i].qs);
            __m256i u = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(v, 4), v), m4);
            _mm256_storeu_si256((__m256i *)(q + 32 * i), u);
            s[i] = h2f(x[i].d);
            m[i] = h2f(x[i].m);
            qs128[i] = 128 * sum_u8_32(u);
        }
        return;
    }
    case GGML_TYPE_Q5_0:
    case GGML_TYPE_Q5_1: {
        /* fifth bit j of qh (little-endian 32 bits) belongs to element j */
        const int is1 = t == GGML_TYPE_Q5_1;
        const size_t bsz = is1 ? sizeof(block_q5_1) : sizeof(block_q5_0);
        const int off = is1 ? 0 : 16;
        for (int64_t i = 0; i < k / 32; i++) {
            const uint8_t *blk = (const uint8_t *)row + (size_t)i * bsz;
            const uint8_t *qh = blk + (is1 ? 4 : 2), *qsb = qh + 4;
            uint32_t hb;
            memcpy(&hb, qh, 4);
            __m128i v = _mm_loadu_si128((const __m128i *)qsb);
            __m256i u = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(v, 4), v), m4);
            u = _mm256_or_si256(u, _mm256_and_si256(_mm256_movm_epi8(hb), _mm256_set1_epi8(16)));
            _mm256_storeu_si256((__m256i *)(q + 32 * i),
                                _mm256_sub_epi8(u, _mm256_set1_epi8((char)off)));
            ggml_fp16_t dh, mh = 0;
            memcpy(&dh, blk, 2);
            if (is1)
                memcpy(&mh, blk + 2, 2);
            s[i] = h2f(dh);
            m[i] = is1 ? h2f(mh) : 0.0f;
            qs128[i] = 128 * (sum_u8_32(u) - 32 * off);
        }
        return;
    }
    case GGML_TYPE_Q8_0: {
        const block_q8_0 *x = row;
        for (int64_t i = 0; i < k / 32; i++) {
            __m256i v = _mm256_loadu_si256((const __m256i *)x[i].qs);
            _mm256_storeu_si256((__m256i *)(q + 32 * i), v);
            s[i] = h2f(x[i].d);
            m[i] = 0.0f;
            qs128[i] =
                128 * (sum_u8_32(_mm256_xor_si256(v, _mm256_set1_epi8((char)0x80))) - 128 * 32);
        }
        return;
    }
    case GGML_TYPE_Q4_K:
    case GGML_TYPE_Q5_K: {
        const int is5 = t == GGML_TYPE_Q5_K;
        size_t bsz = is5 ? sizeof(block_q5_K) : sizeof(block_q4_K);
        for (int64_t i = 0; i < k / QK_K; i++) {
            const uint8_t *blk = (const uint8_t *)row + (size_t)i * bsz;
            /* both layouts start d, dmin, scales[12]; Q5_K then has qh[32] before qs */
            ggml_fp16_t dh, dmh;
            memcpy(&dh, blk, 2);
            memcpy(&dmh, blk + 2, 2);
            const uint8_t *sc = blk + 4;
            const uint8_t *qs = blk + 4 + K_SCALE_SIZE + (is5 ? QK_K / 8 : 0);
            __m256i hb = is5 ? _mm256_loadu_si256((const __m256i *)(blk + 4 + K_SCALE_SIZE))
                             : _mm256_setzero_si256();
            float d = h2f(dh), dmin = h2f(dmh);
            __m512 scm = k4_scales_mins(sc);
            _mm256_storeu_ps(s, _mm256_mul_ps(_mm512_castps512_ps256(scm), _mm256_set1_ps(d)));
            _mm256_storeu_ps(m,
                             _mm256_mul_ps(_mm512_extractf32x8_ps(scm, 1), _mm256_set1_ps(-dmin)));
            s += 8;
            m += 8;
            for (int j = 0; j < 4; j++, q += 64) {
                __m256i v = _mm256_loadu_si256((const __m256i *)(qs + 32 * j));
                __m256i lo = _mm256_and_si256(v, m4);
                __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
                if (is5) {
                    __m256i b0 = _mm256_set1_epi8((char)(1 << (2 * j)));
                    __m256i b1 = _mm256_set1_epi8((char)(2 << (2 * j)));
                    __m256i s16 = _mm256_set1_epi8(16);
                    lo = _mm256_or_si256(
                        lo, _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(hb, b0), b0), s16));
                    hi = _mm256_or_si256(
                        hi, _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(hb, b1), b1), s16));
                }
                _mm256_storeu_si256((__m256i *)q, lo);
                _mm256_storeu_si256((__m256i *)(q + 32), hi);
                *qs128++ = 128 * sum_u8_32(lo);
                *qs128++ = 128 * sum_u8_32(hi);
            }
        }
        return;
    }
    case GGML_TYPE_Q6_K: {
        const block_q6_K *x = row;
        const __m256i c32 = _mm256_set1_epi8(32);
        for (int64_t i = 0; i < k / QK_K; i++) {
            float d = h2f(x[i].d);
            KERN_UNROLL(4)
            for (int n = 0; n < 2; n++) {
                const uint8_t *ql = x[i].ql + 64 * n, *qh = x[i].qh + 32 * n;
                __m256i l0 = _mm256_loadu_si256((const __m256i *)ql);
                __m256i l1 = _mm256_loadu_si256((const __m256i *)(ql + 32));
                __m256i h = _mm256_loadu_si256((const __m256i *)qh);
                __m256i u[4];
                kern_q6k_unpack(l0, l1, h, u);
                for (int j = 0; j < 4; j++, q += 32)
                    _mm256_storeu_si256((__m256i *)q, _mm256_sub_epi8(u[j], c32));
                /*
                 * The 8 half-block sums at once: each SAD gives 4 qwords (two per
                 * half); two rounds of hadd leave the first halves of u[0..3] in
                 * the low lane and the second halves in the high one.
                 */
                __m256i z = _mm256_setzero_si256();
                __m256i h01 = _mm256_hadd_epi32(_mm256_sad_epu8(u[0], z), _mm256_sad_epu8(u[1], z));
                __m256i h23 = _mm256_hadd_epi32(_mm256_sad_epu8(u[2], z), _mm256_sad_epu8(u[3], z));
                __m256i hs = _mm256_permutevar8x32_epi32(_mm256_hadd_epi32(h01, h23),
                                                         _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
                _mm256_storeu_si256(
                    (__m256i *)qs128,
                    _mm256_slli_epi32(_mm256_sub_epi32(hs, _mm256_set1_epi32(32 * 16)), 7));
                qs128 += 8;
                __m256 sc8 = _mm256_cvtepi32_ps(
                    _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(x[i].scales + 8 * n))));
                _mm256_storeu_ps(s, _mm256_mul_ps(sc8, _mm256_set1_ps(d)));
                _mm256_storeu_ps(m, _mm256_setzero_ps());
                s += 8;
                m += 8;
            }
        }
        return;
    }
    case GGML_TYPE_Q2_K:
        for (int64_t i = 0; i < k / QK_K; i++, q += QK_K, s += 16, m += 16, qs128 += 16)
            kern_unpack_q2k((const block_q2_K *)row + i, q, s, m, qs128);
        return;
    case GGML_TYPE_Q3_K:
        for (int64_t i = 0; i < k / QK_K; i++, q += QK_K, s += 16, m += 16, qs128 += 16)
            kern_unpack_q3k((const block_q3_K *)row + i, q, s, m, qs128);
        return;
    default:
        kern__pack_row(t, row, k, q, s, m, qs128);
    }
}

/*
 * Packed row . unsigned activations (KERN_ACT_U8): vpdpbusd(a + 128, q) per
 * block, minus the row's 128 * sum(q); scales applied per lane group.
 */
static float avx512_dot_packed(const struct kern__panel *p, const struct kern__act *a, int64_t b)
{
    const uint8_t *au = (const uint8_t *)a->qs + b * a->k;
    const float *ad = a->d + b * a->nb32;
    __m512 acc = _mm512_setzero_ps();
    __m256 corr = _mm256_setzero_ps(), accm = _mm256_setzero_ps();
    int64_t j = 0, nblk = p->nblk;
    if (p->bs == 32) {
        const float *ads = a->ds + b * a->nb32;
        const __m512i idx[4] = {
            _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1),
            _mm512_setr_epi32(2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3),
            _mm512_setr_epi32(4, 4, 4, 4, 4, 4, 4, 4, 5, 5, 5, 5, 5, 5, 5, 5),
            _mm512_setr_epi32(6, 6, 6, 6, 6, 6, 6, 6, 7, 7, 7, 7, 7, 7, 7, 7),
        };
        for (; j + 8 <= nblk; j += 8) {
            __m256 s8 = _mm256_mul_ps(_mm256_loadu_ps(p->s + j), _mm256_loadu_ps(ad + j));
            corr = _mm256_fmadd_ps(
                s8, _mm256_cvtepi32_ps(_mm256_loadu_si256((const __m256i *)(p->qs128 + j))), corr);
            accm = _mm256_fmadd_ps(_mm256_loadu_ps(p->m + j), _mm256_loadu_ps(ads + j), accm);
            __m512 s16 = _mm512_castps256_ps512(s8);
            KERN_UNROLL(4)
            for (int h = 0; h < 4; h++) {
                __m512i w = _mm512_loadu_si512(p->q + (j + 2 * h) * 32);
                __m512i av = _mm512_loadu_si512(au + (j + 2 * h) * 32);
                __m512i si = _mm512_dpbusd_epi32(_mm512_setzero_si512(), av, w);
                acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(si), _mm512_permutexvar_ps(idx[h], s16),
                                      acc);
            }
        }
        float sum = _mm512_reduce_add_ps(acc) - hsum256(corr) + hsum256(accm);
        for (; j < nblk; j++) {
            __m256i si = _mm256_dpbusd_epi32(_mm256_setzero_si256(),
                                             _mm256_loadu_si256((const __m256i *)(au + j * 32)),
                                             _mm256_loadu_si256((const __m256i *)(p->q + j * 32)));
            /* not a scalar loop: gcc 12 -O2 mis-vectorizes (u8 - 128) * s8 sums */
            int32_t isum = hsum256_epi32(si) - p->qs128[j];
            sum += p->s[j] * ad[j] * (float)isum + p->m[j] * ads[j];
        }
        return sum;
    }
    /* bs == 16: nblk is a multiple of 16 (K-quants) */
    const float *ads = a->ds16 + b * 2 * a->nb32;
    const __m256i dup = _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3);
    const __m512i idx[2] = {
        _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3),
        _mm512_setr_epi32(4, 4, 4, 4, 5, 5, 5, 5, 6, 6, 6, 6, 7, 7, 7, 7),
    };
    for (; j + 8 <= nblk; j += 8) {
        __m256 da = _mm256_permutexvar_ps(dup, _mm256_castps128_ps256(_mm_loadu_ps(ad + j / 2)));
        __m256 s8 = _mm256_mul_ps(_mm256_loadu_ps(p->s + j), da);
        corr = _mm256_fmadd_ps(
            s8, _mm256_cvtepi32_ps(_mm256_loadu_si256((const __m256i *)(p->qs128 + j))), corr);
        accm = _mm256_fmadd_ps(_mm256_loadu_ps(p->m + j), _mm256_loadu_ps(ads + j), accm);
        __m512 s16 = _mm512_castps256_ps512(s8);
        KERN_UNROLL(4)
        for (int h = 0; h < 2; h++) {
            __m512i w = _mm512_loadu_si512(p->q + (j + 4 * h) * 16);
            __m512i av = _mm512_loadu_si512(au + (j + 4 * h) * 16);
            __m512i si = _mm512_dpbusd_epi32(_mm512_setzero_si512(), av, w);
            acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(si), _mm512_permutexvar_ps(idx[h], s16), acc);
        }
    }
    return _mm512_reduce_add_ps(acc) - hsum256(corr) + hsum256(accm);
}

/*
 * Panel of packed rows times all interleaved activation groups. The register
 * tile is 4 weight rows x NG groups of 8 batch rows: each broadcast 4-byte
 * piece of a weight row feeds NG vpdpbusd, each activation load feeds 4.
 */
#define PRMAX 8
static inline __attribute__((always_inline)) void
panel_tile(const struct kern__panel *p, const int rows[PRMAX], const uint8_t *A, int64_t gstride,
           const float *d8, const float *ds8, const float *ds16_8, int64_t mstride, int ng, int bs,
           int pr, float out[2][PRMAX][8])
{
    const int64_t k = p->k, nblk = p->nblk;
    const int8_t *q[PRMAX];
    const float *sp[PRMAX], *mp[PRMAX];
    const int32_t *cp[PRMAX];
    __m256 accf[2][PRMAX];
    KERN_UNROLL(8)
    for (int i = 0; i < pr; i++) {
        q[i] = p->q + (size_t)rows[i] * (size_t)k;
        sp[i] = p->s + rows[i] * nblk;
        mp[i] = p->m + rows[i] * nblk;
        cp[i] = p->qs128 + rows[i] * nblk;
        accf[0][i] = _mm256_setzero_ps();
        accf[1][i] = _mm256_setzero_ps();
    }
    for (int64_t blk = 0; blk < nblk; blk++) {
        __m256i acc[2][PRMAX];
        KERN_UNROLL(8)
        for (int i = 0; i < pr; i++) {
            acc[0][i] = _mm256_set1_epi32(-cp[i][blk]);
            acc[1][i] = acc[0][i];
        }
        const uint8_t *ab = A + blk * bs * KERN_IL;
        const int64_t off = blk * bs;
        KERN_UNROLL(8)
        for (int j = 0; j < bs / 4; j++) {
            __m256i av0 = _mm256_load_si256((const __m256i *)(ab + 32 * j));
            __m256i av1 =
                ng > 1 ? _mm256_load_si256((const __m256i *)(ab + gstride + 32 * j)) : av0;
            KERN_UNROLL(8)
            for (int i = 0; i < pr; i++) {
                int32_t wv;
                memcpy(&wv, q[i] + off + 4 * j, 4);
                __m256i wb = _mm256_set1_epi32(wv);
                acc[0][i] = _mm256_dpbusd_epi32(acc[0][i], av0, wb);
                if (ng > 1)
                    acc[1][i] = _mm256_dpbusd_epi32(acc[1][i], av1, wb);
            }
        }
        const int64_t di = (blk * bs / 32) * KERN_IL;
        KERN_UNROLL(2)
        for (int g = 0; g < ng; g++) {
            __m256 da = _mm256_loadu_ps(d8 + g * mstride + di);
            __m256 dsv = _mm256_setzero_ps();
            if (p->has_min)
                dsv = bs == 32 ? _mm256_loadu_ps(ds8 + g * mstride + blk * KERN_IL)
                               : _mm256_loadu_ps(ds16_8 + 2 * g * mstride + blk * KERN_IL);
            KERN_UNROLL(8)
            for (int i = 0; i < pr; i++) {
                accf[g][i] =
                    _mm256_fmadd_ps(_mm256_cvtepi32_ps(acc[g][i]),
                                    _mm256_mul_ps(da, _mm256_set1_ps(sp[i][blk])), accf[g][i]);
                if (p->has_min)
                    accf[g][i] = _mm256_fmadd_ps(dsv, _mm256_set1_ps(mp[i][blk]), accf[g][i]);
            }
        }
    }
    KERN_UNROLL(2)
    for (int g = 0; g < ng; g++) {
        KERN_UNROLL(8)
        for (int i = 0; i < pr; i++)
            _mm256_storeu_ps(out[g][i], accf[g][i]);
    }
}

#define PANEL_TILE_FN(BS, NG, NR)                                                                  \
    static void panel_tile_##BS##_##NG(const struct kern__panel *p, const int rows[PRMAX],         \
                                       const uint8_t *A, int64_t gs, const float *d8,              \
                                       const float *ds8, const float *ds16_8, int64_t ms,          \
                                       float out[2][PRMAX][8])                                     \
    {                                                                                              \
        panel_tile(p, rows, A, gs, d8, ds8, ds16_8, ms, NG, BS, NR, out);                          \
    }
/* one group: 8 rows per tile (each activation load feeds 8); two groups: 4 rows */
PANEL_TILE_FN(32, 1, 8)
PANEL_TILE_FN(32, 2, 4)
PANEL_TILE_FN(16, 1, 8)
PANEL_TILE_FN(16, 2, 4)

static void avx512_panel_gemm(const struct kern__panel *p, const struct kern__act *a, float *y,
                              int64_t ldy)
{
    int64_t k = a->k, nb = a->nb32;
    int64_t G = (a->B + KERN_IL - 1) / KERN_IL;
    float out[2][PRMAX][8];
    for (int64_t g = 0; g < G; g += 2) {
        int ng = G - g >= 2 ? 2 : 1;
        const uint8_t *A = (const uint8_t *)a->qs + g * KERN_IL * k;
        const float *d8 = a->d + g * nb * KERN_IL, *ds8 = a->ds + g * nb * KERN_IL;
        const float *ds16_8 = a->ds16 + g * 2 * nb * KERN_IL;
        const int pr = ng == 2 ? 4 : 8;
        for (int r0 = 0; r0 < p->nr; r0 += pr) {
            int nr = p->nr - r0 < pr ? p->nr - r0 : pr;
            int rows[PRMAX];
            for (int i = 0; i < PRMAX; i++)
                rows[i] = r0 + (i < nr ? i : 0);
            if (p->bs == 32)
                (ng == 2 ? panel_tile_32_2 : panel_tile_32_1)(p, rows, A, KERN_IL * k, d8, ds8,
                                                              ds16_8, nb * KERN_IL, out);
            else
                (ng == 2 ? panel_tile_16_2 : panel_tile_16_1)(p, rows, A, KERN_IL * k, d8, ds8,
                                                              ds16_8, nb * KERN_IL, out);
            store_tile8(out, ng, nr, g, a->B, y, ldy, r0);
        }
    }
}

void kern__init_avx512_gemm(struct kern__ops *o)
{
    o->dot_packed = avx512_dot_packed;
    o->packed_layout = KERN_ACT_U8;
    o->pack_row = avx512_pack_row;
    o->panel_gemm = avx512_panel_gemm;
    kern__init_avx512_direct(o);
}

#else

void kern__init_avx512_gemm(struct kern__ops *o)
{
    (void)o;
}

#endif
