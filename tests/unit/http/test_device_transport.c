/*
 * The device HTTPS transport's pure parts: which requests it takes, where
 * each header goes, batch elements and the ISO-8601 times (transport_parse.c);
 * the refusal status table, the path id rules, and that the synthesized
 * CONNECT goes through the device layer's SAS decision
 * (routes_device_transport.c, included to reach its statics).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>

#include <event2/thread.h>

#include "http/routes_device_transport.c"

static void set_path(char seg[HUB_HTTP_MAX_SEGMENTS][HUB_HTTP_SEGMENT_MAX], size_t *n,
                     const char *path)
{
    int rc = hub_http__split_path(path, seg, HUB_HTTP_MAX_SEGMENTS);
    assert_true(rc >= 0);
    *n = (size_t)rc;
}

static void test_classify_table(void **state)
{
    (void)state;
    static const struct {
        enum evhttp_cmd_type method;
        const char *path;
        bool reject;
        enum hub_http_dt_op op;
        const char *lock; /* NULL: none */
    } cases[] = {
        {EVHTTP_REQ_POST, "/devices/d1/messages/events", false, HUB_HTTP_DT_TELEMETRY, NULL},
        {EVHTTP_REQ_GET, "/devices/d1/messages/events", false, HUB_HTTP_DT_NONE, NULL},
        {EVHTTP_REQ_POST, "/devices/d1/messages/Events", false, HUB_HTTP_DT_NONE, NULL},
        {EVHTTP_REQ_GET, "/devices/d1/messages/deviceBound", false, HUB_HTTP_DT_RECEIVE, NULL},
        {EVHTTP_REQ_GET, "/devices/d1/messages/devicebound", false, HUB_HTTP_DT_RECEIVE, NULL},
        {EVHTTP_REQ_GET, "/devices/d1/messages/DEVICEBOUND", false, HUB_HTTP_DT_RECEIVE, NULL},
        /* the service's C2D send shares the path: never ours */
        {EVHTTP_REQ_POST, "/devices/d1/messages/deviceBound", false, HUB_HTTP_DT_NONE, NULL},
        {EVHTTP_REQ_DELETE, "/devices/d1/messages/devicebound/tok", false, HUB_HTTP_DT_COMPLETE,
         "tok"},
        {EVHTTP_REQ_DELETE, "/devices/d1/messages/devicebound/tok", true, HUB_HTTP_DT_REJECT,
         "tok"},
        {EVHTTP_REQ_POST, "/devices/d1/messages/devicebound/tok/abandon", false,
         HUB_HTTP_DT_ABANDON, "tok"},
        {EVHTTP_REQ_POST, "/devices/d1/messages/devicebound/tok/Abandon", false, HUB_HTTP_DT_NONE,
         NULL},
        {EVHTTP_REQ_DELETE, "/devices/d1/messages/devicebound/tok/abandon", false, HUB_HTTP_DT_NONE,
         NULL},
        {EVHTTP_REQ_GET, "/devices/d1/messages/devicebound/tok", false, HUB_HTTP_DT_NONE, NULL},
        {EVHTTP_REQ_POST, "/devices/d1/modules/m1/messages/events", false, HUB_HTTP_DT_NONE, NULL},
        {EVHTTP_REQ_DELETE, "/devices/d1/commands", false, HUB_HTTP_DT_NONE, NULL},
        {EVHTTP_REQ_GET, "/devices/d1", false, HUB_HTTP_DT_NONE, NULL},
        {EVHTTP_REQ_GET, "/messages/events", false, HUB_HTTP_DT_NONE, NULL},
        {EVHTTP_REQ_POST, "/twins/d1/messages/events", false, HUB_HTTP_DT_NONE, NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char seg[HUB_HTTP_MAX_SEGMENTS][HUB_HTTP_SEGMENT_MAX];
        size_t n = 0;
        set_path(seg, &n, cases[i].path);
        const char *lock = "unset";
        enum hub_http_dt_op op =
            hub_http__dt_classify(cases[i].method, seg, n, cases[i].reject, &lock);
        if (op != cases[i].op)
            fail_msg("%s: op %d, want %d", cases[i].path, op, cases[i].op);
        if (cases[i].lock == NULL)
            assert_null(lock);
        else
            assert_string_equal(lock, cases[i].lock);
    }
}

static void test_props_table(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        int sys;         /* enum hub_sysprop, or -1 */
        const char *app; /* application key, or NULL */
    } cases[] = {
        {"iothub-app-temp", -1, "temp"},
        {"IoTHub-App-Mixed-Case", -1, "Mixed-Case"}, /* prefix any case, name as sent */
        {"iothub-app-", -1, ""},                     /* empty key: the store refuses it */
        {"IoTHub-MessageId", HUB_SYSPROP_MESSAGE_ID, NULL},
        {"iothub-messageid", HUB_SYSPROP_MESSAGE_ID, NULL},
        {"IoTHub-CorrelationId", HUB_SYSPROP_CORRELATION_ID, NULL},
        {"IoTHub-UserId", HUB_SYSPROP_USER_ID, NULL},
        {"IoTHub-To", HUB_SYSPROP_TO, NULL},
        {"iothub-to", HUB_SYSPROP_TO, NULL}, /* what Node sends on every telemetry */
        {"IoTHub-Expiry", HUB_SYSPROP_EXPIRY, NULL},
        {"iothub-contenttype", HUB_SYSPROP_CONTENT_TYPE, NULL},
        {"iothub-contentencoding", HUB_SYSPROP_CONTENT_ENCODING, NULL},
        {"iothub-interface-id", HUB_SYSPROP_INTERFACE_ID, NULL},
        {"dt-subject", HUB_SYSPROP_COMPONENT, NULL},
        {"Authorization", -1, NULL},
        {"IoTHub-Ack", -1, NULL}, /* meaningless on telemetry */
        {"Content-Type", -1, NULL},
        {"iothub-app", -1, NULL}, /* no '-': not the prefix */
        {"x-iothub-app-k", -1, NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct hub_http_dt_props p;
        memset(&p, 0, sizeof(p));
        assert_int_equal(hub_http__dt_props_add(&p, cases[i].name, "v"), 0);
        for (int s = 0; s < HUB_SYSPROP__COUNT; s++) {
            if (s == cases[i].sys)
                assert_non_null(p.sys[s]);
            else if (p.sys[s] != NULL)
                fail_msg("%s set system property %s", cases[i].name,
                         hub_sysprop_name((enum hub_sysprop)s));
        }
        if (cases[i].app == NULL) {
            assert_int_equal(p.app_count, 0);
        } else {
            assert_int_equal(p.app_count, 1);
            assert_string_equal(p.app[0].key, cases[i].app);
            assert_string_equal(p.app[0].value, "v");
        }
    }
}

static void test_props_duplicates_and_bound(void **state)
{
    (void)state;
    struct hub_http_dt_props p;
    memset(&p, 0, sizeof(p));
    assert_int_equal(hub_http__dt_props_add(&p, "IoTHub-MessageId", "first"), 0);
    assert_int_equal(hub_http__dt_props_add(&p, "iothub-messageid", "second"), 0);
    assert_string_equal(p.sys[HUB_SYSPROP_MESSAGE_ID], "first");
    char names[HUB_HTTP_APP_MAX + 1][32];
    for (int i = 0; i < HUB_HTTP_APP_MAX; i++) {
        snprintf(names[i], sizeof(names[i]), "iothub-app-k%d", i);
        assert_int_equal(hub_http__dt_props_add(&p, names[i], "v"), 0);
    }
    assert_int_equal(p.app_count, HUB_HTTP_APP_MAX);
    assert_int_equal(hub_http__dt_props_add(&p, "iothub-app-onemore", "v"), -1);
    assert_int_equal(p.app_count, HUB_HTTP_APP_MAX);
    /* system headers still land once the application bound is reached */
    assert_int_equal(hub_http__dt_props_add(&p, "IoTHub-CorrelationId", "c"), 0);
    assert_string_equal(p.sys[HUB_SYSPROP_CORRELATION_ID], "c");
}

static void test_msg_build_adds_connection_properties(void **state)
{
    (void)state;
    struct hub_http_dt_props p;
    memset(&p, 0, sizeof(p));
    hub_http__dt_props_add(&p, "iothub-app-a", "1");
    hub_http__dt_props_add(&p, "IoTHub-MessageId", "m1");
    static const struct {
        enum hub_device_auth_method m;
        const char *needle;
    } methods[] = {
        {HUB_DEVICE_AUTH_X509_CA, "\"issuer\":\"external\""},
        {HUB_DEVICE_AUTH_SELF_SIGNED, "\"type\":\"x509Certificate\",\"issuer\":\"iothub\""},
        {HUB_DEVICE_AUTH_SAS, "\"type\":\"sas\""},
    };
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        struct hub_telemetry_msg msg;
        hub_http__dt_msg_build(&p, "dev1", hub_device_auth_method_json(methods[i].m),
                               (const unsigned char *)"hi", 2, &msg);
        assert_string_equal(msg.device_id, "dev1");
        assert_string_equal(msg.sys[HUB_SYSPROP_CONN_DEVICE_ID], "dev1");
        assert_non_null(strstr(msg.sys[HUB_SYSPROP_CONN_AUTH_METHOD], methods[i].needle));
        assert_string_equal(msg.sys[HUB_SYSPROP_MESSAGE_ID], "m1");
        assert_int_equal(msg.app_count, 1);
        assert_string_equal(msg.app[0].key, "a");
        assert_int_equal(msg.body_len, 2);
        assert_int_equal(msg.enqueued_ms, 0); /* the log stamps it */
        assert_int_equal(hub_telemetry_msg_check(&msg, NULL), 0);
    }
}

static void test_batch_elements(void **state)
{
    (void)state;
    static const struct {
        const char *json;
        int rc;
        const char *body; /* decoded, when rc == 0 */
        size_t app_count;
        const char *why; /* substring of the refusal */
    } cases[] = {
        {"{\"body\":\"aGVsbG8=\",\"properties\":{\"iothub-app-k\":\"v\"}}", 0, "hello", 1, NULL},
        {"{\"body\":\"aGVsbG8=\"}", 0, "hello", 0, NULL},
        {"{\"body\":\"\"}", 0, "", 0, NULL},
        {"{}", 0, "", 0, NULL},
        {"{\"body\":\"aGVsbG8=\",\"properties\":{\"IoTHub-MessageId\":\"m\",\"x\":\"ignored\"}}", 0,
         "hello", 0, NULL},
        {"[]", -1, NULL, 0, "not an object"},
        {"\"x\"", -1, NULL, 0, "not an object"},
        {"{\"body\":5}", -1, NULL, 0, "base64 string"},
        {"{\"body\":\"!!!!\"}", -1, NULL, 0, "not base64"},
        {"{\"body\":\"aGVsbG8\"}", -1, NULL, 0, "not base64"}, /* unpadded */
        {"{\"properties\":[]}", -1, NULL, 0, "not an object"},
        {"{\"properties\":{\"iothub-app-k\":1}}", -1, NULL, 0, "not a string"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *elem = json_loads(cases[i].json, JSON_DECODE_ANY, NULL);
        assert_non_null(elem);
        struct hub_http_dt_props p;
        unsigned char *body = NULL;
        size_t len = 99;
        char why[160] = "";
        int rc = hub_http__dt_batch_elem(elem, &p, &body, &len, why, sizeof(why));
        if (rc != cases[i].rc)
            fail_msg("%s: rc %d (%s)", cases[i].json, rc, why);
        if (rc == 0) {
            assert_int_equal(len, strlen(cases[i].body));
            if (len > 0)
                assert_memory_equal(body, cases[i].body, len);
            else
                assert_null(body);
            assert_int_equal(p.app_count, cases[i].app_count);
        } else {
            assert_null(body);
            if (strstr(why, cases[i].why) == NULL)
                fail_msg("%s: refusal '%s' lacks '%s'", cases[i].json, why, cases[i].why);
        }
        free(body);
        json_decref(elem);
    }
    json_t *elem =
        json_loads("{\"body\":\"eA==\",\"properties\":{\"iothub-messageid\":\"m7\"}}", 0, NULL);
    struct hub_http_dt_props p;
    unsigned char *body = NULL;
    size_t len = 0;
    char why[160];
    assert_int_equal(hub_http__dt_batch_elem(elem, &p, &body, &len, why, sizeof(why)), 0);
    assert_string_equal(p.sys[HUB_SYSPROP_MESSAGE_ID], "m7");
    free(body);
    json_decref(elem);
}

/* IoTHub-Expiry in (routes_messages.c), iothub-expiry / enqueuedtime out. */
static void test_iso_ms_table(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        int64_t ms; /* -1: refused */
    } cases[] = {
        {"2026-01-01T00:00:00Z", 1767225600000},
        {"2026-01-01T00:00:00+00:00", 1767225600000},
        {"2026-01-01T00:00:00.5Z", 1767225600500},
        {"2026-01-01T00:00:00.05Z", 1767225600050},
        {"2026-01-01T00:00:00.123456Z", 1767225600123}, /* past ms: dropped, not rounded */
        {"2026-01-01T00:00:00.Z", 1767225600000},
        {"2000-02-29T23:59:59.999Z", 951868799999},
        {"2026-01-01T00:00:00", -1},       /* no zone */
        {"2026-01-01T00:00:00+01:00", -1}, /* UTC only */
        {"2026-01-01T00:00:00ZZ", -1},
        {"2026-01-01T00:00:00.1x", -1},
        {"2026-01-01 00:00:00Z", -1},
        {"2026-13-01T00:00:00Z", -1},
        {"tomorrow", -1},
        {"", -1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t ms = hub_http__iso_ms_parse(cases[i].in);
        if (ms != cases[i].ms)
            fail_msg("'%s': %lld, want %lld", cases[i].in, (long long)ms, (long long)cases[i].ms);
    }
    static const struct {
        int64_t ms;
        const char *out;
    } fmt[] = {
        {0, "1970-01-01T00:00:00.000Z"},
        {1767225600123, "2026-01-01T00:00:00.123Z"},
        {951868799999, "2000-02-29T23:59:59.999Z"},
    };
    for (size_t i = 0; i < sizeof(fmt) / sizeof(fmt[0]); i++) {
        char out[HUB_HTTP_ISO_MS_SIZE];
        hub_http__iso_ms_format(fmt[i].ms, out);
        assert_string_equal(out, fmt[i].out);
        assert_int_equal(hub_http__iso_ms_parse(out), fmt[i].ms);
    }
}

static void test_refusal_status_table(void **state)
{
    (void)state;
    static const struct {
        enum hub_device_reason reason;
        int status;
    } cases[] = {
        {HUB_DEVICE_R_DEVICE_UNKNOWN, 401},  {HUB_DEVICE_R_DEVICE_DISABLED, 401},
        {HUB_DEVICE_R_NO_CREDENTIAL, 401},   {HUB_DEVICE_R_WRONG_CREDENTIAL, 401},
        {HUB_DEVICE_R_CHAIN_UNTRUSTED, 401}, {HUB_DEVICE_R_CN_MISMATCH, 401},
        {HUB_DEVICE_R_CERT_EXPIRED, 401},    {HUB_DEVICE_R_THUMBPRINT_MISMATCH, 401},
        {HUB_DEVICE_R_SAS_EXPIRED, 401},     {HUB_DEVICE_R_SAS_BAD_SIGNATURE, 401},
        {HUB_DEVICE_R_SAS_MALFORMED, 401},   {HUB_DEVICE_R_AUTH_TYPE_NONE, 401},
        {HUB_DEVICE_R_BAD_CLIENT_ID, 400},   {HUB_DEVICE_R_MODULE_UNSUPPORTED, 400},
        {HUB_DEVICE_R_SERVER_ERROR, 500},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        if (dt_refusal_status(cases[i].reason) != cases[i].status)
            fail_msg("%s: %d, want %d", hub_device_reason_name(cases[i].reason),
                     dt_refusal_status(cases[i].reason), cases[i].status);
}

/* Every character Azure allows in a device id is accepted from the path (a
 * synthesized MQTT username could not carry '?' or '='), and the registry's
 * id rules refuse the rest with 400. */
static void test_identify_path_id(void **state)
{
    (void)state;
    static const struct {
        const char *id;
        enum hub_device_reason reason;
    } cases[] = {
        {"dev1", HUB_DEVICE_R_OK},
        {"a-b.c%d_e*f?g!h(i)j,k:l=m@n$o'p", HUB_DEVICE_R_OK},
        {"?api-version=1", HUB_DEVICE_R_OK},
        {"x=y&z", HUB_DEVICE_R_BAD_CLIENT_ID}, /* '&' is not in Azure's set */
        {"a+b", HUB_DEVICE_R_BAD_CLIENT_ID},
        {"a#b", HUB_DEVICE_R_BAD_CLIENT_ID},
        {"", HUB_DEVICE_R_BAD_CLIENT_ID},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct hub_device_authn_result res;
        int rc = dt_identify(cases[i].id, &res);
        if (res.reason != cases[i].reason)
            fail_msg("'%s': %s, want %s (%s)", cases[i].id, hub_device_reason_name(res.reason),
                     hub_device_reason_name(cases[i].reason), res.detail);
        assert_int_equal(rc, cases[i].reason == HUB_DEVICE_R_OK ? 0 : -1);
        if (rc == 0) {
            assert_string_equal(res.device_id, cases[i].id);
        } else {
            assert_int_equal(dt_refusal_status(res.reason), 400);
            assert_true(strlen(res.detail) > 0);
        }
    }
    char longid[HUB_DEVICE_ID_MAX + 2];
    memset(longid, 'a', sizeof(longid) - 1);
    longid[sizeof(longid) - 1] = '\0';
    struct hub_device_authn_result res;
    assert_int_equal(dt_identify(longid, &res), -1);
    longid[HUB_DEVICE_ID_MAX] = '\0';
    assert_int_equal(dt_identify(longid, &res), 0);
}

/* The Authorization header as the CONNECT password: a device token for the
 * path's id passes; one for another id, or signed by a policy, does not. */
static void test_synthesized_connect_sas(void **state)
{
    (void)state;
    const char *key = "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MDA=";
    struct hub_device dev;
    memset(&dev, 0, sizeof(dev));
    snprintf(dev.id, sizeof(dev.id), "devsas");
    dev.auth_type = HUB_AUTH_SAS;
    dev.status = HUB_DEVICE_ENABLED;
    snprintf(dev.primary_key, sizeof(dev.primary_key), "%s", key);
    snprintf(dev.secondary_key, sizeof(dev.secondary_key), "%s", key);
    const char *hosts[] = {"localhost"};
    struct hub_auth_verify_cfg cfg = {.hosts = hosts, .host_count = 1};
    int64_t now = 1700000000;
    static const struct {
        const char *resource;
        const char *skn;
        enum hub_device_reason reason;
    } cases[] = {
        {"localhost/devices/devsas", NULL, HUB_DEVICE_R_OK},
        {"localhost/devices/other", NULL, HUB_DEVICE_R_SAS_WRONG_SCOPE},
        {"localhost", "iothubowner", HUB_DEVICE_R_SAS_UNKNOWN_POLICY},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char token[HUB_AUTH_TOKEN_MAX + 1];
        assert_int_equal(hub_auth_sas_build(cases[i].resource, HUB_AUTH_SR_ENCODED, cases[i].skn,
                                            key, now + 600, token, sizeof(token), NULL),
                         0);
        struct hub_mqtt_connect cn;
        dt_connect_build("devsas", token, &cn);
        struct hub_device_authn_result res;
        assert_int_equal(dt_identify("devsas", &res), 0);
        struct hub_device_authn_in in = {
            .connect = &cn,
            .lookup_rc = 0,
            .device = &dev,
            .sas_cfg = &cfg,
            .policies = NULL,
            .now = now,
        };
        int rc = hub_device_authn_decide(&in, &res);
        if (res.reason != cases[i].reason)
            fail_msg("%s: %s, want %s", cases[i].resource, hub_device_reason_name(res.reason),
                     hub_device_reason_name(cases[i].reason));
        assert_int_equal(rc, cases[i].reason == HUB_DEVICE_R_OK ? 0 : -1);
        if (rc == 0)
            assert_int_equal(res.method, HUB_DEVICE_AUTH_SAS);
    }
}

/* ---- the parked telemetry job: every order of "client left", "committed"
 * and "handed back to the worker" frees it exactly once (ASan sees a double
 * free; the live gauge sees a leak). The answered path needs a real request:
 * tests/e2e/device_https.sh. */

static struct tel_job *job_for_test(struct event_base *base, size_t messages)
{
    struct tel_job *job = job_new();
    assert_non_null(job);
    job->base = base;
    job->remaining += messages; /* as job_append does before each append */
    job->accepted = messages;
    return job;
}

static void test_job_client_left_before_commit(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    assert_non_null(base);
    struct tel_job *job = job_for_test(base, 2);
    assert_int_equal(atomic_load(&tel_jobs_live), 1);
    on_durable(job, 0, 1);         /* first message durable */
    job_complete_one(job, 0);      /* submission done */
    on_job_conn_closed(NULL, job); /* the client leaves */
    assert_int_equal(atomic_load(&tel_jobs_live), 1);
    on_durable(job, HUB_E_IO, 0); /* last: nobody to answer, freed here */
    assert_int_equal(atomic_load(&tel_jobs_live), 0);
    assert_int_equal(event_base_get_num_events(base, EVENT_BASE_COUNT_ACTIVE), 0); /* not posted */
    event_base_free(base);
}

static void test_job_client_left_after_handoff(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    assert_non_null(base);
    struct tel_job *job = job_for_test(base, 1);
    on_durable(job, 0, 7);         /* committed before the submission ended */
    job_complete_one(job, 0);      /* last: handed to the worker */
    on_job_conn_closed(NULL, job); /* the client leaves before the worker runs it */
    assert_int_equal(atomic_load(&tel_jobs_live), 1);
    event_base_loop(base, EVLOOP_NONBLOCK); /* runs on_job_done: orphaned, frees */
    assert_int_equal(atomic_load(&tel_jobs_live), 0);
    event_base_free(base);
}

/* The committer calls on_durable from its own thread, possibly before the
 * submission (worker) ends: only the last of all of them hands over. */
struct durable_thread_arg {
    struct tel_job *job;
    size_t count;
};

static void *durable_thread(void *arg)
{
    struct durable_thread_arg *a = arg;
    for (size_t i = 0; i < a->count; i++)
        on_durable(a->job, 0, (int64_t)i + 1);
    return NULL;
}

static void test_job_durable_from_another_thread(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    assert_non_null(base);
    struct tel_job *job = job_for_test(base, 200);
    pthread_t t;
    struct durable_thread_arg a = {.job = job, .count = 200};
    assert_int_equal(pthread_create(&t, NULL, durable_thread, &a), 0);
    on_job_conn_closed(NULL, job); /* the client gives up meanwhile */
    job_complete_one(job, 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    event_base_loop(base, EVLOOP_NONBLOCK);
    assert_int_equal(atomic_load(&tel_jobs_live), 0);
    event_base_free(base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classify_table),
        cmocka_unit_test(test_props_table),
        cmocka_unit_test(test_props_duplicates_and_bound),
        cmocka_unit_test(test_msg_build_adds_connection_properties),
        cmocka_unit_test(test_iso_ms_table),
        cmocka_unit_test(test_batch_elements),
        cmocka_unit_test(test_refusal_status_table),
        cmocka_unit_test(test_identify_path_id),
        cmocka_unit_test(test_synthesized_connect_sas),
        cmocka_unit_test(test_job_client_left_before_commit),
        cmocka_unit_test(test_job_client_left_after_handoff),
        cmocka_unit_test(test_job_durable_from_another_thread),
    };
    /* on_durable posts from the committer's thread in the product. */
    evthread_use_pthreads();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
