/*
 * libFuzzer target: everything a device sends that the `iothub` layer reads
 * as text: the CONNECT username, PUBLISH topics (with their property bags,
 * $rid and $version) and SUBSCRIBE filters.
 *
 * The first input byte picks the parser, the rest is its input. Checked on
 * every run:
 *   - a classified topic's views (device id, module id, bag, query, rid) lie
 *     inside the input;
 *   - a property bag that parses re-encodes (hub_iothub_props_encode) to a
 *     bag that parses to the same properties, and hub_iothub_props_encoded_len
 *     agrees with what the encoder writes.
 * A violated check calls abort() so libFuzzer saves the input.
 *
 * Not part of the CMake build: `make fuzz` builds it with clang
 * (-fsanitize=fuzzer,address,undefined) from this file, the sources of
 * src/iothub and src/mqtt, and src/common/err.c, and runs it on a copy of
 * corpus/ (libFuzzer writes new inputs into the directory it is given).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "iothub/iothub.h"

static void check_view(const char *base, size_t len, struct hub_mqtt_str v)
{
    if (v.len == 0)
        return;
    if (v.ptr < base || v.ptr + v.len > base + len)
        abort();
}

static int same_prop(const struct hub_iothub_prop *a, const struct hub_iothub_prop *b)
{
    if ((a->key == NULL) != (b->key == NULL))
        return 0;
    if (a->key == NULL)
        return 1;
    if (a->key_len != b->key_len || memcmp(a->key, b->key, a->key_len) != 0)
        return 0;
    if ((a->value == NULL) != (b->value == NULL))
        return 0;
    return a->value == NULL ||
           (a->value_len == b->value_len && memcmp(a->value, b->value, a->value_len) == 0);
}

static void bag_round_trip(const char *bag, size_t len)
{
    static struct hub_iothub_props first, second;
    if (hub_iothub_props_parse(bag, len, &first, NULL) != 0)
        return;
    /* Encode system and application properties in one list, as C2D does. */
    struct hub_iothub_prop all[HUB_IOTHUB_SYS__COUNT + HUB_IOTHUB_APP_PROPS_MAX];
    size_t n = 0;
    for (int i = 0; i < HUB_IOTHUB_SYS__COUNT; i++)
        if (first.sys[i].key != NULL)
            all[n++] = first.sys[i];
    for (size_t i = 0; i < first.app_count; i++)
        all[n++] = first.app[i];
    size_t want = hub_iothub_props_encoded_len(all, n);
    char *out = malloc(want + 1);
    if (out == NULL)
        return;
    int rc = hub_iothub_props_encode(out, want + 1, all, n, NULL);
    if (rc < 0) {
        free(out); /* e.g. too long once encoded: a refusal, not a bug */
        return;
    }
    if ((size_t)rc != want)
        abort();
    if (hub_iothub_props_parse(out, (size_t)rc, &second, NULL) != 0) {
        free(out);
        return; /* the re-encoded bag may exceed the bag limit */
    }
    for (int i = 0; i < HUB_IOTHUB_SYS__COUNT; i++)
        if (!same_prop(&first.sys[i], &second.sys[i]))
            abort();
    if (first.app_count != second.app_count)
        abort();
    for (size_t i = 0; i < first.app_count; i++)
        if (!same_prop(&first.app[i], &second.app[i]))
            abort();
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    const char *s = (const char *)data + 1;
    size_t len = size - 1;
    switch (data[0] % 4) {
    case 0: {
        static struct hub_iothub_username u;
        (void)hub_iothub_username_parse(s, len, &u, NULL);
        break;
    }
    case 1: {
        struct hub_iothub_topic t;
        if (hub_iothub_topic_classify(s, len, &t, NULL) == 0) {
            check_view(s, len, t.device_id);
            check_view(s, len, t.module_id);
            check_view(s, len, t.bag);
            check_view(s, len, t.query);
            check_view(s, len, t.rid);
            if (t.kind == HUB_IOTHUB_TOPIC_TELEMETRY)
                bag_round_trip(t.bag.ptr != NULL ? t.bag.ptr : "", t.bag.len);
            (void)hub_iothub_topic_owner_check(&t, "dev1", NULL, NULL);
        }
        struct hub_mqtt_str rid;
        int64_t version;
        (void)hub_iothub_rid_get0(s, len, &rid, NULL);
        (void)hub_iothub_version_get(s, len, &version, NULL);
        break;
    }
    case 2: {
        struct hub_iothub_filter f;
        if (hub_iothub_filter_classify(s, len, &f, NULL) == 0)
            check_view(s, len, f.device_id);
        break;
    }
    default:
        bag_round_trip(s, len);
        break;
    }
    return 0;
}
