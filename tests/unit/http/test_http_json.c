/* The service API's JSON shapes (device identity, twin, CA certificate) and
 * the device query subset: pure mapping, no sockets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "http/json_map.h"

static struct hub_device sample_device(void)
{
    struct hub_device d;
    memset(&d, 0, sizeof(d));
    strcpy(d.id, "dev1");
    strcpy(d.generation_id, "638410284412353535");
    strcpy(d.etag, "MA==");
    d.status = HUB_DEVICE_DISABLED;
    strcpy(d.status_reason, "maintenance");
    d.status_updated = 1767225600; /* 2026-01-01T00:00:00Z */
    d.auth_type = HUB_AUTH_SELF_SIGNED;
    strcpy(d.primary_thumbprint, "97388663832D0393C9246CAB4FBA2C8677185A25");
    d.conn_state = HUB_CONN_CONNECTED;
    d.c2d_count = 3;
    return d;
}

static const char *str_at(json_t *root, const char *path)
{
    json_t *v = root;
    char buf[128];
    snprintf(buf, sizeof(buf), "%s", path);
    for (char *save = NULL, *k = strtok_r(buf, ".", &save); k != NULL && v != NULL;
         k = strtok_r(NULL, ".", &save))
        v = json_object_get(v, k);
    return v != NULL && json_is_string(v) ? json_string_value(v) : NULL;
}

static void test_device_json_has_azure_fields(void **state)
{
    (void)state;
    struct hub_device d = sample_device();
    json_t *j = hub_http__device_to_json(&d);
    assert_non_null(j);
    assert_string_equal(str_at(j, "deviceId"), "dev1");
    assert_string_equal(str_at(j, "generationId"), "638410284412353535");
    assert_string_equal(str_at(j, "etag"), "MA==");
    assert_string_equal(str_at(j, "status"), "disabled");
    assert_string_equal(str_at(j, "statusReason"), "maintenance");
    assert_string_equal(str_at(j, "statusUpdatedTime"), "2026-01-01T00:00:00Z");
    assert_string_equal(str_at(j, "connectionState"), "Connected");
    /* "never" is Azure's zero time, not null */
    assert_string_equal(str_at(j, "lastActivityTime"), "0001-01-01T00:00:00Z");
    assert_int_equal(json_integer_value(json_object_get(j, "cloudToDeviceMessageCount")), 3);
    assert_string_equal(str_at(j, "authentication.type"), "selfSigned");
    assert_string_equal(str_at(j, "authentication.x509Thumbprint.primaryThumbprint"),
                        "97388663832D0393C9246CAB4FBA2C8677185A25");
    json_t *auth = json_object_get(j, "authentication");
    assert_true(json_is_null(
        json_object_get(json_object_get(auth, "x509Thumbprint"), "secondaryThumbprint")));
    assert_true(json_is_null(json_object_get(json_object_get(auth, "symmetricKey"), "primaryKey")));
    assert_true(json_is_false(json_object_get(json_object_get(j, "capabilities"), "iotEdge")));
    json_decref(j);
}

static void test_twin_json_for_query(void **state)
{
    (void)state;
    struct hub_device d = sample_device();
    json_t *j = hub_http__device_twin_to_json(&d);
    assert_non_null(j);
    assert_string_equal(str_at(j, "deviceId"), "dev1");
    assert_string_equal(str_at(j, "deviceEtag"), "MA==");
    assert_string_equal(str_at(j, "authenticationType"), "selfSigned");
    assert_true(json_is_object(json_object_get(j, "tags")));
    assert_true(json_is_object(json_object_get(
        json_object_get(json_object_get(j, "properties"), "desired"), "$metadata")));
    json_decref(j);
}

static json_t *parse(const char *text)
{
    json_t *j = json_loads(text, 0, NULL);
    assert_non_null(j);
    return j;
}

static void test_device_from_json_sdk_bodies(void **state)
{
    (void)state;
    char why[256];
    struct hub_device d;
    /* Bodies the azure-iothub SDK sends (reference §4, captured). */
    json_t *j =
        parse("{\"deviceId\":\"devx\",\"authentication\":{\"type\":\"certificateAuthority\"}}");
    assert_int_equal(hub_http__device_from_json(j, "devx", &d, why, sizeof(why)), 0);
    assert_int_equal(d.auth_type, HUB_AUTH_CERT_AUTHORITY);
    assert_int_equal(d.status, HUB_DEVICE_ENABLED);
    json_decref(j);

    j = parse(
        "{\"deviceId\":\"devs\",\"authentication\":{\"x509Thumbprint\":{\"primaryThumbprint\":"
        "\"AB\",\"secondaryThumbprint\":\"CD\"},\"type\":\"selfSigned\"}}");
    assert_int_equal(hub_http__device_from_json(j, "devs", &d, why, sizeof(why)), 0);
    assert_int_equal(d.auth_type, HUB_AUTH_SELF_SIGNED);
    assert_string_equal(d.primary_thumbprint, "AB");
    assert_string_equal(d.secondary_thumbprint, "CD");
    json_decref(j);

    j = parse("{\"deviceId\":\"d\",\"status\":\"disabled\",\"statusReason\":\"r\","
              "\"authentication\":{\"type\":\"sas\",\"symmetricKey\":{\"primaryKey\":\"\","
              "\"secondaryKey\":\"\"}},\"capabilities\":{\"iotEdge\":true}}");
    assert_int_equal(hub_http__device_from_json(j, "d", &d, why, sizeof(why)), 0);
    assert_int_equal(d.status, HUB_DEVICE_DISABLED);
    assert_string_equal(d.status_reason, "r");
    assert_int_equal(d.auth_type, HUB_AUTH_SAS);
    assert_string_equal(d.primary_key, "");
    assert_true(d.iot_edge);
    json_decref(j);

    /* thumbprints without a type mean selfSigned, as the SDK assumes */
    j = parse("{\"authentication\":{\"x509Thumbprint\":{\"primaryThumbprint\":\"AB\"}}}");
    assert_int_equal(hub_http__device_from_json(j, "p", &d, why, sizeof(why)), 0);
    assert_int_equal(d.auth_type, HUB_AUTH_SELF_SIGNED);
    assert_string_equal(d.id, "p");
    json_decref(j);
}

static void test_device_from_json_refusals(void **state)
{
    (void)state;
    static const struct {
        const char *body;
        const char *why_has;
    } cases[] = {
        {"{\"deviceId\":\"other\"}", "differs"},
        {"{\"deviceId\":5}", "deviceId must be a string"},
        {"{\"status\":\"on\"}", "status must be"},
        {"{\"authentication\":{\"type\":\"password\"}}", "authentication.type must be"},
        {"{\"authentication\":[]}", "authentication must be an object"},
        {"{\"authentication\":{\"symmetricKey\":{\"primaryKey\":7}}}", "primaryKey must be"},
        {"{\"capabilities\":{\"iotEdge\":\"yes\"}}", "iotEdge must be"},
        {"{\"statusReason\":\"" /* 129 characters */
         "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
         "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}",
         "longer than 128"},
        {"{\"deviceId\":\"a\\u0000b\"}", "NUL"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *j = json_loads(cases[i].body, JSON_ALLOW_NUL, NULL);
        assert_non_null(j);
        char why[256] = "";
        struct hub_device d;
        assert_int_equal(hub_http__device_from_json(j, "dev", &d, why, sizeof(why)), -1);
        if (strstr(why, cases[i].why_has) == NULL)
            fail_msg("case %zu: '%s' does not mention '%s'", i, why, cases[i].why_has);
        json_decref(j);
    }
}

static void test_ca_json_shape(void **state)
{
    (void)state;
    struct hub_ca_cert ca;
    memset(&ca, 0, sizeof(ca));
    strcpy(ca.name, "contoso");
    ca.pem = "-----BEGIN CERTIFICATE-----\n...\n-----END CERTIFICATE-----\n";
    strcpy(ca.subject, "CN=Contoso Root CA");
    strcpy(ca.thumbprint_sha1, "97388663832D0393C9246CAB4FBA2C8677185A25");
    ca.not_after = 2208988799; /* Sat, 31 Dec 2039 23:59:59 GMT */
    strcpy(ca.verification_code, "75B86466DA34D2B04C0C4C9557A119687ADAE7D4732BDDB3");
    strcpy(ca.etag, "AAAAAAExpNs=");
    json_t *j = hub_http__ca_to_json(&ca, 0);
    assert_string_equal(str_at(j, "name"), "contoso");
    assert_string_equal(str_at(j, "id"), "/certificates/contoso");
    assert_string_equal(str_at(j, "etag"), "AAAAAAExpNs=");
    assert_string_equal(str_at(j, "type"), "Microsoft.Devices/IotHubs/Certificates");
    assert_string_equal(str_at(j, "properties.subject"), "CN=Contoso Root CA");
    assert_string_equal(str_at(j, "properties.expiry"), "Sat, 31 Dec 2039 23:59:59 GMT");
    assert_string_equal(str_at(j, "properties.thumbprint"),
                        "97388663832D0393C9246CAB4FBA2C8677185A25");
    assert_true(json_is_false(json_object_get(json_object_get(j, "properties"), "isVerified")));
    assert_null(str_at(j, "properties.verificationCode"));
    json_decref(j);
    j = hub_http__ca_to_json(&ca, 1);
    assert_string_equal(str_at(j, "properties.verificationCode"),
                        "75B86466DA34D2B04C0C4C9557A119687ADAE7D4732BDDB3");
    json_decref(j);
}

static void test_query_subset(void **state)
{
    (void)state;
    struct hub_device_filter f;
    char why[256];
    assert_int_equal(hub_http__device_query_parse("SELECT * FROM devices", &f, why, sizeof(why)),
                     0);
    assert_false(f.has_status || f.has_auth_type || f.has_conn_state);
    assert_int_equal(hub_http__device_query_parse("select * from devices where status = 'disabled' "
                                                  "and devices.connectionState='Connected'",
                                                  &f, why, sizeof(why)),
                     0);
    assert_true(f.has_status && f.status == HUB_DEVICE_DISABLED);
    assert_true(f.has_conn_state && f.conn_state == HUB_CONN_CONNECTED);
    assert_false(f.has_auth_type);
    assert_int_equal(hub_http__device_query_parse(
                         "SELECT * FROM devices WHERE authenticationType = 'certificateAuthority'",
                         &f, why, sizeof(why)),
                     0);
    assert_true(f.has_auth_type && f.auth_type == HUB_AUTH_CERT_AUTHORITY);

    static const struct {
        const char *q;
        const char *why_has;
    } bad[] = {
        {"SELECT % FROM devices", "column 8"},
        {"SELECT * FROM modules", "column 15: expected devices"},
        {"SELECT * FROM devices WHERE tags.x = 'a'", "column 29: unknown field"},
        {"SELECT * FROM devices WHERE status > 'a'", "column 36"},
        {"SELECT * FROM devices WHERE status = 'on'", "column 38: value not allowed"},
        {"SELECT * FROM devices WHERE status = 'enabled", "unterminated"},
        {"SELECT * FROM devices WHERE status = 'enabled' OR status = 'disabled'", "expected AND"},
        {"SELECT * FROM devices WHERE", "expected a field name"},
        {"SELECT * FROM devices WHERE status = 'enabled' AND status = 'disabled'",
         "column 52: field named twice"},
        {"", "column 1: expected SELECT"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        why[0] = '\0';
        assert_int_equal(hub_http__device_query_parse(bad[i].q, &f, why, sizeof(why)), -1);
        if (strstr(why, bad[i].why_has) == NULL)
            fail_msg("query %zu: '%s' does not mention '%s'", i, why, bad[i].why_has);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_device_json_has_azure_fields),
        cmocka_unit_test(test_twin_json_for_query),
        cmocka_unit_test(test_device_from_json_sdk_bodies),
        cmocka_unit_test(test_device_from_json_refusals),
        cmocka_unit_test(test_ca_json_shape),
        cmocka_unit_test(test_query_subset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
