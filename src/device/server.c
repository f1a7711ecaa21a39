/*
 * device: one MQTT-over-TLS server per worker: the listener, accept, and the
 * drain on shutdown (mirrors src/http/server.c).
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "common/log.h"
#include "device/device_int.h"
#include "net/admission.h"
#include "net/net.h"
#include "registry/registry.h"

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
                      void *arg)
{
    (void)l;
    struct hub_device_server *s = arg;
    if (s->draining) {
        close(fd);
        return;
    }
    /* Admission first: a refused socket is reset before any TLS work. */
    struct hub_net_admission_ticket *ticket = NULL;
    if (hub_net_admission_accept(s->ssl_ctx, sa, (socklen_t)salen, &ticket) != 0) {
        hub_net_admission_refuse_close(fd);
        return;
    }
    size_t before = s->conn_count;
    hub_device__conn_accept(s, fd, sa, salen);
    /* A started connection is linked at the head of s->conns; its SSL,
     * freed exactly once when the connection finalizes, carries the ticket
     * (admission.h). Not started: the ticket goes back now. */
    struct hub_device_conn *c = s->conn_count > before ? s->conns : NULL;
    hub_net_admission_ticket_bind_ssl(
        ticket, c != NULL && c->bev != NULL ? bufferevent_openssl_get_ssl(c->bev) : NULL);
}

static void on_accept_error(struct evconnlistener *l, void *arg)
{
    (void)l;
    (void)arg;
    /* EMFILE and friends: libevent retries on the next readiness; say it once per event. */
    char msg[128];
    snprintf(msg, sizeof(msg), "%s", evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
    hub_log_kv(HUB_LOG_WARN, "mqtt_accept_failed", "detail", msg, NULL);
}

int hub_device_server_new(struct hub_device_endpoint *ep, struct hub_net_worker *worker,
                          SSL_CTX *ssl_ctx, int listen_fd, struct hub_device_server **out_new,
                          struct hub_err *err)
{
    if (worker->index >= ep->slot_count || ep->slots[worker->index].worker != worker) {
        close(listen_fd);
        return HUB_ERR(err, HUB_E_INVALID_ARG, "worker %zu is not in the endpoint's pool",
                       worker->index);
    }
    if (ep->slots[worker->index].server != NULL) {
        close(listen_fd);
        return HUB_ERR(err, HUB_E_EXISTS, "worker %zu already has an MQTT server", worker->index);
    }
    struct hub_device_server *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        close(listen_fd);
        return HUB_ERR(err, HUB_E_NOMEM, "no memory for the MQTT server");
    }
    s->ep = ep;
    s->worker = worker;
    s->ssl_ctx = ssl_ctx;
    s->listener = evconnlistener_new(worker->base, on_accept, s,
                                     LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, -1, listen_fd);
    if (s->listener == NULL) {
        close(listen_fd);
        free(s);
        return HUB_ERR(err, HUB_E_IO, "cannot accept on the MQTT socket");
    }
    evconnlistener_set_error_cb(s->listener, on_accept_error);
    if (worker->index == 0) {
        /* CRLs already stored expire on their own schedule too. */
        struct hub_registry_trust *trust = NULL;
        struct hub_err terr = {0};
        if (hub_registry_trust_get1(ep->env.registry, &trust, &terr) == 0)
            hub_device__crl_timer_arm(s, trust);
        hub_registry_trust_release(trust);
    }
    pthread_mutex_lock(&ep->mu);
    ep->slots[worker->index].server = s;
    pthread_mutex_unlock(&ep->mu);
    *out_new = s;
    return 0;
}

static void server_free(struct hub_device_server *s)
{
    void (*done)(void *) = s->drain_done;
    void *done_arg = s->drain_arg;
    struct hub_device_endpoint *ep = s->ep;
    pthread_mutex_lock(&ep->mu);
    ep->slots[s->worker->index].server = NULL;
    pthread_mutex_unlock(&ep->mu);
    if (s->drain_timer != NULL)
        event_free(s->drain_timer);
    if (s->crl_timer != NULL)
        event_free(s->crl_timer);
    free(s);
    if (done != NULL)
        done(done_arg);
}

static void on_drain_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct hub_device_server *s = arg;
    /* Whatever still lingers (a peer that never read its last bytes) goes now. */
    while (s->conns != NULL)
        hub_device__conn_abort(s->conns);
    server_free(s);
}

void hub_device_server_drain(struct hub_device_server *s, int grace_ms, void (*done)(void *arg),
                             void *arg)
{
    s->draining = true;
    if (s->crl_timer != NULL)
        evtimer_del(s->crl_timer);
    s->drain_done = done;
    s->drain_arg = arg;
    /* Method calls waiting here for a device: nobody will serve them now. */
    hub_device__methods_drain(s->ep, s->worker->index);
    if (s->listener != NULL) {
        evconnlistener_free(s->listener);
        s->listener = NULL;
    }
    /* A close lets what each connection already wrote (PUBACKs of messages
     * that became durable) leave before the socket goes; those connections
     * stay listed while they linger. Closing one never unlinks another. */
    for (struct hub_device_conn *c = s->conns, *next; c != NULL; c = next) {
        next = c->next;
        hub_device__conn_close(c, HUB_DEVICE_R_SERVER_SHUTDOWN, NULL);
    }
    int settle_ms = grace_ms < 0 ? 0 : grace_ms < 250 ? grace_ms : 250;
    struct timeval tv = {.tv_sec = settle_ms / 1000, .tv_usec = (settle_ms % 1000) * 1000};
    s->drain_timer = evtimer_new(s->worker->base, on_drain_timer, s);
    if (s->drain_timer == NULL || evtimer_add(s->drain_timer, &tv) != 0)
        server_free(s);
}
