/*
 * registry: the CA certificate lifecycle (protocol reference §5).
 *
 *   upload ──> unverified ──code_generate──> code outstanding (expires)
 *                  ^                               │ verify (CN == code, signed by CA key)
 *   re-upload ─────┘ (resets)                      v
 *                                               verified (code consumed)
 *
 * Every step is read, decide, then a compare-and-swap write on the etag that
 * was read, so a concurrent step in between makes this one fail cleanly
 * (ETAG_MISMATCH) rather than act on stale state.
 */
#include "registry/registry_int.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/x509.h>

#include "common/util.h"

/* How often upload retries when a concurrent upload/delete of the same name
 * races it between its read and its write. */
#define UPLOAD_ATTEMPTS 3

/* Loads and checks the uploaded certificate and fills the certificate
 * columns of *rec (rec->pem is allocated). */
static int ca_record_from_cert(const struct hub_registry *reg, const char *name, const void *cert,
                               size_t len, struct hub_ca_cert *rec, struct hub_err *err)
{
    X509 *x = NULL;
    int rc = hub_pki_cert_load_mem(cert, len, &x, err);
    if (rc != 0)
        return rc;
    char subject[HUB_CA_SUBJECT_SIZE];
    hub_pki_cert_subject_text(x, subject, sizeof(subject));
    if (!hub_pki_cert_is_ca(x)) {
        rc = HUB_ERR(err, HUB_E_CHAIN_NOT_CA,
                     "certificate '%s' is not a CA (no basicConstraints CA:TRUE): %s", name,
                     subject);
        goto free_cert;
    }
    int64_t nb = 0, na = 0;
    if ((rc = hub_pki_cert_validity(x, &nb, &na, err)) != 0)
        goto free_cert;
    if (na <= hub_registry__now(reg)) {
        char when[HUB_TIME_ISO_LEN];
        hub_time_iso8601((time_t)na, when);
        rc = HUB_ERR(err, HUB_E_CERT_EXPIRED, "CA certificate '%s' expired at %s: %s", name, when,
                     subject);
        goto free_cert;
    }
    memset(rec, 0, sizeof(*rec));
    snprintf(rec->name, sizeof(rec->name), "%s", name);
    memcpy(rec->subject, subject, sizeof(rec->subject));
    rec->not_before = nb;
    rec->not_after = na;
    if ((rc = hub_pki_thumbprint(x, HUB_PKI_SHA1, rec->thumbprint_sha1, err)) != 0 ||
        (rc = hub_pki_thumbprint(x, HUB_PKI_SHA256, rec->thumbprint_sha256, err)) != 0)
        goto free_cert;
    /* Store the certificate re-encoded: exactly one block, nothing else the
     * operator's file carried. */
    rc = hub_pki_cert_to_pem(x, &rec->pem, err);
free_cert:
    X509_free(x);
    return rc;
}

/* Loads the CRL text `pem` and checks that the CA certificate in `ca_pem`
 * issued it. On success *crl_new is the caller's (X509_CRL_free). */
static int crl_load_checked(const char *ca_pem, const void *crl, size_t len, X509_CRL **crl_new,
                            struct hub_err *err)
{
    X509 *ca = NULL;
    int rc = hub_pki_cert_load_mem(ca_pem, strlen(ca_pem), &ca, err);
    if (rc != 0)
        return rc;
    X509_CRL *c = NULL;
    if ((rc = hub_pki_crl_load_mem(crl, len, &c, err)) == 0 &&
        (rc = hub_pki_crl_issuer_check(ca, c, err)) == 0) {
        *crl_new = c;
        c = NULL;
    }
    X509_CRL_free(c);
    X509_free(ca);
    return rc;
}

/* Fills the CRL columns of *rec from crl (rec->crl_pem is allocated; a
 * previous one is freed). */
static int crl_fill(struct hub_ca_cert *rec, X509_CRL *crl, int64_t updated, struct hub_err *err)
{
    struct hub_pki_crl_info info;
    char *pem = NULL;
    int rc = hub_pki_crl_info_get(crl, &info, err);
    if (rc != 0 || (rc = hub_pki_crl_to_pem(crl, &pem, err)) != 0)
        return rc;
    free(rec->crl_pem);
    rec->crl_pem = pem;
    rec->crl_this_update = info.this_update;
    rec->crl_next_update = info.next_update;
    rec->crl_revoked_count = (int64_t)info.revoked_count;
    rec->crl_updated = updated;
    return 0;
}

static void crl_clear(struct hub_ca_cert *rec)
{
    free(rec->crl_pem);
    rec->crl_pem = NULL;
    rec->crl_this_update = rec->crl_next_update = rec->crl_revoked_count = rec->crl_updated = 0;
}

/* A replaced CA keeps its CRL only if the new certificate verifies it. */
static void crl_carry_over(struct hub_ca_cert *rec, const struct hub_ca_cert *prev)
{
    crl_clear(rec);
    if (prev->crl_pem == NULL || prev->crl_pem[0] == '\0')
        return;
    X509_CRL *crl = NULL;
    if (crl_load_checked(rec->pem, prev->crl_pem, strlen(prev->crl_pem), &crl, NULL) != 0)
        return;
    char *pem = strdup(prev->crl_pem);
    if (pem != NULL) {
        rec->crl_pem = pem;
        rec->crl_this_update = prev->crl_this_update;
        rec->crl_next_update = prev->crl_next_update;
        rec->crl_revoked_count = prev->crl_revoked_count;
        rec->crl_updated = prev->crl_updated;
    }
    X509_CRL_free(crl);
}

static int copy_out(const struct hub_ca_cert *rec, struct hub_ca_cert **out_new,
                    struct hub_err *err)
{
    if (out_new == NULL)
        return 0;
    struct hub_ca_cert *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return HUB_ERR(err, HUB_E_NOMEM, "out of memory");
    int rc = hub_ca_cert_copy(c, rec, err);
    if (rc != 0) {
        free(c);
        return rc;
    }
    *out_new = c;
    return 0;
}

int hub_registry_ca_upload(struct hub_registry *reg, const char *name, const void *cert, size_t len,
                           bool verified, const char *if_match, bool *created_out,
                           struct hub_ca_cert **out_new, struct hub_err *err)
{
    int rc = hub_registry_ca_name_check(name, err);
    if (rc != 0)
        return rc;
    struct hub_ca_cert rec;
    if ((rc = ca_record_from_cert(reg, name, cert, len, &rec, err)) != 0)
        return rc;
    rec.verified = verified;
    const char *cond = hub_registry__if_match(if_match);
    bool created = false;

    for (int attempt = 0; attempt < UPLOAD_ATTEMPTS; attempt++) {
        struct hub_ca_cert *prev = NULL;
        struct hub_err get_err = {0};
        rc = hub_store_ca_get1(reg->store, name, &prev, &get_err);
        if (rc != 0 && rc != HUB_E_NOT_FOUND) {
            if (err != NULL)
                *err = get_err;
            goto clear_rec;
        }
        bool had_prev = prev != NULL;
        int64_t now = hub_registry__now(reg);
        rec.updated = now;
        if (!had_prev) {
            if (cond != NULL) {
                rc = HUB_ERR(err, HUB_E_ETAG_MISMATCH,
                             "CA certificate '%s' does not exist (If-Match given)", name);
                goto clear_rec;
            }
            rec.created = now;
            if ((rc = hub_registry__etag_new(NULL, rec.etag, err)) != 0)
                goto clear_rec;
            rc = hub_store_ca_insert(reg->store, &rec, reg->max_cas, err);
            created = rc == 0;
        } else {
            rec.created = prev->created;
            crl_carry_over(&rec, prev);
            rc = hub_registry__etag_new(prev->etag, rec.etag, err);
            if (rc == 0)
                rc = hub_store_ca_update(reg->store, &rec, cond ? cond : prev->etag, err);
            /* A mismatch against the caller's etag is final; against our own
             * read it means someone raced us: read again. */
            if (rc == HUB_E_ETAG_MISMATCH && cond == NULL)
                rc = HUB_E_BUSY;
            hub_ca_cert_free(prev);
        }
        if (rc == 0) {
            hub_registry__ca_changed(reg);
            break;
        }
        bool raced = rc == HUB_E_EXISTS || rc == HUB_E_BUSY || (had_prev && rc == HUB_E_NOT_FOUND);
        if (!raced)
            goto clear_rec;
    }
    if (rc != 0) {
        rc = HUB_ERR(err, HUB_E_BUSY, "CA certificate '%s' is being changed concurrently", name);
        goto clear_rec;
    }
    if (created_out != NULL)
        *created_out = created;
    rc = copy_out(&rec, out_new, err);
clear_rec:
    hub_ca_cert_clear(&rec);
    return rc;
}

int hub_registry_ca_get1(struct hub_registry *reg, const char *name, struct hub_ca_cert **out_new,
                         struct hub_err *err)
{
    int rc = hub_registry_ca_name_check(name, err);
    if (rc != 0)
        return rc;
    return hub_store_ca_get1(reg->store, name, out_new, err);
}

int hub_registry_ca_list1(struct hub_registry *reg, struct hub_ca_cert_list **out_new,
                          struct hub_err *err)
{
    return hub_store_ca_list1(reg->store, false, out_new, err);
}

int hub_registry_ca_delete(struct hub_registry *reg, const char *name, const char *if_match,
                           struct hub_err *err)
{
    int rc = hub_registry_ca_name_check(name, err);
    if (rc != 0)
        return rc;
    rc = hub_store_ca_delete(reg->store, name, hub_registry__if_match(if_match), err);
    if (rc == 0)
        hub_registry__ca_changed(reg);
    return rc;
}

/* Reads CA `name` and checks the caller's etag against it. */
static int ca_read_checked(struct hub_registry *reg, const char *name, const char *if_match,
                           struct hub_ca_cert **out_new, struct hub_err *err)
{
    int rc = hub_registry_ca_get1(reg, name, out_new, err);
    if (rc != 0)
        return rc;
    const char *cond = hub_registry__if_match(if_match);
    if (cond != NULL && strcmp(cond, (*out_new)->etag) != 0) {
        rc = HUB_ERR(err, HUB_E_ETAG_MISMATCH, "CA certificate '%s' has changed (etag %s)", name,
                     (*out_new)->etag);
        hub_ca_cert_free(*out_new);
        *out_new = NULL;
    }
    return rc;
}

int hub_registry_ca_code_generate(struct hub_registry *reg, const char *name, const char *if_match,
                                  struct hub_ca_cert **out_new, struct hub_err *err)
{
    struct hub_ca_cert *ca = NULL;
    int rc = ca_read_checked(reg, name, if_match, &ca, err);
    if (rc != 0)
        return rc;
    char old_etag[HUB_ETAG_SIZE];
    memcpy(old_etag, ca->etag, sizeof(old_etag));
    if ((rc = hub_random_hex(HUB_REGISTRY_CODE_BYTES, ca->verification_code, err)) != 0 ||
        (rc = hub_registry__etag_new(old_etag, ca->etag, err)) != 0)
        goto free_ca;
    int64_t now = hub_registry__now(reg);
    ca->code_expires = now + reg->code_ttl_s;
    ca->updated = now;
    if ((rc = hub_store_ca_update(reg->store, ca, old_etag, err)) != 0)
        goto free_ca;
    if (out_new != NULL) {
        *out_new = ca;
        return 0;
    }
free_ca:
    hub_ca_cert_free(ca);
    return rc;
}

int hub_registry_ca_verify(struct hub_registry *reg, const char *name, const char *if_match,
                           const void *cert, size_t len, struct hub_ca_cert **out_new,
                           struct hub_err *err)
{
    struct hub_ca_cert *ca = NULL;
    int rc = ca_read_checked(reg, name, if_match, &ca, err);
    if (rc != 0)
        return rc;
    int64_t now = hub_registry__now(reg);
    if (ca->verification_code[0] == '\0') {
        rc =
            HUB_ERR(err, HUB_E_NO_CODE,
                    "CA certificate '%s' has no verification code outstanding; generate one", name);
        goto free_ca;
    }
    if (now >= ca->code_expires) {
        char when[HUB_TIME_ISO_LEN];
        hub_time_iso8601((time_t)ca->code_expires, when);
        rc = HUB_ERR(err, HUB_E_CODE_EXPIRED,
                     "verification code of '%s' expired at %s; generate a new one", name, when);
        goto free_ca;
    }
    X509 *ca_x = NULL, *proof = NULL;
    if ((rc = hub_pki_cert_load_mem(ca->pem, strlen(ca->pem), &ca_x, err)) != 0)
        goto free_ca;
    if ((rc = hub_pki_cert_load_mem(cert, len, &proof, err)) != 0)
        goto free_x509;
    if ((rc = hub_pki_verification_cert_check(ca_x, proof, ca->verification_code, now, err)) != 0)
        goto free_x509;

    char old_etag[HUB_ETAG_SIZE];
    memcpy(old_etag, ca->etag, sizeof(old_etag));
    if ((rc = hub_registry__etag_new(old_etag, ca->etag, err)) != 0)
        goto free_x509;
    ca->verified = true;
    ca->verification_code[0] = '\0'; /* consumed: a second verify needs a new code */
    ca->code_expires = 0;
    ca->updated = now;
    /* Conditional on the etag read above: if the code was regenerated or the
     * CA re-uploaded meanwhile, this proof was for a state that is gone. */
    if ((rc = hub_store_ca_update(reg->store, ca, old_etag, err)) != 0)
        goto free_x509;
    hub_registry__ca_changed(reg);
    if (out_new != NULL) {
        *out_new = ca;
        ca = NULL;
    }
free_x509:
    X509_free(proof);
    X509_free(ca_x);
free_ca:
    hub_ca_cert_free(ca);
    return rc;
}

int hub_registry_ca_crl_set(struct hub_registry *reg, const char *name, const void *crl, size_t len,
                            const char *if_match, struct hub_ca_cert **out_new, struct hub_err *err)
{
    struct hub_ca_cert *ca = NULL;
    int rc = ca_read_checked(reg, name, if_match, &ca, err);
    if (rc != 0)
        return rc;
    X509_CRL *x = NULL;
    if ((rc = crl_load_checked(ca->pem, crl, len, &x, err)) != 0)
        goto free_ca;
    int64_t now = hub_registry__now(reg);
    struct hub_pki_crl_info info;
    if ((rc = hub_pki_crl_info_get(x, &info, err)) != 0)
        goto free_crl;
    /* A replayed older CRL would un-revoke what the newer one lists. */
    if (ca->crl_pem != NULL && ca->crl_pem[0] != '\0' && info.this_update < ca->crl_this_update) {
        char when[HUB_TIME_ISO_LEN], stored[HUB_TIME_ISO_LEN];
        hub_time_iso8601((time_t)info.this_update, when);
        hub_time_iso8601((time_t)ca->crl_this_update, stored);
        rc = HUB_ERR(err, HUB_E_INVALID_ARG,
                     "the CRL of '%s' was issued at %s, before the stored one (%s); upload a "
                     "newer CRL",
                     name, when, stored);
        goto free_crl;
    }
    char old_etag[HUB_ETAG_SIZE];
    memcpy(old_etag, ca->etag, sizeof(old_etag));
    if ((rc = crl_fill(ca, x, now, err)) != 0 ||
        (rc = hub_registry__etag_new(old_etag, ca->etag, err)) != 0)
        goto free_crl;
    ca->updated = now;
    /* Conditional on the etag read above: the CRL was checked against the
     * certificate of that state; a re-upload meanwhile may have replaced it. */
    if ((rc = hub_store_ca_update(reg->store, ca, old_etag, err)) != 0)
        goto free_crl;
    hub_registry__ca_changed(reg);
    if (out_new != NULL) {
        *out_new = ca;
        ca = NULL;
    }
free_crl:
    X509_CRL_free(x);
free_ca:
    hub_ca_cert_free(ca);
    return rc;
}
