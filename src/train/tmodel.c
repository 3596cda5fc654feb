/*
 * tmodel.c - llama forward and backward passes for training (see tmodel.h).
 *
 * Layout conventions: activations are row-major (token, feature); a weight
 * W of shape (out, in) is applied as y = x W^T, which is one sgemm with W
 * transposed, and its gradient is dW += dy^T x. Everything is f32.
 */
#include "train/tmodel.h"

#include "core/err.h"
#include "engine/threadpool.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct layer_acts {
    float *x_in;  /* (N, C) residual stream entering the block */
    float *rstd1; /* (N) */
    float *xn1;   /* (N, C) */
    float *q;     /* (N, NH*hd) after rope */
    float *k;     /* (N, KV*hd) after rope */
    float *v;     /* (N, KV*hd) */
    float *att;   /* (N, NH, T) softmax probabilities, entries 0..pos */
    float *ao;    /* (N, NH*hd) attention output before wo */
    float *x_mid; /* (N, C) after the attention residual */
    float *rstd2; /* (N) */
    float *xn2;   /* (N, C) */
    float *g;     /* (N, F) gate pre-activation */
    float *u;     /* (N, F) up projection */
    float *h;     /* (N, F) silu(g) * u */
};

struct tmodel {
    struct tm_config c;
    int hd;         /* head dim */
    int max_tokens; /* capacity of the activation buffers */
    int n_threads;
    struct tp_pool *tp;
    size_t n_params;
    float *params, *grads;
    struct tm_params p, gp;
    struct tm_tensor *tensors;
    int n_tensors;
    /* activations */
    float *act_mem;
    struct layer_acts *la;
    float *x_final, *rstdf, *xnf, *logits; /* logits (N, V) holds probabilities after forward */
    float loss;
    int n_valid;
    /* backward scratch */
    float *dx, *dxn, *dq, *dk, *dv, *dao, *dg, *du, *dh, *dlogits;
    float *rope_cos, *rope_sin; /* (max_seq, hd/2) */
    float *att_scratch;         /* (max_seq, max_seq) softmax-backward scores */
    float *row_loss;            /* (N) cross-entropy per token */
};

size_t tm_param_count(const struct tm_config *c)
{
    if (c->dim <= 0 || c->n_head <= 0 || c->dim % c->n_head)
        return 0;
    size_t C = (size_t)c->dim, hd = C / (size_t)c->n_head, V = (size_t)c->vocab;
    size_t q = (size_t)c->n_head * hd, kv = (size_t)c->n_kv_head * hd, F = (size_t)c->ffn;
    size_t per_layer = C + q * C + 2 * kv * C + C * q + C + 2 * F * C + C * F;
    return V * C + (size_t)c->n_layer * per_layer + C + (c->tied ? 0 : V * C);
}

int tm_config_check(const struct tm_config *c, char *err, size_t errlen)
{
    const char *why = NULL;
    if (c->vocab < 2 || c->vocab > 1 << 20)
        why = "vocab must be in [2, 1048576]";
    else if (c->dim < 2 || c->dim > 16384)
        why = "dim must be in [2, 16384]";
    else if (c->n_layer < 1 || c->n_layer > 256)
        why = "n_layer must be in [1, 256]";
    else if (c->n_head < 1 || c->dim % c->n_head)
        why = "n_head must divide dim";
    else if ((c->dim / c->n_head) % 2)
        why = "head dim (dim / n_head) must be even for rope";
    else if (c->n_kv_head < 1 || c->n_head % c->n_kv_head)
        why = "n_kv_head must divide n_head";
    else if (c->ffn < 1 || c->ffn > 65536)
        why = "ffn must be in [1, 65536]";
    else if (c->max_seq < 1 || c->max_seq > 65536)
        why = "max_seq must be in [1, 65536]";
    else if (!(c->rope_theta > 0) || !(c->norm_eps > 0))
        why = "rope_theta and norm_eps must be positive";
    if (why) {
        snprintf(err, errlen, "model config: %s", why);
        return AS_EINVAL;
    }
    return 0;
}

/* Points p into flat storage following the layout of tm_param_count. */
static void bind_params(const struct tm_config *c, float *base, struct tm_params *p,
                        struct tm_layer *layers)
{
    size_t C = (size_t)c->dim, hd = C / (size_t)c->n_head, V = (size_t)c->vocab;
    size_t q = (size_t)c->n_head * hd, kv = (size_t)c->n_kv_head * hd, F = (size_t)c->ffn;
    float *at = base;
    p->tok_emb = at, at += V * C;
    p->layers = layers;
    for (int l = 0; l < c->n_layer; l++) {
        struct tm_layer *L = &layers[l];
        L->attn_norm = at, at += C;
        L->wq = at, at += q * C;
        L->wk = at, at += kv * C;
        L->wv = at, at += kv * C;
        L->wo = at, at += C * q;
        L->ffn_norm = at, at += C;
        L->wg = at, at += F * C;
        L->wu = at, at += F * C;
        L->wd = at, at += C * F;
    }
    p->out_norm = at, at += C;
    p->output = c->tied ? p->tok_emb : at;
}

static void add_tensor(struct tmodel *m, const char *name, const float *ptr, int rows, int cols)
{
    struct tm_tensor *t = &m->tensors[m->n_tensors++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->offset = (size_t)(ptr - m->params);
    t->rows = rows;
    t->cols = cols;
}

static void build_tensor_table(struct tmodel *m)
{
    const struct tm_config *c = &m->c;
    int C = c->dim, q = c->n_head * m->hd, kv = c->n_kv_head * m->hd, F = c->ffn;
    char name[48];
    add_tensor(m, "token_embd.weight", m->p.tok_emb, c->vocab, C);
    for (int l = 0; l < c->n_layer; l++) {
        const struct tm_layer *L = &m->p.layers[l];
        static const char *const names[] = {"attn_norm", "attn_q",      "attn_k",
                                            "attn_v",    "attn_output", "ffn_norm",
                                            "ffn_gate",  "ffn_up",      "ffn_down"};
        const float *ptrs[] = {L->attn_norm, L->wq, L->wk, L->wv, L->wo,
                               L->ffn_norm,  L->wg, L->wu, L->wd};
        const int rows[] = {1, q, kv, kv, C, 1, F, F, C};
        const int cols[] = {C, C, C, C, q, C, C, C, F};
        for (int i = 0; i < 9; i++) {
            snprintf(name, sizeof name, "blk.%d.%s.weight", l, names[i]);
            add_tensor(m, name, ptrs[i], rows[i], cols[i]);
        }
    }
    add_tensor(m, "output_norm.weight", m->p.out_norm, 1, C);
    if (!c->tied)
        add_tensor(m, "output.weight", m->p.output, c->vocab, C);
}

/* splitmix64: a small, seedable, portable generator for initialisation. */
static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static float rng_normal(uint64_t *s)
{
    double u1 = ((double)(rng_next(s) >> 11) + 1.0) / 9007199254740993.0;
    double u2 = (double)(rng_next(s) >> 11) / 9007199254740992.0;
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

static void init_params(struct tmodel *m, uint64_t seed)
{
    uint64_t s = seed;
    float out_scale = 0.02f / sqrtf(2.0f * (float)m->c.n_layer);
    for (int i = 0; i < m->n_tensors; i++) {
        const struct tm_tensor *t = &m->tensors[i];
        float *w = m->params + t->offset;
        size_t n = (size_t)t->rows * (size_t)t->cols;
        int is_norm = t->rows == 1;
        int is_out = strstr(t->name, "attn_output") || strstr(t->name, "ffn_down");
        for (size_t j = 0; j < n; j++)
            w[j] = is_norm ? 1.0f : rng_normal(&s) * (is_out ? out_scale : 0.02f);
    }
}

static float *carve(float **at, size_t n)
{
    float *p = *at;
    *at += n;
    return p;
}

struct tmodel *tm_new(const struct tm_config *c, int max_tokens, int n_threads, uint64_t seed,
                      char *err, size_t errlen)
{
    struct tmodel *m = NULL;
    if (tm_config_check(c, err, errlen))
        return NULL;
    if (max_tokens < 1 || max_tokens > (1 << 22)) {
        snprintf(err, errlen, "max_tokens must be in [1, 4194304]");
        return NULL;
    }
    m = calloc(1, sizeof *m);
    if (!m)
        goto oom;
    m->c = *c;
    m->hd = c->dim / c->n_head;
    m->max_tokens = max_tokens;
    m->n_threads = n_threads < 1 ? 1 : n_threads;
    m->n_params = tm_param_count(c);
    m->params = calloc(m->n_params, sizeof(float));
    m->grads = calloc(m->n_params, sizeof(float));
    struct tm_layer *pl = calloc((size_t)c->n_layer, sizeof *pl);
    struct tm_layer *gl = calloc((size_t)c->n_layer, sizeof *gl);
    m->tensors = calloc((size_t)c->n_layer * 9 + 3, sizeof *m->tensors);
    m->la = calloc((size_t)c->n_layer, sizeof *m->la);
    if (!m->params || !m->grads || !pl || !gl || !m->tensors || !m->la) {
        free(pl);
        free(gl);
        goto oom;
    }
    bind_params(c, m->params, &m->p, pl);
    bind_params(c, m->grads, &m->gp, gl);
    build_tensor_table(m);
    init_params(m, seed);

    size_t N = (size_t)max_tokens, C = (size_t)c->dim, hd = (size_t)m->hd;
    size_t Q = (size_t)c->n_head * hd, KV = (size_t)c->n_kv_head * hd, F = (size_t)c->ffn;
    size_t T = (size_t)c->max_seq, V = (size_t)c->vocab, NH = (size_t)c->n_head;
    size_t per_layer = N * (C + 1 + C + Q + 2 * KV + NH * T + Q + C + 1 + C + 3 * F);
    size_t rest = N * (C + 1 + C + V) /* final */ + N * (2 * C + Q + 2 * KV + Q + 3 * F + V) +
                  T * hd /* rope tables */ + T * T + N;
    size_t total = per_layer * (size_t)c->n_layer + rest;
    m->act_mem = malloc(total * sizeof(float));
    if (!m->act_mem)
        goto oom;
    float *at = m->act_mem;
    for (int l = 0; l < c->n_layer; l++) {
        struct layer_acts *a = &m->la[l];
        a->x_in = carve(&at, N * C);
        a->rstd1 = carve(&at, N);
        a->xn1 = carve(&at, N * C);
        a->q = carve(&at, N * Q);
        a->k = carve(&at, N * KV);
        a->v = carve(&at, N * KV);
        a->att = carve(&at, N * NH * T);
        a->ao = carve(&at, N * Q);
        a->x_mid = carve(&at, N * C);
        a->rstd2 = carve(&at, N);
        a->xn2 = carve(&at, N * C);
        a->g = carve(&at, N * F);
        a->u = carve(&at, N * F);
        a->h = carve(&at, N * F);
    }
    m->x_final = carve(&at, N * C);
    m->rstdf = carve(&at, N);
    m->xnf = carve(&at, N * C);
    m->logits = carve(&at, N * V);
    m->dx = carve(&at, N * C);
    m->dxn = carve(&at, N * C);
    m->dq = carve(&at, N * Q);
    m->dk = carve(&at, N * KV);
    m->dv = carve(&at, N * KV);
    m->dao = carve(&at, N * Q);
    m->dg = carve(&at, N * F);
    m->du = carve(&at, N * F);
    m->dh = carve(&at, N * F);
    m->dlogits = carve(&at, N * V);
    m->rope_cos = carve(&at, T * hd / 2);
    m->rope_sin = carve(&at, T * hd / 2);
    m->att_scratch = carve(&at, T * T);
    m->row_loss = carve(&at, N);
    for (size_t t = 0; t < T; t++) {
        for (size_t i = 0; i < hd / 2; i++) {
            double freq = pow((double)c->rope_theta, -2.0 * (double)i / (double)hd);
            double ang = (double)t * freq;
            m->rope_cos[t * hd / 2 + i] = (float)cos(ang);
            m->rope_sin[t * hd / 2 + i] = (float)sin(ang);
        }
    }
    if (m->n_threads > 1 && !(m->tp = tp_new(m->n_threads)))
        goto oom;
    openblas_set_num_threads(m->n_threads);
    return m;
oom:
    snprintf(err, errlen, "out of memory creating a model of %zu parameters", tm_param_count(c));
    tm_free(m);
    return NULL;
}

void tm_free(struct tmodel *m)
{
    if (!m)
        return;
    free(m->params);
    free(m->grads);
    free(m->p.layers);
    free(m->gp.layers);
    free(m->tensors);
    free(m->la);
    free(m->act_mem);
    tp_free(m->tp);
    free(m);
}

const struct tm_config *tm_get_config(const struct tmodel *m)
{
    return &m->c;
}

float *tm_params_flat(struct tmodel *m)
{
    return m->params;
}

float *tm_grads_flat(struct tmodel *m)
{
    return m->grads;
}

const struct tm_tensor *tm_tensors(const struct tmodel *m, int *n)
{
    *n = m->n_tensors;
    return m->tensors;
}

const float *tm_logits(const struct tmodel *m)
{
    return m->logits;
}

void tm_zero_grad(struct tmodel *m)
{
    memset(m->grads, 0, m->n_params * sizeof(float));
}

struct par_job {
    int n;
    void (*fn)(void *ctx, int i);
    void *ctx;
};

static void par_run(void *arg, int ith, int nth)
{
    struct par_job *j = arg;
    long long a, b;
    tp_split(j->n, ith, nth, &a, &b);
    for (long long i = a; i < b; i++)
        j->fn(j->ctx, (int)i);
}

void tm_parallel_for(struct tmodel *m, int n, void (*fn)(void *ctx, int i), void *ctx)
{
    struct par_job j = {n, fn, ctx};
    if (!m->tp || n < 2)
        par_run(&j, 0, 1);
    else
        tp_run(m->tp, par_run, &j);
}

/* ---- building blocks -------------------------------------------------------- */

/* y (N, out) = x (N, in) W^T, W (out, in). beta 0 overwrites, 1 accumulates. */
static void mm_xwt(const float *x, const float *W, float *y, int N, int in, int out, float beta)
{
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, out, in, 1.0f, x, in, W, in, beta, y,
                out);
}

/* dx (N, in) (+)= dy (N, out) W (out, in). */
static void mm_dyw(const float *dy, const float *W, float *dx, int N, int in, int out, float beta)
{
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, in, out, 1.0f, dy, out, W, in, beta,
                dx, in);
}

/* dW (out, in) += scale * dy^T (out, N) x (N, in). */
static void mm_dw(const float *dy, const float *x, float *dW, int N, int in, int out, float scale)
{
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out, in, N, scale, dy, out, x, in, 1.0f,
                dW, in);
}

/* RMSNorm over rows of C, fanned out over the model's threads (one task per row). */
struct norm_ctx {
    const float *x, *w, *dy;
    float *y, *rstd, *dx, *dw;
    int N, C, accumulate;
    float eps;
};

static void norm_fwd_row(void *vc, int n)
{
    const struct norm_ctx *c = vc;
    const float *xr = c->x + (size_t)n * c->C;
    float *yr = c->y + (size_t)n * c->C;
    double ss = 0;
    for (int i = 0; i < c->C; i++)
        ss += (double)xr[i] * xr[i];
    float r = 1.0f / sqrtf((float)(ss / c->C) + c->eps);
    c->rstd[n] = r;
    for (int i = 0; i < c->C; i++)
        yr[i] = xr[i] * r * c->w[i];
}

static void rmsnorm_fwd(struct tmodel *m, const float *x, const float *w, float *y, float *rstd,
                        int N, int C, float eps)
{
    struct norm_ctx c = {.x = x, .w = w, .y = y, .rstd = rstd, .N = N, .C = C, .eps = eps};
    tm_parallel_for(m, N, norm_fwd_row, &c);
}

static void norm_bwd_row(void *vc, int n)
{
    const struct norm_ctx *c = vc;
    const float *xr = c->x + (size_t)n * c->C, *dyr = c->dy + (size_t)n * c->C;
    float *dxr = c->dx + (size_t)n * c->C;
    float r = c->rstd[n];
    double dot = 0;
    for (int i = 0; i < c->C; i++)
        dot += (double)dyr[i] * c->w[i] * xr[i];
    float k = (float)(dot / c->C) * r * r * r;
    for (int i = 0; i < c->C; i++) {
        float d = dyr[i] * c->w[i] * r - xr[i] * k;
        dxr[i] = c->accumulate ? dxr[i] + d : d;
    }
}

/* Weight gradient of one channel, summed over tokens in a fixed order. */
static void norm_dw_col(void *vc, int i)
{
    const struct norm_ctx *c = vc;
    double s = 0;
    for (int n = 0; n < c->N; n++)
        s += (double)c->dy[(size_t)n * c->C + i] * c->x[(size_t)n * c->C + i] * c->rstd[n];
    c->dw[i] += (float)s;
}

/* dx (+)= d(rmsnorm)/dx . dy; dw += the weight gradient. */
static void rmsnorm_bwd(struct tmodel *m, const float *x, const float *w, const float *rstd,
                        const float *dy, float *dx, float *dw, int N, int C, int accumulate)
{
    struct norm_ctx c = {.x = x,
                         .w = w,
                         .dy = dy,
                         .rstd = (float *)rstd,
                         .dx = dx,
                         .dw = dw,
                         .N = N,
                         .C = C,
                         .accumulate = accumulate};
    tm_parallel_for(m, N, norm_bwd_row, &c);
    tm_parallel_for(m, C, norm_dw_col, &c);
}

/* Rotates adjacent pairs of every head of x (N, nh*hd) by +/- the position's angles. */
static void rope(const struct tmodel *m, float *x, const int32_t *pos, int N, int nh, float sign)
{
    int hd = m->hd, half = hd / 2;
    for (int n = 0; n < N; n++) {
        const float *cs = m->rope_cos + (size_t)pos[n] * half;
        const float *sn = m->rope_sin + (size_t)pos[n] * half;
        for (int h = 0; h < nh; h++) {
            float *v = x + ((size_t)n * nh + h) * hd;
            for (int i = 0; i < half; i++) {
                float a = v[2 * i], b = v[2 * i + 1], c = cs[i], s = sign * sn[i];
                v[2 * i] = a * c - b * s;
                v[2 * i + 1] = a * s + b * c;
            }
        }
    }
}

static float silu(float x)
{
    return x / (1.0f + expf(-x));
}

/*
 * Attention as matrix products per (sequence, head), so that OpenBLAS does the
 * work: S = Q K^T / sqrt(hd) over the whole sequence, a causal softmax row by
 * row (the upper triangle set to 0), then O = P V. Q/K/V/O are strided views
 * into the packed (token, head * hd) activations; P lives in att with a row
 * stride of n_head * max_seq.
 */
static void att_forward(struct tmodel *m, struct layer_acts *a, const struct tm_batch *b)
{
    int hd = m->hd, NH = m->c.n_head, KVH = m->c.n_kv_head, T = m->c.max_seq;
    int group = NH / KVH, ldq = NH * hd, ldk = KVH * hd, ldp = NH * T;
    float scale = 1.0f / sqrtf((float)hd);
    for (int s0 = 0; s0 < b->n;) {
        int len = 1;
        while (s0 + len < b->n && b->seq_start[s0 + len] == s0)
            len++;
        for (int h = 0; h < NH; h++) {
            int kvh = h / group;
            const float *Q = a->q + ((size_t)s0 * NH + h) * hd;
            const float *K = a->k + ((size_t)s0 * KVH + kvh) * hd;
            const float *V = a->v + ((size_t)s0 * KVH + kvh) * hd;
            float *P = a->att + ((size_t)s0 * NH + h) * T;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, len, len, hd, scale, Q, ldq, K,
                        ldk, 0.0f, P, ldp);
            for (int i = 0; i < len; i++) {
                float *r = P + (size_t)i * ldp, mx = r[0], sum = 0;
                for (int j = 1; j <= i; j++)
                    mx = r[j] > mx ? r[j] : mx;
                for (int j = 0; j <= i; j++)
                    sum += (r[j] = expf(r[j] - mx));
                float inv = 1.0f / sum;
                for (int j = 0; j <= i; j++)
                    r[j] *= inv;
                for (int j = i + 1; j < len; j++)
                    r[j] = 0.0f;
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, len, hd, len, 1.0f, P, ldp, V,
                        ldk, 0.0f, a->ao + ((size_t)s0 * NH + h) * hd, ldq);
        }
        s0 += len;
    }
}

/*
 * Backward of att_forward: dP = dO V^T, dV += P^T dO, dS = P * (dP - rowsum(P * dP))
 * / sqrt(hd) (causal part only), dQ = dS K, dK += dS^T Q. The query heads of a
 * group accumulate into their shared dK/dV.
 */
static void att_backward(struct tmodel *m, struct layer_acts *a, const struct tm_batch *b)
{
    int hd = m->hd, NH = m->c.n_head, KVH = m->c.n_kv_head, T = m->c.max_seq;
    int group = NH / KVH, ldq = NH * hd, ldk = KVH * hd, ldp = NH * T;
    float scale = 1.0f / sqrtf((float)hd);
    float *dS = m->att_scratch; /* (len, len) */
    for (int s0 = 0; s0 < b->n;) {
        int len = 1;
        while (s0 + len < b->n && b->seq_start[s0 + len] == s0)
            len++;
        for (int h = 0; h < NH; h++) {
            int kvh = h / group;
            float beta = h % group ? 1.0f : 0.0f; /* the group's first head overwrites dK/dV */
            size_t qo = ((size_t)s0 * NH + h) * hd, ko = ((size_t)s0 * KVH + kvh) * hd;
            const float *P = a->att + ((size_t)s0 * NH + h) * T;
            const float *dO = m->dao + qo;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, len, len, hd, 1.0f, dO, ldq,
                        a->v + ko, ldk, 0.0f, dS, len);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, len, hd, len, 1.0f, P, ldp, dO,
                        ldq, beta, m->dv + ko, ldk);
            for (int i = 0; i < len; i++) {
                const float *p = P + (size_t)i * ldp;
                float *d = dS + (size_t)i * len, pdp = 0;
                for (int j = 0; j <= i; j++)
                    pdp += p[j] * d[j];
                for (int j = 0; j <= i; j++)
                    d[j] = p[j] * (d[j] - pdp) * scale;
                for (int j = i + 1; j < len; j++)
                    d[j] = 0.0f;
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, len, hd, len, 1.0f, dS, len,
                        a->k + ko, ldk, 0.0f, m->dq + qo, ldq);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, len, hd, len, 1.0f, dS, len,
                        a->q + qo, ldq, beta, m->dk + ko, ldk);
        }
        s0 += len;
    }
}

/* SwiGLU: h = silu(g) * u, row by row. */
struct glu_ctx {
    struct layer_acts *a;
    struct tmodel *m;
    int F;
};

static void glu_fwd_row(void *vc, int n)
{
    const struct glu_ctx *c = vc;
    size_t o = (size_t)n * c->F;
    for (int i = 0; i < c->F; i++)
        c->a->h[o + i] = silu(c->a->g[o + i]) * c->a->u[o + i];
}

static void glu_bwd_row(void *vc, int n)
{
    const struct glu_ctx *c = vc;
    struct tmodel *m = c->m;
    size_t o = (size_t)n * c->F;
    for (size_t i = o; i < o + (size_t)c->F; i++) {
        float g = c->a->g[i], sg = 1.0f / (1.0f + expf(-g));
        m->du[i] = m->dh[i] * g * sg;
        m->dg[i] = m->dh[i] * c->a->u[i] * sg * (1.0f + g * (1.0f - sg));
    }
}

/* Softmax of one logits row in place, and its cross-entropy into row_loss. */
struct ce_ctx {
    struct tmodel *m;
    const struct tm_batch *b;
};

static void ce_row(void *vc, int n)
{
    const struct ce_ctx *c = vc;
    int V = c->m->c.vocab;
    float *r = c->m->logits + (size_t)n * V;
    float mx = r[0];
    for (int i = 1; i < V; i++)
        mx = r[i] > mx ? r[i] : mx;
    double sum = 0;
    for (int i = 0; i < V; i++)
        sum += (r[i] = expf(r[i] - mx));
    float inv = (float)(1.0 / sum);
    int t = c->b->targets[n];
    c->m->row_loss[n] = t >= 0 ? -logf(r[t] * inv + 1e-30f) : 0.0f;
    for (int i = 0; i < V; i++)
        r[i] *= inv;
}

float tm_forward(struct tmodel *m, const struct tm_batch *b)
{
    const struct tm_config *c = &m->c;
    int N = b->n, C = c->dim, Q = c->n_head * m->hd, KV = c->n_kv_head * m->hd, F = c->ffn;
    int V = c->vocab;
    float *x = m->la[0].x_in;
    for (int n = 0; n < N; n++)
        memcpy(x + (size_t)n * C, m->p.tok_emb + (size_t)b->tokens[n] * C,
               (size_t)C * sizeof(float));
    for (int l = 0; l < c->n_layer; l++) {
        struct layer_acts *a = &m->la[l];
        const struct tm_layer *L = &m->p.layers[l];
        rmsnorm_fwd(m, a->x_in, L->attn_norm, a->xn1, a->rstd1, N, C, c->norm_eps);
        mm_xwt(a->xn1, L->wq, a->q, N, C, Q, 0);
        mm_xwt(a->xn1, L->wk, a->k, N, C, KV, 0);
        mm_xwt(a->xn1, L->wv, a->v, N, C, KV, 0);
        rope(m, a->q, b->pos, N, c->n_head, 1.0f);
        rope(m, a->k, b->pos, N, c->n_kv_head, 1.0f);
        att_forward(m, a, b);
        memcpy(a->x_mid, a->x_in, (size_t)N * C * sizeof(float));
        mm_xwt(a->ao, L->wo, a->x_mid, N, Q, C, 1.0f);
        rmsnorm_fwd(m, a->x_mid, L->ffn_norm, a->xn2, a->rstd2, N, C, c->norm_eps);
        mm_xwt(a->xn2, L->wg, a->g, N, C, F, 0);
        mm_xwt(a->xn2, L->wu, a->u, N, C, F, 0);
        struct glu_ctx gc = {a, m, F};
        tm_parallel_for(m, N, glu_fwd_row, &gc);
        x = l + 1 < c->n_layer ? m->la[l + 1].x_in : m->x_final;
        memcpy(x, a->x_mid, (size_t)N * C * sizeof(float));
        mm_xwt(a->h, L->wd, x, N, F, C, 1.0f);
    }
    rmsnorm_fwd(m, m->x_final, m->p.out_norm, m->xnf, m->rstdf, N, C, c->norm_eps);
    mm_xwt(m->xnf, m->p.output, m->logits, N, C, V, 0);
    /* softmax cross-entropy; logits become probabilities */
    struct ce_ctx cc = {m, b};
    tm_parallel_for(m, N, ce_row, &cc);
    double loss = 0;
    int valid = 0;
    for (int n = 0; n < N; n++) {
        if (b->targets[n] >= 0) {
            loss += m->row_loss[n];
            valid++;
        }
    }
    m->n_valid = valid;
    m->loss = valid ? (float)(loss / valid) : 0.0f;
    return m->loss;
}

void tm_backward(struct tmodel *m, const struct tm_batch *b, float scale)
{
    const struct tm_config *c = &m->c;
    int N = b->n, C = c->dim, Q = c->n_head * m->hd, KV = c->n_kv_head * m->hd, F = c->ffn;
    int V = c->vocab;
    if (!m->n_valid)
        return;
    /* d loss / d logits, with the 1/n_valid of the mean and the caller's scale folded in */
    float k = scale / (float)m->n_valid;
    for (int n = 0; n < N; n++) {
        float *d = m->dlogits + (size_t)n * V;
        const float *p = m->logits + (size_t)n * V;
        int t = b->targets[n];
        if (t < 0) {
            memset(d, 0, (size_t)V * sizeof(float));
            continue;
        }
        for (int i = 0; i < V; i++)
            d[i] = p[i] * k;
        d[t] -= k;
    }
    mm_dw(m->dlogits, m->xnf, m->gp.output, N, C, V, 1.0f);
    mm_dyw(m->dlogits, m->p.output, m->dxn, N, C, V, 0);
    rmsnorm_bwd(m, m->x_final, m->p.out_norm, m->rstdf, m->dxn, m->dx, m->gp.out_norm, N, C, 0);
    for (int l = c->n_layer - 1; l >= 0; l--) {
        struct layer_acts *a = &m->la[l];
        const struct tm_layer *L = &m->p.layers[l];
        struct tm_layer *G = &m->gp.layers[l];
        /* ffn: x_out = x_mid + h wd^T */
        mm_dw(m->dx, a->h, G->wd, N, F, C, 1.0f);
        mm_dyw(m->dx, L->wd, m->dh, N, F, C, 0);
        struct glu_ctx gc = {a, m, F};
        tm_parallel_for(m, N, glu_bwd_row, &gc);
        mm_dw(m->dg, a->xn2, G->wg, N, C, F, 1.0f);
        mm_dw(m->du, a->xn2, G->wu, N, C, F, 1.0f);
        mm_dyw(m->dg, L->wg, m->dxn, N, C, F, 0);
        mm_dyw(m->du, L->wu, m->dxn, N, C, F, 1.0f);
        rmsnorm_bwd(m, a->x_mid, L->ffn_norm, a->rstd2, m->dxn, m->dx, G->ffn_norm, N, C, 1);
        /* attention: x_mid = x_in + ao wo^T */
        mm_dw(m->dx, a->ao, G->wo, N, Q, C, 1.0f);
        mm_dyw(m->dx, L->wo, m->dao, N, Q, C, 0);
        att_backward(m, a, b);
        rope(m, m->dq, b->pos, N, c->n_head, -1.0f);
        rope(m, m->dk, b->pos, N, c->n_kv_head, -1.0f);
        mm_dw(m->dq, a->xn1, G->wq, N, C, Q, 1.0f);
        mm_dw(m->dk, a->xn1, G->wk, N, C, KV, 1.0f);
        mm_dw(m->dv, a->xn1, G->wv, N, C, KV, 1.0f);
        mm_dyw(m->dq, L->wq, m->dxn, N, C, Q, 0);
        mm_dyw(m->dk, L->wk, m->dxn, N, C, KV, 1.0f);
        mm_dyw(m->dv, L->wv, m->dxn, N, C, KV, 1.0f);
        rmsnorm_bwd(m, a->x_in, L->attn_norm, a->rstd1, m->dxn, m->dx, G->attn_norm, N, C, 1);
    }
    for (int n = 0; n < N; n++) {
        float *g = m->gp.tok_emb + (size_t)b->tokens[n] * C;
        const float *d = m->dx + (size_t)n * C;
        for (int i = 0; i < C; i++)
            g[i] += d[i];
    }
}

double tm_flops(const struct tm_config *c, const struct tm_batch *b)
{
    double C = c->dim, hd = (double)c->dim / c->n_head, Q = c->n_head * hd;
    double KV = c->n_kv_head * hd, F = c->ffn, V = c->vocab;
    double per_tok = 2.0 * (C * Q + 2 * C * KV + Q * C + 3 * C * F) * c->n_layer + 2.0 * C * V;
    double att = 0; /* q.k and p.v: 2 * 2 * hd per head per attended position */
    for (int i = 0; i < b->n; i++)
        att += (double)(i - b->seq_start[i] + 1);
    att *= 4.0 * hd * c->n_head * c->n_layer;
    /* backward costs twice the forward */
    return 3.0 * (per_tok * b->n + att);
}
