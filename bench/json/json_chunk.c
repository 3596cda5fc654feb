/*
 * json_chunk.c - ns per OpenAI chat.completion.chunk object: our streaming
 * writer vs cJSON (build the tree + cJSON_PrintUnformatted + free, and print
 * alone on a prebuilt tree). Usage: bench_json_chunk [iterations]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/buf.h"
#include "core/json.h"

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static const char *const tokens[] = {"Hello",       ",",      " world",       "!",
                                     " \"quoted\"", "\n",     " caf\xC3\xA9", " \xF0\x9F\x98\x80",
                                     " the",        " answer"};
#define NTOK (sizeof tokens / sizeof tokens[0])

static void write_chunk(struct buf *b, const char *tok)
{
    struct json_writer w;
    json_writer_init(&w, b);
    json_obj_begin(&w);
    json_kv_str(&w, "id", "chatcmpl-4f1c2a9b8e7d6c5b4a39281706f5e4d3");
    json_kv_str(&w, "object", "chat.completion.chunk");
    json_kv_int(&w, "created", 1732650000);
    json_kv_str(&w, "model", "llama-3.2-1b-instruct");
    json_kv_str(&w, "system_fingerprint", "fp_aistack");
    json_key(&w, "choices");
    json_arr_begin(&w);
    json_obj_begin(&w);
    json_kv_int(&w, "index", 0);
    json_key(&w, "delta");
    json_obj_begin(&w);
    json_kv_str(&w, "content", tok);
    json_obj_end(&w);
    json_kv_null(&w, "logprobs");
    json_kv_null(&w, "finish_reason");
    json_obj_end(&w);
    json_arr_end(&w);
    json_obj_end(&w);
    if (json_writer_finish(&w))
        abort();
}

static cJSON *build_chunk(const char *tok)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", "chatcmpl-4f1c2a9b8e7d6c5b4a39281706f5e4d3");
    cJSON_AddStringToObject(o, "object", "chat.completion.chunk");
    cJSON_AddNumberToObject(o, "created", 1732650000);
    cJSON_AddStringToObject(o, "model", "llama-3.2-1b-instruct");
    cJSON_AddStringToObject(o, "system_fingerprint", "fp_aistack");
    cJSON *choices = cJSON_AddArrayToObject(o, "choices");
    cJSON *c = cJSON_CreateObject();
    cJSON_AddItemToArray(choices, c);
    cJSON_AddNumberToObject(c, "index", 0);
    cJSON *delta = cJSON_AddObjectToObject(c, "delta");
    cJSON_AddStringToObject(delta, "content", tok);
    cJSON_AddNullToObject(c, "logprobs");
    cJSON_AddNullToObject(c, "finish_reason");
    return o;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? strtol(argv[1], NULL, 10) : 1000000;
    if (n <= 0)
        n = 1000000;
    struct buf b;
    buf_init(&b, 1 << 16);
    size_t bytes = 0;

    double t0 = now_ns();
    for (long i = 0; i < n; i++) {
        buf_reset(&b);
        write_chunk(&b, tokens[i % NTOK]);
        bytes += b.len;
    }
    double writer = (now_ns() - t0) / (double)n;

    t0 = now_ns();
    for (long i = 0; i < n; i++) {
        cJSON *o = build_chunk(tokens[i % NTOK]);
        char *s = cJSON_PrintUnformatted(o);
        bytes += strlen(s);
        free(s);
        cJSON_Delete(o);
    }
    double cjson_full = (now_ns() - t0) / (double)n;

    cJSON *pre[NTOK];
    for (size_t k = 0; k < NTOK; k++)
        pre[k] = build_chunk(tokens[k]);
    t0 = now_ns();
    for (long i = 0; i < n; i++) {
        char *s = cJSON_PrintUnformatted(pre[i % NTOK]);
        bytes += strlen(s);
        free(s);
    }
    double cjson_print = (now_ns() - t0) / (double)n;
    for (size_t k = 0; k < NTOK; k++)
        cJSON_Delete(pre[k]);

    buf_reset(&b);
    write_chunk(&b, tokens[0]);
    printf("object: %s (%zu bytes)\n", b.data, b.len);
    printf("json_writer:                  %7.1f ns/object\n", writer);
    printf("cJSON build+print+free:       %7.1f ns/object (%.1fx)\n", cjson_full,
           cjson_full / writer);
    printf("cJSON_PrintUnformatted only:  %7.1f ns/object (%.1fx)\n", cjson_print,
           cjson_print / writer);
    printf("(checksum %zu)\n", bytes);
    buf_free(&b);
    return 0;
}
