/*
 * query: the device query language, a documented subset of IoT Hub's
 * SQL-like language (docs/query.md has the full grammar, semantics and
 * error format). Parse once into a caller-owned AST, then evaluate it against
 * any number of device twins. Pure: no I/O, no logging, no globals, no
 * libevent.
 *
 * Owns: the grammar (keywords, paths, literals, operators, functions), the
 * limits on a query's size, error positions, and the comparison semantics
 * (three-valued: a missing field or a type mismatch is "undefined", which
 * never matches, and NOT undefined is still undefined, as in Azure).
 * Knows nothing of: HTTP, the store, how a twin document is built. The
 * caller builds each device's twin as a jansson object of Azure's shape:
 *
 *   {"deviceId", "etag", "status", "statusReason", "connectionState",
 *    "lastActivityTime", "cloudToDeviceMessageCount", "authenticationType",
 *    "version", "tags": {...}, "properties": {"desired": {...},
 *    "reported": {...}}, "capabilities": {"iotEdge": bool},
 *    "x509CertificateExpiry": "ISO-8601 UTC" or null}
 *
 * Grammar (keywords and function names case-insensitive; field names
 * case-sensitive):
 *
 *   query   := SELECT '*' FROM devices [WHERE expr]
 *   expr    := expr OR expr | expr AND expr | NOT expr | '(' expr ')'
 *            | path op literal | literal op path | path IN '[' literal, ... ']'
 *            | func '(' path [',' 'string'] ')'
 *   op      := = | != | <> | < | > | <= | >=
 *   path    := ident ('.' ident)*        a leading "devices." is dropped
 *   literal := 'string' ('' is a quote) | number | true | false | null
 *   func    := IS_DEFINED | IS_NULL | IS_BOOL | IS_NUMBER | IS_STRING
 *            | IS_OBJECT | IS_ARRAY | IS_PRIMITIVE | STARTSWITH | ENDSWITH
 *
 * Precedence: NOT binds tightest, then AND, then OR.
 *
 * Thread rules: a parsed query is immutable; hub_query_match() and the
 * getters may run on any number of threads at once on the same query.
 */
#ifndef HUB_QUERY_QUERY_H
#define HUB_QUERY_QUERY_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "common/err.h"

/* Limits, checked before anything is allocated in proportion to them. They
 * keep one request's parse and per-device evaluation cost small and bounded. */
#define HUB_QUERY_MAX_BYTES      8192 /* query text, in bytes */
#define HUB_QUERY_MAX_CONDITIONS 64   /* comparisons, IN tests and function calls */
#define HUB_QUERY_MAX_DEPTH      8    /* nested '(' and NOT, counted together */
#define HUB_QUERY_MAX_IN_VALUES  64   /* values in one IN [...] list */

struct hub_query; /* opaque parsed query */

/*
 * Parses text[0..len) (need not be NUL-terminated; a NUL byte inside it is
 * a syntax error). On success *out receives a new query the caller frees
 * with hub_query_free(); `SELECT * FROM devices` without WHERE is a valid
 * query that matches every device.
 *
 * Returns 0, or:
 *   HUB_E_PARSE      syntax error;
 *   HUB_E_TOO_LARGE  a limit above was exceeded;
 *   HUB_E_NOMEM;
 *   HUB_E_INVALID_ARG  text or out is NULL.
 * For PARSE and TOO_LARGE (both are the client's fault: HTTP 400),
 * err->msg is exactly "query error at column N: <what>", N being the
 * 1-based byte offset of the offending token (len + 1 at the end of the
 * text; HUB_QUERY_MAX_BYTES + 1 for "query too long"), e.g.
 *   "query error at column 10: expected FROM"
 * *out is set to NULL on failure.
 */
int hub_query_parse_new(const char *text, size_t len, struct hub_query **out, struct hub_err *err);

/* Frees a query; NULL is accepted. */
void hub_query_free(struct hub_query *q);

/*
 * Evaluates q against one device's twin (borrowed for the call; a JSON
 * object of the shape above; anything else matches only a query without
 * WHERE). True when the WHERE clause is true; false when it is false or
 * undefined. Never fails, never allocates.
 */
bool hub_query_match(const struct hub_query *q, const json_t *twin);

/*
 * True when no path in q starts with "tags" or "properties": the caller may
 * evaluate q on a twin built from the device registry record alone, without
 * loading twin documents.
 */
bool hub_query_registry_only(const struct hub_query *q);

/*
 * Conditions `field = 'string'` on a top-level field (one path segment after
 * an optional "devices.") that sit on the top-level AND chain, i.e. that
 * every matching device satisfies. For the store filter fast path: the
 * caller may pre-select devices with these (e.g. status, authenticationType,
 * connectionState) but must still call hub_query_match() on each result,
 * because the rest of the query is not represented here.
 *
 * Fills out[0..min(count, cap)) and returns count. field and value are
 * NUL-terminated, borrowed from q, valid until hub_query_free(q); value is
 * the decoded string ('' already turned into ').
 */
struct hub_query_eq {
    const char *field;
    const char *value;
};
size_t hub_query_required_eqs_get0(const struct hub_query *q, struct hub_query_eq *out, size_t cap);

#endif
