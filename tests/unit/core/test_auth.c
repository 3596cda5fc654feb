/* test_auth.c - Bearer parsing, hashed keysets, constant-time lookup, key generation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "core/auth.h"
#include "core/err.h"

static void test_parse_bearer(void **state)
{
    (void)state;
    const char *t;
    size_t n;
    const char *h = "Bearer sk-as-abc";
    assert_int_equal(auth_parse_bearer(h, strlen(h), &t, &n), 0);
    assert_int_equal(n, 9);
    assert_memory_equal(t, "sk-as-abc", 9);
    h = "  bearer \t tok123  ";
    assert_int_equal(auth_parse_bearer(h, strlen(h), &t, &n), 0);
    assert_int_equal(n, 6);
    assert_memory_equal(t, "tok123", 6);
    const char *bad[] = {"",          "Bearer",         "Bearer ",    "Bearer  \t",
                         "Basic abc", "Bearerabc",      "Bearer a b", "Bearer a\x01",
                         "Token abc", "Bearer \xc3\xa9"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(auth_parse_bearer(bad[i], strlen(bad[i]), &t, &n), AS_EINVAL);
    assert_int_equal(auth_parse_bearer(NULL, 0, &t, &n), AS_EINVAL);
    /* the length bounds the read, not a NUL */
    assert_int_equal(auth_parse_bearer("Bearer abcdef", 9, &t, &n), 0);
    assert_int_equal(n, 2);
}

static void test_keyset(void **state)
{
    (void)state;
    struct auth_keyset *ks = auth_keyset_new();
    char k1[AUTH_KEY_LEN], k2[AUTH_KEY_LEN], k3[AUTH_KEY_LEN], spec[AUTH_HASH_SPEC_LEN];
    const char *why = NULL;
    assert_int_equal(auth_key_generate(k1), 0);
    assert_int_equal(auth_key_generate(k2), 0);
    assert_int_equal(auth_key_generate(k3), 0);
    assert_string_not_equal(k1, k2);
    /* k1 given in plain text, k2 as its stored hash */
    assert_int_equal(auth_keyset_add(ks, k1, &why), 0);
    auth_key_hash_spec(k2, strlen(k2), spec);
    assert_int_equal(strlen(spec), 71);
    assert_int_equal(auth_keyset_add(ks, spec, &why), 1);
    assert_int_equal(auth_keyset_count(ks), 2);
    /* duplicates, in either form, are refused */
    assert_int_equal(auth_keyset_add(ks, k2, &why), AS_EINVAL);
    assert_string_equal(why, "duplicate key");
    auth_key_hash_spec(k1, strlen(k1), spec);
    spec[10] = (char)(spec[10] == 'a' ? 'A' : spec[10]); /* hex is case-insensitive */
    assert_int_equal(auth_keyset_add(ks, spec, &why), AS_EINVAL);
    assert_int_equal(auth_keyset_add(ks, "sha256:abcd", &why), AS_EINVAL);
    assert_int_equal(auth_keyset_add(ks, "short", &why), AS_EINVAL);
    assert_int_equal(auth_keyset_add(ks, "has a space in it!!", &why), AS_EINVAL);
    assert_int_equal(auth_keyset_add(ks, NULL, &why), AS_EINVAL);

    assert_int_equal(auth_check(ks, k1, strlen(k1)), 0);
    assert_int_equal(auth_check(ks, k2, strlen(k2)), 1);
    assert_int_equal(auth_check(ks, k3, strlen(k3)), AS_EPERM);
    assert_int_equal(auth_check(ks, k1, strlen(k1) - 1), AS_EPERM);
    assert_int_equal(auth_check(ks, "", 0), AS_EPERM);
    char hdr[128];
    snprintf(hdr, sizeof hdr, "Bearer %s", k2);
    assert_int_equal(auth_check_header(ks, hdr), 1);
    snprintf(hdr, sizeof hdr, "Bearer %s", k3);
    assert_int_equal(auth_check_header(ks, hdr), AS_EPERM);
    assert_int_equal(auth_check_header(ks, NULL), AS_EPERM);
    assert_int_equal(auth_check_header(ks, "Basic xyz"), AS_EPERM);

    char id[20];
    assert_int_equal(auth_key_id(ks, 1, id), 0);
    assert_int_equal(strlen(id), 19);
    auth_key_hash_spec(k2, strlen(k2), spec);
    assert_memory_equal(id, spec, 19);
    assert_int_equal(auth_key_id(ks, 2, id), AS_EINVAL);

    /* many keys: the last one is still found, misses still miss */
    for (int i = 0; i < 300; i++) {
        char k[AUTH_KEY_LEN];
        assert_int_equal(auth_key_generate(k), 0);
        assert_int_equal(auth_keyset_add(ks, k, &why), i + 2);
        if (i == 299)
            assert_int_equal(auth_check(ks, k, strlen(k)), 301);
    }
    assert_int_equal(auth_check(ks, k3, strlen(k3)), AS_EPERM);
    auth_keyset_free(ks);
    auth_keyset_free(NULL);
    assert_int_equal(auth_check(NULL, k1, strlen(k1)), AS_EPERM);
}

static void test_generate_format(void **state)
{
    (void)state;
    int seen[256] = {0};
    for (int i = 0; i < 200; i++) {
        char k[AUTH_KEY_LEN];
        assert_int_equal(auth_key_generate(k), 0);
        assert_int_equal(strlen(k), AUTH_KEY_LEN - 1);
        assert_memory_equal(k, "sk-as-", 6);
        for (size_t j = 6; k[j]; j++) {
            unsigned char c = (unsigned char)k[j];
            assert_true((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'));
            seen[c]++;
        }
    }
    /* 8000 draws over 62 symbols: every symbol appears (expected ~129 each) */
    int distinct = 0;
    for (int c = 0; c < 256; c++)
        distinct += seen[c] > 0;
    assert_int_equal(distinct, 62);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_bearer),
        cmocka_unit_test(test_keyset),
        cmocka_unit_test(test_generate_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
