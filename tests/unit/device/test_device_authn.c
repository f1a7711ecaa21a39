/*
 * device: the CONNECT authentication decision, one row per refusal reason
 * (and the accepted cases), against a real registry (SQLite in a mkdtemp
 * directory) and certificates issued in the test. Each row asserts the
 * reason and the CONNACK code the client would receive.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "device/device_int.h"
#include "pki/pki.h"
#include "registry/registry.h"

#define HOST "hub.example"
#define DAY  86400

struct fx {
    char dir[64];
    struct hub_store *store;
    struct hub_registry *reg;
    int64_t now;
    /* verified root -> intermediate -> leaves */
    EVP_PKEY *root_key, *int_key, *leaf_key, *rogue_key;
    X509 *root, *inter;
    X509 *leaf_ca;                    /* CN dev-ca, by inter */
    X509 *leaf_other;                 /* CN dev-other, by inter */
    X509 *leaf_direct;                /* CN dev-ca, by root */
    X509 *leaf_unver;                 /* CN dev-ca, by an uploaded but unverified root */
    X509 *leaf_unknown;               /* CN dev-ca, by a root the hub never saw */
    X509 *leaf_ghost;                 /* CN ghost, by root: not registered */
    X509 *leaf_dis;                   /* CN dev-dis (disabled) by root */
    X509 *self_signed;                /* CN dev-ss, self-signed */
    X509 *self_other;                 /* another self-signed cert */
    STACK_OF(X509) * chain_inter;     /* [inter] */
    STACK_OF(X509) * chain_with_leaf; /* [leaf_ca, inter] */
    char sas_key[HUB_SAS_KEY_SIZE];
};

static struct fx *g;

static int64_t fx_now(void *ctx)
{
    return ((struct fx *)ctx)->now;
}

static X509 *issue(enum hub_pki_cert_kind kind, const char *cn, X509 *issuer, EVP_PKEY *ikey,
                   EVP_PKEY *key, int days)
{
    struct hub_pki_issue_params p = {.kind = kind,
                                     .common_name = cn,
                                     .days = days,
                                     .pathlen = -1,
                                     .issuer_cert = issuer,
                                     .issuer_key = ikey,
                                     .subject_key = key};
    X509 *x = NULL;
    struct hub_err err = {0};
    if (hub_pki_cert_issue(&p, &x, &err) != 0)
        fail_msg("issue %s: %s", cn, err.msg);
    return x;
}

static EVP_PKEY *key_new(void)
{
    EVP_PKEY *k = NULL;
    assert_int_equal(hub_pki_key_generate(HUB_PKI_KEY_EC_P256, &k, NULL), 0);
    return k;
}

static void upload(struct fx *fx, const char *name, X509 *ca, bool verified)
{
    char *pem = NULL;
    assert_int_equal(hub_pki_cert_to_pem(ca, &pem, NULL), 0);
    struct hub_err err = {0};
    if (hub_registry_ca_upload(fx->reg, name, pem, strlen(pem), verified, NULL, NULL, NULL, &err) !=
        0)
        fail_msg("upload: %s", err.msg);
    free(pem);
}

static void device_add(struct fx *fx, const char *id, enum hub_auth_type type, bool disabled,
                       const char *tp1, const char *tp2)
{
    struct hub_device d;
    memset(&d, 0, sizeof(d));
    snprintf(d.id, sizeof(d.id), "%s", id);
    d.auth_type = type;
    d.status = disabled ? HUB_DEVICE_DISABLED : HUB_DEVICE_ENABLED;
    if (tp1)
        snprintf(d.primary_thumbprint, sizeof(d.primary_thumbprint), "%s", tp1);
    if (tp2)
        snprintf(d.secondary_thumbprint, sizeof(d.secondary_thumbprint), "%s", tp2);
    struct hub_device out;
    struct hub_err err = {0};
    if (hub_registry_device_create(fx->reg, &d, &out, &err) != 0)
        fail_msg("create %s: %s", id, err.msg);
    if (type == HUB_AUTH_SAS && strcmp(id, "dev-sas") == 0)
        memcpy(fx->sas_key, out.primary_key, sizeof(fx->sas_key));
}

static int setup(void **state)
{
    struct fx *fx = calloc(1, sizeof(*fx));
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/hubd-test-authn-XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    char path[128];
    snprintf(path, sizeof(path), "%s/hub.db", fx->dir);
    fx->now = time(NULL);
    struct hub_err err = {0};
    if (hub_store_sqlite_open(path, NULL, &fx->store, &err) != 0)
        fail_msg("open: %s", err.msg);
    struct hub_registry_opts opts = {.now = fx_now, .now_ctx = fx};
    assert_int_equal(hub_registry_new(fx->store, &opts, &fx->reg, &err), 0);

    fx->root_key = key_new();
    fx->int_key = key_new();
    fx->leaf_key = key_new();
    fx->rogue_key = key_new();
    fx->root = issue(HUB_PKI_CERT_ROOT, "Test Root", NULL, NULL, fx->root_key, 3650);
    fx->inter =
        issue(HUB_PKI_CERT_INTERMEDIATE, "Test Int", fx->root, fx->root_key, fx->int_key, 3650);
    fx->leaf_ca = issue(HUB_PKI_CERT_DEVICE, "dev-ca", fx->inter, fx->int_key, fx->leaf_key, 30);
    fx->leaf_other =
        issue(HUB_PKI_CERT_DEVICE, "dev-other", fx->inter, fx->int_key, fx->leaf_key, 30);
    fx->leaf_direct =
        issue(HUB_PKI_CERT_DEVICE, "dev-ca", fx->root, fx->root_key, fx->leaf_key, 30);
    fx->leaf_ghost = issue(HUB_PKI_CERT_DEVICE, "ghost", fx->root, fx->root_key, fx->leaf_key, 30);
    fx->leaf_dis = issue(HUB_PKI_CERT_DEVICE, "dev-dis", fx->root, fx->root_key, fx->leaf_key, 30);
    X509 *unver_root = issue(HUB_PKI_CERT_ROOT, "Unverified Root", NULL, NULL, fx->rogue_key, 3650);
    fx->leaf_unver =
        issue(HUB_PKI_CERT_DEVICE, "dev-ca", unver_root, fx->rogue_key, fx->leaf_key, 30);
    EVP_PKEY *k3 = key_new();
    X509 *unknown_root = issue(HUB_PKI_CERT_ROOT, "Unknown Root", NULL, NULL, k3, 3650);
    fx->leaf_unknown = issue(HUB_PKI_CERT_DEVICE, "dev-ca", unknown_root, k3, fx->leaf_key, 30);
    fx->self_signed = issue(HUB_PKI_CERT_ROOT, "dev-ss", NULL, NULL, fx->leaf_key, 30);
    fx->self_other = issue(HUB_PKI_CERT_ROOT, "dev-ss", NULL, NULL, fx->rogue_key, 30);

    fx->chain_inter = sk_X509_new_null();
    X509_up_ref(fx->inter);
    sk_X509_push(fx->chain_inter, fx->inter);
    fx->chain_with_leaf = sk_X509_new_null();
    X509_up_ref(fx->leaf_ca);
    sk_X509_push(fx->chain_with_leaf, fx->leaf_ca);
    X509_up_ref(fx->inter);
    sk_X509_push(fx->chain_with_leaf, fx->inter);

    upload(fx, "root", fx->root, true);
    upload(fx, "unverified", unver_root, false);
    X509_free(unver_root);
    X509_free(unknown_root);
    EVP_PKEY_free(k3);

    char sha1[HUB_PKI_THUMBPRINT_MAX], sha256[HUB_PKI_THUMBPRINT_MAX];
    assert_int_equal(hub_pki_thumbprint(fx->self_signed, HUB_PKI_SHA1, sha1, NULL), 0);
    assert_int_equal(hub_pki_thumbprint(fx->self_signed, HUB_PKI_SHA256, sha256, NULL), 0);
    device_add(fx, "dev-ca", HUB_AUTH_CERT_AUTHORITY, false, NULL, NULL);
    device_add(fx, "dev-dis", HUB_AUTH_CERT_AUTHORITY, true, NULL, NULL);
    device_add(fx, "dev-ss", HUB_AUTH_SELF_SIGNED, false, sha1, NULL);
    device_add(fx, "dev-ss256", HUB_AUTH_SELF_SIGNED, false,
               "0000000000000000000000000000000000000000", sha256);
    device_add(fx, "dev-sas", HUB_AUTH_SAS, false, NULL, NULL);
    device_add(fx, "dev-none", HUB_AUTH_NONE, false, NULL, NULL);
    g = fx;
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fx *fx = *state;
    X509 *certs[] = {fx->root,        fx->inter,       fx->leaf_ca,      fx->leaf_other,
                     fx->leaf_direct, fx->leaf_unver,  fx->leaf_unknown, fx->leaf_ghost,
                     fx->leaf_dis,    fx->self_signed, fx->self_other};
    for (size_t i = 0; i < sizeof(certs) / sizeof(certs[0]); i++)
        X509_free(certs[i]);
    sk_X509_pop_free(fx->chain_inter, X509_free);
    sk_X509_pop_free(fx->chain_with_leaf, X509_free);
    EVP_PKEY_free(fx->root_key);
    EVP_PKEY_free(fx->int_key);
    EVP_PKEY_free(fx->leaf_key);
    EVP_PKEY_free(fx->rogue_key);
    hub_registry_free(fx->reg);
    hub_store_close(fx->store);
    DIR *d = opendir(fx->dir);
    struct dirent *e;
    while (d != NULL && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char p[512];
        snprintf(p, sizeof(p), "%s/%s", fx->dir, e->d_name);
        unlink(p);
    }
    if (d != NULL)
        closedir(d);
    rmdir(fx->dir);
    free(fx);
    return 0;
}

/* ---- the table -------------------------------------------------------------- */

enum pw { PW_NONE, PW_SAS_GOOD, PW_SAS_BADSIG, PW_SAS_EXPIRED, PW_JUNK, PW_SAS_OTHER_DEV };
enum cert {
    C_NONE,
    C_CA,
    C_CA_WITH_LEAF,
    C_CA_NO_INTER,
    C_DIRECT,
    C_OTHER_CN,
    C_UNVER,
    C_UNKNOWN,
    C_GHOST,
    C_DIS,
    C_SELF,
    C_SELF_OTHER
};

struct row {
    const char *name;
    const char *client_id;
    const char *username; /* NULL: no username; "" -> HOST "/" client_id "/?api-version=..." */
    enum pw pw;
    enum cert cert;
    int64_t now_offset_s;
    enum hub_device_reason reason;
    int connack;
    enum hub_device_auth_method method;
};

static X509 *cert_of(enum cert c, STACK_OF(X509) * *chain)
{
    *chain = NULL;
    switch (c) {
    case C_CA:
        *chain = g->chain_inter;
        return g->leaf_ca;
    case C_CA_WITH_LEAF:
        *chain = g->chain_with_leaf;
        return g->leaf_ca;
    case C_CA_NO_INTER:
        return g->leaf_ca;
    case C_DIRECT:
        return g->leaf_direct;
    case C_OTHER_CN:
        *chain = g->chain_inter;
        return g->leaf_other;
    case C_UNVER:
        return g->leaf_unver;
    case C_UNKNOWN:
        return g->leaf_unknown;
    case C_GHOST:
        return g->leaf_ghost;
    case C_DIS:
        return g->leaf_dis;
    case C_SELF:
        return g->self_signed;
    case C_SELF_OTHER:
        return g->self_other;
    case C_NONE:
        break;
    }
    return NULL;
}

static void run_row(const struct row *r)
{
    char user[512], token[HUB_AUTH_TOKEN_MAX + 1] = "";
    struct hub_mqtt_connect c;
    memset(&c, 0, sizeof(c));
    c.client_id.ptr = r->client_id;
    c.client_id.len = strlen(r->client_id);
    if (r->username != NULL) {
        if (r->username[0] == '\0')
            snprintf(user, sizeof(user), HOST "/%s/?api-version=2021-04-12", r->client_id);
        else
            snprintf(user, sizeof(user), "%s", r->username);
        c.has_username = true;
        c.username.ptr = user;
        c.username.len = strlen(user);
    }
    int64_t now = g->now + r->now_offset_s;
    char resource[256];
    snprintf(resource, sizeof(resource), HOST "/devices/%s",
             r->pw == PW_SAS_OTHER_DEV ? "dev-ca" : r->client_id);
    const char *key = g->sas_key;
    const char *bad_key = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    switch (r->pw) {
    case PW_SAS_GOOD:
    case PW_SAS_OTHER_DEV:
        assert_int_equal(hub_auth_sas_build(resource, HUB_AUTH_SR_ENCODED, NULL, key, now + 3600,
                                            token, sizeof(token), NULL),
                         0);
        break;
    case PW_SAS_BADSIG:
        assert_int_equal(hub_auth_sas_build(resource, HUB_AUTH_SR_ENCODED, NULL, bad_key,
                                            now + 3600, token, sizeof(token), NULL),
                         0);
        break;
    case PW_SAS_EXPIRED:
        assert_int_equal(hub_auth_sas_build(resource, HUB_AUTH_SR_ENCODED, NULL, key, now - 10,
                                            token, sizeof(token), NULL),
                         0);
        break;
    case PW_JUNK:
        snprintf(token, sizeof(token), "not a token");
        break;
    case PW_NONE:
        break;
    }
    if (r->pw != PW_NONE) {
        c.has_password = true;
        c.password.ptr = (const uint8_t *)token;
        c.password.len = strlen(token);
    }

    struct hub_device_authn_result res;
    int rc = hub_device_authn_identify(&c, &res);
    if (rc == 0) {
        struct hub_device dev;
        memset(&dev, 0, sizeof(dev));
        int lrc = hub_registry_device_auth_lookup(g->reg, res.device_id, &dev, NULL);
        struct hub_registry_trust *trust = NULL;
        assert_int_equal(hub_registry_trust_get1(g->reg, &trust, NULL), 0);
        const char *hosts[] = {"localhost", HOST};
        struct hub_auth_verify_cfg cfg = {.hosts = hosts, .host_count = 2};
        STACK_OF(X509) *chain = NULL;
        X509 *leaf = cert_of(r->cert, &chain);
        struct hub_device_authn_in in = {
            .connect = &c,
            .leaf = leaf,
            .chain = chain,
            .lookup_rc = lrc,
            .device = (lrc == 0 || lrc == HUB_E_FORBIDDEN) ? &dev : NULL,
            .trust = trust,
            .sas_cfg = &cfg,
            .policies = NULL,
            .now = now,
        };
        rc = hub_device_authn_decide(&in, &res);
        hub_registry_trust_release(trust);
    }
    if (res.reason != r->reason)
        fail_msg("%s: reason %s, want %s (detail: %s)", r->name, hub_device_reason_name(res.reason),
                 hub_device_reason_name(r->reason), res.detail);
    assert_int_equal(res.connack, r->connack);
    assert_int_equal(rc, r->reason == HUB_DEVICE_R_OK ? 0 : -1);
    if (r->reason == HUB_DEVICE_R_OK) {
        assert_int_equal(res.method, r->method);
        assert_string_equal(res.detail, "");
    } else {
        assert_true(strlen(res.detail) > 0); /* every refusal explains itself */
        assert_int_equal(hub_device_reason_connack(res.reason), r->connack);
    }
}

#define OK_(m)      HUB_DEVICE_R_OK, 0, m
#define NO(r, code) HUB_DEVICE_R_##r, code, HUB_DEVICE_AUTH_NONE

static const struct row rows[] = {
    /* accepted */
    {"ca chain leaf+intermediate", "dev-ca", "", PW_NONE, C_CA, 0, OK_(HUB_DEVICE_AUTH_X509_CA)},
    {"ca peer chain that repeats the leaf", "dev-ca", "", PW_NONE, C_CA_WITH_LEAF, 0,
     OK_(HUB_DEVICE_AUTH_X509_CA)},
    {"ca leaf signed by the root", "dev-ca", "", PW_NONE, C_DIRECT, 0,
     OK_(HUB_DEVICE_AUTH_X509_CA)},
    {"old C SDK username without '?'", "dev-ca", HOST "/dev-ca/api-version=2016-11-14", PW_NONE,
     C_CA, 0, OK_(HUB_DEVICE_AUTH_X509_CA)},
    {"selfSigned SHA-1 primary", "dev-ss", "", PW_NONE, C_SELF, 0,
     OK_(HUB_DEVICE_AUTH_SELF_SIGNED)},
    {"selfSigned SHA-256 secondary", "dev-ss256", "", PW_NONE, C_SELF, 0,
     OK_(HUB_DEVICE_AUTH_SELF_SIGNED)},
    {"sas good", "dev-sas", "", PW_SAS_GOOD, C_NONE, 0, OK_(HUB_DEVICE_AUTH_SAS)},
    {"sas good, a client cert too (ignored)", "dev-sas", "", PW_SAS_GOOD, C_SELF, 0,
     OK_(HUB_DEVICE_AUTH_SAS)},
    /* identity */
    {"empty client id", "", "", PW_NONE, C_CA, 0, NO(BAD_CLIENT_ID, 2)},
    {"client id with bad characters", "dev#1", "", PW_NONE, C_CA, 0, NO(BAD_CLIENT_ID, 2)},
    {"module client id", "dev-ca/mod1", "", PW_NONE, C_CA, 0, NO(MODULE_UNSUPPORTED, 2)},
    {"no username", "dev-ca", NULL, PW_NONE, C_CA, 0, NO(USERNAME_MISSING, 4)},
    {"malformed username", "dev-ca", "hub.example", PW_NONE, C_CA, 0, NO(USERNAME_MALFORMED, 4)},
    {"username device differs from client id", "dev-ca", HOST "/dev-other/?api-version=2021-04-12",
     PW_NONE, C_CA, 0, NO(USERNAME_MISMATCH, 4)},
    {"unregistered device", "ghost", "", PW_NONE, C_GHOST, 0, NO(DEVICE_UNKNOWN, 5)},
    /* certificateAuthority */
    {"CA uploaded but not verified", "dev-ca", "", PW_NONE, C_UNVER, 0, NO(CHAIN_UNTRUSTED, 5)},
    {"chain from an unknown CA", "dev-ca", "", PW_NONE, C_UNKNOWN, 0, NO(CHAIN_UNTRUSTED, 5)},
    {"missing intermediate", "dev-ca", "", PW_NONE, C_CA_NO_INTER, 0, NO(CHAIN_UNTRUSTED, 5)},
    {"CN differs from client id", "dev-ca", "", PW_NONE, C_OTHER_CN, 0, NO(CN_MISMATCH, 5)},
    {"expired leaf", "dev-ca", "", PW_NONE, C_CA, 60 * DAY, NO(CERT_EXPIRED, 5)},
    {"not-yet-valid leaf", "dev-ca", "", PW_NONE, C_CA, -DAY, NO(CERT_NOT_YET_VALID, 5)},
    {"no certificate", "dev-ca", "", PW_NONE, C_NONE, 0, NO(NO_CREDENTIAL, 5)},
    {"password on an x509 device", "dev-ca", "", PW_SAS_OTHER_DEV, C_CA, 0,
     NO(WRONG_CREDENTIAL, 5)},
    {"disabled device, valid chain", "dev-dis", "", PW_NONE, C_DIS, 0, NO(DEVICE_DISABLED, 3)},
    {"disabled device, no credential: not told it is disabled", "dev-dis", "", PW_NONE, C_NONE, 0,
     NO(NO_CREDENTIAL, 5)},
    /* selfSigned */
    {"selfSigned thumbprint mismatch", "dev-ss", "", PW_NONE, C_SELF_OTHER, 0,
     NO(THUMBPRINT_MISMATCH, 5)},
    {"selfSigned expired", "dev-ss", "", PW_NONE, C_SELF, 60 * DAY, NO(CERT_EXPIRED, 5)},
    {"selfSigned not yet valid", "dev-ss", "", PW_NONE, C_SELF, -DAY, NO(CERT_NOT_YET_VALID, 5)},
    {"selfSigned without a certificate", "dev-ss", "", PW_NONE, C_NONE, 0, NO(NO_CREDENTIAL, 5)},
    {"selfSigned with a password", "dev-ss", "", PW_JUNK, C_SELF, 0, NO(WRONG_CREDENTIAL, 5)},
    /* sas */
    {"sas bad signature", "dev-sas", "", PW_SAS_BADSIG, C_NONE, 0, NO(SAS_BAD_SIGNATURE, 5)},
    {"sas expired", "dev-sas", "", PW_SAS_EXPIRED, C_NONE, 0, NO(SAS_EXPIRED, 5)},
    {"sas token for another device", "dev-sas", "", PW_SAS_OTHER_DEV, C_NONE, 0,
     NO(SAS_WRONG_SCOPE, 5)},
    {"sas password is junk", "dev-sas", "", PW_JUNK, C_NONE, 0, NO(SAS_MALFORMED, 4)},
    {"sas device, no password", "dev-sas", "", PW_NONE, C_NONE, 0, NO(NO_CREDENTIAL, 5)},
    {"sas device, certificate instead", "dev-sas", "", PW_NONE, C_SELF, 0, NO(WRONG_CREDENTIAL, 5)},
    {"auth type none", "dev-none", "", PW_NONE, C_SELF, 0, NO(AUTH_TYPE_NONE, 5)},
};

static void test_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
        run_row(&rows[i]);
}

/* Re-validation after a CA change: still fine, then CA deleted -> CA_REVOKED. */
static void test_recheck(void **state)
{
    struct fx *fx = *state;
    struct hub_registry_trust *trust = NULL;
    enum hub_device_reason reason = HUB_DEVICE_R_OK;
    char detail[HUB_DEVICE_DETAIL_MAX] = "";
    assert_int_equal(hub_registry_trust_get1(fx->reg, &trust, NULL), 0);
    assert_int_equal(
        hub_device_authn_recheck(fx->leaf_ca, fx->chain_inter, trust, fx->now, &reason, detail), 0);
    hub_registry_trust_release(trust);

    assert_int_equal(hub_registry_ca_delete(fx->reg, "root", NULL, NULL), 0);
    assert_int_equal(hub_registry_trust_get1(fx->reg, &trust, NULL), 0);
    assert_int_equal(
        hub_device_authn_recheck(fx->leaf_ca, fx->chain_inter, trust, fx->now, &reason, detail),
        -1);
    assert_int_equal(reason, HUB_DEVICE_R_CA_REVOKED);
    assert_true(strlen(detail) > 0);
    hub_registry_trust_release(trust);
    upload(fx, "root", fx->root, true); /* restore for other tests */
}

/* The registry observer fires after commits with the right kind. */
struct seen {
    int n;
    enum hub_registry_change what[8];
    char id[8][HUB_DEVICE_ID_SIZE];
};

static void observe(void *ctx, enum hub_registry_change what, const char *id)
{
    struct seen *s = ctx;
    if (s->n < 8) {
        s->what[s->n] = what;
        snprintf(s->id[s->n], sizeof(s->id[0]), "%s", id ? id : "");
        s->n++;
    }
}

static void test_observer(void **state)
{
    struct fx *fx = *state;
    struct seen s;
    memset(&s, 0, sizeof(s));
    hub_registry_observer_set(fx->reg, observe, &s);
    device_add(fx, "obs", HUB_AUTH_CERT_AUTHORITY, false, NULL, NULL); /* create: no event */
    struct hub_device d;
    assert_int_equal(hub_registry_device_get(fx->reg, "obs", &d, NULL), 0);
    d.status = HUB_DEVICE_DISABLED;
    assert_int_equal(hub_registry_device_update(fx->reg, &d, NULL, &d, NULL), 0);
    d.status = HUB_DEVICE_ENABLED;
    assert_int_equal(hub_registry_device_update(fx->reg, &d, NULL, &d, NULL), 0);
    assert_int_equal(hub_registry_device_delete(fx->reg, "obs", NULL, NULL), 0);
    assert_int_not_equal(hub_registry_device_delete(fx->reg, "obs", NULL, NULL), 0); /* no event */
    assert_int_equal(hub_registry_ca_delete(fx->reg, "unverified", NULL, NULL), 0);
    hub_registry_observer_set(fx->reg, NULL, NULL);
    assert_int_equal(hub_registry_ca_delete(fx->reg, "root", NULL, NULL), 0); /* unobserved */
    upload(fx, "root", fx->root, true);

    assert_int_equal(s.n, 4);
    assert_int_equal(s.what[0], HUB_REGISTRY_DEVICE_DISABLED);
    assert_string_equal(s.id[0], "obs");
    assert_int_equal(s.what[1], HUB_REGISTRY_DEVICE_UPDATED);
    assert_int_equal(s.what[2], HUB_REGISTRY_DEVICE_DELETED);
    assert_string_equal(s.id[2], "obs");
    assert_int_equal(s.what[3], HUB_REGISTRY_CA_CHANGED);
}

static void test_reason_table(void **state)
{
    (void)state;
    assert_string_equal(hub_device_reason_name(HUB_DEVICE_R_CHAIN_UNTRUSTED), "CHAIN_UNTRUSTED");
    assert_string_equal(hub_device_reason_name(HUB_DEVICE_R__COUNT), "UNKNOWN");
    assert_int_equal(hub_device_reason_connack(HUB_DEVICE_R_DEVICE_DISABLED), 3);
    assert_int_equal(hub_device_reason_connack(HUB_DEVICE_R_KEEPALIVE_TIMEOUT), -1);
    assert_string_equal(hub_device_auth_method_name(HUB_DEVICE_AUTH_X509_CA), "x509ca");
    assert_string_equal(hub_device_auth_method_name(HUB_DEVICE_AUTH_SELF_SIGNED), "selfSigned");
    assert_string_equal(hub_device_auth_method_name(HUB_DEVICE_AUTH_SAS), "sas");
    /* Every refusal row maps to a code a 3.1.1 client understands. */
    for (int r = 1; r < HUB_DEVICE_R__COUNT; r++) {
        int code = hub_device_reason_connack((enum hub_device_reason)r);
        assert_true(code == -1 || (code >= 1 && code <= 5));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_recheck),
        cmocka_unit_test(test_observer),
        cmocka_unit_test(test_reason_table),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
