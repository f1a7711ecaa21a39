/*
 * dps: the attestation decision (rules in dps.h): which enrollment admits a
 * device, or the reason it is refused.
 *
 * "Nearest group": the number of issuer hops from the leaf to the group's
 * signing certificate along the presented certificates, each hop proven by
 * a signature (X509_check_issued + X509_verify), at most
 * HUB_PKI_VERIFY_MAX_DEPTH + 1 hops. The full validation policy runs once, on
 * the whole chain against the hub's verified CAs; the hop walk only ranks the
 * groups that chain covers.
 *
 * A chain that fails goes to match_pinned (rule 1a): only an individual
 * enrollment naming the leaf itself can still admit it, and then the leaf is
 * checked on its own (hub_dps__leaf_usable) since no CA vouches for it.
 */
#include "dps/dps_int.h"

#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/auth.h"
#include "common/util.h"
#include "pki/pki.h"

void hub_dps_match_clear(struct hub_dps_match *m)
{
    if (m == NULL)
        return;
    hub_dps_enrollment_clear(&m->enrollment);
    memset(m, 0, sizeof(*m));
}

static int refuse(struct hub_dps_match *m, enum hub_dps_refusal why, int code, struct hub_err *err,
                  const char *detail)
{
    m->refusal = why;
    return HUB_ERR(err, code, "%s: %s", hub_dps_refusal_name(why), detail);
}

/* 1 when `issuer` issued `x` (names and key ids match, signature verifies). */
static int issued_by(X509 *x, X509 *issuer)
{
    if (X509_check_issued(issuer, x) != X509_V_OK)
        return 0;
    EVP_PKEY *k = X509_get0_pubkey(issuer);
    return k != NULL && X509_verify(x, k) == 1;
}

static int same_cert(X509 *a, X509 *b)
{
    return X509_cmp(a, b) == 0;
}

/* Hops from leaf to signer along `chain` (1 = signer issued the leaf); 0 when
 * the signer is not an ancestor of the leaf. */
static int distance(X509 *leaf, STACK_OF(X509) * chain, X509 *signer)
{
    X509 *cur = leaf;
    for (int hop = 1; hop <= HUB_PKI_VERIFY_MAX_DEPTH + 1; hop++) {
        if (issued_by(cur, signer))
            return hop;
        X509 *next = NULL;
        for (int i = 0; chain != NULL && i < sk_X509_num(chain); i++) {
            X509 *c = sk_X509_value(chain, i);
            if (!same_cert(c, cur) && issued_by(cur, c)) {
                next = c;
                break;
            }
        }
        if (next == NULL)
            return 0;
        cur = next;
    }
    return 0;
}

/* 1 when `cert` is a verified CA, or chains (by signatures, through `chain`)
 * to one. */
static int under_verified(X509 *cert, STACK_OF(X509) * chain, STACK_OF(X509) * verified)
{
    X509 *cur = cert;
    for (int hop = 0; hop <= HUB_PKI_VERIFY_MAX_DEPTH + 1; hop++) {
        for (int i = 0; i < sk_X509_num(verified); i++) {
            X509 *v = sk_X509_value(verified, i);
            if (same_cert(cur, v) || issued_by(cur, v))
                return 1;
        }
        X509 *next = NULL;
        for (int i = 0; chain != NULL && i < sk_X509_num(chain); i++) {
            X509 *c = sk_X509_value(chain, i);
            if (!same_cert(c, cur) && issued_by(cur, c)) {
                next = c;
                break;
            }
        }
        if (next == NULL)
            return 0;
        cur = next;
    }
    return 0;
}

static int verified_cas(struct hub_dps *dps, STACK_OF(X509) * *out, struct hub_err *err)
{
    *out = sk_X509_new_null();
    if (*out == NULL)
        return HUB_ERR(err, HUB_E_NOMEM, "out of memory");
    struct hub_ca_cert_list *cas = NULL;
    int rc = hub_registry_ca_list1(dps->reg, &cas, err);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < cas->count; i++) {
        X509 *x = NULL;
        if (!cas->items[i].verified ||
            hub_pki_cert_load_mem(cas->items[i].pem, strlen(cas->items[i].pem), &x, NULL) != 0)
            continue;
        if (!sk_X509_push(*out, x))
            X509_free(x);
    }
    hub_ca_cert_list_free(cas);
    return 0;
}

static void leaf_facts(X509 *leaf, struct hub_dps_match *m)
{
    hub_pki_cert_subject_text(leaf, m->cert_subject, sizeof(m->cert_subject));
    char t[HUB_PKI_THUMBPRINT_MAX] = "";
    hub_pki_thumbprint(leaf, HUB_PKI_SHA1, t, NULL);
    snprintf(m->cert_thumbprint, sizeof(m->cert_thumbprint), "%s", t);
    int64_t nb = 0;
    hub_pki_cert_validity(leaf, &nb, &m->cert_not_after, NULL);
}

int hub_dps__leaf_usable(X509 *leaf, int64_t now, struct hub_err *err)
{
    int64_t nb = 0, na = 0;
    int rc = hub_pki_cert_validity(leaf, &nb, &na, err);
    if (rc != 0)
        return rc;
    char when[HUB_TIME_ISO_LEN];
    if (now < nb) {
        hub_time_iso8601((time_t)nb, when);
        return HUB_ERR(err, HUB_E_CERT_NOT_YET_VALID, "pinned certificate not valid before %s",
                       when);
    }
    if (now > na) { /* notAfter is inclusive (RFC 5280 4.1.2.5), as in pki */
        hub_time_iso8601((time_t)na, when);
        return HUB_ERR(err, HUB_E_CERT_EXPIRED, "pinned certificate expired at %s", when);
    }
    uint32_t flags = X509_get_extension_flags(leaf);
    /* A keyUsage or EKU that does not decode must not read as "absent". */
    if (flags & EXFLAG_INVALID)
        return HUB_ERR(err, HUB_E_CHAIN_PROFILE, "pinned certificate has a malformed extension");
    if ((flags & EXFLAG_XKUSAGE) &&
        !(X509_get_extended_key_usage(leaf) & (XKU_SSL_CLIENT | XKU_ANYEKU)))
        return HUB_ERR(err, HUB_E_CHAIN_EKU,
                       "pinned certificate's extendedKeyUsage does not allow clientAuth");
    /* keyUsage is not judged: the hub does not judge it either when a
     * selfSigned device connects (`hubctl cert root --subject ID`, the usual
     * way to make one, is keyCertSign-only), and the TLS handshake has
     * proven the key already. */
    return 0;
}

/* Which slot (0 primary, 1 secondary) of the individual x509 enrollment
 * `ind` names `leaf` (thumbprint SHA-1 or SHA-256, any case), or -1. An
 * enrolled certificate is stored with its SHA-256 thumbprint, so this is
 * also certificate equality. */
static int individual_slot(const struct hub_dps_enrollment *ind, X509 *leaf)
{
    if (ind->att_type != HUB_DPS_ATT_X509)
        return -1;
    char t1[HUB_PKI_THUMBPRINT_MAX] = "", t256[HUB_PKI_THUMBPRINT_MAX] = "";
    if (hub_pki_thumbprint(leaf, HUB_PKI_SHA1, t1, NULL) != 0 ||
        hub_pki_thumbprint(leaf, HUB_PKI_SHA256, t256, NULL) != 0)
        return -1;
    for (int i = 0; i < 2; i++)
        if (ind->thumbprint[i][0] &&
            (strcasecmp(ind->thumbprint[i], t1) == 0 || strcasecmp(ind->thumbprint[i], t256) == 0))
            return i;
    return -1;
}

/* Copies the leaf's CN into cn (cap bytes); 0 when it equals the
 * registration id. */
static int cn_is(X509 *leaf, const char *registration_id, char *cn, size_t cap)
{
    return hub_pki_cert_subject_cn(leaf, cn, cap, NULL) == 0 && strcmp(cn, registration_id) == 0
               ? 0
               : -1;
}

/*
 * An individual X.509 enrollment admits exactly the certificates it names,
 * so the device is pinned to them in the hub (selfSigned): the enrollment's
 * two slots become its thumbprints, the presented leaf by its SHA-256
 * (stronger than an enrolled SHA-1), the other slot as enrolled, so a device
 * rolling over to its other enrolled certificate still connects even when
 * the reprovision policy leaves the registry alone. Pinning also holds when
 * the chain validates: as certificateAuthority, any certificate with
 * CN = device id under any verified CA would connect as the device, and a
 * deviceId other than the registration id (the CN) could never connect.
 * A disabled enrollment refuses (DISABLED). Takes ownership of *ind either
 * way.
 */
static int admit_individual(struct hub_dps_match *out, struct hub_dps_enrollment *ind, int slot,
                            X509 *leaf, const char *registration_id, struct hub_err *err)
{
    if (!ind->enabled) {
        hub_dps_enrollment_clear(ind);
        return refuse(out, HUB_DPS_REFUSAL_DISABLED, HUB_E_FORBIDDEN, err,
                      "individual enrollment is disabled");
    }
    for (int i = 0; i < 2; i++)
        snprintf(out->device_thumbprint[i], sizeof(out->device_thumbprint[i]), "%s",
                 ind->thumbprint[i]);
    hub_pki_thumbprint(leaf, HUB_PKI_SHA256, out->device_thumbprint[slot], NULL);
    out->pinned = true;
    snprintf(out->device_id, sizeof(out->device_id), "%s",
             ind->device_id[0] ? ind->device_id : registration_id);
    out->enrollment = *ind;
    memset(ind, 0, sizeof(*ind));
    out->refusal = HUB_DPS_REFUSAL_NONE;
    return 0;
}

/*
 * Rule 1a (dps.h): the chain failed with `chain_rc` / `chain_msg`; an
 * individual enrollment that pins this very leaf may still admit it. Returns
 * as hub_dps_match_x509; CHAIN_INVALID with the chain's code when no such
 * enrollment exists.
 */
static int match_pinned(struct hub_dps *dps, const char *registration_id, X509 *leaf, int chain_rc,
                        const char *chain_msg, struct hub_dps_match *out, struct hub_err *err)
{
    /* Revoked: the CA withdrew the key; pinning it does not bring it back.
     * NOMEM and the like are no verdict on the certificate. */
    if (chain_rc == HUB_E_CHAIN_REVOKED || chain_rc == HUB_E_NOMEM) {
        out->refusal = HUB_DPS_REFUSAL_CHAIN_INVALID;
        return HUB_ERR(err, chain_rc, "CHAIN_INVALID: %s", chain_msg);
    }
    struct hub_dps_enrollment ind;
    struct hub_err gerr = {0};
    int rc = hub_dps_enrollment_get(dps, HUB_DPS_INDIVIDUAL, registration_id, &ind, &gerr);
    if (rc != 0 && rc != HUB_E_NOT_FOUND) {
        out->refusal = HUB_DPS_REFUSAL_INTERNAL;
        return HUB_ERR(err, rc, "%s", gerr.msg);
    }
    int slot = rc == 0 ? individual_slot(&ind, leaf) : -1;
    if (slot < 0) {
        hub_dps_enrollment_clear(&ind);
        out->refusal = HUB_DPS_REFUSAL_CHAIN_INVALID;
        return HUB_ERR(err, chain_rc, "CHAIN_INVALID: %s", chain_msg);
    }
    /* No CA vouches for the leaf: it must be fit for the job by itself. */
    struct hub_err lerr = {0};
    if ((rc = hub_dps__leaf_usable(leaf, hub_dps__now(dps), &lerr)) != 0) {
        hub_dps_enrollment_clear(&ind);
        out->refusal = HUB_DPS_REFUSAL_CHAIN_INVALID;
        return HUB_ERR(err, rc,
                       "CHAIN_INVALID: the enrolled certificate does not chain to a verified CA "
                       "and cannot stand alone: %s",
                       lerr.msg);
    }
    char cn[HUB_DPS_ID_SIZE + 1] = "";
    if (cn_is(leaf, registration_id, cn, sizeof(cn)) != 0) {
        hub_dps_enrollment_clear(&ind);
        out->refusal = HUB_DPS_REFUSAL_CN_MISMATCH;
        return HUB_ERR(err, HUB_E_CN_MISMATCH, "CN_MISMATCH: leaf CN '%.128s' is not '%.128s'", cn,
                       registration_id);
    }
    return admit_individual(out, &ind, slot, leaf, registration_id, err);
}

/* The signing certificates of group g: inline ones, or the referenced hub
 * CAs (which must be verified). *why is set when a reference is bad. */
static int group_signers(struct hub_dps *dps, const struct hub_dps_enrollment *g, X509 *out[2],
                         bool *inline_out, bool *bad_ref)
{
    out[0] = out[1] = NULL;
    *inline_out = false;
    for (int i = 0; i < 2; i++) {
        if (g->cert_pem[i] != NULL) {
            *inline_out = true;
            hub_pki_cert_load_mem(g->cert_pem[i], strlen(g->cert_pem[i]), &out[i], NULL);
        } else if (g->ca_ref[i][0]) {
            struct hub_ca_cert *ca = NULL;
            if (hub_registry_ca_get1(dps->reg, g->ca_ref[i], &ca, NULL) != 0 || !ca->verified) {
                *bad_ref = true;
            } else {
                hub_pki_cert_load_mem(ca->pem, strlen(ca->pem), &out[i], NULL);
            }
            hub_ca_cert_free(ca);
        }
    }
    return 0;
}

int hub_dps_match_x509(struct hub_dps *dps, const char *registration_id, X509 *leaf,
                       STACK_OF(X509) * chain, struct hub_dps_match *out, struct hub_err *err)
{
    memset(out, 0, sizeof(*out));
    if (hub_dps_id_check(registration_id, err) != 0 || leaf == NULL)
        return refuse(out, HUB_DPS_REFUSAL_NO_ENROLLMENT, HUB_E_NOT_FOUND, err,
                      "malformed registration id");
    leaf_facts(leaf, out);

    /* 1. The whole chain, full policy, against the hub's verified CAs. */
    struct hub_registry_trust *snap = NULL;
    int rc = hub_registry_trust_get1(dps->reg, &snap, err);
    if (rc != 0) {
        out->refusal = HUB_DPS_REFUSAL_INTERNAL;
        return rc;
    }
    struct hub_pki_verify_opts vo = {
        .at = hub_dps__now(dps), .eku = HUB_PKI_EKU_CLIENT_AUTH, .max_depth = -1};
    struct hub_err verr = {0};
    rc = hub_pki_chain_verify(hub_registry_trust_pki(snap), leaf, chain, &vo, &verr);
    hub_registry_trust_release(snap);
    if (rc != 0) /* 1a. unless an individual enrollment pins this leaf */
        return match_pinned(dps, registration_id, leaf, rc, verr.msg, out, err);

    /* 2. CN == registration id. */
    char cn[HUB_DPS_ID_SIZE + 1] = "";
    if (cn_is(leaf, registration_id, cn, sizeof(cn)) != 0) {
        out->refusal = HUB_DPS_REFUSAL_CN_MISMATCH;
        return HUB_ERR(err, HUB_E_CN_MISMATCH, "CN_MISMATCH: leaf CN '%.128s' is not '%.128s'", cn,
                       registration_id);
    }

    /* 3. An individual enrollment decides alone. */
    struct hub_dps_enrollment ind;
    rc = hub_dps_enrollment_get(dps, HUB_DPS_INDIVIDUAL, registration_id, &ind, err);
    if (rc == 0) {
        int slot = individual_slot(&ind, leaf);
        if (slot < 0) {
            hub_dps_enrollment_clear(&ind);
            return refuse(out, HUB_DPS_REFUSAL_NO_ENROLLMENT, HUB_E_NOT_FOUND, err,
                          "the individual enrollment of this registration id names another "
                          "certificate");
        }
        return admit_individual(out, &ind, slot, leaf, registration_id, err);
    }
    if (rc != HUB_E_NOT_FOUND) {
        out->refusal = HUB_DPS_REFUSAL_INTERNAL;
        return rc;
    }

    /* 4. The nearest x509 group. */
    struct hub_dps_enrollment_list *groups = NULL;
    if ((rc = hub_dps_enrollment_list1(dps, HUB_DPS_GROUP, &groups, err)) != 0) {
        out->refusal = HUB_DPS_REFUSAL_INTERNAL;
        return rc;
    }
    STACK_OF(X509) *verified = NULL;
    if ((rc = verified_cas(dps, &verified, err)) != 0) {
        sk_X509_pop_free(verified, X509_free);
        hub_dps_enrollment_list_free(groups);
        out->refusal = HUB_DPS_REFUSAL_INTERNAL;
        return rc;
    }
    int best = 0;
    size_t best_i = 0;
    bool unverified_signer = false, bad_ref = false;
    char bad_group[HUB_DPS_ID_SIZE] = "";
    for (size_t i = 0; i < groups->count; i++) {
        const struct hub_dps_enrollment *g = &groups->items[i];
        if (g->att_type != HUB_DPS_ATT_X509)
            continue;
        X509 *signers[2];
        bool is_inline = false, ref_bad = false;
        group_signers(dps, g, signers, &is_inline, &ref_bad);
        int d = 0;
        for (int s = 0; s < 2; s++) {
            if (signers[s] == NULL)
                continue;
            int ds = distance(leaf, chain, signers[s]);
            if (ds > 0 && is_inline && !under_verified(signers[s], chain, verified)) {
                unverified_signer = true;
                snprintf(bad_group, sizeof(bad_group), "%s", g->id);
                ds = 0;
            }
            if (ds > 0 && (d == 0 || ds < d))
                d = ds;
        }
        X509_free(signers[0]);
        X509_free(signers[1]);
        if (ref_bad && d == 0) {
            bad_ref = true;
            snprintf(bad_group, sizeof(bad_group), "%s", g->id);
        }
        if (d > 0 && (best == 0 || d < best)) {
            best = d;
            best_i = i;
        }
    }
    sk_X509_pop_free(verified, X509_free);
    if (best == 0) {
        hub_dps_enrollment_list_free(groups);
        if (unverified_signer) {
            out->refusal = HUB_DPS_REFUSAL_SIGNER_UNVERIFIED;
            return HUB_ERR(err, HUB_E_CHAIN_UNTRUSTED,
                           "SIGNER_UNVERIFIED: the signing certificate of group '%.128s' is "
                           "not a verified hub CA nor issued under one",
                           bad_group);
        }
        if (bad_ref) {
            out->refusal = HUB_DPS_REFUSAL_CA_REFERENCE_INVALID;
            return HUB_ERR(err, HUB_E_CHAIN_UNTRUSTED,
                           "CA_REFERENCE_INVALID: group '%.128s' references a CA that is "
                           "missing or not verified",
                           bad_group);
        }
        return refuse(out, HUB_DPS_REFUSAL_NO_ENROLLMENT, HUB_E_NOT_FOUND, err,
                      "no enrollment group's signing certificate is on the device's chain");
    }
    struct hub_dps_enrollment *win = &groups->items[best_i];
    if (!win->enabled) {
        rc = HUB_ERR(err, HUB_E_FORBIDDEN, "DISABLED: enrollment group '%.128s' is disabled",
                     win->id);
        out->refusal = HUB_DPS_REFUSAL_DISABLED;
        hub_dps_enrollment_list_free(groups);
        return rc;
    }
    out->enrollment = *win;
    memset(win, 0, sizeof(*win)); /* moved */
    hub_dps_enrollment_list_free(groups);
    snprintf(out->device_id, sizeof(out->device_id), "%s", registration_id);
    out->refusal = HUB_DPS_REFUSAL_NONE;
    return 0;
}

static int sas_check(struct hub_dps *dps, const char *registration_id, const char *token,
                     size_t len, const char *k1, const char *k2, struct hub_err *err)
{
    static const char *const no_hosts[] = {"-"};
    struct hub_auth_verify_cfg cfg = {.hosts = no_hosts, .host_count = 1, .max_ttl_s = 0};
    struct hub_auth_dps_req req = {.now = hub_dps__now(dps),
                                   .id_scope = dps->id_scope,
                                   .registration_id = registration_id,
                                   .keys = {k1, k2}};
    struct hub_auth_result res;
    return hub_auth_dps_verify(&cfg, &req, token, len, &res, err);
}

int hub_dps_match_symmetric(struct hub_dps *dps, const char *registration_id, const char *token,
                            size_t len, struct hub_dps_match *out, struct hub_err *err)
{
    memset(out, 0, sizeof(*out));
    if (hub_dps_id_check(registration_id, err) != 0)
        return refuse(out, HUB_DPS_REFUSAL_NO_ENROLLMENT, HUB_E_NOT_FOUND, err,
                      "malformed registration id");
    struct hub_dps_enrollment ind;
    int rc = hub_dps_enrollment_get(dps, HUB_DPS_INDIVIDUAL, registration_id, &ind, err);
    if (rc == 0) {
        if (ind.att_type != HUB_DPS_ATT_SYMMETRIC_KEY) {
            hub_dps_enrollment_clear(&ind);
            return refuse(out, HUB_DPS_REFUSAL_NO_ENROLLMENT, HUB_E_NOT_FOUND, err,
                          "the individual enrollment of this registration id is not "
                          "symmetricKey");
        }
        struct hub_err serr = {0};
        if (sas_check(dps, registration_id, token, len, ind.primary_key, ind.secondary_key,
                      &serr) != 0) {
            hub_dps_enrollment_clear(&ind);
            out->refusal = HUB_DPS_REFUSAL_BAD_SIGNATURE;
            return HUB_ERR(err, HUB_E_UNAUTHORIZED, "BAD_SIGNATURE: %s", serr.msg);
        }
        if (!ind.enabled) {
            hub_dps_enrollment_clear(&ind);
            return refuse(out, HUB_DPS_REFUSAL_DISABLED, HUB_E_FORBIDDEN, err,
                          "individual enrollment is disabled");
        }
        snprintf(out->device_id, sizeof(out->device_id), "%s",
                 ind.device_id[0] ? ind.device_id : registration_id);
        snprintf(out->device_primary_key, sizeof(out->device_primary_key), "%s", ind.primary_key);
        snprintf(out->device_secondary_key, sizeof(out->device_secondary_key), "%s",
                 ind.secondary_key);
        out->enrollment = ind;
        return 0;
    }
    if (rc != HUB_E_NOT_FOUND) {
        out->refusal = HUB_DPS_REFUSAL_INTERNAL;
        return rc;
    }
    struct hub_dps_enrollment_list *groups = NULL;
    if ((rc = hub_dps_enrollment_list1(dps, HUB_DPS_GROUP, &groups, err)) != 0) {
        out->refusal = HUB_DPS_REFUSAL_INTERNAL;
        return rc;
    }
    size_t candidates = 0;
    struct hub_err serr = {0};
    for (size_t i = 0; i < groups->count; i++) {
        struct hub_dps_enrollment *g = &groups->items[i];
        if (g->att_type != HUB_DPS_ATT_SYMMETRIC_KEY)
            continue;
        candidates++;
        char k1[HUB_AUTH_KEY_B64_MAX + 1], k2[HUB_AUTH_KEY_B64_MAX + 1];
        if (hub_auth_dps_derive_key(g->primary_key, registration_id, k1, NULL) != 0 ||
            hub_auth_dps_derive_key(g->secondary_key, registration_id, k2, NULL) != 0)
            continue;
        if (sas_check(dps, registration_id, token, len, k1, k2, &serr) != 0)
            continue;
        if (!g->enabled) {
            rc = HUB_ERR(err, HUB_E_FORBIDDEN, "DISABLED: enrollment group '%.128s' is disabled",
                         g->id);
            out->refusal = HUB_DPS_REFUSAL_DISABLED;
            hub_dps_enrollment_list_free(groups);
            return rc;
        }
        snprintf(out->device_id, sizeof(out->device_id), "%s", registration_id);
        snprintf(out->device_primary_key, sizeof(out->device_primary_key), "%s", k1);
        snprintf(out->device_secondary_key, sizeof(out->device_secondary_key), "%s", k2);
        out->enrollment = *g;
        memset(g, 0, sizeof(*g));
        hub_dps_enrollment_list_free(groups);
        return 0;
    }
    hub_dps_enrollment_list_free(groups);
    if (candidates == 0)
        return refuse(out, HUB_DPS_REFUSAL_NO_ENROLLMENT, HUB_E_NOT_FOUND, err,
                      "no symmetricKey enrollment for this registration id");
    out->refusal = HUB_DPS_REFUSAL_BAD_SIGNATURE;
    return HUB_ERR(err, HUB_E_UNAUTHORIZED,
                   "BAD_SIGNATURE: no symmetricKey group's derived key verifies the token (%s)",
                   serr.msg);
}
