/*
 * The pure parsers of the HTTPS transports: no evhttp request, no registry,
 * no I/O; what routes_device_transport.c and routes_messages.c read from a
 * request before anything is authenticated or stored. Linked as is by
 * fuzz/http_path (so nothing here may call another layer's I/O).
 *
 * Device transport (reference §3, azure-iot-device-http):
 *
 * | request                                                | operation        |
 * |--------------------------------------------------------|------------------|
 * | POST   /devices/{id}/messages/events                   | TELEMETRY        |
 * | GET    /devices/{id}/messages/deviceBound              | RECEIVE          |
 * | DELETE /devices/{id}/messages/deviceBound/{lock}       | COMPLETE         |
 * | DELETE /devices/{id}/messages/deviceBound/{lock}?reject | REJECT          |
 * | POST   /devices/{id}/messages/deviceBound/{lock}/abandon | ABANDON        |
 *
 * Header -> property mapping (names case-insensitive):
 *   iothub-app-{name}        application property {name} (name as sent)
 *   IoTHub-MessageId         messageId        IoTHub-CorrelationId   correlationId
 *   IoTHub-UserId            userId           IoTHub-To              to
 *   IoTHub-Expiry            expiryTimeUtc    iothub-contenttype     contentType
 *   iothub-contentencoding   contentEncoding  iothub-interface-id    interfaceId
 *   dt-subject               component (Node sends it without the app prefix)
 * A batch element is {"body": base64, "properties": {name: string}}, the
 * names mapped the same way.
 *
 * Times (IoTHub-Expiry, iothub-enqueuedtime): ISO-8601 UTC,
 * "2026-01-01T00:00:00Z", optionally with a fraction of a second, "+00:00"
 * accepted for "Z"; written back as "2026-01-01T00:00:00.000Z".
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/util.h"
#include "http/http_int.h"

/* ---- routing ------------------------------------------------------------- */

enum hub_http_dt_op hub_http__dt_classify(enum evhttp_cmd_type method,
                                          char (*s)[HUB_HTTP_SEGMENT_MAX], size_t n,
                                          bool has_reject, const char **lock_out)
{
    *lock_out = NULL;
    if (n < 4 || strcmp(s[0], "devices") != 0 || strcmp(s[2], "messages") != 0)
        return HUB_HTTP_DT_NONE;
    if (n == 4 && strcmp(s[3], "events") == 0)
        return method == EVHTTP_REQ_POST ? HUB_HTTP_DT_TELEMETRY : HUB_HTTP_DT_NONE;
    if (strcasecmp(s[3], "deviceBound") != 0)
        return HUB_HTTP_DT_NONE;
    if (n == 4) /* POST here is the service's C2D send */
        return method == EVHTTP_REQ_GET ? HUB_HTTP_DT_RECEIVE : HUB_HTTP_DT_NONE;
    if (n == 5 && method == EVHTTP_REQ_DELETE) {
        *lock_out = s[4];
        return has_reject ? HUB_HTTP_DT_REJECT : HUB_HTTP_DT_COMPLETE;
    }
    if (n == 6 && method == EVHTTP_REQ_POST && strcmp(s[5], "abandon") == 0) {
        *lock_out = s[4];
        return HUB_HTTP_DT_ABANDON;
    }
    return HUB_HTTP_DT_NONE;
}

/* ---- header / batch property -> message property ------------------------- */

const struct hub_http_dt_sys_header hub_http__dt_sys_headers[] = {
    {"IoTHub-MessageId", HUB_SYSPROP_MESSAGE_ID},
    {"IoTHub-CorrelationId", HUB_SYSPROP_CORRELATION_ID},
    {"IoTHub-UserId", HUB_SYSPROP_USER_ID},
    {"IoTHub-To", HUB_SYSPROP_TO},
    {"IoTHub-Expiry", HUB_SYSPROP_EXPIRY},
    {"iothub-contenttype", HUB_SYSPROP_CONTENT_TYPE},
    {"iothub-contentencoding", HUB_SYSPROP_CONTENT_ENCODING},
    {"iothub-interface-id", HUB_SYSPROP_INTERFACE_ID},
    {"dt-subject", HUB_SYSPROP_COMPONENT},
};
const size_t hub_http__dt_sys_header_count =
    sizeof(hub_http__dt_sys_headers) / sizeof(hub_http__dt_sys_headers[0]);

int hub_http__dt_props_add(struct hub_http_dt_props *p, const char *name, const char *value)
{
    size_t plen = strlen(HUB_HTTP_APP_PREFIX);
    if (strncasecmp(name, HUB_HTTP_APP_PREFIX, plen) == 0) {
        if (p->app_count == HUB_HTTP_APP_MAX)
            return -1;
        /* An empty name stays empty: the store refuses it (400). */
        p->app[p->app_count].key = name + plen;
        p->app[p->app_count].value = value;
        p->app_count++;
        return 0;
    }
    for (size_t i = 0; i < hub_http__dt_sys_header_count; i++) {
        if (strcasecmp(name, hub_http__dt_sys_headers[i].name) == 0) {
            if (p->sys[hub_http__dt_sys_headers[i].sys] == NULL)
                p->sys[hub_http__dt_sys_headers[i].sys] = value;
            return 0;
        }
    }
    return 0;
}

void hub_http__dt_msg_build(const struct hub_http_dt_props *p, const char *device_id,
                            const char *auth_method_json, const unsigned char *body,
                            size_t body_len, struct hub_telemetry_msg *msg)
{
    memset(msg, 0, sizeof(*msg));
    snprintf(msg->device_id, sizeof(msg->device_id), "%s", device_id);
    msg->body = body;
    msg->body_len = body_len;
    memcpy(msg->sys, p->sys, sizeof(msg->sys));
    msg->sys[HUB_SYSPROP_CONN_DEVICE_ID] = msg->device_id;
    msg->sys[HUB_SYSPROP_CONN_AUTH_METHOD] = auth_method_json;
    msg->app = p->app;
    msg->app_count = p->app_count;
}

int hub_http__dt_batch_elem(json_t *elem, struct hub_http_dt_props *p, unsigned char **body_new,
                            size_t *body_len, char *why, size_t why_cap)
{
    memset(p, 0, sizeof(*p));
    *body_new = NULL;
    *body_len = 0;
    if (!json_is_object(elem)) {
        snprintf(why, why_cap, "is not an object");
        return -1;
    }
    json_t *b = json_object_get(elem, "body");
    if (b != NULL && !json_is_string(b)) {
        snprintf(why, why_cap, "has a body that is not a base64 string");
        return -1;
    }
    json_t *props = json_object_get(elem, "properties");
    if (props != NULL && !json_is_object(props)) {
        snprintf(why, why_cap, "has properties that are not an object");
        return -1;
    }
    const char *key;
    json_t *val;
    json_object_foreach(props, key, val)
    {
        if (!json_is_string(val)) {
            snprintf(why, why_cap, "property '%.64s' is not a string", key);
            return -1;
        }
        if (hub_http__dt_props_add(p, key, json_string_value(val)) != 0) {
            snprintf(why, why_cap, "has more than %d application properties", HUB_HTTP_APP_MAX);
            return -1;
        }
    }
    if (b == NULL || json_string_length(b) == 0)
        return 0;
    size_t cap = json_string_length(b) / 4 * 3 + 3;
    unsigned char *out = malloc(cap);
    if (out == NULL) {
        snprintf(why, why_cap, "out of memory");
        return -1;
    }
    struct hub_err err = {0};
    int n = hub_base64_decode(json_string_value(b), json_string_length(b), out, cap, &err);
    if (n < 0) {
        free(out);
        snprintf(why, why_cap, "body is not base64: %.100s", err.msg);
        return -1;
    }
    *body_new = out;
    *body_len = (size_t)n;
    return 0;
}

/* ---- times --------------------------------------------------------------- */

int64_t hub_http__iso_ms_parse(const char *s)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    const char *rest = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (rest == NULL)
        return -1;
    int64_t ms = 0;
    if (*rest == '.') {
        rest++;
        int digits = 0;
        while (*rest >= '0' && *rest <= '9') {
            if (digits < 3)
                ms = ms * 10 + (*rest - '0');
            digits++;
            rest++;
        }
        for (; digits < 3; digits++)
            ms *= 10;
    }
    if (strcmp(rest, "Z") != 0 && strcmp(rest, "+00:00") != 0)
        return -1;
    return (int64_t)timegm(&tm) * 1000 + ms;
}

void hub_http__iso_ms_format(int64_t ms, char out[HUB_HTTP_ISO_MS_SIZE])
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    memset(&tm, 0, sizeof(tm)); /* gmtime_r fails only past year 2^31: no UB then */
    gmtime_r(&secs, &tm);
    size_t n = strftime(out, HUB_HTTP_ISO_MS_SIZE, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, HUB_HTTP_ISO_MS_SIZE - n, ".%03dZ", (int)(ms % 1000));
}
