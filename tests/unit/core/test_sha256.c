/* test_sha256.c - SHA-256 against FIPS 180-2 vectors, streaming splits, HMAC (RFC 4231). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/sha256.h"

static void check(const void *data, size_t n, const char *want)
{
    uint8_t d[SHA256_DIGEST_LEN];
    char hex[SHA256_HEX_LEN];
    sha256(data, n, d);
    sha256_hex(d, hex);
    assert_string_equal(hex, want);
}

static void test_fips_vectors(void **state)
{
    (void)state;
    check("abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    check("", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    const char *m2 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    check(m2, strlen(m2), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    const char *m3 = "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmno"
                     "ijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu";
    check(m3, strlen(m3), "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
    /* one million 'a', fed in uneven pieces */
    char *a = malloc(1000000);
    memset(a, 'a', 1000000);
    check(a, 1000000, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    struct sha256_ctx c;
    uint8_t d[SHA256_DIGEST_LEN];
    char hex[SHA256_HEX_LEN];
    sha256_init(&c);
    for (size_t off = 0, step = 1; off < 1000000; off += step, step = step * 3 % 1001 + 1)
        sha256_update(&c, a + off, off + step > 1000000 ? 1000000 - off : step);
    sha256_final(&c, d);
    sha256_hex(d, hex);
    assert_string_equal(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    free(a);
}

/* Every length 0..200 around the padding boundaries (55/56/64 bytes): split == one-shot. */
static void test_split_consistency(void **state)
{
    (void)state;
    uint8_t msg[200];
    for (size_t i = 0; i < sizeof msg; i++)
        msg[i] = (uint8_t)(i * 37 + 11);
    for (size_t n = 0; n <= sizeof msg; n++) {
        uint8_t one[SHA256_DIGEST_LEN], two[SHA256_DIGEST_LEN];
        sha256(msg, n, one);
        for (size_t cut = 0; cut <= n; cut += 7) {
            struct sha256_ctx c;
            sha256_init(&c);
            sha256_update(&c, msg, cut);
            sha256_update(&c, msg + cut, n - cut);
            sha256_final(&c, two);
            assert_memory_equal(one, two, sizeof one);
        }
    }
    /* 55 and 56 'a's: padding fits / spills into a second block */
    check("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 55,
          "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318");
    check("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 56,
          "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a");
}

static void check_hmac(const void *k, size_t kn, const void *m, size_t mn, const char *want)
{
    uint8_t d[SHA256_DIGEST_LEN];
    char hex[SHA256_HEX_LEN];
    hmac_sha256(k, kn, m, mn, d);
    sha256_hex(d, hex);
    assert_string_equal(hex, want);
}

static void test_hmac_rfc4231(void **state)
{
    (void)state;
    uint8_t k1[20], k6[131];
    memset(k1, 0x0b, sizeof k1);
    memset(k6, 0xaa, sizeof k6);
    check_hmac(k1, sizeof k1, "Hi There", 8,
               "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
    check_hmac("Jefe", 4, "what do ya want for nothing?", 28,
               "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    const char *m6 = "Test Using Larger Than Block-Size Key - Hash Key First";
    check_hmac(k6, sizeof k6, m6, strlen(m6),
               "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

static void test_hex(void **state)
{
    (void)state;
    uint8_t d[SHA256_DIGEST_LEN], e[SHA256_DIGEST_LEN];
    char hex[SHA256_HEX_LEN];
    sha256("abc", 3, d);
    sha256_hex(d, hex);
    assert_int_equal(sha256_from_hex(hex, 64, e), 0);
    assert_memory_equal(d, e, sizeof d);
    hex[0] = 'B';
    hex[1] = 'A';
    assert_int_equal(sha256_from_hex(hex, 64, e), 0);
    assert_memory_equal(d, e, sizeof d);
    assert_int_equal(sha256_from_hex(hex, 63, e), AS_EINVAL);
    hex[5] = 'g';
    assert_int_equal(sha256_from_hex(hex, 64, e), AS_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fips_vectors),
        cmocka_unit_test(test_split_consistency),
        cmocka_unit_test(test_hmac_rfc4231),
        cmocka_unit_test(test_hex),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
