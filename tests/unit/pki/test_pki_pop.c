/*
 * Proof of possession: one table of verification certificates against one
 * uploaded CA, each row with the code it is checked against, the time, the
 * expected code and a piece of the expected message.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "pki/pki.h"

#define CODE "5F1E0C4B2A9D8E7F6A5B4C3D2E1F0A9B8C7D6E5F4A3B2C1D"

struct fixture {
    EVP_PKEY *ca_key, *other_key, *leaf_key;
    X509 *ca;          /* the uploaded CA */
    X509 *impostor;    /* same subject name as ca, another key */
    X509 *other_ca;    /* another name, another key */
    X509 *good;        /* CN=CODE, signed by ca */
    X509 *wrong_cn;    /* CN=another code, signed by ca */
    X509 *by_impostor; /* CN=CODE, issuer name == ca's, signed by another key */
    X509 *by_other;    /* CN=CODE, issued by other_ca */
    X509 *no_cn;       /* subject without CN, signed by ca */
};

static struct fixture fx;

static X509 *issue(enum hub_pki_cert_kind kind, const char *cn, EVP_PKEY *key, X509 *issuer,
                   EVP_PKEY *issuer_key)
{
    struct hub_pki_issue_params p = {
        .kind = kind,
        .common_name = cn,
        .days = 30,
        .pathlen = -1,
        .issuer_cert = issuer,
        .issuer_key = issuer_key,
        .subject_key = key,
    };
    X509 *x = NULL;
    struct hub_err err = {0};
    if (hub_pki_cert_issue(&p, &x, &err) != 0)
        fail_msg("issue %s: %s", cn, err.msg);
    return x;
}

/* Built by hand: hub_pki_cert_issue always sets a CN. */
static X509 *issue_without_cn(void)
{
    X509 *x = X509_new();
    X509_NAME *n = X509_NAME_new();
    X509_NAME_add_entry_by_txt(n, "O", MBSTRING_ASC, (const unsigned char *)CODE, -1, -1, 0);
    assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);
    X509_set_subject_name(x, n);
    X509_set_issuer_name(x, X509_get_subject_name(fx.ca));
    X509_set_pubkey(x, fx.leaf_key);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    assert_true(X509_sign(x, fx.ca_key, EVP_sha256()) > 0);
    X509_NAME_free(n);
    return x;
}

static int setup(void **state)
{
    (void)state;
    struct hub_err err = {0};
    if (hub_pki_key_generate(HUB_PKI_KEY_EC_P256, &fx.ca_key, &err) != 0 ||
        hub_pki_key_generate(HUB_PKI_KEY_EC_P256, &fx.other_key, &err) != 0 ||
        hub_pki_key_generate(HUB_PKI_KEY_EC_P256, &fx.leaf_key, &err) != 0)
        return -1;
    fx.ca = issue(HUB_PKI_CERT_ROOT, "Contoso Root CA", fx.ca_key, NULL, NULL);
    fx.impostor = issue(HUB_PKI_CERT_ROOT, "Contoso Root CA", fx.other_key, NULL, NULL);
    fx.other_ca = issue(HUB_PKI_CERT_ROOT, "Fabrikam Root CA", fx.other_key, NULL, NULL);
    fx.good = issue(HUB_PKI_CERT_VERIFICATION, CODE, fx.leaf_key, fx.ca, fx.ca_key);
    fx.wrong_cn = issue(HUB_PKI_CERT_VERIFICATION, "00000000", fx.leaf_key, fx.ca, fx.ca_key);
    fx.by_impostor = issue(HUB_PKI_CERT_VERIFICATION, CODE, fx.leaf_key, fx.impostor, fx.other_key);
    fx.by_other = issue(HUB_PKI_CERT_VERIFICATION, CODE, fx.leaf_key, fx.other_ca, fx.other_key);
    fx.no_cn = issue_without_cn();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    X509 *certs[] = {fx.ca,       fx.impostor,    fx.other_ca, fx.good,
                     fx.wrong_cn, fx.by_impostor, fx.by_other, fx.no_cn};
    for (size_t i = 0; i < sizeof(certs) / sizeof(certs[0]); i++)
        X509_free(certs[i]);
    EVP_PKEY_free(fx.ca_key);
    EVP_PKEY_free(fx.other_key);
    EVP_PKEY_free(fx.leaf_key);
    return 0;
}

enum when { NOW, AT_NOT_BEFORE, BEFORE_NOT_BEFORE, AT_NOT_AFTER, AFTER_NOT_AFTER };

static void test_pop_table(void **state)
{
    (void)state;
    const struct {
        const char *name;
        X509 *cert;
        const char *code;
        enum when when;
        int want_rc;
        const char *want_msg; /* substring of err.msg */
    } rows[] = {
        {"correct certificate", fx.good, CODE, NOW, 0, NULL},
        {"first valid second", fx.good, CODE, AT_NOT_BEFORE, 0, NULL},
        {"last valid second", fx.good, CODE, AT_NOT_AFTER, 0, NULL},
        {"wrong CN", fx.wrong_cn, CODE, NOW, HUB_E_CN_MISMATCH, "CN is '00000000', expected"},
        {"code differs in case", fx.good, "5f1e0c4b2a9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d", NOW,
         HUB_E_CN_MISMATCH, "expected the verification code"},
        {"code is a prefix of the CN", fx.good, "5F1E0C4B", NOW, HUB_E_CN_MISMATCH, "CN is"},
        {"no CN", fx.no_cn, CODE, NOW, HUB_E_CN_MISMATCH, "no CN"},
        {"signed by another key", fx.by_impostor, CODE, NOW, HUB_E_CHAIN_SIGNATURE,
         "does not verify"},
        {"issuer name mismatch", fx.by_other, CODE, NOW, HUB_E_CHAIN_SIGNATURE,
         "issued by 'CN=Fabrikam Root CA', not by the CA 'CN=Contoso Root CA'"},
        {"the CA itself", fx.ca, CODE, NOW, HUB_E_CN_MISMATCH, "CN is 'Contoso Root CA'"},
        {"expired", fx.good, CODE, AFTER_NOT_AFTER, HUB_E_CERT_EXPIRED, "expired at 20"},
        {"not yet valid", fx.good, CODE, BEFORE_NOT_BEFORE, HUB_E_CERT_NOT_YET_VALID,
         "not valid before 20"},
    };
    int failures = 0;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        int64_t nb = 0, na = 0;
        assert_int_equal(hub_pki_cert_validity(rows[i].cert, &nb, &na, NULL), 0);
        int64_t at[] = {(int64_t)time(NULL), nb, nb - 1, na, na + 1};
        struct hub_err err = {0};
        int rc = hub_pki_verification_cert_check(fx.ca, rows[i].cert, rows[i].code,
                                                 at[rows[i].when], &err);
        int msg_ok = rows[i].want_msg == NULL || strstr(err.msg, rows[i].want_msg) != NULL;
        if (rc != rows[i].want_rc || !msg_ok || (rc != 0 && err.code != rc)) {
            print_error("case '%s': rc %s (want %s): %s\n", rows[i].name, hub_err_name(rc),
                        hub_err_name(rows[i].want_rc), err.msg);
            failures++;
        }
    }
    assert_int_equal(failures, 0);
}

static void test_pop_bad_arguments(void **state)
{
    (void)state;
    struct hub_err err = {0};
    int64_t now = (int64_t)time(NULL);
    assert_int_equal(hub_pki_verification_cert_check(NULL, fx.good, CODE, now, &err),
                     HUB_E_INVALID_ARG);
    assert_int_equal(hub_pki_verification_cert_check(fx.ca, NULL, CODE, now, &err),
                     HUB_E_INVALID_ARG);
    assert_int_equal(hub_pki_verification_cert_check(fx.ca, fx.good, NULL, now, &err),
                     HUB_E_INVALID_ARG);
    assert_int_equal(hub_pki_verification_cert_check(fx.ca, fx.good, "", now, &err),
                     HUB_E_INVALID_ARG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pop_table),
        cmocka_unit_test(test_pop_bad_arguments),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
