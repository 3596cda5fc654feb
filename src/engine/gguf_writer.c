/*
 * gguf_writer.c - the GGUF v3 writer half of gguf.h.
 *
 * Metadata values are serialized when set (so copies from a mapped file do not
 * outlive it); tensors are borrowed pointers or fill callbacks, streamed to a
 * temporary file in bounded chunks and renamed into place after fsync, so a
 * crash never leaves a half-written model under the final name. Not for:
 * reading (gguf.c).
 */
#include "engine/gguf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/err.h"
#include "engine/ggml_types.h"

#define WRITER_CHUNK (8u << 20) /* bytes of tensor data produced per fill() call */

struct wkv {
    char *key;
    uint32_t type, arr_type;
    uint64_t arr_len;
    uint8_t *val; /* serialized value as in the file (arrays: the elements) */
    size_t val_size;
};

struct wtensor {
    char *name;
    uint32_t type, n_dims;
    uint64_t ne[GGUF_MAX_DIMS];
    uint64_t size, offset, row_size, n_rows;
    const void *data;
    gguf_tensor_fill_fn fill;
    void *ud;
};

struct gguf_writer {
    struct wkv *kv;
    size_t n_kv, cap_kv;
    struct wtensor *t;
    size_t n_t, cap_t;
    char err[256];
};

static int werr(struct gguf_writer *w, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int werr(struct gguf_writer *w, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->err, sizeof w->err, fmt, ap);
    va_end(ap);
    return rc;
}

struct gguf_writer *gguf_writer_new(void)
{
    return calloc(1, sizeof(struct gguf_writer));
}

void gguf_writer_free(struct gguf_writer *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < w->n_kv; i++) {
        free(w->kv[i].key);
        free(w->kv[i].val);
    }
    for (size_t i = 0; i < w->n_t; i++)
        free(w->t[i].name);
    free(w->kv);
    free(w->t);
    free(w);
}

const char *gguf_writer_errmsg(const struct gguf_writer *w)
{
    return w ? w->err : "";
}

static struct wkv *find_kv(struct gguf_writer *w, const char *key)
{
    for (size_t i = 0; i < w->n_kv; i++)
        if (!strcmp(w->kv[i].key, key))
            return &w->kv[i];
    return NULL;
}

/* Sets key to an already serialized value (takes ownership of val). */
static int set_raw(struct gguf_writer *w, const char *key, uint32_t type, uint32_t arr_type,
                   uint64_t arr_len, uint8_t *val, size_t val_size)
{
    if (!w || !key || !*key) {
        free(val);
        return AS_EINVAL;
    }
    struct wkv *kv = find_kv(w, key);
    if (!kv) {
        if (w->n_kv == w->cap_kv) {
            size_t cap = w->cap_kv ? 2 * w->cap_kv : 16;
            struct wkv *n = realloc(w->kv, cap * sizeof *n);
            if (!n) {
                free(val);
                return werr(w, AS_ENOMEM, "out of memory");
            }
            w->kv = n;
            w->cap_kv = cap;
        }
        kv = &w->kv[w->n_kv];
        memset(kv, 0, sizeof *kv);
        kv->key = strdup(key);
        if (!kv->key) {
            free(val);
            return werr(w, AS_ENOMEM, "out of memory");
        }
        w->n_kv++;
    } else {
        free(kv->val);
    }
    kv->type = type;
    kv->arr_type = arr_type;
    kv->arr_len = arr_len;
    kv->val = val;
    kv->val_size = val_size;
    return 0;
}

static int set_scalar(struct gguf_writer *w, const char *key, uint32_t type, const void *v)
{
    size_t n = gguf_vtype_size(type);
    uint8_t *p = malloc(n);
    if (!p)
        return AS_ENOMEM;
    memcpy(p, v, n);
    return set_raw(w, key, type, 0, 0, p, n);
}

int gguf_writer_set_u32(struct gguf_writer *w, const char *key, uint32_t v)
{
    return set_scalar(w, key, GGUF_VT_UINT32, &v);
}

int gguf_writer_set_i32(struct gguf_writer *w, const char *key, int32_t v)
{
    return set_scalar(w, key, GGUF_VT_INT32, &v);
}

int gguf_writer_set_u64(struct gguf_writer *w, const char *key, uint64_t v)
{
    return set_scalar(w, key, GGUF_VT_UINT64, &v);
}

int gguf_writer_set_f32(struct gguf_writer *w, const char *key, float v)
{
    return set_scalar(w, key, GGUF_VT_FLOAT32, &v);
}

int gguf_writer_set_bool(struct gguf_writer *w, const char *key, int v)
{
    uint8_t b = v != 0;
    return set_scalar(w, key, GGUF_VT_BOOL, &b);
}

int gguf_writer_set_str(struct gguf_writer *w, const char *key, const char *v)
{
    if (!v)
        return AS_EINVAL;
    uint64_t n = strlen(v);
    uint8_t *p = malloc(8 + n);
    if (!p)
        return AS_ENOMEM;
    memcpy(p, &n, 8);
    memcpy(p + 8, v, n);
    return set_raw(w, key, GGUF_VT_STRING, 0, 0, p, 8 + n);
}

int gguf_writer_set_arr_strn(struct gguf_writer *w, const char *key, const struct str *v,
                             uint64_t n)
{
    if (!v && n)
        return AS_EINVAL;
    size_t total = 0;
    for (uint64_t i = 0; i < n; i++) {
        if (!v[i].p && v[i].len)
            return AS_EINVAL;
        total += 8 + v[i].len;
    }
    uint8_t *p = malloc(total ? total : 1), *q = p;
    if (!p)
        return AS_ENOMEM;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t len = v[i].len;
        memcpy(q, &len, 8);
        if (len)
            memcpy(q + 8, v[i].p, len);
        q += 8 + len;
    }
    return set_raw(w, key, GGUF_VT_ARRAY, GGUF_VT_STRING, n, p, total);
}

int gguf_writer_set_arr_str(struct gguf_writer *w, const char *key, const char *const *v,
                            uint64_t n)
{
    if (!v && n)
        return AS_EINVAL;
    struct str *s = malloc((n ? n : 1) * sizeof *s);
    if (!s)
        return AS_ENOMEM;
    int rc = 0;
    for (uint64_t i = 0; i < n && !rc; i++) {
        if (!v[i])
            rc = AS_EINVAL;
        else
            s[i] = (struct str){v[i], strlen(v[i])};
    }
    if (!rc)
        rc = gguf_writer_set_arr_strn(w, key, s, n);
    free(s);
    return rc;
}

int gguf_writer_set_arr(struct gguf_writer *w, const char *key, uint32_t arr_type, const void *v,
                        uint64_t n)
{
    size_t es = gguf_vtype_size(arr_type);
    if (!es || (!v && n) || n > SIZE_MAX / es)
        return AS_EINVAL;
    uint8_t *p = malloc(n ? n * es : 1);
    if (!p)
        return AS_ENOMEM;
    if (n)
        memcpy(p, v, n * es);
    return set_raw(w, key, GGUF_VT_ARRAY, arr_type, n, p, n * es);
}

int gguf_writer_set_arr_i32(struct gguf_writer *w, const char *key, const int32_t *v, uint64_t n)
{
    return gguf_writer_set_arr(w, key, GGUF_VT_INT32, v, n);
}

int gguf_writer_set_arr_f32(struct gguf_writer *w, const char *key, const float *v, uint64_t n)
{
    return gguf_writer_set_arr(w, key, GGUF_VT_FLOAT32, v, n);
}

int gguf_writer_copy_kv(struct gguf_writer *w, const struct gguf_kv *kv)
{
    if (!w || !kv || !kv->key.len || kv->key.len > 65535)
        return AS_EINVAL;
    char *key = malloc(kv->key.len + 1);
    uint8_t *p = malloc(kv->val_size ? (size_t)kv->val_size : 1);
    if (!key || !p) {
        free(key);
        free(p);
        return AS_ENOMEM;
    }
    memcpy(key, kv->key.p, kv->key.len);
    key[kv->key.len] = 0;
    memcpy(p, kv->val, (size_t)kv->val_size);
    int rc = set_raw(w, key, kv->type, kv->arr_type, kv->arr_len, p, (size_t)kv->val_size);
    free(key);
    return rc;
}

int gguf_writer_remove_kv(struct gguf_writer *w, const char *key)
{
    if (!w || !key)
        return AS_EINVAL;
    struct wkv *kv = find_kv(w, key);
    if (!kv)
        return 0;
    free(kv->key);
    free(kv->val);
    size_t i = (size_t)(kv - w->kv);
    memmove(kv, kv + 1, (w->n_kv - i - 1) * sizeof *kv);
    w->n_kv--;
    return 0;
}

static int add_tensor(struct gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                      const uint64_t *ne, const void *data, gguf_tensor_fill_fn fill, void *ud)
{
    if (!w || !name || !ne || n_dims < 1 || n_dims > GGUF_MAX_DIMS)
        return AS_EINVAL;
    const struct ggml_type_info *ti = ggml_type_get(type);
    if (!ti)
        return werr(w, AS_EINVAL, "tensor '%s': unknown type %u", name, type);
    for (size_t i = 0; i < w->n_t; i++)
        if (!strcmp(w->t[i].name, name))
            return werr(w, AS_EINVAL, "duplicate tensor name '%s'", name);
    struct wtensor t = {0};
    t.type = type;
    t.n_dims = n_dims;
    t.n_rows = 1;
    for (int d = 0; d < GGUF_MAX_DIMS; d++) {
        t.ne[d] = (uint32_t)d < n_dims ? ne[d] : 1;
        if (t.ne[d] == 0)
            return werr(w, AS_EINVAL, "tensor '%s': dimension %d is 0", name, d);
        if (d > 0 && __builtin_mul_overflow(t.n_rows, t.ne[d], &t.n_rows))
            return werr(w, AS_EINVAL, "tensor '%s': size overflows", name);
    }
    t.row_size = ggml_row_size(type, t.ne[0]);
    if (!t.row_size)
        return werr(w, AS_EINVAL, "tensor '%s': row of %llu is not a multiple of %s blocks", name,
                    (unsigned long long)t.ne[0], ti->name);
    if (__builtin_mul_overflow(t.row_size, t.n_rows, &t.size))
        return werr(w, AS_EINVAL, "tensor '%s': size overflows", name);
    t.data = data;
    t.fill = fill;
    t.ud = ud;
    if (w->n_t == w->cap_t) {
        size_t cap = w->cap_t ? 2 * w->cap_t : 64;
        struct wtensor *n = realloc(w->t, cap * sizeof *n);
        if (!n)
            return werr(w, AS_ENOMEM, "out of memory");
        w->t = n;
        w->cap_t = cap;
    }
    t.name = strdup(name);
    if (!t.name)
        return werr(w, AS_ENOMEM, "out of memory");
    w->t[w->n_t++] = t;
    return 0;
}

int gguf_writer_add_tensor(struct gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                           const uint64_t *ne, const void *data)
{
    if (!data)
        return AS_EINVAL;
    return add_tensor(w, name, type, n_dims, ne, data, NULL, NULL);
}

int gguf_writer_add_tensor_cb(struct gguf_writer *w, const char *name, uint32_t type,
                              uint32_t n_dims, const uint64_t *ne, gguf_tensor_fill_fn fill,
                              void *ud)
{
    if (!fill)
        return AS_EINVAL;
    return add_tensor(w, name, type, n_dims, ne, NULL, fill, ud);
}

/* ---- serialization --------------------------------------------------------- */

static int put(FILE *fp, const void *p, size_t n)
{
    return n && fwrite(p, 1, n, fp) != n ? AS_EIO : 0;
}

static int put_u32(FILE *fp, uint32_t v)
{
    return put(fp, &v, 4);
}

static int put_u64(FILE *fp, uint64_t v)
{
    return put(fp, &v, 8);
}

static int put_str(FILE *fp, const char *s)
{
    uint64_t n = strlen(s);
    return put_u64(fp, n) || put(fp, s, n) ? AS_EIO : 0;
}

static int put_zeros(FILE *fp, uint64_t n)
{
    static const uint8_t zeros[256];
    while (n) {
        size_t k = n < sizeof zeros ? (size_t)n : sizeof zeros;
        if (put(fp, zeros, k))
            return AS_EIO;
        n -= k;
    }
    return 0;
}

static int write_tensor_data(struct gguf_writer *w, FILE *fp, struct wtensor *t, uint8_t **chunk,
                             size_t *chunk_cap)
{
    if (t->data)
        return put(fp, t->data, (size_t)t->size) ? werr(w, AS_EIO, "write: %s", strerror(errno))
                                                 : 0;
    uint64_t rows_per = WRITER_CHUNK / t->row_size;
    if (rows_per == 0)
        rows_per = 1;
    if (rows_per > t->n_rows)
        rows_per = t->n_rows;
    size_t need = (size_t)(rows_per * t->row_size);
    if (need > *chunk_cap) {
        uint8_t *n = realloc(*chunk, need);
        if (!n)
            return werr(w, AS_ENOMEM, "out of memory");
        *chunk = n;
        *chunk_cap = need;
    }
    for (uint64_t r = 0; r < t->n_rows; r += rows_per) {
        uint64_t n = t->n_rows - r < rows_per ? t->n_rows - r : rows_per;
        int rc = t->fill(t->ud, r, n, *chunk);
        if (rc)
            return werr(w, rc, "tensor '%s': producing data failed: %s", t->name, as_strerror(rc));
        if (put(fp, *chunk, (size_t)(n * t->row_size)))
            return werr(w, AS_EIO, "write: %s", strerror(errno));
    }
    return 0;
}

static int write_all(struct gguf_writer *w, FILE *fp)
{
    uint32_t align = 32;
    struct wkv *akv = find_kv(w, "general.alignment");
    if (akv) {
        uint32_t a;
        if (akv->type != GGUF_VT_UINT32)
            return werr(w, AS_EINVAL, "general.alignment must be u32");
        memcpy(&a, akv->val, 4);
        if (!a || (a & (a - 1)))
            return werr(w, AS_EINVAL, "general.alignment %u is not a power of two", a);
        align = a;
    }
    uint64_t off = 0;
    for (size_t i = 0; i < w->n_t; i++) {
        w->t[i].offset = off;
        off += w->t[i].size;
        off += (align - off % align) % align;
    }
    int rc = put(fp, "GGUF", 4) || put_u32(fp, 3) || put_u64(fp, w->n_t) || put_u64(fp, w->n_kv);
    uint64_t pos = 24;
    for (size_t i = 0; !rc && i < w->n_kv; i++) {
        const struct wkv *kv = &w->kv[i];
        rc = put_str(fp, kv->key) || put_u32(fp, kv->type);
        pos += 8 + strlen(kv->key) + 4;
        if (!rc && kv->type == GGUF_VT_ARRAY) {
            rc = put_u32(fp, kv->arr_type) || put_u64(fp, kv->arr_len);
            pos += 12;
        }
        rc = rc || put(fp, kv->val, kv->val_size);
        pos += kv->val_size;
    }
    for (size_t i = 0; !rc && i < w->n_t; i++) {
        const struct wtensor *t = &w->t[i];
        rc = put_str(fp, t->name) || put_u32(fp, t->n_dims);
        for (uint32_t d = 0; !rc && d < t->n_dims; d++)
            rc = put_u64(fp, t->ne[d]);
        rc = rc || put_u32(fp, t->type) || put_u64(fp, t->offset);
        pos += 8 + strlen(t->name) + 4 + 8 * t->n_dims + 4 + 8;
    }
    if (rc)
        return werr(w, AS_EIO, "write: %s", strerror(errno));
    if (w->n_t && put_zeros(fp, (align - pos % align) % align))
        return werr(w, AS_EIO, "write: %s", strerror(errno));
    uint8_t *chunk = NULL;
    size_t chunk_cap = 0;
    uint64_t at = 0;
    for (size_t i = 0; !rc && i < w->n_t; i++) {
        struct wtensor *t = &w->t[i];
        if (put_zeros(fp, t->offset - at)) {
            rc = werr(w, AS_EIO, "write: %s", strerror(errno));
            break;
        }
        rc = write_tensor_data(w, fp, t, &chunk, &chunk_cap);
        at = t->offset + t->size;
    }
    free(chunk);
    if (!rc && w->n_t && put_zeros(fp, (align - at % align) % align))
        rc = werr(w, AS_EIO, "write: %s", strerror(errno));
    return rc;
}

int gguf_writer_write(struct gguf_writer *w, const char *path)
{
    if (!w || !path)
        return AS_EINVAL;
    w->err[0] = 0;
    char tmp[4096];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", path) >= sizeof tmp)
        return werr(w, AS_EINVAL, "path too long");
    FILE *fp = fopen(tmp, "wb");
    if (!fp)
        return werr(w, AS_EIO, "%s: %s", tmp, strerror(errno));
    setvbuf(fp, NULL, _IOFBF, 1 << 20);
    int rc = write_all(w, fp);
    if (!rc && (fflush(fp) || fsync(fileno(fp))))
        rc = werr(w, AS_EIO, "%s: %s", tmp, strerror(errno));
    if (fclose(fp) && !rc)
        rc = werr(w, AS_EIO, "%s: %s", tmp, strerror(errno));
    if (!rc && rename(tmp, path))
        rc = werr(w, AS_EIO, "rename %s: %s", path, strerror(errno));
    if (rc)
        unlink(tmp);
    return rc;
}
