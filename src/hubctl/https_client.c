/*
 * The network half of hubctl's HTTPS client (contract in https_client.h).
 *
 * One request per connection: resolve with getaddrinfo (IPv4, IPv6, names),
 * try each address with a non-blocking connect bounded by the connect timeout,
 * then drive OpenSSL on the non-blocking socket with poll() against a single
 * deadline covering handshake, request and response, so a server that
 * trickles bytes cannot hold hubctl longer than the I/O timeout.
 *
 * TLS policy: TLS 1.2 or later; the server chain must verify against --cafile
 * (which replaces the system store, like Node's `ca` option) or the system
 * default store; the certificate must name the host we meant (DNS SAN, or IP
 * SAN for an IP literal; no partial wildcards). SNI is sent for names only:
 * RFC 6066 forbids IP literals in SNI, and the hub never requires it
 * (reference §8).
 *
 * Client certificate (optional, `hubctl dps register`): the whole chain file
 * is sent (SSL_CTX_use_certificate_chain_file), because the server validates
 * the device up to a CA it holds and needs the intermediates from us; the key
 * must match the leaf, checked before connecting so a wrong pair is a local
 * error rather than a handshake failure.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "hubctl/https_client.h"

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The most recent OpenSSL error as text, or `fallback`; drains the queue. */
static const char *ssl_errstr(char *buf, size_t cap, const char *fallback)
{
    unsigned long e, last = 0;
    while ((e = ERR_get_error()) != 0)
        last = e;
    if (last == 0)
        return fallback;
    ERR_error_string_n(last, buf, cap);
    return buf;
}

static int is_ip_literal(const char *host)
{
    unsigned char tmp[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, host, tmp) == 1 || inet_pton(AF_INET6, host, tmp) == 1;
}

/* Waits until fd is ready for `events` or the deadline passes. 0 ready, HUB_E_IO otherwise. */
static int wait_fd(int fd, short events, long long deadline, const char *what, struct hub_err *err)
{
    for (;;) {
        long long left = deadline - now_ms();
        if (left <= 0)
            return HUB_ERR(err, HUB_E_IO, "timed out %s", what);
        struct pollfd pfd = {.fd = fd, .events = events};
        int n = poll(&pfd, 1, left > 60000 ? 60000 : (int)left);
        if (n > 0)
            return 0;
        if (n < 0 && errno != EINTR)
            return HUB_ERR(err, HUB_E_IO, "poll: %s", strerror(errno));
    }
}

/* Connects to the first address of host:port that answers. Returns the fd or HUB_E_IO. */
static int tcp_connect(const char *host, unsigned port, int timeout_ms, struct hub_err *err)
{
    char portstr[8];
    snprintf(portstr, sizeof(portstr), "%u", port);
    /* "[::1]" from --host: getaddrinfo wants the bare literal. */
    char bare[256];
    size_t hl = strlen(host);
    if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']' && hl - 2 < sizeof(bare)) {
        memcpy(bare, host + 1, hl - 2);
        bare[hl - 2] = '\0';
        host = bare;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    int gai = getaddrinfo(host, portstr, &hints, &res);
    if (gai != 0)
        return HUB_ERR(err, HUB_E_IO, "cannot resolve %s: %s", host, gai_strerror(gai));

    int fd = -1;
    char last[HUB_ERR_MSG_MAX] = "no address";
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
        if (fd < 0) {
            snprintf(last, sizeof(last), "socket: %s", strerror(errno));
            continue;
        }
        int rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
        if (rc < 0 && errno == EINPROGRESS) {
            struct hub_err werr = {0};
            if (wait_fd(fd, POLLOUT, now_ms() + timeout_ms, "connecting", &werr) < 0) {
                snprintf(last, sizeof(last), "%s", werr.msg);
                close(fd);
                fd = -1;
                continue;
            }
            int soerr = 0;
            socklen_t sl = sizeof(soerr);
            if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
                soerr = errno;
            rc = soerr == 0 ? 0 : -1;
            errno = soerr;
        }
        if (rc == 0)
            break;
        snprintf(last, sizeof(last), "%s", strerror(errno));
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0)
        return HUB_ERR(err, HUB_E_IO, "cannot connect to %s port %u: %s", host, port, last);
    return fd;
}

/* Loads the client certificate chain and key into ctx. 0 or HUB_E_CRYPTO / INVALID_ARG. */
static int ctx_client_cert(SSL_CTX *ctx, const char *cert_file, const char *key_file,
                           struct hub_err *err)
{
    char ebuf[256];
    if ((cert_file == NULL) != (key_file == NULL))
        return HUB_ERR(err, HUB_E_INVALID_ARG,
                       "a client certificate needs both its chain file and its key file");
    if (cert_file == NULL)
        return 0;
    ERR_clear_error();
    if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1)
        return HUB_ERR(err, HUB_E_CRYPTO, "cannot load client certificate %s: %s", cert_file,
                       ssl_errstr(ebuf, sizeof(ebuf), "no certificate"));
    if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1)
        return HUB_ERR(err, HUB_E_CRYPTO, "cannot load client key %s: %s", key_file,
                       ssl_errstr(ebuf, sizeof(ebuf), "no key"));
    if (SSL_CTX_check_private_key(ctx) != 1)
        return HUB_ERR(err, HUB_E_CRYPTO, "client key %s does not match certificate %s", key_file,
                       cert_file);
    return 0;
}

static SSL_CTX *ctx_new(const char *cafile, struct hub_err *err)
{
    char ebuf[256];
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL) {
        HUB_ERR(err, HUB_E_CRYPTO, "SSL_CTX_new: %s", ssl_errstr(ebuf, sizeof(ebuf), "failed"));
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    /* A peer that drops TCP without close_notify: the HTTP framing decides whether
     * the response was complete (hubctl_http_parser_finish), not OpenSSL. */
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
    int ok = cafile != NULL ? SSL_CTX_load_verify_locations(ctx, cafile, NULL)
                            : SSL_CTX_set_default_verify_paths(ctx);
    if (ok != 1) {
        if (cafile != NULL)
            HUB_ERR(err, HUB_E_CRYPTO, "cannot load CA file %s: %s", cafile,
                    ssl_errstr(ebuf, sizeof(ebuf), "no certificates"));
        else
            HUB_ERR(err, HUB_E_CRYPTO, "cannot load the system CA store: %s",
                    ssl_errstr(ebuf, sizeof(ebuf), "failed"));
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

/* Runs one SSL_* step until it completes, waiting on the socket as OpenSSL asks.
 * Returns the step's positive result, 0 for a clean EOF (reads only), or HUB_E_IO. */
enum ssl_op { OP_HANDSHAKE, OP_WRITE, OP_READ };

static int ssl_step(SSL *ssl, int fd, enum ssl_op op, const void *buf, size_t len, size_t *done,
                    long long deadline, struct hub_err *err)
{
    static const char *const what[] = {"in the TLS handshake", "sending the request",
                                       "waiting for the response"};
    char ebuf[256];
    for (;;) {
        int rc;
        ERR_clear_error();
        if (op == OP_HANDSHAKE)
            rc = SSL_connect(ssl);
        else if (op == OP_WRITE)
            rc = SSL_write_ex(ssl, buf, len, done);
        else
            rc = SSL_read_ex(ssl, (void *)buf, len, done);
        if (rc == 1)
            return 1;
        int e = SSL_get_error(ssl, rc);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
            int w =
                wait_fd(fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline, what[op], err);
            if (w < 0)
                return w;
            continue;
        }
        if (op == OP_READ && e == SSL_ERROR_ZERO_RETURN)
            return 0;
        if (op == OP_HANDSHAKE) {
            long vr = SSL_get_verify_result(ssl);
            if (vr != X509_V_OK)
                return HUB_ERR(err, HUB_E_IO, "TLS: server certificate not trusted: %s",
                               X509_verify_cert_error_string(vr));
        }
        if (e == SSL_ERROR_SYSCALL && errno != 0)
            return HUB_ERR(err, HUB_E_IO, "TLS %s: %s", what[op], strerror(errno));
        return HUB_ERR(err, HUB_E_IO, "TLS error %s: %s", what[op],
                       ssl_errstr(ebuf, sizeof(ebuf), "connection closed"));
    }
}

static int exchange(SSL *ssl, int fd, const char *head, const void *body, size_t body_len,
                    struct hubctl_http_parser *parser, long long deadline, struct hub_err *err)
{
    int rc = ssl_step(ssl, fd, OP_HANDSHAKE, NULL, 0, NULL, deadline, err);
    if (rc < 0)
        return rc;
    const struct {
        const char *p;
        size_t n;
    } parts[2] = {{head, strlen(head)}, {body, body != NULL ? body_len : 0}};
    for (int i = 0; i < 2; i++) {
        size_t off = 0;
        while (off < parts[i].n) {
            size_t w = 0;
            rc = ssl_step(ssl, fd, OP_WRITE, parts[i].p + off, parts[i].n - off, &w, deadline, err);
            if (rc < 0)
                return rc;
            off += w;
        }
    }
    char buf[16384];
    for (;;) {
        size_t n = 0;
        rc = ssl_step(ssl, fd, OP_READ, buf, sizeof(buf), &n, deadline, err);
        if (rc < 0)
            return rc;
        if (rc == 0) /* close_notify or (ignored) unexpected EOF */
            return hubctl_http_parser_finish(parser, err) == 1 ? 0 : err->code;
        rc = hubctl_http_parser_feed(parser, buf, n, err);
        if (rc < 0)
            return rc;
        if (rc == 1)
            return 0;
    }
}

int hubctl_https_request(const struct hubctl_https_target *t, const char *method, const char *path,
                         const char *const *headers, const void *body, size_t body_len,
                         struct hubctl_http_response *resp, struct hub_err *err)
{
    struct hub_err local = {0};
    if (err == NULL) /* exchange() reads err->code */
        err = &local;
    memset(resp, 0, sizeof(*resp));
    char *head = NULL;
    int rc =
        hubctl_http_request_format(method, t->host, t->port, path, headers, body_len, &head, err);
    if (rc < 0)
        return rc;
    int connect_ms =
        t->connect_timeout_ms > 0 ? t->connect_timeout_ms : HUBCTL_HTTPS_CONNECT_TIMEOUT_MS;
    int io_ms = t->io_timeout_ms > 0 ? t->io_timeout_ms : HUBCTL_HTTPS_IO_TIMEOUT_MS;

    SSL_CTX *ctx = ctx_new(t->cafile, err);
    if (ctx == NULL) {
        rc = err->code;
        goto free_head;
    }
    rc = ctx_client_cert(ctx, t->client_cert_file, t->client_key_file, err);
    if (rc < 0)
        goto free_ctx;
    int fd = tcp_connect(t->connect_host ? t->connect_host : t->host, t->port, connect_ms, err);
    if (fd < 0) {
        rc = fd;
        goto free_ctx;
    }
    SSL *ssl = SSL_new(ctx);
    if (ssl == NULL || SSL_set_fd(ssl, fd) != 1) {
        rc = HUB_ERR(err, HUB_E_CRYPTO, "cannot set up TLS");
        goto free_ssl;
    }
    X509_VERIFY_PARAM *vp = SSL_get0_param(ssl);
    if (is_ip_literal(t->host)) {
        if (X509_VERIFY_PARAM_set1_ip_asc(vp, t->host) != 1) {
            rc = HUB_ERR(err, HUB_E_INVALID_ARG, "bad IP address %s", t->host);
            goto free_ssl;
        }
    } else {
        X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        if (X509_VERIFY_PARAM_set1_host(vp, t->host, 0) != 1 ||
            SSL_set_tlsext_host_name(ssl, t->host) != 1) {
            rc = HUB_ERR(err, HUB_E_INVALID_ARG, "bad host name %s", t->host);
            goto free_ssl;
        }
    }

    struct hubctl_http_parser parser;
    hubctl_http_parser_init(&parser, resp, strcmp(method, "HEAD") == 0, t->max_body_bytes);
    rc = exchange(ssl, fd, head, body, body_len, &parser, now_ms() + io_ms, err);
    hubctl_http_parser_free(&parser);
    if (rc == 0) {
        /* Best effort: the server closes anyway ("Connection: close"). */
        (void)SSL_shutdown(ssl);
    }

free_ssl:
    SSL_free(ssl);
    close(fd);
free_ctx:
    SSL_CTX_free(ctx);
free_head:
    free(head);
    ERR_clear_error();
    return rc;
}
