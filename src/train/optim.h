/*
 * optim.h - AdamW with decoupled weight decay, global-norm gradient clipping,
 * and a linear-warmup + cosine learning-rate schedule.
 *
 * Works on flat f32 arrays; the caller says which ranges are decayed (2-D
 * weight matrices) and which are not (norms). Not for: the model's math.
 */
#ifndef AISTACK_TRAIN_OPTIM_H
#define AISTACK_TRAIN_OPTIM_H

#include <stddef.h>
#include <stdint.h>

struct adamw {
    size_t n;
    float *m, *v;   /* first and second moments (n), owned */
    uint8_t *decay; /* (n) 1 where weight decay applies, owned */
    float beta1, beta2, eps, weight_decay;
    int64_t t; /* steps taken */
};

/* Allocates moments for n parameters (all decayed until adamw_set_decay). 0 or AS_ENOMEM. */
int adamw_init(struct adamw *o, size_t n, float beta1, float beta2, float eps, float weight_decay);
void adamw_free(struct adamw *o);
/* Marks [off, off+len) as decayed (1) or not (0). */
void adamw_set_decay(struct adamw *o, size_t off, size_t len, int decay);
/* One update of params with grads at learning rate lr. */
void adamw_step(struct adamw *o, float *params, const float *grads, float lr);

/* Global L2 norm of g (n); if above max_norm (> 0), scales g down to it. Returns the norm before.
 */
float grad_clip(float *g, size_t n, float max_norm);

/* Learning rate at step (0-based): linear warmup to lr, then cosine to min_lr at total. */
float lr_schedule(int64_t step, int64_t warmup, int64_t total, float lr, float min_lr);

#endif
