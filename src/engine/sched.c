/* sched.c - continuous batching scheduler (see sched.h). */
#include "engine/sched.h"

#include "core/err.h"
#include "engine/kvcache.h"
#include "engine/tokenizer.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct req {
    uint64_t id;
    struct sched_request p; /* prompt points into tokens */
    int32_t *tokens;        /* prompt + generated so far */
    uint32_t n_tokens, cap;
    uint32_t n_done; /* tokens whose KV is computed (== kv_seq_len(seq)) */
    int seq;         /* KV slot, -1 when not running */
    struct sampler *smp;
    atomic_int cancelled;
    struct sched_stats st;
    double t_submit, t_first_sched;
    int batch_index;           /* index of its logits token in the step's batch, -1 none */
    struct sampler_result res; /* the token sampled this step (logprobs if asked) */
    int prefix_wait;           /* skips this step: an earlier request computes its prefix */
    struct req *next;          /* in the waiting or running list */
};

/* A finished sequence kept for prefix reuse. */
struct cached {
    int seq; /* -1 when the entry is empty */
    int32_t *tokens;
    uint32_t n;
    uint64_t last_used;
};

struct sched {
    const struct model *m;
    struct model_ctx *ctx;
    struct kv_cache *kv;
    struct tokenizer *tok; /* for end-of-generation ids only; may be NULL */
    struct sched_params p;
    uint32_t n_vocab, n_ctx;
    struct model_batch batch;
    float *logits;     /* (n_vocab) private copy for logit filters */
    struct req **todo; /* (max_running) requests sampled in parallel this step */
    uint32_t n_todo;
    struct cached *cache;
    uint64_t use_clock;

    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;
    uint64_t next_id;
    struct req *waiting; /* FIFO, guarded by mu */
    uint32_t n_waiting;
    struct req *running; /* scheduler thread only; admission order */
    uint32_t n_running;
    struct sched_metrics metrics;   /* guarded by mu */
    uint32_t step_prompt, step_gen; /* tokens of the current step, for metrics */
    uint64_t *cancel_ids;           /* ids to cancel among running requests, guarded by mu */
    uint32_t n_cancel, cap_cancel;
};

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static void req_free(struct req *r)
{
    if (!r)
        return;
    sampler_free(r->smp);
    free(r->tokens);
    free(r);
}

static int req_push_token(struct req *r, int32_t t)
{
    if (r->n_tokens == r->cap) {
        uint32_t cap = r->cap * 2;
        int32_t *n = realloc(r->tokens, cap * sizeof *n);
        if (!n)
            return AS_ENOMEM;
        r->tokens = n, r->cap = cap;
    }
    r->tokens[r->n_tokens++] = t;
    return 0;
}

/* ---- the prefix cache ------------------------------------------------------ */

static void cache_drop(struct sched *s, struct cached *c)
{
    if (c->seq >= 0)
        kv_seq_free(s->kv, c->seq);
    free(c->tokens);
    c->seq = -1;
    c->tokens = NULL;
    c->n = 0;
}

/* Evicts the least recently used cached sequence; 0 if there was none. */
static int cache_evict_lru(struct sched *s)
{
    struct cached *victim = NULL;
    for (uint32_t i = 0; i < s->p.cache_seqs; i++)
        if (s->cache[i].seq >= 0 && (!victim || s->cache[i].last_used < victim->last_used))
            victim = &s->cache[i];
    if (!victim)
        return 0;
    cache_drop(s, victim);
    return 1;
}

static uint32_t common_prefix(const int32_t *a, uint32_t na, const int32_t *b, uint32_t nb)
{
    uint32_t n = na < nb ? na : nb, i = 0;
    while (i < n && a[i] == b[i])
        i++;
    return i;
}

/*
 * Points r's fresh slot at the longest prefix of its tokens that a cached or
 * running sequence holds. At least one token is left to compute, so the last
 * one yields logits.
 */
static void reuse_prefix(struct sched *s, struct req *r)
{
    uint32_t best = 0;
    int src = -1;
    struct cached *hit = NULL;
    for (uint32_t i = 0; i < s->p.cache_seqs; i++) {
        struct cached *c = &s->cache[i];
        if (c->seq < 0)
            continue;
        uint32_t n = common_prefix(c->tokens, c->n, r->tokens, r->n_tokens);
        if (n > best)
            best = n, src = c->seq, hit = c;
    }
    for (struct req *o = s->running; o; o = o->next) {
        if (o == r)
            continue;
        uint32_t n = common_prefix(o->tokens, o->n_done, r->tokens, r->n_tokens);
        if (n > best)
            best = n, src = o->seq, hit = NULL;
    }
    if (best >= r->n_tokens)
        best = r->n_tokens - 1;
    if (best <= r->n_done || kv_seq_copy_prefix(s->kv, r->seq, src, best))
        return;
    if (hit)
        hit->last_used = ++s->use_clock;
    r->n_done = best;
    uint32_t prompt_part = best < r->st.n_prompt ? best : r->st.n_prompt;
    if (prompt_part > r->st.n_cached)
        r->st.n_cached = prompt_part;
}

/* Keeps a finished request's KV for reuse, or frees it. Takes r->tokens. */
static void retire_seq(struct sched *s, struct req *r)
{
    if (r->seq < 0)
        return;
    if (s->p.cache_seqs == 0 || r->n_done == 0) {
        kv_seq_free(s->kv, r->seq);
        r->seq = -1;
        return;
    }
    struct cached *slot = NULL;
    for (uint32_t i = 0; i < s->p.cache_seqs && !slot; i++)
        if (s->cache[i].seq < 0)
            slot = &s->cache[i];
    if (!slot) {
        cache_evict_lru(s);
        for (uint32_t i = 0; i < s->p.cache_seqs && !slot; i++)
            if (s->cache[i].seq < 0)
                slot = &s->cache[i];
    }
    slot->seq = r->seq;
    slot->tokens = r->tokens;
    slot->n = r->n_done;
    slot->last_used = ++s->use_clock;
    r->tokens = NULL;
    r->seq = -1;
}

/* ---- request lifecycle ----------------------------------------------------- */

/*
 * Adds the current step's token counts to the metrics now, so that whoever
 * reads them after a request's on_done sees that request's tokens counted.
 */
static void flush_counts(struct sched *s)
{
    pthread_mutex_lock(&s->mu);
    s->metrics.prompt_tokens += s->step_prompt;
    s->metrics.generated_tokens += s->step_gen;
    pthread_mutex_unlock(&s->mu);
    s->step_prompt = s->step_gen = 0;
}

static void finish(struct sched *s, struct req *r, enum sched_finish why)
{
    flush_counts(s);
    r->st.total_ms = now_ms() - r->t_submit;
    retire_seq(s, r);
    if (r->p.on_done)
        r->p.on_done(r->p.ud, why, &r->st);
    req_free(r);
}

static void list_remove(struct req **head, struct req *r)
{
    for (struct req **pp = head; *pp; pp = &(*pp)->next) {
        if (*pp == r) {
            *pp = r->next;
            r->next = NULL;
            return;
        }
    }
}

static void running_append(struct sched *s, struct req *r)
{
    struct req **pp = &s->running;
    while (*pp)
        pp = &(*pp)->next;
    r->next = NULL;
    *pp = r;
    s->n_running++;
}

/* Drops the newest running request's KV and puts it back at the head of the queue. */
static int preempt_newest(struct sched *s, struct req *keep)
{
    struct req *victim = NULL;
    for (struct req *r = s->running; r; r = r->next)
        if (r != keep)
            victim = r;
    if (!victim)
        return 0;
    list_remove(&s->running, victim);
    s->n_running--;
    kv_seq_free(s->kv, victim->seq);
    victim->seq = -1;
    victim->n_done = 0;
    pthread_mutex_lock(&s->mu);
    victim->next = s->waiting;
    s->waiting = victim;
    s->n_waiting++;
    s->metrics.preemptions++;
    pthread_mutex_unlock(&s->mu);
    return 1;
}

/* Takes a KV slot for r, evicting cached sequences when all slots are taken. */
static int admit(struct sched *s, struct req *r)
{
    int seq;
    while ((seq = kv_seq_alloc(s->kv)) < 0)
        if (!cache_evict_lru(s))
            return AS_EAGAIN;
    r->seq = seq;
    r->n_done = 0;
    if (r->t_first_sched == 0) {
        r->t_first_sched = now_ms();
        r->st.queue_ms = r->t_first_sched - r->t_submit;
    }
    reuse_prefix(s, r);
    return 0;
}

/* Tokens of r to run this step: at most want, and no more than the KV pool can take. */
static uint32_t fit_kv(struct sched *s, struct req *r, uint32_t want, uint32_t *free_blocks)
{
    uint32_t k = want;
    while (k > 0) {
        uint32_t need = kv_seq_blocks_needed(s->kv, r->seq, k);
        if (need <= *free_blocks) {
            *free_blocks -= need;
            return k;
        }
        if (cache_evict_lru(s)) { /* room first comes from the prefix cache */
            *free_blocks = kv_cache_blocks_free(s->kv);
            continue;
        }
        k = k > KV_BLOCK_TOKENS ? k - KV_BLOCK_TOKENS : k - 1;
    }
    return 0;
}

/* ---- one step ----------------------------------------------------------------- */

/* Handles cancellations and deadlines of running requests. */
static void reap(struct sched *s)
{
    uint64_t ids[64];
    uint32_t n = 0;
    do {
        pthread_mutex_lock(&s->mu);
        n = s->n_cancel < 64 ? s->n_cancel : 64;
        if (n) {
            memcpy(ids, s->cancel_ids + s->n_cancel - n, n * sizeof *ids);
            s->n_cancel -= n;
        }
        pthread_mutex_unlock(&s->mu);
        for (uint32_t i = 0; i < n; i++)
            for (struct req *r = s->running; r; r = r->next)
                if (r->id == ids[i])
                    atomic_store(&r->cancelled, 1);
    } while (n == 64);
    double t = now_ms();
    for (struct req *r = s->running, *next; r; r = next) {
        next = r->next;
        int cancelled = atomic_load(&r->cancelled);
        int late = r->p.deadline_ms && t >= (double)r->p.deadline_ms;
        if (cancelled || late) {
            list_remove(&s->running, r);
            s->n_running--;
            finish(s, r, cancelled ? SCHED_FINISH_CANCELLED : SCHED_FINISH_DEADLINE);
        }
    }
}

/* Moves waiting requests into the running set while slots and KV allow. */
static void admit_waiting(struct sched *s)
{
    for (;;) {
        pthread_mutex_lock(&s->mu);
        struct req *r = s->waiting;
        if (!r || s->n_running >= s->p.max_running) {
            pthread_mutex_unlock(&s->mu);
            return;
        }
        s->waiting = r->next;
        s->n_waiting--;
        pthread_mutex_unlock(&s->mu);
        int cancelled = atomic_load(&r->cancelled);
        if (cancelled || (r->p.deadline_ms && now_ms() >= (double)r->p.deadline_ms)) {
            finish(s, r, cancelled ? SCHED_FINISH_CANCELLED : SCHED_FINISH_DEADLINE);
            continue;
        }
        if (admit(s, r)) { /* no slot: back to the head of the queue */
            pthread_mutex_lock(&s->mu);
            r->next = s->waiting;
            s->waiting = r;
            s->n_waiting++;
            pthread_mutex_unlock(&s->mu);
            return;
        }
        running_append(s, r);
    }
}

/*
 * Requests that arrive together with the same system prompt would each compute
 * it in the same step. A request whose prompt shares at least this many more
 * tokens with an earlier one that is still computing them waits for that one,
 * then takes the shared KV blocks, so the common part is computed once.
 */
#define PREFIX_WAIT_MIN 16

static void mark_prefix_waits(struct sched *s)
{
    for (struct req *r = s->running; r; r = r->next) {
        r->prefix_wait = 0;
        if (r->n_tokens - r->n_done <= 1)
            continue; /* decoding */
        for (struct req *o = s->running; o != r && !r->prefix_wait; o = o->next) {
            if (o->n_tokens - o->n_done <= 1)
                continue; /* o computes nothing r could share this step */
            uint32_t n = common_prefix(o->tokens, o->n_tokens, r->tokens, r->n_tokens);
            if (n >= r->n_tokens)
                n = r->n_tokens - 1;
            r->prefix_wait = n >= r->n_done + PREFIX_WAIT_MIN && o->n_done < n;
        }
        if (!r->prefix_wait) /* takes what the others computed meanwhile, if longer */
            reuse_prefix(s, r);
    }
}

/* Fills the batch: one token per decoding request, then prompt chunks. */
static void build_batch(struct sched *s)
{
    model_batch_clear(&s->batch);
    mark_prefix_waits(s);
    s->step_prompt = s->step_gen = 0;
    uint32_t budget = s->p.max_batch, free_blocks = kv_cache_blocks_free(s->kv);
    for (int pass = 0; pass < 2; pass++) {
        for (struct req *r = s->running; r; r = r->next) {
            uint32_t left = r->n_tokens - r->n_done;
            int decoding = left == 1;
            if (pass == 0)
                r->batch_index = -1;
            if (decoding != (pass == 0) || budget == 0 || r->prefix_wait)
                continue;
            uint32_t k = fit_kv(s, r, left < budget ? left : budget, &free_blocks);
            for (uint32_t i = 0; i < k; i++) {
                uint32_t pos = r->n_done + i;
                s->step_prompt += pos < r->st.n_prompt;
                int last = pos + 1 == r->n_tokens;
                model_batch_add(&s->batch, r->tokens[pos], r->seq, pos, last);
                if (last)
                    r->batch_index = (int)s->batch.n - 1;
            }
            r->n_done += k;
            budget -= k;
        }
    }
}

/* Samples r's next token into r->res from logits (touches only r: safe on any thread). */
static void sample_req(struct req *r, const float *logits)
{
    struct sampler_result *res = &r->res;
    int32_t t = sampler_sample(r->smp, logits, r->p.n_top_logprobs, r->p.logprobs ? res : NULL);
    if (!r->p.logprobs) {
        memset(res, 0, sizeof *res);
        res->token = t;
    }
}

static void sample_worker(void *arg, int ith, int nth)
{
    struct sched *s = arg;
    for (uint32_t i = (uint32_t)ith; i < s->n_todo; i += (uint32_t)nth)
        sample_req(s->todo[i], model_logits(s->ctx, (uint32_t)s->todo[i]->batch_index));
}

/*
 * Samples for every request whose last token ran, and retires finished ones.
 * Drawing from a 128K vocabulary is ~0.3 ms a sequence, so several requests
 * are sampled on the context's threads at once (a logit filter runs user
 * code and shares one buffer: those are sampled here, one by one); tokens are
 * then accepted and delivered in admission order.
 */
static void sample_all(struct sched *s)
{
    s->n_todo = 0;
    for (struct req *r = s->running; r; r = r->next) {
        if (r->batch_index < 0)
            continue;
        if (!r->p.logit_filter && s->n_todo < s->p.max_running) {
            s->todo[s->n_todo++] = r;
            continue;
        }
        if (!r->p.logit_filter) {
            sample_req(r, model_logits(s->ctx, (uint32_t)r->batch_index));
            continue;
        }
        memcpy(s->logits, model_logits(s->ctx, (uint32_t)r->batch_index),
               s->n_vocab * sizeof *s->logits);
        r->p.logit_filter(r->p.ud, s->logits, s->n_vocab);
        sample_req(r, s->logits);
    }
    if (s->n_todo > 1)
        model_ctx_run(s->ctx, sample_worker, s);
    else if (s->n_todo == 1)
        sample_worker(s, 0, 1);
    for (struct req *r = s->running, *next; r; r = next) {
        next = r->next;
        if (r->batch_index < 0)
            continue;
        int32_t t = r->res.token;
        sampler_accept(r->smp, t, 1);
        if (r->st.n_gen == 0)
            r->st.ttft_ms = now_ms() - r->t_submit;
        int done = -1;
        if (!r->p.ignore_eog && s->tok && tok_is_eog(s->tok, t)) {
            done = SCHED_FINISH_STOP;
        } else {
            r->st.n_gen++;
            s->step_gen++;
            if (req_push_token(r, t))
                done = SCHED_FINISH_ERROR;
            else if (r->p.on_token && r->p.on_token(r->p.ud, &r->res))
                done = SCHED_FINISH_STOP;
            else if ((r->p.max_tokens && r->st.n_gen >= r->p.max_tokens) || r->n_tokens >= s->n_ctx)
                done = SCHED_FINISH_LENGTH;
        }
        if (done >= 0) {
            list_remove(&s->running, r);
            s->n_running--;
            finish(s, r, (enum sched_finish)done);
        }
    }
}

static void publish_metrics(struct sched *s)
{
    flush_counts(s);
    struct kv_cache_usage u;
    kv_cache_usage(s->kv, &u);
    uint32_t cached = 0;
    for (uint32_t i = 0; i < s->p.cache_seqs; i++)
        cached += s->cache[i].seq >= 0;
    pthread_mutex_lock(&s->mu);
    s->metrics.running = s->n_running;
    s->metrics.waiting = s->n_waiting;
    s->metrics.cached_seqs = cached;
    s->metrics.kv_usage = u.blocks_total ? (double)u.blocks_used / u.blocks_total : 0;
    pthread_mutex_unlock(&s->mu);
}

static void *sched_thread(void *arg)
{
    struct sched *s = arg;
    for (;;) {
        pthread_mutex_lock(&s->mu);
        while (!s->stop && !s->waiting && !s->running)
            pthread_cond_wait(&s->cv, &s->mu);
        int stop = s->stop;
        pthread_mutex_unlock(&s->mu);
        if (stop)
            break;
        reap(s);
        admit_waiting(s);
        if (!s->running) {
            publish_metrics(s);
            continue;
        }
        build_batch(s);
        if (s->batch.n == 0) {
            /* decodes that do not fit the KV pool: make room by preemption */
            if (!preempt_newest(s, s->running)) {
                struct req *r = s->running;
                list_remove(&s->running, r);
                s->n_running--;
                finish(s, r, SCHED_FINISH_LENGTH);
            }
            continue;
        }
        if (model_forward(s->ctx, &s->batch)) {
            /* should not happen (KV room was reserved): fail the requests in the batch */
            for (struct req *r = s->running, *next; r; r = next) {
                next = r->next;
                list_remove(&s->running, r);
                s->n_running--;
                finish(s, r, SCHED_FINISH_ERROR);
            }
            continue;
        }
        sample_all(s);
        pthread_mutex_lock(&s->mu);
        s->metrics.steps++;
        pthread_mutex_unlock(&s->mu);
        publish_metrics(s);
    }
    /* shutting down: everything still here is cancelled */
    for (struct req *r = s->running, *next; r; r = next) {
        next = r->next;
        finish(s, r, SCHED_FINISH_CANCELLED);
    }
    s->running = NULL;
    pthread_mutex_lock(&s->mu);
    struct req *w = s->waiting;
    s->waiting = NULL;
    pthread_mutex_unlock(&s->mu);
    for (struct req *next; w; w = next) {
        next = w->next;
        finish(s, w, SCHED_FINISH_CANCELLED);
    }
    return NULL;
}

/* ---- public API ----------------------------------------------------------------- */

struct sched *sched_new(const struct model *m, const struct sched_params *p, char *err,
                        size_t errlen)
{
    struct sched *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->m = m;
    s->p = *p;
    if (!s->p.max_running)
        s->p.max_running = 8;
    if (!s->p.max_batch)
        s->p.max_batch = 512;
    if (!s->p.max_queue)
        s->p.max_queue = 256;
    s->n_vocab = model_get_hparams(m)->n_vocab;
    uint32_t slots = s->p.max_running + s->p.cache_seqs;
    struct model_ctx_params cp = {
        .n_threads = p->n_threads ? p->n_threads : 1,
        .max_batch = s->p.max_batch,
        .max_seqs = slots,
        .max_logits = s->p.max_running,
        .n_ctx = p->n_ctx,
        .kv_budget_tokens = p->kv_tokens,
    };
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    if (!(s->ctx = model_ctx_new(m, &cp, err, errlen)))
        goto fail;
    s->kv = model_ctx_kv(s->ctx);
    s->n_ctx = kv_cache_config(s->kv)->max_seq_tokens;
    char terr[256];
    s->tok = tok_new_from_gguf(model_get_gguf(m), terr, sizeof terr); /* NULL: no EOG ids */
    s->logits = malloc(s->n_vocab * sizeof *s->logits);
    s->todo = malloc(s->p.max_running * sizeof *s->todo);
    s->cache = calloc(s->p.cache_seqs ? s->p.cache_seqs : 1, sizeof *s->cache);
    if (!s->logits || !s->todo || !s->cache || model_batch_init(&s->batch, s->p.max_batch)) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    for (uint32_t i = 0; i < s->p.cache_seqs; i++)
        s->cache[i].seq = -1;
    if (pthread_create(&s->thread, NULL, sched_thread, s)) {
        snprintf(err, errlen, "cannot start the scheduler thread");
        goto fail;
    }
    return s;
fail:
    model_batch_free(&s->batch);
    free(s->logits);
    free(s->todo);
    free(s->cache);
    tok_free(s->tok);
    model_ctx_free(s->ctx);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s);
    return NULL;
}

void sched_free(struct sched *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    s->stop = 1;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
    for (uint32_t i = 0; i < s->p.cache_seqs; i++)
        cache_drop(s, &s->cache[i]);
    model_batch_free(&s->batch);
    free(s->logits);
    free(s->todo);
    free(s->cache);
    free(s->cancel_ids);
    tok_free(s->tok);
    model_ctx_free(s->ctx);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s);
}

int sched_submit(struct sched *s, const struct sched_request *rq, uint64_t *id)
{
    if (!rq->prompt || rq->n_prompt == 0)
        return AS_EINVAL;
    if (rq->n_prompt >= s->n_ctx)
        return AS_ERANGE;
    for (uint32_t i = 0; i < rq->n_prompt; i++)
        if (rq->prompt[i] < 0 || (uint32_t)rq->prompt[i] >= s->n_vocab)
            return AS_EINVAL;
    struct req *r = calloc(1, sizeof *r);
    if (!r)
        return AS_ENOMEM;
    r->p = *rq;
    r->cap = rq->n_prompt + 16;
    r->tokens = malloc(r->cap * sizeof *r->tokens);
    r->smp = sampler_new(&rq->sampling, s->n_vocab);
    if (!r->tokens || !r->smp) {
        int rc = r->tokens && !r->smp ? AS_EINVAL : AS_ENOMEM;
        req_free(r);
        return rc;
    }
    memcpy(r->tokens, rq->prompt, rq->n_prompt * sizeof *r->tokens);
    r->n_tokens = rq->n_prompt;
    r->p.prompt = NULL; /* the copy is r->tokens */
    for (uint32_t i = 0; i < rq->n_prompt; i++)
        sampler_accept(r->smp, rq->prompt[i], 0);
    r->seq = -1;
    r->st.n_prompt = rq->n_prompt;
    r->t_submit = now_ms();
    pthread_mutex_lock(&s->mu);
    if (s->n_waiting >= s->p.max_queue || s->stop) {
        pthread_mutex_unlock(&s->mu);
        req_free(r);
        return AS_EAGAIN;
    }
    r->id = ++s->next_id;
    struct req **pp = &s->waiting;
    while (*pp)
        pp = &(*pp)->next;
    *pp = r;
    s->n_waiting++;
    s->metrics.waiting = s->n_waiting;
    if (id)
        *id = r->id;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return 0;
}

void sched_cancel(struct sched *s, uint64_t id)
{
    pthread_mutex_lock(&s->mu);
    int queued = 0;
    for (struct req *r = s->waiting; r; r = r->next)
        if (r->id == id)
            atomic_store(&r->cancelled, 1), queued = 1;
    /*
     * Running requests belong to the scheduler thread (they are freed there),
     * so it is told by id and flags them at its next step.
     */
    if (!queued && id && id <= s->next_id) {
        if (s->n_cancel == s->cap_cancel) {
            uint32_t cap = s->cap_cancel ? s->cap_cancel * 2 : 16;
            uint64_t *n = realloc(s->cancel_ids, cap * sizeof *n);
            if (n)
                s->cancel_ids = n, s->cap_cancel = cap;
        }
        if (s->n_cancel < s->cap_cancel)
            s->cancel_ids[s->n_cancel++] = id;
    }
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

void sched_get_metrics(struct sched *s, struct sched_metrics *out)
{
    pthread_mutex_lock(&s->mu);
    *out = s->metrics;
    out->waiting = s->n_waiting;
    pthread_mutex_unlock(&s->mu);
}

uint32_t sched_n_ctx(const struct sched *s)
{
    return s->n_ctx;
}
