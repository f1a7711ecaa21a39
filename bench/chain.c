/*
 * `hubbench chain`: the device chain validator alone, per call, on a 3-level
 * chain (root anchor -> intermediate -> leaf, EC P-256): hubd's
 * hub_pki_chain_verify against plain X509_verify_cert with the same anchor.
 * Built only with hub_pki (HUBBENCH_WITH_PKI); the certificates are made in
 * memory so the figure never depends on a file system.
 */
#include "hubbench.h"

#include <stdio.h>

#ifndef HUBBENCH_WITH_PKI
int hubbench_chain_main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "hubbench chain: built without hub_pki\n");
    return 1;
}
#else
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include "pki/pki.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int hubbench_chain_main(int argc, char **argv)
{
    double seconds = 1.0;
    if (argc >= 3 && strcmp(argv[1], "--seconds") == 0)
        seconds = atof(argv[2]);
    X509 *root = NULL, *inter = NULL, *leaf = NULL;
    if (hubbench_chain_make(&root, &inter, &leaf) != 0) {
        fprintf(stderr, "hubbench chain: cannot make the chain\n");
        return 1;
    }
    STACK_OF(X509) *anchors = sk_X509_new_null(), *untrusted = sk_X509_new_null();
    sk_X509_push(anchors, root);
    sk_X509_push(untrusted, inter);
    struct hub_err err = {0};
    struct hub_pki_trust *trust = NULL;
    int rc = 1;
    if (hub_pki_trust_new(anchors, &trust, &err) != 0) {
        fprintf(stderr, "hubbench chain: trust: %s\n", err.msg);
        goto free_stacks;
    }
    struct hub_pki_verify_opts vo = {
        .at = (int64_t)time(NULL), .eku = HUB_PKI_EKU_CLIENT_AUTH, .max_depth = -1};
    if (hub_pki_chain_verify(trust, leaf, untrusted, &vo, &err) != 0) {
        fprintf(stderr, "hubbench chain: hub_pki_chain_verify refuses the chain: %s\n", err.msg);
        goto free_trust;
    }
    /* Repeated on one trust: the validator's memo answers (pki_verify.c),
     * what a device that reconnects with the same chain costs. */
    long n1 = 0;
    double t0 = now_s(), t;
    do {
        for (int k = 0; k < 64; k++)
            if (hub_pki_chain_verify(trust, leaf, untrusted, &vo, &err) == 0)
                n1++;
        t = now_s();
    } while (t - t0 < seconds);
    double memo_us = (t - t0) * 1e6 / (double)n1;
    /* Cold: a fresh trust (empty memo) per call, only the verify timed: the
     * whole path search with every signature, as for a chain never seen. */
    long n0 = 0;
    double cold = 0;
    t0 = now_s();
    do {
        struct hub_pki_trust *fresh = NULL;
        if (hub_pki_trust_new(anchors, &fresh, &err) != 0)
            break;
        double c0 = now_s();
        if (hub_pki_chain_verify(fresh, leaf, untrusted, &vo, &err) == 0)
            n0++;
        cold += now_s() - c0;
        hub_pki_trust_free(fresh);
        t = now_s();
    } while (t - t0 < seconds);
    double hub_us = n0 > 0 ? cold * 1e6 / (double)n0 : -1;

    X509_STORE *store = X509_STORE_new();
    X509_STORE_add_cert(store, root);
    X509_STORE_CTX *sc = X509_STORE_CTX_new();
    long n2 = 0, bad = 0;
    t0 = now_s();
    do {
        for (int k = 0; k < 64; k++) {
            X509_STORE_CTX_init(sc, store, leaf, untrusted);
            X509_STORE_CTX_set_purpose(sc, X509_PURPOSE_SSL_CLIENT);
            if (X509_verify_cert(sc) == 1)
                n2++;
            else
                bad++;
            X509_STORE_CTX_cleanup(sc);
        }
        t = now_s();
    } while (t - t0 < seconds);
    double ossl_us = (t - t0) * 1e6 / (double)(n2 + bad);
    printf("hubbench chain: 3-level chain (root anchor, intermediate, leaf; EC P-256)\n");
    printf("  hub_pki_chain_verify   %.1f us per call, cold (%ld calls)\n", hub_us, n0);
    printf("  hub_pki_chain_verify   %.1f us per call, same chain again (memo; %ld calls)\n",
           memo_us, n1);
    printf("  X509_verify_cert       %.1f us per call (%ld calls, %ld refused)\n", ossl_us,
           n2 + bad, bad);
    printf("RESULT mode=chain hub_us=%.2f hub_memo_us=%.2f openssl_us=%.2f ratio=%.2f\n", hub_us,
           memo_us, ossl_us, hub_us / ossl_us);
    rc = bad == 0 ? 0 : 1;
    X509_STORE_CTX_free(sc);
    X509_STORE_free(store);
free_trust:
    hub_pki_trust_free(trust);
free_stacks:
    sk_X509_free(anchors);
    sk_X509_free(untrusted);
    X509_free(leaf);
    X509_free(inter);
    X509_free(root);
    return rc;
}
#endif
