/*
 * jinja.h - a Jinja2 template interpreter for Hugging Face chat templates.
 *
 * Renders a model's `tokenizer.chat_template` the way transformers does:
 * jinja2 with trim_blocks=True, lstrip_blocks=True, the loopcontrols
 * extension (break/continue), the immutable sandbox (no list/dict mutation
 * from templates), a `raise_exception(msg)` global, a `strftime_now(fmt)`
 * global and a `tojson` filter that is json.dumps(ensure_ascii=False, indent=,
 * separators=, sort_keys=). Output is byte-identical to Python's jinja2 for
 * the language subset real chat templates use (statements: if/elif/else,
 * for (else, `if` filter, loop.*), set (also block set and namespace
 * attributes), macro, call, filter, with, break/continue, raw, generation; the full
 * expression grammar; the common filters, tests and str/dict methods).
 *
 * Not for: general-purpose Jinja (no include/extends/import, recursive loops,
 * autoescape or arbitrary Python objects). Known differences from Python:
 * context values come from cJSON, so a JSON number is an int when it is
 * integral (Python keeps 1.0 a float); integers are 64-bit (overflow is an
 * error, not a bigint); printing a generator or a bound method shows no
 * address; upper/lower/title cover Latin, Greek and Cyrillic only.
 *
 * A parsed template is immutable: any number of threads may render the same
 * template at once. Each render uses its own arena freed before returning.
 * Every render is bounded (output bytes, memory, work units, recursion depth),
 * so hostile templates and contexts fail with an error instead of hanging.
 */
#ifndef AISTACK_ENGINE_JINJA_H
#define AISTACK_ENGINE_JINJA_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "core/buf.h"

struct jinja_template;

/* Why a parse or render failed. */
struct jinja_error {
    int line;      /* 1-based template line of the failing construct; 0 if unknown */
    int raised;    /* 1 when the template itself called raise_exception(msg) */
    char msg[256]; /* NUL-terminated message; for raise_exception, its message
                      (truncated to 255 bytes, NULs shown as '?') */
};

/* Render limits and overrides; zero fields take the defaults shown. */
struct jinja_opts {
    int64_t now;       /* Unix time strftime_now() formats (local time); 0 = time(NULL) */
    size_t max_output; /* output bytes (default 4 MiB; the out buf's own max also applies) */
    size_t max_memory; /* interpreter arena bytes (default 64 MiB) */
    uint64_t max_work; /* work units: nodes evaluated, iterations, bytes/64 (default 50M) */
    int max_depth;     /* macro call depth (default 64) */
};

/*
 * Parses template source src[0..len). Returns a template (free with
 * jinja_template_free) or NULL with err filled in (syntax error with line,
 * or out of memory). src is copied; it need not outlive the call.
 */
struct jinja_template *jinja_template_parse(const char *src, size_t len, struct jinja_error *err);

/* Frees a template. Accepts NULL. */
void jinja_template_free(struct jinja_template *t);

/*
 * Renders t with the variables of the JSON object ctx (may be NULL: no
 * variables) and appends the text to out. opts may be NULL for defaults.
 * Returns 0, or a negative AS_E* code with err filled in: AS_EINVAL for a
 * template error (undefined variable misuse, type error, raise_exception:
 * err->raised says which), AS_ERANGE when a limit was hit, AS_ENOMEM when
 * out is full or allocation failed. On error out may hold partial output.
 */
int jinja_render(const struct jinja_template *t, const cJSON *ctx, const struct jinja_opts *opts,
                 struct buf *out, struct jinja_error *err);

#endif
