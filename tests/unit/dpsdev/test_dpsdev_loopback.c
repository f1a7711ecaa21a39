/*
 * dpsdev: one worker serving DPS over MQTT/TLS on 127.0.0.1 (port 0), a
 * blocking OpenSSL client in the test thread, and a fake backend that
 * decides from the registration id and the presented credential (the real
 * one, over the dps layer, is covered by tests/e2e/dps_device.sh). Covers
 * the §7 exchange (SUBSCRIBE, register -> 202 + retry-after, poll -> 200
 * assigned with the registration state), what the backend is handed (leaf,
 * chain, SAS password, payload), each refusal's status / errorCode /
 * counter, polls of unknown or foreign operations, and CONNECT refusals.
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
#include <jansson.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "dpsdev/dpsdev.h"
#include "net/net.h"
#include "pki/pki.h"

#define SCOPE "0ne0000ABCD"

struct seen {
    int calls;
    char leaf_cn[64];
    int chain_len;
    char sas[256];
    char payload[128];
};

struct fx {
    char dir[64];
    struct hub_net_pool pool;
    SSL_CTX *server_ctx;
    struct hub_dpsdev_service *svc;
    struct hub_dpsdev_server *server;
    int port;
    EVP_PKEY *dev_key;
    X509 *dev_cert; /* CN dev1 */
    X509 *inter;    /* its issuer, sent as the chain */
    SSL_CTX *client_ctx;
    struct seen seen;
};

/* ---- the fake backend -------------------------------------------------------- */

static void fake_register(void *arg, const struct hub_dpsdev_claim *claim,
                          struct hub_dpsdev_verdict *v)
{
    struct seen *s = arg;
    s->calls++;
    s->leaf_cn[0] = s->sas[0] = s->payload[0] = '\0';
    s->chain_len = claim->chain != NULL ? sk_X509_num(claim->chain) : -1;
    if (claim->leaf != NULL)
        X509_NAME_get_text_by_NID(X509_get_subject_name(claim->leaf), NID_commonName, s->leaf_cn,
                                  sizeof(s->leaf_cn));
    if (claim->sas_token != NULL)
        snprintf(s->sas, sizeof(s->sas), "%.*s", (int)claim->sas_token_len, claim->sas_token);
    if (claim->payload != NULL) {
        char *p = json_dumps(claim->payload, JSON_COMPACT);
        snprintf(s->payload, sizeof(s->payload), "%s", p);
        free(p);
    }
    const char *id = claim->registration_id;
    if (claim->leaf == NULL && claim->sas_token == NULL) {
        v->reason = HUB_DPSDEV_R_NO_CREDENTIAL;
        return;
    }
    if (claim->leaf != NULL && strcmp(s->leaf_cn, id) != 0) {
        v->reason = HUB_DPSDEV_R_CN_MISMATCH;
        snprintf(v->detail, sizeof(v->detail), "leaf CN %s", s->leaf_cn);
        return;
    }
    if (strcmp(id, "disabled1") == 0) {
        v->reason = HUB_DPSDEV_R_DISABLED;
        return;
    }
    if (strcmp(id, "nobody") == 0) {
        v->reason = HUB_DPSDEV_R_NO_ENROLLMENT;
        return;
    }
    const char *status = strcmp(id, "broken") == 0 ? "failed" : "assigned";
    v->reason = strcmp(id, "broken") == 0 ? HUB_DPSDEV_R_ASSIGN_FAILED : HUB_DPSDEV_R_OK;
    v->registration_state =
        json_pack("{s:s, s:s, s:s, s:s, s:s}", "registrationId", id, "deviceId", id, "assignedHub",
                  "hub.test", "status", status, "substatus", "initialAssignment");
}

/* ---- fixture ------------------------------------------------------------------- */

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

static int setup(void **state)
{
    struct fx *fx = calloc(1, sizeof(*fx));
    struct hub_err err = {0};
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/hubd-test-dps-XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    char cert_path[256], key_path[256];

    EVP_PKEY *hub_ca_key = NULL, *srv_key = NULL, *ca_key = NULL, *int_key = NULL;
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

    assert_int_equal(hub_pki_key_generate(HUB_PKI_KEY_EC_P256, &ca_key, NULL), 0);
    assert_int_equal(hub_pki_key_generate(HUB_PKI_KEY_EC_P256, &int_key, NULL), 0);
    assert_int_equal(hub_pki_key_generate(HUB_PKI_KEY_EC_P256, &fx->dev_key, NULL), 0);
    X509 *ca = issue(HUB_PKI_CERT_ROOT, "device ca", NULL, NULL, ca_key, NULL, 0);
    fx->inter = issue(HUB_PKI_CERT_INTERMEDIATE, "factory", ca, ca_key, int_key, NULL, 0);
    fx->dev_cert = issue(HUB_PKI_CERT_DEVICE, "dev1", fx->inter, int_key, fx->dev_key, NULL, 0);
    X509_free(ca);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(int_key);

    fx->client_ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_verify(fx->client_ctx, SSL_VERIFY_NONE, NULL);

    assert_int_equal(hub_net_init(&err), 0);
    assert_int_equal(hub_net_pool_init(&fx->pool, 1, &err), 0);
    struct hub_dpsdev_env env = {
        .id_scope = SCOPE,
        .backend = {.register_device = fake_register, .arg = &fx->seen},
        .handshake_timeout_ms = 3000,
        .retry_after_s = 1,
    };
    assert_int_equal(hub_dpsdev_service_new(&env, &fx->svc, &err), 0);
    int fd = -1;
    if (hub_net_listen("127.0.0.1", 0, "--dps-mqtt-port", 16, &fd, &err) != 0)
        fail_msg("listen: %s", err.msg);
    struct sockaddr_in sin;
    socklen_t sl = sizeof(sin);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
    fx->port = ntohs(sin.sin_port);
    if (hub_dpsdev_server_new(fx->svc, &fx->pool.workers[0], fx->server_ctx, fd, &fx->server,
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
    hub_dpsdev_server_drain(fx->server, on_drained, &fx->pool.workers[0]);
}

static int teardown(void **state)
{
    struct fx *fx = *state;
    hub_net_worker_call(&fx->pool.workers[0], do_drain, fx);
    hub_net_pool_join_and_free(&fx->pool);
    hub_dpsdev_service_free(fx->svc);
    SSL_CTX_free(fx->server_ctx);
    SSL_CTX_free(fx->client_ctx);
    X509_free(fx->dev_cert);
    X509_free(fx->inter);
    EVP_PKEY_free(fx->dev_key);
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

/* ---- a tiny blocking MQTT client --------------------------------------------- */

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
        assert_int_equal(SSL_add1_chain_cert(c.ssl, fx->inter), 1);
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
    memcpy(buf + n, body, len);
    n += len;
    assert_int_equal(SSL_write(c->ssl, buf, (int)n), (int)n);
}

/* Reads one packet: its first byte, or -1 on EOF/timeout. */
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

/* CONNECT as the Node SDK does (clean session, username without '?');
 * returns the CONNACK code. */
static int client_connect(struct client *c, const char *client_id, const char *scope,
                          const char *reg, const char *password)
{
    uint8_t b[1024];
    size_t n = 0;
    put_str(b, &n, "MQTT");
    b[n++] = 4;
    b[n++] = (uint8_t)(0x80 | 0x02 | (password != NULL ? 0x40 : 0));
    b[n++] = 0;
    b[n++] = 60;
    put_str(b, &n, client_id);
    char user[256];
    snprintf(user, sizeof(user),
             "%s/registrations/%s/api-version=2019-03-31&ClientVersion=azure-iot-provisioning-"
             "device%%2F1.9.1",
             scope, reg);
    put_str(b, &n, user);
    if (password != NULL)
        put_str(b, &n, password);
    client_send(c, 0x10, b, n);
    uint8_t ack[16];
    size_t len = 0;
    assert_int_equal(client_read(c, ack, sizeof(ack), &len), 0x20);
    assert_int_equal(len, 2);
    return ack[1];
}

static void client_subscribe(struct client *c)
{
    uint8_t b[64];
    size_t n = 0;
    b[n++] = 0;
    b[n++] = 1;
    put_str(b, &n, "$dps/registrations/res/#");
    b[n++] = 1;
    client_send(c, 0x82, b, n);
    uint8_t ack[16];
    size_t len = 0;
    assert_int_equal(client_read(c, ack, sizeof(ack), &len), 0x90);
    assert_int_equal(len, 3);
    assert_int_equal(ack[2], 1);
}

/* QoS 1 PUBLISH; expects the PUBACK, then the response PUBLISH. Fills topic
 * and body (NUL-terminated). */
static void client_request(struct client *c, const char *topic, const char *body, uint16_t pid,
                           char *rtopic, size_t tcap, char *rbody, size_t bcap)
{
    uint8_t b[1024];
    size_t n = 0;
    put_str(b, &n, topic);
    b[n++] = (uint8_t)(pid >> 8);
    b[n++] = (uint8_t)pid;
    memcpy(b + n, body, strlen(body));
    n += strlen(body);
    client_send(c, 0x32, b, n);
    uint8_t r[4096];
    size_t len = 0;
    assert_int_equal(client_read(c, r, sizeof(r), &len), 0x40);
    assert_int_equal(len, 2);
    assert_int_equal((r[0] << 8) | r[1], pid);
    int h = client_read(c, r, sizeof(r), &len);
    assert_int_equal(h & 0xf0, 0x30);
    size_t tl = ((size_t)r[0] << 8) | r[1];
    size_t off = 2 + tl + ((h & 0x06) ? 2 : 0);
    assert_true(tl < tcap && len - off < bcap);
    memcpy(rtopic, r + 2, tl);
    rtopic[tl] = '\0';
    memcpy(rbody, r + off, len - off);
    rbody[len - off] = '\0';
}

static json_t *parse(const char *s)
{
    json_error_t e;
    json_t *j = json_loads(s, 0, &e);
    if (j == NULL)
        fail_msg("not JSON: %s", s);
    return j;
}

/* ---- tests ------------------------------------------------------------------- */

static void test_x509_register_and_poll(void **state)
{
    struct fx *fx = *state;
    struct client c = client_open(fx, true);
    assert_int_equal(client_connect(&c, "dev1", SCOPE, "dev1", NULL), 0);
    client_subscribe(&c);
    char topic[256], body[2048];
    client_request(&c, "$dps/registrations/PUT/iotdps-register/?$rid=1",
                   "{\"registrationId\":\"dev1\",\"payload\":{\"a\":1}}", 5, topic, sizeof(topic),
                   body, sizeof(body));
    assert_string_equal(topic, "$dps/registrations/res/202/?$rid=1&retry-after=1");
    json_t *j = parse(body);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "assigning");
    const char *op = json_string_value(json_object_get(j, "operationId"));
    assert_non_null(op);
    /* the backend saw the leaf, the intermediate, no password, the payload */
    assert_int_equal(fx->seen.calls, 1);
    assert_string_equal(fx->seen.leaf_cn, "dev1");
    assert_int_equal(fx->seen.chain_len, 1);
    assert_string_equal(fx->seen.sas, "");
    assert_string_equal(fx->seen.payload, "{\"a\":1}");

    char poll[256];
    snprintf(poll, sizeof(poll),
             "$dps/registrations/GET/iotdps-get-operationstatus/?$rid=2&operationId=%s", op);
    client_request(&c, poll, " ", 6, topic, sizeof(topic), body, sizeof(body));
    json_decref(j);
    assert_string_equal(topic, "$dps/registrations/res/200/?$rid=2");
    j = parse(body);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "assigned");
    json_t *rs = json_object_get(j, "registrationState");
    assert_string_equal(json_string_value(json_object_get(rs, "assignedHub")), "hub.test");
    assert_string_equal(json_string_value(json_object_get(rs, "deviceId")), "dev1");
    json_decref(j);
    assert_int_equal(hub_dpsdev_reason_count(fx->svc, HUB_DPSDEV_R_OK), 1);

    /* an unknown operation id: 404 with the DPS error JSON */
    client_request(&c,
                   "$dps/registrations/GET/iotdps-get-operationstatus/?$rid=3&operationId=4.x.y",
                   " ", 7, topic, sizeof(topic), body, sizeof(body));
    assert_string_equal(topic, "$dps/registrations/res/404/?$rid=3");
    j = parse(body);
    assert_int_equal(json_integer_value(json_object_get(j, "errorCode")), 404201);
    json_decref(j);
    client_close(&c);
}

static void test_sas_password_reaches_backend(void **state)
{
    struct fx *fx = *state;
    struct client c = client_open(fx, false);
    const char *tok =
        "SharedAccessSignature sr=" SCOPE "/registrations/sym1&sig=abc&skn=registration&se=1";
    assert_int_equal(client_connect(&c, "sym1", SCOPE, "sym1", tok), 0);
    client_subscribe(&c);
    char topic[256], body[2048];
    client_request(&c, "$dps/registrations/PUT/iotdps-register/?$rid=9",
                   "{\"registrationId\":\"sym1\"}", 1, topic, sizeof(topic), body, sizeof(body));
    assert_string_equal(topic, "$dps/registrations/res/202/?$rid=9&retry-after=1");
    assert_string_equal(fx->seen.sas, tok);
    assert_string_equal(fx->seen.leaf_cn, "");
    assert_string_equal(fx->seen.payload, "");
    client_close(&c);
}

/* One refusal per reason: status on the response topic, errorCode, counter,
 * and the backend not asked when the request itself is wrong. */
static void test_refusals(void **state)
{
    struct fx *fx = *state;
    static const struct {
        const char *reg;  /* client id = username registration id */
        bool cert;        /* present dev1's certificate */
        const char *body; /* register body */
        int status;
        int code;
        enum hub_dpsdev_reason reason;
        bool backend_called;
    } cases[] = {
        {"dev2", true, "{\"registrationId\":\"dev2\"}", 401, 401002, HUB_DPSDEV_R_CN_MISMATCH,
         true},
        {"disabled1", false, "{\"registrationId\":\"disabled1\"}", 401, 401002,
         HUB_DPSDEV_R_NO_CREDENTIAL, true},
        {"dev1", true, "{\"registrationId\":\"other\"}", 400, 400004,
         HUB_DPSDEV_R_REGISTRATION_ID_MISMATCH, false},
        {"dev1", true, "not json", 400, 400004, HUB_DPSDEV_R_BAD_REQUEST, false},
        {"dev1", true, "{\"payload\":{}}", 400, 400004, HUB_DPSDEV_R_BAD_REQUEST, false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct client c = client_open(fx, cases[i].cert);
        assert_int_equal(client_connect(&c, cases[i].reg, SCOPE, cases[i].reg, NULL), 0);
        client_subscribe(&c);
        int calls = fx->seen.calls;
        uint64_t before = hub_dpsdev_reason_count(fx->svc, cases[i].reason);
        char topic[256], body[2048], want[128];
        client_request(&c, "$dps/registrations/PUT/iotdps-register/?$rid=4", cases[i].body, 2,
                       topic, sizeof(topic), body, sizeof(body));
        snprintf(want, sizeof(want), "$dps/registrations/res/%d/?$rid=4", cases[i].status);
        if (strcmp(topic, want) != 0)
            fail_msg("case %zu: topic %s want %s", i, topic, want);
        json_t *j = parse(body);
        assert_int_equal(json_integer_value(json_object_get(j, "errorCode")), cases[i].code);
        assert_non_null(json_object_get(j, "trackingId"));
        json_decref(j);
        assert_int_equal(hub_dpsdev_reason_count(fx->svc, cases[i].reason), before + 1);
        assert_int_equal(fx->seen.calls - calls, cases[i].backend_called ? 1 : 0);
        client_close(&c);
    }
}

static void test_disabled_and_failed(void **state)
{
    struct fx *fx = *state;
    static const char tok[] = "SharedAccessSignature sr=x&sig=y&skn=registration&se=1";
    /* disabled: refused at register */
    struct client c = client_open(fx, false);
    assert_int_equal(client_connect(&c, "disabled1", SCOPE, "disabled1", tok), 0);
    char topic[256], body[2048];
    client_request(&c, "$dps/registrations/PUT/iotdps-register/?$rid=1",
                   "{\"registrationId\":\"disabled1\"}", 1, topic, sizeof(topic), body,
                   sizeof(body));
    assert_string_equal(topic, "$dps/registrations/res/401/?$rid=1");
    assert_int_equal(hub_dpsdev_reason_count(fx->svc, HUB_DPSDEV_R_DISABLED), 1);
    client_close(&c);

    /* an assignment that failed: 202, then 200 with status failed */
    c = client_open(fx, false);
    assert_int_equal(client_connect(&c, "broken", SCOPE, "broken", tok), 0);
    client_request(&c, "$dps/registrations/PUT/iotdps-register/?$rid=1",
                   "{\"registrationId\":\"broken\"}", 1, topic, sizeof(topic), body, sizeof(body));
    assert_string_equal(topic, "$dps/registrations/res/202/?$rid=1&retry-after=1");
    json_t *j = parse(body);
    char poll[256];
    snprintf(poll, sizeof(poll),
             "$dps/registrations/GET/iotdps-get-operationstatus/?$rid=2&operationId=%s",
             json_string_value(json_object_get(j, "operationId")));
    json_decref(j);
    client_request(&c, poll, " ", 2, topic, sizeof(topic), body, sizeof(body));
    assert_string_equal(topic, "$dps/registrations/res/200/?$rid=2");
    j = parse(body);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "failed");
    json_decref(j);
    client_close(&c);
}

/* Another registration cannot read dev1's operation. */
static void test_foreign_operation(void **state)
{
    struct fx *fx = *state;
    struct client c = client_open(fx, true);
    assert_int_equal(client_connect(&c, "dev1", SCOPE, "dev1", NULL), 0);
    char topic[256], body[2048];
    client_request(&c, "$dps/registrations/PUT/iotdps-register/?$rid=1",
                   "{\"registrationId\":\"dev1\"}", 1, topic, sizeof(topic), body, sizeof(body));
    json_t *j = parse(body);
    char poll[256];
    snprintf(poll, sizeof(poll),
             "$dps/registrations/GET/iotdps-get-operationstatus/?$rid=2&operationId=%s",
             json_string_value(json_object_get(j, "operationId")));
    json_decref(j);
    client_close(&c);

    c = client_open(fx, false);
    assert_int_equal(client_connect(&c, "sym1", SCOPE, "sym1", "SharedAccessSignature x"), 0);
    client_request(&c, poll, " ", 2, topic, sizeof(topic), body, sizeof(body));
    assert_string_equal(topic, "$dps/registrations/res/404/?$rid=2");
    client_close(&c);
}

static void test_connect_refusals(void **state)
{
    struct fx *fx = *state;
    static const struct {
        const char *client_id, *scope, *reg;
        int connack;
    } cases[] = {
        {"dev1", "0ne99999999", "dev1", 5}, /* another service's scope */
        {"dev2", SCOPE, "dev1", 2},         /* client id differs from the username */
        {"dev1", SCOPE, "de v1", 4},        /* malformed registration id */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct client c = client_open(fx, true);
        int code = client_connect(&c, cases[i].client_id, cases[i].scope, cases[i].reg, NULL);
        if (code != cases[i].connack)
            fail_msg("case %zu: CONNACK %d want %d", i, code, cases[i].connack);
        uint8_t b[16];
        size_t len;
        assert_int_equal(client_read(&c, b, sizeof(b), &len), -1); /* then closed */
        client_close(&c);
    }
}

/* A PUBLISH to a non-DPS topic closes the connection. */
static void test_unknown_topic_closes(void **state)
{
    struct fx *fx = *state;
    struct client c = client_open(fx, true);
    assert_int_equal(client_connect(&c, "dev1", SCOPE, "dev1", NULL), 0);
    uint8_t b[128];
    size_t n = 0;
    put_str(b, &n, "devices/dev1/messages/events/");
    client_send(&c, 0x30, b, n);
    size_t len;
    assert_int_equal(client_read(&c, b, sizeof(b), &len), -1);
    client_close(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_x509_register_and_poll, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sas_password_reaches_backend, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disabled_and_failed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_foreign_operation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connect_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_topic_closes, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
