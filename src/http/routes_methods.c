/*
 * Direct methods of the service API (reference §4 "Direct method"):
 *
 *   POST /twins/{id}/methods   (serviceConnect)
 *     {"methodName":"reboot","payload":<JSON>|null,
 *      "responseTimeoutInSeconds":30,    default 30, 5..300
 *      "connectTimeoutInSeconds":0}      default 0, 0..300
 *   200 {"status":<the device's status>,"payload":<the device's JSON body or null>}
 *   404 DeviceNotFound (no such device), 404 DeviceNotOnline (not connected and
 *   subscribed within the connect timeout, or gone before it answered),
 *   504 GatewayTimeout (no answer in time), 400 ArgumentInvalid (body),
 *   413 MessageTooLarge (payload over 128 KiB), 503 (hub shutting down).
 *
 * The request is parked while the device works (like the telemetry long
 * poll) and answered from the device endpoint's completion. That completion
 * runs on another thread, so it only copies the result and hands it to this
 * server's event base with event_base_once. A small refcounted call object
 * joins the two sides: one reference for the parked request (dropped when
 * the answer is sent, or in the connection's close callback when evhttp
 * frees the request first: a drain), one for the device side (dropped after
 * the hand-off ran). An answer whose request is gone is dropped.
 *
 * A non-JSON body from the device is passed on as a JSON string (or null
 * when it is not UTF-8 either): the caller still learns the status.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <event2/http.h>

#include "auth/auth.h"
#include "common/log.h"
#include "device/device.h"
#include "http/http_int.h"
#include "registry/registry.h"

#define RESPONSE_TIMEOUT_DEFAULT_S 30
#define RESPONSE_TIMEOUT_MIN_S     5
#define RESPONSE_TIMEOUT_MAX_S     300
#define CONNECT_TIMEOUT_DEFAULT_S  0
#define CONNECT_TIMEOUT_MAX_S      300

struct method_call {
    _Atomic unsigned refs;
    struct hub_http_server *server; /* valid while req is */
    struct event_base *base;        /* the server's worker: outlives every device completion */
    struct evhttp_request *req;     /* NULL once answered or freed by evhttp */
    char who[80];
    char peer[64];
    char device_id[HUB_DEVICE_ID_SIZE];
    char method[HUB_DEVICE_METHOD_NAME_MAX + 1];
    /* the device side's result, written before the hand-off */
    enum hub_device_method_outcome outcome;
    int status;
    uint8_t *payload;
    size_t payload_len;
};

static void call_release(struct method_call *mc)
{
    if (atomic_fetch_sub_explicit(&mc->refs, 1, memory_order_acq_rel) != 1)
        return;
    free(mc->payload);
    free(mc);
}

/* A request view for the reply helpers, rebuilt on the server's thread. */
static void request_view(struct method_call *mc, struct hub_http_request *r)
{
    memset(r, 0, sizeof(*r));
    r->req = mc->req;
    r->env = mc->server->env;
    r->server = mc->server;
    r->draining = mc->server->draining;
    r->method = EVHTTP_REQ_POST;
    r->method_name = "POST";
    r->uri = evhttp_request_get_uri(mc->req);
    snprintf(r->who, sizeof(r->who), "%s", mc->who);
    snprintf(r->peer, sizeof(r->peer), "%s", mc->peer);
}

/* The device's body as the "payload" member. */
static json_t *device_payload_json(const struct method_call *mc)
{
    if (mc->payload_len == 0)
        return json_null();
    json_t *j = json_loadb((const char *)mc->payload, mc->payload_len, JSON_DECODE_ANY, NULL);
    if (j != NULL)
        return j;
    j = json_stringn((const char *)mc->payload, mc->payload_len);
    return j != NULL ? j : json_null();
}

static void reply_result(struct method_call *mc)
{
    struct hub_http_request r;
    request_view(mc, &r);
    switch (mc->outcome) {
    case HUB_DEVICE_METHOD_OK: {
        json_t *body =
            json_pack("{s:i, s:o}", "status", mc->status, "payload", device_payload_json(mc));
        if (body == NULL) {
            hub_http__reply_error(&r, 500, "ServerError", "NOMEM", "out of memory");
            return;
        }
        hub_log_kv(HUB_LOG_INFO, "method_invoked", "who", mc->who, "peer", mc->peer, "device",
                   mc->device_id, "method", mc->method, NULL);
        hub_http__reply_json(&r, 200, body);
        return;
    }
    case HUB_DEVICE_METHOD_NOT_ONLINE:
        hub_http__reply_error(&r, 404, "DeviceNotOnline", "DEVICE_NOT_ONLINE",
                              "device %s is not connected and subscribed to direct methods",
                              mc->device_id);
        return;
    case HUB_DEVICE_METHOD_DISCONNECTED:
        hub_http__reply_error(&r, 404, "DeviceNotOnline", "DEVICE_NOT_ONLINE",
                              "device %s disconnected before it answered method %s", mc->device_id,
                              mc->method);
        return;
    case HUB_DEVICE_METHOD_TIMEOUT:
        hub_http__reply_error(&r, 504, "GatewayTimeout", "METHOD_TIMEOUT",
                              "device %s did not answer method %s in time", mc->device_id,
                              mc->method);
        return;
    case HUB_DEVICE_METHOD_RESPONSE_TOO_LARGE:
        hub_http__reply_error(&r, 502, "BadGateway", "METHOD_RESPONSE_TOO_LARGE",
                              "device %s answered method %s with more than %d bytes", mc->device_id,
                              mc->method, HUB_DEVICE_METHOD_PAYLOAD_MAX);
        return;
    case HUB_DEVICE_METHOD_SHUTDOWN:
        break;
    }
    hub_http__reply_error(&r, 503, "ServiceUnavailable", "SHUTTING_DOWN",
                          "the hub is shutting down");
}

/* The server's thread: answer if the client is still there. */
static void on_answer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct method_call *mc = arg;
    if (mc->req != NULL) {
        struct evhttp_connection *evcon = evhttp_request_get_connection(mc->req);
        if (evcon != NULL)
            evhttp_connection_set_closecb(evcon, NULL, NULL);
        reply_result(mc);
        mc->req = NULL;
        call_release(mc); /* the request's reference */
    }
    call_release(mc); /* the device side's reference */
}

/* Any thread (the device endpoint's): copy, hand off, nothing else. */
static void on_method_done(void *arg, const struct hub_device_method_result *res)
{
    struct method_call *mc = arg;
    mc->outcome = res->outcome;
    mc->status = res->status;
    if (res->payload_len > 0) {
        mc->payload = malloc(res->payload_len);
        if (mc->payload != NULL) {
            memcpy(mc->payload, res->payload, res->payload_len);
            mc->payload_len = res->payload_len;
        } else {
            mc->outcome = HUB_DEVICE_METHOD_SHUTDOWN; /* answered as 503 */
        }
    }
    if (event_base_once(mc->base, -1, EV_TIMEOUT, on_answer, mc, NULL) != 0) {
        hub_log_kv(HUB_LOG_ERROR, "method_answer_lost", "device", mc->device_id, "detail",
                   "cannot schedule the reply", NULL);
        call_release(mc); /* the request's stays: evhttp's close callback drops it */
    }
}

/* evhttp frees the request right after this (a drain): forget it. */
static void on_conn_closed(struct evhttp_connection *evcon, void *arg)
{
    (void)evcon;
    struct method_call *mc = arg;
    if (mc->req == NULL)
        return;
    mc->req = NULL;
    call_release(mc);
}

/* An optional integer member in [min, max]; replies 400 and returns -1 if bad. */
static int timeout_member(struct hub_http_request *r, json_t *body, const char *key, int def,
                          int min, int max, int *out)
{
    json_t *v = json_object_get(body, key);
    *out = def;
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
        hub_http__reply_error(r, 400, "ArgumentInvalid", "BAD_TIMEOUT",
                              "%s must be an integer from %d to %d", key, min, max);
        return -1;
    }
    *out = (int)json_integer_value(v);
    return 0;
}

static void method_invoke(struct hub_http_request *r, const char *device_id)
{
    if (r->env->devices == NULL) {
        hub_http__reply_error(r, 503, "ServiceUnavailable", "NO_DEVICE_ENDPOINT",
                              "direct methods need the MQTT device endpoint");
        return;
    }
    json_t *body = hub_http__body_json(r);
    if (body == NULL)
        return;
    char *payload = NULL;
    struct method_call *mc = NULL;
    json_t *name = json_object_get(body, "methodName");
    if (!json_is_string(name) || json_string_length(name) == 0) {
        hub_http__reply_error(r, 400, "ArgumentInvalid", "BAD_METHOD_NAME",
                              "methodName must be a non-empty string");
        goto free_body;
    }
    int response_s, connect_s;
    if (timeout_member(r, body, "responseTimeoutInSeconds", RESPONSE_TIMEOUT_DEFAULT_S,
                       RESPONSE_TIMEOUT_MIN_S, RESPONSE_TIMEOUT_MAX_S, &response_s) != 0 ||
        timeout_member(r, body, "connectTimeoutInSeconds", CONNECT_TIMEOUT_DEFAULT_S, 0,
                       CONNECT_TIMEOUT_MAX_S, &connect_s) != 0)
        goto free_body;
    json_t *p = json_object_get(body, "payload");
    size_t payload_len = 0;
    if (p != NULL && !json_is_null(p)) {
        payload = json_dumps(p, JSON_COMPACT | JSON_ENCODE_ANY);
        if (payload == NULL) {
            hub_http__reply_error(r, 500, "ServerError", "NOMEM", "out of memory");
            goto free_body;
        }
        payload_len = strlen(payload);
        if (payload_len > HUB_DEVICE_METHOD_PAYLOAD_MAX) {
            hub_http__reply_error(r, 413, "MessageTooLarge", "TOO_LARGE",
                                  "the method payload is %zu bytes, over the %d-byte limit",
                                  payload_len, HUB_DEVICE_METHOD_PAYLOAD_MAX);
            goto free_payload;
        }
    }
    struct hub_device dev;
    struct hub_err err = {0};
    if (hub_registry_device_get(r->env->registry, device_id, &dev, &err) != 0) {
        hub_http__reply_hub_err(r, &err, "DeviceNotFound", "DeviceAlreadyExists");
        goto free_payload;
    }

    mc = calloc(1, sizeof(*mc));
    if (mc == NULL) {
        hub_http__reply_error(r, 500, "ServerError", "NOMEM", "out of memory");
        goto free_payload;
    }
    atomic_init(&mc->refs, 2); /* the parked request + the device side */
    mc->server = r->server;
    mc->base = r->server->base;
    mc->req = r->req;
    snprintf(mc->who, sizeof(mc->who), "%s", r->who);
    snprintf(mc->peer, sizeof(mc->peer), "%s", r->peer);
    snprintf(mc->device_id, sizeof(mc->device_id), "%s", device_id);
    snprintf(mc->method, sizeof(mc->method), "%s", json_string_value(name));
    /* Before invoking: the completion may be scheduled before invoke returns. */
    struct evhttp_connection *evcon = evhttp_request_get_connection(r->req);
    if (evcon != NULL)
        evhttp_connection_set_closecb(evcon, on_conn_closed, mc);
    if (hub_device_method_invoke(r->env->devices, device_id, json_string_value(name), payload,
                                 payload_len, response_s * 1000, connect_s * 1000, on_method_done,
                                 mc, &err) != 0) {
        /* Refused without a callback: the call is ours alone again. */
        if (evcon != NULL)
            evhttp_connection_set_closecb(evcon, NULL, NULL);
        free(mc);
        if (err.code == HUB_E_TOO_LARGE)
            hub_http__reply_error(r, 413, "MessageTooLarge", "TOO_LARGE", "%s", err.msg);
        else if (err.code == HUB_E_INVALID_ARG)
            hub_http__reply_error(r, 400, "ArgumentInvalid", "BAD_METHOD", "%s", err.msg);
        else
            hub_http__reply_hub_err(r, &err, "DeviceNotFound", "DeviceAlreadyExists");
    }
free_payload:
    free(payload);
free_body:
    json_decref(body);
}

int hub_http__route_methods(struct hub_http_request *r)
{
    if (r->segment_count != 3 || strcmp(r->segments[0], "twins") != 0 ||
        strcmp(r->segments[2], "methods") != 0)
        return 0;
    if (r->method != EVHTTP_REQ_POST) {
        hub_http__reply_error(r, 405, "MethodNotAllowed", "BAD_METHOD", "%s is not allowed on %s",
                              r->method_name, r->path);
        return 1;
    }
    if (hub_http__authorize(r, HUB_AUTH_PERM_SERVICE_CONNECT) == 0)
        method_invoke(r, r->segments[1]);
    return 1;
}
