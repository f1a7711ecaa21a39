#include "hubd/policies_file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "hubd/secret_file.h"

#define LINE_MAX_BYTES 512

static int save(const char *path, const struct hub_auth_policy_set *set, struct hub_err *err)
{
    static const char header[] = "# hubd shared access policies: name, primary key, secondary "
                                 "key, rights (tab-separated). Keep this file secret.\n";
    char text[sizeof(header) + HUB_AUTH_POLICY_SET_MAX * LINE_MAX_BYTES];
    size_t off = (size_t)snprintf(text, sizeof(text), "%s", header);
    for (size_t i = 0; i < set->count; i++) {
        const struct hub_auth_policy *p = &set->items[i];
        char rights[HUB_AUTH_PERMS_TEXT_MAX];
        int rc = hub_auth_perms_format(p->perms, rights, err);
        if (rc != 0)
            return rc;
        /* Each line is under LINE_MAX_BYTES (names, keys and rights are
         * bounded), so the buffer always holds the whole set. */
        off += (size_t)snprintf(text + off, sizeof(text) - off, "%s\t%s\t%s\t%s\n", p->name,
                                p->primary_key, p->secondary_key, rights);
    }
    int rc = hub_secret_file_write(path, text, off, err);
    OPENSSL_cleanse(text, sizeof(text)); /* the keys */
    return rc;
}

static int parse_line(char *line, const char *path, int lineno, unsigned allowed,
                      struct hub_auth_policy_set *set, struct hub_err *err)
{
    char *fields[4];
    int n = 0;
    char *save_ptr = NULL;
    for (char *tok = strtok_r(line, "\t", &save_ptr); tok != NULL && n < 4;
         tok = strtok_r(NULL, "\t", &save_ptr))
        fields[n++] = tok;
    if (n != 4)
        return HUB_ERR(err, HUB_E_PARSE,
                       "%s:%d: expected 4 tab-separated fields (name, primary key, secondary key, "
                       "rights)",
                       path, lineno);
    unsigned perms = 0;
    struct hub_err sub = {0};
    if (hub_auth_perms_parse(fields[3], strlen(fields[3]), &perms, &sub) != 0 ||
        hub_auth_policy_set_add(set, fields[0], perms, fields[1], fields[2], &sub) != 0)
        return HUB_ERR(err, HUB_E_PARSE, "%s:%d: %s", path, lineno, sub.msg);
    if ((perms & ~allowed) != 0)
        return HUB_ERR(err, HUB_E_PARSE, "%s:%d: policy '%s' holds rights of the other service",
                       path, lineno, fields[0]);
    return 0;
}

static int load(const char *path, unsigned allowed, struct hub_auth_policy_set *set,
                struct hub_err *err)
{
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return HUB_ERR(err, HUB_E_IO, "cannot open %s: %s", path, strerror(errno));
    memset(set, 0, sizeof(*set));
    char line[LINE_MAX_BYTES];
    int lineno = 0, rc = 0;
    while (rc == 0 && fgets(line, sizeof(line), f) != NULL) {
        lineno++;
        size_t len = strlen(line);
        if (len > 0 && line[len - 1] != '\n' && !feof(f)) {
            rc = HUB_ERR(err, HUB_E_PARSE, "%s:%d: line too long", path, lineno);
            break;
        }
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (len == 0 || line[0] == '#')
            continue;
        rc = parse_line(line, path, lineno, allowed, set, err);
    }
    fclose(f);
    if (rc == 0 && set->count == 0)
        rc = HUB_ERR(err, HUB_E_PARSE, "%s: no policies", path);
    return rc;
}

int hub_policies_file_load_or_create(const char *path, enum hub_auth_service service,
                                     struct hub_auth_policy_set *set, int *created,
                                     struct hub_err *err)
{
    *created = 0;
    if (access(path, F_OK) == 0)
        return load(path, hub_auth_service_perms(service), set, err);
    int rc = service == HUB_AUTH_SERVICE_DPS ? hub_auth_policy_set_init_default_dps(set, err)
                                             : hub_auth_policy_set_init_default(set, err);
    if (rc == 0)
        rc = save(path, set, err);
    if (rc == 0)
        *created = 1;
    return rc;
}
