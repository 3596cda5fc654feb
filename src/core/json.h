/*
 * json.h - JSON for request bodies and responses: bounded parsing on cJSON,
 * typed getters with 400-ready messages, and a fast streaming writer.
 *
 * Parsing: json_parse() caps the input size and the nesting depth before cJSON
 * sees the bytes, so hostile bodies cannot recurse deeply or allocate without
 * bound. Getters name the offending key path in their message, e.g.
 * "'messages.0.role' must be a string", and fill the OpenAI error "param".
 *
 * Writing: struct json_writer appends to a struct buf with automatic commas,
 * escapes every control character and replaces invalid UTF-8 with U+FFFD, so
 * its output is always valid JSON and valid UTF-8, even when a streamed token
 * ends in the middle of a character. Errors are sticky: write a whole object,
 * then check json_writer_finish() once.
 *
 * Not for: pretty printing, JSON Schema validation, numbers beyond double.
 */
#ifndef AISTACK_CORE_JSON_H
#define AISTACK_CORE_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

struct buf;

/* Default caps for request bodies. */
#define JSON_DEFAULT_MAX_BYTES (16u << 20)
#define JSON_DEFAULT_MAX_DEPTH 64

/* Why parsing or a getter failed: a human message and the key path (OpenAI "param"). */
struct json_err {
    char msg[256];
    char param[128]; /* "" when not about one key */
};

/*
 * Parses len bytes (need not be NUL-terminated). Fails with a message if len >
 * max_bytes ("request body exceeds N bytes"), the nesting is deeper than
 * max_depth, the text is not JSON, or anything but whitespace follows the value.
 * Returns the tree (caller frees with cJSON_Delete) or NULL with err filled
 * (err may be NULL). max_bytes 0 / max_depth 0 mean the defaults above.
 */
cJSON *json_parse(const char *data, size_t len, size_t max_bytes, int max_depth,
                  struct json_err *err);

/*
 * Typed getters. path is a key or a dotted path of keys and array indexes
 * ("response_format.type", "messages.0.content") relative to obj. Each returns
 * 0 and sets *out, AS_ENOENT if the path is absent or null ("'x' is required"),
 * or AS_EINVAL if the value has the wrong type or range ("'x' must be ...").
 * err (may be NULL) is filled on every failure, so optional fields test for
 * AS_ENOENT and required ones just pass err on. Strings are borrowed from obj.
 */
int json_get_string(const cJSON *obj, const char *path, const char **out, struct json_err *err);
/* Integral number within [min, max]. */
int json_get_int(const cJSON *obj, const char *path, int64_t min, int64_t max, int64_t *out,
                 struct json_err *err);
/* Finite number within [min, max]. */
int json_get_double(const cJSON *obj, const char *path, double min, double max, double *out,
                    struct json_err *err);
int json_get_bool(const cJSON *obj, const char *path, bool *out, struct json_err *err);
int json_get_object(const cJSON *obj, const char *path, const cJSON **out, struct json_err *err);
int json_get_array(const cJSON *obj, const char *path, const cJSON **out, struct json_err *err);
/* The node at path whatever its type, or NULL (absent). JSON null is returned as a node. */
const cJSON *json_get(const cJSON *obj, const char *path);

/* Fills err with a printf-style message about path (path may be NULL). */
void json_err_set(struct json_err *err, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Formats v in the shortest form that strtod() reads back as exactly v
 * (integers without exponent or fraction up to 2^53). NaN and infinities are
 * written "NaN", "+Inf", "-Inf" (the Prometheus spelling; the writer emits null
 * instead). out must hold JSON_DOUBLE_MAX bytes. Returns the length.
 */
#define JSON_DOUBLE_MAX 32
size_t json_format_double(char out[JSON_DOUBLE_MAX], double v);

/*
 * Length of the longest prefix of s[0..n) that does not end inside an
 * incomplete (but so far valid) UTF-8 sequence. A streamer sends that prefix
 * and carries the rest over to the next token.
 */
size_t json_utf8_complete_len(const char *s, size_t n);

/* Internal: decimal digits of v written backwards ending at end; returns the first digit. */
char *json__u64_digits(uint64_t v, char *end);
/* Length (1-4) of the valid UTF-8 sequence starting at s, or 0 if invalid or truncated. */
size_t json_utf8_seq(const unsigned char *s, size_t n);

/* Max nesting the writer tracks (matches the default parse depth, so parsed trees can be written).
 */
#define JSON_WRITER_MAX_DEPTH 64

struct json_writer {
    struct buf *b;                            /* borrowed output */
    int err;                                  /* first error (sticky), 0 if none */
    int depth;                                /* open containers */
    bool after_key;                           /* a key was written; the next call must be a value */
    bool top_done;                            /* the top-level value is complete */
    uint8_t state[JSON_WRITER_MAX_DEPTH + 1]; /* per depth: 1 object, 2 needs comma */
};

/* Starts writing into b (appends; does not reset b). */
void json_writer_init(struct json_writer *w, struct buf *b);
/* 0 if everything was written and all containers are closed, else the first error. */
int json_writer_finish(const struct json_writer *w);

/*
 * Each call returns the writer's sticky error (0 while all is well). Misuse
 * (a value where a key is needed, unbalanced end) sets AS_EINVAL.
 */
int json_obj_begin(struct json_writer *w);
int json_obj_end(struct json_writer *w);
int json_arr_begin(struct json_writer *w);
int json_arr_end(struct json_writer *w);
/* Object key (NUL-terminated / pointer + length). */
int json_key(struct json_writer *w, const char *k);
int json_keyn(struct json_writer *w, const char *k, size_t n);
/* String value; s NULL writes null. Invalid UTF-8 becomes U+FFFD. */
int json_str(struct json_writer *w, const char *s);
int json_strn(struct json_writer *w, const char *s, size_t n);
int json_int(struct json_writer *w, int64_t v);
int json_uint(struct json_writer *w, uint64_t v);
/* Shortest round-trip form; NaN/Inf become null (JSON has no spelling for them). */
int json_double(struct json_writer *w, double v);
int json_bool(struct json_writer *w, bool v);
int json_null(struct json_writer *w);
/* Inserts n bytes of already-serialized JSON as one value (caller guarantees validity). */
int json_raw(struct json_writer *w, const char *json, size_t n);
/* Writes a cJSON tree as one value, with the same escaping and UTF-8 repair as json_str. */
int json_cjson(struct json_writer *w, const cJSON *v);

/* key + value shorthands. */
int json_kv_str(struct json_writer *w, const char *k, const char *s);
int json_kv_int(struct json_writer *w, const char *k, int64_t v);
int json_kv_double(struct json_writer *w, const char *k, double v);
int json_kv_bool(struct json_writer *w, const char *k, bool v);
int json_kv_null(struct json_writer *w, const char *k);

/*
 * Appends s as a JSON string literal (quotes included) with the writer's
 * escaping and UTF-8 repair. 0 or AS_ENOMEM.
 */
int json_append_str(struct buf *b, const char *s, size_t n);

#endif
