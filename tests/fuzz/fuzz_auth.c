/*
 * fuzz_auth.c - the Authorization header path on hostile bytes: Bearer
 * parsing, keyset lookup, and keyset loading from arbitrary specs. The token
 * must lie inside the header, and only the one configured key may match.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/auth.h"
#include "core/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char KEY[] = "sk-as-0123456789abcdefghijABCDEFGHIJ0123456789";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct auth_keyset *ks;
    if (!ks) {
        ks = auth_keyset_new();
        if (!ks || auth_keyset_add(ks, KEY, NULL) != 0)
            abort();
    }
    const char *h = (const char *)data;
    const char *tok = NULL;
    size_t n = 0;
    if (auth_parse_bearer(h, size, &tok, &n) == 0) {
        if (tok < h || tok + n > h + size || n == 0)
            abort();
        int rc = auth_check(ks, tok, n);
        bool same = n == sizeof KEY - 1 && memcmp(tok, KEY, n) == 0;
        if ((rc == 0) != same)
            abort();
    }
    /* the same bytes as a key spec for a fresh keyset */
    char *spec = malloc(size + 1);
    if (!spec)
        return 0;
    memcpy(spec, data, size);
    spec[size] = '\0';
    struct auth_keyset *k2 = auth_keyset_new();
    const char *why = NULL;
    int idx = auth_keyset_add(k2, spec, &why);
    if (idx == 0 && strncmp(spec, "sha256:", 7) != 0 && auth_check(k2, spec, strlen(spec)) != 0)
        abort();
    if (idx < 0 && idx != AS_ENOMEM && !why)
        abort();
    auth_check_header(k2, spec);
    auth_keyset_free(k2);
    free(spec);
    return 0;
}
