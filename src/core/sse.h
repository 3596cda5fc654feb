/*
 * sse.h - incremental Server-Sent Events parser (WHATWG "event stream" format).
 *
 * Feed it the bytes of a text/event-stream body in chunks of any size, split
 * anywhere; it calls back once per complete event with the `data:` lines joined
 * by '\n', the `event:` type, the `id:` and `retry:` fields. Handles \n, \r\n and
 * bare \r line ends (also split across chunks), `:` comment lines, a leading
 * UTF-8 BOM, and bounds every line and every event so a hostile upstream cannot
 * grow memory without limit. Used by the gateway to read upstream streams (usage
 * chunks, errors) while forwarding the raw bytes. Not thread-safe; not for
 * writing SSE (the server formats its own events).
 */
#ifndef AISTACK_CORE_SSE_H
#define AISTACK_CORE_SSE_H

#include <stddef.h>

#include "core/buf.h"

/*
 * One complete event. Strings are NUL-terminated and borrowed until the callback
 * returns; type and data may contain NUL bytes themselves, so use the lengths.
 */
struct sse_event {
    const char *type; /* value of the last `event:` line, "" if none (the spec's "message") */
    size_t type_len;
    const char *data; /* `data:` values joined by '\n' (no trailing '\n') */
    size_t data_len;
    const char *id; /* last event id seen on the stream so far ("" if none); persists */
    size_t id_len;
    long retry_ms; /* value of a `retry:` line in this event, -1 if none */
};

/* Called per event. Return 0 to go on; any other value stops sse_parser_feed(), which returns it.
 */
typedef int (*sse_event_cb)(void *ud, const struct sse_event *ev);

struct sse_parser {
    sse_event_cb cb;
    void *ud;
    size_t max_line; /* longest accepted line in bytes (without its line end) */
    struct buf line; /* partial line carried across feeds */
    struct buf data; /* data of the event being built */
    struct buf type; /* event type of the event being built */
    struct buf id;   /* last event id */
    long retry_ms;
    int have_data; /* a data line was seen for the current event */
    int skip_lf;   /* the previous chunk ended with '\r': drop a leading '\n' */
    int bom_state; /* bytes of a leading BOM matched so far; 3 = done with the BOM */
    int err;       /* sticky error (AS_ERANGE) once a limit was exceeded */
    int mid_event; /* some line of an unfinished event has been seen */
};

/* Default limits for sse_parser_init() when 0 is passed. */
enum { SSE_DEFAULT_MAX_LINE = 1 << 20, SSE_DEFAULT_MAX_EVENT = 4 << 20 };

/*
 * Initialises p. max_line bounds one line, max_event the joined data of one
 * event (0 = the defaults above). cb is called per event with ud.
 */
void sse_parser_init(struct sse_parser *p, size_t max_line, size_t max_event, sse_event_cb cb,
                     void *ud);
/* Frees the parser's buffers. Accepts NULL. */
void sse_parser_free(struct sse_parser *p);
/* Forgets all state (partial lines, pending event, last id), keeping the limits and callback. */
void sse_parser_reset(struct sse_parser *p);

/*
 * Parses len bytes. Returns 0; AS_ERANGE if a line or an event passed its limit
 * (sticky: later feeds return it too, until sse_parser_reset); or the nonzero
 * value a callback returned, in which case the rest of the chunk was not parsed
 * and the parser must be reset before it is fed again.
 */
int sse_parser_feed(struct sse_parser *p, const char *data, size_t len);

/*
 * Ends the stream. An event not terminated by a blank line is discarded (as
 * the spec says). Returns 0 if the stream ended on an event boundary,
 * AS_EFORMAT if a partial line or event was dropped (the stream was cut), or
 * the sticky error.
 */
int sse_parser_finish(struct sse_parser *p);

#endif
