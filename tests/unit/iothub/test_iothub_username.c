/*
 * CONNECT username parsing: the forms captured from real SDKs (reference §1)
 * and one row per malformed input with its code.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "iothub/iothub.h"

struct good_case {
    const char *name;
    const char *in;
    const char *host, *device, *module; /* module NULL: none */
    const char *api, *client_type, *model;
};

static const struct good_case good_cases[] = {
    {"node_captured",
     "localhost/dev1/?api-version=2021-04-12&DeviceClientType=azure-iot-device%2F1.18.4%20(node%"
     "20v20.20.2%3B%20Debian%2012%3B%20x64)",
     "localhost", "dev1", NULL, "2021-04-12",
     "azure-iot-device/1.18.4 (node v20.20.2; Debian 12; x64)", ""},
    {"node_model_id_unencoded_before_client_type",
     "localhost/dev1/?api-version=2021-04-12&model-id=dtmi:com:example:Thermostat;1&"
     "DeviceClientType=azure-iot-device%2F1.18.4%20(node%20v20.20.2%3B%20Debian%2012%3B%20x64)",
     "localhost", "dev1", NULL, "2021-04-12",
     "azure-iot-device/1.18.4 (node v20.20.2; Debian 12; x64)", "dtmi:com:example:Thermostat;1"},
    {"c_sdk_model_id_last_encoded",
     "myhub.azure-devices.net/dev1/?api-version=2020-09-30&DeviceClientType=iothubclient%2F1.11.0%"
     "20(native%3B%20Linux%3B%20x86_64)&model-id=dtmi%3Acom%3Aexample%3AThermostat%3B1",
     "myhub.azure-devices.net", "dev1", NULL, "2020-09-30",
     "iothubclient/1.11.0 (native; Linux; x86_64)", "dtmi:com:example:Thermostat;1"},
    {"old_c_sdk_without_question_mark",
     "myhub.azure-devices.net/dev1/api-version=2016-11-14&DeviceClientType=iothubclient%2F1.1.7",
     "myhub.azure-devices.net", "dev1", NULL, "2016-11-14", "iothubclient/1.1.7", ""},
    {"node_module",
     "localhost/dev1/mod1/?api-version=2021-04-12&DeviceClientType=azure-iot-device%2F1.18.4",
     "localhost", "dev1", "mod1", "2021-04-12", "azure-iot-device/1.18.4", ""},
    {"module_without_question_mark", "h/dev1/mod1/api-version=2018-06-30", "h", "dev1", "mod1",
     "2018-06-30", "", ""},
    {"module_question_mark_no_slash", "h/dev1/mod1?api-version=1", "h", "dev1", "mod1", "1", "",
     ""},
    {"device_question_mark_no_slash", "h/dev1?api-version=1", "h", "dev1", NULL, "1", "", ""},
    {"no_query", "h/dev1", "h", "dev1", NULL, "", "", ""},
    {"no_query_trailing_slash", "h/dev1/", "h", "dev1", NULL, "", "", ""},
    {"module_no_query", "h/dev1/mod1", "h", "dev1", "mod1", "", "", ""},
    {"keys_any_order_unknown_ignored", "h/d/?foo=bar&DeviceClientType=x&z&api-version=1", "h", "d",
     NULL, "1", "x", ""},
    {"plus_is_not_space", "h/d/?DeviceClientType=a+b%2bc", "h", "d", NULL, "", "a+b+c", ""},
    {"lowercase_escapes", "h/d/?DeviceClientType=a%2fb", "h", "d", NULL, "", "a/b", ""},
    {"empty_pairs_skipped", "h/d/?&&api-version=1&", "h", "d", NULL, "1", "", ""},
    {"device_id_special_chars", "h/my-dev.1:x=y/?api-version=1", "h", "my-dev.1:x=y", NULL, "1", "",
     ""},
    {"host_with_port", "localhost:8883/dev1/?api-version=1", "localhost:8883", "dev1", NULL, "1",
     "", ""},
    {"device_id_kept_verbatim", "h/a%41/?api-version=1", "h", "a%41", NULL, "1", "", ""},
};

static void test_username_good(void **state)
{
    (void)state;
    static struct hub_iothub_username u;
    for (size_t i = 0; i < sizeof(good_cases) / sizeof(good_cases[0]); i++) {
        const struct good_case *gc = &good_cases[i];
        struct hub_err err = {0};
        int rc = hub_iothub_username_parse(gc->in, strlen(gc->in), &u, &err);
        if (rc != 0)
            fail_msg("%s: rc %d: %s", gc->name, rc, err.msg);
        print_message("case %s\n", gc->name);
        assert_string_equal(u.host, gc->host);
        assert_string_equal(u.device_id, gc->device);
        assert_int_equal(u.has_module, gc->module != NULL);
        assert_string_equal(u.module_id, gc->module ? gc->module : "");
        assert_string_equal(u.api_version, gc->api);
        assert_string_equal(u.client_type, gc->client_type);
        assert_string_equal(u.model_id, gc->model);
    }
}

struct bad_case {
    const char *name;
    const char *in;
    int rc;
    const char *msg;
};

static const struct bad_case bad_cases[] = {
    {"empty", "", HUB_E_PARSE, "no device segment"},
    {"host_only", "localhost", HUB_E_PARSE, "no device segment"},
    {"empty_host", "/dev1/?api-version=1", HUB_E_PARSE, "empty host segment"},
    {"empty_device", "h//?api-version=1", HUB_E_PARSE, "empty device id segment"},
    {"empty_device_question_mark", "h/?api-version=1", HUB_E_PARSE, "empty device id segment"},
    {"query_instead_of_device", "h/api-version=2016-11-14", HUB_E_PARSE,
     "no device segment before its query"},
    {"empty_module", "h/dev1//?api-version=1", HUB_E_PARSE, "empty module id segment"},
    {"extra_segment", "h/dev1/mod1/extra/?api-version=1", HUB_E_PARSE,
     "unexpected segment after the module id"},
    {"bad_escape", "h/d/?api-version=%zz", HUB_E_PARSE, "username api-version has a bad percent"},
    {"truncated_escape", "h/d/?DeviceClientType=ab%2", HUB_E_PARSE,
     "username DeviceClientType has a bad percent-escape at offset 2"},
    {"escape_nul", "h/d/?model-id=a%00b", HUB_E_PARSE, "username model-id contains %00"},
    {"unknown_key_bad_escape", "h/d/?x=%g0&api-version=1", HUB_E_PARSE,
     "username query parameter has a bad percent-escape"},
    {"invalid_utf8_after_decoding", "h/d/?DeviceClientType=%ff", HUB_E_PARSE,
     "username DeviceClientType is not well-formed UTF-8"},
    {"surrogate_after_decoding", "h/d/?DeviceClientType=%ed%a0%80", HUB_E_PARSE, "surrogate"},
    {"duplicate_api_version", "h/d/?api-version=1&api-version=2", HUB_E_PARSE,
     "username has api-version twice"},
    {"duplicate_model_id", "h/d/?model-id=a&x=1&model-id=a", HUB_E_PARSE,
     "username has model-id twice"},
    {"api_version_too_long",
     "h/d/?api-version=0123456789012345678901234567890123456789012345678901234567890123X",
     HUB_E_TOO_LARGE, "username api-version is longer than 64 bytes"},
};

static void test_username_bad(void **state)
{
    (void)state;
    static struct hub_iothub_username u;
    for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
        const struct bad_case *bc = &bad_cases[i];
        struct hub_err err = {0};
        int rc = hub_iothub_username_parse(bc->in, strlen(bc->in), &u, &err);
        if (rc != bc->rc || strstr(err.msg, bc->msg) == NULL)
            fail_msg("%s: rc %d msg \"%s\"; want %d \"%s\"", bc->name, rc, err.msg, bc->rc,
                     bc->msg);
    }
}

static void test_username_lengths(void **state)
{
    (void)state;
    static struct hub_iothub_username u;
    static char in[HUB_IOTHUB_USERNAME_MAX + 64];
    struct hub_err err = {0};
    char id[HUB_IOTHUB_ID_MAX + 2];

    /* device id: 128 is Azure's limit and fits; 129 does not */
    memset(id, 'd', HUB_IOTHUB_ID_MAX);
    id[HUB_IOTHUB_ID_MAX] = '\0';
    snprintf(in, sizeof(in), "h/%s/?api-version=1", id);
    assert_int_equal(hub_iothub_username_parse(in, strlen(in), &u, &err), 0);
    assert_int_equal(strlen(u.device_id), HUB_IOTHUB_ID_MAX);
    memset(id, 'd', HUB_IOTHUB_ID_MAX + 1);
    id[HUB_IOTHUB_ID_MAX + 1] = '\0';
    snprintf(in, sizeof(in), "h/%s/?api-version=1", id);
    assert_int_equal(hub_iothub_username_parse(in, strlen(in), &u, &err), HUB_E_TOO_LARGE);
    assert_non_null(strstr(err.msg, "device id is longer than 128"));
    snprintf(in, sizeof(in), "h/d/%s", id);
    assert_int_equal(hub_iothub_username_parse(in, strlen(in), &u, &err), HUB_E_TOO_LARGE);
    assert_non_null(strstr(err.msg, "module id is longer than 128"));

    /* whole username */
    memset(in, 'x', sizeof(in));
    memcpy(in, "h/d/?DeviceClientType=", 22);
    assert_int_equal(hub_iothub_username_parse(in, HUB_IOTHUB_USERNAME_MAX + 1, &u, &err),
                     HUB_E_TOO_LARGE);
    /* a long client type is over its own limit, not the username's */
    assert_int_equal(hub_iothub_username_parse(in, HUB_IOTHUB_USERNAME_MAX, &u, &err),
                     HUB_E_TOO_LARGE);
    assert_non_null(strstr(err.msg, "DeviceClientType is longer than 512"));
    assert_int_equal(hub_iothub_username_parse(in, 22 + HUB_IOTHUB_CLIENT_TYPE_MAX, &u, &err), 0);
    assert_int_equal(strlen(u.client_type), HUB_IOTHUB_CLIENT_TYPE_MAX);

    /* a NUL inside the given length is refused, not a silent truncation */
    assert_int_equal(hub_iothub_username_parse("h/d\0x/?a=1", 10, &u, &err), HUB_E_PARSE);
    assert_non_null(strstr(err.msg, "NUL"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_username_good),
        cmocka_unit_test(test_username_bad),
        cmocka_unit_test(test_username_lengths),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
