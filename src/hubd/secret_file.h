/*
 * Small files of secrets in the data dir (policies, the ID scope): written
 * whole to a 0600 temporary beside them, fsync'd, then renamed over the old
 * one, so a crash leaves the old file or the new one, never a torn one, and
 * no other user can read them for an instant.
 */
#ifndef HUB_HUBD_SECRET_FILE_H
#define HUB_HUBD_SECRET_FILE_H

#include <stddef.h>

#include "common/err.h"

/* HUB_E_INVALID_ARG (path too long), HUB_E_IO naming the path. */
int hub_secret_file_write(const char *path, const char *text, size_t len, struct hub_err *err);

#endif
