/*
 * iothub: Azure IoT Hub's topic model on top of MQTT. Pure: no I/O, no
 * logging, no allocation, no globals.
 *
 * Owns: the CONNECT username format, the meaning of device PUBLISH topics
 * (telemetry, twin GET / PATCH reported, method responses), the SUBSCRIBE
 * filters IoT Hub supports, property bags (parse and encode), and building
 * the topics the hub publishes (C2D, twin responses and desired-property
 * notifications, method requests).
 * Knows nothing of: sockets, sessions, authentication decisions (it returns
 * the ids it found; `net`/`hubd` compare them with the authenticated
 * identity, helped by the *_owner_check functions), storage.
 *
 * Thread rules: every function is reentrant and may run on any thread.
 *
 * Grammar (reference = shared/reference/azure-iot-hub-protocol.md):
 *
 * | item                 | form                                                                 |
 * ref |
 * |----------------------|----------------------------------------------------------------------|-----|
 * | username             | `{host}/{deviceId}[/{moduleId}][/][?]{k=v&...}`; keys api-version,    |
 * §1  | |                      | DeviceClientType, model-id in any order; values percent-decoded |
 * | | telemetry            | `devices/{d}/messages/events/[{bag}][/]` | §2  | | telemetry (module)
 * | `devices/{d}/modules/{m}/messages/events/[{bag}][/]`                  | §2  | | twin GET |
 * `$iothub/twin/GET/?$rid={rid}`                                        | §2  | | twin PATCH
 * reported  | `$iothub/twin/PATCH/properties/reported/?$rid={rid}`                  | §2  | |
 * method response      | `$iothub/methods/res/{status}/?$rid={rid}`                            | §2
 * | | C2D (hub -> device)  | `devices/{d}/messages/devicebound/[{bag}]` | §2  | | twin response |
 * `$iothub/twin/res/{status}/?$rid={rid}[&$version={v}]`                | §2  | | desired
 * notification | `$iothub/twin/PATCH/properties/desired/?$version={v}`                 | §2  | |
 * method request       | `$iothub/methods/POST/{name}/?$rid={rid}`                             | §2
 * | | filters              | `devices/{d}/messages/devicebound/#`, `$iothub/twin/res/#`, | §2  | |
 * | `$iothub/twin/PATCH/properties/desired/#`, `$iothub/methods/POST/#`  |     | | property bag |
 * `k=v&k2=v2`; `k` alone = null, `k=` = ""; `%XX` decoded, `+` is a     | §2  | | | plus sign; keys
 * `$.mid` ... (sent as `%24.mid`) are system properties |     |
 *
 * Ids inside topics and usernames are taken verbatim (the SDKs put them in
 * unencoded) and compared exactly, case-sensitively.
 *
 * Ownership: views (struct hub_mqtt_str) point into the caller's input and
 * live as long as it does. Decoded text is copied into caller-owned fixed
 * buffers inside the output structs (NUL-terminated, no NUL inside).
 *
 * Errors: HUB_E_PARSE (malformed: bad escape, empty segment, missing $rid),
 * HUB_E_TOO_LARGE (over a limit below, or an output buffer too short),
 * HUB_E_FORBIDDEN (owner checks), HUB_E_INVALID_ARG (builder arguments that
 * would not survive the trip through a topic). err->msg says exactly what.
 */
#ifndef HUB_IOTHUB_H
#define HUB_IOTHUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "mqtt/mqtt.h"

/* ---- limits ------------------------------------------------------------- */

/* Whole username. Node's is ~130 bytes, with a model id ~170. */
#define HUB_IOTHUB_USERNAME_MAX 2048
/* 253 DNS characters plus ":65535" (GatewayHostName with a port, §8). */
#define HUB_IOTHUB_HOST_MAX 259
/* Device and module ids: Azure's limit (128 characters). */
#define HUB_IOTHUB_ID_MAX 128
/* "2021-04-12"; room for preview suffixes. */
#define HUB_IOTHUB_API_VERSION_MAX 64
/* Decoded DeviceClientType (a user agent): Node's is ~60 characters. */
#define HUB_IOTHUB_CLIENT_TYPE_MAX 512
/* Decoded model-id: a DTMI (DTDL v2 caps them at 2048; real ones < 128). */
#define HUB_IOTHUB_MODEL_ID_MAX 512

/* A raw property bag (percent-encoded form). Sized with config
 * `mqtt_max_packet_bytes`'s 8 KiB allowance for the topic and its bag. */
#define HUB_IOTHUB_BAG_MAX 8192
/* Application properties per message. Azure documents no count; 32 bounds
 * the work and the struct. More is refused, never truncated. */
#define HUB_IOTHUB_APP_PROPS_MAX 32
/* Decoded key length. */
#define HUB_IOTHUB_PROP_KEY_MAX 256

/* ---- CONNECT username --------------------------------------------------- */

struct hub_iothub_username {
    char host[HUB_IOTHUB_HOST_MAX + 1];    /* verbatim, non-empty */
    char device_id[HUB_IOTHUB_ID_MAX + 1]; /* verbatim, non-empty */
    bool has_module;
    char module_id[HUB_IOTHUB_ID_MAX + 1];            /* verbatim; "" when !has_module */
    char api_version[HUB_IOTHUB_API_VERSION_MAX + 1]; /* decoded; "" if absent */
    char client_type[HUB_IOTHUB_CLIENT_TYPE_MAX + 1]; /* decoded DeviceClientType */
    char model_id[HUB_IOTHUB_MODEL_ID_MAX + 1];       /* decoded model-id */
};

/*
 * Parses a CONNECT username leniently (reference §1): the first segment is
 * the host, the second the device id, an optional third the module id; then
 * `key=value&...` pairs in any order, with or without a leading `?` and with
 * or without the `/` before it (`host/dev/api-version=...` from old C SDKs).
 * A third segment counts as the query, not a module id, when it starts with
 * `?` or with one of the known keys followed by `=`. Unknown keys are ignored
 * (their escapes are still checked); a known key twice is an error, so no two
 * readers can disagree. Every field of *out is overwritten.
 * Errors (caller answers CONNACK 4): HUB_E_PARSE (no device segment, empty
 * host/device/module, extra segments, bad %-escape, %00, invalid UTF-8),
 * HUB_E_TOO_LARGE (a field over its limit above).
 */
int hub_iothub_username_parse(const char *s, size_t len, struct hub_iothub_username *out,
                              struct hub_err *err);

/* ---- property bags ------------------------------------------------------ */

/* IoT Hub system properties (reference §2 table). */
enum hub_iothub_sys {
    HUB_IOTHUB_SYS_MID,     /* $.mid   messageId */
    HUB_IOTHUB_SYS_CID,     /* $.cid   correlationId */
    HUB_IOTHUB_SYS_UID,     /* $.uid   userId */
    HUB_IOTHUB_SYS_TO,      /* $.to    to */
    HUB_IOTHUB_SYS_CT,      /* $.ct    contentType */
    HUB_IOTHUB_SYS_CE,      /* $.ce    contentEncoding */
    HUB_IOTHUB_SYS_EXP,     /* $.exp   expiry (ISO-8601) */
    HUB_IOTHUB_SYS_IFID,    /* $.ifid  interfaceId */
    HUB_IOTHUB_SYS_ON,      /* $.on    module output name */
    HUB_IOTHUB_SYS_SUB,     /* $.sub   component */
    HUB_IOTHUB_SYS_CTIME,   /* $.ctime creation time (C SDK) */
    HUB_IOTHUB_SYS_DIAGID,  /* $.diagid */
    HUB_IOTHUB_SYS_DIAGCTX, /* $.diagctx */
    HUB_IOTHUB_SYS__COUNT
};

/* "$.mid", ... ; NULL out of range. Static. */
const char *hub_iothub_sys_name(enum hub_iothub_sys which);

/* One property, decoded. As parser output: key/value point into the owning
 * hub_iothub_props' arena, NUL-terminated. As encoder input: any borrowed
 * memory, lengths authoritative. value == NULL is the null value (`key`
 * alone on the wire), distinct from "" (`key=`). */
struct hub_iothub_prop {
    const char *key; /* NULL: absent (system slots only) */
    size_t key_len;
    const char *value;
    size_t value_len;
};

#define HUB_IOTHUB_PROPS_ARENA                                                                     \
    (HUB_IOTHUB_BAG_MAX + 2 * (HUB_IOTHUB_APP_PROPS_MAX + HUB_IOTHUB_SYS__COUNT))

/* A parsed bag. Caller-owned; ~10 KiB, so embed it in a per-connection or
 * per-worker struct rather than the stack of a deep call chain. Points into
 * itself: never copy it by value (re-parse instead). */
struct hub_iothub_props {
    struct hub_iothub_prop sys[HUB_IOTHUB_SYS__COUNT]; /* by enum hub_iothub_sys */
    struct hub_iothub_prop app[HUB_IOTHUB_APP_PROPS_MAX];
    size_t app_count; /* in bag order */
    char arena[HUB_IOTHUB_PROPS_ARENA];
    size_t arena_used;
};

/*
 * Parses a property bag (`k=v&k2=v2`, reference §2) into *out (overwritten).
 * Keys and values are percent-decoded (`%XX`, either hex case); `+` stays a
 * plus sign; empty pairs (`a=1&&b=2`, a trailing `&`) are skipped. A decoded
 * key equal to a system name fills that slot; every other key (including
 * unknown `$.x`) is an application property.
 * Errors: HUB_E_PARSE (bad escape, %00, invalid UTF-8 after decoding, empty
 * key, a key twice), HUB_E_TOO_LARGE (bag over HUB_IOTHUB_BAG_MAX, key over
 * HUB_IOTHUB_PROP_KEY_MAX, more than HUB_IOTHUB_APP_PROPS_MAX app props).
 */
int hub_iothub_props_parse(const char *bag, size_t len, struct hub_iothub_props *out,
                           struct hub_err *err);

/* The application property whose decoded key equals key (NUL-terminated),
 * borrowed from props, or NULL. */
const struct hub_iothub_prop *hub_iothub_props_app_find0(const struct hub_iothub_props *props,
                                                         const char *key);

/* Exact length of hub_iothub_props_encode's output (NUL excluded). */
size_t hub_iothub_props_encoded_len(const struct hub_iothub_prop *props, size_t n);

/*
 * Writes props[0..n) as a bag: `k=v` joined by `&`, keys and values
 * percent-encoded except RFC 3986 unreserved characters (A-Z a-z 0-9 - . _ ~),
 * so `/`, `&`, `=`, `%`, space and `$` (as %24, like Node and C) survive the
 * topic. Null values are written as the key alone. System properties are
 * passed like any other, with their "$.mid" names. Writes a NUL; returns the
 * length without it. HUB_E_INVALID_ARG for an empty or NULL key;
 * HUB_E_TOO_LARGE if cap < length + 1.
 */
int hub_iothub_props_encode(char *buf, size_t cap, const struct hub_iothub_prop *props, size_t n,
                            struct hub_err *err);

/* ---- device PUBLISH topics ---------------------------------------------- */

enum hub_iothub_topic_kind {
    HUB_IOTHUB_TOPIC_UNKNOWN = 0,
    HUB_IOTHUB_TOPIC_TELEMETRY,
    HUB_IOTHUB_TOPIC_TWIN_GET,
    HUB_IOTHUB_TOPIC_TWIN_PATCH_REPORTED,
    HUB_IOTHUB_TOPIC_METHOD_RESPONSE,
};

struct hub_iothub_topic {
    enum hub_iothub_topic_kind kind;
    /* TELEMETRY: ids as they appear in the topic; module_id.len == 0 for the
     * device form. Compare with the authenticated identity
     * (hub_iothub_topic_owner_check). */
    struct hub_mqtt_str device_id;
    struct hub_mqtt_str module_id;
    /* TELEMETRY: the raw bag (one trailing '/' removed; may be empty), for
     * hub_iothub_props_parse. */
    struct hub_mqtt_str bag;
    /* twin / method: the raw text after '?' and its raw, non-empty $rid
     * (echo it back verbatim in the response topic). */
    struct hub_mqtt_str query;
    struct hub_mqtt_str rid;
    int status; /* METHOD_RESPONSE: 0..999999999 as sent by the device */
};

/*
 * Classifies a device PUBLISH topic. Returns 0 with kind UNKNOWN for
 * anything IoT Hub does not accept from a device (the caller closes the
 * connection, reference §2); 0 with a known kind and its fields; or
 * HUB_E_PARSE when a known topic is malformed (empty device or module id,
 * twin/method without a non-empty $rid, non-numeric status).
 */
int hub_iothub_topic_classify(const char *topic, size_t len, struct hub_iothub_topic *out,
                              struct hub_err *err);

/* 0 if the ids in a classified topic are the authenticated identity's
 * (module_id NULL for a device identity; a module must use the module form,
 * a device the device form); HUB_E_FORBIDDEN naming both otherwise. Topics
 * without ids (twin, method) always pass: they address the connection's own
 * identity. */
int hub_iothub_topic_owner_check(const struct hub_iothub_topic *t, const char *device_id,
                                 const char *module_id, struct hub_err *err);

/* ---- SUBSCRIBE filters -------------------------------------------------- */

enum hub_iothub_filter_kind {
    HUB_IOTHUB_FILTER_UNSUPPORTED = 0,
    HUB_IOTHUB_FILTER_C2D,          /* devices/{d}/messages/devicebound/# */
    HUB_IOTHUB_FILTER_TWIN_RES,     /* $iothub/twin/res/# */
    HUB_IOTHUB_FILTER_TWIN_DESIRED, /* $iothub/twin/PATCH/properties/desired/# */
    HUB_IOTHUB_FILTER_METHODS_POST, /* $iothub/methods/POST/# */
};

struct hub_iothub_filter {
    enum hub_iothub_filter_kind kind;
    struct hub_mqtt_str device_id; /* C2D only, verbatim */
};

/*
 * Classifies a SUBSCRIBE filter; exact strings only (reference §2: no other
 * wildcard use). Returns 0 with kind (UNSUPPORTED for anything else, which
 * includes the module form of devicebound: Azure delivers no C2D to
 * modules; modules use the same $iothub filters as devices), or HUB_E_PARSE
 * for `devices//messages/devicebound/#`.
 */
int hub_iothub_filter_classify(const char *filter, size_t len, struct hub_iothub_filter *out,
                               struct hub_err *err);

/* 0 if a C2D filter names device_id (others always pass); HUB_E_FORBIDDEN.
 * A module identity (module_id non-NULL) may not subscribe to C2D. */
int hub_iothub_filter_owner_check(const struct hub_iothub_filter *f, const char *device_id,
                                  const char *module_id, struct hub_err *err);

/* ---- $rid / $version ---------------------------------------------------- */

/* The raw value of `key` in the query part of topic (after the first '?'),
 * or in the whole string when it has no '?'. A key sent as %24rid matches
 * "$rid". Returns 1 and sets *value (may be empty), 0 if absent. */
int hub_iothub_query_get0(const char *topic, size_t len, const char *key,
                          struct hub_mqtt_str *value);

/* $rid of a twin/method topic: 0 and *rid (raw, non-empty), or HUB_E_PARSE. */
int hub_iothub_rid_get0(const char *topic, size_t len, struct hub_mqtt_str *rid,
                        struct hub_err *err);

/* $version of a twin topic as a non-negative decimal: 0, or HUB_E_PARSE
 * (absent, empty, non-digit, over INT64_MAX). */
int hub_iothub_version_get(const char *topic, size_t len, int64_t *version, struct hub_err *err);

/* ---- topics the hub publishes ------------------------------------------- */
/* Builders write a NUL-terminated topic into buf[0..cap) and return its
 * length (NUL excluded): HUB_E_TOO_LARGE when cap is short,
 * HUB_E_INVALID_ARG for ids, names or rids that are empty, contain '/', '#',
 * '+', NUL (and, for rids, '&'), or are not valid UTF-8. */

/* Exact length of the C2D topic for device_id and props. */
size_t hub_iothub_c2d_topic_len(const char *device_id, const struct hub_iothub_prop *props,
                                size_t n);

/* `devices/{device_id}/messages/devicebound/{bag}` (bag per
 * hub_iothub_props_encode; empty when n == 0, the topic then ends in '/'). */
int hub_iothub_c2d_topic_build(char *buf, size_t cap, const char *device_id,
                               const struct hub_iothub_prop *props, size_t n, struct hub_err *err);

/* `$iothub/twin/res/{status}/?$rid={rid}` and, when version >= 0,
 * `&$version={version}`. rid is echoed verbatim (it comes from the device's
 * request topic). status 100..999. */
int hub_iothub_twin_res_topic_build(char *buf, size_t cap, int status, struct hub_mqtt_str rid,
                                    int64_t version, struct hub_err *err);

/* `$iothub/twin/PATCH/properties/desired/?$version={version}`, version >= 0. */
int hub_iothub_twin_desired_topic_build(char *buf, size_t cap, int64_t version,
                                        struct hub_err *err);

/* `$iothub/methods/POST/{method_name}/?$rid={rid}` (both NUL-terminated). */
int hub_iothub_method_topic_build(char *buf, size_t cap, const char *method_name, const char *rid,
                                  struct hub_err *err);

#endif
