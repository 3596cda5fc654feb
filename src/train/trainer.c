/* trainer.c - the training loop (see trainer.h). */
#include "train/trainer.h"

#include "core/err.h"
#include "train/ckpt.h"
#include "train/dataset.h"
#include "train/optim.h"
#include "train/peak.h"
#include "train/plot.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

void train_opts_default(struct train_opts *o)
{
    memset(o, 0, sizeof *o);
    o->steps = 1000;
    o->batch_tokens = 4096;
    o->accum = 1;
    o->lr = 1e-3f;
    o->min_lr = 1e-4f;
    o->weight_decay = 0.1f;
    o->clip = 1.0f;
    o->beta1 = 0.9f;
    o->beta2 = 0.95f;
    o->warmup = 50;
    o->eval_every = 200;
    o->eval_batches = 4;
    o->ckpt_every = 200;
    o->log_every = 10;
    o->threads = 2;
    o->seed = 1;
    o->resume = 1;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static volatile sig_atomic_t g_stop;
static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

static void fmt_duration(char *out, size_t cap, double s)
{
    if (s < 0 || !isfinite(s))
        snprintf(out, cap, "?");
    else if (s < 60)
        snprintf(out, cap, "%.0fs", s);
    else if (s < 3600)
        snprintf(out, cap, "%dm%02ds", (int)s / 60, (int)s % 60);
    else
        snprintf(out, cap, "%dh%02dm", (int)s / 3600, (int)s % 3600 / 60);
}

/* Mean loss over n validation micro-batches from a fixed position (same batches every time). */
static float evaluate(struct tmodel *m, const struct dataset *val, int n, int max_tokens)
{
    struct batcher bt;
    if (batcher_init(&bt, val, 7, tm_get_config(m)->max_seq, max_tokens))
        return NAN;
    double sum = 0;
    for (int i = 0; i < n; i++) {
        struct tm_batch b = {batcher_next(&bt), bt.tokens, bt.targets, bt.pos, bt.seq_start};
        sum += tm_forward(m, &b);
    }
    batcher_free(&bt);
    return (float)(sum / n);
}

int train_run(const struct train_opts *o, struct tmodel **out, struct train_result *res, char *err,
              size_t errlen)
{
    int rc = AS_EINVAL;
    struct dataset train = {0}, val = {0};
    struct batcher bt = {0};
    struct tmodel *m = NULL;
    struct adamw opt = {0};
    FILE *csv = NULL;
    FILE *log = o->log ? o->log : stderr;
    float *curve = NULL; /* (steps, 3): step, train loss, val loss (NAN when none) */
    char path[4096], ckpt[4096];
    memset(res, 0, sizeof *res);
    res->val_loss = NAN;

    if (mkdir(o->out_dir, 0755) && errno != EEXIST) {
        snprintf(err, errlen, "%s: %s", o->out_dir, strerror(errno));
        return AS_EIO;
    }
    if ((rc = dataset_open(&train, o->data, err, errlen)))
        goto out;
    if (o->val_data && (rc = dataset_open(&val, o->val_data, err, errlen)))
        goto out;
    rc = AS_EINVAL;
    if ((int)train.vocab > o->model.vocab) {
        snprintf(err, errlen, "data has vocabulary %u but the model only %d", train.vocab,
                 o->model.vocab);
        goto out;
    }
    if (o->batch_tokens < o->model.max_seq) {
        snprintf(err, errlen, "batch_tokens (%d) must be at least max_seq (%d)", o->batch_tokens,
                 o->model.max_seq);
        goto out;
    }
    if (!(m = tm_new(&o->model, o->batch_tokens, o->threads, o->seed, err, errlen)))
        goto out;
    size_t np = tm_param_count(&o->model);
    rc = AS_ENOMEM;
    if (adamw_init(&opt, np, o->beta1, o->beta2, 1e-8f, o->weight_decay))
        goto out;
    int nt;
    const struct tm_tensor *tt = tm_tensors(m, &nt);
    for (int i = 0; i < nt; i++)
        if (tt[i].rows == 1)
            adamw_set_decay(&opt, tt[i].offset, (size_t)tt[i].cols, 0);

    struct ckpt_state st = {0, 0, o->seed};
    snprintf(ckpt, sizeof ckpt, "%s/checkpoint.gguf", o->out_dir);
    if (o->resume) {
        rc = ckpt_load(ckpt, m, &opt, &st, err, errlen);
        if (rc && rc != AS_ENOENT)
            goto out;
        if (rc == 0)
            fprintf(log, "resuming from %s at step %lld\n", ckpt, (long long)st.step);
    }
    if ((rc = batcher_init(&bt, &train, st.seed, o->model.max_seq, o->batch_tokens)))
        goto out;
    bt.position = st.data_position;

    /* the loss log is appended to on resume: rows past the checkpoint's step are dropped */
    snprintf(path, sizeof path, "%s/loss.csv", o->out_dir);
    curve = malloc((size_t)(o->steps > 0 ? o->steps : 1) * 3 * sizeof *curve);
    if (!curve)
        goto out;
    int64_t n_curve = 0;
    FILE *old = st.step ? fopen(path, "r") : NULL;
    if (old) {
        char line[256];
        while (fgets(line, sizeof line, old) && n_curve < o->steps) {
            char *e;
            long long s = strtoll(line, &e, 10);
            if (*e != ',' || s > st.step)
                continue;
            float tl = strtof(e + 1, &e);
            if (*e != ',')
                continue;
            e++;
            curve[n_curve * 3] = (float)s, curve[n_curve * 3 + 1] = tl;
            curve[n_curve * 3 + 2] = (*e && *e != '\n') ? strtof(e, NULL) : NAN;
            n_curve++;
        }
        fclose(old);
    }
    csv = fopen(path, "w");
    if (!csv) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        rc = AS_EIO;
        goto out;
    }
    fprintf(csv, "step,train_loss,val_loss\n");
    for (int64_t i = 0; i < n_curve; i++) {
        fprintf(csv, "%lld,%.6f,", (long long)curve[i * 3], (double)curve[i * 3 + 1]);
        if (!isnan(curve[i * 3 + 2]))
            fprintf(csv, "%.6f", (double)curve[i * 3 + 2]);
        fprintf(csv, "\n");
    }

    const char *isa;
    res->peak_flops = peak_flops(o->threads, 200, &isa);
    fprintf(log, "model: %zu parameters (%d layers, dim %d, %d heads / %d kv, ffn %d, vocab %d)\n",
            np, o->model.n_layer, o->model.dim, o->model.n_head, o->model.n_kv_head, o->model.ffn,
            o->model.vocab);
    fprintf(log, "data: %llu sequences, %llu tokens; %d tokens x %d micro-batches per step\n",
            (unsigned long long)train.n_seq, (unsigned long long)train.n_tok, o->batch_tokens,
            o->accum);
    fprintf(log, "machine peak: %.1f GFLOP/s f32 (%s, %d threads)\n", res->peak_flops / 1e9, isa,
            o->threads);

    g_stop = 0;
    struct sigaction sa = {0}, old_int, old_term;
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);

    double t_start = now_s(), t_log = t_start, flops_log = 0, flops_all = 0;
    double loss_log = 0;
    int64_t tokens_log = 0, tokens_all = 0, steps_log = 0, first_step = st.step;
    rc = 0;
    while (st.step < o->steps && !g_stop) {
        tm_zero_grad(m);
        double loss = 0;
        for (int a = 0; a < o->accum; a++) {
            struct tm_batch b = {batcher_next(&bt), bt.tokens, bt.targets, bt.pos, bt.seq_start};
            loss += tm_forward(m, &b) / o->accum;
            tm_backward(m, &b, 1.0f / (float)o->accum);
            double f = tm_flops(&o->model, &b);
            flops_log += f, flops_all += f;
            tokens_log += b.n, tokens_all += b.n;
        }
        grad_clip(tm_grads_flat(m), np, o->clip);
        float lr = lr_schedule(st.step, o->warmup, o->steps, o->lr, o->min_lr);
        adamw_step(&opt, tm_params_flat(m), tm_grads_flat(m), lr);
        st.step++;
        st.data_position = bt.position;
        loss_log += loss, steps_log++;
        if (!isfinite(loss)) {
            snprintf(err, errlen, "loss is %f at step %lld: lower the learning rate", loss,
                     (long long)st.step);
            rc = AS_ERANGE;
            break;
        }
        float vl = NAN;
        int last = st.step == o->steps;
        if (val.n_seq && ((o->eval_every && st.step % o->eval_every == 0) || last))
            vl = res->val_loss = evaluate(m, &val, o->eval_batches, o->batch_tokens);
        curve[n_curve * 3] = (float)st.step, curve[n_curve * 3 + 1] = (float)loss;
        curve[n_curve * 3 + 2] = vl;
        n_curve++;
        fprintf(csv, "%lld,%.6f,", (long long)st.step, loss);
        if (!isnan(vl))
            fprintf(csv, "%.6f", (double)vl);
        fprintf(csv, "\n");
        double t = now_s();
        if (st.step % o->log_every == 0 || last || !isnan(vl)) {
            double dt = t - t_log, el = t - t_start;
            char eta[32], vtxt[32] = "";
            fmt_duration(eta, sizeof eta,
                         el / (double)(st.step - first_step) * (double)(o->steps - st.step));
            if (!isnan(vl))
                snprintf(vtxt, sizeof vtxt, " | val %.4f", (double)vl);
            res->final_loss = (float)(loss_log / steps_log);
            fprintf(
                log, "step %6lld/%lld | loss %.4f%s | lr %.2e | %.0f tok/s | MFU %.1f%% | ETA %s\n",
                (long long)st.step, (long long)o->steps, (double)res->final_loss, vtxt, (double)lr,
                (double)tokens_log / dt, 100.0 * flops_log / dt / res->peak_flops, eta);
            fflush(log);
            t_log = t, flops_log = 0, tokens_log = 0, loss_log = 0, steps_log = 0;
        }
        if ((o->ckpt_every && st.step % o->ckpt_every == 0) || last ||
            (o->max_seconds > 0 && t - t_start > o->max_seconds)) {
            fflush(csv);
            if ((rc = ckpt_save(ckpt, m, &opt, &st, err, errlen)))
                break;
            if (o->max_seconds > 0 && t - t_start > o->max_seconds)
                break;
        }
    }
    if (rc == 0 && g_stop && (rc = ckpt_save(ckpt, m, &opt, &st, err, errlen)) == 0)
        fprintf(log, "interrupted: checkpoint saved at step %lld\n", (long long)st.step);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    res->steps_done = st.step;
    res->seconds = now_s() - t_start;
    res->tokens_per_s = (double)tokens_all / res->seconds;
    res->mfu = flops_all / res->seconds / res->peak_flops;
    fflush(csv);
    if (rc == 0 && n_curve > 0) {
        snprintf(path, sizeof path, "%s/loss.png", o->out_dir);
        if (plot_loss_png(path, curve, (int)n_curve, err, errlen))
            fprintf(log, "warning: %s\n", err);
        else
            fprintf(log, "loss curve: %s/loss.csv, %s\n", o->out_dir, path);
    }
out:
    if (csv)
        fclose(csv);
    free(curve);
    batcher_free(&bt);
    adamw_free(&opt);
    dataset_close(&train);
    dataset_close(&val);
    if (rc == 0 && out)
        *out = m;
    else
        tm_free(m);
    return rc;
}
