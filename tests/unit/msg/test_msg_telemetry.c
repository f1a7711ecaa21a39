/*
 * msg telemetry log: group commit across threads (every on_durable exactly
 * once, seqs unique and increasing in commit order, far fewer transactions
 * than messages), an injected commit failure reported for the whole batch
 * and nothing of it readable, back-pressure, refusal while closing, close
 * flushing, durability across reopen, commit watchers, retention.
 *
 * Several tests hold the committer still with a "gate": the first message's
 * on_durable blocks until the test opens it, so everything appended
 * meanwhile is queued, and the next transaction holds exactly that.
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
#include <time.h>
#include <unistd.h>

#include "common/err.h"
#include "msg/msg.h"
#include "store/store.h"

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

static int fx_setup(void **state)
{
    struct fx *fx = calloc(1, sizeof(*fx));
    assert_non_null(fx);
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/hubd-test-msg-XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    snprintf(fx->path, sizeof(fx->path), "%s/hub.db", fx->dir);
    struct hub_err err = {0};
    ok(hub_store_sqlite_open(fx->path, NULL, &fx->store, &err), &err, "open");
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

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- acknowledgement slots -------------------------------------------------- */

/* One per message: what on_durable said, and how often. */
struct slot {
    int calls;
    int status;
    int64_t seq;
};

/* Callback order across the whole run (the committer is one thread, but the
 * mutex makes the record safe to read from the test thread). */
struct order {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int64_t *seqs;
    size_t count, cap;
    size_t calls; /* every callback, failed ones too */
};

static struct order g_order;

static void order_init(size_t cap)
{
    pthread_mutex_init(&g_order.mu, NULL);
    pthread_cond_init(&g_order.cv, NULL);
    g_order.seqs = calloc(cap, sizeof(int64_t));
    assert_non_null(g_order.seqs);
    g_order.count = 0;
    g_order.calls = 0;
    g_order.cap = cap;
}

static void order_fini(void)
{
    free(g_order.seqs);
    pthread_cond_destroy(&g_order.cv);
    pthread_mutex_destroy(&g_order.mu);
}

static void on_durable(void *arg, int status, int64_t seq)
{
    struct slot *s = arg;
    pthread_mutex_lock(&g_order.mu);
    s->calls++;
    s->status = status;
    s->seq = seq;
    if (status == 0 && g_order.count < g_order.cap)
        g_order.seqs[g_order.count++] = seq;
    g_order.calls++;
    pthread_cond_broadcast(&g_order.cv);
    pthread_mutex_unlock(&g_order.mu);
}

static void wait_calls(size_t n)
{
    pthread_mutex_lock(&g_order.mu);
    while (g_order.calls < n)
        pthread_cond_wait(&g_order.cv, &g_order.mu);
    pthread_mutex_unlock(&g_order.mu);
}

/* The gate: its on_durable blocks the committer until gate_open(). */
struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool entered, open;
    int status;
};

static void gate_init(struct gate *g)
{
    memset(g, 0, sizeof(*g));
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
}

static void on_gate(void *arg, int status, int64_t seq)
{
    (void)seq;
    struct gate *g = arg;
    pthread_mutex_lock(&g->mu);
    g->entered = true;
    g->status = status;
    pthread_cond_broadcast(&g->cv);
    while (!g->open)
        pthread_cond_wait(&g->cv, &g->mu);
    pthread_mutex_unlock(&g->mu);
}

static void gate_wait_entered(struct gate *g)
{
    pthread_mutex_lock(&g->mu);
    while (!g->entered)
        pthread_cond_wait(&g->cv, &g->mu);
    pthread_mutex_unlock(&g->mu);
}

static void gate_open(struct gate *g)
{
    pthread_mutex_lock(&g->mu);
    g->open = true;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

static void gate_fini(struct gate *g)
{
    pthread_cond_destroy(&g->cv);
    pthread_mutex_destroy(&g->mu);
}

static struct hub_telemetry_msg make_msg(const char *dev, const char *body, int64_t enqueued_ms)
{
    struct hub_telemetry_msg m;
    memset(&m, 0, sizeof(m));
    snprintf(m.device_id, sizeof(m.device_id), "%s", dev);
    m.body = (const unsigned char *)body;
    m.body_len = strlen(body);
    m.enqueued_ms = enqueued_ms;
    return m;
}

/* Waits until every accepted message's callbacks have returned and the
 * committer has released their accounting; returns the stats then. */
static struct hub_msg_telemetry_stats wait_drained(struct hub_msg_telemetry_log *log)
{
    struct hub_msg_telemetry_stats st;
    hub_msg_telemetry_stats_get(log, &st);
    for (int i = 0; i < 10000 && st.queued > 0; i++) {
        sleep_ms(1);
        hub_msg_telemetry_stats_get(log, &st);
    }
    assert_int_equal(st.queued, 0);
    assert_int_equal(st.queued_bytes, 0);
    return st;
}

/* Appends the gate message and waits until the committer is held in it. */
static void hold_committer(struct hub_msg_telemetry_log *log, struct gate *g)
{
    struct hub_err err = {0};
    struct hub_telemetry_msg m = make_msg("gate", "g", 0);
    ok(hub_msg_telemetry_append(log, &m, on_gate, g, &err), &err, "append gate");
    gate_wait_entered(g);
}

/* ---- group commit across threads -------------------------------------------- */

#define THREADS    8
#define PER_THREAD 400

struct appender {
    struct hub_msg_telemetry_log *log;
    int index;
    struct slot slots[PER_THREAD];
    int failures;
    char msg[HUB_ERR_MSG_MAX];
};

static void *appender_main(void *p)
{
    struct appender *a = p;
    char dev[32], body[64];
    snprintf(dev, sizeof(dev), "dev-%d", a->index);
    for (int i = 0; i < PER_THREAD; i++) {
        snprintf(body, sizeof(body), "t%d-m%d", a->index, i);
        struct hub_app_prop prop = {"i", body};
        struct hub_telemetry_msg m = make_msg(dev, body, 0);
        m.app = &prop;
        m.app_count = 1;
        struct hub_err err = {0};
        /* Back-pressure is allowed to refuse; the caller retries later. */
        int rc;
        while ((rc = hub_msg_telemetry_append(a->log, &m, on_durable, &a->slots[i], &err)) ==
               HUB_E_BUSY)
            sleep_ms(1);
        if (rc != 0) {
            a->failures++;
            snprintf(a->msg, sizeof(a->msg), "%s", err.msg);
        }
    }
    return NULL;
}

static void run_appenders(struct hub_msg_telemetry_log *log, struct appender *a)
{
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++) {
        a[i].log = log;
        a[i].index = i;
        assert_int_equal(pthread_create(&th[i], NULL, appender_main, &a[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        if (a[i].failures != 0)
            fail_msg("thread %d: %d failures, last: %s", i, a[i].failures, a[i].msg);
    }
}

/* Every slot called once with success; per thread, seqs increase in append
 * order (the queue is FIFO); globally, callbacks come in seq order. */
static void check_acks(struct appender *a)
{
    for (int t = 0; t < THREADS; t++) {
        int64_t prev = 0;
        for (int i = 0; i < PER_THREAD; i++) {
            struct slot *s = &a[t].slots[i];
            if (s->calls != 1 || s->status != 0)
                fail_msg("thread %d msg %d: %d calls, status %s", t, i, s->calls,
                         hub_err_name(s->status));
            assert_true(s->seq > prev);
            prev = s->seq;
        }
    }
    assert_int_equal(g_order.count, THREADS * PER_THREAD);
    for (size_t i = 1; i < g_order.count; i++)
        if (g_order.seqs[i] <= g_order.seqs[i - 1])
            fail_msg("callback %zu: seq %lld after %lld", i, (long long)g_order.seqs[i],
                     (long long)g_order.seqs[i - 1]);
}

static struct appender *appenders_new(void)
{
    struct appender *a = calloc(THREADS, sizeof(*a));
    assert_non_null(a);
    return a;
}

/* Free running: no gate. Commits must still be grouped, and everything
 * acknowledged is readable after a reopen. */
static void test_group_commit_many_threads(void **state)
{
    struct fx *fx = *state;
    struct hub_err err = {0};
    order_init(THREADS * PER_THREAD);
    struct hub_msg_telemetry_log *log = NULL;
    ok(hub_msg_telemetry_log_open(fx->store, NULL, &log, &err), &err, "log open");
    struct appender *a = appenders_new();
    run_appenders(log, a);
    struct hub_msg_telemetry_stats st = wait_drained(log);
    hub_msg_telemetry_log_close(log);
    check_acks(a);
    print_message("%d messages in %llu transactions (largest %llu)\n", THREADS * PER_THREAD,
                  (unsigned long long)st.commits, (unsigned long long)st.largest_batch);
    assert_int_equal(st.committed, THREADS * PER_THREAD);
    /* Appends outpace fsyncs, so batches form without any delay: far fewer
     * transactions than messages (the held-committer test pins the exact count). */
    assert_true(st.commits * 4 <= THREADS * PER_THREAD);

    /* Reopen the store: every acknowledged message is there, byte for byte. */
    hub_store_close(fx->store);
    ok(hub_store_sqlite_open(fx->path, NULL, &fx->store, &err), &err, "reopen");
    struct hub_telemetry_msg_list *list = NULL;
    ok(hub_store_telemetry_read1(fx->store, 0, 10000, NULL, &list, &err), &err, "read");
    assert_int_equal(list->count, THREADS * PER_THREAD);
    for (int t = 0; t < THREADS; t++) {
        for (int i = 0; i < PER_THREAD; i++) {
            int64_t seq = a[t].slots[i].seq;
            const struct hub_telemetry_msg *m = &list->items[seq - list->items[0].seq];
            assert_int_equal(m->seq, seq);
            char body[64], dev[32];
            snprintf(body, sizeof(body), "t%d-m%d", t, i);
            snprintf(dev, sizeof(dev), "dev-%d", t);
            assert_string_equal(m->device_id, dev);
            assert_int_equal(m->body_len, strlen(body));
            assert_memory_equal(m->body, body, m->body_len);
            assert_string_equal(m->app[0].value, body);
            assert_true(m->enqueued_ms > 0);
        }
    }
    hub_telemetry_msg_list_free(list);
    free(a);
    order_fini();
}

/* Held committer: all N*M messages queue up, then commit in max_batch-sized
 * transactions: the transaction count is deterministic and tiny. */
static void test_group_commit_transactions_are_few(void **state)
{
    struct fx *fx = *state;
    struct hub_err err = {0};
    order_init(THREADS * PER_THREAD);
    struct hub_msg_telemetry_opts opts = {.max_batch = 1000};
    struct hub_msg_telemetry_log *log = NULL;
    ok(hub_msg_telemetry_log_open(fx->store, &opts, &log, &err), &err, "log open");
    struct gate g;
    gate_init(&g);
    hold_committer(log, &g);
    struct appender *a = appenders_new();
    run_appenders(log, a);
    struct hub_msg_telemetry_stats st;
    hub_msg_telemetry_stats_get(log, &st);
    assert_int_equal(st.queued, THREADS * PER_THREAD + 1); /* the gate is still in flight */
    assert_int_equal(st.commits, 1);
    gate_open(&g);
    st = wait_drained(log);
    hub_msg_telemetry_log_close(log);
    check_acks(a);
    /* The gate's own transaction, then ceil(3200 / 1000) = 4. */
    assert_int_equal(st.committed, THREADS * PER_THREAD + 1);
    assert_int_equal(st.commits, 1 + (THREADS * PER_THREAD + 999) / 1000);
    assert_int_equal(st.largest_batch, 1000);
    free(a);
    gate_fini(&g);
    order_fini();
}

static void test_injected_failure_fails_whole_batch(void **state)
{
    struct fx *fx = *state;
    struct hub_err err = {0};
    order_init(64);
    struct hub_msg_telemetry_log *log = NULL;
    ok(hub_msg_telemetry_log_open(fx->store, NULL, &log, &err), &err, "log open");
    struct gate g;
    gate_init(&g);
    hold_committer(log, &g);
    assert_int_equal(g.status, 0);
    hub_store_sqlite_fail_commits(fx->store, 1);
    struct slot s[5];
    memset(s, 0, sizeof(s));
    for (int i = 0; i < 5; i++) {
        struct hub_telemetry_msg m = make_msg("d", "doomed", 0);
        ok(hub_msg_telemetry_append(log, &m, on_durable, &s[i], &err), &err, "append");
    }
    gate_open(&g);
    wait_calls(5);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(s[i].calls, 1);
        assert_int_equal(s[i].status, HUB_E_IO); /* no PUBACK for any of them */
        assert_int_equal(s[i].seq, 0);
    }
    struct hub_telemetry_msg_list *list = NULL;
    ok(hub_msg_telemetry_read1(log, 0, 100, "d", &list, &err), &err, "read");
    assert_int_equal(list->count, 0);
    hub_telemetry_msg_list_free(list);
    int64_t last_before = hub_msg_telemetry_last_seq(log);

    /* The fault is spent: the log carries on. */
    struct slot after = {0};
    struct hub_telemetry_msg m = make_msg("d", "fine", 0);
    ok(hub_msg_telemetry_append(log, &m, on_durable, &after, &err), &err, "append");
    wait_calls(6);
    assert_int_equal(after.status, 0);
    assert_true(after.seq > last_before);
    assert_int_equal(hub_msg_telemetry_last_seq(log), after.seq);
    struct hub_msg_telemetry_stats st;
    hub_msg_telemetry_stats_get(log, &st);
    assert_int_equal(st.failed, 5);
    assert_int_equal(st.failed_commits, 1);
    assert_int_equal(st.committed, 2); /* gate + "fine" */
    hub_msg_telemetry_log_close(log);
    ok(hub_store_telemetry_read1(fx->store, 0, 100, "d", &list, &err), &err, "read");
    assert_int_equal(list->count, 1);
    assert_memory_equal(list->items[0].body, "fine", 4);
    hub_telemetry_msg_list_free(list);
    gate_fini(&g);
    order_fini();
}

static void test_back_pressure_and_bounds(void **state)
{
    struct fx *fx = *state;
    struct hub_err err = {0};
    order_init(16);
    struct hub_msg_telemetry_opts opts = {.max_queued = 3};
    struct hub_msg_telemetry_log *log = NULL;
    ok(hub_msg_telemetry_log_open(fx->store, &opts, &log, &err), &err, "log open");
    struct gate g;
    gate_init(&g);
    hold_committer(log, &g); /* counts as 1 until its callback returns */
    struct slot s[3];
    memset(s, 0, sizeof(s));
    struct hub_telemetry_msg m = make_msg("d", "x", 0);
    ok(hub_msg_telemetry_append(log, &m, on_durable, &s[0], &err), &err, "append 1");
    ok(hub_msg_telemetry_append(log, &m, on_durable, &s[1], &err), &err, "append 2");
    assert_int_equal(hub_msg_telemetry_append(log, &m, on_durable, &s[2], &err), HUB_E_BUSY);

    /* Refused synchronously, callback never called: bounds of the record. */
    unsigned char *big = calloc(1, HUB_TELEMETRY_BODY_MAX + 1);
    assert_non_null(big);
    struct hub_telemetry_msg huge = make_msg("d", "", 0);
    huge.body = big;
    huge.body_len = HUB_TELEMETRY_BODY_MAX + 1;
    assert_int_equal(hub_msg_telemetry_append(log, &huge, on_durable, &s[2], &err),
                     HUB_E_TOO_LARGE);
    free(big);
    struct hub_telemetry_msg anon = make_msg("", "x", 0);
    assert_int_equal(hub_msg_telemetry_append(log, &anon, on_durable, &s[2], &err),
                     HUB_E_INVALID_ARG);

    struct hub_msg_telemetry_stats st;
    hub_msg_telemetry_stats_get(log, &st);
    assert_int_equal(st.refused_busy, 1);
    assert_int_equal(st.queued, 3);
    assert_true(st.queued_bytes > 0);
    gate_open(&g);
    hub_msg_telemetry_log_close(log);
    assert_int_equal(s[0].calls, 1);
    assert_int_equal(s[1].calls, 1);
    assert_int_equal(s[2].calls, 0);
    assert_int_equal(s[0].status, 0);
    assert_true(s[1].seq == s[0].seq + 1);
    gate_fini(&g);
    order_fini();
}

/* A byte bound: an empty queue takes any message, a full one refuses. */
static void test_back_pressure_bytes(void **state)
{
    struct fx *fx = *state;
    struct hub_err err = {0};
    order_init(16);
    struct hub_msg_telemetry_opts opts = {.max_queued_bytes = 100 * 1024};
    struct hub_msg_telemetry_log *log = NULL;
    ok(hub_msg_telemetry_log_open(fx->store, &opts, &log, &err), &err, "log open");
    struct gate g;
    gate_init(&g);
    hold_committer(log, &g);
    unsigned char *body = calloc(1, 60 * 1024);
    assert_non_null(body);
    struct hub_telemetry_msg m = make_msg("d", "", 0);
    m.body = body;
    m.body_len = 60 * 1024;
    struct slot s[2];
    memset(s, 0, sizeof(s));
    ok(hub_msg_telemetry_append(log, &m, on_durable, &s[0], &err), &err, "first 60 KiB");
    assert_int_equal(hub_msg_telemetry_append(log, &m, on_durable, &s[1], &err), HUB_E_BUSY);
    gate_open(&g);
    wait_calls(1);
    /* Once acknowledged (and its callbacks have returned), the memory is
     * released and the next one fits. */
    wait_drained(log);
    ok(hub_msg_telemetry_append(log, &m, on_durable, &s[1], &err), &err, "second 60 KiB");
    hub_msg_telemetry_log_close(log);
    assert_int_equal(s[0].calls + s[1].calls, 2);
    free(body);
    gate_fini(&g);
    order_fini();
}

struct closer {
    struct hub_msg_telemetry_log *log;
};

static void *closer_main(void *p)
{
    struct closer *c = p;
    hub_msg_telemetry_log_close(c->log);
    return NULL;
}

/* close refuses new appends at once, and still commits what it accepted. */
static void test_close_refuses_new_and_flushes_accepted(void **state)
{
    struct fx *fx = *state;
    struct hub_err err = {0};
    order_init(64);
    struct hub_msg_telemetry_log *log = NULL;
    ok(hub_msg_telemetry_log_open(fx->store, NULL, &log, &err), &err, "log open");
    struct gate g;
    gate_init(&g);
    hold_committer(log, &g);
    struct slot s[20];
    memset(s, 0, sizeof(s));
    for (int i = 0; i < 20; i++) {
        struct hub_telemetry_msg m = make_msg("d", "queued", 0);
        ok(hub_msg_telemetry_append(log, &m, on_durable, &s[i], &err), &err, "append");
    }
    struct closer c = {log};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, closer_main, &c), 0);
    /* Wait until close has started: appends are then refused. */
    struct slot refused = {0};
    int rc = 0;
    for (int tries = 0; tries < 5000; tries++) {
        struct hub_telemetry_msg m = make_msg("d", "late", 0);
        rc = hub_msg_telemetry_append(log, &m, on_durable, &refused, &err);
        if (rc == HUB_E_BUSY)
            break;
        sleep_ms(1);
    }
    assert_int_equal(rc, HUB_E_BUSY);
    assert_non_null(strstr(err.msg, "closing"));
    gate_open(&g);
    pthread_join(th, NULL);
    size_t late_ok = (size_t)refused.calls; /* appends that won the race before close */
    for (int i = 0; i < 20; i++) {
        assert_int_equal(s[i].calls, 1);
        assert_int_equal(s[i].status, 0);
    }
    struct hub_telemetry_msg_list *list = NULL;
    ok(hub_store_telemetry_read1(fx->store, 0, 1000, "d", &list, &err), &err, "read");
    assert_true(list->count >= 20);
    /* Exactly what was acknowledged: the 20, plus appends that beat close. */
    assert_int_equal(list->count, 20 + late_ok);
    assert_int_equal(g_order.count, 20 + late_ok);
    hub_telemetry_msg_list_free(list);
    gate_fini(&g);
    order_fini();
}

/* ---- watchers (long poll) ------------------------------------------------------ */

struct watcher {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int calls;
    int64_t last;
};

static void on_commit(void *arg, int64_t last_seq)
{
    struct watcher *w = arg;
    pthread_mutex_lock(&w->mu);
    w->calls++;
    w->last = last_seq;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static void test_watch_notifies_commits(void **state)
{
    struct fx *fx = *state;
    struct hub_err err = {0};
    order_init(16);
    struct hub_msg_telemetry_log *log = NULL;
    ok(hub_msg_telemetry_log_open(fx->store, NULL, &log, &err), &err, "log open");
    assert_int_equal(hub_msg_telemetry_last_seq(log), 0);
    struct watcher w = {.calls = 0};
    pthread_mutex_init(&w.mu, NULL);
    pthread_cond_init(&w.cv, NULL);
    struct hub_msg_telemetry_watch *h = NULL;
    ok(hub_msg_telemetry_watch(log, on_commit, &w, &h, &err), &err, "watch");

    struct slot s = {0};
    struct hub_telemetry_msg m = make_msg("d", "poll me", 0);
    ok(hub_msg_telemetry_append(log, &m, on_durable, &s, &err), &err, "append");
    pthread_mutex_lock(&w.mu);
    while (w.calls == 0)
        pthread_cond_wait(&w.cv, &w.mu);
    int64_t seen = w.last;
    pthread_mutex_unlock(&w.mu);
    assert_int_equal(seen, s.seq); /* on_durable ran before the watcher */
    assert_int_equal(hub_msg_telemetry_last_seq(log), seen);
    /* A long-poll reader woken by the watcher finds the message. */
    struct hub_telemetry_msg_list *list = NULL;
    ok(hub_msg_telemetry_read1(log, seen, 10, NULL, &list, &err), &err, "read");
    assert_int_equal(list->count, 1);
    hub_telemetry_msg_list_free(list);

    hub_msg_telemetry_unwatch(log, h);
    ok(hub_msg_telemetry_append(log, &m, on_durable, &s, &err), &err, "append after unwatch");
    hub_msg_telemetry_log_close(log);
    assert_int_equal(w.calls, 1);
    pthread_cond_destroy(&w.cv);
    pthread_mutex_destroy(&w.mu);
    order_fini();

    /* A reopened log resumes from the stored position. */
    ok(hub_msg_telemetry_log_open(fx->store, NULL, &log, &err), &err, "log reopen");
    assert_int_equal(hub_msg_telemetry_last_seq(log), s.seq);
    hub_msg_telemetry_log_close(log);
}

/* ---- retention ------------------------------------------------------------------ */

struct clock {
    pthread_mutex_t mu;
    int64_t now;
};

static int64_t clock_now(void *ctx)
{
    struct clock *c = ctx;
    pthread_mutex_lock(&c->mu);
    int64_t v = c->now;
    pthread_mutex_unlock(&c->mu);
    return v;
}

static void test_retention(void **state)
{
    struct fx *fx = *state;
    struct hub_err err = {0};
    order_init(16);
    const int64_t day_ms = 86400 * 1000LL;
    struct clock clk = {.now = 1700000000000LL};
    pthread_mutex_init(&clk.mu, NULL);
    struct hub_msg_telemetry_opts opts = {
        .prune_interval_ms = -1, .now_ms = clock_now, .now_ctx = &clk};
    struct hub_msg_telemetry_log *log = NULL;
    ok(hub_msg_telemetry_log_open(fx->store, &opts, &log, &err), &err, "log open");
    struct slot s[4];
    memset(s, 0, sizeof(s));
    int64_t at[4] = {clk.now - day_ms - 1, clk.now - day_ms, clk.now - 1000, 0 /* now */};
    for (int i = 0; i < 4; i++) {
        struct hub_telemetry_msg m = make_msg("d", "r", at[i]);
        ok(hub_msg_telemetry_append(log, &m, on_durable, &s[i], &err), &err, "append");
    }
    wait_calls(4);
    size_t n = 0;
    ok(hub_msg_telemetry_prune(log, &n, &err), &err, "prune");
    assert_int_equal(n, 1); /* only the one older than a day (default retention) */
    struct hub_telemetry_msg_list *list = NULL;
    ok(hub_msg_telemetry_read1(log, 0, 10, NULL, &list, &err), &err, "read");
    assert_int_equal(list->count, 3);
    assert_int_equal(list->items[0].seq, s[1].seq);
    assert_int_equal(list->items[2].enqueued_ms, clk.now); /* "now" from the injected clock */
    hub_telemetry_msg_list_free(list);
    hub_msg_telemetry_log_close(log);

    /* The committer prunes by itself every prune_interval_ms. */
    pthread_mutex_lock(&clk.mu);
    clk.now += day_ms;
    pthread_mutex_unlock(&clk.mu);
    opts.prune_interval_ms = 10;
    opts.retention_s = 3600;
    ok(hub_msg_telemetry_log_open(fx->store, &opts, &log, &err), &err, "log open");
    struct hub_msg_telemetry_stats st = {0};
    for (int i = 0; i < 5000 && st.pruned < 3; i++) {
        sleep_ms(1);
        hub_msg_telemetry_stats_get(log, &st);
    }
    assert_int_equal(st.pruned, 3);
    hub_msg_telemetry_log_close(log);
    ok(hub_store_telemetry_read1(fx->store, 0, 10, NULL, &list, &err), &err, "read");
    assert_int_equal(list->count, 0);
    hub_telemetry_msg_list_free(list);
    pthread_mutex_destroy(&clk.mu);
    order_fini();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_group_commit_many_threads, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_group_commit_transactions_are_few, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_injected_failure_fails_whole_batch, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_back_pressure_and_bounds, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_back_pressure_bytes, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_close_refuses_new_and_flushes_accepted, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_watch_notifies_commits, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_retention, fx_setup, fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
