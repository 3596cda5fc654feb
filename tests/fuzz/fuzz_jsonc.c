/*
 * fuzz_jsonc.c - JSON schema compiler and constraint automaton on hostile bytes.
 *
 * Input: a schema (bytes up to the first NUL; "" = json_object mode) and text
 * (the rest). Properties checked: compiling never crashes or hangs; feeding
 * the text in one call and byte by byte gives the same verdict and the same
 * completeness; a text accepted as complete parses with cJSON; a refused byte
 * leaves the state unchanged (the next good byte still behaves the same).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "engine/jsonc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, 0, size);
    size_t slen = nul ? (size_t)(nul - data) : size;
    const char *text = nul ? (const char *)nul + 1 : "";
    size_t tlen = nul ? size - slen - 1 : 0;
    if (slen > 1 << 16)
        return 0;

    char err[256];
    struct jsonc *a = NULL, *b = NULL;
    cJSON *schema = NULL;
    if (slen == 0) {
        a = jsonc_new_object();
        b = jsonc_new_object();
    } else {
        schema = cJSON_ParseWithLength((const char *)data, slen);
        if (!schema)
            return 0;
        a = jsonc_new_schema(schema, err, sizeof err);
        b = a ? jsonc_new_schema(schema, err, sizeof err) : NULL;
        if (!a) {
            if (!err[0])
                abort(); /* a refusal always says why */
            cJSON_Delete(schema);
            return 0;
        }
        (void)jsonc_unsupported(a);
    }
    if (!a || !b)
        abort();

    int all = jsonc_accept(a, text, tlen);
    /* Byte by byte, skipping refused bytes: a prefix that is accepted must agree. */
    size_t good = 0;
    int ok = 1;
    for (size_t i = 0; i < tlen && ok; i++) {
        if (jsonc_accept(b, text + i, 1) != 0)
            ok = 0;
        else
            good++;
    }
    if ((all == 0) != (good == tlen))
        abort();
    if (all == 0 && jsonc_done(a) != jsonc_done(b))
        abort();
    if (all == 0 && jsonc_done(a)) {
        cJSON *doc = cJSON_ParseWithLength(text, tlen);
        if (!doc)
            abort();
        cJSON_Delete(doc);
    }
    /* After a refusal, the state is unchanged: the rest still refuses identically. */
    if (!ok && good < tlen && jsonc_accept(b, text + good, 1) == 0)
        abort();
    jsonc_free(a);
    jsonc_free(b);
    cJSON_Delete(schema);
    return 0;
}
