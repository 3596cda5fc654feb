/*
 * safetensors.c - validating .safetensors reader over mmap (see safetensors.h).
 */
#include "engine/safetensors.h"

#include <cjson/cJSON.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

struct dtype_info {
    const char *name;
    enum st_dtype t;
    uint32_t size;
};

static const struct dtype_info dtypes[] = {
    {"F32", ST_DTYPE_F32, 4},    {"F16", ST_DTYPE_F16, 2},       {"BF16", ST_DTYPE_BF16, 2},
    {"F64", ST_DTYPE_OTHER, 8},  {"I64", ST_DTYPE_OTHER, 8},     {"U64", ST_DTYPE_OTHER, 8},
    {"I32", ST_DTYPE_OTHER, 4},  {"U32", ST_DTYPE_OTHER, 4},     {"I16", ST_DTYPE_OTHER, 2},
    {"U16", ST_DTYPE_OTHER, 2},  {"I8", ST_DTYPE_OTHER, 1},      {"U8", ST_DTYPE_OTHER, 1},
    {"BOOL", ST_DTYPE_OTHER, 1}, {"F8_E4M3", ST_DTYPE_OTHER, 1}, {"F8_E5M2", ST_DTYPE_OTHER, 1},
};

size_t st_dtype_size(enum st_dtype t)
{
    return t == ST_DTYPE_F32 ? 4 : (t == ST_DTYPE_F16 || t == ST_DTYPE_BF16) ? 2 : 0;
}

/* A JSON number that is a non-negative integer below 2^53 (exact in a double). */
static int json_u64(const cJSON *j, uint64_t *out)
{
    if (!cJSON_IsNumber(j))
        return -1;
    double v = j->valuedouble;
    if (!(v >= 0 && v <= 9007199254740992.0) || v != (double)(uint64_t)v)
        return -1;
    *out = (uint64_t)v;
    return 0;
}

static int cmp_offset(const void *a, const void *b)
{
    const struct st_tensor *x = a, *y = b;
    return x->data < y->data ? -1 : x->data > y->data ? 1 : 0;
}

static int parse_tensor(const cJSON *it, const uint8_t *data, uint64_t data_size,
                        struct st_tensor *t, char *err, size_t errlen)
{
    size_t nl = strlen(it->string);
    if (nl == 0 || nl > ST_MAX_NAME) {
        snprintf(err, errlen, "safetensors: tensor name empty or too long");
        return -1;
    }
    memcpy(t->name, it->string, nl + 1);
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(it, "dtype");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(it, "shape");
    const cJSON *offs = cJSON_GetObjectItemCaseSensitive(it, "data_offsets");
    if (!cJSON_IsObject(it) || !cJSON_IsString(dt) || !cJSON_IsArray(shape) ||
        !cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2) {
        snprintf(err, errlen, "safetensors: tensor %.64s: malformed entry", t->name);
        return -1;
    }
    const struct dtype_info *di = NULL;
    for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
        if (!strcmp(dt->valuestring, dtypes[i].name))
            di = &dtypes[i];
    if (!di) {
        snprintf(err, errlen, "safetensors: tensor %.64s: unknown dtype", t->name);
        return -1;
    }
    t->dtype = di->t;
    snprintf(t->dtype_name, sizeof t->dtype_name, "%s", di->name);
    int nd = cJSON_GetArraySize(shape);
    if (nd > ST_MAX_DIMS) {
        snprintf(err, errlen, "safetensors: tensor %.64s: more than %d dimensions", t->name,
                 ST_MAX_DIMS);
        return -1;
    }
    t->n_dims = (uint32_t)nd;
    uint64_t n = 1;
    for (int i = 0; i < nd; i++) {
        uint64_t d;
        if (json_u64(cJSON_GetArrayItem(shape, i), &d) || d > ((uint64_t)1 << 40) ||
            (d && n > ((uint64_t)1 << 50) / d)) {
            snprintf(err, errlen, "safetensors: tensor %.64s: bad shape", t->name);
            return -1;
        }
        t->shape[i] = d;
        n *= d;
    }
    uint64_t b, e;
    if (json_u64(cJSON_GetArrayItem(offs, 0), &b) || json_u64(cJSON_GetArrayItem(offs, 1), &e) ||
        b > e || e > data_size || e - b != n * di->size) {
        snprintf(err, errlen,
                 "safetensors: tensor %.64s: data offsets out of range or not "
                 "matching its shape",
                 t->name);
        return -1;
    }
    t->data = data + b;
    t->size = e - b;
    return 0;
}

struct st_file *st_open_memory(const void *image, size_t size, char *err, size_t errlen)
{
    struct st_file *f = NULL;
    cJSON *root = NULL;
    const uint8_t *p = image;
    if (size < 8) {
        snprintf(err, errlen, "safetensors: file too short");
        return NULL;
    }
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--)
        hl = hl << 8 | p[i];
    if (hl < 2 || hl > ST_MAX_HEADER || hl > size - 8) {
        snprintf(err, errlen, "safetensors: header length %llu invalid", (unsigned long long)hl);
        return NULL;
    }
    root = cJSON_ParseWithLength((const char *)p + 8, (size_t)hl);
    if (!cJSON_IsObject(root)) {
        snprintf(err, errlen, "safetensors: header is not a JSON object");
        goto fail;
    }
    f = calloc(1, sizeof *f);
    if (!f)
        goto oom;
    f->map = p;
    f->map_size = size;
    size_t n = 0;
    for (const cJSON *it = root->child; it; it = it->next)
        if (strcmp(it->string, "__metadata__"))
            n++;
    if (n > ST_MAX_TENSORS) {
        snprintf(err, errlen, "safetensors: too many tensors");
        goto fail;
    }
    f->tensors = calloc(n ? n : 1, sizeof *f->tensors);
    if (!f->tensors)
        goto oom;
    const uint8_t *data = p + 8 + hl;
    uint64_t data_size = size - 8 - hl;
    for (const cJSON *it = root->child; it; it = it->next) {
        if (!strcmp(it->string, "__metadata__")) {
            if (!cJSON_IsObject(it)) {
                snprintf(err, errlen, "safetensors: __metadata__ is not an object");
                goto fail;
            }
            continue;
        }
        if (parse_tensor(it, data, data_size, &f->tensors[f->n_tensors], err, errlen))
            goto fail;
        f->n_tensors++;
    }
    /* no two tensors may share bytes; also catches duplicate names pointing at one blob */
    struct st_tensor *sorted = malloc((f->n_tensors ? f->n_tensors : 1) * sizeof *sorted);
    if (!sorted)
        goto oom;
    memcpy(sorted, f->tensors, f->n_tensors * sizeof *sorted);
    qsort(sorted, f->n_tensors, sizeof *sorted, cmp_offset);
    int overlap = 0;
    for (size_t i = 1; i < f->n_tensors; i++)
        if (sorted[i - 1].data + sorted[i - 1].size > sorted[i].data)
            overlap = 1;
    free(sorted);
    if (overlap) {
        snprintf(err, errlen, "safetensors: tensors overlap");
        goto fail;
    }
    cJSON_Delete(root);
    return f;
oom:
    snprintf(err, errlen, "safetensors: out of memory");
fail:
    cJSON_Delete(root);
    st_close(f);
    return NULL;
}

struct st_file *st_open(const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_size <= 0) {
        snprintf(err, errlen, "%s: cannot read", path);
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED) {
        snprintf(err, errlen, "%s: cannot map", path);
        return NULL;
    }
    struct st_file *f = st_open_memory(p, (size_t)st.st_size, err, errlen);
    if (!f) {
        munmap(p, (size_t)st.st_size);
        return NULL;
    }
    f->mapped = 1;
    return f;
}

void st_close(struct st_file *f)
{
    if (!f)
        return;
    if (f->mapped)
        munmap((void *)f->map, f->map_size);
    free(f->tensors);
    free(f);
}

const struct st_tensor *st_find(const struct st_file *f, const char *name)
{
    for (size_t i = 0; i < f->n_tensors; i++)
        if (!strcmp(f->tensors[i].name, name))
            return &f->tensors[i];
    return NULL;
}
