/*
 * keys.c - the master key, virtual API keys and their limits.
 *
 * Virtual keys are created, listed and revoked through /admin/keys (master key
 * only) and stored in SQLite as SHA-256 digests: the plain key is shown once,
 * at creation. The request path never touches the disk: every key lives in an
 * in-memory cache with its rpm/tpm minute windows and its spend in the current
 * budget period. Budget periods are aligned to the key's creation time, so the
 * spend of the running period can be summed back from the usage ledger after a
 * restart. Digests are compared without early exit over all keys.
 * Not for: the usage rows themselves (ledger.c).
 */
#include "gw.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/auth.h"
#include "core/err.h"
#include "core/http_server.h"
#include "core/json.h"
#include "core/log.h"
#include "core/sha256.h"

#define KEYS_MAX       100000
#define KEY_MAX_MODELS 64

struct vkey {
    char id[24];
    uint8_t digest[SHA256_DIGEST_LEN];
    char name[64];
    char *models; /* comma-separated allow-list, NULL = every model */
    int64_t rpm, tpm, period_s, created_s;
    double budget; /* USD per period; 0 = none */
    /* in-memory state */
    uint64_t win_start_ms;
    int64_t win_req, win_tok;
    int64_t period_start_s;
    double spent;
    int revoked;
};

struct gw_keys {
    sqlite3 *db;
    char path[1024];
    uint8_t master[SHA256_DIGEST_LEN];
    pthread_mutex_t mu;
    struct vkey *k;
    size_t n, cap;
};

static int64_t now_s(void)
{
    return (int64_t)time(NULL);
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int ct_equal(const uint8_t *a, const uint8_t *b)
{
    uint8_t d = 0;
    for (int i = 0; i < SHA256_DIGEST_LEN; i++)
        d |= a[i] ^ b[i];
    return d == 0;
}

/* Start of the budget period containing now (periods aligned to creation). */
static int64_t period_start(const struct vkey *v, int64_t now)
{
    if (v->period_s <= 0)
        return v->created_s;
    return v->created_s + (now - v->created_s) / v->period_s * v->period_s;
}

static double spent_since(struct gw_keys *ks, const char *id, int64_t since_s)
{
    sqlite3_stmt *st = NULL;
    double s = 0;
    if (sqlite3_prepare_v2(ks->db,
                           "SELECT COALESCE(SUM(cost),0) FROM usage WHERE key_id=?1 AND ts>=?2", -1,
                           &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, since_s * 1000);
        if (sqlite3_step(st) == SQLITE_ROW)
            s = sqlite3_column_double(st, 0);
    }
    sqlite3_finalize(st);
    return s;
}

static struct vkey *keys_push(struct gw_keys *ks)
{
    if (ks->n == ks->cap) {
        size_t nc = ks->cap ? ks->cap * 2 : 64;
        if (nc > KEYS_MAX)
            return NULL;
        struct vkey *nk = realloc(ks->k, nc * sizeof(*nk));
        if (!nk)
            return NULL;
        ks->k = nk;
        ks->cap = nc;
    }
    struct vkey *v = &ks->k[ks->n++];
    memset(v, 0, sizeof(*v));
    return v;
}

static const char keys_schema[] =
    "CREATE TABLE IF NOT EXISTS keys (id TEXT PRIMARY KEY, digest TEXT UNIQUE NOT NULL, "
    "name TEXT, models TEXT, rpm INTEGER, tpm INTEGER, budget REAL, period_s INTEGER, "
    "created INTEGER, revoked INTEGER DEFAULT 0);";

struct gw_keys *gw_keys_open(const char *path, const char *master, char *err, size_t errlen)
{
    struct gw_keys *ks = calloc(1, sizeof(*ks));
    sqlite3_stmt *st = NULL;
    if (!ks)
        goto nomem;
    pthread_mutex_init(&ks->mu, NULL);
    snprintf(ks->path, sizeof ks->path, "%s", path);
    sha256(master, strlen(master), ks->master);
    if (strlen(master) < 16) {
        snprintf(err, errlen, "master_key must be at least 16 characters");
        goto fail;
    }
    if (sqlite3_open_v2(path, &ks->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
            SQLITE_OK ||
        (sqlite3_busy_timeout(ks->db, 5000), sqlite3_exec(ks->db, keys_schema, NULL, NULL, NULL)) !=
            SQLITE_OK) {
        snprintf(err, errlen, "database %s: %s", path,
                 ks->db ? sqlite3_errmsg(ks->db) : "cannot open");
        goto fail;
    }
    if (sqlite3_prepare_v2(ks->db,
                           "SELECT id, digest, name, models, rpm, tpm, budget, period_s, created "
                           "FROM keys WHERE revoked = 0",
                           -1, &st, NULL) != SQLITE_OK)
        goto dberr;
    int64_t now = now_s();
    while (sqlite3_step(st) == SQLITE_ROW) {
        struct vkey *v = keys_push(ks);
        if (!v)
            goto nomem;
        const char *id = (const char *)sqlite3_column_text(st, 0);
        const char *dg = (const char *)sqlite3_column_text(st, 1);
        const char *nm = (const char *)sqlite3_column_text(st, 2);
        const char *md = (const char *)sqlite3_column_text(st, 3);
        snprintf(v->id, sizeof v->id, "%s", id ? id : "");
        snprintf(v->name, sizeof v->name, "%s", nm ? nm : "");
        if (!dg || strlen(dg) != 64 || sha256_from_hex(dg, 64, v->digest) != 0) {
            ks->n--;
            continue;
        }
        v->models = md && *md ? strdup(md) : NULL;
        v->rpm = sqlite3_column_int64(st, 4);
        v->tpm = sqlite3_column_int64(st, 5);
        v->budget = sqlite3_column_double(st, 6);
        v->period_s = sqlite3_column_int64(st, 7);
        v->created_s = sqlite3_column_int64(st, 8);
        v->period_start_s = period_start(v, now);
    }
    sqlite3_finalize(st);
    st = NULL;
    for (size_t i = 0; i < ks->n; i++) /* the ledger table exists: ledger opened first */
        ks->k[i].spent = spent_since(ks, ks->k[i].id, ks->k[i].period_start_s);
    return ks;
dberr:
    snprintf(err, errlen, "database %s: %s", path, sqlite3_errmsg(ks->db));
    goto fail;
nomem:
    snprintf(err, errlen, "out of memory");
fail:
    sqlite3_finalize(st);
    gw_keys_free(ks);
    return NULL;
}

void gw_keys_free(struct gw_keys *ks)
{
    if (!ks)
        return;
    for (size_t i = 0; i < ks->n; i++)
        free(ks->k[i].models);
    free(ks->k);
    sqlite3_close(ks->db);
    pthread_mutex_destroy(&ks->mu);
    free(ks);
}

const char *gw_keys_path(const struct gw_keys *k)
{
    return k->path;
}

/* 1 if the bearer token is the master key. */
static int is_master(struct gw_keys *ks, struct http_req *req, int *present)
{
    const char *tok;
    size_t len;
    const char *h = http_req_header(req, "Authorization");
    *present = h && auth_parse_bearer(h, strlen(h), &tok, &len) == 0 && len <= AUTH_MAX_KEY_BYTES;
    if (!*present)
        return 0;
    uint8_t d[SHA256_DIGEST_LEN];
    sha256(tok, len, d);
    return ct_equal(d, ks->master);
}

static int model_allowed(const struct vkey *v, const char *model)
{
    if (!v->models)
        return 1;
    size_t ml = strlen(model);
    for (const char *p = v->models; *p;) {
        const char *c = strchr(p, ',');
        size_t l = c ? (size_t)(c - p) : strlen(p);
        if (l == ml && !memcmp(p, model, l))
            return 1;
        p += l + (c ? 1 : 0);
    }
    return 0;
}

static void roll(struct vkey *v, uint64_t now_ms, int64_t now)
{
    if (now_ms - v->win_start_ms >= 60000) {
        v->win_start_ms = now_ms;
        v->win_req = v->win_tok = 0;
    }
    int64_t ps = period_start(v, now);
    if (v->period_s > 0 && ps != v->period_start_s) {
        v->period_start_s = ps;
        v->spent = 0;
    }
}

static void limit_headers(struct http_req *req, const struct vkey *v, uint64_t now_ms)
{
    char a[32], b[32], c[32];
    unsigned reset = (unsigned)((60000 - (now_ms - v->win_start_ms) + 999) / 1000);
    snprintf(c, sizeof c, "%us", reset);
    if (v->rpm) {
        snprintf(a, sizeof a, "%lld", (long long)v->rpm);
        snprintf(b, sizeof b, "%lld", (long long)(v->rpm > v->win_req ? v->rpm - v->win_req : 0));
        http_resp_header(req, "x-ratelimit-limit-requests", a);
        http_resp_header(req, "x-ratelimit-remaining-requests", b);
        http_resp_header(req, "x-ratelimit-reset-requests", c);
    }
    if (v->tpm) {
        snprintf(a, sizeof a, "%lld", (long long)v->tpm);
        snprintf(b, sizeof b, "%lld", (long long)(v->tpm > v->win_tok ? v->tpm - v->win_tok : 0));
        http_resp_header(req, "x-ratelimit-limit-tokens", a);
        http_resp_header(req, "x-ratelimit-remaining-tokens", b);
        http_resp_header(req, "x-ratelimit-reset-tokens", c);
    }
}

int gw_keys_authorize(struct gw_keys *ks, struct http_req *req, const char *model,
                      struct gw_principal *p)
{
    int present;
    memset(p, 0, sizeof(*p));
    p->key_slot = -1;
    if (is_master(ks, req, &present)) {
        p->is_master = 1;
        snprintf(p->key_id, sizeof p->key_id, "master");
        return 0;
    }
    if (!present) {
        http_respond_error(req, 401, "Missing bearer API key in the Authorization header.",
                           "invalid_request_error", NULL, "invalid_api_key");
        return -1;
    }
    const char *h = http_req_header(req, "Authorization"), *tok;
    size_t len;
    auth_parse_bearer(h, strlen(h), &tok, &len);
    uint8_t d[SHA256_DIGEST_LEN];
    sha256(tok, len, d);
    pthread_mutex_lock(&ks->mu);
    int found = -1;
    for (size_t i = 0; i < ks->n; i++) /* no early exit: timing says nothing */
        if (ct_equal(d, ks->k[i].digest) & !ks->k[i].revoked)
            found = (int)i;
    if (found < 0) {
        pthread_mutex_unlock(&ks->mu);
        http_respond_error(req, 401, "Incorrect API key provided.", "invalid_request_error", NULL,
                           "invalid_api_key");
        return -1;
    }
    struct vkey *v = &ks->k[found];
    uint64_t nm = mono_ms();
    roll(v, nm, now_s());
    const char *msg = NULL, *type = NULL, *code = NULL;
    int status = 429;
    if (!model_allowed(v, model)) {
        status = 403, msg = "This key may not use this model.", type = "invalid_request_error";
        code = "model_not_allowed";
    } else if (v->budget > 0 && v->spent >= v->budget) {
        msg = "You exceeded your current quota (budget of this key for the period).";
        type = code = "insufficient_quota";
        http_resp_header(req, "x-should-retry", "false");
    } else if (v->rpm && v->win_req >= v->rpm) {
        msg = "Rate limit reached for requests per minute.", type = "requests";
        code = "rate_limit_exceeded";
    } else if (v->tpm && v->win_tok >= v->tpm) {
        msg = "Rate limit reached for tokens per minute.", type = "tokens";
        code = "rate_limit_exceeded";
    }
    if (!msg) {
        v->win_req++;
        snprintf(p->key_id, sizeof p->key_id, "%s", v->id);
        p->key_slot = found;
        pthread_mutex_unlock(&ks->mu);
        return 0;
    }
    if (status == 429 && strcmp(code, "insufficient_quota")) {
        char ra[16];
        snprintf(ra, sizeof ra, "%u", (unsigned)((60000 - (nm - v->win_start_ms) + 999) / 1000));
        http_resp_header(req, "Retry-After", ra);
        limit_headers(req, v, nm);
    }
    pthread_mutex_unlock(&ks->mu);
    http_respond_error(req, status, msg, type, NULL, code);
    return -1;
}

void gw_keys_charge(struct gw_keys *ks, const struct gw_principal *p, int64_t tokens, double cost)
{
    if (!ks || p->key_slot < 0)
        return;
    pthread_mutex_lock(&ks->mu);
    if ((size_t)p->key_slot < ks->n && !strcmp(ks->k[p->key_slot].id, p->key_id)) {
        ks->k[p->key_slot].win_tok += tokens;
        ks->k[p->key_slot].spent += cost;
    }
    pthread_mutex_unlock(&ks->mu);
}

void gw_keys_ratelimit_headers(struct gw_keys *ks, const struct gw_principal *p,
                               struct http_req *req)
{
    if (!ks || p->key_slot < 0 || !req)
        return;
    pthread_mutex_lock(&ks->mu);
    if ((size_t)p->key_slot < ks->n && !strcmp(ks->k[p->key_slot].id, p->key_id))
        limit_headers(req, &ks->k[p->key_slot], mono_ms());
    pthread_mutex_unlock(&ks->mu);
}

/* ---- admin API ---------------------------------------------------------------- */

struct admin {
    struct gw_keys *ks;
    struct gw_ledger *lg;
};
static struct admin g_admin;

static int admin_guard(struct http_req *req)
{
    int present;
    if (!g_admin.ks) {
        http_respond_error(req, 403, "the admin API needs master_key in the configuration",
                           "invalid_request_error", NULL, NULL);
        return -1;
    }
    if (!is_master(g_admin.ks, req, &present)) {
        http_respond_error(req, 401, "admin routes need the master key", "invalid_request_error",
                           NULL, "invalid_api_key");
        return -1;
    }
    return 0;
}

static void write_key(struct json_writer *w, const struct vkey *v)
{
    json_obj_begin(w);
    json_kv_str(w, "id", v->id);
    json_kv_str(w, "name", v->name);
    json_key(w, "models");
    json_arr_begin(w);
    for (const char *p = v->models; p && *p;) {
        const char *c = strchr(p, ',');
        size_t l = c ? (size_t)(c - p) : strlen(p);
        json_strn(w, p, l);
        p += l + (c ? 1 : 0);
    }
    json_arr_end(w);
    json_kv_int(w, "rpm", v->rpm);
    json_kv_int(w, "tpm", v->tpm);
    json_kv_double(w, "budget", v->budget);
    json_kv_int(w, "budget_period_s", v->period_s);
    json_kv_double(w, "spent", v->spent);
    json_kv_int(w, "created", v->created_s);
}

static int parse_models(const cJSON *body, struct buf *out, struct json_err *je)
{
    const cJSON *arr;
    int rc = json_get_array(body, "models", &arr, je);
    if (rc == AS_ENOENT)
        return 0;
    if (rc)
        return rc;
    if (cJSON_GetArraySize(arr) > KEY_MAX_MODELS) {
        json_err_set(je, "models", "'models' has more than %d entries", KEY_MAX_MODELS);
        return AS_EINVAL;
    }
    const cJSON *m;
    cJSON_ArrayForEach(m, arr)
    {
        if (!cJSON_IsString(m) || !*m->valuestring || strchr(m->valuestring, ',') ||
            strlen(m->valuestring) >= GW_MAX_NAME) {
            json_err_set(je, "models", "'models' must be model names");
            return AS_EINVAL;
        }
        if ((out->len && buf_append_char(out, ',')) || buf_append_cstr(out, m->valuestring))
            return AS_ENOMEM;
    }
    return 0;
}

static void h_create(struct http_req *req, void *ud)
{
    struct json_err je = {0};
    struct buf models, resp;
    buf_init(&models, 16384);
    buf_init(&resp, 32768);
    struct str b = http_req_body(req);
    cJSON *body = NULL;
    sqlite3_stmt *st = NULL;
    if (admin_guard(req))
        goto out;
    body = json_parse(b.len ? b.p : "{}", b.len ? b.len : 2, 1 << 20, 8, &je);
    struct vkey v = {0};
    const char *name = "";
    int64_t period = 0;
    int rc = body && cJSON_IsObject(body) ? 0 : AS_EINVAL;
    if (!body || !cJSON_IsObject(body))
        json_err_set(&je, NULL, "%s", body ? "body must be a JSON object" : je.msg);
    if (!rc && (rc = json_get_string(body, "name", &name, &je)) == AS_ENOENT)
        rc = 0, name = "";
    if (!rc && (rc = json_get_int(body, "rpm", 0, INT64_C(1) << 40, &v.rpm, &je)) == AS_ENOENT)
        rc = 0;
    if (!rc && (rc = json_get_int(body, "tpm", 0, INT64_C(1) << 50, &v.tpm, &je)) == AS_ENOENT)
        rc = 0;
    if (!rc && (rc = json_get_double(body, "budget", 0, 1e12, &v.budget, &je)) == AS_ENOENT)
        rc = 0;
    if (!rc && (rc = json_get_int(body, "budget_period_s", 1, INT64_C(1) << 35, &period, &je)) ==
                   AS_ENOENT)
        rc = 0;
    if (!rc)
        rc = parse_models(body, &models, &je);
    if (rc) {
        http_respond_error(req, 400, je.msg, "invalid_request_error", je.param[0] ? je.param : NULL,
                           NULL);
        goto out;
    }
    char key[AUTH_KEY_LEN], hex[SHA256_HEX_LEN];
    if (auth_key_generate(key) != 0) {
        http_respond_error(req, 500, "cannot generate a key", NULL, NULL, NULL);
        goto out;
    }
    sha256(key, strlen(key), v.digest);
    sha256_hex(v.digest, hex);
    snprintf(v.id, sizeof v.id, "key-%.16s", hex);
    snprintf(v.name, sizeof v.name, "%s", name);
    v.period_s = period;
    v.created_s = now_s();
    v.period_start_s = v.created_s;
    pthread_mutex_lock(&g_admin.ks->mu);
    int ok = sqlite3_prepare_v2(g_admin.ks->db,
                                "INSERT INTO keys (id, digest, name, models, rpm, tpm, budget, "
                                "period_s, created) VALUES (?,?,?,?,?,?,?,?,?)",
                                -1, &st, NULL) == SQLITE_OK;
    if (ok) {
        sqlite3_bind_text(st, 1, v.id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, hex, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, v.name, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, models.len ? models.data : "", -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 5, v.rpm);
        sqlite3_bind_int64(st, 6, v.tpm);
        sqlite3_bind_double(st, 7, v.budget);
        sqlite3_bind_int64(st, 8, v.period_s);
        sqlite3_bind_int64(st, 9, v.created_s);
        ok = sqlite3_step(st) == SQLITE_DONE;
    }
    struct vkey *slot = ok ? keys_push(g_admin.ks) : NULL;
    if (slot) {
        *slot = v;
        slot->models = models.len ? strdup(models.data) : NULL;
    }
    pthread_mutex_unlock(&g_admin.ks->mu);
    if (!slot) {
        http_respond_error(req, 500, "cannot store the key", NULL, NULL, NULL);
        goto out;
    }
    struct json_writer w;
    json_writer_init(&w, &resp);
    v.models = models.len ? models.data : NULL;
    write_key(&w, &v);
    json_kv_str(&w, "key", key);
    json_obj_end(&w);
    memset(key, 0, sizeof key);
    if (json_writer_finish(&w) == 0)
        http_respond_json(req, 200, resp.data, resp.len);
    else
        http_respond_error(req, 500, "cannot write the answer", NULL, NULL, NULL);
    log_info("virtual key created", "id=%s", v.id);
out:
    sqlite3_finalize(st);
    cJSON_Delete(body);
    buf_free(&models);
    buf_free(&resp);
}

static void h_list(struct http_req *req, void *ud)
{
    if (admin_guard(req))
        return;
    struct buf b;
    struct json_writer w;
    buf_init(&b, 64u << 20);
    json_writer_init(&w, &b);
    json_obj_begin(&w);
    json_kv_str(&w, "object", "list");
    json_key(&w, "data");
    json_arr_begin(&w);
    pthread_mutex_lock(&g_admin.ks->mu);
    for (size_t i = 0; i < g_admin.ks->n; i++) {
        struct vkey *v = &g_admin.ks->k[i];
        roll(v, mono_ms(), now_s());
        write_key(&w, v);
        json_obj_end(&w);
    }
    pthread_mutex_unlock(&g_admin.ks->mu);
    json_arr_end(&w);
    json_obj_end(&w);
    if (json_writer_finish(&w) == 0)
        http_respond_json(req, 200, b.data, b.len);
    else
        http_respond_error(req, 500, "cannot list keys", NULL, NULL, NULL);
    buf_free(&b);
}

static void h_delete(struct http_req *req, void *ud)
{
    if (admin_guard(req))
        return;
    struct str id = http_req_param(req);
    char sid[24];
    if (id.len >= sizeof sid) {
        http_respond_error(req, 404, "no such key", NULL, NULL, NULL);
        return;
    }
    memcpy(sid, id.p, id.len);
    sid[id.len] = 0;
    if (strspn(sid, "abcdefghijklmnopqrstuvwxyz0123456789-") != id.len) {
        http_respond_error(req, 404, "no such key", NULL, NULL, NULL);
        return;
    }
    struct gw_keys *ks = g_admin.ks;
    int found = 0;
    pthread_mutex_lock(&ks->mu);
    for (size_t i = 0; i < ks->n; i++)
        if (!strcmp(ks->k[i].id, sid)) {
            /* the slot stays (requests in flight hold its index); it can never match again */
            ks->k[i].revoked = 1;
            memset(ks->k[i].digest, 0, sizeof ks->k[i].digest);
            found = 1;
        }
    sqlite3_stmt *st = NULL;
    if (found && sqlite3_prepare_v2(ks->db, "UPDATE keys SET revoked = 1 WHERE id = ?", -1, &st,
                                    NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, sid, -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE)
            log_error("cannot revoke key in the database", "id=%s", sid);
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&ks->mu);
    if (!found) {
        http_respond_error(req, 404, "no such key", NULL, NULL, NULL);
        return;
    }
    char body[96];
    int n = snprintf(body, sizeof body, "{\"id\":\"%s\",\"deleted\":true}", sid);
    http_respond_json(req, 200, body, (size_t)n);
}

static void h_usage(struct http_req *req, void *ud)
{
    if (admin_guard(req))
        return;
    gw_ledger_usage_handler(g_admin.lg, req);
}

int gw_keys_routes(struct http_server *srv, struct gw_keys *k, struct gw_ledger *lg)
{
    g_admin.ks = k;
    g_admin.lg = lg;
    return http_server_route(srv, "POST", "/admin/keys", h_create, NULL) ||
           http_server_route(srv, "GET", "/admin/keys", h_list, NULL) ||
           http_server_route(srv, "DELETE", "/admin/keys/{id}", h_delete, NULL) ||
           http_server_route(srv, "GET", "/admin/usage", h_usage, NULL);
}
