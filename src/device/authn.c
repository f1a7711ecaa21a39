/*
 * device: the CONNECT authentication decision (reference §1 "Identity
 * checks", §6). No I/O: the caller looks the device up and takes the trust
 * snapshot; this file only decides, so every refusal is one table row in
 * tests/unit/device/test_device_authn.c.
 *
 * Order of checks (the first failure wins):
 *   identify: client id -> username present -> username parses -> username
 *             device == client id                       [CONNACK 2 / 4]
 *   decide:   device exists (store healthy)              [5 / 3]
 *             credential of the device's kind           [4 / 5]
 *             device enabled                            [3]
 * The status comes last on purpose: a client that cannot prove the identity
 * must not learn whether the device is disabled.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "device/device_int.h"
#include "iothub/iothub.h"
#include "pki/pki.h"
#include "registry/registry.h"

static const struct {
    const char *name;
    int connack;
} reasons[] = {
#define HUB_DEVICE_REASON_ROW(n, c, t) {#n, c},
    HUB_DEVICE_REASON_MAP(HUB_DEVICE_REASON_ROW)
#undef HUB_DEVICE_REASON_ROW
};

const char *hub_device_reason_name(enum hub_device_reason r)
{
    if ((unsigned)r >= HUB_DEVICE_R__COUNT)
        return "UNKNOWN";
    return reasons[r].name;
}

int hub_device_reason_connack(enum hub_device_reason r)
{
    if ((unsigned)r >= HUB_DEVICE_R__COUNT)
        return -1;
    return reasons[r].connack;
}

const char *hub_device_auth_method_name(enum hub_device_auth_method m)
{
    switch (m) {
    case HUB_DEVICE_AUTH_X509_CA:
        return "x509ca";
    case HUB_DEVICE_AUTH_SELF_SIGNED:
        return "selfSigned";
    case HUB_DEVICE_AUTH_SAS:
        return "sas";
    case HUB_DEVICE_AUTH_NONE:
        break;
    }
    return "none";
}

__attribute__((format(printf, 3, 4))) static int
refuse(struct hub_device_authn_result *res, enum hub_device_reason reason, const char *fmt, ...)
{
    res->reason = reason;
    int code = hub_device_reason_connack(reason);
    res->connack = (uint8_t)(code > 0 ? code : HUB_MQTT_CONNACK_NOT_AUTHORIZED);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(res->detail, sizeof(res->detail), fmt, ap);
    va_end(ap);
    res->method = HUB_DEVICE_AUTH_NONE;
    return -1;
}

int hub_device_authn_identify(const struct hub_mqtt_connect *c, struct hub_device_authn_result *res)
{
    memset(res, 0, sizeof(*res));
    const char *cid = c->client_id.ptr;
    size_t cid_len = c->client_id.len;
    if (cid_len == 0)
        return refuse(res, HUB_DEVICE_R_BAD_CLIENT_ID, "client id is empty");
    if (memchr(cid, '/', cid_len) != NULL)
        return refuse(res, HUB_DEVICE_R_MODULE_UNSUPPORTED,
                      "client id names a module (deviceId/moduleId); modules cannot connect yet");
    if (cid_len > HUB_DEVICE_ID_MAX)
        return refuse(res, HUB_DEVICE_R_BAD_CLIENT_ID, "client id is longer than %d bytes",
                      HUB_DEVICE_ID_MAX);
    char id[HUB_DEVICE_ID_SIZE];
    memcpy(id, cid, cid_len);
    id[cid_len] = '\0';
    struct hub_err err = {0};
    if (hub_registry_device_id_check(id, &err) != 0)
        return refuse(res, HUB_DEVICE_R_BAD_CLIENT_ID, "client id: %s", err.msg);
    memcpy(res->device_id, id, cid_len + 1);

    if (!c->has_username)
        return refuse(res, HUB_DEVICE_R_USERNAME_MISSING,
                      "CONNECT has no username (expected {host}/{deviceId}/?api-version=...)");
    /* ~4 KiB of fixed fields: fine on a worker's stack, called once per CONNECT. */
    struct hub_iothub_username un;
    if (hub_iothub_username_parse(c->username.ptr, c->username.len, &un, &err) != 0)
        return refuse(res, HUB_DEVICE_R_USERNAME_MALFORMED, "username: %s", err.msg);
    if (un.has_module)
        return refuse(res, HUB_DEVICE_R_MODULE_UNSUPPORTED,
                      "username names module '%s'; modules cannot connect yet", un.module_id);
    if (strcmp(un.device_id, id) != 0)
        return refuse(res, HUB_DEVICE_R_USERNAME_MISMATCH,
                      "username device '%s' differs from client id '%s'", un.device_id, id);
    return 0;
}

/* Maps a pki validation code to the reason of the same name. */
static enum hub_device_reason chain_reason(int code)
{
    switch (code) {
    case HUB_E_CHAIN_UNTRUSTED:
        return HUB_DEVICE_R_CHAIN_UNTRUSTED;
    case HUB_E_CERT_EXPIRED:
        return HUB_DEVICE_R_CERT_EXPIRED;
    case HUB_E_CERT_NOT_YET_VALID:
        return HUB_DEVICE_R_CERT_NOT_YET_VALID;
    case HUB_E_CHAIN_SIGNATURE:
        return HUB_DEVICE_R_CHAIN_SIGNATURE;
    case HUB_E_CHAIN_TOO_LONG:
        return HUB_DEVICE_R_CHAIN_TOO_LONG;
    case HUB_E_CHAIN_NOT_CA:
        return HUB_DEVICE_R_CHAIN_NOT_CA;
    case HUB_E_CHAIN_PATHLEN:
        return HUB_DEVICE_R_CHAIN_PATHLEN;
    case HUB_E_CHAIN_KEY_USAGE:
        return HUB_DEVICE_R_CHAIN_KEY_USAGE;
    case HUB_E_CHAIN_EKU:
        return HUB_DEVICE_R_CHAIN_EKU;
    case HUB_E_CHAIN_NAME_CONSTRAINTS:
        return HUB_DEVICE_R_CHAIN_NAME_CONSTRAINTS;
    case HUB_E_CHAIN_CRITICAL_EXT:
        return HUB_DEVICE_R_CHAIN_CRITICAL_EXT;
    case HUB_E_CHAIN_WEAK_CRYPTO:
        return HUB_DEVICE_R_CHAIN_WEAK_CRYPTO;
    case HUB_E_CHAIN_PROFILE:
        return HUB_DEVICE_R_CHAIN_PROFILE;
    case HUB_E_CHAIN_LEAF_IS_CA:
        return HUB_DEVICE_R_CHAIN_LEAF_IS_CA;
    case HUB_E_CHAIN_REVOKED:
        return HUB_DEVICE_R_CHAIN_REVOKED;
    default:
        return HUB_DEVICE_R_CHAIN_INVALID;
    }
}

static enum hub_device_reason sas_reason(enum hub_auth_deny deny)
{
    switch (deny) {
    case HUB_AUTH_DENY_MALFORMED:
        return HUB_DEVICE_R_SAS_MALFORMED;
    case HUB_AUTH_DENY_UNKNOWN_POLICY:
        return HUB_DEVICE_R_SAS_UNKNOWN_POLICY;
    case HUB_AUTH_DENY_NO_KEY:
        return HUB_DEVICE_R_SAS_NO_KEY;
    case HUB_AUTH_DENY_BAD_SIGNATURE:
        return HUB_DEVICE_R_SAS_BAD_SIGNATURE;
    case HUB_AUTH_DENY_EXPIRED:
        return HUB_DEVICE_R_SAS_EXPIRED;
    case HUB_AUTH_DENY_TOO_LONG_LIVED:
        return HUB_DEVICE_R_SAS_TOO_LONG_LIVED;
    case HUB_AUTH_DENY_WRONG_SCOPE:
        return HUB_DEVICE_R_SAS_WRONG_SCOPE;
    case HUB_AUTH_DENY_NO_PERMISSION:
        return HUB_DEVICE_R_SAS_NO_PERMISSION;
    case HUB_AUTH_DENY_NONE:
        break;
    }
    return HUB_DEVICE_R_SAS_BAD_SIGNATURE;
}

/* The presented certificates minus the leaf itself (OpenSSL's server-side
 * peer chain normally excludes the leaf, but a TLS 1.3 or resumed session,
 * or a test, may hand it in: never count it twice). */
static STACK_OF(X509) * untrusted_new(X509 *leaf, STACK_OF(X509) * chain)
{
    STACK_OF(X509) *out = sk_X509_new_null();
    if (out == NULL || chain == NULL)
        return out;
    for (int i = 0; i < sk_X509_num(chain); i++) {
        X509 *x = sk_X509_value(chain, i);
        if (leaf != NULL && X509_cmp(x, leaf) == 0)
            continue;
        if (!sk_X509_push(out, x)) {
            sk_X509_free(out);
            return NULL;
        }
    }
    return out;
}

static int verify_chain(X509 *leaf, STACK_OF(X509) * chain, const struct hub_registry_trust *trust,
                        int64_t now, struct hub_err *err)
{
    STACK_OF(X509) *untrusted = untrusted_new(leaf, chain);
    if (untrusted == NULL)
        return HUB_ERR(err, HUB_E_NOMEM, "out of memory validating the chain");
    struct hub_pki_verify_opts opts = {.at = now, .eku = HUB_PKI_EKU_CLIENT_AUTH, .max_depth = -1};
    int rc = hub_pki_chain_verify(hub_registry_trust_pki(trust), leaf, untrusted, &opts, err);
    sk_X509_free(untrusted); /* the certificates stay the caller's */
    return rc;
}

static int decide_ca(const struct hub_device_authn_in *in, struct hub_device_authn_result *res)
{
    const char *id = res->device_id;
    if (in->connect->has_password)
        return refuse(res, HUB_DEVICE_R_WRONG_CREDENTIAL,
                      "device '%s' authenticates with a CA-signed certificate, but CONNECT "
                      "carries a password",
                      id);
    if (in->leaf == NULL)
        return refuse(res, HUB_DEVICE_R_NO_CREDENTIAL,
                      "device '%s' needs a client certificate chain; none was presented", id);
    if (in->trust == NULL)
        return refuse(res, HUB_DEVICE_R_SERVER_ERROR, "no trust snapshot");
    struct hub_err err = {0};
    int rc = verify_chain(in->leaf, in->chain, in->trust, in->now, &err);
    if (rc == HUB_E_NOMEM)
        return refuse(res, HUB_DEVICE_R_SERVER_ERROR, "%s", err.msg);
    if (rc != 0)
        return refuse(res, chain_reason(rc), "%s", err.msg);
    char cn[HUB_DEVICE_ID_SIZE + 1];
    rc = hub_pki_cert_subject_cn(in->leaf, cn, sizeof(cn), &err);
    if (rc != 0)
        return refuse(res, HUB_DEVICE_R_CN_MISMATCH, "leaf certificate CN unusable: %s", err.msg);
    if (strcmp(cn, id) != 0)
        return refuse(res, HUB_DEVICE_R_CN_MISMATCH,
                      "leaf certificate CN '%s' differs from the device id '%s'", cn, id);
    res->method = HUB_DEVICE_AUTH_X509_CA;
    return 0;
}

static int decide_self_signed(const struct hub_device_authn_in *in,
                              struct hub_device_authn_result *res)
{
    const char *id = res->device_id;
    if (in->connect->has_password)
        return refuse(res, HUB_DEVICE_R_WRONG_CREDENTIAL,
                      "device '%s' authenticates with a self-signed certificate, but CONNECT "
                      "carries a password",
                      id);
    if (in->leaf == NULL)
        return refuse(res, HUB_DEVICE_R_NO_CREDENTIAL,
                      "device '%s' needs its self-signed client certificate; none was presented",
                      id);
    char sha1[HUB_PKI_THUMBPRINT_MAX], sha256[HUB_PKI_THUMBPRINT_MAX];
    struct hub_err err = {0};
    if (hub_pki_thumbprint(in->leaf, HUB_PKI_SHA1, sha1, &err) != 0 ||
        hub_pki_thumbprint(in->leaf, HUB_PKI_SHA256, sha256, &err) != 0)
        return refuse(res, HUB_DEVICE_R_SERVER_ERROR, "thumbprint: %s", err.msg);
    if (!hub_registry_device_thumbprint_match(in->device, sha1) &&
        !hub_registry_device_thumbprint_match(in->device, sha256))
        return refuse(res, HUB_DEVICE_R_THUMBPRINT_MISMATCH,
                      "certificate thumbprint %s (SHA-1) / %s (SHA-256) is not registered for "
                      "device '%s'",
                      sha1, sha256, id);
    int64_t nb = 0, na = 0;
    if (hub_pki_cert_validity(in->leaf, &nb, &na, &err) != 0)
        return refuse(res, HUB_DEVICE_R_CHAIN_PROFILE, "validity: %s", err.msg);
    if (in->now < nb)
        return refuse(res, HUB_DEVICE_R_CERT_NOT_YET_VALID,
                      "certificate not valid before %lld (now %lld)", (long long)nb,
                      (long long)in->now);
    if (in->now > na)
        return refuse(res, HUB_DEVICE_R_CERT_EXPIRED, "certificate expired at %lld (now %lld)",
                      (long long)na, (long long)in->now);
    res->method = HUB_DEVICE_AUTH_SELF_SIGNED;
    return 0;
}

static int decide_sas(const struct hub_device_authn_in *in, struct hub_device_authn_result *res)
{
    const struct hub_mqtt_connect *c = in->connect;
    const char *id = res->device_id;
    if (!c->has_password)
        return refuse(
            res, in->leaf != NULL ? HUB_DEVICE_R_WRONG_CREDENTIAL : HUB_DEVICE_R_NO_CREDENTIAL,
            "device '%s' authenticates with a SAS token; %s", id,
            in->leaf != NULL ? "a certificate was presented instead" : "CONNECT has no password");
    if (in->sas_cfg == NULL)
        return refuse(res, HUB_DEVICE_R_SERVER_ERROR, "no SAS verifier configuration");
    struct hub_auth_device_req req = {
        .now = in->now,
        .device_id = id,
        .module_id = NULL,
        .keys = {.primary = in->device->primary_key, .secondary = in->device->secondary_key},
        .policies = in->policies,
    };
    struct hub_auth_result ar;
    memset(&ar, 0, sizeof(ar));
    struct hub_err err = {0};
    int rc = hub_auth_device_verify(in->sas_cfg, &req, (const char *)c->password.ptr,
                                    c->password.len, &ar, &err);
    if (rc != 0)
        return refuse(res, sas_reason(ar.deny), "%s", err.msg[0] ? err.msg : "SAS refused");
    res->method = HUB_DEVICE_AUTH_SAS;
    res->sas_expiry = ar.expiry;
    return 0;
}

int hub_device_authn_decide(const struct hub_device_authn_in *in,
                            struct hub_device_authn_result *res)
{
    res->reason = HUB_DEVICE_R_OK;
    res->connack = 0;
    res->detail[0] = '\0';
    res->method = HUB_DEVICE_AUTH_NONE;
    res->sas_expiry = 0;
    const char *id = res->device_id;
    if (in->lookup_rc == HUB_E_NOT_FOUND || in->lookup_rc == HUB_E_INVALID_ARG)
        return refuse(res, HUB_DEVICE_R_DEVICE_UNKNOWN, "device '%s' is not in the registry", id);
    if (in->lookup_rc != 0 && in->lookup_rc != HUB_E_FORBIDDEN)
        return refuse(res, HUB_DEVICE_R_SERVER_ERROR, "registry lookup failed: %s",
                      hub_err_name(in->lookup_rc));
    if (in->device == NULL)
        return refuse(res, HUB_DEVICE_R_SERVER_ERROR, "no device record");

    int rc;
    switch (in->device->auth_type) {
    case HUB_AUTH_CERT_AUTHORITY:
        rc = decide_ca(in, res);
        break;
    case HUB_AUTH_SELF_SIGNED:
        rc = decide_self_signed(in, res);
        break;
    case HUB_AUTH_SAS:
        rc = decide_sas(in, res);
        break;
    default:
        rc = refuse(res, HUB_DEVICE_R_AUTH_TYPE_NONE,
                    "device '%s' has authentication type none and cannot connect", id);
        break;
    }
    if (rc != 0)
        return rc;
    if (in->lookup_rc == HUB_E_FORBIDDEN || in->device->status != HUB_DEVICE_ENABLED)
        return refuse(res, HUB_DEVICE_R_DEVICE_DISABLED, "device '%s' is disabled", id);
    return 0;
}

int hub_device_authn_recheck(X509 *leaf, STACK_OF(X509) * chain,
                             const struct hub_registry_trust *trust, int64_t now,
                             enum hub_device_reason *reason, char detail[HUB_DEVICE_DETAIL_MAX])
{
    struct hub_err err = {0};
    int rc = verify_chain(leaf, chain, trust, now, &err);
    if (rc == 0 || rc == HUB_E_NOMEM) /* out of memory proves nothing: keep it */
        return 0;
    *reason = rc == HUB_E_CHAIN_UNTRUSTED ? HUB_DEVICE_R_CA_REVOKED : chain_reason(rc);
    snprintf(detail, HUB_DEVICE_DETAIL_MAX, "%s", err.msg);
    return -1;
}
