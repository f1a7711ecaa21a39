/*
 * registry, revocation and certificate expiry (issue 6): CRL upload per CA
 * (signed by that CA or refused, older CRLs refused, etag and if_match),
 * the trust snapshot (generation changes, CA_CHANGED fires, a listed
 * device is refused with CHAIN_REVOKED, expired CRLs are counted but still
 * enforced), the CRL's fate on CA re-upload and delete, and the device's
 * x509_not_after (written only when it changes, kept by identity updates).
 * Certificates come from pki; CRLs are built with OpenSSL directly.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "pki/pki.h"
#include "registry/registry.h"

#define DAY ((int64_t)86400)

struct fx {
    char dir[64];
    char path[128];
    struct hub_store *store;
    struct hub_registry *reg;
    int64_t now;
    EVP_PKEY *root_key, *other_key, *leaf_key;
    X509 *root, *dev1, *dev2;
    int ca_changes; /* CA_CHANGED notifications seen */
};

static int64_t fx_now(void *ctx)
{
    return ((struct fx *)ctx)->now;
}

static void on_change(void *ctx, enum hub_registry_change what, const char *id)
{
    (void)id;
    if (what == HUB_REGISTRY_CA_CHANGED)
        ((struct fx *)ctx)->ca_changes++;
}

static void ok(int rc, const struct hub_err *err, const char *what)
{
    if (rc != 0)
        fail_msg("%s: %s (%s)", what, err->msg, hub_err_name(rc));
}

static EVP_PKEY *key_new(void)
{
    EVP_PKEY *k = NULL;
    struct hub_err err = {0};
    ok(hub_pki_key_generate(HUB_PKI_KEY_EC_P256, &k, &err), &err, "key");
    return k;
}

static X509 *issue(enum hub_pki_cert_kind kind, const char *cn, X509 *issuer, EVP_PKEY *issuer_key,
                   EVP_PKEY *subject_key)
{
    struct hub_pki_issue_params p = {
        .kind = kind,
        .common_name = cn,
        .days = 30,
        .pathlen = -1,
        .issuer_cert = issuer,
        .issuer_key = issuer_key,
        .subject_key = subject_key,
    };
    X509 *x = NULL;
    struct hub_err err = {0};
    ok(hub_pki_cert_issue(&p, &x, &err), &err, "issue");
    return x;
}

static char *pem_of(X509 *x)
{
    char *pem = NULL;
    struct hub_err err = {0};
    ok(hub_pki_cert_to_pem(x, &pem, &err), &err, "to_pem");
    return pem;
}

/* PEM of a CRL with issuer name `issuer`'s subject, signed by `key`, listing
 * `revoke`, issued at now+this_rel, next update at now+next_rel. */
static char *crl_pem_new(struct fx *fx, X509 *issuer, EVP_PKEY *key, X509 *revoke, int64_t this_rel,
                         int64_t next_rel)
{
    X509_CRL *crl = X509_CRL_new();
    X509_CRL_set_version(crl, 1);
    X509_CRL_set_issuer_name(crl, X509_get_subject_name(issuer));
    ASN1_TIME *t = ASN1_TIME_new();
    ASN1_TIME_set(t, (time_t)(fx->now + this_rel));
    X509_CRL_set1_lastUpdate(crl, t);
    ASN1_TIME_set(t, (time_t)(fx->now + next_rel));
    X509_CRL_set1_nextUpdate(crl, t);
    if (revoke != NULL) {
        X509_REVOKED *r = X509_REVOKED_new();
        X509_REVOKED_set_serialNumber(r, X509_get_serialNumber(revoke));
        X509_REVOKED_set_revocationDate(r, t);
        X509_CRL_add0_revoked(crl, r);
    }
    ASN1_TIME_free(t);
    assert_true(X509_CRL_sign(crl, key, EVP_sha256()) > 0);
    BIO *b = BIO_new(BIO_s_mem());
    PEM_write_bio_X509_CRL(b, crl);
    char *p = NULL;
    long n = BIO_get_mem_data(b, &p);
    char *out = calloc(1, (size_t)n + 1);
    memcpy(out, p, (size_t)n);
    BIO_free(b);
    X509_CRL_free(crl);
    return out;
}

static int fx_setup(void **state)
{
    struct fx *fx = calloc(1, sizeof(*fx));
    assert_non_null(fx);
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/hubd-test-registry-crl-XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    snprintf(fx->path, sizeof(fx->path), "%s/hub.db", fx->dir);
    fx->now = (int64_t)time(NULL);
    struct hub_err err = {0};
    ok(hub_store_sqlite_open(fx->path, NULL, &fx->store, &err), &err, "open");
    struct hub_registry_opts opts = {.now = fx_now, .now_ctx = fx};
    ok(hub_registry_new(fx->store, &opts, &fx->reg, &err), &err, "registry");
    hub_registry_observer_set(fx->reg, on_change, fx);
    fx->root_key = key_new();
    fx->other_key = key_new();
    fx->leaf_key = key_new();
    fx->root = issue(HUB_PKI_CERT_ROOT, "CRL Root CA", NULL, NULL, fx->root_key);
    fx->dev1 = issue(HUB_PKI_CERT_DEVICE, "dev1", fx->root, fx->root_key, fx->leaf_key);
    fx->dev2 = issue(HUB_PKI_CERT_DEVICE, "dev2", fx->root, fx->root_key, fx->leaf_key);
    char *pem = pem_of(fx->root);
    ok(hub_registry_ca_upload(fx->reg, "devca", pem, strlen(pem), true, NULL, NULL, NULL, &err),
       &err, "upload");
    free(pem);
    *state = fx;
    return 0;
}

static int fx_teardown(void **state)
{
    struct fx *fx = *state;
    hub_registry_observer_set(fx->reg, NULL, NULL);
    X509_free(fx->root);
    X509_free(fx->dev1);
    X509_free(fx->dev2);
    EVP_PKEY_free(fx->root_key);
    EVP_PKEY_free(fx->other_key);
    EVP_PKEY_free(fx->leaf_key);
    hub_registry_free(fx->reg);
    hub_store_close(fx->store);
    DIR *d = opendir(fx->dir);
    if (d != NULL) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            char p[512];
            snprintf(p, sizeof(p), "%s/%s", fx->dir, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    assert_int_equal(rmdir(fx->dir), 0);
    free(fx);
    return 0;
}

/* Validates `leaf` against the registry's current snapshot. */
static int verify_now(struct fx *fx, X509 *leaf, uint64_t *gen_out, struct hub_err *err)
{
    struct hub_registry_trust *snap = NULL;
    ok(hub_registry_trust_get1(fx->reg, &snap, err), err, "trust");
    if (gen_out != NULL)
        *gen_out = hub_registry_trust_generation(snap);
    struct hub_pki_verify_opts o = {.at = fx->now, .eku = HUB_PKI_EKU_CLIENT_AUTH, .max_depth = -1};
    int rc = hub_pki_chain_verify(hub_registry_trust_pki(snap), leaf, NULL, &o, err);
    hub_registry_trust_release(snap);
    return rc;
}

static void test_crl_set_revokes(void **state)
{
    struct fx *fx = *state;
    struct hub_err err = {0};
    uint64_t gen1 = 0, gen2 = 0;
    ok(verify_now(fx, fx->dev2, &gen1, &err), &err, "dev2 before the CRL");
    struct hub_ca_cert *before = NULL;
    ok(hub_registry_ca_get1(fx->reg, "devca", &before, &err), &err, "get");
    assert_null(before->crl_pem);

    char *crl = crl_pem_new(fx, fx->root, fx->root_key, fx->dev2, -60, 7 * DAY);
    int changes = fx->ca_changes;
    struct hub_ca_cert *ca = NULL;
    ok(hub_registry_ca_crl_set(fx->reg, "devca", crl, strlen(crl), before->etag, &ca, &err), &err,
       "crl set");
    assert_int_equal(fx->ca_changes, changes + 1);
    assert_string_not_equal(ca->etag, before->etag);
    assert_non_null(strstr(ca->crl_pem, "BEGIN X509 CRL"));
    assert_int_equal(ca->crl_revoked_count, 1);
    assert_int_equal(ca->crl_this_update, fx->now - 60);
    assert_int_equal(ca->crl_next_update, fx->now + 7 * DAY);
    assert_int_equal(ca->crl_updated, fx->now);
    assert_true(ca->verified); /* a CRL does not touch the lifecycle */

    /* stored, as read back */
    struct hub_ca_cert *again = NULL;
    ok(hub_registry_ca_get1(fx->reg, "devca", &again, &err), &err, "get again");
    assert_string_equal(again->crl_pem, ca->crl_pem);
    assert_string_equal(again->etag, ca->etag);

    assert_int_equal(verify_now(fx, fx->dev2, &gen2, &err), HUB_E_CHAIN_REVOKED);
    assert_non_null(strstr(err.msg, "CN=dev2"));
    assert_true(gen2 != gen1);
    ok(verify_now(fx, fx->dev1, NULL, &err), &err, "dev1 is not listed");

    struct hub_registry_trust *snap = NULL;
    ok(hub_registry_trust_get1(fx->reg, &snap, &err), &err, "trust");
    assert_int_equal(hub_registry_trust_crl_count(snap), 1);
    char names[64];
    assert_int_equal(hub_registry_trust_crl_expired(snap, fx->now, names, sizeof(names)), 0);
    assert_int_equal(hub_registry_trust_crl_expired(snap, fx->now + 8 * DAY, names, sizeof(names)),
                     1);
    assert_string_equal(names, "devca");
    /* When the next one expires: its nextUpdate while it is ahead, none after. */
    assert_int_equal(hub_registry_trust_crl_next_expiry(snap, fx->now), fx->now + 7 * DAY);
    assert_int_equal(hub_registry_trust_crl_next_expiry(snap, fx->now + 7 * DAY), 0);
    hub_registry_trust_release(snap);

    /* a stale etag is refused and changes nothing */
    assert_int_equal(
        hub_registry_ca_crl_set(fx->reg, "devca", crl, strlen(crl), before->etag, NULL, &err),
        HUB_E_ETAG_MISMATCH);
    hub_ca_cert_free(again);
    hub_ca_cert_free(ca);
    hub_ca_cert_free(before);
    free(crl);
}

static void test_crl_refusals(void **state)
{
    struct fx *fx = *state;
    X509 *other = issue(HUB_PKI_CERT_ROOT, "Other CA", NULL, NULL, fx->other_key);
    char *forged = crl_pem_new(fx, fx->root, fx->other_key, fx->dev2, -60, DAY);
    char *foreign = crl_pem_new(fx, other, fx->other_key, fx->dev2, -60, DAY);
    char *good = crl_pem_new(fx, fx->root, fx->root_key, NULL, -60, DAY);
    char *older = crl_pem_new(fx, fx->root, fx->root_key, fx->dev2, -3600, DAY);
    /* a key appended to a valid CRL */
    BIO *b = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey(b, fx->root_key, NULL, NULL, 0, NULL, NULL);
    char *kp = NULL;
    long kn = BIO_get_mem_data(b, &kp);
    size_t glen = strlen(good);
    char *with_key = calloc(1, glen + (size_t)kn + 1);
    memcpy(with_key, good, glen);
    memcpy(with_key + glen, kp, (size_t)kn);
    BIO_free(b);

    struct hub_err err = {0};
    int changes = fx->ca_changes;
    const struct {
        const char *name;
        const char *ca;
        const char *crl;
        int code;
    } rows[] = {
        {"signed by another key", "devca", forged, HUB_E_CHAIN_SIGNATURE},
        {"issued by another CA", "devca", foreign, HUB_E_CHAIN_UNTRUSTED},
        {"with a private key", "devca", with_key, HUB_E_PRIVATE_KEY},
        {"not a CRL", "devca", "hello", HUB_E_EMPTY},
        {"unknown CA", "nosuch", good, HUB_E_NOT_FOUND},
        {"bad CA name", "no/such", good, HUB_E_INVALID_ARG},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        int rc = hub_registry_ca_crl_set(fx->reg, rows[i].ca, rows[i].crl, strlen(rows[i].crl),
                                         NULL, NULL, &err);
        if (rc != rows[i].code)
            fail_msg("%s: got %s (%s), wanted %s", rows[i].name, hub_err_name(rc), err.msg,
                     hub_err_name(rows[i].code));
    }
    assert_int_equal(fx->ca_changes, changes); /* nothing changed, nothing announced */

    /* the newest word wins: an older CRL cannot replace a newer one */
    ok(hub_registry_ca_crl_set(fx->reg, "devca", good, glen, NULL, NULL, &err), &err, "good");
    assert_int_equal(
        hub_registry_ca_crl_set(fx->reg, "devca", older, strlen(older), NULL, NULL, &err),
        HUB_E_INVALID_ARG);
    assert_non_null(strstr(err.msg, "before the stored one"));
    ok(verify_now(fx, fx->dev2, NULL, &err), &err, "older CRL did not apply");

    free(with_key);
    free(older);
    free(good);
    free(foreign);
    free(forged);
    X509_free(other);
}

static void test_crl_expired_still_enforced(void **state)
{
    struct fx *fx = *state;
    struct hub_err err = {0};
    char *crl = crl_pem_new(fx, fx->root, fx->root_key, fx->dev2, -10 * DAY, -DAY);
    ok(hub_registry_ca_crl_set(fx->reg, "devca", crl, strlen(crl), NULL, NULL, &err), &err,
       "expired CRL accepted");
    assert_int_equal(verify_now(fx, fx->dev2, NULL, &err), HUB_E_CHAIN_REVOKED);
    ok(verify_now(fx, fx->dev1, NULL, &err), &err, "dev1");
    struct hub_registry_trust *snap = NULL;
    ok(hub_registry_trust_get1(fx->reg, &snap, &err), &err, "trust");
    char names[64];
    assert_int_equal(hub_registry_trust_crl_expired(snap, fx->now, names, sizeof(names)), 1);
    assert_string_equal(names, "devca");
    assert_int_equal(hub_registry_trust_crl_next_expiry(snap, fx->now), 0); /* already past */
    hub_registry_trust_release(snap);
    free(crl);
}

static void test_crl_reupload_and_delete(void **state)
{
    struct fx *fx = *state;
    struct hub_err err = {0};
    char *crl = crl_pem_new(fx, fx->root, fx->root_key, fx->dev2, -60, DAY);
    ok(hub_registry_ca_crl_set(fx->reg, "devca", crl, strlen(crl), NULL, NULL, &err), &err, "crl");

    /* a renewed CA (same name and key) keeps its CRL */
    X509 *renewed = issue(HUB_PKI_CERT_ROOT, "CRL Root CA", NULL, NULL, fx->root_key);
    char *pem = pem_of(renewed);
    struct hub_ca_cert *ca = NULL;
    ok(hub_registry_ca_upload(fx->reg, "devca", pem, strlen(pem), true, "*", NULL, &ca, &err), &err,
       "renew");
    assert_non_null(ca->crl_pem);
    assert_int_equal(ca->crl_revoked_count, 1);
    hub_ca_cert_free(ca);
    free(pem);
    X509_free(renewed);

    /* another key under the same name: the old CRL cannot be its word */
    X509 *rekeyed = issue(HUB_PKI_CERT_ROOT, "CRL Root CA", NULL, NULL, fx->other_key);
    pem = pem_of(rekeyed);
    ok(hub_registry_ca_upload(fx->reg, "devca", pem, strlen(pem), true, "*", NULL, &ca, &err), &err,
       "rekey");
    assert_null(ca->crl_pem);
    assert_int_equal(ca->crl_revoked_count, 0);
    hub_ca_cert_free(ca);
    free(pem);
    X509_free(rekeyed);

    /* delete cascades: a new CA of that name starts without a CRL */
    pem = pem_of(fx->root);
    ok(hub_registry_ca_upload(fx->reg, "devca", pem, strlen(pem), true, "*", NULL, NULL, &err),
       &err, "back to root");
    ok(hub_registry_ca_crl_set(fx->reg, "devca", crl, strlen(crl), NULL, NULL, &err), &err, "crl");
    int changes = fx->ca_changes;
    ok(hub_registry_ca_delete(fx->reg, "devca", NULL, &err), &err, "delete");
    assert_int_equal(fx->ca_changes, changes + 1);
    ok(hub_registry_ca_upload(fx->reg, "devca", pem, strlen(pem), true, NULL, NULL, &ca, &err),
       &err, "upload again");
    assert_null(ca->crl_pem);
    ok(verify_now(fx, fx->dev2, NULL, &err), &err, "dev2 no longer revoked");
    hub_ca_cert_free(ca);
    free(pem);
    free(crl);
}

static void test_device_cert_expiry(void **state)
{
    struct fx *fx = *state;
    struct hub_err err = {0};
    struct hub_device in, out;
    memset(&in, 0, sizeof(in));
    snprintf(in.id, sizeof(in.id), "dev1");
    in.auth_type = HUB_AUTH_CERT_AUTHORITY;
    ok(hub_registry_device_create(fx->reg, &in, &out, &err), &err, "create");
    assert_int_equal(out.x509_not_after, 0);
    int64_t na = fx->now + 30 * DAY;
    ok(hub_registry_device_cert_expiry_set(fx->reg, "dev1", na, out.x509_not_after, &err), &err,
       "set");
    ok(hub_registry_device_get(fx->reg, "dev1", &out, &err), &err, "get");
    assert_int_equal(out.x509_not_after, na);
    char etag[HUB_ETAG_SIZE];
    memcpy(etag, out.etag, sizeof(etag));

    /* an identity update keeps it (runtime column) */
    struct hub_device upd = out;
    snprintf(upd.status_reason, sizeof(upd.status_reason), "renamed");
    upd.x509_not_after = 0;
    ok(hub_registry_device_update(fx->reg, &upd, NULL, &out, &err), &err, "update");
    ok(hub_registry_device_get(fx->reg, "dev1", &out, &err), &err, "get");
    assert_int_equal(out.x509_not_after, na);

    /* unchanged value: no write at all (proved by a device that is gone) */
    ok(hub_registry_device_delete(fx->reg, "dev1", NULL, &err), &err, "delete");
    ok(hub_registry_device_cert_expiry_set(fx->reg, "dev1", na, na, &err), &err, "no write");
    assert_int_equal(hub_registry_device_cert_expiry_set(fx->reg, "dev1", na + 1, na, &err),
                     HUB_E_NOT_FOUND);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_crl_set_revokes, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_crl_refusals, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_crl_expired_still_enforced, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_crl_reupload_and_delete, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_device_cert_expiry, fx_setup, fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
