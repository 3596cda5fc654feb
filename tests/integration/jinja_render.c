/*
 * jinja_render.c - test driver for the Jinja interpreter (src/engine/jinja.h).
 *
 *   jinja_render TEMPLATE.jinja CONTEXT.json [--now EPOCH] [--repeat N]
 *   jinja_render --batch LIST.tsv [--now EPOCH]
 *
 * Renders the template with the JSON object as variables and writes the
 * output to stdout. On a template error it prints "error: line N: MSG" to
 * stderr and exits 2 when the template called raise_exception(), 1
 * otherwise (3 for usage or I/O problems). --repeat N renders N times and
 * prints the mean CPU time per render in microseconds to stderr (benchmarking).
 * --batch renders every line "TEMPLATE<TAB>CONTEXT<TAB>PREFIX" of LIST.tsv in
 * this one process, writing PREFIX.c.out (the output), PREFIX.c.err (the
 * error line) and PREFIX.c.rc (the exit code the single mode would give).
 * Used by tests/ref/test_chat_templates.sh; not part of any service.
 */
#include "core/buf.h"
#include "engine/jinja.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *data = NULL;
    size_t n = 0, cap = 0;
    if (!f)
        return NULL;
    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : 65536;
            if (cap > (64u << 20)) {
                free(data);
                data = NULL;
                break;
            }
            char *p = realloc(data, cap + 1);
            if (!p) {
                free(data);
                data = NULL;
                break;
            }
            data = p;
        }
        size_t r = fread(data + n, 1, cap - n, f);
        n += r;
        if (r == 0)
            break;
    }
    fclose(f);
    if (data) {
        data[n] = '\0';
        *len = n;
    }
    return data;
}

static int write_file(const char *prefix, const char *ext, const char *data, size_t n)
{
    char path[4096];
    if ((size_t)snprintf(path, sizeof(path), "%s%s", prefix, ext) >= sizeof(path))
        return -1;
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t w = fwrite(data, 1, n, f);
    return fclose(f) == 0 && w == n ? 0 : -1;
}

/* Renders one case of a batch; returns the exit code the single mode would give. */
static int batch_case(const char *tpath, const char *cpath, const char *prefix,
                      const struct jinja_opts *opts)
{
    char *tsrc = NULL, *csrc = NULL, msg[400];
    size_t tlen = 0, clen = 0;
    cJSON *ctx = NULL;
    struct jinja_template *t = NULL;
    struct jinja_error err;
    struct buf out;
    int rc = 3;
    buf_init(&out, 64u << 20);
    msg[0] = '\0';
    if (!(tsrc = read_file(tpath, &tlen)) || !(csrc = read_file(cpath, &clen)) ||
        !(ctx = cJSON_ParseWithLength(csrc, clen))) {
        snprintf(msg, sizeof(msg), "cannot read %s or %s\n", tpath, cpath);
    } else if (!(t = jinja_template_parse(tsrc, tlen, &err))) {
        snprintf(msg, sizeof(msg), "error: line %d: %s\n", err.line, err.msg);
        rc = 1;
    } else if (jinja_render(t, ctx, opts, &out, &err)) {
        snprintf(msg, sizeof(msg), "error: line %d: %s\n", err.line, err.msg);
        rc = err.raised ? 2 : 1;
    } else {
        rc = 0;
    }
    char rcs[8];
    int n = snprintf(rcs, sizeof(rcs), "%d\n", rc);
    if (write_file(prefix, ".c.out", out.data ? out.data : "", rc == 0 ? out.len : 0) ||
        write_file(prefix, ".c.err", msg, strlen(msg)) ||
        write_file(prefix, ".c.rc", rcs, (size_t)n))
        rc = 3;
    jinja_template_free(t);
    cJSON_Delete(ctx);
    free(tsrc);
    free(csrc);
    buf_free(&out);
    return rc;
}

static int run_batch(const char *list, const struct jinja_opts *opts)
{
    size_t len = 0;
    char *data = read_file(list, &len), *save = NULL;
    int cases = 0, bad = 0;
    if (!data) {
        fprintf(stderr, "cannot read %s\n", list);
        return 3;
    }
    for (char *line = strtok_r(data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *t1 = strchr(line, '\t'), *t2 = t1 ? strchr(t1 + 1, '\t') : NULL;
        if (!t1 || !t2) {
            fprintf(stderr, "bad batch line: %s\n", line);
            bad++;
            continue;
        }
        *t1 = *t2 = '\0';
        if (batch_case(line, t1 + 1, t2 + 1, opts) == 3)
            bad++;
        cases++;
    }
    free(data);
    fprintf(stderr, "batch: %d cases, %d I/O problems\n", cases, bad);
    return bad ? 3 : 0;
}

int main(int argc, char **argv)
{
    const char *tpath = NULL, *cpath = NULL, *batch = NULL;
    struct jinja_opts opts = {0};
    long repeat = 0;
    int rc = 3;
    char *tsrc = NULL, *csrc = NULL;
    cJSON *ctx = NULL;
    struct jinja_template *t = NULL;
    struct jinja_error err;
    struct buf out;
    size_t tlen = 0, clen = 0;
    buf_init(&out, 64u << 20);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--now") == 0 && i + 1 < argc)
            opts.now = strtoll(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--repeat") == 0 && i + 1 < argc)
            repeat = strtol(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--batch") == 0 && i + 1 < argc)
            batch = argv[++i];
        else if (!tpath)
            tpath = argv[i];
        else if (!cpath)
            cpath = argv[i];
        else
            goto usage;
    }
    if (batch && !tpath) {
        rc = run_batch(batch, &opts);
        goto out;
    }
    if (!tpath || !cpath)
        goto usage;
    if (!(tsrc = read_file(tpath, &tlen)) || !(csrc = read_file(cpath, &clen))) {
        fprintf(stderr, "cannot read %s\n", tsrc ? cpath : tpath);
        goto out;
    }
    if (!(ctx = cJSON_ParseWithLength(csrc, clen))) {
        fprintf(stderr, "context is not valid JSON\n");
        goto out;
    }
    if (!(t = jinja_template_parse(tsrc, tlen, &err))) {
        fprintf(stderr, "error: line %d: %s\n", err.line, err.msg);
        rc = 1;
        goto out;
    }
    int r = jinja_render(t, ctx, &opts, &out, &err);
    if (r) {
        fprintf(stderr, "error: line %d: %s\n", err.line, err.msg);
        rc = err.raised ? 2 : 1;
        goto out;
    }
    fwrite(out.data ? out.data : "", 1, out.len, stdout);
    if (repeat > 0) {
        struct timespec a, b;
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &a);
        for (long i = 0; i < repeat; i++) {
            buf_reset(&out);
            if (jinja_render(t, ctx, &opts, &out, &err))
                break;
        }
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &b);
        double us = ((double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec)) / 1e3 /
                    (double)repeat;
        fprintf(stderr, "render: %.2f us/iteration (%ld iterations, %zu bytes)\n", us, repeat,
                out.len);
    }
    rc = 0;
    goto out;
usage:
    fprintf(stderr, "usage: jinja_render TEMPLATE CONTEXT.json [--now EPOCH] [--repeat N]\n"
                    "       jinja_render --batch LIST.tsv [--now EPOCH]\n");
out:
    jinja_template_free(t);
    cJSON_Delete(ctx);
    free(tsrc);
    free(csrc);
    buf_free(&out);
    return rc;
}
