/*
 * net admission: the three limits, the token bucket against an injected
 * clock, address normalization, bounded table, the refusal log limiter,
 * release-exactly-once through SSL_free, and the evhttp-style deferred check
 * over a real loopback socket.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>

#include "common/log.h"
#include "common/metrics.h"
#include "net/admission.h"

static int64_t fake_now;

static int64_t fake_clock(void *ctx)
{
    (void)ctx;
    return fake_now;
}

static struct hub_net_admission *new_adm(size_t max_conn, size_t per_ip, uint32_t rate,
                                         uint32_t burst, size_t tracked)
{
    struct hub_net_admission_opts o = {.max_connections = max_conn,
                                       .max_per_ip = per_ip,
                                       .rate_per_ip = rate,
                                       .burst_per_ip = burst,
                                       .max_tracked = tracked,
                                       .now_ms = fake_clock};
    struct hub_net_admission *adm = NULL;
    assert_int_equal(hub_net_admission_new(&o, &adm, NULL), 0);
    return adm;
}

struct addr {
    struct sockaddr_storage ss;
    socklen_t len;
};

/* "1.2.3.4" or "2001:db8::1"; port 1000. */
static struct addr addr_of(const char *text)
{
    struct addr a;
    memset(&a, 0, sizeof(a));
    struct sockaddr_in *in = (struct sockaddr_in *)&a.ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&a.ss;
    if (inet_pton(AF_INET, text, &in->sin_addr) == 1) {
        in->sin_family = AF_INET;
        in->sin_port = htons(1000);
        a.len = sizeof(*in);
    } else {
        assert_int_equal(inet_pton(AF_INET6, text, &in6->sin6_addr), 1);
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(1000);
        a.len = sizeof(*in6);
    }
    return a;
}

static enum hub_net_admit admit(struct hub_net_admission *adm, const char *ip,
                                struct hub_net_admission_ticket **t)
{
    struct addr a = addr_of(ip);
    return hub_net_admission_admit(adm, HUB_NET_TRANSPORT_MQTT, (struct sockaddr *)&a.ss, a.len, t);
}

static size_t open_from(struct hub_net_admission *adm, const char *ip)
{
    struct addr a = addr_of(ip);
    return hub_net_admission_open_from(adm, (struct sockaddr *)&a.ss, a.len);
}

static struct hub_net_admission_stats stats(struct hub_net_admission *adm)
{
    struct hub_net_admission_stats s;
    hub_net_admission_stats_get(adm, &s);
    return s;
}

static int setup(void **state)
{
    (void)state;
    fake_now = 1000000;
    signal(SIGPIPE, SIG_IGN);         /* as hub_net_init: TLS writes to reset sockets */
    hub_log_level_set(HUB_LOG_ERROR); /* refusal lines are warn: keep test output clean */
    return 0;
}

static void test_global_cap(void **state)
{
    (void)state;
    struct hub_net_admission *adm = new_adm(3, 0, 0, 0, 0);
    struct hub_net_admission_ticket *t[4] = {0};
    assert_int_equal(admit(adm, "10.0.0.1", &t[0]), HUB_NET_ADMIT_OK);
    assert_int_equal(admit(adm, "10.0.0.2", &t[1]), HUB_NET_ADMIT_OK);
    assert_int_equal(admit(adm, "10.0.0.3", &t[2]), HUB_NET_ADMIT_OK);
    assert_int_equal(admit(adm, "10.0.0.4", &t[3]), HUB_NET_ADMIT_CONN_CAP_GLOBAL);
    assert_null(t[3]);
    assert_int_equal(stats(adm).open, 3);
    assert_int_equal(stats(adm).refused[HUB_NET_ADMIT_CONN_CAP_GLOBAL], 1);
    hub_net_admission_release(t[1]);
    assert_int_equal(admit(adm, "10.0.0.4", &t[3]), HUB_NET_ADMIT_OK);
    hub_net_admission_release(t[0]);
    hub_net_admission_release(t[2]);
    hub_net_admission_release(t[3]);
    struct hub_net_admission_stats s = stats(adm);
    assert_int_equal(s.open, 0);
    assert_int_equal(s.admitted, 4);
    assert_int_equal(s.tracked, 0); /* no rate state: nothing left to remember */
    hub_net_admission_free(adm);
}

static void test_per_ip_cap(void **state)
{
    (void)state;
    struct hub_net_admission *adm = new_adm(100, 2, 0, 0, 0);
    struct hub_net_admission_ticket *a1, *a2, *a3, *b1;
    assert_int_equal(admit(adm, "10.0.0.1", &a1), HUB_NET_ADMIT_OK);
    assert_int_equal(admit(adm, "10.0.0.1", &a2), HUB_NET_ADMIT_OK);
    assert_int_equal(admit(adm, "10.0.0.1", &a3), HUB_NET_ADMIT_CONN_CAP_PER_IP);
    assert_int_equal(admit(adm, "10.0.0.2", &b1), HUB_NET_ADMIT_OK); /* others unaffected */
    assert_int_equal(open_from(adm, "10.0.0.1"), 2);
    hub_net_admission_release(a1);
    assert_int_equal(open_from(adm, "10.0.0.1"), 1);
    assert_int_equal(admit(adm, "10.0.0.1", &a3), HUB_NET_ADMIT_OK);
    hub_net_admission_release(a2);
    hub_net_admission_release(a3);
    hub_net_admission_release(b1);
    assert_int_equal(stats(adm).refused[HUB_NET_ADMIT_CONN_CAP_PER_IP], 1);
    hub_net_admission_free(adm);
}

/* Admits and releases at once, so only the bucket decides. */
static enum hub_net_admit attempt(struct hub_net_admission *adm, const char *ip)
{
    struct hub_net_admission_ticket *t = NULL;
    enum hub_net_admit a = admit(adm, ip, &t);
    hub_net_admission_release(t);
    return a;
}

static void test_rate_bucket_refills_with_the_clock(void **state)
{
    (void)state;
    struct hub_net_admission *adm = new_adm(100, 0, 2, 3, 0); /* 2/s, burst 3 */
    static const struct {
        int64_t advance_ms;
        enum hub_net_admit want;
    } steps[] = {
        {0, HUB_NET_ADMIT_OK},
        {0, HUB_NET_ADMIT_OK},
        {0, HUB_NET_ADMIT_OK},
        {0, HUB_NET_ADMIT_CONN_RATE_PER_IP},
        {499, HUB_NET_ADMIT_CONN_RATE_PER_IP}, /* 998 milli-tokens: not one yet */
        {1, HUB_NET_ADMIT_OK},                 /* 500 ms at 2/s: one token */
        {0, HUB_NET_ADMIT_CONN_RATE_PER_IP},
        {60000, HUB_NET_ADMIT_OK}, /* capped at 3 */
        {0, HUB_NET_ADMIT_OK},
        {0, HUB_NET_ADMIT_OK},
        {0, HUB_NET_ADMIT_CONN_RATE_PER_IP},
    };
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        fake_now += steps[i].advance_ms;
        enum hub_net_admit got = attempt(adm, "192.0.2.7");
        if (got != steps[i].want)
            fail_msg("step %zu: got %s, want %s", i, hub_net_admit_name(got),
                     hub_net_admit_name(steps[i].want));
    }
    assert_int_equal(stats(adm).refused[HUB_NET_ADMIT_CONN_RATE_PER_IP], 4);
    /* another address has a bucket of its own */
    assert_int_equal(attempt(adm, "192.0.2.8"), HUB_NET_ADMIT_OK);
    hub_net_admission_free(adm);
}

static void test_refused_by_cap_still_costs_a_token(void **state)
{
    (void)state;
    struct hub_net_admission *adm = new_adm(100, 1, 1, 2, 0);
    struct hub_net_admission_ticket *held = NULL, *t = NULL;
    assert_int_equal(admit(adm, "10.9.9.9", &held), HUB_NET_ADMIT_OK);
    assert_int_equal(admit(adm, "10.9.9.9", &t), HUB_NET_ADMIT_CONN_CAP_PER_IP);
    assert_int_equal(admit(adm, "10.9.9.9", &t), HUB_NET_ADMIT_CONN_RATE_PER_IP);
    hub_net_admission_release(held);
    hub_net_admission_free(adm);
}

static void test_address_normalization(void **state)
{
    (void)state;
    struct hub_net_admission *adm = new_adm(100, 0, 0, 0, 0);
    struct hub_net_admission_ticket *t[6];
    assert_int_equal(admit(adm, "127.0.0.5", &t[0]), HUB_NET_ADMIT_OK);
    assert_int_equal(admit(adm, "::ffff:127.0.0.5", &t[1]), HUB_NET_ADMIT_OK);
    assert_int_equal(admit(adm, "2001:db8:1:2::1", &t[2]), HUB_NET_ADMIT_OK);
    assert_int_equal(admit(adm, "2001:db8:1:2:aaaa:bbbb:cccc:dddd", &t[3]), HUB_NET_ADMIT_OK);
    assert_int_equal(admit(adm, "2001:db8:1:3::1", &t[4]), HUB_NET_ADMIT_OK);
    assert_int_equal(admit(adm, "127.0.0.6", &t[5]), HUB_NET_ADMIT_OK);
    /* IPv4 and its mapped IPv6 form are one address */
    assert_int_equal(open_from(adm, "127.0.0.5"), 2);
    assert_int_equal(open_from(adm, "::ffff:127.0.0.5"), 2);
    /* IPv6 counts per /64 */
    assert_int_equal(open_from(adm, "2001:db8:1:2::99"), 2);
    assert_int_equal(open_from(adm, "2001:db8:1:3::99"), 1);
    assert_int_equal(open_from(adm, "127.0.0.6"), 1);
    /* an IPv4 address is not confused with the IPv6 address of the same bytes */
    assert_int_equal(open_from(adm, "::7f00:5"), 0);
    assert_int_equal(stats(adm).tracked, 4);
    for (int i = 0; i < 6; i++)
        hub_net_admission_release(t[i]);
    hub_net_admission_free(adm);
}

static void test_non_ip_peer_counts_globally_only(void **state)
{
    (void)state;
    struct hub_net_admission *adm = new_adm(1, 1, 1, 1, 0);
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    ss.ss_family = AF_UNIX;
    struct hub_net_admission_ticket *a = NULL, *b = NULL;
    assert_int_equal(hub_net_admission_admit(adm, HUB_NET_TRANSPORT_HTTPS, (struct sockaddr *)&ss,
                                             sizeof(ss), &a),
                     HUB_NET_ADMIT_OK);
    assert_int_equal(hub_net_admission_admit(adm, HUB_NET_TRANSPORT_HTTPS, (struct sockaddr *)&ss,
                                             sizeof(ss), &b),
                     HUB_NET_ADMIT_CONN_CAP_GLOBAL);
    assert_int_equal(stats(adm).open_by_transport[HUB_NET_TRANSPORT_HTTPS], 1);
    hub_net_admission_release(a);
    assert_int_equal(stats(adm).open, 0);
    hub_net_admission_free(adm);
}

static void test_table_is_bounded_and_evicts_idle_oldest(void **state)
{
    (void)state;
    /* burst 1 at 1/s: an address that connected keeps state for a second */
    struct hub_net_admission *adm = new_adm(0, 0, 1, 1, 4);
    const char *ips[] = {"10.1.0.1", "10.1.0.2", "10.1.0.3", "10.1.0.4", "10.1.0.5"};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(attempt(adm, ips[i]), HUB_NET_ADMIT_OK);
        fake_now += 10;
    }
    assert_int_equal(stats(adm).tracked, 4);
    /* full: the fifth address evicts the one idle longest (10.1.0.1) */
    assert_int_equal(attempt(adm, ips[4]), HUB_NET_ADMIT_OK);
    assert_int_equal(stats(adm).tracked, 4);
    /* 10.1.0.1 was forgotten so it has a full bucket again; 10.1.0.3 was not */
    assert_int_equal(attempt(adm, ips[2]), HUB_NET_ADMIT_CONN_RATE_PER_IP);
    assert_int_equal(attempt(adm, ips[0]), HUB_NET_ADMIT_OK);
    assert_int_equal(stats(adm).tracked, 4);
    /* once buckets refill, idle addresses carry no state and go by themselves */
    fake_now += 5000;
    assert_int_equal(attempt(adm, "10.1.0.9"), HUB_NET_ADMIT_OK);
    assert_int_equal(stats(adm).tracked, 1);
    hub_net_admission_free(adm);
}

static void test_full_table_of_busy_addresses_refuses_new_ones(void **state)
{
    (void)state;
    struct hub_net_admission *adm = new_adm(0, 0, 0, 0, 2);
    struct hub_net_admission_ticket *a, *b, *c = NULL;
    assert_int_equal(admit(adm, "10.2.0.1", &a), HUB_NET_ADMIT_OK);
    assert_int_equal(admit(adm, "10.2.0.2", &b), HUB_NET_ADMIT_OK);
    assert_int_equal(admit(adm, "10.2.0.3", &c), HUB_NET_ADMIT_CONN_CAP_GLOBAL);
    assert_int_equal(admit(adm, "10.2.0.1", &c), HUB_NET_ADMIT_OK); /* known: fine */
    hub_net_admission_release(c);
    hub_net_admission_release(a);
    assert_int_equal(admit(adm, "10.2.0.3", &c), HUB_NET_ADMIT_OK);
    hub_net_admission_release(b);
    hub_net_admission_release(c);
    assert_int_equal(stats(adm).tracked, 0);
    hub_net_admission_free(adm);
}

/* ---- the refusal log ------------------------------------------------------ */

static char *read_all(int fd)
{
    static char buf[65536];
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
    buf[n > 0 ? n : 0] = '\0';
    return buf;
}

static size_t count_lines(const char *text, const char *needle)
{
    size_t n = 0;
    for (const char *p = text; (p = strstr(p, needle)) != NULL; p++)
        n++;
    return n;
}

static void test_refusal_log_is_rate_limited(void **state)
{
    (void)state;
    char path[] = "/tmp/test_admission_log.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    hub_log_fd_set(fd);
    hub_log_level_set(HUB_LOG_INFO);
    struct hub_net_admission *adm = new_adm(100, 0, 1, 1, 0);
    assert_int_equal(attempt(adm, "198.51.100.1"), HUB_NET_ADMIT_OK);
    for (int i = 0; i < 50; i++)
        assert_int_equal(attempt(adm, "198.51.100.1"), HUB_NET_ADMIT_CONN_RATE_PER_IP);
    const char *log = read_all(fd);
    assert_int_equal(count_lines(log, "event=conn_refused"), 1);
    assert_non_null(strstr(log, "event=conn_refused transport=mqtt peer=198.51.100.1:1000 "
                                "reason=CONN_RATE_PER_IP limit=1\n"));
    /* a second later: one more line, saying how many were not logged */
    fake_now += 1000;
    assert_int_equal(attempt(adm, "198.51.100.1"), HUB_NET_ADMIT_OK); /* refilled */
    assert_int_equal(attempt(adm, "198.51.100.1"), HUB_NET_ADMIT_CONN_RATE_PER_IP);
    log = read_all(fd);
    assert_int_equal(count_lines(log, "event=conn_refused"), 2);
    if (strstr(log, "limit=1 suppressed=49\n") == NULL)
        fail_msg("no suppressed=49 in: %s", log);

    /* many addresses at once: at most HUB_NET_ADMISSION_LOG_PER_S lines */
    fake_now += 1000;
    char ip[32];
    for (int i = 0; i < 100; i++) {
        snprintf(ip, sizeof(ip), "198.51.100.%d", 10 + i);
        attempt(adm, ip);
        attempt(adm, ip); /* the second one is refused */
    }
    log = read_all(fd);
    assert_int_equal(count_lines(log, "event=conn_refused"), 2 + HUB_NET_ADMISSION_LOG_PER_S);
    fake_now += 1000;
    attempt(adm, "198.51.100.10");
    attempt(adm, "198.51.100.10");
    log = read_all(fd);
    assert_non_null(strstr(log, "suppressed_other=80\n"));
    assert_int_equal(stats(adm).refused[HUB_NET_ADMIT_CONN_RATE_PER_IP], 50 + 1 + 100 + 1);
    hub_net_admission_free(adm);
    hub_log_fd_set(2);
    hub_log_level_set(HUB_LOG_ERROR);
    close(fd);
}

/* ---- metrics -------------------------------------------------------------- */

static void test_metrics_follow_admissions(void **state)
{
    (void)state;
    struct hub_metrics *m = NULL;
    assert_int_equal(hub_metrics_new(&m, NULL), 0);
    struct hub_net_admission_opts o = {.max_connections = 1, .now_ms = fake_clock, .metrics = m};
    struct hub_net_admission *adm = NULL;
    assert_int_equal(hub_net_admission_new(&o, &adm, NULL), 0);
    struct addr a = addr_of("10.3.0.1");
    struct hub_net_admission_ticket *t1 = NULL, *t2 = NULL;
    assert_int_equal(
        hub_net_admission_admit(adm, HUB_NET_TRANSPORT_HTTPS, (struct sockaddr *)&a.ss, a.len, &t1),
        HUB_NET_ADMIT_OK);
    assert_int_equal(
        hub_net_admission_admit(adm, HUB_NET_TRANSPORT_HTTPS, (struct sockaddr *)&a.ss, a.len, &t2),
        HUB_NET_ADMIT_CONN_CAP_GLOBAL);
    struct hub_metrics_text t = {0};
    assert_int_equal(hub_metrics_render(m, &t, NULL), 0);
    assert_non_null(strstr(t.buf, "hubd_connections{transport=\"https\"} 1\n"));
    assert_non_null(strstr(t.buf, "hubd_connections{transport=\"mqtt\"} 0\n"));
    assert_non_null(strstr(
        t.buf,
        "hubd_connections_refused_total{transport=\"https\",reason=\"CONN_CAP_GLOBAL\"} 1\n"));
    assert_non_null(strstr(
        t.buf,
        "hubd_connections_refused_total{transport=\"mqtt\",reason=\"CONN_RATE_PER_IP\"} 0\n"));
    hub_metrics_text_free(&t);
    hub_net_admission_release(t1);
    assert_int_equal(hub_metrics_render(m, &t, NULL), 0);
    assert_non_null(strstr(t.buf, "hubd_connections{transport=\"https\"} 0\n"));
    hub_metrics_text_free(&t);
    hub_net_admission_free(adm);
    hub_metrics_free(m);
}

/* ---- release exactly once ------------------------------------------------- */

#define THREADS 8
#define ROUNDS  4000

struct race {
    struct hub_net_admission *adm;
    SSL_CTX *ctx;
    int index;
};

static void *racer(void *arg)
{
    struct race *r = arg;
    char ip[32];
    snprintf(ip, sizeof(ip), "10.4.0.%d", r->index % 3); /* threads share addresses */
    struct addr a = addr_of(ip);
    for (int i = 0; i < ROUNDS; i++) {
        struct hub_net_admission_ticket *t = NULL;
        if (hub_net_admission_accept(r->ctx, (struct sockaddr *)&a.ss, a.len, &t) != 0)
            continue;
        if (i % 2 == 0) {
            hub_net_admission_release(t);
        } else {
            /* the product path: the SSL object carries the ticket */
            SSL *ssl = SSL_new(r->ctx);
            assert_non_null(ssl);
            hub_net_admission_ticket_bind_ssl(t, ssl);
            SSL_free(ssl);
        }
    }
    return NULL;
}

static void test_release_exactly_once_under_threads(void **state)
{
    (void)state;
    struct hub_net_admission_opts o = {.max_connections = 5, .max_per_ip = 3};
    struct hub_net_admission *adm = NULL;
    assert_int_equal(hub_net_admission_new(&o, &adm, NULL), 0);
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    assert_non_null(ctx);
    assert_int_equal(hub_net_admission_ctx_set(ctx, adm, HUB_NET_TRANSPORT_MQTT, NULL), 0);
    pthread_t th[THREADS];
    struct race r[THREADS];
    for (int i = 0; i < THREADS; i++) {
        r[i] = (struct race){.adm = adm, .ctx = ctx, .index = i};
        assert_int_equal(pthread_create(&th[i], NULL, racer, &r[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    struct hub_net_admission_stats s = stats(adm);
    assert_int_equal(s.open, 0);
    assert_int_equal(s.open_by_transport[HUB_NET_TRANSPORT_MQTT], 0);
    assert_true(s.tracked <= 3); /* refused-only addresses may wait for a sweep */
    assert_true(s.admitted > 0);
    assert_int_equal(s.admitted + s.refused[HUB_NET_ADMIT_CONN_CAP_GLOBAL] +
                         s.refused[HUB_NET_ADMIT_CONN_CAP_PER_IP],
                     (uint64_t)THREADS * ROUNDS);
    SSL_CTX_free(ctx);
    hub_net_admission_free(adm);
}

static void test_ctx_without_admission_admits_everything(void **state)
{
    (void)state;
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    struct addr a = addr_of("10.5.0.1");
    struct hub_net_admission_ticket *t = (void *)1;
    assert_int_equal(hub_net_admission_accept(ctx, (struct sockaddr *)&a.ss, a.len, &t), 0);
    assert_null(t);
    hub_net_admission_ticket_bind_ssl(NULL, NULL); /* harmless */
    SSL_CTX_free(ctx);
}

/* ---- evhttp's path: decision after the bevcb, over real sockets ------------ */

struct pair {
    int client, server;
};

static struct pair tcp_pair(int lfd, const struct sockaddr_in *at)
{
    struct pair p;
    p.client = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(p.client >= 0);
    assert_int_equal(connect(p.client, (const struct sockaddr *)at, sizeof(*at)), 0);
    p.server = accept4(lfd, NULL, NULL, SOCK_NONBLOCK); /* as evhttp's listener */
    assert_true(p.server >= 0);
    return p;
}

/* What evhttp does: the bevcb makes an fd-less SSL bufferevent (we call
 * check_later there), then evhttp sets the fd. */
static struct bufferevent *bevcb_like(struct event_base *base, SSL_CTX *ctx, int fd)
{
    SSL *ssl = SSL_new(ctx);
    assert_non_null(ssl);
    struct bufferevent *bev = bufferevent_openssl_socket_new(
        base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
    assert_non_null(bev);
    assert_int_equal(hub_net_admission_check_later(base, bev, ssl), 0);
    assert_int_equal(bufferevent_setfd(bev, fd), 0);
    bufferevent_enable(bev, EV_READ);
    return bev;
}

static void test_check_later_refuses_before_any_tls_byte(void **state)
{
    (void)state;
    struct hub_net_admission_opts o = {.max_connections = 1};
    struct hub_net_admission *adm = NULL;
    assert_int_equal(hub_net_admission_new(&o, &adm, NULL), 0);
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    assert_int_equal(hub_net_admission_ctx_set(ctx, adm, HUB_NET_TRANSPORT_HTTPS, NULL), 0);
    struct event_base *base = event_base_new();

    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in at = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(at);
    assert_int_equal(bind(lfd, (struct sockaddr *)&at, sizeof(at)), 0);
    assert_int_equal(listen(lfd, 8), 0);
    assert_int_equal(getsockname(lfd, (struct sockaddr *)&at, &len), 0);

    struct pair p1 = tcp_pair(lfd, &at), p2 = tcp_pair(lfd, &at);
    struct bufferevent *b1 = bevcb_like(base, ctx, p1.server);
    struct bufferevent *b2 = bevcb_like(base, ctx, p2.server);
    assert_int_equal(stats(adm).open, 0); /* nothing decided inside the "accept" */
    event_base_loop(base, EVLOOP_NONBLOCK);
    struct hub_net_admission_stats s = stats(adm);
    assert_int_equal(s.open_by_transport[HUB_NET_TRANSPORT_HTTPS], 1);
    assert_int_equal(s.refused[HUB_NET_ADMIT_CONN_CAP_GLOBAL], 1);

    /* the refused client sees its connection end without a single byte */
    char byte;
    struct timeval tv = {.tv_sec = 2};
    setsockopt(p2.client, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    ssize_t n = recv(p2.client, &byte, 1, 0);
    assert_true(n == 0 || (n < 0 && errno == ECONNRESET));
    /* the admitted one is still open (would block) */
    ssize_t m = recv(p1.client, &byte, 1, MSG_DONTWAIT);
    assert_true(m < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));

    /* freeing the bufferevent frees the SSL, which gives the slot back */
    bufferevent_free(b1);
    bufferevent_free(b2);
    event_base_loop(base, EVLOOP_NONBLOCK);
    event_base_free(base);
    assert_int_equal(stats(adm).open, 0);
    close(p1.client);
    close(p2.client);
    close(lfd);
    SSL_CTX_free(ctx);
    hub_net_admission_free(adm);
}

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(hub_net_admit_name(HUB_NET_ADMIT_CONN_RATE_PER_IP), "CONN_RATE_PER_IP");
    assert_string_equal(hub_net_admit_name(HUB_NET_ADMIT_CONN_CAP_PER_IP), "CONN_CAP_PER_IP");
    assert_string_equal(hub_net_admit_name(HUB_NET_ADMIT_CONN_CAP_GLOBAL), "CONN_CAP_GLOBAL");
    assert_string_equal(hub_net_admit_name(HUB_NET_ADMIT__COUNT), "UNKNOWN");
    assert_string_equal(hub_net_transport_name(HUB_NET_TRANSPORT_HTTPS), "https");
    assert_string_equal(hub_net_transport_name(HUB_NET_TRANSPORT__COUNT), "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_global_cap, setup),
        cmocka_unit_test_setup(test_per_ip_cap, setup),
        cmocka_unit_test_setup(test_rate_bucket_refills_with_the_clock, setup),
        cmocka_unit_test_setup(test_refused_by_cap_still_costs_a_token, setup),
        cmocka_unit_test_setup(test_address_normalization, setup),
        cmocka_unit_test_setup(test_non_ip_peer_counts_globally_only, setup),
        cmocka_unit_test_setup(test_table_is_bounded_and_evicts_idle_oldest, setup),
        cmocka_unit_test_setup(test_full_table_of_busy_addresses_refuses_new_ones, setup),
        cmocka_unit_test_setup(test_refusal_log_is_rate_limited, setup),
        cmocka_unit_test_setup(test_metrics_follow_admissions, setup),
        cmocka_unit_test_setup(test_release_exactly_once_under_threads, setup),
        cmocka_unit_test_setup(test_ctx_without_admission_admits_everything, setup),
        cmocka_unit_test_setup(test_check_later_refuses_before_any_tls_byte, setup),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
