/* The service API's gate: a SAS token for a policy that holds the permission. */
#include <stdio.h>
#include <string.h>

#include "auth/auth.h"
#include "http/http_int.h"

int hub_http__authorize(struct hub_http_request *r, unsigned permission)
{
    const char *header = hub_http__header(r, "Authorization");
    if (header == NULL) {
        hub_http__reply_error(r, 401, "IotHubUnauthorizedAccess", "NO_TOKEN",
                              "missing Authorization header (SharedAccessSignature token)");
        return -1;
    }
    char resource[HUB_HTTP_MAX_SEGMENTS * HUB_HTTP_SEGMENT_MAX];
    size_t off = 0;
    resource[0] = '\0';
    for (size_t i = 0; i < r->segment_count && off < sizeof(resource); i++)
        off += (size_t)snprintf(resource + off, sizeof(resource) - off, "/%s", r->segments[i]);
    if (off == 0)
        snprintf(resource, sizeof(resource), "/");

    struct hub_auth_verify_cfg cfg = {
        .hosts = r->env->hostnames, .host_count = r->env->hostname_count, .max_ttl_s = 0};
    struct hub_auth_service_req req = {.now = r->env->now(),
                                       .resource = resource,
                                       .perms = permission,
                                       .policies = r->env->policies};
    struct hub_auth_result res;
    memset(&res, 0, sizeof(res));
    struct hub_err err = {0};
    int rc = hub_auth_service_authorize(&cfg, &req, header, strlen(header), &res, &err);
    if (res.policy != NULL)
        snprintf(r->who, sizeof(r->who), "%s", res.policy->name);
    if (rc == 0)
        return 0;
    if (rc == HUB_E_FORBIDDEN)
        hub_http__reply_error(r, 403, "IotHubUnauthorized", hub_auth_deny_name(res.deny), "%s",
                              err.msg);
    else if (rc == HUB_E_UNAUTHORIZED &&
             (res.deny == HUB_AUTH_DENY_UNKNOWN_POLICY || res.deny == HUB_AUTH_DENY_BAD_SIGNATURE))
        /* One answer for both, so a caller without a key cannot probe which
         * policy names exist; the log keeps the precise reason. */
        hub_http__reply_error_logged(r, 401, "IotHubUnauthorizedAccess",
                                     hub_auth_deny_name(res.deny), err.msg,
                                     "the SAS token's signature does not match a key of the named "
                                     "policy (wrong key, or no such policy)");
    else if (rc == HUB_E_UNAUTHORIZED)
        hub_http__reply_error(r, 401, "IotHubUnauthorizedAccess", hub_auth_deny_name(res.deny),
                              "%s", err.msg);
    else
        hub_http__reply_error(r, 500, "ServerError", hub_err_name(rc), "%s", err.msg);
    return -1;
}
