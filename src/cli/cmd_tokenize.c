/*
 * cmd_tokenize.c - `aistack tokenize` and `aistack detokenize`.
 *
 *   aistack tokenize -m model.gguf [--no-bos] [--no-parse-special] "text"
 *       prints the token ids, space-separated, on one line (text "-" or none: stdin)
 *   aistack detokenize -m model.gguf [--special] ID...
 *       prints the text of the ids and a newline; control tokens (BOS, EOS, ...)
 *       are left out unless --special
 *
 * Scripts rely on these exact forms. Only the GGUF's tokenizer metadata is
 * read. Not for: chat templates, generation.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/buf.h"
#include "engine/gguf.h"
#include "engine/tokenizer.h"

#define MAX_INPUT (64u << 20)

static struct tokenizer *open_tokenizer(const char *path)
{
    char err[512];
    struct gguf_file *f = gguf_open(path, err, sizeof err);
    if (!f) {
        fprintf(stderr, "aistack: %s\n", err);
        return NULL;
    }
    struct tokenizer *t = tok_new_from_gguf(f, err, sizeof err);
    gguf_close(f);
    if (!t)
        fprintf(stderr, "aistack: %s: %s\n", path, err);
    return t;
}

static int read_stdin(struct buf *b)
{
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, stdin)) > 0)
        if (buf_append(b, chunk, n)) {
            fprintf(stderr, "aistack: input larger than %u bytes\n", MAX_INPUT);
            return -1;
        }
    return ferror(stdin) ? -1 : 0;
}

static void tokenize_usage(FILE *f)
{
    fprintf(f, "usage: aistack tokenize -m model.gguf [--no-bos] [--no-parse-special] "
               "[TEXT | -]\n"
               "prints the token ids of TEXT (or stdin) space-separated on one line\n");
}

int cmd_tokenize(int argc, char **argv)
{
    const char *model = NULL;
    int no_bos = 0, parse_special = 1, rc = 1;
    struct buf text;
    struct tok_ids ids;
    struct tokenizer *t = NULL;
    int have_text = 0;
    buf_init(&text, MAX_INPUT);
    tok_ids_init(&ids, 0);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if ((!strcmp(a, "-m") || !strcmp(a, "--model")) && i + 1 < argc) {
            model = argv[++i];
        } else if (!strcmp(a, "--no-bos")) {
            no_bos = 1;
        } else if (!strcmp(a, "--no-parse-special")) {
            parse_special = 0;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            tokenize_usage(stdout);
            rc = 0;
            goto out;
        } else if (!strcmp(a, "-")) {
            if (read_stdin(&text))
                goto out;
            have_text = 1;
        } else if (a[0] == '-' && a[1] && !have_text) {
            fprintf(stderr, "aistack tokenize: unknown option '%s'\n", a);
            tokenize_usage(stderr);
            rc = 2;
            goto out;
        } else {
            if ((have_text && buf_append_char(&text, ' ')) || buf_append_cstr(&text, a)) {
                fprintf(stderr, "aistack tokenize: text too long\n");
                goto out;
            }
            have_text = 1;
        }
    }
    if (!model) {
        tokenize_usage(stderr);
        rc = 2;
        goto out;
    }
    if (!have_text && read_stdin(&text))
        goto out;
    if (!(t = open_tokenizer(model)))
        goto out;
    unsigned flags = TOK_ENCODE_ADD_SPECIAL | (parse_special ? TOK_ENCODE_PARSE_SPECIAL : 0);
    if (tok_encode(t, text.data ? text.data : "", text.len, flags, &ids)) {
        fprintf(stderr, "aistack tokenize: out of memory\n");
        goto out;
    }
    size_t start = 0;
    if (no_bos && tok_add_bos(t) && ids.n > 0 && ids.ids[0] == tok_bos(t))
        start = 1;
    for (size_t i = start; i < ids.n; i++)
        printf(i > start ? " %d" : "%d", ids.ids[i]);
    printf("\n");
    rc = fflush(stdout) ? 1 : 0;
out:
    tok_free(t);
    tok_ids_free(&ids);
    buf_free(&text);
    return rc;
}

static void detokenize_usage(FILE *f)
{
    fprintf(f, "usage: aistack detokenize -m model.gguf [--special] ID...\n"
               "prints the text of the token ids (separated by spaces or commas);\n"
               "--special also prints control tokens such as BOS/EOS\n");
}

/* Parses the ids of one argument ("12", "12 13", "12,13"). */
static int parse_ids(const char *s, const struct tokenizer *t, struct tok_ids *ids)
{
    while (*s) {
        if (*s == ' ' || *s == ',' || *s == '\t' || *s == '\n') {
            s++;
            continue;
        }
        char *end;
        errno = 0;
        long v = strtol(s, &end, 10);
        if (end == s || errno || v < 0 || (unsigned long)v >= tok_n_vocab(t)) {
            fprintf(stderr, "aistack detokenize: bad token id '%s'\n", s);
            return -1;
        }
        if (tok_ids_push(ids, (int32_t)v))
            return -1;
        s = end;
    }
    return 0;
}

int cmd_detokenize(int argc, char **argv)
{
    const char *model = NULL;
    int rc = 1, first_id = -1, special = 0;
    struct tokenizer *t = NULL;
    struct tok_ids ids;
    struct buf out;
    tok_ids_init(&ids, 1u << 24);
    buf_init(&out, 1u << 30);
    for (int i = 1; i < argc; i++) {
        if ((!strcmp(argv[i], "-m") || !strcmp(argv[i], "--model")) && i + 1 < argc) {
            model = argv[++i];
        } else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            detokenize_usage(stdout);
            rc = 0;
            goto out;
        } else if (!strcmp(argv[i], "--special")) {
            special = 1;
        } else if (argv[i][0] == '-') {
            fprintf(stderr, "aistack detokenize: unknown option '%s'\n", argv[i]);
            detokenize_usage(stderr);
            rc = 2;
            goto out;
        } else {
            if (first_id < 0)
                first_id = i;
        }
    }
    if (!model) {
        detokenize_usage(stderr);
        rc = 2;
        goto out;
    }
    if (!(t = open_tokenizer(model)))
        goto out;
    for (int i = first_id < 0 ? argc : first_id; i < argc; i++) {
        if (!strcmp(argv[i], "-m") || !strcmp(argv[i], "--model")) {
            i++;
            continue;
        }
        if (!strcmp(argv[i], "--special"))
            continue;
        if (parse_ids(argv[i], t, &ids))
            goto out;
    }
    unsigned flags = TOK_DECODE_STRIP_SPACE | (special ? TOK_DECODE_SPECIAL : 0);
    if (tok_decode(t, ids.ids, ids.n, flags, &out)) {
        fprintf(stderr, "aistack detokenize: out of memory\n");
        goto out;
    }
    if (out.len)
        fwrite(out.data, 1, out.len, stdout);
    fputc('\n', stdout);
    rc = fflush(stdout) ? 1 : 0;
out:
    tok_free(t);
    tok_ids_free(&ids);
    buf_free(&out);
    return rc;
}
