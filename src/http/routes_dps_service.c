/*
 * The provisioning service API (issue 8 §1; Azure DPS service API
 * 2021-10-01 as azure-iot-provisioning-service calls it, reference §7). DPS
 * policy tokens only (hub_http__authorize_dps): a hub policy's token is
 * refused here, and a DPS token opens none of the hub's routes.
 *
 *   PUT    /enrollmentGroups/{id}                       EnrollmentWrite
 *   GET    /enrollmentGroups/{id}                       EnrollmentRead
 *   DELETE /enrollmentGroups/{id}                       EnrollmentWrite
 *   POST   /enrollmentGroups/query                      EnrollmentRead
 *   POST   /enrollmentGroups/{id}/attestationmechanism  EnrollmentRead
 *   (the same five on /enrollments/{registrationId})
 *   POST   /enrollments  (bulk operation)               EnrollmentWrite
 *   GET    /registrations/{registrationId}              RegistrationStatusRead
 *   DELETE /registrations/{registrationId}              RegistrationStatusWrite
 *   POST   /registrations/{enrollmentGroupId}/query     RegistrationStatusRead
 *
 * The collection names match ASCII case-insensitively: the Node SDK sends
 * "/enrollmentgroups/{id}/attestationmechanism" in lower case.
 *
 * PUT creates or replaces and answers 200 with the stored record (Azure
 * answers 200 for both); If-Match (absent or "*": unconditional, else the
 * etag) is honoured on PUT and DELETE, 412 on mismatch. Answers with one
 * record carry its etag in an ETag header. DELETE answers 204.
 *
 * Query: body {"query":"*"} or {"query":"SELECT * FROM <anything>"} (no
 * WHERE: hubd filters nothing, and says so with a 400 rather than answer a
 * filter it ignored). The answer is a JSON array, in id order, at most
 * x-ms-max-item-count items (default QUERY_PAGE_DEFAULT). When more remain,
 * x-ms-continuation is the id of the page's last item and the next page
 * starts after it; the header is absent after the last page (Node sets
 * hasMoreResults on its mere presence). An id cursor, not an offset: a record
 * created or deleted between two pages shifts nothing already returned.
 * x-ms-item-type is "enrollmentGroup", "enrollment" or "deviceRegistration".
 *
 * Errors this file decides are answered in the DPS shape
 * {"errorCode":<status*1000+1>,"trackingId":..,"message":..,"timestampUtc":..}
 * (Azure's codes are six digits led by the status; hubd does not claim
 * Azure's finer sub-codes) and logged by reply.c's hub_http__log_refused.
 * Authorization refusals (401/403) come from authorize.c in the hub shape;
 * the SDK maps errors by status alone.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "auth/auth.h"
#include "common/log.h"
#include "common/util.h"
#include "dps/dps.h"
#include "http/http_int.h"

/* Azure's default page for these queries is not documented; 100 keeps one
 * answer small while listing a test fleet in one go. */
#define QUERY_PAGE_DEFAULT 100
#define QUERY_PAGE_MAX     1000
/* A query text longer than this is not "SELECT * FROM x". */
#define QUERY_TEXT_MAX 256

/* ---- replies in the DPS shape ------------------------------------------------ */

static void reply_dps_error(struct hub_http_request *r, int status, const char *reason,
                            const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void reply_dps_error(struct hub_http_request *r, int status, const char *reason,
                            const char *fmt, ...)
{
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    char tracking[HUB_HTTP_TRACKING_SIZE];
    hub_http__log_refused(r, status, reason, text, tracking);
    char stamp[HUB_TIME_ISO_LEN];
    hub_time_iso8601(time(NULL), stamp);

    json_t *body = json_pack("{s:i, s:s, s:s, s:s}", "errorCode", status * 1000 + 1, "trackingId",
                             tracking, "message", text, "timestampUtc", stamp);
    hub_http__reply_json(r, status, body);
}

/* Status for a hub_err of the dps layer: its input checks are the client's
 * fault (400), the rest are named. */
static int status_of(int code)
{
    switch (code) {
    case HUB_E_NOT_FOUND:
        return 404;
    case HUB_E_EXISTS:
        return 409;
    case HUB_E_ETAG_MISMATCH:
        return 412;
    case HUB_E_TOO_LARGE:
        return 413;
    case HUB_E_UNAUTHORIZED:
        return 401;
    case HUB_E_FORBIDDEN:
    case HUB_E_LIMIT:
        return 403;
    case HUB_E_IO:
    case HUB_E_BUSY:
        /* The store cannot write now; the same request succeeds later
         * (reply.c's reasoning). */
        return 503;
    case HUB_E_NOMEM:
    case HUB_E_STORE:
    case HUB_E_INTERNAL:
    case HUB_E_CRYPTO:
        return 500;
    default:
        return 400;
    }
}

static void reply_err(struct hub_http_request *r, const struct hub_err *err)
{
    reply_dps_error(r, status_of(err->code), hub_err_name(err->code), "%s", err->msg);
}

static void add_etag(struct hub_http_request *r, const char *etag)
{
    char quoted[HUB_ETAG_SIZE + 2];
    snprintf(quoted, sizeof(quoted), "\"%s\"", etag);
    evhttp_add_header(evhttp_request_get_output_headers(r->req), "ETag", quoted);
}

static void reply_body(struct hub_http_request *r, json_t *body)
{
    if (body == NULL) {
        reply_dps_error(r, 500, "NOMEM", "out of memory building the answer");
        return;
    }
    hub_http__reply_json(r, 200, body);
}

/* ---- the resources ----------------------------------------------------------- */

/* One collection of the API: its path name and the rights it takes. */
struct collection {
    const char *name;       /* first path segment, matched case-insensitively */
    enum hub_dps_kind kind; /* enrollments only */
    bool registrations;     /* /registrations: records, not enrollments */
    unsigned read, write;   /* HUB_AUTH_PERM_DPS_* */
    const char *item_type;  /* x-ms-item-type of its query */
    const char *log_kind;   /* kind= in change logs */
};

static const struct collection collections[] = {
    {"enrollmentGroups", HUB_DPS_GROUP, false, HUB_AUTH_PERM_DPS_ENROLLMENT_READ,
     HUB_AUTH_PERM_DPS_ENROLLMENT_WRITE, "enrollmentGroup", "group"},
    {"enrollments", HUB_DPS_INDIVIDUAL, false, HUB_AUTH_PERM_DPS_ENROLLMENT_READ,
     HUB_AUTH_PERM_DPS_ENROLLMENT_WRITE, "enrollment", "individual"},
    {"registrations", HUB_DPS_GROUP, true, HUB_AUTH_PERM_DPS_REGISTRATION_READ,
     HUB_AUTH_PERM_DPS_REGISTRATION_WRITE, "deviceRegistration", "registration"},
};

static void log_change(struct hub_http_request *r, const char *event, const struct collection *c,
                       const char *id)
{
    hub_log_kv(HUB_LOG_INFO, event, "who", r->who, "peer", r->peer, "kind", c->log_kind, "id", id,
               NULL);
}

static void enrollment_get(struct hub_http_request *r, const struct collection *c, const char *id,
                           bool attestation_only)
{
    struct hub_dps_enrollment e = {0};
    struct hub_err err = {0};
    if (hub_dps_enrollment_get(r->env->dps, c->kind, id, &e, &err) != 0) {
        reply_err(r, &err);
        return;
    }
    json_t *json = hub_dps_enrollment_json_new(&e);
    if (json != NULL && attestation_only) {
        /* POST .../attestationmechanism: the AttestationMechanism alone. */
        json_t *att = json_incref(json_object_get(json, "attestation"));
        json_decref(json);
        json = att;
    } else {
        add_etag(r, e.etag);
    }
    hub_dps_enrollment_clear(&e);
    reply_body(r, json);
}

static void enrollment_put(struct hub_http_request *r, const struct collection *c, const char *id)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(r->req);
    size_t len = evbuffer_get_length(in);
    if (len == 0) {
        reply_dps_error(r, 400, "BAD_JSON", "request body is empty (an %s JSON object is needed)",
                        c->kind == HUB_DPS_GROUP ? "EnrollmentGroup" : "IndividualEnrollment");
        return;
    }
    const char *data = (const char *)evbuffer_pullup(in, -1);
    struct hub_dps_enrollment in_rec = {0}, out = {0};
    struct hub_err err = {0};
    if (data == NULL) {
        reply_dps_error(r, 500, "NOMEM", "out of memory reading the body");
        return;
    }
    if (hub_dps_enrollment_parse(c->kind, id, data, len, &in_rec, &err) != 0) {
        /* The parser names the field; tell the client exactly that. */
        reply_err(r, &err);
        return;
    }
    char if_match[HUB_ETAG_SIZE + 8];
    const char *cond = hub_http__if_match(r, if_match, sizeof(if_match)) ? if_match : NULL;
    bool created = false;
    int rc = hub_dps_enrollment_put(r->env->dps, &in_rec, cond, &out, &created, &err);
    hub_dps_enrollment_clear(&in_rec);
    if (rc != 0) {
        reply_err(r, &err);
        return;
    }
    log_change(r, created ? "dps_enrollment_created" : "dps_enrollment_updated", c, out.id);
    add_etag(r, out.etag);
    json_t *json = hub_dps_enrollment_json_new(&out);
    hub_dps_enrollment_clear(&out);
    reply_body(r, json);
}

static void record_delete(struct hub_http_request *r, const struct collection *c, const char *id)
{
    char if_match[HUB_ETAG_SIZE + 8];
    const char *cond = hub_http__if_match(r, if_match, sizeof(if_match)) ? if_match : NULL;
    struct hub_err err = {0};
    int rc = c->registrations ? hub_dps_registration_delete(r->env->dps, id, cond, &err)
                              : hub_dps_enrollment_delete(r->env->dps, c->kind, id, cond, &err);
    if (rc != 0) {
        reply_err(r, &err);
        return;
    }
    log_change(r, c->registrations ? "dps_registration_deleted" : "dps_enrollment_deleted", c, id);
    hub_http__reply_empty(r, 204);
}

static void registration_get(struct hub_http_request *r, const char *id)
{
    struct hub_dps_registration reg;
    struct hub_err err = {0};
    if (hub_dps_registration_get(r->env->dps, id, &reg, &err) != 0) {
        reply_err(r, &err);
        return;
    }
    add_etag(r, reg.etag);
    reply_body(r, hub_dps_registration_json_new(&reg));
}

/* ---- queries ------------------------------------------------------------------ */

/* Skips ASCII blanks. */
static const char *skip_ws(const char *s)
{
    while (*s != '\0' && isspace((unsigned char)*s))
        s++;
    return s;
}

/* Matches keyword `kw` (case-insensitive) followed by a blank or the end. */
static const char *keyword(const char *s, const char *kw)
{
    size_t n = strlen(kw);
    if (strncasecmp(s, kw, n) != 0 || (s[n] != '\0' && !isspace((unsigned char)s[n])))
        return NULL;
    return skip_ws(s + n);
}

/* "*" or "SELECT * FROM <name>": what hubd answers (every record). Pure. */
static bool query_text_ok(const char *q)
{
    q = skip_ws(q);
    if (*q == '*')
        return *skip_ws(q + 1) == '\0';
    if ((q = keyword(q, "select")) == NULL || *q != '*')
        return false;
    if ((q = keyword(skip_ws(q + 1), "from")) == NULL || *q == '\0')
        return false;
    while (*q != '\0' && !isspace((unsigned char)*q))
        q++;
    return *skip_ws(q) == '\0';
}

/* Page size and start from the request headers; 0, or -1 after a reply. */
static int page_args(struct hub_http_request *r, size_t *limit, const char **after)
{
    *limit = QUERY_PAGE_DEFAULT;
    *after = NULL;
    const char *max = hub_http__header(r, "x-ms-max-item-count");
    if (max != NULL) {
        char *end = NULL;
        long n = strtol(max, &end, 10);
        if (end == max || *skip_ws(end) != '\0' || n < 1 || n > QUERY_PAGE_MAX) {
            reply_dps_error(r, 400, "BAD_PAGE_SIZE",
                            "x-ms-max-item-count must be a number from 1 to %d", QUERY_PAGE_MAX);
            return -1;
        }
        *limit = (size_t)n;
    }
    const char *cont = hub_http__header(r, "x-ms-continuation");
    if (cont != NULL && cont[0] != '\0') {
        struct hub_err err = {0};
        if (hub_dps_id_check(cont, &err) != 0) {
            reply_dps_error(r, 400, "BAD_CONTINUATION",
                            "malformed x-ms-continuation (the id after which the page starts)");
            return -1;
        }
        *after = cont;
    }
    return 0;
}

/* The request body as JSON, or NULL when it is empty or not JSON: the
 * callers refuse that in the DPS shape with their own words (unlike
 * hub_http__body_json, which answers in the hub's). */
static json_t *body_json_loose(struct hub_http_request *r)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(r->req);
    size_t len = evbuffer_get_length(in);
    const char *data = len > 0 ? (const char *)evbuffer_pullup(in, -1) : NULL;
    json_error_t jerr;
    return data != NULL ? json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr) : NULL;
}

/* The query body; 0, or -1 after a reply. */
static int query_body_check(struct hub_http_request *r)
{
    json_t *body = body_json_loose(r);
    json_t *q = json_object_get(body, "query");
    int rc = 0;
    if (!json_is_string(q)) {
        reply_dps_error(r, 400, "BAD_QUERY", "body must be {\"query\":\"SELECT * FROM ...\"}");
        rc = -1;
    } else if (json_string_length(q) > QUERY_TEXT_MAX || !query_text_ok(json_string_value(q))) {
        reply_dps_error(r, 400, "BAD_QUERY",
                        "only \"*\" and \"SELECT * FROM <collection>\" queries are supported "
                        "(got \"%.100s\")",
                        json_string_value(q));
        rc = -1;
    }
    json_decref(body);
    return rc;
}

/* Appends records [start, count) to a page of at most `limit`; sets the
 * continuation when more remain. json_of(i) builds record i. */
static void reply_page(struct hub_http_request *r, const struct collection *c, size_t start,
                       size_t count, size_t limit, json_t *(*json_of)(const void *, size_t),
                       const void *list, const char *(*id_of)(const void *, size_t))
{
    json_t *arr = json_array();
    if (arr == NULL) {
        reply_dps_error(r, 500, "NOMEM", "out of memory building the answer");
        return;
    }
    size_t i = start;
    for (; i < count && json_array_size(arr) < limit; i++) {
        if (json_array_append_new(arr, json_of(list, i)) != 0) {
            json_decref(arr);
            reply_dps_error(r, 500, "NOMEM", "out of memory building the answer");
            return;
        }
    }
    struct evkeyvalq *headers = evhttp_request_get_output_headers(r->req);
    evhttp_add_header(headers, "x-ms-item-type", c->item_type);
    if (i < count && i > 0)
        evhttp_add_header(headers, "x-ms-continuation", id_of(list, i - 1));
    hub_http__reply_json(r, 200, arr);
}

static json_t *enrollment_json_at(const void *list, size_t i)
{
    return hub_dps_enrollment_json_new(&((const struct hub_dps_enrollment_list *)list)->items[i]);
}
static const char *enrollment_id_at(const void *list, size_t i)
{
    return ((const struct hub_dps_enrollment_list *)list)->items[i].id;
}
static json_t *registration_json_at(const void *list, size_t i)
{
    return hub_dps_registration_json_new(
        &((const struct hub_dps_registration_list *)list)->items[i]);
}
static const char *registration_id_at(const void *list, size_t i)
{
    return ((const struct hub_dps_registration_list *)list)->items[i].registration_id;
}

/* `group_id`: /registrations/{group}/query; NULL for enrollment queries. */
static void run_query(struct hub_http_request *r, const struct collection *c, const char *group_id)
{
    size_t limit;
    const char *after;
    if (query_body_check(r) != 0 || page_args(r, &limit, &after) != 0)
        return;
    struct hub_err err = {0};
    if (group_id != NULL && hub_dps_id_check(group_id, &err) != 0) {
        reply_err(r, &err);
        return;
    }
    if (c->registrations) {
        struct hub_dps_registration_list *list = NULL;
        if (hub_dps_registration_list1(r->env->dps, group_id, &list, &err) != 0) {
            reply_err(r, &err);
            return;
        }
        size_t start = 0;
        while (after != NULL && start < list->count &&
               strcmp(list->items[start].registration_id, after) <= 0)
            start++;
        reply_page(r, c, start, list->count, limit, registration_json_at, list, registration_id_at);
        hub_dps_registration_list_free(list);
        return;
    }
    struct hub_dps_enrollment_list *list = NULL;
    if (hub_dps_enrollment_list1(r->env->dps, c->kind, &list, &err) != 0) {
        reply_err(r, &err);
        return;
    }
    size_t start = 0;
    /* Ids are ordered bytewise (the store's order), as strcmp compares. */
    while (after != NULL && start < list->count && strcmp(list->items[start].id, after) <= 0)
        start++;
    reply_page(r, c, start, list->count, limit, enrollment_json_at, list, enrollment_id_at);
    hub_dps_enrollment_list_free(list);
}

/* ---- the bulk operation ----------------------------------------------------------- */

/*
 * POST /enrollments, azure-iot-provisioning-service's
 * runBulkEnrollmentOperation (Azure "Individual Enrollment - Run Bulk
 * Operation"), EnrollmentWrite:
 *
 *   request  {"mode": "create" | "update" | "updateIfMatchETag" | "delete",
 *             "enrollments": [IndividualEnrollment, ...]}       1..BULK_MAX
 *   answer   200 {"isSuccessful": bool,
 *                 "errors": [{"registrationId", "errorCode", "errorStatus"}]}
 *
 * Each enrollment is applied on its own, in array order (one failing stops
 * none of the others, and a registrationId given twice is applied twice);
 * isSuccessful is true when `errors` is empty. errorCode is the status the
 * single-enrollment route would have answered, in that route's
 * status*1000+1 form, errorStatus its message. The request as a whole is
 * refused (DPS error shape, nothing applied) only when it is malformed: not
 * JSON, unknown mode, `enrollments` not an array of 1..BULK_MAX.
 *
 *   create             each must not exist (409)
 *   update             create or replace, unconditionally (etag ignored)
 *   updateIfMatchETag  replace only when the element's etag is the stored
 *                      one (412; also when it does not exist); etag required
 *   delete             only registrationId (and etag) are read; an etag,
 *                      when given and not "*", must match (412); 404 if none
 *
 * The mode matches ASCII case-insensitively: the Node SDK's type spells it
 * "updateIfMatchEtag", the REST reference and the Java SDK
 * "updateIfMatchETag", .NET's enum converter may send "UpdateIfMatchETag".
 */

/* Azure's REST reference says "maximum of 10 enrollments" (older SDK texts
 * say 10,000). hubd applies the list on the HTTP worker's thread, one
 * durable store commit per element, so the bound keeps a worker from
 * stalling its other connections: 100 is ten times Azure's documented
 * maximum and still a few hundred milliseconds at worst. */
#define BULK_MAX 100
/* An id echoed back in `errors` (it may be invalid, hence any length). */
#define BULK_ECHO_ID_MAX 256

enum bulk_mode { BULK_CREATE, BULK_UPDATE, BULK_UPDATE_IF_MATCH, BULK_DELETE };

static const struct {
    const char *name;
    enum bulk_mode mode;
} bulk_modes[] = {
    {"create", BULK_CREATE},
    {"update", BULK_UPDATE},
    {"updateIfMatchETag", BULK_UPDATE_IF_MATCH},
    {"delete", BULK_DELETE},
};

/* The outcome of one element: status 0 = applied. */
struct bulk_outcome {
    int status;
    const char *reason; /* log reason= */
    char text[512];     /* errorStatus */
};

static int bulk_fail(struct bulk_outcome *o, int status, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int bulk_fail(struct bulk_outcome *o, int status, const char *reason, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(o->text, sizeof(o->text), fmt, ap);
    va_end(ap);
    o->status = status;
    o->reason = reason;
    return -1;
}

static int bulk_fail_err(struct bulk_outcome *o, int status, const struct hub_err *err)
{
    return bulk_fail(o, status, hub_err_name(err->code), "%s", err->msg);
}

/* The element's etag, quotes stripped; NULL when absent, empty or "*". */
static const char *bulk_etag(json_t *elem, char *out, size_t cap)
{
    const char *v = json_string_value(json_object_get(elem, "etag"));
    if (v == NULL)
        return NULL;
    size_t n = strlen(v);
    if (n >= 2 && v[0] == '"' && v[n - 1] == '"') {
        v++;
        n -= 2;
    }
    /* One too long to be an etag of ours is cut: it still mismatches. */
    if (n >= cap)
        n = cap - 1;
    memcpy(out, v, n);
    out[n] = '\0';
    return n == 0 || strcmp(out, "*") == 0 ? NULL : out;
}

/* A JSON string of `s`, whose bytes may not be UTF-8 (a lower layer's
 * message may quote an id cut mid-character): non-ASCII bytes become '?'
 * then. NULL on OOM. */
static json_t *json_text_new(const char *s)
{
    json_t *j = json_string(s);
    if (j != NULL)
        return j;
    char safe[sizeof(((struct bulk_outcome *)0)->text)];
    size_t i = 0;
    for (; s[i] != '\0' && i + 1 < sizeof(safe); i++)
        safe[i] = (unsigned char)s[i] < 0x80 ? s[i] : '?';
    safe[i] = '\0';
    return json_string(safe);
}

/* Applies `mode` to one element whose registrationId `id` passed the syntax
 * check. 0, or -1 with *o filled. Logs each change as the single routes do. */
static int bulk_apply(struct hub_http_request *r, enum bulk_mode mode, json_t *elem, const char *id,
                      struct bulk_outcome *o)
{
    const struct collection *c = &collections[1]; /* enrollments */
    char etag_buf[HUB_ETAG_SIZE + 8];
    const char *etag = bulk_etag(elem, etag_buf, sizeof(etag_buf));
    struct hub_err err = {0};
    if (mode == BULK_DELETE) {
        if (hub_dps_enrollment_delete(r->env->dps, HUB_DPS_INDIVIDUAL, id, etag, &err) != 0)
            return bulk_fail_err(o, status_of(err.code), &err);
        log_change(r, "dps_enrollment_deleted", c, id);
        return 0;
    }
    if (mode == BULK_UPDATE_IF_MATCH && etag == NULL)
        return bulk_fail(o, 400, "NO_ETAG", "updateIfMatchETag needs the enrollment's etag");
    char *text = json_dumps(elem, JSON_COMPACT);
    if (text == NULL)
        return bulk_fail(o, 500, "NOMEM", "out of memory");
    struct hub_dps_enrollment in = {0}, out = {0};
    int rc = hub_dps_enrollment_parse(HUB_DPS_INDIVIDUAL, id, text, strlen(text), &in, &err);
    free(text);
    if (rc != 0)
        return bulk_fail_err(o, status_of(err.code), &err);
    bool created = mode == BULK_CREATE;
    rc = mode == BULK_CREATE
             ? hub_dps_enrollment_create(r->env->dps, &in, &out, &err)
             : hub_dps_enrollment_put(r->env->dps, &in, mode == BULK_UPDATE_IF_MATCH ? etag : NULL,
                                      &out, &created, &err);
    hub_dps_enrollment_clear(&in);
    if (rc != 0) {
        hub_dps_enrollment_clear(&out);
        return bulk_fail_err(o, status_of(err.code), &err);
    }
    log_change(r, created ? "dps_enrollment_created" : "dps_enrollment_updated", c, out.id);
    hub_dps_enrollment_clear(&out);
    return 0;
}

/* One element, checked then applied; appends to `errors` on failure.
 * 0, or -1 when `errors` could not grow (out of memory). */
static int bulk_one(struct hub_http_request *r, enum bulk_mode mode, size_t index, json_t *elem,
                    json_t *errors)
{
    struct bulk_outcome o = {0};
    const char *id = json_string_value(json_object_get(elem, "registrationId"));
    struct hub_err err = {0};
    if (!json_is_object(elem))
        bulk_fail(&o, 400, "BAD_JSON", "enrollments[%zu] is not an IndividualEnrollment object",
                  index);
    else if (id == NULL)
        bulk_fail(&o, 400, "NO_ID", "enrollments[%zu] has no registrationId string", index);
    else if (hub_dps_id_check(id, &err) != 0)
        bulk_fail_err(&o, 400, &err);
    else
        bulk_apply(r, mode, elem, id, &o);
    if (o.status == 0)
        return 0;

    char echo[BULK_ECHO_ID_MAX + 1];
    const char *src = id != NULL ? id : "";
    size_t n = strlen(src);
    if (n > BULK_ECHO_ID_MAX) {
        /* Cut before a character the bound splits (the answer is JSON). */
        n = BULK_ECHO_ID_MAX;
        while (n > 0 && ((unsigned char)src[n] & 0xC0) == 0x80)
            n--;
    }
    memcpy(echo, src, n);
    echo[n] = '\0';
    struct hub_log_line line;
    hub_log_begin(&line, o.status >= 500 ? HUB_LOG_ERROR : HUB_LOG_WARN, "dps_bulk_item_refused");
    hub_log_str(&line, "who", r->who);
    hub_log_str(&line, "peer", r->peer);
    hub_log_int(&line, "index", (long long)index);
    hub_log_mem(&line, "id", echo, strlen(echo));
    hub_log_int(&line, "status", o.status);
    hub_log_str(&line, "reason", o.reason);
    hub_log_str(&line, "detail", o.text);
    hub_log_end(&line);
    return json_array_append_new(
        errors, json_pack("{s:o, s:i, s:o}", "registrationId", json_text_new(echo), "errorCode",
                          o.status * 1000 + 1, "errorStatus", json_text_new(o.text)));
}

static void bulk_run(struct hub_http_request *r)
{
    json_t *body = body_json_loose(r);
    json_t *mode_json = json_object_get(body, "mode");
    json_t *list = json_object_get(body, "enrollments");
    json_t *errors = NULL;
    const char *mode_name = json_string_value(mode_json);
    size_t m = 0;
    while (mode_name != NULL && m < sizeof(bulk_modes) / sizeof(bulk_modes[0]) &&
           strcasecmp(mode_name, bulk_modes[m].name) != 0)
        m++;
    if (!json_is_object(body)) {
        reply_dps_error(r, 400, "BAD_JSON",
                        "body must be {\"mode\":...,\"enrollments\":[...]} (a JSON object)");
    } else if (mode_name == NULL || m == sizeof(bulk_modes) / sizeof(bulk_modes[0])) {
        reply_dps_error(r, 400, "BAD_BULK_MODE",
                        "mode must be \"create\", \"update\", \"updateIfMatchETag\" or \"delete\"");
    } else if (!json_is_array(list) || json_array_size(list) == 0 ||
               json_array_size(list) > BULK_MAX) {
        reply_dps_error(r, 400, "BAD_BULK_SIZE",
                        "enrollments must be an array of 1 to %d IndividualEnrollment objects "
                        "(got %zu)",
                        BULK_MAX, json_array_size(list));
    } else if ((errors = json_array()) == NULL) {
        reply_dps_error(r, 500, "NOMEM", "out of memory");
    } else {
        size_t i;
        json_t *elem;
        int rc = 0;
        json_array_foreach(list, i, elem)
        {
            if (rc == 0)
                rc = bulk_one(r, bulk_modes[m].mode, i, elem, errors);
        }
        char count[24], failed[24];
        snprintf(count, sizeof(count), "%zu", json_array_size(list));
        snprintf(failed, sizeof(failed), "%zu", json_array_size(errors));
        hub_log_kv(HUB_LOG_INFO, "dps_bulk_done", "who", r->who, "peer", r->peer, "mode",
                   bulk_modes[m].name, "count", count, "failed", failed, NULL);
        if (rc != 0) {
            /* Some elements were applied; the client cannot learn which
             * failed, so say the answer is lost rather than claim success. */
            reply_dps_error(r, 500, "NOMEM", "out of memory building the answer");
        } else {
            json_t *ans = json_pack("{s:b, s:O}", "isSuccessful", json_array_size(errors) == 0,
                                    "errors", errors);
            reply_body(r, ans);
        }
    }
    json_decref(errors);
    json_decref(body);
}

/* ---- routing ------------------------------------------------------------------ */

static void not_allowed(struct hub_http_request *r)
{
    reply_dps_error(r, 405, "BAD_METHOD", "%s is not allowed on %s", r->method_name, r->path);
}

/* /enrollmentGroups/... and /enrollments/... */
static void route_enrollments(struct hub_http_request *r, const struct collection *c)
{
    if (r->segment_count == 2 && strcmp(r->segments[1], "query") == 0 &&
        r->method == EVHTTP_REQ_POST) {
        if (hub_http__authorize_dps(r, c->read) == 0)
            run_query(r, c, NULL);
        return;
    }
    if (r->segment_count == 3 && strcasecmp(r->segments[2], "attestationmechanism") == 0) {
        if (r->method != EVHTTP_REQ_POST) {
            not_allowed(r);
            return;
        }
        if (hub_http__authorize_dps(r, c->read) == 0)
            enrollment_get(r, c, r->segments[1], true);
        return;
    }
    if (r->segment_count == 1 && c->kind == HUB_DPS_INDIVIDUAL && r->method == EVHTTP_REQ_POST) {
        /* POST /enrollments: the bulk operation (the Node SDK adds a
         * trailing slash, which carries no segment). */
        if (hub_http__authorize_dps(r, c->write) == 0)
            bulk_run(r);
        return;
    }
    if (r->segment_count != 2) {
        /* Other methods on the collection, the groups' bulk operation (not
         * served: no SDK hubd targets calls it), deeper paths. */
        reply_dps_error(r, r->segment_count == 1 ? 405 : 404,
                        r->segment_count == 1 ? "BAD_METHOD" : "NO_ROUTE", "%s %s is not supported",
                        r->method_name, r->path);
        return;
    }
    const char *id = r->segments[1];
    switch (r->method) {
    case EVHTTP_REQ_GET:
        if (hub_http__authorize_dps(r, c->read) == 0)
            enrollment_get(r, c, id, false);
        return;
    case EVHTTP_REQ_PUT:
        if (hub_http__authorize_dps(r, c->write) == 0)
            enrollment_put(r, c, id);
        return;
    case EVHTTP_REQ_DELETE:
        if (hub_http__authorize_dps(r, c->write) == 0)
            record_delete(r, c, id);
        return;
    default:
        not_allowed(r);
        return;
    }
}

/* /registrations/... */
static void route_registrations(struct hub_http_request *r, const struct collection *c)
{
    if (r->segment_count == 3 && strcmp(r->segments[2], "query") == 0) {
        if (r->method != EVHTTP_REQ_POST) {
            not_allowed(r);
            return;
        }
        if (hub_http__authorize_dps(r, c->read) == 0)
            run_query(r, c, r->segments[1]);
        return;
    }
    if (r->segment_count != 2) {
        reply_dps_error(r, 404, "NO_ROUTE", "%s %s is not supported", r->method_name, r->path);
        return;
    }
    const char *id = r->segments[1];
    switch (r->method) {
    case EVHTTP_REQ_GET:
        if (hub_http__authorize_dps(r, c->read) == 0)
            registration_get(r, id);
        return;
    case EVHTTP_REQ_DELETE:
        if (hub_http__authorize_dps(r, c->write) == 0)
            record_delete(r, c, id);
        return;
    default:
        not_allowed(r);
        return;
    }
}

int hub_http__route_dps_service(struct hub_http_request *r)
{
    if (r->env->dps == NULL || r->segment_count < 1)
        return 0;
    const struct collection *c = NULL;
    for (size_t i = 0; i < sizeof(collections) / sizeof(collections[0]); i++)
        if (strcasecmp(r->segments[0], collections[i].name) == 0)
            c = &collections[i];
    if (c == NULL)
        return 0;
    if (c->registrations)
        route_registrations(r, c);
    else
        route_enrollments(r, c);
    return 1;
}
