/*
 * Loopback tests of a protocol layer's server (device, dpsdev): the server
 * under test on one worker thread, listening on 127.0.0.1 port 0 with a
 * certificate made in the test, and a tiny blocking MQTT-over-TLS client in
 * the test thread that can present a device certificate (and its
 * intermediate). The layer's own set-up (its service, its backend, its
 * registry) stays in the test; this header knows no layer above net and pki,
 * and reaches the server only through the two hooks of struct lbfx_server.
 *
 * Include it once, after cmocka.h (from tests/unit/<layer>/ as
 * "../loopback_fx.h"); everything is static inline, so a test uses what it
 * needs without unused-function warnings.
 *
 * Life of a fixture: lbfx_init (temp dir, server TLS, client TLS, a pool of
 * one worker), the layer builds its service on lb->pool, optionally
 * lbfx_dev_pki, then lbfx_start (listen + the start hook + run the worker).
 * Teardown: lbfx_drain (the drain hook on the worker, then join), the layer
 * frees its service, then lbfx_fini (frees the TLS and certificate state
 * and removes the temp dir, so close anything kept in it first).
 */
#ifndef HUB_TEST_LOOPBACK_FX_H
#define HUB_TEST_LOOPBACK_FX_H

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "net/net.h"
#include "pki/pki.h"

/* ---- clock ----------------------------------------------------------------- */

/* The server's clock (hand lbfx_now_ms to the layer's env): the real one
 * plus an offset a test may set (before the CONNECT it concerns), e.g. to
 * stand near a certificate's notAfter. lbfx_init resets it. */
static _Atomic int64_t lbfx_clock_offset_ms;

static inline int64_t lbfx_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + atomic_load(&lbfx_clock_offset_ms);
}

/* ---- PKI --------------------------------------------------------------------- */

/* A certificate valid for 30 days; issuer NULL: self-signed. */
static inline X509 *lbfx_cert_issue(enum hub_pki_cert_kind kind, const char *cn, X509 *issuer,
                                    EVP_PKEY *ikey, EVP_PKEY *key, const char *const *sans,
                                    size_t nsans)
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

static inline EVP_PKEY *lbfx_key_new(void)
{
    EVP_PKEY *k = NULL;
    assert_int_equal(hub_pki_key_generate(HUB_PKI_KEY_EC_P256, &k, NULL), 0);
    return k;
}

/* Removes dir and the files in it (no subdirectories). */
static inline void lbfx_dir_remove(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d != NULL && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char p[512];
        snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
        unlink(p);
    }
    if (d != NULL)
        closedir(d);
    rmdir(dir);
}

/* ---- fixture ------------------------------------------------------------------ */

/* The server under test. start: create it on worker w (before the pool
 * runs) serving TLS ctx tls on the listening socket fd. drain: run on the
 * worker's thread; call done(done_arg) once its connections are gone. */
struct lbfx_server {
    int (*start)(void *ctx, struct hub_net_worker *w, SSL_CTX *tls, int fd, struct hub_err *err);
    void (*drain)(void *ctx, void (*done)(void *), void *done_arg);
    void *ctx;
};

struct lbfx {
    char dir[64]; /* mkdtemp'd; removed by lbfx_fini */
    struct hub_net_pool pool;
    SSL_CTX *server_ctx; /* 127.0.0.1 cert by a throwaway "hub ca"; asks for client certs */
    SSL_CTX *client_ctx; /* verifies nothing: the tests are about the server's decisions */
    int port;
    /* lbfx_dev_pki: what lbfx_client_open(.., true) presents */
    EVP_PKEY *dev_key;
    X509 *dev_cert;
    X509 *dev_inter; /* NULL, or dev_cert's issuer, sent as its chain */
    struct lbfx_server server;
    bool drained; /* lbfx_drain ran (a test may drain before teardown) */
};

/* Server TLS: "hub ca" -> 127.0.0.1, chain and key written to dir. */
static inline void lbfx__server_tls(struct lbfx *lb)
{
    struct hub_err err = {0};
    char cert_path[256], key_path[256];
    EVP_PKEY *hub_ca_key = lbfx_key_new(), *srv_key = lbfx_key_new();
    X509 *hub_ca = lbfx_cert_issue(HUB_PKI_CERT_ROOT, "hub ca", NULL, NULL, hub_ca_key, NULL, 0);
    const char *sans[] = {"IP:127.0.0.1"};
    X509 *srv =
        lbfx_cert_issue(HUB_PKI_CERT_SERVER, "127.0.0.1", hub_ca, hub_ca_key, srv_key, sans, 1);
    snprintf(cert_path, sizeof(cert_path), "%s/server.pem", lb->dir);
    snprintf(key_path, sizeof(key_path), "%s/server.key", lb->dir);
    X509 *chain[] = {srv, hub_ca};
    assert_int_equal(hub_pki_certs_write_file(chain, 2, cert_path, NULL), 0);
    assert_int_equal(hub_pki_key_write_file(srv_key, key_path, NULL), 0);
    struct hub_net_tls_opts tls = {
        .cert_chain_file = cert_path, .key_file = key_path, .request_client_cert = 1};
    if (hub_net_tls_server_ctx_new(&tls, &lb->server_ctx, &err) != 0)
        fail_msg("tls: %s", err.msg);
    X509_free(srv);
    X509_free(hub_ca);
    EVP_PKEY_free(srv_key);
    EVP_PKEY_free(hub_ca_key);
}

/* dir_template: a mkdtemp template ("/tmp/hubd-test-x-XXXXXX"). */
static inline void lbfx_init(struct lbfx *lb, const char *dir_template)
{
    struct hub_err err = {0};
    snprintf(lb->dir, sizeof(lb->dir), "%s", dir_template);
    assert_non_null(mkdtemp(lb->dir));
    lbfx__server_tls(lb);
    lb->client_ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_verify(lb->client_ctx, SSL_VERIFY_NONE, NULL);
    atomic_store(&lbfx_clock_offset_ms, 0);
    assert_int_equal(hub_net_init(&err), 0);
    assert_int_equal(hub_net_pool_init(&lb->pool, 1, &err), 0);
}

/* The device credential: "device ca" [-> "factory" intermediate] -> cn.
 * Returns the root (the caller uploads it, or not, and frees it). */
static inline X509 *lbfx_dev_pki(struct lbfx *lb, const char *cn, bool intermediate)
{
    EVP_PKEY *ca_key = lbfx_key_new();
    X509 *ca = lbfx_cert_issue(HUB_PKI_CERT_ROOT, "device ca", NULL, NULL, ca_key, NULL, 0);
    lb->dev_key = lbfx_key_new();
    if (intermediate) {
        EVP_PKEY *int_key = lbfx_key_new();
        lb->dev_inter =
            lbfx_cert_issue(HUB_PKI_CERT_INTERMEDIATE, "factory", ca, ca_key, int_key, NULL, 0);
        lb->dev_cert =
            lbfx_cert_issue(HUB_PKI_CERT_DEVICE, cn, lb->dev_inter, int_key, lb->dev_key, NULL, 0);
        EVP_PKEY_free(int_key);
    } else {
        lb->dev_cert = lbfx_cert_issue(HUB_PKI_CERT_DEVICE, cn, ca, ca_key, lb->dev_key, NULL, 0);
    }
    EVP_PKEY_free(ca_key);
    return ca;
}

/* Listens on 127.0.0.1:0 (flag names the option in listen errors), starts
 * the server under test on it, then runs the worker. */
static inline void lbfx_start(struct lbfx *lb, const char *flag, struct lbfx_server server)
{
    struct hub_err err = {0};
    lb->server = server;
    int fd = -1;
    if (hub_net_listen("127.0.0.1", 0, flag, 16, &fd, &err) != 0)
        fail_msg("listen: %s", err.msg);
    struct sockaddr_in sin;
    socklen_t sl = sizeof(sin);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
    lb->port = ntohs(sin.sin_port);
    if (server.start(server.ctx, &lb->pool.workers[0], lb->server_ctx, fd, &err) != 0)
        fail_msg("server: %s", err.msg);
    assert_int_equal(hub_net_pool_start(&lb->pool, &err), 0);
}

static inline void lbfx__on_drained(void *arg)
{
    struct hub_net_worker *w = arg;
    event_base_loopexit(w->base, NULL);
}

static inline void lbfx__do_drain(void *arg)
{
    struct lbfx *lb = arg;
    lb->server.drain(lb->server.ctx, lbfx__on_drained, &lb->pool.workers[0]);
}

/* Drains the server and joins the worker, once (teardown does it unless a
 * test did). */
static inline void lbfx_drain(struct lbfx *lb)
{
    if (lb->drained)
        return;
    lb->drained = true;
    hub_net_worker_call(&lb->pool.workers[0], lbfx__do_drain, lb);
    hub_net_pool_join_and_free(&lb->pool);
}

/* After the layer freed its service and closed what it kept in lb->dir. */
static inline void lbfx_fini(struct lbfx *lb)
{
    lbfx_drain(lb);
    SSL_CTX_free(lb->server_ctx);
    SSL_CTX_free(lb->client_ctx);
    X509_free(lb->dev_cert);
    X509_free(lb->dev_inter);
    EVP_PKEY_free(lb->dev_key);
    lbfx_dir_remove(lb->dir);
}

/* ---- a tiny blocking MQTT client ------------------------------------------- */

struct client {
    int fd;
    SSL *ssl;
};

/* with_cert false: a client that presents no certificate. */
static inline struct client lbfx_client_open(struct lbfx *lb, bool with_cert)
{
    struct client c = {.fd = socket(AF_INET, SOCK_STREAM, 0)};
    assert_true(c.fd >= 0);
    struct timeval tv = {.tv_sec = 5};
    setsockopt(c.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)lb->port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(c.fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    c.ssl = SSL_new(lb->client_ctx);
    if (with_cert) {
        assert_int_equal(SSL_use_certificate(c.ssl, lb->dev_cert), 1);
        assert_int_equal(SSL_use_PrivateKey(c.ssl, lb->dev_key), 1);
        if (lb->dev_inter != NULL)
            assert_int_equal(SSL_add1_chain_cert(c.ssl, lb->dev_inter), 1);
    }
    SSL_set_fd(c.ssl, c.fd);
    if (SSL_connect(c.ssl) != 1) {
        ERR_print_errors_fp(stderr);
        fail_msg("TLS handshake failed");
    }
    return c;
}

static inline void client_close(struct client *c)
{
    SSL_free(c->ssl);
    close(c->fd);
}

/* An MQTT UTF-8 string: two length bytes, then the bytes. */
static inline void put_str(uint8_t *b, size_t *n, const char *s)
{
    size_t l = strlen(s);
    b[(*n)++] = (uint8_t)(l >> 8);
    b[(*n)++] = (uint8_t)l;
    memcpy(b + *n, s, l);
    *n += l;
}

/* One packet: the first byte, the remaining length, the body. */
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

/* CONNECT (MQTT 3.1.1, always with a username; password NULL: none)
 * without waiting for the CONNACK. */
static inline void client_connect_send(struct client *c, const char *client_id,
                                       const char *username, const char *password,
                                       bool clean_session, uint16_t keepalive)
{
    uint8_t b[1024];
    size_t n = 0;
    put_str(b, &n, "MQTT");
    b[n++] = 4;
    b[n++] = (uint8_t)(0x80 | (password != NULL ? 0x40 : 0) | (clean_session ? 0x02 : 0));
    b[n++] = (uint8_t)(keepalive >> 8);
    b[n++] = (uint8_t)keepalive;
    put_str(b, &n, client_id);
    put_str(b, &n, username);
    if (password != NULL)
        put_str(b, &n, password);
    client_send(c, 0x10, b, n);
}

/* Reads the CONNACK: returns its return code; *session_present (NULL ok). */
static inline int client_connack(struct client *c, bool *session_present)
{
    uint8_t body[16];
    size_t len = 0;
    assert_int_equal(client_read(c, body, sizeof(body), &len), 0x20);
    assert_int_equal(len, 2);
    if (session_present != NULL)
        *session_present = body[0] & 1;
    return body[1];
}

/* SUBSCRIBE to one filter; returns the granted code. */
static inline int client_subscribe_qos(struct client *c, uint16_t packet_id, const char *filter,
                                       uint8_t qos)
{
    uint8_t p[256];
    size_t n = 0;
    p[n++] = (uint8_t)(packet_id >> 8);
    p[n++] = (uint8_t)packet_id;
    put_str(p, &n, filter);
    p[n++] = qos;
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

/* Reads the next packet and asserts it is the PUBACK of packet_id. */
static inline void client_read_puback(struct client *c, uint16_t packet_id)
{
    uint8_t body[16];
    size_t len = 0;
    assert_int_equal(client_read(c, body, sizeof(body), &len), 0x40);
    assert_int_equal(len, 2);
    assert_int_equal((body[0] << 8) | body[1], packet_id);
}

/* A PUBLISH the server sent: its topic and payload (NUL-terminated copies). */
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

/* Asserts the next read gets no packet (the server closed the connection;
 * a 5 s silence would also end the read), then frees the client. */
static inline void client_expect_closed(struct client *c)
{
    uint8_t body[16];
    size_t len = 0;
    assert_int_equal(client_read(c, body, sizeof(body), &len), -1);
    client_close(c);
}

/* DISCONNECT; the server closes. */
static inline void client_disconnect(struct client *c)
{
    client_send(c, 0xe0, NULL, 0);
    client_expect_closed(c);
}

#endif
