/*
 * The chain validation policy (hub_pki_chain_verify), table-driven: every row
 * builds a small PKI with OpenSSL directly (so this test does not depend on
 * the issuing code it might one day check), runs one verification and
 * asserts the code and the words of the reason.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

#include "pki/pki.h"

/* 2026-01-01T00:00:00Z: the "now" of every row unless it says otherwise. */
#define T0  ((int64_t)1767225600)
#define DAY ((int64_t)86400)

static EVP_PKEY *k_root, *k_int, *k_int2, *k_leaf, *k_other, *k_rsa1024, *k_rsa2048;

/* ---- certificate builder ------------------------------------------------ */

enum bc { BC_LEAF = 0, BC_CA, BC_NONE, BC_LEAF_CA };

struct mk {
    const char *cn; /* NULL: empty subject */
    int v1;         /* X.509 v1, no extensions at all */
    enum bc bc;
    long pathlen;          /* CAs: -1 none */
    const char *ku;        /* NULL: default for the kind; "" none */
    const char *eku;       /* leaves: NULL = clientAuth, "" none */
    const char *san;       /* e.g. "DNS:dev1.example.com" */
    const char *nc;        /* e.g. "critical,permitted;DNS:example.com" */
    int unknown_crit;      /* add an unknown critical extension */
    int64_t not_before;    /* 0: T0 - 1 day */
    int64_t not_after;     /* 0: T0 + 365 days */
    const EVP_MD *md;      /* NULL: SHA-256 */
    const char *issuer_cn; /* override the issuer name (forged certificates) */
};

static void add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
    assert_non_null(e);
    assert_int_equal(X509_add_ext(x, e, -1), 1);
    X509_EXTENSION_free(e);
}

static X509 *mk_cert(const struct mk *m, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key)
{
    static long serial = 1000;
    X509 *x = X509_new();
    assert_non_null(x);
    assert_int_equal(X509_set_version(x, m->v1 ? X509_VERSION_1 : X509_VERSION_3), 1);
    assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), ++serial), 1);
    X509_NAME *name = X509_NAME_new();
    if (m->cn != NULL)
        assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                                    (const unsigned char *)m->cn, -1, -1, 0),
                         1);
    assert_int_equal(X509_set_subject_name(x, name), 1);
    if (m->issuer_cn != NULL) {
        X509_NAME *in = X509_NAME_new();
        X509_NAME_add_entry_by_txt(in, "CN", MBSTRING_UTF8, (const unsigned char *)m->issuer_cn, -1,
                                   -1, 0);
        X509_set_issuer_name(x, in);
        X509_NAME_free(in);
    } else {
        X509_set_issuer_name(x, issuer != NULL ? X509_get_subject_name(issuer) : name);
    }
    X509_NAME_free(name);
    assert_non_null(
        ASN1_TIME_set(X509_getm_notBefore(x), (time_t)(m->not_before ? m->not_before : T0 - DAY)));
    assert_non_null(ASN1_TIME_set(X509_getm_notAfter(x),
                                  (time_t)(m->not_after ? m->not_after : T0 + 365 * DAY)));
    assert_int_equal(X509_set_pubkey(x, key), 1);

    if (!m->v1) {
        X509V3_CTX ctx;
        X509V3_set_ctx(&ctx, issuer != NULL ? issuer : x, x, NULL, NULL, 0);
        int ca = m->bc == BC_CA || m->bc == BC_LEAF_CA;
        char bc[64];
        if (m->bc == BC_CA && m->pathlen >= 0)
            snprintf(bc, sizeof(bc), "critical,CA:TRUE,pathlen:%ld", m->pathlen);
        else
            snprintf(bc, sizeof(bc), ca ? "critical,CA:TRUE" : "CA:FALSE");
        if (m->bc != BC_NONE)
            add_ext(x, &ctx, NID_basic_constraints, bc);
        const char *ku = m->ku != NULL    ? m->ku
                         : m->bc == BC_CA ? "critical,keyCertSign,cRLSign"
                                          : "critical,digitalSignature";
        if (ku[0] != '\0')
            add_ext(x, &ctx, NID_key_usage, ku);
        add_ext(x, &ctx, NID_subject_key_identifier, "hash");
        add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always");
        if (m->bc != BC_CA) {
            const char *eku = m->eku != NULL ? m->eku : "clientAuth";
            if (eku[0] != '\0')
                add_ext(x, &ctx, NID_ext_key_usage, eku);
        }
        if (m->san != NULL)
            add_ext(x, &ctx, NID_subject_alt_name, m->san);
        if (m->nc != NULL)
            add_ext(x, &ctx, NID_name_constraints, m->nc);
        if (m->unknown_crit) {
            ASN1_OBJECT *obj = OBJ_txt2obj("1.3.6.1.4.1.55738.666.1", 1);
            ASN1_OCTET_STRING *val = ASN1_OCTET_STRING_new();
            ASN1_OCTET_STRING_set(val, (const unsigned char *)"\x05\x00", 2);
            X509_EXTENSION *e = X509_EXTENSION_create_by_OBJ(NULL, obj, 1, val);
            assert_non_null(e);
            X509_add_ext(x, e, -1);
            X509_EXTENSION_free(e);
            ASN1_OCTET_STRING_free(val);
            ASN1_OBJECT_free(obj);
        }
    }
    assert_true(X509_sign(x, issuer_key != NULL ? issuer_key : key,
                          m->md != NULL ? m->md : EVP_sha256()) > 0);
    return x;
}

/* ---- scenarios ---------------------------------------------------------- */

struct scenario {
    STACK_OF(X509) * trusted;
    STACK_OF(X509) * untrusted;
    X509 *leaf;
};

static void push(STACK_OF(X509) * sk, X509 *x)
{
    assert_true(sk_X509_push(sk, x) > 0);
}

static X509 *root_cert(void)
{
    struct mk m = {.cn = "Contoso Root", .bc = BC_CA, .pathlen = -1};
    return mk_cert(&m, k_root, NULL, NULL);
}

static X509 *int_cert(X509 *root, long pathlen)
{
    struct mk m = {.cn = "Contoso Intermediate", .bc = BC_CA, .pathlen = pathlen};
    return mk_cert(&m, k_int, root, k_root);
}

static X509 *dev_cert(X509 *issuer, EVP_PKEY *issuer_key, const struct mk *over)
{
    struct mk m = {.cn = "dev1", .bc = BC_LEAF};
    if (over != NULL)
        m = *over;
    return mk_cert(&m, k_leaf, issuer, issuer_key);
}

/* root -> int -> leaf; trusted {root}; untrusted {int}. */
static void sc_basic(struct scenario *s, const struct mk *leaf)
{
    X509 *root = root_cert(), *in = int_cert(root, -1);
    push(s->trusted, root);
    push(s->untrusted, in);
    s->leaf = dev_cert(in, k_int, leaf);
}

static void sc_ok(struct scenario *s)
{
    sc_basic(s, NULL);
}

static void sc_int_anchor(struct scenario *s)
{
    X509 *root = root_cert(), *in = int_cert(root, -1);
    push(s->trusted, in); /* the operator registered the intermediate only */
    s->leaf = dev_cert(in, k_int, NULL);
    X509_free(root);
}

static void sc_expired_leaf(struct scenario *s)
{
    struct mk m = {.cn = "dev1", .not_after = T0};
    sc_basic(s, &m);
}

static void sc_not_yet_valid(struct scenario *s)
{
    struct mk m = {.cn = "dev1", .not_before = T0 + 60};
    sc_basic(s, &m);
}

static void sc_expired_int(struct scenario *s)
{
    X509 *root = root_cert();
    struct mk m = {.cn = "Contoso Intermediate", .bc = BC_CA, .pathlen = -1, .not_after = T0 - 1};
    X509 *in = mk_cert(&m, k_int, root, k_root);
    push(s->trusted, root);
    push(s->untrusted, in);
    s->leaf = dev_cert(in, k_int, NULL);
}

static void sc_server_eku(struct scenario *s)
{
    struct mk m = {.cn = "dev1", .eku = "serverAuth"};
    sc_basic(s, &m);
}

static void sc_no_eku(struct scenario *s)
{
    struct mk m = {.cn = "dev1", .eku = ""};
    sc_basic(s, &m);
}

static void sc_leaf_is_ca(struct scenario *s)
{
    struct mk m = {.cn = "dev1", .bc = BC_LEAF_CA, .ku = "critical,digitalSignature"};
    sc_basic(s, &m);
}

/* root -> int1 (pathLen 0) -> int2 -> leaf */
static void sc_pathlen(struct scenario *s)
{
    X509 *root = root_cert(), *i1 = int_cert(root, 0);
    struct mk m2 = {.cn = "Contoso Sub", .bc = BC_CA, .pathlen = -1};
    X509 *i2 = mk_cert(&m2, k_int2, i1, k_int);
    push(s->trusted, root);
    push(s->untrusted, i2); /* presented out of order on purpose */
    push(s->untrusted, i1);
    s->leaf = dev_cert(i2, k_int2, NULL);
}

/* Same shape without pathLen: two intermediates (for max_depth rows). */
static void sc_two_ints(struct scenario *s)
{
    X509 *root = root_cert(), *i1 = int_cert(root, -1);
    struct mk m2 = {.cn = "Contoso Sub", .bc = BC_CA, .pathlen = -1};
    X509 *i2 = mk_cert(&m2, k_int2, i1, k_int);
    push(s->trusted, root);
    push(s->untrusted, i1);
    push(s->untrusted, i2);
    s->leaf = dev_cert(i2, k_int2, NULL);
}

static void sc_sha1_leaf(struct scenario *s)
{
    struct mk m = {.cn = "dev1", .md = EVP_sha1()};
    sc_basic(s, &m);
}

static void sc_rsa1024_leaf(struct scenario *s)
{
    X509 *root = root_cert(), *in = int_cert(root, -1);
    struct mk m = {.cn = "dev1"};
    push(s->trusted, root);
    push(s->untrusted, in);
    s->leaf = mk_cert(&m, k_rsa1024, in, k_int);
}

static void sc_rsa2048_leaf(struct scenario *s)
{
    X509 *root = root_cert(), *in = int_cert(root, -1);
    struct mk m = {.cn = "dev1"};
    push(s->trusted, root);
    push(s->untrusted, in);
    s->leaf = mk_cert(&m, k_rsa2048, in, k_int);
}

/* The Azure SDK test tooling's device certificate: v1, no extensions. */
static void sc_v1_leaf(struct scenario *s)
{
    struct mk m = {.cn = "dev1", .v1 = 1};
    sc_basic(s, &m);
}

static void sc_v1_leaf_no_cn(struct scenario *s)
{
    struct mk m = {.cn = NULL, .v1 = 1, .issuer_cn = "Contoso Intermediate"};
    sc_basic(s, &m);
}

static void sc_v1_ca(struct scenario *s)
{
    X509 *root = root_cert();
    struct mk m = {.cn = "Contoso Intermediate", .v1 = 1};
    X509 *in = mk_cert(&m, k_int, root, k_root);
    push(s->trusted, root);
    push(s->untrusted, in);
    struct mk leaf = {.cn = "dev1", .v1 = 1}; /* a v1 CA has no SKI for a v3 leaf's AKI */
    s->leaf = dev_cert(in, k_int, &leaf);
}

/* The right intermediate hidden among junk: self-signed strangers, a
 * same-name impostor with another key, an expired copy, the root itself. */
static void sc_junk(struct scenario *s)
{
    X509 *root = root_cert(), *in = int_cert(root, -1);
    struct mk stranger = {.cn = "Stranger", .bc = BC_CA, .pathlen = -1};
    struct mk impostor = {.cn = "Contoso Intermediate", .bc = BC_CA, .pathlen = -1};
    struct mk expired = {
        .cn = "Contoso Intermediate", .bc = BC_CA, .pathlen = -1, .not_after = T0 - DAY};
    for (int i = 0; i < 5; i++)
        push(s->untrusted, mk_cert(&stranger, k_other, NULL, NULL));
    push(s->untrusted, mk_cert(&impostor, k_other, root, k_root));
    push(s->untrusted, mk_cert(&expired, k_int, root, k_root));
    push(s->untrusted, X509_dup(root));
    push(s->untrusted, in);
    push(s->trusted, root);
    s->leaf = dev_cert(in, k_int, NULL);
}

/* A <-> B cross-signed loop that never reaches the anchor, plus 60 copies of
 * a same-name, same-key CA (each one a candidate issuer of every other). */
static void sc_cycle(struct scenario *s)
{
    struct mk ma = {.cn = "Loop A", .bc = BC_CA, .pathlen = -1, .issuer_cn = "Loop B"};
    struct mk mb = {.cn = "Loop B", .bc = BC_CA, .pathlen = -1, .issuer_cn = "Loop A"};
    X509 *a = mk_cert(&ma, k_int, NULL, k_int2);
    X509 *b = mk_cert(&mb, k_int2, NULL, k_int);
    push(s->untrusted, a);
    push(s->untrusted, b);
    struct mk same = {.cn = "Loop A", .bc = BC_CA, .pathlen = -1, .issuer_cn = "Loop A"};
    for (int i = 0; i < 60; i++)
        push(s->untrusted, mk_cert(&same, k_int, NULL, k_int));
    push(s->trusted, root_cert());
    s->leaf = dev_cert(a, k_int, NULL);
}

static void sc_untrusted_root(struct scenario *s)
{
    X509 *root = root_cert(), *in = int_cert(root, -1);
    push(s->untrusted, root); /* presented, but nobody registered it */
    push(s->untrusted, in);
    struct mk other = {.cn = "Other Root", .bc = BC_CA, .pathlen = -1};
    push(s->trusted, mk_cert(&other, k_other, NULL, NULL));
    s->leaf = dev_cert(in, k_int, NULL);
}

static void sc_bad_signature(struct scenario *s)
{
    X509 *root = root_cert(), *in = int_cert(root, -1);
    push(s->trusted, root);
    push(s->untrusted, in);
    s->leaf = dev_cert(in, k_other, NULL); /* right issuer name, wrong key */
}

/* Two intermediates with the same name and key: the first presented has
 * expired, the second is fine. The search must backtrack to the second. */
static void sc_backtrack(struct scenario *s)
{
    X509 *root = root_cert();
    struct mk old = {
        .cn = "Contoso Intermediate", .bc = BC_CA, .pathlen = -1, .not_after = T0 - DAY};
    push(s->untrusted, mk_cert(&old, k_int, root, k_root));
    X509 *in = int_cert(root, -1);
    push(s->untrusted, in);
    push(s->trusted, root);
    s->leaf = dev_cert(in, k_int, NULL);
}

static void sc_name_constraints(struct scenario *s)
{
    struct mk mr = {.cn = "Contoso Root",
                    .bc = BC_CA,
                    .pathlen = -1,
                    .nc = "critical,permitted;DNS:devices.contoso.com"};
    X509 *root = mk_cert(&mr, k_root, NULL, NULL), *in = int_cert(root, -1);
    push(s->trusted, root);
    push(s->untrusted, in);
    struct mk leaf = {.cn = "dev1", .san = "DNS:dev1.fabrikam.com"};
    s->leaf = dev_cert(in, k_int, &leaf);
}

static void sc_name_constraints_ok(struct scenario *s)
{
    struct mk mr = {.cn = "Contoso Root",
                    .bc = BC_CA,
                    .pathlen = -1,
                    .nc = "critical,permitted;DNS:devices.contoso.com"};
    X509 *root = mk_cert(&mr, k_root, NULL, NULL), *in = int_cert(root, -1);
    push(s->trusted, root);
    push(s->untrusted, in);
    struct mk leaf = {.cn = "dev1", .san = "DNS:dev1.devices.contoso.com"};
    s->leaf = dev_cert(in, k_int, &leaf);
}

static void sc_unknown_critical(struct scenario *s)
{
    struct mk m = {.cn = "dev1", .unknown_crit = 1};
    sc_basic(s, &m);
}

static void sc_ca_without_keycertsign(struct scenario *s)
{
    X509 *root = root_cert();
    struct mk m = {.cn = "Contoso Intermediate",
                   .bc = BC_CA,
                   .pathlen = -1,
                   .ku = "critical,digitalSignature"};
    X509 *in = mk_cert(&m, k_int, root, k_root);
    push(s->trusted, root);
    push(s->untrusted, in);
    s->leaf = dev_cert(in, k_int, NULL);
}

static void sc_int_not_ca(struct scenario *s)
{
    X509 *root = root_cert();
    struct mk m = {.cn = "Contoso Intermediate", .bc = BC_LEAF, .ku = "critical,digitalSignature"};
    X509 *in = mk_cert(&m, k_int, root, k_root);
    push(s->trusted, root);
    push(s->untrusted, in);
    s->leaf = dev_cert(in, k_int, NULL);
}

static void sc_no_anchors(struct scenario *s)
{
    X509 *root = root_cert(), *in = int_cert(root, -1);
    push(s->untrusted, in);
    s->leaf = dev_cert(in, k_int, NULL);
    X509_free(root);
}

/* ---- the table ---------------------------------------------------------- */

struct row {
    const char *name;
    void (*build)(struct scenario *);
    int64_t at;              /* 0: T0 */
    enum hub_pki_eku eku;    /* default clientAuth */
    int max_depth;           /* 0 in the table means -1 (default); use 100 + n for n */
    int code;                /* 0 or HUB_E_* */
    const char *msg1, *msg2; /* substrings of err.msg (NULL: not checked) */
};

static const struct row rows[] = {
    {"root -> int -> leaf", sc_ok, 0, HUB_PKI_EKU_CLIENT_AUTH, 0, 0, NULL, NULL},
    {"registered intermediate is an anchor", sc_int_anchor, 0, HUB_PKI_EKU_CLIENT_AUTH, 0, 0, NULL,
     NULL},
    {"expired leaf", sc_expired_leaf, T0 + 1, HUB_PKI_EKU_CLIENT_AUTH, 0, HUB_E_CERT_EXPIRED,
     "certificate expired at 2026-01-01T00:00:00Z", "CN=dev1"},
    {"notAfter is inclusive", sc_expired_leaf, T0, HUB_PKI_EKU_CLIENT_AUTH, 0, 0, NULL, NULL},
    {"leaf not yet valid", sc_not_yet_valid, 0, HUB_PKI_EKU_CLIENT_AUTH, 0,
     HUB_E_CERT_NOT_YET_VALID, "not valid before 2026-01-01T00:01:00Z", "CN=dev1"},
    {"expired intermediate", sc_expired_int, 0, HUB_PKI_EKU_CLIENT_AUTH, 0, HUB_E_CERT_EXPIRED,
     "certificate expired at", "CN=Contoso Intermediate"},
    {"serverAuth leaf refused for clientAuth", sc_server_eku, 0, HUB_PKI_EKU_CLIENT_AUTH, 0,
     HUB_E_CHAIN_EKU, "clientAuth", "CN=dev1"},
    {"serverAuth leaf accepted for serverAuth", sc_server_eku, 0, HUB_PKI_EKU_SERVER_AUTH, 0, 0,
     NULL, NULL},
    {"serverAuth leaf accepted without EKU requirement", sc_server_eku, 0, HUB_PKI_EKU_NONE, 0, 0,
     NULL, NULL},
    {"leaf without EKU accepted", sc_no_eku, 0, HUB_PKI_EKU_CLIENT_AUTH, 0, 0, NULL, NULL},
    {"leaf that is a CA", sc_leaf_is_ca, 0, HUB_PKI_EKU_CLIENT_AUTH, 0, HUB_E_CHAIN_LEAF_IS_CA,
     "leaf certificate is a CA", "CN=dev1"},
    {"pathLen 0 with two intermediates", sc_pathlen, 0, HUB_PKI_EKU_CLIENT_AUTH, 0,
     HUB_E_CHAIN_PATHLEN, "path length constraint 0", "CN=Contoso Intermediate"},
    {"two intermediates, max depth 1", sc_two_ints, 0, HUB_PKI_EKU_CLIENT_AUTH, 101,
     HUB_E_CHAIN_TOO_LONG, "more than 1 intermediates", NULL},
    {"two intermediates, max depth 2", sc_two_ints, 0, HUB_PKI_EKU_CLIENT_AUTH, 102, 0, NULL, NULL},
    {"two intermediates, max depth 0", sc_two_ints, 0, HUB_PKI_EKU_CLIENT_AUTH, 100,
     HUB_E_CHAIN_TOO_LONG, "more than 0 intermediates", NULL},
    {"SHA-1 signature", sc_sha1_leaf, 0, HUB_PKI_EKU_CLIENT_AUTH, 0, HUB_E_CHAIN_WEAK_CRYPTO,
     "signature algorithm", "CN=dev1"},
    {"RSA-1024 leaf key", sc_rsa1024_leaf, 0, HUB_PKI_EKU_CLIENT_AUTH, 0, HUB_E_CHAIN_WEAK_CRYPTO,
     "RSA key of 1024 bits", "CN=dev1"},
    {"RSA-2048 leaf key", sc_rsa2048_leaf, 0, HUB_PKI_EKU_CLIENT_AUTH, 0, 0, NULL, NULL},
    {"v1 leaf accepted", sc_v1_leaf, 0, HUB_PKI_EKU_CLIENT_AUTH, 0, 0, NULL, NULL},
    {"expired v1 leaf", sc_v1_leaf, T0 + 366 * DAY, HUB_PKI_EKU_CLIENT_AUTH, 0, HUB_E_CERT_EXPIRED,
     "certificate expired at", "CN=dev1"},
    {"v1 leaf without CN", sc_v1_leaf_no_cn, 0, HUB_PKI_EKU_CLIENT_AUTH, 0, HUB_E_CHAIN_PROFILE,
     "v1 leaf without a subject CN", NULL},
    {"v1 CA refused", sc_v1_ca, 0, HUB_PKI_EKU_CLIENT_AUTH, 0, HUB_E_CHAIN_NOT_CA, "v1",
     "CN=Contoso Intermediate"},
    {"junk intermediates ignored", sc_junk, 0, HUB_PKI_EKU_CLIENT_AUTH, 0, 0, NULL, NULL},
    {"cyclic intermediates bounded", sc_cycle, 0, HUB_PKI_EKU_CLIENT_AUTH, 0, HUB_E_CHAIN_UNTRUSTED,
     NULL, NULL},
    {"presented root is not trusted", sc_untrusted_root, 0, HUB_PKI_EKU_CLIENT_AUTH, 0,
     HUB_E_CHAIN_UNTRUSTED, "no path to a trusted CA", "CN=Contoso Root"},
    {"leaf signed by the wrong key", sc_bad_signature, 0, HUB_PKI_EKU_CLIENT_AUTH, 0,
     HUB_E_CHAIN_SIGNATURE, "signature does not verify", "CN=dev1"},
    {"backtracks past an expired intermediate", sc_backtrack, 0, HUB_PKI_EKU_CLIENT_AUTH, 0, 0,
     NULL, NULL},
    {"name constraints violated", sc_name_constraints, 0, HUB_PKI_EKU_CLIENT_AUTH, 0,
     HUB_E_CHAIN_NAME_CONSTRAINTS, "CN=dev1 violates the name constraints of CN=Contoso Root",
     NULL},
    {"name constraints satisfied", sc_name_constraints_ok, 0, HUB_PKI_EKU_CLIENT_AUTH, 0, 0, NULL,
     NULL},
    {"unknown critical extension", sc_unknown_critical, 0, HUB_PKI_EKU_CLIENT_AUTH, 0,
     HUB_E_CHAIN_CRITICAL_EXT, "1.3.6.1.4.1.55738.666.1", "CN=dev1"},
    {"CA without keyCertSign", sc_ca_without_keycertsign, 0, HUB_PKI_EKU_CLIENT_AUTH, 0,
     HUB_E_CHAIN_KEY_USAGE, "keyCertSign", "CN=Contoso Intermediate"},
    {"intermediate that is not a CA", sc_int_not_ca, 0, HUB_PKI_EKU_CLIENT_AUTH, 0,
     HUB_E_CHAIN_NOT_CA, "not a CA", "CN=Contoso Intermediate"},
    {"empty trust set", sc_no_anchors, 0, HUB_PKI_EKU_CLIENT_AUTH, 0, HUB_E_CHAIN_UNTRUSTED,
     "no path to a trusted CA", NULL},
};

/* CPU time, not wall-clock: a shared CI machine must not fail the bound. */
static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_policy_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        const struct row *r = &rows[i];
        struct scenario s = {sk_X509_new_null(), sk_X509_new_null(), NULL};
        r->build(&s);
        struct hub_pki_trust *trust = NULL;
        struct hub_err err = {0};
        assert_int_equal(hub_pki_trust_new(s.trusted, &trust, &err), 0);
        struct hub_pki_verify_opts opts = {
            .at = r->at ? r->at : T0,
            .eku = r->eku,
            .max_depth = r->max_depth >= 100 ? r->max_depth - 100 : -1,
        };
        double t0 = now_seconds();
        int rc = hub_pki_chain_verify(trust, s.leaf, s.untrusted, &opts, &err);
        double secs = now_seconds() - t0;
        printf("%-50s -> %s %s (%.1f ms)\n", r->name, hub_err_name(rc), rc ? err.msg : "",
               secs * 1e3);
        if (rc != r->code)
            fail_msg("%s: expected %s, got %s (%s)", r->name, hub_err_name(r->code),
                     hub_err_name(rc), err.msg);
        if (rc != 0)
            assert_int_equal(err.code, rc);
        if (r->msg1 != NULL && strstr(err.msg, r->msg1) == NULL)
            fail_msg("%s: message '%s' lacks '%s'", r->name, err.msg, r->msg1);
        if (r->msg2 != NULL && strstr(err.msg, r->msg2) == NULL)
            fail_msg("%s: message '%s' lacks '%s'", r->name, err.msg, r->msg2);
        /* hostile inputs are cut off long before this, even under ASan */
        assert_true(secs < 2.0);
        hub_pki_trust_free(trust);
        X509_free(s.leaf);
        sk_X509_pop_free(s.untrusted, X509_free);
        sk_X509_pop_free(s.trusted, X509_free);
    }
}

/* The trust set must not be rebuilt or mutated by verifies: also leaves the
 * caller's stack untouched. And NULL / bad arguments are refused. */
static void test_trust_api(void **state)
{
    (void)state;
    struct hub_err err = {0};
    struct hub_pki_trust *trust = NULL;
    assert_int_equal(hub_pki_trust_new(NULL, &trust, &err), 0); /* empty set is legal */
    struct scenario s = {sk_X509_new_null(), sk_X509_new_null(), NULL};
    sc_ok(&s);
    struct hub_pki_verify_opts opts = {.at = T0, .eku = HUB_PKI_EKU_CLIENT_AUTH, .max_depth = -1};
    assert_int_equal(hub_pki_chain_verify(trust, s.leaf, s.untrusted, &opts, &err),
                     HUB_E_CHAIN_UNTRUSTED);
    hub_pki_trust_free(trust);
    hub_pki_trust_free(NULL);

    assert_int_equal(hub_pki_trust_new(s.trusted, &trust, &err), 0);
    assert_int_equal(hub_pki_chain_verify(trust, NULL, s.untrusted, &opts, &err),
                     HUB_E_INVALID_ARG);
    assert_int_equal(hub_pki_chain_verify(trust, s.leaf, s.untrusted, NULL, &err),
                     HUB_E_INVALID_ARG);
    opts.max_depth = 1000;
    assert_int_equal(hub_pki_chain_verify(trust, s.leaf, s.untrusted, &opts, &err),
                     HUB_E_INVALID_ARG);
    opts.max_depth = -1;
    assert_int_equal(hub_pki_chain_verify(trust, s.leaf, NULL, &opts, &err),
                     HUB_E_CHAIN_UNTRUSTED); /* the intermediate is needed */
    assert_int_equal(hub_pki_chain_verify(trust, s.leaf, s.untrusted, &opts, NULL), 0);
    /* the caller's anchors are its own: freeing them does not break the trust */
    sk_X509_pop_free(s.trusted, X509_free);
    assert_int_equal(hub_pki_chain_verify(trust, s.leaf, s.untrusted, &opts, &err), 0);
    hub_pki_trust_free(trust);
    X509_free(s.leaf);
    sk_X509_pop_free(s.untrusted, X509_free);
}

struct thread_arg {
    const struct hub_pki_trust *trust;
    X509 *leaf;
    STACK_OF(X509) * untrusted;
    int failures;
};

static void *verify_many(void *p)
{
    struct thread_arg *a = p;
    struct hub_pki_verify_opts opts = {.at = T0, .eku = HUB_PKI_EKU_CLIENT_AUTH, .max_depth = -1};
    for (int i = 0; i < 200; i++) {
        struct hub_err err;
        if (hub_pki_chain_verify(a->trust, a->leaf, a->untrusted, &opts, &err) != 0)
            a->failures++;
    }
    return NULL;
}

/* One trust set, many threads verifying at once (each with its own chain). */
static void test_shared_trust_threads(void **state)
{
    (void)state;
    enum { N = 4 };
    X509 *root = root_cert(), *in = int_cert(root, -1);
    STACK_OF(X509) *anchors = sk_X509_new_null();
    push(anchors, root);
    struct hub_pki_trust *trust = NULL;
    assert_int_equal(hub_pki_trust_new(anchors, &trust, NULL), 0);
    pthread_t th[N];
    struct thread_arg args[N];
    for (int i = 0; i < N; i++) {
        args[i].trust = trust;
        args[i].leaf = dev_cert(in, k_int, NULL);
        args[i].untrusted = sk_X509_new_null();
        push(args[i].untrusted, X509_dup(in));
        args[i].failures = 0;
        assert_int_equal(pthread_create(&th[i], NULL, verify_many, &args[i]), 0);
    }
    for (int i = 0; i < N; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(args[i].failures, 0);
        X509_free(args[i].leaf);
        sk_X509_pop_free(args[i].untrusted, X509_free);
    }
    hub_pki_trust_free(trust);
    sk_X509_pop_free(anchors, X509_free);
    X509_free(in);
}

static EVP_PKEY *ec_key(void)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    assert_non_null(k);
    return k;
}

static int setup(void **state)
{
    (void)state;
    k_root = ec_key();
    k_int = ec_key();
    k_int2 = ec_key();
    k_leaf = ec_key();
    k_other = ec_key();
    k_rsa1024 = EVP_RSA_gen(1024);
    k_rsa2048 = EVP_RSA_gen(2048);
    return k_rsa1024 != NULL && k_rsa2048 != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    EVP_PKEY *keys[] = {k_root, k_int, k_int2, k_leaf, k_other, k_rsa1024, k_rsa2048};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        EVP_PKEY_free(keys[i]);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_policy_table),
        cmocka_unit_test(test_trust_api),
        cmocka_unit_test(test_shared_trust_threads),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
