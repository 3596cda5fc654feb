/*
 * cmd_generate.c - `aistack generate`: text completion from a GGUF model.
 *
 *   aistack generate -m model.gguf -p "..." [-n N] [--temp T] [--seed S] [--threads T]
 *
 * stdout carries only the generated text, streamed as it comes (never half a
 * UTF-8 character); stderr gets the prompt and generation speeds. Other tools
 * and tests parse these forms. Not for: chat templates (the infer service).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "core/buf.h"
#include "core/err.h"
#include "engine/kernels.h"
#include "engine/kvcache.h"
#include "engine/model.h"
#include "engine/sampler.h"
#include "engine/tokenizer.h"

struct gen_opts {
    const char *model, *prompt;
    long n_predict;
    long threads;
    long ctx;
    long top_k;
    double temp, top_p, min_p, repeat_penalty;
    unsigned long long seed;
    int have_seed, no_bos;
};

static void usage(FILE *f)
{
    fprintf(f, "usage: aistack generate -m MODEL.gguf -p PROMPT [options]\n"
               "\n"
               "  -n N               tokens to generate (default 128)\n"
               "  --temp T           temperature; 0 = greedy (default 0.8)\n"
               "  --top-k K          keep the K most likely tokens (default 40; 0 = off)\n"
               "  --top-p P          nucleus sampling (default 0.95)\n"
               "  --min-p P          drop tokens below P * p(best) (default 0.05)\n"
               "  --repeat-penalty R llama-style, over the last 64 tokens (default 1 = off)\n"
               "  --seed S           RNG seed (default: from the clock)\n"
               "  --threads T        threads (default 2)\n"
               "  --ctx N            cap the context length\n"
               "  --no-bos           do not add BOS even if the vocabulary asks for it\n");
}

static int parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static int parse_double(const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= lo && v <= hi))
        return -1;
    *out = v;
    return 0;
}

static int parse_args(int argc, char **argv, struct gen_opts *o)
{
    *o = (struct gen_opts){.n_predict = 128,
                           .threads = 2,
                           .top_k = 40,
                           .temp = 0.8,
                           .top_p = 0.95,
                           .min_p = 0.05,
                           .repeat_penalty = 1.0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--no-bos")) {
            o->no_bos = 1;
            continue;
        }
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            exit(0);
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "aistack generate: %s needs a value\n", a);
            return -1;
        }
        const char *v = argv[++i];
        int bad = 0;
        if (!strcmp(a, "-m") || !strcmp(a, "--model"))
            o->model = v;
        else if (!strcmp(a, "-p") || !strcmp(a, "--prompt"))
            o->prompt = v;
        else if (!strcmp(a, "-n"))
            bad = parse_long(v, 0, 1 << 24, &o->n_predict);
        else if (!strcmp(a, "--threads") || !strcmp(a, "-t"))
            bad = parse_long(v, 1, 256, &o->threads);
        else if (!strcmp(a, "--ctx"))
            bad = parse_long(v, 1, 1 << 22, &o->ctx);
        else if (!strcmp(a, "--top-k"))
            bad = parse_long(v, 0, 1 << 22, &o->top_k);
        else if (!strcmp(a, "--temp"))
            bad = parse_double(v, 0, 100, &o->temp);
        else if (!strcmp(a, "--top-p"))
            bad = parse_double(v, 0, 1, &o->top_p);
        else if (!strcmp(a, "--min-p"))
            bad = parse_double(v, 0, 1, &o->min_p);
        else if (!strcmp(a, "--repeat-penalty"))
            bad = parse_double(v, 0, 100, &o->repeat_penalty);
        else if (!strcmp(a, "--seed")) {
            char *end;
            errno = 0;
            o->seed = strtoull(v, &end, 10);
            bad = errno || end == v || *end;
            o->have_seed = 1;
        } else {
            fprintf(stderr, "aistack generate: unknown option %s\n", a);
            return -1;
        }
        if (bad) {
            fprintf(stderr, "aistack generate: bad value for %s: %s\n", a, v);
            return -1;
        }
    }
    if (!o->model || !o->prompt) {
        fprintf(stderr, "aistack generate: -m and -p are required\n");
        return -1;
    }
    return 0;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Writes what is in b to stdout now, and empties b. */
static int emit(struct buf *b)
{
    if (b->len && fwrite(b->data, 1, b->len, stdout) != b->len)
        return -1;
    buf_reset(b);
    return fflush(stdout);
}

int cmd_generate(int argc, char **argv)
{
    struct gen_opts o;
    if (parse_args(argc, argv, &o)) {
        usage(stderr);
        return 2;
    }
    char err[512];
    struct model *m = NULL;
    struct model_ctx *ctx = NULL;
    struct tokenizer *tok = NULL;
    struct sampler *smp = NULL;
    struct tok_ids ids;
    struct model_batch batch = {0};
    struct buf text;
    int ret = 1, rc;
    tok_ids_init(&ids, 1u << 22);
    buf_init(&text, 1 << 20);

    struct model_params mp = {.n_ctx_max = (uint32_t)o.ctx};
    double t_load = now_s();
    if (!(m = model_load(o.model, &mp, err, sizeof err)) ||
        !(tok = tok_new_from_gguf(model_get_gguf(m), err, sizeof err))) {
        fprintf(stderr, "aistack generate: %s: %s\n", o.model, err);
        goto out;
    }
    const struct model_hparams *hp = model_get_hparams(m);
    unsigned flags = o.no_bos ? 0 : TOK_ENCODE_ADD_SPECIAL;
    if ((rc = tok_encode(tok, o.prompt, strlen(o.prompt), flags, &ids))) {
        fprintf(stderr, "aistack generate: tokenizing the prompt: %s\n", as_strerror(rc));
        goto out;
    }
    if (ids.n == 0) {
        fprintf(stderr, "aistack generate: empty prompt and the model has no BOS token\n");
        goto out;
    }
    uint32_t n_ctx = model_n_ctx(m);
    if (ids.n >= n_ctx) {
        fprintf(stderr, "aistack generate: prompt of %zu tokens does not fit the context (%u)\n",
                ids.n, n_ctx);
        goto out;
    }
    uint64_t want = (uint64_t)ids.n + (uint64_t)o.n_predict;
    struct model_ctx_params cp = {
        .n_threads = (uint32_t)o.threads,
        .max_batch = ids.n < 512 ? (uint32_t)ids.n : 512,
        .max_seqs = 1,
        .n_ctx = want < n_ctx ? (uint32_t)want : n_ctx,
    };
    if (!(ctx = model_ctx_new(m, &cp, err, sizeof err))) {
        fprintf(stderr, "aistack generate: %s\n", err);
        goto out;
    }
    struct sampler_params sp;
    sampler_params_default(&sp);
    sp.temperature = (float)o.temp;
    sp.top_k = (int32_t)o.top_k;
    sp.top_p = (float)o.top_p;
    sp.min_p = (float)o.min_p;
    sp.repeat_penalty = (float)o.repeat_penalty;
    sp.repeat_last_n = 64;
    sp.seed = o.have_seed ? o.seed : (uint64_t)time(NULL) ^ ((uint64_t)clock() << 32);
    if (!(smp = sampler_new(&sp, hp->n_vocab)) || model_batch_init(&batch, cp.max_batch)) {
        fprintf(stderr, "aistack generate: out of memory\n");
        goto out;
    }
    for (size_t i = 0; i < ids.n; i++)
        sampler_accept(smp, ids.ids[i], 0);
    t_load = now_s() - t_load;

    struct kv_cache *kv = model_ctx_kv(ctx);
    int seq = kv_seq_alloc(kv);
    double t0 = now_s();
    for (size_t done = 0; done < ids.n;) {
        size_t chunk = ids.n - done < cp.max_batch ? ids.n - done : cp.max_batch;
        model_batch_clear(&batch);
        for (size_t i = 0; i < chunk; i++)
            model_batch_add(&batch, ids.ids[done + i], seq, (uint32_t)(done + i),
                            done + i == ids.n - 1);
        if ((rc = model_forward(ctx, &batch))) {
            fprintf(stderr, "aistack generate: forward: %s\n", as_strerror(rc));
            goto out;
        }
        done += chunk;
    }
    double t_prompt = now_s() - t0;

    /* the stream starts after the prompt, so a leading space is only dropped after BOS */
    struct tok_stream ts;
    tok_stream_init(&ts, tok, TOK_DECODE_STRIP_SPACE);
    for (size_t i = 0; i < ids.n; i++)
        tok_stream_push(&ts, ids.ids[i], &text);
    tok_stream_flush(&ts, &text);
    buf_reset(&text);

    const float *logits = model_logits(ctx, batch.n - 1);
    uint32_t pos = (uint32_t)ids.n;
    long n_gen = 0;
    t0 = now_s();
    while (n_gen < o.n_predict && pos < cp.n_ctx) {
        int32_t id = sampler_sample(smp, logits, 0, NULL);
        n_gen++;
        if (tok_is_eog(tok, id))
            break;
        sampler_accept(smp, id, 1);
        /* ids past the tokenizer's vocabulary (padded embedding rows) print nothing */
        if (((uint32_t)id < tok_n_vocab(tok) && tok_stream_push(&ts, id, &text)) || emit(&text)) {
            fprintf(stderr, "aistack generate: output error\n");
            goto out;
        }
        if (n_gen == o.n_predict || pos + 1 >= cp.n_ctx)
            break;
        model_batch_clear(&batch);
        model_batch_add(&batch, id, seq, pos++, 1);
        if ((rc = model_forward(ctx, &batch))) {
            fprintf(stderr, "aistack generate: forward: %s\n", as_strerror(rc));
            goto out;
        }
        logits = model_logits(ctx, 0);
    }
    double t_gen = now_s() - t0;
    tok_stream_flush(&ts, &text);
    emit(&text);
    fprintf(stderr,
            "\nload: %.3f s (kernels %s)\nprompt: %zu tokens in %.3f s (%.2f tokens/s)\n"
            "generation: %ld tokens in %.3f s (%.2f tokens/s)\n",
            t_load, kern_isa_name(kern_isa_get()), ids.n, t_prompt,
            t_prompt > 0 ? (double)ids.n / t_prompt : 0.0, n_gen, t_gen,
            t_gen > 0 ? (double)n_gen / t_gen : 0.0);
    ret = 0;
out:
    model_batch_free(&batch);
    sampler_free(smp);
    tok_ids_free(&ids);
    buf_free(&text);
    tok_free(tok);
    model_ctx_free(ctx);
    model_free(m);
    return ret;
}
