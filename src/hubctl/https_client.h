/*
 * hubctl's HTTPS/1.1 client: one blocking request per TLS connection.
 *
 * Two halves:
 *   - https_parse.c: pure, no I/O: formatting a request head (refusing CR/LF
 *     injection) and an incremental response parser (status line, headers,
 *     Content-Length / chunked / read-until-close bodies, size caps). Unit
 *     tests #include it directly.
 *   - https_client.c: sockets and OpenSSL: getaddrinfo, connect with a
 *     timeout, TLS 1.2+, server certificate verified against a CA file (or the
 *     system store) plus a host name or IP address check, one deadline for the
 *     whole exchange.
 *
 * Ownership: arguments are borrowed for the call. A filled
 * `struct hubctl_http_response` owns its strings and body; free it with
 * hubctl_http_response_free() (safe on a zeroed or already freed struct).
 * Thread rules: none (hubctl is single-threaded); no globals.
 */
#ifndef HUB_HUBCTL_HTTPS_CLIENT_H
#define HUB_HUBCTL_HTTPS_CLIENT_H

#include <stddef.h>

#include "common/err.h"

/* Defaults used by hubctl; each is a field of hubctl_https_target. */
#define HUBCTL_HTTPS_CONNECT_TIMEOUT_MS 30000
#define HUBCTL_HTTPS_IO_TIMEOUT_MS      30000
/* The largest response body hubctl accepts: a full `device list` of a big hub
 * fits many times over, a runaway server does not exhaust memory. */
#define HUBCTL_HTTPS_MAX_BODY_BYTES (8u * 1024 * 1024)
/* Status line + headers, and the chunk-size / trailer lines of a chunked body. */
#define HUBCTL_HTTPS_MAX_HEAD_BYTES (64u * 1024)
#define HUBCTL_HTTPS_MAX_HEADERS    100

struct hubctl_http_header {
    char *name;  /* as received; compare case-insensitively */
    char *value; /* leading/trailing blanks removed */
};

struct hubctl_http_response {
    int status;   /* 100..999 */
    char *reason; /* reason phrase, may be "" */
    struct hubctl_http_header *headers;
    size_t nheaders;
    char *body; /* body_len bytes plus a NUL (never NULL once parsed) */
    size_t body_len;
};

/* Frees everything the response owns and zeroes it. NULL is accepted. */
void hubctl_http_response_free(struct hubctl_http_response *resp);

/* Value of the first header named `name` (case-insensitive), or NULL. Borrowed
 * from resp. */
const char *hubctl_http_response_header_get0(const struct hubctl_http_response *resp,
                                             const char *name);

/* ---- pure: request formatting (https_parse.c) ----------------------------- */

/*
 * Formats a request head into a new NUL-terminated string (*out_new, caller
 * frees): "METHOD PATH HTTP/1.1", Host (host, bracketed if an IPv6 literal, with
 * ":port" unless port is 443), the caller's `headers` ("Name: value" strings,
 * NULL-terminated list, may be NULL), Content-Length when body_len > 0 or the
 * method is PUT/POST/PATCH, "Connection: close", and the blank line.
 * HUB_E_INVALID_ARG if the method is not a token, the path does not start with
 * '/' or holds a blank or control byte, or a header is not "token: value" or
 * holds CR/LF/NUL/other control bytes (no header injection).
 */
int hubctl_http_request_format(const char *method, const char *host, unsigned port,
                               const char *path, const char *const *headers, size_t body_len,
                               char **out_new, struct hub_err *err);

/* ---- pure: incremental response parser (https_parse.c) -------------------- */

enum hubctl_http_parse_state {
    HUBCTL_HTTP_HEAD = 0,
    HUBCTL_HTTP_BODY_LENGTH, /* Content-Length body */
    HUBCTL_HTTP_CHUNK_SIZE,
    HUBCTL_HTTP_CHUNK_DATA,
    HUBCTL_HTTP_CHUNK_DATA_END, /* the CRLF after a chunk's data */
    HUBCTL_HTTP_TRAILERS,
    HUBCTL_HTTP_BODY_UNTIL_CLOSE,
    HUBCTL_HTTP_DONE,
};

struct hubctl_http_parser {
    /* set by hubctl_http_parser_init */
    int head_request; /* the request was HEAD: no body whatever the headers say */
    size_t max_body_bytes;
    /* private */
    enum hubctl_http_parse_state state;
    char *buf; /* unconsumed bytes: the head, or a partial line */
    size_t buf_len, buf_cap;
    size_t scan_from; /* where to resume looking for the end of the head */
    size_t remaining; /* bytes left in a Content-Length body or a chunk */
    size_t body_cap;
    struct hubctl_http_response *resp; /* borrowed; filled as bytes arrive */
};

/* Prepares p to fill *resp (which it zeroes). Use max_body_bytes 0 for the default. */
void hubctl_http_parser_init(struct hubctl_http_parser *p, struct hubctl_http_response *resp,
                             int head_request, size_t max_body_bytes);
/* Frees the parser's own buffer (not the response). NULL is accepted. */
void hubctl_http_parser_free(struct hubctl_http_parser *p);

/*
 * Feeds `len` received bytes. Returns 1 when the response is complete (bytes
 * after its end are ignored: we send "Connection: close"), 0 when more bytes
 * are needed, or a negative code: HUB_E_PARSE (malformed status line, header,
 * Content-Length, chunk framing), HUB_E_TOO_LARGE (head, header count or body
 * over its cap), HUB_E_NOMEM. 1xx interim responses are skipped.
 */
int hubctl_http_parser_feed(struct hubctl_http_parser *p, const char *data, size_t len,
                            struct hub_err *err);

/* The peer closed the connection. Returns 1 if that completes the response (a
 * read-until-close body, or already complete), else HUB_E_PARSE ("truncated"). */
int hubctl_http_parser_finish(struct hubctl_http_parser *p, struct hub_err *err);

/* ---- the network half (https_client.c) ------------------------------------ */

struct hubctl_https_target {
    const char *host;         /* name or IP checked against the server certificate; Host header */
    const char *connect_host; /* address to connect to; NULL means `host` */
    unsigned port;            /* 1..65535 */
    const char *cafile;       /* PEM trust anchors; NULL means the system default store */
    int connect_timeout_ms;   /* <= 0: HUBCTL_HTTPS_CONNECT_TIMEOUT_MS */
    int io_timeout_ms;        /* whole handshake + exchange; <= 0: HUBCTL_HTTPS_IO_TIMEOUT_MS */
    size_t max_body_bytes;    /* 0: HUBCTL_HTTPS_MAX_BODY_BYTES */
    /* TLS client certificate (a DPS device's X.509 attestation): the PEM chain
     * file, leaf first then its intermediates, and the leaf's PEM private key.
     * Both NULL: no client certificate. */
    const char *client_cert_file;
    const char *client_key_file;
};

/*
 * Sends one request and reads the whole response into *resp (zeroed first;
 * the caller frees it with hubctl_http_response_free, also on failure).
 * `headers` as for hubctl_http_request_format; body may be NULL when body_len
 * is 0. Any HTTP status is a success here (0): interpreting it is the
 * caller's business.
 * Errors: HUB_E_INVALID_ARG (bad request parts), HUB_E_IO (resolve, connect,
 * TLS handshake incl. certificate verification, send, receive, timeout: the
 * message says which), HUB_E_CRYPTO (CA file unusable), HUB_E_PARSE /
 * HUB_E_TOO_LARGE (response), HUB_E_NOMEM.
 * The caller must ignore SIGPIPE (hubctl's main does).
 */
int hubctl_https_request(const struct hubctl_https_target *target, const char *method,
                         const char *path, const char *const *headers, const void *body,
                         size_t body_len, struct hubctl_http_response *resp, struct hub_err *err);

#endif
