/*
 * SAS tokens: parse, build, and the three decisions (device, service, DPS).
 *
 * Token grammar (reference §1 "SAS token (device)", §4 General, §7):
 *
 *   token  = "SharedAccessSignature " pair *( "&" pair )
 *   pair   = name "=" value          ; any order, names case-sensitive
 *   sr     = resource URI            ; HMAC input AS WRITTEN; decoded for scope
 *   sig    = pct(base64(HMAC))       ; decoded before the compare
 *   se     = 1*19DIGIT               ; HMAC input as written
 *   skn    = pct(policy name)        ; optional
 *
 *   | SDK (captured)       | sr in the token                     | skn          |
 *   |----------------------|-------------------------------------|--------------|
 *   | Node device          | localhost%2Fdevices%2Fdev1          | -            |
 *   | Node service         | localhost                           | iothubowner  |
 *   | Node DPS             | 0ne00000001/registrations/dev1      | registration |
 *
 * Signed string: sr_raw "\n" se_raw. Because Node's device SDK signs the
 * encoded sr and its service/DPS SDKs sign the raw one, the verifier must
 * never re-encode: it signs the exact bytes it received.
 */
#include "auth/auth_int.h"

#include <stdio.h>
#include <string.h>

#include "common/util.h"

static const char SAS_PREFIX[] = "SharedAccessSignature ";
#define SAS_PREFIX_LEN (sizeof(SAS_PREFIX) - 1)

/* The DPS policy name Node and C put in skn (§7). */
static const char DPS_SKN[] = "registration";

/* ---- percent-encoding --------------------------------------------------- */

/* Decodes in[0..len) into out (cap bytes, NUL included; hub_pct_decode's
 * rules). base_off is the value's offset in the token, for messages. */
static int pct_decode(const char *in, size_t len, char *out, size_t cap, size_t *outlen,
                      const char *field, size_t base_off, struct hub_err *err)
{
    size_t at = 0;
    switch (hub_pct_decode(in, len, out, cap, 0, outlen, &at)) {
    case HUB_PCT_OK:
        return 0;
    case HUB_PCT_NUL_ESCAPE:
        return HUB_ERR(err, HUB_E_PARSE, "%%00 in %s at offset %zu", field, base_off + at);
    case HUB_PCT_NUL_BYTE: /* unreachable: the token's controls are refused first */
        return HUB_ERR(err, HUB_E_PARSE, "NUL byte in %s at offset %zu", field, base_off + at);
    case HUB_PCT_TOO_LONG:
        return HUB_ERR(err, HUB_E_TOO_LARGE, "%s is longer than %zu bytes", field,
                       cap == 0 ? 0 : cap - 1);
    default: /* HUB_PCT_BAD_ESCAPE (no flags: no slash refusal) */
        return HUB_ERR(err, HUB_E_PARSE, "bad percent-escape in %s at offset %zu", field,
                       base_off + at);
    }
}

/*
 * Node's encodeUriComponentStrict: encodeURIComponent (uppercase %XX for
 * everything but A-Z a-z 0-9 - _ . ! ~ * ' ( )), then '!'()*' replaced by
 * '%' + charCode.toString(16), which is lowercase: '*' becomes "%2a".
 * Bytes are encoded one by one, which is what encodeURIComponent does to
 * UTF-8. Returns 0, or -1 if out (cap bytes, NUL included) is too small.
 */
static int pct_encode_strict(const char *in, size_t len, char *out, size_t cap, size_t *outlen)
{
    static const char upper[] = "0123456789ABCDEF";
    static const char lower[] = "0123456789abcdef";
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        int plain = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_' || c == '.' || c == '~';
        if (plain) {
            if (o + 1 >= cap)
                return -1;
            out[o++] = (char)c;
            continue;
        }
        const char *digits = strchr("!'()*", c) != NULL && c != '\0' ? lower : upper;
        if (o + 3 >= cap)
            return -1;
        out[o++] = '%';
        out[o++] = digits[c >> 4];
        out[o++] = digits[c & 0x0f];
    }
    out[o] = '\0';
    if (outlen != NULL)
        *outlen = o;
    return 0;
}

/* ---- parse -------------------------------------------------------------- */

enum sas_field { F_SR, F_SIG, F_SE, F_SKN, F_COUNT, F_OTHER = F_COUNT };
static const char *const FIELD_NAMES[F_COUNT] = {"sr", "sig", "se", "skn"};

static enum sas_field field_of(const char *name, size_t len)
{
    for (int f = 0; f < F_COUNT; f++)
        if (strlen(FIELD_NAMES[f]) == len && memcmp(FIELD_NAMES[f], name, len) == 0)
            return (enum sas_field)f;
    return F_OTHER;
}

static int parse_se(const char *v, size_t len, size_t off, struct hub_auth_sas *out,
                    struct hub_err *err)
{
    if (len > HUB_AUTH_SE_DIGITS_MAX)
        return HUB_ERR(err, HUB_E_PARSE, "se has more than %d digits", HUB_AUTH_SE_DIGITS_MAX);
    int64_t value = 0;
    for (size_t i = 0; i < len; i++) {
        if (v[i] < '0' || v[i] > '9')
            return HUB_ERR(err, HUB_E_PARSE, "se is not a decimal number (offset %zu)", off + i);
        int d = v[i] - '0';
        if (value > (INT64_MAX - d) / 10)
            return HUB_ERR(err, HUB_E_PARSE, "se is out of range");
        value = value * 10 + d;
    }
    memcpy(out->se_raw, v, len);
    out->se_raw[len] = '\0';
    out->se = value;
    return 0;
}

static int parse_value(enum sas_field f, const char *v, size_t len, size_t off,
                       struct hub_auth_sas *out, struct hub_err *err)
{
    switch (f) {
    case F_SR:
        if (len > HUB_AUTH_SR_MAX)
            return HUB_ERR(err, HUB_E_TOO_LARGE, "sr is longer than %d bytes", HUB_AUTH_SR_MAX);
        memcpy(out->sr_raw, v, len);
        out->sr_raw[len] = '\0';
        out->sr_raw_len = len;
        return pct_decode(v, len, out->sr, sizeof(out->sr), &out->sr_len, "sr", off, err);
    case F_SIG:
        return pct_decode(v, len, out->sig, sizeof(out->sig), &out->sig_len, "sig", off, err);
    case F_SE:
        return parse_se(v, len, off, out, err);
    case F_SKN: {
        size_t n = 0;
        out->has_skn = 1;
        return pct_decode(v, len, out->skn, sizeof(out->skn), &n, "skn", off, err);
    }
    default:
        return 0; /* unknown names are ignored */
    }
}

int hub_auth_sas_parse(const char *token, size_t len, struct hub_auth_sas *out, struct hub_err *err)
{
    if (token == NULL || out == NULL)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "NULL token or output");
    if (len > HUB_AUTH_TOKEN_MAX)
        return HUB_ERR(err, HUB_E_TOO_LARGE, "token is %zu bytes, limit %d", len,
                       HUB_AUTH_TOKEN_MAX);
    memset(out, 0, sizeof(*out));
    if (len < SAS_PREFIX_LEN || memcmp(token, SAS_PREFIX, SAS_PREFIX_LEN) != 0)
        return HUB_ERR(err, HUB_E_PARSE, "token does not start with 'SharedAccessSignature '");
    if (len == SAS_PREFIX_LEN)
        return HUB_ERR(err, HUB_E_PARSE, "token has no fields");
    for (size_t i = SAS_PREFIX_LEN; i < len; i++) {
        unsigned char c = (unsigned char)token[i];
        if (c <= 0x20 || c == 0x7f)
            return HUB_ERR(err, HUB_E_PARSE, "byte 0x%02x at offset %zu (whitespace or control)", c,
                           i);
    }

    int seen[F_COUNT] = {0};
    size_t pos = SAS_PREFIX_LEN;
    for (;;) {
        const char *amp = memchr(token + pos, '&', len - pos);
        size_t end = amp != NULL ? (size_t)(amp - token) : len;
        if (end == pos)
            return HUB_ERR(err, HUB_E_PARSE, "empty field at offset %zu", pos);
        const char *eq = memchr(token + pos, '=', end - pos);
        if (eq == NULL)
            return HUB_ERR(err, HUB_E_PARSE, "field at offset %zu has no '='", pos);
        size_t name_len = (size_t)(eq - (token + pos));
        if (name_len == 0)
            return HUB_ERR(err, HUB_E_PARSE, "field at offset %zu has an empty name", pos);
        enum sas_field f = field_of(token + pos, name_len);
        size_t voff = pos + name_len + 1;
        size_t vlen = end - voff;
        if (f != F_OTHER) {
            if (seen[f])
                return HUB_ERR(err, HUB_E_PARSE, "duplicate field '%s' at offset %zu",
                               FIELD_NAMES[f], pos);
            seen[f] = 1;
            if (vlen == 0)
                return HUB_ERR(err, HUB_E_PARSE, "empty %s at offset %zu", FIELD_NAMES[f], voff);
            int rc = parse_value(f, token + voff, vlen, voff, out, err);
            if (rc != 0)
                return rc;
        }
        if (end == len)
            break;
        pos = end + 1;
    }
    for (int f = F_SR; f <= F_SE; f++)
        if (!seen[f])
            return HUB_ERR(err, HUB_E_PARSE, "token has no %s", FIELD_NAMES[f]);
    return 0;
}

/* ---- build -------------------------------------------------------------- */

/* sr_raw "\n" se_raw, the string both signer and verifier MAC. */
static int mac_token(const unsigned char *key, size_t keylen, const char *sr, size_t sr_len,
                     const char *se, char mac[HUB_AUTH__MAC_B64_LEN + 1], struct hub_err *err)
{
    char msg[HUB_AUTH_SR_MAX + 1 + HUB_AUTH_SE_DIGITS_MAX + 1];
    size_t se_len = strlen(se);
    if (sr_len > HUB_AUTH_SR_MAX || se_len > HUB_AUTH_SE_DIGITS_MAX)
        return HUB_ERR(err, HUB_E_INTERNAL, "token fields over their limits");
    memcpy(msg, sr, sr_len);
    msg[sr_len] = '\n';
    memcpy(msg + sr_len + 1, se, se_len);
    return hub_auth__hmac_b64(key, keylen, msg, sr_len + 1 + se_len, mac, err);
}

int hub_auth_sas_build(const char *resource, enum hub_auth_sr_form form, const char *key_name,
                       const char *key_b64, int64_t expiry, char *out, size_t outcap,
                       struct hub_err *err)
{
    if (resource == NULL || resource[0] == '\0' || out == NULL)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "resource and output are required");
    if (expiry <= 0)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "expiry must be positive");
    size_t rlen = strlen(resource);

    char sr[HUB_AUTH_SR_MAX + 1];
    size_t sr_len = 0;
    if (form == HUB_AUTH_SR_ENCODED) {
        if (pct_encode_strict(resource, rlen, sr, sizeof(sr), &sr_len) != 0)
            return HUB_ERR(err, HUB_E_INVALID_ARG, "encoded resource is longer than %d bytes",
                           HUB_AUTH_SR_MAX);
    } else if (form == HUB_AUTH_SR_RAW) {
        if (rlen > HUB_AUTH_SR_MAX)
            return HUB_ERR(err, HUB_E_INVALID_ARG, "resource is longer than %d bytes",
                           HUB_AUTH_SR_MAX);
        for (size_t i = 0; i < rlen; i++) {
            unsigned char c = (unsigned char)resource[i];
            if (c <= 0x20 || c == 0x7f || c == '&' || c == '%')
                return HUB_ERR(err, HUB_E_INVALID_ARG,
                               "resource byte 0x%02x at %zu cannot appear in a raw sr", c, i);
        }
        memcpy(sr, resource, rlen + 1);
        sr_len = rlen;
    } else {
        return HUB_ERR(err, HUB_E_INVALID_ARG, "unknown sr form %d", (int)form);
    }

    char skn[3 * HUB_AUTH_NAME_MAX + 1] = "";
    if (key_name != NULL && key_name[0] != '\0') {
        size_t klen = strlen(key_name);
        if (klen > HUB_AUTH_NAME_MAX)
            return HUB_ERR(err, HUB_E_INVALID_ARG, "key name is longer than %d bytes",
                           HUB_AUTH_NAME_MAX);
        if (pct_encode_strict(key_name, klen, skn, sizeof(skn), NULL) != 0)
            return HUB_ERR(err, HUB_E_INTERNAL, "encoded key name does not fit");
    }

    char se[HUB_AUTH_SE_DIGITS_MAX + 1];
    snprintf(se, sizeof(se), "%lld", (long long)expiry);

    unsigned char key[HUB_AUTH_KEY_MAX_BYTES];
    size_t keylen = 0;
    int rc = hub_auth__key_decode(key_b64, "key", key, &keylen, err);
    if (rc != 0)
        return rc;
    char mac[HUB_AUTH__MAC_B64_LEN + 1];
    rc = mac_token(key, keylen, sr, sr_len, se, mac, err);
    hub_auth__wipe(key, sizeof(key));
    if (rc != 0)
        return rc;
    char sig[3 * HUB_AUTH__MAC_B64_LEN + 1];
    if (pct_encode_strict(mac, strlen(mac), sig, sizeof(sig), NULL) != 0)
        return HUB_ERR(err, HUB_E_INTERNAL, "encoded signature does not fit");

    /* Field order is Node's toString(): sr, sig, skn, se. */
    int n = snprintf(out, outcap, "%ssr=%s&sig=%s%s%s&se=%s", SAS_PREFIX, sr, sig,
                     skn[0] != '\0' ? "&skn=" : "", skn, se);
    if (n < 0 || (size_t)n >= outcap)
        return HUB_ERR(err, HUB_E_TOO_LARGE, "token needs %d bytes, buffer has %zu", n, outcap);
    if (n > HUB_AUTH_TOKEN_MAX)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "token would be %d bytes, limit %d", n,
                       HUB_AUTH_TOKEN_MAX);
    return 0;
}

int hub_auth_dps_derive_key(const char *group_key_b64, const char *registration_id,
                            char out[HUB_AUTH_KEY_B64_MAX + 1], struct hub_err *err)
{
    if (registration_id == NULL || registration_id[0] == '\0' || out == NULL)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "registration id and output are required");
    unsigned char key[HUB_AUTH_KEY_MAX_BYTES];
    size_t keylen = 0;
    int rc = hub_auth__key_decode(group_key_b64, "group key", key, &keylen, err);
    if (rc != 0)
        return rc;
    rc = hub_auth__hmac_b64(key, keylen, registration_id, strlen(registration_id), out, err);
    hub_auth__wipe(key, sizeof(key));
    return rc;
}

/* ---- decisions ---------------------------------------------------------- */

const char *hub_auth_deny_name(enum hub_auth_deny deny)
{
    switch (deny) {
#define HUB_AUTH_DENY_NAME_CASE(name, text)                                                        \
    case HUB_AUTH_DENY_##name:                                                                     \
        return "SAS_" #name;
        HUB_AUTH_DENY_MAP(HUB_AUTH_DENY_NAME_CASE)
#undef HUB_AUTH_DENY_NAME_CASE
    }
    return "SAS_UNKNOWN";
}

/* Records the reason and fills err: `return DENY(...)`. */
#define DENY(res, why, code, ...) ((res)->deny = (why), HUB_ERR(err, (code), __VA_ARGS__))

static int ascii_lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

/* Locale-independent on purpose: host names are ASCII. */
static int ascii_case_equal(const char *a, size_t alen, const char *b, size_t blen)
{
    if (alen != blen)
        return 0;
    for (size_t i = 0; i < alen; i++)
        if (ascii_lower((unsigned char)a[i]) != ascii_lower((unsigned char)b[i]))
            return 0;
    return 1;
}

static int keys_present(const struct hub_auth_keys *k)
{
    return (k->primary != NULL && k->primary[0] != '\0') ||
           (k->secondary != NULL && k->secondary[0] != '\0');
}

/* Step 3 of every decision: some key's MAC equals the decoded sig. */
static int check_signature(const struct hub_auth_sas *tok, const struct hub_auth_keys *keys,
                           const char *owner, struct hub_auth_result *res, struct hub_err *err)
{
    const char *slots[2] = {keys->primary, keys->secondary};
    for (int i = 0; i < 2; i++) {
        if (slots[i] == NULL || slots[i][0] == '\0')
            continue;
        unsigned char key[HUB_AUTH_KEY_MAX_BYTES];
        size_t keylen = 0;
        int rc = hub_auth__key_decode(
            slots[i], i == 0 ? "stored primary key" : "stored secondary key", key, &keylen, err);
        if (rc != 0)
            return rc; /* stored keys are validated on write: this is a bug upstream */
        char mac[HUB_AUTH__MAC_B64_LEN + 1];
        rc = mac_token(key, keylen, tok->sr_raw, tok->sr_raw_len, tok->se_raw, mac, err);
        hub_auth__wipe(key, sizeof(key));
        if (rc != 0)
            return rc;
        if (hub_ct_equal(mac, HUB_AUTH__MAC_B64_LEN, tok->sig, tok->sig_len)) {
            res->key_slot = i + 1;
            return 0;
        }
    }
    return DENY(res, HUB_AUTH_DENY_BAD_SIGNATURE, HUB_E_UNAUTHORIZED,
                "signature matches neither key of %s", owner);
}

static int check_expiry(const struct hub_auth_verify_cfg *cfg, const struct hub_auth_sas *tok,
                        int64_t now, struct hub_auth_result *res, struct hub_err *err)
{
    if (tok->se <= now)
        return DENY(res, HUB_AUTH_DENY_EXPIRED, HUB_E_UNAUTHORIZED,
                    "token expired at %lld, now is %lld", (long long)tok->se, (long long)now);
    if (cfg->max_ttl_s > 0 && tok->se - now > cfg->max_ttl_s)
        return DENY(res, HUB_AUTH_DENY_TOO_LONG_LIVED, HUB_E_UNAUTHORIZED,
                    "token expires in %lld s, limit %lld s", (long long)(tok->se - now),
                    (long long)cfg->max_ttl_s);
    return 0;
}

/* Splits the decoded sr into its first segment and the rest ("" or "/..."). */
static void split_sr(const struct hub_auth_sas *tok, size_t *first_len, const char **rest,
                     size_t *rest_len)
{
    const char *slash = memchr(tok->sr, '/', tok->sr_len);
    *first_len = slash != NULL ? (size_t)(slash - tok->sr) : tok->sr_len;
    *rest = tok->sr + *first_len;
    *rest_len = tok->sr_len - *first_len;
}

/*
 * Step 5: the decoded sr's first segment is an accepted host and the rest
 * equals target (exact) or is a whole-segment prefix of it.
 */
static int check_scope(const struct hub_auth_verify_cfg *cfg, const struct hub_auth_sas *tok,
                       const char *target, int exact, struct hub_auth_result *res,
                       struct hub_err *err)
{
    size_t hlen = 0, rlen = 0;
    const char *rest = NULL;
    split_sr(tok, &hlen, &rest, &rlen);
    int host_ok = 0;
    for (size_t i = 0; i < cfg->host_count && !host_ok; i++)
        host_ok = ascii_case_equal(tok->sr, hlen, cfg->hosts[i], strlen(cfg->hosts[i]));
    if (!host_ok)
        return DENY(res, HUB_AUTH_DENY_WRONG_SCOPE, HUB_E_UNAUTHORIZED,
                    "token host '%.*s' is not a host name of this hub",
                    (int)(hlen > 64 ? 64 : hlen), tok->sr);
    size_t tlen = strlen(target);
    int ok;
    if (exact)
        ok = rlen == tlen && memcmp(rest, target, rlen) == 0;
    else
        ok = rlen == 0 || (rlen <= tlen && memcmp(rest, target, rlen) == 0 &&
                           (rlen == tlen || target[rlen] == '/'));
    if (!ok)
        return DENY(res, HUB_AUTH_DENY_WRONG_SCOPE, HUB_E_UNAUTHORIZED,
                    "token scope '%.*s' does not cover '%.*s'", (int)(rlen > 96 ? 96 : rlen), rest,
                    (int)(tlen > 96 ? 96 : tlen), target);
    return 0;
}

/* Step 1, shared: parse, turning any parse failure into MALFORMED. */
static int parse_for_decision(const char *token, size_t len, struct hub_auth_sas *tok,
                              struct hub_auth_result *res, struct hub_err *err)
{
    struct hub_err inner = {0};
    if (hub_auth_sas_parse(token, len, tok, &inner) != 0)
        return DENY(res, HUB_AUTH_DENY_MALFORMED, HUB_E_UNAUTHORIZED, "malformed SAS token: %s",
                    inner.msg);
    res->expiry = tok->se;
    return 0;
}

static int check_cfg(const struct hub_auth_verify_cfg *cfg, int need_hosts, int64_t now,
                     struct hub_err *err)
{
    if (cfg == NULL)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "no verifier configuration");
    if (need_hosts && (cfg->hosts == NULL || cfg->host_count == 0))
        return HUB_ERR(err, HUB_E_INVALID_ARG, "no accepted host names configured");
    for (size_t i = 0; need_hosts && i < cfg->host_count; i++)
        if (cfg->hosts[i] == NULL)
            return HUB_ERR(err, HUB_E_INVALID_ARG, "accepted host %zu is NULL", i);
    if (cfg->max_ttl_s < 0 || now < 0)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "negative time");
    return 0;
}

static int id_ok(const char *id, int optional)
{
    if (id == NULL || id[0] == '\0')
        return optional;
    return strlen(id) <= HUB_AUTH_ID_MAX;
}

static void result_init(struct hub_auth_result *res)
{
    res->deny = HUB_AUTH_DENY_NONE;
    res->policy = NULL;
    res->key_slot = 0;
    res->expiry = 0;
}

int hub_auth_device_verify(const struct hub_auth_verify_cfg *cfg,
                           const struct hub_auth_device_req *req, const char *token,
                           size_t token_len, struct hub_auth_result *res, struct hub_err *err)
{
    if (res == NULL || req == NULL)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "NULL request or result");
    result_init(res);
    int rc = check_cfg(cfg, 1, req->now, err);
    if (rc != 0)
        return rc;
    if (!id_ok(req->device_id, 0) || !id_ok(req->module_id, 1))
        return HUB_ERR(err, HUB_E_INVALID_ARG, "device/module id empty or over %d bytes",
                       HUB_AUTH_ID_MAX);
    int is_module = req->module_id != NULL && req->module_id[0] != '\0';

    struct hub_auth_sas tok;
    rc = parse_for_decision(token, token_len, &tok, res, err);
    if (rc != 0)
        return rc;

    struct hub_auth_keys keys = req->keys;
    const struct hub_auth_policy *policy = NULL;
    if (tok.has_skn) {
        if (req->policies != NULL)
            policy = hub_auth_policy_set_find0(req->policies, tok.skn);
        if (policy == NULL)
            return DENY(res, HUB_AUTH_DENY_UNKNOWN_POLICY, HUB_E_UNAUTHORIZED,
                        "unknown shared access policy '%s'", tok.skn);
        res->policy = policy;
        keys.primary = policy->primary_key;
        keys.secondary = policy->secondary_key;
    } else if (!keys_present(&keys)) {
        return DENY(res, HUB_AUTH_DENY_NO_KEY, HUB_E_UNAUTHORIZED, "%s '%s' has no symmetric key",
                    is_module ? "module" : "device", is_module ? req->module_id : req->device_id);
    }

    char owner[2 * HUB_AUTH_ID_MAX + 16];
    if (policy != NULL)
        snprintf(owner, sizeof(owner), "policy '%s'", policy->name);
    else if (is_module)
        snprintf(owner, sizeof(owner), "module '%s/%s'", req->device_id, req->module_id);
    else
        snprintf(owner, sizeof(owner), "device '%s'", req->device_id);
    rc = check_signature(&tok, &keys, owner, res, err);
    if (rc != 0)
        return rc;
    rc = check_expiry(cfg, &tok, req->now, res, err);
    if (rc != 0)
        return rc;

    char target[2 * HUB_AUTH_ID_MAX + 32];
    if (is_module)
        snprintf(target, sizeof(target), "/devices/%s/modules/%s", req->device_id, req->module_id);
    else
        snprintf(target, sizeof(target), "/devices/%s", req->device_id);
    rc = check_scope(cfg, &tok, target, policy == NULL, res, err);
    if (rc != 0)
        return rc;

    if (policy != NULL && (policy->perms & HUB_AUTH_PERM_DEVICE_CONNECT) == 0)
        return DENY(res, HUB_AUTH_DENY_NO_PERMISSION, HUB_E_FORBIDDEN,
                    "policy '%s' lacks DeviceConnect", policy->name);
    res->deny = HUB_AUTH_DENY_NONE;
    return 0;
}

int hub_auth_service_authorize(const struct hub_auth_verify_cfg *cfg,
                               const struct hub_auth_service_req *req, const char *token,
                               size_t token_len, struct hub_auth_result *res, struct hub_err *err)
{
    if (res == NULL || req == NULL)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "NULL request or result");
    result_init(res);
    int rc = check_cfg(cfg, 1, req->now, err);
    if (rc != 0)
        return rc;
    if (req->resource == NULL || req->resource[0] != '/' || strchr(req->resource, '?') != NULL)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "resource must be a path starting with '/'");
    if (req->perms == 0 || (req->perms & ~HUB_AUTH_PERM_KNOWN) != 0)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "required permissions 0x%x invalid", req->perms);

    struct hub_auth_sas tok;
    rc = parse_for_decision(token, token_len, &tok, res, err);
    if (rc != 0)
        return rc;
    if (!tok.has_skn)
        return DENY(res, HUB_AUTH_DENY_UNKNOWN_POLICY, HUB_E_UNAUTHORIZED,
                    "token names no shared access policy (skn): device tokens cannot call "
                    "service APIs");
    const struct hub_auth_policy *policy =
        req->policies != NULL ? hub_auth_policy_set_find0(req->policies, tok.skn) : NULL;
    if (policy == NULL)
        return DENY(res, HUB_AUTH_DENY_UNKNOWN_POLICY, HUB_E_UNAUTHORIZED,
                    "unknown shared access policy '%s'", tok.skn);
    res->policy = policy;

    struct hub_auth_keys keys = {policy->primary_key, policy->secondary_key};
    char owner[HUB_AUTH_NAME_MAX + 16];
    snprintf(owner, sizeof(owner), "policy '%s'", policy->name);
    rc = check_signature(&tok, &keys, owner, res, err);
    if (rc != 0)
        return rc;
    rc = check_expiry(cfg, &tok, req->now, res, err);
    if (rc != 0)
        return rc;
    rc = check_scope(cfg, &tok, req->resource, 0, res, err);
    if (rc != 0)
        return rc;
    struct hub_err inner = {0};
    if (hub_auth_policy_check(policy, req->perms, &inner) != 0)
        return DENY(res, HUB_AUTH_DENY_NO_PERMISSION, HUB_E_FORBIDDEN, "%s", inner.msg);
    res->deny = HUB_AUTH_DENY_NONE;
    return 0;
}

int hub_auth_dps_verify(const struct hub_auth_verify_cfg *cfg, const struct hub_auth_dps_req *req,
                        const char *token, size_t token_len, struct hub_auth_result *res,
                        struct hub_err *err)
{
    if (res == NULL || req == NULL)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "NULL request or result");
    result_init(res);
    int rc = check_cfg(cfg, 0, req->now, err);
    if (rc != 0)
        return rc;
    if (req->id_scope == NULL || req->id_scope[0] == '\0' || !id_ok(req->registration_id, 0))
        return HUB_ERR(err, HUB_E_INVALID_ARG, "ID scope or registration id missing or too long");

    struct hub_auth_sas tok;
    rc = parse_for_decision(token, token_len, &tok, res, err);
    if (rc != 0)
        return rc;
    if (!tok.has_skn || strcmp(tok.skn, DPS_SKN) != 0)
        return DENY(res, HUB_AUTH_DENY_UNKNOWN_POLICY, HUB_E_UNAUTHORIZED,
                    "DPS tokens need skn=%s, got '%s'", DPS_SKN, tok.skn);
    if (!keys_present(&req->keys))
        return DENY(res, HUB_AUTH_DENY_NO_KEY, HUB_E_UNAUTHORIZED,
                    "enrollment '%s' has no symmetric key", req->registration_id);
    rc = check_signature(&tok, &req->keys, "the enrollment", res, err);
    if (rc != 0)
        return rc;
    rc = check_expiry(cfg, &tok, req->now, res, err);
    if (rc != 0)
        return rc;

    size_t slen = 0, rlen = 0;
    const char *rest = NULL;
    split_sr(&tok, &slen, &rest, &rlen);
    static const char REG[] = "/registrations/";
    size_t reg_len = sizeof(REG) - 1;
    size_t id_len = strlen(req->registration_id);
    int ok = ascii_case_equal(tok.sr, slen, req->id_scope, strlen(req->id_scope)) &&
             rlen == reg_len + id_len && memcmp(rest, REG, reg_len) == 0 &&
             memcmp(rest + reg_len, req->registration_id, id_len) == 0;
    if (!ok)
        return DENY(res, HUB_AUTH_DENY_WRONG_SCOPE, HUB_E_UNAUTHORIZED,
                    "token scope '%.128s' is not '%s/registrations/%s'", tok.sr, req->id_scope,
                    req->registration_id);
    res->deny = HUB_AUTH_DENY_NONE;
    return 0;
}
