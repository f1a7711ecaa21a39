/*
 * Certificate revocation lists (issue 6, "Revocation"): loading (PEM, DER,
 * refusals), "is this CRL signed by this CA", and chain validation with
 * CRLs in the trust: revoked leaves and intermediates, expired CRLs (still
 * applied), a revocation that another path cannot route around. CRLs are
 * built with OpenSSL directly, not with code under test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "pki/pki.h"

#define DAY ((int64_t)86400)

struct fixture {
    EVP_PKEY *k_root, *k_int, *k_leaf, *k_other;
    X509 *root;     /* the registered CA */
    X509 *impostor; /* root's name, another key */
    X509 *other;    /* another CA */
    X509 *intm;     /* intermediate under root */
    X509 *dev1;     /* issued by root directly */
    X509 *dev2;     /* issued by root directly */
    X509 *dev3;     /* issued by intm */
    int64_t now;
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

static EVP_PKEY *key_new(void)
{
    EVP_PKEY *k = NULL;
    struct hub_err err = {0};
    assert_int_equal(hub_pki_key_generate(HUB_PKI_KEY_EC_P256, &k, &err), 0);
    return k;
}

struct crl_spec {
    X509 *issuer;        /* its subject is the CRL's issuer name, its SKI the AKI */
    EVP_PKEY *sign_key;  /* what signs it */
    X509 *const *revoke; /* serials to list */
    size_t revoke_count;
    int64_t this_update;  /* relative to fx.now */
    int64_t next_update;  /* relative to fx.now; 0 = +7 days */
    const char *ext_conf; /* an extra CRL extension, "name:value", or NULL */
};

static X509_CRL *crl_make(const struct crl_spec *s)
{
    X509_CRL *crl = X509_CRL_new();
    assert_non_null(crl);
    assert_int_equal(X509_CRL_set_version(crl, 1), 1); /* v2 */
    assert_int_equal(X509_CRL_set_issuer_name(crl, X509_get_subject_name(s->issuer)), 1);
    ASN1_TIME *t = ASN1_TIME_new();
    ASN1_TIME_set(t, (time_t)(fx.now + s->this_update - 60));
    X509_CRL_set1_lastUpdate(crl, t);
    ASN1_TIME_set(t, (time_t)(fx.now + (s->next_update != 0 ? s->next_update : 7 * DAY)));
    X509_CRL_set1_nextUpdate(crl, t);
    for (size_t i = 0; i < s->revoke_count; i++) {
        X509_REVOKED *r = X509_REVOKED_new();
        X509_REVOKED_set_serialNumber(r, X509_get_serialNumber(s->revoke[i]));
        ASN1_TIME_set(t, (time_t)(fx.now - 3600));
        X509_REVOKED_set_revocationDate(r, t);
        assert_int_equal(X509_CRL_add0_revoked(crl, r), 1);
    }
    ASN1_TIME_free(t);
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, s->issuer, NULL, NULL, crl, 0);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, NID_authority_key_identifier, "keyid");
    assert_non_null(e);
    X509_CRL_add_ext(crl, e, -1);
    X509_EXTENSION_free(e);
    if (s->ext_conf != NULL) {
        char name[64];
        const char *colon = strchr(s->ext_conf, ':');
        snprintf(name, sizeof(name), "%.*s", (int)(colon - s->ext_conf), s->ext_conf);
        e = X509V3_EXT_conf(NULL, &ctx, name, colon + 1);
        assert_non_null(e);
        X509_CRL_add_ext(crl, e, -1);
        X509_EXTENSION_free(e);
    }
    X509_CRL_sort(crl);
    assert_true(X509_CRL_sign(crl, s->sign_key, EVP_sha256()) > 0);
    return crl;
}

static int setup(void **state)
{
    (void)state;
    fx.now = (int64_t)time(NULL);
    fx.k_root = key_new();
    fx.k_int = key_new();
    fx.k_leaf = key_new();
    fx.k_other = key_new();
    fx.root = issue(HUB_PKI_CERT_ROOT, "CRL Test Root", fx.k_root, NULL, NULL);
    fx.impostor = issue(HUB_PKI_CERT_ROOT, "CRL Test Root", fx.k_other, NULL, NULL);
    fx.other = issue(HUB_PKI_CERT_ROOT, "Other Root", fx.k_other, NULL, NULL);
    fx.intm = issue(HUB_PKI_CERT_INTERMEDIATE, "CRL Test Int", fx.k_int, fx.root, fx.k_root);
    fx.dev1 = issue(HUB_PKI_CERT_DEVICE, "dev1", fx.k_leaf, fx.root, fx.k_root);
    fx.dev2 = issue(HUB_PKI_CERT_DEVICE, "dev2", fx.k_leaf, fx.root, fx.k_root);
    fx.dev3 = issue(HUB_PKI_CERT_DEVICE, "dev3", fx.k_leaf, fx.intm, fx.k_int);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    X509 *certs[] = {fx.root, fx.impostor, fx.other, fx.intm, fx.dev1, fx.dev2, fx.dev3};
    for (size_t i = 0; i < sizeof(certs) / sizeof(certs[0]); i++)
        X509_free(certs[i]);
    EVP_PKEY_free(fx.k_root);
    EVP_PKEY_free(fx.k_int);
    EVP_PKEY_free(fx.k_leaf);
    EVP_PKEY_free(fx.k_other);
    return 0;
}

static char *crl_pem(X509_CRL *crl, size_t *len)
{
    char *pem = NULL;
    struct hub_err err = {0};
    assert_int_equal(hub_pki_crl_to_pem(crl, &pem, &err), 0);
    *len = strlen(pem);
    return pem;
}

/* ---- loading -------------------------------------------------------------- */

static void test_load_pem_der_roundtrip(void **state)
{
    (void)state;
    X509 *rev[] = {fx.dev2};
    struct crl_spec s = {
        .issuer = fx.root, .sign_key = fx.k_root, .revoke = rev, .revoke_count = 1};
    X509_CRL *crl = crl_make(&s);
    size_t len = 0;
    char *pem = crl_pem(crl, &len);
    assert_non_null(strstr(pem, "-----BEGIN X509 CRL-----"));
    struct hub_err err = {0};
    X509_CRL *back = NULL;
    /* text around the block is ignored, as for certificates */
    char *noisy = malloc(len + 64);
    snprintf(noisy, len + 64, "issued by ops\n%sthe end\n", pem);
    assert_int_equal(hub_pki_crl_load_mem(noisy, strlen(noisy), &back, &err), 0);
    assert_int_equal(X509_CRL_cmp(back, crl), 0);
    X509_CRL_free(back);
    free(noisy);

    unsigned char *der = NULL;
    int dlen = i2d_X509_CRL(crl, &der);
    assert_true(dlen > 0);
    assert_int_equal(hub_pki_crl_load_mem(der, (size_t)dlen, &back, &err), 0);
    struct hub_pki_crl_info info;
    assert_int_equal(hub_pki_crl_info_get(back, &info, &err), 0);
    assert_int_equal(info.revoked_count, 1);
    assert_int_equal(info.this_update, fx.now - 60);
    assert_int_equal(info.next_update, fx.now + 7 * DAY);
    assert_int_equal(hub_pki_crl_lists(back, fx.dev2), 1);
    assert_int_equal(hub_pki_crl_lists(back, fx.dev1), 0);
    X509_CRL_free(back);
    OPENSSL_free(der);
    free(pem);
    X509_CRL_free(crl);
}

static void test_load_refusals(void **state)
{
    (void)state;
    struct crl_spec s = {.issuer = fx.root, .sign_key = fx.k_root};
    X509_CRL *crl = crl_make(&s);
    size_t len = 0;
    char *pem = crl_pem(crl, &len);

    /* a private key in the file, PEM and DER */
    BIO *b = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_PrivateKey(b, fx.k_leaf, NULL, NULL, 0, NULL, NULL), 1);
    char *kp = NULL;
    long klen = BIO_get_mem_data(b, &kp);
    char *with_key = malloc(len + (size_t)klen + 1);
    memcpy(with_key, pem, len);
    memcpy(with_key + len, kp, (size_t)klen);
    with_key[len + (size_t)klen] = '\0';
    BIO_free(b);
    unsigned char *kder = NULL;
    int kdlen = i2d_PrivateKey(fx.k_leaf, &kder);
    assert_true(kdlen > 0);

    char *two = malloc(2 * len + 1);
    memcpy(two, pem, len);
    memcpy(two + len, pem, len + 1);

    char *cert_pem = NULL;
    struct hub_err err = {0};
    assert_int_equal(hub_pki_cert_to_pem(fx.dev1, &cert_pem, &err), 0);

    char *big = calloc(1, HUB_PKI_MAX_CRL_BYTES + 2);
    memset(big, 'A', HUB_PKI_MAX_CRL_BYTES + 1);

    const struct {
        const char *name;
        const void *buf;
        size_t len;
        int code;
        const char *words;
    } rows[] = {
        {"PEM key after the CRL", with_key, strlen(with_key), HUB_E_PRIVATE_KEY, "private key"},
        {"DER key", kder, (size_t)kdlen, HUB_E_PRIVATE_KEY, "private key"},
        {"two CRLs", two, strlen(two), HUB_E_INVALID_ARG, "exactly one"},
        {"a certificate", cert_pem, strlen(cert_pem), HUB_E_PARSE, "not an X509 CRL"},
        {"empty", "", 0, HUB_E_EMPTY, "empty"},
        {"plain text", "hello\n", 6, HUB_E_EMPTY, "no PEM"},
        {"too large", big, HUB_PKI_MAX_CRL_BYTES + 1, HUB_E_TOO_LARGE, "more than"},
        {"truncated DER", "\x30\x82\x01\x00\x30", 5, HUB_E_PARSE, "does not parse"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        X509_CRL *out = NULL;
        memset(&err, 0, sizeof(err));
        int rc = hub_pki_crl_load_mem(rows[i].buf, rows[i].len, &out, &err);
        if (rc != rows[i].code || strstr(err.msg, rows[i].words) == NULL)
            fail_msg("%s: got %s '%s', wanted %s '%s'", rows[i].name, hub_err_name(rc), err.msg,
                     hub_err_name(rows[i].code), rows[i].words);
        assert_null(out);
    }
    free(big);
    free(cert_pem);
    free(two);
    OPENSSL_free(kder);
    free(with_key);
    free(pem);
    X509_CRL_free(crl);
}

/* ---- issuer check ------------------------------------------------------------ */

static void test_issuer_check(void **state)
{
    (void)state;
    const struct {
        const char *name;
        struct crl_spec spec;
        X509 *against;
        int code;
        const char *words;
    } rows[] = {
        {"signed by the CA", {.issuer = fx.root, .sign_key = fx.k_root}, fx.root, 0, ""},
        {"right name, another key",
         {.issuer = fx.root, .sign_key = fx.k_other},
         fx.root,
         HUB_E_CHAIN_SIGNATURE,
         "does not verify"},
        {"another CA's CRL",
         {.issuer = fx.other, .sign_key = fx.k_other},
         fx.root,
         HUB_E_CHAIN_UNTRUSTED,
         "not by the CA"},
        /* the impostor has root's name; the CRL's AKI names root's key */
        {"same name, AKI of another key",
         {.issuer = fx.root, .sign_key = fx.k_root},
         fx.impostor,
         HUB_E_CHAIN_UNTRUSTED,
         "authority key identifier"},
        {"delta CRL",
         {.issuer = fx.root, .sign_key = fx.k_root, .ext_conf = "deltaCRL:critical,DER:02:01:01"},
         fx.root,
         HUB_E_INVALID_ARG,
         "delta"},
        {"unknown critical extension",
         {.issuer = fx.root,
          .sign_key = fx.k_root,
          .ext_conf = "1.3.6.1.4.1.99999.1:critical,DER:05:00"},
         fx.root,
         HUB_E_INVALID_ARG,
         "unsupported critical extension 1.3.6.1.4.1.99999.1"},
        {"expired CRL: signature still fine",
         {.issuer = fx.root, .sign_key = fx.k_root, .this_update = -30 * DAY, .next_update = -DAY},
         fx.root,
         0,
         ""},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        X509_CRL *crl = crl_make(&rows[i].spec);
        struct hub_err err = {0};
        int rc = hub_pki_crl_issuer_check(rows[i].against, crl, &err);
        if (rc != rows[i].code || strstr(err.msg, rows[i].words) == NULL)
            fail_msg("%s: got %s '%s', wanted %s '%s'", rows[i].name, hub_err_name(rc), err.msg,
                     hub_err_name(rows[i].code), rows[i].words);
        X509_CRL_free(crl);
    }
}

/* ---- validation with CRLs ------------------------------------------------------ */

static int verify(X509 *const *anchors, size_t n_anchors, X509_CRL *const *crls, size_t n_crls,
                  X509 *leaf, X509 *const *presented, size_t n_presented, struct hub_err *err)
{
    STACK_OF(X509) *a = sk_X509_new_null();
    for (size_t i = 0; i < n_anchors; i++)
        sk_X509_push(a, anchors[i]);
    STACK_OF(X509) *u = sk_X509_new_null();
    for (size_t i = 0; i < n_presented; i++)
        sk_X509_push(u, presented[i]);
    struct hub_pki_trust *t = NULL;
    int rc = hub_pki_trust_new_with_crls(a, crls, n_crls, &t, err);
    if (rc == 0) {
        struct hub_pki_verify_opts o = {
            .at = fx.now, .eku = HUB_PKI_EKU_CLIENT_AUTH, .max_depth = -1};
        rc = hub_pki_chain_verify(t, leaf, u, &o, err);
    }
    hub_pki_trust_free(t);
    sk_X509_free(u);
    sk_X509_free(a);
    return rc;
}

static void test_verify_with_crls(void **state)
{
    (void)state;
    X509 *rev_dev2[] = {fx.dev2};
    X509 *rev_int[] = {fx.intm};
    struct crl_spec s_dev2 = {
        .issuer = fx.root, .sign_key = fx.k_root, .revoke = rev_dev2, .revoke_count = 1};
    struct crl_spec s_int = {
        .issuer = fx.root, .sign_key = fx.k_root, .revoke = rev_int, .revoke_count = 1};
    struct crl_spec s_expired = {.issuer = fx.root,
                                 .sign_key = fx.k_root,
                                 .revoke = rev_dev2,
                                 .revoke_count = 1,
                                 .this_update = -30 * DAY,
                                 .next_update = -DAY};
    struct crl_spec s_empty = {.issuer = fx.root, .sign_key = fx.k_root};
    /* the intermediate's own CRL, revoking dev3 */
    X509 *rev_dev3[] = {fx.dev3};
    struct crl_spec s_int_crl = {
        .issuer = fx.intm, .sign_key = fx.k_int, .revoke = rev_dev3, .revoke_count = 1};
    X509_CRL *c_dev2 = crl_make(&s_dev2), *c_int = crl_make(&s_int),
             *c_expired = crl_make(&s_expired), *c_empty = crl_make(&s_empty),
             *c_int_crl = crl_make(&s_int_crl);

    X509 *root_only[] = {fx.root};
    X509 *root_and_int[] = {fx.root, fx.intm};
    X509 *p_int[] = {fx.intm};
    const struct {
        const char *name;
        X509 *const *anchors;
        size_t n_anchors;
        X509_CRL *crl;
        X509 *leaf;
        X509 *const *presented;
        size_t n_presented;
        int code;
        const char *words;
    } rows[] = {
        {"no CRL: dev2 ok", root_only, 1, NULL, fx.dev2, NULL, 0, 0, ""},
        {"empty CRL: dev2 ok", root_only, 1, c_empty, fx.dev2, NULL, 0, 0, ""},
        {"revoked leaf refused", root_only, 1, c_dev2, fx.dev2, NULL, 0, HUB_E_CHAIN_REVOKED,
         "revoked by the CRL of CN=CRL Test Root: CN=dev2"},
        {"leaf not listed still fine", root_only, 1, c_dev2, fx.dev1, NULL, 0, 0, ""},
        {"chain through a live intermediate ok", root_only, 1, c_dev2, fx.dev3, p_int, 1, 0, ""},
        {"revoked intermediate refuses its leaves", root_only, 1, c_int, fx.dev3, p_int, 1,
         HUB_E_CHAIN_REVOKED, "CN=CRL Test Int"},
        {"expired CRL is still applied", root_only, 1, c_expired, fx.dev2, NULL, 0,
         HUB_E_CHAIN_REVOKED, "revoked"},
        {"expired CRL: others still accepted", root_only, 1, c_expired, fx.dev1, NULL, 0, 0, ""},
        /* The intermediate is registered too, with its own CRL; the device
         * presents the path through the intermediate to the root: the
         * intermediate's CRL still applies (same name, same key). */
        {"intermediate anchor's CRL cannot be bypassed", root_and_int, 2, c_int_crl, fx.dev3, p_int,
         1, HUB_E_CHAIN_REVOKED, "CN=dev3"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct hub_err err = {0};
        X509_CRL *crls[1] = {rows[i].crl};
        int rc = verify(rows[i].anchors, rows[i].n_anchors, crls, rows[i].crl != NULL ? 1 : 0,
                        rows[i].leaf, rows[i].presented, rows[i].n_presented, &err);
        if (rc != rows[i].code || strstr(err.msg, rows[i].words) == NULL)
            fail_msg("%s: got %s '%s', wanted %s '%s'", rows[i].name, hub_err_name(rc), err.msg,
                     hub_err_name(rows[i].code), rows[i].words);
    }

    /* A CRL that no anchor signed makes the trust unbuildable. */
    struct crl_spec s_forged = {.issuer = fx.root, .sign_key = fx.k_other};
    X509_CRL *c_forged = crl_make(&s_forged);
    struct hub_err err = {0};
    X509_CRL *crls[1] = {c_forged};
    assert_int_equal(verify(root_only, 1, crls, 1, fx.dev1, NULL, 0, &err), HUB_E_CHAIN_SIGNATURE);
    X509_CRL_free(c_forged);

    X509_CRL_free(c_dev2);
    X509_CRL_free(c_int);
    X509_CRL_free(c_expired);
    X509_CRL_free(c_empty);
    X509_CRL_free(c_int_crl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_pem_der_roundtrip),
        cmocka_unit_test(test_load_refusals),
        cmocka_unit_test(test_issuer_check),
        cmocka_unit_test(test_verify_with_crls),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
