/*
 * dps: assignment (create or update the device in the hub registry per the
 * enrollment's reprovisionPolicy, apply its initialTwin) and the
 * registration records (Azure's DeviceRegistrationState), stored as their
 * service API JSON.
 */
#include "dps/dps_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/util.h"

/* ---- registration JSON ------------------------------------------------------ */

json_t *hub_dps_registration_json_new(const struct hub_dps_registration *r)
{
    char c[HUB_TIME_ISO_LEN], u[HUB_TIME_ISO_LEN];
    hub_time_iso8601((time_t)r->created, c);
    hub_time_iso8601((time_t)r->updated, u);
    json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "registrationId", r->registration_id,
                          "createdDateTimeUtc", c, "assignedHub", r->assigned_hub, "deviceId",
                          r->device_id, "status", hub_dps_reg_status_name(r->status), "substatus",
                          hub_dps_substatus_name(r->substatus), "lastUpdatedDateTimeUtc", u, "etag",
                          r->etag);
    if (o == NULL)
        return NULL;
    json_t *att = json_object();
    if (r->enrollment_group_id[0])
        json_object_set_new(att, "enrollmentGroupId", json_string(r->enrollment_group_id));
    if (r->att_type == HUB_DPS_ATT_X509) {
        json_object_set_new(att, "certificateInfo",
                            json_pack("{s:s,s:s}", "subjectName", r->cert_subject, "sha1Thumbprint",
                                      r->cert_thumbprint));
        json_object_set_new(o, "x509", att);
    } else {
        json_object_set_new(o, "symmetricKey", att);
    }
    if (r->status == HUB_DPS_REG_FAILED) {
        json_object_set_new(o, "errorCode", json_integer(r->error_code));
        json_object_set_new(o, "errorMessage", json_string(r->error_message));
    }
    return o;
}

static void copy_str(json_t *o, const char *key, char *dst, size_t cap)
{
    const char *v = json_string_value(json_object_get(o, key));
    snprintf(dst, cap, "%s", v != NULL ? v : "");
}

int hub_dps__registration_parse(const char *json, struct hub_dps_registration *out,
                                struct hub_err *err)
{
    memset(out, 0, sizeof(*out));
    json_t *o = json_loads(json, 0, NULL);
    if (!json_is_object(o)) {
        json_decref(o);
        return HUB_ERR(err, HUB_E_STORE, "stored registration state is damaged");
    }
    copy_str(o, "registrationId", out->registration_id, sizeof(out->registration_id));
    copy_str(o, "deviceId", out->device_id, sizeof(out->device_id));
    copy_str(o, "assignedHub", out->assigned_hub, sizeof(out->assigned_hub));
    const char *s = json_string_value(json_object_get(o, "status"));
    for (int i = 0; s != NULL && i <= HUB_DPS_REG_DISABLED; i++)
        if (strcmp(s, hub_dps_reg_status_name((enum hub_dps_reg_status)i)) == 0)
            out->status = (enum hub_dps_reg_status)i;
    s = json_string_value(json_object_get(o, "substatus"));
    for (int i = 0; s != NULL && i <= HUB_DPS_SUB_REPROVISIONED_TO_INITIAL; i++)
        if (strcmp(s, hub_dps_substatus_name((enum hub_dps_substatus)i)) == 0)
            out->substatus = (enum hub_dps_substatus)i;
    json_t *att = json_object_get(o, "x509");
    out->att_type = att != NULL ? HUB_DPS_ATT_X509 : HUB_DPS_ATT_SYMMETRIC_KEY;
    if (att == NULL)
        att = json_object_get(o, "symmetricKey");
    copy_str(att, "enrollmentGroupId", out->enrollment_group_id, sizeof(out->enrollment_group_id));
    json_t *ci = json_object_get(att, "certificateInfo");
    copy_str(ci, "subjectName", out->cert_subject, sizeof(out->cert_subject));
    copy_str(ci, "sha1Thumbprint", out->cert_thumbprint, sizeof(out->cert_thumbprint));
    out->error_code = (int)json_integer_value(json_object_get(o, "errorCode"));
    copy_str(o, "errorMessage", out->error_message, sizeof(out->error_message));
    json_decref(o);
    return 0;
}

static int from_rec(const struct hub_dps_rec *rec, struct hub_dps_registration *out,
                    struct hub_err *err)
{
    int rc = hub_dps__registration_parse(rec->body, out, err);
    if (rc != 0)
        return rc;
    snprintf(out->etag, sizeof(out->etag), "%s", rec->etag);
    out->created = rec->created;
    out->updated = rec->updated;
    return 0;
}

static int reg_write(struct hub_dps *dps, const struct hub_dps_registration *r, struct hub_err *err)
{
    json_t *doc = hub_dps_registration_json_new(r);
    char *body = doc != NULL ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (body == NULL)
        return HUB_ERR(err, HUB_E_NOMEM, "out of memory");
    struct hub_dps_rec rec = {0};
    snprintf(rec.id, sizeof(rec.id), "%s", r->registration_id);
    snprintf(rec.etag, sizeof(rec.etag), "%s", r->etag);
    snprintf(rec.group_id, sizeof(rec.group_id), "%s", r->enrollment_group_id);
    rec.body = body;
    rec.created = r->created;
    rec.updated = r->updated;
    int rc = hub_store_dps_put(dps->store, HUB_STORE_DPS_REGISTRATIONS, &rec, NULL, false, err);
    free(body);
    return rc;
}

int hub_dps_registration_get(struct hub_dps *dps, const char *registration_id,
                             struct hub_dps_registration *out, struct hub_err *err)
{
    memset(out, 0, sizeof(*out));
    int rc = hub_dps_id_check(registration_id, err);
    if (rc != 0)
        return rc;
    struct hub_dps_rec rec;
    if ((rc = hub_store_dps_get(dps->store, HUB_STORE_DPS_REGISTRATIONS, registration_id, &rec,
                                err)) != 0)
        return rc;
    rc = from_rec(&rec, out, err);
    hub_dps_rec_clear(&rec);
    return rc;
}

int hub_dps_registration_delete(struct hub_dps *dps, const char *registration_id,
                                const char *if_match, struct hub_err *err)
{
    int rc = hub_dps_id_check(registration_id, err);
    if (rc != 0)
        return rc;
    bool any = if_match == NULL || if_match[0] == '\0' || strcmp(if_match, "*") == 0;
    return hub_store_dps_delete(dps->store, HUB_STORE_DPS_REGISTRATIONS, registration_id,
                                any ? NULL : if_match, err);
}

int hub_dps_registration_list1(struct hub_dps *dps, const char *group_id,
                               struct hub_dps_registration_list **out_new, struct hub_err *err)
{
    *out_new = NULL;
    struct hub_dps_rec_list *recs = NULL;
    int rc = hub_store_dps_list1(dps->store, HUB_STORE_DPS_REGISTRATIONS, group_id, &recs, err);
    if (rc != 0)
        return rc;
    struct hub_dps_registration_list *l = calloc(1, sizeof(*l));
    if (l == NULL || (recs->count && (l->items = calloc(recs->count, sizeof(*l->items))) == NULL)) {
        free(l);
        hub_dps_rec_list_free(recs);
        return HUB_ERR(err, HUB_E_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < recs->count && rc == 0; i++)
        if ((rc = from_rec(&recs->items[i], &l->items[i], err)) == 0)
            l->count++;
    hub_dps_rec_list_free(recs);
    if (rc != 0) {
        hub_dps_registration_list_free(l);
        return rc;
    }
    *out_new = l;
    return 0;
}

/* ---- assignment -------------------------------------------------------------- */

/* The enrollment's view of the device identity. */
static void device_fields(const struct hub_dps_match *m, struct hub_device *d)
{
    const struct hub_dps_enrollment *e = &m->enrollment;
    snprintf(d->id, sizeof(d->id), "%s", m->device_id);
    d->iot_edge = e->iot_edge;
    d->primary_thumbprint[0] = d->secondary_thumbprint[0] = '\0';
    if (e->att_type == HUB_DPS_ATT_X509 && m->pinned) {
        /* No CA vouches for the certificate: the hub must pin it too, as
         * for a selfSigned device created by hand (dps.h, rule 1a). */
        d->auth_type = HUB_AUTH_SELF_SIGNED;
        d->primary_key[0] = d->secondary_key[0] = '\0';
        snprintf(d->primary_thumbprint, sizeof(d->primary_thumbprint), "%s",
                 m->device_thumbprint[0]);
        snprintf(d->secondary_thumbprint, sizeof(d->secondary_thumbprint), "%s",
                 m->device_thumbprint[1]);
    } else if (e->att_type == HUB_DPS_ATT_X509) {
        d->auth_type = HUB_AUTH_CERT_AUTHORITY;
        d->primary_key[0] = d->secondary_key[0] = '\0';
    } else {
        d->auth_type = HUB_AUTH_SAS;
        snprintf(d->primary_key, sizeof(d->primary_key), "%s", m->device_primary_key);
        snprintf(d->secondary_key, sizeof(d->secondary_key), "%s", m->device_secondary_key);
    }
}

static bool same_text(const char *a, const char *b)
{
    return hub_ct_equal(a, strlen(a), b, strlen(b));
}

/* 1 when `cur` already holds exactly the credentials `want` would give it
 * (certificateAuthority needs none of its own; keys and thumbprints in
 * either slot order). */
static bool same_credentials(const struct hub_device *cur, const struct hub_device *want)
{
    if (cur->auth_type != want->auth_type)
        return false;
    switch (want->auth_type) {
    case HUB_AUTH_CERT_AUTHORITY:
        return true;
    case HUB_AUTH_SAS:
        return (same_text(cur->primary_key, want->primary_key) &&
                same_text(cur->secondary_key, want->secondary_key)) ||
               (same_text(cur->primary_key, want->secondary_key) &&
                same_text(cur->secondary_key, want->primary_key));
    case HUB_AUTH_SELF_SIGNED:
        return (strcasecmp(cur->primary_thumbprint, want->primary_thumbprint) == 0 &&
                strcasecmp(cur->secondary_thumbprint, want->secondary_thumbprint) == 0) ||
               (strcasecmp(cur->primary_thumbprint, want->secondary_thumbprint) == 0 &&
                strcasecmp(cur->secondary_thumbprint, want->primary_thumbprint) == 0);
    default:
        return false;
    }
}

static int twin_apply(struct hub_dps *dps, const struct hub_dps_match *m, struct hub_err *err)
{
    const char *t = m->enrollment.initial_twin_json;
    if (t == NULL)
        return 0;
    return hub_registry_twin_replace(dps->reg, m->device_id, t, strlen(t), NULL, NULL, NULL, err);
}

static int assign_locked(struct hub_dps *dps, const char *registration_id,
                         const struct hub_dps_match *m, struct hub_dps_registration *out,
                         struct hub_err *err)
{
    struct hub_dps_registration prev;
    int rc = hub_dps_registration_get(dps, registration_id, &prev, err);
    if (rc != 0 && rc != HUB_E_NOT_FOUND)
        return rc;
    bool reregistration =
        rc == 0 && prev.status == HUB_DPS_REG_ASSIGNED && strcmp(prev.device_id, m->device_id) == 0;
    int64_t now = hub_dps__now(dps);

    struct hub_device cur, in = {0}, stored;
    rc = hub_registry_device_get(dps->reg, m->device_id, &cur, err);
    if (rc != 0 && rc != HUB_E_NOT_FOUND)
        return rc;
    bool exists = rc == 0;
    enum hub_dps_substatus sub = HUB_DPS_SUB_INITIAL_ASSIGNMENT;
    if (!exists) {
        in.status = HUB_DEVICE_ENABLED;
        device_fields(m, &in);
        if ((rc = hub_registry_device_create(dps->reg, &in, &stored, err)) != 0)
            return rc;
        if ((rc = twin_apply(dps, m, err)) != 0) {
            /* All or nothing: a device left without its initial twin would
             * be taken as provisioned by the next attempt. */
            hub_registry_device_delete(dps->reg, m->device_id, NULL, NULL);
            return rc;
        }
    } else if (reregistration && !m->enrollment.update_hub_assignment) {
        /* Sent back to the hub it was first assigned to, unchanged (Azure's
         * "never reprovision"): nothing changes in the registry. */
        sub = HUB_DPS_SUB_REPROVISIONED_TO_INITIAL;
    } else {
        in = cur;
        device_fields(m, &in);
        /* A device this registration id did not provision (created by hand,
         * or through another registration id's enrollment) is never taken
         * over: holding a group key or a CA-signed certificate with its id
         * must not rewrite another device's credentials. Only when it holds
         * the very credentials this registration gives it (a record deleted
         * by the operator, then the same device registering again) is it
         * this device's. */
        if (!reregistration && !same_credentials(&cur, &in))
            return HUB_ERR(err, HUB_E_EXISTS,
                           "device '%s' already exists in the hub with other credentials and was "
                           "not provisioned through registration id '%s'; delete it or change "
                           "its credentials to register it",
                           m->device_id, registration_id);
        if ((rc = hub_registry_device_update(dps->reg, &in, NULL, &stored, err)) != 0)
            return rc;
        if (reregistration) {
            if (m->enrollment.migrate_device_data) {
                sub = HUB_DPS_SUB_DEVICE_DATA_MIGRATED;
            } else {
                sub = HUB_DPS_SUB_DEVICE_DATA_RESET;
                if ((rc = twin_apply(dps, m, err)) != 0)
                    return rc;
            }
        }
    }

    struct hub_dps_registration r = {0};
    snprintf(r.registration_id, sizeof(r.registration_id), "%s", registration_id);
    snprintf(r.device_id, sizeof(r.device_id), "%s", m->device_id);
    snprintf(r.assigned_hub, sizeof(r.assigned_hub), "%s", dps->assigned_hub);
    r.status = HUB_DPS_REG_ASSIGNED;
    r.substatus = sub;
    r.att_type = m->enrollment.att_type;
    if (m->enrollment.kind == HUB_DPS_GROUP)
        snprintf(r.enrollment_group_id, sizeof(r.enrollment_group_id), "%s", m->enrollment.id);
    snprintf(r.cert_subject, sizeof(r.cert_subject), "%s", m->cert_subject);
    snprintf(r.cert_thumbprint, sizeof(r.cert_thumbprint), "%s", m->cert_thumbprint);
    r.created = prev.created != 0 ? prev.created : now;
    r.updated = now;
    if ((rc = hub_dps__etag_new(r.etag, err)) != 0)
        return rc;
    if ((rc = reg_write(dps, &r, err)) != 0)
        return rc;
    *out = r;
    return 0;
}

int hub_dps_assign(struct hub_dps *dps, const char *registration_id,
                   const struct hub_dps_match *match, struct hub_dps_registration *out,
                   struct hub_err *err)
{
    memset(out, 0, sizeof(*out));
    if (match == NULL || match->refusal != HUB_DPS_REFUSAL_NONE || match->device_id[0] == '\0')
        return HUB_ERR(err, HUB_E_INVALID_ARG, "assignment needs an accepted match");
    int rc = hub_dps_id_check(registration_id, err);
    if (rc != 0)
        return rc;
    pthread_mutex_lock(&dps->assign_mu);
    rc = assign_locked(dps, registration_id, match, out, err);
    if (rc != 0) {
        /* Best effort: the operator sees why in GET /registrations/{id}. */
        struct hub_dps_registration f = {0};
        struct hub_dps_registration prev;
        bool had = hub_dps_registration_get(dps, registration_id, &prev, NULL) == 0;
        snprintf(f.registration_id, sizeof(f.registration_id), "%s", registration_id);
        snprintf(f.device_id, sizeof(f.device_id), "%s", match->device_id);
        f.status = HUB_DPS_REG_FAILED;
        f.att_type = match->enrollment.att_type;
        if (match->enrollment.kind == HUB_DPS_GROUP)
            snprintf(f.enrollment_group_id, sizeof(f.enrollment_group_id), "%s",
                     match->enrollment.id);
        /* 409: a device of that id that is not this registration's;
         * 500: Azure's generic server-side failure class. */
        f.error_code = rc == HUB_E_EXISTS ? 409 : 500;
        snprintf(f.error_message, sizeof(f.error_message), "%s", err != NULL ? err->msg : "");
        f.updated = hub_dps__now(dps);
        f.created = had ? prev.created : f.updated;
        if (hub_dps__etag_new(f.etag, NULL) == 0)
            reg_write(dps, &f, NULL);
    }
    pthread_mutex_unlock(&dps->assign_mu);
    return rc;
}
