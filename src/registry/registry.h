/*
 * registry: the rules of hubd's identity registry.
 *
 * Owns: device id and CA name syntax, etags and generation ids, SAS key and
 * thumbprint rules, the CA lifecycle (upload -> verification code -> proof of
 * possession -> verified; re-upload resets), the CA count limit, and the
 * trust snapshot of verified CAs that the device endpoint validates chains
 * against.
 * Knows nothing of: SQL (everything durable goes through `store`), wire
 * formats (JSON, HTTP status codes, If-Match quoting: the http layer maps
 * HUB_E_* to those), sockets. Never logs.
 *
 * Etags: opaque strings, base64 of 8 random bytes ("q1Jw0c0mVho="); a new
 * one on every change of a record. An `if_match` argument of NULL or "*" is
 * unconditional; any other value must equal the record's current etag or the
 * call fails with HUB_E_ETAG_MISMATCH and changes nothing. Writes are
 * compare-and-swap in the store, so two concurrent writers with the same
 * etag cannot both succeed.
 *
 * Time: every rule that depends on the clock (code expiry, expired CA
 * uploads, timestamps) reads opts.now, so tests inject a clock.
 *
 * Thread rules: every function may be called from any thread at once; the
 * registry holds no lock across a store call. The trust snapshot is guarded
 * by a mutex held only to take a reference (and by a second one, around the
 * rare rebuild, so that one thread rebuilds while others wait for it).
 *
 * Records returned are the store's (store/store.h): struct hub_device by
 * value in caller memory, struct hub_ca_cert via *_get1 (free with
 * hub_ca_cert_free).
 */
#ifndef HUB_REGISTRY_H
#define HUB_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "pki/pki.h"
#include "store/store.h"
#include "twin/twin.h"

/* Azure's documented/quoted values (shared/reference/azure-iot-hub-protocol.md §5). */
#define HUB_REGISTRY_DEFAULT_MAX_CAS    25
#define HUB_REGISTRY_DEFAULT_CODE_TTL_S 3600 /* Azure does not document it; one hour */
#define HUB_REGISTRY_CODE_BYTES         24   /* 192 random bits -> 48 uppercase hex */
#define HUB_REGISTRY_LIST_MAX           1000 /* Azure's ?top= maximum */
#define HUB_REGISTRY_SAS_KEY_BYTES      32   /* generated keys: 256 bits */
#define HUB_REGISTRY_SAS_KEY_MIN_BYTES  16   /* keys given by the caller: 16..64 bytes */
#define HUB_REGISTRY_SAS_KEY_MAX_BYTES  64

struct hub_registry_opts {
    size_t max_cas;     /* 0 = HUB_REGISTRY_DEFAULT_MAX_CAS */
    int64_t code_ttl_s; /* 0 = HUB_REGISTRY_DEFAULT_CODE_TTL_S */
    /* Clock, Unix seconds; NULL = time(NULL). Called from any thread. */
    int64_t (*now)(void *ctx);
    void *now_ctx;
};

struct hub_registry;

/* `store` is borrowed and must outlive the registry. `opts` may be NULL.
 * *out_new is the caller's: hub_registry_free(). */
int hub_registry_new(struct hub_store *store, const struct hub_registry_opts *opts,
                     struct hub_registry **out_new, struct hub_err *err);
/* NULL ok. Trust snapshots still held stay valid (they are refcounted). */
void hub_registry_free(struct hub_registry *reg);

/* ---- syntax rules (pure) ------------------------------------------------- */

/* Device id: 1..128 ASCII characters from [A-Za-z0-9] and - . % _ * ? ! ( ) , : = @ $ '
 * (Azure's set; + and # are refused). 0 or HUB_E_INVALID_ARG naming the fault. */
int hub_registry_device_id_check(const char *id, struct hub_err *err);
/* CA name: ^[A-Za-z0-9-._]{1,64}$. 0 or HUB_E_INVALID_ARG. */
int hub_registry_ca_name_check(const char *name, struct hub_err *err);
/* 1 if `thumbprint` (any case) equals the device's primary or secondary one. */
bool hub_registry_device_thumbprint_match(const struct hub_device *dev, const char *thumbprint);

/* ---- devices ------------------------------------------------------------- */

/*
 * Creates a device from the caller's fields in `in` (borrowed): id, status,
 * status_reason, auth_type, primary/secondary key (sas), primary/secondary
 * thumbprint (selfSigned), iot_edge. Everything else is the hub's:
 * generation_id (random decimal), etag, created/updated/status_updated = now,
 * Disconnected, counters 0. Rules:
 *   - sas: both keys empty -> two random 256-bit keys; otherwise each key must
 *     be base64 of 16..64 bytes (both required).
 *   - selfSigned: primary thumbprint required, each 40 or 64 hex digits;
 *     stored uppercase.
 *   - fields of other auth types are ignored (stored empty).
 * *out (caller memory) receives the stored record.
 * Codes: INVALID_ARG (syntax), EXISTS, and store errors.
 */
int hub_registry_device_create(struct hub_registry *reg, const struct hub_device *in,
                               struct hub_device *out, struct hub_err *err);

/*
 * Replaces the caller's fields (as for create) of device in->id, when
 * `if_match` allows. Keeps generation_id, created, connection state, activity
 * and counters. SAS keys: if the update is sas with both keys empty (the Azure
 * SDKs send that when the caller omitted authentication), the existing keys
 * are kept, or new ones generated if the device was not sas before.
 * status_updated changes only when status does. New etag.
 * Codes: INVALID_ARG, NOT_FOUND, ETAG_MISMATCH, store errors.
 */
int hub_registry_device_update(struct hub_registry *reg, const struct hub_device *in,
                               const char *if_match, struct hub_device *out, struct hub_err *err);

/* Codes: NOT_FOUND, INVALID_ARG (bad id syntax), store errors. */
int hub_registry_device_get(struct hub_registry *reg, const char *id, struct hub_device *out,
                            struct hub_err *err);
/* Codes: NOT_FOUND, ETAG_MISMATCH, store errors. */
int hub_registry_device_delete(struct hub_registry *reg, const char *id, const char *if_match,
                               struct hub_err *err);

/* One page of devices, ordered by id, matching `filter` (borrowed; NULL = all).
 * filter->limit 0 means HUB_REGISTRY_LIST_MAX; more than that is INVALID_ARG.
 * list->next_cursor is "" on the last page. *out_new: hub_device_list_free. */
int hub_registry_device_list1(struct hub_registry *reg, const struct hub_device_filter *filter,
                              struct hub_device_list **out_new, struct hub_err *err);

/* Connection state (Connected/Disconnected) with updated time = now. Does not
 * change the etag. Codes: NOT_FOUND, store errors. */
int hub_registry_device_conn_state_set(struct hub_registry *reg, const char *id,
                                       enum hub_conn_state state, struct hub_err *err);
/* The notAfter of the certificate device `id` just authenticated with
 * (X.509 CA or selfSigned), for expiry queries (x509CertificateExpiry).
 * Writes only when it differs from `known` (the value the caller read with
 * the device record), so a reconnect with the same certificate costs no
 * write. No etag change. Codes: NOT_FOUND, store errors. */
int hub_registry_device_cert_expiry_set(struct hub_registry *reg, const char *id, int64_t not_after,
                                        int64_t known, struct hub_err *err);
/* lastActivityTime = now (never moves back). One durable write per call: the
 * caller on a hot path should call it at most every few seconds per device. */
int hub_registry_device_activity_touch(struct hub_registry *reg, const char *id,
                                       struct hub_err *err);

/*
 * The device a connecting client claims to be, for the authentication
 * decision. *out is filled whenever the device exists (so the caller can log
 * it). Codes: INVALID_ARG (id syntax), NOT_FOUND (unknown: refuse),
 * FORBIDDEN (disabled: refuse), store errors (refuse; the store is sick).
 * Checking the credential against out->auth_type is the caller's job.
 */
int hub_registry_device_auth_lookup(struct hub_registry *reg, const char *id,
                                    struct hub_device *out, struct hub_err *err);

/* ---- CA certificates ----------------------------------------------------- */

/*
 * Uploads (creates or replaces) the CA certificate `name` from `cert`/`len`
 * (PEM or DER, exactly one certificate; borrowed). Refuses:
 *   INVALID_ARG (name syntax, more than one certificate), PRIVATE_KEY (the
 *   file holds a private key), NOT_CERT/PARSE/EMPTY/TOO_LARGE (junk),
 *   CHAIN_NOT_CA (no basicConstraints CA:TRUE), CERT_EXPIRED (notAfter <=
 *   now), LIMIT (creating one more than max_cas), ETAG_MISMATCH (if_match
 *   is a real etag and the CA is absent or has another etag).
 * The stored record is unverified, with no code, unless `verified` is true
 * (pass true only when the operator enabled upload-time verification: it
 * skips proof of possession). Replacing keeps `created` and clears any
 * outstanding code. *created_out (may be NULL) tells whether it was new.
 * *out_new (may be NULL if not wanted) receives the stored record.
 */
int hub_registry_ca_upload(struct hub_registry *reg, const char *name, const void *cert, size_t len,
                           bool verified, const char *if_match, bool *created_out,
                           struct hub_ca_cert **out_new, struct hub_err *err);

/* Codes: INVALID_ARG (name syntax), NOT_FOUND. *out_new: hub_ca_cert_free. */
int hub_registry_ca_get1(struct hub_registry *reg, const char *name, struct hub_ca_cert **out_new,
                         struct hub_err *err);
/* Every CA, ordered by name. *out_new: hub_ca_cert_list_free. */
int hub_registry_ca_list1(struct hub_registry *reg, struct hub_ca_cert_list **out_new,
                          struct hub_err *err);
/* Codes: NOT_FOUND, ETAG_MISMATCH. */
int hub_registry_ca_delete(struct hub_registry *reg, const char *name, const char *if_match,
                           struct hub_err *err);

/*
 * Generates a new verification code (HUB_REGISTRY_CODE_BYTES random bytes as
 * uppercase hex) valid for code_ttl_s from now; it replaces any previous
 * code. New etag. *out_new receives the record, code in verification_code.
 * Codes: NOT_FOUND, ETAG_MISMATCH, CRYPTO (RNG).
 */
int hub_registry_ca_code_generate(struct hub_registry *reg, const char *name, const char *if_match,
                                  struct hub_ca_cert **out_new, struct hub_err *err);

/*
 * Proof of possession: `cert`/`len` (PEM or DER, one certificate) must have
 * subject CN == the outstanding code and be signed by the uploaded CA's key
 * (hub_pki_verification_cert_check). On success the CA is verified, the code
 * is consumed and the trust snapshot changes. Codes: NOT_FOUND,
 * ETAG_MISMATCH, NO_CODE (none outstanding, e.g. already used),
 * CODE_EXPIRED, CN_MISMATCH, CHAIN_SIGNATURE, CERT_EXPIRED/NOT_YET_VALID,
 * and the loading codes of upload. *out_new (may be NULL) gets the record.
 */
int hub_registry_ca_verify(struct hub_registry *reg, const char *name, const char *if_match,
                           const void *cert, size_t len, struct hub_ca_cert **out_new,
                           struct hub_err *err);

/*
 * Sets the certificate revocation list of CA `name` from `crl`/`len` (PEM
 * or DER, one CRL; borrowed), replacing any previous one. The CRL must be
 * issued by that CA (hub_pki_crl_issuer_check: issuer name, key id,
 * signature, complete scope) and must not be older (thisUpdate) than the
 * one it replaces, so a captured old CRL cannot be replayed to un-revoke a
 * certificate. An expired CRL (nextUpdate passed) is accepted: it is still
 * the newest word of the CA (docs/security.md, "Revocation"). New etag;
 * the trust snapshot changes and the observer gets CA_CHANGED, so live
 * connections are re-validated against it.
 * Codes: INVALID_ARG (name syntax, unsupported CRL scope, older CRL),
 * NOT_FOUND, ETAG_MISMATCH, the loading codes of hub_pki_crl_load_mem
 * (PRIVATE_KEY, PARSE, EMPTY, TOO_LARGE), CHAIN_UNTRUSTED (issued by
 * another CA), CHAIN_SIGNATURE. *out_new (may be NULL) gets the record.
 *
 * CRLs and the rest of the CA lifecycle: deleting a CA deletes its CRL; a
 * re-upload (hub_registry_ca_upload replacing the certificate) keeps the
 * CRL only if the new certificate still verifies it (same name and key,
 * e.g. a renewed CA), else drops it.
 */
int hub_registry_ca_crl_set(struct hub_registry *reg, const char *name, const void *crl, size_t len,
                            const char *if_match, struct hub_ca_cert **out_new,
                            struct hub_err *err);

/* ---- trust snapshot for the device endpoint ------------------------------ */

/*
 * An immutable, refcounted view of the verified CAs. Get one per handshake
 * (cheap: a mutex and a reference count unless the verified set changed
 * since the last call, then one rebuild from the store), use it, release it.
 * A CA uploaded, verified or deleted is in the next snapshot taken.
 */
struct hub_registry_trust;

/* *out_new holds a reference: hub_registry_trust_release(). */
int hub_registry_trust_get1(struct hub_registry *reg, struct hub_registry_trust **out_new,
                            struct hub_err *err);
void hub_registry_trust_release(struct hub_registry_trust *snap); /* NULL ok */

/* Borrowed, valid while the reference is held. Never NULL: with no verified
 * CA it has no anchors and every chain fails (HUB_E_CHAIN_UNTRUSTED). */
const struct hub_pki_trust *hub_registry_trust_pki(const struct hub_registry_trust *snap);
/* Changes whenever the verified set may have changed (upload, verify, delete). */
uint64_t hub_registry_trust_generation(const struct hub_registry_trust *snap);
/* How many verified CAs are anchors in it. */
size_t hub_registry_trust_anchor_count(const struct hub_registry_trust *snap);
/* Verified CAs left out because their stored PEM no longer parses (a damaged
 * row); the caller should log it. */
size_t hub_registry_trust_skipped_count(const struct hub_registry_trust *snap);
/* Verified CAs whose CRL is in it. A verified CA whose stored CRL no longer
 * loads or verifies is left out entirely (counted as skipped): failing
 * closed for that CA's devices beats silently forgetting revocations. */
size_t hub_registry_trust_crl_count(const struct hub_registry_trust *snap);
/* CRLs in it whose nextUpdate is at or before `now` (still applied). Writes
 * the names of those CAs, comma-separated and truncated to cap, to `names`
 * (may be NULL when cap is 0), for the caller's log line. */
size_t hub_registry_trust_crl_expired(const struct hub_registry_trust *snap, int64_t now,
                                      char *names, size_t cap);
/* The earliest nextUpdate after `now` among its CRLs (when the next one
 * expires), or 0 when none is still to expire. */
int64_t hub_registry_trust_crl_next_expiry(const struct hub_registry_trust *snap, int64_t now);

/* ---- device twins (twin/twin.h has the document rules) ---------------- */

/*
 * Twins are stored per device and deleted with it. A device's twin is
 * written lazily: a device whose twin was never read or written has a new
 * twin (empty sections, versions 1), which the first access stores so that
 * its etag is stable from then on.
 *
 * Every change is a read-modify-write that commits with compare-and-swap on
 * the twin etag. Service writes with a real `if_match` fail with
 * ETAG_MISMATCH when the twin changed since; unconditional writes (NULL or
 * "*") and the device's reported patches retry on a lost race (up to
 * HUB_REGISTRY_TWIN_CAS_TRIES times, then BUSY), so concurrent reported and
 * desired patches never lose each other's update.
 *
 * The twin etag is a fresh registry etag on every change (like devices), so
 * a stale If-Match from a deleted and re-created device never matches.
 */
#define HUB_REGISTRY_TWIN_CAS_TRIES 32

/*
 * The twin of device `id`. *twin_new is the caller's (hub_twin_free); *dev_out
 * (may be NULL) receives the device, for hub_twin_service_json_new.
 * Codes: INVALID_ARG (id syntax), NOT_FOUND (no such device), store errors.
 */
int hub_registry_twin_get1(struct hub_registry *reg, const char *id, struct hub_twin **twin_new,
                           struct hub_device *dev_out, struct hub_err *err);

/*
 * Service PATCH /twins/{id}: `json`/`len` (borrowed) is
 * {"tags":{...},"properties":{"desired":{...}}}, merged as twin.h says.
 * PUT /twins/{id}: the same shape, replacing tags and desired.
 * `if_match`: NULL or "*" unconditional, else the twin etag (unquoted).
 * On success *twin_new (may be NULL) is the stored twin and *dev_out (may be
 * NULL) the device; when desired was in the request the observer gets
 * HUB_REGISTRY_TWIN_DESIRED_CHANGED after the commit.
 * Codes: INVALID_ARG, PARSE, TOO_LARGE (twin.h limits), NOT_FOUND,
 * ETAG_MISMATCH, BUSY, store errors.
 */
int hub_registry_twin_patch(struct hub_registry *reg, const char *id, const char *json, size_t len,
                            const char *if_match, struct hub_twin **twin_new,
                            struct hub_device *dev_out, struct hub_err *err);
int hub_registry_twin_replace(struct hub_registry *reg, const char *id, const char *json,
                              size_t len, const char *if_match, struct hub_twin **twin_new,
                              struct hub_device *dev_out, struct hub_err *err);

/*
 * Device PATCH properties/reported over MQTT: `json`/`len` is a merge patch
 * of reported properties. *reported_version_out (may be NULL) receives the
 * new reported $version (the 204 answer's $version). No etag: serialized
 * with other writers by CAS retry. Codes as for patch, without ETAG_MISMATCH.
 */
int hub_registry_twin_reported_patch(struct hub_registry *reg, const char *id, const char *json,
                                     size_t len, int64_t *reported_version_out,
                                     struct hub_err *err);

/* The current desired $version (1 for a twin never written). Cheap: one
 * row read. Codes: INVALID_ARG, NOT_FOUND, store errors. */
int hub_registry_twin_desired_version(struct hub_registry *reg, const char *id, int64_t *out,
                                      struct hub_err *err);

/*
 * What a device that last saw desired $version `seen_version` must be sent
 * to be current, as notification bodies (each {...patch...,"$version":N}),
 * oldest first, in *bodies_new (a JSON array; caller json_decref()s):
 *   - empty when seen_version >= the current desired $version;
 *   - the stored patches seen_version+1 .. current when the change log still
 *     holds them all (the store keeps the last HUB_STORE_TWIN_LOG_KEEP per
 *     device);
 *   - otherwise one body: the whole desired section with the current
 *     $version (a full-state body cannot say which keys were deleted; the
 *     Azure SDKs GET the twin on reconnect anyway).
 * *version_out (may be NULL) receives the current desired $version.
 * Codes: INVALID_ARG, NOT_FOUND, store errors.
 */
int hub_registry_twin_desired_changes1(struct hub_registry *reg, const char *id,
                                       int64_t seen_version, json_t **bodies_new,
                                       int64_t *version_out, struct hub_err *err);

/* ---- change observer (for the device endpoint) --------------------------- */

enum hub_registry_change {
    HUB_REGISTRY_DEVICE_UPDATED,  /* id: the device; still enabled */
    HUB_REGISTRY_DEVICE_DISABLED, /* id: the device; its status is now disabled */
    HUB_REGISTRY_DEVICE_DELETED,  /* id: the device */
    HUB_REGISTRY_CA_CHANGED,      /* id: NULL; the verified CA set may have changed */
    /* id: the device; its twin's desired properties changed (service PATCH
     * or PUT /twins/{id} committed). Fetch what to send with
     * hub_registry_twin_desired_changes1. */
    HUB_REGISTRY_TWIN_DESIRED_CHANGED,
};

typedef void (*hub_registry_change_fn)(void *ctx, enum hub_registry_change what, const char *id);

/*
 * Registers the one observer (NULL fn removes it). It is called on the thread
 * that made the change, after the change committed and before the API call
 * returns: after a device update (DISABLED when the stored status is
 * disabled, else UPDATED) or delete, after every CA upload, verify,
 * delete or CRL upload (CA_CHANGED), and after every twin change that touched desired
 * properties (TWIN_DESIRED_CHANGED). `id` is borrowed for the call. The callback runs under
 * the registry's observer lock, so it must be quick and must not call
 * hub_registry_observer_set (other registry calls are fine). Setting it
 * waits for a running callback to return, so after observer_set(reg, NULL,
 * NULL) returns, `ctx` is no longer used.
 */
void hub_registry_observer_set(struct hub_registry *reg, hub_registry_change_fn fn, void *ctx);

#endif
