/*
 * dump_logits.c - test harness: runs the engine over token sequences and
 * writes the logits of every position, for tests/ref/ to compare with the
 * PyTorch reference.
 *
 *   dump_logits -m model.gguf [--threads N] [--kv-f32] [--chunk C] [--scalar] -o out.f32 SEQ...
 *   dump_logits -m model.gguf --greedy N TOKENS   (prints N greedy token ids)
 *
 * SEQ is "t0,t1,...:P": the first P tokens are the prompt, fed in chunks of C
 * (default: all at once); the rest are fed one per decode step. All sequences
 * run together: each batch holds one prompt chunk, or one decode token, of
 * every sequence that has tokens left, so several sequences share each pass.
 * The output is, sequence after sequence, (n_tokens, n_vocab) float32.
 * Not for: production use.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "engine/kernels.h"
#include "engine/kvcache.h"
#include "engine/model.h"

#define MAX_SEQS 16

struct seq {
    int32_t *tok;
    uint32_t n, n_prompt, done;
    int id;
    float *logits;
};

static int parse_seq(const char *s, struct seq *q)
{
    size_t cap = strlen(s) / 2 + 2;
    q->tok = malloc(cap * sizeof *q->tok);
    if (!q->tok)
        return -1;
    const char *p = s;
    q->n = 0;
    q->n_prompt = 0;
    while (*p && *p != ':') {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || q->n >= cap)
            return -1;
        q->tok[q->n++] = (int32_t)v;
        p = *end == ',' ? end + 1 : end;
    }
    q->n_prompt = q->n;
    if (*p == ':')
        q->n_prompt = (uint32_t)strtoul(p + 1, NULL, 10);
    if (q->n == 0 || q->n_prompt == 0 || q->n_prompt > q->n)
        return -1;
    return 0;
}

/* Greedy continuation of one sequence: the argmax (lowest id on ties) each step. */
static int run_greedy(const char *path, const struct seq *q, uint32_t n, uint32_t threads)
{
    char err[256];
    struct model *m = model_load(path, NULL, err, sizeof err);
    if (!m) {
        fprintf(stderr, "dump_logits: %s\n", err);
        return 1;
    }
    struct model_ctx_params cp = {.n_threads = threads, .max_batch = q->n, .max_seqs = 1};
    struct model_ctx *ctx = model_ctx_new(m, &cp, err, sizeof err);
    struct model_batch b;
    if (!ctx || model_batch_init(&b, q->n)) {
        fprintf(stderr, "dump_logits: %s\n", ctx ? "out of memory" : err);
        return 1;
    }
    int seq = kv_seq_alloc(model_ctx_kv(ctx));
    uint32_t n_vocab = model_get_hparams(m)->n_vocab, pos = 0;
    for (uint32_t i = 0; i < q->n; i++)
        model_batch_add(&b, q->tok[i], seq, pos++, i == q->n - 1);
    for (uint32_t step = 0; step < n; step++) {
        int rc = model_forward(ctx, &b);
        if (rc) {
            fprintf(stderr, "dump_logits: forward: %s\n", as_strerror(rc));
            return 1;
        }
        const float *l = model_logits(ctx, b.n - 1);
        int32_t best = 0;
        for (uint32_t v = 1; v < n_vocab; v++)
            if (l[v] > l[best])
                best = (int32_t)v;
        printf("%s%d", step ? " " : "", best);
        model_batch_clear(&b);
        model_batch_add(&b, best, seq, pos++, 1);
    }
    printf("\n");
    model_batch_free(&b);
    model_ctx_free(ctx);
    model_free(m);
    return 0;
}

int main(int argc, char **argv)
{
    const char *path = NULL, *out = NULL;
    struct model_ctx_params cp = {0};
    uint32_t chunk = 0, greedy = 0;
    struct seq seqs[MAX_SEQS];
    int n_seqs = 0;
    memset(seqs, 0, sizeof seqs);
    cp.n_threads = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-m") && i + 1 < argc)
            path = argv[++i];
        else if (!strcmp(argv[i], "-o") && i + 1 < argc)
            out = argv[++i];
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            cp.n_threads = (uint32_t)strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--chunk") && i + 1 < argc)
            chunk = (uint32_t)strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--greedy") && i + 1 < argc)
            greedy = (uint32_t)strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--scalar"))
            kern_isa_set(KERN_ISA_SCALAR); /* reference kernels everywhere */
        else if (!strcmp(argv[i], "--kv-f32"))
            cp.kv_f32 = 1;
        else if (n_seqs < MAX_SEQS && parse_seq(argv[i], &seqs[n_seqs]) == 0)
            n_seqs++;
        else {
            fprintf(stderr, "dump_logits: bad argument '%s'\n", argv[i]);
            return 2;
        }
    }
    if (greedy && n_seqs == 1 && path) {
        int rc = run_greedy(path, &seqs[0], greedy, cp.n_threads);
        free(seqs[0].tok);
        return rc;
    }
    if (!path || !out || n_seqs == 0) {
        fprintf(stderr, "usage: dump_logits -m model.gguf -o out.f32 [--threads N] [--kv-f32] "
                        "[--chunk C] TOKENS:N_PROMPT...\n");
        return 2;
    }
    char err[256];
    struct model *m = model_load(path, NULL, err, sizeof err);
    if (!m) {
        fprintf(stderr, "dump_logits: %s\n", err);
        return 1;
    }
    uint32_t n_vocab = model_get_hparams(m)->n_vocab, total = 0, max_len = 0;
    for (int s = 0; s < n_seqs; s++) {
        total += seqs[s].n;
        max_len = seqs[s].n > max_len ? seqs[s].n : max_len;
    }
    cp.max_batch = total;
    cp.max_logits = total;
    cp.max_seqs = (uint32_t)n_seqs;
    cp.n_ctx = max_len;
    struct model_ctx *ctx = model_ctx_new(m, &cp, err, sizeof err);
    if (!ctx) {
        fprintf(stderr, "dump_logits: %s\n", err);
        return 1;
    }
    struct kv_cache *kv = model_ctx_kv(ctx);
    for (int s = 0; s < n_seqs; s++) {
        seqs[s].id = kv_seq_alloc(kv);
        seqs[s].logits = malloc((size_t)seqs[s].n * n_vocab * sizeof(float));
        if (seqs[s].id < 0 || !seqs[s].logits) {
            fprintf(stderr, "dump_logits: out of memory\n");
            return 1;
        }
    }
    struct model_batch b;
    if (model_batch_init(&b, total))
        return 1;
    for (;;) {
        model_batch_clear(&b);
        for (int s = 0; s < n_seqs; s++) {
            struct seq *q = &seqs[s];
            uint32_t take = q->done < q->n_prompt ? q->n_prompt - q->done : 1;
            if (q->done < q->n_prompt && chunk && take > chunk)
                take = chunk;
            for (uint32_t i = 0; i < take && q->done + i < q->n; i++)
                model_batch_add(&b, q->tok[q->done + i], q->id, q->done + i, 1);
        }
        if (b.n == 0)
            break;
        int rc = model_forward(ctx, &b);
        if (rc) {
            fprintf(stderr, "dump_logits: forward: %s\n", as_strerror(rc));
            return 1;
        }
        for (uint32_t i = 0; i < b.n; i++) {
            struct seq *q = NULL;
            for (int s = 0; s < n_seqs; s++)
                if (seqs[s].id == b.t[i].seq)
                    q = &seqs[s];
            const float *l = model_logits(ctx, i);
            if (!q || !l) {
                fprintf(stderr, "dump_logits: missing logits\n");
                return 1;
            }
            memcpy(q->logits + (size_t)b.t[i].pos * n_vocab, l, n_vocab * sizeof(float));
            q->done = b.t[i].pos + 1;
        }
    }
    FILE *f = fopen(out, "wb");
    if (!f) {
        perror(out);
        return 1;
    }
    for (int s = 0; s < n_seqs; s++) {
        fwrite(seqs[s].logits, sizeof(float), (size_t)seqs[s].n * n_vocab, f);
        free(seqs[s].logits);
        free(seqs[s].tok);
    }
    if (fclose(f)) {
        perror(out);
        return 1;
    }
    model_batch_free(&b);
    model_ctx_free(ctx);
    model_free(m);
    return 0;
}
