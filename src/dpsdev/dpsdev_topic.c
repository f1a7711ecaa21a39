/*
 * dpsdev: the DPS MQTT username and topic grammar (reference §7).
 *
 * | what           | form                                                                   |
 * |----------------|------------------------------------------------------------------------|
 * | username       | {idScope}/registrations/{regId}/[?]api-version={v}&ClientVersion={c}   |
 * | register       | $dps/registrations/PUT/iotdps-register/?$rid={rid}                     |
 * | status poll    | $dps/registrations/GET/iotdps-get-operationstatus/?$rid={r}&operationId={op} |
 * | response       | $dps/registrations/res/{status}/?$rid={rid}[&retry-after={s}]          |
 *
 * Query values are used as sent (the SDKs send them unencoded; rid is a
 * number, operationId is ours).
 */
#include <stdio.h>
#include <string.h>

#include "dpsdev/dpsdev.h"

static const struct {
    int status;
    int code;
    const char *name;
    const char *text;
} reasons[] = {
#define ROW(name, status, code, text) {status, code, #name, text},
    HUB_DPSDEV_REASON_MAP(ROW)
#undef ROW
};

const char *hub_dpsdev_reason_name(enum hub_dpsdev_reason r)
{
    return (unsigned)r < HUB_DPSDEV_R__COUNT ? reasons[r].name : "UNKNOWN";
}

int hub_dpsdev_reason_status(enum hub_dpsdev_reason r)
{
    return (unsigned)r < HUB_DPSDEV_R__COUNT ? reasons[r].status : 500;
}

int hub_dpsdev_reason_code(enum hub_dpsdev_reason r)
{
    return (unsigned)r < HUB_DPSDEV_R__COUNT ? reasons[r].code : 500000;
}

const char *hub_dpsdev_reason_text(enum hub_dpsdev_reason r)
{
    return (unsigned)r < HUB_DPSDEV_R__COUNT ? reasons[r].text : "unknown";
}

bool hub_dpsdev_registration_id_valid(const char *s, size_t len)
{
    if (len == 0 || len > HUB_DPSDEV_REG_ID_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '.' || c == ':' || c == '_';
        if (!ok)
            return false;
    }
    return true;
}

static int copy_part(char *dst, size_t cap, const char *src, size_t len, const char *what,
                     struct hub_err *err)
{
    if (len == 0)
        return HUB_ERR(err, HUB_E_PARSE, "%s is empty", what);
    if (len >= cap)
        return HUB_ERR(err, HUB_E_TOO_LARGE, "%s is longer than %zu bytes", what, cap - 1);
    /* Values are echoed into response topics and log lines: no NUL, no
     * controls or spaces, no topic separators or wildcards. */
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)src[i];
        if (c <= 0x20 || c >= 0x7f || c == '/' || c == '#' || c == '+')
            return HUB_ERR(err, HUB_E_PARSE, "%s has byte 0x%02x at %zu", what, c, i);
    }
    memcpy(dst, src, len);
    dst[len] = '\0';
    return 0;
}

/* Finds key's value in a `k=v&k=v` query; 1 found (value view set), 0 not. */
static int query_get(const char *q, size_t len, const char *key, const char **val, size_t *vlen)
{
    size_t klen = strlen(key);
    size_t i = 0;
    while (i < len) {
        const char *amp = memchr(q + i, '&', len - i);
        size_t end = amp != NULL ? (size_t)(amp - q) : len;
        if (end - i > klen && memcmp(q + i, key, klen) == 0 && q[i + klen] == '=') {
            *val = q + i + klen + 1;
            *vlen = end - i - klen - 1;
            return 1;
        }
        i = end + 1;
    }
    return 0;
}

int hub_dpsdev_username_parse(const char *s, size_t len, struct hub_dpsdev_username *out,
                              struct hub_err *err)
{
    memset(out, 0, sizeof(*out));
    static const char mid[] = "/registrations/";
    const char *slash = memchr(s, '/', len);
    if (slash == NULL)
        return HUB_ERR(err, HUB_E_PARSE, "username has no '/registrations/' part");
    size_t scope_len = (size_t)(slash - s);
    size_t rest = len - scope_len;
    if (rest < sizeof(mid) - 1 || memcmp(slash, mid, sizeof(mid) - 1) != 0)
        return HUB_ERR(err, HUB_E_PARSE, "username has no '/registrations/' after the ID scope");
    int rc =
        copy_part(out->id_scope, sizeof(out->id_scope), s, scope_len, "username ID scope", err);
    if (rc != 0)
        return rc;
    const char *reg = slash + sizeof(mid) - 1;
    size_t reg_room = len - (size_t)(reg - s);
    const char *reg_end = memchr(reg, '/', reg_room);
    size_t reg_len = reg_end != NULL ? (size_t)(reg_end - reg) : reg_room;
    rc = copy_part(out->registration_id, sizeof(out->registration_id), reg, reg_len,
                   "username registration id", err);
    if (rc != 0)
        return rc;
    if (!hub_dpsdev_registration_id_valid(reg, reg_len))
        return HUB_ERR(err, HUB_E_PARSE, "username registration id has a forbidden character");
    if (reg_end == NULL)
        return 0;
    const char *q = reg_end + 1;
    size_t qlen = len - (size_t)(q - s);
    if (qlen > 0 && q[0] == '?') {
        q++;
        qlen--;
    }
    const char *v;
    size_t vlen;
    if (query_get(q, qlen, "api-version", &v, &vlen) && vlen > 0) {
        if (vlen >= sizeof(out->api_version))
            return HUB_ERR(err, HUB_E_TOO_LARGE, "username api-version is too long");
        memcpy(out->api_version, v, vlen);
        out->api_version[vlen] = '\0';
    }
    return 0;
}

int hub_dpsdev_topic_parse(const char *topic, size_t len, struct hub_dpsdev_topic *out,
                           struct hub_err *err)
{
    static const char reg[] = "$dps/registrations/PUT/iotdps-register/?";
    static const char status[] = "$dps/registrations/GET/iotdps-get-operationstatus/?";
    memset(out, 0, sizeof(*out));
    const char *q;
    size_t qlen;
    if (len >= sizeof(reg) - 1 && memcmp(topic, reg, sizeof(reg) - 1) == 0) {
        out->kind = HUB_DPSDEV_TOPIC_REGISTER;
        q = topic + sizeof(reg) - 1;
        qlen = len - (sizeof(reg) - 1);
    } else if (len >= sizeof(status) - 1 && memcmp(topic, status, sizeof(status) - 1) == 0) {
        out->kind = HUB_DPSDEV_TOPIC_STATUS;
        q = topic + sizeof(status) - 1;
        qlen = len - (sizeof(status) - 1);
    } else {
        return HUB_ERR(err, HUB_E_PARSE, "not a DPS request topic");
    }
    const char *v;
    size_t vlen;
    if (!query_get(q, qlen, "$rid", &v, &vlen))
        return HUB_ERR(err, HUB_E_PARSE, "DPS topic has no $rid");
    int rc = copy_part(out->rid, sizeof(out->rid), v, vlen, "$rid", err);
    if (rc != 0)
        return rc;
    if (out->kind == HUB_DPSDEV_TOPIC_STATUS) {
        if (!query_get(q, qlen, "operationId", &v, &vlen))
            return HUB_ERR(err, HUB_E_PARSE, "operation status topic has no operationId");
        rc = copy_part(out->operation_id, sizeof(out->operation_id), v, vlen, "operationId", err);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int hub_dpsdev_response_topic(char *out, size_t cap, int status, const char *rid, int retry_after_s)
{
    int n = retry_after_s >= 0
                ? snprintf(out, cap, "$dps/registrations/res/%d/?$rid=%s&retry-after=%d", status,
                           rid, retry_after_s)
                : snprintf(out, cap, "$dps/registrations/res/%d/?$rid=%s", status, rid);
    if (n < 0 || (size_t)n >= cap)
        return HUB_E_TOO_LARGE;
    return n;
}
