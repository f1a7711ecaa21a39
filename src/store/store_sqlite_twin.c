/*
 * store: the SQLite backend's device twins (schema in store_migrate.c, step
 * 3; contract in store.h).
 *
 *   table twins            one row per device that has a twin; sections as
 *                          compact JSON text, opaque here
 *   table twin_desired_log (device_id, desired_version) -> the patch that
 *                          produced that desired $version; at most
 *                          HUB_STORE_TWIN_LOG_KEEP rows per device
 *
 * Both reference devices(id) ON DELETE CASCADE, so deleting a device drops
 * its twin and its log in the same transaction. A write is BEGIN IMMEDIATE,
 * check the etag, write, log, COMMIT: compare-and-swap that two writers
 * holding the same etag cannot both win.
 */
#include "store/store_int.h"

#include <stdlib.h>
#include <string.h>

#define TWIN_COLS                                                                                  \
    "etag, version, desired_version, reported_version, tags, desired, desired_meta, reported, "    \
    "reported_meta, updated"

/* Slots HUB_STORE__TWIN_STMT_BASE.. of the connection's statement cache.
 * Parameters of TW_INSERT/TW_UPDATE: ?1 device id, then TWIN_COLS in order. */
#define TWIN_STMT_MAP(X)                                                                           \
    X(TW_GET, "SELECT d.id, t.etag, t.version, t.desired_version, t.reported_version, t.tags,"     \
              " t.desired, t.desired_meta, t.reported, t.reported_meta, t.updated"                 \
              " FROM devices d LEFT JOIN twins t ON t.device_id = d.id WHERE d.id = ?1")           \
    X(TW_ETAG, "SELECT etag FROM twins WHERE device_id = ?1")                                      \
    X(TW_INSERT, "INSERT INTO twins (device_id, " TWIN_COLS ") VALUES"                             \
                 " (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)")                                \
    X(TW_UPDATE, "UPDATE twins SET etag = ?2, version = ?3, desired_version = ?4,"                 \
                 " reported_version = ?5, tags = ?6, desired = ?7, desired_meta = ?8,"             \
                 " reported = ?9, reported_meta = ?10, updated = ?11 WHERE device_id = ?1")        \
    X(LOG_INSERT,                                                                                  \
      "INSERT OR REPLACE INTO twin_desired_log (device_id, desired_version, patch, at)"            \
      " VALUES (?1, ?2, ?3, ?4)")                                                                  \
    X(LOG_PRUNE, "DELETE FROM twin_desired_log WHERE device_id = ?1 AND desired_version NOT IN"    \
                 " (SELECT desired_version FROM twin_desired_log WHERE device_id = ?1"             \
                 " ORDER BY desired_version DESC LIMIT ?2)")                                       \
    X(LOG_READ, "SELECT d.id, l.desired_version, l.patch, l.at FROM devices d"                     \
                " LEFT JOIN twin_desired_log l ON l.device_id = d.id AND l.desired_version > ?2"   \
                " WHERE d.id = ?1 ORDER BY l.desired_version")

enum twin_stmt_id {
#define TWIN_STMT_ENUM(name, sql) T_##name,
    TWIN_STMT_MAP(TWIN_STMT_ENUM)
#undef TWIN_STMT_ENUM
        T__COUNT
};

static const char *const twin_stmt_sql[T__COUNT] = {
#define TWIN_STMT_SQL(name, sql) [T_##name] = sql,
    TWIN_STMT_MAP(TWIN_STMT_SQL)
#undef TWIN_STMT_SQL
};

_Static_assert(HUB_STORE__TWIN_STMT_BASE + T__COUNT <= HUB_STORE__EXT_STMT_MAX,
               "raise HUB_STORE__EXT_STMT_MAX");

typedef struct hub_store__conn conn_t;

static int stmt(conn_t *c, enum twin_stmt_id id, sqlite3_stmt **out, struct hub_err *err)
{
    return hub_store__sqlite_stmt(c, HUB_STORE__TWIN_STMT_BASE + (int)id, twin_stmt_sql[id], out,
                                  err);
}

/* ---- get ------------------------------------------------------------------ */

/* The five sections of a row, copied into one block the record owns. */
static int read_texts(sqlite3_stmt *st, int first_col, struct hub_twin_rec *out,
                      struct hub_err *err)
{
    size_t lens[5], total = 0;
    for (int i = 0; i < 5; i++) {
        if (sqlite3_column_type(st, first_col + i) != SQLITE_TEXT)
            return HUB_ERR(err, HUB_E_STORE, "stored twin of '%s' has a damaged column %s",
                           out->device_id, sqlite3_column_name(st, first_col + i));
        lens[i] = (size_t)sqlite3_column_bytes(st, first_col + i);
        total += lens[i] + 1;
    }
    char *block = malloc(total);
    if (block == NULL)
        return HUB_ERR(err, HUB_E_NOMEM, "out of memory reading a twin");
    const char **dst[5] = {&out->tags, &out->desired, &out->desired_meta, &out->reported,
                           &out->reported_meta};
    char *p = block;
    for (int i = 0; i < 5; i++) {
        memcpy(p, sqlite3_column_text(st, first_col + i), lens[i]);
        p[lens[i]] = '\0';
        *dst[i] = p;
        p += lens[i] + 1;
    }
    out->owned_ = block;
    return 0;
}

int hub_store__sqlite_twin_get(struct hub_store *store, const char *id, struct hub_twin_rec *out,
                               struct hub_err *err)
{
    memset(out, 0, sizeof(*out));
    if (id == NULL || strlen(id) > HUB_DEVICE_ID_MAX)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "device id missing or too long");
    conn_t *c = NULL;
    int rc = hub_store__sqlite_acquire(store, &c, err);
    if (rc != 0)
        return rc;
    sqlite3_stmt *st = NULL;
    if ((rc = stmt(c, T_TW_GET, &st, err)) != 0)
        goto release;
    hub_store__bind_text(st, 1, id);
    int step = sqlite3_step(st);
    if (step == SQLITE_DONE) {
        rc = HUB_ERR(err, HUB_E_NOT_FOUND, "device '%.128s' not found", id);
    } else if (step != SQLITE_ROW) {
        rc = hub_store__step_err(c, step, "reading a twin", err);
    } else {
        memcpy(out->device_id, id, strlen(id) + 1);
        if (sqlite3_column_type(st, 1) != SQLITE_NULL) {
            const unsigned char *etag = sqlite3_column_text(st, 1);
            size_t n = (size_t)sqlite3_column_bytes(st, 1);
            if (etag == NULL || n == 0 || n >= sizeof(out->etag)) {
                rc = HUB_ERR(err, HUB_E_STORE, "stored twin of '%.128s' has a damaged etag", id);
            } else {
                memcpy(out->etag, etag, n + 1);
                out->version = sqlite3_column_int64(st, 2);
                out->desired_version = sqlite3_column_int64(st, 3);
                out->reported_version = sqlite3_column_int64(st, 4);
                out->updated = sqlite3_column_int64(st, 10);
                rc = read_texts(st, 5, out, err);
                if (rc == 0 && out->version < 1)
                    rc = HUB_ERR(err, HUB_E_STORE, "stored twin of '%.128s' has version %lld", id,
                                 (long long)out->version);
            }
        }
    }
    hub_store__stmt_done(st);
release:
    hub_store__sqlite_release(store, c);
    if (rc != 0)
        hub_twin_rec_clear(out);
    return rc;
}

/* ---- write ------------------------------------------------------------------ */

static int bind_rec(sqlite3_stmt *st, const struct hub_twin_rec *rec)
{
    int rc = SQLITE_OK;
    rc |= hub_store__bind_text(st, 1, rec->device_id);
    rc |= hub_store__bind_text(st, 2, rec->etag);
    rc |= sqlite3_bind_int64(st, 3, rec->version);
    rc |= sqlite3_bind_int64(st, 4, rec->desired_version);
    rc |= sqlite3_bind_int64(st, 5, rec->reported_version);
    rc |= hub_store__bind_text(st, 6, rec->tags);
    rc |= hub_store__bind_text(st, 7, rec->desired);
    rc |= hub_store__bind_text(st, 8, rec->desired_meta);
    rc |= hub_store__bind_text(st, 9, rec->reported);
    rc |= hub_store__bind_text(st, 10, rec->reported_meta);
    rc |= sqlite3_bind_int64(st, 11, rec->updated);
    return rc;
}

static int rec_check(const struct hub_twin_rec *rec, struct hub_err *err)
{
    if (memchr(rec->device_id, '\0', sizeof(rec->device_id)) == NULL || rec->device_id[0] == '\0')
        return HUB_ERR(err, HUB_E_INVALID_ARG, "twin record has no device id");
    if (memchr(rec->etag, '\0', sizeof(rec->etag)) == NULL || rec->etag[0] == '\0')
        return HUB_ERR(err, HUB_E_INVALID_ARG, "twin record has no etag");
    if (rec->version < 1 || rec->desired_version < 1 || rec->reported_version < 1)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "twin record versions must be >= 1");
    if (rec->tags == NULL || rec->desired == NULL || rec->desired_meta == NULL ||
        rec->reported == NULL || rec->reported_meta == NULL)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "twin record lacks a section");
    return 0;
}

/* Checks the CAS condition inside the open transaction. */
static int etag_check(conn_t *c, const struct hub_twin_rec *rec, const char *expected,
                      struct hub_err *err)
{
    sqlite3_stmt *st = NULL;
    int rc = stmt(c, T_TW_ETAG, &st, err);
    if (rc != 0)
        return rc;
    hub_store__bind_text(st, 1, rec->device_id);
    int step = sqlite3_step(st);
    if (step == SQLITE_DONE)
        rc = HUB_ERR(err, HUB_E_NOT_FOUND, "twin of device '%s' not found", rec->device_id);
    else if (step != SQLITE_ROW)
        rc = hub_store__step_err(c, step, "reading a twin etag", err);
    else if (strcmp((const char *)sqlite3_column_text(st, 0), expected) != 0)
        rc = HUB_ERR(err, HUB_E_ETAG_MISMATCH,
                     "twin of device '%s' has changed (etag %s, expected %.40s)", rec->device_id,
                     (const char *)sqlite3_column_text(st, 0), expected);
    hub_store__stmt_done(st);
    return rc;
}

static int log_append(conn_t *c, const struct hub_twin_rec *rec, const char *patch,
                      struct hub_err *err)
{
    sqlite3_stmt *st = NULL;
    int rc = stmt(c, T_LOG_INSERT, &st, err);
    if (rc != 0)
        return rc;
    hub_store__bind_text(st, 1, rec->device_id);
    sqlite3_bind_int64(st, 2, rec->desired_version);
    hub_store__bind_text(st, 3, patch);
    sqlite3_bind_int64(st, 4, rec->updated);
    int step = sqlite3_step(st);
    hub_store__stmt_done(st);
    if (step != SQLITE_DONE)
        return hub_store__step_err(c, step, "logging a desired patch", err);
    if ((rc = stmt(c, T_LOG_PRUNE, &st, err)) != 0)
        return rc;
    hub_store__bind_text(st, 1, rec->device_id);
    sqlite3_bind_int64(st, 2, HUB_STORE_TWIN_LOG_KEEP);
    step = sqlite3_step(st);
    hub_store__stmt_done(st);
    if (step != SQLITE_DONE)
        return hub_store__step_err(c, step, "pruning the desired patch log", err);
    return 0;
}

int hub_store__sqlite_twin_write(struct hub_store *store, const struct hub_twin_rec *rec,
                                 const char *expected_etag, const char *desired_patch,
                                 struct hub_err *err)
{
    int rc = rec_check(rec, err);
    if (rc != 0)
        return rc;
    conn_t *c = NULL;
    if ((rc = hub_store__sqlite_acquire(store, &c, err)) != 0)
        return rc;
    if ((rc = hub_store__sqlite_begin(c, err)) != 0)
        goto release;
    if (expected_etag != NULL && (rc = etag_check(c, rec, expected_etag, err)) != 0)
        goto rollback;
    sqlite3_stmt *st = NULL;
    if ((rc = stmt(c, expected_etag != NULL ? T_TW_UPDATE : T_TW_INSERT, &st, err)) != 0)
        goto rollback;
    if (bind_rec(st, rec) != SQLITE_OK) {
        hub_store__stmt_done(st);
        rc = HUB_ERR(err, HUB_E_STORE, "binding a twin row: %s",
                     sqlite3_errmsg(hub_store__sqlite_db(c)));
        goto rollback;
    }
    int step = sqlite3_step(st);
    hub_store__stmt_done(st);
    if (step == SQLITE_CONSTRAINT_PRIMARYKEY) {
        rc = HUB_ERR(err, HUB_E_EXISTS, "device '%s' already has a twin", rec->device_id);
        goto rollback;
    }
    if (step == SQLITE_CONSTRAINT_FOREIGNKEY) {
        rc = HUB_ERR(err, HUB_E_NOT_FOUND, "device '%s' not found", rec->device_id);
        goto rollback;
    }
    if (step != SQLITE_DONE) {
        rc = hub_store__step_err(c, step, "writing a twin", err);
        goto rollback;
    }
    if (desired_patch != NULL && (rc = log_append(c, rec, desired_patch, err)) != 0)
        goto rollback;
    rc = hub_store__sqlite_commit(c, err);
    goto release;
rollback:
    hub_store__sqlite_rollback(c);
release:
    hub_store__sqlite_release(store, c);
    return rc;
}

/* ---- log ---------------------------------------------------------------------- */

int hub_store__sqlite_twin_log_read1(struct hub_store *store, const char *id, int64_t after_version,
                                     struct hub_twin_log **out_new, struct hub_err *err)
{
    struct hub_twin_log *log = calloc(1, sizeof(*log));
    if (log == NULL)
        return HUB_ERR(err, HUB_E_NOMEM, "out of memory reading the desired patch log");
    conn_t *c = NULL;
    int rc = hub_store__sqlite_acquire(store, &c, err);
    if (rc != 0)
        goto free_log;
    sqlite3_stmt *st = NULL;
    if ((rc = stmt(c, T_LOG_READ, &st, err)) != 0)
        goto release;
    hub_store__bind_text(st, 1, id);
    sqlite3_bind_int64(st, 2, after_version);
    bool device = false;
    for (;;) {
        int step = sqlite3_step(st);
        if (step == SQLITE_DONE)
            break;
        if (step != SQLITE_ROW) {
            rc = hub_store__step_err(c, step, "reading the desired patch log", err);
            break;
        }
        device = true;
        if (sqlite3_column_type(st, 1) == SQLITE_NULL)
            continue; /* the device, without (newer) log rows */
        /* At most HUB_STORE_TWIN_LOG_KEEP rows per device exist. */
        if (log->count == HUB_STORE_TWIN_LOG_KEEP * 2) {
            rc = HUB_ERR(err, HUB_E_STORE, "desired patch log of '%.128s' is overlong", id);
            break;
        }
        struct hub_twin_log_entry *n = realloc(log->items, (log->count + 1) * sizeof(*n));
        if (n == NULL) {
            rc = HUB_ERR(err, HUB_E_NOMEM, "out of memory reading the desired patch log");
            break;
        }
        log->items = n;
        const char *patch = (const char *)sqlite3_column_text(st, 2);
        char *copy = patch != NULL ? strdup(patch) : NULL;
        if (copy == NULL) {
            rc = HUB_ERR(err, HUB_E_NOMEM, "out of memory reading the desired patch log");
            break;
        }
        n[log->count].desired_version = sqlite3_column_int64(st, 1);
        n[log->count].patch = copy;
        n[log->count].at = sqlite3_column_int64(st, 3);
        log->count++;
    }
    hub_store__stmt_done(st);
    if (rc == 0 && !device)
        rc = HUB_ERR(err, HUB_E_NOT_FOUND, "device '%.128s' not found", id);
release:
    hub_store__sqlite_release(store, c);
    if (rc == 0) {
        *out_new = log;
        return 0;
    }
free_log:
    hub_twin_log_free(log);
    return rc;
}
