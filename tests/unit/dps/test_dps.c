/*
 * dps (issue 8): enrollment records, the attestation decision and
 * assignment. Certificates are issued on the fly with pki: a verified root
 * "Root" with an intermediate "Int" that signs the devices; the clock is
 * injected.
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

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "auth/auth.h"
#include "common/util.h"
#include "dps/dps.h"
#include "dps/dps_int.h" /* hub_dps__leaf_usable */
#include "pki/pki.h"
#include "registry/registry.h"
#include "twin/twin.h"

struct fx {
    char dir[64];
    char path[128];
    struct hub_store *store;
    struct hub_registry *reg;
    struct hub_dps *dps;
    int64_t now;
    EVP_PKEY *root_key, *int_key, *leaf_key, *other_key;
    X509 *root, *inter, *leaf, *other_root, *other_leaf;
    char *root_pem, *int_pem, *leaf_pem, *other_root_pem;
    STACK_OF(X509) * chain; /* the intermediate, as a device presents it */
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

static X509 *issue(enum hub_pki_cert_kind kind, const char *cn, X509 *issuer, EVP_PKEY *issuer_key,
                   EVP_PKEY *subject_key)
{
    struct hub_pki_issue_params p = {.kind = kind,
                                     .common_name = cn,
                                     .days = 30,
                                     .pathlen = -1,
                                     .issuer_cert = issuer,
                                     .issuer_key = issuer_key,
                                     .subject_key = subject_key};
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

static int fx_setup(void **state)
{
    struct fx *fx = calloc(1, sizeof(*fx));
    assert_non_null(fx);
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/hubd-test-dps-XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    snprintf(fx->path, sizeof(fx->path), "%s/hub.db", fx->dir);
    fx->now = (int64_t)time(NULL);
    struct hub_err err = {0};
    ok(hub_store_sqlite_open(fx->path, NULL, &fx->store, &err), &err, "open");
    struct hub_registry_opts ro = {.now = fx_now, .now_ctx = fx};
    ok(hub_registry_new(fx->store, &ro, &fx->reg, &err), &err, "registry");
    struct hub_dps_opts dopts = {
        .id_scope = "0ne0000ABCD", .assigned_hub = "hub.example", .now = fx_now, .now_ctx = fx};
    ok(hub_dps_new(fx->store, fx->reg, &dopts, &fx->dps, &err), &err, "dps");
    fx->root_key = key_new();
    fx->int_key = key_new();
    fx->leaf_key = key_new();
    fx->other_key = key_new();
    fx->root = issue(HUB_PKI_CERT_ROOT, "Root", NULL, NULL, fx->root_key);
    fx->inter = issue(HUB_PKI_CERT_INTERMEDIATE, "Int", fx->root, fx->root_key, fx->int_key);
    fx->leaf = issue(HUB_PKI_CERT_DEVICE, "dev1", fx->inter, fx->int_key, fx->leaf_key);
    fx->other_root = issue(HUB_PKI_CERT_ROOT, "Other", NULL, NULL, fx->other_key);
    fx->other_leaf =
        issue(HUB_PKI_CERT_DEVICE, "dev1", fx->other_root, fx->other_key, fx->leaf_key);
    fx->root_pem = pem_of(fx->root);
    fx->int_pem = pem_of(fx->inter);
    fx->leaf_pem = pem_of(fx->leaf);
    fx->other_root_pem = pem_of(fx->other_root);
    fx->chain = sk_X509_new_null();
    sk_X509_push(fx->chain, fx->inter);
    /* "Root" is registered and verified in the hub (upload-time verification). */
    ok(hub_registry_ca_upload(fx->reg, "root", fx->root_pem, strlen(fx->root_pem), true, NULL, NULL,
                              NULL, &err),
       &err, "upload root");
    *state = fx;
    return 0;
}

static int fx_teardown(void **state)
{
    struct fx *fx = *state;
    sk_X509_free(fx->chain);
    free(fx->root_pem);
    free(fx->int_pem);
    free(fx->leaf_pem);
    free(fx->other_root_pem);
    X509_free(fx->root);
    X509_free(fx->inter);
    X509_free(fx->leaf);
    X509_free(fx->other_root);
    X509_free(fx->other_leaf);
    EVP_PKEY_free(fx->root_key);
    EVP_PKEY_free(fx->int_key);
    EVP_PKEY_free(fx->leaf_key);
    EVP_PKEY_free(fx->other_key);
    hub_dps_free(fx->dps);
    hub_registry_free(fx->reg);
    hub_store_close(fx->store);
    DIR *d = opendir(fx->dir);
    struct dirent *e;
    while (d != NULL && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char p[512];
        snprintf(p, sizeof(p), "%s/%s", fx->dir, e->d_name);
        unlink(p);
    }
    if (d != NULL)
        closedir(d);
    assert_int_equal(rmdir(fx->dir), 0);
    free(fx);
    return 0;
}

/* PUTs an enrollment from JSON text built with printf-style arguments. */
__attribute__((format(printf, 7, 8))) static int put_json(struct fx *fx, enum hub_dps_kind kind,
                                                          const char *id, const char *if_match,
                                                          struct hub_dps_enrollment *out,
                                                          struct hub_err *err, const char *fmt, ...)
{
    char *body = NULL;
    va_list ap;
    va_start(ap, fmt);
    assert_true(vasprintf(&body, fmt, ap) >= 0);
    va_end(ap);
    struct hub_dps_enrollment in;
    int rc = hub_dps_enrollment_parse(kind, id, body, strlen(body), &in, err);
    free(body);
    if (rc != 0)
        return rc;
    rc = hub_dps_enrollment_put(fx->dps, &in, if_match, out, NULL, err);
    hub_dps_enrollment_clear(&in);
    return rc;
}

/* A JSON string literal of a PEM (newlines escaped). */
static char *jstr(const char *pem)
{
    json_t *s = json_string(pem);
    char *out = json_dumps(s, JSON_ENCODE_ANY);
    json_decref(s);
    return out;
}

static void group_inline(struct fx *fx, const char *id, const char *pem, const char *status)
{
    struct hub_err err = {0};
    char *c = jstr(pem);
    ok(put_json(fx, HUB_DPS_GROUP, id, NULL, NULL, &err,
                "{\"enrollmentGroupId\":\"%s\",\"attestation\":{\"type\":\"x509\",\"x509\":"
                "{\"signingCertificates\":{\"primary\":{\"certificate\":%s}}}},"
                "\"provisioningStatus\":\"%s\",\"initialTwin\":{\"tags\":{\"g\":\"%s\"},"
                "\"properties\":{\"desired\":{\"rate\":5}}}}",
                id, c, status, id),
       &err, "put group");
    free(c);
}

static int match(struct fx *fx, X509 *leaf, const char *regid, struct hub_dps_match *m,
                 struct hub_err *err)
{
    return hub_dps_match_x509(fx->dps, regid, leaf, fx->chain, m, err);
}

/* ---- matching ------------------------------------------------------------------ */

static void test_nearest_group_wins(void **state)
{
    struct fx *fx = *state;
    group_inline(fx, "g-root", fx->root_pem, "enabled");
    group_inline(fx, "g-int", fx->int_pem, "enabled");
    struct hub_dps_match m;
    struct hub_err err = {0};
    ok(match(fx, fx->leaf, "dev1", &m, &err), &err, "match");
    assert_int_equal(m.refusal, HUB_DPS_REFUSAL_NONE);
    assert_int_equal(m.enrollment.kind, HUB_DPS_GROUP);
    assert_string_equal(m.enrollment.id, "g-int");
    assert_string_equal(m.device_id, "dev1");
    hub_dps_match_clear(&m);

    /* Without the intermediate's group, the root's admits the device. */
    ok(hub_dps_enrollment_delete(fx->dps, HUB_DPS_GROUP, "g-int", NULL, &err), &err, "delete");
    ok(match(fx, fx->leaf, "dev1", &m, &err), &err, "match root");
    assert_string_equal(m.enrollment.id, "g-root");
    hub_dps_match_clear(&m);
}

static void test_individual_beats_group(void **state)
{
    struct fx *fx = *state;
    group_inline(fx, "g-int", fx->int_pem, "enabled");
    struct hub_err err = {0};
    char *c = jstr(fx->leaf_pem);
    ok(put_json(fx, HUB_DPS_INDIVIDUAL, "dev1", NULL, NULL, &err,
                "{\"registrationId\":\"dev1\",\"deviceId\":\"dev-one\",\"attestation\":{\"type\":"
                "\"x509\",\"x509\":{\"clientCertificates\":{\"primary\":{\"certificate\":%s}}}}}",
                c),
       &err, "put individual");
    free(c);
    struct hub_dps_match m;
    ok(match(fx, fx->leaf, "dev1", &m, &err), &err, "match");
    assert_int_equal(m.enrollment.kind, HUB_DPS_INDIVIDUAL);
    assert_string_equal(m.device_id, "dev-one");
    hub_dps_match_clear(&m);

    /* Disabled individual refuses although its group is enabled. */
    c = jstr(fx->leaf_pem);
    ok(put_json(fx, HUB_DPS_INDIVIDUAL, "dev1", NULL, NULL, &err,
                "{\"attestation\":{\"type\":\"x509\",\"x509\":{\"clientCertificates\":{\"primary\":"
                "{\"certificate\":%s}}}},\"provisioningStatus\":\"disabled\"}",
                c),
       &err, "disable individual");
    free(c);
    assert_int_equal(match(fx, fx->leaf, "dev1", &m, &err), HUB_E_FORBIDDEN);
    assert_int_equal(m.refusal, HUB_DPS_REFUSAL_DISABLED);
    hub_dps_match_clear(&m);
}

static void test_refusals(void **state)
{
    struct fx *fx = *state;
    struct hub_dps_match m;
    struct hub_err err = {0};

    /* No enrollment at all. */
    assert_int_equal(match(fx, fx->leaf, "dev1", &m, &err), HUB_E_NOT_FOUND);
    assert_int_equal(m.refusal, HUB_DPS_REFUSAL_NO_ENROLLMENT);
    hub_dps_match_clear(&m);

    /* Disabled nearest group refuses even though the root group is enabled. */
    group_inline(fx, "g-root", fx->root_pem, "enabled");
    group_inline(fx, "g-int", fx->int_pem, "disabled");
    assert_int_equal(match(fx, fx->leaf, "dev1", &m, &err), HUB_E_FORBIDDEN);
    assert_int_equal(m.refusal, HUB_DPS_REFUSAL_DISABLED);
    assert_non_null(strstr(err.msg, "g-int"));
    hub_dps_match_clear(&m);

    /* CN differs from the registration id. */
    assert_int_equal(match(fx, fx->leaf, "dev2", &m, &err), HUB_E_CN_MISMATCH);
    assert_int_equal(m.refusal, HUB_DPS_REFUSAL_CN_MISMATCH);
    hub_dps_match_clear(&m);

    /* A device under a CA the hub does not know, even with a group naming it. */
    group_inline(fx, "g-other", fx->other_root_pem, "enabled");
    int rc = hub_dps_match_x509(fx->dps, "dev1", fx->other_leaf, NULL, &m, &err);
    assert_int_equal(rc, HUB_E_CHAIN_UNTRUSTED);
    assert_int_equal(m.refusal, HUB_DPS_REFUSAL_CHAIN_INVALID);
    hub_dps_match_clear(&m);
}

/* An inline signing certificate is honoured only when it is, or chains up
 * to, a verified hub CA: a cross-certificate of "Int" (same name and key)
 * issued by the unregistered "Other" root signs the leaf too, by signature,
 * but does not itself chain to the verified root. */
static void test_inline_signer_must_chain_to_verified_ca(void **state)
{
    struct fx *fx = *state;
    X509 *forged =
        issue(HUB_PKI_CERT_INTERMEDIATE, "Int", fx->other_root, fx->other_key, fx->int_key);
    char *pem = pem_of(forged);
    group_inline(fx, "g-forged", pem, "enabled");
    struct hub_dps_match m;
    struct hub_err err = {0};
    assert_int_equal(match(fx, fx->leaf, "dev1", &m, &err), HUB_E_CHAIN_UNTRUSTED);
    assert_int_equal(m.refusal, HUB_DPS_REFUSAL_SIGNER_UNVERIFIED);
    assert_non_null(strstr(err.msg, "g-forged"));
    hub_dps_match_clear(&m);
    /* The genuine intermediate is honoured: it chains to the verified root. */
    group_inline(fx, "g-int", fx->int_pem, "enabled");
    ok(match(fx, fx->leaf, "dev1", &m, &err), &err, "genuine");
    assert_string_equal(m.enrollment.id, "g-int");
    hub_dps_match_clear(&m);
    free(pem);
    X509_free(forged);
}

static void test_ca_references(void **state)
{
    struct fx *fx = *state;
    struct hub_err err = {0};
    ok(put_json(fx, HUB_DPS_GROUP, "g-ref", NULL, NULL, &err,
                "{\"attestation\":{\"type\":\"x509\",\"x509\":{\"caReferences\":"
                "{\"primary\":\"root\"}}}}"),
       &err, "put ref");
    struct hub_dps_match m;
    ok(match(fx, fx->leaf, "dev1", &m, &err), &err, "match ref");
    assert_string_equal(m.enrollment.id, "g-ref");
    hub_dps_match_clear(&m);

    /* A reference to an unverified CA admits no one. */
    ok(hub_registry_ca_upload(fx->reg, "int-unverified", fx->int_pem, strlen(fx->int_pem), false,
                              NULL, NULL, NULL, &err),
       &err, "upload int");
    ok(hub_dps_enrollment_delete(fx->dps, HUB_DPS_GROUP, "g-ref", NULL, &err), &err, "delete");
    ok(put_json(fx, HUB_DPS_GROUP, "g-bad", NULL, NULL, &err,
                "{\"attestation\":{\"type\":\"x509\",\"x509\":{\"caReferences\":"
                "{\"primary\":\"int-unverified\"}}}}"),
       &err, "put bad ref");
    assert_int_equal(match(fx, fx->leaf, "dev1", &m, &err), HUB_E_CHAIN_UNTRUSTED);
    assert_int_equal(m.refusal, HUB_DPS_REFUSAL_CA_REFERENCE_INVALID);
    hub_dps_match_clear(&m);
}

/* base64(HMAC-SHA256(b64dec(groupKey), registrationId)), computed here
 * independently of auth. */
static void derive(const char *group_key, const char *regid, char out[128])
{
    unsigned char key[64], mac[32];
    unsigned mac_len = 0;
    int n = hub_base64_decode(group_key, strlen(group_key), key, sizeof(key), NULL);
    assert_true(n > 0);
    assert_non_null(
        HMAC(EVP_sha256(), key, n, (const unsigned char *)regid, strlen(regid), mac, &mac_len));
    hub_base64_encode(mac, mac_len, out);
}

static void token_for(const char *regid, const char *key, int64_t expiry, char out[4200])
{
    char sr[256];
    snprintf(sr, sizeof(sr), "0ne0000ABCD/registrations/%s", regid);
    struct hub_err err = {0};
    ok(hub_auth_sas_build(sr, HUB_AUTH_SR_RAW, "registration", key, expiry, out, 4200, &err), &err,
       "token");
}

static void test_symmetric_group_derived_keys(void **state)
{
    struct fx *fx = *state;
    struct hub_err err = {0};
    struct hub_dps_enrollment g;
    ok(put_json(fx, HUB_DPS_GROUP, "g-sk", NULL, &g, &err,
                "{\"attestation\":{\"type\":\"symmetricKey\"}}"),
       &err, "put sk group");
    assert_int_equal(strlen(g.primary_key), 44); /* generated: base64 of 32 bytes */
    assert_string_not_equal(g.primary_key, g.secondary_key);
    char want[128], tok[4200];
    derive(g.primary_key, "sensor-7", want);
    token_for("sensor-7", want, fx->now + 3600, tok);
    struct hub_dps_match m;
    ok(hub_dps_match_symmetric(fx->dps, "sensor-7", tok, strlen(tok), &m, &err), &err, "match");
    assert_string_equal(m.enrollment.id, "g-sk");
    assert_string_equal(m.device_primary_key, want);
    hub_dps_match_clear(&m);

    /* The group key itself (not derived) does not verify. */
    token_for("sensor-7", g.primary_key, fx->now + 3600, tok);
    assert_int_equal(hub_dps_match_symmetric(fx->dps, "sensor-7", tok, strlen(tok), &m, &err),
                     HUB_E_UNAUTHORIZED);
    assert_int_equal(m.refusal, HUB_DPS_REFUSAL_BAD_SIGNATURE);
    hub_dps_match_clear(&m);
    /* A key derived for another id does not either. */
    derive(g.primary_key, "sensor-8", want);
    token_for("sensor-7", want, fx->now + 3600, tok);
    assert_int_equal(hub_dps_match_symmetric(fx->dps, "sensor-7", tok, strlen(tok), &m, &err),
                     HUB_E_UNAUTHORIZED);
    hub_dps_match_clear(&m);
    hub_dps_enrollment_clear(&g);
}

/* ---- assignment ----------------------------------------------------------------- */

static const char *tag_g(struct fx *fx, const char *id, char *buf, size_t cap)
{
    struct hub_twin *t = NULL;
    struct hub_err err = {0};
    ok(hub_registry_twin_get1(fx->reg, id, &t, NULL, &err), &err, "twin");
    const char *v = json_string_value(json_object_get(t->tags, "g"));
    snprintf(buf, cap, "%s", v != NULL ? v : "");
    hub_twin_free(t);
    return buf;
}

static void register_dev1(struct fx *fx, struct hub_dps_registration *r)
{
    struct hub_dps_match m;
    struct hub_err err = {0};
    ok(match(fx, fx->leaf, "dev1", &m, &err), &err, "match");
    ok(hub_dps_assign(fx->dps, "dev1", &m, r, &err), &err, "assign");
    hub_dps_match_clear(&m);
}

/* A device the registration id did not provision is never taken over: a
 * hand-made SAS device keeps its keys against a group's derived key; a
 * hand-made certificateAuthority device (the same credentials an X.509
 * group gives) is adopted; and after the operator deletes a registration
 * record, the same device registers again. */
static void test_assign_never_takes_over_another_device(void **state)
{
    struct fx *fx = *state;
    struct hub_err err = {0};
    struct hub_dps_enrollment g;
    ok(put_json(fx, HUB_DPS_GROUP, "g-sk", NULL, &g, &err,
                "{\"attestation\":{\"type\":\"symmetricKey\"}}"),
       &err, "put sk group");
    struct hub_device hand = {0}, stored, got;
    snprintf(hand.id, sizeof(hand.id), "victim");
    hand.status = HUB_DEVICE_ENABLED;
    hand.auth_type = HUB_AUTH_SELF_SIGNED;
    snprintf(hand.primary_thumbprint, sizeof(hand.primary_thumbprint), "%040d", 1);
    ok(hub_registry_device_create(fx->reg, &hand, &stored, &err), &err, "hand-made device");
    char key[128], tok[4200];
    derive(g.primary_key, "victim", key);
    token_for("victim", key, fx->now + 3600, tok);
    struct hub_dps_match m;
    struct hub_dps_registration r;
    ok(hub_dps_match_symmetric(fx->dps, "victim", tok, strlen(tok), &m, &err), &err, "match");
    assert_int_equal(hub_dps_assign(fx->dps, "victim", &m, &r, &err), HUB_E_EXISTS);
    assert_non_null(strstr(err.msg, "other credentials"));
    hub_dps_match_clear(&m);
    ok(hub_registry_device_get(fx->reg, "victim", &got, &err), &err, "get");
    assert_int_equal(got.auth_type, HUB_AUTH_SELF_SIGNED);
    assert_string_equal(got.primary_thumbprint, hand.primary_thumbprint);
    struct hub_dps_registration rec;
    ok(hub_dps_registration_get(fx->dps, "victim", &rec, &err), &err, "failed record");
    assert_int_equal(rec.status, HUB_DPS_REG_FAILED);
    assert_int_equal(rec.error_code, 409);

    /* A sensor the group provisioned, its record deleted: the same device
     * (same derived keys) registers again. */
    derive(g.primary_key, "sensor-1", key);
    token_for("sensor-1", key, fx->now + 3600, tok);
    ok(hub_dps_match_symmetric(fx->dps, "sensor-1", tok, strlen(tok), &m, &err), &err, "match");
    ok(hub_dps_assign(fx->dps, "sensor-1", &m, &r, &err), &err, "first registration");
    hub_dps_match_clear(&m);
    ok(hub_dps_registration_delete(fx->dps, "sensor-1", NULL, &err), &err, "delete record");
    ok(hub_dps_match_symmetric(fx->dps, "sensor-1", tok, strlen(tok), &m, &err), &err, "match");
    ok(hub_dps_assign(fx->dps, "sensor-1", &m, &r, &err), &err, "registers again");
    assert_int_equal(r.substatus, HUB_DPS_SUB_INITIAL_ASSIGNMENT);
    hub_dps_match_clear(&m);
    hub_dps_enrollment_clear(&g);

    /* A hand-made certificateAuthority dev1 holds what an X.509 group gives. */
    group_inline(fx, "g-int", fx->int_pem, "enabled");
    memset(&hand, 0, sizeof(hand));
    snprintf(hand.id, sizeof(hand.id), "dev1");
    hand.status = HUB_DEVICE_ENABLED;
    hand.auth_type = HUB_AUTH_CERT_AUTHORITY;
    ok(hub_registry_device_create(fx->reg, &hand, &stored, &err), &err, "hand-made CA device");
    register_dev1(fx, &r);
    assert_int_equal(r.status, HUB_DPS_REG_ASSIGNED);
}

static void test_assign_create_then_reprovision(void **state)
{
    struct fx *fx = *state;
    group_inline(fx, "g-int", fx->int_pem, "enabled");
    struct hub_dps_registration r1, r2, r3;
    register_dev1(fx, &r1);
    assert_int_equal(r1.status, HUB_DPS_REG_ASSIGNED);
    assert_int_equal(r1.substatus, HUB_DPS_SUB_INITIAL_ASSIGNMENT);
    assert_string_equal(r1.assigned_hub, "hub.example");
    assert_string_equal(r1.device_id, "dev1");
    assert_string_equal(r1.enrollment_group_id, "g-int");

    struct hub_device d;
    struct hub_err err = {0};
    ok(hub_registry_device_get(fx->reg, "dev1", &d, &err), &err, "device");
    assert_int_equal(d.auth_type, HUB_AUTH_CERT_AUTHORITY);
    assert_int_equal(d.status, HUB_DEVICE_ENABLED);
    char buf[64];
    assert_string_equal(tag_g(fx, "dev1", buf, sizeof(buf)), "g-int"); /* initialTwin applied */

    /* The operator changes the twin; a re-registration (migrate: default
     * true) keeps it. */
    const char *patch = "{\"tags\":{\"g\":\"changed\"}}";
    ok(hub_registry_twin_patch(fx->reg, "dev1", patch, strlen(patch), NULL, NULL, NULL, &err), &err,
       "patch");
    fx->now += 60;
    register_dev1(fx, &r2);
    assert_int_equal(r2.substatus, HUB_DPS_SUB_DEVICE_DATA_MIGRATED);
    assert_string_equal(tag_g(fx, "dev1", buf, sizeof(buf)), "changed");
    assert_int_equal(r2.created, r1.created);
    assert_int_equal(r2.updated, r1.updated + 60);
    assert_string_not_equal(r2.etag, r1.etag);

    /* migrateDeviceData false: the twin goes back to the initialTwin. */
    char *c = jstr(fx->int_pem);
    ok(put_json(
           fx, HUB_DPS_GROUP, "g-int", NULL, NULL, &err,
           "{\"attestation\":{\"type\":\"x509\",\"x509\":{\"signingCertificates\":{\"primary\":"
           "{\"certificate\":%s}}}},\"initialTwin\":{\"tags\":{\"g\":\"reset\"}},"
           "\"reprovisionPolicy\":{\"updateHubAssignment\":true,\"migrateDeviceData\":false}}",
           c),
       &err, "policy");
    free(c);
    register_dev1(fx, &r3);
    assert_int_equal(r3.substatus, HUB_DPS_SUB_DEVICE_DATA_RESET);
    assert_string_equal(tag_g(fx, "dev1", buf, sizeof(buf)), "reset");

    /* The record is readable and deletable (the device stays). */
    struct hub_dps_registration got;
    ok(hub_dps_registration_get(fx->dps, "dev1", &got, &err), &err, "get");
    assert_string_equal(got.etag, r3.etag);
    assert_int_equal(got.substatus, HUB_DPS_SUB_DEVICE_DATA_RESET);
    assert_string_equal(got.cert_subject, r3.cert_subject);
    json_t *j = hub_dps_registration_json_new(&got);
    assert_string_equal(json_string_value(json_object_get(j, "substatus")), "deviceDataReset");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(j, "x509"), "enrollmentGroupId")),
        "g-int");
    json_decref(j);
    assert_int_equal(hub_dps_registration_delete(fx->dps, "dev1", "bogus", &err),
                     HUB_E_ETAG_MISMATCH);
    ok(hub_dps_registration_delete(fx->dps, "dev1", got.etag, &err), &err, "delete");
    assert_int_equal(hub_dps_registration_get(fx->dps, "dev1", &got, &err), HUB_E_NOT_FOUND);
    ok(hub_registry_device_get(fx->reg, "dev1", &d, &err), &err, "device stays");
}

static void test_assign_no_hub_update_keeps_everything(void **state)
{
    struct fx *fx = *state;
    struct hub_err err = {0};
    char *c = jstr(fx->int_pem);
    ok(put_json(
           fx, HUB_DPS_GROUP, "g-int", NULL, NULL, &err,
           "{\"attestation\":{\"type\":\"x509\",\"x509\":{\"signingCertificates\":{\"primary\":"
           "{\"certificate\":%s}}}},\"initialTwin\":{\"tags\":{\"g\":\"init\"}},"
           "\"reprovisionPolicy\":{\"updateHubAssignment\":false,\"migrateDeviceData\":false}}",
           c),
       &err, "put");
    free(c);
    struct hub_dps_registration r1, r2;
    register_dev1(fx, &r1);
    const char *patch = "{\"tags\":{\"g\":\"mine\"}}";
    ok(hub_registry_twin_patch(fx->reg, "dev1", patch, strlen(patch), NULL, NULL, NULL, &err), &err,
       "patch");
    register_dev1(fx, &r2);
    assert_int_equal(r1.substatus, HUB_DPS_SUB_INITIAL_ASSIGNMENT);
    assert_int_equal(r2.substatus, HUB_DPS_SUB_REPROVISIONED_TO_INITIAL);
    char buf[64];
    assert_string_equal(tag_g(fx, "dev1", buf, sizeof(buf)), "mine");
}

static void test_assign_refuses_a_refused_match(void **state)
{
    struct fx *fx = *state;
    struct hub_dps_match m = {.refusal = HUB_DPS_REFUSAL_DISABLED};
    snprintf(m.device_id, sizeof(m.device_id), "dev1");
    struct hub_dps_registration r;
    struct hub_err err = {0};
    assert_int_equal(hub_dps_assign(fx->dps, "dev1", &m, &r, &err), HUB_E_INVALID_ARG);
    struct hub_device d;
    assert_int_equal(hub_registry_device_get(fx->reg, "dev1", &d, &err), HUB_E_NOT_FOUND);
}

/* ---- pinned leaves (rule 1a: individual enrollment, no CA) ----------------------- */

static void add_ext(X509 *x, int nid, const char *value)
{
    if (value == NULL)
        return;
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    assert_non_null(e);
    assert_int_equal(X509_add_ext(x, e, -1), 1);
    X509_EXTENSION_free(e);
}

/* A self-signed certificate of `key`, subject CN=`cn`, valid from nb to na
 * (Unix seconds), with keyUsage `ku` / extendedKeyUsage `eku` in OpenSSL's
 * config syntax (NULL: the extension is absent). pki only issues its fixed
 * profiles, so the odd ones are made here. */
static X509 *self_signed(const char *cn, EVP_PKEY *key, int64_t nb, int64_t na, const char *ku,
                         const char *eku)
{
    static long serial = 1000;
    X509 *x = X509_new();
    assert_non_null(x);
    assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);
    assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), serial++), 1);
    X509_NAME *n = X509_get_subject_name(x);
    assert_int_equal(
        X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0), 1);
    assert_int_equal(X509_set_issuer_name(x, n), 1);
    assert_non_null(ASN1_TIME_set(X509_getm_notBefore(x), (time_t)nb));
    assert_non_null(ASN1_TIME_set(X509_getm_notAfter(x), (time_t)na));
    assert_int_equal(X509_set_pubkey(x, key), 1);
    add_ext(x, NID_key_usage, ku);
    add_ext(x, NID_ext_key_usage, eku);
    assert_true(X509_sign(x, key, EVP_sha256()) > 0);
    return x;
}

/* A fit self-signed device certificate, as `openssl req -x509` makes one. */
static X509 *self_signed_ok(struct fx *fx, const char *cn, EVP_PKEY *key)
{
    return self_signed(cn, key, fx->now - 300, fx->now + 86400, "critical,digitalSignature",
                       "clientAuth");
}

static void tp(X509 *x, enum hub_pki_digest d, char out[HUB_PKI_THUMBPRINT_MAX])
{
    struct hub_err err = {0};
    ok(hub_pki_thumbprint(x, d, out, &err), &err, "thumbprint");
}

/* Individual x509 enrollment `regid`: `primary`/`secondary` are JSON
 * fragments ({"certificate":..} or {"info":{..}}), secondary may be NULL. */
static void individual_x509(struct fx *fx, const char *regid, const char *primary,
                            const char *secondary, const char *status)
{
    struct hub_err err = {0};
    ok(put_json(fx, HUB_DPS_INDIVIDUAL, regid, NULL, NULL, &err,
                "{\"attestation\":{\"type\":\"x509\",\"x509\":{\"clientCertificates\":"
                "{\"primary\":%s%s%s}}},\"provisioningStatus\":\"%s\"}",
                primary, secondary != NULL ? ",\"secondary\":" : "",
                secondary != NULL ? secondary : "", status),
       &err, "put individual");
}

static char *cert_frag(X509 *x)
{
    char *pem = pem_of(x);
    char *j = jstr(pem);
    char *out = NULL;
    assert_true(asprintf(&out, "{\"certificate\":%s}", j) >= 0);
    free(j);
    free(pem);
    return out;
}

static void test_leaf_usable_table(void **state)
{
    struct fx *fx = *state;
    const int64_t now = fx->now;
    static const struct {
        const char *name;
        int64_t nb, na; /* relative to now */
        const char *ku, *eku;
        int want;
    } cases[] = {
        {"digitalSignature + clientAuth", -60, 60, "critical,digitalSignature", "clientAuth", 0},
        {"no keyUsage, no EKU", -60, 60, NULL, NULL, 0},
        {"anyExtendedKeyUsage", -60, 60, NULL, "anyExtendedKeyUsage", 0},
        {"serverAuth and clientAuth", -60, 60, NULL, "serverAuth,clientAuth", 0},
        {"keyUsage with more bits", -60, 60, "digitalSignature,keyEncipherment", NULL, 0},
        {"valid until exactly now", -60, 0, NULL, NULL, 0},
        {"valid from exactly now", 0, 60, NULL, NULL, 0},
        {"expired a second ago", -60, -1, NULL, NULL, HUB_E_CERT_EXPIRED},
        {"not yet valid", 1, 60, NULL, NULL, HUB_E_CERT_NOT_YET_VALID},
        {"EKU serverAuth only", -60, 60, NULL, "serverAuth", HUB_E_CHAIN_EKU},
        {"EKU codeSigning only", -60, 60, "digitalSignature", "codeSigning", HUB_E_CHAIN_EKU},
        /* keyUsage is not judged, as for a selfSigned device connecting. */
        {"keyUsage keyCertSign only (a CA's)", -60, 60, "critical,keyCertSign,cRLSign", NULL, 0},
        {"keyUsage keyEncipherment only", -60, 60, "keyEncipherment", "clientAuth", 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        X509 *x = self_signed("pin1", fx->leaf_key, now + cases[i].nb, now + cases[i].na,
                              cases[i].ku, cases[i].eku);
        struct hub_err err = {0};
        int rc = hub_dps__leaf_usable(x, now, &err);
        if (rc != cases[i].want)
            fail_msg("%s: got %s (%s), want %s", cases[i].name, hub_err_name(rc), err.msg,
                     hub_err_name(cases[i].want));
        X509_free(x);
    }
    /* What `hubctl cert root --subject ID` makes (a CA profile, keyCertSign
     * only) serves as a selfSigned device in the hub, so it may be pinned. */
    X509 *root_like = issue(HUB_PKI_CERT_ROOT, "pin1", NULL, NULL, fx->leaf_key);
    struct hub_err err = {0};
    assert_int_equal(hub_dps__leaf_usable(root_like, now, &err), 0);
    X509_free(root_like);
}

static void test_pinned_self_signed_by_certificate(void **state)
{
    struct fx *fx = *state;
    group_inline(fx, "g-int", fx->int_pem, "enabled"); /* a group that does not cover it */
    X509 *self = self_signed_ok(fx, "pin1", fx->leaf_key);
    char *frag = cert_frag(self);
    individual_x509(fx, "pin1", frag, NULL, "enabled");
    free(frag);

    struct hub_dps_match m;
    struct hub_err err = {0};
    ok(hub_dps_match_x509(fx->dps, "pin1", self, NULL, &m, &err), &err, "match");
    assert_int_equal(m.refusal, HUB_DPS_REFUSAL_NONE);
    assert_true(m.pinned);
    assert_int_equal(m.enrollment.kind, HUB_DPS_INDIVIDUAL);
    assert_string_equal(m.device_id, "pin1");
    char t1[HUB_PKI_THUMBPRINT_MAX], t256[HUB_PKI_THUMBPRINT_MAX];
    tp(self, HUB_PKI_SHA1, t1);
    tp(self, HUB_PKI_SHA256, t256);
    assert_string_equal(m.cert_thumbprint, t1);
    assert_string_equal(m.device_thumbprint[0], t256);
    assert_string_equal(m.device_thumbprint[1], "");

    struct hub_dps_registration r;
    ok(hub_dps_assign(fx->dps, "pin1", &m, &r, &err), &err, "assign");
    hub_dps_match_clear(&m);
    assert_int_equal(r.status, HUB_DPS_REG_ASSIGNED);
    assert_int_equal(r.substatus, HUB_DPS_SUB_INITIAL_ASSIGNMENT);
    assert_int_equal(r.att_type, HUB_DPS_ATT_X509);
    assert_string_equal(r.enrollment_group_id, "");
    assert_string_equal(r.cert_thumbprint, t1);
    assert_string_equal(r.cert_subject, "CN=pin1");
    struct hub_device d;
    ok(hub_registry_device_get(fx->reg, "pin1", &d, &err), &err, "device");
    assert_int_equal(d.auth_type, HUB_AUTH_SELF_SIGNED);
    assert_string_equal(d.primary_thumbprint, t256);
    assert_string_equal(d.secondary_thumbprint, "");
    /* The hub's selfSigned check (authn) accepts exactly this certificate. */
    assert_true(hub_registry_device_thumbprint_match(&d, t256));
    assert_false(hub_registry_device_thumbprint_match(&d, t1));

    /* Re-registration: the default policy updates the auth, still selfSigned. */
    fx->now += 60;
    ok(hub_dps_match_x509(fx->dps, "pin1", self, NULL, &m, &err), &err, "match again");
    ok(hub_dps_assign(fx->dps, "pin1", &m, &r, &err), &err, "assign again");
    hub_dps_match_clear(&m);
    assert_int_equal(r.substatus, HUB_DPS_SUB_DEVICE_DATA_MIGRATED);
    ok(hub_registry_device_get(fx->reg, "pin1", &d, &err), &err, "device");
    assert_int_equal(d.auth_type, HUB_AUTH_SELF_SIGNED);
    assert_string_equal(d.primary_thumbprint, t256);
    X509_free(self);

    /* A CA-issued leaf under a CA the hub does not know, pinned the same way
     * (the presented chain holds its unregistered root). */
    frag = cert_frag(fx->other_leaf);
    individual_x509(fx, "dev1", frag, NULL, "enabled");
    free(frag);
    STACK_OF(X509) *other = sk_X509_new_null();
    sk_X509_push(other, fx->other_root);
    ok(hub_dps_match_x509(fx->dps, "dev1", fx->other_leaf, other, &m, &err), &err, "other");
    sk_X509_free(other);
    assert_true(m.pinned);
    ok(hub_dps_assign(fx->dps, "dev1", &m, &r, &err), &err, "assign other");
    hub_dps_match_clear(&m);
    ok(hub_registry_device_get(fx->reg, "dev1", &d, &err), &err, "device dev1");
    assert_int_equal(d.auth_type, HUB_AUTH_SELF_SIGNED);
    tp(fx->other_leaf, HUB_PKI_SHA256, t256);
    assert_string_equal(d.primary_thumbprint, t256);
}

/* By thumbprint, with a secondary certificate: the device keeps the
 * enrollment's two slots, the presented one as its SHA-256. */
static void test_pinned_by_thumbprint_and_secondary(void **state)
{
    struct fx *fx = *state;
    X509 *a = self_signed_ok(fx, "pin2", fx->leaf_key);
    X509 *b = self_signed_ok(fx, "pin2", fx->other_key);
    char a1[HUB_PKI_THUMBPRINT_MAX], a256[HUB_PKI_THUMBPRINT_MAX], b256[HUB_PKI_THUMBPRINT_MAX];
    tp(a, HUB_PKI_SHA1, a1);
    tp(a, HUB_PKI_SHA256, a256);
    tp(b, HUB_PKI_SHA256, b256);
    /* Enrolled as a lowercase SHA-1 thumbprint: any case matches. */
    char lower[HUB_PKI_THUMBPRINT_MAX];
    for (size_t i = 0; i <= strlen(a1); i++)
        lower[i] = (char)(a1[i] >= 'A' && a1[i] <= 'F' ? a1[i] + ('a' - 'A') : a1[i]);
    char primary[128];
    snprintf(primary, sizeof(primary), "{\"info\":{\"sha1Thumbprint\":\"%s\"}}", lower);
    char *secondary = cert_frag(b);
    individual_x509(fx, "pin2", primary, secondary, "enabled");
    free(secondary);

    struct hub_dps_match m;
    struct hub_dps_registration r;
    struct hub_device d;
    struct hub_err err = {0};
    ok(hub_dps_match_x509(fx->dps, "pin2", a, NULL, &m, &err), &err, "match a");
    assert_true(m.pinned);
    ok(hub_dps_assign(fx->dps, "pin2", &m, &r, &err), &err, "assign a");
    hub_dps_match_clear(&m);
    ok(hub_registry_device_get(fx->reg, "pin2", &d, &err), &err, "device");
    assert_int_equal(d.auth_type, HUB_AUTH_SELF_SIGNED);
    assert_string_equal(d.primary_thumbprint, a256);
    assert_string_equal(d.secondary_thumbprint, b256);

    /* The secondary certificate registers too: slot 1 is now the leaf. */
    ok(hub_dps_match_x509(fx->dps, "pin2", b, NULL, &m, &err), &err, "match b");
    assert_true(m.pinned);
    ok(hub_dps_assign(fx->dps, "pin2", &m, &r, &err), &err, "assign b");
    hub_dps_match_clear(&m);
    ok(hub_registry_device_get(fx->reg, "pin2", &d, &err), &err, "device");
    assert_string_equal(d.primary_thumbprint, a1);
    assert_string_equal(d.secondary_thumbprint, b256);
    X509_free(a);
    X509_free(b);
}

static void test_pinned_refusals(void **state)
{
    struct fx *fx = *state;
    static const struct {
        const char *name;
        const char *regid;    /* registered as */
        const char *enrolled; /* individual enrollment: "self", "other", "sym", or NULL */
        const char *status;
        const char *cn; /* of the presented self-signed leaf */
        int64_t na;     /* notAfter relative to now */
        const char *eku;
        int want_rc;
        enum hub_dps_refusal want;
    } cases[] = {
        {"no individual enrollment, only groups", "pin1", NULL, "enabled", "pin1", 3600,
         "clientAuth", HUB_E_CHAIN_UNTRUSTED, HUB_DPS_REFUSAL_CHAIN_INVALID},
        {"individual enrollment of another certificate", "pin1", "other", "enabled", "pin1", 3600,
         "clientAuth", HUB_E_CHAIN_UNTRUSTED, HUB_DPS_REFUSAL_CHAIN_INVALID},
        {"symmetricKey individual enrollment", "pin1", "sym", "enabled", "pin1", 3600, "clientAuth",
         HUB_E_CHAIN_UNTRUSTED, HUB_DPS_REFUSAL_CHAIN_INVALID},
        {"expired", "pin1", "self", "enabled", "pin1", -1, "clientAuth", HUB_E_CERT_EXPIRED,
         HUB_DPS_REFUSAL_CHAIN_INVALID},
        {"EKU serverAuth only", "pin1", "self", "enabled", "pin1", 3600, "serverAuth",
         HUB_E_CHAIN_EKU, HUB_DPS_REFUSAL_CHAIN_INVALID},
        {"CN is not the registration id", "pin1", "self", "enabled", "pin9", 3600, "clientAuth",
         HUB_E_CN_MISMATCH, HUB_DPS_REFUSAL_CN_MISMATCH},
        {"individual enrollment disabled", "pin1", "self", "disabled", "pin1", 3600, "clientAuth",
         HUB_E_FORBIDDEN, HUB_DPS_REFUSAL_DISABLED},
    };
    /* Groups that exist but never admit a chain that is not under a
     * verified CA, even one that names the leaf's own certificate. */
    group_inline(fx, "g-int", fx->int_pem, "enabled");
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        X509 *leaf = self_signed(cases[i].cn, fx->leaf_key, fx->now - 7200, fx->now + cases[i].na,
                                 "critical,digitalSignature", cases[i].eku);
        char *pem = pem_of(leaf);
        group_inline(fx, "g-self", pem, "enabled");
        free(pem);
        struct hub_err err = {0};
        if (cases[i].enrolled != NULL && strcmp(cases[i].enrolled, "sym") == 0) {
            ok(put_json(fx, HUB_DPS_INDIVIDUAL, cases[i].regid, NULL, NULL, &err,
                        "{\"attestation\":{\"type\":\"symmetricKey\"}}"),
               &err, "put sym");
        } else if (cases[i].enrolled != NULL) {
            X509 *other = self_signed_ok(fx, cases[i].regid, fx->other_key);
            char *frag = cert_frag(strcmp(cases[i].enrolled, "self") == 0 ? leaf : other);
            individual_x509(fx, cases[i].regid, frag, NULL, cases[i].status);
            free(frag);
            X509_free(other);
        }
        struct hub_dps_match m;
        int rc = hub_dps_match_x509(fx->dps, cases[i].regid, leaf, NULL, &m, &err);
        if (rc != cases[i].want_rc || m.refusal != cases[i].want)
            fail_msg("%s: got %s/%s (%s), want %s/%s", cases[i].name, hub_err_name(rc),
                     hub_dps_refusal_name(m.refusal), err.msg, hub_err_name(cases[i].want_rc),
                     hub_dps_refusal_name(cases[i].want));
        assert_false(m.pinned);
        hub_dps_match_clear(&m);
        if (cases[i].enrolled != NULL)
            ok(hub_dps_enrollment_delete(fx->dps, HUB_DPS_INDIVIDUAL, cases[i].regid, NULL, &err),
               &err, "delete individual");
        X509_free(leaf);
        struct hub_device d;
        assert_int_equal(hub_registry_device_get(fx->reg, cases[i].regid, &d, &err),
                         HUB_E_NOT_FOUND);
    }
}

/* A chain that validates keeps today's path even when an individual
 * enrollment pins the same leaf: the device is certificateAuthority. */
/* An individual enrollment pins its certificate even when the chain
 * validates: as certificateAuthority any CN=dev1 certificate under a
 * verified CA would connect as the device. */
static void test_valid_chain_with_individual_is_pinned(void **state)
{
    struct fx *fx = *state;
    char *frag = cert_frag(fx->leaf);
    individual_x509(fx, "dev1", frag, NULL, "enabled");
    free(frag);
    struct hub_dps_match m;
    struct hub_dps_registration r;
    struct hub_err err = {0};
    ok(match(fx, fx->leaf, "dev1", &m, &err), &err, "match");
    assert_int_equal(m.enrollment.kind, HUB_DPS_INDIVIDUAL);
    assert_true(m.pinned);
    ok(hub_dps_assign(fx->dps, "dev1", &m, &r, &err), &err, "assign");
    hub_dps_match_clear(&m);
    struct hub_device d;
    ok(hub_registry_device_get(fx->reg, "dev1", &d, &err), &err, "device");
    assert_int_equal(d.auth_type, HUB_AUTH_SELF_SIGNED);
    char t256[HUB_PKI_THUMBPRINT_MAX];
    ok(hub_pki_thumbprint(fx->leaf, HUB_PKI_SHA256, t256, &err), &err, "thumbprint");
    assert_string_equal(d.primary_thumbprint, t256);
}

/* Rule 1a never rescues a revoked chain: "Root" revokes "Int", and an
 * individual enrollment pinning the (otherwise fit) leaf under it changes
 * nothing. */
static void test_pinned_never_rescues_revoked(void **state)
{
    struct fx *fx = *state;
    X509_CRL *crl = X509_CRL_new();
    assert_non_null(crl);
    assert_int_equal(X509_CRL_set_version(crl, 1), 1);
    assert_int_equal(X509_CRL_set_issuer_name(crl, X509_get_subject_name(fx->root)), 1);
    ASN1_TIME *t = ASN1_TIME_new();
    assert_non_null(ASN1_TIME_set(t, (time_t)(fx->now - 60)));
    assert_int_equal(X509_CRL_set1_lastUpdate(crl, t), 1);
    X509_REVOKED *r = X509_REVOKED_new();
    assert_int_equal(X509_REVOKED_set_serialNumber(r, X509_get_serialNumber(fx->inter)), 1);
    assert_int_equal(X509_REVOKED_set_revocationDate(r, t), 1);
    assert_int_equal(X509_CRL_add0_revoked(crl, r), 1);
    assert_non_null(ASN1_TIME_set(t, (time_t)(fx->now + 86400)));
    assert_int_equal(X509_CRL_set1_nextUpdate(crl, t), 1);
    ASN1_TIME_free(t);
    assert_true(X509_CRL_sign(crl, fx->root_key, EVP_sha256()) > 0);
    BIO *b = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_X509_CRL(b, crl), 1);
    char *p = NULL;
    long n = BIO_get_mem_data(b, &p);
    struct hub_err err = {0};
    ok(hub_registry_ca_crl_set(fx->reg, "root", p, (size_t)n, NULL, NULL, &err), &err, "crl");
    BIO_free(b);
    X509_CRL_free(crl);

    char *frag = cert_frag(fx->leaf);
    individual_x509(fx, "dev1", frag, NULL, "enabled");
    free(frag);
    struct hub_dps_match m;
    assert_int_equal(match(fx, fx->leaf, "dev1", &m, &err), HUB_E_CHAIN_REVOKED);
    assert_int_equal(m.refusal, HUB_DPS_REFUSAL_CHAIN_INVALID);
    assert_false(m.pinned);
    hub_dps_match_clear(&m);
}

/* ---- records ------------------------------------------------------------------------ */

static void test_enrollment_etags_and_round_trip(void **state)
{
    struct fx *fx = *state;
    struct hub_err err = {0};
    struct hub_dps_enrollment a, b;
    char *c = jstr(fx->root_pem);
    ok(put_json(
           fx, HUB_DPS_GROUP, "g1", NULL, &a, &err,
           "{\"attestation\":{\"type\":\"x509\",\"x509\":{\"signingCertificates\":{\"primary\":"
           "{\"certificate\":%s}}}},\"capabilities\":{\"iotEdge\":true}}",
           c),
       &err, "create");
    free(c);
    assert_int_equal(put_json(fx, HUB_DPS_GROUP, "g1", "stale", NULL, &err,
                              "{\"attestation\":{\"type\":\"symmetricKey\"}}"),
                     HUB_E_ETAG_MISMATCH);
    /* GET -> JSON (no certificate, only its info) -> PUT with the etag keeps
     * the stored certificate. */
    json_t *j = hub_dps_enrollment_json_new(&a);
    json_t *primary =
        json_object_get(json_object_get(json_object_get(json_object_get(j, "attestation"), "x509"),
                                        "signingCertificates"),
                        "primary");
    assert_null(json_object_get(primary, "certificate"));
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(primary, "info"), "subjectName")),
        "CN=Root");
    json_object_set_new(j, "provisioningStatus", json_string("disabled"));
    char *text = json_dumps(j, 0);
    json_decref(j);
    struct hub_dps_enrollment in;
    ok(hub_dps_enrollment_parse(HUB_DPS_GROUP, "g1", text, strlen(text), &in, &err), &err, "parse");
    free(text);
    ok(hub_dps_enrollment_put(fx->dps, &in, a.etag, &b, NULL, &err), &err, "update");
    hub_dps_enrollment_clear(&in);
    assert_false(b.enabled);
    assert_true(b.iot_edge);
    assert_non_null(b.cert_pem[0]);
    assert_string_equal(b.cert_pem[0], a.cert_pem[0]);
    assert_string_not_equal(b.etag, a.etag);
    assert_int_equal(hub_dps_enrollment_delete(fx->dps, HUB_DPS_GROUP, "g1", a.etag, &err),
                     HUB_E_ETAG_MISMATCH);
    /* Create-only: refused while the id exists, with the record untouched,
     * then accepted once it is gone. */
    const char *sym = "{\"attestation\":{\"type\":\"symmetricKey\"}}";
    struct hub_dps_enrollment c1, c2;
    ok(hub_dps_enrollment_parse(HUB_DPS_GROUP, "g1", sym, strlen(sym), &in, &err), &err, "parse");
    assert_int_equal(hub_dps_enrollment_create(fx->dps, &in, &c1, &err), HUB_E_EXISTS);
    ok(hub_dps_enrollment_get(fx->dps, HUB_DPS_GROUP, "g1", &c2, &err), &err, "get");
    assert_string_equal(c2.etag, b.etag);
    assert_int_equal(c2.att_type, HUB_DPS_ATT_X509);
    hub_dps_enrollment_clear(&c2);
    ok(hub_dps_enrollment_delete(fx->dps, HUB_DPS_GROUP, "g1", b.etag, &err), &err, "delete");
    ok(hub_dps_enrollment_create(fx->dps, &in, &c1, &err), &err, "create after delete");
    assert_int_equal(c1.att_type, HUB_DPS_ATT_SYMMETRIC_KEY);
    assert_true(c1.primary_key[0] != '\0');
    hub_dps_enrollment_clear(&in);
    hub_dps_enrollment_clear(&c1);
    hub_dps_enrollment_clear(&a);
    hub_dps_enrollment_clear(&b);
}

static void test_parse_refusals(void **state)
{
    struct fx *fx = *state;
    static const struct {
        enum hub_dps_kind kind;
        const char *json;
        int rc;
        const char *msg;
    } cases[] = {
        {HUB_DPS_GROUP, "not json", HUB_E_PARSE, "not JSON"},
        {HUB_DPS_GROUP, "[]", HUB_E_INVALID_ARG, "object"},
        {HUB_DPS_GROUP, "{}", HUB_E_INVALID_ARG, "attestation"},
        {HUB_DPS_GROUP, "{\"attestation\":{\"type\":\"tpm\"}}", HUB_E_INVALID_ARG, "type"},
        {HUB_DPS_GROUP, "{\"attestation\":{\"type\":\"x509\",\"x509\":{}}}", HUB_E_INVALID_ARG,
         "signingCertificates"},
        {HUB_DPS_GROUP,
         "{\"attestation\":{\"type\":\"x509\",\"x509\":{\"signingCertificates\":{\"primary\":"
         "{\"certificate\":\"junk\"}}}}}",
         HUB_E_INVALID_ARG, "certificate does not load"},
        {HUB_DPS_GROUP,
         "{\"enrollmentGroupId\":\"other\",\"attestation\":{\"type\":\"symmetricKey\"}}",
         HUB_E_INVALID_ARG, "differs"},
        {HUB_DPS_GROUP,
         "{\"attestation\":{\"type\":\"symmetricKey\",\"symmetricKey\":{\"primaryKey\":\"abc\"}}}",
         HUB_E_INVALID_ARG, "both"},
        {HUB_DPS_GROUP,
         "{\"attestation\":{\"type\":\"symmetricKey\"},\"provisioningStatus\":\"maybe\"}",
         HUB_E_INVALID_ARG, "provisioningStatus"},
        {HUB_DPS_GROUP, "{\"attestation\":{\"type\":\"symmetricKey\"},\"initialTwin\":[]}",
         HUB_E_INVALID_ARG, "initialTwin"},
        /* The twin's own rules, judged when the enrollment is written: tags
         * deeper than 5 levels, a '$' key in desired. */
        {HUB_DPS_GROUP,
         "{\"attestation\":{\"type\":\"symmetricKey\"},\"initialTwin\":{\"tags\":"
         "{\"a\":{\"b\":{\"c\":{\"d\":{\"e\":{\"f\":1}}}}}}}}",
         HUB_E_INVALID_ARG, "initialTwin: "},
        {HUB_DPS_GROUP,
         "{\"attestation\":{\"type\":\"symmetricKey\"},\"initialTwin\":{\"properties\":"
         "{\"desired\":{\"$bad\":1}}}}",
         HUB_E_INVALID_ARG, "initialTwin: "},
        {HUB_DPS_INDIVIDUAL, "{\"attestation\":{\"type\":\"x509\",\"x509\":{}}}", HUB_E_INVALID_ARG,
         "clientCertificates"},
        {HUB_DPS_INDIVIDUAL,
         "{\"attestation\":{\"type\":\"x509\",\"x509\":{\"clientCertificates\":{\"primary\":"
         "{\"info\":{\"sha1Thumbprint\":\"XYZ\"}}}}}}",
         HUB_E_INVALID_ARG, "thumbprint"},
    };
    (void)fx;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct hub_dps_enrollment e;
        struct hub_err err = {0};
        int rc = hub_dps_enrollment_parse(cases[i].kind, "g1", cases[i].json, strlen(cases[i].json),
                                          &e, &err);
        if (rc != cases[i].rc || strstr(err.msg, cases[i].msg) == NULL)
            fail_msg("case %zu: rc %d (%s), want %d containing '%s'", i, rc, err.msg, cases[i].rc,
                     cases[i].msg);
    }
    struct hub_err err = {0};
    assert_int_equal(hub_dps_id_check("Dev1", &err), HUB_E_INVALID_ARG);
    assert_int_equal(hub_dps_id_check("dev-1.a_b", &err), 0);
}

static void test_id_scope_format(void **state)
{
    (void)state;
    char a[HUB_DPS_ID_SCOPE_SIZE], b[HUB_DPS_ID_SCOPE_SIZE];
    struct hub_err err = {0};
    ok(hub_dps_id_scope_generate(a, &err), &err, "scope");
    ok(hub_dps_id_scope_generate(b, &err), &err, "scope");
    assert_int_equal(strlen(a), 11);
    assert_memory_equal(a, "0ne", 3);
    for (size_t i = 3; i < 11; i++)
        assert_true((a[i] >= '0' && a[i] <= '9') || (a[i] >= 'A' && a[i] <= 'F'));
    assert_string_not_equal(a, b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_nearest_group_wins, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_individual_beats_group, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_refusals, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_inline_signer_must_chain_to_verified_ca, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_ca_references, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_symmetric_group_derived_keys, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_assign_never_takes_over_another_device, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_assign_create_then_reprovision, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_assign_no_hub_update_keeps_everything, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_assign_refuses_a_refused_match, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_leaf_usable_table, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_pinned_self_signed_by_certificate, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_pinned_by_thumbprint_and_secondary, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_pinned_refusals, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_valid_chain_with_individual_is_pinned, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_pinned_never_rescues_revoked, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_enrollment_etags_and_round_trip, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_parse_refusals, fx_setup, fx_teardown),
        cmocka_unit_test(test_id_scope_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
