/*
 * SAS tokens: parse, build, and the device / service / DPS decisions.
 *
 * Tokens are built here independently of src/auth: the signature is computed
 * with OpenSSL's HMAC() and EVP_EncodeBlock, and percent-encoding by a local
 * helper, so a shared mistake in the layer's own signer cannot make a test
 * pass. Known-answer signatures were computed with Python's hmac module.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "auth/auth.h"

/* bytes 0..31 */
#define KEY_A "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
#define KEY_B "HyYtNDtCSVBXXmVsc3qBiI+WnaSrsrnAx87V3OPq8fg="
#define KEY_C "PkVMU1phaG92fYSLkpmgp661vMPK0djf5u30+wIJEBc="
#define KEY_D "XWRrcnmAh46VnKOqsbi/xs3U2+Lp8Pf+BQwTGiEoLzY="
#define KEY_E "fIOKkZifpq20u8LJ0Nfe5ezz+gEIDxYdJCsyOUBHTlU="
#define KEY_F "m6KpsLe+xczT2uHo7/b9BAsSGSAnLjU8Q0pRWF9mbXQ="
#define KEY_G "usHIz9bd5Ovy+QAHDhUcIyoxOD9GTVRbYmlwd36FjJM="
#define KEY_H "+P8GDRQbIikwNz5FTFNaYWhvdn2Ei5KZoKeutbzDytE="
#define KEY_X "2eDn7vX8AwoRGB8mLTQ7QklQV15lbHN6gYiPlp2kq7I=" /* belongs to no one */

/* Known answers (Python hmac/base64/urllib) for KEY_A, se=1795722155. */
#define KAT_SE "1795722155"
#define KAT_DEVICE_SIG                                                                             \
    "4Ca1lvQ6fGNsd3T7TSUaxdgj%2B31S5oppkGNrcSnw3sE%3D" /* sr=localhost%2Fdevices%2Fdev1 */
#define KAT_SERVICE_SIG "N3NPDWhC9JW2O6svLWHEQnkGwMXevazmmLDfNse8l8M%3D"     /* sr=localhost */
#define KAT_DPS_SIG     "01D3uUNNqWudEu9zIsPoUY%2BBylox5iA83n%2BPxcBL8v0%3D" /* sr=0ne.../dev1 */
#define KAT_DPS_DERIVED "jgNHkpsSyy5knqEYC62lGiPQlRRClkZht9bpLre3fa0="       /* KEY_A, "dev1" */

#define NOW 1700000000LL

/* ---- independent token construction ------------------------------------- */

static size_t t_b64dec(const char *b64, unsigned char *out)
{
    size_t len = strlen(b64);
    int n = EVP_DecodeBlock(out, (const unsigned char *)b64, (int)len);
    assert_true(n >= 0);
    size_t pad = (len >= 1 && b64[len - 1] == '=') + (len >= 2 && b64[len - 2] == '=');
    return (size_t)n - pad;
}

/* base64(HMAC-SHA256(b64dec(key), msg)) */
static void t_mac(const char *key_b64, const char *msg, char out[64])
{
    unsigned char key[128], mac[32];
    unsigned int maclen = 0;
    size_t keylen = t_b64dec(key_b64, key);
    assert_non_null(HMAC(EVP_sha256(), key, (int)keylen, (const unsigned char *)msg, strlen(msg),
                         mac, &maclen));
    assert_int_equal(maclen, 32);
    EVP_EncodeBlock((unsigned char *)out, mac, 32);
}

static void t_sign(const char *key_b64, const char *sr_literal, const char *se, char out[64])
{
    char msg[2048];
    snprintf(msg, sizeof(msg), "%s\n%s", sr_literal, se);
    t_mac(key_b64, msg, out);
}

/* Percent-encodes everything but alphanumerics; lower selects hex case. */
static void t_pct(const char *in, char *out, int lower)
{
    const char *digits = lower ? "0123456789abcdef" : "0123456789ABCDEF";
    for (; *in; in++) {
        unsigned char c = (unsigned char)*in;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
            *out++ = (char)c;
        } else {
            *out++ = '%';
            *out++ = digits[c >> 4];
            *out++ = digits[c & 15];
        }
    }
    *out = '\0';
}

/* ---- parse ------------------------------------------------------------- */

struct parse_case {
    const char *name;
    const char *token;
    int rc;
    /* on success */
    const char *sr_raw, *sr, *sig, *skn, *se_raw;
    int64_t se;
    const char *msg_part; /* substring of err.msg on failure */
};

static void test_parse_table(void **state)
{
    (void)state;
    static const struct parse_case cases[] = {
        {"node device form",
         "SharedAccessSignature sr=localhost%2Fdevices%2Fdev1&sig=abc%2B%2F%3D&se=1795722155", 0,
         "localhost%2Fdevices%2Fdev1", "localhost/devices/dev1", "abc+/=", NULL, "1795722155",
         1795722155LL, NULL},
        {"node service form (raw sr, skn)",
         "SharedAccessSignature sr=localhost&sig=%2FCEQ%3D&skn=iothubowner&se=1795722155", 0,
         "localhost", "localhost", "/CEQ=", "iothubowner", "1795722155", 1795722155LL, NULL},
        {"dps form",
         "SharedAccessSignature sr=0ne00000001/registrations/dev1&sig=x&skn=registration&se=5", 0,
         "0ne00000001/registrations/dev1", "0ne00000001/registrations/dev1", "x", "registration",
         "5", 5, NULL},
        {"any order", "SharedAccessSignature se=7&skn=p&sig=s&sr=h", 0, "h", "h", "s", "p", "7", 7,
         NULL},
        {"lowercase escapes, '+' kept", "SharedAccessSignature sr=h%2fd&sig=a+b%2b&se=1", 0,
         "h%2fd", "h/d", "a+b+", NULL, "1", 1, NULL},
        {"unencoded sig with '=' padding", "SharedAccessSignature sr=h&sig=ab==&se=1", 0, "h", "h",
         "ab==", NULL, "1", 1, NULL},
        {"unknown field ignored", "SharedAccessSignature sr=h&foo=bar&sig=s&se=1", 0, "h", "h", "s",
         NULL, "1", 1, NULL},
        {"leading zeros kept as written", "SharedAccessSignature sr=h&sig=s&se=0042", 0, "h", "h",
         "s", NULL, "0042", 42, NULL},
        {"max se", "SharedAccessSignature sr=h&sig=s&se=9223372036854775807", 0, "h", "h", "s",
         NULL, "9223372036854775807", INT64_MAX, NULL},

        {"no prefix", "sr=h&sig=s&se=1", HUB_E_PARSE, .msg_part = "SharedAccessSignature"},
        {"prefix case", "sharedaccesssignature sr=h&sig=s&se=1", HUB_E_PARSE,
         .msg_part = "does not start"},
        {"prefix without space", "SharedAccessSignaturesr=h&sig=s&se=1", HUB_E_PARSE,
         .msg_part = "does not start"},
        {"prefix only", "SharedAccessSignature ", HUB_E_PARSE, .msg_part = "no fields"},
        {"two spaces", "SharedAccessSignature  sr=h&sig=s&se=1", HUB_E_PARSE,
         .msg_part = "offset 22"},
        {"tab inside", "SharedAccessSignature sr=h&sig=s\t&se=1", HUB_E_PARSE, .msg_part = "0x09"},
        {"trailing &", "SharedAccessSignature sr=h&sig=s&se=1&", HUB_E_PARSE,
         .msg_part = "empty field"},
        {"double &", "SharedAccessSignature sr=h&&sig=s&se=1", HUB_E_PARSE,
         .msg_part = "empty field at offset 27"},
        {"field without =", "SharedAccessSignature sr=h&sig&se=1", HUB_E_PARSE,
         .msg_part = "no '='"},
        {"empty name", "SharedAccessSignature sr=h&=x&sig=s&se=1", HUB_E_PARSE,
         .msg_part = "empty name"},
        {"duplicate sr", "SharedAccessSignature sr=h&sig=s&sr=h&se=1", HUB_E_PARSE,
         .msg_part = "duplicate field 'sr'"},
        {"duplicate sig", "SharedAccessSignature sr=h&sig=s&sig=t&se=1", HUB_E_PARSE,
         .msg_part = "duplicate field 'sig'"},
        {"duplicate se", "SharedAccessSignature sr=h&se=1&sig=s&se=2", HUB_E_PARSE,
         .msg_part = "duplicate field 'se'"},
        {"duplicate skn", "SharedAccessSignature sr=h&skn=a&sig=s&skn=b&se=1", HUB_E_PARSE,
         .msg_part = "duplicate field 'skn'"},
        {"missing sr", "SharedAccessSignature sig=s&se=1", HUB_E_PARSE, .msg_part = "no sr"},
        {"missing sig", "SharedAccessSignature sr=h&se=1", HUB_E_PARSE, .msg_part = "no sig"},
        {"missing se", "SharedAccessSignature sr=h&sig=s", HUB_E_PARSE, .msg_part = "no se"},
        {"SR is not sr", "SharedAccessSignature SR=h&sig=s&se=1", HUB_E_PARSE, .msg_part = "no sr"},
        {"empty sr", "SharedAccessSignature sr=&sig=s&se=1", HUB_E_PARSE, .msg_part = "empty sr"},
        {"empty skn", "SharedAccessSignature sr=h&sig=s&se=1&skn=", HUB_E_PARSE,
         .msg_part = "empty skn"},
        {"se not numeric", "SharedAccessSignature sr=h&sig=s&se=12a", HUB_E_PARSE,
         .msg_part = "not a decimal"},
        {"se negative", "SharedAccessSignature sr=h&sig=s&se=-1", HUB_E_PARSE,
         .msg_part = "not a decimal"},
        {"se fractional", "SharedAccessSignature sr=h&sig=s&se=1.5", HUB_E_PARSE,
         .msg_part = "not a decimal"},
        {"se encoded", "SharedAccessSignature sr=h&sig=s&se=%31", HUB_E_PARSE,
         .msg_part = "not a decimal"},
        {"se 20 digits", "SharedAccessSignature sr=h&sig=s&se=12345678901234567890", HUB_E_PARSE,
         .msg_part = "digits"},
        {"se above INT64_MAX", "SharedAccessSignature sr=h&sig=s&se=9223372036854775808",
         HUB_E_PARSE, .msg_part = "out of range"},
        {"sig bad escape %G1", "SharedAccessSignature sr=h&sig=ab%G1&se=1", HUB_E_PARSE,
         .msg_part = "bad percent-escape in sig"},
        {"sig truncated escape", "SharedAccessSignature sr=h&sig=ab%4&se=1", HUB_E_PARSE,
         .msg_part = "bad percent-escape in sig"},
        {"sig lone % at end", "SharedAccessSignature sr=h&se=1&sig=ab%", HUB_E_PARSE,
         .msg_part = "bad percent-escape in sig"},
        {"sr with %00", "SharedAccessSignature sr=h%00x&sig=s&se=1", HUB_E_PARSE,
         .msg_part = "%00 in sr"},
        {"skn bad escape", "SharedAccessSignature sr=h&sig=s&se=1&skn=%zz", HUB_E_PARSE,
         .msg_part = "skn"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct parse_case *c = &cases[i];
        struct hub_auth_sas tok;
        struct hub_err err = {0};
        int rc = hub_auth_sas_parse(c->token, strlen(c->token), &tok, &err);
        if (rc != c->rc)
            fail_msg("case '%s': rc %d want %d (%s)", c->name, rc, c->rc, err.msg);
        if (rc != 0) {
            if (c->msg_part != NULL && strstr(err.msg, c->msg_part) == NULL)
                fail_msg("case '%s': message '%s' lacks '%s'", c->name, err.msg, c->msg_part);
            continue;
        }
        assert_string_equal(tok.sr_raw, c->sr_raw);
        assert_int_equal(tok.sr_raw_len, strlen(c->sr_raw));
        assert_string_equal(tok.sr, c->sr);
        assert_int_equal(tok.sr_len, strlen(c->sr));
        assert_string_equal(tok.sig, c->sig);
        assert_int_equal(tok.sig_len, strlen(c->sig));
        assert_string_equal(tok.se_raw, c->se_raw);
        assert_true(tok.se == c->se);
        assert_int_equal(tok.has_skn, c->skn != NULL);
        assert_string_equal(tok.skn, c->skn != NULL ? c->skn : "");
    }
}

static void test_parse_limits(void **state)
{
    (void)state;
    static char buf[HUB_AUTH_TOKEN_MAX + 64];
    struct hub_auth_sas tok;
    struct hub_err err = {0};

    /* Giant token: refused on length alone. */
    memset(buf, 'a', sizeof(buf));
    memcpy(buf, "SharedAccessSignature sr=", 25);
    assert_int_equal(hub_auth_sas_parse(buf, HUB_AUTH_TOKEN_MAX + 1, &tok, &err), HUB_E_TOO_LARGE);

    /* sr of exactly the limit is accepted, one more byte is not. */
    for (int extra = 0; extra <= 1; extra++) {
        int n = snprintf(buf, sizeof(buf), "SharedAccessSignature sig=s&se=1&sr=");
        memset(buf + n, 'h', (size_t)(HUB_AUTH_SR_MAX + extra));
        size_t len = (size_t)n + HUB_AUTH_SR_MAX + (size_t)extra;
        int rc = hub_auth_sas_parse(buf, len, &tok, &err);
        assert_int_equal(rc, extra ? HUB_E_TOO_LARGE : 0);
    }
    /* A sig that decodes past HUB_AUTH_SIG_MAX. */
    int n = snprintf(buf, sizeof(buf), "SharedAccessSignature sr=h&se=1&sig=");
    memset(buf + n, 'Q', HUB_AUTH_SIG_MAX + 1);
    assert_int_equal(hub_auth_sas_parse(buf, (size_t)n + HUB_AUTH_SIG_MAX + 1, &tok, &err),
                     HUB_E_TOO_LARGE);
    assert_non_null(strstr(err.msg, "sig"));

    /* len is honoured: the bytes after it are not part of the token. */
    const char *t = "SharedAccessSignature sr=h&sig=s&se=12&junk";
    assert_int_equal(hub_auth_sas_parse(t, strlen(t) - 5, &tok, &err), 0);
    assert_string_equal(tok.se_raw, "12");
    /* An embedded NUL is a control byte. */
    const char nul[] = "SharedAccessSignature sr=h&sig=s\0&se=1";
    assert_int_equal(hub_auth_sas_parse(nul, sizeof(nul) - 1, &tok, &err), HUB_E_PARSE);
    assert_int_equal(hub_auth_sas_parse(NULL, 0, &tok, &err), HUB_E_INVALID_ARG);
}

/* ---- device decisions --------------------------------------------------- */

static const char *const HOSTS[] = {"localhost", "Hub.Example"};

static void policy_fixture(struct hub_auth_policy_set *set)
{
    memset(set, 0, sizeof(*set));
    assert_int_equal(
        hub_auth_policy_set_add(set, "iothubowner", HUB_AUTH_PERM_ALL, KEY_C, KEY_D, NULL), 0);
    assert_int_equal(
        hub_auth_policy_set_add(set, "device", HUB_AUTH_PERM_DEVICE_CONNECT, KEY_E, KEY_F, NULL),
        0);
    assert_int_equal(hub_auth_policy_set_add(set, "registryRead", HUB_AUTH_PERM_REGISTRY_READ,
                                             KEY_G, KEY_H, NULL),
                     0);
}

enum order { NODE_ORDER, SE_FIRST, SKN_FIRST };

struct tok_spec {
    const char *sr;      /* literal sr in the token */
    const char *sign_sr; /* what the signature covers; NULL = sr */
    const char *key;     /* signing key */
    int64_t se_delta;    /* se = NOW + se_delta */
    const char *skn;     /* NULL = none; literal text */
    enum order order;
    int sig_mode; /* 0 upper %XX, 1 lower %xx, 2 unencoded, 3 append "%G" */
};

/* Token specs with defaults for the trailing fields (no skn, Node order,
 * uppercase escapes); gcc's -Wmissing-field-initializers wants them spelled out. */
// clang-format off
#define TOK4(sr, sign, key, d)               {sr, sign, key, d, NULL, NODE_ORDER, 0}
#define TOK5(sr, sign, key, d, skn)          {sr, sign, key, d, skn, NODE_ORDER, 0}
#define TOK6(sr, sign, key, d, skn, ord)     {sr, sign, key, d, skn, ord, 0}
#define TOK7(sr, sign, key, d, skn, ord, sm) {sr, sign, key, d, skn, ord, sm}
#define TOK_PICK(a, b, c, d, e, f, g, name, ...) name
#define TOK(...) TOK_PICK(__VA_ARGS__, TOK7, TOK6, TOK5, TOK4, _3, _2, _1)(__VA_ARGS__)
// clang-format on

static void make_token(const struct tok_spec *s, char *out, size_t cap)
{
    char se[32], mac[64], sig[200];
    snprintf(se, sizeof(se), "%lld", (long long)(NOW + s->se_delta));
    t_sign(s->key, s->sign_sr != NULL ? s->sign_sr : s->sr, se, mac);
    if (s->sig_mode == 2)
        snprintf(sig, sizeof(sig), "%s", mac);
    else
        t_pct(mac, sig, s->sig_mode == 1);
    if (s->sig_mode == 3)
        strcat(sig, "%G");
    char skn[100] = "";
    if (s->skn != NULL)
        snprintf(skn, sizeof(skn), "skn=%s", s->skn);
    switch (s->order) {
    case NODE_ORDER:
        snprintf(out, cap, "SharedAccessSignature sr=%s&sig=%s%s%s&se=%s", s->sr, sig,
                 s->skn ? "&" : "", skn, se);
        break;
    case SE_FIRST:
        snprintf(out, cap, "SharedAccessSignature se=%s&sr=%s%s%s&sig=%s", se, s->sr,
                 s->skn ? "&" : "", skn, sig);
        break;
    case SKN_FIRST:
        snprintf(out, cap, "SharedAccessSignature %s%ssig=%s&se=%s&sr=%s", skn, s->skn ? "&" : "",
                 sig, se, s->sr);
        break;
    }
}

#define DEV_SR "localhost%2Fdevices%2Fdev1"
#define MOD_SR "localhost%2Fdevices%2Fdev1%2Fmodules%2Fm1"

struct dev_case {
    const char *name;
    struct tok_spec tok;
    const char *module; /* request's module id */
    int no_keys;        /* the identity has no symmetric keys */
    int64_t max_ttl_s;
    int rc;
    enum hub_auth_deny deny;
    int slot;
    const char *policy; /* expected res.policy name */
};

static void test_device_verify_table(void **state)
{
    (void)state;
    static const struct dev_case cases[] = {
        {"primary key, node form", TOK(DEV_SR, NULL, KEY_A, 3600), NULL, 0, 0, 0,
         HUB_AUTH_DENY_NONE, 1, NULL},
        {"secondary key", TOK(DEV_SR, NULL, KEY_B, 3600), NULL, 0, 0, 0, HUB_AUTH_DENY_NONE, 2,
         NULL},
        {"wrong key", TOK(DEV_SR, NULL, KEY_X, 3600), NULL, 0, 0, HUB_E_UNAUTHORIZED,
         HUB_AUTH_DENY_BAD_SIGNATURE, 0, NULL},
        {"signed over encoded sr, sent decoded sr",
         TOK("localhost/devices/dev1", DEV_SR, KEY_A, 3600), NULL, 0, 0, HUB_E_UNAUTHORIZED,
         HUB_AUTH_DENY_BAD_SIGNATURE, 0, NULL},
        {"signed over decoded sr, sent encoded sr",
         TOK(DEV_SR, "localhost/devices/dev1", KEY_A, 3600), NULL, 0, 0, HUB_E_UNAUTHORIZED,
         HUB_AUTH_DENY_BAD_SIGNATURE, 0, NULL},
        {"raw sr signed raw (DPS/service style)", TOK("localhost/devices/dev1", NULL, KEY_A, 3600),
         NULL, 0, 0, 0, HUB_AUTH_DENY_NONE, 1, NULL},
        {"lowercase escapes signed as written",
         TOK("localhost%2fdevices%2fdev1", NULL, KEY_A, 3600, NULL, NODE_ORDER, 1), NULL, 0, 0, 0,
         HUB_AUTH_DENY_NONE, 1, NULL},
        {"tampered se", TOK(DEV_SR, NULL, KEY_A, 3600), NULL, 0, 0, HUB_E_UNAUTHORIZED,
         HUB_AUTH_DENY_BAD_SIGNATURE, 0, NULL}, /* se rewritten below */
        {"expired one second ago", TOK(DEV_SR, NULL, KEY_A, -1), NULL, 0, 0, HUB_E_UNAUTHORIZED,
         HUB_AUTH_DENY_EXPIRED, 1, NULL},
        {"expires right now", TOK(DEV_SR, NULL, KEY_A, 0), NULL, 0, 0, HUB_E_UNAUTHORIZED,
         HUB_AUTH_DENY_EXPIRED, 1, NULL},
        {"valid for one more second", TOK(DEV_SR, NULL, KEY_A, 1), NULL, 0, 0, 0,
         HUB_AUTH_DENY_NONE, 1, NULL},
        {"far expiry accepted by default", TOK(DEV_SR, NULL, KEY_A, 10LL * 365 * 86400), NULL, 0, 0,
         0, HUB_AUTH_DENY_NONE, 1, NULL},
        {"far expiry refused with max_ttl", TOK(DEV_SR, NULL, KEY_A, 7200), NULL, 0, 3600,
         HUB_E_UNAUTHORIZED, HUB_AUTH_DENY_TOO_LONG_LIVED, 1, NULL},
        {"expiry at max_ttl accepted", TOK(DEV_SR, NULL, KEY_A, 3600), NULL, 0, 3600, 0,
         HUB_AUTH_DENY_NONE, 1, NULL},
        {"se first", TOK(DEV_SR, NULL, KEY_A, 3600, NULL, SE_FIRST), NULL, 0, 0, 0,
         HUB_AUTH_DENY_NONE, 1, NULL},
        {"unencoded sig", TOK(DEV_SR, NULL, KEY_A, 3600, NULL, NODE_ORDER, 2), NULL, 0, 0, 0,
         HUB_AUTH_DENY_NONE, 1, NULL},
        {"sig with bad escape", TOK(DEV_SR, NULL, KEY_A, 3600, NULL, NODE_ORDER, 3), NULL, 0, 0,
         HUB_E_UNAUTHORIZED, HUB_AUTH_DENY_MALFORMED, 0, NULL},
        {"host case-insensitive", TOK("LOCALHOST%2Fdevices%2Fdev1", NULL, KEY_A, 3600), NULL, 0, 0,
         0, HUB_AUTH_DENY_NONE, 1, NULL},
        {"second accepted host", TOK("hub.example%2Fdevices%2Fdev1", NULL, KEY_A, 3600), NULL, 0, 0,
         0, HUB_AUTH_DENY_NONE, 1, NULL},
        {"wrong host", TOK("evil.example%2Fdevices%2Fdev1", NULL, KEY_A, 3600), NULL, 0, 0,
         HUB_E_UNAUTHORIZED, HUB_AUTH_DENY_WRONG_SCOPE, 1, NULL},
        {"host with port not configured",
         TOK("localhost%3A8883%2Fdevices%2Fdev1", NULL, KEY_A, 3600), NULL, 0, 0,
         HUB_E_UNAUTHORIZED, HUB_AUTH_DENY_WRONG_SCOPE, 1, NULL},
        {"wrong device", TOK("localhost%2Fdevices%2Fdev2", NULL, KEY_A, 3600), NULL, 0, 0,
         HUB_E_UNAUTHORIZED, HUB_AUTH_DENY_WRONG_SCOPE, 1, NULL},
        {"device id is case-sensitive", TOK("localhost%2Fdevices%2FDEV1", NULL, KEY_A, 3600), NULL,
         0, 0, HUB_E_UNAUTHORIZED, HUB_AUTH_DENY_WRONG_SCOPE, 1, NULL},
        {"device key needs exact sr, not a prefix", TOK("localhost%2Fdevices", NULL, KEY_A, 3600),
         NULL, 0, 0, HUB_E_UNAUTHORIZED, HUB_AUTH_DENY_WRONG_SCOPE, 1, NULL},
        {"device key: bare host refused", TOK("localhost", NULL, KEY_A, 3600), NULL, 0, 0,
         HUB_E_UNAUTHORIZED, HUB_AUTH_DENY_WRONG_SCOPE, 1, NULL},
        {"trailing slash refused", TOK(DEV_SR "%2F", NULL, KEY_A, 3600), NULL, 0, 0,
         HUB_E_UNAUTHORIZED, HUB_AUTH_DENY_WRONG_SCOPE, 1, NULL},
        {"module token", TOK(MOD_SR, NULL, KEY_A, 3600), "m1", 0, 0, 0, HUB_AUTH_DENY_NONE, 1,
         NULL},
        {"device token for a module", TOK(DEV_SR, NULL, KEY_A, 3600), "m1", 0, 0,
         HUB_E_UNAUTHORIZED, HUB_AUTH_DENY_WRONG_SCOPE, 1, NULL},
        {"module token for the device", TOK(MOD_SR, NULL, KEY_A, 3600), NULL, 0, 0,
         HUB_E_UNAUTHORIZED, HUB_AUTH_DENY_WRONG_SCOPE, 1, NULL},
        {"identity without keys", TOK(DEV_SR, NULL, KEY_A, 3600), NULL, 1, 0, HUB_E_UNAUTHORIZED,
         HUB_AUTH_DENY_NO_KEY, 0, NULL},
        {"unknown skn", TOK(DEV_SR, NULL, KEY_A, 3600, "nosuch"), NULL, 0, 0, HUB_E_UNAUTHORIZED,
         HUB_AUTH_DENY_UNKNOWN_POLICY, 0, NULL},
        {"skn is case-sensitive", TOK(DEV_SR, NULL, KEY_E, 3600, "Device"), NULL, 0, 0,
         HUB_E_UNAUTHORIZED, HUB_AUTH_DENY_UNKNOWN_POLICY, 0, NULL},
        {"DeviceConnect policy, exact sr", TOK(DEV_SR, NULL, KEY_E, 3600, "device"), NULL, 0, 0, 0,
         HUB_AUTH_DENY_NONE, 1, "device"},
        {"DeviceConnect policy secondary, bare host", TOK("localhost", NULL, KEY_F, 3600, "device"),
         NULL, 0, 0, 0, HUB_AUTH_DENY_NONE, 2, "device"},
        {"DeviceConnect policy, /devices prefix, skn first",
         TOK("localhost%2Fdevices", NULL, KEY_E, 3600, "device", SKN_FIRST), NULL, 0, 0, 0,
         HUB_AUTH_DENY_NONE, 1, "device"},
        {"policy prefix must end on a segment",
         TOK("localhost%2Fdevices%2Fdev", NULL, KEY_E, 3600, "device"), NULL, 0, 0,
         HUB_E_UNAUTHORIZED, HUB_AUTH_DENY_WRONG_SCOPE, 1, "device"},
        {"policy sr longer than the resource", TOK(MOD_SR, NULL, KEY_E, 3600, "device"), NULL, 0, 0,
         HUB_E_UNAUTHORIZED, HUB_AUTH_DENY_WRONG_SCOPE, 1, "device"},
        {"policy prefix covers a module", TOK(DEV_SR, NULL, KEY_E, 3600, "device"), "m1", 0, 0, 0,
         HUB_AUTH_DENY_NONE, 1, "device"},
        {"policy token signed with the device key", TOK(DEV_SR, NULL, KEY_A, 3600, "device"), NULL,
         0, 0, HUB_E_UNAUTHORIZED, HUB_AUTH_DENY_BAD_SIGNATURE, 0, "device"},
        {"policy without DeviceConnect", TOK(DEV_SR, NULL, KEY_G, 3600, "registryRead"), NULL, 0, 0,
         HUB_E_FORBIDDEN, HUB_AUTH_DENY_NO_PERMISSION, 1, "registryRead"},
        {"forged token for a weak policy is 401 not 403",
         TOK(DEV_SR, NULL, KEY_X, 3600, "registryRead"), NULL, 0, 0, HUB_E_UNAUTHORIZED,
         HUB_AUTH_DENY_BAD_SIGNATURE, 0, "registryRead"},
        {"expired policy token is 401 even without the right",
         TOK(DEV_SR, NULL, KEY_G, -10, "registryRead"), NULL, 0, 0, HUB_E_UNAUTHORIZED,
         HUB_AUTH_DENY_EXPIRED, 1, "registryRead"},
    };
    struct hub_auth_policy_set policies;
    policy_fixture(&policies);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct dev_case *c = &cases[i];
        char token[HUB_AUTH_TOKEN_MAX + 1];
        make_token(&c->tok, token, sizeof(token));
        if (strcmp(c->name, "tampered se") == 0) {
            char *se = strstr(token, "&se=");
            assert_non_null(se);
            se[4] = (char)(se[4] == '9' ? '8' : se[4] + 1);
        }
        struct hub_auth_verify_cfg cfg = {HOSTS, 2, c->max_ttl_s};
        struct hub_auth_device_req req = {NOW, "dev1", c->module, {KEY_A, KEY_B}, &policies};
        if (c->no_keys)
            req.keys = (struct hub_auth_keys){NULL, ""};
        struct hub_auth_result res;
        struct hub_err err = {0};
        int rc = hub_auth_device_verify(&cfg, &req, token, strlen(token), &res, &err);
        if (rc != c->rc || res.deny != c->deny)
            fail_msg("case '%s': rc %d deny %s, want %d %s (%s) token=%s", c->name, rc,
                     hub_auth_deny_name(res.deny), c->rc, hub_auth_deny_name(c->deny), err.msg,
                     token);
        if (res.key_slot != c->slot)
            fail_msg("case '%s': key slot %d want %d", c->name, res.key_slot, c->slot);
        if (c->policy == NULL)
            assert_null(res.policy);
        else if (res.policy == NULL || strcmp(res.policy->name, c->policy) != 0)
            fail_msg("case '%s': policy not reported", c->name);
        if (c->deny != HUB_AUTH_DENY_MALFORMED)
            assert_true(res.expiry == NOW + c->tok.se_delta || strcmp(c->name, "tampered se") == 0);
        if (rc != 0)
            assert_true(err.msg[0] != '\0');
    }
}

static void test_device_verify_messages_and_malformed(void **state)
{
    (void)state;
    struct hub_auth_verify_cfg cfg = {HOSTS, 2, 0};
    struct hub_auth_device_req req = {NOW, "dev1", NULL, {KEY_A, KEY_B}, NULL};
    struct hub_auth_result res;
    struct hub_err err = {0};
    char token[HUB_AUTH_TOKEN_MAX + 1];

    struct tok_spec expired = TOK(DEV_SR, NULL, KEY_A, -5);
    make_token(&expired, token, sizeof(token));
    assert_int_equal(hub_auth_device_verify(&cfg, &req, token, strlen(token), &res, &err),
                     HUB_E_UNAUTHORIZED);
    assert_non_null(strstr(err.msg, "expired"));
    assert_string_equal(hub_auth_deny_name(res.deny), "SAS_EXPIRED");

    struct tok_spec wrong_dev = TOK("localhost%2Fdevices%2Fdev2", NULL, KEY_A, 60);
    make_token(&wrong_dev, token, sizeof(token));
    assert_int_equal(hub_auth_device_verify(&cfg, &req, token, strlen(token), &res, &err),
                     HUB_E_UNAUTHORIZED);
    assert_non_null(strstr(err.msg, "/devices/dev2"));

    /* Any parse failure becomes MALFORMED / UNAUTHORIZED with the parser's words. */
    const char *bad = "SharedAccessSignature sr=a&sr=b&sig=x&se=1";
    assert_int_equal(hub_auth_device_verify(&cfg, &req, bad, strlen(bad), &res, &err),
                     HUB_E_UNAUTHORIZED);
    assert_int_equal(res.deny, HUB_AUTH_DENY_MALFORMED);
    assert_non_null(strstr(err.msg, "duplicate field 'sr'"));

    static char giant[HUB_AUTH_TOKEN_MAX * 2];
    memset(giant, 'x', sizeof(giant));
    assert_int_equal(hub_auth_device_verify(&cfg, &req, giant, sizeof(giant), &res, &err),
                     HUB_E_UNAUTHORIZED);
    assert_int_equal(res.deny, HUB_AUTH_DENY_MALFORMED);

    /* Policy token with no policy set at all. */
    struct tok_spec pol = TOK(DEV_SR, NULL, KEY_E, 60, "device");
    make_token(&pol, token, sizeof(token));
    assert_int_equal(hub_auth_device_verify(&cfg, &req, token, strlen(token), &res, &err),
                     HUB_E_UNAUTHORIZED);
    assert_int_equal(res.deny, HUB_AUTH_DENY_UNKNOWN_POLICY);

    /* Caller bugs are not authentication failures. */
    struct tok_spec ok = TOK(DEV_SR, NULL, KEY_A, 60);
    make_token(&ok, token, sizeof(token));
    struct hub_auth_verify_cfg nohosts = {NULL, 0, 0};
    assert_int_equal(hub_auth_device_verify(&nohosts, &req, token, strlen(token), &res, &err),
                     HUB_E_INVALID_ARG);
    struct hub_auth_device_req badkey = {NOW, "dev1", NULL, {"not base64!", KEY_B}, NULL};
    assert_int_equal(hub_auth_device_verify(&cfg, &badkey, token, strlen(token), &res, &err),
                     HUB_E_INVALID_ARG);
    struct hub_auth_device_req noid = {NOW, "", NULL, {KEY_A, KEY_B}, NULL};
    assert_int_equal(hub_auth_device_verify(&cfg, &noid, token, strlen(token), &res, &err),
                     HUB_E_INVALID_ARG);
    assert_int_equal(hub_auth_device_verify(&cfg, &req, token, strlen(token), NULL, &err),
                     HUB_E_INVALID_ARG);
    /* And the same token is fine with sane inputs. */
    assert_int_equal(hub_auth_device_verify(&cfg, &req, token, strlen(token), &res, &err), 0);
}

/* The captured Node shapes with known-answer signatures (Python-computed). */
static void test_known_answers(void **state)
{
    (void)state;
    struct hub_auth_verify_cfg cfg = {HOSTS, 2, 0};
    struct hub_auth_result res;
    struct hub_err err = {0};
    int64_t now = 1795722155LL - 100;

    const char *dev =
        "SharedAccessSignature sr=localhost%2Fdevices%2Fdev1&sig=" KAT_DEVICE_SIG "&se=" KAT_SE;
    struct hub_auth_device_req dreq = {now, "dev1", NULL, {KEY_X, KEY_A}, NULL};
    assert_int_equal(hub_auth_device_verify(&cfg, &dreq, dev, strlen(dev), &res, &err), 0);
    assert_int_equal(res.key_slot, 2);
    assert_true(res.expiry == 1795722155LL);

    struct hub_auth_policy_set set;
    memset(&set, 0, sizeof(set));
    assert_int_equal(
        hub_auth_policy_set_add(&set, "iothubowner", HUB_AUTH_PERM_ALL, KEY_A, KEY_B, &err), 0);
    const char *svc =
        "SharedAccessSignature sr=localhost&sig=" KAT_SERVICE_SIG "&skn=iothubowner&se=" KAT_SE;
    struct hub_auth_service_req sreq = {now, "/devices/dev1", HUB_AUTH_PERM_REGISTRY_READ, &set};
    assert_int_equal(hub_auth_service_authorize(&cfg, &sreq, svc, strlen(svc), &res, &err), 0);
    assert_int_equal(res.key_slot, 1);

    const char *dps = "SharedAccessSignature sr=0ne00000001/registrations/dev1&sig=" KAT_DPS_SIG
                      "&skn=registration&se=" KAT_SE;
    struct hub_auth_dps_req preq = {now, "0ne00000001", "dev1", {KEY_A, NULL}};
    assert_int_equal(hub_auth_dps_verify(&cfg, &preq, dps, strlen(dps), &res, &err), 0);

    char derived[HUB_AUTH_KEY_B64_MAX + 1];
    assert_int_equal(hub_auth_dps_derive_key(KEY_A, "dev1", derived, &err), 0);
    assert_string_equal(derived, KAT_DPS_DERIVED);

    /* The builder reproduces the captured device and service tokens byte for byte. */
    char built[HUB_AUTH_TOKEN_MAX + 1];
    assert_int_equal(hub_auth_sas_build("localhost/devices/dev1", HUB_AUTH_SR_ENCODED, NULL, KEY_A,
                                        1795722155LL, built, sizeof(built), &err),
                     0);
    assert_string_equal(built, dev);
    assert_int_equal(hub_auth_sas_build("localhost", HUB_AUTH_SR_RAW, "iothubowner", KEY_A,
                                        1795722155LL, built, sizeof(built), &err),
                     0);
    assert_string_equal(built, "SharedAccessSignature sr=localhost&sig=" KAT_SERVICE_SIG
                               "&skn=iothubowner&se=" KAT_SE);
    assert_int_equal(hub_auth_sas_build("0ne00000001/registrations/dev1", HUB_AUTH_SR_RAW,
                                        "registration", KEY_A, 1795722155LL, built, sizeof(built),
                                        &err),
                     0);
    assert_string_equal(built,
                        "SharedAccessSignature sr=0ne00000001/registrations/dev1&sig=" KAT_DPS_SIG
                        "&skn=registration&se=" KAT_SE);
}

/* ---- service decisions -------------------------------------------------- */

struct svc_case {
    const char *name;
    struct tok_spec tok;
    const char *resource;
    unsigned perms;
    int rc;
    enum hub_auth_deny deny;
    const char *msg_part;
};

static void test_service_authorize_table(void **state)
{
    (void)state;
    static const struct svc_case cases[] = {
        {"captured form", TOK("localhost", NULL, KEY_C, 3600, "iothubowner"), "/devices/dev1",
         HUB_AUTH_PERM_REGISTRY_WRITE, 0, HUB_AUTH_DENY_NONE, NULL},
        {"secondary key", TOK("localhost", NULL, KEY_D, 3600, "iothubowner"), "/devices/dev1",
         HUB_AUTH_PERM_REGISTRY_READ | HUB_AUTH_PERM_SERVICE_CONNECT, 0, HUB_AUTH_DENY_NONE, NULL},
        {"encoded skn", TOK("localhost", NULL, KEY_C, 3600, "iothub%6Fwner"), "/devices/dev1",
         HUB_AUTH_PERM_REGISTRY_READ, 0, HUB_AUTH_DENY_NONE, NULL},
        {"/devices prefix", TOK("localhost%2Fdevices", NULL, KEY_C, 3600, "iothubowner"),
         "/devices/dev1/modules/m1", HUB_AUTH_PERM_REGISTRY_READ, 0, HUB_AUTH_DENY_NONE, NULL},
        {"exact resource", TOK("localhost/devices/query", NULL, KEY_C, 3600, "iothubowner"),
         "/devices/query", HUB_AUTH_PERM_REGISTRY_READ, 0, HUB_AUTH_DENY_NONE, NULL},
        {"prefix of another tree", TOK("localhost%2Fdevices", NULL, KEY_C, 3600, "iothubowner"),
         "/twins/dev1", HUB_AUTH_PERM_REGISTRY_READ, HUB_E_UNAUTHORIZED, HUB_AUTH_DENY_WRONG_SCOPE,
         "/twins/dev1"},
        {"partial segment", TOK("localhost%2Fdev", NULL, KEY_C, 3600, "iothubowner"),
         "/devices/dev1", HUB_AUTH_PERM_REGISTRY_READ, HUB_E_UNAUTHORIZED,
         HUB_AUTH_DENY_WRONG_SCOPE, NULL},
        {"trailing slash", TOK("localhost%2Fdevices%2F", NULL, KEY_C, 3600, "iothubowner"),
         "/devices/dev1", HUB_AUTH_PERM_REGISTRY_READ, HUB_E_UNAUTHORIZED,
         HUB_AUTH_DENY_WRONG_SCOPE, NULL},
        {"wrong host", TOK("otherhub", NULL, KEY_C, 3600, "iothubowner"), "/devices/dev1",
         HUB_AUTH_PERM_REGISTRY_READ, HUB_E_UNAUTHORIZED, HUB_AUTH_DENY_WRONG_SCOPE, "otherhub"},
        {"host prefix is not the host", TOK("localhostx", NULL, KEY_C, 3600, "iothubowner"),
         "/devices/dev1", HUB_AUTH_PERM_REGISTRY_READ, HUB_E_UNAUTHORIZED,
         HUB_AUTH_DENY_WRONG_SCOPE, NULL},
        {"device token (no skn)", TOK("localhost", NULL, KEY_C, 3600), "/devices/dev1",
         HUB_AUTH_PERM_REGISTRY_READ, HUB_E_UNAUTHORIZED, HUB_AUTH_DENY_UNKNOWN_POLICY, "skn"},
        {"unknown skn", TOK("localhost", NULL, KEY_C, 3600, "owner"), "/devices/dev1",
         HUB_AUTH_PERM_REGISTRY_READ, HUB_E_UNAUTHORIZED, HUB_AUTH_DENY_UNKNOWN_POLICY, "owner"},
        {"wrong key for policy", TOK("localhost", NULL, KEY_E, 3600, "iothubowner"),
         "/devices/dev1", HUB_AUTH_PERM_REGISTRY_READ, HUB_E_UNAUTHORIZED,
         HUB_AUTH_DENY_BAD_SIGNATURE, "iothubowner"},
        {"expired", TOK("localhost", NULL, KEY_C, -1, "iothubowner"), "/devices/dev1",
         HUB_AUTH_PERM_REGISTRY_READ, HUB_E_UNAUTHORIZED, HUB_AUTH_DENY_EXPIRED, NULL},
        {"registryRead cannot write", TOK("localhost", NULL, KEY_G, 3600, "registryRead"),
         "/devices/dev1", HUB_AUTH_PERM_REGISTRY_WRITE, HUB_E_FORBIDDEN,
         HUB_AUTH_DENY_NO_PERMISSION, "RegistryWrite"},
        {"registryRead can read", TOK("localhost", NULL, KEY_H, 3600, "registryRead"),
         "/devices/dev1", HUB_AUTH_PERM_REGISTRY_READ, 0, HUB_AUTH_DENY_NONE, NULL},
        {"all required bits must be held", TOK("localhost", NULL, KEY_G, 3600, "registryRead"),
         "/devices/dev1", HUB_AUTH_PERM_REGISTRY_READ | HUB_AUTH_PERM_SERVICE_CONNECT,
         HUB_E_FORBIDDEN, HUB_AUTH_DENY_NO_PERMISSION, "ServiceConnect"},
        {"device policy cannot use service APIs", TOK("localhost", NULL, KEY_E, 3600, "device"),
         "/twins/dev1/methods", HUB_AUTH_PERM_SERVICE_CONNECT, HUB_E_FORBIDDEN,
         HUB_AUTH_DENY_NO_PERMISSION, NULL},
        {"forged weak-policy token is 401", TOK("localhost", NULL, KEY_A, 3600, "registryRead"),
         "/devices/dev1", HUB_AUTH_PERM_REGISTRY_WRITE, HUB_E_UNAUTHORIZED,
         HUB_AUTH_DENY_BAD_SIGNATURE, NULL},
    };
    struct hub_auth_policy_set policies;
    policy_fixture(&policies);
    struct hub_auth_verify_cfg cfg = {HOSTS, 2, 0};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct svc_case *c = &cases[i];
        char token[HUB_AUTH_TOKEN_MAX + 1];
        make_token(&c->tok, token, sizeof(token));
        struct hub_auth_service_req req = {NOW, c->resource, c->perms, &policies};
        struct hub_auth_result res;
        struct hub_err err = {0};
        int rc = hub_auth_service_authorize(&cfg, &req, token, strlen(token), &res, &err);
        if (rc != c->rc || res.deny != c->deny)
            fail_msg("case '%s': rc %d deny %s, want %d %s (%s)", c->name, rc,
                     hub_auth_deny_name(res.deny), c->rc, hub_auth_deny_name(c->deny), err.msg);
        if (c->msg_part != NULL && strstr(err.msg, c->msg_part) == NULL)
            fail_msg("case '%s': message '%s' lacks '%s'", c->name, err.msg, c->msg_part);
        if (rc == 0)
            assert_non_null(res.policy);
    }

    /* Bad requests from the caller. */
    char token[HUB_AUTH_TOKEN_MAX + 1];
    struct tok_spec ok = TOK("localhost", NULL, KEY_C, 3600, "iothubowner");
    make_token(&ok, token, sizeof(token));
    struct hub_auth_result res;
    struct hub_err err = {0};
    struct hub_auth_service_req noslash = {NOW, "devices/dev1", HUB_AUTH_PERM_REGISTRY_READ,
                                           &policies};
    assert_int_equal(hub_auth_service_authorize(&cfg, &noslash, token, strlen(token), &res, &err),
                     HUB_E_INVALID_ARG);
    struct hub_auth_service_req query = {NOW, "/devices?top=1", HUB_AUTH_PERM_REGISTRY_READ,
                                         &policies};
    assert_int_equal(hub_auth_service_authorize(&cfg, &query, token, strlen(token), &res, &err),
                     HUB_E_INVALID_ARG);
    struct hub_auth_service_req noperm = {NOW, "/devices", 0, &policies};
    assert_int_equal(hub_auth_service_authorize(&cfg, &noperm, token, strlen(token), &res, &err),
                     HUB_E_INVALID_ARG);
    struct hub_auth_service_req nopol = {NOW, "/devices", HUB_AUTH_PERM_REGISTRY_READ, NULL};
    assert_int_equal(hub_auth_service_authorize(&cfg, &nopol, token, strlen(token), &res, &err),
                     HUB_E_UNAUTHORIZED);
    assert_int_equal(res.deny, HUB_AUTH_DENY_UNKNOWN_POLICY);
}

/* ---- DPS ---------------------------------------------------------------- */

struct dps_case {
    const char *name;
    struct tok_spec tok;
    const char *scope, *reg;
    int rc;
    enum hub_auth_deny deny;
};

static void test_dps_verify_table(void **state)
{
    (void)state;
    static const struct dps_case cases[] = {
        {"node form, raw sr",
         TOK("0ne00000001/registrations/dev1", NULL, KEY_A, 3600, "registration"), "0ne00000001",
         "dev1", 0, HUB_AUTH_DENY_NONE},
        {"documented form, encoded sr",
         TOK("0ne00000001%2Fregistrations%2Fdev1", NULL, KEY_B, 3600, "registration", SE_FIRST),
         "0ne00000001", "dev1", 0, HUB_AUTH_DENY_NONE},
        {"scope case-insensitive",
         TOK("0NE00000001/registrations/dev1", NULL, KEY_A, 3600, "registration"), "0ne00000001",
         "dev1", 0, HUB_AUTH_DENY_NONE},
        {"no skn", TOK("0ne00000001/registrations/dev1", NULL, KEY_A, 3600), "0ne00000001", "dev1",
         HUB_E_UNAUTHORIZED, HUB_AUTH_DENY_UNKNOWN_POLICY},
        {"other skn", TOK("0ne00000001/registrations/dev1", NULL, KEY_A, 3600, "iothubowner"),
         "0ne00000001", "dev1", HUB_E_UNAUTHORIZED, HUB_AUTH_DENY_UNKNOWN_POLICY},
        {"wrong key", TOK("0ne00000001/registrations/dev1", NULL, KEY_X, 3600, "registration"),
         "0ne00000001", "dev1", HUB_E_UNAUTHORIZED, HUB_AUTH_DENY_BAD_SIGNATURE},
        {"expired", TOK("0ne00000001/registrations/dev1", NULL, KEY_A, -1, "registration"),
         "0ne00000001", "dev1", HUB_E_UNAUTHORIZED, HUB_AUTH_DENY_EXPIRED},
        {"other registration",
         TOK("0ne00000001/registrations/dev2", NULL, KEY_A, 3600, "registration"), "0ne00000001",
         "dev1", HUB_E_UNAUTHORIZED, HUB_AUTH_DENY_WRONG_SCOPE},
        {"other scope", TOK("0ne00000002/registrations/dev1", NULL, KEY_A, 3600, "registration"),
         "0ne00000001", "dev1", HUB_E_UNAUTHORIZED, HUB_AUTH_DENY_WRONG_SCOPE},
        {"prefix is not enough",
         TOK("0ne00000001/registrations", NULL, KEY_A, 3600, "registration"), "0ne00000001", "dev1",
         HUB_E_UNAUTHORIZED, HUB_AUTH_DENY_WRONG_SCOPE},
    };
    struct hub_auth_verify_cfg cfg = {NULL, 0, 0}; /* DPS does not use hosts */
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct dps_case *c = &cases[i];
        char token[HUB_AUTH_TOKEN_MAX + 1];
        make_token(&c->tok, token, sizeof(token));
        struct hub_auth_dps_req req = {NOW, c->scope, c->reg, {KEY_A, KEY_B}};
        struct hub_auth_result res;
        struct hub_err err = {0};
        int rc = hub_auth_dps_verify(&cfg, &req, token, strlen(token), &res, &err);
        if (rc != c->rc || res.deny != c->deny)
            fail_msg("case '%s': rc %d deny %s, want %d %s (%s)", c->name, rc,
                     hub_auth_deny_name(res.deny), c->rc, hub_auth_deny_name(c->deny), err.msg);
    }

    /* Group enrollment: the device signs with the derived key. */
    char derived[HUB_AUTH_KEY_B64_MAX + 1], expect[64];
    struct hub_err err = {0};
    assert_int_equal(hub_auth_dps_derive_key(KEY_C, "sensor-42", derived, &err), 0);
    t_mac(KEY_C, "sensor-42", expect);
    assert_string_equal(derived, expect);
    char token[HUB_AUTH_TOKEN_MAX + 1];
    struct tok_spec spec =
        TOK("0ne00000001/registrations/sensor-42", NULL, derived, 60, "registration");
    make_token(&spec, token, sizeof(token));
    struct hub_auth_dps_req req = {NOW, "0ne00000001", "sensor-42", {derived, NULL}};
    struct hub_auth_result res;
    assert_int_equal(hub_auth_dps_verify(&cfg, &req, token, strlen(token), &res, &err), 0);
    /* The group key itself does not verify a device token. */
    req.keys.primary = KEY_C;
    assert_int_equal(hub_auth_dps_verify(&cfg, &req, token, strlen(token), &res, &err),
                     HUB_E_UNAUTHORIZED);
    assert_int_equal(hub_auth_dps_derive_key("bad", "x", derived, &err), HUB_E_INVALID_ARG);
    assert_int_equal(hub_auth_dps_derive_key(KEY_C, "", derived, &err), HUB_E_INVALID_ARG);
}

/* ---- builder ------------------------------------------------------------ */

static void test_build(void **state)
{
    (void)state;
    char out[HUB_AUTH_TOKEN_MAX + 1];
    struct hub_err err = {0};

    /* Node's encodeUriComponentStrict: '!'()*' escaped, '*' in lowercase. */
    assert_int_equal(hub_auth_sas_build("h/devices/a*b(c)!'~-_.x y", HUB_AUTH_SR_ENCODED, NULL,
                                        KEY_A, 99, out, sizeof(out), &err),
                     0);
    assert_non_null(strstr(out, "sr=h%2Fdevices%2Fa%2ab%28c%29%21%27~-_.x%20y&sig="));
    char mac[64], sig[200], expect[512];
    t_sign(KEY_A, "h%2Fdevices%2Fa%2ab%28c%29%21%27~-_.x%20y", "99", mac);
    t_pct(mac, sig, 0);
    snprintf(expect, sizeof(expect),
             "SharedAccessSignature sr=h%%2Fdevices%%2Fa%%2ab%%28c%%29%%21%%27~-_.x%%20y&sig=%s&"
             "se=99",
             sig);
    assert_string_equal(out, expect);

    /* Built tokens verify, for device, module and service forms. */
    struct hub_auth_verify_cfg cfg = {HOSTS, 2, 0};
    struct hub_auth_result res;
    assert_int_equal(hub_auth_sas_build("Hub.Example/devices/dev1/modules/m1", HUB_AUTH_SR_ENCODED,
                                        "", KEY_B, NOW + 60, out, sizeof(out), &err),
                     0);
    assert_null(strstr(out, "skn="));
    struct hub_auth_device_req dreq = {NOW, "dev1", "m1", {KEY_A, KEY_B}, NULL};
    assert_int_equal(hub_auth_device_verify(&cfg, &dreq, out, strlen(out), &res, &err), 0);
    assert_int_equal(res.key_slot, 2);

    struct hub_auth_policy_set policies;
    policy_fixture(&policies);
    assert_int_equal(hub_auth_sas_build("localhost", HUB_AUTH_SR_RAW, "iothubowner", KEY_D,
                                        NOW + 3600, out, sizeof(out), &err),
                     0);
    struct hub_auth_service_req sreq = {NOW, "/devices/x", HUB_AUTH_PERM_ALL, &policies};
    assert_int_equal(hub_auth_service_authorize(&cfg, &sreq, out, strlen(out), &res, &err), 0);

    /* A device id needing escapes survives the round trip (decoded sr compared). */
    assert_int_equal(hub_auth_sas_build("localhost/devices/a:b@c$", HUB_AUTH_SR_ENCODED, NULL,
                                        KEY_A, NOW + 60, out, sizeof(out), &err),
                     0);
    struct hub_auth_device_req odd = {NOW, "a:b@c$", NULL, {KEY_A, NULL}, NULL};
    assert_int_equal(hub_auth_device_verify(&cfg, &odd, out, strlen(out), &res, &err), 0);

    /* Refusals. */
    assert_int_equal(
        hub_auth_sas_build("h&x", HUB_AUTH_SR_RAW, NULL, KEY_A, 1, out, sizeof(out), &err),
        HUB_E_INVALID_ARG);
    assert_int_equal(
        hub_auth_sas_build("h x", HUB_AUTH_SR_RAW, NULL, KEY_A, 1, out, sizeof(out), &err),
        HUB_E_INVALID_ARG);
    assert_int_equal(
        hub_auth_sas_build("", HUB_AUTH_SR_ENCODED, NULL, KEY_A, 1, out, sizeof(out), &err),
        HUB_E_INVALID_ARG);
    assert_int_equal(
        hub_auth_sas_build("h", HUB_AUTH_SR_ENCODED, NULL, KEY_A, 0, out, sizeof(out), &err),
        HUB_E_INVALID_ARG);
    assert_int_equal(
        hub_auth_sas_build("h", HUB_AUTH_SR_ENCODED, NULL, "abc", 1, out, sizeof(out), &err),
        HUB_E_INVALID_ARG);
    assert_int_equal(hub_auth_sas_build("h", HUB_AUTH_SR_ENCODED, NULL, KEY_A, 1, out, 40, &err),
                     HUB_E_TOO_LARGE);
    static char longres[HUB_AUTH_SR_MAX];
    memset(longres, '/', sizeof(longres) - 1); /* each '/' becomes 3 bytes */
    assert_int_equal(
        hub_auth_sas_build(longres, HUB_AUTH_SR_ENCODED, NULL, KEY_A, 1, out, sizeof(out), &err),
        HUB_E_INVALID_ARG);
    char longname[HUB_AUTH_NAME_MAX + 2];
    memset(longname, 'n', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    assert_int_equal(
        hub_auth_sas_build("h", HUB_AUTH_SR_RAW, longname, KEY_A, 1, out, sizeof(out), &err),
        HUB_E_INVALID_ARG);
}

static void test_deny_names(void **state)
{
    (void)state;
    assert_string_equal(hub_auth_deny_name(HUB_AUTH_DENY_NONE), "SAS_NONE");
    assert_string_equal(hub_auth_deny_name(HUB_AUTH_DENY_BAD_SIGNATURE), "SAS_BAD_SIGNATURE");
    assert_string_equal(hub_auth_deny_name(HUB_AUTH_DENY_WRONG_SCOPE), "SAS_WRONG_SCOPE");
    assert_string_equal(hub_auth_deny_name((enum hub_auth_deny)99), "SAS_UNKNOWN");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_table),
        cmocka_unit_test(test_parse_limits),
        cmocka_unit_test(test_device_verify_table),
        cmocka_unit_test(test_device_verify_messages_and_malformed),
        cmocka_unit_test(test_known_answers),
        cmocka_unit_test(test_service_authorize_table),
        cmocka_unit_test(test_dps_verify_table),
        cmocka_unit_test(test_build),
        cmocka_unit_test(test_deny_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
