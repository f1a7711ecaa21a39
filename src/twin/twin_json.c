/*
 * twin: the JSON shapes Azure puts on the wire and the text the store keeps
 * (contract in twin.h; shapes from shared/reference/azure-iot-hub-protocol.md
 * §2 "Twin" and §4 "Twin").
 *
 * Insertion order is kept by jansson, so the service document's fields come
 * out in Azure's order (deviceId, etag, deviceEtag, status, ...), which
 * makes captures easy to compare by eye; no client depends on it.
 */
#include "twin/twin_int.h"

#include <stdlib.h>
#include <string.h>

#include "common/util.h"

/* Azure's spellings of the device fields. Kept here rather than calling the
 * store's helpers so that the twin layer links without the store. */
static const char *status_name(enum hub_device_status s)
{
    return s == HUB_DEVICE_DISABLED ? "disabled" : "enabled";
}

static const char *conn_name(enum hub_conn_state c)
{
    return c == HUB_CONN_CONNECTED ? "Connected" : "Disconnected";
}

static const char *auth_name(enum hub_auth_type t)
{
    switch (t) {
    case HUB_AUTH_SAS:
        return "sas";
    case HUB_AUTH_SELF_SIGNED:
        return "selfSigned";
    case HUB_AUTH_CERT_AUTHORITY:
        return "certificateAuthority";
    case HUB_AUTH_NONE:
        return "none";
    }
    return "none";
}

static json_t *string_or_null(const char *s)
{
    return s[0] != '\0' ? json_string(s) : json_null();
}

/* Azure shows "never" as 0001-01-01T00:00:00Z. */
static json_t *time_json(int64_t t)
{
    if (t == 0)
        return json_string("0001-01-01T00:00:00Z");
    char when[HUB_TIME_ISO_LEN];
    hub_time_iso8601((time_t)t, when);
    return json_string(when);
}

/* {...props, ["$metadata": meta,] "$version": version}: a new object. */
static json_t *section_json(const json_t *props, const json_t *meta, int64_t version)
{
    json_t *o = json_deep_copy(props);
    if (o == NULL)
        return NULL;
    if ((meta != NULL && json_object_set_new(o, "$metadata", json_deep_copy(meta)) != 0) ||
        json_object_set_new(o, "$version", json_integer((json_int_t)version)) != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

json_t *hub_twin_service_json_new(const struct hub_twin *twin, const struct hub_device *dev)
{
    json_t *desired = section_json(twin->desired, twin->desired_meta, twin->desired_version);
    json_t *reported = section_json(twin->reported, twin->reported_meta, twin->reported_version);
    json_t *tags = json_deep_copy(twin->tags);
    if (desired == NULL || reported == NULL || tags == NULL) {
        json_decref(desired);
        json_decref(reported);
        json_decref(tags);
        return NULL;
    }
    /* "o" steals each reference, also when json_pack fails. */
    json_t *j =
        json_pack("{s:s, s:s, s:s, s:s, s:o, s:o, s:s, s:o, s:I, s:s, s:{s:o, s:o}, s:s, s:I, s:o, "
                  "s:{s:o, s:o}, s:{s:b}}",
                  "deviceId", dev->id, "etag", twin->etag, "deviceEtag", dev->etag, "status",
                  status_name(dev->status), "statusReason", string_or_null(dev->status_reason),
                  "statusUpdateTime", time_json(dev->status_updated), "connectionState",
                  conn_name(dev->conn_state), "lastActivityTime", time_json(dev->last_activity),
                  "cloudToDeviceMessageCount", (json_int_t)dev->c2d_count, "authenticationType",
                  auth_name(dev->auth_type), "x509Thumbprint", "primaryThumbprint",
                  string_or_null(dev->primary_thumbprint), "secondaryThumbprint",
                  string_or_null(dev->secondary_thumbprint), "modelId", "", "version",
                  (json_int_t)twin->version, "tags", tags, "properties", "desired", desired,
                  "reported", reported, "capabilities", "iotEdge", dev->iot_edge ? 1 : 0);
    /* hubd's (issue 6), for queries such as
     * WHERE x509CertificateExpiry < '2027-01-01T00:00:00Z': ISO-8601 UTC
     * compares correctly as a string. null until the device connects with
     * a certificate (so it never matches a comparison). */
    if (j != NULL)
        json_object_set_new(j, "x509CertificateExpiry",
                            dev->x509_not_after != 0 ? time_json(dev->x509_not_after)
                                                     : json_null());
    return j;
}

json_t *hub_twin_device_json_new(const struct hub_twin *twin)
{
    json_t *desired = section_json(twin->desired, NULL, twin->desired_version);
    json_t *reported = section_json(twin->reported, NULL, twin->reported_version);
    if (desired == NULL || reported == NULL) {
        json_decref(desired);
        json_decref(reported);
        return NULL;
    }
    return json_pack("{s:o, s:o}", "desired", desired, "reported", reported);
}

json_t *hub_twin_desired_json_new(const struct hub_twin *twin)
{
    return section_json(twin->desired, NULL, twin->desired_version);
}

/* ---- storage text ----------------------------------------------------------- */

void hub_twin_text_clear(struct hub_twin_text *text)
{
    if (text == NULL)
        return;
    free(text->tags);
    free(text->desired);
    free(text->desired_meta);
    free(text->reported);
    free(text->reported_meta);
    memset(text, 0, sizeof(*text));
}

int hub_twin_encode(const struct hub_twin *twin, struct hub_twin_text *out, struct hub_err *err)
{
    memset(out, 0, sizeof(*out));
    /* Compact and in insertion order: the stored text is what the size
     * limits measured, and a reload keeps the order clients saw. */
    const size_t f = JSON_COMPACT;
    out->tags = json_dumps(twin->tags, f);
    out->desired = json_dumps(twin->desired, f);
    out->desired_meta = json_dumps(twin->desired_meta, f);
    out->reported = json_dumps(twin->reported, f);
    out->reported_meta = json_dumps(twin->reported_meta, f);
    if (out->tags == NULL || out->desired == NULL || out->desired_meta == NULL ||
        out->reported == NULL || out->reported_meta == NULL) {
        hub_twin_text_clear(out);
        return HUB_ERR(err, HUB_E_NOMEM, "out of memory encoding a twin");
    }
    return 0;
}

static json_t *decode_one(const char *text, const char *what, struct hub_err *err)
{
    if (text == NULL) {
        HUB_ERR(err, HUB_E_STORE, "stored twin has no %s", what);
        return NULL;
    }
    json_error_t jerr;
    json_t *v = json_loads(text, 0, &jerr);
    if (!json_is_object(v)) {
        json_decref(v);
        HUB_ERR(err, HUB_E_STORE, "stored twin %s is not a JSON object", what);
        return NULL;
    }
    return v;
}

int hub_twin_decode(struct hub_twin *twin, const char *tags, const char *desired,
                    const char *desired_meta, const char *reported, const char *reported_meta,
                    struct hub_err *err)
{
    json_t *v[5] = {NULL, NULL, NULL, NULL, NULL};
    const char *texts[5] = {tags, desired, desired_meta, reported, reported_meta};
    static const char *const names[5] = {"tags", "desired properties", "desired metadata",
                                         "reported properties", "reported metadata"};
    for (int i = 0; i < 5; i++) {
        v[i] = decode_one(texts[i], names[i], err);
        if (v[i] == NULL) {
            for (int j = 0; j < i; j++)
                json_decref(v[j]);
            return HUB_E_STORE;
        }
    }
    json_decref(twin->tags);
    json_decref(twin->desired);
    json_decref(twin->desired_meta);
    json_decref(twin->reported);
    json_decref(twin->reported_meta);
    twin->tags = v[0];
    twin->desired = v[1];
    twin->desired_meta = v[2];
    twin->reported = v[3];
    twin->reported_meta = v[4];
    return 0;
}
