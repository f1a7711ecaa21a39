/*
 * Messaging endpoints of the service API:
 *   POST   /devices/{id}/messages/deviceBound        queue a C2D message (serviceConnect)
 *   DELETE /devices/{id}/commands                    purge the device's C2D queue (serviceConnect)
 *   GET    /messages/serviceBound/feedback           lock a batch of delivery feedback
 *   DELETE /messages/serviceBound/feedback/{lock}    complete it
 *   POST   /messages/serviceBound/feedback/{lock}/abandon
 *   GET    /messages/events?from=&limit=&wait=&deviceId=   read telemetry (long poll)
 *
 * C2D headers are the names Azure's HTTP transport uses (reference §3):
 * IoTHub-MessageId, IoTHub-CorrelationId, IoTHub-UserId, IoTHub-To,
 * IoTHub-Expiry (ISO-8601 UTC), IoTHub-Ack, iothub-contenttype,
 * iothub-contentencoding, iothub-app-{name}.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "auth/auth.h"
#include "common/log.h"
#include "common/util.h"
#include "http/http_int.h"
#include "http/json_map.h"
#include "msg/msg.h"

#define APP_PREFIX           "iothub-app-"
#define MAX_APP_PROPS        64
#define EVENTS_LIMIT_DEFAULT 100
#define EVENTS_LIMIT_MAX     1000
#define POLL_INTERVAL_MS     100

/* ---- C2D send ------------------------------------------------------------ */

static void c2d_send(struct hub_http_request *r, const char *device_id)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(r->req);
    size_t len = evbuffer_get_length(in);
    if (len > HUB_C2D_BODY_MAX) {
        hub_http__reply_error(r, 413, "MessageTooLarge", "TOO_LARGE",
                              "a cloud-to-device message body is at most %d bytes, not %zu",
                              HUB_C2D_BODY_MAX, len);
        return;
    }
    struct hub_c2d_msg msg;
    memset(&msg, 0, sizeof(msg));
    snprintf(msg.device_id, sizeof(msg.device_id), "%s", device_id);
    msg.body = len > 0 ? evbuffer_pullup(in, -1) : NULL;
    msg.body_len = len;
    msg.enqueued_ms = r->env->now() * 1000;
    msg.sys[HUB_SYSPROP_MESSAGE_ID] = hub_http__header(r, "IoTHub-MessageId");
    msg.sys[HUB_SYSPROP_CORRELATION_ID] = hub_http__header(r, "IoTHub-CorrelationId");
    msg.sys[HUB_SYSPROP_USER_ID] = hub_http__header(r, "IoTHub-UserId");
    msg.sys[HUB_SYSPROP_CONTENT_TYPE] = hub_http__header(r, "iothub-contenttype");
    msg.sys[HUB_SYSPROP_CONTENT_ENCODING] = hub_http__header(r, "iothub-contentencoding");
    char to[HUB_DEVICE_ID_SIZE + 40];
    snprintf(to, sizeof(to), "/devices/%s/messages/deviceBound", device_id);
    const char *to_header = hub_http__header(r, "IoTHub-To");
    msg.sys[HUB_SYSPROP_TO] = to_header != NULL ? to_header : to;

    const char *expiry = hub_http__header(r, "IoTHub-Expiry");
    if (expiry != NULL) {
        msg.expiry_ms = hub_http__iso_ms_parse(expiry);
        if (msg.expiry_ms <= msg.enqueued_ms) {
            hub_http__reply_error(r, 400, "ArgumentInvalid", "BAD_EXPIRY",
                                  "IoTHub-Expiry must be a future UTC time like "
                                  "2026-01-01T00:00:00Z, not '%s'",
                                  expiry);
            return;
        }
        msg.sys[HUB_SYSPROP_EXPIRY] = expiry;
    }
    const char *ack = hub_http__header(r, "IoTHub-Ack");
    struct hub_err err = {0};
    if (ack != NULL && hub_c2d_ack_parse(ack, &msg.ack, &err) != 0) {
        hub_http__reply_error(r, 400, "ArgumentInvalid", "BAD_ACK",
                              "IoTHub-Ack must be none, positive, negative or full, not '%s'", ack);
        return;
    }

    struct hub_app_prop app[MAX_APP_PROPS];
    size_t napp = 0;
    struct evkeyvalq *headers = evhttp_request_get_input_headers(r->req);
    for (struct evkeyval *h = headers->tqh_first; h != NULL; h = h->next.tqe_next) {
        if (strncasecmp(h->key, APP_PREFIX, strlen(APP_PREFIX)) != 0)
            continue;
        if (napp == MAX_APP_PROPS) {
            hub_http__reply_error(r, 400, "ArgumentInvalid", "TOO_MANY_PROPERTIES",
                                  "at most %d iothub-app-* properties", MAX_APP_PROPS);
            return;
        }
        app[napp].key = h->key + strlen(APP_PREFIX);
        app[napp].value = h->value;
        napp++;
    }
    msg.app = app;
    msg.app_count = napp;

    int64_t seq = 0;
    char message_id[HUB_MESSAGE_ID_SIZE] = "";
    if (hub_msg_c2d_enqueue(r->env->c2d, &msg, &seq, message_id, &err) != 0) {
        if (err.code == HUB_E_LIMIT)
            hub_http__reply_error(r, 403, "DeviceMaximumQueueDepthExceeded", "QUEUE_FULL", "%s",
                                  err.msg);
        else
            hub_http__reply_hub_err(r, &err, "DeviceNotFound", "MessageExists");
        return;
    }
    hub_log_kv(HUB_LOG_INFO, "c2d_queued", "who", r->who, "peer", r->peer, "device", device_id,
               "message_id", message_id, NULL);
    if (r->env->c2d_enqueued != NULL)
        r->env->c2d_enqueued(r->env->c2d_enqueued_ctx, device_id);
    hub_http__reply_json(r, 200,
                         json_pack("{s:s, s:s, s:I}", "deviceId", device_id, "messageId",
                                   message_id, "sequenceNumber", (json_int_t)seq));
}

static void c2d_purge(struct hub_http_request *r, const char *device_id)
{
    size_t purged = 0;
    struct hub_err err = {0};
    if (hub_msg_c2d_purge(r->env->c2d, device_id, &purged, &err) != 0) {
        hub_http__reply_hub_err(r, &err, "DeviceNotFound", "DeviceAlreadyExists");
        return;
    }
    hub_log_kv(HUB_LOG_INFO, "c2d_purged", "who", r->who, "device", device_id, NULL);
    hub_http__reply_json(
        r, 200,
        json_pack("{s:I, s:s}", "totalMessagesPurged", (json_int_t)purged, "deviceId", device_id));
}

/* ---- feedback ---------------------------------------------------------------- */

static void feedback_receive(struct hub_http_request *r)
{
    struct hub_c2d_feedback_list *list = NULL;
    char lock[HUB_LOCK_TOKEN_SIZE] = "";
    struct hub_err err = {0};
    if (hub_msg_c2d_feedback_receive1(r->env->c2d, 100, &list, lock, &err) != 0) {
        hub_http__reply_hub_err(r, &err, "NotFound", "Exists");
        return;
    }
    if (list == NULL || list->count == 0) {
        hub_c2d_feedback_list_free(list);
        hub_http__reply_empty(r, 204);
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < list->count; i++) {
        const struct hub_c2d_feedback *f = &list->items[i];
        char when[HUB_TIME_ISO_LEN];
        hub_http__time_json(f->enqueued_ms / 1000, when);
        json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "originalMessageId",
                                             f->original_message_id, "description",
                                             hub_c2d_outcome_description(f->status),
                                             "deviceGenerationId", f->device_generation_id,
                                             "deviceId", f->device_id, "enqueuedTimeUtc", when,
                                             "statusCode", hub_c2d_outcome_name(f->status)));
    }
    hub_c2d_feedback_list_free(list);
    char quoted[HUB_LOCK_TOKEN_SIZE + 2];
    snprintf(quoted, sizeof(quoted), "\"%s\"", lock);
    evhttp_add_header(evhttp_request_get_output_headers(r->req), "ETag", quoted);
    hub_http__reply_json(r, 200, arr);
}

static void feedback_settle(struct hub_http_request *r, const char *lock, int complete)
{
    struct hub_err err = {0};
    if (hub_msg_c2d_feedback_settle(r->env->c2d, lock, complete, &err) != 0) {
        if (err.code == HUB_E_NOT_FOUND || err.code == HUB_E_ETAG_MISMATCH)
            hub_http__reply_error(r, 412, "DeviceMessageLockLost", "LOCK_LOST", "%s", err.msg);
        else
            hub_http__reply_hub_err(r, &err, "NotFound", "Exists");
        return;
    }
    hub_http__reply_empty(r, 204);
}

/* ---- telemetry read (long poll) ---------------------------------------------- */

struct hub_http_poll {
    struct hub_http_poll *next;
    struct hub_http_server *server;
    struct evhttp_request *req;
    struct event *timer;
    int64_t from;
    size_t limit;
    char device[HUB_DEVICE_ID_SIZE]; /* "" = every device */
    int64_t deadline_ms;
    int draining;
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static json_t *telemetry_json(const struct hub_telemetry_msg *m)
{
    char when[HUB_HTTP_ISO_MS_SIZE];
    hub_http__iso_ms_format(m->enqueued_ms, when);

    json_t *props = json_object();
    for (size_t i = 0; i < m->app_count; i++)
        json_object_set_new(props, m->app[i].key,
                            m->app[i].value != NULL ? json_string(m->app[i].value) : json_null());
    json_t *sys = json_object();
    for (int i = 0; i < HUB_SYSPROP__COUNT; i++)
        if (m->sys[i] != NULL)
            json_object_set_new(sys, hub_sysprop_name((enum hub_sysprop)i), json_string(m->sys[i]));

    /* Text when the body is UTF-8 (jansson refuses anything else), else base64. */
    json_t *body = json_stringn(m->body != NULL ? (const char *)m->body : "", m->body_len);
    const char *encoding = "utf-8";
    if (body == NULL) {
        char *b64 = malloc(hub_base64_encoded_len(m->body_len) + 1);
        if (b64 != NULL) {
            hub_base64_encode(m->body, m->body_len, b64);
            body = json_string(b64);
            free(b64);
        }
        encoding = "base64";
    }
    json_t *j = json_pack("{s:I, s:s, s:s, s:o, s:s, s:o, s:o}", "sequenceNumber",
                          (json_int_t)m->seq, "deviceId", m->device_id, "enqueuedTime", when,
                          "body", body != NULL ? body : json_null(), "bodyEncoding", encoding,
                          "properties", props, "systemProperties", sys);
    if (j != NULL && m->module_id[0] != '\0')
        json_object_set_new(j, "moduleId", json_string(m->module_id));
    return j;
}

/* Reads from the log; replies and returns 1 when there is something (or an
 * error, or forced); 0 when the poll should keep waiting. */
static int poll_try(struct hub_http_server *server, struct evhttp_request *req, int64_t from,
                    size_t limit, const char *device, int force)
{
    struct hub_http_request r;
    memset(&r, 0, sizeof(r));
    r.req = req;
    r.env = server->env;
    r.server = server;
    r.draining = server->draining;
    r.method_name = "GET";
    r.uri = evhttp_request_get_uri(req);
    snprintf(r.who, sizeof(r.who), "-");
    if (!force && hub_msg_telemetry_last_seq(server->env->telemetry) < from)
        return 0;
    struct hub_telemetry_msg_list *list = NULL;
    struct hub_err err = {0};
    if (hub_msg_telemetry_read1(server->env->telemetry, from, limit,
                                device[0] != '\0' ? device : NULL, &list, &err) != 0) {
        hub_http__reply_hub_err(&r, &err, "NotFound", "Exists");
        return 1;
    }
    if (list->count == 0 && !force) {
        hub_telemetry_msg_list_free(list);
        return 0;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < list->count; i++)
        json_array_append_new(arr, telemetry_json(&list->items[i]));
    hub_telemetry_msg_list_free(list);
    hub_http__reply_json(&r, 200, arr);
    return 1;
}

static void poll_unlink(struct hub_http_poll *p)
{
    struct hub_http_poll **pp = &p->server->polls;
    while (*pp != NULL && *pp != p)
        pp = &(*pp)->next;
    if (*pp == p)
        *pp = p->next;
}

static void poll_free(struct hub_http_poll *p)
{
    poll_unlink(p);
    struct evhttp_connection *evcon = evhttp_request_get_connection(p->req);
    if (evcon != NULL)
        evhttp_connection_set_closecb(evcon, NULL, NULL);
    event_free(p->timer);
    free(p);
}

static void on_poll_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct hub_http_poll *p = arg;
    int force = mono_ms() >= p->deadline_ms;
    if (poll_try(p->server, p->req, p->from, p->limit, p->device, force)) {
        poll_free(p);
        return;
    }
    struct timeval tv = {.tv_sec = 0, .tv_usec = POLL_INTERVAL_MS * 1000};
    evtimer_add(p->timer, &tv);
}

static void on_poll_conn_closed(struct evhttp_connection *evcon, void *arg)
{
    (void)evcon;
    struct hub_http_poll *p = arg;
    /* evhttp is freeing the connection (drain, or the client left while
     * evhttp watched it): the request goes with it, so forget it here. */
    poll_unlink(p);
    event_free(p->timer);
    free(p);
}

void hub_http__polls_flush(struct hub_http_server *server)
{
    while (server->polls != NULL) {
        struct hub_http_poll *p = server->polls;
        poll_try(server, p->req, p->from, p->limit, p->device, 1);
        poll_free(p);
    }
}

static int query_number(struct hub_http_request *r, const char *key, long long def, long long min,
                        long long max, long long *out)
{
    char text[32];
    *out = def;
    if (!hub_http__query_get(r, key, text, sizeof(text)))
        return 0;
    char *end = NULL;
    long long v = strtoll(text, &end, 10);
    if (end == text || *end != '\0' || v < min || v > max) {
        hub_http__reply_error(r, 400, "ArgumentInvalid", "BAD_QUERY_PARAMETER",
                              "%s must be a number from %lld to %lld", key, min, max);
        return -1;
    }
    *out = v;
    return 0;
}

static void events_read(struct hub_http_request *r)
{
    long long from, limit, wait;
    if (query_number(r, "from", 1, 1, INT64_MAX, &from) != 0 ||
        query_number(r, "limit", EVENTS_LIMIT_DEFAULT, 1, EVENTS_LIMIT_MAX, &limit) != 0 ||
        query_number(r, "wait", 0, 0, r->env->max_poll_wait_s, &wait) != 0)
        return;
    char device[HUB_DEVICE_ID_SIZE] = "";
    if (hub_http__query_get(r, "deviceId", device, sizeof(device)) && device[0] == '\0') {
        hub_http__reply_error(r, 400, "ArgumentInvalid", "BAD_QUERY_PARAMETER",
                              "deviceId must not be empty");
        return;
    }
    if (poll_try(r->server, r->req, from, (size_t)limit, device, wait == 0 || r->draining))
        return;
    struct hub_http_poll *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        hub_http__reply_error(r, 500, "ServerError", "NOMEM", "out of memory");
        return;
    }
    p->server = r->server;
    p->req = r->req;
    p->from = from;
    p->limit = (size_t)limit;
    snprintf(p->device, sizeof(p->device), "%s", device);
    p->deadline_ms = mono_ms() + wait * 1000;
    p->timer = evtimer_new(r->server->base, on_poll_timer, p);
    if (p->timer == NULL) {
        free(p);
        hub_http__reply_error(r, 500, "ServerError", "NOMEM", "out of memory");
        return;
    }
    p->next = r->server->polls;
    r->server->polls = p;
    struct evhttp_connection *evcon = evhttp_request_get_connection(r->req);
    if (evcon != NULL)
        evhttp_connection_set_closecb(evcon, on_poll_conn_closed, p);
    struct timeval tv = {.tv_sec = 0, .tv_usec = POLL_INTERVAL_MS * 1000};
    evtimer_add(p->timer, &tv);
}

/* ---- routing ------------------------------------------------------------------ */

int hub_http__route_messages(struct hub_http_request *r)
{
    const unsigned connect = HUB_AUTH_PERM_SERVICE_CONNECT;
    size_t n = r->segment_count;
    char(*s)[HUB_HTTP_SEGMENT_MAX] = r->segments;
    if (n == 4 && strcmp(s[0], "devices") == 0 && strcmp(s[2], "messages") == 0 &&
        strcasecmp(s[3], "deviceBound") == 0 && r->method == EVHTTP_REQ_POST) {
        if (hub_http__authorize(r, connect) == 0)
            c2d_send(r, s[1]);
        return 1;
    }
    if (n == 3 && strcmp(s[0], "devices") == 0 && strcmp(s[2], "commands") == 0 &&
        r->method == EVHTTP_REQ_DELETE) {
        if (hub_http__authorize(r, connect) == 0)
            c2d_purge(r, s[1]);
        return 1;
    }
    if (n < 2 || strcmp(s[0], "messages") != 0)
        return 0;
    if (n == 2 && strcmp(s[1], "events") == 0 && r->method == EVHTTP_REQ_GET) {
        if (hub_http__authorize(r, connect) == 0)
            events_read(r);
        return 1;
    }
    if (n >= 3 && strcasecmp(s[1], "serviceBound") == 0 && strcmp(s[2], "feedback") == 0) {
        if (n == 3 && r->method == EVHTTP_REQ_GET) {
            if (hub_http__authorize(r, connect) == 0)
                feedback_receive(r);
            return 1;
        }
        if (n == 4 && r->method == EVHTTP_REQ_DELETE) {
            if (hub_http__authorize(r, connect) == 0)
                feedback_settle(r, s[3], 1);
            return 1;
        }
        if (n == 5 && strcmp(s[4], "abandon") == 0 && r->method == EVHTTP_REQ_POST) {
            if (hub_http__authorize(r, connect) == 0)
                feedback_settle(r, s[3], 0);
            return 1;
        }
    }
    return 0;
}
