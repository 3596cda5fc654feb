/*
 * safetensors.h - reader for Hugging Face .safetensors files (zero-copy over
 * mmap): an 8-byte little-endian header length, a JSON header
 * {"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {}},
 * then the raw tensor bytes.
 *
 * Hostile input: the header size is capped, every shape, dtype and offset is
 * checked against the data section (sizes must equal the shape's, tensors may
 * not overlap), names are bounded. Not for: writing safetensors, converting
 * tensors (see hf_import.h).
 */
#ifndef AISTACK_ENGINE_SAFETENSORS_H
#define AISTACK_ENGINE_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

/* Largest JSON header accepted (bytes). */
#define ST_MAX_HEADER  (64u << 20)
#define ST_MAX_TENSORS 1000000u
#define ST_MAX_DIMS    4
#define ST_MAX_NAME    255

enum st_dtype {
    ST_DTYPE_OTHER = 0, /* a dtype the engine does not import (I64, U8, F8...) */
    ST_DTYPE_F32 = 1,
    ST_DTYPE_F16 = 2,
    ST_DTYPE_BF16 = 3,
};

struct st_tensor {
    char name[ST_MAX_NAME + 1];
    enum st_dtype dtype;
    char dtype_name[16];
    uint32_t n_dims;
    uint64_t shape[ST_MAX_DIMS]; /* as in the file: shape[n_dims - 1] is contiguous */
    const uint8_t *data;         /* into the mapping */
    uint64_t size;               /* bytes */
};

struct st_file {
    const uint8_t *map;
    size_t map_size;
    int mapped; /* 1 when st_open() mapped it */
    size_t n_tensors;
    struct st_tensor *tensors;
};

/* Opens and validates path. NULL with a message in err on failure. */
struct st_file *st_open(const char *path, char *err, size_t errlen);
/* Parses an in-memory image (borrowed; must outlive the result). For tests and fuzzing. */
struct st_file *st_open_memory(const void *data, size_t size, char *err, size_t errlen);
/* Unmaps and frees. Accepts NULL. */
void st_close(struct st_file *f);
/* The tensor called name, or NULL. */
const struct st_tensor *st_find(const struct st_file *f, const char *name);
/* Bytes per element of a dtype (0 for ST_DTYPE_OTHER). */
size_t st_dtype_size(enum st_dtype t);

#endif
