/*
 * device: direct methods over a real MQTT-over-TLS connection
 * (hub_device_method_invoke; reference §2 "Direct methods"): the request
 * topic and body the device gets, its answer reaching done(), an unknown
 * rid ignored, DEVICE_NOT_ONLINE (at once and after the connect timeout),
 * a call that waits for the device to connect and subscribe, a resumed
 * session's subscription, TIMEOUT, a disconnect mid-call, refused
 * arguments (done never called), and shutdown.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <time.h>

#include "device_loopback_fx.h"

/* ---- what done() saw ---------------------------------------------------------- */

struct outcome {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int calls;
    enum hub_device_method_outcome outcome;
    int status;
    char payload[1024];
    size_t payload_len;
    bool payload_null;
};

static void outcome_init(struct outcome *o)
{
    memset(o, 0, sizeof(*o));
    pthread_mutex_init(&o->mu, NULL);
    pthread_cond_init(&o->cv, NULL);
}

static void outcome_destroy(struct outcome *o)
{
    pthread_mutex_destroy(&o->mu);
    pthread_cond_destroy(&o->cv);
}

static void on_done(void *arg, const struct hub_device_method_result *res)
{
    struct outcome *o = arg;
    pthread_mutex_lock(&o->mu);
    o->calls++;
    o->outcome = res->outcome;
    o->status = res->status;
    o->payload_null = res->payload == NULL;
    o->payload_len = res->payload_len < sizeof(o->payload) - 1 ? res->payload_len : 0;
    if (res->payload != NULL)
        memcpy(o->payload, res->payload, o->payload_len);
    o->payload[o->payload_len] = '\0';
    pthread_cond_broadcast(&o->cv);
    pthread_mutex_unlock(&o->mu);
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits (up to 5 s) for done() to have run; returns what it saw. */
static enum hub_device_method_outcome outcome_wait(struct outcome *o)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 5;
    pthread_mutex_lock(&o->mu);
    int rc = 0;
    while (o->calls == 0 && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&o->cv, &o->mu, &until);
    enum hub_device_method_outcome out = o->outcome;
    int calls = o->calls;
    pthread_mutex_unlock(&o->mu);
    if (calls == 0)
        fail_msg("done() was not called within 5 s");
    return out;
}

static int outcome_calls(struct outcome *o)
{
    pthread_mutex_lock(&o->mu);
    int n = o->calls;
    pthread_mutex_unlock(&o->mu);
    return n;
}

static void invoke_ok(struct fx *fx, const char *id, const char *name, const char *payload,
                      int response_ms, int connect_ms, struct outcome *o)
{
    struct hub_err err = {0};
    if (hub_device_method_invoke(fx->ep, id, name, payload, payload ? strlen(payload) : 0,
                                 response_ms, connect_ms, on_done, o, &err) != 0)
        fail_msg("invoke: %s", err.msg);
}

static void connect_subscribed(struct fx *fx, struct client *c, bool clean)
{
    *c = client_open(fx);
    client_connect(c, "dev1", clean);
    assert_int_equal(client_subscribe(c, 1, "$iothub/methods/POST/#"), 0);
}

/* ---- tests ------------------------------------------------------------------ */

static void test_method_round_trip(void **state)
{
    struct fx *fx = *state;
    struct client c;
    connect_subscribed(fx, &c, true);

    struct outcome o;
    outcome_init(&o);
    invoke_ok(fx, "dev1", "reboot", "{\"delay\": 1}", 5000, 0, &o);
    struct rx_publish rx;
    client_read_publish(&c, &rx);
    assert_int_equal(rx.qos, 0);
    assert_string_equal(rx.topic, "$iothub/methods/POST/reboot/?$rid=1");
    assert_string_equal(rx.payload, "{\"delay\": 1}"); /* the caller's bytes */

    /* A response nobody waits for is ignored; the connection stays. */
    client_publish(&c, 0, 0, "$iothub/methods/res/200/?$rid=99", "{}", 2);
    client_ping(&c);
    assert_int_equal(outcome_calls(&o), 0);

    const char *answer = "{\"done\":true}";
    client_publish(&c, 0, 0, "$iothub/methods/res/201/?$rid=1", answer, strlen(answer));
    assert_int_equal(outcome_wait(&o), HUB_DEVICE_METHOD_OK);
    assert_int_equal(o.status, 201);
    assert_string_equal(o.payload, answer);
    outcome_destroy(&o);

    /* No payload: the device gets `null`; an empty QoS 1 answer is acked. */
    outcome_init(&o);
    invoke_ok(fx, "dev1", "ping", NULL, 5000, 0, &o);
    client_read_publish(&c, &rx);
    assert_string_equal(rx.topic, "$iothub/methods/POST/ping/?$rid=2");
    assert_string_equal(rx.payload, "null");
    client_publish(&c, 1, 9, "$iothub/methods/res/404/?$rid=2", NULL, 0);
    uint8_t body[16];
    size_t len = 0;
    assert_int_equal(client_read(&c, body, sizeof(body), &len), 0x40); /* PUBACK */
    assert_int_equal(body[1], 9);
    assert_int_equal(outcome_wait(&o), HUB_DEVICE_METHOD_OK);
    assert_int_equal(o.status, 404);
    assert_true(o.payload_null);
    assert_int_equal(outcome_calls(&o), 1);
    outcome_destroy(&o);
    client_close(&c);
}

static void test_method_not_online(void **state)
{
    struct fx *fx = *state;
    struct outcome o;

    /* No connection, no connect timeout: answered before invoke returns. */
    outcome_init(&o);
    invoke_ok(fx, "dev1", "reboot", "{}", 5000, 0, &o);
    assert_int_equal(outcome_calls(&o), 1);
    assert_int_equal(o.outcome, HUB_DEVICE_METHOD_NOT_ONLINE);
    outcome_destroy(&o);

    /* With a connect timeout: only once it passed. */
    outcome_init(&o);
    int64_t t0 = mono_ms();
    invoke_ok(fx, "dev1", "reboot", "{}", 5000, 300, &o);
    assert_int_equal(outcome_wait(&o), HUB_DEVICE_METHOD_NOT_ONLINE);
    assert_true(mono_ms() - t0 >= 250);
    outcome_destroy(&o);

    /* Connected but not subscribed to methods is not online either. */
    struct client c = client_open(fx);
    client_connect(&c, "dev1", true);
    outcome_init(&o);
    invoke_ok(fx, "dev1", "reboot", "{}", 5000, 0, &o);
    assert_int_equal(outcome_wait(&o), HUB_DEVICE_METHOD_NOT_ONLINE);
    outcome_destroy(&o);
    client_ping(&c); /* and no request reached it */
    client_close(&c);
}

static void test_method_waits_for_device(void **state)
{
    struct fx *fx = *state;
    struct outcome o;
    outcome_init(&o);
    invoke_ok(fx, "dev1", "start", "[1,2]", 5000, 5000, &o);
    usleep(100 * 1000);
    assert_int_equal(outcome_calls(&o), 0);

    /* The device connects (keeping a session) and subscribes: the waiting
     * call goes out at once. */
    struct client c;
    connect_subscribed(fx, &c, false);
    struct rx_publish rx;
    client_read_publish(&c, &rx);
    assert_string_equal(rx.topic, "$iothub/methods/POST/start/?$rid=1");
    assert_string_equal(rx.payload, "[1,2]");
    client_publish(&c, 0, 0, "$iothub/methods/res/200/?$rid=1", "\"ok\"", 4);
    assert_int_equal(outcome_wait(&o), HUB_DEVICE_METHOD_OK);
    assert_string_equal(o.payload, "\"ok\"");
    outcome_destroy(&o);
    client_disconnect(&c);

    /* Reconnecting with the session: still subscribed without a SUBSCRIBE;
     * rids start again on the new connection. */
    c = client_open(fx);
    assert_true(client_connect(&c, "dev1", false));
    outcome_init(&o);
    invoke_ok(fx, "dev1", "again", NULL, 5000, 0, &o);
    client_read_publish(&c, &rx);
    assert_string_equal(rx.topic, "$iothub/methods/POST/again/?$rid=1");
    client_publish(&c, 0, 0, "$iothub/methods/res/200/?$rid=1", "{}", 2);
    assert_int_equal(outcome_wait(&o), HUB_DEVICE_METHOD_OK);
    outcome_destroy(&o);
    client_close(&c);
}

static void test_method_timeout(void **state)
{
    struct fx *fx = *state;
    struct client c;
    connect_subscribed(fx, &c, true);
    struct outcome o;
    outcome_init(&o);
    int64_t t0 = mono_ms();
    invoke_ok(fx, "dev1", "slow", "{}", 300, 0, &o);
    struct rx_publish rx;
    client_read_publish(&c, &rx);
    assert_int_equal(outcome_wait(&o), HUB_DEVICE_METHOD_TIMEOUT);
    assert_true(mono_ms() - t0 >= 250);

    /* The late answer is ignored: done() stays called once, the device stays. */
    client_publish(&c, 0, 0, "$iothub/methods/res/200/?$rid=1", "{}", 2);
    client_ping(&c);
    assert_int_equal(outcome_calls(&o), 1);
    assert_int_equal(hub_device_live_count(fx->ep), 1);
    outcome_destroy(&o);
    client_close(&c);
}

static void test_method_device_disconnects(void **state)
{
    struct fx *fx = *state;
    struct client c;
    connect_subscribed(fx, &c, true);
    struct outcome o;
    outcome_init(&o);
    invoke_ok(fx, "dev1", "reboot", "{}", 5000, 0, &o);
    struct rx_publish rx;
    client_read_publish(&c, &rx);
    client_close(&c); /* gone without answering */
    assert_int_equal(outcome_wait(&o), HUB_DEVICE_METHOD_DISCONNECTED);
    outcome_destroy(&o);
}

static void test_method_refused_arguments(void **state)
{
    struct fx *fx = *state;
    struct outcome o;
    outcome_init(&o);
    char *big = malloc(HUB_DEVICE_METHOD_PAYLOAD_MAX + 2);
    memset(big, ' ', HUB_DEVICE_METHOD_PAYLOAD_MAX + 1);
    big[0] = '1';
    big[HUB_DEVICE_METHOD_PAYLOAD_MAX + 1] = '\0';
    const struct {
        const char *id, *name, *payload;
        int response_ms, connect_ms;
        int code;
    } cases[] = {
        {"dev1", "a/b", NULL, 1000, 0, HUB_E_INVALID_ARG},
        {"dev1", "", NULL, 1000, 0, HUB_E_INVALID_ARG},
        {"dev1", "a?b", NULL, 1000, 0, HUB_E_INVALID_ARG},
        {"dev1", "a#", NULL, 1000, 0, HUB_E_INVALID_ARG},
        {"dev1", "tab\there", NULL, 1000, 0, HUB_E_INVALID_ARG},
        {"dev1", "\xff\xfe", NULL, 1000, 0, HUB_E_INVALID_ARG},
        {"dev1", "m", "{not json", 1000, 0, HUB_E_INVALID_ARG},
        {"dev1", "m", "{} trailing", 1000, 0, HUB_E_INVALID_ARG},
        {"dev1", "m", big, 1000, 0, HUB_E_TOO_LARGE},
        {"dev 1", "m", NULL, 1000, 0, HUB_E_INVALID_ARG},
        {"dev1", "m", NULL, 0, 0, HUB_E_INVALID_ARG},
        {"dev1", "m", NULL, 1000, -1, HUB_E_INVALID_ARG},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct hub_err err = {0};
        int rc =
            hub_device_method_invoke(fx->ep, cases[i].id, cases[i].name, cases[i].payload,
                                     cases[i].payload ? strlen(cases[i].payload) : 0,
                                     cases[i].response_ms, cases[i].connect_ms, on_done, &o, &err);
        if (rc != cases[i].code)
            fail_msg("case %zu: rc %d, want %d (%s)", i, rc, cases[i].code, err.msg);
        assert_true(err.msg[0] != '\0');
    }
    /* Exactly at the limit is fine (answered NOT_ONLINE: nobody is connected). */
    big[HUB_DEVICE_METHOD_PAYLOAD_MAX] = '\0';
    invoke_ok(fx, "dev1", "m", big, 1000, 0, &o);
    assert_int_equal(outcome_calls(&o), 1);
    assert_int_equal(o.outcome, HUB_DEVICE_METHOD_NOT_ONLINE);
    free(big);
    outcome_destroy(&o);
}

static void test_method_shutdown(void **state)
{
    struct fx *fx = *state;
    fx_device_add(fx, "dev2");
    struct client c;
    connect_subscribed(fx, &c, true);
    struct outcome sent, waiting;
    outcome_init(&sent);
    outcome_init(&waiting);
    invoke_ok(fx, "dev1", "reboot", "{}", 10000, 0, &sent);
    invoke_ok(fx, "dev2", "reboot", "{}", 10000, 10000, &waiting);
    struct rx_publish rx;
    client_read_publish(&c, &rx);
    lbfx_drain(&fx->lb);
    assert_int_equal(outcome_wait(&sent), HUB_DEVICE_METHOD_SHUTDOWN);
    assert_int_equal(outcome_wait(&waiting), HUB_DEVICE_METHOD_SHUTDOWN);
    /* After the drain nothing takes calls: refused at once, still exactly once. */
    struct outcome late;
    outcome_init(&late);
    invoke_ok(fx, "dev2", "reboot", "{}", 10000, 10000, &late);
    assert_int_equal(outcome_calls(&late), 1);
    assert_int_equal(late.outcome, HUB_DEVICE_METHOD_SHUTDOWN);
    assert_int_equal(outcome_calls(&sent), 1);
    assert_int_equal(outcome_calls(&waiting), 1);
    outcome_destroy(&late);
    outcome_destroy(&sent);
    outcome_destroy(&waiting);
    client_close(&c);
}

/* An answer over Azure's 128 KiB: refused (the call fails with
 * RESPONSE_TOO_LARGE at once, the connection is closed with
 * METHOD_RESPONSE_TOO_LARGE); exactly 128 KiB still passes. */
static void test_method_answer_too_large(void **state)
{
    struct fx *fx = *state;
    struct client c;
    connect_subscribed(fx, &c, true);
    size_t big_len = HUB_DEVICE_METHOD_PAYLOAD_MAX + 1;
    char *big = malloc(big_len);
    memset(big, ' ', big_len);
    big[0] = '"';
    big[big_len - 2] = '"';

    /* At the limit: delivered. */
    struct outcome o;
    outcome_init(&o);
    invoke_ok(fx, "dev1", "dump", NULL, 5000, 0, &o);
    struct rx_publish rx;
    client_read_publish(&c, &rx);
    char topic[128];
    const char *rid = strstr(rx.topic, "$rid=") + 5;
    snprintf(topic, sizeof(topic), "$iothub/methods/res/200/?$rid=%s", rid);
    client_publish(&c, 0, 0, topic, big, big_len - 1);
    assert_int_equal(outcome_wait(&o), HUB_DEVICE_METHOD_OK);
    assert_int_equal(o.status, 200);
    outcome_destroy(&o);

    /* One byte over: refused at once, well before the response timeout. */
    outcome_init(&o);
    invoke_ok(fx, "dev1", "dump", NULL, 30000, 0, &o);
    client_read_publish(&c, &rx);
    rid = strstr(rx.topic, "$rid=") + 5;
    snprintf(topic, sizeof(topic), "$iothub/methods/res/200/?$rid=%s", rid);
    int64_t t0 = mono_ms();
    client_publish(&c, 0, 0, topic, big, big_len);
    assert_int_equal(outcome_wait(&o), HUB_DEVICE_METHOD_RESPONSE_TOO_LARGE);
    assert_true(mono_ms() - t0 < 5000);
    assert_int_equal(hub_device_reason_count(fx->ep, HUB_DEVICE_R_METHOD_RESPONSE_TOO_LARGE), 1);
    client_expect_closed(&c);
    outcome_destroy(&o);
    free(big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_method_round_trip, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_method_not_online, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_method_waits_for_device, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_method_timeout, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_method_device_disconnects, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_method_refused_arguments, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_method_shutdown, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_method_answer_too_large, fx_setup, fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
