/*
 * Certificate revocation lists: what a CRL says and whether a registered CA
 * issued it (docs/security.md, "Revocation"). Loading is in pki_load.c (it
 * shares the PEM and private-key scanners); applying CRLs to a path is in
 * pki_verify.c.
 *
 * Supported: complete, direct CRLs (RFC 5280 5.) of one CA, v1 or v2,
 * signed by that CA's own key. Not supported, and refused at upload so the
 * operator learns it then rather than by a device that should have been
 * refused: partitioned CRLs (issuingDistributionPoint), delta CRLs, indirect
 * CRLs (entries with a certificateIssuer extension), unknown critical
 * extensions. A hub that silently applied half of a partitioned CRL would
 * let through what the other half revokes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "pki/pki.h"
#include "pki/pki_int.h"

int hub_pki_crl_to_pem(X509_CRL *crl, char **out_new, struct hub_err *err)
{
    if (crl == NULL || out_new == NULL)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "hub_pki_crl_to_pem: NULL argument");
    *out_new = NULL;
    BIO *b = BIO_new(BIO_s_mem());
    if (b == NULL || !PEM_write_bio_X509_CRL(b, crl)) {
        BIO_free(b);
        ERR_clear_error();
        return HUB_ERR(err, HUB_E_NOMEM, "cannot encode the CRL as PEM");
    }
    char *p = NULL;
    long n = BIO_get_mem_data(b, &p);
    char *out = n > 0 ? malloc((size_t)n + 1) : NULL;
    if (out == NULL) {
        BIO_free(b);
        return HUB_ERR(err, HUB_E_NOMEM, "out of memory encoding the CRL");
    }
    memcpy(out, p, (size_t)n);
    out[n] = '\0';
    BIO_free(b);
    *out_new = out;
    return 0;
}

int hub_pki_crl_info_get(X509_CRL *crl, struct hub_pki_crl_info *out, struct hub_err *err)
{
    if (crl == NULL || out == NULL)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "hub_pki_crl_info_get: NULL argument");
    memset(out, 0, sizeof(*out));
    int rc = hub_pki__asn1_time_unix(X509_CRL_get0_lastUpdate(crl), &out->this_update, err);
    if (rc != 0)
        return rc;
    const ASN1_TIME *next = X509_CRL_get0_nextUpdate(crl);
    if (next != NULL && (rc = hub_pki__asn1_time_unix(next, &out->next_update, err)) != 0)
        return rc;
    STACK_OF(X509_REVOKED) *revoked = X509_CRL_get_REVOKED(crl);
    int n = revoked != NULL ? sk_X509_REVOKED_num(revoked) : 0;
    out->revoked_count = n > 0 ? (size_t)n : 0;
    return 0;
}

static void name_text(const X509_NAME *nm, char *out, size_t cap)
{
    out[0] = '\0';
    BIO *b = BIO_new(BIO_s_mem());
    if (b == NULL)
        return;
    if (X509_NAME_print_ex(b, nm, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) >= 0) {
        int n = BIO_read(b, out, (int)cap - 1);
        out[n > 0 ? n : 0] = '\0';
    }
    BIO_free(b);
    char safe[256];
    size_t n = sizeof(safe) < cap ? sizeof(safe) : cap;
    hub_pki__printable(out, safe, n);
    memcpy(out, safe, strnlen(safe, n - 1) + 1); /* safe fits: n <= cap */
    out[n - 1] = '\0';
}

/* The CRL covers every certificate the CA issued, and nothing else. */
static int check_scope(X509_CRL *crl, struct hub_err *err)
{
    int n = X509_CRL_get_ext_count(crl);
    for (int i = 0; i < n; i++) {
        X509_EXTENSION *ext = X509_CRL_get_ext(crl, i);
        int nid = OBJ_obj2nid(X509_EXTENSION_get_object(ext));
        if (nid == NID_issuing_distribution_point)
            return HUB_ERR(err, HUB_E_INVALID_ARG,
                           "partitioned or indirect CRLs (issuingDistributionPoint) are not "
                           "supported; upload the CA's complete CRL");
        if (nid == NID_delta_crl)
            return HUB_ERR(err, HUB_E_INVALID_ARG,
                           "delta CRLs are not supported; upload the CA's complete CRL");
        if (X509_EXTENSION_get_critical(ext) && nid != NID_crl_number &&
            nid != NID_authority_key_identifier) {
            char oid[80];
            OBJ_obj2txt(oid, sizeof(oid), X509_EXTENSION_get_object(ext), 0);
            return HUB_ERR(err, HUB_E_INVALID_ARG, "CRL has an unsupported critical extension %s",
                           oid);
        }
    }
    STACK_OF(X509_REVOKED) *revoked = X509_CRL_get_REVOKED(crl);
    for (int i = 0; revoked != NULL && i < sk_X509_REVOKED_num(revoked); i++) {
        const X509_REVOKED *r = sk_X509_REVOKED_value(revoked, i);
        const STACK_OF(X509_EXTENSION) *exts = X509_REVOKED_get0_extensions(r);
        for (int j = 0; exts != NULL && j < sk_X509_EXTENSION_num(exts); j++) {
            X509_EXTENSION *ext = sk_X509_EXTENSION_value(exts, j);
            int nid = OBJ_obj2nid(X509_EXTENSION_get_object(ext));
            if (nid == NID_certificate_issuer)
                return HUB_ERR(err, HUB_E_INVALID_ARG,
                               "indirect CRL entries (certificateIssuer) are not supported");
            if (X509_EXTENSION_get_critical(ext) && nid != NID_crl_reason &&
                nid != NID_invalidity_date)
                return HUB_ERR(err, HUB_E_INVALID_ARG,
                               "CRL entry %d has an unsupported critical extension", i);
        }
    }
    return 0;
}

int hub_pki_crl_issuer_check(X509 *ca, X509_CRL *crl, struct hub_err *err)
{
    if (ca == NULL || crl == NULL)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "hub_pki_crl_issuer_check: NULL argument");
    char ca_subj[160], crl_issuer[160];
    if (X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(ca)) != 0) {
        name_text(X509_CRL_get_issuer(crl), crl_issuer, sizeof(crl_issuer));
        name_text(X509_get_subject_name(ca), ca_subj, sizeof(ca_subj));
        return HUB_ERR(err, HUB_E_CHAIN_UNTRUSTED, "the CRL was issued by '%s', not by the CA '%s'",
                       crl_issuer, ca_subj);
    }
    /* A CRL's AKI names the key that signed it; a different key id is
     * another CA that happens to share the name. */
    AUTHORITY_KEYID *akid = X509_CRL_get_ext_d2i(crl, NID_authority_key_identifier, NULL, NULL);
    const ASN1_OCTET_STRING *skid = X509_get0_subject_key_id(ca);
    int mismatch = akid != NULL && akid->keyid != NULL && skid != NULL &&
                   ASN1_OCTET_STRING_cmp(akid->keyid, skid) != 0;
    AUTHORITY_KEYID_free(akid);
    ERR_clear_error();
    if (mismatch) {
        name_text(X509_get_subject_name(ca), ca_subj, sizeof(ca_subj));
        return HUB_ERR(err, HUB_E_CHAIN_UNTRUSTED,
                       "the CRL's authority key identifier is not the key identifier of the CA "
                       "'%s'",
                       ca_subj);
    }
    EVP_PKEY *key = X509_get0_pubkey(ca);
    int ok = key != NULL && X509_CRL_verify(crl, key) == 1;
    ERR_clear_error();
    if (!ok) {
        name_text(X509_get_subject_name(ca), ca_subj, sizeof(ca_subj));
        return HUB_ERR(err, HUB_E_CHAIN_SIGNATURE,
                       "the CRL's signature does not verify with the public key of the CA '%s'",
                       ca_subj);
    }
    return check_scope(crl, err);
}

int hub_pki_crl_lists(X509_CRL *crl, X509 *cert)
{
    if (crl == NULL || cert == NULL)
        return 0;
    X509_REVOKED *rev = NULL;
    /* By serial: the issuer match is the caller's (pki_verify pairs a CRL
     * with its signer's name and key). 1 = listed, 2 = removeFromCRL (delta
     * CRLs only, refused at load), 0 = not listed. */
    int r = X509_CRL_get0_by_serial(crl, &rev, X509_get0_serialNumber(cert));
    ERR_clear_error();
    return r == 1;
}
