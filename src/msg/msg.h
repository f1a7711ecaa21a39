/*
 * msg: hubd's durable messaging on top of `store`: the telemetry log with
 * group commit, and the per-device cloud-to-device queues with their
 * delivery feedback.
 *
 * Owns: when a telemetry message counts as durable (and so may be PUBACKed
 * or answered 204), grouping commits across connections, back-pressure,
 * retention; the C2D rules (per-device limit, TTL, lock tokens, delivery
 * count and dead-lettering, expiry sweeps) and Azure's defaults for them.
 * Knows nothing of: MQTT, HTTP, topics and property-bag syntax, sockets,
 * event loops (callbacks are plain function pointers; handing results back
 * to a libevent thread is the caller's job). Never logs: counters in the
 * stats structs say what happened.
 *
 * Records are the store's (store/store.h): struct hub_telemetry_msg,
 * struct hub_c2d_msg, struct hub_c2d_feedback and their lists.
 *
 * Time: every rule reads opts.now_ms (Unix milliseconds), so tests inject a
 * clock. Waits (the committer's prune timer, the C2D sweeper) use the
 * monotonic clock.
 */
#ifndef HUB_MSG_H
#define HUB_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "store/store.h"

/* ---- telemetry log -------------------------------------------------------- */

/* Issue: "Retention configurable (default one day)". */
#define HUB_MSG_TELEMETRY_DEFAULT_RETENTION_S 86400
/* Back-pressure bounds of the commit queue (messages accepted, not yet
 * committed and acknowledged): 64 MiB holds 256 maximum-size messages, or
 * 10000 typical small ones. */
#define HUB_MSG_TELEMETRY_DEFAULT_MAX_QUEUED       10000
#define HUB_MSG_TELEMETRY_DEFAULT_MAX_QUEUED_BYTES (64u * 1024 * 1024)
/* At most this many messages per transaction, so one commit stays short. */
#define HUB_MSG_TELEMETRY_DEFAULT_MAX_BATCH         1000
#define HUB_MSG_TELEMETRY_DEFAULT_PRUNE_INTERVAL_MS 60000
/* Rows one retention pass deletes per transaction (then it yields to commits). */
#define HUB_MSG_TELEMETRY_PRUNE_CHUNK 5000

struct hub_msg_telemetry_opts {
    int64_t retention_s;          /* 0 = default; messages older than this are deleted */
    size_t max_queued;            /* 0 = default */
    size_t max_queued_bytes;      /* 0 = default */
    size_t max_batch;             /* 0 = default */
    int64_t prune_interval_ms;    /* 0 = default; < 0 = never (tests call _prune) */
    int64_t (*now_ms)(void *ctx); /* NULL = wall clock; called from any thread */
    void *now_ctx;
};

/*
 * Called exactly once for every message that hub_msg_telemetry_append
 * accepted: status 0 and its seq once the transaction holding it has
 * committed (fsynced), or a negative HUB_E_* (seq 0) when that transaction
 * failed (HUB_E_IO, HUB_E_BUSY, HUB_E_STORE...: the message is then NOT in
 * the log; do not acknowledge it). Closing the log commits, it never fails
 * what was accepted. Runs on the committer thread: do only a hand-off (e.g.
 * event_base_once / an eventfd to the connection's worker), never block, and
 * never call back into the log from it. A connection that closes before its
 * callbacks arrive must keep `arg` valid until they do (e.g. refcount it).
 */
typedef void (*hub_msg_durable_cb)(void *arg, int status, int64_t seq);

/* Called on the committer thread after each successful commit with the
 * highest committed seq. Same rules as hub_msg_durable_cb; additionally it
 * must not call hub_msg_telemetry_watch/unwatch. */
typedef void (*hub_msg_commit_cb)(void *arg, int64_t last_seq);

struct hub_msg_telemetry_stats {
    uint64_t accepted;       /* appends that returned 0 */
    uint64_t refused_busy;   /* appends refused with HUB_E_BUSY (back-pressure or closing) */
    uint64_t committed;      /* messages made durable */
    uint64_t failed;         /* messages reported failed to on_durable */
    uint64_t commits;        /* successful transactions (each one fsync) */
    uint64_t failed_commits; /* failed transactions */
    uint64_t largest_batch;  /* most messages in one transaction */
    uint64_t pruned;         /* messages deleted by retention */
    uint64_t prune_errors;   /* retention passes that failed (retried next interval) */
    size_t queued;           /* now: accepted, not yet acknowledged */
    size_t queued_bytes;     /* now: their accounted memory */
};

struct hub_msg_telemetry_log;
struct hub_msg_telemetry_watch;

/*
 * Opens the log on `store` (borrowed; must outlive the log) and starts its
 * committer thread. `opts` may be NULL. *out_new: hub_msg_telemetry_log_close.
 * Codes: NOMEM, INTERNAL (thread creation), store errors (reading the
 * current position).
 */
int hub_msg_telemetry_log_open(struct hub_store *store, const struct hub_msg_telemetry_opts *opts,
                               struct hub_msg_telemetry_log **out_new, struct hub_err *err);

/*
 * Stops accepting (appends from now on get HUB_E_BUSY), commits everything
 * already accepted, delivers every on_durable callback, joins the committer
 * and frees. Nothing accepted is dropped silently: it is either committed
 * and acknowledged, or reported failed. NULL ok. Callers must not be inside
 * another call on this log when it returns (and never after).
 */
void hub_msg_telemetry_log_close(struct hub_msg_telemetry_log *log);

/*
 * Queues a copy of `msg` (borrowed only for the call: the caller may free or
 * reuse its buffers at once) for the next group commit and returns without
 * waiting. msg->seq is ignored; msg->enqueued_ms 0 means "now". On 0,
 * on_durable (may be NULL: fire and forget) will be called exactly once,
 * from the committer thread, possibly before this function returns. On error
 * it is never called. Thread-safe; never blocks on I/O (only on a mutex).
 * Codes: INVALID_ARG / TOO_LARGE (bounds, hub_telemetry_msg_check), BUSY (the
 * queue is full — answer "server busy", do not acknowledge — or the log is
 * closing), NOMEM.
 */
int hub_msg_telemetry_append(struct hub_msg_telemetry_log *log, const struct hub_telemetry_msg *msg,
                             hub_msg_durable_cb on_durable, void *arg, struct hub_err *err);

/*
 * Up to `limit` (1..10000) committed messages with seq >= from_seq, oldest
 * first, only device `device_id` when non-NULL. Blocking store read; any
 * thread. *out_new: hub_telemetry_msg_list_free (count 0 when nothing new).
 */
int hub_msg_telemetry_read1(struct hub_msg_telemetry_log *log, int64_t from_seq, size_t limit,
                            const char *device_id, struct hub_telemetry_msg_list **out_new,
                            struct hub_err *err);

/* The highest committed seq (0 when the log is empty and always was). Never
 * blocks on I/O. Any thread. */
int64_t hub_msg_telemetry_last_seq(struct hub_msg_telemetry_log *log);

/*
 * Long-poll support: `on_commit` is called after every successful commit
 * until unwatch. To wait for messages after seq S without missing one:
 * watch first, then read (or compare last_seq with S); if nothing, wait for
 * on_commit, then read again. *out_new is released by unwatch. Codes: NOMEM.
 */
int hub_msg_telemetry_watch(struct hub_msg_telemetry_log *log, hub_msg_commit_cb on_commit,
                            void *arg, struct hub_msg_telemetry_watch **out_new,
                            struct hub_err *err);
/* After it returns, on_commit is not running and will not run again. NULL ok.
 * Must not be called from inside any callback of this log. */
void hub_msg_telemetry_unwatch(struct hub_msg_telemetry_log *log,
                               struct hub_msg_telemetry_watch *watch);

/* One retention pass now (the committer also runs one every
 * prune_interval_ms): deletes messages older than retention, in chunks of
 * HUB_MSG_TELEMETRY_PRUNE_CHUNK. *deleted_out may be NULL. Any thread. */
int hub_msg_telemetry_prune(struct hub_msg_telemetry_log *log, size_t *deleted_out,
                            struct hub_err *err);

/* A consistent snapshot of the counters. Any thread. */
void hub_msg_telemetry_stats_get(struct hub_msg_telemetry_log *log,
                                 struct hub_msg_telemetry_stats *out);

/* ---- cloud-to-device queues ----------------------------------------------- */

/* Azure's values (issue text; protocol reference §2, §3). */
#define HUB_MSG_C2D_DEFAULT_MAX_PER_DEVICE     50
#define HUB_MSG_C2D_DEFAULT_TTL_MS             (3600 * 1000LL)      /* 1 hour */
#define HUB_MSG_C2D_DEFAULT_MAX_TTL_MS         (2 * 86400 * 1000LL) /* 2 days */
#define HUB_MSG_C2D_DEFAULT_MAX_DELIVERY_COUNT 10
#define HUB_MSG_C2D_DEFAULT_LOCK_MS            (60 * 1000LL) /* Azure's HTTP lock: 1 minute */
#define HUB_MSG_C2D_DEFAULT_FEEDBACK_TTL_MS    (3600 * 1000LL)
#define HUB_MSG_C2D_DEFAULT_SWEEP_INTERVAL_MS  5000

struct hub_msg_c2d_opts {
    size_t max_per_device;        /* 0 = default */
    int64_t default_ttl_ms;       /* 0 = default; used when a message has no expiry */
    int64_t max_ttl_ms;           /* 0 = default; longer expiries are clamped to it */
    int64_t max_delivery_count;   /* 0 = default */
    int64_t lock_ms;              /* 0 = default; lock of a delivery and of a feedback batch */
    int64_t feedback_ttl_ms;      /* 0 = default; older feedback is deleted by the sweep */
    int64_t sweep_interval_ms;    /* 0 = default; < 0 = no sweeper thread (call _sweep) */
    int64_t (*now_ms)(void *ctx); /* NULL = wall clock; called from any thread */
    void *now_ctx;
};

struct hub_msg_c2d_stats {
    uint64_t enqueued;
    uint64_t refused_limit; /* enqueues refused: the device's queue was full */
    uint64_t delivered;     /* deliveries (a redelivery counts again) */
    uint64_t completed;
    uint64_t rejected;
    uint64_t abandoned;
    uint64_t expired;       /* dropped by the sweep */
    uint64_t dead_lettered; /* dropped after max_delivery_count deliveries */
    uint64_t purged;
    uint64_t sweep_errors; /* sweeper passes that failed (retried next interval) */
};

struct hub_msg_c2d;

/* `store` is borrowed and must outlive the queue. `opts` may be NULL. Starts
 * the sweeper thread unless opts->sweep_interval_ms < 0. *out_new:
 * hub_msg_c2d_free. Codes: NOMEM, INTERNAL (thread creation). */
int hub_msg_c2d_new(struct hub_store *store, const struct hub_msg_c2d_opts *opts,
                    struct hub_msg_c2d **out_new, struct hub_err *err);
/* Stops the sweeper and frees; NULL ok. No other call may be running. */
void hub_msg_c2d_free(struct hub_msg_c2d *c2d);

/*
 * Durably enqueues `msg` (borrowed) for msg->device_id. The hub fills in:
 * enqueued_ms = now; expiry_ms = now + default TTL when msg->expiry_ms is 0,
 * else min(msg->expiry_ms, now + max TTL); a random message id (UUID) when
 * sys[MESSAGE_ID] is NULL. *seq_out and message_id_out (HUB_MESSAGE_ID_SIZE
 * bytes) may be NULL. Codes: NOT_FOUND (no such device), LIMIT (the device
 * holds max_per_device unexpired messages), INVALID_ARG (expiry in the past,
 * bounds), TOO_LARGE (body > 64 KiB, properties), CRYPTO (RNG), store errors.
 */
int hub_msg_c2d_enqueue(struct hub_msg_c2d *c2d, const struct hub_c2d_msg *msg, int64_t *seq_out,
                        char *message_id_out, struct hub_err *err);

/*
 * Takes the device's next deliverable message (oldest first) and locks it
 * with a new random lock token for lock_ms (0 = opts.lock_ms; MQTT callers
 * pass how long they wait for PUBACK) — out->lock_token, also the HTTP ETag.
 * out->delivery_count counts this delivery. Messages already delivered
 * max_delivery_count times are dead-lettered on the way. *out is the
 * caller's (hub_c2d_msg_clear). Codes: NOT_FOUND (nothing to deliver: HTTP
 * 204), CRYPTO, store errors.
 */
int hub_msg_c2d_deliver(struct hub_msg_c2d *c2d, const char *device_id, int64_t lock_ms,
                        struct hub_c2d_msg *out, struct hub_err *err);

/*
 * Completes (MQTT PUBACK, HTTP DELETE), rejects (HTTP DELETE ?reject) or
 * abandons (HTTP POST .../abandon) the device's message locked with
 * `lock_token`. Codes: NOT_FOUND (no message holds that token: settled
 * already, or redelivered), ETAG_MISMATCH (the lock expired: HTTP 412
 * DeviceMessageLockLost), store errors.
 */
int hub_msg_c2d_settle(struct hub_msg_c2d *c2d, const char *device_id, const char *lock_token,
                       enum hub_c2d_settle how, struct hub_err *err);

/* Unlocks every in-flight message of the device so it is redelivered at once:
 * call when a device (re)connects over MQTT (the previous session's
 * unacknowledged PUBLISHes died with it). *released_out may be NULL. */
int hub_msg_c2d_release(struct hub_msg_c2d *c2d, const char *device_id, size_t *released_out,
                        struct hub_err *err);

/* Drops every queued message of the device (Azure: DELETE
 * /devices/{id}/commands, answering totalMessagesPurged = *purged_out).
 * Codes: NOT_FOUND (no such device), store errors. */
int hub_msg_c2d_purge(struct hub_msg_c2d *c2d, const char *device_id, size_t *purged_out,
                      struct hub_err *err);

/* The device's queue length (its cloudToDeviceMessageCount, which the device
 * record's c2d_count also shows). Codes: NOT_FOUND, store errors. */
int hub_msg_c2d_count(struct hub_msg_c2d *c2d, const char *device_id, size_t *out,
                      struct hub_err *err);

/* One sweep now (the sweeper thread runs one every sweep_interval_ms): drops
 * expired messages (feedback Expired) and feedback older than
 * feedback_ttl_ms. *expired_out may be NULL. */
int hub_msg_c2d_sweep(struct hub_msg_c2d *c2d, size_t *expired_out, struct hub_err *err);

/*
 * Feedback for the service (GET /messages/serviceBound/feedback): locks up
 * to `max` (1..1000) outcome records for lock_ms and returns them with the
 * batch's lock token in lock_token_out (HUB_LOCK_TOKEN_SIZE bytes). An empty
 * batch (count 0: HTTP 204) locks nothing. The service then completes the
 * batch (DELETE .../feedback/{lockToken}: records deleted) or abandons it
 * (POST .../abandon: records offered again); an unsettled batch is offered
 * again when its lock expires. *out_new: hub_c2d_feedback_list_free.
 * settle codes: NOT_FOUND (unknown token or lock expired).
 */
int hub_msg_c2d_feedback_receive1(struct hub_msg_c2d *c2d, size_t max,
                                  struct hub_c2d_feedback_list **out_new, char *lock_token_out,
                                  struct hub_err *err);
int hub_msg_c2d_feedback_settle(struct hub_msg_c2d *c2d, const char *lock_token, bool complete,
                                struct hub_err *err);

void hub_msg_c2d_stats_get(struct hub_msg_c2d *c2d, struct hub_msg_c2d_stats *out);

#endif
