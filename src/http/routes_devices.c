/*
 * Device registry endpoints (reference §4, "Registry endpoints"):
 *   GET    /devices[?top=N]          list (registryRead)
 *   POST   /devices/query            query with paging headers (registryRead; query.c)
 *   GET    /devices/{id}             one device (registryRead)
 *   PUT    /devices/{id}             create (no If-Match) or update (If-Match) (registryWrite)
 *   DELETE /devices/{id}             delete (If-Match optional: "*" or etag) (registryWrite)
 */
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "common/log.h"
#include "http/http_int.h"
#include "http/json_map.h"
#include "query/query.h"
#include "registry/registry.h"

#define QUERY_PAGE_DEFAULT 100

static void log_change(struct hub_http_request *r, const char *event, const char *id)
{
    hub_log_kv(HUB_LOG_INFO, event, "who", r->who, "peer", r->peer, "device", id, NULL);
}

static void reply_device(struct hub_http_request *r, int status, const struct hub_device *dev)
{
    char quoted[HUB_ETAG_SIZE + 2];
    snprintf(quoted, sizeof(quoted), "\"%s\"", dev->etag);
    evhttp_add_header(evhttp_request_get_output_headers(r->req), "ETag", quoted);
    hub_http__reply_json(r, status, hub_http__device_to_json(dev));
}

static void device_get(struct hub_http_request *r, const char *id)
{
    struct hub_device dev;
    struct hub_err err = {0};
    if (hub_registry_device_get(r->env->registry, id, &dev, &err) != 0) {
        hub_http__reply_hub_err(r, &err, "DeviceNotFound", "DeviceAlreadyExists");
        return;
    }
    reply_device(r, 200, &dev);
}

static void device_put(struct hub_http_request *r, const char *id)
{
    json_t *body = hub_http__body_json(r);
    if (body == NULL)
        return;
    struct hub_device in, out;
    char why[256];
    int rc = hub_http__device_from_json(body, id, &in, why, sizeof(why));
    json_decref(body);
    if (rc != 0) {
        hub_http__reply_error(r, 400, "ArgumentInvalid", "BAD_DEVICE_JSON", "%s", why);
        return;
    }
    char if_match[HUB_ETAG_SIZE + 8];
    struct hub_err err = {0};
    int update = hub_http__if_match(r, if_match, sizeof(if_match));
    if (update)
        rc = hub_registry_device_update(r->env->registry, &in, if_match, &out, &err);
    else
        rc = hub_registry_device_create(r->env->registry, &in, &out, &err);
    if (rc != 0) {
        hub_http__reply_hub_err(r, &err, "DeviceNotFound", "DeviceAlreadyExists");
        return;
    }
    log_change(r, update ? "device_updated" : "device_created", out.id);
    reply_device(r, 200, &out);
}

static void device_delete(struct hub_http_request *r, const char *id)
{
    char if_match[HUB_ETAG_SIZE + 8];
    const char *cond = hub_http__if_match(r, if_match, sizeof(if_match)) ? if_match : NULL;
    struct hub_err err = {0};
    if (hub_registry_device_delete(r->env->registry, id, cond, &err) != 0) {
        hub_http__reply_hub_err(r, &err, "DeviceNotFound", "DeviceAlreadyExists");
        return;
    }
    log_change(r, "device_deleted", id);
    hub_http__reply_empty(r, 204);
}

/* Parses a decimal in [1, max]; -1 if not one. */
static long parse_count(const char *s, long max)
{
    char *end = NULL;
    long v = strtol(s, &end, 10);
    if (end == s || *end != '\0' || v < 1 || v > max)
        return -1;
    return v;
}

static void device_list(struct hub_http_request *r)
{
    struct hub_device_filter filter = {.limit = HUB_REGISTRY_LIST_MAX};
    char top[16];
    if (hub_http__query_get(r, "top", top, sizeof(top))) {
        long n = parse_count(top, HUB_REGISTRY_LIST_MAX);
        if (n < 0) {
            hub_http__reply_error(r, 400, "ArgumentInvalid", "BAD_TOP",
                                  "top must be a number from 1 to %d", HUB_REGISTRY_LIST_MAX);
            return;
        }
        filter.limit = (size_t)n;
    }
    struct hub_device_list *list = NULL;
    struct hub_err err = {0};
    if (hub_registry_device_list1(r->env->registry, &filter, &list, &err) != 0) {
        hub_http__reply_hub_err(r, &err, "DeviceNotFound", "DeviceAlreadyExists");
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < list->count; i++)
        json_array_append_new(arr, hub_http__device_to_json(&list->items[i]));
    hub_device_list_free(list);
    hub_http__reply_json(r, 200, arr);
}

static void device_query(struct hub_http_request *r)
{
    json_t *body = hub_http__body_json(r);
    if (body == NULL)
        return;
    json_t *text = json_object_get(body, "query");
    if (!json_is_string(text)) {
        json_decref(body);
        hub_http__reply_error(r, 400, "ArgumentInvalid", "BAD_QUERY",
                              "body must be {\"query\": \"SELECT * FROM devices ...\"}");
        return;
    }
    struct hub_query *q = NULL;
    struct hub_err err = {0};
    int rc = hub_query_parse_new(json_string_value(text), json_string_length(text), &q, &err);
    json_decref(body);
    if (rc == HUB_E_PARSE || rc == HUB_E_TOO_LARGE) {
        /* err.msg is "query error at column N: ..." */
        hub_http__reply_error(r, 400, "ArgumentInvalid", "BAD_QUERY", "%s", err.msg);
        return;
    }
    if (rc != 0) {
        hub_http__reply_hub_err(r, &err, "DeviceNotFound", "DeviceAlreadyExists");
        return;
    }
    size_t limit = QUERY_PAGE_DEFAULT;
    const char *max_items = hub_http__header(r, "x-ms-max-item-count");
    if (max_items != NULL) {
        long n = parse_count(max_items, HUB_REGISTRY_LIST_MAX);
        if (n < 0) {
            hub_query_free(q);
            hub_http__reply_error(r, 400, "ArgumentInvalid", "BAD_PAGE_SIZE",
                                  "x-ms-max-item-count must be a number from 1 to %d",
                                  HUB_REGISTRY_LIST_MAX);
            return;
        }
        limit = (size_t)n;
    }
    json_t *items = NULL;
    char next[HUB_HTTP_QUERY_CURSOR_SIZE];
    rc = hub_http__device_query_run(r->env->registry, q, limit,
                                    hub_http__header(r, "x-ms-continuation"),
                                    HUB_HTTP_QUERY_SCAN_MAX, &items, next, &err);
    hub_query_free(q);
    if (rc != 0) {
        if (err.code == HUB_E_INVALID_ARG)
            hub_http__reply_error(r, 400, "ArgumentInvalid", "BAD_CONTINUATION", "%s", err.msg);
        else
            hub_http__reply_hub_err(r, &err, "DeviceNotFound", "DeviceAlreadyExists");
        return;
    }
    struct evkeyvalq *headers = evhttp_request_get_output_headers(r->req);
    evhttp_add_header(headers, "x-ms-item-type", "Twin");
    /* Node decides hasMoreResults by the header's mere presence. */
    if (next[0] != '\0')
        evhttp_add_header(headers, "x-ms-continuation", next);
    hub_http__reply_json(r, 200, items);
}

int hub_http__route_devices(struct hub_http_request *r)
{
    if (r->segment_count < 1 || strcmp(r->segments[0], "devices") != 0)
        return 0;
    if (r->segment_count == 1) {
        if (r->method != EVHTTP_REQ_GET)
            goto not_allowed;
        if (hub_http__authorize(r, HUB_AUTH_PERM_REGISTRY_READ) == 0)
            device_list(r);
        return 1;
    }
    if (r->segment_count == 2 && strcmp(r->segments[1], "query") == 0 &&
        r->method == EVHTTP_REQ_POST) {
        /* Azure lets ServiceConnect run queries too. */
        if (hub_http__authorize_any(r, HUB_AUTH_PERM_REGISTRY_READ |
                                           HUB_AUTH_PERM_SERVICE_CONNECT) == 0)
            device_query(r);
        return 1;
    }
    if (r->segment_count != 2)
        return 0;
    const char *id = r->segments[1];
    switch (r->method) {
    case EVHTTP_REQ_GET:
        if (hub_http__authorize(r, HUB_AUTH_PERM_REGISTRY_READ) == 0)
            device_get(r, id);
        return 1;
    case EVHTTP_REQ_PUT:
        if (hub_http__authorize(r, HUB_AUTH_PERM_REGISTRY_WRITE) == 0)
            device_put(r, id);
        return 1;
    case EVHTTP_REQ_DELETE:
        if (hub_http__authorize(r, HUB_AUTH_PERM_REGISTRY_WRITE) == 0)
            device_delete(r, id);
        return 1;
    default:
        break;
    }
not_allowed:
    hub_http__reply_error(r, 405, "MethodNotAllowed", "BAD_METHOD", "%s is not allowed on %s",
                          r->method_name, r->path);
    return 1;
}
