/* Shared by the files of the http layer only. */
#ifndef HUB_HTTP_INT_H
#define HUB_HTTP_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/http.h>
#include <jansson.h>
#include <openssl/x509.h>

#include "common/err.h"
#include "http/http.h"
#include "store/store.h"

struct hub_http_poll;

/* One HTTPS server (one per worker thread). */
struct hub_http_server {
    struct event_base *base;
    struct evhttp *http;
    struct evhttp_bound_socket *listener;
    SSL_CTX *ssl_ctx;
    const struct hub_http_env *env;
    int draining;
    struct event *drain_timer;
    void (*drain_done)(void *arg);
    void *drain_arg;
    struct hub_http_poll *polls; /* telemetry long polls waiting for messages */
};

#define HUB_HTTP_MAX_SEGMENTS 8
#define HUB_HTTP_SEGMENT_MAX  256

/* One request as the handlers see it. Lives on the stack of the dispatcher. */
struct hub_http_request {
    struct evhttp_request *req;
    const struct hub_http_env *env;
    enum evhttp_cmd_type method;
    const char *method_name;
    const char *uri;      /* raw request URI, for logs */
    const char *path;     /* raw path without the query, for messages */
    const char *query;    /* raw query string or NULL */
    char peer[64];        /* "addr:port" */
    size_t segment_count; /* path split on '/', each percent-decoded */
    char segments[HUB_HTTP_MAX_SEGMENTS][HUB_HTTP_SEGMENT_MAX];
    char who[80]; /* policy name once authenticated, "-" before */
    int draining; /* server is shutting down: ask clients to close */
    struct hub_http_server *server;
};

/* Azure's error reply: status, error code name (e.g. "DeviceNotFound"), text.
 * Also logs event=api_refused with who, reason and detail. */
void hub_http__reply_error(struct hub_http_request *r, int status, const char *azure_code,
                           const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* The same, when the client must learn less than the log: client_text goes
 * in the reply, log_detail in the log line. */
void hub_http__reply_error_logged(struct hub_http_request *r, int status, const char *azure_code,
                                  const char *reason, const char *log_detail,
                                  const char *client_text);
/* The one event=api_refused line every refusal logs (who, peer, method,
 * uri, status, reason, detail), with a fresh tracking id written to
 * `tracking` for the reply body, whichever error shape it has. */
#define HUB_HTTP_TRACKING_SIZE 33
void hub_http__log_refused(struct hub_http_request *r, int status, const char *reason,
                           const char *detail, char tracking[HUB_HTTP_TRACKING_SIZE]);
/* Maps a hub_err from a lower layer to status + Azure code and replies.
 * not_found_code / exists_code name the resource ("DeviceNotFound", ...). */
void hub_http__reply_hub_err(struct hub_http_request *r, const struct hub_err *err,
                             const char *not_found_code, const char *exists_code);
/* 200/201/... with a JSON body; takes ownership of body (may be NULL: no body). */
void hub_http__reply_json(struct hub_http_request *r, int status, json_t *body);
/* Status with no body (204). */
void hub_http__reply_empty(struct hub_http_request *r, int status);

/* The request body parsed as a JSON object; replies 400 (and returns NULL)
 * when it is missing, not JSON or not an object. Caller json_decref()s. */
json_t *hub_http__body_json(struct hub_http_request *r);
/* The client certificate the request's TLS connection presented: *leaf a
 * new reference (caller X509_free()s; NULL when none) and *chain the other
 * certificates, borrowed from the session (NULL when none). */
void hub_http__peer_certs(struct hub_http_request *r, X509 **leaf, STACK_OF(X509) * *chain);
/* Value of a request header or NULL. */
const char *hub_http__header(struct hub_http_request *r, const char *name);
/* Value of query parameter `key` (decoded) into out; 1 if present, 0 if not. */
int hub_http__query_get(const struct hub_http_request *r, const char *key, char *out, size_t cap);
/* If-Match without quotes into out ("*" stays "*"); 0 if absent. */
int hub_http__if_match(struct hub_http_request *r, char *out, size_t cap);

/* Checks Authorization against the policies; on failure replies 401/403 and
 * returns non-zero. On success fills r->who. `permission` is a HUB_AUTH_PERM_* bit. */
int hub_http__authorize(struct hub_http_request *r, unsigned permission);
/* The same, satisfied by a policy holding ANY of the rights in `any_of`
 * (Azure lets either RegistryRead or ServiceConnect read twins and query). */
int hub_http__authorize_any(struct hub_http_request *r, unsigned any_of);

/* The provisioning service API's gate: the same SAS rules, looked up in the
 * DPS policy set (env->dps_policies) only. */
int hub_http__authorize_dps(struct hub_http_request *r, unsigned permission);

/* Routers; each returns 1 when it handled the request (replied), 0 if the path is not its. */
int hub_http__route_devices(struct hub_http_request *r);
int hub_http__route_certificates(struct hub_http_request *r);
int hub_http__route_messages(struct hub_http_request *r);
/* /twins/{id} (GET, PATCH, PUT): routes_twins.c */
int hub_http__route_twins(struct hub_http_request *r);
/* POST /twins/{id}/methods: routes_methods.c */
int hub_http__route_methods(struct hub_http_request *r);
/* The device HTTPS transport (device credentials, never service tokens):
 * POST /devices/{id}/messages/events, GET /devices/{id}/messages/deviceBound,
 * DELETE .../deviceBound/{etag}[?reject], POST .../deviceBound/{etag}/abandon:
 * routes_device_transport.c */
int hub_http__route_device_transport(struct hub_http_request *r);
/* The provisioning service API (DPS policy tokens, api-version 2021-10-01):
 * /enrollmentGroups, /enrollments, /registrations: routes_dps_service.c */
int hub_http__route_dps_service(struct hub_http_request *r);
/* DPS device registration over HTTPS: /{idScope}/registrations/{id}/register
 * and .../operations/{op}: routes_dps_device.c */
int hub_http__route_dps_device(struct hub_http_request *r);

/* GET /metrics (routes_metrics.c; no api-version: Prometheus scrapers send
 * none). Returns 1 when the path was /metrics (replied), 0 otherwise. */
int hub_http__route_metrics(struct hub_http_request *r);
/* evhttp on-complete callback: counts the request in
 * hubd_http_requests_total{code="2xx"...} once its reply has been sent. */
void hub_http__metrics_request_done(struct evhttp_request *req, void *arg);

/* The web console (routes_console.c): one file of console/, compiled into
 * hubd by console/embed.cmake (console_assets.c in the build tree); static. */
struct hub_http_console_asset {
    const char *name;           /* file name under console/, e.g. "app.js" */
    const unsigned char *bytes; /* the file's content */
    size_t len;                 /* its length in bytes */
    const char *etag;           /* quoted, from the content's SHA-256 */
};
extern const struct hub_http_console_asset hub_http__console_assets[];
extern const size_t hub_http__console_asset_count;
/* GET / (and /console) answer console/index.html; GET /console/{file} the
 * named file. No api-version and no token: the files are public, and the
 * page signs its own SAS tokens for the service API. Other methods are 405.
 * Returns 1 when the path was the console's (replied), 0 otherwise. */
int hub_http__route_console(struct hub_http_request *r);
/* The Content-Type for a console file name, by its extension; never NULL. Pure. */
const char *hub_http__console_content_type(const char *name);

/* Slowloris guard (deadline.c): a timer per connection for the whole TLS
 * handshake, then for each whole request; asleep while a request is handled.
 * attach: from the bevcb (-1: no deadline, e.g. out of memory). */
struct bufferevent;
int hub_http__deadline_attach(struct event_base *base, struct bufferevent *bev, SSL *ssl,
                              const struct hub_http_env *env);
void hub_http__deadline_request_started(struct evhttp_request *req);
void hub_http__deadline_request_done(struct evhttp_request *req);

/* Answers every waiting long poll at once (drain). */
void hub_http__polls_flush(struct hub_http_server *server);

/* Percent-decodes src[0..len) into out (cap bytes, NUL included); refuses
 * bad escapes, NUL, (if !allow_slash) an encoded '/' and a result that does
 * not fit (cap 0 included: out is then not written). Returns decoded length
 * or -1. Pure. */
int hub_http__pct_decode(const char *src, size_t len, char *out, size_t cap, int allow_slash);
/* Splits a path ("/a/b%20c") into decoded segments. Returns count or -1. Pure. */
int hub_http__split_path(const char *path, char segments[][HUB_HTTP_SEGMENT_MAX], size_t max);

/* ---- pure parsers of the HTTPS transports (transport_parse.c) -------------
 * No evhttp request, no registry, no I/O: fuzz/http_path links the file as
 * is. Any thread. */

/* Prefix of an application-property header or batch property name
 * (case-insensitive; reference §3). */
#define HUB_HTTP_APP_PREFIX "iothub-app-"
/* Application properties per device-to-cloud message; the store bounds
 * their bytes too. */
#define HUB_HTTP_APP_MAX 64

/* The device-transport operation of a request (table in transport_parse.c). */
enum hub_http_dt_op {
    HUB_HTTP_DT_NONE = 0, /* not a device-transport request */
    HUB_HTTP_DT_TELEMETRY,
    HUB_HTTP_DT_RECEIVE,
    HUB_HTTP_DT_COMPLETE, /* DELETE without ?reject */
    HUB_HTTP_DT_REJECT,
    HUB_HTTP_DT_ABANDON,
};

/* Which operation method + the n decoded path segments s are; has_reject:
 * the query holds "reject". *lock_out points into s (the lock token) for
 * COMPLETE, REJECT and ABANDON, else NULL. */
enum hub_http_dt_op hub_http__dt_classify(enum evhttp_cmd_type method,
                                          char (*s)[HUB_HTTP_SEGMENT_MAX], size_t n,
                                          bool has_reject, const char **lock_out);

/* A header name that sets a system property (matched case-insensitively). */
struct hub_http_dt_sys_header {
    const char *name;
    enum hub_sysprop sys;
};
extern const struct hub_http_dt_sys_header hub_http__dt_sys_headers[];
extern const size_t hub_http__dt_sys_header_count;

/* A message's properties being gathered. Zero it before the first add. All
 * pointers are borrowed from the headers or the batch JSON they came from. */
struct hub_http_dt_props {
    const char *sys[HUB_SYSPROP__COUNT];
    struct hub_app_prop app[HUB_HTTP_APP_MAX];
    size_t app_count;
};

/* Adds header (or batch property) name = value: an application property
 * (key = name after the prefix), a system property (the first of a
 * duplicated header wins, as evhttp_find_header would), or nothing (any other
 * header: Authorization, Host, IoTHub-Ack...). name and value are borrowed
 * for p's life. 0, or -1 when p already holds HUB_HTTP_APP_MAX application
 * properties (p is unchanged). */
int hub_http__dt_props_add(struct hub_http_dt_props *p, const char *name, const char *value);
/* Fills *msg from p for device_id (copied), adding connectionDeviceId
 * (pointing into msg) and connectionAuthMethod = auth_method_json (as
 * hub_device_auth_method_json gives it). msg borrows p's pointers, p->app,
 * body and auth_method_json: they must outlive it. */
void hub_http__dt_msg_build(const struct hub_http_dt_props *p, const char *device_id,
                            const char *auth_method_json, const unsigned char *body,
                            size_t body_len, struct hub_telemetry_msg *msg);
/* One batch element, {"body": base64, "properties": {name: string}}: fills
 * *p (pointers into elem, which must outlive it) and *body_new (malloc'd,
 * caller frees; NULL for an empty body) / *body_len. 0, or -1 with *body_new
 * NULL and a text for the client in why ("is not an object"...). */
int hub_http__dt_batch_elem(json_t *elem, struct hub_http_dt_props *p, unsigned char **body_new,
                            size_t *body_len, char *why, size_t why_cap);

/* "2026-01-01T00:00:00.000Z", NUL included, with room to spare. */
#define HUB_HTTP_ISO_MS_SIZE 32
/* ISO-8601 UTC ("2026-01-01T00:00:00Z", a fraction of a second of any
 * length, only its first 3 digits read; "+00:00" for "Z") -> Unix ms;
 * -1 if malformed. A time before 1970 is negative (callers that take only
 * future times refuse it with the malformed ones). */
int64_t hub_http__iso_ms_parse(const char *s);
/* Unix ms (>= 0) -> "2026-01-01T00:00:00.000Z" in out. */
void hub_http__iso_ms_format(int64_t ms, char out[HUB_HTTP_ISO_MS_SIZE]);

/* ---- certificate uploads (json_cert.c) ------------------------------------ */

/* The bytes the pki loaders read from the "certificate" (or "crl") string
 * of a request body, text[0..len) (need not be NUL-terminated): PEM as is
 * when the text (up to a NUL) holds "-----BEGIN", else base64 of DER,
 * possibly wrapped over lines (whitespace is dropped before decoding). Azure
 * accepts both. The caller bounds len first (413).
 * 0 with *out_new (malloc'd, caller frees) and *out_len; HUB_E_INVALID_ARG
 * with the base64 decoder's text in why (possibly empty: nothing to decode)
 * when it is neither; HUB_E_NOMEM. Pure. */
int hub_http__certificate_bytes_decode(const char *text, size_t len, unsigned char **out_new,
                                       size_t *out_len, char *why, size_t why_cap);

#endif
