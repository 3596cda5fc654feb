/*
 * sched.h - continuous batching: many generation requests share one model
 * context and one pass over the weights per step.
 *
 * A scheduler thread runs steps. At every step requests join (as KV room and
 * sequence slots allow) and leave (finished, cancelled, past their deadline);
 * each decoding sequence contributes one token, and the rest of the step's
 * token budget goes to prompt chunks, so a long prompt never stalls streams
 * that are already decoding. Finished sequences stay cached (LRU) so that a
 * later prompt sharing their prefix (a common system prompt, the turns of a
 * conversation, the n choices of one request) reuses their KV instead of
 * recomputing it. When the KV pool runs out, cached sequences are evicted
 * first, then the newest running request is preempted (its KV dropped, its
 * prompt + output requeued at the front, recomputed later).
 *
 * Callbacks run on the scheduler thread and must not block (post work to the
 * HTTP loop instead). Not for: tokenization, templates, stop strings or
 * detokenization (the infer service does those in on_token).
 */
#ifndef AISTACK_ENGINE_SCHED_H
#define AISTACK_ENGINE_SCHED_H

#include <stdint.h>

#include "engine/model.h"
#include "engine/sampler.h"

struct sched_params {
    uint32_t n_threads;   /* compute threads */
    uint32_t max_running; /* requests decoding at once */
    uint32_t max_batch;   /* tokens per step (decodes + prompt chunks) */
    uint32_t max_queue;   /* waiting requests; sched_submit() fails past it */
    uint32_t cache_seqs;  /* finished sequences kept for prefix reuse */
    uint32_t n_ctx;       /* positions per sequence (0: the model's) */
    uint32_t kv_tokens;   /* KV pool size in positions over all sequences (0: n_ctx * slots) */
};

enum sched_finish {
    SCHED_FINISH_STOP = 0,  /* end-of-generation token, or on_token asked to stop */
    SCHED_FINISH_LENGTH,    /* max_tokens or the context length reached */
    SCHED_FINISH_CANCELLED, /* sched_cancel() */
    SCHED_FINISH_DEADLINE,  /* the request's deadline passed */
    SCHED_FINISH_ERROR,     /* the request cannot run (e.g. prompt longer than the context) */
};

/* Per-request timings and counts, reported with on_done. */
struct sched_stats {
    uint32_t n_prompt; /* prompt tokens */
    uint32_t n_cached; /* of which reused from the prefix cache */
    uint32_t n_gen;    /* generated tokens */
    double queue_ms;   /* submit -> first scheduled */
    double ttft_ms;    /* submit -> first token */
    double total_ms;   /* submit -> done */
};

/* What a request asks for. Everything is copied by sched_submit(). */
struct sched_request {
    const int32_t *prompt;
    uint32_t n_prompt;
    uint32_t max_tokens; /* 0: until the context is full */
    struct sampler_params sampling;
    int logprobs;            /* fill the sampler result's logprob and alternatives (a
                                log-softmax over the vocabulary per token); else token only */
    uint32_t n_top_logprobs; /* alternatives per token in the sampler result */
    uint64_t deadline_ms;    /* absolute, loop_now_ms() clock; 0: none */
    int ignore_eog;          /* keep generating past end-of-generation tokens */
    /*
     * Optional: edit the logits (n_vocab floats, a private copy) before
     * sampling, e.g. to constrain output to a grammar.
     */
    void (*logit_filter)(void *ud, float *logits, uint32_t n_vocab);
    /* A token was sampled. Return nonzero to finish with SCHED_FINISH_STOP. */
    int (*on_token)(void *ud, const struct sampler_result *r);
    /* Called exactly once, last. */
    void (*on_done)(void *ud, enum sched_finish reason, const struct sched_stats *st);
    void *ud;
};

/* A snapshot for metrics and readiness. */
struct sched_metrics {
    uint32_t running, waiting;
    uint32_t cached_seqs;
    double kv_usage;           /* fraction of KV blocks in use, 0..1 */
    uint64_t prompt_tokens;    /* processed (not reused) prompt tokens, total */
    uint64_t cached_tokens;    /* prompt tokens reused from the prefix cache, total */
    uint64_t generated_tokens; /* total */
    uint64_t preemptions;      /* total */
    uint64_t steps;            /* total */
};

struct sched;

/* Creates a scheduler over m (borrowed, must outlive it) and starts its thread. */
struct sched *sched_new(const struct model *m, const struct sched_params *p, char *err,
                        size_t errlen);
/* Cancels every request (on_done with SCHED_FINISH_CANCELLED), stops the thread, frees. */
void sched_free(struct sched *s);

/*
 * Queues a request; *id identifies it for sched_cancel(). Thread-safe.
 * 0, AS_EAGAIN (queue full: answer 429), AS_EINVAL (empty prompt, bad
 * sampling parameters), AS_ERANGE (prompt does not fit the context).
 */
int sched_submit(struct sched *s, const struct sched_request *r, uint64_t *id);
/* Cancels request id if it is still queued or running (no-op otherwise). Thread-safe. */
void sched_cancel(struct sched *s, uint64_t id);
/* Thread-safe snapshot. */
void sched_get_metrics(struct sched *s, struct sched_metrics *out);
/* Positions per sequence. */
uint32_t sched_n_ctx(const struct sched *s);

#endif
