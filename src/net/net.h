/*
 * net: worker threads, event loops, listening sockets and the TLS server
 * context. Knows nothing of HTTP or MQTT: protocol layers attach their own
 * handlers to a worker's event base.
 *
 * Threading model: N workers, each an OS thread running its own libevent
 * event_base. Every protocol listener is opened once per worker with
 * SO_REUSEPORT so the kernel spreads new connections over the workers and a
 * connection lives on one thread for its whole life. libevent is put in
 * pthread mode (hub_net_init) so other threads may schedule work on a
 * worker's base with event_base_once().
 *
 * Ownership: the pool owns the workers and their bases; a protocol layer owns
 * what it creates on a base and frees it from its own stop callback, which
 * runs on that worker's thread.
 */
#ifndef HUB_NET_H
#define HUB_NET_H

#include <pthread.h>
#include <stddef.h>

#include <openssl/ssl.h>

#include "common/err.h"

struct event_base;

/* Once per process, before any event_base exists: pthread locking for libevent,
 * SIGPIPE ignored. */
int hub_net_init(struct hub_err *err);

struct hub_net_tls_opts {
    const char *cert_chain_file; /* server certificate followed by its CA chain (PEM) */
    const char *key_file;        /* its private key (PEM) */
    /* Ask for, but never require, a client certificate. Such a context
     * resumes only from its in-memory session cache (TLS 1.2 ids, TLS 1.3
     * stateful tickets), whose sessions keep the device's whole chain, so a
     * resumed connection is authenticated exactly like a full handshake;
     * stateless tickets (leaf only) are never issued. */
    int request_client_cert;
};

/* TLS 1.2 and 1.3 only, no renegotiation, no compression, server cipher
 * preference, ECDHE only for TLS 1.2. A requested client certificate is never
 * judged during the handshake: the protocol layer decides after it, so the
 * client gets a protocol-level refusal (CONNACK, HTTP 401) with a reason.
 * Caller frees with SSL_CTX_free. */
int hub_net_tls_server_ctx_new(const struct hub_net_tls_opts *opts, SSL_CTX **out_new,
                               struct hub_err *err);

/* A non-blocking listening TCP socket on addr:port with SO_REUSEADDR and
 * SO_REUSEPORT (so each worker can open its own). addr "::" is dual-stack.
 * The error names the port and the option that chooses another
 * (port_option, e.g. "--https-port"). */
int hub_net_listen(const char *addr, int port, const char *port_option, int backlog, int *out_fd,
                   struct hub_err *err);

struct hub_net_worker {
    size_t index;
    struct event_base *base;
    pthread_t thread;
};

struct hub_net_pool {
    struct hub_net_worker *workers;
    size_t count;
};

/* Creates `count` workers with an event base each, without starting them, so
 * protocol layers can attach listeners first. count 0 means one per core. */
int hub_net_pool_init(struct hub_net_pool *pool, size_t count, struct hub_err *err);
/* Starts every worker's thread (event_base_loop until told to stop). */
int hub_net_pool_start(struct hub_net_pool *pool, struct hub_err *err);
/* Waits for every worker thread to return (after protocol layers made each
 * loop exit), then frees the bases. Safe on a pool that never started. */
void hub_net_pool_join_and_free(struct hub_net_pool *pool);

/* Runs fn(arg) on worker's thread at its next loop turn. Thread-safe. */
int hub_net_worker_call(struct hub_net_worker *worker, void (*fn)(void *arg), void *arg);

#endif
