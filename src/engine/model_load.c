/*
 * model_load.c - builds a struct model from a GGUF file: hyperparameters from
 * `{arch}.*` metadata, every tensor's shape and type checked, weights bound as
 * pointers into the mapping (zero-copy; only norms and biases are copied to
 * F32), RoPE frequencies (incl. linear and llama3 scaling) precomputed.
 * Not for: the forward pass (model.c).
 */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/err.h"
#include "core/hugemem.h"
#include "engine/fp16.h"
#include "engine/ggml_types.h"
#include "engine/gguf.h"
#include "engine/kernels.h"
#include "engine/model_impl.h"
#include "engine/quant.h"

#define MAX_EMBD   (1u << 16)
#define MAX_LAYERS 1024u
#define MAX_VOCAB  (1u << 22)
#define MAX_FF     (1u << 20)
#define MAX_HEADS  1024u
#define MAX_CTX    (1u << 22)

struct loader {
    const struct gguf_file *f;
    struct model *m;
    char *err;
    size_t errlen;
    size_t small_used, small_cap;
};

static int get_u32(struct loader *L, const char *suffix, uint32_t *out, int required)
{
    char key[128];
    snprintf(key, sizeof key, "%s.%s", L->m->hp.arch_name, suffix);
    int rc = gguf_get_u32(L->f, key, out);
    if (rc == AS_ENOENT && !required)
        return 0;
    if (rc)
        snprintf(L->err, L->errlen, "metadata %s: %s", key,
                 rc == AS_ENOENT ? "missing" : "wrong type");
    return rc;
}

static int get_f32(struct loader *L, const char *suffix, float *out)
{
    char key[128];
    snprintf(key, sizeof key, "%s.%s", L->m->hp.arch_name, suffix);
    int rc = gguf_get_f32(L->f, key, out);
    if (rc == AS_ENOENT)
        return 0;
    if (rc || !isfinite(*out))
        snprintf(L->err, L->errlen, "metadata %s: wrong type or value", key);
    return rc ? rc : isfinite(*out) ? 0 : AS_EFORMAT;
}

static const struct gguf_tensor *find(struct loader *L, const char *name, int required)
{
    const struct gguf_tensor *t = gguf_find_tensor(L->f, name);
    if (!t && required)
        snprintf(L->err, L->errlen, "tensor %s missing", name);
    return t;
}

static int shape_is(const struct gguf_tensor *t, uint64_t n0, uint64_t n1)
{
    return t->ne[0] == n0 && t->ne[1] == n1 && t->ne[2] == 1 && t->ne[3] == 1;
}

/* Binds a weight matrix of n_out rows of n_in elements. */
static int bind_mat(struct loader *L, const char *name, uint32_t n_in, uint32_t n_out,
                    struct model_mat *out)
{
    const struct gguf_tensor *t = find(L, name, 1);
    if (!t)
        return AS_EFORMAT;
    if (!shape_is(t, n_in, n_out)) {
        snprintf(L->err, L->errlen, "tensor %s: shape [%llu, %llu, %llu, %llu], expected [%u, %u]",
                 name, (unsigned long long)t->ne[0], (unsigned long long)t->ne[1],
                 (unsigned long long)t->ne[2], (unsigned long long)t->ne[3], n_in, n_out);
        return AS_EFORMAT;
    }
    const struct ggml_type_info *ti = ggml_type_get(t->type);
    if (!ti || !kern_type_supported((enum ggml_type)t->type)) {
        snprintf(L->err, L->errlen, "tensor %s: type %s not supported", name,
                 ti ? ti->name : "unknown");
        return AS_EUNSUP;
    }
    if (ggml_row_size(t->type, n_in) == 0) {
        snprintf(L->err, L->errlen, "tensor %s: row of %u not a multiple of %s blocks", name, n_in,
                 ti->name);
        return AS_EFORMAT;
    }
    *out = (struct model_mat){t->data, t->type, n_in, n_out, 0};
    L->m->weight_bytes += ggml_row_size(t->type, n_in) * n_out;
    return 0;
}

/* Copies a 1-D F32/F16/BF16 tensor of n elements into the model's F32 store. */
static int bind_vec(struct loader *L, const char *name, uint32_t n, int required, const float **out)
{
    *out = NULL;
    const struct gguf_tensor *t = find(L, name, required);
    if (!t)
        return required ? AS_EFORMAT : 0;
    if (!shape_is(t, n, 1) ||
        (t->type != GGML_TYPE_F32 && t->type != GGML_TYPE_F16 && t->type != GGML_TYPE_BF16)) {
        snprintf(L->err, L->errlen, "tensor %s: expected %u f32/f16/bf16 values", name, n);
        return AS_EFORMAT;
    }
    if (L->small_used + n > L->small_cap) {
        snprintf(L->err, L->errlen, "tensor %s: internal size error", name);
        return AS_EFORMAT;
    }
    float *dst = L->m->small + L->small_used;
    L->small_used += n;
    for (uint32_t i = 0; i < n; i++) {
        if (t->type == GGML_TYPE_F32)
            memcpy(&dst[i], (const uint8_t *)t->data + 4 * (size_t)i, 4);
        else {
            uint16_t h;
            memcpy(&h, (const uint8_t *)t->data + 2 * (size_t)i, 2);
            dst[i] = t->type == GGML_TYPE_F16 ? fp16_to_fp32(h) : bf16_to_fp32(h);
        }
    }
    *out = dst;
    return 0;
}

static int read_hparams(struct loader *L)
{
    struct model_hparams *hp = &L->m->hp;
    struct str arch;
    if (gguf_get_str(L->f, "general.architecture", &arch)) {
        snprintf(L->err, L->errlen, "metadata general.architecture missing");
        return AS_EFORMAT;
    }
    int alen = arch.len < sizeof hp->arch_name ? (int)arch.len : (int)sizeof hp->arch_name - 1;
    for (int i = 0; i < alen; i++) /* printable only: it goes into messages */
        hp->arch_name[i] = arch.p[i] >= 0x20 && arch.p[i] < 0x7f ? arch.p[i] : '?';
    hp->arch_name[alen] = 0;
    if (!strcmp(hp->arch_name, "llama") && arch.len == 5) {
        hp->arch = MODEL_ARCH_LLAMA;
        hp->rope_type = MODEL_ROPE_NORMAL;
    } else if (!strcmp(hp->arch_name, "qwen2") && arch.len == 5) {
        hp->arch = MODEL_ARCH_QWEN2;
        hp->rope_type = MODEL_ROPE_NEOX;
    } else {
        snprintf(L->err, L->errlen, "unsupported architecture '%s' (supported: llama, qwen2)",
                 hp->arch_name);
        return AS_EUNSUP;
    }
    int rc;
    if ((rc = get_u32(L, "embedding_length", &hp->n_embd, 1)) ||
        (rc = get_u32(L, "block_count", &hp->n_layer, 1)) ||
        (rc = get_u32(L, "feed_forward_length", &hp->n_ff, 1)) ||
        (rc = get_u32(L, "attention.head_count", &hp->n_head, 1)) ||
        (rc = get_u32(L, "context_length", &hp->n_ctx_train, 1)))
        return rc;
    hp->n_head_kv = hp->n_head;
    if ((rc = get_u32(L, "attention.head_count_kv", &hp->n_head_kv, 0)))
        return rc;
    if (hp->n_embd == 0 || hp->n_embd > MAX_EMBD || hp->n_layer == 0 || hp->n_layer > MAX_LAYERS ||
        hp->n_ff == 0 || hp->n_ff > MAX_FF || hp->n_head == 0 || hp->n_head > MAX_HEADS ||
        hp->n_head_kv == 0 || hp->n_head % hp->n_head_kv || hp->n_ctx_train == 0) {
        snprintf(L->err, L->errlen, "hyperparameters out of range");
        return AS_EFORMAT;
    }
    if (hp->n_ctx_train > MAX_CTX)
        hp->n_ctx_train = MAX_CTX;
    hp->head_dim = hp->n_embd / hp->n_head;
    if ((rc = get_u32(L, "attention.key_length", &hp->head_dim, 0)))
        return rc;
    hp->n_rot = hp->head_dim;
    if ((rc = get_u32(L, "rope.dimension_count", &hp->n_rot, 0)))
        return rc;
    if (hp->head_dim == 0 || hp->head_dim % 2 || hp->head_dim > 4096 || hp->n_rot == 0 ||
        hp->n_rot % 2 || hp->n_rot > hp->head_dim) {
        snprintf(L->err, L->errlen, "head dimension %u / rope dimension %u invalid", hp->head_dim,
                 hp->n_rot);
        return AS_EFORMAT;
    }
    uint32_t v_len = hp->head_dim;
    if ((rc = get_u32(L, "attention.value_length", &v_len, 0)))
        return rc;
    if (v_len != hp->head_dim) {
        snprintf(L->err, L->errlen, "value length %u != key length %u not supported", v_len,
                 hp->head_dim);
        return AS_EUNSUP;
    }
    hp->rope_theta = 10000.0f;
    hp->rms_eps = 1e-5f;
    hp->rope_freq_scale = 1.0f;
    if ((rc = get_f32(L, "rope.freq_base", &hp->rope_theta)) ||
        (rc = get_f32(L, "attention.layer_norm_rms_epsilon", &hp->rms_eps)))
        return rc;
    if (!(hp->rope_theta > 0) || !(hp->rms_eps >= 0)) {
        snprintf(L->err, L->errlen, "rope base / rms epsilon out of range");
        return AS_EFORMAT;
    }
    return 0;
}

void model_rope_llama3_divisors(double theta, uint32_t n_rot, double factor, double lo, double hi,
                                uint32_t orig_ctx, double *div)
{
    double lo_wl = orig_ctx / lo, hi_wl = orig_ctx / hi;
    for (uint32_t j = 0; j < n_rot / 2; j++) {
        double freq = pow(theta, -2.0 * j / n_rot), wl = 2 * M_PI / freq;
        if (wl < hi_wl || !(factor > 0))
            div[j] = 1;
        else if (wl > lo_wl || !(hi > lo))
            div[j] = factor;
        else {
            double smooth = (orig_ctx / wl - lo) / (hi - lo);
            div[j] = 1.0 / ((1 - smooth) / factor + smooth);
        }
    }
}

/* The llama3 divisors from {arch}.rope.scaling.* metadata (Meta's defaults when absent). */
static void llama3_factors(struct loader *L, double *div)
{
    const struct model_hparams *hp = &L->m->hp;
    float factor = 8, lo = 1, hi = 4;
    uint32_t orig = 8192;
    get_f32(L, "rope.scaling.factor", &factor);
    get_f32(L, "rope.scaling.low_freq_factor", &lo);
    get_f32(L, "rope.scaling.high_freq_factor", &hi);
    get_u32(L, "rope.scaling.original_context_length", &orig, 0);
    model_rope_llama3_divisors(hp->rope_theta, hp->n_rot, factor, lo, hi, orig ? orig : 8192, div);
}

static int rope_setup(struct loader *L)
{
    struct model *m = L->m;
    struct model_hparams *hp = &m->hp;
    uint32_t half = hp->n_rot / 2;
    m->rope_freq = malloc(half * sizeof *m->rope_freq);
    double *div = calloc(half, sizeof *div);
    int rc = 0;
    if (!m->rope_freq || !div) {
        snprintf(L->err, L->errlen, "out of memory");
        rc = AS_ENOMEM;
        goto out;
    }
    for (uint32_t j = 0; j < half; j++)
        div[j] = 1;
    char key[128];
    struct str type = {"", 0};
    snprintf(key, sizeof key, "%s.rope.scaling.type", hp->arch_name);
    gguf_get_str(L->f, key, &type);
    float factor = 0;
    if ((rc = get_f32(L, "rope.scaling.factor", &factor)))
        goto out;
    float lin = 0;
    if ((rc = get_f32(L, "rope.scale_linear", &lin)))
        goto out;
    if (type.len == 6 && !memcmp(type.p, "linear", 6) && factor > 0)
        hp->rope_freq_scale = 1.0f / factor;
    else if (lin > 0)
        hp->rope_freq_scale = 1.0f / lin;
    else if (type.len && !(type.len == 4 && !memcmp(type.p, "none", 4)) &&
             !(type.len == 6 && !memcmp(type.p, "llama3", 6)) &&
             !(type.len == 6 && !memcmp(type.p, "linear", 6))) {
        snprintf(L->err, L->errlen, "rope scaling type '%.*s' not supported",
                 (int)(type.len > 32 ? 32 : type.len), type.p);
        rc = AS_EUNSUP;
        goto out;
    }
    const struct gguf_tensor *ff = find(L, "rope_freqs.weight", 0);
    if (ff) {
        if (!shape_is(ff, half, 1) || ff->type != GGML_TYPE_F32) {
            snprintf(L->err, L->errlen, "tensor rope_freqs.weight: expected %u f32 values", half);
            rc = AS_EFORMAT;
            goto out;
        }
        for (uint32_t j = 0; j < half; j++) {
            float v;
            memcpy(&v, (const uint8_t *)ff->data + 4 * (size_t)j, 4);
            if (!(v > 0) || !isfinite(v)) {
                snprintf(L->err, L->errlen, "tensor rope_freqs.weight: bad value");
                rc = AS_EFORMAT;
                goto out;
            }
            div[j] = v;
        }
        hp->has_rope_freqs = 1;
    } else if (type.len == 6 && !memcmp(type.p, "llama3", 6)) {
        llama3_factors(L, div);
        hp->has_rope_freqs = 1;
    }
    for (uint32_t j = 0; j < half; j++)
        m->rope_freq[j] = hp->rope_freq_scale * pow(hp->rope_theta, -2.0 * j / hp->n_rot) / div[j];
out:
    free(div);
    return rc;
}

static int bind_weights(struct loader *L)
{
    struct model *m = L->m;
    struct model_hparams *hp = &m->hp;
    uint32_t d = hp->n_embd, qd = hp->n_head * hp->head_dim, kvd = hp->n_head_kv * hp->head_dim;
    int rc;
    const struct gguf_tensor *te = find(L, "token_embd.weight", 1);
    if (!te)
        return AS_EFORMAT;
    if (te->ne[1] == 0 || te->ne[1] > MAX_VOCAB) {
        snprintf(L->err, L->errlen, "tensor token_embd.weight: bad vocabulary size");
        return AS_EFORMAT;
    }
    hp->n_vocab = (uint32_t)te->ne[1];
    if ((rc = bind_mat(L, "token_embd.weight", d, hp->n_vocab, &m->tok_embd)))
        return rc;
    m->weight_bytes = 0; /* one row of the embedding is read per token, not the table */
    const struct quant_traits *qt = quant_get_traits(m->tok_embd.type);
    if (!qt || !qt->to_float) {
        snprintf(L->err, L->errlen, "tensor token_embd.weight: type %s cannot be dequantized",
                 ggml_type_get(m->tok_embd.type)->name);
        return AS_EUNSUP;
    }
    m->embd_to_float = qt->to_float;
    if (find(L, "output.weight", 0)) {
        if ((rc = bind_mat(L, "output.weight", d, hp->n_vocab, &m->output)))
            return rc;
    } else {
        m->output = m->tok_embd;
        m->weight_bytes += ggml_row_size(m->tok_embd.type, d) * hp->n_vocab;
        hp->tied_output = 1;
    }
    L->small_cap = (size_t)d + (size_t)hp->n_layer * (2 * d + qd + 2 * kvd);
    if (!(m->small = malloc(L->small_cap * sizeof(float))) ||
        !(m->layers = calloc(hp->n_layer, sizeof *m->layers))) {
        snprintf(L->err, L->errlen, "out of memory");
        return AS_ENOMEM;
    }
    if ((rc = bind_vec(L, "output_norm.weight", d, 1, &m->output_norm)))
        return rc;
    int biases = hp->arch == MODEL_ARCH_QWEN2;
    for (uint32_t il = 0; il < hp->n_layer; il++) {
        struct model_layer *ly = &m->layers[il];
        char n[13][64];
        static const char *const sfx[13] = {"attn_norm.weight",
                                            "ffn_norm.weight",
                                            "attn_q.bias",
                                            "attn_k.bias",
                                            "attn_v.bias",
                                            "attn_q.weight",
                                            "attn_k.weight",
                                            "attn_v.weight",
                                            "attn_output.weight",
                                            "ffn_gate.weight",
                                            "ffn_up.weight",
                                            "ffn_down.weight",
                                            ""};
        for (int i = 0; i < 12; i++)
            snprintf(n[i], sizeof n[i], "blk.%u.%s", il, sfx[i]);
        if ((rc = bind_vec(L, n[0], d, 1, &ly->attn_norm)) ||
            (rc = bind_vec(L, n[1], d, 1, &ly->ffn_norm)) ||
            (rc = bind_vec(L, n[2], qd, biases, &ly->bq)) ||
            (rc = bind_vec(L, n[3], kvd, biases, &ly->bk)) ||
            (rc = bind_vec(L, n[4], kvd, biases, &ly->bv)) ||
            (rc = bind_mat(L, n[5], d, qd, &ly->wq)) || (rc = bind_mat(L, n[6], d, kvd, &ly->wk)) ||
            (rc = bind_mat(L, n[7], d, kvd, &ly->wv)) || (rc = bind_mat(L, n[8], qd, d, &ly->wo)) ||
            (rc = bind_mat(L, n[9], d, hp->n_ff, &ly->w_gate)) ||
            (rc = bind_mat(L, n[10], d, hp->n_ff, &ly->w_up)) ||
            (rc = bind_mat(L, n[11], hp->n_ff, d, &ly->w_down)))
            return rc;
    }
    return 0;
}

struct model *model_load_gguf(const struct gguf_file *f, const struct model_params *p, char *err,
                              size_t errlen)
{
    struct model *m = calloc(1, sizeof *m);
    if (!m) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    struct loader L = {.f = f, .m = m, .err = err, .errlen = errlen};
    m->f = f;
    if (read_hparams(&L) || rope_setup(&L) || bind_weights(&L)) {
        model_free(m);
        return NULL;
    }
    m->n_ctx = m->hp.n_ctx_train;
    if (p && p->n_ctx_max && p->n_ctx_max < m->n_ctx)
        m->n_ctx = p->n_ctx_max;
    return m;
}

/*
 * Drops the whole pages of [a, b) (a mapped weight range no one reads again):
 * private anonymous pages are freed, file pages leave this process's RSS.
 */
static void drop_pages(const uint8_t *a, const uint8_t *b)
{
    uintptr_t lo = ((uintptr_t)a + 4095) & ~(uintptr_t)4095, hi = (uintptr_t)b & ~(uintptr_t)4095;
    if (hi > lo)
        madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

/* Bytes packed per step: the file's pages are dropped after each, so memory grows by ~this. */
#define PACK_STEP_BYTES (4u << 20)
#define PACK_THREADS    4

struct pack_step {
    const struct model_mat *w;
    uint8_t *dst; /* the matrix's place in the packed region */
    uint32_t r0, nr;
};

struct packer {
    struct pack_step *steps;
    uint32_t n;
    atomic_uint next;
};

static int packable(const struct model_mat *w)
{
    return kern_pack_supported((enum ggml_type)w->type) && w->n_out % KERN_PACK_ROWS == 0;
}

/* Rows per step for rows of rb bytes: whole tiles, about PACK_STEP_BYTES. */
static uint32_t pack_step_rows(size_t rb)
{
    return (uint32_t)(PACK_STEP_BYTES / rb / KERN_PACK_ROWS + 1) * KERN_PACK_ROWS;
}

static void *pack_worker(void *arg)
{
    struct packer *pk = arg;
    for (uint32_t i; (i = atomic_fetch_add(&pk->next, 1)) < pk->n;) {
        const struct pack_step *s = &pk->steps[i];
        const size_t rb = ggml_row_size(s->w->type, s->w->n_in);
        const uint8_t *src = (const uint8_t *)s->w->data + (size_t)s->r0 * rb;
        kern_pack((enum ggml_type)s->w->type, src, s->nr, s->w->n_in, s->dst + (size_t)s->r0 * rb);
        drop_pages(src, src + (size_t)s->nr * rb);
    }
    return NULL;
}

/*
 * Packs the weight matrices that have a packed form (kern_pack) into one
 * region and drops their pages of the file, so memory stays about the file's
 * size. Several threads: most of the time goes to first touches of the new
 * region (on a fresh VM, 1B Q4_0: 0.7 of 1.2 s in the kernel's page zeroing
 * with one thread). The tied output is token_embd, whose rows the embedding
 * lookup reads: not packed. Without memory for the region, nothing is packed.
 */
static void pack_weights(struct model *m)
{
    const uint32_t nm = 7 * m->hp.n_layer + 1;
    struct model_mat **mats = malloc(sizeof *mats * nm);
    uint8_t **dst = malloc(sizeof *dst * nm);
    struct packer pk = {0};
    uint32_t n = 0;
    if (!mats || !dst)
        goto out;
    for (uint32_t il = 0; il < m->hp.n_layer; il++) {
        struct model_layer *ly = &m->layers[il];
        struct model_mat *l[7] = {&ly->wq,     &ly->wk,   &ly->wv,    &ly->wo,
                                  &ly->w_gate, &ly->w_up, &ly->w_down};
        for (int i = 0; i < 7; i++)
            mats[n++] = l[i];
    }
    if (!m->hp.tied_output)
        mats[n++] = &m->output;
    size_t total = 0, steps = 0;
    for (uint32_t i = 0; i < n; i++) {
        const struct model_mat *w = mats[i];
        if (!packable(w))
            continue;
        const size_t rb = ggml_row_size(w->type, w->n_in), sr = pack_step_rows(rb);
        total += (rb * w->n_out + 63) & ~(size_t)63;
        steps += (w->n_out + sr - 1) / sr;
    }
    uint8_t *P = total ? hugemem_alloc(total) : NULL;
    if (!P || !(pk.steps = malloc(sizeof *pk.steps * steps))) {
        hugemem_free(P, total);
        goto out;
    }
    size_t off = 0;
    for (uint32_t i = 0; i < n; i++) {
        const struct model_mat *w = mats[i];
        dst[i] = NULL;
        if (!packable(w))
            continue;
        const size_t rb = ggml_row_size(w->type, w->n_in);
        const uint32_t step = pack_step_rows(rb);
        dst[i] = P + off;
        for (uint32_t r = 0; r < w->n_out; r += step)
            pk.steps[pk.n++] =
                (struct pack_step){w, dst[i], r, w->n_out - r < step ? w->n_out - r : step};
        off += (rb * w->n_out + 63) & ~(size_t)63;
    }
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    int nth = ncpu < 1 ? 1 : ncpu > PACK_THREADS ? PACK_THREADS : (int)ncpu, started = 0;
    pthread_t th[PACK_THREADS];
    for (int i = 1; i < nth; i++, started++)
        if (pthread_create(&th[started], NULL, pack_worker, &pk))
            break;
    pack_worker(&pk);
    for (int i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    for (uint32_t i = 0; i < n; i++)
        if (dst[i]) {
            mats[i]->data = dst[i];
            mats[i]->packed = 1;
            m->n_packed++;
        }
    m->packed = P;
    m->packed_size = total;
out:
    free(pk.steps);
    free(mats);
    free(dst);
}

struct model *model_load(const char *path, const struct model_params *p, char *err, size_t errlen)
{
    enum model_load_mode mode = p ? p->load : MODEL_LOAD_AUTO;
    struct gguf_open_opts o = {
        .huge = mode == MODEL_LOAD_COPY                          ? GGUF_HUGE_READ
                : mode == MODEL_LOAD_AUTO && hugemem_available() ? GGUF_HUGE_MAP_OR_READ
                                                                 : GGUF_HUGE_NO,
        .progress = p ? p->progress : NULL,
        .ud = p ? p->progress_ud : NULL,
    };
    struct gguf_file *f = gguf_open_ex(path, &o, err, errlen);
    if (!f)
        return NULL;
    struct model *m = model_load_gguf(f, p, err, errlen);
    if (!m) {
        gguf_close(f);
        return NULL;
    }
    m->owned = f;
    if (gguf_memory_of(f) == GGUF_MEM_MAP) {
        /* start reading the weights in now (async), so a cold first token (or the
           packing below) does not page-fault its way through the file */
        uintptr_t a = (uintptr_t)f->map & ~(uintptr_t)4095;
        madvise((void *)a, f->map_size + ((uintptr_t)f->map - a), MADV_WILLNEED);
    }
    if (mode != MODEL_LOAD_MMAP && !(p && p->no_pack))
        pack_weights(m);
    return m;
}

void model_free(struct model *m)
{
    if (!m)
        return;
    gguf_close(m->owned);
    hugemem_free(m->packed, m->packed_size);
    free(m->layers);
    free(m->small);
    free(m->rope_freq);
    free(m);
}

const struct model_hparams *model_get_hparams(const struct model *m)
{
    return &m->hp;
}

const struct gguf_file *model_get_gguf(const struct model *m)
{
    return m->f;
}

const char *model_weights_memory(const struct model *m)
{
    switch (gguf_memory_of(m->f)) {
    case GGUF_MEM_MAP:
        return "mmap";
    case GGUF_MEM_MAP_HUGE:
        return "mmap-huge";
    case GGUF_MEM_READ:
        return "copy";
    }
    return "?";
}

uint32_t model_weights_packed(const struct model *m)
{
    return m->n_packed;
}

uint32_t model_n_ctx(const struct model *m)
{
    return m->n_ctx;
}

uint64_t model_weight_bytes(const struct model *m)
{
    return m->weight_bytes;
}

void model__embed_row(const struct model *m, int32_t tok, float *out)
{
    const struct model_mat *e = &m->tok_embd;
    size_t rb = ggml_row_size(e->type, e->n_in);
    m->embd_to_float((const uint8_t *)e->data + (size_t)tok * rb, out, e->n_in);
}
