/*
 * http: the HTTPS front of the hub, on libevent's evhttp. Owns the service
 * REST API (device registry, CA certificates) and, later, the device HTTPS
 * transport on the same port. Knows nothing of MQTT.
 *
 * One `struct hub_http_server` per worker thread, each with its own
 * SO_REUSEPORT listener; all of them share one read-only `hub_http_env`.
 * Handlers run synchronously on the worker thread that read the request.
 *
 * Every refusal answers with Azure's error JSON
 * ({"Message":"ErrorCode:X;text","ExceptionMessage":"Tracking ID:..."} and an
 * `iothub-errorcode` header) and one `event=api_refused` log line naming the
 * policy (who), the reason and the request.
 */
#ifndef HUB_HTTP_H
#define HUB_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "common/err.h"

struct event_base;
struct hub_registry;
struct hub_auth_policy_set;
struct hub_msg_telemetry_log;
struct hub_msg_c2d;
struct hub_device_endpoint;
struct hub_dps;
struct hub_dpsdev_service;

/* What every request handler may use. Borrowed pointers; they must outlive
 * every server that uses the env. Immutable after start. */
struct hub_http_env {
    struct hub_registry *registry;
    const struct hub_auth_policy_set *policies;
    const char *const *hostnames; /* names a SAS token's sr may carry (case-insensitive) */
    size_t hostname_count;
    int allow_verify_on_upload; /* honour "isVerified": true on CA upload */
    size_t max_body_bytes;
    size_t max_header_bytes;
    int request_timeout_ms;   /* a whole request, head and body, after the last reply */
    int handshake_timeout_ms; /* the whole TLS handshake */
    int64_t (*now)(void);     /* Unix seconds; injectable for tests */
    struct hub_msg_telemetry_log *telemetry; /* GET /messages/events */
    struct hub_msg_c2d *c2d;                 /* C2D send, purge, feedback */
    /* Called (on the request's thread) after a C2D message was queued, so the
     * device endpoint can deliver it to a connected device at once. May be NULL. */
    void (*c2d_enqueued)(void *ctx, const char *device_id);
    void *c2d_enqueued_ctx;
    int max_poll_wait_s; /* longest ?wait= of a telemetry long poll */
    /* The MQTT device endpoint: direct methods are invoked through it. */
    struct hub_device_endpoint *devices;
    /* The provisioning service (routes_dps_service.c: /enrollmentGroups,
     * /enrollments, /registrations), authorized against its own policy set
     * only. NULL: no provisioning service API. */
    struct hub_dps *dps;
    const struct hub_auth_policy_set *dps_policies;
    /* The DPS registration core (device HTTPS transport,
     * routes_dps_device.c: /{idScope}/registrations/...). NULL: no routes. */
    struct hub_dpsdev_service *dps_device;
};

struct hub_http_server;

/* Serves HTTPS on the listening socket `listen_fd` (ownership passes to the
 * server) from `base`'s thread. `ssl_ctx` is borrowed. */
int hub_http_server_new(struct event_base *base, SSL_CTX *ssl_ctx, int listen_fd,
                        const struct hub_http_env *env, struct hub_http_server **out_new,
                        struct hub_err *err);

/* Stops accepting at once, lets requests in progress finish (up to grace_ms),
 * frees the server and then calls done(arg), all on the server's thread:
 * schedule it there with hub_net_worker_call. */
void hub_http_server_drain(struct hub_http_server *server, int grace_ms, void (*done)(void *arg),
                           void *arg);

#endif
