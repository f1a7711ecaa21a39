/*
 * hubctl monitor and c2d, the parts without a hub: how a telemetry message
 * and a feedback record are shown, --prop KEY=VALUE to an iothub-app-*
 * header, --ttl to IoTHub-Expiry, the feedback lock token from an ETag, the
 * C2D request headers, option checks, and the loop's sequence guard.
 * hubctl's sources are not a library, so they are included here (h2o's
 * t/00unit style); the network functions are linked but never reached.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../../src/hubctl/api.c"
#include "../../../src/hubctl/api_format.c"
#include "../../../src/hubctl/cmd_c2d.c"
#include "../../../src/hubctl/cmd_monitor.c"
#include "../../../src/hubctl/https_client.c"
#include "../../../src/hubctl/https_parse.c"

/* ---- event_print ---------------------------------------------------------------- */

struct event_case {
    const char *name;
    const char *json; /* one message as GET /messages/events returns it */
    int want_rc;
    const char *want; /* exact output ("" when rc is -1) */
};

static const struct event_case event_cases[] = {
    {"text body, properties with a null, system properties",
     "{\"sequenceNumber\":12,\"deviceId\":\"dev1\",\"enqueuedTime\":\"2026-01-01T00:00:00.123Z\","
     "\"body\":\"{\\\"t\\\":21}\",\"bodyEncoding\":\"utf-8\","
     "\"properties\":{\"temp\":\"21\",\"flag\":null},"
     "\"systemProperties\":{\"messageId\":\"m-1\",\"contentType\":\"application/json\"}}",
     0,
     "device:            dev1\n"
     "sequenceNumber:    12\n"
     "enqueuedTime:      2026-01-01T00:00:00.123Z\n"
     "body:              {\"t\":21}\n"
     "properties:\n"
     "  temp:            21\n"
     "  flag:            (null)\n"
     "systemProperties:\n"
     "  messageId:       m-1\n"
     "  contentType:     application/json\n"
     "\n"},
    {"module id, empty property sections are left out",
     "{\"sequenceNumber\":3,\"deviceId\":\"d\",\"moduleId\":\"m1\",\"enqueuedTime\":\"t\","
     "\"body\":\"x\",\"bodyEncoding\":\"utf-8\",\"properties\":{},\"systemProperties\":{}}",
     0,
     "device:            d\n"
     "module:            m1\n"
     "sequenceNumber:    3\n"
     "enqueuedTime:      t\n"
     "body:              x\n"
     "\n"},
    {"base64 body: byte count and a note",
     "{\"sequenceNumber\":4,\"deviceId\":\"d\",\"body\":\"/wAB\",\"bodyEncoding\":\"base64\"}", 0,
     "device:            d\n"
     "sequenceNumber:    4\n"
     "body:              [base64, 3 bytes, not UTF-8] /wAB\n"
     "\n"},
    {"base64 body with padding",
     "{\"sequenceNumber\":5,\"deviceId\":\"d\",\"body\":\"/w==\",\"bodyEncoding\":\"base64\"}", 0,
     "device:            d\n"
     "sequenceNumber:    5\n"
     "body:              [base64, 1 bytes, not UTF-8] /w==\n"
     "\n"},
    {"multi-line body continues indented, CRLF and escapes neutralised",
     "{\"sequenceNumber\":6,\"deviceId\":\"d\",\"body\":\"a\\r\\nb\\u001b[31m\\rc\\nd\","
     "\"bodyEncoding\":\"utf-8\"}",
     0,
     "device:            d\n"
     "sequenceNumber:    6\n"
     "body:              a\n"
     "                   b?[31m?c\n"
     "                   d\n"
     "\n"},
    {"empty body",
     "{\"sequenceNumber\":7,\"deviceId\":\"d\",\"body\":\"\",\"bodyEncoding\":\"utf-8\"}", 0,
     "device:            d\n"
     "sequenceNumber:    7\n"
     "body:              (empty)\n"
     "\n"},
    {"no body member", "{\"sequenceNumber\":8,\"deviceId\":\"d\"}", 0,
     "device:            d\n"
     "sequenceNumber:    8\n"
     "body:              (none)\n"
     "\n"},
    {"hostile keys and values are sanitised; a non-string value shown as JSON",
     "{\"sequenceNumber\":9,\"deviceId\":\"d\\u001b]0;x\\u0007\",\"body\":\"b\","
     "\"properties\":{\"k\\n\":\"v\\u001b\",\"n\":5}}",
     0,
     "device:            d?]0;x?\n"
     "sequenceNumber:    9\n"
     "body:              b\n"
     "properties:\n"
     "  k?:              v?\n"
     "  n:               5\n"
     "\n"},
    {"non-ASCII UTF-8 passes through",
     "{\"sequenceNumber\":10,\"deviceId\":\"d\",\"body\":\"\\u00e9t\\u00e9\"}", 0,
     "device:            d\n"
     "sequenceNumber:    10\n"
     "body:              \xc3\xa9t\xc3\xa9\n"
     "\n"},
    {"no sequence number", "{\"deviceId\":\"d\",\"body\":\"b\"}", -1, ""},
    {"sequence number not an integer", "{\"sequenceNumber\":\"1\",\"deviceId\":\"d\"}", -1, ""},
    {"not an object", "[1]", -1, ""},
};

static void test_event_print(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(event_cases) / sizeof(event_cases[0]); i++) {
        const struct event_case *c = &event_cases[i];
        json_error_t jerr;
        json_t *ev = json_loads(c->json, 0, &jerr);
        if (ev == NULL)
            fail_msg("case '%s': bad test JSON: %s", c->name, jerr.text);
        char *text = NULL;
        size_t len = 0;
        FILE *out = open_memstream(&text, &len);
        assert_non_null(out);
        int rc = event_print(out, ev);
        fclose(out);
        if (rc != c->want_rc || strcmp(text, c->want) != 0)
            fail_msg("case '%s': rc %d (want %d), output:\n%s---\nwant:\n%s---", c->name, rc,
                     c->want_rc, text, c->want);
        free(text);
        json_decref(ev);
    }
}

/* ---- feedback record ----------------------------------------------------------- */

static void test_feedback_print(void **state)
{
    (void)state;
    json_t *rec =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "originalMessageId", "m-42", "description",
                  "Message purged", "deviceGenerationId", "g", "deviceId", "dev\x01",
                  "enqueuedTimeUtc", "2026-11-26T19:48:29Z", "statusCode", "Purged");
    assert_non_null(rec);
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    assert_non_null(out);
    c2d_feedback_print(out, rec);
    fclose(out);
    assert_string_equal(text, "originalMessageId: m-42\n"
                              "deviceId:          dev?\n"
                              "statusCode:        Purged\n"
                              "description:       Message purged\n"
                              "enqueuedTimeUtc:   2026-11-26T19:48:29Z\n"
                              "\n");
    free(text);
    json_decref(rec);
}

/* ---- --prop --------------------------------------------------------------------- */

struct prop_case {
    const char *arg;
    int want_rc;
    const char *want; /* header, or a substring of the error message */
};

static const struct prop_case prop_cases[] = {
    {"a=1", 0, "iothub-app-a: 1"},
    {"a=", 0, "iothub-app-a: "},
    {"k=v=w", 0, "iothub-app-k: v=w"},
    {"Key.With-Chars_!#$%&'*+^`|~=x y", 0, "iothub-app-Key.With-Chars_!#$%&'*+^`|~: x y"},
    {"t=\xc3\xa9t\xc3\xa9", 0, "iothub-app-t: \xc3\xa9t\xc3\xa9"},
    {"nokey", HUB_E_INVALID_ARG, "KEY=VALUE"},
    {"=v", HUB_E_INVALID_ARG, "empty key"},
    {"bad key=1", HUB_E_INVALID_ARG, "header name"},
    {"k:x=1", HUB_E_INVALID_ARG, "header name"},
    {"k\r\nX-Injected: 1=v", HUB_E_INVALID_ARG, "header name"},
    {"k=a\r\nX-Injected: 1", HUB_E_INVALID_ARG, "control"},
    {"k=a\tb", HUB_E_INVALID_ARG, "control"},
    {"k=\x7f", HUB_E_INVALID_ARG, "control"},
};

static void test_prop_header(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(prop_cases) / sizeof(prop_cases[0]); i++) {
        const struct prop_case *c = &prop_cases[i];
        struct hub_err err = {0};
        char *h = (char *)"sentinel";
        int rc = c2d_prop_header_new(c->arg, &h, &err);
        if (rc != c->want_rc)
            fail_msg("prop '%s': rc %d, want %d (%s)", c->arg, rc, c->want_rc, err.msg);
        if (rc == 0) {
            assert_string_equal(h, c->want);
        } else {
            assert_null(h);
            if (strstr(err.msg, c->want) == NULL)
                fail_msg("prop '%s': message '%s' lacks '%s'", c->arg, err.msg, c->want);
        }
        free(h);
    }
}

/* ---- --ttl ---------------------------------------------------------------------- */

struct ttl_case {
    time_t now;
    const char *ttl;
    int want_rc;
    const char *want;
};

static const struct ttl_case ttl_cases[] = {
    {0, "60", 0, "1970-01-01T00:01:00Z"},
    {1795722511, "1", 0, "2026-11-26T19:48:32Z"},
    {1795722511, "3600", 0, "2026-11-26T20:48:31Z"},
    {1767225599, "1", 0, "2026-01-01T00:00:00Z"}, /* crosses a year */
    {1795722511, "172800", 0, "2026-11-28T19:48:31Z"},
    {0, "31536000", 0, "1971-01-01T00:00:00Z"}, /* the maximum */
    {0, "31536001", HUB_E_INVALID_ARG, NULL},
    {0, "0", HUB_E_INVALID_ARG, NULL},
    {0, "-5", HUB_E_INVALID_ARG, NULL},
    {0, "+5", HUB_E_INVALID_ARG, NULL},
    {0, " 5", HUB_E_INVALID_ARG, NULL},
    {0, "5s", HUB_E_INVALID_ARG, NULL},
    {0, "", HUB_E_INVALID_ARG, NULL},
    {0, "99999999999999999999999", HUB_E_INVALID_ARG, NULL},
};

static void test_ttl_expiry(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(ttl_cases) / sizeof(ttl_cases[0]); i++) {
        const struct ttl_case *c = &ttl_cases[i];
        struct hub_err err = {0};
        char out[HUB_TIME_ISO_LEN] = "";
        int rc = c2d_expiry_format(c->now, c->ttl, out, &err);
        if (rc != c->want_rc)
            fail_msg("ttl '%s': rc %d, want %d", c->ttl, rc, c->want_rc);
        if (rc == 0)
            assert_string_equal(out, c->want);
        else
            assert_non_null(strstr(err.msg, "--ttl"));
    }
}

static void test_ack_valid(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        int ok;
    } cases[] = {{"none", 1}, {"positive", 1}, {"negative", 1}, {"full", 1},
                 {"", 0},     {"Full", 0},     {"all", 0},      {"full ", 0}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        if (c2d_ack_valid(cases[i].s) != cases[i].ok)
            fail_msg("ack '%s': want %d", cases[i].s, cases[i].ok);
}

/* ---- feedback lock token -------------------------------------------------------- */

static void test_lock_from_etag(void **state)
{
    (void)state;
    static const struct {
        const char *etag;
        int want_rc;
        const char *want;
    } cases[] = {
        {"\"0123ABCD\"", 0, "0123ABCD"},
        {"W/\"abc\"", 0, "abc"},
        {"abc", 0, "abc"},
        {"\"\"", HUB_E_PARSE, NULL},
        {"", HUB_E_PARSE, NULL},
        {"\"abc", HUB_E_PARSE, NULL},
        {"abc\"", HUB_E_PARSE, NULL},
        {"\"0123456789\"", HUB_E_PARSE, NULL}, /* does not fit the 10-byte buffer below */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct hub_err err = {0};
        char out[10];
        int rc = c2d_lock_from_etag(cases[i].etag, out, sizeof(out), &err);
        if (rc != cases[i].want_rc)
            fail_msg("etag '%s': rc %d, want %d", cases[i].etag, rc, cases[i].want_rc);
        if (rc == 0)
            assert_string_equal(out, cases[i].want);
    }
}

/* ---- the C2D request's headers -------------------------------------------------- */

static void free_headers(char **h, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(h[i]);
}

static void test_send_headers(void **state)
{
    (void)state;
    struct c2d_args a;
    memset(&a, 0, sizeof(a));
    a.message_id = "m-1";
    a.correlation_id = "c-1";
    a.ack = "full";
    a.content_type = "application/json";
    a.content_encoding = "utf-8";
    a.ttl = "60";
    a.props[a.nprops++] = "a=1";
    a.props[a.nprops++] = "b=";
    char *h[5 + 1 + C2D_PROPS_MAX + 1] = {NULL};
    time_t before = time(NULL);
    assert_int_equal(c2d_send_headers(&a, h, sizeof(h) / sizeof(h[0])), -1);
    time_t after = time(NULL);
    const char *want[] = {"IoTHub-MessageId: m-1",
                          "IoTHub-CorrelationId: c-1",
                          "IoTHub-Ack: full",
                          "iothub-contenttype: application/json",
                          "iothub-contentencoding: utf-8",
                          NULL, /* IoTHub-Expiry, checked below */
                          "iothub-app-a: 1",
                          "iothub-app-b: "};
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        assert_non_null(h[i]);
        if (want[i] != NULL)
            assert_string_equal(h[i], want[i]);
    }
    assert_null(h[8]);
    char lo[HUB_TIME_ISO_LEN], hi[HUB_TIME_ISO_LEN];
    hub_time_iso8601(before + 60, lo);
    hub_time_iso8601(after + 60, hi);
    assert_true(strncmp(h[5], "IoTHub-Expiry: ", 15) == 0);
    assert_true(strcmp(h[5] + 15, lo) >= 0 && strcmp(h[5] + 15, hi) <= 0);
    free_headers(h, sizeof(h) / sizeof(h[0]));

    /* nothing asked: no headers at all */
    memset(&a, 0, sizeof(a));
    char *none[4] = {(char *)"x", NULL, NULL, NULL};
    assert_int_equal(c2d_send_headers(&a, none, 4), -1);
    assert_null(none[0]);

    /* a header value with a line break is refused before anything is sent */
    const struct {
        const char **field;
        const char *value;
    } bad[] = {{&a.message_id, "m\r\nX-Evil: 1"}, {&a.correlation_id, ""}, {&a.ttl, "0"}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(&a, 0, sizeof(a));
        *bad[i].field = bad[i].value;
        char *hb[8] = {NULL};
        assert_int_equal(c2d_send_headers(&a, hb, 8), HUBCTL_USAGE);
        free_headers(hb, 8);
    }
    memset(&a, 0, sizeof(a));
    a.message_id = "ok";
    a.props[a.nprops++] = "bad key=1";
    char *hp[8] = {NULL};
    assert_int_equal(c2d_send_headers(&a, hp, 8), HUBCTL_USAGE);
    free_headers(hp, 8); /* the message id header made before the refusal */
}

/* ---- option checks (no hub: each must stop before the network) ------------------- */

struct cli_case {
    const char *name;
    int (*run)(const struct hubctl_globals *, int, char **);
    const char *argv[12];
    int want;
};

static const struct cli_case cli_cases[] = {
    {"c2d without a command", hubctl_c2d_main, {"c2d"}, HUBCTL_USAGE},
    {"c2d --help", hubctl_c2d_main, {"c2d", "--help"}, HUBCTL_OK},
    {"unknown c2d command", hubctl_c2d_main, {"c2d", "fly"}, HUBCTL_USAGE},
    {"send --help", hubctl_c2d_main, {"c2d", "send", "--help"}, HUBCTL_OK},
    {"send without text", hubctl_c2d_main, {"c2d", "send", "dev1"}, HUBCTL_USAGE},
    {"send with text and --file",
     hubctl_c2d_main,
     {"c2d", "send", "dev1", "x", "--file", "/dev/null"},
     HUBCTL_USAGE},
    {"send with a bad --ack",
     hubctl_c2d_main,
     {"c2d", "send", "dev1", "x", "--ack", "all"},
     HUBCTL_USAGE},
    {"send with a bad --ttl",
     hubctl_c2d_main,
     {"c2d", "send", "dev1", "x", "--ttl", "1h"},
     HUBCTL_USAGE},
    {"send with a bad --prop",
     hubctl_c2d_main,
     {"c2d", "send", "dev1", "x", "--prop", "k"},
     HUBCTL_USAGE},
    {"send with a missing file",
     hubctl_c2d_main,
     {"c2d", "send", "dev1", "--file", "/nonexistent/x"},
     HUBCTL_USAGE},
    {"send with an empty id", hubctl_c2d_main, {"c2d", "send", "", "x"}, HUBCTL_USAGE},
    {"send with --abandon",
     hubctl_c2d_main,
     {"c2d", "send", "dev1", "x", "--abandon"},
     HUBCTL_USAGE},
    {"purge without an id", hubctl_c2d_main, {"c2d", "purge"}, HUBCTL_USAGE},
    {"purge with --prop", hubctl_c2d_main, {"c2d", "purge", "d", "--prop", "a=1"}, HUBCTL_USAGE},
    {"feedback with an argument", hubctl_c2d_main, {"c2d", "feedback", "x"}, HUBCTL_USAGE},
    {"monitor --help", hubctl_monitor_main, {"monitor", "--help"}, HUBCTL_OK},
    {"monitor with an argument", hubctl_monitor_main, {"monitor", "x"}, HUBCTL_USAGE},
    {"monitor --from 0", hubctl_monitor_main, {"monitor", "--from", "0"}, HUBCTL_USAGE},
    {"monitor --from and --new",
     hubctl_monitor_main,
     {"monitor", "--from", "2", "--new"},
     HUBCTL_USAGE},
    {"monitor --count 0", hubctl_monitor_main, {"monitor", "--count", "0"}, HUBCTL_USAGE},
    {"monitor --timeout x", hubctl_monitor_main, {"monitor", "--timeout", "x"}, HUBCTL_USAGE},
    {"monitor --count without value", hubctl_monitor_main, {"monitor", "--count"}, HUBCTL_USAGE},
    {"monitor --device ''", hubctl_monitor_main, {"monitor", "--device", ""}, HUBCTL_USAGE},
    /* valid options: they get as far as the missing connection string (exit 2) */
    {"monitor, valid but no connection string",
     hubctl_monitor_main,
     {"monitor", "--count", "1"},
     HUBCTL_USAGE},
};

static void test_cli_refusals(void **state)
{
    (void)state;
    const struct hubctl_globals g = {.port = 443}; /* no connection string */
    for (size_t i = 0; i < sizeof(cli_cases) / sizeof(cli_cases[0]); i++) {
        const struct cli_case *c = &cli_cases[i];
        char *argv[12] = {NULL};
        int argc = 0;
        while (argc < 12 && c->argv[argc] != NULL) {
            argv[argc] = (char *)c->argv[argc];
            argc++;
        }
        int rc = c->run(&g, argc, argv);
        if (rc != c->want)
            fail_msg("case '%s': exit %d, want %d", c->name, rc, c->want);
    }
}

static void test_monitor_args(void **state)
{
    (void)state;
    char *argv[] = {(char *)"monitor", (char *)"--device",  (char *)"dev 1/x",
                    (char *)"--from",  (char *)"42",        (char *)"--count",
                    (char *)"5",       (char *)"--timeout", (char *)"30"};
    struct monitor_args a;
    assert_int_equal(monitor_parse_args(9, argv, &a), -1);
    assert_string_equal(a.device, "dev 1/x");
    assert_string_equal(a.enc_device, "dev%201%2Fx");
    assert_int_equal(a.from, 42);
    assert_int_equal(a.count, 5);
    assert_int_equal(a.timeout_s, 30);
    assert_int_equal(a.new_only, 0);

    char *argv2[] = {(char *)"monitor", (char *)"--new", (char *)"--json"};
    assert_int_equal(monitor_parse_args(3, argv2, &a), -1);
    assert_int_equal(a.from, 1);
    assert_int_equal(a.new_only, 1);
    assert_int_equal(a.json, 1);
    assert_int_equal(a.count, 0);
}

/* ---- the loop's page handling ---------------------------------------------------- */

static void test_monitor_page(void **state)
{
    (void)state;
    struct monitor_args a;
    memset(&a, 0, sizeof(a));
    a.json = 1;
    a.count = 2;
    struct monitor m = {.args = &a, .from = 5};

    /* a hub going backwards must not make the loop print the same messages forever */
    json_t *back = json_loads("[{\"sequenceNumber\":4}]", 0, NULL);
    assert_int_equal(monitor_print_page(&m, back), HUBCTL_USAGE);
    assert_int_equal(m.received, 0);
    assert_int_equal(m.from, 5);
    json_decref(back);

    json_t *noseq = json_loads("[{\"deviceId\":\"d\"}]", 0, NULL);
    assert_int_equal(monitor_print_page(&m, noseq), HUBCTL_USAGE);
    json_decref(noseq);

    /* a gap is fine (another device's messages, or expired ones); from follows */
    json_t *one = json_loads("[{\"sequenceNumber\":9}]", 0, NULL);
    assert_int_equal(monitor_print_page(&m, one), -1);
    assert_int_equal(m.from, 10);
    assert_int_equal(m.received, 1);
    json_decref(one);

    /* --count reached in the middle of a page: stop there */
    json_t *two = json_loads("[{\"sequenceNumber\":10},{\"sequenceNumber\":11}]", 0, NULL);
    assert_int_equal(monitor_print_page(&m, two), HUBCTL_OK);
    assert_int_equal(m.from, 11);
    assert_int_equal(m.received, 2);
    json_decref(two);

    json_t *empty = json_array();
    a.count = 0;
    assert_int_equal(monitor_print_page(&m, empty), -1);
    json_decref(empty);
}

/* ---- hubctl_api_call_raw's header cap (refused before any I/O) ------------------- */

static void test_raw_call_header_cap(void **state)
{
    (void)state;
    const char *headers[HUBCTL_API_EXTRA_HEADERS_MAX + 2];
    for (size_t i = 0; i < HUBCTL_API_EXTRA_HEADERS_MAX + 1; i++)
        headers[i] = "X-A: 1";
    headers[HUBCTL_API_EXTRA_HEADERS_MAX + 1] = NULL;
    struct hubctl_api api;
    memset(&api, 0, sizeof(api));
    struct hubctl_api_request req = {.method = "GET", .path = "/x", .headers = headers};
    struct hubctl_api_response res;
    struct hub_err err = {0};
    assert_int_equal(hubctl_api_call_raw(&api, &req, &res, &err), HUB_E_INVALID_ARG);
    assert_int_equal(res.status, 0);
    assert_non_null(strstr(err.msg, "too many"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_event_print),         cmocka_unit_test(test_feedback_print),
        cmocka_unit_test(test_prop_header),         cmocka_unit_test(test_ttl_expiry),
        cmocka_unit_test(test_ack_valid),           cmocka_unit_test(test_lock_from_etag),
        cmocka_unit_test(test_send_headers),        cmocka_unit_test(test_cli_refusals),
        cmocka_unit_test(test_monitor_args),        cmocka_unit_test(test_monitor_page),
        cmocka_unit_test(test_raw_call_header_cap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
