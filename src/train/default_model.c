/* default_model.c - data, tokenizer, training and evaluation of the default model. */
#include "train/default_model.h"

#include "core/buf.h"
#include "core/err.h"
#include "engine/gguf.h"
#include "engine/tokenizer.h"
#include "train/bpe_train.h"
#include "train/ckpt.h"
#include "train/dataset.h"
#include "train/task.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const specials[] = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};

void default_model_opts_init(struct default_model_opts *o, const char *dir)
{
    memset(o, 0, sizeof *o);
    o->dir = dir;
    o->threads = 2;
    o->seed = 1234;
    o->n_train = 60000;
    o->n_val = 500;
    o->vocab_size = 384;
    struct train_opts *t = &o->train;
    train_opts_default(t);
    t->model = (struct tm_config){.dim = 128,
                                  .n_layer = 4,
                                  .n_head = 4,
                                  .n_kv_head = 2,
                                  .ffn = 352,
                                  .max_seq = 96,
                                  .tied = 1,
                                  .rope_theta = 10000.0f,
                                  .norm_eps = 1e-5f};
    t->steps = 3000;
    t->batch_tokens = 1024;
    t->accum = 1;
    t->lr = 3e-3f;
    t->min_lr = 1e-4f;
    t->warmup = 50;
    t->weight_decay = 0.05f;
    t->eval_every = 250;
    t->eval_batches = 4;
    t->ckpt_every = 250;
    t->log_every = 50;
}

/* The prompt exactly as the chat template renders a one-message conversation. */
static int render_prompt(struct buf *b, const char *question)
{
    return buf_printf(b, "<|im_start|>user\n%s<|im_end|>\n<|im_start|>assistant\n", question);
}

static int encode_exchange(const struct tokenizer *tok, const struct task_item *it,
                           struct tok_ids *ids, struct buf *scratch, size_t *n_prompt)
{
    ids->n = 0;
    buf_reset(scratch);
    if (render_prompt(scratch, it->question) ||
        tok_encode(tok, scratch->data, scratch->len, TOK_ENCODE_PARSE_SPECIAL, ids))
        return AS_ENOMEM;
    *n_prompt = ids->n;
    buf_reset(scratch);
    if (buf_printf(scratch, "%s<|im_end|>", it->answer) ||
        tok_encode(tok, scratch->data, scratch->len, TOK_ENCODE_PARSE_SPECIAL, ids))
        return AS_ENOMEM;
    return 0;
}

static int write_split(const struct tokenizer *tok, enum task_split split, int n, uint64_t seed,
                       const char *path, int *max_len, char *err, size_t errlen)
{
    struct dataset_builder db;
    struct tok_ids ids;
    struct buf s;
    uint8_t mask[1024];
    int rc = 0;
    dataset_builder_init(&db, tok_n_vocab(tok));
    tok_ids_init(&ids, 1024);
    buf_init(&s, 4096);
    uint64_t rng = seed;
    for (int i = 0; i < n && rc == 0; i++) {
        struct task_item it;
        size_t np;
        task_sample(&rng, split, &it);
        if ((rc = encode_exchange(tok, &it, &ids, &s, &np)))
            break;
        for (size_t j = 0; j < ids.n; j++)
            mask[j] = j >= np;
        if ((int)ids.n > *max_len)
            *max_len = (int)ids.n;
        rc = dataset_builder_add(&db, ids.ids, mask, ids.n);
    }
    if (rc)
        snprintf(err, errlen, "building %s: %s", path, as_strerror(rc));
    else
        rc = dataset_builder_write(&db, path, err, errlen);
    dataset_builder_free(&db);
    tok_ids_free(&ids);
    buf_free(&s);
    return rc;
}

static FILE *g_progress_log;
static void bpe_progress(uint32_t done, uint32_t total)
{
    fprintf(g_progress_log, "\rtokenizer: %u/%u merges", done, total);
    fflush(g_progress_log);
}

static int train_tokenizer(const struct default_model_opts *o, const char *path, char *err,
                           size_t errlen)
{
    int rc = AS_ENOMEM;
    struct buf text;
    struct gguf_writer *w = NULL;
    struct bpe_trainer *b = bpe_new("qwen2", err, errlen);
    buf_init(&text, 1 << 20);
    if (!b)
        return AS_EINVAL;
    uint64_t rng = o->seed;
    for (int i = 0; i < o->n_train; i++) {
        struct task_item it;
        task_sample(&rng, TASK_TRAIN, &it);
        buf_reset(&text);
        /* the text between the special tokens of a rendered exchange */
        if (buf_printf(&text, "user\n%s", it.question) || bpe_add_text(b, text.data, text.len) ||
            bpe_add_text(b, "\n", 1))
            goto out;
        buf_reset(&text);
        if (buf_printf(&text, "assistant\n%s", it.answer) || bpe_add_text(b, text.data, text.len))
            goto out;
    }
    g_progress_log = o->log ? o->log : stderr;
    rc = bpe_train(b, (uint32_t)o->vocab_size, specials, 3, bpe_progress);
    fprintf(g_progress_log, "\n");
    if (rc)
        goto out;
    rc = AS_ENOMEM;
    if (!(w = gguf_writer_new()) ||
        bpe_write_gguf(b, w, "<|endoftext|>", "<|im_end|>", task_chat_template))
        goto out;
    rc = gguf_writer_write(w, path);
    if (rc)
        snprintf(err, errlen, "%s: %s", path, gguf_writer_errmsg(w));
out:
    if (rc && !*err)
        snprintf(err, errlen, "training the tokenizer: %s", as_strerror(rc));
    gguf_writer_free(w);
    bpe_free(b);
    buf_free(&text);
    return rc;
}

/* mkdir -p: creates dir and any missing parents. 0 or -1 with errno. */
static int mkdir_p(const char *dir)
{
    char path[4096];
    if (snprintf(path, sizeof path, "%s", dir) >= (int)sizeof path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(path, 0755) && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return mkdir(path, 0755) && errno != EEXIST ? -1 : 0;
}

int default_model_build(const struct default_model_opts *o, int *trained, char *err, size_t errlen)
{
    char model[4096], tokp[4096], trp[4096], vap[4096];
    FILE *log = o->log ? o->log : stderr;
    struct gguf_file *tf = NULL;
    struct tokenizer *tok = NULL;
    struct tmodel *m = NULL;
    int rc;
    *trained = 0;
    err[0] = '\0';
    snprintf(model, sizeof model, "%s/model.gguf", o->dir);
    if (access(model, R_OK) == 0)
        return 0;
    if (mkdir_p(o->dir)) {
        snprintf(err, errlen, "%s: %s", o->dir, strerror(errno));
        return AS_EIO;
    }
    snprintf(tokp, sizeof tokp, "%s/tokenizer.gguf", o->dir);
    snprintf(trp, sizeof trp, "%s/train.tok", o->dir);
    snprintf(vap, sizeof vap, "%s/val.tok", o->dir);
    if (access(tokp, R_OK) != 0) {
        fprintf(log, "default model: training a %d-token BPE tokenizer on %d exchanges\n",
                o->vocab_size, o->n_train);
        if ((rc = train_tokenizer(o, tokp, err, errlen)))
            goto out;
    }
    rc = AS_EFORMAT;
    if (!(tf = gguf_open(tokp, err, errlen)) || !(tok = tok_new_from_gguf(tf, err, errlen)))
        goto out;
    int max_len = 0;
    if (access(trp, R_OK) != 0 || access(vap, R_OK) != 0) {
        if ((rc = write_split(tok, TASK_TRAIN, o->n_train, o->seed, trp, &max_len, err, errlen)) ||
            (rc = write_split(tok, TASK_VAL, o->n_val, o->seed + 1, vap, &max_len, err, errlen)))
            goto out;
        fprintf(log, "default model: %d training and %d validation exchanges, longest %d tokens\n",
                o->n_train, o->n_val, max_len);
    }
    struct train_opts t = o->train;
    t.model.vocab = (int)tok_n_vocab(tok);
    t.data = trp;
    t.val_data = vap;
    t.out_dir = o->dir;
    t.threads = o->threads;
    t.seed = o->seed;
    t.log = log;
    struct train_result res;
    if ((rc = train_run(&t, &m, &res, err, errlen)))
        goto out;
    if (res.steps_done < t.steps) {
        snprintf(err, errlen, "training stopped at step %lld of %lld; run again to resume",
                 (long long)res.steps_done, (long long)t.steps);
        rc = AS_EAGAIN;
        goto out;
    }
    fprintf(log, "default model: trained in %.0fs (%.0f tokens/s, MFU %.1f%%), val loss %.4f\n",
            res.seconds, res.tokens_per_s, 100 * res.mfu, (double)res.val_loss);
    if ((rc =
             ckpt_export_gguf(model, m, tf, "aistack-default", task_chat_template, 0, err, errlen)))
        goto out;
    *trained = 1;
out:
    tm_free(m);
    tok_free(tok);
    gguf_close(tf);
    return rc;
}

double default_model_eval(default_model_gen_fn gen, void *ud, int n, uint64_t seed, FILE *log,
                          int verbose)
{
    uint64_t rng = seed;
    int ok = 0;
    char reply[256];
    for (int i = 0; i < n; i++) {
        struct task_item it;
        task_sample(&rng, TASK_TEST, &it);
        int good = gen(ud, it.question, reply, sizeof reply) == 0 && task_check(&it, reply);
        ok += good;
        if (verbose && log)
            fprintf(log, "%s %-40s -> %s\n", good ? "ok  " : "FAIL", it.question, reply);
    }
    return n ? (double)ok / n : 0;
}
