/*
 * device: the directory of live connections and MQTT sessions, by device id.
 *
 * One entry per device that has a live connection or a kept session
 * (clean_session = 0). A chained hash table under one mutex: every
 * operation is a few pointer moves, done once per CONNECT, close, kick or
 * C2D notification, so one lock does not limit a hub at this scale. The
 * table doubles when it holds more entries than buckets.
 */
#include <stdlib.h>
#include <string.h>

#include "device/device_int.h"

struct dir_entry {
    struct dir_entry *next;
    uint64_t hash;
    void *live;           /* referenced handle, or NULL */
    bool session;         /* a clean_session = 0 session exists */
    unsigned subs;        /* the session's subscriptions (HUB_DEVICE_SUB_*) */
    int64_t desired_seen; /* desired $version last told to the device; -1 none */
    char id[];
};

struct hub_device_dir {
    struct hub_device_dir_ops ops;
    pthread_mutex_t mu;
    struct dir_entry **buckets;
    size_t bucket_count; /* power of two */
    size_t entries;
    size_t live;
};

#define DIR_INITIAL_BUCKETS 256

static uint64_t hash_id(const char *s)
{
    /* FNV-1a: ids are short and the table is not exposed to collisions an
     * attacker could pick without being able to register devices. */
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    return h;
}

int hub_device__dir_new(const struct hub_device_dir_ops *ops, struct hub_device_dir **out_new,
                        struct hub_err *err)
{
    struct hub_device_dir *dir = calloc(1, sizeof(*dir));
    if (dir == NULL)
        return HUB_ERR(err, HUB_E_NOMEM, "no memory for the device directory");
    dir->buckets = calloc(DIR_INITIAL_BUCKETS, sizeof(*dir->buckets));
    if (dir->buckets == NULL) {
        free(dir);
        return HUB_ERR(err, HUB_E_NOMEM, "no memory for the device directory");
    }
    dir->bucket_count = DIR_INITIAL_BUCKETS;
    dir->ops = *ops;
    pthread_mutex_init(&dir->mu, NULL);
    *out_new = dir;
    return 0;
}

void hub_device__dir_free(struct hub_device_dir *dir)
{
    if (dir == NULL)
        return;
    for (size_t i = 0; i < dir->bucket_count; i++) {
        struct dir_entry *e = dir->buckets[i];
        while (e != NULL) {
            struct dir_entry *next = e->next;
            if (e->live != NULL)
                dir->ops.unref(e->live);
            free(e);
            e = next;
        }
    }
    free(dir->buckets);
    pthread_mutex_destroy(&dir->mu);
    free(dir);
}

static struct dir_entry **find_slot(struct hub_device_dir *dir, const char *id, uint64_t h)
{
    struct dir_entry **pp = &dir->buckets[h & (dir->bucket_count - 1)];
    while (*pp != NULL && ((*pp)->hash != h || strcmp((*pp)->id, id) != 0))
        pp = &(*pp)->next;
    return pp;
}

static void grow(struct hub_device_dir *dir)
{
    size_t n = dir->bucket_count * 2;
    struct dir_entry **b = calloc(n, sizeof(*b));
    if (b == NULL)
        return; /* longer chains, still correct */
    for (size_t i = 0; i < dir->bucket_count; i++) {
        struct dir_entry *e = dir->buckets[i];
        while (e != NULL) {
            struct dir_entry *next = e->next;
            e->next = b[e->hash & (n - 1)];
            b[e->hash & (n - 1)] = e;
            e = next;
        }
    }
    free(dir->buckets);
    dir->buckets = b;
    dir->bucket_count = n;
}

/* Unlinks and frees an entry that has neither a live handle nor a session. */
static void drop_if_empty(struct hub_device_dir *dir, struct dir_entry **pp)
{
    struct dir_entry *e = *pp;
    if (e->live != NULL || e->session)
        return;
    *pp = e->next;
    free(e);
    dir->entries--;
}

int hub_device__dir_register(struct hub_device_dir *dir, const char *id, void *handle,
                             bool clean_session, void **replaced_out, bool *session_present,
                             bool *c2d_subscribed, struct hub_err *err)
{
    uint64_t h = hash_id(id);
    pthread_mutex_lock(&dir->mu);
    struct dir_entry **pp = find_slot(dir, id, h);
    struct dir_entry *e = *pp;
    if (e == NULL) {
        size_t len = strlen(id);
        e = calloc(1, sizeof(*e) + len + 1);
        if (e == NULL) {
            pthread_mutex_unlock(&dir->mu);
            return HUB_ERR(err, HUB_E_NOMEM, "no memory for a directory entry");
        }
        memcpy(e->id, id, len + 1);
        e->hash = h;
        e->desired_seen = -1;
        *pp = e;
        dir->entries++;
    }
    void *old = e->live;
    dir->ops.ref(handle);
    e->live = handle;
    if (old == NULL)
        dir->live++;
    if (clean_session || !e->session) {
        /* §3.2.2.2: session present is always 0 with clean_session; a new
         * session starts with nothing. */
        *session_present = false;
        e->subs = 0;
        e->desired_seen = -1;
    } else {
        *session_present = true;
    }
    e->session = !clean_session;
    *c2d_subscribed = (e->subs & HUB_DEVICE_SUB_C2D) != 0;
    if (dir->entries > dir->bucket_count)
        grow(dir);
    pthread_mutex_unlock(&dir->mu);
    *replaced_out = old;
    return 0;
}

int hub_device__dir_unregister(struct hub_device_dir *dir, const char *id, void *handle)
{
    uint64_t h = hash_id(id);
    void *drop = NULL;
    pthread_mutex_lock(&dir->mu);
    struct dir_entry **pp = find_slot(dir, id, h);
    if (*pp != NULL && (*pp)->live == handle) {
        drop = handle;
        (*pp)->live = NULL;
        dir->live--;
        drop_if_empty(dir, pp);
    }
    pthread_mutex_unlock(&dir->mu);
    if (drop != NULL)
        dir->ops.unref(drop);
    return drop != NULL;
}

void *hub_device__dir_get1(struct hub_device_dir *dir, const char *id)
{
    uint64_t h = hash_id(id);
    void *out = NULL;
    pthread_mutex_lock(&dir->mu);
    struct dir_entry *e = *find_slot(dir, id, h);
    if (e != NULL && e->live != NULL) {
        out = e->live;
        dir->ops.ref(out);
    }
    pthread_mutex_unlock(&dir->mu);
    return out;
}

void hub_device__dir_c2d_set(struct hub_device_dir *dir, const char *id, bool subscribed)
{
    hub_device__dir_subs_set(dir, id, HUB_DEVICE_SUB_C2D, subscribed);
}

void hub_device__dir_subs_set(struct hub_device_dir *dir, const char *id, unsigned bits, bool on)
{
    uint64_t h = hash_id(id);
    pthread_mutex_lock(&dir->mu);
    struct dir_entry *e = *find_slot(dir, id, h);
    if (e != NULL)
        e->subs = on ? e->subs | bits : e->subs & ~bits;
    pthread_mutex_unlock(&dir->mu);
}

unsigned hub_device__dir_subs(struct hub_device_dir *dir, const char *id)
{
    uint64_t h = hash_id(id);
    pthread_mutex_lock(&dir->mu);
    struct dir_entry *e = *find_slot(dir, id, h);
    unsigned subs = e != NULL ? e->subs : 0;
    pthread_mutex_unlock(&dir->mu);
    return subs;
}

void *hub_device__dir_get1_subscribed(struct hub_device_dir *dir, const char *id, unsigned bits)
{
    uint64_t h = hash_id(id);
    void *out = NULL;
    pthread_mutex_lock(&dir->mu);
    struct dir_entry *e = *find_slot(dir, id, h);
    if (e != NULL && e->live != NULL && (e->subs & bits) == bits) {
        out = e->live;
        dir->ops.ref(out);
    }
    pthread_mutex_unlock(&dir->mu);
    return out;
}

int64_t hub_device__dir_desired_seen(struct hub_device_dir *dir, const char *id)
{
    uint64_t h = hash_id(id);
    pthread_mutex_lock(&dir->mu);
    struct dir_entry *e = *find_slot(dir, id, h);
    int64_t v = e != NULL ? e->desired_seen : -1;
    pthread_mutex_unlock(&dir->mu);
    return v;
}

void hub_device__dir_desired_seen_set(struct hub_device_dir *dir, const char *id, int64_t version)
{
    uint64_t h = hash_id(id);
    pthread_mutex_lock(&dir->mu);
    struct dir_entry *e = *find_slot(dir, id, h);
    if (e != NULL)
        e->desired_seen = version;
    pthread_mutex_unlock(&dir->mu);
}

void hub_device__dir_session_drop(struct hub_device_dir *dir, const char *id)
{
    uint64_t h = hash_id(id);
    pthread_mutex_lock(&dir->mu);
    struct dir_entry **pp = find_slot(dir, id, h);
    if (*pp != NULL) {
        /* Also the subscriptions of a live entry: the connection is being
         * kicked, and nothing (a method call, a desired change) should be
         * routed to it meanwhile. Its close then frees the entry. */
        (*pp)->session = false;
        (*pp)->subs = 0;
        (*pp)->desired_seen = -1;
        drop_if_empty(dir, pp);
    }
    pthread_mutex_unlock(&dir->mu);
}

size_t hub_device__dir_live_count(struct hub_device_dir *dir)
{
    pthread_mutex_lock(&dir->mu);
    size_t n = dir->live;
    pthread_mutex_unlock(&dir->mu);
    return n;
}

size_t hub_device__dir_entry_count(struct hub_device_dir *dir)
{
    pthread_mutex_lock(&dir->mu);
    size_t n = dir->entries;
    pthread_mutex_unlock(&dir->mu);
    return n;
}
