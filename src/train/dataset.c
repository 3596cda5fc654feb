/* dataset.c - token sequence files and batch packing (see dataset.h). */
#include "train/dataset.h"

#include "core/err.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define DS_MAGIC  "ASTOKENS"
#define DS_HEADER 40

int dataset_open(struct dataset *d, const char *path, char *err, size_t errlen)
{
    memset(d, 0, sizeof *d);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return AS_EIO;
    }
    struct stat st;
    if (fstat(fd, &st) || st.st_size < DS_HEADER) {
        close(fd);
        snprintf(err, errlen, "%s: not a token file (too short)", path);
        return AS_EFORMAT;
    }
    void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) {
        snprintf(err, errlen, "%s: mmap: %s", path, strerror(errno));
        return AS_EIO;
    }
    const uint8_t *p = map;
    size_t size = (size_t)st.st_size;
    uint32_t version;
    memcpy(&version, p + 8, 4);
    memcpy(&d->vocab, p + 12, 4);
    memcpy(&d->n_seq, p + 16, 8);
    memcpy(&d->n_tok, p + 24, 8);
    const char *why = NULL;
    if (memcmp(p, DS_MAGIC, 8))
        why = "bad magic";
    else if (version != 1)
        why = "unsupported version";
    else if (d->n_seq == 0 || d->n_seq > size / 8 || d->n_tok > size / 5)
        why = "counts exceed the file size";
    else if (DS_HEADER + (d->n_seq + 1) * 8 + d->n_tok * 5 != size)
        why = "size does not match the counts";
    if (!why) {
        d->offsets = (const uint64_t *)(p + DS_HEADER);
        d->tokens = (const int32_t *)(p + DS_HEADER + (d->n_seq + 1) * 8);
        d->mask = p + DS_HEADER + (d->n_seq + 1) * 8 + d->n_tok * 4;
        if (d->offsets[0] != 0 || d->offsets[d->n_seq] != d->n_tok)
            why = "offsets do not span the tokens";
        for (uint64_t i = 0; !why && i < d->n_seq; i++)
            if (d->offsets[i + 1] < d->offsets[i] || d->offsets[i + 1] - d->offsets[i] < 2)
                why = "a sequence is shorter than 2 tokens or offsets decrease";
        for (uint64_t i = 0; !why && i < d->n_tok; i++)
            if (d->tokens[i] < 0 || (uint32_t)d->tokens[i] >= d->vocab)
                why = "token id out of the vocabulary";
    }
    if (why) {
        munmap(map, size);
        snprintf(err, errlen, "%s: %s", path, why);
        memset(d, 0, sizeof *d);
        return AS_EFORMAT;
    }
    d->map = map;
    d->map_size = size;
    return 0;
}

void dataset_close(struct dataset *d)
{
    if (d && d->map)
        munmap(d->map, d->map_size);
    if (d)
        memset(d, 0, sizeof *d);
}

#define DS_MAX_BYTES ((size_t)1 << 34)

void dataset_builder_init(struct dataset_builder *b, uint32_t vocab)
{
    b->vocab = vocab;
    buf_init(&b->offsets, DS_MAX_BYTES);
    buf_init(&b->tokens, DS_MAX_BYTES);
    buf_init(&b->mask, DS_MAX_BYTES);
}

void dataset_builder_free(struct dataset_builder *b)
{
    if (!b)
        return;
    buf_free(&b->offsets);
    buf_free(&b->tokens);
    buf_free(&b->mask);
}

int dataset_builder_add(struct dataset_builder *b, const int32_t *tok, const uint8_t *mask,
                        size_t n)
{
    if (n < 2)
        return AS_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (tok[i] < 0 || (uint32_t)tok[i] >= b->vocab)
            return AS_EINVAL;
    uint64_t start = b->tokens.len / 4;
    if (b->offsets.len == 0 && buf_append(&b->offsets, &start, 8))
        return AS_ENOMEM;
    uint64_t end = start + n;
    if (buf_append(&b->tokens, tok, n * 4) || buf_append(&b->offsets, &end, 8))
        return AS_ENOMEM;
    for (size_t i = 0; i < n; i++)
        if (buf_append_char(&b->mask, mask ? (char)(mask[i] != 0) : 1))
            return AS_ENOMEM;
    return 0;
}

int dataset_builder_write(struct dataset_builder *b, const char *path, char *err, size_t errlen)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) {
        snprintf(err, errlen, "path too long");
        return AS_EINVAL;
    }
    uint64_t n_seq = b->offsets.len ? b->offsets.len / 8 - 1 : 0, n_tok = b->tokens.len / 4;
    uint8_t hdr[DS_HEADER] = {0};
    uint32_t version = 1;
    memcpy(hdr, DS_MAGIC, 8);
    memcpy(hdr + 8, &version, 4);
    memcpy(hdr + 12, &b->vocab, 4);
    memcpy(hdr + 16, &n_seq, 8);
    memcpy(hdr + 24, &n_tok, 8);
    FILE *f = fopen(tmp, "wb");
    int ok = f && fwrite(hdr, 1, sizeof hdr, f) == sizeof hdr &&
             fwrite(b->offsets.data, 1, b->offsets.len, f) == b->offsets.len &&
             fwrite(b->tokens.data, 1, b->tokens.len, f) == b->tokens.len &&
             fwrite(b->mask.data, 1, b->mask.len, f) == b->mask.len && fflush(f) == 0 &&
             fsync(fileno(f)) == 0;
    if (f && fclose(f))
        ok = 0;
    if (!ok || rename(tmp, path)) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        unlink(tmp);
        return AS_EIO;
    }
    return 0;
}

static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

int batcher_init(struct batcher *bt, const struct dataset *d, uint64_t seed, int max_seq,
                 int max_tokens)
{
    memset(bt, 0, sizeof *bt);
    bt->d = d;
    bt->seed = seed;
    bt->max_seq = max_seq;
    bt->max_tokens = max_tokens;
    bt->perm_epoch = UINT64_MAX;
    bt->perm = malloc(d->n_seq * sizeof *bt->perm);
    bt->tokens = malloc((size_t)max_tokens * 4);
    bt->targets = malloc((size_t)max_tokens * 4);
    bt->pos = malloc((size_t)max_tokens * 4);
    bt->seq_start = malloc((size_t)max_tokens * 4);
    if (!bt->perm || !bt->tokens || !bt->targets || !bt->pos || !bt->seq_start) {
        batcher_free(bt);
        return AS_ENOMEM;
    }
    return 0;
}

void batcher_free(struct batcher *bt)
{
    if (!bt)
        return;
    free(bt->perm);
    free(bt->tokens);
    free(bt->targets);
    free(bt->pos);
    free(bt->seq_start);
    memset(bt, 0, sizeof *bt);
}

/* The sequence at global position p: a Fisher-Yates permutation per epoch. */
static uint64_t seq_at(struct batcher *bt, uint64_t p)
{
    uint64_t n = bt->d->n_seq, epoch = p / n;
    if (epoch != bt->perm_epoch) {
        for (uint64_t i = 0; i < n; i++)
            bt->perm[i] = i;
        uint64_t s = mix64(bt->seed ^ mix64(epoch + 1));
        for (uint64_t i = n - 1; i > 0; i--) {
            s = mix64(s + 0x9e3779b97f4a7c15ull);
            uint64_t j = s % (i + 1), t = bt->perm[i];
            bt->perm[i] = bt->perm[j];
            bt->perm[j] = t;
        }
        bt->perm_epoch = epoch;
    }
    return bt->perm[p % n];
}

int batcher_next(struct batcher *bt)
{
    const struct dataset *d = bt->d;
    int n = 0;
    for (;;) {
        uint64_t s = seq_at(bt, bt->position);
        uint64_t off = d->offsets[s], len = d->offsets[s + 1] - off;
        int take = (int)(len - 1 > (uint64_t)bt->max_seq ? (uint64_t)bt->max_seq : len - 1);
        if (n > 0 && n + take > bt->max_tokens)
            break;
        if (take > bt->max_tokens)
            take = bt->max_tokens;
        for (int i = 0; i < take; i++) {
            bt->tokens[n + i] = d->tokens[off + i];
            bt->targets[n + i] = d->mask[off + i + 1] ? d->tokens[off + i + 1] : -1;
            bt->pos[n + i] = i;
            bt->seq_start[n + i] = n;
        }
        n += take;
        bt->position++;
        if (n >= bt->max_tokens)
            break;
    }
    return n;
}
