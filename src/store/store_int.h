/*
 * store: what the SQLite backend's files share. Never included outside src/store
 * (and its own unit tests).
 */
#ifndef HUB_STORE_INT_H
#define HUB_STORE_INT_H

#include <sqlite3.h>

#include "common/err.h"
#include "store/store.h"

/* Brings `db` to the newest schema (store_migrate.c). */
int hub_store__sqlite_migrate(sqlite3 *db, struct hub_err *err);
/* Brings `db` to schema version `target` (<= the newest) only: lets a test
 * build a database as an older hubd left it, then open it with this one. */
int hub_store__sqlite_migrate_to(sqlite3 *db, int target, struct hub_err *err);

/*
 * Packs a message's payload into one heap block (store.c): the body, the
 * present system properties and the application properties, each string
 * NUL-terminated. Spans with p == NULL are absent system properties / null
 * values. On success *body_out, sys_out[], *app_out point into *owned_out.
 */
struct hub_store__span {
    const char *p;
    size_t n;
};
int hub_store__pack(const unsigned char *body, size_t body_len,
                    const struct hub_store__span sys[HUB_SYSPROP__COUNT],
                    const struct hub_store__span *keys, const struct hub_store__span *values,
                    size_t app_count, const unsigned char **body_out,
                    const char *sys_out[HUB_SYSPROP__COUNT], const struct hub_app_prop **app_out,
                    void **owned_out, struct hub_err *err);

/* Maps a SQLite result code to a hub code and fills err with `what` and the
 * connection's message. */
int hub_store__sqlite_err(sqlite3 *db, int rc, const char *what, struct hub_err *err);

/*
 * The connection pool, for backend files other than store_sqlite.c. A
 * connection is checked out by one thread at a time (acquire/release). Its
 * statement cache has HUB_STORE__EXT_STMT_MAX slots for those files: each
 * file owns a range of slot numbers and always passes the same SQL for a
 * slot. commit honours hub_store_sqlite_fail_commits; release rolls back a
 * transaction left open.
 */
#define HUB_STORE__EXT_STMT_MAX 64
/* Slot ranges: store_sqlite_msg.c 0..47, store_sqlite_twin.c 48..63. */
#define HUB_STORE__TWIN_STMT_BASE 48
struct hub_store__conn;
int hub_store__sqlite_acquire(struct hub_store *store, struct hub_store__conn **out,
                              struct hub_err *err);
void hub_store__sqlite_release(struct hub_store *store, struct hub_store__conn *conn);
sqlite3 *hub_store__sqlite_db(struct hub_store__conn *conn);
/* The cached statement of `slot` (prepared from `sql` on first use). The
 * caller resets it and clears its bindings when done. */
int hub_store__sqlite_stmt(struct hub_store__conn *conn, int slot, const char *sql,
                           sqlite3_stmt **out, struct hub_err *err);
int hub_store__sqlite_begin(struct hub_store__conn *conn, struct hub_err *err); /* IMMEDIATE */

/* Statement helpers every backend file shares. */
/* Resets a statement and clears its bindings, ready for the next use. */
void hub_store__stmt_done(sqlite3_stmt *st);
/* Binds `v` as text (borrowed until the step); NULL binds SQL NULL. */
int hub_store__bind_text(sqlite3_stmt *st, int i, const char *v);
/* hub_store__sqlite_err with the connection's message. */
int hub_store__step_err(struct hub_store__conn *conn, int rc, const char *what,
                        struct hub_err *err);
/* Steps a bound statement that returns no rows, then resets it (done);
 * *changes_out (may be NULL) gets the number of rows it changed. */
int hub_store__exec(struct hub_store__conn *conn, sqlite3_stmt *st, const char *what,
                    size_t *changes_out, struct hub_err *err);
int hub_store__sqlite_commit(struct hub_store__conn *conn, struct hub_err *err);
void hub_store__sqlite_rollback(struct hub_store__conn *conn);

/* The messaging ops of the SQLite backend (store_sqlite_msg.c); see store.h. */
int hub_store__sqlite_telemetry_append(struct hub_store *store,
                                       const struct hub_telemetry_msg *const *msgs, size_t count,
                                       int64_t *seqs_out, struct hub_err *err);
int hub_store__sqlite_telemetry_read1(struct hub_store *store, int64_t from_seq, size_t limit,
                                      const char *device_id,
                                      struct hub_telemetry_msg_list **out_new, struct hub_err *err);
int hub_store__sqlite_telemetry_last_seq(struct hub_store *store, int64_t *out,
                                         struct hub_err *err);
int hub_store__sqlite_telemetry_prune(struct hub_store *store, int64_t before_ms, size_t max_rows,
                                      size_t *deleted_out, struct hub_err *err);
int hub_store__sqlite_c2d_enqueue(struct hub_store *store, const struct hub_c2d_msg *msg,
                                  size_t max_per_device, int64_t *seq_out, struct hub_err *err);
int hub_store__sqlite_c2d_deliver(struct hub_store *store, const char *device_id, int64_t now_ms,
                                  const char *lock_token, int64_t lock_expiry_ms,
                                  int64_t max_delivery_count, struct hub_c2d_msg *out,
                                  size_t *dead_out, struct hub_err *err);
int hub_store__sqlite_c2d_settle(struct hub_store *store, const char *device_id,
                                 const char *lock_token, enum hub_c2d_settle how, int64_t now_ms,
                                 struct hub_err *err);
int hub_store__sqlite_c2d_release(struct hub_store *store, const char *device_id,
                                  size_t *released_out, struct hub_err *err);
int hub_store__sqlite_c2d_purge(struct hub_store *store, const char *device_id, int64_t now_ms,
                                size_t *purged_out, struct hub_err *err);
int hub_store__sqlite_c2d_expire(struct hub_store *store, int64_t now_ms, size_t *expired_out,
                                 struct hub_err *err);
int hub_store__sqlite_c2d_count(struct hub_store *store, const char *device_id, size_t *out,
                                struct hub_err *err);
int hub_store__sqlite_feedback_receive1(struct hub_store *store, int64_t now_ms,
                                        const char *lock_token, int64_t lock_expiry_ms, size_t max,
                                        struct hub_c2d_feedback_list **out_new,
                                        struct hub_err *err);
int hub_store__sqlite_feedback_settle(struct hub_store *store, const char *lock_token,
                                      bool complete, int64_t now_ms, size_t *settled_out,
                                      struct hub_err *err);
int hub_store__sqlite_feedback_prune(struct hub_store *store, int64_t before_ms,
                                     size_t *deleted_out, struct hub_err *err);

/* The twin ops of the SQLite backend (store_sqlite_twin.c); see store.h. */
int hub_store__sqlite_twin_get(struct hub_store *store, const char *id, struct hub_twin_rec *out,
                               struct hub_err *err);
int hub_store__sqlite_twin_write(struct hub_store *store, const struct hub_twin_rec *rec,
                                 const char *expected_etag, const char *desired_patch,
                                 struct hub_err *err);
int hub_store__sqlite_twin_log_read1(struct hub_store *store, const char *id, int64_t after_version,
                                     struct hub_twin_log **out_new, struct hub_err *err);

/* The provisioning service ops of the SQLite backend (store_sqlite_dps.c). */
int hub_store__sqlite_dps_put(struct hub_store *store, enum hub_store_dps_table table,
                              const struct hub_dps_rec *rec, const char *expected_etag,
                              bool create_only, struct hub_err *err);
int hub_store__sqlite_dps_get(struct hub_store *store, enum hub_store_dps_table table,
                              const char *id, struct hub_dps_rec *out, struct hub_err *err);
int hub_store__sqlite_dps_delete(struct hub_store *store, enum hub_store_dps_table table,
                                 const char *id, const char *expected_etag, struct hub_err *err);
int hub_store__sqlite_dps_list1(struct hub_store *store, enum hub_store_dps_table table,
                                const char *group_id, struct hub_dps_rec_list **out_new,
                                struct hub_err *err);

#endif
