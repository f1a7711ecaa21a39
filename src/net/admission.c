/*
 * net admission (see admission.h): the address table, the token buckets,
 * the refusal log limiter and the glue that ties a ticket to an SSL object.
 *
 * Table: a chained hash of `struct entry` keyed by the 16-byte normalized
 * address, hashed with a per-process random key (so a client cannot choose
 * addresses that pile up in one chain). Entries with no open connection sit
 * on the idle list, oldest first; that list is what gets forgotten when the
 * table is full and what the cheap per-call sweep looks at.
 *
 * Token bucket in integer milli-tokens: `rate` tokens per second is `rate`
 * milli-tokens per millisecond, so refill is elapsed_ms * rate, exact, no
 * floating point; one connection costs 1000.
 */
#include "net/admission.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/bufferevent.h>
#include <event2/event.h>

#include "common/log.h"
#include "common/metrics.h"
#include "common/util.h"

#define MILLI              1000u
#define BUCKETS_MAX        (1u << 20)
#define SWEEP_PER_CALL     4
#define NEVER              INT64_MIN
#define SUPPRESSED_KEEP_MS 60000

struct addr_key {
    uint8_t b[16];
};

struct entry {
    struct entry *hnext;         /* hash chain */
    struct entry *iprev, *inext; /* idle list, while open == 0 */
    struct addr_key key;
    uint32_t open;
    uint64_t tokens; /* milli-tokens as of refill_ms */
    int64_t refill_ms;
    int64_t last_log_ms; /* NEVER: no line yet */
    uint64_t suppressed; /* refusals not logged since the last line */
};

struct binding {
    struct hub_net_admission *adm;
    enum hub_net_transport t;
};

struct hub_net_admission {
    size_t max_connections, max_per_ip, max_tracked;
    uint64_t rate;       /* tokens per second (= milli-tokens per ms) */
    uint64_t cap_tokens; /* bucket size in milli-tokens */
    int64_t (*now_ms)(void *ctx);
    void *now_ctx;
    uint64_t hash_key[2];

    pthread_mutex_t mu; /* guards everything down to the atomics */
    struct entry **buckets;
    size_t bucket_mask;
    size_t tracked;
    struct entry *idle_head, *idle_tail;
    int64_t log_window_ms;
    unsigned log_in_window;
    uint64_t log_dropped; /* lines dropped by the global limiter since the last line */

    /* written under mu, read anywhere */
    _Atomic size_t open;
    _Atomic size_t open_by_transport[HUB_NET_TRANSPORT__COUNT];
    _Atomic uint64_t admitted;
    _Atomic uint64_t refused[HUB_NET_ADMIT__COUNT];
    _Atomic uint64_t log_lines;

    struct binding bindings[HUB_NET_TRANSPORT__COUNT];
    struct hub_metrics_gauge *m_open[HUB_NET_TRANSPORT__COUNT];
    struct hub_metrics_counter *m_accepted[HUB_NET_TRANSPORT__COUNT];
    struct hub_metrics_counter *m_refused[HUB_NET_TRANSPORT__COUNT][HUB_NET_ADMIT__COUNT];
};

struct hub_net_admission_ticket {
    struct hub_net_admission *adm;
    struct entry *e; /* NULL: not an IP peer (counted globally only) */
    enum hub_net_transport t;
    bool held; /* the counts were taken and not yet given back */
    /* check_later: the pending decision and the SSL share the ticket. */
    unsigned refs;
    bool ssl_gone;
    struct bufferevent *bev;
    struct event *ev;
};

static const char *const transport_names[] = {"mqtt", "https", "dps_mqtt"};

const char *hub_net_transport_name(enum hub_net_transport t)
{
    return (unsigned)t < HUB_NET_TRANSPORT__COUNT ? transport_names[t] : "unknown";
}

const char *hub_net_admit_name(enum hub_net_admit a)
{
    switch (a) {
#define HUB_NET_ADMIT_NAME(name, text)                                                             \
    case HUB_NET_ADMIT_##name:                                                                     \
        return #name;
        HUB_NET_ADMIT_MAP(HUB_NET_ADMIT_NAME)
#undef HUB_NET_ADMIT_NAME
    case HUB_NET_ADMIT__COUNT:
        break;
    }
    return "UNKNOWN";
}

static int64_t monotonic_ms(void *ctx)
{
    (void)ctx;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- keys ----------------------------------------------------------------- */

/* 0 and the key for IPv4 / IPv6 peers, -1 for anything else. */
static int key_from(const struct sockaddr *sa, socklen_t salen, struct addr_key *k)
{
    memset(k, 0, sizeof(*k));
    if (sa == NULL)
        return -1;
    if (sa->sa_family == AF_INET && salen >= (socklen_t)sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        k->b[10] = k->b[11] = 0xff; /* ::ffff:a.b.c.d, as a dual-stack socket reports it */
        memcpy(&k->b[12], &in->sin_addr, 4);
        return 0;
    }
    if (sa->sa_family == AF_INET6 && salen >= (socklen_t)sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr))
            memcpy(k->b, &in6->sin6_addr, 16);
        else
            memcpy(k->b, &in6->sin6_addr, 8); /* the /64 */
        return 0;
    }
    return -1;
}

static uint64_t mix64(uint64_t x)
{
    /* splitmix64's finalizer: every input bit reaches every output bit. */
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

static size_t key_bucket(const struct hub_net_admission *adm, const struct addr_key *k)
{
    uint64_t hi, lo;
    memcpy(&hi, k->b, 8);
    memcpy(&lo, k->b + 8, 8);
    return (size_t)(mix64(hi ^ adm->hash_key[0]) ^ mix64(lo ^ adm->hash_key[1] ^ hi)) &
           adm->bucket_mask;
}

static void format_peer(const struct sockaddr *sa, socklen_t salen, char *out, size_t cap)
{
    char host[INET6_ADDRSTRLEN], serv[8];
    if (sa == NULL || getnameinfo(sa, salen, host, sizeof(host), serv, sizeof(serv),
                                  NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
        snprintf(out, cap, "?");
        return;
    }
    if (strchr(host, ':') != NULL)
        snprintf(out, cap, "[%s]:%s", host, serv);
    else
        snprintf(out, cap, "%s:%s", host, serv);
}

/* ---- table (under mu) ----------------------------------------------------- */

static struct entry *table_find(struct hub_net_admission *adm, const struct addr_key *k)
{
    for (struct entry *e = adm->buckets[key_bucket(adm, k)]; e != NULL; e = e->hnext)
        if (memcmp(e->key.b, k->b, sizeof(k->b)) == 0)
            return e;
    return NULL;
}

static void idle_unlink(struct hub_net_admission *adm, struct entry *e)
{
    if (e->iprev != NULL)
        e->iprev->inext = e->inext;
    else if (adm->idle_head == e)
        adm->idle_head = e->inext;
    if (e->inext != NULL)
        e->inext->iprev = e->iprev;
    else if (adm->idle_tail == e)
        adm->idle_tail = e->iprev;
    e->iprev = e->inext = NULL;
}

static void idle_append(struct hub_net_admission *adm, struct entry *e)
{
    e->inext = NULL;
    e->iprev = adm->idle_tail;
    if (adm->idle_tail != NULL)
        adm->idle_tail->inext = e;
    else
        adm->idle_head = e;
    adm->idle_tail = e;
}

static void table_remove(struct hub_net_admission *adm, struct entry *e)
{
    idle_unlink(adm, e);
    struct entry **pp = &adm->buckets[key_bucket(adm, &e->key)];
    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    adm->tracked--;
    free(e);
}

static void refill(const struct hub_net_admission *adm, struct entry *e, int64_t now)
{
    if (adm->rate == 0 || now <= e->refill_ms)
        return;
    uint64_t elapsed = (uint64_t)(now - e->refill_ms);
    uint64_t missing = adm->cap_tokens - e->tokens;
    /* elapsed * rate may overflow after a long idle time: compare by division. */
    if (elapsed >= missing / adm->rate + 1)
        e->tokens = adm->cap_tokens;
    else
        e->tokens += elapsed * adm->rate;
    if (e->tokens > adm->cap_tokens)
        e->tokens = adm->cap_tokens;
    e->refill_ms = now;
}

/* An idle entry with a full bucket is what a new address would get, unless
 * it still owes its next log line a count of suppressed refusals (kept for
 * SUPPRESSED_KEEP_MS, then not worth the memory). */
static bool stateless(const struct hub_net_admission *adm, const struct entry *e, int64_t now)
{
    if (e->open != 0 || (adm->rate != 0 && e->tokens < adm->cap_tokens))
        return false;
    return e->suppressed == 0 || now - e->last_log_ms >= SUPPRESSED_KEEP_MS;
}

static void sweep(struct hub_net_admission *adm, int64_t now)
{
    for (int i = 0; i < SWEEP_PER_CALL && adm->idle_head != NULL; i++) {
        struct entry *e = adm->idle_head;
        refill(adm, e, now);
        if (!stateless(adm, e, now))
            break;
        table_remove(adm, e);
    }
}

static struct entry *table_add(struct hub_net_admission *adm, const struct addr_key *k, int64_t now)
{
    if (adm->tracked >= adm->max_tracked) {
        if (adm->idle_head == NULL)
            return NULL;
        table_remove(adm, adm->idle_head);
    }
    struct entry *e = calloc(1, sizeof(*e));
    if (e == NULL)
        return NULL;
    e->key = *k;
    e->tokens = adm->cap_tokens;
    e->refill_ms = now;
    e->last_log_ms = NEVER;
    size_t b = key_bucket(adm, k);
    e->hnext = adm->buckets[b];
    adm->buckets[b] = e;
    adm->tracked++;
    idle_append(adm, e);
    return e;
}

/* ---- life ----------------------------------------------------------------- */

static void register_metrics(struct hub_net_admission *adm, struct hub_metrics *m)
{
    char labels[HUB_METRICS_LABELS_MAX];
    for (int t = 0; t < HUB_NET_TRANSPORT__COUNT; t++) {
        snprintf(labels, sizeof(labels), "transport=\"%s\"", transport_names[t]);
        adm->m_open[t] = hub_metrics_gauge_get0(
            m, "hubd_connections", "Open connections (TLS handshake included) by transport.",
            labels);
        adm->m_accepted[t] =
            hub_metrics_counter_get0(m, "hubd_connections_accepted_total",
                                     "Connections admitted at accept time, by transport.", labels);
    }
    for (int t = 0; t < HUB_NET_TRANSPORT__COUNT; t++) {
        for (int r = 1; r < HUB_NET_ADMIT__COUNT; r++) {
            snprintf(labels, sizeof(labels), "transport=\"%s\",reason=\"%s\"", transport_names[t],
                     hub_net_admit_name((enum hub_net_admit)r));
            adm->m_refused[t][r] = hub_metrics_counter_get0(
                m, "hubd_connections_refused_total",
                "Connections refused at accept time (before TLS), by transport and reason.",
                labels);
        }
    }
}

int hub_net_admission_new(const struct hub_net_admission_opts *opts,
                          struct hub_net_admission **out_new, struct hub_err *err)
{
    struct hub_net_admission *adm = calloc(1, sizeof(*adm));
    if (adm == NULL)
        return HUB_ERR(err, HUB_E_NOMEM, "no memory for connection admission");
    adm->max_connections = opts->max_connections;
    adm->max_per_ip = opts->max_per_ip;
    adm->rate = opts->rate_per_ip;
    uint64_t burst = opts->burst_per_ip != 0 ? opts->burst_per_ip
                                             : (opts->rate_per_ip > 0 ? opts->rate_per_ip : 1);
    adm->cap_tokens = burst * MILLI;
    adm->max_tracked = opts->max_tracked;
    if (adm->max_tracked == 0)
        adm->max_tracked = opts->max_connections > 0
                               ? opts->max_connections + HUB_NET_ADMISSION_TRACK_SPARE
                               : 65536;
    adm->now_ms = opts->now_ms != NULL ? opts->now_ms : monotonic_ms;
    adm->now_ctx = opts->now_ctx;
    size_t nb = 16;
    while (nb < adm->max_tracked && nb < BUCKETS_MAX)
        nb *= 2;
    adm->buckets = calloc(nb, sizeof(*adm->buckets));
    if (adm->buckets == NULL) {
        free(adm);
        return HUB_ERR(err, HUB_E_NOMEM, "no memory for connection admission");
    }
    adm->bucket_mask = nb - 1;
    int rc = hub_random_bytes((unsigned char *)adm->hash_key, sizeof(adm->hash_key), err);
    if (rc != 0) {
        free(adm->buckets);
        free(adm);
        return rc;
    }
    pthread_mutex_init(&adm->mu, NULL);
    adm->log_window_ms = NEVER;
    atomic_init(&adm->open, 0);
    atomic_init(&adm->admitted, 0);
    atomic_init(&adm->log_lines, 0);
    for (int t = 0; t < HUB_NET_TRANSPORT__COUNT; t++) {
        atomic_init(&adm->open_by_transport[t], 0);
        adm->bindings[t] = (struct binding){.adm = adm, .t = (enum hub_net_transport)t};
    }
    for (int r = 0; r < HUB_NET_ADMIT__COUNT; r++)
        atomic_init(&adm->refused[r], 0);
    if (opts->metrics != NULL)
        register_metrics(adm, opts->metrics);
    *out_new = adm;
    return 0;
}

void hub_net_admission_free(struct hub_net_admission *adm)
{
    if (adm == NULL)
        return;
    for (size_t i = 0; i <= adm->bucket_mask; i++) {
        for (struct entry *e = adm->buckets[i], *next; e != NULL; e = next) {
            next = e->hnext;
            free(e);
        }
    }
    free(adm->buckets);
    pthread_mutex_destroy(&adm->mu);
    free(adm);
}

/* ---- the decision --------------------------------------------------------- */

struct log_plan {
    bool write;
    uint64_t suppressed, dropped;
};

/* Per-address (e may be NULL) and global log limits. Under mu. */
static struct log_plan plan_log(struct hub_net_admission *adm, struct entry *e, int64_t now)
{
    struct log_plan p = {0};
    if (e != NULL) {
        if (e->last_log_ms != NEVER && now - e->last_log_ms < 1000) {
            e->suppressed++;
            return p;
        }
        p.suppressed = e->suppressed;
        e->suppressed = 0;
        e->last_log_ms = now;
    }
    if (adm->log_window_ms == NEVER || now - adm->log_window_ms >= 1000) {
        adm->log_window_ms = now;
        adm->log_in_window = 0;
    }
    if (adm->log_in_window >= HUB_NET_ADMISSION_LOG_PER_S) {
        adm->log_dropped += 1 + p.suppressed;
        return p;
    }
    adm->log_in_window++;
    p.write = true;
    p.dropped = adm->log_dropped;
    adm->log_dropped = 0;
    return p;
}

static size_t limit_of(const struct hub_net_admission *adm, enum hub_net_admit a)
{
    switch (a) {
    case HUB_NET_ADMIT_CONN_RATE_PER_IP:
        return (size_t)adm->rate;
    case HUB_NET_ADMIT_CONN_CAP_PER_IP:
        return adm->max_per_ip;
    case HUB_NET_ADMIT_CONN_CAP_GLOBAL:
        return adm->max_connections;
    default:
        return 0;
    }
}

static void log_refusal(struct hub_net_admission *adm, enum hub_net_transport t,
                        const struct sockaddr *sa, socklen_t salen, enum hub_net_admit a,
                        const struct log_plan *p)
{
    char peer[64];
    format_peer(sa, salen, peer, sizeof(peer));
    struct hub_log_line line;
    hub_log_begin(&line, HUB_LOG_WARN, "conn_refused");
    hub_log_str(&line, "transport", hub_net_transport_name(t));
    hub_log_str(&line, "peer", peer);
    hub_log_str(&line, "reason", hub_net_admit_name(a));
    hub_log_uint(&line, "limit", (unsigned long long)limit_of(adm, a));
    if (p->suppressed > 0)
        hub_log_uint(&line, "suppressed", (unsigned long long)p->suppressed);
    if (p->dropped > 0)
        hub_log_uint(&line, "suppressed_other", (unsigned long long)p->dropped);
    hub_log_end(&line);
    atomic_fetch_add_explicit(&adm->log_lines, 1, memory_order_relaxed);
}

/* Fills ticket->e / held on admission. */
static enum hub_net_admit admit_into(struct hub_net_admission *adm, enum hub_net_transport t,
                                     const struct sockaddr *sa, socklen_t salen,
                                     struct hub_net_admission_ticket *ticket)
{
    struct addr_key key;
    bool is_ip = key_from(sa, salen, &key) == 0;
    int64_t now = adm->now_ms(adm->now_ctx);
    enum hub_net_admit a = HUB_NET_ADMIT_OK;
    struct entry *e = NULL;

    pthread_mutex_lock(&adm->mu);
    sweep(adm, now);
    if (is_ip) {
        e = table_find(adm, &key);
        if (e == NULL)
            e = table_add(adm, &key, now);
        if (e == NULL)
            a = HUB_NET_ADMIT_CONN_CAP_GLOBAL; /* every tracked address is busy */
    }
    if (e != NULL) {
        refill(adm, e, now);
        if (adm->rate > 0 && e->tokens < MILLI) {
            a = HUB_NET_ADMIT_CONN_RATE_PER_IP;
        } else {
            /* The attempt costs a token even if a cap refuses it: a client
             * hammering a full hub is still a client hammering. */
            if (adm->rate > 0)
                e->tokens -= MILLI;
            if (adm->max_per_ip > 0 && e->open >= adm->max_per_ip)
                a = HUB_NET_ADMIT_CONN_CAP_PER_IP;
        }
    }
    if (a == HUB_NET_ADMIT_OK && adm->max_connections > 0 &&
        atomic_load_explicit(&adm->open, memory_order_relaxed) >= adm->max_connections)
        a = HUB_NET_ADMIT_CONN_CAP_GLOBAL;

    struct log_plan plan = {0};
    if (a == HUB_NET_ADMIT_OK) {
        if (e != NULL && e->open++ == 0)
            idle_unlink(adm, e);
        atomic_fetch_add_explicit(&adm->open, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&adm->open_by_transport[t], 1, memory_order_relaxed);
        ticket->adm = adm;
        ticket->e = e;
        ticket->t = t;
        ticket->held = true;
    } else {
        if (e != NULL && e->open == 0) { /* recently refused: forget it last */
            idle_unlink(adm, e);
            idle_append(adm, e);
        }
        plan = plan_log(adm, e, now);
    }
    pthread_mutex_unlock(&adm->mu);

    if (a == HUB_NET_ADMIT_OK) {
        atomic_fetch_add_explicit(&adm->admitted, 1, memory_order_relaxed);
        hub_metrics_gauge_add(adm->m_open[t], 1);
        hub_metrics_counter_add(adm->m_accepted[t], 1);
    } else {
        atomic_fetch_add_explicit(&adm->refused[a], 1, memory_order_relaxed);
        hub_metrics_counter_add(adm->m_refused[t][a], 1);
        if (plan.write)
            log_refusal(adm, t, sa, salen, a, &plan);
    }
    return a;
}

enum hub_net_admit hub_net_admission_admit(struct hub_net_admission *adm, enum hub_net_transport t,
                                           const struct sockaddr *sa, socklen_t salen,
                                           struct hub_net_admission_ticket **ticket_out)
{
    *ticket_out = NULL;
    if ((unsigned)t >= HUB_NET_TRANSPORT__COUNT)
        t = HUB_NET_TRANSPORT_MQTT;
    struct hub_net_admission_ticket *ticket = calloc(1, sizeof(*ticket));
    if (ticket == NULL) {
        /* No memory for 40 bytes: this connection would not get far anyway. */
        atomic_fetch_add_explicit(&adm->refused[HUB_NET_ADMIT_CONN_CAP_GLOBAL], 1,
                                  memory_order_relaxed);
        hub_metrics_counter_add(adm->m_refused[t][HUB_NET_ADMIT_CONN_CAP_GLOBAL], 1);
        return HUB_NET_ADMIT_CONN_CAP_GLOBAL;
    }
    ticket->refs = 1;
    enum hub_net_admit a = admit_into(adm, t, sa, salen, ticket);
    if (a != HUB_NET_ADMIT_OK) {
        free(ticket);
        return a;
    }
    *ticket_out = ticket;
    return a;
}

/* Gives the counts back (once: `held` guards it). */
static void give_back(struct hub_net_admission_ticket *ticket)
{
    if (!ticket->held)
        return;
    ticket->held = false;
    struct hub_net_admission *adm = ticket->adm;
    int64_t now = adm->now_ms(adm->now_ctx);
    pthread_mutex_lock(&adm->mu);
    struct entry *e = ticket->e;
    if (e != NULL && --e->open == 0) {
        refill(adm, e, now);
        if (stateless(adm, e, now))
            table_remove(adm, e);
        else
            idle_append(adm, e);
    }
    ticket->e = NULL;
    atomic_fetch_sub_explicit(&adm->open, 1, memory_order_relaxed);
    atomic_fetch_sub_explicit(&adm->open_by_transport[ticket->t], 1, memory_order_relaxed);
    pthread_mutex_unlock(&adm->mu);
    hub_metrics_gauge_add(adm->m_open[ticket->t], -1);
}

static void ticket_unref(struct hub_net_admission_ticket *ticket)
{
    if (--ticket->refs == 0)
        free(ticket);
}

void hub_net_admission_release(struct hub_net_admission_ticket *ticket)
{
    if (ticket == NULL)
        return;
    give_back(ticket);
    ticket_unref(ticket);
}

void hub_net_admission_refuse_close(int fd)
{
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close(fd);
}

/* ---- OpenSSL glue --------------------------------------------------------- */

static int g_ssl_idx = -1, g_ctx_idx = -1;
static pthread_once_t g_idx_once = PTHREAD_ONCE_INIT;

/* OpenSSL calls this from SSL_free for every SSL (ptr NULL when unset). */
static void on_ssl_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    (void)parent;
    (void)ad;
    (void)idx;
    (void)argl;
    (void)argp;
    struct hub_net_admission_ticket *ticket = ptr;
    if (ticket == NULL)
        return;
    ticket->ssl_gone = true;
    give_back(ticket);
    ticket_unref(ticket);
}

static void idx_init(void)
{
    g_ssl_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, on_ssl_free);
    g_ctx_idx = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

static int indexes(void)
{
    pthread_once(&g_idx_once, idx_init);
    return g_ssl_idx >= 0 && g_ctx_idx >= 0 ? 0 : -1;
}

void hub_net_admission_ticket_bind_ssl(struct hub_net_admission_ticket *ticket, SSL *ssl)
{
    if (ticket == NULL)
        return;
    if (ssl == NULL || indexes() != 0 || SSL_set_ex_data(ssl, g_ssl_idx, ticket) != 1)
        hub_net_admission_release(ticket);
}

int hub_net_admission_ctx_set(SSL_CTX *ctx, struct hub_net_admission *adm, enum hub_net_transport t,
                              struct hub_err *err)
{
    if ((unsigned)t >= HUB_NET_TRANSPORT__COUNT)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "unknown transport %d", (int)t);
    if (indexes() != 0 ||
        SSL_CTX_set_ex_data(ctx, g_ctx_idx, adm != NULL ? &adm->bindings[t] : NULL) != 1)
        return HUB_ERR(err, HUB_E_CRYPTO, "cannot attach connection admission to the TLS context");
    return 0;
}

static struct binding *binding_of(SSL_CTX *ctx)
{
    if (ctx == NULL || indexes() != 0)
        return NULL;
    return SSL_CTX_get_ex_data(ctx, g_ctx_idx);
}

int hub_net_admission_accept(SSL_CTX *ctx, const struct sockaddr *sa, socklen_t salen,
                             struct hub_net_admission_ticket **ticket_out)
{
    *ticket_out = NULL;
    struct binding *b = binding_of(ctx);
    if (b == NULL)
        return 0;
    return hub_net_admission_admit(b->adm, b->t, sa, salen, ticket_out) == HUB_NET_ADMIT_OK ? 0
                                                                                            : -1;
}

static void on_check(evutil_socket_t unused_fd, short what, void *arg)
{
    (void)unused_fd;
    (void)what;
    struct hub_net_admission_ticket *ticket = arg;
    event_free(ticket->ev);
    ticket->ev = NULL;
    if (!ticket->ssl_gone) {
        evutil_socket_t fd = bufferevent_getfd(ticket->bev);
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);
        /* No fd or no peer (reset already): nothing to count; evhttp will
         * notice the dead socket by itself. */
        if (fd >= 0 && getpeername(fd, (struct sockaddr *)&ss, &len) == 0 &&
            admit_into(ticket->adm, ticket->t, (struct sockaddr *)&ss, len, ticket) !=
                HUB_NET_ADMIT_OK) {
            /* evhttp owns the connection: end the socket under it; the
             * handshake then reads EOF and evhttp frees its connection. */
            struct linger lg = {.l_onoff = 1, .l_linger = 0};
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
            shutdown(fd, SHUT_RDWR);
        }
    }
    ticket_unref(ticket);
}

int hub_net_admission_check_later(struct event_base *base, struct bufferevent *bev, SSL *ssl)
{
    struct binding *b = binding_of(SSL_get_SSL_CTX(ssl));
    if (b == NULL)
        return 0;
    struct hub_net_admission_ticket *ticket = calloc(1, sizeof(*ticket));
    if (ticket == NULL)
        return HUB_E_NOMEM;
    ticket->adm = b->adm;
    ticket->t = b->t;
    ticket->bev = bev;
    ticket->refs = 2; /* the pending check and the SSL */
    ticket->ev = event_new(base, -1, 0, on_check, ticket);
    if (ticket->ev == NULL || SSL_set_ex_data(ssl, g_ssl_idx, ticket) != 1) {
        if (ticket->ev != NULL)
            event_free(ticket->ev);
        free(ticket);
        return HUB_E_NOMEM;
    }
    event_active(ticket->ev, EV_TIMEOUT, 1);
    return 0;
}

/* ---- observation ---------------------------------------------------------- */

void hub_net_admission_stats_get(struct hub_net_admission *adm, struct hub_net_admission_stats *out)
{
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&adm->mu);
    out->tracked = adm->tracked;
    pthread_mutex_unlock(&adm->mu);
    out->open = atomic_load_explicit(&adm->open, memory_order_relaxed);
    for (int t = 0; t < HUB_NET_TRANSPORT__COUNT; t++)
        out->open_by_transport[t] =
            atomic_load_explicit(&adm->open_by_transport[t], memory_order_relaxed);
    out->admitted = atomic_load_explicit(&adm->admitted, memory_order_relaxed);
    for (int r = 0; r < HUB_NET_ADMIT__COUNT; r++)
        out->refused[r] = atomic_load_explicit(&adm->refused[r], memory_order_relaxed);
    out->log_lines = atomic_load_explicit(&adm->log_lines, memory_order_relaxed);
}

size_t hub_net_admission_open_from(struct hub_net_admission *adm, const struct sockaddr *sa,
                                   socklen_t salen)
{
    struct addr_key key;
    if (key_from(sa, salen, &key) != 0)
        return 0;
    pthread_mutex_lock(&adm->mu);
    struct entry *e = table_find(adm, &key);
    size_t n = e != NULL ? e->open : 0;
    pthread_mutex_unlock(&adm->mu);
    return n;
}
