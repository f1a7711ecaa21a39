/*
 * msg: the telemetry log and its group commit.
 *
 * Appenders (device endpoint workers, any number of threads) copy the
 * message into a queue entry and return. One committer thread loops:
 *
 *   take every queued entry (at most max_batch) -> ONE store transaction
 *   (one fsync) -> on_durable for each, in queue order -> commit watchers
 *
 * While one batch commits, the next accumulates, so under load a batch
 * holds what arrived during one fsync: the fsync cost is shared across
 * connections without any artificial delay when the hub is idle (a lone
 * message commits at once). Queue accounting (count and bytes) is released
 * only after a batch's callbacks ran, so the bounds cover everything in
 * memory, the batch being committed included; a full queue refuses with
 * HUB_E_BUSY (the endpoint then does not acknowledge, and the device retries).
 *
 * Retention runs on the same thread between batches (one chunk of rows per
 * turn, so commits never wait behind a long delete).
 */
#include "msg/msg.h"

#include <stdlib.h>
#include <string.h>

#include "common/metrics.h"
#include "msg/msg_int.h"

struct entry {
    struct entry *next;
    struct hub_telemetry_msg msg; /* owned copy */
    size_t bytes;                 /* what it counts against max_queued_bytes */
    hub_msg_durable_cb on_durable;
    void *arg;
};

struct hub_msg_telemetry_watch {
    struct hub_msg_telemetry_watch *next;
    hub_msg_commit_cb on_commit;
    void *arg;
};

struct hub_msg_telemetry_log {
    struct hub_store *store;
    int64_t retention_ms;
    size_t max_queued;
    size_t max_queued_bytes;
    size_t max_batch;
    int64_t prune_interval_ms;
    int64_t (*now_ms)(void *ctx);
    void *now_ctx;

    pthread_t committer;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* signalled on append and on close; monotonic clock */
    /* guarded by mu */
    struct entry *head, *tail;
    bool closing;
    int64_t last_seq;
    struct hub_msg_telemetry_stats stats;

    /* Held while watchers run, so unwatch waits for a running callback. */
    pthread_mutex_t watch_mu;
    struct hub_msg_telemetry_watch *watches; /* guarded by watch_mu */

    /* committer thread only */
    struct timespec next_prune;
    struct entry **batch;
    const struct hub_telemetry_msg **batch_msgs;
    int64_t *batch_seqs;
    /* hubd_telemetry_commit_seconds in the process registry (GET /metrics):
     * how long each successful transaction took, fsync included. */
    struct hub_metrics_histogram *commit_seconds;
};

static int64_t now_ms(const struct hub_msg_telemetry_log *log)
{
    return log->now_ms(log->now_ctx);
}

static void entry_free(struct entry *e)
{
    hub_telemetry_msg_clear(&e->msg);
    free(e);
}

/* What an entry pins in memory, near enough for a bound. */
static size_t entry_bytes(const struct hub_telemetry_msg *m)
{
    return sizeof(struct entry) + m->body_len + hub_msg_props_size(m->sys, m->app, m->app_count) +
           m->app_count * (sizeof(struct hub_app_prop) + 2) + HUB_SYSPROP__COUNT;
}

int hub_msg_telemetry_append(struct hub_msg_telemetry_log *log, const struct hub_telemetry_msg *msg,
                             hub_msg_durable_cb on_durable, void *arg, struct hub_err *err)
{
    int rc = hub_telemetry_msg_check(msg, err);
    if (rc != 0)
        return rc;
    struct entry *e = calloc(1, sizeof(*e));
    if (e == NULL)
        return HUB_ERR(err, HUB_E_NOMEM, "out of memory queueing telemetry");
    if ((rc = hub_telemetry_msg_copy(&e->msg, msg, err)) != 0) {
        free(e);
        return rc;
    }
    e->msg.seq = 0;
    if (e->msg.enqueued_ms == 0)
        e->msg.enqueued_ms = now_ms(log);
    e->bytes = entry_bytes(&e->msg);
    e->on_durable = on_durable;
    e->arg = arg;

    pthread_mutex_lock(&log->mu);
    if (log->closing) {
        log->stats.refused_busy++;
        pthread_mutex_unlock(&log->mu);
        entry_free(e);
        return HUB_ERR(err, HUB_E_BUSY, "the telemetry log is closing");
    }
    /* An empty queue takes any one message, so a bound set below the largest
     * message cannot refuse it forever. */
    if (log->stats.queued > 0 && (log->stats.queued >= log->max_queued ||
                                  log->stats.queued_bytes + e->bytes > log->max_queued_bytes)) {
        size_t queued = log->stats.queued, bytes = log->stats.queued_bytes;
        log->stats.refused_busy++;
        pthread_mutex_unlock(&log->mu);
        entry_free(e);
        return HUB_ERR(err, HUB_E_BUSY,
                       "telemetry commit queue is full (%zu messages, %zu bytes waiting)", queued,
                       bytes);
    }
    if (log->tail != NULL)
        log->tail->next = e;
    else
        log->head = e;
    log->tail = e;
    log->stats.queued++;
    log->stats.queued_bytes += e->bytes;
    log->stats.accepted++;
    pthread_cond_signal(&log->cv);
    pthread_mutex_unlock(&log->mu);
    return 0;
}

/* With mu held: detaches up to max_batch entries into log->batch. */
static size_t take_batch(struct hub_msg_telemetry_log *log)
{
    size_t n = 0;
    while (log->head != NULL && n < log->max_batch) {
        struct entry *e = log->head;
        log->head = e->next;
        e->next = NULL;
        log->batch[n++] = e;
    }
    if (log->head == NULL)
        log->tail = NULL;
    return n;
}

static void notify_watchers(struct hub_msg_telemetry_log *log, int64_t last_seq)
{
    pthread_mutex_lock(&log->watch_mu);
    for (struct hub_msg_telemetry_watch *w = log->watches; w != NULL; w = w->next)
        w->on_commit(w->arg, last_seq);
    pthread_mutex_unlock(&log->watch_mu);
}

/* Without mu: commits batch[0..n), reports every entry, frees them. Returns
 * the bytes they accounted for. */
static size_t commit_batch(struct hub_msg_telemetry_log *log, size_t n)
{
    for (size_t i = 0; i < n; i++)
        log->batch_msgs[i] = &log->batch[i]->msg;
    struct hub_err err = {0};
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = hub_store_telemetry_append(log->store, log->batch_msgs, n, log->batch_seqs, &err);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (rc == 0)
        hub_metrics_histogram_observe(log->commit_seconds,
                                      (double)(t1.tv_sec - t0.tv_sec) +
                                          (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);

    pthread_mutex_lock(&log->mu);
    if (rc == 0) {
        if (log->batch_seqs[n - 1] > log->last_seq)
            log->last_seq = log->batch_seqs[n - 1];
        log->stats.committed += n;
        log->stats.commits++;
        if (n > log->stats.largest_batch)
            log->stats.largest_batch = n;
    } else {
        log->stats.failed += n;
        log->stats.failed_commits++;
    }
    int64_t last = log->last_seq;
    pthread_mutex_unlock(&log->mu);

    size_t bytes = 0;
    for (size_t i = 0; i < n; i++) {
        struct entry *e = log->batch[i];
        if (e->on_durable != NULL)
            e->on_durable(e->arg, rc, rc == 0 ? log->batch_seqs[i] : 0);
        bytes += e->bytes;
        entry_free(e);
        log->batch[i] = NULL;
    }
    if (rc == 0)
        notify_watchers(log, last);
    return bytes;
}

/* One chunk of retention; the number of rows deleted (0 on error, counted). */
static size_t prune_chunk(struct hub_msg_telemetry_log *log)
{
    size_t n = 0;
    int rc = hub_store_telemetry_prune(log->store, now_ms(log) - log->retention_ms,
                                       HUB_MSG_TELEMETRY_PRUNE_CHUNK, &n, NULL);
    pthread_mutex_lock(&log->mu);
    if (rc == 0)
        log->stats.pruned += n;
    else
        log->stats.prune_errors++;
    pthread_mutex_unlock(&log->mu);
    return rc == 0 ? n : 0;
}

static void *committer_main(void *p)
{
    struct hub_msg_telemetry_log *log = p;
    pthread_mutex_lock(&log->mu);
    for (;;) {
        bool prune_due = log->prune_interval_ms >= 0 && !log->closing &&
                         hub_msg__deadline_passed(&log->next_prune);
        if (log->head == NULL && !prune_due) {
            if (log->closing)
                break; /* drained: every accepted message has been reported */
            if (log->prune_interval_ms >= 0)
                pthread_cond_timedwait(&log->cv, &log->mu, &log->next_prune);
            else
                pthread_cond_wait(&log->cv, &log->mu);
            continue;
        }
        if (log->head != NULL) {
            size_t n = take_batch(log);
            pthread_mutex_unlock(&log->mu);
            size_t bytes = commit_batch(log, n);
            pthread_mutex_lock(&log->mu);
            log->stats.queued -= n;
            log->stats.queued_bytes -= bytes;
        }
        if (prune_due) {
            pthread_mutex_unlock(&log->mu);
            size_t n = prune_chunk(log);
            /* A full chunk means more is due: come back after the next batch. */
            log->next_prune =
                hub_msg__deadline(n == HUB_MSG_TELEMETRY_PRUNE_CHUNK ? 0 : log->prune_interval_ms);
            pthread_mutex_lock(&log->mu);
        }
    }
    pthread_mutex_unlock(&log->mu);
    return NULL;
}

static void log_free(struct hub_msg_telemetry_log *log)
{
    while (log->watches != NULL) {
        struct hub_msg_telemetry_watch *w = log->watches;
        log->watches = w->next;
        free(w);
    }
    pthread_mutex_destroy(&log->watch_mu);
    pthread_cond_destroy(&log->cv);
    pthread_mutex_destroy(&log->mu);
    free(log->batch);
    free(log->batch_msgs);
    free(log->batch_seqs);
    free(log);
}

int hub_msg_telemetry_log_open(struct hub_store *store, const struct hub_msg_telemetry_opts *opts,
                               struct hub_msg_telemetry_log **out_new, struct hub_err *err)
{
    if (store == NULL || out_new == NULL)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "telemetry log needs a store");
    struct hub_msg_telemetry_opts o = {0};
    if (opts != NULL)
        o = *opts;
    struct hub_msg_telemetry_log *log = calloc(1, sizeof(*log));
    if (log == NULL)
        return HUB_ERR(err, HUB_E_NOMEM, "out of memory opening the telemetry log");
    log->store = store;
    log->retention_ms =
        1000 * (o.retention_s > 0 ? o.retention_s : HUB_MSG_TELEMETRY_DEFAULT_RETENTION_S);
    log->max_queued = o.max_queued > 0 ? o.max_queued : HUB_MSG_TELEMETRY_DEFAULT_MAX_QUEUED;
    log->max_queued_bytes =
        o.max_queued_bytes > 0 ? o.max_queued_bytes : HUB_MSG_TELEMETRY_DEFAULT_MAX_QUEUED_BYTES;
    log->max_batch = o.max_batch > 0 ? o.max_batch : HUB_MSG_TELEMETRY_DEFAULT_MAX_BATCH;
    log->prune_interval_ms = o.prune_interval_ms != 0 ? o.prune_interval_ms
                                                      : HUB_MSG_TELEMETRY_DEFAULT_PRUNE_INTERVAL_MS;
    log->now_ms = o.now_ms != NULL ? o.now_ms : hub_msg__wall_ms;
    log->now_ctx = o.now_ctx;
    pthread_mutex_init(&log->mu, NULL);
    pthread_mutex_init(&log->watch_mu, NULL);
    if (hub_msg__cond_init_monotonic(&log->cv) != 0) {
        pthread_cond_init(&log->cv, NULL); /* so log_free can destroy it */
        log_free(log);
        return HUB_ERR(err, HUB_E_INTERNAL, "cannot create a condition variable");
    }
    log->batch = calloc(log->max_batch, sizeof(*log->batch));
    log->batch_msgs = calloc(log->max_batch, sizeof(*log->batch_msgs));
    log->batch_seqs = calloc(log->max_batch, sizeof(*log->batch_seqs));
    if (log->batch == NULL || log->batch_msgs == NULL || log->batch_seqs == NULL) {
        log_free(log);
        return HUB_ERR(err, HUB_E_NOMEM, "out of memory opening the telemetry log");
    }
    int rc = hub_store_telemetry_last_seq(store, &log->last_seq, err);
    if (rc != 0) {
        log_free(log);
        return rc;
    }
    log->next_prune = hub_msg__deadline(log->prune_interval_ms);
    log->commit_seconds = hub_metrics_histogram_get0(
        hub_metrics_default(), "hubd_telemetry_commit_seconds",
        "Duration of one telemetry group commit (one transaction and its fsync).", NULL,
        hub_metrics_latency_bounds, hub_metrics_latency_bound_count);
    int prc = pthread_create(&log->committer, NULL, committer_main, log);
    if (prc != 0) {
        log_free(log);
        return HUB_ERR(err, HUB_E_INTERNAL, "cannot start the telemetry committer: %s",
                       strerror(prc));
    }
    *out_new = log;
    return 0;
}

void hub_msg_telemetry_log_close(struct hub_msg_telemetry_log *log)
{
    if (log == NULL)
        return;
    pthread_mutex_lock(&log->mu);
    log->closing = true;
    pthread_cond_signal(&log->cv);
    pthread_mutex_unlock(&log->mu);
    pthread_join(log->committer, NULL);
    log_free(log);
}

int hub_msg_telemetry_read1(struct hub_msg_telemetry_log *log, int64_t from_seq, size_t limit,
                            const char *device_id, struct hub_telemetry_msg_list **out_new,
                            struct hub_err *err)
{
    return hub_store_telemetry_read1(log->store, from_seq, limit, device_id, out_new, err);
}

int64_t hub_msg_telemetry_last_seq(struct hub_msg_telemetry_log *log)
{
    pthread_mutex_lock(&log->mu);
    int64_t v = log->last_seq;
    pthread_mutex_unlock(&log->mu);
    return v;
}

int hub_msg_telemetry_watch(struct hub_msg_telemetry_log *log, hub_msg_commit_cb on_commit,
                            void *arg, struct hub_msg_telemetry_watch **out_new,
                            struct hub_err *err)
{
    if (on_commit == NULL)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "watch needs a callback");
    struct hub_msg_telemetry_watch *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return HUB_ERR(err, HUB_E_NOMEM, "out of memory registering a telemetry watch");
    w->on_commit = on_commit;
    w->arg = arg;
    pthread_mutex_lock(&log->watch_mu);
    w->next = log->watches;
    log->watches = w;
    pthread_mutex_unlock(&log->watch_mu);
    *out_new = w;
    return 0;
}

void hub_msg_telemetry_unwatch(struct hub_msg_telemetry_log *log,
                               struct hub_msg_telemetry_watch *watch)
{
    if (watch == NULL)
        return;
    pthread_mutex_lock(&log->watch_mu);
    for (struct hub_msg_telemetry_watch **p = &log->watches; *p != NULL; p = &(*p)->next) {
        if (*p == watch) {
            *p = watch->next;
            free(watch);
            break;
        }
    }
    pthread_mutex_unlock(&log->watch_mu);
}

int hub_msg_telemetry_prune(struct hub_msg_telemetry_log *log, size_t *deleted_out,
                            struct hub_err *err)
{
    int64_t before = now_ms(log) - log->retention_ms;
    size_t total = 0;
    int rc;
    for (;;) {
        size_t n = 0;
        rc = hub_store_telemetry_prune(log->store, before, HUB_MSG_TELEMETRY_PRUNE_CHUNK, &n, err);
        total += n;
        if (rc != 0 || n < HUB_MSG_TELEMETRY_PRUNE_CHUNK)
            break;
    }
    pthread_mutex_lock(&log->mu);
    log->stats.pruned += total;
    if (rc != 0)
        log->stats.prune_errors++;
    pthread_mutex_unlock(&log->mu);
    if (deleted_out != NULL)
        *deleted_out = total;
    return rc;
}

void hub_msg_telemetry_stats_get(struct hub_msg_telemetry_log *log,
                                 struct hub_msg_telemetry_stats *out)
{
    pthread_mutex_lock(&log->mu);
    *out = log->stats;
    pthread_mutex_unlock(&log->mu);
}
