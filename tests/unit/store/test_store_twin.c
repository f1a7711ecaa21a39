/*
 * store (SQLite backend), device twins: a device without a twin row, insert
 * and read back, round trip across a reopen, compare-and-swap on the etag,
 * cascade on device delete, the desired patch log (order, pruning, cascade),
 * an injected commit fault, and the 2 -> 3 migration of a database an older
 * hubd left. Every test gets a fresh database in its own mkdtemp directory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "common/err.h"
#include "store/store.h"
#include "store/store_int.h"

struct fx {
    char dir[64];
    char path[128];
    struct hub_store *store;
};

static void ok(int rc, const struct hub_err *err, const char *what)
{
    if (rc != 0)
        fail_msg("%s: %s (%s)", what, hub_err_name(rc), err->msg);
}

static struct fx *fx_new(void)
{
    struct fx *fx = calloc(1, sizeof(*fx));
    assert_non_null(fx);
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/hubd-test-store-twin-XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    snprintf(fx->path, sizeof(fx->path), "%s/hub.db", fx->dir);
    return fx;
}

static void fx_open(struct fx *fx)
{
    struct hub_err err = {0};
    ok(hub_store_sqlite_open(fx->path, NULL, &fx->store, &err), &err, "open");
}

static void fx_free(struct fx *fx)
{
    hub_store_close(fx->store);
    DIR *d = opendir(fx->dir);
    if (d != NULL) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            char p[512];
            snprintf(p, sizeof(p), "%s/%s", fx->dir, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    assert_int_equal(rmdir(fx->dir), 0);
    free(fx);
}

static void add_device(struct hub_store *store, const char *id)
{
    struct hub_device d;
    memset(&d, 0, sizeof(d));
    snprintf(d.id, sizeof(d.id), "%s", id);
    snprintf(d.generation_id, sizeof(d.generation_id), "1");
    snprintf(d.etag, sizeof(d.etag), "E");
    d.auth_type = HUB_AUTH_CERT_AUTHORITY;
    struct hub_err err = {0};
    ok(hub_store_device_insert(store, &d, &err), &err, "insert device");
}

static struct hub_twin_rec rec_of(const char *id, const char *etag, int64_t v, const char *desired)
{
    struct hub_twin_rec r;
    memset(&r, 0, sizeof(r));
    snprintf(r.device_id, sizeof(r.device_id), "%s", id);
    snprintf(r.etag, sizeof(r.etag), "%s", etag);
    r.version = v;
    r.desired_version = v;
    r.reported_version = 1;
    r.tags = "{\"t\":1}";
    r.desired = desired;
    r.desired_meta = "{\"$lastUpdated\":\"x\"}";
    r.reported = "{}";
    r.reported_meta = "{\"$lastUpdated\":\"y\"}";
    r.updated = 1000 + v;
    return r;
}

static void test_no_row_and_unknown_device(void **state)
{
    (void)state;
    struct fx *fx = fx_new();
    fx_open(fx);
    struct hub_err err = {0};
    struct hub_twin_rec got;
    assert_int_equal(hub_store_twin_get(fx->store, "nobody", &got, &err), HUB_E_NOT_FOUND);
    add_device(fx->store, "d1");
    ok(hub_store_twin_get(fx->store, "d1", &got, &err), &err, "get");
    assert_int_equal(got.version, 0);
    assert_null(got.desired);
    hub_twin_rec_clear(&got);
    /* Insert for an unknown device: NOT_FOUND (the foreign key). */
    struct hub_twin_rec r = rec_of("nobody", "e1", 1, "{}");
    assert_int_equal(hub_store_twin_write(fx->store, &r, NULL, NULL, &err), HUB_E_NOT_FOUND);
    /* Update of a device without a row: NOT_FOUND. */
    r = rec_of("d1", "e2", 2, "{}");
    assert_int_equal(hub_store_twin_write(fx->store, &r, "e1", NULL, &err), HUB_E_NOT_FOUND);
    /* Bad records are refused before touching the database. */
    r = rec_of("d1", "", 1, "{}");
    assert_int_equal(hub_store_twin_write(fx->store, &r, NULL, NULL, &err), HUB_E_INVALID_ARG);
    r = rec_of("d1", "e1", 0, "{}");
    assert_int_equal(hub_store_twin_write(fx->store, &r, NULL, NULL, &err), HUB_E_INVALID_ARG);
    r = rec_of("d1", "e1", 1, NULL);
    assert_int_equal(hub_store_twin_write(fx->store, &r, NULL, NULL, &err), HUB_E_INVALID_ARG);
    fx_free(fx);
}

static void test_round_trip_reopen_and_cas(void **state)
{
    (void)state;
    struct fx *fx = fx_new();
    fx_open(fx);
    add_device(fx->store, "d1");
    struct hub_err err = {0};
    struct hub_twin_rec r = rec_of("d1", "e1", 1, "{\"a\":\"caf\xc3\xa9\"}");
    ok(hub_store_twin_write(fx->store, &r, NULL, NULL, &err), &err, "insert");
    assert_int_equal(hub_store_twin_write(fx->store, &r, NULL, NULL, &err), HUB_E_EXISTS);

    /* CAS: the right etag wins once; the stale one loses. */
    struct hub_twin_rec r2 = rec_of("d1", "e2", 2, "{\"a\":2}");
    ok(hub_store_twin_write(fx->store, &r2, "e1", NULL, &err), &err, "cas update");
    struct hub_twin_rec r3 = rec_of("d1", "e3", 3, "{\"a\":3}");
    assert_int_equal(hub_store_twin_write(fx->store, &r3, "e1", NULL, &err), HUB_E_ETAG_MISMATCH);
    assert_non_null(strstr(err.msg, "has changed"));

    hub_store_close(fx->store);
    fx->store = NULL;
    fx_open(fx);
    struct hub_twin_rec got;
    ok(hub_store_twin_get(fx->store, "d1", &got, &err), &err, "get after reopen");
    assert_string_equal(got.etag, "e2");
    assert_int_equal(got.version, 2);
    assert_int_equal(got.desired_version, 2);
    assert_int_equal(got.reported_version, 1);
    assert_string_equal(got.tags, "{\"t\":1}");
    assert_string_equal(got.desired, "{\"a\":2}");
    assert_string_equal(got.desired_meta, "{\"$lastUpdated\":\"x\"}");
    assert_string_equal(got.reported, "{}");
    assert_string_equal(got.reported_meta, "{\"$lastUpdated\":\"y\"}");
    assert_int_equal(got.updated, 1002);
    hub_twin_rec_clear(&got);
    hub_twin_rec_clear(&got); /* zeroed: a no-op */
    fx_free(fx);
}

static void test_log_and_cascade(void **state)
{
    (void)state;
    struct fx *fx = fx_new();
    fx_open(fx);
    add_device(fx->store, "d1");
    add_device(fx->store, "d2");
    struct hub_err err = {0};
    struct hub_twin_rec r = rec_of("d1", "e1", 1, "{}");
    ok(hub_store_twin_write(fx->store, &r, NULL, NULL, &err), &err, "insert");
    char prev[16] = "e1";
    int total = HUB_STORE_TWIN_LOG_KEEP + 5;
    for (int v = 2; v <= total; v++) {
        char etag[16], patch[64];
        snprintf(etag, sizeof(etag), "e%d", v);
        snprintf(patch, sizeof(patch), "{\"v\":%d,\"$version\":%d}", v, v);
        struct hub_twin_rec n = rec_of("d1", etag, v, "{}");
        ok(hub_store_twin_write(fx->store, &n, prev, patch, &err), &err, "write with log");
        snprintf(prev, sizeof(prev), "%s", etag);
    }
    struct hub_twin_log *log = NULL;
    ok(hub_store_twin_log_read1(fx->store, "d1", 0, &log, &err), &err, "read log");
    assert_int_equal(log->count, HUB_STORE_TWIN_LOG_KEEP);
    assert_int_equal(log->items[0].desired_version, total - HUB_STORE_TWIN_LOG_KEEP + 1);
    assert_int_equal(log->items[log->count - 1].desired_version, total);
    char want[64];
    snprintf(want, sizeof(want), "{\"v\":%d,\"$version\":%d}", total, total);
    assert_string_equal(log->items[log->count - 1].patch, want);
    hub_twin_log_free(log);
    ok(hub_store_twin_log_read1(fx->store, "d1", total - 2, &log, &err), &err, "read tail");
    assert_int_equal(log->count, 2);
    hub_twin_log_free(log);
    ok(hub_store_twin_log_read1(fx->store, "d2", 0, &log, &err), &err, "empty log");
    assert_int_equal(log->count, 0);
    hub_twin_log_free(log);
    assert_int_equal(hub_store_twin_log_read1(fx->store, "nobody", 0, &log, &err), HUB_E_NOT_FOUND);

    /* A failed commit writes neither the twin nor the log. */
    struct hub_twin_rec f = rec_of("d1", "ef", total + 1, "{\"lost\":1}");
    hub_store_sqlite_fail_commits(fx->store, 1);
    assert_int_equal(hub_store_twin_write(fx->store, &f, prev, "{\"lost\":1}", &err), HUB_E_IO);
    struct hub_twin_rec got;
    ok(hub_store_twin_get(fx->store, "d1", &got, &err), &err, "get");
    assert_int_equal(got.version, total);
    hub_twin_rec_clear(&got);
    ok(hub_store_twin_log_read1(fx->store, "d1", total, &log, &err), &err, "read log");
    assert_int_equal(log->count, 0);
    hub_twin_log_free(log);

    /* Deleting the device deletes its twin and log; re-creating it starts clean. */
    ok(hub_store_device_delete(fx->store, "d1", NULL, &err), &err, "delete device");
    assert_int_equal(hub_store_twin_get(fx->store, "d1", &got, &err), HUB_E_NOT_FOUND);
    add_device(fx->store, "d1");
    ok(hub_store_twin_get(fx->store, "d1", &got, &err), &err, "get re-created");
    assert_int_equal(got.version, 0);
    hub_twin_rec_clear(&got);
    ok(hub_store_twin_log_read1(fx->store, "d1", 0, &log, &err), &err, "log after re-create");
    assert_int_equal(log->count, 0);
    hub_twin_log_free(log);
    fx_free(fx);
}

static int db_int(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int v = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

/* A database left by the hubd before twins (schema 2), with a device in it,
 * opens with this build: the device reads as having no twin row yet and one
 * can be written. */
static void test_migration_from_schema_2(void **state)
{
    (void)state;
    struct fx *fx = fx_new();
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(fx->path, &db), SQLITE_OK);
    struct hub_err err = {0};
    ok(hub_store__sqlite_migrate_to(db, 2, &err), &err, "migrate to 2");
    assert_int_equal(
        sqlite3_exec(db,
                     "INSERT INTO devices (id, generation_id, etag, status, auth_type, "
                     "created, updated) VALUES ('old', '1', 'E', 'enabled', "
                     "'certificateAuthority', 1, 1)",
                     NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(db_int(fx->path, "SELECT count(*) FROM sqlite_schema WHERE name = 'twins'"),
                     0);
    fx_open(fx);
    assert_true(hub_store_sqlite_schema_version() >= 3);
    assert_int_equal(db_int(fx->path, "PRAGMA user_version"), hub_store_sqlite_schema_version());
    struct hub_twin_rec got;
    ok(hub_store_twin_get(fx->store, "old", &got, &err), &err, "get old device's twin");
    assert_int_equal(got.version, 0);
    struct hub_twin_rec r = rec_of("old", "e1", 1, "{}");
    ok(hub_store_twin_write(fx->store, &r, NULL, "{\"$version\":1}", &err), &err, "write");
    ok(hub_store_twin_get(fx->store, "old", &got, &err), &err, "get");
    assert_int_equal(got.version, 1);
    hub_twin_rec_clear(&got);
    fx_free(fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_row_and_unknown_device),
        cmocka_unit_test(test_round_trip_reopen_and_cas),
        cmocka_unit_test(test_log_and_cascade),
        cmocka_unit_test(test_migration_from_schema_2),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
