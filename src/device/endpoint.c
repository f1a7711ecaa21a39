/*
 * device: the endpoint-wide object. Counters, the directory, cross-thread
 * hand-off to a connection's worker, and the registry observer (kick on
 * device disable/delete, re-validate every CA connection on a CA change,
 * push desired-property changes to a subscribed device).
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "common/log.h"
#include "device/device_int.h"
#include "net/net.h"
#include "registry/registry.h"

static int64_t real_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t hub_device__now_ms(const struct hub_device_endpoint *ep)
{
    return ep->env.now_ms(); /* always set: endpoint_new fills the default */
}

void hub_device__count(struct hub_device_endpoint *ep, enum hub_device_reason r)
{
    if ((unsigned)r < HUB_DEVICE_R__COUNT)
        atomic_fetch_add_explicit(&ep->counters[r], 1, memory_order_relaxed);
}

uint64_t hub_device_reason_count(const struct hub_device_endpoint *ep,
                                 enum hub_device_reason reason)
{
    if ((unsigned)reason >= HUB_DEVICE_R__COUNT)
        return 0;
    return atomic_load_explicit(&((struct hub_device_endpoint *)ep)->counters[reason],
                                memory_order_relaxed);
}

size_t hub_device_live_count(struct hub_device_endpoint *ep)
{
    return hub_device__dir_live_count(ep->dir);
}

static void dir_ref(void *h)
{
    hub_device__conn_ref(h);
}

static void dir_unref(void *h)
{
    hub_device__conn_unref(h);
}

int hub_device__post(struct hub_device_endpoint *ep, size_t index, void (*fn)(void *arg), void *arg)
{
    int rc = -1;
    if (index >= ep->slot_count)
        return -1;
    /* Under the lock so a server that finishes draining (and whose worker
     * may then stop turning) cannot be handed work after it said goodbye. */
    pthread_mutex_lock(&ep->mu);
    if (ep->slots[index].server != NULL &&
        hub_net_worker_call(ep->slots[index].worker, fn, arg) == 0)
        rc = 0;
    pthread_mutex_unlock(&ep->mu);
    return rc;
}

/* ---- kick and C2D notify ------------------------------------------------- */

struct kick_job {
    struct hub_device_conn *conn; /* referenced */
    enum hub_device_reason reason;
};

static void on_kick(void *arg)
{
    struct kick_job *job = arg;
    hub_device__conn_close(job->conn, job->reason, NULL);
    hub_device__conn_unref(job->conn);
    free(job);
}

void hub_device__kick_conn(struct hub_device_endpoint *ep, struct hub_device_conn *c,
                           enum hub_device_reason reason)
{
    struct kick_job *job = malloc(sizeof(*job));
    if (job != NULL) {
        job->conn = c;
        job->reason = reason;
        if (hub_device__post(ep, c->worker_index, on_kick, job) == 0)
            return;
        free(job);
    }
    hub_device__conn_unref(c);
}

void hub_device_kick(struct hub_device_endpoint *ep, const char *device_id,
                     enum hub_device_reason reason)
{
    struct hub_device_conn *c = hub_device__dir_get1(ep->dir, device_id);
    if (c != NULL)
        hub_device__kick_conn(ep, c, reason);
}

static void on_c2d_notify(void *arg)
{
    struct hub_device_conn *c = arg;
    hub_device__c2d_pump(c);
    hub_device__conn_unref(c);
}

void hub_device_c2d_notify(struct hub_device_endpoint *ep, const char *device_id)
{
    struct hub_device_conn *c = hub_device__dir_get1(ep->dir, device_id);
    if (c == NULL)
        return;
    if (hub_device__post(ep, c->worker_index, on_c2d_notify, c) != 0)
        hub_device__conn_unref(c);
}

/* ---- expired CRLs ---------------------------------------------------------- */

/* Process-wide: the warning is about the hub's configuration, not about one
 * endpoint object. 0 = never warned. */
static _Atomic int64_t crl_warned_at_s;

void hub_device__crl_expiry_warn(struct hub_device_endpoint *ep,
                                 const struct hub_registry_trust *trust, bool force)
{
    if (trust == NULL || hub_registry_trust_crl_count(trust) == 0)
        return;
    int64_t now = hub_device__now_ms(ep) / 1000;
    int64_t last = atomic_load(&crl_warned_at_s);
    if (!force && last != 0 && now - last < HUB_DEVICE_CRL_WARN_INTERVAL_S)
        return;
    char names[HUB_LOG_VALUE_MAX];
    size_t n = hub_registry_trust_crl_expired(trust, now, names, sizeof(names));
    if (n == 0)
        return;
    /* One thread wins the slot; the others skip this round. */
    if (!force && !atomic_compare_exchange_strong(&crl_warned_at_s, &last, now))
        return;
    if (force)
        atomic_store(&crl_warned_at_s, now);
    struct hub_log_line line;
    hub_log_begin(&line, HUB_LOG_WARN, "crl_expired");
    hub_log_str(&line, "ca", names);
    hub_log_uint(&line, "count", (unsigned long long)n);
    hub_log_str(&line, "detail",
                "CRL past its nextUpdate; still enforced: upload a fresh CRL (hubctl ca crl)");
    hub_log_end(&line);
}

/* A day at most between wake-ups, so a clock that jumps does not leave the
 * timer far in the future; each wake-up re-reads the CRLs and re-arms. */
#define CRL_TIMER_MAX_S 86400

static void on_crl_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct hub_device_server *s = arg;
    struct hub_registry_trust *trust = NULL;
    struct hub_err err = {0};
    if (hub_registry_trust_get1(s->ep->env.registry, &trust, &err) != 0) {
        hub_log_kv(HUB_LOG_WARN, "crl_timer_failed", "detail", err.msg, NULL);
        return; /* the next CA change or handshake re-arms it */
    }
    /* A CRL just passed its nextUpdate: a new fact, said at once. */
    hub_device__crl_expiry_warn(s->ep, trust, true);
    hub_device__crl_timer_arm(s, trust);
    hub_registry_trust_release(trust);
}

void hub_device__crl_timer_arm(struct hub_device_server *s, const struct hub_registry_trust *trust)
{
    if (s->worker->index != 0 || trust == NULL)
        return;
    if (s->crl_timer == NULL) {
        s->crl_timer = evtimer_new(s->worker->base, on_crl_timer, s);
        if (s->crl_timer == NULL)
            return; /* out of memory: handshakes still warn */
    }
    int64_t now = hub_device__now_ms(s->ep) / 1000;
    int64_t next = hub_registry_trust_crl_next_expiry(trust, now);
    if (next == 0) {
        evtimer_del(s->crl_timer);
        return;
    }
    /* nextUpdate itself is still valid: wake one second after it. */
    int64_t delay = next - now + 1;
    struct timeval tv = {.tv_sec = (time_t)(delay < CRL_TIMER_MAX_S ? delay : CRL_TIMER_MAX_S)};
    evtimer_add(s->crl_timer, &tv);
}

/* ---- registry observer --------------------------------------------------- */

/* Runs on each worker: one snapshot, every live CA connection re-checked. */
static void on_ca_changed(void *arg)
{
    struct hub_device_slot *slot = arg;
    struct hub_device_server *s = slot->server; /* only this thread clears it */
    if (s == NULL)
        return;
    struct hub_registry_trust *trust = NULL;
    struct hub_err err = {0};
    if (hub_registry_trust_get1(s->ep->env.registry, &trust, &err) != 0) {
        /* Keep connections: a store hiccup must not disconnect the fleet. */
        struct hub_log_line line;
        hub_log_begin(&line, HUB_LOG_WARN, "ca_recheck_failed");
        hub_log_err(&line, &err);
        hub_log_end(&line);
        return;
    }
    struct hub_device_conn *c = s->conns;
    while (c != NULL) {
        struct hub_device_conn *next = c->next;
        hub_device__conn_ref(c);
        hub_device__conn_recheck(c, trust);
        /* close unlinks c; `next` stays valid because closes only unlink
         * the connection being closed. */
        hub_device__conn_unref(c);
        c = next;
    }
    if (slot == &s->ep->slots[0]) { /* once per change, not once per worker */
        hub_device__crl_expiry_warn(s->ep, trust, true);
        hub_device__crl_timer_arm(s, trust);
    }
    hub_registry_trust_release(trust);
}

static void on_desired_changed(void *arg)
{
    struct hub_device_conn *c = arg;
    hub_device__twin_desired_sync(c);
    hub_device__conn_unref(c);
}

/* Only a device listening for desired notifications needs its worker. */
static void desired_changed(struct hub_device_endpoint *ep, const char *id)
{
    struct hub_device_conn *c =
        hub_device__dir_get1_subscribed(ep->dir, id, HUB_DEVICE_SUB_TWIN_DESIRED);
    if (c != NULL && hub_device__post(ep, c->worker_index, on_desired_changed, c) != 0)
        hub_device__conn_unref(c);
}

static void on_registry_change(void *ctx, enum hub_registry_change what, const char *id)
{
    struct hub_device_endpoint *ep = ctx;
    switch (what) {
    case HUB_REGISTRY_DEVICE_DISABLED:
        hub_device_kick(ep, id, HUB_DEVICE_R_DEVICE_DISABLED);
        break;
    case HUB_REGISTRY_DEVICE_DELETED:
        /* The session belongs to the identity that was deleted: a device
         * created again under the same id is a new one (session-present 0),
         * and a hub with device churn must not keep sessions forever. The
         * kick takes its reference first; the close then frees the entry. */
        hub_device_kick(ep, id, HUB_DEVICE_R_DEVICE_DELETED);
        hub_device__dir_session_drop(ep->dir, id);
        break;
    case HUB_REGISTRY_CA_CHANGED:
        for (size_t i = 0; i < ep->slot_count; i++)
            hub_device__post(ep, i, on_ca_changed, &ep->slots[i]);
        break;
    case HUB_REGISTRY_TWIN_DESIRED_CHANGED:
        desired_changed(ep, id);
        break;
    case HUB_REGISTRY_DEVICE_UPDATED:
        break;
    }
}

/* ---- life ---------------------------------------------------------------- */

int hub_device_endpoint_new(const struct hub_device_env *env, struct hub_net_pool *pool,
                            struct hub_device_endpoint **out_new, struct hub_err *err)
{
    if (env == NULL || env->registry == NULL || pool == NULL || pool->count == 0)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "device endpoint needs a registry and workers");
    if (env->hostname_count == 0)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "device endpoint needs at least one host name");
    struct hub_device_endpoint *ep = calloc(1, sizeof(*ep));
    if (ep == NULL)
        return HUB_ERR(err, HUB_E_NOMEM, "no memory for the device endpoint");
    ep->env = *env;
    if (ep->env.max_packet_bytes == 0)
        ep->env.max_packet_bytes = HUB_DEVICE_DEFAULT_MAX_PACKET;
    if (ep->env.tls_handshake_timeout_ms <= 0)
        ep->env.tls_handshake_timeout_ms = HUB_DEVICE_DEFAULT_TIMEOUT_MS;
    if (ep->env.connect_timeout_ms <= 0)
        ep->env.connect_timeout_ms = HUB_DEVICE_DEFAULT_TIMEOUT_MS;
    if (ep->env.max_inflight_telemetry == 0)
        ep->env.max_inflight_telemetry = HUB_DEVICE_DEFAULT_INFLIGHT;
    if (ep->env.c2d_window == 0 || ep->env.c2d_window > HUB_DEVICE_C2D_WINDOW_MAX)
        ep->env.c2d_window = HUB_DEVICE_C2D_WINDOW_MAX;
    if (ep->env.activity_interval_s <= 0)
        ep->env.activity_interval_s = HUB_DEVICE_DEFAULT_ACTIVITY_S;
    if (ep->env.now_ms == NULL)
        ep->env.now_ms = real_now_ms;
    ep->sas_cfg.hosts = env->hostnames;
    ep->sas_cfg.host_count = env->hostname_count;
    ep->sas_cfg.max_ttl_s = 0; /* Azure's behaviour: no limit */
    for (size_t i = 0; i < HUB_DEVICE_R__COUNT; i++)
        atomic_init(&ep->counters[i], 0);
    ep->slots = calloc(pool->count, sizeof(*ep->slots));
    if (ep->slots == NULL) {
        free(ep);
        return HUB_ERR(err, HUB_E_NOMEM, "no memory for the device endpoint");
    }
    ep->slot_count = pool->count;
    for (size_t i = 0; i < pool->count; i++)
        ep->slots[i].worker = &pool->workers[i];
    static const struct hub_device_dir_ops ops = {.ref = dir_ref, .unref = dir_unref};
    int rc = hub_device__dir_new(&ops, &ep->dir, err);
    if (rc != 0) {
        free(ep->slots);
        free(ep);
        return rc;
    }
    pthread_mutex_init(&ep->mu, NULL);
    pthread_mutex_init(&ep->wait_mu, NULL);
    atomic_init(&ep->method_seq, 0);
    hub_registry_observer_set(ep->env.registry, on_registry_change, ep);
    *out_new = ep;
    return 0;
}

void hub_device_endpoint_free(struct hub_device_endpoint *ep)
{
    if (ep == NULL)
        return;
    /* Waits for a running callback; none starts afterwards. */
    hub_registry_observer_set(ep->env.registry, NULL, NULL);
    hub_device__dir_free(ep->dir);
    pthread_mutex_destroy(&ep->mu);
    pthread_mutex_destroy(&ep->wait_mu);
    free(ep->slots);
    free(ep);
}
