/*
 * sha256.h - SHA-256 (FIPS 180-4) and HMAC-SHA256 (RFC 2104).
 *
 * Used to store API keys hashed and to derive content addresses. Plain C, no
 * secrets are kept in static state. Not for: password hashing (keys are long
 * random tokens, so a fast hash is the right tool), or bulk hashing where a
 * SHA-NI implementation would matter.
 */
#ifndef AISTACK_CORE_SHA256_H
#define AISTACK_CORE_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_DIGEST_LEN 32
#define SHA256_BLOCK_LEN  64
/* Hex digest length plus NUL. */
#define SHA256_HEX_LEN 65

struct sha256_ctx {
    uint32_t h[8];
    uint64_t nbytes;                 /* total bytes hashed so far */
    uint8_t block[SHA256_BLOCK_LEN]; /* pending partial block */
    size_t nblock;                   /* bytes in block */
};

void sha256_init(struct sha256_ctx *c);
void sha256_update(struct sha256_ctx *c, const void *data, size_t n);
/* Writes the digest; the context must be re-initialised before reuse. */
void sha256_final(struct sha256_ctx *c, uint8_t out[SHA256_DIGEST_LEN]);
/* One-shot digest of n bytes. */
void sha256(const void *data, size_t n, uint8_t out[SHA256_DIGEST_LEN]);
/* HMAC-SHA256 of msg under key. */
void hmac_sha256(const void *key, size_t klen, const void *msg, size_t mlen,
                 uint8_t out[SHA256_DIGEST_LEN]);
/* Lowercase hex of a digest, NUL-terminated. */
void sha256_hex(const uint8_t d[SHA256_DIGEST_LEN], char out[SHA256_HEX_LEN]);
/* Parses exactly 64 hex digits (either case). 0 or AS_EINVAL. */
int sha256_from_hex(const char *hex, size_t n, uint8_t out[SHA256_DIGEST_LEN]);

#endif
