/*
 * pki loading: one table of inputs (built at start-up with OpenSSL, so every
 * private-key encoding is a real one) -> expected code and certificate count.
 * Then thumbprints against digests computed here, and the facts getters.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "pki/pki.h"

/* ---- byte buffers ------------------------------------------------------- */

struct buf {
    unsigned char *p;
    size_t len;
};

static void buf_add(struct buf *b, const void *data, size_t len)
{
    b->p = realloc(b->p, b->len + len + 1);
    assert_non_null(b->p);
    memcpy(b->p + b->len, data, len);
    b->len += len;
    b->p[b->len] = '\0';
}

static void buf_str(struct buf *b, const char *s)
{
    buf_add(b, s, strlen(s));
}

static void buf_cat(struct buf *b, const struct buf *other)
{
    buf_add(b, other->p, other->len);
}

/* Drains a memory BIO into a new buffer and frees the BIO. */
static struct buf buf_from_bio(BIO *bio)
{
    struct buf b = {0};
    char *data = NULL;
    long n = BIO_get_mem_data(bio, &data);
    assert_true(n > 0);
    buf_add(&b, data, (size_t)n);
    BIO_free(bio);
    return b;
}

/* A PEM block with any label around any bytes. */
static struct buf pem_wrap(const char *label, const unsigned char *der, size_t len)
{
    BIO *bio = BIO_new(BIO_s_mem());
    assert_non_null(bio);
    assert_true(PEM_write_bio(bio, label, "", der, (long)len) > 0);
    return buf_from_bio(bio);
}

/* ---- fixture ------------------------------------------------------------ */

enum { MAX_CASES = 64 };

struct load_case {
    const char *name;
    struct buf in;
    int want_rc;
    int want_count;
};

struct fixture {
    EVP_PKEY *ec_key, *rsa_key;
    X509 *root, *leaf;
    struct buf root_pem, leaf_pem, leaf_der;
    struct load_case cases[MAX_CASES];
    size_t ncases;
};

static struct fixture fx;

static void add_case(const char *name, struct buf in, int want_rc, int want_count)
{
    assert_true(fx.ncases < MAX_CASES);
    fx.cases[fx.ncases++] = (struct load_case){name, in, want_rc, want_count};
}

static struct buf cert_pem(X509 *c)
{
    BIO *bio = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_X509(bio, c), 1);
    return buf_from_bio(bio);
}

static struct buf cert_der(X509 *c)
{
    struct buf b = {0};
    unsigned char *der = NULL;
    int n = i2d_X509(c, &der);
    assert_true(n > 0);
    buf_add(&b, der, (size_t)n);
    OPENSSL_free(der);
    return b;
}

static X509 *issue(enum hub_pki_cert_kind kind, const char *cn, const char *subject, EVP_PKEY *key,
                   X509 *issuer, EVP_PKEY *issuer_key)
{
    struct hub_pki_issue_params p = {
        .kind = kind,
        .common_name = cn,
        .subject = subject,
        .days = 30,
        .pathlen = -1,
        .issuer_cert = issuer,
        .issuer_key = issuer_key,
        .subject_key = key,
    };
    X509 *x = NULL;
    struct hub_err err = {0};
    int rc = hub_pki_cert_issue(&p, &x, &err);
    if (rc != 0)
        fail_msg("issue %s: %s", cn, err.msg);
    return x;
}

static struct buf key_pem_pkcs8(EVP_PKEY *k, const EVP_CIPHER *enc)
{
    BIO *bio = BIO_new(BIO_s_mem());
    assert_int_equal(
        PEM_write_bio_PKCS8PrivateKey(bio, k, enc, enc ? "pw" : NULL, enc ? 2 : 0, NULL, NULL), 1);
    return buf_from_bio(bio);
}

static struct buf key_pem_traditional(EVP_PKEY *k, const EVP_CIPHER *enc)
{
    BIO *bio = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_PrivateKey_traditional(bio, k, enc,
                                                          (unsigned char *)(enc ? "pw" : NULL),
                                                          enc ? 2 : 0, NULL, NULL),
                     1);
    return buf_from_bio(bio);
}

static struct buf key_der_pkcs8(EVP_PKEY *k, const EVP_CIPHER *enc)
{
    BIO *bio = BIO_new(BIO_s_mem());
    assert_int_equal(
        i2d_PKCS8PrivateKey_bio(bio, k, enc, enc ? "pw" : NULL, enc ? 2 : 0, NULL, NULL), 1);
    return buf_from_bio(bio);
}

static struct buf key_der_traditional(EVP_PKEY *k)
{
    struct buf b = {0};
    unsigned char *der = NULL;
    int n = i2d_PrivateKey(k, &der);
    assert_true(n > 0);
    buf_add(&b, der, (size_t)n);
    OPENSSL_free(der);
    return b;
}

static struct buf text(const char *s)
{
    struct buf b = {0};
    buf_str(&b, s);
    return b;
}

static struct buf concat3(const struct buf *a, const char *mid, const struct buf *c)
{
    struct buf b = {0};
    buf_cat(&b, a);
    buf_str(&b, mid);
    buf_cat(&b, c);
    return b;
}

static void build_key_cases(void)
{
    EVP_PKEY *ec = fx.ec_key, *rsa = fx.rsa_key;
    const EVP_CIPHER *aes = EVP_aes_256_cbc();
    /* Real encodings of real keys, in every format OpenSSL writes. */
    add_case("PEM PKCS#8 'PRIVATE KEY' (EC)", key_pem_pkcs8(ec, NULL), HUB_E_PRIVATE_KEY, 0);
    add_case("PEM PKCS#8 'PRIVATE KEY' (RSA)", key_pem_pkcs8(rsa, NULL), HUB_E_PRIVATE_KEY, 0);
    add_case("PEM 'ENCRYPTED PRIVATE KEY'", key_pem_pkcs8(ec, aes), HUB_E_PRIVATE_KEY, 0);
    add_case("PEM 'RSA PRIVATE KEY'", key_pem_traditional(rsa, NULL), HUB_E_PRIVATE_KEY, 0);
    add_case("PEM 'RSA PRIVATE KEY' encrypted", key_pem_traditional(rsa, aes), HUB_E_PRIVATE_KEY,
             0);
    add_case("PEM 'EC PRIVATE KEY'", key_pem_traditional(ec, NULL), HUB_E_PRIVATE_KEY, 0);
    add_case("DER PKCS#8 (EC)", key_der_pkcs8(ec, NULL), HUB_E_PRIVATE_KEY, 0);
    add_case("DER PKCS#8 (RSA)", key_der_pkcs8(rsa, NULL), HUB_E_PRIVATE_KEY, 0);
    add_case("DER encrypted PKCS#8", key_der_pkcs8(ec, aes), HUB_E_PRIVATE_KEY, 0);
    add_case("DER traditional RSA", key_der_traditional(rsa), HUB_E_PRIVATE_KEY, 0);
    add_case("DER traditional EC", key_der_traditional(ec), HUB_E_PRIVATE_KEY, 0);

    /* Labels we cannot easily produce for real: the label alone must do. */
    static const unsigned char junk[] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    add_case("PEM 'DSA PRIVATE KEY'", pem_wrap("DSA PRIVATE KEY", junk, sizeof(junk)),
             HUB_E_PRIVATE_KEY, 0);
    add_case("PEM 'OPENSSH PRIVATE KEY'", pem_wrap("OPENSSH PRIVATE KEY", junk, sizeof(junk)),
             HUB_E_PRIVATE_KEY, 0);
    add_case("PEM 'ANYTHING PRIVATE KEY'", pem_wrap("ANYTHING PRIVATE KEY", junk, sizeof(junk)),
             HUB_E_PRIVATE_KEY, 0);
    add_case("PEM lowercase 'private key' label",
             text("-----begin private key-----\nAAAA\n-----end private key-----\n"),
             HUB_E_PRIVATE_KEY, 0);
    add_case("'PRIVATE KEY' past 64 label characters",
             text("-----BEGIN XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"
                  " PRIVATE KEY-----\nAAAA\n"),
             HUB_E_PRIVATE_KEY, 0);
    add_case("PuTTY key file", text("PuTTY-User-Key-File-2: ssh-rsa\nEncryption: none\n"),
             HUB_E_PRIVATE_KEY, 0);

    /* A DSA key shape (SEQUENCE of 6 INTEGERs) as DER and inside an innocent label. */
    static const unsigned char dsa_shape[] = {0x30, 0x12, 0x02, 0x01, 0x00, 0x02, 0x01,
                                              0x17, 0x02, 0x01, 0x0b, 0x02, 0x01, 0x02,
                                              0x02, 0x01, 0x08, 0x02, 0x01, 0x05};
    struct buf dsa = {0};
    buf_add(&dsa, dsa_shape, sizeof(dsa_shape));
    add_case("DER DSA key shape", dsa, HUB_E_PRIVATE_KEY, 0);
    add_case("DSA key shape in a 'FOO' block", pem_wrap("FOO", dsa_shape, sizeof(dsa_shape)),
             HUB_E_PRIVATE_KEY, 0);

    /* A key disguised as a certificate block. */
    struct buf p8 = key_der_pkcs8(ec, NULL);
    add_case("PKCS#8 DER in a 'CERTIFICATE' block", pem_wrap("CERTIFICATE", p8.p, p8.len),
             HUB_E_PRIVATE_KEY, 0);
    free(p8.p);

    /* Keys next to certificates: the whole buffer is scanned. */
    struct buf key = key_pem_pkcs8(ec, NULL);
    add_case("cert then key", concat3(&fx.leaf_pem, "", &key), HUB_E_PRIVATE_KEY, 0);
    add_case("key then cert", concat3(&key, "", &fx.leaf_pem), HUB_E_PRIVATE_KEY, 0);
    add_case("key mid-line after text", concat3(&fx.leaf_pem, "see below: ", &key),
             HUB_E_PRIVATE_KEY, 0);
    struct buf trunc_key = {0};
    buf_add(&trunc_key, key.p, key.len / 2);
    add_case("cert then truncated key", concat3(&fx.leaf_pem, "", &trunc_key), HUB_E_PRIVATE_KEY,
             0);
    free(trunc_key.p);
    free(key.p);
}

static struct buf csr_pem(void)
{
    X509_REQ *req = X509_REQ_new();
    X509_NAME *n = X509_NAME_new();
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"csr", -1, -1, 0);
    X509_REQ_set_subject_name(req, n);
    X509_REQ_set_pubkey(req, fx.ec_key);
    assert_true(X509_REQ_sign(req, fx.ec_key, EVP_sha256()) > 0);
    BIO *bio = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_X509_REQ(bio, req), 1);
    X509_NAME_free(n);
    X509_REQ_free(req);
    return buf_from_bio(bio);
}

static void build_other_cases(void)
{
    add_case("PEM single", cert_pem(fx.leaf), 0, 1);
    add_case(
        "PEM chain with text between",
        concat3(&fx.leaf_pem, "Certificate:\n    Data: (openssl -text output)\n\n", &fx.root_pem),
        0, 2);
    struct buf crlf = {0};
    for (size_t i = 0; i < fx.leaf_pem.len; i++) {
        if (fx.leaf_pem.p[i] == '\n')
            buf_str(&crlf, "\r");
        buf_add(&crlf, &fx.leaf_pem.p[i], 1);
    }
    add_case("PEM with CRLF line ends", crlf, 0, 1);
    add_case("DER single", cert_der(fx.leaf), 0, 1);

    add_case("empty", (struct buf){0}, HUB_E_EMPTY, 0);
    add_case("text without blocks", text("hello, this is not a certificate\n"), HUB_E_EMPTY, 0);

    struct buf big = {0};
    buf_cat(&big, &fx.leaf_pem);
    while (big.len < HUB_PKI_MAX_FILE_BYTES)
        buf_str(&big, "#");
    big.len = HUB_PKI_MAX_FILE_BYTES;
    add_case("exactly 64 KiB", big, 0, 1);
    struct buf bigger = {0};
    buf_cat(&bigger, &big);
    buf_str(&bigger, "#");
    add_case("64 KiB + 1", bigger, HUB_E_TOO_LARGE, 0);

    add_case("PEM 'CERTIFICATE REQUEST'", csr_pem(), HUB_E_NOT_CERT, 0);
    BIO *bio = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_PUBKEY(bio, fx.ec_key), 1);
    add_case("PEM 'PUBLIC KEY'", buf_from_bio(bio), HUB_E_NOT_CERT, 0);
    add_case("cert then 'PUBLIC KEY'", concat3(&fx.leaf_pem, "", &fx.cases[fx.ncases - 1].in),
             HUB_E_NOT_CERT, 0);
    add_case("PEM 'TRUSTED CERTIFICATE'",
             pem_wrap("TRUSTED CERTIFICATE", fx.leaf_der.p, fx.leaf_der.len), HUB_E_NOT_CERT, 0);
    struct buf spki = {0};
    unsigned char *der = NULL;
    int n = i2d_PUBKEY(fx.ec_key, &der);
    assert_true(n > 0);
    buf_add(&spki, der, (size_t)n);
    OPENSSL_free(der);
    add_case("DER public key", spki, HUB_E_NOT_CERT, 0);

    struct buf trunc = {0};
    buf_add(&trunc, fx.leaf_pem.p, fx.leaf_pem.len / 2);
    add_case("truncated PEM (no END)", trunc, HUB_E_PARSE, 0);
    struct buf trunc_der = {0};
    buf_add(&trunc_der, fx.leaf_der.p, fx.leaf_der.len - 10);
    add_case("truncated DER", trunc_der, HUB_E_PARSE, 0);
    struct buf trailing = {0};
    buf_cat(&trailing, &fx.leaf_der);
    buf_add(&trailing, "\0", 1);
    add_case("DER with a trailing byte", trailing, HUB_E_PARSE, 0);
    add_case("mismatched END label",
             text("-----BEGIN CERTIFICATE-----\nAAAA\n-----END X509 CRL-----\n"), HUB_E_PARSE, 0);
    add_case("bad base64 character",
             text("-----BEGIN CERTIFICATE-----\nAA*A\n-----END CERTIFICATE-----\n"), HUB_E_PARSE,
             0);
    add_case("empty certificate block",
             text("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"), HUB_E_PARSE, 0);
    add_case("certificate block of junk",
             text("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), HUB_E_PARSE,
             0);
    add_case("BEGIN inside a block",
             concat3(&(struct buf){(unsigned char *)"-----BEGIN CERTIFICATE-----\nAAAA\n", 33}, "",
                     &fx.leaf_pem),
             HUB_E_PARSE, 0);
    add_case("certificate with PEM headers",
             text("-----BEGIN CERTIFICATE-----\nProc-Type: 4,ENCRYPTED\n\nAAAA\n"
                  "-----END CERTIFICATE-----\n"),
             HUB_E_PARSE, 0);
    add_case("malformed BEGIN line", text("-----BEGIN CERTIFICATE\nAAAA\n"), HUB_E_PARSE, 0);
    static const unsigned char garbage[] = {0x01, 0xff, 0x00, 0x7f, 0x80, 0x30, 0x82, 0xff};
    struct buf g = {0};
    buf_add(&g, garbage, sizeof(garbage));
    add_case("binary garbage", g, HUB_E_PARSE, 0);
    static const unsigned char huge_len[] = {0x30, 0x84, 0xff, 0xff, 0xff, 0xff, 0x30, 0x00};
    struct buf h = {0};
    buf_add(&h, huge_len, sizeof(huge_len));
    add_case("DER length past the end", h, HUB_E_PARSE, 0);
    struct buf many = {0};
    for (int i = 0; i < 200; i++)
        buf_str(&many, "-----BEGIN X-----\nAAAA\n-----END X-----\n");
    add_case("200 tiny blocks", many, HUB_E_TOO_LARGE, 0);
}

static int setup(void **state)
{
    (void)state;
    struct hub_err err = {0};
    if (hub_pki_key_generate(HUB_PKI_KEY_EC_P256, &fx.ec_key, &err) != 0 ||
        hub_pki_key_generate(HUB_PKI_KEY_RSA_2048, &fx.rsa_key, &err) != 0)
        return -1;
    fx.root = issue(HUB_PKI_CERT_ROOT, "Load Test Root", NULL, fx.ec_key, NULL, NULL);
    fx.leaf = issue(HUB_PKI_CERT_DEVICE, "dev1", "O=Contoso", fx.rsa_key, fx.root, fx.ec_key);
    fx.root_pem = cert_pem(fx.root);
    fx.leaf_pem = cert_pem(fx.leaf);
    fx.leaf_der = cert_der(fx.leaf);
    build_key_cases();
    build_other_cases();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    for (size_t i = 0; i < fx.ncases; i++)
        free(fx.cases[i].in.p);
    free(fx.root_pem.p);
    free(fx.leaf_pem.p);
    free(fx.leaf_der.p);
    X509_free(fx.root);
    X509_free(fx.leaf);
    EVP_PKEY_free(fx.ec_key);
    EVP_PKEY_free(fx.rsa_key);
    return 0;
}

/* ---- tests -------------------------------------------------------------- */

static void test_load_table(void **state)
{
    (void)state;
    int failures = 0;
    for (size_t i = 0; i < fx.ncases; i++) {
        const struct load_case *c = &fx.cases[i];
        STACK_OF(X509) *certs = NULL;
        struct hub_err err = {0};
        int rc = hub_pki_certs_load_mem(c->in.p, c->in.len, &certs, &err);
        int count = certs != NULL ? sk_X509_num(certs) : 0;
        if (rc != c->want_rc || count != c->want_count || (rc != 0 && certs != NULL) ||
            (rc != 0 && (err.code != rc || err.msg[0] == '\0'))) {
            print_error("case '%s': rc %s (want %s), %d certs (want %d): %s\n", c->name,
                        hub_err_name(rc), hub_err_name(c->want_rc), count, c->want_count, err.msg);
            failures++;
        }
        sk_X509_pop_free(certs, X509_free);
    }
    assert_int_equal(failures, 0);
}

static void test_chain_keeps_file_order(void **state)
{
    (void)state;
    struct buf chain = concat3(&fx.leaf_pem, "junk between\n", &fx.root_pem);
    STACK_OF(X509) *certs = NULL;
    assert_int_equal(hub_pki_certs_load_mem(chain.p, chain.len, &certs, NULL), 0);
    assert_int_equal(sk_X509_num(certs), 2);
    assert_int_equal(X509_cmp(sk_X509_value(certs, 0), fx.leaf), 0);
    assert_int_equal(X509_cmp(sk_X509_value(certs, 1), fx.root), 0);
    sk_X509_pop_free(certs, X509_free);

    X509 *one = NULL;
    struct hub_err err = {0};
    assert_int_equal(hub_pki_cert_load_mem(chain.p, chain.len, &one, &err), HUB_E_INVALID_ARG);
    assert_null(one);
    assert_int_equal(hub_pki_cert_load_mem(fx.leaf_der.p, fx.leaf_der.len, &one, &err), 0);
    assert_int_equal(X509_cmp(one, fx.leaf), 0);
    X509_free(one);
    free(chain.p);
}

static void test_private_key_message_names_the_key(void **state)
{
    (void)state;
    struct buf key = key_pem_traditional(fx.rsa_key, NULL);
    struct buf both = concat3(&fx.leaf_pem, "", &key);
    STACK_OF(X509) *certs = NULL;
    struct hub_err err = {0};
    assert_int_equal(hub_pki_certs_load_mem(both.p, both.len, &certs, &err), HUB_E_PRIVATE_KEY);
    assert_non_null(strstr(err.msg, "RSA PRIVATE KEY"));
    assert_non_null(strstr(err.msg, "private key"));
    free(key.p);
    free(both.p);
}

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static void test_load_file(void **state)
{
    (void)state;
    char dir[] = "/tmp/hub-pki-load-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof(path), "%s/leaf.pem", dir);
    write_file(path, fx.leaf_pem.p, fx.leaf_pem.len);
    X509 *cert = NULL;
    struct hub_err err = {0};
    assert_int_equal(hub_pki_cert_load_file(path, &cert, &err), 0);
    assert_int_equal(X509_cmp(cert, fx.leaf), 0);
    X509_free(cert);

    /* A refusal names the file and keeps the code. */
    struct buf key = key_pem_pkcs8(fx.ec_key, NULL);
    write_file(path, key.p, key.len);
    STACK_OF(X509) *certs = NULL;
    assert_int_equal(hub_pki_certs_load_file(path, &certs, &err), HUB_E_PRIVATE_KEY);
    assert_non_null(strstr(err.msg, path));
    free(key.p);

    unsigned char *big = calloc(1, HUB_PKI_MAX_FILE_BYTES + 1);
    write_file(path, big, HUB_PKI_MAX_FILE_BYTES + 1);
    free(big);
    assert_int_equal(hub_pki_certs_load_file(path, &certs, &err), HUB_E_TOO_LARGE);
    write_file(path, "", 0);
    assert_int_equal(hub_pki_certs_load_file(path, &certs, &err), HUB_E_EMPTY);

    assert_int_equal(hub_pki_certs_load_file(dir, &certs, &err), HUB_E_IO);
    unlink(path);
    assert_int_equal(hub_pki_certs_load_file(path, &certs, &err), HUB_E_IO);
    assert_null(certs);
    rmdir(dir);
}

static void test_thumbprints_match_independent_digests(void **state)
{
    (void)state;
    X509 *certs[] = {fx.root, fx.leaf};
    for (size_t i = 0; i < 2; i++) {
        struct {
            enum hub_pki_digest d;
            const EVP_MD *md;
            size_t hex_len;
        } rows[] = {{HUB_PKI_SHA1, EVP_sha1(), 40}, {HUB_PKI_SHA256, EVP_sha256(), 64}};
        for (size_t r = 0; r < 2; r++) {
            unsigned char *der = NULL;
            int der_len = i2d_X509(certs[i], &der);
            unsigned char md[EVP_MAX_MD_SIZE];
            unsigned int md_len = 0;
            assert_int_equal(EVP_Digest(der, (size_t)der_len, md, &md_len, rows[r].md, NULL), 1);
            OPENSSL_free(der);
            char want[HUB_PKI_THUMBPRINT_MAX];
            for (unsigned k = 0; k < md_len; k++)
                snprintf(want + 2 * k, 3, "%02X", md[k]);

            /* X509_digest takes another code path (and a cached encoding). */
            unsigned char md2[EVP_MAX_MD_SIZE];
            unsigned int md2_len = 0;
            assert_int_equal(X509_digest(certs[i], rows[r].md, md2, &md2_len), 1);
            assert_memory_equal(md, md2, md_len);

            char got[HUB_PKI_THUMBPRINT_MAX];
            assert_int_equal(hub_pki_thumbprint(certs[i], rows[r].d, got, NULL), 0);
            assert_int_equal(strlen(got), rows[r].hex_len);
            assert_string_equal(got, want);
        }
    }
    char out[HUB_PKI_THUMBPRINT_MAX];
    struct hub_err err = {0};
    assert_int_equal(hub_pki_thumbprint(fx.leaf, (enum hub_pki_digest)7, out, &err),
                     HUB_E_INVALID_ARG);
}

static X509 *cert_without_cn(void)
{
    X509 *x = X509_new();
    X509_NAME *n = X509_NAME_new();
    X509_NAME_add_entry_by_txt(n, "O", MBSTRING_ASC, (const unsigned char *)"NoCN", -1, -1, 0);
    X509_set_subject_name(x, n);
    X509_set_issuer_name(x, n);
    X509_set_pubkey(x, fx.ec_key);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 60);
    assert_true(X509_sign(x, fx.ec_key, EVP_sha256()) > 0);
    X509_NAME_free(n);
    return x;
}

static void test_cert_facts(void **state)
{
    (void)state;
    char cn[64];
    struct hub_err err = {0};
    assert_int_equal(hub_pki_cert_subject_cn(fx.leaf, cn, sizeof(cn), &err), 0);
    assert_string_equal(cn, "dev1");
    assert_int_equal(hub_pki_cert_subject_cn(fx.leaf, cn, 4, &err), HUB_E_TOO_LARGE);
    assert_int_equal(hub_pki_cert_subject_cn(fx.leaf, cn, 5, &err), 0);
    X509 *nocn = cert_without_cn();
    assert_int_equal(hub_pki_cert_subject_cn(nocn, cn, sizeof(cn), &err), HUB_E_NOT_FOUND);
    X509_free(nocn);

    char text_buf[128];
    hub_pki_cert_subject_text(fx.leaf, text_buf, sizeof(text_buf));
    assert_string_equal(text_buf, "CN=dev1,O=Contoso");
    hub_pki_cert_subject_text(fx.leaf, text_buf, 5);
    assert_string_equal(text_buf, "CN=d");

    /* Truncation never splits a UTF-8 character ("é" is 2 bytes, "€" 3). */
    X509 *u = X509_new();
    X509_NAME *un = X509_NAME_new();
    X509_NAME_add_entry_by_txt(un, "CN", MBSTRING_UTF8,
                               (const unsigned char *)"\xc3\xa9\xe2\x82\xac", -1, -1, 0);
    X509_set_subject_name(u, un);
    X509_NAME_free(un);
    static const struct {
        size_t cap;
        const char *want;
    } cuts[] = {
        {4, "CN="},                     /* room for 3 bytes */
        {5, "CN="},                     /* 4: half of é, backed off */
        {6, "CN=\xc3\xa9"},             /* é whole */
        {7, "CN=\xc3\xa9"},             /* one byte of €, backed off */
        {8, "CN=\xc3\xa9"},             /* two bytes of € */
        {9, "CN=\xc3\xa9\xe2\x82\xac"}, /* all of it */
    };
    for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
        hub_pki_cert_subject_text(u, text_buf, cuts[i].cap);
        if (strcmp(text_buf, cuts[i].want) != 0)
            fail_msg("cap %zu: got '%s'", cuts[i].cap, text_buf);
    }
    X509_free(u);

    assert_int_equal(hub_pki_cert_is_ca(fx.root), 1);
    assert_int_equal(hub_pki_cert_is_ca(fx.leaf), 0);

    int64_t nb = 0, na = 0;
    int64_t now = (int64_t)time(NULL);
    assert_int_equal(hub_pki_cert_validity(fx.leaf, &nb, &na, &err), 0);
    assert_true(nb <= now - 290 && nb >= now - 400);
    assert_true(na - nb == 30 * 86400 + 300);
}

static void test_to_pem_round_trip(void **state)
{
    (void)state;
    char *pem = NULL;
    assert_int_equal(hub_pki_cert_to_pem(fx.leaf, &pem, NULL), 0);
    assert_non_null(strstr(pem, "-----BEGIN CERTIFICATE-----\n"));
    assert_memory_equal(pem, fx.leaf_pem.p, fx.leaf_pem.len);
    assert_int_equal(strlen(pem), fx.leaf_pem.len);
    X509 *back = NULL;
    assert_int_equal(hub_pki_cert_load_mem(pem, strlen(pem), &back, NULL), 0);
    assert_int_equal(X509_cmp(back, fx.leaf), 0);
    X509_free(back);
    free(pem);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_table),
        cmocka_unit_test(test_chain_keeps_file_order),
        cmocka_unit_test(test_private_key_message_names_the_key),
        cmocka_unit_test(test_load_file),
        cmocka_unit_test(test_thumbprints_match_independent_digests),
        cmocka_unit_test(test_cert_facts),
        cmocka_unit_test(test_to_pem_round_trip),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
