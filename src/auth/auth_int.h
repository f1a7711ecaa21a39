/*
 * What the files of the auth layer share. Never included from another layer.
 */
#ifndef HUB_AUTH_INT_H
#define HUB_AUTH_INT_H

#include <stddef.h>

#include "auth/auth.h"

/* base64 of an HMAC-SHA256 (32 bytes): 44 characters. */
#define HUB_AUTH__MAC_B64_LEN 44

/* Decodes a key per hub_auth_key_validate's rules into out; *outlen gets the
 * byte count. HUB_E_INVALID_ARG with a message naming `what`. */
int hub_auth__key_decode(const char *b64, const char *what,
                         unsigned char out[HUB_AUTH_KEY_MAX_BYTES], size_t *outlen,
                         struct hub_err *err);

/* out = base64(HMAC-SHA256(key, msg)), NUL-terminated. HUB_E_CRYPTO. */
int hub_auth__hmac_b64(const unsigned char *key, size_t keylen, const void *msg, size_t msglen,
                       char out[HUB_AUTH__MAC_B64_LEN + 1], struct hub_err *err);

/* Overwrites len bytes in a way the compiler may not drop (key material). */
void hub_auth__wipe(void *p, size_t len);

/* 1 if a[0..alen) equals the NUL-terminated b, ASCII case-insensitively. */
int hub_auth__ascii_case_equal_n(const char *a, size_t alen, const char *b);

#endif
