/*
 * auth: the symmetric-key half of IoT Hub security. Pure: no I/O, no logging,
 * no globals, no allocation.
 *
 * Owns:
 *   - SAS tokens: parsing, building (exactly as the Node SDKs do), and the
 *     decisions "this token authenticates device D", "this token lets a
 *     service caller do P on resource R", "this token registers DPS id X";
 *   - IoT Hub connection strings: parsing and formatting;
 *   - shared access policies: the permission bits, Azure's five default
 *     policies, key generation, lookup, permission checks.
 * Knows nothing of: sockets, MQTT/HTTP framing, where keys are stored (the
 * registry hands in device keys, the daemon hands in the policy set and
 * persists it; this layer has no text format for policy sets on purpose:
 * struct fields map 1:1 to store columns, and hub_auth_perms_format/parse
 * cover the one non-trivial field).
 *
 * Thread rules: every function is reentrant and may run on any thread.
 * Inputs are borrowed for the call only and never written, so one
 * `struct hub_auth_verify_cfg` and one `struct hub_auth_policy_set` may be
 * shared read-only by every worker; whoever replaces a policy set must
 * publish the new one (e.g. pointer swap under the daemon's lock), never edit
 * one that workers are reading. Key generation uses OpenSSL's CSPRNG
 * (thread-safe).
 *
 * Formats (reference = shared/reference/azure-iot-hub-protocol.md):
 *
 * | item         | format                                                 | ref       |
 * |--------------|--------------------------------------------------------|-----------|
 * | token        | `SharedAccessSignature ` k=v *(`&` k=v), any order     | §1        |
 * | sr (device)  | strict-pct(`{host}/devices/{id}[/modules/{m}]`)        | §1 [WIRE] |
 * |              | e.g. `localhost%2Fdevices%2Fdev1`                      |           |
 * | sr (service) | raw host (`localhost`) or a whole-segment path prefix  | §4 [WIRE] |
 * | sr (DPS)     | raw `{idScope}/registrations/{registrationId}`         | §7 [WIRE] |
 * | se           | expiry, decimal seconds since the Unix epoch           | §1        |
 * | sig          | pct(b64(HMAC-SHA256(b64dec(key), sr_raw "\n" se_raw))) | §1        |
 * |              | sr_raw, se_raw = exactly as written in the token       |           |
 * | skn          | policy name; absent for device keys; DPS: registration | §1 §4 §7  |
 * | DPS key      | b64(HMAC-SHA256(b64dec(groupKey), registrationId))     | §7        |
 * | conn. string | `Key=Value;...`, value = all after the first '='       | §8        |
 *
 * Percent-decoding: `%XX` (either hex case) only; '+' stays '+' (it is a
 * base64 digit in sig, never a space, §2); `%00` is refused so decoded
 * values are safe C strings.
 *
 * Errors: parsers return HUB_E_PARSE or HUB_E_TOO_LARGE. Decisions
 * (hub_auth_device_verify, hub_auth_service_authorize, hub_auth_dps_verify)
 * return exactly:
 *   0                    accepted;
 *   HUB_E_UNAUTHORIZED   the token does not prove who the caller claims
 *                        (malformed, unknown policy, bad signature, expired,
 *                        wrong scope): HTTP 401 / CONNACK 5;
 *   HUB_E_FORBIDDEN      authentic token, but its policy lacks the permission:
 *                        HTTP 403 (CONNACK 5 on MQTT);
 *   HUB_E_INVALID_ARG    the caller's inputs are broken (no accepted hosts, a
 *                        stored key that is not valid base64): HTTP 500;
 *   HUB_E_CRYPTO         OpenSSL failed: HTTP 500.
 * and always fill `res->deny` with the precise reason (its name, e.g.
 * "SAS_EXPIRED", is meant for the log's detail; `err->msg` has the specifics).
 */
#ifndef HUB_AUTH_H
#define HUB_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

/* ---- limits ------------------------------------------------------------- */

/* Largest token accepted (whole string, prefix included). Real tokens are
 * ~150-400 bytes; 4 KiB bounds parsing work on hostile input. */
#define HUB_AUTH_TOKEN_MAX 4096
/* sr as it appears in the token, and decoded. A host (253) plus an encoded
 * device and module id (3 x 128 each) fits with room to spare. */
#define HUB_AUTH_SR_MAX 1024
/* Decoded sig. An HMAC-SHA256 in base64 is 44 characters. */
#define HUB_AUTH_SIG_MAX 128
/* se digits: INT64_MAX has 19. */
#define HUB_AUTH_SE_DIGITS_MAX 19
/* Policy names (skn, SharedAccessKeyName). Azure ARM caps key names at 64. */
#define HUB_AUTH_NAME_MAX 64
/* Device and module ids: Azure's limit (reference §4 identity JSON). */
#define HUB_AUTH_ID_MAX 128
/* Host names: 253 DNS characters plus ":65535" (GatewayHostName, §8). */
#define HUB_AUTH_HOST_MAX 259
/* Symmetric keys: Azure accepts base64 of 16..64 bytes; we generate 32. */
#define HUB_AUTH_KEY_MIN_BYTES 16
#define HUB_AUTH_KEY_MAX_BYTES 64
#define HUB_AUTH_KEY_GEN_BYTES 32
#define HUB_AUTH_KEY_B64_MAX   88 /* base64 of 64 bytes */

/* ---- symmetric keys ----------------------------------------------------- */

/* The two keys of an identity or policy, base64 text, borrowed. NULL or ""
 * means "no such key". A token signed by either one is accepted. */
struct hub_auth_keys {
    const char *primary;
    const char *secondary;
};

/* 0 if b64 is strict, padded base64 of HUB_AUTH_KEY_MIN_BYTES..MAX_BYTES
 * bytes; HUB_E_INVALID_ARG otherwise (message says why). */
int hub_auth_key_validate(const char *b64, struct hub_err *err);

/* Writes base64 of HUB_AUTH_KEY_GEN_BYTES fresh random bytes (44 characters
 * and a NUL) into out. HUB_E_CRYPTO if the RNG fails. */
int hub_auth_key_generate(char out[HUB_AUTH_KEY_B64_MAX + 1], struct hub_err *err);

/* ---- permissions and shared access policies ----------------------------- */

/* Azure's rights (ARM AccessRights). A bitmask of these is "perms". The
 * IoT Hub's four and the Device Provisioning Service's five are disjoint:
 * a policy holds rights of one service only, and each service looks its
 * callers up in its own policy set, so a hub key never opens the
 * provisioning API and a DPS key never opens the hub's. */
enum hub_auth_perm {
    HUB_AUTH_PERM_REGISTRY_READ = 1u << 0,
    HUB_AUTH_PERM_REGISTRY_WRITE = 1u << 1,
    HUB_AUTH_PERM_SERVICE_CONNECT = 1u << 2,
    HUB_AUTH_PERM_DEVICE_CONNECT = 1u << 3,
    /* DPS (Microsoft.Devices/provisioningServices AccessRights). */
    HUB_AUTH_PERM_DPS_SERVICE_CONFIG = 1u << 4,
    HUB_AUTH_PERM_DPS_ENROLLMENT_READ = 1u << 5,
    HUB_AUTH_PERM_DPS_ENROLLMENT_WRITE = 1u << 6,
    HUB_AUTH_PERM_DPS_REGISTRATION_READ = 1u << 7,  /* RegistrationStatusRead */
    HUB_AUTH_PERM_DPS_REGISTRATION_WRITE = 1u << 8, /* RegistrationStatusWrite */
};
/* Every IoT Hub right (iothubowner's). */
#define HUB_AUTH_PERM_ALL 0x0fu
/* Every DPS right (provisioningserviceowner's). */
#define HUB_AUTH_PERM_DPS_ALL 0x1f0u
/* Every known bit: the validity mask. */
#define HUB_AUTH_PERM_KNOWN (HUB_AUTH_PERM_ALL | HUB_AUTH_PERM_DPS_ALL)

/* Longest output of hub_auth_perms_format, NUL included. */
#define HUB_AUTH_PERMS_TEXT_MAX 160

/* Azure's ARM `rights` text: "RegistryRead, RegistryWrite, ServiceConnect,
 * DeviceConnect", "ServiceConfig, EnrollmentRead, EnrollmentWrite,
 * RegistrationStatusRead, RegistrationStatusWrite" (fixed order, ", "
 * separated; "" for 0). out has room for HUB_AUTH_PERMS_TEXT_MAX. Bits
 * outside HUB_AUTH_PERM_KNOWN: HUB_E_INVALID_ARG. */
int hub_auth_perms_format(unsigned perms, char out[HUB_AUTH_PERMS_TEXT_MAX], struct hub_err *err);

/* Inverse of the above, lenient on input: names case-insensitive, separated
 * by ',' and/or spaces (so the az CLI's "RegistryRead ServiceConnect" works).
 * Unknown name, duplicate, or empty list: HUB_E_PARSE. */
int hub_auth_perms_parse(const char *text, size_t len, unsigned *perms_out, struct hub_err *err);

struct hub_auth_policy {
    char name[HUB_AUTH_NAME_MAX + 1];
    unsigned perms; /* enum hub_auth_perm bits, never 0 */
    char primary_key[HUB_AUTH_KEY_B64_MAX + 1];
    char secondary_key[HUB_AUTH_KEY_B64_MAX + 1];
};

/* Azure allows 16 shared access policies per hub. */
#define HUB_AUTH_POLICY_SET_MAX 16

/* A hub's policies, by value (no pointers inside: copy it freely). The zero
 * value is a valid empty set. */
struct hub_auth_policy_set {
    size_t count;
    struct hub_auth_policy items[HUB_AUTH_POLICY_SET_MAX];
};

/* Which service a policy set serves: its defaults and the rights its
 * policies may hold (HUB_AUTH_PERM_ALL or HUB_AUTH_PERM_DPS_ALL). */
enum hub_auth_service {
    HUB_AUTH_SERVICE_IOTHUB = 0,
    HUB_AUTH_SERVICE_DPS,
};
unsigned hub_auth_service_perms(enum hub_auth_service service);

/* hubd's defaults for a new hub, in this order, each with two fresh keys:
 *   iothubowner       RegistryRead, RegistryWrite, ServiceConnect, DeviceConnect
 *   registryRead      RegistryRead
 *   registryReadWrite RegistryRead, RegistryWrite
 *   serviceConnect    ServiceConnect
 *   deviceConnect     DeviceConnect
 * (Azure's portal calls the last two "service" and "device"; hubd names each
 * policy after its one right so a log line's who= says what it may do.)
 * Overwrites *set. HUB_E_CRYPTO if the RNG fails (set is then empty). */
int hub_auth_policy_set_init_default(struct hub_auth_policy_set *set, struct hub_err *err);

/* The provisioning service's defaults (Azure creates only the first; the
 * other two let an operator hand out narrower keys):
 *   provisioningserviceowner  every DPS right
 *   enrollmentRead            EnrollmentRead, RegistrationStatusRead
 *   enrollmentReadWrite       EnrollmentRead, EnrollmentWrite,
 *                             RegistrationStatusRead, RegistrationStatusWrite
 * Overwrites *set. HUB_E_CRYPTO. */
int hub_auth_policy_set_init_default_dps(struct hub_auth_policy_set *set, struct hub_err *err);

/* 0 if name is 1..HUB_AUTH_NAME_MAX of [A-Za-z0-9._-]; HUB_E_INVALID_ARG. */
int hub_auth_policy_name_validate(const char *name, struct hub_err *err);

/* Appends a policy after validating everything (name, perms non-zero and
 * all of one service: within HUB_AUTH_PERM_ALL or within
 * HUB_AUTH_PERM_DPS_ALL, both keys per hub_auth_key_validate):
 * HUB_E_INVALID_ARG, HUB_E_EXISTS (name already present, compared exactly),
 * HUB_E_LIMIT (set full). The set is unchanged on error. Strings are copied. */
int hub_auth_policy_set_add(struct hub_auth_policy_set *set, const char *name, unsigned perms,
                            const char *primary_key, const char *secondary_key,
                            struct hub_err *err);

/* The policy called name (case-sensitive, like Azure's key names), borrowed
 * from set (valid while set is), or NULL. */
const struct hub_auth_policy *hub_auth_policy_set_find0(const struct hub_auth_policy_set *set,
                                                        const char *name);

/* 0 if policy grants every bit of needed; HUB_E_FORBIDDEN (message names the
 * missing rights) otherwise. */
int hub_auth_policy_check(const struct hub_auth_policy *policy, unsigned needed,
                          struct hub_err *err);

/* ---- SAS tokens: parse and build ---------------------------------------- */

/* A parsed token; caller-owned, no pointers inside. */
struct hub_auth_sas {
    char sr_raw[HUB_AUTH_SR_MAX + 1]; /* sr exactly as in the token: HMAC input */
    size_t sr_raw_len;
    char sr[HUB_AUTH_SR_MAX + 1]; /* sr percent-decoded: scope checks */
    size_t sr_len;
    char sig[HUB_AUTH_SIG_MAX + 1]; /* sig percent-decoded (base64 text) */
    size_t sig_len;
    char se_raw[HUB_AUTH_SE_DIGITS_MAX + 1]; /* se digits as in the token: HMAC input */
    int64_t se;                              /* expiry, seconds since the epoch */
    int has_skn;
    char skn[HUB_AUTH_NAME_MAX + 1]; /* percent-decoded policy name, "" if !has_skn */
};

/*
 * Parses `SharedAccessSignature ` followed by `&`-separated key=value pairs in
 * any order. sr, sig and se are required; skn is optional; other keys are
 * ignored (forward compatibility; Node's parser keeps any key) but must still
 * be name=value. token need not be NUL-terminated. Refuses, with a message
 * naming the field and offset:
 *   len > HUB_AUTH_TOKEN_MAX, or a field over its limit above [TOO_LARGE];
 *   wrong/missing prefix, NUL/whitespace/control bytes after it, empty pair,
 *   pair without '=', duplicate sr/sig/se/skn, missing or empty sr/sig/se,
 *   se not 1..19 decimal digits or above INT64_MAX, bad or NUL-producing
 *   percent-escape [PARSE].
 * *out is fully written on success, unspecified on error.
 */
int hub_auth_sas_parse(const char *token, size_t len, struct hub_auth_sas *out,
                       struct hub_err *err);

enum hub_auth_sr_form {
    /* sr = encodeURIComponent-strict(resource): Node's device SDK (§1). */
    HUB_AUTH_SR_ENCODED,
    /* sr = resource verbatim: Node's service and DPS SDKs (§4, §7). The
     * resource must then not contain '&', '%', NUL, whitespace or controls. */
    HUB_AUTH_SR_RAW,
};

/*
 * Builds a token the way azure-iot-common's SharedAccessSignature.create does:
 * `SharedAccessSignature sr={sr}&sig={sig}[&skn={skn}]&se={expiry}`, sig and
 * skn encodeURIComponent-strict encoded ('!'()*' escaped too, '*' as "%2a"
 * like Node). resource e.g. "hub.example/devices/dev1" (device) or
 * "hub.example" (service). key_name NULL or "" = no skn (device keys).
 * key_b64 per hub_auth_key_validate. expiry > 0.
 * Writes a NUL-terminated token into out (a token never exceeds
 * HUB_AUTH_TOKEN_MAX, so HUB_AUTH_TOKEN_MAX + 1 is always enough).
 * HUB_E_INVALID_ARG (bad input, or sr over HUB_AUTH_SR_MAX), HUB_E_TOO_LARGE
 * (outcap too small), HUB_E_CRYPTO.
 */
int hub_auth_sas_build(const char *resource, enum hub_auth_sr_form form, const char *key_name,
                       const char *key_b64, int64_t expiry, char *out, size_t outcap,
                       struct hub_err *err);

/* DPS group enrollment: derives a device's key from the group key (§7).
 * Writes 44 characters and a NUL. HUB_E_INVALID_ARG, HUB_E_CRYPTO. */
int hub_auth_dps_derive_key(const char *group_key_b64, const char *registration_id,
                            char out[HUB_AUTH_KEY_B64_MAX + 1], struct hub_err *err);

/* ---- SAS tokens: decisions ---------------------------------------------- */

#define HUB_AUTH_DENY_MAP(X)                                                                       \
    X(NONE, "accepted")                                                                            \
    X(MALFORMED, "token is malformed")                                                             \
    X(UNKNOWN_POLICY, "token names no known shared access policy")                                 \
    X(NO_KEY, "identity has no symmetric key")                                                     \
    X(BAD_SIGNATURE, "signature does not match any key")                                           \
    X(EXPIRED, "token expired")                                                                    \
    X(TOO_LONG_LIVED, "token expiry too far in the future")                                        \
    X(WRONG_SCOPE, "token resource (sr) does not cover this request")                              \
    X(NO_PERMISSION, "policy lacks the required permission")

enum hub_auth_deny {
#define HUB_AUTH_DENY_ENUM(name, text) HUB_AUTH_DENY_##name,
    HUB_AUTH_DENY_MAP(HUB_AUTH_DENY_ENUM)
#undef HUB_AUTH_DENY_ENUM
};

/* "SAS_EXPIRED" etc. (stable log values); "SAS_UNKNOWN" for out-of-range. Static. */
const char *hub_auth_deny_name(enum hub_auth_deny deny);

/* Shared, immutable verifier configuration. */
struct hub_auth_verify_cfg {
    /* Host names clients may put in sr (whatever their connection strings
     * say, e.g. "localhost", "hub.example", "localhost:48883"), compared
     * ASCII case-insensitively. At least one. Not used by DPS. */
    const char *const *hosts;
    size_t host_count;
    /* Refuse tokens whose se is more than this many seconds after now.
     * 0 = no limit, which is Azure's behaviour (operators mint tokens with
     * long lives on purpose, `az iot hub generate-sas-token --du`). */
    int64_t max_ttl_s;
};

/* What a decision found; filled on success and on every refusal. */
struct hub_auth_result {
    enum hub_auth_deny deny;
    /* Policy whose key signed the token (borrowed from the policy set passed
     * in), or NULL for identity (device/module/enrollment) keys. Only set
     * once the policy was found. */
    const struct hub_auth_policy *policy;
    int key_slot;   /* 1 primary, 2 secondary, 0 if no key matched */
    int64_t expiry; /* the token's se, once parsed: MQTT drops the session then */
};

/* A device or module asking to connect. */
struct hub_auth_device_req {
    int64_t now;               /* seconds since the epoch */
    const char *device_id;     /* as in the registry, 1..HUB_AUTH_ID_MAX */
    const char *module_id;     /* NULL (or "") for a device identity */
    struct hub_auth_keys keys; /* the identity's keys from the registry */
    /* Policies for tokens with skn (a DeviceConnect policy may sign device
     * tokens, §1 "prefix of it for policy tokens"). NULL: none accepted. */
    const struct hub_auth_policy_set *policies;
};

/*
 * Device/module authentication (MQTT CONNECT password, device HTTPS
 * Authorization). Checks, in this order (the first failure wins, so only an
 * authentic token can learn it is expired or out of scope):
 *   1. parses the token                                  [MALFORMED]
 *   2. skn absent: keys = req->keys (none set: [NO_KEY]);
 *      skn present: keys = that policy's          [UNKNOWN_POLICY]
 *   3. HMAC over sr_raw "\n" se_raw, primary then secondary, constant-time
 *      compare with the decoded sig                  [BAD_SIGNATURE]
 *   4. se <= now [EXPIRED]; se - now > cfg->max_ttl_s [TOO_LONG_LIVED]
 *      (a token is valid up to, not including, second se)
 *   5. decoded sr: first segment one of cfg->hosts (case-insensitive),
 *      the rest exactly "/devices/{id}[/modules/{m}]" for identity keys, or
 *      a whole-segment prefix of it for policy tokens      [WRONG_SCOPE]
 *   6. policy tokens: policy has DeviceConnect  [NO_PERMISSION, FORBIDDEN]
 * Returns per the header comment. res must be non-NULL.
 */
int hub_auth_device_verify(const struct hub_auth_verify_cfg *cfg,
                           const struct hub_auth_device_req *req, const char *token,
                           size_t token_len, struct hub_auth_result *res, struct hub_err *err);

/* A service (REST) caller asking to act on a resource. */
struct hub_auth_service_req {
    int64_t now;
    /* Decoded request path without query, e.g. "/devices/dev1" or
     * "/twins/dev1/methods"; must start with '/'. */
    const char *resource;
    unsigned perms; /* every bit is required, e.g. HUB_AUTH_PERM_REGISTRY_READ */
    const struct hub_auth_policy_set *policies;
};

/*
 * Service authorization (Authorization header of the REST API). Same order as
 * hub_auth_device_verify, except: skn is required (absent: UNKNOWN_POLICY,
 * device-key tokens never reach service APIs); scope = the decoded sr's first
 * segment is an accepted host and the rest is empty or a whole-segment prefix
 * of req->resource ("hub" and "hub/devices" cover "/devices/d1"; "hub/dev"
 * and "hub/devices/" do not); last, the policy must hold req->perms, else
 * HUB_E_FORBIDDEN. Returns per the header comment.
 */
int hub_auth_service_authorize(const struct hub_auth_verify_cfg *cfg,
                               const struct hub_auth_service_req *req, const char *token,
                               size_t token_len, struct hub_auth_result *res, struct hub_err *err);

/* A DPS registration (MQTT CONNECT password to the provisioning endpoint). */
struct hub_auth_dps_req {
    int64_t now;
    const char *id_scope;        /* e.g. "0ne00000001", compared case-insensitively */
    const char *registration_id; /* compared exactly */
    /* Individual enrollment keys, or keys derived with
     * hub_auth_dps_derive_key for a group enrollment. */
    struct hub_auth_keys keys;
};

/*
 * DPS symmetric-key attestation (§7): skn must be "registration"
 * [UNKNOWN_POLICY otherwise], signature by req->keys, expiry as above (only
 * cfg->max_ttl_s is used), decoded sr must equal
 * "{id_scope}/registrations/{registration_id}" [WRONG_SCOPE].
 */
int hub_auth_dps_verify(const struct hub_auth_verify_cfg *cfg, const struct hub_auth_dps_req *req,
                        const char *token, size_t token_len, struct hub_auth_result *res,
                        struct hub_err *err);

/* ---- connection strings ------------------------------------------------- */

enum hub_auth_connstr_kind {
    HUB_AUTH_CONNSTR_SERVICE, /* HostName;SharedAccessKeyName;SharedAccessKey */
    HUB_AUTH_CONNSTR_DEVICE,  /* HostName;DeviceId;(SharedAccessKey | x509=true) */
    HUB_AUTH_CONNSTR_MODULE,  /* as DEVICE plus ModuleId */
};

/* Parsed connection string; "" means the key was absent. */
struct hub_auth_connstr {
    enum hub_auth_connstr_kind kind;
    char host_name[HUB_AUTH_HOST_MAX + 1];
    char gateway_host_name[HUB_AUTH_HOST_MAX + 1];
    char device_id[HUB_AUTH_ID_MAX + 1];
    char module_id[HUB_AUTH_ID_MAX + 1];
    char key_name[HUB_AUTH_NAME_MAX + 1]; /* SharedAccessKeyName */
    char key[HUB_AUTH_KEY_B64_MAX + 1];   /* SharedAccessKey */
    int x509;                             /* x509=true */
};

/* Largest connection string parsed or formatted. */
#define HUB_AUTH_CONNSTR_MAX 1024

/*
 * Parses `Key=Value;...` (a single trailing ';' tolerated). Keys are
 * case-sensitive, as Azure's: HostName, DeviceId, ModuleId,
 * SharedAccessKeyName, SharedAccessKey, GatewayHostName, x509. The value is
 * everything after the first '=', so base64 padding survives. Refused with
 * HUB_E_PARSE and a message naming the key:
 *   - an unknown key (a typo such as "Hostname" would otherwise surface later
 *     as a confusing "missing HostName"; SharedAccessSignature= is refused
 *     as unsupported), a duplicate key, an empty value, an empty segment;
 *   - a value over its limit (HUB_E_TOO_LARGE), x509 not true/false;
 *   - a SharedAccessKey that fails hub_auth_key_validate;
 *   - combinations: HostName always required; without DeviceId a service
 *     string needs SharedAccessKeyName + SharedAccessKey and refuses
 *     ModuleId/GatewayHostName/x509; with DeviceId exactly one of
 *     SharedAccessKey and x509=true (SharedAccessKeyName allowed with a key:
 *     device tokens signed by a DeviceConnect policy).
 * len > HUB_AUTH_CONNSTR_MAX: HUB_E_TOO_LARGE. *out unspecified on error.
 */
int hub_auth_connstr_parse(const char *text, size_t len, struct hub_auth_connstr *out,
                           struct hub_err *err);

/*
 * Formats cs in Azure's key order (HostName, DeviceId, ModuleId,
 * SharedAccessKeyName, SharedAccessKey, GatewayHostName, x509=true), skipping
 * empty fields. Refuses (HUB_E_INVALID_ARG) anything hub_auth_connstr_parse
 * would refuse, including values containing ';'. HUB_E_TOO_LARGE if outcap
 * is too small (HUB_AUTH_CONNSTR_MAX + 1 always suffices).
 */
int hub_auth_connstr_format(const struct hub_auth_connstr *cs, char *out, size_t outcap,
                            struct hub_err *err);

#endif
