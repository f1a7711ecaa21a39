/*
 * libFuzzer target: the continuation token of POST /devices/query, read from
 * the x-ms-continuation header (hub_http__query_cursor_decode, cursor.c), and
 * its encoder. The header is a C string the client chooses freely.
 *
 * The first input byte picks the mode (even: token, odd: device id), the
 * rest is the token or the id. Checked on every run:
 *   - token: the verdict equals a reference written here from the documented
 *     rules (even number of hex digits, 2..2*HUB_DEVICE_ID_MAX of them, each
 *     byte pair a character Azure allows in device ids), so refusal is total
 *     and nothing malformed gets through; a refusal is HUB_E_INVALID_ARG
 *     "malformed continuation token"; an accepted token decodes to an id of
 *     half its length that hub_registry_device_id_check accepts and that
 *     encodes back to the token in uppercase (decode then encode is the
 *     identity up to hex case);
 *   - id (at most HUB_DEVICE_ID_MAX bytes): the token is 2 * len uppercase
 *     hex digits, and decoding it succeeds exactly when the id is valid (by
 *     the reference and by hub_registry_device_id_check) and gives the id
 *     back (encode then decode is the identity on valid ids).
 * Decode writes into a heap block of exactly HUB_DEVICE_ID_SIZE bytes and
 * encode into one of exactly 2 * len + 1, so ASan reports any write past them.
 * A violated check calls abort() so libFuzzer saves the input.
 *
 * Not part of the CMake build: `make fuzz` (scripts/fuzz) builds it with
 * clang -fsanitize=fuzzer,address,undefined from this file,
 * src/http/cursor.c, src/registry/names.c (the pure id rules),
 * src/common/err.c and util.c, linking OpenSSL (util.c's RNG).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "http/json_map.h"
#include "registry/registry.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

/* Azure's device-id characters, restated here rather than taken from names.c. */
static int ref_id_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("-.%_*?!(),:=@$'", c) != NULL);
}

static int ref_id_valid(const char *id, size_t len)
{
    if (len == 0 || len > HUB_DEVICE_ID_MAX)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!ref_id_char((unsigned char)id[i]))
            return 0;
    return 1;
}

static int ref_hex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* 1 if token is one the documented rules accept. */
static int ref_token_valid(const char *token, size_t n)
{
    if (n == 0 || n % 2 != 0 || n / 2 > HUB_DEVICE_ID_MAX)
        return 0;
    for (size_t i = 0; i < n; i += 2) {
        int hi = ref_hex(token[i]), lo = ref_hex(token[i + 1]);
        if (hi < 0 || lo < 0 || !ref_id_char((unsigned char)(hi * 16 + lo)))
            return 0;
    }
    return 1;
}

/* NUL-terminated heap copy, or NULL if the bytes hold a NUL (a header never does). */
static char *cstr_new(const uint8_t *data, size_t len)
{
    if (memchr(data, '\0', len) != NULL)
        return NULL;
    char *s = malloc(len + 1);
    CHECK(s != NULL);
    memcpy(s, data, len);
    s[len] = '\0';
    return s;
}

static void fuzz_token(const char *token)
{
    size_t n = strlen(token);
    char *id = malloc(HUB_DEVICE_ID_SIZE);
    CHECK(id != NULL);
    struct hub_err err = {0};
    int rc = hub_http__query_cursor_decode(token, id, &err);
    if (!ref_token_valid(token, n)) {
        CHECK(rc == HUB_E_INVALID_ARG && err.code == HUB_E_INVALID_ARG);
        CHECK(strcmp(err.msg, "malformed continuation token") == 0);
        free(id);
        return;
    }
    CHECK(rc == 0);
    CHECK(strlen(id) == n / 2);
    CHECK(hub_registry_device_id_check(id, NULL) == 0);
    char *again = malloc(n + 1);
    CHECK(again != NULL);
    hub_http__query_cursor_encode(id, again);
    CHECK(strlen(again) == n);
    for (size_t i = 0; i < n; i++) {
        CHECK((again[i] >= '0' && again[i] <= '9') || (again[i] >= 'A' && again[i] <= 'F'));
        CHECK(ref_hex(again[i]) == ref_hex(token[i]));
    }
    free(again);
    free(id);
}

static void fuzz_id(const char *id)
{
    size_t len = strlen(id);
    if (len > HUB_DEVICE_ID_MAX) /* encode's contract: a stored id, at most that long */
        return;
    char *token = malloc(2 * len + 1);
    CHECK(token != NULL);
    hub_http__query_cursor_encode(id, token);
    CHECK(strlen(token) == 2 * len);
    for (size_t i = 0; i < len; i++)
        CHECK(ref_hex(token[2 * i]) * 16 + ref_hex(token[2 * i + 1]) == (unsigned char)id[i]);
    int valid = ref_id_valid(id, len);
    CHECK((hub_registry_device_id_check(id, NULL) == 0) == valid);
    char *back = malloc(HUB_DEVICE_ID_SIZE);
    CHECK(back != NULL);
    int rc = hub_http__query_cursor_decode(token, back, NULL);
    if (valid)
        CHECK(rc == 0 && strcmp(back, id) == 0);
    else
        CHECK(rc == HUB_E_INVALID_ARG);
    free(back);
    free(token);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    char *s = cstr_new(data + 1, size - 1);
    if (s == NULL)
        return 0;
    if (data[0] % 2 == 0)
        fuzz_token(s);
    else
        fuzz_id(s);
    free(s);
    return 0;
}
