/*
 * dpsdev: one worker serving DPS over MQTT/TLS on 127.0.0.1 (port 0), a
 * blocking OpenSSL client in the test thread, and a fake backend that
 * decides from the registration id and the presented credential (the real
 * one, over the dps layer, is covered by tests/e2e/dps_device.sh). Covers
 * the §7 exchange (SUBSCRIBE, register -> 202 + retry-after, poll -> 200
 * assigned with the registration state), what the backend is handed (leaf,
 * chain, SAS password, payload), each refusal's status / errorCode /
 * counter, polls of unknown or foreign operations, and CONNECT refusals.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <jansson.h>

#include "../loopback_fx.h"
#include "dpsdev/dpsdev.h"

#define SCOPE "0ne0000ABCD"

struct seen {
    int calls;
    char leaf_cn[64];
    int chain_len;
    char sas[256];
    char payload[128];
};

struct fx {
    struct lbfx lb; /* dev_cert: CN dev1, by an intermediate sent as its chain */
    struct hub_dpsdev_service *svc;
    struct hub_dpsdev_server *server;
    struct seen seen;
};

/* ---- the fake backend -------------------------------------------------------- */

static void fake_register(void *arg, const struct hub_dpsdev_claim *claim,
                          struct hub_dpsdev_verdict *v)
{
    struct seen *s = arg;
    s->calls++;
    s->leaf_cn[0] = s->sas[0] = s->payload[0] = '\0';
    s->chain_len = claim->chain != NULL ? sk_X509_num(claim->chain) : -1;
    if (claim->leaf != NULL)
        X509_NAME_get_text_by_NID(X509_get_subject_name(claim->leaf), NID_commonName, s->leaf_cn,
                                  sizeof(s->leaf_cn));
    if (claim->sas_token != NULL)
        snprintf(s->sas, sizeof(s->sas), "%.*s", (int)claim->sas_token_len, claim->sas_token);
    if (claim->payload != NULL) {
        char *p = json_dumps(claim->payload, JSON_COMPACT);
        snprintf(s->payload, sizeof(s->payload), "%s", p);
        free(p);
    }
    const char *id = claim->registration_id;
    if (claim->leaf == NULL && claim->sas_token == NULL) {
        v->reason = HUB_DPSDEV_R_NO_CREDENTIAL;
        return;
    }
    if (claim->leaf != NULL && strcmp(s->leaf_cn, id) != 0) {
        v->reason = HUB_DPSDEV_R_CN_MISMATCH;
        snprintf(v->detail, sizeof(v->detail), "leaf CN %s", s->leaf_cn);
        return;
    }
    if (strcmp(id, "disabled1") == 0) {
        v->reason = HUB_DPSDEV_R_DISABLED;
        return;
    }
    if (strcmp(id, "nobody") == 0) {
        v->reason = HUB_DPSDEV_R_NO_ENROLLMENT;
        return;
    }
    const char *status = strcmp(id, "broken") == 0 ? "failed" : "assigned";
    v->reason = strcmp(id, "broken") == 0 ? HUB_DPSDEV_R_ASSIGN_FAILED : HUB_DPSDEV_R_OK;
    v->registration_state =
        json_pack("{s:s, s:s, s:s, s:s, s:s}", "registrationId", id, "deviceId", id, "assignedHub",
                  "hub.test", "status", status, "substatus", "initialAssignment");
}

/* ---- fixture ------------------------------------------------------------------- */

static int server_start(void *ctx, struct hub_net_worker *w, SSL_CTX *tls, int fd,
                        struct hub_err *err)
{
    struct fx *fx = ctx;
    return hub_dpsdev_server_new(fx->svc, w, tls, fd, &fx->server, err);
}

static void server_drain(void *ctx, void (*done)(void *), void *done_arg)
{
    struct fx *fx = ctx;
    hub_dpsdev_server_drain(fx->server, done, done_arg);
}

static int setup_limits(void **state, int idle_max_ms, int session_max_ms)
{
    struct fx *fx = calloc(1, sizeof(*fx));
    struct hub_err err = {0};
    lbfx_init(&fx->lb, "/tmp/hubd-test-dps-XXXXXX");
    X509_free(lbfx_dev_pki(&fx->lb, "dev1", true)); /* the backend is fake: no root to trust */
    struct hub_dpsdev_env env = {
        .id_scope = SCOPE,
        .backend = {.register_device = fake_register, .arg = &fx->seen},
        .handshake_timeout_ms = 3000,
        .idle_max_ms = idle_max_ms,
        .session_max_ms = session_max_ms,
        .retry_after_s = 1,
        .now_ms = lbfx_now_ms,
    };
    assert_int_equal(hub_dpsdev_service_new(&env, &fx->svc, &err), 0);
    lbfx_start(&fx->lb, "--dps-mqtt-port",
               (struct lbfx_server){.start = server_start, .drain = server_drain, .ctx = fx});
    *state = fx;
    return 0;
}

static int setup(void **state)
{
    return setup_limits(state, 0, 0);
}

/* Short session limits, for the tests of those limits. */
static int setup_short(void **state)
{
    return setup_limits(state, 300, 1000);
}

static int teardown(void **state)
{
    struct fx *fx = *state;
    lbfx_drain(&fx->lb);
    hub_dpsdev_service_free(fx->svc);
    lbfx_fini(&fx->lb);
    free(fx);
    return 0;
}

/* ---- the DPS side of the client ---------------------------------------------- */

/* CONNECT as the Node SDK does (clean session, username without '?');
 * returns the CONNACK code. */
static int client_connect(struct client *c, const char *client_id, const char *scope,
                          const char *reg, const char *password)
{
    char user[256];
    snprintf(user, sizeof(user),
             "%s/registrations/%s/api-version=2019-03-31&ClientVersion=azure-iot-provisioning-"
             "device%%2F1.9.1",
             scope, reg);
    client_connect_send(c, client_id, user, password, true, 60);
    return client_connack(c, NULL);
}

static void client_subscribe(struct client *c)
{
    assert_int_equal(client_subscribe_qos(c, 1, "$dps/registrations/res/#", 1), 1);
}

/* QoS 1 PUBLISH; expects the PUBACK, then the response PUBLISH. */
static void client_request(struct client *c, const char *topic, const char *body, uint16_t pid,
                           struct rx_publish *rx)
{
    client_publish(c, 1, pid, topic, body, strlen(body));
    client_read_puback(c, pid);
    client_read_publish(c, rx);
}

static json_t *parse(const char *s)
{
    json_error_t e;
    json_t *j = json_loads(s, 0, &e);
    if (j == NULL)
        fail_msg("not JSON: %s", s);
    return j;
}

/* ---- tests ------------------------------------------------------------------- */

static void test_x509_register_and_poll(void **state)
{
    struct fx *fx = *state;
    struct client c = lbfx_client_open(&fx->lb, true);
    assert_int_equal(client_connect(&c, "dev1", SCOPE, "dev1", NULL), 0);
    client_subscribe(&c);
    struct rx_publish rx;
    client_request(&c, "$dps/registrations/PUT/iotdps-register/?$rid=1",
                   "{\"registrationId\":\"dev1\",\"payload\":{\"a\":1}}", 5, &rx);
    assert_string_equal(rx.topic, "$dps/registrations/res/202/?$rid=1&retry-after=1");
    json_t *j = parse(rx.payload);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "assigning");
    const char *op = json_string_value(json_object_get(j, "operationId"));
    assert_non_null(op);
    /* the backend saw the leaf, the intermediate, no password, the payload */
    assert_int_equal(fx->seen.calls, 1);
    assert_string_equal(fx->seen.leaf_cn, "dev1");
    assert_int_equal(fx->seen.chain_len, 1);
    assert_string_equal(fx->seen.sas, "");
    assert_string_equal(fx->seen.payload, "{\"a\":1}");

    char poll[256];
    snprintf(poll, sizeof(poll),
             "$dps/registrations/GET/iotdps-get-operationstatus/?$rid=2&operationId=%s", op);
    client_request(&c, poll, " ", 6, &rx);
    json_decref(j);
    assert_string_equal(rx.topic, "$dps/registrations/res/200/?$rid=2");
    j = parse(rx.payload);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "assigned");
    json_t *rs = json_object_get(j, "registrationState");
    assert_string_equal(json_string_value(json_object_get(rs, "assignedHub")), "hub.test");
    assert_string_equal(json_string_value(json_object_get(rs, "deviceId")), "dev1");
    json_decref(j);
    assert_int_equal(hub_dpsdev_reason_count(fx->svc, HUB_DPSDEV_R_OK), 1);

    /* an unknown operation id: 404 with the DPS error JSON */
    client_request(&c,
                   "$dps/registrations/GET/iotdps-get-operationstatus/?$rid=3&operationId=4.x.y",
                   " ", 7, &rx);
    assert_string_equal(rx.topic, "$dps/registrations/res/404/?$rid=3");
    j = parse(rx.payload);
    assert_int_equal(json_integer_value(json_object_get(j, "errorCode")), 404201);
    json_decref(j);
    client_close(&c);
}

static void test_sas_password_reaches_backend(void **state)
{
    struct fx *fx = *state;
    struct client c = lbfx_client_open(&fx->lb, false);
    const char *tok =
        "SharedAccessSignature sr=" SCOPE "/registrations/sym1&sig=abc&skn=registration&se=1";
    assert_int_equal(client_connect(&c, "sym1", SCOPE, "sym1", tok), 0);
    client_subscribe(&c);
    struct rx_publish rx;
    client_request(&c, "$dps/registrations/PUT/iotdps-register/?$rid=9",
                   "{\"registrationId\":\"sym1\"}", 1, &rx);
    assert_string_equal(rx.topic, "$dps/registrations/res/202/?$rid=9&retry-after=1");
    assert_string_equal(fx->seen.sas, tok);
    assert_string_equal(fx->seen.leaf_cn, "");
    assert_string_equal(fx->seen.payload, "");
    client_close(&c);
}

/* One refusal per reason: status on the response topic, errorCode, counter,
 * and the backend not asked when the request itself is wrong. */
static void test_refusals(void **state)
{
    struct fx *fx = *state;
    static const struct {
        const char *reg;  /* client id = username registration id */
        bool cert;        /* present dev1's certificate */
        const char *body; /* register body */
        int status;
        int code;
        enum hub_dpsdev_reason reason;
        bool backend_called;
    } cases[] = {
        {"dev2", true, "{\"registrationId\":\"dev2\"}", 401, 401002, HUB_DPSDEV_R_CN_MISMATCH,
         true},
        {"disabled1", false, "{\"registrationId\":\"disabled1\"}", 401, 401002,
         HUB_DPSDEV_R_NO_CREDENTIAL, true},
        {"dev1", true, "{\"registrationId\":\"other\"}", 400, 400004,
         HUB_DPSDEV_R_REGISTRATION_ID_MISMATCH, false},
        {"dev1", true, "not json", 400, 400004, HUB_DPSDEV_R_BAD_REQUEST, false},
        {"dev1", true, "{\"payload\":{}}", 400, 400004, HUB_DPSDEV_R_BAD_REQUEST, false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct client c = lbfx_client_open(&fx->lb, cases[i].cert);
        assert_int_equal(client_connect(&c, cases[i].reg, SCOPE, cases[i].reg, NULL), 0);
        client_subscribe(&c);
        int calls = fx->seen.calls;
        uint64_t before = hub_dpsdev_reason_count(fx->svc, cases[i].reason);
        struct rx_publish rx;
        char want[128];
        client_request(&c, "$dps/registrations/PUT/iotdps-register/?$rid=4", cases[i].body, 2, &rx);
        snprintf(want, sizeof(want), "$dps/registrations/res/%d/?$rid=4", cases[i].status);
        if (strcmp(rx.topic, want) != 0)
            fail_msg("case %zu: topic %s want %s", i, rx.topic, want);
        json_t *j = parse(rx.payload);
        assert_int_equal(json_integer_value(json_object_get(j, "errorCode")), cases[i].code);
        assert_non_null(json_object_get(j, "trackingId"));
        json_decref(j);
        assert_int_equal(hub_dpsdev_reason_count(fx->svc, cases[i].reason), before + 1);
        assert_int_equal(fx->seen.calls - calls, cases[i].backend_called ? 1 : 0);
        client_close(&c);
    }
}

static void test_disabled_and_failed(void **state)
{
    struct fx *fx = *state;
    static const char tok[] = "SharedAccessSignature sr=x&sig=y&skn=registration&se=1";
    /* disabled: refused at register */
    struct client c = lbfx_client_open(&fx->lb, false);
    assert_int_equal(client_connect(&c, "disabled1", SCOPE, "disabled1", tok), 0);
    struct rx_publish rx;
    client_request(&c, "$dps/registrations/PUT/iotdps-register/?$rid=1",
                   "{\"registrationId\":\"disabled1\"}", 1, &rx);
    assert_string_equal(rx.topic, "$dps/registrations/res/401/?$rid=1");
    assert_int_equal(hub_dpsdev_reason_count(fx->svc, HUB_DPSDEV_R_DISABLED), 1);
    client_close(&c);

    /* an assignment that failed: 202, then 200 with status failed */
    c = lbfx_client_open(&fx->lb, false);
    assert_int_equal(client_connect(&c, "broken", SCOPE, "broken", tok), 0);
    client_request(&c, "$dps/registrations/PUT/iotdps-register/?$rid=1",
                   "{\"registrationId\":\"broken\"}", 1, &rx);
    assert_string_equal(rx.topic, "$dps/registrations/res/202/?$rid=1&retry-after=1");
    json_t *j = parse(rx.payload);
    char poll[256];
    snprintf(poll, sizeof(poll),
             "$dps/registrations/GET/iotdps-get-operationstatus/?$rid=2&operationId=%s",
             json_string_value(json_object_get(j, "operationId")));
    json_decref(j);
    client_request(&c, poll, " ", 2, &rx);
    assert_string_equal(rx.topic, "$dps/registrations/res/200/?$rid=2");
    j = parse(rx.payload);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "failed");
    json_decref(j);
    client_close(&c);
}

/* Another registration cannot read dev1's operation. */
static void test_foreign_operation(void **state)
{
    struct fx *fx = *state;
    struct client c = lbfx_client_open(&fx->lb, true);
    assert_int_equal(client_connect(&c, "dev1", SCOPE, "dev1", NULL), 0);
    struct rx_publish rx;
    client_request(&c, "$dps/registrations/PUT/iotdps-register/?$rid=1",
                   "{\"registrationId\":\"dev1\"}", 1, &rx);
    json_t *j = parse(rx.payload);
    char poll[256];
    snprintf(poll, sizeof(poll),
             "$dps/registrations/GET/iotdps-get-operationstatus/?$rid=2&operationId=%s",
             json_string_value(json_object_get(j, "operationId")));
    json_decref(j);
    client_close(&c);

    c = lbfx_client_open(&fx->lb, false);
    assert_int_equal(client_connect(&c, "sym1", SCOPE, "sym1", "SharedAccessSignature x"), 0);
    client_request(&c, poll, " ", 2, &rx);
    assert_string_equal(rx.topic, "$dps/registrations/res/404/?$rid=2");
    client_close(&c);
}

static void test_connect_refusals(void **state)
{
    struct fx *fx = *state;
    static const struct {
        const char *client_id, *scope, *reg;
        int connack;
    } cases[] = {
        {"dev1", "0ne99999999", "dev1", 5}, /* another service's scope */
        {"dev2", SCOPE, "dev1", 2},         /* client id differs from the username */
        {"dev1", SCOPE, "de v1", 4},        /* malformed registration id */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct client c = lbfx_client_open(&fx->lb, true);
        int code = client_connect(&c, cases[i].client_id, cases[i].scope, cases[i].reg, NULL);
        if (code != cases[i].connack)
            fail_msg("case %zu: CONNACK %d want %d", i, code, cases[i].connack);
        client_expect_closed(&c);
    }
}

/* A PUBLISH to a non-DPS topic closes the connection. */
static void test_unknown_topic_closes(void **state)
{
    struct fx *fx = *state;
    struct client c = lbfx_client_open(&fx->lb, true);
    assert_int_equal(client_connect(&c, "dev1", SCOPE, "dev1", NULL), 0);
    client_publish(&c, 0, 0, "devices/dev1/messages/events/", NULL, 0);
    client_expect_closed(&c);
}

static int64_t mono_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The CONNECT proves nothing yet, so a connection cannot stay for free:
 * silence past the idle limit closes it although its keep-alive (60 s)
 * would allow more. */
static void test_idle_limit(void **state)
{
    struct fx *fx = *state;
    struct client c = lbfx_client_open(&fx->lb, true);
    assert_int_equal(client_connect(&c, "dev1", SCOPE, "dev1", NULL), 0);
    int64_t t0 = mono_now_ms();
    client_expect_closed(&c); /* a read that ends at the close, not at 5 s */
    int64_t took = mono_now_ms() - t0;
    if (took < 200 || took > 3000)
        fail_msg("closed after %lld ms, want about 300", (long long)took);
}

/* Pinging keeps a connection from being idle, not alive forever: the
 * session limit (1 s here) ends it. */
static void test_session_limit(void **state)
{
    struct fx *fx = *state;
    struct client c = lbfx_client_open(&fx->lb, true);
    assert_int_equal(client_connect(&c, "dev1", SCOPE, "dev1", NULL), 0);
    int64_t t0 = mono_now_ms();
    uint8_t body[16];
    size_t len = 0;
    int pings = 0;
    while (mono_now_ms() - t0 < 5000) {
        client_send(&c, 0xc0, NULL, 0);
        if (client_read(&c, body, sizeof(body), &len) != 0xd0)
            break;
        pings++;
        usleep(100 * 1000);
    }
    int64_t took = mono_now_ms() - t0;
    client_close(&c);
    if (took < 800 || took > 3000)
        fail_msg("closed after %lld ms (%d pings), want about 1000", (long long)took, pings);
    assert_true(pings >= 5);
}

/* Refused registrations are answered, and the third one ends the
 * connection: one connection is not a lever for unbounded attestation work
 * and log lines. */
static void test_refusal_limit(void **state)
{
    struct fx *fx = *state;
    struct client c = lbfx_client_open(&fx->lb, true); /* CN dev1, registering as dev2 */
    assert_int_equal(client_connect(&c, "dev2", SCOPE, "dev2", NULL), 0);
    client_subscribe(&c);
    for (uint16_t i = 1; i <= 3; i++) {
        struct rx_publish rx;
        client_request(&c, "$dps/registrations/PUT/iotdps-register/?$rid=9",
                       "{\"registrationId\":\"dev2\"}", i, &rx);
        assert_string_equal(rx.topic, "$dps/registrations/res/401/?$rid=9");
    }
    int64_t t0 = mono_now_ms();
    client_expect_closed(&c);
    assert_true(mono_now_ms() - t0 < 3000); /* closed by the hub, not a 5 s read timeout */
    assert_true(fx->seen.calls >= 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_x509_register_and_poll, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sas_password_reaches_backend, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disabled_and_failed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_foreign_operation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connect_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_topic_closes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idle_limit, setup_short, teardown),
        cmocka_unit_test_setup_teardown(test_session_limit, setup_short, teardown),
        cmocka_unit_test_setup_teardown(test_refusal_limit, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
