/*
 * fuzz_model.c - libFuzzer target for model loading from hostile GGUF files:
 * gguf_open_memory, then model_load_gguf (hyperparameters, tensor shapes and
 * types, RoPE scaling) and a context with a small KV cache. A model that loads
 * runs a forward pass of two tokens only with AISTACK_FUZZ_FORWARD=1 set: the
 * kernels' activation quantization is not yet defined for non-finite inputs
 * (which hostile weights produce), see kernels_avx512.c q8_block.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/gguf.h"
#include "engine/kvcache.h"
#include "engine/model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    char err[256];
    struct gguf_file *f = gguf_open_memory(copy, size, err, sizeof err);
    struct model *m = NULL;
    struct model_ctx *ctx = NULL;
    struct model_batch b = {0};
    if (!f)
        goto out;
    struct model_params mp = {.n_ctx_max = 16};
    if (!(m = model_load_gguf(f, &mp, err, sizeof err)))
        goto out;
    struct model_ctx_params cp = {.max_batch = 2, .max_seqs = 1};
    if (!(ctx = model_ctx_new(m, &cp, err, sizeof err)) || model_batch_init(&b, 2))
        goto out;
    const char *fw = getenv("AISTACK_FUZZ_FORWARD");
    if (!fw || strcmp(fw, "1"))
        goto out;
    int seq = kv_seq_alloc(model_ctx_kv(ctx));
    uint32_t nv = model_get_hparams(m)->n_vocab;
    model_batch_add(&b, 0, seq, 0, 0);
    model_batch_add(&b, (int32_t)(nv - 1), seq, 1, 1);
    if (model_forward(ctx, &b) == 0) {
        volatile float sink = model_logits(ctx, 1)[nv - 1];
        (void)sink;
    }
out:
    model_batch_free(&b);
    model_ctx_free(ctx);
    model_free(m);
    gguf_close(f);
    free(copy);
    return 0;
}
