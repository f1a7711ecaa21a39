/*
 * Whole-phase deadlines for HTTPS connections.
 *
 * evhttp's own timeout restarts on every read, so a client that trickles a
 * byte a second (slowloris) would keep a TLS handshake, a request head or a
 * body open forever. Each connection therefore carries one timer:
 *   - from accept, the TLS handshake has tls_handshake_timeout_ms;
 *   - from then (and after each reply), the next request must have arrived
 *     whole within http_request_timeout_ms;
 *   - while a request is being handled (even a parked long poll) it sleeps.
 * The timer lives in the connection's SSL ex_data, so it is freed exactly
 * when evhttp frees the connection (the bufferevent frees its SSL).
 *
 * The same per-connection record lets hubd log what evhttp refuses on its
 * own (a header or body over the limit, a malformed request line, a method
 * it cannot parse): libevent 2.1 offers no hook for those, but its answer
 * goes through this connection's output buffer while no request of ours is
 * being handled, so a callback on that buffer reads the status line and
 * logs one api_refused line for it.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <netdb.h>

#include "common/log.h"
#include "http/http_int.h"

struct conn_deadline {
    struct event *timer;
    struct bufferevent *bev;
    const struct hub_http_env *env;
    int handshake_done; /* the timer now guards the next request */
    int in_request;     /* between on_request and its reply being sent */
};

static int ex_index = -1;
static pthread_once_t ex_once = PTHREAD_ONCE_INIT;

static void ex_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    (void)parent;
    (void)ad;
    (void)idx;
    (void)argl;
    (void)argp;
    struct conn_deadline *d = ptr;
    if (d == NULL)
        return;
    event_free(d->timer);
    free(d);
}

static void ex_init(void)
{
    ex_index = SSL_get_ex_new_index(0, "hubd http deadline", NULL, NULL, ex_free);
}

static void arm(struct conn_deadline *d, int ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    evtimer_add(d->timer, &tv);
}

static void peer_of(struct conn_deadline *d, char *peer, size_t cap)
{
    snprintf(peer, cap, "?");
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    evutil_socket_t fd = bufferevent_getfd(d->bev);
    char host[64], serv[8];
    if (fd >= 0 && getpeername(fd, (struct sockaddr *)&ss, &len) == 0 &&
        getnameinfo((struct sockaddr *)&ss, len, host, sizeof(host), serv, sizeof(serv),
                    NI_NUMERICHOST | NI_NUMERICSERV) == 0)
        snprintf(peer, cap, strchr(host, ':') != NULL ? "[%s]:%s" : "%s:%s", host, serv);
}

static void log_cut(struct conn_deadline *d, const char *reason, int ms)
{
    char peer[80];
    peer_of(d, peer, sizeof(peer));
    struct hub_log_line line;
    hub_log_begin(&line, HUB_LOG_WARN, "conn_closed");
    hub_log_str(&line, "transport", "https");
    hub_log_str(&line, "peer", peer);
    hub_log_str(&line, "reason", reason);
    hub_log_int(&line, "deadline_ms", ms);
    hub_log_end(&line);
}

/* evhttp's own refusals by status: the reason= of their log line. */
static const char *evhttp_reason(int status)
{
    switch (status) {
    case 400:
        return "HTTP_MALFORMED"; /* also: headers over max_header_bytes */
    case 413:
        return "BODY_TOO_LARGE";
    case 417:
        return "EXPECTATION_FAILED";
    case 501:
        return "METHOD_NOT_IMPLEMENTED";
    case 505:
        return "HTTP_VERSION";
    default:
        return "HTTP_REFUSED";
    }
}

static void on_output(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    struct conn_deadline *d = arg;
    if (d->in_request || info->n_added == 0)
        return;
    char line[48];
    struct evbuffer_ptr at;
    if (evbuffer_ptr_set(buf, &at, info->orig_size, EVBUFFER_PTR_SET) != 0)
        return;
    ev_ssize_t n = evbuffer_copyout_from(buf, &at, line, sizeof(line) - 1);
    if (n < 12)
        return;
    line[n] = '\0';
    int status = 0;
    if (sscanf(line, "HTTP/1.%*1d %3d", &status) != 1 || status < 400)
        return; /* 100 Continue and the like are not refusals */
    char peer[80];
    peer_of(d, peer, sizeof(peer));
    struct hub_log_line l;
    hub_log_begin(&l, HUB_LOG_WARN, "api_refused");
    hub_log_str(&l, "who", "-");
    hub_log_str(&l, "peer", peer);
    hub_log_int(&l, "status", status);
    hub_log_str(&l, "reason", evhttp_reason(status));
    hub_log_str(&l, "detail", "refused by the HTTP parser before routing (limits or framing)");
    hub_log_end(&l);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct conn_deadline *d = arg;
    SSL *ssl = bufferevent_openssl_get_ssl(d->bev);
    if (!d->handshake_done && ssl != NULL && SSL_is_init_finished(ssl)) {
        /* Handshake made it in time: what is left of the request deadline. */
        d->handshake_done = 1;
        int left = d->env->request_timeout_ms - d->env->handshake_timeout_ms;
        if (left > 0) {
            arm(d, left);
            return;
        }
    }
    int handshake = !d->handshake_done;
    log_cut(d, handshake ? "TLS_HANDSHAKE_TIMEOUT" : "REQUEST_TIMEOUT",
            handshake ? d->env->handshake_timeout_ms : d->env->request_timeout_ms);
    /* evhttp treats this as its own read timeout and frees the connection,
     * which frees the SSL and with it *d: nothing may touch d after it. */
    bufferevent_trigger_event(d->bev, BEV_EVENT_READING | BEV_EVENT_TIMEOUT, 0);
}

int hub_http__deadline_attach(struct event_base *base, struct bufferevent *bev, SSL *ssl,
                              const struct hub_http_env *env)
{
    pthread_once(&ex_once, ex_init);
    if (ex_index < 0 || env->handshake_timeout_ms <= 0)
        return -1;
    struct conn_deadline *d = calloc(1, sizeof(*d));
    if (d == NULL)
        return -1;
    d->bev = bev;
    d->env = env;
    d->timer = evtimer_new(base, on_deadline, d);
    if (d->timer == NULL || SSL_set_ex_data(ssl, ex_index, d) != 1) {
        if (d->timer != NULL)
            event_free(d->timer);
        free(d);
        return -1;
    }
    evbuffer_add_cb(bufferevent_get_output(bev), on_output, d);
    arm(d, env->handshake_timeout_ms);
    return 0;
}

static struct conn_deadline *of_request(struct evhttp_request *req)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    struct bufferevent *bev = evcon != NULL ? evhttp_connection_get_bufferevent(evcon) : NULL;
    SSL *ssl = bev != NULL ? bufferevent_openssl_get_ssl(bev) : NULL;
    return ssl != NULL && ex_index >= 0 ? SSL_get_ex_data(ssl, ex_index) : NULL;
}

void hub_http__deadline_request_started(struct evhttp_request *req)
{
    struct conn_deadline *d = of_request(req);
    if (d == NULL)
        return;
    d->handshake_done = 1;
    d->in_request = 1;
    evtimer_del(d->timer);
}

void hub_http__deadline_request_done(struct evhttp_request *req)
{
    struct conn_deadline *d = of_request(req);
    if (d == NULL)
        return;
    d->in_request = 0;
    if (d->env->request_timeout_ms > 0)
        arm(d, d->env->request_timeout_ms);
}
