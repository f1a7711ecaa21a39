/*
 * store: SQLite schema and its migrations.
 *
 * The schema version is PRAGMA user_version. migrations[i] takes a database
 * from version i to i+1; each step runs in its own BEGIN IMMEDIATE
 * transaction that re-reads user_version first, so two processes opening the
 * same new file at once apply each step exactly once. Steps are append-only:
 * never edit a released one, add the next.
 *
 * Tables are STRICT (SQLite >= 3.37) so a type error in the backend is caught
 * by the engine instead of being stored; enums are stored as Azure's
 * spellings so the file reads on its own.
 */
#include "store/store_int.h"

#include <stddef.h>
#include <stdio.h>

#include "store/store.h"

static const char *const migrations[] = {
    /* 0 -> 1: CA certificates and device identities. */
    "CREATE TABLE ca_certs ("
    " name TEXT PRIMARY KEY NOT NULL,"
    " pem TEXT NOT NULL,"
    " subject TEXT NOT NULL,"
    " thumbprint_sha1 TEXT NOT NULL,"
    " thumbprint_sha256 TEXT NOT NULL,"
    " not_before INTEGER NOT NULL,"
    " not_after INTEGER NOT NULL,"
    " verified INTEGER NOT NULL CHECK (verified IN (0, 1)),"
    " verification_code TEXT NOT NULL DEFAULT '',"
    " code_expires INTEGER NOT NULL DEFAULT 0,"
    " etag TEXT NOT NULL,"
    " created INTEGER NOT NULL,"
    " updated INTEGER NOT NULL"
    ") STRICT;"
    "CREATE TABLE devices ("
    " id TEXT PRIMARY KEY NOT NULL,"
    " generation_id TEXT NOT NULL,"
    " etag TEXT NOT NULL,"
    " status TEXT NOT NULL CHECK (status IN ('enabled', 'disabled')),"
    " status_reason TEXT NOT NULL DEFAULT '',"
    " status_updated INTEGER NOT NULL DEFAULT 0,"
    " auth_type TEXT NOT NULL"
    "  CHECK (auth_type IN ('sas', 'selfSigned', 'certificateAuthority', 'none')),"
    " primary_key TEXT NOT NULL DEFAULT '',"
    " secondary_key TEXT NOT NULL DEFAULT '',"
    " primary_thumbprint TEXT NOT NULL DEFAULT '',"
    " secondary_thumbprint TEXT NOT NULL DEFAULT '',"
    " conn_state TEXT NOT NULL DEFAULT 'Disconnected'"
    "  CHECK (conn_state IN ('Disconnected', 'Connected')),"
    " conn_state_updated INTEGER NOT NULL DEFAULT 0,"
    " last_activity INTEGER NOT NULL DEFAULT 0,"
    " c2d_count INTEGER NOT NULL DEFAULT 0,"
    " iot_edge INTEGER NOT NULL DEFAULT 0 CHECK (iot_edge IN (0, 1)),"
    " created INTEGER NOT NULL,"
    " updated INTEGER NOT NULL"
    ") STRICT, WITHOUT ROWID;",

    /*
     * 1 -> 2: the telemetry log, C2D queues and their feedback.
     *
     * seq columns are AUTOINCREMENT so a seq is never reused, even after
     * retention emptied a table: a reader resuming "from=SEQ" never sees a
     * new message under an old number. The system-property columns (NULL =
     * absent) are HUB_SYSPROP_MAP as it stood at this step; a new property
     * needs a new step adding its column. Telemetry rows do not reference
     * devices (the log outlives a deleted device); C2D rows do, ON DELETE
     * CASCADE. The triggers keep devices.c2d_count equal to the queue length
     * in the same transaction as every change, by recounting (at most a
     * few dozen rows per device), so the count cannot drift.
     * IF NOT EXISTS: the step stays harmless if an operator rewinds
     * user_version by hand.
     */
    "CREATE TABLE IF NOT EXISTS telemetry ("
    " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    " device_id TEXT NOT NULL,"
    " module_id TEXT NOT NULL DEFAULT '',"
    " enqueued_ms INTEGER NOT NULL,"
    " body BLOB NOT NULL,"
    " app_props BLOB,"
    " message_id TEXT, correlation_id TEXT, user_id TEXT, msg_to TEXT, content_type TEXT,"
    " content_encoding TEXT, expiry TEXT, creation_time TEXT, interface_id TEXT,"
    " output_name TEXT, component TEXT, conn_device_id TEXT, conn_module_id TEXT,"
    " conn_auth_method TEXT, message_type TEXT"
    ") STRICT;"
    "CREATE INDEX IF NOT EXISTS telemetry_by_device ON telemetry (device_id, seq);"
    "CREATE INDEX IF NOT EXISTS telemetry_by_time ON telemetry (enqueued_ms);"
    "CREATE TABLE IF NOT EXISTS c2d_messages ("
    " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    " device_id TEXT NOT NULL REFERENCES devices (id) ON DELETE CASCADE,"
    " enqueued_ms INTEGER NOT NULL,"
    " expiry_ms INTEGER NOT NULL,"
    " ack TEXT NOT NULL CHECK (ack IN ('none', 'positive', 'negative', 'full')),"
    " body BLOB NOT NULL,"
    " app_props BLOB,"
    " message_id TEXT NOT NULL, correlation_id TEXT, user_id TEXT, msg_to TEXT,"
    " content_type TEXT, content_encoding TEXT, expiry TEXT, creation_time TEXT,"
    " interface_id TEXT, output_name TEXT, component TEXT, conn_device_id TEXT,"
    " conn_module_id TEXT, conn_auth_method TEXT, message_type TEXT,"
    " delivery_count INTEGER NOT NULL DEFAULT 0,"
    " lock_token TEXT,"
    " lock_expiry_ms INTEGER NOT NULL DEFAULT 0"
    ") STRICT;"
    "CREATE INDEX IF NOT EXISTS c2d_by_device ON c2d_messages (device_id, seq);"
    "CREATE INDEX IF NOT EXISTS c2d_by_expiry ON c2d_messages (expiry_ms);"
    "CREATE TABLE IF NOT EXISTS c2d_feedback ("
    " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    " original_message_id TEXT NOT NULL,"
    " device_id TEXT NOT NULL,"
    " device_generation_id TEXT NOT NULL,"
    " enqueued_ms INTEGER NOT NULL,"
    " status TEXT NOT NULL CHECK (status IN"
    "  ('Success', 'Expired', 'DeliveryCountExceeded', 'Rejected', 'Purged')),"
    " lock_token TEXT,"
    " lock_expiry_ms INTEGER NOT NULL DEFAULT 0"
    ") STRICT;"
    "CREATE INDEX IF NOT EXISTS c2d_feedback_by_lock ON c2d_feedback (lock_token);"
    "CREATE INDEX IF NOT EXISTS c2d_feedback_by_time ON c2d_feedback (enqueued_ms);"
    "CREATE TRIGGER IF NOT EXISTS c2d_count_on_insert AFTER INSERT ON c2d_messages BEGIN"
    " UPDATE devices SET c2d_count ="
    "  (SELECT count(*) FROM c2d_messages WHERE device_id = NEW.device_id)"
    " WHERE id = NEW.device_id;"
    " END;"
    "CREATE TRIGGER IF NOT EXISTS c2d_count_on_delete AFTER DELETE ON c2d_messages BEGIN"
    " UPDATE devices SET c2d_count ="
    "  (SELECT count(*) FROM c2d_messages WHERE device_id = OLD.device_id)"
    " WHERE id = OLD.device_id;"
    " END;"
    "UPDATE devices SET c2d_count ="
    " (SELECT count(*) FROM c2d_messages WHERE device_id = devices.id);",

    /*
     * 2 -> 3: device twins and the log of desired patches.
     *
     * A twin row is created by the registry on first access (a device
     * created before this step simply has none yet), so this step needs no
     * backfill. Sections are the twin layer's compact JSON text. Both tables
     * cascade from devices: deleting a device deletes its twin and log.
     */
    "CREATE TABLE IF NOT EXISTS twins ("
    " device_id TEXT PRIMARY KEY NOT NULL REFERENCES devices (id) ON DELETE CASCADE,"
    " etag TEXT NOT NULL,"
    " version INTEGER NOT NULL CHECK (version >= 1),"
    " desired_version INTEGER NOT NULL CHECK (desired_version >= 1),"
    " reported_version INTEGER NOT NULL CHECK (reported_version >= 1),"
    " tags TEXT NOT NULL,"
    " desired TEXT NOT NULL,"
    " desired_meta TEXT NOT NULL,"
    " reported TEXT NOT NULL,"
    " reported_meta TEXT NOT NULL,"
    " updated INTEGER NOT NULL"
    ") STRICT, WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS twin_desired_log ("
    " device_id TEXT NOT NULL REFERENCES devices (id) ON DELETE CASCADE,"
    " desired_version INTEGER NOT NULL,"
    " patch TEXT NOT NULL,"
    " at INTEGER NOT NULL,"
    " PRIMARY KEY (device_id, desired_version)"
    ") STRICT, WITHOUT ROWID;",

    /*
     * 3 -> 4: revocation and certificate expiry (issue 6).
     *
     * A CA's CRL lives in its row: it is part of the CA resource (its etag
     * changes with it, deleting the CA deletes it, a re-upload keeps it only
     * if the new certificate still verifies it: registry_ca.c). '' = none.
     * devices.x509_not_after is the notAfter of the certificate the device
     * last connected with (0 = never), a runtime column like conn_state.
     */
    "SELECT 1;" /* the columns: added_columns below (ALTER has no IF NOT EXISTS) */,

    /*
     * 4 -> 5: the provisioning service (issue 8): enrollment groups,
     * individual enrollments and registration states. The document is the
     * dps layer's JSON; the store keys, versions (etag) and orders it.
     * Registrations do not reference enrollments: Azure keeps a device's
     * registration state when its enrollment is deleted.
     */
    "CREATE TABLE IF NOT EXISTS dps_enrollment_groups ("
    " id TEXT PRIMARY KEY NOT NULL, etag TEXT NOT NULL, group_id TEXT NOT NULL DEFAULT '',"
    " body TEXT NOT NULL, created INTEGER NOT NULL, updated INTEGER NOT NULL"
    ") STRICT, WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS dps_enrollments ("
    " id TEXT PRIMARY KEY NOT NULL, etag TEXT NOT NULL, group_id TEXT NOT NULL DEFAULT '',"
    " body TEXT NOT NULL, created INTEGER NOT NULL, updated INTEGER NOT NULL"
    ") STRICT, WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS dps_registrations ("
    " id TEXT PRIMARY KEY NOT NULL, etag TEXT NOT NULL, group_id TEXT NOT NULL DEFAULT '',"
    " body TEXT NOT NULL, created INTEGER NOT NULL, updated INTEGER NOT NULL"
    ") STRICT, WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS dps_registrations_by_group ON dps_registrations (group_id, id);",
};

/*
 * Columns a step adds, applied before the step's SQL and only when the
 * table lacks them: SQLite's ALTER TABLE ADD COLUMN has no IF NOT EXISTS,
 * and a step must stay harmless when an operator rewinds user_version.
 * Append-only, like migrations[].
 */
static const struct {
    int step; /* index in migrations[]: applied when going from `step` to step+1 */
    const char *table;
    const char *column;
    const char *decl;
} added_columns[] = {
    {3, "ca_certs", "crl_pem", "TEXT NOT NULL DEFAULT ''"},
    {3, "ca_certs", "crl_this_update", "INTEGER NOT NULL DEFAULT 0"},
    {3, "ca_certs", "crl_next_update", "INTEGER NOT NULL DEFAULT 0"},
    {3, "ca_certs", "crl_revoked_count", "INTEGER NOT NULL DEFAULT 0"},
    {3, "ca_certs", "crl_updated", "INTEGER NOT NULL DEFAULT 0"},
    {3, "devices", "x509_not_after", "INTEGER NOT NULL DEFAULT 0"},
};

#define MIGRATIONS_COUNT ((int)(sizeof(migrations) / sizeof(migrations[0])))

int hub_store_sqlite_schema_version(void)
{
    return MIGRATIONS_COUNT;
}

static int user_version(sqlite3 *db, int *out, struct hub_err *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return hub_store__sqlite_err(db, rc, "reading the schema version", err);
    rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        int ret = hub_store__sqlite_err(db, rc, "reading the schema version", err);
        sqlite3_finalize(st);
        return ret;
    }
    *out = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return 0;
}

static int exec(sqlite3 *db, const char *sql, const char *what, struct hub_err *err)
{
    int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return hub_store__sqlite_err(db, rc, what, err);
    return 0;
}

/* 1 if `table` has `column`, 0 if not, negative on error. */
static int has_column(sqlite3 *db, const char *table, const char *column, struct hub_err *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, "SELECT count(*) FROM pragma_table_info(?1) WHERE name = ?2",
                                -1, &st, NULL);
    if (rc != SQLITE_OK)
        return hub_store__sqlite_err(db, rc, "reading a table's columns", err);
    sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, column, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    int ret = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) > 0
                               : hub_store__sqlite_err(db, rc, "reading a table's columns", err);
    sqlite3_finalize(st);
    return ret;
}

static int add_columns(sqlite3 *db, int step, struct hub_err *err)
{
    for (size_t i = 0; i < sizeof(added_columns) / sizeof(added_columns[0]); i++) {
        if (added_columns[i].step != step)
            continue;
        int rc = has_column(db, added_columns[i].table, added_columns[i].column, err);
        if (rc < 0)
            return rc;
        if (rc == 1)
            continue;
        char sql[256];
        snprintf(sql, sizeof(sql), "ALTER TABLE %s ADD COLUMN %s %s", added_columns[i].table,
                 added_columns[i].column, added_columns[i].decl);
        if ((rc = exec(db, sql, "adding a column", err)) != 0)
            return rc;
    }
    return 0;
}

/* Applies the step from `from` to from+1 unless another opener already did. */
static int migrate_step(sqlite3 *db, int from, struct hub_err *err)
{
    int rc = exec(db, "BEGIN IMMEDIATE", "starting a migration", err);
    if (rc != 0)
        return rc;
    int v = 0;
    rc = user_version(db, &v, err);
    if (rc != 0)
        goto rollback;
    if (v != from)
        goto commit; /* someone else moved it on */
    rc = add_columns(db, from, err);
    if (rc == 0)
        rc = exec(db, migrations[from], "applying a schema migration", err);
    if (rc != 0)
        goto rollback;
    char sql[64];
    snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", from + 1);
    rc = exec(db, sql, "setting the schema version", err);
    if (rc != 0)
        goto rollback;
commit:
    return exec(db, "COMMIT", "committing a migration", err);
rollback:
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

int hub_store__sqlite_migrate_to(sqlite3 *db, int target, struct hub_err *err)
{
    if (target < 0 || target > MIGRATIONS_COUNT)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "no schema version %d", target);
    for (;;) {
        int v = 0;
        int rc = user_version(db, &v, err);
        if (rc != 0)
            return rc;
        if (v < 0 || v > MIGRATIONS_COUNT)
            return HUB_ERR(err, HUB_E_STORE,
                           "database schema version %d is newer than this hubd knows (%d)", v,
                           MIGRATIONS_COUNT);
        if (v >= target)
            return 0;
        rc = migrate_step(db, v, err);
        if (rc != 0)
            return rc;
    }
}

int hub_store__sqlite_migrate(sqlite3 *db, struct hub_err *err)
{
    return hub_store__sqlite_migrate_to(db, MIGRATIONS_COUNT, err);
}
