/*
 * cli.h - subcommands of the `aistack` command.
 *
 * Each subcommand lives in its own cmd_*.c file and is a function
 * int cmd_NAME(int argc, char **argv) with argv[0] the subcommand name; it
 * returns the process exit code. main.c dispatches by name.
 */
#ifndef AISTACK_CLI_H
#define AISTACK_CLI_H

#define CLI_WEAK __attribute__((weak))

/* engine */
int cmd_generate(int argc, char **argv) CLI_WEAK;
int cmd_tokenize(int argc, char **argv) CLI_WEAK;
int cmd_detokenize(int argc, char **argv) CLI_WEAK;
int cmd_quantize(int argc, char **argv) CLI_WEAK;
int cmd_convert(int argc, char **argv) CLI_WEAK;
int cmd_model(int argc, char **argv) CLI_WEAK;
int cmd_info(int argc, char **argv) CLI_WEAK;
/* training */
int cmd_train(int argc, char **argv) CLI_WEAK;
int cmd_tokenizer(int argc, char **argv) CLI_WEAK;
/* local stack */
int cmd_up(int argc, char **argv) CLI_WEAK;
int cmd_down(int argc, char **argv) CLI_WEAK;
int cmd_chat(int argc, char **argv) CLI_WEAK;
int cmd_demo(int argc, char **argv) CLI_WEAK;

#endif
