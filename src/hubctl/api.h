/*
 * hubctl's client of the hub's service REST API (reference §4 and §5): signs
 * each call with a SAS token from the service connection string, sends JSON,
 * parses JSON back, and turns the hub's error bodies into one-line messages.
 *
 * api.c does the I/O (on https_client); api_format.c holds the pure helpers
 * (URL path encoding, error-body formatting, request bodies, thumbprint
 * syntax) so tests/unit/hubctl/test_https_client.c can #include it.
 *
 * Ownership: arguments are borrowed for the call. json_t results are new
 * references the caller json_decref()s. Thread rules: none (single-threaded).
 */
#ifndef HUB_HUBCTL_API_H
#define HUB_HUBCTL_API_H

#include <stddef.h>

#include <jansson.h>

#include "auth/auth.h"
#include "common/err.h"
#include "hubctl/https_client.h"
#include "hubctl/hubctl.h"

/* The service API version sent on every call (reference §4 "General"). */
#define HUBCTL_API_VERSION "2021-04-12"
/* The provisioning service API version (reference §7, azure-iot-provisioning-service). */
#define HUBCTL_DPS_API_VERSION "2021-10-01"
/* Lifetime of each call's SAS token, as the Node service SDK (one hour). */
#define HUBCTL_API_TOKEN_TTL_S 3600
/* Longest error message shown to the user (fits in hub_err.msg). */
#define HUBCTL_API_ERRMSG_MAX 240

struct hubctl_api {
    struct hub_auth_connstr cs; /* the service connection string, parsed */
    struct hubctl_https_target target;
    int json;                /* --json: commands print the API's JSON */
    const char *api_version; /* sent as ?api-version=; static string */
};

/* One API answer. status is 0 if no HTTP response arrived (I/O error). */
struct hubctl_api_response {
    int status;
    json_t *json;   /* parsed body, NULL if the body was empty */
    char etag[256]; /* ETag response header, "" if absent */
    /* x-ms-continuation response header (DPS query paging), "" if absent. */
    char continuation[1024];
};

void hubctl_api_response_free(struct hubctl_api_response *res); /* NULL ok; zeroes */

/*
 * Sets up *api from the global options: parses the connection string (must be
 * a service string: HostName;SharedAccessKeyName;SharedAccessKey), fills the
 * HTTPS target (HostName, --host, --port, --cafile). HUB_E_INVALID_ARG with a
 * message when the connection string is missing or not a service one;
 * HUB_E_PARSE / HUB_E_TOO_LARGE from hub_auth_connstr_parse.
 */
int hubctl_api_open(struct hubctl_api *api, const struct hubctl_globals *g, struct hub_err *err);

/*
 * The same for the provisioning service: g->dps_connection_string
 * (--dps-connection-string / HUB_DPS_CONNECTION_STRING, a service policy
 * string such as provisioningserviceowner's), api-version
 * HUBCTL_DPS_API_VERSION. The DPS shares the hub's HTTPS port and CA.
 */
int hubctl_api_open_dps(struct hubctl_api *api, const struct hubctl_globals *g,
                        struct hub_err *err);

/*
 * Calls `method` on `path` (e.g. "/devices/dev%201"; "?api-version=..." is
 * appended), with If-Match `if_match` when non-NULL (sent verbatim: pass
 * "\"*\"" for a quoted asterisk) and `body` (borrowed, NULL for none) as
 * compact JSON. Fills *res (zeroed first; free it also on failure).
 * Returns 0 for a 2xx answer. Otherwise a negative code with err->msg ready
 * to print: for a non-2xx answer (res->status set) HUB_E_UNAUTHORIZED (401),
 * HUB_E_FORBIDDEN (403), HUB_E_NOT_FOUND (404), HUB_E_EXISTS (409),
 * HUB_E_ETAG_MISMATCH (412), HUB_E_BUSY (429), HUB_E_INTERNAL (others) and a
 * message "412 PreconditionFailed: text"; without an answer (res->status 0)
 * whatever hubctl_https_request returned; HUB_E_PARSE if a 2xx body is not
 * JSON.
 */
int hubctl_api_call(const struct hubctl_api *api, const char *method, const char *path,
                    const char *if_match, json_t *body, struct hubctl_api_response *res,
                    struct hub_err *err);

/*
 * A request with a raw body, for the endpoints that do not take JSON (a C2D
 * message body is opaque bytes, its properties travel as headers). Fields
 * the caller does not need stay zero.
 */
struct hubctl_api_request {
    const char *method;   /* "GET", "POST", ... */
    const char *path;     /* as for hubctl_api_call; may already hold a query */
    const char *if_match; /* If-Match value, sent verbatim; NULL for none */
    const void *body;     /* body_len bytes; NULL when body_len is 0 */
    size_t body_len;
    const char *content_type;   /* NULL: "application/json; charset=utf-8" */
    const char *const *headers; /* extra "Name: value" lines, NULL-terminated; NULL for none */
    int io_timeout_ms;          /* whole exchange; <= 0: the target's (a long poll needs more) */
    size_t json_flags;          /* extra json_loadb flags for the answer: JSON_ALLOW_NUL when
                                   strings may hold U+0000 (telemetry bodies) */
};

/* Most extra headers one hubctl_api_call_raw may carry (64 iothub-app-* + system ones). */
#define HUBCTL_API_EXTRA_HEADERS_MAX 80

/*
 * hubctl_api_call with a raw body: sends req->body as is with
 * req->content_type, the standard headers of every call, and req->headers.
 * Answers as hubctl_api_call does (2xx body parsed as JSON, ETag copied, the
 * same error codes and messages); HUB_E_INVALID_ARG when there are more than
 * HUBCTL_API_EXTRA_HEADERS_MAX extra headers or one holds CR/LF/control bytes
 * (no header injection). Fills *res (zeroed first; free it also on failure).
 */
int hubctl_api_call_raw(const struct hubctl_api *api, const struct hubctl_api_request *req,
                        struct hubctl_api_response *res, struct hub_err *err);

/* Prints "hubctl: <err->msg>" on stderr and returns the exit status:
 * HUBCTL_FAIL when the hub answered (res->status != 0), HUBCTL_USAGE otherwise. */
int hubctl_api_fail(const struct hubctl_api_response *res, const struct hub_err *err);

/* Prints json indented by 2 spaces, keys in the API's order, and a newline, to stdout. */
void hubctl_api_json_print(const json_t *json);

/* Prints "label:   value" (value sanitised; nothing when value is NULL) to stdout. */
void hubctl_api_field_print(const char *label, const char *value);

/* Prints json as the API's JSON (--json) or through `human`; nothing for
 * NULL json. */
void hubctl_api_output(const struct hubctl_api *api, const json_t *json,
                       void (*human)(const json_t *));

/* GET `path` and print the answer (hubctl_api_output). The exit status. */
int hubctl_api_show(const struct hubctl_api *api, const char *path, void (*human)(const json_t *));

/* DELETE `path` (If-Match `if_match`, NULL for none) and say so: the
 * API's JSON with --json, else "deleted [what ]id". The exit status. */
int hubctl_api_delete(const struct hubctl_api *api, const char *path, const char *if_match,
                      const char *what, const char *id);

/* The etag to send as If-Match after a GET: the body's "etag", else the ETag
 * header, else "*". */
void hubctl_api_etag_of(const struct hubctl_api_response *res, char *out, size_t cap);

/* The string at obj.k1[.k2[.k3]] (k2, k3 may be NULL), or NULL. */
const char *hubctl_api_str_at(const json_t *obj, const char *k1, const char *k2, const char *k3);

/* One certificate file (PEM or DER) as normalised PEM for an upload body
 * (caller frees), or NULL after printing why on stderr; a file holding a
 * private key is refused here, before anything is sent. */
char *hubctl_api_cert_pem_load(const char *path);

/* ---- pure helpers (api_format.c) ----------------------------------------- */

/*
 * Percent-encodes s as JavaScript's encodeURIComponent does (what the Node SDK
 * applies to device ids): A-Z a-z 0-9 - _ . ! ~ * ' ( ) stay, every other byte
 * becomes %XX (uppercase). Writes a NUL-terminated string into out.
 * HUB_E_TOO_LARGE if it does not fit in cap.
 */
int hubctl_api_path_encode(const char *s, char *out, size_t cap, struct hub_err *err);

/*
 * One-line message for a non-2xx answer: "{status} {code}: {text}".
 * code: the "ErrorCode:X;" prefix of Azure's data-plane
 * {"Message":"ErrorCode:X;text"}, else the iothub-errorcode header, else the
 * "code" of the resource-provider shape {"code","message"} (also nested in
 * {"error":{...}}), else the reason phrase. text: the rest of Message, or
 * message, or the body's first line when it is not JSON. Control bytes are
 * replaced by '?', so a hostile server cannot drive the terminal. Always
 * NUL-terminates out (cap > 0), truncating.
 */
void hubctl_api_error_format(int status, const char *reason, const char *errcode_header,
                             const char *body, size_t body_len, char *out, size_t cap);

/* Copies s into out with control bytes replaced by '?' (for printing what the
 * server sent). NULL prints as "". Truncates; out always NUL-terminated. */
void hubctl_api_text_sanitize(const char *s, char *out, size_t cap);

enum hubctl_device_auth {
    HUBCTL_DEVICE_AUTH_CA,         /* "certificateAuthority" */
    HUBCTL_DEVICE_AUTH_SELFSIGNED, /* "selfSigned" with x509Thumbprint */
    HUBCTL_DEVICE_AUTH_SAS,        /* "sas" with empty keys: the hub generates them */
};

/* "ca" | "selfsigned" | "sas" (case-insensitive); HUB_E_INVALID_ARG otherwise. */
int hubctl_device_auth_parse(const char *s, enum hubctl_device_auth *out, struct hub_err *err);

/*
 * Normalises a thumbprint: hex digits with optional ':' separators, 40 (SHA-1)
 * or 64 (SHA-256) digits, written uppercase without separators into out.
 * HUB_E_INVALID_ARG otherwise.
 */
int hubctl_api_thumbprint_normalize(const char *in, char out[65], struct hub_err *err);

/*
 * The device-create body the Azure SDK sends (reference §4 "Create"):
 * {"deviceId":ID,"status":"enabled","authentication":{"type":...}} plus
 * x509Thumbprint {primaryThumbprint, secondaryThumbprint (null if NULL)} for
 * selfSigned, or symmetricKey {"primaryKey":"","secondaryKey":""} for sas.
 * Thumbprints must already be normalised; selfSigned needs `primary`.
 * NULL on bad input or out of memory.
 */
json_t *hubctl_api_device_body_new(const char *device_id, enum hubctl_device_auth auth,
                                   const char *primary, const char *secondary);

/* {"properties":{"certificate":PEM,"isVerified":bool}} (reference §5). NULL on OOM. */
json_t *hubctl_api_ca_body_new(const char *pem, int verified);

/* 1 if name matches ^[A-Za-z0-9._-]{1,64}$ (CA certificate names, §5). */
int hubctl_api_ca_name_valid(const char *name);

#endif
