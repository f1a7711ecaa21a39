/*
 * Percent-decoding shared by usernames and property bags (reference §1, §2):
 * hub_pct_decode's rules ('+' is a plus sign, NUL refused raw or as %00) plus
 * one of this layer's: the result must be valid UTF-8 because it ends up in
 * JSON and logs.
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
    size_t o = 0, at = 0;
    switch (hub_pct_decode(in, len, out, cap, 0, &o, &at)) {
    case HUB_PCT_OK:
        break;
    case HUB_PCT_NUL_ESCAPE:
        return HUB_ERR(err, HUB_E_PARSE, "%s contains %%00 at offset %zu", what, at);
    case HUB_PCT_NUL_BYTE:
        return HUB_ERR(err, HUB_E_PARSE, "%s contains a NUL byte at offset %zu", what, at);
    case HUB_PCT_TOO_LONG:
        /* Empty input with cap 0: nothing was too long, the NUL had no room. */
        if (cap == 0 && len == 0)
            return HUB_ERR(err, HUB_E_TOO_LARGE, "%s: no room for the decoded value", what);
        return HUB_ERR(err, HUB_E_TOO_LARGE, "%s is longer than %zu bytes decoded", what,
                       cap == 0 ? 0 : cap - 1);
    default: /* HUB_PCT_BAD_ESCAPE (no flags: no slash refusal) */
        return HUB_ERR(err, HUB_E_PARSE, "%s has a bad percent-escape at offset %zu", what, at);
    }
    int rc = hub_mqtt_utf8_validate((const uint8_t *)out, o, what, err);
    if (rc < 0)
        return rc;
    *out_len = o;
    return 0;
}
