/*
 * registry: device twins (contract in registry.h; document rules in
 * twin/twin.h; storage in store.h).
 *
 * Every change is: read the row (creating it on first access), apply the
 * parsed request to the decoded twin, give it a fresh etag, and write it
 * back conditional on the etag read. A lost race means another writer
 * committed in between: a conditional caller (a real If-Match) gets
 * ETAG_MISMATCH, anyone else re-reads and re-applies the same parsed
 * request, so a reported patch and a desired patch racing each other both
 * land. The desired notification body is logged in the same transaction as
 * the change, so what the device endpoint sends cannot disagree with what
 * was stored.
 */
#include "registry/registry_int.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/util.h"

/* After a lost race: wait a little, randomly, so writers that keep
 * colliding (same read, same write) fall out of step. Up to ~2.5 ms. */
static void backoff(int attempt)
{
    unsigned char r = 0;
    if (hub_random_bytes(&r, 1, NULL) != 0)
        r = (unsigned char)(attempt * 37);
    long us = (long)(r % 64 + 1) * (attempt < 4 ? attempt + 1 : 4) * 10;
    struct timespec ts = {0, us * 1000L};
    nanosleep(&ts, NULL);
}

/* Decodes a stored row into a new twin. */
static int twin_from_rec(const struct hub_twin_rec *rec, struct hub_twin **out_new,
                         struct hub_err *err)
{
    struct hub_twin *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return HUB_ERR(err, HUB_E_NOMEM, "out of memory reading a twin");
    int rc = hub_twin_decode(t, rec->tags, rec->desired, rec->desired_meta, rec->reported,
                             rec->reported_meta, err);
    if (rc != 0) {
        hub_twin_free(t);
        return rc;
    }
    t->version = rec->version;
    t->desired_version = rec->desired_version;
    t->reported_version = rec->reported_version;
    memcpy(t->etag, rec->etag, sizeof(t->etag));
    *out_new = t;
    return 0;
}

/* Writes `twin` for device `id`: insert when old_etag is NULL, else CAS. */
static int twin_store(struct hub_registry *reg, const char *id, const struct hub_twin *twin,
                      const char *old_etag, const char *desired_note, struct hub_err *err)
{
    struct hub_twin_text text;
    int rc = hub_twin_encode(twin, &text, err);
    if (rc != 0)
        return rc;
    struct hub_twin_rec rec;
    memset(&rec, 0, sizeof(rec));
    memcpy(rec.device_id, id, strlen(id) + 1);
    memcpy(rec.etag, twin->etag, sizeof(rec.etag));
    rec.version = twin->version;
    rec.desired_version = twin->desired_version;
    rec.reported_version = twin->reported_version;
    rec.tags = text.tags;
    rec.desired = text.desired;
    rec.desired_meta = text.desired_meta;
    rec.reported = text.reported;
    rec.reported_meta = text.reported_meta;
    rec.updated = hub_registry__now(reg);
    rc = hub_store_twin_write(reg->store, &rec, old_etag, desired_note, err);
    hub_twin_text_clear(&text);
    return rc;
}

/*
 * The current twin of `id`, stored first if the device never had one.
 * *twin_new is the caller's.
 */
static int twin_load(struct hub_registry *reg, const char *id, struct hub_twin **twin_new,
                     struct hub_err *err)
{
    /* Two rounds at most: a lost insert race means the row now exists. */
    for (int round = 0; round < 2; round++) {
        struct hub_twin_rec rec;
        int rc = hub_store_twin_get(reg->store, id, &rec, err);
        if (rc != 0)
            return rc;
        if (rec.version > 0) {
            rc = twin_from_rec(&rec, twin_new, err);
            hub_twin_rec_clear(&rec);
            return rc;
        }
        hub_twin_rec_clear(&rec);
        struct hub_twin *t = NULL;
        if ((rc = hub_twin_new(hub_registry__now(reg), &t, err)) != 0)
            return rc;
        if ((rc = hub_registry__etag_new(NULL, t->etag, err)) != 0 ||
            (rc = twin_store(reg, id, t, NULL, NULL, err)) != 0) {
            if (rc == HUB_E_IO) {
                /* The disk cannot take the new row (full, read-only): a read
                 * still answers, with the empty twin it would have stored; a
                 * write fails at its own store call. */
                hub_err_clear(err);
                *twin_new = t;
                return 0;
            }
            hub_twin_free(t);
            if (rc == HUB_E_EXISTS)
                continue;
            return rc;
        }
        *twin_new = t;
        return 0;
    }
    return HUB_ERR(err, HUB_E_BUSY, "twin of device '%s' keeps changing", id);
}

int hub_registry_twin_get1(struct hub_registry *reg, const char *id, struct hub_twin **twin_new,
                           struct hub_device *dev_out, struct hub_err *err)
{
    int rc = hub_registry_device_id_check(id, err);
    if (rc != 0)
        return rc;
    struct hub_twin *t = NULL;
    if ((rc = twin_load(reg, id, &t, err)) != 0)
        return rc;
    if (dev_out != NULL && (rc = hub_store_device_get(reg->store, id, dev_out, err)) != 0) {
        hub_twin_free(t);
        return rc;
    }
    *twin_new = t;
    return 0;
}

/*
 * Applies `req` to device `id`'s twin with compare-and-swap, retrying lost
 * races unless the caller named an etag. On success *twin_new (may be NULL)
 * gets the stored twin.
 */
static int twin_change(struct hub_registry *reg, const char *id, const struct hub_twin_request *req,
                       const char *if_match, struct hub_twin **twin_new, struct hub_err *err)
{
    const char *cond = hub_registry__if_match(if_match);
    for (int attempt = 0; attempt < HUB_REGISTRY_TWIN_CAS_TRIES; attempt++) {
        struct hub_twin *t = NULL;
        int rc = twin_load(reg, id, &t, err);
        if (rc != 0)
            return rc;
        if (cond != NULL && strcmp(cond, t->etag) != 0) {
            rc = HUB_ERR(err, HUB_E_ETAG_MISMATCH, "twin of device '%s' has changed (etag %s)", id,
                         t->etag);
            hub_twin_free(t);
            return rc;
        }
        char old_etag[HUB_ETAG_SIZE];
        memcpy(old_etag, t->etag, sizeof(old_etag));
        int64_t old_version = t->version;
        json_t *note = NULL;
        if ((rc = hub_twin_request_apply(t, req, hub_registry__now(reg), &note, err)) != 0) {
            hub_twin_free(t);
            return rc;
        }
        if (t->version == old_version) {
            /* Nothing to change (an empty service PATCH): no write, no new etag. */
            if (twin_new != NULL)
                *twin_new = t;
            else
                hub_twin_free(t);
            return 0;
        }
        char *note_text = NULL;
        bool desired_changed = note != NULL;
        if (note != NULL) {
            note_text = json_dumps(note, JSON_COMPACT);
            json_decref(note);
            if (note_text == NULL) {
                hub_twin_free(t);
                return HUB_ERR(err, HUB_E_NOMEM, "out of memory writing a twin");
            }
        }
        if ((rc = hub_registry__etag_new(old_etag, t->etag, err)) == 0)
            rc = twin_store(reg, id, t, old_etag, note_text, err);
        free(note_text);
        if (rc == HUB_E_ETAG_MISMATCH && cond == NULL) {
            hub_twin_free(t); /* someone else committed first: apply to theirs */
            backoff(attempt);
            continue;
        }
        if (rc != 0) {
            hub_twin_free(t);
            return rc;
        }
        if (desired_changed)
            hub_registry__notify(reg, HUB_REGISTRY_TWIN_DESIRED_CHANGED, id);
        if (twin_new != NULL)
            *twin_new = t;
        else
            hub_twin_free(t);
        return 0;
    }
    return HUB_ERR(err, HUB_E_BUSY, "twin of device '%s' changed %d times while being written", id,
                   HUB_REGISTRY_TWIN_CAS_TRIES);
}

static int service_write(struct hub_registry *reg, enum hub_twin_op op, const char *id,
                         const char *json, size_t len, const char *if_match,
                         struct hub_twin **twin_new, struct hub_device *dev_out,
                         struct hub_err *err)
{
    int rc = hub_registry_device_id_check(id, err);
    if (rc != 0)
        return rc;
    struct hub_twin_request *req = NULL;
    if ((rc = hub_twin_request_parse(op, json, len, &req, err)) != 0)
        return rc;
    struct hub_twin *t = NULL;
    rc = twin_change(reg, id, req, if_match, twin_new != NULL ? &t : NULL, err);
    hub_twin_request_free(req);
    if (rc != 0)
        return rc;
    if (dev_out != NULL && (rc = hub_store_device_get(reg->store, id, dev_out, err)) != 0) {
        hub_twin_free(t);
        return rc;
    }
    if (twin_new != NULL)
        *twin_new = t;
    return 0;
}

int hub_registry_twin_patch(struct hub_registry *reg, const char *id, const char *json, size_t len,
                            const char *if_match, struct hub_twin **twin_new,
                            struct hub_device *dev_out, struct hub_err *err)
{
    return service_write(reg, HUB_TWIN_OP_SERVICE_PATCH, id, json, len, if_match, twin_new, dev_out,
                         err);
}

int hub_registry_twin_replace(struct hub_registry *reg, const char *id, const char *json,
                              size_t len, const char *if_match, struct hub_twin **twin_new,
                              struct hub_device *dev_out, struct hub_err *err)
{
    return service_write(reg, HUB_TWIN_OP_SERVICE_REPLACE, id, json, len, if_match, twin_new,
                         dev_out, err);
}

int hub_registry_twin_reported_patch(struct hub_registry *reg, const char *id, const char *json,
                                     size_t len, int64_t *reported_version_out, struct hub_err *err)
{
    int rc = hub_registry_device_id_check(id, err);
    if (rc != 0)
        return rc;
    struct hub_twin_request *req = NULL;
    if ((rc = hub_twin_request_parse(HUB_TWIN_OP_REPORTED_PATCH, json, len, &req, err)) != 0)
        return rc;
    struct hub_twin *t = NULL;
    rc = twin_change(reg, id, req, NULL, &t, err);
    hub_twin_request_free(req);
    if (rc != 0)
        return rc;
    if (reported_version_out != NULL)
        *reported_version_out = t->reported_version;
    hub_twin_free(t);
    return 0;
}

int hub_registry_twin_desired_version(struct hub_registry *reg, const char *id, int64_t *out,
                                      struct hub_err *err)
{
    int rc = hub_registry_device_id_check(id, err);
    if (rc != 0)
        return rc;
    struct hub_twin_rec rec;
    if ((rc = hub_store_twin_get(reg->store, id, &rec, err)) != 0)
        return rc;
    /* No row yet: the twin a first access would create, desired $version 1. */
    *out = rec.version > 0 ? rec.desired_version : 1;
    hub_twin_rec_clear(&rec);
    return 0;
}

/* Appends the logged bodies seen+1..current to `bodies`, or returns 1 when
 * the log does not hold all of them. */
static int bodies_from_log(const struct hub_twin_log *log, int64_t seen, int64_t current,
                           json_t *bodies, struct hub_err *err)
{
    int64_t want = seen + 1;
    for (size_t i = 0; i < log->count && want <= current; i++) {
        if (log->items[i].desired_version != want)
            return 1;
        json_t *body = json_loads(log->items[i].patch, 0, NULL);
        if (!json_is_object(body)) {
            json_decref(body);
            return 1; /* a damaged entry: fall back to the full section */
        }
        if (json_array_append_new(bodies, body) != 0)
            return HUB_ERR(err, HUB_E_NOMEM, "out of memory reading desired changes");
        want++;
    }
    return want == current + 1 ? 0 : 1;
}

int hub_registry_twin_desired_changes1(struct hub_registry *reg, const char *id,
                                       int64_t seen_version, json_t **bodies_new,
                                       int64_t *version_out, struct hub_err *err)
{
    int rc = hub_registry_device_id_check(id, err);
    if (rc != 0)
        return rc;
    struct hub_twin *t = NULL;
    if ((rc = twin_load(reg, id, &t, err)) != 0)
        return rc;
    json_t *bodies = json_array();
    if (bodies == NULL) {
        hub_twin_free(t);
        return HUB_ERR(err, HUB_E_NOMEM, "out of memory reading desired changes");
    }
    int64_t current = t->desired_version;
    if (seen_version < current) {
        struct hub_twin_log *log = NULL;
        rc = seen_version >= 0 ? hub_store_twin_log_read1(reg->store, id, seen_version, &log, err)
                               : 0;
        int gap = 1;
        if (rc == 0 && log != NULL)
            gap = bodies_from_log(log, seen_version, current, bodies, err);
        hub_twin_log_free(log);
        if (rc == 0 && gap < 0)
            rc = gap;
        if (rc == 0 && gap == 1) {
            json_array_clear(bodies);
            json_t *full = hub_twin_desired_json_new(t);
            if (full == NULL || json_array_append_new(bodies, full) != 0)
                rc = HUB_ERR(err, HUB_E_NOMEM, "out of memory reading desired changes");
        }
    }
    hub_twin_free(t);
    if (rc != 0) {
        json_decref(bodies);
        return rc;
    }
    if (version_out != NULL)
        *version_out = current;
    *bodies_new = bodies;
    return 0;
}
