/*
 * twin: what the twin layer's files share. Never included outside src/twin
 * (and its own unit tests).
 */
#ifndef HUB_TWIN_INT_H
#define HUB_TWIN_INT_H

#include "twin/twin.h"

/* The metadata keys Azure uses inside "$metadata". */
#define HUB_TWIN__LAST_UPDATED         "$lastUpdated"
#define HUB_TWIN__LAST_UPDATED_VERSION "$lastUpdatedVersion"

/* Compact JSON size of `v` in bytes (what the limits measure). */
size_t hub_twin__compact_size(const json_t *v);

/* A metadata node stamped with `now` (and $lastUpdatedVersion when
 * version > 0). NULL on NOMEM. */
json_t *hub_twin__stamp_new(int64_t now, int64_t version);

#endif
