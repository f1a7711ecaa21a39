/*
 * Facts about one certificate: thumbprints, names, CA flag, validity, PEM.
 */
#include "pki/pki.h"
#include "pki/pki_int.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "common/util.h"

int hub_pki__asn1_time_unix(const ASN1_TIME *t, int64_t *out, struct hub_err *err)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1) {
        ERR_clear_error();
        return HUB_ERR(err, HUB_E_PARSE, "malformed certificate time");
    }
    /* timegm, not mktime: certificate times are UTC. */
    *out = (int64_t)timegm(&tm);
    return 0;
}

int hub_pki_thumbprint(X509 *cert, enum hub_pki_digest digest, char out[HUB_PKI_THUMBPRINT_MAX],
                       struct hub_err *err)
{
    if (cert == NULL || out == NULL)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "hub_pki_thumbprint: NULL argument");
    out[0] = '\0';
    const EVP_MD *md;
    switch (digest) {
    case HUB_PKI_SHA1:
        md = EVP_sha1();
        break;
    case HUB_PKI_SHA256:
        md = EVP_sha256();
        break;
    default:
        return HUB_ERR(err, HUB_E_INVALID_ARG, "unknown digest %d", (int)digest);
    }
    unsigned char *der = NULL;
    int der_len = i2d_X509(cert, &der);
    if (der_len <= 0) {
        ERR_clear_error();
        return HUB_ERR(err, HUB_E_CRYPTO, "cannot encode certificate as DER");
    }
    unsigned char md_buf[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    int ok = EVP_Digest(der, (size_t)der_len, md_buf, &md_len, md, NULL);
    OPENSSL_free(der);
    if (ok != 1 || md_len * 2 + 1 > HUB_PKI_THUMBPRINT_MAX) {
        ERR_clear_error();
        return HUB_ERR(err, HUB_E_CRYPTO, "digest failed");
    }
    hub_hex_upper(md_buf, md_len, out);
    return 0;
}

int hub_pki_cert_subject_cn(X509 *cert, char *out, size_t cap, struct hub_err *err)
{
    if (cert == NULL || out == NULL || cap == 0)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "hub_pki_cert_subject_cn: bad argument");
    out[0] = '\0';
    const X509_NAME *name = X509_get_subject_name(cert);
    int idx = -1, last = -1;
    /* The last CN is the most specific one (RFC 6125 practice). */
    while ((idx = X509_NAME_get_index_by_NID(name, NID_commonName, idx)) >= 0)
        last = idx;
    if (last < 0)
        return HUB_ERR(err, HUB_E_NOT_FOUND, "certificate subject has no CN");
    const ASN1_STRING *s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, last));
    unsigned char *utf8 = NULL;
    int n = ASN1_STRING_to_UTF8(&utf8, s);
    if (n < 0) {
        ERR_clear_error();
        return HUB_ERR(err, HUB_E_PARSE, "certificate CN is not a valid string");
    }
    int rc = 0;
    if (memchr(utf8, '\0', (size_t)n) != NULL)
        rc = HUB_ERR(err, HUB_E_PARSE, "certificate CN holds a NUL byte");
    else if ((size_t)n + 1 > cap)
        rc = HUB_ERR(err, HUB_E_TOO_LARGE, "certificate CN is %d bytes, more than %zu", n, cap - 1);
    else
        memcpy(out, utf8, (size_t)n + 1);
    OPENSSL_free(utf8);
    return rc;
}

void hub_pki_cert_subject_text(X509 *cert, char *out, size_t cap)
{
    if (out == NULL || cap == 0)
        return;
    out[0] = '\0';
    if (cert == NULL)
        return;
    BIO *bio = BIO_new(BIO_s_mem());
    if (bio == NULL)
        return;
    /* RFC 2253 order and escaping, but UTF-8 kept readable; control
     * characters stay escaped so the text is safe in a log line. */
    unsigned long flags = (XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) | ASN1_STRFLGS_UTF8_CONVERT;
    if (X509_NAME_print_ex(bio, X509_get_subject_name(cert), 0, flags) >= 0) {
        char *data = NULL;
        long n = BIO_get_mem_data(bio, &data);
        if (n > 0) {
            size_t len = (size_t)n < cap - 1 ? (size_t)n : cap - 1;
            /* Cut at a character boundary: the text goes into JSON, which
             * refuses a split UTF-8 sequence. */
            if (len < (size_t)n)
                while (len > 0 && ((unsigned char)data[len] & 0xC0) == 0x80)
                    len--;
            memcpy(out, data, len);
            out[len] = '\0';
        }
    }
    ERR_clear_error();
    BIO_free(bio);
}

int hub_pki_cert_is_ca(X509 *cert)
{
    if (cert == NULL)
        return 0;
    int crit = 0;
    BASIC_CONSTRAINTS *bc = X509_get_ext_d2i(cert, NID_basic_constraints, &crit, NULL);
    int ca = bc != NULL && bc->ca;
    BASIC_CONSTRAINTS_free(bc);
    ERR_clear_error();
    return ca;
}

int hub_pki_cert_validity(X509 *cert, int64_t *not_before, int64_t *not_after, struct hub_err *err)
{
    if (cert == NULL || not_before == NULL || not_after == NULL)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "hub_pki_cert_validity: NULL argument");
    int rc = hub_pki__asn1_time_unix(X509_get0_notBefore(cert), not_before, err);
    if (rc == 0)
        rc = hub_pki__asn1_time_unix(X509_get0_notAfter(cert), not_after, err);
    return rc;
}

int hub_pki_cert_to_pem(X509 *cert, char **out_new, struct hub_err *err)
{
    if (cert == NULL || out_new == NULL)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "hub_pki_cert_to_pem: NULL argument");
    *out_new = NULL;
    BIO *bio = BIO_new(BIO_s_mem());
    if (bio == NULL)
        return HUB_ERR(err, HUB_E_NOMEM, "out of memory");
    int rc = 0;
    char *data = NULL;
    long n = 0;
    if (PEM_write_bio_X509(bio, cert) != 1 || (n = BIO_get_mem_data(bio, &data)) <= 0) {
        ERR_clear_error();
        rc = HUB_ERR(err, HUB_E_CRYPTO, "cannot write certificate as PEM");
        goto out_bio;
    }
    char *pem = malloc((size_t)n + 1);
    if (pem == NULL) {
        rc = HUB_ERR(err, HUB_E_NOMEM, "out of memory");
        goto out_bio;
    }
    memcpy(pem, data, (size_t)n);
    pem[n] = '\0';
    *out_new = pem;
out_bio:
    BIO_free(bio);
    return rc;
}
