/*
 * registry: device identity rules (protocol reference §4).
 */
#include "registry/registry_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "common/util.h"

/* A fixed-size input field must be NUL-terminated within its array. */
static int field_check(const char *field, size_t cap, const char *what, struct hub_err *err)
{
    if (memchr(field, '\0', cap) == NULL)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "%s is too long", what);
    return 0;
}

static int generation_id_new(char out[HUB_GENERATION_ID_SIZE], struct hub_err *err)
{
    unsigned char raw[8];
    int rc = hub_random_bytes(raw, sizeof(raw), err);
    if (rc != 0)
        return rc;
    uint64_t v = 0;
    for (size_t i = 0; i < sizeof(raw); i++)
        v = v << 8 | raw[i];
    /* 63 bits, so the value also fits a signed 64-bit integer for clients
     * that parse it as a number. */
    snprintf(out, HUB_GENERATION_ID_SIZE, "%" PRIu64, v >> 1);
    return 0;
}

static int sas_key_new(char out[HUB_SAS_KEY_SIZE], struct hub_err *err)
{
    unsigned char raw[HUB_REGISTRY_SAS_KEY_BYTES];
    int rc = hub_random_bytes(raw, sizeof(raw), err);
    if (rc != 0)
        return rc;
    hub_base64_encode(raw, sizeof(raw), out);
    return 0;
}

static int sas_key_check(const char *key, const char *which, struct hub_err *err)
{
    unsigned char raw[HUB_REGISTRY_SAS_KEY_MAX_BYTES];
    int n = hub_base64_decode(key, strlen(key), raw, sizeof(raw), NULL);
    if (n < HUB_REGISTRY_SAS_KEY_MIN_BYTES)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "%s key must be base64 of %d to %d bytes", which,
                       HUB_REGISTRY_SAS_KEY_MIN_BYTES, HUB_REGISTRY_SAS_KEY_MAX_BYTES);
    return 0;
}

/* Checks a thumbprint and writes its uppercase form into out. */
static int thumbprint_normalize(const char *in, const char *which, char out[HUB_THUMBPRINT_SIZE],
                                struct hub_err *err)
{
    size_t n = strlen(in);
    if (n != 40 && n != 64)
        return HUB_ERR(err, HUB_E_INVALID_ARG,
                       "%s thumbprint must be 40 (SHA-1) or 64 (SHA-256) hex digits, not %zu",
                       which, n);
    for (size_t i = 0; i < n; i++) {
        char c = in[i];
        if (c >= 'a' && c <= 'f')
            c = (char)(c - 'a' + 'A');
        if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'F')))
            return HUB_ERR(err, HUB_E_INVALID_ARG, "%s thumbprint is not hex", which);
        out[i] = c;
    }
    out[n] = '\0';
    return 0;
}

/*
 * Copies and checks the caller-settable fields of `in` into `dev`. `prev` is
 * the stored record on update (NULL on create), for the keep-the-keys rule.
 */
static int apply_fields(struct hub_device *dev, const struct hub_device *in,
                        const struct hub_device *prev, struct hub_err *err)
{
    int rc;
    if ((rc = field_check(in->status_reason, sizeof(in->status_reason), "status reason", err)) ||
        (rc = field_check(in->primary_key, sizeof(in->primary_key), "primary key", err)) ||
        (rc = field_check(in->secondary_key, sizeof(in->secondary_key), "secondary key", err)) ||
        (rc = field_check(in->primary_thumbprint, sizeof(in->primary_thumbprint),
                          "primary thumbprint", err)) ||
        (rc = field_check(in->secondary_thumbprint, sizeof(in->secondary_thumbprint),
                          "secondary thumbprint", err)))
        return rc;
    if (in->status != HUB_DEVICE_ENABLED && in->status != HUB_DEVICE_DISABLED)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "unknown device status %d", (int)in->status);
    dev->status = in->status;
    memcpy(dev->status_reason, in->status_reason, sizeof(dev->status_reason));
    dev->iot_edge = in->iot_edge;
    if (prev != NULL && in->auth_type == HUB_AUTH_SAS && in->primary_key[0] == '\0' &&
        in->secondary_key[0] == '\0' && prev->auth_type != HUB_AUTH_SAS) {
        /* An update whose authentication is "sas with empty keys" is what the
         * Azure SDKs send when the caller left authentication out (e.g.
         * registry.update({deviceId, status})). Turning a certificate device
         * into a SAS device with fresh keys would be a surprise, and a
         * dangerous one: keep the existing authentication. */
        dev->auth_type = prev->auth_type;
        memcpy(dev->primary_key, prev->primary_key, sizeof(dev->primary_key));
        memcpy(dev->secondary_key, prev->secondary_key, sizeof(dev->secondary_key));
        memcpy(dev->primary_thumbprint, prev->primary_thumbprint, sizeof(dev->primary_thumbprint));
        memcpy(dev->secondary_thumbprint, prev->secondary_thumbprint,
               sizeof(dev->secondary_thumbprint));
        return 0;
    }
    dev->auth_type = in->auth_type;
    memset(dev->primary_key, 0, sizeof(dev->primary_key));
    memset(dev->secondary_key, 0, sizeof(dev->secondary_key));
    memset(dev->primary_thumbprint, 0, sizeof(dev->primary_thumbprint));
    memset(dev->secondary_thumbprint, 0, sizeof(dev->secondary_thumbprint));

    switch (in->auth_type) {
    case HUB_AUTH_SAS: {
        bool p_empty = in->primary_key[0] == '\0', s_empty = in->secondary_key[0] == '\0';
        if (p_empty && s_empty) {
            /* The SDKs send empty keys both on create ("generate them") and on
             * an update that did not mention authentication ("keep them"). */
            if (prev != NULL && prev->auth_type == HUB_AUTH_SAS && prev->primary_key[0] != '\0') {
                memcpy(dev->primary_key, prev->primary_key, sizeof(dev->primary_key));
                memcpy(dev->secondary_key, prev->secondary_key, sizeof(dev->secondary_key));
                return 0;
            }
            if ((rc = sas_key_new(dev->primary_key, err)) != 0 ||
                (rc = sas_key_new(dev->secondary_key, err)) != 0)
                return rc;
            return 0;
        }
        if (p_empty || s_empty)
            return HUB_ERR(err, HUB_E_INVALID_ARG,
                           "sas authentication needs both a primary and a secondary key");
        if ((rc = sas_key_check(in->primary_key, "primary", err)) != 0 ||
            (rc = sas_key_check(in->secondary_key, "secondary", err)) != 0)
            return rc;
        memcpy(dev->primary_key, in->primary_key, sizeof(dev->primary_key));
        memcpy(dev->secondary_key, in->secondary_key, sizeof(dev->secondary_key));
        return 0;
    }
    case HUB_AUTH_SELF_SIGNED:
        if (in->primary_thumbprint[0] == '\0')
            return HUB_ERR(err, HUB_E_INVALID_ARG,
                           "selfSigned authentication needs a primary thumbprint");
        if ((rc = thumbprint_normalize(in->primary_thumbprint, "primary", dev->primary_thumbprint,
                                       err)) != 0)
            return rc;
        if (in->secondary_thumbprint[0] != '\0' &&
            (rc = thumbprint_normalize(in->secondary_thumbprint, "secondary",
                                       dev->secondary_thumbprint, err)) != 0)
            return rc;
        return 0;
    case HUB_AUTH_CERT_AUTHORITY:
    case HUB_AUTH_NONE:
        return 0;
    }
    return HUB_ERR(err, HUB_E_INVALID_ARG, "unknown authentication type %d", (int)in->auth_type);
}

int hub_registry_device_create(struct hub_registry *reg, const struct hub_device *in,
                               struct hub_device *out, struct hub_err *err)
{
    int rc = field_check(in->id, sizeof(in->id), "device id", err);
    if (rc != 0 || (rc = hub_registry_device_id_check(in->id, err)) != 0)
        return rc;
    struct hub_device dev;
    memset(&dev, 0, sizeof(dev));
    memcpy(dev.id, in->id, sizeof(dev.id));
    if ((rc = apply_fields(&dev, in, NULL, err)) != 0)
        return rc;
    if ((rc = generation_id_new(dev.generation_id, err)) != 0 ||
        (rc = hub_registry__etag_new(NULL, dev.etag, err)) != 0)
        return rc;
    int64_t now = hub_registry__now(reg);
    dev.status_updated = now;
    dev.conn_state = HUB_CONN_DISCONNECTED;
    dev.created = now;
    dev.updated = now;
    if ((rc = hub_store_device_insert(reg->store, &dev, err)) != 0)
        return rc;
    if (out != NULL)
        *out = dev;
    return 0;
}

int hub_registry_device_update(struct hub_registry *reg, const struct hub_device *in,
                               const char *if_match, struct hub_device *out, struct hub_err *err)
{
    int rc = field_check(in->id, sizeof(in->id), "device id", err);
    if (rc != 0 || (rc = hub_registry_device_id_check(in->id, err)) != 0)
        return rc;
    struct hub_device prev;
    if ((rc = hub_store_device_get(reg->store, in->id, &prev, err)) != 0)
        return rc;
    const char *cond = hub_registry__if_match(if_match);
    if (cond != NULL && strcmp(cond, prev.etag) != 0)
        return HUB_ERR(err, HUB_E_ETAG_MISMATCH, "device '%s' has changed (etag %s)", prev.id,
                       prev.etag);
    struct hub_device dev = prev;
    if ((rc = apply_fields(&dev, in, &prev, err)) != 0)
        return rc;
    if ((rc = hub_registry__etag_new(prev.etag, dev.etag, err)) != 0)
        return rc;
    int64_t now = hub_registry__now(reg);
    if (dev.status != prev.status)
        dev.status_updated = now;
    dev.updated = now;
    /* The store compares against the etag read above, so a concurrent change
     * since our read fails instead of being overwritten. */
    if ((rc = hub_store_device_update(reg->store, &dev, prev.etag, err)) != 0)
        return rc;
    hub_registry__notify(reg,
                         dev.status == HUB_DEVICE_DISABLED ? HUB_REGISTRY_DEVICE_DISABLED
                                                           : HUB_REGISTRY_DEVICE_UPDATED,
                         dev.id);
    if (out != NULL)
        *out = dev;
    return 0;
}

int hub_registry_device_get(struct hub_registry *reg, const char *id, struct hub_device *out,
                            struct hub_err *err)
{
    int rc = hub_registry_device_id_check(id, err);
    if (rc != 0)
        return rc;
    return hub_store_device_get(reg->store, id, out, err);
}

int hub_registry_device_delete(struct hub_registry *reg, const char *id, const char *if_match,
                               struct hub_err *err)
{
    int rc = hub_registry_device_id_check(id, err);
    if (rc != 0)
        return rc;
    rc = hub_store_device_delete(reg->store, id, hub_registry__if_match(if_match), err);
    if (rc == 0)
        hub_registry__notify(reg, HUB_REGISTRY_DEVICE_DELETED, id);
    return rc;
}

int hub_registry_device_list1(struct hub_registry *reg, const struct hub_device_filter *filter,
                              struct hub_device_list **out_new, struct hub_err *err)
{
    struct hub_device_filter f;
    memset(&f, 0, sizeof(f));
    if (filter != NULL)
        f = *filter;
    if (f.limit == 0)
        f.limit = HUB_REGISTRY_LIST_MAX;
    if (f.limit > HUB_REGISTRY_LIST_MAX)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "at most %d devices per page",
                       HUB_REGISTRY_LIST_MAX);
    return hub_store_device_list1(reg->store, &f, out_new, err);
}

int hub_registry_device_conn_state_set(struct hub_registry *reg, const char *id,
                                       enum hub_conn_state state, struct hub_err *err)
{
    if (state != HUB_CONN_CONNECTED && state != HUB_CONN_DISCONNECTED)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "unknown connection state %d", (int)state);
    return hub_store_device_conn_state_set(reg->store, id, state, hub_registry__now(reg), err);
}

int hub_registry_device_activity_touch(struct hub_registry *reg, const char *id,
                                       struct hub_err *err)
{
    return hub_store_device_activity_touch(reg->store, id, hub_registry__now(reg), err);
}

int hub_registry_device_cert_expiry_set(struct hub_registry *reg, const char *id, int64_t not_after,
                                        int64_t known, struct hub_err *err)
{
    if (not_after == known)
        return 0;
    return hub_store_device_cert_expiry_set(reg->store, id, not_after, err);
}

int hub_registry_device_auth_lookup(struct hub_registry *reg, const char *id,
                                    struct hub_device *out, struct hub_err *err)
{
    int rc = hub_registry_device_get(reg, id, out, err);
    if (rc != 0)
        return rc;
    if (out->status != HUB_DEVICE_ENABLED)
        return HUB_ERR(err, HUB_E_FORBIDDEN, "device '%s' is disabled", out->id);
    return 0;
}
