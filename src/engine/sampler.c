/*
 * sampler.c - token sampling (see sampler.h for the order of operations).
 *
 * Truncation never sorts the whole vocabulary unless it must: top-k uses a
 * selection, top-p sorts a growing prefix of the most likely tokens until the
 * cumulative probability reaches p. Ties are broken by the lower token id
 * everywhere, so results depend only on the logits and the seed.
 */
#include "engine/sampler.h"

#include "engine/kernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SAMPLER_MAX_LAST_N 8192

struct cand {
    float logit;
    int32_t id;
};

struct sampler {
    struct sampler_params p;
    struct sampler_bias *bias;
    uint32_t n_vocab;
    uint64_t rng[4];
    /* repetition window: ring of the last repeat_last_n tokens */
    int32_t *ring;
    uint32_t ring_cap, ring_len, ring_pos;
    /* generated-token counts and the distinct generated tokens */
    uint32_t *gen_count;
    int32_t *gen_list;
    uint32_t n_gen_list;
    uint32_t *stamp; /* per token: last round its repetition penalty was applied */
    uint32_t round;
    float *work;       /* (n_vocab) adjusted logits */
    float *prob;       /* (n_vocab) probabilities by token, when no top-k ran */
    struct cand *cand; /* (n_vocab) */
};

/* ---- RNG: xoshiro256** seeded by splitmix64 ---------------------------------- */

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next(uint64_t s[4])
{
    uint64_t r = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return r;
}

/* Uniform in [0, 1). */
static double rng_uniform(uint64_t s[4])
{
    return (double)(rng_next(s) >> 11) * (1.0 / 9007199254740992.0);
}

/* ---- lifecycle -------------------------------------------------------------- */

void sampler_params_default(struct sampler_params *p)
{
    memset(p, 0, sizeof *p);
    p->temperature = 1.0f;
    p->top_p = 1.0f;
    p->repeat_penalty = 1.0f;
}

void sampler_reset(struct sampler *s, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        s->rng[i] = splitmix64(&x);
    for (uint32_t i = 0; i < s->n_gen_list; i++)
        s->gen_count[s->gen_list[i]] = 0;
    s->n_gen_list = 0;
    s->ring_len = s->ring_pos = 0;
}

struct sampler *sampler_new(const struct sampler_params *p, uint32_t n_vocab)
{
    struct sampler *s = NULL;
    if (!p || n_vocab == 0 || n_vocab > (1u << 28) || (p->n_bias && !p->bias))
        return NULL;
    for (size_t i = 0; i < p->n_bias; i++)
        if (p->bias[i].token < 0 || (uint32_t)p->bias[i].token >= n_vocab ||
            !isfinite(p->bias[i].bias))
            return NULL;
    s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->p = *p;
    s->n_vocab = n_vocab;
    if (p->n_bias) {
        s->bias = malloc(p->n_bias * sizeof *s->bias);
        if (!s->bias)
            goto fail;
        memcpy(s->bias, p->bias, p->n_bias * sizeof *s->bias);
    }
    s->p.bias = s->bias;
    s->ring_cap = p->repeat_last_n > 0 ? (uint32_t)p->repeat_last_n : 0;
    if (s->ring_cap > SAMPLER_MAX_LAST_N)
        s->ring_cap = SAMPLER_MAX_LAST_N;
    if (s->ring_cap && !(s->ring = malloc(s->ring_cap * sizeof *s->ring)))
        goto fail;
    s->gen_count = calloc(n_vocab, sizeof *s->gen_count);
    s->gen_list = malloc(n_vocab * sizeof *s->gen_list);
    s->stamp = calloc(n_vocab, sizeof *s->stamp);
    s->work = malloc(n_vocab * sizeof *s->work);
    s->prob = malloc(n_vocab * sizeof *s->prob);
    s->cand = malloc(n_vocab * sizeof *s->cand);
    if (!s->gen_count || !s->gen_list || !s->stamp || !s->work || !s->prob || !s->cand)
        goto fail;
    sampler_reset(s, p->seed);
    return s;
fail:
    sampler_free(s);
    return NULL;
}

void sampler_free(struct sampler *s)
{
    if (!s)
        return;
    free(s->bias);
    free(s->ring);
    free(s->gen_count);
    free(s->gen_list);
    free(s->stamp);
    free(s->work);
    free(s->prob);
    free(s->cand);
    free(s);
}

void sampler_accept(struct sampler *s, int32_t token, int generated)
{
    if (token < 0 || (uint32_t)token >= s->n_vocab)
        return;
    if (s->ring_cap) {
        s->ring[s->ring_pos] = token;
        s->ring_pos = (s->ring_pos + 1) % s->ring_cap;
        if (s->ring_len < s->ring_cap)
            s->ring_len++;
    }
    if (generated) {
        if (s->gen_count[token]++ == 0)
            s->gen_list[s->n_gen_list++] = token;
    }
}

/* ---- selection helpers ------------------------------------------------------- */

/* a ranks before b: higher logit, then lower id */
static int cand_before(const struct cand *a, const struct cand *b)
{
    return a->logit > b->logit || (a->logit == b->logit && a->id < b->id);
}

static int cand_cmp(const void *pa, const void *pb)
{
    const struct cand *a = pa, *b = pb;
    return cand_before(a, b) ? -1 : cand_before(b, a) ? 1 : 0;
}

static void cand_swap(struct cand *a, struct cand *b)
{
    struct cand t = *a;
    *a = *b;
    *b = t;
}

/* Moves the k best of c[0..n) to c[0..k) (in no order). Quickselect, O(n) expected. */
static void cand_select(struct cand *c, uint32_t n, uint32_t k)
{
    uint32_t lo = 0, hi = n; /* the boundary k lies in [lo, hi) */
    while (hi - lo > 1 && k > lo && k < hi) {
        /* median of three as pivot, moved to hi - 1 */
        uint32_t mid = lo + (hi - lo) / 2;
        if (cand_before(&c[mid], &c[lo]))
            cand_swap(&c[mid], &c[lo]);
        if (cand_before(&c[hi - 1], &c[lo]))
            cand_swap(&c[hi - 1], &c[lo]);
        if (cand_before(&c[mid], &c[hi - 1]))
            cand_swap(&c[mid], &c[hi - 1]);
        struct cand pivot = c[hi - 1];
        uint32_t store = lo;
        for (uint32_t i = lo; i < hi - 1; i++)
            if (cand_before(&c[i], &pivot))
                cand_swap(&c[i], &c[store++]);
        cand_swap(&c[store], &c[hi - 1]);
        if (store == k)
            return;
        if (store < k)
            lo = store + 1;
        else
            hi = store;
    }
}

/*
 * The k best of x[0..n) (token i has logit x[i]; NaN counts as -inf), sorted,
 * into c[0..k). One pass keeps a min-heap of the best k so far: after the
 * first few thousand tokens nearly every one loses to its root in a single
 * compare, ~10x faster than filling a candidate list for a quickselect.
 */
static void top_k_scan(struct cand *c, const float *x, uint32_t n, uint32_t k)
{
    for (uint32_t i = 0; i < n; i++) {
        struct cand v = {x[i] == x[i] ? x[i] : -INFINITY, (int32_t)i};
        uint32_t j;
        if (i < k) { /* grow: sift up */
            for (j = i; j > 0 && cand_before(&c[(j - 1) / 2], &v); j = (j - 1) / 2)
                c[j] = c[(j - 1) / 2];
        } else if (cand_before(&v, &c[0])) { /* replace the worst: sift down */
            for (j = 0;;) {
                uint32_t l = 2 * j + 1, w = j;
                const struct cand *worst = &v;
                if (l < k && cand_before(worst, &c[l]))
                    w = l, worst = &c[l];
                if (l + 1 < k && cand_before(worst, &c[l + 1]))
                    w = l + 1;
                if (w == j)
                    break;
                c[j] = c[w];
                j = w;
            }
        } else {
            continue;
        }
        c[j] = v;
    }
    qsort(c, k, sizeof *c, cand_cmp);
}

/* Sorts the k best of c[0..n) into c[0..k). */
static void cand_top_sorted(struct cand *c, uint32_t n, uint32_t k)
{
    if (k < n)
        cand_select(c, n, k);
    qsort(c, k, sizeof *c, cand_cmp);
}

/*
 * Top-p over the whole vocabulary without sorting it. Candidates (c[i] is
 * token i, logit w[i] * inv_t, probability pr[i]) are bucketed by how far
 * their logit lies below the maximum m; the buckets' masses, summed from the
 * top, give the bucket where target is reached, and only that bucket is
 * sorted to place the cut exactly. Sorting growing prefixes instead cost 10 ms
 * per token at top_p 0.9 over a flat 128K vocabulary. Leaves the nucleus in
 * c[0..returned): the buckets wholly inside it in token order, then the
 * sorted head of the crossing one. Equal logits share a bucket, so the set is
 * the smallest sorted prefix reaching target, as a full sort would give.
 */
#define TP_BUCKETS 1024
#define TP_RANGE   32.0f /* logits further below m all go to the last bucket */

/*
 * Without a branch (a flat distribution mispredicts half of them): d >= 0 as
 * m is the maximum, and non-negative floats order as their bit patterns, so
 * an integer min (a cmov) clamps d; NaN and inf have larger patterns and land
 * in the last bucket.
 */
static uint32_t tp_bucket(float logit, float m)
{
    float d = (m - logit) * (TP_BUCKETS / TP_RANGE), lim = (float)(TP_BUCKETS - 1);
    uint32_t bd, bl;
    memcpy(&bd, &d, sizeof bd);
    memcpy(&bl, &lim, sizeof bl);
    bd = bd < bl ? bd : bl;
    memcpy(&d, &bd, sizeof d);
    return (uint32_t)d;
}

static uint32_t top_p_nucleus(struct cand *c, uint32_t n, const float *w, float inv_t,
                              const float *pr, float m, double target)
{
    /*
     * The last bucket's mass is never read (bx stops before it): its adds go
     * round eight spare slots, so that the many tokens far below the maximum
     * do not form one serial chain of adds into a single slot.
     */
    double mass[TP_BUCKETS + 8] = {0};
    for (uint32_t i = 0; i < n; i++) {
        uint32_t b = tp_bucket(w[i] * inv_t, m);
        b = b < TP_BUCKETS - 1 ? b : TP_BUCKETS + (i & 7);
        mass[b] += pr[i];
    }
    uint32_t bx = 0;
    double cum = 0;
    for (; bx < TP_BUCKETS - 1 && cum + mass[bx] < target; bx++)
        cum += mass[bx];
    /*
     * Buckets above bx from the front in token order, bucket bx from the back;
     * without branches (a flat distribution mispredicts them): both ends are
     * written, and head < tail always (head + n - tail <= t < n), so when they
     * meet both writes store the same candidate.
     */
    uint32_t head = 0, tail = n;
    for (uint32_t t = 0; t < n; t++) {
        struct cand v = {w[t] * inv_t, (int32_t)t};
        uint32_t b = tp_bucket(v.logit, m);
        c[tail - 1] = v;
        c[head] = v;
        head += b < bx;
        tail -= b == bx;
    }
    memmove(c + head, c + tail, (n - tail) * sizeof *c);
    uint32_t j = head + (n - tail);
    qsort(c + head, j - head, sizeof *c, cand_cmp);
    for (uint32_t i = head; i < j; i++) {
        cum += pr[c[i].id];
        if (cum >= target)
            return i + 1;
    }
    return j;
}

/* ---- sampling --------------------------------------------------------------- */

static void apply_penalties(struct sampler *s, float *w)
{
    for (size_t i = 0; i < s->p.n_bias; i++)
        w[s->bias[i].token] += s->bias[i].bias;
    float rp = s->p.repeat_penalty;
    if (rp > 0 && rp != 1.0f && s->ring_len) {
        if (++s->round == 0) { /* stamp wrap-around: start over */
            memset(s->stamp, 0, s->n_vocab * sizeof *s->stamp);
            s->round = 1;
        }
        for (uint32_t i = 0; i < s->ring_len; i++) {
            int32_t t = s->ring[i];
            if (s->stamp[t] == s->round)
                continue;
            s->stamp[t] = s->round;
            w[t] = w[t] > 0 ? w[t] / rp : w[t] * rp;
        }
    }
    float pp = s->p.presence_penalty, fp = s->p.frequency_penalty;
    if (pp != 0 || fp != 0)
        for (uint32_t i = 0; i < s->n_gen_list; i++) {
            int32_t t = s->gen_list[i];
            w[t] -= (float)s->gen_count[t] * fp + pp;
        }
}

static uint32_t argmax(const float *w, uint32_t n)
{
    return (uint32_t)kern_argmax(w, n);
}

/* The sum of p[0..n) in double, four partial sums (a single chain waits on each add). */
static double sum_mass(const float *p, uint32_t n)
{
    double z0 = 0, z1 = 0, z2 = 0, z3 = 0;
    uint32_t i = 0;
    for (; i + 4 <= n; i += 4) {
        z0 += p[i];
        z1 += p[i + 1];
        z2 += p[i + 2];
        z3 += p[i + 3];
    }
    for (; i < n; i++)
        z0 += p[i];
    return (z0 + z1) + (z2 + z3);
}

/*
 * The first i whose cumulative mass p[0..i] exceeds r (n - 1 if none does):
 * 8 masses at a time, their sum first, so the running sum waits on one add
 * per 8 entries, not per entry.
 */
static uint32_t draw(const float *p, uint32_t n, double r)
{
    double cum = 0;
    uint32_t i = 0;
    for (; i + 8 <= n; i += 8) {
        double b = (((double)p[i] + p[i + 1]) + ((double)p[i + 2] + p[i + 3])) +
                   (((double)p[i + 4] + p[i + 5]) + ((double)p[i + 6] + p[i + 7]));
        if (r < cum + b)
            break;
        cum += b;
    }
    for (; i < n; i++) {
        cum += p[i];
        if (r < cum)
            return i;
    }
    return n - 1;
}

/*
 * Log-probability of token and the n_top best tokens, over the adjusted
 * logits. The log normaliser comes from the vectorized softmax (into the
 * scratch s->prob, free once the token is drawn): its arg max has
 * probability 1 / sum(exp(w - m)) >= 1 / n, so log(z) = -log(p_max) without
 * an underflow, where a libm exp per token cost ~0.7 ms at 128K tokens.
 */
static void fill_logprobs(struct sampler *s, const float *w, int32_t token, uint32_t n_top,
                          struct sampler_result *res)
{
    uint32_t n = s->n_vocab;
    uint32_t am = argmax(w, n);
    memcpy(s->prob, w, n * sizeof *w);
    kern_softmax(s->prob, n);
    double lz = (double)w[am] - log((double)s->prob[am]);
    res->logprob = (float)((double)w[token] - lz);
    if (n_top > SAMPLER_MAX_TOP)
        n_top = SAMPLER_MAX_TOP;
    if (n_top > n)
        n_top = n;
    /* insertion into a short sorted list: O(n) for small n_top */
    struct cand top[SAMPLER_MAX_TOP];
    uint32_t k = 0;
    for (uint32_t i = 0; i < n && n_top; i++) {
        struct cand c = {w[i], (int32_t)i};
        if (k == n_top && !cand_before(&c, &top[k - 1]))
            continue;
        uint32_t j = k < n_top ? k++ : k - 1;
        while (j > 0 && cand_before(&c, &top[j - 1])) {
            top[j] = top[j - 1];
            j--;
        }
        top[j] = c;
    }
    res->n_top = k;
    for (uint32_t i = 0; i < k; i++) {
        res->top[i].token = top[i].id;
        res->top[i].logprob = (float)((double)top[i].logit - lz);
    }
}

int32_t sampler_sample(struct sampler *s, const float *logits, uint32_t n_top,
                       struct sampler_result *res)
{
    uint32_t n = s->n_vocab;
    float *w = s->work;
    memcpy(w, logits, n * sizeof *w);
    apply_penalties(s, w);

    int32_t token;
    if (!(s->p.temperature > 0)) {
        token = (int32_t)argmax(w, n);
        goto done;
    }

    float inv_t = 1.0f / s->p.temperature;
    float *prob = s->prob;
    memcpy(prob, w, n * sizeof *prob);
    kern_scale(prob, inv_t, n);
    const int cut_k = s->p.top_k > 0 && (uint32_t)s->p.top_k < n;
    const int cut_p = s->p.top_p > 0 && s->p.top_p < 1;
    const int cut_min = s->p.min_p > 0 && s->p.min_p <= 1;
    if (!cut_k && !cut_p && !cut_min) {
        /*
         * Temperature alone: every token is a candidate, in id order; draw
         * from the softmax directly (no candidate list: filling one and
         * scanning it was ~70% of a 0.37 ms draw from a 128K vocabulary).
         */
        kern_softmax(prob, n);
        double z = sum_mass(prob, n);
        token = (int32_t)draw(prob, n, rng_uniform(s->rng) * z);
        goto done;
    }
    struct cand *c = s->cand;
    uint32_t n_cand = n;
    int sorted = 0;
    float m; /* the largest candidate logit */
    if (cut_k) {
        n_cand = (uint32_t)s->p.top_k;
        top_k_scan(c, prob, n, n_cand);
        sorted = 1;
        m = c[0].logit;
    } else {
        if (!cut_p) /* top-p builds its own list */
            for (uint32_t i = 0; i < n; i++) {
                c[i].logit = prob[i];
                c[i].id = (int32_t)i;
            }
        /* x * inv_t rounds monotonically: the arg max of w has the largest */
        m = prob[argmax(w, n)];
    }
    /*
     * The mass of candidate i is exp(logit - m), or its probability from a
     * vectorized softmax over the whole vocabulary when no top-k cut it: a
     * libm exp per token of a 128K vocabulary, twice, was 1-2 ms per sampled
     * token, on the serving loop's one thread while the others waited.
     */
    const float *pr = NULL;
    double z = 0;
    if (!sorted) {
        kern_softmax(s->prob, n);
        pr = s->prob;
        z = sum_mass(pr, n);
    } else {
        for (uint32_t i = 0; i < n_cand; i++)
            z += exp((double)c[i].logit - m);
    }
#define CAND_MASS(i) (pr ? (double)pr[c[i].id] : exp((double)c[i].logit - m))
    uint32_t z_cand = n_cand; /* z is the mass of c[0..z_cand) */

    if (s->p.top_p > 0 && s->p.top_p < 1 && pr) {
        n_cand = top_p_nucleus(c, n, w, inv_t, pr, m, s->p.top_p * z);
        sorted = 1;
    } else if (s->p.top_p > 0 && s->p.top_p < 1) {
        /* after top-k: sort a growing prefix until it holds top_p of the mass */
        uint32_t k = sorted ? n_cand : (n_cand < 256 ? n_cand : 256);
        for (;;) {
            if (!sorted)
                cand_top_sorted(c, n_cand, k);
            double cum = 0, target = s->p.top_p * z;
            uint32_t i = 0;
            for (; i < k; i++) {
                cum += CAND_MASS(i);
                if (cum >= target)
                    break;
            }
            if (i < k || k == n_cand) {
                n_cand = i < k ? i + 1 : k;
                break;
            }
            k = k > n_cand / 4 ? n_cand : k * 4;
        }
        sorted = 1;
    }
    if (s->p.min_p > 0 && s->p.min_p <= 1) {
        float floor_logit = m + logf(s->p.min_p);
        uint32_t j = 0;
        for (uint32_t i = 0; i < n_cand; i++)
            if (c[i].logit >= floor_logit)
                c[j++] = c[i]; /* keeps order, so a sorted list stays sorted */
        n_cand = j;
    }
    if (n_cand == 0) { /* only with NaN logits: fall back to the arg max */
        token = (int32_t)argmax(w, n);
        goto done;
    }
    if (n_cand != z_cand) { /* truncated: the mass of what is left (else the sum above) */
        z = 0;
        for (uint32_t i = 0; i < n_cand; i++)
            z += CAND_MASS(i);
    }
    double r = rng_uniform(s->rng) * z, cum = 0;
    token = c[n_cand - 1].id;
    for (uint32_t i = 0; i < n_cand; i++) {
        cum += CAND_MASS(i);
        if (r < cum) {
            token = c[i].id;
            break;
        }
    }
#undef CAND_MASS
done:
    if (res) {
        memset(res, 0, sizeof *res);
        res->token = token;
        fill_logprobs(s, w, token, n_top, res);
    }
    return token;
}
