/*
 * Symmetric keys: validation, generation, and the one HMAC every SAS and DPS
 * computation goes through (reference §1, §7).
 */
#include "auth/auth_int.h"

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "common/util.h"

void hub_auth__wipe(void *p, size_t len)
{
    OPENSSL_cleanse(p, len);
}

int hub_auth__key_decode(const char *b64, const char *what,
                         unsigned char out[HUB_AUTH_KEY_MAX_BYTES], size_t *outlen,
                         struct hub_err *err)
{
    if (b64 == NULL || b64[0] == '\0')
        return HUB_ERR(err, HUB_E_INVALID_ARG, "%s is empty", what);
    size_t len = strlen(b64);
    if (len > HUB_AUTH_KEY_B64_MAX)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "%s is longer than %d base64 characters", what,
                       HUB_AUTH_KEY_B64_MAX);
    struct hub_err inner = {0};
    int n = hub_base64_decode(b64, len, out, HUB_AUTH_KEY_MAX_BYTES, &inner);
    if (n < 0)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "%s is not valid base64: %s", what, inner.msg);
    if (n < HUB_AUTH_KEY_MIN_BYTES || n > HUB_AUTH_KEY_MAX_BYTES) {
        hub_auth__wipe(out, (size_t)n);
        return HUB_ERR(err, HUB_E_INVALID_ARG, "%s decodes to %d bytes; keys must be %d..%d bytes",
                       what, n, HUB_AUTH_KEY_MIN_BYTES, HUB_AUTH_KEY_MAX_BYTES);
    }
    *outlen = (size_t)n;
    return 0;
}

int hub_auth__hmac_b64(const unsigned char *key, size_t keylen, const void *msg, size_t msglen,
                       char out[HUB_AUTH__MAC_B64_LEN + 1], struct hub_err *err)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    if (HMAC(EVP_sha256(), key, (int)keylen, msg, msglen, mac, &maclen) == NULL || maclen != 32)
        return HUB_ERR(err, HUB_E_CRYPTO, "HMAC-SHA256 failed");
    hub_base64_encode(mac, maclen, out);
    return 0;
}

int hub_auth_key_validate(const char *b64, struct hub_err *err)
{
    unsigned char buf[HUB_AUTH_KEY_MAX_BYTES];
    size_t n = 0;
    int rc = hub_auth__key_decode(b64, "key", buf, &n, err);
    hub_auth__wipe(buf, sizeof(buf));
    return rc;
}

int hub_auth_key_generate(char out[HUB_AUTH_KEY_B64_MAX + 1], struct hub_err *err)
{
    unsigned char raw[HUB_AUTH_KEY_GEN_BYTES];
    int rc = hub_random_bytes(raw, sizeof(raw), err);
    if (rc == 0)
        hub_base64_encode(raw, sizeof(raw), out);
    hub_auth__wipe(raw, sizeof(raw));
    return rc;
}

int hub_auth__ascii_case_equal_n(const char *a, size_t alen, const char *b)
{
    if (strlen(b) != alen)
        return 0;
    for (size_t i = 0; i < alen; i++) {
        char x = a[i], y = b[i];
        if (x >= 'A' && x <= 'Z')
            x = (char)(x - 'A' + 'a');
        if (y >= 'A' && y <= 'Z')
            y = (char)(y - 'A' + 'a');
        if (x != y)
            return 0;
    }
    return 1;
}
