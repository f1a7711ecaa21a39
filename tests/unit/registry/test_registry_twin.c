/*
 * registry, device twins: lazy creation with a stable etag, service PATCH
 * and PUT with If-Match, reported patches from the device, the observer's
 * TWIN_DESIRED_CHANGED, the desired version and missed-changes getters, the
 * cascade on device delete, refusals passed through from the twin layer,
 * and concurrent reported and desired writers losing nothing. Runs against a
 * real SQLite store in a mkdtemp directory with an injected clock.
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

#include "registry/registry.h"

struct fx {
    char dir[64];
    char path[128];
    struct hub_store *store;
    struct hub_registry *reg;
    _Atomic int64_t now;
    pthread_mutex_t mu;
    int desired_events;
    char last_id[HUB_DEVICE_ID_SIZE];
};

static int64_t fx_now(void *ctx)
{
    return ((struct fx *)ctx)->now;
}

static void on_change(void *ctx, enum hub_registry_change what, const char *id)
{
    struct fx *fx = ctx;
    if (what != HUB_REGISTRY_TWIN_DESIRED_CHANGED)
        return;
    pthread_mutex_lock(&fx->mu);
    fx->desired_events++;
    snprintf(fx->last_id, sizeof(fx->last_id), "%s", id);
    pthread_mutex_unlock(&fx->mu);
}

static void ok(int rc, const struct hub_err *err, const char *what)
{
    if (rc != 0)
        fail_msg("%s: %s (%s)", what, hub_err_name(rc), err->msg);
}

static void add_device(struct fx *fx, const char *id)
{
    struct hub_device d;
    memset(&d, 0, sizeof(d));
    snprintf(d.id, sizeof(d.id), "%s", id);
    d.auth_type = HUB_AUTH_CERT_AUTHORITY;
    struct hub_err err = {0};
    ok(hub_registry_device_create(fx->reg, &d, NULL, &err), &err, "create device");
}

static int fx_setup(void **state)
{
    struct fx *fx = calloc(1, sizeof(*fx));
    assert_non_null(fx);
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/hubd-test-regtwin-XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    snprintf(fx->path, sizeof(fx->path), "%s/hub.db", fx->dir);
    fx->now = 1750000000;
    pthread_mutex_init(&fx->mu, NULL);
    struct hub_err err = {0};
    ok(hub_store_sqlite_open(fx->path, NULL, &fx->store, &err), &err, "open");
    struct hub_registry_opts opts = {.now = fx_now, .now_ctx = fx};
    ok(hub_registry_new(fx->store, &opts, &fx->reg, &err), &err, "registry");
    hub_registry_observer_set(fx->reg, on_change, fx);
    add_device(fx, "d1");
    *state = fx;
    return 0;
}

static int fx_teardown(void **state)
{
    struct fx *fx = *state;
    hub_registry_observer_set(fx->reg, NULL, NULL);
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
    pthread_mutex_destroy(&fx->mu);
    free(fx);
    return 0;
}

static struct hub_twin *get(struct fx *fx, const char *id)
{
    struct hub_twin *t = NULL;
    struct hub_err err = {0};
    ok(hub_registry_twin_get1(fx->reg, id, &t, NULL, &err), &err, "twin get");
    return t;
}

static int patch(struct fx *fx, const char *id, const char *body, const char *if_match,
                 struct hub_err *err)
{
    return hub_registry_twin_patch(fx->reg, id, body, strlen(body), if_match, NULL, NULL, err);
}

static int reported(struct fx *fx, const char *id, const char *body, int64_t *v,
                    struct hub_err *err)
{
    return hub_registry_twin_reported_patch(fx->reg, id, body, strlen(body), v, err);
}

static void test_get_lazy_and_stable(void **state)
{
    struct fx *fx = *state;
    struct hub_err err = {0};
    struct hub_twin *t = NULL;
    assert_int_equal(hub_registry_twin_get1(fx->reg, "nobody", &t, NULL, &err), HUB_E_NOT_FOUND);
    assert_int_equal(hub_registry_twin_get1(fx->reg, "bad#id", &t, NULL, &err), HUB_E_INVALID_ARG);
    struct hub_device dev;
    ok(hub_registry_twin_get1(fx->reg, "d1", &t, &dev, &err), &err, "get");
    assert_string_equal(dev.id, "d1");
    assert_int_equal(t->version, 1);
    assert_int_equal(t->desired_version, 1);
    assert_int_equal(t->reported_version, 1);
    assert_true(strlen(t->etag) > 0);
    struct hub_twin *again = get(fx, "d1");
    assert_string_equal(again->etag, t->etag); /* stored on first access */
    json_t *j = hub_twin_service_json_new(again, &dev);
    assert_string_equal(json_string_value(json_object_get(j, "etag")), t->etag);
    assert_string_equal(json_string_value(json_object_get(j, "deviceEtag")), dev.etag);
    json_decref(j);
    hub_twin_free(again);
    hub_twin_free(t);
    int64_t dv = 0;
    ok(hub_registry_twin_desired_version(fx->reg, "d1", &dv, &err), &err, "desired version");
    assert_int_equal(dv, 1);
}

static void test_patch_if_match(void **state)
{
    struct fx *fx = *state;
    struct hub_err err = {0};
    struct hub_twin *t0 = get(fx, "d1");
    fx->now += 10;
    struct hub_twin *t1 = NULL;
    const char *body = "{\"tags\":{\"site\":\"a\"},\"properties\":{\"desired\":{\"fw\":\"1\"}}}";
    ok(hub_registry_twin_patch(fx->reg, "d1", body, strlen(body), t0->etag, &t1, NULL, &err), &err,
       "patch with etag");
    assert_string_not_equal(t1->etag, t0->etag);
    assert_int_equal(t1->version, 2);
    assert_int_equal(t1->desired_version, 2);
    assert_int_equal(fx->desired_events, 1);
    assert_string_equal(fx->last_id, "d1");
    /* The old etag is stale now: refused, nothing changes, no event. */
    assert_int_equal(patch(fx, "d1", "{\"tags\":{\"x\":1}}", t0->etag, &err), HUB_E_ETAG_MISMATCH);
    struct hub_twin *t2 = get(fx, "d1");
    assert_string_equal(t2->etag, t1->etag);
    assert_null(json_object_get(t2->tags, "x"));
    /* "*" and NULL are unconditional; tags-only changes notify no one. */
    ok(patch(fx, "d1", "{\"tags\":{\"x\":1}}", "*", &err), &err, "patch *");
    ok(patch(fx, "d1", "{\"tags\":{\"y\":1}}", NULL, &err), &err, "patch NULL");
    assert_int_equal(fx->desired_events, 1);
    struct hub_twin *t3 = get(fx, "d1");
    assert_int_equal(t3->version, 4);
    assert_int_equal(t3->desired_version, 2);
    /* Unknown device, refused bodies. */
    assert_int_equal(patch(fx, "nobody", "{}", NULL, &err), HUB_E_NOT_FOUND);
    assert_int_equal(patch(fx, "d1", "{\"tags\":{\"a.b\":1}}", NULL, &err), HUB_E_INVALID_ARG);
    assert_int_equal(patch(fx, "d1", "not json", NULL, &err), HUB_E_PARSE);
    hub_twin_free(t0);
    hub_twin_free(t1);
    hub_twin_free(t2);
    hub_twin_free(t3);
}

static void test_replace_and_reported(void **state)
{
    struct fx *fx = *state;
    struct hub_err err = {0};
    int64_t rv = 0;
    ok(reported(fx, "d1", "{\"temp\":20}", &rv, &err), &err, "reported");
    assert_int_equal(rv, 2);
    ok(reported(fx, "d1", "{\"temp\":null,\"hum\":50}", &rv, &err), &err, "reported 2");
    assert_int_equal(rv, 3);
    assert_int_equal(fx->desired_events, 0);
    ok(patch(fx, "d1", "{\"properties\":{\"desired\":{\"a\":1,\"b\":2}}}", NULL, &err), &err,
       "patch");
    const char *put = "{\"tags\":{\"t\":1},\"properties\":{\"desired\":{\"b\":3}}}";
    struct hub_twin *t = NULL;
    ok(hub_registry_twin_replace(fx->reg, "d1", put, strlen(put), "*", &t, NULL, &err), &err,
       "replace");
    assert_int_equal(fx->desired_events, 2);
    json_t *want = json_loads("{\"b\":3}", 0, NULL);
    assert_true(json_equal(t->desired, want));
    json_decref(want);
    want = json_loads("{\"hum\":50}", 0, NULL);
    assert_true(json_equal(t->reported, want)); /* PUT leaves reported alone */
    json_decref(want);
    assert_int_equal(t->reported_version, 3);
    assert_int_equal(t->desired_version, 3);
    hub_twin_free(t);

    /* Refusals: unknown device, too large, bad key; nothing stored. */
    assert_int_equal(reported(fx, "nobody", "{\"a\":1}", NULL, &err), HUB_E_NOT_FOUND);
    assert_int_equal(reported(fx, "d1", "{\"$a\":1}", NULL, &err), HUB_E_INVALID_ARG);
    size_t n = 40000;
    char *big = malloc(n + 2048); /* the last member may run past n */
    assert_non_null(big);
    strcpy(big, "{");
    size_t pos = 1;
    for (int k = 0; pos < n; k++)
        pos += (size_t)sprintf(big + pos, "%s\"k%d\":\"%0900d\"", k ? "," : "", k, 0);
    strcpy(big + pos, "}");
    assert_int_equal(reported(fx, "d1", big, NULL, &err), HUB_E_TOO_LARGE);
    assert_non_null(strstr(err.msg, "over the 32768-byte limit"));
    free(big);
    struct hub_twin *after = get(fx, "d1");
    assert_int_equal(after->reported_version, 3);
    hub_twin_free(after);
}

static void test_desired_changes(void **state)
{
    struct fx *fx = *state;
    struct hub_err err = {0};
    json_t *bodies = NULL;
    int64_t cur = 0;
    ok(hub_registry_twin_desired_changes1(fx->reg, "d1", 1, &bodies, &cur, &err), &err,
       "nothing new");
    assert_int_equal(cur, 1);
    assert_int_equal(json_array_size(bodies), 0);
    json_decref(bodies);

    ok(patch(fx, "d1", "{\"properties\":{\"desired\":{\"a\":1}}}", NULL, &err), &err, "p2");
    ok(patch(fx, "d1", "{\"properties\":{\"desired\":{\"a\":null,\"b\":2}}}", NULL, &err), &err,
       "p3");
    ok(hub_registry_twin_desired_changes1(fx->reg, "d1", 1, &bodies, &cur, &err), &err, "1..3");
    assert_int_equal(cur, 3);
    assert_int_equal(json_array_size(bodies), 2);
    char *s = json_dumps(bodies, JSON_COMPACT);
    assert_string_equal(s, "[{\"a\":1,\"$version\":2},{\"a\":null,\"b\":2,\"$version\":3}]");
    free(s);
    json_decref(bodies);

    /* Older than the log reaches: one full-state body. */
    for (int i = 0; i < HUB_STORE_TWIN_LOG_KEEP + 2; i++)
        ok(patch(fx, "d1", "{\"properties\":{\"desired\":{\"c\":1}}}", NULL, &err), &err, "px");
    ok(hub_registry_twin_desired_changes1(fx->reg, "d1", 1, &bodies, &cur, &err), &err, "gap");
    assert_int_equal(cur, 3 + HUB_STORE_TWIN_LOG_KEEP + 2);
    assert_int_equal(json_array_size(bodies), 1);
    s = json_dumps(json_array_get(bodies, 0), JSON_COMPACT);
    char want[64];
    snprintf(want, sizeof(want), "{\"b\":2,\"c\":1,\"$version\":%lld", (long long)cur);
    assert_true(strncmp(s, want, strlen(want)) == 0);
    free(s);
    json_decref(bodies);
    int64_t dv = 0;
    ok(hub_registry_twin_desired_version(fx->reg, "d1", &dv, &err), &err, "version");
    assert_int_equal(dv, cur);
    assert_int_equal(hub_registry_twin_desired_changes1(fx->reg, "nobody", 0, &bodies, NULL, &err),
                     HUB_E_NOT_FOUND);
}

static void test_device_delete_cascades(void **state)
{
    struct fx *fx = *state;
    struct hub_err err = {0};
    ok(patch(fx, "d1", "{\"tags\":{\"t\":1}}", NULL, &err), &err, "patch");
    struct hub_twin *old = get(fx, "d1");
    ok(hub_registry_device_delete(fx->reg, "d1", NULL, &err), &err, "delete");
    struct hub_twin *t = NULL;
    assert_int_equal(hub_registry_twin_get1(fx->reg, "d1", &t, NULL, &err), HUB_E_NOT_FOUND);
    int64_t dv = 0;
    assert_int_equal(hub_registry_twin_desired_version(fx->reg, "d1", &dv, &err), HUB_E_NOT_FOUND);
    add_device(fx, "d1");
    struct hub_twin *fresh = get(fx, "d1");
    assert_int_equal(fresh->version, 1);
    assert_int_equal(json_object_size(fresh->tags), 0);
    /* The old twin's etag does not match the new one. */
    assert_string_not_equal(fresh->etag, old->etag);
    assert_int_equal(patch(fx, "d1", "{\"tags\":{\"t\":2}}", old->etag, &err), HUB_E_ETAG_MISMATCH);
    hub_twin_free(old);
    hub_twin_free(fresh);
}

/* ---- concurrency ------------------------------------------------------------------ */

#define ROUNDS 40

struct writer {
    struct fx *fx;
    bool desired;
    int failures;
};

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    for (int i = 0; i < ROUNDS; i++) {
        char body[128];
        struct hub_err err = {0};
        int rc;
        if (w->desired) {
            snprintf(body, sizeof(body), "{\"properties\":{\"desired\":{\"d%d\":%d}}}", i, i);
            rc = patch(w->fx, "d1", body, NULL, &err);
        } else {
            snprintf(body, sizeof(body), "{\"r%d\":%d}", i, i);
            rc = reported(w->fx, "d1", body, NULL, &err);
        }
        if (rc != 0)
            w->failures++;
    }
    return NULL;
}

static void test_concurrent_reported_and_desired(void **state)
{
    struct fx *fx = *state;
    struct writer w[4] = {{fx, true, 0}, {fx, false, 0}, {fx, true, 0}, {fx, false, 0}};
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, writer_main, &w[i]), 0);
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    for (int i = 0; i < 4; i++)
        assert_int_equal(w[i].failures, 0);
    struct hub_twin *t = get(fx, "d1");
    /* Every write landed: versions count them all, every key is there. */
    assert_int_equal(t->desired_version, 1 + 2 * ROUNDS);
    assert_int_equal(t->reported_version, 1 + 2 * ROUNDS);
    assert_int_equal(t->version, 1 + 4 * ROUNDS);
    assert_int_equal(json_object_size(t->desired), ROUNDS);
    assert_int_equal(json_object_size(t->reported), ROUNDS);
    assert_int_equal(fx->desired_events, 2 * ROUNDS);
    hub_twin_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_get_lazy_and_stable, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_patch_if_match, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_replace_and_reported, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_desired_changes, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_device_delete_cascades, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_reported_and_desired, fx_setup,
                                        fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
