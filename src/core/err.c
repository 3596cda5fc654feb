/* err.c - error names and the OpenAI error body (see err.h). */
#include "core/err.h"
#include "core/buf.h"

const char *as_strerror(int err)
{
    switch (err) {
    case AS_OK:
        return "success";
    case AS_ENOMEM:
        return "out of memory";
    case AS_EINVAL:
        return "invalid argument";
    case AS_EIO:
        return "i/o error";
    case AS_ENOENT:
        return "not found";
    case AS_ERANGE:
        return "out of range";
    case AS_ETIMEDOUT:
        return "timed out";
    case AS_EAGAIN:
        return "try again";
    case AS_ECLOSED:
        return "closed";
    case AS_EUNSUP:
        return "unsupported";
    case AS_EFORMAT:
        return "bad format";
    case AS_EPERM:
        return "permission denied";
    }
    return "unknown error";
}

const char *as_error_type_for_status(int status)
{
    switch (status) {
    case 401:
        return "authentication_error";
    case 403:
        return "permission_error";
    case 404:
        return "not_found_error";
    case 408:
        return "timeout_error";
    case 409:
        return "conflict_error";
    case 413:
        return "invalid_request_error";
    case 429:
        return "rate_limit_error";
    case 503:
        return "service_unavailable_error";
    }
    if (status >= 500)
        return "server_error";
    return "invalid_request_error";
}

static int append_str_or_null(struct buf *b, const char *s)
{
    if (!s)
        return buf_append(b, "null", 4);
    return buf_append_json_str(b, s, strlen(s));
}

int as_error_body(struct buf *b, const char *message, const char *type, const char *param,
                  const char *code)
{
    int rc = 0;
    rc |= buf_append_cstr(b, "{\"error\":{\"message\":");
    rc |= append_str_or_null(b, message ? message : "");
    rc |= buf_append_cstr(b, ",\"type\":");
    rc |= append_str_or_null(b, type ? type : "invalid_request_error");
    rc |= buf_append_cstr(b, ",\"param\":");
    rc |= append_str_or_null(b, param);
    rc |= buf_append_cstr(b, ",\"code\":");
    rc |= append_str_or_null(b, code);
    rc |= buf_append_cstr(b, "}}");
    return rc ? AS_ENOMEM : 0;
}
