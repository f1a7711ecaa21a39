/*
 * device: the directory of live connections and sessions. Handles are plain
 * refcounted structs, so the test checks that every reference the directory
 * takes is given back, including under concurrent register/replace/
 * unregister from several threads.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "device/device_int.h"

struct handle {
    _Atomic int refs;
};

static void h_ref(void *h)
{
    atomic_fetch_add(&((struct handle *)h)->refs, 1);
}

static void h_unref(void *h)
{
    int before = atomic_fetch_sub(&((struct handle *)h)->refs, 1);
    assert_true(before > 0);
}

static const struct hub_device_dir_ops ops = {.ref = h_ref, .unref = h_unref};

static void test_sessions_and_replace(void **state)
{
    (void)state;
    struct hub_device_dir *dir = NULL;
    assert_int_equal(hub_device__dir_new(&ops, &dir, NULL), 0);
    struct handle a = {0}, b = {0}, c = {0}, d = {0};
    void *old = (void *)1;
    bool sp = true, c2d = true;

    /* First connection, clean_session=0: no session yet. */
    assert_int_equal(hub_device__dir_register(dir, "d1", &a, false, &old, &sp, &c2d, NULL), 0);
    assert_null(old);
    assert_false(sp);
    assert_false(c2d);
    assert_int_equal(atomic_load(&a.refs), 1);
    hub_device__dir_c2d_set(dir, "d1", true);

    /* Second connection for d1 replaces the first; the session resumes. */
    assert_int_equal(hub_device__dir_register(dir, "d1", &b, false, &old, &sp, &c2d, NULL), 0);
    assert_ptr_equal(old, &a);
    assert_true(sp);
    assert_true(c2d);
    h_unref(old); /* the caller's after a replace */
    assert_int_equal(atomic_load(&a.refs), 0);
    /* The replaced one leaving must not unregister its successor. */
    assert_int_equal(hub_device__dir_unregister(dir, "d1", &a), 0);
    void *got = hub_device__dir_get1(dir, "d1");
    assert_ptr_equal(got, &b);
    h_unref(got);
    assert_int_equal(hub_device__dir_live_count(dir), 1);

    /* It leaves: the clean_session=0 session stays, with its subscription. */
    assert_int_equal(hub_device__dir_unregister(dir, "d1", &b), 1);
    assert_int_equal(atomic_load(&b.refs), 0);
    assert_null(hub_device__dir_get1(dir, "d1"));
    assert_int_equal(hub_device__dir_live_count(dir), 0);
    assert_int_equal(hub_device__dir_entry_count(dir), 1);
    assert_int_equal(hub_device__dir_register(dir, "d1", &c, false, &old, &sp, &c2d, NULL), 0);
    assert_null(old);
    assert_true(sp);
    assert_true(c2d);
    assert_int_equal(hub_device__dir_unregister(dir, "d1", &c), 1);

    /* clean_session=1 discards it and leaves nothing behind. */
    assert_int_equal(hub_device__dir_register(dir, "d1", &d, true, &old, &sp, &c2d, NULL), 0);
    assert_false(sp);
    assert_false(c2d);
    assert_int_equal(hub_device__dir_unregister(dir, "d1", &d), 1);
    assert_int_equal(hub_device__dir_entry_count(dir), 0);

    /* Freeing with a live handle gives its reference back. */
    assert_int_equal(hub_device__dir_register(dir, "d2", &a, true, &old, &sp, &c2d, NULL), 0);
    assert_int_equal(atomic_load(&a.refs), 1);
    hub_device__dir_free(dir);
    assert_int_equal(atomic_load(&a.refs), 0);
}

/* Enough ids to make the table grow past its first size. */
static void test_many_ids(void **state)
{
    (void)state;
    struct hub_device_dir *dir = NULL;
    assert_int_equal(hub_device__dir_new(&ops, &dir, NULL), 0);
    enum { N = 2000 };
    static struct handle hs[N];
    char id[32];
    for (int i = 0; i < N; i++) {
        void *old;
        bool sp, c2d;
        snprintf(id, sizeof(id), "dev-%d", i);
        assert_int_equal(hub_device__dir_register(dir, id, &hs[i], i % 2, &old, &sp, &c2d, NULL),
                         0);
        assert_null(old);
    }
    assert_int_equal(hub_device__dir_live_count(dir), N);
    for (int i = 0; i < N; i++) {
        snprintf(id, sizeof(id), "dev-%d", i);
        void *got = hub_device__dir_get1(dir, id);
        assert_ptr_equal(got, &hs[i]);
        h_unref(got);
        assert_int_equal(hub_device__dir_unregister(dir, id, &hs[i]), 1);
    }
    assert_int_equal(hub_device__dir_live_count(dir), 0);
    assert_int_equal(hub_device__dir_entry_count(dir), N / 2); /* the clean_session=0 ones */
    hub_device__dir_free(dir);
    for (int i = 0; i < N; i++)
        assert_int_equal(atomic_load(&hs[i].refs), 0);
}

enum { THREADS = 8, ROUNDS = 2000, IDS = 3 };

struct worker {
    struct hub_device_dir *dir;
    struct handle h[ROUNDS];
    _Atomic int *kicked;
};

static void *run(void *arg)
{
    struct worker *w = arg;
    char id[16];
    for (int i = 0; i < ROUNDS; i++) {
        snprintf(id, sizeof(id), "d%d", i % IDS);
        void *old = NULL;
        bool sp, c2d;
        atomic_fetch_add(&w->h[i].refs, 1); /* "the server list" */
        if (hub_device__dir_register(w->dir, id, &w->h[i], i % 2, &old, &sp, &c2d, NULL) != 0)
            abort();
        if (old != NULL) { /* kick: its close would unregister (a no-op), then drop ours */
            atomic_fetch_add(w->kicked, 1);
            hub_device__dir_unregister(w->dir, id, old);
            h_unref(old);
        }
        void *got = hub_device__dir_get1(w->dir, id);
        if (got != NULL)
            h_unref(got);
        if (i % 3 == 0) /* some leave on their own */
            hub_device__dir_unregister(w->dir, id, &w->h[i]);
    }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    struct hub_device_dir *dir = NULL;
    assert_int_equal(hub_device__dir_new(&ops, &dir, NULL), 0);
    static struct worker ws[THREADS];
    _Atomic int kicked = 0;
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++) {
        memset(&ws[i], 0, sizeof(ws[i]));
        ws[i].dir = dir;
        ws[i].kicked = &kicked;
        assert_int_equal(pthread_create(&t[i], NULL, run, &ws[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    assert_true(atomic_load(&kicked) > 0);
    assert_true(hub_device__dir_live_count(dir) <= IDS);
    /* Whatever is still live: the directory holds exactly one extra ref each. */
    size_t extra = 0;
    for (int i = 0; i < THREADS; i++)
        for (int r = 0; r < ROUNDS; r++) {
            int refs = atomic_load(&ws[i].h[r].refs);
            assert_true(refs == 1 || refs == 2);
            extra += (size_t)(refs - 1);
        }
    assert_int_equal(extra, hub_device__dir_live_count(dir));
    hub_device__dir_free(dir);
    for (int i = 0; i < THREADS; i++)
        for (int r = 0; r < ROUNDS; r++)
            assert_int_equal(atomic_load(&ws[i].h[r].refs), 1);
}

/* A deleted device's session goes (issue: sessions outliving their device):
 * at once when nothing is live, else with the live connection's unregister;
 * either way the next registration of the id starts clean. */
static void test_session_drop(void **state)
{
    (void)state;
    struct hub_device_dir *dir = NULL;
    assert_int_equal(hub_device__dir_new(&ops, &dir, NULL), 0);
    struct handle a = {0}, b = {0}, c = {0};
    void *old = NULL;
    bool sp = false, c2d = false;

    /* A kept session with no live connection: dropped at once. */
    assert_int_equal(hub_device__dir_register(dir, "gone", &a, false, &old, &sp, &c2d, NULL), 0);
    hub_device__dir_subs_set(dir, "gone", HUB_DEVICE_SUB_C2D | HUB_DEVICE_SUB_METHODS, true);
    hub_device__dir_desired_seen_set(dir, "gone", 7);
    assert_int_equal(hub_device__dir_unregister(dir, "gone", &a), 1);
    assert_int_equal(hub_device__dir_entry_count(dir), 1); /* the session stays */
    hub_device__dir_session_drop(dir, "gone");
    assert_int_equal(hub_device__dir_entry_count(dir), 0);
    assert_int_equal(hub_device__dir_desired_seen(dir, "gone"), -1);
    assert_int_equal(atomic_load(&a.refs), 0);

    /* Live with a kept session: the subscriptions go now (nothing is routed
     * to the connection being kicked), the entry with its unregister. */
    assert_int_equal(hub_device__dir_register(dir, "gone", &b, false, &old, &sp, &c2d, NULL), 0);
    assert_false(sp);
    hub_device__dir_subs_set(dir, "gone", HUB_DEVICE_SUB_C2D | HUB_DEVICE_SUB_METHODS, true);
    hub_device__dir_desired_seen_set(dir, "gone", 7);
    hub_device__dir_session_drop(dir, "gone");
    assert_int_equal(hub_device__dir_entry_count(dir), 1);
    assert_int_equal(hub_device__dir_subs(dir, "gone"), 0);
    assert_null(hub_device__dir_get1_subscribed(dir, "gone", HUB_DEVICE_SUB_METHODS));
    assert_int_equal(hub_device__dir_desired_seen(dir, "gone"), -1);
    assert_int_equal(hub_device__dir_unregister(dir, "gone", &b), 1);
    assert_int_equal(hub_device__dir_entry_count(dir), 0);
    assert_int_equal(atomic_load(&b.refs), 0);

    /* Same id again: a new session. */
    assert_int_equal(hub_device__dir_register(dir, "gone", &c, false, &old, &sp, &c2d, NULL), 0);
    assert_false(sp);
    assert_false(c2d);
    /* Dropping an id the directory never saw is harmless. */
    hub_device__dir_session_drop(dir, "never");
    assert_int_equal(hub_device__dir_entry_count(dir), 1);
    hub_device__dir_free(dir);
    assert_int_equal(atomic_load(&c.refs), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sessions_and_replace),
        cmocka_unit_test(test_many_ids),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_session_drop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
