/*
 * err.h - the project's error codes and the OpenAI error body.
 *
 * Functions that can fail return int: 0 on success, a negative AS_E* code on
 * failure. as_strerror() names the code. Not for: HTTP status mapping of
 * service-specific errors (services choose their own status codes).
 */
#ifndef AISTACK_CORE_ERR_H
#define AISTACK_CORE_ERR_H

#include <stddef.h>

enum as_err {
    AS_OK = 0,
    AS_ENOMEM = -1,    /* allocation failed or a buffer hit its maximum */
    AS_EINVAL = -2,    /* invalid argument or malformed input */
    AS_EIO = -3,       /* I/O error (see errno) */
    AS_ENOENT = -4,    /* not found */
    AS_ERANGE = -5,    /* value out of range / size limit exceeded */
    AS_ETIMEDOUT = -6, /* deadline passed */
    AS_EAGAIN = -7,    /* try again later (queue full, would block) */
    AS_ECLOSED = -8,   /* peer or object closed */
    AS_EUNSUP = -9,    /* unsupported feature, type or architecture */
    AS_EFORMAT = -10,  /* file format error */
    AS_EPERM = -11,    /* not allowed (auth) */
};

/* Name of an AS_E* code, e.g. "out of memory". Never NULL. */
const char *as_strerror(int err);

struct buf;

/*
 * Appends the OpenAI error body
 *   {"error":{"message":...,"type":...,"param":...,"code":...}}
 * to b. param and code may be NULL (written as JSON null). Returns 0 or AS_ENOMEM.
 */
int as_error_body(struct buf *b, const char *message, const char *type, const char *param,
                  const char *code);

/* The OpenAI error "type" conventionally used for an HTTP status. */
const char *as_error_type_for_status(int status);

#endif
