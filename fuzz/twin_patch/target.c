/*
 * libFuzzer target: JSON a device or a service client sends to change a twin
 * (MQTT PATCH properties/reported, service PATCH and PUT /twins/{id}),
 * through hub_twin_request_parse and hub_twin_request_apply.
 *
 * The first input byte picks the operation (mod 3: reported patch, service
 * patch, service replace), the rest is the request body. It is applied to a
 * twin that already holds nested tags, desired and reported properties.
 * Checked on every run:
 *   - a refused request leaves the twin byte-for-byte as it was (its storage
 *     text is unchanged), and refusals carry a HUB_E_* code and a message;
 *   - an accepted one keeps every limit: sections within their byte limits,
 *     versions bumped exactly as twin.h says;
 *   - $metadata mirrors the properties: every property has a metadata node
 *     and every non-'$' metadata key is a property, recursively;
 *   - the desired notification, merged into the old desired section, gives
 *     the new one (what the device is told matches what was stored);
 *   - applying the same request again gives the same sections (RFC 7396
 *     merge is idempotent; a replace trivially so);
 *   - the storage text decodes back to equal sections.
 * A violated check calls abort() so libFuzzer saves the input.
 *
 * Not part of the CMake build: `make fuzz` (scripts/fuzz) builds it with
 * clang -fsanitize=fuzzer,address,undefined from this file, every .c of src/twin,
 * src/common/err.c and util.c, linking jansson and libcrypto, and runs it on
 * a copy of corpus/ with twin.dict.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "twin/twin.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

#define T0 1750000000
#define T1 1750000100

static const char *const seed_tags = "{\"site\":{\"floor\":3},\"kind\":\"pump\"}";
static const char *const seed_desired = "{\"fw\":\"1.0\",\"cfg\":{\"rate\":5,\"mode\":{\"m\":1}}}";
static const char *const seed_reported = "{\"temp\":21.5,\"arr\":[1,{\"k\":2}]}";

static struct hub_twin *seed_twin(void)
{
    struct hub_twin *t = NULL;
    CHECK(hub_twin_new(T0, &t, NULL) == 0);
    json_t *p = json_loads(seed_tags, 0, NULL);
    CHECK(hub_twin_section_merge(t, HUB_TWIN_TAGS, p, T0, NULL) == 0);
    json_decref(p);
    p = json_loads(seed_desired, 0, NULL);
    CHECK(hub_twin_section_merge(t, HUB_TWIN_DESIRED, p, T0, NULL) == 0);
    json_decref(p);
    p = json_loads(seed_reported, 0, NULL);
    CHECK(hub_twin_section_merge(t, HUB_TWIN_REPORTED, p, T0, NULL) == 0);
    json_decref(p);
    return t;
}

/* Every property of `props` has a node in `meta` and every non-$ key of
 * `meta` is a property; object properties recurse. */
static void check_meta(const json_t *props, const json_t *meta)
{
    CHECK(json_is_object(meta));
    CHECK(json_is_string(json_object_get(meta, "$lastUpdated")));
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)props, k, v)
    {
        const json_t *m = json_object_get(meta, k);
        CHECK(m != NULL);
        if (json_is_object(v))
            check_meta(v, m);
        else
            CHECK(json_is_object(m) && json_object_size(m) <= 2);
    }
    json_object_foreach((json_t *)meta, k, v)
    {
        if (k[0] != '$')
            CHECK(json_object_get(props, k) != NULL);
    }
}

static void check_text_equal(const struct hub_twin_text *a, const struct hub_twin_text *b)
{
    CHECK(strcmp(a->tags, b->tags) == 0);
    CHECK(strcmp(a->desired, b->desired) == 0);
    CHECK(strcmp(a->desired_meta, b->desired_meta) == 0);
    CHECK(strcmp(a->reported, b->reported) == 0);
    CHECK(strcmp(a->reported_meta, b->reported_meta) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    enum hub_twin_op op = (enum hub_twin_op)(data[0] % 3);
    const char *body = (const char *)data + 1;
    size_t len = size - 1;

    struct hub_twin_request *req = NULL;
    struct hub_err err = {0};
    int rc = hub_twin_request_parse(op, body, len, &req, &err);
    if (rc != 0) {
        CHECK(rc < 0 && err.code == rc && err.msg[0] != '\0');
        CHECK(req == NULL);
        return 0;
    }
    CHECK(hub_twin_request_op(req) == op);

    struct hub_twin *t = seed_twin();
    struct hub_twin *before = NULL;
    CHECK(hub_twin_copy(t, &before, NULL) == 0);
    struct hub_twin_text text_before;
    CHECK(hub_twin_encode(t, &text_before, NULL) == 0);

    json_t *note = NULL;
    rc = hub_twin_request_apply(t, req, T1, &note, &err);
    if (rc != 0) {
        CHECK(rc == HUB_E_TOO_LARGE || rc == HUB_E_INVALID_ARG);
        CHECK(err.msg[0] != '\0');
        CHECK(note == NULL);
        struct hub_twin_text text_after;
        CHECK(hub_twin_encode(t, &text_after, NULL) == 0);
        check_text_equal(&text_before, &text_after);
        CHECK(t->version == before->version);
        hub_twin_text_clear(&text_after);
        goto done;
    }

    /* Limits and versions. */
    CHECK(json_dumpb(t->desired, NULL, 0, JSON_COMPACT) <= HUB_TWIN_DESIRED_MAX_BYTES);
    CHECK(json_dumpb(t->reported, NULL, 0, JSON_COMPACT) <= HUB_TWIN_REPORTED_MAX_BYTES);
    CHECK(json_dumpb(t->tags, NULL, 0, JSON_COMPACT) <= HUB_TWIN_TAGS_MAX_BYTES);
    bool desired = hub_twin_request_touches_desired(req);
    if (op == HUB_TWIN_OP_REPORTED_PATCH) {
        CHECK(t->version == before->version + 1);
        CHECK(t->reported_version == before->reported_version + 1);
        CHECK(t->desired_version == before->desired_version);
        CHECK(json_equal(t->desired, before->desired) && json_equal(t->tags, before->tags));
    } else {
        CHECK(t->version == before->version || t->version == before->version + 1);
        CHECK(t->reported_version == before->reported_version);
        CHECK(json_equal(t->reported, before->reported));
        CHECK(t->desired_version == before->desired_version + (desired ? 1 : 0));
    }
    CHECK((note != NULL) == desired);
    check_meta(t->desired, t->desired_meta);
    check_meta(t->reported, t->reported_meta);

    /* The notification takes the old desired to the new one. */
    if (note != NULL) {
        CHECK(json_integer_value(json_object_get(note, "$version")) == t->desired_version);
        json_object_del(note, "$version");
        struct hub_twin *replay = NULL;
        CHECK(hub_twin_copy(before, &replay, NULL) == 0);
        CHECK(hub_twin_section_merge(replay, HUB_TWIN_DESIRED, note, T1, NULL) == 0);
        CHECK(json_equal(replay->desired, t->desired));
        hub_twin_free(replay);
        json_decref(note);
    }

    /* Idempotent: the same request again changes no section. */
    struct hub_twin *again = NULL;
    CHECK(hub_twin_copy(t, &again, NULL) == 0);
    CHECK(hub_twin_request_apply(again, req, T1, NULL, NULL) == 0);
    CHECK(json_equal(again->tags, t->tags));
    CHECK(json_equal(again->desired, t->desired));
    CHECK(json_equal(again->reported, t->reported));
    hub_twin_free(again);

    /* Storage round trip. */
    struct hub_twin_text text;
    CHECK(hub_twin_encode(t, &text, NULL) == 0);
    struct hub_twin *back = NULL;
    CHECK(hub_twin_new(0, &back, NULL) == 0);
    CHECK(hub_twin_decode(back, text.tags, text.desired, text.desired_meta, text.reported,
                          text.reported_meta, NULL) == 0);
    CHECK(json_equal(back->tags, t->tags) && json_equal(back->desired, t->desired) &&
          json_equal(back->desired_meta, t->desired_meta) &&
          json_equal(back->reported, t->reported) &&
          json_equal(back->reported_meta, t->reported_meta));
    hub_twin_free(back);
    hub_twin_text_clear(&text);

    /* The wire shapes build. */
    json_t *dj = hub_twin_device_json_new(t);
    CHECK(dj != NULL);
    json_decref(dj);
done:
    hub_twin_text_clear(&text_before);
    hub_twin_free(before);
    hub_twin_free(t);
    hub_twin_request_free(req);
    return 0;
}
