/*
 * libFuzzer target: what the provisioning service reads from outside: a
 * device's DPS MQTT username and PUBLISH topics (dpsdev), and the service
 * API's enrollment bodies (dps), both kinds.
 *
 * The first input byte picks the parser, the rest is its input. Checked on
 * every run:
 *   - a parsed username or topic has NUL-terminated fields within their
 *     limits, a registration id the id rule accepts (usernames), and a
 *     request kind the parser defines;
 *   - a response topic built from a parsed request's $rid fits and is
 *     NUL-terminated at the length it reports;
 *   - a parsed enrollment formats (hub_dps_enrollment_json_new) to JSON whose
 *     id and attestation type are the parsed ones, and clearing it twice is
 *     safe.
 * A violated check calls abort() so libFuzzer saves the input.
 *
 * Not part of the CMake build: `make fuzz` (scripts/fuzz) builds it with
 * clang (-fsanitize=fuzzer,address,undefined) from this file and the
 * sources sources_for() lists, and runs it on a copy of corpus/.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dps/dps.h"
#include "dpsdev/dpsdev.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            abort();                                                                               \
    } while (0)

static void fuzz_username(const char *s, size_t len)
{
    struct hub_dpsdev_username u;
    if (hub_dpsdev_username_parse(s, len, &u, NULL) != 0)
        return;
    CHECK(strlen(u.id_scope) <= HUB_DPSDEV_SCOPE_MAX);
    CHECK(strlen(u.registration_id) <= HUB_DPSDEV_REG_ID_MAX);
    CHECK(strlen(u.api_version) < sizeof(u.api_version));
}

static void fuzz_topic(const char *s, size_t len)
{
    struct hub_dpsdev_topic t;
    if (hub_dpsdev_topic_parse(s, len, &t, NULL) != 0)
        return;
    CHECK(t.kind == HUB_DPSDEV_TOPIC_REGISTER || t.kind == HUB_DPSDEV_TOPIC_STATUS);
    CHECK(strlen(t.rid) <= HUB_DPSDEV_RID_MAX && t.rid[0] != '\0');
    CHECK(t.kind != HUB_DPSDEV_TOPIC_STATUS || t.operation_id[0] != '\0');
    char out[256];
    int n = hub_dpsdev_response_topic(out, sizeof(out), 202, t.rid, 1);
    CHECK(n > 0 && (size_t)n < sizeof(out) && strlen(out) == (size_t)n);
}

static void fuzz_enrollment(enum hub_dps_kind kind, const char *s, size_t len)
{
    struct hub_dps_enrollment e;
    int rc = hub_dps_enrollment_parse(kind, "fuzz-id", s, len, &e, NULL);
    if (rc == 0) {
        CHECK(strcmp(e.id, "fuzz-id") == 0 && e.kind == kind);
        json_t *j = hub_dps_enrollment_json_new(&e);
        CHECK(j != NULL);
        const char *id_key = kind == HUB_DPS_GROUP ? "enrollmentGroupId" : "registrationId";
        CHECK(json_is_string(json_object_get(j, id_key)) &&
              strcmp(json_string_value(json_object_get(j, id_key)), "fuzz-id") == 0);
        json_t *type = json_object_get(json_object_get(j, "attestation"), "type");
        CHECK(json_is_string(type) &&
              strcmp(json_string_value(type), hub_dps_att_type_name(e.att_type)) == 0);
        json_decref(j);
    }
    hub_dps_enrollment_clear(&e);
    hub_dps_enrollment_clear(&e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const char *s = (const char *)data + 1;
    size_t len = size - 1;
    switch (data[0] % 4) {
    case 0:
        fuzz_username(s, len);
        break;
    case 1:
        fuzz_topic(s, len);
        break;
    case 2:
        fuzz_enrollment(HUB_DPS_GROUP, s, len);
        break;
    default:
        fuzz_enrollment(HUB_DPS_INDIVIDUAL, s, len);
        break;
    }
    return 0;
}
