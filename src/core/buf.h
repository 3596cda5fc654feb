/*
 * buf.h - growable byte buffer with a hard maximum (like curl's dynbuf).
 *
 * Every append fails cleanly with AS_ENOMEM once the buffer would pass its
 * maximum, so outside input can never grow one without bound. The data is
 * always NUL-terminated (the NUL is not counted in len). Not thread-safe.
 */
#ifndef AISTACK_CORE_BUF_H
#define AISTACK_CORE_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include <string.h>

struct buf {
    char *data; /* owned; NULL until the first append */
    size_t len; /* bytes used, excluding the trailing NUL */
    size_t cap; /* bytes allocated */
    size_t max; /* maximum len; appends past it fail */
};

/* A string slice: pointer + length, not NUL-terminated, borrowed. */
struct str {
    const char *p;
    size_t len;
};

/* Initialises an empty buffer that may grow to max bytes. */
void buf_init(struct buf *b, size_t max);
/* Frees the storage; the buffer is empty and reusable afterwards. Accepts NULL. */
void buf_free(struct buf *b);
/* Empties the buffer, keeping its storage. */
void buf_reset(struct buf *b);
/* Ensures room for n more bytes. 0 or AS_ENOMEM. */
int buf_reserve(struct buf *b, size_t n);
int buf_append(struct buf *b, const void *p, size_t n);
int buf_append_cstr(struct buf *b, const char *s);
int buf_append_char(struct buf *b, char c);
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int buf_vprintf(struct buf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* Appends s as a JSON string literal, quotes included, escaping as RFC 8259 requires. */
int buf_append_json_str(struct buf *b, const char *s, size_t n);
/* Detaches and returns the data (caller frees); the buffer becomes empty. */
char *buf_steal(struct buf *b);

#endif
