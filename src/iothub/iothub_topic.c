/*
 * IoT Hub topic names and filters (reference §2). Grammar table: iothub.h.
 *
 * Device -> hub topics are matched by exact prefixes; what is tolerated and
 * why:
 *   - telemetry: a trailing '/' after the bag (Node's module output events),
 *     an empty bag, and no '/' at all after `events`;
 *   - twin/method: `/?`, `/` or `?` between the path and the query, since
 *     SDKs differ only there.
 * Anything else is UNKNOWN: the hub does not guess at topics it cannot route.
 */
#include "iothub/iothub_int.h"

#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

static bool has_prefix(const char *s, size_t len, const char *prefix)
{
    size_t n = strlen(prefix);
    return len >= n && memcmp(s, prefix, n) == 0;
}

static size_t find_char(const char *s, size_t len, char c)
{
    const char *p = memchr(s, c, len);
    return p == NULL ? len : (size_t)(p - s);
}

/* Looks up key in q[0..len) (pairs split on '&'); "%24x" matches "$x". */
static int query_find(const char *q, size_t len, const char *key, struct hub_mqtt_str *value)
{
    size_t klen = strlen(key);
    size_t i = 0;
    while (i <= len) {
        size_t end = i + find_char(q + i, len - i, '&');
        size_t eq = i + find_char(q + i, end - i, '=');
        const char *k = q + i;
        size_t kl = eq - i;
        bool match = (kl == klen && memcmp(k, key, klen) == 0);
        if (!match && key[0] == '$' && kl == klen + 2 && memcmp(k, "%24", 3) == 0 &&
            memcmp(k + 3, key + 1, klen - 1) == 0)
            match = true;
        if (match) {
            value->ptr = eq < end ? q + eq + 1 : q + end;
            value->len = eq < end ? end - eq - 1 : 0;
            return 1;
        }
        i = end + 1;
    }
    return 0;
}

int hub_iothub_query_get0(const char *topic, size_t len, const char *key,
                          struct hub_mqtt_str *value)
{
    size_t q = find_char(topic, len, '?');
    if (q < len)
        return query_find(topic + q + 1, len - q - 1, key, value);
    return query_find(topic, len, key, value);
}

int hub_iothub_rid_get0(const char *topic, size_t len, struct hub_mqtt_str *rid,
                        struct hub_err *err)
{
    if (!hub_iothub_query_get0(topic, len, "$rid", rid) || rid->len == 0)
        return HUB_ERR(err, HUB_E_PARSE, "topic has no non-empty $rid");
    return 0;
}

static int parse_decimal(const char *s, size_t len, int64_t max, int64_t *out)
{
    if (len == 0)
        return -1;
    int64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        int d = s[i] - '0';
        if (v > (max - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

int hub_iothub_version_get(const char *topic, size_t len, int64_t *version, struct hub_err *err)
{
    struct hub_mqtt_str v;
    if (!hub_iothub_query_get0(topic, len, "$version", &v))
        return HUB_ERR(err, HUB_E_PARSE, "topic has no $version");
    if (parse_decimal(v.ptr, v.len, INT64_MAX, version) < 0)
        return HUB_ERR(err, HUB_E_PARSE, "topic $version '%.*s' is not a decimal number",
                       (int)(v.len > 32 ? 32 : v.len), v.ptr);
    return 0;
}

/* ---- classification ----------------------------------------------------- */

/* After a matched path, the query: "", "/", "/?q", "/q", "?q". Sets *query;
 * false when the rest is something else (another path level). */
static bool query_tail(const char *rest, size_t len, struct hub_mqtt_str *query)
{
    size_t skip = 0;
    if (len > 0 && rest[0] == '/')
        skip = 1;
    if (skip < len && rest[skip] == '?')
        skip++;
    else if (skip == 0 && len > 0)
        return false;
    query->ptr = rest + skip;
    query->len = len - skip;
    return find_char(query->ptr, query->len, '/') == query->len;
}

/* `messages/events` then "", "/" or "/{bag}[/]". */
static bool events_tail(const char *s, size_t len, struct hub_mqtt_str *bag)
{
    static const char ev[] = "messages/events";
    if (!has_prefix(s, len, ev))
        return false;
    s += sizeof(ev) - 1;
    len -= sizeof(ev) - 1;
    if (len > 0 && s[0] != '/')
        return false;
    if (len > 0) {
        s++;
        len--;
    }
    if (len > 0 && s[len - 1] == '/')
        len--;
    bag->ptr = s;
    bag->len = len;
    return true;
}

static int classify_telemetry(const char *t, size_t len, struct hub_iothub_topic *out,
                              struct hub_err *err)
{
    static const char dev[] = "devices/";
    const char *s = t + sizeof(dev) - 1;
    size_t n = len - (sizeof(dev) - 1);
    size_t id = find_char(s, n, '/');
    if (id == n)
        return 0; /* "devices/x": unknown */
    struct hub_mqtt_str device = {s, id};
    s += id + 1;
    n -= id + 1;
    struct hub_mqtt_str module = {NULL, 0};
    if (has_prefix(s, n, "modules/")) {
        s += 8;
        n -= 8;
        size_t m = find_char(s, n, '/');
        if (m == n)
            return 0;
        if (m == 0)
            return HUB_ERR(err, HUB_E_PARSE, "telemetry topic has an empty module id");
        module.ptr = s;
        module.len = m;
        s += m + 1;
        n -= m + 1;
    }
    struct hub_mqtt_str bag;
    if (!events_tail(s, n, &bag))
        return 0;
    if (device.len == 0)
        return HUB_ERR(err, HUB_E_PARSE, "telemetry topic has an empty device id");
    out->kind = HUB_IOTHUB_TOPIC_TELEMETRY;
    out->device_id = device;
    out->module_id = module;
    out->bag = bag;
    return 0;
}

/* Twin and method topics: `{path}{query_tail}` with a required $rid. */
static int classify_request(const char *t, size_t len, const char *path,
                            enum hub_iothub_topic_kind kind, const char *what,
                            struct hub_iothub_topic *out, struct hub_err *err)
{
    size_t pl = strlen(path);
    struct hub_mqtt_str q;
    if (!query_tail(t + pl, len - pl, &q))
        return 0;
    if (!query_find(q.ptr, q.len, "$rid", &out->rid) || out->rid.len == 0)
        return HUB_ERR(err, HUB_E_PARSE, "%s topic has no non-empty $rid", what);
    out->kind = kind;
    out->query = q;
    return 0;
}

static int classify_method_res(const char *t, size_t len, struct hub_iothub_topic *out,
                               struct hub_err *err)
{
    static const char res[] = "$iothub/methods/res/";
    const char *s = t + sizeof(res) - 1;
    size_t n = len - (sizeof(res) - 1);
    size_t d = 0;
    while (d < n && s[d] != '/' && s[d] != '?')
        d++;
    struct hub_mqtt_str q;
    if (!query_tail(s + d, n - d, &q))
        return 0;
    int64_t status;
    if (parse_decimal(s, d, 999999999, &status) < 0)
        return HUB_ERR(err, HUB_E_PARSE, "method response status '%.*s' is not a decimal number",
                       (int)(d > 32 ? 32 : d), s);
    if (!query_find(q.ptr, q.len, "$rid", &out->rid) || out->rid.len == 0)
        return HUB_ERR(err, HUB_E_PARSE, "method response topic has no non-empty $rid");
    out->kind = HUB_IOTHUB_TOPIC_METHOD_RESPONSE;
    out->status = (int)status;
    out->query = q;
    return 0;
}

int hub_iothub_topic_classify(const char *topic, size_t len, struct hub_iothub_topic *out,
                              struct hub_err *err)
{
    memset(out, 0, sizeof(*out));
    if (has_prefix(topic, len, "devices/"))
        return classify_telemetry(topic, len, out, err);
    if (has_prefix(topic, len, "$iothub/twin/GET"))
        return classify_request(topic, len, "$iothub/twin/GET", HUB_IOTHUB_TOPIC_TWIN_GET,
                                "twin GET", out, err);
    if (has_prefix(topic, len, "$iothub/twin/PATCH/properties/reported"))
        return classify_request(topic, len, "$iothub/twin/PATCH/properties/reported",
                                HUB_IOTHUB_TOPIC_TWIN_PATCH_REPORTED, "twin PATCH reported", out,
                                err);
    if (has_prefix(topic, len, "$iothub/methods/res/"))
        return classify_method_res(topic, len, out, err);
    return 0;
}

static bool view_eq(struct hub_mqtt_str v, const char *s)
{
    size_t n = s == NULL ? 0 : strlen(s);
    return v.len == n && (n == 0 || memcmp(v.ptr, s, n) == 0);
}

int hub_iothub_topic_owner_check(const struct hub_iothub_topic *t, const char *device_id,
                                 const char *module_id, struct hub_err *err)
{
    if (t->kind != HUB_IOTHUB_TOPIC_TELEMETRY)
        return 0;
    if (!view_eq(t->device_id, device_id) || !view_eq(t->module_id, module_id))
        return HUB_ERR(
            err, HUB_E_FORBIDDEN, "telemetry topic is for '%.*s%s%.*s', connection is '%s%s%s'",
            (int)(t->device_id.len > 128 ? 128 : t->device_id.len), t->device_id.ptr,
            t->module_id.len ? "/" : "", (int)(t->module_id.len > 128 ? 128 : t->module_id.len),
            t->module_id.len ? t->module_id.ptr : "", device_id, module_id ? "/" : "",
            module_id ? module_id : "");
    return 0;
}

int hub_iothub_filter_classify(const char *f, size_t len, struct hub_iothub_filter *out,
                               struct hub_err *err)
{
    memset(out, 0, sizeof(*out));
    static const struct {
        const char *filter;
        enum hub_iothub_filter_kind kind;
    } fixed[] = {
        {"$iothub/twin/res/#", HUB_IOTHUB_FILTER_TWIN_RES},
        {"$iothub/twin/PATCH/properties/desired/#", HUB_IOTHUB_FILTER_TWIN_DESIRED},
        {"$iothub/methods/POST/#", HUB_IOTHUB_FILTER_METHODS_POST},
    };
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
        if (strlen(fixed[i].filter) == len && memcmp(fixed[i].filter, f, len) == 0) {
            out->kind = fixed[i].kind;
            return 0;
        }
    }
    static const char dev[] = "devices/";
    static const char tail[] = "/messages/devicebound/#";
    const size_t dl = sizeof(dev) - 1, tl = sizeof(tail) - 1;
    if (len < dl + tl || memcmp(f, dev, dl) != 0 || memcmp(f + len - tl, tail, tl) != 0)
        return 0;
    const char *id = f + dl;
    size_t idl = len - dl - tl;
    if (idl == 0)
        return HUB_ERR(err, HUB_E_PARSE, "C2D filter has an empty device id");
    for (size_t i = 0; i < idl; i++) {
        if (id[i] == '/' || id[i] == '+' || id[i] == '#')
            return 0; /* module form or a wildcard: not an IoT Hub filter */
    }
    out->kind = HUB_IOTHUB_FILTER_C2D;
    out->device_id.ptr = id;
    out->device_id.len = idl;
    return 0;
}

int hub_iothub_filter_owner_check(const struct hub_iothub_filter *f, const char *device_id,
                                  const char *module_id, struct hub_err *err)
{
    if (f->kind != HUB_IOTHUB_FILTER_C2D)
        return 0;
    if (module_id != NULL)
        return HUB_ERR(err, HUB_E_FORBIDDEN, "module '%s/%s' may not subscribe to C2D messages",
                       device_id, module_id);
    if (!view_eq(f->device_id, device_id))
        return HUB_ERR(err, HUB_E_FORBIDDEN, "C2D filter is for '%.*s', connection is '%s'",
                       (int)(f->device_id.len > 128 ? 128 : f->device_id.len), f->device_id.ptr,
                       device_id);
    return 0;
}

/* ---- builders ----------------------------------------------------------- */

static int check_segment(const char *s, size_t len, bool is_rid, const char *what,
                         struct hub_err *err)
{
    if (s == NULL || len == 0)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "%s is empty", what);
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '/' || c == '#' || c == '+' || c == '\0' || (is_rid && c == '&'))
            return HUB_ERR(err, HUB_E_INVALID_ARG, "%s contains %s, which a topic cannot carry",
                           what, c == '\0' ? "NUL" : (const char[]){'\'', c, '\'', '\0'});
    }
    struct hub_err uerr;
    if (hub_mqtt_utf8_validate((const uint8_t *)s, len, what, &uerr) < 0)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "%s", uerr.msg);
    return 0;
}

static int finish(int n, size_t cap, const char *what, struct hub_err *err)
{
    if (n < 0)
        return HUB_ERR(err, HUB_E_INTERNAL, "%s: formatting failed", what);
    if ((size_t)n >= cap)
        return HUB_ERR(err, HUB_E_TOO_LARGE, "%s needs %d bytes, buffer holds %zu", what, n + 1,
                       cap);
    return n;
}

static const char c2d_pre[] = "devices/";
static const char c2d_mid[] = "/messages/devicebound/";

size_t hub_iothub_c2d_topic_len(const char *device_id, const struct hub_iothub_prop *props,
                                size_t n)
{
    return sizeof(c2d_pre) - 1 + strlen(device_id) + sizeof(c2d_mid) - 1 +
           hub_iothub_props_encoded_len(props, n);
}

int hub_iothub_c2d_topic_build(char *buf, size_t cap, const char *device_id,
                               const struct hub_iothub_prop *props, size_t n, struct hub_err *err)
{
    int rc;
    if ((rc = check_segment(device_id, device_id ? strlen(device_id) : 0, false, "device id",
                            err)) < 0)
        return rc;
    size_t total = hub_iothub_c2d_topic_len(device_id, props, n);
    if (total >= (size_t)INT_MAX || cap < total + 1)
        return HUB_ERR(err, HUB_E_TOO_LARGE, "C2D topic needs %zu bytes, buffer holds %zu",
                       total + 1, cap);
    int head = snprintf(buf, cap, "%s%s%s", c2d_pre, device_id, c2d_mid);
    if ((rc = finish(head, cap, "C2D topic", err)) < 0)
        return rc;
    if ((rc = hub_iothub_props_encode(buf + head, cap - (size_t)head, props, n, err)) < 0)
        return rc;
    return head + rc;
}

int hub_iothub_twin_res_topic_build(char *buf, size_t cap, int status, struct hub_mqtt_str rid,
                                    int64_t version, struct hub_err *err)
{
    int rc;
    if (status < 100 || status > 999)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "twin response status %d is not 100..999", status);
    if ((rc = check_segment(rid.ptr, rid.len, true, "twin response $rid", err)) < 0)
        return rc;
    if (rid.len > INT_MAX)
        return HUB_ERR(err, HUB_E_TOO_LARGE, "twin response $rid is too long");
    int n;
    if (version >= 0)
        n = snprintf(buf, cap, "$iothub/twin/res/%d/?$rid=%.*s&$version=%" PRId64, status,
                     (int)rid.len, rid.ptr, version);
    else
        n = snprintf(buf, cap, "$iothub/twin/res/%d/?$rid=%.*s", status, (int)rid.len, rid.ptr);
    return finish(n, cap, "twin response topic", err);
}

int hub_iothub_twin_desired_topic_build(char *buf, size_t cap, int64_t version, struct hub_err *err)
{
    if (version < 0)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "desired version %" PRId64 " is negative", version);
    int n = snprintf(buf, cap, "$iothub/twin/PATCH/properties/desired/?$version=%" PRId64, version);
    return finish(n, cap, "desired-properties topic", err);
}

int hub_iothub_method_topic_build(char *buf, size_t cap, const char *method_name, const char *rid,
                                  struct hub_err *err)
{
    int rc;
    if ((rc = check_segment(method_name, method_name ? strlen(method_name) : 0, false,
                            "method name", err)) < 0)
        return rc;
    if ((rc = check_segment(rid, rid ? strlen(rid) : 0, true, "method $rid", err)) < 0)
        return rc;
    int n = snprintf(buf, cap, "$iothub/methods/POST/%s/?$rid=%s", method_name, rid);
    return finish(n, cap, "method request topic", err);
}
