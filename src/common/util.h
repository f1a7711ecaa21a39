/*
 * Small helpers shared by every layer: hex, base64, percent-decoding, time
 * formatting, randomness and constant-time comparison. Pure functions except
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

/*
 * Percent-decoding (RFC 3986 `%XX`, either hex case), the one decoder behind
 * SAS token fields (auth), MQTT usernames and property bags (iothub) and
 * URL path segments and query values (http). Rules for every caller:
 *   - '+' is a plus sign, never a space: the Azure SDKs encode a space as
 *     %20 (encodeURIComponent) and '+' is common in values (base64, time
 *     zones);
 *   - the result is a C string, so a NUL byte is refused, raw or as %00;
 *   - a '%' not followed by two hex digits (also at the end) is refused.
 * Flags add the rules only some callers need.
 */
/* Refuse %2F: in a path segment an encoded '/' would smuggle in a segment. */
#define HUB_PCT_NO_SLASH 1u

/* What hub_pct_decode refused; each caller words its own message. */
enum hub_pct_fault {
    HUB_PCT_OK = 0,
    HUB_PCT_BAD_ESCAPE = -1,   /* '%' without two hex digits after it */
    HUB_PCT_NUL_ESCAPE = -2,   /* %00 */
    HUB_PCT_NUL_BYTE = -3,     /* a raw NUL byte */
    HUB_PCT_SLASH_ESCAPE = -4, /* %2F (either case) under HUB_PCT_NO_SLASH */
    HUB_PCT_TOO_LONG = -5,     /* the result and its NUL exceed cap (cap 0 included) */
};

/*
 * Decodes src[0..len) into out (cap bytes, NUL included) and stores the
 * decoded length (without the NUL) in *out_len. Returns HUB_PCT_OK or the
 * first fault met scanning left to right, with *bad_offset = its offset in
 * src (the '%' of an escape; for HUB_PCT_TOO_LONG the input byte that did
 * not fit, or len when only the NUL did not). out_len and bad_offset may be
 * NULL; each is written only on its own outcome. Never writes out[cap] or
 * beyond: with cap 0, out is not touched; on a fault its contents are
 * unspecified. Pure.
 */
int hub_pct_decode(const char *src, size_t len, char *out, size_t cap, unsigned flags,
                   size_t *out_len, size_t *bad_offset);

/* "2026-01-01T00:00:00Z" (UTC). out capacity >= 21. */
#define HUB_TIME_ISO_LEN 21
void hub_time_iso8601(time_t t, char out[HUB_TIME_ISO_LEN]);
/* "Thu, 01 Jan 2026 00:00:00 GMT" (RFC 1123). out capacity >= HUB_TIME_RFC1123_LEN (room for any
 * year). */
#define HUB_TIME_RFC1123_LEN 64
void hub_time_rfc1123(time_t t, char out[HUB_TIME_RFC1123_LEN]);

#endif
