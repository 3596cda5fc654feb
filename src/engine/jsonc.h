/*
 * jsonc.h - constrained decoding for JSON output (OpenAI response_format).
 *
 * A constraint is built once per request, either "any JSON object"
 * (json_object mode) or from a JSON schema (json_schema mode: types, type
 * arrays, properties/required, additionalProperties, enum/const, items,
 * minItems/maxItems, anyOf/oneOf, single-element allOf, local $ref). At run
 * time it is a character-level pushdown automaton (a small set of parallel
 * stacks, so unions need no look-ahead) fed the generated text; jsonc_mask()
 * sets the logits of every token that cannot continue a valid document to
 * -INFINITY and lets end-of-generation tokens through only once the document is
 * complete. Whitespace between JSON tokens is bounded (JSONC_MAX_WS per gap),
 * numbers are bounded in length, nesting is bounded (JSONC_MAX_DEPTH), and
 * nothing may follow the top-level value, so generation always terminates.
 * Properties are emitted in the schema's declared order (optional ones may be
 * skipped), enum strings must be written the way cJSON prints them.
 *
 * Threads: one struct jsonc per request, used by one thread; a jsonc_vocab is
 * immutable after jsonc_vocab_new() and may be shared by all threads.
 * Not for: validating finished documents against a schema, JSON parsing.
 */
#ifndef AISTACK_ENGINE_JSONC_H
#define AISTACK_ENGINE_JSONC_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

struct tokenizer;
struct jsonc;
struct jsonc_vocab;

/* Runtime bounds. */
#define JSONC_MAX_DEPTH   32 /* nesting of open containers in the output */
#define JSONC_MAX_WS      16 /* whitespace bytes allowed between two JSON tokens */
#define JSONC_MAX_NUMBER  40 /* bytes of one number */
#define JSONC_MAX_THREADS 16 /* parallel parses kept for anyOf ambiguity */

/* Schema bounds: larger schemas are rejected with a message. */
#define JSONC_MAX_NODES        4096
#define JSONC_MAX_SCHEMA_DEPTH 24
#define JSONC_MAX_LITS         16384
#define JSONC_MAX_LIT_BYTES    (1u << 20)
#define JSONC_MAX_PROPS        16384
#define JSONC_MAX_REFS         16 /* nested $ref resolutions on one path */
#define JSONC_MAX_TOOL_CALLS   64 /* calls in jsonc_new_tools' array (TOOLCALL_MAX_CALLS) */

/*
 * Per-tokenizer token bytes, sorted for the mask scan. Built once per model
 * (about 35 ms of CPU for 100k tokens); immutable, shareable. NULL on allocation
 * failure.
 */
struct jsonc_vocab *jsonc_vocab_new(const struct tokenizer *t);
/* Frees. Accepts NULL. */
void jsonc_vocab_free(struct jsonc_vocab *v);
/* Number of token ids covered (tok_n_vocab of the tokenizer). */
uint32_t jsonc_vocab_n(const struct jsonc_vocab *v);

/* A constraint accepting exactly one JSON object (any content). NULL on ENOMEM. */
struct jsonc *jsonc_new_object(void);
/*
 * A constraint from a JSON schema (borrowed for the call only). NULL with a
 * message in err for schemas that cannot be satisfied or break the bounds
 * above (recursive $ref, too large, too deep, unknown type, required key that
 * is not a property, ...).
 */
struct jsonc *jsonc_new_schema(const cJSON *schema, char *err, size_t errlen);
/*
 * A constraint for one tool call (tool_choice "required" or a named
 * function): the object {"name": N, ARGS_KEY: ARGS} where N is one of the
 * tools' names (only that one if only != NULL) and ARGS follows that tool's
 * "parameters" schema (its $refs resolve inside it). tools is the OpenAI
 * request's array ({"type":"function","function":{"name","parameters"}}),
 * borrowed for the call. args_key: "arguments" (Hermes, Mistral, Granite) or
 * "parameters" (Llama 3); a tool's parameters must accept nothing but
 * objects ({} or none: any object). as_array: a JSON array of 1 to JSONC_MAX_TOOL_CALLS such
 * objects (Mistral after [TOOL_CALLS], Granite after <|tool_call|>). The markers are not part of
 * the constraint: put the opening one at the end of the prompt and add the closing one after
 * generation. NULL with a message in err.
 */
struct jsonc *jsonc_new_tools(const cJSON *tools, const char *only, const char *args_key,
                              int as_array, char *err, size_t errlen);
/*
 * A constraint for the arguments of one call of the tool named name (a
 * named tool_choice, with the call's name already in the prompt): that
 * tool's "parameters" schema, or any object when it has none. As with
 * jsonc_new_tools, parameters must accept nothing but objects (a call's
 * arguments are an object); {} means any object. NULL with a message in err
 * (no such tool, unusable schema).
 */
struct jsonc *jsonc_new_tool_args(const cJSON *tools, const char *name, char *err, size_t errlen);
/* Frees. Accepts NULL. */
void jsonc_free(struct jsonc *c);

/*
 * Schema keywords that were ignored (they constrain values but are not
 * enforced: pattern, format, minLength, minimum, ...), comma-separated and
 * without duplicates; "" when none. Lives as long as c.
 */
const char *jsonc_unsupported(const struct jsonc *c);

/*
 * Advances by generated text. 0, or AS_EINVAL (and c unchanged) if the bytes
 * cannot continue a valid document.
 */
int jsonc_accept(struct jsonc *c, const char *bytes, size_t n);
/*
 * Advances by one sampled token (its bytes from v; an end-of-generation token
 * is accepted only when jsonc_done()). 0 or AS_EINVAL (c unchanged).
 */
int jsonc_accept_token(struct jsonc *c, const struct jsonc_vocab *v, int32_t id);
/* 1 if the text so far is a complete document (end of generation allowed). */
int jsonc_done(const struct jsonc *c);

/*
 * Sets logits[id] = -INFINITY for every id in [0, jsonc_vocab_n(v)) whose
 * token cannot come next (ids past that, e.g. padded model rows, are the
 * caller's to mask). Returns the number of tokens left allowed, or AS_ENOMEM.
 * 0 (a dead end) cannot happen with a vocabulary that has a token for every
 * byte (byte fallback or byte-level BPE); the caller should end the request
 * with an error if it does. Costs well under 1 ms of CPU for 100k tokens.
 */
int jsonc_mask(struct jsonc *c, const struct jsonc_vocab *v, float *logits);

#endif
