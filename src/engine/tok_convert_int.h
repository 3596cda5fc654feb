/*
 * tok_convert_int.h - helpers shared by the tokenizer converters
 * (tok_convert.c, tok_convert_spm.c). Not a public interface.
 */
#ifndef AISTACK_ENGINE_TOK_CONVERT_INT_H
#define AISTACK_ENGINE_TOK_CONVERT_INT_H

#include <stddef.h>

/* A list of NUL-terminated heap strings (the writer's array form). */
struct tok_strlist {
    char **v;
    size_t n, cap;
};
void tok__strlist_free(struct tok_strlist *l);
/* Appends a copy of s[0..n). 0 or AS_ENOMEM. */
int tok__strlist_push(struct tok_strlist *l, const char *s, size_t n);

/* Writes "convert tokenizer: MSG[ ARG]" into err (arg may be NULL). */
void tok__cerr(char *err, size_t errlen, const char *msg, const char *arg);
/* Reads a whole file of at most TOK_CONVERT_MAX_FILE bytes (NUL-terminated, caller frees). */
int tok__read_file(const char *path, char **data, size_t *size, char *err, size_t errlen);

#endif
