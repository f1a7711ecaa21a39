/*
 * libFuzzer target: the JSON body of the service API's PUT /devices/{id}
 * (src/http/json_device.c: hub_http__device_from_json), parsed the way the
 * server parses every request body (json_loadb with JSON_REJECT_DUPLICATES,
 * objects only: hub_http__body_json), and the reported-property check on a
 * twin PATCH body (hub_http__twin_patch_has_reported), which reads raw text.
 *
 * The first input byte picks the id in the request path (bit 0..1) and
 * whether the body is also given to the twin check (bit 2); the rest is the
 * body. Checked on every run:
 *   - a refusal fills `why` with a sentence;
 *   - an accepted body gives a record whose id is the path id, whose enums
 *     are in range and whose strings are NUL-terminated within their fields;
 *   - the record formats (hub_http__device_to_json: never NULL, text that
 *     jansson reads back) and that JSON, fed to hub_http__device_from_json
 *     again, gives the same caller fields: what GET answers is what PUT
 *     accepts;
 *   - the twin check answers 1 only for text whose properties.reported
 *     object holds a key not starting with '$'.
 * A violated check calls abort() so libFuzzer saves the input.
 *
 * Not part of the CMake build: `make fuzz` (scripts/fuzz) builds it with
 * clang -fsanitize=fuzzer,address,undefined from this file,
 * src/http/json_device.c, src/store/store.c, src/common/err.c and util.c,
 * linking jansson and libcrypto (no libevent: json_device.c is pure).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/json_map.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

static const char *const path_ids[] = {
    "dev1",
    "a-much-longer-device-id.with:colons_and(parens)",
    "d",
    "x",
};

#define TERMINATED(field) CHECK(memchr((field), '\0', sizeof(field)) != NULL)

static void check_record(const struct hub_device *d, const char *path_id)
{
    CHECK(strcmp(d->id, path_id) == 0);
    CHECK(d->status == HUB_DEVICE_ENABLED || d->status == HUB_DEVICE_DISABLED);
    CHECK(d->auth_type >= HUB_AUTH_SAS && d->auth_type <= HUB_AUTH_NONE);
    TERMINATED(d->status_reason);
    TERMINATED(d->primary_key);
    TERMINATED(d->secondary_key);
    TERMINATED(d->primary_thumbprint);
    TERMINATED(d->secondary_thumbprint);
}

static void check_same(const struct hub_device *a, const struct hub_device *b)
{
    CHECK(strcmp(a->id, b->id) == 0);
    CHECK(a->status == b->status && a->auth_type == b->auth_type);
    CHECK(a->iot_edge == b->iot_edge);
    CHECK(strcmp(a->status_reason, b->status_reason) == 0);
    CHECK(strcmp(a->primary_key, b->primary_key) == 0);
    CHECK(strcmp(a->secondary_key, b->secondary_key) == 0);
    CHECK(strcmp(a->primary_thumbprint, b->primary_thumbprint) == 0);
    CHECK(strcmp(a->secondary_thumbprint, b->secondary_thumbprint) == 0);
}

static void fuzz_device(const char *body, size_t len, const char *path_id)
{
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
    if (root == NULL)
        return;
    if (!json_is_object(root)) {
        json_decref(root);
        return; /* the server answers 400 before the device code sees it */
    }
    static struct hub_device first, second;
    char why[256];
    why[0] = '\0';
    int rc = hub_http__device_from_json(root, path_id, &first, why, sizeof(why));
    json_decref(root);
    if (rc != 0) {
        CHECK(rc == -1 && why[0] != '\0');
        return;
    }
    check_record(&first, path_id);

    json_t *out = hub_http__device_to_json(&first);
    CHECK(out != NULL);
    char *text = json_dumps(out, JSON_COMPACT);
    json_decref(out);
    CHECK(text != NULL);
    json_t *back = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
    free(text);
    CHECK(back != NULL && json_is_object(back));
    CHECK(hub_http__device_from_json(back, path_id, &second, why, sizeof(why)) == 0);
    json_decref(back);
    check_same(&first, &second);
}

static void fuzz_twin_check(const char *body, size_t len)
{
    int has = hub_http__twin_patch_has_reported(body, len);
    CHECK(has == 0 || has == 1);
    if (!has)
        return;
    json_t *root = json_loadb(body, len, 0, NULL);
    json_t *rep = json_object_get(json_object_get(root, "properties"), "reported");
    CHECK(json_is_object(rep));
    int found = 0;
    const char *key;
    json_t *v;
    json_object_foreach(rep, key, v)
    {
        if (key[0] != '$')
            found = 1;
    }
    CHECK(found);
    json_decref(root);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    /* exactly len bytes on the heap, no NUL: ASan sees any over-read */
    size_t len = size - 1;
    char *body = malloc(len ? len : 1);
    CHECK(body != NULL);
    memcpy(body, data + 1, len);
    fuzz_device(body, len, path_ids[data[0] & 3]);
    if (data[0] & 4)
        fuzz_twin_check(body, len);
    free(body);
    return 0;
}
