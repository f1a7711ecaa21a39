/*
 * dps: hubd's Device Provisioning Service (issue 8): enrollments, the
 * attestation decision ("which enrollment admits this device, or why not"),
 * assignment into the hub registry, and registration records.
 *
 * Owns: the enrollment group / individual enrollment / registration records
 * and their JSON shapes (Azure provisioning service API 2021-10-01,
 * shared/reference/azure-iot-hub-protocol.md §7), the ID scope, the matching
 * rules, the reprovision policy, derived symmetric keys (through auth).
 * Knows nothing of: sockets, MQTT/HTTP framing and status codes, SQL (through
 * `store`), who is allowed to call the service API (http authorizes). Never
 * logs: refusals come back as a reason (enum hub_dps_refusal) plus hub_err
 * for the caller's log line.
 *
 * Matching rules (hub_dps_match_x509):
 *   1. The presented chain must validate (hub pki policy, clientAuth) up to a
 *      VERIFIED CA of the hub (the registry's trust snapshot): else, unless
 *      rule 1a admits the leaf, CHAIN_INVALID with the pki code in the
 *      return value.
 *   1a. Pinned leaf (Azure's individual enrollment of a self-signed or
 *      unknown-CA certificate): when the chain does not validate, an
 *      individual x509 enrollment of that registration id whose primary or
 *      secondary certificate IS the leaf (SHA-1 or SHA-256 thumbprint; an
 *      enrolled certificate is stored as its SHA-256) admits it, provided
 *      the leaf is usable on its own at `now` (hub_dps__leaf_usable: within
 *      notBefore..notAfter; EKU absent, clientAuth or anyExtendedKeyUsage:
 *      else CHAIN_INVALID with HUB_E_CERT_EXPIRED / CERT_NOT_YET_VALID /
 *      CHAIN_EKU / CHAIN_PROFILE; keyUsage is not judged, as the hub does
 *      not judge it for a selfSigned device), its CN is the registration id (else CN_MISMATCH)
 *      and the enrollment is enabled (else DISABLED). The match says
 *      `pinned`; the device is then assigned as selfSigned. Never for a
 *      group, and never when the chain failed as revoked (a CRL of a hub CA
 *      lists the leaf or its issuer: its key is not to be trusted, pinned
 *      or not). Without such an enrollment rule 1's CHAIN_INVALID stands.
 *   2. The leaf subject CN must equal the registration id: else CN_MISMATCH.
 *   3. An individual x509 enrollment with that registration id wins, if its
 *      certificate (or thumbprint) is the leaf's; the match is `pinned` as
 *      in 1a (an individual enrollment always pins its certificates). An
 *      individual enrollment for that id whose certificate is another one
 *      refuses (NO_ENROLLMENT).
 *   4. Else the x509 group whose signing certificate is NEAREST the leaf on
 *      the presented path (an intermediate's group beats its root's group):
 *      distance = number of issuer hops, proven by signatures.
 *      - inline signingCertificates: honoured only when the certificate is a
 *        verified hub CA (same SHA-256 thumbprint) or chains (by signatures,
 *        through the presented certificates) up to one: else the group is
 *        skipped and, if it was the only candidate, SIGNER_UNVERIFIED;
 *      - caReferences: the named hub CA must exist and be verified, else
 *        CA_REFERENCE_INVALID.
 *   5. The winner disabled (provisioningStatus "disabled"): DISABLED. An
 *      individual enrollment that is disabled refuses even when a group
 *      would admit the device (Azure: the individual entry overrides).
 *
 * Symmetric keys (hub_dps_match_symmetric): the individual enrollment of that
 * registration id (keys as stored), else every symmetricKey group in id
 * order with the derived keys base64(HMAC-SHA256(b64dec(groupKey), regId));
 * the first whose key verifies the SAS token (hub_auth_dps_verify) wins.
 *
 * Thread rules: every function may be called from any thread at once. The
 * DPS object holds no lock across store calls except hub_dps_assign, which
 * serializes assignments (one mutex: registrations are rare, and two racing
 * registrations of one id must not both create the device).
 *
 * Records: `struct hub_dps_enrollment` and `struct hub_dps_registration` own
 * their heap members; *_clear frees them and zeroes the record (a zeroed
 * record is valid; clearing it is a no-op).
 */
#ifndef HUB_DPS_H
#define HUB_DPS_H

#include <jansson.h>
#include <openssl/x509.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "registry/registry.h"
#include "store/store.h"

/* Azure: registration ids and enrollment group ids are at most 128
 * characters of [a-z0-9.-_] (ids are case-insensitive there; hubd compares
 * exactly and refuses upper case so that the device id equals the CN). */
#define HUB_DPS_ID_MAX        128
#define HUB_DPS_ID_SIZE       (HUB_DPS_ID_MAX + 1)
#define HUB_DPS_ID_SCOPE_SIZE 16 /* "0ne" + 8 upper hex digits, NUL */
#define HUB_DPS_HOST_SIZE     260
#define HUB_DPS_ERRMSG_SIZE   256

enum hub_dps_kind {
    HUB_DPS_GROUP = 0,  /* enrollmentGroups/{enrollmentGroupId} */
    HUB_DPS_INDIVIDUAL, /* enrollments/{registrationId} */
};

enum hub_dps_att_type {
    HUB_DPS_ATT_X509 = 0,     /* "x509" */
    HUB_DPS_ATT_SYMMETRIC_KEY /* "symmetricKey" */
};

/*
 * One enrollment (group or individual). Strings are "" when absent.
 * x509, group:      cert_pem[0]/[1] = signingCertificates primary/secondary
 *                   (PEM, owned, NULL when absent) or ca_ref[0]/[1] =
 *                   caReferences (hub CA names).
 * x509, individual: cert_pem[0]/[1] = clientCertificates primary/secondary,
 *                   or thumbprint[0]/[1] (uppercase hex SHA-1 or SHA-256).
 * symmetricKey:     primary_key/secondary_key (generated when both empty).
 */
struct hub_dps_enrollment {
    enum hub_dps_kind kind;
    char id[HUB_DPS_ID_SIZE];           /* enrollmentGroupId or registrationId */
    char device_id[HUB_DEVICE_ID_SIZE]; /* individual only: deviceId ("" = registration id) */
    enum hub_dps_att_type att_type;
    char *cert_pem[2]; /* owned */
    char ca_ref[2][HUB_CA_NAME_SIZE];
    char thumbprint[2][HUB_THUMBPRINT_SIZE];
    char primary_key[HUB_SAS_KEY_SIZE];
    char secondary_key[HUB_SAS_KEY_SIZE];
    bool enabled;               /* provisioningStatus */
    char *initial_twin_json;    /* owned; {"tags":{..},"properties":{"desired":{..}}} or NULL */
    bool update_hub_assignment; /* reprovisionPolicy, default true */
    bool migrate_device_data;   /* default true */
    bool iot_edge;              /* capabilities.iotEdge */
    char allocation_policy[16]; /* "hashed" (default), "static", ...; stored verbatim */
    char etag[HUB_ETAG_SIZE];
    int64_t created; /* Unix seconds */
    int64_t updated;
};

struct hub_dps_enrollment_list {
    size_t count;
    struct hub_dps_enrollment *items; /* owned, ordered by id */
};

void hub_dps_enrollment_clear(struct hub_dps_enrollment *e);          /* NULL ok */
void hub_dps_enrollment_list_free(struct hub_dps_enrollment_list *l); /* NULL ok */

enum hub_dps_reg_status {
    HUB_DPS_REG_UNASSIGNED = 0,
    HUB_DPS_REG_ASSIGNING,
    HUB_DPS_REG_ASSIGNED,
    HUB_DPS_REG_FAILED,
    HUB_DPS_REG_DISABLED,
};
/* Azure's registration substatus values. */
enum hub_dps_substatus {
    HUB_DPS_SUB_INITIAL_ASSIGNMENT = 0,   /* "initialAssignment" */
    HUB_DPS_SUB_DEVICE_DATA_MIGRATED,     /* "deviceDataMigrated": re-registration kept the twin */
    HUB_DPS_SUB_DEVICE_DATA_RESET,        /* "deviceDataReset": twin reset to initialTwin */
    HUB_DPS_SUB_REPROVISIONED_TO_INITIAL, /* "reprovisionedToInitialAssignment" */
};

/* A device registration state (the registrationState JSON). No heap members. */
struct hub_dps_registration {
    char registration_id[HUB_DPS_ID_SIZE];
    char device_id[HUB_DEVICE_ID_SIZE];
    char assigned_hub[HUB_DPS_HOST_SIZE];
    enum hub_dps_reg_status status;
    enum hub_dps_substatus substatus;
    enum hub_dps_att_type att_type;
    char enrollment_group_id[HUB_DPS_ID_SIZE]; /* "" for an individual enrollment */
    char cert_subject[HUB_CA_SUBJECT_SIZE];    /* x509: the leaf's subject, "" otherwise */
    char cert_thumbprint[HUB_THUMBPRINT_SIZE]; /* x509: leaf SHA-1, uppercase hex */
    int error_code;                            /* 0 unless status failed */
    char error_message[HUB_DPS_ERRMSG_SIZE];
    char etag[HUB_ETAG_SIZE];
    int64_t created; /* first registration, Unix seconds */
    int64_t updated; /* last registration */
};

struct hub_dps_registration_list {
    size_t count;
    struct hub_dps_registration *items; /* owned, ordered by registration id */
};
void hub_dps_registration_list_free(struct hub_dps_registration_list *l); /* NULL ok */

/* Static strings for the enums (Azure spellings). */
const char *hub_dps_reg_status_name(enum hub_dps_reg_status s);
const char *hub_dps_substatus_name(enum hub_dps_substatus s);
const char *hub_dps_att_type_name(enum hub_dps_att_type t);

/* ---- the service ---------------------------------------------------------- */

struct hub_dps_opts {
    const char *id_scope;     /* required, borrowed for hub_dps_new (copied) */
    const char *assigned_hub; /* the hub's host name devices are sent to (copied) */
    /* Clock, Unix seconds; NULL = time(NULL). */
    int64_t (*now)(void *ctx);
    void *now_ctx;
};

struct hub_dps;

/* `store` and `reg` are borrowed and must outlive the object. *out_new:
 * hub_dps_free(). INVALID_ARG when id_scope or assigned_hub is missing. */
int hub_dps_new(struct hub_store *store, struct hub_registry *reg, const struct hub_dps_opts *opts,
                struct hub_dps **out_new, struct hub_err *err);
void hub_dps_free(struct hub_dps *dps); /* NULL ok */
/* Borrowed from dps. */
const char *hub_dps_id_scope(const struct hub_dps *dps);
const char *hub_dps_assigned_hub(const struct hub_dps *dps);

/* Generates a new ID scope "0ne" + 8 uppercase hex digits (random). */
int hub_dps_id_scope_generate(char out[HUB_DPS_ID_SCOPE_SIZE], struct hub_err *err);

/* Registration / group id syntax: 1..128 of [a-z0-9._-]. INVALID_ARG. */
int hub_dps_id_check(const char *id, struct hub_err *err);

/* ---- enrollments (service API) -------------------------------------------- */

/*
 * Parses the service API body (Azure's IndividualEnrollment or
 * EnrollmentGroup JSON; `len` bytes, borrowed) into *out (zeroed first; the
 * caller clears it). `path_id` is the id from the URL: the body's
 * enrollmentGroupId / registrationId must be absent or equal. Refuses
 * (INVALID_ARG / PARSE, message names the field): bad JSON, unknown
 * attestation type (tpm is not supported), x509 without a certificate /
 * caReference (group) or certificate / thumbprint (individual), a
 * certificate that does not load or holds a private key, a bad key, bad
 * provisioningStatus, initialTwin that is not {tags?, properties?{desired?}}.
 */
int hub_dps_enrollment_parse(enum hub_dps_kind kind, const char *path_id, const char *json,
                             size_t len, struct hub_dps_enrollment *out, struct hub_err *err);

/* The service API JSON of *e (Azure's shape, with etag, createdDateTimeUtc,
 * lastUpdatedDateTimeUtc). NULL on OOM. Caller json_decref()s. */
json_t *hub_dps_enrollment_json_new(const struct hub_dps_enrollment *e);

/*
 * Creates or replaces the enrollment in->kind/in->id (hub fields etag,
 * created/updated are the hub's; symmetric keys generated when both empty,
 * on replace the stored ones are kept when both are empty). `if_match` NULL
 * or "*": unconditional; otherwise the stored etag must equal it
 * (ETAG_MISMATCH, or NOT_FOUND when there is none). *out (may be NULL)
 * receives the stored record (caller clears); *created_out (may be NULL).
 */
int hub_dps_enrollment_put(struct hub_dps *dps, const struct hub_dps_enrollment *in,
                           const char *if_match, struct hub_dps_enrollment *out, bool *created_out,
                           struct hub_err *err);
/* The same, creating only: HUB_E_EXISTS when the id exists (also when it
 * appears concurrently: the store write is create-only). */
int hub_dps_enrollment_create(struct hub_dps *dps, const struct hub_dps_enrollment *in,
                              struct hub_dps_enrollment *out, struct hub_err *err);
/* NOT_FOUND, INVALID_ARG (id syntax). *out: caller clears. */
int hub_dps_enrollment_get(struct hub_dps *dps, enum hub_dps_kind kind, const char *id,
                           struct hub_dps_enrollment *out, struct hub_err *err);
/* NOT_FOUND, ETAG_MISMATCH. Registrations made through it are kept (Azure). */
int hub_dps_enrollment_delete(struct hub_dps *dps, enum hub_dps_kind kind, const char *id,
                              const char *if_match, struct hub_err *err);
/* All of one kind, ordered by id. *out_new: hub_dps_enrollment_list_free. */
int hub_dps_enrollment_list1(struct hub_dps *dps, enum hub_dps_kind kind,
                             struct hub_dps_enrollment_list **out_new, struct hub_err *err);

/* ---- attestation decision (device side) ----------------------------------- */

#define HUB_DPS_REFUSAL_MAP(X)                                                                     \
    X(NONE, "accepted")                                                                            \
    X(NO_ENROLLMENT, "no enrollment matches this device")                                          \
    X(CHAIN_INVALID, "certificate chain does not validate to a verified CA")                       \
    X(CN_MISMATCH, "leaf certificate CN differs from the registration id")                         \
    X(DISABLED, "enrollment is disabled")                                                          \
    X(SIGNER_UNVERIFIED, "group signing certificate is not (under) a verified hub CA")             \
    X(CA_REFERENCE_INVALID, "caReferences names no verified hub CA")                               \
    X(BAD_SIGNATURE, "SAS token does not verify with the enrollment's key")                        \
    X(INTERNAL, "internal error (store, crypto)")

enum hub_dps_refusal {
#define HUB_DPS_REFUSAL_ENUM(name, text) HUB_DPS_REFUSAL_##name,
    HUB_DPS_REFUSAL_MAP(HUB_DPS_REFUSAL_ENUM)
#undef HUB_DPS_REFUSAL_ENUM
};
/* "NO_ENROLLMENT" etc. (stable log reason= values). Static. */
const char *hub_dps_refusal_name(enum hub_dps_refusal r);

/* What matching found. Zero it before use; hub_dps_match_clear after. */
struct hub_dps_match {
    enum hub_dps_refusal refusal;
    struct hub_dps_enrollment enrollment; /* the winner (owned), valid when refusal NONE */
    /* Device id to assign: the individual enrollment's deviceId, else the
     * registration id. */
    char device_id[HUB_DEVICE_ID_SIZE];
    /* symmetricKey: the device's keys (individual keys, or derived from the
     * group's); "" for x509. */
    char device_primary_key[HUB_SAS_KEY_SIZE];
    char device_secondary_key[HUB_SAS_KEY_SIZE];
    /* x509: the leaf's facts, for the registration record. */
    char cert_subject[HUB_CA_SUBJECT_SIZE];
    char cert_thumbprint[HUB_THUMBPRINT_SIZE]; /* SHA-1 */
    int64_t cert_not_after;
    /* x509 through an individual enrollment (rules 1a and 3): the device is
     * assigned as selfSigned with device_thumbprint[0]/[1] (the enrollment's
     * primary/secondary slots, uppercase hex as the registry stores them):
     * the slot the leaf matched holds the leaf's SHA-256, the other slot the
     * enrollment's thumbprint as enrolled ("" when none). False for a group
     * match (certificateAuthority) and for symmetric keys. */
    bool pinned;
    char device_thumbprint[2][HUB_THUMBPRINT_SIZE];
};
void hub_dps_match_clear(struct hub_dps_match *m); /* NULL ok; zeroes it */

/*
 * X.509 attestation of `registration_id` presenting `leaf` and the other
 * certificates `chain` (may be NULL; any order; borrowed). Returns 0 with
 * out->refusal NONE, or a negative code with out->refusal saying why and
 * err->msg the detail:
 *   NO_ENROLLMENT -> HUB_E_NOT_FOUND
 *   CHAIN_INVALID -> the pki code (HUB_E_CHAIN_*, HUB_E_CERT_*)
 *   CN_MISMATCH   -> HUB_E_CN_MISMATCH
 *   DISABLED      -> HUB_E_FORBIDDEN
 *   SIGNER_UNVERIFIED, CA_REFERENCE_INVALID -> HUB_E_CHAIN_UNTRUSTED
 *   INTERNAL      -> store / NOMEM / CRYPTO codes
 * `out` is cleared first; clear it after (hub_dps_match_clear) either way.
 */
int hub_dps_match_x509(struct hub_dps *dps, const char *registration_id, X509 *leaf,
                       STACK_OF(X509) * chain, struct hub_dps_match *out, struct hub_err *err);

/*
 * Symmetric-key attestation: `token`/`len` is the MQTT password / HTTP
 * Authorization SAS (sr {idScope}/registrations/{id}, skn registration).
 * Returns as above; BAD_SIGNATURE -> HUB_E_UNAUTHORIZED (also expired or
 * wrong-scope tokens: err->msg says which), NO_ENROLLMENT, DISABLED.
 */
int hub_dps_match_symmetric(struct hub_dps *dps, const char *registration_id, const char *token,
                            size_t len, struct hub_dps_match *out, struct hub_err *err);

/* ---- assignment ---------------------------------------------------------- */

/*
 * Assigns the device `match` admitted (refusal must be NONE), durably, then
 * fills *out with the registration record (status assigned):
 *   - no device match->device_id in the registry: created (x509:
 *     certificateAuthority, or selfSigned with match->device_thumbprint when
 *     match->pinned; symmetricKey: sas with the device keys; iotEdge from
 *     capabilities), initialTwin applied (twin replace), substatus
 *     initialAssignment;
 *   - device exists but this registration id has no record of it (created
 *     by hand, or through another registration id): taken only when it
 *     already holds exactly the credentials this registration gives it
 *     (certificateAuthority; the same keys; the same thumbprints), twin
 *     kept, substatus initialAssignment; otherwise HUB_E_EXISTS and the
 *     registration fails: a group key or a CA-signed certificate with its
 *     id never rewrites another device's credentials;
 *   - re-registration (a record exists), per reprovisionPolicy:
 *     updateHubAssignment false: nothing changes in the registry,
 *     reprovisionedToInitialAssignment (back to the hub it was first
 *     assigned to, unchanged); migrateDeviceData true: auth updated, twin kept,
 *     deviceDataMigrated; false: auth updated, twin reset to initialTwin
 *     (tags and desired replaced), deviceDataReset.
 *   A device disabled in the registry stays disabled (the operator's word
 *   beats the enrollment's).
 * The record keeps `created` of the first registration; new etag each time.
 * Codes: INVALID_ARG (a refused match), registry / store errors (then the
 * registration is recorded as failed with that message, best effort).
 */
int hub_dps_assign(struct hub_dps *dps, const char *registration_id,
                   const struct hub_dps_match *match, struct hub_dps_registration *out,
                   struct hub_err *err);

/* ---- registration records (service API) ---------------------------------- */

/* NOT_FOUND, INVALID_ARG. */
int hub_dps_registration_get(struct hub_dps *dps, const char *registration_id,
                             struct hub_dps_registration *out, struct hub_err *err);
/* Deletes the record (not the device: Azure leaves the hub alone).
 * NOT_FOUND, ETAG_MISMATCH. */
int hub_dps_registration_delete(struct hub_dps *dps, const char *registration_id,
                                const char *if_match, struct hub_err *err);
/* Every record, or only those made through group `group_id` (non-NULL). */
int hub_dps_registration_list1(struct hub_dps *dps, const char *group_id,
                               struct hub_dps_registration_list **out_new, struct hub_err *err);
/* Azure's DeviceRegistrationState JSON (registrationId, createdDateTimeUtc,
 * assignedHub, deviceId, status, substatus, lastUpdatedDateTimeUtc, etag,
 * x509|symmetricKey {enrollmentGroupId, ...}, errorCode/errorMessage when
 * failed). NULL on OOM; caller json_decref()s. */
json_t *hub_dps_registration_json_new(const struct hub_dps_registration *r);

#endif
