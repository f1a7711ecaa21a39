/*
 * IoT Hub connection strings (reference §8; Azure portal and SDK forms).
 *
 *   connstr = pair *( ";" pair ) [ ";" ]
 *   pair    = key "=" value        ; value = everything after the FIRST '='
 *
 *   | key                 | service  | device / module      | limit            |
 *   |---------------------|----------|----------------------|------------------|
 *   | HostName            | required | required             | HUB_AUTH_HOST_MAX|
 *   | SharedAccessKeyName | required | optional (policy)    | HUB_AUTH_NAME_MAX|
 *   | SharedAccessKey     | required | one of key / x509    | base64 16..64 B  |
 *   | DeviceId            | -        | required             | HUB_AUTH_ID_MAX  |
 *   | ModuleId            | -        | module only          | HUB_AUTH_ID_MAX  |
 *   | GatewayHostName     | -        | optional             | HUB_AUTH_HOST_MAX|
 *   | x509                | -        | "true" / "false"     |                  |
 *
 * Examples: `HostName=h;SharedAccessKeyName=iothubowner;SharedAccessKey=K=`,
 * `HostName=localhost;DeviceId=dev1;x509=true`,
 * `HostName=localhost;DeviceId=dev1;SharedAccessKey=K=;GatewayHostName=localhost:18884`.
 */
#include "auth/auth_int.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

enum cs_key { K_HOST, K_DEVICE, K_MODULE, K_KEY_NAME, K_KEY, K_GATEWAY, K_X509, K_COUNT };

/* Format order is this table's order (Azure's portal order). */
static const struct {
    const char *name;
    size_t off; /* offset of the char array in struct hub_auth_connstr; 0 for x509 */
    size_t cap; /* its size, NUL included */
} KEYS[K_COUNT] = {
    [K_HOST] = {"HostName", offsetof(struct hub_auth_connstr, host_name),
                sizeof(((struct hub_auth_connstr *)0)->host_name)},
    [K_DEVICE] = {"DeviceId", offsetof(struct hub_auth_connstr, device_id),
                  sizeof(((struct hub_auth_connstr *)0)->device_id)},
    [K_MODULE] = {"ModuleId", offsetof(struct hub_auth_connstr, module_id),
                  sizeof(((struct hub_auth_connstr *)0)->module_id)},
    [K_KEY_NAME] = {"SharedAccessKeyName", offsetof(struct hub_auth_connstr, key_name),
                    sizeof(((struct hub_auth_connstr *)0)->key_name)},
    [K_KEY] = {"SharedAccessKey", offsetof(struct hub_auth_connstr, key),
               sizeof(((struct hub_auth_connstr *)0)->key)},
    [K_GATEWAY] = {"GatewayHostName", offsetof(struct hub_auth_connstr, gateway_host_name),
                   sizeof(((struct hub_auth_connstr *)0)->gateway_host_name)},
    [K_X509] = {"x509", 0, 0},
};

static int find_key(const char *name, size_t len)
{
    for (int k = 0; k < K_COUNT; k++)
        if (strlen(KEYS[k].name) == len && memcmp(KEYS[k].name, name, len) == 0)
            return k;
    return -1;
}

static int unknown_key(const char *name, size_t len, struct hub_err *err)
{
    int shown = (int)(len > 40 ? 40 : len);
    if (hub_auth__ascii_case_equal_n(name, len, "SharedAccessSignature"))
        return HUB_ERR(err, HUB_E_PARSE,
                       "SharedAccessSignature connection strings are not supported; use "
                       "SharedAccessKey or x509=true");
    for (int k = 0; k < K_COUNT; k++)
        if (hub_auth__ascii_case_equal_n(name, len, KEYS[k].name))
            return HUB_ERR(err, HUB_E_PARSE,
                           "unknown key '%.*s' (keys are case-sensitive: did you mean '%s'?)",
                           shown, name, KEYS[k].name);
    /* Echo the name only when it cannot be key material: every key is at
     * least 16 bytes, i.e. 22+ base64 characters before any '='. */
    int echo = len <= 21;
    for (size_t i = 0; i < len && echo; i++) {
        char c = name[i];
        echo = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
               c == '_' || c == '-' || c == '.';
    }
    if (!echo)
        return HUB_ERR(err, HUB_E_PARSE, "unknown key of %zu bytes (not shown)", len);
    return HUB_ERR(err, HUB_E_PARSE, "unknown key '%.*s'", shown, name);
}

static int set_value(struct hub_auth_connstr *out, int k, const char *v, size_t len,
                     struct hub_err *err)
{
    if (k == K_X509) {
        if (hub_auth__ascii_case_equal_n(v, len, "true"))
            out->x509 = 1;
        else if (hub_auth__ascii_case_equal_n(v, len, "false"))
            out->x509 = 0;
        else
            return HUB_ERR(err, HUB_E_PARSE, "x509 must be true or false");
        return 0;
    }
    if (len + 1 > KEYS[k].cap)
        return HUB_ERR(err, HUB_E_TOO_LARGE, "value of '%s' is longer than %zu bytes", KEYS[k].name,
                       KEYS[k].cap - 1);
    char *dst = (char *)out + KEYS[k].off;
    memcpy(dst, v, len);
    dst[len] = '\0';
    return 0;
}

/* Which combinations make a usable connection string (see the table above). */
static int check_combination(struct hub_auth_connstr *cs, struct hub_err *err)
{
    if (cs->host_name[0] == '\0')
        return HUB_ERR(err, HUB_E_PARSE, "connection string has no HostName");
    if (cs->key[0] != '\0') {
        struct hub_err inner = {0};
        if (hub_auth_key_validate(cs->key, &inner) != 0)
            return HUB_ERR(err, HUB_E_PARSE, "SharedAccessKey: %s", inner.msg);
    }
    if (cs->device_id[0] == '\0') {
        if (cs->module_id[0] != '\0')
            return HUB_ERR(err, HUB_E_PARSE, "ModuleId without DeviceId");
        if (cs->gateway_host_name[0] != '\0' || cs->x509)
            return HUB_ERR(err, HUB_E_PARSE,
                           "GatewayHostName and x509 belong to device connection strings");
        if (cs->key_name[0] == '\0' || cs->key[0] == '\0')
            return HUB_ERR(err, HUB_E_PARSE,
                           "a service connection string needs SharedAccessKeyName and "
                           "SharedAccessKey (or DeviceId for a device)");
        cs->kind = HUB_AUTH_CONNSTR_SERVICE;
        return 0;
    }
    if (cs->x509 && cs->key[0] != '\0')
        return HUB_ERR(err, HUB_E_PARSE, "x509=true and SharedAccessKey are exclusive");
    if (!cs->x509 && cs->key[0] == '\0')
        return HUB_ERR(err, HUB_E_PARSE,
                       "a device connection string needs SharedAccessKey or x509=true");
    if (cs->key_name[0] != '\0' && cs->key[0] == '\0')
        return HUB_ERR(err, HUB_E_PARSE, "SharedAccessKeyName without SharedAccessKey");
    cs->kind = cs->module_id[0] != '\0' ? HUB_AUTH_CONNSTR_MODULE : HUB_AUTH_CONNSTR_DEVICE;
    return 0;
}

int hub_auth_connstr_parse(const char *text, size_t len, struct hub_auth_connstr *out,
                           struct hub_err *err)
{
    if (text == NULL || out == NULL)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "NULL connection string or output");
    if (len > HUB_AUTH_CONNSTR_MAX)
        return HUB_ERR(err, HUB_E_TOO_LARGE, "connection string is %zu bytes, limit %d", len,
                       HUB_AUTH_CONNSTR_MAX);
    memset(out, 0, sizeof(*out));
    if (len == 0)
        return HUB_ERR(err, HUB_E_PARSE, "empty connection string");
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c < 0x20 || c == 0x7f)
            return HUB_ERR(err, HUB_E_PARSE, "control byte 0x%02x at offset %zu", c, i);
    }

    int seen[K_COUNT] = {0};
    size_t pos = 0;
    while (pos < len) {
        const char *semi = memchr(text + pos, ';', len - pos);
        size_t end = semi != NULL ? (size_t)(semi - text) : len;
        if (end == pos)
            return HUB_ERR(err, HUB_E_PARSE, "empty segment at offset %zu", pos);
        const char *eq = memchr(text + pos, '=', end - pos);
        /* Offsets only: a malformed segment may be key material. */
        if (eq == NULL)
            return HUB_ERR(err, HUB_E_PARSE, "segment at offset %zu has no '='", pos);
        size_t name_len = (size_t)(eq - (text + pos));
        if (name_len == 0)
            return HUB_ERR(err, HUB_E_PARSE, "segment at offset %zu has an empty key", pos);
        int k = find_key(text + pos, name_len);
        if (k < 0)
            return unknown_key(text + pos, name_len, err);
        if (seen[k])
            return HUB_ERR(err, HUB_E_PARSE, "duplicate key '%s'", KEYS[k].name);
        seen[k] = 1;
        size_t voff = pos + name_len + 1;
        if (voff == end)
            return HUB_ERR(err, HUB_E_PARSE, "empty value for '%s'", KEYS[k].name);
        int rc = set_value(out, k, text + voff, end - voff, err);
        if (rc != 0)
            return rc;
        pos = end + 1; /* past the ';'; a single trailing ';' ends the loop */
    }
    return check_combination(out, err);
}

int hub_auth_connstr_format(const struct hub_auth_connstr *cs, char *out, size_t outcap,
                            struct hub_err *err)
{
    if (cs == NULL || out == NULL || outcap == 0)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "NULL connection string or output");
    char buf[HUB_AUTH_CONNSTR_MAX + 1];
    struct hub_auth_connstr check;
    struct hub_err inner = {0};
    size_t o = 0;
    int rc = 0;
    for (int k = 0; k < K_COUNT && rc == 0; k++) {
        const char *v;
        if (k == K_X509) {
            if (!cs->x509)
                continue;
            v = "true";
        } else {
            v = (const char *)cs + KEYS[k].off;
            if (memchr(v, '\0', KEYS[k].cap) == NULL) {
                rc = HUB_ERR(err, HUB_E_INVALID_ARG, "%s is not NUL-terminated", KEYS[k].name);
                break;
            }
            if (v[0] == '\0')
                continue;
            if (strchr(v, ';') != NULL) {
                rc = HUB_ERR(err, HUB_E_INVALID_ARG, "%s contains ';'", KEYS[k].name);
                break;
            }
        }
        int n = snprintf(buf + o, sizeof(buf) - o, "%s%s=%s", o ? ";" : "", KEYS[k].name, v);
        if (n < 0 || (size_t)n >= sizeof(buf) - o)
            rc = HUB_ERR(err, HUB_E_INVALID_ARG, "connection string over %d bytes",
                         HUB_AUTH_CONNSTR_MAX);
        else
            o += (size_t)n;
    }
    if (rc != 0)
        goto wipe;
    /* Whatever we emit must parse back to the same kind: one set of rules. */
    if (hub_auth_connstr_parse(buf, o, &check, &inner) != 0)
        rc = HUB_ERR(err, HUB_E_INVALID_ARG, "cannot format: %s", inner.msg);
    else if (check.kind != cs->kind)
        rc = HUB_ERR(err, HUB_E_INVALID_ARG, "fields describe a different kind of identity");
    else if (o + 1 > outcap)
        rc = HUB_ERR(err, HUB_E_TOO_LARGE, "connection string needs %zu bytes, buffer has %zu",
                     o + 1, outcap);
    else
        memcpy(out, buf, o + 1);
wipe:
    /* Both copies hold the key. */
    hub_auth__wipe(&check, sizeof(check));
    hub_auth__wipe(buf, sizeof(buf));
    return rc;
}
