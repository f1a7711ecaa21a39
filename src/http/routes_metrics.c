/*
 * GET /metrics (issue 6 §5): the hub's counters in Prometheus text format
 * 0.0.4, for the service (permission ServiceConnect, as Azure's service
 * APIs: 401 without a token, 403 with a policy lacking it). No api-version
 * is required, since Prometheus scrapers send only a path and headers.
 *
 * What it shows, first the process registry (hub_metrics_default: connection
 * admission, HTTP requests, telemetry commit latency), then families read at
 * scrape time from the layers' own counters:
 *   hubd_device_connect_total{result,reason}   MQTT CONNECT outcomes
 *   hubd_device_disconnects_total{reason}      why device connections ended
 *   hubd_device_connections                    authenticated MQTT connections
 *   hubd_telemetry_*                           the telemetry log's stats
 *   hubd_c2d_*                                 the C2D queues' stats
 *   hubd_dps_registrations_total{outcome,reason}  DPS registrations (MQTT
 *                                              and HTTPS together)
 * Labels only ever hold names from code (reasons, outcomes, status
 * classes), never device ids, so the series count is fixed.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "auth/auth.h"
#include "common/metrics.h"
#include "device/device.h"
#include "dpsdev/dpsdev.h"
#include "http/http_int.h"
#include "msg/msg.h"

/* ---- request counters ----------------------------------------------------- */

static struct hub_metrics_counter *g_requests[6]; /* 1xx..5xx, [0]: anything else */
static pthread_once_t g_requests_once = PTHREAD_ONCE_INIT;

static void requests_init(void)
{
    static const char *const labels[6] = {"code=\"other\"", "code=\"1xx\"", "code=\"2xx\"",
                                          "code=\"3xx\"",   "code=\"4xx\"", "code=\"5xx\""};
    for (int i = 0; i < 6; i++)
        g_requests[i] = hub_metrics_counter_get0(
            hub_metrics_default(), "hubd_http_requests_total",
            "HTTPS requests answered by the hub, by status class.", labels[i]);
}

void hub_http__metrics_request_done(struct evhttp_request *req, void *arg)
{
    (void)arg;
    pthread_once(&g_requests_once, requests_init);
    int code = evhttp_request_get_response_code(req);
    int cls = code >= 100 && code < 600 ? code / 100 : 0;
    hub_metrics_counter_add(g_requests[cls], 1);
}

/* ---- families read at scrape time ----------------------------------------- */

static void device_families(struct hub_metrics_text *t, struct hub_device_endpoint *ep)
{
    char labels[HUB_METRICS_LABELS_MAX];
    hub_metrics_text_family(t, "hubd_device_connect_total",
                            "MQTT CONNECTs by outcome; a refusal names its reason.",
                            HUB_METRICS_COUNTER);
    for (int r = 0; r < HUB_DEVICE_R__COUNT; r++) {
        int connack = hub_device_reason_connack((enum hub_device_reason)r);
        if (connack < 0)
            continue;
        snprintf(labels, sizeof(labels), "result=\"%s\",reason=\"%s\"",
                 connack == 0 ? "ok" : "refused",
                 hub_device_reason_name((enum hub_device_reason)r));
        hub_metrics_text_uint(t, "hubd_device_connect_total", labels,
                              hub_device_reason_count(ep, (enum hub_device_reason)r));
    }
    hub_metrics_text_family(t, "hubd_device_disconnects_total",
                            "MQTT device connections closed (or never authenticated), by reason.",
                            HUB_METRICS_COUNTER);
    for (int r = 0; r < HUB_DEVICE_R__COUNT; r++) {
        if (hub_device_reason_connack((enum hub_device_reason)r) >= 0)
            continue;
        snprintf(labels, sizeof(labels), "reason=\"%s\"",
                 hub_device_reason_name((enum hub_device_reason)r));
        hub_metrics_text_uint(t, "hubd_device_disconnects_total", labels,
                              hub_device_reason_count(ep, (enum hub_device_reason)r));
    }
    hub_metrics_text_family(t, "hubd_device_connections",
                            "Authenticated MQTT device connections right now.", HUB_METRICS_GAUGE);
    hub_metrics_text_uint(t, "hubd_device_connections", NULL, hub_device_live_count(ep));
}

static void counter_family(struct hub_metrics_text *t, const char *name, const char *help,
                           uint64_t value)
{
    hub_metrics_text_family(t, name, help, HUB_METRICS_COUNTER);
    hub_metrics_text_uint(t, name, NULL, value);
}

static void gauge_family(struct hub_metrics_text *t, const char *name, const char *help,
                         uint64_t value)
{
    hub_metrics_text_family(t, name, help, HUB_METRICS_GAUGE);
    hub_metrics_text_uint(t, name, NULL, value);
}

static void telemetry_families(struct hub_metrics_text *t, struct hub_msg_telemetry_log *log)
{
    struct hub_msg_telemetry_stats s;
    hub_msg_telemetry_stats_get(log, &s);
    counter_family(t, "hubd_telemetry_messages_total",
                   "Device-to-cloud messages made durable (committed).", s.committed);
    counter_family(t, "hubd_telemetry_accepted_total",
                   "Device-to-cloud messages accepted for the next commit.", s.accepted);
    counter_family(t, "hubd_telemetry_refused_busy_total",
                   "Device-to-cloud messages refused because the commit queue was full.",
                   s.refused_busy);
    counter_family(t, "hubd_telemetry_failed_total",
                   "Device-to-cloud messages whose commit failed (never acknowledged).", s.failed);
    counter_family(t, "hubd_telemetry_commits_total", "Telemetry transactions committed.",
                   s.commits);
    gauge_family(t, "hubd_telemetry_queued", "Messages accepted and not yet committed.", s.queued);
    gauge_family(t, "hubd_telemetry_queued_bytes", "Memory held by the queued messages.",
                 s.queued_bytes);
}

static void c2d_families(struct hub_metrics_text *t, struct hub_msg_c2d *c2d)
{
    struct hub_msg_c2d_stats s;
    hub_msg_c2d_stats_get(c2d, &s);
    counter_family(t, "hubd_c2d_enqueued_total", "Cloud-to-device messages queued.", s.enqueued);
    counter_family(t, "hubd_c2d_refused_total",
                   "Cloud-to-device sends refused because the device's queue was full.",
                   s.refused_limit);
    counter_family(t, "hubd_c2d_delivered_total",
                   "Cloud-to-device deliveries (a redelivery counts again).", s.delivered);
    static const char *const settled_help =
        "Cloud-to-device messages settled by the device, by outcome.";
    hub_metrics_text_family(t, "hubd_c2d_settled_total", settled_help, HUB_METRICS_COUNTER);
    hub_metrics_text_uint(t, "hubd_c2d_settled_total", "outcome=\"completed\"", s.completed);
    hub_metrics_text_uint(t, "hubd_c2d_settled_total", "outcome=\"rejected\"", s.rejected);
    hub_metrics_text_uint(t, "hubd_c2d_settled_total", "outcome=\"abandoned\"", s.abandoned);
    hub_metrics_text_family(t, "hubd_c2d_dropped_total",
                            "Cloud-to-device messages dropped undelivered, by reason.",
                            HUB_METRICS_COUNTER);
    hub_metrics_text_uint(t, "hubd_c2d_dropped_total", "reason=\"expired\"", s.expired);
    hub_metrics_text_uint(t, "hubd_c2d_dropped_total", "reason=\"dead_lettered\"", s.dead_lettered);
    hub_metrics_text_uint(t, "hubd_c2d_dropped_total", "reason=\"purged\"", s.purged);
}

static void dps_families(struct hub_metrics_text *t, struct hub_dpsdev_service *svc)
{
    hub_metrics_text_family(t, "hubd_dps_registrations_total",
                            "Device registrations with the provisioning service, by outcome; a "
                            "refusal or failure names its reason.",
                            HUB_METRICS_COUNTER);
    char labels[HUB_METRICS_LABELS_MAX];
    for (int r = 0; r < HUB_DPSDEV_R__COUNT; r++) {
        enum hub_dpsdev_reason reason = (enum hub_dpsdev_reason)r;
        const char *outcome = reason == HUB_DPSDEV_R_OK                 ? "assigned"
                              : hub_dpsdev_reason_status(reason) == 200 ? "failed"
                                                                        : "refused";
        snprintf(labels, sizeof(labels), "outcome=\"%s\",reason=\"%s\"", outcome,
                 hub_dpsdev_reason_name(reason));
        hub_metrics_text_uint(t, "hubd_dps_registrations_total", labels,
                              hub_dpsdev_reason_count(svc, reason));
    }
}

/* ---- the route ------------------------------------------------------------ */

int hub_http__route_metrics(struct hub_http_request *r)
{
    if (r->segment_count != 1 || strcmp(r->segments[0], "metrics") != 0)
        return 0;
    if (r->method != EVHTTP_REQ_GET) {
        hub_http__reply_error(r, 405, "MethodNotAllowed", "BAD_METHOD", "%s is not allowed on %s",
                              r->method_name, r->path);
        return 1;
    }
    if (hub_http__authorize(r, HUB_AUTH_PERM_SERVICE_CONNECT) != 0)
        return 1;
    /* The request counters exist from the first scrape on, zeros included. */
    pthread_once(&g_requests_once, requests_init);

    struct hub_metrics_text t = {0};
    struct hub_err err = {0};
    hub_metrics_render(hub_metrics_default(), &t, &err);
    if (r->env->devices != NULL)
        device_families(&t, r->env->devices);
    if (r->env->telemetry != NULL)
        telemetry_families(&t, r->env->telemetry);
    if (r->env->c2d != NULL)
        c2d_families(&t, r->env->c2d);
    if (r->env->dps_device != NULL)
        dps_families(&t, r->env->dps_device);
    struct evbuffer *body = t.failed ? NULL : evbuffer_new();
    if (body == NULL || evbuffer_add(body, t.buf, t.len) != 0) {
        if (body != NULL)
            evbuffer_free(body);
        hub_metrics_text_free(&t);
        hub_http__reply_error(r, 500, "ServerError", "NOMEM", "out of memory rendering metrics");
        return 1;
    }
    hub_metrics_text_free(&t);
    struct evkeyvalq *out = evhttp_request_get_output_headers(r->req);
    evhttp_add_header(out, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
    if (r->draining)
        evhttp_add_header(out, "Connection", "close");
    evhttp_send_reply(r->req, 200, "OK", body);
    evbuffer_free(body);
    return 1;
}
