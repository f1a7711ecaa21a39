/*
 * dpsdev: the device-facing side of the Device Provisioning Service
 * (reference = shared/reference/azure-iot-hub-protocol.md §7): the
 * registration exchange over MQTT (its own TLS listener, default port 8884)
 * and the transport-neutral core the HTTPS transport (src/http
 * routes_dps_device.c) shares.
 *
 * Owns: the DPS username and topic grammar, the register / operation-status
 * exchange (202 assigning + retry-after, then 200 with the registration
 * state, or the DPS error JSON), the table of operations a device may poll,
 * the life of a DPS MQTT connection, and the refusal reasons and their
 * counters and log lines.
 * Knows nothing of: enrollments, attestation policy, the registry. Those
 * decisions are the backend's (struct hub_dpsdev_backend): hubd wires it to
 * the dps layer (hub_dps_match + hub_dps_assign, dpsdev_backend.c); unit
 * tests wire a fake.
 *
 * The exchange (§7), on either transport:
 *
 *   1. MQTT: SUBSCRIBE $dps/registrations/res/#          (HTTPS: nothing)
 *   2. register: MQTT PUBLISH $dps/registrations/PUT/iotdps-register/?$rid={r};
 *      HTTPS PUT /{scope}/registrations/{id}/register; body
 *      {"registrationId":"id"[,"payload":{...}]}
 *   3. answer: MQTT $dps/registrations/res/202/?$rid={r}&retry-after=1;
 *      HTTPS 202 with Retry-After: 1; body {"operationId":"...",
 *      "status":"assigning"}
 *   4. poll: MQTT PUBLISH $dps/registrations/GET/iotdps-get-operationstatus/
 *      ?$rid={r}&operationId={op}; HTTPS GET
 *      /{scope}/registrations/{id}/operations/{op}
 *   5. answer: MQTT $dps/registrations/res/200/?$rid={r}; HTTPS 200; body
 *      {"operationId","status":"assigned"|"failed","registrationState":{...}}
 *
 * The match and the assignment run synchronously when the register request
 * arrives (registry calls are local SQLite), so an attestation refusal is
 * the answer to step 2 (401 + DPS error JSON) and step 4 always finds the
 * operation done. The 202 is still sent because the SDKs expect it.
 *
 * Logging (one line per registration): `event=dps_register transport=
 * registration= peer= outcome=assigned|failed|refused [reason= detail=]
 * [device= hub=]`; `event=dps_conn_closed peer= reason=` for MQTT
 * connections that end otherwise than by DISCONNECT.
 *
 * Thread rules: the service (hub_dpsdev_service_*) is shared by every
 * worker and the HTTPS threads: every function on it may be called from any
 * thread. A server lives on its worker's thread (as hub_device_server).
 */
#ifndef HUB_DPSDEV_H
#define HUB_DPSDEV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "common/err.h"

struct hub_net_worker;

/* ---- reasons ------------------------------------------------------------- */

/*
 * X(NAME, HTTP/topic status, DPS errorCode, text). NAME is the log `reason=`
 * and the counter name. Status 200 rows are registrations that ran but
 * ended `failed` (the registration state carries errorCode/errorMessage);
 * the others are refusals answered with the DPS error JSON
 * {"errorCode":N,"trackingId":"...","message":"...","timestampUtc":"..."}.
 * Codes follow Azure's (401002 unauthorized, 400004 bad request, 404201
 * unknown operation, 500000 internal).
 */
#define HUB_DPSDEV_REASON_MAP(X)                                                                   \
    X(OK, 200, 0, "assigned")                                                                      \
    X(BAD_REQUEST, 400, 400004, "request body is not a registration request")                      \
    X(REGISTRATION_ID_MISMATCH, 400, 400004,                                                       \
      "registrationId differs from the connection's registration id")                              \
    X(SCOPE_UNKNOWN, 401, 401002, "ID scope is not this service's")                                \
    X(NO_CREDENTIAL, 401, 401002, "no certificate and no SAS token presented")                     \
    X(NO_ENROLLMENT, 401, 401002, "no enrollment matches the registration")                        \
    X(CHAIN_INVALID, 401, 401002, "certificate chain does not validate to the enrollment")         \
    X(CN_MISMATCH, 401, 401002, "leaf CN differs from the registration id")                        \
    X(SAS_INVALID, 401, 401002, "SAS token does not verify against the enrollment key")            \
    X(DISABLED, 401, 401002, "enrollment is disabled")                                             \
    X(SIGNER_UNVERIFIED, 401, 401002,                                                              \
      "group signing certificate is not (under) a verified hub CA")                                \
    X(CA_REFERENCE_INVALID, 401, 401002, "group caReferences names no verified hub CA")            \
    X(OPERATION_UNKNOWN, 404, 404201, "no such operation for this registration")                   \
    X(DEVICE_CONFLICT, 200, 409001,                                                                \
      "a device with this id exists with other credentials; this registration did not create it")  \
    X(ASSIGN_FAILED, 200, 500000, "the device could not be created or updated in the registry")    \
    X(SERVER_ERROR, 500, 500000, "the service could not decide (store unavailable)")

enum hub_dpsdev_reason {
#define HUB_DPSDEV_REASON_ENUM(name, status, code, text) HUB_DPSDEV_R_##name,
    HUB_DPSDEV_REASON_MAP(HUB_DPSDEV_REASON_ENUM)
#undef HUB_DPSDEV_REASON_ENUM
        HUB_DPSDEV_R__COUNT
};

/* "NO_ENROLLMENT", ...; "UNKNOWN" out of range. Static. */
const char *hub_dpsdev_reason_name(enum hub_dpsdev_reason r);
/* The status row of the table; 500 out of range. */
int hub_dpsdev_reason_status(enum hub_dpsdev_reason r);
/* The DPS errorCode; 500000 out of range. */
int hub_dpsdev_reason_code(enum hub_dpsdev_reason r);
const char *hub_dpsdev_reason_text(enum hub_dpsdev_reason r);

/* ---- username and topics (pure) -------------------------------------------- */

/* Azure's limits: ID scope "0ne" + 8 hex today; registration ids are at most
 * 128 characters of [a-z0-9.-_] (we accept the device id character set). */
#define HUB_DPSDEV_SCOPE_MAX  64
#define HUB_DPSDEV_REG_ID_MAX 128
#define HUB_DPSDEV_RID_MAX    64
#define HUB_DPSDEV_OP_ID_MAX  64

/* `{idScope}/registrations/{registrationId}/api-version=...&ClientVersion=...`
 * (§7, captured: no '?' before api-version; one is tolerated). */
struct hub_dpsdev_username {
    char id_scope[HUB_DPSDEV_SCOPE_MAX + 1];
    char registration_id[HUB_DPSDEV_REG_ID_MAX + 1];
    char api_version[32]; /* "" when absent */
};

/* 0, or HUB_E_PARSE / HUB_E_TOO_LARGE naming the part that is wrong. */
int hub_dpsdev_username_parse(const char *s, size_t len, struct hub_dpsdev_username *out,
                              struct hub_err *err);

/* Registration ids: 1..128 of [A-Za-z0-9-.:_], the DPS rule widened to the
 * device id set Azure documents for the id a DPS registration creates. */
bool hub_dpsdev_registration_id_valid(const char *s, size_t len);

enum hub_dpsdev_topic_kind {
    HUB_DPSDEV_TOPIC_REGISTER = 1, /* $dps/registrations/PUT/iotdps-register/?$rid= */
    HUB_DPSDEV_TOPIC_STATUS,       /* $dps/registrations/GET/iotdps-get-operationstatus/?... */
};

struct hub_dpsdev_topic {
    enum hub_dpsdev_topic_kind kind;
    char rid[HUB_DPSDEV_RID_MAX + 1];
    char operation_id[HUB_DPSDEV_OP_ID_MAX + 1]; /* STATUS only */
};

/* Parses a device PUBLISH topic. Query keys in any order, unknown ones
 * ignored; $rid is required, operationId is required for STATUS.
 * HUB_E_PARSE (not a DPS request topic, or a missing key), HUB_E_TOO_LARGE. */
int hub_dpsdev_topic_parse(const char *topic, size_t len, struct hub_dpsdev_topic *out,
                           struct hub_err *err);

/* `$dps/registrations/res/{status}/?$rid={rid}[&retry-after={s}]`;
 * retry_after_s < 0 leaves it out. Returns the length or HUB_E_TOO_LARGE. */
int hub_dpsdev_response_topic(char *out, size_t cap, int status, const char *rid,
                              int retry_after_s);

/* ---- the backend: attestation and assignment --------------------------------- */

/* What the device presented. Borrowed for the call. */
struct hub_dpsdev_claim {
    const char *transport;       /* "mqtt" or "https", for the backend's logs */
    const char *id_scope;        /* checked against the service's already */
    const char *registration_id; /* syntax-checked */
    X509 *leaf;                  /* TLS client certificate, or NULL */
    STACK_OF(X509) * chain;      /* other presented certificates, or NULL */
    const char *sas_token;       /* MQTT password / Authorization header, or NULL */
    size_t sas_token_len;
    json_t *payload; /* the request's "payload" member, or NULL (borrowed) */
    int64_t now;     /* Unix seconds */
};

/* What the backend decided. */
struct hub_dpsdev_verdict {
    /* OK: assigned. ASSIGN_FAILED, DEVICE_CONFLICT: the registration ran but
     * failed (status "failed"). Any other: refused with that reason. */
    enum hub_dpsdev_reason reason;
    char detail[256]; /* for the log; never sent to the device */
    /* OK and ASSIGN_FAILED: the registrationState object (§7), a new
     * reference the service takes. NULL otherwise. */
    json_t *registration_state;
};

struct hub_dpsdev_backend {
    /* Matches the most specific enrollment, checks the credential against it
     * and, when accepted, creates or updates the device and records the
     * registration. Fills *verdict (zeroed by the caller). Any thread; the
     * caller blocks on it. */
    void (*register_device)(void *arg, const struct hub_dpsdev_claim *claim,
                            struct hub_dpsdev_verdict *verdict);
    void *arg;
};

struct hub_dps;

/* The backend hubd uses: the dps layer (hub_dps_match_x509 when a
 * certificate was presented, else hub_dps_match_symmetric with the SAS
 * token, then hub_dps_assign; the registration state is
 * hub_dps_registration_json_new's). `dps` is borrowed and must outlive
 * every server and the service. */
struct hub_dpsdev_backend hub_dpsdev_backend_dps(struct hub_dps *dps);

/* ---- the service (shared by every transport and worker) ---------------------- */

struct hub_dpsdev_env {
    const char *id_scope;              /* copied */
    struct hub_dpsdev_backend backend; /* copied */
    size_t max_packet_bytes;           /* 0 = 64 KiB (a register body is small) */
    int handshake_timeout_ms;          /* TLS + CONNECT; 0 = 10 s */
    int idle_max_ms; /* MQTT: the most silence after CONNECT, whatever the keep-alive; 0 = 60 s */
    int session_max_ms;      /* MQTT: a connection's whole life after CONNECT; 0 = 300 s */
    int operation_ttl_s;     /* how long an answer may be polled; 0 = 300 */
    size_t max_operations;   /* oldest dropped beyond; 0 = 4096 */
    int retry_after_s;       /* in 202 answers; 0 = 1 s */
    int64_t (*now_ms)(void); /* NULL = the real clock; any thread */
};

struct hub_dpsdev_service;

/* *out_new: hub_dpsdev_service_free. HUB_E_INVALID_ARG, HUB_E_NOMEM. */
int hub_dpsdev_service_new(const struct hub_dpsdev_env *env, struct hub_dpsdev_service **out_new,
                           struct hub_err *err);
/* After every server drained. NULL ok. */
void hub_dpsdev_service_free(struct hub_dpsdev_service *svc);

const char *hub_dpsdev_service_id_scope(const struct hub_dpsdev_service *svc);
int hub_dpsdev_service_retry_after(const struct hub_dpsdev_service *svc);

/* Registrations refused or failed with `reason` (OK: assigned) since start. */
uint64_t hub_dpsdev_reason_count(const struct hub_dpsdev_service *svc,
                                 enum hub_dpsdev_reason reason);

/* An answer: HTTP/topic status and a JSON body (a new string, caller frees
 * with free()). */
struct hub_dpsdev_answer {
    int status;
    char *body;
    enum hub_dpsdev_reason reason;
};

/*
 * Step 2 of the exchange, for either transport. `body` is the request body
 * (borrowed); claim->payload is ignored and taken from the body; claim's
 * other fields are the transport's. Checks the scope, the body and that its
 * registrationId equals claim->registration_id, asks the backend, records
 * the operation and logs the `dps_register` line (peer may be NULL). On
 * acceptance or a failed assignment the answer is 202 {"operationId",
 * "status":"assigning"}; on refusal the DPS error JSON. 0, or HUB_E_NOMEM
 * (no answer).
 */
int hub_dpsdev_service_register(struct hub_dpsdev_service *svc,
                                const struct hub_dpsdev_claim *claim, const void *body,
                                size_t body_len, const char *peer, struct hub_dpsdev_answer *out,
                                struct hub_err *err);

/* Step 4: the operation's current answer (200 with the registration state,
 * or 404 OPERATION_UNKNOWN if the id is unknown, expired, or belongs to
 * another registration / scope). 0 or HUB_E_NOMEM. */
int hub_dpsdev_service_status(struct hub_dpsdev_service *svc, const char *id_scope,
                              const char *registration_id, const char *operation_id,
                              struct hub_dpsdev_answer *out, struct hub_err *err);

/* ---- the MQTT listener ----------------------------------------------------- */

struct hub_dpsdev_server;

/*
 * Serves DPS over MQTT/TLS on listen_fd (ownership passes, also on failure)
 * on worker's thread. ssl_ctx is borrowed (hub_net_tls_server_ctx_new with
 * request_client_cert = 1) and must outlive the server; an admission set on
 * it (hub_net_admission_ctx_set) is honoured. Call before the pool starts or
 * on the worker's thread.
 */
int hub_dpsdev_server_new(struct hub_dpsdev_service *svc, struct hub_net_worker *worker,
                          SSL_CTX *ssl_ctx, int listen_fd, struct hub_dpsdev_server **out_new,
                          struct hub_err *err);

/* Stops accepting, closes every connection, frees the server, then calls
 * done(arg) (may be NULL). On the server's worker thread (or the main
 * thread before the pool started). */
void hub_dpsdev_server_drain(struct hub_dpsdev_server *server, void (*done)(void *arg), void *arg);

/* Open MQTT connections on this server. Its worker's thread. */
size_t hub_dpsdev_server_conn_count(const struct hub_dpsdev_server *server);

#endif
