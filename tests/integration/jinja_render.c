/*
 * jinja_render.c - test driver for the Jinja interpreter (src/engine/jinja.h).
 *
 *   jinja_render TEMPLATE.jinja CONTEXT.json [--now EPOCH] [--repeat N]
 *
 * Renders the template with the JSON object as variables and writes the
 * output to stdout. On a template error it prints "error: line N: MSG" to
 * stderr and exits 2 when the template called raise_exception(), 1
 * otherwise (3 for usage or I/O problems). --repeat N renders N times and
 * prints the mean CPU time per render in microseconds to stderr (benchmarking).
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

int main(int argc, char **argv)
{
    const char *tpath = NULL, *cpath = NULL;
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
        else if (!tpath)
            tpath = argv[i];
        else if (!cpath)
            cpath = argv[i];
        else
            goto usage;
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
    fprintf(stderr, "usage: jinja_render TEMPLATE CONTEXT.json [--now EPOCH] [--repeat N]\n");
out:
    jinja_template_free(t);
    cJSON_Delete(ctx);
    free(tsrc);
    free(csrc);
    buf_free(&out);
    return rc;
}
