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

/* hub_pct_decode: one case per rule, the offset of each fault, every caller's flags. */
static void test_pct_decode_table(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        const char *in;
        size_t len; /* 0: strlen(in) (for inputs holding a NUL) */
        size_t cap;
        unsigned flags;
        int rc;
        const char *out; /* when rc == HUB_PCT_OK */
        size_t at;       /* *bad_offset when rc != HUB_PCT_OK */
    } cases[] = {
        {"plain", "dev1", 0, 32, 0, HUB_PCT_OK, "dev1", 0},
        {"empty", "", 0, 32, 0, HUB_PCT_OK, "", 0},
        {"space", "a%20b", 0, 32, 0, HUB_PCT_OK, "a b", 0},
        {"hex_either_case", "%4a%4A%c3%A9", 0, 32, 0, HUB_PCT_OK, "JJ\xc3\xa9", 0},
        {"plus_is_plus", "a+b%2B", 0, 32, 0, HUB_PCT_OK, "a+b+", 0},
        {"escaped_percent", "%2525", 0, 32, 0, HUB_PCT_OK, "%25", 0},
        {"slash_allowed", "a%2Fb", 0, 32, 0, HUB_PCT_OK, "a/b", 0},
        {"raw_slash_kept", "a/b", 0, 32, HUB_PCT_NO_SLASH, HUB_PCT_OK, "a/b", 0},
        {"slash_refused_upper", "ab%2F", 0, 32, HUB_PCT_NO_SLASH, HUB_PCT_SLASH_ESCAPE, NULL, 2},
        {"slash_refused_lower", "%2f", 0, 32, HUB_PCT_NO_SLASH, HUB_PCT_SLASH_ESCAPE, NULL, 0},
        {"pct00", "ab%00", 0, 32, 0, HUB_PCT_NUL_ESCAPE, NULL, 2},
        {"pct00_with_flag", "%00", 0, 32, HUB_PCT_NO_SLASH, HUB_PCT_NUL_ESCAPE, NULL, 0},
        {"raw_nul", "ab\0c", 4, 32, 0, HUB_PCT_NUL_BYTE, NULL, 2},
        {"percent_at_end", "abc%", 0, 32, 0, HUB_PCT_BAD_ESCAPE, NULL, 3},
        {"one_digit_at_end", "abc%4", 0, 32, 0, HUB_PCT_BAD_ESCAPE, NULL, 3},
        {"not_hex", "a%zz", 0, 32, 0, HUB_PCT_BAD_ESCAPE, NULL, 1},
        {"second_not_hex", "%4g", 0, 32, 0, HUB_PCT_BAD_ESCAPE, NULL, 0},
        {"escape_cut_by_len", "%41", 2, 32, 0, HUB_PCT_BAD_ESCAPE, NULL, 0},
        {"first_fault_wins", "%zz%00", 0, 32, 0, HUB_PCT_BAD_ESCAPE, NULL, 0},
        {"fits_exactly", "abc", 0, 4, 0, HUB_PCT_OK, "abc", 0},
        {"nul_does_not_fit", "abcd", 0, 4, 0, HUB_PCT_TOO_LONG, NULL, 3},
        {"escape_does_not_fit", "ab%41", 0, 3, 0, HUB_PCT_TOO_LONG, NULL, 2},
        {"escape_counts_once", "%41%42%43", 0, 4, 0, HUB_PCT_OK, "ABC", 0},
        {"cap1_empty", "", 0, 1, 0, HUB_PCT_OK, "", 0},
        {"cap1_one_byte", "a", 0, 1, 0, HUB_PCT_TOO_LONG, NULL, 0},
        {"cap0_empty", "", 0, 0, 0, HUB_PCT_TOO_LONG, NULL, 0},
        {"cap0_byte", "a", 0, 0, 0, HUB_PCT_TOO_LONG, NULL, 0},
        {"cap0_bad_escape_first", "%z", 0, 0, 0, HUB_PCT_BAD_ESCAPE, NULL, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[33];
        memset(out, 'x', sizeof(out));
        size_t len = cases[i].len ? cases[i].len : strlen(cases[i].in);
        size_t out_len = 999, at = 999;
        int rc = hub_pct_decode(cases[i].in, len, out, cases[i].cap, cases[i].flags, &out_len, &at);
        if (rc != cases[i].rc)
            fail_msg("%s: rc %d, want %d", cases[i].name, rc, cases[i].rc);
        /* nothing at or past cap is ever written */
        for (size_t k = cases[i].cap; k < sizeof(out); k++)
            if (out[k] != 'x')
                fail_msg("%s: out[%zu] written past cap %zu", cases[i].name, k, cases[i].cap);
        if (rc == HUB_PCT_OK) {
            if (strcmp(out, cases[i].out) != 0 || out_len != strlen(cases[i].out))
                fail_msg("%s: got \"%s\" (%zu)", cases[i].name, out, out_len);
            assert_int_equal(at, 999); /* written only on a fault */
        } else {
            if (at != cases[i].at)
                fail_msg("%s: offset %zu, want %zu", cases[i].name, at, cases[i].at);
            assert_int_equal(out_len, 999); /* written only on success */
        }
    }
    /* Both reports are optional. */
    char out[8];
    assert_int_equal(hub_pct_decode("a%20", 4, out, sizeof(out), 0, NULL, NULL), HUB_PCT_OK);
    assert_string_equal(out, "a ");
    assert_int_equal(hub_pct_decode("%", 1, out, sizeof(out), 0, NULL, NULL), HUB_PCT_BAD_ESCAPE);
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
        cmocka_unit_test(test_pct_decode_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
