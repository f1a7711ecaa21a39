/*
 * dpsdev: the DPS username and topic grammar (reference §7), table-driven.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <string.h>

#include "dpsdev/dpsdev.h"

static void test_username(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        int rc;
        const char *scope, *reg, *api;
    } cases[] = {
        /* captured from azure-iot-provisioning-device 1.9.1: no '?' */
        {"0ne00000001/registrations/dev1/"
         "api-version=2019-03-31&ClientVersion=azure-iot-provisioning-device%2F1.9.1",
         0, "0ne00000001", "dev1", "2019-03-31"},
        {"0ne00000001/registrations/dev1/?api-version=2021-06-01", 0, "0ne00000001", "dev1",
         "2021-06-01"},
        {"0ne00000001/registrations/dev1", 0, "0ne00000001", "dev1", ""},
        {"0ne00000001/registrations/dev1/ClientVersion=x", 0, "0ne00000001", "dev1", ""},
        {"0ne00000001/devices/dev1/api-version=1", HUB_E_PARSE, NULL, NULL, NULL},
        {"0ne00000001", HUB_E_PARSE, NULL, NULL, NULL},
        {"/registrations/dev1/api-version=1", HUB_E_PARSE, NULL, NULL, NULL},
        {"0ne00000001/registrations//api-version=1", HUB_E_PARSE, NULL, NULL, NULL},
        {"0ne00000001/registrations/de v1/api-version=1", HUB_E_PARSE, NULL, NULL, NULL},
        {"0ne00000001/registrations/", HUB_E_PARSE, NULL, NULL, NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct hub_dpsdev_username u;
        struct hub_err err = {0};
        int rc = hub_dpsdev_username_parse(cases[i].in, strlen(cases[i].in), &u, &err);
        if (rc != cases[i].rc)
            fail_msg("case %zu (%s): rc %d want %d (%s)", i, cases[i].in, rc, cases[i].rc, err.msg);
        if (rc == 0) {
            assert_string_equal(u.id_scope, cases[i].scope);
            assert_string_equal(u.registration_id, cases[i].reg);
            assert_string_equal(u.api_version, cases[i].api);
        }
    }
}

static void test_topics(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        int rc;
        enum hub_dpsdev_topic_kind kind;
        const char *rid, *op;
    } cases[] = {
        {"$dps/registrations/PUT/iotdps-register/?$rid=1", 0, HUB_DPSDEV_TOPIC_REGISTER, "1", ""},
        {"$dps/registrations/GET/iotdps-get-operationstatus/?$rid=2&operationId=4.a.b", 0,
         HUB_DPSDEV_TOPIC_STATUS, "2", "4.a.b"},
        {"$dps/registrations/GET/iotdps-get-operationstatus/?operationId=op&x=y&$rid=3", 0,
         HUB_DPSDEV_TOPIC_STATUS, "3", "op"},
        {"$dps/registrations/GET/iotdps-get-operationstatus/?$rid=2", HUB_E_PARSE, 0, NULL, NULL},
        {"$dps/registrations/PUT/iotdps-register/?x=1", HUB_E_PARSE, 0, NULL, NULL},
        {"$dps/registrations/PUT/iotdps-register/?$rid=", HUB_E_PARSE, 0, NULL, NULL},
        {"$dps/registrations/PUT/iotdps-register", HUB_E_PARSE, 0, NULL, NULL},
        {"devices/dev1/messages/events/", HUB_E_PARSE, 0, NULL, NULL},
        {"$dps/registrations/res/200/?$rid=1", HUB_E_PARSE, 0, NULL, NULL},
        {"$dps/registrations/PUT/iotdps-register/?$rid="
         "12345678901234567890123456789012345678901234567890123456789012345",
         HUB_E_TOO_LARGE, 0, NULL, NULL},
        /* $rid and operationId are echoed into response topics: no
         * wildcards, separators, spaces or controls. */
        {"$dps/registrations/PUT/iotdps-register/?$rid=1#", HUB_E_PARSE, 0, NULL, NULL},
        {"$dps/registrations/PUT/iotdps-register/?$rid=a/b", HUB_E_PARSE, 0, NULL, NULL},
        {"$dps/registrations/PUT/iotdps-register/?$rid=\x01", HUB_E_PARSE, 0, NULL, NULL},
        {"$dps/registrations/GET/iotdps-get-operationstatus/?$rid=2&operationId=a b", HUB_E_PARSE,
         0, NULL, NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct hub_dpsdev_topic t;
        struct hub_err err = {0};
        int rc = hub_dpsdev_topic_parse(cases[i].in, strlen(cases[i].in), &t, &err);
        if (rc != cases[i].rc)
            fail_msg("case %zu (%s): rc %d want %d (%s)", i, cases[i].in, rc, cases[i].rc, err.msg);
        if (rc == 0) {
            assert_int_equal(t.kind, cases[i].kind);
            assert_string_equal(t.rid, cases[i].rid);
            assert_string_equal(t.operation_id, cases[i].op);
        }
    }
}

static void test_response_topic(void **state)
{
    (void)state;
    char buf[128];
    assert_int_equal(hub_dpsdev_response_topic(buf, sizeof(buf), 202, "7", 1),
                     (int)strlen("$dps/registrations/res/202/?$rid=7&retry-after=1"));
    assert_string_equal(buf, "$dps/registrations/res/202/?$rid=7&retry-after=1");
    assert_true(hub_dpsdev_response_topic(buf, sizeof(buf), 200, "7", -1) > 0);
    assert_string_equal(buf, "$dps/registrations/res/200/?$rid=7");
    assert_int_equal(hub_dpsdev_response_topic(buf, 10, 200, "7", -1), HUB_E_TOO_LARGE);
}

static void test_reason_table(void **state)
{
    (void)state;
    assert_string_equal(hub_dpsdev_reason_name(HUB_DPSDEV_R_CN_MISMATCH), "CN_MISMATCH");
    assert_int_equal(hub_dpsdev_reason_status(HUB_DPSDEV_R_DISABLED), 401);
    assert_int_equal(hub_dpsdev_reason_code(HUB_DPSDEV_R_NO_ENROLLMENT), 401002);
    assert_int_equal(hub_dpsdev_reason_status(HUB_DPSDEV_R_OPERATION_UNKNOWN), 404);
    assert_string_equal(hub_dpsdev_reason_name(HUB_DPSDEV_R__COUNT), "UNKNOWN");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_username),
        cmocka_unit_test(test_topics),
        cmocka_unit_test(test_response_topic),
        cmocka_unit_test(test_reason_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
