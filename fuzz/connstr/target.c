/*
 * libFuzzer target: IoT Hub connection strings through hub_auth_connstr_parse
 * and hub_auth_connstr_format (hubctl reads them from the command line and
 * the environment, the SDK-compatible tools of an operator hand them
 * around), and permission lists through hub_auth_perms_parse/format.
 *
 * The first input byte picks the parser (even: connection string, odd:
 * permission list), the rest is its input, on the heap without a NUL so
 * ASan sees any over-read. Checked on every run:
 *   - a refusal is PARSE or TOO_LARGE with err.code equal to the return;
 *   - a parsed connection string has NUL-terminated fields within their
 *     limits, a kind that matches its fields, and formats (format refuses
 *     only what parse refuses, and the canonical text is never longer than
 *     what was parsed) to text that parses to the same fields; formatting
 *     that again gives the same text;
 *   - a parsed permission list is non-zero within HUB_AUTH_PERM_KNOWN and
 *     formats to text that parses to the same bits.
 * A violated check calls abort() so libFuzzer saves the input.
 *
 * Not part of the CMake build: `make fuzz` (scripts/fuzz) builds it with
 * clang -fsanitize=fuzzer,address,undefined from this file, every .c of
 * src/auth, src/common/err.c and util.c, linking libcrypto.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

static void check_field(const char *s, size_t cap)
{
    CHECK(memchr(s, '\0', cap) != NULL);
    CHECK(strchr(s, ';') == NULL);
}

static void check_connstr(const struct hub_auth_connstr *cs)
{
    check_field(cs->host_name, sizeof(cs->host_name));
    check_field(cs->gateway_host_name, sizeof(cs->gateway_host_name));
    check_field(cs->device_id, sizeof(cs->device_id));
    check_field(cs->module_id, sizeof(cs->module_id));
    check_field(cs->key_name, sizeof(cs->key_name));
    check_field(cs->key, sizeof(cs->key));
    CHECK(cs->host_name[0] != '\0');
    switch (cs->kind) {
    case HUB_AUTH_CONNSTR_SERVICE:
        CHECK(cs->device_id[0] == '\0' && cs->module_id[0] == '\0');
        CHECK(cs->key_name[0] != '\0' && cs->key[0] != '\0' && !cs->x509);
        break;
    case HUB_AUTH_CONNSTR_DEVICE:
    case HUB_AUTH_CONNSTR_MODULE:
        CHECK(cs->device_id[0] != '\0');
        CHECK((cs->module_id[0] != '\0') == (cs->kind == HUB_AUTH_CONNSTR_MODULE));
        CHECK((cs->key[0] != '\0') != (cs->x509 != 0));
        break;
    default:
        abort();
    }
    if (cs->key[0] != '\0')
        CHECK(hub_auth_key_validate(cs->key, NULL) == 0);
}

static void check_same(const struct hub_auth_connstr *a, const struct hub_auth_connstr *b)
{
    CHECK(a->kind == b->kind && (a->x509 != 0) == (b->x509 != 0));
    CHECK(strcmp(a->host_name, b->host_name) == 0);
    CHECK(strcmp(a->gateway_host_name, b->gateway_host_name) == 0);
    CHECK(strcmp(a->device_id, b->device_id) == 0);
    CHECK(strcmp(a->module_id, b->module_id) == 0);
    CHECK(strcmp(a->key_name, b->key_name) == 0);
    CHECK(strcmp(a->key, b->key) == 0);
}

static void fuzz_connstr(const char *text, size_t len)
{
    static struct hub_auth_connstr first, second;
    struct hub_err err = {0};
    int rc = hub_auth_connstr_parse(text, len, &first, &err);
    if (rc != 0) {
        CHECK((rc == HUB_E_PARSE || rc == HUB_E_TOO_LARGE) && err.code == rc);
        CHECK(err.msg[0] != '\0');
        return;
    }
    CHECK(len <= HUB_AUTH_CONNSTR_MAX);
    check_connstr(&first);

    static char out[HUB_AUTH_CONNSTR_MAX + 1], again[HUB_AUTH_CONNSTR_MAX + 1];
    CHECK(hub_auth_connstr_format(&first, out, sizeof(out), NULL) == 0);
    size_t olen = strlen(out);
    CHECK(olen <= len);
    CHECK(hub_auth_connstr_parse(out, olen, &second, NULL) == 0);
    check_same(&first, &second);
    CHECK(hub_auth_connstr_format(&second, again, sizeof(again), NULL) == 0);
    CHECK(strcmp(out, again) == 0);
    /* too small a buffer is TOO_LARGE, never a truncated string */
    CHECK(hub_auth_connstr_format(&second, again, olen, NULL) == HUB_E_TOO_LARGE);
}

static void fuzz_perms(const char *text, size_t len)
{
    unsigned perms = 0, back = 0;
    struct hub_err err = {0};
    int rc = hub_auth_perms_parse(text, len, &perms, &err);
    if (rc != 0) {
        CHECK(rc == HUB_E_PARSE && err.code == rc);
        return;
    }
    CHECK(perms != 0 && (perms & ~HUB_AUTH_PERM_KNOWN) == 0);
    char out[HUB_AUTH_PERMS_TEXT_MAX];
    CHECK(hub_auth_perms_format(perms, out, NULL) == 0);
    CHECK(hub_auth_perms_parse(out, strlen(out), &back, NULL) == 0);
    CHECK(back == perms);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t len = size - 1;
    char *copy = malloc(len ? len : 1);
    CHECK(copy != NULL);
    memcpy(copy, data + 1, len);
    if (data[0] % 2 == 0)
        fuzz_connstr(copy, len);
    else
        fuzz_perms(copy, len);
    free(copy);
    return 0;
}
