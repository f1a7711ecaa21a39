/*
 * MQTT 3.1.1 decoder, client->server packets. Format tables: mqtt.h.
 *
 * Order of checks, and why: the first byte (type, flags) is judged as soon as
 * it arrives, the remaining length as soon as its bytes are complete (so a
 * hostile length is refused before the caller buffers the body), and the
 * body only once all of it is there. A valid packet therefore yields 0 for
 * every proper prefix and the same result for the whole, whatever the split.
 */
#include "mqtt/mqtt.h"

#include <string.h>

/* Bounds-checked reader over one packet body. */
struct cursor {
    const uint8_t *p;
    size_t left;
};

static const char *const type_names[16] = {
    "RESERVED", "CONNECT",  "CONNACK",    "PUBLISH",  "PUBACK",      "PUBREC",
    "PUBREL",   "PUBCOMP",  "SUBSCRIBE",  "SUBACK",   "UNSUBSCRIBE", "UNSUBACK",
    "PINGREQ",  "PINGRESP", "DISCONNECT", "RESERVED",
};

const char *hub_mqtt_type_name(int type)
{
    if (type < 0 || type > 15)
        return "RESERVED";
    return type_names[type];
}

/* ---- UTF-8 and topic syntax --------------------------------------------- */

int hub_mqtt_utf8_validate(const uint8_t *s, size_t len, const char *what, struct hub_err *err)
{
    size_t i = 0;
    while (i < len) {
        uint8_t c = s[i];
        if (c == 0)
            return HUB_ERR(err, HUB_E_PARSE, "%s contains U+0000 (offset %zu, MQTT 3.1.1 §1.5.3)",
                           what, i);
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t need;
        uint8_t lo = 0x80, hi = 0xbf; /* allowed range of the second byte */
        if (c >= 0xc2 && c <= 0xdf) {
            need = 1;
        } else if (c >= 0xe0 && c <= 0xef) {
            need = 2;
            if (c == 0xe0)
                lo = 0xa0; /* below: overlong */
            if (c == 0xed)
                hi = 0x9f; /* above: U+D800..U+DFFF */
        } else if (c >= 0xf0 && c <= 0xf4) {
            need = 3;
            if (c == 0xf0)
                lo = 0x90; /* below: overlong */
            if (c == 0xf4)
                hi = 0x8f; /* above: beyond U+10FFFF */
        } else if (c == 0xc0 || c == 0xc1) {
            return HUB_ERR(err, HUB_E_PARSE,
                           "%s has an overlong UTF-8 encoding (byte 0x%02x at offset %zu)", what, c,
                           i);
        } else {
            return HUB_ERR(err, HUB_E_PARSE,
                           "%s is not well-formed UTF-8 (byte 0x%02x at offset %zu)", what, c, i);
        }
        if (len - i - 1 < need)
            return HUB_ERR(err, HUB_E_PARSE, "%s ends inside a UTF-8 sequence (offset %zu)", what,
                           i);
        uint8_t c1 = s[i + 1];
        if (c1 < lo || c1 > hi) {
            if (c == 0xed && c1 >= 0xa0 && c1 <= 0xbf)
                return HUB_ERR(err, HUB_E_PARSE,
                               "%s contains a UTF-16 surrogate (U+D800..U+DFFF) at offset %zu",
                               what, i);
            if ((c == 0xe0 && c1 >= 0x80 && c1 < 0xa0) || (c == 0xf0 && c1 >= 0x80 && c1 < 0x90))
                return HUB_ERR(err, HUB_E_PARSE, "%s has an overlong UTF-8 encoding (offset %zu)",
                               what, i);
            if (c == 0xf4 && c1 >= 0x90 && c1 <= 0xbf)
                return HUB_ERR(err, HUB_E_PARSE,
                               "%s encodes a code point above U+10FFFF (offset %zu)", what, i);
            return HUB_ERR(err, HUB_E_PARSE,
                           "%s is not well-formed UTF-8 (byte 0x%02x at offset %zu)", what, c1,
                           i + 1);
        }
        for (size_t k = 2; k <= need; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return HUB_ERR(err, HUB_E_PARSE,
                               "%s is not well-formed UTF-8 (byte 0x%02x at offset %zu)", what,
                               s[i + k], i + k);
        }
        i += need + 1;
    }
    return 0;
}

int hub_mqtt_filter_validate(const char *f, size_t len, struct hub_err *err)
{
    if (len == 0)
        return HUB_ERR(err, HUB_E_PARSE, "topic filter is empty (MQTT 3.1.1 §4.7.3)");
    size_t level_start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && f[i] != '/')
            continue;
        /* level is f[level_start..i) */
        for (size_t k = level_start; k < i; k++) {
            if (f[k] == '#') {
                if (i - level_start != 1 || i != len)
                    return HUB_ERR(err, HUB_E_PARSE,
                                   "topic filter '#' is not alone in the last level (§4.7.1.2)");
            } else if (f[k] == '+') {
                if (i - level_start != 1)
                    return HUB_ERR(err, HUB_E_PARSE,
                                   "topic filter '+' does not occupy a whole level (§4.7.1.3)");
            }
        }
        level_start = i + 1;
    }
    return 0;
}

/* ---- cursor helpers ----------------------------------------------------- */

static int take_u8(struct cursor *c, uint8_t *v, const char *what, struct hub_err *err)
{
    if (c->left < 1)
        return HUB_ERR(err, HUB_E_PARSE, "%s is missing (packet too short)", what);
    *v = c->p[0];
    c->p++;
    c->left--;
    return 0;
}

static int take_u16(struct cursor *c, uint16_t *v, const char *what, struct hub_err *err)
{
    if (c->left < 2)
        return HUB_ERR(err, HUB_E_PARSE, "%s is missing (packet too short)", what);
    *v = (uint16_t)((c->p[0] << 8) | c->p[1]);
    c->p += 2;
    c->left -= 2;
    return 0;
}

/* Length-prefixed binary field (§1.5.3 layout without the UTF-8 rule). */
static int take_bytes(struct cursor *c, struct hub_mqtt_bytes *v, const char *what,
                      struct hub_err *err)
{
    uint16_t n;
    if (c->left < 2)
        return HUB_ERR(err, HUB_E_PARSE, "%s length is missing (packet too short)", what);
    n = (uint16_t)((c->p[0] << 8) | c->p[1]);
    if (c->left - 2 < n)
        return HUB_ERR(err, HUB_E_PARSE,
                       "%s length %u runs past the end of the packet (%zu bytes left)", what, n,
                       c->left - 2);
    v->ptr = c->p + 2;
    v->len = n;
    c->p += 2u + n;
    c->left -= 2u + n;
    return 0;
}

static int take_str(struct cursor *c, struct hub_mqtt_str *v, const char *what, struct hub_err *err)
{
    struct hub_mqtt_bytes b = {NULL, 0};
    int rc = take_bytes(c, &b, what, err);
    if (rc < 0)
        return rc;
    rc = hub_mqtt_utf8_validate(b.ptr, b.len, what, err);
    if (rc < 0)
        return rc;
    v->ptr = (const char *)b.ptr;
    v->len = b.len;
    return 0;
}

/* A topic name (§4.7.3): non-empty, no wildcard characters (§3.3.2.1). */
static int check_topic_name(const struct hub_mqtt_str *t, const char *what, struct hub_err *err)
{
    if (t->len == 0)
        return HUB_ERR(err, HUB_E_PARSE, "%s is empty (MQTT 3.1.1 §4.7.3)", what);
    for (size_t i = 0; i < t->len; i++) {
        if (t->ptr[i] == '+' || t->ptr[i] == '#')
            return HUB_ERR(err, HUB_E_PARSE, "%s contains wildcard '%c' (MQTT 3.1.1 §3.3.2.1)",
                           what, t->ptr[i]);
    }
    return 0;
}

static int check_no_trailing(const struct cursor *c, const char *what, struct hub_err *err)
{
    if (c->left != 0)
        return HUB_ERR(err, HUB_E_PARSE, "%s has %zu unexpected bytes after its last field", what,
                       c->left);
    return 0;
}

/* ---- per-packet bodies -------------------------------------------------- */

static int decode_connect(struct cursor *c, struct hub_mqtt_connect *m, struct hub_err *err)
{
    struct hub_mqtt_str name = {NULL, 0};
    uint8_t flags = 0;
    int rc;

    memset(m, 0, sizeof(*m));
    if ((rc = take_str(c, &name, "CONNECT protocol name", err)) < 0)
        return rc;
    if ((rc = take_u8(c, &m->protocol_level, "CONNECT protocol level", err)) < 0)
        return rc;
    if (name.len == 6 && memcmp(name.ptr, "MQIsdp", 6) == 0)
        return HUB_ERR(err, HUB_MQTT_E_PROTOCOL_LEVEL,
                       "CONNECT is MQTT 3.1 (\"MQIsdp\", level %u); only MQTT 3.1.1 (level 4) is "
                       "supported",
                       m->protocol_level);
    if (name.len != 4 || memcmp(name.ptr, "MQTT", 4) != 0)
        return HUB_ERR(err, HUB_E_PARSE, "CONNECT protocol name is not \"MQTT\" (§3.1.2.1)");
    if (m->protocol_level != 4)
        return HUB_ERR(err, HUB_MQTT_E_PROTOCOL_LEVEL,
                       "CONNECT protocol level %u; only MQTT 3.1.1 (level 4) is supported",
                       m->protocol_level);

    if ((rc = take_u8(c, &flags, "CONNECT flags", err)) < 0)
        return rc;
    if (flags & 0x01)
        return HUB_ERR(err, HUB_E_PARSE, "CONNECT reserved flag bit 0 is set (§3.1.2.3)");
    m->clean_session = (flags & 0x02) != 0;
    m->has_will = (flags & 0x04) != 0;
    uint8_t will_qos = (uint8_t)((flags >> 3) & 0x03);
    bool will_retain = (flags & 0x20) != 0;
    m->has_password = (flags & 0x40) != 0;
    m->has_username = (flags & 0x80) != 0;
    if (will_qos == 3)
        return HUB_ERR(err, HUB_E_PARSE, "CONNECT will QoS is 3 (§3.1.2.6)");
    if (!m->has_will && will_qos != 0)
        return HUB_ERR(err, HUB_E_PARSE, "CONNECT will QoS %u without the will flag (§3.1.2.6)",
                       will_qos);
    if (!m->has_will && will_retain)
        return HUB_ERR(err, HUB_E_PARSE,
                       "CONNECT will retain set without the will flag (§3.1.2.7)");
    if (m->has_password && !m->has_username)
        return HUB_ERR(err, HUB_E_PARSE,
                       "CONNECT password flag set without the username flag (§3.1.2.9)");
    m->will_qos = will_qos;
    m->will_retain = will_retain;

    if ((rc = take_u16(c, &m->keep_alive_s, "CONNECT keep alive", err)) < 0)
        return rc;
    if ((rc = take_str(c, &m->client_id, "CONNECT client identifier", err)) < 0)
        return rc;
    if (m->has_will) {
        if ((rc = take_str(c, &m->will_topic, "CONNECT will topic", err)) < 0)
            return rc;
        if ((rc = check_topic_name(&m->will_topic, "CONNECT will topic", err)) < 0)
            return rc;
        if ((rc = take_bytes(c, &m->will_payload, "CONNECT will message", err)) < 0)
            return rc;
    }
    if (m->has_username && (rc = take_str(c, &m->username, "CONNECT user name", err)) < 0)
        return rc;
    if (m->has_password && (rc = take_bytes(c, &m->password, "CONNECT password", err)) < 0)
        return rc;
    return check_no_trailing(c, "CONNECT", err);
}

static int decode_publish(struct cursor *c, uint8_t flags, struct hub_mqtt_publish *m,
                          struct hub_err *err)
{
    int rc;
    memset(m, 0, sizeof(*m));
    m->dup = (flags & 0x08) != 0;
    m->qos = (uint8_t)((flags >> 1) & 0x03);
    m->retain = (flags & 0x01) != 0;
    /* QoS and DUP were validated from the first byte already (check_header). */
    if ((rc = take_str(c, &m->topic, "PUBLISH topic", err)) < 0)
        return rc;
    if ((rc = check_topic_name(&m->topic, "PUBLISH topic", err)) < 0)
        return rc;
    if (m->qos > 0) {
        if ((rc = take_u16(c, &m->packet_id, "PUBLISH packet identifier", err)) < 0)
            return rc;
        if (m->packet_id == 0)
            return HUB_ERR(err, HUB_E_PARSE, "PUBLISH QoS %u packet identifier is 0 (§2.3.1)",
                           m->qos);
    }
    m->payload.ptr = c->p;
    m->payload.len = c->left;
    c->p += c->left;
    c->left = 0;
    return 0;
}

static int decode_ack(struct cursor *c, int type, uint16_t *packet_id, struct hub_err *err)
{
    int rc;
    const char *name = hub_mqtt_type_name(type);
    /* remaining length == 2 was checked in check_length */
    if ((rc = take_u16(c, packet_id, name, err)) < 0)
        return rc;
    if (*packet_id == 0)
        return HUB_ERR(err, HUB_E_PARSE, "%s packet identifier is 0 (§2.3.1)", name);
    return 0;
}

static int decode_subscribe(struct cursor *c, struct hub_mqtt_subscribe *m, struct hub_err *err)
{
    int rc;
    memset(m, 0, sizeof(*m));
    if ((rc = take_u16(c, &m->packet_id, "SUBSCRIBE packet identifier", err)) < 0)
        return rc;
    if (m->packet_id == 0)
        return HUB_ERR(err, HUB_E_PARSE, "SUBSCRIBE packet identifier is 0 (§2.3.1)");
    if (c->left == 0)
        return HUB_ERR(err, HUB_E_PARSE, "SUBSCRIBE with no topic filters (§3.8.3)");
    while (c->left > 0) {
        if (m->count == HUB_MQTT_FILTERS_MAX)
            return HUB_ERR(err, HUB_E_PARSE, "SUBSCRIBE has more than %d topic filters",
                           HUB_MQTT_FILTERS_MAX);
        struct hub_mqtt_str *f = &m->filters[m->count].filter;
        uint8_t q = 0;
        if ((rc = take_str(c, f, "SUBSCRIBE topic filter", err)) < 0)
            return rc;
        if ((rc = hub_mqtt_filter_validate(f->ptr, f->len, err)) < 0)
            return rc;
        if ((rc = take_u8(c, &q, "SUBSCRIBE requested QoS", err)) < 0)
            return rc;
        if (q & 0xfc)
            return HUB_ERR(err, HUB_E_PARSE,
                           "SUBSCRIBE requested QoS byte 0x%02x has reserved bits set (§3.8.3.1)",
                           q);
        if (q == 3)
            return HUB_ERR(err, HUB_E_PARSE, "SUBSCRIBE requested QoS 3 (§3.8.3.1)");
        m->filters[m->count].qos = q;
        m->count++;
    }
    return 0;
}

static int decode_unsubscribe(struct cursor *c, struct hub_mqtt_unsubscribe *m, struct hub_err *err)
{
    int rc;
    memset(m, 0, sizeof(*m));
    if ((rc = take_u16(c, &m->packet_id, "UNSUBSCRIBE packet identifier", err)) < 0)
        return rc;
    if (m->packet_id == 0)
        return HUB_ERR(err, HUB_E_PARSE, "UNSUBSCRIBE packet identifier is 0 (§2.3.1)");
    if (c->left == 0)
        return HUB_ERR(err, HUB_E_PARSE, "UNSUBSCRIBE with no topic filters (§3.10.3)");
    while (c->left > 0) {
        if (m->count == HUB_MQTT_FILTERS_MAX)
            return HUB_ERR(err, HUB_E_PARSE, "UNSUBSCRIBE has more than %d topic filters",
                           HUB_MQTT_FILTERS_MAX);
        struct hub_mqtt_str *f = &m->filters[m->count];
        if ((rc = take_str(c, f, "UNSUBSCRIBE topic filter", err)) < 0)
            return rc;
        if ((rc = hub_mqtt_filter_validate(f->ptr, f->len, err)) < 0)
            return rc;
        m->count++;
    }
    return 0;
}

/* ---- framing ------------------------------------------------------------ */

/* Judges the first byte alone: type allowed from a client, flags as §2.2.2
 * requires. */
static int check_header(uint8_t b0, struct hub_err *err)
{
    int type = b0 >> 4;
    uint8_t flags = b0 & 0x0f;
    switch (type) {
    case HUB_MQTT_PUBLISH:
        if (((flags >> 1) & 0x03) == 3)
            return HUB_ERR(err, HUB_E_PARSE, "PUBLISH QoS 3 is invalid (§3.3.1.2)");
        if ((flags & 0x08) && ((flags >> 1) & 0x03) == 0)
            return HUB_ERR(err, HUB_E_PARSE, "PUBLISH DUP flag set with QoS 0 (§3.3.1.1)");
        return 0;
    case HUB_MQTT_PUBREL:
    case HUB_MQTT_SUBSCRIBE:
    case HUB_MQTT_UNSUBSCRIBE:
        if (flags != 0x02)
            return HUB_ERR(err, HUB_E_PARSE, "%s fixed-header flags are 0x%x, must be 0x2 (§2.2.2)",
                           hub_mqtt_type_name(type), flags);
        return 0;
    case HUB_MQTT_CONNECT:
    case HUB_MQTT_PUBACK:
    case HUB_MQTT_PUBREC:
    case HUB_MQTT_PUBCOMP:
    case HUB_MQTT_PINGREQ:
    case HUB_MQTT_DISCONNECT:
        if (flags != 0)
            return HUB_ERR(err, HUB_E_PARSE, "%s fixed-header flags are 0x%x, must be 0x0 (§2.2.2)",
                           hub_mqtt_type_name(type), flags);
        return 0;
    case HUB_MQTT_CONNACK:
    case HUB_MQTT_SUBACK:
    case HUB_MQTT_UNSUBACK:
    case HUB_MQTT_PINGRESP:
        return HUB_ERR(err, HUB_E_PARSE,
                       "%s is a server-to-client packet; a client must not send it",
                       hub_mqtt_type_name(type));
    default:
        return HUB_ERR(err, HUB_E_PARSE, "packet type %d is reserved (§2.2.1)", type);
    }
}

/* Length rules that need no body: fixed-size packets. */
static int check_length(int type, size_t rl, struct hub_err *err)
{
    switch (type) {
    case HUB_MQTT_PUBACK:
    case HUB_MQTT_PUBREC:
    case HUB_MQTT_PUBREL:
    case HUB_MQTT_PUBCOMP:
        if (rl != 2)
            return HUB_ERR(err, HUB_E_PARSE, "%s remaining length is %zu, must be 2",
                           hub_mqtt_type_name(type), rl);
        return 0;
    case HUB_MQTT_PINGREQ:
    case HUB_MQTT_DISCONNECT:
        if (rl != 0)
            return HUB_ERR(err, HUB_E_PARSE, "%s remaining length is %zu, must be 0",
                           hub_mqtt_type_name(type), rl);
        return 0;
    default:
        return 0;
    }
}

int hub_mqtt_decode(const uint8_t *buf, size_t len, size_t max_packet_bytes,
                    struct hub_mqtt_packet *out, struct hub_err *err)
{
    int rc;
    if (len == 0)
        return 0;
    if ((rc = check_header(buf[0], err)) < 0)
        return rc;

    /* §2.2.3: up to 4 bytes, 7 bits each, least significant group first. */
    size_t rl = 0;
    size_t nlen = 0;
    for (;;) {
        if (nlen == 4)
            return HUB_ERR(err, HUB_E_PARSE, "remaining length uses more than 4 bytes (§2.2.3)");
        if (1 + nlen >= len)
            return 0;
        uint8_t b = buf[1 + nlen];
        rl |= (size_t)(b & 0x7f) << (7 * nlen);
        nlen++;
        if ((b & 0x80) == 0)
            break;
    }

    int type = buf[0] >> 4;
    size_t limit = max_packet_bytes;
    if (limit == 0 || limit > HUB_MQTT_PACKET_MAX)
        limit = HUB_MQTT_PACKET_MAX;
    size_t total = 1 + nlen + rl;
    if (total > limit)
        return HUB_ERR(err, HUB_E_TOO_LARGE, "%s of %zu bytes exceeds the %zu-byte packet limit",
                       hub_mqtt_type_name(type), total, limit);
    if ((rc = check_length(type, rl, err)) < 0)
        return rc;
    if (len < total)
        return 0;

    memset(out, 0, sizeof(*out));
    out->type = (enum hub_mqtt_type)type;
    out->flags = buf[0] & 0x0f;
    out->remaining_length = rl;
    struct cursor c = {buf + 1 + nlen, rl};
    switch (type) {
    case HUB_MQTT_CONNECT:
        rc = decode_connect(&c, &out->u.connect, err);
        break;
    case HUB_MQTT_PUBLISH:
        rc = decode_publish(&c, out->flags, &out->u.publish, err);
        break;
    case HUB_MQTT_PUBACK:
    case HUB_MQTT_PUBREC:
    case HUB_MQTT_PUBREL:
    case HUB_MQTT_PUBCOMP:
        rc = decode_ack(&c, type, &out->u.packet_id, err);
        break;
    case HUB_MQTT_SUBSCRIBE:
        rc = decode_subscribe(&c, &out->u.subscribe, err);
        break;
    case HUB_MQTT_UNSUBSCRIBE:
        rc = decode_unsubscribe(&c, &out->u.unsubscribe, err);
        break;
    default: /* PINGREQ, DISCONNECT: length already checked to be 0 */
        rc = 0;
        break;
    }
    if (rc < 0)
        return rc;
    return (int)total;
}
