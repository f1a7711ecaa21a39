/* Pure request parsing of the http layer: percent-decoding, path segments, query. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "http/http_int.h"

static void test_pct_decode_table(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        int allow_slash;
        int rc; /* decoded length, or -1 */
        const char *out;
    } cases[] = {
        {"dev1", 0, 4, "dev1"}, {"a%20b", 0, 3, "a b"},
        {"%41%62", 0, 2, "Ab"}, {"%2f", 0, -1, NULL}, /* an encoded '/' would smuggle a segment */
        {"%2F", 1, 1, "/"},                           /* allowed in query values */
        {"%00", 1, -1, NULL},                         /* NUL never */
        {"%", 0, -1, NULL},                           /* truncated escapes */
        {"%4", 0, -1, NULL},    {"ab%4", 0, -1, NULL},
        {"%zz", 0, -1, NULL},   {"+", 0, 1, "+"}, /* '+' is not a space in paths */
        {"", 0, 0, ""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[32];
        int rc = hub_http__pct_decode(cases[i].in, strlen(cases[i].in), out, sizeof(out),
                                      cases[i].allow_slash);
        assert_int_equal(rc, cases[i].rc);
        if (rc >= 0)
            assert_string_equal(out, cases[i].out);
    }
    char small[4];
    assert_int_equal(hub_http__pct_decode("abcd", 4, small, sizeof(small), 0), -1);
    /* cap 0: no room for the NUL either, and out is not written */
    char guard[1] = {'x'};
    assert_int_equal(hub_http__pct_decode("", 0, guard, 0, 0), -1);
    assert_int_equal(hub_http__pct_decode("a", 1, guard, 0, 0), -1);
    assert_int_equal(guard[0], 'x');
    /* cap 1: only the empty string fits */
    assert_int_equal(hub_http__pct_decode("", 0, guard, 1, 0), 0);
    assert_int_equal(guard[0], '\0');
    assert_int_equal(hub_http__pct_decode("a", 1, guard, 1, 0), -1);
}

static void test_split_path(void **state)
{
    (void)state;
    char seg[HUB_HTTP_MAX_SEGMENTS][HUB_HTTP_SEGMENT_MAX];
    assert_int_equal(hub_http__split_path("/devices/dev%201", seg, HUB_HTTP_MAX_SEGMENTS), 2);
    assert_string_equal(seg[0], "devices");
    assert_string_equal(seg[1], "dev 1");
    assert_int_equal(hub_http__split_path("/", seg, HUB_HTTP_MAX_SEGMENTS), 0);
    assert_int_equal(hub_http__split_path("//a//b/", seg, HUB_HTTP_MAX_SEGMENTS), 2);
    assert_string_equal(seg[1], "b");
    assert_int_equal(hub_http__split_path("/devices/a%2fb", seg, HUB_HTTP_MAX_SEGMENTS), -1);
    assert_int_equal(hub_http__split_path("/1/2/3/4/5/6/7/8/9", seg, HUB_HTTP_MAX_SEGMENTS), -1);
    char longpath[HUB_HTTP_SEGMENT_MAX + 8];
    memset(longpath, 'a', sizeof(longpath) - 1);
    longpath[0] = '/';
    longpath[sizeof(longpath) - 1] = '\0';
    assert_int_equal(hub_http__split_path(longpath, seg, HUB_HTTP_MAX_SEGMENTS), -1);
}

static void test_query_get(void **state)
{
    (void)state;
    struct hub_http_request r;
    memset(&r, 0, sizeof(r));
    char out[64];
    r.query = "api-version=2021-04-12&reject&top=5&x=a%2Fb";
    assert_int_equal(hub_http__query_get(&r, "api-version", out, sizeof(out)), 1);
    assert_string_equal(out, "2021-04-12");
    assert_int_equal(hub_http__query_get(&r, "reject", out, sizeof(out)), 1);
    assert_string_equal(out, "");
    assert_int_equal(hub_http__query_get(&r, "x", out, sizeof(out)), 1);
    assert_string_equal(out, "a/b");
    assert_int_equal(hub_http__query_get(&r, "api", out, sizeof(out)), 0);
    assert_int_equal(hub_http__query_get(&r, "missing", out, sizeof(out)), 0);
    r.query = NULL;
    assert_int_equal(hub_http__query_get(&r, "api-version", out, sizeof(out)), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pct_decode_table),
        cmocka_unit_test(test_split_path),
        cmocka_unit_test(test_query_get),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
