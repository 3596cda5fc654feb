/*
 * cmd_demo.c - `aistack demo`: the main job of `make run`. Builds the default
 * model on first run (generated data, BPE tokenizer, training; cached
 * afterwards), loads the exported GGUF in the inference engine, and asks it
 * held-out questions it never saw in training.
 */
#include "cli/cli.h"

#include "core/buf.h"
#include "core/config.h"
#include "engine/gguf.h"
#include "engine/kvcache.h"
#include "engine/model.h"
#include "engine/tokenizer.h"
#include "train/default_model.h"
#include "train/task.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Greedy chat completion with the engine: the generator default_model_eval() calls. */
struct engine_chat {
    struct model *m;
    struct model_ctx *ctx;
    struct tokenizer *tok;
    struct model_batch batch;
    struct tok_ids ids;
    struct buf text;
};

static int argmax(const float *x, uint32_t n)
{
    uint32_t best = 0;
    for (uint32_t i = 1; i < n; i++)
        if (x[i] > x[best])
            best = i;
    return (int)best;
}

static int engine_chat_gen(void *ud, const char *question, char *out, size_t cap)
{
    struct engine_chat *e = ud;
    struct kv_cache *kv = model_ctx_kv(e->ctx);
    uint32_t n_vocab = model_get_hparams(e->m)->n_vocab;
    int rc = -1;
    int seq = kv_seq_alloc(kv);
    if (seq < 0)
        return -1;
    buf_reset(&e->text);
    e->ids.n = 0;
    if (buf_printf(&e->text, "<|im_start|>user\n%s<|im_end|>\n<|im_start|>assistant\n", question) ||
        tok_encode(e->tok, e->text.data, e->text.len, TOK_ENCODE_PARSE_SPECIAL, &e->ids))
        goto out;
    size_t n_prompt = e->ids.n;
    uint32_t pos = 0;
    size_t feed = 0; /* tokens of ids not yet run */
    while (e->ids.n - n_prompt < 32) {
        model_batch_clear(&e->batch);
        for (size_t i = feed; i < e->ids.n; i++)
            if (model_batch_add(&e->batch, e->ids.ids[i], seq, pos++, i + 1 == e->ids.n))
                goto out;
        feed = e->ids.n;
        if (model_forward(e->ctx, &e->batch))
            goto out;
        int next = argmax(model_logits(e->ctx, e->batch.n - 1), n_vocab);
        if (tok_is_eog(e->tok, next))
            break;
        if (tok_ids_push(&e->ids, next))
            goto out;
    }
    buf_reset(&e->text);
    if (tok_decode(e->tok, e->ids.ids + n_prompt, e->ids.n - n_prompt, 0, &e->text))
        goto out;
    snprintf(out, cap, "%s", e->text.data ? e->text.data : "");
    rc = 0;
out:
    kv_seq_free(kv, seq);
    return rc;
}

static const struct cfg_option demo_schema[] = {
    {.key = "dir",
     .type = CFG_STRING,
     .def = "state/default-model",
     .help = "where the default model and its data are built and cached"},
    {.key = "threads", .type = CFG_INT, .def = "2", .help = "threads", .min = 1, .max = 256},
    {.key = "eval",
     .type = CFG_INT,
     .def = "200",
     .help = "held-out questions to evaluate (0: skip)",
     .min = 0,
     .max = 100000},
    {.key = "steps",
     .type = CFG_INT,
     .def = "0",
     .help = "training steps (0: the default schedule)",
     .min = 0,
     .max = 10000000},
    {.key = "verbose", .type = CFG_BOOL, .def = "false", .help = "print every evaluated answer"},
    CFG_END,
};

int cmd_demo(int argc, char **argv)
{
    struct buf msg;
    struct config *cfg = NULL;
    struct engine_chat e = {0};
    char err[512], path[4096], reply[256];
    int rc = 1, trained;
    buf_init(&msg, 1 << 16);
    static char prog[] = "aistack demo";
    argv[0] = prog; /* the name --help shows */
    int lrc = config_load(demo_schema, argc, argv, &cfg, &msg);
    if (lrc) {
        fputs(msg.data ? msg.data : "bad configuration\n", lrc == CONFIG_HELP ? stdout : stderr);
        rc = lrc == CONFIG_HELP ? 0 : 2;
        goto out;
    }
    struct default_model_opts o;
    default_model_opts_init(&o, config_str(cfg, "dir"));
    o.threads = (int)config_int(cfg, "threads");
    if (config_int(cfg, "steps"))
        o.train.steps = config_int(cfg, "steps");
    if (default_model_build(&o, &trained, err, sizeof err)) {
        fprintf(stderr, "aistack demo: %s\n", err);
        goto out;
    }
    snprintf(path, sizeof path, "%s/model.gguf", o.dir);
    printf("%s model: %s\n", trained ? "trained" : "cached", path);
    struct model_params mp = {0};
    struct model_ctx_params cp = {
        .n_threads = (uint32_t)o.threads, .max_batch = 128, .max_seqs = 1};
    if (!(e.m = model_load(path, &mp, err, sizeof err)) ||
        !(e.ctx = model_ctx_new(e.m, &cp, err, sizeof err)) ||
        !(e.tok = tok_new_from_gguf(model_get_gguf(e.m), err, sizeof err))) {
        fprintf(stderr, "aistack demo: %s\n", err);
        goto out;
    }
    model_batch_init(&e.batch, 128);
    tok_ids_init(&e.ids, 256);
    buf_init(&e.text, 4096);
    int n_eval = (int)config_int(cfg, "eval");
    if (n_eval) {
        double acc = default_model_eval(engine_chat_gen, &e, n_eval, 99, stdout,
                                        config_bool(cfg, "verbose"));
        printf("held-out accuracy: %.1f%% of %d questions never seen in training\n", 100 * acc,
               n_eval);
    }
    uint64_t rng = 2026;
    struct task_item it;
    task_sample(&rng, TASK_TEST, &it);
    if (engine_chat_gen(&e, it.question, reply, sizeof reply)) {
        fprintf(stderr, "aistack demo: generation failed\n");
        goto out;
    }
    printf("\nquestion: %s\nanswer:   %s\ncorrect:  %s\n", it.question, reply,
           task_check(&it, reply) ? "yes" : "no");
    rc = 0;
out:
    model_batch_free(&e.batch);
    tok_ids_free(&e.ids);
    buf_free(&e.text);
    tok_free(e.tok);
    model_ctx_free(e.ctx);
    model_free(e.m);
    config_free(cfg);
    buf_free(&msg);
    return rc;
}
