/*
 * auth.h - Bearer-token API keys, stored hashed, checked in constant time.
 *
 * Keys look like "sk-as-" + 40 base62 characters (238 bits from getrandom).
 * A keyset keeps only SHA-256 digests: a leaked config or database does not
 * leak usable keys. auth_check() hashes the presented key and compares it with
 * every stored digest without an early exit, so timing reveals neither which
 * key matched nor how many bytes did.
 *
 * Not for: rate limits, per-key quotas or usage accounting (the gateway owns
 * those, keyed by the index/id this module returns).
 */
#ifndef AISTACK_CORE_AUTH_H
#define AISTACK_CORE_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "core/sha256.h"

#define AUTH_KEY_PREFIX "sk-as-"
/* Random base62 characters after the prefix. */
#define AUTH_KEY_RANDOM_CHARS 40
/* Generated key length plus NUL. */
#define AUTH_KEY_LEN (sizeof(AUTH_KEY_PREFIX) - 1 + AUTH_KEY_RANDOM_CHARS + 1)
/* "sha256:" + 64 hex + NUL. */
#define AUTH_HASH_SPEC_LEN (7 + 64 + 1)
/* Longest presented key accepted (longer ones are rejected before hashing). */
#define AUTH_MAX_KEY_BYTES 512

struct auth_keyset;

/* Empty keyset. NULL on allocation failure. */
struct auth_keyset *auth_keyset_new(void);
void auth_keyset_free(struct auth_keyset *ks);
/* Number of keys. */
size_t auth_keyset_count(const struct auth_keyset *ks);

/*
 * Adds one key given either as "sha256:<64 hex>" (a stored digest) or as the
 * plain key (hashed now; at least 16 bytes, printable ASCII, no spaces).
 * Returns the new key's index (>= 0), or AS_EINVAL (with a reason in *why if
 * why is not NULL) or AS_ENOMEM. Duplicates are AS_EINVAL.
 */
int auth_keyset_add(struct auth_keyset *ks, const char *spec, const char **why);
/* Adds n specs; stops at the first error, reporting its position in *bad. */
int auth_keyset_add_list(struct auth_keyset *ks, const char *const *specs, size_t n, size_t *bad,
                         const char **why);

/*
 * Extracts the token from an Authorization header value: "Bearer <token>"
 * (scheme case-insensitive, spaces/tabs around the token ignored). The token
 * is borrowed from header. 0, or AS_EINVAL if missing or malformed.
 */
int auth_parse_bearer(const char *header, size_t len, const char **tok, size_t *tok_len);

/*
 * Checks key against the keyset in constant time with respect to the stored
 * keys. Returns the matching index (>= 0) or AS_EPERM.
 */
int auth_check(const struct auth_keyset *ks, const char *key, size_t len);
/* auth_parse_bearer + auth_check; header may be NULL (missing). Index or AS_EPERM. */
int auth_check_header(const struct auth_keyset *ks, const char *header);

/* Short public id of key i for logs/metrics: "sha256:" + first 12 hex digits. */
int auth_key_id(const struct auth_keyset *ks, int i, char out[20]);

/* Generates a new key "sk-as-..." into out (AUTH_KEY_LEN bytes). 0 or AS_EIO. */
int auth_key_generate(char out[AUTH_KEY_LEN]);
/* The stored form of key: "sha256:<hex>" into out (AUTH_HASH_SPEC_LEN bytes). */
void auth_key_hash_spec(const char *key, size_t len, char out[AUTH_HASH_SPEC_LEN]);

#endif
