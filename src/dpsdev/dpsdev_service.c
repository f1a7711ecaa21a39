/*
 * dpsdev: the transport-neutral registration core: the request body, the
 * backend call, the operation table the device polls, the answers' JSON and
 * the one log line per registration.
 *
 * The operation table is a ring of max_operations slots under one mutex:
 * a registration takes the next slot (dropping the oldest answer, which its
 * device has long polled), a poll scans it. Registrations are rare (once per
 * device life, or per re-provisioning), so a scan is cheaper than a hash.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/util.h"
#include "dpsdev/dpsdev_int.h"

#define DEFAULT_TTL_S     300
#define DEFAULT_MAX_OPS   4096
#define REGISTER_BODY_MAX (64u * 1024)

struct op {
    char id[HUB_DPSDEV_OP_ID_MAX + 1]; /* "" = free slot */
    char id_scope[HUB_DPSDEV_SCOPE_MAX + 1];
    char registration_id[HUB_DPSDEV_REG_ID_MAX + 1];
    char *body; /* the 200 answer */
    int64_t expires_ms;
};

struct hub_dpsdev_service {
    char id_scope[HUB_DPSDEV_SCOPE_MAX + 1];
    struct hub_dpsdev_backend backend;
    struct hub_dpsdev_env env;
    pthread_mutex_t lock;
    struct op *ops;
    size_t op_count, op_next;
    _Atomic uint64_t counts[HUB_DPSDEV_R__COUNT];
};

static int64_t real_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t svc_now_ms(const struct hub_dpsdev_service *svc)
{
    return svc->env.now_ms != NULL ? svc->env.now_ms() : real_now_ms();
}

int hub_dpsdev_service_new(const struct hub_dpsdev_env *env, struct hub_dpsdev_service **out_new,
                           struct hub_err *err)
{
    *out_new = NULL;
    if (env->id_scope == NULL || env->id_scope[0] == '\0' ||
        strlen(env->id_scope) > HUB_DPSDEV_SCOPE_MAX || env->backend.register_device == NULL)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "DPS service needs an ID scope and a backend");
    struct hub_dpsdev_service *svc = calloc(1, sizeof(*svc));
    if (svc == NULL)
        return HUB_ERR(err, HUB_E_NOMEM, "no memory for the DPS service");
    svc->env = *env;
    if (svc->env.operation_ttl_s <= 0)
        svc->env.operation_ttl_s = DEFAULT_TTL_S;
    if (svc->env.max_operations == 0)
        svc->env.max_operations = DEFAULT_MAX_OPS;
    if (svc->env.retry_after_s <= 0)
        svc->env.retry_after_s =
            1; /* Node polls after retry-after s; 0 would mean its 2 s default */
    snprintf(svc->id_scope, sizeof(svc->id_scope), "%s", env->id_scope);
    svc->env.id_scope = svc->id_scope;
    svc->backend = env->backend;
    svc->op_count = svc->env.max_operations;
    svc->ops = calloc(svc->op_count, sizeof(*svc->ops));
    if (svc->ops == NULL || pthread_mutex_init(&svc->lock, NULL) != 0) {
        free(svc->ops);
        free(svc);
        return HUB_ERR(err, HUB_E_NOMEM, "no memory for the DPS operation table");
    }
    *out_new = svc;
    return 0;
}

void hub_dpsdev_service_free(struct hub_dpsdev_service *svc)
{
    if (svc == NULL)
        return;
    for (size_t i = 0; i < svc->op_count; i++)
        free(svc->ops[i].body);
    free(svc->ops);
    pthread_mutex_destroy(&svc->lock);
    free(svc);
}

void hub_dpsdev__server_limits(const struct hub_dpsdev_service *svc, struct hub_dpsdev__limits *out)
{
    if (svc->env.max_packet_bytes > 0)
        out->max_packet = svc->env.max_packet_bytes;
    if (svc->env.handshake_timeout_ms > 0)
        out->handshake_ms = svc->env.handshake_timeout_ms;
    if (svc->env.idle_max_ms > 0)
        out->idle_max_ms = svc->env.idle_max_ms;
    if (svc->env.session_max_ms > 0)
        out->session_max_ms = svc->env.session_max_ms;
}

const char *hub_dpsdev_service_id_scope(const struct hub_dpsdev_service *svc)
{
    return svc->id_scope;
}

int hub_dpsdev_service_retry_after(const struct hub_dpsdev_service *svc)
{
    return svc->env.retry_after_s;
}

uint64_t hub_dpsdev_reason_count(const struct hub_dpsdev_service *svc,
                                 enum hub_dpsdev_reason reason)
{
    if ((unsigned)reason >= HUB_DPSDEV_R__COUNT)
        return 0;
    return atomic_load_explicit(&svc->counts[reason], memory_order_relaxed);
}

/* ---- answers -------------------------------------------------------------- */

static int answer_json(struct hub_dpsdev_answer *out, int status, enum hub_dpsdev_reason reason,
                       json_t *obj, struct hub_err *err)
{
    out->status = status;
    out->reason = reason;
    out->body = obj != NULL ? json_dumps(obj, JSON_COMPACT) : NULL;
    json_decref(obj);
    if (out->body == NULL)
        return HUB_ERR(err, HUB_E_NOMEM, "no memory for the DPS answer");
    return 0;
}

/* Azure's error body: {"errorCode","trackingId","message","timestampUtc"}. */
static int answer_error(struct hub_dpsdev_service *svc, enum hub_dpsdev_reason reason,
                        struct hub_dpsdev_answer *out, struct hub_err *err)
{
    char tracking[33] = "";
    (void)hub_random_hex(16, tracking, NULL);
    char ts[HUB_TIME_ISO_LEN];
    hub_time_iso8601((time_t)(svc_now_ms(svc) / 1000), ts);
    json_t *obj =
        json_pack("{s:i, s:s, s:s, s:s}", "errorCode", hub_dpsdev_reason_code(reason), "trackingId",
                  tracking, "message", hub_dpsdev_reason_text(reason), "timestampUtc", ts);
    return answer_json(out, hub_dpsdev_reason_status(reason), reason, obj, err);
}

static void count(struct hub_dpsdev_service *svc, enum hub_dpsdev_reason reason)
{
    if ((unsigned)reason < HUB_DPSDEV_R__COUNT)
        atomic_fetch_add_explicit(&svc->counts[reason], 1, memory_order_relaxed);
}

static void log_register(const struct hub_dpsdev_claim *claim, const char *peer,
                         enum hub_dpsdev_reason reason, const char *detail, json_t *state)
{
    struct hub_log_line line;
    /* Status-200 rows other than OK ran and ended "failed". */
    const char *outcome = reason == HUB_DPSDEV_R_OK                 ? "assigned"
                          : hub_dpsdev_reason_status(reason) == 200 ? "failed"
                                                                    : "refused";
    hub_log_begin(&line, reason == HUB_DPSDEV_R_OK ? HUB_LOG_INFO : HUB_LOG_WARN, "dps_register");
    hub_log_str(&line, "transport", claim->transport != NULL ? claim->transport : "?");
    hub_log_str(&line, "registration", claim->registration_id);
    hub_log_str(&line, "peer", peer != NULL ? peer : "?");
    hub_log_str(&line, "outcome", outcome);
    if (reason != HUB_DPSDEV_R_OK) {
        hub_log_str(&line, "reason", hub_dpsdev_reason_name(reason));
        hub_log_str(&line, "detail",
                    detail != NULL && detail[0] != '\0' ? detail : hub_dpsdev_reason_text(reason));
    }
    if (state != NULL) {
        const char *dev = json_string_value(json_object_get(state, "deviceId"));
        const char *hub = json_string_value(json_object_get(state, "assignedHub"));
        if (dev != NULL)
            hub_log_str(&line, "device", dev);
        if (hub != NULL)
            hub_log_str(&line, "hub", hub);
    }
    hub_log_end(&line);
}

/* Stores the final answer and returns the operation id in op_id. */
static int record_op(struct hub_dpsdev_service *svc, const struct hub_dpsdev_claim *claim,
                     json_t *state, char op_id[HUB_DPSDEV_OP_ID_MAX + 1], struct hub_err *err)
{
    char rnd[33];
    int rc = hub_random_hex(16, rnd, err);
    if (rc != 0)
        return rc;
    /* Azure's ids look like "4.<16 hex>.<uuid>"; the SDKs treat them as opaque. */
    snprintf(op_id, HUB_DPSDEV_OP_ID_MAX + 1, "4.%.16s.%s", rnd, rnd + 16);
    const char *st = json_string_value(json_object_get(state, "status"));
    json_t *ans = json_pack("{s:s, s:s, s:O}", "operationId", op_id, "status",
                            st != NULL ? st : "failed", "registrationState", state);
    char *body = ans != NULL ? json_dumps(ans, JSON_COMPACT) : NULL;
    json_decref(ans);
    if (body == NULL)
        return HUB_ERR(err, HUB_E_NOMEM, "no memory for the DPS operation");
    pthread_mutex_lock(&svc->lock);
    /* One slot per registration id: a device that registers again replaces
     * its own answer (the new one is what it polls for) instead of pushing
     * other devices' answers out of the ring. */
    struct op *o = NULL;
    for (size_t i = 0; i < svc->op_count && o == NULL; i++)
        if (svc->ops[i].body != NULL && strcmp(svc->ops[i].id_scope, claim->id_scope) == 0 &&
            strcmp(svc->ops[i].registration_id, claim->registration_id) == 0)
            o = &svc->ops[i];
    if (o == NULL) {
        o = &svc->ops[svc->op_next];
        svc->op_next = (svc->op_next + 1) % svc->op_count;
    }
    free(o->body);
    snprintf(o->id, sizeof(o->id), "%s", op_id);
    snprintf(o->id_scope, sizeof(o->id_scope), "%s", claim->id_scope);
    snprintf(o->registration_id, sizeof(o->registration_id), "%s", claim->registration_id);
    o->body = body;
    o->expires_ms = svc_now_ms(svc) + (int64_t)svc->env.operation_ttl_s * 1000;
    pthread_mutex_unlock(&svc->lock);
    return 0;
}

int hub_dpsdev_service_register(struct hub_dpsdev_service *svc,
                                const struct hub_dpsdev_claim *claim, const void *body,
                                size_t body_len, const char *peer, struct hub_dpsdev_answer *out,
                                struct hub_err *err)
{
    memset(out, 0, sizeof(*out));
    enum hub_dpsdev_reason reason = HUB_DPSDEV_R_OK;
    char detail[256] = "";
    json_t *req = NULL;
    struct hub_dpsdev_verdict verdict = {0};

    if (claim->id_scope == NULL || strcmp(claim->id_scope, svc->id_scope) != 0) {
        reason = HUB_DPSDEV_R_SCOPE_UNKNOWN;
        snprintf(detail, sizeof(detail), "scope \"%.64s\"", claim->id_scope ? claim->id_scope : "");
        goto refuse;
    }
    if (body_len > REGISTER_BODY_MAX) {
        reason = HUB_DPSDEV_R_BAD_REQUEST;
        snprintf(detail, sizeof(detail), "body of %zu bytes", body_len);
        goto refuse;
    }
    json_error_t jerr;
    req = body_len > 0 ? json_loadb(body, body_len, JSON_REJECT_DUPLICATES, &jerr) : NULL;
    const char *reg = json_string_value(json_object_get(req, "registrationId"));
    if (!json_is_object(req) || reg == NULL) {
        reason = HUB_DPSDEV_R_BAD_REQUEST;
        snprintf(detail, sizeof(detail), "%s",
                 req == NULL ? "body is not JSON" : "body has no registrationId string");
        goto refuse;
    }
    if (strcmp(reg, claim->registration_id) != 0) {
        reason = HUB_DPSDEV_R_REGISTRATION_ID_MISMATCH;
        snprintf(detail, sizeof(detail), "body registrationId \"%.128s\"", reg);
        goto refuse;
    }
    json_t *payload = json_object_get(req, "payload");
    struct hub_dpsdev_claim c = *claim;
    c.payload = json_is_null(payload) ? NULL : payload;
    svc->backend.register_device(svc->backend.arg, &c, &verdict);
    reason = verdict.reason;
    snprintf(detail, sizeof(detail), "%s", verdict.detail);
    if (hub_dpsdev_reason_status(reason) != 200) /* refused, not run */
        goto refuse;
    if (verdict.registration_state == NULL) {
        reason = HUB_DPSDEV_R_SERVER_ERROR;
        snprintf(detail, sizeof(detail), "backend gave no registration state");
        goto refuse;
    }
    char op_id[HUB_DPSDEV_OP_ID_MAX + 1];
    int rc = record_op(svc, claim, verdict.registration_state, op_id, err);
    if (rc != 0)
        goto fail;
    count(svc, reason);
    log_register(claim, peer, reason, detail, verdict.registration_state);
    json_decref(verdict.registration_state);
    json_decref(req);
    return answer_json(out, 202, reason,
                       json_pack("{s:s, s:s}", "operationId", op_id, "status", "assigning"), err);

refuse:
    count(svc, reason);
    log_register(claim, peer, reason, detail, NULL);
    json_decref(verdict.registration_state);
    json_decref(req);
    return answer_error(svc, reason, out, err);
fail:
    json_decref(verdict.registration_state);
    json_decref(req);
    return rc;
}

int hub_dpsdev_service_status(struct hub_dpsdev_service *svc, const char *id_scope,
                              const char *registration_id, const char *operation_id,
                              struct hub_dpsdev_answer *out, struct hub_err *err)
{
    memset(out, 0, sizeof(*out));
    char *body = NULL;
    int64_t now = svc_now_ms(svc);
    pthread_mutex_lock(&svc->lock);
    for (size_t i = 0; i < svc->op_count; i++) {
        struct op *o = &svc->ops[i];
        /* The operation id is the secret that guards this answer. */
        if (o->body == NULL ||
            !hub_ct_equal(o->id, strlen(o->id), operation_id, strlen(operation_id)))
            continue;
        if (o->expires_ms > now && strcmp(o->id_scope, id_scope) == 0 &&
            strcmp(o->registration_id, registration_id) == 0)
            body = strdup(o->body);
        else if (o->expires_ms <= now) {
            free(o->body);
            memset(o, 0, sizeof(*o));
        }
        break;
    }
    pthread_mutex_unlock(&svc->lock);
    if (body == NULL)
        return answer_error(svc, HUB_DPSDEV_R_OPERATION_UNKNOWN, out, err);
    out->status = 200;
    out->reason = HUB_DPSDEV_R_OK;
    out->body = body;
    return 0;
}
