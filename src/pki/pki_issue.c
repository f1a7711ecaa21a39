/*
 * Issuing: key types, key generation, key and certificate files, and the
 * five certificate profiles hubctl makes (root, intermediate, device,
 * verification, server).
 *
 * Profiles (RFC 5280 section 4.2; "crit" = critical extension):
 *
 *   kind          basicConstraints       keyUsage (crit)              EKU         SAN
 *   root          crit CA:TRUE[,pathlen] keyCertSign, cRLSign         -           -
 *   intermediate  crit CA:TRUE[,pathlen] keyCertSign, cRLSign         -           -
 *   device        crit CA:FALSE          digitalSignature             clientAuth  -
 *   verification  crit CA:FALSE          digitalSignature             clientAuth  -
 *   server        crit CA:FALSE          digitalSignature             serverAuth  DNS/IP
 *                                        (+keyEncipherment for RSA)
 *
 * Every certificate is v3 with a random positive 127-bit serial, SKI (SHA-1
 * of the subjectPublicKey, RFC 5280 4.2.1.2 method 1) and AKI = the issuer's
 * SKI (its own for a root). Extensions are built as ASN.1 structures, not
 * from OpenSSL's config-string syntax, so no CN or SAN value can inject
 * extra extension text.
 */
#include "pki/pki.h"
#include "pki/pki_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "common/util.h"

/* Certificates start 5 minutes in the past so a device whose clock is a
 * little behind accepts a certificate made a moment ago. */
#define ISSUE_BACKDATE_SECONDS 300
#define ISSUE_MAX_DAYS         36500
#define SERIAL_BYTES           16
/* Key files are small; a bigger "key" file is not one. */
#define KEY_FILE_MAX_BYTES (64 * 1024)

/* ---- key types ---------------------------------------------------------- */

static const struct key_type_row {
    const char *name;
    const char *alias;
    enum hub_pki_key_type type;
    const char *algorithm; /* OpenSSL key type name */
    const char *group;     /* EC curve, or NULL */
    unsigned bits;         /* RSA modulus size, or 0 */
} key_types[] = {
    {"ec-p256", "p256", HUB_PKI_KEY_EC_P256, "EC", "P-256", 0},
    {"ec-p384", "p384", HUB_PKI_KEY_EC_P384, "EC", "P-384", 0},
    {"rsa-2048", NULL, HUB_PKI_KEY_RSA_2048, "RSA", NULL, 2048},
    {"rsa-3072", NULL, HUB_PKI_KEY_RSA_3072, "RSA", NULL, 3072},
    {"rsa-4096", NULL, HUB_PKI_KEY_RSA_4096, "RSA", NULL, 4096},
};
#define KEY_TYPES_COUNT (sizeof(key_types) / sizeof(key_types[0]))

int hub_pki_key_type_parse(const char *name, enum hub_pki_key_type *out, struct hub_err *err)
{
    for (size_t i = 0; name != NULL && i < KEY_TYPES_COUNT; i++) {
        if (strcmp(name, key_types[i].name) == 0 ||
            (key_types[i].alias != NULL && strcmp(name, key_types[i].alias) == 0)) {
            *out = key_types[i].type;
            return 0;
        }
    }
    char shown[64];
    hub_pki__printable(name, shown, sizeof(shown));
    return HUB_ERR(err, HUB_E_INVALID_ARG,
                   "unknown key type '%s' (ec-p256, ec-p384, rsa-2048, rsa-3072, rsa-4096)", shown);
}

int hub_pki_key_generate(enum hub_pki_key_type type, EVP_PKEY **out_new, struct hub_err *err)
{
    if (out_new == NULL)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "hub_pki_key_generate: NULL argument");
    *out_new = NULL;
    const struct key_type_row *row = NULL;
    for (size_t i = 0; i < KEY_TYPES_COUNT; i++)
        if (key_types[i].type == type)
            row = &key_types[i];
    if (row == NULL)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "unknown key type %d", (int)type);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, row->algorithm, NULL);
    int ok = ctx != NULL && EVP_PKEY_keygen_init(ctx) == 1;
    if (ok && row->group != NULL)
        ok = EVP_PKEY_CTX_set_group_name(ctx, row->group) == 1;
    if (ok && row->bits != 0)
        ok = EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, (int)row->bits) == 1;
    if (ok)
        ok = EVP_PKEY_generate(ctx, out_new) == 1;
    EVP_PKEY_CTX_free(ctx);
    if (!ok) {
        ERR_clear_error();
        return HUB_ERR(err, HUB_E_CRYPTO, "cannot generate a %s key", row->name);
    }
    return 0;
}

/* Never prompt on a terminal for a passphrase: a library must not. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

int hub_pki_key_load_file(const char *path, EVP_PKEY **out_new, struct hub_err *err)
{
    if (path == NULL || out_new == NULL)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "hub_pki_key_load_file: NULL argument");
    *out_new = NULL;
    unsigned char *buf = NULL;
    size_t len = 0;
    int rc = hub_pki__file_read(path, KEY_FILE_MAX_BYTES, &buf, &len, err);
    if (rc != 0)
        return rc;
    if (len == 0) {
        free(buf);
        return HUB_ERR(err, HUB_E_EMPTY, "%s is empty", path);
    }
    EVP_PKEY *key = NULL;
    BIO *bio = BIO_new_mem_buf(buf, (int)len);
    if (bio != NULL) {
        key = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
        BIO_free(bio);
    }
    if (key == NULL) { /* DER: PKCS#8 or traditional */
        const unsigned char *p = buf;
        key = d2i_AutoPrivateKey(NULL, &p, (long)len);
    }
    ERR_clear_error();
    int encrypted = key == NULL && (memmem(buf, len, "ENCRYPTED", 9) != NULL);
    OPENSSL_cleanse(buf, len);
    free(buf);
    if (key == NULL)
        return HUB_ERR(err, HUB_E_PARSE, "%s: %s", path,
                       encrypted ? "the private key is encrypted; give an unencrypted key"
                                 : "no private key found (PEM or DER)");
    *out_new = key;
    return 0;
}

/* ---- files -------------------------------------------------------------- */

/*
 * Writes data to path through a fresh temporary file created with O_EXCL and
 * the final mode, then rename(): readers see the old file or the whole new
 * one, and a key file is never, even briefly, readable by others.
 */
static int file_write_atomic(const char *path, const void *data, size_t len, mode_t mode,
                             struct hub_err *err)
{
    char suffix[17];
    int rc = hub_random_hex(8, suffix, err);
    if (rc != 0)
        return rc;
    char tmp[PATH_MAX];
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp-%s", path, suffix) >= sizeof(tmp))
        return HUB_ERR(err, HUB_E_INVALID_ARG, "path too long: %s", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
    if (fd < 0)
        return HUB_ERR(err, HUB_E_IO, "cannot create %s: %s", tmp, strerror(errno));
    /* The umask may have cleared bits of mode; set exactly what was asked. */
    if (fchmod(fd, mode) != 0) {
        rc = HUB_ERR(err, HUB_E_IO, "cannot chmod %s: %s", tmp, strerror(errno));
        goto out_fd;
    }
    const unsigned char *p = data;
    size_t left = len;
    while (left > 0) {
        ssize_t n = write(fd, p, left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = HUB_ERR(err, HUB_E_IO, "cannot write %s: %s", tmp, strerror(errno));
            goto out_fd;
        }
        p += n;
        left -= (size_t)n;
    }
    if (fsync(fd) != 0) {
        rc = HUB_ERR(err, HUB_E_IO, "cannot sync %s: %s", tmp, strerror(errno));
        goto out_fd;
    }
out_fd:
    if (close(fd) != 0 && rc == 0)
        rc = HUB_ERR(err, HUB_E_IO, "cannot close %s: %s", tmp, strerror(errno));
    if (rc == 0 && rename(tmp, path) != 0)
        rc = HUB_ERR(err, HUB_E_IO, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
    if (rc != 0)
        unlink(tmp);
    return rc;
}

int hub_pki_key_write_file(EVP_PKEY *key, const char *path, struct hub_err *err)
{
    if (key == NULL || path == NULL)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "hub_pki_key_write_file: NULL argument");
    /* secmem: the PEM text is wiped when the BIO is freed. */
    BIO *bio = BIO_new(BIO_s_secmem());
    if (bio == NULL)
        return HUB_ERR(err, HUB_E_NOMEM, "out of memory");
    int rc = 0;
    char *data = NULL;
    long n = 0;
    if (PEM_write_bio_PKCS8PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) != 1 ||
        (n = BIO_get_mem_data(bio, &data)) <= 0) {
        ERR_clear_error();
        rc = HUB_ERR(err, HUB_E_CRYPTO, "cannot encode the private key");
        goto out_bio;
    }
    rc = file_write_atomic(path, data, (size_t)n, 0600, err);
out_bio:
    BIO_free(bio);
    return rc;
}

int hub_pki_certs_write_file(X509 *const *certs, size_t count, const char *path,
                             struct hub_err *err)
{
    if ((certs == NULL && count > 0) || path == NULL)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "hub_pki_certs_write_file: NULL argument");
    BIO *bio = BIO_new(BIO_s_mem());
    if (bio == NULL)
        return HUB_ERR(err, HUB_E_NOMEM, "out of memory");
    int rc = 0;
    for (size_t i = 0; i < count; i++) {
        if (certs[i] == NULL || PEM_write_bio_X509(bio, certs[i]) != 1) {
            ERR_clear_error();
            rc = HUB_ERR(err, HUB_E_CRYPTO, "cannot encode certificate %zu as PEM", i + 1);
            goto out_bio;
        }
    }
    char *data = NULL;
    long n = BIO_get_mem_data(bio, &data);
    rc = file_write_atomic(path, data, n > 0 ? (size_t)n : 0, 0644, err);
out_bio:
    BIO_free(bio);
    return rc;
}

/* ---- subject names ------------------------------------------------------ */

static int name_add(X509_NAME *name, const char *field, const char *value, struct hub_err *err)
{
    if (X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8, (const unsigned char *)value, -1, -1,
                                   0) == 1)
        return 0;
    ERR_clear_error();
    char f[32], v[96];
    hub_pki__printable(field, f, sizeof(f));
    hub_pki__printable(value, v, sizeof(v));
    return HUB_ERR(err, HUB_E_INVALID_ARG,
                   "cannot put %s='%s' in a subject name (unknown field, or value too long: "
                   "RFC 5280 limits a CN to 64 characters)",
                   f, v);
}

/*
 * "O=Contoso,OU=Fleet" -> RDNs in that order. '\' escapes the next character
 * (for a ',' or '=' inside a value); spaces around field names are ignored.
 */
static int name_add_extra(X509_NAME *name, const char *subject, struct hub_err *err)
{
    size_t len = strlen(subject);
    char *buf = malloc(len + 1);
    if (buf == NULL)
        return HUB_ERR(err, HUB_E_NOMEM, "out of memory");
    int rc = 0;
    const char *p = subject;
    while (rc == 0 && *p != '\0') {
        while (*p == ' ')
            p++;
        size_t o = 0;
        const char *eq = NULL;
        size_t field_len = 0;
        for (; *p != '\0' && *p != ','; p++) {
            if (*p == '\\' && p[1] != '\0') {
                buf[o++] = *++p;
                continue;
            }
            if (*p == '=' && eq == NULL) {
                eq = p;
                field_len = o;
                buf[o++] = '\0';
                continue;
            }
            buf[o++] = *p;
        }
        buf[o] = '\0';
        if (*p == ',')
            p++;
        while (field_len > 0 && buf[field_len - 1] == ' ')
            buf[--field_len] = '\0';
        if (eq == NULL || field_len == 0) {
            rc = HUB_ERR(err, HUB_E_INVALID_ARG,
                         "subject must be FIELD=value pairs separated by ',' (e.g. "
                         "\"O=Contoso,OU=Fleet\")");
            break;
        }
        if (strcasecmp(buf, "CN") == 0 || strcasecmp(buf, "commonName") == 0) {
            rc = HUB_ERR(err, HUB_E_INVALID_ARG,
                         "subject must not hold a CN; the CN is given separately");
            break;
        }
        rc = name_add(name, buf, buf + field_len + 1, err);
    }
    free(buf);
    return rc;
}

static int name_build(const struct hub_pki_issue_params *params, X509_NAME **out_new,
                      struct hub_err *err)
{
    X509_NAME *name = X509_NAME_new();
    if (name == NULL)
        return HUB_ERR(err, HUB_E_NOMEM, "out of memory");
    int rc = 0;
    if (params->subject != NULL && params->subject[0] != '\0')
        rc = name_add_extra(name, params->subject, err);
    /* CN last, so that it is the most specific RDN ("CN=dev1,O=Contoso"). */
    if (rc == 0)
        rc = name_add(name, "CN", params->common_name, err);
    if (rc != 0) {
        X509_NAME_free(name);
        return rc;
    }
    *out_new = name;
    return 0;
}

/* ---- extensions --------------------------------------------------------- */

static int ext_add(X509 *x, int nid, void *value, int critical, const char *what,
                   struct hub_err *err)
{
    if (X509_add1_ext_i2d(x, nid, value, critical, X509V3_ADD_REPLACE) == 1)
        return 0;
    ERR_clear_error();
    return HUB_ERR(err, HUB_E_CRYPTO, "cannot add the %s extension", what);
}

static int ext_basic_constraints(X509 *x, int ca, int pathlen, struct hub_err *err)
{
    BASIC_CONSTRAINTS *bc = BASIC_CONSTRAINTS_new();
    if (bc == NULL)
        return HUB_ERR(err, HUB_E_NOMEM, "out of memory");
    int rc = 0;
    bc->ca = ca ? 0xFF : 0;
    if (ca && pathlen >= 0) {
        bc->pathlen = ASN1_INTEGER_new();
        if (bc->pathlen == NULL || ASN1_INTEGER_set(bc->pathlen, pathlen) != 1)
            rc = HUB_ERR(err, HUB_E_NOMEM, "out of memory");
    }
    if (rc == 0)
        rc = ext_add(x, NID_basic_constraints, bc, 1, "basicConstraints", err);
    BASIC_CONSTRAINTS_free(bc);
    return rc;
}

/* keyUsage bit numbers, RFC 5280 4.2.1.3 */
enum {
    KU_BIT_DIGITAL_SIGNATURE = 0,
    KU_BIT_KEY_ENCIPHERMENT = 2,
    KU_BIT_KEY_CERT_SIGN = 5,
    KU_BIT_CRL_SIGN = 6,
};

static int ext_key_usage(X509 *x, const int *bits, size_t count, struct hub_err *err)
{
    ASN1_BIT_STRING *ku = ASN1_BIT_STRING_new();
    if (ku == NULL)
        return HUB_ERR(err, HUB_E_NOMEM, "out of memory");
    int rc = 0;
    for (size_t i = 0; i < count && rc == 0; i++)
        if (ASN1_BIT_STRING_set_bit(ku, bits[i], 1) != 1)
            rc = HUB_ERR(err, HUB_E_NOMEM, "out of memory");
    if (rc == 0)
        rc = ext_add(x, NID_key_usage, ku, 1, "keyUsage", err);
    ASN1_BIT_STRING_free(ku);
    return rc;
}

static int ext_eku(X509 *x, int purpose_nid, struct hub_err *err)
{
    EXTENDED_KEY_USAGE *eku = sk_ASN1_OBJECT_new_null();
    if (eku == NULL)
        return HUB_ERR(err, HUB_E_NOMEM, "out of memory");
    int rc = 0;
    /* OBJ_nid2obj returns a static object: free the stack, not its items. */
    if (sk_ASN1_OBJECT_push(eku, OBJ_nid2obj(purpose_nid)) <= 0)
        rc = HUB_ERR(err, HUB_E_NOMEM, "out of memory");
    if (rc == 0)
        rc = ext_add(x, NID_ext_key_usage, eku, 0, "extendedKeyUsage", err);
    sk_ASN1_OBJECT_free(eku);
    return rc;
}

/*
 * The key identifier of cert: its SKI extension if it has one (an issuer
 * made elsewhere may use another method), else the SHA-1 of its public key.
 * use_ski = 0 for the certificate being built: asking OpenSSL for its SKI
 * would cache its extensions before they are all added.
 */
static int key_id_of(X509 *cert, int use_ski, ASN1_OCTET_STRING **out_new, struct hub_err *err)
{
    const ASN1_OCTET_STRING *have = use_ski ? X509_get0_subject_key_id(cert) : NULL;
    if (have != NULL) {
        *out_new = ASN1_OCTET_STRING_dup(have);
        return *out_new != NULL ? 0 : HUB_ERR(err, HUB_E_NOMEM, "out of memory");
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    if (X509_pubkey_digest(cert, EVP_sha1(), md, &md_len) != 1) {
        ERR_clear_error();
        return HUB_ERR(err, HUB_E_CRYPTO, "cannot hash the public key");
    }
    *out_new = ASN1_OCTET_STRING_new();
    if (*out_new == NULL || ASN1_OCTET_STRING_set(*out_new, md, (int)md_len) != 1) {
        ASN1_OCTET_STRING_free(*out_new);
        *out_new = NULL;
        return HUB_ERR(err, HUB_E_NOMEM, "out of memory");
    }
    return 0;
}

static int ext_key_ids(X509 *x, X509 *issuer, struct hub_err *err)
{
    ASN1_OCTET_STRING *ski = NULL;
    int rc = key_id_of(x, 0, &ski, err);
    if (rc != 0)
        return rc;
    rc = ext_add(x, NID_subject_key_identifier, ski, 0, "subjectKeyIdentifier", err);
    AUTHORITY_KEYID *akid = rc == 0 ? AUTHORITY_KEYID_new() : NULL;
    if (rc == 0 && akid == NULL)
        rc = HUB_ERR(err, HUB_E_NOMEM, "out of memory");
    if (rc == 0) {
        if (issuer == NULL) {
            akid->keyid = ski;
            ski = NULL;
        } else {
            rc = key_id_of(issuer, 1, &akid->keyid, err);
        }
    }
    if (rc == 0)
        rc = ext_add(x, NID_authority_key_identifier, akid, 0, "authorityKeyIdentifier", err);
    AUTHORITY_KEYID_free(akid);
    ASN1_OCTET_STRING_free(ski);
    return rc;
}

static int dns_name_ok(const char *s)
{
    size_t len = strlen(s), label = 0;
    if (len == 0 || len > 253)
        return 0;
    if (strncmp(s, "*.", 2) == 0) /* one leading wildcard label */
        s += 2;
    for (; *s != '\0'; s++) {
        char c = *s;
        if (c == '.') {
            if (label == 0)
                return 0;
            label = 0;
            continue;
        }
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_'))
            return 0;
        if (++label > 63)
            return 0;
    }
    return label > 0;
}

static int is_ip_literal(const char *s)
{
    unsigned char addr[16];
    return inet_pton(AF_INET, s, addr) == 1 || inet_pton(AF_INET6, s, addr) == 1;
}

static int san_push(GENERAL_NAMES *gens, const char *entry, struct hub_err *err)
{
    char shown[96];
    hub_pki__printable(entry, shown, sizeof(shown));
    const char *value = entry;
    int ip;
    if (strncasecmp(entry, "DNS:", 4) == 0) {
        value = entry + 4;
        ip = 0;
    } else if (strncasecmp(entry, "IP:", 3) == 0) {
        value = entry + 3;
        ip = 1;
    } else {
        ip = is_ip_literal(entry);
    }
    GENERAL_NAME *gen = GENERAL_NAME_new();
    if (gen == NULL)
        return HUB_ERR(err, HUB_E_NOMEM, "out of memory");
    if (ip) {
        ASN1_OCTET_STRING *addr = is_ip_literal(value) ? a2i_IPADDRESS(value) : NULL;
        if (addr == NULL) {
            GENERAL_NAME_free(gen);
            ERR_clear_error();
            return HUB_ERR(err, HUB_E_INVALID_ARG, "SAN '%s' is not an IP address", shown);
        }
        GENERAL_NAME_set0_value(gen, GEN_IPADD, addr);
    } else {
        ASN1_IA5STRING *dns = dns_name_ok(value) ? ASN1_IA5STRING_new() : NULL;
        if (dns == NULL || ASN1_STRING_set(dns, value, -1) != 1) {
            ASN1_IA5STRING_free(dns);
            GENERAL_NAME_free(gen);
            return HUB_ERR(err, HUB_E_INVALID_ARG, "SAN '%s' is not a valid DNS name", shown);
        }
        GENERAL_NAME_set0_value(gen, GEN_DNS, dns);
    }
    if (sk_GENERAL_NAME_push(gens, gen) <= 0) {
        GENERAL_NAME_free(gen);
        return HUB_ERR(err, HUB_E_NOMEM, "out of memory");
    }
    return 0;
}

static int ext_san(X509 *x, const struct hub_pki_issue_params *params, struct hub_err *err)
{
    GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
    if (gens == NULL)
        return HUB_ERR(err, HUB_E_NOMEM, "out of memory");
    int rc = 0;
    for (size_t i = 0; i < params->sans_count && rc == 0; i++)
        rc = san_push(gens, params->sans[i], err);
    /* No SAN given: the CN is the host name (TLS clients ignore the CN). */
    if (rc == 0 && params->sans_count == 0)
        rc = san_push(gens, params->common_name, err);
    if (rc == 0)
        rc = ext_add(x, NID_subject_alt_name, gens, 0, "subjectAltName", err);
    GENERAL_NAMES_free(gens);
    return rc;
}

static int extensions_add(X509 *x, const struct hub_pki_issue_params *params, struct hub_err *err)
{
    static const int ca_ku[] = {KU_BIT_KEY_CERT_SIGN, KU_BIT_CRL_SIGN};
    static const int leaf_ku[] = {KU_BIT_DIGITAL_SIGNATURE};
    static const int rsa_server_ku[] = {KU_BIT_DIGITAL_SIGNATURE, KU_BIT_KEY_ENCIPHERMENT};
    int rc;
    switch (params->kind) {
    case HUB_PKI_CERT_ROOT:
    case HUB_PKI_CERT_INTERMEDIATE:
        rc = ext_basic_constraints(x, 1, params->pathlen, err);
        if (rc == 0)
            rc = ext_key_usage(x, ca_ku, 2, err);
        break;
    case HUB_PKI_CERT_DEVICE:
    case HUB_PKI_CERT_VERIFICATION:
        rc = ext_basic_constraints(x, 0, -1, err);
        if (rc == 0)
            rc = ext_key_usage(x, leaf_ku, 1, err);
        if (rc == 0)
            rc = ext_eku(x, NID_client_auth, err);
        break;
    case HUB_PKI_CERT_SERVER:
        rc = ext_basic_constraints(x, 0, -1, err);
        /* TLS 1.2 RSA key exchange encrypts to the server key. */
        if (rc == 0 && EVP_PKEY_is_a(params->subject_key, "RSA"))
            rc = ext_key_usage(x, rsa_server_ku, 2, err);
        else if (rc == 0)
            rc = ext_key_usage(x, leaf_ku, 1, err);
        if (rc == 0)
            rc = ext_eku(x, NID_server_auth, err);
        if (rc == 0)
            rc = ext_san(x, params, err);
        break;
    default:
        return HUB_ERR(err, HUB_E_INVALID_ARG, "unknown certificate kind %d", (int)params->kind);
    }
    if (rc == 0)
        rc = ext_key_ids(x, params->issuer_cert, err);
    return rc;
}

/* ---- issuing ------------------------------------------------------------ */

static int params_check(const struct hub_pki_issue_params *p, struct hub_err *err)
{
    if (p->kind < HUB_PKI_CERT_ROOT || p->kind > HUB_PKI_CERT_SERVER)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "unknown certificate kind %d", (int)p->kind);
    if (p->common_name == NULL || p->common_name[0] == '\0')
        return HUB_ERR(err, HUB_E_INVALID_ARG, "a certificate needs a subject CN");
    if (p->days < 1 || p->days > ISSUE_MAX_DAYS)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "validity must be 1 to %d days, not %d",
                       ISSUE_MAX_DAYS, p->days);
    if (p->subject_key == NULL)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "a certificate needs a subject key");
    int is_ca = p->kind == HUB_PKI_CERT_ROOT || p->kind == HUB_PKI_CERT_INTERMEDIATE;
    if (p->pathlen < -1 || (!is_ca && p->pathlen > -1))
        return HUB_ERR(err, HUB_E_INVALID_ARG, "pathlen applies to CA certificates only");
    if (p->kind != HUB_PKI_CERT_SERVER && p->sans_count > 0)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "SAN entries apply to server certificates only");
    if (p->sans_count > 0 && p->sans == NULL)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "sans is NULL");
    if (p->kind == HUB_PKI_CERT_ROOT) {
        if (p->issuer_cert != NULL || p->issuer_key != NULL)
            return HUB_ERR(err, HUB_E_INVALID_ARG, "a root CA is self-signed: give no issuer");
        return 0;
    }
    if (p->issuer_cert == NULL || p->issuer_key == NULL)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "this certificate needs an issuer cert and key");
    if (X509_check_private_key(p->issuer_cert, p->issuer_key) != 1) {
        ERR_clear_error();
        return HUB_ERR(err, HUB_E_INVALID_ARG,
                       "the issuer key does not match the issuer certificate's public key");
    }
    return 0;
}

/* SHA-384 for P-384 (and SHA-512 for P-521), SHA-256 otherwise; none for EdDSA. */
static const EVP_MD *signature_md(EVP_PKEY *signer)
{
    if (EVP_PKEY_is_a(signer, "ED25519") || EVP_PKEY_is_a(signer, "ED448"))
        return NULL;
    if (EVP_PKEY_is_a(signer, "EC")) {
        int bits = EVP_PKEY_get_bits(signer);
        if (bits > 384)
            return EVP_sha512();
        if (bits > 256)
            return EVP_sha384();
    }
    return EVP_sha256();
}

static int serial_set(X509 *x, struct hub_err *err)
{
    unsigned char b[SERIAL_BYTES];
    int rc = hub_random_bytes(b, sizeof(b), err);
    if (rc != 0)
        return rc;
    /* Top bit clear: positive in DER's two's complement. Next bit set: always
     * 16 bytes long, so serials are 127-bit numbers with 126 random bits. */
    b[0] = (unsigned char)((b[0] & 0x7f) | 0x40);
    BIGNUM *bn = BN_bin2bn(b, sizeof(b), NULL);
    ASN1_INTEGER *serial = bn != NULL ? BN_to_ASN1_INTEGER(bn, NULL) : NULL;
    if (serial == NULL || X509_set_serialNumber(x, serial) != 1)
        rc = HUB_ERR(err, HUB_E_NOMEM, "out of memory");
    ASN1_INTEGER_free(serial);
    BN_free(bn);
    return rc;
}

int hub_pki_cert_issue(const struct hub_pki_issue_params *params, X509 **out_new,
                       struct hub_err *err)
{
    if (params == NULL || out_new == NULL)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "hub_pki_cert_issue: NULL argument");
    *out_new = NULL;
    int rc = params_check(params, err);
    if (rc != 0)
        return rc;
    EVP_PKEY *signer = params->issuer_key != NULL ? params->issuer_key : params->subject_key;
    X509_NAME *subject = NULL;
    X509 *x = X509_new();
    if (x == NULL)
        return HUB_ERR(err, HUB_E_NOMEM, "out of memory");
    rc = name_build(params, &subject, err);
    if (rc != 0)
        goto out_x;
    /* By default the window opens a little in the past, so a peer whose clock
     * lags still accepts the certificate, and closes `days` from now; tests
     * and operators may place it anywhere (an expired or not-yet-valid one). */
    time_t now = time(NULL);
    time_t start =
        params->not_before != 0 ? (time_t)params->not_before : now - ISSUE_BACKDATE_SECONDS;
    time_t end_base = params->not_before != 0 ? start : now;
    if (X509_set_version(x, X509_VERSION_3) != 1 || X509_set_subject_name(x, subject) != 1 ||
        X509_set_issuer_name(x, params->issuer_cert != NULL
                                    ? X509_get_subject_name(params->issuer_cert)
                                    : subject) != 1 ||
        X509_set_pubkey(x, params->subject_key) != 1 ||
        ASN1_TIME_adj(X509_getm_notBefore(x), start, 0, 0) == NULL ||
        ASN1_TIME_adj(X509_getm_notAfter(x), end_base, params->days, 0) == NULL) {
        ERR_clear_error();
        rc = HUB_ERR(err, HUB_E_CRYPTO, "cannot fill the certificate fields");
        goto out_x;
    }
    rc = serial_set(x, err);
    if (rc == 0)
        rc = extensions_add(x, params, err);
    if (rc != 0)
        goto out_x;
    if (X509_sign(x, signer, signature_md(signer)) <= 0) {
        ERR_clear_error();
        rc = HUB_ERR(err, HUB_E_CRYPTO,
                     "cannot sign the certificate (does the signing key hold its private half?)");
        goto out_x;
    }
    /* Cheap insurance against a key/cert mix-up reaching a file. */
    if (X509_verify(x, signer) != 1) {
        ERR_clear_error();
        rc = HUB_ERR(err, HUB_E_CRYPTO, "the new certificate's signature does not verify");
        goto out_x;
    }
    *out_new = x;
    x = NULL;
out_x:
    X509_NAME_free(subject);
    X509_free(x);
    return rc;
}
