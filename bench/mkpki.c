/*
 * `hubbench mkpki DIR N`: the benchmark's PKI, made in-process because
 * forking hubctl 1,000+ times costs more than the benchmark itself.
 *
 * Same profile as hubctl's (src/pki/pki_issue.c), all keys EC P-256, SHA-256:
 *   file                 what                                   extensions
 *   root.pem/.key        self-signed "Bench Root CA"            CA:TRUE (crit), keyCertSign+cRLSign
 *   int.pem/.key         "Bench Int CA", signed by root         CA:TRUE,pathlen:0, same KU
 *   ca-chain.pem         root + int (a broker's cafile)
 *   server.pem/.key      CN=localhost, SAN localhost+127.0.0.1  serverAuth, signed by root
 *   dev-NNNNN.pem/.key   leaf CN=dev-NNNNN + int (the chain)    CA:FALSE, digitalSignature,
 * clientAuth Writes are plain fopen/PEM_write; an existing DIR is overwritten.
 */
#include "hubbench.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#define VALID_DAYS 3650

enum kind { K_ROOT, K_INT, K_SERVER, K_DEVICE };

static EVP_PKEY *key_new(void)
{
    return EVP_EC_gen("P-256");
}

static int ext_add(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (ext == NULL)
        return -1;
    int ok = X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
    return ok == 1 ? 0 : -1;
}

/* A certificate for `key` named `cn`, signed by issuer_key (self-signed when
 * issuer is NULL). Returns NULL on failure. */
static X509 *cert_issue(enum kind kind, const char *cn, EVP_PKEY *key, X509 *issuer,
                        EVP_PKEY *issuer_key, long serial)
{
    X509 *x = X509_new();
    if (x == NULL)
        return NULL;
    X509_NAME *name = X509_NAME_new();
    int ok = name != NULL && X509_set_version(x, 2) == 1 &&
             ASN1_INTEGER_set(X509_get_serialNumber(x), serial) == 1 &&
             X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1,
                                        -1, 0) == 1 &&
             X509_set_subject_name(x, name) == 1 &&
             X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name) == 1 &&
             X509_gmtime_adj(X509_getm_notBefore(x), -3600) != NULL &&
             X509_gmtime_adj(X509_getm_notAfter(x), (long)VALID_DAYS * 86400) != NULL &&
             X509_set_pubkey(x, key) == 1;
    X509_NAME_free(name);
    X509 *iss = issuer ? issuer : x;
    if (ok) {
        switch (kind) {
        case K_ROOT:
        case K_INT:
            ok = ext_add(x, iss, NID_basic_constraints,
                         kind == K_ROOT ? "critical,CA:TRUE" : "critical,CA:TRUE,pathlen:0") == 0 &&
                 ext_add(x, iss, NID_key_usage, "critical,keyCertSign,cRLSign") == 0;
            break;
        case K_SERVER:
            ok = ext_add(x, iss, NID_basic_constraints, "critical,CA:FALSE") == 0 &&
                 ext_add(x, iss, NID_key_usage, "critical,digitalSignature") == 0 &&
                 ext_add(x, iss, NID_ext_key_usage, "serverAuth") == 0 &&
                 ext_add(x, iss, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1") == 0;
            break;
        case K_DEVICE:
            ok = ext_add(x, iss, NID_basic_constraints, "critical,CA:FALSE") == 0 &&
                 ext_add(x, iss, NID_key_usage, "critical,digitalSignature") == 0 &&
                 ext_add(x, iss, NID_ext_key_usage, "clientAuth") == 0;
            break;
        }
    }
    ok = ok && ext_add(x, iss, NID_subject_key_identifier, "hash") == 0;
    if (ok && issuer != NULL)
        ok = ext_add(x, iss, NID_authority_key_identifier, "keyid:always") == 0;
    if (ok)
        ok = X509_sign(x, issuer_key, EVP_sha256()) > 0;
    if (!ok) {
        X509_free(x);
        return NULL;
    }
    return x;
}

/* Writes certs[0..n) to DIR/NAME.pem and, when key is set, DIR/NAME.key (0600). */
static int write_pem(const char *dir, const char *name, X509 *const *certs, int n, EVP_PKEY *key)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s.pem", dir, name);
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        fprintf(stderr, "hubbench mkpki: %s: %s\n", path, strerror(errno));
        return -1;
    }
    int ok = 1;
    for (int i = 0; i < n && ok; i++)
        ok = PEM_write_X509(f, certs[i]) == 1;
    ok = fclose(f) == 0 && ok;
    if (ok && key != NULL) {
        snprintf(path, sizeof(path), "%s/%s.key", dir, name);
        f = fopen(path, "w");
        ok = f != NULL;
        if (ok) {
            (void)chmod(path, 0600);
            ok = PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) == 1;
            ok = fclose(f) == 0 && ok;
        }
    }
    if (!ok)
        fprintf(stderr, "hubbench mkpki: cannot write %s\n", path);
    return ok ? 0 : -1;
}

int hubbench_mkpki_main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: hubbench mkpki DIR N\n");
        return 1;
    }
    const char *dir = argv[1];
    char *end;
    long n = strtol(argv[2], &end, 10);
    if (*end != '\0' || n < 1 || n > 99999) {
        fprintf(stderr, "hubbench mkpki: N must be 1..99999\n");
        return 1;
    }
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "hubbench mkpki: %s: %s\n", dir, strerror(errno));
        return 1;
    }
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = 1;
    EVP_PKEY *root_key = key_new(), *int_key = key_new(), *srv_key = key_new();
    X509 *root = NULL, *inter = NULL, *srv = NULL;
    if (root_key == NULL || int_key == NULL || srv_key == NULL)
        goto free_keys;
    root = cert_issue(K_ROOT, "Bench Root CA", root_key, NULL, root_key, 1);
    inter = root ? cert_issue(K_INT, "Bench Int CA", int_key, root, root_key, 2) : NULL;
    srv = root ? cert_issue(K_SERVER, "localhost", srv_key, root, root_key, 3) : NULL;
    if (inter == NULL || srv == NULL) {
        fprintf(stderr, "hubbench mkpki: issuing the CA certificates failed\n");
        goto free_certs;
    }
    X509 *both[2] = {root, inter};
    if (write_pem(dir, "root", &root, 1, root_key) != 0 ||
        write_pem(dir, "int", &inter, 1, int_key) != 0 ||
        write_pem(dir, "ca-chain", both, 2, NULL) != 0 ||
        write_pem(dir, "server", &srv, 1, srv_key) != 0)
        goto free_certs;
    for (long i = 1; i <= n; i++) {
        char id[32];
        snprintf(id, sizeof(id), HUBBENCH_DEVICE_FMT, (int)i);
        EVP_PKEY *k = key_new();
        X509 *leaf = k ? cert_issue(K_DEVICE, id, k, inter, int_key, 1000 + i) : NULL;
        X509 *chain[2] = {leaf, inter};
        int ok = leaf != NULL && write_pem(dir, id, chain, 2, k) == 0;
        X509_free(leaf);
        EVP_PKEY_free(k);
        if (!ok) {
            fprintf(stderr, "hubbench mkpki: device %s failed\n", id);
            goto free_certs;
        }
    }
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("hubbench mkpki: %s: root, intermediate, server and %ld devices in %.1f s\n", dir, n,
           (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    rc = 0;
free_certs:
    X509_free(srv);
    X509_free(inter);
    X509_free(root);
free_keys:
    EVP_PKEY_free(srv_key);
    EVP_PKEY_free(int_key);
    EVP_PKEY_free(root_key);
    return rc;
}

/* The chain micro-benchmark's root -> intermediate -> leaf, in memory. */
int hubbench_chain_make(X509 **root, X509 **inter, X509 **leaf)
{
    EVP_PKEY *rk = key_new(), *ik = key_new(), *lk = key_new();
    *root = rk ? cert_issue(K_ROOT, "Bench Root CA", rk, NULL, rk, 1) : NULL;
    *inter = *root && ik ? cert_issue(K_INT, "Bench Int CA", ik, *root, rk, 2) : NULL;
    *leaf = *inter && lk ? cert_issue(K_DEVICE, "dev-00001", lk, *inter, ik, 3) : NULL;
    EVP_PKEY_free(rk);
    EVP_PKEY_free(ik);
    EVP_PKEY_free(lk);
    return *leaf != NULL ? 0 : -1;
}
