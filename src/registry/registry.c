/*
 * registry: construction, the clock, etags, the change observer. The pure
 * syntax rules are in names.c.
 */
#include "registry/registry_int.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/util.h"

static int64_t clock_now(void *ctx)
{
    (void)ctx;
    return (int64_t)time(NULL);
}

int hub_registry_new(struct hub_store *store, const struct hub_registry_opts *opts,
                     struct hub_registry **out_new, struct hub_err *err)
{
    if (store == NULL || out_new == NULL)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "registry needs a store");
    if (opts != NULL && opts->code_ttl_s < 0)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "verification code lifetime must be positive");
    struct hub_registry *reg = calloc(1, sizeof(*reg));
    if (reg == NULL)
        return HUB_ERR(err, HUB_E_NOMEM, "out of memory creating the registry");
    reg->store = store;
    reg->max_cas = opts && opts->max_cas ? opts->max_cas : HUB_REGISTRY_DEFAULT_MAX_CAS;
    reg->code_ttl_s = opts && opts->code_ttl_s ? opts->code_ttl_s : HUB_REGISTRY_DEFAULT_CODE_TTL_S;
    reg->now = opts && opts->now ? opts->now : clock_now;
    reg->now_ctx = opts ? opts->now_ctx : NULL;
    atomic_init(&reg->ca_epoch, 1);
    pthread_mutex_init(&reg->snap_mu, NULL);
    pthread_mutex_init(&reg->rebuild_mu, NULL);
    pthread_mutex_init(&reg->observer_mu, NULL);
    *out_new = reg;
    return 0;
}

void hub_registry_free(struct hub_registry *reg)
{
    if (reg == NULL)
        return;
    hub_registry__trust_drop(reg);
    pthread_mutex_destroy(&reg->observer_mu);
    pthread_mutex_destroy(&reg->rebuild_mu);
    pthread_mutex_destroy(&reg->snap_mu);
    free(reg);
}

int64_t hub_registry__now(const struct hub_registry *reg)
{
    return reg->now(reg->now_ctx);
}

int hub_registry__etag_new(const char *old, char out[HUB_ETAG_SIZE], struct hub_err *err)
{
    /* 64 random bits: opaque like Azure's, and unique without a counter that
     * would have to survive restarts. Loop only guards the 2^-64 repeat. */
    for (;;) {
        unsigned char raw[8];
        int rc = hub_random_bytes(raw, sizeof(raw), err);
        if (rc != 0)
            return rc;
        hub_base64_encode(raw, sizeof(raw), out);
        if (old == NULL || strcmp(old, out) != 0)
            return 0;
    }
}

const char *hub_registry__if_match(const char *if_match)
{
    if (if_match == NULL || strcmp(if_match, "*") == 0)
        return NULL;
    return if_match;
}

void hub_registry__ca_changed(struct hub_registry *reg)
{
    atomic_fetch_add(&reg->ca_epoch, 1);
    hub_registry__notify(reg, HUB_REGISTRY_CA_CHANGED, NULL);
}

void hub_registry_observer_set(struct hub_registry *reg, hub_registry_change_fn fn, void *ctx)
{
    pthread_mutex_lock(&reg->observer_mu);
    reg->observer = fn;
    reg->observer_ctx = fn != NULL ? ctx : NULL;
    pthread_mutex_unlock(&reg->observer_mu);
}

void hub_registry__notify(struct hub_registry *reg, enum hub_registry_change what, const char *id)
{
    /* Held across the call so that clearing the observer (shutdown) cannot
     * race a callback into a context that is about to be freed. */
    pthread_mutex_lock(&reg->observer_mu);
    if (reg->observer != NULL)
        reg->observer(reg->observer_ctx, what, id);
    pthread_mutex_unlock(&reg->observer_mu);
}
