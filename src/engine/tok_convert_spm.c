/*
 * tok_convert_spm.c - SentencePiece tokenizer.model (protobuf ModelProto) to
 * GGUF tokenizer metadata.
 *
 * A minimal protobuf wire-format reader: only the fields we need are decoded
 * (pieces: piece/score/type; trainer_spec: unk/bos/eos/pad ids;
 * normalizer_spec: add_dummy_prefix), everything else is skipped by wire type.
 * Every length is checked against the bytes left, counts are bounded, groups
 * and unknown wire types are rejected. Not for: writing .model files.
 */
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "engine/gguf.h"
#include "engine/tok_convert.h"
#include "engine/tok_convert_int.h"
#include "engine/tok_internal.h"

struct pb {
    const uint8_t *p, *end;
};

static int pb_varint(struct pb *b, uint64_t *v)
{
    uint64_t x = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (b->p >= b->end)
            return AS_EFORMAT;
        uint8_t c = *b->p++;
        x |= (uint64_t)(c & 0x7F) << shift;
        if (!(c & 0x80)) {
            *v = x;
            return 0;
        }
    }
    return AS_EFORMAT;
}

/* Reads a field header; *wt is the wire type. */
static int pb_key(struct pb *b, uint64_t *field, unsigned *wt)
{
    uint64_t k;
    int rc = pb_varint(b, &k);
    if (rc)
        return rc;
    *field = k >> 3;
    *wt = (unsigned)(k & 7);
    return *field == 0 ? AS_EFORMAT : 0;
}

/* Length-delimited payload as a sub-reader. */
static int pb_bytes(struct pb *b, struct pb *sub)
{
    uint64_t n;
    int rc = pb_varint(b, &n);
    if (rc)
        return rc;
    if (n > (uint64_t)(b->end - b->p))
        return AS_EFORMAT;
    sub->p = b->p;
    sub->end = b->p + n;
    b->p += n;
    return 0;
}

static int pb_skip(struct pb *b, unsigned wt)
{
    uint64_t v;
    struct pb sub;
    switch (wt) {
    case 0:
        return pb_varint(b, &v);
    case 1:
        if (b->end - b->p < 8)
            return AS_EFORMAT;
        b->p += 8;
        return 0;
    case 2:
        return pb_bytes(b, &sub);
    case 5:
        if (b->end - b->p < 4)
            return AS_EFORMAT;
        b->p += 4;
        return 0;
    default: /* groups (3, 4) and reserved types */
        return AS_EFORMAT;
    }
}

static int pb_fixed32(struct pb *b, uint32_t *v)
{
    if (b->end - b->p < 4)
        return AS_EFORMAT;
    *v = (uint32_t)b->p[0] | (uint32_t)b->p[1] << 8 | (uint32_t)b->p[2] << 16 |
         (uint32_t)b->p[3] << 24;
    b->p += 4;
    return 0;
}

struct spm_model {
    struct tok_strlist pieces;
    float *scores;
    int32_t *types;
    size_t cap;
    int64_t unk, bos, eos, pad;
    int add_dummy_prefix;
};

static int parse_piece(struct spm_model *m, struct pb b)
{
    struct pb text = {NULL, NULL};
    float score = 0.0f;
    uint64_t type = TOK_TT_NORMAL, f;
    unsigned wt;
    int rc;
    while (b.p < b.end) {
        if ((rc = pb_key(&b, &f, &wt)))
            return rc;
        if (f == 1 && wt == 2) {
            if ((rc = pb_bytes(&b, &text)))
                return rc;
        } else if (f == 2 && wt == 5) {
            uint32_t u;
            if ((rc = pb_fixed32(&b, &u)))
                return rc;
            memcpy(&score, &u, sizeof score);
        } else if (f == 3 && wt == 0) {
            if ((rc = pb_varint(&b, &type)))
                return rc;
        } else if ((rc = pb_skip(&b, wt))) {
            return rc;
        }
    }
    size_t len = (size_t)(text.end - text.p);
    if (len > TOK_MAX_TOKEN_BYTES || (text.p && memchr(text.p, 0, len)))
        return AS_EFORMAT;
    if (type < TOK_TT_NORMAL || type > TOK_TT_BYTE)
        type = TOK_TT_UNDEFINED;
    if (m->pieces.n >= TOK_MAX_VOCAB)
        return AS_ERANGE;
    size_t n = m->pieces.n;
    if (n == m->cap) {
        size_t c1 = m->cap, c2 = m->cap;
        if (tok__grow((void **)&m->scores, &c1, n + 1, sizeof *m->scores) ||
            tok__grow((void **)&m->types, &c2, n + 1, sizeof *m->types))
            return AS_ENOMEM;
        m->cap = c1 < c2 ? c1 : c2;
    }
    if (tok__strlist_push(&m->pieces, text.p ? (const char *)text.p : "", len))
        return AS_ENOMEM;
    m->scores[n] = score;
    m->types[n] = (int32_t)type;
    return 0;
}

/* int32 fields are varints; negative values come sign-extended to 64 bits. */
static int64_t as_int32(uint64_t v)
{
    return (int64_t)(int32_t)(uint32_t)v;
}

static int parse_trainer(struct spm_model *m, struct pb b)
{
    uint64_t f, v;
    unsigned wt;
    int rc;
    while (b.p < b.end) {
        if ((rc = pb_key(&b, &f, &wt)))
            return rc;
        if (wt == 0 && f >= 40 && f <= 43) {
            if ((rc = pb_varint(&b, &v)))
                return rc;
            int64_t x = as_int32(v);
            if (f == 40)
                m->unk = x;
            else if (f == 41)
                m->bos = x;
            else if (f == 42)
                m->eos = x;
            else
                m->pad = x;
        } else if ((rc = pb_skip(&b, wt))) {
            return rc;
        }
    }
    return 0;
}

static int parse_normalizer(struct spm_model *m, struct pb b)
{
    uint64_t f, v;
    unsigned wt;
    int rc;
    while (b.p < b.end) {
        if ((rc = pb_key(&b, &f, &wt)))
            return rc;
        if (f == 3 && wt == 0) {
            if ((rc = pb_varint(&b, &v)))
                return rc;
            m->add_dummy_prefix = v != 0;
        } else if ((rc = pb_skip(&b, wt))) {
            return rc;
        }
    }
    return 0;
}

static int parse_model(struct spm_model *m, const void *data, size_t size)
{
    struct pb b = {data, (const uint8_t *)data + size}, sub;
    uint64_t f;
    unsigned wt;
    int rc;
    while (b.p < b.end) {
        if ((rc = pb_key(&b, &f, &wt)))
            return rc;
        if ((f == 1 || f == 2 || f == 3) && wt == 2) {
            if ((rc = pb_bytes(&b, &sub)))
                return rc;
            rc = f == 1   ? parse_piece(m, sub)
                 : f == 2 ? parse_trainer(m, sub)
                          : parse_normalizer(m, sub);
            if (rc)
                return rc;
        } else if ((rc = pb_skip(&b, wt))) {
            return rc;
        }
    }
    return 0;
}

static int set_id(struct gguf_writer *w, const char *key, int64_t id, size_t n)
{
    if (id < 0 || (uint64_t)id >= n)
        return 0;
    return gguf_writer_set_u32(w, key, (uint32_t)id);
}

int tok_convert_spm_model_mem(struct gguf_writer *w, const void *data, size_t size, char *err,
                              size_t errlen)
{
    struct spm_model m = {.unk = 0, .bos = 1, .eos = 2, .pad = -1, .add_dummy_prefix = 1};
    int rc;
    if (size > TOK_CONVERT_MAX_FILE) {
        tok__cerr(err, errlen, "model file too large", NULL);
        return AS_ERANGE;
    }
    rc = parse_model(&m, data, size);
    if (rc == AS_ENOMEM) {
        tok__cerr(err, errlen, "out of memory", NULL);
        goto out;
    }
    if (rc) {
        tok__cerr(err, errlen, "malformed SentencePiece model", NULL);
        goto out;
    }
    if (m.pieces.n == 0) {
        tok__cerr(err, errlen, "SentencePiece model has no pieces", NULL);
        rc = AS_EFORMAT;
        goto out;
    }
    size_t n = m.pieces.n;
    if ((rc = gguf_writer_set_str(w, "tokenizer.ggml.model", "llama")) ||
        (rc = gguf_writer_set_str(w, "tokenizer.ggml.pre", "default")) ||
        (rc = gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)m.pieces.v,
                                      n)) ||
        (rc = gguf_writer_set_arr_f32(w, "tokenizer.ggml.scores", m.scores, n)) ||
        (rc = gguf_writer_set_arr_i32(w, "tokenizer.ggml.token_type", m.types, n)) ||
        (rc = set_id(w, "tokenizer.ggml.bos_token_id", m.bos, n)) ||
        (rc = set_id(w, "tokenizer.ggml.eos_token_id", m.eos, n)) ||
        (rc = set_id(w, "tokenizer.ggml.unknown_token_id", m.unk, n)) ||
        (rc = set_id(w, "tokenizer.ggml.padding_token_id", m.pad, n)) ||
        (rc = gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", 1)) ||
        (rc = gguf_writer_set_bool(w, "tokenizer.ggml.add_eos_token", 0)) ||
        (rc = gguf_writer_set_bool(w, "tokenizer.ggml.add_space_prefix", m.add_dummy_prefix)))
        tok__cerr(err, errlen, "cannot set GGUF metadata", NULL);
out:
    tok__strlist_free(&m.pieces);
    free(m.scores);
    free(m.types);
    return rc;
}

int tok_convert_spm_model(struct gguf_writer *w, const char *path, char *err, size_t errlen)
{
    char *data = NULL;
    size_t size = 0;
    int rc = tok__read_file(path, &data, &size, err, errlen);
    if (rc == 0)
        rc = tok_convert_spm_model_mem(w, data, size, err, errlen);
    free(data);
    return rc;
}
