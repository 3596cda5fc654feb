/*
 * model_synth.c - synthetic GGUF models of real shapes (see model_synth.h).
 *
 * Layout and metadata follow what llama.cpp's converters write for these
 * architectures (tensor names token_embd / blk.N.* / output_norm / output,
 * {arch}.* hyperparameters, rope_freqs.weight for llama3 rope scaling), so
 * llama.cpp can load the same files for speed comparisons.
 */
#include "engine/model_synth.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "engine/ggml_types.h"
#include "engine/gguf.h"
#include "engine/quant.h"

static const struct synth_shape shapes[] = {
    {"tinyllama-1.1b", "llama", 2048, 22, 32, 4, 5632, 32000, 2048, 10000.f, 1e-5f, 0, 0, 0},
    {"llama3.2-1b", "llama", 2048, 16, 32, 8, 8192, 128256, 131072, 500000.f, 1e-5f, 1, 0, 32.f},
    {"qwen2.5-0.5b", "qwen2", 896, 24, 14, 2, 4864, 151936, 32768, 1000000.f, 1e-6f, 1, 1, 0},
    {"tiny", "llama", 64, 2, 4, 2, 192, 512, 512, 10000.f, 1e-5f, 0, 0, 0},
};

const struct synth_shape *synth_shape_find(const char *name)
{
    for (size_t i = 0; name && i < sizeof shapes / sizeof shapes[0]; i++)
        if (!strcmp(name, shapes[i].name))
            return &shapes[i];
    return NULL;
}

const char *synth_shape_names(void)
{
    return "tinyllama-1.1b, llama3.2-1b, qwen2.5-0.5b, tiny";
}

static void seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (err && errlen)
        vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* ---- random numbers ------------------------------------------------------------ */

static uint64_t splitmix64(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

/*
 * Approximately standard normal: the sum of four 16-bit uniforms from one
 * 64-bit draw (Irwin-Hall), centred and scaled to unit variance. Cheap
 * enough to fill a billion weights in seconds; tails end at +-3.46.
 */
static float synth_normal(uint64_t key, uint64_t idx)
{
    uint64_t z = splitmix64(key + idx);
    float s = (float)(z & 0xffff) + (float)((z >> 16) & 0xffff) + (float)((z >> 32) & 0xffff) +
              (float)(z >> 48);
    return (s - 131070.f) * (1.7320508f / 65536.f);
}

static uint64_t hash_name(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

/* ---- tensors ------------------------------------------------------------------- */

enum synth_kind { SK_NORMAL, SK_ONES, SK_ROPE_FREQS };

struct stensor {
    char name[64];
    uint32_t n_dims;
    uint64_t ne[2];
    enum synth_kind kind;
    float std;
    uint32_t type;
    uint64_t key;
    size_t row_size;
    int index, count;
    const struct synth_opts *o;
};

/* Values of a 1-D f32 tensor of kind k (ones or llama3 rope factors). */
static void fill_special(const struct stensor *t, float *y)
{
    const struct synth_shape *sh = t->o->shape;
    if (t->kind == SK_ONES) {
        for (uint64_t i = 0; i < t->ne[0]; i++)
            y[i] = 1.f;
        return;
    }
    /* llama3 rope scaling as Meta defines it: low 1, high 4, original context 8192 */
    const double lo = 1, hi = 4, orig = 8192, factor = sh->llama3_rope_factor;
    const double head_dim = sh->n_embd / sh->n_head;
    for (uint64_t j = 0; j < t->ne[0]; j++) {
        double freq = pow(sh->rope_theta, -2.0 * (double)j / head_dim), wl = 2 * M_PI / freq;
        if (wl < orig / hi)
            y[j] = 1.f;
        else if (wl > orig / lo)
            y[j] = (float)factor;
        else {
            double smooth = (orig / wl - lo) / (hi - lo);
            y[j] = (float)(1.0 / ((1 - smooth) / factor + smooth));
        }
    }
}

struct fill_job {
    const struct stensor *t;
    uint64_t r0, r1, row_base;
    uint8_t *dst;
    int rc;
};

static void *fill_worker(void *arg)
{
    struct fill_job *j = arg;
    const struct stensor *t = j->t;
    const uint64_t ne0 = t->ne[0];
    float *row = malloc(ne0 * sizeof *row);
    if (!row) {
        j->rc = AS_ENOMEM;
        return NULL;
    }
    for (uint64_t r = j->r0; r < j->r1 && !j->rc; r++) {
        if (t->kind == SK_NORMAL) {
            const uint64_t base = r * ne0;
            for (uint64_t i = 0; i < ne0; i++)
                row[i] = t->std * synth_normal(t->key, base + i);
        } else {
            fill_special(t, row);
        }
        j->rc = quant_quantize_row(t->type, row, j->dst + (r - j->row_base) * t->row_size,
                                   (int64_t)ne0);
    }
    free(row);
    return NULL;
}

static int fill_tensor(void *ud, uint64_t row0, uint64_t n_rows, void *dst)
{
    const struct stensor *t = ud;
    int nt = t->o->n_threads < 1 ? 1 : t->o->n_threads > 64 ? 64 : t->o->n_threads;
    if ((uint64_t)nt > n_rows)
        nt = (int)n_rows;
    struct fill_job jobs[64];
    pthread_t th[64];
    int started[64] = {0};
    for (int i = 0; i < nt; i++)
        jobs[i] = (struct fill_job){t,
                                    row0 + n_rows * (uint64_t)i / (uint64_t)nt,
                                    row0 + n_rows * (uint64_t)(i + 1) / (uint64_t)nt,
                                    row0,
                                    dst,
                                    0};
    for (int i = 1; i < nt; i++)
        started[i] = !pthread_create(&th[i], NULL, fill_worker, &jobs[i]);
    fill_worker(&jobs[0]);
    int rc = jobs[0].rc;
    for (int i = 1; i < nt; i++) {
        if (started[i])
            pthread_join(th[i], NULL);
        else
            fill_worker(&jobs[i]);
        if (!rc)
            rc = jobs[i].rc;
    }
    if (!rc && t->o->progress && row0 + n_rows == t->ne[1]) {
        fprintf(stderr, "[%4d/%4d] %-28s %-5s %llu x %llu\n", t->index + 1, t->count, t->name,
                ggml_type_get(t->type)->name, (unsigned long long)t->ne[0],
                (unsigned long long)t->ne[1]);
    }
    return rc;
}

/* ---- vocabulary ---------------------------------------------------------------- */

/* GPT-2's byte -> printable code point map, UTF-8 encoded into out (<= 3 bytes). */
static int byte_token(int b, char *out)
{
    int cp;
    if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255)) {
        cp = b;
    } else {
        int n = 0; /* rank of b among the unprintable bytes */
        for (int c = 0; c < b; c++)
            if (!((c >= 33 && c <= 126) || (c >= 161 && c <= 172) || (c >= 174 && c <= 255)))
                n++;
        cp = 256 + n;
    }
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    out[0] = (char)(0xC0 | (cp >> 6));
    out[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
}

static const char *const specials[] = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};
#define N_SPECIALS 3

/* Letters in English frequency order: common merges get low ranks. */
static const char letters[] = "etaoinshrdlcumwfgypbvkjxqz";

/* Appends token tok[p] + letter c and the merge "tok[p] c". 0 or AS_ENOMEM. */
static int add_merge(char **tok, int32_t *types, char **merges, uint32_t *nt, uint32_t *m,
                     uint32_t p, char c)
{
    size_t la = strlen(tok[p]);
    char *t = malloc(la + 2), *mg = malloc(la + 3);
    if (!t || !mg) {
        free(t);
        free(mg);
        return AS_ENOMEM;
    }
    memcpy(t, tok[p], la);
    t[la] = c;
    t[la + 1] = 0;
    memcpy(mg, tok[p], la);
    mg[la] = ' ';
    mg[la + 1] = c;
    mg[la + 2] = 0;
    tok[*nt] = t;
    types[(*nt)++] = 1;
    merges[(*m)++] = mg;
    return 0;
}

/*
 * A valid byte-level BPE vocabulary of n tokens: the 256 byte tokens, then
 * merged tokens built breadth-first as (earlier token) + (letter), starting
 * from "Ġ" (the space byte) and the letters, so every merge joins two existing
 * tokens into a new one and words with a leading space tokenize like GPT-2's;
 * then the special tokens (control type) at the end.
 */
static int gen_vocab(struct gguf_writer *w, uint32_t n, char *err, size_t errlen)
{
    if (n < 256 + N_SPECIALS) {
        seterr(err, errlen, "a generated vocabulary needs at least %d tokens", 256 + N_SPECIALS);
        return AS_EINVAL;
    }
    const uint32_t n_merges = n - 256 - N_SPECIALS;
    char **tok = calloc(n, sizeof *tok), **merges = calloc(n_merges ? n_merges : 1, sizeof *merges);
    int32_t *types = calloc(n, sizeof *types);
    uint32_t *level = calloc(n, sizeof *level); /* token ids to extend next */
    int rc = AS_ENOMEM;
    if (!tok || !merges || !types || !level)
        goto out;
    uint32_t nt = 0, m = 0, n_level = 0;
    for (int b = 0; b < 256; b++, nt++) {
        char buf[4] = {0};
        byte_token(b, buf);
        if (!(tok[nt] = strdup(buf)))
            goto out;
        types[nt] = 1;
    }
    level[n_level++] = ' ';
    for (int k = 0; k < 26; k++)
        level[n_level++] = (uint32_t)(unsigned char)letters[k];
    while (m < n_merges) {
        uint32_t first_new = nt;
        for (uint32_t p = 0; p < n_level && m < n_merges; p++)
            for (int c = 0; c < 26 && m < n_merges; c++)
                if ((rc = add_merge(tok, types, merges, &nt, &m, level[p], letters[c])))
                    goto out;
        n_level = 0;
        for (uint32_t t = first_new; t < nt; t++)
            level[n_level++] = t;
    }
    for (int s = 0; s < N_SPECIALS; s++) {
        if (!(tok[nt] = strdup(specials[s]))) {
            rc = AS_ENOMEM;
            goto out;
        }
        types[nt++] = 3;
    }
    if ((rc = gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2")) ||
        (rc = gguf_writer_set_str(w, "tokenizer.ggml.pre", "gpt-2")) ||
        (rc = gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)tok, n)) ||
        (rc = gguf_writer_set_arr_i32(w, "tokenizer.ggml.token_type", types, n)) ||
        (rc = gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", (const char *const *)merges,
                                      n_merges)) ||
        (rc = gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", n - N_SPECIALS)) ||
        (rc = gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", n - N_SPECIALS)) ||
        (rc = gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", 0)) ||
        (rc = gguf_writer_set_bool(w, "tokenizer.ggml.add_eos_token", 0)))
        goto out;
    rc = 0;
out:
    if (rc)
        seterr(err, errlen, "generating the vocabulary: %s", as_strerror(rc));
    for (uint32_t i = 0; tok && i < n; i++)
        free(tok[i]);
    for (uint32_t i = 0; merges && i < n_merges; i++)
        free(merges[i]);
    free(tok);
    free(merges);
    free(types);
    free(level);
    return rc;
}

/*
 * Copies tokenizer.* from a vocab GGUF; pads tokens/scores/token_type with
 * unused "[PADn]" tokens up to n_vocab. *n_file gets the file's token count.
 */
static int copy_vocab(struct gguf_writer *w, const char *path, uint32_t n_vocab, uint64_t *n_file,
                      char *err, size_t errlen)
{
    char ferr[384];
    struct gguf_file *f = gguf_open(path, ferr, sizeof ferr);
    if (!f) {
        seterr(err, errlen, "vocab: %s", ferr);
        return AS_EFORMAT;
    }
    int rc = AS_EFORMAT;
    struct str *slices = NULL;
    char *pads = NULL;
    float *scores = NULL;
    int32_t *types = NULL;
    const struct gguf_kv *tk = gguf_find_kv(f, "tokenizer.ggml.tokens");
    if (!tk || tk->type != GGUF_VT_ARRAY || tk->arr_type != GGUF_VT_STRING || !tk->arr_len) {
        seterr(err, errlen, "vocab %s: no tokenizer.ggml.tokens string array", path);
        goto out;
    }
    *n_file = tk->arr_len;
    for (uint64_t i = 0; i < f->n_kv; i++) {
        const struct gguf_kv *kv = &f->kv[i];
        if (kv->key.len < 10 || memcmp(kv->key.p, "tokenizer.", 10))
            continue;
        if ((rc = gguf_writer_copy_kv(w, kv))) {
            seterr(err, errlen, "vocab: copying metadata: %s", as_strerror(rc));
            goto out;
        }
    }
    rc = 0;
    if (tk->arr_len >= n_vocab)
        goto out;
    /* pad the per-token arrays */
    rc = AS_ENOMEM;
    slices = malloc(n_vocab * sizeof *slices);
    pads = malloc((size_t)(n_vocab - tk->arr_len) * 16);
    scores = malloc(n_vocab * sizeof *scores);
    types = malloc(n_vocab * sizeof *types);
    if (!slices || !pads || !scores || !types)
        goto out;
    const struct gguf_kv *sc = gguf_find_kv(f, "tokenizer.ggml.scores");
    const struct gguf_kv *ty = gguf_find_kv(f, "tokenizer.ggml.token_type");
    for (uint32_t i = 0; i < n_vocab; i++) {
        if (i < tk->arr_len) {
            gguf_arr_str(tk, i, &slices[i]);
            if (!sc || gguf_arr_f32(sc, i, &scores[i]))
                scores[i] = 0;
            if (!ty || gguf_arr_i32(ty, i, &types[i]))
                types[i] = 1;
        } else {
            char *p = pads + (size_t)(i - tk->arr_len) * 16;
            int len = snprintf(p, 16, "[PAD%u]", i);
            slices[i] = (struct str){p, (size_t)len};
            scores[i] = -1e9f;
            types[i] = 5; /* unused */
        }
    }
    if ((rc = gguf_writer_set_arr_strn(w, "tokenizer.ggml.tokens", slices, n_vocab)) ||
        (sc && (rc = gguf_writer_set_arr_f32(w, "tokenizer.ggml.scores", scores, n_vocab))) ||
        (rc = gguf_writer_set_arr_i32(w, "tokenizer.ggml.token_type", types, n_vocab)))
        seterr(err, errlen, "vocab: %s", as_strerror(rc));
out:
    free(slices);
    free(pads);
    free(scores);
    free(types);
    gguf_close(f);
    return rc;
}

/* ---- the model ------------------------------------------------------------------ */

static int set_hparams(struct gguf_writer *w, const struct synth_shape *sh, uint32_t n_vocab,
                       const struct quant_ftype *ft)
{
    char key[128];
    int rc = gguf_writer_set_str(w, "general.architecture", sh->arch);
    char name[96];
    snprintf(name, sizeof name, "synthetic %s", sh->name);
    rc = rc ? rc : gguf_writer_set_str(w, "general.name", name);
#define SET_U32(suffix, v)                                                                         \
    (snprintf(key, sizeof key, "%s." suffix, sh->arch),                                            \
     rc = rc ? rc : gguf_writer_set_u32(w, key, v))
#define SET_F32(suffix, v)                                                                         \
    (snprintf(key, sizeof key, "%s." suffix, sh->arch),                                            \
     rc = rc ? rc : gguf_writer_set_f32(w, key, v))
    SET_U32("context_length", sh->n_ctx);
    SET_U32("embedding_length", sh->n_embd);
    SET_U32("block_count", sh->n_layer);
    SET_U32("feed_forward_length", sh->n_ff);
    SET_U32("attention.head_count", sh->n_head);
    SET_U32("attention.head_count_kv", sh->n_head_kv);
    SET_U32("rope.dimension_count", sh->n_embd / sh->n_head);
    SET_U32("vocab_size", n_vocab);
    SET_F32("rope.freq_base", sh->rope_theta);
    SET_F32("attention.layer_norm_rms_epsilon", sh->rms_eps);
#undef SET_U32
#undef SET_F32
    rc = rc ? rc : gguf_writer_set_u32(w, "general.file_type", (uint32_t)ft->llama_ftype);
    if (ft->mixture)
        rc = rc ? rc : gguf_writer_set_u32(w, "general.quantization_version", 2);
    return rc;
}

static void add_spec(struct stensor *ts, int *n, const char *name, uint32_t n_dims, uint64_t ne0,
                     uint64_t ne1, enum synth_kind kind)
{
    struct stensor *t = &ts[(*n)++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->n_dims = n_dims;
    t->ne[0] = ne0;
    t->ne[1] = ne1;
    t->kind = kind;
    t->std = 0.02f;
}

int synth_write(const struct synth_opts *o, char *err, size_t errlen)
{
    const struct synth_shape *sh = o->shape;
    if (!sh || !o->ftype || !o->out_path) {
        seterr(err, errlen, "invalid arguments");
        return AS_EINVAL;
    }
    int rc = AS_ENOMEM, n = 0;
    struct gguf_writer *w = gguf_writer_new();
    /* per layer at most 12 tensors, plus embeddings, norms, output, rope factors */
    struct stensor *ts = calloc(12 * (size_t)sh->n_layer + 8, sizeof *ts);
    if (!w || !ts) {
        seterr(err, errlen, "out of memory");
        goto out;
    }
    /* general.* and {arch}.* first, as llama.cpp's files have them */
    uint32_t n_vocab = sh->n_vocab;
    if ((rc = set_hparams(w, sh, n_vocab, o->ftype))) {
        seterr(err, errlen, "metadata: %s", as_strerror(rc));
        goto out;
    }
    if (o->vocab_path) {
        uint64_t n_file = 0;
        if ((rc = copy_vocab(w, o->vocab_path, n_vocab, &n_file, err, errlen)))
            goto out;
        if (n_file > n_vocab) {
            if (n_file > (1u << 22)) {
                seterr(err, errlen, "vocab of %llu tokens is too large",
                       (unsigned long long)n_file);
                rc = AS_ERANGE;
                goto out;
            }
            n_vocab = (uint32_t)n_file; /* the embedding must cover every token */
            char key[64];
            snprintf(key, sizeof key, "%s.vocab_size", sh->arch);
            if ((rc = gguf_writer_set_u32(w, key, n_vocab)))
                goto out;
        }
    } else if ((rc = gen_vocab(w, n_vocab, err, errlen))) {
        goto out;
    }
    const uint64_t d = sh->n_embd, hd = sh->n_embd / sh->n_head, kv = hd * sh->n_head_kv;
    add_spec(ts, &n, "token_embd.weight", 2, d, n_vocab, SK_NORMAL);
    if (sh->llama3_rope_factor > 0)
        add_spec(ts, &n, "rope_freqs.weight", 1, hd / 2, 1, SK_ROPE_FREQS);
    for (uint32_t l = 0; l < sh->n_layer; l++) {
        char nm[64];
#define ADD(suffix, nd, a, b, kind)                                                                \
    (snprintf(nm, sizeof nm, "blk.%u." suffix, l), add_spec(ts, &n, nm, nd, a, b, kind))
        ADD("attn_norm.weight", 1, d, 1, SK_ONES);
        ADD("attn_q.weight", 2, d, d, SK_NORMAL);
        ADD("attn_k.weight", 2, d, kv, SK_NORMAL);
        ADD("attn_v.weight", 2, d, kv, SK_NORMAL);
        if (sh->qkv_bias) {
            ADD("attn_q.bias", 1, d, 1, SK_NORMAL);
            ADD("attn_k.bias", 1, kv, 1, SK_NORMAL);
            ADD("attn_v.bias", 1, kv, 1, SK_NORMAL);
        }
        ADD("attn_output.weight", 2, d, d, SK_NORMAL);
        ADD("ffn_norm.weight", 1, d, 1, SK_ONES);
        ADD("ffn_gate.weight", 2, d, sh->n_ff, SK_NORMAL);
        ADD("ffn_up.weight", 2, d, sh->n_ff, SK_NORMAL);
        ADD("ffn_down.weight", 2, sh->n_ff, d, SK_NORMAL);
#undef ADD
    }
    add_spec(ts, &n, "output_norm.weight", 1, d, 1, SK_ONES);
    if (!sh->tied_output)
        add_spec(ts, &n, "output.weight", 2, d, n_vocab, SK_NORMAL);
    struct quant_mix mix = {o->ftype, (int)sh->n_layer, (int)sh->n_layer, !sh->tied_output};
    for (int i = 0; i < n; i++) {
        struct stensor *t = &ts[i];
        t->type = quant_mix_tensor_type(&mix, t->name, GGML_TYPE_F32, t->n_dims, t->ne);
        t->key = splitmix64(o->seed) ^ hash_name(t->name);
        t->row_size = ggml_row_size(t->type, t->ne[0]);
        t->index = i;
        t->count = n;
        t->o = o;
        if ((rc = gguf_writer_add_tensor_cb(w, t->name, t->type, t->n_dims, t->ne, fill_tensor,
                                            t))) {
            seterr(err, errlen, "%s", gguf_writer_errmsg(w));
            goto out;
        }
    }
    if ((rc = gguf_writer_write(w, o->out_path)))
        seterr(err, errlen, "%s: %s", o->out_path, gguf_writer_errmsg(w));
out:
    free(ts);
    gguf_writer_free(w);
    return rc;
}
