/*
 * store: the SQLite backend's messaging tables: telemetry log, C2D queues,
 * feedback (schema in store_migrate.c, step 2; contracts in store.h).
 *
 * Application properties are one BLOB per message (NULL when there are
 * none), big-endian, in this format:
 *
 *   offset  size  field
 *   0       4     N, the number of properties
 *   then N times:
 *           4     K, key length in bytes
 *           K     key bytes (no NUL)
 *           4     V, value length in bytes, or 0xFFFFFFFF for a null value
 *           V     value bytes (absent for null)
 *
 * Length-prefixed rather than JSON so that any byte sequence round-trips and
 * the store needs no JSON library; the reader checks every length against
 * the blob and refuses a malformed one (HUB_E_STORE: a damaged file).
 *
 * Every multi-statement change runs in BEGIN IMMEDIATE (store_sqlite.c); the
 * c2d_count triggers run inside the same transaction.
 */
#include "store/store_int.h"

#include <stdlib.h>
#include <string.h>

#define SYS_COL(e, col, name) ", " #col
#define SYS_Q(e, col, name)   ", ?"
#define SYS_COLS              HUB_SYSPROP_MAP(SYS_COL)
#define SYS_QS                HUB_SYSPROP_MAP(SYS_Q)

#define TEL_COLS "seq, device_id, module_id, enqueued_ms, body, app_props" SYS_COLS
#define TEL_SYS0 6 /* first system-property column of TEL_COLS */
#define C2D_COLS                                                                                   \
    "seq, device_id, enqueued_ms, expiry_ms, ack, body, app_props, delivery_count, lock_token, "   \
    "lock_expiry_ms" SYS_COLS
#define C2D_SYS0 10
#define FB_COLS  "seq, original_message_id, device_id, device_generation_id, enqueued_ms, status"
/* A feedback row for message ?1 at time ?2 with status ?3, if its ack mode is
 * ?4 ('positive' or 'negative') or 'full'. */
#define FB_INSERT_HEAD                                                                             \
    "INSERT INTO c2d_feedback (original_message_id, device_id, device_generation_id, "             \
    "enqueued_ms, status) "

#define MSG_STMT_MAP(X)                                                                            \
    X(TEL_INSERT,                                                                                  \
      "INSERT INTO telemetry (device_id, module_id, enqueued_ms, body, app_props" SYS_COLS         \
      ") VALUES (?, ?, ?, ?, ?" SYS_QS ")")                                                        \
    X(TEL_READ, "SELECT " TEL_COLS " FROM telemetry WHERE seq >= ?1 ORDER BY seq LIMIT ?2")        \
    X(TEL_READ_DEV, "SELECT " TEL_COLS " FROM telemetry WHERE device_id = ?3 AND seq >= ?1"        \
                    " ORDER BY seq LIMIT ?2")                                                      \
    X(TEL_LAST, "SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'telemetry'), 0)")  \
    X(TEL_PRUNE, "DELETE FROM telemetry WHERE seq IN"                                              \
                 " (SELECT seq FROM telemetry WHERE enqueued_ms < ?1 LIMIT ?2)")                   \
    X(DEV_EXISTS, "SELECT 1 FROM devices WHERE id = ?1")                                           \
    X(C2D_LIVE, "SELECT count(*) FROM c2d_messages WHERE device_id = ?1 AND expiry_ms > ?2")       \
    X(C2D_INSERT, "INSERT INTO c2d_messages (device_id, enqueued_ms, expiry_ms, ack, body, "       \
                  "app_props" SYS_COLS ") VALUES (?, ?, ?, ?, ?, ?" SYS_QS ")")                    \
    X(C2D_NEXT, "SELECT seq, delivery_count FROM c2d_messages WHERE device_id = ?1"                \
                " AND expiry_ms > ?2 AND (lock_token IS NULL OR lock_expiry_ms <= ?2)"             \
                " ORDER BY seq LIMIT 1")                                                           \
    X(C2D_LOCK, "UPDATE c2d_messages SET delivery_count = delivery_count + 1, lock_token = ?2,"    \
                " lock_expiry_ms = ?3 WHERE seq = ?1")                                             \
    X(C2D_GET, "SELECT " C2D_COLS " FROM c2d_messages WHERE seq = ?1")                             \
    X(C2D_FEEDBACK, FB_INSERT_HEAD "SELECT m.message_id, m.device_id, d.generation_id, ?2, ?3"     \
                                   " FROM c2d_messages m JOIN devices d ON d.id = m.device_id"     \
                                   " WHERE m.seq = ?1 AND m.ack IN (?4, 'full')")                  \
    X(C2D_DELETE, "DELETE FROM c2d_messages WHERE seq = ?1")                                       \
    X(C2D_FIND_LOCK, "SELECT seq, lock_expiry_ms FROM c2d_messages WHERE device_id = ?1"           \
                     " AND lock_token = ?2")                                                       \
    X(C2D_UNLOCK, "UPDATE c2d_messages SET lock_token = NULL, lock_expiry_ms = 0 WHERE seq = ?1")  \
    X(C2D_RELEASE, "UPDATE c2d_messages SET lock_token = NULL, lock_expiry_ms = 0"                 \
                   " WHERE device_id = ?1 AND lock_token IS NOT NULL")                             \
    X(C2D_PURGE_FB, FB_INSERT_HEAD "SELECT m.message_id, m.device_id, d.generation_id, ?2,"        \
                                   " 'Purged' FROM c2d_messages m JOIN devices d"                  \
                                   " ON d.id = m.device_id WHERE m.device_id = ?1"                 \
                                   " AND m.ack IN ('negative', 'full') ORDER BY m.seq")            \
    X(C2D_PURGE, "DELETE FROM c2d_messages WHERE device_id = ?1")                                  \
    X(C2D_EXPIRE_FB, FB_INSERT_HEAD "SELECT m.message_id, m.device_id, d.generation_id, ?1,"       \
                                    " 'Expired' FROM c2d_messages m JOIN devices d"                \
                                    " ON d.id = m.device_id WHERE m.expiry_ms <= ?1"               \
                                    " AND m.ack IN ('negative', 'full') ORDER BY m.seq")           \
    X(C2D_EXPIRE, "DELETE FROM c2d_messages WHERE expiry_ms <= ?1")                                \
    X(C2D_COUNT, "SELECT (SELECT count(*) FROM c2d_messages WHERE device_id = ?1)"                 \
                 " FROM devices WHERE id = ?1")                                                    \
    X(FB_LOCK, "UPDATE c2d_feedback SET lock_token = ?1, lock_expiry_ms = ?2 WHERE seq IN"         \
               " (SELECT seq FROM c2d_feedback WHERE lock_token IS NULL OR lock_expiry_ms <= ?3"   \
               " ORDER BY seq LIMIT ?4)")                                                          \
    X(FB_READ, "SELECT " FB_COLS " FROM c2d_feedback WHERE lock_token = ?1 ORDER BY seq")          \
    X(FB_DELETE, "DELETE FROM c2d_feedback WHERE lock_token = ?1 AND lock_expiry_ms > ?2")         \
    X(FB_UNLOCK, "UPDATE c2d_feedback SET lock_token = NULL, lock_expiry_ms = 0"                   \
                 " WHERE lock_token = ?1 AND lock_expiry_ms > ?2")                                 \
    X(FB_PRUNE, "DELETE FROM c2d_feedback WHERE enqueued_ms < ?1")

enum msg_stmt_id {
#define MSG_STMT_ENUM(name, sql) S_##name,
    MSG_STMT_MAP(MSG_STMT_ENUM)
#undef MSG_STMT_ENUM
        S__COUNT
};

static const char *const msg_stmt_sql[S__COUNT] = {
#define MSG_STMT_SQL(name, sql) [S_##name] = sql,
    MSG_STMT_MAP(MSG_STMT_SQL)
#undef MSG_STMT_SQL
};

_Static_assert(S__COUNT <= HUB_STORE__EXT_STMT_MAX, "raise HUB_STORE__EXT_STMT_MAX");
_Static_assert(S__COUNT <= HUB_STORE__TWIN_STMT_BASE, "move HUB_STORE__TWIN_STMT_BASE up");

typedef struct hub_store__conn conn_t;

static int stmt(conn_t *c, enum msg_stmt_id id, sqlite3_stmt **out, struct hub_err *err)
{
    return hub_store__sqlite_stmt(c, (int)id, msg_stmt_sql[id], out, err);
}

/* A zero-length body is a zero-length BLOB, never NULL (the column is NOT NULL). */
static int bind_body(sqlite3_stmt *st, int i, const unsigned char *body, size_t len)
{
    if (len == 0)
        return sqlite3_bind_zeroblob(st, i, 0);
    return sqlite3_bind_blob64(st, i, body, len, SQLITE_STATIC);
}

static int copy_text(sqlite3_stmt *st, int i, char *out, size_t cap, struct hub_err *err)
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

/* ---- application-property blobs ------------------------------------------- */

#define NULL_VALUE_LEN 0xFFFFFFFFu

struct buf {
    unsigned char *p;
    size_t len, cap;
};

static int buf_reserve(struct buf *b, size_t more, struct hub_err *err)
{
    if (b->cap - b->len >= more)
        return 0;
    size_t ncap = b->cap ? b->cap : 256;
    while (ncap - b->len < more)
        ncap *= 2;
    unsigned char *n = realloc(b->p, ncap);
    if (n == NULL)
        return HUB_ERR(err, HUB_E_NOMEM, "out of memory encoding message properties");
    b->p = n;
    b->cap = ncap;
    return 0;
}

static void put_u32(struct buf *b, uint32_t v)
{
    b->p[b->len++] = (unsigned char)(v >> 24);
    b->p[b->len++] = (unsigned char)(v >> 16);
    b->p[b->len++] = (unsigned char)(v >> 8);
    b->p[b->len++] = (unsigned char)v;
}

static void put_bytes(struct buf *b, const char *s, size_t n)
{
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

/* Encodes into b (reset first). Lengths are bounded by HUB_MSG_PROPS_MAX_BYTES
 * (checked in store.c), so they fit u32. */
static int props_encode(struct buf *b, const struct hub_app_prop *app, size_t count,
                        struct hub_err *err)
{
    b->len = 0;
    int rc = buf_reserve(b, 4, err);
    if (rc != 0)
        return rc;
    put_u32(b, (uint32_t)count);
    for (size_t i = 0; i < count; i++) {
        size_t kn = strlen(app[i].key);
        size_t vn = app[i].value != NULL ? strlen(app[i].value) : 0;
        if ((rc = buf_reserve(b, 8 + kn + vn, err)) != 0)
            return rc;
        put_u32(b, (uint32_t)kn);
        put_bytes(b, app[i].key, kn);
        put_u32(b, app[i].value != NULL ? (uint32_t)vn : NULL_VALUE_LEN);
        if (app[i].value != NULL)
            put_bytes(b, app[i].value, vn);
    }
    return 0;
}

static int bind_props(sqlite3_stmt *st, int i, struct buf *b, const struct hub_app_prop *app,
                      size_t count, struct hub_err *err)
{
    if (count == 0)
        return sqlite3_bind_null(st, i) == SQLITE_OK ? 0 : HUB_E_STORE;
    int rc = props_encode(b, app, count, err);
    if (rc != 0)
        return rc;
    return sqlite3_bind_blob64(st, i, b->p, b->len, SQLITE_STATIC) == SQLITE_OK ? 0 : HUB_E_STORE;
}

static uint32_t get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* Splits a blob into spans (keys[i] = spans[i], values[i] = spans[count+i]),
 * pointing into the blob. *spans_out is the caller's (free). */
static int props_decode(const unsigned char *blob, size_t n, struct hub_store__span **spans_out,
                        size_t *count_out, struct hub_err *err)
{
    *spans_out = NULL;
    *count_out = 0;
    if (blob == NULL || n == 0)
        return 0;
    if (n < 4)
        return HUB_ERR(err, HUB_E_STORE, "stored message properties are truncated");
    uint32_t count = get_u32(blob);
    /* Each property takes at least 8 bytes: bounds the allocation by the blob. */
    if (count > (n - 4) / 8)
        return HUB_ERR(err, HUB_E_STORE, "stored message properties are malformed");
    if (count == 0)
        return 0;
    struct hub_store__span *spans = calloc(2 * (size_t)count, sizeof(*spans));
    if (spans == NULL)
        return HUB_ERR(err, HUB_E_NOMEM, "out of memory reading message properties");
    size_t off = 4;
    for (uint32_t i = 0; i < count; i++) {
        if (n - off < 4)
            goto malformed;
        uint32_t kn = get_u32(blob + off);
        off += 4;
        if (kn > n - off)
            goto malformed;
        spans[i].p = (const char *)blob + off;
        spans[i].n = kn;
        off += kn;
        if (n - off < 4)
            goto malformed;
        uint32_t vn = get_u32(blob + off);
        off += 4;
        if (vn == NULL_VALUE_LEN)
            continue; /* span stays {NULL, 0}: a null value */
        if (vn > n - off)
            goto malformed;
        spans[count + i].p = (const char *)blob + off;
        spans[count + i].n = vn;
        off += vn;
    }
    if (off != n)
        goto malformed;
    *spans_out = spans;
    *count_out = count;
    return 0;
malformed:
    free(spans);
    return HUB_ERR(err, HUB_E_STORE, "stored message properties are malformed");
}

/* Reads body, properties and system properties of the current row into an
 * owned block. */
static int read_payload(sqlite3_stmt *st, int body_col, int props_col, int sys0,
                        const unsigned char **body_out, size_t *body_len_out,
                        const char *sys_out[HUB_SYSPROP__COUNT],
                        const struct hub_app_prop **app_out, size_t *app_count_out,
                        void **owned_out, struct hub_err *err)
{
    const unsigned char *body = sqlite3_column_blob(st, body_col);
    size_t body_len = (size_t)sqlite3_column_bytes(st, body_col);
    const unsigned char *blob = sqlite3_column_blob(st, props_col);
    size_t blob_len = (size_t)sqlite3_column_bytes(st, props_col);
    struct hub_store__span sys[HUB_SYSPROP__COUNT];
    for (int i = 0; i < HUB_SYSPROP__COUNT; i++) {
        sys[i].p = (const char *)sqlite3_column_text(st, sys0 + i);
        sys[i].n = sys[i].p != NULL ? (size_t)sqlite3_column_bytes(st, sys0 + i) : 0;
    }
    struct hub_store__span *spans = NULL;
    size_t count = 0;
    int rc = props_decode(blob, blob_len, &spans, &count, err);
    if (rc != 0)
        return rc;
    rc = hub_store__pack(body, body_len, sys, spans, spans != NULL ? spans + count : NULL, count,
                         body_out, sys_out, app_out, owned_out, err);
    free(spans);
    if (rc == 0) {
        *body_len_out = body_len;
        *app_count_out = count;
    }
    return rc;
}

static int bind_sys(sqlite3_stmt *st, int first, const char *const sys[HUB_SYSPROP__COUNT])
{
    int rc = SQLITE_OK;
    for (int i = 0; i < HUB_SYSPROP__COUNT; i++)
        rc |= hub_store__bind_text(st, first + i, sys[i]);
    return rc;
}

/* ---- telemetry ------------------------------------------------------------ */

int hub_store__sqlite_telemetry_append(struct hub_store *store,
                                       const struct hub_telemetry_msg *const *msgs, size_t count,
                                       int64_t *seqs_out, struct hub_err *err)
{
    conn_t *c = NULL;
    int rc = hub_store__sqlite_acquire(store, &c, err);
    if (rc != 0)
        return rc;
    struct buf props = {0};
    sqlite3 *db = hub_store__sqlite_db(c);
    if ((rc = hub_store__sqlite_begin(c, err)) != 0)
        goto release;
    sqlite3_stmt *st = NULL;
    if ((rc = stmt(c, S_TEL_INSERT, &st, err)) != 0)
        goto rollback;
    for (size_t i = 0; i < count; i++) {
        const struct hub_telemetry_msg *m = msgs[i];
        int b = SQLITE_OK;
        b |= hub_store__bind_text(st, 1, m->device_id);
        b |= hub_store__bind_text(st, 2, m->module_id);
        b |= sqlite3_bind_int64(st, 3, m->enqueued_ms);
        b |= bind_body(st, 4, m->body, m->body_len);
        b |= bind_sys(st, 6, m->sys);
        if (b != SQLITE_OK) {
            rc = HUB_ERR(err, HUB_E_STORE, "binding a telemetry row: %s", sqlite3_errmsg(db));
            hub_store__stmt_done(st);
            goto rollback;
        }
        if ((rc = bind_props(st, 5, &props, m->app, m->app_count, err)) != 0) {
            hub_store__stmt_done(st);
            goto rollback;
        }
        int step = sqlite3_step(st);
        hub_store__stmt_done(st);
        if (step != SQLITE_DONE) {
            rc = hub_store__step_err(c, step, "appending telemetry", err);
            goto rollback;
        }
        seqs_out[i] = sqlite3_last_insert_rowid(db);
    }
    rc = hub_store__sqlite_commit(c, err);
    goto release;
rollback:
    hub_store__sqlite_rollback(c);
release:
    free(props.p);
    hub_store__sqlite_release(store, c);
    return rc;
}

static int read_telemetry(sqlite3_stmt *st, struct hub_telemetry_msg *m, struct hub_err *err)
{
    memset(m, 0, sizeof(*m));
    int rc;
    if ((rc = copy_text(st, 1, m->device_id, sizeof(m->device_id), err)) != 0 ||
        (rc = copy_text(st, 2, m->module_id, sizeof(m->module_id), err)) != 0)
        return rc;
    m->seq = sqlite3_column_int64(st, 0);
    m->enqueued_ms = sqlite3_column_int64(st, 3);
    return read_payload(st, 4, 5, TEL_SYS0, &m->body, &m->body_len, m->sys, &m->app, &m->app_count,
                        &m->owned_, err);
}

int hub_store__sqlite_telemetry_read1(struct hub_store *store, int64_t from_seq, size_t limit,
                                      const char *device_id,
                                      struct hub_telemetry_msg_list **out_new, struct hub_err *err)
{
    struct hub_telemetry_msg_list *list = calloc(1, sizeof(*list));
    if (list == NULL)
        return HUB_ERR(err, HUB_E_NOMEM, "out of memory reading telemetry");
    conn_t *c = NULL;
    int rc = hub_store__sqlite_acquire(store, &c, err);
    if (rc != 0)
        goto free_list;
    sqlite3_stmt *st = NULL;
    if ((rc = stmt(c, device_id != NULL ? S_TEL_READ_DEV : S_TEL_READ, &st, err)) != 0)
        goto release;
    sqlite3_bind_int64(st, 1, from_seq);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)limit);
    if (device_id != NULL)
        hub_store__bind_text(st, 3, device_id);
    size_t cap = 0;
    for (;;) {
        int step = sqlite3_step(st);
        if (step == SQLITE_DONE)
            break;
        if (step != SQLITE_ROW) {
            rc = hub_store__step_err(c, step, "reading telemetry", err);
            break;
        }
        if (list->count == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            if (ncap > limit)
                ncap = limit;
            struct hub_telemetry_msg *n = realloc(list->items, ncap * sizeof(*n));
            if (n == NULL) {
                rc = HUB_ERR(err, HUB_E_NOMEM, "out of memory reading telemetry");
                break;
            }
            list->items = n;
            cap = ncap;
        }
        if ((rc = read_telemetry(st, &list->items[list->count], err)) != 0)
            break;
        list->count++;
    }
    hub_store__stmt_done(st);
release:
    hub_store__sqlite_release(store, c);
    if (rc == 0) {
        *out_new = list;
        return 0;
    }
free_list:
    hub_telemetry_msg_list_free(list);
    return rc;
}

/* Runs a one-row, one-int64-column query bound with (text ?1, int ?2). */
static int query_int64(struct hub_store *store, enum msg_stmt_id id, const char *text1,
                       const int64_t *int2, const char *what, int64_t *out, struct hub_err *err)
{
    conn_t *c = NULL;
    int rc = hub_store__sqlite_acquire(store, &c, err);
    if (rc != 0)
        return rc;
    sqlite3_stmt *st = NULL;
    if ((rc = stmt(c, id, &st, err)) == 0) {
        if (text1 != NULL)
            hub_store__bind_text(st, 1, text1);
        if (int2 != NULL)
            sqlite3_bind_int64(st, 2, *int2);
        int step = sqlite3_step(st);
        if (step == SQLITE_ROW)
            *out = sqlite3_column_int64(st, 0);
        else if (step == SQLITE_DONE)
            rc = HUB_E_NOT_FOUND; /* the caller words the error */
        else
            rc = hub_store__step_err(c, step, what, err);
        hub_store__stmt_done(st);
    }
    hub_store__sqlite_release(store, c);
    return rc;
}

int hub_store__sqlite_telemetry_last_seq(struct hub_store *store, int64_t *out, struct hub_err *err)
{
    int rc = query_int64(store, S_TEL_LAST, NULL, NULL, "reading the telemetry position", out, err);
    if (rc == HUB_E_NOT_FOUND)
        return HUB_ERR(err, HUB_E_STORE, "reading the telemetry position: no row");
    return rc;
}

/* One auto-committed statement binding int ?1 (and ?2 when it has one). */
static int write_int64s(struct hub_store *store, enum msg_stmt_id id, int64_t a, int64_t b,
                        const char *what, size_t *changes_out, struct hub_err *err)
{
    conn_t *c = NULL;
    int rc = hub_store__sqlite_acquire(store, &c, err);
    if (rc != 0)
        return rc;
    sqlite3_stmt *st = NULL;
    if ((rc = stmt(c, id, &st, err)) == 0) {
        sqlite3_bind_int64(st, 1, a);
        if (sqlite3_bind_parameter_count(st) >= 2)
            sqlite3_bind_int64(st, 2, b);
        rc = hub_store__exec(c, st, what, changes_out, err);
    }
    hub_store__sqlite_release(store, c);
    return rc;
}

int hub_store__sqlite_telemetry_prune(struct hub_store *store, int64_t before_ms, size_t max_rows,
                                      size_t *deleted_out, struct hub_err *err)
{
    int64_t lim = max_rows > INT64_MAX ? INT64_MAX : (int64_t)max_rows;
    return write_int64s(store, S_TEL_PRUNE, before_ms, lim, "pruning telemetry", deleted_out, err);
}

/* ---- C2D queue ------------------------------------------------------------ */

/* Inside a transaction: 0 if the device exists, HUB_E_NOT_FOUND if not. */
static int device_exists(conn_t *c, const char *device_id, struct hub_err *err)
{
    sqlite3_stmt *st = NULL;
    int rc = stmt(c, S_DEV_EXISTS, &st, err);
    if (rc != 0)
        return rc;
    hub_store__bind_text(st, 1, device_id);
    int step = sqlite3_step(st);
    hub_store__stmt_done(st);
    if (step == SQLITE_DONE)
        return HUB_ERR(err, HUB_E_NOT_FOUND, "device '%.128s' not found", device_id);
    if (step != SQLITE_ROW)
        return hub_store__step_err(c, step, "looking up a device", err);
    return 0;
}

int hub_store__sqlite_c2d_enqueue(struct hub_store *store, const struct hub_c2d_msg *msg,
                                  size_t max_per_device, int64_t *seq_out, struct hub_err *err)
{
    conn_t *c = NULL;
    int rc = hub_store__sqlite_acquire(store, &c, err);
    if (rc != 0)
        return rc;
    struct buf props = {0};
    sqlite3 *db = hub_store__sqlite_db(c);
    if ((rc = hub_store__sqlite_begin(c, err)) != 0)
        goto release;
    if ((rc = device_exists(c, msg->device_id, err)) != 0)
        goto rollback;
    sqlite3_stmt *st = NULL;
    if (max_per_device > 0) {
        if ((rc = stmt(c, S_C2D_LIVE, &st, err)) != 0)
            goto rollback;
        hub_store__bind_text(st, 1, msg->device_id);
        sqlite3_bind_int64(st, 2, msg->enqueued_ms);
        int step = sqlite3_step(st);
        sqlite3_int64 n = step == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
        hub_store__stmt_done(st);
        if (step != SQLITE_ROW) {
            rc = hub_store__step_err(c, step, "counting a device's C2D messages", err);
            goto rollback;
        }
        if ((uint64_t)n >= (uint64_t)max_per_device) {
            rc = HUB_ERR(err, HUB_E_LIMIT,
                         "device '%.128s' already has %lld queued C2D messages (limit %zu)",
                         msg->device_id, (long long)n, max_per_device);
            goto rollback;
        }
    }
    if ((rc = stmt(c, S_C2D_INSERT, &st, err)) != 0)
        goto rollback;
    int b = SQLITE_OK;
    b |= hub_store__bind_text(st, 1, msg->device_id);
    b |= sqlite3_bind_int64(st, 2, msg->enqueued_ms);
    b |= sqlite3_bind_int64(st, 3, msg->expiry_ms);
    b |= hub_store__bind_text(st, 4, hub_c2d_ack_name(msg->ack));
    b |= bind_body(st, 5, msg->body, msg->body_len);
    b |= bind_sys(st, 7, msg->sys);
    if (b != SQLITE_OK) {
        rc = HUB_ERR(err, HUB_E_STORE, "binding a C2D row: %s", sqlite3_errmsg(db));
        hub_store__stmt_done(st);
        goto rollback;
    }
    if ((rc = bind_props(st, 6, &props, msg->app, msg->app_count, err)) != 0) {
        hub_store__stmt_done(st);
        goto rollback;
    }
    int step = sqlite3_step(st);
    hub_store__stmt_done(st);
    if (step != SQLITE_DONE) {
        rc = hub_store__step_err(c, step, "enqueueing a C2D message", err);
        goto rollback;
    }
    int64_t seq = sqlite3_last_insert_rowid(db);
    if ((rc = hub_store__sqlite_commit(c, err)) == 0)
        *seq_out = seq;
    goto release;
rollback:
    hub_store__sqlite_rollback(c);
release:
    free(props.p);
    hub_store__sqlite_release(store, c);
    return rc;
}

/* Inside a transaction: writes the feedback record for message `seq` if its
 * ack mode asks for `outcome`. */
static int feedback_for(conn_t *c, int64_t seq, enum hub_c2d_outcome outcome, int64_t now_ms,
                        struct hub_err *err)
{
    sqlite3_stmt *st = NULL;
    int rc = stmt(c, S_C2D_FEEDBACK, &st, err);
    if (rc != 0)
        return rc;
    sqlite3_bind_int64(st, 1, seq);
    sqlite3_bind_int64(st, 2, now_ms);
    hub_store__bind_text(st, 3, hub_c2d_outcome_name(outcome));
    hub_store__bind_text(st, 4, outcome == HUB_C2D_SUCCESS ? "positive" : "negative");
    return hub_store__exec(c, st, "writing C2D feedback", NULL, err);
}

/* Inside a transaction: runs a statement bound with one int64 ?1. */
static int exec_seq(conn_t *c, enum msg_stmt_id id, int64_t seq, const char *what,
                    struct hub_err *err)
{
    sqlite3_stmt *st = NULL;
    int rc = stmt(c, id, &st, err);
    if (rc != 0)
        return rc;
    sqlite3_bind_int64(st, 1, seq);
    return hub_store__exec(c, st, what, NULL, err);
}

/* Inside a transaction: feedback (when asked for) and removal of message `seq`. */
static int c2d_finish(conn_t *c, int64_t seq, enum hub_c2d_outcome outcome, int64_t now_ms,
                      struct hub_err *err)
{
    int rc = feedback_for(c, seq, outcome, now_ms, err);
    if (rc != 0)
        return rc;
    return exec_seq(c, S_C2D_DELETE, seq, "removing a C2D message", err);
}

static int read_c2d(sqlite3_stmt *st, struct hub_c2d_msg *m, struct hub_err *err)
{
    memset(m, 0, sizeof(*m));
    int rc;
    if ((rc = copy_text(st, 1, m->device_id, sizeof(m->device_id), err)) != 0 ||
        (rc = copy_text(st, 8, m->lock_token, sizeof(m->lock_token), err)) != 0)
        return rc;
    if (hub_c2d_ack_parse((const char *)sqlite3_column_text(st, 4), &m->ack, err) != 0)
        return HUB_ERR(err, HUB_E_STORE, "stored C2D row has an unknown ack mode");
    m->seq = sqlite3_column_int64(st, 0);
    m->enqueued_ms = sqlite3_column_int64(st, 2);
    m->expiry_ms = sqlite3_column_int64(st, 3);
    m->delivery_count = sqlite3_column_int64(st, 7);
    m->lock_expiry_ms = sqlite3_column_int64(st, 9);
    return read_payload(st, 5, 6, C2D_SYS0, &m->body, &m->body_len, m->sys, &m->app, &m->app_count,
                        &m->owned_, err);
}

/* Inside a transaction: the oldest deliverable message of the device. 1 and
 * its seq and delivery count, 0 when none, negative on error. */
static int c2d_next(conn_t *c, const char *device_id, int64_t now_ms, int64_t *seq, int64_t *count,
                    struct hub_err *err)
{
    sqlite3_stmt *st = NULL;
    int rc = stmt(c, S_C2D_NEXT, &st, err);
    if (rc != 0)
        return rc;
    hub_store__bind_text(st, 1, device_id);
    sqlite3_bind_int64(st, 2, now_ms);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        *seq = sqlite3_column_int64(st, 0);
        *count = sqlite3_column_int64(st, 1);
        rc = 1;
    } else if (step == SQLITE_DONE) {
        rc = 0;
    } else {
        rc = hub_store__step_err(c, step, "finding a deliverable C2D message", err);
    }
    hub_store__stmt_done(st);
    return rc;
}

int hub_store__sqlite_c2d_deliver(struct hub_store *store, const char *device_id, int64_t now_ms,
                                  const char *lock_token, int64_t lock_expiry_ms,
                                  int64_t max_delivery_count, struct hub_c2d_msg *out,
                                  size_t *dead_out, struct hub_err *err)
{
    *dead_out = 0;
    conn_t *c = NULL;
    int rc = hub_store__sqlite_acquire(store, &c, err);
    if (rc != 0)
        return rc;
    if ((rc = hub_store__sqlite_begin(c, err)) != 0)
        goto release;
    size_t dead = 0;
    int64_t seq = 0, count = 0;
    for (;;) {
        rc = c2d_next(c, device_id, now_ms, &seq, &count, err);
        if (rc <= 0)
            break;
        if (count < max_delivery_count)
            break;
        /* Delivered max times and back in the queue (abandoned, lock expired). */
        if ((rc = c2d_finish(c, seq, HUB_C2D_DELIVERY_COUNT_EXCEEDED, now_ms, err)) != 0)
            break;
        dead++;
    }
    if (rc < 0)
        goto rollback;
    bool found = rc == 1;
    if (found) {
        sqlite3_stmt *st = NULL;
        if ((rc = stmt(c, S_C2D_LOCK, &st, err)) != 0)
            goto rollback;
        sqlite3_bind_int64(st, 1, seq);
        hub_store__bind_text(st, 2, lock_token);
        sqlite3_bind_int64(st, 3, lock_expiry_ms);
        if ((rc = hub_store__exec(c, st, "locking a C2D message", NULL, err)) != 0)
            goto rollback;
        if ((rc = stmt(c, S_C2D_GET, &st, err)) != 0)
            goto rollback;
        sqlite3_bind_int64(st, 1, seq);
        int step = sqlite3_step(st);
        if (step == SQLITE_ROW)
            rc = read_c2d(st, out, err);
        else
            rc = hub_store__step_err(c, step, "reading a C2D message", err);
        hub_store__stmt_done(st);
        if (rc != 0)
            goto rollback;
    }
    if ((rc = hub_store__sqlite_commit(c, err)) != 0)
        goto release;
    *dead_out = dead;
    if (!found)
        rc = HUB_ERR(err, HUB_E_NOT_FOUND, "no deliverable C2D message for '%.128s'", device_id);
    goto release;
rollback:
    hub_store__sqlite_rollback(c);
release:
    if (rc != 0)
        hub_c2d_msg_clear(out);
    hub_store__sqlite_release(store, c);
    return rc;
}

int hub_store__sqlite_c2d_settle(struct hub_store *store, const char *device_id,
                                 const char *lock_token, enum hub_c2d_settle how, int64_t now_ms,
                                 struct hub_err *err)
{
    conn_t *c = NULL;
    int rc = hub_store__sqlite_acquire(store, &c, err);
    if (rc != 0)
        return rc;
    if ((rc = hub_store__sqlite_begin(c, err)) != 0)
        goto release;
    sqlite3_stmt *st = NULL;
    if ((rc = stmt(c, S_C2D_FIND_LOCK, &st, err)) != 0)
        goto rollback;
    hub_store__bind_text(st, 1, device_id);
    hub_store__bind_text(st, 2, lock_token);
    int step = sqlite3_step(st);
    int64_t seq = step == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    int64_t expiry = step == SQLITE_ROW ? sqlite3_column_int64(st, 1) : 0;
    hub_store__stmt_done(st);
    if (step == SQLITE_DONE) {
        rc = HUB_ERR(err, HUB_E_NOT_FOUND, "no C2D message of '%.128s' is locked with '%.64s'",
                     device_id, lock_token);
        goto rollback;
    }
    if (step != SQLITE_ROW) {
        rc = hub_store__step_err(c, step, "finding a locked C2D message", err);
        goto rollback;
    }
    if (expiry <= now_ms) {
        rc = HUB_ERR(err, HUB_E_ETAG_MISMATCH,
                     "the lock '%.64s' on a C2D message of '%.128s' "
                     "expired",
                     lock_token, device_id);
        goto rollback;
    }
    switch (how) {
    case HUB_C2D_COMPLETE:
        rc = c2d_finish(c, seq, HUB_C2D_SUCCESS, now_ms, err);
        break;
    case HUB_C2D_REJECT:
        rc = c2d_finish(c, seq, HUB_C2D_REJECTED, now_ms, err);
        break;
    case HUB_C2D_ABANDON:
        rc = exec_seq(c, S_C2D_UNLOCK, seq, "unlocking a C2D message", err);
        break;
    }
    if (rc != 0)
        goto rollback;
    rc = hub_store__sqlite_commit(c, err);
    goto release;
rollback:
    hub_store__sqlite_rollback(c);
release:
    hub_store__sqlite_release(store, c);
    return rc;
}

int hub_store__sqlite_c2d_release(struct hub_store *store, const char *device_id,
                                  size_t *released_out, struct hub_err *err)
{
    conn_t *c = NULL;
    int rc = hub_store__sqlite_acquire(store, &c, err);
    if (rc != 0)
        return rc;
    sqlite3_stmt *st = NULL;
    if ((rc = stmt(c, S_C2D_RELEASE, &st, err)) == 0) {
        hub_store__bind_text(st, 1, device_id);
        rc = hub_store__exec(c, st, "unlocking a device's C2D messages", released_out, err);
    }
    hub_store__sqlite_release(store, c);
    return rc;
}

int hub_store__sqlite_c2d_purge(struct hub_store *store, const char *device_id, int64_t now_ms,
                                size_t *purged_out, struct hub_err *err)
{
    conn_t *c = NULL;
    int rc = hub_store__sqlite_acquire(store, &c, err);
    if (rc != 0)
        return rc;
    if ((rc = hub_store__sqlite_begin(c, err)) != 0)
        goto release;
    if ((rc = device_exists(c, device_id, err)) != 0)
        goto rollback;
    sqlite3_stmt *st = NULL;
    if ((rc = stmt(c, S_C2D_PURGE_FB, &st, err)) != 0)
        goto rollback;
    hub_store__bind_text(st, 1, device_id);
    sqlite3_bind_int64(st, 2, now_ms);
    if ((rc = hub_store__exec(c, st, "writing purge feedback", NULL, err)) != 0)
        goto rollback;
    if ((rc = stmt(c, S_C2D_PURGE, &st, err)) != 0)
        goto rollback;
    hub_store__bind_text(st, 1, device_id);
    size_t n = 0;
    if ((rc = hub_store__exec(c, st, "purging C2D messages", &n, err)) != 0)
        goto rollback;
    if ((rc = hub_store__sqlite_commit(c, err)) == 0)
        *purged_out = n;
    goto release;
rollback:
    hub_store__sqlite_rollback(c);
release:
    hub_store__sqlite_release(store, c);
    return rc;
}

int hub_store__sqlite_c2d_expire(struct hub_store *store, int64_t now_ms, size_t *expired_out,
                                 struct hub_err *err)
{
    conn_t *c = NULL;
    int rc = hub_store__sqlite_acquire(store, &c, err);
    if (rc != 0)
        return rc;
    if ((rc = hub_store__sqlite_begin(c, err)) != 0)
        goto release;
    sqlite3_stmt *st = NULL;
    if ((rc = stmt(c, S_C2D_EXPIRE_FB, &st, err)) != 0)
        goto rollback;
    sqlite3_bind_int64(st, 1, now_ms);
    if ((rc = hub_store__exec(c, st, "writing expiry feedback", NULL, err)) != 0)
        goto rollback;
    if ((rc = stmt(c, S_C2D_EXPIRE, &st, err)) != 0)
        goto rollback;
    sqlite3_bind_int64(st, 1, now_ms);
    size_t n = 0;
    if ((rc = hub_store__exec(c, st, "expiring C2D messages", &n, err)) != 0)
        goto rollback;
    if ((rc = hub_store__sqlite_commit(c, err)) == 0)
        *expired_out = n;
    goto release;
rollback:
    hub_store__sqlite_rollback(c);
release:
    hub_store__sqlite_release(store, c);
    return rc;
}

int hub_store__sqlite_c2d_count(struct hub_store *store, const char *device_id, size_t *out,
                                struct hub_err *err)
{
    int64_t n = 0;
    int rc = query_int64(store, S_C2D_COUNT, device_id, NULL, "counting C2D messages", &n, err);
    if (rc == HUB_E_NOT_FOUND)
        return HUB_ERR(err, HUB_E_NOT_FOUND, "device '%.128s' not found", device_id);
    if (rc == 0)
        *out = (size_t)n;
    return rc;
}

/* ---- feedback ------------------------------------------------------------- */

static int read_feedback(sqlite3_stmt *st, struct hub_c2d_feedback *f, struct hub_err *err)
{
    memset(f, 0, sizeof(*f));
    int rc;
    if ((rc = copy_text(st, 1, f->original_message_id, sizeof(f->original_message_id), err)) != 0 ||
        (rc = copy_text(st, 2, f->device_id, sizeof(f->device_id), err)) != 0 ||
        (rc = copy_text(st, 3, f->device_generation_id, sizeof(f->device_generation_id), err)) != 0)
        return rc;
    if (hub_c2d_outcome_parse((const char *)sqlite3_column_text(st, 5), &f->status, err) != 0)
        return HUB_ERR(err, HUB_E_STORE, "stored feedback row has an unknown status");
    f->seq = sqlite3_column_int64(st, 0);
    f->enqueued_ms = sqlite3_column_int64(st, 4);
    return 0;
}

int hub_store__sqlite_feedback_receive1(struct hub_store *store, int64_t now_ms,
                                        const char *lock_token, int64_t lock_expiry_ms, size_t max,
                                        struct hub_c2d_feedback_list **out_new, struct hub_err *err)
{
    struct hub_c2d_feedback_list *list = calloc(1, sizeof(*list));
    if (list == NULL)
        return HUB_ERR(err, HUB_E_NOMEM, "out of memory reading feedback");
    conn_t *c = NULL;
    int rc = hub_store__sqlite_acquire(store, &c, err);
    if (rc != 0)
        goto free_list;
    if ((rc = hub_store__sqlite_begin(c, err)) != 0)
        goto release;
    sqlite3_stmt *st = NULL;
    if ((rc = stmt(c, S_FB_LOCK, &st, err)) != 0)
        goto rollback;
    hub_store__bind_text(st, 1, lock_token);
    sqlite3_bind_int64(st, 2, lock_expiry_ms);
    sqlite3_bind_int64(st, 3, now_ms);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)max);
    size_t locked = 0;
    if ((rc = hub_store__exec(c, st, "locking feedback", &locked, err)) != 0)
        goto rollback;
    if (locked > 0) {
        list->items = calloc(locked, sizeof(*list->items));
        if (list->items == NULL) {
            rc = HUB_ERR(err, HUB_E_NOMEM, "out of memory reading feedback");
            goto rollback;
        }
        if ((rc = stmt(c, S_FB_READ, &st, err)) != 0)
            goto rollback;
        hub_store__bind_text(st, 1, lock_token);
        for (;;) {
            int step = sqlite3_step(st);
            if (step == SQLITE_DONE)
                break;
            if (step != SQLITE_ROW) {
                rc = hub_store__step_err(c, step, "reading feedback", err);
                break;
            }
            /* A token reused by the caller could match older rows: never overrun. */
            if (list->count == locked)
                break;
            if ((rc = read_feedback(st, &list->items[list->count], err)) != 0)
                break;
            list->count++;
        }
        hub_store__stmt_done(st);
        if (rc != 0)
            goto rollback;
    }
    if ((rc = hub_store__sqlite_commit(c, err)) != 0)
        goto release;
    hub_store__sqlite_release(store, c);
    *out_new = list;
    return 0;
rollback:
    hub_store__sqlite_rollback(c);
release:
    hub_store__sqlite_release(store, c);
free_list:
    hub_c2d_feedback_list_free(list);
    return rc;
}

int hub_store__sqlite_feedback_settle(struct hub_store *store, const char *lock_token,
                                      bool complete, int64_t now_ms, size_t *settled_out,
                                      struct hub_err *err)
{
    conn_t *c = NULL;
    int rc = hub_store__sqlite_acquire(store, &c, err);
    if (rc != 0)
        return rc;
    sqlite3_stmt *st = NULL;
    size_t n = 0;
    if ((rc = stmt(c, complete ? S_FB_DELETE : S_FB_UNLOCK, &st, err)) == 0) {
        hub_store__bind_text(st, 1, lock_token);
        sqlite3_bind_int64(st, 2, now_ms);
        rc = hub_store__exec(c, st, "settling feedback", &n, err);
    }
    hub_store__sqlite_release(store, c);
    if (rc != 0)
        return rc;
    *settled_out = n;
    if (n == 0)
        return HUB_ERR(err, HUB_E_NOT_FOUND, "no feedback is locked with '%.64s'", lock_token);
    return 0;
}

int hub_store__sqlite_feedback_prune(struct hub_store *store, int64_t before_ms,
                                     size_t *deleted_out, struct hub_err *err)
{
    return write_int64s(store, S_FB_PRUNE, before_ms, 0, "pruning feedback", deleted_out, err);
}
