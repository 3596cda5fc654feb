/*
 * hf_import.c - Hugging Face llama/mistral/qwen2 checkpoint -> GGUF (see
 * hf_import.h).
 */
#include "engine/hf_import.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "engine/fp16.h"
#include "engine/ggml_types.h"
#include "engine/gguf.h"
#include "engine/model.h"
#include "engine/safetensors.h"
#include "engine/tok_convert.h"

#define HF_MAX_FILES  1024
#define HF_MAX_CONFIG (4u << 20)

/* How one GGUF tensor is produced from a safetensors tensor. */
struct hf_job {
    const struct st_tensor *src;
    uint32_t out_type;
    uint64_t n_in, n_out;
    uint32_t permute_heads; /* 0: rows as they are; else HF rotate-half -> adjacent pairs */
};

struct hf_ctx {
    struct st_file *files[HF_MAX_FILES];
    int n_files;
    struct hf_job *jobs;
    size_t n_jobs, cap_jobs;
    float *rope_freqs;
    char *err;
    size_t errlen;
};

int hf_import_parse_type(const char *s, uint32_t *out)
{
    if (!strcmp(s, "f32"))
        *out = GGML_TYPE_F32;
    else if (!strcmp(s, "f16"))
        *out = GGML_TYPE_F16;
    else if (!strcmp(s, "bf16"))
        *out = GGML_TYPE_BF16;
    else
        return AS_EINVAL;
    return 0;
}

static char *read_small(const char *path, size_t max, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *p = malloc(max + 1);
    size_t n = p ? fread(p, 1, max + 1, f) : 0;
    fclose(f);
    if (!p || n > max) {
        free(p);
        return NULL;
    }
    p[n] = 0;
    *len = n;
    return p;
}

static cJSON *read_json(const char *dir, const char *name)
{
    char path[4096];
    size_t len;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    char *s = read_small(path, HF_MAX_CONFIG, &len);
    if (!s)
        return NULL;
    cJSON *j = cJSON_ParseWithLength(s, len);
    free(s);
    return j;
}

static int cfg_u32(const cJSON *cfg, const char *key, uint32_t *out, int required)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(cfg, key);
    if (!j || cJSON_IsNull(j))
        return required ? -1 : 0;
    if (!cJSON_IsNumber(j) || !(j->valuedouble >= 0 && j->valuedouble <= 4294967295.0) ||
        j->valuedouble != (double)(uint32_t)j->valuedouble)
        return -1;
    *out = (uint32_t)j->valuedouble;
    return 0;
}

static int cfg_f32(const cJSON *cfg, const char *key, float *out)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(cfg, key);
    if (!j || cJSON_IsNull(j))
        return 0;
    if (!cJSON_IsNumber(j) || !isfinite(j->valuedouble))
        return -1;
    *out = (float)j->valuedouble;
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int open_shards(struct hf_ctx *h, const char *dir)
{
    DIR *d = opendir(dir);
    char *names[HF_MAX_FILES];
    int n = 0, rc = 0;
    if (!d) {
        snprintf(h->err, h->errlen, "%s: cannot open directory", dir);
        return AS_EIO;
    }
    for (struct dirent *e; (e = readdir(d));) {
        size_t l = strlen(e->d_name);
        if (l < 12 || strcmp(e->d_name + l - 12, ".safetensors"))
            continue;
        if (n == HF_MAX_FILES || !(names[n] = strdup(e->d_name))) {
            snprintf(h->err, h->errlen, "too many .safetensors files");
            rc = AS_ERANGE;
            break;
        }
        n++;
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof names[0], cmp_str);
    for (int i = 0; i < n; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (!rc && !(h->files[h->n_files] = st_open(path, h->err, h->errlen)))
            rc = AS_EFORMAT;
        else if (!rc)
            h->n_files++;
        free(names[i]);
    }
    if (!rc && n == 0) {
        snprintf(h->err, h->errlen, "%s: no .safetensors files", dir);
        rc = AS_ENOENT;
    }
    return rc;
}

static const struct st_tensor *find_src(struct hf_ctx *h, const char *name)
{
    for (int i = 0; i < h->n_files; i++) {
        const struct st_tensor *t = st_find(h->files[i], name);
        if (t)
            return t;
    }
    return NULL;
}

static float src_value(const struct st_tensor *t, uint64_t i)
{
    const uint8_t *p = t->data + i * st_dtype_size(t->dtype);
    if (t->dtype == ST_DTYPE_F32) {
        float v;
        memcpy(&v, p, 4);
        return v;
    }
    uint16_t u;
    memcpy(&u, p, 2);
    return t->dtype == ST_DTYPE_F16 ? fp16_to_fp32(u) : bf16_to_fp32(u);
}

static int fill_rows(void *ud, uint64_t row0, uint64_t n_rows, void *dst)
{
    const struct hf_job *j = ud;
    uint8_t *out = dst;
    size_t esz = j->out_type == GGML_TYPE_F32 ? 4 : 2;
    for (uint64_t r = row0; r < row0 + n_rows; r++) {
        uint64_t sr = r;
        if (j->permute_heads) {
            uint64_t hd = j->n_out / j->permute_heads, h = r / hd, w = r % hd;
            sr = h * hd + (w % 2) * (hd / 2) + w / 2;
        }
        for (uint64_t c = 0; c < j->n_in; c++) {
            float v = src_value(j->src, sr * j->n_in + c);
            uint8_t *o = out + ((r - row0) * j->n_in + c) * esz;
            if (j->out_type == GGML_TYPE_F32) {
                memcpy(o, &v, 4);
            } else {
                uint16_t u = j->out_type == GGML_TYPE_F16 ? fp32_to_fp16(v) : fp32_to_bf16(v);
                memcpy(o, &u, 2);
            }
        }
    }
    return 0;
}

/*
 * Adds GGUF tensor gname from HF tensor hname, checked to be (n_out, n_in)
 * (n_out 1 with a 1-D source for vectors).
 */
static int add(struct hf_ctx *h, struct gguf_writer *w, const char *hname, const char *gname,
               uint64_t n_in, uint64_t n_out, uint32_t type, uint32_t permute, int required)
{
    const struct st_tensor *t = find_src(h, hname);
    if (!t) {
        if (required)
            snprintf(h->err, h->errlen, "tensor %s missing", hname);
        return required ? AS_EFORMAT : 0;
    }
    int vec = n_out == 1;
    if (t->dtype == ST_DTYPE_OTHER ||
        (vec ? t->n_dims != 1 || t->shape[0] != n_in
             : t->n_dims != 2 || t->shape[0] != n_out || t->shape[1] != n_in)) {
        snprintf(h->err, h->errlen, "tensor %s: dtype %s / shape does not fit the config", hname,
                 t->dtype_name);
        return AS_EFORMAT;
    }
    if (h->n_jobs == h->cap_jobs) {
        snprintf(h->err, h->errlen, "too many tensors");
        return AS_ERANGE;
    }
    struct hf_job *j = &h->jobs[h->n_jobs++];
    *j = (struct hf_job){t, vec ? GGML_TYPE_F32 : type, n_in, n_out, permute};
    uint64_t ne[2] = {n_in, n_out};
    int rc = gguf_writer_add_tensor_cb(w, gname, j->out_type, vec ? 1 : 2, ne, fill_rows, j);
    if (rc)
        snprintf(h->err, h->errlen, "tensor %s: %s", gname, as_strerror(rc));
    return rc;
}

struct hf_hparams {
    int qwen2;
    uint32_t d, n_layer, n_ff, n_head, n_kv, hd, vocab, ctx;
    float eps, theta;
    int tied;
};

static int read_config(struct hf_ctx *h, const cJSON *cfg, struct hf_hparams *p)
{
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(cfg, "model_type");
    if (!cJSON_IsString(mt)) {
        snprintf(h->err, h->errlen, "config.json: model_type missing");
        return AS_EFORMAT;
    }
    if (!strcmp(mt->valuestring, "qwen2"))
        p->qwen2 = 1;
    else if (strcmp(mt->valuestring, "llama") && strcmp(mt->valuestring, "mistral")) {
        snprintf(h->err, h->errlen, "unsupported model_type '%.40s' (llama, mistral, qwen2)",
                 mt->valuestring);
        return AS_EUNSUP;
    }
    p->ctx = 2048;
    p->eps = 1e-6f;
    p->theta = 10000.0f;
    if (cfg_u32(cfg, "hidden_size", &p->d, 1) ||
        cfg_u32(cfg, "num_hidden_layers", &p->n_layer, 1) ||
        cfg_u32(cfg, "intermediate_size", &p->n_ff, 1) ||
        cfg_u32(cfg, "num_attention_heads", &p->n_head, 1) ||
        cfg_u32(cfg, "vocab_size", &p->vocab, 1) ||
        cfg_u32(cfg, "max_position_embeddings", &p->ctx, 0) ||
        cfg_f32(cfg, "rms_norm_eps", &p->eps) || cfg_f32(cfg, "rope_theta", &p->theta)) {
        snprintf(h->err, h->errlen, "config.json: a required size is missing or invalid");
        return AS_EFORMAT;
    }
    p->n_kv = p->n_head;
    if (cfg_u32(cfg, "num_key_value_heads", &p->n_kv, 0) || p->n_head == 0 || p->n_kv == 0 ||
        p->n_head % p->n_kv || p->d == 0 || p->d % p->n_head || p->d > 65536 || p->n_layer == 0 ||
        p->n_layer > 1024 || p->n_ff == 0 || p->n_ff > (1u << 20) || p->vocab == 0 ||
        p->vocab > (1u << 22) || p->ctx == 0) {
        snprintf(h->err, h->errlen, "config.json: sizes out of range");
        return AS_EFORMAT;
    }
    p->hd = p->d / p->n_head;
    if (cfg_u32(cfg, "head_dim", &p->hd, 0) || p->hd == 0 || p->hd % 2 || p->hd > 4096) {
        snprintf(h->err, h->errlen, "config.json: head_dim invalid");
        return AS_EFORMAT;
    }
    const cJSON *tie = cJSON_GetObjectItemCaseSensitive(cfg, "tie_word_embeddings");
    p->tied = cJSON_IsTrue(tie);
    return 0;
}

/* rope_scaling: llama3 -> rope_freqs tensor (as llama.cpp's converter), linear -> metadata */
static int rope_scaling(struct hf_ctx *h, struct gguf_writer *w, const cJSON *cfg,
                        const struct hf_hparams *p, const char *arch)
{
    const cJSON *rs = cJSON_GetObjectItemCaseSensitive(cfg, "rope_scaling");
    if (!rs || cJSON_IsNull(rs))
        return 0;
    const cJSON *ty = cJSON_GetObjectItemCaseSensitive(rs, "rope_type");
    if (!cJSON_IsString(ty))
        ty = cJSON_GetObjectItemCaseSensitive(rs, "type");
    float factor = 1, lo = 1, hi = 4;
    uint32_t orig = 8192;
    char key[96];
    if (!cJSON_IsObject(rs) || !cJSON_IsString(ty) || cfg_f32(rs, "factor", &factor) ||
        cfg_f32(rs, "low_freq_factor", &lo) || cfg_f32(rs, "high_freq_factor", &hi) ||
        cfg_u32(rs, "original_max_position_embeddings", &orig, 0) || !(factor > 0)) {
        snprintf(h->err, h->errlen, "config.json: rope_scaling malformed");
        return AS_EFORMAT;
    }
    if (!strcmp(ty->valuestring, "linear")) {
        snprintf(key, sizeof key, "%s.rope.scaling.type", arch);
        int rc = gguf_writer_set_str(w, key, "linear");
        snprintf(key, sizeof key, "%s.rope.scaling.factor", arch);
        return rc ? rc : gguf_writer_set_f32(w, key, factor);
    }
    if (strcmp(ty->valuestring, "llama3") || !(hi > lo) || orig == 0) {
        snprintf(h->err, h->errlen, "rope_scaling type '%.32s' not supported", ty->valuestring);
        return AS_EUNSUP;
    }
    uint32_t half = p->hd / 2;
    if (!(h->rope_freqs = malloc(half * sizeof(float))))
        return AS_ENOMEM;
    double *div = malloc(half * sizeof *div);
    if (!div)
        return AS_ENOMEM;
    model_rope_llama3_divisors(p->theta, p->hd, factor, lo, hi, orig, div);
    for (uint32_t j = 0; j < half; j++)
        h->rope_freqs[j] = (float)div[j];
    free(div);
    uint64_t ne[1] = {half};
    return gguf_writer_add_tensor(w, "rope_freqs.weight", GGML_TYPE_F32, 1, ne, h->rope_freqs);
}

static int set_metadata(struct gguf_writer *w, const struct hf_hparams *p, const char *arch)
{
    struct {
        const char *k;
        uint32_t v;
    } u[] = {{"context_length", p->ctx},          {"embedding_length", p->d},
             {"block_count", p->n_layer},         {"feed_forward_length", p->n_ff},
             {"attention.head_count", p->n_head}, {"attention.head_count_kv", p->n_kv},
             {"rope.dimension_count", p->hd},     {"attention.key_length", p->hd},
             {"attention.value_length", p->hd}};
    char key[96];
    int rc;
    if ((rc = gguf_writer_set_str(w, "general.architecture", arch)))
        return rc;
    for (size_t i = 0; i < sizeof u / sizeof u[0]; i++) {
        snprintf(key, sizeof key, "%s.%s", arch, u[i].k);
        if ((rc = gguf_writer_set_u32(w, key, u[i].v)))
            return rc;
    }
    snprintf(key, sizeof key, "%s.rope.freq_base", arch);
    if ((rc = gguf_writer_set_f32(w, key, p->theta)))
        return rc;
    snprintf(key, sizeof key, "%s.attention.layer_norm_rms_epsilon", arch);
    return gguf_writer_set_f32(w, key, p->eps);
}

static int add_tokenizer(struct hf_ctx *h, struct gguf_writer *w, const char *dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    FILE *f = fopen(path, "rb");
    int rc;
    if (f) {
        fclose(f);
        rc = tok_convert_hf_json(w, path, NULL, h->err, h->errlen);
    } else {
        snprintf(path, sizeof path, "%s/tokenizer.model", dir);
        rc = tok_convert_spm_model(w, path, h->err, h->errlen);
    }
    if (rc)
        return rc;
    cJSON *tc = read_json(dir, "tokenizer_config.json");
    const cJSON *tmpl = cJSON_GetObjectItemCaseSensitive(tc, "chat_template");
    if (cJSON_IsString(tmpl))
        rc = gguf_writer_set_str(w, "tokenizer.chat_template", tmpl->valuestring);
    cJSON_Delete(tc);
    return rc;
}

int hf_import(const char *dir, const char *out_path, const struct hf_import_opts *o, char *err,
              size_t errlen)
{
    struct hf_ctx h = {.err = err, .errlen = errlen};
    struct gguf_writer *w = NULL;
    struct hf_hparams p = {0};
    cJSON *cfg = NULL;
    uint32_t type = o ? o->type : GGML_TYPE_F16;
    int rc;
    if (errlen)
        err[0] = 0;
    if (type != GGML_TYPE_F32 && type != GGML_TYPE_F16 && type != GGML_TYPE_BF16) {
        snprintf(err, errlen, "output type must be f32, f16 or bf16");
        return AS_EINVAL;
    }
    if (!(cfg = read_json(dir, "config.json")) || !cJSON_IsObject(cfg)) {
        snprintf(err, errlen, "%s/config.json: missing, too large or not JSON", dir);
        rc = AS_EFORMAT;
        goto out;
    }
    if ((rc = read_config(&h, cfg, &p)) || (rc = open_shards(&h, dir)))
        goto out;
    const char *arch = p.qwen2 ? "qwen2" : "llama";
    h.cap_jobs = 4 + (size_t)p.n_layer * 12;
    if (!(h.jobs = calloc(h.cap_jobs, sizeof *h.jobs)) || !(w = gguf_writer_new())) {
        snprintf(err, errlen, "out of memory");
        rc = AS_ENOMEM;
        goto out;
    }
    if ((rc = set_metadata(w, &p, arch)) ||
        (rc = gguf_writer_set_u32(w, "general.file_type",
                                  type == GGML_TYPE_F32   ? 0
                                  : type == GGML_TYPE_F16 ? 1
                                                          : 32)) ||
        (rc = rope_scaling(&h, w, cfg, &p, arch))) {
        if (!err[0])
            snprintf(err, errlen, "metadata: %s", as_strerror(rc));
        goto out;
    }
    if ((rc = add_tokenizer(&h, w, dir)))
        goto out;
    uint32_t qd = p.n_head * p.hd, kvd = p.n_kv * p.hd;
    uint32_t pq = p.qwen2 ? 0 : p.n_head, pk = p.qwen2 ? 0 : p.n_kv;
    if ((rc = add(&h, w, "model.embed_tokens.weight", "token_embd.weight", p.d, p.vocab, type, 0,
                  1)) ||
        (rc = add(&h, w, "model.norm.weight", "output_norm.weight", p.d, 1, type, 0, 1)))
        goto out;
    /* some tied checkpoints still ship lm_head; it is the embedding then */
    if (!p.tied && (rc = add(&h, w, "lm_head.weight", "output.weight", p.d, p.vocab, type, 0, 1)))
        goto out;
    for (uint32_t il = 0; il < p.n_layer; il++) {
        struct {
            const char *hf, *gg;
            uint32_t n_in, n_out, perm;
            int req;
        } t[12] = {
            {"input_layernorm.weight", "attn_norm.weight", p.d, 1, 0, 1},
            {"self_attn.q_proj.weight", "attn_q.weight", p.d, qd, pq, 1},
            {"self_attn.k_proj.weight", "attn_k.weight", p.d, kvd, pk, 1},
            {"self_attn.v_proj.weight", "attn_v.weight", p.d, kvd, 0, 1},
            {"self_attn.o_proj.weight", "attn_output.weight", qd, p.d, 0, 1},
            {"self_attn.q_proj.bias", "attn_q.bias", qd, 1, 0, p.qwen2},
            {"self_attn.k_proj.bias", "attn_k.bias", kvd, 1, 0, p.qwen2},
            {"self_attn.v_proj.bias", "attn_v.bias", kvd, 1, 0, p.qwen2},
            {"post_attention_layernorm.weight", "ffn_norm.weight", p.d, 1, 0, 1},
            {"mlp.gate_proj.weight", "ffn_gate.weight", p.d, p.n_ff, 0, 1},
            {"mlp.up_proj.weight", "ffn_up.weight", p.d, p.n_ff, 0, 1},
            {"mlp.down_proj.weight", "ffn_down.weight", p.n_ff, p.d, 0, 1},
        };
        for (int i = 0; i < 12; i++) {
            char hn[160], gn[96];
            snprintf(hn, sizeof hn, "model.layers.%u.%s", il, t[i].hf);
            snprintf(gn, sizeof gn, "blk.%u.%s", il, t[i].gg);
            if (!p.qwen2 && i >= 5 && i <= 7) {
                if (find_src(&h, hn)) {
                    snprintf(err, errlen, "%s: attention biases in a llama model not supported",
                             hn);
                    rc = AS_EUNSUP;
                    goto out;
                }
                continue;
            }
            if ((rc = add(&h, w, hn, gn, t[i].n_in, t[i].n_out, type, t[i].perm, t[i].req)))
                goto out;
        }
    }
    if ((rc = gguf_writer_write(w, out_path)))
        snprintf(err, errlen, "%s: %s", out_path, gguf_writer_errmsg(w));
out:
    gguf_writer_free(w);
    for (int i = 0; i < h.n_files; i++)
        st_close(h.files[i]);
    free(h.jobs);
    free(h.rope_freqs);
    cJSON_Delete(cfg);
    return rc;
}
