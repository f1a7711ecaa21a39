/*
 * store (SQLite backend): CRUD, conditional writes, migrations, durability
 * across reopen, paging and filters, and concurrent use. Each test gets its
 * own database in a fresh mkdtemp directory, removed afterwards.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "common/err.h"
#include "store/store.h"

struct fx {
    char dir[64];
    char path[128];
    struct hub_store *store;
};

static int fx_setup(void **state)
{
    struct fx *fx = calloc(1, sizeof(*fx));
    assert_non_null(fx);
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/hubd-test-store-XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    snprintf(fx->path, sizeof(fx->path), "%s/hub.db", fx->dir);
    struct hub_err err = {0};
    int rc = hub_store_sqlite_open(fx->path, NULL, &fx->store, &err);
    if (rc != 0)
        fail_msg("open: %s", err.msg);
    *state = fx;
    return 0;
}

static int fx_teardown(void **state)
{
    struct fx *fx = *state;
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
    return 0;
}

static void reopen(struct fx *fx)
{
    hub_store_close(fx->store);
    fx->store = NULL;
    struct hub_err err = {0};
    int rc = hub_store_sqlite_open(fx->path, NULL, &fx->store, &err);
    if (rc != 0)
        fail_msg("reopen: %s", err.msg);
}

static struct hub_device make_device(const char *id, const char *etag)
{
    struct hub_device d;
    memset(&d, 0, sizeof(d));
    snprintf(d.id, sizeof(d.id), "%s", id);
    snprintf(d.generation_id, sizeof(d.generation_id), "638410284412353535");
    snprintf(d.etag, sizeof(d.etag), "%s", etag);
    d.status = HUB_DEVICE_ENABLED;
    d.auth_type = HUB_AUTH_CERT_AUTHORITY;
    d.created = 1700000000;
    d.updated = 1700000000;
    return d;
}

static struct hub_ca_cert make_ca(const char *name, const char *etag)
{
    struct hub_ca_cert c;
    memset(&c, 0, sizeof(c));
    snprintf(c.name, sizeof(c.name), "%s", name);
    c.pem = (char *)"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    snprintf(c.subject, sizeof(c.subject), "CN=%s", name);
    memset(c.thumbprint_sha1, 'A', 40);
    memset(c.thumbprint_sha256, 'B', 64);
    c.not_before = 1700000000;
    c.not_after = 1900000000;
    snprintf(c.etag, sizeof(c.etag), "%s", etag);
    c.created = 1700000001;
    c.updated = 1700000002;
    return c;
}

/* Field by field: struct padding is not part of the contract. */
static void assert_device_equal(const struct hub_device *a, const struct hub_device *b)
{
    assert_string_equal(a->id, b->id);
    assert_string_equal(a->generation_id, b->generation_id);
    assert_string_equal(a->etag, b->etag);
    assert_int_equal(a->status, b->status);
    assert_string_equal(a->status_reason, b->status_reason);
    assert_int_equal(a->status_updated, b->status_updated);
    assert_int_equal(a->auth_type, b->auth_type);
    assert_string_equal(a->primary_key, b->primary_key);
    assert_string_equal(a->secondary_key, b->secondary_key);
    assert_string_equal(a->primary_thumbprint, b->primary_thumbprint);
    assert_string_equal(a->secondary_thumbprint, b->secondary_thumbprint);
    assert_int_equal(a->conn_state, b->conn_state);
    assert_int_equal(a->conn_state_updated, b->conn_state_updated);
    assert_int_equal(a->last_activity, b->last_activity);
    assert_int_equal(a->c2d_count, b->c2d_count);
    assert_int_equal(a->iot_edge, b->iot_edge);
    assert_int_equal(a->created, b->created);
    assert_int_equal(a->updated, b->updated);
}

static int db_user_version(const char *path)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int v = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

static void db_exec(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

/* ---- migrations and durability -------------------------------------------- */

static void test_migrations_run_on_empty_db(void **state)
{
    struct fx *fx = *state;
    assert_true(hub_store_sqlite_schema_version() >= 1);
    assert_int_equal(db_user_version(fx->path), hub_store_sqlite_schema_version());
    /* WAL is persistent in the file header: a plain connection sees it. */
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(fx->path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT count(*) FROM sqlite_schema WHERE type = 'table' "
                                        "AND name IN ('devices', 'ca_certs')",
                                        -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 2);
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static void test_reopen_is_idempotent_and_keeps_data(void **state)
{
    struct fx *fx = *state;
    struct hub_err err = {0};
    struct hub_device d = make_device("survivor", "MA==");
    d.status = HUB_DEVICE_DISABLED;
    snprintf(d.status_reason, sizeof(d.status_reason), "stolen");
    d.auth_type = HUB_AUTH_SAS;
    snprintf(d.primary_key, sizeof(d.primary_key), "cHJpbWFyeWtleXByaW1hcnlrZXk=");
    snprintf(d.secondary_key, sizeof(d.secondary_key), "c2Vjb25kYXJ5a2V5c2Vjb25kYXI=");
    d.iot_edge = true;
    d.c2d_count = 7;
    d.last_activity = 1700000500;
    assert_int_equal(hub_store_device_insert(fx->store, &d, &err), 0);
    struct hub_ca_cert ca = make_ca("root-1", "AAAAAAExpNs=");
    ca.verified = true;
    assert_int_equal(hub_store_ca_insert(fx->store, &ca, 0, &err), 0);

    reopen(fx);
    reopen(fx); /* twice: the second open finds nothing to migrate */
    assert_int_equal(db_user_version(fx->path), hub_store_sqlite_schema_version());

    struct hub_device got;
    assert_int_equal(hub_store_device_get(fx->store, "survivor", &got, &err), 0);
    assert_device_equal(&got, &d);
    struct hub_ca_cert *c = NULL;
    assert_int_equal(hub_store_ca_get1(fx->store, "root-1", &c, &err), 0);
    assert_string_equal(c->pem, ca.pem);
    assert_string_equal(c->thumbprint_sha256, ca.thumbprint_sha256);
    assert_true(c->verified);
    assert_int_equal(c->created, ca.created);
    hub_ca_cert_free(c);
}

static void test_newer_schema_is_refused(void **state)
{
    struct fx *fx = *state;
    hub_store_close(fx->store);
    fx->store = NULL;
    db_exec(fx->path, "PRAGMA user_version = 999");
    struct hub_err err = {0};
    struct hub_store *s = NULL;
    assert_int_equal(hub_store_sqlite_open(fx->path, NULL, &s, &err), HUB_E_STORE);
    assert_null(s);
    assert_non_null(strstr(err.msg, "newer"));
    db_exec(fx->path, "PRAGMA user_version = 1");
    reopen(fx);
}

static void test_open_in_missing_dir_fails(void **state)
{
    (void)state;
    struct hub_err err = {0};
    struct hub_store *s = NULL;
    int rc = hub_store_sqlite_open("/nonexistent-hubd-dir/x/hub.db", NULL, &s, &err);
    assert_int_equal(rc, HUB_E_STORE);
    assert_null(s);
    assert_int_equal(hub_store_sqlite_open("", NULL, &s, &err), HUB_E_INVALID_ARG);
}

/* ---- devices ---------------------------------------------------------------- */

static void test_device_crud_and_conditions(void **state)
{
    struct fx *fx = *state;
    struct hub_err err = {0};
    struct hub_device d = make_device("dev1", "E1");
    assert_int_equal(hub_store_device_insert(fx->store, &d, &err), 0);
    assert_int_equal(hub_store_device_insert(fx->store, &d, &err), HUB_E_EXISTS);

    struct hub_device got;
    assert_int_equal(hub_store_device_get(fx->store, "dev1", &got, &err), 0);
    assert_string_equal(got.etag, "E1");
    assert_int_equal(got.auth_type, HUB_AUTH_CERT_AUTHORITY);
    assert_int_equal(hub_store_device_get(fx->store, "nope", &got, &err), HUB_E_NOT_FOUND);
    /* Ids are case-sensitive. */
    assert_int_equal(hub_store_device_get(fx->store, "DEV1", &got, &err), HUB_E_NOT_FOUND);

    d.status = HUB_DEVICE_DISABLED;
    snprintf(d.etag, sizeof(d.etag), "E2");
    assert_int_equal(hub_store_device_update(fx->store, &d, "E0", &err), HUB_E_ETAG_MISMATCH);
    assert_int_equal(hub_store_device_get(fx->store, "dev1", &got, &err), 0);
    assert_int_equal(got.status, HUB_DEVICE_ENABLED); /* refused write changed nothing */
    assert_int_equal(hub_store_device_update(fx->store, &d, "E1", &err), 0);
    assert_int_equal(hub_store_device_get(fx->store, "dev1", &got, &err), 0);
    assert_int_equal(got.status, HUB_DEVICE_DISABLED);
    assert_string_equal(got.etag, "E2");
    /* The old etag is now stale. */
    snprintf(d.etag, sizeof(d.etag), "E3");
    assert_int_equal(hub_store_device_update(fx->store, &d, "E1", &err), HUB_E_ETAG_MISMATCH);
    assert_int_equal(hub_store_device_update(fx->store, &d, NULL, &err), 0);

    struct hub_device ghost = make_device("ghost", "G");
    assert_int_equal(hub_store_device_update(fx->store, &ghost, NULL, &err), HUB_E_NOT_FOUND);

    assert_int_equal(hub_store_device_delete(fx->store, "dev1", "E2", &err), HUB_E_ETAG_MISMATCH);
    assert_int_equal(hub_store_device_delete(fx->store, "dev1", "E3", &err), 0);
    assert_int_equal(hub_store_device_delete(fx->store, "dev1", NULL, &err), HUB_E_NOT_FOUND);
    assert_int_equal(hub_store_device_get(fx->store, "dev1", &got, &err), HUB_E_NOT_FOUND);
}

static void test_device_runtime_columns_keep_etag(void **state)
{
    struct fx *fx = *state;
    struct hub_err err = {0};
    struct hub_device d = make_device("rt", "E1");
    assert_int_equal(hub_store_device_insert(fx->store, &d, &err), 0);
    assert_int_equal(
        hub_store_device_conn_state_set(fx->store, "rt", HUB_CONN_CONNECTED, 1700000100, &err), 0);
    assert_int_equal(hub_store_device_activity_touch(fx->store, "rt", 1700000200, &err), 0);
    /* Never moves back. */
    assert_int_equal(hub_store_device_activity_touch(fx->store, "rt", 1700000150, &err), 0);
    struct hub_device got;
    assert_int_equal(hub_store_device_get(fx->store, "rt", &got, &err), 0);
    assert_int_equal(got.conn_state, HUB_CONN_CONNECTED);
    assert_int_equal(got.conn_state_updated, 1700000100);
    assert_int_equal(got.last_activity, 1700000200);
    assert_string_equal(got.etag, "E1");
    assert_int_equal(
        hub_store_device_conn_state_set(fx->store, "none", HUB_CONN_CONNECTED, 1, &err),
        HUB_E_NOT_FOUND);
    assert_int_equal(hub_store_device_activity_touch(fx->store, "none", 1, &err), HUB_E_NOT_FOUND);
}

static void test_device_list_pages_in_id_order(void **state)
{
    struct fx *fx = *state;
    struct hub_err err = {0};
    /* Inserted out of order, with ids that need the cursor to be encoded. */
    const int n = 25;
    for (int i = n - 1; i >= 0; i--) {
        char id[32];
        snprintf(id, sizeof(id), "d=%02d;x,'y'", i);
        struct hub_device d = make_device(id, "E");
        assert_int_equal(hub_store_device_insert(fx->store, &d, &err), 0);
    }
    struct hub_device_filter f = {.limit = 10};
    char cursor[HUB_STORE_CURSOR_SIZE] = "";
    int seen = 0, pages = 0;
    for (;;) {
        f.cursor = cursor;
        struct hub_device_list *list = NULL;
        assert_int_equal(hub_store_device_list1(fx->store, &f, &list, &err), 0);
        pages++;
        for (size_t i = 0; i < list->count; i++, seen++) {
            char want[32];
            snprintf(want, sizeof(want), "d=%02d;x,'y'", seen);
            assert_string_equal(list->items[i].id, want);
        }
        bool last = list->next_cursor[0] == '\0';
        if (!last) {
            assert_int_equal(list->count, 10);
            /* Opaque but header-safe: hex only. */
            assert_int_equal(strspn(list->next_cursor, "0123456789ABCDEF"),
                             strlen(list->next_cursor));
        }
        snprintf(cursor, sizeof(cursor), "%s", list->next_cursor);
        hub_device_list_free(list);
        if (last)
            break;
    }
    assert_int_equal(seen, n);
    assert_int_equal(pages, 3);

    /* An exact multiple of the page size ends without an empty extra page. */
    f.limit = 25;
    f.cursor = NULL;
    struct hub_device_list *list = NULL;
    assert_int_equal(hub_store_device_list1(fx->store, &f, &list, &err), 0);
    assert_int_equal(list->count, 25);
    assert_string_equal(list->next_cursor, "");
    hub_device_list_free(list);
}

static void test_device_list_filters(void **state)
{
    struct fx *fx = *state;
    struct hub_err err = {0};
    static const struct {
        const char *id;
        enum hub_device_status status;
        enum hub_auth_type auth;
        enum hub_conn_state conn;
    } rows[] = {
        {"a", HUB_DEVICE_ENABLED, HUB_AUTH_CERT_AUTHORITY, HUB_CONN_CONNECTED},
        {"b", HUB_DEVICE_DISABLED, HUB_AUTH_CERT_AUTHORITY, HUB_CONN_DISCONNECTED},
        {"c", HUB_DEVICE_ENABLED, HUB_AUTH_SAS, HUB_CONN_DISCONNECTED},
        {"d", HUB_DEVICE_ENABLED, HUB_AUTH_SELF_SIGNED, HUB_CONN_CONNECTED},
        {"e", HUB_DEVICE_DISABLED, HUB_AUTH_NONE, HUB_CONN_DISCONNECTED},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct hub_device d = make_device(rows[i].id, "E");
        d.status = rows[i].status;
        d.auth_type = rows[i].auth;
        d.conn_state = rows[i].conn;
        assert_int_equal(hub_store_device_insert(fx->store, &d, &err), 0);
    }
    static const struct {
        struct hub_device_filter f;
        const char *want; /* ids concatenated */
    } cases[] = {
        {{.limit = 100}, "abcde"},
        {{.has_status = true, .status = HUB_DEVICE_ENABLED, .limit = 100}, "acd"},
        {{.has_status = true, .status = HUB_DEVICE_DISABLED, .limit = 100}, "be"},
        {{.has_auth_type = true, .auth_type = HUB_AUTH_CERT_AUTHORITY, .limit = 100}, "ab"},
        {{.has_conn_state = true, .conn_state = HUB_CONN_CONNECTED, .limit = 100}, "ad"},
        {{.has_status = true,
          .status = HUB_DEVICE_ENABLED,
          .has_conn_state = true,
          .conn_state = HUB_CONN_DISCONNECTED,
          .limit = 100},
         "c"},
        {{.has_auth_type = true,
          .auth_type = HUB_AUTH_NONE,
          .has_status = true,
          .status = HUB_DEVICE_ENABLED,
          .limit = 100},
         ""},
        {{.has_status = true, .status = HUB_DEVICE_ENABLED, .limit = 2}, "ac"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct hub_device_list *list = NULL;
        assert_int_equal(hub_store_device_list1(fx->store, &cases[i].f, &list, &err), 0);
        char got[16] = "";
        for (size_t k = 0; k < list->count; k++)
            strcat(got, list->items[k].id);
        if (strcmp(got, cases[i].want) != 0)
            fail_msg("case %zu: got '%s', want '%s'", i, got, cases[i].want);
        hub_device_list_free(list);
    }
}

static void test_device_list_bad_arguments(void **state)
{
    struct fx *fx = *state;
    struct hub_err err = {0};
    struct hub_device_list *list = NULL;
    struct hub_device_filter f = {.limit = 0};
    assert_int_equal(hub_store_device_list1(fx->store, &f, &list, &err), HUB_E_INVALID_ARG);
    static const char *const bad_cursors[] = {"ABC", "ZZ", "00", "61g0", "6162ab"};
    f.limit = 5;
    for (size_t i = 0; i < sizeof(bad_cursors) / sizeof(bad_cursors[0]); i++) {
        f.cursor = bad_cursors[i];
        assert_int_equal(hub_store_device_list1(fx->store, &f, &list, &err), HUB_E_INVALID_ARG);
    }
    assert_null(list);
}

/* ---- CA certificates ------------------------------------------------------------ */

static void test_ca_crud_and_conditions(void **state)
{
    struct fx *fx = *state;
    struct hub_err err = {0};
    struct hub_ca_cert ca = make_ca("root", "T1");
    assert_int_equal(hub_store_ca_insert(fx->store, &ca, 0, &err), 0);
    assert_int_equal(hub_store_ca_insert(fx->store, &ca, 0, &err), HUB_E_EXISTS);

    struct hub_ca_cert *got = NULL;
    assert_int_equal(hub_store_ca_get1(fx->store, "root", &got, &err), 0);
    assert_string_equal(got->name, "root");
    assert_string_equal(got->subject, "CN=root");
    assert_string_equal(got->etag, "T1");
    assert_false(got->verified);
    assert_string_equal(got->verification_code, "");
    assert_int_equal(got->not_after, 1900000000);
    hub_ca_cert_free(got);
    got = NULL;
    assert_int_equal(hub_store_ca_get1(fx->store, "other", &got, &err), HUB_E_NOT_FOUND);
    assert_null(got);

    ca.verified = true;
    snprintf(ca.verification_code, sizeof(ca.verification_code), "ABCDEF");
    ca.code_expires = 1800000000;
    snprintf(ca.etag, sizeof(ca.etag), "T2");
    assert_int_equal(hub_store_ca_update(fx->store, &ca, "T0", &err), HUB_E_ETAG_MISMATCH);
    assert_int_equal(hub_store_ca_update(fx->store, &ca, "T1", &err), 0);
    assert_int_equal(hub_store_ca_get1(fx->store, "root", &got, &err), 0);
    assert_true(got->verified);
    assert_string_equal(got->verification_code, "ABCDEF");
    assert_int_equal(got->code_expires, 1800000000);
    assert_string_equal(got->etag, "T2");
    hub_ca_cert_free(got);

    struct hub_ca_cert ghost = make_ca("ghost", "X");
    assert_int_equal(hub_store_ca_update(fx->store, &ghost, NULL, &err), HUB_E_NOT_FOUND);
    assert_int_equal(hub_store_ca_delete(fx->store, "root", "T1", &err), HUB_E_ETAG_MISMATCH);
    assert_int_equal(hub_store_ca_delete(fx->store, "root", "T2", &err), 0);
    assert_int_equal(hub_store_ca_delete(fx->store, "root", NULL, &err), HUB_E_NOT_FOUND);
}

static void test_ca_insert_limit_and_list(void **state)
{
    struct fx *fx = *state;
    struct hub_err err = {0};
    const char *names[] = {"c", "a", "b"};
    for (size_t i = 0; i < 3; i++) {
        struct hub_ca_cert ca = make_ca(names[i], "E");
        ca.verified = i != 1; /* "a" unverified */
        assert_int_equal(hub_store_ca_insert(fx->store, &ca, 3, &err), 0);
    }
    struct hub_ca_cert extra = make_ca("d", "E");
    assert_int_equal(hub_store_ca_insert(fx->store, &extra, 3, &err), HUB_E_LIMIT);
    /* A taken name reports EXISTS even at the limit. */
    struct hub_ca_cert dup = make_ca("a", "E");
    assert_int_equal(hub_store_ca_insert(fx->store, &dup, 3, &err), HUB_E_EXISTS);
    size_t n = 0;
    assert_int_equal(hub_store_ca_count(fx->store, &n, &err), 0);
    assert_int_equal(n, 3);
    assert_int_equal(hub_store_ca_insert(fx->store, &extra, 4, &err), 0);

    struct hub_ca_cert_list *list = NULL;
    assert_int_equal(hub_store_ca_list1(fx->store, false, &list, &err), 0);
    assert_int_equal(list->count, 4);
    assert_string_equal(list->items[0].name, "a");
    assert_string_equal(list->items[1].name, "b");
    assert_string_equal(list->items[3].name, "d");
    assert_non_null(list->items[2].pem);
    hub_ca_cert_list_free(list);
    assert_int_equal(hub_store_ca_list1(fx->store, true, &list, &err), 0);
    assert_int_equal(list->count, 2);
    assert_string_equal(list->items[0].name, "b");
    assert_string_equal(list->items[1].name, "c");
    hub_ca_cert_list_free(list);
}

static void test_enum_names_round_trip(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        int value;
    } auth[] = {{"sas", HUB_AUTH_SAS},
                {"selfSigned", HUB_AUTH_SELF_SIGNED},
                {"certificateAuthority", HUB_AUTH_CERT_AUTHORITY},
                {"none", HUB_AUTH_NONE}};
    for (size_t i = 0; i < 4; i++) {
        enum hub_auth_type t;
        assert_int_equal(hub_auth_type_parse(auth[i].name, &t, NULL), 0);
        assert_int_equal(t, auth[i].value);
        assert_string_equal(hub_auth_type_name(t), auth[i].name);
    }
    enum hub_auth_type t;
    assert_int_equal(hub_auth_type_parse("SAS", &t, NULL), HUB_E_INVALID_ARG);
    enum hub_conn_state c;
    assert_int_equal(hub_conn_state_parse("Connected", &c, NULL), 0);
    assert_int_equal(c, HUB_CONN_CONNECTED);
    assert_int_equal(hub_conn_state_parse("connected", &c, NULL), HUB_E_INVALID_ARG);
    enum hub_device_status s;
    assert_int_equal(hub_device_status_parse("disabled", &s, NULL), 0);
    assert_int_equal(s, HUB_DEVICE_DISABLED);
    assert_int_equal(hub_device_status_parse(NULL, &s, NULL), HUB_E_INVALID_ARG);
}

/* ---- concurrency ------------------------------------------------------------------ */

#define THREADS    8
#define PER_THREAD 40
struct worker {
    struct hub_store *store;
    int index;
    int failures;
    char msg[HUB_ERR_MSG_MAX];
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < PER_THREAD; i++) {
        struct hub_err err = {0};
        char id[32];
        snprintf(id, sizeof(id), "t%d-dev%03d", w->index, i);
        struct hub_device d = make_device(id, "E");
        struct hub_device got;
        if (hub_store_device_insert(w->store, &d, &err) != 0 ||
            hub_store_device_get(w->store, id, &got, &err) != 0 ||
            hub_store_device_conn_state_set(w->store, id, HUB_CONN_CONNECTED, 5, &err) != 0) {
            w->failures++;
            snprintf(w->msg, sizeof(w->msg), "%s", err.msg);
            continue;
        }
        /* Read someone else's rows too, which may or may not exist yet. */
        char other[32];
        snprintf(other, sizeof(other), "t%d-dev%03d", (w->index + 1) % THREADS, i);
        int rc = hub_store_device_get(w->store, other, &got, &err);
        if (rc != 0 && rc != HUB_E_NOT_FOUND) {
            w->failures++;
            snprintf(w->msg, sizeof(w->msg), "%s", err.msg);
        }
    }
    return NULL;
}

static void test_concurrent_create_and_read(void **state)
{
    struct fx *fx = *state;
    /* Fewer pool connections than threads, so checkouts also wait. */
    hub_store_close(fx->store);
    struct hub_store_sqlite_opts opts = {.max_connections = 4};
    struct hub_err err = {0};
    assert_int_equal(hub_store_sqlite_open(fx->path, &opts, &fx->store, &err), 0);

    pthread_t th[THREADS];
    struct worker w[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i] = (struct worker){.store = fx->store, .index = i};
        assert_int_equal(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        if (w[i].failures != 0)
            fail_msg("thread %d: %d failures, last: %s", i, w[i].failures, w[i].msg);
    }
    struct hub_device_filter f = {.limit = THREADS * PER_THREAD + 1,
                                  .has_conn_state = true,
                                  .conn_state = HUB_CONN_CONNECTED};
    struct hub_device_list *list = NULL;
    assert_int_equal(hub_store_device_list1(fx->store, &f, &list, &err), 0);
    assert_int_equal(list->count, THREADS * PER_THREAD);
    hub_device_list_free(list);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_migrations_run_on_empty_db, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_reopen_is_idempotent_and_keeps_data, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_newer_schema_is_refused, fx_setup, fx_teardown),
        cmocka_unit_test(test_open_in_missing_dir_fails),
        cmocka_unit_test_setup_teardown(test_device_crud_and_conditions, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_device_runtime_columns_keep_etag, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_device_list_pages_in_id_order, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_device_list_filters, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_device_list_bad_arguments, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_ca_crud_and_conditions, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_ca_insert_limit_and_list, fx_setup, fx_teardown),
        cmocka_unit_test(test_enum_names_round_trip),
        cmocka_unit_test_setup_teardown(test_concurrent_create_and_read, fx_setup, fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
