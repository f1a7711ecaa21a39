/*
 * store: the SQLite backend's provisioning service tables (schema step
 * 4 -> 5 in store_migrate.c; contract in store.h).
 *
 *   dps_enrollment_groups / dps_enrollments / dps_registrations
 *   (id, etag, group_id, body, created, updated), body opaque JSON text.
 *
 * DPS writes are rare (an operator's API call, a device registration), so
 * statements are prepared per call instead of taking slots of the shared
 * statement cache. A conditional write is BEGIN IMMEDIATE, read the etag,
 * write, COMMIT: compare-and-swap.
 */
#include "store/store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct hub_store__conn conn_t;

static const char *const TABLES[] = {
    [HUB_STORE_DPS_GROUPS] = "dps_enrollment_groups",
    [HUB_STORE_DPS_ENROLLMENTS] = "dps_enrollments",
    [HUB_STORE_DPS_REGISTRATIONS] = "dps_registrations",
};

static const char *table_name(enum hub_store_dps_table t)
{
    return (unsigned)t < sizeof(TABLES) / sizeof(TABLES[0]) ? TABLES[t] : NULL;
}

void hub_dps_rec_clear(struct hub_dps_rec *rec)
{
    if (rec == NULL)
        return;
    free(rec->owned_);
    memset(rec, 0, sizeof(*rec));
}

void hub_dps_rec_list_free(struct hub_dps_rec_list *list)
{
    if (list == NULL)
        return;
    for (size_t i = 0; i < list->count; i++)
        hub_dps_rec_clear(&list->items[i]);
    free(list->items);
    free(list);
}

/* `tmpl` holds one "%s" where the table name goes (a name from TABLES[],
 * never caller text). */
static int prepare(conn_t *c, const char *tmpl, const char *table, sqlite3_stmt **st,
                   struct hub_err *err)
{
    char sql[512];
    const char *at = strstr(tmpl, "%s");
    snprintf(sql, sizeof(sql), "%.*s%s%s", (int)(at - tmpl), tmpl, table, at + 2);
    sqlite3 *db = hub_store__sqlite_db(c);
    int rc = sqlite3_prepare_v2(db, sql, -1, st, NULL);
    if (rc != SQLITE_OK)
        return hub_store__sqlite_err(db, rc, "preparing a provisioning statement", err);
    return 0;
}

static int check_args(enum hub_store_dps_table table, const char *id, struct hub_err *err)
{
    if (table_name(table) == NULL)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "unknown provisioning table %d", (int)table);
    if (id == NULL || id[0] == '\0' || strlen(id) > HUB_STORE_DPS_ID_MAX)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "provisioning id missing or too long");
    return 0;
}

/* Row (id, etag, group_id, body, created, updated) at column 0.. into *out. */
static int read_row(sqlite3_stmt *st, struct hub_dps_rec *out, struct hub_err *err)
{
    memset(out, 0, sizeof(*out));
    for (int i = 0; i < 4; i++)
        if (sqlite3_column_type(st, i) != SQLITE_TEXT)
            return HUB_ERR(err, HUB_E_STORE, "damaged provisioning row (column %d)", i);
    size_t idn = (size_t)sqlite3_column_bytes(st, 0);
    size_t en = (size_t)sqlite3_column_bytes(st, 1);
    size_t gn = (size_t)sqlite3_column_bytes(st, 2);
    if (idn > HUB_STORE_DPS_ID_MAX || en >= HUB_ETAG_SIZE || gn > HUB_STORE_DPS_ID_MAX)
        return HUB_ERR(err, HUB_E_STORE, "damaged provisioning row (oversized key)");
    memcpy(out->id, sqlite3_column_text(st, 0), idn);
    memcpy(out->etag, sqlite3_column_text(st, 1), en);
    memcpy(out->group_id, sqlite3_column_text(st, 2), gn);
    size_t bn = (size_t)sqlite3_column_bytes(st, 3);
    char *body = malloc(bn + 1);
    if (body == NULL)
        return HUB_ERR(err, HUB_E_NOMEM, "out of memory reading a provisioning row");
    memcpy(body, sqlite3_column_text(st, 3), bn);
    body[bn] = '\0';
    out->body = body;
    out->owned_ = body;
    out->created = sqlite3_column_int64(st, 4);
    out->updated = sqlite3_column_int64(st, 5);
    return 0;
}

/* Reads the etag of row `id` inside the caller's transaction: 0 found, 1 none. */
static int read_etag(conn_t *c, const char *table, const char *id, char etag[HUB_ETAG_SIZE],
                     struct hub_err *err)
{
    sqlite3_stmt *st = NULL;
    int rc = prepare(c, "SELECT etag FROM %s WHERE id = ?1", table, &st, err);
    if (rc != 0)
        return rc;
    hub_store__bind_text(st, 1, id);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        snprintf(etag, HUB_ETAG_SIZE, "%s", (const char *)sqlite3_column_text(st, 0));
        rc = 0;
    } else if (step == SQLITE_DONE) {
        rc = 1;
    } else {
        rc = hub_store__step_err(c, step, "reading an etag", err);
    }
    sqlite3_finalize(st);
    return rc;
}

int hub_store__sqlite_dps_put(struct hub_store *store, enum hub_store_dps_table table,
                              const struct hub_dps_rec *rec, const char *expected_etag,
                              bool create_only, struct hub_err *err)
{
    int rc = check_args(table, rec != NULL ? rec->id : NULL, err);
    if (rc != 0)
        return rc;
    if (rec->etag[0] == '\0' || rec->body == NULL)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "provisioning record without etag or body");
    const char *tn = table_name(table);
    conn_t *c = NULL;
    if ((rc = hub_store__sqlite_acquire(store, &c, err)) != 0)
        return rc;
    if ((rc = hub_store__sqlite_begin(c, err)) != 0)
        goto release;
    char cur[HUB_ETAG_SIZE] = "";
    int found = read_etag(c, tn, rec->id, cur, err);
    if (found < 0) {
        rc = found;
        goto rollback;
    }
    if (expected_etag != NULL) {
        if (found == 1) {
            rc = HUB_ERR(err, HUB_E_NOT_FOUND, "'%.128s' not found", rec->id);
            goto rollback;
        }
        if (strcmp(cur, expected_etag) != 0) {
            rc = HUB_ERR(err, HUB_E_ETAG_MISMATCH, "etag of '%.128s' does not match", rec->id);
            goto rollback;
        }
    } else if (create_only && found == 0) {
        rc = HUB_ERR(err, HUB_E_EXISTS, "'%.128s' already exists", rec->id);
        goto rollback;
    }
    sqlite3_stmt *st = NULL;
    /* An upsert keeps `created` of the row it replaces. */
    rc = prepare(c,
                 "INSERT INTO %s (id, etag, group_id, body, created, updated)"
                 " VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (id) DO UPDATE SET"
                 " etag = excluded.etag, group_id = excluded.group_id, body = excluded.body,"
                 " updated = excluded.updated",
                 tn, &st, err);
    if (rc != 0)
        goto rollback;
    hub_store__bind_text(st, 1, rec->id);
    hub_store__bind_text(st, 2, rec->etag);
    hub_store__bind_text(st, 3, rec->group_id);
    hub_store__bind_text(st, 4, rec->body);
    sqlite3_bind_int64(st, 5, rec->created);
    sqlite3_bind_int64(st, 6, rec->updated);
    int step = sqlite3_step(st);
    sqlite3_finalize(st);
    if (step != SQLITE_DONE) {
        rc = hub_store__step_err(c, step, "writing a provisioning row", err);
        goto rollback;
    }
    rc = hub_store__sqlite_commit(c, err);
    goto release;
rollback:
    hub_store__sqlite_rollback(c);
release:
    hub_store__sqlite_release(store, c);
    return rc;
}

int hub_store__sqlite_dps_get(struct hub_store *store, enum hub_store_dps_table table,
                              const char *id, struct hub_dps_rec *out, struct hub_err *err)
{
    memset(out, 0, sizeof(*out));
    int rc = check_args(table, id, err);
    if (rc != 0)
        return rc;
    conn_t *c = NULL;
    if ((rc = hub_store__sqlite_acquire(store, &c, err)) != 0)
        return rc;
    sqlite3_stmt *st = NULL;
    rc = prepare(c, "SELECT id, etag, group_id, body, created, updated FROM %s WHERE id = ?1",
                 table_name(table), &st, err);
    if (rc == 0) {
        hub_store__bind_text(st, 1, id);
        int step = sqlite3_step(st);
        if (step == SQLITE_ROW)
            rc = read_row(st, out, err);
        else if (step == SQLITE_DONE)
            rc = HUB_ERR(err, HUB_E_NOT_FOUND, "'%.128s' not found", id);
        else
            rc = hub_store__step_err(c, step, "reading a provisioning row", err);
        sqlite3_finalize(st);
    }
    hub_store__sqlite_release(store, c);
    if (rc != 0)
        hub_dps_rec_clear(out);
    return rc;
}

int hub_store__sqlite_dps_delete(struct hub_store *store, enum hub_store_dps_table table,
                                 const char *id, const char *expected_etag, struct hub_err *err)
{
    int rc = check_args(table, id, err);
    if (rc != 0)
        return rc;
    const char *tn = table_name(table);
    conn_t *c = NULL;
    if ((rc = hub_store__sqlite_acquire(store, &c, err)) != 0)
        return rc;
    if ((rc = hub_store__sqlite_begin(c, err)) != 0)
        goto release;
    char cur[HUB_ETAG_SIZE] = "";
    int found = read_etag(c, tn, id, cur, err);
    if (found < 0) {
        rc = found;
        goto rollback;
    }
    if (found == 1) {
        rc = HUB_ERR(err, HUB_E_NOT_FOUND, "'%.128s' not found", id);
        goto rollback;
    }
    if (expected_etag != NULL && strcmp(cur, expected_etag) != 0) {
        rc = HUB_ERR(err, HUB_E_ETAG_MISMATCH, "etag of '%.128s' does not match", id);
        goto rollback;
    }
    sqlite3_stmt *st = NULL;
    if ((rc = prepare(c, "DELETE FROM %s WHERE id = ?1", tn, &st, err)) != 0)
        goto rollback;
    hub_store__bind_text(st, 1, id);
    int step = sqlite3_step(st);
    sqlite3_finalize(st);
    if (step != SQLITE_DONE) {
        rc = hub_store__step_err(c, step, "deleting a provisioning row", err);
        goto rollback;
    }
    rc = hub_store__sqlite_commit(c, err);
    goto release;
rollback:
    hub_store__sqlite_rollback(c);
release:
    hub_store__sqlite_release(store, c);
    return rc;
}

int hub_store__sqlite_dps_list1(struct hub_store *store, enum hub_store_dps_table table,
                                const char *group_id, struct hub_dps_rec_list **out_new,
                                struct hub_err *err)
{
    *out_new = NULL;
    if (table_name(table) == NULL)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "unknown provisioning table %d", (int)table);
    struct hub_dps_rec_list *list = calloc(1, sizeof(*list));
    if (list == NULL)
        return HUB_ERR(err, HUB_E_NOMEM, "out of memory listing provisioning rows");
    conn_t *c = NULL;
    int rc = hub_store__sqlite_acquire(store, &c, err);
    if (rc != 0) {
        free(list);
        return rc;
    }
    sqlite3_stmt *st = NULL;
    rc = prepare(c,
                 group_id != NULL ? "SELECT id, etag, group_id, body, created, updated FROM %s"
                                    " WHERE group_id = ?1 ORDER BY id"
                                  : "SELECT id, etag, group_id, body, created, updated FROM %s"
                                    " ORDER BY id",
                 table_name(table), &st, err);
    if (rc == 0) {
        if (group_id != NULL)
            hub_store__bind_text(st, 1, group_id);
        size_t cap = 0;
        int step;
        while ((step = sqlite3_step(st)) == SQLITE_ROW) {
            if (list->count == cap) {
                size_t ncap = cap ? cap * 2 : 8;
                struct hub_dps_rec *n = realloc(list->items, ncap * sizeof(*n));
                if (n == NULL) {
                    rc = HUB_ERR(err, HUB_E_NOMEM, "out of memory listing provisioning rows");
                    break;
                }
                list->items = n;
                cap = ncap;
            }
            if ((rc = read_row(st, &list->items[list->count], err)) != 0)
                break;
            list->count++;
        }
        if (rc == 0 && step != SQLITE_DONE)
            rc = hub_store__step_err(c, step, "listing provisioning rows", err);
        sqlite3_finalize(st);
    }
    hub_store__sqlite_release(store, c);
    if (rc != 0) {
        hub_dps_rec_list_free(list);
        return rc;
    }
    *out_new = list;
    return 0;
}

/* ---- wrappers (store.h) ----------------------------------------------------- */

int hub_store_dps_put(struct hub_store *store, enum hub_store_dps_table table,
                      const struct hub_dps_rec *rec, const char *expected_etag, bool create_only,
                      struct hub_err *err)
{
    return store->ops->dps_put(store, table, rec, expected_etag, create_only, err);
}

int hub_store_dps_get(struct hub_store *store, enum hub_store_dps_table table, const char *id,
                      struct hub_dps_rec *out, struct hub_err *err)
{
    return store->ops->dps_get(store, table, id, out, err);
}

int hub_store_dps_delete(struct hub_store *store, enum hub_store_dps_table table, const char *id,
                         const char *expected_etag, struct hub_err *err)
{
    return store->ops->dps_delete(store, table, id, expected_etag, err);
}

int hub_store_dps_list1(struct hub_store *store, enum hub_store_dps_table table,
                        const char *group_id, struct hub_dps_rec_list **out_new,
                        struct hub_err *err)
{
    return store->ops->dps_list1(store, table, group_id, out_new, err);
}
