/*
 * The hub's own TLS identity, kept in <data_dir>/tls/:
 *   hub-ca.pem / hub-ca.key   the hub CA (clients trust hub-ca.pem)
 *   server.pem / server.key   server certificate (+ hub CA) and key
 * Made on first start. On later starts the files are reused, and the server
 * certificate is re-issued by the same hub CA when it no longer covers every
 * configured host name or is within 30 days of expiry, so clients that trust
 * hub-ca.pem never notice. Keys are 0600.
 */
#ifndef HUB_HUBD_IDENTITY_H
#define HUB_HUBD_IDENTITY_H

#include <stddef.h>

#include "common/err.h"

#define HUB_IDENTITY_PATH_MAX 4096

struct hub_identity {
    char ca_file[HUB_IDENTITY_PATH_MAX];           /* what clients must trust */
    char server_chain_file[HUB_IDENTITY_PATH_MAX]; /* server cert + hub CA */
    char server_key_file[HUB_IDENTITY_PATH_MAX];
    int created; /* 1 when this start made the hub CA */
};

/* Ensures the identity exists and covers localhost, 127.0.0.1, ::1 and every
 * name in hostnames (DNS names or IP literals). */
int hub_identity_ensure(const char *data_dir, const char *const *hostnames, size_t hostname_count,
                        struct hub_identity *out, struct hub_err *err);

#endif
