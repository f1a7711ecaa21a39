/*
 * msg: what the layer's files share. Never included outside src/msg (and its
 * own unit tests).
 */
#ifndef HUB_MSG_INT_H
#define HUB_MSG_INT_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

#include "common/err.h"

/* Unix milliseconds from CLOCK_REALTIME; the default `now_ms` of both opts. */
int64_t hub_msg__wall_ms(void *ctx);

/* A random UUID v4 in its 36-character lowercase form (Azure's lock tokens
 * and generated message ids look like this). out: 37 bytes. HUB_E_CRYPTO. */
#define HUB_MSG__UUID_SIZE 37
int hub_msg__uuid(char out[HUB_MSG__UUID_SIZE], struct hub_err *err);

/* A condition variable waiting on CLOCK_MONOTONIC (wall-clock jumps must not
 * stall or hurry the committer and the sweeper). */
int hub_msg__cond_init_monotonic(pthread_cond_t *cv);
/* The CLOCK_MONOTONIC time `ms` from now, for pthread_cond_timedwait. */
struct timespec hub_msg__deadline(int64_t ms);
/* Whether CLOCK_MONOTONIC has reached `t`. */
int hub_msg__deadline_passed(const struct timespec *t);

#endif
