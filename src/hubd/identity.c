#include "hubd/identity.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/x509v3.h>

#include "pki/pki.h"

#define SERVER_RENEW_BEFORE_S (30 * 86400)
#define HUB_CA_DAYS           3650
#define SERVER_DAYS           397
#define MAX_SANS              64

static int path_join(char *out, const char *dir, const char *name, struct hub_err *err)
{
    int n = snprintf(out, HUB_IDENTITY_PATH_MAX, "%s/%s", dir, name);
    if (n < 0 || n >= HUB_IDENTITY_PATH_MAX)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "path too long: %s/%s", dir, name);
    return 0;
}

static int file_exists(const char *path)
{
    return access(path, F_OK) == 0;
}

/* The SAN list every server certificate must carry. */
static size_t wanted_sans(const char *const *hostnames, size_t count, const char **out)
{
    size_t n = 0;
    out[n++] = "DNS:localhost";
    out[n++] = "IP:127.0.0.1";
    out[n++] = "IP:::1";
    for (size_t i = 0; i < count && n < MAX_SANS; i++)
        out[n++] = hostnames[i]; /* pki picks DNS or IP by form */
    return n;
}

static int san_matches(X509 *cert, const char *san)
{
    const char *value = san;
    int want_ip = 0;
    if (strncmp(san, "DNS:", 4) == 0) {
        value = san + 4;
    } else if (strncmp(san, "IP:", 3) == 0) {
        value = san + 3;
        want_ip = 1;
    } else {
        unsigned char buf[16];
        want_ip = inet_pton(AF_INET, san, buf) == 1 || inet_pton(AF_INET6, san, buf) == 1;
    }
    if (want_ip)
        return X509_check_ip_asc(cert, value, 0) == 1;
    return X509_check_host(cert, value, 0, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS, NULL) == 1;
}

static int server_cert_current(const char *path, const char **sans, size_t nsans)
{
    STACK_OF(X509) *chain = NULL;
    if (hub_pki_certs_load_file(path, &chain, NULL) != 0)
        return 0;
    X509 *cert = sk_X509_value(chain, 0); /* the server certificate leads the chain */
    int ok = 1;
    int64_t nb = 0, na = 0;
    if (hub_pki_cert_validity(cert, &nb, &na, NULL) != 0 ||
        na - (int64_t)time(NULL) < SERVER_RENEW_BEFORE_S)
        ok = 0;
    for (size_t i = 0; ok && i < nsans; i++)
        ok = san_matches(cert, sans[i]);
    sk_X509_pop_free(chain, X509_free);
    return ok;
}

static int make_hub_ca(const struct hub_identity *id, const char *ca_key_file, struct hub_err *err)
{
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    int rc = hub_pki_key_generate(HUB_PKI_KEY_EC_P256, &key, err);
    if (rc != 0)
        return rc;
    struct hub_pki_issue_params p = {.kind = HUB_PKI_CERT_ROOT,
                                     .common_name = "hubd CA",
                                     .days = HUB_CA_DAYS,
                                     .pathlen = 0,
                                     .subject_key = key};
    rc = hub_pki_cert_issue(&p, &cert, err);
    if (rc == 0)
        rc = hub_pki_key_write_file(key, ca_key_file, err);
    if (rc == 0)
        rc = hub_pki_certs_write_file(&cert, 1, id->ca_file, err);
    X509_free(cert);
    EVP_PKEY_free(key);
    return rc;
}

static int make_server_cert(const struct hub_identity *id, const char *ca_key_file,
                            const char **sans, size_t nsans, struct hub_err *err)
{
    X509 *ca = NULL, *cert = NULL;
    EVP_PKEY *ca_key = NULL, *key = NULL;
    int rc = hub_pki_cert_load_file(id->ca_file, &ca, err);
    if (rc == 0)
        rc = hub_pki_key_load_file(ca_key_file, &ca_key, err);
    if (rc == 0)
        rc = hub_pki_key_generate(HUB_PKI_KEY_EC_P256, &key, err);
    if (rc == 0) {
        struct hub_pki_issue_params p = {.kind = HUB_PKI_CERT_SERVER,
                                         .common_name = "localhost",
                                         .days = SERVER_DAYS,
                                         .pathlen = -1,
                                         .sans = sans,
                                         .sans_count = nsans,
                                         .issuer_cert = ca,
                                         .issuer_key = ca_key,
                                         .subject_key = key};
        rc = hub_pki_cert_issue(&p, &cert, err);
    }
    /* Key first: a chain file without its key would be a broken identity. */
    if (rc == 0)
        rc = hub_pki_key_write_file(key, id->server_key_file, err);
    if (rc == 0) {
        X509 *chain[2] = {cert, ca};
        rc = hub_pki_certs_write_file(chain, 2, id->server_chain_file, err);
    }
    X509_free(cert);
    EVP_PKEY_free(key);
    EVP_PKEY_free(ca_key);
    X509_free(ca);
    return rc;
}

int hub_identity_ensure(const char *data_dir, const char *const *hostnames, size_t hostname_count,
                        struct hub_identity *out, struct hub_err *err)
{
    memset(out, 0, sizeof(*out));
    char tls_dir[HUB_IDENTITY_PATH_MAX], ca_key_file[HUB_IDENTITY_PATH_MAX];
    int rc = path_join(tls_dir, data_dir, "tls", err);
    if (rc == 0)
        rc = path_join(out->ca_file, tls_dir, "hub-ca.pem", err);
    if (rc == 0)
        rc = path_join(ca_key_file, tls_dir, "hub-ca.key", err);
    if (rc == 0)
        rc = path_join(out->server_chain_file, tls_dir, "server.pem", err);
    if (rc == 0)
        rc = path_join(out->server_key_file, tls_dir, "server.key", err);
    if (rc != 0)
        return rc;
    if (mkdir(tls_dir, 0700) != 0 && errno != EEXIST)
        return HUB_ERR(err, HUB_E_IO, "cannot create %s: %s", tls_dir, strerror(errno));

    if (!file_exists(out->ca_file) || !file_exists(ca_key_file)) {
        rc = make_hub_ca(out, ca_key_file, err);
        if (rc != 0)
            return rc;
        out->created = 1;
    }
    const char *sans[MAX_SANS];
    size_t nsans = wanted_sans(hostnames, hostname_count, sans);
    if (out->created || !file_exists(out->server_key_file) ||
        !server_cert_current(out->server_chain_file, sans, nsans))
        rc = make_server_cert(out, ca_key_file, sans, nsans, err);
    return rc;
}
