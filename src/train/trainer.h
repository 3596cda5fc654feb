/*
 * trainer.h - the training loop: batches from a dataset, gradient
 * accumulation, AdamW with warmup + cosine, clipping, validation, progress
 * lines, periodic atomic checkpoints with exact resume, and a loss log.
 *
 * Not for: the model math (tmodel.h) or file formats (dataset.h, ckpt.h).
 */
#ifndef AISTACK_TRAIN_TRAINER_H
#define AISTACK_TRAIN_TRAINER_H

#include <stdint.h>
#include <stdio.h>

#include "train/tmodel.h"

struct train_opts {
    struct tm_config model;
    const char *data;     /* training token file */
    const char *val_data; /* validation token file, may be NULL */
    const char *out_dir;  /* checkpoint, loss.csv, loss.png go here */
    int64_t steps;        /* optimizer steps */
    int batch_tokens;     /* tokens per micro-batch */
    int accum;            /* micro-batches per step */
    float lr, min_lr, weight_decay, clip, beta1, beta2;
    int64_t warmup;     /* warmup steps */
    int64_t eval_every; /* steps between validation passes (0: only at the end) */
    int eval_batches;   /* micro-batches per validation pass */
    int64_t ckpt_every; /* steps between checkpoints (0: only at the end) */
    int64_t log_every;  /* steps between progress lines */
    int threads;
    uint64_t seed;      /* initialisation and data order */
    int resume;         /* continue from out_dir/checkpoint.gguf when present */
    double max_seconds; /* stop (with a checkpoint) after this long, 0 = no limit */
    FILE *log;          /* progress lines (stderr when NULL) */
};

/* Sensible defaults for everything but the model, data and out_dir. */
void train_opts_default(struct train_opts *o);

struct train_result {
    int64_t steps_done;
    float final_loss;    /* mean training loss of the last logging interval */
    float val_loss;      /* last validation loss (NAN if none) */
    double tokens_per_s; /* training throughput over the run */
    double mfu;          /* model FLOP utilisation against the measured peak */
    double peak_flops;
    double seconds;
};

/*
 * Runs training. The model is created here (from o->model and o->seed) or
 * resumed from the checkpoint; *out receives it (caller frees with tm_free)
 * when out is non-NULL. 0, or AS_E* with a message in err.
 */
int train_run(const struct train_opts *o, struct tmodel **out, struct train_result *res, char *err,
              size_t errlen);

#endif
