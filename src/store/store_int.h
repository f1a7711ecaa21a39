/*
 * store: what the SQLite backend's files share. Never included outside src/store.
 */
#ifndef HUB_STORE_INT_H
#define HUB_STORE_INT_H

#include <sqlite3.h>

#include "common/err.h"

/* Brings `db` to the newest schema (store_migrate.c). */
int hub_store__sqlite_migrate(sqlite3 *db, struct hub_err *err);

/* Maps a SQLite result code to a hub code and fills err with `what` and the
 * connection's message. */
int hub_store__sqlite_err(sqlite3 *db, int rc, const char *what, struct hub_err *err);

#endif
