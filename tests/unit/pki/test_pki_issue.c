/*
 * pki issuing: every kind x key type has the extensions its profile needs
 * (read back with OpenSSL's getters), serials are positive, ~128-bit and
 * distinct, key files are 0600, and the openssl CLI accepts the chains we
 * make (root -> intermediate -> device, server with -purpose sslserver).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "pki/pki.h"

/* ---- helpers ------------------------------------------------------------ */

static EVP_PKEY *keygen(enum hub_pki_key_type t)
{
    EVP_PKEY *k = NULL;
    struct hub_err err = {0};
    if (hub_pki_key_generate(t, &k, &err) != 0)
        fail_msg("keygen: %s", err.msg);
    return k;
}

static X509 *issue_full(const struct hub_pki_issue_params *p)
{
    X509 *x = NULL;
    struct hub_err err = {0};
    if (hub_pki_cert_issue(p, &x, &err) != 0)
        fail_msg("issue %s: %s", p->common_name, err.msg);
    return x;
}

static X509 *issue(enum hub_pki_cert_kind kind, const char *cn, EVP_PKEY *key, X509 *issuer,
                   EVP_PKEY *issuer_key)
{
    struct hub_pki_issue_params p = {
        .kind = kind,
        .common_name = cn,
        .days = 10,
        .pathlen = -1,
        .issuer_cert = issuer,
        .issuer_key = issuer_key,
        .subject_key = key,
    };
    return issue_full(&p);
}

static int ext_critical(X509 *x, int nid)
{
    int idx = X509_get_ext_by_NID(x, nid, -1);
    assert_true(idx >= 0);
    return X509_EXTENSION_get_critical(X509_get_ext(x, idx));
}

static int has_ext(X509 *x, int nid)
{
    return X509_get_ext_by_NID(x, nid, -1) >= 0;
}

/* AKI keyid of x equals the SKI of issuer. */
static void assert_aki_is(X509 *x, X509 *issuer)
{
    const ASN1_OCTET_STRING *aki = X509_get0_authority_key_id(x);
    const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(issuer);
    assert_non_null(aki);
    assert_non_null(ski);
    assert_int_equal(ASN1_OCTET_STRING_cmp(aki, ski), 0);
}

static void assert_serial_ok(X509 *x)
{
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
    assert_non_null(bn);
    assert_false(BN_is_negative(bn));
    assert_false(BN_is_zero(bn));
    assert_true(BN_num_bits(bn) >= 120 && BN_num_bits(bn) <= 128);
    BN_free(bn);
}

struct tmpdir {
    char path[64];
};

static void tmpdir_make(struct tmpdir *d)
{
    snprintf(d->path, sizeof(d->path), "/tmp/hub-pki-issue-XXXXXX");
    assert_non_null(mkdtemp(d->path));
}

static void tmpdir_remove(struct tmpdir *d)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d->path);
    assert_int_equal(system(cmd), 0);
}

static void write_certs(const struct tmpdir *d, const char *name, X509 *const *certs, size_t n)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/%s", d->path, name);
    struct hub_err err = {0};
    if (hub_pki_certs_write_file(certs, n, path, &err) != 0)
        fail_msg("write %s: %s", path, err.msg);
}

/* Runs the openssl CLI in dir d; returns its exit status. Its output goes to
 * out.txt, and to stderr when it fails unexpectedly. */
static int openssl_run(const struct tmpdir *d, const char *args, int expect_ok)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "cd '%s' && openssl %s >out.txt 2>&1", d->path, args);
    int rc = system(cmd);
    if (rc != 0 && expect_ok) {
        char show[600];
        snprintf(show, sizeof(show), "cat '%s/out.txt' >&2", d->path);
        (void)system(show);
    }
    return rc;
}

static int openssl_ok(const struct tmpdir *d, const char *args)
{
    return openssl_run(d, args, 1);
}

static int openssl_fails(const struct tmpdir *d, const char *args)
{
    return openssl_run(d, args, 0);
}

/* ---- tests -------------------------------------------------------------- */

static void test_key_type_parse(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        int rc;
        enum hub_pki_key_type want;
    } rows[] = {
        {"ec-p256", 0, HUB_PKI_KEY_EC_P256},   {"p256", 0, HUB_PKI_KEY_EC_P256},
        {"ec-p384", 0, HUB_PKI_KEY_EC_P384},   {"p384", 0, HUB_PKI_KEY_EC_P384},
        {"rsa-2048", 0, HUB_PKI_KEY_RSA_2048}, {"rsa-3072", 0, HUB_PKI_KEY_RSA_3072},
        {"rsa-4096", 0, HUB_PKI_KEY_RSA_4096}, {"rsa-1024", HUB_E_INVALID_ARG, 0},
        {"EC-P256", HUB_E_INVALID_ARG, 0},     {"", HUB_E_INVALID_ARG, 0},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        enum hub_pki_key_type t = (enum hub_pki_key_type)99;
        struct hub_err err = {0};
        assert_int_equal(hub_pki_key_type_parse(rows[i].name, &t, &err), rows[i].rc);
        if (rows[i].rc == 0)
            assert_int_equal(t, rows[i].want);
        else
            assert_non_null(strstr(err.msg, "unknown key type"));
    }
}

/* Every kind under every key type, the issuer using the same type. */
static void test_profiles_per_key_type(void **state)
{
    (void)state;
    static const struct {
        enum hub_pki_key_type type;
        const char *algo;
        int bits;
        int sig_nid;
    } types[] = {
        {HUB_PKI_KEY_EC_P256, "EC", 256, NID_ecdsa_with_SHA256},
        {HUB_PKI_KEY_EC_P384, "EC", 384, NID_ecdsa_with_SHA384},
        {HUB_PKI_KEY_RSA_2048, "RSA", 2048, NID_sha256WithRSAEncryption},
        {HUB_PKI_KEY_RSA_3072, "RSA", 3072, NID_sha256WithRSAEncryption},
        {HUB_PKI_KEY_RSA_4096, "RSA", 4096, NID_sha256WithRSAEncryption},
    };
    for (size_t t = 0; t < sizeof(types) / sizeof(types[0]); t++) {
        EVP_PKEY *ca_key = keygen(types[t].type);
        assert_true(EVP_PKEY_is_a(ca_key, types[t].algo));
        assert_int_equal(EVP_PKEY_get_bits(ca_key), types[t].bits);
        /* Leaves share the CA key: key generation is the slow part here. */
        X509 *root = issue(HUB_PKI_CERT_ROOT, "Root", ca_key, NULL, NULL);
        X509 *inter = issue(HUB_PKI_CERT_INTERMEDIATE, "Inter", ca_key, root, ca_key);
        X509 *dev = issue(HUB_PKI_CERT_DEVICE, "dev1", ca_key, inter, ca_key);
        X509 *ver = issue(HUB_PKI_CERT_VERIFICATION, "ABCDEF", ca_key, root, ca_key);
        X509 *srv = issue(HUB_PKI_CERT_SERVER, "hub.example", ca_key, root, ca_key);
        X509 *all[] = {root, inter, dev, ver, srv};
        for (size_t i = 0; i < 5; i++) {
            assert_int_equal(X509_get_version(all[i]), X509_VERSION_3);
            assert_int_equal(X509_get_signature_nid(all[i]), types[t].sig_nid);
            assert_serial_ok(all[i]);
            assert_true(has_ext(all[i], NID_subject_key_identifier));
            assert_int_equal(ext_critical(all[i], NID_basic_constraints), 1);
            assert_int_equal(ext_critical(all[i], NID_key_usage), 1);
        }
        /* CAs */
        for (size_t i = 0; i < 2; i++) {
            assert_true(X509_get_extension_flags(all[i]) & EXFLAG_CA);
            assert_int_equal(X509_get_key_usage(all[i]), KU_KEY_CERT_SIGN | KU_CRL_SIGN);
            assert_false(X509_get_extension_flags(all[i]) & EXFLAG_XKUSAGE);
            assert_int_equal(X509_get_pathlen(all[i]), -1);
        }
        assert_true(X509_get_extension_flags(root) & EXFLAG_SS);
        assert_int_equal(X509_check_issued(root, root), X509_V_OK);
        assert_aki_is(root, root);
        assert_aki_is(inter, root);
        assert_int_equal(X509_check_issued(root, inter), X509_V_OK);
        /* Leaves */
        for (size_t i = 2; i < 5; i++) {
            assert_false(X509_get_extension_flags(all[i]) & EXFLAG_CA);
            assert_true(X509_get_extension_flags(all[i]) & EXFLAG_BCONS);
            assert_true(X509_get_extension_flags(all[i]) & EXFLAG_XKUSAGE);
        }
        assert_int_equal(X509_get_key_usage(dev), KU_DIGITAL_SIGNATURE);
        assert_int_equal(X509_get_extended_key_usage(dev), XKU_SSL_CLIENT);
        assert_int_equal(X509_get_key_usage(ver), KU_DIGITAL_SIGNATURE);
        assert_int_equal(X509_get_extended_key_usage(ver), XKU_SSL_CLIENT);
        assert_int_equal(X509_get_extended_key_usage(srv), XKU_SSL_SERVER);
        assert_int_equal(X509_get_key_usage(srv),
                         KU_DIGITAL_SIGNATURE |
                             (strcmp(types[t].algo, "RSA") == 0 ? KU_KEY_ENCIPHERMENT : 0));
        assert_aki_is(dev, inter);
        assert_aki_is(ver, root);
        assert_aki_is(srv, root);
        assert_int_equal(X509_check_issued(inter, dev), X509_V_OK);
        assert_int_equal(X509_check_host(srv, "hub.example", 0, 0, NULL), 1);

        char cn[64];
        assert_int_equal(hub_pki_cert_subject_cn(dev, cn, sizeof(cn), NULL), 0);
        assert_string_equal(cn, "dev1");
        assert_int_equal(hub_pki_cert_subject_cn(ver, cn, sizeof(cn), NULL), 0);
        assert_string_equal(cn, "ABCDEF");
        for (size_t i = 0; i < 5; i++)
            X509_free(all[i]);
        EVP_PKEY_free(ca_key);
    }
}

static void test_pathlen_subject_and_sans(void **state)
{
    (void)state;
    EVP_PKEY *k = keygen(HUB_PKI_KEY_EC_P256);
    struct hub_pki_issue_params p = {
        .kind = HUB_PKI_CERT_ROOT,
        .common_name = "Contoso Root",
        .subject = "O=Contoso, OU=Fleet\\, East",
        .days = 3650,
        .pathlen = 1,
        .subject_key = k,
    };
    X509 *root = issue_full(&p);
    assert_int_equal(X509_get_pathlen(root), 1);
    char text[128];
    hub_pki_cert_subject_text(root, text, sizeof(text));
    assert_string_equal(text, "CN=Contoso Root,OU=Fleet\\, East,O=Contoso");

    p.kind = HUB_PKI_CERT_INTERMEDIATE;
    p.common_name = "Inter";
    p.subject = NULL;
    p.pathlen = 0;
    p.issuer_cert = root;
    p.issuer_key = k;
    X509 *inter = issue_full(&p);
    assert_int_equal(X509_get_pathlen(inter), 0);
    X509_free(inter);

    const char *sans[] = {"DNS:hub.example.com", "IP:127.0.0.1", "IP:::1", "10.1.2.3",
                          "other.example"};
    p.kind = HUB_PKI_CERT_SERVER;
    p.common_name = "hub";
    p.pathlen = -1;
    p.sans = sans;
    p.sans_count = 5;
    X509 *srv = issue_full(&p);
    assert_int_equal(X509_check_host(srv, "hub.example.com", 0, 0, NULL), 1);
    assert_int_equal(X509_check_host(srv, "other.example", 0, 0, NULL), 1);
    assert_int_equal(X509_check_host(srv, "hub", 0, 0, NULL), 0);
    assert_int_equal(X509_check_ip_asc(srv, "127.0.0.1", 0), 1);
    assert_int_equal(X509_check_ip_asc(srv, "::1", 0), 1);
    assert_int_equal(X509_check_ip_asc(srv, "10.1.2.3", 0), 1);
    assert_int_equal(X509_check_ip_asc(srv, "10.1.2.4", 0), 0);
    X509_free(srv);

    /* No SAN given: the CN becomes the DNS SAN. */
    p.sans = NULL;
    p.sans_count = 0;
    p.common_name = "only.example";
    srv = issue_full(&p);
    assert_int_equal(X509_check_host(srv, "only.example", 0, 0, NULL), 1);
    X509_free(srv);

    /* Refusals: one row per bad parameter. */
    const char *bad_dns[] = {"DNS:bad name,DNS:evil"};
    const char *bad_ip[] = {"IP:300.1.1.1"};
    const struct {
        const char *name;
        enum hub_pki_cert_kind kind;
        const char *cn;
        const char *subject;
        int days;
        int pathlen;
        const char **sans;
        int with_issuer;
    } rows[] = {
        {"no CN", HUB_PKI_CERT_DEVICE, "", NULL, 1, -1, NULL, 1},
        {"zero days", HUB_PKI_CERT_DEVICE, "d", NULL, 0, -1, NULL, 1},
        {"too many days", HUB_PKI_CERT_DEVICE, "d", NULL, 36501, -1, NULL, 1},
        {"pathlen on a leaf", HUB_PKI_CERT_DEVICE, "d", NULL, 1, 0, NULL, 1},
        {"SAN on a device", HUB_PKI_CERT_DEVICE, "d", NULL, 1, -1, sans, 1},
        {"device without issuer", HUB_PKI_CERT_DEVICE, "d", NULL, 1, -1, NULL, 0},
        {"root with issuer", HUB_PKI_CERT_ROOT, "r", NULL, 1, -1, NULL, 1},
        {"CN in subject", HUB_PKI_CERT_DEVICE, "d", "CN=x", 1, -1, NULL, 1},
        {"subject not FIELD=value", HUB_PKI_CERT_DEVICE, "d", "Contoso", 1, -1, NULL, 1},
        {"unknown subject field", HUB_PKI_CERT_DEVICE, "d", "XYZZY=1", 1, -1, NULL, 1},
        {"CN over 64 chars", HUB_PKI_CERT_DEVICE,
         "0123456789012345678901234567890123456789012345678901234567890123456789", NULL, 1, -1,
         NULL, 1},
        {"SAN with a comma", HUB_PKI_CERT_SERVER, "s", NULL, 1, -1, bad_dns, 1},
        {"bad IP SAN", HUB_PKI_CERT_SERVER, "s", NULL, 1, -1, bad_ip, 1},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct hub_pki_issue_params q = {
            .kind = rows[i].kind,
            .common_name = rows[i].cn,
            .subject = rows[i].subject,
            .days = rows[i].days,
            .pathlen = rows[i].pathlen,
            .sans = rows[i].sans,
            .sans_count = rows[i].sans != NULL ? 1 : 0,
            .issuer_cert = rows[i].with_issuer ? root : NULL,
            .issuer_key = rows[i].with_issuer ? k : NULL,
            .subject_key = k,
        };
        X509 *x = NULL;
        struct hub_err err = {0};
        int rc = hub_pki_cert_issue(&q, &x, &err);
        if (rc != HUB_E_INVALID_ARG || x != NULL || err.msg[0] == '\0')
            fail_msg("case '%s': rc %s", rows[i].name, hub_err_name(rc));
    }

    /* An issuer key that is not the issuer certificate's. */
    EVP_PKEY *other = keygen(HUB_PKI_KEY_EC_P256);
    struct hub_pki_issue_params q = {.kind = HUB_PKI_CERT_DEVICE,
                                     .common_name = "d",
                                     .days = 1,
                                     .pathlen = -1,
                                     .issuer_cert = root,
                                     .issuer_key = other,
                                     .subject_key = k};
    X509 *x = NULL;
    struct hub_err err = {0};
    assert_int_equal(hub_pki_cert_issue(&q, &x, &err), HUB_E_INVALID_ARG);
    assert_non_null(strstr(err.msg, "does not match"));
    EVP_PKEY_free(other);
    X509_free(root);
    EVP_PKEY_free(k);
}

static void test_serials_distinct(void **state)
{
    (void)state;
    EVP_PKEY *k = keygen(HUB_PKI_KEY_EC_P256);
    enum { N = 32 };
    X509 *certs[N];
    for (int i = 0; i < N; i++) {
        certs[i] = issue(HUB_PKI_CERT_ROOT, "r", k, NULL, NULL);
        assert_serial_ok(certs[i]);
        for (int j = 0; j < i; j++)
            assert_int_not_equal(ASN1_INTEGER_cmp(X509_get0_serialNumber(certs[i]),
                                                  X509_get0_serialNumber(certs[j])),
                                 0);
    }
    for (int i = 0; i < N; i++)
        X509_free(certs[i]);
    EVP_PKEY_free(k);
}

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static void test_key_files(void **state)
{
    (void)state;
    struct tmpdir d;
    tmpdir_make(&d);
    char path[128];
    snprintf(path, sizeof(path), "%s/k.key", d.path);
    mode_t old = umask(0); /* the mode must not depend on the umask */
    EVP_PKEY *k = keygen(HUB_PKI_KEY_EC_P256);
    struct hub_err err = {0};
    assert_int_equal(hub_pki_key_write_file(k, path, &err), 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);

    /* Replacing keeps 0600 and leaves no temporary file behind. */
    EVP_PKEY *k2 = keygen(HUB_PKI_KEY_RSA_2048);
    assert_int_equal(hub_pki_key_write_file(k2, path, &err), 0);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(count_entries(d.path), 1);
    umask(old);

    EVP_PKEY *back = NULL;
    assert_int_equal(hub_pki_key_load_file(path, &back, &err), 0);
    assert_int_equal(EVP_PKEY_eq(back, k2), 1);
    EVP_PKEY_free(back);
    FILE *f = fopen(path, "r");
    char line[64] = {0};
    assert_non_null(fgets(line, sizeof(line), f));
    fclose(f);
    assert_string_equal(line, "-----BEGIN PRIVATE KEY-----\n");

    /* Certificates: 0644 and loadable. */
    X509 *root = issue(HUB_PKI_CERT_ROOT, "r", k, NULL, NULL);
    snprintf(path, sizeof(path), "%s/c.pem", d.path);
    X509 *two[] = {root, root};
    assert_int_equal(hub_pki_certs_write_file(two, 2, path, &err), 0);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644);
    STACK_OF(X509) *certs = NULL;
    assert_int_equal(hub_pki_certs_load_file(path, &certs, &err), 0);
    assert_int_equal(sk_X509_num(certs), 2);
    sk_X509_pop_free(certs, X509_free);

    /* Key loading refusals: missing file, a certificate, an encrypted key. */
    assert_int_equal(hub_pki_key_load_file("/nonexistent/k.key", &back, &err), HUB_E_IO);
    assert_int_equal(hub_pki_key_load_file(path, &back, &err), HUB_E_PARSE);
    snprintf(path, sizeof(path), "%s/enc.key", d.path);
    f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_PKCS8PrivateKey(f, k, EVP_aes_256_cbc(), "pw", 2, NULL, NULL), 1);
    fclose(f);
    assert_int_equal(hub_pki_key_load_file(path, &back, &err), HUB_E_PARSE);
    assert_non_null(strstr(err.msg, "encrypted"));
    /* Writing into a missing directory fails cleanly. */
    assert_int_equal(hub_pki_key_write_file(k, "/nonexistent/dir/k.key", &err), HUB_E_IO);

    X509_free(root);
    EVP_PKEY_free(k);
    EVP_PKEY_free(k2);
    tmpdir_remove(&d);
}

static void test_openssl_verifies_chains(void **state)
{
    (void)state;
    struct tmpdir d;
    tmpdir_make(&d);
    EVP_PKEY *rk = keygen(HUB_PKI_KEY_EC_P384);
    EVP_PKEY *ik = keygen(HUB_PKI_KEY_RSA_2048);
    EVP_PKEY *dk = keygen(HUB_PKI_KEY_EC_P256);
    EVP_PKEY *sk = keygen(HUB_PKI_KEY_RSA_2048);
    X509 *root = issue(HUB_PKI_CERT_ROOT, "Verify Root", rk, NULL, NULL);
    X509 *inter = issue(HUB_PKI_CERT_INTERMEDIATE, "Verify Intermediate", ik, root, rk);
    X509 *dev = issue(HUB_PKI_CERT_DEVICE, "dev1", dk, inter, ik);
    X509 *ver = issue(HUB_PKI_CERT_VERIFICATION, "0123ABCD", dk, root, rk);
    const char *sans[] = {"DNS:localhost", "IP:127.0.0.1"};
    struct hub_pki_issue_params p = {.kind = HUB_PKI_CERT_SERVER,
                                     .common_name = "localhost",
                                     .days = 10,
                                     .pathlen = -1,
                                     .sans = sans,
                                     .sans_count = 2,
                                     .issuer_cert = inter,
                                     .issuer_key = ik,
                                     .subject_key = sk};
    X509 *srv = issue_full(&p);
    write_certs(&d, "root.pem", &root, 1);
    write_certs(&d, "int.pem", &inter, 1);
    write_certs(&d, "dev.pem", &dev, 1);
    write_certs(&d, "ver.pem", &ver, 1);
    write_certs(&d, "srv.pem", &srv, 1);

    assert_int_equal(openssl_ok(&d, "verify -CAfile root.pem -untrusted int.pem dev.pem"), 0);
    assert_int_equal(
        openssl_ok(&d, "verify -purpose sslclient -CAfile root.pem -untrusted int.pem dev.pem"), 0);
    assert_int_equal(openssl_ok(&d, "verify -CAfile root.pem ver.pem"), 0);
    assert_int_equal(
        openssl_ok(&d, "verify -purpose sslserver -CAfile root.pem -untrusted int.pem srv.pem"), 0);
    assert_int_equal(openssl_ok(&d, "verify -x509_strict -CAfile root.pem -untrusted int.pem "
                                    "dev.pem srv.pem"),
                     0);
    /* The check can fail: without the intermediate there is no path, and a
     * device certificate is not a server certificate. */
    assert_int_not_equal(openssl_fails(&d, "verify -CAfile root.pem dev.pem"), 0);
    assert_int_not_equal(
        openssl_fails(&d, "verify -purpose sslserver -CAfile root.pem -untrusted int.pem dev.pem"),
        0);
    /* And the subject the CLI reads is the device id. */
    assert_int_equal(openssl_ok(&d, "x509 -in dev.pem -noout -subject -nameopt RFC2253"), 0);
    char out_path[128], line[128] = {0};
    snprintf(out_path, sizeof(out_path), "%s/out.txt", d.path);
    FILE *f = fopen(out_path, "r");
    assert_non_null(f);
    assert_non_null(fgets(line, sizeof(line), f));
    fclose(f);
    assert_string_equal(line, "subject=CN=dev1\n");

    X509 *all[] = {root, inter, dev, ver, srv};
    for (size_t i = 0; i < 5; i++)
        X509_free(all[i]);
    EVP_PKEY *keys[] = {rk, ik, dk, sk};
    for (size_t i = 0; i < 4; i++)
        EVP_PKEY_free(keys[i]);
    tmpdir_remove(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_type_parse),
        cmocka_unit_test(test_profiles_per_key_type),
        cmocka_unit_test(test_pathlen_subject_and_sans),
        cmocka_unit_test(test_serials_distinct),
        cmocka_unit_test(test_key_files),
        cmocka_unit_test(test_openssl_verifies_chains),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
