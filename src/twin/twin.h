/*
 * twin: the device twin document and its rules (pure: jansson, no I/O).
 *
 * Owns: the twin model (tags, desired and reported properties, their
 * $version and $metadata, the twin's overall version), JSON merge patch
 * (RFC 7396) as Azure applies it, key/value validation and Azure's size and
 * depth limits, the JSON shapes Azure puts on the wire (service GET
 * /twins/{id}, device twin GET over MQTT, desired-change notification), and
 * the compact JSON text the store keeps per section.
 * Knows nothing of: storage, etags' generation (the registry sets
 * `etag`), clocks (every change takes `now`, Unix seconds), sockets, HTTP.
 *
 * Document model (shared/reference/azure-iot-hub-protocol.md §2 "Twin", §4
 * "Twin"):
 *
 *   field           | what
 *   ----------------|------------------------------------------------------
 *   tags            | object; service-only; no $version, no $metadata
 *   desired         | object without '$' keys; written by the service
 *   desired_meta    | Azure's "$metadata" tree for desired: {"$lastUpdated":
 *                   |  T, "$lastUpdatedVersion": N, "<key>": {...}} where
 *                   |  every property node has "$lastUpdated" and
 *                   |  "$lastUpdatedVersion" and object properties also
 *                   |  carry their children's nodes (recursively)
 *   reported        | object without '$' keys; written by the device
 *   reported_meta   | same tree as desired_meta, without $lastUpdatedVersion
 *   desired_version | desired "$version": 1 for a new twin, +1 per change
 *   reported_version| reported "$version": 1 for a new twin, +1 per change
 *   version         | the twin's "version": 1 for a new twin, +1 per
 *                   |  successful operation (whatever sections it touched)
 *   etag            | set by the registry (a fresh one per change)
 *
 * Versions bump on every successful patch, even one that changes no value
 * (Azure does the same: a patch is an event the device is told about, and
 * its $version is how the device orders them). A patch that is refused
 * changes nothing at all.
 *
 * Merge (RFC 7396 as Azure applies it): objects merge key by key,
 * recursively; a `null` value deletes the key; any other value (string,
 * number, boolean, array) replaces, and replacing an object by a non-object
 * or the reverse is a replace. Metadata follows: every property node the
 * patch touched (including object nodes on the path) gets $lastUpdated=now
 * (and $lastUpdatedVersion=the new section version for desired); deleted
 * properties lose their metadata; a replaced object's old children's
 * metadata goes with it. The section root's $lastUpdated (and
 * $lastUpdatedVersion) is set on every change of the section.
 *
 * Validation (Azure "IoT Hub quotas and throttling" / "Understand device
 * twins", section "Tags and properties format"):
 *   - keys: 1..1024 bytes of UTF-8, case-sensitive, without '.', '$', ' '
 *     or control characters (C0, DEL, C1);
 *   - values: string (<= 4096 bytes), number, boolean, object, array (a
 *     leaf value: its elements are counted in size and depth, and objects
 *     inside it follow the key rules), and null only in patches (deletion);
 *   - size: desired <= 32 KiB, reported <= 32 KiB, tags <= 8 KiB, measured
 *     on the section's compact JSON after the patch, without $metadata and
 *     $version;
 *   - depth: <= 10 levels in desired and reported, <= 5 in tags. A
 *     section's top-level properties are at level 1; each object or array
 *     value opens one more level ({"a":{"b":1}} has depth 2).
 *   Refusals: HUB_E_TOO_LARGE for size ("reported properties would be 33012
 *   bytes, over the 32768-byte limit"), HUB_E_INVALID_ARG for everything
 *   else, HUB_E_PARSE for text that is not JSON; the message names the key
 *   path.
 *
 * Service request bodies (PATCH and PUT /twins/{id}) have the twin's shape:
 * {"tags":{...},"properties":{"desired":{...}}}. Only "tags" and
 * "properties.desired" are read; other twin fields a client may send back
 * from a GET (deviceId, etag, version, status, properties.reported, ...) are
 * ignored, and so are "$metadata" and "$version" at the top of desired (the
 * shape a GET returned). Any other '$' key is refused. A PUT body holds
 * values only (null is refused: there is nothing to delete in a
 * replacement); a PATCH naming neither tags nor desired changes nothing
 * (no version bump, no write).
 *
 * Device twin GET over MQTT: {"desired":{...,"$version":N},"reported":{...,
 * "$version":M}} without $metadata (Azure's devices never receive
 * metadata). A desired-change notification is the desired patch plus
 * "$version":N.
 *
 * Thread rules: a struct hub_twin is a plain value with no locking: one
 * thread at a time. Functions without a twin argument are reentrant.
 *
 * Ownership: struct hub_twin and struct hub_twin_request come from *_new /
 * *_parse and are freed with hub_twin_free / hub_twin_request_free (NULL
 * ok). Returned json_t * are new references the caller json_decref()s.
 * json_t arguments are borrowed for the call.
 */
#ifndef HUB_TWIN_H
#define HUB_TWIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/err.h"
#include "store/store.h" /* struct hub_device (input of the service JSON), HUB_ETAG_SIZE */

/* Azure's documented limits ("IoT Hub quotas and throttling": device twin
 * sizes; "Understand device twins": tags and properties format). */
#define HUB_TWIN_DESIRED_MAX_BYTES  (32 * 1024)
#define HUB_TWIN_REPORTED_MAX_BYTES (32 * 1024)
#define HUB_TWIN_TAGS_MAX_BYTES     (8 * 1024)
#define HUB_TWIN_PROPS_MAX_DEPTH    10
#define HUB_TWIN_TAGS_MAX_DEPTH     5
#define HUB_TWIN_KEY_MAX_BYTES      1024
#define HUB_TWIN_STRING_MAX_BYTES   4096
/* Request text is refused before parsing beyond this: room for a full tags
 * plus desired section (40 KiB) with slack for deletions and whitespace. */
#define HUB_TWIN_REQUEST_MAX_BYTES (64 * 1024)

enum hub_twin_section {
    HUB_TWIN_TAGS = 0,
    HUB_TWIN_DESIRED,
    HUB_TWIN_REPORTED,
};

struct hub_twin {
    json_t *tags;          /* object, owned */
    json_t *desired;       /* object without '$' keys, owned */
    json_t *desired_meta;  /* object: the "$metadata" tree of desired, owned */
    json_t *reported;      /* object, owned */
    json_t *reported_meta; /* object, owned */
    int64_t desired_version;
    int64_t reported_version;
    int64_t version;
    char etag[HUB_ETAG_SIZE]; /* "" until the registry sets one */
};

/* A new twin as Azure shows it for a new device: empty sections, every
 * version 1, the metadata roots' $lastUpdated = now. Codes: NOMEM. */
int hub_twin_new(int64_t now, struct hub_twin **out_new, struct hub_err *err);
void hub_twin_free(struct hub_twin *twin);
/* Deep copy. Codes: NOMEM. */
int hub_twin_copy(const struct hub_twin *twin, struct hub_twin **out_new, struct hub_err *err);

/* Human name of a section: "tags", "desired properties", "reported properties". */
const char *hub_twin_section_name(enum hub_twin_section s);

/*
 * Merges `patch` (an object, borrowed) into one section, with the rules and
 * limits above, and bumps that section's $version (not for tags) and the
 * twin's version. All or nothing: on failure the twin is unchanged.
 * Codes: INVALID_ARG, TOO_LARGE, NOMEM.
 */
int hub_twin_section_merge(struct hub_twin *twin, enum hub_twin_section s, const json_t *patch,
                           int64_t now, struct hub_err *err);

/* ---- requests (what the registry receives as text) ----------------------- */

enum hub_twin_op {
    HUB_TWIN_OP_REPORTED_PATCH = 0, /* device, MQTT PATCH properties/reported: a merge patch */
    HUB_TWIN_OP_SERVICE_PATCH,      /* service PATCH /twins/{id}: tags + desired merge */
    HUB_TWIN_OP_SERVICE_REPLACE,    /* service PUT /twins/{id}: tags + desired replaced */
};

/* A parsed, validated request, reusable (a compare-and-swap retry applies
 * the same request to a fresher twin). Opaque. */
struct hub_twin_request;

/*
 * Parses `json`/`len` (borrowed; need not be NUL-terminated) as a request of
 * kind `op` and checks what can be checked without the twin: object shapes,
 * keys, value types, string lengths, depth (a patch deeper than the limit
 * can only make the section deeper). Codes: PARSE (not JSON), TOO_LARGE
 * (over HUB_TWIN_REQUEST_MAX_BYTES), INVALID_ARG, NOMEM.
 */
int hub_twin_request_parse(enum hub_twin_op op, const char *json, size_t len,
                           struct hub_twin_request **out_new, struct hub_err *err);
void hub_twin_request_free(struct hub_twin_request *req);
enum hub_twin_op hub_twin_request_op(const struct hub_twin_request *req);
/* Whether applying it changes desired (then the device is to be told). */
bool hub_twin_request_touches_desired(const struct hub_twin_request *req);

/*
 * Applies `req` to `twin`: one version bump for the whole operation, section
 * versions for the sections it names. For a replace, tags and desired become
 * the request's (missing ones become {}), reported is untouched, and desired
 * metadata is rebuilt (every property stamped now). All or nothing.
 * When desired changed and `desired_patch_new` is non-NULL it receives the
 * notification body: for a patch, the desired patch as given plus
 * "$version"; for a replace, the merge patch from the old desired to the new
 * one (removed keys as null) plus "$version". Otherwise it is set to NULL.
 * Codes: INVALID_ARG, TOO_LARGE, NOMEM.
 */
int hub_twin_request_apply(struct hub_twin *twin, const struct hub_twin_request *req, int64_t now,
                           json_t **desired_patch_new, struct hub_err *err);

/* The RFC 7396 merge patch that turns `from` into `to` (both objects):
 * removed keys as null, changed values as the new value, objects diffed
 * recursively. NULL on NOMEM. */
json_t *hub_twin_json_diff(const json_t *from, const json_t *to);

/* ---- wire shapes ---------------------------------------------------------- */

/*
 * Service GET /twins/{id} (and the body of PATCH/PUT answers):
 * {"deviceId","etag","deviceEtag","status","statusReason","statusUpdateTime",
 *  "connectionState","lastActivityTime","cloudToDeviceMessageCount",
 *  "authenticationType","x509Thumbprint":{"primaryThumbprint",
 *  "secondaryThumbprint"},"modelId":"","version","tags",
 *  "properties":{"desired":{...,"$metadata","$version"},"reported":{...}},
 *  "capabilities":{"iotEdge"}}. `dev` is the twin's device (borrowed).
 * Times as Azure: ISO 8601 UTC, "0001-01-01T00:00:00Z" for never. NULL on NOMEM.
 */
json_t *hub_twin_service_json_new(const struct hub_twin *twin, const struct hub_device *dev);

/* Device twin GET over MQTT: {"desired":{...,"$version":N},"reported":{...,"$version":M}}. */
json_t *hub_twin_device_json_new(const struct hub_twin *twin);

/* A desired-change notification for a device that has not seen the
 * intermediate patches: the whole desired section plus "$version". */
json_t *hub_twin_desired_json_new(const struct hub_twin *twin);

/* ---- storage text ---------------------------------------------------------- */

/* Compact JSON text of each section (owned; hub_twin_text_clear). */
struct hub_twin_text {
    char *tags;
    char *desired;
    char *desired_meta;
    char *reported;
    char *reported_meta;
};

/* Codes: NOMEM. On failure *out is cleared. */
int hub_twin_encode(const struct hub_twin *twin, struct hub_twin_text *out, struct hub_err *err);
void hub_twin_text_clear(struct hub_twin_text *text); /* frees the strings, zeroes; NULL ok */

/*
 * Fills twin's five JSON members from stored text (borrowed), replacing
 * (and releasing) what they held; versions and etag are the caller's to
 * set. Each text must be a JSON object (HUB_E_STORE otherwise: a damaged
 * row). All or nothing. Codes: STORE, NOMEM.
 */
int hub_twin_decode(struct hub_twin *twin, const char *tags, const char *desired,
                    const char *desired_meta, const char *reported, const char *reported_meta,
                    struct hub_err *err);

#endif
