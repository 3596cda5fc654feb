/* optim.c - AdamW, clipping and the learning-rate schedule (see optim.h). */
#include "train/optim.h"

#include "core/err.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int adamw_init(struct adamw *o, size_t n, float beta1, float beta2, float eps, float weight_decay)
{
    memset(o, 0, sizeof *o);
    o->m = calloc(n, sizeof(float));
    o->v = calloc(n, sizeof(float));
    o->decay = malloc(n);
    if (!o->m || !o->v || !o->decay) {
        adamw_free(o);
        return AS_ENOMEM;
    }
    memset(o->decay, 1, n);
    o->n = n;
    o->beta1 = beta1;
    o->beta2 = beta2;
    o->eps = eps;
    o->weight_decay = weight_decay;
    return 0;
}

void adamw_free(struct adamw *o)
{
    if (!o)
        return;
    free(o->m);
    free(o->v);
    free(o->decay);
    o->m = o->v = NULL;
    o->decay = NULL;
}

void adamw_set_decay(struct adamw *o, size_t off, size_t len, int decay)
{
    if (off < o->n)
        memset(o->decay + off, decay ? 1 : 0, len > o->n - off ? o->n - off : len);
}

void adamw_step(struct adamw *o, float *params, const float *grads, float lr)
{
    o->t++;
    float b1 = o->beta1, b2 = o->beta2;
    float c1 = 1.0f - powf(b1, (float)o->t), c2 = 1.0f - powf(b2, (float)o->t);
    for (size_t i = 0; i < o->n; i++) {
        float g = grads[i];
        float m = o->m[i] = b1 * o->m[i] + (1.0f - b1) * g;
        float v = o->v[i] = b2 * o->v[i] + (1.0f - b2) * g * g;
        float mhat = m / c1, vhat = v / c2;
        /* decoupled decay as torch.optim.AdamW: p *= 1 - lr * wd, then the Adam step */
        if (o->decay[i])
            params[i] -= lr * o->weight_decay * params[i];
        params[i] -= lr * mhat / (sqrtf(vhat) + o->eps);
    }
}

float grad_clip(float *g, size_t n, float max_norm)
{
    double ss = 0;
    for (size_t i = 0; i < n; i++)
        ss += (double)g[i] * g[i];
    float norm = (float)sqrt(ss);
    if (max_norm > 0 && norm > max_norm) {
        float k = max_norm / (norm + 1e-6f);
        for (size_t i = 0; i < n; i++)
            g[i] *= k;
    }
    return norm;
}

float lr_schedule(int64_t step, int64_t warmup, int64_t total, float lr, float min_lr)
{
    if (warmup > 0 && step < warmup)
        return lr * (float)(step + 1) / (float)warmup;
    if (step >= total)
        return min_lr;
    double span = (double)(total - warmup);
    double r = span > 0 ? (double)(step - warmup) / span : 1.0;
    return min_lr + 0.5f * (lr - min_lr) * (float)(1.0 + cos(3.141592653589793 * r));
}
