/*
 * device: one worker serving MQTT over TLS on 127.0.0.1 (port 0), driven by
 * a blocking OpenSSL client in the test thread. Covers what only a real
 * connection shows: CONNACK after a chain-validated CONNECT, PUBACK only
 * after the telemetry commit (and the stored message's properties), C2D
 * delivery and completion, a refusal with its CONNACK code and counter, the
 * older connection kicked by a newer one, a kick on device disable, and the
 * drain.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "device_loopback_fx.h"

/* ---- tests ----------------------------------------------------------------- */

static void test_telemetry_and_c2d(void **state)
{
    struct fx *fx = *state;
    struct client c = client_open(fx);
    client_connect_raw(&c, "dev1", 60);
    uint8_t body[1024];
    size_t len = 0;
    assert_int_equal(client_read(&c, body, sizeof(body), &len), 0x20);
    assert_int_equal(len, 2);
    assert_int_equal(body[1], 0); /* accepted */
    assert_int_equal(hub_device_live_count(fx->ep), 1);

    /* QoS 1 telemetry with a bag and RETAIN: PUBACK after the commit. */
    uint8_t p[256];
    size_t n = 0;
    put_str(p, &n, "devices/dev1/messages/events/%24.mid=m1&%24.ct=application%2Fjson&k=v%20w");
    p[n++] = 0;
    p[n++] = 7; /* packet id */
    memcpy(p + n, "{\"t\":1}", 7);
    n += 7;
    client_send(&c, 0x33, p, n); /* PUBLISH QoS 1 RETAIN */
    assert_int_equal(client_read(&c, body, sizeof(body), &len), 0x40);
    assert_int_equal(body[1], 7);
    struct hub_telemetry_msg_list *list = NULL;
    assert_int_equal(hub_msg_telemetry_read1(fx->log, 1, 10, "dev1", &list, NULL), 0);
    assert_int_equal(list->count, 1); /* durable before the PUBACK arrived */
    struct hub_telemetry_msg *m = &list->items[0];
    assert_int_equal(m->body_len, 7);
    assert_string_equal(m->sys[HUB_SYSPROP_MESSAGE_ID], "m1");
    assert_string_equal(m->sys[HUB_SYSPROP_CONTENT_TYPE], "application/json");
    assert_string_equal(m->sys[HUB_SYSPROP_CONN_DEVICE_ID], "dev1");
    assert_non_null(strstr(m->sys[HUB_SYSPROP_CONN_AUTH_METHOD], "x509Certificate"));
    assert_int_equal(m->app_count, 2);
    assert_string_equal(m->app[0].key, "k");
    assert_string_equal(m->app[0].value, "v w");
    assert_string_equal(m->app[1].key, HUB_DEVICE_RETAIN_PROPERTY);
    hub_telemetry_msg_list_free(list);

    /* PINGREQ -> PINGRESP */
    client_send(&c, 0xc0, NULL, 0);
    assert_int_equal(client_read(&c, body, sizeof(body), &len), 0xd0);

    /* SUBSCRIBE C2D (granted 1) and a twin filter (granted 0, reference §2). */
    n = 0;
    p[n++] = 0;
    p[n++] = 9;
    put_str(p, &n, "devices/dev1/messages/devicebound/#");
    p[n++] = 1;
    put_str(p, &n, "$iothub/twin/res/#");
    p[n++] = 0;
    client_send(&c, 0x82, p, n);
    assert_int_equal(client_read(&c, body, sizeof(body), &len), 0x90);
    assert_int_equal(len, 4);
    assert_int_equal(body[2], 1);
    assert_int_equal(body[3], 0);

    /* A C2D message enqueued now is pushed at once. */
    struct hub_c2d_msg cm;
    memset(&cm, 0, sizeof(cm));
    snprintf(cm.device_id, sizeof(cm.device_id), "dev1");
    cm.body = (const unsigned char *)"hello";
    cm.body_len = 5;
    cm.sys[HUB_SYSPROP_MESSAGE_ID] = "c1";
    struct hub_err err = {0};
    if (hub_msg_c2d_enqueue(fx->c2d, &cm, NULL, NULL, &err) != 0)
        fail_msg("enqueue: %s", err.msg);
    hub_device_c2d_notify(fx->ep, "dev1");
    int t = client_read(&c, body, sizeof(body), &len);
    assert_int_equal(t & 0xf6, 0x32); /* PUBLISH QoS 1 */
    size_t tl = (size_t)body[0] << 8 | body[1];
    char topic[512];
    memcpy(topic, body + 2, tl);
    topic[tl] = '\0';
    assert_non_null(strstr(topic, "devices/dev1/messages/devicebound/"));
    assert_non_null(strstr(topic, "%24.mid=c1"));
    uint16_t pid = (uint16_t)(body[2 + tl] << 8 | body[3 + tl]);
    assert_int_equal(len - 4 - tl, 5);
    assert_memory_equal(body + 4 + tl, "hello", 5);
    size_t count = 99;
    assert_int_equal(hub_msg_c2d_count(fx->c2d, "dev1", &count, NULL), 0);
    assert_int_equal(count, 1); /* still queued until the PUBACK */
    uint8_t ack[2] = {(uint8_t)(pid >> 8), (uint8_t)pid};
    client_send(&c, 0x40, ack, 2);
    /* PINGREQ round-trip orders us after the PUBACK's handling. */
    client_send(&c, 0xc0, NULL, 0);
    assert_int_equal(client_read(&c, body, sizeof(body), &len), 0xd0);
    assert_int_equal(hub_msg_c2d_count(fx->c2d, "dev1", &count, NULL), 0);
    assert_int_equal(count, 0);

    /* A second connection for dev1 replaces this one (session present). */
    struct client c2 = client_open(fx);
    client_connect_raw(&c2, "dev1", 60);
    assert_int_equal(client_read(&c2, body, sizeof(body), &len), 0x20);
    assert_int_equal(body[0], 1); /* session present: clean_session 0 before */
    assert_int_equal(body[1], 0);
    client_expect_closed(&c); /* old one closed */
    assert_int_equal(hub_device_reason_count(fx->ep, HUB_DEVICE_R_DUPLICATE_CONNECTION), 1);

    /* Disabling the device closes its connection. */
    struct hub_device d;
    assert_int_equal(hub_registry_device_get(fx->reg, "dev1", &d, NULL), 0);
    d.status = HUB_DEVICE_DISABLED;
    assert_int_equal(hub_registry_device_update(fx->reg, &d, NULL, NULL, NULL), 0);
    client_expect_closed(&c2);
    assert_int_equal(hub_device_reason_count(fx->ep, HUB_DEVICE_R_DEVICE_DISABLED), 1);
    d.status = HUB_DEVICE_ENABLED;
    assert_int_equal(hub_registry_device_update(fx->reg, &d, NULL, NULL, NULL), 0);
}

static void test_refusals(void **state)
{
    struct fx *fx = *state;
    uint8_t body[64];
    size_t len = 0;

    /* No certificate for a CA device: CONNACK 5, then closed. */
    struct client c = lbfx_client_open(&fx->lb, false);
    client_connect_raw(&c, "dev1", 60);
    assert_int_equal(client_connack(&c, NULL), 5);
    client_expect_closed(&c);
    assert_int_equal(hub_device_reason_count(fx->ep, HUB_DEVICE_R_NO_CREDENTIAL), 1);

    /* Unknown device. */
    c = client_open(fx);
    client_connect_raw(&c, "nobody", 60);
    assert_int_equal(client_connack(&c, NULL), 5);
    client_close(&c);

    /* A packet before CONNECT closes without CONNACK. */
    c = client_open(fx);
    client_send(&c, 0xc0, NULL, 0);
    client_expect_closed(&c);
    assert_int_equal(hub_device_reason_count(fx->ep, HUB_DEVICE_R_PROTOCOL_VIOLATION), 1);

    /* Publishing to another device's topic closes. */
    c = client_open(fx);
    client_connect_raw(&c, "dev1", 60);
    assert_int_equal(client_connack(&c, NULL), 0);
    uint8_t p[128];
    size_t n = 0;
    put_str(p, &n, "devices/dev2/messages/events/");
    client_send(&c, 0x30, p, n);
    client_expect_closed(&c);
    assert_int_equal(hub_device_reason_count(fx->ep, HUB_DEVICE_R_TOPIC_FORBIDDEN), 1);

    /* QoS 2 closes. */
    c = client_open(fx);
    client_connect_raw(&c, "dev1", 60);
    assert_int_equal(client_read(&c, body, sizeof(body), &len), 0x20);
    n = 0;
    put_str(p, &n, "devices/dev1/messages/events/");
    p[n++] = 0;
    p[n++] = 1;
    client_send(&c, 0x34, p, n);
    client_expect_closed(&c);
    assert_int_equal(hub_device_reason_count(fx->ep, HUB_DEVICE_R_QOS2_UNSUPPORTED), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_telemetry_and_c2d, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_refusals, fx_setup, fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
