/*
 * evhttp over TLS, one instance per worker thread, and the request
 * dispatcher: parse the target, check api-version, hand the request to the
 * resource routers.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "common/log.h"
#include "http/http_int.h"
#include "net/admission.h"

static void on_refuse_now(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct bufferevent *bev = arg;
    evutil_socket_t sock = bufferevent_getfd(bev);
    if (sock >= 0)
        shutdown(sock, SHUT_RDWR); /* evhttp frees its connection on the EOF */
}

/*
 * Out of memory for TLS: evhttp would serve plain HTTP on a bufferevent of
 * its own if the bevcb returned NULL, which must never happen on this port.
 * Hand it a plain bufferevent whose socket is shut down in this same loop
 * turn, before a single byte is read (the admission check uses the same
 * ordering, see net/admission.h).
 */
static struct bufferevent *refused_connection(struct event_base *base)
{
    hub_log_kv(HUB_LOG_ERROR, "conn_refused", "transport", "https", "reason", "NOMEM", NULL);
    struct bufferevent *bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (bev == NULL)
        return NULL; /* evhttp cannot allocate its own either */
    if (event_base_once(base, -1, EV_TIMEOUT, on_refuse_now, bev, NULL) != 0) {
        bufferevent_free(bev);
        return NULL;
    }
    return bev;
}

static struct bufferevent *on_new_connection(struct event_base *base, void *arg)
{
    struct hub_http_server *server = arg;
    SSL *ssl = SSL_new(server->ssl_ctx);
    if (ssl == NULL)
        return refused_connection(base);
    struct bufferevent *bev = bufferevent_openssl_socket_new(
        base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
    if (bev == NULL) {
        SSL_free(ssl);
        return refused_connection(base);
    }
    /* Clients often close without close_notify; that is not an error for us. */
    bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    /* evhttp sets the fd after we return: admission decides right after
     * this accept callback, before the first read (admission.h). Out of
     * memory it is skipped; returning NULL would make evhttp serve plain
     * HTTP on a bufferevent of its own. */
    hub_net_admission_check_later(base, bev, ssl);
    hub_http__deadline_attach(base, bev, ssl, server->env);
    return bev;
}

static void format_peer(struct evhttp_request *req, char *out, size_t cap)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    const char *addr = NULL;
    ev_uint16_t port = 0;
    if (evcon != NULL)
        evhttp_connection_get_peer(evcon, (char **)&addr, &port);
    if (addr == NULL)
        addr = "?";
    if (strchr(addr, ':') != NULL)
        snprintf(out, cap, "[%s]:%u", addr, (unsigned)port);
    else
        snprintf(out, cap, "%s:%u", addr, (unsigned)port);
}

static const char *method_name(enum evhttp_cmd_type m)
{
    switch (m) {
    case EVHTTP_REQ_GET:
        return "GET";
    case EVHTTP_REQ_POST:
        return "POST";
    case EVHTTP_REQ_PUT:
        return "PUT";
    case EVHTTP_REQ_DELETE:
        return "DELETE";
    case EVHTTP_REQ_PATCH:
        return "PATCH";
    case EVHTTP_REQ_HEAD:
        return "HEAD";
    case EVHTTP_REQ_OPTIONS:
        return "OPTIONS";
    case EVHTTP_REQ_TRACE:
        return "TRACE";
    case EVHTTP_REQ_CONNECT:
        return "CONNECT";
    default:
        return "OTHER";
    }
}

static void on_request_complete(struct evhttp_request *req, void *arg)
{
    hub_http__deadline_request_done(req);
    hub_http__metrics_request_done(req, arg);
}

static void on_request(struct evhttp_request *req, void *arg)
{
    struct hub_http_server *server = arg;
    hub_http__deadline_request_started(req);
    evhttp_request_set_on_complete_cb(req, on_request_complete, NULL);
    struct hub_http_request r;
    memset(&r, 0, sizeof(r));
    r.req = req;
    r.env = server->env;
    r.method = evhttp_request_get_command(req);
    r.method_name = method_name(r.method);
    r.uri = evhttp_request_get_uri(req);
    r.draining = server->draining;
    r.server = server;
    snprintf(r.who, sizeof(r.who), "-");
    format_peer(req, r.peer, sizeof(r.peer));

    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
    r.query = uri != NULL ? evhttp_uri_get_query(uri) : NULL;
    r.path = path != NULL ? path : "";
    if (path == NULL || path[0] != '/') {
        hub_http__reply_error(&r, 400, "ArgumentInvalid", "BAD_PATH",
                              "request target is not a path");
        return;
    }
    int n = hub_http__split_path(path, r.segments, HUB_HTTP_MAX_SEGMENTS);
    if (n < 0) {
        hub_http__reply_error(&r, 400, "ArgumentInvalid", "BAD_PATH",
                              "malformed path: bad percent-encoding, an encoded '/' or NUL, a "
                              "segment over %d bytes or more than %d segments",
                              HUB_HTTP_SEGMENT_MAX - 1, HUB_HTTP_MAX_SEGMENTS);
        return;
    }
    r.segment_count = (size_t)n;
    /* Routes a browser or a scraper reaches without api-version. */
    if (hub_http__route_metrics(&r) || hub_http__route_console(&r))
        return;

    char api_version[32];
    if (!hub_http__query_get(&r, "api-version", api_version, sizeof(api_version)) ||
        api_version[0] == '\0') {
        hub_http__reply_error(&r, 400, "InvalidProtocolVersion", "NO_API_VERSION",
                              "the api-version query parameter is required (e.g. "
                              "?api-version=2021-04-12)");
        return;
    }

    /* Device transport first: it shares /devices/{id}/messages/... with the
     * service's C2D send and tells them apart by method and path. */
    if (hub_http__route_device_transport(&r) || hub_http__route_messages(&r) ||
        hub_http__route_methods(&r) || hub_http__route_twins(&r) || hub_http__route_devices(&r) ||
        hub_http__route_certificates(&r) || hub_http__route_dps_service(&r) ||
        hub_http__route_dps_device(&r))
        return;
    hub_http__reply_error(&r, 404, "NotFound", "NO_ROUTE", "no resource at %s %s", r.method_name,
                          path);
}

int hub_http_server_new(struct event_base *base, SSL_CTX *ssl_ctx, int listen_fd,
                        const struct hub_http_env *env, struct hub_http_server **out_new,
                        struct hub_err *err)
{
    struct hub_http_server *server = calloc(1, sizeof(*server));
    if (server == NULL)
        return HUB_ERR(err, HUB_E_NOMEM, "no memory for the HTTPS server");
    server->base = base;
    server->ssl_ctx = ssl_ctx;
    server->env = env;
    server->http = evhttp_new(base);
    if (server->http == NULL) {
        free(server);
        return HUB_ERR(err, HUB_E_NOMEM, "evhttp_new failed");
    }
    /* Every method evhttp knows reaches the routers, so a wrong one gets a
     * 405 in Azure's JSON and a log line; evhttp itself answers 501 (HTML,
     * unlogged) only for methods it cannot parse at all. */
    evhttp_set_allowed_methods(server->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
                                                 EVHTTP_REQ_DELETE | EVHTTP_REQ_PATCH |
                                                 EVHTTP_REQ_HEAD | EVHTTP_REQ_OPTIONS |
                                                 EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT);
    evhttp_set_max_headers_size(server->http, (ev_ssize_t)env->max_header_bytes);
    /* evhttp answers 413 itself when a body (chunked or not) passes the limit. */
    evhttp_set_max_body_size(server->http, (ev_ssize_t)env->max_body_bytes);
    struct timeval tv = {.tv_sec = env->request_timeout_ms / 1000,
                         .tv_usec = (env->request_timeout_ms % 1000) * 1000};
    evhttp_set_timeout_tv(server->http, &tv);
    evhttp_set_default_content_type(server->http, "application/json; charset=utf-8");
    evhttp_set_bevcb(server->http, on_new_connection, server);
    evhttp_set_gencb(server->http, on_request, server);
    server->listener = evhttp_accept_socket_with_handle(server->http, listen_fd);
    if (server->listener == NULL) {
        evhttp_free(server->http);
        free(server);
        return HUB_ERR(err, HUB_E_IO, "cannot accept on the HTTPS socket");
    }
    *out_new = server;
    return 0;
}

static void on_drain_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct hub_http_server *server = arg;
    void (*done)(void *) = server->drain_done;
    void *done_arg = server->drain_arg;
    event_free(server->drain_timer);
    evhttp_free(server->http);
    free(server);
    if (done != NULL)
        done(done_arg);
}

void hub_http_server_drain(struct hub_http_server *server, int grace_ms, void (*done)(void *arg),
                           void *arg)
{
    server->draining = 1;
    hub_http__polls_flush(server);
    server->drain_done = done;
    server->drain_arg = arg;
    if (server->listener != NULL) {
        evhttp_del_accept_socket(server->http, server->listener);
        server->listener = NULL;
    }
    /* Handlers run to completion inside their callback, so what is left in
     * flight is response bytes on their way out: give them a short settle. */
    int settle_ms = grace_ms < 250 ? grace_ms : 250;
    struct timeval tv = {.tv_sec = settle_ms / 1000, .tv_usec = (settle_ms % 1000) * 1000};
    server->drain_timer = evtimer_new(server->base, on_drain_timer, server);
    if (server->drain_timer == NULL || evtimer_add(server->drain_timer, &tv) != 0) {
        if (server->drain_timer != NULL)
            event_free(server->drain_timer);
        evhttp_free(server->http);
        free(server);
        if (done != NULL)
            done(arg);
    }
}
