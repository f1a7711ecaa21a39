/* JSON shapes of the service API (pure: records <-> jansson values). http layer only. */
#ifndef HUB_HTTP_JSON_MAP_H
#define HUB_HTTP_JSON_MAP_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/util.h"
#include "store/store.h"

/* ISO-8601 UTC, with Azure's 0001-01-01T00:00:00Z for 0 ("never"). */
void hub_http__time_json(int64_t t, char out[HUB_TIME_ISO_LEN]);

/* Azure's device identity JSON. New reference (NULL only on OOM). */
json_t *hub_http__device_to_json(const struct hub_device *dev);

/* The caller's fields of a PUT /devices/{id} body into *out (zeroed first).
 * path_id is the id in the URL; a deviceId in the body must equal it.
 * -1 with a sentence in why on a type error or an unknown enum value. */
int hub_http__device_from_json(json_t *body, const char *path_id, struct hub_device *out, char *why,
                               size_t why_cap);

/* Azure's CertificateDescription (with_code: CertificateWithNonceDescription). */
json_t *hub_http__ca_to_json(const struct hub_ca_cert *ca, int with_code);
/* Adds hubd's lifecycle fields (not in Azure's shape) to the properties of
 * a hub_http__ca_to_json object: daysToExpiry (whole days until notAfter at
 * `now`, negative once expired), crlThisUpdate / crlNextUpdate (RFC 1123,
 * null without a CRL or nextUpdate), crlExpired (nextUpdate <= now),
 * crlRevokedCount (null without a CRL). Returns ca_json. */
json_t *hub_http__ca_lifecycle_add(json_t *ca_json, const struct hub_ca_cert *ca, int64_t now);

/* ---- twins (routes_twins.c) ------------------------------------------------ */

/* 1 if the text of a PATCH /twins/{id} body names a reported property (a
 * key without a leading '$' inside properties.reported): the service may not
 * write those. 0 otherwise, also for text that is not a JSON object (the twin
 * layer refuses that with its own message). Pure. */
int hub_http__twin_patch_has_reported(const char *body, size_t len);

/* ---- device query (query.c; the continuation token: cursor.c) -------------- */

struct hub_query;
struct hub_registry;

/* Devices examined per POST /devices/query at most: bounds one request's
 * time on the worker thread; a page cut short still carries a continuation. */
#define HUB_HTTP_QUERY_SCAN_MAX 5000
/* A continuation token: uppercase hex of a device id, NUL included. */
#define HUB_HTTP_QUERY_CURSOR_SIZE (2 * HUB_DEVICE_ID_MAX + 1)

/* Continuation token -> device id (any-case hex of a valid device id).
 * HUB_E_INVALID_ARG "malformed continuation token" otherwise. Pure. */
int hub_http__query_cursor_decode(const char *token, char id[HUB_DEVICE_ID_SIZE],
                                  struct hub_err *err);
/* Device id -> continuation token. Pure. */
void hub_http__query_cursor_encode(const char *id, char out[HUB_HTTP_QUERY_CURSOR_SIZE]);

/*
 * The store pre-selection for q (the fast path): fills f's has_* fields from
 * the `status` / `authenticationType` / `connectionState = 'v'` conditions
 * every match satisfies. Returns 1 when those conditions cannot all hold (a
 * value no device can have, or two different values for one field): no
 * device matches. The caller still runs hub_query_match on each device. Pure.
 */
int hub_http__query_store_filter(const struct hub_query *q, struct hub_device_filter *f);

/*
 * One page of POST /devices/query: examines devices in id order after
 * `continuation` (NULL or "" = from the start; else a token from a previous
 * page), at most scan_max of them, and returns in *items_new (new JSON array)
 * the service twin JSON (hub_twin_service_json_new) of up to `limit` that
 * match q. `next` receives the token for the next page, or "" when no
 * further device matches. Reads the registry (any thread).
 * Codes: INVALID_ARG (malformed continuation, limit or scan_max 0), NOMEM,
 * store errors.
 */
int hub_http__device_query_run(struct hub_registry *reg, const struct hub_query *q, size_t limit,
                               const char *continuation, size_t scan_max, json_t **items_new,
                               char next[HUB_HTTP_QUERY_CURSOR_SIZE], struct hub_err *err);

#endif
