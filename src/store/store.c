/*
 * store: record helpers (free, copy, enum names) and the thin wrappers that
 * dispatch through a backend's ops table.
 */
#include "store/store.h"

#include <stdlib.h>
#include <string.h>

void hub_ca_cert_clear(struct hub_ca_cert *ca)
{
    if (ca == NULL)
        return;
    free(ca->pem);
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
    *dst = *src;
    dst->pem = pem;
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
