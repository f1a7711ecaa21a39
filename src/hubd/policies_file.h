/*
 * The hub's shared access policies on disk: <data_dir>/policies, mode 0600.
 * One policy per line, tab-separated: name, primary key, secondary key,
 * rights ("RegistryRead, RegistryWrite, ..."). '#' starts a comment line.
 * Made with Azure's defaults on first start; edited by hand only while the
 * hub is stopped. The same format serves the provisioning service's
 * policies (<data_dir>/dps-policies).
 */
#ifndef HUB_HUBD_POLICIES_FILE_H
#define HUB_HUBD_POLICIES_FILE_H

#include "auth/auth.h"
#include "common/err.h"

/* Loads path into *set, or, when path does not exist, creates it with fresh
 * default policies of `service` (and sets *created). Every policy in the
 * file must hold rights of that service only (the IoT Hub's `policies`
 * file, the provisioning service's `dps-policies`). Errors name path:line. */
int hub_policies_file_load_or_create(const char *path, enum hub_auth_service service,
                                     struct hub_auth_policy_set *set, int *created,
                                     struct hub_err *err);

#endif
