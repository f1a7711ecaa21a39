/*
 * libFuzzer target: certificate and CRL uploads, the bytes an operator's
 * client sends to PUT /certificates/{name} (and .../verify, hubctl's files)
 * and PUT /certificates/{name}/crl, through the pki loaders.
 *
 * The first input byte picks the path (mod 3), the rest is its input:
 *   0  raw bytes -> hub_pki_certs_load_mem (PEM or DER, private-key
 *      detection), then the facts the registry reads from an uploaded CA
 *      (thumbprints, subject, CN, validity, CA flag);
 *   1  the "certificate" string of a JSON body (PUT /certificates/{name},
 *      .../verify, and the "crl" one of .../crl) through
 *      hub_http__certificate_bytes_decode (json_cert.c), the decision
 *      routes_certs.c makes: PEM as is, else base64 of DER with whitespace
 *      removed; its bytes then loaded as in 0;
 *   2  raw bytes -> hub_pki_crl_load_mem, then the CRL's facts and the
 *      issuer check against a fixed CA (fuzzed CRLs never verify, but the
 *      name / key-id / extension checks run before the signature).
 * Checked on every run:
 *   - refusals carry a documented code with err.code equal to the return;
 *   - nothing that holds a PEM private-key header (a line starting
 *     "-----BEGIN ...PRIVATE KEY-----") is ever accepted;
 *   - every loaded certificate (and CRL) re-encodes as DER and as PEM to
 *     bytes that load back to the same DER;
 *   - the text decision: text holding "-----BEGIN" (before any NUL) comes
 *     back byte for byte; any other text is refused or decodes (as base64)
 *     to at most 3/4 of its non-space characters, and those bytes re-encode
 *     and decode to themselves.
 * A violated check calls abort() so libFuzzer saves the input.
 *
 * Not part of the CMake build: `make fuzz` (scripts/fuzz) builds it with
 * clang -fsanitize=fuzzer,address,undefined from this file, every .c of
 * src/pki, src/http/json_cert.c, src/common/err.c and util.c, linking
 * OpenSSL and jansson.
 */
#include <ctype.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509.h>

#include "common/util.h"
#include "http/http_int.h"
#include "pki/pki.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

/* A self-signed P-256 CA ("CN=Fuzz Root CA"); corpus/crl_* are its CRLs. */
static const char ca_pem[] = "-----BEGIN CERTIFICATE-----\n"
                             "MIIBlTCCATugAwIBAgIUBJx54rMkqSoNGX/EmD1vodTE3jMwCgYIKoZIzj0EAwIw\n"
                             "FzEVMBMGA1UEAwwMRnV6eiBSb290IENBMCAXDTI2MTEyNjIwMjA1MFoYDzIxMjYx\n"
                             "MTAyMjAyMDUwWjAXMRUwEwYDVQQDDAxGdXp6IFJvb3QgQ0EwWTATBgcqhkjOPQIB\n"
                             "BggqhkjOPQMBBwNCAATXzmafDYEaCm9ymYmCPrjORC/tDZEh/mCOz2fBq9hwe3Kk\n"
                             "QmIPTuunw6RGmxYr5QEC6AmDoQEHv3Bx2JZ9w7LMo2MwYTAdBgNVHQ4EFgQUKPIc\n"
                             "S6KNaKhU8nPY8XrbNICkleYwHwYDVR0jBBgwFoAUKPIcS6KNaKhU8nPY8XrbNICk\n"
                             "leYwDwYDVR0TAQH/BAUwAwEB/zAOBgNVHQ8BAf8EBAMCAQYwCgYIKoZIzj0EAwID\n"
                             "SAAwRQIgVTxpy7ZIu0CmXVL0jFEqeIn2t7nfxiQVaN8G0Jaubl0CIQCYZciUsfW2\n"
                             "6df081cncs1mKQjQaQjKBZlum3zY1ymERg==\n"
                             "-----END CERTIFICATE-----\n";

static X509 *ca;

static void init_ca(void)
{
    if (ca == NULL)
        CHECK(hub_pki_cert_load_mem(ca_pem, sizeof(ca_pem) - 1, &ca, NULL) == 0);
}

/* 1 if data holds a PEM private-key header: "-----BEGIN <label>-----" at
 * the start of a line, label printable ASCII ending in "PRIVATE KEY" (every
 * PEM private-key form; what a PEM reader would take for one). */
static int has_private_key_block(const uint8_t *data, size_t len)
{
    static const char begin[] = "-----BEGIN ", key[] = "PRIVATE KEY";
    const uint8_t *p = data, *end = data + len;
    while ((p = memmem(p, (size_t)(end - p), begin, sizeof(begin) - 1)) != NULL) {
        const uint8_t *label = p + sizeof(begin) - 1, *q = label;
        int line_start = p == data || p[-1] == '\n';
        while (q < end && *q >= 0x20 && *q <= 0x7e && *q != '-')
            q++;
        size_t n = (size_t)(q - label);
        if (line_start && (size_t)(end - q) >= 5 && memcmp(q, "-----", 5) == 0 &&
            n >= sizeof(key) - 1 && memcmp(q - (sizeof(key) - 1), key, sizeof(key) - 1) == 0)
            return 1;
        p = label;
    }
    return 0;
}

static void check_cert(X509 *c)
{
    char buf[HUB_PKI_THUMBPRINT_MAX];
    struct hub_err err = {0};
    CHECK(hub_pki_thumbprint(c, HUB_PKI_SHA1, buf, NULL) == 0 && strlen(buf) == 40);
    CHECK(hub_pki_thumbprint(c, HUB_PKI_SHA256, buf, NULL) == 0 && strlen(buf) == 64);
    char subject[512];
    hub_pki_cert_subject_text(c, subject, sizeof(subject));
    CHECK(memchr(subject, '\0', sizeof(subject)) != NULL);
    char cn[129];
    int rc = hub_pki_cert_subject_cn(c, cn, sizeof(cn), &err);
    if (rc == 0)
        CHECK(memchr(cn, '\0', sizeof(cn)) != NULL);
    int is_ca = hub_pki_cert_is_ca(c);
    CHECK(is_ca == 0 || is_ca == 1);
    int64_t nb = 0, na = 0;
    (void)hub_pki_cert_validity(c, &nb, &na, NULL);

    /* DER and PEM round trips */
    unsigned char *der = NULL;
    int dlen = i2d_X509(c, &der);
    CHECK(dlen > 0);
    X509 *back = NULL;
    if ((size_t)dlen <= HUB_PKI_MAX_FILE_BYTES) {
        CHECK(hub_pki_cert_load_mem(der, (size_t)dlen, &back, NULL) == 0);
        CHECK(X509_cmp(c, back) == 0);
        X509_free(back);
    }
    char *pem = NULL;
    CHECK(hub_pki_cert_to_pem(c, &pem, NULL) == 0);
    if (strlen(pem) <= HUB_PKI_MAX_FILE_BYTES) {
        back = NULL;
        CHECK(hub_pki_cert_load_mem(pem, strlen(pem), &back, NULL) == 0);
        unsigned char *der2 = NULL;
        int dlen2 = i2d_X509(back, &der2);
        CHECK(dlen2 == dlen && memcmp(der, der2, (size_t)dlen) == 0);
        OPENSSL_free(der2);
        X509_free(back);
    }
    free(pem);
    OPENSSL_free(der);
}

static void load_certs(const uint8_t *data, size_t len)
{
    STACK_OF(X509) *certs = (STACK_OF(X509) *)&certs;
    struct hub_err err = {0};
    int rc = hub_pki_certs_load_mem(data, len, &certs, &err);
    ERR_clear_error();
    if (rc != 0) {
        CHECK(rc < 0 && err.code == rc && err.msg[0] != '\0');
        CHECK(certs == NULL);
        return;
    }
    CHECK(!has_private_key_block(data, len));
    CHECK(certs != NULL && sk_X509_num(certs) >= 1);
    for (int i = 0; i < sk_X509_num(certs); i++)
        check_cert(sk_X509_value(certs, i));
    sk_X509_pop_free(certs, X509_free);
    ERR_clear_error();
}

static void load_text(const uint8_t *data, size_t len)
{
    if (len > HUB_PKI_MAX_FILE_BYTES * 2)
        return; /* refused with 413 before decoding */
    static const char pem_begin[] = "-----BEGIN";
    size_t text_len = strnlen((const char *)data, len);
    int is_pem = memmem(data, text_len, pem_begin, sizeof(pem_begin) - 1) != NULL;
    unsigned char *bytes = (unsigned char *)&bytes;
    size_t n = 1;
    char why[HUB_ERR_MSG_MAX];
    int rc =
        hub_http__certificate_bytes_decode((const char *)data, len, &bytes, &n, why, sizeof(why));
    if (rc != 0) {
        CHECK(rc == HUB_E_INVALID_ARG && !is_pem && bytes == NULL && n == 0);
        CHECK(memchr(why, '\0', sizeof(why)) != NULL);
        return;
    }
    CHECK(bytes != NULL);
    if (is_pem) {
        CHECK(n == len && memcmp(bytes, data, len) == 0);
    } else {
        size_t chars = 0;
        for (size_t i = 0; i < len; i++)
            chars += !isspace(data[i]);
        CHECK(n > 0 && n <= chars / 4 * 3);
        char *enc = malloc(hub_base64_encoded_len(n) + 1);
        unsigned char *again = malloc(n + 3);
        CHECK(enc != NULL && again != NULL);
        size_t elen = hub_base64_encode(bytes, n, enc);
        CHECK(hub_base64_decode(enc, elen, again, n + 3, NULL) == (int)n);
        CHECK(memcmp(bytes, again, n) == 0);
        free(again);
        free(enc);
    }
    load_certs(bytes, n);
    free(bytes);
}

static void load_crl(const uint8_t *data, size_t len)
{
    X509_CRL *crl = NULL;
    struct hub_err err = {0};
    int rc = hub_pki_crl_load_mem(data, len, &crl, &err);
    ERR_clear_error();
    if (rc != 0) {
        CHECK(rc < 0 && err.code == rc && crl == NULL);
        return;
    }
    CHECK(!has_private_key_block(data, len));
    struct hub_pki_crl_info info;
    (void)hub_pki_crl_info_get(crl, &info, NULL);
    rc = hub_pki_crl_issuer_check(ca, crl, &err);
    CHECK(rc == 0 || err.code == rc);
    int listed = hub_pki_crl_lists(crl, ca);
    CHECK(listed == 0 || listed == 1);

    char *pem = NULL;
    CHECK(hub_pki_crl_to_pem(crl, &pem, NULL) == 0);
    X509_CRL *back = NULL;
    CHECK(hub_pki_crl_load_mem(pem, strlen(pem), &back, NULL) == 0);
    unsigned char *d1 = NULL, *d2 = NULL;
    int l1 = i2d_X509_CRL(crl, &d1), l2 = i2d_X509_CRL(back, &d2);
    CHECK(l1 > 0 && l1 == l2 && memcmp(d1, d2, (size_t)l1) == 0);
    OPENSSL_free(d1);
    OPENSSL_free(d2);
    X509_CRL_free(back);
    free(pem);
    X509_CRL_free(crl);
    ERR_clear_error();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    init_ca();
    /* exactly len bytes on the heap: ASan sees any over-read */
    size_t len = size - 1;
    uint8_t *copy = malloc(len ? len : 1);
    CHECK(copy != NULL);
    memcpy(copy, data + 1, len);
    switch (data[0] % 3) {
    case 0:
        load_certs(copy, len);
        break;
    case 1:
        load_text(copy, len);
        break;
    default:
        load_crl(copy, len);
        break;
    }
    free(copy);
    return 0;
}
