/*
 * dpsdev: the DPS MQTT-over-TLS listener of one worker, and its connections.
 *
 *   TLS --handshake--> WAIT --CONNECT ok: CONNACK 0--> LIVE --DISCONNECT/EOF--> closed
 *    |                  |--CONNECT refused: CONNACK n--> flush --> closed
 *    +--deadline--------+--deadline / bad packet------------------> closed
 *
 * The CONNECT only establishes who the device claims to be (client id =
 * the username's registration id, the service's ID scope); the credential
 * (TLS chain or SAS password) is judged by the backend when the register
 * request arrives, because which key or CA it must match depends on the
 * enrollment, and so that a refusal reaches the device as the DPS error
 * JSON the SDKs report (not a bare CONNACK 5). Answers are published at
 * QoS 0 (the SDKs subscribe at QoS 1 and accept either).
 *
 * One timer per connection: the handshake + CONNECT deadline, then the
 * keep-alive (1.5x the client's value, reference §1), bounded because the
 * CONNECT proves nothing yet: anyone who knows the ID scope (not a secret)
 * gets this far. So a LIVE connection goes after the idle limit without a
 * packet whatever its keep-alive (0 included), after the session limit in all
 * (a registration takes seconds), after REFUSED_MAX refused registrations
 * and after REGISTER_MAX registrations of any outcome: an idle or looping
 * client cannot hold a slot of the admission budget every listener shares,
 * nor turn one connection into unbounded attestation work and log lines.
 */
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <openssl/err.h>

#include "common/log.h"
#include "dpsdev/dpsdev_int.h"
#include "mqtt/mqtt.h"
#include "net/admission.h"
#include "net/net.h"

#define DEFAULT_MAX_PACKET   (64u * 1024)
#define DEFAULT_HANDSHAKE_MS 10000
#define TOPIC_MAX            256
#define IDLE_MAX_MS          60000  /* env idle_max_ms default */
#define SESSION_MAX_MS       300000 /* env session_max_ms default */
#define REFUSED_MAX          3
#define REGISTER_MAX         10

enum conn_state { CONN_TLS, CONN_WAIT, CONN_LIVE, CONN_FLUSH };

struct conn {
    struct hub_dpsdev_server *server;
    struct conn *prev, *next;
    struct bufferevent *bev;
    struct event *timer;
    enum conn_state state;
    char peer[64];
    struct hub_dpsdev_username user;
    X509 *leaf;
    STACK_OF(X509) * chain;
    char *password; /* SAS token, NUL-terminated copy; NULL when absent */
    size_t password_len;
    int64_t idle_ms;        /* LIVE: the most silence allowed */
    int64_t live_until_ms;  /* LIVE: monotonic end of the session */
    unsigned registers;     /* register requests answered */
    unsigned refused;       /* ... of which refused */
    const char *end_reason; /* set when a limit ends the session after an answer */
};

struct hub_dpsdev_server {
    struct hub_dpsdev_service *svc;
    struct hub_net_worker *worker;
    SSL_CTX *ssl_ctx;
    struct evconnlistener *listener;
    struct conn *conns;
    size_t conn_count;
    struct hub_dpsdev__limits limits;
};

static void format_peer(const struct sockaddr *sa, int salen, char *out, size_t cap)
{
    char host[64], serv[8];
    if (sa == NULL || getnameinfo(sa, (socklen_t)salen, host, sizeof(host), serv, sizeof(serv),
                                  NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
        snprintf(out, cap, "?");
        return;
    }
    snprintf(out, cap, strchr(host, ':') != NULL ? "[%s]:%s" : "%s:%s", host, serv);
}

static void conn_free(struct conn *c, const char *reason)
{
    struct hub_dpsdev_server *s = c->server;
    if (reason != NULL)
        hub_log_kv(HUB_LOG_INFO, "dps_conn_closed", "peer", c->peer, "registration",
                   c->user.registration_id, "reason", reason, NULL);
    if (c->timer != NULL)
        event_free(c->timer);
    if (c->bev != NULL)
        bufferevent_free(c->bev); /* closes the socket, frees the SSL (and its ticket) */
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    s->conn_count--;
    X509_free(c->leaf);
    sk_X509_pop_free(c->chain, X509_free);
    free(c->password);
    free(c);
}

static void arm_timer(struct conn *c, int64_t ms)
{
    struct timeval tv = {.tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(c->timer, &tv);
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* LIVE: the next deadline is the idle limit or the session's end. */
static void arm_live_timer(struct conn *c)
{
    int64_t left = c->live_until_ms - mono_ms();
    arm_timer(c, left < c->idle_ms ? (left > 0 ? left : 0) : c->idle_ms);
}

static void on_flush_write(struct bufferevent *bev, void *arg)
{
    (void)bev;
    conn_free(arg, NULL);
}

static void on_flush_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    (void)what;
    conn_free(arg, NULL);
}

/* Lets queued bytes (a CONNACK refusal) go out, then closes. */
static void close_after_flush(struct conn *c)
{
    c->state = CONN_FLUSH;
    bufferevent_disable(c->bev, EV_READ);
    bufferevent_setcb(c->bev, NULL, on_flush_write, on_flush_event, c);
    arm_timer(c, 2000);
    if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
        conn_free(c, NULL);
}

static int send_bytes(struct conn *c, const void *buf, size_t len)
{
    return bufferevent_write(c->bev, buf, len) == 0 ? 0 : -1;
}

static int publish0(struct conn *c, const char *topic, const char *body)
{
    size_t blen = body != NULL ? strlen(body) : 0;
    size_t size = hub_mqtt_publish_size(strlen(topic), blen, 0);
    uint8_t *pkt = size > 0 ? malloc(size) : NULL;
    if (pkt == NULL)
        return -1;
    struct hub_mqtt_publish pub = {
        .qos = 0,
        .topic = {.ptr = topic, .len = strlen(topic)},
        .payload = {.ptr = (const uint8_t *)body, .len = blen},
    };
    int n = hub_mqtt_publish_encode(pkt, size, &pub, NULL);
    int rc = n > 0 ? send_bytes(c, pkt, (size_t)n) : -1;
    free(pkt);
    return rc;
}

/* ---- packets ---------------------------------------------------------------- */

/* 0 keep going, 1 refused (CONNACK queued: flush then close), -1 close now. */
static int on_connect(struct conn *c, const struct hub_mqtt_connect *cn)
{
    struct hub_err err = {0};
    uint8_t code = HUB_MQTT_CONNACK_ACCEPTED;
    const char *why = NULL;
    if (!cn->has_username ||
        hub_dpsdev_username_parse(cn->username.ptr, cn->username.len, &c->user, &err) != 0) {
        code = HUB_MQTT_CONNACK_BAD_USERNAME_OR_PASSWORD;
        why = cn->has_username ? "USERNAME_MALFORMED" : "USERNAME_MISSING";
    } else if (cn->client_id.len != strlen(c->user.registration_id) ||
               memcmp(cn->client_id.ptr, c->user.registration_id, cn->client_id.len) != 0) {
        code = HUB_MQTT_CONNACK_IDENTIFIER_REJECTED;
        why = "CLIENT_ID_MISMATCH";
        snprintf(err.msg, sizeof(err.msg), "client id differs from the username's registration id");
    } else if (strcmp(c->user.id_scope, hub_dpsdev_service_id_scope(c->server->svc)) != 0) {
        code = HUB_MQTT_CONNACK_NOT_AUTHORIZED;
        why = "SCOPE_UNKNOWN";
        snprintf(err.msg, sizeof(err.msg), "ID scope \"%.64s\" is not this service's",
                 c->user.id_scope);
    }
    uint8_t ack[HUB_MQTT_SMALL_PACKET_MAX];
    int n = hub_mqtt_connack_encode(ack, sizeof(ack), false, code, NULL);
    if (n <= 0 || send_bytes(c, ack, (size_t)n) != 0)
        return -1;
    if (code != HUB_MQTT_CONNACK_ACCEPTED) {
        hub_log_kv(HUB_LOG_WARN, "dps_connect_refused", "peer", c->peer, "registration",
                   c->user.registration_id, "reason", why, "detail", err.msg, NULL);
        return 1;
    }
    if (cn->has_password) {
        c->password = malloc(cn->password.len + 1);
        if (c->password == NULL)
            return -1;
        memcpy(c->password, cn->password.ptr, cn->password.len);
        c->password[cn->password.len] = '\0';
        c->password_len = cn->password.len;
    }
    c->state = CONN_LIVE;
    int64_t keepalive_ms = (int64_t)cn->keep_alive_s * 1500;
    const struct hub_dpsdev__limits *l = &c->server->limits;
    c->idle_ms = keepalive_ms > 0 && keepalive_ms < l->idle_max_ms ? keepalive_ms : l->idle_max_ms;
    c->live_until_ms = mono_ms() + l->session_max_ms;
    arm_live_timer(c);
    return 0;
}

static int on_subscribe(struct conn *c, const struct hub_mqtt_subscribe *sub)
{
    uint8_t codes[HUB_MQTT_FILTERS_MAX];
    for (size_t i = 0; i < sub->count; i++) {
        static const char filter[] = "$dps/registrations/res/#";
        bool ok = sub->filters[i].filter.len == sizeof(filter) - 1 &&
                  memcmp(sub->filters[i].filter.ptr, filter, sizeof(filter) - 1) == 0;
        codes[i] = ok ? (sub->filters[i].qos > 0 ? 1 : 0) : HUB_MQTT_SUBACK_FAILURE;
    }
    uint8_t buf[16];
    int n = hub_mqtt_suback_encode(buf, sizeof(buf), sub->packet_id, codes, sub->count, NULL);
    return n > 0 ? send_bytes(c, buf, (size_t)n) : -1;
}

static int answer(struct conn *c, const char *rid, const struct hub_dpsdev_answer *a)
{
    char topic[TOPIC_MAX];
    int retry = a->status == 202 ? hub_dpsdev_service_retry_after(c->server->svc) : -1;
    if (hub_dpsdev_response_topic(topic, sizeof(topic), a->status, rid, retry) < 0)
        return -1;
    return publish0(c, topic, a->body);
}

/* -1 with *reason NULL: the close was logged here, with the topic. */
static int on_publish(struct conn *c, const struct hub_mqtt_publish *pub, const char **reason)
{
    if (pub->qos > 1) {
        *reason = "QOS2_UNSUPPORTED";
        return -1;
    }
    struct hub_err err = {0};
    struct hub_dpsdev_topic t;
    if (hub_dpsdev_topic_parse(pub->topic.ptr, pub->topic.len, &t, &err) != 0) {
        char sample[HUB_LOG_ESCAPED_MAX];
        hub_log_escape(pub->topic.ptr, pub->topic.len < 96 ? pub->topic.len : 96, sample,
                       sizeof(sample));
        hub_log_kv(HUB_LOG_WARN, "dps_conn_closed", "peer", c->peer, "registration",
                   c->user.registration_id, "reason", "TOPIC_UNKNOWN", "detail", err.msg, "topic",
                   sample, NULL);
        *reason = NULL;
        return -1;
    }
    if (pub->qos == 1) {
        uint8_t ack[HUB_MQTT_SMALL_PACKET_MAX];
        int n = hub_mqtt_puback_encode(ack, sizeof(ack), pub->packet_id, NULL);
        if (n <= 0 || send_bytes(c, ack, (size_t)n) != 0)
            return -1;
    }
    struct hub_dpsdev_answer a;
    int rc;
    if (t.kind == HUB_DPSDEV_TOPIC_REGISTER) {
        struct hub_dpsdev_claim claim = {
            .transport = "mqtt",
            .id_scope = c->user.id_scope,
            .registration_id = c->user.registration_id,
            .leaf = c->leaf,
            .chain = c->chain,
            .sas_token = c->password,
            .sas_token_len = c->password_len,
            .now = (int64_t)time(NULL),
        };
        rc = hub_dpsdev_service_register(c->server->svc, &claim, pub->payload.ptr, pub->payload.len,
                                         c->peer, &a, &err);
    } else {
        rc = hub_dpsdev_service_status(c->server->svc, c->user.id_scope, c->user.registration_id,
                                       t.operation_id, &a, &err);
    }
    if (rc != 0)
        return -1;
    rc = answer(c, t.rid, &a);
    free(a.body);
    if (rc == 0 && t.kind == HUB_DPSDEV_TOPIC_REGISTER) {
        c->registers++;
        c->refused += a.status != 202;
        if (c->refused >= REFUSED_MAX)
            c->end_reason = "TOO_MANY_REFUSALS";
        else if (c->registers >= REGISTER_MAX)
            c->end_reason = "TOO_MANY_REGISTRATIONS";
        if (c->end_reason != NULL)
            return 1; /* the answer goes out, then the connection closes */
    }
    return rc;
}

/* 0 keep going, 1 flush then close, -1 close now (reason logged by caller). */
static int handle(struct conn *c, const struct hub_mqtt_packet *p, const char **reason)
{
    if (c->state == CONN_WAIT) {
        if (p->type != HUB_MQTT_CONNECT) {
            *reason = "PROTOCOL_VIOLATION";
            return -1;
        }
        return on_connect(c, &p->u.connect);
    }
    switch (p->type) {
    case HUB_MQTT_SUBSCRIBE:
        return on_subscribe(c, &p->u.subscribe);
    case HUB_MQTT_UNSUBSCRIBE: {
        uint8_t buf[HUB_MQTT_SMALL_PACKET_MAX];
        int n = hub_mqtt_unsuback_encode(buf, sizeof(buf), p->u.unsubscribe.packet_id, NULL);
        return n > 0 ? send_bytes(c, buf, (size_t)n) : -1;
    }
    case HUB_MQTT_PUBLISH:
        return on_publish(c, &p->u.publish, reason);
    case HUB_MQTT_PUBACK:
        return 0;
    case HUB_MQTT_PINGREQ: {
        uint8_t buf[HUB_MQTT_SMALL_PACKET_MAX];
        int n = hub_mqtt_pingresp_encode(buf, sizeof(buf), NULL);
        return n > 0 ? send_bytes(c, buf, (size_t)n) : -1;
    }
    case HUB_MQTT_DISCONNECT:
        *reason = NULL; /* an orderly end: nothing to say */
        return -1;
    default:
        *reason = "PROTOCOL_VIOLATION";
        return -1;
    }
}

static void on_read(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    for (;;) {
        size_t len = evbuffer_get_length(in);
        if (len == 0)
            break;
        const uint8_t *data = evbuffer_pullup(in, -1);
        struct hub_mqtt_packet p;
        struct hub_err err = {0};
        int n = hub_mqtt_decode(data, len, c->server->limits.max_packet, &p, &err);
        if (n == 0)
            break;
        if (n < 0) {
            if (n == HUB_MQTT_E_PROTOCOL_LEVEL && c->state == CONN_WAIT) {
                uint8_t ack[HUB_MQTT_SMALL_PACKET_MAX];
                int k = hub_mqtt_connack_encode(ack, sizeof(ack), false,
                                                HUB_MQTT_CONNACK_BAD_PROTOCOL_LEVEL, NULL);
                if (k > 0 && send_bytes(c, ack, (size_t)k) == 0) {
                    close_after_flush(c);
                    return;
                }
            }
            hub_log_kv(HUB_LOG_WARN, "dps_conn_closed", "peer", c->peer, "reason",
                       n == HUB_E_TOO_LARGE ? "PACKET_TOO_LARGE" : "MALFORMED_PACKET", "detail",
                       err.msg, NULL);
            conn_free(c, NULL);
            return;
        }
        const char *reason = "INTERNAL";
        int rc = handle(c, &p, &reason);
        evbuffer_drain(in, (size_t)n);
        if (rc < 0) {
            conn_free(c, reason);
            return;
        }
        if (rc > 0) {
            if (c->end_reason != NULL)
                hub_log_kv(HUB_LOG_WARN, "dps_conn_closed", "peer", c->peer, "registration",
                           c->user.registration_id, "reason", c->end_reason, NULL);
            close_after_flush(c);
            return;
        }
        if (c->state == CONN_LIVE)
            arm_live_timer(c);
    }
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    struct conn *c = arg;
    if (what & BEV_EVENT_CONNECTED) {
        SSL *ssl = bufferevent_openssl_get_ssl(bev);
        c->leaf = SSL_get1_peer_certificate(ssl);
        STACK_OF(X509) *presented = SSL_get_peer_cert_chain(ssl);
        if (c->leaf != NULL && presented != NULL) {
            c->chain = X509_chain_up_ref(presented);
            if (c->chain == NULL) {
                conn_free(c, "INTERNAL");
                return;
            }
        }
        c->state = CONN_WAIT;
        return;
    }
    ERR_clear_error();
    conn_free(c, c->state == CONN_TLS     ? "TLS_ERROR"
                 : (what & BEV_EVENT_EOF) ? "PEER_CLOSED"
                                          : "TLS_ERROR");
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct conn *c = arg;
    conn_free(c, c->state == CONN_TLS                                     ? "TLS_HANDSHAKE_TIMEOUT"
                 : c->state == CONN_WAIT                                  ? "CONNECT_TIMEOUT"
                 : c->state == CONN_LIVE && mono_ms() >= c->live_until_ms ? "SESSION_LIFETIME"
                 : c->state == CONN_LIVE                                  ? "KEEPALIVE_TIMEOUT"
                                                                          : NULL);
}

static struct conn *conn_start(struct hub_dpsdev_server *s, evutil_socket_t fd,
                               const struct sockaddr *sa, int salen)
{
    struct conn *c = calloc(1, sizeof(*c));
    SSL *ssl = c != NULL ? SSL_new(s->ssl_ctx) : NULL;
    if (ssl == NULL) {
        free(c);
        close(fd);
        return NULL;
    }
    c->server = s;
    format_peer(sa, salen, c->peer, sizeof(c->peer));
    c->bev = bufferevent_openssl_socket_new(s->worker->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                            BEV_OPT_CLOSE_ON_FREE);
    c->timer = c->bev != NULL ? evtimer_new(s->worker->base, on_timer, c) : NULL;
    if (c->bev == NULL || c->timer == NULL) {
        if (c->bev != NULL)
            bufferevent_free(c->bev);
        else {
            SSL_free(ssl);
            close(fd);
        }
        free(c);
        return NULL;
    }
    c->next = s->conns;
    if (s->conns != NULL)
        s->conns->prev = c;
    s->conns = c;
    s->conn_count++;
    bufferevent_setcb(c->bev, on_read, NULL, on_event, c);
    bufferevent_setwatermark(c->bev, EV_READ, 0, s->limits.max_packet + 8);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    arm_timer(c, s->limits.handshake_ms);
    return c;
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
                      void *arg)
{
    (void)l;
    struct hub_dpsdev_server *s = arg;
    struct hub_net_admission_ticket *ticket = NULL;
    if (hub_net_admission_accept(s->ssl_ctx, sa, (socklen_t)salen, &ticket) != 0) {
        hub_net_admission_refuse_close(fd);
        return;
    }
    struct conn *c = conn_start(s, fd, sa, salen);
    hub_net_admission_ticket_bind_ssl(ticket,
                                      c != NULL ? bufferevent_openssl_get_ssl(c->bev) : NULL);
}

int hub_dpsdev_server_new(struct hub_dpsdev_service *svc, struct hub_net_worker *worker,
                          SSL_CTX *ssl_ctx, int listen_fd, struct hub_dpsdev_server **out_new,
                          struct hub_err *err)
{
    *out_new = NULL;
    struct hub_dpsdev_server *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        close(listen_fd);
        return HUB_ERR(err, HUB_E_NOMEM, "no memory for the DPS server");
    }
    s->svc = svc;
    s->worker = worker;
    s->ssl_ctx = ssl_ctx;
    s->limits = (struct hub_dpsdev__limits){.max_packet = DEFAULT_MAX_PACKET,
                                            .handshake_ms = DEFAULT_HANDSHAKE_MS,
                                            .idle_max_ms = IDLE_MAX_MS,
                                            .session_max_ms = SESSION_MAX_MS};
    hub_dpsdev__server_limits(svc, &s->limits);
    s->listener = evconnlistener_new(worker->base, on_accept, s,
                                     LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, -1, listen_fd);
    if (s->listener == NULL) {
        close(listen_fd);
        free(s);
        return HUB_ERR(err, HUB_E_IO, "cannot accept on the DPS MQTT socket");
    }
    *out_new = s;
    return 0;
}

void hub_dpsdev_server_drain(struct hub_dpsdev_server *server, void (*done)(void *arg), void *arg)
{
    if (server != NULL) {
        evconnlistener_free(server->listener);
        while (server->conns != NULL)
            conn_free(server->conns, "SERVER_SHUTDOWN");
        free(server);
    }
    if (done != NULL)
        done(arg);
}

size_t hub_dpsdev_server_conn_count(const struct hub_dpsdev_server *server)
{
    return server->conn_count;
}
