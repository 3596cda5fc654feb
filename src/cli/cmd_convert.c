/*
 * cmd_convert.c - `aistack convert`: checkpoints from elsewhere to GGUF.
 *
 *   aistack convert --llama2c model.bin --tokenizer tok.bin -o out.gguf
 *   aistack convert --hf DIR [--type f32|f16|bf16] -o out.gguf
 *
 * Not for: quantization (`aistack quantize` afterwards).
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "core/err.h"
#include "engine/hf_import.h"
#include "engine/llama2c.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: aistack convert --llama2c MODEL.bin --tokenizer TOK.bin -o OUT.gguf\n"
               "       aistack convert --hf DIR [--type f32|f16|bf16] -o OUT.gguf\n"
               "\n"
               "  --llama2c FILE   llama2.c checkpoint (legacy or version 1 export)\n"
               "  --tokenizer FILE llama2.c tokenizer.bin\n"
               "  --hf DIR         Hugging Face llama/qwen2 checkpoint: config.json,\n"
               "                   *.safetensors, tokenizer.json\n"
               "  --type T         weight type for --hf (default: f16; norms stay f32)\n"
               "  -o FILE          output GGUF\n");
}

int cmd_convert(int argc, char **argv)
{
    const char *l2c = NULL, *tok = NULL, *hf = NULL, *out = NULL, *type = "f16";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "aistack convert: %s needs a value\n", a);
            usage(stderr);
            return 2;
        }
        if (!strcmp(a, "--llama2c"))
            l2c = argv[++i];
        else if (!strcmp(a, "--tokenizer"))
            tok = argv[++i];
        else if (!strcmp(a, "--hf"))
            hf = argv[++i];
        else if (!strcmp(a, "--type"))
            type = argv[++i];
        else if (!strcmp(a, "-o"))
            out = argv[++i];
        else {
            fprintf(stderr, "aistack convert: unknown option %s\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (!out || (!l2c == !hf) || (l2c && !tok)) {
        usage(stderr);
        return 2;
    }
    char err[512] = "";
    int rc;
    if (l2c) {
        rc = llama2c_convert(l2c, tok, out, err, sizeof err);
    } else {
        struct hf_import_opts o = {0};
        if (hf_import_parse_type(type, &o.type)) {
            fprintf(stderr, "aistack convert: --type must be f32, f16 or bf16\n");
            return 2;
        }
        rc = hf_import(hf, out, &o, err, sizeof err);
    }
    if (rc) {
        fprintf(stderr, "aistack convert: %s\n", err[0] ? err : as_strerror(rc));
        return 1;
    }
    fprintf(stderr, "aistack convert: wrote %s\n", out);
    return 0;
}
