/*
 * Percent-decoding shared by usernames and property bags (reference §1, §2).
 *
 * '+' is deliberately not a space: the SDKs encode spaces as %20
 * (encodeURIComponent) and '+' is a legitimate character in values (base64,
 * time zones). NUL is refused so decoded values are safe C strings, and the
 * result must be valid UTF-8 because it ends up in JSON and logs.
 */
#include "common/util.h"
#include "iothub/iothub_int.h"

int hub_iothub__unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

int hub_iothub__pct_decode(const char *in, size_t len, char *out, size_t cap, size_t *out_len,
                           const char *what, struct hub_err *err)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char c = in[i];
        if (c == '%') {
            int hi = i + 1 < len ? hub_hex_digit_value(in[i + 1]) : -1;
            int lo = i + 2 < len ? hub_hex_digit_value(in[i + 2]) : -1;
            if (hi < 0 || lo < 0)
                return HUB_ERR(err, HUB_E_PARSE, "%s has a bad percent-escape at offset %zu", what,
                               i);
            c = (char)(hi * 16 + lo);
            if (c == '\0')
                return HUB_ERR(err, HUB_E_PARSE, "%s contains %%00 at offset %zu", what, i);
            i += 2;
        } else if (c == '\0') {
            return HUB_ERR(err, HUB_E_PARSE, "%s contains a NUL byte at offset %zu", what, i);
        }
        if (o + 1 >= cap)
            return HUB_ERR(err, HUB_E_TOO_LARGE, "%s is longer than %zu bytes decoded", what,
                           cap == 0 ? 0 : cap - 1);
        out[o++] = c;
    }
    if (cap == 0)
        return HUB_ERR(err, HUB_E_TOO_LARGE, "%s: no room for the decoded value", what);
    out[o] = '\0';
    int rc = hub_mqtt_utf8_validate((const uint8_t *)out, o, what, err);
    if (rc < 0)
        return rc;
    *out_len = o;
    return 0;
}
