/* stack.c - starting, stopping and asking the local stack (see stack.h). */
#include "cli/stack.h"

#include "core/buf.h"
#include "core/json.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define READY_TIMEOUT_S 300

/* Directory of the running aistack binary, where the service binaries live. */
static int bin_dir(char *out, size_t cap)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return -1;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (!slash)
        return -1;
    *slash = '\0';
    snprintf(out, cap, "%s", exe);
    return 0;
}

static pid_t read_pid(const char *state, const char *name)
{
    char path[PATH_MAX], buf[32] = {0};
    snprintf(path, sizeof path, "%s/%s.pid", state, name);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    long pid = strtol(buf, NULL, 10);
    return pid > 1 && kill((pid_t)pid, 0) == 0 ? (pid_t)pid : 0;
}

static int write_pid(const char *state, const char *name, pid_t pid)
{
    char path[PATH_MAX], tmp[PATH_MAX + 8];
    snprintf(path, sizeof path, "%s/%s.pid", state, name);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return -1;
    fprintf(f, "%ld\n", (long)pid);
    if (fclose(f) || rename(tmp, path))
        return -1;
    return 0;
}

/* Starts bin with args in its own session, output to state/logs/name.log. */
static pid_t spawn(const char *state, const char *name, char *const argv[], char *err,
                   size_t errlen)
{
    char log[PATH_MAX];
    snprintf(log, sizeof log, "%s/logs", state);
    mkdir(log, 0755);
    snprintf(log, sizeof log, "%s/logs/%s.log", state, name);
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", log, strerror(errno));
        return -1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        close(fd);
        snprintf(err, errlen, "fork: %s", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        setsid();
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0)
            dup2(devnull, 0);
        dup2(fd, 1);
        dup2(fd, 2);
        execv(argv[0], argv);
        fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(fd);
    if (write_pid(state, name, pid)) {
        kill(pid, SIGTERM);
        snprintf(err, errlen, "cannot write %s/%s.pid", state, name);
        return -1;
    }
    return pid;
}

static size_t sink(char *p, size_t size, size_t n, void *ud)
{
    struct buf *b = ud;
    return buf_append(b, p, size * n) ? 0 : size * n;
}

/* GET url: the HTTP status, or 0 when nothing answered. */
static long http_get_status(const char *url)
{
    CURL *c = curl_easy_init();
    long status = 0;
    struct buf b;
    buf_init(&b, 1 << 16);
    if (!c)
        return 0;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 2000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    buf_free(&b);
    return status;
}

/* Waits for GET base/health/ready to say 200 while pid lives. */
static int wait_ready(const char *name, int port, pid_t pid, const char *state, char *err,
                      size_t errlen)
{
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/health/ready", port);
    time_t t0 = time(NULL);
    for (int i = 0;; i++) {
        if (http_get_status(url) == 200) {
            fprintf(stderr, "%s ready on port %d\n", name, port);
            return 0;
        }
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid || kill(pid, 0) != 0) {
            snprintf(err, errlen, "%s exited during start-up: see %s/logs/%s.log", name, state,
                     name);
            return -1;
        }
        if (time(NULL) - t0 > READY_TIMEOUT_S) {
            snprintf(err, errlen, "%s not ready after %ds: see %s/logs/%s.log", name,
                     READY_TIMEOUT_S, state, name);
            return -1;
        }
        if (i % 20 == 19)
            fprintf(stderr, "waiting for %s (%lds)...\n", name, (long)(time(NULL) - t0));
        usleep(250 * 1000);
    }
}

void stack_url(const struct stack_opts *o, char *out, size_t cap)
{
    snprintf(out, cap, "http://127.0.0.1:%d", o->with_gateway ? o->gateway_port : o->infer_port);
}

static int write_gateway_config(const struct stack_opts *o, char *path, size_t cap)
{
    snprintf(path, cap, "%s/gateway.yaml", o->state);
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fprintf(f,
            "# generated by `aistack up`: the local aistack-infer behind the gateway\n"
            "# (no master_key: no authentication, for a stack bound to 127.0.0.1)\n"
            "server:\n"
            "  bind: 127.0.0.1\n"
            "database: %s/gateway.db\n"
            "model_list:\n"
            "  - model_name: %s\n"
            "    provider: aistack\n"
            "    base_url: http://127.0.0.1:%d/v1\n"
            "    model: %s\n"
            "    timeout: 120s\n",
            o->state, o->model_id, o->infer_port, o->model_id);
    return fclose(f);
}

int stack_up(const struct stack_opts *o, char *err, size_t errlen)
{
    char dir[PATH_MAX], bin[PATH_MAX + 32], port[16], threads[16], cfg[PATH_MAX];
    if (bin_dir(dir, sizeof dir)) {
        snprintf(err, errlen, "cannot find the aistack binaries");
        return -1;
    }
    if (mkdir(o->state, 0755) && errno != EEXIST) {
        snprintf(err, errlen, "%s: %s", o->state, strerror(errno));
        return -1;
    }
    pid_t pid = read_pid(o->state, "infer");
    if (!pid) {
        snprintf(bin, sizeof bin, "%s/aistack-infer", dir);
        snprintf(port, sizeof port, "%d", o->infer_port);
        snprintf(threads, sizeof threads, "%d", o->threads);
        char *argv[] = {bin,         "--model", (char *)o->model, "--model-id", (char *)o->model_id,
                        "--port",    port,      "--threads",      threads,      "--host",
                        "127.0.0.1", NULL};
        if ((pid = spawn(o->state, "infer", argv, err, errlen)) < 0)
            return -1;
    }
    if (wait_ready("infer", o->infer_port, pid, o->state, err, errlen))
        return -1;
    if (!o->with_gateway)
        return 0;
    pid = read_pid(o->state, "gateway");
    if (!pid) {
        if (write_gateway_config(o, cfg, sizeof cfg)) {
            snprintf(err, errlen, "cannot write %s/gateway.yaml", o->state);
            return -1;
        }
        snprintf(bin, sizeof bin, "%s/aistack-gateway", dir);
        snprintf(port, sizeof port, "%d", o->gateway_port);
        char *argv[] = {bin, "--config", cfg, "--port", port, NULL};
        if ((pid = spawn(o->state, "gateway", argv, err, errlen)) < 0)
            return -1;
    }
    return wait_ready("gateway", o->gateway_port, pid, o->state, err, errlen);
}

static int stop_one(const char *state, const char *name, int verbose)
{
    pid_t pid = read_pid(state, name);
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s.pid", state, name);
    if (!pid) {
        unlink(path);
        return 0;
    }
    kill(pid, SIGTERM);
    for (int i = 0; i < 300 && kill(pid, 0) == 0; i++) { /* 30 s for the drain */
        waitpid(pid, NULL, WNOHANG);
        usleep(100 * 1000);
    }
    if (kill(pid, 0) == 0) {
        kill(pid, SIGKILL);
        if (verbose)
            fprintf(stderr, "%s did not stop in 30s: killed\n", name);
    } else if (verbose) {
        fprintf(stderr, "%s stopped\n", name);
    }
    unlink(path);
    return 1;
}

int stack_down(const char *state, int verbose)
{
    int n = stop_one(state, "gateway", verbose);
    n += stop_one(state, "infer", verbose);
    if (verbose && n == 0)
        fprintf(stderr, "nothing was running under %s\n", state);
    return 0;
}

int stack_chat(const char *base_url, const char *model, const char *question, char *out, size_t cap)
{
    struct buf body, resp;
    struct json_writer w;
    char url[512];
    int rc = -1;
    buf_init(&body, 1 << 16);
    buf_init(&resp, 1 << 20);
    json_writer_init(&w, &body);
    json_obj_begin(&w);
    json_kv_str(&w, "model", model);
    json_kv_int(&w, "temperature", 0);
    json_kv_int(&w, "max_tokens", 64);
    json_key(&w, "messages");
    json_arr_begin(&w);
    json_obj_begin(&w);
    json_kv_str(&w, "role", "user");
    json_kv_str(&w, "content", question);
    json_obj_end(&w);
    json_arr_end(&w);
    json_obj_end(&w);
    snprintf(url, sizeof url, "%s/v1/chat/completions", base_url);
    CURL *c = curl_easy_init();
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    if (!c || !h) {
        snprintf(out, cap, "out of memory");
        goto out;
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.data);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)body.len);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 120000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &resp);
    CURLcode cc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (cc != CURLE_OK) {
        snprintf(out, cap, "%s: %s", url, curl_easy_strerror(cc));
        goto out;
    }
    struct json_err je;
    cJSON *j = json_parse(resp.data ? resp.data : "", resp.len, 1 << 20, 64, &je);
    const cJSON *content = j ? json_get(j, "choices.0.message.content") : NULL;
    if (status != 200 || !cJSON_IsString(content)) {
        const cJSON *m = j ? json_get(j, "error.message") : NULL;
        snprintf(out, cap, "HTTP %ld: %s", status,
                 cJSON_IsString(m) ? m->valuestring : "unexpected answer");
    } else {
        snprintf(out, cap, "%s", content->valuestring);
        rc = 0;
    }
    cJSON_Delete(j);
out:
    curl_slist_free_all(h);
    if (c)
        curl_easy_cleanup(c);
    buf_free(&body);
    buf_free(&resp);
    return rc;
}
