/*
 * cmd_up.c - `aistack up` starts the local stack (aistack-infer serving a
 * model, with aistack-gateway in front when built) as background processes
 * with logs and pid files under a state directory; `aistack down` stops it.
 */
#include "cli/cli.h"
#include "cli/stack.h"

#include "core/buf.h"
#include "core/config.h"
#include "train/default_model.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const struct cfg_option up_schema[] = {
    {.key = "model",
     .type = CFG_STRING,
     .help = "GGUF model to serve (default: the default model, trained on first use)",
     .alias = "m"},
    {.key = "model_id", .type = CFG_STRING, .def = "default", .help = "public model name"},
    {.key = "state", .type = CFG_STRING, .def = "state", .help = "state directory"},
    {.key = "infer_port",
     .type = CFG_INT,
     .def = "8081",
     .help = "aistack-infer port",
     .min = 1,
     .max = 65535},
    {.key = "gateway_port",
     .type = CFG_INT,
     .def = "8080",
     .help = "aistack-gateway port",
     .min = 1,
     .max = 65535},
    {.key = "gateway",
     .type = CFG_BOOL,
     .def = "true",
     .help = "run aistack-gateway in front of infer (when it is built)"},
    {.key = "threads",
     .type = CFG_INT,
     .def = "0",
     .help = "compute threads (0: all CPUs)",
     .min = 0,
     .max = 256},
    CFG_END,
};

/* Whether the gateway binary sits next to this one. */
static int have_gateway(void)
{
    char exe[PATH_MAX], path[PATH_MAX + 32];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return 0;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (!slash)
        return 0;
    *slash = '\0';
    snprintf(path, sizeof path, "%s/aistack-gateway", exe);
    return access(path, X_OK) == 0;
}

/* Shared by up and demo: options from the command line into stack_opts. */
int cli_stack_opts(int argc, char **argv, struct config **cfg, struct stack_opts *so,
                   char *model_path, size_t cap, int build_default);
int cli_stack_opts(int argc, char **argv, struct config **cfg, struct stack_opts *so,
                   char *model_path, size_t cap, int build_default)
{
    struct buf msg;
    buf_init(&msg, 1 << 16);
    int lrc = config_load(up_schema, argc, argv, cfg, &msg);
    if (lrc) {
        fputs(msg.data ? msg.data : "bad configuration\n", lrc == CONFIG_HELP ? stdout : stderr);
        buf_free(&msg);
        return lrc == CONFIG_HELP ? 1 : -1;
    }
    buf_free(&msg);
    memset(so, 0, sizeof *so);
    so->state = config_str(*cfg, "state");
    so->model_id = config_str(*cfg, "model_id");
    so->infer_port = (int)config_int(*cfg, "infer_port");
    so->gateway_port = (int)config_int(*cfg, "gateway_port");
    so->threads = (int)config_int(*cfg, "threads");
    if (!so->threads) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        so->threads = n > 0 ? (int)n : 1;
    }
    so->with_gateway = config_bool(*cfg, "gateway") && have_gateway();
    const char *model = config_str(*cfg, "model");
    if (model) {
        snprintf(model_path, cap, "%s", model);
    } else {
        char dir[PATH_MAX], err[512];
        int trained;
        snprintf(dir, sizeof dir, "%s/default-model", so->state);
        struct default_model_opts o;
        default_model_opts_init(&o, dir);
        o.threads = so->threads;
        if (!build_default) {
            snprintf(model_path, cap, "%s/model.gguf", dir);
        } else if (default_model_build(&o, &trained, err, sizeof err)) {
            fprintf(stderr, "aistack: %s\n", err);
            return -1;
        } else {
            snprintf(model_path, cap, "%s/model.gguf", dir);
            fprintf(stderr, "%s default model: %s\n", trained ? "trained the" : "using the cached",
                    model_path);
        }
    }
    so->model = model_path;
    return 0;
}

static void print_endpoints(const struct stack_opts *so)
{
    char url[128];
    stack_url(so, url, sizeof url);
    printf("aistack is up (logs in %s/logs, stop with: aistack down --state %s)\n", so->state,
           so->state);
    if (so->with_gateway)
        printf("  gateway  http://127.0.0.1:%d/v1  (OpenAI API, routes to infer)\n",
               so->gateway_port);
    printf("  infer    http://127.0.0.1:%d/v1  (model '%s': %s)\n", so->infer_port, so->model_id,
           so->model);
    printf("\ntry:\n  curl %s/v1/chat/completions -H 'Content-Type: application/json' \\\n"
           "    -d '{\"model\":\"%s\",\"messages\":[{\"role\":\"user\",\"content\":\"What is 47 + "
           "38?\"}]}'\n",
           url, so->model_id);
}

int cmd_up(int argc, char **argv)
{
    struct config *cfg = NULL;
    struct stack_opts so;
    char model[PATH_MAX], err[512];
    static char prog[] = "aistack up";
    argv[0] = prog;
    int rc = cli_stack_opts(argc, argv, &cfg, &so, model, sizeof model, 1);
    if (rc == 0) {
        if (stack_up(&so, err, sizeof err)) {
            fprintf(stderr, "aistack up: %s\n", err);
            rc = 1;
        } else {
            print_endpoints(&so);
        }
    }
    config_free(cfg);
    return rc < 0 ? 2 : rc > 0 ? 0 : rc;
}

int cmd_down(int argc, char **argv)
{
    const char *state = "state";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--state") && i + 1 < argc) {
            state = argv[++i];
        } else if (!strncmp(argv[i], "--state=", 8)) {
            state = argv[i] + 8;
        } else {
            fprintf(stderr, "usage: aistack down [--state DIR]\n");
            return !strcmp(argv[i], "--help") || !strcmp(argv[i], "-h") ? 0 : 2;
        }
    }
    return stack_down(state, 1);
}
