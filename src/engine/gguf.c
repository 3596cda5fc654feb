/*
 * gguf.c - GGUF v2/v3 reader over mmap and GGUF v3 writer (see gguf.h).
 *
 * The reader never trusts a count: every length is checked against the bytes
 * that remain before anything is allocated or dereferenced, so a hostile file
 * costs at most O(file size) memory and time. Allocations proportional to a
 * count (kv table, tensor table, string-array offsets) are only made after the
 * count has been bounded by the remaining bytes. Not for: model semantics.
 */
#include "engine/gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/err.h"
#include "core/hugemem.h"
#include "engine/ggml_types.h"

#define GGUF_MAGIC             "GGUF"
#define GGUF_DEFAULT_ALIGNMENT 32
/*
 * Far above any real file (models have < 10k tensors, < 100 keys, vocabularies
 * < 1M tokens), low enough that the tables we allocate stay small.
 */
#define GGUF_MAX_KV         (1u << 16)
#define GGUF_MAX_TENSORS    (1u << 20)
#define GGUF_MAX_ARR_STRING (1u << 24)
/* Arrays of arrays deeper than this are rejected (llama.cpp never writes any). */
#define GGUF_MAX_DEPTH 4

/* ---- small helpers --------------------------------------------------------- */

static void seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static const struct {
    const char *name;
    uint32_t size;
} vtypes[] = {
    [GGUF_VT_UINT8] = {"u8", 1},    [GGUF_VT_INT8] = {"i8", 1},    [GGUF_VT_UINT16] = {"u16", 2},
    [GGUF_VT_INT16] = {"i16", 2},   [GGUF_VT_UINT32] = {"u32", 4}, [GGUF_VT_INT32] = {"i32", 4},
    [GGUF_VT_FLOAT32] = {"f32", 4}, [GGUF_VT_BOOL] = {"bool", 1},  [GGUF_VT_STRING] = {"string", 0},
    [GGUF_VT_ARRAY] = {"array", 0}, [GGUF_VT_UINT64] = {"u64", 8}, [GGUF_VT_INT64] = {"i64", 8},
    [GGUF_VT_FLOAT64] = {"f64", 8},
};

const char *gguf_vtype_name(uint32_t t)
{
    return t < sizeof vtypes / sizeof vtypes[0] ? vtypes[t].name : "?";
}

size_t gguf_vtype_size(uint32_t t)
{
    return t < sizeof vtypes / sizeof vtypes[0] ? vtypes[t].size : 0;
}

static int vtype_valid(uint32_t t)
{
    return t <= GGUF_VT_FLOAT64;
}

static uint64_t rd_u64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static uint32_t rd_u32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* FNV-1a over a byte string. */
static uint64_t hash_bytes(const char *p, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (uint8_t)p[i];
        h *= 1099511628211ull;
    }
    return h;
}

/*
 * Open-addressing table of indices (stored +1, 0 = empty) into an array of
 * names, capacity a power of two at least twice the entry count.
 */
struct name_index {
    uint32_t *slots;
    uint64_t mask;
};

static int index_init(struct name_index *ix, uint64_t n)
{
    uint64_t cap = 16;
    while (cap < 2 * n)
        cap <<= 1;
    ix->slots = calloc(cap, sizeof *ix->slots);
    ix->mask = cap - 1;
    return ix->slots ? 0 : AS_ENOMEM;
}

/*
 * Inserts entry i named name (names[k] gives entry k's name). Returns 0, or
 * the 1-based index of an existing entry with the same name.
 */
static uint64_t index_insert(struct name_index *ix, const struct str *name, uint32_t i,
                             const void *base, size_t stride)
{
    uint64_t h = hash_bytes(name->p, name->len) & ix->mask;
    for (;;) {
        uint32_t s = ix->slots[h];
        if (!s) {
            ix->slots[h] = i + 1;
            return 0;
        }
        const struct str *o = (const struct str *)((const char *)base + (size_t)(s - 1) * stride);
        if (o->len == name->len && !memcmp(o->p, name->p, name->len))
            return s;
        h = (h + 1) & ix->mask;
    }
}

static int64_t index_find(const struct name_index *ix, const char *name, const void *base,
                          size_t stride)
{
    if (!ix->slots || !name)
        return -1;
    size_t len = strlen(name);
    uint64_t h = hash_bytes(name, len) & ix->mask;
    for (;;) {
        uint32_t s = ix->slots[h];
        if (!s)
            return -1;
        const struct str *o = (const struct str *)((const char *)base + (size_t)(s - 1) * stride);
        if (o->len == len && !memcmp(o->p, name, len))
            return (int64_t)s - 1;
        h = (h + 1) & ix->mask;
    }
}

/* ---- reader ---------------------------------------------------------------- */

struct gguf_impl {
    struct gguf_file pub; /* first: gguf_file pointers are gguf_impl pointers */
    int mapped;
    enum gguf_memory how;
    struct name_index kv_ix, t_ix;
};

struct cursor {
    const uint8_t *base;
    size_t size;
    size_t pos;
    char *err;
    size_t errlen;
};

static size_t cur_left(const struct cursor *c)
{
    return c->size - c->pos;
}

static int cur_u32(struct cursor *c, uint32_t *v, const char *what)
{
    if (cur_left(c) < 4) {
        seterr(c->err, c->errlen, "truncated file: %s at offset %zu needs 4 bytes, %zu left", what,
               c->pos, cur_left(c));
        return AS_EFORMAT;
    }
    *v = rd_u32(c->base + c->pos);
    c->pos += 4;
    return 0;
}

static int cur_u64(struct cursor *c, uint64_t *v, const char *what)
{
    if (cur_left(c) < 8) {
        seterr(c->err, c->errlen, "truncated file: %s at offset %zu needs 8 bytes, %zu left", what,
               c->pos, cur_left(c));
        return AS_EFORMAT;
    }
    *v = rd_u64(c->base + c->pos);
    c->pos += 8;
    return 0;
}

static int cur_str(struct cursor *c, struct str *s, const char *what)
{
    uint64_t n;
    int rc = cur_u64(c, &n, what);
    if (rc)
        return rc;
    if (n > cur_left(c)) {
        seterr(c->err, c->errlen,
               "%s at offset %zu: string length %llu exceeds the %zu bytes left in the file", what,
               c->pos - 8, (unsigned long long)n, cur_left(c));
        return AS_EFORMAT;
    }
    s->p = (const char *)c->base + c->pos;
    s->len = (size_t)n;
    c->pos += (size_t)n;
    return 0;
}

/* Short printable form of a name for error messages. */
#define NAMEF    "%.*s"
#define NAMEA(s) (int)((s).len > 80 ? 80 : (s).len), (s).p

/*
 * Skips over one array body (element type et, n elements) starting at the
 * cursor, validating it. If offs is non-NULL (string arrays), records element
 * offsets relative to start.
 */
static int skip_array(struct cursor *c, const struct str *key, uint32_t et, uint64_t n, int depth,
                      uint64_t *offs)
{
    size_t start = c->pos;
    if (!vtype_valid(et)) {
        seterr(c->err, c->errlen, "key '" NAMEF "': unknown array element type %u", NAMEA(*key),
               et);
        return AS_EFORMAT;
    }
    if (et == GGUF_VT_ARRAY && depth >= GGUF_MAX_DEPTH) {
        seterr(c->err, c->errlen, "key '" NAMEF "': arrays nested deeper than %d", NAMEA(*key),
               GGUF_MAX_DEPTH);
        return AS_EFORMAT;
    }
    size_t es = gguf_vtype_size(et);
    if (es) {
        if (n > cur_left(c) / es) {
            seterr(c->err, c->errlen,
                   "key '" NAMEF "': array of %llu %s elements exceeds the %zu bytes left",
                   NAMEA(*key), (unsigned long long)n, gguf_vtype_name(et), cur_left(c));
            return AS_EFORMAT;
        }
        c->pos += (size_t)(n * es);
        return 0;
    }
    /* strings take at least 8 bytes each, arrays at least 12: bound n before looping */
    size_t min = et == GGUF_VT_STRING ? 8 : 12;
    if (n > cur_left(c) / min) {
        seterr(c->err, c->errlen,
               "key '" NAMEF "': array of %llu %s elements exceeds the %zu bytes left", NAMEA(*key),
               (unsigned long long)n, gguf_vtype_name(et), cur_left(c));
        return AS_EFORMAT;
    }
    for (uint64_t i = 0; i < n; i++) {
        if (offs)
            offs[i] = c->pos - start;
        int rc;
        if (et == GGUF_VT_STRING) {
            struct str s;
            rc = cur_str(c, &s, "array string");
        } else {
            uint32_t sub_t;
            uint64_t sub_n;
            rc = cur_u32(c, &sub_t, "nested array type");
            if (!rc)
                rc = cur_u64(c, &sub_n, "nested array length");
            if (!rc)
                rc = skip_array(c, key, sub_t, sub_n, depth + 1, NULL);
        }
        if (rc)
            return rc;
    }
    if (offs)
        offs[n] = c->pos - start;
    return 0;
}

static int parse_kv(struct cursor *c, struct gguf_kv *kv, uint64_t idx)
{
    int rc = cur_str(c, &kv->key, "key");
    if (rc)
        return rc;
    if (kv->key.len == 0) {
        seterr(c->err, c->errlen, "kv %llu: empty key", (unsigned long long)idx);
        return AS_EFORMAT;
    }
    if ((rc = cur_u32(c, &kv->type, "value type")))
        return rc;
    if (!vtype_valid(kv->type)) {
        seterr(c->err, c->errlen, "key '" NAMEF "': unknown value type %u", NAMEA(kv->key),
               kv->type);
        return AS_EFORMAT;
    }
    if (kv->type == GGUF_VT_STRING) {
        size_t at = c->pos;
        struct str s;
        if ((rc = cur_str(c, &s, "string value")))
            return rc;
        kv->val = c->base + at;
        kv->val_size = c->pos - at;
        return 0;
    }
    if (kv->type != GGUF_VT_ARRAY) {
        size_t es = gguf_vtype_size(kv->type);
        if (cur_left(c) < es) {
            seterr(c->err, c->errlen, "key '" NAMEF "': truncated %s value", NAMEA(kv->key),
                   gguf_vtype_name(kv->type));
            return AS_EFORMAT;
        }
        kv->val = c->base + c->pos;
        kv->val_size = es;
        c->pos += es;
        return 0;
    }
    if ((rc = cur_u32(c, &kv->arr_type, "array type")) ||
        (rc = cur_u64(c, &kv->arr_len, "array length")))
        return rc;
    uint64_t *offs = NULL;
    if (kv->arr_type == GGUF_VT_STRING) {
        /* bound before allocating: each string needs >= 8 bytes */
        if (kv->arr_len > GGUF_MAX_ARR_STRING) {
            seterr(c->err, c->errlen,
                   "key '" NAMEF "': array of %llu strings exceeds the limit of %u", NAMEA(kv->key),
                   (unsigned long long)kv->arr_len, GGUF_MAX_ARR_STRING);
            return AS_EFORMAT;
        }
        if (kv->arr_len > cur_left(c) / 8) {
            seterr(c->err, c->errlen,
                   "key '" NAMEF "': array of %llu strings exceeds the %zu bytes left",
                   NAMEA(kv->key), (unsigned long long)kv->arr_len, cur_left(c));
            return AS_EFORMAT;
        }
        offs = malloc((size_t)(kv->arr_len + 1) * sizeof *offs);
        if (!offs) {
            seterr(c->err, c->errlen, "out of memory");
            return AS_ENOMEM;
        }
        kv->arr_offs = offs;
    }
    size_t at = c->pos;
    if ((rc = skip_array(c, &kv->key, kv->arr_type, kv->arr_len, 1, offs)))
        return rc;
    kv->val = c->base + at;
    kv->val_size = c->pos - at;
    return 0;
}

static int parse_tensor(struct cursor *c, struct gguf_tensor *t)
{
    int rc = cur_str(c, &t->name, "tensor name");
    if (rc)
        return rc;
    if ((rc = cur_u32(c, &t->n_dims, "tensor n_dims")))
        return rc;
    if (t->n_dims < 1 || t->n_dims > GGUF_MAX_DIMS) {
        seterr(c->err, c->errlen, "tensor '" NAMEF "': n_dims %u not in 1..%d", NAMEA(t->name),
               t->n_dims, GGUF_MAX_DIMS);
        return AS_EFORMAT;
    }
    for (int d = 0; d < GGUF_MAX_DIMS; d++)
        t->ne[d] = 1;
    for (uint32_t d = 0; d < t->n_dims; d++) {
        if ((rc = cur_u64(c, &t->ne[d], "tensor dimension")))
            return rc;
        if (t->ne[d] == 0 || t->ne[d] > (uint64_t)INT64_MAX) {
            seterr(c->err, c->errlen, "tensor '" NAMEF "': dimension %u is %llu", NAMEA(t->name), d,
                   (unsigned long long)t->ne[d]);
            return AS_EFORMAT;
        }
    }
    if ((rc = cur_u32(c, &t->type, "tensor type")) ||
        (rc = cur_u64(c, &t->offset, "tensor offset")))
        return rc;
    const struct ggml_type_info *ti = ggml_type_get(t->type);
    if (!ti) {
        seterr(c->err, c->errlen, "tensor '" NAMEF "': unknown type %u", NAMEA(t->name), t->type);
        return AS_EFORMAT;
    }
    if (t->ne[0] % ti->blck_size) {
        seterr(c->err, c->errlen,
               "tensor '" NAMEF "': row of %llu elements is not a multiple of the %s block size %u",
               NAMEA(t->name), (unsigned long long)t->ne[0], ti->name, ti->blck_size);
        return AS_EFORMAT;
    }
    /* size = ne0/blck * type_size * ne1 * ne2 * ne3, every product checked */
    uint64_t size = t->ne[0] / ti->blck_size, nel = t->ne[0];
    if (__builtin_mul_overflow(size, (uint64_t)ti->type_size, &size))
        goto overflow;
    for (int d = 1; d < GGUF_MAX_DIMS; d++)
        if (__builtin_mul_overflow(size, t->ne[d], &size) ||
            __builtin_mul_overflow(nel, t->ne[d], &nel))
            goto overflow;
    if (nel > (uint64_t)INT64_MAX)
        goto overflow;
    t->size = size;
    return 0;
overflow:
    seterr(c->err, c->errlen, "tensor '" NAMEF "': element count or byte size overflows",
           NAMEA(t->name));
    return AS_EFORMAT;
}

static int cmp_by_offset(const void *a, const void *b)
{
    const struct gguf_tensor *x = *(const struct gguf_tensor *const *)a;
    const struct gguf_tensor *y = *(const struct gguf_tensor *const *)b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static int check_alignment(struct gguf_impl *g, char *err, size_t errlen)
{
    struct gguf_file *f = &g->pub;
    f->alignment = GGUF_DEFAULT_ALIGNMENT;
    const struct gguf_kv *kv = gguf_find_kv(f, "general.alignment");
    if (!kv)
        return 0;
    if (kv->type != GGUF_VT_UINT32) {
        seterr(err, errlen, "general.alignment has type %s, expected u32",
               gguf_vtype_name(kv->type));
        return AS_EFORMAT;
    }
    uint32_t a = rd_u32(kv->val);
    if (a == 0 || (a & (a - 1)) || a > (1u << 30)) {
        seterr(err, errlen, "general.alignment %u is not a power of two", a);
        return AS_EFORMAT;
    }
    f->alignment = a;
    return 0;
}

static int check_tensor_data(struct gguf_impl *g, char *err, size_t errlen)
{
    struct gguf_file *f = &g->pub;
    struct gguf_tensor **order = NULL;
    int rc = 0;
    size_t data_size = f->data_offset <= f->map_size ? f->map_size - f->data_offset : 0;
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        struct gguf_tensor *t = &f->tensors[i];
        if (t->offset % f->alignment) {
            seterr(err, errlen, "tensor '" NAMEF "': offset %llu is not a multiple of %u",
                   NAMEA(t->name), (unsigned long long)t->offset, f->alignment);
            return AS_EFORMAT;
        }
        if (f->data_offset > f->map_size || t->offset > data_size ||
            t->size > data_size - t->offset) {
            seterr(err, errlen,
                   "tensor '" NAMEF "': data [%llu, %llu) past end of file (size %zu, data at %zu)",
                   NAMEA(t->name), (unsigned long long)(f->data_offset + t->offset),
                   (unsigned long long)(f->data_offset + t->offset + t->size), f->map_size,
                   f->data_offset);
            return AS_EFORMAT;
        }
        t->data = f->map + f->data_offset + t->offset;
    }
    if (f->n_tensors < 2)
        return 0;
    order = malloc((size_t)f->n_tensors * sizeof *order);
    if (!order) {
        seterr(err, errlen, "out of memory");
        return AS_ENOMEM;
    }
    for (uint64_t i = 0; i < f->n_tensors; i++)
        order[i] = &f->tensors[i];
    qsort(order, (size_t)f->n_tensors, sizeof *order, cmp_by_offset);
    for (uint64_t i = 1; i < f->n_tensors; i++) {
        const struct gguf_tensor *a = order[i - 1], *b = order[i];
        if (a->offset + a->size > b->offset) {
            seterr(err, errlen, "tensors '" NAMEF "' and '" NAMEF "' overlap", NAMEA(a->name),
                   NAMEA(b->name));
            rc = AS_EFORMAT;
            break;
        }
    }
    free(order);
    return rc;
}

static int parse(struct gguf_impl *g, char *err, size_t errlen)
{
    struct gguf_file *f = &g->pub;
    struct cursor c = {f->map, f->map_size, 0, err, errlen};
    int rc;
    if (f->map_size < 4 || memcmp(f->map, GGUF_MAGIC, 4)) {
        seterr(err, errlen, "not a GGUF file (bad magic)");
        return AS_EFORMAT;
    }
    c.pos = 4;
    if ((rc = cur_u32(&c, &f->version, "version")))
        return rc;
    if (f->version == 1) {
        seterr(err, errlen, "GGUF version 1 is not supported (re-convert the file to v3)");
        return AS_EUNSUP;
    }
    if (f->version != 2 && f->version != 3) {
        if ((f->version & 0xffff) == 0 && (f->version >> 16) != 0)
            seterr(err, errlen, "big-endian GGUF files are not supported");
        else
            seterr(err, errlen, "unsupported GGUF version %u", f->version);
        return AS_EUNSUP;
    }
    if ((rc = cur_u64(&c, &f->n_tensors, "tensor count")) ||
        (rc = cur_u64(&c, &f->n_kv, "kv count")))
        return rc;
    /* a kv takes >= 8 + 1 + 4 + 1 bytes, a tensor info >= 8 + 4 + 8 + 4 + 8 */
    if (f->n_kv > GGUF_MAX_KV || f->n_kv > cur_left(&c) / 14) {
        seterr(err, errlen, "kv count %llu is impossible for a file of %zu bytes",
               (unsigned long long)f->n_kv, f->map_size);
        return AS_EFORMAT;
    }
    if (f->n_tensors > GGUF_MAX_TENSORS || f->n_tensors > cur_left(&c) / 32) {
        seterr(err, errlen, "tensor count %llu is impossible for a file of %zu bytes",
               (unsigned long long)f->n_tensors, f->map_size);
        return AS_EFORMAT;
    }
    f->kv = calloc(f->n_kv ? (size_t)f->n_kv : 1, sizeof *f->kv);
    f->tensors = calloc(f->n_tensors ? (size_t)f->n_tensors : 1, sizeof *f->tensors);
    if (!f->kv || !f->tensors || index_init(&g->kv_ix, f->n_kv) ||
        index_init(&g->t_ix, f->n_tensors)) {
        seterr(err, errlen, "out of memory");
        return AS_ENOMEM;
    }
    for (uint64_t i = 0; i < f->n_kv; i++) {
        struct gguf_kv *kv = &f->kv[i];
        if ((rc = parse_kv(&c, kv, i)))
            return rc;
        if (index_insert(&g->kv_ix, &kv->key, (uint32_t)i, f->kv, sizeof *kv)) {
            seterr(err, errlen, "duplicate key '" NAMEF "'", NAMEA(kv->key));
            return AS_EFORMAT;
        }
    }
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        struct gguf_tensor *t = &f->tensors[i];
        if ((rc = parse_tensor(&c, t)))
            return rc;
        if (index_insert(&g->t_ix, &t->name, (uint32_t)i, f->tensors, sizeof *t)) {
            seterr(err, errlen, "duplicate tensor name '" NAMEF "'", NAMEA(t->name));
            return AS_EFORMAT;
        }
    }
    if ((rc = check_alignment(g, err, errlen)))
        return rc;
    f->data_offset = c.pos + (f->alignment - c.pos % f->alignment) % f->alignment;
    return check_tensor_data(g, err, errlen);
}

static struct gguf_file *open_image(const void *data, size_t size, int mapped, char *err,
                                    size_t errlen)
{
    struct gguf_impl *g = calloc(1, sizeof *g);
    if (!g) {
        seterr(err, errlen, "out of memory");
        if (mapped)
            munmap((void *)data, size);
        return NULL;
    }
    g->pub.map = data;
    g->pub.map_size = size;
    g->mapped = mapped;
    if (parse(g, err, errlen)) {
        gguf_close(&g->pub);
        return NULL;
    }
    return &g->pub;
}

struct gguf_file *gguf_open_memory(const void *data, size_t size, char *err, size_t errlen)
{
    if (!data && size) {
        seterr(err, errlen, "invalid argument");
        return NULL;
    }
    return open_image(data ? data : "", size, 0, err, errlen);
}

/* ---- reading a file into huge-page memory ---------------------------------- */

/* Bytes per read call; large enough to amortise the syscall, small enough to share. */
#define GGUF_READ_CHUNK (32u << 20)
/* Readers in parallel: page-cache copies and cold disk reads both gain from a few. */
#define GGUF_READ_THREADS 4

struct file_reader {
    int fd;
    uint8_t *dst;
    size_t size;
    _Atomic size_t next; /* next chunk offset to claim */
    _Atomic size_t done; /* bytes read so far */
    _Atomic int failed;  /* errno of the first failure, or -1 for a short file */
};

/* Claims and reads one chunk; 0 when none is left or a read failed. */
static int read_one(struct file_reader *r)
{
    size_t off = atomic_fetch_add(&r->next, GGUF_READ_CHUNK);
    if (off >= r->size || atomic_load(&r->failed))
        return 0;
    size_t end = r->size - off < GGUF_READ_CHUNK ? r->size : off + GGUF_READ_CHUNK;
    while (off < end) {
        ssize_t n = pread(r->fd, r->dst + off, end - off, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int zero = 0;
            atomic_compare_exchange_strong(&r->failed, &zero, n < 0 ? errno : -1);
            return 0;
        }
        off += (size_t)n;
        atomic_fetch_add(&r->done, (size_t)n);
    }
    return 1;
}

static void *read_chunks(void *arg)
{
    while (read_one(arg))
        ;
    return NULL;
}

/* Bytes of the mapping that starts at addr mapped with file huge pages (from smaps). */
static size_t file_pmd_mapped(const void *addr)
{
    FILE *fp = fopen("/proc/self/smaps", "re");
    if (!fp)
        return 0;
    char line[512];
    int in = 0;
    unsigned long long kb = 0;
    while (fgets(line, sizeof line, fp)) {
        unsigned long long lo, hi;
        char c;
        if (sscanf(line, "%llx-%llx %c", &lo, &hi, &c) == 3) {
            if (in)
                break;
            in = (uintptr_t)lo == (uintptr_t)addr;
        } else if (in && sscanf(line, "FilePmdMapped: %llu kB", &kb) == 1) {
            break;
        }
    }
    fclose(fp);
    return (size_t)kb << 10;
}

/* Fraction of [p, p + n) in the page cache (1 when unknown). */
static double resident_fraction(const uint8_t *p, size_t n)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE), np = (n + page - 1) / page;
    unsigned char *v = np ? malloc(np) : NULL;
    if (!v || mincore((void *)p, n, v)) {
        free(v);
        return 1;
    }
    size_t in = 0;
    for (size_t i = 0; i < np; i++)
        in += v[i] & 1;
    free(v);
    return (double)in / (double)np;
}

/* What map_huge() got. */
enum huge_map {
    HUGE_MAPPED, /* the file in (mostly) 2 MB pages, all faulted in */
    HUGE_NONE,   /* no huge pages here: nothing mapped, no error */
    HUGE_ERROR,  /* an I/O or mapping error (err set) */
};

/*
 * Maps the file 2 MB aligned, advised for huge pages, and faults it all in.
 * Where the filesystem caches files in large folios, a file read in through
 * such a mapping lands in 2 MB folios that map with one TLB entry each,
 * zero-copy and still shared with other processes. Not when the file sits in
 * the page cache in small pages already, or the filesystem has no large
 * folios: judged on the first chunk (before any progress is reported), the
 * mapping is then dropped (HUGE_NONE) and *resident is the fraction of the
 * rest of the file found in the page cache. *out is the mapping on HUGE_MAPPED.
 */
static enum huge_map map_huge(int fd, const char *path, size_t size, const struct gguf_open_opts *o,
                              void **out, double *resident, char *err, size_t errlen)
{
    *resident = 1;
    uint8_t *dst = hugemem_reserve(size);
    if (!dst || mmap(dst, size, PROT_READ, MAP_PRIVATE | MAP_FIXED, fd, 0) == MAP_FAILED) {
        seterr(err, errlen, "%s: mmap: %s", path, strerror(errno));
        if (dst)
            munmap(dst, size);
        return HUGE_ERROR;
    }
    madvise(dst, size, MADV_HUGEPAGE);
    for (size_t off = 0; off < size; off += GGUF_READ_CHUNK) {
        size_t len = size - off < GGUF_READ_CHUNK ? size - off : GGUF_READ_CHUNK;
        if (madvise(dst + off, len, MADV_POPULATE_READ)) {
            int e = errno;
            munmap(dst, size);
            if (e == EINVAL) /* a kernel before 5.14 */
                return HUGE_NONE;
            seterr(err, errlen, "%s: read: %s", path, strerror(e));
            return HUGE_ERROR;
        }
        if (off == 0 && file_pmd_mapped(dst) < len / 10 * 9) {
            *resident = resident_fraction(dst + len, size - len);
            munmap(dst, size);
            return HUGE_NONE;
        }
        if (o->progress)
            o->progress(o->ud, off + len, size);
    }
    *out = dst;
    return HUGE_MAPPED;
}

/*
 * Reads the whole file into fresh anonymous memory, 2 MB aligned and advised
 * for transparent huge pages. Returns the region (munmap() of size bytes at it
 * frees it) or MAP_FAILED with err set.
 */
static void *read_file(int fd, const char *path, size_t size, const struct gguf_open_opts *o,
                       char *err, size_t errlen)
{
    uint8_t *dst = hugemem_alloc(size);
    if (!dst) {
        seterr(err, errlen, "%s: cannot allocate %zu MB for the weights: %s", path, size >> 20,
               strerror(errno));
        return MAP_FAILED;
    }
    posix_fadvise(fd, 0, (off_t)size, POSIX_FADV_SEQUENTIAL);

    struct file_reader r = {.fd = fd, .dst = dst, .size = size};
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    int nth = ncpu < 1 ? 1 : ncpu > GGUF_READ_THREADS ? GGUF_READ_THREADS : (int)ncpu;
    if (size < 2 * (size_t)GGUF_READ_CHUNK)
        nth = 1;
    pthread_t th[GGUF_READ_THREADS];
    int started = 0;
    for (int i = 1; i < nth; i++, started++)
        if (pthread_create(&th[started], NULL, read_chunks, &r))
            break;
    /* the calling thread reads too, and reports after each of its chunks */
    while (read_one(&r))
        if (o->progress)
            o->progress(o->ud, atomic_load(&r.done), size);
    for (int i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    int failed = atomic_load(&r.failed);
    if (failed) {
        seterr(err, errlen, "%s: read: %s", path, failed > 0 ? strerror(failed) : "file shrank");
        munmap(dst, size);
        return MAP_FAILED;
    }
    if (o->progress)
        o->progress(o->ud, size, size);
    mprotect(dst, size, PROT_READ);
    return dst;
}

struct gguf_file *gguf_open_ex(const char *path, const struct gguf_open_opts *o, char *err,
                               size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        seterr(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) < 0) {
        seterr(err, errlen, "%s: %s", path, strerror(errno));
        close(fd);
        return NULL;
    }
    if (!S_ISREG(st.st_mode) || st.st_size < 8) {
        seterr(err, errlen, "%s: not a GGUF file (%s)", path,
               S_ISREG(st.st_mode) ? "too short" : "not a regular file");
        close(fd);
        return NULL;
    }
    size_t size = (size_t)st.st_size;
    enum gguf_memory how = GGUF_MEM_MAP;
    void *map = MAP_FAILED;
    if (o && o->huge == GGUF_HUGE_MAP_OR_READ) {
        double resident;
        enum huge_map h = map_huge(fd, path, size, o, &map, &resident, err, errlen);
        if (h == HUGE_NONE && resident < 0.5) {
            /*
             * Mostly not cached, the rest in small pages: most of it must come
             * from the disk anyway, so drop the cached part (clean pages no one
             * maps) and read it all through the huge mapping.
             */
            posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
            h = map_huge(fd, path, size, o, &map, &resident, err, errlen);
        }
        if (h == HUGE_ERROR) {
            close(fd);
            return NULL;
        }
        if (h == HUGE_MAPPED)
            how = GGUF_MEM_MAP_HUGE;
    }
    if (map == MAP_FAILED && o && o->huge) {
        map = read_file(fd, path, size, o, err, errlen);
        how = GGUF_MEM_READ;
    } else if (map == MAP_FAILED) {
        map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED)
            seterr(err, errlen, "%s: mmap: %s", path, strerror(errno));
    }
    close(fd);
    if (map == MAP_FAILED)
        return NULL;
    struct gguf_file *f = open_image(map, size, 1, err, errlen);
    if (!f && err && errlen) {
        /* prefix the path: "model.gguf: tensor ...". */
        char tmp[512];
        snprintf(tmp, sizeof tmp, "%s", err);
        seterr(err, errlen, "%s: %s", path, tmp);
    }
    if (f)
        ((struct gguf_impl *)f)->how = how;
    return f;
}

enum gguf_memory gguf_memory_of(const struct gguf_file *f)
{
    return ((const struct gguf_impl *)f)->how;
}

struct gguf_file *gguf_open(const char *path, char *err, size_t errlen)
{
    return gguf_open_ex(path, NULL, err, errlen);
}

void gguf_close(struct gguf_file *f)
{
    if (!f)
        return;
    struct gguf_impl *g = (struct gguf_impl *)f;
    if (f->kv)
        for (uint64_t i = 0; i < f->n_kv; i++)
            free((void *)f->kv[i].arr_offs);
    free(f->kv);
    free(f->tensors);
    free(g->kv_ix.slots);
    free(g->t_ix.slots);
    if (g->mapped)
        munmap((void *)f->map, f->map_size);
    free(g);
}

const struct gguf_kv *gguf_find_kv(const struct gguf_file *f, const char *key)
{
    if (!f)
        return NULL;
    const struct gguf_impl *g = (const struct gguf_impl *)f;
    int64_t i = index_find(&g->kv_ix, key, f->kv, sizeof *f->kv);
    return i < 0 ? NULL : &f->kv[i];
}

const struct gguf_tensor *gguf_find_tensor(const struct gguf_file *f, const char *name)
{
    if (!f)
        return NULL;
    const struct gguf_impl *g = (const struct gguf_impl *)f;
    int64_t i = index_find(&g->t_ix, name, f->tensors, sizeof *f->tensors);
    return i < 0 ? NULL : &f->tensors[i];
}

/* ---- typed getters --------------------------------------------------------- */

/* Reads a scalar of integer type t at p as signed (via *is_neg) magnitude. */
static int read_int(uint32_t t, const uint8_t *p, int64_t *sv, uint64_t *uv, int *is_signed)
{
    *is_signed = 1;
    switch (t) {
    case GGUF_VT_UINT8:
    case GGUF_VT_BOOL:
        *sv = p[0];
        break;
    case GGUF_VT_INT8:
        *sv = (int8_t)p[0];
        break;
    case GGUF_VT_UINT16: {
        uint16_t v;
        memcpy(&v, p, 2);
        *sv = v;
        break;
    }
    case GGUF_VT_INT16: {
        int16_t v;
        memcpy(&v, p, 2);
        *sv = v;
        break;
    }
    case GGUF_VT_UINT32:
        *sv = rd_u32(p);
        break;
    case GGUF_VT_INT32: {
        int32_t v;
        memcpy(&v, p, 4);
        *sv = v;
        break;
    }
    case GGUF_VT_INT64:
        memcpy(sv, p, 8);
        break;
    case GGUF_VT_UINT64:
        *is_signed = 0;
        *uv = rd_u64(p);
        return 0;
    default:
        return AS_EINVAL;
    }
    return 0;
}

static int get_scalar(const struct gguf_file *f, const char *key, const struct gguf_kv **out)
{
    const struct gguf_kv *kv = gguf_find_kv(f, key);
    if (!kv)
        return AS_ENOENT;
    *out = kv;
    return 0;
}

int gguf_get_u64(const struct gguf_file *f, const char *key, uint64_t *out)
{
    const struct gguf_kv *kv;
    int rc = get_scalar(f, key, &kv);
    if (rc)
        return rc;
    if (kv->type == GGUF_VT_BOOL)
        return AS_EINVAL;
    int64_t sv = 0;
    uint64_t uv = 0;
    int is_signed;
    if (read_int(kv->type, kv->val, &sv, &uv, &is_signed))
        return AS_EINVAL;
    if (is_signed) {
        if (sv < 0)
            return AS_EINVAL;
        uv = (uint64_t)sv;
    }
    *out = uv;
    return 0;
}

int gguf_get_u32(const struct gguf_file *f, const char *key, uint32_t *out)
{
    uint64_t v;
    int rc = gguf_get_u64(f, key, &v);
    if (rc)
        return rc;
    if (v > UINT32_MAX)
        return AS_EINVAL;
    *out = (uint32_t)v;
    return 0;
}

int gguf_get_f32(const struct gguf_file *f, const char *key, float *out)
{
    const struct gguf_kv *kv;
    int rc = get_scalar(f, key, &kv);
    if (rc)
        return rc;
    if (kv->type == GGUF_VT_FLOAT32) {
        memcpy(out, kv->val, 4);
    } else if (kv->type == GGUF_VT_FLOAT64) {
        double d;
        memcpy(&d, kv->val, 8);
        *out = (float)d;
    } else {
        return AS_EINVAL;
    }
    return 0;
}

int gguf_get_bool(const struct gguf_file *f, const char *key, int *out)
{
    const struct gguf_kv *kv;
    int rc = get_scalar(f, key, &kv);
    if (rc)
        return rc;
    if (kv->type != GGUF_VT_BOOL)
        return AS_EINVAL;
    *out = kv->val[0] != 0;
    return 0;
}

int gguf_get_str(const struct gguf_file *f, const char *key, struct str *out)
{
    const struct gguf_kv *kv;
    int rc = get_scalar(f, key, &kv);
    if (rc)
        return rc;
    if (kv->type != GGUF_VT_STRING)
        return AS_EINVAL;
    out->len = (size_t)rd_u64(kv->val);
    out->p = (const char *)kv->val + 8;
    return 0;
}

int gguf_arr_str(const struct gguf_kv *kv, uint64_t i, struct str *out)
{
    if (!kv || kv->type != GGUF_VT_ARRAY || kv->arr_type != GGUF_VT_STRING || !kv->arr_offs)
        return AS_EINVAL;
    if (i >= kv->arr_len)
        return AS_ERANGE;
    const uint8_t *p = kv->val + kv->arr_offs[i];
    out->len = (size_t)rd_u64(p);
    out->p = (const char *)p + 8;
    return 0;
}

int gguf_arr_i32(const struct gguf_kv *kv, uint64_t i, int32_t *out)
{
    if (!kv || kv->type != GGUF_VT_ARRAY)
        return AS_EINVAL;
    size_t es = gguf_vtype_size(kv->arr_type);
    if (!es || kv->arr_type == GGUF_VT_FLOAT32 || kv->arr_type == GGUF_VT_FLOAT64)
        return AS_EINVAL;
    if (i >= kv->arr_len)
        return AS_ERANGE;
    int64_t sv = 0;
    uint64_t uv = 0;
    int is_signed;
    if (read_int(kv->arr_type, kv->val + i * es, &sv, &uv, &is_signed))
        return AS_EINVAL;
    if (!is_signed) {
        if (uv > INT32_MAX)
            return AS_ERANGE;
        sv = (int64_t)uv;
    }
    if (sv < INT32_MIN || sv > INT32_MAX)
        return AS_ERANGE;
    *out = (int32_t)sv;
    return 0;
}

int gguf_arr_f32(const struct gguf_kv *kv, uint64_t i, float *out)
{
    if (!kv || kv->type != GGUF_VT_ARRAY)
        return AS_EINVAL;
    if (i >= kv->arr_len && (kv->arr_type == GGUF_VT_FLOAT32 || kv->arr_type == GGUF_VT_FLOAT64))
        return AS_ERANGE;
    if (kv->arr_type == GGUF_VT_FLOAT32) {
        memcpy(out, kv->val + i * 4, 4);
        return 0;
    }
    if (kv->arr_type == GGUF_VT_FLOAT64) {
        double d;
        memcpy(&d, kv->val + i * 8, 8);
        *out = (float)d;
        return 0;
    }
    return AS_EINVAL;
}
