/*
 * cmd_train.c - `aistack train`: train a llama-architecture model on a token
 * file, with settings from --config FILE.yaml, AISTACK_* variables and flags.
 */
#include "cli/cli.h"

#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"
#include "engine/gguf.h"
#include "train/ckpt.h"
#include "train/dataset.h"
#include "train/trainer.h"
#include "engine/tokenizer.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static const struct cfg_option train_schema[] = {
    {.key = "data",
     .type = CFG_STRING,
     .def = NULL,
     .help = "training token file (aistack tokens format)",
     .alias = "d"},
    {.key = "val_data", .type = CFG_STRING, .def = NULL, .help = "validation token file"},
    {.key = "out",
     .type = CFG_STRING,
     .def = "train-out",
     .help = "output directory (checkpoint, loss.csv, loss.png)",
     .alias = "o"},
    {.key = "tokenizer",
     .type = CFG_STRING,
     .def = NULL,
     .help = "GGUF whose tokenizer.* metadata the export carries"},
    {.key = "export",
     .type = CFG_STRING,
     .def = NULL,
     .help = "write the trained model as a GGUF here at the end"},
    {.key = "chat_template",
     .type = CFG_STRING,
     .def = NULL,
     .help = "Jinja chat template stored in the export"},
    {.key = "model.vocab",
     .type = CFG_INT,
     .def = "0",
     .help = "vocabulary size (0: the data's)",
     .min = 0,
     .max = 1 << 20},
    {.key = "model.dim",
     .type = CFG_INT,
     .def = "128",
     .help = "model width",
     .min = 2,
     .max = 16384},
    {.key = "model.n_layer",
     .type = CFG_INT,
     .def = "4",
     .help = "transformer blocks",
     .min = 1,
     .max = 256},
    {.key = "model.n_head",
     .type = CFG_INT,
     .def = "4",
     .help = "attention heads",
     .min = 1,
     .max = 1024},
    {.key = "model.n_kv_head",
     .type = CFG_INT,
     .def = "0",
     .help = "key/value heads (0: n_head)",
     .min = 0,
     .max = 1024},
    {.key = "model.ffn",
     .type = CFG_INT,
     .def = "0",
     .help = "SwiGLU width (0: about 8/3 dim, rounded to 32)",
     .min = 0,
     .max = 65536},
    {.key = "model.max_seq",
     .type = CFG_INT,
     .def = "256",
     .help = "longest sequence",
     .min = 2,
     .max = 65536},
    {.key = "model.tied",
     .type = CFG_BOOL,
     .def = "true",
     .help = "share the token embedding with the output"},
    {.key = "model.rope_theta",
     .type = CFG_DOUBLE,
     .def = "10000",
     .help = "rope base",
     .dmin = 1,
     .dmax = 1e9},
    {.key = "train.steps",
     .type = CFG_INT,
     .def = "1000",
     .help = "optimizer steps",
     .min = 1,
     .max = 100000000},
    {.key = "train.batch_tokens",
     .type = CFG_INT,
     .def = "4096",
     .help = "tokens per micro-batch",
     .min = 2,
     .max = 1 << 22},
    {.key = "train.accum",
     .type = CFG_INT,
     .def = "1",
     .help = "micro-batches per step",
     .min = 1,
     .max = 1024},
    {.key = "train.lr",
     .type = CFG_DOUBLE,
     .def = "1e-3",
     .help = "peak learning rate",
     .dmin = 0,
     .dmax = 10},
    {.key = "train.min_lr",
     .type = CFG_DOUBLE,
     .def = "1e-4",
     .help = "final learning rate",
     .dmin = 0,
     .dmax = 10},
    {.key = "train.warmup",
     .type = CFG_INT,
     .def = "50",
     .help = "warmup steps",
     .min = 0,
     .max = 100000000},
    {.key = "train.weight_decay",
     .type = CFG_DOUBLE,
     .def = "0.1",
     .help = "AdamW weight decay",
     .dmin = 0,
     .dmax = 10},
    {.key = "train.clip",
     .type = CFG_DOUBLE,
     .def = "1.0",
     .help = "gradient norm clip (0: off)",
     .dmin = 0,
     .dmax = 1e6},
    {.key = "train.eval_every",
     .type = CFG_INT,
     .def = "200",
     .help = "steps between validations",
     .min = 0,
     .max = 100000000},
    {.key = "train.eval_batches",
     .type = CFG_INT,
     .def = "4",
     .help = "micro-batches per validation",
     .min = 1,
     .max = 10000},
    {.key = "train.ckpt_every",
     .type = CFG_INT,
     .def = "200",
     .help = "steps between checkpoints",
     .min = 0,
     .max = 100000000},
    {.key = "train.log_every",
     .type = CFG_INT,
     .def = "10",
     .help = "steps between progress lines",
     .min = 1,
     .max = 100000000},
    {.key = "train.threads",
     .type = CFG_INT,
     .def = "2",
     .help = "threads",
     .min = 1,
     .max = 256,
     .alias = "threads"},
    {.key = "train.seed",
     .type = CFG_INT,
     .def = "1",
     .help = "seed for initialisation and data order",
     .min = 0,
     .max = INT64_MAX},
    {.key = "train.resume",
     .type = CFG_BOOL,
     .def = "true",
     .help = "continue from OUT/checkpoint.gguf when present"},
    {.key = "train.max_time",
     .type = CFG_DURATION,
     .def = "0",
     .help = "stop with a checkpoint after this long (0: no limit)"},
    CFG_END,
};

/*
 * Tokenizes a text file into DIR/NAME.tok when it is not a token file already
 * (special tokens written in the text, like <|im_end|>, become control tokens):
 * each non-empty line is one training sequence (cropped to max_seq when
 * training). Returns the path to train on, or NULL with a message in err.
 */
static const char *prepare_data(const char *path, const struct gguf_file *tokf, const char *dir,
                                const char *name, char *out, size_t cap, char *err, size_t errlen)
{
    char magic[8] = {0};
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    size_t got = fread(magic, 1, sizeof magic, f);
    if (got == sizeof magic && !memcmp(magic, "ASTOKENS", 8)) {
        fclose(f);
        return path;
    }
    if (!tokf) {
        fclose(f);
        snprintf(err, errlen, "%s is text: give --tokenizer FILE.gguf to tokenize it", path);
        return NULL;
    }
    struct tokenizer *tok = tok_new_from_gguf(tokf, err, errlen);
    struct dataset_builder db;
    struct tok_ids ids;
    char *line = NULL;
    size_t lcap = 0, lines = 0;
    ssize_t n;
    int rc = tok ? 0 : -1;
    dataset_builder_init(&db, tok ? tok_n_vocab(tok) : 1);
    tok_ids_init(&ids, 1 << 20);
    rewind(f);
    while (rc == 0 && (n = getline(&line, &lcap, f)) > 0) {
        ids.n = 0;
        if (tok_encode(tok, line, (size_t)n, TOK_ENCODE_ADD_SPECIAL | TOK_ENCODE_PARSE_SPECIAL,
                       &ids)) {
            snprintf(err, errlen, "%s: line %zu is too long", path, lines + 1);
            rc = -1;
        } else if (ids.n >= 2 && dataset_builder_add(&db, ids.ids, NULL, ids.n)) {
            snprintf(err, errlen, "out of memory tokenizing %s", path);
            rc = -1;
        }
        lines++;
    }
    fclose(f);
    free(line);
    snprintf(out, cap, "%s/%s.tok", dir, name);
    if (rc == 0 && mkdir(dir, 0755) && errno != EEXIST) {
        snprintf(err, errlen, "%s: %s", dir, strerror(errno));
        rc = -1;
    }
    if (rc == 0 && db.offsets.len == 0) {
        snprintf(err, errlen, "%s: no line of at least two tokens", path);
        rc = -1;
    }
    if (rc == 0 && dataset_builder_write(&db, out, err, errlen))
        rc = -1;
    if (rc == 0)
        fprintf(stderr, "tokenized %s: %zu lines -> %s\n", path, lines, out);
    dataset_builder_free(&db);
    tok_ids_free(&ids);
    tok_free(tok);
    return rc == 0 ? out : NULL;
}

int cmd_train(int argc, char **argv)
{
    struct buf msg;
    struct config *cfg = NULL;
    struct tmodel *m = NULL;
    struct gguf_file *tok = NULL;
    int rc = 1;
    char err[512];
    buf_init(&msg, 1 << 16);
    static char prog[] = "aistack train";
    argv[0] = prog; /* the name --help shows */
    int lrc = config_load(train_schema, argc, argv, &cfg, &msg);
    if (lrc == CONFIG_HELP) {
        fputs(msg.data ? msg.data : "", stdout);
        rc = 0;
        goto out;
    }
    if (lrc) {
        fprintf(stderr, "aistack train: %s", msg.data ? msg.data : "bad configuration\n");
        goto out;
    }
    struct train_opts o;
    train_opts_default(&o);
    o.data = config_str(cfg, "data");
    if (!o.data) {
        fprintf(stderr, "aistack train: --data FILE is required (see --help)\n");
        goto out;
    }
    o.val_data = config_str(cfg, "val_data");
    o.out_dir = config_str(cfg, "out");
    struct tm_config *mc = &o.model;
    mc->dim = (int)config_int(cfg, "model.dim");
    mc->n_layer = (int)config_int(cfg, "model.n_layer");
    mc->n_head = (int)config_int(cfg, "model.n_head");
    mc->n_kv_head = (int)config_int(cfg, "model.n_kv_head");
    if (!mc->n_kv_head)
        mc->n_kv_head = mc->n_head;
    mc->ffn = (int)config_int(cfg, "model.ffn");
    if (!mc->ffn)
        mc->ffn = (mc->dim * 8 / 3 + 31) / 32 * 32;
    mc->max_seq = (int)config_int(cfg, "model.max_seq");
    mc->tied = config_bool(cfg, "model.tied");
    mc->rope_theta = (float)config_double(cfg, "model.rope_theta");
    mc->norm_eps = 1e-5f;
    o.steps = config_int(cfg, "train.steps");
    o.batch_tokens = (int)config_int(cfg, "train.batch_tokens");
    o.accum = (int)config_int(cfg, "train.accum");
    o.lr = (float)config_double(cfg, "train.lr");
    o.min_lr = (float)config_double(cfg, "train.min_lr");
    o.warmup = config_int(cfg, "train.warmup");
    o.weight_decay = (float)config_double(cfg, "train.weight_decay");
    o.clip = (float)config_double(cfg, "train.clip");
    o.eval_every = config_int(cfg, "train.eval_every");
    o.eval_batches = (int)config_int(cfg, "train.eval_batches");
    o.ckpt_every = config_int(cfg, "train.ckpt_every");
    o.log_every = config_int(cfg, "train.log_every");
    o.threads = (int)config_int(cfg, "train.threads");
    o.seed = (uint64_t)config_int(cfg, "train.seed");
    o.resume = config_bool(cfg, "train.resume");
    o.max_seconds = (double)config_duration_ms(cfg, "train.max_time") / 1000.0;
    const char *export_path = config_str(cfg, "export"), *tok_path = config_str(cfg, "tokenizer");
    if (tok_path && !(tok = gguf_open(tok_path, err, sizeof err))) {
        fprintf(stderr, "aistack train: %s\n", err);
        goto out;
    }
    char train_path[4096], val_path[4096];
    if (!(o.data = prepare_data(o.data, tok, o.out_dir, "train", train_path, sizeof train_path, err,
                                sizeof err)) ||
        (o.val_data && !(o.val_data = prepare_data(o.val_data, tok, o.out_dir, "val", val_path,
                                                   sizeof val_path, err, sizeof err)))) {
        fprintf(stderr, "aistack train: %s\n", err);
        goto out;
    }
    mc->vocab = (int)config_int(cfg, "model.vocab");
    if (!mc->vocab) {
        struct dataset d;
        if (dataset_open(&d, o.data, err, sizeof err)) {
            fprintf(stderr, "aistack train: %s\n", err);
            goto out;
        }
        mc->vocab = (int)d.vocab;
        dataset_close(&d);
    }
    struct train_result res;
    if (train_run(&o, &m, &res, err, sizeof err)) {
        fprintf(stderr, "aistack train: %s\n", err);
        goto out;
    }
    fprintf(stderr, "done: %lld steps in %.1fs, %.0f tokens/s, MFU %.1f%%",
            (long long)res.steps_done, res.seconds, res.tokens_per_s, 100 * res.mfu);
    if (!isnan(res.val_loss))
        fprintf(stderr, ", val loss %.4f", (double)res.val_loss);
    fprintf(stderr, "\n");
    if (export_path) {
        if (ckpt_export_gguf(export_path, m, tok, "aistack-trained",
                             config_str(cfg, "chat_template"), 0, err, sizeof err)) {
            fprintf(stderr, "aistack train: %s\n", err);
            goto out;
        }
        fprintf(stderr, "exported %s\n", export_path);
    }
    rc = 0;
out:
    tm_free(m);
    gguf_close(tok);
    config_free(cfg);
    buf_free(&msg);
    return rc;
}
