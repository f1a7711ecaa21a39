/*
 * `hubctl device ...`: the device registry over the service REST API
 * (reference §4 "Registry endpoints"), with the requests the Azure SDK sends:
 *
 *   create ID [--auth ca|selfsigned|sas] [--thumbprint X] [--secondary-thumbprint Y]
 *                                         PUT /devices/{id}, no If-Match
 *   show ID | list                        GET /devices/{id} | GET /devices
 *   delete ID                             DELETE /devices/{id}, If-Match: "*"
 *   update ID --status enabled|disabled [--reason TEXT]
 *                                         GET, change status(+Reason), PUT with If-Match: "*"
 *
 * Ids are percent-encoded as encodeURIComponent does. --auth defaults to ca
 * (the X.509 CA flow), or selfsigned when a thumbprint is given (as the SDK
 * does). sas sends empty keys: the hub generates them, and `create` prints
 * them with the device connection string.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hubctl/api.h"
#include "hubctl/hubctl.h"

/* encodeURIComponent of a 128-character id triples at worst. */
#define ENC_ID_MAX (3 * HUB_AUTH_ID_MAX + 1)

static const struct sub_usage {
    const char *name;
    const char *text;
} usages[] = {
    {"create", "usage: hubctl device create ID [--auth ca|selfsigned|sas] [--thumbprint X]\n"
               "                               [--secondary-thumbprint Y]\n"
               "\n"
               "Registers device ID. --auth ca (default): the device authenticates with a\n"
               "certificate chaining to a verified CA, leaf CN = ID. selfsigned: with a\n"
               "certificate whose SHA-1 or SHA-256 thumbprint is X (or Y); the default when\n"
               "--thumbprint is given. sas: with symmetric keys the hub generates; they are\n"
               "printed with the device connection string.\n"},
    {"show", "usage: hubctl device show ID\n\nShows device ID.\n"},
    {"list", "usage: hubctl device list\n\nLists the registered devices.\n"},
    {"delete", "usage: hubctl device delete ID\n\nDeletes device ID.\n"},
    {"update", "usage: hubctl device update ID --status enabled|disabled [--reason TEXT]\n"
               "\n"
               "Enables or disables device ID; a disabled device cannot connect.\n"
               "--reason sets statusReason.\n"},
};

static void family_usage(FILE *out)
{
    fprintf(out,
            "usage: hubctl [global options] device COMMAND ...\n"
            "\n"
            "commands:\n"
            "  create ID [--auth ca|selfsigned|sas] [--thumbprint X] [--secondary-thumbprint Y]\n"
            "  show ID\n"
            "  list\n"
            "  delete ID\n"
            "  update ID --status enabled|disabled [--reason TEXT]\n"
            "\n"
            "Each command takes --help and --json. Global options: hubctl --help.\n");
}

static void sub_usage(FILE *out, const char *sub)
{
    for (size_t i = 0; i < sizeof(usages) / sizeof(usages[0]); i++)
        if (strcmp(usages[i].name, sub) == 0)
            fputs(usages[i].text, out);
}

enum { OPT_JSON = 0x100, OPT_AUTH, OPT_THUMB, OPT_THUMB2, OPT_STATUS, OPT_REASON };

struct dev_args {
    int json;
    const char *auth, *thumb, *thumb2, *status, *reason;
    const char *id;
    char enc_id[ENC_ID_MAX];
};

/* Which options each subcommand accepts (bit per OPT_* - OPT_JSON). */
#define ALLOW(o) (1u << ((o)-OPT_JSON))

/* Parses a subcommand's options and its ID (if want_id). -1 to continue, else the exit status. */
static int parse_args(int argc, char **argv, unsigned allowed, int want_id, struct dev_args *a)
{
    static const struct option opts[] = {
        {"help", no_argument, NULL, 'h'},
        {"json", no_argument, NULL, OPT_JSON},
        {"auth", required_argument, NULL, OPT_AUTH},
        {"thumbprint", required_argument, NULL, OPT_THUMB},
        {"secondary-thumbprint", required_argument, NULL, OPT_THUMB2},
        {"status", required_argument, NULL, OPT_STATUS},
        {"reason", required_argument, NULL, OPT_REASON},
        {NULL, 0, NULL, 0}};
    memset(a, 0, sizeof(*a));
    optind = 0; /* GNU: full re-initialisation */
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'h') {
            sub_usage(stdout, argv[0]);
            return HUBCTL_OK;
        }
        if (c < OPT_JSON || !(allowed & ALLOW(c)))
            goto bad;
        switch (c) {
        case OPT_JSON:
            a->json = 1;
            break;
        case OPT_AUTH:
            a->auth = optarg;
            break;
        case OPT_THUMB:
            a->thumb = optarg;
            break;
        case OPT_THUMB2:
            a->thumb2 = optarg;
            break;
        case OPT_STATUS:
            a->status = optarg;
            break;
        case OPT_REASON:
            a->reason = optarg;
            break;
        }
    }
    int npos = argc - optind;
    if (npos != (want_id ? 1 : 0)) {
        fprintf(stderr, "hubctl: device %s: expected %s, got %d argument%s\n", argv[0],
                want_id ? "one device id" : "no arguments", npos, npos == 1 ? "" : "s");
        sub_usage(stderr, argv[0]);
        return HUBCTL_USAGE;
    }
    if (want_id) {
        struct hub_err err = {0};
        a->id = argv[optind];
        if (a->id[0] == '\0' || strlen(a->id) > HUB_AUTH_ID_MAX ||
            hubctl_api_path_encode(a->id, a->enc_id, sizeof(a->enc_id), &err) < 0) {
            fprintf(stderr, "hubctl: device id must be 1..%d characters\n", HUB_AUTH_ID_MAX);
            return HUBCTL_USAGE;
        }
    }
    return -1;
bad:
    fprintf(stderr, "hubctl: device %s: unknown or misplaced option '%s'\n", argv[0],
            argv[optind - 1]);
    sub_usage(stderr, argv[0]);
    return HUBCTL_USAGE;
}

static int open_api(const struct hubctl_globals *g, const struct dev_args *a,
                    struct hubctl_api *api)
{
    struct hub_err err = {0};
    if (hubctl_api_open(api, g, &err) < 0)
        return hubctl_api_fail(NULL, &err);
    api->json |= a->json;
    return -1;
}

/* api gives the HostName of the device connection string printed for sas devices. */
static void device_print(const struct hubctl_api *api, const json_t *d)
{
    const char *id = hubctl_api_str_at(d, "deviceId", NULL, NULL);
    const char *type = hubctl_api_str_at(d, "authentication", "type", NULL);
    hubctl_api_field_print("deviceId:", id);
    hubctl_api_field_print("status:", hubctl_api_str_at(d, "status", NULL, NULL));
    hubctl_api_field_print("statusReason:", hubctl_api_str_at(d, "statusReason", NULL, NULL));
    hubctl_api_field_print("authentication:", type);
    hubctl_api_field_print("generationId:", hubctl_api_str_at(d, "generationId", NULL, NULL));
    hubctl_api_field_print("etag:", hubctl_api_str_at(d, "etag", NULL, NULL));
    hubctl_api_field_print("connectionState:", hubctl_api_str_at(d, "connectionState", NULL, NULL));
    hubctl_api_field_print(
        "primaryThumbprint:",
        hubctl_api_str_at(d, "authentication", "x509Thumbprint", "primaryThumbprint"));
    hubctl_api_field_print(
        "secondaryThumbprint:",
        hubctl_api_str_at(d, "authentication", "x509Thumbprint", "secondaryThumbprint"));
    if (type == NULL || strcmp(type, "sas") != 0)
        return;
    const char *k1 = hubctl_api_str_at(d, "authentication", "symmetricKey", "primaryKey");
    hubctl_api_field_print("primaryKey:", k1);
    hubctl_api_field_print("secondaryKey:",
                           hubctl_api_str_at(d, "authentication", "symmetricKey", "secondaryKey"));
    if (id == NULL || k1 == NULL || k1[0] == '\0')
        return;
    struct hub_auth_connstr cs = {.kind = HUB_AUTH_CONNSTR_DEVICE};
    char text[HUB_AUTH_CONNSTR_MAX + 1];
    snprintf(cs.host_name, sizeof(cs.host_name), "%s", api->cs.host_name);
    snprintf(cs.device_id, sizeof(cs.device_id), "%s", id);
    snprintf(cs.key, sizeof(cs.key), "%s", k1);
    if (hub_auth_connstr_format(&cs, text, sizeof(text), NULL) == 0)
        hubctl_api_field_print("connectionString:", text);
}

static void device_list_print(const struct hubctl_api *api, const json_t *list)
{
    size_t i;
    const json_t *d;
    printf("%-32s %-9s %-21s %s\n", "DEVICE ID", "STATUS", "AUTH", "CONNECTION");
    json_array_foreach(list, i, d)
    {
        char id[HUB_AUTH_ID_MAX + 1], st[32], type[32], conn[32];
        hubctl_api_text_sanitize(hubctl_api_str_at(d, "deviceId", NULL, NULL), id, sizeof(id));
        hubctl_api_text_sanitize(hubctl_api_str_at(d, "status", NULL, NULL), st, sizeof(st));
        hubctl_api_text_sanitize(hubctl_api_str_at(d, "authentication", "type", NULL), type,
                                 sizeof(type));
        hubctl_api_text_sanitize(hubctl_api_str_at(d, "connectionState", NULL, NULL), conn,
                                 sizeof(conn));
        printf("%-32s %-9s %-21s %s\n", id, st, type, conn);
    }
}

static void output(const struct hubctl_api *api, const json_t *json,
                   void (*human)(const struct hubctl_api *, const json_t *))
{
    if (api->json)
        hubctl_api_json_print(json);
    else if (json != NULL)
        human(api, json);
}

static int device_create(const struct hubctl_globals *g, int argc, char **argv)
{
    struct dev_args a;
    struct hubctl_api api;
    int ex =
        parse_args(argc, argv,
                   ALLOW(OPT_JSON) | ALLOW(OPT_AUTH) | ALLOW(OPT_THUMB) | ALLOW(OPT_THUMB2), 1, &a);
    if (ex >= 0)
        return ex;
    struct hub_err err = {0};
    enum hubctl_device_auth auth =
        a.thumb || a.thumb2 ? HUBCTL_DEVICE_AUTH_SELFSIGNED : HUBCTL_DEVICE_AUTH_CA;
    char t1[65], t2[65];
    if ((a.auth != NULL && hubctl_device_auth_parse(a.auth, &auth, &err) < 0) ||
        (a.thumb != NULL && hubctl_api_thumbprint_normalize(a.thumb, t1, &err) < 0) ||
        (a.thumb2 != NULL && hubctl_api_thumbprint_normalize(a.thumb2, t2, &err) < 0)) {
        fprintf(stderr, "hubctl: %s\n", err.msg);
        return HUBCTL_USAGE;
    }
    if (auth == HUBCTL_DEVICE_AUTH_SELFSIGNED && a.thumb == NULL) {
        fprintf(stderr, "hubctl: --auth selfsigned needs --thumbprint\n");
        return HUBCTL_USAGE;
    }
    if (auth != HUBCTL_DEVICE_AUTH_SELFSIGNED && (a.thumb || a.thumb2)) {
        fprintf(stderr, "hubctl: thumbprints only go with --auth selfsigned\n");
        return HUBCTL_USAGE;
    }
    if ((ex = open_api(g, &a, &api)) >= 0)
        return ex;
    json_t *body =
        hubctl_api_device_body_new(a.id, auth, a.thumb ? t1 : NULL, a.thumb2 ? t2 : NULL);
    if (body == NULL) {
        fprintf(stderr, "hubctl: cannot build the request (device id not UTF-8?)\n");
        return HUBCTL_USAGE;
    }
    char path[sizeof("/devices/") + ENC_ID_MAX];
    snprintf(path, sizeof(path), "/devices/%s", a.enc_id);
    struct hubctl_api_response res = {0};
    int rc = hubctl_api_call(&api, "PUT", path, NULL, body, &res, &err);
    json_decref(body);
    if (rc < 0) {
        ex = hubctl_api_fail(&res, &err);
    } else {
        output(&api, res.json, device_print);
        ex = HUBCTL_OK;
    }
    hubctl_api_response_free(&res);
    return ex;
}

static int device_show(const struct hubctl_globals *g, int argc, char **argv)
{
    struct dev_args a;
    struct hubctl_api api;
    int ex = parse_args(argc, argv, ALLOW(OPT_JSON), 1, &a);
    if (ex >= 0 || (ex = open_api(g, &a, &api)) >= 0)
        return ex;
    char path[sizeof("/devices/") + ENC_ID_MAX];
    snprintf(path, sizeof(path), "/devices/%s", a.enc_id);
    struct hubctl_api_response res = {0};
    struct hub_err err = {0};
    if (hubctl_api_call(&api, "GET", path, NULL, NULL, &res, &err) < 0) {
        ex = hubctl_api_fail(&res, &err);
    } else {
        output(&api, res.json, device_print);
        ex = HUBCTL_OK;
    }
    hubctl_api_response_free(&res);
    return ex;
}

static int device_list(const struct hubctl_globals *g, int argc, char **argv)
{
    struct dev_args a;
    struct hubctl_api api;
    int ex = parse_args(argc, argv, ALLOW(OPT_JSON), 0, &a);
    if (ex >= 0 || (ex = open_api(g, &a, &api)) >= 0)
        return ex;
    struct hubctl_api_response res = {0};
    struct hub_err err = {0};
    if (hubctl_api_call(&api, "GET", "/devices", NULL, NULL, &res, &err) < 0) {
        ex = hubctl_api_fail(&res, &err);
    } else if (!json_is_array(res.json)) {
        fprintf(stderr, "hubctl: the hub's answer to GET /devices is not a JSON array\n");
        ex = HUBCTL_USAGE;
    } else {
        output(&api, res.json, device_list_print);
        ex = HUBCTL_OK;
    }
    hubctl_api_response_free(&res);
    return ex;
}

static int device_delete(const struct hubctl_globals *g, int argc, char **argv)
{
    struct dev_args a;
    struct hubctl_api api;
    int ex = parse_args(argc, argv, ALLOW(OPT_JSON), 1, &a);
    if (ex >= 0 || (ex = open_api(g, &a, &api)) >= 0)
        return ex;
    char path[sizeof("/devices/") + ENC_ID_MAX];
    snprintf(path, sizeof(path), "/devices/%s", a.enc_id);
    return hubctl_api_delete(&api, path, "\"*\"", NULL, a.id);
}

static int device_update(const struct hubctl_globals *g, int argc, char **argv)
{
    struct dev_args a;
    struct hubctl_api api;
    int ex = parse_args(argc, argv, ALLOW(OPT_JSON) | ALLOW(OPT_STATUS) | ALLOW(OPT_REASON), 1, &a);
    if (ex >= 0)
        return ex;
    if (a.status == NULL ||
        (strcmp(a.status, "enabled") != 0 && strcmp(a.status, "disabled") != 0)) {
        fprintf(stderr, "hubctl: device update needs --status enabled|disabled\n");
        sub_usage(stderr, "update");
        return HUBCTL_USAGE;
    }
    if ((ex = open_api(g, &a, &api)) >= 0)
        return ex;
    char path[sizeof("/devices/") + ENC_ID_MAX];
    snprintf(path, sizeof(path), "/devices/%s", a.enc_id);
    struct hubctl_api_response res = {0};
    struct hub_err err = {0};
    if (hubctl_api_call(&api, "GET", path, NULL, NULL, &res, &err) < 0) {
        ex = hubctl_api_fail(&res, &err);
        goto free_res;
    }
    json_t *dev = res.json;
    if (!json_is_object(dev)) {
        fprintf(stderr, "hubctl: the hub's answer to GET %s is not a JSON object\n", path);
        ex = HUBCTL_USAGE;
        goto free_res;
    }
    /* Send back what the hub gave, changed in status only, as the SDK's update does. */
    json_incref(dev);
    hubctl_api_response_free(&res);
    int rc = json_object_set_new(dev, "status", json_string(a.status));
    if (rc == 0 && a.reason != NULL)
        rc = json_object_set_new(dev, "statusReason", json_string(a.reason));
    if (rc != 0) {
        json_decref(dev);
        fprintf(stderr, "hubctl: --reason must be UTF-8 text\n");
        return HUBCTL_USAGE;
    }
    rc = hubctl_api_call(&api, "PUT", path, "\"*\"", dev, &res, &err);
    json_decref(dev);
    if (rc < 0) {
        ex = hubctl_api_fail(&res, &err);
        goto free_res;
    }
    output(&api, res.json, device_print);
    ex = HUBCTL_OK;
free_res:
    hubctl_api_response_free(&res);
    return ex;
}

int hubctl_device_main(const struct hubctl_globals *g, int argc, char **argv)
{
    static const struct hubctl_subcommand subs[] = {{"create", device_create},
                                                    {"show", device_show},
                                                    {"list", device_list},
                                                    {"delete", device_delete},
                                                    {"update", device_update}};
    return hubctl_subcommand_dispatch("device", subs, sizeof(subs) / sizeof(subs[0]), family_usage,
                                      g, argc, argv);
}
