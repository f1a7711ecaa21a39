/*
 * The device HTTPS transport (reference §3, what azure-iot-device-http sends):
 *
 * | request                                               | does                          |
 * |-------------------------------------------------------|-------------------------------|
 * | POST   /devices/{id}/messages/events                  | telemetry (one, or a batch)   |
 * | GET    /devices/{id}/messages/deviceBound             | lock the next C2D message     |
 * | DELETE /devices/{id}/messages/deviceBound/{lock}      | complete it                   |
 * | DELETE /devices/{id}/messages/deviceBound/{lock}?reject | reject it                   |
 * | POST   /devices/{id}/messages/deviceBound/{lock}/abandon | abandon it                  |
 *
 * 'deviceBound' in any case (Node sends 'devicebound'). POST
 * /devices/{id}/messages/deviceBound (no lock) is the service's C2D send:
 * routes_messages.c, not here.
 *
 * Authentication, on every request (HTTP has no session to remember it in):
 *   - an Authorization header must be a device SAS token for {id}. A token
 *     naming a policy (skn) is a service credential and is refused, even one
 *     whose policy holds DeviceConnect: the issue text says a service token
 *     never authenticates a device call (Azure itself would accept a
 *     DeviceConnect policy token here; hubd is stricter on purpose);
 *   - without one, the TLS client certificate (leaf + chain the client sent)
 *     is judged exactly as on MQTT CONNECT: hub_device_authn_decide with {id}
 *     as the client id, so the leaf CN must equal the id in the path.
 * The device layer's decision (hub_device_authn_decide) is reused through a
 * synthesized CONNECT: client id {id}, the header as password. Its step 1
 * (hub_device_authn_identify) is not: it parses a username, and a username
 * "{host}/{id}/?..." cannot carry ids with '?' or '=', which Azure allows;
 * dt_identify applies the same id rules to the path's id instead. Refusals answer 401
 * IotHubUnauthorizedAccess with one text that does not tell an unknown device from a wrong
 * credential (the log has the precise reason= of device.h); a disabled device also gets 401, as
 * Azure answers it, with a text saying so (it proved its identity first); a store or trust failure
 * 500.
 *
 * Telemetry is answered 204 only once durable: the request is parked (the
 * closecb pattern of routes_messages.c) until the msg layer's on_durable,
 * which runs on the committer thread and only hands the job back to the
 * request's event base with event_base_once.
 *
 * Header -> property mapping (reference §3; names case-insensitive; the
 * parsing is in transport_parse.c):
 *   iothub-app-{name}        application property {name} (name as sent)
 *   IoTHub-MessageId         messageId        IoTHub-CorrelationId   correlationId
 *   IoTHub-UserId            userId           IoTHub-To              to
 *   IoTHub-Expiry            expiryTimeUtc    iothub-contenttype     contentType
 *   iothub-contentencoding   contentEncoding  iothub-interface-id    interfaceId
 *   dt-subject               component (Node sends it without the app prefix)
 * plus connectionDeviceId and connectionAuthMethod, as on MQTT. A batch
 * (Content-Type application/vnd.microsoft.iothub.json) is a JSON array of
 * {"body": base64, "properties": {name: string}}, the names mapped the same way.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "auth/auth.h"
#include "common/log.h"
#include "common/util.h"
#include "device/device.h"
#include "http/http_int.h"
#include "msg/msg.h"
#include "registry/registry.h"

/* Node's sendEventBatch Content-Type (reference §3 "Batch telemetry"). */
#define BATCH_CONTENT_TYPE "application/vnd.microsoft.iothub.json"
/* Messages per batch. The 256 KiB body bound allows ~20000 tiny ones; a cap
 * keeps one request from holding the commit queue's whole budget. */
#define BATCH_MAX 500
/* lastActivityTime writes: at most one per device per this many seconds
 * (the MQTT endpoint's default), through a small direct-mapped table. */
#define TOUCH_INTERVAL_S 10
#define TOUCH_SLOTS      256

/* The pure parts (routing, header and batch properties -> message
 * properties, times) are in transport_parse.c. */

/* ---- authentication ------------------------------------------------------ */

/* lastActivityTime, rate-limited per device. A collision in the table only
 * costs an extra write. Shared by every worker (hence the lock). */
static struct {
    pthread_mutex_t mu;
    struct {
        char id[HUB_DEVICE_ID_SIZE];
        int64_t at_s;
    } slots[TOUCH_SLOTS];
} touch_table = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void activity_touch(struct hub_http_request *r, const char *device_id)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const char *c = device_id; *c != '\0'; c++)
        h = (h ^ (uint8_t)*c) * 16777619u;
    int64_t now = r->env->now();
    bool due;
    pthread_mutex_lock(&touch_table.mu);
    size_t i = h % TOUCH_SLOTS;
    due = strcmp(touch_table.slots[i].id, device_id) != 0 ||
          now - touch_table.slots[i].at_s >= TOUCH_INTERVAL_S;
    if (due) {
        snprintf(touch_table.slots[i].id, sizeof(touch_table.slots[i].id), "%s", device_id);
        touch_table.slots[i].at_s = now;
    }
    pthread_mutex_unlock(&touch_table.mu);
    if (!due)
        return;
    struct hub_err err = {0};
    if (hub_registry_device_activity_touch(r->env->registry, device_id, &err) != 0 &&
        err.code != HUB_E_NOT_FOUND) {
        struct hub_log_line line;
        hub_log_begin(&line, HUB_LOG_WARN, "activity_touch_failed");
        hub_log_str(&line, "device", device_id);
        hub_log_err(&line, &err);
        hub_log_end(&line);
    }
}

/* HTTP status of an authentication refusal (see the file comment). */
static int dt_refusal_status(enum hub_device_reason reason)
{
    switch (reason) {
    case HUB_DEVICE_R_SERVER_ERROR:
        return 500;
    case HUB_DEVICE_R_BAD_CLIENT_ID:
    case HUB_DEVICE_R_MODULE_UNSUPPORTED:
        return 400; /* the id in the path can name no device */
    default:
        return 401;
    }
}

/* The synthesized CONNECT for hub_device_authn_decide, which reads only the
 * password: views into id and authz, which must outlive it. */
static void dt_connect_build(const char *id, const char *authz, struct hub_mqtt_connect *cn)
{
    memset(cn, 0, sizeof(*cn));
    cn->protocol_level = 4;
    cn->clean_session = true;
    cn->client_id.ptr = id;
    cn->client_id.len = strlen(id);
    if (authz != NULL) {
        cn->has_password = true;
        cn->password.ptr = (const uint8_t *)authz;
        cn->password.len = strlen(authz);
    }
}

/* hub_device_authn_identify's id rules for the path's id (the path split
 * already refused an encoded '/', so no module id can hide in it). 0, or -1
 * with res filled as a refusal. */
static int dt_identify(const char *id, struct hub_device_authn_result *res)
{
    memset(res, 0, sizeof(*res));
    struct hub_err err = {0};
    if (hub_registry_device_id_check(id, &err) != 0) {
        res->reason = HUB_DEVICE_R_BAD_CLIENT_ID;
        res->connack = (uint8_t)hub_device_reason_connack(res->reason);
        snprintf(res->detail, sizeof(res->detail), "device id in the path: %.200s", err.msg);
        return -1;
    }
    snprintf(res->device_id, sizeof(res->device_id), "%.*s", HUB_DEVICE_ID_MAX, id);
    return 0;
}

static void refuse(struct hub_http_request *r, const struct hub_device_authn_result *res,
                   const char *id)
{
    int status = dt_refusal_status(res->reason);
    const char *reason = hub_device_reason_name(res->reason);
    char text[300];
    if (status == 500) {
        hub_http__reply_error_logged(r, 500, "ServerError", reason, res->detail,
                                     "the hub could not check the device's credential");
        return;
    }
    if (status == 400) {
        hub_http__reply_error(r, 400, "ArgumentInvalid", reason, "%s", res->detail);
        return;
    }
    if (res->reason == HUB_DEVICE_R_DEVICE_DISABLED)
        snprintf(text, sizeof(text), "device '%s' is disabled", id);
    else
        snprintf(text, sizeof(text),
                 "the credential does not authenticate device '%s' (unknown device, wrong or "
                 "expired key or certificate, or the wrong kind of credential)",
                 id);
    hub_http__reply_error_logged(r, 401, "IotHubUnauthorizedAccess", reason, res->detail, text);
}

/* The device's x509CertificateExpiry (issue 6), as on MQTT: the leaf's
 * notAfter, written only when it changed. */
static void cert_expiry_record(struct hub_http_request *r, const struct hub_device *dev, X509 *leaf)
{
    int64_t nb = 0, na = 0;
    struct hub_err err = {0};
    if (hub_pki_cert_validity(leaf, &nb, &na, &err) != 0 ||
        hub_registry_device_cert_expiry_set(r->env->registry, dev->id, na, dev->x509_not_after,
                                            &err) == 0)
        return;
    struct hub_log_line line;
    hub_log_begin(&line, HUB_LOG_WARN, "cert_expiry_record_failed");
    hub_log_str(&line, "device", dev->id);
    hub_log_err(&line, &err);
    hub_log_end(&line);
}

/* Authenticates the caller as device `id`. 0 with *method_out set and r->who
 * = the id; -1 after replying. */
static int dt_authenticate(struct hub_http_request *r, const char *id,
                           enum hub_device_auth_method *method_out)
{
    const struct hub_http_env *env = r->env;
    const char *authz = hub_http__header(r, "Authorization");
    if (authz != NULL) {
        struct hub_auth_sas sas;
        struct hub_err perr = {0};
        if (hub_auth_sas_parse(authz, strlen(authz), &sas, &perr) == 0 && sas.has_skn) {
            hub_http__reply_error(r, 401, "IotHubUnauthorizedAccess", "SERVICE_CREDENTIAL",
                                  "service credentials cannot be used on the device API (the "
                                  "token names policy '%s'; use a device SAS token or the "
                                  "device's X.509 certificate)",
                                  sas.skn);
            return -1;
        }
    }

    X509 *leaf = NULL;
    STACK_OF(X509) *chain = NULL; /* borrowed from the TLS session */
    if (authz == NULL) {
        hub_http__peer_certs(r, &leaf, &chain);
        if (leaf == NULL) {
            hub_http__reply_error(r, 401, "IotHubUnauthorizedAccess", "NO_CREDENTIAL",
                                  "no credential: send a device SAS token in the Authorization "
                                  "header or present the device's X.509 certificate in TLS");
            return -1;
        }
    }

    struct hub_mqtt_connect cn;
    dt_connect_build(id, authz, &cn);

    int rc = -1;
    struct hub_device_authn_result res;
    if (dt_identify(id, &res) != 0) {
        refuse(r, &res, id);
        goto free_leaf;
    }
    struct hub_device dev;
    memset(&dev, 0, sizeof(dev));
    struct hub_err err = {0};
    int lookup_rc = hub_registry_device_auth_lookup(env->registry, res.device_id, &dev, &err);
    bool have_dev = lookup_rc == 0 || lookup_rc == HUB_E_FORBIDDEN;
    struct hub_registry_trust *trust = NULL;
    if (have_dev && dev.auth_type == HUB_AUTH_CERT_AUTHORITY &&
        hub_registry_trust_get1(env->registry, &trust, &err) != 0)
        trust = NULL; /* decided as SERVER_ERROR */
    struct hub_auth_verify_cfg sas_cfg = {
        .hosts = env->hostnames, .host_count = env->hostname_count, .max_ttl_s = 0};
    struct hub_device_authn_in in = {
        .connect = &cn,
        .leaf = leaf,
        .chain = chain,
        .lookup_rc = lookup_rc,
        .device = have_dev ? &dev : NULL,
        .trust = trust,
        .sas_cfg = &sas_cfg,
        .policies = NULL, /* policy (skn) tokens are service credentials here */
        .now = env->now(),
    };
    int drc = hub_device_authn_decide(&in, &res);
    hub_registry_trust_release(trust);
    if (drc != 0) {
        refuse(r, &res, id);
        goto free_leaf;
    }
    *method_out = res.method;
    if (leaf != NULL &&
        (res.method == HUB_DEVICE_AUTH_X509_CA || res.method == HUB_DEVICE_AUTH_SELF_SIGNED))
        cert_expiry_record(r, &dev, leaf);
    /* who= is 80 bytes; ids are up to 128 (the log line also names the URI). */
    snprintf(r->who, sizeof(r->who), "%.*s", (int)sizeof(r->who) - 1, res.device_id);
    activity_touch(r, res.device_id);
    rc = 0;
free_leaf:
    X509_free(leaf);
    return rc;
}

/* ---- telemetry ----------------------------------------------------------- */

/*
 * A telemetry request parked until its messages are durable. Two references:
 * the connection's (dropped when it closes, or when we reply) and the
 * commit's (held until the last on_durable, then by the posted callback).
 * `mu` guards what the committer thread and the worker both touch.
 */
struct tel_job {
    pthread_mutex_t mu;
    int refs;          /* mu */
    bool orphan;       /* mu: the connection closed; req and server are gone */
    size_t remaining;  /* mu: on_durable calls still due, +1 while submitting */
    int commit_status; /* mu: first failure an on_durable reported */
    struct event_base *base;
    /* Worker thread only. */
    struct evhttp_request *req;
    struct hub_http_server *server;
    size_t accepted;
    int fail_status; /* a submission refusal to answer (0: none) */
    const char *fail_code;
    const char *fail_reason;
    char fail_text[300];
    char who[80];
    char peer[64];
};

/* Jobs alive, all servers: a parked request that is never released shows
 * here (tests assert it returns to 0). */
static atomic_size_t tel_jobs_live;

static struct tel_job *job_new(void)
{
    struct tel_job *job = calloc(1, sizeof(*job));
    if (job == NULL)
        return NULL;
    if (pthread_mutex_init(&job->mu, NULL) != 0) {
        free(job);
        return NULL;
    }
    job->refs = 2;
    job->remaining = 1; /* the submission guard */
    atomic_fetch_add(&tel_jobs_live, 1);
    return job;
}

static void job_unref(struct tel_job *job, int n)
{
    pthread_mutex_lock(&job->mu);
    job->refs -= n;
    int left = job->refs;
    pthread_mutex_unlock(&job->mu);
    if (left == 0) {
        pthread_mutex_destroy(&job->mu);
        free(job);
        atomic_fetch_sub(&tel_jobs_live, 1);
    }
}

static void on_job_conn_closed(struct evhttp_connection *evcon, void *arg)
{
    (void)evcon;
    struct tel_job *job = arg;
    /* The client left, or the server is being freed: evhttp frees the
     * request right after this callback. */
    pthread_mutex_lock(&job->mu);
    job->orphan = true;
    pthread_mutex_unlock(&job->mu);
    job_unref(job, 1);
}

/* Worker thread: every message of the request is durable (or failed). */
static void on_job_done(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct tel_job *job = arg;
    pthread_mutex_lock(&job->mu);
    bool orphan = job->orphan;
    int commit_status = job->commit_status;
    pthread_mutex_unlock(&job->mu);
    if (orphan) {
        job_unref(job, 1);
        return;
    }
    struct evhttp_connection *evcon = evhttp_request_get_connection(job->req);
    if (evcon != NULL)
        evhttp_connection_set_closecb(evcon, NULL, NULL);

    struct hub_http_request r;
    memset(&r, 0, sizeof(r));
    r.req = job->req;
    r.env = job->server->env;
    r.server = job->server;
    r.draining = job->server->draining;
    r.method = EVHTTP_REQ_POST;
    r.method_name = "POST";
    r.uri = evhttp_request_get_uri(job->req);
    snprintf(r.who, sizeof(r.who), "%s", job->who);
    snprintf(r.peer, sizeof(r.peer), "%s", job->peer);
    if (commit_status != 0)
        /* Not in the log: the device must not take it as delivered. */
        hub_http__reply_error(
            &r, commit_status == HUB_E_IO ? 503 : 500,
            commit_status == HUB_E_IO ? "ServiceUnavailable" : "ServerError", "COMMIT_FAILED",
            "telemetry could not be made durable (%s)%s", hub_err_name(commit_status),
            job->accepted > 1 ? "; some messages of the batch may be stored" : "");
    else if (job->fail_status != 0)
        hub_http__reply_error(
            &r, job->fail_status, job->fail_code, job->fail_reason, "%s%s", job->fail_text,
            job->accepted > 0 ? " (the batch's earlier messages were stored)" : "");
    else
        hub_http__reply_empty(&r, 204);
    job_unref(job, 2); /* the commit's and the connection's (the request is answered) */
}

/* Drops one pending completion; the last one hands the job to the worker.
 * Any thread (the committer's on_durable, the worker's end of submission). */
static void job_complete_one(struct tel_job *job, int status)
{
    pthread_mutex_lock(&job->mu);
    if (status != 0 && job->commit_status == 0)
        job->commit_status = status;
    bool last = --job->remaining == 0;
    bool posted = false;
    /* Not orphaned = the server (and so its base) is alive: its free runs the
     * closecb, which waits for this lock. */
    if (last && !job->orphan)
        posted = event_base_once(job->base, -1, EV_TIMEOUT, on_job_done, job, NULL) == 0;
    pthread_mutex_unlock(&job->mu);
    if (last && !posted)
        job_unref(job, 1);
}

/* Committer thread: hand-off only. */
static void on_durable(void *arg, int status, int64_t seq)
{
    (void)seq;
    job_complete_one(arg, status);
}

/* Queues one message; on refusal records it in the job and returns -1. */
static int job_append(struct tel_job *job, struct hub_http_request *r,
                      const struct hub_telemetry_msg *msg)
{
    struct hub_err err = {0};
    pthread_mutex_lock(&job->mu);
    job->remaining++; /* before: on_durable may run before append returns */
    pthread_mutex_unlock(&job->mu);
    int rc = hub_msg_telemetry_append(r->env->telemetry, msg, on_durable, job, &err);
    if (rc == 0) {
        job->accepted++;
        return 0;
    }
    pthread_mutex_lock(&job->mu);
    job->remaining--; /* never called back; the submission guard keeps it > 0 */
    pthread_mutex_unlock(&job->mu);
    switch (rc) {
    case HUB_E_BUSY:
        job->fail_status = 503;
        job->fail_code = "ServerBusy";
        break;
    case HUB_E_TOO_LARGE:
        job->fail_status = 413;
        job->fail_code = "MessageTooLarge";
        break;
    case HUB_E_INVALID_ARG:
        job->fail_status = 400;
        job->fail_code = "ArgumentInvalid";
        break;
    default:
        job->fail_status = 500;
        job->fail_code = "ServerError";
        break;
    }
    job->fail_reason = hub_err_name(rc);
    snprintf(job->fail_text, sizeof(job->fail_text), "%s", err.msg);
    return -1;
}

/* Submits every message of the request; refusals found before anything
 * was queued are answered at once. Returns with the job parked or freed. */
static void telemetry_submit(struct tel_job *job, struct hub_http_request *r, const char *id,
                             enum hub_device_auth_method method, const unsigned char *body,
                             size_t len, bool batch)
{
    struct hub_telemetry_msg msg;
    if (!batch) {
        struct hub_http_dt_props p;
        memset(&p, 0, sizeof(p));
        struct evkeyvalq *headers = evhttp_request_get_input_headers(r->req);
        for (struct evkeyval *h = headers->tqh_first; h != NULL; h = h->next.tqe_next) {
            if (hub_http__dt_props_add(&p, h->key, h->value) != 0) {
                job->fail_status = 400;
                job->fail_code = "ArgumentInvalid";
                job->fail_reason = "TOO_MANY_PROPERTIES";
                snprintf(job->fail_text, sizeof(job->fail_text),
                         "at most %d iothub-app-* properties", HUB_HTTP_APP_MAX);
                return;
            }
        }
        hub_http__dt_msg_build(&p, id, hub_device_auth_method_json(method), body, len, &msg);
        job_append(job, r, &msg);
        return;
    }
    json_error_t jerr;
    json_t *arr = json_loadb((const char *)body, len, 0, &jerr);
    if (arr == NULL || !json_is_array(arr) || json_array_size(arr) == 0 ||
        json_array_size(arr) > BATCH_MAX) {
        job->fail_status = 400;
        job->fail_code = "ArgumentInvalid";
        job->fail_reason = "BAD_BATCH";
        if (arr == NULL)
            snprintf(job->fail_text, sizeof(job->fail_text),
                     "batch body is not JSON (line %d column %d: %s)", jerr.line, jerr.column,
                     jerr.text);
        else
            snprintf(job->fail_text, sizeof(job->fail_text),
                     "a batch (Content-Type " BATCH_CONTENT_TYPE ") is a JSON array of 1 to %d "
                     "{\"body\": base64, \"properties\": {...}} objects",
                     BATCH_MAX);
        json_decref(arr);
        return;
    }
    /* Validate every element before queueing any, so a malformed batch
     * stores nothing. */
    size_t count = json_array_size(arr);
    for (size_t i = 0; i < count; i++) {
        struct hub_http_dt_props p;
        unsigned char *b = NULL;
        size_t blen = 0;
        char why[160];
        if (hub_http__dt_batch_elem(json_array_get(arr, i), &p, &b, &blen, why, sizeof(why)) != 0) {
            job->fail_status = 400;
            job->fail_code = "ArgumentInvalid";
            job->fail_reason = "BAD_BATCH";
            snprintf(job->fail_text, sizeof(job->fail_text), "batch element %zu %s", i, why);
            json_decref(arr);
            return;
        }
        free(b);
    }
    for (size_t i = 0; i < count; i++) {
        struct hub_http_dt_props p;
        unsigned char *b = NULL;
        size_t blen = 0;
        char why[160];
        if (hub_http__dt_batch_elem(json_array_get(arr, i), &p, &b, &blen, why, sizeof(why)) != 0) {
            job->fail_status = 500; /* it validated a moment ago: out of memory */
            job->fail_code = "ServerError";
            job->fail_reason = "NOMEM";
            snprintf(job->fail_text, sizeof(job->fail_text), "batch element %zu %s", i, why);
            break;
        }
        hub_http__dt_msg_build(&p, id, hub_device_auth_method_json(method), b, blen, &msg);
        int rc = job_append(job, r, &msg);
        free(b);
        if (rc != 0)
            break;
    }
    json_decref(arr);
}

static void telemetry_post(struct hub_http_request *r, const char *id,
                           enum hub_device_auth_method method)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(r->req);
    size_t len = evbuffer_get_length(in);
    if (len > HUB_TELEMETRY_BODY_MAX) {
        hub_http__reply_error(r, 413, "MessageTooLarge", "TOO_LARGE",
                              "a device-to-cloud message is at most %d bytes, not %zu",
                              HUB_TELEMETRY_BODY_MAX, len);
        return;
    }
    if (r->env->telemetry == NULL) {
        hub_http__reply_error(r, 500, "ServerError", "INTERNAL", "no telemetry log configured");
        return;
    }
    const char *ctype = hub_http__header(r, "Content-Type");
    bool batch =
        ctype != NULL && strncasecmp(ctype, BATCH_CONTENT_TYPE, strlen(BATCH_CONTENT_TYPE)) == 0;
    const unsigned char *body = len > 0 ? evbuffer_pullup(in, -1) : NULL;

    struct tel_job *job = job_new();
    if (job == NULL) {
        hub_http__reply_error(r, 500, "ServerError", "NOMEM", "out of memory");
        return;
    }
    job->base = r->server->base;
    job->req = r->req;
    job->server = r->server;
    snprintf(job->who, sizeof(job->who), "%s", r->who);
    snprintf(job->peer, sizeof(job->peer), "%s", r->peer);

    telemetry_submit(job, r, id, method, body, len, batch);
    if (job->accepted == 0) {
        /* Nothing queued, so nothing will call back: answer now. */
        if (job->fail_status != 0)
            hub_http__reply_error(r, job->fail_status, job->fail_code, job->fail_reason, "%s",
                                  job->fail_text);
        else
            hub_http__reply_error(r, 500, "ServerError", "INTERNAL", "no message to store");
        job_unref(job, 2);
        return;
    }
    struct evhttp_connection *evcon = evhttp_request_get_connection(r->req);
    if (evcon != NULL) {
        evhttp_connection_set_closecb(evcon, on_job_conn_closed, job);
    } else { /* no connection to answer on: as if it had closed */
        pthread_mutex_lock(&job->mu);
        job->orphan = true;
        pthread_mutex_unlock(&job->mu);
        job_unref(job, 1);
    }
    job_complete_one(job, 0); /* release the guard */
}

/* ---- cloud-to-device ----------------------------------------------------- */

/* Adds a response header unless evhttp refuses the value (CR/LF inside). */
static void add_header(struct evkeyvalq *out, const char *name, const char *value)
{
    if (value != NULL)
        evhttp_add_header(out, name, value);
}

static void c2d_receive(struct hub_http_request *r, const char *id)
{
    struct hub_c2d_msg m;
    memset(&m, 0, sizeof(m));
    struct hub_err err = {0};
    if (hub_msg_c2d_deliver(r->env->c2d, id, 0, &m, &err) != 0) {
        if (err.code == HUB_E_NOT_FOUND)
            hub_http__reply_empty(r, 204);
        else
            hub_http__reply_hub_err(r, &err, "DeviceNotFound", "MessageExists");
        return;
    }
    struct evkeyvalq *out = evhttp_request_get_output_headers(r->req);
    char etag[HUB_LOCK_TOKEN_SIZE + 2];
    snprintf(etag, sizeof(etag), "\"%s\"", m.lock_token); /* quoted: reference §3 */
    evhttp_add_header(out, "ETag", etag);
    add_header(out, "iothub-messageid", m.sys[HUB_SYSPROP_MESSAGE_ID]);
    add_header(out, "iothub-correlationid", m.sys[HUB_SYSPROP_CORRELATION_ID]);
    add_header(out, "iothub-userid", m.sys[HUB_SYSPROP_USER_ID]);
    add_header(out, "iothub-to", m.sys[HUB_SYSPROP_TO]);
    add_header(out, "iothub-contenttype", m.sys[HUB_SYSPROP_CONTENT_TYPE]);
    add_header(out, "iothub-contentencoding", m.sys[HUB_SYSPROP_CONTENT_ENCODING]);
    char when[HUB_HTTP_ISO_MS_SIZE];
    if (m.expiry_ms > 0) {
        hub_http__iso_ms_format(m.expiry_ms, when);
        add_header(out, "iothub-expiry", when);
    }
    hub_http__iso_ms_format(m.enqueued_ms, when);
    add_header(out, "iothub-enqueuedtime", when);
    char num[24];
    snprintf(num, sizeof(num), "%lld", (long long)m.seq);
    add_header(out, "iothub-sequencenumber", num);
    snprintf(num, sizeof(num), "%lld", (long long)m.delivery_count);
    add_header(out, "iothub-deliverycount", num);
    for (size_t i = 0; i < m.app_count; i++) {
        char name[HUB_HTTP_SEGMENT_MAX + sizeof(HUB_HTTP_APP_PREFIX)];
        snprintf(name, sizeof(name), HUB_HTTP_APP_PREFIX "%s", m.app[i].key);
        add_header(out, name, m.app[i].value != NULL ? m.app[i].value : "");
    }
    evhttp_add_header(out, "Content-Type", "application/octet-stream");
    if (r->draining)
        evhttp_add_header(out, "Connection", "close");
    struct evbuffer *buf = evbuffer_new();
    if (buf != NULL && m.body_len > 0)
        evbuffer_add(buf, m.body, m.body_len);
    hub_log_kv(HUB_LOG_DEBUG, "c2d_delivered", "device", id, "message_id",
               m.sys[HUB_SYSPROP_MESSAGE_ID] != NULL ? m.sys[HUB_SYSPROP_MESSAGE_ID] : "-",
               "transport", "https", NULL);
    evhttp_send_reply(r->req, 200, "OK", buf);
    if (buf != NULL)
        evbuffer_free(buf);
    hub_c2d_msg_clear(&m);
}

static void c2d_settle(struct hub_http_request *r, const char *id, const char *lock,
                       enum hub_c2d_settle how)
{
    /* The path's token wins over If-Match (Node sends both, equal). Tolerate
     * a quoted one copied from the ETag as is. */
    char token[HUB_HTTP_SEGMENT_MAX];
    size_t len = strlen(lock);
    if (len >= 2 && lock[0] == '"' && lock[len - 1] == '"') {
        lock++;
        len -= 2;
    }
    memcpy(token, lock, len);
    token[len] = '\0';
    struct hub_err err = {0};
    if (len == 0 || len > HUB_LOCK_TOKEN_MAX) {
        hub_http__reply_error(r, 412, "DeviceMessageLockLost", "LOCK_LOST",
                              "no message of device '%s' is locked with that token", id);
        return;
    }
    if (hub_msg_c2d_settle(r->env->c2d, id, token, how, &err) != 0) {
        if (err.code == HUB_E_NOT_FOUND || err.code == HUB_E_ETAG_MISMATCH)
            hub_http__reply_error(r, 412, "DeviceMessageLockLost", "LOCK_LOST", "%s", err.msg);
        else
            hub_http__reply_hub_err(r, &err, "DeviceNotFound", "MessageExists");
        return;
    }
    hub_http__reply_empty(r, 204);
}

/* ---- entry --------------------------------------------------------------- */

int hub_http__route_device_transport(struct hub_http_request *r)
{
    char reject[HUB_HTTP_SEGMENT_MAX];
    bool has_reject = hub_http__query_get(r, "reject", reject, sizeof(reject)) != 0;
    const char *lock = NULL;
    enum hub_http_dt_op op =
        hub_http__dt_classify(r->method, r->segments, r->segment_count, has_reject, &lock);
    if (op == HUB_HTTP_DT_NONE)
        return 0;
    const char *id = r->segments[1];
    enum hub_device_auth_method method = HUB_DEVICE_AUTH_NONE;
    if (dt_authenticate(r, id, &method) != 0)
        return 1;
    if (op != HUB_HTTP_DT_TELEMETRY && r->env->c2d == NULL) {
        hub_http__reply_error(r, 500, "ServerError", "INTERNAL", "no C2D queue configured");
        return 1;
    }
    switch (op) {
    case HUB_HTTP_DT_TELEMETRY:
        telemetry_post(r, id, method);
        break;
    case HUB_HTTP_DT_RECEIVE:
        c2d_receive(r, id);
        break;
    case HUB_HTTP_DT_COMPLETE:
        c2d_settle(r, id, lock, HUB_C2D_COMPLETE);
        break;
    case HUB_HTTP_DT_REJECT:
        c2d_settle(r, id, lock, HUB_C2D_REJECT);
        break;
    case HUB_HTTP_DT_ABANDON:
        c2d_settle(r, id, lock, HUB_C2D_ABANDON);
        break;
    case HUB_HTTP_DT_NONE:
        break;
    }
    return 1;
}
