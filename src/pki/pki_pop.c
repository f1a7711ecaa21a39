/*
 * Proof of possession of an uploaded CA (Azure IoT Hub's "verify" step): the
 * operator signs a certificate whose subject CN is the hub's random
 * verification code with the CA's private key. Only the holder of that key
 * can produce a certificate that (1) carries this code, (2) names the CA as
 * issuer and (3) verifies under the CA's public key. (4) The validity check
 * keeps a stale verification certificate from being replayed forever.
 */
#include "pki/pki.h"
#include "pki/pki_int.h"

#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>

#include "common/util.h"

/* Verification codes are short hex strings; a CN is at most 64 characters
 * (RFC 5280 ub-common-name). Anything longer cannot match. */
#define POP_CN_MAX 256

int hub_pki_verification_cert_check(X509 *ca, X509 *verification_cert, const char *code,
                                    int64_t now, struct hub_err *err)
{
    if (ca == NULL || verification_cert == NULL || code == NULL || code[0] == '\0')
        return HUB_ERR(err, HUB_E_INVALID_ARG, "hub_pki_verification_cert_check: bad argument");

    char shown_code[80];
    hub_pki__printable(code, shown_code, sizeof(shown_code));

    /* 1. The subject CN is the code, byte for byte. */
    char cn[POP_CN_MAX];
    struct hub_err cn_err = {0};
    int rc = hub_pki_cert_subject_cn(verification_cert, cn, sizeof(cn), &cn_err);
    if (rc != 0)
        return HUB_ERR(err, HUB_E_CN_MISMATCH,
                       "verification certificate CN must be the verification code '%s': %s",
                       shown_code, cn_err.msg);
    if (!hub_ct_equal(cn, strlen(cn), code, strlen(code))) {
        char shown_cn[80];
        hub_pki__printable(cn, shown_cn, sizeof(shown_cn));
        return HUB_ERR(err, HUB_E_CN_MISMATCH,
                       "verification certificate CN is '%s', expected the verification code '%s'",
                       shown_cn, shown_code);
    }

    /* 2. Issued by this CA: issuer name and signature. */
    char ca_subject[128];
    hub_pki_cert_subject_text(ca, ca_subject, sizeof(ca_subject));
    if (X509_NAME_cmp(X509_get_issuer_name(verification_cert), X509_get_subject_name(ca)) != 0) {
        char issuer[128];
        BIO *bio = BIO_new(BIO_s_mem());
        issuer[0] = '\0';
        if (bio != NULL) {
            unsigned long flags = XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB;
            if (X509_NAME_print_ex(bio, X509_get_issuer_name(verification_cert), 0, flags) >= 0) {
                int n = BIO_read(bio, issuer, (int)sizeof(issuer) - 1);
                issuer[n > 0 ? n : 0] = '\0';
            }
            BIO_free(bio);
        }
        ERR_clear_error();
        return HUB_ERR(err, HUB_E_CHAIN_SIGNATURE,
                       "verification certificate was issued by '%s', not by the CA '%s'", issuer,
                       ca_subject);
    }
    EVP_PKEY *ca_key = X509_get0_pubkey(ca);
    int ok = ca_key != NULL && X509_verify(verification_cert, ca_key) == 1;
    ERR_clear_error();
    if (!ok)
        return HUB_ERR(err, HUB_E_CHAIN_SIGNATURE,
                       "verification certificate signature does not verify with the public key "
                       "of the CA '%s' (signed with another key)",
                       ca_subject);

    /* 3. Valid now. */
    int64_t not_before = 0, not_after = 0;
    rc = hub_pki_cert_validity(verification_cert, &not_before, &not_after, err);
    if (rc != 0)
        return rc;
    char when[HUB_TIME_ISO_LEN];
    if (now < not_before) {
        hub_time_iso8601((time_t)not_before, when);
        return HUB_ERR(err, HUB_E_CERT_NOT_YET_VALID,
                       "verification certificate is not valid before %s", when);
    }
    if (now > not_after) {
        hub_time_iso8601((time_t)not_after, when);
        return HUB_ERR(err, HUB_E_CERT_EXPIRED, "verification certificate expired at %s", when);
    }
    return 0;
}
