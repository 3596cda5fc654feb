/* log.c - logfmt lines on stderr (see log.h). */
#include "core/log.h"
#include "core/buf.h"
#include "core/err.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

static _Atomic int g_level = LOG_INFO;
static const char *g_service;

static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};

void log_set_level(enum log_level level)
{
    atomic_store(&g_level, (int)level);
}

enum log_level log_get_level(void)
{
    return (enum log_level)atomic_load(&g_level);
}

int log_parse_level(const char *s, enum log_level *out)
{
    for (int i = 0; i <= LOG_OFF; i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    if (strcmp(s, "warning") == 0) {
        *out = LOG_WARN;
        return 0;
    }
    return AS_EINVAL;
}

void log_set_service(const char *name)
{
    g_service = name;
}

static void line_start(char *line, size_t cap, size_t *len, enum log_level level)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, cap, "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000000, level_names[level]);
    *len = n > 0 ? (size_t)n : 0;
    if (g_service && *len < cap) {
        n = snprintf(line + *len, cap - *len, " svc=%s", g_service);
        *len += n > 0 ? (size_t)n : 0;
    }
}

/* Appends " key=" and a value quoted when it holds spaces, quotes or '='. */
static void append_value(char *line, size_t cap, size_t *len, const char *key, const char *v)
{
    if (*len >= cap)
        return;
    int quote = v[0] == '\0' || strpbrk(v, " \"=\t\n") != NULL;
    int n = snprintf(line + *len, cap - *len, " %s=%s", key, quote ? "\"" : "");
    *len += n > 0 ? (size_t)n : 0;
    for (const char *p = v; *p && *len + 3 < cap; p++) {
        if (quote && (*p == '"' || *p == '\\'))
            line[(*len)++] = '\\';
        line[(*len)++] = (*p == '\n' || *p == '\t') ? ' ' : *p;
    }
    if (quote && *len + 1 < cap)
        line[(*len)++] = '"';
    if (*len >= cap)
        *len = cap - 1;
    line[*len] = '\0';
}

static void line_end(char *line, size_t cap, size_t len)
{
    if (len >= cap - 1)
        len = cap - 2;
    line[len++] = '\n';
    /* one write keeps concurrent lines whole */
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}

void log_msg(enum log_level level, const char *msg, const char *fmt, ...)
{
    if ((int)level < atomic_load(&g_level))
        return;
    char line[2048];
    size_t len;
    line_start(line, sizeof line, &len, level);
    append_value(line, sizeof line, &len, "msg", msg);
    if (fmt && len < sizeof line - 2) {
        va_list ap;
        va_start(ap, fmt);
        line[len++] = ' ';
        int n = vsnprintf(line + len, sizeof line - len, fmt, ap);
        va_end(ap);
        if (n > 0)
            len += (size_t)n;
        if (len >= sizeof line)
            len = sizeof line - 1;
    }
    line_end(line, sizeof line, len);
}

void log_request(const struct log_request *r)
{
    if (LOG_INFO < atomic_load(&g_level))
        return;
    char line[2048];
    size_t len;
    char num[64];
    line_start(line, sizeof line, &len, LOG_INFO);
    append_value(line, sizeof line, &len, "msg", "request");
    append_value(line, sizeof line, &len, "request_id", r->request_id ? r->request_id : "-");
    append_value(line, sizeof line, &len, "method", r->method ? r->method : "-");
    append_value(line, sizeof line, &len, "path", r->path ? r->path : "-");
    snprintf(num, sizeof num, "%d", r->status);
    append_value(line, sizeof line, &len, "status", num);
    snprintf(num, sizeof num, "%llu", (unsigned long long)r->bytes);
    append_value(line, sizeof line, &len, "bytes", num);
    snprintf(num, sizeof num, "%.3f", r->duration_ms);
    append_value(line, sizeof line, &len, "duration_ms", num);
    if (r->remote)
        append_value(line, sizeof line, &len, "remote", r->remote);
    line_end(line, sizeof line, len);
}

void log_new_request_id(char out[33])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char rnd[16];
    if (getrandom(rnd, sizeof rnd, GRND_NONBLOCK) != (ssize_t)sizeof rnd) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        static _Atomic unsigned long ctr;
        unsigned long c = atomic_fetch_add(&ctr, 1);
        memcpy(rnd, &ts, sizeof rnd < sizeof ts ? sizeof rnd : sizeof ts);
        memcpy(rnd + 8, &c, sizeof c);
    }
    for (int i = 0; i < 16; i++) {
        out[2 * i] = hex[rnd[i] >> 4];
        out[2 * i + 1] = hex[rnd[i] & 15];
    }
    out[32] = '\0';
}
