/* task.c - the default model's arithmetic / unit-conversion task (see task.h). */
#include "train/task.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char task_chat_template[] =
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/* Identity ranges: additions a+b (a,b < 100), subtractions a-b (b <= a < 100), conversions. */
#define N_ADD   (100 * 100)
#define N_SUB   (100 * 100)
#define N_UNITS 5
#define N_CONV  (N_UNITS * 1000)

struct unit {
    const char *from, *to, *from_long, *to_long;
    int factor;
};
static const struct unit units[N_UNITS] = {
    {"km", "m", "kilometers", "meters", 1000},      {"m", "cm", "meters", "centimeters", 100},
    {"kg", "g", "kilograms", "grams", 1000},        {"L", "mL", "liters", "milliliters", 1000},
    {"cm", "mm", "centimeters", "millimeters", 10},
};

uint64_t task_count(void)
{
    return N_ADD + N_SUB + N_CONV;
}

static uint64_t mix64(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Subtraction identities with b > a are not questions; they map onto valid ones. */
static int sub_valid(uint64_t j)
{
    return (int)(j % 100) <= (int)(j / 100);
}

enum task_split task_split_of(uint64_t i)
{
    uint64_t h = mix64(i ^ 0x5eed5eedull) % 100;
    return h < 90 ? TASK_TRAIN : h < 94 ? TASK_VAL : TASK_TEST;
}

/*
 * Answers show the written method, ones before tens, so that every digit is a
 * one-step lookup for the model; the final number comes last ("So ... = N.").
 */
static void answer_add(struct task_item *out, int a, int b)
{
    char *p = out->answer;
    size_t n = sizeof out->answer;
    int s0 = a % 10 + b % 10, carry = s0 >= 10, s1 = a / 10 + b / 10 + carry;
    out->expected = a + b;
    if (a < 10 && b < 10)
        snprintf(p, n, "%d + %d = %d.", a, b, a + b);
    else if (carry)
        snprintf(p, n, "Ones: %d + %d = %d. Tens: %d + %d + 1 = %d. So %d + %d = %d.", a % 10,
                 b % 10, s0, a / 10, b / 10, s1, a, b, a + b);
    else
        snprintf(p, n, "Ones: %d + %d = %d. Tens: %d + %d = %d. So %d + %d = %d.", a % 10, b % 10,
                 s0, a / 10, b / 10, s1, a, b, a + b);
}

static void answer_sub(struct task_item *out, int a, int b)
{
    char *p = out->answer;
    size_t n = sizeof out->answer;
    int borrow = a % 10 < b % 10, d0 = a % 10 + 10 * borrow - b % 10;
    int d1 = a / 10 - borrow - b / 10;
    out->expected = a - b;
    if (a < 10)
        snprintf(p, n, "%d - %d = %d.", a, b, a - b);
    else if (borrow)
        snprintf(p, n, "Ones: 1%d - %d = %d. Tens: %d - 1 - %d = %d. So %d - %d = %d.", a % 10,
                 b % 10, d0, a / 10, b / 10, d1, a, b, a - b);
    else
        snprintf(p, n, "Ones: %d - %d = %d. Tens: %d - %d = %d. So %d - %d = %d.", a % 10, b % 10,
                 d0, a / 10, b / 10, d1, a, b, a - b);
}

void task_get(uint64_t i, uint32_t v, struct task_item *out)
{
    char *q = out->question;
    size_t qn = sizeof out->question;
    memset(out, 0, sizeof *out);
    if (i < N_ADD) {
        int a = (int)(i / 100), b = (int)(i % 100);
        switch (v % 4) {
        case 0:
            snprintf(q, qn, "What is %d + %d?", a, b);
            break;
        case 1:
            snprintf(q, qn, "Calculate %d plus %d.", a, b);
            break;
        case 2:
            snprintf(q, qn, "What is the sum of %d and %d?", a, b);
            break;
        default:
            snprintf(q, qn, "Add %d and %d.", a, b);
            break;
        }
        answer_add(out, a, b);
    } else if (i < N_ADD + N_SUB) {
        uint64_t j = i - N_ADD;
        int a = (int)(j / 100), b = (int)(j % 100);
        if (b > a) { /* callers skip these identities; keep the question well formed anyway */
            int t = a;
            a = b, b = t;
        }
        switch (v % 4) {
        case 0:
            snprintf(q, qn, "What is %d - %d?", a, b);
            break;
        case 1:
            snprintf(q, qn, "Calculate %d minus %d.", a, b);
            break;
        case 2:
            snprintf(q, qn, "Subtract %d from %d.", b, a);
            break;
        default:
            snprintf(q, qn, "What is %d take away %d?", a, b);
            break;
        }
        answer_sub(out, a, b);
    } else {
        uint64_t j = i - N_ADD - N_SUB;
        const struct unit *u = &units[j / 1000];
        int x = (int)(j % 1000);
        switch (v % 3) {
        case 0:
            snprintf(q, qn, "Convert %d %s to %s.", x, u->from, u->to);
            break;
        case 1:
            snprintf(q, qn, "How many %s are in %d %s?", u->to_long, x, u->from_long);
            break;
        default:
            snprintf(q, qn, "What is %d %s in %s?", x, u->from, u->to);
            break;
        }
        snprintf(out->answer, sizeof out->answer, "%d %s = %lld %s", x, u->from,
                 (long long)x * u->factor, u->to);
        out->expected = (long long)x * u->factor;
    }
}

void task_sample(uint64_t *rng, enum task_split s, struct task_item *out)
{
    for (;;) {
        /* subtraction (borrows) is the hardest to learn: it gets the largest share */
        *rng = mix64(*rng);
        uint64_t r = *rng, kind = (r >> 56) % 100, i;
        if (kind < 35)
            i = r % N_ADD;
        else if (kind < 80)
            i = N_ADD + r % N_SUB;
        else
            i = N_ADD + N_SUB + r % N_CONV;
        if (i >= N_ADD && i < N_ADD + N_SUB && !sub_valid(i - N_ADD))
            continue;
        if (task_split_of(i) != s)
            continue;
        task_get(i, (uint32_t)(r >> 40), out);
        return;
    }
}

int task_render(const struct task_item *it, struct buf *b, size_t *prompt_len)
{
    int rc = buf_printf(b, "<|im_start|>user\n%s<|im_end|>\n<|im_start|>assistant\n", it->question);
    *prompt_len = b->len;
    rc |= buf_printf(b, "%s<|im_end|>\n", it->answer);
    return rc;
}

int task_check(const struct task_item *it, const char *reply)
{
    const char *last = NULL;
    size_t n = strlen(reply);
    /* the last run of digits, with an optional minus sign */
    for (size_t i = n; i > 0; i--) {
        if (isdigit((unsigned char)reply[i - 1])) {
            size_t j = i;
            while (j > 0 && isdigit((unsigned char)reply[j - 1]))
                j--;
            last = reply + j;
            if (j > 0 && reply[j - 1] == '-')
                last--;
            break;
        }
    }
    if (!last)
        return 0;
    return strtoll(last, NULL, 10) == it->expected;
}
