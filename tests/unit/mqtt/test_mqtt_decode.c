/*
 * MQTT 3.1.1 decoder: every packet type from literal bytes, every truncation
 * point, one row per malformed input with its exact code and message.
 *
 * Every decode runs on a heap copy of exactly the bytes offered, so under
 * ASan a read one byte past what the caller said it has is a crash, not a
 * lucky pass.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mqtt/mqtt.h"

#define PK(s) (const uint8_t *)(s), sizeof(s) - 1

/* Decodes a private heap copy of buf[0..len); *copy receives it (caller
 * frees) so views can still be read. */
static int decode_copy(const uint8_t *buf, size_t len, size_t max, struct hub_mqtt_packet *out,
                       struct hub_err *err, uint8_t **copy)
{
    uint8_t *c = malloc(len ? len : 1);
    assert_non_null(c);
    if (len)
        memcpy(c, buf, len);
    int rc = hub_mqtt_decode(c, len, max, out, err);
    if (copy)
        *copy = c;
    else
        free(c);
    return rc;
}

static void assert_view(struct hub_mqtt_str v, const char *want)
{
    assert_int_equal(v.len, strlen(want));
    assert_memory_equal(v.ptr, want, v.len);
}

static void assert_bytes(struct hub_mqtt_bytes v, const char *want)
{
    assert_int_equal(v.len, strlen(want));
    if (v.len)
        assert_memory_equal(v.ptr, want, v.len);
}

/* ---- valid packets ------------------------------------------------------ */

static void check_connect_x509(const struct hub_mqtt_packet *p)
{
    const struct hub_mqtt_connect *c = &p->u.connect;
    assert_int_equal(p->type, HUB_MQTT_CONNECT);
    assert_int_equal(c->protocol_level, 4);
    assert_false(c->clean_session);
    assert_int_equal(c->keep_alive_s, 180);
    assert_view(c->client_id, "dev1");
    assert_false(c->has_will);
    assert_true(c->has_username);
    assert_view(c->username, "localhost/dev1/?api-version=2021-04-12");
    assert_false(c->has_password); /* X.509: absent, not empty */
}

static void check_connect_sas(const struct hub_mqtt_packet *p)
{
    const struct hub_mqtt_connect *c = &p->u.connect;
    assert_int_equal(p->type, HUB_MQTT_CONNECT);
    assert_true(c->clean_session);
    assert_int_equal(c->keep_alive_s, 0);
    assert_view(c->username, "h/dev1/?api-version=2021-04-12");
    assert_true(c->has_password);
    assert_bytes(c->password, "SharedAccessSignature sr=h%2Fdevices%2Fdev1&sig=x&se=1");
}

static void check_connect_will(const struct hub_mqtt_packet *p)
{
    const struct hub_mqtt_connect *c = &p->u.connect;
    assert_int_equal(p->type, HUB_MQTT_CONNECT);
    assert_true(c->clean_session);
    assert_int_equal(c->keep_alive_s, 60);
    assert_view(c->client_id, "");
    assert_true(c->has_will);
    assert_int_equal(c->will_qos, 1);
    assert_true(c->will_retain);
    assert_view(c->will_topic, "devices/d/messages/events/");
    assert_bytes(c->will_payload, "bye");
    assert_false(c->has_username);
    assert_false(c->has_password);
}

static void check_connect_empty_pw(const struct hub_mqtt_packet *p)
{
    const struct hub_mqtt_connect *c = &p->u.connect;
    assert_false(c->clean_session);
    assert_int_equal(c->keep_alive_s, 30);
    assert_true(c->has_username);
    assert_view(c->username, "u");
    assert_true(c->has_password); /* present and empty */
    assert_int_equal(c->password.len, 0);
}

static void check_connect_utf8(const struct hub_mqtt_packet *p)
{
    assert_view(p->u.connect.client_id, "d\xc3\xa9v\xe2\x82\xac\xf0\x9f\x98\x80");
}

static void check_publish_qos0(const struct hub_mqtt_packet *p)
{
    const struct hub_mqtt_publish *m = &p->u.publish;
    assert_int_equal(p->type, HUB_MQTT_PUBLISH);
    assert_int_equal(m->qos, 0);
    assert_false(m->dup);
    assert_false(m->retain);
    assert_int_equal(m->packet_id, 0);
    assert_view(m->topic, "a/b");
    assert_bytes(m->payload, "hi");
}

static void check_publish_qos1(const struct hub_mqtt_packet *p)
{
    const struct hub_mqtt_publish *m = &p->u.publish;
    assert_int_equal(m->qos, 1);
    assert_int_equal(m->packet_id, 0x1234);
    assert_view(m->topic, "devices/dev1/messages/events/%24.mid=1");
    assert_bytes(m->payload, "{}");
}

static void check_publish_dup_retain(const struct hub_mqtt_packet *p)
{
    const struct hub_mqtt_publish *m = &p->u.publish;
    assert_true(m->dup);
    assert_true(m->retain);
    assert_int_equal(m->qos, 1);
    assert_int_equal(m->packet_id, 1);
    assert_view(m->topic, "t");
    assert_int_equal(m->payload.len, 0);
}

static void check_publish_qos2(const struct hub_mqtt_packet *p)
{
    assert_int_equal(p->u.publish.qos, 2); /* decoded: the caller closes, like Azure */
    assert_int_equal(p->u.publish.packet_id, 7);
    assert_bytes(p->u.publish.payload, "x");
}

static void check_puback(const struct hub_mqtt_packet *p)
{
    assert_int_equal(p->type, HUB_MQTT_PUBACK);
    assert_int_equal(p->u.packet_id, 0x1234);
}

static void check_pubrec(const struct hub_mqtt_packet *p)
{
    assert_int_equal(p->type, HUB_MQTT_PUBREC);
    assert_int_equal(p->u.packet_id, 1);
}

static void check_pubrel(const struct hub_mqtt_packet *p)
{
    assert_int_equal(p->type, HUB_MQTT_PUBREL);
    assert_int_equal(p->flags, 2);
    assert_int_equal(p->u.packet_id, 0x0102);
}

static void check_pubcomp(const struct hub_mqtt_packet *p)
{
    assert_int_equal(p->type, HUB_MQTT_PUBCOMP);
    assert_int_equal(p->u.packet_id, 0xffff);
}

static void check_subscribe_c2d(const struct hub_mqtt_packet *p)
{
    const struct hub_mqtt_subscribe *s = &p->u.subscribe;
    assert_int_equal(p->type, HUB_MQTT_SUBSCRIBE);
    assert_int_equal(s->packet_id, 1);
    assert_int_equal(s->count, 1);
    assert_view(s->filters[0].filter, "devices/dev1/messages/devicebound/#");
    assert_int_equal(s->filters[0].qos, 1);
}

static void check_subscribe_three(const struct hub_mqtt_packet *p)
{
    const struct hub_mqtt_subscribe *s = &p->u.subscribe;
    assert_int_equal(s->packet_id, 0xbeef);
    assert_int_equal(s->count, 3);
    assert_view(s->filters[0].filter, "$iothub/twin/res/#");
    assert_int_equal(s->filters[0].qos, 0);
    assert_view(s->filters[1].filter, "$iothub/methods/POST/#");
    assert_view(s->filters[2].filter, "a/+/c");
    assert_int_equal(s->filters[2].qos, 2);
}

static void check_subscribe_8(const struct hub_mqtt_packet *p)
{
    assert_int_equal(p->u.subscribe.count, HUB_MQTT_FILTERS_MAX);
    assert_view(p->u.subscribe.filters[7].filter, "f7");
}

static void check_unsubscribe(const struct hub_mqtt_packet *p)
{
    const struct hub_mqtt_unsubscribe *u = &p->u.unsubscribe;
    assert_int_equal(p->type, HUB_MQTT_UNSUBSCRIBE);
    assert_int_equal(u->packet_id, 2);
    assert_int_equal(u->count, 2);
    assert_view(u->filters[0], "$iothub/twin/res/#");
    assert_view(u->filters[1], "#");
}

static void check_pingreq(const struct hub_mqtt_packet *p)
{
    assert_int_equal(p->type, HUB_MQTT_PINGREQ);
    assert_int_equal(p->remaining_length, 0);
}

static void check_disconnect(const struct hub_mqtt_packet *p)
{
    assert_int_equal(p->type, HUB_MQTT_DISCONNECT);
}

struct valid_case {
    const char *name;
    const uint8_t *bytes;
    size_t len;
    void (*check)(const struct hub_mqtt_packet *p);
};

static const struct valid_case valid_cases[] = {
    {"connect_x509",
     PK("\x10\x38\x00\x04"
        "MQTT"
        "\x04\x80\x00\xb4\x00\x04"
        "dev1"
        "\x00\x26"
        "localhost/dev1/\?api-version=2021-04-12"),
     check_connect_x509},
    {"connect_sas",
     PK("\x10\x68\x00\x04"
        "MQTT"
        "\x04\xc2\x00\x00\x00\x04"
        "dev1"
        "\x00\x1e"
        "h/dev1/\?api-version=2021-04-12"
        "\x00\x36"
        "SharedAccessSignature sr=h%2Fdevices%2Fdev1&sig=x&se=1"),
     check_connect_sas},
    {"connect_will",
     PK("\x10\x2d\x00\x04"
        "MQTT"
        "\x04\x2e\x00\x3c\x00\x00\x00\x1a"
        "devices/d/messages/events/"
        "\x00\x03"
        "bye"),
     check_connect_will},
    {"connect_empty_password",
     PK("\x10\x12\x00\x04"
        "MQTT"
        "\x04\xc0\x00\x1e\x00\x01"
        "c"
        "\x00\x01"
        "u"
        "\x00\x00"),
     check_connect_empty_pw},
    {"connect_utf8_client_id",
     PK("\x10\x17\x00\x04"
        "MQTT"
        "\x04\x02\x00\x0a\x00\x0b\x64\xc3\xa9\x76\xe2\x82\xac\xf0\x9f\x98\x80"),
     check_connect_utf8},
    {"publish_qos0",
     PK("\x30\x07\x00\x03"
        "a/b"
        "hi"),
     check_publish_qos0},
    {"publish_qos1",
     PK("\x32\x2c\x00\x26"
        "devices/dev1/messages/events/%24.mid=1"
        "\x12\x34"
        "{}"),
     check_publish_qos1},
    {"publish_dup_retain",
     PK("\x3b\x05\x00\x01"
        "t"
        "\x00\x01"),
     check_publish_dup_retain},
    {"publish_qos2",
     PK("\x34\x06\x00\x01"
        "t"
        "\x00\x07"
        "x"),
     check_publish_qos2},
    {"puback", PK("\x40\x02\x12\x34"), check_puback},
    {"pubrec", PK("\x50\x02\x00\x01"), check_pubrec},
    {"pubrel", PK("\x62\x02\x01\x02"), check_pubrel},
    {"pubcomp", PK("\x70\x02\xff\xff"), check_pubcomp},
    {"subscribe_c2d",
     PK("\x82\x28\x00\x01\x00\x23"
        "devices/dev1/messages/devicebound/#"
        "\x01"),
     check_subscribe_c2d},
    {"subscribe_three",
     PK("\x82\x38\xbe\xef\x00\x12"
        "$iothub/twin/res/#"
        "\x00\x00\x16"
        "$iothub/methods/POST/#"
        "\x00\x00\x05"
        "a/+/c"
        "\x02"),
     check_subscribe_three},
    {"subscribe_8_filters",
     PK("\x82\x2a\x00\x01\x00\x02"
        "f0"
        "\x00\x00\x02"
        "f1"
        "\x00\x00\x02"
        "f2"
        "\x00\x00\x02"
        "f3"
        "\x00\x00\x02"
        "f4"
        "\x00\x00\x02"
        "f5"
        "\x00\x00\x02"
        "f6"
        "\x00\x00\x02"
        "f7"
        "\x00"),
     check_subscribe_8},
    {"unsubscribe",
     PK("\xa2\x19\x00\x02\x00\x12"
        "$iothub/twin/res/#"
        "\x00\x01"
        "#"),
     check_unsubscribe},
    {"pingreq", PK("\xc0\x00"), check_pingreq},
    {"disconnect", PK("\xe0\x00"), check_disconnect},
};
#define N_VALID (sizeof(valid_cases) / sizeof(valid_cases[0]))

static void test_valid_packets(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_VALID; i++) {
        const struct valid_case *vc = &valid_cases[i];
        struct hub_mqtt_packet p;
        struct hub_err err = {0};
        uint8_t *copy = NULL;
        print_message("case %s\n", vc->name);
        int rc = decode_copy(vc->bytes, vc->len, 0, &p, &err, &copy);
        if (rc < 0)
            print_message("  unexpected error: %s\n", err.msg);
        assert_int_equal(rc, (int)vc->len);
        assert_int_equal(p.type, vc->bytes[0] >> 4);
        vc->check(&p);
        free(copy);
    }
}

/* Every proper prefix is "need more"; the whole packet is the same result
 * whether or not more bytes follow it. */
static void test_valid_packets_every_truncation(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_VALID; i++) {
        const struct valid_case *vc = &valid_cases[i];
        struct hub_mqtt_packet p;
        struct hub_err err = {0};
        print_message("case %s\n", vc->name);
        for (size_t k = 0; k < vc->len; k++)
            assert_int_equal(decode_copy(vc->bytes, k, 0, &p, &err, NULL), 0);

        /* followed by a PINGREQ: consumes exactly this packet, then the next */
        uint8_t *two = malloc(vc->len + 2);
        assert_non_null(two);
        memcpy(two, vc->bytes, vc->len);
        two[vc->len] = 0xc0;
        two[vc->len + 1] = 0x00;
        assert_int_equal(hub_mqtt_decode(two, vc->len + 2, 0, &p, &err), (int)vc->len);
        vc->check(&p);
        assert_int_equal(hub_mqtt_decode(two + vc->len, 2, 0, &p, &err), 2);
        assert_int_equal(p.type, HUB_MQTT_PINGREQ);
        free(two);
    }
}

/* The connection loop as net will run it: chunks of varying size appended to
 * an input buffer, every complete packet decoded and dropped, the rest kept. */
static void test_stream_in_random_chunks(void **state)
{
    (void)state;
    size_t total = 0;
    for (size_t i = 0; i < N_VALID; i++)
        total += valid_cases[i].len;
    uint8_t *stream = malloc(total);
    assert_non_null(stream);
    size_t off = 0;
    for (size_t i = 0; i < N_VALID; i++) {
        memcpy(stream + off, valid_cases[i].bytes, valid_cases[i].len);
        off += valid_cases[i].len;
    }
    uint32_t seed = 12345;
    for (int round = 0; round < 50; round++) {
        uint8_t inbuf[512];
        size_t have = 0, fed = 0, next = 0;
        while (fed < total || have > 0) {
            seed = seed * 1103515245u + 12345u;
            size_t chunk = 1 + (seed >> 16) % 37;
            if (chunk > total - fed)
                chunk = total - fed;
            assert_true(have + chunk <= sizeof(inbuf));
            memcpy(inbuf + have, stream + fed, chunk);
            have += chunk;
            fed += chunk;
            for (;;) {
                struct hub_mqtt_packet p;
                struct hub_err err = {0};
                int rc = hub_mqtt_decode(inbuf, have, 0, &p, &err);
                assert_true(rc >= 0);
                if (rc == 0)
                    break;
                assert_true(next < N_VALID);
                assert_int_equal(rc, (int)valid_cases[next].len);
                valid_cases[next].check(&p);
                next++;
                memmove(inbuf, inbuf + rc, have - (size_t)rc);
                have -= (size_t)rc;
            }
            if (fed == total && have > 0)
                fail_msg("bytes left over at end of stream: %zu", have);
        }
        assert_int_equal(next, N_VALID);
    }
    free(stream);
}

static void test_publish_multibyte_remaining_length(void **state)
{
    (void)state;
    /* rl = 2 + 1 + 300 = 303 = 0xaf 0x02 */
    uint8_t buf[5 + 1 + 300];
    memcpy(buf,
           "\x30\xaf\x02\x00\x01"
           "t",
           6);
    memset(buf + 6, 'x', 300);
    struct hub_mqtt_packet p;
    struct hub_err err = {0};
    for (size_t k = 0; k < sizeof(buf); k++)
        assert_int_equal(decode_copy(buf, k, 0, &p, &err, NULL), 0);
    uint8_t *copy = NULL;
    assert_int_equal(decode_copy(buf, sizeof(buf), 0, &p, &err, &copy), (int)sizeof(buf));
    assert_int_equal(p.remaining_length, 303);
    assert_int_equal(p.u.publish.payload.len, 300);
    assert_int_equal(p.u.publish.payload.ptr[299], 'x');
    free(copy);
    /* the packet limit counts the whole packet: 306 fits 306, not 305 */
    assert_int_equal(decode_copy(buf, sizeof(buf), 306, &p, &err, NULL), 306);
    assert_int_equal(decode_copy(buf, 4, 305, &p, &err, NULL), HUB_E_TOO_LARGE);
}

static void test_max_remaining_length_needs_more(void **state)
{
    (void)state;
    struct hub_mqtt_packet p;
    struct hub_err err = {0};
    /* 268,435,455: legal; with the protocol maximum as limit, just "need more" */
    assert_int_equal(decode_copy(PK("\x30\xff\xff\xff\x7f"), 0, &p, &err, NULL), 0);
    /* the same with a real limit is refused before a byte of body arrives */
    assert_int_equal(decode_copy(PK("\x30\xff\xff\xff\x7f"), 270336, &p, &err, NULL),
                     HUB_E_TOO_LARGE);
    assert_non_null(strstr(err.msg, "exceeds the 270336-byte packet limit"));
}

/* ---- malformed packets -------------------------------------------------- */

struct bad_case {
    const char *name;
    const uint8_t *bytes;
    size_t len;
    size_t max;
    int rc;
    const char *msg; /* substring of err.msg */
};

#define BAD(name, lit, rc, msg)                                                                    \
    {                                                                                              \
        name, PK(lit), 0, rc, msg                                                                  \
    }

static const struct bad_case bad_cases[] = {
    /* framing */
    BAD("rl_5_bytes", "\x30\xff\xff\xff\xff\x01", HUB_E_PARSE,
        "remaining length uses more than 4 bytes"),
    {"rl_over_max", PK("\x30\xff\xff\xff\x7f"), 1024, HUB_E_TOO_LARGE,
     "exceeds the 1024-byte packet limit"},
    {"packet_one_over_max",
     PK("\x30\x07\x00\x03"
        "a/b"
        "hi"),
     8, HUB_E_TOO_LARGE, "PUBLISH of 9 bytes exceeds the 8-byte packet limit"},
    BAD("type_0_reserved", "\x00\x00", HUB_E_PARSE, "packet type 0 is reserved"),
    BAD("type_15_reserved", "\xf0\x00", HUB_E_PARSE, "packet type 15 is reserved"),
    BAD("connack_from_client", "\x20\x02\x00\x00", HUB_E_PARSE,
        "CONNACK is a server-to-client packet"),
    BAD("suback_from_client", "\x90\x03\x00\x01\x00", HUB_E_PARSE,
        "SUBACK is a server-to-client packet"),
    BAD("unsuback_from_client", "\xb0\x02\x00\x01", HUB_E_PARSE,
        "UNSUBACK is a server-to-client packet"),
    BAD("pingresp_from_client", "\xd0\x00", HUB_E_PARSE, "PINGRESP is a server-to-client packet"),
    /* fixed-header flags per type */
    BAD("connect_flags", "\x11\x00", HUB_E_PARSE,
        "CONNECT fixed-header flags are 0x1, must be 0x0"),
    BAD("puback_flags", "\x41\x02\x00\x01", HUB_E_PARSE, "PUBACK fixed-header flags are 0x1"),
    BAD("pubrec_flags", "\x52\x02\x00\x01", HUB_E_PARSE, "PUBREC fixed-header flags are 0x2"),
    BAD("pubrel_flags", "\x60\x02\x00\x01", HUB_E_PARSE,
        "PUBREL fixed-header flags are 0x0, must be 0x2"),
    BAD("pubcomp_flags", "\x78\x02\x00\x01", HUB_E_PARSE, "PUBCOMP fixed-header flags are 0x8"),
    BAD("subscribe_flags",
        "\x80\x06\x00\x01\x00\x01"
        "a"
        "\x00",
        HUB_E_PARSE, "SUBSCRIBE fixed-header flags are 0x0, must be 0x2"),
    BAD("unsubscribe_flags",
        "\xa3\x05\x00\x01\x00\x01"
        "a",
        HUB_E_PARSE, "UNSUBSCRIBE fixed-header flags are 0x3"),
    BAD("pingreq_flags", "\xc1\x00", HUB_E_PARSE, "PINGREQ fixed-header flags are 0x1"),
    BAD("disconnect_flags", "\xe8\x00", HUB_E_PARSE, "DISCONNECT fixed-header flags are 0x8"),
    /* fixed-size packets */
    BAD("puback_rl_3", "\x40\x03\x00\x01\x00", HUB_E_PARSE,
        "PUBACK remaining length is 3, must be 2"),
    BAD("pubrel_rl_0", "\x62\x00", HUB_E_PARSE, "PUBREL remaining length is 0, must be 2"),
    BAD("puback_id_0", "\x40\x02\x00\x00", HUB_E_PARSE, "PUBACK packet identifier is 0"),
    BAD("pingreq_rl_1", "\xc0\x01\x00", HUB_E_PARSE, "PINGREQ remaining length is 1, must be 0"),
    BAD("disconnect_rl_1", "\xe0\x01\x00", HUB_E_PARSE, "DISCONNECT remaining length is 1"),
    /* PUBLISH */
    BAD("publish_qos3",
        "\x36\x05\x00\x01"
        "t"
        "\x00\x01",
        HUB_E_PARSE, "PUBLISH QoS 3 is invalid"),
    BAD("publish_dup_qos0",
        "\x38\x03\x00\x01"
        "t",
        HUB_E_PARSE, "PUBLISH DUP flag set with QoS 0"),
    BAD("publish_qos1_id_0",
        "\x32\x05\x00\x01"
        "t"
        "\x00\x00",
        HUB_E_PARSE, "PUBLISH QoS 1 packet identifier is 0"),
    BAD("publish_qos2_id_0",
        "\x34\x05\x00\x01"
        "t"
        "\x00\x00",
        HUB_E_PARSE, "PUBLISH QoS 2 packet identifier is 0"),
    BAD("publish_qos1_no_id",
        "\x32\x03\x00\x01"
        "t",
        HUB_E_PARSE, "PUBLISH packet identifier is missing"),
    BAD("publish_wildcard_hash",
        "\x30\x03\x00\x01"
        "#",
        HUB_E_PARSE, "PUBLISH topic contains wildcard '#'"),
    BAD("publish_wildcard_plus",
        "\x30\x05\x00\x03"
        "a/+",
        HUB_E_PARSE, "PUBLISH topic contains wildcard '+'"),
    BAD("publish_empty_topic", "\x30\x02\x00\x00", HUB_E_PARSE, "PUBLISH topic is empty"),
    BAD("publish_topic_overrun",
        "\x30\x03\x00\x05"
        "a",
        HUB_E_PARSE, "PUBLISH topic length 5 runs past the end of the packet"),
    BAD("publish_no_topic_length", "\x30\x01\x00", HUB_E_PARSE, "PUBLISH topic length is missing"),
    BAD("publish_nul",
        "\x30\x05\x00\x03"
        "a"
        "\x00"
        "b",
        HUB_E_PARSE, "PUBLISH topic contains U+0000"),
    BAD("publish_surrogate", "\x30\x05\x00\x03\xed\xa0\x80", HUB_E_PARSE,
        "PUBLISH topic contains a UTF-16 surrogate"),
    BAD("publish_overlong_2", "\x30\x04\x00\x02\xc0\xaf", HUB_E_PARSE,
        "PUBLISH topic has an overlong UTF-8 encoding"),
    BAD("publish_overlong_3", "\x30\x05\x00\x03\xe0\x80\xaf", HUB_E_PARSE,
        "PUBLISH topic has an overlong UTF-8 encoding"),
    BAD("publish_overlong_4", "\x30\x06\x00\x04\xf0\x80\x80\xaf", HUB_E_PARSE,
        "PUBLISH topic has an overlong UTF-8 encoding"),
    BAD("publish_above_10ffff", "\x30\x06\x00\x04\xf4\x90\x80\x80", HUB_E_PARSE, "above U+10FFFF"),
    BAD("publish_byte_ff",
        "\x30\x04\x00\x02"
        "a"
        "\xff",
        HUB_E_PARSE, "PUBLISH topic is not well-formed UTF-8 (byte 0xff at offset 1)"),
    BAD("publish_lone_continuation", "\x30\x03\x00\x01\x80", HUB_E_PARSE,
        "not well-formed UTF-8 (byte 0x80 at offset 0)"),
    BAD("publish_bad_continuation",
        "\x30\x05\x00\x03\xe2\x82"
        "a",
        HUB_E_PARSE, "not well-formed UTF-8 (byte 0x61 at offset 2)"),
    BAD("publish_truncated_utf8", "\x30\x04\x00\x02\xe2\x82", HUB_E_PARSE,
        "PUBLISH topic ends inside a UTF-8 sequence"),
    /* CONNECT */
    BAD("connect_empty", "\x10\x00", HUB_E_PARSE, "CONNECT protocol name length is missing"),
    BAD("connect_mqisdp_level3",
        "\x10\x0f\x00\x06"
        "MQIsdp"
        "\x03\x02\x00\x3c\x00\x01"
        "c",
        HUB_MQTT_E_PROTOCOL_LEVEL, "MQTT 3.1 (\"MQIsdp\", level 3)"),
    BAD("connect_level5",
        "\x10\x0d\x00\x04"
        "MQTT"
        "\x05\x02\x00\x3c\x00\x01"
        "c",
        HUB_MQTT_E_PROTOCOL_LEVEL, "CONNECT protocol level 5"),
    BAD("connect_wrong_name",
        "\x10\x0d\x00\x04"
        "MQTX"
        "\x04\x02\x00\x3c\x00\x01"
        "c",
        HUB_E_PARSE, "CONNECT protocol name is not \"MQTT\""),
    BAD("connect_reserved_bit",
        "\x10\x0d\x00\x04"
        "MQTT"
        "\x04\x03\x00\x3c\x00\x01"
        "c",
        HUB_E_PARSE, "CONNECT reserved flag bit 0 is set"),
    BAD("connect_will_qos3",
        "\x10\x13\x00\x04"
        "MQTT"
        "\x04\x1e\x00\x3c\x00\x01"
        "c"
        "\x00\x01"
        "t"
        "\x00\x01"
        "p",
        HUB_E_PARSE, "CONNECT will QoS is 3"),
    BAD("connect_will_qos_without_will",
        "\x10\x0d\x00\x04"
        "MQTT"
        "\x04\x0a\x00\x3c\x00\x01"
        "c",
        HUB_E_PARSE, "CONNECT will QoS 1 without the will flag"),
    BAD("connect_will_retain_without_will",
        "\x10\x0d\x00\x04"
        "MQTT"
        "\x04\x22\x00\x3c\x00\x01"
        "c",
        HUB_E_PARSE, "CONNECT will retain set without the will flag"),
    BAD("connect_password_without_username",
        "\x10\x10\x00\x04"
        "MQTT"
        "\x04\x42\x00\x3c\x00\x01"
        "c"
        "\x00\x01"
        "p",
        HUB_E_PARSE, "CONNECT password flag set without the username flag"),
    BAD("connect_trailing_bytes",
        "\x10\x0f\x00\x04"
        "MQTT"
        "\x04\x02\x00\x3c\x00\x01"
        "c"
        "zz",
        HUB_E_PARSE, "CONNECT has 2 unexpected bytes after its last field"),
    BAD("connect_will_topic_wildcard",
        "\x10\x15\x00\x04"
        "MQTT"
        "\x04\x06\x00\x3c\x00\x01"
        "c"
        "\x00\x03"
        "a/#"
        "\x00\x01"
        "p",
        HUB_E_PARSE, "CONNECT will topic contains wildcard '#'"),
    BAD("connect_client_id_overrun",
        "\x10\x0f\x00\x04"
        "MQTT"
        "\x04\x02\x00\x3c\x00\x09"
        "abc",
        HUB_E_PARSE, "CONNECT client identifier length 9 runs past the end"),
    BAD("connect_username_flag_without_field",
        "\x10\x0d\x00\x04"
        "MQTT"
        "\x04\x82\x00\x3c\x00\x01"
        "c",
        HUB_E_PARSE, "CONNECT user name length is missing"),
    BAD("connect_no_keep_alive",
        "\x10\x08\x00\x04"
        "MQTT"
        "\x04\x02",
        HUB_E_PARSE, "CONNECT keep alive is missing"),
    BAD("connect_client_id_nul",
        "\x10\x0e\x00\x04"
        "MQTT"
        "\x04\x02\x00\x3c\x00\x02"
        "a"
        "\x00",
        HUB_E_PARSE, "CONNECT client identifier contains U+0000"),
    /* SUBSCRIBE / UNSUBSCRIBE */
    BAD("subscribe_no_filters", "\x82\x02\x00\x01", HUB_E_PARSE, "SUBSCRIBE with no topic filters"),
    BAD("subscribe_9_filters",
        "\x82\x2f\x00\x01\x00\x02"
        "f0"
        "\x00\x00\x02"
        "f1"
        "\x00\x00\x02"
        "f2"
        "\x00\x00\x02"
        "f3"
        "\x00\x00\x02"
        "f4"
        "\x00\x00\x02"
        "f5"
        "\x00\x00\x02"
        "f6"
        "\x00\x00\x02"
        "f7"
        "\x00\x00\x02"
        "f8"
        "\x00",
        HUB_E_PARSE, "SUBSCRIBE has more than 8 topic filters"),
    BAD("subscribe_qos3",
        "\x82\x06\x00\x01\x00\x01"
        "a"
        "\x03",
        HUB_E_PARSE, "SUBSCRIBE requested QoS 3"),
    BAD("subscribe_qos_reserved_bits",
        "\x82\x06\x00\x01\x00\x01"
        "a"
        "\x41",
        HUB_E_PARSE, "SUBSCRIBE requested QoS byte 0x41 has reserved bits set"),
    BAD("subscribe_missing_qos",
        "\x82\x05\x00\x01\x00\x01"
        "a",
        HUB_E_PARSE, "SUBSCRIBE requested QoS is missing"),
    BAD("subscribe_id_0",
        "\x82\x06\x00\x00\x00\x01"
        "a"
        "\x00",
        HUB_E_PARSE, "SUBSCRIBE packet identifier is 0"),
    BAD("subscribe_hash_not_last",
        "\x82\x0a\x00\x01\x00\x05"
        "a/#/b"
        "\x00",
        HUB_E_PARSE, "'#' is not alone in the last level"),
    BAD("subscribe_hash_in_level",
        "\x82\x07\x00\x01\x00\x02"
        "a#"
        "\x00",
        HUB_E_PARSE, "'#' is not alone in the last level"),
    BAD("subscribe_plus_in_level",
        "\x82\x07\x00\x01\x00\x02"
        "a+"
        "\x00",
        HUB_E_PARSE, "'+' does not occupy a whole level"),
    BAD("subscribe_empty_filter", "\x82\x05\x00\x01\x00\x00\x00", HUB_E_PARSE,
        "topic filter is empty"),
    BAD("subscribe_filter_surrogate", "\x82\x08\x00\x01\x00\x03\xed\xbf\xbf\x00", HUB_E_PARSE,
        "SUBSCRIBE topic filter contains a UTF-16 surrogate"),
    BAD("unsubscribe_no_filters", "\xa2\x02\x00\x01", HUB_E_PARSE,
        "UNSUBSCRIBE with no topic filters"),
    BAD("unsubscribe_9_filters",
        "\xa2\x26\x00\x01\x00\x02"
        "f0"
        "\x00\x02"
        "f1"
        "\x00\x02"
        "f2"
        "\x00\x02"
        "f3"
        "\x00\x02"
        "f4"
        "\x00\x02"
        "f5"
        "\x00\x02"
        "f6"
        "\x00\x02"
        "f7"
        "\x00\x02"
        "f8",
        HUB_E_PARSE, "UNSUBSCRIBE has more than 8 topic filters"),
    BAD("unsubscribe_id_0",
        "\xa2\x05\x00\x00\x00\x01"
        "a",
        HUB_E_PARSE, "UNSUBSCRIBE packet identifier is 0"),
    BAD("unsubscribe_bad_filter",
        "\xa2\x06\x00\x01\x00\x02"
        "#a",
        HUB_E_PARSE, "'#' is not alone"),
};
#define N_BAD (sizeof(bad_cases) / sizeof(bad_cases[0]))

static void test_malformed_packets(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_BAD; i++) {
        const struct bad_case *bc = &bad_cases[i];
        struct hub_mqtt_packet p;
        struct hub_err err = {0};
        print_message("case %s\n", bc->name);
        int rc = decode_copy(bc->bytes, bc->len, bc->max, &p, &err, NULL);
        if (rc != bc->rc || strstr(err.msg, bc->msg) == NULL)
            fail_msg("%s: rc %d (%s) msg \"%s\", want rc %d msg containing \"%s\"", bc->name, rc,
                     hub_err_name(rc), err.msg, bc->rc, bc->msg);
        assert_int_equal(err.code, bc->rc);
        /* no prefix is ever accepted: each is "need more" or the same error */
        for (size_t k = 0; k < bc->len; k++) {
            struct hub_err kerr = {0};
            int krc = decode_copy(bc->bytes, k, bc->max, &p, &kerr, NULL);
            if (krc != 0 && krc != bc->rc)
                fail_msg("%s: prefix %zu gave %d (%s)", bc->name, k, krc, kerr.msg);
        }
    }
}

/* The length check happens before the body: a hostile length needs only its
 * header bytes to be refused. */
static void test_too_large_refused_from_header_alone(void **state)
{
    (void)state;
    struct hub_mqtt_packet p;
    struct hub_err err = {0};
    /* 2 bytes of a PUBLISH claiming 16383 bytes of body, limit 1024 */
    assert_int_equal(decode_copy(PK("\x30\xff"), 1024, &p, &err, NULL), 0);
    assert_int_equal(decode_copy(PK("\x30\xff\x7f"), 1024, &p, &err, NULL), HUB_E_TOO_LARGE);
}

static void test_type_names(void **state)
{
    (void)state;
    assert_string_equal(hub_mqtt_type_name(HUB_MQTT_CONNECT), "CONNECT");
    assert_string_equal(hub_mqtt_type_name(HUB_MQTT_DISCONNECT), "DISCONNECT");
    assert_string_equal(hub_mqtt_type_name(0), "RESERVED");
    assert_string_equal(hub_mqtt_type_name(15), "RESERVED");
    assert_string_equal(hub_mqtt_type_name(99), "RESERVED");
}

struct utf8_case {
    const char *name;
    const uint8_t *bytes;
    size_t len;
    int ok;
};

static const struct utf8_case utf8_cases[] = {
    {"ascii", PK("hello/world"), 1},
    {"empty", PK(""), 1},
    {"2_byte_min", PK("\xc2\x80"), 1},
    {"3_byte_min", PK("\xe0\xa0\x80"), 1},
    {"before_surrogates", PK("\xed\x9f\xbf"), 1},  /* U+D7FF */
    {"after_surrogates", PK("\xee\x80\x80"), 1},   /* U+E000 */
    {"nonchar_fffe", PK("\xef\xbf\xbe"), 1},       /* SHOULD NOT, accepted */
    {"control_char", PK("\x01\x7f"), 1},           /* SHOULD NOT, accepted */
    {"max_code_point", PK("\xf4\x8f\xbf\xbf"), 1}, /* U+10FFFF */
    {"4_byte_min", PK("\xf0\x90\x80\x80"), 1},     /* U+10000 */
    {"nul", PK("\x00"), 0},
    {"c1_overlong", PK("\xc1\xbf"), 0},
    {"surrogate_low", PK("\xed\xb0\x80"), 0},      /* U+DC00 */
    {"surrogate_high_end", PK("\xed\xbf\xbf"), 0}, /* U+DFFF */
    {"f5", PK("\xf5\x80\x80\x80"), 0},
    {"fe", PK("\xfe"), 0},
    {"4_byte_truncated", PK("\xf0\x90\x80"), 0},
    {"4_byte_bad_last", PK("\xf0\x90\x80\x41"), 0},
};

static void test_utf8_validate(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(utf8_cases) / sizeof(utf8_cases[0]); i++) {
        const struct utf8_case *uc = &utf8_cases[i];
        struct hub_err err = {0};
        int rc = hub_mqtt_utf8_validate(uc->bytes, uc->len, "s", &err);
        if ((rc == 0) != uc->ok)
            fail_msg("%s: rc %d (%s)", uc->name, rc, err.msg);
        if (!uc->ok)
            assert_int_equal(rc, HUB_E_PARSE);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_packets),
        cmocka_unit_test(test_valid_packets_every_truncation),
        cmocka_unit_test(test_stream_in_random_chunks),
        cmocka_unit_test(test_publish_multibyte_remaining_length),
        cmocka_unit_test(test_max_remaining_length_needs_more),
        cmocka_unit_test(test_malformed_packets),
        cmocka_unit_test(test_too_large_refused_from_header_alone),
        cmocka_unit_test(test_type_names),
        cmocka_unit_test(test_utf8_validate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
