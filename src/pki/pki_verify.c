/*
 * pki_verify: the hub's chain validation policy (docs/security.md,
 * "Certificate validation policy"), applied to every device connection.
 *
 * Why our own path builder instead of X509_verify_cert: OpenSSL 3.0 treats
 * notAfter as exclusive, does not backtrack to another candidate path after a
 * name-constraint (or most other) failure, and enforces much of the RFC 5280
 * profile only in X509_STRICT mode, with no way to add the hub's exceptions
 * (v1 device leaves). So we build paths ourselves and use OpenSSL only as a
 * primitive library: parsing, extension decoding, signature verification and
 * NAME_CONSTRAINTS_check.
 *
 * Algorithm: depth-first search from the leaf towards any trust anchor.
 *   - Candidate issuers of a certificate are the anchors whose subject equals
 *     its issuer name (binary search in an index sorted once, in
 *     hub_pki_trust_new), then the presented certificates with that subject.
 *     A candidate whose subjectKeyIdentifier differs from the child's
 *     authorityKeyIdentifier is skipped.
 *   - Per-certificate checks (profile, key, validity, CA-ness, EKU) and the
 *     child's signature are checked on every edge; a failing edge is pruned
 *     and its reason remembered, so an alternative path can still succeed
 *     (backtracking).
 *   - Reaching an anchor ends a candidate path; path-wide checks (pathLen,
 *     name constraints) run on it; on failure the search backtracks.
 *   - When every path fails, the reason from the path that got furthest is
 *     reported (ties: the first found).
 * Bounded work: at most HUB_PKI_VERIFY_MAX_UNTRUSTED presented certificates
 * are considered, a path holds at most HUB_PKI_VERIFY_MAX_PATH_CAS
 * intermediates, at most HUB_PKI_VERIFY_MAX_STEPS candidate issuers are
 * examined (each costs at most one signature verification), and name-
 * constraint checking may do at most HUB_PKI_VERIFY_MAX_NC_CHECKS
 * (subtree, name) comparisons per call.
 *
 * Threads: the trust object is read-only after hub_pki_trust_new (which also
 * forces OpenSSL's lazily cached extension data and canonical names to be
 * computed, so concurrent verifies never write to shared certificates),
 * except for its memo of successes, which has its own mutex (struct
 * verify_memo).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/x509v3.h>

#include "common/util.h"
#include "pki/pki.h"

/* A device chain is leaf + a few CAs; anything larger is junk or hostile. */
#define HUB_PKI_VERIFY_MAX_UNTRUSTED 32
/* Hard cap on intermediates in a path, self-issued ones included. */
#define HUB_PKI_VERIFY_MAX_PATH_CAS HUB_PKI_VERIFY_MAX_DEPTH
/* Default for opts->max_depth == -1, and the largest accepted value. */
#define HUB_PKI_VERIFY_DEFAULT_DEPTH 8
/* Candidate issuers examined per verify (each: <= 1 signature check). */
#define HUB_PKI_VERIFY_MAX_STEPS 128
/* (name-constraint subtree x name) comparisons per verify. */
#define HUB_PKI_VERIFY_MAX_NC_CHECKS 65536
/* Largest RSA modulus accepted: bigger ones only cost verify time. */
#define HUB_PKI_VERIFY_MAX_RSA_BITS 8192
/* More extensions than this in one certificate is not a real certificate. */
#define HUB_PKI_VERIFY_MAX_EXTENSIONS 64

#define SUBJ_MAX 160

/* A CRL and the key that signed it (the anchor's, checked when the trust
 * was built). */
struct trust_crl {
    X509_CRL *crl;   /* one reference */
    EVP_PKEY *key;   /* one reference */
    X509_NAME *name; /* the issuer name, borrowed from crl */
};

/*
 * Memo of successful validations (caching only; the policy is unchanged).
 *
 * Why: a device presents the same chain every time it connects, and a
 * resumed TLS session hands over the very chain validated before; checking
 * its signatures again cost ~180 us per connect (docs/benchmarks.md).
 *
 * Why it is exact: a trust object is immutable (anchors and CRLs; a CA or
 * CRL change makes a new one, with an empty memo), and the validator is a
 * pure function of (trust, leaf, presented certificates, eku, max_depth,
 * at), in which `at` only enters through the validity periods of the
 * certificates examined. A success found path P, valid for every `at` in
 * [max notBefore, min notAfter] over P; at such a time P is still a valid
 * path, so the answer is still "some path is valid". So a success is
 * remembered under the SHA-256 of the inputs (DER of every certificate, in
 * order, with eku and max_depth) with P's window, and answered again only
 * inside that window. Failures are never remembered: they are recomputed
 * with their full explanation.
 *
 * Bounded: MEMO_SLOTS entries, direct-mapped by the key (a newer entry
 * replaces an older one), allocated on the first success. One mutex; the
 * lookup is a 32-byte compare.
 */
#define MEMO_SLOTS 16384

struct memo_entry {
    unsigned char key[32];
    int64_t lo, hi; /* P's validity window, inclusive */
    int used;
};

/* Signatures of CA certificates checked (why: a fleet's devices share their
 * intermediates, so a device seen for the first time needs only its own
 * leaf's signature checked). Keyed by the SHA-256 of (child DER, issuer
 * DER); a signature check depends on nothing else. Leaf edges are not kept:
 * the success memo covers a leaf seen again. */
#define EDGE_SLOTS 4096

struct edge_entry {
    unsigned char key[32];
    int used;
};

struct verify_memo {
    pthread_mutex_t mu;
    struct memo_entry *slots; /* MEMO_SLOTS, or NULL until the first success */
    struct edge_entry *edges; /* EDGE_SLOTS, or NULL until the first CA edge */
};

struct hub_pki_trust {
    X509 **anchors; /* sorted by subject (X509_NAME_cmp); one reference each */
    size_t count;
    struct trust_crl *crls; /* sorted by issuer name */
    size_t crl_count;
    struct verify_memo *memo; /* mutable behind the const trust: see above */
};

/* ---- small helpers ------------------------------------------------------ */

static void subject_text(const X509 *x, char *out, size_t cap)
{
    out[0] = '\0';
    BIO *b = BIO_new(BIO_s_mem());
    if (b == NULL)
        return;
    if (X509_NAME_print_ex(b, X509_get_subject_name(x), 0,
                           XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) >= 0) {
        char *p = NULL;
        long n = BIO_get_mem_data(b, &p);
        if (n > 0 && p != NULL) {
            size_t len = (size_t)n < cap - 1 ? (size_t)n : cap - 1;
            memcpy(out, p, len);
            out[len] = '\0';
        }
    }
    BIO_free(b);
    if (out[0] == '\0')
        snprintf(out, cap, "(empty subject)");
}

static int is_self_issued(const X509 *x)
{
    return X509_NAME_cmp(X509_get_subject_name(x), X509_get_issuer_name(x)) == 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int asn1_time_to_unix(const ASN1_TIME *t, int64_t *out)
{
    struct tm tm;
    if (t == NULL || !ASN1_TIME_check(t) || !ASN1_TIME_to_tm(t, &tm))
        return -1;
    *out = days_from_civil((int64_t)tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday) * 86400 +
           tm.tm_hour * 3600 + tm.tm_min * 60 + tm.tm_sec;
    return 0;
}

static int has_ext(const X509 *x, int nid, int *critical)
{
    int i = X509_get_ext_by_NID(x, nid, -1);
    if (i < 0)
        return 0;
    if (critical != NULL)
        *critical = X509_EXTENSION_get_critical(X509_get_ext(x, i));
    return 1;
}

/* ---- syntax of names (SANs and name-constraint bases) --------------------- */

/* LDH host name: labels of letters, digits, '-' (and '_' when lenient), no
 * empty label, no leading/trailing '-', at most 253 octets. */
static int dns_name_ok(const char *s, size_t len, int allow_underscore)
{
    if (len == 0 || len > 253)
        return 0;
    size_t label = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '.') {
            if (label == 0 || s[i - 1] == '-')
                return 0;
            label = 0;
            continue;
        }
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '-' || (allow_underscore && c == '_');
        if (!ok || (label == 0 && c == '-') || ++label > 63)
            return 0;
    }
    return label > 0 && s[len - 1] != '-';
}

/* A SAN dNSName: host name, optionally with one leading "*." wildcard label. */
static int san_dns_ok(const ASN1_IA5STRING *v)
{
    const char *s = (const char *)ASN1_STRING_get0_data(v);
    size_t len = (size_t)ASN1_STRING_length(v);
    if (len > 2 && s[0] == '*' && s[1] == '.')
        return dns_name_ok(s + 2, len - 2, 1);
    return dns_name_ok(s, len, 1);
}

/* local@domain with exactly one '@', a non-empty local part of printable
 * ASCII and a host-name domain. */
static int mailbox_ok(const char *s, size_t len)
{
    const char *at = memchr(s, '@', len);
    if (at == NULL || at == s)
        return 0;
    size_t local = (size_t)(at - s);
    if (memchr(at + 1, '@', len - local - 1) != NULL)
        return 0;
    for (size_t i = 0; i < local; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
            return 0;
    return dns_name_ok(at + 1, len - local - 1, 0);
}

static int san_email_ok(const ASN1_IA5STRING *v)
{
    return mailbox_ok((const char *)ASN1_STRING_get0_data(v), (size_t)ASN1_STRING_length(v));
}

/* RFC 5280 4.2.1.10 rfc822Name constraint: a mailbox, a host, or ".domain". */
static int nc_email_ok(const ASN1_IA5STRING *v)
{
    const char *s = (const char *)ASN1_STRING_get0_data(v);
    size_t len = (size_t)ASN1_STRING_length(v);
    if (memchr(s, '@', len) != NULL)
        return mailbox_ok(s, len);
    if (len > 1 && s[0] == '.')
        return dns_name_ok(s + 1, len - 1, 0);
    return dns_name_ok(s, len, 0);
}

/* iPAddress constraint: address + mask of 8 or 32 octets, the mask a prefix. */
static int nc_ip_ok(const ASN1_OCTET_STRING *v)
{
    int len = ASN1_STRING_length(v);
    if (len != 8 && len != 32)
        return 0;
    const unsigned char *p = ASN1_STRING_get0_data(v) + len / 2;
    int seen_zero = 0;
    for (int i = 0; i < len / 2; i++) {
        for (int bit = 7; bit >= 0; bit--) {
            int one = (p[i] >> bit) & 1;
            if (one && seen_zero)
                return 0;
            if (!one)
                seen_zero = 1;
        }
    }
    return 1;
}

static int nc_subtrees_ok(STACK_OF(GENERAL_SUBTREE) * st)
{
    for (int i = 0; i < sk_GENERAL_SUBTREE_num(st); i++) {
        GENERAL_SUBTREE *t = sk_GENERAL_SUBTREE_value(st, i);
        /* minimum MUST be zero and maximum MUST be absent (4.2.1.10). */
        if (t->maximum != NULL || (t->minimum != NULL && ASN1_INTEGER_get(t->minimum) != 0))
            return 0;
        GENERAL_NAME *g = t->base;
        switch (g->type) {
        case GEN_DNS: {
            int len = ASN1_STRING_length(g->d.dNSName);
            /* an empty dNSName constraint matches every name: allowed */
            if (len != 0 &&
                !dns_name_ok((const char *)ASN1_STRING_get0_data(g->d.dNSName), (size_t)len, 0))
                return 0;
            break;
        }
        case GEN_EMAIL:
            if (!nc_email_ok(g->d.rfc822Name))
                return 0;
            break;
        case GEN_IPADD:
            if (!nc_ip_ok(g->d.iPAddress))
                return 0;
            break;
        default:
            break;
        }
    }
    return 1;
}

/* ---- one certificate ---------------------------------------------------- */

enum role { ROLE_LEAF, ROLE_CA, ROLE_ANCHOR };

static const char *role_name(enum role r)
{
    return r == ROLE_LEAF ? "leaf" : r == ROLE_CA ? "intermediate CA" : "trusted CA";
}

static int check_serial(const X509 *x, const char *subj, struct hub_err *err)
{
    const ASN1_INTEGER *sn = X509_get0_serialNumber(x);
    if (ASN1_STRING_type(sn) == V_ASN1_NEG_INTEGER)
        return HUB_ERR(err, HUB_E_CHAIN_PROFILE, "negative serial number: %s", subj);
    if (ASN1_STRING_length(sn) > 20)
        return HUB_ERR(err, HUB_E_CHAIN_PROFILE, "serial number longer than 20 octets: %s", subj);
    const unsigned char *p = ASN1_STRING_get0_data(sn);
    int zero = 1;
    for (int i = 0; i < ASN1_STRING_length(sn); i++)
        zero &= p[i] == 0;
    if (zero)
        return HUB_ERR(err, HUB_E_CHAIN_PROFILE, "serial number is zero: %s", subj);
    return 0;
}

/* The algorithm of the certificate's own signature. */
static int check_signature_alg(const X509 *x, const char *subj, struct hub_err *err)
{
    const X509_ALGOR *outer = NULL;
    X509_get0_signature(NULL, &outer, x);
    if (outer == NULL || X509_ALGOR_cmp(outer, X509_get0_tbs_sigalg(x)) != 0)
        return HUB_ERR(err, HUB_E_CHAIN_PROFILE,
                       "signature algorithm differs from the one in the signed part: %s", subj);
    int mdnid = NID_undef, pknid = NID_undef;
    if (!X509_get_signature_info((X509 *)x, &mdnid, &pknid, NULL, NULL))
        return HUB_ERR(err, HUB_E_CHAIN_WEAK_CRYPTO, "unsupported signature algorithm %s: %s",
                       OBJ_nid2ln(OBJ_obj2nid(outer->algorithm)), subj);
    int md_ok = mdnid == NID_sha256 || mdnid == NID_sha384 || mdnid == NID_sha512;
    int pk_ok =
        pknid == NID_rsaEncryption || pknid == NID_rsassaPss || pknid == NID_X9_62_id_ecPublicKey;
    if (!md_ok || !pk_ok)
        return HUB_ERR(err, HUB_E_CHAIN_WEAK_CRYPTO,
                       "weak or unsupported signature algorithm %s: %s",
                       OBJ_nid2ln(OBJ_obj2nid(outer->algorithm)), subj);
    return 0;
}

static int check_key(const X509 *x, const char *subj, struct hub_err *err)
{
    X509_PUBKEY *pub = X509_get_X509_PUBKEY(x);
    ASN1_OBJECT *alg = NULL;
    X509_ALGOR *palg = NULL;
    if (pub == NULL || !X509_PUBKEY_get0_param(&alg, NULL, NULL, &palg, pub))
        return HUB_ERR(err, HUB_E_CHAIN_PROFILE, "unreadable public key: %s", subj);
    int nid = OBJ_obj2nid(alg);
    EVP_PKEY *pkey = X509_get0_pubkey(x);
    if (nid == NID_rsaEncryption || nid == NID_rsassaPss) {
        if (pkey == NULL)
            return HUB_ERR(err, HUB_E_CHAIN_PROFILE, "malformed RSA public key: %s", subj);
        int bits = EVP_PKEY_get_bits(pkey);
        if (bits < 2048)
            return HUB_ERR(err, HUB_E_CHAIN_WEAK_CRYPTO, "RSA key of %d bits (< 2048): %s", bits,
                           subj);
        if (bits > HUB_PKI_VERIFY_MAX_RSA_BITS)
            return HUB_ERR(err, HUB_E_CHAIN_WEAK_CRYPTO, "RSA key of %d bits (> %d): %s", bits,
                           HUB_PKI_VERIFY_MAX_RSA_BITS, subj);
        return 0;
    }
    if (nid == NID_X9_62_id_ecPublicKey) {
        int ptype = V_ASN1_UNDEF;
        const void *pval = NULL;
        X509_ALGOR_get0(NULL, &ptype, &pval, palg);
        if (ptype != V_ASN1_OBJECT)
            return HUB_ERR(err, HUB_E_CHAIN_WEAK_CRYPTO,
                           "EC key with explicit curve parameters (only named curves): %s", subj);
        int cnid = OBJ_obj2nid(pval);
        if (cnid != NID_X9_62_prime256v1 && cnid != NID_secp384r1 && cnid != NID_secp521r1)
            return HUB_ERR(err, HUB_E_CHAIN_WEAK_CRYPTO,
                           "EC curve %s not allowed (P-256, P-384, P-521 only): %s",
                           cnid == NID_undef ? "unknown" : OBJ_nid2sn(cnid), subj);
        if (pkey == NULL)
            return HUB_ERR(err, HUB_E_CHAIN_PROFILE, "malformed EC public key: %s", subj);
        return 0;
    }
    return HUB_ERR(err, HUB_E_CHAIN_WEAK_CRYPTO,
                   "public key algorithm %s not allowed (RSA >= 2048 or ECDSA only): %s",
                   nid == NID_undef ? "unknown" : OBJ_nid2ln(nid), subj);
}

static int check_validity(const X509 *x, int64_t at, const char *subj, struct hub_err *err)
{
    int64_t nb, na;
    if (asn1_time_to_unix(X509_get0_notBefore(x), &nb) != 0 ||
        asn1_time_to_unix(X509_get0_notAfter(x), &na) != 0)
        return HUB_ERR(err, HUB_E_CHAIN_PROFILE, "malformed validity period: %s", subj);
    char when[HUB_TIME_ISO_LEN];
    if (at < nb) {
        hub_time_iso8601((time_t)nb, when);
        return HUB_ERR(err, HUB_E_CERT_NOT_YET_VALID, "certificate not valid before %s: %s", when,
                       subj);
    }
    if (at > na) { /* RFC 5280 4.1.2.5: notAfter is inclusive */
        hub_time_iso8601((time_t)na, when);
        return HUB_ERR(err, HUB_E_CERT_EXPIRED, "certificate expired at %s: %s", when, subj);
    }
    return 0;
}

/* Does the EKU extension (if any) of x allow `want`? */
static int eku_allows(X509 *x, enum hub_pki_eku want)
{
    if (want == HUB_PKI_EKU_NONE || !(X509_get_extension_flags(x) & EXFLAG_XKUSAGE))
        return 1;
    uint32_t xku = X509_get_extended_key_usage(x);
    if (xku & XKU_ANYEKU)
        return 1;
    if (want == HUB_PKI_EKU_CLIENT_AUTH)
        return (xku & XKU_SSL_CLIENT) != 0;
    if (want == HUB_PKI_EKU_SERVER_AUTH)
        return (xku & XKU_SSL_SERVER) != 0;
    return 0; /* ANY wanted: only anyExtendedKeyUsage (above) satisfies */
}

static const char *eku_name(enum hub_pki_eku e)
{
    switch (e) {
    case HUB_PKI_EKU_CLIENT_AUTH:
        return "clientAuth";
    case HUB_PKI_EKU_SERVER_AUTH:
        return "serverAuth";
    case HUB_PKI_EKU_ANY:
        return "anyExtendedKeyUsage";
    default:
        return "none";
    }
}

/* Extensions whose presence we check decode cleanly and appear once. */
static const int decoded_nids[] = {
    NID_basic_constraints,
    NID_key_usage,
    NID_ext_key_usage,
    NID_subject_alt_name,
    NID_issuer_alt_name,
    NID_name_constraints,
    NID_subject_key_identifier,
    NID_authority_key_identifier,
    NID_info_access,
    NID_crl_distribution_points,
    NID_certificate_policies,
    NID_policy_constraints,
};

/* Extensions we process (or may safely ignore) when marked critical. Policy
 * processing is not implemented: a critical policyConstraints, policyMappings
 * or inhibitAnyPolicy is therefore an unknown critical extension. */
static int critical_supported(int nid)
{
    return nid == NID_basic_constraints || nid == NID_key_usage || nid == NID_ext_key_usage ||
           nid == NID_subject_alt_name || nid == NID_name_constraints ||
           nid == NID_certificate_policies;
}

static int check_extensions(X509 *x, enum role role, enum hub_pki_eku eku, const char *subj,
                            struct hub_err *err)
{
    int n = X509_get_ext_count(x);
    if (n > HUB_PKI_VERIFY_MAX_EXTENSIONS)
        return HUB_ERR(err, HUB_E_CHAIN_PROFILE, "more than %d extensions: %s",
                       HUB_PKI_VERIFY_MAX_EXTENSIONS, subj);
    uint32_t flags = X509_get_extension_flags(x);
    if (flags & EXFLAG_INVALID)
        return HUB_ERR(err, HUB_E_CHAIN_PROFILE, "malformed extension: %s", subj);
    for (int i = 0; i < n; i++) {
        X509_EXTENSION *ext = X509_get_ext(x, i);
        const ASN1_OBJECT *obj = X509_EXTENSION_get_object(ext);
        for (int j = i + 1; j < n; j++)
            if (OBJ_cmp(obj, X509_EXTENSION_get_object(X509_get_ext(x, j))) == 0)
                return HUB_ERR(err, HUB_E_CHAIN_PROFILE, "duplicate extension %s: %s",
                               OBJ_nid2ln(OBJ_obj2nid(obj)), subj);
    }
    for (size_t i = 0; i < sizeof(decoded_nids) / sizeof(decoded_nids[0]); i++) {
        if (!has_ext(x, decoded_nids[i], NULL))
            continue;
        int crit = 0;
        void *d = X509_get_ext_d2i(x, decoded_nids[i], &crit, NULL);
        if (d == NULL)
            return HUB_ERR(err, HUB_E_CHAIN_PROFILE, "malformed %s extension: %s",
                           OBJ_nid2ln(decoded_nids[i]), subj);
        X509V3_EXT_METHOD const *m = X509V3_EXT_get_nid(decoded_nids[i]);
        if (m != NULL && m->it != NULL)
            ASN1_item_free(d, ASN1_ITEM_ptr(m->it));
    }

    int crit = 0;
    if (has_ext(x, NID_authority_key_identifier, &crit) && crit)
        return HUB_ERR(err, HUB_E_CHAIN_PROFILE, "authorityKeyIdentifier must not be critical: %s",
                       subj);
    if (has_ext(x, NID_subject_key_identifier, &crit) && crit)
        return HUB_ERR(err, HUB_E_CHAIN_PROFILE, "subjectKeyIdentifier must not be critical: %s",
                       subj);
    if (has_ext(x, NID_info_access, &crit) && crit)
        return HUB_ERR(err, HUB_E_CHAIN_PROFILE, "authorityInfoAccess must not be critical: %s",
                       subj);
    if (has_ext(x, NID_policy_constraints, &crit) && !crit)
        return HUB_ERR(err, HUB_E_CHAIN_PROFILE, "policyConstraints must be critical: %s", subj);
    for (int i = 0; i < n; i++) {
        X509_EXTENSION *ext = X509_get_ext(x, i);
        int nid = OBJ_obj2nid(X509_EXTENSION_get_object(ext));
        if (X509_EXTENSION_get_critical(ext) && !critical_supported(nid)) {
            char oid[80];
            OBJ_obj2txt(oid, sizeof(oid), X509_EXTENSION_get_object(ext), 0);
            return HUB_ERR(err, HUB_E_CHAIN_CRITICAL_EXT, "unknown critical extension %s: %s", oid,
                           subj);
        }
    }
    /* AKI exists to find the issuer; an anchor's issuer is never looked up. */
    if (role != ROLE_ANCHOR && !has_ext(x, NID_authority_key_identifier, NULL) &&
        !is_self_issued(x))
        return HUB_ERR(err, HUB_E_CHAIN_PROFILE, "authorityKeyIdentifier missing: %s", subj);

    /* subjectAltName: never empty; required and critical with an empty subject. */
    int san_crit = 0;
    int has_san = has_ext(x, NID_subject_alt_name, &san_crit);
    int empty_subject = X509_NAME_entry_count(X509_get_subject_name(x)) == 0;
    if (empty_subject && role != ROLE_LEAF)
        return HUB_ERR(err, HUB_E_CHAIN_PROFILE, "CA certificate with an empty subject");
    if (empty_subject && (!has_san || !san_crit))
        return HUB_ERR(err, HUB_E_CHAIN_PROFILE,
                       "empty subject without a critical subjectAltName: %s", subj);
    if (has_san) {
        GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
        int bad = gens == NULL || sk_GENERAL_NAME_num(gens) == 0;
        for (int i = 0; !bad && i < sk_GENERAL_NAME_num(gens); i++) {
            GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
            if (g->type == GEN_DNS)
                bad = !san_dns_ok(g->d.dNSName);
            else if (g->type == GEN_EMAIL)
                bad = !san_email_ok(g->d.rfc822Name);
            else if (g->type == GEN_IPADD)
                bad = ASN1_STRING_length(g->d.iPAddress) != 4 &&
                      ASN1_STRING_length(g->d.iPAddress) != 16;
        }
        GENERAL_NAMES_free(gens);
        if (bad)
            return HUB_ERR(err, HUB_E_CHAIN_PROFILE, "malformed subjectAltName: %s", subj);
    }
    if (flags & EXFLAG_XKUSAGE) {
        EXTENDED_KEY_USAGE *xku = X509_get_ext_d2i(x, NID_ext_key_usage, NULL, NULL);
        int empty = xku == NULL || sk_ASN1_OBJECT_num(xku) == 0;
        EXTENDED_KEY_USAGE_free(xku);
        if (empty)
            return HUB_ERR(err, HUB_E_CHAIN_PROFILE, "empty extendedKeyUsage: %s", subj);
    }

    uint32_t ku = X509_get_key_usage(x); /* UINT32_MAX when absent */
    int has_nc = has_ext(x, NID_name_constraints, &crit);
    if (role == ROLE_LEAF) {
        if (flags & EXFLAG_CA)
            return HUB_ERR(err, HUB_E_CHAIN_LEAF_IS_CA,
                           "leaf certificate is a CA (basicConstraints CA:TRUE): %s", subj);
        if ((flags & EXFLAG_KUSAGE) && (ku & KU_KEY_CERT_SIGN))
            return HUB_ERR(err, HUB_E_CHAIN_KEY_USAGE,
                           "keyCertSign in a certificate that is not a CA: %s", subj);
        if (has_nc)
            return HUB_ERR(err, HUB_E_CHAIN_PROFILE,
                           "nameConstraints in a certificate that is not a CA: %s", subj);
        if (!eku_allows(x, eku))
            return HUB_ERR(err, HUB_E_CHAIN_EKU, "extendedKeyUsage does not allow %s: %s",
                           eku_name(eku), subj);
        return 0;
    }

    /* A CA: v3 with a critical basicConstraints CA:TRUE. */
    int bc_crit = 0;
    if (!has_ext(x, NID_basic_constraints, &bc_crit))
        return HUB_ERR(err, HUB_E_CHAIN_NOT_CA, "%s has no basicConstraints, so it is not a CA: %s",
                       role_name(role), subj);
    if (!(flags & EXFLAG_CA))
        return HUB_ERR(err, HUB_E_CHAIN_NOT_CA, "%s is not a CA (basicConstraints CA:FALSE): %s",
                       role_name(role), subj);
    if (!bc_crit)
        return HUB_ERR(err, HUB_E_CHAIN_PROFILE, "basicConstraints of a CA must be critical: %s",
                       subj);
    if ((flags & EXFLAG_KUSAGE) && !(ku & KU_KEY_CERT_SIGN))
        return HUB_ERR(err, HUB_E_CHAIN_KEY_USAGE, "CA keyUsage lacks keyCertSign: %s", subj);
    if (!has_ext(x, NID_subject_key_identifier, NULL))
        return HUB_ERR(err, HUB_E_CHAIN_PROFILE, "CA without subjectKeyIdentifier: %s", subj);
    if (has_nc) {
        if (!crit)
            return HUB_ERR(err, HUB_E_CHAIN_PROFILE, "nameConstraints must be critical: %s", subj);
        NAME_CONSTRAINTS *nc = X509_get_ext_d2i(x, NID_name_constraints, NULL, NULL);
        int bad = nc == NULL;
        if (!bad) {
            int np = nc->permittedSubtrees ? sk_GENERAL_SUBTREE_num(nc->permittedSubtrees) : -1;
            int ne = nc->excludedSubtrees ? sk_GENERAL_SUBTREE_num(nc->excludedSubtrees) : -1;
            /* Absent-both and present-but-empty are both forbidden (4.2.1.10). */
            bad = (np <= 0 && ne <= 0) || np == 0 || ne == 0 ||
                  !nc_subtrees_ok(nc->permittedSubtrees) || !nc_subtrees_ok(nc->excludedSubtrees);
        }
        NAME_CONSTRAINTS_free(nc);
        if (bad)
            return HUB_ERR(err, HUB_E_CHAIN_PROFILE, "malformed nameConstraints: %s", subj);
    }
    if (!eku_allows(x, eku))
        return HUB_ERR(err, HUB_E_CHAIN_EKU, "CA extendedKeyUsage does not allow %s: %s",
                       eku_name(eku), subj);
    return 0;
}

/* Every per-certificate rule: independent of the path the certificate is on. */
static int check_cert(X509 *x, enum role role, const struct hub_pki_verify_opts *opts,
                      struct hub_err *err)
{
    char subj[SUBJ_MAX];
    subject_text(x, subj, sizeof(subj));
    long version = X509_get_version(x);
    if (version == X509_VERSION_1) {
        if (role != ROLE_LEAF)
            return HUB_ERR(err, HUB_E_CHAIN_NOT_CA,
                           "%s is an X.509 v1 certificate; CA certificates must be v3: %s",
                           role_name(role), subj);
        if (X509_get_ext_count(x) != 0)
            return HUB_ERR(err, HUB_E_CHAIN_PROFILE, "v1 certificate with extensions: %s", subj);
    } else if (version != X509_VERSION_3) {
        return HUB_ERR(err, HUB_E_CHAIN_PROFILE, "X.509 version %ld not accepted: %s", version + 1,
                       subj);
    }
    int rc;
    if ((rc = check_validity(x, opts->at, subj, err)) != 0)
        return rc;
    /* An anchor is registered by the operator, its serial never identifies it
     * to anyone we ask (no CRL/OCSP), so old roots with serial 0 are fine. */
    if (role != ROLE_ANCHOR && (rc = check_serial(x, subj, err)) != 0)
        return rc;
    if (X509_NAME_entry_count(X509_get_issuer_name(x)) == 0)
        return HUB_ERR(err, HUB_E_CHAIN_PROFILE, "empty issuer name: %s", subj);
    /* The anchor's own signature is never relied upon, so not judged. */
    if (role != ROLE_ANCHOR && (rc = check_signature_alg(x, subj, err)) != 0)
        return rc;
    if ((rc = check_key(x, subj, err)) != 0)
        return rc;
    if (version == X509_VERSION_1) {
        /* The v1 device-leaf exception: no extensions, so identity is the CN. */
        X509_NAME *nm = X509_get_subject_name(x);
        int idx = X509_NAME_get_index_by_NID(nm, NID_commonName, -1);
        ASN1_STRING *cn = idx >= 0 ? X509_NAME_ENTRY_get_data(X509_NAME_get_entry(nm, idx)) : NULL;
        if (cn == NULL || ASN1_STRING_length(cn) == 0)
            return HUB_ERR(err, HUB_E_CHAIN_PROFILE, "v1 leaf without a subject CN: %s", subj);
        return 0;
    }
    return check_extensions(x, role, opts->eku, subj, err);
}

/* ---- trust -------------------------------------------------------------- */

static int cmp_subject(const void *a, const void *b)
{
    X509 *const *x = a, *const *y = b;
    return X509_NAME_cmp(X509_get_subject_name(*x), X509_get_subject_name(*y));
}

static int cmp_crl_issuer(const void *a, const void *b)
{
    const struct trust_crl *x = a, *y = b;
    return X509_NAME_cmp(x->name, y->name);
}

/* Pairs each CRL with the anchor whose key signed it. */
static int trust_add_crls(struct hub_pki_trust *t, X509_CRL *const *crls, size_t n,
                          struct hub_err *err)
{
    if (n == 0)
        return 0;
    t->crls = calloc(n, sizeof(*t->crls));
    if (t->crls == NULL)
        return HUB_ERR(err, HUB_E_NOMEM, "trust store of %zu CRLs", n);
    for (size_t i = 0; i < n; i++) {
        X509_CRL *crl = crls[i];
        if (crl == NULL)
            return HUB_ERR(err, HUB_E_INVALID_ARG, "CRL %zu is NULL", i);
        X509 *signer = NULL;
        struct hub_err first = {0};
        for (size_t a = 0; a < t->count && signer == NULL; a++) {
            struct hub_err e = {0};
            if (hub_pki_crl_issuer_check(t->anchors[a], crl, &e) == 0)
                signer = t->anchors[a];
            else if (first.code == 0 ||
                     (first.code == HUB_E_CHAIN_UNTRUSTED && e.code != HUB_E_CHAIN_UNTRUSTED))
                first = e; /* the most telling reason: one that got past the name */
        }
        if (signer == NULL) {
            if (first.code == 0)
                HUB_ERR(&first, HUB_E_CHAIN_UNTRUSTED, "CRL %zu: no trust anchor", i);
            if (err != NULL)
                *err = first;
            return first.code;
        }
        EVP_PKEY *key = X509_get0_pubkey(signer); /* non-NULL: the CRL verified with it */
        if (key == NULL || !EVP_PKEY_up_ref(key))
            return HUB_ERR(err, HUB_E_INTERNAL, "CRL %zu: signer key unavailable", i);
        if (!X509_CRL_up_ref(crl)) {
            EVP_PKEY_free(key);
            return HUB_ERR(err, HUB_E_INTERNAL, "CRL %zu: reference", i);
        }
        struct trust_crl *c = &t->crls[t->crl_count++];
        c->crl = crl;
        c->key = key;
        c->name = X509_CRL_get_issuer(crl);
        /* OpenSSL sorts the revoked entries on the first lookup; do it now,
         * while the object is private, so shared lookups only read. */
        X509_REVOKED *unused = NULL;
        (void)X509_CRL_get0_by_serial(crl, &unused, X509_get0_serialNumber(signer));
        ERR_clear_error();
    }
    if (t->crl_count > 1)
        qsort(t->crls, t->crl_count, sizeof(*t->crls), cmp_crl_issuer);
    return 0;
}

int hub_pki_trust_new(STACK_OF(X509) * anchors, struct hub_pki_trust **out_new, struct hub_err *err)
{
    return hub_pki_trust_new_with_crls(anchors, NULL, 0, out_new, err);
}

int hub_pki_trust_new_with_crls(STACK_OF(X509) * anchors, X509_CRL *const *crls, size_t crl_count,
                                struct hub_pki_trust **out_new, struct hub_err *err)
{
    if (out_new == NULL)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "no output pointer");
    *out_new = NULL;
    int n = anchors != NULL ? sk_X509_num(anchors) : 0;
    struct hub_pki_trust *t = calloc(1, sizeof(*t));
    if (t == NULL || (n > 0 && (t->anchors = calloc((size_t)n, sizeof(X509 *))) == NULL) ||
        (t->memo = calloc(1, sizeof(*t->memo))) == NULL) {
        if (t != NULL)
            free(t->anchors);
        free(t);
        return HUB_ERR(err, HUB_E_NOMEM, "trust store of %d certificates", n);
    }
    pthread_mutex_init(&t->memo->mu, NULL);
    for (int i = 0; i < n; i++) {
        X509 *x = sk_X509_value(anchors, i);
        if (x == NULL || !X509_up_ref(x)) {
            hub_pki_trust_free(t);
            return HUB_ERR(err, HUB_E_INVALID_ARG, "trust anchor %d is unusable", i);
        }
        t->anchors[t->count++] = x;
        /* Fill OpenSSL's lazy caches now, while the object is still private:
         * extension flags, canonical names, the decoded public key. */
        (void)X509_get_extension_flags(x);
        (void)X509_NAME_cmp(X509_get_subject_name(x), X509_get_issuer_name(x));
        (void)X509_get0_pubkey(x);
    }
    if (t->count > 1)
        qsort(t->anchors, t->count, sizeof(X509 *), cmp_subject);
    int rc = trust_add_crls(t, crls, crl_count, err);
    if (rc != 0) {
        hub_pki_trust_free(t);
        return rc;
    }
    *out_new = t;
    return 0;
}

void hub_pki_trust_free(struct hub_pki_trust *trust)
{
    if (trust == NULL)
        return;
    for (size_t i = 0; i < trust->count; i++)
        X509_free(trust->anchors[i]);
    free(trust->anchors);
    for (size_t i = 0; i < trust->crl_count; i++) {
        X509_CRL_free(trust->crls[i].crl);
        EVP_PKEY_free(trust->crls[i].key);
    }
    free(trust->crls);
    if (trust->memo != NULL) {
        pthread_mutex_destroy(&trust->memo->mu);
        free(trust->memo->slots);
        free(trust->memo->edges);
        free(trust->memo);
    }
    free(trust);
}

/* Index of the first anchor whose subject is `name`, or trust->count. */
static size_t anchors_lower_bound(const struct hub_pki_trust *t, const X509_NAME *name)
{
    size_t lo = 0, hi = t->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (X509_NAME_cmp(X509_get_subject_name(t->anchors[mid]), name) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static int is_anchor(const struct hub_pki_trust *t, X509 *x)
{
    for (size_t i = anchors_lower_bound(t, X509_get_subject_name(x));
         i < t->count &&
         X509_NAME_cmp(X509_get_subject_name(t->anchors[i]), X509_get_subject_name(x)) == 0;
         i++)
        if (X509_cmp(t->anchors[i], x) == 0)
            return 1;
    return 0;
}

/* Is `child` (whose signature `issuer` verified) listed in a CRL signed by
 * `issuer`'s name and key? Fills *err naming the certificate when it is. */
static int revoked_by(const struct hub_pki_trust *t, X509 *child, X509 *issuer, struct hub_err *err)
{
    if (t->crl_count == 0)
        return 0;
    const X509_NAME *name = X509_get_issuer_name(child);
    size_t lo = 0, hi = t->crl_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (X509_NAME_cmp(t->crls[mid].name, name) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    EVP_PKEY *key = X509_get0_pubkey(issuer);
    for (size_t i = lo; i < t->crl_count && X509_NAME_cmp(t->crls[i].name, name) == 0; i++) {
        if (key == NULL || EVP_PKEY_eq(t->crls[i].key, key) != 1 ||
            !hub_pki_crl_lists(t->crls[i].crl, child))
            continue;
        char subj[SUBJ_MAX], isubj[SUBJ_MAX], serial[80] = "?";
        subject_text(child, subj, sizeof(subj));
        subject_text(issuer, isubj, sizeof(isubj));
        BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(child), NULL);
        char *hex = bn != NULL ? BN_bn2hex(bn) : NULL;
        if (hex != NULL)
            snprintf(serial, sizeof(serial), "%.64s", hex);
        OPENSSL_free(hex);
        BN_free(bn);
        HUB_ERR(err, HUB_E_CHAIN_REVOKED, "certificate serial %s revoked by the CRL of %s: %s",
                serial, isubj, subj);
        return 1;
    }
    return 0;
}

/* ---- path search -------------------------------------------------------- */

struct search {
    const struct hub_pki_trust *trust;
    struct hub_pki_verify_opts opts;
    X509 *untrusted[HUB_PKI_VERIFY_MAX_UNTRUSTED];
    int n_untrusted;
    X509 *path[HUB_PKI_VERIFY_MAX_PATH_CAS + 2]; /* leaf, intermediates..., anchor */
    int len;
    int steps_left;
    long nc_left;
    int exhausted;
    struct hub_err best; /* reason from the path that got furthest */
    int best_depth;
    X509 *found_path[HUB_PKI_VERIFY_MAX_PATH_CAS + 2]; /* the valid path, for the memo */
    int found_len;
};

static void remember(struct search *s, int depth, const struct hub_err *e)
{
    /* A revocation is the answer whatever else failed on other paths: the
     * operator revoked that certificate, and must read that. */
    if (s->best_depth >= 0 && s->best.code == HUB_E_CHAIN_REVOKED)
        return;
    if (depth > s->best_depth || e->code == HUB_E_CHAIN_REVOKED) {
        s->best = *e;
        s->best_depth = depth;
    }
}

/* RFC 5280 4.2.1.1: a candidate whose SKI differs from the child's AKI key
 * identifier did not issue it. */
static int key_ids_compatible(X509 *child, X509 *cand)
{
    const ASN1_OCTET_STRING *akid = X509_get0_authority_key_id(child);
    const ASN1_OCTET_STRING *skid = X509_get0_subject_key_id(cand);
    return akid == NULL || skid == NULL || ASN1_OCTET_STRING_cmp(akid, skid) == 0;
}

static int in_path(const struct search *s, X509 *x)
{
    for (int i = 0; i < s->len; i++)
        if (s->path[i] == x || X509_cmp(s->path[i], x) == 0)
            return 1;
    return 0;
}

static int names_in(X509 *x)
{
    GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    int n = 1 + (gens != NULL ? sk_GENERAL_NAME_num(gens) : 0);
    GENERAL_NAMES_free(gens);
    X509_NAME *nm = X509_get_subject_name(x);
    for (int i = -1; (i = X509_NAME_get_index_by_NID(nm, NID_pkcs9_emailAddress, i)) >= 0;)
        n++;
    return n;
}

/* Path-wide rules on path[0..len-1], path[len-1] being the anchor. */
static int check_path(struct search *s, struct hub_err *err)
{
    char subj[SUBJ_MAX], below[SUBJ_MAX];
    /* pathLen (4.2.1.9, 6.1.4 (l)(m)): counts non-self-issued intermediates
     * below each CA; the leaf is not counted. */
    for (int i = 1; i < s->len; i++) {
        long pathlen = X509_get_pathlen(s->path[i]);
        if (pathlen < 0)
            continue;
        long count = 0;
        for (int j = 1; j < i; j++)
            count += !is_self_issued(s->path[j]);
        if (count > pathlen) {
            subject_text(s->path[i], subj, sizeof(subj));
            return HUB_ERR(err, HUB_E_CHAIN_PATHLEN,
                           "path length constraint %ld of %s exceeded by %ld intermediates",
                           pathlen, subj, count);
        }
    }
    /* Name constraints (6.1.3 (b)(c)): every CA's constraints, the anchor's
     * included, apply to every certificate below it, except self-issued
     * intermediates. */
    for (int i = 1; i < s->len; i++) {
        if (!has_ext(s->path[i], NID_name_constraints, NULL))
            continue;
        NAME_CONSTRAINTS *nc = X509_get_ext_d2i(s->path[i], NID_name_constraints, NULL, NULL);
        if (nc == NULL)
            return HUB_ERR(err, HUB_E_CHAIN_PROFILE, "malformed nameConstraints");
        long subtrees =
            (nc->permittedSubtrees ? sk_GENERAL_SUBTREE_num(nc->permittedSubtrees) : 0) +
            (nc->excludedSubtrees ? sk_GENERAL_SUBTREE_num(nc->excludedSubtrees) : 0);
        int rc = 0;
        for (int j = 0; j < i && rc == 0; j++) {
            if (j > 0 && is_self_issued(s->path[j]))
                continue;
            s->nc_left -= subtrees * names_in(s->path[j]);
            if (s->nc_left < 0) {
                subject_text(s->path[i], subj, sizeof(subj));
                rc = HUB_ERR(err, HUB_E_CHAIN_NAME_CONSTRAINTS,
                             "name constraints too complex to check (more than %d comparisons): "
                             "%s",
                             HUB_PKI_VERIFY_MAX_NC_CHECKS, subj);
                break;
            }
            int v = NAME_CONSTRAINTS_check(s->path[j], nc);
            if (v != X509_V_OK) {
                subject_text(s->path[i], subj, sizeof(subj));
                subject_text(s->path[j], below, sizeof(below));
                rc = HUB_ERR(err, HUB_E_CHAIN_NAME_CONSTRAINTS,
                             "%s violates the name constraints of %s (%s)", below, subj,
                             X509_verify_cert_error_string(v));
            }
        }
        NAME_CONSTRAINTS_free(nc);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int extend(struct search *s);
static int memo_hash_cert(EVP_MD_CTX *md, X509 *x);

/* The edge key of (child, issuer); -1 when it cannot be computed. */
static int edge_key(X509 *child, X509 *issuer, unsigned char key[32])
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned int len = 0;
    int ok = md != NULL && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
             memo_hash_cert(md, child) == 0 && memo_hash_cert(md, issuer) == 0 &&
             EVP_DigestFinal_ex(md, key, &len) == 1 && len == 32;
    EVP_MD_CTX_free(md);
    return ok ? 0 : -1;
}

static size_t edge_slot(const unsigned char key[32])
{
    return ((size_t)key[0] | (size_t)key[1] << 8) % EDGE_SLOTS;
}

/* Does child's signature verify with cand's key? Remembered for CA children. */
static int signature_ok(const struct search *s, X509 *child, X509 *cand)
{
    struct verify_memo *m = s->trust->memo;
    unsigned char key[32];
    int keyed = m != NULL && s->len > 1 && edge_key(child, cand, key) == 0;
    if (keyed) {
        pthread_mutex_lock(&m->mu);
        const struct edge_entry *e = m->edges ? &m->edges[edge_slot(key)] : NULL;
        int hit = e != NULL && e->used && memcmp(e->key, key, 32) == 0;
        pthread_mutex_unlock(&m->mu);
        if (hit)
            return 1;
    }
    EVP_PKEY *pkey = X509_get0_pubkey(cand);
    if (pkey == NULL || X509_verify(child, pkey) != 1)
        return 0;
    if (keyed) {
        pthread_mutex_lock(&m->mu);
        if (m->edges == NULL)
            m->edges = calloc(EDGE_SLOTS, sizeof(*m->edges));
        if (m->edges != NULL) {
            struct edge_entry *e = &m->edges[edge_slot(key)];
            memcpy(e->key, key, 32);
            e->used = 1;
        }
        pthread_mutex_unlock(&m->mu);
    }
    return 1;
}

/* Tries `cand` as the issuer of the top of the path. 1 if a valid path was found. */
static int try_issuer(struct search *s, X509 *cand, int anchor)
{
    X509 *child = s->path[s->len - 1];
    struct hub_err e = {0};
    if (s->steps_left-- <= 0) {
        s->exhausted = 1;
        return 0;
    }
    if (check_cert(cand, anchor ? ROLE_ANCHOR : ROLE_CA, &s->opts, &e) != 0) {
        remember(s, s->len, &e);
        return 0;
    }
    if (!signature_ok(s, child, cand)) {
        char subj[SUBJ_MAX], isubj[SUBJ_MAX];
        subject_text(child, subj, sizeof(subj));
        subject_text(cand, isubj, sizeof(isubj));
        HUB_ERR(&e, HUB_E_CHAIN_SIGNATURE, "signature does not verify with the key of %s: %s",
                isubj, subj);
        remember(s, s->len, &e);
        return 0;
    }
    if (revoked_by(s->trust, child, cand, &e)) {
        remember(s, s->len, &e);
        return 0;
    }
    s->path[s->len++] = cand;
    int found = 0;
    if (anchor) {
        if (check_path(s, &e) == 0) {
            found = 1;
            memcpy(s->found_path, s->path, sizeof(s->found_path));
            s->found_len = s->len;
        } else
            remember(s, s->len, &e);
    } else {
        int depth = 0;
        for (int i = 1; i < s->len; i++)
            depth += !is_self_issued(s->path[i]);
        if (depth > s->opts.max_depth || s->len - 1 > HUB_PKI_VERIFY_MAX_PATH_CAS) {
            char subj[SUBJ_MAX];
            subject_text(cand, subj, sizeof(subj));
            HUB_ERR(&e, HUB_E_CHAIN_TOO_LONG,
                    "more than %d intermediates between leaf and trusted CA at %s",
                    s->opts.max_depth, subj);
            remember(s, s->len, &e);
        } else {
            found = extend(s);
        }
    }
    s->len--;
    return found;
}

static int extend(struct search *s)
{
    X509 *child = s->path[s->len - 1];
    const X509_NAME *want = X509_get_issuer_name(child);
    int candidates = 0, looped = 0;
    const struct hub_pki_trust *t = s->trust;
    for (size_t i = anchors_lower_bound(t, want);
         i < t->count && X509_NAME_cmp(X509_get_subject_name(t->anchors[i]), want) == 0; i++) {
        if (!key_ids_compatible(child, t->anchors[i]))
            continue;
        if (in_path(s, t->anchors[i])) {
            looped++;
            continue;
        }
        candidates++;
        if (try_issuer(s, t->anchors[i], 1))
            return 1;
        if (s->exhausted)
            return 0;
    }
    for (int i = 0; i < s->n_untrusted; i++) {
        X509 *u = s->untrusted[i];
        if (u == NULL || X509_NAME_cmp(X509_get_subject_name(u), want) != 0 ||
            !key_ids_compatible(child, u))
            continue;
        if (in_path(s, u)) {
            looped++;
            continue;
        }
        candidates++;
        if (try_issuer(s, u, 0))
            return 1;
        if (s->exhausted)
            return 0;
    }
    if (candidates == 0) {
        char subj[SUBJ_MAX], issuer[SUBJ_MAX];
        subject_text(child, subj, sizeof(subj));
        BIO *b = BIO_new(BIO_s_mem());
        issuer[0] = '\0';
        if (b != NULL &&
            X509_NAME_print_ex(b, want, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) >= 0) {
            int n = BIO_read(b, issuer, sizeof(issuer) - 1);
            issuer[n > 0 ? n : 0] = '\0';
        }
        BIO_free(b);
        struct hub_err e = {0};
        if (is_self_issued(child))
            HUB_ERR(&e, HUB_E_CHAIN_UNTRUSTED,
                    "no path to a trusted CA: self-issued certificate is not a trusted CA: %s",
                    subj);
        else if (looped > 0)
            HUB_ERR(&e, HUB_E_CHAIN_UNTRUSTED,
                    "no path to a trusted CA: the only issuers %s found form a loop: %s",
                    issuer[0] ? issuer : "(empty)", subj);
        else
            HUB_ERR(&e, HUB_E_CHAIN_UNTRUSTED,
                    "no path to a trusted CA: issuer %s is neither trusted nor presented: %s",
                    issuer[0] ? issuer : "(empty)", subj);
        remember(s, s->len, &e);
    }
    return 0;
}

/* ---- memo of successes (see struct verify_memo) ------------------------- */

/*
 * The SHA-256 of a certificate's DER, computed once per X509 object and
 * kept in its ex_data (why: i2d_X509 re-runs OpenSSL's template encoder,
 * ~10 us, and the same objects come back: a resumed session's chain, the
 * intermediates net.c shares between connections). SHA-1 (OpenSSL's own
 * cached fingerprint) is not used: a memo keyed by it would skip a signature
 * check for a chosen-prefix collision. ex_data of a shared object is read
 * and written under fp_mu only.
 */
static pthread_once_t fp_once = PTHREAD_ONCE_INIT;
static int fp_index = -1;
static pthread_mutex_t fp_mu = PTHREAD_MUTEX_INITIALIZER;

static void fp_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    (void)parent;
    (void)ad;
    (void)idx;
    (void)argl;
    (void)argp;
    OPENSSL_free(ptr);
}

static void fp_init(void)
{
    fp_index = X509_get_ex_new_index(0, NULL, NULL, NULL, fp_free);
}

static int cert_sha256(X509 *x, unsigned char out[32])
{
    pthread_once(&fp_once, fp_init);
    if (fp_index >= 0) {
        pthread_mutex_lock(&fp_mu);
        const unsigned char *have = X509_get_ex_data(x, fp_index);
        if (have != NULL)
            memcpy(out, have, 32);
        pthread_mutex_unlock(&fp_mu);
        if (have != NULL)
            return 0;
    }
    unsigned int len = 0;
    if (X509_digest(x, EVP_sha256(), out, &len) != 1 || len != 32)
        return -1;
    unsigned char *keep = fp_index >= 0 ? OPENSSL_malloc(32) : NULL;
    if (keep == NULL)
        return 0;
    memcpy(keep, out, 32);
    pthread_mutex_lock(&fp_mu);
    if (X509_get_ex_data(x, fp_index) != NULL || X509_set_ex_data(x, fp_index, keep) != 1) {
        OPENSSL_free(keep); /* another thread was first, or no memory: fine */
    }
    pthread_mutex_unlock(&fp_mu);
    return 0;
}

static int memo_hash_cert(EVP_MD_CTX *md, X509 *x)
{
    unsigned char fp[32];
    if (cert_sha256(x, fp) != 0)
        return -1;
    return EVP_DigestUpdate(md, fp, sizeof(fp)) == 1 ? 0 : -1;
}

/* The memo key of one call: 0, or -1 when it cannot be computed (no memo). */
static int memo_key(X509 *leaf, STACK_OF(X509) * untrusted, const struct hub_pki_verify_opts *o,
                    unsigned char key[32])
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok = md != NULL && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1;
    int params[2] = {(int)o->eku, o->max_depth};
    ok = ok && EVP_DigestUpdate(md, params, sizeof(params)) == 1 && memo_hash_cert(md, leaf) == 0;
    int total = untrusted != NULL ? sk_X509_num(untrusted) : 0;
    for (int i = 0; ok && i < total; i++) {
        X509 *u = sk_X509_value(untrusted, i);
        ok = u != NULL && memo_hash_cert(md, u) == 0;
    }
    unsigned int len = 0;
    ok = ok && EVP_DigestFinal_ex(md, key, &len) == 1 && len == 32;
    EVP_MD_CTX_free(md);
    return ok ? 0 : -1;
}

static size_t memo_slot(const unsigned char key[32])
{
    return ((size_t)key[0] | (size_t)key[1] << 8 | (size_t)key[2] << 16) % MEMO_SLOTS;
}

static int memo_hit(const struct hub_pki_trust *t, const unsigned char key[32], int64_t at)
{
    int hit = 0;
    pthread_mutex_lock(&t->memo->mu);
    const struct memo_entry *e = t->memo->slots ? &t->memo->slots[memo_slot(key)] : NULL;
    if (e != NULL && e->used && memcmp(e->key, key, 32) == 0 && at >= e->lo && at <= e->hi)
        hit = 1;
    pthread_mutex_unlock(&t->memo->mu);
    return hit;
}

/* Remembers the success of `s` (its path is s->path[0..len-1]). */
static void memo_store(const struct search *s, const unsigned char key[32])
{
    int64_t lo = INT64_MIN, hi = INT64_MAX;
    for (int i = 0; i < s->len; i++) {
        int64_t nb, na;
        if (asn1_time_to_unix(X509_get0_notBefore(s->path[i]), &nb) != 0 ||
            asn1_time_to_unix(X509_get0_notAfter(s->path[i]), &na) != 0)
            return;
        lo = nb > lo ? nb : lo;
        hi = na < hi ? na : hi;
    }
    struct verify_memo *m = s->trust->memo;
    pthread_mutex_lock(&m->mu);
    if (m->slots == NULL)
        m->slots = calloc(MEMO_SLOTS, sizeof(*m->slots));
    if (m->slots != NULL) {
        struct memo_entry *e = &m->slots[memo_slot(key)];
        memcpy(e->key, key, 32);
        e->lo = lo;
        e->hi = hi;
        e->used = 1;
    }
    pthread_mutex_unlock(&m->mu);
}

int hub_pki_chain_verify(const struct hub_pki_trust *trust, X509 *leaf, STACK_OF(X509) * untrusted,
                         const struct hub_pki_verify_opts *opts, struct hub_err *err)
{
    if (trust == NULL || leaf == NULL || opts == NULL)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "chain verify: missing trust, leaf or options");
    if (opts->max_depth < -1 || opts->max_depth > HUB_PKI_VERIFY_MAX_PATH_CAS)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "max_depth %d outside -1..%d", opts->max_depth,
                       HUB_PKI_VERIFY_MAX_PATH_CAS);
    unsigned char key[32];
    int keyed = trust->memo != NULL && memo_key(leaf, untrusted, opts, key) == 0;
    if (keyed && memo_hit(trust, key, opts->at))
        return 0;
    struct search *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return HUB_ERR(err, HUB_E_NOMEM, "chain verify");
    s->trust = trust;
    s->opts = *opts;
    if (s->opts.max_depth < 0)
        s->opts.max_depth = HUB_PKI_VERIFY_DEFAULT_DEPTH;
    s->steps_left = HUB_PKI_VERIFY_MAX_STEPS;
    s->nc_left = HUB_PKI_VERIFY_MAX_NC_CHECKS;
    s->best_depth = -1;

    int rc = check_cert(leaf, ROLE_LEAF, &s->opts, err);
    if (rc != 0)
        goto out_free;

    /* The first HUB_PKI_VERIFY_MAX_UNTRUSTED distinct presented certificates,
     * minus copies of the leaf and of anchors (the anchor copy is used). */
    int total = untrusted != NULL ? sk_X509_num(untrusted) : 0;
    for (int i = 0; i < total && s->n_untrusted < HUB_PKI_VERIFY_MAX_UNTRUSTED; i++) {
        X509 *u = sk_X509_value(untrusted, i);
        if (u == NULL || X509_cmp(u, leaf) == 0 || is_anchor(trust, u))
            continue;
        int dup = 0;
        for (int j = 0; j < s->n_untrusted && !dup; j++)
            dup = X509_cmp(s->untrusted[j], u) == 0;
        if (!dup)
            s->untrusted[s->n_untrusted++] = u;
    }

    s->path[0] = leaf;
    s->len = 1;
    if (extend(s)) {
        /* try_issuer pops on its way back; the found path is what extend
         * leaves in found_path. */
        if (keyed && s->found_len > 0) {
            memcpy(s->path, s->found_path, sizeof(s->path));
            s->len = s->found_len;
            memo_store(s, key);
        }
        goto out_free; /* rc == 0 */
    }
    if (s->exhausted) {
        rc = HUB_ERR(err, HUB_E_CHAIN_UNTRUSTED,
                     "gave up building a path after %d candidate issuers (last problem: %s)",
                     HUB_PKI_VERIFY_MAX_STEPS, s->best_depth >= 0 ? s->best.msg : "none");
    } else if (s->best_depth >= 0) {
        rc = s->best.code;
        if (err != NULL)
            *err = s->best;
    } else {
        rc = HUB_ERR(err, HUB_E_CHAIN_UNTRUSTED, "no path to a trusted CA");
    }

out_free:
    free(s);
    return rc;
}
