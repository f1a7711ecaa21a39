/* The service API's JSON shapes (device identity, CA certificate, the twin
 * PATCH check) and the device query over the query layer: the pure parts
 * alone, then paging over a real registry on SQLite in a mkdtemp directory.
 * No sockets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "http/http_int.h"
#include "http/json_map.h"
#include "query/query.h"
#include "registry/registry.h"

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

static void test_twin_patch_reported_refused(void **state)
{
    (void)state;
    static const struct {
        const char *body;
        int has_reported;
    } cases[] = {
        {"{\"tags\":{\"a\":1}}", 0},
        {"{\"properties\":{\"desired\":{\"a\":1}}}", 0},
        {"{\"properties\":{\"reported\":{\"a\":1}}}", 1},
        {"{\"properties\":{\"desired\":{},\"reported\":{\"$version\":2,\"x\":null}}}", 1},
        /* a GET's answer sent back: the bookkeeping of reported is no write */
        {"{\"properties\":{\"reported\":{\"$metadata\":{\"$lastUpdated\":\"t\"},\"$version\":3}}}",
         0},
        {"{\"properties\":{\"reported\":{}}}", 0},
        {"{\"properties\":{\"reported\":5}}", 0},
        {"not json", 0},
        {"[{\"properties\":{\"reported\":{\"a\":1}}}]", 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        if (hub_http__twin_patch_has_reported(cases[i].body, strlen(cases[i].body)) !=
            cases[i].has_reported)
            fail_msg("case %zu (%s): wanted %d", i, cases[i].body, cases[i].has_reported);
}

/* The "certificate" / "crl" text of an upload: PEM passes as is, anything
 * else must be base64 (line-wrapped allowed) of at least one byte. */
static void test_certificate_bytes_decode(void **state)
{
    (void)state;
    static const char pem[] = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    static const struct {
        const char *text;
        size_t len; /* 0: strlen(text) */
        int rc;
        const char *bytes; /* what pki gets, when rc == 0 */
        size_t bytes_len;
    } cases[] = {
        {pem, 0, 0, pem, sizeof(pem) - 1},
        /* the marker anywhere makes it PEM: the loader then decides */
        {"junk -----BEGIN X", 0, 0, "junk -----BEGIN X", 17},
        {"aGVsbG8=", 0, 0, "hello", 5},
        {" aGVs\r\nbG8=\n\t", 0, 0, "hello", 5},
        {"AAEC", 0, 0, "\x00\x01\x02", 3},
        {"aGVsbG8", 0, HUB_E_INVALID_ARG, NULL, 0}, /* unpadded */
        {"not base64!", 0, HUB_E_INVALID_ARG, NULL, 0},
        {" \n\t", 0, HUB_E_INVALID_ARG, NULL, 0}, /* nothing to decode */
        /* a marker after a NUL does not count (a C string ends there) */
        {"AAEC\0-----BEGIN X", 17, HUB_E_INVALID_ARG, NULL, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t len = cases[i].len != 0 ? cases[i].len : strlen(cases[i].text);
        /* exactly len bytes, no NUL after them: the decoder must not need one */
        char *text = malloc(len);
        assert_non_null(text);
        memcpy(text, cases[i].text, len);
        unsigned char *out = (unsigned char *)"unset";
        size_t out_len = 99;
        char why[HUB_ERR_MSG_MAX] = "unset";
        int rc = hub_http__certificate_bytes_decode(text, len, &out, &out_len, why, sizeof(why));
        if (rc != cases[i].rc)
            fail_msg("case %zu: rc %d, want %d (%s)", i, rc, cases[i].rc, why);
        if (rc == 0) {
            assert_int_equal(out_len, cases[i].bytes_len);
            assert_memory_equal(out, cases[i].bytes, out_len);
            free(out);
        } else {
            assert_null(out);
            assert_int_equal(out_len, 0);
            assert_string_not_equal(why, "unset");
        }
        free(text);
    }
    /* the base64 decoder's reason reaches the caller */
    unsigned char *out = NULL;
    size_t out_len = 0;
    char why[HUB_ERR_MSG_MAX] = "";
    assert_int_equal(
        hub_http__certificate_bytes_decode("!!!!", 4, &out, &out_len, why, sizeof(why)),
        HUB_E_INVALID_ARG);
    assert_true(strlen(why) > 0);
}

static void test_query_cursor_round_trip(void **state)
{
    (void)state;
    char token[HUB_HTTP_QUERY_CURSOR_SIZE], id[HUB_DEVICE_ID_SIZE];
    struct hub_err err = {0};
    hub_http__query_cursor_encode("dev:1(a)", token);
    assert_string_equal(token, "6465763A31286129");
    assert_int_equal(hub_http__query_cursor_decode(token, id, &err), 0);
    assert_string_equal(id, "dev:1(a)");
    /* lowercase hex is accepted */
    assert_int_equal(hub_http__query_cursor_decode("6465763a31286129", id, &err), 0);
    assert_string_equal(id, "dev:1(a)");

    char long_id[2 * 129 + 1];
    memset(long_id, 0, sizeof(long_id));
    for (int i = 0; i < 129; i++)
        memcpy(long_id + 2 * i, "61", 2);
    const char *bad[] = {
        "",       /* empty */
        "646",    /* odd length */
        "zz",     /* not hex */
        "6400",   /* NUL inside */
        "612B62", /* "a+b": '+' is not allowed in a device id */
        long_id,  /* 129 characters */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(&err, 0, sizeof(err));
        if (hub_http__query_cursor_decode(bad[i], id, &err) != HUB_E_INVALID_ARG)
            fail_msg("token %zu decoded", i);
        assert_non_null(strstr(err.msg, "malformed continuation token"));
    }
}

static void test_query_store_filter(void **state)
{
    (void)state;
    enum { ANY = -1 };
    static const struct {
        const char *q;
        int rc;
        int status, auth_type, conn_state; /* ANY: no pre-selection */
    } cases[] = {
        {"SELECT * FROM devices", 0, ANY, ANY, ANY},
        {"select * from devices where status = 'disabled' and devices.connectionState='Connected'",
         0, HUB_DEVICE_DISABLED, ANY, HUB_CONN_CONNECTED},
        {"SELECT * FROM devices WHERE authenticationType = 'certificateAuthority'", 0, ANY,
         HUB_AUTH_CERT_AUTHORITY, ANY},
        {"SELECT * FROM devices WHERE tags.site = 'a' AND status = 'enabled'", 0,
         HUB_DEVICE_ENABLED, ANY, ANY},
        /* not on the AND chain: every device is a candidate */
        {"SELECT * FROM devices WHERE status = 'enabled' OR tags.x = 1", 0, ANY, ANY, ANY},
        {"SELECT * FROM devices WHERE NOT status = 'enabled'", 0, ANY, ANY, ANY},
        /* values no device has: nothing can match */
        {"SELECT * FROM devices WHERE status = 'on'", 1, ANY, ANY, ANY},
        {"SELECT * FROM devices WHERE status = 'enabled' AND status = 'disabled'", 1, ANY, ANY,
         ANY},
        {"SELECT * FROM devices WHERE status = 'enabled' AND status = 'enabled'", 0,
         HUB_DEVICE_ENABLED, ANY, ANY},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct hub_query *q = NULL;
        struct hub_err err = {0};
        if (hub_query_parse_new(cases[i].q, strlen(cases[i].q), &q, &err) != 0)
            fail_msg("case %zu: %s", i, err.msg);
        struct hub_device_filter f;
        memset(&f, 0xff, sizeof(f));
        int rc = hub_http__query_store_filter(q, &f);
        hub_query_free(q);
        if (rc != cases[i].rc)
            fail_msg("case %zu: rc %d, wanted %d", i, rc, cases[i].rc);
        if (rc != 0)
            continue;
        if (f.has_status != (cases[i].status != ANY) ||
            (f.has_status && (int)f.status != cases[i].status))
            fail_msg("case %zu: status pre-selection", i);
        if (f.has_auth_type != (cases[i].auth_type != ANY) ||
            (f.has_auth_type && (int)f.auth_type != cases[i].auth_type))
            fail_msg("case %zu: authenticationType pre-selection", i);
        if (f.has_conn_state != (cases[i].conn_state != ANY) ||
            (f.has_conn_state && (int)f.conn_state != cases[i].conn_state))
            fail_msg("case %zu: connectionState pre-selection", i);
    }
}

/* ---- the query over a real registry ------------------------------------------ */

#define QUERY_DEVICES 25

struct qfx {
    char dir[64];
    char path[128];
    struct hub_store *store;
    struct hub_registry *reg;
};

/* 25 CA devices d00..d24; the even ones tagged {"even":true,"n":i}; d05 has
 * desired {"fw":"2.0"}; d03 is disabled. */
static int qfx_setup(void **state)
{
    struct qfx *fx = calloc(1, sizeof(*fx));
    assert_non_null(fx);
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/hubd-test-httpq-XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    snprintf(fx->path, sizeof(fx->path), "%s/hub.db", fx->dir);
    struct hub_err err = {0};
    if (hub_store_sqlite_open(fx->path, NULL, &fx->store, &err) != 0)
        fail_msg("open: %s", err.msg);
    assert_int_equal(hub_registry_new(fx->store, NULL, &fx->reg, &err), 0);
    for (int i = 0; i < QUERY_DEVICES; i++) {
        struct hub_device in, out;
        memset(&in, 0, sizeof(in));
        snprintf(in.id, sizeof(in.id), "d%02d", i);
        in.status = i == 3 ? HUB_DEVICE_DISABLED : HUB_DEVICE_ENABLED;
        in.auth_type = HUB_AUTH_CERT_AUTHORITY;
        if (hub_registry_device_create(fx->reg, &in, &out, &err) != 0)
            fail_msg("create %s: %s", in.id, err.msg);
        char patch[128];
        if (i % 2 == 0) {
            snprintf(patch, sizeof(patch), "{\"tags\":{\"even\":true,\"n\":%d}}", i);
            if (hub_registry_twin_patch(fx->reg, in.id, patch, strlen(patch), NULL, NULL, NULL,
                                        &err) != 0)
                fail_msg("patch %s: %s", in.id, err.msg);
        }
        if (i == 5) {
            snprintf(patch, sizeof(patch), "{\"properties\":{\"desired\":{\"fw\":\"2.0\"}}}");
            if (hub_registry_twin_patch(fx->reg, in.id, patch, strlen(patch), NULL, NULL, NULL,
                                        &err) != 0)
                fail_msg("patch %s: %s", in.id, err.msg);
        }
    }
    *state = fx;
    return 0;
}

static int qfx_teardown(void **state)
{
    struct qfx *fx = *state;
    hub_registry_free(fx->reg);
    hub_store_close(fx->store);
    DIR *d = opendir(fx->dir);
    if (d != NULL) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            char p[512];
            snprintf(p, sizeof(p), "%s/%s", fx->dir, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    assert_int_equal(rmdir(fx->dir), 0);
    free(fx);
    return 0;
}

struct walk {
    char ids[512]; /* the ids of every page, space-separated */
    size_t pages;
    size_t short_pages_with_more; /* pages under the limit that still had a token */
};

/* Runs q page by page to the end; fails the test on an error. */
static void walk_query(struct qfx *fx, const char *text, size_t limit, size_t scan_max,
                       struct walk *w)
{
    memset(w, 0, sizeof(*w));
    struct hub_query *q = NULL;
    struct hub_err err = {0};
    if (hub_query_parse_new(text, strlen(text), &q, &err) != 0)
        fail_msg("%s: %s", text, err.msg);
    char token[HUB_HTTP_QUERY_CURSOR_SIZE] = "";
    do {
        json_t *items = NULL;
        char next[HUB_HTTP_QUERY_CURSOR_SIZE];
        if (hub_http__device_query_run(fx->reg, q, limit, token, scan_max, &items, next, &err) != 0)
            fail_msg("%s: %s", text, err.msg);
        assert_true(json_array_size(items) <= limit);
        if (next[0] != '\0' && json_array_size(items) < limit)
            w->short_pages_with_more++;
        size_t i;
        json_t *t;
        json_array_foreach(items, i, t)
        {
            size_t n = strlen(w->ids);
            snprintf(w->ids + n, sizeof(w->ids) - n, "%s%s", n ? " " : "",
                     json_string_value(json_object_get(t, "deviceId")));
        }
        json_decref(items);
        snprintf(token, sizeof(token), "%s", next);
        w->pages++;
        assert_true(w->pages < 100);
    } while (token[0] != '\0');
    hub_query_free(q);
}

#define EVEN_IDS "d00 d02 d04 d06 d08 d10 d12 d14 d16 d18 d20 d22 d24"

static void test_device_query_pages_filtered_results(void **state)
{
    struct qfx *fx = *state;
    struct walk w;
    const char *even = "SELECT * FROM devices WHERE tags.even = true";
    walk_query(fx, even, 4, HUB_HTTP_QUERY_SCAN_MAX, &w);
    assert_string_equal(w.ids, EVEN_IDS);
    assert_int_equal(w.pages, 4); /* 4+4+4+1: the last page says no more */
    assert_int_equal(w.short_pages_with_more, 0);

    /* exactly one page's worth: no continuation, no empty extra page */
    walk_query(fx, even, 13, HUB_HTTP_QUERY_SCAN_MAX, &w);
    assert_string_equal(w.ids, EVEN_IDS);
    assert_int_equal(w.pages, 1);
    walk_query(fx, even, 12, HUB_HTTP_QUERY_SCAN_MAX, &w);
    assert_string_equal(w.ids, EVEN_IDS);
    assert_int_equal(w.pages, 2);

    /* a scan budget of 3 devices cuts pages short but loses nothing */
    walk_query(fx, even, 100, 3, &w);
    assert_string_equal(w.ids, EVEN_IDS);
    assert_true(w.short_pages_with_more > 0);

    walk_query(fx, "SELECT * FROM devices WHERE tags.n >= 20 OR properties.desired.fw = '2.0'", 2,
               HUB_HTTP_QUERY_SCAN_MAX, &w);
    assert_string_equal(w.ids, "d05 d20 d22 d24");
    walk_query(fx, "SELECT * FROM devices WHERE status = 'disabled'", 10, HUB_HTTP_QUERY_SCAN_MAX,
               &w);
    assert_string_equal(w.ids, "d03");
    walk_query(fx, "SELECT * FROM devices WHERE status = 'enabled' AND tags.n < 3", 10,
               HUB_HTTP_QUERY_SCAN_MAX, &w);
    assert_string_equal(w.ids, "d00 d02");
    walk_query(fx, "SELECT * FROM devices WHERE status = 'on'", 10, HUB_HTTP_QUERY_SCAN_MAX, &w);
    assert_string_equal(w.ids, "");
    assert_int_equal(w.pages, 1);
    walk_query(fx, "SELECT * FROM devices", 10, HUB_HTTP_QUERY_SCAN_MAX, &w);
    assert_int_equal(w.pages, 3);
    assert_non_null(strstr(w.ids, "d00 d01 d02"));
}

static void test_device_query_items_are_twins(void **state)
{
    struct qfx *fx = *state;
    const char *text = "SELECT * FROM devices WHERE deviceId = 'd04' OR deviceId = 'd05'";
    struct hub_query *q = NULL;
    struct hub_err err = {0};
    assert_int_equal(hub_query_parse_new(text, strlen(text), &q, &err), 0);
    json_t *items = NULL;
    char next[HUB_HTTP_QUERY_CURSOR_SIZE];
    assert_int_equal(hub_http__device_query_run(fx->reg, q, 10, NULL, HUB_HTTP_QUERY_SCAN_MAX,
                                                &items, next, &err),
                     0);
    assert_string_equal(next, "");
    assert_int_equal(json_array_size(items), 2);
    json_t *d04 = json_array_get(items, 0), *d05 = json_array_get(items, 1);
    assert_string_equal(str_at(d04, "deviceId"), "d04");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(d04, "tags"), "n")), 4);
    assert_string_equal(str_at(d04, "authenticationType"), "certificateAuthority");
    assert_string_equal(str_at(d05, "properties.desired.fw"), "2.0");
    json_t *desired = json_object_get(json_object_get(d05, "properties"), "desired");
    assert_int_equal(json_integer_value(json_object_get(desired, "$version")), 2);
    assert_true(json_is_object(json_object_get(desired, "$metadata")));
    assert_true(json_is_string(json_object_get(d05, "etag")));
    json_decref(items);

    /* a token that is not ours */
    assert_int_equal(hub_http__device_query_run(fx->reg, q, 10, "xyz", HUB_HTTP_QUERY_SCAN_MAX,
                                                &items, next, &err),
                     HUB_E_INVALID_ARG);
    assert_null(items);
    hub_query_free(q);
}

static void test_query_errors_name_the_column(void **state)
{
    (void)state;
    /* what POST /devices/query answers with 400 (the query layer's text) */
    static const struct {
        const char *q;
        const char *msg_has;
    } bad[] = {
        {"SELECT % FROM devices", "query error at column 8"},
        {"SELECT * FROM modules", "query error at column 15"},
        {"", "query error at column 1"},
        {"SELECT * FROM devices WHERE status = 'enabled", "query error at column"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct hub_query *q = NULL;
        struct hub_err err = {0};
        int rc = hub_query_parse_new(bad[i].q, strlen(bad[i].q), &q, &err);
        assert_int_equal(rc, HUB_E_PARSE);
        assert_null(q);
        if (strstr(err.msg, bad[i].msg_has) == NULL)
            fail_msg("query %zu: '%s' does not mention '%s'", i, err.msg, bad[i].msg_has);
    }
}
int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_device_json_has_azure_fields),
        cmocka_unit_test(test_device_from_json_sdk_bodies),
        cmocka_unit_test(test_device_from_json_refusals),
        cmocka_unit_test(test_ca_json_shape),
        cmocka_unit_test(test_twin_patch_reported_refused),
        cmocka_unit_test(test_certificate_bytes_decode),
        cmocka_unit_test(test_query_cursor_round_trip),
        cmocka_unit_test(test_query_store_filter),
        cmocka_unit_test(test_query_errors_name_the_column),
        cmocka_unit_test_setup_teardown(test_device_query_pages_filtered_results, qfx_setup,
                                        qfx_teardown),
        cmocka_unit_test_setup_teardown(test_device_query_items_are_twins, qfx_setup, qfx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
