/*
 * store (SQLite backend), messaging tables: the 1 -> 2 migration on a
 * database an older hubd left, the telemetry log (round trip, bounds, seq
 * order, retention, injected commit faults, damaged rows), the C2D queue
 * (limit, order, locks, settlement, delivery count and dead-lettering,
 * expiry, purge, cascade on device delete, c2d_count in sync) and feedback
 * batches. Every test gets a fresh database in its own mkdtemp directory.
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

#define T0 1700000000000LL /* an arbitrary "now" in Unix ms */

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

static void rm_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d != NULL) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            char p[512];
            snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    assert_int_equal(rmdir(dir), 0);
}

static struct fx *fx_new(void)
{
    struct fx *fx = calloc(1, sizeof(*fx));
    assert_non_null(fx);
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/hubd-test-store-msg-XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    snprintf(fx->path, sizeof(fx->path), "%s/hub.db", fx->dir);
    return fx;
}

static int fx_setup(void **state)
{
    struct fx *fx = fx_new();
    struct hub_err err = {0};
    ok(hub_store_sqlite_open(fx->path, NULL, &fx->store, &err), &err, "open");
    *state = fx;
    return 0;
}

static int fx_teardown(void **state)
{
    struct fx *fx = *state;
    hub_store_close(fx->store);
    rm_dir(fx->dir);
    free(fx);
    return 0;
}

static void reopen(struct fx *fx)
{
    hub_store_close(fx->store);
    fx->store = NULL;
    struct hub_err err = {0};
    ok(hub_store_sqlite_open(fx->path, NULL, &fx->store, &err), &err, "reopen");
}

static int64_t db_int(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

static void db_exec(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("%s: %s", sql, msg);
    sqlite3_close(db);
}

static void add_device(struct fx *fx, const char *id, const char *generation)
{
    struct hub_device d;
    memset(&d, 0, sizeof(d));
    snprintf(d.id, sizeof(d.id), "%s", id);
    snprintf(d.generation_id, sizeof(d.generation_id), "%s", generation);
    snprintf(d.etag, sizeof(d.etag), "E1");
    d.auth_type = HUB_AUTH_CERT_AUTHORITY;
    d.created = d.updated = T0 / 1000;
    struct hub_err err = {0};
    ok(hub_store_device_insert(fx->store, &d, &err), &err, "device insert");
}

/* ---- migration -------------------------------------------------------------- */

/* A database left by the hubd before messaging (schema 1), with a device in
 * it, opens with this build: step 2 applies, the data survives, the new
 * tables work. */
static void test_migration_from_schema_1(void **state)
{
    (void)state;
    struct fx *fx = fx_new();
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(fx->path, &db), SQLITE_OK);
    struct hub_err err = {0};
    ok(hub_store__sqlite_migrate_to(db, 1, &err), &err, "migrate to 1");
    assert_int_equal(
        sqlite3_exec(db,
                     "INSERT INTO devices (id, generation_id, etag, status, auth_type, c2d_count, "
                     "created, updated) VALUES ('old', '1', 'E', 'enabled', "
                     "'certificateAuthority', 5, 1, 1)",
                     NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(db_int(fx->path, "PRAGMA user_version"), 1);
    assert_int_equal(db_int(fx->path, "SELECT count(*) FROM sqlite_schema WHERE name = "
                                      "'telemetry'"),
                     0);

    ok(hub_store_sqlite_open(fx->path, NULL, &fx->store, &err), &err, "open old db");
    /* Every later step runs too: the database ends at this build's version. */
    assert_true(hub_store_sqlite_schema_version() >= 2);
    assert_int_equal(db_int(fx->path, "PRAGMA user_version"), hub_store_sqlite_schema_version());
    struct hub_device got;
    ok(hub_store_device_get(fx->store, "old", &got, &err), &err, "get old device");
    /* The step recounts: the stale 5 had no queue behind it. */
    assert_int_equal(got.c2d_count, 0);

    const char *mid = "m1";
    struct hub_c2d_msg m = {.enqueued_ms = T0, .expiry_ms = T0 + 1000};
    snprintf(m.device_id, sizeof(m.device_id), "old");
    m.sys[HUB_SYSPROP_MESSAGE_ID] = mid;
    ok(hub_store_c2d_enqueue(fx->store, &m, 50, NULL, &err), &err, "enqueue on migrated db");
    ok(hub_store_device_get(fx->store, "old", &got, &err), &err, "get");
    assert_int_equal(got.c2d_count, 1);
    int64_t seq = 0;
    struct hub_telemetry_msg t = {.enqueued_ms = T0};
    snprintf(t.device_id, sizeof(t.device_id), "old");
    const struct hub_telemetry_msg *tp = &t;
    ok(hub_store_telemetry_append(fx->store, &tp, 1, &seq, &err), &err, "telemetry on migrated");
    assert_int_equal(seq, 1);

    /* Rewinding user_version re-runs the step harmlessly (IF NOT EXISTS) and
     * the recount keeps the real queue length. */
    hub_store_close(fx->store);
    db_exec(fx->path, "PRAGMA user_version = 1");
    ok(hub_store_sqlite_open(fx->path, NULL, &fx->store, &err), &err, "reopen rewound");
    ok(hub_store_device_get(fx->store, "old", &got, &err), &err, "get");
    assert_int_equal(got.c2d_count, 1);
    fx_teardown((void **)&fx);
}

/* ---- telemetry -------------------------------------------------------------- */

static void test_telemetry_round_trip_and_order(void **state)
{
    struct fx *fx = *state;
    struct hub_err err = {0};
    static const unsigned char body0[] = {0x00, 0xff, 'a', 0x00, 'b'};
    struct hub_app_prop props0[] = {
        {"alert", "yes&no"}, {"k 2", "v/2"}, {"nullish", NULL}, {"empty", ""}};
    struct hub_telemetry_msg m[3];
    memset(m, 0, sizeof(m));
    for (int i = 0; i < 3; i++) {
        snprintf(m[i].device_id, sizeof(m[i].device_id), i == 1 ? "dev-b" : "dev-a");
        m[i].enqueued_ms = T0 + i;
    }
    m[0].body = body0;
    m[0].body_len = sizeof(body0);
    m[0].app = props0;
    m[0].app_count = 4;
    m[0].sys[HUB_SYSPROP_MESSAGE_ID] = "mid-1";
    m[0].sys[HUB_SYSPROP_CONTENT_TYPE] = "application/json";
    m[0].sys[HUB_SYSPROP_CONN_AUTH_METHOD] = "x509";
    m[0].sys[HUB_SYSPROP_MESSAGE_TYPE] = "Will";
    m[0].sys[HUB_SYSPROP_CORRELATION_ID] = ""; /* present but empty: not absent */
    snprintf(m[1].module_id, sizeof(m[1].module_id), "mod1");
    m[1].sys[HUB_SYSPROP_OUTPUT_NAME] = "out1";
    /* m[2]: empty body, no properties */

    const struct hub_telemetry_msg *ptrs[3] = {&m[0], &m[1], &m[2]};
    int64_t seqs[3] = {0};
    ok(hub_store_telemetry_append(fx->store, ptrs, 3, seqs, &err), &err, "append");
    assert_true(seqs[0] > 0 && seqs[1] == seqs[0] + 1 && seqs[2] == seqs[1] + 1);
    int64_t last = 0;
    ok(hub_store_telemetry_last_seq(fx->store, &last, &err), &err, "last");
    assert_int_equal(last, seqs[2]);

    reopen(fx); /* what was committed is on disk */
    struct hub_telemetry_msg_list *list = NULL;
    ok(hub_store_telemetry_read1(fx->store, 0, 100, NULL, &list, &err), &err, "read");
    assert_int_equal(list->count, 3);
    const struct hub_telemetry_msg *r = &list->items[0];
    assert_int_equal(r->seq, seqs[0]);
    assert_string_equal(r->device_id, "dev-a");
    assert_string_equal(r->module_id, "");
    assert_int_equal(r->enqueued_ms, T0);
    assert_int_equal(r->body_len, sizeof(body0));
    assert_memory_equal(r->body, body0, sizeof(body0));
    assert_string_equal(r->sys[HUB_SYSPROP_MESSAGE_ID], "mid-1");
    assert_string_equal(r->sys[HUB_SYSPROP_CONTENT_TYPE], "application/json");
    assert_string_equal(r->sys[HUB_SYSPROP_CONN_AUTH_METHOD], "x509");
    assert_string_equal(r->sys[HUB_SYSPROP_MESSAGE_TYPE], "Will");
    assert_non_null(r->sys[HUB_SYSPROP_CORRELATION_ID]);
    assert_string_equal(r->sys[HUB_SYSPROP_CORRELATION_ID], "");
    assert_null(r->sys[HUB_SYSPROP_USER_ID]);
    assert_int_equal(r->app_count, 4);
    for (size_t i = 0; i < 4; i++) {
        assert_string_equal(r->app[i].key, props0[i].key);
        if (props0[i].value == NULL)
            assert_null(r->app[i].value);
        else
            assert_string_equal(r->app[i].value, props0[i].value);
    }
    assert_string_equal(list->items[1].module_id, "mod1");
    assert_string_equal(list->items[1].sys[HUB_SYSPROP_OUTPUT_NAME], "out1");
    assert_int_equal(list->items[2].body_len, 0);
    assert_int_equal(list->items[2].app_count, 0);
    assert_null(list->items[2].app);
    hub_telemetry_msg_list_free(list);

    /* from is inclusive; limit; device filter. */
    ok(hub_store_telemetry_read1(fx->store, seqs[1], 1, NULL, &list, &err), &err, "read from");
    assert_int_equal(list->count, 1);
    assert_int_equal(list->items[0].seq, seqs[1]);
    hub_telemetry_msg_list_free(list);
    ok(hub_store_telemetry_read1(fx->store, 0, 10, "dev-a", &list, &err), &err, "read dev");
    assert_int_equal(list->count, 2);
    assert_int_equal(list->items[0].seq, seqs[0]);
    assert_int_equal(list->items[1].seq, seqs[2]);
    hub_telemetry_msg_list_free(list);
    ok(hub_store_telemetry_read1(fx->store, seqs[2] + 1, 10, NULL, &list, &err), &err, "read end");
    assert_int_equal(list->count, 0);
    hub_telemetry_msg_list_free(list);

    /* A deep copy owns everything and survives the list. */
    ok(hub_store_telemetry_read1(fx->store, 0, 1, NULL, &list, &err), &err, "read");
    struct hub_telemetry_msg copy;
    ok(hub_telemetry_msg_copy(&copy, &list->items[0], &err), &err, "copy");
    hub_telemetry_msg_list_free(list);
    assert_memory_equal(copy.body, body0, sizeof(body0));
    assert_string_equal(copy.app[1].value, "v/2");
    assert_null(copy.app[2].value);
    hub_telemetry_msg_clear(&copy);
    hub_telemetry_msg_clear(&copy); /* zeroed: a second clear is harmless */
}

static void test_telemetry_bounds_write_nothing(void **state)
{
    struct fx *fx = *state;
    struct hub_err err = {0};
    unsigned char *big = calloc(1, HUB_TELEMETRY_BODY_MAX + 1);
    assert_non_null(big);
    char *long_value = malloc(HUB_MSG_PROPS_MAX_BYTES + 1);
    assert_non_null(long_value);
    memset(long_value, 'v', HUB_MSG_PROPS_MAX_BYTES);
    long_value[HUB_MSG_PROPS_MAX_BYTES] = '\0';
    struct hub_app_prop too_big_prop[] = {{"k", long_value}};
    struct hub_app_prop empty_key[] = {{"", "v"}};

    struct {
        const char *name;
        const char *device;
        size_t body_len;
        const struct hub_app_prop *app;
        size_t app_count;
        int want;
    } cases[] = {
        {"exactly 256 KiB is fine", "d", HUB_TELEMETRY_BODY_MAX, NULL, 0, 0},
        {"body over 256 KiB", "d", HUB_TELEMETRY_BODY_MAX + 1, NULL, 0, HUB_E_TOO_LARGE},
        {"no device id", "", 1, NULL, 0, HUB_E_INVALID_ARG},
        {"properties too large", "d", 1, too_big_prop, 1, HUB_E_TOO_LARGE},
        {"empty property key", "d", 1, empty_key, 1, HUB_E_INVALID_ARG},
    };
    int64_t before = 0, after = 0;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ok(hub_store_telemetry_last_seq(fx->store, &before, &err), &err, "last");
        struct hub_telemetry_msg good = {.enqueued_ms = T0};
        snprintf(good.device_id, sizeof(good.device_id), "ok");
        struct hub_telemetry_msg m = {.enqueued_ms = T0, .body = big};
        snprintf(m.device_id, sizeof(m.device_id), "%s", cases[i].device);
        m.body_len = cases[i].body_len;
        m.app = cases[i].app;
        m.app_count = cases[i].app_count;
        /* A bad message fails the whole call: the good one is not written either. */
        const struct hub_telemetry_msg *ptrs[2] = {&good, &m};
        int64_t seqs[2];
        int rc = hub_store_telemetry_append(fx->store, ptrs, 2, seqs, &err);
        if (rc != cases[i].want)
            fail_msg("%s: got %s, want %s", cases[i].name, hub_err_name(rc),
                     hub_err_name(cases[i].want));
        ok(hub_store_telemetry_last_seq(fx->store, &after, &err), &err, "last");
        assert_int_equal(after, cases[i].want == 0 ? before + 2 : before);
    }
    free(big);
    free(long_value);
}

static void test_telemetry_prune_and_seq_never_reused(void **state)
{
    struct fx *fx = *state;
    struct hub_err err = {0};
    struct hub_telemetry_msg m[10];
    const struct hub_telemetry_msg *ptrs[10];
    memset(m, 0, sizeof(m));
    for (int i = 0; i < 10; i++) {
        snprintf(m[i].device_id, sizeof(m[i].device_id), "d");
        m[i].enqueued_ms = T0 + i * 1000;
        ptrs[i] = &m[i];
    }
    int64_t seqs[10];
    ok(hub_store_telemetry_append(fx->store, ptrs, 10, seqs, &err), &err, "append");

    /* Older than T0+4000: 4 rows, deleted at most 3 per call. */
    size_t n = 0;
    ok(hub_store_telemetry_prune(fx->store, T0 + 4000, 3, &n, &err), &err, "prune");
    assert_int_equal(n, 3);
    ok(hub_store_telemetry_prune(fx->store, T0 + 4000, 3, &n, &err), &err, "prune");
    assert_int_equal(n, 1);
    ok(hub_store_telemetry_prune(fx->store, T0 + 4000, 3, &n, &err), &err, "prune");
    assert_int_equal(n, 0);
    struct hub_telemetry_msg_list *list = NULL;
    ok(hub_store_telemetry_read1(fx->store, 0, 100, NULL, &list, &err), &err, "read");
    assert_int_equal(list->count, 6);
    assert_int_equal(list->items[0].seq, seqs[4]);
    hub_telemetry_msg_list_free(list);
    assert_int_equal(hub_store_telemetry_prune(fx->store, T0, 0, &n, &err), HUB_E_INVALID_ARG);

    /* Empty the log; new messages still get new numbers, across a reopen. */
    ok(hub_store_telemetry_prune(fx->store, INT64_MAX, 100, &n, &err), &err, "prune all");
    assert_int_equal(n, 6);
    reopen(fx);
    int64_t last = 0;
    ok(hub_store_telemetry_last_seq(fx->store, &last, &err), &err, "last");
    assert_int_equal(last, seqs[9]);
    int64_t seq = 0;
    ok(hub_store_telemetry_append(fx->store, ptrs, 1, &seq, &err), &err, "append");
    assert_true(seq > seqs[9]);
}

static void test_telemetry_injected_commit_fault(void **state)
{
    struct fx *fx = *state;
    struct hub_err err = {0};
    struct hub_telemetry_msg m = {.enqueued_ms = T0};
    snprintf(m.device_id, sizeof(m.device_id), "d");
    const struct hub_telemetry_msg *ptrs[2] = {&m, &m};
    int64_t seqs[2];
    hub_store_sqlite_fail_commits(fx->store, 1);
    assert_int_equal(hub_store_telemetry_append(fx->store, ptrs, 2, seqs, &err), HUB_E_IO);
    assert_non_null(strstr(err.msg, "injected"));
    struct hub_telemetry_msg_list *list = NULL;
    ok(hub_store_telemetry_read1(fx->store, 0, 10, NULL, &list, &err), &err, "read");
    assert_int_equal(list->count, 0); /* rolled back: nothing readable */
    hub_telemetry_msg_list_free(list);
    /* The fault was used up; the next commit works. */
    ok(hub_store_telemetry_append(fx->store, ptrs, 2, seqs, &err), &err, "append after fault");
    ok(hub_store_telemetry_read1(fx->store, 0, 10, NULL, &list, &err), &err, "read");
    assert_int_equal(list->count, 2);
    hub_telemetry_msg_list_free(list);
}

/* A damaged property blob is refused on read, never over-read. */
static void test_telemetry_damaged_props_refused(void **state)
{
    struct fx *fx = *state;
    struct hub_err err = {0};
    struct {
        const char *name;
        const char *hex;
    } cases[] = {
        {"count without room", "000000FF"},
        {"key length past end", "00000001000000FF41"},
        {"value length past end", "000000010000000141000000FF"},
        {"trailing bytes", "0000000100000001410000000142"
                           "00"},
        {"truncated count", "0000"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char sql[256];
        db_exec(fx->path, "DELETE FROM telemetry");
        snprintf(sql, sizeof(sql),
                 "INSERT INTO telemetry (device_id, enqueued_ms, body, app_props) "
                 "VALUES ('d', 1, x'', x'%s')",
                 cases[i].hex);
        db_exec(fx->path, sql);
        struct hub_telemetry_msg_list *list = NULL;
        int rc = hub_store_telemetry_read1(fx->store, 0, 10, NULL, &list, &err);
        if (rc != HUB_E_STORE)
            fail_msg("%s: got %s", cases[i].name, hub_err_name(rc));
        assert_null(list);
    }
    /* The well-formed version of the last cases reads fine. */
    struct hub_telemetry_msg_list *list = NULL;
    db_exec(fx->path, "DELETE FROM telemetry");
    db_exec(fx->path, "INSERT INTO telemetry (device_id, enqueued_ms, body, app_props) "
                      "VALUES ('d', 1, x'', x'0000000100000001410000000142')");
    ok(hub_store_telemetry_read1(fx->store, 0, 10, NULL, &list, &err), &err, "good blob");
    assert_int_equal(list->count, 1);
    assert_int_equal(list->items[0].app_count, 1);
    assert_string_equal(list->items[0].app[0].key, "A");
    assert_string_equal(list->items[0].app[0].value, "B");
    hub_telemetry_msg_list_free(list);
}

/* ---- C2D -------------------------------------------------------------------- */

static struct hub_c2d_msg c2d(const char *dev, const char *mid, enum hub_c2d_ack ack,
                              int64_t enqueued, int64_t expiry)
{
    struct hub_c2d_msg m;
    memset(&m, 0, sizeof(m));
    snprintf(m.device_id, sizeof(m.device_id), "%s", dev);
    m.sys[HUB_SYSPROP_MESSAGE_ID] = mid;
    m.ack = ack;
    m.enqueued_ms = enqueued;
    m.expiry_ms = expiry;
    return m;
}

static void enqueue(struct fx *fx, const char *dev, const char *mid, enum hub_c2d_ack ack,
                    int64_t expiry)
{
    struct hub_err err = {0};
    struct hub_c2d_msg m = c2d(dev, mid, ack, T0, expiry);
    ok(hub_store_c2d_enqueue(fx->store, &m, 0, NULL, &err), &err, "enqueue");
}

static size_t count_of(struct fx *fx, const char *dev)
{
    struct hub_err err = {0};
    size_t n = 0;
    ok(hub_store_c2d_count(fx->store, dev, &n, &err), &err, "count");
    struct hub_device d;
    ok(hub_store_device_get(fx->store, dev, &d, &err), &err, "device get");
    assert_int_equal(d.c2d_count, (int64_t)n); /* the device JSON's cloudToDeviceMessageCount */
    return n;
}

/* Every feedback record, oldest first, as "status:messageId" joined by ','. */
static void feedback_all(struct fx *fx, int64_t now, char *out, size_t cap)
{
    struct hub_err err = {0};
    struct hub_c2d_feedback_list *list = NULL;
    ok(hub_store_feedback_receive1(fx->store, now, "peek", now + 1, 1000, &list, &err), &err,
       "feedback receive");
    out[0] = '\0';
    for (size_t i = 0; i < list->count; i++) {
        size_t len = strlen(out);
        snprintf(out + len, cap - len, "%s%s:%s", i ? "," : "",
                 hub_c2d_outcome_name(list->items[i].status), list->items[i].original_message_id);
    }
    hub_c2d_feedback_list_free(list);
    /* Unlock again so a later call sees them too. */
    size_t n = 0;
    int rc = hub_store_feedback_settle(fx->store, "peek", false, now, &n, &err);
    assert_true(rc == 0 || rc == HUB_E_NOT_FOUND);
}

static void test_c2d_enqueue_limit_and_unknown_device(void **state)
{
    struct fx *fx = *state;
    struct hub_err err = {0};
    add_device(fx, "d1", "111");
    struct hub_c2d_msg m = c2d("ghost", "m", HUB_C2D_ACK_NONE, T0, T0 + 10);
    assert_int_equal(hub_store_c2d_enqueue(fx->store, &m, 3, NULL, &err), HUB_E_NOT_FOUND);

    int64_t seq[3];
    for (int i = 0; i < 3; i++) {
        /* The first expires at T0+10, the others later. */
        m = c2d("d1", "m", HUB_C2D_ACK_NONE, T0, i == 0 ? T0 + 10 : T0 + 100000);
        ok(hub_store_c2d_enqueue(fx->store, &m, 3, &seq[i], &err), &err, "enqueue");
    }
    assert_true(seq[0] < seq[1] && seq[1] < seq[2]);
    m = c2d("d1", "m", HUB_C2D_ACK_NONE, T0, T0 + 100000);
    assert_int_equal(hub_store_c2d_enqueue(fx->store, &m, 3, NULL, &err), HUB_E_LIMIT);
    assert_int_equal(count_of(fx, "d1"), 3);
    /* Later, the first has expired (not yet swept): it no longer counts. */
    m = c2d("d1", "m", HUB_C2D_ACK_NONE, T0 + 10, T0 + 100000);
    ok(hub_store_c2d_enqueue(fx->store, &m, 3, NULL, &err), &err, "enqueue past expired");
    assert_int_equal(hub_store_c2d_enqueue(fx->store, &m, 3, NULL, &err), HUB_E_LIMIT);

    struct {
        const char *name;
        size_t body_len;
        const char *mid;
        int64_t expiry;
        int want;
    } bad[] = {
        {"64 KiB body is fine", HUB_C2D_BODY_MAX, "x", T0 + 1, 0},
        {"body over 64 KiB", HUB_C2D_BODY_MAX + 1, "x", T0 + 1, HUB_E_TOO_LARGE},
        {"no message id", 0, NULL, T0 + 1, HUB_E_INVALID_ARG},
        {"expires when enqueued", 0, "x", T0, HUB_E_INVALID_ARG},
    };
    unsigned char *body = calloc(1, HUB_C2D_BODY_MAX + 1);
    assert_non_null(body);
    add_device(fx, "d2", "222");
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        m = c2d("d2", bad[i].mid, HUB_C2D_ACK_NONE, T0, bad[i].expiry);
        m.body = body;
        m.body_len = bad[i].body_len;
        int rc = hub_store_c2d_enqueue(fx->store, &m, 0, NULL, &err);
        if (rc != bad[i].want)
            fail_msg("%s: got %s", bad[i].name, hub_err_name(rc));
    }
    free(body);
    assert_int_equal(count_of(fx, "d2"), 1);
}

static void test_c2d_round_trip_fields(void **state)
{
    struct fx *fx = *state;
    struct hub_err err = {0};
    add_device(fx, "d1", "111");
    static const unsigned char body[] = {'h', 0, 'i'};
    struct hub_app_prop app[] = {{"a", "1"}, {"n", NULL}};
    struct hub_c2d_msg m = c2d("d1", "mid-7", HUB_C2D_ACK_FULL, T0, T0 + 5000);
    m.body = body;
    m.body_len = sizeof(body);
    m.app = app;
    m.app_count = 2;
    m.sys[HUB_SYSPROP_CORRELATION_ID] = "corr";
    m.sys[HUB_SYSPROP_TO] = "/devices/d1/messages/devicebound";
    int64_t seq = 0;
    ok(hub_store_c2d_enqueue(fx->store, &m, 50, &seq, &err), &err, "enqueue");
    struct hub_c2d_msg got;
    ok(hub_store_c2d_deliver(fx->store, "d1", T0 + 1, "tok-1", T0 + 1001, 10, &got, NULL, &err),
       &err, "deliver");
    assert_int_equal(got.seq, seq);
    assert_string_equal(got.device_id, "d1");
    assert_int_equal(got.enqueued_ms, T0);
    assert_int_equal(got.expiry_ms, T0 + 5000);
    assert_int_equal(got.ack, HUB_C2D_ACK_FULL);
    assert_int_equal(got.body_len, sizeof(body));
    assert_memory_equal(got.body, body, sizeof(body));
    assert_string_equal(got.sys[HUB_SYSPROP_MESSAGE_ID], "mid-7");
    assert_string_equal(got.sys[HUB_SYSPROP_CORRELATION_ID], "corr");
    assert_string_equal(got.sys[HUB_SYSPROP_TO], "/devices/d1/messages/devicebound");
    assert_null(got.sys[HUB_SYSPROP_USER_ID]);
    assert_int_equal(got.app_count, 2);
    assert_string_equal(got.app[0].key, "a");
    assert_string_equal(got.app[0].value, "1");
    assert_null(got.app[1].value);
    assert_int_equal(got.delivery_count, 1);
    assert_string_equal(got.lock_token, "tok-1");
    assert_int_equal(got.lock_expiry_ms, T0 + 1001);
    hub_c2d_msg_clear(&got);
}

static void test_c2d_deliver_lock_and_settle(void **state)
{
    struct fx *fx = *state;
    struct hub_err err = {0};
    add_device(fx, "d1", "gen-1");
    enqueue(fx, "d1", "A", HUB_C2D_ACK_FULL, T0 + 100000);
    enqueue(fx, "d1", "B", HUB_C2D_ACK_NEGATIVE, T0 + 100000);
    enqueue(fx, "d1", "C", HUB_C2D_ACK_POSITIVE, T0 + 100000);
    struct hub_c2d_msg a, b, c, none;
    ok(hub_store_c2d_deliver(fx->store, "d1", T0, "tA", T0 + 60000, 10, &a, NULL, &err), &err,
       "deliver A");
    assert_string_equal(a.sys[HUB_SYSPROP_MESSAGE_ID], "A");
    /* A is locked: the next delivery is B, then C, then nothing. */
    ok(hub_store_c2d_deliver(fx->store, "d1", T0, "tB", T0 + 60000, 10, &b, NULL, &err), &err,
       "deliver B");
    assert_string_equal(b.sys[HUB_SYSPROP_MESSAGE_ID], "B");
    ok(hub_store_c2d_deliver(fx->store, "d1", T0, "tC", T0 + 60000, 10, &c, NULL, &err), &err,
       "deliver C");
    assert_int_equal(
        hub_store_c2d_deliver(fx->store, "d1", T0, "tX", T0 + 60000, 10, &none, NULL, &err),
        HUB_E_NOT_FOUND);
    assert_null(none.owned_);
    assert_int_equal(count_of(fx, "d1"), 3); /* locked messages are still queued */

    /* Wrong token, other device's token: nothing happens. */
    assert_int_equal(hub_store_c2d_settle(fx->store, "d1", "nope", HUB_C2D_COMPLETE, T0, &err),
                     HUB_E_NOT_FOUND);
    add_device(fx, "d2", "gen-2");
    assert_int_equal(hub_store_c2d_settle(fx->store, "d2", "tA", HUB_C2D_COMPLETE, T0, &err),
                     HUB_E_NOT_FOUND);

    ok(hub_store_c2d_settle(fx->store, "d1", "tA", HUB_C2D_COMPLETE, T0 + 1, &err), &err,
       "complete A");
    assert_int_equal(hub_store_c2d_settle(fx->store, "d1", "tA", HUB_C2D_COMPLETE, T0 + 1, &err),
                     HUB_E_NOT_FOUND); /* settled once only */
    ok(hub_store_c2d_settle(fx->store, "d1", "tB", HUB_C2D_ABANDON, T0 + 2, &err), &err,
       "abandon B");
    ok(hub_store_c2d_settle(fx->store, "d1", "tC", HUB_C2D_REJECT, T0 + 3, &err), &err, "reject C");
    assert_int_equal(count_of(fx, "d1"), 1);

    /* B is back, with its delivery count kept. */
    struct hub_c2d_msg b2;
    ok(hub_store_c2d_deliver(fx->store, "d1", T0 + 4, "tB2", T0 + 60000, 10, &b2, NULL, &err), &err,
       "redeliver B");
    assert_string_equal(b2.sys[HUB_SYSPROP_MESSAGE_ID], "B");
    assert_int_equal(b2.delivery_count, 2);
    ok(hub_store_c2d_settle(fx->store, "d1", "tB2", HUB_C2D_COMPLETE, T0 + 5, &err), &err,
       "complete B");
    assert_int_equal(count_of(fx, "d1"), 0);

    /* A (full) -> Success; B (negative) completed -> none; C (positive) rejected -> none. */
    char fb[256];
    feedback_all(fx, T0 + 10, fb, sizeof(fb));
    assert_string_equal(fb, "Success:A");
    struct hub_c2d_feedback_list *list = NULL;
    ok(hub_store_feedback_receive1(fx->store, T0 + 10, "f1", T0 + 20, 10, &list, &err), &err,
       "feedback");
    assert_int_equal(list->count, 1);
    assert_string_equal(list->items[0].device_id, "d1");
    assert_string_equal(list->items[0].device_generation_id, "gen-1");
    assert_int_equal(list->items[0].enqueued_ms, T0 + 1);
    hub_c2d_feedback_list_free(list);
    hub_c2d_msg_clear(&a);
    hub_c2d_msg_clear(&b);
    hub_c2d_msg_clear(&c);
    hub_c2d_msg_clear(&b2);
}

static void test_c2d_lock_expiry_and_release(void **state)
{
    struct fx *fx = *state;
    struct hub_err err = {0};
    add_device(fx, "d1", "1");
    enqueue(fx, "d1", "A", HUB_C2D_ACK_NONE, T0 + 100000);
    enqueue(fx, "d1", "B", HUB_C2D_ACK_NONE, T0 + 100000);
    struct hub_c2d_msg m;
    ok(hub_store_c2d_deliver(fx->store, "d1", T0, "t1", T0 + 1000, 10, &m, NULL, &err), &err,
       "deliver");
    hub_c2d_msg_clear(&m);
    /* At the lock's expiry the device lost it (Azure 412). */
    assert_int_equal(hub_store_c2d_settle(fx->store, "d1", "t1", HUB_C2D_COMPLETE, T0 + 1000, &err),
                     HUB_E_ETAG_MISMATCH);
    /* ... and A is deliverable again, under a new token; the old one is dead. */
    ok(hub_store_c2d_deliver(fx->store, "d1", T0 + 1000, "t2", T0 + 2000, 10, &m, NULL, &err), &err,
       "redeliver");
    assert_string_equal(m.sys[HUB_SYSPROP_MESSAGE_ID], "A");
    assert_int_equal(m.delivery_count, 2);
    hub_c2d_msg_clear(&m);
    assert_int_equal(hub_store_c2d_settle(fx->store, "d1", "t1", HUB_C2D_COMPLETE, T0 + 1001, &err),
                     HUB_E_NOT_FOUND);
    ok(hub_store_c2d_deliver(fx->store, "d1", T0 + 1000, "t3", T0 + 2000, 10, &m, NULL, &err), &err,
       "deliver B");
    hub_c2d_msg_clear(&m);

    /* A new MQTT session: both in-flight messages become deliverable at once. */
    size_t released = 0;
    ok(hub_store_c2d_release(fx->store, "d1", &released, &err), &err, "release");
    assert_int_equal(released, 2);
    ok(hub_store_c2d_deliver(fx->store, "d1", T0 + 1001, "t4", T0 + 2000, 10, &m, NULL, &err), &err,
       "deliver after release");
    assert_string_equal(m.sys[HUB_SYSPROP_MESSAGE_ID], "A");
    assert_int_equal(m.delivery_count, 3);
    hub_c2d_msg_clear(&m);
}

static void test_c2d_dead_letter_after_max_deliveries(void **state)
{
    struct fx *fx = *state;
    struct hub_err err = {0};
    add_device(fx, "d1", "1");
    enqueue(fx, "d1", "neg", HUB_C2D_ACK_NEGATIVE, T0 + 100000);
    enqueue(fx, "d1", "none", HUB_C2D_ACK_NONE, T0 + 100000);
    enqueue(fx, "d1", "last", HUB_C2D_ACK_FULL, T0 + 100000);
    const int max = 2;
    struct hub_c2d_msg m;
    char token[16];
    for (int round = 0; round < max; round++) {
        for (int i = 0; i < 3; i++) {
            snprintf(token, sizeof(token), "t%d-%d", round, i);
            size_t dead = 99;
            ok(hub_store_c2d_deliver(fx->store, "d1", T0, token, T0 + 1000, max, &m, &dead, &err),
               &err, "deliver");
            assert_int_equal(dead, 0);
            assert_int_equal(m.delivery_count, round + 1);
            hub_c2d_msg_clear(&m);
        }
        for (int i = 0; i < 3; i++) {
            /* Leave "last" locked after the last round. */
            if (round == max - 1 && i == 2)
                continue;
            snprintf(token, sizeof(token), "t%d-%d", round, i);
            ok(hub_store_c2d_settle(fx->store, "d1", token, HUB_C2D_ABANDON, T0, &err), &err,
               "abandon");
        }
    }
    /* "neg" and "none" were delivered max times and are back: dead-lettered now. */
    size_t dead = 0;
    assert_int_equal(
        hub_store_c2d_deliver(fx->store, "d1", T0, "tz", T0 + 1000, max, &m, &dead, &err),
        HUB_E_NOT_FOUND);
    assert_int_equal(dead, 2);
    assert_int_equal(count_of(fx, "d1"), 1);
    char fb[256];
    feedback_all(fx, T0, fb, sizeof(fb));
    assert_string_equal(fb, "DeliveryCountExceeded:neg"); /* ack none: no record */
}

static void test_c2d_expiry_with_injected_clock(void **state)
{
    struct fx *fx = *state;
    struct hub_err err = {0};
    add_device(fx, "d1", "1");
    add_device(fx, "d2", "2");
    enqueue(fx, "d1", "e-full", HUB_C2D_ACK_FULL, T0 + 1000);
    enqueue(fx, "d1", "e-pos", HUB_C2D_ACK_POSITIVE, T0 + 1000);
    enqueue(fx, "d2", "e-neg", HUB_C2D_ACK_NEGATIVE, T0 + 2000);
    enqueue(fx, "d2", "keep", HUB_C2D_ACK_FULL, T0 + 3000);
    struct hub_c2d_msg m;
    /* At expiry a message is no longer deliverable, even before the sweep. */
    assert_int_equal(
        hub_store_c2d_deliver(fx->store, "d1", T0 + 1000, "t", T0 + 5000, 10, &m, NULL, &err),
        HUB_E_NOT_FOUND);
    size_t n = 0;
    ok(hub_store_c2d_expire(fx->store, T0 + 999, &n, &err), &err, "expire early");
    assert_int_equal(n, 0);
    ok(hub_store_c2d_expire(fx->store, T0 + 2000, &n, &err), &err, "expire");
    assert_int_equal(n, 3);
    assert_int_equal(count_of(fx, "d1"), 0);
    assert_int_equal(count_of(fx, "d2"), 1);
    char fb[256];
    feedback_all(fx, T0 + 2000, fb, sizeof(fb));
    assert_string_equal(fb, "Expired:e-full,Expired:e-neg");
}

static void test_c2d_purge_and_cascade(void **state)
{
    struct fx *fx = *state;
    struct hub_err err = {0};
    add_device(fx, "d1", "1");
    add_device(fx, "d2", "2");
    enqueue(fx, "d1", "p1", HUB_C2D_ACK_NEGATIVE, T0 + 100000);
    enqueue(fx, "d1", "p2", HUB_C2D_ACK_POSITIVE, T0 + 100000);
    enqueue(fx, "d2", "x1", HUB_C2D_ACK_FULL, T0 + 100000);
    enqueue(fx, "d2", "x2", HUB_C2D_ACK_FULL, T0 + 100000);
    size_t n = 0;
    ok(hub_store_c2d_purge(fx->store, "d1", T0, &n, &err), &err, "purge");
    assert_int_equal(n, 2);
    assert_int_equal(count_of(fx, "d1"), 0);
    assert_int_equal(count_of(fx, "d2"), 2);
    assert_int_equal(hub_store_c2d_purge(fx->store, "ghost", T0, &n, &err), HUB_E_NOT_FOUND);
    char fb[256];
    feedback_all(fx, T0, fb, sizeof(fb));
    assert_string_equal(fb, "Purged:p1");

    /* Deleting the device drops its queue, with no feedback for it. */
    ok(hub_store_device_delete(fx->store, "d2", NULL, &err), &err, "delete device");
    assert_int_equal(db_int(fx->path, "SELECT count(*) FROM c2d_messages"), 0);
    assert_int_equal(hub_store_c2d_count(fx->store, "d2", &n, &err), HUB_E_NOT_FOUND);
    feedback_all(fx, T0, fb, sizeof(fb));
    assert_string_equal(fb, "Purged:p1");
    /* A device re-created under the same id starts empty. */
    add_device(fx, "d2", "3");
    assert_int_equal(count_of(fx, "d2"), 0);
}

/* The identity's read-modify-write must not put back a stale count. */
static void test_c2d_count_survives_device_update(void **state)
{
    struct fx *fx = *state;
    struct hub_err err = {0};
    add_device(fx, "d1", "1");
    struct hub_device before;
    ok(hub_store_device_get(fx->store, "d1", &before, &err), &err, "get");
    assert_int_equal(before.c2d_count, 0);
    enqueue(fx, "d1", "a", HUB_C2D_ACK_NONE, T0 + 100000);
    enqueue(fx, "d1", "b", HUB_C2D_ACK_NONE, T0 + 100000);
    before.status = HUB_DEVICE_DISABLED;
    snprintf(before.etag, sizeof(before.etag), "E2");
    ok(hub_store_device_update(fx->store, &before, "E1", &err), &err, "update with stale count");
    struct hub_device after;
    ok(hub_store_device_get(fx->store, "d1", &after, &err), &err, "get");
    assert_int_equal(after.status, HUB_DEVICE_DISABLED);
    assert_int_equal(after.c2d_count, 2);
}

static void test_c2d_injected_fault_leaves_queue_unchanged(void **state)
{
    struct fx *fx = *state;
    struct hub_err err = {0};
    add_device(fx, "d1", "1");
    struct hub_c2d_msg m = c2d("d1", "a", HUB_C2D_ACK_FULL, T0, T0 + 100000);
    hub_store_sqlite_fail_commits(fx->store, 1);
    assert_int_equal(hub_store_c2d_enqueue(fx->store, &m, 50, NULL, &err), HUB_E_IO);
    assert_int_equal(count_of(fx, "d1"), 0);
    ok(hub_store_c2d_enqueue(fx->store, &m, 50, NULL, &err), &err, "enqueue");
    struct hub_c2d_msg got;
    ok(hub_store_c2d_deliver(fx->store, "d1", T0, "t", T0 + 1000, 10, &got, NULL, &err), &err,
       "deliver");
    hub_c2d_msg_clear(&got);
    hub_store_sqlite_fail_commits(fx->store, 1);
    assert_int_equal(hub_store_c2d_settle(fx->store, "d1", "t", HUB_C2D_COMPLETE, T0, &err),
                     HUB_E_IO);
    assert_int_equal(count_of(fx, "d1"), 1); /* not completed, no feedback */
    char fb[64];
    feedback_all(fx, T0, fb, sizeof(fb));
    assert_string_equal(fb, "");
    ok(hub_store_c2d_settle(fx->store, "d1", "t", HUB_C2D_COMPLETE, T0, &err), &err, "complete");
    assert_int_equal(count_of(fx, "d1"), 0);
}

/* ---- feedback ----------------------------------------------------------------- */

static void test_feedback_batches_lock_complete_abandon(void **state)
{
    struct fx *fx = *state;
    struct hub_err err = {0};
    add_device(fx, "d1", "1");
    char mid[5][8];
    for (int i = 0; i < 5; i++) {
        snprintf(mid[i], sizeof(mid[i]), "m%d", i);
        enqueue(fx, "d1", mid[i], HUB_C2D_ACK_NEGATIVE, T0 + 100000);
    }
    size_t n = 0;
    ok(hub_store_c2d_purge(fx->store, "d1", T0, &n, &err), &err, "purge"); /* 5 records */

    struct hub_c2d_feedback_list *b1 = NULL, *b2 = NULL, *b3 = NULL;
    ok(hub_store_feedback_receive1(fx->store, T0, "L1", T0 + 100, 2, &b1, &err), &err, "recv 1");
    ok(hub_store_feedback_receive1(fx->store, T0, "L2", T0 + 100, 2, &b2, &err), &err, "recv 2");
    assert_int_equal(b1->count, 2);
    assert_int_equal(b2->count, 2);
    assert_string_equal(b1->items[0].original_message_id, "m0");
    assert_string_equal(b2->items[0].original_message_id, "m2");
    assert_int_equal(b1->items[0].status, HUB_C2D_PURGED);
    assert_true(b1->items[0].seq < b1->items[1].seq);

    ok(hub_store_feedback_settle(fx->store, "L2", true, T0 + 1, &n, &err), &err, "complete L2");
    assert_int_equal(n, 2);
    assert_int_equal(hub_store_feedback_settle(fx->store, "L2", true, T0 + 1, &n, &err),
                     HUB_E_NOT_FOUND);
    ok(hub_store_feedback_settle(fx->store, "L1", false, T0 + 1, &n, &err), &err, "abandon L1");
    /* The abandoned batch and the untouched record come next, oldest first. */
    ok(hub_store_feedback_receive1(fx->store, T0 + 2, "L3", T0 + 100, 10, &b3, &err), &err,
       "recv 3");
    assert_int_equal(b3->count, 3);
    assert_string_equal(b3->items[0].original_message_id, "m0");
    assert_string_equal(b3->items[2].original_message_id, "m4");
    /* An expired lock cannot complete, and its records are offered again. */
    assert_int_equal(hub_store_feedback_settle(fx->store, "L3", true, T0 + 100, &n, &err),
                     HUB_E_NOT_FOUND);
    struct hub_c2d_feedback_list *b4 = NULL;
    ok(hub_store_feedback_receive1(fx->store, T0 + 100, "L4", T0 + 200, 10, &b4, &err), &err,
       "recv 4");
    assert_int_equal(b4->count, 3);
    /* Prune ages records out whatever their lock. */
    ok(hub_store_feedback_prune(fx->store, T0 + 1, &n, &err), &err, "prune");
    assert_int_equal(n, 3);
    struct hub_c2d_feedback_list *b5 = NULL;
    ok(hub_store_feedback_receive1(fx->store, T0 + 300, "L5", T0 + 400, 10, &b5, &err), &err,
       "recv 5");
    assert_int_equal(b5->count, 0);
    struct hub_c2d_feedback_list *b6 = NULL;
    assert_int_equal(hub_store_feedback_receive1(fx->store, T0, "L6", T0 + 1, 0, &b6, &err),
                     HUB_E_INVALID_ARG);
    assert_null(b6);
    hub_c2d_feedback_list_free(b1);
    hub_c2d_feedback_list_free(b2);
    hub_c2d_feedback_list_free(b3);
    hub_c2d_feedback_list_free(b4);
    hub_c2d_feedback_list_free(b5);
}

static void test_enum_names(void **state)
{
    (void)state;
    struct hub_err err = {0};
    for (int a = HUB_C2D_ACK_NONE; a <= HUB_C2D_ACK_FULL; a++) {
        enum hub_c2d_ack back;
        ok(hub_c2d_ack_parse(hub_c2d_ack_name((enum hub_c2d_ack)a), &back, &err), &err, "ack");
        assert_int_equal(back, a);
    }
    for (int o = HUB_C2D_SUCCESS; o <= HUB_C2D_PURGED; o++) {
        enum hub_c2d_outcome back;
        ok(hub_c2d_outcome_parse(hub_c2d_outcome_name((enum hub_c2d_outcome)o), &back, &err), &err,
           "outcome");
        assert_int_equal(back, o);
    }
    enum hub_c2d_ack a;
    assert_int_equal(hub_c2d_ack_parse("Full", &a, &err), HUB_E_INVALID_ARG);
    assert_string_equal(hub_c2d_outcome_name(HUB_C2D_DELIVERY_COUNT_EXCEEDED),
                        "DeliveryCountExceeded");
    assert_string_equal(hub_sysprop_name(HUB_SYSPROP_MESSAGE_ID), "messageId");
    assert_string_equal(hub_sysprop_name(HUB_SYSPROP_MESSAGE_TYPE), "iothub-MessageType");
    assert_string_equal(hub_sysprop_name(HUB_SYSPROP__COUNT), "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_migration_from_schema_1),
        cmocka_unit_test_setup_teardown(test_telemetry_round_trip_and_order, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_telemetry_bounds_write_nothing, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_telemetry_prune_and_seq_never_reused, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_telemetry_injected_commit_fault, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_telemetry_damaged_props_refused, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_c2d_enqueue_limit_and_unknown_device, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_c2d_round_trip_fields, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_c2d_deliver_lock_and_settle, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_c2d_lock_expiry_and_release, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_c2d_dead_letter_after_max_deliveries, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_c2d_expiry_with_injected_clock, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_c2d_purge_and_cascade, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_c2d_count_survives_device_update, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_c2d_injected_fault_leaves_queue_unchanged, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_feedback_batches_lock_complete_abandon, fx_setup,
                                        fx_teardown),
        cmocka_unit_test(test_enum_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
