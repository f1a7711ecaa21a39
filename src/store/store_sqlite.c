/*
 * store: the SQLite backend.
 *
 * Connection pool: SQLite connections are not to be used by two threads at
 * once, and one shared connection would serialize every reader behind every
 * writer. So each call checks out a connection from a pool (opened lazily,
 * at most max_connections), uses it alone, and returns it. Each connection
 * caches its prepared statements (SQLITE_PREPARE_PERSISTENT), so the device
 * lookup on every handshake costs no parsing. WAL lets the pool's readers
 * run while one connection writes; writers wait on SQLite's lock for up to
 * busy_timeout_ms. Writes that read first (conditional update, insert with a
 * limit) run in BEGIN IMMEDIATE so they take the write lock up front and
 * cannot fail with SQLITE_BUSY on an upgrade half-way through.
 */
#include "store/store.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "common/util.h"
#include "store/store_int.h"

#define DEFAULT_BUSY_TIMEOUT_MS 5000
#define DEFAULT_MAX_CONNECTIONS 8

/* ---- statements ---------------------------------------------------------- */

#define CA_COLS                                                                                    \
    "name, pem, subject, thumbprint_sha1, thumbprint_sha256, not_before, not_after, verified, "    \
    "verification_code, code_expires, etag, created, updated, crl_pem, crl_this_update, "          \
    "crl_next_update, crl_revoked_count, crl_updated"
#define DEVICE_COLS                                                                                \
    "id, generation_id, etag, status, status_reason, status_updated, auth_type, primary_key, "     \
    "secondary_key, primary_thumbprint, secondary_thumbprint, conn_state, conn_state_updated, "    \
    "last_activity, c2d_count, iot_edge, created, updated, x509_not_after"

/* X(NAME, SQL): one cached statement per row. Parameter ?N in the CA and
 * device statements is column N of CA_COLS / DEVICE_COLS. DEV_UPDATE leaves
 * c2d_count (?15) alone: triggers keep it equal to the C2D queue's length
 * (store_migrate.c, step 2), and a read-modify-write of the identity must not
 * put back a count read before a message was enqueued. */
#define STMT_MAP(X)                                                                                \
    X(BEGIN, "BEGIN IMMEDIATE")                                                                    \
    X(COMMIT, "COMMIT")                                                                            \
    X(ROLLBACK, "ROLLBACK")                                                                        \
    X(CA_EXISTS, "SELECT etag FROM ca_certs WHERE name = ?1")                                      \
    X(CA_COUNT, "SELECT count(*) FROM ca_certs")                                                   \
    X(CA_INSERT, "INSERT INTO ca_certs (" CA_COLS ") VALUES "                                      \
                 "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, "   \
                 "?18)")                                                                           \
    X(CA_GET, "SELECT " CA_COLS " FROM ca_certs WHERE name = ?1")                                  \
    X(CA_UPDATE, "UPDATE ca_certs SET pem = ?2, subject = ?3, thumbprint_sha1 = ?4, "              \
                 "thumbprint_sha256 = ?5, not_before = ?6, not_after = ?7, verified = ?8, "        \
                 "verification_code = ?9, code_expires = ?10, etag = ?11, created = ?12, "         \
                 "updated = ?13, crl_pem = ?14, crl_this_update = ?15, crl_next_update = ?16, "    \
                 "crl_revoked_count = ?17, crl_updated = ?18 WHERE name = ?1")                     \
    X(CA_DELETE, "DELETE FROM ca_certs WHERE name = ?1")                                           \
    X(CA_LIST, "SELECT " CA_COLS " FROM ca_certs WHERE ?1 = 0 OR verified = 1 ORDER BY name")      \
    X(DEV_EXISTS, "SELECT etag FROM devices WHERE id = ?1")                                        \
    X(DEV_INSERT, "INSERT INTO devices (" DEVICE_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, "     \
                  "?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)")                     \
    X(DEV_GET, "SELECT " DEVICE_COLS " FROM devices WHERE id = ?1")                                \
    X(DEV_UPDATE, "UPDATE devices SET generation_id = ?2, etag = ?3, status = ?4, "                \
                  "status_reason = ?5, status_updated = ?6, auth_type = ?7, primary_key = ?8, "    \
                  "secondary_key = ?9, primary_thumbprint = ?10, secondary_thumbprint = ?11, "     \
                  "conn_state = ?12, conn_state_updated = ?13, last_activity = ?14, "              \
                  "iot_edge = ?16, created = ?17, updated = ?18 WHERE id = ?1")                    \
    X(DEV_DELETE, "DELETE FROM devices WHERE id = ?1")                                             \
    X(DEV_LIST, "SELECT " DEVICE_COLS " FROM devices WHERE id > ?1"                                \
                " AND (?2 IS NULL OR status = ?2) AND (?3 IS NULL OR auth_type = ?3)"              \
                " AND (?4 IS NULL OR conn_state = ?4) ORDER BY id LIMIT ?5")                       \
    /* Connecting is activity (Azure's lastActivityTime): one write, not two. */                   \
    X(DEV_CONN, "UPDATE devices SET conn_state = ?2, conn_state_updated = ?3, last_activity = "    \
                "CASE WHEN ?2 = 'Connected' THEN max(last_activity, ?3) ELSE last_activity END "   \
                "WHERE id = ?1")                                                                   \
    X(DEV_TOUCH, "UPDATE devices SET last_activity = max(last_activity, ?2) WHERE id = ?1")        \
    X(DEV_CERT_EXPIRY, "UPDATE devices SET x509_not_after = ?2 WHERE id = ?1")

enum stmt_id {
#define STMT_ENUM(name, sql) STMT_##name,
    STMT_MAP(STMT_ENUM)
#undef STMT_ENUM
        STMT__COUNT
};

static const char *const stmt_sql[STMT__COUNT] = {
#define STMT_SQL(name, sql) [STMT_##name] = sql,
    STMT_MAP(STMT_SQL)
#undef STMT_SQL
};

/* ---- pool ---------------------------------------------------------------- */

struct sqlite_store;

struct conn {
    sqlite3 *db;
    sqlite3_stmt *stmts[STMT__COUNT];
    sqlite3_stmt *ext_stmts[HUB_STORE__EXT_STMT_MAX]; /* other files' statements, by slot */
    struct sqlite_store *owner;
    struct conn *next;
};

struct sqlite_store {
    struct hub_store super;
    char *path;
    int busy_timeout_ms;
    size_t max_connections;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct conn *idle;     /* guarded by mu */
    size_t open_count;     /* guarded by mu: idle + checked out + being opened */
    unsigned fail_commits; /* guarded by mu: test fault injection */
    /* Runtime columns (conn_state, last_activity, x509_not_after) are
     * written on a connection of their own, opened lazily, with
     * synchronous = OFF: see device_runtime_update. */
    pthread_mutex_t rt_mu;
    struct conn *rt; /* guarded by rt_mu */
};

int hub_store__sqlite_err(sqlite3 *db, int rc, const char *what, struct hub_err *err)
{
    const char *msg = db != NULL ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return HUB_ERR(err, HUB_E_BUSY, "%s: database busy (%s)", what, msg);
    case SQLITE_NOMEM:
        return HUB_ERR(err, HUB_E_NOMEM, "%s: out of memory", what);
    /* The data dir cannot take a write (disk full, read-only, failing or
     * vanished): the statement changed nothing and a retry may succeed once
     * the operator fixes the disk, so all of these are HUB_E_IO (an API
     * 503, no PUBACK), never the HUB_E_STORE of a damaged row. */
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_READONLY:
    case SQLITE_CANTOPEN:
        return HUB_ERR(err, HUB_E_IO, "%s: %s", what, msg);
    default:
        return HUB_ERR(err, HUB_E_STORE, "%s: %s", what, msg);
    }
}

static void conn_close(struct conn *c)
{
    if (c == NULL)
        return;
    for (int i = 0; i < STMT__COUNT; i++)
        sqlite3_finalize(c->stmts[i]);
    for (int i = 0; i < HUB_STORE__EXT_STMT_MAX; i++)
        sqlite3_finalize(c->ext_stmts[i]);
    sqlite3_close(c->db);
    free(c);
}

static int exec_pragma(sqlite3 *db, const char *sql, struct hub_err *err)
{
    int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return hub_store__sqlite_err(db, rc, sql, err);
    return 0;
}

static int conn_open_sync(struct sqlite_store *s, const char *sync_pragma, struct conn **out,
                          struct hub_err *err);

static int conn_open(struct sqlite_store *s, struct conn **out, struct hub_err *err)
{
    return conn_open_sync(s, "PRAGMA synchronous = FULL", out, err);
}

static int conn_open_sync(struct sqlite_store *s, const char *sync_pragma, struct conn **out,
                          struct hub_err *err)
{
    struct conn *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return HUB_ERR(err, HUB_E_NOMEM, "out of memory opening the database");
    c->owner = s;
    /* NOMUTEX: the pool guarantees one thread per connection at a time. */
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    int rc = sqlite3_open_v2(s->path, &c->db, flags, NULL);
    int ret = 0;
    if (rc != SQLITE_OK) {
        ret = HUB_ERR(err, rc == SQLITE_NOMEM ? HUB_E_NOMEM : HUB_E_STORE,
                      "cannot open database %s: %s", s->path,
                      c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
        goto free_conn;
    }
    sqlite3_extended_result_codes(c->db, 1);
    sqlite3_busy_timeout(c->db, s->busy_timeout_ms);
    /* journal_mode is persistent in the file; the others are per connection. */
    if ((ret = exec_pragma(c->db, "PRAGMA journal_mode = WAL", err)) != 0 ||
        (ret = exec_pragma(c->db, sync_pragma, err)) != 0 ||
        (ret = exec_pragma(c->db, "PRAGMA foreign_keys = ON", err)) != 0)
        goto free_conn;
    *out = c;
    return 0;
free_conn:
    conn_close(c);
    return ret;
}

static int conn_acquire(struct sqlite_store *s, struct conn **out, struct hub_err *err)
{
    pthread_mutex_lock(&s->mu);
    for (;;) {
        if (s->idle != NULL) {
            struct conn *c = s->idle;
            s->idle = c->next;
            c->next = NULL;
            pthread_mutex_unlock(&s->mu);
            *out = c;
            return 0;
        }
        if (s->open_count < s->max_connections)
            break;
        pthread_cond_wait(&s->cv, &s->mu);
    }
    s->open_count++;
    pthread_mutex_unlock(&s->mu);

    int rc = conn_open(s, out, err);
    if (rc != 0) {
        pthread_mutex_lock(&s->mu);
        s->open_count--;
        pthread_cond_signal(&s->cv);
        pthread_mutex_unlock(&s->mu);
    }
    return rc;
}

static void conn_release(struct sqlite_store *s, struct conn *c)
{
    /* An error path may have left a transaction open; never hand that on. */
    if (!sqlite3_get_autocommit(c->db))
        sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
    pthread_mutex_lock(&s->mu);
    c->next = s->idle;
    s->idle = c;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

/* The cached statement `id`, reset and with no bindings. */
static int stmt(struct conn *c, enum stmt_id id, sqlite3_stmt **out, struct hub_err *err)
{
    if (c->stmts[id] == NULL) {
        int rc = sqlite3_prepare_v3(c->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
                                    &c->stmts[id], NULL);
        if (rc != SQLITE_OK)
            return hub_store__sqlite_err(c->db, rc, "preparing a statement", err);
    }
    *out = c->stmts[id];
    return 0;
}

void hub_store__stmt_done(sqlite3_stmt *st)
{
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

int hub_store__bind_text(sqlite3_stmt *st, int i, const char *v)
{
    return sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC); /* NULL binds SQL NULL */
}

int hub_store__step_err(struct hub_store__conn *conn, int rc, const char *what, struct hub_err *err)
{
    return hub_store__sqlite_err(hub_store__sqlite_db(conn), rc, what, err);
}

int hub_store__exec(struct hub_store__conn *conn, sqlite3_stmt *st, const char *what,
                    size_t *changes_out, struct hub_err *err)
{
    int rc = sqlite3_step(st);
    int ret = rc == SQLITE_DONE ? 0 : hub_store__step_err(conn, rc, what, err);
    if (ret == 0 && changes_out != NULL)
        *changes_out = (size_t)sqlite3_changes(hub_store__sqlite_db(conn));
    hub_store__stmt_done(st);
    return ret;
}

/* Runs a statement that returns no rows. */
static int run(struct conn *c, enum stmt_id id, const char *what, struct hub_err *err)
{
    sqlite3_stmt *st = NULL;
    int rc = stmt(c, id, &st, err);
    if (rc != 0)
        return rc;
    rc = sqlite3_step(st);
    int ret = rc == SQLITE_DONE ? 0 : hub_store__sqlite_err(c->db, rc, what, err);
    hub_store__stmt_done(st);
    return ret;
}

static int txn_begin(struct conn *c, struct hub_err *err)
{
    return run(c, STMT_BEGIN, "starting a transaction", err);
}

/* Whether an injected fault should fail this commit (and consumes it). */
static bool take_commit_fault(struct sqlite_store *s)
{
    pthread_mutex_lock(&s->mu);
    bool fail = s->fail_commits > 0;
    if (fail)
        s->fail_commits--;
    pthread_mutex_unlock(&s->mu);
    return fail;
}

static int txn_commit(struct conn *c, struct hub_err *err)
{
    if (c->owner != NULL && take_commit_fault(c->owner)) {
        run(c, STMT_ROLLBACK, "rolling back", NULL);
        return HUB_ERR(err, HUB_E_IO, "committing: injected I/O fault");
    }
    return run(c, STMT_COMMIT, "committing", err);
}

static void txn_rollback(struct conn *c)
{
    run(c, STMT_ROLLBACK, "rolling back", NULL);
}

/* ---- what store_sqlite_msg.c uses (store_int.h) -------------------------- */

/* A struct hub_store__conn * is a struct conn * the other files cannot look into. */
#define CONN(x) ((struct conn *)(x))

int hub_store__sqlite_acquire(struct hub_store *store, struct hub_store__conn **out,
                              struct hub_err *err)
{
    struct conn *c = NULL;
    int rc = conn_acquire((struct sqlite_store *)store, &c, err);
    if (rc == 0)
        *out = (struct hub_store__conn *)c;
    return rc;
}

void hub_store__sqlite_release(struct hub_store *store, struct hub_store__conn *conn)
{
    conn_release((struct sqlite_store *)store, CONN(conn));
}

sqlite3 *hub_store__sqlite_db(struct hub_store__conn *conn)
{
    return CONN(conn)->db;
}

int hub_store__sqlite_stmt(struct hub_store__conn *conn, int slot, const char *sql,
                           sqlite3_stmt **out, struct hub_err *err)
{
    struct conn *c = CONN(conn);
    if (slot < 0 || slot >= HUB_STORE__EXT_STMT_MAX)
        return HUB_ERR(err, HUB_E_INTERNAL, "statement slot %d out of range", slot);
    if (c->ext_stmts[slot] == NULL) {
        int rc = sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &c->ext_stmts[slot],
                                    NULL);
        if (rc != SQLITE_OK)
            return hub_store__sqlite_err(c->db, rc, "preparing a statement", err);
    }
    *out = c->ext_stmts[slot];
    return 0;
}

int hub_store__sqlite_begin(struct hub_store__conn *conn, struct hub_err *err)
{
    return txn_begin(CONN(conn), err);
}

int hub_store__sqlite_commit(struct hub_store__conn *conn, struct hub_err *err)
{
    return txn_commit(CONN(conn), err);
}

void hub_store__sqlite_rollback(struct hub_store__conn *conn)
{
    txn_rollback(CONN(conn));
}

/* ---- binding and reading columns ----------------------------------------- */

/* Copies TEXT column i into out[cap]; a value that does not fit means the row
 * was not written by us (or the file is damaged): refuse it, never truncate. */
static int col_text(sqlite3_stmt *st, int i, char *out, size_t cap, struct hub_err *err)
{
    const unsigned char *v = sqlite3_column_text(st, i);
    int n = sqlite3_column_bytes(st, i);
    if (v == NULL) {
        out[0] = '\0';
        return 0;
    }
    if ((size_t)n >= cap)
        return HUB_ERR(err, HUB_E_STORE, "stored column %s is too long (%d bytes)",
                       sqlite3_column_name(st, i), n);
    memcpy(out, v, (size_t)n);
    out[n] = '\0';
    return 0;
}

static int bind_ca(sqlite3_stmt *st, const struct hub_ca_cert *ca)
{
    int rc = SQLITE_OK;
    rc |= hub_store__bind_text(st, 1, ca->name);
    rc |= hub_store__bind_text(st, 2, ca->pem);
    rc |= hub_store__bind_text(st, 3, ca->subject);
    rc |= hub_store__bind_text(st, 4, ca->thumbprint_sha1);
    rc |= hub_store__bind_text(st, 5, ca->thumbprint_sha256);
    rc |= sqlite3_bind_int64(st, 6, ca->not_before);
    rc |= sqlite3_bind_int64(st, 7, ca->not_after);
    rc |= sqlite3_bind_int(st, 8, ca->verified ? 1 : 0);
    rc |= hub_store__bind_text(st, 9, ca->verification_code);
    rc |= sqlite3_bind_int64(st, 10, ca->code_expires);
    rc |= hub_store__bind_text(st, 11, ca->etag);
    rc |= sqlite3_bind_int64(st, 12, ca->created);
    rc |= sqlite3_bind_int64(st, 13, ca->updated);
    rc |= hub_store__bind_text(st, 14, ca->crl_pem != NULL ? ca->crl_pem : "");
    rc |= sqlite3_bind_int64(st, 15, ca->crl_this_update);
    rc |= sqlite3_bind_int64(st, 16, ca->crl_next_update);
    rc |= sqlite3_bind_int64(st, 17, ca->crl_revoked_count);
    rc |= sqlite3_bind_int64(st, 18, ca->crl_updated);
    return rc;
}

/* Fills *ca (zeroed by the caller) from the current row; on failure frees what it set. */
static int read_ca(sqlite3_stmt *st, struct hub_ca_cert *ca, struct hub_err *err)
{
    int rc;
    if ((rc = col_text(st, 0, ca->name, sizeof(ca->name), err)) != 0 ||
        (rc = col_text(st, 2, ca->subject, sizeof(ca->subject), err)) != 0 ||
        (rc = col_text(st, 3, ca->thumbprint_sha1, sizeof(ca->thumbprint_sha1), err)) != 0 ||
        (rc = col_text(st, 4, ca->thumbprint_sha256, sizeof(ca->thumbprint_sha256), err)) != 0 ||
        (rc = col_text(st, 8, ca->verification_code, sizeof(ca->verification_code), err)) != 0 ||
        (rc = col_text(st, 10, ca->etag, sizeof(ca->etag), err)) != 0)
        return rc;
    const unsigned char *pem = sqlite3_column_text(st, 1);
    int pem_len = sqlite3_column_bytes(st, 1);
    ca->pem = malloc((size_t)pem_len + 1);
    if (ca->pem == NULL)
        return HUB_ERR(err, HUB_E_NOMEM, "out of memory reading a CA certificate");
    if (pem != NULL)
        memcpy(ca->pem, pem, (size_t)pem_len);
    ca->pem[pem_len] = '\0';
    ca->not_before = sqlite3_column_int64(st, 5);
    ca->not_after = sqlite3_column_int64(st, 6);
    ca->verified = sqlite3_column_int(st, 7) != 0;
    ca->code_expires = sqlite3_column_int64(st, 9);
    ca->created = sqlite3_column_int64(st, 11);
    ca->updated = sqlite3_column_int64(st, 12);
    const unsigned char *crl = sqlite3_column_text(st, 13);
    int crl_len = sqlite3_column_bytes(st, 13);
    if (crl != NULL && crl_len > 0) {
        ca->crl_pem = malloc((size_t)crl_len + 1);
        if (ca->crl_pem == NULL) {
            free(ca->pem);
            ca->pem = NULL;
            return HUB_ERR(err, HUB_E_NOMEM, "out of memory reading a CA certificate");
        }
        memcpy(ca->crl_pem, crl, (size_t)crl_len);
        ca->crl_pem[crl_len] = '\0';
    }
    ca->crl_this_update = sqlite3_column_int64(st, 14);
    ca->crl_next_update = sqlite3_column_int64(st, 15);
    ca->crl_revoked_count = sqlite3_column_int64(st, 16);
    ca->crl_updated = sqlite3_column_int64(st, 17);
    return 0;
}

static int bind_device(sqlite3_stmt *st, const struct hub_device *d)
{
    int rc = SQLITE_OK;
    rc |= hub_store__bind_text(st, 1, d->id);
    rc |= hub_store__bind_text(st, 2, d->generation_id);
    rc |= hub_store__bind_text(st, 3, d->etag);
    rc |= hub_store__bind_text(st, 4, hub_device_status_name(d->status));
    rc |= hub_store__bind_text(st, 5, d->status_reason);
    rc |= sqlite3_bind_int64(st, 6, d->status_updated);
    rc |= hub_store__bind_text(st, 7, hub_auth_type_name(d->auth_type));
    rc |= hub_store__bind_text(st, 8, d->primary_key);
    rc |= hub_store__bind_text(st, 9, d->secondary_key);
    rc |= hub_store__bind_text(st, 10, d->primary_thumbprint);
    rc |= hub_store__bind_text(st, 11, d->secondary_thumbprint);
    rc |= hub_store__bind_text(st, 12, hub_conn_state_name(d->conn_state));
    rc |= sqlite3_bind_int64(st, 13, d->conn_state_updated);
    rc |= sqlite3_bind_int64(st, 14, d->last_activity);
    rc |= sqlite3_bind_int64(st, 15, d->c2d_count);
    rc |= sqlite3_bind_int(st, 16, d->iot_edge ? 1 : 0);
    rc |= sqlite3_bind_int64(st, 17, d->created);
    rc |= sqlite3_bind_int64(st, 18, d->updated);
    /* x509_not_after (?19) is a runtime column: DEV_INSERT stores it,
     * DEV_UPDATE has no ?19 (a read-modify-write of the identity must not put
     * back a value read before the device reconnected). */
    if (sqlite3_bind_parameter_count(st) >= 19)
        rc |= sqlite3_bind_int64(st, 19, d->x509_not_after);
    return rc;
}

static int read_device(sqlite3_stmt *st, struct hub_device *d, struct hub_err *err)
{
    memset(d, 0, sizeof(*d));
    int rc;
    if ((rc = col_text(st, 0, d->id, sizeof(d->id), err)) != 0 ||
        (rc = col_text(st, 1, d->generation_id, sizeof(d->generation_id), err)) != 0 ||
        (rc = col_text(st, 2, d->etag, sizeof(d->etag), err)) != 0 ||
        (rc = col_text(st, 4, d->status_reason, sizeof(d->status_reason), err)) != 0 ||
        (rc = col_text(st, 7, d->primary_key, sizeof(d->primary_key), err)) != 0 ||
        (rc = col_text(st, 8, d->secondary_key, sizeof(d->secondary_key), err)) != 0 ||
        (rc = col_text(st, 9, d->primary_thumbprint, sizeof(d->primary_thumbprint), err)) != 0 ||
        (rc = col_text(st, 10, d->secondary_thumbprint, sizeof(d->secondary_thumbprint), err)) != 0)
        return rc;
    /* The CHECK constraints keep these in range; a failure here is a damaged file. */
    const char *s = (const char *)sqlite3_column_text(st, 3);
    const char *a = (const char *)sqlite3_column_text(st, 6);
    const char *cs = (const char *)sqlite3_column_text(st, 11);
    if (hub_device_status_parse(s, &d->status, err) != 0 ||
        hub_auth_type_parse(a, &d->auth_type, err) != 0 ||
        hub_conn_state_parse(cs, &d->conn_state, err) != 0)
        return HUB_ERR(err, HUB_E_STORE, "stored device row has an unknown enum value");
    d->status_updated = sqlite3_column_int64(st, 5);
    d->conn_state_updated = sqlite3_column_int64(st, 12);
    d->last_activity = sqlite3_column_int64(st, 13);
    d->c2d_count = sqlite3_column_int64(st, 14);
    d->iot_edge = sqlite3_column_int(st, 15) != 0;
    d->created = sqlite3_column_int64(st, 16);
    d->updated = sqlite3_column_int64(st, 17);
    d->x509_not_after = sqlite3_column_int64(st, 18);
    return 0;
}

/*
 * Inside an open transaction: the current etag of key `key` via statement
 * `exists_id`. 1 and the etag if the row exists, 0 if not, negative on error.
 */
static int row_etag(struct conn *c, enum stmt_id exists_id, const char *key,
                    char etag[HUB_ETAG_SIZE], struct hub_err *err)
{
    sqlite3_stmt *st = NULL;
    int rc = stmt(c, exists_id, &st, err);
    if (rc != 0)
        return rc;
    hub_store__bind_text(st, 1, key);
    rc = sqlite3_step(st);
    int ret;
    if (rc == SQLITE_ROW)
        ret = col_text(st, 0, etag, HUB_ETAG_SIZE, err) == 0 ? 1 : HUB_E_STORE;
    else if (rc == SQLITE_DONE)
        ret = 0;
    else
        ret = hub_store__sqlite_err(c->db, rc, "reading a row", err);
    hub_store__stmt_done(st);
    return ret;
}

/* Inside an open transaction: checks that `key` exists and, when
 * expected_etag is non-NULL, that its etag equals it. */
static int check_condition(struct conn *c, enum stmt_id exists_id, const char *what,
                           const char *key, const char *expected_etag, struct hub_err *err)
{
    char etag[HUB_ETAG_SIZE];
    int rc = row_etag(c, exists_id, key, etag, err);
    if (rc < 0)
        return rc;
    if (rc == 0)
        return HUB_ERR(err, HUB_E_NOT_FOUND, "%s '%.128s' not found", what, key);
    if (expected_etag != NULL && strcmp(etag, expected_etag) != 0)
        return HUB_ERR(err, HUB_E_ETAG_MISMATCH,
                       "%s '%.128s' has changed (etag %s, expected %.40s)", what, key, etag,
                       expected_etag);
    return 0;
}

/* ---- CA operations ------------------------------------------------------- */

#define STORE(s) ((struct sqlite_store *)(s))

static int ca_insert(struct hub_store *base, const struct hub_ca_cert *ca, size_t max_count,
                     struct hub_err *err)
{
    struct sqlite_store *s = STORE(base);
    struct conn *c = NULL;
    int rc = conn_acquire(s, &c, err);
    if (rc != 0)
        return rc;
    if ((rc = txn_begin(c, err)) != 0)
        goto release;
    char etag[HUB_ETAG_SIZE];
    rc = row_etag(c, STMT_CA_EXISTS, ca->name, etag, err);
    if (rc < 0)
        goto rollback;
    if (rc == 1) {
        rc = HUB_ERR(err, HUB_E_EXISTS, "CA certificate '%s' already exists", ca->name);
        goto rollback;
    }
    sqlite3_stmt *st = NULL;
    if (max_count > 0) {
        if ((rc = stmt(c, STMT_CA_COUNT, &st, err)) != 0)
            goto rollback;
        int step = sqlite3_step(st);
        sqlite3_int64 n = step == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
        hub_store__stmt_done(st);
        if (step != SQLITE_ROW) {
            rc = hub_store__sqlite_err(c->db, step, "counting CA certificates", err);
            goto rollback;
        }
        if ((size_t)n >= max_count) {
            rc = HUB_ERR(err, HUB_E_LIMIT, "the hub already holds %lld CA certificates (limit %zu)",
                         (long long)n, max_count);
            goto rollback;
        }
    }
    if ((rc = stmt(c, STMT_CA_INSERT, &st, err)) != 0)
        goto rollback;
    if (bind_ca(st, ca) != SQLITE_OK) {
        hub_store__stmt_done(st);
        rc = HUB_ERR(err, HUB_E_STORE, "binding a CA row: %s", sqlite3_errmsg(c->db));
        goto rollback;
    }
    int step = sqlite3_step(st);
    hub_store__stmt_done(st);
    if (step != SQLITE_DONE) {
        rc = hub_store__sqlite_err(c->db, step, "inserting a CA certificate", err);
        goto rollback;
    }
    rc = txn_commit(c, err);
    goto release;
rollback:
    txn_rollback(c);
release:
    conn_release(s, c);
    return rc;
}

static int ca_get1(struct hub_store *base, const char *name, struct hub_ca_cert **out_new,
                   struct hub_err *err)
{
    struct sqlite_store *s = STORE(base);
    struct conn *c = NULL;
    int rc = conn_acquire(s, &c, err);
    if (rc != 0)
        return rc;
    sqlite3_stmt *st = NULL;
    if ((rc = stmt(c, STMT_CA_GET, &st, err)) != 0)
        goto release;
    hub_store__bind_text(st, 1, name);
    int step = sqlite3_step(st);
    if (step == SQLITE_DONE) {
        rc = HUB_ERR(err, HUB_E_NOT_FOUND, "CA certificate '%.64s' not found", name);
    } else if (step != SQLITE_ROW) {
        rc = hub_store__sqlite_err(c->db, step, "reading a CA certificate", err);
    } else {
        struct hub_ca_cert *ca = calloc(1, sizeof(*ca));
        if (ca == NULL) {
            rc = HUB_ERR(err, HUB_E_NOMEM, "out of memory reading a CA certificate");
        } else if ((rc = read_ca(st, ca, err)) != 0) {
            hub_ca_cert_free(ca);
        } else {
            *out_new = ca;
        }
    }
    hub_store__stmt_done(st);
release:
    conn_release(s, c);
    return rc;
}

/* Conditional write of one row: BEGIN IMMEDIATE, check existence and etag,
 * run `write_id` (bound by `bind`), COMMIT. */
static int conditional_write(struct sqlite_store *s, enum stmt_id exists_id, enum stmt_id write_id,
                             const char *what, const char *key, const char *expected_etag,
                             int (*bind)(sqlite3_stmt *, const void *), const void *rec,
                             struct hub_err *err)
{
    struct conn *c = NULL;
    int rc = conn_acquire(s, &c, err);
    if (rc != 0)
        return rc;
    if ((rc = txn_begin(c, err)) != 0)
        goto release;
    if ((rc = check_condition(c, exists_id, what, key, expected_etag, err)) != 0)
        goto rollback;
    sqlite3_stmt *st = NULL;
    if ((rc = stmt(c, write_id, &st, err)) != 0)
        goto rollback;
    if (bind(st, rec) != SQLITE_OK) {
        hub_store__stmt_done(st);
        rc = HUB_ERR(err, HUB_E_STORE, "binding a %s row: %s", what, sqlite3_errmsg(c->db));
        goto rollback;
    }
    int step = sqlite3_step(st);
    hub_store__stmt_done(st);
    if (step != SQLITE_DONE) {
        rc = hub_store__sqlite_err(c->db, step, "writing a row", err);
        goto rollback;
    }
    rc = txn_commit(c, err);
    goto release;
rollback:
    txn_rollback(c);
release:
    conn_release(s, c);
    return rc;
}

static int bind_ca_rec(sqlite3_stmt *st, const void *rec)
{
    return bind_ca(st, rec);
}

static int bind_device_rec(sqlite3_stmt *st, const void *rec)
{
    return bind_device(st, rec);
}

static int bind_key_rec(sqlite3_stmt *st, const void *rec)
{
    return hub_store__bind_text(st, 1, rec);
}

static int ca_update(struct hub_store *base, const struct hub_ca_cert *ca,
                     const char *expected_etag, struct hub_err *err)
{
    return conditional_write(STORE(base), STMT_CA_EXISTS, STMT_CA_UPDATE, "CA certificate",
                             ca->name, expected_etag, bind_ca_rec, ca, err);
}

static int ca_delete(struct hub_store *base, const char *name, const char *expected_etag,
                     struct hub_err *err)
{
    return conditional_write(STORE(base), STMT_CA_EXISTS, STMT_CA_DELETE, "CA certificate", name,
                             expected_etag, bind_key_rec, name, err);
}

static int ca_list1(struct hub_store *base, bool verified_only, struct hub_ca_cert_list **out_new,
                    struct hub_err *err)
{
    struct sqlite_store *s = STORE(base);
    struct hub_ca_cert_list *list = calloc(1, sizeof(*list));
    if (list == NULL)
        return HUB_ERR(err, HUB_E_NOMEM, "out of memory listing CA certificates");
    struct conn *c = NULL;
    int rc = conn_acquire(s, &c, err);
    if (rc != 0)
        goto free_list;
    sqlite3_stmt *st = NULL;
    if ((rc = stmt(c, STMT_CA_LIST, &st, err)) != 0)
        goto release;
    sqlite3_bind_int(st, 1, verified_only ? 1 : 0);
    size_t cap = 0;
    for (;;) {
        int step = sqlite3_step(st);
        if (step == SQLITE_DONE)
            break;
        if (step != SQLITE_ROW) {
            rc = hub_store__sqlite_err(c->db, step, "listing CA certificates", err);
            break;
        }
        if (list->count == cap) {
            size_t ncap = cap ? cap * 2 : 8;
            struct hub_ca_cert *n = realloc(list->items, ncap * sizeof(*n));
            if (n == NULL) {
                rc = HUB_ERR(err, HUB_E_NOMEM, "out of memory listing CA certificates");
                break;
            }
            list->items = n;
            cap = ncap;
        }
        struct hub_ca_cert *ca = &list->items[list->count];
        memset(ca, 0, sizeof(*ca));
        if ((rc = read_ca(st, ca, err)) != 0) {
            hub_ca_cert_clear(ca);
            break;
        }
        list->count++;
    }
    hub_store__stmt_done(st);
release:
    conn_release(s, c);
    if (rc == 0) {
        *out_new = list;
        return 0;
    }
free_list:
    hub_ca_cert_list_free(list);
    return rc;
}

static int ca_count(struct hub_store *base, size_t *out, struct hub_err *err)
{
    struct sqlite_store *s = STORE(base);
    struct conn *c = NULL;
    int rc = conn_acquire(s, &c, err);
    if (rc != 0)
        return rc;
    sqlite3_stmt *st = NULL;
    if ((rc = stmt(c, STMT_CA_COUNT, &st, err)) == 0) {
        int step = sqlite3_step(st);
        if (step == SQLITE_ROW)
            *out = (size_t)sqlite3_column_int64(st, 0);
        else
            rc = hub_store__sqlite_err(c->db, step, "counting CA certificates", err);
        hub_store__stmt_done(st);
    }
    conn_release(s, c);
    return rc;
}

/* ---- device operations --------------------------------------------------- */

static int device_insert(struct hub_store *base, const struct hub_device *dev, struct hub_err *err)
{
    struct sqlite_store *s = STORE(base);
    struct conn *c = NULL;
    int rc = conn_acquire(s, &c, err);
    if (rc != 0)
        return rc;
    sqlite3_stmt *st = NULL;
    if ((rc = stmt(c, STMT_DEV_INSERT, &st, err)) != 0)
        goto release;
    if (bind_device(st, dev) != SQLITE_OK) {
        rc = HUB_ERR(err, HUB_E_STORE, "binding a device row: %s", sqlite3_errmsg(c->db));
    } else {
        int step = sqlite3_step(st);
        if (step == SQLITE_CONSTRAINT_PRIMARYKEY)
            rc = HUB_ERR(err, HUB_E_EXISTS, "device '%s' already exists", dev->id);
        else if (step != SQLITE_DONE)
            rc = hub_store__sqlite_err(c->db, step, "inserting a device", err);
    }
    hub_store__stmt_done(st);
release:
    conn_release(s, c);
    return rc;
}

static int device_get(struct hub_store *base, const char *id, struct hub_device *out,
                      struct hub_err *err)
{
    struct sqlite_store *s = STORE(base);
    struct conn *c = NULL;
    int rc = conn_acquire(s, &c, err);
    if (rc != 0)
        return rc;
    sqlite3_stmt *st = NULL;
    if ((rc = stmt(c, STMT_DEV_GET, &st, err)) != 0)
        goto release;
    hub_store__bind_text(st, 1, id);
    int step = sqlite3_step(st);
    if (step == SQLITE_DONE)
        rc = HUB_ERR(err, HUB_E_NOT_FOUND, "device '%.128s' not found", id);
    else if (step != SQLITE_ROW)
        rc = hub_store__sqlite_err(c->db, step, "reading a device", err);
    else
        rc = read_device(st, out, err);
    hub_store__stmt_done(st);
release:
    conn_release(s, c);
    return rc;
}

static int device_update(struct hub_store *base, const struct hub_device *dev,
                         const char *expected_etag, struct hub_err *err)
{
    return conditional_write(STORE(base), STMT_DEV_EXISTS, STMT_DEV_UPDATE, "device", dev->id,
                             expected_etag, bind_device_rec, dev, err);
}

static int device_delete(struct hub_store *base, const char *id, const char *expected_etag,
                         struct hub_err *err)
{
    return conditional_write(STORE(base), STMT_DEV_EXISTS, STMT_DEV_DELETE, "device", id,
                             expected_etag, bind_key_rec, id, err);
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* The cursor is the uppercase hex of the last id returned: opaque, and safe in
 * an HTTP header or URL whatever characters ids hold. */
static int cursor_decode(const char *cursor, char id[HUB_DEVICE_ID_SIZE], struct hub_err *err)
{
    size_t n = cursor != NULL ? strlen(cursor) : 0;
    if (n % 2 != 0 || n / 2 > HUB_DEVICE_ID_MAX)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "malformed continuation token");
    for (size_t i = 0; i < n / 2; i++) {
        int hi = hexval(cursor[2 * i]), lo = hexval(cursor[2 * i + 1]);
        if (hi < 0 || lo < 0 || (hi | lo) == 0)
            return HUB_ERR(err, HUB_E_INVALID_ARG, "malformed continuation token");
        id[i] = (char)(hi << 4 | lo);
    }
    id[n / 2] = '\0';
    return 0;
}

static int device_list1(struct hub_store *base, const struct hub_device_filter *f,
                        struct hub_device_list **out_new, struct hub_err *err)
{
    struct sqlite_store *s = STORE(base);
    char after[HUB_DEVICE_ID_SIZE];
    int rc = cursor_decode(f->cursor, after, err);
    if (rc != 0)
        return rc;
    /* Bounded so that limit+1 fits the int64 SQLite LIMIT and the allocation is sane. */
    size_t limit = f->limit > 100000 ? 100000 : f->limit;
    struct hub_device_list *list = calloc(1, sizeof(*list));
    if (list == NULL)
        return HUB_ERR(err, HUB_E_NOMEM, "out of memory listing devices");
    struct conn *c = NULL;
    if ((rc = conn_acquire(s, &c, err)) != 0)
        goto free_list;
    sqlite3_stmt *st = NULL;
    if ((rc = stmt(c, STMT_DEV_LIST, &st, err)) != 0)
        goto release;
    hub_store__bind_text(st, 1, after);
    if (f->has_status)
        hub_store__bind_text(st, 2, hub_device_status_name(f->status));
    if (f->has_auth_type)
        hub_store__bind_text(st, 3, hub_auth_type_name(f->auth_type));
    if (f->has_conn_state)
        hub_store__bind_text(st, 4, hub_conn_state_name(f->conn_state));
    /* One row more than asked tells whether another page exists. */
    sqlite3_bind_int64(st, 5, (sqlite3_int64)limit + 1);
    size_t cap = 0;
    bool more = false;
    for (;;) {
        int step = sqlite3_step(st);
        if (step == SQLITE_DONE)
            break;
        if (step != SQLITE_ROW) {
            rc = hub_store__sqlite_err(c->db, step, "listing devices", err);
            break;
        }
        if (list->count == limit) {
            more = true;
            break;
        }
        if (list->count == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            if (ncap > limit)
                ncap = limit;
            struct hub_device *n = realloc(list->items, ncap * sizeof(*n));
            if (n == NULL) {
                rc = HUB_ERR(err, HUB_E_NOMEM, "out of memory listing devices");
                break;
            }
            list->items = n;
            cap = ncap;
        }
        if ((rc = read_device(st, &list->items[list->count], err)) != 0)
            break;
        list->count++;
    }
    hub_store__stmt_done(st);
    if (rc == 0 && more) {
        const char *last = list->items[list->count - 1].id;
        hub_hex_upper((const unsigned char *)last, strlen(last), list->next_cursor);
    }
release:
    conn_release(s, c);
    if (rc == 0) {
        *out_new = list;
        return 0;
    }
free_list:
    hub_device_list_free(list);
    return rc;
}

/*
 * Runs a single-row UPDATE of a runtime column keyed by id; HUB_E_NOT_FOUND
 * when no row matched.
 *
 * Why a connection of its own with synchronous = OFF: these columns
 * (connectionState, lastActivityTime, x509CertificateExpiry) change on every
 * connect and disconnect, and an fdatasync per change cost more than the
 * TLS handshake (docs/benchmarks.md). Azure documents them as best-effort.
 * With WAL the database stays consistent whatever happens: a process crash
 * loses nothing (the WAL frame is in the OS), a power loss may lose the last
 * updates not yet covered by the next synchronous commit of the pool (any
 * telemetry or registry write fsyncs the WAL, these frames included) or a
 * checkpoint; a device re-establishes its state when it reconnects.
 *
 * Why BEGIN IMMEDIATE: an autocommit UPDATE starts as a reader and upgrades;
 * if another connection (the telemetry committer) commits in between, SQLite
 * answers SQLITE_BUSY at once, without waiting: the "database is locked"
 * activity touches under load. Taking the write lock first makes it wait
 * (busy_timeout) instead. One mutex: the writes are serialized by SQLite's
 * write lock anyway.
 */
static int device_runtime_update(struct sqlite_store *s, enum stmt_id id_stmt, const char *id,
                                 const char *text2, int64_t int2, int64_t int3, struct hub_err *err)
{
    pthread_mutex_lock(&s->rt_mu);
    int rc = 0;
    if (s->rt == NULL)
        rc = conn_open_sync(s, "PRAGMA synchronous = OFF", &s->rt, err);
    struct conn *c = s->rt;
    if (rc != 0)
        goto unlock;
    if ((rc = txn_begin(c, err)) != 0)
        goto unlock;
    sqlite3_stmt *st = NULL;
    if ((rc = stmt(c, id_stmt, &st, err)) != 0)
        goto release;
    hub_store__bind_text(st, 1, id);
    if (text2 != NULL) {
        hub_store__bind_text(st, 2, text2);
        sqlite3_bind_int64(st, 3, int3);
    } else {
        sqlite3_bind_int64(st, 2, int2);
    }
    int step = sqlite3_step(st);
    if (step != SQLITE_DONE)
        rc = hub_store__sqlite_err(c->db, step, "updating a device", err);
    else if (sqlite3_changes(c->db) == 0)
        rc = HUB_ERR(err, HUB_E_NOT_FOUND, "device '%.128s' not found", id);
    hub_store__stmt_done(st);
release:
    /* Not txn_commit: injected commit faults are for the durable writes. */
    if (rc == 0 || rc == HUB_E_NOT_FOUND) {
        int crc = run(c, STMT_COMMIT, "committing a runtime column", rc == 0 ? err : NULL);
        if (crc != 0 && rc == 0)
            rc = crc;
    }
    if (!sqlite3_get_autocommit(c->db))
        txn_rollback(c);
unlock:
    pthread_mutex_unlock(&s->rt_mu);
    return rc;
}

static int device_conn_state_set(struct hub_store *base, const char *id, enum hub_conn_state state,
                                 int64_t at, struct hub_err *err)
{
    return device_runtime_update(STORE(base), STMT_DEV_CONN, id, hub_conn_state_name(state), 0, at,
                                 err);
}

static int device_activity_touch(struct hub_store *base, const char *id, int64_t at,
                                 struct hub_err *err)
{
    return device_runtime_update(STORE(base), STMT_DEV_TOUCH, id, NULL, at, 0, err);
}

static int device_cert_expiry_set(struct hub_store *base, const char *id, int64_t not_after,
                                  struct hub_err *err)
{
    return device_runtime_update(STORE(base), STMT_DEV_CERT_EXPIRY, id, NULL, not_after, 0, err);
}

/* ---- open / close -------------------------------------------------------- */

static void sqlite_close(struct hub_store *base)
{
    struct sqlite_store *s = STORE(base);
    conn_close(s->rt);
    pthread_mutex_destroy(&s->rt_mu);
    while (s->idle != NULL) {
        struct conn *c = s->idle;
        s->idle = c->next;
        conn_close(c);
    }
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s->path);
    free(s);
}

static const struct hub_store_ops sqlite_ops;

void hub_store_sqlite_fail_commits(struct hub_store *base, unsigned count)
{
    if (base == NULL || base->ops != &sqlite_ops)
        return;
    struct sqlite_store *s = STORE(base);
    pthread_mutex_lock(&s->mu);
    s->fail_commits = count;
    pthread_mutex_unlock(&s->mu);
}

static const struct hub_store_ops sqlite_ops = {
    .close = sqlite_close,
    .ca_insert = ca_insert,
    .ca_get1 = ca_get1,
    .ca_update = ca_update,
    .ca_delete = ca_delete,
    .ca_list1 = ca_list1,
    .ca_count = ca_count,
    .device_insert = device_insert,
    .device_get = device_get,
    .device_update = device_update,
    .device_delete = device_delete,
    .device_list1 = device_list1,
    .device_conn_state_set = device_conn_state_set,
    .device_activity_touch = device_activity_touch,
    .device_cert_expiry_set = device_cert_expiry_set,
    .telemetry_append = hub_store__sqlite_telemetry_append,
    .telemetry_read1 = hub_store__sqlite_telemetry_read1,
    .telemetry_last_seq = hub_store__sqlite_telemetry_last_seq,
    .telemetry_prune = hub_store__sqlite_telemetry_prune,
    .c2d_enqueue = hub_store__sqlite_c2d_enqueue,
    .c2d_deliver = hub_store__sqlite_c2d_deliver,
    .c2d_settle = hub_store__sqlite_c2d_settle,
    .c2d_release = hub_store__sqlite_c2d_release,
    .c2d_purge = hub_store__sqlite_c2d_purge,
    .c2d_expire = hub_store__sqlite_c2d_expire,
    .c2d_count = hub_store__sqlite_c2d_count,
    .feedback_receive1 = hub_store__sqlite_feedback_receive1,
    .feedback_settle = hub_store__sqlite_feedback_settle,
    .feedback_prune = hub_store__sqlite_feedback_prune,
    .twin_get = hub_store__sqlite_twin_get,
    .twin_write = hub_store__sqlite_twin_write,
    .twin_log_read1 = hub_store__sqlite_twin_log_read1,
    .dps_put = hub_store__sqlite_dps_put,
    .dps_get = hub_store__sqlite_dps_get,
    .dps_delete = hub_store__sqlite_dps_delete,
    .dps_list1 = hub_store__sqlite_dps_list1,
};

int hub_store_sqlite_open(const char *path, const struct hub_store_sqlite_opts *opts,
                          struct hub_store **out_new, struct hub_err *err)
{
    if (path == NULL || path[0] == '\0')
        return HUB_ERR(err, HUB_E_INVALID_ARG, "database path is empty");
    struct sqlite_store *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return HUB_ERR(err, HUB_E_NOMEM, "out of memory opening the database");
    s->super.ops = &sqlite_ops;
    s->busy_timeout_ms =
        opts && opts->busy_timeout_ms > 0 ? opts->busy_timeout_ms : DEFAULT_BUSY_TIMEOUT_MS;
    s->max_connections =
        opts && opts->max_connections > 0 ? opts->max_connections : DEFAULT_MAX_CONNECTIONS;
    s->path = strdup(path);
    if (s->path == NULL) {
        free(s);
        return HUB_ERR(err, HUB_E_NOMEM, "out of memory opening the database");
    }
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    pthread_mutex_init(&s->rt_mu, NULL);

    struct conn *c = NULL;
    int rc = conn_open(s, &c, err);
    if (rc != 0)
        goto close_store;
    rc = hub_store__sqlite_migrate(c->db, err);
    if (rc != 0) {
        conn_close(c);
        goto close_store;
    }
    s->idle = c;
    s->open_count = 1;
    *out_new = &s->super;
    return 0;
close_store:
    sqlite_close(&s->super);
    return rc;
}
