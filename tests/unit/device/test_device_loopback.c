/*
 * device: one worker serving MQTT over TLS on 127.0.0.1 (port 0), driven by
 * a blocking OpenSSL client in the test thread. Covers what only a real
 * connection shows: CONNACK after a chain-validated CONNECT, PUBACK only
 * after the telemetry commit (and the stored message's properties), C2D
 * delivery and completion, a refusal with its CONNACK code and counter, the
 * older connection kicked by a newer one, a kick on device disable, and the
 * drain.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "device/device_int.h"
#include "msg/msg.h"
#include "net/net.h"
#include "registry/registry.h"

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
    int port;
    EVP_PKEY *dev_key;
    X509 *dev_cert;
    SSL_CTX *client_ctx;
};

static X509 *issue(enum hub_pki_cert_kind kind, const char *cn, X509 *issuer, EVP_PKEY *ikey,
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

static void device_add(struct fx *fx, const char *id)
{
    struct hub_device d;
    memset(&d, 0, sizeof(d));
    snprintf(d.id, sizeof(d.id), "%s", id);
    d.auth_type = HUB_AUTH_CERT_AUTHORITY;
    struct hub_err err = {0};
    if (hub_registry_device_create(fx->reg, &d, NULL, &err) != 0)
        fail_msg("create: %s", err.msg);
}

static int setup(void **state)
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

    /* the hub's server identity */
    EVP_PKEY *hub_ca_key = NULL, *srv_key = NULL;
    assert_int_equal(hub_pki_key_generate(HUB_PKI_KEY_EC_P256, &hub_ca_key, NULL), 0);
    assert_int_equal(hub_pki_key_generate(HUB_PKI_KEY_EC_P256, &srv_key, NULL), 0);
    X509 *hub_ca = issue(HUB_PKI_CERT_ROOT, "hub ca", NULL, NULL, hub_ca_key, NULL, 0);
    const char *sans[] = {"IP:127.0.0.1"};
    X509 *srv = issue(HUB_PKI_CERT_SERVER, "127.0.0.1", hub_ca, hub_ca_key, srv_key, sans, 1);
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

    /* the operator's device CA, verified, and device dev1 */
    EVP_PKEY *ca_key = NULL;
    assert_int_equal(hub_pki_key_generate(HUB_PKI_KEY_EC_P256, &ca_key, NULL), 0);
    assert_int_equal(hub_pki_key_generate(HUB_PKI_KEY_EC_P256, &fx->dev_key, NULL), 0);
    X509 *ca = issue(HUB_PKI_CERT_ROOT, "device ca", NULL, NULL, ca_key, NULL, 0);
    fx->dev_cert = issue(HUB_PKI_CERT_DEVICE, "dev1", ca, ca_key, fx->dev_key, NULL, 0);
    char *pem = NULL;
    assert_int_equal(hub_pki_cert_to_pem(ca, &pem, NULL), 0);
    assert_int_equal(
        hub_registry_ca_upload(fx->reg, "devca", pem, strlen(pem), true, NULL, NULL, NULL, &err),
        0);
    free(pem);
    X509_free(ca);
    EVP_PKEY_free(ca_key);
    device_add(fx, "dev1");

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
    };
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

static void on_drained(void *arg)
{
    struct hub_net_worker *w = arg;
    event_base_loopexit(w->base, NULL);
}

static void do_drain(void *arg)
{
    struct fx *fx = arg;
    hub_device_server_drain(fx->server, 100, on_drained, &fx->pool.workers[0]);
}

static int teardown(void **state)
{
    struct fx *fx = *state;
    hub_net_worker_call(&fx->pool.workers[0], do_drain, fx);
    hub_net_pool_join_and_free(&fx->pool);
    hub_msg_telemetry_log_close(fx->log); /* last on_durable calls: the worker is gone */
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

static struct client client_open(struct fx *fx, bool with_cert)
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

static void client_close(struct client *c)
{
    SSL_free(c->ssl);
    close(c->fd);
}

static void put_str(uint8_t *b, size_t *n, const char *s)
{
    size_t l = strlen(s);
    b[(*n)++] = (uint8_t)(l >> 8);
    b[(*n)++] = (uint8_t)l;
    memcpy(b + *n, s, l);
    *n += l;
}

static void client_send(struct client *c, uint8_t type_flags, const uint8_t *body, size_t len)
{
    uint8_t buf[2048];
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
}

static void client_connect(struct client *c, const char *id, uint16_t keepalive)
{
    uint8_t b[512];
    size_t n = 0;
    put_str(b, &n, "MQTT");
    b[n++] = 4;
    b[n++] = 0x80; /* username, clean_session 0 */
    b[n++] = (uint8_t)(keepalive >> 8);
    b[n++] = (uint8_t)keepalive;
    put_str(b, &n, id);
    char user[128];
    snprintf(user, sizeof(user), "127.0.0.1/%s/?api-version=2021-04-12", id);
    put_str(b, &n, user);
    client_send(c, 0x10, b, n);
}

/* Reads one packet: returns its first byte, or -1 on EOF/timeout. */
static int client_read(struct client *c, uint8_t *body, size_t cap, size_t *len)
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

/* ---- tests ----------------------------------------------------------------- */

static void test_telemetry_and_c2d(void **state)
{
    struct fx *fx = *state;
    struct client c = client_open(fx, true);
    client_connect(&c, "dev1", 60);
    uint8_t body[1024];
    size_t len = 0;
    assert_int_equal(client_read(&c, body, sizeof(body), &len), 0x20);
    assert_int_equal(len, 2);
    assert_int_equal(body[1], 0); /* accepted */
    assert_int_equal(hub_device_live_count(fx->ep), 1);

    /* QoS 1 telemetry with a bag and RETAIN: PUBACK after the commit. */
    uint8_t p[256];
    size_t n = 0;
    put_str(p, &n, "devices/dev1/messages/events/%24.mid=m1&%24.ct=application%2Fjson&k=v%20w");
    p[n++] = 0;
    p[n++] = 7; /* packet id */
    memcpy(p + n, "{\"t\":1}", 7);
    n += 7;
    client_send(&c, 0x33, p, n); /* PUBLISH QoS 1 RETAIN */
    assert_int_equal(client_read(&c, body, sizeof(body), &len), 0x40);
    assert_int_equal(body[1], 7);
    struct hub_telemetry_msg_list *list = NULL;
    assert_int_equal(hub_msg_telemetry_read1(fx->log, 1, 10, "dev1", &list, NULL), 0);
    assert_int_equal(list->count, 1); /* durable before the PUBACK arrived */
    struct hub_telemetry_msg *m = &list->items[0];
    assert_int_equal(m->body_len, 7);
    assert_string_equal(m->sys[HUB_SYSPROP_MESSAGE_ID], "m1");
    assert_string_equal(m->sys[HUB_SYSPROP_CONTENT_TYPE], "application/json");
    assert_string_equal(m->sys[HUB_SYSPROP_CONN_DEVICE_ID], "dev1");
    assert_non_null(strstr(m->sys[HUB_SYSPROP_CONN_AUTH_METHOD], "x509Certificate"));
    assert_int_equal(m->app_count, 2);
    assert_string_equal(m->app[0].key, "k");
    assert_string_equal(m->app[0].value, "v w");
    assert_string_equal(m->app[1].key, HUB_DEVICE_RETAIN_PROPERTY);
    hub_telemetry_msg_list_free(list);

    /* PINGREQ -> PINGRESP */
    client_send(&c, 0xc0, NULL, 0);
    assert_int_equal(client_read(&c, body, sizeof(body), &len), 0xd0);

    /* SUBSCRIBE C2D (granted 1) and a twin filter (granted 0, reference §2). */
    n = 0;
    p[n++] = 0;
    p[n++] = 9;
    put_str(p, &n, "devices/dev1/messages/devicebound/#");
    p[n++] = 1;
    put_str(p, &n, "$iothub/twin/res/#");
    p[n++] = 0;
    client_send(&c, 0x82, p, n);
    assert_int_equal(client_read(&c, body, sizeof(body), &len), 0x90);
    assert_int_equal(len, 4);
    assert_int_equal(body[2], 1);
    assert_int_equal(body[3], 0);

    /* A C2D message enqueued now is pushed at once. */
    struct hub_c2d_msg cm;
    memset(&cm, 0, sizeof(cm));
    snprintf(cm.device_id, sizeof(cm.device_id), "dev1");
    cm.body = (const unsigned char *)"hello";
    cm.body_len = 5;
    cm.sys[HUB_SYSPROP_MESSAGE_ID] = "c1";
    struct hub_err err = {0};
    if (hub_msg_c2d_enqueue(fx->c2d, &cm, NULL, NULL, &err) != 0)
        fail_msg("enqueue: %s", err.msg);
    hub_device_c2d_notify(fx->ep, "dev1");
    int t = client_read(&c, body, sizeof(body), &len);
    assert_int_equal(t & 0xf6, 0x32); /* PUBLISH QoS 1 */
    size_t tl = (size_t)body[0] << 8 | body[1];
    char topic[512];
    memcpy(topic, body + 2, tl);
    topic[tl] = '\0';
    assert_non_null(strstr(topic, "devices/dev1/messages/devicebound/"));
    assert_non_null(strstr(topic, "%24.mid=c1"));
    uint16_t pid = (uint16_t)(body[2 + tl] << 8 | body[3 + tl]);
    assert_int_equal(len - 4 - tl, 5);
    assert_memory_equal(body + 4 + tl, "hello", 5);
    size_t count = 99;
    assert_int_equal(hub_msg_c2d_count(fx->c2d, "dev1", &count, NULL), 0);
    assert_int_equal(count, 1); /* still queued until the PUBACK */
    uint8_t ack[2] = {(uint8_t)(pid >> 8), (uint8_t)pid};
    client_send(&c, 0x40, ack, 2);
    /* PINGREQ round-trip orders us after the PUBACK's handling. */
    client_send(&c, 0xc0, NULL, 0);
    assert_int_equal(client_read(&c, body, sizeof(body), &len), 0xd0);
    assert_int_equal(hub_msg_c2d_count(fx->c2d, "dev1", &count, NULL), 0);
    assert_int_equal(count, 0);

    /* A second connection for dev1 replaces this one (session present). */
    struct client c2 = client_open(fx, true);
    client_connect(&c2, "dev1", 60);
    assert_int_equal(client_read(&c2, body, sizeof(body), &len), 0x20);
    assert_int_equal(body[0], 1); /* session present: clean_session 0 before */
    assert_int_equal(body[1], 0);
    assert_int_equal(client_read(&c, body, sizeof(body), &len), -1); /* old one closed */
    client_close(&c);
    assert_int_equal(hub_device_reason_count(fx->ep, HUB_DEVICE_R_DUPLICATE_CONNECTION), 1);

    /* Disabling the device closes its connection. */
    struct hub_device d;
    assert_int_equal(hub_registry_device_get(fx->reg, "dev1", &d, NULL), 0);
    d.status = HUB_DEVICE_DISABLED;
    assert_int_equal(hub_registry_device_update(fx->reg, &d, NULL, NULL, NULL), 0);
    assert_int_equal(client_read(&c2, body, sizeof(body), &len), -1);
    client_close(&c2);
    assert_int_equal(hub_device_reason_count(fx->ep, HUB_DEVICE_R_DEVICE_DISABLED), 1);
    d.status = HUB_DEVICE_ENABLED;
    assert_int_equal(hub_registry_device_update(fx->reg, &d, NULL, NULL, NULL), 0);
}

static void test_refusals(void **state)
{
    struct fx *fx = *state;
    uint8_t body[64];
    size_t len = 0;

    /* No certificate for a CA device: CONNACK 5, then closed. */
    struct client c = client_open(fx, false);
    client_connect(&c, "dev1", 60);
    assert_int_equal(client_read(&c, body, sizeof(body), &len), 0x20);
    assert_int_equal(body[1], 5);
    assert_int_equal(client_read(&c, body, sizeof(body), &len), -1);
    client_close(&c);
    assert_int_equal(hub_device_reason_count(fx->ep, HUB_DEVICE_R_NO_CREDENTIAL), 1);

    /* Unknown device. */
    c = client_open(fx, true);
    client_connect(&c, "nobody", 60);
    assert_int_equal(client_read(&c, body, sizeof(body), &len), 0x20);
    assert_int_equal(body[1], 5);
    client_close(&c);

    /* A packet before CONNECT closes without CONNACK. */
    c = client_open(fx, true);
    client_send(&c, 0xc0, NULL, 0);
    assert_int_equal(client_read(&c, body, sizeof(body), &len), -1);
    client_close(&c);
    assert_int_equal(hub_device_reason_count(fx->ep, HUB_DEVICE_R_PROTOCOL_VIOLATION), 1);

    /* Publishing to another device's topic closes. */
    c = client_open(fx, true);
    client_connect(&c, "dev1", 60);
    assert_int_equal(client_read(&c, body, sizeof(body), &len), 0x20);
    assert_int_equal(body[1], 0);
    uint8_t p[128];
    size_t n = 0;
    put_str(p, &n, "devices/dev2/messages/events/");
    client_send(&c, 0x30, p, n);
    assert_int_equal(client_read(&c, body, sizeof(body), &len), -1);
    client_close(&c);
    assert_int_equal(hub_device_reason_count(fx->ep, HUB_DEVICE_R_TOPIC_FORBIDDEN), 1);

    /* QoS 2 closes. */
    c = client_open(fx, true);
    client_connect(&c, "dev1", 60);
    assert_int_equal(client_read(&c, body, sizeof(body), &len), 0x20);
    n = 0;
    put_str(p, &n, "devices/dev1/messages/events/");
    p[n++] = 0;
    p[n++] = 1;
    client_send(&c, 0x34, p, n);
    assert_int_equal(client_read(&c, body, sizeof(body), &len), -1);
    client_close(&c);
    assert_int_equal(hub_device_reason_count(fx->ep, HUB_DEVICE_R_QOS2_UNSUPPORTED), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_telemetry_and_c2d, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
