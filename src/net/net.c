#include "net/net.h"

#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

int hub_net_init(struct hub_err *err)
{
    if (evthread_use_pthreads() != 0)
        return HUB_ERR(err, HUB_E_INTERNAL, "libevent has no pthread support");
    /* A peer that resets mid-write must not kill the hub. */
    signal(SIGPIPE, SIG_IGN);
    return 0;
}

/* Sessions kept for resumption on contexts that ask for a client chain
 * (OpenSSL's default count): ~1 KiB each while their device is connected
 * (the certificates are shared with the live connection), ~6 KiB once it
 * is gone (the parsed leaf), so at most ~120 MiB; the oldest goes first.
 * An hour covers the usual reconnect of a device. */
#define HUB_NET_SESSION_CACHE_MAX 20480
#define HUB_NET_SESSION_TIMEOUT_S 3600

static int always_accept_peer_cert(int preverify_ok, X509_STORE_CTX *ctx)
{
    /* The policy (pki) runs after the handshake, where it can explain itself. */
    (void)preverify_ok;
    (void)ctx;
    return 1;
}

/*
 * Presented CA certificates, shared (why): every device of a fleet presents
 * the same intermediate(s), and each handshake's parsed copy (~4 KiB of
 * X509, names, extensions, public key) would live as long as the
 * connection and its cached session. After OpenSSL parsed a chain, each
 * certificate after the leaf is looked up by the SHA-256 of its DER: a hit
 * replaces the fresh copy with the shared one (same bytes, so the same
 * certificate for every later check), a miss publishes it. Bounded:
 * CA_SHARE_SLOTS entries, direct-mapped, a newer certificate replacing an
 * older one; process lifetime. Published certificates have OpenSSL's lazy
 * caches filled first, so concurrent readers never write to them
 * (pki_verify.c relies on the same for anchors).
 */
#define CA_SHARE_SLOTS 1024
/* Certificates after the leaf looked up per handshake; more is junk. */
#define CA_SHARE_PER_CHAIN 4

struct ca_share_slot {
    unsigned char key[32];
    X509 *x; /* one reference, or NULL */
};
static struct ca_share_slot ca_share[CA_SHARE_SLOTS];
static pthread_mutex_t ca_share_mu = PTHREAD_MUTEX_INITIALIZER;

/* The shared copy of x (a new reference), or NULL when x was published or
 * cannot be shared. */
static X509 *ca_share_get1(X509 *x)
{
    unsigned char key[32];
    unsigned int len = 0;
    if (X509_digest(x, EVP_sha256(), key, &len) != 1 || len != sizeof(key))
        return NULL;
    size_t slot = ((size_t)key[0] | (size_t)key[1] << 8) % CA_SHARE_SLOTS;
    pthread_mutex_lock(&ca_share_mu);
    struct ca_share_slot *e = &ca_share[slot];
    if (e->x != NULL && memcmp(e->key, key, sizeof(key)) == 0) {
        X509 *hit = X509_up_ref(e->x) ? e->x : NULL;
        pthread_mutex_unlock(&ca_share_mu);
        return hit;
    }
    pthread_mutex_unlock(&ca_share_mu);
    /* Miss: fill the lazy caches while x is still this handshake's only. */
    (void)X509_get_extension_flags(x);
    (void)X509_NAME_cmp(X509_get_subject_name(x), X509_get_issuer_name(x));
    (void)X509_get0_pubkey(x);
    if (!X509_up_ref(x))
        return NULL;
    pthread_mutex_lock(&ca_share_mu);
    X509 *old = e->x;
    memcpy(e->key, key, sizeof(key));
    e->x = x;
    pthread_mutex_unlock(&ca_share_mu);
    X509_free(old);
    return NULL;
}

/*
 * Replaces OpenSSL's own chain verification on contexts that ask for a
 * client chain. Why: its result was ignored anyway (always_accept_peer_cert;
 * the hub's policy runs after the handshake on every connection that uses
 * the certificate, pki_verify.c), but X509_verify_cert still built a chain,
 * checked the presented signatures and extensions: ~100 us per handshake
 * for nothing. Here the presented chain (leaf first, what becomes the
 * session's peer chain) only has its CA certificates shared (above).
 */
static int presented_chain_accept(X509_STORE_CTX *ctx, void *arg)
{
    (void)arg;
    STACK_OF(X509) *sk = X509_STORE_CTX_get0_untrusted(ctx);
    int n = sk != NULL ? sk_X509_num(sk) : 0;
    for (int i = 1; i < n && i <= CA_SHARE_PER_CHAIN; i++) {
        X509 *x = sk_X509_value(sk, i);
        X509 *shared = x != NULL ? ca_share_get1(x) : NULL;
        if (shared == NULL)
            continue;
        if (shared == x) {
            X509_free(shared);
            continue;
        }
        sk_X509_set(sk, i, shared); /* the stack's reference moves to shared */
        X509_free(x);
    }
    ERR_clear_error();
    return 1;
}

int hub_net_tls_server_ctx_new(const struct hub_net_tls_opts *opts, SSL_CTX **out_new,
                               struct hub_err *err)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL)
        return HUB_ERR(err, HUB_E_NOMEM, "SSL_CTX_new failed");
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
    /* IGNORE_UNEXPECTED_EOF: a device that drops TCP without close_notify
     * (power loss, kill -9) is a peer close, not a TLS error, in our logs. */
    /* Idle connections hold no read/write buffers: most devices are idle. */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_IGNORE_UNEXPECTED_EOF);
    if (SSL_CTX_set_cipher_list(ctx, "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL") != 1)
        goto fail_ssl;
    if (SSL_CTX_use_certificate_chain_file(ctx, opts->cert_chain_file) != 1) {
        HUB_ERR(err, HUB_E_IO, "cannot load server certificate chain %s", opts->cert_chain_file);
        goto fail_ctx;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, opts->key_file, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        HUB_ERR(err, HUB_E_IO, "cannot load server key %s (or it does not match the certificate)",
                opts->key_file);
        goto fail_ctx;
    }
    static const unsigned char sid_ctx[] = "hubd";
    SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1);
    if (opts->request_client_cert) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, always_accept_peer_cert);
        SSL_CTX_set_cert_verify_callback(ctx, presented_chain_accept, NULL);
        /*
         * Resumption, stateful only (why): a resumed connection must still be
         * authenticated as a full one is (device enabled, CA verified, chain
         * not revoked, by the pki validator against the current trust
         * snapshot), and that needs the device's whole chain. A stateless
         * ticket (TLS 1.2 RFC 5077 or TLS 1.3's default) serializes only the
         * leaf; a session kept in this process's cache keeps the chain
         * OpenSSL parsed during the full handshake (the SSL_SESSION's
         * peer_chain, shared by reference, never re-parsed), so
         * SSL_get_peer_cert_chain answers the same on a resumed connection
         * and the protocol layers validate it again unchanged. TLS 1.3 with
         * SSL_OP_NO_TICKET sends stateful tickets (a cache key), TLS 1.2
         * uses session ids. A session never outlives the process and is
         * bounded in number and age.
         */
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
        SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
        SSL_CTX_set_num_tickets(ctx, 1);
        SSL_CTX_sess_set_cache_size(ctx, HUB_NET_SESSION_CACHE_MAX);
        SSL_CTX_set_timeout(ctx, HUB_NET_SESSION_TIMEOUT_S);
    } else {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    }
    *out_new = ctx;
    return 0;

fail_ssl:
    HUB_ERR(err, HUB_E_CRYPTO, "cannot configure TLS ciphers");
fail_ctx:
    SSL_CTX_free(ctx);
    return err != NULL ? err->code : HUB_E_CRYPTO;
}

int hub_net_listen(const char *addr, int port, const char *port_option, int backlog, int *out_fd,
                   struct hub_err *err)
{
    char portstr[16];
    snprintf(portstr, sizeof(portstr), "%d", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int gai = getaddrinfo(addr, portstr, &hints, &res);
    if (gai != 0)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "cannot resolve listen address '%s': %s", addr,
                       gai_strerror(gai));
    int fd =
        socket(res->ai_family, res->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, res->ai_protocol);
    if (fd < 0) {
        HUB_ERR(err, HUB_E_IO, "socket() for %s port %d: %s", addr, port, strerror(errno));
        goto fail_addr;
    }
    int one = 1, zero = 0;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) {
        HUB_ERR(err, HUB_E_IO, "SO_REUSEPORT: %s", strerror(errno));
        goto fail_fd;
    }
    if (res->ai_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
    /* Accepted sockets inherit it (Linux): a lone small TLS record (a
     * CONNACK, a PUBACK) must not wait ~40 ms for Nagle. */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (bind(fd, res->ai_addr, res->ai_addrlen) != 0) {
        int e = errno;
        if (e == EACCES)
            HUB_ERR(err, HUB_E_IO,
                    "cannot bind %s port %d: permission denied (ports below 1024 need root or "
                    "CAP_NET_BIND_SERVICE); choose another port with %s",
                    addr, port, port_option);
        else if (e == EADDRINUSE)
            HUB_ERR(err, HUB_E_IO,
                    "cannot bind %s port %d: already in use by another program; stop it or choose "
                    "another port with %s",
                    addr, port, port_option);
        else
            HUB_ERR(err, HUB_E_IO, "cannot bind %s port %d: %s", addr, port, strerror(e));
        goto fail_fd;
    }
    if (listen(fd, backlog) != 0) {
        HUB_ERR(err, HUB_E_IO, "listen on %s port %d: %s", addr, port, strerror(errno));
        goto fail_fd;
    }
    freeaddrinfo(res);
    *out_fd = fd;
    return 0;

fail_fd:
    close(fd);
fail_addr:
    freeaddrinfo(res);
    return err != NULL ? err->code : HUB_E_IO;
}

int hub_net_pool_init(struct hub_net_pool *pool, size_t count, struct hub_err *err)
{
    memset(pool, 0, sizeof(*pool));
    if (count == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        count = n > 0 ? (size_t)n : 1;
    }
    pool->workers = calloc(count, sizeof(*pool->workers));
    if (pool->workers == NULL)
        return HUB_ERR(err, HUB_E_NOMEM, "no memory for %zu workers", count);
    for (size_t i = 0; i < count; i++) {
        pool->workers[i].index = i;
        pool->workers[i].base = event_base_new();
        if (pool->workers[i].base == NULL) {
            pool->count = i;
            hub_net_pool_join_and_free(pool);
            return HUB_ERR(err, HUB_E_NOMEM, "event_base_new failed");
        }
    }
    pool->count = count;
    return 0;
}

static void *worker_main(void *arg)
{
    struct hub_net_worker *worker = arg;
    /* EVLOOP_NO_EXIT_ON_EMPTY: a worker lives until its protocol layers stop it. */
    event_base_loop(worker->base, EVLOOP_NO_EXIT_ON_EMPTY);
    return NULL;
}

int hub_net_pool_start(struct hub_net_pool *pool, struct hub_err *err)
{
    for (size_t i = 0; i < pool->count; i++) {
        int rc = pthread_create(&pool->workers[i].thread, NULL, worker_main, &pool->workers[i]);
        if (rc != 0)
            return HUB_ERR(err, HUB_E_INTERNAL, "pthread_create: %s", strerror(rc));
    }
    return 0;
}

void hub_net_pool_join_and_free(struct hub_net_pool *pool)
{
    for (size_t i = 0; i < pool->count; i++) {
        if (pool->workers[i].thread)
            pthread_join(pool->workers[i].thread, NULL);
        if (pool->workers[i].base)
            event_base_free(pool->workers[i].base);
    }
    free(pool->workers);
    memset(pool, 0, sizeof(*pool));
}

struct worker_call {
    void (*fn)(void *arg);
    void *arg;
};

static void on_worker_call(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct worker_call *call = arg;
    call->fn(call->arg);
    free(call);
}

int hub_net_worker_call(struct hub_net_worker *worker, void (*fn)(void *arg), void *arg)
{
    struct worker_call *call = malloc(sizeof(*call));
    if (call == NULL)
        return HUB_E_NOMEM;
    call->fn = fn;
    call->arg = arg;
    if (event_base_once(worker->base, -1, EV_TIMEOUT, on_worker_call, call, NULL) != 0) {
        free(call);
        return HUB_E_INTERNAL;
    }
    return 0;
}
