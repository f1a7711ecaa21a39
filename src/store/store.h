/*
 * store: hubd's durable state behind one interface.
 *
 * Owns: persistence of CA certificates and device identities (later: twins,
 * C2D queues, telemetry log), schema migrations, and the concurrency control
 * a storage engine gives for free (unique keys, compare-and-swap on etags,
 * "insert unless the table already holds N rows").
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
 * change costs nothing that matters; the telemetry log will batch commits.
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
    int64_t c2d_count; /* cloudToDeviceMessageCount */
    bool iot_edge;     /* capabilities.iotEdge */
    int64_t created;
    int64_t updated;
};

/* One uploaded CA certificate. `pem` is heap-owned by the record. */
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

/* ---- the interface ------------------------------------------------------ */

struct hub_store;

/*
 * One function per operation; `expected_etag` NULL means unconditional.
 * Records passed in are borrowed; out-records are filled by the backend.
 */
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
/* Replaces every column of row dev->id, conditional on `expected_etag` as for CAs. */
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
 * covers the identity, not its connection state). HUB_E_NOT_FOUND. */
int hub_store_device_conn_state_set(struct hub_store *store, const char *id,
                                    enum hub_conn_state state, int64_t at, struct hub_err *err);
/* Sets last_activity = max(last_activity, at). HUB_E_NOT_FOUND. */
int hub_store_device_activity_touch(struct hub_store *store, const char *id, int64_t at,
                                    struct hub_err *err);

#endif
