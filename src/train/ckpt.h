/*
 * ckpt.h - training checkpoints and export to a servable GGUF.
 *
 * A checkpoint is a GGUF file holding the model tensors, the AdamW moments
 * ("adam.m.NAME", "adam.v.NAME"), and the run position (train.step,
 * train.data_position, train.seed, adam.t) next to the same llama.* metadata
 * an export has, written atomically (temp file, fsync, rename, fsync of the
 * directory), so a run killed at any moment resumes from its last checkpoint.
 * Not for: the training loop (trainer.h).
 */
#ifndef AISTACK_TRAIN_CKPT_H
#define AISTACK_TRAIN_CKPT_H

#include <stddef.h>
#include <stdint.h>

struct tmodel;
struct adamw;
struct gguf_file;

struct ckpt_state {
    int64_t step;           /* optimizer steps completed */
    uint64_t data_position; /* sequences consumed by the batcher */
    uint64_t seed;          /* data order seed */
};

/* Saves model + optimizer + state to path. 0 or AS_E* with a message in err. */
int ckpt_save(const char *path, struct tmodel *m, const struct adamw *o,
              const struct ckpt_state *st, char *err, size_t errlen);
/*
 * Restores a checkpoint into an existing model (same config) and optimizer.
 * 0, AS_ENOENT if path does not exist, or AS_E* with a message in err.
 */
int ckpt_load(const char *path, struct tmodel *m, struct adamw *o, struct ckpt_state *st, char *err,
              size_t errlen);

/*
 * Writes the model as a llama GGUF the engine serves, with tokenizer.* metadata
 * copied from tok (may be NULL) and chat_template (may be NULL, else it
 * replaces tokenizer.chat_template). f16 != 0 stores 2-D weights as F16.
 */
int ckpt_export_gguf(const char *path, struct tmodel *m, const struct gguf_file *tok,
                     const char *name, const char *chat_template, int f16, char *err,
                     size_t errlen);

#endif
