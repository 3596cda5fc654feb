/*
 * cmd_tokenizer.c - `aistack tokenizer train`: learn a byte-level BPE
 * vocabulary from text files and write it as a GGUF holding tokenizer.*
 * metadata (loadable by the engine, and carried into models by
 * `aistack train --tokenizer`).
 */
#include "cli/cli.h"

#include "core/buf.h"
#include "core/config.h"
#include "engine/gguf.h"
#include "train/bpe_train.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const struct cfg_option tok_schema[] = {
    {.key = "input",
     .type = CFG_STRLIST,
     .help = "text files to learn from (comma-separated)",
     .alias = "i"},
    {.key = "output",
     .type = CFG_STRING,
     .def = "tokenizer.gguf",
     .help = "GGUF to write",
     .alias = "o"},
    {.key = "vocab_size",
     .type = CFG_INT,
     .def = "8192",
     .help = "target vocabulary size",
     .min = 260,
     .max = 1 << 20,
     .alias = "vocab"},
    {.key = "pre",
     .type = CFG_STRING,
     .def = "llama-bpe",
     .help = "pre-tokenizer (tokenizer.ggml.pre): llama-bpe, qwen2, gpt-2, ..."},
    {.key = "special",
     .type = CFG_STRLIST,
     .def = "<|endoftext|>,<|im_start|>,<|im_end|>",
     .help = "special tokens appended to the vocabulary"},
    {.key = "bos", .type = CFG_STRING, .help = "special token used as BOS (none by default)"},
    {.key = "eos", .type = CFG_STRING, .def = "<|endoftext|>", .help = "special token used as EOS"},
    CFG_END,
};

static void progress(uint32_t done, uint32_t total)
{
    fprintf(stderr, "\rmerges: %u/%u", done, total);
}

int cmd_tokenizer(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "train") != 0) {
        fprintf(stderr, "usage: aistack tokenizer train --input FILE[,FILE...] "
                        "[--vocab N] [--pre NAME] [-o OUT.gguf]\n");
        return argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) ? 0 : 2;
    }
    struct buf msg;
    struct config *cfg = NULL;
    struct bpe_trainer *b = NULL;
    struct gguf_writer *w = NULL;
    char err[512];
    int rc = 1;
    buf_init(&msg, 1 << 16);
    static char prog[] = "aistack tokenizer train";
    argv[1] = prog; /* the name --help shows */
    int lrc = config_load(tok_schema, argc - 1, argv + 1, &cfg, &msg);
    if (lrc) {
        fputs(msg.data ? msg.data : "bad configuration\n", lrc == CONFIG_HELP ? stdout : stderr);
        rc = lrc == CONFIG_HELP ? 0 : 2;
        goto out;
    }
    size_t n_in, n_sp;
    const char *const *in = config_strlist(cfg, "input", &n_in);
    const char *const *sp = config_strlist(cfg, "special", &n_sp);
    if (!n_in) {
        fprintf(stderr, "aistack tokenizer train: --input FILE is required\n");
        goto out;
    }
    if (!(b = bpe_new(config_str(cfg, "pre"), err, sizeof err))) {
        fprintf(stderr, "aistack tokenizer train: %s\n", err);
        goto out;
    }
    unsigned long long bytes = 0;
    for (size_t i = 0; i < n_in; i++) {
        FILE *f = fopen(in[i], "rb");
        if (!f) {
            fprintf(stderr, "aistack tokenizer train: %s: %s\n", in[i], strerror(errno));
            goto out;
        }
        /* line by line, so that no pre-token spans a read boundary */
        char line[65536];
        while (fgets(line, sizeof line, f)) {
            size_t n = strlen(line);
            bytes += n;
            if (bpe_add_text(b, line, n)) {
                fprintf(stderr, "aistack tokenizer train: out of memory\n");
                fclose(f);
                goto out;
            }
        }
        fclose(f);
    }
    fprintf(stderr, "read %llu bytes from %zu file(s)\n", bytes, n_in);
    if (bpe_train(b, (uint32_t)config_int(cfg, "vocab_size"), sp, (uint32_t)n_sp, progress)) {
        fprintf(stderr, "\naistack tokenizer train: training failed (vocab size too small?)\n");
        goto out;
    }
    fprintf(stderr, "\nvocabulary: %u tokens\n", bpe_vocab_size(b));
    const char *out_path = config_str(cfg, "output");
    if (!(w = gguf_writer_new()) ||
        bpe_write_gguf(b, w, config_str(cfg, "bos"), config_str(cfg, "eos"), NULL) ||
        gguf_writer_write(w, out_path)) {
        fprintf(stderr, "aistack tokenizer train: writing %s: %s\n", out_path,
                w ? gguf_writer_errmsg(w) : "out of memory");
        goto out;
    }
    fprintf(stderr, "wrote %s\n", out_path);
    rc = 0;
out:
    gguf_writer_free(w);
    bpe_free(b);
    config_free(cfg);
    buf_free(&msg);
    return rc;
}
