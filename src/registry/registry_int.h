/*
 * registry: what the registry's files share. Never included outside src/registry.
 */
#ifndef HUB_REGISTRY_INT_H
#define HUB_REGISTRY_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "registry/registry.h"

struct hub_registry {
    struct hub_store *store; /* borrowed */
    size_t max_cas;
    int64_t code_ttl_s;
    int64_t (*now)(void *ctx);
    void *now_ctx;

    /* Bumped after every committed change that may alter the verified CA
     * set; a snapshot built at epoch E is current while epoch == E. */
    _Atomic uint64_t ca_epoch;
    pthread_mutex_t snap_mu;    /* guards snap (the pointer and taking a ref) */
    pthread_mutex_t rebuild_mu; /* one rebuild at a time */
    struct hub_registry_trust *snap;

    pthread_mutex_t observer_mu; /* guards the two fields below and each call */
    hub_registry_change_fn observer;
    void *observer_ctx;
};

int64_t hub_registry__now(const struct hub_registry *reg);

/* A fresh etag, different from `old` (may be NULL or ""). */
int hub_registry__etag_new(const char *old, char out[HUB_ETAG_SIZE], struct hub_err *err);

/* NULL or "*" -> NULL (unconditional); otherwise if_match itself. */
const char *hub_registry__if_match(const char *if_match);

/* Marks the verified set as possibly changed (after a commit). */
void hub_registry__ca_changed(struct hub_registry *reg);

/* Calls the observer, if any (after a commit). */
void hub_registry__notify(struct hub_registry *reg, enum hub_registry_change what, const char *id);

/* Drops the registry's cached snapshot (hub_registry_free). */
void hub_registry__trust_drop(struct hub_registry *reg);

#endif
