/*
 * The continuation token of POST /devices/query (query.c): the uppercase
 * hex of a device id, two digits per byte, read back in any case. The next
 * page starts after that id. An id is at most HUB_DEVICE_ID_MAX bytes, so a
 * token is at most 2 * HUB_DEVICE_ID_MAX digits; a token that decodes to no
 * valid device id (a NUL byte, a character Azure refuses in ids) is malformed.
 * Pure: the id rules are hub_registry_device_id_check's (registry/names.c,
 * which links nothing else), so fuzz/query_cursor links this file as is.
 */
#include <string.h>

#include "common/util.h"
#include "http/json_map.h"
#include "registry/registry.h"

int hub_http__query_cursor_decode(const char *token, char id[HUB_DEVICE_ID_SIZE],
                                  struct hub_err *err)
{
    size_t n = strlen(token);
    if (n == 0 || n % 2 != 0 || n / 2 > HUB_DEVICE_ID_MAX)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "malformed continuation token");
    for (size_t i = 0; i < n / 2; i++) {
        int hi = hub_hex_digit_value(token[2 * i]), lo = hub_hex_digit_value(token[2 * i + 1]);
        if (hi < 0 || lo < 0 || (hi | lo) == 0)
            return HUB_ERR(err, HUB_E_INVALID_ARG, "malformed continuation token");
        id[i] = (char)(hi << 4 | lo);
    }
    id[n / 2] = '\0';
    struct hub_err id_err = {0};
    if (hub_registry_device_id_check(id, &id_err) != 0)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "malformed continuation token");
    return 0;
}

void hub_http__query_cursor_encode(const char *id, char out[HUB_HTTP_QUERY_CURSOR_SIZE])
{
    hub_hex_upper((const unsigned char *)id, strlen(id), out);
}
