/*
 * store, schema step 3 -> 4 (issue 6): CA rows gain their CRL columns and
 * device rows x509_not_after. A database left by the previous hubd opens
 * with its rows intact and the new columns empty; the columns round-trip
 * through insert/update/get/list; the device column is a runtime column
 * (device_update leaves it alone); deleting a CA deletes its CRL.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "store/store.h"
#include "store/store_int.h"

static void ok(int rc, const struct hub_err *err, const char *what)
{
    if (rc != 0)
        fail_msg("%s: %s (%s)", what, err->msg, hub_err_name(rc));
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

static void test_migration_and_columns(void **state)
{
    (void)state;
    char dir[] = "/tmp/hubd-test-store-crl-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof(path), "%s/hub.db", dir);

    /* the database as the previous schema left it, one CA and one device */
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    struct hub_err err = {0};
    ok(hub_store__sqlite_migrate_to(db, 3, &err), &err, "migrate to 3");
    assert_int_equal(
        sqlite3_exec(db,
                     "INSERT INTO ca_certs (name, pem, subject, thumbprint_sha1, "
                     "thumbprint_sha256, not_before, not_after, verified, etag, created, updated) "
                     "VALUES ('ca1', 'PEM', 'CN=x', 'A', 'B', 1, 2, 1, 'E1', 1, 1);"
                     "INSERT INTO devices (id, generation_id, etag, status, auth_type, created, "
                     "updated) VALUES ('d1', '1', 'E', 'enabled', 'certificateAuthority', 1, 1)",
                     NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);

    struct hub_store *store = NULL;
    ok(hub_store_sqlite_open(path, NULL, &store, &err), &err, "open old db");
    assert_true(hub_store_sqlite_schema_version() >= 4);
    assert_int_equal(db_int(path, "PRAGMA user_version"), hub_store_sqlite_schema_version());

    struct hub_ca_cert *ca = NULL;
    ok(hub_store_ca_get1(store, "ca1", &ca, &err), &err, "get migrated CA");
    assert_string_equal(ca->pem, "PEM");
    assert_null(ca->crl_pem);
    assert_int_equal(ca->crl_next_update, 0);
    struct hub_device dev;
    ok(hub_store_device_get(store, "d1", &dev, &err), &err, "get migrated device");
    assert_int_equal(dev.x509_not_after, 0);

    /* CRL columns round-trip, conditional on the etag like every CA column */
    ca->crl_pem = strdup("-----BEGIN X509 CRL-----\nAA==\n-----END X509 CRL-----\n");
    ca->crl_this_update = 100;
    ca->crl_next_update = 200;
    ca->crl_revoked_count = 3;
    ca->crl_updated = 150;
    snprintf(ca->etag, sizeof(ca->etag), "E2");
    assert_int_equal(hub_store_ca_update(store, ca, "stale", &err), HUB_E_ETAG_MISMATCH);
    ok(hub_store_ca_update(store, ca, "E1", &err), &err, "update with CRL");
    struct hub_ca_cert_list *list = NULL;
    ok(hub_store_ca_list1(store, true, &list, &err), &err, "list");
    assert_int_equal(list->count, 1);
    assert_string_equal(list->items[0].crl_pem, ca->crl_pem);
    assert_int_equal(list->items[0].crl_this_update, 100);
    assert_int_equal(list->items[0].crl_next_update, 200);
    assert_int_equal(list->items[0].crl_revoked_count, 3);
    assert_int_equal(list->items[0].crl_updated, 150);
    struct hub_ca_cert copy;
    ok(hub_ca_cert_copy(&copy, &list->items[0], &err), &err, "copy");
    assert_ptr_not_equal(copy.crl_pem, list->items[0].crl_pem);
    assert_string_equal(copy.crl_pem, ca->crl_pem);
    hub_ca_cert_clear(&copy);
    hub_ca_cert_list_free(list);

    /* deleting the CA takes its CRL with it */
    ok(hub_store_ca_delete(store, "ca1", NULL, &err), &err, "delete");
    assert_int_equal(db_int(path, "SELECT count(*) FROM ca_certs WHERE crl_pem != ''"), 0);
    hub_ca_cert_free(ca);

    /* x509_not_after: set by its own call, kept by identity updates */
    ok(hub_store_device_cert_expiry_set(store, "d1", 12345, &err), &err, "expiry set");
    ok(hub_store_device_get(store, "d1", &dev, &err), &err, "get");
    assert_int_equal(dev.x509_not_after, 12345);
    dev.x509_not_after = 1;
    snprintf(dev.etag, sizeof(dev.etag), "E9");
    ok(hub_store_device_update(store, &dev, "E", &err), &err, "identity update");
    ok(hub_store_device_get(store, "d1", &dev, &err), &err, "get");
    assert_int_equal(dev.x509_not_after, 12345);
    assert_int_equal(hub_store_device_cert_expiry_set(store, "nosuch", 1, &err), HUB_E_NOT_FOUND);

    /* insert stores it verbatim (a restore, for instance) */
    struct hub_device d2 = dev;
    snprintf(d2.id, sizeof(d2.id), "d2");
    d2.x509_not_after = 777;
    ok(hub_store_device_insert(store, &d2, &err), &err, "insert");
    ok(hub_store_device_get(store, "d2", &dev, &err), &err, "get d2");
    assert_int_equal(dev.x509_not_after, 777);

    hub_store_close(store);
    char p[256];
    const char *suffix[] = {"", "-wal", "-shm"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(p, sizeof(p), "%s%s", path, suffix[i]);
        unlink(p);
    }
    assert_int_equal(rmdir(dir), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_migration_and_columns),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
