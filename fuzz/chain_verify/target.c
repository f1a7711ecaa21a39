/*
 * libFuzzer target: the chain validator, hub_pki_chain_verify, fed the
 * certificate sets a device (the leaf and whatever it presents besides) and an
 * operator (the registered CAs) can make it look at.
 *
 * Input format (corpus/ holds x509-limbo chains and hub-shaped chains in it):
 *   byte 0   options: bits 0-1 required EKU (clientAuth, serverAuth, any,
 *            none), bits 2-3 number of anchors - 1, bits 4-5 max_depth (-1,
 *            0, 1, 8), bits 6-7 validation time (2027-01-15, 2023-07-10,
 *            2022-01-01, 2024-03-01);
 *   then     up to MAX_BLOBS records of a 2-byte big-endian length and that
 *            many bytes of DER, each parsed with d2i_X509 (records that do
 *            not parse are dropped). The first certificate is the leaf, the
 *            next 1..4 are the anchors, the rest are the untrusted set.
 * Checked on every run:
 *   - the verify returns in bounded time: at most VERIFY_CPU_MAX_S of CPU
 *     (the validator has work caps; the slowest x509-limbo case takes about
 *     80 ms under ASan), and never crashes;
 *   - it returns 0 or a negative code with err.code equal to it and a
 *     message; verifying again gives the same answer (no hidden state);
 *   - an accepted leaf is not a CA (the hub's profile) and is within its
 *     validity period at the validation time.
 * A violated check calls abort() so libFuzzer saves the input.
 *
 * Not part of the CMake build: `make fuzz` (scripts/fuzz) builds it with
 * clang -fsanitize=fuzzer,address,undefined from this file, every .c of
 * src/pki, src/common/err.c and util.c, linking OpenSSL.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/x509.h>

#include "pki/pki.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

#define MAX_BLOBS        64
#define VERIFY_CPU_MAX_S 2.0

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int verify_timed(const struct hub_pki_trust *trust, X509 *leaf, STACK_OF(X509) * untrusted,
                        const struct hub_pki_verify_opts *opts, struct hub_err *err)
{
    double t0 = cpu_now();
    int rc = hub_pki_chain_verify(trust, leaf, untrusted, opts, err);
    CHECK(cpu_now() - t0 <= VERIFY_CPU_MAX_S);
    ERR_clear_error();
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const enum hub_pki_eku ekus[] = {HUB_PKI_EKU_CLIENT_AUTH, HUB_PKI_EKU_SERVER_AUTH,
                                            HUB_PKI_EKU_ANY, HUB_PKI_EKU_NONE};
    static const int depths[] = {-1, 0, 1, 8};
    static const int64_t times[] = {1800000000, 1688947200, 1640995200, 1709251200};
    if (size < 1)
        return 0;
    uint8_t o = data[0];
    struct hub_pki_verify_opts opts = {
        .at = times[(o >> 6) & 3],
        .eku = ekus[o & 3],
        .max_depth = depths[(o >> 4) & 3],
    };
    int n_anchors = 1 + ((o >> 2) & 3);

    X509 *leaf = NULL;
    STACK_OF(X509) *anchors = sk_X509_new_null();
    STACK_OF(X509) *untrusted = sk_X509_new_null();
    CHECK(anchors != NULL && untrusted != NULL);
    size_t off = 1;
    for (int blobs = 0; blobs < MAX_BLOBS && size - off >= 2; blobs++) {
        size_t len = (size_t)data[off] << 8 | data[off + 1];
        off += 2;
        if (len > size - off)
            len = size - off;
        /* each blob in its own allocation: ASan sees d2i reading past it */
        unsigned char *der = malloc(len ? len : 1);
        CHECK(der != NULL);
        memcpy(der, data + off, len);
        off += len;
        const unsigned char *p = der;
        X509 *c = d2i_X509(NULL, &p, (long)len);
        free(der);
        ERR_clear_error();
        if (c == NULL)
            continue;
        if (leaf == NULL)
            leaf = c;
        else if (sk_X509_num(anchors) < n_anchors)
            CHECK(sk_X509_push(anchors, c) > 0);
        else
            CHECK(sk_X509_push(untrusted, c) > 0);
    }
    if (leaf == NULL || sk_X509_num(anchors) == 0)
        goto free_certs;

    struct hub_pki_trust *trust = NULL;
    struct hub_err err = {0};
    int rc = hub_pki_trust_new(anchors, &trust, &err);
    ERR_clear_error();
    if (rc != 0) {
        CHECK(rc < 0 && err.code == rc && trust == NULL);
        goto free_certs;
    }
    hub_err_clear(&err);
    rc = verify_timed(trust, leaf, untrusted, &opts, &err);
    if (rc != 0)
        CHECK(rc < 0 && err.code == rc && err.msg[0] != '\0');
    struct hub_err again = {0};
    CHECK(verify_timed(trust, leaf, untrusted, &opts, &again) == rc);
    if (rc == 0) {
        CHECK(hub_pki_cert_is_ca(leaf) == 0);
        int64_t nb = 0, na = 0;
        if (hub_pki_cert_validity(leaf, &nb, &na, NULL) == 0)
            CHECK(nb <= opts.at && opts.at <= na);
    }
    /* no untrusted set at all: the NULL form must work too */
    (void)verify_timed(trust, leaf, NULL, &opts, NULL);
    hub_pki_trust_free(trust);
free_certs:
    X509_free(leaf);
    sk_X509_pop_free(anchors, X509_free);
    sk_X509_pop_free(untrusted, X509_free);
    ERR_clear_error();
    return 0;
}
