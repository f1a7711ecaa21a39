/*
 * device: the MQTT 3.1.1-over-TLS device endpoint (reference =
 * shared/reference/azure-iot-hub-protocol.md §1, §2, §6).
 *
 * Owns: the life of a device connection (TLS handshake deadline, CONNECT
 * deadline, keep-alive at 1.5x the client's value, bounded reads, orderly
 * close with one logged reason), the authentication decision on CONNECT
 * (client id / username / credential against the registry record and the
 * trust snapshot), "one live connection per device" (the directory), the
 * in-memory MQTT session table (C2D subscription across clean_session=0
 * reconnects), telemetry ingestion (PUBACK only once the msg layer made the
 * message durable), C2D delivery from the msg layer's per-device queue, and
 * kicking connections whose device or CA changed in the registry.
 * Knows nothing of: SQL, HTTP, the codecs' internals (mqtt and iothub do
 * the bytes and topics), how the msg layer commits.
 *
 * Objects:
 *   - one `struct hub_device_endpoint` per hub: shared by every worker; holds
 *     the directory, the session table, the refusal counters, and registers
 *     itself as the registry's change observer;
 *   - one `struct hub_device_server` per worker thread: its SO_REUSEPORT
 *     listener and the connections accepted on it; every connection lives on
 *     that worker's thread for its whole life.
 *
 * Thread rules: hub_device_endpoint_new / _free on the main thread (free only
 * after every server has drained and the worker pool has been joined);
 * hub_device_server_new before the pool starts (or on the worker's thread);
 * hub_device_server_drain on the server's worker thread (schedule it with
 * hub_net_worker_call). hub_device_c2d_notify, hub_device_kick,
 * hub_device_reason_count and the registry observer may be called from any
 * thread: they hand work to the connection's worker with hub_net_worker_call
 * while holding a reference on the connection, so a connection that closed
 * meanwhile is simply skipped.
 *
 * Sessions are in memory only: a hub restart forgets them (the client gets
 * session-present 0 and re-subscribes; the C2D messages themselves are
 * durable in the msg layer and are redelivered). A session remembers the
 * device's subscriptions (C2D, twin responses, desired-property
 * notifications, direct methods) and the desired $version it last told the
 * device about, so a clean_session=0 reconnect gets the desired changes it
 * missed. Deleting a device from the registry forgets its session too.
 *
 * Credentials end connections: a SAS connection is closed at its token's
 * se (SAS_EXPIRED), an X.509 one when its certificate (selfSigned: the
 * leaf; certificateAuthority: the validated path, re-checked at the
 * earliest notAfter it presented and at least hourly) expires
 * (CERT_EXPIRED).
 *
 * Twins over MQTT (reference §2 "Twin"; twin.c): GET and PATCH reported are
 * answered on $iothub/twin/res/{status}/?$rid=[&$version=] (synchronous
 * registry calls on the worker), desired changes are pushed on
 * $iothub/twin/PATCH/properties/desired/?$version= to subscribed devices.
 * Direct methods (reference §2 "Direct methods", §4; methods.c):
 * hub_device_method_invoke below.
 *
 * Logging (one line per event): `event=connected device= peer= auth=`,
 * `event=connect_refused device= peer= reason= detail=` (with CONNACK
 * code), `event=disconnected device= peer= reason= [detail=]`, and
 * `event=conn_closed peer= reason=` for connections that never
 * authenticated, `event=method_done device= method= [rid=] outcome=
 * [status=]` once per direct-method call, `event=twin_request_refused
 * device= reason= detail=` for a refused twin GET/PATCH. Every reason below has a counter
 * (hub_device_reason_count).
 */
#ifndef HUB_DEVICE_H
#define HUB_DEVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "auth/auth.h"
#include "common/err.h"
#include "mqtt/mqtt.h"
#include "store/store.h"

struct hub_net_worker;
struct hub_net_pool;
struct hub_registry;
struct hub_registry_trust;
struct hub_msg_telemetry_log;
struct hub_msg_c2d;

/* ---- reasons ------------------------------------------------------------ */

/*
 * X(NAME, CONNACK code or -1, text). The NAME is the log `reason=` value and
 * the counter's name. Rows with a CONNACK code are CONNECT refusals (the
 * code is what the client receives before the close); the others are why an
 * established (or never authenticated) connection closed.
 */
#define HUB_DEVICE_REASON_MAP(X)                                                                   \
    X(OK, 0, "accepted")                                                                           \
    /* CONNECT refusals */                                                                         \
    X(PROTOCOL_LEVEL, 1, "MQTT protocol level is not 4 (3.1.1)")                                   \
    X(BAD_CLIENT_ID, 2, "client id is empty or not a valid device id")                             \
    X(MODULE_UNSUPPORTED, 2, "module identities are not supported yet")                            \
    X(USERNAME_MISSING, 4, "CONNECT has no username")                                              \
    X(USERNAME_MALFORMED, 4, "username is malformed")                                              \
    X(USERNAME_MISMATCH, 4, "username device differs from the client id")                          \
    X(DEVICE_UNKNOWN, 5, "no such device in the registry")                                         \
    X(DEVICE_DISABLED, 3, "device is disabled")                                                    \
    X(AUTH_TYPE_NONE, 5, "device has authentication type none")                                    \
    X(NO_CREDENTIAL, 5, "no credential presented")                                                 \
    X(WRONG_CREDENTIAL, 5, "credential kind does not match the device's authentication type")      \
    X(CHAIN_UNTRUSTED, 5, "no path to a verified CA")                                              \
    X(CERT_EXPIRED, 5, "certificate expired")                                                      \
    X(CERT_NOT_YET_VALID, 5, "certificate not yet valid")                                          \
    X(CHAIN_SIGNATURE, 5, "certificate signature does not verify")                                 \
    X(CHAIN_TOO_LONG, 5, "certificate chain too long")                                             \
    X(CHAIN_NOT_CA, 5, "an issuer in the chain is not a CA")                                       \
    X(CHAIN_PATHLEN, 5, "path length constraint exceeded")                                         \
    X(CHAIN_KEY_USAGE, 5, "key usage does not allow this use")                                     \
    X(CHAIN_EKU, 5, "leaf is not for client authentication")                                       \
    X(CHAIN_NAME_CONSTRAINTS, 5, "name constraints violated")                                      \
    X(CHAIN_CRITICAL_EXT, 5, "unknown critical extension")                                         \
    X(CHAIN_WEAK_CRYPTO, 5, "weak signature algorithm or key")                                     \
    X(CHAIN_PROFILE, 5, "certificate violates the X.509 profile")                                  \
    X(CHAIN_LEAF_IS_CA, 5, "leaf certificate is a CA")                                             \
    X(CHAIN_REVOKED, 5, "a certificate in the chain is revoked by its CA's CRL")                   \
    X(CHAIN_INVALID, 5, "certificate chain refused for another reason")                            \
    X(CN_MISMATCH, 5, "leaf CN differs from the device id")                                        \
    X(THUMBPRINT_MISMATCH, 5, "certificate thumbprint matches neither registered one")             \
    X(SAS_MALFORMED, 4, "password is not a SAS token")                                             \
    X(SAS_UNKNOWN_POLICY, 5, "SAS token names an unknown policy")                                  \
    X(SAS_NO_KEY, 5, "device has no symmetric key")                                                \
    X(SAS_BAD_SIGNATURE, 5, "SAS signature does not verify")                                       \
    X(SAS_EXPIRED, 5, "SAS token expired")                                                         \
    X(SAS_TOO_LONG_LIVED, 5, "SAS token lives too long")                                           \
    X(SAS_WRONG_SCOPE, 5, "SAS token scope is not this device")                                    \
    X(SAS_NO_PERMISSION, 5, "SAS policy lacks DeviceConnect")                                      \
    X(SERVER_ERROR, 3, "the hub could not decide (store or trust snapshot unavailable)")           \
    /* closes */                                                                                   \
    X(CLIENT_DISCONNECT, -1, "client sent DISCONNECT")                                             \
    X(PEER_CLOSED, -1, "peer closed the connection without DISCONNECT")                            \
    X(TLS_ERROR, -1, "TLS or socket error")                                                        \
    X(TLS_HANDSHAKE_TIMEOUT, -1, "TLS handshake did not finish in time")                           \
    X(CONNECT_TIMEOUT, -1, "no CONNECT in time after the handshake")                               \
    X(KEEPALIVE_TIMEOUT, -1, "nothing received for 1.5x the keep-alive")                           \
    X(MALFORMED_PACKET, -1, "malformed MQTT packet")                                               \
    X(PACKET_TOO_LARGE, -1, "MQTT packet over the size limit")                                     \
    X(METHOD_RESPONSE_TOO_LARGE, -1, "direct-method answer over 128 KiB")                          \
    X(PROTOCOL_VIOLATION, -1, "packet not allowed in this state")                                  \
    X(QOS2_UNSUPPORTED, -1, "QoS 2 PUBLISH (IoT Hub closes on it)")                                \
    X(TOPIC_UNKNOWN, -1, "PUBLISH to a topic IoT Hub does not accept")                             \
    X(TOPIC_UNSUPPORTED, -1, "PUBLISH to a topic hubd recognises but does not serve (unused)")     \
    X(TOPIC_FORBIDDEN, -1, "PUBLISH to another identity's topic")                                  \
    X(PROPERTIES_MALFORMED, -1, "telemetry property bag is malformed or too large")                \
    X(SUBSCRIBE_UNSUPPORTED, -1, "SUBSCRIBE to an unsupported filter")                             \
    X(SUBSCRIBE_FORBIDDEN, -1, "SUBSCRIBE to another device's filter")                             \
    X(DUPLICATE_CONNECTION, -1, "a new connection for the same device replaced this one")          \
    X(DEVICE_DELETED, -1, "device deleted from the registry")                                      \
    X(CA_REVOKED, -1, "chain no longer validates against the verified CAs")                        \
    X(COMMIT_FAILED, -1, "telemetry could not be made durable")                                    \
    X(C2D_FAILED, -1, "C2D queue error")                                                           \
    X(SERVER_SHUTDOWN, -1, "hub is shutting down")                                                 \
    X(INTERNAL, -1, "internal error (out of memory)")

enum hub_device_reason {
#define HUB_DEVICE_REASON_ENUM(name, connack, text) HUB_DEVICE_R_##name,
    HUB_DEVICE_REASON_MAP(HUB_DEVICE_REASON_ENUM)
#undef HUB_DEVICE_REASON_ENUM
        HUB_DEVICE_R__COUNT
};

/* "CHAIN_UNTRUSTED", ...; "UNKNOWN" out of range. Static. */
const char *hub_device_reason_name(enum hub_device_reason r);
/* The CONNACK code of a refusal reason (0 for OK), -1 for close reasons. */
int hub_device_reason_connack(enum hub_device_reason r);

/* ---- the authentication decision (pure, no I/O) -------------------------- */

enum hub_device_auth_method {
    HUB_DEVICE_AUTH_NONE = 0,
    HUB_DEVICE_AUTH_X509_CA,     /* log: x509ca */
    HUB_DEVICE_AUTH_SELF_SIGNED, /* log: selfSigned */
    HUB_DEVICE_AUTH_SAS,         /* log: sas */
};

/* "x509ca", "selfSigned", "sas", "none". Static. */
const char *hub_device_auth_method_name(enum hub_device_auth_method m);
/* Azure's connectionAuthMethod system property (the JSON Event Hubs consumers
 * see), for every transport; NULL for HUB_DEVICE_AUTH_NONE. Static. */
const char *hub_device_auth_method_json(enum hub_device_auth_method m);

#define HUB_DEVICE_DETAIL_MAX 256

struct hub_device_authn_result {
    enum hub_device_reason reason;      /* HUB_DEVICE_R_OK when accepted */
    uint8_t connack;                    /* CONNACK code to send (0 when accepted) */
    char detail[HUB_DEVICE_DETAIL_MAX]; /* the validator's message; "" when accepted */
    enum hub_device_auth_method method; /* when accepted */
    char device_id[HUB_DEVICE_ID_SIZE]; /* the claimed device id, once known ("" before) */
    int64_t sas_expiry;                 /* SAS: the token's se (the connection ends then) */
};

/*
 * Step 1, before the registry lookup: the claimed identity. Checks the
 * client id (non-empty, registry id syntax; "dev/module" is refused as
 * MODULE_UNSUPPORTED), that a username exists and parses (lenient,
 * hub_iothub_username_parse) and that its device segment equals the client
 * id. Fills res (res->device_id once the client id is valid). Returns 0 when
 * the caller should look the device up, or -1 with res filled as a refusal.
 */
int hub_device_authn_identify(const struct hub_mqtt_connect *connect,
                              struct hub_device_authn_result *res);

/* Everything step 2 decides from. Every pointer is borrowed for the call. */
struct hub_device_authn_in {
    const struct hub_mqtt_connect *connect;
    /* TLS peer: leaf (NULL when the client sent no certificate) and the other
     * certificates it presented (may be NULL; may contain the leaf again:
     * it is ignored). */
    X509 *leaf;
    STACK_OF(X509) * chain;
    /* hub_registry_device_auth_lookup's result for res->device_id: 0,
     * HUB_E_NOT_FOUND, HUB_E_FORBIDDEN (disabled; `device` is filled) or
     * another code (store trouble). */
    int lookup_rc;
    const struct hub_device *device; /* NULL when lookup_rc is NOT_FOUND or a store error */
    /* Required for certificateAuthority devices; may be NULL otherwise. */
    const struct hub_registry_trust *trust;
    const struct hub_auth_verify_cfg *sas_cfg;  /* accepted host names */
    const struct hub_auth_policy_set *policies; /* may be NULL */
    int64_t now;                                /* Unix seconds */
};

/*
 * Step 2: accept or refuse. The credential is checked before the device's
 * status, so only a client that proves the identity learns that it is
 * disabled (others get CONNACK 5). Per auth type:
 *   certificateAuthority: no password; leaf + chain validate against the
 *     trust snapshot (hub_pki_chain_verify, EKU clientAuth, default depth, at
 *     now) and the leaf CN equals the device id;
 *   selfSigned: no password; the leaf's SHA-1 or SHA-256 thumbprint is a
 *     registered one, and the leaf is within its validity at now;
 *   sas: the password is a device SAS token (hub_auth_device_verify).
 * Returns 0 (accepted, res->method set) or -1 (res is the refusal).
 */
int hub_device_authn_decide(const struct hub_device_authn_in *in,
                            struct hub_device_authn_result *res);

/*
 * Re-validates a live certificateAuthority connection's stored leaf + chain
 * against a new trust snapshot (after a CA change). 0 if it still
 * validates; otherwise -1 with *reason (CA_REVOKED when no path remains,
 * CHAIN_REVOKED when a CRL now lists a certificate of the chain, else the
 * validator's reason) and detail filled.
 */
int hub_device_authn_recheck(X509 *leaf, STACK_OF(X509) * chain,
                             const struct hub_registry_trust *trust, int64_t now,
                             enum hub_device_reason *reason, char detail[HUB_DEVICE_DETAIL_MAX]);

/* ---- the endpoint ------------------------------------------------------- */

/* What every connection may use. Borrowed pointers: they must outlive the
 * endpoint. Copied by hub_device_endpoint_new; immutable afterwards. */
struct hub_device_env {
    struct hub_registry *registry;
    struct hub_msg_telemetry_log *telemetry; /* where device-to-cloud messages go */
    struct hub_msg_c2d *c2d;                 /* per-device cloud-to-device queues */
    const struct hub_auth_policy_set *policies;
    const char *const *hostnames; /* host names a SAS token's sr may carry */
    size_t hostname_count;
    size_t max_packet_bytes;      /* config mqtt_max_packet_bytes; 0 = 256 KiB + 8 KiB */
    int tls_handshake_timeout_ms; /* 0 = 10 s */
    int connect_timeout_ms;       /* TLS done -> CONNECT; 0 = 10 s */
    /* Un-durable telemetry per connection before reading pauses; 0 = 64. */
    size_t max_inflight_telemetry;
    /* C2D messages in flight (unacked) per connection, 1..4; 0 = 4. */
    size_t c2d_window;
    /* Minimum seconds between lastActivityTime writes per connection; 0 = 10. */
    int activity_interval_s;
    /* Clock in Unix milliseconds; NULL = the real one. Any thread. */
    int64_t (*now_ms)(void);
};

struct hub_device_endpoint;

/*
 * Creates the endpoint for `pool` (borrowed; its worker count fixes the
 * number of servers) and registers it as `env->registry`'s change observer.
 * *out_new: hub_device_endpoint_free.
 */
int hub_device_endpoint_new(const struct hub_device_env *env, struct hub_net_pool *pool,
                            struct hub_device_endpoint **out_new, struct hub_err *err);

/* Unregisters the observer and frees. Call after every server drained (or
 * was never created) and the pool was joined. NULL ok. */
void hub_device_endpoint_free(struct hub_device_endpoint *ep);

/* Connections refused or closed with `reason` since the endpoint started. */
uint64_t hub_device_reason_count(const struct hub_device_endpoint *ep,
                                 enum hub_device_reason reason);

/* Live (authenticated) connections right now, all workers. */
size_t hub_device_live_count(struct hub_device_endpoint *ep);

/*
 * A C2D message was enqueued for device_id: if the device is connected and
 * subscribed, its worker fetches and sends what its window allows. Cheap
 * and harmless when the device is not connected. Any thread.
 */
void hub_device_c2d_notify(struct hub_device_endpoint *ep, const char *device_id);

/* Closes device_id's live connection (if any) with `reason`. Any thread. */
void hub_device_kick(struct hub_device_endpoint *ep, const char *device_id,
                     enum hub_device_reason reason);

/* ---- direct methods (reference §2 "Direct methods", §4 "Direct method") -- */

/* Azure's payload limit for a method request and for the device's answer. */
#define HUB_DEVICE_METHOD_PAYLOAD_MAX (128 * 1024)
/* Method names: Azure documents no limit; 128 bytes matches the id limits
 * and keeps the request topic small. */
#define HUB_DEVICE_METHOD_NAME_MAX 128

enum hub_device_method_outcome {
    HUB_DEVICE_METHOD_OK = 0,       /* the device answered: status + payload */
    HUB_DEVICE_METHOD_NOT_ONLINE,   /* not connected and subscribed to $iothub/methods/POST/#
                                     * within the connect timeout (Azure 404 DeviceNotOnline) */
    HUB_DEVICE_METHOD_TIMEOUT,      /* no answer within the response timeout (Azure 504) */
    HUB_DEVICE_METHOD_DISCONNECTED, /* the device's connection closed before it answered */
    HUB_DEVICE_METHOD_SHUTDOWN,     /* the hub is shutting down (or out of memory) */
    /* the device answered with more than HUB_DEVICE_METHOD_PAYLOAD_MAX bytes
     * (its connection is closed: METHOD_RESPONSE_TOO_LARGE) */
    HUB_DEVICE_METHOD_RESPONSE_TOO_LARGE,
};

/* "OK", "DEVICE_NOT_ONLINE", "TIMEOUT", "DISCONNECTED", "SHUTDOWN",
 * "RESPONSE_TOO_LARGE". Static. */
const char *hub_device_method_outcome_name(enum hub_device_method_outcome o);

struct hub_device_method_result {
    enum hub_device_method_outcome outcome;
    int status;             /* OK: the status the device put in its response topic */
    const uint8_t *payload; /* OK: the device's response body (borrowed for the callback;
                             * NULL when empty). Not validated: the device's bytes. */
    size_t payload_len;
};

/* Called exactly once per successful hub_device_method_invoke, on an
 * unspecified thread (a device worker, or the invoking thread itself before
 * invoke returns), so it must only hand the result off: copy what it needs
 * and schedule the rest on its own loop (the http layer uses
 * event_base_once). `res` is borrowed for the call. */
typedef void (*hub_device_method_done_fn)(void *arg, const struct hub_device_method_result *res);

/*
 * Invokes direct method `method_name` on device_id (reference §2): the hub
 * publishes $iothub/methods/POST/{method_name}/?$rid={rid} at QoS 0 with
 * `payload` as body to the device's live connection, once it is connected
 * and subscribed to $iothub/methods/POST/# (waiting up to
 * connect_timeout_ms for that, 0 = it must be so now), then waits up to
 * response_timeout_ms for $iothub/methods/res/{status}/?$rid={rid}.
 * Whichever worker thread holds the device's connection serves it.
 *
 * payload/payload_len: JSON text (borrowed for the call, copied), at most
 * HUB_DEVICE_METHOD_PAYLOAD_MAX bytes; NULL/0 means JSON null (the device
 * receives the body `null`). method_name: 1..HUB_DEVICE_METHOD_NAME_MAX
 * bytes of UTF-8 without '/', '#', '+', '?' or control characters (it
 * becomes a topic segment the SDKs split on).
 * response_timeout_ms > 0; connect_timeout_ms >= 0.
 *
 * Returns 0 and later calls done(done_arg, result) exactly once; or, without
 * ever calling done: HUB_E_INVALID_ARG (device id syntax, method name,
 * timeouts, payload not JSON), HUB_E_TOO_LARGE (payload), HUB_E_NOMEM.
 * Any thread.
 */
int hub_device_method_invoke(struct hub_device_endpoint *ep, const char *device_id,
                             const char *method_name, const void *payload, size_t payload_len,
                             int response_timeout_ms, int connect_timeout_ms,
                             hub_device_method_done_fn done, void *done_arg, struct hub_err *err);

struct hub_device_server;

/*
 * Serves MQTT over TLS on `listen_fd` (ownership passes to the server, also
 * on failure) on `worker`'s thread. `worker` must belong to the endpoint's
 * pool; one server per worker. `ssl_ctx` is borrowed (made by
 * hub_net_tls_server_ctx_new with request_client_cert = 1) and must outlive
 * the server.
 */
int hub_device_server_new(struct hub_device_endpoint *ep, struct hub_net_worker *worker,
                          SSL_CTX *ssl_ctx, int listen_fd, struct hub_device_server **out_new,
                          struct hub_err *err);

/*
 * Stops accepting at once, closes every connection (reason SERVER_SHUTDOWN;
 * no Will is published; their pending direct methods, and the method calls
 * waiting on this worker for a device to connect, complete with SHUTDOWN), lets the last bytes go
 * out for up to grace_ms (at most 250 ms), frees the server and calls done(arg), all on the
 * server's worker thread (schedule it there with hub_net_worker_call).
 * Before the pool started it may be called from the main thread; then run
 * the base once (event_base_loop(base, EVLOOP_NONBLOCK)) to finish.
 */
void hub_device_server_drain(struct hub_device_server *server, int grace_ms,
                             void (*done)(void *arg), void *arg);

#endif
