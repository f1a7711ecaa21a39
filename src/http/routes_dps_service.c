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

/* The query body; 0, or -1 after a reply. */
static int query_body_check(struct hub_http_request *r)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(r->req);
    size_t len = evbuffer_get_length(in);
    const char *data = len > 0 ? (const char *)evbuffer_pullup(in, -1) : NULL;
    json_error_t jerr;
    json_t *body = data != NULL ? json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr) : NULL;
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
    if (r->segment_count != 2) {
        /* POST /enrollments (bulk operation) and deeper paths. */
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
