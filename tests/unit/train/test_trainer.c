/*
 * test_trainer.c - the training loop end to end on a tiny model: loss goes
 * down; a run killed with SIGKILL after a checkpoint resumes to bit-identical
 * weights and the same loss log as an uninterrupted run; the token file
 * reader rejects corrupt files.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/buf.h"
#include "train/dataset.h"
#include "train/task.h"
#include "train/trainer.h"

static char tmpdir[] = "/tmp/aistack-trainer-XXXXXX";

/* Byte-level tokens of the task's chat exchanges; the loss covers the replies. */
static void make_data(const char *path, enum task_split split, int n)
{
    struct dataset_builder b;
    dataset_builder_init(&b, 128);
    uint64_t rng = 1 + split;
    for (int i = 0; i < n; i++) {
        struct task_item it;
        struct buf t;
        size_t plen;
        buf_init(&t, 4096);
        task_sample(&rng, split, &it);
        assert_int_equal(task_render(&it, &t, &plen), 0);
        int32_t tok[512];
        uint8_t mask[512];
        for (size_t j = 0; j < t.len; j++) {
            tok[j] = (unsigned char)t.data[j] & 127;
            mask[j] = j >= plen;
        }
        assert_int_equal(dataset_builder_add(&b, tok, mask, t.len), 0);
        buf_free(&t);
    }
    char err[256];
    assert_int_equal(dataset_builder_write(&b, path, err, sizeof err), 0);
    dataset_builder_free(&b);
}

static void opts(struct train_opts *o, const char *out, const char *data, const char *val)
{
    train_opts_default(o);
    o->model = (struct tm_config){.vocab = 128,
                                  .dim = 32,
                                  .n_layer = 2,
                                  .n_head = 4,
                                  .n_kv_head = 2,
                                  .ffn = 64,
                                  .max_seq = 128,
                                  .tied = 1,
                                  .rope_theta = 10000.0f,
                                  .norm_eps = 1e-5f};
    o->data = data;
    o->val_data = val;
    o->out_dir = out;
    o->steps = 40;
    o->batch_tokens = 512;
    o->accum = 2;
    o->lr = 3e-3f;
    o->warmup = 5;
    o->eval_every = 10;
    o->ckpt_every = 4;
    o->log_every = 10;
    o->threads = 2;
    o->log = fopen(getenv("TRAIN_LOG") ? getenv("TRAIN_LOG") : "/dev/null", "w");
}

static float *read_params(const char *dir, size_t *n)
{
    /* the last checkpoint holds the final weights */
    char path[512];
    snprintf(path, sizeof path, "%s/checkpoint.gguf", dir);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    float *p = malloc((size_t)sz);
    assert_int_equal(fread(p, 1, (size_t)sz, f), (size_t)sz);
    fclose(f);
    *n = (size_t)sz;
    return p;
}

static void test_train_and_resume(void **state)
{
    (void)state;
    char data[600], val[600], a[600], b[600], err[256];
    snprintf(data, sizeof data, "%s/train.tok", tmpdir);
    snprintf(val, sizeof val, "%s/val.tok", tmpdir);
    snprintf(a, sizeof a, "%s/a", tmpdir);
    snprintf(b, sizeof b, "%s/b", tmpdir);
    make_data(data, TASK_TRAIN, 400);
    make_data(val, TASK_VAL, 40);

    /* uninterrupted run */
    struct train_opts o;
    struct train_result ra, rb;
    opts(&o, a, data, val);
    assert_int_equal(train_run(&o, NULL, &ra, err, sizeof err), 0);
    fclose(o.log);
    assert_int_equal(ra.steps_done, 40);
    assert_true(ra.val_loss < 3.5f); /* from ln(128) = 4.85 at the start */

    /* the same run, killed after a checkpoint, then resumed */
    pid_t pid = fork();
    if (pid == 0) {
        opts(&o, b, data, val);
        o.ckpt_every = 1; /* a checkpoint every step: the kill lands between two */
        o.steps = 40;
        train_run(&o, NULL, &rb, err, sizeof err);
        _exit(0);
    }
    char ck[700];
    snprintf(ck, sizeof ck, "%s/checkpoint.gguf", b);
    struct stat st;
    for (int i = 0; i < 2000 && stat(ck, &st) != 0; i++)
        usleep(5000);
    usleep(150000);
    kill(pid, SIGKILL);
    int status;
    waitpid(pid, &status, 0);
    assert_true(WIFSIGNALED(status));
    opts(&o, b, data, val);
    assert_int_equal(train_run(&o, NULL, &rb, err, sizeof err), 0);
    fclose(o.log);
    assert_int_equal(rb.steps_done, 40);

    size_t na, nb;
    float *pa = read_params(a, &na), *pb = read_params(b, &nb);
    assert_int_equal(na, nb);
    assert_memory_equal(pa, pb, na);
    free(pa);
    free(pb);

    /* the loss logs agree line for line, one line per step */
    char ca[700], cb[700], la[128], lb[128];
    snprintf(ca, sizeof ca, "%s/loss.csv", a);
    snprintf(cb, sizeof cb, "%s/loss.csv", b);
    FILE *fa = fopen(ca, "r"), *fb = fopen(cb, "r");
    int lines = 0;
    while (fgets(la, sizeof la, fa)) {
        assert_non_null(fgets(lb, sizeof lb, fb));
        assert_string_equal(la, lb);
        lines++;
    }
    assert_null(fgets(lb, sizeof lb, fb));
    assert_int_equal(lines, 41);
    fclose(fa);
    fclose(fb);
    snprintf(ca, sizeof ca, "%s/loss.png", b);
    assert_int_equal(stat(ca, &st), 0);
    assert_true(st.st_size > 1000);
}

static void test_corrupt_token_file(void **state)
{
    (void)state;
    char path[600], err[256];
    snprintf(path, sizeof path, "%s/c.tok", tmpdir);
    make_data(path, TASK_TRAIN, 3);
    FILE *f = fopen(path, "r+b");
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    char *d = malloc((size_t)sz);
    fseek(f, 0, SEEK_SET);
    assert_int_equal(fread(d, 1, (size_t)sz, f), (size_t)sz);
    fclose(f);
    struct dataset ds;
    /* every truncation is rejected, never read past */
    for (long cut = 0; cut < sz; cut += 7) {
        f = fopen(path, "wb");
        fwrite(d, 1, (size_t)cut, f);
        fclose(f);
        assert_int_not_equal(dataset_open(&ds, path, err, sizeof err), 0);
    }
    /* the header (40 bytes) is followed by 4 offsets (3 sequences), then the tokens */
    char *bad = malloc((size_t)sz);
    struct {
        size_t at;
        uint64_t v;
        int width;
    } cases[] = {
        {40 + 4 * 8 + 4, 0x7f7f7f7f, 4}, /* a token id past the vocabulary */
        {40 + 8, UINT64_MAX, 8},         /* a middle offset that wraps "+ 2" */
        {40 + 16, 1, 8},                 /* offsets that decrease */
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        memcpy(bad, d, (size_t)sz);
        memcpy(bad + cases[c].at, &cases[c].v, (size_t)cases[c].width);
        f = fopen(path, "wb");
        fwrite(bad, 1, (size_t)sz, f);
        fclose(f);
        if (dataset_open(&ds, path, err, sizeof err) == 0)
            fail_msg("corrupt token file case %zu accepted", c);
    }
    /* and the untouched file still opens */
    f = fopen(path, "wb");
    fwrite(d, 1, (size_t)sz, f);
    fclose(f);
    assert_int_equal(dataset_open(&ds, path, err, sizeof err), 0);
    dataset_close(&ds);
    free(bad);
    free(d);
}

static int setup(void **state)
{
    (void)state;
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_train_and_resume),
        cmocka_unit_test(test_corrupt_token_file),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
