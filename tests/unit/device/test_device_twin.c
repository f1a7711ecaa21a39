/*
 * device: the device twin over a real MQTT-over-TLS connection (reference
 * §2 "Twin"): SUBACK grants, GET and PATCH reported with their $rid and
 * $version, error bodies Node understands, a QoS 1 request acknowledged,
 * no response without the res subscription, desired-property
 * notifications to a subscribed device, and the changes a device missed
 * while away sent when its session resumes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <jansson.h>

#include "device_loopback_fx.h"

static json_t *parse(const struct rx_publish *rx)
{
    json_error_t jerr;
    json_t *j = json_loads(rx->payload, 0, &jerr);
    if (j == NULL)
        fail_msg("not JSON (%s): %s", jerr.text, rx->payload);
    return j;
}

static json_int_t int_at(json_t *root, const char *section, const char *key)
{
    json_t *v = json_object_get(json_object_get(root, section), key);
    if (!json_is_integer(v))
        fail_msg("%s.%s is not an integer", section, key);
    return json_integer_value(v);
}

static void desired_patch(struct fx *fx, const char *desired_json)
{
    char body[512];
    snprintf(body, sizeof(body), "{\"properties\":{\"desired\":%s}}", desired_json);
    struct hub_err err = {0};
    if (hub_registry_twin_patch(fx->reg, "dev1", body, strlen(body), NULL, NULL, NULL, &err) != 0)
        fail_msg("desired patch: %s", err.msg);
}

static void test_twin_get_and_patch_reported(void **state)
{
    struct fx *fx = *state;
    struct client c = client_open(fx);
    client_connect(&c, "dev1", true);

    /* Without the res subscription a request is served but not answered. */
    client_publish(&c, 0, 0, "$iothub/twin/GET/?$rid=early", " ", 1);
    client_ping(&c); /* the PINGRESP is the very next packet */

    assert_int_equal(client_subscribe(&c, 1, "$iothub/twin/res/#"), 0);
    assert_int_equal(client_subscribe(&c, 2, "$iothub/twin/PATCH/properties/desired/#"), 0);

    /* GET (Node sends one space as the body). */
    client_publish(&c, 0, 0, "$iothub/twin/GET/?$rid=a1", " ", 1);
    struct rx_publish rx;
    client_read_publish(&c, &rx);
    assert_int_equal(rx.qos, 0);
    assert_string_equal(rx.topic, "$iothub/twin/res/200/?$rid=a1");
    json_t *twin = parse(&rx);
    assert_int_equal(int_at(twin, "desired", "$version"), 1);
    assert_int_equal(int_at(twin, "reported", "$version"), 1);
    assert_null(json_object_get(json_object_get(twin, "desired"), "$metadata"));
    json_decref(twin);

    /* PATCH reported: 204 with the new reported $version, empty body. */
    const char *patch = "{\"temp\":21,\"fw\":{\"v\":\"1.0\"}}";
    client_publish(&c, 0, 0, "$iothub/twin/PATCH/properties/reported/?$rid=a2", patch,
                   strlen(patch));
    client_read_publish(&c, &rx);
    assert_string_equal(rx.topic, "$iothub/twin/res/204/?$rid=a2&$version=2");
    assert_int_equal(rx.payload_len, 0);

    /* Durable: the registry has it, and a GET shows it. */
    struct hub_twin *t = NULL;
    assert_int_equal(hub_registry_twin_get1(fx->reg, "dev1", &t, NULL, NULL), 0);
    assert_int_equal(t->reported_version, 2);
    assert_int_equal(json_integer_value(json_object_get(t->reported, "temp")), 21);
    hub_twin_free(t);
    client_publish(&c, 0, 0, "$iothub/twin/GET/?$rid=a3", NULL, 0);
    client_read_publish(&c, &rx);
    assert_string_equal(rx.topic, "$iothub/twin/res/200/?$rid=a3");
    twin = parse(&rx);
    assert_int_equal(int_at(twin, "reported", "$version"), 2);
    assert_int_equal(int_at(twin, "reported", "temp"), 21);
    json_decref(twin);

    /* A QoS 1 PATCH: answered, then acknowledged; null deletes. */
    client_publish(&c, 1, 7, "$iothub/twin/PATCH/properties/reported/?$rid=a4", "{\"temp\":null}",
                   13);
    client_read_publish(&c, &rx);
    assert_string_equal(rx.topic, "$iothub/twin/res/204/?$rid=a4&$version=3");
    uint8_t body[16];
    size_t len = 0;
    assert_int_equal(client_read(&c, body, sizeof(body), &len), 0x40);
    assert_int_equal(body[1], 7);

    /* Refusals: the status in the topic, errorCode + message in the body. */
    const struct {
        const char *payload;
        const char *topic;
        json_int_t code;
    } bad[] = {
        {"not json", "$iothub/twin/res/400/?$rid=b", 400004},
        {"", "$iothub/twin/res/400/?$rid=b", 400004},
        {"[1,2]", "$iothub/twin/res/400/?$rid=b", 400004},
        {"{\"$bad\":1}", "$iothub/twin/res/400/?$rid=b", 400004},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        client_publish(&c, 0, 0, "$iothub/twin/PATCH/properties/reported/?$rid=b", bad[i].payload,
                       strlen(bad[i].payload));
        client_read_publish(&c, &rx);
        if (strcmp(rx.topic, bad[i].topic) != 0)
            fail_msg("case %zu: topic %s", i, rx.topic);
        json_t *e = parse(&rx);
        assert_int_equal(json_integer_value(json_object_get(e, "errorCode")), bad[i].code);
        assert_true(json_is_string(json_object_get(e, "message")));
        assert_true(json_is_string(json_object_get(e, "trackingId")));
        assert_true(json_is_string(json_object_get(e, "timestampUtc")));
        json_decref(e);
    }
    /* Over the 32 KiB reported limit: 413 (ten strings of 4000 bytes). */
    size_t cap = 10 * 4020 + 16, used = 0;
    char *big = malloc(cap);
    big[used++] = '{';
    for (int k = 0; k < 10; k++) {
        used += (size_t)snprintf(big + used, cap - used, "%s\"k%d\":\"", k ? "," : "", k);
        memset(big + used, 'x', 4000);
        used += 4000;
        big[used++] = '"';
    }
    big[used++] = '}';
    client_publish(&c, 0, 0, "$iothub/twin/PATCH/properties/reported/?$rid=big", big, used);
    free(big);
    client_read_publish(&c, &rx);
    assert_string_equal(rx.topic, "$iothub/twin/res/413/?$rid=big");
    json_t *e = parse(&rx);
    assert_int_equal(json_integer_value(json_object_get(e, "errorCode")), 413001);
    json_decref(e);

    /* Still connected, and nothing else was sent (no desired change). */
    client_ping(&c);
    assert_int_equal(hub_device_live_count(fx->ep), 1);
    client_close(&c);
}

static void test_twin_desired_notification(void **state)
{
    struct fx *fx = *state;
    struct client c = client_open(fx);
    client_connect(&c, "dev1", true);
    assert_int_equal(client_subscribe(&c, 1, "$iothub/twin/PATCH/properties/desired/#"), 0);
    client_ping(&c); /* a new session: nothing is sent on subscribe */

    desired_patch(fx, "{\"fw\":\"2.0\"}");
    struct rx_publish rx;
    client_read_publish(&c, &rx);
    assert_int_equal(rx.qos, 0);
    assert_string_equal(rx.topic, "$iothub/twin/PATCH/properties/desired/?$version=2");
    json_t *n = parse(&rx);
    assert_string_equal(json_string_value(json_object_get(n, "fw")), "2.0");
    assert_int_equal(json_integer_value(json_object_get(n, "$version")), 2);
    json_decref(n);

    desired_patch(fx, "{\"fw\":null,\"mode\":{\"x\":1}}");
    client_read_publish(&c, &rx);
    assert_string_equal(rx.topic, "$iothub/twin/PATCH/properties/desired/?$version=3");
    n = parse(&rx);
    assert_true(json_is_null(json_object_get(n, "fw")));
    assert_int_equal(json_integer_value(json_object_get(n, "$version")), 3);
    json_decref(n);

    /* After UNSUBSCRIBE nothing more arrives. */
    uint8_t p[128];
    size_t len = 0;
    p[len++] = 0;
    p[len++] = 3;
    put_str(p, &len, "$iothub/twin/PATCH/properties/desired/#");
    client_send(&c, 0xa2, p, len);
    uint8_t body[16];
    assert_int_equal(client_read(&c, body, sizeof(body), &len), 0xb0);
    desired_patch(fx, "{\"late\":1}");
    client_ping(&c);
    client_close(&c);
}

static void test_twin_desired_after_reconnect(void **state)
{
    struct fx *fx = *state;
    /* A kept session (clean_session 0) subscribed to desired at version 1. */
    struct client c = client_open(fx);
    assert_false(client_connect(&c, "dev1", false));
    assert_int_equal(client_subscribe(&c, 1, "$iothub/twin/PATCH/properties/desired/#"), 0);
    client_ping(&c);
    client_disconnect(&c);

    /* Two changes while the device is away. */
    desired_patch(fx, "{\"a\":1}");
    desired_patch(fx, "{\"b\":2}");

    /* Back with its session: the missed patches, in order, without a new
     * SUBSCRIBE. */
    c = client_open(fx);
    assert_true(client_connect(&c, "dev1", false));
    struct rx_publish rx;
    client_read_publish(&c, &rx);
    assert_string_equal(rx.topic, "$iothub/twin/PATCH/properties/desired/?$version=2");
    json_t *n = parse(&rx);
    assert_int_equal(json_integer_value(json_object_get(n, "a")), 1);
    json_decref(n);
    client_read_publish(&c, &rx);
    assert_string_equal(rx.topic, "$iothub/twin/PATCH/properties/desired/?$version=3");
    n = parse(&rx);
    assert_int_equal(json_integer_value(json_object_get(n, "b")), 2);
    json_decref(n);

    /* Subscribing again (as the SDKs do) sends nothing twice. */
    assert_int_equal(client_subscribe(&c, 2, "$iothub/twin/PATCH/properties/desired/#"), 0);
    client_ping(&c);
    client_disconnect(&c);

    /* Many changes away (more than the registry logs): the whole desired
     * section once, with the current $version. */
    for (int i = 0; i < HUB_STORE_TWIN_LOG_KEEP + 2; i++) {
        char patch[64];
        snprintf(patch, sizeof(patch), "{\"n\":%d}", i);
        desired_patch(fx, patch);
    }
    c = client_open(fx);
    assert_true(client_connect(&c, "dev1", false));
    client_read_publish(&c, &rx);
    char want[96];
    snprintf(want, sizeof(want), "$iothub/twin/PATCH/properties/desired/?$version=%d",
             3 + HUB_STORE_TWIN_LOG_KEEP + 2);
    assert_string_equal(rx.topic, want);
    n = parse(&rx);
    assert_int_equal(json_integer_value(json_object_get(n, "a")), 1);
    assert_int_equal(json_integer_value(json_object_get(n, "b")), 2);
    assert_int_equal(json_integer_value(json_object_get(n, "n")), HUB_STORE_TWIN_LOG_KEEP + 1);
    json_decref(n);
    client_ping(&c);
    client_close(&c);
}

/* A GET answered to nobody (no $iothub/twin/res/# subscription) must not
 * count as "the device knows desired up to here": the patch it would have
 * shown is still sent once the device listens for desired changes. */
static void test_twin_get_unanswered_keeps_desired_pending(void **state)
{
    struct fx *fx = *state;
    struct client c = client_open(fx);
    client_connect(&c, "dev1", true);
    /* The session learns version 1, then the device stops listening. */
    assert_int_equal(client_subscribe(&c, 1, "$iothub/twin/PATCH/properties/desired/#"), 0);
    uint8_t p[128];
    size_t len = 0;
    p[len++] = 0;
    p[len++] = 2;
    put_str(p, &len, "$iothub/twin/PATCH/properties/desired/#");
    client_send(&c, 0xa2, p, len);
    uint8_t body[16];
    assert_int_equal(client_read(&c, body, sizeof(body), &len), 0xb0);

    desired_patch(fx, "{\"fw\":\"2.0\"}"); /* version 2, not notified */
    client_publish(&c, 0, 0, "$iothub/twin/GET/?$rid=unheard", " ", 1);
    client_ping(&c); /* no answer: not subscribed to the responses */

    /* Listening again: version 2 is what it missed. */
    assert_int_equal(client_subscribe(&c, 3, "$iothub/twin/PATCH/properties/desired/#"), 0);
    struct rx_publish rx;
    client_read_publish(&c, &rx);
    assert_string_equal(rx.topic, "$iothub/twin/PATCH/properties/desired/?$version=2");

    /* A GET that is answered does count: after it, resubscribing sends
     * nothing the answer already showed. */
    assert_int_equal(client_subscribe(&c, 4, "$iothub/twin/res/#"), 0);
    len = 0;
    p[len++] = 0;
    p[len++] = 5;
    put_str(p, &len, "$iothub/twin/PATCH/properties/desired/#");
    client_send(&c, 0xa2, p, len);
    assert_int_equal(client_read(&c, body, sizeof(body), &len), 0xb0);
    desired_patch(fx, "{\"fw\":\"3.0\"}"); /* version 3, not notified */
    client_publish(&c, 0, 0, "$iothub/twin/GET/?$rid=heard", " ", 1);
    client_read_publish(&c, &rx);
    assert_string_equal(rx.topic, "$iothub/twin/res/200/?$rid=heard");
    assert_int_equal(client_subscribe(&c, 6, "$iothub/twin/PATCH/properties/desired/#"), 0);
    client_ping(&c); /* nothing in between */
    client_close(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_twin_get_and_patch_reported, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_twin_desired_notification, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_twin_desired_after_reconnect, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_twin_get_unanswered_keeps_desired_pending, fx_setup,
                                        fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
