/*
 * model.c - llama-family transformer: loading hyperparameters and weights
 * from GGUF, and the batched forward pass (see model.h).
 *
 * One forward pass handles B tokens from any number of sequences: every
 * weight matrix is read once for all B rows (kern_matmul), then attention is
 * computed per token against its own sequence's KV cache. Not for:
 * tokenization, sampling, scheduling.
 */
#include "engine/model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "engine/fp16.h"
#include "engine/gguf.h"
#include "engine/kernels.h"
#include "engine/kvcache.h"
#include "engine/model_attn.h"
#include "engine/model_impl.h"

/* Most tokens of one sequence whose attention is computed together. */
#define ATTN_CHUNK 16

/* Consecutive batch tokens [i0, i0 + n) of one sequence (so consecutive positions). */
struct attn_chunk {
    uint32_t i0, n;
};

/* ---- context --------------------------------------------------------------- */

struct model_ctx {
    const struct model *m;
    struct model_ctx_params p;
    uint32_t max_logits;
    struct tp_pool *tp;
    struct kern_ctx *kc;
    struct kv_cache *kv;
    /* scratch, rows of max_batch */
    float *x;        /* (B, n_embd) residual stream */
    float *xb;       /* (B, n_embd) normed input */
    float *q;        /* (B, n_head * head_dim) */
    float *k;        /* (B, kv_dim) */
    float *v;        /* (B, kv_dim) */
    float *att;      /* (B, n_head * head_dim) attention output */
    float *hb;       /* (B, n_ff) */
    float *hb2;      /* (B, n_ff) */
    float *rope_cos; /* (B, n_rot / 2) */
    float *rope_sin; /* (B, n_rot / 2) */
    /* attention, per thread: queries of a chunk, their outputs, one K or V block as F32,
       and the attention weights (ATTN_CHUNK * group rows of n_ctx) */
    float *attn_q;             /* (n_threads, ATTN_CHUNK * group, head_dim) */
    float *attn_o;             /* (n_threads, ATTN_CHUNK * group, head_dim) */
    float *attn_kv;            /* (n_threads, KV_BLOCK_TOKENS, head_dim) */
    float *scores;             /* (n_threads, ATTN_CHUNK * group, n_ctx) */
    struct attn_chunk *chunks; /* (max_batch) runs of one sequence's batch tokens */
    uint32_t n_chunks;
    const struct model_attn_ops *attn_ops;
    float *logits;                   /* (max_logits, n_vocab) */
    float *hidden;                   /* (max_logits, n_embd) */
    int32_t *logit_row;              /* (max_batch) row in logits or -1 */
    uint32_t *seq_next;              /* (max_seqs) expected next position during validation */
    uint32_t *seq_count;             /* (max_seqs) tokens of the sequence in the batch */
    uint32_t *seq_old;               /* (max_seqs) KV length before the batch */
    const struct model_batch *batch; /* during a forward pass */
    uint32_t last_n;                 /* tokens of the last successful forward (model_logits) */
    uint32_t il;                     /* layer being computed, for the attention workers */
};

int model_batch_init(struct model_batch *b, uint32_t cap)
{
    memset(b, 0, sizeof *b);
    if (cap == 0)
        return AS_EINVAL;
    b->t = calloc(cap, sizeof *b->t);
    if (!b->t)
        return AS_ENOMEM;
    b->cap = cap;
    return 0;
}

void model_batch_free(struct model_batch *b)
{
    if (!b)
        return;
    free(b->t);
    memset(b, 0, sizeof *b);
}

void model_batch_clear(struct model_batch *b)
{
    b->n = 0;
}

int model_batch_add(struct model_batch *b, int32_t token, int32_t seq, uint32_t pos,
                    int want_logits)
{
    if (b->n >= b->cap)
        return AS_ERANGE;
    b->t[b->n++] = (struct model_batch_token){token, seq, pos, want_logits ? 1 : 0};
    return 0;
}

struct model_ctx *model_ctx_new(const struct model *m, const struct model_ctx_params *pp, char *err,
                                size_t errlen)
{
    struct model_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    const struct model_hparams *hp = &m->hp;
    struct model_ctx_params p = pp ? *pp : (struct model_ctx_params){0};
    if (p.n_threads == 0)
        p.n_threads = 1;
    if (p.max_batch == 0)
        p.max_batch = 512;
    if (p.max_seqs == 0)
        p.max_seqs = 1;
    if (p.n_ctx == 0 || p.n_ctx > m->n_ctx)
        p.n_ctx = m->n_ctx;
    if (p.max_logits == 0)
        p.max_logits = p.max_seqs < p.max_batch ? p.max_seqs : p.max_batch;
    if (p.max_logits > p.max_batch)
        p.max_logits = p.max_batch;
    if (p.n_threads > TP_MAX_THREADS || p.max_batch > (1u << 16) || p.max_seqs > 65536) {
        snprintf(err, errlen, "model context: parameters out of range");
        goto fail;
    }
    ctx->m = m;
    ctx->p = p;
    ctx->max_logits = p.max_logits;

    struct kv_cache_config kc = {
        .n_layer = hp->n_layer,
        .kv_dim = hp->n_head_kv * hp->head_dim,
        .type = p.kv_f32 ? GGML_TYPE_F32 : GGML_TYPE_F16,
        .budget_bytes = p.kv_budget_bytes,
        .budget_tokens = p.kv_budget_tokens,
        .max_seqs = p.max_seqs,
        .max_seq_tokens = p.n_ctx,
    };
    if (!kc.budget_bytes && !kc.budget_tokens) {
        /* every sequence can hold a full context: whole blocks per sequence */
        uint64_t per_seq = ((uint64_t)p.n_ctx + KV_BLOCK_TOKENS - 1) / KV_BLOCK_TOKENS;
        uint64_t t = per_seq * KV_BLOCK_TOKENS * p.max_seqs;
        kc.budget_tokens = t > (1u << 30) ? (1u << 30) : (uint32_t)t;
    }
    ctx->kv = kv_cache_new(&kc, err, errlen);
    if (!ctx->kv)
        goto fail;

    ctx->tp = p.n_threads > 1 ? tp_new((int)p.n_threads) : NULL;
    if (p.n_threads > 1 && !ctx->tp) {
        snprintf(err, errlen, "could not start %u threads", p.n_threads);
        goto fail;
    }
    ctx->kc = kern_ctx_new(ctx->tp);
    uint32_t kmax = hp->n_embd > hp->n_ff ? hp->n_embd : hp->n_ff;
    if (hp->n_head * hp->head_dim > kmax)
        kmax = hp->n_head * hp->head_dim;
    if (!ctx->kc || kern_ctx_reserve(ctx->kc, p.max_batch, kmax)) {
        snprintf(err, errlen, "out of memory (kernel scratch)");
        goto fail;
    }

    size_t B = p.max_batch, qd = (size_t)hp->n_head * hp->head_dim,
           kvd = (size_t)hp->n_head_kv * hp->head_dim, nth = p.n_threads;
    ctx->x = malloc(B * hp->n_embd * sizeof(float));
    ctx->xb = malloc(B * hp->n_embd * sizeof(float));
    ctx->q = malloc(B * qd * sizeof(float));
    ctx->k = malloc(B * kvd * sizeof(float));
    ctx->v = malloc(B * kvd * sizeof(float));
    ctx->att = malloc(B * qd * sizeof(float));
    ctx->hb = malloc(B * hp->n_ff * sizeof(float));
    ctx->hb2 = malloc(B * hp->n_ff * sizeof(float));
    ctx->rope_cos = malloc(B * (hp->n_rot / 2 + 1) * sizeof(float));
    ctx->rope_sin = malloc(B * (hp->n_rot / 2 + 1) * sizeof(float));
    size_t nq = (size_t)ATTN_CHUNK * (hp->n_head / hp->n_head_kv);
    ctx->attn_q = malloc(nth * nq * hp->head_dim * sizeof(float));
    ctx->attn_o = malloc(nth * nq * hp->head_dim * sizeof(float));
    ctx->attn_kv = malloc(nth * KV_BLOCK_TOKENS * hp->head_dim * sizeof(float));
    ctx->scores = malloc(nth * nq * p.n_ctx * sizeof(float));
    ctx->chunks = malloc(B * sizeof *ctx->chunks);
    ctx->attn_ops = model__attn_ops(hp->head_dim);
    ctx->logits = malloc((size_t)p.max_logits * hp->n_vocab * sizeof(float));
    ctx->hidden = malloc((size_t)p.max_logits * hp->n_embd * sizeof(float));
    ctx->logit_row = malloc(B * sizeof(int32_t));
    ctx->seq_next = malloc(p.max_seqs * sizeof(uint32_t));
    ctx->seq_count = calloc(p.max_seqs, sizeof(uint32_t));
    ctx->seq_old = malloc(p.max_seqs * sizeof(uint32_t));
    if (!ctx->x || !ctx->xb || !ctx->q || !ctx->k || !ctx->v || !ctx->att || !ctx->hb ||
        !ctx->hb2 || !ctx->rope_cos || !ctx->rope_sin || !ctx->scores || !ctx->attn_q ||
        !ctx->attn_o || !ctx->attn_kv || !ctx->chunks || !ctx->logits || !ctx->hidden ||
        !ctx->logit_row || !ctx->seq_next || !ctx->seq_count || !ctx->seq_old) {
        snprintf(err, errlen, "out of memory (scratch for a batch of %u)", p.max_batch);
        goto fail;
    }
    return ctx;
fail:
    model_ctx_free(ctx);
    return NULL;
}

void model_ctx_run(struct model_ctx *ctx, void (*fn)(void *arg, int ith, int nth), void *arg)
{
    tp_run(ctx->tp, fn, arg);
}

void model_ctx_free(struct model_ctx *ctx)
{
    if (!ctx)
        return;
    kern_ctx_free(ctx->kc);
    tp_free(ctx->tp);
    kv_cache_free(ctx->kv);
    free(ctx->x);
    free(ctx->xb);
    free(ctx->q);
    free(ctx->k);
    free(ctx->v);
    free(ctx->att);
    free(ctx->hb);
    free(ctx->hb2);
    free(ctx->rope_cos);
    free(ctx->rope_sin);
    free(ctx->scores);
    free(ctx->attn_q);
    free(ctx->attn_o);
    free(ctx->attn_kv);
    free(ctx->chunks);
    free(ctx->logits);
    free(ctx->hidden);
    free(ctx->logit_row);
    free(ctx->seq_next);
    free(ctx->seq_count);
    free(ctx->seq_old);
    free(ctx);
}

struct kv_cache *model_ctx_kv(struct model_ctx *ctx)
{
    return ctx->kv;
}

const struct model *model_ctx_model(const struct model_ctx *ctx)
{
    return ctx->m;
}

/* ---- forward ----------------------------------------------------------------- */

static int matmul(struct model_ctx *ctx, const struct model_mat *w, const float *x, uint32_t B,
                  float *y)
{
    if (w->packed)
        return kern_matmul_packed(ctx->kc, (enum ggml_type)w->type, w->data, w->n_out, w->n_in, x,
                                  B, y);
    return kern_matmul(ctx->kc, (enum ggml_type)w->type, w->data, w->n_out, w->n_in, x, B, y);
}

static void add_bias(float *y, const float *bias, uint32_t B, uint32_t n)
{
    if (!bias)
        return;
    for (uint32_t b = 0; b < B; b++)
        kern_add(y + (size_t)b * n, bias, n);
}

/* cos/sin of theta_i = pos * freq_i for each batch token */
static void rope_tables(struct model_ctx *ctx, const struct model_batch *b)
{
    const struct model *m = ctx->m;
    uint32_t half = m->hp.n_rot / 2;
    for (uint32_t i = 0; i < b->n; i++) {
        float *c = ctx->rope_cos + (size_t)i * half, *s = ctx->rope_sin + (size_t)i * half;
        for (uint32_t j = 0; j < half; j++) {
            double theta = (double)b->t[i].pos * m->rope_freq[j];
            c[j] = (float)cos(theta);
            s[j] = (float)sin(theta);
        }
    }
}

/* Copies nt cache rows (stride row_bytes, F16 or F32) of hd elements to dst as F32. */
static void rows_to_f32(float *dst, const uint8_t *src, uint32_t nt, size_t row_bytes, uint32_t hd,
                        int f16)
{
    for (uint32_t r = 0; r < nt; r++) {
        if (f16)
            kern_f16_to_f32(dst + (size_t)r * hd, (const void *)(src + r * row_bytes), hd);
        else
            memcpy(dst + (size_t)r * hd, src + r * row_bytes, hd * sizeof(float));
    }
}

/* Splits the batch into runs of at most ATTN_CHUNK tokens of one sequence. */
static void attn_chunks(struct model_ctx *ctx, const struct model_batch *b)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < b->n; i++) {
        struct attn_chunk *c = n ? &ctx->chunks[n - 1] : NULL;
        if (c && b->t[c->i0].seq == b->t[i].seq && c->i0 + c->n == i && c->n < ATTN_CHUNK)
            c->n++;
        else
            ctx->chunks[n++] = (struct attn_chunk){i, 1};
    }
    ctx->n_chunks = n;
}

/*
 * Attention for the (chunk, KV head) pairs of this thread. All query heads of
 * a KV head (GQA) and all tokens of a chunk go together, so each cached K/V
 * block is converted to F32 once and multiplied with every query at once.
 */
static void attention_worker(void *arg, int ith, int nth)
{
    struct model_ctx *ctx = arg;
    const struct model_hparams *hp = &ctx->m->hp;
    const struct model_batch *b = ctx->batch;
    const struct model_attn_ops *ops = ctx->attn_ops;
    uint32_t hd = hp->head_dim, kvd = hp->n_head_kv * hd, group = hp->n_head / hp->n_head_kv;
    uint32_t qd = hp->n_head * hd, n_ctx = ctx->p.n_ctx;
    int f16 = !ctx->p.kv_f32;
    size_t esz = f16 ? 2 : 4, row_bytes = (size_t)kvd * esz, nq_max = (size_t)ATTN_CHUNK * group;
    float scale = 1.0f / sqrtf((float)hd);
    float *S = ctx->scores + (size_t)ith * nq_max * n_ctx;
    float *Q = ctx->attn_q + (size_t)ith * nq_max * hd,
          *O = ctx->attn_o + (size_t)ith * nq_max * hd;
    float *KV = ctx->attn_kv + (size_t)ith * KV_BLOCK_TOKENS * hd;
    long long start, end;
    tp_split((long long)ctx->n_chunks * hp->n_head_kv, ith, nth, &start, &end);
    for (long long w = start; w < end; w++) {
        const struct attn_chunk *c = &ctx->chunks[w / hp->n_head_kv];
        uint32_t g = (uint32_t)(w % hp->n_head_kv), m = c->n, nq = m * group;
        uint32_t p0 = b->t[c->i0].pos, n_pos = p0 + m;
        const uint32_t *blocks = kv_seq_blocks(ctx->kv, b->t[c->i0].seq);
        size_t off = (size_t)g * hd * esz;
        for (uint32_t j = 0; j < m; j++) /* query row j * group + h */
            memcpy(Q + (size_t)j * group * hd,
                   ctx->q + (size_t)(c->i0 + j) * qd + (size_t)g * group * hd,
                   (size_t)group * hd * sizeof(float));
        for (uint32_t t0 = 0; t0 < n_pos; t0 += KV_BLOCK_TOKENS) {
            uint32_t nt = n_pos - t0 < KV_BLOCK_TOKENS ? n_pos - t0 : KV_BLOCK_TOKENS;
            const uint8_t *kb = kv_block_k(ctx->kv, ctx->il, blocks[t0 / KV_BLOCK_TOKENS]);
            rows_to_f32(KV, kb + off, nt, row_bytes, hd, f16);
            ops->scores(Q, nq, KV, nt, hd, scale, S + t0, n_ctx);
        }
        /* causal: query j (position p0 + j) sees positions <= p0 + j */
        for (uint32_t r = 0; r < nq; r++) {
            uint32_t see = p0 + r / group + 1;
            float *row = S + (size_t)r * n_ctx;
            kern_softmax(row, see);
            memset(row + see, 0, (size_t)(n_pos - see) * sizeof(float));
        }
        memset(O, 0, (size_t)nq * hd * sizeof(float));
        for (uint32_t t0 = 0; t0 < n_pos; t0 += KV_BLOCK_TOKENS) {
            uint32_t nt = n_pos - t0 < KV_BLOCK_TOKENS ? n_pos - t0 : KV_BLOCK_TOKENS;
            const uint8_t *vb = kv_block_v(ctx->kv, ctx->il, blocks[t0 / KV_BLOCK_TOKENS]);
            rows_to_f32(KV, vb + off, nt, row_bytes, hd, f16);
            ops->av(S + t0, n_ctx, nq, KV, nt, hd, O);
        }
        for (uint32_t j = 0; j < m; j++)
            memcpy(ctx->att + (size_t)(c->i0 + j) * qd + (size_t)g * group * hd,
                   O + (size_t)j * group * hd, (size_t)group * hd * sizeof(float));
    }
}

static void store_kv(struct model_ctx *ctx, const struct model_batch *b, uint32_t il)
{
    uint32_t kvd = ctx->m->hp.n_head_kv * ctx->m->hp.head_dim;
    for (uint32_t i = 0; i < b->n; i++) {
        void *kr = kv_k_row(ctx->kv, il, b->t[i].seq, b->t[i].pos);
        void *vr = kv_v_row(ctx->kv, il, b->t[i].seq, b->t[i].pos);
        const float *ks = ctx->k + (size_t)i * kvd, *vs = ctx->v + (size_t)i * kvd;
        if (ctx->p.kv_f32) {
            memcpy(kr, ks, kvd * sizeof(float));
            memcpy(vr, vs, kvd * sizeof(float));
        } else {
            kern_f32_to_f16(kr, ks, kvd);
            kern_f32_to_f16(vr, vs, kvd);
        }
    }
}

/* Checks the batch and grows the sequences' KV lengths; all or nothing. */
static int batch_begin(struct model_ctx *ctx, const struct model_batch *b, uint32_t *n_logits)
{
    const struct model_hparams *hp = &ctx->m->hp;
    if (!b || b->n == 0 || b->n > ctx->p.max_batch)
        return AS_EINVAL;
    uint32_t nl = 0;
    for (uint32_t i = 0; i < b->n; i++) {
        const struct model_batch_token *t = &b->t[i];
        if (t->token < 0 || (uint32_t)t->token >= hp->n_vocab || !kv_seq_active(ctx->kv, t->seq))
            return AS_EINVAL;
        ctx->seq_count[t->seq] = 0;
        ctx->seq_next[t->seq] = kv_seq_len(ctx->kv, t->seq);
        ctx->seq_old[t->seq] = ctx->seq_next[t->seq];
        if (t->want_logits)
            nl++;
    }
    if (nl > ctx->max_logits)
        return AS_EINVAL;
    for (uint32_t i = 0; i < b->n; i++) {
        const struct model_batch_token *t = &b->t[i];
        if (t->pos != ctx->seq_next[t->seq])
            return AS_EINVAL;
        ctx->seq_next[t->seq]++;
        ctx->seq_count[t->seq]++;
    }
    /* grow each sequence once; undo on failure */
    int rc = 0;
    uint32_t i;
    for (i = 0; i < b->n; i++) {
        int s = b->t[i].seq;
        if (ctx->seq_count[s] == 0)
            continue; /* already grown */
        rc = kv_seq_append(ctx->kv, s, ctx->seq_count[s]);
        if (rc)
            break;
        ctx->seq_count[s] = 0;
    }
    if (rc) {
        for (uint32_t j = 0; j < i; j++)
            kv_seq_truncate(ctx->kv, b->t[j].seq, ctx->seq_old[b->t[j].seq]);
        return rc;
    }
    *n_logits = nl;
    return 0;
}

static void embed_tokens(struct model_ctx *ctx, const struct model_batch *b)
{
    const struct model *m = ctx->m;
    uint32_t d = m->hp.n_embd;
    for (uint32_t i = 0; i < b->n; i++)
        model__embed_row(m, b->t[i].token, ctx->x + (size_t)i * d);
}

static int forward_layers(struct model_ctx *ctx, const struct model_batch *b)
{
    const struct model *m = ctx->m;
    const struct model_hparams *hp = &m->hp;
    uint32_t B = b->n, d = hp->n_embd, qd = hp->n_head * hp->head_dim,
             kvd = hp->n_head_kv * hp->head_dim;
    int rc = 0;
    rope_tables(ctx, b);
    attn_chunks(ctx, b);
    ctx->batch = b;
    double attn_macs = 0; /* q.k and p.v work of one layer, an upper bound */
    for (uint32_t i = 0; i < B; i++)
        attn_macs += 2.0 * ((double)b->t[i].pos + 1) * qd;
    for (uint32_t il = 0; il < hp->n_layer; il++) {
        const struct model_layer *L = &m->layers[il];
        for (uint32_t i = 0; i < B; i++)
            kern_rmsnorm(ctx->xb + (size_t)i * d, ctx->x + (size_t)i * d, L->attn_norm, d,
                         hp->rms_eps);
        if ((rc = matmul(ctx, &L->wq, ctx->xb, B, ctx->q)) ||
            (rc = matmul(ctx, &L->wk, ctx->xb, B, ctx->k)) ||
            (rc = matmul(ctx, &L->wv, ctx->xb, B, ctx->v)))
            return rc;
        add_bias(ctx->q, L->bq, B, qd);
        add_bias(ctx->k, L->bk, B, kvd);
        add_bias(ctx->v, L->bv, B, kvd);
        uint32_t half = hp->n_rot / 2;
        int neox = hp->rope_type == MODEL_ROPE_NEOX;
        for (uint32_t i = 0; i < B; i++) {
            const float *c = ctx->rope_cos + (size_t)i * half,
                        *s = ctx->rope_sin + (size_t)i * half;
            kern_rope(ctx->q + (size_t)i * qd, (int)hp->n_head, (int)hp->head_dim, (int)hp->n_rot,
                      c, s, neox);
            kern_rope(ctx->k + (size_t)i * kvd, (int)hp->n_head_kv, (int)hp->head_dim,
                      (int)hp->n_rot, c, s, neox);
        }
        store_kv(ctx, b, il);
        ctx->il = il;
        if (attn_macs < (1 << 18)) /* short contexts: the pool costs more than it saves */
            attention_worker(ctx, 0, 1);
        else
            tp_run(ctx->tp, attention_worker, ctx);
        if ((rc = matmul(ctx, &L->wo, ctx->att, B, ctx->xb)))
            return rc;
        for (uint32_t i = 0; i < B; i++)
            kern_add(ctx->x + (size_t)i * d, ctx->xb + (size_t)i * d, d);

        for (uint32_t i = 0; i < B; i++)
            kern_rmsnorm(ctx->xb + (size_t)i * d, ctx->x + (size_t)i * d, L->ffn_norm, d,
                         hp->rms_eps);
        if ((rc = matmul(ctx, &L->w_gate, ctx->xb, B, ctx->hb)) ||
            (rc = matmul(ctx, &L->w_up, ctx->xb, B, ctx->hb2)))
            return rc;
        kern_swiglu(ctx->hb, ctx->hb, ctx->hb2, (int64_t)B * hp->n_ff);
        if ((rc = matmul(ctx, &L->w_down, ctx->hb, B, ctx->xb)))
            return rc;
        for (uint32_t i = 0; i < B; i++)
            kern_add(ctx->x + (size_t)i * d, ctx->xb + (size_t)i * d, d);
    }
    return 0;
}

int model_forward(struct model_ctx *ctx, const struct model_batch *b)
{
    const struct model *m = ctx->m;
    uint32_t d = m->hp.n_embd, n_logits = 0;
    ctx->last_n = 0;
    int rc = batch_begin(ctx, b, &n_logits);
    if (rc)
        return rc;
    embed_tokens(ctx, b);
    if ((rc = forward_layers(ctx, b)))
        goto fail;
    /* final norm and output projection for the tokens that asked */
    uint32_t r = 0;
    for (uint32_t i = 0; i < b->n; i++) {
        ctx->logit_row[i] = -1;
        if (!b->t[i].want_logits)
            continue;
        kern_rmsnorm(ctx->hidden + (size_t)r * d, ctx->x + (size_t)i * d, m->output_norm, d,
                     m->hp.rms_eps);
        ctx->logit_row[i] = (int32_t)r++;
    }
    if (n_logits && (rc = matmul(ctx, &m->output, ctx->hidden, n_logits, ctx->logits)))
        goto fail;
    ctx->batch = NULL;
    ctx->last_n = b->n;
    return 0;
fail:
    /* a kernel refused (unsupported type, out of scratch): undo the KV growth */
    for (uint32_t i = 0; i < b->n; i++)
        kv_seq_truncate(ctx->kv, b->t[i].seq, ctx->seq_old[b->t[i].seq]);
    ctx->batch = NULL;
    return rc;
}

const float *model_logits(const struct model_ctx *ctx, uint32_t i)
{
    if (i >= ctx->last_n || ctx->logit_row[i] < 0)
        return NULL;
    return ctx->logits + (size_t)ctx->logit_row[i] * ctx->m->hp.n_vocab;
}

const float *model_hidden(const struct model_ctx *ctx, uint32_t i)
{
    if (i >= ctx->last_n || ctx->logit_row[i] < 0)
        return NULL;
    return ctx->hidden + (size_t)ctx->logit_row[i] * ctx->m->hp.n_embd;
}

int model_embed(struct model_ctx *ctx, const int32_t *tokens, uint32_t n, float *out)
{
    const struct model *m = ctx->m;
    uint32_t d = m->hp.n_embd;
    struct model_batch b = {0};
    double *acc = NULL;
    int rc, seq;
    ctx->last_n = 0;
    if (n == 0 || !tokens || !out)
        return AS_EINVAL;
    if (n > ctx->p.n_ctx)
        return AS_ERANGE;
    if ((seq = kv_seq_alloc(ctx->kv)) < 0)
        return seq;
    if ((rc = model_batch_init(&b, ctx->p.max_batch)))
        goto out;
    if (!(acc = calloc(d, sizeof *acc))) {
        rc = AS_ENOMEM;
        goto out;
    }
    for (uint32_t done = 0; done < n;) {
        uint32_t chunk = n - done < ctx->p.max_batch ? n - done : ctx->p.max_batch, nl;
        model_batch_clear(&b);
        for (uint32_t i = 0; i < chunk; i++)
            model_batch_add(&b, tokens[done + i], seq, done + i, 0);
        if ((rc = batch_begin(ctx, &b, &nl)))
            goto out;
        embed_tokens(ctx, &b);
        if ((rc = forward_layers(ctx, &b)))
            goto out;
        for (uint32_t i = 0; i < chunk; i++) {
            float *h = ctx->xb; /* free once the layers are done */
            kern_rmsnorm(h, ctx->x + (size_t)i * d, m->output_norm, d, m->hp.rms_eps);
            for (uint32_t j = 0; j < d; j++)
                acc[j] += h[j];
        }
        done += chunk;
    }
    double ss = 0;
    for (uint32_t j = 0; j < d; j++)
        ss += (acc[j] / n) * (acc[j] / n);
    double inv = ss > 0 ? 1.0 / sqrt(ss) : 0;
    for (uint32_t j = 0; j < d; j++)
        out[j] = (float)(acc[j] / n * inv);
out:
    ctx->batch = NULL;
    free(acc);
    model_batch_free(&b);
    kv_seq_free(ctx->kv, seq);
    return rc;
}
