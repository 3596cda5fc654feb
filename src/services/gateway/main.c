/*
 * main.c - aistack-gateway: settings, start-up, SIGHUP reload, shutdown.
 *
 *   aistack-gateway --config FILE [--port N]
 *
 * A bad configuration prints every problem as FILE:LINE and exits 2. SIGHUP
 * re-reads the file (and the environment, and the same flags), builds a new
 * routing table and publishes it; requests in flight keep the table they
 * started with (refcounted), so nothing is dropped. A reload that fails logs
 * its errors and keeps the running table. Only model_list and router_settings
 * are reloaded (deployments keep their health state across it); the listener, keys
 * database and master key need a restart.
 * SIGTERM drains (http_server_run). Not for: request handling (proxy.c).
 */
#include "gw.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"
#include "core/err.h"
#include "core/http_client.h"
#include "core/http_server.h"
#include "core/log.h"
#include "core/metrics.h"

static const struct cfg_option schema[] = {
    {.key = "server.port",
     .type = CFG_INT,
     .def = "4000",
     .help = "TCP port (0 = ephemeral)",
     .min = 0,
     .max = 65535,
     .alias = "port"},
    {.key = "server.bind", .type = CFG_STRING, .def = "0.0.0.0", .help = "listen address"},
    {.key = "server.threads",
     .type = CFG_INT,
     .def = "0",
     .help = "worker threads (0 = one per CPU, at most 8)",
     .min = 0,
     .max = 256},
    {.key = "server.max_body",
     .type = CFG_SIZE,
     .def = "8MiB",
     .help = "largest request body",
     .min = 1024,
     .max = 64 << 20},
    {.key = "server.max_connections",
     .type = CFG_INT,
     .def = "8192",
     .help = "open client connections",
     .min = 1,
     .max = 1000000},
    {.key = "server.drain_timeout",
     .type = CFG_DURATION,
     .def = "30s",
     .help = "how long SIGTERM waits for requests in flight"},
    {.key = "server.port_file", .type = CFG_STRING, .help = "write the bound port here"},
    {.key = "master_key",
     .type = CFG_STRING,
     .help = "admin key (sk-...); when set, callers need it or a virtual key"},
    {.key = "database",
     .type = CFG_STRING,
     .def = "aistack-gateway.db",
     .help = "SQLite file for virtual keys and the usage ledger"},
    {.key = "log.level", .type = CFG_STRING, .def = "info", .help = "debug|info|warn|error"},
    {.key = "model_list", .type = CFG_NODE, .help = "deployments (see docs/gateway.md)"},
    {.key = "router_settings", .type = CFG_NODE, .help = "strategy, retries, cooldown"},
    CFG_END,
};

static int g_argc;
static char **g_argv;
static atomic_int reload_stop;

/* Loads the configuration and builds a table; NULL with messages in msg. */
static struct gw_table *load_table(struct config **cfg_out, struct buf *msg)
{
    struct config *cfg = NULL;
    struct gw_table *t = NULL;
    int rc = config_load(schema, g_argc, g_argv, &cfg, msg);
    if (rc == CONFIG_HELP) {
        fputs(msg->data ? msg->data : "", stdout);
        exit(0);
    }
    if (rc != 0)
        return NULL;
    t = gw_table_build(config_node(cfg, "model_list"), config_node(cfg, "router_settings"),
                       config_file(cfg), msg);
    if (t) {
        t->has_dns = gw_table_resolve(t) > 0;
        gw_table_bind_metrics(t);
    }
    if (cfg_out && t)
        *cfg_out = cfg;
    else
        config_free(cfg);
    return t;
}

/* SIGHUP may land on any thread (sanitizer runtimes start their own before main),
 * so the handler only writes a byte to a pipe the reload thread reads. */
static int hup_pipe[2] = {-1, -1};

static void on_hup(int sig)
{
    int saved = errno;
    char c = 'h';
    if (write(hup_pipe[1], &c, 1) < 0) { /* a full pipe already holds a pending reload */
    }
    errno = saved;
}

/* Re-resolves dns_discovery hosts every dns_refresh; publishes a new table (built from
 * the same sources as a reload) only when the set of replicas changed. */
static void *dns_main(void *ud)
{
    for (;;) {
        struct gw_table *cur = gw_current_acquire();
        uint32_t wait = cur && cur->set.dns_refresh_ms ? cur->set.dns_refresh_ms : 1000;
        int has = cur && cur->has_dns && cur->set.dns_refresh_ms;
        gw_table_release(cur);
        for (uint32_t slept = 0; slept < wait && !atomic_load(&reload_stop); slept += 100)
            usleep(100000);
        if (atomic_load(&reload_stop))
            break;
        if (!has)
            continue;
        struct buf msg;
        buf_init(&msg, 1 << 20);
        struct gw_table *t = load_table(NULL, &msg);
        cur = gw_current_acquire();
        if (t && cur && !gw_table_same_targets(t, cur)) {
            gw_table_inherit(t, cur);
            log_info("dns_discovery: replicas changed", "generation=%llu",
                     (unsigned long long)t->generation);
            gw_current_publish(t);
            t = NULL;
        }
        gw_table_release(cur);
        gw_table_release(t);
        buf_free(&msg);
    }
    return NULL;
}

static void *reload_main(void *ud)
{
    for (;;) {
        char c;
        ssize_t r = read(hup_pipe[0], &c, 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0 || c == 'q' || atomic_load(&reload_stop))
            break;
        struct buf msg;
        buf_init(&msg, 1 << 20);
        struct gw_table *t = load_table(NULL, &msg);
        if (t) {
            struct gw_table *old = gw_current_acquire();
            gw_table_inherit(t, old);
            gw_table_release(old);
            log_info("config reloaded", "models=%zu generation=%llu", t->n_models,
                     (unsigned long long)t->generation);
            gw_current_publish(t);
        } else {
            log_error("config reload failed, keeping the running configuration", "errors=\"%s\"",
                      msg.data ? msg.data : "");
        }
        buf_free(&msg);
    }
    return NULL;
}

static int write_port_file(const char *path, uint16_t port)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return AS_EIO;
    fprintf(f, "%u\n", (unsigned)port);
    if (fclose(f) != 0 || rename(tmp, path) != 0)
        return AS_EIO;
    return 0;
}

int main(int argc, char **argv)
{
    struct config *cfg = NULL;
    struct gw_table *t = NULL;
    struct http_server *srv = NULL;
    struct gw_ctx ctx = {0};
    struct buf msg;
    char err[256];
    int rc = 1;
    pthread_t reload_thr, dns_thr;
    int reload_started = 0, dns_started = 0;

    if (pipe2(hup_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
        perror("aistack-gateway: pipe");
        return 1;
    }
    /* the reader blocks; only the signal handler's end stays non-blocking */
    fcntl(hup_pipe[0], F_SETFL, 0);
    struct sigaction sa = {.sa_handler = on_hup};
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGHUP, &sa, NULL);
    log_set_service("gateway");
    g_argc = argc;
    g_argv = argv;
    buf_init(&msg, 1 << 20);
    if (gw_metrics_init() != 0) {
        fprintf(stderr, "aistack-gateway: cannot register metrics\n");
        goto out;
    }
    t = load_table(&cfg, &msg);
    if (!t) {
        fprintf(stderr, "%s", msg.data ? msg.data : "aistack-gateway: bad configuration\n");
        rc = 2;
        goto out;
    }
    enum log_level lvl;
    if (log_parse_level(config_str(cfg, "log.level"), &lvl) == 0)
        log_set_level(lvl);
    gw_current_publish(t);
    t = NULL;

    int threads = (int)config_int(cfg, "server.threads");
    if (threads == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        threads = n < 1 ? 1 : n > 8 ? 8 : (int)n;
    }
    struct http_server_config hc = {
        .bind_addr = config_str(cfg, "server.bind"),
        .port = (uint16_t)config_int(cfg, "server.port"),
        .threads = threads,
        .max_body_bytes = (size_t)config_size(cfg, "server.max_body"),
        .max_connections = (unsigned)config_int(cfg, "server.max_connections"),
        .drain_timeout_ms = (unsigned)config_duration_ms(cfg, "server.drain_timeout"),
        .idle_timeout_ms = 600000,
        .service = "gateway",
    };
    srv = http_server_new(&hc, err, sizeof err);
    if (!srv) {
        fprintf(stderr, "aistack-gateway: %s\n", err);
        goto out;
    }
    ctx.srv = srv;
    ctx.max_body = hc.max_body_bytes;
    ctx.n_clients = threads;
    ctx.clients = calloc((size_t)threads, sizeof(*ctx.clients));
    if (!ctx.clients)
        goto out;
    for (int i = 0; i < threads; i++)
        if (!(ctx.clients[i] = http_client_new(http_server_worker_loop(srv, i)))) {
            fprintf(stderr, "aistack-gateway: cannot create the HTTP client\n");
            goto out;
        }
    const char *master = config_str(cfg, "master_key");
    if (master && *master) {
        ctx.ledger = gw_ledger_new(config_str(cfg, "database"), err, sizeof err);
        if (!ctx.ledger ||
            !(ctx.keys = gw_keys_open(config_str(cfg, "database"), master, err, sizeof err))) {
            fprintf(stderr, "aistack-gateway: %s\n", err);
            goto out;
        }
    }
    if (gw_proxy_routes(srv, &ctx) != 0 || gw_keys_routes(srv, ctx.keys, ctx.ledger) != 0) {
        fprintf(stderr, "aistack-gateway: cannot install routes\n");
        goto out;
    }
    if (pthread_create(&reload_thr, NULL, reload_main, NULL) == 0)
        reload_started = 1;
    if (pthread_create(&dns_thr, NULL, dns_main, NULL) == 0)
        dns_started = 1;
    if (http_server_start(srv) != 0) {
        fprintf(stderr, "aistack-gateway: cannot start the server\n");
        goto out;
    }
    if (gw_health_start(&ctx) != 0)
        log_warn("cannot start the health checks", NULL);
    const char *pf = config_str(cfg, "server.port_file");
    if (pf && *pf && write_port_file(pf, http_server_port(srv)) != 0)
        log_warn("cannot write the port file", "path=%s", pf);
    log_info("gateway listening", "port=%u threads=%d auth=%s", (unsigned)http_server_port(srv),
             threads, ctx.keys ? "keys" : "open");
    http_server_set_ready(srv, 1);
    int run = http_server_run(srv);
    rc = run == 0 ? 0 : 1;
    log_info("gateway stopped", "drain=%s", run == 0 ? "complete" : as_strerror(run));
out:
    if (reload_started) {
        atomic_store(&reload_stop, 1);
        char q = 'q';
        if (write(hup_pipe[1], &q, 1) == 1)
            pthread_join(reload_thr, NULL);
    }
    atomic_store(&reload_stop, 1);
    if (dns_started)
        pthread_join(dns_thr, NULL);
    for (int i = 0; ctx.clients && i < ctx.n_clients; i++)
        http_client_free(ctx.clients[i]);
    http_server_free(srv);
    free(ctx.clients);
    gw_keys_free(ctx.keys);
    gw_ledger_free(ctx.ledger);
    gw_current_publish(NULL);
    gw_table_release(t);
    config_free(cfg);
    buf_free(&msg);
    signal(SIGHUP, SIG_IGN);
    close(hup_pipe[0]);
    close(hup_pipe[1]);
    return rc;
}
