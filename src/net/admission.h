/*
 * net admission: which accepted TCP connections the hub keeps, decided at
 * accept time, before any TLS work, for every listener (MQTT and HTTPS).
 *
 * Three limits (issue 6 §2 "Connection floods"), checked in this order so a
 * refusal names the most specific cause:
 *   CONN_RATE_PER_IP  a token bucket per source address: `burst` new
 *                     connections at once, refilled at `rate` per second;
 *   CONN_CAP_PER_IP   open connections from one source address;
 *   CONN_CAP_GLOBAL   open connections, all listeners and workers together.
 * A refused connection is closed at once (RST, no TLS byte sent), counted
 * (metrics hubd_connections_refused_total{transport,reason}) and logged:
 *   event=conn_refused transport=mqtt peer=10.0.0.9:5123 reason=CONN_RATE_PER_IP
 *       limit=20 [suppressed=N] [suppressed_other=M]
 * at most one line per source address per second (`suppressed` = its
 * refusals not logged since its previous line) and at most
 * HUB_NET_ADMISSION_LOG_PER_S lines per second in all (`suppressed_other` =
 * lines dropped for other addresses meanwhile), so a flood cannot flood the
 * log.
 *
 * Source address: IPv4 and IPv4-mapped IPv6 (::ffff:a.b.c.d, what a
 * dual-stack listener reports) are one key; other IPv6 addresses are keyed
 * by their /64 prefix, because one host usually owns a whole /64 and may
 * pick any address in it. Loopback is not exempt.
 *
 * Memory is bounded: at most max_tracked addresses are known at once. An
 * address with no open connection whose bucket has refilled carries no
 * state and is forgotten; when the table is full the address idle for
 * longest is forgotten first (it gets a full bucket back, as a new address
 * would). If every tracked address holds a connection the table cannot
 * grow and new addresses are refused as CONN_CAP_GLOBAL.
 *
 * Lifetime of an admission (a "ticket"): taken at accept, bound to the
 * connection's SSL object, and released by OpenSSL's ex_data free callback
 * when that SSL is freed, which both bufferevent_openssl owners (the device
 * endpoint's connection, evhttp's connection) do exactly once, on every
 * close path, idle connections included. So neither protocol layer needs a
 * close hook of its own.
 *
 * Listeners find their admission through their SSL_CTX
 * (hub_net_admission_ctx_set), so the protocol layers' constructors stay as
 * they are; a context without one admits everything.
 *
 * Thread rules: hub_net_admission_new/_free and _ctx_set on the main thread
 * (free after every connection is gone: after the worker pool was joined);
 * everything else from any thread. One mutex guards the address table; the
 * counts readers see are atomics.
 */
#ifndef HUB_NET_ADMISSION_H
#define HUB_NET_ADMISSION_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <openssl/ssl.h>

#include "common/err.h"

struct bufferevent;
struct event_base;
struct hub_metrics;

enum hub_net_transport {
    HUB_NET_TRANSPORT_MQTT,
    HUB_NET_TRANSPORT_HTTPS,
    HUB_NET_TRANSPORT_DPS_MQTT, /* the provisioning service's registration listener */
    HUB_NET_TRANSPORT__COUNT
};

/* "mqtt", "https", "dps_mqtt"; "unknown" out of range. Static. */
const char *hub_net_transport_name(enum hub_net_transport t);

/* X(NAME, text). NAME is the log `reason=` and the metrics label. */
#define HUB_NET_ADMIT_MAP(X)                                                                       \
    X(OK, "admitted")                                                                              \
    X(CONN_RATE_PER_IP, "the source address opens connections faster than connection_rate_per_ip") \
    X(CONN_CAP_PER_IP, "the source address holds max_connections_per_ip connections")              \
    X(CONN_CAP_GLOBAL, "the hub holds max_connections connections")

enum hub_net_admit {
#define HUB_NET_ADMIT_ENUM(name, text) HUB_NET_ADMIT_##name,
    HUB_NET_ADMIT_MAP(HUB_NET_ADMIT_ENUM)
#undef HUB_NET_ADMIT_ENUM
        HUB_NET_ADMIT__COUNT
};

/* "CONN_RATE_PER_IP", ...; "UNKNOWN" out of range. Static. */
const char *hub_net_admit_name(enum hub_net_admit a);

/* Log lines about refusals per second, all addresses together. */
#define HUB_NET_ADMISSION_LOG_PER_S 20
/* max_tracked default beyond max_connections (addresses with only bucket state). */
#define HUB_NET_ADMISSION_TRACK_SPARE 4096

struct hub_net_admission_opts {
    size_t max_connections; /* open connections, all transports; 0 = no cap */
    size_t max_per_ip;      /* open connections per source address; 0 = no cap */
    uint32_t rate_per_ip;   /* new connections per second per address; 0 = no rate limit */
    uint32_t burst_per_ip;  /* bucket size; 0 = max(rate_per_ip, 1) */
    /* Addresses tracked at once; 0 = max_connections + HUB_NET_ADMISSION_TRACK_SPARE
     * (65536 without a global cap). */
    size_t max_tracked;
    int64_t (*now_ms)(void *ctx); /* monotonic milliseconds; NULL = CLOCK_MONOTONIC */
    void *now_ctx;
    /* Where the gauges and counters go (borrowed, must outlive the
     * admission); NULL = nowhere. */
    struct hub_metrics *metrics;
};

struct hub_net_admission;
struct hub_net_admission_ticket;

/* *out_new: hub_net_admission_free. HUB_E_NOMEM, HUB_E_CRYPTO (hash key). */
int hub_net_admission_new(const struct hub_net_admission_opts *opts,
                          struct hub_net_admission **out_new, struct hub_err *err);
/* NULL ok. Every ticket must have been released. */
void hub_net_admission_free(struct hub_net_admission *adm);

/*
 * The decision for a connection from `sa` on transport `t`. HUB_NET_ADMIT_OK
 * fills *ticket_out (release it, or bind it to the connection's SSL);
 * otherwise *ticket_out is NULL and the refusal has been counted and (rate
 * limited) logged: close the socket (hub_net_admission_refuse_close). An
 * address family other than IPv4/IPv6 (a UNIX socket) is admitted untracked
 * by the per-address limits but counted globally.
 */
enum hub_net_admit hub_net_admission_admit(struct hub_net_admission *adm, enum hub_net_transport t,
                                           const struct sockaddr *sa, socklen_t salen,
                                           struct hub_net_admission_ticket **ticket_out);
/* Gives the slot back. NULL ok. Frees the ticket. */
void hub_net_admission_release(struct hub_net_admission_ticket *ticket);
/* Hands the ticket to `ssl`: released when ssl is freed. A NULL ssl, or a
 * failure to attach, releases it now. NULL ticket: nothing. */
void hub_net_admission_ticket_bind_ssl(struct hub_net_admission_ticket *ticket, SSL *ssl);

/* Closes a refused socket with a reset (SO_LINGER 0): no TIME_WAIT left on
 * the hub per refused connection during a flood. */
void hub_net_admission_refuse_close(int fd);

/* ---- listeners ----------------------------------------------------------- */

/* Makes every listener serving TLS with `ctx` use `adm` as transport t.
 * adm NULL detaches. HUB_E_CRYPTO if OpenSSL refuses the ex_data. */
int hub_net_admission_ctx_set(SSL_CTX *ctx, struct hub_net_admission *adm, enum hub_net_transport t,
                              struct hub_err *err);

/*
 * For listeners that see the accepted socket (the MQTT server's
 * evconnlistener callback): admit(ctx's admission, ctx's transport, sa).
 * 0 = keep the connection (*ticket_out NULL when ctx has no admission);
 * -1 = refused (counted and logged): close fd with refuse_close.
 */
int hub_net_admission_accept(SSL_CTX *ctx, const struct sockaddr *sa, socklen_t salen,
                             struct hub_net_admission_ticket **ticket_out);

/*
 * For evhttp, which accepts the socket itself and only asks its bevcb for a
 * bufferevent (no fd, no address; it sets the fd right after the bevcb
 * returns, still inside its accept callback). Call from the bevcb with the
 * SSL bufferevent you return and its SSL. The decision then runs as an
 * event activated at once on `base`: libevent runs it in the same loop turn,
 * after evhttp's accept callback and before the new socket can be read, so
 * no TLS byte is processed for a refused connection. Refused: the socket is
 * shut down (the peer sees the close at once; evhttp then frees its
 * connection on the EOF). Admitted: the ticket lives with `ssl`. Does
 * nothing (0) when ssl's context has no admission. HUB_E_NOMEM: no check
 * will run (the connection is kept, unaccounted).
 */
int hub_net_admission_check_later(struct event_base *base, struct bufferevent *bev, SSL *ssl);

/* ---- observation --------------------------------------------------------- */

struct hub_net_admission_stats {
    size_t open; /* admitted and not yet released */
    size_t open_by_transport[HUB_NET_TRANSPORT__COUNT];
    size_t tracked;                         /* addresses in the table */
    uint64_t admitted;                      /* since start */
    uint64_t refused[HUB_NET_ADMIT__COUNT]; /* since start, by reason */
    uint64_t log_lines;                     /* refusal lines written */
};

void hub_net_admission_stats_get(struct hub_net_admission *adm,
                                 struct hub_net_admission_stats *out);
/* Open connections from sa's address key (0 when untracked). */
size_t hub_net_admission_open_from(struct hub_net_admission *adm, const struct sockaddr *sa,
                                   socklen_t salen);

#endif
