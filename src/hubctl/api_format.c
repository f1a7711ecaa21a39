/*
 * Pure helpers of hubctl's service API client (contract in api.h): no I/O,
 * so tests/unit/hubctl/test_https_client.c #includes this file.
 *
 * Error bodies handled (reference §4 "Error response", §5 "Response shapes"):
 *
 *   data plane   {"Message":"ErrorCode:DeviceNotFound;Device dev9 not found",
 *                 "ExceptionMessage":"Tracking ID:..."}  + iothub-errorcode header
 *   CA (RP) API  {"code":"...","httpStatusCode":"...","message":"...","details":"..."}
 *   ARM wrapper  {"error":{"code":"...","message":"..."}}
 *   anything else: the body's first line, or the reason phrase.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "hubctl/api.h"

/* Longest body excerpt quoted in a message when the body is not JSON. */
#define ERROR_EXCERPT_MAX 160

void hubctl_api_text_sanitize(const char *s, char *out, size_t cap)
{
    if (cap == 0)
        return;
    size_t o = 0;
    for (; s != NULL && *s != '\0' && o + 1 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        out[o++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    out[o] = '\0';
}

int hubctl_api_path_encode(const char *s, char *out, size_t cap, struct hub_err *err)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        int keep = isalnum(c) || (c != '\0' && strchr("-_.!~*'()", c) != NULL);
        size_t need = keep ? 1 : 3;
        if (o + need + 1 > cap)
            return HUB_ERR(err, HUB_E_TOO_LARGE, "encoded path segment too long");
        if (keep) {
            out[o++] = (char)c;
        } else {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    if (cap == 0)
        return HUB_ERR(err, HUB_E_TOO_LARGE, "encoded path segment too long");
    out[o] = '\0';
    return 0;
}

/* A string member of obj, or NULL. */
static const char *str_member(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

void hubctl_api_error_format(int status, const char *reason, const char *errcode_header,
                             const char *body, size_t body_len, char *out, size_t cap)
{
    char code[128] = "";
    char text[HUBCTL_API_ERRMSG_MAX] = "";
    char raw[HUBCTL_API_ERRMSG_MAX] = "";

    json_t *root = body_len > 0 ? json_loadb(body, body_len, 0, NULL) : NULL;
    if (json_is_object(root)) {
        const json_t *obj = root;
        if (json_is_object(json_object_get(root, "error")))
            obj = json_object_get(root, "error");
        const char *m = str_member(obj, "Message");
        if (m != NULL) {
            /* "ErrorCode:X;text": Node splits the same way (reference §4). */
            if (strncmp(m, "ErrorCode:", 10) == 0 && strchr(m, ';') != NULL) {
                const char *semi = strchr(m, ';');
                snprintf(code, sizeof(code), "%.*s", (int)(semi - m - 10), m + 10);
                snprintf(raw, sizeof(raw), "%s", semi + 1);
            } else {
                snprintf(raw, sizeof(raw), "%s", m);
            }
        } else {
            const char *c = str_member(obj, "code");
            const char *msg = str_member(obj, "message");
            if (c != NULL)
                snprintf(code, sizeof(code), "%s", c);
            if (msg != NULL)
                snprintf(raw, sizeof(raw), "%s", msg);
        }
    } else if (body_len > 0) {
        /* Not JSON (a proxy's HTML page, plain text): quote its first line. */
        size_t n = 0;
        while (n < body_len && n < ERROR_EXCERPT_MAX && body[n] != '\n' && body[n] != '\r')
            n++;
        snprintf(raw, sizeof(raw), "%.*s", (int)n, body);
    }
    json_decref(root);
    if (code[0] == '\0' && errcode_header != NULL)
        snprintf(code, sizeof(code), "%s", errcode_header);
    if (code[0] == '\0' && reason != NULL)
        snprintf(code, sizeof(code), "%s", reason);

    char scode[128];
    hubctl_api_text_sanitize(code, scode, sizeof(scode));
    hubctl_api_text_sanitize(raw, text, sizeof(text));
    if (cap == 0)
        return;
    if (scode[0] != '\0' && text[0] != '\0')
        snprintf(out, cap, "%d %s: %s", status, scode, text);
    else if (scode[0] != '\0' || text[0] != '\0')
        snprintf(out, cap, "%d %s", status, scode[0] != '\0' ? scode : text);
    else
        snprintf(out, cap, "%d", status);
}

int hubctl_device_auth_parse(const char *s, enum hubctl_device_auth *out, struct hub_err *err)
{
    static const struct {
        const char *name;
        enum hubctl_device_auth auth;
    } names[] = {{"ca", HUBCTL_DEVICE_AUTH_CA},
                 {"selfsigned", HUBCTL_DEVICE_AUTH_SELFSIGNED},
                 {"sas", HUBCTL_DEVICE_AUTH_SAS}};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcasecmp(s, names[i].name) == 0) {
            *out = names[i].auth;
            return 0;
        }
    }
    return HUB_ERR(err, HUB_E_INVALID_ARG, "unknown --auth '%s' (ca, selfsigned or sas)", s);
}

int hubctl_api_thumbprint_normalize(const char *in, char out[65], struct hub_err *err)
{
    size_t n = 0;
    for (const char *c = in; *c != '\0'; c++) {
        if (*c == ':')
            continue;
        if (!isxdigit((unsigned char)*c) || n >= 64)
            return HUB_ERR(err, HUB_E_INVALID_ARG,
                           "thumbprint must be 40 (SHA-1) or 64 (SHA-256) hex digits");
        out[n++] = (char)toupper((unsigned char)*c);
    }
    out[n] = '\0';
    if (n != 40 && n != 64)
        return HUB_ERR(err, HUB_E_INVALID_ARG,
                       "thumbprint must be 40 (SHA-1) or 64 (SHA-256) hex digits, got %zu", n);
    return 0;
}

json_t *hubctl_api_device_body_new(const char *device_id, enum hubctl_device_auth auth,
                                   const char *primary, const char *secondary)
{
    json_t *authn = NULL;
    switch (auth) {
    case HUBCTL_DEVICE_AUTH_CA:
        authn = json_pack("{s:s}", "type", "certificateAuthority");
        break;
    case HUBCTL_DEVICE_AUTH_SELFSIGNED:
        if (primary == NULL)
            return NULL;
        authn = json_pack("{s:s, s:{s:s, s:s?}}", "type", "selfSigned", "x509Thumbprint",
                          "primaryThumbprint", primary, "secondaryThumbprint", secondary);
        break;
    case HUBCTL_DEVICE_AUTH_SAS:
        authn = json_pack("{s:s, s:{s:s, s:s}}", "type", "sas", "symmetricKey", "primaryKey", "",
                          "secondaryKey", "");
        break;
    }
    if (authn == NULL || device_id == NULL) {
        json_decref(authn);
        return NULL;
    }
    return json_pack("{s:s, s:s, s:o}", "deviceId", device_id, "status", "enabled",
                     "authentication", authn);
}

json_t *hubctl_api_ca_body_new(const char *pem, int verified)
{
    return json_pack("{s:{s:s, s:b}}", "properties", "certificate", pem, "isVerified", verified);
}

int hubctl_api_ca_name_valid(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > 64)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)name[i]) && strchr("._-", name[i]) == NULL)
            return 0;
    return 1;
}
