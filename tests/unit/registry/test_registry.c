/*
 * registry, device rules: id syntax, create/update/delete with etags and
 * generation ids, SAS keys and thumbprints, the authentication lookup, paging
 * limits, and concurrent use. Runs against a real SQLite store in a mkdtemp
 * directory with an injected clock.
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

#include "common/util.h"
#include "registry/registry.h"

struct fx {
    char dir[64];
    char path[128];
    struct hub_store *store;
    struct hub_registry *reg;
    int64_t now;
};

static int64_t fx_now(void *ctx)
{
    return ((struct fx *)ctx)->now;
}

static int fx_setup(void **state)
{
    struct fx *fx = calloc(1, sizeof(*fx));
    assert_non_null(fx);
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/hubd-test-registry-XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    snprintf(fx->path, sizeof(fx->path), "%s/hub.db", fx->dir);
    fx->now = 1750000000;
    struct hub_err err = {0};
    if (hub_store_sqlite_open(fx->path, NULL, &fx->store, &err) != 0)
        fail_msg("open: %s", err.msg);
    struct hub_registry_opts opts = {.now = fx_now, .now_ctx = fx};
    assert_int_equal(hub_registry_new(fx->store, &opts, &fx->reg, &err), 0);
    *state = fx;
    return 0;
}

static int fx_teardown(void **state)
{
    struct fx *fx = *state;
    hub_registry_free(fx->reg);
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

static struct hub_device spec(const char *id, enum hub_auth_type type)
{
    struct hub_device d;
    memset(&d, 0, sizeof(d));
    snprintf(d.id, sizeof(d.id), "%s", id);
    d.auth_type = type;
    return d;
}

static void create_ok(struct fx *fx, const struct hub_device *in, struct hub_device *out)
{
    struct hub_err err = {0};
    int rc = hub_registry_device_create(fx->reg, in, out, &err);
    if (rc != 0)
        fail_msg("create %s: %s (%s)", in->id, err.msg, hub_err_name(rc));
}

/* ---- syntax ----------------------------------------------------------------- */

static void test_device_id_syntax_table(void **state)
{
    (void)state;
    char max[HUB_DEVICE_ID_MAX + 2];
    memset(max, 'a', HUB_DEVICE_ID_MAX);
    max[HUB_DEVICE_ID_MAX] = '\0';
    char over[HUB_DEVICE_ID_MAX + 2];
    memset(over, 'a', HUB_DEVICE_ID_MAX + 1);
    over[HUB_DEVICE_ID_MAX + 1] = '\0';
    static const struct {
        const char *id;
        int rc;
    } cases[] = {
        {"dev1", 0},
        {"a", 0},
        {"Device-01.floor_2", 0},
        {"all-the-specials-%_*?!(),:=@$'", 0},
        {"0123456789", 0},
        {"", HUB_E_INVALID_ARG},
        {"has space", HUB_E_INVALID_ARG},
        {"plus+sign", HUB_E_INVALID_ARG},
        {"hash#sign", HUB_E_INVALID_ARG},
        {"slash/", HUB_E_INVALID_ARG},
        {"back\\slash", HUB_E_INVALID_ARG},
        {"quote\"", HUB_E_INVALID_ARG},
        {"amp&", HUB_E_INVALID_ARG},
        {"tab\t", HUB_E_INVALID_ARG},
        {"caf\xc3\xa9", HUB_E_INVALID_ARG}, /* non-ASCII */
        {"semi;colon", HUB_E_INVALID_ARG},
        {"angle<", HUB_E_INVALID_ARG},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct hub_err err = {0};
        int rc = hub_registry_device_id_check(cases[i].id, &err);
        if (rc != cases[i].rc)
            fail_msg("id '%s': rc %d, want %d", cases[i].id, rc, cases[i].rc);
        if (rc != 0)
            assert_true(err.msg[0] != '\0');
    }
    assert_int_equal(hub_registry_device_id_check(max, NULL), 0);
    assert_int_equal(hub_registry_device_id_check(over, NULL), HUB_E_INVALID_ARG);
    assert_int_equal(hub_registry_device_id_check(NULL, NULL), HUB_E_INVALID_ARG);
}

static void test_ca_name_syntax_table(void **state)
{
    (void)state;
    char max[66], over[66];
    memset(max, 'n', 64);
    max[64] = '\0';
    memset(over, 'n', 65);
    over[65] = '\0';
    static const struct {
        const char *name;
        int rc;
    } cases[] = {
        {"root", 0},
        {"Contoso-Root.CA_2", 0},
        {"-._", 0},
        {"", HUB_E_INVALID_ARG},
        {"has space", HUB_E_INVALID_ARG},
        {"a/b", HUB_E_INVALID_ARG},
        {"a:b", HUB_E_INVALID_ARG},
        {"a%b", HUB_E_INVALID_ARG},
        {"caf\xc3\xa9", HUB_E_INVALID_ARG},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc = hub_registry_ca_name_check(cases[i].name, NULL);
        if (rc != cases[i].rc)
            fail_msg("name '%s': rc %d, want %d", cases[i].name, rc, cases[i].rc);
    }
    assert_int_equal(hub_registry_ca_name_check(max, NULL), 0);
    assert_int_equal(hub_registry_ca_name_check(over, NULL), HUB_E_INVALID_ARG);
}

/* ---- create ------------------------------------------------------------------- */

static void test_create_fills_hub_fields(void **state)
{
    struct fx *fx = *state;
    struct hub_device in = spec("ca-dev", HUB_AUTH_CERT_AUTHORITY);
    snprintf(in.primary_key, sizeof(in.primary_key), "ignored-for-ca-devices");
    in.iot_edge = true;
    struct hub_device out;
    create_ok(fx, &in, &out);
    assert_string_equal(out.id, "ca-dev");
    assert_true(out.generation_id[0] != '\0');
    assert_int_equal(strspn(out.generation_id, "0123456789"), strlen(out.generation_id));
    assert_true(out.etag[0] != '\0');
    assert_int_equal(out.status, HUB_DEVICE_ENABLED);
    assert_int_equal(out.conn_state, HUB_CONN_DISCONNECTED);
    assert_int_equal(out.created, fx->now);
    assert_int_equal(out.updated, fx->now);
    assert_int_equal(out.status_updated, fx->now);
    assert_int_equal(out.auth_type, HUB_AUTH_CERT_AUTHORITY);
    assert_string_equal(out.primary_key, "");
    assert_true(out.iot_edge);

    struct hub_device got;
    assert_int_equal(hub_registry_device_get(fx->reg, "ca-dev", &got, NULL), 0);
    assert_string_equal(got.etag, out.etag);
    assert_string_equal(got.generation_id, out.generation_id);

    struct hub_err err = {0};
    assert_int_equal(hub_registry_device_create(fx->reg, &in, &out, &err), HUB_E_EXISTS);

    /* A re-created id gets a new generation id. */
    assert_int_equal(hub_registry_device_delete(fx->reg, "ca-dev", "*", &err), 0);
    struct hub_device again;
    create_ok(fx, &in, &again);
    assert_string_not_equal(again.generation_id, got.generation_id);

    struct hub_device bad = spec("bad id", HUB_AUTH_CERT_AUTHORITY);
    assert_int_equal(hub_registry_device_create(fx->reg, &bad, &out, &err), HUB_E_INVALID_ARG);
    assert_int_equal(hub_registry_device_get(fx->reg, "missing", &got, &err), HUB_E_NOT_FOUND);
}

static void assert_key_bytes(const char *key, int want)
{
    unsigned char raw[128];
    int n = hub_base64_decode(key, strlen(key), raw, sizeof(raw), NULL);
    assert_int_equal(n, want);
}

static void test_sas_keys_generated_when_empty(void **state)
{
    struct fx *fx = *state;
    struct hub_device a, b;
    struct hub_device in = spec("sas1", HUB_AUTH_SAS);
    create_ok(fx, &in, &a);
    in = spec("sas2", HUB_AUTH_SAS);
    create_ok(fx, &in, &b);
    assert_key_bytes(a.primary_key, 32);
    assert_key_bytes(a.secondary_key, 32);
    assert_string_not_equal(a.primary_key, a.secondary_key);
    assert_string_not_equal(a.primary_key, b.primary_key);
    assert_string_not_equal(a.generation_id, b.generation_id);
}

static void test_sas_key_validation_table(void **state)
{
    struct fx *fx = *state;
    static const struct {
        const char *primary, *secondary;
        int rc;
    } cases[] = {
        {"AAAAAAAAAAAAAAAAAAAAAA==", "AAAAAAAAAAAAAAAAAAAAAA==", 0}, /* 16 bytes */
        {"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==",
         "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==",
         0},                                                                     /* 64 bytes */
        {"AAAAAAAAAAAAAAAAAAAA", "AAAAAAAAAAAAAAAAAAAAAA==", HUB_E_INVALID_ARG}, /* 15 bytes */
        {"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
         "AAAAAAAAAAAAAAAAAAAAAA==", HUB_E_INVALID_ARG}, /* 66 bytes */
        {"not base64!!", "AAAAAAAAAAAAAAAAAAAAAA==", HUB_E_INVALID_ARG},
        {"AAAAAAAAAAAAAAAAAAAAAA==", "", HUB_E_INVALID_ARG}, /* one key only */
        {"", "AAAAAAAAAAAAAAAAAAAAAA==", HUB_E_INVALID_ARG},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char id[16];
        snprintf(id, sizeof(id), "k%zu", i);
        struct hub_device in = spec(id, HUB_AUTH_SAS);
        snprintf(in.primary_key, sizeof(in.primary_key), "%s", cases[i].primary);
        snprintf(in.secondary_key, sizeof(in.secondary_key), "%s", cases[i].secondary);
        struct hub_device out;
        struct hub_err err = {0};
        int rc = hub_registry_device_create(fx->reg, &in, &out, &err);
        if (rc != cases[i].rc)
            fail_msg("case %zu: rc %s, want %s (%s)", i, hub_err_name(rc),
                     hub_err_name(cases[i].rc), err.msg);
        if (rc == 0)
            assert_string_equal(out.primary_key, cases[i].primary);
    }
}

static void test_self_signed_thumbprints(void **state)
{
    struct fx *fx = *state;
    const char *sha1_lower = "97388663832d0393c9246cab4fba2c8677185a25";
    const char *sha256 = "0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF";
    struct hub_device in = spec("ss", HUB_AUTH_SELF_SIGNED);
    snprintf(in.primary_thumbprint, sizeof(in.primary_thumbprint), "%s", sha1_lower);
    snprintf(in.secondary_thumbprint, sizeof(in.secondary_thumbprint), "%s", sha256);
    struct hub_device out;
    create_ok(fx, &in, &out);
    assert_string_equal(out.primary_thumbprint, "97388663832D0393C9246CAB4FBA2C8677185A25");
    assert_string_equal(out.secondary_thumbprint, sha256);
    assert_string_equal(out.primary_key, "");
    assert_true(hub_registry_device_thumbprint_match(&out, sha1_lower));
    assert_true(hub_registry_device_thumbprint_match(
        &out, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"));
    assert_false(
        hub_registry_device_thumbprint_match(&out, "97388663832D0393C9246CAB4FBA2C8677185A26"));
    assert_false(hub_registry_device_thumbprint_match(&out, ""));

    static const struct {
        const char *primary, *secondary;
    } bad[] = {
        {"", ""},                                         /* primary required */
        {"", "97388663832D0393C9246CAB4FBA2C8677185A25"}, /* secondary alone */
        {"AB", ""},                                       /* too short */
        {"97388663832D0393C9246CAB4FBA2C8677185A2", ""},  /* 39 */
        {"97388663832D0393C9246CAB4FBA2C8677185A25", "XYZ"},
        {"G7388663832D0393C9246CAB4FBA2C8677185A25", ""}, /* not hex */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct hub_device b = spec("ss-bad", HUB_AUTH_SELF_SIGNED);
        snprintf(b.primary_thumbprint, sizeof(b.primary_thumbprint), "%s", bad[i].primary);
        snprintf(b.secondary_thumbprint, sizeof(b.secondary_thumbprint), "%s", bad[i].secondary);
        struct hub_err err = {0};
        int rc = hub_registry_device_create(fx->reg, &b, &out, &err);
        if (rc != HUB_E_INVALID_ARG)
            fail_msg("case %zu: rc %s", i, hub_err_name(rc));
    }
}

/* ---- update / delete ----------------------------------------------------------- */

static void test_update_changes_etag_every_time_and_refuses_stale(void **state)
{
    struct fx *fx = *state;
    struct hub_device in = spec("upd", HUB_AUTH_CERT_AUTHORITY);
    struct hub_device v1, v2, v3;
    create_ok(fx, &in, &v1);
    struct hub_err err = {0};
    fx->now += 10;
    /* Identical content still gets a new etag. */
    assert_int_equal(hub_registry_device_update(fx->reg, &in, v1.etag, &v2, &err), 0);
    assert_string_not_equal(v2.etag, v1.etag);
    assert_string_equal(v2.generation_id, v1.generation_id);
    assert_int_equal(v2.created, v1.created);
    assert_int_equal(v2.updated, fx->now);
    assert_int_equal(v2.status_updated, v1.status_updated); /* status unchanged */

    in.status = HUB_DEVICE_DISABLED;
    snprintf(in.status_reason, sizeof(in.status_reason), "maintenance");
    assert_int_equal(hub_registry_device_update(fx->reg, &in, v1.etag, &v3, &err),
                     HUB_E_ETAG_MISMATCH);
    struct hub_device got;
    assert_int_equal(hub_registry_device_get(fx->reg, "upd", &got, NULL), 0);
    assert_int_equal(got.status, HUB_DEVICE_ENABLED);
    assert_string_equal(got.etag, v2.etag);

    fx->now += 10;
    assert_int_equal(hub_registry_device_update(fx->reg, &in, "*", &v3, &err), 0);
    assert_string_not_equal(v3.etag, v2.etag);
    assert_int_equal(v3.status, HUB_DEVICE_DISABLED);
    assert_string_equal(v3.status_reason, "maintenance");
    assert_int_equal(v3.status_updated, fx->now);
    assert_int_equal(hub_registry_device_update(fx->reg, &in, NULL, &v3, &err), 0);

    struct hub_device ghost = spec("ghost", HUB_AUTH_CERT_AUTHORITY);
    assert_int_equal(hub_registry_device_update(fx->reg, &ghost, NULL, &v3, &err), HUB_E_NOT_FOUND);

    assert_int_equal(hub_registry_device_delete(fx->reg, "upd", v2.etag, &err),
                     HUB_E_ETAG_MISMATCH);
    assert_int_equal(hub_registry_device_delete(fx->reg, "upd", v3.etag, &err), 0);
    assert_int_equal(hub_registry_device_delete(fx->reg, "upd", "*", &err), HUB_E_NOT_FOUND);
}

static void test_update_with_empty_keys_keeps_sas_keys(void **state)
{
    struct fx *fx = *state;
    struct hub_device in = spec("keep", HUB_AUTH_SAS);
    struct hub_device v1, v2, v3, v4;
    create_ok(fx, &in, &v1);
    struct hub_err err = {0};
    /* What the Azure SDK sends on update when auth was omitted. */
    in.iot_edge = true;
    assert_int_equal(hub_registry_device_update(fx->reg, &in, "*", &v2, &err), 0);
    assert_string_equal(v2.primary_key, v1.primary_key);
    assert_string_equal(v2.secondary_key, v1.secondary_key);
    assert_true(v2.iot_edge);

    /* Explicit keys replace them. */
    snprintf(in.primary_key, sizeof(in.primary_key), "AAAAAAAAAAAAAAAAAAAAAA==");
    snprintf(in.secondary_key, sizeof(in.secondary_key), "BBBBBBBBBBBBBBBBBBBBBB==");
    assert_int_equal(hub_registry_device_update(fx->reg, &in, "*", &v3, &err), 0);
    assert_string_equal(v3.primary_key, "AAAAAAAAAAAAAAAAAAAAAA==");

    /* Moving to certificateAuthority drops keys. */
    struct hub_device ca = spec("keep", HUB_AUTH_CERT_AUTHORITY);
    assert_int_equal(hub_registry_device_update(fx->reg, &ca, "*", &v4, &err), 0);
    assert_string_equal(v4.primary_key, "");

    /* "sas with empty keys" on a certificate device is the SDK's update
     * without authentication (e.g. only disabling it): the device stays a
     * certificateAuthority device and gets no keys. */
    struct hub_device sas = spec("keep", HUB_AUTH_SAS);
    sas.status = HUB_DEVICE_DISABLED;
    assert_int_equal(hub_registry_device_update(fx->reg, &sas, "*", &v4, &err), 0);
    assert_int_equal(v4.auth_type, HUB_AUTH_CERT_AUTHORITY);
    assert_int_equal(v4.status, HUB_DEVICE_DISABLED);
    assert_string_equal(v4.primary_key, "");

    /* Switching back to sas needs keys, which replace nothing old. */
    snprintf(sas.primary_key, sizeof(sas.primary_key), "CCCCCCCCCCCCCCCCCCCCCC==");
    snprintf(sas.secondary_key, sizeof(sas.secondary_key), "DDDDDDDDDDDDDDDDDDDDDD==");
    assert_int_equal(hub_registry_device_update(fx->reg, &sas, "*", &v4, &err), 0);
    assert_int_equal(v4.auth_type, HUB_AUTH_SAS);
    assert_string_equal(v4.primary_key, "CCCCCCCCCCCCCCCCCCCCCC==");
}

/* ---- runtime state and authentication -------------------------------------------- */

static void test_conn_state_and_activity(void **state)
{
    struct fx *fx = *state;
    struct hub_device in = spec("rt", HUB_AUTH_CERT_AUTHORITY);
    struct hub_device v1, got;
    create_ok(fx, &in, &v1);
    struct hub_err err = {0};
    fx->now += 100;
    assert_int_equal(hub_registry_device_conn_state_set(fx->reg, "rt", HUB_CONN_CONNECTED, &err),
                     0);
    fx->now += 5;
    assert_int_equal(hub_registry_device_activity_touch(fx->reg, "rt", &err), 0);
    assert_int_equal(hub_registry_device_get(fx->reg, "rt", &got, &err), 0);
    assert_int_equal(got.conn_state, HUB_CONN_CONNECTED);
    assert_int_equal(got.conn_state_updated, fx->now - 5);
    assert_int_equal(got.last_activity, fx->now);
    assert_string_equal(got.etag, v1.etag);
    assert_int_equal(hub_registry_device_conn_state_set(fx->reg, "rt", HUB_CONN_DISCONNECTED, &err),
                     0);
    assert_int_equal(hub_registry_device_get(fx->reg, "rt", &got, &err), 0);
    assert_int_equal(got.conn_state, HUB_CONN_DISCONNECTED);
    assert_int_equal(
        hub_registry_device_conn_state_set(fx->reg, "nobody", HUB_CONN_CONNECTED, &err),
        HUB_E_NOT_FOUND);
}

static void test_auth_lookup(void **state)
{
    struct fx *fx = *state;
    struct hub_device in = spec("auth-ok", HUB_AUTH_CERT_AUTHORITY);
    struct hub_device out;
    create_ok(fx, &in, &out);
    in = spec("auth-off", HUB_AUTH_CERT_AUTHORITY);
    in.status = HUB_DEVICE_DISABLED;
    create_ok(fx, &in, &out);

    struct hub_err err = {0};
    assert_int_equal(hub_registry_device_auth_lookup(fx->reg, "auth-ok", &out, &err), 0);
    assert_string_equal(out.id, "auth-ok");
    assert_int_equal(out.auth_type, HUB_AUTH_CERT_AUTHORITY);
    memset(&out, 0, sizeof(out));
    assert_int_equal(hub_registry_device_auth_lookup(fx->reg, "auth-off", &out, &err),
                     HUB_E_FORBIDDEN);
    assert_string_equal(out.id, "auth-off"); /* filled, for the log line */
    assert_non_null(strstr(err.msg, "disabled"));
    assert_int_equal(hub_registry_device_auth_lookup(fx->reg, "stranger", &out, &err),
                     HUB_E_NOT_FOUND);
    assert_int_equal(hub_registry_device_auth_lookup(fx->reg, "bad#id", &out, &err),
                     HUB_E_INVALID_ARG);
}

static void test_list_limits(void **state)
{
    struct fx *fx = *state;
    for (int i = 0; i < 5; i++) {
        char id[8];
        snprintf(id, sizeof(id), "l%d", i);
        struct hub_device in = spec(id, i % 2 ? HUB_AUTH_SAS : HUB_AUTH_CERT_AUTHORITY);
        struct hub_device out;
        create_ok(fx, &in, &out);
    }
    struct hub_err err = {0};
    struct hub_device_list *list = NULL;
    assert_int_equal(hub_registry_device_list1(fx->reg, NULL, &list, &err), 0);
    assert_int_equal(list->count, 5);
    assert_string_equal(list->next_cursor, "");
    hub_device_list_free(list);
    struct hub_device_filter f = {.limit = HUB_REGISTRY_LIST_MAX + 1};
    list = NULL;
    assert_int_equal(hub_registry_device_list1(fx->reg, &f, &list, &err), HUB_E_INVALID_ARG);
    assert_null(list);
    f = (struct hub_device_filter){.has_auth_type = true, .auth_type = HUB_AUTH_SAS, .limit = 1};
    assert_int_equal(hub_registry_device_list1(fx->reg, &f, &list, &err), 0);
    assert_int_equal(list->count, 1);
    assert_string_equal(list->items[0].id, "l1");
    char cursor[HUB_STORE_CURSOR_SIZE];
    snprintf(cursor, sizeof(cursor), "%s", list->next_cursor);
    hub_device_list_free(list);
    f.cursor = cursor;
    assert_int_equal(hub_registry_device_list1(fx->reg, &f, &list, &err), 0);
    assert_int_equal(list->count, 1);
    assert_string_equal(list->items[0].id, "l3");
    hub_device_list_free(list);
}

/* ---- concurrency -------------------------------------------------------------------- */

#define THREADS    6
#define PER_THREAD 30

struct worker {
    struct hub_registry *reg;
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
        snprintf(id, sizeof(id), "w%d-%d", w->index, i);
        struct hub_device in = spec(id, HUB_AUTH_SAS), out, got;
        if (hub_registry_device_create(w->reg, &in, &out, &err) != 0 ||
            hub_registry_device_auth_lookup(w->reg, id, &got, &err) != 0 ||
            strcmp(got.primary_key, out.primary_key) != 0 ||
            hub_registry_device_update(w->reg, &in, out.etag, &got, &err) != 0) {
            w->failures++;
            snprintf(w->msg, sizeof(w->msg), "%.31s: %.200s", id, err.msg);
        }
    }
    return NULL;
}

static void test_concurrent_registry_use(void **state)
{
    struct fx *fx = *state;
    pthread_t th[THREADS];
    struct worker w[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i] = (struct worker){.reg = fx->reg, .index = i};
        assert_int_equal(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        if (w[i].failures != 0)
            fail_msg("thread %d: %d failures, last: %s", i, w[i].failures, w[i].msg);
    }
    struct hub_device_list *list = NULL;
    assert_int_equal(hub_registry_device_list1(fx->reg, NULL, &list, NULL), 0);
    assert_int_equal(list->count, THREADS * PER_THREAD);
    hub_device_list_free(list);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_device_id_syntax_table),
        cmocka_unit_test(test_ca_name_syntax_table),
        cmocka_unit_test_setup_teardown(test_create_fills_hub_fields, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_sas_keys_generated_when_empty, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_sas_key_validation_table, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_self_signed_thumbprints, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_update_changes_etag_every_time_and_refuses_stale,
                                        fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_update_with_empty_keys_keeps_sas_keys, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_conn_state_and_activity, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_auth_lookup, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_list_limits, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_registry_use, fx_setup, fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
