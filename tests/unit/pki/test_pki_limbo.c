/*
 * Runs every x509-limbo case (tests/vectors/x509-limbo/cases.jsonl, see its
 * README) through hub_pki_chain_verify and fails on any disagreement with
 * the expected result that is not in `known_disagreements` below. That table
 * must match the one in docs/security.md, "x509-limbo results".
 *
 * Also bounds time: the whole run (dos cases included) must stay well under
 * HUB_LIMBO_MAX_SECONDS even under ASan.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <jansson.h>
#include <openssl/pem.h>

#include "pki/pki.h"

/* Bounds on CPU time (not wall-clock: CI machines are shared), generous
 * enough for ASan (~0.7 s for the whole run there) yet far below what an
 * unbounded path search on the DoS cases would take. */
#define HUB_LIMBO_MAX_SECONDS      10.0
#define HUB_LIMBO_MAX_CASE_SECONDS 2.0

/* Deliberate policy choices that differ from upstream's expectation. Keep in
 * sync with docs/security.md. */
static const struct {
    const char *id;
    const char *reason;
} known_disagreements[] = {
    {"rfc5280::ca-as-leaf",
     "hub policy: a leaf (device) certificate with basicConstraints CA:TRUE is refused"},
    {"pathlen::validation-ignores-pathlen-in-leaf",
     "hub policy: the leaf of this chain is a CA certificate (CA:TRUE), which is refused"},
    {"webpki::v1-cert",
     "hub policy: X.509 v1 device certificates (no extensions) are accepted as leaves, as Azure "
     "IoT Hub does"},
    {"rfc5280::aki::cross-signed-root-missing-aki",
     "hub policy: a trust anchor's own AKI is not required (its issuer is never looked up); "
     "upstream tags this pedantic-rfc5280, and cve::cve-2024-0567 needs the same exemption"},
};
#define N_KNOWN (sizeof(known_disagreements) / sizeof(known_disagreements[0]))

static const char *known_reason(const char *id)
{
    for (size_t i = 0; i < N_KNOWN; i++)
        if (strcmp(known_disagreements[i].id, id) == 0)
            return known_disagreements[i].reason;
    return NULL;
}

static X509 *pem_cert(const char *pem)
{
    BIO *b = BIO_new_mem_buf(pem, -1);
    if (b == NULL)
        return NULL;
    X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
    BIO_free(b);
    return x;
}

/* Loads a JSON array of PEM strings. -1 if any certificate does not parse. */
static int pem_array(json_t *arr, STACK_OF(X509) * out)
{
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        X509 *x = json_is_string(v) ? pem_cert(json_string_value(v)) : NULL;
        if (x == NULL || !sk_X509_push(out, x)) {
            X509_free(x);
            return -1;
        }
    }
    return 0;
}

/* RFC 3339 UTC ("2024-04-01T00:00:00.005+00:00"); fractions are floored. */
static int64_t parse_time(const char *s)
{
    int y, mo, d, h, mi, sec;
    assert_int_equal(sscanf(s, "%d-%d-%dT%d:%d:%d", &y, &mo, &d, &h, &mi, &sec), 6);
    assert_non_null(strstr(s, "+00:00"));
    struct tm tm = {0};
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    return (int64_t)timegm(&tm);
}

static enum hub_pki_eku parse_eku(json_t *arr)
{
    if (json_array_size(arr) == 0)
        return HUB_PKI_EKU_NONE;
    assert_int_equal(json_array_size(arr), 1);
    const char *name = json_string_value(json_array_get(arr, 0));
    assert_non_null(name);
    if (strcmp(name, "clientAuth") == 0)
        return HUB_PKI_EKU_CLIENT_AUTH;
    if (strcmp(name, "serverAuth") == 0)
        return HUB_PKI_EKU_SERVER_AUTH;
    assert_string_equal(name, "anyExtendedKeyUsage");
    return HUB_PKI_EKU_ANY;
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Runs one case; returns 1 if our verdict is SUCCESS. */
static int run_case(json_t *c, struct hub_err *err, double *seconds)
{
    int ok = 0;
    STACK_OF(X509) *trusted = sk_X509_new_null();
    STACK_OF(X509) *untrusted = sk_X509_new_null();
    assert_non_null(trusted);
    assert_non_null(untrusted);
    struct hub_pki_trust *trust = NULL;
    X509 *leaf = pem_cert(json_string_value(json_object_get(c, "peer_certificate")));

    struct hub_pki_verify_opts opts = {0};
    json_t *vt = json_object_get(c, "validation_time");
    opts.at = json_is_string(vt) ? parse_time(json_string_value(vt)) : (int64_t)time(NULL);
    opts.eku = parse_eku(json_object_get(c, "extended_key_usage"));
    json_t *md = json_object_get(c, "max_chain_depth");
    opts.max_depth = json_is_integer(md) ? (int)json_integer_value(md) : -1;
    if (opts.max_depth > 16)
        opts.max_depth = 16; /* the API's ceiling; a larger limit changes nothing */

    hub_err_clear(err);
    double t0 = now_seconds();
    /* A certificate OpenSSL cannot parse never gets past the TLS stack or the
     * CA upload: that case's verdict is FAILURE. */
    if (leaf == NULL) {
        snprintf(err->msg, sizeof(err->msg), "leaf does not parse");
        goto out_free;
    }
    if (pem_array(json_object_get(c, "trusted_certs"), trusted) != 0) {
        snprintf(err->msg, sizeof(err->msg), "a trusted certificate does not parse");
        goto out_free;
    }
    if (pem_array(json_object_get(c, "untrusted_intermediates"), untrusted) != 0) {
        snprintf(err->msg, sizeof(err->msg), "an intermediate does not parse");
        goto out_free;
    }
    assert_int_equal(hub_pki_trust_new(trusted, &trust, err), 0);
    ok = hub_pki_chain_verify(trust, leaf, untrusted, &opts, err) == 0;
    if (!ok) {
        /* a refusal is always a negative code with a message */
        assert_true(err->code < 0);
        assert_true(err->msg[0] != '\0');
    }

out_free:
    *seconds = now_seconds() - t0;
    hub_pki_trust_free(trust);
    X509_free(leaf);
    sk_X509_pop_free(untrusted, X509_free);
    sk_X509_pop_free(trusted, X509_free);
    return ok;
}

static void test_limbo_cases(void **state)
{
    (void)state;
    const char *src = getenv("HUB_SOURCE_DIR");
    assert_non_null(src);
    char path[4096];
    snprintf(path, sizeof(path), "%s/tests/vectors/x509-limbo/cases.jsonl", src);
    FILE *f = fopen(path, "r");
    assert_non_null(f);

    int agree = 0, known = 0, unexpected = 0, total = 0;
    int known_seen[N_KNOWN] = {0};
    double t_start = now_seconds(), worst = 0;
    const char *worst_id_c = NULL;
    char worst_id[256] = "";
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {
        if (line[0] == '\n' || line[0] == '\0')
            continue;
        json_error_t jerr;
        json_t *c = json_loads(line, 0, &jerr);
        if (c == NULL)
            fail_msg("cases.jsonl line %d: %s", total + 1, jerr.text);
        const char *id = json_string_value(json_object_get(c, "id"));
        const char *expected = json_string_value(json_object_get(c, "expected_result"));
        assert_non_null(id);
        assert_non_null(expected);
        total++;

        struct hub_err err;
        double secs = 0;
        int ok = run_case(c, &err, &secs);
        if (secs > worst) {
            worst = secs;
            snprintf(worst_id, sizeof(worst_id), "%s", id);
            worst_id_c = worst_id;
        }
        int want = strcmp(expected, "SUCCESS") == 0;
        const char *reason = known_reason(id);
        if (ok == want && reason == NULL) {
            agree++;
        } else if (ok != want && reason != NULL) {
            known++;
            for (size_t i = 0; i < N_KNOWN; i++)
                known_seen[i] |= strcmp(known_disagreements[i].id, id) == 0;
        } else if (ok != want) {
            unexpected++;
            printf("limbo: UNEXPECTED %s: expected %s, got %s (%s: %s)\n", id, expected,
                   ok ? "SUCCESS" : "FAILURE", ok ? "OK" : hub_err_name(err.code),
                   ok ? "" : err.msg);
        } else {
            /* listed as a disagreement but now agrees: the table is stale */
            unexpected++;
            printf("limbo: STALE known disagreement %s now agrees (%s)\n", id, expected);
        }
        if (getenv("HUB_LIMBO_VERBOSE") != NULL)
            printf("limbo: %s %s -> %s %s\n", id, expected, ok ? "SUCCESS" : "FAILURE",
                   ok ? "" : err.msg);
        json_decref(c);
    }
    free(line);
    fclose(f);
    double elapsed = now_seconds() - t_start;

    printf("limbo: %d agree, %d known disagreements, %d unexpected (%d cases, %.3f s, slowest "
           "%s %.3f s)\n",
           agree, known, unexpected, total, elapsed, worst_id_c ? worst_id_c : "-", worst);
    assert_int_equal(total, 153);
    assert_int_equal(unexpected, 0);
    for (size_t i = 0; i < N_KNOWN; i++)
        if (!known_seen[i])
            fail_msg("known disagreement %s is not in cases.jsonl", known_disagreements[i].id);
    assert_true(elapsed < HUB_LIMBO_MAX_SECONDS);
    assert_true(worst < HUB_LIMBO_MAX_CASE_SECONDS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_limbo_cases),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
