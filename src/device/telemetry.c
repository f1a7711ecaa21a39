/*
 * device: device-to-cloud telemetry (reference §2 "Device-to-cloud").
 *
 * A PUBLISH to the device's own events topic becomes one struct
 * hub_telemetry_msg: the bag's system properties in their columns, the hub's
 * own (connectionDeviceId, connectionAuthMethod, iothub-MessageType for a
 * Will), application properties in bag order, and x-opt-retain=true for
 * RETAIN=1. The msg layer copies it, so everything here points into the
 * packet and the worker's property scratch.
 *
 * QoS 1 PUBACK waits for on_durable (committer thread), which posts to the
 * connection's worker holding a reference; a connection closed meanwhile
 * just drops it. QoS 0 is appended the same way without an ack, so both
 * count against the in-flight bound that pauses reading.
 */
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "device/device_int.h"
#include "msg/msg.h"

struct durable_job {
    struct hub_device_conn *conn; /* referenced */
    uint16_t packet_id;           /* 0: QoS 0, no PUBACK */
    int status;
};

const char *hub_device_auth_method_json(enum hub_device_auth_method m)
{
    switch (m) {
    case HUB_DEVICE_AUTH_SAS:
        return "{\"scope\":\"device\",\"type\":\"sas\",\"issuer\":\"iothub\","
               "\"acceptingIpFilterRule\":null}";
    case HUB_DEVICE_AUTH_SELF_SIGNED:
        return "{\"scope\":\"device\",\"type\":\"x509Certificate\",\"issuer\":\"iothub\","
               "\"acceptingIpFilterRule\":null}";
    case HUB_DEVICE_AUTH_X509_CA:
        return "{\"scope\":\"device\",\"type\":\"x509Certificate\",\"issuer\":\"external\","
               "\"acceptingIpFilterRule\":null}";
    case HUB_DEVICE_AUTH_NONE:
        break;
    }
    return NULL;
}

/* Bag system property -> store column; -1: kept as an application property. */
static int sys_column(enum hub_iothub_sys s)
{
    switch (s) {
    case HUB_IOTHUB_SYS_MID:
        return HUB_SYSPROP_MESSAGE_ID;
    case HUB_IOTHUB_SYS_CID:
        return HUB_SYSPROP_CORRELATION_ID;
    case HUB_IOTHUB_SYS_UID:
        return HUB_SYSPROP_USER_ID;
    case HUB_IOTHUB_SYS_TO:
        return HUB_SYSPROP_TO;
    case HUB_IOTHUB_SYS_CT:
        return HUB_SYSPROP_CONTENT_TYPE;
    case HUB_IOTHUB_SYS_CE:
        return HUB_SYSPROP_CONTENT_ENCODING;
    case HUB_IOTHUB_SYS_EXP:
        return HUB_SYSPROP_EXPIRY;
    case HUB_IOTHUB_SYS_IFID:
        return HUB_SYSPROP_INTERFACE_ID;
    case HUB_IOTHUB_SYS_ON:
        return HUB_SYSPROP_OUTPUT_NAME;
    case HUB_IOTHUB_SYS_SUB:
        return HUB_SYSPROP_COMPONENT;
    case HUB_IOTHUB_SYS_CTIME:
        return HUB_SYSPROP_CREATION_TIME;
    default:
        return -1;
    }
}

#define APP_MAX (HUB_IOTHUB_APP_PROPS_MAX + HUB_IOTHUB_SYS__COUNT + 1)

/* Fills msg (pointing into props, app[APP_MAX] and the payload). */
static void build_msg(struct hub_device_conn *c, const struct hub_iothub_props *props,
                      const uint8_t *body, size_t body_len, bool retain, bool will,
                      struct hub_telemetry_msg *msg, struct hub_app_prop *app)
{
    memset(msg, 0, sizeof(*msg));
    memcpy(msg->device_id, c->device_id, sizeof(msg->device_id));
    msg->enqueued_ms = 0; /* the log stamps it */
    msg->body = body;
    msg->body_len = body_len;
    size_t n = 0;
    for (int s = 0; s < HUB_IOTHUB_SYS__COUNT; s++) {
        const struct hub_iothub_prop *p = &props->sys[s];
        if (p->key == NULL)
            continue;
        int col = sys_column((enum hub_iothub_sys)s);
        if (col >= 0) {
            msg->sys[col] = p->value; /* a null value is simply absent */
        } else {
            app[n].key = p->key;
            app[n].value = p->value;
            n++;
        }
    }
    for (size_t i = 0; i < props->app_count; i++) {
        app[n].key = props->app[i].key;
        app[n].value = props->app[i].value;
        n++;
    }
    if (retain) { /* IoT Hub does not retain; it marks the message instead */
        app[n].key = HUB_DEVICE_RETAIN_PROPERTY;
        app[n].value = "true";
        n++;
    }
    msg->sys[HUB_SYSPROP_CONN_DEVICE_ID] = c->device_id;
    msg->sys[HUB_SYSPROP_CONN_AUTH_METHOD] = hub_device_auth_method_json(c->method);
    if (will)
        msg->sys[HUB_SYSPROP_MESSAGE_TYPE] = "Will";
    msg->app = app;
    msg->app_count = n;
}

static void on_durable_worker(void *arg)
{
    struct durable_job *job = arg;
    struct hub_device_conn *c = job->conn;
    if (c->inflight > 0)
        c->inflight--;
    if (c->state == HUB_DEVICE_CONN_LIVE) {
        if (job->status != 0) {
            char detail[128];
            snprintf(detail, sizeof(detail), "telemetry log: %s; no PUBACK sent",
                     hub_err_name(job->status));
            hub_device__conn_close(c, HUB_DEVICE_R_COMMIT_FAILED, detail);
        } else {
            if (job->packet_id != 0) {
                uint8_t buf[HUB_MQTT_SMALL_PACKET_MAX];
                int n = hub_mqtt_puback_encode(buf, sizeof(buf), job->packet_id, NULL);
                if (n > 0)
                    hub_device__conn_write(c, buf, (size_t)n);
            }
            hub_device__conn_resume_reading(c);
        }
    }
    hub_device__conn_unref(c);
    free(job);
}

/* Committer thread: hand off only. */
static void on_durable(void *arg, int status, int64_t seq)
{
    (void)seq;
    struct durable_job *job = arg;
    job->status = status;
    struct hub_device_conn *c = job->conn;
    if (hub_device__post(c->ep, c->worker_index, on_durable_worker, job) != 0) {
        hub_device__conn_unref(c); /* the worker is gone: nothing to ack */
        free(job);
    }
}

int hub_device__telemetry_publish(struct hub_device_conn *c, const struct hub_mqtt_publish *pub,
                                  const struct hub_iothub_topic *topic)
{
    struct hub_device_endpoint *ep = c->ep;
    struct hub_iothub_props *props = &c->server->props;
    struct hub_err err = {0};
    if (hub_iothub_props_parse(topic->bag.ptr, topic->bag.len, props, &err) != 0) {
        hub_device__conn_close(c, HUB_DEVICE_R_PROPERTIES_MALFORMED, err.msg);
        return -1;
    }
    if (ep->env.telemetry == NULL) {
        hub_device__conn_close(c, HUB_DEVICE_R_INTERNAL, "no telemetry log configured");
        return -1;
    }
    struct hub_telemetry_msg msg;
    struct hub_app_prop app[APP_MAX];
    build_msg(c, props, pub->payload.ptr, pub->payload.len, pub->retain, false, &msg, app);

    struct durable_job *job = malloc(sizeof(*job));
    if (job == NULL) {
        hub_device__conn_close(c, HUB_DEVICE_R_INTERNAL, "out of memory");
        return -1;
    }
    job->conn = c;
    job->packet_id = pub->qos == 1 ? pub->packet_id : 0;
    job->status = 0;
    hub_device__conn_ref(c);
    c->inflight++; /* before append: on_durable may run before it returns */
    int rc = hub_msg_telemetry_append(ep->env.telemetry, &msg, on_durable, job, &err);
    if (rc != 0) {
        c->inflight--;
        hub_device__conn_unref(c);
        free(job);
        if (rc == HUB_E_BUSY)
            return 1; /* back-pressure: retry the same packet shortly */
        hub_device__conn_close(
            c, rc == HUB_E_NOMEM ? HUB_DEVICE_R_INTERNAL : HUB_DEVICE_R_PROPERTIES_MALFORMED,
            err.msg);
        return -1;
    }
    if (c->inflight >= ep->env.max_inflight_telemetry)
        hub_device__conn_pause_reading(c);
    return 0;
}

void hub_device__telemetry_will(struct hub_device_conn *c)
{
    struct hub_device_endpoint *ep = c->ep;
    struct hub_iothub_topic topic;
    struct hub_err err = {0};
    size_t tlen = strlen(c->will_topic);
    bool ok = ep->env.telemetry != NULL && c->server != NULL &&
              hub_iothub_topic_classify(c->will_topic, tlen, &topic, &err) == 0 &&
              topic.kind == HUB_IOTHUB_TOPIC_TELEMETRY &&
              hub_iothub_topic_owner_check(&topic, c->device_id, NULL, &err) == 0 &&
              hub_iothub_props_parse(topic.bag.ptr, topic.bag.len, &c->server->props, &err) == 0;
    struct hub_log_line line;
    if (!ok) {
        hub_log_begin(&line, HUB_LOG_INFO, "will_dropped");
        hub_log_str(&line, "device", c->device_id);
        hub_log_mem(&line, "topic", c->will_topic, tlen);
        hub_log_str(&line, "detail",
                    err.msg[0] ? err.msg : "Will topic is not the device's telemetry topic");
        hub_log_end(&line);
        return;
    }
    struct hub_telemetry_msg msg;
    struct hub_app_prop app[APP_MAX];
    build_msg(c, &c->server->props, c->will_payload, c->will_payload_len, c->will_retain, true,
              &msg, app);
    /* Fire and forget: the connection is gone, nobody waits for an ack. */
    if (hub_msg_telemetry_append(ep->env.telemetry, &msg, NULL, NULL, &err) != 0) {
        hub_log_begin(&line, HUB_LOG_WARN, "will_dropped");
        hub_log_str(&line, "device", c->device_id);
        hub_log_err(&line, &err);
        hub_log_end(&line);
        return;
    }
    hub_log_kv(HUB_LOG_INFO, "will_published", "device", c->device_id, NULL);
}
