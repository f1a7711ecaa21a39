/*
 * CA certificate endpoints, the resource-provider API served by the hub
 * (reference §5):
 *   GET    /certificates                                  list (registryRead)
 *   GET    /certificates/{name}                           one (registryRead)
 *   PUT    /certificates/{name}                           upload (registryWrite)
 *   DELETE /certificates/{name}                           delete (registryWrite)
 *   POST   /certificates/{name}/generateVerificationCode  new code (registryWrite)
 *   POST   /certificates/{name}/verify                    proof of possession (registryWrite)
 *   PUT    /certificates/{name}/crl                       upload its CRL (registryWrite)
 * If-Match: absent on PUT means "create only" (409 if the name exists); on
 * the other writes absent means unconditional; otherwise "*" or the etag.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/http.h>

#include "auth/auth.h"
#include "common/log.h"
#include "common/util.h"
#include "http/http_int.h"
#include "http/json_map.h"
#include "pki/pki.h"
#include "registry/registry.h"

#define NOT_FOUND_CODE "CertificateNotFound"
#define EXISTS_CODE    "CertificateAlreadyExists"

static void log_change(struct hub_http_request *r, const char *event, const char *name)
{
    hub_log_kv(HUB_LOG_INFO, event, "who", r->who, "peer", r->peer, "ca", name, NULL);
}

/*
 * The certificate text of a request: PEM as is, or base64 of DER (Azure
 * accepts both). *out_new is malloc'd bytes for pki to load; -1 after a reply.
 */
struct pki_text {
    const char *what;    /* "certificate" / "crl" */
    const char *missing; /* reason= when absent */
    const char *bad;     /* reason= when neither PEM nor base64 */
    size_t max_bytes;
};
static const struct pki_text cert_text = {"certificate", "NO_CERTIFICATE", "BAD_CERTIFICATE",
                                          HUB_PKI_MAX_FILE_BYTES};
static const struct pki_text crl_text = {"crl", "NO_CRL", "BAD_CRL", HUB_PKI_MAX_CRL_BYTES};

static int pki_bytes(struct hub_http_request *r, json_t *value, const struct pki_text *t,
                     unsigned char **out_new, size_t *out_len)
{
    if (!json_is_string(value) || json_string_length(value) == 0) {
        hub_http__reply_error(r, 400, "ArgumentInvalid", t->missing,
                              "%s must be a non-empty string (PEM or base64 DER)", t->what);
        return -1;
    }
    const char *text = json_string_value(value);
    size_t len = json_string_length(value);
    if (len > t->max_bytes * 2) {
        hub_http__reply_error(r, 413, "MessageTooLarge", "TOO_LARGE", "%s is larger than %zu bytes",
                              t->what, t->max_bytes);
        return -1;
    }
    char why[HUB_ERR_MSG_MAX];
    int rc = hub_http__certificate_bytes_decode(text, len, out_new, out_len, why, sizeof(why));
    if (rc == HUB_E_NOMEM) {
        hub_http__reply_error(r, 500, "ServerError", "NOMEM", "out of memory");
        return -1;
    }
    if (rc != 0) {
        hub_http__reply_error(r, 400, "ArgumentInvalid", t->bad,
                              "%s is neither PEM nor base64-encoded DER: %s", t->what, why);
        return -1;
    }
    return 0;
}

static int certificate_bytes(struct hub_http_request *r, json_t *value, unsigned char **out_new,
                             size_t *out_len)
{
    return pki_bytes(r, value, &cert_text, out_new, out_len);
}

static void reply_ca(struct hub_http_request *r, int status, const struct hub_ca_cert *ca,
                     int with_code)
{
    char quoted[HUB_ETAG_SIZE + 2];
    snprintf(quoted, sizeof(quoted), "\"%s\"", ca->etag);
    evhttp_add_header(evhttp_request_get_output_headers(r->req), "ETag", quoted);
    hub_http__reply_json(
        r, status,
        hub_http__ca_lifecycle_add(hub_http__ca_to_json(ca, with_code), ca, r->env->now()));
}

static void ca_list(struct hub_http_request *r)
{
    struct hub_ca_cert_list *list = NULL;
    struct hub_err err = {0};
    if (hub_registry_ca_list1(r->env->registry, &list, &err) != 0) {
        hub_http__reply_hub_err(r, &err, NOT_FOUND_CODE, EXISTS_CODE);
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < list->count; i++)
        json_array_append_new(arr,
                              hub_http__ca_lifecycle_add(hub_http__ca_to_json(&list->items[i], 0),
                                                         &list->items[i], r->env->now()));
    hub_ca_cert_list_free(list);
    hub_http__reply_json(r, 200, json_pack("{s:o}", "value", arr));
}

static void ca_get(struct hub_http_request *r, const char *name)
{
    struct hub_ca_cert *ca = NULL;
    struct hub_err err = {0};
    if (hub_registry_ca_get1(r->env->registry, name, &ca, &err) != 0) {
        hub_http__reply_hub_err(r, &err, NOT_FOUND_CODE, EXISTS_CODE);
        return;
    }
    reply_ca(r, 200, ca, 0);
    hub_ca_cert_free(ca);
}

static void ca_put(struct hub_http_request *r, const char *name)
{
    json_t *body = hub_http__body_json(r);
    if (body == NULL)
        return;
    json_t *props = json_object_get(body, "properties");
    if (!json_is_object(props)) {
        json_decref(body);
        hub_http__reply_error(r, 400, "ArgumentInvalid", "BAD_CA_JSON",
                              "body must be {\"properties\":{\"certificate\":\"<PEM or base64 "
                              "DER>\",\"isVerified\":false}}");
        return;
    }
    json_t *verified_json = json_object_get(props, "isVerified");
    if (verified_json != NULL && !json_is_boolean(verified_json) && !json_is_null(verified_json)) {
        json_decref(body);
        hub_http__reply_error(r, 400, "ArgumentInvalid", "BAD_CA_JSON",
                              "properties.isVerified must be true or false");
        return;
    }
    bool verified = json_is_true(verified_json);
    if (verified && !r->env->allow_verify_on_upload) {
        json_decref(body);
        hub_http__reply_error(r, 400, "ArgumentInvalid", "VERIFY_ON_UPLOAD_DISABLED",
                              "isVerified=true on upload skips proof of possession and is "
                              "disabled on this hub (hubd --allow-verify-on-upload); upload with "
                              "isVerified=false, then generate a verification code and verify");
        return;
    }
    unsigned char *cert = NULL;
    size_t cert_len = 0;
    int rc = certificate_bytes(r, json_object_get(props, "certificate"), &cert, &cert_len);
    json_decref(body);
    if (rc != 0)
        return;

    char if_match[HUB_ETAG_SIZE + 8];
    int conditional = hub_http__if_match(r, if_match, sizeof(if_match));
    struct hub_err err = {0};
    struct hub_ca_cert *ca = NULL;
    if (conditional && strcmp(if_match, "*") == 0) {
        /* "*" matches an existing resource only (RFC 9110): replace, never create. */
        if (hub_registry_ca_get1(r->env->registry, name, &ca, &err) != 0) {
            free(cert);
            hub_http__reply_hub_err(r, &err, NOT_FOUND_CODE, EXISTS_CODE);
            return;
        }
        hub_ca_cert_free(ca);
        ca = NULL;
    } else if (!conditional) {
        /* Without If-Match a PUT only creates, so a typo in a name cannot
         * silently replace (and un-verify) a CA devices depend on. */
        if (hub_registry_ca_get1(r->env->registry, name, &ca, &err) == 0) {
            hub_ca_cert_free(ca);
            free(cert);
            hub_http__reply_error(r, 409, EXISTS_CODE, "EXISTS",
                                  "certificate %s exists; send If-Match with its etag to replace "
                                  "it",
                                  name);
            return;
        }
        ca = NULL;
    }
    bool created = false;
    rc = hub_registry_ca_upload(r->env->registry, name, cert, cert_len, verified,
                                conditional ? if_match : NULL, &created, &ca, &err);
    free(cert);
    if (rc != 0) {
        hub_http__reply_hub_err(r, &err, NOT_FOUND_CODE, EXISTS_CODE);
        return;
    }
    log_change(r, created ? "ca_uploaded" : "ca_replaced", name);
    if (verified)
        hub_log_kv(HUB_LOG_WARN, "ca_verified_on_upload", "who", r->who, "ca", name, NULL);
    reply_ca(r, created ? 201 : 200, ca, 0);
    hub_ca_cert_free(ca);
}

static void ca_delete(struct hub_http_request *r, const char *name)
{
    char if_match[HUB_ETAG_SIZE + 8];
    const char *cond = hub_http__if_match(r, if_match, sizeof(if_match)) ? if_match : NULL;
    struct hub_err err = {0};
    if (hub_registry_ca_delete(r->env->registry, name, cond, &err) != 0) {
        hub_http__reply_hub_err(r, &err, NOT_FOUND_CODE, EXISTS_CODE);
        return;
    }
    log_change(r, "ca_deleted", name);
    hub_http__reply_empty(r, 200);
}

static void ca_generate_code(struct hub_http_request *r, const char *name)
{
    char if_match[HUB_ETAG_SIZE + 8];
    const char *cond = hub_http__if_match(r, if_match, sizeof(if_match)) ? if_match : NULL;
    struct hub_ca_cert *ca = NULL;
    struct hub_err err = {0};
    if (hub_registry_ca_code_generate(r->env->registry, name, cond, &ca, &err) != 0) {
        hub_http__reply_hub_err(r, &err, NOT_FOUND_CODE, EXISTS_CODE);
        return;
    }
    log_change(r, "ca_code_generated", name);
    reply_ca(r, 200, ca, 1);
    hub_ca_cert_free(ca);
}

static void ca_verify(struct hub_http_request *r, const char *name)
{
    json_t *body = hub_http__body_json(r);
    if (body == NULL)
        return;
    unsigned char *cert = NULL;
    size_t cert_len = 0;
    int rc = certificate_bytes(r, json_object_get(body, "certificate"), &cert, &cert_len);
    json_decref(body);
    if (rc != 0)
        return;
    char if_match[HUB_ETAG_SIZE + 8];
    const char *cond = hub_http__if_match(r, if_match, sizeof(if_match)) ? if_match : NULL;
    struct hub_ca_cert *ca = NULL;
    struct hub_err err = {0};
    rc = hub_registry_ca_verify(r->env->registry, name, cond, cert, cert_len, &ca, &err);
    free(cert);
    if (rc != 0) {
        hub_http__reply_hub_err(r, &err, NOT_FOUND_CODE, EXISTS_CODE);
        return;
    }
    log_change(r, "ca_verified", name);
    reply_ca(r, 200, ca, 0);
    hub_ca_cert_free(ca);
}

/* PUT /certificates/{name}/crl, body {"crl": "<PEM or base64 DER>"}. */
static void ca_crl_put(struct hub_http_request *r, const char *name)
{
    json_t *body = hub_http__body_json(r);
    if (body == NULL)
        return;
    unsigned char *crl = NULL;
    size_t crl_len = 0;
    int rc = pki_bytes(r, json_object_get(body, "crl"), &crl_text, &crl, &crl_len);
    json_decref(body);
    if (rc != 0)
        return;
    char if_match[HUB_ETAG_SIZE + 8];
    const char *cond = hub_http__if_match(r, if_match, sizeof(if_match)) ? if_match : NULL;
    struct hub_ca_cert *ca = NULL;
    struct hub_err err = {0};
    rc = hub_registry_ca_crl_set(r->env->registry, name, crl, crl_len, cond, &ca, &err);
    free(crl);
    if (rc != 0) {
        hub_http__reply_hub_err(r, &err, NOT_FOUND_CODE, EXISTS_CODE);
        return;
    }
    char revoked[24];
    snprintf(revoked, sizeof(revoked), "%lld", (long long)ca->crl_revoked_count);
    hub_log_kv(HUB_LOG_INFO, "crl_uploaded", "who", r->who, "peer", r->peer, "ca", name, "revoked",
               revoked, NULL);
    int64_t now = r->env->now();
    if (ca->crl_next_update != 0 && ca->crl_next_update <= now) {
        char when[HUB_TIME_ISO_LEN];
        hub_time_iso8601((time_t)ca->crl_next_update, when);
        hub_log_kv(HUB_LOG_WARN, "crl_expired", "ca", name, "next_update", when, "detail",
                   "uploaded CRL is already past its nextUpdate; it is enforced anyway", NULL);
    }
    reply_ca(r, 200, ca, 0);
    hub_ca_cert_free(ca);
}

int hub_http__route_certificates(struct hub_http_request *r)
{
    if (r->segment_count < 1 || strcmp(r->segments[0], "certificates") != 0)
        return 0;
    const unsigned read = HUB_AUTH_PERM_REGISTRY_READ, write = HUB_AUTH_PERM_REGISTRY_WRITE;
    if (r->segment_count == 1 && r->method == EVHTTP_REQ_GET) {
        if (hub_http__authorize(r, read) == 0)
            ca_list(r);
        return 1;
    }
    const char *name = r->segments[1];
    if (r->segment_count == 2) {
        switch (r->method) {
        case EVHTTP_REQ_GET:
            if (hub_http__authorize(r, read) == 0)
                ca_get(r, name);
            return 1;
        case EVHTTP_REQ_PUT:
            if (hub_http__authorize(r, write) == 0)
                ca_put(r, name);
            return 1;
        case EVHTTP_REQ_DELETE:
            if (hub_http__authorize(r, write) == 0)
                ca_delete(r, name);
            return 1;
        default:
            break;
        }
    } else if (r->segment_count == 3 && strcmp(r->segments[2], "crl") == 0) {
        if (r->method == EVHTTP_REQ_PUT) {
            if (hub_http__authorize(r, write) == 0)
                ca_crl_put(r, name);
            return 1;
        }
    } else if (r->segment_count == 3 && r->method == EVHTTP_REQ_POST) {
        if (strcmp(r->segments[2], "generateVerificationCode") == 0) {
            if (hub_http__authorize(r, write) == 0)
                ca_generate_code(r, name);
            return 1;
        }
        if (strcmp(r->segments[2], "verify") == 0) {
            if (hub_http__authorize(r, write) == 0)
                ca_verify(r, name);
            return 1;
        }
    } else if (r->segment_count > 3) {
        return 0;
    }
    hub_http__reply_error(r, 405, "MethodNotAllowed", "BAD_METHOD", "%s is not allowed on %s",
                          r->method_name, r->path);
    return 1;
}
