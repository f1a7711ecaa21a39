/* The service API's gate: a SAS token for a policy that holds the permission. */
#include <stdio.h>
#include <string.h>

#include "auth/auth.h"
#include "http/http_int.h"

static int authorize(struct hub_http_request *r, const struct hub_auth_policy_set *policies,
                     unsigned all_of, unsigned any_of);

int hub_http__authorize(struct hub_http_request *r, unsigned permission)
{
    return authorize(r, r->env->policies, permission, 0);
}

int hub_http__authorize_any(struct hub_http_request *r, unsigned any_of)
{
    return authorize(r, r->env->policies, 0, any_of);
}

int hub_http__authorize_dps(struct hub_http_request *r, unsigned permission)
{
    return authorize(r, r->env->dps_policies, permission, 0);
}

/* all_of: every right is needed (checked by the auth layer); any_of: one of
 * them is enough (checked here on the authenticated policy). */
static int authorize(struct hub_http_request *r, const struct hub_auth_policy_set *policies,
                     unsigned all_of, unsigned any_of)
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
    struct hub_auth_service_req req = {
        .now = r->env->now(), .resource = resource, .perms = all_of, .policies = policies};
    struct hub_auth_result res;
    struct hub_err err = {0};
    int rc;
    /* any_of: ask for each right in turn; the first the policy holds wins.
     * Any answer but FORBIDDEN (a bad token) settles it at once. */
    unsigned remaining = any_of != 0 ? any_of : all_of;
    do {
        unsigned bit = remaining & (~remaining + 1u);
        if (any_of != 0)
            req.perms = bit;
        memset(&res, 0, sizeof(res));
        hub_err_clear(&err);
        rc = hub_auth_service_authorize(&cfg, &req, header, strlen(header), &res, &err);
        remaining &= ~bit;
    } while (any_of != 0 && rc == HUB_E_FORBIDDEN && remaining != 0);
    if (res.policy != NULL)
        snprintf(r->who, sizeof(r->who), "%s", res.policy->name);
    if (rc == 0)
        return 0;
    if (rc == HUB_E_FORBIDDEN && any_of != 0) {
        char rights[HUB_AUTH_PERMS_TEXT_MAX] = "";
        hub_auth_perms_format(any_of, rights, NULL);
        hub_http__reply_error(r, 403, "IotHubUnauthorized", "SAS_NO_PERMISSION",
                              "policy %s needs one of these rights: %s", r->who, rights);
        return -1;
    }
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
