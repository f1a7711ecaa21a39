/*
 * device: one MQTT connection's state machine.
 *
 *   TLS --handshake done--> WAIT --CONNECT accepted--> LIVE --close--> LINGER --> CLOSED
 *    |                        |--CONNECT refused: CONNACK--> LINGER         ^
 *    +--timeout/error---------+--timeout/error/bad packet-------------------+
 *
 * One timer per connection serves every deadline: the handshake deadline,
 * the CONNECT deadline, then (LIVE) the keep-alive (1.5x the client's value,
 * reference §1) and the SAS token's expiry, checked lazily: a packet only
 * stamps last_rx_ms, the timer re-arms itself for what is left.
 *
 * Reading: at most HUB_DEVICE_PACKETS_PER_CALLBACK packets per callback (the
 * rest run on a later loop turn through `resume`), packets are decoded in
 * place (views into the input buffer, drained only after they were handled)
 * and reading stops while too much telemetry waits for its commit, or while
 * too many answers wait for a device that does not read them.
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>

#include "common/log.h"
#include "device/device_int.h"
#include "net/net.h"
#include "pki/pki.h"
#include "registry/registry.h"

/* Output back-pressure. A device that sends requests (twin GETs, QoS 1
 * PUBLISHes) but never reads their answers would make the hub buffer answers
 * without bound: above the high mark no more input is read, and reading
 * resumes once the output drained to the low mark. Bounds what one
 * connection's replies can hold to about the high mark plus one reply. */
#define OUTPUT_HIGH_BYTES (256u * 1024)
#define OUTPUT_LOW_BYTES  (64u * 1024)

/* ---- references ----------------------------------------------------------- */

void hub_device__conn_ref(struct hub_device_conn *c)
{
    atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
}

void hub_device__conn_unref(struct hub_device_conn *c)
{
    if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) != 1)
        return;
    /* Any thread: nothing here may touch libevent (released at close). */
    X509_free(c->leaf);
    sk_X509_pop_free(c->chain, X509_free);
    free(c->will_topic);
    free(c->will_payload);
    free(c);
}

/* ---- helpers -------------------------------------------------------------- */

static int64_t now_ms(const struct hub_device_conn *c)
{
    return hub_device__now_ms(c->ep);
}

static void format_peer(const struct sockaddr *sa, int salen, char *out, size_t cap)
{
    char host[INET6_ADDRSTRLEN], serv[6]; /* numeric forms only: "[addr]:port" fits 64 */
    if (sa == NULL || getnameinfo(sa, (socklen_t)salen, host, sizeof(host), serv, sizeof(serv),
                                  NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
        snprintf(out, cap, "?");
        return;
    }
    if (strchr(host, ':') != NULL)
        snprintf(out, cap, "[%s]:%s", host, serv);
    else
        snprintf(out, cap, "%s:%s", host, serv);
}

static void arm_timer_ms(struct hub_device_conn *c, int64_t ms)
{
    if (c->timer == NULL)
        return;
    if (ms < 0)
        ms = 0;
    struct timeval tv = {.tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(c->timer, &tv);
}

/* LIVE: the earliest of keep-alive, token expiry and certificate check, or
 * no timer at all. */
static void arm_live_timer(struct hub_device_conn *c)
{
    int64_t now = now_ms(c), deadline = 0;
    if (c->keepalive_ms > 0)
        deadline = c->last_rx_ms + c->keepalive_ms;
    if (c->sas_expiry_ms > 0 && (deadline == 0 || c->sas_expiry_ms < deadline))
        deadline = c->sas_expiry_ms;
    if (c->cert_check_ms > 0 && (deadline == 0 || c->cert_check_ms < deadline))
        deadline = c->cert_check_ms;
    if (deadline == 0) {
        evtimer_del(c->timer);
        return;
    }
    arm_timer_ms(c, deadline - now);
}

int hub_device__conn_write(struct hub_device_conn *c, const void *buf, size_t len)
{
    if (c->bev == NULL || c->state == HUB_DEVICE_CONN_CLOSED)
        return -1;
    return bufferevent_write(c->bev, buf, len) == 0 ? 0 : -1;
}

int hub_device__conn_publish0(struct hub_device_conn *c, const char *topic, size_t topic_len,
                              const void *payload, size_t payload_len)
{
    size_t size = hub_mqtt_publish_size(topic_len, payload_len, 0);
    uint8_t *pkt = size > 0 ? malloc(size) : NULL;
    if (pkt == NULL)
        return -1;
    struct hub_mqtt_publish pub = {
        .qos = 0,
        .topic = {.ptr = topic, .len = topic_len},
        .payload = {.ptr = payload, .len = payload_len},
    };
    int n = hub_mqtt_publish_encode(pkt, size, &pub, NULL);
    int rc = n > 0 ? hub_device__conn_write(c, pkt, (size_t)n) : -1;
    free(pkt);
    return rc;
}

/* ---- close ---------------------------------------------------------------- */

static void on_read(struct bufferevent *bev, void *arg);
static void on_event(struct bufferevent *bev, short what, void *arg);

static void finalize(struct hub_device_conn *c)
{
    if (c->state == HUB_DEVICE_CONN_CLOSED)
        return;
    c->state = HUB_DEVICE_CONN_CLOSED;
    if (c->timer != NULL)
        event_free(c->timer);
    if (c->resume != NULL)
        event_free(c->resume);
    if (c->bev != NULL) {
        /* OpenSSL drops a session from the resumption cache when its SSL is
         * freed without a close_notify sent (a "bad" session), and
         * bufferevent_openssl sends none: say goodbye for connections that
         * authenticated, so their device can resume (net.c). Best effort,
         * one small record; a refused or failed connection is not kept. */
        SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
        if (ssl != NULL && c->method != HUB_DEVICE_AUTH_NONE && SSL_is_init_finished(ssl)) {
            if (SSL_shutdown(ssl) < 0)
                ERR_clear_error();
        }
        bufferevent_free(c->bev); /* closes the socket, frees the SSL */
    }
    c->timer = c->resume = NULL;
    c->bev = NULL;
    struct hub_device_server *s = c->server;
    if (s != NULL) {
        if (c->prev != NULL)
            c->prev->next = c->next;
        else
            s->conns = c->next;
        if (c->next != NULL)
            c->next->prev = c->prev;
        c->prev = c->next = NULL;
        s->conn_count--;
        c->server = NULL;
    }
    hub_device__conn_unref(c); /* the server list's reference */
}

void hub_device__conn_abort(struct hub_device_conn *c)
{
    finalize(c);
}

static void on_linger_write(struct bufferevent *bev, void *arg)
{
    (void)bev;
    struct hub_device_conn *c = arg;
    hub_device__conn_ref(c);
    finalize(c);
    hub_device__conn_unref(c);
}

static void on_linger_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    (void)what;
    on_linger_write(bev, arg);
}

/* Lets the bytes already written leave, then finalizes (or at the linger
 * deadline). */
static void linger(struct hub_device_conn *c)
{
    struct evbuffer *out = c->bev != NULL ? bufferevent_get_output(c->bev) : NULL;
    if (out == NULL || evbuffer_get_length(out) == 0) {
        finalize(c);
        return;
    }
    c->state = HUB_DEVICE_CONN_LINGER;
    bufferevent_disable(c->bev, EV_READ);
    bufferevent_setcb(c->bev, NULL, on_linger_write, on_linger_event, c);
    if (c->resume != NULL)
        event_del(c->resume);
    arm_timer_ms(c, HUB_DEVICE_LINGER_MS);
}

/* MQTT §3.1.2.5: the Will goes out when the network connection closes
 * without DISCONNECT; not when the hub itself ends the session for reasons
 * that are not the device's (shutdown, deletion, revoked trust). */
static bool reason_publishes_will(enum hub_device_reason r)
{
    switch (r) {
    case HUB_DEVICE_R_CLIENT_DISCONNECT:
    case HUB_DEVICE_R_SERVER_SHUTDOWN:
    case HUB_DEVICE_R_DEVICE_DELETED:
    case HUB_DEVICE_R_DEVICE_DISABLED:
    case HUB_DEVICE_R_CA_REVOKED:
    case HUB_DEVICE_R_COMMIT_FAILED:
    case HUB_DEVICE_R_INTERNAL:
        return false;
    default:
        return true;
    }
}

void hub_device__conn_close(struct hub_device_conn *c, enum hub_device_reason reason,
                            const char *detail)
{
    if (c->state == HUB_DEVICE_CONN_LINGER || c->state == HUB_DEVICE_CONN_CLOSED)
        return;
    hub_device__count(c->ep, reason);
    c->close_reason = reason;
    bool was_live = c->state == HUB_DEVICE_CONN_LIVE;

    struct hub_log_line line;
    hub_log_begin(&line, HUB_LOG_INFO, was_live ? "disconnected" : "conn_closed");
    if (was_live)
        hub_log_str(&line, "device", c->device_id);
    hub_log_str(&line, "peer", c->peer);
    hub_log_str(&line, "reason", hub_device_reason_name(reason));
    if (detail != NULL && detail[0] != '\0')
        hub_log_str(&line, "detail", detail);
    hub_log_end(&line);

    if (was_live) {
        /* Set before anything below can re-enter close. */
        c->state = HUB_DEVICE_CONN_LINGER;
        bool still_live = false;
        if (c->registered) {
            c->registered = false;
            still_live = hub_device__dir_unregister(c->ep->dir, c->device_id, c) == 1;
        }
        /* A replaced connection must not overwrite its successor's Connected. */
        if (still_live) {
            struct hub_err err = {0};
            if (hub_registry_device_conn_state_set(c->ep->env.registry, c->device_id,
                                                   HUB_CONN_DISCONNECTED, &err) != 0 &&
                err.code != HUB_E_NOT_FOUND) {
                struct hub_log_line l2;
                hub_log_begin(&l2, HUB_LOG_WARN, "conn_state_failed");
                hub_log_str(&l2, "device", c->device_id);
                hub_log_err(&l2, &err);
                hub_log_end(&l2);
            }
        }
        if (c->has_will && reason_publishes_will(reason))
            hub_device__telemetry_will(c);
        hub_device__methods_conn_closed(c, reason == HUB_DEVICE_R_SERVER_SHUTDOWN
                                               ? HUB_DEVICE_METHOD_SHUTDOWN
                                               : HUB_DEVICE_METHOD_DISCONNECTED);
        c->state = HUB_DEVICE_CONN_WAIT; /* so linger() sees a closable state */
    }
    switch (reason) {
    case HUB_DEVICE_R_PEER_CLOSED:
    case HUB_DEVICE_R_TLS_ERROR:
    case HUB_DEVICE_R_TLS_HANDSHAKE_TIMEOUT:
        finalize(c); /* nobody is listening */
        break;
    default:
        linger(c);
        break;
    }
}

/* A CONNECT refusal: CONNACK with the code, one log line, close. */
static void refuse(struct hub_device_conn *c, const struct hub_device_authn_result *res)
{
    hub_device__count(c->ep, res->reason);
    struct hub_log_line line;
    hub_log_begin(&line, HUB_LOG_WARN, "connect_refused");
    hub_log_str(&line, "device", res->device_id[0] ? res->device_id : "-");
    hub_log_str(&line, "peer", c->peer);
    hub_log_str(&line, "reason", hub_device_reason_name(res->reason));
    hub_log_uint(&line, "connack", res->connack);
    hub_log_str(&line, "detail", res->detail);
    hub_log_end(&line);
    uint8_t buf[HUB_MQTT_SMALL_PACKET_MAX];
    int n = hub_mqtt_connack_encode(buf, sizeof(buf), false, res->connack, NULL);
    if (n > 0)
        hub_device__conn_write(c, buf, (size_t)n);
    c->close_reason = res->reason;
    linger(c);
}

/* ---- CONNECT ---------------------------------------------------------------- */

static int copy_will(struct hub_device_conn *c, const struct hub_mqtt_connect *cn)
{
    if (!cn->has_will)
        return 0;
    c->will_topic = malloc(cn->will_topic.len + 1);
    c->will_payload = malloc(cn->will_payload.len ? cn->will_payload.len : 1);
    if (c->will_topic == NULL || c->will_payload == NULL)
        return -1;
    memcpy(c->will_topic, cn->will_topic.ptr, cn->will_topic.len);
    c->will_topic[cn->will_topic.len] = '\0';
    if (cn->will_payload.len)
        memcpy(c->will_payload, cn->will_payload.ptr, cn->will_payload.len);
    c->will_payload_len = cn->will_payload.len;
    c->will_retain = cn->will_retain;
    c->has_will = true;
    return 0;
}

static void activity_touch(struct hub_device_conn *c, int64_t now)
{
    if (now - c->last_touch_ms < (int64_t)c->ep->env.activity_interval_s * 1000)
        return;
    c->last_touch_ms = now;
    struct hub_err err = {0};
    if (hub_registry_device_activity_touch(c->ep->env.registry, c->device_id, &err) != 0 &&
        err.code != HUB_E_NOT_FOUND) {
        struct hub_log_line line;
        hub_log_begin(&line, HUB_LOG_WARN, "activity_touch_failed");
        hub_log_str(&line, "device", c->device_id);
        hub_log_err(&line, &err);
        hub_log_end(&line);
    }
}

/* Keeps the device's x509CertificateExpiry current (issue 6): the notAfter
 * of the leaf it just authenticated with, written only when it changed. */
static void cert_expiry_record(struct hub_device_conn *c, const struct hub_device *dev)
{
    int64_t nb = 0, na = 0;
    struct hub_err err = {0};
    if (c->leaf == NULL || hub_pki_cert_validity(c->leaf, &nb, &na, &err) != 0 ||
        hub_registry_device_cert_expiry_set(c->ep->env.registry, dev->id, na, dev->x509_not_after,
                                            &err) == 0)
        return;
    struct hub_log_line line;
    hub_log_begin(&line, HUB_LOG_WARN, "cert_expiry_record_failed");
    hub_log_str(&line, "device", dev->id);
    hub_log_err(&line, &err);
    hub_log_end(&line);
}

/*
 * When an X.509 connection's certificates must be looked at again, in the
 * endpoint's milliseconds, from `now_s` (Unix seconds); 0 when there is
 * nothing to watch. notAfter is inclusive (RFC 5280 §4.1.2.5), so a
 * certificate is expired from notAfter + 1 s on.
 *
 * selfSigned: the leaf is the whole chain: its expiry ends the connection.
 * certificateAuthority: the validator does not say which path it took, so
 * this is the earliest notAfter, still ahead, of what the device presented
 * (leaf and intermediates, maybe junk); at that moment the chain is
 * validated again and the connection ends only if no path is left (a junk
 * certificate expiring changes nothing). CAs held by the hub are not in
 * that set: HUB_DEVICE_CERT_RECHECK_MAX_S bounds how late their expiry is
 * noticed.
 */
static int64_t cert_deadline_ms(const struct hub_device_conn *c, X509 *leaf, int64_t now_s)
{
    int64_t earliest = 0, nb = 0, na = 0;
    if (leaf != NULL && hub_pki_cert_validity(leaf, &nb, &na, NULL) == 0 && na >= now_s)
        earliest = na;
    if (c->method == HUB_DEVICE_AUTH_X509_CA) {
        for (int i = 0; c->chain != NULL && i < sk_X509_num(c->chain); i++) {
            if (hub_pki_cert_validity(sk_X509_value(c->chain, i), &nb, &na, NULL) == 0 &&
                na >= now_s && (earliest == 0 || na < earliest))
                earliest = na;
        }
        if (earliest == 0 || earliest - now_s >= HUB_DEVICE_CERT_RECHECK_MAX_S)
            return (now_s + HUB_DEVICE_CERT_RECHECK_MAX_S) * 1000;
    }
    return earliest > 0 ? (earliest + 1) * 1000 : 0;
}

/* The certificate deadline passed (LIVE, worker thread): close, or set the
 * next one. */
static void cert_check(struct hub_device_conn *c, int64_t now)
{
    int64_t now_s = now / 1000;
    if (c->method == HUB_DEVICE_AUTH_SELF_SIGNED) {
        hub_device__conn_close(c, HUB_DEVICE_R_CERT_EXPIRED,
                               "the certificate the connection authenticated with expired");
        return;
    }
    struct hub_registry_trust *trust = NULL;
    struct hub_err err = {0};
    if (hub_registry_trust_get1(c->ep->env.registry, &trust, &err) != 0) {
        /* A store hiccup is not the device's fault: try again in a minute. */
        struct hub_log_line line;
        hub_log_begin(&line, HUB_LOG_WARN, "cert_recheck_failed");
        hub_log_str(&line, "device", c->device_id);
        hub_log_err(&line, &err);
        hub_log_end(&line);
        c->cert_check_ms = now + 60 * 1000;
        return;
    }
    enum hub_device_reason reason;
    char detail[HUB_DEVICE_DETAIL_MAX];
    int rc = hub_device_authn_recheck(c->leaf, c->chain, trust, now_s, &reason, detail);
    hub_registry_trust_release(trust);
    if (rc != 0) {
        hub_device__conn_close(c, reason, detail);
        return;
    }
    c->cert_check_ms = cert_deadline_ms(c, c->leaf, now_s);
}

/* Returns -1 when the connection was refused or closed. */
static int handle_connect(struct hub_device_conn *c, const struct hub_mqtt_connect *cn)
{
    struct hub_device_endpoint *ep = c->ep;
    evtimer_del(c->timer);
    struct hub_device_authn_result res;
    if (hub_device_authn_identify(cn, &res) != 0) {
        refuse(c, &res);
        return -1;
    }
    struct hub_device dev;
    memset(&dev, 0, sizeof(dev));
    struct hub_err err = {0};
    int lookup_rc = hub_registry_device_auth_lookup(ep->env.registry, res.device_id, &dev, &err);
    bool have_dev = lookup_rc == 0 || lookup_rc == HUB_E_FORBIDDEN;
    struct hub_registry_trust *trust = NULL;
    if (have_dev && dev.auth_type == HUB_AUTH_CERT_AUTHORITY &&
        hub_registry_trust_get1(ep->env.registry, &trust, &err) != 0)
        trust = NULL; /* decided as SERVER_ERROR below */
    struct hub_device_authn_in in = {
        .connect = cn,
        .leaf = c->leaf,
        .chain = c->chain,
        .lookup_rc = lookup_rc,
        .device = have_dev ? &dev : NULL,
        .trust = trust,
        .sas_cfg = &ep->sas_cfg,
        .policies = ep->env.policies,
        .now = now_ms(c) / 1000,
    };
    int rc = hub_device_authn_decide(&in, &res);
    hub_device__crl_expiry_warn(ep, trust, false);
    hub_registry_trust_release(trust);
    if (rc != 0) {
        refuse(c, &res);
        return -1;
    }

    memcpy(c->device_id, res.device_id, sizeof(c->device_id));
    c->method = res.method;
    if (c->method == HUB_DEVICE_AUTH_X509_CA || c->method == HUB_DEVICE_AUTH_SELF_SIGNED) {
        cert_expiry_record(c, &dev);
        /* Like the SAS token's se: the connection lasts as long as the
         * credential it authenticated with (issue: X.509 after notAfter). */
        c->cert_check_ms = cert_deadline_ms(c, c->leaf, in.now);
    }
    if (c->method != HUB_DEVICE_AUTH_X509_CA) { /* only CA connections are re-validated */
        X509_free(c->leaf);
        sk_X509_pop_free(c->chain, X509_free);
        c->leaf = NULL;
        c->chain = NULL;
    }
    c->keepalive_ms = (int64_t)cn->keep_alive_s * 1500; /* reference §1: 1.5x */
    c->sas_expiry_ms = res.sas_expiry > 0 ? res.sas_expiry * 1000 : 0;
    if (copy_will(c, cn) != 0) {
        res.reason = HUB_DEVICE_R_SERVER_ERROR;
        res.connack = HUB_MQTT_CONNACK_SERVER_UNAVAILABLE;
        snprintf(res.detail, sizeof(res.detail), "out of memory storing the Will");
        refuse(c, &res);
        return -1;
    }
    void *old = NULL;
    bool session_present = false, c2d_sub = false;
    if (hub_device__dir_register(ep->dir, c->device_id, c, cn->clean_session, &old,
                                 &session_present, &c2d_sub, &err) != 0) {
        res.reason = HUB_DEVICE_R_SERVER_ERROR;
        res.connack = HUB_MQTT_CONNACK_SERVER_UNAVAILABLE;
        snprintf(res.detail, sizeof(res.detail), "%s", err.msg);
        refuse(c, &res);
        return -1;
    }
    c->registered = true;
    c->state = HUB_DEVICE_CONN_LIVE;
    if (old != NULL) /* reference §1: the newer connection wins */
        hub_device__kick_conn(ep, old, HUB_DEVICE_R_DUPLICATE_CONNECTION);

    uint8_t buf[HUB_MQTT_SMALL_PACKET_MAX];
    int n = hub_mqtt_connack_encode(buf, sizeof(buf), session_present, 0, NULL);
    if (n > 0)
        hub_device__conn_write(c, buf, (size_t)n);
    hub_device__count(ep, HUB_DEVICE_R_OK);
    struct hub_log_line line;
    hub_log_begin(&line, HUB_LOG_INFO, "connected");
    hub_log_str(&line, "device", c->device_id);
    hub_log_str(&line, "peer", c->peer);
    hub_log_str(&line, "auth", hub_device_auth_method_name(c->method));
    hub_log_int(&line, "session_present", session_present);
    hub_log_end(&line);

    int64_t now = now_ms(c);
    c->last_rx_ms = now;
    /* Setting Connected also moves lastActivityTime (store): the next touch
     * is due an interval from now. Only if that write failed, touch now. */
    c->last_touch_ms = now;
    if (hub_registry_device_conn_state_set(ep->env.registry, c->device_id, HUB_CONN_CONNECTED,
                                           &err) != 0) {
        hub_log_begin(&line, HUB_LOG_WARN, "conn_state_failed");
        hub_log_str(&line, "device", c->device_id);
        hub_log_err(&line, &err);
        hub_log_end(&line);
        c->last_touch_ms = now - (int64_t)ep->env.activity_interval_s * 1000;
        activity_touch(c, now);
    }
    arm_live_timer(c);
    c->c2d_subscribed = c2d_sub;
    unsigned subs = session_present ? hub_device__dir_subs(ep->dir, c->device_id) : 0;
    c->twin_res_subscribed = (subs & HUB_DEVICE_SUB_TWIN_RES) != 0;
    c->twin_desired_subscribed = (subs & HUB_DEVICE_SUB_TWIN_DESIRED) != 0;
    c->methods_subscribed = (subs & HUB_DEVICE_SUB_METHODS) != 0;
    if (c2d_sub)
        hub_device__c2d_pump(c);
    /* A resumed session: what changed while the device was away. */
    if (c->twin_desired_subscribed)
        hub_device__twin_desired_sync(c);
    if (c->methods_subscribed && c->state == HUB_DEVICE_CONN_LIVE)
        hub_device__methods_subscribed(c);
    return c->state == HUB_DEVICE_CONN_LIVE ? 0 : -1;
}

/* ---- packets of a LIVE connection ------------------------------------------- */

static int close_with(struct hub_device_conn *c, enum hub_device_reason r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int close_with(struct hub_device_conn *c, enum hub_device_reason r, const char *fmt, ...)
{
    char detail[HUB_DEVICE_DETAIL_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    hub_device__conn_close(c, r, detail);
    return -1;
}

/* Twin and method PUBLISHes are answered at once (the SDKs send them at QoS
 * 0; a QoS 1 one is acknowledged once handled). */
static int puback_if_qos1(struct hub_device_conn *c, const struct hub_mqtt_publish *pub)
{
    if (c->state != HUB_DEVICE_CONN_LIVE)
        return -1;
    if (pub->qos == 1) {
        uint8_t buf[HUB_MQTT_SMALL_PACKET_MAX];
        int n = hub_mqtt_puback_encode(buf, sizeof(buf), pub->packet_id, NULL);
        if (n > 0)
            hub_device__conn_write(c, buf, (size_t)n);
    }
    return 0;
}

static int handle_publish(struct hub_device_conn *c, const struct hub_mqtt_publish *pub)
{
    char sample[HUB_LOG_ESCAPED_MAX];
    if (pub->qos == 2)
        return close_with(c, HUB_DEVICE_R_QOS2_UNSUPPORTED,
                          "QoS 2 PUBLISH (IoT Hub supports QoS 0 and 1)");
    struct hub_iothub_topic topic;
    struct hub_err err = {0};
    if (hub_iothub_topic_classify(pub->topic.ptr, pub->topic.len, &topic, &err) != 0)
        return close_with(c, HUB_DEVICE_R_TOPIC_UNKNOWN, "%s", err.msg);
    switch (topic.kind) {
    case HUB_IOTHUB_TOPIC_TELEMETRY:
        break;
    case HUB_IOTHUB_TOPIC_TWIN_GET:
    case HUB_IOTHUB_TOPIC_TWIN_PATCH_REPORTED:
        hub_device__twin_request(c, pub, &topic);
        return puback_if_qos1(c, pub);
    case HUB_IOTHUB_TOPIC_METHOD_RESPONSE:
        hub_device__methods_response(c, pub, &topic);
        return puback_if_qos1(c, pub);
    case HUB_IOTHUB_TOPIC_UNKNOWN:
    default:
        hub_log_escape(pub->topic.ptr, pub->topic.len, sample, sizeof(sample));
        return close_with(c, HUB_DEVICE_R_TOPIC_UNKNOWN, "PUBLISH topic %s", sample);
    }
    if (hub_iothub_topic_owner_check(&topic, c->device_id, NULL, &err) != 0)
        return close_with(c, HUB_DEVICE_R_TOPIC_FORBIDDEN, "%s", err.msg);
    return hub_device__telemetry_publish(c, pub, &topic);
}

static int handle_subscribe(struct hub_device_conn *c, const struct hub_mqtt_subscribe *sub)
{
    uint8_t codes[HUB_MQTT_FILTERS_MAX];
    int c2d_code = -1;     /* the granted QoS of the last C2D filter, which decides delivery */
    unsigned subs_now = 0; /* HUB_DEVICE_SUB_* bits of the $iothub filters */
    char sample[HUB_LOG_ESCAPED_MAX];
    for (size_t i = 0; i < sub->count; i++) {
        struct hub_iothub_filter f;
        struct hub_err err = {0};
        const struct hub_mqtt_str *fs = &sub->filters[i].filter;
        if (hub_iothub_filter_classify(fs->ptr, fs->len, &f, &err) != 0)
            return close_with(c, HUB_DEVICE_R_SUBSCRIBE_UNSUPPORTED, "%s", err.msg);
        switch (f.kind) {
        case HUB_IOTHUB_FILTER_C2D:
            if (hub_iothub_filter_owner_check(&f, c->device_id, NULL, &err) != 0)
                return close_with(c, HUB_DEVICE_R_SUBSCRIBE_FORBIDDEN, "%s", err.msg);
            /* reference §2: QoS 2 is granted as 1. */
            codes[i] = sub->filters[i].qos == 0 ? 0 : 1;
            c2d_code = codes[i];
            break;
        /* reference §2: the hub publishes these at QoS 0, so 0 is granted. */
        case HUB_IOTHUB_FILTER_TWIN_RES:
            codes[i] = 0;
            subs_now |= HUB_DEVICE_SUB_TWIN_RES;
            break;
        case HUB_IOTHUB_FILTER_TWIN_DESIRED:
            codes[i] = 0;
            subs_now |= HUB_DEVICE_SUB_TWIN_DESIRED;
            break;
        case HUB_IOTHUB_FILTER_METHODS_POST:
            codes[i] = 0;
            subs_now |= HUB_DEVICE_SUB_METHODS;
            break;
        default:
            hub_log_escape(fs->ptr, fs->len, sample, sizeof(sample));
            return close_with(c, HUB_DEVICE_R_SUBSCRIBE_UNSUPPORTED, "SUBSCRIBE filter %s", sample);
        }
    }
    uint8_t buf[4 + HUB_MQTT_FILTERS_MAX];
    int n = hub_mqtt_suback_encode(buf, sizeof(buf), sub->packet_id, codes, sub->count, NULL);
    if (n > 0)
        hub_device__conn_write(c, buf, (size_t)n);
    if (c2d_code >= 0) {
        c->c2d_qos0 = c2d_code == 0;
        c->c2d_subscribed = true;
        hub_device__dir_c2d_set(c->ep->dir, c->device_id, true);
        hub_device__c2d_pump(c);
    }
    if (subs_now != 0 && c->state == HUB_DEVICE_CONN_LIVE) {
        /* The session first (waiting method calls look there), then what the
         * new subscriptions let through, after the SUBACK. */
        hub_device__dir_subs_set(c->ep->dir, c->device_id, subs_now, true);
        if (subs_now & HUB_DEVICE_SUB_TWIN_RES)
            c->twin_res_subscribed = true;
        if ((subs_now & HUB_DEVICE_SUB_TWIN_DESIRED) && !c->twin_desired_subscribed) {
            c->twin_desired_subscribed = true;
            hub_device__twin_desired_sync(c);
        }
        if ((subs_now & HUB_DEVICE_SUB_METHODS) && c->state == HUB_DEVICE_CONN_LIVE) {
            c->methods_subscribed = true;
            hub_device__methods_subscribed(c);
        }
    }
    return c->state == HUB_DEVICE_CONN_LIVE ? 0 : -1;
}

static int handle_unsubscribe(struct hub_device_conn *c, const struct hub_mqtt_unsubscribe *u)
{
    for (size_t i = 0; i < u->count; i++) {
        struct hub_iothub_filter f;
        if (hub_iothub_filter_classify(u->filters[i].ptr, u->filters[i].len, &f, NULL) != 0)
            continue;
        switch (f.kind) {
        case HUB_IOTHUB_FILTER_C2D:
            if (hub_iothub_filter_owner_check(&f, c->device_id, NULL, NULL) == 0) {
                c->c2d_subscribed = false;
                hub_device__dir_c2d_set(c->ep->dir, c->device_id, false);
            }
            break;
        case HUB_IOTHUB_FILTER_TWIN_RES:
            c->twin_res_subscribed = false;
            hub_device__dir_subs_set(c->ep->dir, c->device_id, HUB_DEVICE_SUB_TWIN_RES, false);
            break;
        case HUB_IOTHUB_FILTER_TWIN_DESIRED:
            c->twin_desired_subscribed = false;
            hub_device__dir_subs_set(c->ep->dir, c->device_id, HUB_DEVICE_SUB_TWIN_DESIRED, false);
            break;
        case HUB_IOTHUB_FILTER_METHODS_POST:
            /* Requests already out still take their answer. */
            c->methods_subscribed = false;
            hub_device__dir_subs_set(c->ep->dir, c->device_id, HUB_DEVICE_SUB_METHODS, false);
            break;
        default:
            break;
        }
    }
    uint8_t buf[HUB_MQTT_SMALL_PACKET_MAX];
    int n = hub_mqtt_unsuback_encode(buf, sizeof(buf), u->packet_id, NULL);
    if (n > 0)
        hub_device__conn_write(c, buf, (size_t)n);
    return 0;
}

/* 0 handled, 1 retry later (leave the packet in the buffer), -1 closed. */
static int handle_packet(struct hub_device_conn *c, const struct hub_mqtt_packet *p)
{
    if (c->state == HUB_DEVICE_CONN_WAIT) {
        if (p->type != HUB_MQTT_CONNECT)
            return close_with(c, HUB_DEVICE_R_PROTOCOL_VIOLATION, "first packet is %s, not CONNECT",
                              hub_mqtt_type_name(p->type));
        return handle_connect(c, &p->u.connect);
    }
    int rc = 0;
    uint8_t buf[HUB_MQTT_SMALL_PACKET_MAX];
    switch (p->type) {
    case HUB_MQTT_PUBLISH:
        rc = handle_publish(c, &p->u.publish);
        break;
    case HUB_MQTT_PUBACK:
        hub_device__c2d_puback(c, p->u.packet_id);
        break;
    case HUB_MQTT_SUBSCRIBE:
        rc = handle_subscribe(c, &p->u.subscribe);
        break;
    case HUB_MQTT_UNSUBSCRIBE:
        rc = handle_unsubscribe(c, &p->u.unsubscribe);
        break;
    case HUB_MQTT_PINGREQ: {
        int n = hub_mqtt_pingresp_encode(buf, sizeof(buf), NULL);
        if (n > 0)
            hub_device__conn_write(c, buf, (size_t)n);
        break;
    }
    case HUB_MQTT_DISCONNECT:
        /* §3.14.4: discard the Will, close. */
        c->has_will = false;
        hub_device__conn_close(c, HUB_DEVICE_R_CLIENT_DISCONNECT, NULL);
        return -1;
    case HUB_MQTT_CONNECT:
        return close_with(c, HUB_DEVICE_R_PROTOCOL_VIOLATION, "second CONNECT (§3.1.0-2)");
    default:
        /* PUBREC/PUBREL/PUBCOMP: the hub never grants QoS 2. */
        return close_with(c, HUB_DEVICE_R_PROTOCOL_VIOLATION, "unexpected %s",
                          hub_mqtt_type_name(p->type));
    }
    if (rc == 0 && c->state == HUB_DEVICE_CONN_LIVE)
        activity_touch(c, c->last_rx_ms);
    return rc;
}

/* ---- the read loop ---------------------------------------------------------- */

static void decode_failed(struct hub_device_conn *c, int rc, const struct hub_err *err,
                          const uint8_t *data, size_t len)
{
    if (rc == HUB_MQTT_E_PROTOCOL_LEVEL && c->state == HUB_DEVICE_CONN_WAIT) {
        struct hub_device_authn_result res;
        memset(&res, 0, sizeof(res));
        res.reason = HUB_DEVICE_R_PROTOCOL_LEVEL;
        res.connack = HUB_MQTT_CONNACK_BAD_PROTOCOL_LEVEL;
        snprintf(res.detail, sizeof(res.detail), "%s", err->msg);
        refuse(c, &res);
        return;
    }
    /* Redis-style: say what the first bytes were, escaped and capped. */
    char sample[HUB_LOG_ESCAPED_MAX];
    hub_log_escape(data, len < 32 ? len : 32, sample, sizeof(sample));
    close_with(
        c, rc == HUB_E_TOO_LARGE ? HUB_DEVICE_R_PACKET_TOO_LARGE : HUB_DEVICE_R_MALFORMED_PACKET,
        "%s; first bytes %s", err->msg, sample);
}

static void process_input(struct hub_device_conn *c)
{
    size_t max = c->ep->env.max_packet_bytes;
    for (int n = 0; n < HUB_DEVICE_PACKETS_PER_CALLBACK; n++) {
        if (c->state != HUB_DEVICE_CONN_WAIT && c->state != HUB_DEVICE_CONN_LIVE)
            return;
        if (c->read_paused || c->busy_retry)
            return;
        if (evbuffer_get_length(bufferevent_get_output(c->bev)) > OUTPUT_HIGH_BYTES) {
            bufferevent_disable(c->bev, EV_READ); /* on_write resumes */
            return;
        }
        struct evbuffer *in = bufferevent_get_input(c->bev);
        size_t len = evbuffer_get_length(in);
        if (len == 0)
            return;
        size_t view = len < max ? len : max;
        const uint8_t *data = evbuffer_pullup(in, (ev_ssize_t)view);
        if (data == NULL) {
            hub_device__conn_close(c, HUB_DEVICE_R_INTERNAL, "cannot linearize input");
            return;
        }
        struct hub_mqtt_packet pkt;
        struct hub_err err = {0};
        int used = hub_mqtt_decode(data, view, max, &pkt, &err);
        if (used == 0)
            return; /* need more */
        if (used < 0) {
            decode_failed(c, used, &err, data, view);
            return;
        }
        c->last_rx_ms = now_ms(c);
        int rc = handle_packet(c, &pkt);
        if (rc == 1) {
            /* The telemetry log is full: keep the packet, try again shortly. */
            c->busy_retry = true;
            struct timeval tv = {0, HUB_DEVICE_BUSY_RETRY_MS * 1000};
            event_add(c->resume, &tv);
            return;
        }
        if (rc < 0 || c->bev == NULL ||
            (c->state != HUB_DEVICE_CONN_LIVE && c->state != HUB_DEVICE_CONN_WAIT))
            return; /* closed: the views and the buffer are gone or irrelevant */
        evbuffer_drain(in, (size_t)used);
    }
    /* Budget spent: let other connections run, continue next turn. */
    if (c->resume != NULL && evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
        event_active(c->resume, EV_TIMEOUT, 0);
}

void hub_device__conn_resume_reading(struct hub_device_conn *c)
{
    if (c->state != HUB_DEVICE_CONN_LIVE || c->bev == NULL)
        return;
    if (c->read_paused && c->inflight < c->ep->env.max_inflight_telemetry) {
        c->read_paused = false;
        /* process_input disables it again while the output is over its mark. */
        bufferevent_enable(c->bev, EV_READ);
        event_active(c->resume, EV_TIMEOUT, 0);
    }
}

/* Output drained to OUTPUT_LOW_BYTES: reading stopped for output resumes
 * (reading stopped for telemetry commits resumes in resume_reading). */
static void on_write(struct bufferevent *bev, void *arg)
{
    struct hub_device_conn *c = arg;
    if ((c->state != HUB_DEVICE_CONN_LIVE && c->state != HUB_DEVICE_CONN_WAIT) || c->read_paused ||
        (bufferevent_get_enabled(bev) & EV_READ) != 0)
        return;
    bufferevent_enable(bev, EV_READ);
    event_active(c->resume, EV_TIMEOUT, 0);
}

void hub_device__conn_pause_reading(struct hub_device_conn *c)
{
    if (c->bev == NULL || c->read_paused)
        return;
    c->read_paused = true;
    bufferevent_disable(c->bev, EV_READ);
}

static void on_resume(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct hub_device_conn *c = arg;
    hub_device__conn_ref(c);
    c->busy_retry = false;
    process_input(c);
    hub_device__conn_unref(c);
}

static void on_read(struct bufferevent *bev, void *arg)
{
    (void)bev;
    struct hub_device_conn *c = arg;
    hub_device__conn_ref(c);
    process_input(c);
    hub_device__conn_unref(c);
}

/* ---- TLS and timers --------------------------------------------------------- */

static void handshake_done(struct hub_device_conn *c)
{
    SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
    c->leaf = SSL_get1_peer_certificate(ssl);
    STACK_OF(X509) *sk = SSL_get_peer_cert_chain(ssl); /* borrowed from the session */
    if (sk != NULL)
        c->chain = X509_chain_up_ref(sk);
    c->state = HUB_DEVICE_CONN_WAIT;
    arm_timer_ms(c, c->ep->env.connect_timeout_ms);
    /* Bytes that arrived with the last handshake flight (CONNECT pipelined). */
    if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
        event_active(c->resume, EV_TIMEOUT, 0);
}

static void ssl_error_detail(struct hub_device_conn *c, char *out, size_t cap)
{
    unsigned long e = bufferevent_get_openssl_error(c->bev);
    if (e != 0) {
        char buf[200];
        ERR_error_string_n(e, buf, sizeof(buf));
        snprintf(out, cap, "%s", buf);
        return;
    }
    int sock_err = EVUTIL_SOCKET_ERROR();
    snprintf(out, cap, "%s", sock_err ? evutil_socket_error_to_string(sock_err) : "reset");
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    struct hub_device_conn *c = arg;
    hub_device__conn_ref(c);
    if (what & BEV_EVENT_CONNECTED) {
        if (c->state == HUB_DEVICE_CONN_TLS)
            handshake_done(c);
    } else if (what & BEV_EVENT_EOF) {
        hub_device__conn_close(c, HUB_DEVICE_R_PEER_CLOSED, NULL);
    } else if (what & (BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) {
        char detail[256];
        ssl_error_detail(c, detail, sizeof(detail));
        hub_device__conn_close(c, HUB_DEVICE_R_TLS_ERROR, detail);
    }
    hub_device__conn_unref(c);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct hub_device_conn *c = arg;
    hub_device__conn_ref(c);
    switch (c->state) {
    case HUB_DEVICE_CONN_TLS:
        hub_device__conn_close(c, HUB_DEVICE_R_TLS_HANDSHAKE_TIMEOUT, NULL);
        break;
    case HUB_DEVICE_CONN_WAIT:
        hub_device__conn_close(c, HUB_DEVICE_R_CONNECT_TIMEOUT, NULL);
        break;
    case HUB_DEVICE_CONN_LINGER:
        finalize(c);
        break;
    case HUB_DEVICE_CONN_LIVE: {
        int64_t now = now_ms(c);
        if (c->sas_expiry_ms > 0 && now >= c->sas_expiry_ms)
            hub_device__conn_close(c, HUB_DEVICE_R_SAS_EXPIRED,
                                   "the SAS token the connection authenticated with expired");
        else if (c->cert_check_ms > 0 && now >= c->cert_check_ms) {
            cert_check(c, now);
            if (c->state == HUB_DEVICE_CONN_LIVE)
                arm_live_timer(c);
        } else if (c->keepalive_ms > 0 && now - c->last_rx_ms >= c->keepalive_ms)
            close_with(c, HUB_DEVICE_R_KEEPALIVE_TIMEOUT, "nothing received for %lld ms",
                       (long long)(now - c->last_rx_ms));
        else
            arm_live_timer(c);
        break;
    }
    case HUB_DEVICE_CONN_CLOSED:
        break;
    }
    hub_device__conn_unref(c);
}

void hub_device__conn_accept(struct hub_device_server *s, int fd, const struct sockaddr *sa,
                             int salen)
{
    struct hub_device_conn *c = calloc(1, sizeof(*c));
    SSL *ssl = c != NULL ? SSL_new(s->ssl_ctx) : NULL;
    if (ssl == NULL) {
        free(c);
        close(fd);
        hub_log_kv(HUB_LOG_WARN, "mqtt_accept_failed", "detail", "out of memory", NULL);
        return;
    }
    atomic_init(&c->refs, 1); /* the server list's */
    c->ep = s->ep;
    c->server = s;
    c->worker_index = s->worker->index;
    c->state = HUB_DEVICE_CONN_TLS;
    format_peer(sa, salen, c->peer, sizeof(c->peer));
    c->bev = bufferevent_openssl_socket_new(s->worker->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                            BEV_OPT_CLOSE_ON_FREE);
    if (c->bev == NULL) {
        SSL_free(ssl);
        close(fd);
        free(c);
        hub_log_kv(HUB_LOG_WARN, "mqtt_accept_failed", "detail", "bufferevent", NULL);
        return;
    }
    /* Clients often close without close_notify; that is not an error for us. */
    bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
    c->timer = evtimer_new(s->worker->base, on_timer, c);
    c->resume = event_new(s->worker->base, -1, 0, on_resume, c);
    /* link first so finalize() can always unlink */
    c->next = s->conns;
    if (s->conns != NULL)
        s->conns->prev = c;
    s->conns = c;
    s->conn_count++;
    if (c->timer == NULL || c->resume == NULL) {
        hub_device__conn_close(c, HUB_DEVICE_R_INTERNAL, "out of memory");
        return;
    }
    /* Input never holds much more than one packet: reading stops at the mark. */
    bufferevent_setwatermark(c->bev, EV_READ, 0, s->ep->env.max_packet_bytes + 16 * 1024);
    bufferevent_setwatermark(c->bev, EV_WRITE, OUTPUT_LOW_BYTES, 0);
    bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    arm_timer_ms(c, s->ep->env.tls_handshake_timeout_ms);
}

void hub_device__conn_recheck(struct hub_device_conn *c, const struct hub_registry_trust *trust)
{
    if (c->state != HUB_DEVICE_CONN_LIVE || c->method != HUB_DEVICE_AUTH_X509_CA || c->leaf == NULL)
        return;
    enum hub_device_reason reason;
    char detail[HUB_DEVICE_DETAIL_MAX];
    if (hub_device_authn_recheck(c->leaf, c->chain, trust, now_ms(c) / 1000, &reason, detail) != 0)
        hub_device__conn_close(c, reason, detail);
}
