/*
 * store: record helpers (free, copy, enum names) and the thin wrappers that
 * dispatch through a backend's ops table.
 */
#include "store/store.h"

#include <stdlib.h>
#include <string.h>

#include "store/store_int.h"

void hub_ca_cert_clear(struct hub_ca_cert *ca)
{
    if (ca == NULL)
        return;
    free(ca->pem);
    free(ca->crl_pem);
    memset(ca, 0, sizeof(*ca));
}

void hub_ca_cert_free(struct hub_ca_cert *ca)
{
    if (ca == NULL)
        return;
    hub_ca_cert_clear(ca);
    free(ca);
}

int hub_ca_cert_copy(struct hub_ca_cert *dst, const struct hub_ca_cert *src, struct hub_err *err)
{
    char *pem = NULL;
    if (src->pem != NULL) {
        pem = strdup(src->pem);
        if (pem == NULL)
            return HUB_ERR(err, HUB_E_NOMEM, "out of memory copying a CA certificate");
    }
    char *crl = NULL;
    if (src->crl_pem != NULL && (crl = strdup(src->crl_pem)) == NULL) {
        free(pem);
        return HUB_ERR(err, HUB_E_NOMEM, "out of memory copying a CA certificate");
    }
    *dst = *src;
    dst->pem = pem;
    dst->crl_pem = crl;
    return 0;
}

void hub_ca_cert_list_free(struct hub_ca_cert_list *list)
{
    if (list == NULL)
        return;
    for (size_t i = 0; i < list->count; i++)
        hub_ca_cert_clear(&list->items[i]);
    free(list->items);
    free(list);
}

void hub_device_list_free(struct hub_device_list *list)
{
    if (list == NULL)
        return;
    free(list->items);
    free(list);
}

/* ---- enum spellings (Azure's, §4 of the protocol reference) ------------- */

static const char *const status_names[] = {
    [HUB_DEVICE_ENABLED] = "enabled", [HUB_DEVICE_DISABLED] = "disabled"};
static const char *const auth_names[] = {[HUB_AUTH_SAS] = "sas",
                                         [HUB_AUTH_SELF_SIGNED] = "selfSigned",
                                         [HUB_AUTH_CERT_AUTHORITY] = "certificateAuthority",
                                         [HUB_AUTH_NONE] = "none"};
static const char *const conn_names[] = {
    [HUB_CONN_DISCONNECTED] = "Disconnected", [HUB_CONN_CONNECTED] = "Connected"};

#define NAMES_COUNT(a) (sizeof(a) / sizeof((a)[0]))

static const char *name_of(const char *const *names, size_t n, int v)
{
    if (v < 0 || (size_t)v >= n)
        return "unknown";
    return names[v];
}

static int parse_name(const char *const *names, size_t n, const char *s, int *out, const char *what,
                      struct hub_err *err)
{
    if (s != NULL) {
        for (size_t i = 0; i < n; i++) {
            if (strcmp(names[i], s) == 0) {
                *out = (int)i;
                return 0;
            }
        }
    }
    return HUB_ERR(err, HUB_E_INVALID_ARG, "unknown %s '%.64s'", what, s ? s : "(null)");
}

const char *hub_device_status_name(enum hub_device_status s)
{
    return name_of(status_names, NAMES_COUNT(status_names), (int)s);
}

const char *hub_auth_type_name(enum hub_auth_type t)
{
    return name_of(auth_names, NAMES_COUNT(auth_names), (int)t);
}

const char *hub_conn_state_name(enum hub_conn_state c)
{
    return name_of(conn_names, NAMES_COUNT(conn_names), (int)c);
}

int hub_device_status_parse(const char *s, enum hub_device_status *out, struct hub_err *err)
{
    int v = 0;
    int rc = parse_name(status_names, NAMES_COUNT(status_names), s, &v, "device status", err);
    if (rc == 0)
        *out = (enum hub_device_status)v;
    return rc;
}

int hub_auth_type_parse(const char *s, enum hub_auth_type *out, struct hub_err *err)
{
    int v = 0;
    int rc = parse_name(auth_names, NAMES_COUNT(auth_names), s, &v, "authentication type", err);
    if (rc == 0)
        *out = (enum hub_auth_type)v;
    return rc;
}

int hub_conn_state_parse(const char *s, enum hub_conn_state *out, struct hub_err *err)
{
    int v = 0;
    int rc = parse_name(conn_names, NAMES_COUNT(conn_names), s, &v, "connection state", err);
    if (rc == 0)
        *out = (enum hub_conn_state)v;
    return rc;
}

/* ---- dispatch ----------------------------------------------------------- */

void hub_store_close(struct hub_store *store)
{
    if (store != NULL)
        store->ops->close(store);
}

int hub_store_ca_insert(struct hub_store *store, const struct hub_ca_cert *ca, size_t max_count,
                        struct hub_err *err)
{
    if (ca == NULL || ca->pem == NULL)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "CA record without PEM");
    return store->ops->ca_insert(store, ca, max_count, err);
}

int hub_store_ca_get1(struct hub_store *store, const char *name, struct hub_ca_cert **out_new,
                      struct hub_err *err)
{
    return store->ops->ca_get1(store, name, out_new, err);
}

int hub_store_ca_update(struct hub_store *store, const struct hub_ca_cert *ca,
                        const char *expected_etag, struct hub_err *err)
{
    if (ca == NULL || ca->pem == NULL)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "CA record without PEM");
    return store->ops->ca_update(store, ca, expected_etag, err);
}

int hub_store_ca_delete(struct hub_store *store, const char *name, const char *expected_etag,
                        struct hub_err *err)
{
    return store->ops->ca_delete(store, name, expected_etag, err);
}

int hub_store_ca_list1(struct hub_store *store, bool verified_only,
                       struct hub_ca_cert_list **out_new, struct hub_err *err)
{
    return store->ops->ca_list1(store, verified_only, out_new, err);
}

int hub_store_ca_count(struct hub_store *store, size_t *out, struct hub_err *err)
{
    return store->ops->ca_count(store, out, err);
}

int hub_store_device_insert(struct hub_store *store, const struct hub_device *dev,
                            struct hub_err *err)
{
    return store->ops->device_insert(store, dev, err);
}

int hub_store_device_get(struct hub_store *store, const char *id, struct hub_device *out,
                         struct hub_err *err)
{
    return store->ops->device_get(store, id, out, err);
}

int hub_store_device_update(struct hub_store *store, const struct hub_device *dev,
                            const char *expected_etag, struct hub_err *err)
{
    return store->ops->device_update(store, dev, expected_etag, err);
}

int hub_store_device_delete(struct hub_store *store, const char *id, const char *expected_etag,
                            struct hub_err *err)
{
    return store->ops->device_delete(store, id, expected_etag, err);
}

int hub_store_device_list1(struct hub_store *store, const struct hub_device_filter *filter,
                           struct hub_device_list **out_new, struct hub_err *err)
{
    if (filter == NULL || filter->limit == 0)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "device listing needs a limit of at least 1");
    return store->ops->device_list1(store, filter, out_new, err);
}

int hub_store_device_conn_state_set(struct hub_store *store, const char *id,
                                    enum hub_conn_state state, int64_t at, struct hub_err *err)
{
    return store->ops->device_conn_state_set(store, id, state, at, err);
}

int hub_store_device_activity_touch(struct hub_store *store, const char *id, int64_t at,
                                    struct hub_err *err)
{
    return store->ops->device_activity_touch(store, id, at, err);
}

int hub_store_device_cert_expiry_set(struct hub_store *store, const char *id, int64_t not_after,
                                     struct hub_err *err)
{
    return store->ops->device_cert_expiry_set(store, id, not_after, err);
}

/* ---- messaging records ---------------------------------------------------- */

static const char *const sysprop_names[] = {
#define SYSPROP_NAME(e, col, name) [HUB_SYSPROP_##e] = name,
    HUB_SYSPROP_MAP(SYSPROP_NAME)
#undef SYSPROP_NAME
};

const char *hub_sysprop_name(enum hub_sysprop p)
{
    return name_of(sysprop_names, NAMES_COUNT(sysprop_names), (int)p);
}

static const char *const ack_names[] = {[HUB_C2D_ACK_NONE] = "none",
                                        [HUB_C2D_ACK_POSITIVE] = "positive",
                                        [HUB_C2D_ACK_NEGATIVE] = "negative",
                                        [HUB_C2D_ACK_FULL] = "full"};
static const char *const outcome_names[] = {[HUB_C2D_SUCCESS] = "Success",
                                            [HUB_C2D_EXPIRED] = "Expired",
                                            [HUB_C2D_DELIVERY_COUNT_EXCEEDED] =
                                                "DeliveryCountExceeded",
                                            [HUB_C2D_REJECTED] = "Rejected",
                                            [HUB_C2D_PURGED] = "Purged"};
static const char *const outcome_texts[] = {[HUB_C2D_SUCCESS] = "Success",
                                            [HUB_C2D_EXPIRED] = "Message expired",
                                            [HUB_C2D_DELIVERY_COUNT_EXCEEDED] =
                                                "Message delivery count exceeded",
                                            [HUB_C2D_REJECTED] = "Message rejected",
                                            [HUB_C2D_PURGED] = "Message purged"};

const char *hub_c2d_ack_name(enum hub_c2d_ack a)
{
    return name_of(ack_names, NAMES_COUNT(ack_names), (int)a);
}

int hub_c2d_ack_parse(const char *s, enum hub_c2d_ack *out, struct hub_err *err)
{
    int v = 0;
    int rc = parse_name(ack_names, NAMES_COUNT(ack_names), s, &v, "C2D ack mode", err);
    if (rc == 0)
        *out = (enum hub_c2d_ack)v;
    return rc;
}

const char *hub_c2d_outcome_name(enum hub_c2d_outcome o)
{
    return name_of(outcome_names, NAMES_COUNT(outcome_names), (int)o);
}

int hub_c2d_outcome_parse(const char *s, enum hub_c2d_outcome *out, struct hub_err *err)
{
    int v = 0;
    int rc = parse_name(outcome_names, NAMES_COUNT(outcome_names), s, &v, "feedback status", err);
    if (rc == 0)
        *out = (enum hub_c2d_outcome)v;
    return rc;
}

const char *hub_c2d_outcome_description(enum hub_c2d_outcome o)
{
    return name_of(outcome_texts, NAMES_COUNT(outcome_texts), (int)o);
}

size_t hub_msg_props_size(const char *const sys[HUB_SYSPROP__COUNT], const struct hub_app_prop *app,
                          size_t app_count)
{
    size_t n = 0;
    for (int i = 0; i < HUB_SYSPROP__COUNT; i++)
        if (sys[i] != NULL)
            n += strlen(sys[i]);
    for (size_t i = 0; i < app_count; i++) {
        n += app[i].key != NULL ? strlen(app[i].key) : 0;
        n += app[i].value != NULL ? strlen(app[i].value) : 0;
    }
    return n;
}

/*
 * Block layout: [hub_app_prop array][body][strings...]. The array comes
 * first so malloc's alignment serves it; everything after is bytes.
 */
int hub_store__pack(const unsigned char *body, size_t body_len,
                    const struct hub_store__span sys[HUB_SYSPROP__COUNT],
                    const struct hub_store__span *keys, const struct hub_store__span *values,
                    size_t app_count, const unsigned char **body_out,
                    const char *sys_out[HUB_SYSPROP__COUNT], const struct hub_app_prop **app_out,
                    void **owned_out, struct hub_err *err)
{
    size_t total = app_count * sizeof(struct hub_app_prop) + body_len;
    for (int i = 0; i < HUB_SYSPROP__COUNT; i++)
        if (sys[i].p != NULL)
            total += sys[i].n + 1;
    for (size_t i = 0; i < app_count; i++) {
        total += keys[i].n + 1;
        if (values[i].p != NULL)
            total += values[i].n + 1;
    }
    unsigned char *block = malloc(total > 0 ? total : 1);
    if (block == NULL)
        return HUB_ERR(err, HUB_E_NOMEM, "out of memory copying a message (%zu bytes)", total);
    struct hub_app_prop *app = (struct hub_app_prop *)(void *)block;
    unsigned char *w = block + app_count * sizeof(struct hub_app_prop);
    *body_out = w;
    if (body_len > 0)
        memcpy(w, body, body_len);
    w += body_len;
    for (int i = 0; i < HUB_SYSPROP__COUNT; i++) {
        sys_out[i] = NULL;
        if (sys[i].p == NULL)
            continue;
        memcpy(w, sys[i].p, sys[i].n);
        w[sys[i].n] = '\0';
        sys_out[i] = (const char *)w;
        w += sys[i].n + 1;
    }
    for (size_t i = 0; i < app_count; i++) {
        memcpy(w, keys[i].p, keys[i].n);
        w[keys[i].n] = '\0';
        app[i].key = (const char *)w;
        w += keys[i].n + 1;
        app[i].value = NULL;
        if (values[i].p != NULL) {
            memcpy(w, values[i].p, values[i].n);
            w[values[i].n] = '\0';
            app[i].value = (const char *)w;
            w += values[i].n + 1;
        }
    }
    *app_out = app_count > 0 ? app : NULL;
    *owned_out = block;
    return 0;
}

/* Packs a borrowed payload (NUL-terminated strings) into an owned block. */
static int copy_payload(const unsigned char *body, size_t body_len, const char *const *sys,
                        const struct hub_app_prop *app, size_t app_count,
                        const unsigned char **body_out, const char **sys_out,
                        const struct hub_app_prop **app_out, void **owned_out, struct hub_err *err)
{
    struct hub_store__span s[HUB_SYSPROP__COUNT];
    for (int i = 0; i < HUB_SYSPROP__COUNT; i++) {
        s[i].p = sys[i];
        s[i].n = sys[i] != NULL ? strlen(sys[i]) : 0;
    }
    struct hub_store__span *spans = NULL;
    if (app_count > 0) {
        spans = calloc(2 * app_count, sizeof(*spans));
        if (spans == NULL)
            return HUB_ERR(err, HUB_E_NOMEM, "out of memory copying a message");
        for (size_t i = 0; i < app_count; i++) {
            spans[i].p = app[i].key != NULL ? app[i].key : "";
            spans[i].n = strlen(spans[i].p);
            spans[app_count + i].p = app[i].value;
            spans[app_count + i].n = app[i].value != NULL ? strlen(app[i].value) : 0;
        }
    }
    int rc = hub_store__pack(body, body_len, s, spans, spans != NULL ? spans + app_count : NULL,
                             app_count, body_out, sys_out, app_out, owned_out, err);
    free(spans);
    return rc;
}

int hub_telemetry_msg_copy(struct hub_telemetry_msg *dst, const struct hub_telemetry_msg *src,
                           struct hub_err *err)
{
    struct hub_telemetry_msg m = *src;
    int rc = copy_payload(src->body, src->body_len, src->sys, src->app, src->app_count, &m.body,
                          m.sys, &m.app, &m.owned_, err);
    if (rc == 0)
        *dst = m;
    return rc;
}

int hub_c2d_msg_copy(struct hub_c2d_msg *dst, const struct hub_c2d_msg *src, struct hub_err *err)
{
    struct hub_c2d_msg m = *src;
    int rc = copy_payload(src->body, src->body_len, src->sys, src->app, src->app_count, &m.body,
                          m.sys, &m.app, &m.owned_, err);
    if (rc == 0)
        *dst = m;
    return rc;
}

void hub_telemetry_msg_clear(struct hub_telemetry_msg *msg)
{
    if (msg == NULL)
        return;
    free(msg->owned_);
    memset(msg, 0, sizeof(*msg));
}

void hub_telemetry_msg_list_free(struct hub_telemetry_msg_list *list)
{
    if (list == NULL)
        return;
    for (size_t i = 0; i < list->count; i++)
        hub_telemetry_msg_clear(&list->items[i]);
    free(list->items);
    free(list);
}

void hub_c2d_msg_clear(struct hub_c2d_msg *msg)
{
    if (msg == NULL)
        return;
    free(msg->owned_);
    memset(msg, 0, sizeof(*msg));
}

void hub_c2d_feedback_list_free(struct hub_c2d_feedback_list *list)
{
    if (list == NULL)
        return;
    free(list->items);
    free(list);
}

/* ---- messaging dispatch ---------------------------------------------------- */

/* Bounds every backend relies on, checked once here. */
static int check_payload(const char *what, const unsigned char *body, size_t body_len,
                         size_t body_max, const char *const *sys, const struct hub_app_prop *app,
                         size_t app_count, struct hub_err *err)
{
    if (body_len > body_max)
        return HUB_ERR(err, HUB_E_TOO_LARGE, "%s body of %zu bytes exceeds %zu", what, body_len,
                       body_max);
    if (body == NULL && body_len > 0)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "%s body is NULL", what);
    if (app_count > 0 && app == NULL)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "%s properties are NULL", what);
    for (size_t i = 0; i < app_count; i++)
        if (app[i].key == NULL || app[i].key[0] == '\0')
            return HUB_ERR(err, HUB_E_INVALID_ARG, "%s has an application property without a key",
                           what);
    /* Before strlen-ing everything: the count alone can exceed the bound. */
    if (app_count > HUB_MSG_PROPS_MAX_BYTES)
        return HUB_ERR(err, HUB_E_TOO_LARGE, "%s has %zu application properties", what, app_count);
    size_t n = hub_msg_props_size(sys, app, app_count);
    if (n > HUB_MSG_PROPS_MAX_BYTES)
        return HUB_ERR(err, HUB_E_TOO_LARGE, "%s properties take %zu bytes, more than %d", what, n,
                       HUB_MSG_PROPS_MAX_BYTES);
    return 0;
}

static int check_id(const char *what, const char *id, size_t max, struct hub_err *err)
{
    if (id == NULL || id[0] == '\0')
        return HUB_ERR(err, HUB_E_INVALID_ARG, "%s is empty", what);
    if (strlen(id) > max)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "%s is longer than %zu characters", what, max);
    return 0;
}

int hub_telemetry_msg_check(const struct hub_telemetry_msg *m, struct hub_err *err)
{
    int rc;
    if (m == NULL)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "telemetry message is NULL");
    if ((rc = check_id("telemetry device id", m->device_id, HUB_DEVICE_ID_MAX, err)) != 0 ||
        (m->module_id[0] != '\0' &&
         (rc = check_id("module id", m->module_id, HUB_MODULE_ID_MAX, err)) != 0) ||
        (rc = check_payload("telemetry message", m->body, m->body_len, HUB_TELEMETRY_BODY_MAX,
                            m->sys, m->app, m->app_count, err)) != 0)
        return rc;
    return 0;
}

int hub_store_telemetry_append(struct hub_store *store, const struct hub_telemetry_msg *const *msgs,
                               size_t count, int64_t *seqs_out, struct hub_err *err)
{
    if (msgs == NULL || count == 0 || seqs_out == NULL)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "telemetry append needs at least one message");
    for (size_t i = 0; i < count; i++) {
        int rc = hub_telemetry_msg_check(msgs[i], err);
        if (rc != 0)
            return rc;
    }
    return store->ops->telemetry_append(store, msgs, count, seqs_out, err);
}

int hub_store_telemetry_read1(struct hub_store *store, int64_t from_seq, size_t limit,
                              const char *device_id, struct hub_telemetry_msg_list **out_new,
                              struct hub_err *err)
{
    if (limit == 0 || limit > 10000)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "telemetry read limit %zu is not in 1..10000",
                       limit);
    return store->ops->telemetry_read1(store, from_seq, limit, device_id, out_new, err);
}

int hub_store_telemetry_last_seq(struct hub_store *store, int64_t *out, struct hub_err *err)
{
    return store->ops->telemetry_last_seq(store, out, err);
}

int hub_store_telemetry_prune(struct hub_store *store, int64_t before_ms, size_t max_rows,
                              size_t *deleted_out, struct hub_err *err)
{
    if (max_rows == 0)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "telemetry prune needs max_rows >= 1");
    size_t dummy;
    return store->ops->telemetry_prune(store, before_ms, max_rows,
                                       deleted_out != NULL ? deleted_out : &dummy, err);
}

int hub_c2d_msg_check(const struct hub_c2d_msg *msg, struct hub_err *err)
{
    int rc;
    if (msg == NULL)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "C2D message is NULL");
    if ((rc = check_id("C2D device id", msg->device_id, HUB_DEVICE_ID_MAX, err)) != 0 ||
        (rc = check_id("C2D message id", msg->sys[HUB_SYSPROP_MESSAGE_ID], HUB_MESSAGE_ID_MAX,
                       err)) != 0 ||
        (rc = check_payload("C2D message", msg->body, msg->body_len, HUB_C2D_BODY_MAX, msg->sys,
                            msg->app, msg->app_count, err)) != 0)
        return rc;
    if (msg->expiry_ms <= msg->enqueued_ms)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "C2D message expires before it is enqueued");
    if ((int)msg->ack < HUB_C2D_ACK_NONE || msg->ack > HUB_C2D_ACK_FULL)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "C2D ack mode %d is unknown", (int)msg->ack);
    return 0;
}

int hub_store_c2d_enqueue(struct hub_store *store, const struct hub_c2d_msg *msg,
                          size_t max_per_device, int64_t *seq_out, struct hub_err *err)
{
    int rc = hub_c2d_msg_check(msg, err);
    if (rc != 0)
        return rc;
    int64_t dummy;
    return store->ops->c2d_enqueue(store, msg, max_per_device, seq_out != NULL ? seq_out : &dummy,
                                   err);
}

int hub_store_c2d_deliver(struct hub_store *store, const char *device_id, int64_t now_ms,
                          const char *lock_token, int64_t lock_expiry_ms,
                          int64_t max_delivery_count, struct hub_c2d_msg *out, size_t *dead_out,
                          struct hub_err *err)
{
    int rc;
    if (out == NULL || max_delivery_count < 1)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "C2D deliver needs an output and a count >= 1");
    memset(out, 0, sizeof(*out));
    if ((rc = check_id("lock token", lock_token, HUB_LOCK_TOKEN_MAX, err)) != 0)
        return rc;
    size_t dummy;
    return store->ops->c2d_deliver(store, device_id, now_ms, lock_token, lock_expiry_ms,
                                   max_delivery_count, out, dead_out != NULL ? dead_out : &dummy,
                                   err);
}

int hub_store_c2d_settle(struct hub_store *store, const char *device_id, const char *lock_token,
                         enum hub_c2d_settle how, int64_t now_ms, struct hub_err *err)
{
    int rc;
    if ((int)how < HUB_C2D_COMPLETE || how > HUB_C2D_ABANDON)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "unknown C2D settlement %d", (int)how);
    if ((rc = check_id("lock token", lock_token, HUB_LOCK_TOKEN_MAX, err)) != 0)
        return rc;
    return store->ops->c2d_settle(store, device_id, lock_token, how, now_ms, err);
}

int hub_store_c2d_release(struct hub_store *store, const char *device_id, size_t *released_out,
                          struct hub_err *err)
{
    size_t dummy;
    return store->ops->c2d_release(store, device_id, released_out != NULL ? released_out : &dummy,
                                   err);
}

int hub_store_c2d_purge(struct hub_store *store, const char *device_id, int64_t now_ms,
                        size_t *purged_out, struct hub_err *err)
{
    size_t dummy;
    return store->ops->c2d_purge(store, device_id, now_ms, purged_out != NULL ? purged_out : &dummy,
                                 err);
}

int hub_store_c2d_expire(struct hub_store *store, int64_t now_ms, size_t *expired_out,
                         struct hub_err *err)
{
    size_t dummy;
    return store->ops->c2d_expire(store, now_ms, expired_out != NULL ? expired_out : &dummy, err);
}

int hub_store_c2d_count(struct hub_store *store, const char *device_id, size_t *out,
                        struct hub_err *err)
{
    return store->ops->c2d_count(store, device_id, out, err);
}

int hub_store_feedback_receive1(struct hub_store *store, int64_t now_ms, const char *lock_token,
                                int64_t lock_expiry_ms, size_t max,
                                struct hub_c2d_feedback_list **out_new, struct hub_err *err)
{
    int rc;
    if (max == 0 || max > 1000)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "feedback batch size %zu is not in 1..1000", max);
    if ((rc = check_id("lock token", lock_token, HUB_LOCK_TOKEN_MAX, err)) != 0)
        return rc;
    return store->ops->feedback_receive1(store, now_ms, lock_token, lock_expiry_ms, max, out_new,
                                         err);
}

int hub_store_feedback_settle(struct hub_store *store, const char *lock_token, bool complete,
                              int64_t now_ms, size_t *settled_out, struct hub_err *err)
{
    int rc;
    if ((rc = check_id("lock token", lock_token, HUB_LOCK_TOKEN_MAX, err)) != 0)
        return rc;
    size_t dummy;
    return store->ops->feedback_settle(store, lock_token, complete, now_ms,
                                       settled_out != NULL ? settled_out : &dummy, err);
}

int hub_store_feedback_prune(struct hub_store *store, int64_t before_ms, size_t *deleted_out,
                             struct hub_err *err)
{
    size_t dummy;
    return store->ops->feedback_prune(store, before_ms, deleted_out != NULL ? deleted_out : &dummy,
                                      err);
}

/* ---- device twins ---------------------------------------------------------- */

void hub_twin_rec_clear(struct hub_twin_rec *rec)
{
    if (rec == NULL)
        return;
    free(rec->owned_);
    memset(rec, 0, sizeof(*rec));
}

void hub_twin_log_free(struct hub_twin_log *log)
{
    if (log == NULL)
        return;
    for (size_t i = 0; i < log->count; i++)
        free((char *)log->items[i].patch);
    free(log->items);
    free(log);
}

int hub_store_twin_get(struct hub_store *store, const char *id, struct hub_twin_rec *out,
                       struct hub_err *err)
{
    return store->ops->twin_get(store, id, out, err);
}

int hub_store_twin_write(struct hub_store *store, const struct hub_twin_rec *rec,
                         const char *expected_etag, const char *desired_patch, struct hub_err *err)
{
    return store->ops->twin_write(store, rec, expected_etag, desired_patch, err);
}

int hub_store_twin_log_read1(struct hub_store *store, const char *id, int64_t after_version,
                             struct hub_twin_log **out_new, struct hub_err *err)
{
    return store->ops->twin_log_read1(store, id, after_version, out_new, err);
}
