/*
 * device tests: the device endpoint's MQTT server under the shared loopback
 * fixture (../loopback_fx.h: one worker on 127.0.0.1 port 0, a blocking
 * MQTT-over-TLS client), with a real registry, telemetry log and C2D queue
 * in the fixture's temp dir, a verified "device ca" uploaded and device dev1
 * (CA-signed) created. Shared by the loopback, twin, method and session
 * tests. Include it once, after cmocka.h; everything is static inline.
 */
#ifndef HUB_TEST_DEVICE_LOOPBACK_FX_H
#define HUB_TEST_DEVICE_LOOPBACK_FX_H

#include "../loopback_fx.h"
#include "device/device_int.h"
#include "msg/msg.h"
#include "registry/registry.h"

struct fx {
    struct lbfx lb; /* dev_cert: CN dev1 by the uploaded "device ca" */
    struct hub_store *store;
    struct hub_registry *reg;
    struct hub_msg_telemetry_log *log;
    struct hub_msg_c2d *c2d;
    struct hub_device_endpoint *ep;
    struct hub_device_server *server;
};

static inline void fx_device_add(struct fx *fx, const char *id)
{
    struct hub_device d;
    memset(&d, 0, sizeof(d));
    snprintf(d.id, sizeof(d.id), "%s", id);
    d.auth_type = HUB_AUTH_CERT_AUTHORITY;
    struct hub_err err = {0};
    if (hub_registry_device_create(fx->reg, &d, NULL, &err) != 0)
        fail_msg("create: %s", err.msg);
}

static inline int fx_server_start(void *ctx, struct hub_net_worker *w, SSL_CTX *tls, int fd,
                                  struct hub_err *err)
{
    struct fx *fx = ctx;
    return hub_device_server_new(fx->ep, w, tls, fd, &fx->server, err);
}

static inline void fx_server_drain(void *ctx, void (*done)(void *), void *done_arg)
{
    struct fx *fx = ctx;
    hub_device_server_drain(fx->server, 100, done, done_arg);
}

static inline int fx_setup(void **state)
{
    struct fx *fx = calloc(1, sizeof(*fx));
    struct hub_err err = {0};
    lbfx_init(&fx->lb, "/tmp/hubd-test-mqtt-XXXXXX");
    char path[256];
    snprintf(path, sizeof(path), "%s/hub.db", fx->lb.dir);
    if (hub_store_sqlite_open(path, NULL, &fx->store, &err) != 0)
        fail_msg("open: %s", err.msg);
    assert_int_equal(hub_registry_new(fx->store, NULL, &fx->reg, &err), 0);
    struct hub_msg_telemetry_opts topts = {.prune_interval_ms = -1};
    assert_int_equal(hub_msg_telemetry_log_open(fx->store, &topts, &fx->log, &err), 0);
    struct hub_msg_c2d_opts copts = {.sweep_interval_ms = -1};
    assert_int_equal(hub_msg_c2d_new(fx->store, &copts, &fx->c2d, &err), 0);

    X509 *ca = lbfx_dev_pki(&fx->lb, "dev1", false);
    char *pem = NULL;
    assert_int_equal(hub_pki_cert_to_pem(ca, &pem, NULL), 0);
    assert_int_equal(
        hub_registry_ca_upload(fx->reg, "devca", pem, strlen(pem), true, NULL, NULL, NULL, &err),
        0);
    free(pem);
    X509_free(ca);
    fx_device_add(fx, "dev1");

    static const char *const hosts[] = {"127.0.0.1"};
    struct hub_device_env env = {
        .registry = fx->reg,
        .telemetry = fx->log,
        .c2d = fx->c2d,
        .hostnames = hosts,
        .hostname_count = 1,
        .connect_timeout_ms = 3000,
        .now_ms = lbfx_now_ms,
    };
    assert_int_equal(hub_device_endpoint_new(&env, &fx->lb.pool, &fx->ep, &err), 0);
    lbfx_start(&fx->lb, "--mqtt-port",
               (struct lbfx_server){.start = fx_server_start, .drain = fx_server_drain, .ctx = fx});
    *state = fx;
    return 0;
}

static inline int fx_teardown(void **state)
{
    struct fx *fx = *state;
    lbfx_drain(&fx->lb);
    hub_msg_telemetry_log_close(fx->log);
    hub_device_endpoint_free(fx->ep);
    hub_msg_c2d_free(fx->c2d);
    hub_registry_free(fx->reg);
    hub_store_close(fx->store);
    lbfx_fini(&fx->lb);
    free(fx);
    return 0;
}

/* ---- the device side of the client ------------------------------------------- */

/* A TLS connection presenting dev1's certificate. */
static inline struct client client_open(struct fx *fx)
{
    return lbfx_client_open(&fx->lb, true);
}

/* CONNECT (username, clean_session 0) without waiting for the CONNACK. */
static inline void client_connect_raw(struct client *c, const char *id, uint16_t keepalive)
{
    char user[128];
    snprintf(user, sizeof(user), "127.0.0.1/%s/?api-version=2021-04-12", id);
    client_connect_send(c, id, user, NULL, false, keepalive);
}

/* CONNECT as id (clean_session as given); asserts CONNACK accepted and
 * returns its session-present flag. */
static inline bool client_connect(struct client *c, const char *id, bool clean_session)
{
    char user[128];
    snprintf(user, sizeof(user), "127.0.0.1/%s/?api-version=2021-04-12", id);
    client_connect_send(c, id, user, NULL, clean_session, 60);
    bool session_present = false;
    assert_int_equal(client_connack(c, &session_present), 0);
    return session_present;
}

/* SUBSCRIBE to one filter at QoS 0; returns the granted code. */
static inline int client_subscribe(struct client *c, uint16_t packet_id, const char *filter)
{
    return client_subscribe_qos(c, packet_id, filter, 0);
}

#endif
