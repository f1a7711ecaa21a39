#include "common/util.h"

#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

int hub_hex_digit_value(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

void hub_hex_upper(const unsigned char *in, size_t len, char *out)
{
    static const char digits[] = "0123456789ABCDEF";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 0x0f];
    }
    out[2 * len] = '\0';
}

static int pct_fault(int fault, size_t at, size_t *bad_offset)
{
    if (bad_offset != NULL)
        *bad_offset = at;
    return fault;
}

int hub_pct_decode(const char *src, size_t len, char *out, size_t cap, unsigned flags,
                   size_t *out_len, size_t *bad_offset)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        size_t at = i;
        char c = src[i];
        if (c == '%') {
            if (len - i < 3)
                return pct_fault(HUB_PCT_BAD_ESCAPE, at, bad_offset);
            int hi = hub_hex_digit_value(src[i + 1]), lo = hub_hex_digit_value(src[i + 2]);
            if (hi < 0 || lo < 0)
                return pct_fault(HUB_PCT_BAD_ESCAPE, at, bad_offset);
            c = (char)(hi << 4 | lo);
            if (c == '\0')
                return pct_fault(HUB_PCT_NUL_ESCAPE, at, bad_offset);
            if (c == '/' && (flags & HUB_PCT_NO_SLASH) != 0)
                return pct_fault(HUB_PCT_SLASH_ESCAPE, at, bad_offset);
            i += 2;
        } else if (c == '\0') {
            return pct_fault(HUB_PCT_NUL_BYTE, at, bad_offset);
        }
        /* o + 1: the NUL must still fit after this byte. */
        if (o + 1 >= cap)
            return pct_fault(HUB_PCT_TOO_LONG, at, bad_offset);
        out[o++] = c;
    }
    if (cap == 0)
        return pct_fault(HUB_PCT_TOO_LONG, len, bad_offset);
    out[o] = '\0';
    if (out_len != NULL)
        *out_len = o;
    return HUB_PCT_OK;
}

int hub_random_bytes(unsigned char *buf, size_t len, struct hub_err *err)
{
    if (len > (size_t)0x7fffffff || RAND_bytes(buf, (int)len) != 1)
        return HUB_ERR(err, HUB_E_CRYPTO, "random number generator failed");
    return 0;
}

int hub_random_hex(size_t nbytes, char *out, struct hub_err *err)
{
    unsigned char buf[128];
    if (nbytes > sizeof(buf))
        return HUB_ERR(err, HUB_E_INVALID_ARG, "at most %zu random bytes at once", sizeof(buf));
    int rc = hub_random_bytes(buf, nbytes, err);
    if (rc != 0)
        return rc;
    hub_hex_upper(buf, nbytes, out);
    return 0;
}

int hub_ct_equal(const void *a, size_t alen, const void *b, size_t blen)
{
    const unsigned char *pa = a, *pb = b;
    /* Compare over the longer length so timing does not reveal the common prefix. */
    size_t n = alen > blen ? alen : blen;
    unsigned char diff = (unsigned char)(alen != blen);
    for (size_t i = 0; i < n; i++) {
        unsigned char ca = i < alen ? pa[i] : 0;
        unsigned char cb = i < blen ? pb[i] : 0;
        diff |= (unsigned char)(ca ^ cb);
    }
    return diff == 0;
}

size_t hub_base64_encoded_len(size_t len)
{
    return 4 * ((len + 2) / 3);
}

size_t hub_base64_encode(const unsigned char *in, size_t len, char *out)
{
    if (len == 0) {
        out[0] = '\0';
        return 0;
    }
    return (size_t)EVP_EncodeBlock((unsigned char *)out, in, (int)len);
}

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

int hub_base64_decode(const char *in, size_t inlen, unsigned char *out, size_t outcap,
                      struct hub_err *err)
{
    /* Strict: length a multiple of 4, padding only at the end, no whitespace. */
    if (inlen % 4 != 0)
        return HUB_ERR(err, HUB_E_PARSE, "base64 length is not a multiple of 4");
    size_t pad = 0;
    if (inlen >= 1 && in[inlen - 1] == '=')
        pad++;
    if (inlen >= 2 && in[inlen - 2] == '=')
        pad++;
    size_t outlen = inlen / 4 * 3 - pad;
    if (outlen > outcap)
        return HUB_ERR(err, HUB_E_TOO_LARGE, "base64 value too long");
    size_t o = 0;
    for (size_t i = 0; i < inlen; i += 4) {
        int v[4];
        for (int k = 0; k < 4; k++) {
            unsigned char c = (unsigned char)in[i + k];
            if (c == '=' && i + 4 == inlen && k >= 4 - (int)pad) {
                v[k] = 0;
                continue;
            }
            v[k] = b64_value(c);
            if (v[k] < 0)
                return HUB_ERR(err, HUB_E_PARSE, "invalid base64 character");
        }
        unsigned long triple = ((unsigned long)v[0] << 18) | ((unsigned long)v[1] << 12) |
                               ((unsigned long)v[2] << 6) | (unsigned long)v[3];
        unsigned char bytes[3] = {(unsigned char)(triple >> 16), (unsigned char)(triple >> 8),
                                  (unsigned char)triple};
        for (int k = 0; k < 3 && o < outlen; k++)
            out[o++] = bytes[k];
    }
    return (int)outlen;
}

void hub_time_iso8601(time_t t, char out[HUB_TIME_ISO_LEN])
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, HUB_TIME_ISO_LEN, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void hub_time_rfc1123(time_t t, char out[HUB_TIME_RFC1123_LEN])
{
    static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    struct tm tm;
    gmtime_r(&t, &tm);
    /* Locale-independent on purpose: strftime's %a/%b follow LC_TIME. */
    snprintf(out, HUB_TIME_RFC1123_LEN, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday],
             tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}
