/*
 * stack.h - the local stack the `aistack` command runs: services started as
 * separate processes from the binaries next to `aistack`, each with a log and
 * a pid file under a state directory, and a small synchronous HTTP client to
 * ask them things. Used by `aistack up`, `down` and `demo`.
 */
#ifndef AISTACK_CLI_STACK_H
#define AISTACK_CLI_STACK_H

#include <stddef.h>
#include <sys/types.h>

struct stack_opts {
    const char *state; /* state directory: logs/, *.pid, gateway.yaml */
    const char *model; /* GGUF to serve */
    const char *model_id;
    int infer_port, gateway_port;
    int threads;
    int with_gateway; /* put aistack-gateway in front of infer */
};

/*
 * Starts the stack unless it already runs; waits until every service is ready
 * (progress on stderr). 0, or -1 with a message in err (logs are named there).
 */
int stack_up(const struct stack_opts *o, char *err, size_t errlen);
/* Stops the services of state (SIGTERM, then SIGKILL after a grace period). */
int stack_down(const char *state, int verbose);
/* The base URL clients should use: the gateway's when it runs, else infer's. */
void stack_url(const struct stack_opts *o, char *out, size_t cap);

/*
 * POSTs a one-message chat completion (greedy) to base_url and writes the
 * reply's text into out. 0, or -1 with a message in out.
 */
int stack_chat(const char *base_url, const char *model, const char *question, char *out,
               size_t cap);

#endif
