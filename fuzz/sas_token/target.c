/*
 * libFuzzer target: SAS tokens, as a device (MQTT CONNECT password, device
 * HTTPS Authorization), a service client (REST Authorization) or a DPS
 * registration presents them, through hub_auth_sas_parse and the three
 * decisions (hub_auth_device_verify, hub_auth_service_authorize,
 * hub_auth_dps_verify) with a fixed policy set and fixed keys.
 *
 * The first input byte picks the mode, the rest is its input:
 *   0..3  the rest is a token: parsed, then decided by one of the three
 *         decisions (the fuzzer cannot forge an HMAC, so these reach the
 *         checks before the signature and the refusals);
 *   4..7  the rest is a resource (sr): a token for it is built with
 *         hub_auth_sas_build and a key we hold, then parsed and decided, so
 *         the checks after the signature (expiry, scope, permissions) see
 *         fuzzer-chosen resources. Bytes 2 and 3 pick the sr form, the key,
 *         the policy name (skn), the permission asked for and the expiry.
 * Checked on every run:
 *   - a parsed token's fields keep their limits, decoded fields hold no NUL
 *     and sr_raw is a substring of the token;
 *   - every decision returns one of the documented codes, deny is NONE
 *     exactly when it returns 0, key_slot/policy are set when it accepts;
 *   - a token we built parses back to the resource we built it for and is
 *     never refused as MALFORMED or BAD_SIGNATURE; an accepted device token
 *     really names "<accepted host>/devices/dev1", an accepted service token
 *     a prefix of the requested resource under an accepted host.
 * A violated check calls abort() so libFuzzer saves the input.
 *
 * Not part of the CMake build: `make fuzz` (scripts/fuzz) builds it with
 * clang -fsanitize=fuzzer,address,undefined from this file, every .c of src/auth,
 * src/common/err.c and util.c, linking libcrypto.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/auth.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

#define NOW 1750000000

/* Arbitrary fixed keys: 32 random bytes each, base64. */
#define KEY_DEV_1 "G0nup7fU2q9mMYzYkUwmxGRa7EHE5X0gm3PYNfUJit4="
#define KEY_DEV_2 "s2Pjs0aMmfTxTALjzs/F41ItoSZH4HXNHuxCj0ycynU="
#define KEY_POL_1 "8LhUFjC0sXLeix8rrGI/oBQj40YsAPFD0UcFIpjMaZg="
#define KEY_POL_2 "NQT9j1Uh3gRP4vlzCjYqipQRYm3Gh+25VDINIxXeZpQ="

static const char *const hosts[] = {"localhost", "hub.example:8883"};
static const struct hub_auth_verify_cfg cfg = {hosts, 2, 0};
static const struct hub_auth_verify_cfg cfg_ttl = {hosts, 2, 3600};

static const struct {
    const char *name;
    unsigned perms;
    const char *key;
} policies_def[] = {
    {"iothubowner", HUB_AUTH_PERM_ALL, KEY_POL_1},
    {"registryRead", HUB_AUTH_PERM_REGISTRY_READ, KEY_POL_2},
    {"serviceConnect", HUB_AUTH_PERM_SERVICE_CONNECT, KEY_POL_1},
    {"deviceConnect", HUB_AUTH_PERM_DEVICE_CONNECT, KEY_POL_2},
};
#define N_POLICIES (sizeof(policies_def) / sizeof(policies_def[0]))

static struct hub_auth_policy_set policies;

static void init_policies(void)
{
    if (policies.count != 0)
        return;
    for (size_t i = 0; i < N_POLICIES; i++)
        CHECK(hub_auth_policy_set_add(&policies, policies_def[i].name, policies_def[i].perms,
                                      policies_def[i].key, i % 2 ? KEY_POL_1 : KEY_POL_2,
                                      NULL) == 0);
}

static void check_parsed(const struct hub_auth_sas *s, const char *token, size_t len)
{
    CHECK(s->sr_raw_len >= 1 && s->sr_raw_len <= HUB_AUTH_SR_MAX);
    CHECK(s->sr_len >= 1 && s->sr_len <= s->sr_raw_len && strlen(s->sr) == s->sr_len);
    CHECK(s->sig_len >= 1 && s->sig_len <= HUB_AUTH_SIG_MAX && strlen(s->sig) == s->sig_len);
    CHECK(strlen(s->se_raw) >= 1 && strlen(s->se_raw) <= HUB_AUTH_SE_DIGITS_MAX);
    CHECK(s->se >= 0);
    CHECK(s->has_skn || s->skn[0] == '\0');
    CHECK(strlen(s->skn) <= HUB_AUTH_NAME_MAX);
    CHECK(memmem(token, len, s->sr_raw, s->sr_raw_len) != NULL);
}

/* A decision's return against the header's contract. */
static void check_decision(int rc, const struct hub_auth_result *res)
{
    CHECK(rc == 0 || rc == HUB_E_UNAUTHORIZED || rc == HUB_E_FORBIDDEN || rc == HUB_E_INVALID_ARG ||
          rc == HUB_E_CRYPTO);
    CHECK((rc == 0) == (res->deny == HUB_AUTH_DENY_NONE));
    CHECK(strncmp(hub_auth_deny_name(res->deny), "SAS_", 4) == 0);
    if (rc == HUB_E_FORBIDDEN)
        CHECK(res->deny == HUB_AUTH_DENY_NO_PERMISSION && res->policy != NULL);
    if (rc == 0)
        CHECK(res->key_slot == 1 || res->key_slot == 2);
}

/* 1 if sr (decoded) is "<accepted host>/<rest>" with rest exactly `rest`
 * (or, with prefix_ok, a whole-segment prefix of it, possibly empty). */
static int sr_names(const char *sr, const char *rest, int prefix_ok)
{
    const char *slash = strchr(sr, '/');
    size_t hlen = slash != NULL ? (size_t)(slash - sr) : strlen(sr);
    int host_ok = 0;
    for (size_t i = 0; i < cfg.host_count; i++)
        if (strlen(hosts[i]) == hlen && strncasecmp(sr, hosts[i], hlen) == 0)
            host_ok = 1;
    if (!host_ok)
        return 0;
    const char *tail = sr + hlen; /* "" or "/..." */
    if (strcmp(tail, rest) == 0)
        return 1;
    if (!prefix_ok)
        return 0;
    size_t tl = strlen(tail);
    return tl == 0 || (strncmp(rest, tail, tl) == 0 && (rest[tl] == '/' || rest[tl] == '\0'));
}

static int device_verify(const char *token, size_t len, struct hub_auth_result *res)
{
    struct hub_auth_device_req req = {
        .now = NOW,
        .device_id = "dev1",
        .module_id = NULL,
        .keys = {KEY_DEV_1, KEY_DEV_2},
        .policies = &policies,
    };
    int rc = hub_auth_device_verify(&cfg, &req, token, len, res, NULL);
    check_decision(rc, res);
    return rc;
}

static int service_authorize(const char *token, size_t len, unsigned perms,
                             struct hub_auth_result *res)
{
    struct hub_auth_service_req req = {
        .now = NOW,
        .resource = "/devices/dev1",
        .perms = perms,
        .policies = &policies,
    };
    int rc = hub_auth_service_authorize(&cfg_ttl, &req, token, len, res, NULL);
    check_decision(rc, res);
    if (rc == 0)
        CHECK(res->policy != NULL && (res->policy->perms & perms) == perms);
    return rc;
}

static int dps_verify(const char *token, size_t len, struct hub_auth_result *res)
{
    struct hub_auth_dps_req req = {
        .now = NOW,
        .id_scope = "0ne00000001",
        .registration_id = "dev1",
        .keys = {KEY_DEV_1, NULL},
    };
    int rc = hub_auth_dps_verify(&cfg, &req, token, len, res, NULL);
    check_decision(rc, res);
    return rc;
}

static void fuzz_token(int which, const char *token, size_t len)
{
    static struct hub_auth_sas sas;
    struct hub_err err = {0};
    int rc = hub_auth_sas_parse(token, len, &sas, &err);
    if (rc == 0)
        check_parsed(&sas, token, len);
    else
        CHECK((rc == HUB_E_PARSE || rc == HUB_E_TOO_LARGE) && err.code == rc);

    struct hub_auth_result res;
    memset(&res, 0, sizeof(res));
    switch (which) {
    case 0:
        break;
    case 1:
        rc = device_verify(token, len, &res);
        break;
    case 2:
        rc = service_authorize(token, len, HUB_AUTH_PERM_REGISTRY_READ, &res);
        break;
    default:
        rc = dps_verify(token, len, &res);
        break;
    }
    (void)rc;
}

/* Every policy holds both policy keys (primary one, secondary the other). */
static int known_policy(const char *name)
{
    return name != NULL && hub_auth_policy_set_find0(&policies, name) != NULL;
}

static void fuzz_resource(int which, unsigned flags, const char *resource)
{
    static const char *const keys[] = {KEY_DEV_1, KEY_DEV_2, KEY_POL_1, KEY_POL_2};
    static const char *const names[] = {NULL,           NULL,     "iothubowner", "deviceConnect",
                                        "registryRead", "nosuch", "registration"};
    enum hub_auth_sr_form form = (flags & 1) ? HUB_AUTH_SR_RAW : HUB_AUTH_SR_ENCODED;
    const char *key = keys[(flags >> 1) & 3];
    const char *name = names[((flags >> 4) & 0xf) % 7];
    /* expiry: expired, now, a minute, a day, far future */
    static const int64_t ttl[] = {-10, 0, 60, 86400, 40LL * 365 * 86400, 1, 3600, 3601};
    int64_t expiry = NOW + ttl[(flags >> 8) & 7];

    static char token[HUB_AUTH_TOKEN_MAX + 1];
    int rc = hub_auth_sas_build(resource, form, name, key, expiry, token, sizeof(token), NULL);
    if (rc != 0) {
        CHECK(rc == HUB_E_INVALID_ARG || rc == HUB_E_TOO_LARGE);
        return;
    }
    size_t len = strlen(token);
    static struct hub_auth_sas sas;
    CHECK(hub_auth_sas_parse(token, len, &sas, NULL) == 0);
    check_parsed(&sas, token, len);
    CHECK(strcmp(sas.sr, resource) == 0);
    CHECK(sas.se == expiry);
    CHECK(sas.has_skn == (name != NULL));
    if (name != NULL)
        CHECK(strcmp(sas.skn, name) == 0);

    struct hub_auth_result res;
    memset(&res, 0, sizeof(res));
    switch (which) {
    case 0:
    case 1:
        rc = device_verify(token, len, &res);
        if (rc == 0) {
            CHECK(expiry > NOW);
            CHECK(sr_names(resource, "/devices/dev1", name != NULL));
            if (name == NULL)
                CHECK(key == keys[0] || key == keys[1]);
            else
                CHECK(res.policy != NULL &&
                      (res.policy->perms & HUB_AUTH_PERM_DEVICE_CONNECT) != 0);
        }
        break;
    case 2: {
        unsigned perms = (flags & 0x8) ? HUB_AUTH_PERM_REGISTRY_WRITE : HUB_AUTH_PERM_REGISTRY_READ;
        rc = service_authorize(token, len, perms, &res);
        if (rc == 0) {
            CHECK(expiry > NOW && expiry - NOW <= cfg_ttl.max_ttl_s);
            CHECK(name != NULL && strcmp(res.policy->name, name) == 0);
            CHECK(sr_names(resource, "/devices/dev1", 1));
        }
        break;
    }
    default:
        rc = dps_verify(token, len, &res);
        if (rc == 0) {
            CHECK(expiry > NOW && key == keys[0] && strcmp(name, "registration") == 0);
            CHECK(strncasecmp(resource, "0ne00000001", 11) == 0 &&
                  strcmp(resource + 11, "/registrations/dev1") == 0);
        }
        break;
    }
    /* built tokens are well formed, and signed with a key the verifier
     * holds for the signer they name: no MALFORMED, no BAD_SIGNATURE */
    CHECK(res.deny != HUB_AUTH_DENY_MALFORMED);
    int dev_key = key == keys[0] || key == keys[1];
    if (which <= 1 && ((name == NULL && dev_key) || (known_policy(name) && !dev_key)))
        CHECK(res.deny != HUB_AUTH_DENY_BAD_SIGNATURE);
    if (which == 2 && known_policy(name) && !dev_key)
        CHECK(res.deny != HUB_AUTH_DENY_BAD_SIGNATURE);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    init_policies();
    int mode = data[0] % 8;
    if (mode < 4) {
        /* exactly len bytes on the heap, no NUL: ASan sees any over-read */
        size_t len = size - 1;
        char *copy = malloc(len ? len : 1);
        CHECK(copy != NULL);
        memcpy(copy, data + 1, len);
        fuzz_token(mode, copy, len);
        free(copy);
        return 0;
    }
    if (size < 3 || size - 3 > HUB_AUTH_SR_MAX)
        return 0;
    char resource[HUB_AUTH_SR_MAX + 1];
    memcpy(resource, data + 3, size - 3);
    resource[size - 3] = '\0';
    if (strlen(resource) != size - 3)
        return 0; /* a C string API: embedded NULs are not an input */
    fuzz_resource(mode - 4, data[1] | (unsigned)data[2] << 8, resource);
    return 0;
}
