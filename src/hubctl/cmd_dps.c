/*
 * `hubctl dps ...`: the operator's side of the Device Provisioning Service,
 * over its service API (Azure provisioning service api-version 2021-10-01,
 * reference §7; JSON shapes as src/dps/dps.c's header), signed with the DPS
 * policy's connection string (--dps-connection-string /
 * HUB_DPS_CONNECTION_STRING) on the hub's HTTPS port:
 *
 *   group create ID ...            GET /enrollmentGroups/{id} (exists?), then PUT
 *   group show ID | delete ID      GET | DELETE /enrollmentGroups/{id}
 *   group list                     POST /enrollmentGroups/query {"query":"*"}, paged
 *   group enable|disable ID        GET, flip provisioningStatus, PUT with If-Match: etag
 *   enrollment ...                 the same on /enrollments/{registrationId}
 *   registration show|delete REGID GET | DELETE /registrations/{regId}
 *   registration list --group ID   POST /registrations/{groupId}/query, paged
 *   key derive --group-key K REGID offline: a group member's symmetric key
 *   register REGID ...             the device side (cmd_dps_register.c)
 *
 * `create` never overwrites by accident: the service replaces an enrollment
 * on a PUT without If-Match (as Azure's), so hubctl GETs first and refuses
 * an existing id unless --replace, which PUTs with the current etag (a
 * concurrent change makes the service answer 412 instead of being lost).
 * The API has no If-None-Match, so two operators creating one id in the same
 * instant can still race; the later PUT wins, as with Azure's SDK.
 * Paging: a query answer with an x-ms-continuation header has more; hubctl
 * sends it back until the service stops sending one.
 *
 * Certificate files go through hub_pki_cert_load_file: one certificate, and
 * a file holding a private key is refused here, so no key leaves the
 * operator's machine.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hubctl/api.h"
#include "hubctl/hubctl.h"
#include "pki/pki.h"

/* encodeURIComponent of a 128-character id triples at worst. */
#define ENC_ID_MAX (3 * HUB_AUTH_ID_MAX + 1)
/* A runaway service that always answers with a continuation must not loop
 * hubctl forever: this many pages of a query at most. */
#define QUERY_PAGES_MAX 10000

/* The two kinds of enrollment share every command but their path and id field. */
struct kind {
    const char *family;     /* "group" | "enrollment" (the hubctl word) */
    const char *title;      /* for messages */
    const char *collection; /* URL path */
    const char *id_field;   /* JSON id member */
    int is_group;
};

static const struct kind GROUP = {"group", "enrollment group", "/enrollmentGroups",
                                  "enrollmentGroupId", 1};
static const struct kind INDIVIDUAL = {"enrollment", "enrollment", "/enrollments", "registrationId",
                                       0};

static const struct sub_usage {
    const char *family; /* "group", "enrollment", "registration", "key" */
    const char *name;
    const char *synopsis;
    const char *text;
} usages[] = {
    {"group", "create", "create ID (--ca NAME | --cert FILE | --symmetric-key) [options]",
     "usage: hubctl dps group create ID (--ca NAME | --cert FILE.pem | --symmetric-key)\n"
     "           [--secondary-ca NAME | --secondary-cert FILE.pem]\n"
     "           [--primary-key K --secondary-key K] [--disabled] [--tags JSON]\n"
     "           [--desired JSON] [--reprovision reset|migrate|never] [--iot-edge] [--replace]\n"
     "\n"
     "Creates enrollment group ID ([a-z0-9._-], 1..128). X.509: devices whose chain\n"
     "goes through the hub CA NAME (--ca, a verified `hubctl ca` certificate) or the\n"
     "signing certificate in FILE (--cert: PEM, one certificate, no private key; it\n"
     "must be, or chain to, a verified hub CA) register with leaf CN = registration\n"
     "id. --symmetric-key: devices prove a key derived from the group key (hubctl dps\n"
     "key derive); the service generates the group keys unless both are given.\n"
     "--tags / --desired: the initial twin of the devices it creates (JSON objects).\n"
     "--reprovision: what a re-registration does to the device's twin: migrate (keep,\n"
     "default), reset (back to the initial twin), never (change nothing).\n"
     "Refuses an existing ID unless --replace (If-Match: its current etag).\n"},
    {"group", "show", "show ID", "usage: hubctl dps group show ID\n\nShows enrollment group ID.\n"},
    {"group", "list", "list", "usage: hubctl dps group list\n\nLists the enrollment groups.\n"},
    {"group", "delete", "delete ID",
     "usage: hubctl dps group delete ID\n\nDeletes enrollment group ID. The devices it\n"
     "registered stay in the hub, and so do their registration records.\n"},
    {"group", "enable", "enable ID",
     "usage: hubctl dps group enable ID\n\nLets enrollment group ID register devices again.\n"},
    {"group", "disable", "disable ID",
     "usage: hubctl dps group disable ID\n\nRefuses registrations through enrollment group\n"
     "ID (devices already in the hub keep connecting: hubctl device update disables\n"
     "them).\n"},
    {"enrollment", "create",
     "create REGID (--cert FILE | --thumbprint HEX | --symmetric-key) [options]",
     "usage: hubctl dps enrollment create REGID (--cert FILE.pem | --thumbprint HEX |\n"
     "           --symmetric-key) [--primary-key K --secondary-key K] [--device-id ID]\n"
     "           [--disabled] [--tags JSON] [--desired JSON]\n"
     "           [--reprovision reset|migrate|never] [--iot-edge] [--replace]\n"
     "\n"
     "Creates the individual enrollment of registration id REGID: the device presents\n"
     "the certificate in FILE (PEM, no private key) or one with thumbprint HEX (SHA-1\n"
     "or SHA-256), chaining to a verified hub CA, or proves a symmetric key (generated\n"
     "unless both are given). It becomes device ID (default: REGID). An individual\n"
     "enrollment overrides any group, also when disabled. Other options as for\n"
     "hubctl dps group create.\n"},
    {"enrollment", "show", "show REGID",
     "usage: hubctl dps enrollment show REGID\n\nShows the individual enrollment REGID.\n"},
    {"enrollment", "list", "list",
     "usage: hubctl dps enrollment list\n\nLists the individual enrollments.\n"},
    {"enrollment", "delete", "delete REGID",
     "usage: hubctl dps enrollment delete REGID\n\nDeletes the individual enrollment REGID.\n"},
    {"enrollment", "enable", "enable REGID",
     "usage: hubctl dps enrollment enable REGID\n\nLets REGID register again.\n"},
    {"enrollment", "disable", "disable REGID",
     "usage: hubctl dps enrollment disable REGID\n\nRefuses REGID's registrations, even when\n"
     "a group would admit it.\n"},
    {"registration", "show", "show REGID",
     "usage: hubctl dps registration show REGID\n\nShows the registration state of REGID: its\n"
     "status, assigned hub, device id and the enrollment group that admitted it.\n"},
    {"registration", "list", "list --group ID",
     "usage: hubctl dps registration list --group ID\n\nLists the registrations made\n"
     "through enrollment group ID.\n"},
    {"registration", "delete", "delete REGID",
     "usage: hubctl dps registration delete REGID\n\nDeletes the registration record of\n"
     "REGID, not the device (hubctl device delete does that). Its next registration\n"
     "is an initial assignment again.\n"},
    {"key", "derive", "derive --group-key KEY REGID",
     "usage: hubctl dps key derive --group-key KEY REGID\n"
     "\n"
     "Prints the symmetric key of device REGID in a symmetric-key enrollment group\n"
     "whose primary (or secondary) key is KEY: base64(HMAC-SHA256(base64-decode(KEY),\n"
     "REGID)). Give it to the device (hubctl dps register --key-sas). Offline.\n"},
};

static void print_family(FILE *out, const char *family)
{
    fprintf(out, "usage: hubctl [global options] dps %s COMMAND ...\n\ncommands:\n", family);
    for (size_t i = 0; i < sizeof(usages) / sizeof(usages[0]); i++)
        if (strcmp(usages[i].family, family) == 0)
            fprintf(out, "  %s\n", usages[i].synopsis);
    fprintf(out, "\nEach command takes --help and --json. Global options: hubctl --help.\n");
}

static void group_usage(FILE *out)
{
    print_family(out, "group");
}
static void enrollment_usage(FILE *out)
{
    print_family(out, "enrollment");
}
static void registration_usage(FILE *out)
{
    print_family(out, "registration");
}
static void key_usage(FILE *out)
{
    print_family(out, "key");
}

static void dps_usage(FILE *out)
{
    fprintf(out, "usage: hubctl [global options] dps COMMAND ...\n"
                 "\n"
                 "The Device Provisioning Service (service calls need the DPS connection string:\n"
                 "--dps-connection-string or HUB_DPS_CONNECTION_STRING):\n");
    static const char *const families[] = {"group", "enrollment", "registration", "key"};
    for (size_t f = 0; f < sizeof(families) / sizeof(families[0]); f++)
        for (size_t i = 0; i < sizeof(usages) / sizeof(usages[0]); i++)
            if (strcmp(usages[i].family, families[f]) == 0)
                fprintf(out, "  %s %s\n", families[f], usages[i].synopsis);
    fprintf(out, "  register REGID --id-scope SCOPE (--cert CHAIN --key KEY | --key-sas KEY)\n"
                 "                                a device's registration (hubctl dps register "
                 "--help)\n"
                 "\nEach command takes --help and --json. Global options: hubctl --help.\n");
}

static void sub_usage(FILE *out, const char *family, const char *name)
{
    for (size_t i = 0; i < sizeof(usages) / sizeof(usages[0]); i++)
        if (strcmp(usages[i].family, family) == 0 && strcmp(usages[i].name, name) == 0)
            fputs(usages[i].text, out);
}

enum {
    OPT_JSON = 0x100,
    OPT_CA,
    OPT_CERT,
    OPT_SYMKEY,
    OPT_CA2,
    OPT_CERT2,
    OPT_PKEY,
    OPT_SKEY,
    OPT_DISABLED,
    OPT_TAGS,
    OPT_DESIRED,
    OPT_REPROVISION,
    OPT_EDGE,
    OPT_REPLACE,
    OPT_THUMB,
    OPT_DEVICE_ID,
    OPT_GROUP,
    OPT_GROUP_KEY,
};

/* Which options each command accepts (bit per OPT_* - OPT_JSON); create's
 * options common to groups and individual enrollments. */
#define ALLOW(o) (1u << ((o)-OPT_JSON))
#define ALLOW_CREATE_COMMON                                                                        \
    (ALLOW(OPT_DISABLED) | ALLOW(OPT_TAGS) | ALLOW(OPT_DESIRED) | ALLOW(OPT_REPROVISION) |         \
     ALLOW(OPT_EDGE) | ALLOW(OPT_REPLACE) | ALLOW(OPT_PKEY) | ALLOW(OPT_SKEY) |                    \
     ALLOW(OPT_SYMKEY) | ALLOW(OPT_CERT))

struct dps_args {
    int json, symkey, disabled, iot_edge, replace;
    const char *ca, *cert, *ca2, *cert2, *pkey, *skey, *tags, *desired, *reprovision, *thumb,
        *device_id, *group, *group_key;
    const char *id;
    char enc_id[ENC_ID_MAX];
};

/* Parses a command's options and its id (if want_id). argv[0] is the command
 * ("create"); family is "group" etc. -1 to continue, else the exit status. */
static int parse_args(const char *family, int argc, char **argv, unsigned allowed, int want_id,
                      struct dps_args *a)
{
    static const struct option opts[] = {{"help", no_argument, NULL, 'h'},
                                         {"json", no_argument, NULL, OPT_JSON},
                                         {"ca", required_argument, NULL, OPT_CA},
                                         {"cert", required_argument, NULL, OPT_CERT},
                                         {"symmetric-key", no_argument, NULL, OPT_SYMKEY},
                                         {"secondary-ca", required_argument, NULL, OPT_CA2},
                                         {"secondary-cert", required_argument, NULL, OPT_CERT2},
                                         {"primary-key", required_argument, NULL, OPT_PKEY},
                                         {"secondary-key", required_argument, NULL, OPT_SKEY},
                                         {"disabled", no_argument, NULL, OPT_DISABLED},
                                         {"tags", required_argument, NULL, OPT_TAGS},
                                         {"desired", required_argument, NULL, OPT_DESIRED},
                                         {"reprovision", required_argument, NULL, OPT_REPROVISION},
                                         {"iot-edge", no_argument, NULL, OPT_EDGE},
                                         {"replace", no_argument, NULL, OPT_REPLACE},
                                         {"thumbprint", required_argument, NULL, OPT_THUMB},
                                         {"device-id", required_argument, NULL, OPT_DEVICE_ID},
                                         {"group", required_argument, NULL, OPT_GROUP},
                                         {"group-key", required_argument, NULL, OPT_GROUP_KEY},
                                         {NULL, 0, NULL, 0}};
    memset(a, 0, sizeof(*a));
    optind = 0; /* GNU: full re-initialisation, argv differs from the last scan */
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'h') {
            sub_usage(stdout, family, argv[0]);
            return HUBCTL_OK;
        }
        if (c < OPT_JSON || !(allowed & ALLOW(c)))
            goto bad;
        switch (c) {
        case OPT_JSON:
            a->json = 1;
            break;
        case OPT_SYMKEY:
            a->symkey = 1;
            break;
        case OPT_DISABLED:
            a->disabled = 1;
            break;
        case OPT_EDGE:
            a->iot_edge = 1;
            break;
        case OPT_REPLACE:
            a->replace = 1;
            break;
        default: {
            /* the options with a value, in enum order */
            const char **slot[] = {[OPT_CA - OPT_JSON] = &a->ca,
                                   [OPT_CERT - OPT_JSON] = &a->cert,
                                   [OPT_CA2 - OPT_JSON] = &a->ca2,
                                   [OPT_CERT2 - OPT_JSON] = &a->cert2,
                                   [OPT_PKEY - OPT_JSON] = &a->pkey,
                                   [OPT_SKEY - OPT_JSON] = &a->skey,
                                   [OPT_TAGS - OPT_JSON] = &a->tags,
                                   [OPT_DESIRED - OPT_JSON] = &a->desired,
                                   [OPT_REPROVISION - OPT_JSON] = &a->reprovision,
                                   [OPT_THUMB - OPT_JSON] = &a->thumb,
                                   [OPT_DEVICE_ID - OPT_JSON] = &a->device_id,
                                   [OPT_GROUP - OPT_JSON] = &a->group,
                                   [OPT_GROUP_KEY - OPT_JSON] = &a->group_key};
            *slot[c - OPT_JSON] = optarg;
            break;
        }
        }
    }
    int npos = argc - optind;
    if (npos != (want_id ? 1 : 0)) {
        fprintf(stderr, "hubctl: dps %s %s: expected %s, got %d argument%s\n", family, argv[0],
                want_id ? "one id" : "no arguments", npos, npos == 1 ? "" : "s");
        sub_usage(stderr, family, argv[0]);
        return HUBCTL_USAGE;
    }
    if (want_id) {
        struct hub_err err = {0};
        a->id = argv[optind];
        if (a->id[0] == '\0' || strlen(a->id) > HUB_AUTH_ID_MAX ||
            hubctl_api_path_encode(a->id, a->enc_id, sizeof(a->enc_id), &err) < 0) {
            fprintf(stderr, "hubctl: an id must be 1..%d characters\n", HUB_AUTH_ID_MAX);
            return HUBCTL_USAGE;
        }
    }
    return -1;
bad:
    /* A known option this command does not take: name it (argv[optind - 1]
     * may be its value); an unknown one: getopt just stepped past it. */
    for (size_t i = 0; c >= OPT_JSON && opts[i].name != NULL; i++)
        if (opts[i].val == c) {
            fprintf(stderr, "hubctl: dps %s %s does not take --%s\n", family, argv[0],
                    opts[i].name);
            sub_usage(stderr, family, argv[0]);
            return HUBCTL_USAGE;
        }
    fprintf(stderr, "hubctl: dps %s %s: unknown option or missing value '%s'\n", family, argv[0],
            argv[optind - 1]);
    sub_usage(stderr, family, argv[0]);
    return HUBCTL_USAGE;
}

static int open_api(const struct hubctl_globals *g, const struct dps_args *a,
                    struct hubctl_api *api)
{
    struct hub_err err = {0};
    if (hubctl_api_open_dps(api, g, &err) < 0)
        return hubctl_api_fail(NULL, &err);
    api->json |= a->json;
    return -1;
}

/* ---- enrollments: printing ------------------------------------------------- */

/* One line saying how an enrollment attests: "x509 caReferences contoso",
 * "x509 signingCertificate CN=...", "x509 clientCertificate sha1 AB..",
 * "symmetricKey". */
static void attestation_text(const json_t *e, char *out, size_t cap)
{
    const json_t *att = json_object_get(e, "attestation");
    const char *type = hubctl_api_str_at(att, "type", NULL, NULL);
    const json_t *x = json_object_get(att, "x509");
    const json_t *certs = json_object_get(x, "signingCertificates");
    const char *what = "signingCertificate";
    if (certs == NULL) {
        certs = json_object_get(x, "clientCertificates");
        what = "clientCertificate";
    }
    const char *ref1 = hubctl_api_str_at(x, "caReferences", "primary", NULL);
    const char *ref2 = hubctl_api_str_at(x, "caReferences", "secondary", NULL);
    const json_t *info = json_object_get(json_object_get(certs, "primary"), "info");
    const char *subject = hubctl_api_str_at(info, "subjectName", NULL, NULL);
    const char *sha1 = hubctl_api_str_at(info, "sha1Thumbprint", NULL, NULL);
    const char *sha256 = hubctl_api_str_at(info, "sha256Thumbprint", NULL, NULL);
    if (type == NULL)
        snprintf(out, cap, "?");
    else if (strcmp(type, "x509") != 0)
        snprintf(out, cap, "%s", type);
    else if (ref1 != NULL)
        snprintf(out, cap, "x509 caReferences %s%s%s", ref1, ref2 ? ", " : "", ref2 ? ref2 : "");
    else if (subject != NULL && subject[0] != '\0')
        snprintf(out, cap, "x509 %s %s", what, subject);
    else if (sha1 != NULL || sha256 != NULL)
        snprintf(out, cap, "x509 %s %s %s", what, sha1 ? "sha1" : "sha256", sha1 ? sha1 : sha256);
    else
        snprintf(out, cap, "x509");
}

static const char *reprovision_text(const json_t *e)
{
    const json_t *rp = json_object_get(e, "reprovisionPolicy");
    if (rp == NULL)
        return NULL;
    /* absent members default to true, as the service's */
    if (json_is_false(json_object_get(rp, "updateHubAssignment")))
        return "never";
    return json_is_false(json_object_get(rp, "migrateDeviceData")) ? "reset" : "migrate";
}

static void enrollment_print(const json_t *e)
{
    char att[512];
    attestation_text(e, att, sizeof(att));
    const char *group_id = hubctl_api_str_at(e, "enrollmentGroupId", NULL, NULL);
    if (group_id != NULL) {
        hubctl_api_field_print("enrollmentGroupId:", group_id);
    } else {
        hubctl_api_field_print("registrationId:",
                               hubctl_api_str_at(e, "registrationId", NULL, NULL));
        hubctl_api_field_print("deviceId:", hubctl_api_str_at(e, "deviceId", NULL, NULL));
    }
    hubctl_api_field_print("attestation:", att);
    hubctl_api_field_print("status:", hubctl_api_str_at(e, "provisioningStatus", NULL, NULL));
    hubctl_api_field_print("primaryKey:",
                           hubctl_api_str_at(e, "attestation", "symmetricKey", "primaryKey"));
    hubctl_api_field_print("secondaryKey:",
                           hubctl_api_str_at(e, "attestation", "symmetricKey", "secondaryKey"));
    hubctl_api_field_print("reprovision:", reprovision_text(e));
    const json_t *edge = json_object_get(json_object_get(e, "capabilities"), "iotEdge");
    hubctl_api_field_print("iotEdge:", json_is_true(edge) ? "yes" : "no");
    const json_t *twin = json_object_get(e, "initialTwin");
    if (twin != NULL) {
        char *text = json_dumps(twin, JSON_COMPACT | JSON_PRESERVE_ORDER);
        hubctl_api_field_print("initialTwin:", text);
        free(text);
    }
    hubctl_api_field_print("iotHubHostName:", hubctl_api_str_at(e, "iotHubHostName", NULL, NULL));
    hubctl_api_field_print("etag:", hubctl_api_str_at(e, "etag", NULL, NULL));
    hubctl_api_field_print("created:", hubctl_api_str_at(e, "createdDateTimeUtc", NULL, NULL));
    hubctl_api_field_print("updated:", hubctl_api_str_at(e, "lastUpdatedDateTimeUtc", NULL, NULL));
}

static void enrollment_list_print(const json_t *list)
{
    size_t i;
    const json_t *e;
    printf("%-32s %-9s %s\n", "ID", "STATUS", "ATTESTATION");
    json_array_foreach(list, i, e)
    {
        char id[HUB_AUTH_ID_MAX + 1], st[32], att[512], satt[512];
        const char *raw = hubctl_api_str_at(e, "enrollmentGroupId", NULL, NULL);
        hubctl_api_text_sanitize(raw ? raw : hubctl_api_str_at(e, "registrationId", NULL, NULL), id,
                                 sizeof(id));
        hubctl_api_text_sanitize(hubctl_api_str_at(e, "provisioningStatus", NULL, NULL), st,
                                 sizeof(st));
        attestation_text(e, att, sizeof(att));
        hubctl_api_text_sanitize(att, satt, sizeof(satt));
        printf("%-32s %-9s %s\n", id, st, satt);
    }
}

/* ---- enrollments: requests ------------------------------------------------ */

static void path_of(char *out, size_t cap, const struct kind *k, const char *enc_id)
{
    snprintf(out, cap, "%s/%s", k->collection, enc_id);
}

/*
 * POSTs {"query":"*"} to `path` and collects every page (x-ms-continuation)
 * into one array, *out_new (caller decrefs). 0 or the exit status to return.
 */
static int query_all(const struct hubctl_api *api, const char *path, json_t **out_new)
{
    static const char body[] = "{\"query\":\"*\"}";
    json_t *all = json_array();
    char cont[sizeof(((struct hubctl_api_response *)0)->continuation)] = "";
    char cont_h[sizeof(cont) + 32];
    if (all == NULL) {
        fprintf(stderr, "hubctl: out of memory\n");
        return HUBCTL_USAGE;
    }
    for (int page = 0;; page++) {
        if (page == QUERY_PAGES_MAX) {
            fprintf(stderr, "hubctl: the service kept paging past %d pages; stopped\n", page);
            json_decref(all);
            return HUBCTL_USAGE;
        }
        const char *headers[2] = {NULL, NULL};
        if (cont[0] != '\0') {
            snprintf(cont_h, sizeof(cont_h), "x-ms-continuation: %s", cont);
            headers[0] = cont_h;
        }
        struct hubctl_api_request req = {.method = "POST",
                                         .path = path,
                                         .body = body,
                                         .body_len = sizeof(body) - 1,
                                         .headers = headers};
        struct hubctl_api_response res = {0};
        struct hub_err err = {0};
        if (hubctl_api_call_raw(api, &req, &res, &err) < 0) {
            int ex = hubctl_api_fail(&res, &err);
            hubctl_api_response_free(&res);
            json_decref(all);
            return ex;
        }
        if (!json_is_array(res.json)) {
            fprintf(stderr, "hubctl: the answer to POST %s is not a JSON array\n", path);
            hubctl_api_response_free(&res);
            json_decref(all);
            return HUBCTL_USAGE;
        }
        json_array_extend(all, res.json);
        snprintf(cont, sizeof(cont), "%s", res.continuation);
        hubctl_api_response_free(&res);
        if (cont[0] == '\0')
            break;
    }
    *out_new = all;
    return 0;
}

static int entity_show(const struct hubctl_globals *g, int argc, char **argv, const struct kind *k)
{
    struct dps_args a;
    struct hubctl_api api;
    int ex = parse_args(k->family, argc, argv, ALLOW(OPT_JSON), 1, &a);
    if (ex >= 0 || (ex = open_api(g, &a, &api)) >= 0)
        return ex;
    char path[sizeof("/enrollmentGroups/") + ENC_ID_MAX];
    path_of(path, sizeof(path), k, a.enc_id);
    return hubctl_api_show(&api, path, enrollment_print);
}

static int entity_list(const struct hubctl_globals *g, int argc, char **argv, const struct kind *k)
{
    struct dps_args a;
    struct hubctl_api api;
    int ex = parse_args(k->family, argc, argv, ALLOW(OPT_JSON), 0, &a);
    if (ex >= 0 || (ex = open_api(g, &a, &api)) >= 0)
        return ex;
    char path[64];
    snprintf(path, sizeof(path), "%s/query", k->collection);
    json_t *all = NULL;
    if ((ex = query_all(&api, path, &all)) != 0)
        return ex;
    hubctl_api_output(&api, all, enrollment_list_print);
    json_decref(all);
    return HUBCTL_OK;
}

static int entity_delete(const struct hubctl_globals *g, int argc, char **argv,
                         const struct kind *k)
{
    struct dps_args a;
    struct hubctl_api api;
    int ex = parse_args(k->family, argc, argv, ALLOW(OPT_JSON), 1, &a);
    if (ex >= 0 || (ex = open_api(g, &a, &api)) >= 0)
        return ex;
    char path[sizeof("/enrollmentGroups/") + ENC_ID_MAX];
    path_of(path, sizeof(path), k, a.enc_id);
    /* No If-Match: Azure's delete is unconditional without one. */
    return hubctl_api_delete(&api, path, NULL, k->title, a.id);
}

/* GET, set provisioningStatus, PUT with If-Match: the etag the GET saw. */
static int entity_set_status(const struct hubctl_globals *g, int argc, char **argv,
                             const struct kind *k, const char *status)
{
    struct dps_args a;
    struct hubctl_api api;
    int ex = parse_args(k->family, argc, argv, ALLOW(OPT_JSON), 1, &a);
    if (ex >= 0 || (ex = open_api(g, &a, &api)) >= 0)
        return ex;
    char path[sizeof("/enrollmentGroups/") + ENC_ID_MAX];
    path_of(path, sizeof(path), k, a.enc_id);
    struct hubctl_api_response res = {0};
    struct hub_err err = {0};
    if (hubctl_api_call(&api, "GET", path, NULL, NULL, &res, &err) < 0) {
        ex = hubctl_api_fail(&res, &err);
        goto free_res;
    }
    json_t *e = res.json;
    if (!json_is_object(e)) {
        fprintf(stderr, "hubctl: the answer to GET %s is not a JSON object\n", path);
        ex = HUBCTL_USAGE;
        goto free_res;
    }
    char etag[256];
    hubctl_api_etag_of(&res, etag, sizeof(etag));
    /* Send back what the service gave, changed in provisioningStatus only: the
     * service keeps a stored certificate that the answer shows as info only. */
    json_incref(e);
    hubctl_api_response_free(&res);
    if (json_object_set_new(e, "provisioningStatus", json_string(status)) != 0) {
        json_decref(e);
        fprintf(stderr, "hubctl: out of memory\n");
        return HUBCTL_USAGE;
    }
    int rc = hubctl_api_call(&api, "PUT", path, etag, e, &res, &err);
    json_decref(e);
    if (rc < 0) {
        ex = hubctl_api_fail(&res, &err);
        goto free_res;
    }
    hubctl_api_output(&api, res.json, enrollment_print);
    ex = HUBCTL_OK;
free_res:
    hubctl_api_response_free(&res);
    return ex;
}

/* ---- create: the request body --------------------------------------------- */

/* Parses --tags / --desired: must be a JSON object. NULL after printing why. */
static json_t *json_arg(const char *opt, const char *text)
{
    json_error_t jerr;
    json_t *v = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(v)) {
        char safe[160];
        hubctl_api_text_sanitize(v == NULL ? jerr.text : "not a JSON object", safe, sizeof(safe));
        fprintf(stderr, "hubctl: %s: %s\n", opt, safe);
        json_decref(v);
        return NULL;
    }
    return v;
}

/* Checks which attestation options go together; prints why not. 0 ok, -1 not. */
static int attestation_check(const struct kind *k, const struct dps_args *a)
{
    int n = (a->ca != NULL) + (a->cert != NULL) + (a->thumb != NULL) + a->symkey;
    if (n != 1) {
        fprintf(stderr, "hubctl: dps %s create needs exactly one of %s\n", k->family,
                k->is_group ? "--ca, --cert, --symmetric-key"
                            : "--cert, --thumbprint, --symmetric-key");
        return -1;
    }
    if (a->ca2 != NULL && a->ca == NULL) {
        fprintf(stderr, "hubctl: --secondary-ca goes with --ca\n");
        return -1;
    }
    if (a->cert2 != NULL && a->cert == NULL) {
        fprintf(stderr, "hubctl: --secondary-cert goes with --cert\n");
        return -1;
    }
    if ((a->pkey != NULL || a->skey != NULL) && !a->symkey) {
        fprintf(stderr, "hubctl: --primary-key/--secondary-key go with --symmetric-key\n");
        return -1;
    }
    if ((a->pkey == NULL) != (a->skey == NULL)) {
        fprintf(stderr, "hubctl: give both --primary-key and --secondary-key, or neither (the "
                        "service generates them)\n");
        return -1;
    }
    if (a->reprovision != NULL && strcmp(a->reprovision, "reset") != 0 &&
        strcmp(a->reprovision, "migrate") != 0 && strcmp(a->reprovision, "never") != 0) {
        fprintf(stderr, "hubctl: --reprovision must be reset, migrate or never\n");
        return -1;
    }
    return 0;
}

/* {"primary":{"certificate":PEM}[,"secondary":...]} from files; NULL after printing why. */
static json_t *certs_new(const char *file1, const char *file2)
{
    json_t *certs = json_object();
    const char *files[2] = {file1, file2};
    static const char *const slot[2] = {"primary", "secondary"};
    for (int i = 0; i < 2 && certs != NULL; i++) {
        if (files[i] == NULL)
            continue;
        char *pem = hubctl_api_cert_pem_load(files[i]);
        if (pem == NULL) {
            json_decref(certs);
            return NULL;
        }
        json_object_set_new(certs, slot[i], json_pack("{s:s}", "certificate", pem));
        free(pem);
    }
    return certs;
}

/* The attestation member; NULL after printing why. */
static json_t *attestation_new(const struct kind *k, const struct dps_args *a)
{
    if (a->symkey)
        return json_pack("{s:s,s:{s:s,s:s}}", "type", "symmetricKey", "symmetricKey", "primaryKey",
                         a->pkey ? a->pkey : "", "secondaryKey", a->skey ? a->skey : "");
    json_t *x509 = NULL;
    if (a->ca != NULL) {
        x509 = json_pack("{s:{s:s}}", "caReferences", "primary", a->ca);
        if (x509 != NULL && a->ca2 != NULL)
            json_object_set_new(json_object_get(x509, "caReferences"), "secondary",
                                json_string(a->ca2));
    } else if (a->cert != NULL) {
        json_t *certs = certs_new(a->cert, a->cert2);
        if (certs == NULL)
            return NULL;
        x509 =
            json_pack("{s:o}", k->is_group ? "signingCertificates" : "clientCertificates", certs);
    } else {
        char t[65];
        struct hub_err err = {0};
        if (hubctl_api_thumbprint_normalize(a->thumb, t, &err) < 0) {
            fprintf(stderr, "hubctl: %s\n", err.msg);
            return NULL;
        }
        x509 = json_pack("{s:{s:{s:{s:s}}}}", "clientCertificates", "primary", "info",
                         strlen(t) == 40 ? "sha1Thumbprint" : "sha256Thumbprint", t);
    }
    if (x509 == NULL) {
        fprintf(stderr, "hubctl: cannot build the request (a name not UTF-8?)\n");
        return NULL;
    }
    return json_pack("{s:s,s:o}", "type", "x509", "x509", x509);
}

/* The EnrollmentGroup / IndividualEnrollment body of `create`; NULL after printing why. */
static json_t *enrollment_body_new(const struct kind *k, const struct dps_args *a)
{
    json_t *att = attestation_new(k, a);
    if (att == NULL)
        return NULL;
    json_t *body = json_pack("{s:s,s:o,s:s,s:{s:b}}", k->id_field, a->id, "attestation", att,
                             "provisioningStatus", a->disabled ? "disabled" : "enabled",
                             "capabilities", "iotEdge", a->iot_edge);
    if (body == NULL) {
        fprintf(stderr, "hubctl: cannot build the request (an id not UTF-8?)\n");
        return NULL;
    }
    if (a->device_id != NULL)
        json_object_set_new(body, "deviceId", json_string(a->device_id));
    if (a->reprovision != NULL) {
        int never = strcmp(a->reprovision, "never") == 0;
        int migrate = strcmp(a->reprovision, "migrate") == 0;
        json_object_set_new(
            body, "reprovisionPolicy",
            json_pack("{s:b,s:b}", "updateHubAssignment", !never, "migrateDeviceData", migrate));
    }
    if (a->tags != NULL || a->desired != NULL) {
        json_t *twin = json_object();
        json_t *tags = a->tags ? json_arg("--tags", a->tags) : NULL;
        json_t *desired = a->desired ? json_arg("--desired", a->desired) : NULL;
        if ((a->tags != NULL && tags == NULL) || (a->desired != NULL && desired == NULL)) {
            json_decref(tags);
            json_decref(desired);
            json_decref(twin);
            json_decref(body);
            return NULL;
        }
        if (tags != NULL)
            json_object_set_new(twin, "tags", tags);
        if (desired != NULL)
            json_object_set_new(twin, "properties", json_pack("{s:o}", "desired", desired));
        json_object_set_new(body, "initialTwin", twin);
    }
    return body;
}

static int entity_create(const struct hubctl_globals *g, int argc, char **argv,
                         const struct kind *k)
{
    struct dps_args a;
    struct hubctl_api api;
    unsigned allowed = ALLOW(OPT_JSON) | ALLOW_CREATE_COMMON;
    allowed |= k->is_group ? ALLOW(OPT_CA) | ALLOW(OPT_CA2) | ALLOW(OPT_CERT2)
                           : ALLOW(OPT_THUMB) | ALLOW(OPT_DEVICE_ID);
    int ex = parse_args(k->family, argc, argv, allowed, 1, &a);
    if (ex >= 0)
        return ex;
    if (attestation_check(k, &a) < 0) {
        sub_usage(stderr, k->family, "create");
        return HUBCTL_USAGE;
    }
    /* Build the body first: bad files and JSON are local errors, before any call. */
    json_t *body = enrollment_body_new(k, &a);
    if (body == NULL)
        return HUBCTL_USAGE;
    if ((ex = open_api(g, &a, &api)) >= 0)
        goto free_body;

    char path[sizeof("/enrollmentGroups/") + ENC_ID_MAX];
    path_of(path, sizeof(path), k, a.enc_id);
    struct hubctl_api_response res = {0};
    struct hub_err err = {0};
    char etag[256] = "";
    if (hubctl_api_call(&api, "GET", path, NULL, NULL, &res, &err) == 0) {
        if (!a.replace) {
            fprintf(stderr, "hubctl: %s %s exists (--replace replaces it)\n", k->title, a.id);
            ex = HUBCTL_FAIL;
            goto free_res;
        }
        hubctl_api_etag_of(&res, etag, sizeof(etag));
    } else if (res.status != 404) {
        ex = hubctl_api_fail(&res, &err);
        goto free_res;
    }
    hubctl_api_response_free(&res);
    if (hubctl_api_call(&api, "PUT", path, etag[0] ? etag : NULL, body, &res, &err) < 0) {
        ex = hubctl_api_fail(&res, &err);
        goto free_res;
    }
    hubctl_api_output(&api, res.json, enrollment_print);
    ex = HUBCTL_OK;
free_res:
    hubctl_api_response_free(&res);
free_body:
    json_decref(body);
    return ex;
}

static int group_create(const struct hubctl_globals *g, int argc, char **argv)
{
    return entity_create(g, argc, argv, &GROUP);
}
static int group_show(const struct hubctl_globals *g, int argc, char **argv)
{
    return entity_show(g, argc, argv, &GROUP);
}
static int group_list(const struct hubctl_globals *g, int argc, char **argv)
{
    return entity_list(g, argc, argv, &GROUP);
}
static int group_delete(const struct hubctl_globals *g, int argc, char **argv)
{
    return entity_delete(g, argc, argv, &GROUP);
}
static int group_enable(const struct hubctl_globals *g, int argc, char **argv)
{
    return entity_set_status(g, argc, argv, &GROUP, "enabled");
}
static int group_disable(const struct hubctl_globals *g, int argc, char **argv)
{
    return entity_set_status(g, argc, argv, &GROUP, "disabled");
}
static int enrollment_create(const struct hubctl_globals *g, int argc, char **argv)
{
    return entity_create(g, argc, argv, &INDIVIDUAL);
}
static int enrollment_show(const struct hubctl_globals *g, int argc, char **argv)
{
    return entity_show(g, argc, argv, &INDIVIDUAL);
}
static int enrollment_list(const struct hubctl_globals *g, int argc, char **argv)
{
    return entity_list(g, argc, argv, &INDIVIDUAL);
}
static int enrollment_delete(const struct hubctl_globals *g, int argc, char **argv)
{
    return entity_delete(g, argc, argv, &INDIVIDUAL);
}
static int enrollment_enable(const struct hubctl_globals *g, int argc, char **argv)
{
    return entity_set_status(g, argc, argv, &INDIVIDUAL, "enabled");
}
static int enrollment_disable(const struct hubctl_globals *g, int argc, char **argv)
{
    return entity_set_status(g, argc, argv, &INDIVIDUAL, "disabled");
}

/* ---- registrations -------------------------------------------------------- */

/* The enrollment group a registration came through ("" for an individual one). */
static const char *reg_group(const json_t *r)
{
    const char *gid = hubctl_api_str_at(r, "x509", "enrollmentGroupId", NULL);
    return gid != NULL ? gid : hubctl_api_str_at(r, "symmetricKey", "enrollmentGroupId", NULL);
}

static void registration_print(const json_t *r)
{
    hubctl_api_field_print("registrationId:", hubctl_api_str_at(r, "registrationId", NULL, NULL));
    hubctl_api_field_print("status:", hubctl_api_str_at(r, "status", NULL, NULL));
    hubctl_api_field_print("substatus:", hubctl_api_str_at(r, "substatus", NULL, NULL));
    hubctl_api_field_print("deviceId:", hubctl_api_str_at(r, "deviceId", NULL, NULL));
    hubctl_api_field_print("assignedHub:", hubctl_api_str_at(r, "assignedHub", NULL, NULL));
    hubctl_api_field_print("attestation:", json_object_get(r, "x509") != NULL ? "x509"
                                           : json_object_get(r, "symmetricKey") != NULL
                                               ? "symmetricKey"
                                               : NULL);
    hubctl_api_field_print("enrollmentGroupId:", reg_group(r));
    const json_t *code = json_object_get(r, "errorCode");
    if (json_is_integer(code)) {
        char text[32];
        snprintf(text, sizeof(text), "%lld", (long long)json_integer_value(code));
        hubctl_api_field_print("errorCode:", text);
    }
    hubctl_api_field_print("errorMessage:", hubctl_api_str_at(r, "errorMessage", NULL, NULL));
    hubctl_api_field_print("etag:", hubctl_api_str_at(r, "etag", NULL, NULL));
    hubctl_api_field_print("created:", hubctl_api_str_at(r, "createdDateTimeUtc", NULL, NULL));
    hubctl_api_field_print("updated:", hubctl_api_str_at(r, "lastUpdatedDateTimeUtc", NULL, NULL));
}

static void registration_list_print(const json_t *list)
{
    size_t i;
    const json_t *r;
    printf("%-32s %-11s %-32s %s\n", "REGISTRATION ID", "STATUS", "DEVICE ID", "ASSIGNED HUB");
    json_array_foreach(list, i, r)
    {
        char id[HUB_AUTH_ID_MAX + 1], st[32], dev[HUB_AUTH_ID_MAX + 1], hub[256];
        hubctl_api_text_sanitize(hubctl_api_str_at(r, "registrationId", NULL, NULL), id,
                                 sizeof(id));
        hubctl_api_text_sanitize(hubctl_api_str_at(r, "status", NULL, NULL), st, sizeof(st));
        hubctl_api_text_sanitize(hubctl_api_str_at(r, "deviceId", NULL, NULL), dev, sizeof(dev));
        hubctl_api_text_sanitize(hubctl_api_str_at(r, "assignedHub", NULL, NULL), hub, sizeof(hub));
        printf("%-32s %-11s %-32s %s\n", id, st, dev, hub);
    }
}

static int registration_show(const struct hubctl_globals *g, int argc, char **argv)
{
    struct dps_args a;
    struct hubctl_api api;
    int ex = parse_args("registration", argc, argv, ALLOW(OPT_JSON), 1, &a);
    if (ex >= 0 || (ex = open_api(g, &a, &api)) >= 0)
        return ex;
    char path[sizeof("/registrations/") + ENC_ID_MAX];
    snprintf(path, sizeof(path), "/registrations/%s", a.enc_id);
    return hubctl_api_show(&api, path, registration_print);
}

static int registration_delete(const struct hubctl_globals *g, int argc, char **argv)
{
    struct dps_args a;
    struct hubctl_api api;
    int ex = parse_args("registration", argc, argv, ALLOW(OPT_JSON), 1, &a);
    if (ex >= 0 || (ex = open_api(g, &a, &api)) >= 0)
        return ex;
    char path[sizeof("/registrations/") + ENC_ID_MAX];
    snprintf(path, sizeof(path), "/registrations/%s", a.enc_id);
    return hubctl_api_delete(&api, path, NULL, "registration", a.id);
}

static int registration_list(const struct hubctl_globals *g, int argc, char **argv)
{
    struct dps_args a;
    struct hubctl_api api;
    int ex = parse_args("registration", argc, argv, ALLOW(OPT_JSON) | ALLOW(OPT_GROUP), 0, &a);
    if (ex >= 0)
        return ex;
    char enc[ENC_ID_MAX];
    struct hub_err err = {0};
    if (a.group == NULL || a.group[0] == '\0' || strlen(a.group) > HUB_AUTH_ID_MAX ||
        hubctl_api_path_encode(a.group, enc, sizeof(enc), &err) < 0) {
        fprintf(stderr, "hubctl: dps registration list needs --group ID (1..%d characters)\n",
                HUB_AUTH_ID_MAX);
        sub_usage(stderr, "registration", "list");
        return HUBCTL_USAGE;
    }
    if ((ex = open_api(g, &a, &api)) >= 0)
        return ex;
    char path[sizeof("/registrations//query") + ENC_ID_MAX];
    snprintf(path, sizeof(path), "/registrations/%s/query", enc);
    json_t *all = NULL;
    if ((ex = query_all(&api, path, &all)) != 0)
        return ex;
    hubctl_api_output(&api, all, registration_list_print);
    json_decref(all);
    return HUBCTL_OK;
}

/* ---- key derive (offline) -------------------------------------------------- */

static int key_derive(const struct hubctl_globals *g, int argc, char **argv)
{
    (void)g;
    struct dps_args a;
    int ex = parse_args("key", argc, argv, ALLOW(OPT_JSON) | ALLOW(OPT_GROUP_KEY), 1, &a);
    if (ex >= 0)
        return ex;
    if (a.group_key == NULL) {
        fprintf(stderr, "hubctl: dps key derive needs --group-key KEY\n");
        sub_usage(stderr, "key", "derive");
        return HUBCTL_USAGE;
    }
    char key[HUB_AUTH_KEY_B64_MAX + 1];
    struct hub_err err = {0};
    if (hub_auth_dps_derive_key(a.group_key, a.id, key, &err) < 0) {
        fprintf(stderr, "hubctl: %s\n", err.msg[0] ? err.msg : hub_err_text(err.code));
        return HUBCTL_USAGE;
    }
    printf("%s\n", key);
    return HUBCTL_OK;
}

/* ---- families ---------------------------------------------------------------- */

static int group_main(const struct hubctl_globals *g, int argc, char **argv)
{
    static const struct hubctl_subcommand subs[] = {
        {"create", group_create}, {"show", group_show},     {"list", group_list},
        {"delete", group_delete}, {"enable", group_enable}, {"disable", group_disable}};
    return hubctl_subcommand_dispatch("dps group", subs, sizeof(subs) / sizeof(subs[0]),
                                      group_usage, g, argc, argv);
}

static int enrollment_main(const struct hubctl_globals *g, int argc, char **argv)
{
    static const struct hubctl_subcommand subs[] = {
        {"create", enrollment_create}, {"show", enrollment_show},
        {"list", enrollment_list},     {"delete", enrollment_delete},
        {"enable", enrollment_enable}, {"disable", enrollment_disable}};
    return hubctl_subcommand_dispatch("dps enrollment", subs, sizeof(subs) / sizeof(subs[0]),
                                      enrollment_usage, g, argc, argv);
}

static int registration_main(const struct hubctl_globals *g, int argc, char **argv)
{
    static const struct hubctl_subcommand subs[] = {
        {"show", registration_show}, {"list", registration_list}, {"delete", registration_delete}};
    return hubctl_subcommand_dispatch("dps registration", subs, sizeof(subs) / sizeof(subs[0]),
                                      registration_usage, g, argc, argv);
}

static int key_main(const struct hubctl_globals *g, int argc, char **argv)
{
    static const struct hubctl_subcommand subs[] = {{"derive", key_derive}};
    return hubctl_subcommand_dispatch("dps key", subs, sizeof(subs) / sizeof(subs[0]), key_usage, g,
                                      argc, argv);
}

int hubctl_dps_main(const struct hubctl_globals *g, int argc, char **argv)
{
    static const struct hubctl_subcommand subs[] = {{"group", group_main},
                                                    {"enrollment", enrollment_main},
                                                    {"registration", registration_main},
                                                    {"key", key_main},
                                                    {"register", hubctl_dps_register_main}};
    return hubctl_subcommand_dispatch("dps", subs, sizeof(subs) / sizeof(subs[0]), dps_usage, g,
                                      argc, argv);
}
