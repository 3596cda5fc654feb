/*
 * main.c - the `aistack` command: dispatches to subcommands (see cli.h).
 * Subcommands are linked in only when their module is built; a missing one is
 * reported as unknown rather than failing the link.
 */
#include "cli/cli.h"

#include <stdio.h>
#include <string.h>

struct subcommand {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *help;
};

static const struct subcommand commands[] = {
    {"generate", cmd_generate, "generate text from a GGUF model"},
    {"tokenize", cmd_tokenize, "print the token ids of a text"},
    {"detokenize", cmd_detokenize, "print the text of token ids"},
    {"info", cmd_info, "show a GGUF file's metadata and tensors"},
    {"quantize", cmd_quantize, "quantize a GGUF model (q4_0, q8_0, q4_k_m, ...)"},
    {"convert", cmd_convert, "convert llama2.c or Hugging Face checkpoints to GGUF"},
    {"model", cmd_model, "model tools (synth: random weights of a real shape)"},
    {"train", cmd_train, "train a model"},
    {"tokenizer", cmd_tokenizer, "tokenizer tools (train)"},
    {"up", cmd_up, "start the local stack"},
    {"down", cmd_down, "stop the local stack"},
    {"chat", cmd_chat, "chat with a running stack"},
    {"demo", cmd_demo, "train the default model (first run) and ask it held-out questions"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: aistack COMMAND [ARGS...]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (commands[i].fn)
            fprintf(f, "  %-11s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "\nrun 'aistack COMMAND --help' for a command's options\n");
}

int main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (commands[i].fn && !strcmp(argv[1], commands[i].name))
            return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "aistack: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
