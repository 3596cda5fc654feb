/*
 * sampler.h - picks the next token from a row of logits: greedy, temperature,
 * top-k, top-p, min-p, repetition / presence / frequency penalties, logit
 * bias; seeded and reproducible; per-token log-probabilities and top
 * alternatives.
 *
 * One sampler per sequence (it holds that sequence's RNG state and token
 * history); all scratch is allocated by sampler_new(), nothing per token.
 *
 * Order of operations (as vLLM and the OpenAI API describe them):
 *   1. logit bias, then repetition penalty (llama style: over the last
 *      repeat_last_n tokens of prompt + generated; positive logits divided,
 *      negative multiplied), then presence / frequency penalties (OpenAI
 *      semantics, over generated tokens only:
 *      logit -= count * frequency + (count > 0) * presence);
 *   2. log-probabilities are taken here: log-softmax over the whole vocabulary
 *      of these adjusted logits, at temperature 1, before any truncation;
 *   3. temperature <= 0: greedy (arg max; ties go to the lowest id);
 *      else logits / temperature, then top-k, top-p, min-p (relative to the
 *      most likely token), then a draw from the renormalised distribution.
 * Not for: grammar constraints, stop strings (the caller's).
 */
#ifndef AISTACK_ENGINE_SAMPLER_H
#define AISTACK_ENGINE_SAMPLER_H

#include <stddef.h>
#include <stdint.h>

/* Most alternatives sampler_sample() reports per token (OpenAI allows 20). */
#define SAMPLER_MAX_TOP 20

struct sampler_bias {
    int32_t token;
    float bias; /* added to the logit; -100 or less bans the token (OpenAI) */
};

struct sampler_params {
    float temperature;       /* <= 0: greedy */
    int32_t top_k;           /* <= 0: off */
    float top_p;             /* >= 1 or <= 0: off */
    float min_p;             /* <= 0: off */
    float repeat_penalty;    /* 1 or <= 0: off */
    int32_t repeat_last_n;   /* tokens the repetition penalty looks back over (0: off) */
    float presence_penalty;  /* OpenAI, -2..2 */
    float frequency_penalty; /* OpenAI, -2..2 */
    uint64_t seed;
    const struct sampler_bias *bias; /* copied by sampler_new() */
    size_t n_bias;
};

/* A token and its log-probability. */
struct sampler_logprob {
    int32_t token;
    float logprob;
};

/* What sampler_sample() chose, with its log-probability and the top alternatives. */
struct sampler_result {
    int32_t token;
    float logprob;
    uint32_t n_top; /* entries in top, most likely first */
    struct sampler_logprob top[SAMPLER_MAX_TOP];
};

struct sampler;

/* Fills p with the defaults: temperature 1, everything else off, seed 0. */
void sampler_params_default(struct sampler_params *p);
/*
 * Creates a sampler for a vocabulary of n_vocab tokens. Returns NULL on
 * invalid parameters (bias token out of range, n_vocab 0) or out of memory.
 */
struct sampler *sampler_new(const struct sampler_params *p, uint32_t n_vocab);
/* Frees s. Accepts NULL. */
void sampler_free(struct sampler *s);
/* Forgets the history and reseeds the RNG with seed. */
void sampler_reset(struct sampler *s, uint64_t seed);
/*
 * Records a token of the sequence: prompt tokens (generated = 0) count for the
 * repetition penalty only; generated ones (generated = 1) also for presence /
 * frequency penalties. sampler_sample() does not call this itself.
 */
void sampler_accept(struct sampler *s, int32_t token, int generated);
/*
 * Picks a token from logits (n_vocab floats, not modified). When res is not
 * NULL it receives the token's log-probability and, if n_top > 0 (capped at
 * SAMPLER_MAX_TOP), the n_top most likely tokens. Returns the token id.
 */
int32_t sampler_sample(struct sampler *s, const float *logits, uint32_t n_top,
                       struct sampler_result *res);

#endif
