/*
 * registry: the pure syntax rules (device id, CA name) and the thumbprint
 * match, declared in registry.h. Kept apart from the rest of the registry
 * so that pure parsers elsewhere can check ids without linking the store:
 * http/cursor.c and its fuzz target (fuzz/query_cursor) link this file alone.
 */
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "registry/registry.h"

static bool is_alnum_ascii(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

int hub_registry_device_id_check(const char *id, struct hub_err *err)
{
    /* Azure's set (protocol reference §4); + and # are refused by current docs. */
    static const char extra[] = "-.%_*?!(),:=@$'";
    if (id == NULL || id[0] == '\0')
        return HUB_ERR(err, HUB_E_INVALID_ARG, "device id is empty");
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)id; *p != '\0'; p++, n++) {
        if (n == HUB_DEVICE_ID_MAX)
            return HUB_ERR(err, HUB_E_INVALID_ARG, "device id is longer than %d characters",
                           HUB_DEVICE_ID_MAX);
        if (!is_alnum_ascii(*p) && strchr(extra, *p) == NULL)
            return HUB_ERR(err, HUB_E_INVALID_ARG,
                           "device id has a character not allowed (byte 0x%02x at %zu)", *p, n);
    }
    return 0;
}

int hub_registry_ca_name_check(const char *name, struct hub_err *err)
{
    if (name == NULL || name[0] == '\0')
        return HUB_ERR(err, HUB_E_INVALID_ARG, "certificate name is empty");
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)name; *p != '\0'; p++, n++) {
        if (n == HUB_CA_NAME_MAX)
            return HUB_ERR(err, HUB_E_INVALID_ARG, "certificate name is longer than %d characters",
                           HUB_CA_NAME_MAX);
        if (!is_alnum_ascii(*p) && *p != '-' && *p != '.' && *p != '_')
            return HUB_ERR(err, HUB_E_INVALID_ARG,
                           "certificate name may hold only letters, digits, '-', '.' and '_' "
                           "(byte 0x%02x at %zu)",
                           *p, n);
    }
    return 0;
}

bool hub_registry_device_thumbprint_match(const struct hub_device *dev, const char *thumbprint)
{
    if (dev == NULL || thumbprint == NULL || thumbprint[0] == '\0')
        return false;
    return (dev->primary_thumbprint[0] != '\0' &&
            strcasecmp(dev->primary_thumbprint, thumbprint) == 0) ||
           (dev->secondary_thumbprint[0] != '\0' &&
            strcasecmp(dev->secondary_thumbprint, thumbprint) == 0);
}
