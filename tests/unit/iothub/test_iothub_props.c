/*
 * Property bags: parse (the bag captured from Node, reference §2), null vs
 * empty, every malformed form, limits; encode byte-for-byte against the same
 * capture; encode -> parse round trips; C2D topic building.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "iothub/iothub.h"

/* Captured from azure-iot-device 1.18.4 (reference §2). */
#define NODE_BAG                                                                                   \
    "%24.mid=mid-1&%24.cid=cid%201&%24.ct=application%2Fjson&%24.ce=utf-8&alert=yes%26no&k%202=v%" \
    "2F2"

static struct hub_iothub_props props; /* ~10 KiB: not on the test's stack */

static int parse(const char *bag, struct hub_err *err)
{
    return hub_iothub_props_parse(bag, strlen(bag), &props, err);
}

static void assert_prop_value(const struct hub_iothub_prop *p, const char *want)
{
    assert_non_null(p);
    assert_non_null(p->key);
    if (want == NULL) {
        assert_null(p->value);
        return;
    }
    assert_non_null(p->value);
    assert_int_equal(p->value_len, strlen(want));
    assert_string_equal(p->value, want); /* also proves NUL termination */
}

static void assert_sys(enum hub_iothub_sys s, const char *want)
{
    assert_prop_value(&props.sys[s], want);
    assert_string_equal(props.sys[s].key, hub_iothub_sys_name(s));
}

static void assert_app(const char *key, const char *want)
{
    const struct hub_iothub_prop *p = hub_iothub_props_app_find0(&props, key);
    if (p == NULL)
        fail_msg("no application property '%s'", key);
    assert_prop_value(p, want);
}

static void test_parse_node_capture(void **state)
{
    (void)state;
    struct hub_err err = {0};
    assert_int_equal(parse(NODE_BAG, &err), 0);
    assert_sys(HUB_IOTHUB_SYS_MID, "mid-1");
    assert_sys(HUB_IOTHUB_SYS_CID, "cid 1");
    assert_sys(HUB_IOTHUB_SYS_CT, "application/json");
    assert_sys(HUB_IOTHUB_SYS_CE, "utf-8");
    assert_null(props.sys[HUB_IOTHUB_SYS_UID].key);
    assert_null(props.sys[HUB_IOTHUB_SYS_EXP].key);
    assert_int_equal(props.app_count, 2);
    assert_string_equal(props.app[0].key, "alert");
    assert_string_equal(props.app[1].key, "k 2");
    assert_app("alert", "yes&no");
    assert_app("k 2", "v/2");
}

static void test_parse_every_system_property(void **state)
{
    (void)state;
    struct hub_err err = {0};
    /* raw '$' as well as %24 */
    assert_int_equal(parse("$.mid=1&$.cid=2&$.uid=3&$.to=4&$.ct=5&$.ce=6&$.exp=7&%24.ifid=8&"
                           "$.on=9&$.sub=10&$.ctime=11&$.diagid=12&$.diagctx=13",
                           &err),
                     0);
    const char *want[HUB_IOTHUB_SYS__COUNT] = {"1", "2", "3",  "4",  "5",  "6", "7",
                                               "8", "9", "10", "11", "12", "13"};
    for (int s = 0; s < HUB_IOTHUB_SYS__COUNT; s++)
        assert_sys((enum hub_iothub_sys)s, want[s]);
    assert_int_equal(props.app_count, 0);
    assert_null(hub_iothub_sys_name(HUB_IOTHUB_SYS__COUNT));
}

struct good_case {
    const char *name;
    const char *bag;
    const char *key; /* an app property to look up */
    const char *value;
    size_t app_count;
};

static const struct good_case good_cases[] = {
    {"null_value", "a", "a", NULL, 1},
    {"empty_value", "a=", "a", "", 1},
    {"plus_is_not_space", "k=a+b", "k", "a+b", 1},
    {"empty_pairs_skipped", "&&k=1&", "k", "1", 1},
    {"equals_in_value", "k=a=b", "k", "a=b", 1},
    {"unknown_dollar_key_is_app", "%24.foo=1", "$.foo", "1", 1},
    {"lowercase_escape", "k=a%2fb", "k", "a/b", 1},
    {"utf8_escape", "k=%C3%A9", "k", "\xc3\xa9", 1},
    {"raw_utf8", "k=\xc3\xa9", "k", "\xc3\xa9", 1},
    {"raw_slash_in_value", "k=a/b", "k", "a/b", 1},
    {"escaped_key", "a%3Db=c", "a=b", "c", 1},
    {"mixed_order", "x=1&%24.mid=m&y", "y", NULL, 2},
};

static void test_parse_good(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(good_cases) / sizeof(good_cases[0]); i++) {
        const struct good_case *gc = &good_cases[i];
        struct hub_err err = {0};
        int rc = parse(gc->bag, &err);
        if (rc != 0)
            fail_msg("%s: rc %d: %s", gc->name, rc, err.msg);
        print_message("case %s\n", gc->name);
        assert_int_equal(props.app_count, gc->app_count);
        assert_app(gc->key, gc->value);
    }
}

static void test_parse_null_vs_empty_system(void **state)
{
    (void)state;
    struct hub_err err = {0};
    assert_int_equal(parse("%24.mid&%24.cid=", &err), 0);
    assert_sys(HUB_IOTHUB_SYS_MID, NULL);
    assert_sys(HUB_IOTHUB_SYS_CID, "");
    assert_int_equal(parse("", &err), 0);
    assert_null(props.sys[HUB_IOTHUB_SYS_MID].key); /* a re-parse clears the last one */
    assert_int_equal(props.app_count, 0);
}

struct bad_case {
    const char *name;
    const char *bag;
    int rc;
    const char *msg;
};

static const struct bad_case bad_cases[] = {
    {"bad_escape_key", "%zz=1", HUB_E_PARSE, "property key has a bad percent-escape at offset 0"},
    {"truncated_escape", "k=%4", HUB_E_PARSE, "property value has a bad percent-escape"},
    {"percent_at_end", "k=%", HUB_E_PARSE, "property value has a bad percent-escape"},
    {"escaped_nul", "k=a%00", HUB_E_PARSE, "property value contains %00"},
    {"empty_key", "=v", HUB_E_PARSE, "property with an empty key at offset 0"},
    {"empty_key_later", "a=1&=v", HUB_E_PARSE, "property with an empty key at offset 4"},
    {"duplicate_system", "%24.mid=1&$.mid=2", HUB_E_PARSE, "system property $.mid appears twice"},
    {"duplicate_app", "a=1&b=2&a=3", HUB_E_PARSE, "application property 'a' appears twice"},
    {"invalid_utf8", "k=%ff", HUB_E_PARSE, "property value is not well-formed UTF-8"},
    {"overlong_utf8_key", "%c0%af=1", HUB_E_PARSE, "property key has an overlong UTF-8"},
    {"surrogate", "k=%ed%a0%80", HUB_E_PARSE, "surrogate"},
};

static void test_parse_bad(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
        const struct bad_case *bc = &bad_cases[i];
        struct hub_err err = {0};
        int rc = parse(bc->bag, &err);
        if (rc != bc->rc || strstr(err.msg, bc->msg) == NULL)
            fail_msg("%s: rc %d msg \"%s\"; want %d \"%s\"", bc->name, rc, err.msg, bc->rc,
                     bc->msg);
    }
    struct hub_err err = {0};
    assert_int_equal(hub_iothub_props_parse("k=a\0b", 5, &props, &err), HUB_E_PARSE);
    assert_non_null(strstr(err.msg, "NUL"));
}

static void test_parse_limits(void **state)
{
    (void)state;
    static char bag[HUB_IOTHUB_BAG_MAX + 16];
    struct hub_err err = {0};

    /* 32 application properties fit, 33 do not; system ones do not count */
    size_t n = 0;
    n += (size_t)snprintf(bag + n, sizeof(bag) - n, "$.mid=1&$.cid=2");
    for (int i = 0; i < HUB_IOTHUB_APP_PROPS_MAX; i++)
        n += (size_t)snprintf(bag + n, sizeof(bag) - n, "&p%d=%d", i, i);
    assert_int_equal(hub_iothub_props_parse(bag, n, &props, &err), 0);
    assert_int_equal(props.app_count, HUB_IOTHUB_APP_PROPS_MAX);
    assert_app("p31", "31");
    n += (size_t)snprintf(bag + n, sizeof(bag) - n, "&one=more");
    assert_int_equal(hub_iothub_props_parse(bag, n, &props, &err), HUB_E_TOO_LARGE);
    assert_non_null(strstr(err.msg, "more than 32 application properties"));

    /* key of 256 decoded bytes fits, 257 does not */
    memset(bag, 'k', HUB_IOTHUB_PROP_KEY_MAX);
    memcpy(bag + HUB_IOTHUB_PROP_KEY_MAX, "=v", 2);
    assert_int_equal(hub_iothub_props_parse(bag, HUB_IOTHUB_PROP_KEY_MAX + 2, &props, &err), 0);
    assert_int_equal(props.app[0].key_len, HUB_IOTHUB_PROP_KEY_MAX);
    memset(bag, 'k', HUB_IOTHUB_PROP_KEY_MAX + 1);
    memcpy(bag + HUB_IOTHUB_PROP_KEY_MAX + 1, "=v", 2);
    assert_int_equal(hub_iothub_props_parse(bag, HUB_IOTHUB_PROP_KEY_MAX + 3, &props, &err),
                     HUB_E_TOO_LARGE);
    assert_non_null(strstr(err.msg, "property key is longer than 256"));

    /* whole bag: a value filling HUB_IOTHUB_BAG_MAX fits, one byte more does not */
    memcpy(bag, "k=", 2);
    memset(bag + 2, 'v', HUB_IOTHUB_BAG_MAX - 1);
    assert_int_equal(hub_iothub_props_parse(bag, HUB_IOTHUB_BAG_MAX, &props, &err), 0);
    assert_int_equal(props.app[0].value_len, HUB_IOTHUB_BAG_MAX - 2);
    assert_int_equal(hub_iothub_props_parse(bag, HUB_IOTHUB_BAG_MAX + 1, &props, &err),
                     HUB_E_TOO_LARGE);
    assert_non_null(strstr(err.msg, "property bag is 8193 bytes"));

    /* worst case for the arena: many one-letter null keys */
    n = 0;
    for (int i = 0; i < HUB_IOTHUB_APP_PROPS_MAX; i++)
        n += (size_t)snprintf(bag + n, sizeof(bag) - n, "%s%c", i ? "&" : "", 'A' + i);
    assert_int_equal(hub_iothub_props_parse(bag, n, &props, &err), 0);
    assert_int_equal(props.app_count, HUB_IOTHUB_APP_PROPS_MAX);
}

/* ---- encoding ----------------------------------------------------------- */

#define PROP(k, v)                                                                                 \
    {                                                                                              \
        (k), sizeof(k) - 1, (v), sizeof(v) - 1                                                     \
    }
#define PROP_NULL(k)                                                                               \
    {                                                                                              \
        (k), sizeof(k) - 1, NULL, 0                                                                \
    }

static const struct hub_iothub_prop node_props[] = {
    PROP("$.mid", "mid-1"), PROP("$.cid", "cid 1"),  PROP("$.ct", "application/json"),
    PROP("$.ce", "utf-8"),  PROP("alert", "yes&no"), PROP("k 2", "v/2"),
};
#define N_NODE (sizeof(node_props) / sizeof(node_props[0]))

static void test_encode_matches_node_capture(void **state)
{
    (void)state;
    char buf[256];
    struct hub_err err = {0};
    size_t want = strlen(NODE_BAG);
    assert_int_equal(hub_iothub_props_encoded_len(node_props, N_NODE), want);
    assert_int_equal(hub_iothub_props_encode(buf, sizeof(buf), node_props, N_NODE, &err),
                     (int)want);
    assert_string_equal(buf, NODE_BAG);
    /* exact fit needs room for the NUL */
    assert_int_equal(hub_iothub_props_encode(buf, want + 1, node_props, N_NODE, &err), (int)want);
    assert_int_equal(hub_iothub_props_encode(buf, want, node_props, N_NODE, &err), HUB_E_TOO_LARGE);
}

struct enc_case {
    const char *name;
    struct hub_iothub_prop props[3];
    size_t n;
    const char *want;
};

static const struct enc_case enc_cases[] = {
    {"none", {{0}}, 0, ""},
    {"null_and_empty", {PROP_NULL("a"), PROP("b", "")}, 2, "a&b="},
    {"separators_in_value", {PROP("k", "x=y&z/%+ ~")}, 1, "k=x%3Dy%26z%2F%25%2B%20~"},
    {"unreserved_untouched", {PROP("Az09-._~", "Az09-._~")}, 1, "Az09-._~=Az09-._~"},
    {"utf8", {PROP("\xc3\xa9", "\xe2\x82\xac")}, 1, "%C3%A9=%E2%82%AC"},
    {"hash_plus_question", {PROP("q", "#+?")}, 1, "q=%23%2B%3F"},
};

static void test_encode_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(enc_cases) / sizeof(enc_cases[0]); i++) {
        const struct enc_case *ec = &enc_cases[i];
        char buf[128];
        struct hub_err err = {0};
        print_message("case %s\n", ec->name);
        assert_int_equal(hub_iothub_props_encoded_len(ec->props, ec->n), strlen(ec->want));
        assert_int_equal(hub_iothub_props_encode(buf, sizeof(buf), ec->props, ec->n, &err),
                         (int)strlen(ec->want));
        assert_string_equal(buf, ec->want);
    }
    char buf[16];
    struct hub_err err = {0};
    const struct hub_iothub_prop empty_key[] = {PROP("", "v")};
    assert_int_equal(hub_iothub_props_encode(buf, sizeof(buf), empty_key, 1, &err),
                     HUB_E_INVALID_ARG);
}

/* What we encode, our parser (and so Node's, which decodes the same way)
 * reads back unchanged, including values full of separators. */
static void test_encode_parse_round_trip(void **state)
{
    (void)state;
    const struct hub_iothub_prop in[] = {
        PROP("$.mid", "m/1&2=3"),
        PROP("$.to", "/devices/d/messages/devicebound"),
        PROP("$.exp", "2026-01-01T00:00:00.000Z"),
        PROP("$.uid", "u"),
        PROP_NULL("flag"),
        PROP("empty", ""),
        PROP("with space", "a b+c%d"),
        PROP("\xc3\xa9t\xc3\xa9", "\xf0\x9f\x98\x80"),
    };
    const size_t n = sizeof(in) / sizeof(in[0]);
    char buf[512];
    struct hub_err err = {0};
    int len = hub_iothub_props_encode(buf, sizeof(buf), in, n, &err);
    assert_true(len > 0);
    assert_null(strchr(buf, '/'));
    assert_null(strchr(buf, '#'));
    assert_null(strchr(buf, '+'));
    assert_int_equal(hub_iothub_props_parse(buf, (size_t)len, &props, &err), 0);
    assert_sys(HUB_IOTHUB_SYS_MID, "m/1&2=3");
    assert_sys(HUB_IOTHUB_SYS_TO, "/devices/d/messages/devicebound");
    assert_sys(HUB_IOTHUB_SYS_EXP, "2026-01-01T00:00:00.000Z");
    assert_sys(HUB_IOTHUB_SYS_UID, "u");
    assert_int_equal(props.app_count, 4);
    assert_app("flag", NULL);
    assert_app("empty", "");
    assert_app("with space", "a b+c%d");
    assert_app("\xc3\xa9t\xc3\xa9", "\xf0\x9f\x98\x80");
}

static void test_c2d_topic(void **state)
{
    (void)state;
    char buf[256];
    struct hub_err err = {0};
    const char *want0 = "devices/dev1/messages/devicebound/";
    assert_int_equal(hub_iothub_c2d_topic_len("dev1", NULL, 0), strlen(want0));
    assert_int_equal(hub_iothub_c2d_topic_build(buf, sizeof(buf), "dev1", NULL, 0, &err),
                     (int)strlen(want0));
    assert_string_equal(buf, want0);

    const char *want = "devices/dev1/messages/devicebound/" NODE_BAG;
    size_t wl = strlen(want);
    assert_int_equal(hub_iothub_c2d_topic_len("dev1", node_props, N_NODE), wl);
    assert_int_equal(hub_iothub_c2d_topic_build(buf, sizeof(buf), "dev1", node_props, N_NODE, &err),
                     (int)wl);
    assert_string_equal(buf, want);
    assert_int_equal(hub_iothub_c2d_topic_build(buf, wl + 1, "dev1", node_props, N_NODE, &err),
                     (int)wl);
    for (size_t cap = 0; cap <= wl; cap++)
        assert_int_equal(hub_iothub_c2d_topic_build(buf, cap, "dev1", node_props, N_NODE, &err),
                         HUB_E_TOO_LARGE);

    /* Node reads the bag as '/'-segment 4: it must be exactly that */
    assert_int_equal(hub_iothub_c2d_topic_build(buf, sizeof(buf), "dev1", node_props, N_NODE, &err),
                     (int)wl);
    char *seg = buf;
    for (int i = 0; i < 4; i++) {
        seg = strchr(seg, '/');
        assert_non_null(seg);
        seg++;
    }
    assert_null(strchr(seg, '/'));
    assert_int_equal(hub_iothub_props_parse(seg, strlen(seg), &props, &err), 0);
    assert_sys(HUB_IOTHUB_SYS_CT, "application/json");
    assert_app("k 2", "v/2");

    /* ids that would break the topic */
    const char *bad_ids[] = {"", "a/b", "a+b", "a#b", "\xed\xa0\x80"};
    for (size_t i = 0; i < sizeof(bad_ids) / sizeof(bad_ids[0]); i++)
        assert_int_equal(hub_iothub_c2d_topic_build(buf, sizeof(buf), bad_ids[i], NULL, 0, &err),
                         HUB_E_INVALID_ARG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_node_capture),
        cmocka_unit_test(test_parse_every_system_property),
        cmocka_unit_test(test_parse_good),
        cmocka_unit_test(test_parse_null_vs_empty_system),
        cmocka_unit_test(test_parse_bad),
        cmocka_unit_test(test_parse_limits),
        cmocka_unit_test(test_encode_matches_node_capture),
        cmocka_unit_test(test_encode_cases),
        cmocka_unit_test(test_encode_parse_round_trip),
        cmocka_unit_test(test_c2d_topic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
