/*
 * cmd_demo.c - `aistack demo`, the main job of `make run`: builds the default
 * model on first run (generated data, BPE tokenizer, training; cached
 * afterwards), brings the stack up (aistack-infer, behind aistack-gateway
 * when built), and asks it held-out questions through the OpenAI API,
 * several at a time, printing the accuracy and one question with its answer.
 * The stack stays up for the user; `aistack down` stops it.
 */
#include "cli/cli.h"
#include "cli/stack.h"

#include "core/config.h"
#include "train/task.h"

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cli_stack_opts(int argc, char **argv, struct config **cfg, struct stack_opts *so,
                   char *model_path, size_t cap, int build_default);

#define EVAL_QUESTIONS 200
#define EVAL_CLIENTS   8

struct eval {
    const char *url, *model;
    struct task_item items[EVAL_QUESTIONS];
    char replies[EVAL_QUESTIONS][256];
    atomic_int next, correct, failed;
};

static void *eval_client(void *arg)
{
    struct eval *e = arg;
    for (;;) {
        int i = atomic_fetch_add(&e->next, 1);
        if (i >= EVAL_QUESTIONS)
            return NULL;
        if (stack_chat(e->url, e->model, e->items[i].question, e->replies[i],
                       sizeof e->replies[i])) {
            atomic_fetch_add(&e->failed, 1);
            continue;
        }
        if (task_check(&e->items[i], e->replies[i]))
            atomic_fetch_add(&e->correct, 1);
    }
}

int cmd_demo(int argc, char **argv)
{
    struct config *cfg = NULL;
    struct stack_opts so;
    char model[PATH_MAX], err[512], url[128];
    static char prog[] = "aistack demo";
    argv[0] = prog;
    int rc = cli_stack_opts(argc, argv, &cfg, &so, model, sizeof model, 1);
    if (rc) {
        config_free(cfg);
        return rc > 0 ? 0 : 2;
    }
    rc = 1;
    if (stack_up(&so, err, sizeof err)) {
        fprintf(stderr, "aistack demo: %s\n", err);
        goto out;
    }
    stack_url(&so, url, sizeof url);
    struct eval *e = calloc(1, sizeof *e);
    if (!e)
        goto out;
    e->url = url;
    e->model = so.model_id;
    uint64_t rng = 99;
    for (int i = 0; i < EVAL_QUESTIONS; i++)
        task_sample(&rng, TASK_TEST, &e->items[i]);
    printf("asking %d held-out questions (never seen in training) through %s/v1/chat/completions"
           ", %d at a time...\n",
           EVAL_QUESTIONS, url, EVAL_CLIENTS);
    fflush(stdout);
    pthread_t th[EVAL_CLIENTS];
    int started = 0;
    for (int i = 0; i < EVAL_CLIENTS; i++)
        started += pthread_create(&th[i], NULL, eval_client, e) == 0;
    for (int i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    if (!started)
        eval_client(e);
    int correct = atomic_load(&e->correct), failed = atomic_load(&e->failed);
    printf("held-out accuracy: %.1f%% (%d of %d)%s\n", 100.0 * correct / EVAL_QUESTIONS, correct,
           EVAL_QUESTIONS, failed ? " -- some requests failed, see the logs" : "");
    struct task_item it;
    char reply[256];
    rng = 2026;
    task_sample(&rng, TASK_TEST, &it);
    if (stack_chat(url, so.model_id, it.question, reply, sizeof reply)) {
        fprintf(stderr, "aistack demo: %s\n", reply);
        free(e);
        goto out;
    }
    printf("\nquestion: %s\nanswer:   %s\ncorrect:  %s\n\n", it.question, reply,
           task_check(&it, reply) ? "yes" : "no");
    printf("The stack is still up at %s (model '%s'); stop it with: aistack down --state %s\n", url,
           so.model_id, so.state);
    free(e);
    rc = failed ? 1 : 0;
out:
    config_free(cfg);
    return rc;
}
