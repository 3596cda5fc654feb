/*
 * ledger.c - the usage ledger: one row per request (key, model, deployment,
 * tokens, cost, latency, status) in SQLite, written by a writer thread.
 *
 * Request threads only append to an in-memory queue (bounded; rows past the
 * bound are dropped and counted) and never touch the disk. The writer wakes on
 * 256 queued rows or every 100 ms and writes everything queued in one
 * transaction. The ledger is also where spend comes from after a restart
 * (keys.c sums it per budget period). GET /admin/usage aggregates it.
 * Not for: rate limiting (keys.c keeps its windows in memory).
 */
#include "gw.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/err.h"
#include "core/http_server.h"
#include "core/json.h"
#include "core/log.h"
#include "core/metrics.h"

#define LG_MAX_QUEUE 100000
#define LG_BATCH     256
#define LG_PERIOD_MS 100

struct lg_row {
    struct lg_row *next;
    int64_t ts_ms, tokens_in, tokens_out;
    double cost, latency_ms;
    int status;
    char key_id[40], model[GW_MAX_NAME], deployment[GW_MAX_NAME], request_id[72];
};

struct gw_ledger {
    sqlite3 *db;  /* writer's connection */
    sqlite3 *rdb; /* readers' connection (admin queries), under rmu */
    pthread_mutex_t mu, rmu;
    pthread_cond_t cv, done_cv;
    struct lg_row *head, *tail;
    size_t queued;
    uint64_t seq_in, seq_out; /* rows accepted / rows written (or dropped by an error) */
    int stop;
    pthread_t thr;
    struct metric *m_dropped;
};

static const char lg_schema[] =
    "CREATE TABLE IF NOT EXISTS usage (id INTEGER PRIMARY KEY, ts INTEGER NOT NULL, "
    "request_id TEXT, key_id TEXT, model TEXT, deployment TEXT, tokens_in INTEGER, "
    "tokens_out INTEGER, cost REAL, latency_ms REAL, status INTEGER);"
    "CREATE INDEX IF NOT EXISTS usage_ts ON usage(ts);"
    "CREATE INDEX IF NOT EXISTS usage_key ON usage(key_id, ts);";

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void write_batch(struct gw_ledger *lg, struct lg_row *rows)
{
    sqlite3_stmt *st = NULL;
    int ok = sqlite3_exec(lg->db, "BEGIN", NULL, NULL, NULL) == SQLITE_OK &&
             sqlite3_prepare_v2(lg->db,
                                "INSERT INTO usage (ts, request_id, key_id, model, deployment, "
                                "tokens_in, tokens_out, cost, latency_ms, status) "
                                "VALUES (?,?,?,?,?,?,?,?,?,?)",
                                -1, &st, NULL) == SQLITE_OK;
    for (struct lg_row *r = rows; ok && r; r = r->next) {
        sqlite3_bind_int64(st, 1, r->ts_ms);
        sqlite3_bind_text(st, 2, r->request_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, r->key_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, r->model, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 5, r->deployment, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 6, r->tokens_in);
        sqlite3_bind_int64(st, 7, r->tokens_out);
        sqlite3_bind_double(st, 8, r->cost);
        sqlite3_bind_double(st, 9, r->latency_ms);
        sqlite3_bind_int(st, 10, r->status);
        ok = sqlite3_step(st) == SQLITE_DONE;
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    if (!ok) {
        log_error("usage ledger write failed", "err=\"%s\"", sqlite3_errmsg(lg->db));
        sqlite3_exec(lg->db, "ROLLBACK", NULL, NULL, NULL);
    } else if (sqlite3_exec(lg->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        log_error("usage ledger commit failed", "err=\"%s\"", sqlite3_errmsg(lg->db));
        sqlite3_exec(lg->db, "ROLLBACK", NULL, NULL, NULL);
    }
}

static void *writer_main(void *ud)
{
    struct gw_ledger *lg = ud;
    pthread_mutex_lock(&lg->mu);
    for (;;) {
        while (!lg->stop && lg->queued < LG_BATCH && !lg->head) {
            pthread_cond_wait(&lg->cv, &lg->mu);
        }
        if (!lg->stop && lg->queued < LG_BATCH) { /* gather a batch for a short while */
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += LG_PERIOD_MS * 1000000L;
            if (ts.tv_nsec >= 1000000000L)
                ts.tv_sec++, ts.tv_nsec -= 1000000000L;
            pthread_cond_timedwait(&lg->cv, &lg->mu, &ts);
        }
        struct lg_row *rows = lg->head;
        size_t n = lg->queued;
        lg->head = lg->tail = NULL;
        lg->queued = 0;
        int stop = lg->stop;
        pthread_mutex_unlock(&lg->mu);
        if (rows)
            write_batch(lg, rows);
        while (rows) {
            struct lg_row *next = rows->next;
            free(rows);
            rows = next;
        }
        pthread_mutex_lock(&lg->mu);
        lg->seq_out += n;
        pthread_cond_broadcast(&lg->done_cv);
        if (stop && !lg->head)
            break;
    }
    pthread_mutex_unlock(&lg->mu);
    return NULL;
}

static sqlite3 *open_db(const char *path, char *err, size_t errlen)
{
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        snprintf(err, errlen, "cannot open database %s: %s", path,
                 db ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close(db);
        return NULL;
    }
    sqlite3_busy_timeout(db, 5000);
    if (sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", NULL, NULL, NULL) !=
            SQLITE_OK ||
        sqlite3_exec(db, lg_schema, NULL, NULL, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "database %s: %s", path, sqlite3_errmsg(db));
        sqlite3_close(db);
        return NULL;
    }
    return db;
}

struct gw_ledger *gw_ledger_new(const char *path, char *err, size_t errlen)
{
    struct gw_ledger *lg = calloc(1, sizeof(*lg));
    if (!lg) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&lg->mu, NULL);
    pthread_mutex_init(&lg->rmu, NULL);
    pthread_cond_init(&lg->cv, NULL);
    pthread_cond_init(&lg->done_cv, NULL);
    if (!(lg->db = open_db(path, err, errlen)) || !(lg->rdb = open_db(path, err, errlen)))
        goto fail;
    static const char *const none[] = {NULL};
    lg->m_dropped = metric_nolabels(
        metrics_counter_new(NULL, "gateway_ledger_dropped_total",
                            "Usage rows dropped (queue full or write error)", none));
    if (pthread_create(&lg->thr, NULL, writer_main, lg) != 0) {
        snprintf(err, errlen, "cannot start the ledger writer");
        goto fail;
    }
    return lg;
fail:
    sqlite3_close(lg->db);
    sqlite3_close(lg->rdb);
    pthread_mutex_destroy(&lg->mu);
    pthread_mutex_destroy(&lg->rmu);
    pthread_cond_destroy(&lg->cv);
    pthread_cond_destroy(&lg->done_cv);
    free(lg);
    return NULL;
}

void gw_ledger_free(struct gw_ledger *lg)
{
    if (!lg)
        return;
    pthread_mutex_lock(&lg->mu);
    lg->stop = 1;
    pthread_cond_signal(&lg->cv);
    pthread_mutex_unlock(&lg->mu);
    pthread_join(lg->thr, NULL);
    sqlite3_close(lg->db);
    sqlite3_close(lg->rdb);
    pthread_mutex_destroy(&lg->mu);
    pthread_mutex_destroy(&lg->rmu);
    pthread_cond_destroy(&lg->cv);
    pthread_cond_destroy(&lg->done_cv);
    free(lg);
}

static void copy(char *dst, size_t cap, const char *s)
{
    snprintf(dst, cap, "%s", s ? s : "");
}

void gw_ledger_add(struct gw_ledger *lg, const struct gw_usage *u)
{
    if (!lg)
        return;
    struct lg_row *r = malloc(sizeof(*r));
    if (!r) {
        metric_inc(lg->m_dropped);
        return;
    }
    r->next = NULL;
    r->ts_ms = u->ts_ms ? u->ts_ms : wall_ms();
    r->tokens_in = u->tokens_in;
    r->tokens_out = u->tokens_out;
    r->cost = u->cost;
    r->latency_ms = u->latency_ms;
    r->status = u->status;
    copy(r->key_id, sizeof r->key_id, u->key_id);
    copy(r->model, sizeof r->model, u->model);
    copy(r->deployment, sizeof r->deployment, u->deployment);
    copy(r->request_id, sizeof r->request_id, u->request_id);
    pthread_mutex_lock(&lg->mu);
    if (lg->queued >= LG_MAX_QUEUE || lg->stop) {
        pthread_mutex_unlock(&lg->mu);
        free(r);
        metric_inc(lg->m_dropped);
        return;
    }
    if (lg->tail)
        lg->tail->next = r;
    else
        lg->head = r;
    lg->tail = r;
    lg->seq_in++;
    if (++lg->queued == 1 || lg->queued >= LG_BATCH)
        pthread_cond_signal(&lg->cv);
    pthread_mutex_unlock(&lg->mu);
}

void gw_ledger_flush(struct gw_ledger *lg)
{
    if (!lg)
        return;
    pthread_mutex_lock(&lg->mu);
    uint64_t target = lg->seq_in;
    pthread_cond_signal(&lg->cv);
    while (lg->seq_out < target && !lg->stop)
        pthread_cond_wait(&lg->done_cv, &lg->mu);
    pthread_mutex_unlock(&lg->mu);
}

static int64_t query_int(struct http_req *req, const char *name, int64_t def, int *bad)
{
    const char *s = http_req_query(req, name);
    char *end;
    if (!s)
        return def;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || v < 0 || v > INT64_C(1) << 40)
        *bad = 1;
    return v;
}

void gw_ledger_usage_handler(struct gw_ledger *lg, struct http_req *req)
{
    const char *g = http_req_query(req, "group_by");
    const char *col = !g || !strcmp(g, "key")    ? "key_id"
                      : !strcmp(g, "model")      ? "model"
                      : !strcmp(g, "deployment") ? "deployment"
                                                 : NULL;
    int bad = 0;
    int64_t since = query_int(req, "since", 0, &bad), until = query_int(req, "until", 0, &bad);
    if (!col || bad) {
        http_respond_error(req, 400,
                           "group_by must be key, model or deployment; since/until epoch seconds",
                           "invalid_request_error", NULL, NULL);
        return;
    }
    gw_ledger_flush(lg);
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT %s, COUNT(*), SUM(status >= 400), SUM(tokens_in), SUM(tokens_out), "
             "SUM(cost), AVG(latency_ms) FROM usage WHERE ts >= ?1 AND (?2 = 0 OR ts < ?2) "
             "GROUP BY %s ORDER BY %s",
             col, col, col);
    struct buf b;
    struct json_writer w;
    buf_init(&b, 16u << 20);
    json_writer_init(&w, &b);
    json_obj_begin(&w);
    json_kv_str(&w, "object", "list");
    json_kv_str(&w, "group_by", g ? g : "key");
    json_key(&w, "data");
    json_arr_begin(&w);
    pthread_mutex_lock(&lg->rmu);
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(lg->rdb, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, since * 1000);
        sqlite3_bind_int64(st, 2, until * 1000);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            json_obj_begin(&w);
            json_kv_str(&w, g && strcmp(g, "key") ? g : "key_id",
                        (const char *)sqlite3_column_text(st, 0));
            json_kv_int(&w, "requests", sqlite3_column_int64(st, 1));
            json_kv_int(&w, "errors", sqlite3_column_int64(st, 2));
            json_kv_int(&w, "tokens_in", sqlite3_column_int64(st, 3));
            json_kv_int(&w, "tokens_out", sqlite3_column_int64(st, 4));
            json_kv_double(&w, "cost", sqlite3_column_double(st, 5));
            json_kv_double(&w, "avg_latency_ms", sqlite3_column_double(st, 6));
            json_obj_end(&w);
        }
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&lg->rmu);
    json_arr_end(&w);
    json_obj_end(&w);
    if (rc != SQLITE_DONE || json_writer_finish(&w) != 0)
        http_respond_error(req, 500, "cannot read the usage ledger", NULL, NULL, NULL);
    else
        http_respond_json(req, 200, b.data, b.len);
    buf_free(&b);
}
