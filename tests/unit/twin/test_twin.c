/*
 * twin (pure): the merge table (RFC 7396 as Azure applies it), versions and
 * $metadata per property, the limits (sizes at the boundary, depth, keys,
 * strings), request parsing for each operation, the replace diff, the wire
 * shapes, and the storage text round trip.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "twin/twin.h"

#define T0 1750000000 /* 2025-06-15T15:06:40Z */
#define T1 1750000100 /* 2025-06-15T15:08:20Z */

static json_t *J(const char *text)
{
    json_error_t e;
    json_t *v = json_loads(text, 0, &e);
    if (v == NULL)
        fail_msg("bad test JSON %s: %s", text, e.text);
    return v;
}

static void assert_json_eq(const json_t *got, const char *want)
{
    json_t *w = J(want);
    if (!json_equal(got, w)) {
        char *g = json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS);
        char *ws = json_dumps(w, JSON_COMPACT | JSON_SORT_KEYS);
        fail_msg("JSON differs\n got: %s\nwant: %s", g, ws);
    }
    json_decref(w);
}

static struct hub_twin *twin_new(int64_t now)
{
    struct hub_twin *t = NULL;
    struct hub_err err = {0};
    if (hub_twin_new(now, &t, &err) != 0)
        fail_msg("twin_new: %s", err.msg);
    return t;
}

static void merge_ok(struct hub_twin *t, enum hub_twin_section s, const char *patch, int64_t now)
{
    json_t *p = J(patch);
    struct hub_err err = {0};
    int rc = hub_twin_section_merge(t, s, p, now, &err);
    json_decref(p);
    if (rc != 0)
        fail_msg("merge %s: %s", patch, err.msg);
}

static int merge_rc(struct hub_twin *t, enum hub_twin_section s, const char *patch,
                    struct hub_err *err)
{
    json_t *p = J(patch);
    int rc = hub_twin_section_merge(t, s, p, T1, err);
    json_decref(p);
    return rc;
}

/* ---- merge table ------------------------------------------------------------ */

static const struct merge_case {
    const char *name, *before, *patch, *after;
} merge_cases[] = {
    {"add to empty", "{}", "{\"a\":1}", "{\"a\":1}"},
    {"replace scalar", "{\"a\":1}", "{\"a\":\"x\"}", "{\"a\":\"x\"}"},
    {"null deletes", "{\"a\":1,\"b\":2}", "{\"a\":null}", "{\"b\":2}"},
    {"null of absent key is a no-op", "{\"b\":2}", "{\"zz\":null}", "{\"b\":2}"},
    {"nested merge keeps siblings", "{\"o\":{\"x\":1,\"y\":2}}", "{\"o\":{\"y\":3,\"z\":4}}",
     "{\"o\":{\"x\":1,\"y\":3,\"z\":4}}"},
    {"nested null deletes inner", "{\"o\":{\"x\":1,\"y\":2}}", "{\"o\":{\"x\":null}}",
     "{\"o\":{\"y\":2}}"},
    {"object replaced by scalar", "{\"o\":{\"x\":1}}", "{\"o\":5}", "{\"o\":5}"},
    {"scalar replaced by object, nulls dropped", "{\"o\":5}", "{\"o\":{\"x\":1,\"gone\":null}}",
     "{\"o\":{\"x\":1}}"},
    {"array replaces whole", "{\"a\":[1,2,3]}", "{\"a\":[4]}", "{\"a\":[4]}"},
    {"object replaced by array", "{\"a\":{\"k\":1}}", "{\"a\":[{\"k\":2}]}", "{\"a\":[{\"k\":2}]}"},
    {"empty object patch keeps", "{\"a\":1}", "{}", "{\"a\":1}"},
    {"deep", "{\"a\":{\"b\":{\"c\":1}}}", "{\"a\":{\"b\":{\"d\":true}}}",
     "{\"a\":{\"b\":{\"c\":1,\"d\":true}}}"},
    {"case-sensitive keys", "{\"A\":1}", "{\"a\":2}", "{\"A\":1,\"a\":2}"},
    {"reals and bools", "{}", "{\"r\":1.5,\"f\":false}", "{\"r\":1.5,\"f\":false}"},
};

static void test_merge_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(merge_cases) / sizeof(merge_cases[0]); i++) {
        const struct merge_case *c = &merge_cases[i];
        for (int s = HUB_TWIN_TAGS; s <= HUB_TWIN_REPORTED; s++) {
            struct hub_twin *t = twin_new(T0);
            merge_ok(t, (enum hub_twin_section)s, c->before, T0);
            merge_ok(t, (enum hub_twin_section)s, c->patch, T1);
            const json_t *got = s == HUB_TWIN_TAGS      ? t->tags
                                : s == HUB_TWIN_DESIRED ? t->desired
                                                        : t->reported;
            json_t *want = J(c->after);
            if (!json_equal(got, want)) {
                char *g = json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS);
                fail_msg("case '%s' section %d: got %s want %s", c->name, s, g, c->after);
            }
            json_decref(want);
            hub_twin_free(t);
        }
    }
}

/* ---- versions and metadata --------------------------------------------------- */

static void test_new_twin(void **state)
{
    (void)state;
    struct hub_twin *t = twin_new(T0);
    assert_int_equal(t->version, 1);
    assert_int_equal(t->desired_version, 1);
    assert_int_equal(t->reported_version, 1);
    assert_json_eq(t->tags, "{}");
    assert_json_eq(t->desired_meta,
                   "{\"$lastUpdated\":\"2025-06-15T15:06:40Z\",\"$lastUpdatedVersion\":1}");
    assert_json_eq(t->reported_meta, "{\"$lastUpdated\":\"2025-06-15T15:06:40Z\"}");
    hub_twin_free(t);
}

static void test_versions_bump_per_patch(void **state)
{
    (void)state;
    struct hub_twin *t = twin_new(T0);
    merge_ok(t, HUB_TWIN_DESIRED, "{\"a\":1}", T1);
    assert_int_equal(t->desired_version, 2);
    assert_int_equal(t->reported_version, 1);
    assert_int_equal(t->version, 2);
    /* The same value again is still an event: Azure bumps $version. */
    merge_ok(t, HUB_TWIN_DESIRED, "{\"a\":1}", T1);
    assert_int_equal(t->desired_version, 3);
    merge_ok(t, HUB_TWIN_REPORTED, "{\"r\":1}", T1);
    assert_int_equal(t->reported_version, 2);
    assert_int_equal(t->desired_version, 3);
    /* Tags have no $version; the twin's version still moves. */
    merge_ok(t, HUB_TWIN_TAGS, "{\"t\":1}", T1);
    assert_int_equal(t->version, 5);
    assert_int_equal(t->desired_version, 3);
    hub_twin_free(t);
}

static void test_metadata_per_property(void **state)
{
    (void)state;
    struct hub_twin *t = twin_new(T0);
    merge_ok(t, HUB_TWIN_DESIRED, "{\"a\":1,\"o\":{\"x\":1,\"y\":{\"z\":2}}}", T0);
    assert_json_eq(
        t->desired_meta,
        "{\"$lastUpdated\":\"2025-06-15T15:06:40Z\",\"$lastUpdatedVersion\":2,"
        "\"a\":{\"$lastUpdated\":\"2025-06-15T15:06:40Z\",\"$lastUpdatedVersion\":2},"
        "\"o\":{\"$lastUpdated\":\"2025-06-15T15:06:40Z\",\"$lastUpdatedVersion\":2,"
        " \"x\":{\"$lastUpdated\":\"2025-06-15T15:06:40Z\",\"$lastUpdatedVersion\":2},"
        " \"y\":{\"$lastUpdated\":\"2025-06-15T15:06:40Z\",\"$lastUpdatedVersion\":2,"
        "  \"z\":{\"$lastUpdated\":\"2025-06-15T15:06:40Z\",\"$lastUpdatedVersion\":2}}}}");
    /* Touch o.x and delete o.y at T1: a, o.y's subtree untouched/removed. */
    merge_ok(t, HUB_TWIN_DESIRED, "{\"o\":{\"x\":5,\"y\":null}}", T1);
    assert_json_eq(
        t->desired_meta,
        "{\"$lastUpdated\":\"2025-06-15T15:08:20Z\",\"$lastUpdatedVersion\":3,"
        "\"a\":{\"$lastUpdated\":\"2025-06-15T15:06:40Z\",\"$lastUpdatedVersion\":2},"
        "\"o\":{\"$lastUpdated\":\"2025-06-15T15:08:20Z\",\"$lastUpdatedVersion\":3,"
        " \"x\":{\"$lastUpdated\":\"2025-06-15T15:08:20Z\",\"$lastUpdatedVersion\":3}}}");
    /* An object replaced by a scalar loses its children's metadata. */
    merge_ok(t, HUB_TWIN_DESIRED, "{\"o\":7}", T1);
    assert_json_eq(json_object_get(t->desired_meta, "o"),
                   "{\"$lastUpdated\":\"2025-06-15T15:08:20Z\",\"$lastUpdatedVersion\":4}");
    /* Delete a: its metadata goes. */
    merge_ok(t, HUB_TWIN_DESIRED, "{\"a\":null}", T1);
    assert_null(json_object_get(t->desired_meta, "a"));
    /* Reported metadata has no $lastUpdatedVersion. */
    merge_ok(t, HUB_TWIN_REPORTED, "{\"r\":{\"s\":1}}", T1);
    assert_json_eq(t->reported_meta, "{\"$lastUpdated\":\"2025-06-15T15:08:20Z\","
                                     "\"r\":{\"$lastUpdated\":\"2025-06-15T15:08:20Z\","
                                     " \"s\":{\"$lastUpdated\":\"2025-06-15T15:08:20Z\"}}}");
    hub_twin_free(t);
}

/* ---- limits --------------------------------------------------------------------- */

/* {"k":"xxx..."} whose compact JSON is exactly `size` bytes. */
static char *doc_of_size(size_t size)
{
    size_t overhead = strlen("{\"k\":\"\"}");
    assert_true(size >= overhead);
    char *s = malloc(size + 1);
    assert_non_null(s);
    size_t n = size - overhead;
    memcpy(s, "{\"k\":\"", 6);
    /* Strings are capped at 4 KiB: split across keys k0..kN when longer. */
    size_t pos = 0;
    if (n <= 4096) {
        memset(s + 6, 'x', n);
        memcpy(s + 6 + n, "\"}", 3);
        return s;
    }
    free(s);
    /* {"kNN":"<v>",...}: build greedily until the target size. */
    s = malloc(size + 64);
    assert_non_null(s);
    s[pos++] = '{';
    int idx = 0;
    for (;;) {
        size_t remaining = size - pos; /* bytes still to write, incl. final '}' */
        char key[16];
        int kl = snprintf(key, sizeof(key), "k%02d", idx++);
        size_t member_overhead = (size_t)kl + 5; /* "key":"" */
        size_t sep = pos > 1 ? 1 : 0;
        size_t fill = remaining - 1 - sep - member_overhead;
        if (fill > 4096)
            fill = 4096;
        if (sep)
            s[pos++] = ',';
        pos += (size_t)sprintf(s + pos, "\"%s\":\"", key);
        memset(s + pos, 'y', fill);
        pos += fill;
        s[pos++] = '"';
        if (size - pos == 1)
            break;
        /* A next member needs at least its overhead plus a comma. */
        assert_true(size - pos > 1 + 1 + member_overhead);
    }
    s[pos++] = '}';
    s[pos] = '\0';
    return s;
}

static void test_size_limits(void **state)
{
    (void)state;
    static const struct {
        enum hub_twin_section s;
        size_t max;
    } cases[] = {
        {HUB_TWIN_DESIRED, 32768},
        {HUB_TWIN_REPORTED, 32768},
        {HUB_TWIN_TAGS, 8192},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *fits = doc_of_size(cases[i].max);
        char *over = doc_of_size(cases[i].max + 1);
        json_t *probe = J(fits);
        assert_int_equal(json_dumpb(probe, NULL, 0, JSON_COMPACT), cases[i].max);
        json_decref(probe);

        struct hub_twin *t = twin_new(T0);
        struct hub_err err = {0};
        assert_int_equal(merge_rc(t, cases[i].s, fits, &err), 0);
        hub_twin_free(t);

        t = twin_new(T0);
        assert_int_equal(merge_rc(t, cases[i].s, over, &err), HUB_E_TOO_LARGE);
        char want[128];
        snprintf(want, sizeof(want), "%s would be %zu bytes, over the %zu-byte limit",
                 hub_twin_section_name(cases[i].s), cases[i].max + 1, cases[i].max);
        assert_string_equal(err.msg, want);
        /* Refused whole: nothing changed. */
        assert_int_equal(t->version, 1);
        assert_int_equal(t->desired_version, 1);
        assert_int_equal(t->reported_version, 1);
        assert_int_equal(json_object_size(t->desired) + json_object_size(t->reported) +
                             json_object_size(t->tags),
                         0);
        hub_twin_free(t);
        free(fits);
        free(over);
    }
}

/* A section growing past the limit over two patches is refused at the second. */
static void test_size_limit_cumulative(void **state)
{
    (void)state;
    struct hub_twin *t = twin_new(T0);
    char *half = doc_of_size(20000);
    merge_ok(t, HUB_TWIN_REPORTED, half, T0);
    /* Same shape, different keys: rename k -> m. */
    for (char *p = half; *p; p++)
        if (*p == 'k')
            *p = 'm';
    struct hub_err err = {0};
    assert_int_equal(merge_rc(t, HUB_TWIN_REPORTED, half, &err), HUB_E_TOO_LARGE);
    assert_non_null(strstr(err.msg, "reported properties would be"));
    assert_int_equal(t->reported_version, 2);
    free(half);
    hub_twin_free(t);
}

/* {"l1":{"l2":...{"lN":1}}}: a property at level n. */
static char *nested(int n)
{
    char *s = calloc(1, (size_t)n * 12 + 8);
    assert_non_null(s);
    size_t pos = 0;
    pos += (size_t)sprintf(s + pos, "{");
    for (int i = 1; i <= n; i++)
        pos += (size_t)sprintf(s + pos, i < n ? "\"l%d\":{" : "\"l%d\":1", i);
    for (int i = 0; i < n; i++)
        s[pos++] = '}';
    return s;
}

static void test_depth_limits(void **state)
{
    (void)state;
    static const struct {
        enum hub_twin_section s;
        int max;
    } cases[] = {{HUB_TWIN_DESIRED, 10}, {HUB_TWIN_REPORTED, 10}, {HUB_TWIN_TAGS, 5}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *ok_doc = nested(cases[i].max);
        char *bad_doc = nested(cases[i].max + 1);
        struct hub_twin *t = twin_new(T0);
        struct hub_err err = {0};
        assert_int_equal(merge_rc(t, cases[i].s, ok_doc, &err), 0);
        assert_int_equal(merge_rc(t, cases[i].s, bad_doc, &err), HUB_E_INVALID_ARG);
        assert_non_null(strstr(err.msg, "deeper than"));
        hub_twin_free(t);
        free(ok_doc);
        free(bad_doc);
    }
    /* Arrays open a level too. */
    struct hub_twin *t = twin_new(T0);
    struct hub_err err = {0};
    assert_int_equal(merge_rc(t, HUB_TWIN_TAGS, "{\"a\":{\"b\":{\"c\":{\"d\":[[1]]}}}}", &err),
                     HUB_E_INVALID_ARG);
    assert_int_equal(merge_rc(t, HUB_TWIN_TAGS, "{\"a\":{\"b\":{\"c\":{\"d\":[1]}}}}", &err), 0);
    hub_twin_free(t);
}

static void test_bad_keys_and_values(void **state)
{
    (void)state;
    char long_key[1100 + 16];
    memset(long_key, 0, sizeof(long_key));
    strcpy(long_key, "{\"");
    memset(long_key + 2, 'k', 1025);
    strcat(long_key, "\":1}");
    char ok_key[1100 + 16];
    memset(ok_key, 0, sizeof(ok_key));
    strcpy(ok_key, "{\"");
    memset(ok_key + 2, 'k', 1024);
    strcat(ok_key, "\":1}");
    char *long_str = malloc(4200);
    assert_non_null(long_str);
    strcpy(long_str, "{\"s\":\"");
    memset(long_str + 6, 'v', 4097);
    strcpy(long_str + 6 + 4097, "\"}");

    static const struct {
        const char *patch, *msg_part;
    } bad[] = {
        {"{\"a.b\":1}", "forbidden character"},
        {"{\"$a\":1}", "forbidden character"},
        {"{\"a b\":1}", "forbidden character"},
        {"{\"a\\u0001\":1}", "forbidden character"},
        {"{\"a\\u0085\":1}", "forbidden character"},
        {"{\"o\":{\"x$\":1}}", "under o"},
        {"{\"arr\":[{\"bad.key\":1}]}", "under arr[0]"},
        {"{\"\":1}", "empty property name"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct hub_twin *t = twin_new(T0);
        struct hub_err err = {0};
        int rc = merge_rc(t, HUB_TWIN_REPORTED, bad[i].patch, &err);
        if (rc != HUB_E_INVALID_ARG || strstr(err.msg, bad[i].msg_part) == NULL)
            fail_msg("%s: rc %d msg '%s'", bad[i].patch, rc, err.msg);
        assert_int_equal(t->reported_version, 1);
        hub_twin_free(t);
    }
    struct hub_twin *t = twin_new(T0);
    struct hub_err err = {0};
    assert_int_equal(merge_rc(t, HUB_TWIN_DESIRED, long_key, &err), HUB_E_INVALID_ARG);
    assert_non_null(strstr(err.msg, "1025 bytes"));
    assert_int_equal(merge_rc(t, HUB_TWIN_DESIRED, ok_key, &err), 0);
    assert_int_equal(merge_rc(t, HUB_TWIN_DESIRED, long_str, &err), HUB_E_INVALID_ARG);
    assert_non_null(strstr(err.msg, "the string at s"));
    /* UTF-8 keys are fine; null inside arrays is an element. */
    assert_int_equal(merge_rc(t, HUB_TWIN_DESIRED, "{\"caf\xc3\xa9\":[null,1]}", &err), 0);
    hub_twin_free(t);
    free(long_str);
}

/* ---- requests ------------------------------------------------------------------ */

static struct hub_twin_request *parse(enum hub_twin_op op, const char *text)
{
    struct hub_twin_request *r = NULL;
    struct hub_err err = {0};
    if (hub_twin_request_parse(op, text, strlen(text), &r, &err) != 0)
        fail_msg("parse %s: %s", text, err.msg);
    return r;
}

static void test_request_parse_errors(void **state)
{
    (void)state;
    static const struct {
        enum hub_twin_op op;
        const char *text;
        int rc;
    } cases[] = {
        {HUB_TWIN_OP_REPORTED_PATCH, "", HUB_E_PARSE},
        {HUB_TWIN_OP_REPORTED_PATCH, " ", HUB_E_PARSE},
        {HUB_TWIN_OP_REPORTED_PATCH, "{\"a\":", HUB_E_PARSE},
        {HUB_TWIN_OP_REPORTED_PATCH, "[1]", HUB_E_INVALID_ARG},
        {HUB_TWIN_OP_REPORTED_PATCH, "{\"a\":1,\"a\":2}", HUB_E_PARSE},
        {HUB_TWIN_OP_REPORTED_PATCH, "{\"$version\":3}", HUB_E_INVALID_ARG},
        {HUB_TWIN_OP_SERVICE_PATCH, "{\"tags\":5}", HUB_E_INVALID_ARG},
        {HUB_TWIN_OP_SERVICE_PATCH, "{\"properties\":[]}", HUB_E_INVALID_ARG},
        {HUB_TWIN_OP_SERVICE_PATCH, "{\"properties\":{\"desired\":\"x\"}}", HUB_E_INVALID_ARG},
        {HUB_TWIN_OP_SERVICE_PATCH, "{\"properties\":{\"desired\":{\"$x\":1}}}", HUB_E_INVALID_ARG},
        {HUB_TWIN_OP_SERVICE_REPLACE, "{\"tags\":{\"a\":null}}", HUB_E_INVALID_ARG},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct hub_twin_request *r = NULL;
        struct hub_err err = {0};
        int rc =
            hub_twin_request_parse(cases[i].op, cases[i].text, strlen(cases[i].text), &r, &err);
        if (rc != cases[i].rc)
            fail_msg("case %zu '%s': rc %s (%s)", i, cases[i].text, hub_err_name(rc), err.msg);
        assert_null(r);
    }
    /* Over the request cap: refused before parsing. */
    size_t n = HUB_TWIN_REQUEST_MAX_BYTES + 1;
    char *big = malloc(n);
    assert_non_null(big);
    memset(big, ' ', n);
    struct hub_twin_request *r = NULL;
    struct hub_err err = {0};
    assert_int_equal(hub_twin_request_parse(HUB_TWIN_OP_REPORTED_PATCH, big, n, &r, &err),
                     HUB_E_TOO_LARGE);
    free(big);
}

static void test_service_patch_and_notification(void **state)
{
    (void)state;
    struct hub_twin *t = twin_new(T0);
    struct hub_err err = {0};
    struct hub_twin_request *r =
        parse(HUB_TWIN_OP_SERVICE_PATCH,
              "{\"deviceId\":\"ignored\",\"etag\":\"x\",\"tags\":{\"site\":\"a\"},"
              "\"properties\":{\"desired\":{\"fw\":\"1.0\",\"$version\":99,\"$metadata\":{}},"
              "\"reported\":{\"ignored\":1}}}");
    assert_true(hub_twin_request_touches_desired(r));
    json_t *note = NULL;
    assert_int_equal(hub_twin_request_apply(t, r, T1, &note, &err), 0);
    assert_json_eq(t->tags, "{\"site\":\"a\"}");
    assert_json_eq(t->desired, "{\"fw\":\"1.0\"}");
    assert_json_eq(t->reported, "{}");
    assert_int_equal(t->version, 2);
    assert_int_equal(t->desired_version, 2);
    assert_json_eq(note, "{\"fw\":\"1.0\",\"$version\":2}");
    json_decref(note);
    hub_twin_request_free(r);

    /* Tags only: desired untouched, no notification. */
    r = parse(HUB_TWIN_OP_SERVICE_PATCH, "{\"tags\":{\"site\":null,\"b\":1}}");
    assert_false(hub_twin_request_touches_desired(r));
    assert_int_equal(hub_twin_request_apply(t, r, T1, &note, &err), 0);
    assert_null(note);
    assert_json_eq(t->tags, "{\"b\":1}");
    assert_int_equal(t->desired_version, 2);
    assert_int_equal(t->version, 3);
    hub_twin_request_free(r);

    /* An empty PATCH changes nothing, not even the version. */
    r = parse(HUB_TWIN_OP_SERVICE_PATCH, "{}");
    assert_int_equal(hub_twin_request_apply(t, r, T1, &note, &err), 0);
    assert_int_equal(t->version, 3);
    hub_twin_request_free(r);

    /* Desired deletion: the notification carries the null. */
    r = parse(HUB_TWIN_OP_SERVICE_PATCH, "{\"properties\":{\"desired\":{\"fw\":null}}}");
    assert_int_equal(hub_twin_request_apply(t, r, T1, &note, &err), 0);
    assert_json_eq(note, "{\"fw\":null,\"$version\":3}");
    json_decref(note);
    hub_twin_request_free(r);
    hub_twin_free(t);
}

static void test_replace(void **state)
{
    (void)state;
    struct hub_twin *t = twin_new(T0);
    struct hub_err err = {0};
    merge_ok(t, HUB_TWIN_DESIRED, "{\"a\":1,\"o\":{\"x\":1,\"y\":2},\"keep\":true}", T0);
    merge_ok(t, HUB_TWIN_TAGS, "{\"t\":1}", T0);
    merge_ok(t, HUB_TWIN_REPORTED, "{\"r\":1}", T0);
    struct hub_twin_request *r =
        parse(HUB_TWIN_OP_SERVICE_REPLACE,
              "{\"properties\":{\"desired\":{\"o\":{\"x\":1,\"y\":3},\"keep\":true,\"n\":0}}}");
    json_t *note = NULL;
    assert_int_equal(hub_twin_request_apply(t, r, T1, &note, &err), 0);
    assert_json_eq(t->desired, "{\"o\":{\"x\":1,\"y\":3},\"keep\":true,\"n\":0}");
    assert_json_eq(t->tags, "{}"); /* missing tags in a PUT become {} */
    assert_json_eq(t->reported, "{\"r\":1}");
    assert_int_equal(t->desired_version, 3);
    assert_int_equal(t->reported_version, 2);
    /* The notification is the diff, deletions as null. */
    assert_json_eq(note, "{\"a\":null,\"o\":{\"y\":3},\"n\":0,\"$version\":3}");
    /* Metadata rebuilt for the new section only. */
    assert_null(json_object_get(t->desired_meta, "a"));
    assert_json_eq(json_object_get(json_object_get(t->desired_meta, "o"), "y"),
                   "{\"$lastUpdated\":\"2025-06-15T15:08:20Z\",\"$lastUpdatedVersion\":3}");
    json_decref(note);
    hub_twin_request_free(r);
    hub_twin_free(t);
}

static void test_reported_request(void **state)
{
    (void)state;
    struct hub_twin *t = twin_new(T0);
    struct hub_err err = {0};
    struct hub_twin_request *r = parse(HUB_TWIN_OP_REPORTED_PATCH, "{\"temp\":21.5}");
    assert_false(hub_twin_request_touches_desired(r));
    json_t *note = (json_t *)1;
    assert_int_equal(hub_twin_request_apply(t, r, T1, &note, &err), 0);
    assert_null(note);
    assert_int_equal(t->reported_version, 2);
    assert_json_eq(t->reported, "{\"temp\":21.5}");
    hub_twin_request_free(r);
    hub_twin_free(t);
}

static void test_diff(void **state)
{
    (void)state;
    static const struct {
        const char *from, *to, *diff;
    } cases[] = {
        {"{}", "{}", "{}"},
        {"{\"a\":1}", "{\"a\":1}", "{}"},
        {"{\"a\":1}", "{}", "{\"a\":null}"},
        {"{\"a\":{\"b\":1,\"c\":2}}", "{\"a\":{\"b\":1}}", "{\"a\":{\"c\":null}}"},
        {"{\"a\":{\"b\":1}}", "{\"a\":5}", "{\"a\":5}"},
        {"{\"a\":[1]}", "{\"a\":[2]}", "{\"a\":[2]}"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *f = J(cases[i].from), *to = J(cases[i].to);
        json_t *d = hub_twin_json_diff(f, to);
        assert_json_eq(d, cases[i].diff);
        /* Applying the diff to `from` gives `to`. */
        struct hub_twin *t = twin_new(T0);
        json_decref(t->desired);
        t->desired = json_deep_copy(f);
        struct hub_err err = {0};
        assert_int_equal(hub_twin_section_merge(t, HUB_TWIN_DESIRED, d, T1, &err), 0);
        assert_true(json_equal(t->desired, to));
        hub_twin_free(t);
        json_decref(d);
        json_decref(f);
        json_decref(to);
    }
}

/* ---- wire shapes and storage ------------------------------------------------------- */

static void test_service_json_shape(void **state)
{
    (void)state;
    struct hub_twin *t = twin_new(T0);
    merge_ok(t, HUB_TWIN_DESIRED, "{\"d\":1}", T0);
    merge_ok(t, HUB_TWIN_REPORTED, "{\"r\":2}", T0);
    merge_ok(t, HUB_TWIN_TAGS, "{\"t\":3}", T0);
    snprintf(t->etag, sizeof(t->etag), "AAAAAAAAAAE=");
    struct hub_device dev;
    memset(&dev, 0, sizeof(dev));
    snprintf(dev.id, sizeof(dev.id), "dev1");
    snprintf(dev.etag, sizeof(dev.etag), "devetag");
    dev.status = HUB_DEVICE_ENABLED;
    dev.status_updated = T0;
    dev.auth_type = HUB_AUTH_CERT_AUTHORITY;
    dev.c2d_count = 2;
    json_t *j = hub_twin_service_json_new(t, &dev);
    assert_non_null(j);
    assert_json_eq(
        j, "{\"deviceId\":\"dev1\",\"etag\":\"AAAAAAAAAAE=\",\"deviceEtag\":\"devetag\","
           "\"status\":\"enabled\",\"statusReason\":null,"
           "\"statusUpdateTime\":\"2025-06-15T15:06:40Z\",\"connectionState\":\"Disconnected\","
           "\"lastActivityTime\":\"0001-01-01T00:00:00Z\",\"cloudToDeviceMessageCount\":2,"
           "\"authenticationType\":\"certificateAuthority\","
           "\"x509Thumbprint\":{\"primaryThumbprint\":null,\"secondaryThumbprint\":null},"
           "\"modelId\":\"\",\"version\":4,\"tags\":{\"t\":3},"
           "\"properties\":{"
           " \"desired\":{\"d\":1,\"$metadata\":{\"$lastUpdated\":\"2025-06-15T15:06:40Z\","
           "  \"$lastUpdatedVersion\":2,\"d\":{\"$lastUpdated\":\"2025-06-15T15:06:40Z\","
           "  \"$lastUpdatedVersion\":2}},\"$version\":2},"
           " \"reported\":{\"r\":2,\"$metadata\":{\"$lastUpdated\":\"2025-06-15T15:06:40Z\","
           "  \"r\":{\"$lastUpdated\":\"2025-06-15T15:06:40Z\"}},\"$version\":2}},"
           "\"capabilities\":{\"iotEdge\":false},\"x509CertificateExpiry\":null}");
    json_decref(j);
    /* once the device connected with a certificate: its notAfter, ISO-8601 */
    dev.x509_not_after = T0;
    j = hub_twin_service_json_new(t, &dev);
    assert_string_equal(json_string_value(json_object_get(j, "x509CertificateExpiry")),
                        "2025-06-15T15:06:40Z");
    /* Azure's field order, which captures are compared against by eye. */
    char *text = json_dumps(j, JSON_COMPACT);
    assert_true(strncmp(text, "{\"deviceId\":\"dev1\",\"etag\":", 26) == 0);
    free(text);
    json_decref(j);

    j = hub_twin_device_json_new(t);
    assert_json_eq(j,
                   "{\"desired\":{\"d\":1,\"$version\":2},\"reported\":{\"r\":2,\"$version\":2}}");
    json_decref(j);
    j = hub_twin_desired_json_new(t);
    assert_json_eq(j, "{\"d\":1,\"$version\":2}");
    json_decref(j);
    hub_twin_free(t);
}

static void test_storage_round_trip(void **state)
{
    (void)state;
    struct hub_twin *t = twin_new(T0);
    merge_ok(t, HUB_TWIN_DESIRED, "{\"d\":{\"e\":[1,2]}}", T0);
    merge_ok(t, HUB_TWIN_REPORTED, "{\"r\":\"caf\xc3\xa9\"}", T1);
    merge_ok(t, HUB_TWIN_TAGS, "{\"t\":true}", T1);
    struct hub_twin_text text;
    struct hub_err err = {0};
    assert_int_equal(hub_twin_encode(t, &text, &err), 0);
    assert_string_equal(text.tags, "{\"t\":true}");
    assert_string_equal(text.desired, "{\"d\":{\"e\":[1,2]}}");

    struct hub_twin *back = twin_new(0);
    assert_int_equal(hub_twin_decode(back, text.tags, text.desired, text.desired_meta,
                                     text.reported, text.reported_meta, &err),
                     0);
    assert_true(json_equal(back->tags, t->tags));
    assert_true(json_equal(back->desired, t->desired));
    assert_true(json_equal(back->desired_meta, t->desired_meta));
    assert_true(json_equal(back->reported, t->reported));
    assert_true(json_equal(back->reported_meta, t->reported_meta));

    /* Damaged text is refused and leaves the twin as it was. */
    assert_int_equal(hub_twin_decode(back, "[]", text.desired, text.desired_meta, text.reported,
                                     text.reported_meta, &err),
                     HUB_E_STORE);
    assert_int_equal(hub_twin_decode(back, text.tags, "{", text.desired_meta, text.reported,
                                     text.reported_meta, &err),
                     HUB_E_STORE);
    assert_true(json_equal(back->tags, t->tags));
    hub_twin_text_clear(&text);
    hub_twin_text_clear(&text); /* twice is fine */

    struct hub_twin *copy = NULL;
    assert_int_equal(hub_twin_copy(t, &copy, &err), 0);
    merge_ok(copy, HUB_TWIN_TAGS, "{\"t\":null}", T1);
    assert_json_eq(t->tags, "{\"t\":true}"); /* deep, not shared */
    hub_twin_free(copy);
    hub_twin_free(back);
    hub_twin_free(t);
    hub_twin_free(NULL);
    hub_twin_request_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_merge_table),
        cmocka_unit_test(test_new_twin),
        cmocka_unit_test(test_versions_bump_per_patch),
        cmocka_unit_test(test_metadata_per_property),
        cmocka_unit_test(test_size_limits),
        cmocka_unit_test(test_size_limit_cumulative),
        cmocka_unit_test(test_depth_limits),
        cmocka_unit_test(test_bad_keys_and_values),
        cmocka_unit_test(test_request_parse_errors),
        cmocka_unit_test(test_service_patch_and_notification),
        cmocka_unit_test(test_replace),
        cmocka_unit_test(test_reported_request),
        cmocka_unit_test(test_diff),
        cmocka_unit_test(test_service_json_shape),
        cmocka_unit_test(test_storage_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
