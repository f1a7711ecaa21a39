/*
 * libFuzzer target: a device's MQTT byte stream through hub_mqtt_decode,
 * exactly as the connection loop in `net` feeds it (append what arrived,
 * decode every complete packet, keep the rest).
 *
 * The input is the raw stream (the corpus holds plain packets, see
 * corpus/). It is decoded four ways: in one piece, one byte at a time, in
 * 7-byte chunks, and in chunks whose sizes come from a hash of the input, so
 * the fuzzer's mutations also move the split points. Checked on every run:
 *   - all four see the same sequence of results (bytes consumed, packet
 *     type, and for an error the same code and message): a decoder that
 *     answers differently depending on where TCP split the bytes is a bug;
 *   - a 4 KiB input buffer always suffices with a 4 KiB packet limit (the
 *     limit is enforced from the header alone);
 *   - every view of a decoded packet lies inside that packet's bytes;
 *   - a decoded PUBLISH re-encodes to a packet that decodes to the same
 *     fields (hub_mqtt_publish_size agrees with what the encoder writes).
 * A violated check calls abort() so libFuzzer saves the input.
 *
 * Not part of the CMake build (`make fuzz` builds and runs it). By hand:
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Isrc fuzz/mqtt_stream/target.c \
 *       src/mqtt/mqtt_decode.c src/mqtt/mqtt_encode.c src/common/err.c -o /tmp/fuzz_mqtt_stream
 *   /tmp/fuzz_mqtt_stream -dict=fuzz/mqtt_stream/mqtt.dict fuzz/mqtt_stream/corpus
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mqtt/mqtt.h"

#define MAX_PACKET  4096
#define MAX_RESULTS 512

struct result {
    int rc;
    int type;
    char msg[HUB_ERR_MSG_MAX];
};

struct run {
    struct result res[MAX_RESULTS];
    size_t n;
};

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

static void check_in(const void *ptr, size_t len, const uint8_t *base, size_t size)
{
    if (len == 0)
        return;
    const uint8_t *p = ptr;
    CHECK(p >= base && p + len <= base + size);
}

static void check_packet(const struct hub_mqtt_packet *p, const uint8_t *base, size_t size)
{
    static uint8_t out[MAX_PACKET + 8];
    switch (p->type) {
    case HUB_MQTT_CONNECT: {
        const struct hub_mqtt_connect *c = &p->u.connect;
        CHECK(c->protocol_level == 4);
        check_in(c->client_id.ptr, c->client_id.len, base, size);
        check_in(c->will_topic.ptr, c->will_topic.len, base, size);
        check_in(c->will_payload.ptr, c->will_payload.len, base, size);
        check_in(c->username.ptr, c->username.len, base, size);
        check_in(c->password.ptr, c->password.len, base, size);
        CHECK(c->has_username || !c->has_password);
        break;
    }
    case HUB_MQTT_PUBLISH: {
        const struct hub_mqtt_publish *m = &p->u.publish;
        check_in(m->topic.ptr, m->topic.len, base, size);
        check_in(m->payload.ptr, m->payload.len, base, size);
        CHECK(m->qos <= 2 && (m->qos == 0) == (m->packet_id == 0));
        size_t want = hub_mqtt_publish_size(m->topic.len, m->payload.len, m->qos);
        CHECK(want > 0 && want <= sizeof(out));
        struct hub_err err;
        int n = hub_mqtt_publish_encode(out, sizeof(out), m, &err);
        CHECK(n > 0 && (size_t)n == want);
        struct hub_mqtt_packet back;
        CHECK(hub_mqtt_decode(out, (size_t)n, 0, &back, &err) == n);
        CHECK(back.type == HUB_MQTT_PUBLISH);
        CHECK(back.u.publish.qos == m->qos && back.u.publish.dup == m->dup &&
              back.u.publish.retain == m->retain && back.u.publish.packet_id == m->packet_id);
        CHECK(back.u.publish.topic.len == m->topic.len &&
              memcmp(back.u.publish.topic.ptr, m->topic.ptr, m->topic.len) == 0);
        CHECK(back.u.publish.payload.len == m->payload.len &&
              (m->payload.len == 0 ||
               memcmp(back.u.publish.payload.ptr, m->payload.ptr, m->payload.len) == 0));
        break;
    }
    case HUB_MQTT_SUBSCRIBE:
        CHECK(p->u.subscribe.count >= 1 && p->u.subscribe.count <= HUB_MQTT_FILTERS_MAX);
        for (size_t i = 0; i < p->u.subscribe.count; i++) {
            check_in(p->u.subscribe.filters[i].filter.ptr, p->u.subscribe.filters[i].filter.len,
                     base, size);
            CHECK(p->u.subscribe.filters[i].qos <= 2);
        }
        break;
    case HUB_MQTT_UNSUBSCRIBE:
        CHECK(p->u.unsubscribe.count >= 1 && p->u.unsubscribe.count <= HUB_MQTT_FILTERS_MAX);
        for (size_t i = 0; i < p->u.unsubscribe.count; i++)
            check_in(p->u.unsubscribe.filters[i].ptr, p->u.unsubscribe.filters[i].len, base, size);
        break;
    case HUB_MQTT_PUBACK:
    case HUB_MQTT_PUBREC:
    case HUB_MQTT_PUBREL:
    case HUB_MQTT_PUBCOMP:
        CHECK(p->u.packet_id != 0);
        break;
    case HUB_MQTT_PINGREQ:
    case HUB_MQTT_DISCONNECT:
        CHECK(p->remaining_length == 0);
        break;
    default:
        abort(); /* server-only and reserved types must never decode */
    }
}

static void record(struct run *r, int rc, const struct hub_mqtt_packet *p, const struct hub_err *e)
{
    if (r->n == MAX_RESULTS)
        return;
    struct result *res = &r->res[r->n++];
    res->rc = rc;
    res->type = rc > 0 ? (int)p->type : 0;
    if (rc < 0)
        memcpy(res->msg, e->msg, sizeof(res->msg));
    else
        res->msg[0] = '\0';
}

static size_t next_chunk(int mode, uint32_t *state)
{
    switch (mode) {
    case 0:
        return SIZE_MAX; /* everything at once */
    case 1:
        return 1;
    case 2:
        return 7;
    default:
        *state = *state * 1103515245u + 12345u;
        return 1 + (*state >> 16) % 61;
    }
}

/* Feeds data through a MAX_PACKET input buffer in chunks; records every
 * packet, then the final "need more" or error. */
static void run_stream(const uint8_t *data, size_t len, int mode, uint32_t seed, struct run *r)
{
    static uint8_t inbuf[MAX_PACKET];
    size_t have = 0, fed = 0;
    uint32_t state = seed;
    r->n = 0;
    for (;;) {
        size_t chunk = next_chunk(mode, &state);
        if (chunk > len - fed)
            chunk = len - fed;
        if (chunk > sizeof(inbuf) - have)
            chunk = sizeof(inbuf) - have;
        memcpy(inbuf + have, data + fed, chunk);
        have += chunk;
        fed += chunk;
        for (;;) {
            struct hub_mqtt_packet p;
            struct hub_err err;
            hub_err_clear(&err);
            int rc = hub_mqtt_decode(inbuf, have, MAX_PACKET, &p, &err);
            if (rc < 0) {
                CHECK(err.code == rc);
                record(r, rc, &p, &err);
                return;
            }
            if (rc == 0) {
                /* a full buffer that is still "need more" would stall the
                 * connection forever */
                CHECK(have < sizeof(inbuf));
                break;
            }
            CHECK((size_t)rc <= have);
            check_packet(&p, inbuf, (size_t)rc);
            record(r, rc, &p, &err);
            memmove(inbuf, inbuf + rc, have - (size_t)rc);
            have -= (size_t)rc;
        }
        if (fed == len) {
            struct hub_err none;
            hub_err_clear(&none);
            record(r, 0, NULL, &none);
            return;
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct run runs[4];
    uint32_t hash = 2166136261u; /* FNV-1a: split points follow the input */
    for (size_t i = 0; i < size; i++)
        hash = (hash ^ data[i]) * 16777619u;
    for (int mode = 0; mode < 4; mode++)
        run_stream(data, size, mode, hash, &runs[mode]);
    for (int mode = 1; mode < 4; mode++) {
        CHECK(runs[mode].n == runs[0].n);
        for (size_t i = 0; i < runs[0].n; i++) {
            const struct result *a = &runs[0].res[i], *b = &runs[mode].res[i];
            CHECK(a->rc == b->rc && a->type == b->type);
            CHECK(strcmp(a->msg, b->msg) == 0);
        }
    }
    return 0;
}
