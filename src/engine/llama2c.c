/*
 * llama2c.c - llama2.c checkpoint + tokenizer.bin -> GGUF (see llama2c.h).
 * The checkpoint is mapped, never copied: the GGUF writer streams tensor data
 * straight from the mapping.
 */
#include "engine/llama2c.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/err.h"
#include "engine/ggml_types.h"
#include "engine/gguf.h"
#include "engine/tokenizer.h"

#define L2C_MAGIC_V1  0x616b3432u /* "ak42" */
#define L2C_MAX_DIM   65536
#define L2C_MAX_LAYER 1024
#define L2C_MAX_VOCAB (1 << 22)
#define L2C_MAX_CTX   (1 << 22)

struct mapped {
    const uint8_t *p;
    size_t n;
};

static int map_file(const char *path, struct mapped *m, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    m->p = NULL;
    m->n = 0;
    if (fd < 0 || fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_size <= 0) {
        snprintf(err, errlen, "%s: cannot read", path);
        if (fd >= 0)
            close(fd);
        return AS_EIO;
    }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED) {
        snprintf(err, errlen, "%s: cannot map", path);
        return AS_EIO;
    }
    m->p = p;
    m->n = (size_t)st.st_size;
    return 0;
}

static void unmap_file(struct mapped *m)
{
    if (m->p)
        munmap((void *)m->p, m->n);
    m->p = NULL;
}

static int32_t rd_i32(const uint8_t *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

struct l2c_config {
    int32_t dim, hidden, n_layers, n_heads, n_kv_heads, vocab, seq_len;
    int shared, version;
};

/* Offsets (in floats from the start of the weights) of each tensor group. */
struct l2c_layout {
    uint64_t tok, rms_att, wq, wk, wv, wo, rms_ffn, w1, w2, w3, rms_final, wcls, total;
};

static int parse_config(const struct mapped *m, struct l2c_config *c, size_t *weights_at, char *err,
                        size_t errlen)
{
    if (m->n < 28) {
        snprintf(err, errlen, "checkpoint too short");
        return AS_EFORMAT;
    }
    const uint8_t *h = m->p;
    if ((uint32_t)rd_i32(h) == L2C_MAGIC_V1) {
        if (m->n < 256 || rd_i32(h + 4) != 1) {
            snprintf(err, errlen, "llama2.c checkpoint version %d not supported (legacy or 1)",
                     m->n >= 8 ? rd_i32(h + 4) : -1);
            return AS_EUNSUP;
        }
        c->version = 1;
        h += 8;
        *weights_at = 256;
    } else {
        c->version = 0;
        *weights_at = 28;
    }
    c->dim = rd_i32(h);
    c->hidden = rd_i32(h + 4);
    c->n_layers = rd_i32(h + 8);
    c->n_heads = rd_i32(h + 12);
    c->n_kv_heads = rd_i32(h + 16);
    c->vocab = rd_i32(h + 20);
    c->seq_len = rd_i32(h + 24);
    if (c->version == 1) {
        c->shared = h[28] != 0;
    } else {
        c->shared = c->vocab > 0;
        if (c->vocab < 0 && c->vocab != INT32_MIN)
            c->vocab = -c->vocab;
    }
    if (c->dim <= 0 || c->dim > L2C_MAX_DIM || c->hidden <= 0 || c->hidden > 16 * L2C_MAX_DIM ||
        c->n_layers <= 0 || c->n_layers > L2C_MAX_LAYER || c->n_heads <= 0 || c->dim % c->n_heads ||
        c->n_kv_heads <= 0 || c->n_heads % c->n_kv_heads || (c->dim / c->n_heads) % 2 ||
        c->vocab <= 0 || c->vocab > L2C_MAX_VOCAB || c->seq_len <= 0 || c->seq_len > L2C_MAX_CTX) {
        snprintf(err, errlen,
                 "checkpoint header out of range (dim %d, hidden %d, layers %d, "
                 "heads %d/%d, vocab %d, seq_len %d)",
                 c->dim, c->hidden, c->n_layers, c->n_heads, c->n_kv_heads, c->vocab, c->seq_len);
        return AS_EFORMAT;
    }
    return 0;
}

static void make_layout(const struct l2c_config *c, struct l2c_layout *l)
{
    uint64_t d = (uint64_t)c->dim, hd = d / (uint64_t)c->n_heads,
             kvd = hd * (uint64_t)c->n_kv_heads, nl = (uint64_t)c->n_layers,
             hid = (uint64_t)c->hidden, V = (uint64_t)c->vocab;
    uint64_t o = 0;
    if (c->version == 0) {
        l->tok = o, o += V * d;
        l->rms_att = o, o += nl * d;
        l->wq = o, o += nl * d * d;
        l->wk = o, o += nl * d * kvd;
        l->wv = o, o += nl * d * kvd;
        l->wo = o, o += nl * d * d;
        l->rms_ffn = o, o += nl * d;
        l->w1 = o, o += nl * d * hid;
        l->w2 = o, o += nl * d * hid;
        l->w3 = o, o += nl * d * hid;
        l->rms_final = o, o += d;
        o += (uint64_t)c->seq_len * hd; /* freq_cis_real and _imag, unused */
    } else {
        l->rms_att = o, o += nl * d;
        l->rms_ffn = o, o += nl * d;
        l->rms_final = o, o += d;
        l->tok = o, o += V * d;
        l->wq = o, o += nl * d * d;
        l->wk = o, o += nl * d * kvd;
        l->wv = o, o += nl * d * kvd;
        l->wo = o, o += nl * d * d;
        l->w1 = o, o += nl * d * hid;
        l->w2 = o, o += nl * d * hid;
        l->w3 = o, o += nl * d * hid;
    }
    l->wcls = c->shared ? l->tok : o;
    if (!c->shared)
        o += V * d;
    l->total = o;
}

/* "<0xAB>" */
static int is_byte_token(const uint8_t *s, uint32_t n)
{
    static const char hex[] = "0123456789ABCDEFabcdef";
    return n == 6 && !memcmp(s, "<0x", 3) && s[5] == '>' && s[3] && s[4] && strchr(hex, s[3]) &&
           strchr(hex, s[4]);
}

/* Reads tokenizer.bin and sets the tokenizer.ggml.* keys. */
static int add_vocab(struct gguf_writer *w, const struct mapped *t, uint32_t n_vocab, char *err,
                     size_t errlen)
{
    struct str *toks = calloc(n_vocab, sizeof *toks);
    float *scores = malloc(n_vocab * sizeof *scores);
    int32_t *types = malloc(n_vocab * sizeof *types);
    struct buf text; /* all token texts, U+2581 for spaces */
    size_t *offs = malloc(n_vocab * sizeof *offs);
    int rc = AS_EFORMAT;
    buf_init(&text, (size_t)1 << 30);
    if (!toks || !scores || !types || !offs) {
        rc = AS_ENOMEM;
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    if (t->n < 4 || rd_i32(t->p) <= 0 || rd_i32(t->p) > (int32_t)TOK_MAX_TOKEN_BYTES) {
        snprintf(err, errlen, "tokenizer: bad max_token_length");
        goto out;
    }
    uint32_t max_len = (uint32_t)rd_i32(t->p);
    size_t o = 4;
    for (uint32_t i = 0; i < n_vocab; i++) {
        if (t->n - o < 8) {
            snprintf(err, errlen, "tokenizer: truncated at token %u of %u", i, n_vocab);
            goto out;
        }
        memcpy(&scores[i], t->p + o, 4);
        int32_t len = rd_i32(t->p + o + 4);
        o += 8;
        if (len <= 0 || (uint32_t)len > max_len || (size_t)len > t->n - o) {
            snprintf(err, errlen, "tokenizer: token %u has a bad length %d", i, len);
            goto out;
        }
        const uint8_t *s = t->p + o;
        o += (size_t)len;
        if (scores[i] != scores[i] || memchr(s, 0, (size_t)len)) {
            snprintf(err, errlen, "tokenizer: token %u has a bad score or a NUL byte", i);
            goto out;
        }
        offs[i] = text.len;
        types[i] = TOK_TT_NORMAL;
        if (len == 5 && !memcmp(s, "<unk>", 5)) {
            types[i] = TOK_TT_UNKNOWN;
        } else if ((len == 5 && !memcmp(s, "\n<s>\n", 5)) || (len == 3 && !memcmp(s, "<s>", 3))) {
            types[i] = TOK_TT_CONTROL;
            s = (const uint8_t *)"<s>";
            len = 3;
        } else if ((len == 6 && !memcmp(s, "\n</s>\n", 6)) || (len == 4 && !memcmp(s, "</s>", 4))) {
            types[i] = TOK_TT_CONTROL;
            s = (const uint8_t *)"</s>";
            len = 4;
        } else if (is_byte_token(s, (uint32_t)len)) {
            types[i] = TOK_TT_BYTE;
        }
        for (int32_t j = 0; j < len; j++) {
            int e = s[j] == ' ' && types[i] == TOK_TT_NORMAL ? buf_append(&text, "\xe2\x96\x81", 3)
                                                             : buf_append_char(&text, (char)s[j]);
            if (e) {
                rc = e;
                snprintf(err, errlen, "tokenizer: out of memory");
                goto out;
            }
        }
        toks[i].len = text.len - offs[i];
    }
    for (uint32_t i = 0; i < n_vocab; i++)
        toks[i].p = text.data + offs[i];
    if ((rc = gguf_writer_set_str(w, "tokenizer.ggml.model", "llama")) ||
        (rc = gguf_writer_set_arr_strn(w, "tokenizer.ggml.tokens", toks, n_vocab)) ||
        (rc = gguf_writer_set_arr_f32(w, "tokenizer.ggml.scores", scores, n_vocab)) ||
        (rc = gguf_writer_set_arr_i32(w, "tokenizer.ggml.token_type", types, n_vocab)) ||
        (rc = gguf_writer_set_u32(w, "tokenizer.ggml.unknown_token_id", 0)) ||
        (rc = gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", 1)) ||
        (rc = gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", 2)) ||
        (rc = gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", 1)) ||
        (rc = gguf_writer_set_bool(w, "tokenizer.ggml.add_eos_token", 0)) ||
        (rc = gguf_writer_set_bool(w, "tokenizer.ggml.add_space_prefix", 1))) {
        snprintf(err, errlen, "tokenizer: %s", as_strerror(rc));
        goto out;
    }
    rc = 0;
out:
    free(toks);
    free(scores);
    free(types);
    free(offs);
    buf_free(&text);
    return rc;
}

static int add_f32(struct gguf_writer *w, const char *name, const float *base, uint64_t off,
                   uint64_t n0, uint64_t n1)
{
    uint64_t ne[2] = {n0, n1};
    return gguf_writer_add_tensor(w, name, GGML_TYPE_F32, n1 > 1 ? 2 : 1, ne, base + off);
}

static int add_tensors(struct gguf_writer *w, const struct l2c_config *c,
                       const struct l2c_layout *l, const float *base)
{
    uint64_t d = (uint64_t)c->dim, hd = d / (uint64_t)c->n_heads,
             kvd = hd * (uint64_t)c->n_kv_heads, hid = (uint64_t)c->hidden, V = (uint64_t)c->vocab;
    int rc;
    char name[64];
    if ((rc = add_f32(w, "token_embd.weight", base, l->tok, d, V)) ||
        (rc = add_f32(w, "output_norm.weight", base, l->rms_final, d, 1)))
        return rc;
    if (!c->shared && (rc = add_f32(w, "output.weight", base, l->wcls, d, V)))
        return rc;
    for (uint64_t i = 0; i < (uint64_t)c->n_layers; i++) {
        struct {
            const char *sfx;
            uint64_t off, n0, n1;
        } t[9] = {
            {"attn_norm.weight", l->rms_att + i * d, d, 1},
            {"attn_q.weight", l->wq + i * d * d, d, d},
            {"attn_k.weight", l->wk + i * d * kvd, d, kvd},
            {"attn_v.weight", l->wv + i * d * kvd, d, kvd},
            {"attn_output.weight", l->wo + i * d * d, d, d},
            {"ffn_norm.weight", l->rms_ffn + i * d, d, 1},
            {"ffn_gate.weight", l->w1 + i * d * hid, d, hid},
            {"ffn_down.weight", l->w2 + i * d * hid, hid, d},
            {"ffn_up.weight", l->w3 + i * d * hid, d, hid},
        };
        for (int j = 0; j < 9; j++) {
            snprintf(name, sizeof name, "blk.%llu.%s", (unsigned long long)i, t[j].sfx);
            if ((rc = add_f32(w, name, base, t[j].off, t[j].n0, t[j].n1)))
                return rc;
        }
    }
    return 0;
}

int llama2c_build(struct gguf_writer *w, const void *model, size_t model_size, const void *tok,
                  size_t tok_size, char *err, size_t errlen)
{
    struct mapped mm = {model, model_size}, tm = {tok, tok_size};
    struct l2c_config c;
    struct l2c_layout l;
    size_t at;
    int rc;
    if ((rc = parse_config(&mm, &c, &at, err, errlen)))
        return rc;
    make_layout(&c, &l);
    if ((uint64_t)(mm.n - at) != l.total * 4) {
        snprintf(err, errlen,
                 "checkpoint size %zu does not match its header (expected %llu bytes of weights "
                 "after %zu header bytes)",
                 mm.n, (unsigned long long)(l.total * 4), at);
        return AS_EFORMAT;
    }
    uint32_t hd = (uint32_t)(c.dim / c.n_heads);
    if ((rc = gguf_writer_set_str(w, "general.architecture", "llama")) ||
        (rc = gguf_writer_set_str(w, "general.name", "llama2.c")) ||
        (rc = gguf_writer_set_u32(w, "general.file_type", 0)) ||
        (rc = gguf_writer_set_u32(w, "llama.context_length", (uint32_t)c.seq_len)) ||
        (rc = gguf_writer_set_u32(w, "llama.embedding_length", (uint32_t)c.dim)) ||
        (rc = gguf_writer_set_u32(w, "llama.block_count", (uint32_t)c.n_layers)) ||
        (rc = gguf_writer_set_u32(w, "llama.feed_forward_length", (uint32_t)c.hidden)) ||
        (rc = gguf_writer_set_u32(w, "llama.attention.head_count", (uint32_t)c.n_heads)) ||
        (rc = gguf_writer_set_u32(w, "llama.attention.head_count_kv", (uint32_t)c.n_kv_heads)) ||
        (rc = gguf_writer_set_u32(w, "llama.rope.dimension_count", hd)) ||
        (rc = gguf_writer_set_f32(w, "llama.rope.freq_base", 10000.0f)) ||
        (rc = gguf_writer_set_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f))) {
        snprintf(err, errlen, "metadata: %s", as_strerror(rc));
        return rc;
    }
    if ((rc = add_vocab(w, &tm, (uint32_t)c.vocab, err, errlen)))
        return rc;
    if ((rc = add_tensors(w, &c, &l, (const float *)(const void *)(mm.p + at))))
        snprintf(err, errlen, "tensors: %s", as_strerror(rc));
    return rc;
}

int llama2c_convert(const char *model_path, const char *tok_path, const char *out_path, char *err,
                    size_t errlen)
{
    struct mapped mm = {0}, tm = {0};
    struct gguf_writer *w = NULL;
    int rc;
    if ((rc = map_file(model_path, &mm, err, errlen)) ||
        (rc = map_file(tok_path, &tm, err, errlen)))
        goto out;
    if (!(w = gguf_writer_new())) {
        rc = AS_ENOMEM;
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    if ((rc = llama2c_build(w, mm.p, mm.n, tm.p, tm.n, err, errlen)))
        goto out;
    if ((rc = gguf_writer_write(w, out_path)))
        snprintf(err, errlen, "%s: %s", out_path, gguf_writer_errmsg(w));
out:
    gguf_writer_free(w);
    unmap_file(&mm);
    unmap_file(&tm);
    return rc;
}
