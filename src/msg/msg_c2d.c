/*
 * msg: cloud-to-device queues and delivery feedback.
 *
 * Every operation is one durable store transaction (store.h, "cloud-to-device
 * queue"); this file adds the hub's decisions: times from the injected clock,
 * TTL defaults and clamping, random lock tokens and message ids, Azure's
 * limits, counters, and a sweeper thread that expires messages and ages out
 * feedback.
 *
 * Delivery lifecycle of one message:
 *
 *   enqueue -> queued --deliver--> locked (token, delivery_count+1)
 *     locked --complete--> gone, feedback Success      (ack positive/full)
 *     locked --reject----> gone, feedback Rejected     (ack negative/full)
 *     locked --abandon / release / lock expiry--> queued again
 *     queued, delivery_count == max --deliver--> gone, DeliveryCountExceeded
 *     any state, expiry reached --sweep--> gone, feedback Expired
 *     any state --purge--> gone, feedback Purged
 */
#include "msg/msg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msg/msg_int.h"

struct hub_msg_c2d {
    struct hub_store *store;
    size_t max_per_device;
    int64_t default_ttl_ms;
    int64_t max_ttl_ms;
    int64_t max_delivery_count;
    int64_t lock_ms;
    int64_t feedback_ttl_ms;
    int64_t sweep_interval_ms;
    int64_t (*now_ms)(void *ctx);
    void *now_ctx;

    pthread_mutex_t mu;
    pthread_cond_t cv; /* wakes the sweeper to stop */
    bool stopping;     /* guarded by mu */
    bool has_sweeper;
    pthread_t sweeper;
    struct hub_msg_c2d_stats stats; /* guarded by mu */
};

static int64_t now_ms(const struct hub_msg_c2d *q)
{
    return q->now_ms(q->now_ctx);
}

/* Adds `n` to the counter at `field` under the lock. */
#define COUNT(q, field, n)                                                                         \
    do {                                                                                           \
        pthread_mutex_lock(&(q)->mu);                                                              \
        (q)->stats.field += (n);                                                                   \
        pthread_mutex_unlock(&(q)->mu);                                                            \
    } while (0)

int hub_msg_c2d_enqueue(struct hub_msg_c2d *q, const struct hub_c2d_msg *msg, int64_t *seq_out,
                        char *message_id_out, struct hub_err *err)
{
    if (msg == NULL)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "C2D message is NULL");
    struct hub_c2d_msg m = *msg;
    char generated[HUB_MSG__UUID_SIZE];
    int rc;
    if (m.sys[HUB_SYSPROP_MESSAGE_ID] == NULL) {
        if ((rc = hub_msg__uuid(generated, err)) != 0)
            return rc;
        m.sys[HUB_SYSPROP_MESSAGE_ID] = generated;
    }
    int64_t now = now_ms(q);
    m.enqueued_ms = now;
    if (m.expiry_ms == 0)
        m.expiry_ms = now + q->default_ttl_ms;
    else if (m.expiry_ms <= now)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "C2D message for '%.128s' has already expired",
                       m.device_id);
    else if (m.expiry_ms - now > q->max_ttl_ms)
        m.expiry_ms = now + q->max_ttl_ms;
    m.delivery_count = 0;
    m.lock_token[0] = '\0';
    m.lock_expiry_ms = 0;
    int64_t seq = 0;
    rc = hub_store_c2d_enqueue(q->store, &m, q->max_per_device, &seq, err);
    if (rc == HUB_E_LIMIT)
        COUNT(q, refused_limit, 1);
    if (rc != 0)
        return rc;
    COUNT(q, enqueued, 1);
    if (seq_out != NULL)
        *seq_out = seq;
    if (message_id_out != NULL)
        snprintf(message_id_out, HUB_MESSAGE_ID_SIZE, "%s", m.sys[HUB_SYSPROP_MESSAGE_ID]);
    return 0;
}

int hub_msg_c2d_deliver(struct hub_msg_c2d *q, const char *device_id, int64_t lock_ms,
                        struct hub_c2d_msg *out, struct hub_err *err)
{
    char token[HUB_MSG__UUID_SIZE];
    int rc = hub_msg__uuid(token, err);
    if (rc != 0)
        return rc;
    int64_t now = now_ms(q);
    size_t dead = 0;
    rc = hub_store_c2d_deliver(q->store, device_id, now, token,
                               now + (lock_ms > 0 ? lock_ms : q->lock_ms), q->max_delivery_count,
                               out, &dead, err);
    pthread_mutex_lock(&q->mu);
    q->stats.dead_lettered += dead;
    if (rc == 0)
        q->stats.delivered++;
    pthread_mutex_unlock(&q->mu);
    return rc;
}

int hub_msg_c2d_settle(struct hub_msg_c2d *q, const char *device_id, const char *lock_token,
                       enum hub_c2d_settle how, struct hub_err *err)
{
    int rc = hub_store_c2d_settle(q->store, device_id, lock_token, how, now_ms(q), err);
    if (rc != 0)
        return rc;
    pthread_mutex_lock(&q->mu);
    switch (how) {
    case HUB_C2D_COMPLETE:
        q->stats.completed++;
        break;
    case HUB_C2D_REJECT:
        q->stats.rejected++;
        break;
    case HUB_C2D_ABANDON:
        q->stats.abandoned++;
        break;
    }
    pthread_mutex_unlock(&q->mu);
    return 0;
}

int hub_msg_c2d_release(struct hub_msg_c2d *q, const char *device_id, size_t *released_out,
                        struct hub_err *err)
{
    return hub_store_c2d_release(q->store, device_id, released_out, err);
}

int hub_msg_c2d_purge(struct hub_msg_c2d *q, const char *device_id, size_t *purged_out,
                      struct hub_err *err)
{
    size_t n = 0;
    int rc = hub_store_c2d_purge(q->store, device_id, now_ms(q), &n, err);
    if (rc != 0)
        return rc;
    COUNT(q, purged, n);
    if (purged_out != NULL)
        *purged_out = n;
    return 0;
}

int hub_msg_c2d_count(struct hub_msg_c2d *q, const char *device_id, size_t *out,
                      struct hub_err *err)
{
    return hub_store_c2d_count(q->store, device_id, out, err);
}

int hub_msg_c2d_sweep(struct hub_msg_c2d *q, size_t *expired_out, struct hub_err *err)
{
    int64_t now = now_ms(q);
    size_t n = 0;
    int rc = hub_store_c2d_expire(q->store, now, &n, err);
    if (rc == 0)
        rc = hub_store_feedback_prune(q->store, now - q->feedback_ttl_ms, NULL, err);
    pthread_mutex_lock(&q->mu);
    q->stats.expired += n;
    if (rc != 0)
        q->stats.sweep_errors++;
    pthread_mutex_unlock(&q->mu);
    if (expired_out != NULL)
        *expired_out = n;
    return rc;
}

int hub_msg_c2d_feedback_receive1(struct hub_msg_c2d *q, size_t max,
                                  struct hub_c2d_feedback_list **out_new, char *lock_token_out,
                                  struct hub_err *err)
{
    char token[HUB_MSG__UUID_SIZE];
    int rc = hub_msg__uuid(token, err);
    if (rc != 0)
        return rc;
    int64_t now = now_ms(q);
    rc = hub_store_feedback_receive1(q->store, now, token, now + q->lock_ms, max, out_new, err);
    if (rc == 0 && lock_token_out != NULL)
        snprintf(lock_token_out, HUB_LOCK_TOKEN_SIZE, "%s", token);
    return rc;
}

int hub_msg_c2d_feedback_settle(struct hub_msg_c2d *q, const char *lock_token, bool complete,
                                struct hub_err *err)
{
    return hub_store_feedback_settle(q->store, lock_token, complete, now_ms(q), NULL, err);
}

void hub_msg_c2d_stats_get(struct hub_msg_c2d *q, struct hub_msg_c2d_stats *out)
{
    pthread_mutex_lock(&q->mu);
    *out = q->stats;
    pthread_mutex_unlock(&q->mu);
}

static void *sweeper_main(void *p)
{
    struct hub_msg_c2d *q = p;
    pthread_mutex_lock(&q->mu);
    while (!q->stopping) {
        struct timespec at = hub_msg__deadline(q->sweep_interval_ms);
        while (!q->stopping && !hub_msg__deadline_passed(&at))
            pthread_cond_timedwait(&q->cv, &q->mu, &at);
        if (q->stopping)
            break;
        pthread_mutex_unlock(&q->mu);
        hub_msg_c2d_sweep(q, NULL, NULL); /* failures are counted in sweep_errors */
        pthread_mutex_lock(&q->mu);
    }
    pthread_mutex_unlock(&q->mu);
    return NULL;
}

static int64_t or_default(int64_t v, int64_t def)
{
    return v > 0 ? v : def;
}

int hub_msg_c2d_new(struct hub_store *store, const struct hub_msg_c2d_opts *opts,
                    struct hub_msg_c2d **out_new, struct hub_err *err)
{
    if (store == NULL || out_new == NULL)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "C2D queues need a store");
    struct hub_msg_c2d_opts o = {0};
    if (opts != NULL)
        o = *opts;
    struct hub_msg_c2d *q = calloc(1, sizeof(*q));
    if (q == NULL)
        return HUB_ERR(err, HUB_E_NOMEM, "out of memory creating the C2D queues");
    q->store = store;
    q->max_per_device =
        o.max_per_device > 0 ? o.max_per_device : HUB_MSG_C2D_DEFAULT_MAX_PER_DEVICE;
    q->default_ttl_ms = or_default(o.default_ttl_ms, HUB_MSG_C2D_DEFAULT_TTL_MS);
    q->max_ttl_ms = or_default(o.max_ttl_ms, HUB_MSG_C2D_DEFAULT_MAX_TTL_MS);
    if (q->default_ttl_ms > q->max_ttl_ms)
        q->default_ttl_ms = q->max_ttl_ms;
    q->max_delivery_count =
        or_default(o.max_delivery_count, HUB_MSG_C2D_DEFAULT_MAX_DELIVERY_COUNT);
    q->lock_ms = or_default(o.lock_ms, HUB_MSG_C2D_DEFAULT_LOCK_MS);
    q->feedback_ttl_ms = or_default(o.feedback_ttl_ms, HUB_MSG_C2D_DEFAULT_FEEDBACK_TTL_MS);
    q->sweep_interval_ms =
        o.sweep_interval_ms != 0 ? o.sweep_interval_ms : HUB_MSG_C2D_DEFAULT_SWEEP_INTERVAL_MS;
    q->now_ms = o.now_ms != NULL ? o.now_ms : hub_msg__wall_ms;
    q->now_ctx = o.now_ctx;
    pthread_mutex_init(&q->mu, NULL);
    if (hub_msg__cond_init_monotonic(&q->cv) != 0) {
        pthread_mutex_destroy(&q->mu);
        free(q);
        return HUB_ERR(err, HUB_E_INTERNAL, "cannot create a condition variable");
    }
    if (q->sweep_interval_ms > 0) {
        int prc = pthread_create(&q->sweeper, NULL, sweeper_main, q);
        if (prc != 0) {
            pthread_cond_destroy(&q->cv);
            pthread_mutex_destroy(&q->mu);
            free(q);
            return HUB_ERR(err, HUB_E_INTERNAL, "cannot start the C2D sweeper: %s", strerror(prc));
        }
        q->has_sweeper = true;
    }
    *out_new = q;
    return 0;
}

void hub_msg_c2d_free(struct hub_msg_c2d *q)
{
    if (q == NULL)
        return;
    if (q->has_sweeper) {
        pthread_mutex_lock(&q->mu);
        q->stopping = true;
        pthread_cond_signal(&q->cv);
        pthread_mutex_unlock(&q->mu);
        pthread_join(q->sweeper, NULL);
    }
    pthread_cond_destroy(&q->cv);
    pthread_mutex_destroy(&q->mu);
    free(q);
}
