/*
 * twin: the document model, validation and JSON merge patch (contract and
 * rules in twin.h).
 *
 * Every change is computed on copies of the sections it touches and swapped
 * in only once every limit has passed, so a refused patch leaves the twin as
 * it was. Recursion is bounded: requests are checked against the depth
 * limits (10) before any merge, and jansson itself refuses input nested
 * deeper than its parser's limit.
 */
#include "twin/twin_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

/* ---- model ---------------------------------------------------------------- */

size_t hub_twin__compact_size(const json_t *v)
{
    return json_dumpb(v, NULL, 0, JSON_COMPACT);
}

json_t *hub_twin__stamp_new(int64_t now, int64_t version)
{
    char when[HUB_TIME_ISO_LEN];
    hub_time_iso8601((time_t)now, when);
    json_t *m = json_object();
    if (m == NULL || json_object_set_new(m, HUB_TWIN__LAST_UPDATED, json_string(when)) != 0 ||
        (version > 0 && json_object_set_new(m, HUB_TWIN__LAST_UPDATED_VERSION,
                                            json_integer((json_int_t)version)) != 0)) {
        json_decref(m);
        return NULL;
    }
    return m;
}

/* Sets the stamp fields of an existing metadata node (its children stay). */
static int stamp_set(json_t *meta, int64_t now, int64_t version)
{
    json_t *s = hub_twin__stamp_new(now, version);
    if (s == NULL)
        return -1;
    int rc = json_object_update(meta, s);
    json_decref(s);
    return rc;
}

void hub_twin_free(struct hub_twin *twin)
{
    if (twin == NULL)
        return;
    json_decref(twin->tags);
    json_decref(twin->desired);
    json_decref(twin->desired_meta);
    json_decref(twin->reported);
    json_decref(twin->reported_meta);
    free(twin);
}

int hub_twin_new(int64_t now, struct hub_twin **out_new, struct hub_err *err)
{
    struct hub_twin *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return HUB_ERR(err, HUB_E_NOMEM, "out of memory creating a twin");
    t->tags = json_object();
    t->desired = json_object();
    t->reported = json_object();
    t->desired_meta = hub_twin__stamp_new(now, 1);
    t->reported_meta = hub_twin__stamp_new(now, 0);
    if (t->tags == NULL || t->desired == NULL || t->reported == NULL || t->desired_meta == NULL ||
        t->reported_meta == NULL) {
        hub_twin_free(t);
        return HUB_ERR(err, HUB_E_NOMEM, "out of memory creating a twin");
    }
    t->desired_version = 1;
    t->reported_version = 1;
    t->version = 1;
    *out_new = t;
    return 0;
}

int hub_twin_copy(const struct hub_twin *twin, struct hub_twin **out_new, struct hub_err *err)
{
    struct hub_twin *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return HUB_ERR(err, HUB_E_NOMEM, "out of memory copying a twin");
    *t = *twin;
    t->tags = json_deep_copy(twin->tags);
    t->desired = json_deep_copy(twin->desired);
    t->desired_meta = json_deep_copy(twin->desired_meta);
    t->reported = json_deep_copy(twin->reported);
    t->reported_meta = json_deep_copy(twin->reported_meta);
    if (t->tags == NULL || t->desired == NULL || t->reported == NULL || t->desired_meta == NULL ||
        t->reported_meta == NULL) {
        hub_twin_free(t);
        return HUB_ERR(err, HUB_E_NOMEM, "out of memory copying a twin");
    }
    *out_new = t;
    return 0;
}

const char *hub_twin_section_name(enum hub_twin_section s)
{
    switch (s) {
    case HUB_TWIN_TAGS:
        return "tags";
    case HUB_TWIN_DESIRED:
        return "desired properties";
    case HUB_TWIN_REPORTED:
        return "reported properties";
    }
    return "unknown section";
}

static size_t section_max_bytes(enum hub_twin_section s)
{
    switch (s) {
    case HUB_TWIN_TAGS:
        return HUB_TWIN_TAGS_MAX_BYTES;
    case HUB_TWIN_DESIRED:
        return HUB_TWIN_DESIRED_MAX_BYTES;
    case HUB_TWIN_REPORTED:
        return HUB_TWIN_REPORTED_MAX_BYTES;
    }
    return 0;
}

static int section_max_depth(enum hub_twin_section s)
{
    return s == HUB_TWIN_TAGS ? HUB_TWIN_TAGS_MAX_DEPTH : HUB_TWIN_PROPS_MAX_DEPTH;
}

/* ---- validation ------------------------------------------------------------ */

/* The key path of the value being checked, for messages: "a.b[3].c",
 * truncated (with "...") if long. */
struct path {
    char buf[160];
    size_t len;
};

/* Appends ".key" (or "key" at the start) or "[index]" (key NULL). */
static size_t path_push(struct path *p, const char *key, size_t index)
{
    size_t old = p->len;
    if (p->len < sizeof(p->buf) - 1) {
        size_t room = sizeof(p->buf) - p->len;
        int n = key == NULL ? snprintf(p->buf + p->len, room, "[%zu]", index)
                : p->len    ? snprintf(p->buf + p->len, room, ".%s", key)
                            : snprintf(p->buf + p->len, room, "%s", key);
        if (n > 0)
            p->len += (size_t)n;
        if (p->len >= sizeof(p->buf) - 1) {
            p->len = sizeof(p->buf) - 1;
            memcpy(p->buf + sizeof(p->buf) - 4, "...", 4);
        }
    }
    return old;
}

static void path_pop(struct path *p, size_t old)
{
    p->len = old;
    p->buf[old] = '\0';
}

/* Azure's key rules: 1..1024 bytes, no '.', '$', ' ', no C0/DEL/C1 control. */
static int key_check(const char *key, size_t n, enum hub_twin_section s, const struct path *at,
                     struct hub_err *err)
{
    const char *where = at->len ? at->buf : "the top level";
    if (n == 0)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "%s: empty property name under %s",
                       hub_twin_section_name(s), where);
    if (n > HUB_TWIN_KEY_MAX_BYTES)
        return HUB_ERR(err, HUB_E_INVALID_ARG,
                       "%s: a property name under %s is %zu bytes, over the %d-byte limit",
                       hub_twin_section_name(s), where, n, HUB_TWIN_KEY_MAX_BYTES);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)key[i];
        bool c1 = c == 0xC2 && i + 1 < n && (unsigned char)key[i + 1] >= 0x80 &&
                  (unsigned char)key[i + 1] <= 0x9F;
        if (c == '.' || c == '$' || c == ' ' || c < 0x20 || c == 0x7F || c1)
            return HUB_ERR(err, HUB_E_INVALID_ARG,
                           "%s: property name '%.64s' under %s contains a forbidden character "
                           "(names may not contain '.', '$', space or control characters)",
                           hub_twin_section_name(s), key, where);
    }
    return 0;
}

/*
 * Checks `v`, found at `level` (a section's top-level values are at level 1),
 * against the rules: keys, string length, depth. `null_ok`: a null member of
 * an object is a deletion (patches). Arrays may hold anything but their
 * objects' keys follow the rules too.
 */
static int value_check(const json_t *v, int level, enum hub_twin_section s, bool null_ok,
                       struct path *at, struct hub_err *err)
{
    int max = section_max_depth(s);
    switch (json_typeof(v)) {
    case JSON_STRING:
        if (json_string_length(v) > HUB_TWIN_STRING_MAX_BYTES)
            return HUB_ERR(err, HUB_E_INVALID_ARG,
                           "%s: the string at %s is %zu bytes, over the %d-byte limit",
                           hub_twin_section_name(s), at->buf, json_string_length(v),
                           HUB_TWIN_STRING_MAX_BYTES);
        return 0;
    case JSON_INTEGER:
    case JSON_REAL:
    case JSON_TRUE:
    case JSON_FALSE:
        return 0;
    case JSON_NULL:
        if (null_ok)
            return 0;
        return HUB_ERR(err, HUB_E_INVALID_ARG, "%s: null is not a value (at %s)",
                       hub_twin_section_name(s), at->buf);
    case JSON_ARRAY:
    case JSON_OBJECT:
        break;
    }
    /* This value opens level+1 for its members. */
    if (level + 1 > max && (json_is_object(v) ? json_object_size(v) : json_array_size(v)) > 0)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "%s: nesting at %s is deeper than %d levels",
                       hub_twin_section_name(s), at->buf, max);
    if (json_is_array(v)) {
        size_t i;
        const json_t *e;
        json_array_foreach(v, i, e)
        {
            size_t old = path_push(at, NULL, i);
            /* Inside an array null is an element, not a deletion. */
            int rc = value_check(e, level + 1, s, true, at, err);
            path_pop(at, old);
            if (rc != 0)
                return rc;
        }
        return 0;
    }
    const char *k;
    size_t klen;
    const json_t *m;
    json_object_keylen_foreach((json_t *)v, k, klen, m)
    {
        int rc = key_check(k, klen, s, at, err);
        if (rc != 0)
            return rc;
        size_t old = path_push(at, k, 0);
        rc = value_check(m, level + 1, s, null_ok, at, err);
        path_pop(at, old);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* Checks a whole section value (root object) for `s`. */
static int section_check(const json_t *obj, enum hub_twin_section s, bool null_ok,
                         struct hub_err *err)
{
    if (!json_is_object(obj))
        return HUB_ERR(err, HUB_E_INVALID_ARG, "%s must be a JSON object",
                       hub_twin_section_name(s));
    struct path at;
    at.len = 0;
    at.buf[0] = '\0';
    /* The root object is level 0: its members are at level 1. */
    const char *k;
    size_t klen;
    const json_t *m;
    json_object_keylen_foreach((json_t *)obj, k, klen, m)
    {
        int rc = key_check(k, klen, s, &at, err);
        if (rc != 0)
            return rc;
        size_t old = path_push(&at, k, 0);
        rc = value_check(m, 1, s, null_ok, &at, err);
        path_pop(&at, old);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* ---- merge ------------------------------------------------------------------ */

/*
 * RFC 7396 merge of `patch` (object) into `target` (object), keeping `meta`
 * (the metadata node of target; NULL for tags) in step: touched nodes are
 * stamped, deleted ones lose theirs. Returns 0 or -1 (NOMEM).
 */
static int merge_into(json_t *target, json_t *meta, const json_t *patch, int64_t now,
                      int64_t version)
{
    const char *k;
    size_t klen;
    const json_t *pv;
    json_object_keylen_foreach((json_t *)patch, k, klen, pv)
    {
        if (json_is_null(pv)) {
            json_object_deln(target, k, klen);
            if (meta != NULL)
                json_object_deln(meta, k, klen);
            continue;
        }
        if (json_is_object(pv)) {
            json_t *cur = json_object_getn(target, k, klen);
            if (!json_is_object(cur)) {
                /* A new object, or a non-object replaced by one: merge into {}
                 * (which drops the patch's nulls) with fresh metadata. */
                cur = json_object();
                if (cur == NULL || json_object_setn_new(target, k, klen, cur) != 0)
                    return -1;
                if (meta != NULL && json_object_setn_new(meta, k, klen, json_object()) != 0)
                    return -1;
            }
            json_t *cur_meta = NULL;
            if (meta != NULL) {
                cur_meta = json_object_getn(meta, k, klen);
                if (!json_is_object(cur_meta)) {
                    cur_meta = json_object();
                    if (cur_meta == NULL || json_object_setn_new(meta, k, klen, cur_meta) != 0)
                        return -1;
                }
            }
            if (merge_into(cur, cur_meta, pv, now, version) != 0)
                return -1;
            if (cur_meta != NULL && stamp_set(cur_meta, now, version) != 0)
                return -1;
            continue;
        }
        json_t *copy = json_deep_copy(pv);
        if (copy == NULL || json_object_setn_new(target, k, klen, copy) != 0)
            return -1;
        /* A leaf: its metadata is only the stamp (an object it replaced
         * takes its children's metadata with it). */
        if (meta != NULL &&
            json_object_setn_new(meta, k, klen, hub_twin__stamp_new(now, version)) != 0)
            return -1;
    }
    return 0;
}

/*
 * Computes section `s` of `twin` after merging `patch` (or, with `replace`,
 * after replacing it by `patch`), into *sec_new / *meta_new (meta NULL for
 * tags), checking the size limit. `version` is the section's new $version
 * (0 for tags). Nothing in twin changes.
 */
static int section_compute(const struct hub_twin *twin, enum hub_twin_section s,
                           const json_t *patch, bool replace, int64_t now, int64_t version,
                           json_t **sec_new, json_t **meta_new, struct hub_err *err)
{
    const json_t *cur = s == HUB_TWIN_TAGS      ? twin->tags
                        : s == HUB_TWIN_DESIRED ? twin->desired
                                                : twin->reported;
    const json_t *cur_meta = s == HUB_TWIN_TAGS      ? NULL
                             : s == HUB_TWIN_DESIRED ? twin->desired_meta
                                                     : twin->reported_meta;
    int64_t meta_version = s == HUB_TWIN_DESIRED ? version : 0;
    json_t *sec = replace ? json_object() : json_deep_copy(cur);
    json_t *meta = NULL;
    if (s != HUB_TWIN_TAGS)
        meta = replace || cur_meta == NULL ? json_object() : json_deep_copy(cur_meta);
    if (sec == NULL || (s != HUB_TWIN_TAGS && meta == NULL) ||
        merge_into(sec, meta, patch, now, meta_version) != 0 ||
        (meta != NULL && stamp_set(meta, now, meta_version) != 0)) {
        json_decref(sec);
        json_decref(meta);
        return HUB_ERR(err, HUB_E_NOMEM, "out of memory merging %s", hub_twin_section_name(s));
    }
    size_t size = hub_twin__compact_size(sec);
    size_t max = section_max_bytes(s);
    if (size > max) {
        json_decref(sec);
        json_decref(meta);
        return HUB_ERR(err, HUB_E_TOO_LARGE, "%s would be %zu bytes, over the %zu-byte limit",
                       hub_twin_section_name(s), size, max);
    }
    *sec_new = sec;
    *meta_new = meta;
    return 0;
}

/* Swaps computed sections into the twin (takes the references). */
static void section_commit(struct hub_twin *twin, enum hub_twin_section s, json_t *sec,
                           json_t *meta, int64_t version)
{
    switch (s) {
    case HUB_TWIN_TAGS:
        json_decref(twin->tags);
        twin->tags = sec;
        json_decref(meta);
        return;
    case HUB_TWIN_DESIRED:
        json_decref(twin->desired);
        json_decref(twin->desired_meta);
        twin->desired = sec;
        twin->desired_meta = meta;
        twin->desired_version = version;
        return;
    case HUB_TWIN_REPORTED:
        json_decref(twin->reported);
        json_decref(twin->reported_meta);
        twin->reported = sec;
        twin->reported_meta = meta;
        twin->reported_version = version;
        return;
    }
}

static int64_t section_next_version(const struct hub_twin *twin, enum hub_twin_section s)
{
    switch (s) {
    case HUB_TWIN_TAGS:
        return 0;
    case HUB_TWIN_DESIRED:
        return twin->desired_version + 1;
    case HUB_TWIN_REPORTED:
        return twin->reported_version + 1;
    }
    return 0;
}

int hub_twin_section_merge(struct hub_twin *twin, enum hub_twin_section s, const json_t *patch,
                           int64_t now, struct hub_err *err)
{
    if (s != HUB_TWIN_TAGS && s != HUB_TWIN_DESIRED && s != HUB_TWIN_REPORTED)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "unknown twin section %d", (int)s);
    int rc = section_check(patch, s, true, err);
    if (rc != 0)
        return rc;
    int64_t version = section_next_version(twin, s);
    json_t *sec = NULL, *meta = NULL;
    if ((rc = section_compute(twin, s, patch, false, now, version, &sec, &meta, err)) != 0)
        return rc;
    section_commit(twin, s, sec, meta, version);
    twin->version++;
    return 0;
}

/* ---- requests ----------------------------------------------------------------- */

struct hub_twin_request {
    enum hub_twin_op op;
    json_t *tags;     /* NULL: not in the request */
    json_t *desired;  /* NULL: not in the request */
    json_t *reported; /* REPORTED_PATCH only */
};

void hub_twin_request_free(struct hub_twin_request *req)
{
    if (req == NULL)
        return;
    json_decref(req->tags);
    json_decref(req->desired);
    json_decref(req->reported);
    free(req);
}

enum hub_twin_op hub_twin_request_op(const struct hub_twin_request *req)
{
    return req->op;
}

bool hub_twin_request_touches_desired(const struct hub_twin_request *req)
{
    return req->op == HUB_TWIN_OP_SERVICE_REPLACE || req->desired != NULL;
}

/* Takes member `key` of a service body: absent -> NULL, an object -> a copy,
 * anything else refused. */
static int service_member(const json_t *obj, const char *key, const char *what, json_t **out,
                          struct hub_err *err)
{
    const json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (v == NULL)
        return 0;
    if (!json_is_object(v))
        return HUB_ERR(err, HUB_E_INVALID_ARG, "%s must be a JSON object", what);
    *out = json_deep_copy(v);
    if (*out == NULL)
        return HUB_ERR(err, HUB_E_NOMEM, "out of memory reading a twin request");
    return 0;
}

static int service_parse(const json_t *root, struct hub_twin_request *req, struct hub_err *err)
{
    int rc = service_member(root, "tags", "tags", &req->tags, err);
    if (rc != 0)
        return rc;
    const json_t *props = json_object_get(root, "properties");
    if (props != NULL && !json_is_object(props))
        return HUB_ERR(err, HUB_E_INVALID_ARG, "properties must be a JSON object");
    if (props != NULL &&
        (rc = service_member(props, "desired", "properties.desired", &req->desired, err)) != 0)
        return rc;
    if (req->desired != NULL) {
        /* What a GET returned, sent back as is (e.g. a read-modify-write
         * client): the hub's own fields, not properties. */
        json_object_del(req->desired, "$metadata");
        json_object_del(req->desired, "$version");
    }
    bool nulls = req->op == HUB_TWIN_OP_SERVICE_PATCH;
    if (req->tags != NULL && (rc = section_check(req->tags, HUB_TWIN_TAGS, nulls, err)) != 0)
        return rc;
    if (req->desired != NULL &&
        (rc = section_check(req->desired, HUB_TWIN_DESIRED, nulls, err)) != 0)
        return rc;
    return 0;
}

int hub_twin_request_parse(enum hub_twin_op op, const char *json, size_t len,
                           struct hub_twin_request **out_new, struct hub_err *err)
{
    if (op != HUB_TWIN_OP_REPORTED_PATCH && op != HUB_TWIN_OP_SERVICE_PATCH &&
        op != HUB_TWIN_OP_SERVICE_REPLACE)
        return HUB_ERR(err, HUB_E_INVALID_ARG, "unknown twin operation %d", (int)op);
    if (len > HUB_TWIN_REQUEST_MAX_BYTES)
        return HUB_ERR(err, HUB_E_TOO_LARGE, "twin request is %zu bytes, over the %d-byte limit",
                       len, HUB_TWIN_REQUEST_MAX_BYTES);
    if (json == NULL || len == 0)
        return HUB_ERR(err, HUB_E_PARSE, "twin request is empty");
    json_error_t jerr;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL)
        return HUB_ERR(err, HUB_E_PARSE, "twin request is not JSON: %s (at byte %d)", jerr.text,
                       jerr.position);
    struct hub_twin_request *req = calloc(1, sizeof(*req));
    int rc = 0;
    if (req == NULL) {
        rc = HUB_ERR(err, HUB_E_NOMEM, "out of memory reading a twin request");
        goto free_root;
    }
    req->op = op;
    if (!json_is_object(root)) {
        rc = HUB_ERR(err, HUB_E_INVALID_ARG, "twin request must be a JSON object");
        goto free_req;
    }
    if (op == HUB_TWIN_OP_REPORTED_PATCH) {
        if ((rc = section_check(root, HUB_TWIN_REPORTED, true, err)) != 0)
            goto free_req;
        req->reported = json_incref(root);
    } else if ((rc = service_parse(root, req, err)) != 0) {
        goto free_req;
    }
    json_decref(root);
    *out_new = req;
    return 0;
free_req:
    hub_twin_request_free(req);
free_root:
    json_decref(root);
    return rc;
}

/* A copy of `patch` with "$version": version added (a notification body). */
static json_t *notification_new(const json_t *patch, int64_t version)
{
    json_t *body = json_deep_copy(patch);
    if (body == NULL || json_object_set_new(body, "$version", json_integer((json_int_t)version))) {
        json_decref(body);
        return NULL;
    }
    return body;
}

int hub_twin_request_apply(struct hub_twin *twin, const struct hub_twin_request *req, int64_t now,
                           json_t **desired_patch_new, struct hub_err *err)
{
    if (desired_patch_new != NULL)
        *desired_patch_new = NULL;
    int rc = 0;
    if (req->op == HUB_TWIN_OP_REPORTED_PATCH) {
        int64_t v = twin->reported_version + 1;
        json_t *sec = NULL, *meta = NULL;
        rc = section_compute(twin, HUB_TWIN_REPORTED, req->reported, false, now, v, &sec, &meta,
                             err);
        if (rc != 0)
            return rc;
        section_commit(twin, HUB_TWIN_REPORTED, sec, meta, v);
        twin->version++;
        return 0;
    }

    bool replace = req->op == HUB_TWIN_OP_SERVICE_REPLACE;
    if (!replace && req->tags == NULL && req->desired == NULL)
        return 0; /* an empty PATCH changes nothing */
    json_t *empty = json_object();
    if (empty == NULL)
        return HUB_ERR(err, HUB_E_NOMEM, "out of memory applying a twin request");
    const json_t *tags_in = req->tags != NULL ? req->tags : empty;
    const json_t *desired_in = req->desired != NULL ? req->desired : empty;
    bool do_tags = replace || req->tags != NULL;
    bool do_desired = replace || req->desired != NULL;
    int64_t dv = twin->desired_version + 1;
    json_t *tags = NULL, *tags_meta = NULL, *desired = NULL, *desired_meta = NULL, *note = NULL;
    if (do_tags && (rc = section_compute(twin, HUB_TWIN_TAGS, tags_in, replace, now, 0, &tags,
                                         &tags_meta, err)) != 0)
        goto free_all;
    if (do_desired && (rc = section_compute(twin, HUB_TWIN_DESIRED, desired_in, replace, now, dv,
                                            &desired, &desired_meta, err)) != 0)
        goto free_all;
    if (do_desired && desired_patch_new != NULL) {
        json_t *diff = replace ? hub_twin_json_diff(twin->desired, desired) : NULL;
        note = notification_new(replace ? diff : desired_in, dv);
        json_decref(diff);
        if (note == NULL) {
            rc = HUB_ERR(err, HUB_E_NOMEM, "out of memory applying a twin request");
            goto free_all;
        }
    }
    if (do_tags)
        section_commit(twin, HUB_TWIN_TAGS, tags, tags_meta, 0);
    if (do_desired)
        section_commit(twin, HUB_TWIN_DESIRED, desired, desired_meta, dv);
    twin->version++;
    if (desired_patch_new != NULL)
        *desired_patch_new = note;
    json_decref(empty);
    return 0;
free_all:
    json_decref(tags);
    json_decref(tags_meta);
    json_decref(desired);
    json_decref(desired_meta);
    json_decref(empty);
    return rc;
}

/* ---- diff ----------------------------------------------------------------------- */

json_t *hub_twin_json_diff(const json_t *from, const json_t *to)
{
    json_t *d = json_object();
    if (d == NULL)
        return NULL;
    const char *k;
    size_t klen;
    const json_t *v;
    json_object_keylen_foreach((json_t *)from, k, klen, v)
    {
        if (json_object_getn(to, k, klen) == NULL &&
            json_object_setn_new(d, k, klen, json_null()) != 0)
            goto fail;
    }
    json_object_keylen_foreach((json_t *)to, k, klen, v)
    {
        const json_t *old = json_object_getn(from, k, klen);
        json_t *entry = NULL;
        if (json_is_object(old) && json_is_object(v)) {
            entry = hub_twin_json_diff(old, v);
            if (entry == NULL)
                goto fail;
            if (json_object_size(entry) == 0) {
                json_decref(entry);
                continue;
            }
        } else if (old != NULL && json_equal(old, v)) {
            continue;
        } else {
            entry = json_deep_copy(v);
            if (entry == NULL)
                goto fail;
        }
        if (json_object_setn_new(d, k, klen, entry) != 0)
            goto fail;
    }
    return d;
fail:
    json_decref(d);
    return NULL;
}
