/*
 * registry, CA lifecycle and trust snapshot: upload checks, the CA limit,
 * verification codes (format, replacement, expiry), proof of possession,
 * re-upload reset, etags, and the snapshot the device endpoint uses
 * (generation changes, and its trust really validates a device chain).
 * Certificates are issued on the fly with pki; the clock is injected.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/pem.h>

#include "pki/pki.h"
#include "registry/registry.h"

#define DAY (24 * 3600)

struct fx {
    char dir[64];
    char path[128];
    struct hub_store *store;
    struct hub_registry *reg;
    int64_t now;
    /* A root CA with its key, issued per test. */
    EVP_PKEY *root_key;
    X509 *root;
    char *root_pem;
};

static int64_t fx_now(void *ctx)
{
    return ((struct fx *)ctx)->now;
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

static X509 *issue(enum hub_pki_cert_kind kind, const char *cn, int days, X509 *issuer,
                   EVP_PKEY *issuer_key, EVP_PKEY *subject_key)
{
    struct hub_pki_issue_params p = {
        .kind = kind,
        .common_name = cn,
        .days = days,
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

static int fx_open_registry(struct fx *fx, size_t max_cas)
{
    hub_registry_free(fx->reg);
    struct hub_registry_opts opts = {.now = fx_now, .now_ctx = fx, .max_cas = max_cas};
    struct hub_err err = {0};
    return hub_registry_new(fx->store, &opts, &fx->reg, &err);
}

static int fx_setup(void **state)
{
    struct fx *fx = calloc(1, sizeof(*fx));
    assert_non_null(fx);
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/hubd-test-registry-ca-XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    snprintf(fx->path, sizeof(fx->path), "%s/hub.db", fx->dir);
    fx->now = (int64_t)time(NULL);
    struct hub_err err = {0};
    ok(hub_store_sqlite_open(fx->path, NULL, &fx->store, &err), &err, "open");
    assert_int_equal(fx_open_registry(fx, 0), 0);
    fx->root_key = key_new();
    fx->root = issue(HUB_PKI_CERT_ROOT, "Test Root CA", 30, NULL, NULL, fx->root_key);
    fx->root_pem = pem_of(fx->root);
    *state = fx;
    return 0;
}

static int fx_teardown(void **state)
{
    struct fx *fx = *state;
    free(fx->root_pem);
    X509_free(fx->root);
    EVP_PKEY_free(fx->root_key);
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

static struct hub_ca_cert *upload_root(struct fx *fx, const char *name)
{
    struct hub_ca_cert *ca = NULL;
    struct hub_err err = {0};
    bool created = false;
    ok(hub_registry_ca_upload(fx->reg, name, fx->root_pem, strlen(fx->root_pem), false, NULL,
                              &created, &ca, &err),
       &err, "upload");
    assert_true(created);
    return ca;
}

static struct hub_ca_cert *code_new(struct fx *fx, const char *name)
{
    struct hub_ca_cert *ca = NULL;
    struct hub_err err = {0};
    ok(hub_registry_ca_code_generate(fx->reg, name, "*", &ca, &err), &err, "code");
    return ca;
}

/* A verification certificate with CN `code`, signed by `signer` in the root's name. */
static char *proof_pem(struct fx *fx, const char *code, EVP_PKEY *signer)
{
    EVP_PKEY *k = key_new();
    X509 *v = issue(HUB_PKI_CERT_VERIFICATION, code, 1, fx->root, signer, k);
    char *pem = pem_of(v);
    X509_free(v);
    EVP_PKEY_free(k);
    return pem;
}

static int verify_with(struct fx *fx, const char *name, const char *code, EVP_PKEY *signer,
                       struct hub_ca_cert **out, struct hub_err *err)
{
    char *pem = proof_pem(fx, code, signer);
    int rc = hub_registry_ca_verify(fx->reg, name, "*", pem, strlen(pem), out, err);
    free(pem);
    return rc;
}

/* ---- upload ------------------------------------------------------------------ */

static void test_upload_is_unverified_with_facts(void **state)
{
    struct fx *fx = *state;
    struct hub_ca_cert *ca = upload_root(fx, "root");
    assert_string_equal(ca->name, "root");
    assert_false(ca->verified);
    assert_string_equal(ca->verification_code, "");
    assert_true(ca->etag[0] != '\0');
    assert_int_equal(ca->created, fx->now);
    char want[HUB_PKI_THUMBPRINT_MAX];
    assert_int_equal(hub_pki_thumbprint(fx->root, HUB_PKI_SHA1, want, NULL), 0);
    assert_string_equal(ca->thumbprint_sha1, want);
    assert_int_equal(strlen(ca->thumbprint_sha1), 40);
    assert_int_equal(hub_pki_thumbprint(fx->root, HUB_PKI_SHA256, want, NULL), 0);
    assert_string_equal(ca->thumbprint_sha256, want);
    assert_non_null(strstr(ca->subject, "Test Root CA"));
    int64_t nb, na;
    assert_int_equal(hub_pki_cert_validity(fx->root, &nb, &na, NULL), 0);
    assert_int_equal(ca->not_after, na);
    assert_int_equal(ca->not_before, nb);
    assert_non_null(strstr(ca->pem, "BEGIN CERTIFICATE"));
    hub_ca_cert_free(ca);

    struct hub_ca_cert_list *list = NULL;
    assert_int_equal(hub_registry_ca_list1(fx->reg, &list, NULL), 0);
    assert_int_equal(list->count, 1);
    assert_false(list->items[0].verified);
    hub_ca_cert_list_free(list);
}

static void test_upload_refusals(void **state)
{
    struct fx *fx = *state;
    struct hub_err err = {0};

    /* The root plus its private key in one file. */
    BIO *bio = BIO_new(BIO_s_mem());
    assert_non_null(bio);
    assert_int_equal(BIO_write(bio, fx->root_pem, (int)strlen(fx->root_pem)),
                     (int)strlen(fx->root_pem));
    assert_int_equal(PEM_write_bio_PrivateKey(bio, fx->root_key, NULL, NULL, 0, NULL, NULL), 1);
    char *mem = NULL;
    long n = BIO_get_mem_data(bio, &mem);
    assert_int_equal(
        hub_registry_ca_upload(fx->reg, "withkey", mem, (size_t)n, false, NULL, NULL, NULL, &err),
        HUB_E_PRIVATE_KEY);
    BIO_free(bio);

    /* A leaf (CA:FALSE). */
    EVP_PKEY *dk = key_new();
    X509 *leaf = issue(HUB_PKI_CERT_DEVICE, "dev1", 10, fx->root, fx->root_key, dk);
    char *leaf_pem = pem_of(leaf);
    assert_int_equal(hub_registry_ca_upload(fx->reg, "leaf", leaf_pem, strlen(leaf_pem), false,
                                            NULL, NULL, NULL, &err),
                     HUB_E_CHAIN_NOT_CA);
    assert_non_null(strstr(err.msg, "not a CA"));
    free(leaf_pem);
    X509_free(leaf);
    EVP_PKEY_free(dk);

    /* Junk, bad name. */
    assert_int_equal(
        hub_registry_ca_upload(fx->reg, "junk", "hello", 5, false, NULL, NULL, NULL, &err) < 0, 1);
    assert_int_equal(hub_registry_ca_upload(fx->reg, "bad name", fx->root_pem, strlen(fx->root_pem),
                                            false, NULL, NULL, NULL, &err),
                     HUB_E_INVALID_ARG);

    /* Expired: a one-day CA seen two days later. */
    EVP_PKEY *ek = key_new();
    X509 *shortlived = issue(HUB_PKI_CERT_ROOT, "Short Root", 1, NULL, NULL, ek);
    char *short_pem = pem_of(shortlived);
    fx->now += 2 * DAY;
    assert_int_equal(hub_registry_ca_upload(fx->reg, "expired", short_pem, strlen(short_pem), false,
                                            NULL, NULL, NULL, &err),
                     HUB_E_CERT_EXPIRED);
    assert_non_null(strstr(err.msg, "expired"));
    fx->now -= 2 * DAY;
    assert_int_equal(hub_registry_ca_upload(fx->reg, "expired", short_pem, strlen(short_pem), false,
                                            NULL, NULL, NULL, &err),
                     0);
    free(short_pem);
    X509_free(shortlived);
    EVP_PKEY_free(ek);

    /* Nothing refused was stored. */
    struct hub_ca_cert_list *list = NULL;
    assert_int_equal(hub_registry_ca_list1(fx->reg, &list, NULL), 0);
    assert_int_equal(list->count, 1);
    assert_string_equal(list->items[0].name, "expired");
    hub_ca_cert_list_free(list);
}

static void test_ca_limit(void **state)
{
    struct fx *fx = *state;
    assert_int_equal(fx_open_registry(fx, 3), 0);
    struct hub_err err = {0};
    for (int i = 0; i < 3; i++) {
        char name[8];
        snprintf(name, sizeof(name), "ca%d", i);
        hub_ca_cert_free(upload_root(fx, name));
    }
    assert_int_equal(hub_registry_ca_upload(fx->reg, "ca3", fx->root_pem, strlen(fx->root_pem),
                                            false, NULL, NULL, NULL, &err),
                     HUB_E_LIMIT);
    /* Replacing one of the three is not a new one. */
    bool created = true;
    assert_int_equal(hub_registry_ca_upload(fx->reg, "ca1", fx->root_pem, strlen(fx->root_pem),
                                            false, NULL, &created, NULL, &err),
                     0);
    assert_false(created);
    assert_int_equal(hub_registry_ca_delete(fx->reg, "ca0", NULL, &err), 0);
    assert_int_equal(hub_registry_ca_upload(fx->reg, "ca3", fx->root_pem, strlen(fx->root_pem),
                                            false, NULL, NULL, NULL, &err),
                     0);
}

static void test_default_limit_is_25(void **state)
{
    struct fx *fx = *state;
    struct hub_err err = {0};
    for (int i = 0; i < HUB_REGISTRY_DEFAULT_MAX_CAS; i++) {
        char name[8];
        snprintf(name, sizeof(name), "ca%d", i);
        hub_ca_cert_free(upload_root(fx, name));
    }
    assert_int_equal(hub_registry_ca_upload(fx->reg, "one-more", fx->root_pem, strlen(fx->root_pem),
                                            false, NULL, NULL, NULL, &err),
                     HUB_E_LIMIT);
}

/* ---- verification codes and proof of possession ------------------------------ */

static void test_code_format_and_replacement(void **state)
{
    struct fx *fx = *state;
    struct hub_ca_cert *up = upload_root(fx, "root");
    struct hub_ca_cert *c1 = code_new(fx, "root");
    assert_int_equal(strlen(c1->verification_code), 2 * HUB_REGISTRY_CODE_BYTES);
    assert_int_equal(strlen(c1->verification_code), 48);
    assert_int_equal(strspn(c1->verification_code, "0123456789ABCDEF"), 48);
    assert_int_equal(c1->code_expires, fx->now + HUB_REGISTRY_DEFAULT_CODE_TTL_S);
    assert_string_not_equal(c1->etag, up->etag);
    assert_false(c1->verified);

    struct hub_ca_cert *c2 = code_new(fx, "root");
    assert_string_not_equal(c2->verification_code, c1->verification_code);
    assert_string_not_equal(c2->etag, c1->etag);

    /* The replaced code no longer verifies, even with a correct signature. */
    struct hub_err err = {0};
    assert_int_equal(verify_with(fx, "root", c1->verification_code, fx->root_key, NULL, &err),
                     HUB_E_CN_MISMATCH);
    struct hub_ca_cert *v = NULL;
    ok(verify_with(fx, "root", c2->verification_code, fx->root_key, &v, &err), &err, "verify");
    assert_true(v->verified);
    hub_ca_cert_free(v);
    hub_ca_cert_free(c2);
    hub_ca_cert_free(c1);
    hub_ca_cert_free(up);
}

static void test_code_expires(void **state)
{
    struct fx *fx = *state;
    hub_ca_cert_free(upload_root(fx, "root"));
    struct hub_ca_cert *c = code_new(fx, "root");
    char *pem = proof_pem(fx, c->verification_code, fx->root_key);
    struct hub_err err = {0};
    fx->now = c->code_expires; /* exactly at expiry: gone */
    assert_int_equal(hub_registry_ca_verify(fx->reg, "root", NULL, pem, strlen(pem), NULL, &err),
                     HUB_E_CODE_EXPIRED);
    fx->now = c->code_expires - 1; /* a second before: still good */
    assert_int_equal(hub_registry_ca_verify(fx->reg, "root", NULL, pem, strlen(pem), NULL, &err),
                     0);
    free(pem);
    hub_ca_cert_free(c);
}

static void test_verify_refusals_and_success(void **state)
{
    struct fx *fx = *state;
    hub_ca_cert_free(upload_root(fx, "root"));
    struct hub_err err = {0};

    /* No code yet. */
    assert_int_equal(verify_with(fx, "root", "ANYTHING", fx->root_key, NULL, &err), HUB_E_NO_CODE);
    struct hub_ca_cert *c = code_new(fx, "root");

    /* Wrong CN. */
    assert_int_equal(verify_with(fx, "root", "0000", fx->root_key, NULL, &err), HUB_E_CN_MISMATCH);
    /* Right CN, issuer name of our root, but signed by another key: an
     * impostor root with the same subject. */
    EVP_PKEY *other = key_new();
    X509 *impostor = issue(HUB_PKI_CERT_ROOT, "Test Root CA", 30, NULL, NULL, other);
    EVP_PKEY *vk = key_new();
    X509 *forged = issue(HUB_PKI_CERT_VERIFICATION, c->verification_code, 1, impostor, other, vk);
    char *forged_pem = pem_of(forged);
    assert_int_equal(
        hub_registry_ca_verify(fx->reg, "root", NULL, forged_pem, strlen(forged_pem), NULL, &err),
        HUB_E_CHAIN_SIGNATURE);
    free(forged_pem);
    X509_free(forged);
    EVP_PKEY_free(vk);
    X509_free(impostor);
    EVP_PKEY_free(other);
    /* Signed by an unrelated CA (issuer name differs). */
    EVP_PKEY *ok2 = key_new();
    X509 *unrelated = issue(HUB_PKI_CERT_ROOT, "Other Root", 30, NULL, NULL, ok2);
    EVP_PKEY *vk2 = key_new();
    X509 *foreign = issue(HUB_PKI_CERT_VERIFICATION, c->verification_code, 1, unrelated, ok2, vk2);
    char *foreign_pem = pem_of(foreign);
    assert_int_equal(
        hub_registry_ca_verify(fx->reg, "root", NULL, foreign_pem, strlen(foreign_pem), NULL, &err),
        HUB_E_CHAIN_SIGNATURE);
    free(foreign_pem);
    X509_free(foreign);
    EVP_PKEY_free(vk2);
    X509_free(unrelated);
    EVP_PKEY_free(ok2);
    /* Junk instead of a certificate is refused at loading. */
    assert_int_equal(hub_registry_ca_verify(fx->reg, "root", NULL, "junk", 4, NULL, &err) < 0, 1);
    /* Unknown CA. */
    assert_int_equal(verify_with(fx, "nope", c->verification_code, fx->root_key, NULL, &err),
                     HUB_E_NOT_FOUND);

    struct hub_ca_cert *still = NULL;
    assert_int_equal(hub_registry_ca_get1(fx->reg, "root", &still, NULL), 0);
    assert_false(still->verified);
    assert_string_equal(still->verification_code, c->verification_code); /* failures keep it */
    hub_ca_cert_free(still);

    struct hub_ca_cert *v = NULL;
    ok(verify_with(fx, "root", c->verification_code, fx->root_key, &v, &err), &err, "verify");
    assert_true(v->verified);
    assert_string_equal(v->verification_code, "");
    assert_int_equal(v->code_expires, 0);
    assert_string_not_equal(v->etag, c->etag);
    hub_ca_cert_free(v);

    /* The code was consumed: the same proof again fails. */
    assert_int_equal(verify_with(fx, "root", c->verification_code, fx->root_key, NULL, &err),
                     HUB_E_NO_CODE);
    struct hub_ca_cert *got = NULL;
    assert_int_equal(hub_registry_ca_get1(fx->reg, "root", &got, NULL), 0);
    assert_true(got->verified);
    hub_ca_cert_free(got);
    hub_ca_cert_free(c);
}

static void test_reupload_resets_verification(void **state)
{
    struct fx *fx = *state;
    struct hub_ca_cert *up = upload_root(fx, "root");
    struct hub_ca_cert *c = code_new(fx, "root");
    struct hub_err err = {0};
    ok(verify_with(fx, "root", c->verification_code, fx->root_key, NULL, &err), &err, "verify");
    hub_ca_cert_free(c);
    c = code_new(fx, "root"); /* outstanding code on a verified CA */
    fx->now += 60;

    struct hub_ca_cert *re = NULL;
    bool created = true;
    ok(hub_registry_ca_upload(fx->reg, "root", fx->root_pem, strlen(fx->root_pem), false, NULL,
                              &created, &re, &err),
       &err, "re-upload");
    assert_false(created);
    assert_false(re->verified);
    assert_string_equal(re->verification_code, "");
    assert_int_equal(re->created, up->created);
    assert_int_equal(re->updated, fx->now);
    assert_string_not_equal(re->etag, c->etag);
    /* The code from before the re-upload is gone. */
    assert_int_equal(verify_with(fx, "root", c->verification_code, fx->root_key, NULL, &err),
                     HUB_E_NO_CODE);
    hub_ca_cert_free(re);
    hub_ca_cert_free(c);
    hub_ca_cert_free(up);
}

static void test_upload_verified_option(void **state)
{
    struct fx *fx = *state;
    struct hub_ca_cert *ca = NULL;
    struct hub_err err = {0};
    ok(hub_registry_ca_upload(fx->reg, "auto", fx->root_pem, strlen(fx->root_pem), true, NULL, NULL,
                              &ca, &err),
       &err, "upload verified");
    assert_true(ca->verified);
    hub_ca_cert_free(ca);
}

static void test_ca_etags(void **state)
{
    struct fx *fx = *state;
    struct hub_ca_cert *up = upload_root(fx, "root");
    struct hub_err err = {0};
    struct hub_ca_cert *c = NULL;
    /* Stale/other etags on every operation. */
    assert_int_equal(hub_registry_ca_code_generate(fx->reg, "root", "bogus", &c, &err),
                     HUB_E_ETAG_MISMATCH);
    ok(hub_registry_ca_code_generate(fx->reg, "root", up->etag, &c, &err), &err, "code");
    char *proof = proof_pem(fx, c->verification_code, fx->root_key);
    assert_int_equal(
        hub_registry_ca_verify(fx->reg, "root", up->etag, proof, strlen(proof), NULL, &err),
        HUB_E_ETAG_MISMATCH);
    struct hub_ca_cert *v = NULL;
    ok(hub_registry_ca_verify(fx->reg, "root", c->etag, proof, strlen(proof), &v, &err), &err,
       "verify");
    assert_int_equal(hub_registry_ca_upload(fx->reg, "root", fx->root_pem, strlen(fx->root_pem),
                                            false, c->etag, NULL, NULL, &err),
                     HUB_E_ETAG_MISMATCH);
    /* If-Match on a CA that does not exist fails rather than creating it. */
    assert_int_equal(hub_registry_ca_upload(fx->reg, "new", fx->root_pem, strlen(fx->root_pem),
                                            false, "AAAAAAExpNs=", NULL, NULL, &err),
                     HUB_E_ETAG_MISMATCH);
    assert_int_equal(hub_registry_ca_delete(fx->reg, "root", c->etag, &err), HUB_E_ETAG_MISMATCH);
    assert_int_equal(hub_registry_ca_delete(fx->reg, "root", v->etag, &err), 0);
    assert_int_equal(hub_registry_ca_delete(fx->reg, "root", NULL, &err), HUB_E_NOT_FOUND);
    free(proof);
    hub_ca_cert_free(v);
    hub_ca_cert_free(c);
    hub_ca_cert_free(up);
}

/* ---- trust snapshot ------------------------------------------------------------ */

static struct hub_registry_trust *snap(struct fx *fx)
{
    struct hub_registry_trust *s = NULL;
    struct hub_err err = {0};
    ok(hub_registry_trust_get1(fx->reg, &s, &err), &err, "trust_get1");
    assert_non_null(hub_registry_trust_pki(s));
    return s;
}

static int chain_check(struct fx *fx, struct hub_registry_trust *s, X509 *leaf, X509 *inter)
{
    STACK_OF(X509) *untrusted = NULL;
    if (inter != NULL) {
        untrusted = sk_X509_new_null();
        sk_X509_push(untrusted, inter);
    }
    struct hub_pki_verify_opts opts = {
        .at = fx->now, .eku = HUB_PKI_EKU_CLIENT_AUTH, .max_depth = -1};
    struct hub_err err = {0};
    int rc = hub_pki_chain_verify(hub_registry_trust_pki(s), leaf, untrusted, &opts, &err);
    sk_X509_free(untrusted);
    return rc;
}

static void test_trust_generation_follows_verified_set(void **state)
{
    struct fx *fx = *state;
    struct hub_registry_trust *s0 = snap(fx);
    assert_int_equal(hub_registry_trust_anchor_count(s0), 0);
    /* Unchanged set: the same snapshot, not a rebuild. */
    struct hub_registry_trust *s0b = snap(fx);
    assert_ptr_equal(s0, s0b);
    hub_registry_trust_release(s0b);

    hub_ca_cert_free(upload_root(fx, "root"));
    struct hub_registry_trust *s1 = snap(fx);
    assert_true(hub_registry_trust_generation(s1) != hub_registry_trust_generation(s0));
    assert_int_equal(hub_registry_trust_anchor_count(s1), 0); /* unverified: not trusted */

    /* A code does not change the verified set. */
    struct hub_ca_cert *c = code_new(fx, "root");
    struct hub_registry_trust *s1b = snap(fx);
    assert_int_equal(hub_registry_trust_generation(s1b), hub_registry_trust_generation(s1));
    hub_registry_trust_release(s1b);

    struct hub_err err = {0};
    ok(verify_with(fx, "root", c->verification_code, fx->root_key, NULL, &err), &err, "verify");
    struct hub_registry_trust *s2 = snap(fx);
    assert_true(hub_registry_trust_generation(s2) != hub_registry_trust_generation(s1));
    assert_int_equal(hub_registry_trust_anchor_count(s2), 1);
    assert_int_equal(hub_registry_trust_skipped_count(s2), 0);

    assert_int_equal(hub_registry_ca_delete(fx->reg, "root", NULL, &err), 0);
    struct hub_registry_trust *s3 = snap(fx);
    assert_true(hub_registry_trust_generation(s3) != hub_registry_trust_generation(s2));
    assert_int_equal(hub_registry_trust_anchor_count(s3), 0);
    /* A snapshot held across the change is still whole. */
    assert_int_equal(hub_registry_trust_anchor_count(s2), 1);

    hub_registry_trust_release(s3);
    hub_registry_trust_release(s2);
    hub_registry_trust_release(s1);
    hub_registry_trust_release(s0);
    hub_registry_trust_release(NULL);
    hub_ca_cert_free(c);
}

static void test_trust_validates_device_chain_after_verify(void **state)
{
    struct fx *fx = *state;
    /* root -> intermediate -> device; the operator uploads the root. */
    EVP_PKEY *ik = key_new(), *dk = key_new();
    X509 *inter =
        issue(HUB_PKI_CERT_INTERMEDIATE, "Test Intermediate", 20, fx->root, fx->root_key, ik);
    X509 *dev = issue(HUB_PKI_CERT_DEVICE, "dev1", 10, inter, ik, dk);
    hub_ca_cert_free(upload_root(fx, "root"));

    struct hub_registry_trust *s = snap(fx);
    assert_int_equal(chain_check(fx, s, dev, inter), HUB_E_CHAIN_UNTRUSTED); /* unverified */
    hub_registry_trust_release(s);

    struct hub_ca_cert *c = code_new(fx, "root");
    struct hub_err err = {0};
    ok(verify_with(fx, "root", c->verification_code, fx->root_key, NULL, &err), &err, "verify");
    s = snap(fx);
    assert_int_equal(chain_check(fx, s, dev, inter), 0);
    /* Without the intermediate there is no path. */
    assert_true(chain_check(fx, s, dev, NULL) < 0);
    hub_registry_trust_release(s);

    assert_int_equal(hub_registry_ca_delete(fx->reg, "root", NULL, &err), 0);
    s = snap(fx);
    assert_int_equal(chain_check(fx, s, dev, inter), HUB_E_CHAIN_UNTRUSTED);
    hub_registry_trust_release(s);

    hub_ca_cert_free(c);
    X509_free(dev);
    X509_free(inter);
    EVP_PKEY_free(dk);
    EVP_PKEY_free(ik);
}

static void test_trust_survives_restart(void **state)
{
    struct fx *fx = *state;
    struct hub_ca_cert *ca = NULL;
    struct hub_err err = {0};
    ok(hub_registry_ca_upload(fx->reg, "root", fx->root_pem, strlen(fx->root_pem), true, NULL, NULL,
                              &ca, &err),
       &err, "upload");
    hub_ca_cert_free(ca);
    /* A new store and registry over the same file: the verified CA is trusted. */
    hub_registry_free(fx->reg);
    fx->reg = NULL;
    hub_store_close(fx->store);
    ok(hub_store_sqlite_open(fx->path, NULL, &fx->store, &err), &err, "reopen");
    assert_int_equal(fx_open_registry(fx, 0), 0);
    struct hub_registry_trust *s = snap(fx);
    assert_int_equal(hub_registry_trust_anchor_count(s), 1);
    hub_registry_trust_release(s);
}

/* Handshake threads take and drop snapshots while the operator changes the
 * CA set: no errors, and the generation a thread sees never goes backwards. */
struct snap_worker {
    struct hub_registry *reg;
    atomic_bool *stop;
    int failures;
    long rounds;
};

static void *snap_worker_main(void *arg)
{
    struct snap_worker *w = arg;
    uint64_t last = 0;
    while (!atomic_load(w->stop)) {
        struct hub_registry_trust *s = NULL;
        struct hub_err err = {0};
        if (hub_registry_trust_get1(w->reg, &s, &err) != 0 || hub_registry_trust_pki(s) == NULL ||
            hub_registry_trust_generation(s) < last) {
            w->failures++;
        } else {
            last = hub_registry_trust_generation(s);
        }
        hub_registry_trust_release(s);
        w->rounds++;
    }
    return NULL;
}

static void test_trust_snapshot_concurrent_with_changes(void **state)
{
    struct fx *fx = *state;
    enum { N = 4 };
    atomic_bool stop;
    atomic_init(&stop, false);
    pthread_t th[N];
    struct snap_worker w[N];
    for (int i = 0; i < N; i++) {
        w[i] = (struct snap_worker){.reg = fx->reg, .stop = &stop};
        assert_int_equal(pthread_create(&th[i], NULL, snap_worker_main, &w[i]), 0);
    }
    struct hub_err err = {0};
    for (int round = 0; round < 10; round++) {
        hub_ca_cert_free(upload_root(fx, "root"));
        struct hub_ca_cert *c = code_new(fx, "root");
        ok(verify_with(fx, "root", c->verification_code, fx->root_key, NULL, &err), &err, "verify");
        hub_ca_cert_free(c);
        struct hub_registry_trust *s = snap(fx);
        assert_int_equal(hub_registry_trust_anchor_count(s), 1);
        hub_registry_trust_release(s);
        ok(hub_registry_ca_delete(fx->reg, "root", NULL, &err), &err, "delete");
    }
    atomic_store(&stop, true);
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(w[i].failures, 0);
        assert_true(w[i].rounds > 0);
    }
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, fx_setup, fx_teardown)
    const struct CMUnitTest tests[] = {
        T(test_upload_is_unverified_with_facts),
        T(test_upload_refusals),
        T(test_ca_limit),
        T(test_default_limit_is_25),
        T(test_code_format_and_replacement),
        T(test_code_expires),
        T(test_verify_refusals_and_success),
        T(test_reupload_resets_verification),
        T(test_upload_verified_option),
        T(test_ca_etags),
        T(test_trust_generation_follows_verified_set),
        T(test_trust_validates_device_chain_after_verify),
        T(test_trust_survives_restart),
        T(test_trust_snapshot_concurrent_with_changes),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
