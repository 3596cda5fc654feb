/* ckpt.c - checkpoints and GGUF export (see ckpt.h). */
#include "train/ckpt.h"

#include "core/err.h"
#include "engine/fp16.h"
#include "engine/ggml_types.h"
#include "engine/gguf.h"
#include "train/optim.h"
#include "train/tmodel.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The llama.* hyperparameters shared by checkpoints and exports. */
static int put_model_meta(struct gguf_writer *w, const struct tm_config *c, const char *name)
{
    int rc = 0;
    rc |= gguf_writer_set_str(w, "general.architecture", "llama");
    rc |= gguf_writer_set_str(w, "general.name", name ? name : "aistack-model");
    rc |= gguf_writer_set_u32(w, "general.alignment", 32);
    rc |= gguf_writer_set_u32(w, "llama.context_length", (uint32_t)c->max_seq);
    rc |= gguf_writer_set_u32(w, "llama.embedding_length", (uint32_t)c->dim);
    rc |= gguf_writer_set_u32(w, "llama.block_count", (uint32_t)c->n_layer);
    rc |= gguf_writer_set_u32(w, "llama.feed_forward_length", (uint32_t)c->ffn);
    rc |= gguf_writer_set_u32(w, "llama.attention.head_count", (uint32_t)c->n_head);
    rc |= gguf_writer_set_u32(w, "llama.attention.head_count_kv", (uint32_t)c->n_kv_head);
    rc |= gguf_writer_set_u32(w, "llama.rope.dimension_count", (uint32_t)(c->dim / c->n_head));
    rc |= gguf_writer_set_u32(w, "llama.vocab_size", (uint32_t)c->vocab);
    rc |= gguf_writer_set_f32(w, "llama.rope.freq_base", c->rope_theta);
    rc |= gguf_writer_set_f32(w, "llama.attention.layer_norm_rms_epsilon", c->norm_eps);
    return rc ? AS_ENOMEM : 0;
}

static int add_f32(struct gguf_writer *w, const char *name, const struct tm_tensor *t,
                   const float *data)
{
    uint64_t ne[2] = {(uint64_t)t->cols, (uint64_t)t->rows};
    return gguf_writer_add_tensor(w, name, GGML_TYPE_F32, t->rows == 1 ? 1 : 2, ne, data);
}

/* fsync the directory holding path so the rename itself is durable. */
static void sync_dir(const char *path)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", path);
    int fd = open(dirname(tmp), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/*
 * Writes w to path (temp file, fsync, rename, fsync of the directory) unless an
 * earlier step failed (rc != 0); on any failure describes it in err.
 */
static int finish_write(struct gguf_writer *w, const char *path, const char *what, int rc,
                        char *err, size_t errlen)
{
    if (rc == 0 && (rc = gguf_writer_write(w, path)) == 0)
        sync_dir(path);
    if (rc)
        snprintf(err, errlen, "%s %s: %s", what, path,
                 w && *gguf_writer_errmsg(w) ? gguf_writer_errmsg(w) : as_strerror(rc));
    return rc;
}

int ckpt_save(const char *path, struct tmodel *m, const struct adamw *o,
              const struct ckpt_state *st, char *err, size_t errlen)
{
    int rc = AS_ENOMEM;
    struct gguf_writer *w = gguf_writer_new();
    if (!w)
        goto out;
    const struct tm_config *c = tm_get_config(m);
    if (put_model_meta(w, c, "checkpoint"))
        goto out;
    rc = gguf_writer_set_u64(w, "train.step", (uint64_t)st->step) |
         gguf_writer_set_u64(w, "train.data_position", st->data_position) |
         gguf_writer_set_u64(w, "train.seed", st->seed) |
         gguf_writer_set_u64(w, "adam.t", (uint64_t)o->t) |
         gguf_writer_set_bool(w, "train.tied", c->tied) |
         gguf_writer_set_u32(w, "train.max_seq", (uint32_t)c->max_seq);
    if (rc) {
        rc = AS_ENOMEM;
        goto out;
    }
    int nt;
    const struct tm_tensor *t = tm_tensors(m, &nt);
    const float *p = tm_params_flat(m);
    char name[96];
    for (int i = 0; i < nt; i++) {
        rc = add_f32(w, t[i].name, &t[i], p + t[i].offset);
        snprintf(name, sizeof name, "adam.m.%s", t[i].name);
        rc |= add_f32(w, name, &t[i], o->m + t[i].offset);
        snprintf(name, sizeof name, "adam.v.%s", t[i].name);
        rc |= add_f32(w, name, &t[i], o->v + t[i].offset);
        if (rc)
            goto out;
    }
out:
    rc = finish_write(w, path, "saving checkpoint", rc, err, errlen);
    gguf_writer_free(w);
    return rc;
}

static int load_tensor(const struct gguf_file *f, const char *name, const struct tm_tensor *t,
                       float *dst, char *err, size_t errlen)
{
    const struct gguf_tensor *g = gguf_find_tensor(f, name);
    size_t n = (size_t)t->rows * (size_t)t->cols;
    if (!g || g->type != GGML_TYPE_F32 || g->ne[0] != (uint64_t)t->cols ||
        g->ne[1] * g->ne[2] * g->ne[3] != (uint64_t)t->rows || g->size != n * 4) {
        snprintf(err, errlen, "checkpoint tensor '%s' is missing or has another shape", name);
        return AS_EFORMAT;
    }
    memcpy(dst, g->data, n * 4);
    return 0;
}

int ckpt_load(const char *path, struct tmodel *m, struct adamw *o, struct ckpt_state *st, char *err,
              size_t errlen)
{
    if (access(path, F_OK) != 0)
        return AS_ENOENT;
    struct gguf_file *f = gguf_open(path, err, errlen);
    if (!f)
        return AS_EFORMAT;
    int rc = AS_EFORMAT;
    const struct tm_config *c = tm_get_config(m);
    uint32_t dim, layers, heads, kv, ffn, vocab, max_seq;
    uint64_t step, pos, seed, t;
    int tied;
    if (gguf_get_u32(f, "llama.embedding_length", &dim) ||
        gguf_get_u32(f, "llama.block_count", &layers) ||
        gguf_get_u32(f, "llama.attention.head_count", &heads) ||
        gguf_get_u32(f, "llama.attention.head_count_kv", &kv) ||
        gguf_get_u32(f, "llama.feed_forward_length", &ffn) ||
        gguf_get_u32(f, "llama.vocab_size", &vocab) || gguf_get_u32(f, "train.max_seq", &max_seq) ||
        gguf_get_bool(f, "train.tied", &tied) || gguf_get_u64(f, "train.step", &step) ||
        gguf_get_u64(f, "train.data_position", &pos) || gguf_get_u64(f, "train.seed", &seed) ||
        gguf_get_u64(f, "adam.t", &t)) {
        snprintf(err, errlen, "%s: not a training checkpoint (missing keys)", path);
        goto out;
    }
    if ((int)dim != c->dim || (int)layers != c->n_layer || (int)heads != c->n_head ||
        (int)kv != c->n_kv_head || (int)ffn != c->ffn || (int)vocab != c->vocab ||
        (int)max_seq != c->max_seq || !tied != !c->tied) {
        snprintf(err, errlen, "%s: checkpoint was made with a different model config", path);
        goto out;
    }
    int nt;
    const struct tm_tensor *tt = tm_tensors(m, &nt);
    float *p = tm_params_flat(m);
    char name[96];
    for (int i = 0; i < nt; i++) {
        if ((rc = load_tensor(f, tt[i].name, &tt[i], p + tt[i].offset, err, errlen)))
            goto out;
        snprintf(name, sizeof name, "adam.m.%s", tt[i].name);
        if ((rc = load_tensor(f, name, &tt[i], o->m + tt[i].offset, err, errlen)))
            goto out;
        snprintf(name, sizeof name, "adam.v.%s", tt[i].name);
        if ((rc = load_tensor(f, name, &tt[i], o->v + tt[i].offset, err, errlen)))
            goto out;
    }
    o->t = (int64_t)t;
    st->step = (int64_t)step;
    st->data_position = pos;
    st->seed = seed;
    rc = 0;
out:
    gguf_close(f);
    return rc;
}

int ckpt_export_gguf(const char *path, struct tmodel *m, const struct gguf_file *tok,
                     const char *name, const char *chat_template, int f16, char *err, size_t errlen)
{
    int rc = AS_ENOMEM;
    uint16_t *half = NULL;
    struct gguf_writer *w = gguf_writer_new();
    const struct tm_config *c = tm_get_config(m);
    if (!w || put_model_meta(w, c, name))
        goto out;
    if (gguf_writer_set_u32(w, "general.file_type", f16 ? 1 : 0))
        goto out;
    for (uint64_t i = 0; tok && i < tok->n_kv; i++) {
        const struct gguf_kv *kv = &tok->kv[i];
        if (kv->key.len > 10 && !memcmp(kv->key.p, "tokenizer.", 10) && gguf_writer_copy_kv(w, kv))
            goto out;
    }
    if (chat_template && gguf_writer_set_str(w, "tokenizer.chat_template", chat_template))
        goto out;
    int nt;
    const struct tm_tensor *t = tm_tensors(m, &nt);
    const float *p = tm_params_flat(m);
    size_t n_half = 0;
    for (int i = 0; f16 && i < nt; i++)
        if (t[i].rows > 1)
            n_half += (size_t)t[i].rows * (size_t)t[i].cols;
    if (n_half && !(half = malloc(n_half * sizeof *half)))
        goto out;
    uint16_t *h = half;
    for (int i = 0; i < nt; i++) {
        size_t n = (size_t)t[i].rows * (size_t)t[i].cols;
        if (f16 && t[i].rows > 1) {
            for (size_t j = 0; j < n; j++)
                h[j] = fp32_to_fp16(p[t[i].offset + j]);
            uint64_t ne[2] = {(uint64_t)t[i].cols, (uint64_t)t[i].rows};
            rc = gguf_writer_add_tensor(w, t[i].name, GGML_TYPE_F16, 2, ne, h);
            h += n;
        } else {
            rc = add_f32(w, t[i].name, &t[i], p + t[i].offset);
        }
        if (rc)
            goto out;
    }
out:
    rc = finish_write(w, path, "exporting", rc, err, errlen);
    free(half);
    gguf_writer_free(w);
    return rc;
}
