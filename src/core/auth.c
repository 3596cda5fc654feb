/*
 * auth.c - API keys: Bearer parsing, hashed storage, constant-time lookup (see auth.h).
 *
 * Only digests are kept. A lookup hashes the presented key once and then
 * touches every stored digest with branch-free comparisons; the index of the
 * match is selected with masks, so the loop does the same work whether the
 * key matches the first entry, the last or none.
 */
#include "core/auth.h"
#include "core/err.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

struct auth_keyset {
    uint8_t (*digests)[SHA256_DIGEST_LEN];
    size_t n, cap;
};

struct auth_keyset *auth_keyset_new(void)
{
    return calloc(1, sizeof(struct auth_keyset));
}

void auth_keyset_free(struct auth_keyset *ks)
{
    if (!ks)
        return;
    if (ks->digests)
        memset(ks->digests, 0, ks->cap * sizeof *ks->digests);
    free(ks->digests);
    free(ks);
}

size_t auth_keyset_count(const struct auth_keyset *ks)
{
    return ks ? ks->n : 0;
}

/* 0xFF..FF if the digests are equal, 0 otherwise, in constant time. */
static uint32_t digest_eq_mask(const uint8_t *a, const uint8_t *b)
{
    uint32_t diff = 0;
    for (int i = 0; i < SHA256_DIGEST_LEN; i++)
        diff |= (uint32_t)(a[i] ^ b[i]);
    /* diff in [0, 255]: (diff - 1) >> 8 has all bits set only when diff == 0 */
    return (uint32_t)0 - (((diff - 1) >> 8) & 1);
}

static int lookup_digest(const struct auth_keyset *ks, const uint8_t d[SHA256_DIGEST_LEN])
{
    uint32_t found = 0, idx = 0;
    for (size_t i = 0; i < ks->n; i++) {
        uint32_t m = digest_eq_mask(ks->digests[i], d);
        idx |= m & (uint32_t)i;
        found |= m;
    }
    return found ? (int)idx : AS_EPERM;
}

static bool plain_key_ok(const char *k, size_t n)
{
    if (n < 16 || n > AUTH_MAX_KEY_BYTES)
        return false;
    for (size_t i = 0; i < n; i++)
        if (k[i] <= ' ' || k[i] > '~')
            return false;
    return true;
}

int auth_keyset_add(struct auth_keyset *ks, const char *spec, const char **why)
{
    uint8_t d[SHA256_DIGEST_LEN];
    const char *reason = NULL;
    if (!ks || !spec) {
        reason = "missing key";
        goto bad;
    }
    size_t n = strlen(spec);
    if (n >= 7 && strncmp(spec, "sha256:", 7) == 0) {
        if (sha256_from_hex(spec + 7, n - 7, d)) {
            reason = "expected sha256: followed by 64 hex digits";
            goto bad;
        }
    } else {
        if (!plain_key_ok(spec, n)) {
            reason = "a key must be 16..512 printable ASCII characters without spaces";
            goto bad;
        }
        sha256(spec, n, d);
    }
    if (lookup_digest(ks, d) >= 0) {
        reason = "duplicate key";
        goto bad;
    }
    if (ks->n == ks->cap) {
        size_t cap = ks->cap ? ks->cap * 2 : 8;
        if (cap > (size_t)INT32_MAX)
            return AS_ENOMEM;
        void *p = realloc(ks->digests, cap * sizeof *ks->digests);
        if (!p)
            return AS_ENOMEM;
        ks->digests = p;
        ks->cap = cap;
    }
    memcpy(ks->digests[ks->n], d, sizeof d);
    return (int)ks->n++;
bad:
    if (why)
        *why = reason;
    return AS_EINVAL;
}

int auth_keyset_add_list(struct auth_keyset *ks, const char *const *specs, size_t n, size_t *bad,
                         const char **why)
{
    for (size_t i = 0; i < n; i++) {
        int rc = auth_keyset_add(ks, specs[i], why);
        if (rc < 0) {
            if (bad)
                *bad = i;
            return rc;
        }
    }
    return 0;
}

int auth_parse_bearer(const char *header, size_t len, const char **tok, size_t *tok_len)
{
    size_t i = 0;
    if (!header)
        return AS_EINVAL;
    while (i < len && (header[i] == ' ' || header[i] == '\t'))
        i++;
    if (len - i < 7 || strncasecmp(header + i, "bearer", 6) != 0 ||
        (header[i + 6] != ' ' && header[i + 6] != '\t'))
        return AS_EINVAL;
    i += 7;
    while (i < len && (header[i] == ' ' || header[i] == '\t'))
        i++;
    size_t start = i;
    while (i < len && header[i] > ' ' && header[i] <= '~')
        i++;
    size_t end = i;
    while (i < len && (header[i] == ' ' || header[i] == '\t'))
        i++;
    if (i != len || end == start) /* junk after the token, or no token */
        return AS_EINVAL;
    *tok = header + start;
    *tok_len = end - start;
    return 0;
}

int auth_check(const struct auth_keyset *ks, const char *key, size_t len)
{
    uint8_t d[SHA256_DIGEST_LEN];
    if (!ks || !key || len == 0 || len > AUTH_MAX_KEY_BYTES)
        return AS_EPERM;
    sha256(key, len, d);
    return lookup_digest(ks, d);
}

int auth_check_header(const struct auth_keyset *ks, const char *header)
{
    const char *tok;
    size_t n;
    if (!header || auth_parse_bearer(header, strlen(header), &tok, &n))
        return AS_EPERM;
    return auth_check(ks, tok, n);
}

int auth_key_id(const struct auth_keyset *ks, int i, char out[20])
{
    char hex[SHA256_HEX_LEN];
    if (!ks || i < 0 || (size_t)i >= ks->n)
        return AS_EINVAL;
    sha256_hex(ks->digests[i], hex);
    memcpy(out, "sha256:", 7);
    memcpy(out + 7, hex, 12);
    out[19] = '\0';
    return 0;
}

int auth_key_generate(char out[AUTH_KEY_LEN])
{
    static const char b62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    const size_t plen = sizeof(AUTH_KEY_PREFIX) - 1;
    memcpy(out, AUTH_KEY_PREFIX, plen);
    size_t have = 0;
    while (have < AUTH_KEY_RANDOM_CHARS) {
        unsigned char r[64];
        ssize_t got = getrandom(r, sizeof r, 0);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            return AS_EIO;
        }
        /* Rejection sampling: 248 = 4 * 62, so accepted bytes map uniformly. */
        for (ssize_t i = 0; i < got && have < AUTH_KEY_RANDOM_CHARS; i++)
            if (r[i] < 248)
                out[plen + have++] = b62[r[i] % 62];
        memset(r, 0, sizeof r);
    }
    out[plen + AUTH_KEY_RANDOM_CHARS] = '\0';
    return 0;
}

void auth_key_hash_spec(const char *key, size_t len, char out[AUTH_HASH_SPEC_LEN])
{
    uint8_t d[SHA256_DIGEST_LEN];
    sha256(key, len, d);
    memcpy(out, "sha256:", 7);
    sha256_hex(d, out + 7);
}
