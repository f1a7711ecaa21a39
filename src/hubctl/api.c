/*
 * hubctl's service API calls (contract in api.h): SAS-signed JSON over one
 * HTTPS request per call.
 *
 * Every request carries, like azure-iothub (reference §4 "General"):
 *   Authorization: SharedAccessSignature sr={HostName}&sig=...&skn={policy}&se={now+3600}
 *   Request-Id: {uuid v4}, User-Agent: hubctl/0.1, Host,
 *   Content-Type: application/json; charset=utf-8, Accept: application/json
 * and `?api-version=2021-04-12` (the provisioning service's calls:
 * 2021-10-01, signed with the DPS policy's string). The token is rebuilt for every call, with
 * the raw HostName as sr, as the Node service SDK does. hubctl_api_call_raw
 * replaces the Content-Type and adds the caller's headers (C2D properties).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/x509.h>

#include "common/util.h"
#include "hubctl/api.h"
#include "pki/pki.h"

void hubctl_api_response_free(struct hubctl_api_response *res)
{
    if (res == NULL)
        return;
    json_decref(res->json);
    memset(res, 0, sizeof(*res));
}

/* Parses `text` (a service policy connection string) into *api; `missing` is
 * the message when there is none. */
static int api_open(struct hubctl_api *api, const struct hubctl_globals *g, const char *text,
                    const char *missing, const char *api_version, struct hub_err *err)
{
    memset(api, 0, sizeof(*api));
    if (text == NULL || text[0] == '\0')
        return HUB_ERR(err, HUB_E_INVALID_ARG, "%s", missing);
    struct hub_err perr = {0};
    int rc = hub_auth_connstr_parse(text, strlen(text), &api->cs, &perr);
    if (rc < 0) /* the message names a key, never echoes the key itself */
        return HUB_ERR(err, rc, "connection string: %s", perr.msg);
    if (api->cs.kind != HUB_AUTH_CONNSTR_SERVICE)
        return HUB_ERR(err, HUB_E_INVALID_ARG,
                       "connection string: need a service policy string "
                       "(HostName;SharedAccessKeyName;SharedAccessKey), not a device one");
    api->target.host = api->cs.host_name;
    api->target.connect_host = g->host;
    api->target.port = g->port ? g->port : 443;
    api->target.cafile = g->cafile;
    api->json = g->json;
    api->api_version = api_version;
    return 0;
}

int hubctl_api_open(struct hubctl_api *api, const struct hubctl_globals *g, struct hub_err *err)
{
    return api_open(api, g, g->connection_string,
                    "no connection string: use --connection-string or set "
                    "HUB_CONNECTION_STRING (HostName=...;SharedAccessKeyName=...;"
                    "SharedAccessKey=...)",
                    HUBCTL_API_VERSION, err);
}

int hubctl_api_open_dps(struct hubctl_api *api, const struct hubctl_globals *g, struct hub_err *err)
{
    return api_open(api, g, g->dps_connection_string,
                    "no DPS connection string: use --dps-connection-string or set "
                    "HUB_DPS_CONNECTION_STRING (hubd prints it as \"DPS connection:\")",
                    HUBCTL_DPS_API_VERSION, err);
}

/* RFC 4122 version 4 UUID, for Request-Id (lets the hub's log find the call). */
static int uuid4(char out[37], struct hub_err *err)
{
    unsigned char b[16];
    int rc = hub_random_bytes(b, sizeof(b), err);
    if (rc < 0)
        return rc;
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
             b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
             b[14], b[15]);
    return 0;
}

static int status_code(int status)
{
    switch (status) {
    case 401:
        return HUB_E_UNAUTHORIZED;
    case 403:
        return HUB_E_FORBIDDEN;
    case 404:
        return HUB_E_NOT_FOUND;
    case 409:
        return HUB_E_EXISTS;
    case 412:
        return HUB_E_ETAG_MISMATCH;
    case 429:
        return HUB_E_BUSY;
    default:
        return HUB_E_INTERNAL;
    }
}

int hubctl_api_call(const struct hubctl_api *api, const char *method, const char *path,
                    const char *if_match, json_t *body, struct hubctl_api_response *res,
                    struct hub_err *err)
{
    memset(res, 0, sizeof(*res));
    char *body_text = NULL;
    if (body != NULL) {
        body_text = json_dumps(body, JSON_COMPACT);
        if (body_text == NULL)
            return HUB_ERR(err, HUB_E_NOMEM, "cannot encode the request body");
    }
    struct hubctl_api_request req = {.method = method,
                                     .path = path,
                                     .if_match = if_match,
                                     .body = body_text,
                                     .body_len = body_text ? strlen(body_text) : 0};
    int rc = hubctl_api_call_raw(api, &req, res, err);
    free(body_text);
    return rc;
}

int hubctl_api_call_raw(const struct hubctl_api *api, const struct hubctl_api_request *req,
                        struct hubctl_api_response *res, struct hub_err *err)
{
    memset(res, 0, sizeof(*res));
    size_t nextra = 0;
    while (req->headers != NULL && req->headers[nextra] != NULL)
        nextra++;
    if (nextra > HUBCTL_API_EXTRA_HEADERS_MAX)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "too many request headers (%zu, at most %d)", nextra,
                       HUBCTL_API_EXTRA_HEADERS_MAX);
    char token[HUB_AUTH_TOKEN_MAX + 1];
    int rc =
        hub_auth_sas_build(api->cs.host_name, HUB_AUTH_SR_RAW, api->cs.key_name, api->cs.key,
                           (int64_t)time(NULL) + HUBCTL_API_TOKEN_TTL_S, token, sizeof(token), err);
    if (rc < 0)
        return rc;
    char request_id[37];
    rc = uuid4(request_id, err);
    if (rc < 0)
        return rc;

    const char *ctype = req->content_type ? req->content_type : "application/json; charset=utf-8";
    const char *version = api->api_version ? api->api_version : HUBCTL_API_VERSION;
    size_t plen = strlen(req->path) + sizeof("?api-version=") + strlen(version);
    char *full = malloc(plen);
    char *auth_h = malloc(strlen(token) + sizeof("Authorization: "));
    char *ifm_h = req->if_match ? malloc(strlen(req->if_match) + sizeof("If-Match: ")) : NULL;
    char *ct_h = malloc(strlen(ctype) + sizeof("Content-Type: "));
    /* the standard headers below, the extra ones, the terminating NULL */
    const char **headers = malloc((7 + nextra) * sizeof(*headers));
    char rid_h[64];
    if (full == NULL || auth_h == NULL || (req->if_match != NULL && ifm_h == NULL) ||
        ct_h == NULL || headers == NULL) {
        rc = HUB_ERR(err, HUB_E_NOMEM, "out of memory");
        goto free_all;
    }
    snprintf(full, plen, "%s%capi-version=%s", req->path, strchr(req->path, '?') ? '&' : '?',
             version);
    sprintf(auth_h, "Authorization: %s", token);
    if (ifm_h != NULL)
        sprintf(ifm_h, "If-Match: %s", req->if_match);
    sprintf(ct_h, "Content-Type: %s", ctype);
    snprintf(rid_h, sizeof(rid_h), "Request-Id: %s", request_id);
    size_t nh = 0;
    headers[nh++] = auth_h;
    headers[nh++] = rid_h;
    headers[nh++] = "User-Agent: hubctl/0.1";
    headers[nh++] = "Accept: application/json";
    headers[nh++] = ct_h;
    if (ifm_h != NULL)
        headers[nh++] = ifm_h;
    for (size_t i = 0; i < nextra; i++)
        headers[nh++] = req->headers[i];
    headers[nh] = NULL;

    struct hubctl_https_target target = api->target;
    if (req->io_timeout_ms > 0)
        target.io_timeout_ms = req->io_timeout_ms;
    struct hubctl_http_response resp;
    rc = hubctl_https_request(&target, req->method, full, headers, req->body, req->body_len, &resp,
                              err);
    if (rc < 0)
        goto free_resp;
    res->status = resp.status;
    const char *etag = hubctl_http_response_header_get0(&resp, "ETag");
    if (etag != NULL)
        snprintf(res->etag, sizeof(res->etag), "%s", etag);
    const char *cont = hubctl_http_response_header_get0(&resp, "x-ms-continuation");
    if (cont != NULL)
        snprintf(res->continuation, sizeof(res->continuation), "%s", cont);
    if (resp.status < 200 || resp.status > 299) {
        char msg[HUBCTL_API_ERRMSG_MAX];
        hubctl_api_error_format(resp.status, resp.reason,
                                hubctl_http_response_header_get0(&resp, "iothub-errorcode"),
                                resp.body, resp.body_len, msg, sizeof(msg));
        rc = HUB_ERR(err, status_code(resp.status), "%s", msg);
        goto free_resp;
    }
    if (resp.body_len > 0) {
        json_error_t jerr;
        res->json = json_loadb(resp.body, resp.body_len, req->json_flags, &jerr);
        if (res->json == NULL) {
            char safe[160];
            hubctl_api_text_sanitize(jerr.text, safe, sizeof(safe));
            rc = HUB_ERR(err, HUB_E_PARSE, "the hub answered %d with invalid JSON: %s", resp.status,
                         safe);
            res->status = 0; /* not a refusal: a broken answer */
            goto free_resp;
        }
    }
    rc = 0;
free_resp:
    hubctl_http_response_free(&resp);
free_all:
    free(headers);
    free(ct_h);
    free(ifm_h);
    free(auth_h);
    free(full);
    /* The token signs every call for an hour: do not leave it in freed memory. */
    OPENSSL_cleanse(token, sizeof(token));
    return rc;
}

int hubctl_api_fail(const struct hubctl_api_response *res, const struct hub_err *err)
{
    fprintf(stderr, "hubctl: %s\n", err->msg[0] ? err->msg : hub_err_text(err->code));
    return res != NULL && res->status != 0 ? HUBCTL_FAIL : HUBCTL_USAGE;
}

void hubctl_api_json_print(const json_t *json)
{
    if (json == NULL)
        return;
    json_dumpf(json, stdout, JSON_INDENT(2));
    fputc('\n', stdout);
}

void hubctl_api_output(const struct hubctl_api *api, const json_t *json,
                       void (*human)(const json_t *))
{
    if (api->json)
        hubctl_api_json_print(json);
    else if (json != NULL)
        human(json);
}

int hubctl_api_show(const struct hubctl_api *api, const char *path, void (*human)(const json_t *))
{
    struct hubctl_api_response res = {0};
    struct hub_err err = {0};
    int ex = HUBCTL_OK;
    if (hubctl_api_call(api, "GET", path, NULL, NULL, &res, &err) < 0)
        ex = hubctl_api_fail(&res, &err);
    else
        hubctl_api_output(api, res.json, human);
    hubctl_api_response_free(&res);
    return ex;
}

int hubctl_api_delete(const struct hubctl_api *api, const char *path, const char *if_match,
                      const char *what, const char *id)
{
    struct hubctl_api_response res = {0};
    struct hub_err err = {0};
    int ex = HUBCTL_OK;
    if (hubctl_api_call(api, "DELETE", path, if_match, NULL, &res, &err) < 0)
        ex = hubctl_api_fail(&res, &err);
    else if (api->json)
        hubctl_api_json_print(res.json);
    else
        printf("deleted %s%s%s\n", what != NULL ? what : "", what != NULL ? " " : "", id);
    hubctl_api_response_free(&res);
    return ex;
}

void hubctl_api_etag_of(const struct hubctl_api_response *res, char *out, size_t cap)
{
    const char *e = json_string_value(json_object_get(res->json, "etag"));
    if (e == NULL || e[0] == '\0')
        e = res->etag[0] ? res->etag : "*";
    snprintf(out, cap, "%s", e);
}

const char *hubctl_api_str_at(const json_t *obj, const char *k1, const char *k2, const char *k3)
{
    const json_t *v = json_object_get(obj, k1);
    if (k2 != NULL)
        v = json_object_get(v, k2);
    if (k3 != NULL)
        v = json_object_get(v, k3);
    return json_string_value(v);
}

char *hubctl_api_cert_pem_load(const char *path)
{
    struct hub_err err = {0};
    X509 *cert = NULL;
    char *pem = NULL;
    if (hub_pki_cert_load_file(path, &cert, &err) < 0 ||
        hub_pki_cert_to_pem(cert, &pem, &err) < 0) {
        const char *msg = err.msg[0] ? err.msg : hub_err_text(err.code);
        /* pki names the file in some messages only: name it once, always. */
        if (strstr(msg, path) != NULL)
            fprintf(stderr, "hubctl: %s\n", msg);
        else
            fprintf(stderr, "hubctl: %s: %s\n", path, msg);
        pem = NULL;
    }
    X509_free(cert);
    return pem;
}

void hubctl_api_field_print(const char *label, const char *value)
{
    if (value == NULL)
        return;
    char safe[4096];
    hubctl_api_text_sanitize(value, safe, sizeof(safe));
    printf("%-18s %s\n", label, safe);
}

int hubctl_subcommand_dispatch(const char *family, const struct hubctl_subcommand *subs,
                               size_t count, void (*usage_of)(FILE *out),
                               const struct hubctl_globals *g, int argc, char **argv)
{
    if (argc < 2) {
        usage_of(stderr);
        return HUBCTL_USAGE;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage_of(stdout);
        return HUBCTL_OK;
    }
    for (size_t i = 0; i < count; i++)
        if (strcmp(argv[1], subs[i].name) == 0)
            return subs[i].run(g, argc - 1, argv + 1);
    fprintf(stderr, "hubctl: unknown %s command '%s'\n", family, argv[1]);
    usage_of(stderr);
    return HUBCTL_USAGE;
}
