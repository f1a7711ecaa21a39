/*
 * dps: the service object, enrollment records and their service API JSON
 * (Azure provisioning service 2021-10-01; reference §7).
 *
 * EnrollmentGroup / IndividualEnrollment JSON handled here:
 *
 *   enrollmentGroupId | registrationId (+ deviceId)      the id
 *   attestation.type                 "x509" | "symmetricKey" (tpm refused)
 *   attestation.x509.signingCertificates.{primary,secondary}.certificate   group
 *   attestation.x509.caReferences.{primary,secondary}                       group
 *   attestation.x509.clientCertificates.{primary,secondary}.certificate     individual
 *     or .info.{sha1Thumbprint|sha256Thumbprint}                            individual
 *   attestation.symmetricKey.{primaryKey,secondaryKey}   generated when both empty
 *   provisioningStatus               "enabled" (default) | "disabled"
 *   initialTwin                      {tags?, properties?: {desired?}}
 *   reprovisionPolicy                {updateHubAssignment, migrateDeviceData} (default true)
 *   capabilities.iotEdge, allocationPolicy, iotHubHostName/iotHubs (answered with this hub)
 *
 * Answers carry certificate "info" (subject, thumbprints, validity) instead
 * of the certificate, as Azure does; a PUT that sends back only the info
 * (GET, change, PUT) keeps the stored certificate.
 *
 * Stored form: the same JSON with the certificates included
 * (enrollment_json(..., internal=true)); the store keeps it opaque.
 */
#include "dps/dps_int.h"

#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/auth.h"
#include "common/util.h"
#include "pki/pki.h"
#include "twin/twin.h"

static int64_t clock_now(void *ctx)
{
    (void)ctx;
    return (int64_t)time(NULL);
}

int64_t hub_dps__now(const struct hub_dps *dps)
{
    return dps->now(dps->now_ctx);
}

int hub_dps__etag_new(char out[HUB_ETAG_SIZE], struct hub_err *err)
{
    unsigned char b[8];
    int rc = hub_random_bytes(b, sizeof(b), err);
    if (rc != 0)
        return rc;
    hub_base64_encode(b, sizeof(b), out);
    return 0;
}

int hub_dps_new(struct hub_store *store, struct hub_registry *reg, const struct hub_dps_opts *opts,
                struct hub_dps **out_new, struct hub_err *err)
{
    *out_new = NULL;
    if (store == NULL || reg == NULL || opts == NULL || opts->id_scope == NULL ||
        opts->assigned_hub == NULL || opts->id_scope[0] == '\0' || opts->assigned_hub[0] == '\0')
        return HUB_ERR(err, HUB_E_INVALID_ARG,
                       "dps needs a store, a registry, an ID scope and "
                       "the assigned hub's host name");
    if (strlen(opts->id_scope) >= HUB_DPS_ID_SCOPE_SIZE ||
        strlen(opts->assigned_hub) >= HUB_DPS_HOST_SIZE)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "ID scope or hub host name too long");
    struct hub_dps *d = calloc(1, sizeof(*d));
    if (d == NULL)
        return HUB_ERR(err, HUB_E_NOMEM, "out of memory");
    d->store = store;
    d->reg = reg;
    snprintf(d->id_scope, sizeof(d->id_scope), "%s", opts->id_scope);
    snprintf(d->assigned_hub, sizeof(d->assigned_hub), "%s", opts->assigned_hub);
    d->now = opts->now != NULL ? opts->now : clock_now;
    d->now_ctx = opts->now_ctx;
    pthread_mutex_init(&d->assign_mu, NULL);
    *out_new = d;
    return 0;
}

void hub_dps_free(struct hub_dps *dps)
{
    if (dps == NULL)
        return;
    pthread_mutex_destroy(&dps->assign_mu);
    free(dps);
}

const char *hub_dps_id_scope(const struct hub_dps *dps)
{
    return dps->id_scope;
}

const char *hub_dps_assigned_hub(const struct hub_dps *dps)
{
    return dps->assigned_hub;
}

int hub_dps_id_scope_generate(char out[HUB_DPS_ID_SCOPE_SIZE], struct hub_err *err)
{
    /* Azure's scopes look like "0ne" + 8 hex digits (reference §7). */
    char hex[9];
    int rc = hub_random_hex(4, hex, err);
    if (rc != 0)
        return rc;
    for (char *p = hex; *p; p++)
        if (*p >= 'a' && *p <= 'f')
            *p = (char)(*p - 'a' + 'A');
    snprintf(out, HUB_DPS_ID_SCOPE_SIZE, "0ne%s", hex);
    return 0;
}

int hub_dps_id_check(const char *id, struct hub_err *err)
{
    if (id == NULL || id[0] == '\0')
        return HUB_ERR(err, HUB_E_INVALID_ARG, "id is empty");
    size_t n = strlen(id);
    if (n > HUB_DPS_ID_MAX)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "id longer than %d characters", HUB_DPS_ID_MAX);
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_'))
            return HUB_ERR(err, HUB_E_INVALID_ARG,
                           "id may hold only a-z 0-9 - . _ (character %zu is not allowed)", i + 1);
    }
    return 0;
}

/* ---- names ------------------------------------------------------------------ */

static const char *const REG_STATUS[] = {"unassigned", "assigning", "assigned", "failed",
                                         "disabled"};
static const char *const SUBSTATUS[] = {"initialAssignment", "deviceDataMigrated",
                                        "deviceDataReset", "reprovisionedToInitialAssignment"};

const char *hub_dps_reg_status_name(enum hub_dps_reg_status s)
{
    return (unsigned)s < 5 ? REG_STATUS[s] : "unknown";
}

const char *hub_dps_substatus_name(enum hub_dps_substatus s)
{
    return (unsigned)s < 4 ? SUBSTATUS[s] : "unknown";
}

const char *hub_dps_att_type_name(enum hub_dps_att_type t)
{
    return t == HUB_DPS_ATT_X509            ? "x509"
           : t == HUB_DPS_ATT_SYMMETRIC_KEY ? "symmetricKey"
                                            : "unknown";
}

const char *hub_dps_refusal_name(enum hub_dps_refusal r)
{
    static const char *const names[] = {
#define HUB_DPS_REFUSAL_NAME(name, text) #name,
        HUB_DPS_REFUSAL_MAP(HUB_DPS_REFUSAL_NAME)
#undef HUB_DPS_REFUSAL_NAME
    };
    return (unsigned)r < sizeof(names) / sizeof(names[0]) ? names[r] : "UNKNOWN";
}

/* ---- records ---------------------------------------------------------------- */

void hub_dps_enrollment_clear(struct hub_dps_enrollment *e)
{
    if (e == NULL)
        return;
    free(e->cert_pem[0]);
    free(e->cert_pem[1]);
    free(e->initial_twin_json);
    memset(e, 0, sizeof(*e));
}

void hub_dps_enrollment_list_free(struct hub_dps_enrollment_list *l)
{
    if (l == NULL)
        return;
    for (size_t i = 0; i < l->count; i++)
        hub_dps_enrollment_clear(&l->items[i]);
    free(l->items);
    free(l);
}

void hub_dps_registration_list_free(struct hub_dps_registration_list *l)
{
    if (l == NULL)
        return;
    free(l->items);
    free(l);
}

static int copy_enrollment(struct hub_dps_enrollment *dst, const struct hub_dps_enrollment *src,
                           struct hub_err *err)
{
    *dst = *src;
    dst->cert_pem[0] = dst->cert_pem[1] = NULL;
    dst->initial_twin_json = NULL;
    for (int i = 0; i < 2; i++)
        if (src->cert_pem[i] != NULL && (dst->cert_pem[i] = strdup(src->cert_pem[i])) == NULL)
            goto nomem;
    if (src->initial_twin_json != NULL &&
        (dst->initial_twin_json = strdup(src->initial_twin_json)) == NULL)
        goto nomem;
    return 0;
nomem:
    hub_dps_enrollment_clear(dst);
    return HUB_ERR(err, HUB_E_NOMEM, "out of memory");
}

/* ---- JSON in ---------------------------------------------------------------- */

static int get_str(json_t *obj, const char *key, const char **out, struct hub_err *err)
{
    json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return HUB_ERR(err, HUB_E_INVALID_ARG, "%s must be a string", key);
    *out = json_string_value(v);
    return 0;
}

static int get_bool(json_t *obj, const char *key, bool dflt, bool *out, struct hub_err *err)
{
    json_t *v = json_object_get(obj, key);
    *out = dflt;
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_boolean(v))
        return HUB_ERR(err, HUB_E_INVALID_ARG, "%s must be true or false", key);
    *out = json_is_true(v);
    return 0;
}

static json_t *get_obj(json_t *obj, const char *key, struct hub_err *err, int *rc)
{
    json_t *v = json_object_get(obj, key);
    *rc = 0;
    if (v == NULL || json_is_null(v))
        return NULL;
    if (!json_is_object(v)) {
        *rc = HUB_ERR(err, HUB_E_INVALID_ARG, "%s must be an object", key);
        return NULL;
    }
    return v;
}

/* A certificate given as PEM, or as bare base64 DER (the SDK's samples do
 * both): normalized to PEM. Refuses private keys and non-certificates. */
static int cert_normalize(const char *text, char **pem_new, struct hub_err *err)
{
    X509 *x = NULL;
    int rc;
    if (strstr(text, "-----BEGIN") != NULL) {
        rc = hub_pki_cert_load_mem(text, strlen(text), &x, err);
    } else {
        size_t n = strlen(text);
        unsigned char *der = malloc(n + 1);
        if (der == NULL)
            return HUB_ERR(err, HUB_E_NOMEM, "out of memory");
        int dn = hub_base64_decode(text, n, der, n + 1, err);
        rc = dn < 0 ? HUB_ERR(err, HUB_E_INVALID_ARG, "certificate is neither PEM nor base64")
                    : hub_pki_cert_load_mem(der, (size_t)dn, &x, err);
        free(der);
    }
    if (rc == HUB_E_PRIVATE_KEY || rc == HUB_E_NOMEM)
        return rc;
    if (rc != 0) {
        char why[HUB_ERR_MSG_MAX];
        snprintf(why, sizeof(why), "%s", err != NULL ? err->msg : "");
        return HUB_ERR(err, HUB_E_INVALID_ARG, "certificate does not load: %s", why);
    }
    rc = hub_pki_cert_to_pem(x, pem_new, err);
    X509_free(x);
    return rc;
}

static void upper(char *s)
{
    for (; *s; s++)
        if (*s >= 'a' && *s <= 'f')
            *s = (char)(*s - 'a' + 'A');
}

static int thumbprint_check(const char *t, char out[HUB_THUMBPRINT_SIZE], struct hub_err *err)
{
    size_t n = strlen(t);
    if (n != 40 && n != 64)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "thumbprint must be 40 or 64 hex digits");
    for (size_t i = 0; i < n; i++)
        if (hub_hex_digit_value((unsigned char)t[i]) < 0)
            return HUB_ERR(err, HUB_E_INVALID_ARG, "thumbprint must be hex");
    memcpy(out, t, n + 1);
    upper(out);
    return 0;
}

static int parse_x509(enum hub_dps_kind kind, json_t *x, struct hub_dps_enrollment *out,
                      struct hub_err *err)
{
    static const char *const slot[2] = {"primary", "secondary"};
    int rc;
    if (kind == HUB_DPS_GROUP) {
        json_t *refs = get_obj(x, "caReferences", err, &rc);
        if (rc != 0)
            return rc;
        json_t *certs = get_obj(x, "signingCertificates", err, &rc);
        if (rc != 0)
            return rc;
        if (refs != NULL && certs != NULL)
            return HUB_ERR(err, HUB_E_INVALID_ARG,
                           "give signingCertificates or caReferences, not both");
        for (int i = 0; i < 2; i++) {
            if (refs != NULL) {
                const char *name;
                if ((rc = get_str(refs, slot[i], &name, err)) != 0)
                    return rc;
                if (name == NULL)
                    continue;
                if ((rc = hub_registry_ca_name_check(name, err)) != 0)
                    return rc;
                snprintf(out->ca_ref[i], sizeof(out->ca_ref[i]), "%s", name);
            }
            json_t *c = certs != NULL ? get_obj(certs, slot[i], err, &rc) : NULL;
            if (rc != 0)
                return rc;
            if (c == NULL)
                continue;
            const char *pem;
            if ((rc = get_str(c, "certificate", &pem, err)) != 0)
                return rc;
            if (pem != NULL && (rc = cert_normalize(pem, &out->cert_pem[i], err)) != 0)
                return rc;
        }
        if (out->ca_ref[0][0] == '\0' && out->ca_ref[1][0] == '\0' && out->cert_pem[0] == NULL &&
            out->cert_pem[1] == NULL && certs == NULL)
            return HUB_ERR(err, HUB_E_INVALID_ARG,
                           "x509 enrollment group needs signingCertificates.primary.certificate "
                           "or caReferences.primary");
        return 0;
    }
    json_t *certs = get_obj(x, "clientCertificates", err, &rc);
    if (rc != 0)
        return rc;
    if (certs == NULL)
        return HUB_ERR(err, HUB_E_INVALID_ARG,
                       "x509 individual enrollment needs clientCertificates.primary");
    for (int i = 0; i < 2; i++) {
        json_t *c = get_obj(certs, slot[i], err, &rc);
        if (rc != 0)
            return rc;
        if (c == NULL)
            continue;
        const char *pem;
        if ((rc = get_str(c, "certificate", &pem, err)) != 0)
            return rc;
        if (pem != NULL) {
            if ((rc = cert_normalize(pem, &out->cert_pem[i], err)) != 0)
                return rc;
            X509 *xc = NULL;
            if ((rc = hub_pki_cert_load_mem(out->cert_pem[i], strlen(out->cert_pem[i]), &xc,
                                            err)) != 0)
                return rc;
            rc = hub_pki_thumbprint(xc, HUB_PKI_SHA256, out->thumbprint[i], err);
            X509_free(xc);
            if (rc != 0)
                return rc;
            continue;
        }
        json_t *info = get_obj(c, "info", err, &rc);
        if (rc != 0)
            return rc;
        const char *t = NULL;
        if (info != NULL) {
            if ((rc = get_str(info, "sha256Thumbprint", &t, err)) != 0)
                return rc;
            if (t == NULL && (rc = get_str(info, "sha1Thumbprint", &t, err)) != 0)
                return rc;
        }
        if (t == NULL)
            return HUB_ERR(err, HUB_E_INVALID_ARG,
                           "clientCertificates.%s needs certificate or info.sha1Thumbprint",
                           slot[i]);
        if ((rc = thumbprint_check(t, out->thumbprint[i], err)) != 0)
            return rc;
    }
    if (out->thumbprint[0][0] == '\0')
        return HUB_ERR(err, HUB_E_INVALID_ARG, "clientCertificates.primary is required");
    return 0;
}

/* The twin rules (keys, depth, sizes) judged now, on a fresh twin, as the
 * service PUT /twins would: an initialTwin the hub would refuse must not be
 * stored, or every registration through the enrollment would create its
 * device and then fail to give it the twin. */
static int initial_twin_check(const char *json, struct hub_err *err)
{
    struct hub_twin_request *req = NULL;
    struct hub_twin *twin = NULL;
    struct hub_err sub = {0};
    int rc = hub_twin_request_parse(HUB_TWIN_OP_SERVICE_REPLACE, json, strlen(json), &req, &sub);
    if (rc == 0)
        rc = hub_twin_new(0, &twin, &sub);
    if (rc == 0)
        rc = hub_twin_request_apply(twin, req, 0, NULL, &sub);
    hub_twin_free(twin);
    hub_twin_request_free(req);
    if (rc == HUB_E_NOMEM)
        return HUB_ERR(err, rc, "out of memory");
    if (rc != 0)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "initialTwin: %s", sub.msg);
    return 0;
}

static int parse_initial_twin(json_t *twin, struct hub_dps_enrollment *out, struct hub_err *err)
{
    int rc;
    json_t *tags = get_obj(twin, "tags", err, &rc);
    if (rc != 0)
        return rc;
    json_t *props = get_obj(twin, "properties", err, &rc);
    if (rc != 0)
        return rc;
    json_t *desired = props != NULL ? get_obj(props, "desired", err, &rc) : NULL;
    if (rc != 0)
        return rc;
    json_t *norm = json_pack("{s:O?,s:{s:O?}}", "tags", tags, "properties", "desired", desired);
    if (norm == NULL)
        return HUB_ERR(err, HUB_E_NOMEM, "out of memory");
    /* Drop the null placeholders and the service's "$metadata"/"$version". */
    if (tags == NULL)
        json_object_set_new(norm, "tags", json_object());
    json_t *d = json_object_get(json_object_get(norm, "properties"), "desired");
    if (desired == NULL) {
        json_object_set_new(json_object_get(norm, "properties"), "desired", json_object());
    } else {
        d = json_deep_copy(d);
        json_object_del(d, "$metadata");
        json_object_del(d, "$version");
        json_object_set_new(json_object_get(norm, "properties"), "desired", d);
    }
    out->initial_twin_json = json_dumps(norm, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(norm);
    if (out->initial_twin_json == NULL)
        return HUB_ERR(err, HUB_E_NOMEM, "out of memory");
    return initial_twin_check(out->initial_twin_json, err);
}

static int parse_obj(enum hub_dps_kind kind, const char *path_id, json_t *root,
                     struct hub_dps_enrollment *out, struct hub_err *err)
{
    int rc;
    out->kind = kind;
    const char *idkey = kind == HUB_DPS_GROUP ? "enrollmentGroupId" : "registrationId";
    const char *id;
    if ((rc = get_str(root, idkey, &id, err)) != 0)
        return rc;
    if (id == NULL)
        id = path_id;
    else if (path_id != NULL && strcmp(id, path_id) != 0)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "%s '%.128s' differs from the URL's '%.128s'", idkey,
                       id, path_id);
    if ((rc = hub_dps_id_check(id, err)) != 0)
        return rc;
    snprintf(out->id, sizeof(out->id), "%s", id);
    if (kind == HUB_DPS_INDIVIDUAL) {
        const char *dev;
        if ((rc = get_str(root, "deviceId", &dev, err)) != 0)
            return rc;
        if (dev != NULL && dev[0] != '\0') {
            if ((rc = hub_registry_device_id_check(dev, err)) != 0)
                return rc;
            snprintf(out->device_id, sizeof(out->device_id), "%s", dev);
        }
    }
    json_t *att = get_obj(root, "attestation", err, &rc);
    if (rc != 0)
        return rc;
    if (att == NULL)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "attestation is required");
    const char *type;
    if ((rc = get_str(att, "type", &type, err)) != 0)
        return rc;
    if (type != NULL && strcmp(type, "x509") == 0) {
        out->att_type = HUB_DPS_ATT_X509;
        json_t *x = get_obj(att, "x509", err, &rc);
        if (rc != 0)
            return rc;
        if (x == NULL)
            return HUB_ERR(err, HUB_E_INVALID_ARG, "attestation.x509 is required");
        if ((rc = parse_x509(kind, x, out, err)) != 0)
            return rc;
    } else if (type != NULL && strcmp(type, "symmetricKey") == 0) {
        out->att_type = HUB_DPS_ATT_SYMMETRIC_KEY;
        json_t *sk = get_obj(att, "symmetricKey", err, &rc);
        if (rc != 0)
            return rc;
        const char *pk = NULL, *sk2 = NULL;
        if (sk != NULL && ((rc = get_str(sk, "primaryKey", &pk, err)) != 0 ||
                           (rc = get_str(sk, "secondaryKey", &sk2, err)) != 0))
            return rc;
        bool have_p = pk != NULL && pk[0], have_s = sk2 != NULL && sk2[0];
        if (have_p != have_s)
            return HUB_ERR(err, HUB_E_INVALID_ARG,
                           "give both symmetric keys or neither (to have them generated)");
        if (have_p) {
            if ((rc = hub_auth_key_validate(pk, err)) != 0 ||
                (rc = hub_auth_key_validate(sk2, err)) != 0)
                return rc;
            snprintf(out->primary_key, sizeof(out->primary_key), "%s", pk);
            snprintf(out->secondary_key, sizeof(out->secondary_key), "%s", sk2);
        }
    } else {
        return HUB_ERR(err, HUB_E_INVALID_ARG,
                       "attestation.type must be \"x509\" or \"symmetricKey\" (got %s)",
                       type != NULL ? type : "none");
    }
    const char *status;
    if ((rc = get_str(root, "provisioningStatus", &status, err)) != 0)
        return rc;
    if (status == NULL || strcmp(status, "enabled") == 0)
        out->enabled = true;
    else if (strcmp(status, "disabled") == 0)
        out->enabled = false;
    else
        return HUB_ERR(err, HUB_E_INVALID_ARG,
                       "provisioningStatus must be \"enabled\" or \"disabled\"");
    json_t *twin = get_obj(root, "initialTwin", err, &rc);
    if (rc != 0)
        return rc;
    if (twin != NULL && (rc = parse_initial_twin(twin, out, err)) != 0)
        return rc;
    json_t *rp = get_obj(root, "reprovisionPolicy", err, &rc);
    if (rc != 0)
        return rc;
    out->update_hub_assignment = out->migrate_device_data = true;
    if (rp != NULL &&
        ((rc = get_bool(rp, "updateHubAssignment", true, &out->update_hub_assignment, err)) != 0 ||
         (rc = get_bool(rp, "migrateDeviceData", true, &out->migrate_device_data, err)) != 0))
        return rc;
    json_t *caps = get_obj(root, "capabilities", err, &rc);
    if (rc != 0)
        return rc;
    if (caps != NULL && (rc = get_bool(caps, "iotEdge", false, &out->iot_edge, err)) != 0)
        return rc;
    const char *alloc;
    if ((rc = get_str(root, "allocationPolicy", &alloc, err)) != 0)
        return rc;
    if (alloc == NULL)
        alloc = "hashed";
    if (strcmp(alloc, "hashed") != 0 && strcmp(alloc, "geoLatency") != 0 &&
        strcmp(alloc, "static") != 0 && strcmp(alloc, "custom") != 0)
        return HUB_ERR(err, HUB_E_INVALID_ARG,
                       "allocationPolicy must be hashed, geoLatency, static or custom");
    snprintf(out->allocation_policy, sizeof(out->allocation_policy), "%s", alloc);
    return 0;
}

int hub_dps_enrollment_parse(enum hub_dps_kind kind, const char *path_id, const char *json,
                             size_t len, struct hub_dps_enrollment *out, struct hub_err *err)
{
    memset(out, 0, sizeof(*out));
    json_error_t jerr;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL)
        return HUB_ERR(err, HUB_E_PARSE, "body is not JSON: %s (line %d)", jerr.text, jerr.line);
    int rc = json_is_object(root) ? parse_obj(kind, path_id, root, out, err)
                                  : HUB_ERR(err, HUB_E_INVALID_ARG, "body must be a JSON object");
    json_decref(root);
    if (rc != 0)
        hub_dps_enrollment_clear(out);
    return rc;
}

/* ---- JSON out --------------------------------------------------------------- */

static json_t *cert_info(const char *pem)
{
    X509 *x = NULL;
    if (hub_pki_cert_load_mem(pem, strlen(pem), &x, NULL) != 0)
        return json_object();
    char subj[HUB_CA_SUBJECT_SIZE], issuer[HUB_CA_SUBJECT_SIZE];
    char t1[HUB_PKI_THUMBPRINT_MAX] = "", t256[HUB_PKI_THUMBPRINT_MAX] = "";
    char nb[HUB_TIME_ISO_LEN] = "", na[HUB_TIME_ISO_LEN] = "";
    hub_pki_cert_subject_text(x, subj, sizeof(subj));
    X509_NAME_oneline(X509_get_issuer_name(x), issuer, sizeof(issuer));
    hub_pki_thumbprint(x, HUB_PKI_SHA1, t1, NULL);
    hub_pki_thumbprint(x, HUB_PKI_SHA256, t256, NULL);
    int64_t from = 0, to = 0;
    if (hub_pki_cert_validity(x, &from, &to, NULL) == 0) {
        hub_time_iso8601((time_t)from, nb);
        hub_time_iso8601((time_t)to, na);
    }
    X509_free(x);
    return json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:i}", "subjectName", subj, "issuerName", issuer,
                     "sha1Thumbprint", t1, "sha256Thumbprint", t256, "notBeforeUtc", nb,
                     "notAfterUtc", na, "version", 3);
}

static json_t *enrollment_json(const struct hub_dps_enrollment *e, bool internal,
                               const char *hub_host)
{
    static const char *const slot[2] = {"primary", "secondary"};
    json_t *att = json_object();
    json_object_set_new(att, "type", json_string(hub_dps_att_type_name(e->att_type)));
    if (e->att_type == HUB_DPS_ATT_X509) {
        json_t *x = json_object();
        if (e->kind == HUB_DPS_GROUP && (e->ca_ref[0][0] || e->ca_ref[1][0])) {
            json_t *refs = json_object();
            for (int i = 0; i < 2; i++)
                if (e->ca_ref[i][0])
                    json_object_set_new(refs, slot[i], json_string(e->ca_ref[i]));
            json_object_set_new(x, "caReferences", refs);
        } else {
            json_t *certs = json_object();
            for (int i = 0; i < 2; i++) {
                json_t *c = NULL;
                if (e->cert_pem[i] != NULL) {
                    c = json_object();
                    if (internal)
                        json_object_set_new(c, "certificate", json_string(e->cert_pem[i]));
                    json_object_set_new(c, "info", cert_info(e->cert_pem[i]));
                } else if (e->kind == HUB_DPS_INDIVIDUAL && e->thumbprint[i][0]) {
                    c = json_pack("{s:{s:s}}", "info",
                                  strlen(e->thumbprint[i]) == 40 ? "sha1Thumbprint"
                                                                 : "sha256Thumbprint",
                                  e->thumbprint[i]);
                }
                if (c != NULL)
                    json_object_set_new(certs, slot[i], c);
            }
            json_object_set_new(
                x, e->kind == HUB_DPS_GROUP ? "signingCertificates" : "clientCertificates", certs);
        }
        json_object_set_new(att, "x509", x);
    } else {
        json_object_set_new(
            att, "symmetricKey",
            json_pack("{s:s,s:s}", "primaryKey", e->primary_key, "secondaryKey", e->secondary_key));
    }
    json_t *o = json_object();
    if (e->kind == HUB_DPS_GROUP) {
        json_object_set_new(o, "enrollmentGroupId", json_string(e->id));
    } else {
        json_object_set_new(o, "registrationId", json_string(e->id));
        if (e->device_id[0])
            json_object_set_new(o, "deviceId", json_string(e->device_id));
    }
    json_object_set_new(o, "attestation", att);
    json_object_set_new(o, "capabilities", json_pack("{s:b}", "iotEdge", e->iot_edge));
    json_object_set_new(o, "provisioningStatus", json_string(e->enabled ? "enabled" : "disabled"));
    json_object_set_new(o, "reprovisionPolicy",
                        json_pack("{s:b,s:b}", "updateHubAssignment", e->update_hub_assignment,
                                  "migrateDeviceData", e->migrate_device_data));
    json_object_set_new(o, "allocationPolicy",
                        json_string(e->allocation_policy[0] ? e->allocation_policy : "hashed"));
    if (e->initial_twin_json != NULL) {
        json_t *t = json_loads(e->initial_twin_json, 0, NULL);
        if (t != NULL)
            json_object_set_new(o, "initialTwin", t);
    }
    if (!internal) {
        char c[HUB_TIME_ISO_LEN], u[HUB_TIME_ISO_LEN];
        hub_time_iso8601((time_t)e->created, c);
        hub_time_iso8601((time_t)e->updated, u);
        json_object_set_new(o, "etag", json_string(e->etag));
        json_object_set_new(o, "createdDateTimeUtc", json_string(c));
        json_object_set_new(o, "lastUpdatedDateTimeUtc", json_string(u));
        if (hub_host != NULL) {
            json_object_set_new(o, "iotHubHostName", json_string(hub_host));
            json_object_set_new(o, "iotHubs", json_pack("[s]", hub_host));
        }
    }
    return o;
}

json_t *hub_dps_enrollment_json_new(const struct hub_dps_enrollment *e)
{
    return enrollment_json(e, false, NULL);
}

/* ---- CRUD ------------------------------------------------------------------- */

static enum hub_store_dps_table table_of(enum hub_dps_kind k)
{
    return k == HUB_DPS_GROUP ? HUB_STORE_DPS_GROUPS : HUB_STORE_DPS_ENROLLMENTS;
}

static int from_rec(enum hub_dps_kind kind, const struct hub_dps_rec *rec,
                    struct hub_dps_enrollment *out, struct hub_err *err)
{
    int rc = hub_dps_enrollment_parse(kind, rec->id, rec->body, strlen(rec->body), out, err);
    if (rc != 0) {
        char why[HUB_ERR_MSG_MAX];
        snprintf(why, sizeof(why), "%s", err != NULL ? err->msg : "");
        return HUB_ERR(err, HUB_E_STORE, "stored enrollment '%.128s' is damaged: %s", rec->id, why);
    }
    snprintf(out->etag, sizeof(out->etag), "%s", rec->etag);
    out->created = rec->created;
    out->updated = rec->updated;
    return 0;
}

int hub_dps_enrollment_get(struct hub_dps *dps, enum hub_dps_kind kind, const char *id,
                           struct hub_dps_enrollment *out, struct hub_err *err)
{
    memset(out, 0, sizeof(*out));
    int rc = hub_dps_id_check(id, err);
    if (rc != 0)
        return rc;
    struct hub_dps_rec rec;
    if ((rc = hub_store_dps_get(dps->store, table_of(kind), id, &rec, err)) != 0)
        return rc;
    rc = from_rec(kind, &rec, out, err);
    hub_dps_rec_clear(&rec);
    return rc;
}

static bool unconditional(const char *if_match)
{
    return if_match == NULL || if_match[0] == '\0' || strcmp(if_match, "*") == 0;
}

static int put_impl(struct hub_dps *dps, const struct hub_dps_enrollment *in, const char *if_match,
                    bool create_only, struct hub_dps_enrollment *out, bool *created_out,
                    struct hub_err *err)
{
    if (out != NULL)
        memset(out, 0, sizeof(*out));
    int rc = hub_dps_id_check(in->id, err);
    if (rc != 0)
        return rc;
    struct hub_dps_enrollment old = {0}, e = {0};
    rc = hub_dps_enrollment_get(dps, in->kind, in->id, &old, err);
    bool exists = rc == 0;
    if (rc != 0 && rc != HUB_E_NOT_FOUND)
        return rc;
    if (create_only && exists) {
        rc = HUB_ERR(err, HUB_E_EXISTS, "'%.128s' already exists", in->id);
        goto done;
    }
    if (!unconditional(if_match) && !exists) {
        rc = HUB_ERR(err, HUB_E_ETAG_MISMATCH, "'%.128s' does not exist (If-Match given)", in->id);
        goto done;
    }
    if (!unconditional(if_match) && strcmp(old.etag, if_match) != 0) {
        rc = HUB_ERR(err, HUB_E_ETAG_MISMATCH, "etag of '%.128s' does not match", in->id);
        goto done;
    }
    if ((rc = copy_enrollment(&e, in, err)) != 0)
        goto done;
    /* What a GET -> change -> PUT round trip leaves out. */
    if (e.att_type == HUB_DPS_ATT_X509 && e.kind == HUB_DPS_GROUP && e.cert_pem[0] == NULL &&
        e.cert_pem[1] == NULL && !e.ca_ref[0][0] && !e.ca_ref[1][0]) {
        if (!exists || old.att_type != HUB_DPS_ATT_X509 ||
            (old.cert_pem[0] == NULL && old.cert_pem[1] == NULL)) {
            rc = HUB_ERR(err, HUB_E_INVALID_ARG,
                         "signingCertificates.primary.certificate is required");
            goto done;
        }
        for (int i = 0; i < 2; i++) {
            e.cert_pem[i] = old.cert_pem[i];
            old.cert_pem[i] = NULL;
        }
    }
    if (e.att_type == HUB_DPS_ATT_SYMMETRIC_KEY && e.primary_key[0] == '\0') {
        if (exists && old.att_type == HUB_DPS_ATT_SYMMETRIC_KEY) {
            memcpy(e.primary_key, old.primary_key, sizeof(e.primary_key));
            memcpy(e.secondary_key, old.secondary_key, sizeof(e.secondary_key));
        } else {
            char k[HUB_AUTH_KEY_B64_MAX + 1];
            if ((rc = hub_auth_key_generate(k, err)) != 0)
                goto done;
            snprintf(e.primary_key, sizeof(e.primary_key), "%s", k);
            if ((rc = hub_auth_key_generate(k, err)) != 0)
                goto done;
            snprintf(e.secondary_key, sizeof(e.secondary_key), "%s", k);
        }
    }
    int64_t now = hub_dps__now(dps);
    e.created = exists ? old.created : now;
    e.updated = now;
    if ((rc = hub_dps__etag_new(e.etag, err)) != 0)
        goto done;
    json_t *doc = enrollment_json(&e, true, NULL);
    char *body = doc != NULL ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (body == NULL) {
        rc = HUB_ERR(err, HUB_E_NOMEM, "out of memory");
        goto done;
    }
    struct hub_dps_rec rec = {0};
    snprintf(rec.id, sizeof(rec.id), "%s", e.id);
    snprintf(rec.etag, sizeof(rec.etag), "%s", e.etag);
    rec.body = body;
    rec.created = e.created;
    rec.updated = e.updated;
    /* Compare-and-swap against what we read, so a concurrent writer is not
     * silently overwritten. */
    rc = hub_store_dps_put(dps->store, table_of(e.kind), &rec, exists ? old.etag : NULL, !exists,
                           err);
    free(body);
    if (rc == HUB_E_EXISTS && create_only)
        rc = HUB_ERR(err, HUB_E_EXISTS, "'%.128s' already exists (created meanwhile)", e.id);
    else if (rc == HUB_E_EXISTS || (rc == HUB_E_NOT_FOUND && exists))
        rc = HUB_ERR(err, HUB_E_ETAG_MISMATCH, "'%.128s' changed meanwhile; retry", e.id);
    if (rc != 0)
        goto done;
    if (created_out != NULL)
        *created_out = !exists;
    if (out != NULL) {
        *out = e;
        memset(&e, 0, sizeof(e));
    }
done:
    hub_dps_enrollment_clear(&old);
    hub_dps_enrollment_clear(&e);
    return rc;
}

int hub_dps_enrollment_put(struct hub_dps *dps, const struct hub_dps_enrollment *in,
                           const char *if_match, struct hub_dps_enrollment *out, bool *created_out,
                           struct hub_err *err)
{
    return put_impl(dps, in, if_match, false, out, created_out, err);
}

int hub_dps_enrollment_create(struct hub_dps *dps, const struct hub_dps_enrollment *in,
                              struct hub_dps_enrollment *out, struct hub_err *err)
{
    return put_impl(dps, in, NULL, true, out, NULL, err);
}

int hub_dps_enrollment_delete(struct hub_dps *dps, enum hub_dps_kind kind, const char *id,
                              const char *if_match, struct hub_err *err)
{
    int rc = hub_dps_id_check(id, err);
    if (rc != 0)
        return rc;
    return hub_store_dps_delete(dps->store, table_of(kind), id,
                                unconditional(if_match) ? NULL : if_match, err);
}

int hub_dps_enrollment_list1(struct hub_dps *dps, enum hub_dps_kind kind,
                             struct hub_dps_enrollment_list **out_new, struct hub_err *err)
{
    *out_new = NULL;
    struct hub_dps_rec_list *recs = NULL;
    int rc = hub_store_dps_list1(dps->store, table_of(kind), NULL, &recs, err);
    if (rc != 0)
        return rc;
    struct hub_dps_enrollment_list *l = calloc(1, sizeof(*l));
    if (l == NULL || (recs->count && (l->items = calloc(recs->count, sizeof(*l->items))) == NULL)) {
        free(l);
        hub_dps_rec_list_free(recs);
        return HUB_ERR(err, HUB_E_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < recs->count && rc == 0; i++) {
        rc = from_rec(kind, &recs->items[i], &l->items[i], err);
        if (rc == 0)
            l->count++;
    }
    hub_dps_rec_list_free(recs);
    if (rc != 0) {
        hub_dps_enrollment_list_free(l);
        return rc;
    }
    *out_new = l;
    return 0;
}
