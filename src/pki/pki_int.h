/*
 * pki layer internals shared between the files of src/pki/. Never included
 * from another layer (see STYLE.md, "Layout"). Names are hub_pki__*.
 */
#ifndef HUB_PKI_INT_H
#define HUB_PKI_INT_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/asn1.h>

#include "common/err.h"

/* ASN1_TIME (UTCTime or GeneralizedTime) as Unix seconds. 0 or HUB_E_PARSE. */
int hub_pki__asn1_time_unix(const ASN1_TIME *t, int64_t *out, struct hub_err *err);

/*
 * Reads a whole file of at most max_bytes into a malloc'd buffer (*out_new,
 * caller frees; it may hold secrets, so callers that read keys cleanse it).
 * HUB_E_IO if it cannot be opened or read, HUB_E_TOO_LARGE if it is longer.
 * An empty file gives *out_new non-NULL and *out_len 0.
 */
int hub_pki__file_read(const char *path, size_t max_bytes, unsigned char **out_new, size_t *out_len,
                       struct hub_err *err);

/*
 * Copies at most cap-1 bytes of s into out for use in an error message,
 * replacing bytes that are not printable ASCII with '?', so that text taken
 * from a certificate cannot forge log lines. cap must be > 0.
 */
void hub_pki__printable(const char *s, char *out, size_t cap);

/*
 * 1 if der (a complete buffer) has the shape of a private key: PKCS#8,
 * encrypted PKCS#8, or a traditional RSA/EC/DSA key. Bounded, never reads past
 * der + len. Used on DER files and on the body of every PEM block.
 */
int hub_pki__der_is_private_key(const unsigned char *der, size_t len);

#endif
