/*
 * The provisioning service's ID scope on disk: <data_dir>/dps-id-scope, one
 * line ("0ne" + 8 hex digits), mode 0600. Made on first start and never
 * changed afterwards: devices are built with it (their provisioning
 * configuration names it), so a new one would orphan every device in the
 * field.
 */
#ifndef HUB_HUBD_ID_SCOPE_FILE_H
#define HUB_HUBD_ID_SCOPE_FILE_H

#include "common/err.h"
#include "dps/dps.h"

/* Reads the scope from path, or, when path does not exist, generates one
 * and writes it durably (sets *created). A file whose content is not a
 * scope of that shape is an error naming the path. */
int hub_id_scope_file_load_or_create(const char *path, char out[HUB_DPS_ID_SCOPE_SIZE],
                                     int *created, struct hub_err *err);

#endif
