/* dpsdev: what the layer's files share (never included from another layer). */
#ifndef HUB_DPSDEV_INT_H
#define HUB_DPSDEV_INT_H

#include <stddef.h>

#include "dpsdev/dpsdev.h"

/* The env's connection limits, defaults applied (64 KiB, 10 s). */
void hub_dpsdev__server_limits(const struct hub_dpsdev_service *svc, size_t *max_packet,
                               int *handshake_ms);

#endif
