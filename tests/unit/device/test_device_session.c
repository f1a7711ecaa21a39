/*
 * device: what outlives a connection, and what must not, over a real
 * MQTT-over-TLS connection: a deleted device's session is forgotten (a
 * device created again under the same id gets session-present 0 and the
 * directory does not keep the entry), and an X.509 connection ends when the
 * certificate it authenticated with expires (CERT_EXPIRED), as a SAS
 * connection ends at its token's se.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <time.h>

#include "device_loopback_fx.h"

/* Polls (up to 5 s) until the directory holds `n` entries. */
static void entries_wait(struct fx *fx, size_t n)
{
    for (int i = 0; i < 500 && hub_device__dir_entry_count(fx->ep->dir) != n; i++)
        usleep(10 * 1000);
    assert_int_equal(hub_device__dir_entry_count(fx->ep->dir), n);
}

static void delete_and_recreate(struct fx *fx)
{
    struct hub_err err = {0};
    if (hub_registry_device_delete(fx->reg, "dev1", NULL, &err) != 0)
        fail_msg("delete: %s", err.msg);
    fx_device_add(fx, "dev1");
}

static void test_deleted_device_session_kept_offline(void **state)
{
    struct fx *fx = *state;
    /* A kept session with a C2D subscription, the device away. */
    struct client c = client_open(fx);
    assert_false(client_connect(&c, "dev1", false));
    assert_int_equal(client_subscribe(&c, 1, "devices/dev1/messages/devicebound/#"), 0);
    client_disconnect(&c);
    entries_wait(fx, 1);
    /* Control: the session resumes while the device exists. */
    c = client_open(fx);
    assert_true(client_connect(&c, "dev1", false));
    client_disconnect(&c);
    entries_wait(fx, 1);

    delete_and_recreate(fx);
    assert_int_equal(hub_device__dir_entry_count(fx->ep->dir), 0);
    c = client_open(fx);
    assert_false(client_connect(&c, "dev1", false)); /* a new device: no session */
    assert_int_equal(hub_device__dir_subs(fx->ep->dir, "dev1"), 0);
    client_disconnect(&c);
}

static void test_deleted_device_session_while_live(void **state)
{
    struct fx *fx = *state;
    struct client c = client_open(fx);
    assert_false(client_connect(&c, "dev1", false));
    assert_int_equal(client_subscribe(&c, 1, "$iothub/methods/POST/#"), 0);
    assert_int_equal(client_subscribe(&c, 2, "devices/dev1/messages/devicebound/#"), 0);

    delete_and_recreate(fx);
    /* The live connection is closed (DEVICE_DELETED) and takes the entry
     * with it. */
    client_expect_closed(&c);
    entries_wait(fx, 0);
    assert_int_equal(hub_device_reason_count(fx->ep, HUB_DEVICE_R_DEVICE_DELETED), 1);

    c = client_open(fx);
    assert_false(client_connect(&c, "dev1", false));
    assert_int_equal(hub_device__dir_subs(fx->ep->dir, "dev1"), 0);
    client_disconnect(&c);
}

/* Polls (up to 6 s) for the counter of `r` to reach n. */
static void count_wait(struct fx *fx, enum hub_device_reason r, uint64_t n)
{
    for (int i = 0; i < 600 && hub_device_reason_count(fx->ep, r) < n; i++)
        usleep(10 * 1000);
    assert_int_equal(hub_device_reason_count(fx->ep, r), n);
}

static void test_x509_connection_ends_at_not_after(void **state)
{
    struct fx *fx = *state;
    int64_t nb = 0, na = 0;
    assert_int_equal(hub_pki_cert_validity(fx->lb.dev_cert, &nb, &na, NULL), 0);
    /* The hub's clock 2 s before the leaf's notAfter: accepted now, expired
     * (notAfter + 1 s) about 3 s later. */
    atomic_store(&lbfx_clock_offset_ms, (na - 2) * 1000 - lbfx_now_ms());
    struct client c = client_open(fx);
    client_connect(&c, "dev1", true);
    client_ping(&c);
    assert_int_equal(hub_device_live_count(fx->ep), 1);
    count_wait(fx, HUB_DEVICE_R_CERT_EXPIRED, 1);
    client_expect_closed(&c); /* closed by the hub */
    assert_int_equal(hub_device_live_count(fx->ep), 0);
    /* And it cannot come back with that certificate. */
    c = client_open(fx);
    client_connect_raw(&c, "dev1", 60);
    assert_int_equal(client_connack(&c, NULL), 5);
    client_close(&c);
}

static void test_x509_connection_stays_before_not_after(void **state)
{
    struct fx *fx = *state;
    /* A month of validity left: the timer is not armed for it (the hourly
     * re-check is the earliest), so the connection stays. */
    struct client c = client_open(fx);
    client_connect(&c, "dev1", true);
    usleep(1500 * 1000);
    client_ping(&c);
    assert_int_equal(hub_device_reason_count(fx->ep, HUB_DEVICE_R_CERT_EXPIRED), 0);
    client_disconnect(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_deleted_device_session_kept_offline, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_deleted_device_session_while_live, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_x509_connection_ends_at_not_after, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_x509_connection_stays_before_not_after, fx_setup,
                                        fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
