/*
 * Device twin endpoints of the service API (reference §4 "Twin"):
 *
 *   GET   /twins/{id}   200 the twin                 RegistryRead or ServiceConnect
 *   PATCH /twins/{id}   merge tags + desired; 200    ServiceConnect
 *   PUT   /twins/{id}   replace tags + desired; 200  ServiceConnect
 *
 * Bodies: {"tags":{...},"properties":{"desired":{...}}}; the twin layer
 * (twin/twin.h) owns the merge rules (null deletes), the key and size
 * limits, and the twin JSON. Answers carry the full twin (Azure's shape,
 * hub_twin_service_json_new) and `ETag: "<twin etag>"`.
 *
 * If-Match: a quoted etag (what the SDKs send: the twin's etag from a GET)
 * makes the write a compare-and-swap: 412 PreconditionFailed when the twin
 * changed since. "*" or no If-Match at all is unconditional. Azure's SDKs
 * always send one; accepting none keeps curl and scripts simple, and is
 * the same rule as DELETE /devices/{id}.
 *
 * Reported properties belong to the device: a PATCH whose
 * properties.reported holds a property is refused (400) rather than
 * silently ignored, so a caller never believes it changed them. $-keys
 * (the $metadata and $version of a GET's answer) and other read-only twin
 * fields (deviceId, etag, status, ...) are ignored, as Azure does, so a
 * twin fetched with GET can be sent back; PUT ignores reported entirely
 * because a replace body is usually a whole fetched twin.
 *
 * Permissions (Azure, "Control access to IoT Hub"): ServiceConnect "access
 * twins to update tags and desired properties, retrieve reported
 * properties, and run queries"; a RegistryRead policy reads twins through
 * the device query already, so GET accepts either right.
 *
 * After a write that touched desired, the registry tells its observer (the
 * device endpoint), which notifies a connected device: nothing to do here.
 */
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "auth/auth.h"
#include "common/log.h"
#include "http/http_int.h"
#include "http/json_map.h"
#include "registry/registry.h"
#include "twin/twin.h"

static void reply_twin(struct hub_http_request *r, const struct hub_twin *twin,
                       const struct hub_device *dev)
{
    json_t *body = hub_twin_service_json_new(twin, dev);
    if (body == NULL) {
        hub_http__reply_error(r, 500, "ServerError", "NOMEM", "out of memory building the twin");
        return;
    }
    char quoted[HUB_ETAG_SIZE + 2];
    snprintf(quoted, sizeof(quoted), "\"%s\"", twin->etag);
    evhttp_add_header(evhttp_request_get_output_headers(r->req), "ETag", quoted);
    hub_http__reply_json(r, 200, body);
}

static void twin_get(struct hub_http_request *r, const char *id)
{
    struct hub_twin *twin = NULL;
    struct hub_device dev;
    struct hub_err err = {0};
    if (hub_registry_twin_get1(r->env->registry, id, &twin, &dev, &err) != 0) {
        hub_http__reply_hub_err(r, &err, "DeviceNotFound", "DeviceAlreadyExists");
        return;
    }
    reply_twin(r, twin, &dev);
    hub_twin_free(twin);
}

static void twin_write(struct hub_http_request *r, const char *id, int replace)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(r->req);
    size_t len = evbuffer_get_length(in);
    if (len == 0) {
        hub_http__reply_error(r, 400, "ArgumentInvalid", "BAD_JSON",
                              "request body is empty (expected {\"tags\":{...},"
                              "\"properties\":{\"desired\":{...}}})");
        return;
    }
    /* The twin layer refuses over-long text before parsing; checking here
     * too keeps the reported check below from parsing it. */
    if (len > HUB_TWIN_REQUEST_MAX_BYTES) {
        hub_http__reply_error(r, 413, "MessageTooLarge", "TOO_LARGE",
                              "twin request is %zu bytes, over the %d-byte limit", len,
                              HUB_TWIN_REQUEST_MAX_BYTES);
        return;
    }
    const char *body = (const char *)evbuffer_pullup(in, -1);
    if (!replace && hub_http__twin_patch_has_reported(body, len)) {
        hub_http__reply_error(r, 400, "ArgumentInvalid", "REPORTED_BY_SERVICE",
                              "properties.reported belongs to the device: a service patch may "
                              "change tags and properties.desired only");
        return;
    }
    char if_match[HUB_ETAG_SIZE + 8];
    const char *cond = hub_http__if_match(r, if_match, sizeof(if_match)) ? if_match : NULL;
    struct hub_twin *twin = NULL;
    struct hub_device dev;
    struct hub_err err = {0};
    int rc =
        replace
            ? hub_registry_twin_replace(r->env->registry, id, body, len, cond, &twin, &dev, &err)
            : hub_registry_twin_patch(r->env->registry, id, body, len, cond, &twin, &dev, &err);
    if (rc != 0) {
        hub_http__reply_hub_err(r, &err, "DeviceNotFound", "DeviceAlreadyExists");
        return;
    }
    struct hub_log_line line;
    hub_log_begin(&line, HUB_LOG_INFO, replace ? "twin_replaced" : "twin_patched");
    hub_log_str(&line, "who", r->who);
    hub_log_str(&line, "peer", r->peer);
    hub_log_str(&line, "device", id);
    hub_log_int(&line, "version", (long long)twin->version);
    hub_log_int(&line, "desired_version", (long long)twin->desired_version);
    hub_log_end(&line);
    reply_twin(r, twin, &dev);
    hub_twin_free(twin);
}

int hub_http__route_twins(struct hub_http_request *r)
{
    if (r->segment_count != 2 || strcmp(r->segments[0], "twins") != 0)
        return 0;
    const char *id = r->segments[1];
    switch (r->method) {
    case EVHTTP_REQ_GET:
        if (hub_http__authorize_any(r, HUB_AUTH_PERM_REGISTRY_READ |
                                           HUB_AUTH_PERM_SERVICE_CONNECT) == 0)
            twin_get(r, id);
        return 1;
    case EVHTTP_REQ_PATCH:
    case EVHTTP_REQ_PUT:
        if (hub_http__authorize(r, HUB_AUTH_PERM_SERVICE_CONNECT) == 0)
            twin_write(r, id, r->method == EVHTTP_REQ_PUT);
        return 1;
    default:
        hub_http__reply_error(r, 405, "MethodNotAllowed", "BAD_METHOD", "%s is not allowed on %s",
                              r->method_name, r->path);
        return 1;
    }
}
