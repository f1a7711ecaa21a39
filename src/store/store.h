/*
 * store: hubd's durable state behind one interface.
 *
 * Owns: persistence of CA certificates, device identities, the telemetry log,
 * C2D queues and their feedback, device twins, schema migrations, and the
 * concurrency control a storage engine gives for free (unique keys,
 * compare-and-swap on etags, "insert unless the table already holds N rows").
 * Knows nothing of: the business rules (device id syntax, what an etag looks
 * like, the CA lifecycle, who may verify what: that is `registry`), wire
 * formats, X.509. The store copies records in and out verbatim; it never
 * invents a value (no etags, no ids, no times), so a second backend
 * (PostgreSQL) only has to implement `struct hub_store_ops`.
 *
 * Backends: SQLite (hub_store_sqlite_open). A backend embeds `struct
 * hub_store` as its first member and fills `ops`; callers use only the
 * hub_store_* wrappers below.
 *
 * Thread rules: a `struct hub_store *` may be used by any number of threads at
 * once. The SQLite backend keeps a small pool of connections (one per
 * concurrently running call, created on demand up to `max_connections`); a
 * call checks one out, runs, and gives it back. WAL mode lets readers run
 * beside the one writer; writers queue on SQLite's lock with a busy timeout.
 * Multi-statement changes run in BEGIN IMMEDIATE transactions so that two
 * writers never deadlock on a lock upgrade.
 *
 * Durability: every function that changes data has committed it before it
 * returns 0. The SQLite backend runs WAL with synchronous=FULL: each commit
 * fsyncs the WAL, so a change the API acknowledged survives power loss, not
 * only a crash of hubd (NORMAL would survive the crash but could lose the
 * last commits on power loss). Registry changes are rare, so the fsync per
 * change costs nothing that matters. The telemetry log batches: one
 * hub_store_telemetry_append call writes many messages in one transaction
 * (the `msg` layer's committer thread groups them across connections).
 *
 * Errors: HUB_E_NOT_FOUND (no such row), HUB_E_EXISTS (unique key taken),
 * HUB_E_ETAG_MISMATCH (conditional write lost), HUB_E_LIMIT (conditional
 * insert refused), HUB_E_BUSY (lock wait timed out), HUB_E_STORE (anything
 * else the engine reported, with its message), HUB_E_NOMEM,
 * HUB_E_INVALID_ARG (misuse, e.g. a malformed cursor).
 */
#ifndef HUB_STORE_H
#define HUB_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

/* ---- records ------------------------------------------------------------ */

/* Sizes include the NUL. Bounds come from Azure's device identity model
 * (shared/reference/azure-iot-hub-protocol.md §4, §5). */
#define HUB_DEVICE_ID_MAX          128 /* characters */
#define HUB_DEVICE_ID_SIZE         (HUB_DEVICE_ID_MAX + 1)
#define HUB_GENERATION_ID_SIZE     24 /* decimal uint64 fits in 20 */
#define HUB_ETAG_SIZE              32
#define HUB_STATUS_REASON_SIZE     129 /* hubd caps statusReason at 128 chars */
#define HUB_SAS_KEY_SIZE           89  /* base64 of at most 64 bytes = 88 chars */
#define HUB_THUMBPRINT_SIZE        65  /* SHA-256 hex; SHA-1 hex is 40 */
#define HUB_CA_NAME_MAX            64
#define HUB_CA_NAME_SIZE           (HUB_CA_NAME_MAX + 1)
#define HUB_CA_SUBJECT_SIZE        512 /* one-line subject, truncated for display */
#define HUB_VERIFICATION_CODE_SIZE 65
#define HUB_STORE_CURSOR_SIZE      (2 * HUB_DEVICE_ID_MAX + 1) /* hex of the last id */

/* Time fields are Unix seconds; 0 means "never" (Azure: 0001-01-01T00:00:00Z). */

enum hub_device_status { HUB_DEVICE_ENABLED = 0, HUB_DEVICE_DISABLED };
enum hub_auth_type {
    HUB_AUTH_SAS = 0,
    HUB_AUTH_SELF_SIGNED,
    HUB_AUTH_CERT_AUTHORITY,
    HUB_AUTH_NONE,
};
enum hub_conn_state { HUB_CONN_DISCONNECTED = 0, HUB_CONN_CONNECTED };

/* One device identity: the fields of Azure's device identity JSON. No heap
 * members, so it is copied by value and never freed. Strings are "" when
 * absent (statusReason null, no keys, no thumbprints). */
struct hub_device {
    char id[HUB_DEVICE_ID_SIZE];
    char generation_id[HUB_GENERATION_ID_SIZE];
    char etag[HUB_ETAG_SIZE];
    enum hub_device_status status;
    char status_reason[HUB_STATUS_REASON_SIZE];
    int64_t status_updated;
    enum hub_auth_type auth_type;
    char primary_key[HUB_SAS_KEY_SIZE]; /* sas */
    char secondary_key[HUB_SAS_KEY_SIZE];
    char primary_thumbprint[HUB_THUMBPRINT_SIZE]; /* selfSigned, uppercase hex */
    char secondary_thumbprint[HUB_THUMBPRINT_SIZE];
    enum hub_conn_state conn_state;
    int64_t conn_state_updated;
    int64_t last_activity;
    int64_t c2d_count; /* cloudToDeviceMessageCount: read-only, see the C2D queue below */
    bool iot_edge;     /* capabilities.iotEdge */
    int64_t created;
    int64_t updated;
    /* notAfter of the certificate the device last connected with (X.509 CA
     * or selfSigned, either transport); 0 = never connected with one. A
     * runtime column like the connection state: written only by
     * hub_store_device_cert_expiry_set, never by insert/update. */
    int64_t x509_not_after;
};

/* One uploaded CA certificate. `pem` and `crl_pem` are heap-owned by the record. */
struct hub_ca_cert {
    char name[HUB_CA_NAME_SIZE];
    char *pem; /* owned; NUL-terminated PEM of the certificate */
    char subject[HUB_CA_SUBJECT_SIZE];
    char thumbprint_sha1[HUB_THUMBPRINT_SIZE]; /* 40 uppercase hex */
    char thumbprint_sha256[HUB_THUMBPRINT_SIZE];
    int64_t not_before;
    int64_t not_after;
    bool verified;
    char verification_code[HUB_VERIFICATION_CODE_SIZE]; /* "" when none outstanding */
    int64_t code_expires;                               /* 0 when none outstanding */
    char etag[HUB_ETAG_SIZE];
    int64_t created;
    int64_t updated;
    /* The CA's certificate revocation list (issue 6). crl_pem NULL (or "")
     * when none was uploaded; the other fields are then 0. Part of the CA
     * record: written by insert/update like every other column, so a CRL
     * change is a compare-and-swap on the CA's etag. */
    char *crl_pem;           /* owned; NUL-terminated PEM of the CRL */
    int64_t crl_this_update; /* Unix seconds */
    int64_t crl_next_update; /* Unix seconds; 0 when the CRL has none */
    int64_t crl_revoked_count;
    int64_t crl_updated; /* when it was uploaded */
};

struct hub_ca_cert_list {
    size_t count;
    struct hub_ca_cert *items; /* owned, `count` records ordered by name */
};

struct hub_device_list {
    size_t count;
    struct hub_device *items; /* owned, `count` records ordered by id (bytewise) */
    /* Opaque; pass back as filter.cursor for the next page. "" when this is the last page. */
    char next_cursor[HUB_STORE_CURSOR_SIZE];
};

/* A device listing / query: each `has_*` enables one equality condition (ANDed).
 * `limit` >= 1 rows per page; `cursor` NULL or "" starts at the first id. */
struct hub_device_filter {
    bool has_status;
    enum hub_device_status status;
    bool has_auth_type;
    enum hub_auth_type auth_type;
    bool has_conn_state;
    enum hub_conn_state conn_state;
    size_t limit;
    const char *cursor; /* borrowed */
};

/* Frees the record and its PEM; NULL ok. For records from *_get1. */
void hub_ca_cert_free(struct hub_ca_cert *ca);
/* Frees a record's heap members (not the record itself) and zeroes it; NULL ok.
 * For records embedded in a list or on the caller's stack. */
void hub_ca_cert_clear(struct hub_ca_cert *ca);
/* Deep copy: fills *dst (whose previous content is not freed) from *src. */
int hub_ca_cert_copy(struct hub_ca_cert *dst, const struct hub_ca_cert *src, struct hub_err *err);
void hub_ca_cert_list_free(struct hub_ca_cert_list *list); /* NULL ok */
void hub_device_list_free(struct hub_device_list *list);   /* NULL ok */

/* Azure's spellings: "enabled"/"disabled", "sas"/"selfSigned"/
 * "certificateAuthority"/"none", "Connected"/"Disconnected". Static strings.
 * The parse functions are exact (case-sensitive) and return HUB_E_INVALID_ARG. */
const char *hub_device_status_name(enum hub_device_status s);
const char *hub_auth_type_name(enum hub_auth_type t);
const char *hub_conn_state_name(enum hub_conn_state c);
int hub_device_status_parse(const char *s, enum hub_device_status *out, struct hub_err *err);
int hub_auth_type_parse(const char *s, enum hub_auth_type *out, struct hub_err *err);
int hub_conn_state_parse(const char *s, enum hub_conn_state *out, struct hub_err *err);

/* ---- messaging records (telemetry log, C2D queue, feedback) -------------- */

/* Bounds (Azure's, shared/reference/azure-iot-hub-protocol.md §2): a telemetry
 * body is at most 256 KiB, a C2D body 64 KiB; message ids and module ids are
 * at most 128 characters. Properties are bounded in total (keys, values and
 * system properties together) so one message cannot pin unbounded memory. */
#define HUB_TELEMETRY_BODY_MAX  (256 * 1024)
#define HUB_C2D_BODY_MAX        (64 * 1024)
#define HUB_MSG_PROPS_MAX_BYTES (64 * 1024)
#define HUB_MODULE_ID_MAX       128
#define HUB_MODULE_ID_SIZE      (HUB_MODULE_ID_MAX + 1)
#define HUB_MESSAGE_ID_MAX      128
#define HUB_MESSAGE_ID_SIZE     (HUB_MESSAGE_ID_MAX + 1)
#define HUB_LOCK_TOKEN_MAX      64
#define HUB_LOCK_TOKEN_SIZE     (HUB_LOCK_TOKEN_MAX + 1)

/*
 * System properties of a message: X(ENUM, column, Azure's JSON name). The
 * MQTT property-bag keys ($.mid, $.cid, ...) are the iothub layer's business;
 * this table is the storage and service-API view. Values are opaque strings
 * stored verbatim (EXPIRY and CREATION_TIME as the device sent them: the hub
 * enforces expiry only for C2D, through hub_c2d_msg.expiry_ms).
 */
#define HUB_SYSPROP_MAP(X)                                                                         \
    X(MESSAGE_ID, message_id, "messageId")                                                         \
    X(CORRELATION_ID, correlation_id, "correlationId")                                             \
    X(USER_ID, user_id, "userId")                                                                  \
    X(TO, msg_to, "to")                                                                            \
    X(CONTENT_TYPE, content_type, "contentType")                                                   \
    X(CONTENT_ENCODING, content_encoding, "contentEncoding")                                       \
    X(EXPIRY, expiry, "expiryTimeUtc")                                                             \
    X(CREATION_TIME, creation_time, "creationTimeUtc")                                             \
    X(INTERFACE_ID, interface_id, "interfaceId")                                                   \
    X(OUTPUT_NAME, output_name, "outputName")                                                      \
    X(COMPONENT, component, "component")                                                           \
    X(CONN_DEVICE_ID, conn_device_id, "connectionDeviceId")                                        \
    X(CONN_MODULE_ID, conn_module_id, "connectionModuleId")                                        \
    X(CONN_AUTH_METHOD, conn_auth_method, "connectionAuthMethod")                                  \
    X(MESSAGE_TYPE, message_type, "iothub-MessageType")

enum hub_sysprop {
#define HUB_SYSPROP_ENUM(e, col, name) HUB_SYSPROP_##e,
    HUB_SYSPROP_MAP(HUB_SYSPROP_ENUM)
#undef HUB_SYSPROP_ENUM
        HUB_SYSPROP__COUNT
};

/* Azure's JSON name of a system property ("messageId"); "unknown" if out of range. */
const char *hub_sysprop_name(enum hub_sysprop p);

/* One application property. `value` NULL is a null value (MQTT bag "key"
 * without '='), distinct from "" ("key="). */
struct hub_app_prop {
    const char *key;
    const char *value;
};

/*
 * Records have pointer members. Passed IN (append, enqueue) they are borrowed
 * for the call. Filled OUT by the store they point into one heap block that
 * the record owns (`owned_`): release with the matching *_clear / *_list_free.
 * A zeroed record is valid and clearing it is a no-op.
 */

/* One device-to-cloud message in the telemetry log. */
struct hub_telemetry_msg {
    int64_t seq; /* assigned by the store: > 0, increasing in commit order; ignored IN */
    char device_id[HUB_DEVICE_ID_SIZE];
    char module_id[HUB_MODULE_ID_SIZE]; /* "" for a device (not module) message */
    int64_t enqueued_ms;                /* Unix milliseconds, the hub's receive time */
    const unsigned char *body;          /* body_len bytes; may be NULL when body_len is 0 */
    size_t body_len;
    const char *sys[HUB_SYSPROP__COUNT]; /* NUL-terminated; NULL = absent */
    size_t app_count;
    const struct hub_app_prop *app;
    void *owned_; /* store-filled records only */
};

struct hub_telemetry_msg_list {
    size_t count;
    struct hub_telemetry_msg *items; /* owned, ordered by seq */
};

/* Who asked for delivery feedback (Azure's "ack" property of a C2D message). */
enum hub_c2d_ack {
    HUB_C2D_ACK_NONE = 0,
    HUB_C2D_ACK_POSITIVE, /* feedback on Success */
    HUB_C2D_ACK_NEGATIVE, /* feedback on Expired, DeliveryCountExceeded, Rejected, Purged */
    HUB_C2D_ACK_FULL,     /* both */
};

/* The end of a C2D message, as Azure's feedback statusCode spells it. */
enum hub_c2d_outcome {
    HUB_C2D_SUCCESS = 0,
    HUB_C2D_EXPIRED,
    HUB_C2D_DELIVERY_COUNT_EXCEEDED,
    HUB_C2D_REJECTED,
    HUB_C2D_PURGED,
};

/* One cloud-to-device message in a device's queue. */
struct hub_c2d_msg {
    int64_t seq; /* assigned by the store (queue order, Azure's sequenceNumber); ignored IN */
    char device_id[HUB_DEVICE_ID_SIZE];
    int64_t enqueued_ms; /* Unix ms */
    int64_t expiry_ms;   /* Unix ms; the message is dropped (Expired) at or after it */
    enum hub_c2d_ack ack;
    const unsigned char *body; /* body_len bytes; may be NULL when body_len is 0 */
    size_t body_len;
    const char *sys[HUB_SYSPROP__COUNT]; /* sys[HUB_SYSPROP_MESSAGE_ID] is required */
    size_t app_count;
    const struct hub_app_prop *app;
    /* Delivery state, filled OUT only. */
    int64_t delivery_count;               /* deliveries so far, this one included */
    char lock_token[HUB_LOCK_TOKEN_SIZE]; /* "" when not locked */
    int64_t lock_expiry_ms;               /* 0 when not locked */
    void *owned_;
};

/* One delivery-outcome record (Azure's feedback batch element). No heap members. */
struct hub_c2d_feedback {
    int64_t seq;
    char original_message_id[HUB_MESSAGE_ID_SIZE];
    char device_id[HUB_DEVICE_ID_SIZE];
    char device_generation_id[HUB_GENERATION_ID_SIZE];
    int64_t enqueued_ms; /* when the outcome happened (Azure's enqueuedTimeUtc) */
    enum hub_c2d_outcome status;
};

struct hub_c2d_feedback_list {
    size_t count;
    struct hub_c2d_feedback *items; /* owned, ordered by seq */
};

/* The bounds every store write checks, for callers that must refuse a record
 * before queueing it: a device id, a module id / message id of at most 128
 * characters, the body bound (HUB_TELEMETRY_BODY_MAX / HUB_C2D_BODY_MAX),
 * HUB_MSG_PROPS_MAX_BYTES, non-empty application keys; for C2D also a message
 * id, expiry_ms > enqueued_ms and a known ack mode. 0, HUB_E_INVALID_ARG or
 * HUB_E_TOO_LARGE. */
int hub_telemetry_msg_check(const struct hub_telemetry_msg *msg, struct hub_err *err);
int hub_c2d_msg_check(const struct hub_c2d_msg *msg, struct hub_err *err);

/* Deep copies: *dst (whose previous content is not freed) becomes an owned
 * record equal to *src (a borrowed or owned one). HUB_E_NOMEM. */
int hub_telemetry_msg_copy(struct hub_telemetry_msg *dst, const struct hub_telemetry_msg *src,
                           struct hub_err *err);
int hub_c2d_msg_copy(struct hub_c2d_msg *dst, const struct hub_c2d_msg *src, struct hub_err *err);
void hub_telemetry_msg_clear(struct hub_telemetry_msg *msg);           /* NULL ok; zeroes it */
void hub_telemetry_msg_list_free(struct hub_telemetry_msg_list *list); /* NULL ok */
void hub_c2d_msg_clear(struct hub_c2d_msg *msg);                       /* NULL ok; zeroes it */
void hub_c2d_feedback_list_free(struct hub_c2d_feedback_list *list);   /* NULL ok */

/* "none"/"positive"/"negative"/"full" (Azure's iothub-ack values); the parse
 * function is exact and returns HUB_E_INVALID_ARG. */
const char *hub_c2d_ack_name(enum hub_c2d_ack a);
int hub_c2d_ack_parse(const char *s, enum hub_c2d_ack *out, struct hub_err *err);
/* "Success", "Expired", "DeliveryCountExceeded", "Rejected", "Purged". */
const char *hub_c2d_outcome_name(enum hub_c2d_outcome o);
int hub_c2d_outcome_parse(const char *s, enum hub_c2d_outcome *out, struct hub_err *err);
/* Azure-style human text for a feedback record's description field. Static. */
const char *hub_c2d_outcome_description(enum hub_c2d_outcome o);

/*
 * Bytes a message's properties take for the HUB_MSG_PROPS_MAX_BYTES bound:
 * the length of every present system property value plus every application
 * key and value. Callers check the bound before the store does.
 */
size_t hub_msg_props_size(const char *const sys[HUB_SYSPROP__COUNT], const struct hub_app_prop *app,
                          size_t app_count);

/* ---- the interface ------------------------------------------------------ */

struct hub_store;

/* How a device settles a locked C2D message. */
enum hub_c2d_settle {
    HUB_C2D_COMPLETE = 0, /* delivered: removed; feedback Success (ack positive/full) */
    HUB_C2D_REJECT,       /* refused: removed; feedback Rejected (ack negative/full) */
    HUB_C2D_ABANDON,      /* not now: unlocked, stays queued, delivery count kept */
};

/*
 * One function per operation; `expected_etag` NULL means unconditional.
 * Records passed in are borrowed; out-records are filled by the backend.
 */
struct hub_twin_rec; /* device twins, below */
struct hub_twin_log;
struct hub_dps_rec; /* provisioning service records, below */
struct hub_dps_rec_list;
enum hub_store_dps_table {
    HUB_STORE_DPS_GROUPS = 0,    /* enrollment groups, by enrollmentGroupId */
    HUB_STORE_DPS_ENROLLMENTS,   /* individual enrollments, by registrationId */
    HUB_STORE_DPS_REGISTRATIONS, /* registration states, by registrationId */
};

struct hub_store_ops {
    void (*close)(struct hub_store *store);

    int (*ca_insert)(struct hub_store *store, const struct hub_ca_cert *ca, size_t max_count,
                     struct hub_err *err);
    int (*ca_get1)(struct hub_store *store, const char *name, struct hub_ca_cert **out_new,
                   struct hub_err *err);
    int (*ca_update)(struct hub_store *store, const struct hub_ca_cert *ca,
                     const char *expected_etag, struct hub_err *err);
    int (*ca_delete)(struct hub_store *store, const char *name, const char *expected_etag,
                     struct hub_err *err);
    int (*ca_list1)(struct hub_store *store, bool verified_only, struct hub_ca_cert_list **out_new,
                    struct hub_err *err);
    int (*ca_count)(struct hub_store *store, size_t *out, struct hub_err *err);

    int (*device_insert)(struct hub_store *store, const struct hub_device *dev,
                         struct hub_err *err);
    int (*device_get)(struct hub_store *store, const char *id, struct hub_device *out,
                      struct hub_err *err);
    int (*device_update)(struct hub_store *store, const struct hub_device *dev,
                         const char *expected_etag, struct hub_err *err);
    int (*device_delete)(struct hub_store *store, const char *id, const char *expected_etag,
                         struct hub_err *err);
    int (*device_list1)(struct hub_store *store, const struct hub_device_filter *filter,
                        struct hub_device_list **out_new, struct hub_err *err);
    int (*device_conn_state_set)(struct hub_store *store, const char *id, enum hub_conn_state state,
                                 int64_t at, struct hub_err *err);
    int (*device_activity_touch)(struct hub_store *store, const char *id, int64_t at,
                                 struct hub_err *err);
    int (*device_cert_expiry_set)(struct hub_store *store, const char *id, int64_t not_after,
                                  struct hub_err *err);

    int (*telemetry_append)(struct hub_store *store, const struct hub_telemetry_msg *const *msgs,
                            size_t count, int64_t *seqs_out, struct hub_err *err);
    int (*telemetry_read1)(struct hub_store *store, int64_t from_seq, size_t limit,
                           const char *device_id, struct hub_telemetry_msg_list **out_new,
                           struct hub_err *err);
    int (*telemetry_last_seq)(struct hub_store *store, int64_t *out, struct hub_err *err);
    int (*telemetry_prune)(struct hub_store *store, int64_t before_ms, size_t max_rows,
                           size_t *deleted_out, struct hub_err *err);

    int (*c2d_enqueue)(struct hub_store *store, const struct hub_c2d_msg *msg,
                       size_t max_per_device, int64_t *seq_out, struct hub_err *err);
    int (*c2d_deliver)(struct hub_store *store, const char *device_id, int64_t now_ms,
                       const char *lock_token, int64_t lock_expiry_ms, int64_t max_delivery_count,
                       struct hub_c2d_msg *out, size_t *dead_out, struct hub_err *err);
    int (*c2d_settle)(struct hub_store *store, const char *device_id, const char *lock_token,
                      enum hub_c2d_settle how, int64_t now_ms, struct hub_err *err);
    int (*c2d_release)(struct hub_store *store, const char *device_id, size_t *released_out,
                       struct hub_err *err);
    int (*c2d_purge)(struct hub_store *store, const char *device_id, int64_t now_ms,
                     size_t *purged_out, struct hub_err *err);
    int (*c2d_expire)(struct hub_store *store, int64_t now_ms, size_t *expired_out,
                      struct hub_err *err);
    int (*c2d_count)(struct hub_store *store, const char *device_id, size_t *out,
                     struct hub_err *err);
    int (*feedback_receive1)(struct hub_store *store, int64_t now_ms, const char *lock_token,
                             int64_t lock_expiry_ms, size_t max,
                             struct hub_c2d_feedback_list **out_new, struct hub_err *err);
    int (*feedback_settle)(struct hub_store *store, const char *lock_token, bool complete,
                           int64_t now_ms, size_t *settled_out, struct hub_err *err);
    int (*feedback_prune)(struct hub_store *store, int64_t before_ms, size_t *deleted_out,
                          struct hub_err *err);

    int (*twin_get)(struct hub_store *store, const char *id, struct hub_twin_rec *out,
                    struct hub_err *err);
    int (*twin_write)(struct hub_store *store, const struct hub_twin_rec *rec,
                      const char *expected_etag, const char *desired_patch, struct hub_err *err);
    int (*twin_log_read1)(struct hub_store *store, const char *id, int64_t after_version,
                          struct hub_twin_log **out_new, struct hub_err *err);

    int (*dps_put)(struct hub_store *store, enum hub_store_dps_table table,
                   const struct hub_dps_rec *rec, const char *expected_etag, bool create_only,
                   struct hub_err *err);
    int (*dps_get)(struct hub_store *store, enum hub_store_dps_table table, const char *id,
                   struct hub_dps_rec *out, struct hub_err *err);
    int (*dps_delete)(struct hub_store *store, enum hub_store_dps_table table, const char *id,
                      const char *expected_etag, struct hub_err *err);
    int (*dps_list1)(struct hub_store *store, enum hub_store_dps_table table, const char *group_id,
                     struct hub_dps_rec_list **out_new, struct hub_err *err);
};

/* The base every backend embeds first. */
struct hub_store {
    const struct hub_store_ops *ops;
};

/* ---- SQLite backend ----------------------------------------------------- */

struct hub_store_sqlite_opts {
    int busy_timeout_ms;    /* lock wait before HUB_E_BUSY; 0 = default 5000 */
    size_t max_connections; /* pool cap; 0 = default 8 */
};

/*
 * Opens (creating if needed) the database at `path` (borrowed), sets WAL,
 * synchronous=FULL, foreign_keys=ON and the busy timeout, and brings the
 * schema up to date (migrations keyed by PRAGMA user_version, each in its
 * own transaction; idempotent on reopen). A database written by a newer hubd
 * (user_version beyond what this build knows) is refused with HUB_E_STORE.
 * `opts` may be NULL for defaults. On success *out_new belongs to the caller:
 * release with hub_store_close().
 */
int hub_store_sqlite_open(const char *path, const struct hub_store_sqlite_opts *opts,
                          struct hub_store **out_new, struct hub_err *err);

/* Schema version this build migrates to (the value of PRAGMA user_version). */
int hub_store_sqlite_schema_version(void);

/*
 * Tests only: the next `count` write transactions of this store fail at
 * COMMIT with HUB_E_IO ("injected I/O fault") and are rolled back, as if the
 * disk had refused the write. 0 clears it. A no-op on other backends. Thread-safe.
 */
void hub_store_sqlite_fail_commits(struct hub_store *store, unsigned count);

/* ---- wrappers (what callers use) ----------------------------------------- */

/* Closes and frees; NULL ok. No other thread may be inside a store call. */
void hub_store_close(struct hub_store *store);

/* Inserts a new CA row. HUB_E_EXISTS if the name is taken, HUB_E_LIMIT if the
 * table already holds `max_count` rows (0 = no limit); the count and the
 * insert are one transaction. `ca->pem` must be non-NULL. */
int hub_store_ca_insert(struct hub_store *store, const struct hub_ca_cert *ca, size_t max_count,
                        struct hub_err *err);
/* Reads the CA called `name`; *out_new is the caller's (hub_ca_cert_free). */
int hub_store_ca_get1(struct hub_store *store, const char *name, struct hub_ca_cert **out_new,
                      struct hub_err *err);
/* Replaces every column of the row named ca->name, if its etag equals
 * `expected_etag` (or unconditionally when NULL). HUB_E_NOT_FOUND when there
 * is no such row, HUB_E_ETAG_MISMATCH when the etag differs. */
int hub_store_ca_update(struct hub_store *store, const struct hub_ca_cert *ca,
                        const char *expected_etag, struct hub_err *err);
/* Deletes, with the same conditions as update. */
int hub_store_ca_delete(struct hub_store *store, const char *name, const char *expected_etag,
                        struct hub_err *err);
/* Every CA (or only verified ones), ordered by name; *out_new is the caller's
 * (hub_ca_cert_list_free), possibly with count 0. */
int hub_store_ca_list1(struct hub_store *store, bool verified_only,
                       struct hub_ca_cert_list **out_new, struct hub_err *err);
int hub_store_ca_count(struct hub_store *store, size_t *out, struct hub_err *err);

/* Inserts a device row verbatim. HUB_E_EXISTS if the id is taken. */
int hub_store_device_insert(struct hub_store *store, const struct hub_device *dev,
                            struct hub_err *err);
/* Copies the device `id` into *out (caller's memory). HUB_E_NOT_FOUND. */
int hub_store_device_get(struct hub_store *store, const char *id, struct hub_device *out,
                         struct hub_err *err);
/* Replaces every column of row dev->id but c2d_count (the C2D queue owns it),
 * conditional on `expected_etag` as for CAs. */
int hub_store_device_update(struct hub_store *store, const struct hub_device *dev,
                            const char *expected_etag, struct hub_err *err);
int hub_store_device_delete(struct hub_store *store, const char *id, const char *expected_etag,
                            struct hub_err *err);
/* One page of devices matching `filter`, ordered by id; *out_new is the
 * caller's (hub_device_list_free). HUB_E_INVALID_ARG for limit 0 or a cursor
 * this store did not produce. */
int hub_store_device_list1(struct hub_store *store, const struct hub_device_filter *filter,
                           struct hub_device_list **out_new, struct hub_err *err);
/* Runtime columns, written without touching the etag (Azure's device etag
 * covers the identity, not its connection state), and without an fsync: a
 * power loss may lose the latest ones; a reconnect sets them again. Setting
 * Connected also moves last_activity to `at`. HUB_E_NOT_FOUND. */
int hub_store_device_conn_state_set(struct hub_store *store, const char *id,
                                    enum hub_conn_state state, int64_t at, struct hub_err *err);
/* Sets last_activity = max(last_activity, at). HUB_E_NOT_FOUND. */
int hub_store_device_activity_touch(struct hub_store *store, const char *id, int64_t at,
                                    struct hub_err *err);
/* Sets x509_not_after (runtime column: no etag change). HUB_E_NOT_FOUND. */
int hub_store_device_cert_expiry_set(struct hub_store *store, const char *id, int64_t not_after,
                                     struct hub_err *err);

/*
 * ---- telemetry log ----
 * An append-only log ordered by seq. seq is assigned by the store: positive,
 * strictly increasing in commit order, never reused (not even after every
 * row has been pruned). Rows do not reference devices: the log outlives a
 * deleted device. Application properties are stored as one BLOB in the
 * length-prefixed format described in store_sqlite_msg.c; system properties
 * are columns.
 */

/* Appends `count` (1..) records in ONE transaction (one fsync): all or none.
 * seqs_out[i] (caller memory, `count` entries) receives msgs[i]'s seq. Records
 * are borrowed; each must have a device id and respect the HUB_*_MAX bounds
 * (HUB_E_TOO_LARGE / HUB_E_INVALID_ARG otherwise, nothing written). */
int hub_store_telemetry_append(struct hub_store *store, const struct hub_telemetry_msg *const *msgs,
                               size_t count, int64_t *seqs_out, struct hub_err *err);
/* Up to `limit` (1..10000) records with seq >= from_seq, oldest first, only
 * device `device_id` when it is non-NULL. *out_new is the caller's
 * (hub_telemetry_msg_list_free), possibly with count 0. */
int hub_store_telemetry_read1(struct hub_store *store, int64_t from_seq, size_t limit,
                              const char *device_id, struct hub_telemetry_msg_list **out_new,
                              struct hub_err *err);
/* The highest seq ever committed (0 for a new log), pruned rows included. */
int hub_store_telemetry_last_seq(struct hub_store *store, int64_t *out, struct hub_err *err);
/* Deletes at most `max_rows` (>= 1) records with enqueued_ms < before_ms, so
 * one call holds the write lock briefly; *deleted_out (may be NULL) says how
 * many went. Call again while it returns max_rows. */
int hub_store_telemetry_prune(struct hub_store *store, int64_t before_ms, size_t max_rows,
                              size_t *deleted_out, struct hub_err *err);

/*
 * ---- cloud-to-device queue ----
 * One queue per device, ordered by seq. Rows reference devices(id) ON DELETE
 * CASCADE: deleting a device drops its queue (without feedback). The
 * device's c2d_count (cloudToDeviceMessageCount) equals the number of rows
 * in its queue, locked ones included, kept by triggers inside the same
 * transaction as each change. Feedback (Azure's delivery outcomes) is
 * written in the same transaction as the outcome when msg->ack asks for it.
 * Times are the caller's (Unix ms); the store never reads a clock, and lock
 * tokens come from the caller too.
 */

/* Durably enqueues `msg` (borrowed; device_id, sys[MESSAGE_ID] required;
 * expiry_ms > enqueued_ms). HUB_E_NOT_FOUND (no such device), HUB_E_LIMIT
 * (the device already holds `max_per_device` unexpired messages; 0 = no
 * limit), HUB_E_TOO_LARGE / HUB_E_INVALID_ARG (bounds). *seq_out may be NULL. */
int hub_store_c2d_enqueue(struct hub_store *store, const struct hub_c2d_msg *msg,
                          size_t max_per_device, int64_t *seq_out, struct hub_err *err);
/*
 * The device's oldest deliverable message (not expired at now_ms, not locked
 * or its lock expired), locked with `lock_token` until lock_expiry_ms and its
 * delivery count incremented, all in one transaction. A candidate already
 * delivered `max_delivery_count` times (>= 1) is dead-lettered instead:
 * removed, feedback DeliveryCountExceeded, counted in *dead_out (may be NULL),
 * and the next one is tried. *out (zeroed first) is the caller's:
 * hub_c2d_msg_clear. HUB_E_NOT_FOUND when nothing is deliverable (*out stays
 * zeroed; dead-lettering done on the way is committed).
 */
int hub_store_c2d_deliver(struct hub_store *store, const char *device_id, int64_t now_ms,
                          const char *lock_token, int64_t lock_expiry_ms,
                          int64_t max_delivery_count, struct hub_c2d_msg *out, size_t *dead_out,
                          struct hub_err *err);
/* Settles the device's message locked with `lock_token` (see enum
 * hub_c2d_settle). HUB_E_NOT_FOUND: no message of this device holds that
 * token (never issued, already settled, or redelivered with another token);
 * HUB_E_ETAG_MISMATCH: the lock expired at or before now_ms (Azure's
 * DeviceMessageLockLost; the message stays queued). */
int hub_store_c2d_settle(struct hub_store *store, const char *device_id, const char *lock_token,
                         enum hub_c2d_settle how, int64_t now_ms, struct hub_err *err);
/* Unlocks every locked message of the device (a new MQTT session: what the
 * previous one had in flight is redelivered at once). *released_out may be NULL. */
int hub_store_c2d_release(struct hub_store *store, const char *device_id, size_t *released_out,
                          struct hub_err *err);
/* Removes every message of the device; feedback Purged (ack negative/full).
 * HUB_E_NOT_FOUND for an unknown device. *purged_out may be NULL. */
int hub_store_c2d_purge(struct hub_store *store, const char *device_id, int64_t now_ms,
                        size_t *purged_out, struct hub_err *err);
/* Removes every message of every device with expiry_ms <= now_ms; feedback
 * Expired (ack negative/full). *expired_out (may be NULL) counts them. */
int hub_store_c2d_expire(struct hub_store *store, int64_t now_ms, size_t *expired_out,
                         struct hub_err *err);
/* Messages in the device's queue (== its c2d_count). HUB_E_NOT_FOUND. */
int hub_store_c2d_count(struct hub_store *store, const char *device_id, size_t *out,
                        struct hub_err *err);

/*
 * Feedback: a shared queue of outcome records, handed out in locked batches
 * (Azure: GET /messages/serviceBound/feedback, then DELETE or abandon by lock
 * token). receive1 locks up to `max` (1..1000) unlocked (or lock-expired)
 * records, oldest first, with `lock_token` until lock_expiry_ms and returns
 * them (count 0 when none; *out_new: hub_c2d_feedback_list_free).
 * settle with complete=true deletes the batch, false unlocks it;
 * HUB_E_NOT_FOUND when no record holds that unexpired lock (*settled_out,
 * may be NULL, counts the records). prune deletes records older than
 * before_ms whatever their lock.
 */
int hub_store_feedback_receive1(struct hub_store *store, int64_t now_ms, const char *lock_token,
                                int64_t lock_expiry_ms, size_t max,
                                struct hub_c2d_feedback_list **out_new, struct hub_err *err);
int hub_store_feedback_settle(struct hub_store *store, const char *lock_token, bool complete,
                              int64_t now_ms, size_t *settled_out, struct hub_err *err);
int hub_store_feedback_prune(struct hub_store *store, int64_t before_ms, size_t *deleted_out,
                             struct hub_err *err);

/*
 * ---- device twins ----
 * One row per device that has a twin (created lazily by the registry), in
 * table `twins` referencing devices(id) ON DELETE CASCADE, plus a short log
 * of desired-property patches per device (`twin_desired_log`, also
 * cascading) so a reconnecting device can be sent the changes it missed.
 * The store keeps the sections as the opaque JSON text it is given; the
 * `twin` layer owns their meaning. Writes are compare-and-swap on the etag.
 */

/* Desired patches kept per device (older ones are pruned in the same
 * transaction as the write that adds one). */
#define HUB_STORE_TWIN_LOG_KEEP 16

/* A twin row. Passed IN the text members are borrowed; filled OUT they point
 * into one heap block owned by the record (hub_twin_rec_clear). */
struct hub_twin_rec {
    char device_id[HUB_DEVICE_ID_SIZE];
    char etag[HUB_ETAG_SIZE];
    int64_t version; /* 0 OUT: the device exists but has no twin row yet */
    int64_t desired_version;
    int64_t reported_version;
    const char *tags; /* compact JSON text of each section, NUL-terminated */
    const char *desired;
    const char *desired_meta;
    const char *reported;
    const char *reported_meta;
    int64_t updated; /* Unix seconds of the last write */
    void *owned_;
};

/* Frees what a store-filled record owns and zeroes it; NULL and zeroed ok. */
void hub_twin_rec_clear(struct hub_twin_rec *rec);

/* One logged desired patch (Unix seconds `at`). */
struct hub_twin_log_entry {
    int64_t desired_version;
    const char *patch; /* JSON text as given to hub_store_twin_write */
    int64_t at;
};
struct hub_twin_log {
    size_t count;
    struct hub_twin_log_entry *items; /* owned, ascending desired_version */
};
void hub_twin_log_free(struct hub_twin_log *log); /* NULL ok */

/*
 * The twin of device `id` into *out (zeroed first; hub_twin_rec_clear).
 * HUB_E_NOT_FOUND when there is no such device. A device without a twin row
 * yields 0 with out->version == 0 and NULL texts.
 */
int hub_store_twin_get(struct hub_store *store, const char *id, struct hub_twin_rec *out,
                       struct hub_err *err);

/*
 * Writes rec (every text member non-NULL, version >= 1, etag non-empty):
 *   - expected_etag NULL: inserts the row; HUB_E_EXISTS if the device
 *     already has one, HUB_E_NOT_FOUND if there is no such device;
 *   - otherwise replaces the row iff its etag equals expected_etag;
 *     HUB_E_ETAG_MISMATCH if it differs, HUB_E_NOT_FOUND if there is no row.
 * When `desired_patch` is non-NULL it is logged as rec->desired_version's
 * patch in the same transaction (replacing a row logged with that version),
 * and the device's log is cut to its last HUB_STORE_TWIN_LOG_KEEP entries.
 */
int hub_store_twin_write(struct hub_store *store, const struct hub_twin_rec *rec,
                         const char *expected_etag, const char *desired_patch, struct hub_err *err);

/* Logged desired patches of device `id` with desired_version > after_version,
 * ascending. *out_new is the caller's (hub_twin_log_free), possibly with
 * count 0. HUB_E_NOT_FOUND when there is no such device. */
int hub_store_twin_log_read1(struct hub_store *store, const char *id, int64_t after_version,
                             struct hub_twin_log **out_new, struct hub_err *err);

/*
 * ---- provisioning service (dps layer, issue 8) ----
 * Three tables of the same shape (schema step 4 -> 5): the record's id, its
 * etag, the enrollment group it belongs to (registrations made through a
 * group; "" otherwise), the dps layer's JSON document (opaque here), and
 * times. Writes are compare-and-swap on the etag.
 */
#define HUB_STORE_DPS_ID_MAX 128

/* Passed IN `body` is borrowed; filled OUT it is owned by the record
 * (hub_dps_rec_clear). */
struct hub_dps_rec {
    char id[HUB_STORE_DPS_ID_MAX + 1];
    char etag[HUB_ETAG_SIZE];
    char group_id[HUB_STORE_DPS_ID_MAX + 1];
    const char *body; /* NUL-terminated JSON text */
    int64_t created;
    int64_t updated;
    void *owned_;
};
struct hub_dps_rec_list {
    size_t count;
    struct hub_dps_rec *items; /* owned, ordered by id (bytewise) */
};
void hub_dps_rec_clear(struct hub_dps_rec *rec);           /* NULL and zeroed ok; zeroes it */
void hub_dps_rec_list_free(struct hub_dps_rec_list *list); /* NULL ok */

/*
 * Writes rec (id, etag non-empty, body non-NULL):
 *   - expected_etag non-NULL: replaces the row iff its etag equals it
 *     (HUB_E_ETAG_MISMATCH; HUB_E_NOT_FOUND when there is no row);
 *   - expected_etag NULL, create_only: inserts (HUB_E_EXISTS if taken);
 *   - expected_etag NULL, !create_only: inserts or replaces; `created` of an
 *     existing row is kept.
 */
int hub_store_dps_put(struct hub_store *store, enum hub_store_dps_table table,
                      const struct hub_dps_rec *rec, const char *expected_etag, bool create_only,
                      struct hub_err *err);
/* *out zeroed first; hub_dps_rec_clear. HUB_E_NOT_FOUND. */
int hub_store_dps_get(struct hub_store *store, enum hub_store_dps_table table, const char *id,
                      struct hub_dps_rec *out, struct hub_err *err);
/* Conditions as for put with expected_etag. HUB_E_NOT_FOUND, HUB_E_ETAG_MISMATCH. */
int hub_store_dps_delete(struct hub_store *store, enum hub_store_dps_table table, const char *id,
                         const char *expected_etag, struct hub_err *err);
/* Every row (only those of group_id when non-NULL), ordered by id.
 * *out_new: hub_dps_rec_list_free, possibly with count 0. */
int hub_store_dps_list1(struct hub_store *store, enum hub_store_dps_table table,
                        const char *group_id, struct hub_dps_rec_list **out_new,
                        struct hub_err *err);

#endif
