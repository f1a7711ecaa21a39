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
/* Azure's twin JSON as the device query returns it (tags and properties empty
 * until twins exist). New reference. */
json_t *hub_http__device_twin_to_json(const struct hub_device *dev);

/* The caller's fields of a PUT /devices/{id} body into *out (zeroed first).
 * path_id is the id in the URL; a deviceId in the body must equal it.
 * -1 with a sentence in why on a type error or an unknown enum value. */
int hub_http__device_from_json(json_t *body, const char *path_id, struct hub_device *out, char *why,
                               size_t why_cap);

/* Azure's CertificateDescription (with_code: CertificateWithNonceDescription). */
json_t *hub_http__ca_to_json(const struct hub_ca_cert *ca, int with_code);

/* Device query: `SELECT * FROM devices [WHERE f = 'v' [AND f = 'v']...]` with
 * f one of status, authenticationType, connectionState (see docs/api.md).
 * Fills the filter's has_* fields. -1 with why (naming the 1-based column of
 * the problem) otherwise. Pure. */
int hub_http__device_query_parse(const char *query, struct hub_device_filter *filter, char *why,
                                 size_t why_cap);

#endif
