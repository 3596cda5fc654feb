/*
 * mhd_internal.c - the alternative design, measured for docs/adr/0001-http-server.md.
 *
 * A bare libmicrohttpd server in its own internal epoll thread pool (no loop of
 * ours, no routing, logging or metrics) serving the benchmark's hello-world
 * JSON, so bench/http/run.sh can compare it with testserver (our external-loop
 * design). Usage: bench_mhd_internal --port N [--threads N]. Runs until killed.
 * Not for: anything but that comparison.
 */
#include <microhttpd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char hello[] = "{\"message\":\"Hello, World!\"}";

static enum MHD_Result on_access(void *cls, struct MHD_Connection *c, const char *url,
                                 const char *method, const char *version, const char *upload,
                                 size_t *upload_size, void **con_cls)
{
    if (!*con_cls) { /* answer on the second call, as http_server.c does (keep-alive) */
        *con_cls = c;
        return MHD_YES;
    }
    struct MHD_Response *r =
        MHD_create_response_from_buffer(sizeof hello - 1, (void *)hello, MHD_RESPMEM_PERSISTENT);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    enum MHD_Result ok = MHD_queue_response(c, strcmp(url, "/hello") ? 404 : 200, r);
    MHD_destroy_response(r);
    return ok;
}

int main(int argc, char **argv)
{
    long port = 0, threads = 1;
    for (int i = 1; i + 1 < argc; i += 2) {
        char *end;
        long v = strtol(argv[i + 1], &end, 10);
        if (*end || v < 0 || v > 65535)
            return 2;
        if (!strcmp(argv[i], "--port"))
            port = v;
        else if (!strcmp(argv[i], "--threads"))
            threads = v;
        else
            return 2;
    }
    sigset_t set; /* blocked before MHD's threads start, so they inherit it */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigprocmask(SIG_BLOCK, &set, NULL);
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_TURBO, (uint16_t)port, NULL, NULL,
        on_access, NULL, MHD_OPTION_THREAD_POOL_SIZE, (unsigned)(threads > 0 ? threads : 1),
        MHD_OPTION_CONNECTION_LIMIT, 8192u, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)16384,
        MHD_OPTION_LISTENING_ADDRESS_REUSE, 1u, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "bench_mhd_internal: cannot start\n");
        return 1;
    }
    int sig;
    sigwait(&set, &sig);
    MHD_stop_daemon(d);
    return 0;
}
