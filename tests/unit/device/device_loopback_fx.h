/*
 * device tests: one worker serving MQTT over TLS on 127.0.0.1 (port 0) and
 * a tiny blocking MQTT client in the test thread (the set-up of
 * test_device_loopback.c, shared by the twin and method tests). Include it
 * once, after cmocka.h; everything is static inline (a test uses what it
 * needs without unused-function warnings).
 */
#ifndef HUB_TEST_DEVICE_LOOPBACK_FX_H
#define HUB_TEST_DEVICE_LOOPBACK_FX_H

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "device/device_int.h"
#include "msg/msg.h"
#include "net/net.h"
#include "registry/registry.h"

/* The endpoint's clock: the real one plus an offset a test may set (before
 * the CONNECT it concerns) to stand near a certificate's notAfter. */
static _Atomic int64_t fx_clock_offset_ms;

static inline int64_t fx_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + atomic_load(&fx_clock_offset_ms);
}

struct fx {
    char dir[64];
    struct hub_store *store;
    struct hub_registry *reg;
    struct hub_msg_telemetry_log *log;
    struct hub_msg_c2d *c2d;
    struct hub_net_pool pool;
    SSL_CTX *server_ctx;
    struct hub_device_endpoint *ep;
    struct hub_device_server *server;
    bool drained; /* the test drained the server itself */
    int port;
    EVP_PKEY *dev_key;
    X509 *dev_cert;
    SSL_CTX *client_ctx;
};

static X509 *fx_issue(enum hub_pki_cert_kind kind, const char *cn, X509 *issuer, EVP_PKEY *ikey,
                      EVP_PKEY *key, const char *const *sans, size_t nsans)
{
    struct hub_pki_issue_params p = {.kind = kind,
                                     .common_name = cn,
                                     .days = 30,
                                     .pathlen = -1,
                                     .sans = sans,
                                     .sans_count = nsans,
                                     .issuer_cert = issuer,
                                     .issuer_key = ikey,
                                     .subject_key = key};
    X509 *x = NULL;
    struct hub_err err = {0};
    if (hub_pki_cert_issue(&p, &x, &err) != 0)
        fail_msg("issue %s: %s", cn, err.msg);
    return x;
}

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

static inline int fx_setup(void **state)
{
    struct fx *fx = calloc(1, sizeof(*fx));
    struct hub_err err = {0};
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/hubd-test-mqtt-XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    char path[256], cert_path[256], key_path[256];
    snprintf(path, sizeof(path), "%s/hub.db", fx->dir);
    if (hub_store_sqlite_open(path, NULL, &fx->store, &err) != 0)
        fail_msg("open: %s", err.msg);
    assert_int_equal(hub_registry_new(fx->store, NULL, &fx->reg, &err), 0);
    struct hub_msg_telemetry_opts topts = {.prune_interval_ms = -1};
    assert_int_equal(hub_msg_telemetry_log_open(fx->store, &topts, &fx->log, &err), 0);
    struct hub_msg_c2d_opts copts = {.sweep_interval_ms = -1};
    assert_int_equal(hub_msg_c2d_new(fx->store, &copts, &fx->c2d, &err), 0);

    EVP_PKEY *hub_ca_key = NULL, *srv_key = NULL;
    assert_int_equal(hub_pki_key_generate(HUB_PKI_KEY_EC_P256, &hub_ca_key, NULL), 0);
    assert_int_equal(hub_pki_key_generate(HUB_PKI_KEY_EC_P256, &srv_key, NULL), 0);
    X509 *hub_ca = fx_issue(HUB_PKI_CERT_ROOT, "hub ca", NULL, NULL, hub_ca_key, NULL, 0);
    const char *sans[] = {"IP:127.0.0.1"};
    X509 *srv = fx_issue(HUB_PKI_CERT_SERVER, "127.0.0.1", hub_ca, hub_ca_key, srv_key, sans, 1);
    snprintf(cert_path, sizeof(cert_path), "%s/server.pem", fx->dir);
    snprintf(key_path, sizeof(key_path), "%s/server.key", fx->dir);
    X509 *chain[] = {srv, hub_ca};
    assert_int_equal(hub_pki_certs_write_file(chain, 2, cert_path, NULL), 0);
    assert_int_equal(hub_pki_key_write_file(srv_key, key_path, NULL), 0);
    struct hub_net_tls_opts tls = {
        .cert_chain_file = cert_path, .key_file = key_path, .request_client_cert = 1};
    if (hub_net_tls_server_ctx_new(&tls, &fx->server_ctx, &err) != 0)
        fail_msg("tls: %s", err.msg);
    X509_free(srv);
    X509_free(hub_ca);
    EVP_PKEY_free(srv_key);
    EVP_PKEY_free(hub_ca_key);

    EVP_PKEY *ca_key = NULL;
    assert_int_equal(hub_pki_key_generate(HUB_PKI_KEY_EC_P256, &ca_key, NULL), 0);
    assert_int_equal(hub_pki_key_generate(HUB_PKI_KEY_EC_P256, &fx->dev_key, NULL), 0);
    X509 *ca = fx_issue(HUB_PKI_CERT_ROOT, "device ca", NULL, NULL, ca_key, NULL, 0);
    fx->dev_cert = fx_issue(HUB_PKI_CERT_DEVICE, "dev1", ca, ca_key, fx->dev_key, NULL, 0);
    char *pem = NULL;
    assert_int_equal(hub_pki_cert_to_pem(ca, &pem, NULL), 0);
    assert_int_equal(
        hub_registry_ca_upload(fx->reg, "devca", pem, strlen(pem), true, NULL, NULL, NULL, &err),
        0);
    free(pem);
    X509_free(ca);
    EVP_PKEY_free(ca_key);
    fx_device_add(fx, "dev1");

    fx->client_ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_verify(fx->client_ctx, SSL_VERIFY_NONE, NULL);

    assert_int_equal(hub_net_init(&err), 0);
    assert_int_equal(hub_net_pool_init(&fx->pool, 1, &err), 0);
    static const char *const hosts[] = {"127.0.0.1"};
    struct hub_device_env env = {
        .registry = fx->reg,
        .telemetry = fx->log,
        .c2d = fx->c2d,
        .hostnames = hosts,
        .hostname_count = 1,
        .connect_timeout_ms = 3000,
        .now_ms = fx_now_ms,
    };
    atomic_store(&fx_clock_offset_ms, 0);
    assert_int_equal(hub_device_endpoint_new(&env, &fx->pool, &fx->ep, &err), 0);
    int fd = -1;
    if (hub_net_listen("127.0.0.1", 0, "--mqtt-port", 16, &fd, &err) != 0)
        fail_msg("listen: %s", err.msg);
    struct sockaddr_in sin;
    socklen_t sl = sizeof(sin);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
    fx->port = ntohs(sin.sin_port);
    if (hub_device_server_new(fx->ep, &fx->pool.workers[0], fx->server_ctx, fd, &fx->server,
                              &err) != 0)
        fail_msg("server: %s", err.msg);
    assert_int_equal(hub_net_pool_start(&fx->pool, &err), 0);
    *state = fx;
    return 0;
}

static inline void fx_on_drained(void *arg)
{
    struct hub_net_worker *w = arg;
    event_base_loopexit(w->base, NULL);
}

static inline void fx_do_drain(void *arg)
{
    struct fx *fx = arg;
    hub_device_server_drain(fx->server, 100, fx_on_drained, &fx->pool.workers[0]);
}

/* Drains the server and joins the worker (teardown does it unless a test did). */
static inline void fx_drain(struct fx *fx)
{
    if (fx->drained)
        return;
    fx->drained = true;
    hub_net_worker_call(&fx->pool.workers[0], fx_do_drain, fx);
    hub_net_pool_join_and_free(&fx->pool);
}

static inline int fx_teardown(void **state)
{
    struct fx *fx = *state;
    fx_drain(fx);
    hub_msg_telemetry_log_close(fx->log);
    hub_device_endpoint_free(fx->ep);
    hub_msg_c2d_free(fx->c2d);
    SSL_CTX_free(fx->server_ctx);
    SSL_CTX_free(fx->client_ctx);
    X509_free(fx->dev_cert);
    EVP_PKEY_free(fx->dev_key);
    hub_registry_free(fx->reg);
    hub_store_close(fx->store);
    DIR *d = opendir(fx->dir);
    struct dirent *e;
    while (d != NULL && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char p[512];
        snprintf(p, sizeof(p), "%s/%s", fx->dir, e->d_name);
        unlink(p);
    }
    if (d != NULL)
        closedir(d);
    rmdir(fx->dir);
    free(fx);
    return 0;
}

/* ---- a tiny blocking MQTT client ------------------------------------------- */

struct client {
    int fd;
    SSL *ssl;
};

/* with_cert false: a client that presents no certificate. */
static inline struct client client_open_opt(struct fx *fx, bool with_cert)
{
    struct client c = {.fd = socket(AF_INET, SOCK_STREAM, 0)};
    assert_true(c.fd >= 0);
    struct timeval tv = {.tv_sec = 5};
    setsockopt(c.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)fx->port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(c.fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    c.ssl = SSL_new(fx->client_ctx);
    if (with_cert) {
        assert_int_equal(SSL_use_certificate(c.ssl, fx->dev_cert), 1);
        assert_int_equal(SSL_use_PrivateKey(c.ssl, fx->dev_key), 1);
    }
    SSL_set_fd(c.ssl, c.fd);
    if (SSL_connect(c.ssl) != 1) {
        ERR_print_errors_fp(stderr);
        fail_msg("TLS handshake failed");
    }
    return c;
}

static inline struct client client_open(struct fx *fx)
{
    return client_open_opt(fx, true);
}

static inline void client_close(struct client *c)
{
    SSL_free(c->ssl);
    close(c->fd);
}

static inline void put_str(uint8_t *b, size_t *n, const char *s)
{
    size_t l = strlen(s);
    b[(*n)++] = (uint8_t)(l >> 8);
    b[(*n)++] = (uint8_t)l;
    memcpy(b + *n, s, l);
    *n += l;
}

static inline void client_send(struct client *c, uint8_t type_flags, const uint8_t *body,
                               size_t len)
{
    uint8_t *buf = malloc(len + 5);
    size_t n = 0;
    buf[n++] = type_flags;
    size_t rl = len;
    do {
        uint8_t d = rl % 128;
        rl /= 128;
        buf[n++] = (uint8_t)(d | (rl ? 0x80 : 0));
    } while (rl);
    if (len > 0)
        memcpy(buf + n, body, len);
    n += len;
    assert_int_equal(SSL_write(c->ssl, buf, (int)n), (int)n);
    free(buf);
}

/* CONNECT (username, clean_session 0) without waiting for the CONNACK. */
static inline void client_connect_raw(struct client *c, const char *id, uint16_t keepalive)
{
    uint8_t b[512];
    size_t n = 0;
    put_str(b, &n, "MQTT");
    b[n++] = 4;
    b[n++] = 0x80;
    b[n++] = (uint8_t)(keepalive >> 8);
    b[n++] = (uint8_t)keepalive;
    put_str(b, &n, id);
    char user[128];
    snprintf(user, sizeof(user), "127.0.0.1/%s/?api-version=2021-04-12", id);
    put_str(b, &n, user);
    client_send(c, 0x10, b, n);
}

/* Reads one packet: returns its first byte, or -1 on EOF/timeout. */
static inline int client_read(struct client *c, uint8_t *body, size_t cap, size_t *len)
{
    uint8_t h;
    if (SSL_read(c->ssl, &h, 1) != 1)
        return -1;
    size_t rl = 0, mul = 1;
    for (int i = 0; i < 4; i++) {
        uint8_t d;
        if (SSL_read(c->ssl, &d, 1) != 1)
            return -1;
        rl += (d & 0x7f) * mul;
        mul *= 128;
        if (!(d & 0x80))
            break;
    }
    assert_true(rl <= cap);
    size_t got = 0;
    while (got < rl) {
        int r = SSL_read(c->ssl, body + got, (int)(rl - got));
        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    *len = rl;
    return h;
}

/* CONNECT as id (clean_session as given); asserts CONNACK accepted and
 * returns its session-present flag. */
static inline bool client_connect(struct client *c, const char *id, bool clean_session)
{
    uint8_t b[512];
    size_t n = 0;
    put_str(b, &n, "MQTT");
    b[n++] = 4;
    b[n++] = (uint8_t)(0x80 | (clean_session ? 0x02 : 0)); /* username */
    b[n++] = 0;
    b[n++] = 60; /* keep-alive */
    put_str(b, &n, id);
    char user[128];
    snprintf(user, sizeof(user), "127.0.0.1/%s/?api-version=2021-04-12", id);
    put_str(b, &n, user);
    client_send(c, 0x10, b, n);
    uint8_t body[16];
    size_t len = 0;
    assert_int_equal(client_read(c, body, sizeof(body), &len), 0x20);
    assert_int_equal(len, 2);
    assert_int_equal(body[1], 0);
    return body[0] & 1;
}

/* SUBSCRIBE to one filter at QoS 0; returns the granted code. */
static inline int client_subscribe(struct client *c, uint16_t packet_id, const char *filter)
{
    uint8_t p[256];
    size_t n = 0;
    p[n++] = (uint8_t)(packet_id >> 8);
    p[n++] = (uint8_t)packet_id;
    put_str(p, &n, filter);
    p[n++] = 0;
    client_send(c, 0x82, p, n);
    uint8_t body[16];
    size_t len = 0;
    assert_int_equal(client_read(c, body, sizeof(body), &len), 0x90);
    assert_int_equal(len, 3);
    assert_int_equal(body[0] << 8 | body[1], packet_id);
    return body[2];
}

/* PUBLISH at QoS 0 (or 1 with packet_id). */
static inline void client_publish(struct client *c, uint8_t qos, uint16_t packet_id,
                                  const char *topic, const void *payload, size_t len)
{
    size_t cap = strlen(topic) + len + 8;
    uint8_t *p = malloc(cap);
    size_t n = 0;
    put_str(p, &n, topic);
    if (qos > 0) {
        p[n++] = (uint8_t)(packet_id >> 8);
        p[n++] = (uint8_t)packet_id;
    }
    if (len > 0)
        memcpy(p + n, payload, len);
    n += len;
    client_send(c, (uint8_t)(0x30 | qos << 1), p, n);
    free(p);
}

/* A PUBLISH the hub sent: its topic and payload (NUL-terminated copies). */
struct rx_publish {
    int qos;
    char topic[512];
    char payload[8192];
    size_t payload_len;
};

/* Reads the next packet and asserts it is a PUBLISH. */
static inline void client_read_publish(struct client *c, struct rx_publish *out)
{
    static uint8_t body[16384];
    size_t len = 0;
    int t = client_read(c, body, sizeof(body), &len);
    if (t < 0 || (t & 0xf0) != 0x30)
        fail_msg("expected a PUBLISH, got 0x%02x", t);
    out->qos = (t >> 1) & 3;
    size_t tl = (size_t)body[0] << 8 | body[1];
    assert_true(tl < sizeof(out->topic));
    memcpy(out->topic, body + 2, tl);
    out->topic[tl] = '\0';
    size_t off = 2 + tl + (out->qos > 0 ? 2 : 0);
    out->payload_len = len - off;
    assert_true(out->payload_len < sizeof(out->payload));
    memcpy(out->payload, body + off, out->payload_len);
    out->payload[out->payload_len] = '\0';
}

/* PINGREQ and wait for PINGRESP: everything sent before was handled, and
 * nothing else was published to the client in between. */
static inline void client_ping(struct client *c)
{
    client_send(c, 0xc0, NULL, 0);
    uint8_t body[16];
    size_t len = 0;
    assert_int_equal(client_read(c, body, sizeof(body), &len), 0xd0);
}

static inline void client_disconnect(struct client *c)
{
    client_send(c, 0xe0, NULL, 0);
    uint8_t body[16];
    size_t len = 0;
    assert_int_equal(client_read(c, body, sizeof(body), &len), -1); /* the hub closes */
    client_close(c);
}

#endif
