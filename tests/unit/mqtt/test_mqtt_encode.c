/*
 * MQTT 3.1.1 encoders: byte-for-byte against literal packets (written from
 * the spec's tables, not from the encoder), every short buffer, argument
 * checks, and encode -> decode round trips through the decoder.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mqtt/mqtt.h"

#define LIT(s) (const uint8_t *)(s), sizeof(s) - 1

static void assert_encoded(const uint8_t *got, int rc, const uint8_t *want, size_t want_len)
{
    assert_int_equal(rc, (int)want_len);
    assert_memory_equal(got, want, want_len);
}

static void test_connack(void **state)
{
    (void)state;
    uint8_t buf[8];
    struct hub_err err = {0};
    assert_encoded(buf, hub_mqtt_connack_encode(buf, sizeof(buf), false, 0, &err),
                   LIT("\x20\x02\x00\x00"));
    assert_encoded(buf, hub_mqtt_connack_encode(buf, sizeof(buf), true, 0, &err),
                   LIT("\x20\x02\x01\x00"));
    assert_encoded(buf, hub_mqtt_connack_encode(buf, sizeof(buf), false, 5, &err),
                   LIT("\x20\x02\x00\x05"));
    assert_encoded(
        buf, hub_mqtt_connack_encode(buf, 4, false, HUB_MQTT_CONNACK_BAD_PROTOCOL_LEVEL, &err),
        LIT("\x20\x02\x00\x01"));
    assert_int_equal(hub_mqtt_connack_encode(buf, 3, false, 0, &err), HUB_E_TOO_LARGE);
    assert_int_equal(hub_mqtt_connack_encode(buf, sizeof(buf), true, 5, &err), HUB_E_INVALID_ARG);
    assert_non_null(strstr(err.msg, "session present"));
    assert_int_equal(hub_mqtt_connack_encode(buf, sizeof(buf), false, 6, &err), HUB_E_INVALID_ARG);
}

static void test_puback_unsuback_pingresp(void **state)
{
    (void)state;
    uint8_t buf[8];
    struct hub_err err = {0};
    assert_encoded(buf, hub_mqtt_puback_encode(buf, sizeof(buf), 0x1234, &err),
                   LIT("\x40\x02\x12\x34"));
    assert_encoded(buf, hub_mqtt_unsuback_encode(buf, sizeof(buf), 0xbeef, &err),
                   LIT("\xb0\x02\xbe\xef"));
    assert_encoded(buf, hub_mqtt_pingresp_encode(buf, sizeof(buf), &err), LIT("\xd0\x00"));
    assert_int_equal(hub_mqtt_puback_encode(buf, sizeof(buf), 0, &err), HUB_E_INVALID_ARG);
    assert_int_equal(hub_mqtt_unsuback_encode(buf, sizeof(buf), 0, &err), HUB_E_INVALID_ARG);
    for (size_t cap = 0; cap < 4; cap++) {
        assert_int_equal(hub_mqtt_puback_encode(buf, cap, 1, &err), HUB_E_TOO_LARGE);
        assert_int_equal(hub_mqtt_unsuback_encode(buf, cap, 1, &err), HUB_E_TOO_LARGE);
    }
    assert_int_equal(hub_mqtt_pingresp_encode(buf, 1, &err), HUB_E_TOO_LARGE);
}

static void test_suback(void **state)
{
    (void)state;
    uint8_t buf[16];
    struct hub_err err = {0};
    const uint8_t codes[] = {0x01, 0x00, HUB_MQTT_SUBACK_FAILURE, 0x02};
    assert_int_equal(hub_mqtt_suback_size(4), 8);
    assert_encoded(buf, hub_mqtt_suback_encode(buf, sizeof(buf), 7, codes, 4, &err),
                   LIT("\x90\x06\x00\x07\x01\x00\x80\x02"));
    assert_encoded(buf, hub_mqtt_suback_encode(buf, 5, 1, codes, 1, &err),
                   LIT("\x90\x03\x00\x01\x01"));
    for (size_t cap = 0; cap < 8; cap++)
        assert_int_equal(hub_mqtt_suback_encode(buf, cap, 7, codes, 4, &err), HUB_E_TOO_LARGE);
    const uint8_t bad[] = {0x03};
    assert_int_equal(hub_mqtt_suback_encode(buf, sizeof(buf), 1, bad, 1, &err), HUB_E_INVALID_ARG);
    assert_int_equal(hub_mqtt_suback_encode(buf, sizeof(buf), 1, codes, 0, &err),
                     HUB_E_INVALID_ARG);
    assert_int_equal(hub_mqtt_suback_encode(buf, sizeof(buf), 0, codes, 1, &err),
                     HUB_E_INVALID_ARG);
    uint8_t nine[9] = {0};
    uint8_t big[32];
    assert_int_equal(hub_mqtt_suback_encode(big, sizeof(big), 1, nine, 9, &err), HUB_E_INVALID_ARG);
}

struct pub_case {
    const char *name;
    struct hub_mqtt_publish pub;
    const uint8_t *want;
    size_t want_len;
};

#define STR(s)                                                                                     \
    {                                                                                              \
        (s), sizeof(s) - 1                                                                         \
    }
#define BYTES(s)                                                                                   \
    {                                                                                              \
        (const uint8_t *)(s), sizeof(s) - 1                                                        \
    }

static const struct pub_case pub_cases[] = {
    {"c2d_qos1",
     {.qos = 1,
      .topic = STR("devices/dev1/messages/devicebound/%24.mid=m1"),
      .packet_id = 0x0102,
      .payload = BYTES("hello")},
     LIT("\x32\x35\x00\x2c"
         "devices/dev1/messages/devicebound/%24.mid=m1"
         "\x01\x02"
         "hello")},
    {"method_qos0_empty_payload",
     {.qos = 0, .topic = STR("$iothub/methods/POST/reboot/?$rid=1")},
     LIT("\x30\x25\x00\x23"
         "$iothub/methods/POST/reboot/\?$rid=1")},
    {"retain_dup_qos2",
     {.qos = 2,
      .dup = true,
      .retain = true,
      .topic = STR("t"),
      .packet_id = 0xffff,
      .payload = BYTES("\x00\x01")},
     LIT("\x3d\x07\x00\x01"
         "t"
         "\xff\xff\x00\x01")},
};

static void test_publish_literal(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(pub_cases) / sizeof(pub_cases[0]); i++) {
        const struct pub_case *pc = &pub_cases[i];
        uint8_t buf[128];
        struct hub_err err = {0};
        print_message("case %s\n", pc->name);
        size_t size = hub_mqtt_publish_size(pc->pub.topic.len, pc->pub.payload.len, pc->pub.qos);
        assert_int_equal(size, pc->want_len);
        assert_encoded(buf, hub_mqtt_publish_encode(buf, sizeof(buf), &pc->pub, &err), pc->want,
                       pc->want_len);
        /* exact fit works, every shorter buffer is TOO_LARGE */
        assert_int_equal(hub_mqtt_publish_encode(buf, size, &pc->pub, &err), (int)size);
        for (size_t cap = 0; cap < size; cap++)
            assert_int_equal(hub_mqtt_publish_encode(buf, cap, &pc->pub, &err), HUB_E_TOO_LARGE);
    }
}

static void test_publish_size_boundaries(void **state)
{
    (void)state;
    /* remaining length 127 -> 1 length byte, 128 -> 2 (§2.2.3 table) */
    assert_int_equal(hub_mqtt_publish_size(1, 124, 0), 1 + 1 + 127);
    assert_int_equal(hub_mqtt_publish_size(1, 125, 0), 1 + 2 + 128);
    assert_int_equal(hub_mqtt_publish_size(1, 16383 - 3, 0), 1 + 2 + 16383);
    assert_int_equal(hub_mqtt_publish_size(1, 16384 - 3, 0), 1 + 3 + 16384);
    assert_int_equal(hub_mqtt_publish_size(1, 2097151 - 3, 0), 1 + 3 + 2097151);
    assert_int_equal(hub_mqtt_publish_size(1, 2097152 - 3, 0), 1 + 4 + 2097152);
    assert_int_equal(hub_mqtt_publish_size(1, HUB_MQTT_REMAINING_MAX - 5, 1), HUB_MQTT_PACKET_MAX);
    assert_int_equal(hub_mqtt_publish_size(1, HUB_MQTT_REMAINING_MAX - 4, 1), 0);
    assert_int_equal(hub_mqtt_publish_size(65536, 0, 0), 0);
    assert_int_equal(hub_mqtt_publish_size(65535, 0, 0), 1 + 3 + 65537);
}

static void test_publish_invalid_args(void **state)
{
    (void)state;
    uint8_t buf[64];
    struct hub_err err = {0};
    struct hub_mqtt_publish p = {.qos = 3, .topic = STR("t"), .packet_id = 1};
    assert_int_equal(hub_mqtt_publish_encode(buf, sizeof(buf), &p, &err), HUB_E_INVALID_ARG);
    p = (struct hub_mqtt_publish){.qos = 1, .topic = STR("t")};
    assert_int_equal(hub_mqtt_publish_encode(buf, sizeof(buf), &p, &err), HUB_E_INVALID_ARG);
    p = (struct hub_mqtt_publish){.qos = 0, .dup = true, .topic = STR("t")};
    assert_int_equal(hub_mqtt_publish_encode(buf, sizeof(buf), &p, &err), HUB_E_INVALID_ARG);
    p = (struct hub_mqtt_publish){.qos = 0, .topic = STR("t"), .packet_id = 5};
    assert_int_equal(hub_mqtt_publish_encode(buf, sizeof(buf), &p, &err), HUB_E_INVALID_ARG);
    p = (struct hub_mqtt_publish){.qos = 0, .topic = STR("")};
    assert_int_equal(hub_mqtt_publish_encode(buf, sizeof(buf), &p, &err), HUB_E_INVALID_ARG);
    p = (struct hub_mqtt_publish){.qos = 0, .topic = STR("a/#")};
    assert_int_equal(hub_mqtt_publish_encode(buf, sizeof(buf), &p, &err), HUB_E_INVALID_ARG);
    p = (struct hub_mqtt_publish){.qos = 0, .topic = STR("a\xed\xa0\x80")};
    assert_int_equal(hub_mqtt_publish_encode(buf, sizeof(buf), &p, &err), HUB_E_INVALID_ARG);
    assert_non_null(strstr(err.msg, "surrogate"));
}

/* The decoder accepts PUBLISH in both directions, so what we send must come
 * back identical; sizes cross every remaining-length width. */
static void test_publish_round_trip(void **state)
{
    (void)state;
    const size_t payloads[] = {0, 1, 124, 125, 16380, 16381, 70000};
    for (size_t i = 0; i < sizeof(payloads) / sizeof(payloads[0]); i++) {
        for (uint8_t qos = 0; qos <= 2; qos++) {
            uint8_t *payload = malloc(payloads[i] + 1);
            assert_non_null(payload);
            for (size_t k = 0; k < payloads[i]; k++)
                payload[k] = (uint8_t)(k * 7 + qos);
            struct hub_mqtt_publish in = {
                .qos = qos,
                .retain = (i & 1) != 0,
                .dup = qos > 0 && (i & 2) != 0,
                .topic = STR("devices/d\xc3\xa9v/messages/devicebound/a=b"),
                .packet_id = qos ? (uint16_t)(i + 1) : 0,
                .payload = {payload, payloads[i]},
            };
            size_t size = hub_mqtt_publish_size(in.topic.len, in.payload.len, qos);
            uint8_t *buf = malloc(size);
            assert_non_null(buf);
            struct hub_err err = {0};
            assert_int_equal(hub_mqtt_publish_encode(buf, size, &in, &err), (int)size);
            struct hub_mqtt_packet out;
            assert_int_equal(hub_mqtt_decode(buf, size, 0, &out, &err), (int)size);
            assert_int_equal(out.type, HUB_MQTT_PUBLISH);
            assert_int_equal(out.u.publish.qos, qos);
            assert_int_equal(out.u.publish.retain, in.retain);
            assert_int_equal(out.u.publish.dup, in.dup);
            assert_int_equal(out.u.publish.packet_id, in.packet_id);
            assert_int_equal(out.u.publish.topic.len, in.topic.len);
            assert_memory_equal(out.u.publish.topic.ptr, in.topic.ptr, in.topic.len);
            assert_int_equal(out.u.publish.payload.len, in.payload.len);
            if (in.payload.len)
                assert_memory_equal(out.u.publish.payload.ptr, payload, in.payload.len);
            /* and a truncated copy is "need more" */
            assert_int_equal(hub_mqtt_decode(buf, size - 1, 0, &out, &err), 0);
            free(buf);
            free(payload);
        }
    }
}

/* PUBACK is also decodable (client->server), so round-trip it too. */
static void test_puback_round_trip(void **state)
{
    (void)state;
    uint8_t buf[4];
    struct hub_err err = {0};
    struct hub_mqtt_packet p;
    const uint16_t ids[] = {1, 0x00ff, 0x0100, 0xffff};
    for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
        assert_int_equal(hub_mqtt_puback_encode(buf, sizeof(buf), ids[i], &err), 4);
        assert_int_equal(hub_mqtt_decode(buf, 4, 0, &p, &err), 4);
        assert_int_equal(p.type, HUB_MQTT_PUBACK);
        assert_int_equal(p.u.packet_id, ids[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_connack),
        cmocka_unit_test(test_puback_unsuback_pingresp),
        cmocka_unit_test(test_suback),
        cmocka_unit_test(test_publish_literal),
        cmocka_unit_test(test_publish_size_boundaries),
        cmocka_unit_test(test_publish_invalid_args),
        cmocka_unit_test(test_publish_round_trip),
        cmocka_unit_test(test_puback_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
