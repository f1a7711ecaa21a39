/*
 * `hubctl dps register REGID ...`: the DEVICE side of the Device Provisioning
 * Service over HTTPS (azure-iot-provisioning-device-http; reference §7,
 * src/dpsdev/dpsdev.h), so a walkthrough can provision a device without an
 * SDK:
 *
 *   PUT /{idScope}/registrations/{regId}/register?api-version=2021-06-01
 *       body {"registrationId":"regId"}            -> 202 {"operationId","status"}
 *   GET /{idScope}/registrations/{regId}/operations/{operationId}?api-version=2021-06-01
 *       while "status" is "assigning", waiting Retry-After seconds between polls
 *                                                   -> {"status","registrationState"}
 *
 * The credential is either the TLS client certificate (--cert CHAIN.pem: leaf
 * then intermediates, --key KEY.pem; X.509 attestation, leaf CN = REGID), or
 * `Authorization: SharedAccessSignature sr={scope}/registrations/{regId}&
 * sig=...&se=...&skn=registration` signed with the device key (--key-sas;
 * for a group member, `hubctl dps key derive`). sr is sent raw, unencoded,
 * as the Node SDK does. The token is built once and reused for the polls.
 *
 * Where: the provisioning host is --provisioning-host, else the HostName of
 * the DPS connection string, else that of the hub's; --host, --port and
 * --cafile as for every command (the DPS shares the hub's HTTPS port).
 *
 * Output: `assignedHub=HOST` and `deviceId=ID` lines (eval-able), or with
 * --json the registrationState. Exit 1 when the service refuses (its message
 * is printed) or the registration ends failed/disabled; 2 for usage, I/O and
 * a service that is still assigning after --timeout seconds.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "hubctl/api.h"
#include "hubctl/hubctl.h"

/* The device API version of azure-iot-provisioning-device (2021-06-01). */
#define DPS_DEVICE_API_VERSION "2021-06-01"
#define DEFAULT_TIMEOUT_S      30
/* Poll interval when the service sends no usable Retry-After (the SDK's default). */
#define DEFAULT_RETRY_S 2
/* Lifetime of the registration SAS token (the SDK uses one hour). */
#define SAS_TTL_S 3600

static const char usage_text[] =
    "usage: hubctl dps register REGID --id-scope SCOPE\n"
    "           (--cert CHAIN.pem --key KEY.pem | --key-sas DEVICEKEY)\n"
    "           [--provisioning-host HOST] [--timeout S] [--json]\n"
    "\n"
    "Registers device REGID with the provisioning service over HTTPS, as a device\n"
    "would, and waits (at most S seconds, default 30) until it is assigned to a hub.\n"
    "X.509: CHAIN.pem holds the device certificate (CN = REGID) then its\n"
    "intermediates, KEY.pem its private key. Symmetric key: DEVICEKEY is the\n"
    "enrollment's key, or for a group hubctl dps key derive's. SCOPE defaults to\n"
    "HUB_DPS_ID_SCOPE (hubd prints it as idScope=). HOST defaults to the HostName of\n"
    "the DPS connection string, else the hub's. On success prints assignedHub=HOST\n"
    "and deviceId=ID (--json: the registration state). Exit 1 if the service refuses.\n";

enum {
    OPT_JSON = 0x100,
    OPT_SCOPE,
    OPT_CERT,
    OPT_KEY,
    OPT_KEY_SAS,
    OPT_TIMEOUT,
    OPT_PHOST,
};

struct reg_args {
    int json;
    const char *scope, *cert, *key, *key_sas, *phost;
    long timeout_s;
    const char *reg_id;
    char enc_id[3 * HUB_AUTH_ID_MAX + 1];
    char enc_scope[3 * 64 + 1];
};

/* -1 to continue, else the exit status. */
static int parse_args(int argc, char **argv, struct reg_args *a)
{
    static const struct option opts[] = {{"help", no_argument, NULL, 'h'},
                                         {"json", no_argument, NULL, OPT_JSON},
                                         {"id-scope", required_argument, NULL, OPT_SCOPE},
                                         {"cert", required_argument, NULL, OPT_CERT},
                                         {"key", required_argument, NULL, OPT_KEY},
                                         {"key-sas", required_argument, NULL, OPT_KEY_SAS},
                                         {"timeout", required_argument, NULL, OPT_TIMEOUT},
                                         {"provisioning-host", required_argument, NULL, OPT_PHOST},
                                         {NULL, 0, NULL, 0}};
    memset(a, 0, sizeof(*a));
    a->timeout_s = DEFAULT_TIMEOUT_S;
    optind = 0;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'h':
            fputs(usage_text, stdout);
            return HUBCTL_OK;
        case OPT_JSON:
            a->json = 1;
            break;
        case OPT_SCOPE:
            a->scope = optarg;
            break;
        case OPT_CERT:
            a->cert = optarg;
            break;
        case OPT_KEY:
            a->key = optarg;
            break;
        case OPT_KEY_SAS:
            a->key_sas = optarg;
            break;
        case OPT_PHOST:
            a->phost = optarg;
            break;
        case OPT_TIMEOUT: {
            char *end = NULL;
            errno = 0;
            a->timeout_s = strtol(optarg, &end, 10);
            if (optarg[0] < '0' || optarg[0] > '9' || *end != '\0' || errno != 0 ||
                a->timeout_s < 1 || a->timeout_s > 3600) {
                fprintf(stderr, "hubctl: --timeout must be 1..3600 seconds\n");
                return HUBCTL_USAGE;
            }
            break;
        }
        default:
            fprintf(stderr, "hubctl: dps register: unknown or misplaced option '%s'\n",
                    argv[optind - 1]);
            fputs(usage_text, stderr);
            return HUBCTL_USAGE;
        }
    }
    if (argc - optind != 1) {
        fprintf(stderr, "hubctl: dps register: expected one registration id, got %d arguments\n",
                argc - optind);
        fputs(usage_text, stderr);
        return HUBCTL_USAGE;
    }
    a->reg_id = argv[optind];
    if (a->scope == NULL && getenv("HUB_DPS_ID_SCOPE") != NULL &&
        getenv("HUB_DPS_ID_SCOPE")[0] != '\0')
        a->scope = getenv("HUB_DPS_ID_SCOPE");
    if (a->scope == NULL) {
        fprintf(stderr, "hubctl: dps register needs --id-scope SCOPE (or HUB_DPS_ID_SCOPE)\n");
        return HUBCTL_USAGE;
    }
    int x509 = a->cert != NULL || a->key != NULL;
    if (x509 == (a->key_sas != NULL) || (x509 && (a->cert == NULL || a->key == NULL))) {
        fprintf(stderr, "hubctl: dps register needs either --cert CHAIN.pem --key KEY.pem, or "
                        "--key-sas DEVICEKEY\n");
        return HUBCTL_USAGE;
    }
    struct hub_err err = {0};
    if (a->reg_id[0] == '\0' || strlen(a->reg_id) > HUB_AUTH_ID_MAX ||
        hubctl_api_path_encode(a->reg_id, a->enc_id, sizeof(a->enc_id), &err) < 0) {
        fprintf(stderr, "hubctl: a registration id must be 1..%d characters\n", HUB_AUTH_ID_MAX);
        return HUBCTL_USAGE;
    }
    if (a->scope[0] == '\0' || strlen(a->scope) > 64 ||
        hubctl_api_path_encode(a->scope, a->enc_scope, sizeof(a->enc_scope), &err) < 0) {
        fprintf(stderr, "hubctl: an ID scope must be 1..64 characters\n");
        return HUBCTL_USAGE;
    }
    return -1;
}

/* The provisioning host: --provisioning-host, else a connection string's
 * HostName (copied into buf). NULL after printing why. */
static const char *provisioning_host(const struct hubctl_globals *g, const struct reg_args *a,
                                     char *buf, size_t cap)
{
    if (a->phost != NULL)
        return a->phost;
    const char *texts[2] = {g->dps_connection_string, g->connection_string};
    for (int i = 0; i < 2; i++) {
        struct hub_auth_connstr cs;
        if (texts[i] == NULL || texts[i][0] == '\0' ||
            hub_auth_connstr_parse(texts[i], strlen(texts[i]), &cs, NULL) < 0)
            continue;
        snprintf(buf, cap, "%s", cs.host_name);
        OPENSSL_cleanse(&cs, sizeof(cs)); /* it held a policy key */
        return buf;
    }
    fprintf(stderr, "hubctl: dps register needs --provisioning-host HOST (or a DPS connection "
                    "string to take HostName from)\n");
    return NULL;
}

/* One request to the device API; 0 with *resp filled (any status), or the
 * exit status after printing why. */
static int device_call(const struct hubctl_https_target *t, const char *method, const char *path,
                       const char *authz_h, const char *body, struct hubctl_http_response *resp)
{
    const char *headers[6];
    size_t n = 0;
    headers[n++] = "User-Agent: hubctl/0.1";
    headers[n++] = "Accept: application/json";
    if (body != NULL)
        headers[n++] = "Content-Type: application/json; charset=utf-8";
    if (authz_h != NULL)
        headers[n++] = authz_h;
    headers[n] = NULL;
    struct hub_err err = {0};
    if (hubctl_https_request(t, method, path, headers, body, body ? strlen(body) : 0, resp, &err) <
        0) {
        fprintf(stderr, "hubctl: %s\n", err.msg[0] ? err.msg : hub_err_text(err.code));
        return HUBCTL_USAGE;
    }
    return 0;
}

/* Parses a 2xx body as a JSON object (*out_new), or prints the service's
 * refusal. 0, or the exit status. */
static int answer_json(const struct hubctl_http_response *resp, const char *what, json_t **out_new)
{
    *out_new = NULL;
    if (resp->status < 200 || resp->status > 299) {
        char msg[HUBCTL_API_ERRMSG_MAX];
        hubctl_api_error_format(resp->status, resp->reason, NULL, resp->body, resp->body_len, msg,
                                sizeof(msg));
        fprintf(stderr, "hubctl: %s refused: %s\n", what, msg);
        return HUBCTL_FAIL;
    }
    json_t *j = json_loadb(resp->body, resp->body_len, 0, NULL);
    if (!json_is_object(j)) {
        fprintf(stderr, "hubctl: the answer to %s is not a JSON object\n", what);
        json_decref(j);
        return HUBCTL_USAGE;
    }
    *out_new = j;
    return 0;
}

/* Seconds to wait before the next poll: Retry-After when sane, else the default. */
static long retry_after_s(const struct hubctl_http_response *resp)
{
    const char *ra = hubctl_http_response_header_get0(resp, "Retry-After");
    if (ra == NULL)
        return DEFAULT_RETRY_S;
    char *end = NULL;
    long v = strtol(ra, &end, 10);
    return (ra[0] >= '0' && ra[0] <= '9' && *end == '\0' && v >= 0 && v <= 60) ? v
                                                                               : DEFAULT_RETRY_S;
}

static void sleep_s(long s)
{
    struct timespec ts = {.tv_sec = s, .tv_nsec = 0};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

/* The final answer: prints it and returns the exit status. */
static int report(const struct reg_args *a, const json_t *op)
{
    const char *status = json_string_value(json_object_get(op, "status"));
    const json_t *state = json_object_get(op, "registrationState");
    if (status == NULL)
        status = json_string_value(json_object_get(state, "status"));
    if (status != NULL && strcmp(status, "assigned") == 0) {
        if (a->json) {
            hubctl_api_json_print(state);
        } else {
            char hub[512], dev[512];
            hubctl_api_text_sanitize(json_string_value(json_object_get(state, "assignedHub")), hub,
                                     sizeof(hub));
            hubctl_api_text_sanitize(json_string_value(json_object_get(state, "deviceId")), dev,
                                     sizeof(dev));
            printf("assignedHub=%s\ndeviceId=%s\n", hub, dev);
        }
        return HUBCTL_OK;
    }
    if (a->json && state != NULL)
        hubctl_api_json_print(state);
    char st[64], msg[HUBCTL_API_ERRMSG_MAX];
    hubctl_api_text_sanitize(status ? status : "(no status)", st, sizeof(st));
    hubctl_api_text_sanitize(json_string_value(json_object_get(state, "errorMessage")), msg,
                             sizeof(msg));
    const json_t *code = json_object_get(state, "errorCode");
    if (json_is_integer(code))
        fprintf(stderr, "hubctl: registration of %s ended %s: %lld %s\n", a->reg_id, st,
                (long long)json_integer_value(code), msg);
    else
        fprintf(stderr, "hubctl: registration of %s ended %s%s%s\n", a->reg_id, st,
                msg[0] ? ": " : "", msg);
    return HUBCTL_FAIL;
}

int hubctl_dps_register_main(const struct hubctl_globals *g, int argc, char **argv)
{
    struct reg_args a;
    int ex = parse_args(argc, argv, &a);
    if (ex >= 0)
        return ex;
    a.json |= g->json;
    char hostbuf[HUB_AUTH_HOST_MAX + 1];
    const char *host = provisioning_host(g, &a, hostbuf, sizeof(hostbuf));
    if (host == NULL)
        return HUBCTL_USAGE;
    struct hubctl_https_target t = {.host = host,
                                    .connect_host = g->host,
                                    .port = g->port ? g->port : 443,
                                    .cafile = g->cafile,
                                    .client_cert_file = a.cert,
                                    .client_key_file = a.key};

    char authz_h[HUB_AUTH_TOKEN_MAX + sizeof("Authorization: ")] = "";
    if (a.key_sas != NULL) {
        char sr[sizeof(a.enc_scope) + sizeof("/registrations/") + HUB_AUTH_ID_MAX];
        char token[HUB_AUTH_TOKEN_MAX + 1];
        struct hub_err err = {0};
        snprintf(sr, sizeof(sr), "%s/registrations/%s", a.scope, a.reg_id);
        if (hub_auth_sas_build(sr, HUB_AUTH_SR_RAW, "registration", a.key_sas,
                               (int64_t)time(NULL) + SAS_TTL_S, token, sizeof(token), &err) < 0) {
            fprintf(stderr, "hubctl: --key-sas: %s\n",
                    err.msg[0] ? err.msg : hub_err_text(err.code));
            return HUBCTL_USAGE;
        }
        snprintf(authz_h, sizeof(authz_h), "Authorization: %s", token);
        OPENSSL_cleanse(token, sizeof(token));
    }

    /* scope, id, an encoded operation id (3 x 127) and the fixed parts */
    char path[sizeof(a.enc_scope) + sizeof(a.enc_id) + 3 * 128 + 128];
    snprintf(path, sizeof(path),
             "/%s/registrations/%s/register?api-version=" DPS_DEVICE_API_VERSION, a.enc_scope,
             a.enc_id);
    json_t *req = json_pack("{s:s}", "registrationId", a.reg_id);
    char *body = req != NULL ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    if (body == NULL) {
        fprintf(stderr, "hubctl: cannot build the request (registration id not UTF-8?)\n");
        ex = HUBCTL_USAGE;
        goto cleanse;
    }
    time_t deadline = time(NULL) + a.timeout_s;
    struct hubctl_http_response resp = {0};
    json_t *op = NULL;
    if ((ex = device_call(&t, "PUT", path, authz_h[0] ? authz_h : NULL, body, &resp)) != 0 ||
        (ex = answer_json(&resp, "register", &op)) != 0)
        goto free_resp;
    char op_id[128];
    hubctl_api_text_sanitize(json_string_value(json_object_get(op, "operationId")), op_id,
                             sizeof(op_id));
    for (;;) {
        const char *status = json_string_value(json_object_get(op, "status"));
        if (status == NULL || strcmp(status, "assigning") != 0) {
            ex = report(&a, op);
            break;
        }
        char enc_op[3 * sizeof(op_id)];
        struct hub_err err = {0};
        if (op_id[0] == '\0' || hubctl_api_path_encode(op_id, enc_op, sizeof(enc_op), &err) < 0) {
            fprintf(stderr, "hubctl: the service's answer holds no usable operationId\n");
            ex = HUBCTL_USAGE;
            break;
        }
        long wait = retry_after_s(&resp);
        if (time(NULL) + wait > deadline) {
            fprintf(stderr, "hubctl: %s is still assigning after %ld s (--timeout)\n", a.reg_id,
                    a.timeout_s);
            ex = HUBCTL_USAGE;
            break;
        }
        sleep_s(wait);
        snprintf(path, sizeof(path),
                 "/%s/registrations/%s/operations/%s?api-version=" DPS_DEVICE_API_VERSION,
                 a.enc_scope, a.enc_id, enc_op);
        json_decref(op);
        op = NULL;
        hubctl_http_response_free(&resp);
        if ((ex = device_call(&t, "GET", path, authz_h[0] ? authz_h : NULL, NULL, &resp)) != 0 ||
            (ex = answer_json(&resp, "operation status", &op)) != 0)
            break;
    }
free_resp:
    json_decref(op);
    hubctl_http_response_free(&resp);
    free(body);
cleanse:
    OPENSSL_cleanse(authz_h, sizeof(authz_h));
    return ex;
}
