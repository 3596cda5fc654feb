/*
 * http_server_int.h - internals shared by http_server.c and http_stream.c.
 *
 * Not a public header: services use http_server.h. Ownership in short: a
 * request is referenced by its connection (dropped when libmicrohttpd reports
 * it completed) and, from dispatch until the response is submitted, by its
 * responder; a stream by its producer (until http_stream_end), by the MHD
 * response (until MHD frees it) and by each pending cross-thread wakeup.
 */
#ifndef AISTACK_CORE_HTTP_SERVER_INT_H
#define AISTACK_CORE_HTTP_SERVER_INT_H

#include "core/http_server.h"

#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>

struct http_worker;

/* Per connection: where it stands in the header-timeout lists. */
struct http_conn {
    struct http_conn *prev, *next;
    struct http_worker *w;
    uint64_t deadline_ms; /* the request headers must be complete by then */
    int fd;
    int list;   /* 0 none, 1 first request, 2 keep-alive, 3 lingering */
    int linger; /* answered before its body was read: linger on close */
};

struct http_conn_list {
    struct http_conn *head, *tail;
};

struct http_route {
    char *method; /* NULL = any */
    char *prefix; /* the pattern before "{", or all of it */
    char *suffix; /* after "}" (NULL for exact routes) */
    int rest;     /* {name*}: the parameter may contain '/' */
    http_handler_fn fn;
    void *ud;
};

struct http_worker {
    struct http_server *srv;
    int index;
    struct loop *loop;
    struct MHD_Daemon *d;
    int listen_fd; /* owned until MHD_quiesce_daemon hands it back */
    int mhd_fd;    /* MHD's epoll fd, watched by loop */
    pthread_t thread;
    int started;
    struct loop_timer *mhd_timer;
    int run_scheduled; /* a 0 ms MHD_run timer is pending */
    struct loop_timer *sweep_timer;
    struct http_conn_list first, keepalive, lingering;
    int n_lingering;
    struct http_req *live; /* requests between the first callback and completion */
    int stopping;          /* cutting off: refuse new requests */
    size_t stream_queue;   /* config stream_queue_bytes */
    unsigned nconns;       /* connections MHD holds */
    unsigned conn_limit;   /* MHD_OPTION_CONNECTION_LIMIT of this worker */
    int rerun;             /* run MHD once more (see on_connection) */
    atomic_int quiesced;   /* the drain closed its listener (quiesce_cb ran) */
};

enum req_state { REQ_BODY, REQ_HANDLER, REQ_WAIT, REQ_SENT };

struct http_req {
    struct http_worker *w;
    struct MHD_Connection *conn;
    atomic_int refs;
    atomic_int conn_alive; /* 0 once MHD reported the request completed */
    atomic_int responded;  /* a response (or stream) was submitted */
    struct http_req *live_prev, *live_next;
    enum req_state state;
    const char *method; /* MHD's strings, valid until completion */
    const char *path;
    const struct http_route *route;
    http_handler_fn fn; /* what runs once the body is in */
    void *fn_ud;
    struct str param;
    struct buf body;
    uint64_t discarded;        /* body bytes dropped after the cap was hit */
    struct buf hdrs;           /* extra response headers: name\0value\0... */
    struct MHD_Response *resp; /* the response waiting to be queued */
    int resp_status;
    int status; /* for the log */
    uint64_t bytes;
    uint64_t start_ns;
    struct http_stream *stream;
    void *user;
    http_req_cb gone_cb; /* http_req_on_gone() */
    void *gone_ud;
    int watch_fd;   /* socket watched while suspended for gone_cb, -1 if none */
    int in_handler; /* the handler is running (worker thread) */
    int sync_resp;  /* responded from inside the handler */
    int aborted;    /* cut off at stop: give up on the next callback */
    int is_head;
    int early; /* answered before the body was read (MHD closes afterwards) */
    char remote[48];
    char id[65];
};

struct http_stream {
    atomic_int refs;
    pthread_mutex_t mu;
    struct http_req *req; /* one reference held */
    struct buf q;         /* queued bytes from q_off to q.len */
    size_t q_off;
    int ended, gone, gone_notified;
    int suspended;   /* the reader suspended the connection for lack of data */
    int peer_closed; /* the client closed while suspended: cut the stream off */
    int watch_fd;    /* the socket watched while suspended, -1 if none (worker only) */
    int wake_posted; /* a resume is queued on the worker loop */
    int want_writable;
    http_stream_cb on_gone, on_writable;
    void *cb_ud;
    int cb_running;         /* callbacks in progress on the worker */
    pthread_cond_t cb_done; /* signalled when cb_running drops to 0 */
    uint64_t sent;
};

/* http_server.c */
void http__req_unref(struct http_req *r);
/* Builds the MHD response headers shared by every response of r. 0 or AS_ENOMEM. */
int http__add_headers(struct http_req *r, struct MHD_Response *resp, const char *content_type);
/* Hands a built response to the worker (queued now if inside the handler). Consumes
 * the responder reference. 0 or AS_E*. */
int http__submit(struct http_req *r, struct MHD_Response *resp, int status);
/* 1 if the calling thread is w's worker thread. */
int http__on_worker(const struct http_worker *w);
/* Asks the worker to run MHD soon (after resumes), once per loop iteration. */
void http__schedule_run(struct http_worker *w);

/* http_stream.c */
/* The MHD response of a new stream for r; NULL on failure. */
struct MHD_Response *http__stream_response(struct http_stream *s);
/* MHD reported the stream's request completed; ok = 1 when it finished normally. */
void http__stream_closed(struct http_stream *s, int ok);
/* Cutting off at stop: the reader reports an error next time. */
void http__stream_abort(struct http_stream *s);
void http__stream_unref(struct http_stream *s);

#endif
