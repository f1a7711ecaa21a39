/*
 * msg C2D queues: the hub's rules on top of the store with an injected
 * clock: defaults (message id, TTL 1 h, max TTL 2 days, 50 per device, 10
 * deliveries, 1 min lock), the delivery lifecycle, lock loss, expiry by the
 * sweep (called and threaded), dead-lettering, purge, release on reconnect,
 * feedback batches, counters.
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

#define T0     1700000000000LL
#define HOUR   (3600 * 1000LL)
#define MINUTE (60 * 1000LL)

struct clock {
    pthread_mutex_t mu;
    int64_t now;
};

struct fx {
    char dir[64];
    char path[128];
    struct hub_store *store;
    struct clock clk;
    struct hub_msg_c2d *q;
};

static void ok(int rc, const struct hub_err *err, const char *what)
{
    if (rc != 0)
        fail_msg("%s: %s (%s)", what, hub_err_name(rc), err->msg);
}

static int64_t clock_now(void *ctx)
{
    struct clock *c = ctx;
    pthread_mutex_lock(&c->mu);
    int64_t v = c->now;
    pthread_mutex_unlock(&c->mu);
    return v;
}

static void advance(struct fx *fx, int64_t ms)
{
    pthread_mutex_lock(&fx->clk.mu);
    fx->clk.now += ms;
    pthread_mutex_unlock(&fx->clk.mu);
}

static void add_device(struct fx *fx, const char *id)
{
    struct hub_device d;
    memset(&d, 0, sizeof(d));
    snprintf(d.id, sizeof(d.id), "%s", id);
    snprintf(d.generation_id, sizeof(d.generation_id), "638000000000000001");
    snprintf(d.etag, sizeof(d.etag), "E1");
    d.auth_type = HUB_AUTH_CERT_AUTHORITY;
    struct hub_err err = {0};
    ok(hub_store_device_insert(fx->store, &d, &err), &err, "device insert");
}

/* sweep_interval_ms < 0: no sweeper thread unless a test asks for one. */
static void open_queue(struct fx *fx, int64_t sweep_interval_ms)
{
    struct hub_msg_c2d_opts opts = {
        .sweep_interval_ms = sweep_interval_ms, .now_ms = clock_now, .now_ctx = &fx->clk};
    struct hub_err err = {0};
    ok(hub_msg_c2d_new(fx->store, &opts, &fx->q, &err), &err, "c2d new");
}

static int fx_setup(void **state)
{
    struct fx *fx = calloc(1, sizeof(*fx));
    assert_non_null(fx);
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/hubd-test-c2d-XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    snprintf(fx->path, sizeof(fx->path), "%s/hub.db", fx->dir);
    struct hub_err err = {0};
    ok(hub_store_sqlite_open(fx->path, NULL, &fx->store, &err), &err, "open");
    pthread_mutex_init(&fx->clk.mu, NULL);
    fx->clk.now = T0;
    open_queue(fx, -1);
    add_device(fx, "d1");
    *state = fx;
    return 0;
}

static int fx_teardown(void **state)
{
    struct fx *fx = *state;
    hub_msg_c2d_free(fx->q);
    hub_store_close(fx->store);
    pthread_mutex_destroy(&fx->clk.mu);
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

static struct hub_c2d_msg msg_for(const char *dev, const char *mid, enum hub_c2d_ack ack)
{
    struct hub_c2d_msg m;
    memset(&m, 0, sizeof(m));
    snprintf(m.device_id, sizeof(m.device_id), "%s", dev);
    m.sys[HUB_SYSPROP_MESSAGE_ID] = mid;
    m.ack = ack;
    m.body = (const unsigned char *)"cmd";
    m.body_len = 3;
    return m;
}

static void send_msg(struct fx *fx, const char *mid, enum hub_c2d_ack ack)
{
    struct hub_err err = {0};
    struct hub_c2d_msg m = msg_for("d1", mid, ack);
    ok(hub_msg_c2d_enqueue(fx->q, &m, NULL, NULL, &err), &err, "enqueue");
}

static size_t count(struct fx *fx)
{
    struct hub_err err = {0};
    size_t n = 0;
    ok(hub_msg_c2d_count(fx->q, "d1", &n, &err), &err, "count");
    return n;
}

static bool is_uuid(const char *s)
{
    if (strlen(s) != 36)
        return false;
    for (int i = 0; i < 36; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash != (s[i] == '-'))
            return false;
        if (!dash && strchr("0123456789abcdef", s[i]) == NULL)
            return false;
    }
    return s[14] == '4';
}

static void test_enqueue_defaults_and_limits(void **state)
{
    struct fx *fx = *state;
    struct hub_err err = {0};
    struct hub_c2d_msg m = msg_for("d1", NULL, HUB_C2D_ACK_NONE);
    int64_t seq = 0;
    char mid[HUB_MESSAGE_ID_SIZE];
    ok(hub_msg_c2d_enqueue(fx->q, &m, &seq, mid, &err), &err, "enqueue without id");
    assert_true(seq > 0);
    assert_true(is_uuid(mid));
    /* Expiry: default one hour; longer asks are clamped to two days. */
    m = msg_for("d1", "long", HUB_C2D_ACK_NONE);
    m.expiry_ms = T0 + 30 * 86400 * 1000LL;
    ok(hub_msg_c2d_enqueue(fx->q, &m, NULL, mid, &err), &err, "enqueue long TTL");
    assert_string_equal(mid, "long");
    m = msg_for("d1", "past", HUB_C2D_ACK_NONE);
    m.expiry_ms = T0;
    assert_int_equal(hub_msg_c2d_enqueue(fx->q, &m, NULL, NULL, &err), HUB_E_INVALID_ARG);

    struct hub_c2d_msg got;
    ok(hub_msg_c2d_deliver(fx->q, "d1", 0, &got, &err), &err, "deliver 1");
    assert_int_equal(got.enqueued_ms, T0);
    assert_int_equal(got.expiry_ms, T0 + HOUR);
    assert_true(is_uuid(got.lock_token));
    assert_int_equal(got.lock_expiry_ms, T0 + MINUTE);
    hub_c2d_msg_clear(&got);
    ok(hub_msg_c2d_deliver(fx->q, "d1", 5000, &got, &err), &err, "deliver 2");
    assert_int_equal(got.expiry_ms, T0 + 2 * 86400 * 1000LL);
    assert_int_equal(got.lock_expiry_ms, T0 + 5000); /* MQTT's own lock length */
    hub_c2d_msg_clear(&got);

    /* Azure's 50 per device. */
    for (int i = 2; i < HUB_MSG_C2D_DEFAULT_MAX_PER_DEVICE; i++)
        send_msg(fx, "fill", HUB_C2D_ACK_NONE);
    assert_int_equal(count(fx), 50);
    m = msg_for("d1", "one-too-many", HUB_C2D_ACK_NONE);
    assert_int_equal(hub_msg_c2d_enqueue(fx->q, &m, NULL, NULL, &err), HUB_E_LIMIT);
    m = msg_for("nobody", "x", HUB_C2D_ACK_NONE);
    assert_int_equal(hub_msg_c2d_enqueue(fx->q, &m, NULL, NULL, &err), HUB_E_NOT_FOUND);
    struct hub_device dev;
    ok(hub_store_device_get(fx->store, "d1", &dev, &err), &err, "device");
    assert_int_equal(dev.c2d_count, 50);
    struct hub_msg_c2d_stats st;
    hub_msg_c2d_stats_get(fx->q, &st);
    assert_int_equal(st.enqueued, 50);
    assert_int_equal(st.refused_limit, 1);
    assert_int_equal(st.delivered, 2);
}

static void test_lifecycle_and_feedback(void **state)
{
    struct fx *fx = *state;
    struct hub_err err = {0};
    send_msg(fx, "ok-full", HUB_C2D_ACK_FULL);
    send_msg(fx, "rej-neg", HUB_C2D_ACK_NEGATIVE);
    send_msg(fx, "abandoned", HUB_C2D_ACK_FULL);
    struct hub_c2d_msg a, b, c;
    ok(hub_msg_c2d_deliver(fx->q, "d1", 0, &a, &err), &err, "deliver");
    ok(hub_msg_c2d_deliver(fx->q, "d1", 0, &b, &err), &err, "deliver");
    ok(hub_msg_c2d_deliver(fx->q, "d1", 0, &c, &err), &err, "deliver");
    assert_string_not_equal(a.lock_token, b.lock_token);
    advance(fx, 1000);
    ok(hub_msg_c2d_settle(fx->q, "d1", a.lock_token, HUB_C2D_COMPLETE, &err), &err, "complete");
    ok(hub_msg_c2d_settle(fx->q, "d1", b.lock_token, HUB_C2D_REJECT, &err), &err, "reject");
    ok(hub_msg_c2d_settle(fx->q, "d1", c.lock_token, HUB_C2D_ABANDON, &err), &err, "abandon");
    assert_int_equal(count(fx), 1);

    /* The service reads feedback in a locked batch, then completes it. */
    struct hub_c2d_feedback_list *fb = NULL;
    char token[HUB_LOCK_TOKEN_SIZE];
    ok(hub_msg_c2d_feedback_receive1(fx->q, 100, &fb, token, &err), &err, "feedback");
    assert_true(is_uuid(token));
    assert_int_equal(fb->count, 2);
    assert_string_equal(fb->items[0].original_message_id, "ok-full");
    assert_int_equal(fb->items[0].status, HUB_C2D_SUCCESS);
    assert_int_equal(fb->items[0].enqueued_ms, T0 + 1000);
    assert_string_equal(fb->items[0].device_generation_id, "638000000000000001");
    assert_string_equal(fb->items[1].original_message_id, "rej-neg");
    assert_int_equal(fb->items[1].status, HUB_C2D_REJECTED);
    assert_string_equal(hub_c2d_outcome_description(fb->items[1].status), "Message rejected");
    hub_c2d_feedback_list_free(fb);
    /* Locked: a second reader gets nothing until it is abandoned. */
    char token2[HUB_LOCK_TOKEN_SIZE];
    ok(hub_msg_c2d_feedback_receive1(fx->q, 100, &fb, token2, &err), &err, "feedback 2");
    assert_int_equal(fb->count, 0);
    hub_c2d_feedback_list_free(fb);
    ok(hub_msg_c2d_feedback_settle(fx->q, token, false, &err), &err, "abandon batch");
    ok(hub_msg_c2d_feedback_receive1(fx->q, 100, &fb, token2, &err), &err, "feedback 3");
    assert_int_equal(fb->count, 2);
    hub_c2d_feedback_list_free(fb);
    ok(hub_msg_c2d_feedback_settle(fx->q, token2, true, &err), &err, "complete batch");
    assert_int_equal(hub_msg_c2d_feedback_settle(fx->q, token2, true, &err), HUB_E_NOT_FOUND);
    ok(hub_msg_c2d_feedback_receive1(fx->q, 100, &fb, token2, &err), &err, "feedback 4");
    assert_int_equal(fb->count, 0);
    hub_c2d_feedback_list_free(fb);

    struct hub_msg_c2d_stats st;
    hub_msg_c2d_stats_get(fx->q, &st);
    assert_int_equal(st.delivered, 3);
    assert_int_equal(st.completed, 1);
    assert_int_equal(st.rejected, 1);
    assert_int_equal(st.abandoned, 1);
    hub_c2d_msg_clear(&a);
    hub_c2d_msg_clear(&b);
    hub_c2d_msg_clear(&c);
}

static void test_lock_lost_and_release(void **state)
{
    struct fx *fx = *state;
    struct hub_err err = {0};
    send_msg(fx, "m", HUB_C2D_ACK_NONE);
    struct hub_c2d_msg a;
    ok(hub_msg_c2d_deliver(fx->q, "d1", 0, &a, &err), &err, "deliver");
    struct hub_c2d_msg none;
    assert_int_equal(hub_msg_c2d_deliver(fx->q, "d1", 0, &none, &err), HUB_E_NOT_FOUND);
    advance(fx, MINUTE); /* Azure's lock is one minute */
    assert_int_equal(hub_msg_c2d_settle(fx->q, "d1", a.lock_token, HUB_C2D_COMPLETE, &err),
                     HUB_E_ETAG_MISMATCH);
    struct hub_c2d_msg b;
    ok(hub_msg_c2d_deliver(fx->q, "d1", 0, &b, &err), &err, "redeliver");
    assert_int_equal(b.delivery_count, 2);
    /* Reconnect: the in-flight message is released and delivered again. */
    size_t n = 0;
    ok(hub_msg_c2d_release(fx->q, "d1", &n, &err), &err, "release");
    assert_int_equal(n, 1);
    struct hub_c2d_msg c;
    ok(hub_msg_c2d_deliver(fx->q, "d1", 0, &c, &err), &err, "deliver after release");
    assert_int_equal(c.seq, a.seq);
    assert_int_equal(c.delivery_count, 3);
    assert_int_equal(hub_msg_c2d_settle(fx->q, "d1", b.lock_token, HUB_C2D_COMPLETE, &err),
                     HUB_E_NOT_FOUND);
    ok(hub_msg_c2d_settle(fx->q, "d1", c.lock_token, HUB_C2D_COMPLETE, &err), &err, "complete");
    assert_int_equal(count(fx), 0);
    hub_c2d_msg_clear(&a);
    hub_c2d_msg_clear(&b);
    hub_c2d_msg_clear(&c);
}

static void test_dead_letter_after_ten_deliveries(void **state)
{
    struct fx *fx = *state;
    struct hub_err err = {0};
    send_msg(fx, "poison", HUB_C2D_ACK_NEGATIVE);
    for (int i = 1; i <= HUB_MSG_C2D_DEFAULT_MAX_DELIVERY_COUNT; i++) {
        struct hub_c2d_msg m;
        ok(hub_msg_c2d_deliver(fx->q, "d1", 0, &m, &err), &err, "deliver");
        assert_int_equal(m.delivery_count, i);
        ok(hub_msg_c2d_settle(fx->q, "d1", m.lock_token, HUB_C2D_ABANDON, &err), &err, "abandon");
        hub_c2d_msg_clear(&m);
    }
    struct hub_c2d_msg m;
    assert_int_equal(hub_msg_c2d_deliver(fx->q, "d1", 0, &m, &err), HUB_E_NOT_FOUND);
    assert_int_equal(count(fx), 0);
    struct hub_msg_c2d_stats st;
    hub_msg_c2d_stats_get(fx->q, &st);
    assert_int_equal(st.dead_lettered, 1);
    assert_int_equal(st.delivered, 10);
    struct hub_c2d_feedback_list *fb = NULL;
    char token[HUB_LOCK_TOKEN_SIZE];
    ok(hub_msg_c2d_feedback_receive1(fx->q, 10, &fb, token, &err), &err, "feedback");
    assert_int_equal(fb->count, 1);
    assert_int_equal(fb->items[0].status, HUB_C2D_DELIVERY_COUNT_EXCEEDED);
    hub_c2d_feedback_list_free(fb);
}

static void test_ttl_expiry_sweep_and_feedback_ttl(void **state)
{
    struct fx *fx = *state;
    struct hub_err err = {0};
    send_msg(fx, "exp-full", HUB_C2D_ACK_FULL);
    send_msg(fx, "exp-pos", HUB_C2D_ACK_POSITIVE);
    advance(fx, HOUR - 1);
    size_t n = 0;
    ok(hub_msg_c2d_sweep(fx->q, &n, &err), &err, "sweep early");
    assert_int_equal(n, 0);
    send_msg(fx, "fresh", HUB_C2D_ACK_NONE);
    advance(fx, 1); /* one hour after the first two: expired */
    ok(hub_msg_c2d_sweep(fx->q, &n, &err), &err, "sweep");
    assert_int_equal(n, 2);
    assert_int_equal(count(fx), 1);
    struct hub_msg_c2d_stats st;
    hub_msg_c2d_stats_get(fx->q, &st);
    assert_int_equal(st.expired, 2);

    /* Feedback ages out after feedback_ttl (one hour by default). */
    advance(fx, HOUR + 1);
    ok(hub_msg_c2d_sweep(fx->q, &n, &err), &err, "sweep later");
    assert_int_equal(n, 1); /* "fresh" expired meanwhile (ack none: no feedback) */
    struct hub_c2d_feedback_list *fb = NULL;
    char token[HUB_LOCK_TOKEN_SIZE];
    ok(hub_msg_c2d_feedback_receive1(fx->q, 10, &fb, token, &err), &err, "feedback");
    assert_int_equal(fb->count, 0);
    hub_c2d_feedback_list_free(fb);
}

static void test_sweeper_thread_expires(void **state)
{
    struct fx *fx = *state;
    hub_msg_c2d_free(fx->q);
    open_queue(fx, 5); /* every 5 ms */
    send_msg(fx, "a", HUB_C2D_ACK_NONE);
    send_msg(fx, "b", HUB_C2D_ACK_NONE);
    advance(fx, 2 * HOUR);
    struct hub_msg_c2d_stats st = {0};
    for (int i = 0; i < 5000 && st.expired < 2; i++) {
        struct timespec ts = {0, 1000000L};
        nanosleep(&ts, NULL);
        hub_msg_c2d_stats_get(fx->q, &st);
    }
    assert_int_equal(st.expired, 2);
    assert_int_equal(count(fx), 0);
}

static void test_purge(void **state)
{
    struct fx *fx = *state;
    struct hub_err err = {0};
    send_msg(fx, "p1", HUB_C2D_ACK_FULL);
    send_msg(fx, "p2", HUB_C2D_ACK_NONE);
    struct hub_c2d_msg m;
    ok(hub_msg_c2d_deliver(fx->q, "d1", 0, &m, &err), &err, "deliver"); /* in flight too */
    size_t n = 0;
    ok(hub_msg_c2d_purge(fx->q, "d1", &n, &err), &err, "purge");
    assert_int_equal(n, 2);
    assert_int_equal(count(fx), 0);
    assert_int_equal(hub_msg_c2d_settle(fx->q, "d1", m.lock_token, HUB_C2D_COMPLETE, &err),
                     HUB_E_NOT_FOUND);
    assert_int_equal(hub_msg_c2d_purge(fx->q, "ghost", &n, &err), HUB_E_NOT_FOUND);
    struct hub_msg_c2d_stats st;
    hub_msg_c2d_stats_get(fx->q, &st);
    assert_int_equal(st.purged, 2);
    hub_c2d_msg_clear(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_enqueue_defaults_and_limits, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_lifecycle_and_feedback, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_lock_lost_and_release, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_dead_letter_after_ten_deliveries, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_ttl_expiry_sweep_and_feedback_ttl, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_sweeper_thread_expires, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_purge, fx_setup, fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
