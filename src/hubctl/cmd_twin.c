/*
 * `hubctl twin ...`: device twins over the service REST API (reference §4
 * "Twin"; server side: src/http/routes_twins.c):
 *
 *   show ID                               GET /twins/{id}
 *   update ID [--desired JSON] [--tags JSON] [--replace]
 *        GET /twins/{id} for the etag, then
 *        PATCH /twins/{id} with If-Match: "<etag>" and
 *              {"tags":TAGS,"properties":{"desired":DESIRED}} (merge; null deletes)
 *        or, with --replace, PUT /twins/{id} with the same If-Match: the given
 *              sections replace the current ones; a section not given is sent
 *              back as the GET returned it, so it stays as it was.
 *
 * The real etag (not "*") makes the update a compare-and-swap, as the Azure
 * SDK's updateTwin does: if someone changed the twin between the GET and the
 * write, the hub answers 412 and nothing changes (exit 1).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hubctl/api.h"
#include "hubctl/hubctl.h"

/* encodeURIComponent of a 128-character id triples at worst. */
#define TWIN_ENC_ID_MAX (3 * HUB_AUTH_ID_MAX + 1)

static const struct twin_usage {
    const char *name;
    const char *text;
} usages[] = {
    {"show", "usage: hubctl twin show ID [--json]\n"
             "\n"
             "Shows the twin of device ID: its tags, desired and reported properties\n"
             "with their versions. --json prints the hub's twin JSON.\n"},
    {"update", "usage: hubctl twin update ID [--desired JSON] [--tags JSON] [--replace] [--json]\n"
               "\n"
               "Changes the tags and/or desired properties of device ID's twin. Each JSON\n"
               "is an object. By default it is merged into the twin (a key set to null is\n"
               "deleted); with --replace it replaces the section (a section not given is\n"
               "kept as it is). The update carries the twin's current etag: if the twin\n"
               "changed meanwhile the hub refuses it (412) and nothing changes.\n"},
};

static void family_usage(FILE *out)
{
    fprintf(out, "usage: hubctl [global options] twin COMMAND ...\n"
                 "\n"
                 "commands:\n"
                 "  show ID\n"
                 "  update ID [--desired JSON] [--tags JSON] [--replace]\n"
                 "\n"
                 "Each command takes --help and --json. Global options: hubctl --help.\n");
}

static void sub_usage(FILE *out, const char *sub)
{
    for (size_t i = 0; i < sizeof(usages) / sizeof(usages[0]); i++)
        if (strcmp(usages[i].name, sub) == 0)
            fputs(usages[i].text, out);
}

enum { OPT_JSON = 0x100, OPT_DESIRED, OPT_TAGS, OPT_REPLACE };
#define ALLOW(o) (1u << ((o)-OPT_JSON))

struct twin_args {
    int json, replace;
    const char *desired, *tags;
    const char *id;
    char enc_id[TWIN_ENC_ID_MAX];
};

/* Parses a subcommand's options and its ID. -1 to continue, else the exit status. */
static int parse_args(int argc, char **argv, unsigned allowed, struct twin_args *a)
{
    static const struct option opts[] = {{"help", no_argument, NULL, 'h'},
                                         {"json", no_argument, NULL, OPT_JSON},
                                         {"desired", required_argument, NULL, OPT_DESIRED},
                                         {"tags", required_argument, NULL, OPT_TAGS},
                                         {"replace", no_argument, NULL, OPT_REPLACE},
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
        if (c < OPT_JSON || !(allowed & ALLOW(c))) {
            fprintf(stderr, "hubctl: twin %s: unknown or misplaced option '%s'\n", argv[0],
                    argv[optind - 1]);
            sub_usage(stderr, argv[0]);
            return HUBCTL_USAGE;
        }
        switch (c) {
        case OPT_JSON:
            a->json = 1;
            break;
        case OPT_DESIRED:
            a->desired = optarg;
            break;
        case OPT_TAGS:
            a->tags = optarg;
            break;
        case OPT_REPLACE:
            a->replace = 1;
            break;
        }
    }
    int npos = argc - optind;
    if (npos != 1) {
        fprintf(stderr, "hubctl: twin %s: expected one device id, got %d arguments\n", argv[0],
                npos);
        sub_usage(stderr, argv[0]);
        return HUBCTL_USAGE;
    }
    struct hub_err err = {0};
    a->id = argv[optind];
    if (a->id[0] == '\0' || strlen(a->id) > HUB_AUTH_ID_MAX ||
        hubctl_api_path_encode(a->id, a->enc_id, sizeof(a->enc_id), &err) < 0) {
        fprintf(stderr, "hubctl: device id must be 1..%d characters\n", HUB_AUTH_ID_MAX);
        return HUBCTL_USAGE;
    }
    return -1;
}

/* Prints json indented under a label; control bytes other than the layout's
 * newlines become '?' (jansson escapes them inside strings anyway). */
static void json_block_print(const char *label, const json_t *json)
{
    printf("%s\n", label);
    if (json == NULL) {
        printf("  (none)\n");
        return;
    }
    char *text = json_dumps(json, JSON_INDENT(2) | JSON_ENCODE_ANY);
    if (text == NULL)
        return;
    fputs("  ", stdout);
    for (const char *p = text; *p != '\0'; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '\n')
            fputs("\n  ", stdout);
        else
            fputc(c < 0x20 || c == 0x7f ? '?' : c, stdout);
    }
    fputc('\n', stdout);
    free(text);
}

/* A properties section without the hub's bookkeeping ($metadata, $version). New reference. */
static json_t *section_user_copy(const json_t *section)
{
    json_t *copy = json_object();
    const char *key;
    json_t *v;
    if (copy == NULL || !json_is_object(section))
        return copy;
    json_object_foreach((json_t *)section, key, v)
    {
        if (key[0] != '$')
            json_object_set(copy, key, v);
    }
    return copy;
}

static void section_print(const char *name, const json_t *section)
{
    char label[64];
    json_t *ver = json_object_get(section, "$version");
    if (json_is_integer(ver))
        snprintf(label, sizeof(label), "%s ($version %lld):", name,
                 (long long)json_integer_value(ver));
    else
        snprintf(label, sizeof(label), "%s:", name);
    json_t *user = section_user_copy(section);
    json_block_print(label, user);
    json_decref(user);
}

static void twin_print(const json_t *t)
{
    char num[32];
    hubctl_api_field_print("deviceId:", json_string_value(json_object_get(t, "deviceId")));
    hubctl_api_field_print("etag:", json_string_value(json_object_get(t, "etag")));
    json_t *ver = json_object_get(t, "version");
    if (json_is_integer(ver)) {
        snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(ver));
        hubctl_api_field_print("version:", num);
    }
    hubctl_api_field_print("status:", json_string_value(json_object_get(t, "status")));
    hubctl_api_field_print("connectionState:",
                           json_string_value(json_object_get(t, "connectionState")));
    json_block_print("tags:", json_object_get(t, "tags"));
    json_t *props = json_object_get(t, "properties");
    section_print("desired", json_object_get(props, "desired"));
    section_print("reported", json_object_get(props, "reported"));
}

static void output(const struct hubctl_api *api, const json_t *json)
{
    if (api->json)
        hubctl_api_json_print(json);
    else if (json != NULL)
        twin_print(json);
}

static int open_api(const struct hubctl_globals *g, const struct twin_args *a,
                    struct hubctl_api *api)
{
    struct hub_err err = {0};
    if (hubctl_api_open(api, g, &err) < 0)
        return hubctl_api_fail(NULL, &err);
    api->json |= a->json;
    return -1;
}

static int twin_show(const struct hubctl_globals *g, int argc, char **argv)
{
    struct twin_args a;
    struct hubctl_api api;
    int ex = parse_args(argc, argv, ALLOW(OPT_JSON), &a);
    if (ex >= 0 || (ex = open_api(g, &a, &api)) >= 0)
        return ex;
    char path[sizeof("/twins/") + TWIN_ENC_ID_MAX];
    snprintf(path, sizeof(path), "/twins/%s", a.enc_id);
    struct hubctl_api_response res = {0};
    struct hub_err err = {0};
    if (hubctl_api_call(&api, "GET", path, NULL, NULL, &res, &err) < 0) {
        ex = hubctl_api_fail(&res, &err);
    } else {
        output(&api, res.json);
        ex = HUBCTL_OK;
    }
    hubctl_api_response_free(&res);
    return ex;
}

/* An option's JSON, which must be an object. New reference, or NULL after a message. */
static json_t *object_arg(const char *opt, const char *text)
{
    json_error_t jerr;
    json_t *v = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
    if (v == NULL) {
        char safe[160];
        hubctl_api_text_sanitize(jerr.text, safe, sizeof(safe));
        fprintf(stderr, "hubctl: %s: not JSON (column %d: %s)\n", opt, jerr.column, safe);
        return NULL;
    }
    if (!json_is_object(v)) {
        fprintf(stderr, "hubctl: %s must be a JSON object, e.g. '{\"key\":\"value\"}'\n", opt);
        json_decref(v);
        return NULL;
    }
    return v;
}

/*
 * The write's body. PATCH: only the sections given. PUT (--replace): every
 * section; the ones not given are the current twin's (minus $-bookkeeping),
 * so that replacing desired does not wipe the tags.
 */
static json_t *update_body_new(json_t *tags, json_t *desired, int replace, const json_t *current)
{
    json_t *props = json_object_get(current, "properties");
    /* New references from here on, whatever the branch. */
    if (tags != NULL)
        json_incref(tags);
    else if (replace)
        tags = json_is_object(json_object_get(current, "tags"))
                   ? json_deep_copy(json_object_get(current, "tags"))
                   : json_object();
    if (desired != NULL)
        json_incref(desired);
    else if (replace)
        desired = section_user_copy(json_object_get(props, "desired"));

    json_t *body = json_object();
    int rc = body != NULL ? 0 : -1;
    if (rc == 0 && tags != NULL)
        rc = json_object_set(body, "tags", tags);
    if (rc == 0 && desired != NULL)
        rc = json_object_set_new(body, "properties", json_pack("{s:O}", "desired", desired));
    json_decref(tags);
    json_decref(desired);
    if (rc != 0) {
        json_decref(body);
        return NULL;
    }
    return body;
}

static int twin_update(const struct hubctl_globals *g, int argc, char **argv)
{
    struct twin_args a;
    struct hubctl_api api;
    int ex =
        parse_args(argc, argv,
                   ALLOW(OPT_JSON) | ALLOW(OPT_DESIRED) | ALLOW(OPT_TAGS) | ALLOW(OPT_REPLACE), &a);
    if (ex >= 0)
        return ex;
    if (a.desired == NULL && a.tags == NULL) {
        fprintf(stderr, "hubctl: twin update needs --desired JSON and/or --tags JSON\n");
        sub_usage(stderr, "update");
        return HUBCTL_USAGE;
    }
    json_t *desired = NULL, *tags = NULL;
    if ((a.desired != NULL && (desired = object_arg("--desired", a.desired)) == NULL) ||
        (a.tags != NULL && (tags = object_arg("--tags", a.tags)) == NULL)) {
        json_decref(desired);
        return HUBCTL_USAGE;
    }
    if ((ex = open_api(g, &a, &api)) >= 0)
        goto free_args;

    char path[sizeof("/twins/") + TWIN_ENC_ID_MAX];
    snprintf(path, sizeof(path), "/twins/%s", a.enc_id);
    struct hubctl_api_response res = {0};
    struct hub_err err = {0};
    if (hubctl_api_call(&api, "GET", path, NULL, NULL, &res, &err) < 0) {
        ex = hubctl_api_fail(&res, &err);
        goto free_res;
    }
    /* The ETag header is already quoted; else quote the body's etag. */
    char if_match[300];
    const char *body_etag = json_string_value(json_object_get(res.json, "etag"));
    if (res.etag[0] != '\0')
        snprintf(if_match, sizeof(if_match), "%s", res.etag);
    else if (body_etag != NULL && strlen(body_etag) < sizeof(if_match) - 2)
        snprintf(if_match, sizeof(if_match), "\"%s\"", body_etag);
    else {
        fprintf(stderr, "hubctl: the hub's twin for %s has no etag\n", a.id);
        ex = HUBCTL_USAGE;
        goto free_res;
    }
    for (const char *p = if_match; *p != '\0'; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) {
            fprintf(stderr, "hubctl: the hub's etag holds control characters\n");
            ex = HUBCTL_USAGE;
            goto free_res;
        }
    json_t *body = update_body_new(tags, desired, a.replace, res.json);
    hubctl_api_response_free(&res);
    if (body == NULL) {
        fprintf(stderr, "hubctl: cannot build the request (out of memory)\n");
        ex = HUBCTL_USAGE;
        goto free_args;
    }
    int rc = hubctl_api_call(&api, a.replace ? "PUT" : "PATCH", path, if_match, body, &res, &err);
    json_decref(body);
    if (rc < 0) {
        ex = hubctl_api_fail(&res, &err);
        goto free_res;
    }
    output(&api, res.json);
    ex = HUBCTL_OK;
free_res:
    hubctl_api_response_free(&res);
free_args:
    json_decref(desired);
    json_decref(tags);
    return ex;
}

int hubctl_twin_main(const struct hubctl_globals *g, int argc, char **argv)
{
    static const struct hubctl_subcommand subs[] = {{"show", twin_show}, {"update", twin_update}};
    return hubctl_subcommand_dispatch("twin", subs, sizeof(subs) / sizeof(subs[0]), family_usage, g,
                                      argc, argv);
}
