/*
 * POST /devices/query: the query layer (query/query.h, docs/query.md)
 * evaluated over the registry, one page at a time.
 *
 * Order and paging: devices are examined in id order (bytewise, the store's
 * order). A page holds at most `limit` twins. The continuation token is the
 * uppercase hex of a device id: the next page starts after it. It is the
 * last id returned when the page filled and another match exists, or the
 * last id examined when the scan budget ran out first (so a page may be
 * short, even empty, and still say "more": Node's query loop simply asks
 * again). No token means no more matches; Node sets hasMoreResults on the
 * header's mere presence, so it is never sent after the last match.
 *
 * Cost: every examined device's twin is loaded and matched. The top-level
 * `status`/`authenticationType`/`connectionState = '...'` conditions on the
 * query's AND chain pre-select devices in the store (hub_query_required_eqs_get0),
 * so the registry-field queries of earlier versions cost what they did. At
 * most HUB_HTTP_QUERY_SCAN_MAX devices are examined per request, so one
 * request never holds the worker thread for a whole large registry.
 * The token's encoding is in cursor.c.
 */
#include <string.h>

#include "common/util.h"
#include "http/json_map.h"
#include "query/query.h"
#include "registry/registry.h"
#include "twin/twin.h"

/* Store page size while scanning: one allocation of this many records. */
#define QUERY_BATCH 100

int hub_http__query_store_filter(const struct hub_query *q, struct hub_device_filter *f)
{
    struct hub_query_eq eqs[16];
    size_t n = hub_query_required_eqs_get0(q, eqs, sizeof(eqs) / sizeof(eqs[0]));
    if (n > sizeof(eqs) / sizeof(eqs[0]))
        n = sizeof(eqs) / sizeof(eqs[0]); /* the rest are checked by hub_query_match */
    f->has_status = f->has_auth_type = f->has_conn_state = false;
    for (size_t i = 0; i < n; i++) {
        struct hub_err err = {0};
        const char *field = eqs[i].field, *value = eqs[i].value;
        int rc = 0;
        /* Two different values for one field: no device has both. The same
         * value twice is fine (the second pre-selection is the first). */
        if (strcmp(field, "status") == 0) {
            enum hub_device_status st;
            rc = hub_device_status_parse(value, &st, &err);
            if (rc == 0 && f->has_status && f->status != st)
                return 1;
            f->has_status = true;
            f->status = st;
        } else if (strcmp(field, "authenticationType") == 0) {
            enum hub_auth_type at;
            rc = hub_auth_type_parse(value, &at, &err);
            if (rc == 0 && f->has_auth_type && f->auth_type != at)
                return 1;
            f->has_auth_type = true;
            f->auth_type = at;
        } else if (strcmp(field, "connectionState") == 0) {
            enum hub_conn_state cs;
            rc = hub_conn_state_parse(value, &cs, &err);
            if (rc == 0 && f->has_conn_state && f->conn_state != cs)
                return 1;
            f->has_conn_state = true;
            f->conn_state = cs;
        } else {
            continue;
        }
        /* A value no record can hold ('on' for status): nothing matches. The
         * twin JSON spells these fields with the names the parsers read. */
        if (rc != 0)
            return 1;
    }
    return 0;
}

/* The device's twin JSON if it matches q (*out_new), else *out_new = NULL.
 * A device deleted since the listing is skipped, not an error. */
static int examine(struct hub_registry *reg, const struct hub_query *q, const char *id,
                   json_t **out_new, struct hub_err *err)
{
    *out_new = NULL;
    struct hub_twin *twin = NULL;
    struct hub_device dev;
    struct hub_err gerr = {0};
    int rc = hub_registry_twin_get1(reg, id, &twin, &dev, &gerr);
    if (rc == HUB_E_NOT_FOUND)
        return 0;
    if (rc != 0) {
        *err = gerr;
        return rc;
    }
    json_t *json = hub_twin_service_json_new(twin, &dev);
    hub_twin_free(twin);
    if (json == NULL)
        return HUB_ERR(err, HUB_E_NOMEM, "out of memory building a twin");
    if (hub_query_match(q, json))
        *out_new = json;
    else
        json_decref(json);
    return 0;
}

int hub_http__device_query_run(struct hub_registry *reg, const struct hub_query *q, size_t limit,
                               const char *continuation, size_t scan_max, json_t **items_new,
                               char next[HUB_HTTP_QUERY_CURSOR_SIZE], struct hub_err *err)
{
    *items_new = NULL;
    next[0] = '\0';
    if (limit == 0 || scan_max == 0)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "query page size and scan budget must be > 0");
    char store_cursor[HUB_HTTP_QUERY_CURSOR_SIZE] = "";
    if (continuation != NULL && continuation[0] != '\0') {
        char after[HUB_DEVICE_ID_SIZE];
        int rc = hub_http__query_cursor_decode(continuation, after, err);
        if (rc != 0)
            return rc;
        hub_http__query_cursor_encode(after, store_cursor);
    }
    json_t *items = json_array();
    if (items == NULL)
        return HUB_ERR(err, HUB_E_NOMEM, "out of memory");
    struct hub_device_filter filter = {0};
    if (hub_http__query_store_filter(q, &filter) != 0) {
        *items_new = items; /* no device can match: one empty, final page */
        return 0;
    }

    char last_returned[HUB_DEVICE_ID_SIZE] = "";
    char last_examined[HUB_DEVICE_ID_SIZE] = "";
    size_t examined = 0;
    bool more_in_store = true, another_match = false;
    int rc = 0;
    while (more_in_store && !another_match && examined < scan_max) {
        size_t left = scan_max - examined;
        filter.limit = left < QUERY_BATCH ? left : QUERY_BATCH;
        filter.cursor = store_cursor;
        struct hub_device_list *list = NULL;
        if ((rc = hub_registry_device_list1(reg, &filter, &list, err)) != 0)
            break;
        for (size_t i = 0; i < list->count && rc == 0; i++) {
            const char *id = list->items[i].id;
            examined++;
            snprintf(last_examined, sizeof(last_examined), "%s", id);
            json_t *twin = NULL;
            if ((rc = examine(reg, q, id, &twin, err)) != 0 || twin == NULL)
                continue;
            if (json_array_size(items) == limit) {
                /* The page is full; this match only proves another page exists. */
                json_decref(twin);
                another_match = true;
                break;
            }
            if (json_array_append_new(items, twin) != 0)
                rc = HUB_ERR(err, HUB_E_NOMEM, "out of memory");
            snprintf(last_returned, sizeof(last_returned), "%s", id);
        }
        more_in_store = list->next_cursor[0] != '\0';
        snprintf(store_cursor, sizeof(store_cursor), "%s", list->next_cursor);
        hub_device_list_free(list);
        if (rc != 0)
            break;
    }
    if (rc != 0) {
        json_decref(items);
        return rc;
    }
    if (another_match)
        hub_http__query_cursor_encode(last_returned, next);
    else if (more_in_store) /* scan budget spent: resume after what was examined */
        hub_http__query_cursor_encode(last_examined, next);
    *items_new = items;
    return 0;
}
