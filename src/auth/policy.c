/*
 * Shared access policies and their permissions.
 *
 * Rights and their ARM text names (Microsoft.Devices AccessRights, the
 * `rights` string of SharedAccessSignatureAuthorizationRule):
 *
 *   | bit | name           | grants (Azure)                                   |
 *   |-----|----------------|--------------------------------------------------|
 *   | 0   | RegistryRead   | read the identity registry                       |
 *   | 1   | RegistryWrite  | write the identity registry                      |
 *   | 2   | ServiceConnect | service-facing endpoints: C2D, twins, methods    |
 *   | 3   | DeviceConnect  | device-facing endpoints (device tokens, §1)      |
 *   | 4   | ServiceConfig  | DPS: the service's own settings (unused by hubd) |
 *   | 5   | EnrollmentRead | DPS: read enrollments and enrollment groups      |
 *   | 6   | EnrollmentWrite| DPS: write them                                  |
 *   | 7   | RegistrationStatusRead  | DPS: read device registration records   |
 *   | 8   | RegistrationStatusWrite | DPS: delete them                        |
 *
 * The default policy set is the one Azure creates with every hub (Azure docs,
 * "Control access to IoT Hub"): iothubowner, service, device, registryRead,
 * registryReadWrite.
 */
#include "auth/auth_int.h"

#include <stdio.h>
#include <string.h>

static const struct {
    unsigned bit;
    const char *name;
} PERM_NAMES[] = {
    {HUB_AUTH_PERM_REGISTRY_READ, "RegistryRead"},
    {HUB_AUTH_PERM_REGISTRY_WRITE, "RegistryWrite"},
    {HUB_AUTH_PERM_SERVICE_CONNECT, "ServiceConnect"},
    {HUB_AUTH_PERM_DEVICE_CONNECT, "DeviceConnect"},
    {HUB_AUTH_PERM_DPS_SERVICE_CONFIG, "ServiceConfig"},
    {HUB_AUTH_PERM_DPS_ENROLLMENT_READ, "EnrollmentRead"},
    {HUB_AUTH_PERM_DPS_ENROLLMENT_WRITE, "EnrollmentWrite"},
    {HUB_AUTH_PERM_DPS_REGISTRATION_READ, "RegistrationStatusRead"},
    {HUB_AUTH_PERM_DPS_REGISTRATION_WRITE, "RegistrationStatusWrite"},
};
#define PERM_COUNT (sizeof(PERM_NAMES) / sizeof(PERM_NAMES[0]))

struct default_policy {
    const char *name;
    unsigned perms;
};

static const struct default_policy DEFAULT_POLICIES[] = {
    {"iothubowner", HUB_AUTH_PERM_ALL},
    {"registryRead", HUB_AUTH_PERM_REGISTRY_READ},
    {"registryReadWrite", HUB_AUTH_PERM_REGISTRY_READ | HUB_AUTH_PERM_REGISTRY_WRITE},
    {"serviceConnect", HUB_AUTH_PERM_SERVICE_CONNECT},
    {"deviceConnect", HUB_AUTH_PERM_DEVICE_CONNECT},
    {NULL, 0},
};

static const struct default_policy DEFAULT_DPS_POLICIES[] = {
    {"provisioningserviceowner", HUB_AUTH_PERM_DPS_ALL},
    {"enrollmentRead", HUB_AUTH_PERM_DPS_ENROLLMENT_READ | HUB_AUTH_PERM_DPS_REGISTRATION_READ},
    {"enrollmentReadWrite", HUB_AUTH_PERM_DPS_ENROLLMENT_READ | HUB_AUTH_PERM_DPS_ENROLLMENT_WRITE |
                                HUB_AUTH_PERM_DPS_REGISTRATION_READ |
                                HUB_AUTH_PERM_DPS_REGISTRATION_WRITE},
    {NULL, 0},
};

unsigned hub_auth_service_perms(enum hub_auth_service service)
{
    return service == HUB_AUTH_SERVICE_DPS ? HUB_AUTH_PERM_DPS_ALL : HUB_AUTH_PERM_ALL;
}

int hub_auth_perms_format(unsigned perms, char out[HUB_AUTH_PERMS_TEXT_MAX], struct hub_err *err)
{
    if ((perms & ~HUB_AUTH_PERM_KNOWN) != 0)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "unknown permission bits 0x%x",
                       perms & ~HUB_AUTH_PERM_KNOWN);
    size_t o = 0;
    out[0] = '\0';
    for (size_t i = 0; i < PERM_COUNT; i++) {
        if ((perms & PERM_NAMES[i].bit) == 0)
            continue;
        /* Longest result is 150 bytes: always fits HUB_AUTH_PERMS_TEXT_MAX. */
        o += (size_t)snprintf(out + o, HUB_AUTH_PERMS_TEXT_MAX - o, "%s%s", o ? ", " : "",
                              PERM_NAMES[i].name);
    }
    return 0;
}

int hub_auth_perms_parse(const char *text, size_t len, unsigned *perms_out, struct hub_err *err)
{
    if (text == NULL || perms_out == NULL)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "NULL text or output");
    unsigned perms = 0;
    size_t i = 0;
    while (i < len) {
        if (text[i] == ',' || text[i] == ' ') {
            i++;
            continue;
        }
        size_t start = i;
        while (i < len && text[i] != ',' && text[i] != ' ')
            i++;
        size_t n = i - start;
        unsigned bit = 0;
        for (size_t k = 0; k < PERM_COUNT && bit == 0; k++)
            if (hub_auth__ascii_case_equal_n(text + start, n, PERM_NAMES[k].name))
                bit = PERM_NAMES[k].bit;
        if (bit == 0)
            return HUB_ERR(err, HUB_E_PARSE,
                           "unknown permission '%.*s' (expected RegistryRead, RegistryWrite, "
                           "ServiceConnect, DeviceConnect; for DPS: ServiceConfig, "
                           "EnrollmentRead, EnrollmentWrite, RegistrationStatusRead, "
                           "RegistrationStatusWrite)",
                           (int)(n > 32 ? 32 : n), text + start);
        if (perms & bit)
            return HUB_ERR(err, HUB_E_PARSE, "permission '%.*s' listed twice", (int)n,
                           text + start);
        perms |= bit;
    }
    if (perms == 0)
        return HUB_ERR(err, HUB_E_PARSE, "empty permission list");
    *perms_out = perms;
    return 0;
}

int hub_auth_policy_name_validate(const char *name, struct hub_err *err)
{
    if (name == NULL || name[0] == '\0')
        return HUB_ERR(err, HUB_E_INVALID_ARG, "policy name is empty");
    size_t len = strlen(name);
    if (len > HUB_AUTH_NAME_MAX)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "policy name is longer than %d characters",
                       HUB_AUTH_NAME_MAX);
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        int ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                 c == '.' || c == '_' || c == '-';
        if (!ok)
            return HUB_ERR(err, HUB_E_INVALID_ARG,
                           "policy name has byte 0x%02x at %zu (allowed: A-Z a-z 0-9 . _ -)",
                           (unsigned char)c, i);
    }
    return 0;
}

const struct hub_auth_policy *hub_auth_policy_set_find0(const struct hub_auth_policy_set *set,
                                                        const char *name)
{
    if (set == NULL || name == NULL)
        return NULL;
    size_t n = set->count < HUB_AUTH_POLICY_SET_MAX ? set->count : HUB_AUTH_POLICY_SET_MAX;
    for (size_t i = 0; i < n; i++)
        if (strcmp(set->items[i].name, name) == 0)
            return &set->items[i];
    return NULL;
}

int hub_auth_policy_set_add(struct hub_auth_policy_set *set, const char *name, unsigned perms,
                            const char *primary_key, const char *secondary_key, struct hub_err *err)
{
    if (set == NULL)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "NULL policy set");
    int rc = hub_auth_policy_name_validate(name, err);
    if (rc != 0)
        return rc;
    if (perms == 0 || ((perms & ~HUB_AUTH_PERM_ALL) != 0 && (perms & ~HUB_AUTH_PERM_DPS_ALL) != 0))
        return HUB_ERR(err, HUB_E_INVALID_ARG,
                       "policy '%s': permissions 0x%x invalid (none, unknown, or IoT Hub and "
                       "DPS rights mixed)",
                       name, perms);
    struct hub_err inner = {0};
    if (hub_auth_key_validate(primary_key, &inner) != 0)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "policy '%s' primary %s", name, inner.msg);
    if (hub_auth_key_validate(secondary_key, &inner) != 0)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "policy '%s' secondary %s", name, inner.msg);
    if (hub_auth_policy_set_find0(set, name) != NULL)
        return HUB_ERR(err, HUB_E_EXISTS, "policy '%s' already exists", name);
    if (set->count >= HUB_AUTH_POLICY_SET_MAX)
        return HUB_ERR(err, HUB_E_LIMIT, "at most %d shared access policies",
                       HUB_AUTH_POLICY_SET_MAX);
    struct hub_auth_policy *p = &set->items[set->count];
    memset(p, 0, sizeof(*p));
    /* Lengths were validated above, so these copies cannot truncate. */
    memcpy(p->name, name, strlen(name) + 1);
    p->perms = perms;
    memcpy(p->primary_key, primary_key, strlen(primary_key) + 1);
    memcpy(p->secondary_key, secondary_key, strlen(secondary_key) + 1);
    set->count++;
    return 0;
}

static int init_defaults(struct hub_auth_policy_set *set, const struct default_policy *defaults,
                         struct hub_err *err)
{
    if (set == NULL)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "NULL policy set");
    memset(set, 0, sizeof(*set));
    for (const struct default_policy *d = defaults; d->name != NULL; d++) {
        char primary[HUB_AUTH_KEY_B64_MAX + 1], secondary[HUB_AUTH_KEY_B64_MAX + 1];
        int rc = hub_auth_key_generate(primary, err);
        if (rc == 0)
            rc = hub_auth_key_generate(secondary, err);
        if (rc == 0)
            rc = hub_auth_policy_set_add(set, d->name, d->perms, primary, secondary, err);
        hub_auth__wipe(primary, sizeof(primary));
        hub_auth__wipe(secondary, sizeof(secondary));
        if (rc != 0) {
            hub_auth__wipe(set, sizeof(*set));
            memset(set, 0, sizeof(*set));
            return rc;
        }
    }
    return 0;
}

int hub_auth_policy_set_init_default(struct hub_auth_policy_set *set, struct hub_err *err)
{
    return init_defaults(set, DEFAULT_POLICIES, err);
}

int hub_auth_policy_set_init_default_dps(struct hub_auth_policy_set *set, struct hub_err *err)
{
    return init_defaults(set, DEFAULT_DPS_POLICIES, err);
}

int hub_auth_policy_check(const struct hub_auth_policy *policy, unsigned needed,
                          struct hub_err *err)
{
    if (policy == NULL)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "NULL policy");
    unsigned missing = needed & ~policy->perms;
    if (missing == 0)
        return 0;
    char names[HUB_AUTH_PERMS_TEXT_MAX];
    if (hub_auth_perms_format(missing & HUB_AUTH_PERM_KNOWN, names, NULL) != 0 || names[0] == '\0')
        snprintf(names, sizeof(names), "unknown bits 0x%x", missing);
    return HUB_ERR(err, HUB_E_FORBIDDEN, "policy '%s' lacks %s", policy->name, names);
}
