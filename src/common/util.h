/*
 * Small helpers shared by every layer: hex, base64, time formatting,
 * randomness and constant-time comparison. Pure functions except
 * hub_random_bytes (OpenSSL's CSPRNG). Thread-safe.
 */
#ifndef HUB_COMMON_UTIL_H
#define HUB_COMMON_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "common/err.h"

/* Value of one hex digit (either case), or -1 if c is not one. */
int hub_hex_digit_value(int c);

/* Writes 2*len uppercase hex digits and a NUL into out (capacity >= 2*len+1). */
void hub_hex_upper(const unsigned char *in, size_t len, char *out);

/* Fills buf with len bytes from the CSPRNG. HUB_E_CRYPTO if the RNG fails. */
int hub_random_bytes(unsigned char *buf, size_t len, struct hub_err *err);

/* nbytes random bytes as uppercase hex into out (capacity >= 2*nbytes+1). */
int hub_random_hex(size_t nbytes, char *out, struct hub_err *err);

/* Compares two buffers in time that depends only on the lengths. 1 if equal. */
int hub_ct_equal(const void *a, size_t alen, const void *b, size_t blen);

/* Base64 (standard alphabet, padded). Encode writes a NUL-terminated string into out
 * (capacity >= hub_base64_encoded_len(len)+1) and returns its length.
 * Decode returns the decoded length or a negative HUB_E_PARSE / HUB_E_TOO_LARGE. */
size_t hub_base64_encoded_len(size_t len);
size_t hub_base64_encode(const unsigned char *in, size_t len, char *out);
int hub_base64_decode(const char *in, size_t inlen, unsigned char *out, size_t outcap,
                      struct hub_err *err);

/* "2026-01-01T00:00:00Z" (UTC). out capacity >= 21. */
#define HUB_TIME_ISO_LEN 21
void hub_time_iso8601(time_t t, char out[HUB_TIME_ISO_LEN]);
/* "Thu, 01 Jan 2026 00:00:00 GMT" (RFC 1123). out capacity >= HUB_TIME_RFC1123_LEN (room for any
 * year). */
#define HUB_TIME_RFC1123_LEN 64
void hub_time_rfc1123(time_t t, char out[HUB_TIME_RFC1123_LEN]);

#endif
