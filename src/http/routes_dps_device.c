/*
 * http: the device side of the Device Provisioning Service over HTTPS
 * (azure-iot-provisioning-device-http; reference §7, dpsdev.h's table):
 *
 *   PUT /{idScope}/registrations/{regId}/register
 *       body {"registrationId"[,"payload"]}: 202 {"operationId","status"} with
 *       Retry-After, or the DPS error JSON;
 *   GET /{idScope}/registrations/{regId}/operations/{opId}:
 *       200 {..., "registrationState"}.
 *
 * The credential is the TLS client certificate (X.509 attestation) or an
 * Authorization SAS token (sr {idScope}/registrations/{regId}, skn
 * registration); judging it is the dpsdev backend's job, as over MQTT. The
 * GET is not re-attested: the operation id (128 random bits) is bound to
 * its scope and registration id, as Azure's.
 * The registration exchange is logged by dpsdev (event=dps_register).
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/http.h>

#include "dpsdev/dpsdev.h"
#include "http/http_int.h"

static void reply_answer(struct hub_http_request *r, const struct hub_dpsdev_answer *a)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(r->req);
    if (a->status == 202) {
        char ra[16];
        snprintf(ra, sizeof(ra), "%d", hub_dpsdev_service_retry_after(r->env->dps_device));
        evhttp_add_header(h, "Retry-After", ra);
    }
    json_error_t jerr;
    json_t *body = a->body != NULL ? json_loads(a->body, 0, &jerr) : NULL;
    hub_http__reply_json(r, a->status, body);
}

static void dps_register(struct hub_http_request *r, const char *scope, const char *reg_id)
{
    X509 *leaf;
    STACK_OF(X509) * chain; /* borrowed from the TLS session */
    hub_http__peer_certs(r, &leaf, &chain);
    const char *authz = hub_http__header(r, "Authorization");
    struct evbuffer *in = evhttp_request_get_input_buffer(r->req);
    size_t len = evbuffer_get_length(in);
    const void *body = len > 0 ? evbuffer_pullup(in, -1) : NULL;
    struct hub_dpsdev_claim claim = {
        .transport = "https",
        .id_scope = scope,
        .registration_id = reg_id,
        .leaf = leaf,
        .chain = chain,
        .sas_token = authz,
        .sas_token_len = authz != NULL ? strlen(authz) : 0,
        .now = r->env->now != NULL ? r->env->now() : (int64_t)time(NULL),
    };
    struct hub_dpsdev_answer a;
    struct hub_err err = {0};
    if (hub_dpsdev_service_register(r->env->dps_device, &claim, body, len, r->peer, &a, &err) != 0)
        hub_http__reply_error(r, 500, "ServerError", "INTERNAL", "%s", err.msg);
    else
        reply_answer(r, &a);
    free(a.body);
    X509_free(leaf);
}

static void dps_status(struct hub_http_request *r, const char *scope, const char *reg_id,
                       const char *op_id)
{
    struct hub_dpsdev_answer a;
    struct hub_err err = {0};
    if (hub_dpsdev_service_status(r->env->dps_device, scope, reg_id, op_id, &a, &err) != 0)
        hub_http__reply_error(r, 500, "ServerError", "INTERNAL", "%s", err.msg);
    else
        reply_answer(r, &a);
    free(a.body);
}

int hub_http__route_dps_device(struct hub_http_request *r)
{
    /* segments: {scope} registrations {id} register | {scope} registrations {id}
     * operations {op} */
    if (r->env->dps_device == NULL || r->segment_count < 4 ||
        strcmp(r->segments[1], "registrations") != 0)
        return 0;
    const char *scope = r->segments[0];
    const char *reg_id = r->segments[2];
    bool is_register = r->segment_count == 4 && strcmp(r->segments[3], "register") == 0;
    bool is_status = r->segment_count == 5 && strcmp(r->segments[3], "operations") == 0;
    if (!is_register && !is_status)
        return 0;
    if (!hub_dpsdev_registration_id_valid(reg_id, strlen(reg_id))) {
        hub_http__reply_error(r, 400, "BadRequest", "BAD_REGISTRATION_ID",
                              "registration id is empty, too long or has a forbidden character");
        return 1;
    }
    if (is_register) {
        if (r->method != EVHTTP_REQ_PUT) {
            hub_http__reply_error(r, 405, "MethodNotAllowed", "METHOD", "use PUT to register");
            return 1;
        }
        dps_register(r, scope, reg_id);
    } else {
        if (r->method != EVHTTP_REQ_GET) {
            hub_http__reply_error(r, 405, "MethodNotAllowed", "METHOD",
                                  "use GET for an operation's status");
            return 1;
        }
        dps_status(r, scope, reg_id, r->segments[4]);
    }
    return 1;
}
