/*
 * device: cloud-to-device delivery over MQTT (reference §2 "Cloud-to-device").
 *
 * While the device is subscribed to devices/{id}/messages/devicebound/#, up
 * to env.c2d_window messages are in flight: each is taken from the msg
 * layer's queue (locked with a token), published at QoS 1 on
 * devices/{id}/messages/devicebound/{bag}, and completed when the device
 * PUBACKs it; then the next one goes. An unacknowledged message stays
 * queued: the next connection releases the locks (hub_msg_c2d_release) and
 * gets it again. A QoS 0 subscription is delivered at most once: completed
 * as soon as it is written.
 *
 * The msg calls are synchronous store calls on the worker thread, made once
 * per message; the window bounds how many a connection makes per turn.
 */
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "device/device_int.h"
#include "msg/msg.h"

static void log_c2d_error(const struct hub_device_conn *c, const char *event,
                          const struct hub_err *err)
{
    struct hub_log_line line;
    hub_log_begin(&line, HUB_LOG_WARN, event);
    hub_log_str(&line, "device", c->device_id);
    hub_log_err(&line, err);
    hub_log_end(&line);
}

static uint16_t next_packet_id(struct hub_device_conn *c)
{
    for (;;) {
        uint16_t id = ++c->next_packet_id;
        if (id == 0)
            continue;
        bool used = false;
        for (size_t i = 0; i < c->c2d_count; i++)
            used |= c->c2d[i].packet_id == id;
        if (!used)
            return id;
    }
}

static void iso_ms(int64_t ms, char out[32])
{
    char base[HUB_TIME_ISO_LEN];
    hub_time_iso8601((time_t)(ms / 1000), base); /* "YYYY-MM-DDTHH:MM:SSZ" */
    size_t n = strlen(base);
    if (n > 0 && base[n - 1] == 'Z')
        base[n - 1] = '\0';
    snprintf(out, 32, "%s.%03dZ", base, (int)(ms % 1000));
}

static void add_prop(struct hub_iothub_prop *props, size_t *n, const char *key, const char *value)
{
    if (value == NULL)
        return;
    props[*n].key = key;
    props[*n].key_len = strlen(key);
    props[*n].value = value;
    props[*n].value_len = strlen(value);
    (*n)++;
}

/* Encodes and writes m as a PUBLISH. 0, or a HUB_E_* with err filled. */
static int send_message(struct hub_device_conn *c, const struct hub_c2d_msg *m, uint16_t packet_id,
                        struct hub_err *err)
{
    size_t cap = 9 + m->app_count;
    struct hub_iothub_prop *props = calloc(cap, sizeof(*props));
    if (props == NULL)
        return HUB_ERR(err, HUB_E_NOMEM, "out of memory");
    char to_default[HUB_DEVICE_ID_SIZE + 64];
    snprintf(to_default, sizeof(to_default), "/devices/%s/messages/deviceBound", c->device_id);
    char exp[32];
    iso_ms(m->expiry_ms, exp);
    size_t n = 0;
    add_prop(props, &n, "$.mid", m->sys[HUB_SYSPROP_MESSAGE_ID]);
    add_prop(props, &n, "$.to", m->sys[HUB_SYSPROP_TO] ? m->sys[HUB_SYSPROP_TO] : to_default);
    add_prop(props, &n, "$.exp", m->expiry_ms > 0 ? exp : NULL);
    add_prop(props, &n, "$.cid", m->sys[HUB_SYSPROP_CORRELATION_ID]);
    add_prop(props, &n, "$.uid", m->sys[HUB_SYSPROP_USER_ID]);
    add_prop(props, &n, "$.ct", m->sys[HUB_SYSPROP_CONTENT_TYPE]);
    add_prop(props, &n, "$.ce", m->sys[HUB_SYSPROP_CONTENT_ENCODING]);
    if (m->ack != HUB_C2D_ACK_NONE)
        add_prop(props, &n, "iothub-ack", hub_c2d_ack_name(m->ack));
    for (size_t i = 0; i < m->app_count; i++) {
        props[n].key = m->app[i].key;
        props[n].key_len = strlen(m->app[i].key);
        props[n].value = m->app[i].value;
        props[n].value_len = m->app[i].value ? strlen(m->app[i].value) : 0;
        n++;
    }
    int rc = 0;
    char *topic = NULL;
    uint8_t *pkt = NULL;
    size_t tlen = hub_iothub_c2d_topic_len(c->device_id, props, n);
    topic = malloc(tlen + 1);
    if (topic == NULL) {
        rc = HUB_ERR(err, HUB_E_NOMEM, "out of memory");
        goto free_props;
    }
    if ((rc = hub_iothub_c2d_topic_build(topic, tlen + 1, c->device_id, props, n, err)) < 0)
        goto free_topic;
    uint8_t qos = c->c2d_qos0 ? 0 : 1;
    size_t size = hub_mqtt_publish_size((size_t)rc, m->body_len, qos);
    if (size == 0) {
        rc = HUB_ERR(err, HUB_E_TOO_LARGE, "C2D message does not fit an MQTT PUBLISH");
        goto free_topic;
    }
    pkt = malloc(size);
    if (pkt == NULL) {
        rc = HUB_ERR(err, HUB_E_NOMEM, "out of memory");
        goto free_topic;
    }
    struct hub_mqtt_publish pub = {
        .qos = qos,
        .topic = {.ptr = topic, .len = (size_t)rc},
        .packet_id = qos ? packet_id : 0,
        .payload = {.ptr = m->body, .len = m->body_len},
    };
    rc = hub_mqtt_publish_encode(pkt, size, &pub, err);
    if (rc > 0)
        rc = hub_device__conn_write(c, pkt, (size_t)rc) == 0
                 ? 0
                 : HUB_ERR(err, HUB_E_IO, "connection is closing");
    free(pkt);
free_topic:
    free(topic);
free_props:
    free(props);
    return rc < 0 ? rc : 0;
}

void hub_device__c2d_pump(struct hub_device_conn *c)
{
    struct hub_device_endpoint *ep = c->ep;
    if (c->state != HUB_DEVICE_CONN_LIVE || !c->c2d_subscribed || ep->env.c2d == NULL)
        return;
    struct hub_err err = {0};
    if (!c->c2d_released) {
        /* What a previous connection had in flight died with it. */
        c->c2d_released = true;
        if (hub_msg_c2d_release(ep->env.c2d, c->device_id, NULL, &err) != 0)
            log_c2d_error(c, "c2d_release_failed", &err);
    }
    while (c->c2d_count < ep->env.c2d_window && c->state == HUB_DEVICE_CONN_LIVE) {
        struct hub_c2d_msg m;
        memset(&m, 0, sizeof(m));
        int rc = hub_msg_c2d_deliver(ep->env.c2d, c->device_id, HUB_DEVICE_C2D_LOCK_MS, &m, &err);
        if (rc == HUB_E_NOT_FOUND)
            return;
        if (rc != 0) {
            /* Keep the connection; the next notify or PUBACK tries again. */
            log_c2d_error(c, "c2d_deliver_failed", &err);
            return;
        }
        uint16_t pid = next_packet_id(c);
        rc = send_message(c, &m, pid, &err);
        if (rc != 0) {
            /* A message no PUBLISH can carry would block the queue forever. */
            log_c2d_error(c, "c2d_undeliverable", &err);
            if (rc != HUB_E_NOMEM && rc != HUB_E_IO)
                hub_msg_c2d_settle(ep->env.c2d, c->device_id, m.lock_token, HUB_C2D_REJECT, NULL);
            hub_c2d_msg_clear(&m);
            return;
        }
        hub_log_kv(HUB_LOG_DEBUG, "c2d_sent", "device", c->device_id, "message_id",
                   m.sys[HUB_SYSPROP_MESSAGE_ID], NULL);
        if (c->c2d_qos0) {
            if (hub_msg_c2d_settle(ep->env.c2d, c->device_id, m.lock_token, HUB_C2D_COMPLETE,
                                   &err) != 0)
                log_c2d_error(c, "c2d_complete_failed", &err);
        } else {
            struct hub_device_c2d_slot *slot = &c->c2d[c->c2d_count++];
            slot->packet_id = pid;
            memcpy(slot->lock_token, m.lock_token, sizeof(slot->lock_token));
        }
        hub_c2d_msg_clear(&m);
    }
}

int hub_device__c2d_puback(struct hub_device_conn *c, uint16_t packet_id)
{
    for (size_t i = 0; i < c->c2d_count; i++) {
        if (c->c2d[i].packet_id != packet_id)
            continue;
        struct hub_err err = {0};
        if (c->ep->env.c2d != NULL &&
            hub_msg_c2d_settle(c->ep->env.c2d, c->device_id, c->c2d[i].lock_token, HUB_C2D_COMPLETE,
                               &err) != 0)
            log_c2d_error(c, "c2d_complete_failed", &err);
        c->c2d[i] = c->c2d[--c->c2d_count];
        hub_device__c2d_pump(c);
        return 0;
    }
    return -1; /* an ack for nothing we sent: harmless, ignored */
}
