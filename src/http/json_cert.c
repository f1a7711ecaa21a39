/*
 * CA certificate JSON, the resource-provider shapes
 * (shared/reference/azure-iot-hub-protocol.md §5):
 *
 *   {"properties":{"subject","expiry","thumbprint","isVerified","created",
 *                  "updated","certificate"[,"verificationCode"]},
 *    "id":"/certificates/{name}","name","etag",
 *    "type":"Microsoft.Devices/IotHubs/Certificates"}
 *
 * Dates are RFC 1123 as Azure's; thumbprint is the SHA-1 one. Pure.
 *
 * hubd adds to "properties" (hub_http__ca_lifecycle_add, issue 6):
 * "daysToExpiry", "crlThisUpdate", "crlNextUpdate", "crlExpired",
 * "crlRevokedCount" (docs/api.md, "Certificates").
 *
 * The uploaded "certificate" (and "crl") string: PEM, or base64 of DER
 * (hub_http__certificate_bytes_decode; fuzz/cert_upload links this file).
 */
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "http/http_int.h"
#include "http/json_map.h"

json_t *hub_http__ca_to_json(const struct hub_ca_cert *ca, int with_code)
{
    char expiry[HUB_TIME_RFC1123_LEN], created[HUB_TIME_RFC1123_LEN], updated[HUB_TIME_RFC1123_LEN];
    hub_time_rfc1123((time_t)ca->not_after, expiry);
    hub_time_rfc1123((time_t)ca->created, created);
    hub_time_rfc1123((time_t)ca->updated, updated);
    json_t *props =
        json_pack("{s:s, s:s, s:s, s:s, s:b, s:s, s:s, s:s}", "subject", ca->subject, "expiry",
                  expiry, "thumbprint", ca->thumbprint_sha1, "thumbprintSha256",
                  ca->thumbprint_sha256, "isVerified", ca->verified ? 1 : 0, "created", created,
                  "updated", updated, "certificate", ca->pem != NULL ? ca->pem : "");
    if (props != NULL && with_code) {
        char code_expiry[HUB_TIME_RFC1123_LEN];
        hub_time_rfc1123((time_t)ca->code_expires, code_expiry);
        json_object_set_new(props, "verificationCode", json_string(ca->verification_code));
        /* Not in Azure's shape: tells the operator how long the code lasts. */
        json_object_set_new(props, "verificationCodeExpiry", json_string(code_expiry));
    }
    char id[HUB_CA_NAME_SIZE + 16];
    snprintf(id, sizeof(id), "/certificates/%s", ca->name);
    return json_pack("{s:o, s:s, s:s, s:s, s:s}", "properties", props, "id", id, "name", ca->name,
                     "etag", ca->etag, "type", "Microsoft.Devices/IotHubs/Certificates");
}

static json_t *rfc1123_or_null(int64_t t)
{
    if (t == 0)
        return json_null();
    char buf[HUB_TIME_RFC1123_LEN];
    hub_time_rfc1123((time_t)t, buf);
    return json_string(buf);
}

json_t *hub_http__ca_lifecycle_add(json_t *ca_json, const struct hub_ca_cert *ca, int64_t now)
{
    json_t *props = json_object_get(ca_json, "properties");
    if (props == NULL)
        return ca_json;
    /* Whole days left, rounded down: 0 on its last day, -1 the day after. */
    int64_t left = ca->not_after - now;
    int64_t days = left >= 0 ? left / 86400 : -((-left + 86399) / 86400);
    bool has_crl = ca->crl_pem != NULL && ca->crl_pem[0] != '\0';
    json_object_set_new(props, "daysToExpiry", json_integer((json_int_t)days));
    json_object_set_new(props, "crlThisUpdate",
                        has_crl ? rfc1123_or_null(ca->crl_this_update) : json_null());
    json_object_set_new(props, "crlNextUpdate",
                        has_crl ? rfc1123_or_null(ca->crl_next_update) : json_null());
    json_object_set_new(
        props, "crlExpired",
        json_boolean(has_crl && ca->crl_next_update != 0 && ca->crl_next_update <= now));
    json_object_set_new(props, "crlRevokedCount",
                        has_crl ? json_integer((json_int_t)ca->crl_revoked_count) : json_null());
    return ca_json;
}

int hub_http__certificate_bytes_decode(const char *text, size_t len, unsigned char **out_new,
                                       size_t *out_len, char *why, size_t why_cap)
{
    static const char pem_begin[] = "-----BEGIN";
    *out_new = NULL;
    *out_len = 0;
    if (why_cap > 0)
        why[0] = '\0';
    unsigned char *buf = malloc(len + 1);
    if (buf == NULL)
        return HUB_E_NOMEM;
    /* Up to a NUL, as a C string search would: a marker after an embedded
     * NUL (JSON "\u0000") does not make the text PEM. */
    if (memmem(text, strnlen(text, len), pem_begin, sizeof(pem_begin) - 1) != NULL) {
        memcpy(buf, text, len);
        *out_new = buf;
        *out_len = len;
        return 0;
    }
    /* base64 DER, possibly wrapped over lines */
    char *compact = malloc(len + 1);
    if (compact == NULL) {
        free(buf);
        return HUB_E_NOMEM;
    }
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        if (!isspace((unsigned char)text[i]))
            compact[n++] = text[i];
    struct hub_err err = {0};
    int dlen = hub_base64_decode(compact, n, buf, len + 1, &err);
    free(compact);
    if (dlen <= 0) {
        free(buf);
        if (why_cap > 0)
            snprintf(why, why_cap, "%s", err.msg);
        return HUB_E_INVALID_ARG;
    }
    *out_new = buf;
    *out_len = (size_t)dlen;
    return 0;
}
