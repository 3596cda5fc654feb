/*
 * test_sched.c - continuous batching gives every request the tokens it would
 * get alone: many concurrent requests with small step budgets (chunked
 * prompts), queueing past max_running, prefix reuse from finished requests
 * and between requests that arrive together,
 * preemption under a tiny KV pool; plus cancellation, a full queue and
 * deadlines. The model has widely spread random weights so that greedy
 * choices are never near-ties that batching could flip.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/err.h"
#include "engine/kvcache.h"
#include "engine/model.h"
#include "engine/sched.h"
#include "train/ckpt.h"
#include "train/tmodel.h"

#define VOCAB 97
#define N_GEN 12

static char path[] = "/tmp/aistack-sched-XXXXXX";
static struct model *g_model;

struct done {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int finished;
    enum sched_finish why;
    struct sched_stats st;
    int32_t out[256];
    float lp[256]; /* logprob of each token when asked */
    int n_out;
    int stop_after; /* cancel / stop helpers */
    struct sched *s;
    uint64_t id;
};

static int on_token(void *ud, const struct sampler_result *r)
{
    struct done *d = ud;
    pthread_mutex_lock(&d->mu);
    if (d->n_out < 256) {
        d->lp[d->n_out] = r->logprob;
        d->out[d->n_out++] = r->token;
    }
    int n = d->n_out;
    pthread_mutex_unlock(&d->mu);
    if (d->stop_after && n == d->stop_after && d->s)
        sched_cancel(d->s, d->id);
    return 0;
}

static void on_done(void *ud, enum sched_finish why, const struct sched_stats *st)
{
    struct done *d = ud;
    pthread_mutex_lock(&d->mu);
    d->finished = 1;
    d->why = why;
    d->st = *st;
    pthread_cond_signal(&d->cv);
    pthread_mutex_unlock(&d->mu);
}

static void done_init(struct done *d)
{
    memset(d, 0, sizeof *d);
    pthread_mutex_init(&d->mu, NULL);
    pthread_cond_init(&d->cv, NULL);
}

static void done_wait(struct done *d)
{
    pthread_mutex_lock(&d->mu);
    while (!d->finished)
        pthread_cond_wait(&d->cv, &d->mu);
    pthread_mutex_unlock(&d->mu);
}

static void make_prompt(int32_t *p, int n, int salt)
{
    for (int i = 0; i < n; i++)
        p[i] = (i * 7 + salt * 13 + 1) % VOCAB;
}

/* Greedy decoding of one prompt alone, straight through the model. */
static void reference(const int32_t *prompt, int n, int32_t *out)
{
    char err[256];
    struct model_ctx_params cp = {.n_threads = 1, .max_batch = 128, .max_seqs = 1};
    struct model_ctx *ctx = model_ctx_new(g_model, &cp, err, sizeof err);
    assert_non_null(ctx);
    int seq = kv_seq_alloc(model_ctx_kv(ctx));
    struct model_batch b;
    model_batch_init(&b, 128);
    for (int i = 0; i < n; i++)
        model_batch_add(&b, prompt[i], seq, (uint32_t)i, i == n - 1);
    for (int g = 0; g < N_GEN; g++) {
        assert_int_equal(model_forward(ctx, &b), 0);
        const float *l = model_logits(ctx, b.n - 1);
        int best = 0;
        for (int v = 1; v < VOCAB; v++)
            best = l[v] > l[best] ? v : best;
        out[g] = best;
        model_batch_clear(&b);
        model_batch_add(&b, best, seq, (uint32_t)(n + g), 1);
    }
    model_batch_free(&b);
    model_ctx_free(ctx);
}

static void submit(struct sched *s, struct done *d, const int32_t *prompt, int n,
                   uint32_t max_tokens)
{
    struct sched_request r = {0};
    sampler_params_default(&r.sampling);
    r.sampling.temperature = 0;
    r.prompt = prompt;
    r.n_prompt = (uint32_t)n;
    r.max_tokens = max_tokens;
    r.ignore_eog = 1;
    r.on_token = on_token;
    r.on_done = on_done;
    r.ud = d;
    d->s = s;
    assert_int_equal(sched_submit(s, &r, &d->id), 0);
}

static void run_many(const struct sched_params *p, int n_req, int prompt_len_step)
{
    char err[256];
    struct sched *s = sched_new(g_model, p, err, sizeof err);
    if (!s)
        fail_msg("%s", err);
    struct done *d = calloc((size_t)n_req, sizeof *d);
    int32_t prompts[16][80];
    int lens[16];
    for (int i = 0; i < n_req; i++) {
        lens[i] = 3 + i * prompt_len_step;
        make_prompt(prompts[i], lens[i], i);
        done_init(&d[i]);
        submit(s, &d[i], prompts[i], lens[i], N_GEN);
    }
    for (int i = 0; i < n_req; i++) {
        int32_t ref[N_GEN];
        done_wait(&d[i]);
        assert_int_equal(d[i].why, SCHED_FINISH_LENGTH);
        assert_int_equal(d[i].n_out, N_GEN);
        reference(prompts[i], lens[i], ref);
        assert_memory_equal(d[i].out, ref, sizeof ref);
        assert_int_equal(d[i].st.n_prompt, lens[i]);
        assert_int_equal(d[i].st.n_gen, N_GEN);
    }
    struct sched_metrics m;
    sched_get_metrics(s, &m);
    assert_int_equal(m.generated_tokens, (uint64_t)n_req * N_GEN);
    /* batching: far fewer steps than tokens generated one request at a time */
    if (n_req > 1 && p->max_running > 1)
        assert_true(m.steps < (uint64_t)n_req * N_GEN);
    sched_free(s);
    free(d);
}

static void test_batched_equals_alone(void **st)
{
    (void)st;
    struct sched_params p = {.n_threads = 2, .max_running = 4, .max_batch = 16, .cache_seqs = 2};
    run_many(&p, 7, 9); /* prompts 3..57 tokens, chunked by 16, queued past 4 */
}

/* A logit filter as a JSON constraint would be: bans every token id divisible by 5. */
static void ban_fifths(void *ud, float *logits, uint32_t n_vocab)
{
    (void)ud;
    for (uint32_t v = 0; v < n_vocab; v += 5)
        logits[v] = -1e30f;
}

/* Six seeded temperature requests (some with logprobs, some with a logit filter). */
static void run_sampled(const struct sched_params *p, int one_at_a_time, struct done *d)
{
    char err[256];
    struct sched *s = sched_new(g_model, p, err, sizeof err);
    if (!s)
        fail_msg("%s", err);
    int32_t prompts[6][24];
    for (int i = 0; i < 6; i++) {
        make_prompt(prompts[i], 5 + 3 * i, i + 20);
        struct sched_request r = {0};
        sampler_params_default(&r.sampling);
        r.sampling.temperature = 0.9f;
        r.sampling.seed = 1000 + (uint64_t)i;
        r.sampling.top_p = i == 4 ? 0.8f : 1.0f;
        r.logprobs = i % 2 == 0;
        r.n_top_logprobs = r.logprobs ? 3 : 0;
        r.logit_filter = i % 3 == 0 ? ban_fifths : NULL;
        r.prompt = prompts[i];
        r.n_prompt = (uint32_t)(5 + 3 * i);
        r.max_tokens = N_GEN;
        r.ignore_eog = 1;
        r.on_token = on_token;
        r.on_done = on_done;
        r.ud = &d[i];
        done_init(&d[i]);
        d[i].s = s;
        assert_int_equal(sched_submit(s, &r, &d[i].id), 0);
        if (one_at_a_time)
            done_wait(&d[i]);
    }
    for (int i = 0; i < 6; i++) {
        done_wait(&d[i]);
        assert_int_equal(d[i].n_out, N_GEN);
    }
    sched_free(s);
}

/*
 * Seeded sampling on the context's threads, several requests at once, draws
 * what each request draws alone on one thread; filters and logprobs apply.
 */
static void test_sampled_batched_equals_alone(void **st)
{
    (void)st;
    struct sched_params par = {.n_threads = 2, .max_running = 6, .max_batch = 64};
    struct sched_params one = {.n_threads = 1, .max_running = 1, .max_batch = 64};
    struct done a[6], b[6];
    run_sampled(&par, 0, a);
    run_sampled(&one, 1, b);
    int differs_from_greedy = 0;
    for (int i = 0; i < 6; i++) {
        assert_memory_equal(a[i].out, b[i].out, N_GEN * sizeof(int32_t));
        for (int g = 0; g < N_GEN; g++) {
            if (i % 3 == 0)
                assert_int_not_equal(a[i].out[g] % 5, 0);
            if (i % 2 == 0) {
                assert_true(a[i].lp[g] <= 0 && a[i].lp[g] > -1e3f);
                assert_float_equal(a[i].lp[g], b[i].lp[g], 1e-3);
            }
        }
        int32_t ref[N_GEN], prompt[24];
        make_prompt(prompt, 5 + 3 * i, i + 20);
        reference(prompt, 5 + 3 * i, ref);
        differs_from_greedy += memcmp(ref, a[i].out, sizeof ref) != 0;
    }
    assert_true(differs_from_greedy > 0); /* it did sample */
}

static void test_tiny_kv(void **st)
{
    (void)st;
    /* prompts wait for KV room, or are preempted, and still get their own tokens */
    struct sched_params p = {.n_threads = 1, .max_running = 3, .max_batch = 64, .kv_tokens = 96};
    run_many(&p, 3, 30); /* 15 + 45 + 75 positions want 6 blocks of a 3-block pool */
}

static void test_prefix_reuse(void **st)
{
    (void)st;
    char err[256];
    struct sched_params p = {.n_threads = 1, .max_running = 2, .max_batch = 64, .cache_seqs = 4};
    struct sched *s = sched_new(g_model, &p, err, sizeof err);
    assert_non_null(s);
    int32_t a[60], b[70], ref[N_GEN];
    make_prompt(a, 60, 5);
    memcpy(b, a, sizeof a);
    make_prompt(b + 60, 10, 9);
    struct done da, db;
    done_init(&da);
    done_init(&db);
    submit(s, &da, a, 60, N_GEN);
    done_wait(&da);
    submit(s, &db, b, 70, N_GEN);
    done_wait(&db);
    assert_int_equal(db.st.n_cached, 60);
    reference(b, 70, ref);
    assert_memory_equal(db.out, ref, sizeof ref);
    struct sched_metrics m;
    sched_get_metrics(s, &m);
    assert_int_equal(m.prompt_tokens, 60 + 10);
    sched_free(s);
}

/* A request that, on its first token, submits three more from the scheduler thread. */
struct trigger {
    struct done d; /* first: on_done gets the same pointer */
    struct done *next;
    const int32_t *prompt[3];
    int n[3];
};

static int on_token_trigger(void *ud, const struct sampler_result *r)
{
    struct trigger *t = ud;
    if (t->d.n_out == 0)
        for (int i = 0; i < 3; i++)
            submit(t->d.s, &t->next[i], t->prompt[i], t->n[i], N_GEN);
    return on_token(ud, r);
}

static void test_prefix_shared_arrival(void **st)
{
    (void)st;
    char err[256];
    /* a step budget of 16 chunks the 70-token prompts over several steps */
    struct sched_params p = {.n_threads = 1, .max_running = 4, .max_batch = 16, .cache_seqs = 2};
    struct sched *s = sched_new(g_model, &p, err, sizeof err);
    assert_non_null(s);
    int32_t x[5], q[3][70], ref[N_GEN];
    make_prompt(x, 5, 3);
    for (int i = 0; i < 3; i++) {
        make_prompt(q[i], 60, 5);           /* a common "system prompt" */
        make_prompt(q[i] + 60, 10, 20 + i); /* then each its own */
    }
    struct done d[3];
    struct trigger t = {.next = d};
    done_init(&t.d);
    for (int i = 0; i < 3; i++) {
        done_init(&d[i]);
        t.prompt[i] = q[i];
        t.n[i] = 70;
    }
    /* all three reach the queue between two steps and are admitted together */
    struct sched_request r = {0};
    sampler_params_default(&r.sampling);
    r.sampling.temperature = 0;
    r.prompt = x;
    r.n_prompt = 5;
    r.max_tokens = N_GEN;
    r.ignore_eog = 1;
    r.on_token = on_token_trigger;
    r.on_done = on_done;
    r.ud = &t;
    t.d.s = s;
    assert_int_equal(sched_submit(s, &r, &t.d.id), 0);
    done_wait(&t.d);
    for (int i = 0; i < 3; i++) {
        done_wait(&d[i]);
        assert_int_equal(d[i].st.n_cached, i == 0 ? 0 : 60);
        reference(q[i], 70, ref);
        assert_memory_equal(d[i].out, ref, sizeof ref);
    }
    struct sched_metrics m;
    sched_get_metrics(s, &m);
    assert_int_equal(m.prompt_tokens, 5 + 70 + 10 + 10); /* the shared 60 once */
    sched_free(s);
}

static void test_cancel_queue_deadline(void **st)
{
    (void)st;
    char err[256];
    struct sched_params p = {.n_threads = 1, .max_running = 1, .max_batch = 32, .max_queue = 2};
    struct sched *s = sched_new(g_model, &p, err, sizeof err);
    assert_non_null(s);
    int32_t prompt[8];
    make_prompt(prompt, 8, 1);
    struct done d[4];
    for (int i = 0; i < 4; i++)
        done_init(&d[i]);
    d[0].stop_after = 3; /* cancels itself from its third token */
    submit(s, &d[0], prompt, 8, 0);
    /* wait until it runs, so the next two fill the queue */
    for (int i = 0; i < 1000; i++) {
        struct sched_metrics m;
        sched_get_metrics(s, &m);
        if (m.waiting == 0)
            break;
        usleep(1000);
    }
    submit(s, &d[1], prompt, 8, 4);
    submit(s, &d[2], prompt, 8, 4);
    struct sched_request r = {0};
    sampler_params_default(&r.sampling);
    r.prompt = prompt;
    r.n_prompt = 8;
    int rc = sched_submit(s, &r, NULL);
    /* the first may already be done; then the queue had room for one more */
    if (rc != AS_EAGAIN) {
        assert_int_equal(rc, 0);
    }
    done_wait(&d[0]);
    assert_int_equal(d[0].why, SCHED_FINISH_CANCELLED);
    assert_true(d[0].n_out >= 3 && d[0].n_out <= 4); /* freed within one step */
    done_wait(&d[1]);
    done_wait(&d[2]);
    assert_int_equal(d[1].why, SCHED_FINISH_LENGTH);
    /* a deadline in the past ends a request at once */
    d[3].stop_after = 0;
    r.deadline_ms = 1;
    r.on_done = on_done;
    r.ud = &d[3];
    assert_int_equal(sched_submit(s, &r, NULL), 0);
    done_wait(&d[3]);
    assert_int_equal(d[3].why, SCHED_FINISH_DEADLINE);
    /* bad input */
    r.deadline_ms = 0;
    r.n_prompt = 0;
    assert_int_equal(sched_submit(s, &r, NULL), AS_EINVAL);
    int32_t bad = VOCAB + 5;
    r.prompt = &bad;
    r.n_prompt = 1;
    assert_int_equal(sched_submit(s, &r, NULL), AS_EINVAL);
    sched_free(s);
}

static int setup(void **st)
{
    (void)st;
    char err[256];
    int fd = mkstemp(path);
    if (fd < 0)
        return -1;
    close(fd);
    struct tm_config c = {.vocab = VOCAB,
                          .dim = 64,
                          .n_layer = 2,
                          .n_head = 4,
                          .n_kv_head = 2,
                          .ffn = 128,
                          .max_seq = 256,
                          .tied = 0,
                          .rope_theta = 10000.0f,
                          .norm_eps = 1e-5f};
    struct tmodel *tm = tm_new(&c, 8, 1, 77, err, sizeof err);
    if (!tm)
        return -1;
    int nt;
    const struct tm_tensor *t = tm_tensors(tm, &nt);
    float *p = tm_params_flat(tm);
    for (int i = 0; i < nt; i++)
        if (t[i].rows > 1)
            for (size_t j = 0; j < (size_t)t[i].rows * t[i].cols; j++)
                p[t[i].offset + j] *= 12.0f; /* std 0.24: decisive logits */
    int rc = ckpt_export_gguf(path, tm, NULL, "sched-test", NULL, 0, err, sizeof err);
    tm_free(tm);
    if (rc)
        return -1;
    struct model_params mp = {0};
    g_model = model_load(path, &mp, err, sizeof err);
    if (!g_model)
        fprintf(stderr, "%s\n", err);
    return g_model ? 0 : -1;
}

static int teardown(void **st)
{
    (void)st;
    model_free(g_model);
    unlink(path);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batched_equals_alone),
        cmocka_unit_test(test_sampled_batched_equals_alone),
        cmocka_unit_test(test_tiny_kv),
        cmocka_unit_test(test_prefix_reuse),
        cmocka_unit_test(test_prefix_shared_arrival),
        cmocka_unit_test(test_cancel_queue_deadline),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
