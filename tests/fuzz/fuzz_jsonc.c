/*
 * fuzz_jsonc.c - JSON schema compiler and constraint automaton on hostile bytes.
 *
 * Input: a schema (bytes up to the first NUL; "" = json_object mode) and text
 * (the rest). Properties checked: compiling never crashes or hangs; feeding
 * the text in one call and byte by byte gives the same verdict and the same
 * completeness; a text accepted as complete parses with cJSON; a refused byte
 * leaves the state unchanged (the next good byte still behaves the same);
 * a schema that is a JSON array is taken as OpenAI tools: by the schema
 * length mod 3, one call of any tool (jsonc_new_tools), an array of calls, or
 * the arguments of the first tool (jsonc_new_tool_args), whose accepted
 * complete text is an object;
 * the token mask over a small fixed vocabulary agrees with
 * jsonc_accept_token for every token after the accepted prefix.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/buf.h"
#include "engine/jsonc.h"
#include "engine/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct tokenizer *g_tok;
static struct jsonc_vocab *g_vocab;

static void vocab_once(void)
{
    static const char *const toks[] = {
        "<unk>",  "<s>",       "</s>",  "{",    "}",   "[",
        "]",      ",",         ":",     "\"",   "{\"", "\":",
        "\",",    "true",      "false", "null", "0",   "1",
        "-",      ".",         "e",     "a",    "b",   "n",
        "name",   "arguments", "▁",     "\\",   "u",   "<0xC3>",
        "<0xA9>", "<0x0A>",    "\"}",   "]}",   "12",  "▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁",
    };
    size_t n = sizeof toks / sizeof toks[0];
    struct str s[sizeof toks / sizeof toks[0]];
    int32_t types[sizeof toks / sizeof toks[0]];
    for (size_t i = 0; i < n; i++) {
        s[i].p = toks[i];
        s[i].len = strlen(toks[i]);
        types[i] = i < 3 ? 3 : !strncmp(toks[i], "<0x", 3) ? 6 : 1;
    }
    types[0] = 2;
    struct tok_vocab_desc d = {.model = "llama",
                               .n_tokens = (uint32_t)n,
                               .tokens = s,
                               .types = types,
                               .bos = 1,
                               .eos = 2,
                               .unk = 0,
                               .pad = -1,
                               .eot = -1,
                               .eom = -1,
                               .add_bos = -1,
                               .add_eos = -1,
                               .add_space_prefix = -1};
    char err[128];
    g_tok = tok_new(&d, err, sizeof err);
    g_vocab = g_tok ? jsonc_vocab_new(g_tok) : NULL;
    if (!g_vocab)
        abort();
}

/* Tools mode (an array schema): 0 any call, 1 an array of calls, 2 the first tool's arguments. */
static int g_tools_mode;

static struct jsonc *make(const cJSON *schema, char *err, size_t errlen)
{
    if (!schema)
        return jsonc_new_object();
    if (!cJSON_IsArray(schema))
        return jsonc_new_schema(schema, err, errlen);
    if (g_tools_mode < 2)
        return jsonc_new_tools(schema, NULL, "arguments", g_tools_mode, err, errlen);
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(schema->child, "function"), "name");
    return jsonc_new_tool_args(schema, cJSON_IsString(name) ? name->valuestring : "", err, errlen);
}

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
    g_tools_mode = (int)(slen % 3);
    cJSON *schema = NULL;
    err[0] = 0;
    if (slen) {
        schema = cJSON_ParseWithLength((const char *)data, slen);
        if (!schema)
            return 0;
    }
    a = make(schema, err, sizeof err);
    if (!a) {
        if (!err[0])
            abort(); /* a refusal always says why */
        cJSON_Delete(schema);
        return 0;
    }
    b = make(schema, err, sizeof err);
    (void)jsonc_unsupported(a);
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
        if (!doc || (cJSON_IsArray(schema) && g_tools_mode == 2 && !cJSON_IsObject(doc)))
            abort();
        cJSON_Delete(doc);
    }
    /* After a refusal, the state is unchanged: the rest still refuses identically. */
    if (!ok && good < tlen && jsonc_accept(b, text + good, 1) == 0)
        abort();
    /* The mask after the accepted prefix agrees with accepting each token. */
    if (good <= 128) {
        if (!g_vocab)
            vocab_once();
        uint32_t nv = jsonc_vocab_n(g_vocab);
        float logits[64];
        struct jsonc *m = make(schema, err, sizeof err);
        if (!m || nv > 64 || jsonc_accept(m, text, good))
            abort();
        for (uint32_t i = 0; i < nv; i++)
            logits[i] = 0;
        int n_ok = jsonc_mask(m, g_vocab, logits);
        int seen = 0;
        for (uint32_t i = 0; i < nv; i++) {
            struct jsonc *d = make(schema, err, sizeof err);
            if (!d || jsonc_accept(d, text, good))
                abort();
            int acc = jsonc_accept_token(d, g_vocab, (int32_t)i) == 0;
            if (acc != (logits[i] == 0))
                abort();
            seen += acc;
            jsonc_free(d);
        }
        if (seen != n_ok)
            abort();
        jsonc_free(m);
    }
    jsonc_free(a);
    jsonc_free(b);
    cJSON_Delete(schema);
    return 0;
}
