/*
 * toolcall.h - extracting tool calls from generated text, streaming.
 *
 * Chat templates ask models to call tools in a few textual formats:
 *   Hermes / Qwen2.5 / Qwen3: <tool_call>\n{"name": N, "arguments": {...}}\n</tool_call>
 *                             (possibly several; the closing tag may be cut by EOS)
 *   Llama 3.1 / 3.2:          the whole message is {"name": N, "parameters": {...}}
 *                             (optionally {"type": "function", ...}, after <|python_tag|>,
 *                             several separated by ';')
 *   Mistral:                  [TOOL_CALLS][{"name": N, "arguments": {...}}, ...]
 *   Granite:                  <|tool_call|>[{"name": N, "arguments": {...}}, ...]
 *   generic:                  Hermes tags anywhere, or a bare call object/array as the
 *                             whole message
 * The parser is fed text as it is generated and appends to `content` only what
 * can no longer be part of a tool call: a possible marker start, whitespace
 * before it and a call being written are held back, so a server never streams
 * "<tool_call>" as text. Completed calls are queued with an id, the name and
 * the arguments as a JSON string (what OpenAI's tool_calls[].function holds).
 * Anything that turns out not to be a valid call (bad JSON, no name, over the
 * size bounds) is given back as content byte for byte.
 * For a forced call (tool_choice "required" or a named function) it also
 * gives the style's text that starts a call, to end the prompt with, and
 * parses the constrained output, which has no markers.
 * Not for: rendering tools into prompts (the chat template does that),
 * constraining generation (jsonc.h).
 */
#ifndef AISTACK_ENGINE_TOOLCALL_H
#define AISTACK_ENGINE_TOOLCALL_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

#define TOOLCALL_MAX_CALLS 64         /* per message; later calls stay content */
#define TOOLCALL_MAX_BYTES (1u << 20) /* one call's text */

enum toolcall_style {
    TOOLCALL_GENERIC = 0,
    TOOLCALL_HERMES,
    TOOLCALL_LLAMA3,
    TOOLCALL_MISTRAL,
    TOOLCALL_GRANITE,
};

/* The style a chat template asks for (GENERIC when it shows none). */
enum toolcall_style toolcall_detect(const char *chat_template, size_t len);
/* "generic", "hermes", "llama3", "mistral", "granite". */
const char *toolcall_style_name(enum toolcall_style s);

struct toolcall {
    char id[24];     /* "call_" + 9 alphanumerics (Mistral: the 9 alphanumerics alone) */
    char *name;      /* owned by the parser */
    char *arguments; /* JSON text, "{}" when the model gave none; owned by the parser */
};

struct toolcall_parser;

/* A parser for one message. seed makes the ids (use a per-request random value). NULL on ENOMEM. */
struct toolcall_parser *toolcall_parser_new(enum toolcall_style style, uint64_t seed);
/*
 * A parser for a message whose whole text is a call the decoder was forced to
 * write (tool_choice "required" or a named function, constrained with
 * jsonc_new_tools() / the function's parameters schema): no markers, since
 * toolcall_forced_prompt() put any in the prompt. name NULL: the text is one
 * call object {"name", "arguments" or "parameters"} or an array of them; name
 * set (copied): the text is the arguments object of one call to name. Ids
 * follow style. Text that is no call (generation cut by max_tokens) is given
 * back as content, as with toolcall_parser_new(). NULL on ENOMEM.
 */
struct toolcall_parser *toolcall_parser_new_forced(enum toolcall_style style, const char *name,
                                                   uint64_t seed);
/* Frees the parser and its calls. Accepts NULL. */
void toolcall_parser_free(struct toolcall_parser *p);

/*
 * Feeds generated text; appends to content what is certainly plain text.
 * 0 or AS_ENOMEM (content's maximum).
 */
int toolcall_feed(struct toolcall_parser *p, const char *text, size_t n, struct buf *content);
/*
 * End of generation: parses a call the model left unterminated where that is
 * unambiguous (a Hermes call without </tool_call>), and appends everything
 * still held back to content. Feeding after finish is an error (AS_EINVAL).
 */
int toolcall_finish(struct toolcall_parser *p, struct buf *content);
/* 1 while text is held back (a call may be in progress). */
int toolcall_holding(const struct toolcall_parser *p);

/* How a forced call is shaped for a style (see toolcall_forced_prompt). */
struct toolcall_form {
    const char *args_key; /* "arguments", or "parameters" (Llama 3) */
    int as_array;         /* the output is an array of one or more calls */
};

/*
 * For tool_choice "required" (name NULL) or a named function: appends to
 * prompt what the style writes before a call, so that a model continues in
 * the syntax it was trained on: its marker ("<tool_call>\n", "[TOOL_CALLS][",
 * "<|tool_call|>[", none for Llama 3 and generic templates), and for a named
 * call also `{"name": NAME, ARGS_KEY: ` so that the model writes only the
 * arguments. form says what the constrained output is: an array of calls
 * only when parallel and the style writes calls as an array (Mistral,
 * Granite, generic); otherwise one call. 0 or AS_ENOMEM.
 */
int toolcall_forced_prompt(enum toolcall_style style, const char *name, int parallel,
                           struct buf *prompt, struct toolcall_form *form);

/* Completed calls so far, in order; new ones are appended, old ones never change. */
size_t toolcall_count(const struct toolcall_parser *p);
/* Call i (< toolcall_count), valid until the parser is freed. */
const struct toolcall *toolcall_get(const struct toolcall_parser *p, size_t i);

#endif
