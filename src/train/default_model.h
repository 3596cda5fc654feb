/*
 * default_model.h - the model `make run` trains and serves: data generated
 * here (task.h), a BPE tokenizer trained on it, a small chat model trained on
 * the tokens, exported as GGUF, and evaluated on held-out questions.
 *
 * Everything is deterministic for a given seed and thread count, and nothing
 * is downloaded. Not for: serving (infer) or the training math (tmodel.h).
 */
#ifndef AISTACK_TRAIN_DEFAULT_MODEL_H
#define AISTACK_TRAIN_DEFAULT_MODEL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "train/trainer.h"

struct default_model_opts {
    const char *dir; /* work directory: tokens, tokenizer, checkpoint, model.gguf */
    int threads;
    uint64_t seed;
    int n_train;             /* training exchanges */
    int n_val;               /* validation exchanges */
    int vocab_size;          /* BPE target */
    struct train_opts train; /* model shape and schedule (data paths are filled in) */
    FILE *log;
};

void default_model_opts_init(struct default_model_opts *o, const char *dir);

/*
 * Builds dir/model.gguf (and dir/tokenizer.gguf, dir/train.tok, dir/val.tok,
 * dir/loss.csv, dir/loss.png) unless dir/model.gguf exists already. *trained
 * is set to 1 when training ran. 0, or AS_E* with a message in err.
 */
int default_model_build(const struct default_model_opts *o, int *trained, char *err, size_t errlen);

/* Generates a reply for a user message; returns 0 and the reply text in out. */
typedef int (*default_model_gen_fn)(void *ud, const char *question, char *out, size_t cap);

/*
 * Asks n held-out questions through gen and returns the fraction answered
 * correctly; each question, reply and verdict is written to log when verbose.
 */
double default_model_eval(default_model_gen_fn gen, void *ud, int n, uint64_t seed, FILE *log,
                          int verbose);

#endif
