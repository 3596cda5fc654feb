/*
 * log.h - structured logging to stderr.
 *
 * One line per event: "ts=2026-11-26T20:18:00.123Z level=info msg=..." in
 * logfmt, so that both people and log shippers can read it. Thread-safe: each
 * line is written with one write(2). Not for: metrics (see metrics.h).
 */
#ifndef AISTACK_CORE_LOG_H
#define AISTACK_CORE_LOG_H

#include <stddef.h>
#include <stdint.h>

enum log_level { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3, LOG_OFF = 4 };

/* Sets the minimum level written (default LOG_INFO). */
void log_set_level(enum log_level level);
/* Parses "debug", "info", "warn", "error", "off". Returns 0 or AS_EINVAL. */
int log_parse_level(const char *s, enum log_level *out);
enum log_level log_get_level(void);
/* Sets the service name written as svc=NAME on every line (borrowed, must outlive logging). */
void log_set_service(const char *name);
/* Writes "msg" plus optional logfmt key=value pairs formatted by fmt (may be NULL). */
void log_msg(enum log_level level, const char *msg, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_debug(msg, ...) log_msg(LOG_DEBUG, msg, __VA_ARGS__)
#define log_info(msg, ...)  log_msg(LOG_INFO, msg, __VA_ARGS__)
#define log_warn(msg, ...)  log_msg(LOG_WARN, msg, __VA_ARGS__)
#define log_error(msg, ...) log_msg(LOG_ERROR, msg, __VA_ARGS__)

/* One line per HTTP request (level info). */
struct log_request {
    const char *request_id;
    const char *method;
    const char *path;
    int status;
    uint64_t bytes; /* response body bytes sent */
    double duration_ms;
    const char *remote; /* peer address, may be NULL */
};
void log_request(const struct log_request *r);

/* Writes a new random request id (32 hex chars + NUL) into out[33]. */
void log_new_request_id(char out[33]);

#endif
