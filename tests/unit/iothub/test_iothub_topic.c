/*
 * Topic classification (device PUBLISH), owner checks, SUBSCRIBE filters,
 * $rid / $version helpers and the topic builders. Topic strings are the
 * reference's captured examples (§2) where one exists.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "iothub/iothub.h"

static void assert_view(struct hub_mqtt_str v, const char *want)
{
    if (want == NULL) {
        assert_int_equal(v.len, 0);
        return;
    }
    if (v.len != strlen(want) || (v.len && memcmp(v.ptr, want, v.len) != 0))
        fail_msg("view '%.*s' != '%s'", (int)v.len, v.ptr ? v.ptr : "", want);
}

struct topic_case {
    const char *name;
    const char *topic;
    int rc;
    enum hub_iothub_topic_kind kind;
    const char *device, *module, *bag, *rid;
    int status;
};

#define T_TEL(n, t, d, m, b)                                                                       \
    {                                                                                              \
        n, t, 0, HUB_IOTHUB_TOPIC_TELEMETRY, d, m, b, NULL, 0                                      \
    }
#define T_REQ(n, t, k, rid)                                                                        \
    {                                                                                              \
        n, t, 0, k, NULL, NULL, NULL, rid, 0                                                       \
    }
#define T_UNKNOWN(n, t)                                                                            \
    {                                                                                              \
        n, t, 0, HUB_IOTHUB_TOPIC_UNKNOWN, NULL, NULL, NULL, NULL, 0                               \
    }
#define T_BAD(n, t)                                                                                \
    {                                                                                              \
        n, t, HUB_E_PARSE, HUB_IOTHUB_TOPIC_UNKNOWN, NULL, NULL, NULL, NULL, 0                     \
    }

static const struct topic_case topic_cases[] = {
    /* telemetry */
    T_TEL("events_captured",
          "devices/dev1/messages/events/"
          "%24.mid=mid-1&%24.cid=cid%201&%24.ct=application%2Fjson&%24.ce=utf-8&alert=yes%26no&k%"
          "202=v%2F2",
          "dev1", NULL,
          "%24.mid=mid-1&%24.cid=cid%201&%24.ct=application%2Fjson&%24.ce=utf-8&alert=yes%26no&k%"
          "202=v%2F2"),
    T_TEL("events_empty_bag", "devices/dev1/messages/events/", "dev1", NULL, ""),
    T_TEL("events_no_slash", "devices/dev1/messages/events", "dev1", NULL, ""),
    T_TEL("events_bag_trailing_slash", "devices/dev1/messages/events/a=b/", "dev1", NULL, "a=b"),
    T_TEL("module_output_trailing_slash", "devices/dev1/modules/mod1/messages/events/%24.on=out1/",
          "dev1", "mod1", "%24.on=out1"),
    T_TEL("module_events_empty", "devices/dev1/modules/mod1/messages/events/", "dev1", "mod1", ""),
    T_TEL("device_id_special", "devices/my-dev.1:x=y/messages/events/", "my-dev.1:x=y", NULL, ""),
    /* twin and methods */
    T_REQ("twin_get", "$iothub/twin/GET/?$rid=42", HUB_IOTHUB_TOPIC_TWIN_GET, "42"),
    T_REQ("twin_get_uuid", "$iothub/twin/GET/?$rid=9f1c2a5e-0b1d-4c3e-8f2a-1b2c3d4e5f60",
          HUB_IOTHUB_TOPIC_TWIN_GET, "9f1c2a5e-0b1d-4c3e-8f2a-1b2c3d4e5f60"),
    T_REQ("twin_get_no_slash", "$iothub/twin/GET?$rid=1", HUB_IOTHUB_TOPIC_TWIN_GET, "1"),
    T_REQ("twin_get_encoded_key", "$iothub/twin/GET/?%24rid=5", HUB_IOTHUB_TOPIC_TWIN_GET, "5"),
    T_REQ("twin_patch_reported", "$iothub/twin/PATCH/properties/reported/?$rid=7",
          HUB_IOTHUB_TOPIC_TWIN_PATCH_REPORTED, "7"),
    T_REQ("twin_patch_reported_more_keys", "$iothub/twin/PATCH/properties/reported/?x=1&$rid=8",
          HUB_IOTHUB_TOPIC_TWIN_PATCH_REPORTED, "8"),
    {"method_response_captured", "$iothub/methods/res/200/?$rid=1", 0,
     HUB_IOTHUB_TOPIC_METHOD_RESPONSE, NULL, NULL, NULL, "1", 200},
    {"method_response_404", "$iothub/methods/res/404/?$rid=abc&x=y", 0,
     HUB_IOTHUB_TOPIC_METHOD_RESPONSE, NULL, NULL, NULL, "abc", 404},
    {"method_response_0", "$iothub/methods/res/0?$rid=r", 0, HUB_IOTHUB_TOPIC_METHOD_RESPONSE, NULL,
     NULL, NULL, "r", 0},
    /* unknown: the caller closes the connection */
    T_UNKNOWN("devicebound_from_device", "devices/dev1/messages/devicebound/"),
    T_UNKNOWN("events_suffix", "devices/dev1/messages/eventsX"),
    T_UNKNOWN("events2", "devices/dev1/messages/events2/"),
    T_UNKNOWN("device_only", "devices/dev1"),
    T_UNKNOWN("module_inputs", "devices/dev1/modules/m/inputs/x"),
    T_UNKNOWN("module_no_rest", "devices/dev1/modules/m"),
    T_UNKNOWN("plain", "foo"),
    T_UNKNOWN("twin_res_from_device", "$iothub/twin/res/200/?$rid=1"),
    T_UNKNOWN("desired_from_device", "$iothub/twin/PATCH/properties/desired/?$version=1"),
    T_UNKNOWN("method_post_from_device", "$iothub/methods/POST/x/?$rid=1"),
    T_UNKNOWN("twin_get_suffix", "$iothub/twin/GETX?$rid=1"),
    T_UNKNOWN("twin_get_extra_level", "$iothub/twin/GET/extra/?$rid=1"),
    T_UNKNOWN("method_res_extra_level", "$iothub/methods/res/200/x/?$rid=1"),
    T_UNKNOWN("lowercase_iothub", "$IOTHUB/twin/GET/?$rid=1"),
    /* known topic, malformed */
    T_BAD("events_empty_device", "devices//messages/events/"),
    T_BAD("events_empty_module", "devices/d/modules//messages/events/"),
    T_BAD("twin_get_no_rid", "$iothub/twin/GET/"),
    T_BAD("twin_get_empty_rid", "$iothub/twin/GET/?$rid="),
    T_BAD("twin_get_rid_without_value", "$iothub/twin/GET/?$rid"),
    T_BAD("twin_patch_no_rid", "$iothub/twin/PATCH/properties/reported/?x=1"),
    T_BAD("method_res_status_text", "$iothub/methods/res/abc/?$rid=1"),
    T_BAD("method_res_status_empty", "$iothub/methods/res//?$rid=1"),
    T_BAD("method_res_status_too_big", "$iothub/methods/res/1234567890/?$rid=1"),
    T_BAD("method_res_no_rid", "$iothub/methods/res/200/"),
};

static void test_topic_classify(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(topic_cases) / sizeof(topic_cases[0]); i++) {
        const struct topic_case *tc = &topic_cases[i];
        struct hub_iothub_topic t;
        struct hub_err err = {0};
        int rc = hub_iothub_topic_classify(tc->topic, strlen(tc->topic), &t, &err);
        if (rc != tc->rc || t.kind != tc->kind)
            fail_msg("%s: rc %d kind %d (%s); want rc %d kind %d", tc->name, rc, t.kind, err.msg,
                     tc->rc, tc->kind);
        if (rc < 0) {
            assert_int_equal(err.code, HUB_E_PARSE);
            continue;
        }
        print_message("case %s\n", tc->name);
        assert_view(t.device_id, tc->device);
        assert_view(t.module_id, tc->module);
        assert_view(t.bag, tc->bag);
        assert_view(t.rid, tc->rid);
        assert_int_equal(t.status, tc->status);
    }
}

static void test_topic_bag_feeds_props_parser(void **state)
{
    (void)state;
    static struct hub_iothub_props props;
    const char *topic = "devices/dev1/modules/mod1/messages/events/%24.on=out1&temp=21.5/";
    struct hub_iothub_topic t;
    struct hub_err err = {0};
    assert_int_equal(hub_iothub_topic_classify(topic, strlen(topic), &t, &err), 0);
    assert_int_equal(hub_iothub_props_parse(t.bag.ptr, t.bag.len, &props, &err), 0);
    assert_string_equal(props.sys[HUB_IOTHUB_SYS_ON].value, "out1");
    assert_string_equal(hub_iothub_props_app_find0(&props, "temp")->value, "21.5");
}

struct owner_case {
    const char *topic;
    const char *device, *module;
    int rc;
};

static const struct owner_case owner_cases[] = {
    {"devices/dev1/messages/events/", "dev1", NULL, 0},
    {"devices/dev2/messages/events/", "dev1", NULL, HUB_E_FORBIDDEN}, /* another device */
    {"devices/Dev1/messages/events/", "dev1", NULL, HUB_E_FORBIDDEN}, /* ids are case-sensitive */
    {"devices/dev1x/messages/events/", "dev1", NULL, HUB_E_FORBIDDEN},
    {"devices/dev/messages/events/", "dev1", NULL, HUB_E_FORBIDDEN},
    {"devices/dev1/modules/m1/messages/events/", "dev1", "m1", 0},
    {"devices/dev1/modules/m1/messages/events/", "dev1", NULL, HUB_E_FORBIDDEN},
    {"devices/dev1/modules/m2/messages/events/", "dev1", "m1", HUB_E_FORBIDDEN},
    {"devices/dev1/messages/events/", "dev1", "m1", HUB_E_FORBIDDEN}, /* module uses device form */
    {"$iothub/twin/GET/?$rid=1", "dev1", NULL, 0},
    {"$iothub/methods/res/200/?$rid=1", "dev1", "m1", 0},
};

static void test_topic_owner_check(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(owner_cases) / sizeof(owner_cases[0]); i++) {
        const struct owner_case *oc = &owner_cases[i];
        struct hub_iothub_topic t;
        struct hub_err err = {0};
        assert_int_equal(hub_iothub_topic_classify(oc->topic, strlen(oc->topic), &t, &err), 0);
        int rc = hub_iothub_topic_owner_check(&t, oc->device, oc->module, &err);
        if (rc != oc->rc)
            fail_msg("%s as %s/%s: rc %d, want %d", oc->topic, oc->device,
                     oc->module ? oc->module : "-", rc, oc->rc);
    }
    struct hub_iothub_topic t;
    struct hub_err err = {0};
    const char *other = "devices/dev2/messages/events/";
    assert_int_equal(hub_iothub_topic_classify(other, strlen(other), &t, &err), 0);
    hub_iothub_topic_owner_check(&t, "dev1", NULL, &err);
    assert_string_equal(err.msg, "telemetry topic is for 'dev2', connection is 'dev1'");
}

struct filter_case {
    const char *filter;
    int rc;
    enum hub_iothub_filter_kind kind;
    const char *device;
};

static const struct filter_case filter_cases[] = {
    {"devices/dev1/messages/devicebound/#", 0, HUB_IOTHUB_FILTER_C2D, "dev1"},
    {"$iothub/twin/res/#", 0, HUB_IOTHUB_FILTER_TWIN_RES, NULL},
    {"$iothub/twin/PATCH/properties/desired/#", 0, HUB_IOTHUB_FILTER_TWIN_DESIRED, NULL},
    {"$iothub/methods/POST/#", 0, HUB_IOTHUB_FILTER_METHODS_POST, NULL},
    {"devices/dev1/messages/devicebound/+", 0, HUB_IOTHUB_FILTER_UNSUPPORTED, NULL},
    {"devices/dev1/messages/devicebound/", 0, HUB_IOTHUB_FILTER_UNSUPPORTED, NULL},
    {"devices/+/messages/devicebound/#", 0, HUB_IOTHUB_FILTER_UNSUPPORTED, NULL},
    {"devices/dev1/modules/m1/messages/devicebound/#", 0, HUB_IOTHUB_FILTER_UNSUPPORTED, NULL},
    {"devices/dev1/messages/events/#", 0, HUB_IOTHUB_FILTER_UNSUPPORTED, NULL},
    {"#", 0, HUB_IOTHUB_FILTER_UNSUPPORTED, NULL},
    {"$iothub/twin/res/+", 0, HUB_IOTHUB_FILTER_UNSUPPORTED, NULL},
    {"$iothub/twin/res", 0, HUB_IOTHUB_FILTER_UNSUPPORTED, NULL},
    {"$iothub/methods/POST/", 0, HUB_IOTHUB_FILTER_UNSUPPORTED, NULL},
    {"$iothub/methods/POST/reboot/#", 0, HUB_IOTHUB_FILTER_UNSUPPORTED, NULL},
    {"devices//messages/devicebound/#", HUB_E_PARSE, HUB_IOTHUB_FILTER_UNSUPPORTED, NULL},
};

static void test_filter_classify(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(filter_cases) / sizeof(filter_cases[0]); i++) {
        const struct filter_case *fc = &filter_cases[i];
        struct hub_iothub_filter f;
        struct hub_err err = {0};
        int rc = hub_iothub_filter_classify(fc->filter, strlen(fc->filter), &f, &err);
        if (rc != fc->rc || f.kind != fc->kind)
            fail_msg("%s: rc %d kind %d; want rc %d kind %d", fc->filter, rc, f.kind, fc->rc,
                     fc->kind);
        assert_view(f.device_id, fc->device);
    }
}

static void test_filter_owner_check(void **state)
{
    (void)state;
    struct hub_iothub_filter f;
    struct hub_err err = {0};
    const char *c2d = "devices/dev1/messages/devicebound/#";
    assert_int_equal(hub_iothub_filter_classify(c2d, strlen(c2d), &f, &err), 0);
    assert_int_equal(hub_iothub_filter_owner_check(&f, "dev1", NULL, &err), 0);
    assert_int_equal(hub_iothub_filter_owner_check(&f, "dev2", NULL, &err), HUB_E_FORBIDDEN);
    assert_string_equal(err.msg, "C2D filter is for 'dev1', connection is 'dev2'");
    assert_int_equal(hub_iothub_filter_owner_check(&f, "dev1", "m1", &err), HUB_E_FORBIDDEN);
    const char *twin = "$iothub/twin/res/#";
    assert_int_equal(hub_iothub_filter_classify(twin, strlen(twin), &f, &err), 0);
    assert_int_equal(hub_iothub_filter_owner_check(&f, "dev2", "m1", &err), 0);
}

static void test_rid_and_version_helpers(void **state)
{
    (void)state;
    struct hub_mqtt_str v;
    struct hub_err err = {0};
    int64_t ver = -1;
    const char *t = "$iothub/twin/res/204/?$rid=abc&$version=12";
    assert_int_equal(hub_iothub_rid_get0(t, strlen(t), &v, &err), 0);
    assert_view(v, "abc");
    assert_int_equal(hub_iothub_version_get(t, strlen(t), &ver, &err), 0);
    assert_int_equal(ver, 12);

    const char *d = "$iothub/twin/PATCH/properties/desired/?$version=9223372036854775807";
    assert_int_equal(hub_iothub_version_get(d, strlen(d), &ver, &err), 0);
    assert_true(ver == INT64_MAX);

    const char *bad_versions[] = {
        "$iothub/twin/res/200/?$rid=1",
        "$iothub/twin/PATCH/properties/desired/?$version=",
        "$iothub/twin/PATCH/properties/desired/?$version=-1",
        "$iothub/twin/PATCH/properties/desired/?$version=1x",
        "$iothub/twin/PATCH/properties/desired/?$version=9223372036854775808",
    };
    for (size_t i = 0; i < sizeof(bad_versions) / sizeof(bad_versions[0]); i++)
        assert_int_equal(
            hub_iothub_version_get(bad_versions[i], strlen(bad_versions[i]), &ver, &err),
            HUB_E_PARSE);

    const char *no_rid = "$iothub/twin/res/200/?$version=1";
    assert_int_equal(hub_iothub_rid_get0(no_rid, strlen(no_rid), &v, &err), HUB_E_PARSE);
    /* no '?': the whole string is the query */
    assert_int_equal(hub_iothub_query_get0("$rid=1&b=2", 10, "b", &v), 1);
    assert_view(v, "2");
    assert_int_equal(hub_iothub_query_get0("$rid=1&b=2", 10, "c", &v), 0);
    /* a key that merely starts like another does not match */
    assert_int_equal(hub_iothub_query_get0("?$ridx=1", 8, "$rid", &v), 0);
}

static void test_twin_res_topic_build(void **state)
{
    (void)state;
    char buf[128];
    struct hub_err err = {0};
    struct hub_mqtt_str rid = {"42", 2};
    const char *want = "$iothub/twin/res/200/?$rid=42";
    assert_int_equal(hub_iothub_twin_res_topic_build(buf, sizeof(buf), 200, rid, -1, &err),
                     (int)strlen(want));
    assert_string_equal(buf, want);

    /* rid is a view (from the request topic), not NUL-terminated */
    struct hub_mqtt_str uuid = {"9f1c-2a5e&rest", 9};
    want = "$iothub/twin/res/204/?$rid=9f1c-2a5e&$version=7";
    int n = hub_iothub_twin_res_topic_build(buf, sizeof(buf), 204, uuid, 7, &err);
    assert_int_equal(n, (int)strlen(want));
    assert_string_equal(buf, want);
    /* what we build, the helpers read back */
    struct hub_mqtt_str back;
    int64_t ver;
    assert_int_equal(hub_iothub_rid_get0(buf, (size_t)n, &back, &err), 0);
    assert_view(back, "9f1c-2a5e");
    assert_int_equal(hub_iothub_version_get(buf, (size_t)n, &ver, &err), 0);
    assert_int_equal(ver, 7);

    assert_int_equal(hub_iothub_twin_res_topic_build(buf, strlen(want) + 1, 204, uuid, 7, &err),
                     (int)strlen(want));
    assert_int_equal(hub_iothub_twin_res_topic_build(buf, strlen(want), 204, uuid, 7, &err),
                     HUB_E_TOO_LARGE);
    assert_int_equal(hub_iothub_twin_res_topic_build(buf, sizeof(buf), 99, rid, -1, &err),
                     HUB_E_INVALID_ARG);
    struct hub_mqtt_str bad_rids[] = {{"", 0}, {"a&b", 3}, {"a/b", 3}, {"a#", 2}, {"a\0b", 3}};
    for (size_t i = 0; i < sizeof(bad_rids) / sizeof(bad_rids[0]); i++)
        assert_int_equal(
            hub_iothub_twin_res_topic_build(buf, sizeof(buf), 200, bad_rids[i], -1, &err),
            HUB_E_INVALID_ARG);
}

static void test_desired_and_method_topic_build(void **state)
{
    (void)state;
    char buf[128];
    struct hub_err err = {0};
    const char *want = "$iothub/twin/PATCH/properties/desired/?$version=3";
    assert_int_equal(hub_iothub_twin_desired_topic_build(buf, sizeof(buf), 3, &err),
                     (int)strlen(want));
    assert_string_equal(buf, want);
    int64_t ver;
    assert_int_equal(hub_iothub_version_get(buf, strlen(buf), &ver, &err), 0);
    assert_int_equal(ver, 3);
    assert_int_equal(hub_iothub_twin_desired_topic_build(buf, sizeof(buf), -1, &err),
                     HUB_E_INVALID_ARG);
    assert_int_equal(hub_iothub_twin_desired_topic_build(buf, strlen(want), 3, &err),
                     HUB_E_TOO_LARGE);

    want = "$iothub/methods/POST/reboot/?$rid=1";
    assert_int_equal(hub_iothub_method_topic_build(buf, sizeof(buf), "reboot", "1", &err),
                     (int)strlen(want));
    assert_string_equal(buf, want);
    /* Node takes the method name from '/'-segment 3 */
    char copy[128];
    strcpy(copy, buf);
    char *seg = copy;
    for (int i = 0; i < 3; i++)
        seg = strchr(seg, '/') + 1;
    *strchr(seg, '/') = '\0';
    assert_string_equal(seg, "reboot");
    struct hub_mqtt_str rid;
    assert_int_equal(hub_iothub_rid_get0(buf, strlen(buf), &rid, &err), 0);
    assert_view(rid, "1");

    assert_int_equal(hub_iothub_method_topic_build(buf, strlen(want), "reboot", "1", &err),
                     HUB_E_TOO_LARGE);
    const char *bad_names[] = {"", "a/b", "a+", "#"};
    for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++)
        assert_int_equal(hub_iothub_method_topic_build(buf, sizeof(buf), bad_names[i], "1", &err),
                         HUB_E_INVALID_ARG);
    assert_int_equal(hub_iothub_method_topic_build(buf, sizeof(buf), "m", "1&x=2", &err),
                     HUB_E_INVALID_ARG);
    assert_int_equal(hub_iothub_method_topic_build(buf, sizeof(buf), "m", "", &err),
                     HUB_E_INVALID_ARG);
}

/* Every topic the hub builds is a valid MQTT PUBLISH topic. */
static void test_built_topics_are_mqtt_topics(void **state)
{
    (void)state;
    char topics[3][128];
    struct hub_err err = {0};
    struct hub_mqtt_str rid = {"r-1", 3};
    assert_true(hub_iothub_twin_res_topic_build(topics[0], 128, 200, rid, 5, &err) > 0);
    assert_true(hub_iothub_twin_desired_topic_build(topics[1], 128, 5, &err) > 0);
    assert_true(hub_iothub_method_topic_build(topics[2], 128, "getTemp", "77", &err) > 0);
    for (int i = 0; i < 3; i++) {
        uint8_t pkt[256];
        struct hub_mqtt_publish p = {.qos = 0, .topic = {topics[i], strlen(topics[i])}};
        int n = hub_mqtt_publish_encode(pkt, sizeof(pkt), &p, &err);
        assert_true(n > 0);
        struct hub_mqtt_packet back;
        assert_int_equal(hub_mqtt_decode(pkt, (size_t)n, 0, &back, &err), n);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_topic_classify),
        cmocka_unit_test(test_topic_bag_feeds_props_parser),
        cmocka_unit_test(test_topic_owner_check),
        cmocka_unit_test(test_filter_classify),
        cmocka_unit_test(test_filter_owner_check),
        cmocka_unit_test(test_rid_and_version_helpers),
        cmocka_unit_test(test_twin_res_topic_build),
        cmocka_unit_test(test_desired_and_method_topic_build),
        cmocka_unit_test(test_built_topics_are_mqtt_topics),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
