#include "hubd/id_scope_file.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "hubd/secret_file.h"

#define SCOPE_LEN 11 /* "0ne" + 8 hex digits */

/* "0ne" + 8 hex digits, as hub_dps_id_scope_generate makes them; any case
 * of the hex digits, so a scope typed in by an operator still loads. */
static int scope_valid(const char *s)
{
    if (strlen(s) != SCOPE_LEN || strncmp(s, "0ne", 3) != 0)
        return 0;
    for (const char *p = s + 3; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'A' && *p <= 'F') || (*p >= 'a' && *p <= 'f')))
            return 0;
    return 1;
}

static int load(const char *path, char out[HUB_DPS_ID_SCOPE_SIZE], struct hub_err *err)
{
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return HUB_ERR(err, HUB_E_IO, "cannot open %s: %s", path, strerror(errno));
    char line[64] = "";
    int ok = fgets(line, sizeof(line), f) != NULL;
    fclose(f);
    line[strcspn(line, "\r\n")] = '\0';
    if (!ok || !scope_valid(line))
        return HUB_ERR(err, HUB_E_PARSE, "%s: not an ID scope (\"0ne\" and 8 hex digits)", path);
    /* Devices send the scope as generated (upper case): keep one spelling. */
    for (char *p = line + 3; *p; p++)
        if (*p >= 'a' && *p <= 'f')
            *p = (char)(*p - 'a' + 'A');
    memcpy(out, line, SCOPE_LEN + 1); /* scope_valid checked the length */
    return 0;
}

int hub_id_scope_file_load_or_create(const char *path, char out[HUB_DPS_ID_SCOPE_SIZE],
                                     int *created, struct hub_err *err)
{
    *created = 0;
    if (access(path, F_OK) == 0)
        return load(path, out, err);
    int rc = hub_dps_id_scope_generate(out, err);
    char line[HUB_DPS_ID_SCOPE_SIZE + 1];
    int n = snprintf(line, sizeof(line), "%s\n", out);
    if (rc == 0)
        rc = hub_secret_file_write(path, line, (size_t)n, err);
    if (rc == 0)
        *created = 1;
    return rc;
}
