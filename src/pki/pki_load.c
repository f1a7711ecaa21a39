/*
 * Loading certificates from bytes an operator (or an attacker) handed us.
 *
 * Accepted input (at most HUB_PKI_MAX_FILE_BYTES):
 *   PEM  one or more blocks, RFC 7468 "strict-ish":
 *          -----BEGIN CERTIFICATE-----     (at the start of a line; label
 *          <base64, any line length>        "CERTIFICATE" or "X509 CERTIFICATE")
 *          -----END CERTIFICATE-----
 *        Text outside blocks is ignored (openssl x509 -text output, comments).
 *   DER  exactly one certificate, nothing after it.
 *
 * Refused, in this order, so that a key is always reported as a key:
 *   1. size: empty [EMPTY], over the limit [TOO_LARGE];
 *   2. private-key markers anywhere in the buffer: a "-----BEGIN <label>"
 *      whose label contains "PRIVATE KEY" in any case, wherever it stands,
 *      and PuTTY's "PuTTY-User-Key-File-" header [PRIVATE_KEY];
 *   3. PEM structure errors: BEGIN without END, mismatched END, bad base64,
 *      headers in a certificate block [PARSE];
 *   4. a DER body (of a DER file or of any PEM block, whatever its label)
 *      shaped like a private key [PRIVATE_KEY];
 *   5. a PEM block that is not a certificate [NOT_CERT], a certificate that
 *      does not parse or has trailing bytes [PARSE].
 *
 * Hostile input: every scan is linear in the input, every read is bounds
 * checked against the buffer length (the buffer need not be NUL-terminated),
 * and the number of blocks is capped.
 */
#include "pki/pki.h"
#include "pki/pki_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/x509.h>

#include "common/util.h"

/* A CA bundle of 64 KiB holds about 45 certificates; more blocks than this is junk. */
#define PEM_MAX_BLOCKS 128
/* Longest label we report in messages and compare; real labels are under 40. */
#define PEM_MAX_LABEL       64
#define DER_MAX_SHAPE_ITEMS 12
/* How far past "-----BEGIN" the marker scan looks for "PRIVATE KEY": beyond
 * any real label, so a padded one cannot hide the words past our limit. */
#define MARKER_SCAN_MAX 256

/* ---- small helpers shared by the layer (declared in pki_int.h) ----------- */

int hub_pki__file_read(const char *path, size_t max_bytes, unsigned char **out_new, size_t *out_len,
                       struct hub_err *err)
{
    *out_new = NULL;
    *out_len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return HUB_ERR(err, HUB_E_IO, "cannot open %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return HUB_ERR(err, HUB_E_IO, "cannot stat %s: %s", path, strerror(e));
    }
    if (S_ISDIR(st.st_mode)) {
        close(fd);
        return HUB_ERR(err, HUB_E_IO, "%s is a directory", path);
    }
    if (S_ISREG(st.st_mode) && (uintmax_t)st.st_size > (uintmax_t)max_bytes) {
        close(fd);
        return HUB_ERR(err, HUB_E_TOO_LARGE, "%s is %jd bytes, more than the limit of %zu", path,
                       (intmax_t)st.st_size, max_bytes);
    }
    /* One byte of headroom tells "exactly max" from "longer" for pipes too. */
    unsigned char *buf = malloc(max_bytes + 1);
    if (buf == NULL) {
        close(fd);
        return HUB_ERR(err, HUB_E_NOMEM, "out of memory reading %s", path);
    }
    size_t len = 0;
    while (len < max_bytes + 1) {
        ssize_t n = read(fd, buf + len, max_bytes + 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            OPENSSL_cleanse(buf, len);
            free(buf);
            close(fd);
            return HUB_ERR(err, HUB_E_IO, "cannot read %s: %s", path, strerror(e));
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    if (len > max_bytes) {
        OPENSSL_cleanse(buf, len);
        free(buf);
        return HUB_ERR(err, HUB_E_TOO_LARGE, "%s is larger than the limit of %zu bytes", path,
                       max_bytes);
    }
    *out_new = buf;
    *out_len = len;
    return 0;
}

void hub_pki__printable(const char *s, char *out, size_t cap)
{
    size_t o = 0;
    for (; s != NULL && *s != '\0' && o + 1 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        out[o++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    out[o] = '\0';
}

/* ---- DER shape of private keys ------------------------------------------ */

struct der_cursor {
    const unsigned char *p;
    size_t len; /* bytes left */
};

/* Reads one TLV (low tag numbers only; BER indefinite length runs to the end).
 * 0 on success, -1 if the bytes cannot be a TLV. */
static int der_next(struct der_cursor *d, unsigned char *tag, struct der_cursor *content)
{
    if (d->len < 2)
        return -1;
    unsigned char t = d->p[0];
    if ((t & 0x1f) == 0x1f)
        return -1;
    size_t hdr = 2;
    size_t n = d->p[1];
    if (n == 0x80) { /* indefinite: approximate the content as the rest */
        n = d->len - hdr;
    } else if (n & 0x80) {
        size_t k = n & 0x7f;
        if (k > 4 || d->len < hdr + k)
            return -1;
        n = 0;
        for (size_t i = 0; i < k; i++)
            n = (n << 8) | d->p[2 + i];
        hdr += k;
    }
    if (n > d->len - hdr)
        return -1;
    *tag = t;
    content->p = d->p + hdr;
    content->len = n;
    d->p += hdr + n;
    d->len -= hdr + n;
    return 0;
}

#define TAG_INTEGER      0x02
#define TAG_OCTET_STRING 0x04
#define TAG_SEQUENCE     0x30

/*
 * The ASN.1 shapes of every private-key encoding OpenSSL, OpenSSH's PEM and
 * the usual tools write (first elements of the outer SEQUENCE):
 *   PKCS#8 / RFC 5958   INTEGER version, SEQUENCE algorithm, OCTET STRING key
 *   encrypted PKCS#8    SEQUENCE algorithm, OCTET STRING data (exactly two)
 *   RFC 5915 EC         INTEGER 1, OCTET STRING key, ...
 *   PKCS#1 RSA          9 or more INTEGERs (version, n, e, d, p, q, ...)
 *   DSA (OpenSSL)       exactly 6 INTEGERs (version, p, q, g, y, x)
 * None of these is the shape of a certificate (SEQUENCE, SEQUENCE, BIT
 * STRING), a CSR or a public key, so there are no false positives on the
 * things people mean to upload.
 */
static int der_has_key_shape(const unsigned char *der, size_t len)
{
    struct der_cursor top = {der, len}, seq;
    unsigned char tag;
    if (der_next(&top, &tag, &seq) != 0 || tag != TAG_SEQUENCE)
        return 0;
    unsigned char tags[DER_MAX_SHAPE_ITEMS];
    size_t n = 0;
    struct der_cursor item;
    while (seq.len > 0 && n < DER_MAX_SHAPE_ITEMS && der_next(&seq, &tags[n], &item) == 0)
        n++;
    if (n == 2 && tags[0] == TAG_SEQUENCE && tags[1] == TAG_OCTET_STRING)
        return 1;
    if (n < 2 || tags[0] != TAG_INTEGER)
        return 0;
    if (tags[1] == TAG_OCTET_STRING)
        return 1;
    if (n >= 3 && tags[1] == TAG_SEQUENCE && tags[2] == TAG_OCTET_STRING)
        return 1;
    size_t ints = 0;
    while (ints < n && tags[ints] == TAG_INTEGER)
        ints++;
    return ints == n && (ints == 6 || ints >= 9);
}

int hub_pki__der_is_private_key(const unsigned char *der, size_t len)
{
    if (der == NULL || len == 0 || len > HUB_PKI_MAX_FILE_BYTES)
        return 0;
    if (der_has_key_shape(der, len))
        return 1;
    /* Second opinion from OpenSSL's ASN.1 templates for the two PKCS#8 forms
     * (BER variants the shape test may not follow). Not d2i_AutoPrivateKey:
     * its provider decoders cost milliseconds per call, which 128 hostile
     * blocks in one upload would turn into a CPU sink. */
    int found = 0;
    const unsigned char *p = der;
    X509_SIG *sig = d2i_X509_SIG(NULL, &p, (long)len);
    if (sig != NULL) {
        found = 1;
        X509_SIG_free(sig);
    }
    p = der;
    PKCS8_PRIV_KEY_INFO *p8 = found ? NULL : d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, (long)len);
    if (p8 != NULL) {
        found = 1;
        PKCS8_PRIV_KEY_INFO_free(p8);
    }
    ERR_clear_error();
    return found;
}

/* ---- marker scan -------------------------------------------------------- */

static size_t line_of(const unsigned char *buf, size_t off)
{
    size_t line = 1;
    for (size_t i = 0; i < off; i++)
        line += buf[i] == '\n';
    return line;
}

static int has_ci(const unsigned char *s, size_t len, const char *needle)
{
    size_t n = strlen(needle);
    for (size_t i = 0; i + n <= len; i++)
        if (strncasecmp((const char *)s + i, needle, n) == 0)
            return 1;
    return 0;
}

/*
 * Looks for private-key markers anywhere in buf, not only where a PEM parser
 * would look: a key pasted mid-line or after a malformed block must still be
 * caught. Fills label (for the message) and the byte offset.
 */
static int find_key_marker(const unsigned char *buf, size_t len, char label[PEM_MAX_LABEL + 1],
                           size_t *off)
{
    static const char putty[] = "PuTTY-User-Key-File-";
    for (size_t i = 0; i < len; i++) {
        if (len - i >= sizeof(putty) - 1 && memcmp(buf + i, putty, sizeof(putty) - 1) == 0) {
            snprintf(label, PEM_MAX_LABEL + 1, "PuTTY private key");
            *off = i;
            return 1;
        }
        if (len - i < 10 || memcmp(buf + i, "-----", 5) != 0 ||
            strncasecmp((const char *)buf + i + 5, "BEGIN", 5) != 0)
            continue;
        size_t s = i + 10;
        while (s < len && (buf[s] == ' ' || buf[s] == '\t'))
            s++;
        size_t e = s;
        while (e < len && e - s < MARKER_SCAN_MAX && buf[e] != '\n' && buf[e] != '\r' &&
               !(len - e >= 5 && memcmp(buf + e, "-----", 5) == 0))
            e++;
        if (has_ci(buf + s, e - s, "PRIVATE KEY")) {
            size_t n = e - s < PEM_MAX_LABEL ? e - s : PEM_MAX_LABEL;
            for (size_t k = 0; k < n; k++)
                label[k] = (buf[s + k] >= 0x20 && buf[s + k] < 0x7f) ? (char)buf[s + k] : '?';
            label[n] = '\0';
            *off = i;
            return 1;
        }
        i = e > i ? e - 1 : i;
    }
    return 0;
}

/* ---- PEM blocks --------------------------------------------------------- */

struct pem_block {
    char label[PEM_MAX_LABEL + 1];
    size_t line; /* of the BEGIN line, 1-based */
    int has_headers;
    unsigned char *der;
    size_t der_len;
};

struct pem_blocks {
    struct pem_block *v;
    size_t n;
};

static void pem_blocks_free(struct pem_blocks *b)
{
    for (size_t i = 0; i < b->n; i++) {
        /* A block may hold key material: wipe before freeing. */
        OPENSSL_cleanse(b->v[i].der, b->v[i].der_len);
        free(b->v[i].der);
    }
    free(b->v);
    b->v = NULL;
    b->n = 0;
}

struct line {
    const unsigned char *p;
    size_t len; /* without the newline, trailing CR and blanks */
};

static int next_line(const unsigned char *buf, size_t len, size_t *pos, struct line *out)
{
    if (*pos >= len)
        return 0;
    const unsigned char *start = buf + *pos;
    const unsigned char *nl = memchr(start, '\n', len - *pos);
    size_t n = nl != NULL ? (size_t)(nl - start) : len - *pos;
    *pos += n + (nl != NULL);
    while (n > 0 && (start[n - 1] == '\r' || start[n - 1] == ' ' || start[n - 1] == '\t'))
        n--;
    out->p = start;
    out->len = n;
    return 1;
}

static int line_starts(const struct line *l, const char *prefix)
{
    size_t n = strlen(prefix);
    return l->len >= n && memcmp(l->p, prefix, n) == 0;
}

static int is_b64_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/' || c == '=';
}

/* Parses the body lines of a block whose BEGIN line was just read. */
static int pem_block_body(const unsigned char *buf, size_t len, size_t *pos, size_t *lineno,
                          struct pem_block *blk, char *scratch, struct hub_err *err)
{
    char end[PEM_MAX_LABEL + 16];
    snprintf(end, sizeof(end), "-----END %s-----", blk->label);
    size_t nb64 = 0;
    int in_headers = 1;
    struct line l;
    while (next_line(buf, len, pos, &l)) {
        (*lineno)++;
        if (line_starts(&l, "-----END")) {
            if (l.len != strlen(end) || memcmp(l.p, end, l.len) != 0)
                return HUB_ERR(err, HUB_E_PARSE,
                               "PEM block '%s' at line %zu: END line %zu does not match",
                               blk->label, blk->line, *lineno);
            if (nb64 == 0)
                return HUB_ERR(err, HUB_E_PARSE, "PEM block '%s' at line %zu is empty", blk->label,
                               blk->line);
            blk->der = malloc(nb64);
            if (blk->der == NULL)
                return HUB_ERR(err, HUB_E_NOMEM, "out of memory decoding PEM");
            blk->der_len = nb64; /* so a failed decode is still wiped on free */
            struct hub_err derr = {0};
            int n = hub_base64_decode(scratch, nb64, blk->der, nb64, &derr);
            if (n <= 0)
                return HUB_ERR(err, HUB_E_PARSE, "PEM block '%s' at line %zu: bad base64: %s",
                               blk->label, blk->line, n == 0 ? "no data" : derr.msg);
            blk->der_len = (size_t)n;
            return 0;
        }
        if (line_starts(&l, "-----BEGIN"))
            return HUB_ERR(err, HUB_E_PARSE,
                           "PEM block '%s' at line %zu has no END line before line %zu", blk->label,
                           blk->line, *lineno);
        /* RFC 1421 headers ("Proc-Type: 4,ENCRYPTED") come first, then a blank line. */
        if (in_headers && memchr(l.p, ':', l.len) != NULL) {
            blk->has_headers = 1;
            continue;
        }
        if (in_headers && blk->has_headers && l.len == 0) {
            in_headers = 0;
            continue;
        }
        in_headers = 0;
        for (size_t i = 0; i < l.len; i++) {
            unsigned char c = l.p[i];
            if (c == ' ' || c == '\t' || c == '\r')
                continue;
            if (!is_b64_char(c))
                return HUB_ERR(err, HUB_E_PARSE,
                               "PEM block '%s' at line %zu: invalid character on line %zu",
                               blk->label, blk->line, *lineno);
            scratch[nb64++] = (char)c;
        }
    }
    return HUB_ERR(err, HUB_E_PARSE, "PEM block '%s' at line %zu is truncated (no END line)",
                   blk->label, blk->line);
}

static int pem_blocks_parse(const unsigned char *buf, size_t len, struct pem_blocks *out,
                            struct hub_err *err)
{
    out->v = calloc(PEM_MAX_BLOCKS, sizeof(*out->v));
    char *scratch = malloc(len);
    if (out->v == NULL || scratch == NULL) {
        free(scratch);
        return HUB_ERR(err, HUB_E_NOMEM, "out of memory parsing PEM");
    }
    size_t pos = 0, lineno = 0;
    struct line l;
    int rc = 0;
    while (rc == 0 && next_line(buf, len, &pos, &l)) {
        lineno++;
        if (!line_starts(&l, "-----BEGIN"))
            continue; /* text between blocks */
        if (out->n == PEM_MAX_BLOCKS) {
            rc = HUB_ERR(err, HUB_E_TOO_LARGE, "more than %d PEM blocks", PEM_MAX_BLOCKS);
            break;
        }
        /* "-----BEGIN " label "-----" */
        if (l.len < 16 || l.p[10] != ' ' || memcmp(l.p + l.len - 5, "-----", 5) != 0 ||
            l.len - 16 > PEM_MAX_LABEL) {
            rc = HUB_ERR(err, HUB_E_PARSE, "malformed PEM BEGIN line %zu", lineno);
            break;
        }
        struct pem_block *blk = &out->v[out->n++];
        size_t label_len = l.len - 16;
        for (size_t i = 0; i < label_len; i++) {
            unsigned char c = l.p[11 + i];
            blk->label[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
        }
        blk->label[label_len] = '\0';
        blk->line = lineno;
        rc = pem_block_body(buf, len, &pos, &lineno, blk, scratch, err);
    }
    OPENSSL_cleanse(scratch, len);
    free(scratch);
    return rc;
}

static int label_is_cert(const char *label)
{
    return strcmp(label, "CERTIFICATE") == 0 || strcmp(label, "X509 CERTIFICATE") == 0;
}

/* d2i of one certificate that must use every byte. */
static int cert_from_der(const unsigned char *der, size_t len, X509 **out_new, const char *where,
                         struct hub_err *err)
{
    const unsigned char *p = der;
    X509 *cert = d2i_X509(NULL, &p, (long)len);
    ERR_clear_error();
    if (cert == NULL)
        return HUB_ERR(err, HUB_E_PARSE, "%s does not parse as an X.509 certificate", where);
    if ((size_t)(p - der) != len) {
        X509_free(cert);
        return HUB_ERR(err, HUB_E_PARSE, "%s has %zu bytes after the certificate", where,
                       len - (size_t)(p - der));
    }
    *out_new = cert;
    return 0;
}

static int load_pem(const unsigned char *buf, size_t len, STACK_OF(X509) * certs,
                    struct hub_err *err)
{
    struct pem_blocks blocks = {0};
    int rc = pem_blocks_parse(buf, len, &blocks, err);
    if (rc != 0)
        goto out_blocks;
    if (blocks.n == 0) {
        rc = HUB_ERR(err, HUB_E_EMPTY, "no PEM block found");
        goto out_blocks;
    }
    /* Keys first, whatever the label says and wherever the block stands. */
    for (size_t i = 0; i < blocks.n; i++) {
        if (hub_pki__der_is_private_key(blocks.v[i].der, blocks.v[i].der_len)) {
            rc = HUB_ERR(err, HUB_E_PRIVATE_KEY,
                         "PEM block '%s' at line %zu holds a private key; a certificate file "
                         "must never contain one",
                         blocks.v[i].label, blocks.v[i].line);
            goto out_blocks;
        }
    }
    for (size_t i = 0; i < blocks.n; i++) {
        const struct pem_block *blk = &blocks.v[i];
        if (!label_is_cert(blk->label)) {
            rc = HUB_ERR(err, HUB_E_NOT_CERT, "PEM block '%s' at line %zu is not a certificate",
                         blk->label, blk->line);
            goto out_blocks;
        }
        if (blk->has_headers) {
            rc = HUB_ERR(err, HUB_E_PARSE, "PEM certificate at line %zu has headers", blk->line);
            goto out_blocks;
        }
        char where[64];
        snprintf(where, sizeof(where), "PEM certificate at line %zu", blk->line);
        X509 *cert = NULL;
        rc = cert_from_der(blk->der, blk->der_len, &cert, where, err);
        if (rc != 0)
            goto out_blocks;
        if (sk_X509_push(certs, cert) <= 0) {
            X509_free(cert);
            rc = HUB_ERR(err, HUB_E_NOMEM, "out of memory");
            goto out_blocks;
        }
    }
out_blocks:
    pem_blocks_free(&blocks);
    return rc;
}

static int load_der(const unsigned char *buf, size_t len, STACK_OF(X509) * certs,
                    struct hub_err *err)
{
    if (hub_pki__der_is_private_key(buf, len))
        return HUB_ERR(err, HUB_E_PRIVATE_KEY,
                       "DER data is a private key; a certificate file must never contain one");
    const unsigned char *p = buf;
    X509 *cert = d2i_X509(NULL, &p, (long)len);
    ERR_clear_error();
    if (cert == NULL) {
        /* One well-formed TLV that is not a certificate: say so plainly. */
        struct der_cursor d = {buf, len}, c;
        unsigned char tag;
        if (der_next(&d, &tag, &c) == 0 && d.len == 0)
            return HUB_ERR(err, HUB_E_NOT_CERT, "DER data is not a certificate");
        return HUB_ERR(err, HUB_E_PARSE, "DER data does not parse as an X.509 certificate");
    }
    if ((size_t)(p - buf) != len) {
        X509_free(cert);
        return HUB_ERR(err, HUB_E_PARSE,
                       "DER data has %zu bytes after the certificate (one DER certificate "
                       "per file; use PEM for a chain)",
                       len - (size_t)(p - buf));
    }
    if (sk_X509_push(certs, cert) <= 0) {
        X509_free(cert);
        return HUB_ERR(err, HUB_E_NOMEM, "out of memory");
    }
    return 0;
}

static int is_text(const unsigned char *buf, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = buf[i];
        if (c < 0x20 && c != '\n' && c != '\r' && c != '\t')
            return 0;
    }
    return 1;
}

static int has_pem_begin(const unsigned char *buf, size_t len)
{
    static const char begin[] = "-----BEGIN";
    for (size_t i = 0; i + sizeof(begin) - 1 <= len; i++)
        if (buf[i] == '-' && memcmp(buf + i, begin, sizeof(begin) - 1) == 0)
            return 1;
    return 0;
}

int hub_pki_certs_load_mem(const void *buf, size_t len, STACK_OF(X509) * *out_new,
                           struct hub_err *err)
{
    if (out_new == NULL || (buf == NULL && len > 0))
        return HUB_ERR(err, HUB_E_INVALID_ARG, "hub_pki_certs_load_mem: NULL argument");
    *out_new = NULL;
    if (len == 0)
        return HUB_ERR(err, HUB_E_EMPTY, "certificate data is empty");
    if (len > HUB_PKI_MAX_FILE_BYTES)
        return HUB_ERR(err, HUB_E_TOO_LARGE, "certificate data is %zu bytes, more than %d", len,
                       HUB_PKI_MAX_FILE_BYTES);
    const unsigned char *b = buf;
    char label[PEM_MAX_LABEL + 1];
    size_t off;
    if (find_key_marker(b, len, label, &off))
        return HUB_ERR(err, HUB_E_PRIVATE_KEY,
                       "found a private key ('%s' at line %zu); a certificate file must never "
                       "contain one",
                       label, line_of(b, off));

    STACK_OF(X509) *certs = sk_X509_new_null();
    if (certs == NULL)
        return HUB_ERR(err, HUB_E_NOMEM, "out of memory");
    /* Exactly one DER SEQUENCE is DER even if its bytes happen to hold
     * "-----BEGIN"; otherwise any BEGIN marker means PEM. */
    struct der_cursor whole = {b, len}, content;
    unsigned char tag = 0;
    int one_der = der_next(&whole, &tag, &content) == 0 && tag == TAG_SEQUENCE && whole.len == 0;
    int rc;
    if (!one_der && has_pem_begin(b, len))
        rc = load_pem(b, len, certs, err);
    else if (b[0] == TAG_SEQUENCE)
        rc = load_der(b, len, certs, err);
    else if (is_text(b, len))
        rc = HUB_ERR(err, HUB_E_EMPTY, "no PEM certificate block found");
    else
        rc = HUB_ERR(err, HUB_E_PARSE, "data is neither PEM nor a DER certificate");
    if (rc != 0) {
        sk_X509_pop_free(certs, X509_free);
        return rc;
    }
    *out_new = certs;
    return 0;
}

int hub_pki_certs_load_file(const char *path, STACK_OF(X509) * *out_new, struct hub_err *err)
{
    if (path == NULL || out_new == NULL)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "hub_pki_certs_load_file: NULL argument");
    *out_new = NULL;
    unsigned char *buf = NULL;
    size_t len = 0;
    int rc = hub_pki__file_read(path, HUB_PKI_MAX_FILE_BYTES, &buf, &len, err);
    if (rc != 0)
        return rc;
    rc = hub_pki_certs_load_mem(buf, len, out_new, err);
    if (rc != 0 && err != NULL) {
        /* Prefix the file name, keeping the code. */
        char msg[HUB_ERR_MSG_MAX];
        snprintf(msg, sizeof(msg), "%s", err->msg);
        HUB_ERR(err, rc, "%s: %s", path, msg);
    }
    OPENSSL_cleanse(buf, len); /* it might have held a key */
    free(buf);
    return rc;
}

static int exactly_one(STACK_OF(X509) * certs, X509 **out_new, const char *what,
                       struct hub_err *err)
{
    int n = sk_X509_num(certs);
    if (n != 1) {
        sk_X509_pop_free(certs, X509_free);
        return HUB_ERR(err, HUB_E_INVALID_ARG, "%s holds %d certificates, expected exactly one",
                       what, n);
    }
    *out_new = sk_X509_pop(certs);
    sk_X509_free(certs);
    return 0;
}

int hub_pki_cert_load_mem(const void *buf, size_t len, X509 **out_new, struct hub_err *err)
{
    if (out_new == NULL)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "hub_pki_cert_load_mem: NULL argument");
    *out_new = NULL;
    STACK_OF(X509) *certs = NULL;
    int rc = hub_pki_certs_load_mem(buf, len, &certs, err);
    if (rc != 0)
        return rc;
    return exactly_one(certs, out_new, "certificate data", err);
}

int hub_pki_cert_load_file(const char *path, X509 **out_new, struct hub_err *err)
{
    if (out_new == NULL)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "hub_pki_cert_load_file: NULL argument");
    *out_new = NULL;
    STACK_OF(X509) *certs = NULL;
    int rc = hub_pki_certs_load_file(path, &certs, err);
    if (rc != 0)
        return rc;
    return exactly_one(certs, out_new, path, err);
}

/* ---- certificate revocation lists ---------------------------------------- */

static int label_is_crl(const char *label)
{
    return strcmp(label, "X509 CRL") == 0;
}

/* d2i of one CRL that must use every byte. */
static int crl_from_der(const unsigned char *der, size_t len, X509_CRL **out_new, const char *where,
                        struct hub_err *err)
{
    const unsigned char *p = der;
    X509_CRL *crl = d2i_X509_CRL(NULL, &p, (long)len);
    ERR_clear_error();
    if (crl == NULL)
        return HUB_ERR(err, HUB_E_PARSE, "%s does not parse as an X.509 CRL", where);
    if ((size_t)(p - der) != len) {
        X509_CRL_free(crl);
        return HUB_ERR(err, HUB_E_PARSE, "%s has %zu bytes after the CRL", where,
                       len - (size_t)(p - der));
    }
    *out_new = crl;
    return 0;
}

/*
 * The same input rules as certificates (refusal order included: size, key
 * markers, PEM structure, key-shaped DER bodies), with HUB_PKI_MAX_CRL_BYTES
 * as the size limit and exactly one "X509 CRL" block (or one DER CRL).
 */
int hub_pki_crl_load_mem(const void *buf, size_t len, X509_CRL **out_new, struct hub_err *err)
{
    if (out_new == NULL || (buf == NULL && len > 0))
        return HUB_ERR(err, HUB_E_INVALID_ARG, "hub_pki_crl_load_mem: NULL argument");
    *out_new = NULL;
    if (len == 0)
        return HUB_ERR(err, HUB_E_EMPTY, "CRL data is empty");
    if (len > HUB_PKI_MAX_CRL_BYTES)
        return HUB_ERR(err, HUB_E_TOO_LARGE, "CRL data is %zu bytes, more than %d", len,
                       HUB_PKI_MAX_CRL_BYTES);
    const unsigned char *b = buf;
    char label[PEM_MAX_LABEL + 1];
    size_t off;
    if (find_key_marker(b, len, label, &off))
        return HUB_ERR(err, HUB_E_PRIVATE_KEY,
                       "found a private key ('%s' at line %zu); a CRL file must never contain one",
                       label, line_of(b, off));
    struct der_cursor whole = {b, len}, content;
    unsigned char tag = 0;
    int one_der = der_next(&whole, &tag, &content) == 0 && tag == TAG_SEQUENCE && whole.len == 0;
    if (one_der || (b[0] == TAG_SEQUENCE && !has_pem_begin(b, len))) {
        if (hub_pki__der_is_private_key(b, len))
            return HUB_ERR(err, HUB_E_PRIVATE_KEY,
                           "DER data is a private key; a CRL file must never contain one");
        return crl_from_der(b, len, out_new, "DER data", err);
    }
    if (!has_pem_begin(b, len)) {
        if (is_text(b, len))
            return HUB_ERR(err, HUB_E_EMPTY, "no PEM CRL block found");
        return HUB_ERR(err, HUB_E_PARSE, "data is neither PEM nor a DER CRL");
    }
    struct pem_blocks blocks = {0};
    int rc = pem_blocks_parse(b, len, &blocks, err);
    if (rc != 0)
        goto out_blocks;
    for (size_t i = 0; i < blocks.n; i++) {
        if (hub_pki__der_is_private_key(blocks.v[i].der, blocks.v[i].der_len)) {
            rc = HUB_ERR(err, HUB_E_PRIVATE_KEY,
                         "PEM block '%s' at line %zu holds a private key; a CRL file must never "
                         "contain one",
                         blocks.v[i].label, blocks.v[i].line);
            goto out_blocks;
        }
    }
    if (blocks.n != 1) {
        rc = blocks.n == 0
                 ? HUB_ERR(err, HUB_E_EMPTY, "no PEM block found")
                 : HUB_ERR(err, HUB_E_INVALID_ARG,
                           "CRL data holds %zu PEM blocks, expected exactly one", blocks.n);
        goto out_blocks;
    }
    const struct pem_block *blk = &blocks.v[0];
    if (!label_is_crl(blk->label) || blk->has_headers) {
        rc = HUB_ERR(err, HUB_E_PARSE, "PEM block '%s' at line %zu is not an X509 CRL", blk->label,
                     blk->line);
        goto out_blocks;
    }
    char where[64];
    snprintf(where, sizeof(where), "PEM CRL at line %zu", blk->line);
    rc = crl_from_der(blk->der, blk->der_len, out_new, where, err);
out_blocks:
    pem_blocks_free(&blocks);
    return rc;
}
