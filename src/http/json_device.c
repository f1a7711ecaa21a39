/*
 * Device identity JSON, exactly as Azure's service API shapes it
 * (shared/reference/azure-iot-hub-protocol.md §4, "Device identity JSON"):
 *
 *   {"deviceId","generationId","etag","connectionState","status",
 *    "statusReason","connectionStateUpdatedTime","statusUpdatedTime",
 *    "lastActivityTime","cloudToDeviceMessageCount",
 *    "authentication":{"symmetricKey":{"primaryKey","secondaryKey"},
 *                      "x509Thumbprint":{"primaryThumbprint","secondaryThumbprint"},
 *                      "type"},
 *    "capabilities":{"iotEdge"}}
 *
 * Absent strings are null; "never" times are 0001-01-01T00:00:00Z. Pure.
 *
 * Also the one check on a twin PATCH body that the twin layer does not make
 * (routes_twins.c says why): a service may not write reported properties.
 * The twin JSON itself is the twin layer's (hub_twin_service_json_new).
 */
#include <stdio.h>
#include <string.h>

#include "common/util.h"
#include "http/json_map.h"

static json_t *string_or_null(const char *s)
{
    return s[0] != '\0' ? json_string(s) : json_null();
}

void hub_http__time_json(int64_t t, char out[HUB_TIME_ISO_LEN])
{
    if (t <= 0) {
        snprintf(out, HUB_TIME_ISO_LEN, "0001-01-01T00:00:00Z");
        return;
    }
    hub_time_iso8601((time_t)t, out);
}

static json_t *time_json(int64_t t)
{
    char buf[HUB_TIME_ISO_LEN];
    hub_http__time_json(t, buf);
    return json_string(buf);
}

json_t *hub_http__device_to_json(const struct hub_device *dev)
{
    json_t *keys = json_pack("{s:o, s:o}", "primaryKey", string_or_null(dev->primary_key),
                             "secondaryKey", string_or_null(dev->secondary_key));
    json_t *thumbs =
        json_pack("{s:o, s:o}", "primaryThumbprint", string_or_null(dev->primary_thumbprint),
                  "secondaryThumbprint", string_or_null(dev->secondary_thumbprint));
    json_t *auth = json_pack("{s:o, s:o, s:s}", "symmetricKey", keys, "x509Thumbprint", thumbs,
                             "type", hub_auth_type_name(dev->auth_type));
    json_t *j = json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:o, s:I, s:o, s:{s:b}}", "deviceId", dev->id,
        "generationId", dev->generation_id, "etag", dev->etag, "connectionState",
        hub_conn_state_name(dev->conn_state), "status", hub_device_status_name(dev->status),
        "statusReason", string_or_null(dev->status_reason), "connectionStateUpdatedTime",
        time_json(dev->conn_state_updated), "statusUpdatedTime", time_json(dev->status_updated),
        "lastActivityTime", time_json(dev->last_activity), "cloudToDeviceMessageCount",
        (json_int_t)dev->c2d_count, "authentication", auth, "capabilities", "iotEdge",
        dev->iot_edge ? 1 : 0);
    /* hubd's (issue 6): notAfter of the certificate the device last
     * connected with; null until it connects with one. */
    if (j != NULL)
        json_object_set_new(j, "x509CertificateExpiry",
                            dev->x509_not_after != 0 ? time_json(dev->x509_not_after)
                                                     : json_null());
    return j;
}

/* Copies an optional string member; null and absent leave out untouched.
 * Returns -1 (and fills why) on a wrong type or an over-long value. */
static int take_string(json_t *obj, const char *key, const char *where, char *out, size_t cap,
                       char *why, size_t why_cap)
{
    json_t *v = json_object_get(obj, key);
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_string(v)) {
        snprintf(why, why_cap, "%s%s must be a string", where, key);
        return -1;
    }
    if (json_string_length(v) + 1 > cap) {
        snprintf(why, why_cap, "%s%s is longer than %zu characters", where, key, cap - 1);
        return -1;
    }
    if (strlen(json_string_value(v)) != json_string_length(v)) {
        snprintf(why, why_cap, "%s%s contains a NUL character", where, key);
        return -1;
    }
    memcpy(out, json_string_value(v), json_string_length(v) + 1);
    return 0;
}

static int take_object(json_t *obj, const char *key, const char *where, json_t **out, char *why,
                       size_t why_cap)
{
    json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_object(v)) {
        snprintf(why, why_cap, "%s%s must be an object", where, key);
        return -1;
    }
    *out = v;
    return 0;
}

int hub_http__device_from_json(json_t *body, const char *path_id, struct hub_device *out, char *why,
                               size_t why_cap)
{
    memset(out, 0, sizeof(*out));
    char body_id[HUB_DEVICE_ID_SIZE] = "";
    if (take_string(body, "deviceId", "", body_id, sizeof(body_id), why, why_cap) != 0)
        return -1;
    if (body_id[0] != '\0' && strcmp(body_id, path_id) != 0) {
        snprintf(why, why_cap, "deviceId in the body (%s) differs from the id in the path (%s)",
                 body_id, path_id);
        return -1;
    }
    snprintf(out->id, sizeof(out->id), "%s", path_id);

    char status[16] = "enabled";
    if (take_string(body, "status", "", status, sizeof(status), why, why_cap) != 0)
        return -1;
    struct hub_err err = {0};
    if (hub_device_status_parse(status, &out->status, &err) != 0) {
        snprintf(why, why_cap, "status must be \"enabled\" or \"disabled\", not \"%s\"", status);
        return -1;
    }
    if (take_string(body, "statusReason", "", out->status_reason, sizeof(out->status_reason), why,
                    why_cap) != 0)
        return -1;

    json_t *auth = NULL, *keys = NULL, *thumbs = NULL, *caps = NULL;
    if (take_object(body, "authentication", "", &auth, why, why_cap) != 0 ||
        take_object(body, "capabilities", "", &caps, why, why_cap) != 0)
        return -1;
    out->auth_type = HUB_AUTH_SAS; /* Azure's default when authentication is absent */
    if (auth != NULL) {
        char type[32] = "";
        if (take_string(auth, "type", "authentication.", type, sizeof(type), why, why_cap) != 0 ||
            take_object(auth, "symmetricKey", "authentication.", &keys, why, why_cap) != 0 ||
            take_object(auth, "x509Thumbprint", "authentication.", &thumbs, why, why_cap) != 0)
            return -1;
        if (type[0] == '\0')
            snprintf(type, sizeof(type), "%s", thumbs != NULL ? "selfSigned" : "sas");
        if (hub_auth_type_parse(type, &out->auth_type, &err) != 0) {
            snprintf(why, why_cap,
                     "authentication.type must be sas, selfSigned, certificateAuthority or none, "
                     "not \"%s\"",
                     type);
            return -1;
        }
    }
    if (keys != NULL &&
        (take_string(keys, "primaryKey", "authentication.symmetricKey.", out->primary_key,
                     sizeof(out->primary_key), why, why_cap) != 0 ||
         take_string(keys, "secondaryKey", "authentication.symmetricKey.", out->secondary_key,
                     sizeof(out->secondary_key), why, why_cap) != 0))
        return -1;
    if (thumbs != NULL &&
        (take_string(thumbs, "primaryThumbprint", "authentication.x509Thumbprint.",
                     out->primary_thumbprint, sizeof(out->primary_thumbprint), why, why_cap) != 0 ||
         take_string(thumbs, "secondaryThumbprint", "authentication.x509Thumbprint.",
                     out->secondary_thumbprint, sizeof(out->secondary_thumbprint), why,
                     why_cap) != 0))
        return -1;
    if (caps != NULL) {
        json_t *edge = json_object_get(caps, "iotEdge");
        if (edge != NULL && !json_is_null(edge)) {
            if (!json_is_boolean(edge)) {
                snprintf(why, why_cap, "capabilities.iotEdge must be true or false");
                return -1;
            }
            out->iot_edge = json_is_true(edge);
        }
    }
    return 0;
}

int hub_http__twin_patch_has_reported(const char *body, size_t len)
{
    json_t *root = json_loadb(body, len, 0, NULL);
    json_t *reported = json_object_get(json_object_get(root, "properties"), "reported");
    int found = 0;
    const char *key;
    json_t *v;
    if (json_is_object(reported))
        json_object_foreach(reported, key, v)
        {
            /* $metadata and $version are what a GET answered: echoes, not writes */
            if (key[0] != '$') {
                found = 1;
                break;
            }
        }
    json_decref(root);
    return found;
}
