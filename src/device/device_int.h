/*
 * device: what the device layer's files share. Never included outside
 * src/device (tests excepted).
 *
 * Reference counting (why): a connection is touched from other threads
 * (directory lookups for kick / C2D notify, the msg committer's on_durable)
 * while its worker may be closing it. Every such reference is counted; the
 * memory goes when the last one is dropped, on whichever thread that is, so
 * conn_free touches no libevent object (those are released at close, on the
 * worker). References: the server's list (dropped at close), the directory
 * entry, each pending worker call (a direct-method call on its way to the
 * connection's worker included), each un-durable telemetry message, and
 * the running libevent callback (so a close inside a callback frees nothing
 * under its feet).
 */
#ifndef HUB_DEVICE_INT_H
#define HUB_DEVICE_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "auth/auth.h"
#include "device/device.h"
#include "iothub/iothub.h"

struct bufferevent;
struct evconnlistener;
struct sockaddr;
struct event;

/* ---- defaults ------------------------------------------------------------ */

/* 256 KiB body (Azure's limit, reference §2) + 8 KiB for topic and bag. */
#define HUB_DEVICE_DEFAULT_MAX_PACKET (256u * 1024 + 8u * 1024)
#define HUB_DEVICE_DEFAULT_TIMEOUT_MS 10000
#define HUB_DEVICE_DEFAULT_INFLIGHT   64
#define HUB_DEVICE_C2D_WINDOW_MAX     4
#define HUB_DEVICE_DEFAULT_ACTIVITY_S 10
/* libuv reads at most 32 times per callback; packets are smaller than reads. */
#define HUB_DEVICE_PACKETS_PER_CALLBACK 64
/* How long a C2D message stays locked waiting for PUBACK; a reconnect
 * releases it at once anyway (hub_msg_c2d_release). */
#define HUB_DEVICE_C2D_LOCK_MS (5 * 60 * 1000LL)
/* Retry delay when the telemetry log refuses with BUSY (its queue is full). */
#define HUB_DEVICE_BUSY_RETRY_MS 20
/* After a refusal CONNACK, how long we wait for it to leave before closing. */
#define HUB_DEVICE_LINGER_MS 1000
/* Property added to telemetry PUBLISHed with RETAIN=1 (issue text). */
#define HUB_DEVICE_RETAIN_PROPERTY "x-opt-retain"

/* ---- directory: live connection and session per device id ---------------- */

/* How the directory holds its handles (connections in the product, plain
 * counters in tests). */
struct hub_device_dir_ops {
    void (*ref)(void *handle);
    void (*unref)(void *handle);
};

struct hub_device_dir;

int hub_device__dir_new(const struct hub_device_dir_ops *ops, struct hub_device_dir **out_new,
                        struct hub_err *err);
/* Drops every handle still held. NULL ok. */
void hub_device__dir_free(struct hub_device_dir *dir);

/*
 * Makes `handle` the live connection of `id` (taking a reference). Returns
 * the one it replaced, with the directory's reference handed to the caller
 * (who must kick and unref it), or NULL. Session (MQTT §3.1.2.4): with
 * clean_session the previous session is discarded; otherwise it is resumed
 * if one exists. *session_present and *c2d_subscribed describe what was
 * resumed. NOMEM leaves everything unchanged.
 */
int hub_device__dir_register(struct hub_device_dir *dir, const char *id, void *handle,
                             bool clean_session, void **replaced_out, bool *session_present,
                             bool *c2d_subscribed, struct hub_err *err);
/* If `handle` is still id's live connection, forgets it (dropping the
 * reference) and, for a clean session, the session too. Returns 1 if it was
 * live, 0 if it had been replaced already. */
int hub_device__dir_unregister(struct hub_device_dir *dir, const char *id, void *handle);
/* id's live handle with a new reference (caller unrefs), or NULL. */
void *hub_device__dir_get1(struct hub_device_dir *dir, const char *id);
/* Records the C2D subscription in id's session (if it has an entry). */
void hub_device__dir_c2d_set(struct hub_device_dir *dir, const char *id, bool subscribed);

/* Session subscriptions, as bits (C2D is the one hub_device__dir_c2d_set and
 * register's *c2d_subscribed speak of). */
#define HUB_DEVICE_SUB_C2D          0x1u
#define HUB_DEVICE_SUB_TWIN_RES     0x2u
#define HUB_DEVICE_SUB_TWIN_DESIRED 0x4u
#define HUB_DEVICE_SUB_METHODS      0x8u
/* Sets or clears `bits` in id's session (if it has an entry). */
void hub_device__dir_subs_set(struct hub_device_dir *dir, const char *id, unsigned bits, bool on);
/* id's session subscriptions (0 without an entry). */
unsigned hub_device__dir_subs(struct hub_device_dir *dir, const char *id);
/* id's live handle with a new reference (caller unrefs), only if its session
 * has every bit of `bits`; else NULL. */
void *hub_device__dir_get1_subscribed(struct hub_device_dir *dir, const char *id, unsigned bits);
/* The desired $version the session last told the device about (-1: none
 * yet, or no entry), and setting it. A clean session starts at -1. */
int64_t hub_device__dir_desired_seen(struct hub_device_dir *dir, const char *id);
void hub_device__dir_desired_seen_set(struct hub_device_dir *dir, const char *id, int64_t version);
/* Forgets id's session (the device was deleted): subscriptions, desired
 * $version, the clean_session = 0 flag. The entry goes at once when no
 * connection is live, else when that connection unregisters. A device
 * created again with the same id starts with session-present 0. */
void hub_device__dir_session_drop(struct hub_device_dir *dir, const char *id);
size_t hub_device__dir_live_count(struct hub_device_dir *dir);
size_t hub_device__dir_entry_count(struct hub_device_dir *dir);

/* ---- endpoint ------------------------------------------------------------ */

struct hub_device_slot {
    struct hub_net_worker *worker;
    struct hub_device_server *server; /* NULL: not serving (calls to it are dropped) */
};

struct hub_device_endpoint {
    struct hub_device_env env; /* defaults filled in */
    struct hub_auth_verify_cfg sas_cfg;
    struct hub_device_dir *dir;
    pthread_mutex_t mu; /* guards slots[].server */
    struct hub_device_slot *slots;
    size_t slot_count;
    _Atomic uint64_t counters[HUB_DEVICE_R__COUNT];
    /* Direct-method calls waiting for their device to connect and subscribe
     * (methods.c). Guards the list and the `next` links of its calls only;
     * taken before any libevent lock (event_active under it), never the
     * other way round. */
    pthread_mutex_t wait_mu;
    struct hub_device__method_call *waiting;
    _Atomic uint64_t method_seq; /* spreads waiting calls over the workers */
};

int64_t hub_device__now_ms(const struct hub_device_endpoint *ep);
void hub_device__count(struct hub_device_endpoint *ep, enum hub_device_reason r);

/*
 * Runs fn(arg) on worker `index`'s thread if its server is still serving.
 * 0 on success; -1 if not (the caller still owns arg and must release it on
 * its own thread, touching no libevent object).
 */
int hub_device__post(struct hub_device_endpoint *ep, size_t index, void (*fn)(void *arg),
                     void *arg);

/* ---- server and connection ---------------------------------------------- */

enum hub_device_conn_state {
    HUB_DEVICE_CONN_TLS,    /* handshake running */
    HUB_DEVICE_CONN_WAIT,   /* waiting for CONNECT */
    HUB_DEVICE_CONN_LIVE,   /* authenticated */
    HUB_DEVICE_CONN_LINGER, /* refusal CONNACK on its way out */
    HUB_DEVICE_CONN_CLOSED, /* libevent objects released */
};

struct hub_device_c2d_slot {
    uint16_t packet_id;
    char lock_token[HUB_LOCK_TOKEN_SIZE];
};

/*
 * One direct-method invocation (methods.c). Exactly one owner at a time, so
 * it needs no lock of its own:
 *   - the invoking thread, until it posts the call somewhere;
 *   - a worker's job queue (hub_device__post), until the job runs;
 *   - worker `wait_index` while it waits for the device (linked in
 *     ep->waiting, `timer` on that worker's base);
 *   - the device's connection while the request is out (linked in
 *     conn->methods, `timer` on the connection's worker).
 * `timer` always belongs to the base of the thread that owns the call and
 * is freed there before the call moves on.
 */
struct hub_device__method_call {
    struct hub_device__method_call *next;
    struct hub_device_endpoint *ep;
    char device_id[HUB_DEVICE_ID_SIZE];
    char name[HUB_DEVICE_METHOD_NAME_MAX + 1];
    uint8_t *payload; /* owned JSON text */
    size_t payload_len;
    int response_timeout_ms;
    int64_t connect_deadline_ms; /* ep clock */
    hub_device_method_done_fn done;
    void *done_arg;
    size_t wait_index;            /* the worker that keeps it while waiting */
    struct event *timer;          /* wait deadline, or response deadline */
    struct hub_device_conn *conn; /* referenced while posted to the connection */
    uint64_t rid;                 /* the request's $rid once sent */
};

struct hub_device_conn {
    _Atomic unsigned refs;
    struct hub_device_endpoint *ep;
    struct hub_device_server *server; /* NULL once closed */
    size_t worker_index;
    struct hub_device_conn *prev, *next; /* server's list */

    struct bufferevent *bev;
    struct event *timer;  /* handshake / CONNECT / keep-alive deadline */
    struct event *resume; /* re-run the read loop on a later turn */
    enum hub_device_conn_state state;
    char peer[64];

    /* identity, once LIVE */
    char device_id[HUB_DEVICE_ID_SIZE];
    enum hub_device_auth_method method;
    X509 *leaf;             /* TLS peer, kept for CA re-validation */
    STACK_OF(X509) * chain; /* owned copy of the presented chain */
    bool registered;        /* in the directory */
    int64_t keepalive_ms;   /* 0 = none */
    int64_t sas_expiry_ms;  /* 0 = none */
    /* X.509: when the certificates must be looked at again (conn.c,
     * cert_deadline_ms); 0 = none (SAS). */
    int64_t cert_check_ms;
    int64_t last_rx_ms;
    int64_t last_touch_ms;

    /* Will (MQTT §3.1.2.5), owned copies */
    bool has_will;
    bool will_retain;
    char *will_topic;
    uint8_t *will_payload;
    size_t will_payload_len;

    /* telemetry */
    size_t inflight;  /* appended, durable callback not yet handled */
    bool read_paused; /* EV_READ disabled because of inflight */
    bool busy_retry;  /* the log said BUSY: the packet waits in the buffer */

    /* C2D */
    bool c2d_subscribed;
    bool c2d_qos0;     /* the device subscribed at QoS 0: deliver at most once */
    bool c2d_released; /* hub_msg_c2d_release done for this connection */
    struct hub_device_c2d_slot c2d[HUB_DEVICE_C2D_WINDOW_MAX];
    size_t c2d_count;
    uint16_t next_packet_id;

    /* twin (twin.c) */
    bool twin_res_subscribed;
    bool twin_desired_subscribed;

    /* direct methods (methods.c) */
    bool methods_subscribed;
    struct hub_device__method_call *methods; /* requests out, awaiting a response */
    uint64_t next_rid;

    enum hub_device_reason close_reason;
};

struct hub_device_server {
    struct hub_device_endpoint *ep;
    struct hub_net_worker *worker;
    SSL_CTX *ssl_ctx;
    struct evconnlistener *listener;
    struct hub_device_conn *conns; /* list head */
    size_t conn_count;
    bool draining;
    struct event *drain_timer;
    void (*drain_done)(void *arg);
    void *drain_arg;
    /* Scratch for parsing one property bag at a time (~10 KiB): per worker,
     * not per connection. */
    struct hub_iothub_props props;
    /* Worker 0 only: fires when the next CRL passes its nextUpdate, so the
     * crl_expired warning does not wait for a handshake or a CA change. */
    struct event *crl_timer;
};

void hub_device__conn_ref(struct hub_device_conn *c);
void hub_device__conn_unref(struct hub_device_conn *c);
/* Starts a connection on an accepted socket (server.c -> conn.c). */
void hub_device__conn_accept(struct hub_device_server *s, int fd, const struct sockaddr *sa,
                             int salen);
/* Closes (idempotent): counts and logs once, leaves the directory (and sets
 * the registry state Disconnected if it was the live one), appends the Will
 * when the reason calls for it, then lets written bytes leave (LINGER, at
 * most HUB_DEVICE_LINGER_MS) before releasing the libevent objects.
 * `detail` may be NULL. Worker thread. */
void hub_device__conn_close(struct hub_device_conn *c, enum hub_device_reason reason,
                            const char *detail);
/* Releases the libevent objects now, lingering or not (drain deadline). */
void hub_device__conn_abort(struct hub_device_conn *c);
/* Re-validates a live CA connection against a fresh snapshot (after a CA
 * change); closes it if it no longer validates. Worker thread. */
void hub_device__conn_recheck(struct hub_device_conn *c, const struct hub_registry_trust *trust);
/* Logs `event=crl_expired` (warn) when the snapshot holds CRLs past their
 * nextUpdate: always when `force`, else at most every
 * HUB_DEVICE_CRL_WARN_INTERVAL_S per process (it is called per handshake). */
#define HUB_DEVICE_CRL_WARN_INTERVAL_S 600
/* (Re)arms worker 0's CRL timer for the next nextUpdate in `trust` after
 * now; other servers ignore it. Worker thread (or before the pool runs). */
void hub_device__crl_timer_arm(struct hub_device_server *s, const struct hub_registry_trust *trust);
void hub_device__crl_expiry_warn(struct hub_device_endpoint *ep,
                                 const struct hub_registry_trust *trust, bool force);
/* A live certificateAuthority connection re-validates its chain at least
 * this often, so a hub-held CA (not presented by the device, its notAfter
 * unknown here) that expires ends the connection within this delay. */
#define HUB_DEVICE_CERT_RECHECK_MAX_S 3600
/* Reading stops while too much telemetry waits for its commit, and resumes
 * (re-running the read loop on the next turn) once it drained. */
void hub_device__conn_pause_reading(struct hub_device_conn *c);
void hub_device__conn_resume_reading(struct hub_device_conn *c);
/* Closes c on its worker with `reason`; takes over the caller's reference. */
void hub_device__kick_conn(struct hub_device_endpoint *ep, struct hub_device_conn *c,
                           enum hub_device_reason reason);
/* Queues bytes for the peer. Worker thread. */
int hub_device__conn_write(struct hub_device_conn *c, const void *buf, size_t len);

/* telemetry.c */
/* Handles a PUBLISH to the device's own telemetry topic. Returns 0 (handled),
 * 1 (the log is busy: leave the packet in the buffer and retry later), or -1
 * (the connection was closed). */
int hub_device__telemetry_publish(struct hub_device_conn *c, const struct hub_mqtt_publish *pub,
                                  const struct hub_iothub_topic *topic);
/* Appends the Will as telemetry (abnormal close). */
void hub_device__telemetry_will(struct hub_device_conn *c);

/* Writes a PUBLISH of topic/payload at QoS 0. 0, or -1 when it could not be
 * encoded or the connection is closing. Worker thread. */
int hub_device__conn_publish0(struct hub_device_conn *c, const char *topic, size_t topic_len,
                              const void *payload, size_t payload_len);

/* methods.c */
/* The device subscribed to $iothub/methods/POST/#: start the calls waiting
 * for it. Worker thread of c. */
void hub_device__methods_subscribed(struct hub_device_conn *c);
/* PUBLISH $iothub/methods/res/{status}/?$rid= from the device. */
void hub_device__methods_response(struct hub_device_conn *c, const struct hub_mqtt_publish *pub,
                                  const struct hub_iothub_topic *topic);
/* The connection closes: its requests out complete with `outcome`. */
void hub_device__methods_conn_closed(struct hub_device_conn *c,
                                     enum hub_device_method_outcome outcome);
/* The server of worker `index` drains: the calls waiting there complete
 * with SHUTDOWN. Worker thread `index`. */
void hub_device__methods_drain(struct hub_device_endpoint *ep, size_t index);

/* twin.c */
/* PUBLISH $iothub/twin/GET/ or PATCH/properties/reported/ from the device. */
void hub_device__twin_request(struct hub_device_conn *c, const struct hub_mqtt_publish *pub,
                              const struct hub_iothub_topic *topic);
/* If c is subscribed to desired notifications, sends what its session has
 * not seen of the desired properties (after a change, a subscribe, or a
 * session resume). A session that has seen nothing yet (a new one) only
 * records the current $version: the device GETs its twin at start, as
 * Azure's SDKs do, and Azure itself sends no backlog. Worker thread of c. */
void hub_device__twin_desired_sync(struct hub_device_conn *c);

/* c2d.c */
/* Sends queued C2D messages while the window has room. Worker thread. */
void hub_device__c2d_pump(struct hub_device_conn *c);
/* PUBACK from the device: 0 if it matched a C2D delivery. */
int hub_device__c2d_puback(struct hub_device_conn *c, uint16_t packet_id);

#endif
