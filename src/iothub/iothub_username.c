/*
 * CONNECT username (reference §1):
 *
 * | SDK                 | captured form                                                          |
 * |---------------------|------------------------------------------------------------------------|
 * | Node                | `{host}/{dev}/?api-version=2021-04-12&DeviceClientType={enc(UA)}`      |
 * | Node, model id      | `...?api-version=...&model-id={raw dtmi}&DeviceClientType=...`         |
 * | Node, module        | `{host}/{dev}/{mod}/?api-version=...`                                  |
 * | C                   | `...?api-version=2020-09-30&DeviceClientType=...&model-id={enc dtmi}`  |
 * | old C               | `{host}/{dev}/api-version=2016-11-14&DeviceClientType=...` (no `?`)    |
 *
 * Parsing is lenient on layout (the forms above and their mixtures) and
 * strict on content: escapes, lengths and duplicates are errors, because the
 * device id read here is compared with the certificate CN and client id.
 */
#include "iothub/iothub_int.h"

#include <string.h>

/* Keys that mark a segment as the query when the `?` is missing. */
static const char *const known_keys[] = {"api-version", "DeviceClientType", "model-id"};
#define KNOWN_KEYS (sizeof(known_keys) / sizeof(known_keys[0]))

static int known_key_index(const char *k, size_t klen)
{
    for (size_t i = 0; i < KNOWN_KEYS; i++) {
        if (strlen(known_keys[i]) == klen && memcmp(known_keys[i], k, klen) == 0)
            return (int)i;
    }
    return -1;
}

/* A path segment s[0..len) is the start of the query when its first key
 * (text before '=' / '&') is a known key and an '=' follows it. */
static int looks_like_query(const char *s, size_t len)
{
    size_t k = 0;
    while (k < len && s[k] != '=' && s[k] != '&')
        k++;
    return k < len && s[k] == '=' && known_key_index(s, k) >= 0;
}

static size_t seg_end(const char *s, size_t from, size_t len)
{
    while (from < len && s[from] != '/' && s[from] != '?')
        from++;
    return from;
}

static int copy_verbatim(char *dst, size_t cap, const char *src, size_t len, const char *what,
                         struct hub_err *err)
{
    if (len == 0)
        return HUB_ERR(err, HUB_E_PARSE, "username has an empty %s segment", what);
    if (len >= cap)
        return HUB_ERR(err, HUB_E_TOO_LARGE, "username %s is longer than %zu bytes", what, cap - 1);
    memcpy(dst, src, len);
    dst[len] = '\0';
    return 0;
}

/* Parses `k=v&k=v...`; values of known keys are decoded into out. */
static int parse_query(const char *q, size_t len, struct hub_iothub_username *out,
                       struct hub_err *err)
{
    char *dst[KNOWN_KEYS] = {out->api_version, out->client_type, out->model_id};
    const size_t cap[KNOWN_KEYS] = {sizeof(out->api_version), sizeof(out->client_type),
                                    sizeof(out->model_id)};
    const char *what[KNOWN_KEYS] = {"username api-version", "username DeviceClientType",
                                    "username model-id"};
    bool seen[KNOWN_KEYS] = {false, false, false};
    char scratch[HUB_IOTHUB_USERNAME_MAX + 1];

    size_t i = 0;
    while (i < len) {
        size_t end = i;
        while (end < len && q[end] != '&')
            end++;
        if (end > i) {
            size_t eq = i;
            while (eq < end && q[eq] != '=')
                eq++;
            const char *v = eq < end ? q + eq + 1 : q + end;
            size_t vlen = eq < end ? end - eq - 1 : 0;
            int k = known_key_index(q + i, eq - i);
            size_t dlen;
            int rc;
            if (k >= 0) {
                if (seen[k])
                    return HUB_ERR(err, HUB_E_PARSE, "username has %s twice", known_keys[k]);
                seen[k] = true;
                rc = hub_iothub__pct_decode(v, vlen, dst[k], cap[k], &dlen, what[k], err);
            } else {
                /* Ignored, but a bad escape is still malformed input. */
                rc = hub_iothub__pct_decode(q + i, end - i, scratch, sizeof(scratch), &dlen,
                                            "username query parameter", err);
            }
            if (rc < 0)
                return rc;
        }
        i = end + 1;
    }
    return 0;
}

int hub_iothub_username_parse(const char *s, size_t len, struct hub_iothub_username *out,
                              struct hub_err *err)
{
    int rc;
    memset(out, 0, sizeof(*out));
    if (len > HUB_IOTHUB_USERNAME_MAX)
        return HUB_ERR(err, HUB_E_TOO_LARGE, "username is %zu bytes, limit %d", len,
                       HUB_IOTHUB_USERNAME_MAX);
    if (memchr(s, '\0', len) != NULL)
        return HUB_ERR(err, HUB_E_PARSE, "username contains a NUL byte");

    /* host: up to the first '/' */
    const char *slash = memchr(s, '/', len);
    if (slash == NULL)
        return HUB_ERR(err, HUB_E_PARSE,
                       "username has no device segment (expected {host}/{deviceId}/?...)");
    size_t host_len = (size_t)(slash - s);
    if ((rc = copy_verbatim(out->host, sizeof(out->host), s, host_len, "host", err)) < 0)
        return rc;

    /* device: up to the next '/' or '?' */
    size_t p = host_len + 1;
    size_t e = seg_end(s, p, len);
    if (e - p > 0 && looks_like_query(s + p, e - p))
        return HUB_ERR(err, HUB_E_PARSE, "username has no device segment before its query");
    if ((rc = copy_verbatim(out->device_id, sizeof(out->device_id), s + p, e - p, "device id",
                            err)) < 0)
        return rc;
    p = e;

    /* optional module, then the query */
    if (p < len && s[p] == '/') {
        size_t q0 = p + 1;
        size_t qe = seg_end(s, q0, len);
        if (qe > q0 && !looks_like_query(s + q0, qe - q0)) {
            if ((rc = copy_verbatim(out->module_id, sizeof(out->module_id), s + q0, qe - q0,
                                    "module id", err)) < 0)
                return rc;
            out->has_module = true;
            p = qe;
            if (p < len && s[p] == '/')
                p++;
            if (p < len && s[p] != '?' && !looks_like_query(s + p, len - p))
                return HUB_ERR(err, HUB_E_PARSE,
                               "username has an unexpected segment after the module id");
        } else {
            p = q0;
            if (p < len && s[p] == '/')
                return HUB_ERR(err, HUB_E_PARSE, "username has an empty module id segment");
        }
    }
    if (p < len && s[p] == '?')
        p++;
    return parse_query(s + p, len - p, out, err);
}
