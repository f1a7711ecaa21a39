/*
 * mqtt: the MQTT 3.1.1 packet codec, server side. Bytes in, structs out, and
 * back. Pure: no I/O, no libevent, no logging, no allocation, no globals.
 *
 * Owns: framing (fixed header, remaining length), the variable header and
 * payload of every client->server packet, UTF-8 string rules (§1.5.3), topic
 * name / topic filter syntax (§4.7), and encoding the server->client packets
 * hubd sends.
 * Knows nothing of: what a topic means (that is `iothub`), sessions, QoS
 * delivery state, keep-alive timers, sockets (that is `net`).
 *
 * Thread rules: every function is reentrant and may run on any thread.
 *
 * Spec: OASIS MQTT Version 3.1.1 (29 October 2014), cited as §x.y below.
 * Azure specifics: shared/reference/azure-iot-hub-protocol.md §1 (CONNECT) and
 * §2 (QoS rules).
 *
 * Fixed header (§2.2), present in every packet:
 *
 * | offset | size   | field                                                         |
 * |--------|--------|---------------------------------------------------------------|
 * | 0      | 1      | bits 7-4: packet type (§2.2.1); bits 3-0: flags (§2.2.2)      |
 * | 1      | 1..4   | remaining length (§2.2.3): 7 bits per byte, least significant |
 * |        |        | group first, bit 7 = "another byte follows"; max 268,435,455  |
 * | 1+n    | rl     | variable header and payload (rl = remaining length)           |
 *
 * Packet types and the flags §2.2.2 requires (anything else is malformed):
 *
 * | type | name        | dir | flags         | decoded here / encoded here            |
 * |------|-------------|-----|---------------|----------------------------------------|
 * | 1    | CONNECT     | C>S | 0000          | decoded                                |
 * | 2    | CONNACK     | S>C | 0000          | encoded (an error if a client sends it)|
 * | 3    | PUBLISH     | both| DUP QoS2 RET  | decoded and encoded                    |
 * | 4    | PUBACK      | both| 0000          | decoded and encoded                    |
 * | 5    | PUBREC      | both| 0000          | decoded (completeness; hubd never      |
 * | 6    | PUBREL      | both| 0010          |   grants QoS 2, Azure closes on QoS 2  |
 * | 7    | PUBCOMP     | both| 0000          |   PUBLISH, reference §2)               |
 * | 8    | SUBSCRIBE   | C>S | 0010          | decoded                                |
 * | 9    | SUBACK      | S>C | 0000          | encoded (an error if received)         |
 * | 10   | UNSUBSCRIBE | C>S | 0010          | decoded                                |
 * | 11   | UNSUBACK    | S>C | 0000          | encoded (an error if received)         |
 * | 12   | PINGREQ     | C>S | 0000          | decoded                                |
 * | 13   | PINGRESP    | S>C | 0000          | encoded (an error if received)         |
 * | 14   | DISCONNECT  | C>S | 0000          | decoded                                |
 * | 0,15 | reserved    |     |               | an error                               |
 *
 * Strings (§1.5.3) are a 2-byte big-endian length and that many bytes of
 * well-formed UTF-8 without U+0000 or surrogates; overlong forms are refused.
 * Control characters and noncharacters are "SHOULD NOT" in the spec and are
 * accepted.
 *
 * Ownership: the decoder returns views (pointer + length) into the caller's
 * input buffer and never copies or allocates. A decoded packet is valid only
 * while those input bytes stay where they are: the caller must finish with
 * the packet (or copy what it keeps) before it consumes, moves or frees the
 * buffer. Strings in views are NOT NUL-terminated. Encoders write into a
 * caller buffer and keep no reference to their inputs.
 *
 * Errors: the decoder returns HUB_E_PARSE for every protocol violation (the
 * connection must be closed, §4.8), HUB_E_TOO_LARGE for a packet over the
 * caller's limit, and HUB_MQTT_E_PROTOCOL_LEVEL (see below) for a CONNECT of
 * another MQTT version; err->msg always names the exact rule broken.
 * Encoders return HUB_E_TOO_LARGE when the buffer is short and
 * HUB_E_INVALID_ARG for arguments MQTT cannot carry (QoS 3, packet id 0, ...).
 */
#ifndef HUB_MQTT_H
#define HUB_MQTT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

/* ---- limits ------------------------------------------------------------- */

/* Largest remaining length 4 length bytes can express (§2.2.3). */
#define HUB_MQTT_REMAINING_MAX 268435455u
/* Largest whole packet: type byte + 4 length bytes + HUB_MQTT_REMAINING_MAX. */
#define HUB_MQTT_PACKET_MAX (1u + 4u + HUB_MQTT_REMAINING_MAX)
/* Largest CONNACK/PUBACK/UNSUBACK/PINGRESP: fixed header + 2 bytes. */
#define HUB_MQTT_SMALL_PACKET_MAX 4u
/* Topic filters per SUBSCRIBE / UNSUBSCRIBE that hubd decodes. Azure allows 5
 * subscriptions per device (reference §2) and the SDKs send one filter per
 * packet; 8 leaves room without making struct hub_mqtt_packet large. More is
 * refused (HUB_E_PARSE), not truncated, so no filter is silently ignored. */
#define HUB_MQTT_FILTERS_MAX 8

/* CONNECT for a protocol level other than 4 (MQTT 3.1 "MQIsdp" level 3, or
 * "MQTT" level 5): §3.1.2.2 says answer CONNACK 0x01 and close, so the caller
 * must tell it from plain malformation. */
#define HUB_MQTT_E_PROTOCOL_LEVEL HUB_E_PROTOCOL_VERSION

/* ---- packets ------------------------------------------------------------ */

enum hub_mqtt_type {
    HUB_MQTT_CONNECT = 1,
    HUB_MQTT_CONNACK = 2,
    HUB_MQTT_PUBLISH = 3,
    HUB_MQTT_PUBACK = 4,
    HUB_MQTT_PUBREC = 5,
    HUB_MQTT_PUBREL = 6,
    HUB_MQTT_PUBCOMP = 7,
    HUB_MQTT_SUBSCRIBE = 8,
    HUB_MQTT_SUBACK = 9,
    HUB_MQTT_UNSUBSCRIBE = 10,
    HUB_MQTT_UNSUBACK = 11,
    HUB_MQTT_PINGREQ = 12,
    HUB_MQTT_PINGRESP = 13,
    HUB_MQTT_DISCONNECT = 14,
};

/* "PUBLISH", ...; "RESERVED" for 0, 15 and out-of-range values. Static. */
const char *hub_mqtt_type_name(int type);

/* CONNACK return codes (§3.2.2.3). */
enum hub_mqtt_connack_code {
    HUB_MQTT_CONNACK_ACCEPTED = 0,
    HUB_MQTT_CONNACK_BAD_PROTOCOL_LEVEL = 1,
    HUB_MQTT_CONNACK_IDENTIFIER_REJECTED = 2,
    HUB_MQTT_CONNACK_SERVER_UNAVAILABLE = 3,
    HUB_MQTT_CONNACK_BAD_USERNAME_OR_PASSWORD = 4,
    HUB_MQTT_CONNACK_NOT_AUTHORIZED = 5,
};

/* SUBACK return code for a refused filter (§3.9.3). */
#define HUB_MQTT_SUBACK_FAILURE 0x80u

/* A view of validated UTF-8 text inside the decoder's input (not terminated). */
struct hub_mqtt_str {
    const char *ptr;
    size_t len;
};

/* A view of raw bytes inside the decoder's input. */
struct hub_mqtt_bytes {
    const uint8_t *ptr;
    size_t len;
};

struct hub_mqtt_connect {
    uint8_t protocol_level; /* always 4 on success */
    bool clean_session;
    uint16_t keep_alive_s; /* 0 = no keep-alive (§3.1.2.10) */
    /* May be empty (§3.1.3.1); whether an empty id is acceptable (it needs
     * clean_session, CONNACK 2 otherwise) is the caller's decision. */
    struct hub_mqtt_str client_id;
    bool has_will;
    uint8_t will_qos;                   /* 0..2; 0 when !has_will */
    bool will_retain;                   /* false when !has_will */
    struct hub_mqtt_str will_topic;     /* a topic name: no wildcards */
    struct hub_mqtt_bytes will_payload; /* binary, may be empty */
    bool has_username;
    struct hub_mqtt_str username;
    /* Absent (not empty) for X.509 devices (reference §1). */
    bool has_password;
    struct hub_mqtt_bytes password; /* binary data (§3.1.3.5) */
};

/* Decoded from clients and the input of hub_mqtt_publish_encode. */
struct hub_mqtt_publish {
    bool dup;
    uint8_t qos; /* 0, 1 or 2; QoS 2 is decoded so the caller can refuse it */
    bool retain;
    struct hub_mqtt_str topic; /* non-empty, no '+' or '#' (§4.7.3, §3.3.2.1) */
    uint16_t packet_id;        /* non-zero iff qos > 0 (§2.3.1) */
    struct hub_mqtt_bytes payload;
};

struct hub_mqtt_subscribe {
    uint16_t packet_id; /* non-zero */
    size_t count;       /* 1..HUB_MQTT_FILTERS_MAX */
    struct {
        struct hub_mqtt_str filter; /* syntax-checked per §4.7.1 */
        uint8_t qos;                /* requested QoS, 0..2 */
    } filters[HUB_MQTT_FILTERS_MAX];
};

struct hub_mqtt_unsubscribe {
    uint16_t packet_id; /* non-zero */
    size_t count;       /* 1..HUB_MQTT_FILTERS_MAX */
    struct hub_mqtt_str filters[HUB_MQTT_FILTERS_MAX];
};

/* One decoded client->server packet. Only the member matching `type` is set. */
struct hub_mqtt_packet {
    enum hub_mqtt_type type;
    uint8_t flags;           /* low nibble of the first byte, as received */
    size_t remaining_length; /* of this packet */
    union {
        struct hub_mqtt_connect connect;
        struct hub_mqtt_publish publish;
        uint16_t packet_id; /* PUBACK, PUBREC, PUBREL, PUBCOMP: non-zero */
        struct hub_mqtt_subscribe subscribe;
        struct hub_mqtt_unsubscribe unsubscribe;
    } u; /* PINGREQ, DISCONNECT: nothing */
};

/* ---- decoding ----------------------------------------------------------- */

/*
 * Decodes the first packet of buf[0..len). Incremental: call it on whatever
 * bytes have arrived.
 *   > 0  bytes consumed: exactly one complete, valid packet is in *out (views
 *        into buf). Drop that many bytes from the front and call again: buf
 *        may already hold the next packet.
 *   0    need more: buf holds only part of a packet (possibly nothing). Keep
 *        the bytes, append what arrives next, call again with all of them.
 *        *out is unspecified.
 *   < 0  HUB_E_PARSE (malformed: close the connection),
 *        HUB_MQTT_E_PROTOCOL_LEVEL (CONNECT of another MQTT version: CONNACK 1
 *        then close), or HUB_E_TOO_LARGE: the whole packet (fixed header
 *        included) would exceed max_packet_bytes. TOO_LARGE is reported as
 *        soon as the length bytes are in, before any of the body is buffered,
 *        so a caller never needs more than max_packet_bytes of input buffer.
 *        err (may be NULL) says exactly what is wrong.
 * max_packet_bytes: the caller's limit (config `mqtt_max_packet_bytes`); 0 or
 * anything above HUB_MQTT_PACKET_MAX means the protocol maximum.
 * Connection-state rules (CONNECT first and once, keep-alive, QoS 2 refusal,
 * topic meaning) are the caller's; this function checks one packet.
 */
int hub_mqtt_decode(const uint8_t *buf, size_t len, size_t max_packet_bytes,
                    struct hub_mqtt_packet *out, struct hub_err *err);

/* 0 if s[0..len) is a valid MQTT string body (§1.5.3: well-formed UTF-8, no
 * U+0000, no surrogates, no overlong forms, nothing above U+10FFFF);
 * HUB_E_PARSE naming the offset otherwise. `what` names the field for the
 * message ("PUBLISH topic"). Exposed for `iothub`, which checks decoded
 * property values with the same rules. */
int hub_mqtt_utf8_validate(const uint8_t *s, size_t len, const char *what, struct hub_err *err);

/* 0 if f[0..len) is a valid topic filter (§4.7.1: non-empty; '#' only as the
 * whole last level; '+' only as a whole level); HUB_E_PARSE otherwise. Does
 * not re-check UTF-8. */
int hub_mqtt_filter_validate(const char *f, size_t len, struct hub_err *err);

/* ---- encoding (server -> client) ---------------------------------------- */
/* Every encoder writes into buf[0..cap) and returns the bytes written (> 0),
 * HUB_E_TOO_LARGE if cap is short (buf is then unspecified), or
 * HUB_E_INVALID_ARG. */

/* CONNACK (§3.2): 4 bytes. session_present must be false unless
 * return_code is 0 (§3.2.2.2); return_code 0..5. */
int hub_mqtt_connack_encode(uint8_t *buf, size_t cap, bool session_present, uint8_t return_code,
                            struct hub_err *err);

/* Exact size of the PUBLISH hub_mqtt_publish_encode would write, or 0 if MQTT
 * cannot carry it (topic over 65,535 bytes, remaining length over
 * HUB_MQTT_REMAINING_MAX). Lets callers allocate exactly. */
size_t hub_mqtt_publish_size(size_t topic_len, size_t payload_len, uint8_t qos);

/* PUBLISH (§3.3) from *pub: qos <= 2, packet_id != 0 iff qos > 0, dup only
 * with qos > 0, topic non-empty without wildcards and valid UTF-8. Returns
 * bytes written (== hub_mqtt_publish_size). */
int hub_mqtt_publish_encode(uint8_t *buf, size_t cap, const struct hub_mqtt_publish *pub,
                            struct hub_err *err);

/* PUBACK (§3.4): 4 bytes; packet_id != 0. */
int hub_mqtt_puback_encode(uint8_t *buf, size_t cap, uint16_t packet_id, struct hub_err *err);

/* Exact SUBACK size for n codes (n >= 1). */
size_t hub_mqtt_suback_size(size_t n);

/* SUBACK (§3.9): one code per filter of the SUBSCRIBE, in order; each 0, 1,
 * 2 (granted QoS) or HUB_MQTT_SUBACK_FAILURE; 1 <= n <= HUB_MQTT_FILTERS_MAX. */
int hub_mqtt_suback_encode(uint8_t *buf, size_t cap, uint16_t packet_id, const uint8_t *codes,
                           size_t n, struct hub_err *err);

/* UNSUBACK (§3.11): 4 bytes; packet_id != 0. */
int hub_mqtt_unsuback_encode(uint8_t *buf, size_t cap, uint16_t packet_id, struct hub_err *err);

/* PINGRESP (§3.13): 2 bytes. */
int hub_mqtt_pingresp_encode(uint8_t *buf, size_t cap, struct hub_err *err);

#endif
