/*
 * pki: everything hubd knows about X.509.
 *
 * Owns: loading certificates from PEM/DER (refusing private keys and junk),
 * thumbprints, names, issuing certificates (for hubctl and tests), the chain
 * validation policy applied to every device connection, and the proof-of-
 * possession check of a verification certificate.
 * Knows nothing of: sockets, storage, protocols. Never logs; never exits.
 *
 * OpenSSL types appear in this API on purpose: pki is the OpenSSL layer, and
 * the net layer hands it what the TLS stack produced. Ownership follows
 * OpenSSL's names: `_new` / `**out_new` results belong to the caller (free with
 * X509_free, sk_X509_pop_free(s, X509_free), EVP_PKEY_free, free()); every other
 * pointer argument is borrowed for the duration of the call.
 *
 * Thread rules: every function is safe to call from any thread. A
 * `struct hub_pki_trust` is immutable once built and may be shared by any
 * number of threads verifying at once.
 */
#ifndef HUB_PKI_H
#define HUB_PKI_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "common/err.h"

/* Largest certificate file accepted anywhere (uploads, hubctl). */
#define HUB_PKI_MAX_FILE_BYTES (64 * 1024)

/* ---- loading ------------------------------------------------------------ */

/*
 * Parses one or more certificates from PEM (any number of CERTIFICATE blocks,
 * text between blocks ignored) or from a single DER certificate.
 * Refuses, with the code in brackets:
 *   - len > HUB_PKI_MAX_FILE_BYTES [TOO_LARGE]; len == 0 or no block [EMPTY];
 *   - any private key: every PEM private-key label (PRIVATE KEY, RSA/EC/DSA
 *     PRIVATE KEY, ENCRYPTED PRIVATE KEY, OPENSSH PRIVATE KEY, ...) or DER
 *     that parses as a private key / PKCS#8 / encrypted PKCS#8 [PRIVATE_KEY];
 *   - a PEM block that is not a certificate, or a certificate that does not
 *     parse [NOT_CERT / PARSE].
 * On success *out_new holds the certificates in file order (at least one).
 */
int hub_pki_certs_load_mem(const void *buf, size_t len, STACK_OF(X509) * *out_new,
                           struct hub_err *err);
/* Same, from a file; HUB_E_IO if it cannot be read. */
int hub_pki_certs_load_file(const char *path, STACK_OF(X509) * *out_new, struct hub_err *err);
/* Exactly one certificate (more than one is HUB_E_INVALID_ARG). */
int hub_pki_cert_load_mem(const void *buf, size_t len, X509 **out_new, struct hub_err *err);
int hub_pki_cert_load_file(const char *path, X509 **out_new, struct hub_err *err);

/* PEM text of cert, NUL-terminated, caller frees with free(). */
int hub_pki_cert_to_pem(X509 *cert, char **out_new, struct hub_err *err);

/* ---- facts about one certificate ---------------------------------------- */

enum hub_pki_digest { HUB_PKI_SHA1, HUB_PKI_SHA256 };
#define HUB_PKI_THUMBPRINT_MAX 65 /* 64 hex digits + NUL */

/* Uppercase hex digest of the DER encoding, no separators (40 or 64 chars). */
int hub_pki_thumbprint(X509 *cert, enum hub_pki_digest digest, char out[HUB_PKI_THUMBPRINT_MAX],
                       struct hub_err *err);

/* The subject's (last) commonName as UTF-8. HUB_E_NOT_FOUND if there is none,
 * HUB_E_TOO_LARGE if it does not fit in cap bytes, HUB_E_PARSE if it holds a NUL. */
int hub_pki_cert_subject_cn(X509 *cert, char *out, size_t cap, struct hub_err *err);

/* RFC 2253-style one-line subject ("CN=dev1,O=Contoso"), truncated to cap
 * at a UTF-8 character boundary. */
void hub_pki_cert_subject_text(X509 *cert, char *out, size_t cap);

/* 1 if basicConstraints says CA:TRUE, else 0. */
int hub_pki_cert_is_ca(X509 *cert);

/* notBefore / notAfter as Unix seconds. */
int hub_pki_cert_validity(X509 *cert, int64_t *not_before, int64_t *not_after, struct hub_err *err);

/* ---- issuing (hubctl and tests; the hub itself only issues its server cert) */

enum hub_pki_key_type {
    HUB_PKI_KEY_EC_P256 = 0, /* default */
    HUB_PKI_KEY_EC_P384,
    HUB_PKI_KEY_RSA_2048,
    HUB_PKI_KEY_RSA_3072,
    HUB_PKI_KEY_RSA_4096,
};
/* Accepts "ec-p256" (alias "p256"), "ec-p384" ("p384"), "rsa-2048", "rsa-3072", "rsa-4096". */
int hub_pki_key_type_parse(const char *name, enum hub_pki_key_type *out, struct hub_err *err);
int hub_pki_key_generate(enum hub_pki_key_type type, EVP_PKEY **out_new, struct hub_err *err);
int hub_pki_key_load_file(const char *path, EVP_PKEY **out_new, struct hub_err *err);

enum hub_pki_cert_kind {
    HUB_PKI_CERT_ROOT,         /* self-signed, CA:TRUE critical, keyCertSign+cRLSign */
    HUB_PKI_CERT_INTERMEDIATE, /* CA:TRUE critical, optional pathLen */
    HUB_PKI_CERT_DEVICE,       /* CN = device id, CA:FALSE, digitalSignature, EKU clientAuth */
    HUB_PKI_CERT_VERIFICATION, /* CN = verification code, signed by the CA key */
    HUB_PKI_CERT_SERVER,       /* SAN DNS/IP entries, EKU serverAuth */
};

struct hub_pki_issue_params {
    enum hub_pki_cert_kind kind;
    const char *common_name; /* subject CN: CA name, device id, code or host */
    const char *subject;     /* optional extra RDNs "O=Contoso,OU=Fleet"; CN still common_name */
    int days;                /* validity length, from not_before */
    int64_t not_before;      /* Unix seconds; 0 = now - 5 minutes (clock skew) */
    int pathlen;             /* intermediate/root only; -1 = no pathLen constraint */
    const char *const *sans; /* server: "DNS:name" / "IP:addr" (bare names: DNS or IP by form) */
    size_t sans_count;
    X509 *issuer_cert;     /* NULL for a self-signed root */
    EVP_PKEY *issuer_key;  /* NULL for a self-signed root (subject_key signs) */
    EVP_PKEY *subject_key; /* the new certificate's public key */
};

/* Issues a v3 certificate: random positive 128-bit serial, SKI, AKI (when
 * issued by another), SHA-256 (P-256/RSA) or SHA-384 (P-384) signature. */
int hub_pki_cert_issue(const struct hub_pki_issue_params *params, X509 **out_new,
                       struct hub_err *err);

/* Writes a private key as PKCS#8 PEM, file created with mode 0600 (replaces an
 * existing file atomically). */
int hub_pki_key_write_file(EVP_PKEY *key, const char *path, struct hub_err *err);
/* Writes certificates as concatenated PEM, mode 0644. */
int hub_pki_certs_write_file(X509 *const *certs, size_t count, const char *path,
                             struct hub_err *err);

/* ---- certificate revocation lists (docs/security.md, "Revocation") ------- */

/* Largest CRL accepted (about 25,000 revoked serials). */
#define HUB_PKI_MAX_CRL_BYTES (1024 * 1024)

/*
 * Parses exactly one CRL: one PEM "X509 CRL" block (text around it ignored)
 * or one DER CRL. Refuses as hub_pki_certs_load_mem does, in the same order:
 * len > HUB_PKI_MAX_CRL_BYTES [TOO_LARGE], empty [EMPTY], any private key
 * [PRIVATE_KEY], PEM structure errors, another label or a CRL that does not
 * parse [PARSE], more than one PEM block [INVALID_ARG]. Only the encoding is
 * checked here; hub_pki_crl_issuer_check says whether it is usable.
 */
int hub_pki_crl_load_mem(const void *buf, size_t len, X509_CRL **out_new, struct hub_err *err);
/* PEM text of crl, NUL-terminated, caller frees with free(). */
int hub_pki_crl_to_pem(X509_CRL *crl, char **out_new, struct hub_err *err);

struct hub_pki_crl_info {
    int64_t this_update;  /* Unix seconds */
    int64_t next_update;  /* Unix seconds; 0 when the CRL has none */
    size_t revoked_count; /* entries in revokedCertificates */
};
/* thisUpdate / nextUpdate / entry count. HUB_E_PARSE for a malformed time. */
int hub_pki_crl_info_get(X509_CRL *crl, struct hub_pki_crl_info *out, struct hub_err *err);

/*
 * Is `crl` a complete CRL issued by `ca`? Its issuer name equals the CA's
 * subject and its authorityKeyIdentifier (if both have key ids) the CA's
 * subjectKeyIdentifier [CHAIN_UNTRUSTED], its signature verifies with the
 * CA's public key [CHAIN_SIGNATURE], and its scope is the whole CA: no
 * issuingDistributionPoint (partitioned or indirect CRLs), no
 * deltaCRLIndicator, no other critical extension, no entry extension
 * naming another certificate issuer [INVALID_ARG]. Expiry (nextUpdate) is
 * not judged here: see the policy in docs/security.md.
 */
int hub_pki_crl_issuer_check(X509 *ca, X509_CRL *crl, struct hub_err *err);

/* 1 if `cert`'s serial number is listed in `crl` (any reason, holds too), else 0. */
int hub_pki_crl_lists(X509_CRL *crl, X509 *cert);

/* ---- chain validation policy (every device connection) ------------------ */

enum hub_pki_eku {
    HUB_PKI_EKU_CLIENT_AUTH = 0, /* default for devices */
    HUB_PKI_EKU_SERVER_AUTH,
    HUB_PKI_EKU_ANY,  /* anyExtendedKeyUsage */
    HUB_PKI_EKU_NONE, /* no EKU requirement */
};

/* The trusted CA set: every certificate in it is a trust anchor, root or
 * intermediate alike. Immutable once built; share it between threads. */
struct hub_pki_trust;
/* Takes references to the anchors (the caller keeps its own). */
int hub_pki_trust_new(STACK_OF(X509) * anchors, struct hub_pki_trust **out_new,
                      struct hub_err *err);
void hub_pki_trust_free(struct hub_pki_trust *trust); /* NULL ok */

/*
 * The same, with revocation: crls[i] (0 <= i < crl_count; X509_CRL
 * pointers, references taken) must each pass hub_pki_crl_issuer_check
 * against some anchor, else the call fails with that check's code. A
 * CRL is kept with its signer's public key, and every certificate on a
 * candidate path whose issuer (same name, same key) signed a CRL listing
 * its serial is refused with HUB_E_CHAIN_REVOKED, whichever path is tried:
 * so an anchor's CRL revokes the intermediates and leaves it issued
 * directly, and a CRL of an intermediate that is itself an anchor revokes
 * what that intermediate issued, even when the device presents a path
 * through another copy of the intermediate. A CRL past its nextUpdate is
 * still used (fail-open for availability; docs/security.md, "Revocation").
 */
int hub_pki_trust_new_with_crls(STACK_OF(X509) * anchors, X509_CRL *const *crls, size_t crl_count,
                                struct hub_pki_trust **out_new, struct hub_err *err);

/* The most intermediates any path may hold, whatever max_depth asks for. */
#define HUB_PKI_VERIFY_MAX_DEPTH 16

struct hub_pki_verify_opts {
    int64_t at;           /* validation time, Unix seconds */
    enum hub_pki_eku eku; /* required purpose of the leaf (and compatible CAs) */
    int max_depth;        /* most intermediates between leaf and anchor; -1 = default (8) */
};

/*
 * The hub's validation policy: RFC 5280 path validation with a strict profile.
 * `untrusted` (may be NULL) is what the device presented besides the leaf, in
 * any order, possibly with junk. Returns 0 when some path from leaf to an
 * anchor is valid; otherwise a HUB_E_CHAIN_* / CERT_* code and err->msg
 * naming the certificate at fault, e.g.
 * "certificate expired at 2026-01-01T00:00:00Z: CN=dev1".
 * HUB_E_CHAIN_REVOKED when a certificate on the path is listed in a CRL of
 * the trust (reported in preference to other failures of other paths).
 * Bounded time on hostile inputs. See docs/security.md for the policy.
 */
int hub_pki_chain_verify(const struct hub_pki_trust *trust, X509 *leaf, STACK_OF(X509) * untrusted,
                         const struct hub_pki_verify_opts *opts, struct hub_err *err);

/* ---- proof of possession ------------------------------------------------ */

/*
 * Checks a verification certificate against an uploaded CA: its subject CN
 * equals `code` exactly [CN_MISMATCH], its issuer name is the CA's subject
 * and its signature verifies with the CA's public key [CHAIN_SIGNATURE], and
 * it is within its validity period at `now` [CERT_EXPIRED/CERT_NOT_YET_VALID].
 */
int hub_pki_verification_cert_check(X509 *ca, X509 *verification_cert, const char *code,
                                    int64_t now, struct hub_err *err);

#endif
