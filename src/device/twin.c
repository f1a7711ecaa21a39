/*
 * device: the device twin over MQTT (reference §2 "Twin").
 *
 *   device PUBLISH                                   hub answers (QoS 0, if subscribed to
 *                                                    $iothub/twin/res/#)
 *   $iothub/twin/GET/?$rid={rid}                     $iothub/twin/res/200/?$rid={rid}
 *                                                      {"desired":{..,"$version":N},
 *                                                       "reported":{..,"$version":M}}
 *   $iothub/twin/PATCH/properties/reported/?$rid=    $iothub/twin/res/204/?$rid={rid}&$version={M'}
 *     {merge patch}                                    (empty body; durable before it leaves)
 *   either, refused                                  $iothub/twin/res/{400|404|413|429|500}/?$rid=
 *                                                      {"errorCode":400004,"message":"...",
 *                                                       "trackingId":"...","timestampUtc":"..."}
 *
 * Node ignores the status and fails a request only on a body with
 * errorCode (reference §2), hence the error body on every refusal.
 *
 * Desired notifications ($iothub/twin/PATCH/properties/desired/?$version=N,
 * body = the patch plus "$version":N) go to devices subscribed to
 * $iothub/twin/PATCH/properties/desired/#. The session remembers the last
 * desired $version the device was told about (a notification sent, or a GET
 * answered); whenever desired changes, and when a resumed session or a new
 * SUBSCRIBE brings the device back, what lies between that version and the
 * current one is sent: the logged patches one by one, or the whole desired
 * section when the registry no longer has them all
 * (hub_registry_twin_desired_changes1).
 *
 * Registry calls are synchronous store calls on the worker, one per request.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "common/log.h"
#include "common/util.h"
#include "device/device_int.h"
#include "registry/registry.h"

/* "$iothub/twin/res/" + status + "/?$rid=" + rid + "&$version=" + 19 digits */
#define TWIN_TOPIC_OVERHEAD 64

/* Azure's numeric error codes (reference §4, [S10]). */
#define ERRCODE_ARGUMENT_INVALID 400004
#define ERRCODE_DEVICE_NOT_FOUND 404001
#define ERRCODE_TOO_LARGE        413001
#define ERRCODE_THROTTLED        429001
#define ERRCODE_SERVER_ERROR     500001

static void twin_log(const struct hub_device_conn *c, enum hub_log_level level, const char *event,
                     const struct hub_err *err)
{
    struct hub_log_line line;
    hub_log_begin(&line, level, event);
    hub_log_str(&line, "device", c->device_id);
    if (err != NULL)
        hub_log_err(&line, err);
    hub_log_end(&line);
}

/* Publishes a twin response, if the device listens for them. Returns true
 * only when the response was queued on the connection (subscribed, encoded,
 * written): what the device may learn from it depends on that. */
static bool respond(struct hub_device_conn *c, int status, struct hub_mqtt_str rid, int64_t version,
                    const char *body, size_t body_len)
{
    if (!c->twin_res_subscribed) {
        /* MQTT: nothing goes out on a topic the client did not subscribe to. */
        hub_log_kv(HUB_LOG_DEBUG, "twin_response_dropped", "device", c->device_id, "detail",
                   "not subscribed to $iothub/twin/res/#", NULL);
        return false;
    }
    size_t cap = TWIN_TOPIC_OVERHEAD + rid.len;
    char *topic = malloc(cap);
    if (topic == NULL) {
        hub_device__conn_close(c, HUB_DEVICE_R_INTERNAL, "out of memory");
        return false;
    }
    struct hub_err err = {0};
    bool sent = false;
    int n = hub_iothub_twin_res_topic_build(topic, cap, status, rid, version, &err);
    if (n < 0) /* the rid was parsed from a topic, so only exotic bytes get here */
        twin_log(c, HUB_LOG_INFO, "twin_response_dropped", &err);
    else
        sent = hub_device__conn_publish0(c, topic, (size_t)n, body, body_len) == 0;
    free(topic);
    return sent;
}

static void respond_error(struct hub_device_conn *c, struct hub_mqtt_str rid,
                          const struct hub_err *err)
{
    int status = 500, code = ERRCODE_SERVER_ERROR;
    switch (err->code) {
    case HUB_E_PARSE:
    case HUB_E_INVALID_ARG:
    case HUB_E_EMPTY:
        status = 400;
        code = ERRCODE_ARGUMENT_INVALID;
        break;
    case HUB_E_NOT_FOUND:
        status = 404;
        code = ERRCODE_DEVICE_NOT_FOUND;
        break;
    case HUB_E_TOO_LARGE:
        status = 413;
        code = ERRCODE_TOO_LARGE;
        break;
    case HUB_E_BUSY:
    case HUB_E_LIMIT:
        status = 429;
        code = ERRCODE_THROTTLED;
        break;
    default:
        break;
    }
    twin_log(c, status >= 500 ? HUB_LOG_WARN : HUB_LOG_INFO, "twin_request_refused", err);
    char tracking[33], when[HUB_TIME_ISO_LEN];
    if (hub_random_hex(16, tracking, NULL) != 0)
        snprintf(tracking, sizeof(tracking), "0");
    hub_time_iso8601(time(NULL), when);
    json_t *body = json_pack("{s:i, s:s, s:s, s:s}", "errorCode", code, "message", err->msg,
                             "trackingId", tracking, "timestampUtc", when);
    char *text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    respond(c, status, rid, -1, text, text != NULL ? strlen(text) : 0);
    free(text);
}

/* The device now knows desired as of `version`: no notification up to it. */
static void desired_seen_raise(struct hub_device_conn *c, int64_t version)
{
    if (hub_device__dir_desired_seen(c->ep->dir, c->device_id) < version)
        hub_device__dir_desired_seen_set(c->ep->dir, c->device_id, version);
}

static void twin_get(struct hub_device_conn *c, struct hub_mqtt_str rid)
{
    struct hub_twin *twin = NULL;
    struct hub_err err = {0};
    if (hub_registry_twin_get1(c->ep->env.registry, c->device_id, &twin, NULL, &err) != 0) {
        respond_error(c, rid, &err);
        return;
    }
    json_t *j = hub_twin_device_json_new(twin);
    char *text = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (text == NULL) {
        HUB_ERR(&err, HUB_E_NOMEM, "out of memory encoding the twin");
        respond_error(c, rid, &err);
    } else if (respond(c, 200, rid, -1, text, strlen(text))) {
        /* The session's desired $version means "the device was told this
         * much", and the notifications resume after it. A GET answer tells
         * the device only if it went out: a device not subscribed to
         * $iothub/twin/res/# never sees it, so raising the version then
         * would silently swallow the desired patches up to it (the device
         * subscribes to desired notifications later and gets nothing). The
         * GET, the raise and every notification run on this worker in
         * order, so an answer that went out carries every patch up to the
         * version it raises to. */
        desired_seen_raise(c, twin->desired_version);
    }
    free(text);
    hub_twin_free(twin);
}

static void twin_patch_reported(struct hub_device_conn *c, struct hub_mqtt_str rid,
                                const struct hub_mqtt_publish *pub)
{
    int64_t version = 0;
    struct hub_err err = {0};
    if (hub_registry_twin_reported_patch(c->ep->env.registry, c->device_id,
                                         (const char *)pub->payload.ptr, pub->payload.len, &version,
                                         &err) != 0) {
        respond_error(c, rid, &err);
        return;
    }
    respond(c, 204, rid, version, NULL, 0);
}

void hub_device__twin_request(struct hub_device_conn *c, const struct hub_mqtt_publish *pub,
                              const struct hub_iothub_topic *topic)
{
    if (topic->kind == HUB_IOTHUB_TOPIC_TWIN_GET)
        twin_get(c, topic->rid); /* the body (Node: one space) means nothing */
    else
        twin_patch_reported(c, topic->rid, pub);
}

/* ---- desired-property notifications ------------------------------------------ */

static void send_desired(struct hub_device_conn *c, const json_t *body, int64_t fallback_version)
{
    json_t *v = json_object_get(body, "$version");
    int64_t version = json_is_integer(v) ? (int64_t)json_integer_value(v) : fallback_version;
    char topic[96];
    struct hub_err err = {0};
    int n = hub_iothub_twin_desired_topic_build(topic, sizeof(topic), version, &err);
    char *text = json_dumps(body, JSON_COMPACT);
    if (n < 0 || text == NULL) {
        if (text == NULL)
            HUB_ERR(&err, HUB_E_NOMEM, "out of memory encoding a desired patch");
        twin_log(c, HUB_LOG_WARN, "twin_desired_dropped", &err);
    } else {
        hub_device__conn_publish0(c, topic, (size_t)n, text, strlen(text));
        hub_log_kv(HUB_LOG_DEBUG, "twin_desired_sent", "device", c->device_id, NULL);
    }
    free(text);
}

void hub_device__twin_desired_sync(struct hub_device_conn *c)
{
    if (c->state != HUB_DEVICE_CONN_LIVE || !c->twin_desired_subscribed)
        return;
    struct hub_device_endpoint *ep = c->ep;
    struct hub_err err = {0};
    int64_t seen = hub_device__dir_desired_seen(ep->dir, c->device_id);
    if (seen < 0) {
        int64_t current = 0;
        if (hub_registry_twin_desired_version(ep->env.registry, c->device_id, &current, &err) != 0)
            twin_log(c, HUB_LOG_WARN, "twin_desired_failed", &err);
        else
            hub_device__dir_desired_seen_set(ep->dir, c->device_id, current);
        return;
    }
    json_t *bodies = NULL;
    int64_t current = 0;
    if (hub_registry_twin_desired_changes1(ep->env.registry, c->device_id, seen, &bodies, &current,
                                           &err) != 0) {
        /* Keep `seen`: the next change or reconnect tries again. */
        twin_log(c, HUB_LOG_WARN, "twin_desired_failed", &err);
        return;
    }
    size_t i;
    json_t *body;
    json_array_foreach(bodies, i, body)
    {
        if (c->state != HUB_DEVICE_CONN_LIVE)
            break;
        send_desired(c, body, current);
    }
    json_decref(bodies);
    /* Also when current < seen: the device was deleted and created again,
     * its versions restarted. */
    hub_device__dir_desired_seen_set(ep->dir, c->device_id, current);
}
