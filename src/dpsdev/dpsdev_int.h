/* dpsdev: what the layer's files share (never included from another layer). */
#ifndef HUB_DPSDEV_INT_H
#define HUB_DPSDEV_INT_H

#include <stddef.h>

#include "dpsdev/dpsdev.h"

struct hub_dpsdev__limits {
    size_t max_packet;
    int handshake_ms;
    int idle_max_ms;
    int session_max_ms;
};

/* The env's connection limits, defaults applied where the env has 0 (the
 * caller fills *out with the defaults first). */
void hub_dpsdev__server_limits(const struct hub_dpsdev_service *svc,
                               struct hub_dpsdev__limits *out);

#endif
