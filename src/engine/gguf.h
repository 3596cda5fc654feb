/*
 * gguf.h - GGUF v2/v3 reader (zero-copy over mmap) and writer.
 *
 * The reader validates every count, string length, array size, tensor shape,
 * type and offset against the file size before use; a truncated or hostile file
 * yields an error message, never a crash, hang or huge allocation. Metadata
 * strings and tensor data point into the mapping and live as long as the
 * gguf_file. Not for: interpreting model hyperparameters (see model.h).
 */
#ifndef AISTACK_ENGINE_GGUF_H
#define AISTACK_ENGINE_GGUF_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

enum gguf_vtype {
    GGUF_VT_UINT8 = 0,
    GGUF_VT_INT8 = 1,
    GGUF_VT_UINT16 = 2,
    GGUF_VT_INT16 = 3,
    GGUF_VT_UINT32 = 4,
    GGUF_VT_INT32 = 5,
    GGUF_VT_FLOAT32 = 6,
    GGUF_VT_BOOL = 7,
    GGUF_VT_STRING = 8,
    GGUF_VT_ARRAY = 9,
    GGUF_VT_UINT64 = 10,
    GGUF_VT_INT64 = 11,
    GGUF_VT_FLOAT64 = 12,
};

#define GGUF_MAX_DIMS 4

/* One metadata key/value, borrowed from the mapping. */
struct gguf_kv {
    struct str key;
    uint32_t type;      /* enum gguf_vtype */
    uint32_t arr_type;  /* element type when type == GGUF_VT_ARRAY */
    uint64_t arr_len;   /* element count when type == GGUF_VT_ARRAY */
    const uint8_t *val; /* raw little-endian value (for arrays: first element) */
    uint64_t val_size;  /* bytes of the raw value */
    /*
     * For arrays of strings: arr_len + 1 byte offsets of each element's
     * length prefix relative to val (last = val_size), so element access is
     * O(1). Owned by the gguf_file; NULL otherwise.
     */
    const uint64_t *arr_offs;
};

struct gguf_tensor {
    struct str name;
    uint32_t n_dims;
    uint64_t ne[GGUF_MAX_DIMS]; /* ne[0] is the contiguous (row) dimension; unused dims are 1 */
    uint32_t type;              /* enum ggml_type */
    uint64_t offset;            /* relative to the data section */
    uint64_t size;              /* bytes */
    const void *data;           /* into the mapping */
};

struct gguf_file {
    uint32_t version;
    uint64_t n_kv;
    struct gguf_kv *kv;
    uint64_t n_tensors;
    struct gguf_tensor *tensors;
    uint32_t alignment;
    const uint8_t *map; /* whole file */
    size_t map_size;
    size_t data_offset; /* start of the tensor data section */
};

/*
 * Opens and validates path. Returns NULL and writes a message to err (size
 * errlen) on failure.
 */
struct gguf_file *gguf_open(const char *path, char *err, size_t errlen);
/* What gguf_open_ex() tries for huge pages. */
enum gguf_huge {
    GGUF_HUGE_NO = 0,      /* a plain mapping: zero-copy, lazily paged */
    GGUF_HUGE_MAP_OR_READ, /* a huge-page file mapping, else GGUF_HUGE_READ */
    GGUF_HUGE_READ,        /* a private copy in anonymous huge pages */
};
/* Where the opened file's bytes live. */
enum gguf_memory {
    GGUF_MEM_MAP = 0,  /* file mapping, base pages (or an in-memory image) */
    GGUF_MEM_MAP_HUGE, /* file mapping, mostly 2 MB pages, all faulted in */
    GGUF_MEM_READ,     /* private anonymous copy, advised for huge pages */
};
/*
 * Options of gguf_open_ex(); zeroed: like gguf_open(). Weights streamed from
 * 4 KB pages pay a TLB miss (a two-level walk under a hypervisor) every 4 KB
 * per row the kernels read; from 2 MB pages the matrix products run up to 1.4x
 * faster (docs/PERFORMANCE.md, "Weights in huge pages"). A huge-page file
 * mapping needs a filesystem that caches in large folios (ext4 since Linux
 * 6.16, xfs) and the file not already cached in small pages; the copy works
 * anywhere with transparent huge pages but is private to the process.
 */
struct gguf_open_opts {
    enum gguf_huge huge;
    /* With huge: called on the opening thread as bytes arrive (done, total). */
    void (*progress)(void *ud, uint64_t done, uint64_t total);
    void *ud;
};
struct gguf_file *gguf_open_ex(const char *path, const struct gguf_open_opts *o, char *err,
                               size_t errlen);
/* Where f's bytes live (GGUF_MEM_MAP for gguf_open_memory()). */
enum gguf_memory gguf_memory_of(const struct gguf_file *f);
/* Parses an in-memory image (not copied, must outlive the result). For tests/fuzzing. */
struct gguf_file *gguf_open_memory(const void *data, size_t size, char *err, size_t errlen);
/* Unmaps and frees. Accepts NULL. */
void gguf_close(struct gguf_file *f);

/* Name of a metadata value type ("u32", "string", ...); "?" when unknown. */
const char *gguf_vtype_name(uint32_t t);
/* Bytes of one value of a fixed-size type; 0 for strings, arrays and unknown types. */
size_t gguf_vtype_size(uint32_t t);

/* Lookups by exact name through a hash index (O(1)); NULL when absent. */
const struct gguf_kv *gguf_find_kv(const struct gguf_file *f, const char *key);
const struct gguf_tensor *gguf_find_tensor(const struct gguf_file *f, const char *name);

/* Typed getters: 0 on success, AS_ENOENT if absent, AS_EINVAL if the type does not fit. */
int gguf_get_u32(const struct gguf_file *f, const char *key, uint32_t *out); /* any int type */
int gguf_get_u64(const struct gguf_file *f, const char *key, uint64_t *out);
int gguf_get_f32(const struct gguf_file *f, const char *key, float *out); /* f32/f64 */
int gguf_get_bool(const struct gguf_file *f, const char *key, int *out);
int gguf_get_str(const struct gguf_file *f, const char *key, struct str *out);
/* Array access: element i of a string array / numeric array. Bounds-checked. */
int gguf_arr_str(const struct gguf_kv *kv, uint64_t i, struct str *out);
int gguf_arr_i32(const struct gguf_kv *kv, uint64_t i, int32_t *out);
int gguf_arr_f32(const struct gguf_kv *kv, uint64_t i, float *out);

/* ---- writer ---------------------------------------------------------------- */
struct gguf_writer;

struct gguf_writer *gguf_writer_new(void);
void gguf_writer_free(struct gguf_writer *w);
int gguf_writer_set_u32(struct gguf_writer *w, const char *key, uint32_t v);
int gguf_writer_set_i32(struct gguf_writer *w, const char *key, int32_t v);
int gguf_writer_set_u64(struct gguf_writer *w, const char *key, uint64_t v);
int gguf_writer_set_f32(struct gguf_writer *w, const char *key, float v);
int gguf_writer_set_bool(struct gguf_writer *w, const char *key, int v);
int gguf_writer_set_str(struct gguf_writer *w, const char *key, const char *v);
/* Arrays: values are copied. */
int gguf_writer_set_arr_str(struct gguf_writer *w, const char *key, const char *const *v,
                            uint64_t n);
/* Same with string slices (may contain any bytes); copied. */
int gguf_writer_set_arr_strn(struct gguf_writer *w, const char *key, const struct str *v,
                             uint64_t n);
int gguf_writer_set_arr_i32(struct gguf_writer *w, const char *key, const int32_t *v, uint64_t n);
int gguf_writer_set_arr_f32(struct gguf_writer *w, const char *key, const float *v, uint64_t n);
/* Copies another file's kv (for converters/quantizers), nested arrays included. Any
 * set_* on an existing key replaces its value in place (order is kept). */
int gguf_writer_copy_kv(struct gguf_writer *w, const struct gguf_kv *kv);
/*
 * Adds a tensor; data (ggml_row_size(type, ne[0]) * ne[1] * ... bytes) is
 * borrowed until gguf_writer_write() returns.
 */
int gguf_writer_add_tensor(struct gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                           const uint64_t *ne, const void *data);
/*
 * Produces rows [row0, row0 + n_rows) of a tensor into dst (n_rows *
 * ggml_row_size(type, ne[0]) bytes). Rows count over ne[1] * ne[2] * ne[3].
 * Returns 0 or AS_E* (aborts the write).
 */
typedef int (*gguf_tensor_fill_fn)(void *ud, uint64_t row0, uint64_t n_rows, void *dst);
/*
 * Adds a tensor whose bytes are produced by fill() while gguf_writer_write()
 * runs, a bounded chunk of rows (a few MB) at a time, in increasing row order,
 * so that huge tensors are never held in memory. ud is borrowed until then.
 */
int gguf_writer_add_tensor_cb(struct gguf_writer *w, const char *name, uint32_t type,
                              uint32_t n_dims, const uint64_t *ne, gguf_tensor_fill_fn fill,
                              void *ud);
/* Any fixed-size numeric array (u8 ... f64, bool); values are copied. */
int gguf_writer_set_arr(struct gguf_writer *w, const char *key, uint32_t arr_type, const void *v,
                        uint64_t n);
/* Removes key if present (0 either way). */
int gguf_writer_remove_kv(struct gguf_writer *w, const char *key);
/*
 * Writes GGUF v3 atomically: path.tmp, fsync, rename. Tensor data is aligned to
 * general.alignment when set (u32, power of two), else 32. 0 or AS_E*; the
 * reason is in gguf_writer_errmsg().
 */
int gguf_writer_write(struct gguf_writer *w, const char *path);
/* The last error's message ("" if none). Borrowed from w. */
const char *gguf_writer_errmsg(const struct gguf_writer *w);

#endif
