/*
 * `hubctl method invoke ...`: a direct method over the service REST API
 * (reference §4 "Direct method"; server side: src/http/routes_methods.c):
 *
 *   invoke ID NAME [PAYLOAD_JSON] [--timeout S] [--connect-timeout S]
 *        POST /twins/{id}/methods with
 *        {"methodName":NAME,"payload":PAYLOAD|null,
 *         "responseTimeoutInSeconds":S,"connectTimeoutInSeconds":C}
 *        200 {"status":<device's status>,"payload":<device's body>}
 *
 * Exit 0 when the device answered, whatever status it chose (that is the
 * device's verdict, printed, not the hub's); 1 when the hub refused (404
 * DeviceNotFound / DeviceNotOnline, 504 no answer in time, ...).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hubctl/api.h"
#include "hubctl/hubctl.h"

/* encodeURIComponent of a 128-character id triples at worst. */
#define METHOD_ENC_ID_MAX (3 * HUB_AUTH_ID_MAX + 1)
/* Azure's defaults (the Node SDK's): 30 s for the answer, 0 s to wait for a
 * device to connect; hubd accepts 5..300 s and 0..300 s (docs/api.md). */
#define METHOD_TIMEOUT_DEFAULT_S 30
#define METHOD_TIMEOUT_MIN_S     5
#define METHOD_TIMEOUT_MAX_S     300
/* Longest method name Azure accepts is not documented; the MQTT topic
 * $iothub/methods/POST/{name}/?$rid= must stay sane. */
#define METHOD_NAME_MAX 128
/* Our HTTPS wait beyond the hub's own timeouts, so the hub's 504 arrives
 * before we give up. */
#define METHOD_IO_MARGIN_MS 10000

static const char invoke_usage[] =
    "usage: hubctl method invoke ID NAME [PAYLOAD_JSON] [--timeout S] [--connect-timeout S]\n"
    "                            [--json]\n"
    "\n"
    "Calls direct method NAME on device ID with PAYLOAD_JSON (any JSON value;\n"
    "default null) and prints the device's status and payload. --timeout: how\n"
    "long the device has to answer (default 30 s); --connect-timeout: how long\n"
    "to wait for the device to connect (default 0: it must be online now).\n"
    "Exit 0 when the device answered (with any status), 1 when the hub refused\n"
    "(device unknown or offline, no answer in time).\n";

static void family_usage(FILE *out)
{
    fprintf(out, "usage: hubctl [global options] method COMMAND ...\n"
                 "\n"
                 "commands:\n"
                 "  invoke ID NAME [PAYLOAD_JSON] [--timeout S] [--connect-timeout S]\n"
                 "\n"
                 "Each command takes --help and --json. Global options: hubctl --help.\n");
}

/* Seconds in [min, METHOD_TIMEOUT_MAX_S]; -1 if not one. */
static long parse_seconds(const char *s, long min)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (s[0] < '0' || s[0] > '9' || *end != '\0' || errno != 0 || v < min ||
        v > METHOD_TIMEOUT_MAX_S)
        return -1;
    return v;
}

enum { OPT_JSON = 0x100, OPT_TIMEOUT, OPT_CONNECT_TIMEOUT };

struct invoke_args {
    int json;
    long timeout_s, connect_timeout_s;
    const char *id, *name, *payload;
    char enc_id[METHOD_ENC_ID_MAX];
};

static int parse_args(int argc, char **argv, struct invoke_args *a)
{
    static const struct option opts[] = {
        {"help", no_argument, NULL, 'h'},
        {"json", no_argument, NULL, OPT_JSON},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"connect-timeout", required_argument, NULL, OPT_CONNECT_TIMEOUT},
        {NULL, 0, NULL, 0}};
    memset(a, 0, sizeof(*a));
    a->timeout_s = METHOD_TIMEOUT_DEFAULT_S;
    optind = 0; /* GNU: full re-initialisation */
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'h':
            fputs(invoke_usage, stdout);
            return HUBCTL_OK;
        case OPT_JSON:
            a->json = 1;
            break;
        case OPT_TIMEOUT:
            if ((a->timeout_s = parse_seconds(optarg, METHOD_TIMEOUT_MIN_S)) < 0) {
                fprintf(stderr, "hubctl: --timeout must be %d..%d seconds\n", METHOD_TIMEOUT_MIN_S,
                        METHOD_TIMEOUT_MAX_S);
                return HUBCTL_USAGE;
            }
            break;
        case OPT_CONNECT_TIMEOUT:
            if ((a->connect_timeout_s = parse_seconds(optarg, 0)) < 0) {
                fprintf(stderr, "hubctl: --connect-timeout must be 0..%d seconds\n",
                        METHOD_TIMEOUT_MAX_S);
                return HUBCTL_USAGE;
            }
            break;
        default:
            fprintf(stderr, "hubctl: method invoke: unknown option or missing value '%s'\n",
                    argv[optind - 1]);
            fputs(invoke_usage, stderr);
            return HUBCTL_USAGE;
        }
    }
    int npos = argc - optind;
    if (npos < 2 || npos > 3) {
        fprintf(stderr,
                "hubctl: method invoke: expected ID NAME [PAYLOAD_JSON], got %d argument%s\n", npos,
                npos == 1 ? "" : "s");
        fputs(invoke_usage, stderr);
        return HUBCTL_USAGE;
    }
    a->id = argv[optind];
    a->name = argv[optind + 1];
    a->payload = npos == 3 ? argv[optind + 2] : NULL;
    struct hub_err err = {0};
    if (a->id[0] == '\0' || strlen(a->id) > HUB_AUTH_ID_MAX ||
        hubctl_api_path_encode(a->id, a->enc_id, sizeof(a->enc_id), &err) < 0) {
        fprintf(stderr, "hubctl: device id must be 1..%d characters\n", HUB_AUTH_ID_MAX);
        return HUBCTL_USAGE;
    }
    if (a->name[0] == '\0' || strlen(a->name) > METHOD_NAME_MAX) {
        fprintf(stderr, "hubctl: method name must be 1..%d characters\n", METHOD_NAME_MAX);
        return HUBCTL_USAGE;
    }
    return -1;
}

static void result_print(const json_t *res)
{
    json_t *status = json_object_get(res, "status");
    if (json_is_integer(status))
        printf("status: %lld\n", (long long)json_integer_value(status));
    else
        printf("status: (none)\n");
    json_t *payload = json_object_get(res, "payload");
    char *text = payload != NULL ? json_dumps(payload, JSON_INDENT(2) | JSON_ENCODE_ANY) : NULL;
    fputs("payload: ", stdout);
    if (text == NULL) {
        fputs("null\n", stdout);
        return;
    }
    /* jansson escapes control bytes inside strings; the rest is layout. */
    for (const char *p = text; *p != '\0'; p++) {
        unsigned char c = (unsigned char)*p;
        fputc(c == '\n' || (c >= 0x20 && c != 0x7f) ? c : '?', stdout);
    }
    fputc('\n', stdout);
    free(text);
}

static int method_invoke(const struct hubctl_globals *g, int argc, char **argv)
{
    struct invoke_args a;
    int ex = parse_args(argc, argv, &a);
    if (ex >= 0)
        return ex;
    json_t *payload = json_null();
    if (a.payload != NULL) {
        json_error_t jerr;
        json_decref(payload);
        payload = json_loads(a.payload, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
        if (payload == NULL) {
            char safe[160];
            hubctl_api_text_sanitize(jerr.text, safe, sizeof(safe));
            fprintf(stderr, "hubctl: PAYLOAD_JSON is not JSON (column %d: %s)\n", jerr.column,
                    safe);
            return HUBCTL_USAGE;
        }
    }
    json_t *body = json_pack("{s:s, s:o, s:I, s:I}", "methodName", a.name, "payload", payload,
                             "responseTimeoutInSeconds", (json_int_t)a.timeout_s,
                             "connectTimeoutInSeconds", (json_int_t)a.connect_timeout_s);
    if (body == NULL) {
        fprintf(stderr, "hubctl: cannot build the request (method name not UTF-8?)\n");
        return HUBCTL_USAGE;
    }
    struct hubctl_api api;
    struct hub_err err = {0};
    if (hubctl_api_open(&api, g, &err) < 0) {
        json_decref(body);
        return hubctl_api_fail(NULL, &err);
    }
    api.json |= a.json;
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (text == NULL) {
        fprintf(stderr, "hubctl: cannot encode the request (out of memory)\n");
        return HUBCTL_USAGE;
    }
    char path[sizeof("/twins//methods") + METHOD_ENC_ID_MAX];
    snprintf(path, sizeof(path), "/twins/%s/methods", a.enc_id);
    struct hubctl_api_request req = {
        .method = "POST",
        .path = path,
        .body = text,
        .body_len = strlen(text),
        .io_timeout_ms = (int)((a.timeout_s + a.connect_timeout_s) * 1000 + METHOD_IO_MARGIN_MS)};
    struct hubctl_api_response res = {0};
    int rc = hubctl_api_call_raw(&api, &req, &res, &err);
    free(text);
    if (rc < 0) {
        ex = hubctl_api_fail(&res, &err);
    } else if (!json_is_object(res.json)) {
        fprintf(stderr, "hubctl: the hub's answer to POST %s is not a JSON object\n", path);
        ex = HUBCTL_USAGE;
    } else {
        if (api.json)
            hubctl_api_json_print(res.json);
        else
            result_print(res.json);
        ex = HUBCTL_OK;
    }
    hubctl_api_response_free(&res);
    return ex;
}

int hubctl_method_main(const struct hubctl_globals *g, int argc, char **argv)
{
    static const struct hubctl_subcommand subs[] = {{"invoke", method_invoke}};
    return hubctl_subcommand_dispatch("method", subs, 1, family_usage, g, argc, argv);
}
