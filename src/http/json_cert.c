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
 */
#include <stdbool.h>
#include <stdio.h>

#include "common/util.h"
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
