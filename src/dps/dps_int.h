/*
 * dps: what the layer's files share. Never included outside src/dps (and its
 * unit tests).
 */
#ifndef HUB_DPS_INT_H
#define HUB_DPS_INT_H

#include <pthread.h>

#include "dps/dps.h"

struct hub_dps {
    struct hub_store *store;  /* borrowed */
    struct hub_registry *reg; /* borrowed */
    char id_scope[HUB_DPS_ID_SCOPE_SIZE];
    char assigned_hub[HUB_DPS_HOST_SIZE];
    int64_t (*now)(void *ctx);
    void *now_ctx;
    pthread_mutex_t assign_mu; /* serializes hub_dps_assign */
};

int64_t hub_dps__now(const struct hub_dps *dps);
/* A fresh etag: base64 of 8 random bytes, like the registry's. */
int hub_dps__etag_new(char out[HUB_ETAG_SIZE], struct hub_err *err);
/*
 * Rule 1a of dps.h: is `leaf`, trusted because it is pinned by an individual
 * enrollment and not because a CA vouches for it, fit for TLS client
 * authentication on its own at `now` (Unix seconds)? notBefore <= now <=
 * notAfter [CERT_NOT_YET_VALID / CERT_EXPIRED]; extendedKeyUsage absent or
 * holding clientAuth or anyExtendedKeyUsage [CHAIN_EKU]; keyUsage absent or
 * holding digitalSignature [CHAIN_KEY_USAGE]; extensions that OpenSSL cannot
 * decode [CHAIN_PROFILE]. Pure; err->msg names the fault.
 */
int hub_dps__leaf_usable(X509 *leaf, int64_t now, struct hub_err *err);
/* Parses a stored/ API registration JSON back into *out. */
int hub_dps__registration_parse(const char *json, struct hub_dps_registration *out,
                                struct hub_err *err);

#endif
