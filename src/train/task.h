/*
 * task.h - the default model's task: arithmetic and unit conversion asked in
 * chat form, generated deterministically (no downloads), with a held-out
 * split whose answers can be checked.
 *
 * Each question is identified by (kind, a, b); a hash of that identity puts it
 * in the training, validation or held-out test split, so a test question's
 * numbers never appear together in training (the phrasing templates do).
 * Not for: tokenization or training (see bpe_train.h, trainer.h).
 */
#ifndef AISTACK_TRAIN_TASK_H
#define AISTACK_TRAIN_TASK_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

enum task_split { TASK_TRAIN = 0, TASK_VAL = 1, TASK_TEST = 2 };

struct task_item {
    char question[128];
    char answer[160];
    long long expected; /* the number a correct answer ends with */
};

/* The chat template the default model ships with (ChatML). */
extern const char task_chat_template[];

/* Number of distinct questions in the task (all splits). */
uint64_t task_count(void);
/* Question number i (0 <= i < task_count()), phrased with template variant v. */
void task_get(uint64_t i, uint32_t v, struct task_item *out);
/* Which split question i belongs to. */
enum task_split task_split_of(uint64_t i);
/* Samples a question of split s from rng state *rng (phrasing chosen too). */
void task_sample(uint64_t *rng, enum task_split s, struct task_item *out);
/*
 * Appends the training text of one exchange, rendered as task_chat_template
 * renders it, to b: the prompt part (user turn + assistant header) and the
 * reply part (answer + end of turn) are appended separately so that the
 * caller can mask the loss; *prompt_len receives the prompt's length.
 */
int task_render(const struct task_item *it, struct buf *b, size_t *prompt_len);
/* 1 when reply (the model's text) answers it correctly: its last integer equals expected. */
int task_check(const struct task_item *it, const char *reply);

#endif
