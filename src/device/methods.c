/*
 * device: direct methods (reference §2 "Direct methods", §4 "Direct method").
 *
 *   service thread          worker k (hash of the call)        device's worker
 *   --------------          ---------------------------        ---------------
 *   invoke: check, copy
 *   device subscribed? ------------------------------------->  send PUBLISH
 *     no: post ----------> wait: linked in ep->waiting,          $iothub/methods/POST/{name}/?$rid=
 *                          timer at the connect deadline;      timer at the response deadline
 *                          a SUBSCRIBE wakes it early ------>  (same as above)
 *                          deadline: NOT_ONLINE                response (rid) -> OK
 *                                                              timer -> TIMEOUT
 *                                                              close -> DISCONNECTED / SHUTDOWN
 *
 * A call has one owner at a time (device_int.h), so it needs no lock; the
 * only shared structure is the endpoint's list of waiting calls (wait_mu).
 * The $rid is a per-connection counter: a response can only match a request
 * sent on the same connection, and a reconnect never sees an old rid.
 *
 * Why a waiting call sits on a worker rather than on the device's
 * connection: the device may not be connected at all yet, and when it
 * connects it may land on any worker.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <jansson.h>

#include "common/log.h"
#include "device/device_int.h"
#include "net/net.h"
#include "registry/registry.h"

/* "$iothub/methods/POST/" + name + "/?$rid=" + 20 digits + NUL */
#define METHOD_TOPIC_MAX (32 + HUB_DEVICE_METHOD_NAME_MAX + 24)

const char *hub_device_method_outcome_name(enum hub_device_method_outcome o)
{
    switch (o) {
    case HUB_DEVICE_METHOD_OK:
        return "OK";
    case HUB_DEVICE_METHOD_NOT_ONLINE:
        return "DEVICE_NOT_ONLINE";
    case HUB_DEVICE_METHOD_TIMEOUT:
        return "TIMEOUT";
    case HUB_DEVICE_METHOD_DISCONNECTED:
        return "DISCONNECTED";
    case HUB_DEVICE_METHOD_SHUTDOWN:
        return "SHUTDOWN";
    case HUB_DEVICE_METHOD_RESPONSE_TOO_LARGE:
        return "RESPONSE_TOO_LARGE";
    }
    return "UNKNOWN";
}

/* ---- completion ------------------------------------------------------------ */

/* Calls done exactly once and frees the call. The caller released the
 * call's timer and connection reference already. */
static void call_finish(struct hub_device__method_call *call,
                        enum hub_device_method_outcome outcome, int status, const uint8_t *payload,
                        size_t payload_len)
{
    struct hub_log_line line;
    hub_log_begin(&line, HUB_LOG_INFO, "method_done"); /* every outcome is the device's doing */
    hub_log_str(&line, "device", call->device_id);
    hub_log_str(&line, "method", call->name);
    if (call->rid != 0)
        hub_log_uint(&line, "rid", call->rid);
    hub_log_str(&line, "outcome", hub_device_method_outcome_name(outcome));
    if (outcome == HUB_DEVICE_METHOD_OK)
        hub_log_int(&line, "status", status);
    hub_log_end(&line);

    struct hub_device_method_result res = {
        .outcome = outcome,
        .status = outcome == HUB_DEVICE_METHOD_OK ? status : 0,
        .payload = payload_len > 0 ? payload : NULL,
        .payload_len = payload_len,
    };
    call->done(call->done_arg, &res);
    free(call->payload);
    free(call);
}

static void call_fail(struct hub_device__method_call *call, enum hub_device_method_outcome outcome)
{
    call_finish(call, outcome, 0, NULL, 0);
}

/* The server of worker `index`, if it is serving (not draining). Only that
 * worker's thread may call this: it is the one that clears the slot. */
static struct hub_device_server *serving_server(struct hub_device_endpoint *ep, size_t index)
{
    struct hub_device_server *s = ep->slots[index].server;
    return s != NULL && !s->draining ? s : NULL;
}

/* ---- routing ----------------------------------------------------------------- */

static void dispatch(struct hub_device__method_call *call);

static void on_call_at_conn(void *arg);
static void on_wait_start(void *arg);
static void on_wait_timer(evutil_socket_t fd, short what, void *arg);

/* Hands the call to the worker that will keep it while it waits, or fails
 * it when no worker takes work any more. */
static void wait_post(struct hub_device__method_call *call)
{
    struct hub_device_endpoint *ep = call->ep;
    size_t first = call->wait_index;
    for (size_t i = 0; i < ep->slot_count; i++) {
        call->wait_index = (first + i) % ep->slot_count;
        if (hub_device__post(ep, call->wait_index, on_wait_start, call) == 0)
            return;
    }
    call_fail(call, HUB_DEVICE_METHOD_SHUTDOWN);
}

/* Sends the call to c's worker (taking over the reference on c). */
static void conn_post(struct hub_device__method_call *call, struct hub_device_conn *c)
{
    call->conn = c;
    if (hub_device__post(call->ep, c->worker_index, on_call_at_conn, call) == 0)
        return;
    call->conn = NULL;
    hub_device__conn_unref(c);
    call_fail(call, HUB_DEVICE_METHOD_SHUTDOWN);
}

/* Any thread; the call owns no timer and no connection. */
static void dispatch(struct hub_device__method_call *call)
{
    struct hub_device_endpoint *ep = call->ep;
    struct hub_device_conn *c =
        hub_device__dir_get1_subscribed(ep->dir, call->device_id, HUB_DEVICE_SUB_METHODS);
    if (c != NULL) {
        conn_post(call, c);
        return;
    }
    if (hub_device__now_ms(ep) >= call->connect_deadline_ms) {
        call_fail(call, HUB_DEVICE_METHOD_NOT_ONLINE);
        return;
    }
    wait_post(call);
}

/* ---- waiting for the device (worker wait_index) -------------------------------- */

static void wait_unlink(struct hub_device_endpoint *ep, struct hub_device__method_call *call)
{
    struct hub_device__method_call **pp = &ep->waiting;
    while (*pp != NULL && *pp != call)
        pp = &(*pp)->next;
    if (*pp == call)
        *pp = call->next;
    call->next = NULL;
}

static void on_wait_start(void *arg)
{
    struct hub_device__method_call *call = arg;
    struct hub_device_endpoint *ep = call->ep;
    struct hub_device_server *s = serving_server(ep, call->wait_index);
    if (s == NULL) {
        call_fail(call, HUB_DEVICE_METHOD_SHUTDOWN);
        return;
    }
    call->timer = evtimer_new(s->worker->base, on_wait_timer, call);
    if (call->timer == NULL) {
        call_fail(call, HUB_DEVICE_METHOD_SHUTDOWN);
        return;
    }
    pthread_mutex_lock(&ep->wait_mu);
    call->next = ep->waiting;
    ep->waiting = call;
    pthread_mutex_unlock(&ep->wait_mu);
    /* The device may have subscribed between dispatch's look-up and the link
     * above (its wake-up found nothing): decide on the next turn. */
    event_active(call->timer, EV_TIMEOUT, 1);
}

/* Deadline, or a wake-up because the device subscribed: decide. */
static void on_wait_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct hub_device__method_call *call = arg;
    struct hub_device_endpoint *ep = call->ep;
    int64_t left = call->connect_deadline_ms - hub_device__now_ms(ep);
    bool serving = serving_server(ep, call->wait_index) != NULL;
    /* Looked up under wait_mu: a SUBSCRIBE marks the session before it
     * takes wait_mu to wake us, so either we see the mark here or it sees
     * the call linked again and wakes it. */
    pthread_mutex_lock(&ep->wait_mu);
    wait_unlink(ep, call);
    struct hub_device_conn *c =
        hub_device__dir_get1_subscribed(ep->dir, call->device_id, HUB_DEVICE_SUB_METHODS);
    bool keep = c == NULL && left > 0 && serving;
    if (keep) {
        call->next = ep->waiting;
        ep->waiting = call;
    }
    pthread_mutex_unlock(&ep->wait_mu);
    if (keep) {
        struct timeval tv = {.tv_sec = (time_t)(left / 1000),
                             .tv_usec = (suseconds_t)(left % 1000) * 1000};
        evtimer_add(call->timer, &tv);
        return;
    }
    event_free(call->timer);
    call->timer = NULL;
    if (c != NULL)
        conn_post(call, c);
    else
        call_fail(call, serving ? HUB_DEVICE_METHOD_NOT_ONLINE : HUB_DEVICE_METHOD_SHUTDOWN);
}

void hub_device__methods_subscribed(struct hub_device_conn *c)
{
    struct hub_device_endpoint *ep = c->ep;
    pthread_mutex_lock(&ep->wait_mu);
    for (struct hub_device__method_call *w = ep->waiting; w != NULL; w = w->next)
        if (strcmp(w->device_id, c->device_id) == 0)
            event_active(w->timer, EV_TIMEOUT, 1); /* runs on w's worker */
    pthread_mutex_unlock(&ep->wait_mu);
}

void hub_device__methods_drain(struct hub_device_endpoint *ep, size_t index)
{
    struct hub_device__method_call *mine = NULL;
    pthread_mutex_lock(&ep->wait_mu);
    struct hub_device__method_call **pp = &ep->waiting;
    while (*pp != NULL) {
        struct hub_device__method_call *w = *pp;
        if (w->wait_index == index) {
            *pp = w->next;
            w->next = mine;
            mine = w;
        } else {
            pp = &w->next;
        }
    }
    pthread_mutex_unlock(&ep->wait_mu);
    while (mine != NULL) {
        struct hub_device__method_call *w = mine;
        mine = w->next;
        w->next = NULL;
        event_free(w->timer);
        w->timer = NULL;
        call_fail(w, HUB_DEVICE_METHOD_SHUTDOWN);
    }
}

/* ---- on the device's connection ------------------------------------------------ */

static void conn_unlink(struct hub_device_conn *c, struct hub_device__method_call *call)
{
    struct hub_device__method_call **pp = &c->methods;
    while (*pp != NULL && *pp != call)
        pp = &(*pp)->next;
    if (*pp == call)
        *pp = call->next;
    call->next = NULL;
}

static void on_response_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct hub_device__method_call *call = arg;
    conn_unlink(call->conn, call);
    event_free(call->timer);
    call->timer = NULL;
    call->conn = NULL;
    call_fail(call, HUB_DEVICE_METHOD_TIMEOUT);
}

/* Publishes the request on c (LIVE, subscribed) and waits for the answer. */
static void send_request(struct hub_device_conn *c, struct hub_device__method_call *call)
{
    char rid[24], topic[METHOD_TOPIC_MAX];
    call->rid = ++c->next_rid;
    snprintf(rid, sizeof(rid), "%" PRIu64, call->rid);
    struct hub_err err = {0};
    int n = hub_iothub_method_topic_build(topic, sizeof(topic), call->name, rid, &err);
    call->timer = n > 0 ? evtimer_new(c->server->worker->base, on_response_timeout, call) : NULL;
    if (call->timer == NULL) { /* the name was checked at invoke: only NOMEM is left */
        call_fail(call, HUB_DEVICE_METHOD_SHUTDOWN);
        return;
    }
    call->conn = c; /* borrowed while linked: the close fails every linked call */
    call->next = c->methods;
    c->methods = call;
    struct timeval tv = {.tv_sec = call->response_timeout_ms / 1000,
                         .tv_usec = (suseconds_t)(call->response_timeout_ms % 1000) * 1000};
    evtimer_add(call->timer, &tv);
    hub_log_kv(HUB_LOG_DEBUG, "method_sent", "device", c->device_id, "method", call->name, "rid",
               rid, NULL);
    if (hub_device__conn_publish0(c, topic, (size_t)n, call->payload, call->payload_len) != 0) {
        conn_unlink(c, call);
        event_free(call->timer);
        call->timer = NULL;
        call->conn = NULL;
        call_fail(call, HUB_DEVICE_METHOD_DISCONNECTED);
    }
}

static void on_call_at_conn(void *arg)
{
    struct hub_device__method_call *call = arg;
    struct hub_device_conn *c = call->conn;
    call->conn = NULL;
    if (serving_server(call->ep, c->worker_index) == NULL)
        call_fail(call, HUB_DEVICE_METHOD_SHUTDOWN);
    else if (c->state == HUB_DEVICE_CONN_LIVE && c->methods_subscribed)
        send_request(c, call);
    else
        dispatch(call); /* closed or unsubscribed meanwhile: maybe it reconnected */
    hub_device__conn_unref(c);
}

/* "123" -> 123; 0 for anything that is not a rid this hub issued. */
static uint64_t parse_rid(struct hub_mqtt_str rid)
{
    if (rid.len == 0 || rid.len > 20)
        return 0;
    uint64_t v = 0;
    for (size_t i = 0; i < rid.len; i++) {
        char ch = rid.ptr[i];
        if (ch < '0' || ch > '9')
            return 0;
        uint64_t d = (uint64_t)(ch - '0');
        if (v > (UINT64_MAX - d) / 10)
            return 0;
        v = v * 10 + d;
    }
    return v;
}

void hub_device__methods_response(struct hub_device_conn *c, const struct hub_mqtt_publish *pub,
                                  const struct hub_iothub_topic *topic)
{
    uint64_t rid = parse_rid(topic->rid);
    struct hub_device__method_call *call = c->methods;
    while (call != NULL && (rid == 0 || call->rid != rid))
        call = call->next;
    if (pub->payload.len > HUB_DEVICE_METHOD_PAYLOAD_MAX) {
        /* Azure caps a method's answer at 128 KiB like its request; the
         * packet limit (mqtt_max_packet_bytes, sized for 256 KiB telemetry)
         * would let twice that through to the service caller. The call it
         * answers fails with that reason; the device, which broke a
         * documented limit, is closed as for an oversized packet. The call
         * leaves the connection's list first, so the close fails the other
         * waiting calls, not this one, which is answered after the close
         * (whose counter and log line come first). */
        if (call != NULL) {
            conn_unlink(c, call);
            event_free(call->timer);
            call->timer = NULL;
            call->conn = NULL;
        }
        char rid_text[HUB_LOG_ESCAPED_MAX];
        hub_log_escape(topic->rid.ptr, topic->rid.len < 32 ? topic->rid.len : 32, rid_text,
                       sizeof(rid_text));
        char detail[HUB_LOG_ESCAPED_MAX + 96];
        snprintf(detail, sizeof(detail),
                 "direct-method answer ($rid=%s) is %zu bytes, over the %d-byte limit", rid_text,
                 pub->payload.len, HUB_DEVICE_METHOD_PAYLOAD_MAX);
        hub_device__conn_close(c, HUB_DEVICE_R_METHOD_RESPONSE_TOO_LARGE, detail);
        if (call != NULL)
            call_finish(call, HUB_DEVICE_METHOD_RESPONSE_TOO_LARGE, 0, NULL, 0);
        return;
    }
    if (call == NULL) {
        /* Late (timed out already) or made up: nobody waits for it. */
        struct hub_log_line line;
        hub_log_begin(&line, HUB_LOG_DEBUG, "method_response_ignored");
        hub_log_str(&line, "device", c->device_id);
        hub_log_mem(&line, "rid", topic->rid.ptr, topic->rid.len);
        hub_log_str(&line, "detail", "no request with this $rid is waiting");
        hub_log_end(&line);
        return;
    }
    conn_unlink(c, call);
    event_free(call->timer);
    call->timer = NULL;
    call->conn = NULL;
    call_finish(call, HUB_DEVICE_METHOD_OK, topic->status, pub->payload.ptr, pub->payload.len);
}

void hub_device__methods_conn_closed(struct hub_device_conn *c,
                                     enum hub_device_method_outcome outcome)
{
    while (c->methods != NULL) {
        struct hub_device__method_call *call = c->methods;
        c->methods = call->next;
        call->next = NULL;
        event_free(call->timer);
        call->timer = NULL;
        call->conn = NULL;
        call_fail(call, outcome);
    }
}

/* ---- invoke ---------------------------------------------------------------------- */

static int method_name_check(const char *name, struct hub_err *err)
{
    size_t len = strlen(name);
    if (len == 0 || len > HUB_DEVICE_METHOD_NAME_MAX)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "method name must be 1 to %d bytes, not %zu",
                       HUB_DEVICE_METHOD_NAME_MAX, len);
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)name[i];
        if (ch < 0x20 || ch == 0x7f || ch == '/' || ch == '#' || ch == '+' || ch == '?')
            return HUB_ERR(err, HUB_E_INVALID_ARG,
                           "method name must not contain '/', '#', '+', '?' or control "
                           "characters (byte %zu)",
                           i);
    }
    /* The topic builder checks UTF-8; a trial build keeps one rule set. */
    char topic[METHOD_TOPIC_MAX];
    if (hub_iothub_method_topic_build(topic, sizeof(topic), name, "1", err) < 0)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "method name is not valid UTF-8");
    return 0;
}

int hub_device_method_invoke(struct hub_device_endpoint *ep, const char *device_id,
                             const char *method_name, const void *payload, size_t payload_len,
                             int response_timeout_ms, int connect_timeout_ms,
                             hub_device_method_done_fn done, void *done_arg, struct hub_err *err)
{
    if (ep == NULL || device_id == NULL || method_name == NULL || done == NULL ||
        (payload == NULL && payload_len > 0))
        return HUB_ERR(err, HUB_E_INVALID_ARG, "method invoke: missing argument");
    int rc = hub_registry_device_id_check(device_id, err);
    if (rc != 0)
        return rc;
    if ((rc = method_name_check(method_name, err)) != 0)
        return rc;
    if (response_timeout_ms <= 0 || connect_timeout_ms < 0)
        return HUB_ERR(err, HUB_E_INVALID_ARG,
                       "response timeout must be positive and connect timeout not negative");
    if (payload_len > HUB_DEVICE_METHOD_PAYLOAD_MAX)
        return HUB_ERR(err, HUB_E_TOO_LARGE, "method payload is %zu bytes, over the %d-byte limit",
                       payload_len, HUB_DEVICE_METHOD_PAYLOAD_MAX);
    if (payload_len == 0) {
        payload = "null";
        payload_len = 4;
    } else {
        json_error_t jerr;
        json_t *j = json_loadb(payload, payload_len, JSON_DECODE_ANY, &jerr);
        if (j == NULL)
            return HUB_ERR(err, HUB_E_INVALID_ARG, "method payload is not JSON: %s", jerr.text);
        json_decref(j);
    }
    struct hub_device__method_call *call = calloc(1, sizeof(*call));
    uint8_t *copy = malloc(payload_len);
    if (call == NULL || copy == NULL) {
        free(call);
        free(copy);
        return HUB_ERR(err, HUB_E_NOMEM, "no memory for a method call");
    }
    memcpy(copy, payload, payload_len);
    call->ep = ep;
    snprintf(call->device_id, sizeof(call->device_id), "%s", device_id);
    snprintf(call->name, sizeof(call->name), "%s", method_name);
    call->payload = copy;
    call->payload_len = payload_len;
    call->response_timeout_ms = response_timeout_ms;
    call->connect_deadline_ms = hub_device__now_ms(ep) + connect_timeout_ms;
    call->done = done;
    call->done_arg = done_arg;
    call->wait_index =
        (size_t)(atomic_fetch_add_explicit(&ep->method_seq, 1, memory_order_relaxed) %
                 ep->slot_count);
    dispatch(call);
    return 0;
}
