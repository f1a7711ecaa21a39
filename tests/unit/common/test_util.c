#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "common/err.h"
#include "common/util.h"

static void test_err_names_round_trip(void **state)
{
    (void)state;
    assert_string_equal(hub_err_name(HUB_OK), "OK");
    assert_string_equal(hub_err_name(HUB_E_CERT_EXPIRED), "CERT_EXPIRED");
    assert_string_equal(hub_err_name(HUB_E_INTERNAL), "INTERNAL");
    assert_string_equal(hub_err_name(12345), "UNKNOWN");
    assert_true(HUB_E_NOMEM < 0 && HUB_E_INTERNAL < 0);
}

static void test_err_set_formats_and_returns_code(void **state)
{
    (void)state;
    struct hub_err err = {0};
    int rc = HUB_ERR(&err, HUB_E_PARSE, "bad byte 0x%02x", 0x7f);
    assert_int_equal(rc, HUB_E_PARSE);
    assert_int_equal(err.code, HUB_E_PARSE);
    assert_string_equal(err.msg, "bad byte 0x7f");
    assert_non_null(err.file);
    assert_true(err.line > 0);
    assert_int_equal(HUB_ERR(NULL, HUB_E_IO, "ignored"), HUB_E_IO);
    hub_err_clear(&err);
    assert_int_equal(err.code, 0);
}

static void test_hex_upper(void **state)
{
    (void)state;
    const unsigned char in[] = {0x00, 0xab, 0x7f, 0xff};
    char out[9];
    hub_hex_upper(in, sizeof(in), out);
    assert_string_equal(out, "00AB7FFF");
}

static void test_ct_equal(void **state)
{
    (void)state;
    assert_true(hub_ct_equal("abc", 3, "abc", 3));
    assert_false(hub_ct_equal("abc", 3, "abd", 3));
    assert_false(hub_ct_equal("abc", 3, "abcd", 4));
    assert_false(hub_ct_equal("", 0, "a", 1));
    assert_true(hub_ct_equal("", 0, "", 0));
}

static void test_base64_round_trip_and_strictness(void **state)
{
    (void)state;
    const char *vectors[][2] = {{"", ""},
                                {"f", "Zg=="},
                                {"fo", "Zm8="},
                                {"foo", "Zm9v"},
                                {"foob", "Zm9vYg=="},
                                {"fooba", "Zm9vYmE="},
                                {"foobar", "Zm9vYmFy"}};
    for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
        char enc[32];
        size_t n =
            hub_base64_encode((const unsigned char *)vectors[i][0], strlen(vectors[i][0]), enc);
        assert_int_equal(n, strlen(vectors[i][1]));
        assert_string_equal(enc, vectors[i][1]);
        unsigned char dec[32];
        int m = hub_base64_decode(enc, n, dec, sizeof(dec), NULL);
        assert_int_equal(m, (int)strlen(vectors[i][0]));
        assert_memory_equal(dec, vectors[i][0], (size_t)m);
    }
    unsigned char out[8];
    struct hub_err err = {0};
    assert_int_equal(hub_base64_decode("Zm9", 3, out, sizeof(out), &err), HUB_E_PARSE);
    assert_int_equal(hub_base64_decode("Zm9*", 4, out, sizeof(out), &err), HUB_E_PARSE);
    assert_int_equal(hub_base64_decode("Z=9v", 4, out, sizeof(out), &err), HUB_E_PARSE);
    assert_int_equal(hub_base64_decode("Zm9vYmFy", 8, out, 2, &err), HUB_E_TOO_LARGE);
}

static void test_time_formats(void **state)
{
    (void)state;
    char iso[HUB_TIME_ISO_LEN];
    char rfc[HUB_TIME_RFC1123_LEN];
    hub_time_iso8601(1767225600, iso); /* 2026-01-01 */
    assert_string_equal(iso, "2026-01-01T00:00:00Z");
    hub_time_rfc1123(2208988799, rfc);
    assert_string_equal(rfc, "Sat, 31 Dec 2039 23:59:59 GMT");
}

static void test_random_hex_is_random(void **state)
{
    (void)state;
    char a[33], b[33];
    assert_int_equal(hub_random_hex(16, a, NULL), 0);
    assert_int_equal(hub_random_hex(16, b, NULL), 0);
    assert_int_equal(strlen(a), 32);
    assert_string_not_equal(a, b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_err_names_round_trip),
        cmocka_unit_test(test_err_set_formats_and_returns_code),
        cmocka_unit_test(test_hex_upper),
        cmocka_unit_test(test_ct_equal),
        cmocka_unit_test(test_base64_round_trip_and_strictness),
        cmocka_unit_test(test_time_formats),
        cmocka_unit_test(test_random_hex_is_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
