/*
 * MQTT 3.1.1 encoders, server->client packets. Format tables: mqtt.h.
 *
 * Arguments are checked against what the spec lets a server send, so a bug in
 * a caller shows up as HUB_E_INVALID_ARG here rather than as a malformed
 * packet that makes a client drop the connection without saying why.
 */
#include "mqtt/mqtt.h"

#include <string.h>

/* Bytes needed to encode rl as a remaining length (§2.2.3), 0 if too big. */
static size_t rl_bytes(size_t rl)
{
    if (rl < 128u)
        return 1;
    if (rl < 16384u)
        return 2;
    if (rl < 2097152u)
        return 3;
    if (rl <= HUB_MQTT_REMAINING_MAX)
        return 4;
    return 0;
}

static size_t put_rl(uint8_t *p, size_t rl)
{
    size_t n = 0;
    do {
        uint8_t b = (uint8_t)(rl & 0x7f);
        rl >>= 7;
        if (rl > 0)
            b |= 0x80;
        p[n++] = b;
    } while (rl > 0);
    return n;
}

static int short_buffer(struct hub_err *err, const char *what, size_t need, size_t cap)
{
    return HUB_ERR(err, HUB_E_TOO_LARGE, "%s needs %zu bytes, buffer holds %zu", what, need, cap);
}

/* type/flags byte + length 2 + 16-bit packet id: PUBACK, UNSUBACK. */
static int encode_id_ack(uint8_t *buf, size_t cap, uint8_t b0, uint16_t packet_id, const char *what,
                         struct hub_err *err)
{
    if (packet_id == 0)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "%s packet identifier 0 (§2.3.1)", what);
    if (cap < 4)
        return short_buffer(err, what, 4, cap);
    buf[0] = b0;
    buf[1] = 2;
    buf[2] = (uint8_t)(packet_id >> 8);
    buf[3] = (uint8_t)(packet_id & 0xff);
    return 4;
}

int hub_mqtt_connack_encode(uint8_t *buf, size_t cap, bool session_present, uint8_t return_code,
                            struct hub_err *err)
{
    if (return_code > HUB_MQTT_CONNACK_NOT_AUTHORIZED)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "CONNACK return code %u is not defined (§3.2.2.3)",
                       return_code);
    if (session_present && return_code != 0)
        return HUB_ERR(err, HUB_E_INVALID_ARG,
                       "CONNACK session present with non-zero return code (§3.2.2.2)");
    if (cap < 4)
        return short_buffer(err, "CONNACK", 4, cap);
    buf[0] = HUB_MQTT_CONNACK << 4;
    buf[1] = 2;
    buf[2] = session_present ? 1 : 0;
    buf[3] = return_code;
    return 4;
}

size_t hub_mqtt_publish_size(size_t topic_len, size_t payload_len, uint8_t qos)
{
    if (topic_len > 0xffff)
        return 0;
    size_t head = 2 + topic_len + (qos > 0 ? 2 : 0);
    if (payload_len > HUB_MQTT_REMAINING_MAX - head)
        return 0;
    size_t rl = head + payload_len;
    return 1 + rl_bytes(rl) + rl;
}

int hub_mqtt_publish_encode(uint8_t *buf, size_t cap, const struct hub_mqtt_publish *pub,
                            struct hub_err *err)
{
    if (pub->qos > 2)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "PUBLISH QoS %u is invalid", pub->qos);
    if (pub->qos == 0 && (pub->packet_id != 0 || pub->dup))
        return HUB_ERR(err, HUB_E_INVALID_ARG,
                       "PUBLISH QoS 0 must have neither packet identifier nor DUP");
    if (pub->qos > 0 && pub->packet_id == 0)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "PUBLISH QoS %u needs a non-zero packet identifier",
                       pub->qos);
    if (pub->topic.len == 0)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "PUBLISH topic is empty");
    for (size_t i = 0; i < pub->topic.len; i++) {
        if (pub->topic.ptr[i] == '+' || pub->topic.ptr[i] == '#')
            return HUB_ERR(err, HUB_E_INVALID_ARG, "PUBLISH topic contains wildcard '%c'",
                           pub->topic.ptr[i]);
    }
    struct hub_err uerr;
    if (hub_mqtt_utf8_validate((const uint8_t *)pub->topic.ptr, pub->topic.len, "PUBLISH topic",
                               &uerr) < 0)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "%s", uerr.msg);
    size_t total = hub_mqtt_publish_size(pub->topic.len, pub->payload.len, pub->qos);
    if (total == 0)
        return HUB_ERR(err, HUB_E_TOO_LARGE,
                       "PUBLISH with a %zu-byte topic and %zu-byte payload exceeds MQTT's limits",
                       pub->topic.len, pub->payload.len);
    if (cap < total)
        return short_buffer(err, "PUBLISH", total, cap);

    size_t rl = 2 + pub->topic.len + (pub->qos > 0 ? 2u : 0u) + pub->payload.len;
    uint8_t *p = buf;
    *p++ = (uint8_t)((HUB_MQTT_PUBLISH << 4) | (pub->dup ? 0x08 : 0) | (pub->qos << 1) |
                     (pub->retain ? 0x01 : 0));
    p += put_rl(p, rl);
    *p++ = (uint8_t)(pub->topic.len >> 8);
    *p++ = (uint8_t)(pub->topic.len & 0xff);
    memcpy(p, pub->topic.ptr, pub->topic.len);
    p += pub->topic.len;
    if (pub->qos > 0) {
        *p++ = (uint8_t)(pub->packet_id >> 8);
        *p++ = (uint8_t)(pub->packet_id & 0xff);
    }
    if (pub->payload.len > 0)
        memcpy(p, pub->payload.ptr, pub->payload.len);
    p += pub->payload.len;
    return (int)(p - buf);
}

int hub_mqtt_puback_encode(uint8_t *buf, size_t cap, uint16_t packet_id, struct hub_err *err)
{
    return encode_id_ack(buf, cap, HUB_MQTT_PUBACK << 4, packet_id, "PUBACK", err);
}

size_t hub_mqtt_suback_size(size_t n)
{
    return 1 + rl_bytes(2 + n) + 2 + n;
}

int hub_mqtt_suback_encode(uint8_t *buf, size_t cap, uint16_t packet_id, const uint8_t *codes,
                           size_t n, struct hub_err *err)
{
    if (packet_id == 0)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "SUBACK packet identifier 0 (§2.3.1)");
    if (n == 0 || n > HUB_MQTT_FILTERS_MAX)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "SUBACK with %zu return codes (1..%d)", n,
                       HUB_MQTT_FILTERS_MAX);
    for (size_t i = 0; i < n; i++) {
        if (codes[i] > 2 && codes[i] != HUB_MQTT_SUBACK_FAILURE)
            return HUB_ERR(err, HUB_E_INVALID_ARG,
                           "SUBACK return code 0x%02x is not allowed (§3.9.3)", codes[i]);
    }
    size_t total = hub_mqtt_suback_size(n);
    if (cap < total)
        return short_buffer(err, "SUBACK", total, cap);
    uint8_t *p = buf;
    *p++ = HUB_MQTT_SUBACK << 4;
    p += put_rl(p, 2 + n);
    *p++ = (uint8_t)(packet_id >> 8);
    *p++ = (uint8_t)(packet_id & 0xff);
    memcpy(p, codes, n);
    p += n;
    return (int)(p - buf);
}

int hub_mqtt_unsuback_encode(uint8_t *buf, size_t cap, uint16_t packet_id, struct hub_err *err)
{
    return encode_id_ack(buf, cap, HUB_MQTT_UNSUBACK << 4, packet_id, "UNSUBACK", err);
}

int hub_mqtt_pingresp_encode(uint8_t *buf, size_t cap, struct hub_err *err)
{
    if (cap < 2)
        return short_buffer(err, "PINGRESP", 2, cap);
    buf[0] = HUB_MQTT_PINGRESP << 4;
    buf[1] = 0;
    return 2;
}
