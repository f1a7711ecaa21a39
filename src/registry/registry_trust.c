/*
 * registry: the trust snapshot the device endpoint validates chains against.
 *
 * Cost model: every TLS handshake takes a snapshot, so the common path is one
 * mutex and an atomic increment. The snapshot is rebuilt from the store only
 * when ca_epoch moved since it was built; ca_epoch is read *before* the store
 * is, so a change that commits during a rebuild bumps the epoch past the
 * snapshot's and the next call rebuilds again (never a stale snapshot that
 * claims to be current).
 */
#include "registry/registry_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509.h>

/* A CA's CRL validity, for hub_registry_trust_crl_expired. */
struct snap_crl {
    char name[HUB_CA_NAME_SIZE];
    int64_t next_update; /* 0: none */
};

struct hub_registry_trust {
    _Atomic size_t refs;
    struct hub_pki_trust *trust;
    uint64_t generation;
    size_t anchors;
    size_t skipped;
    struct snap_crl *crls;
    size_t crl_count;
};

static struct hub_registry_trust *snap_ref(struct hub_registry_trust *s)
{
    atomic_fetch_add(&s->refs, 1);
    return s;
}

void hub_registry_trust_release(struct hub_registry_trust *snap)
{
    if (snap == NULL)
        return;
    if (atomic_fetch_sub(&snap->refs, 1) == 1) {
        hub_pki_trust_free(snap->trust);
        free(snap->crls);
        free(snap);
    }
}

const struct hub_pki_trust *hub_registry_trust_pki(const struct hub_registry_trust *snap)
{
    return snap->trust;
}

uint64_t hub_registry_trust_generation(const struct hub_registry_trust *snap)
{
    return snap->generation;
}

size_t hub_registry_trust_anchor_count(const struct hub_registry_trust *snap)
{
    return snap->anchors;
}

size_t hub_registry_trust_skipped_count(const struct hub_registry_trust *snap)
{
    return snap->skipped;
}

size_t hub_registry_trust_crl_count(const struct hub_registry_trust *snap)
{
    return snap->crl_count;
}

int64_t hub_registry_trust_crl_next_expiry(const struct hub_registry_trust *snap, int64_t now)
{
    int64_t next = 0;
    for (size_t i = 0; i < snap->crl_count; i++) {
        int64_t t = snap->crls[i].next_update;
        if (t > now && (next == 0 || t < next))
            next = t;
    }
    return next;
}

size_t hub_registry_trust_crl_expired(const struct hub_registry_trust *snap, int64_t now,
                                      char *names, size_t cap)
{
    size_t n = 0, used = 0;
    if (cap > 0)
        names[0] = '\0';
    for (size_t i = 0; i < snap->crl_count; i++) {
        if (snap->crls[i].next_update == 0 || snap->crls[i].next_update > now)
            continue;
        if (cap > used + 1) {
            int w =
                snprintf(names + used, cap - used, "%s%s", n > 0 ? "," : "", snap->crls[i].name);
            used = w > 0 && (size_t)w < cap - used ? used + (size_t)w : cap - 1;
        }
        n++;
    }
    return n;
}

/* The CA's certificate and, if it has one, its CRL checked against it.
 * -1 when the row no longer loads (the caller skips the CA). */
static int load_ca(const struct hub_ca_cert *ca, X509 **x_new, X509_CRL **crl_new)
{
    *x_new = NULL;
    *crl_new = NULL;
    if (hub_pki_cert_load_mem(ca->pem, strlen(ca->pem), x_new, NULL) != 0)
        return -1;
    if (ca->crl_pem == NULL || ca->crl_pem[0] == '\0')
        return 0;
    if (hub_pki_crl_load_mem(ca->crl_pem, strlen(ca->crl_pem), crl_new, NULL) != 0 ||
        hub_pki_crl_issuer_check(*x_new, *crl_new, NULL) != 0) {
        X509_CRL_free(*crl_new);
        X509_free(*x_new);
        *crl_new = NULL;
        *x_new = NULL;
        return -1;
    }
    return 0;
}

static int snap_build(struct hub_registry *reg, uint64_t generation,
                      struct hub_registry_trust **out, struct hub_err *err)
{
    struct hub_ca_cert_list *list = NULL;
    int rc = hub_store_ca_list1(reg->store, true, &list, err);
    if (rc != 0)
        return rc;
    struct hub_registry_trust *s = calloc(1, sizeof(*s));
    STACK_OF(X509) *anchors = sk_X509_new_null();
    X509_CRL **crls = calloc(list->count + 1, sizeof(*crls));
    size_t n_crls = 0; /* our references in crls (the trust takes its own) */
    if (s == NULL || anchors == NULL || crls == NULL ||
        (s->crls = calloc(list->count + 1, sizeof(*s->crls))) == NULL) {
        rc = HUB_ERR(err, HUB_E_NOMEM, "out of memory building the trust snapshot");
        goto free_all;
    }
    for (size_t i = 0; i < list->count; i++) {
        X509 *x = NULL;
        X509_CRL *crl = NULL;
        /* A row that no longer parses costs that CA its devices, not everyone's. */
        if (load_ca(&list->items[i], &x, &crl) != 0) {
            s->skipped++;
            continue;
        }
        if (!sk_X509_push(anchors, x)) {
            X509_free(x);
            X509_CRL_free(crl);
            rc = HUB_ERR(err, HUB_E_NOMEM, "out of memory building the trust snapshot");
            goto free_all;
        }
        if (crl != NULL) {
            struct snap_crl *c = &s->crls[s->crl_count];
            snprintf(c->name, sizeof(c->name), "%s", list->items[i].name);
            c->next_update = list->items[i].crl_next_update;
            crls[n_crls++] = crl;
            s->crl_count = n_crls;
        }
    }
    if ((rc = hub_pki_trust_new_with_crls(anchors, crls, n_crls, &s->trust, err)) != 0)
        goto free_all;
    s->anchors = (size_t)sk_X509_num(anchors);
    s->generation = generation;
    atomic_init(&s->refs, 1);
    *out = s;
    s = NULL;
free_all:
    for (size_t i = 0; i < n_crls; i++)
        X509_CRL_free(crls[i]);
    free(crls);
    sk_X509_pop_free(anchors, X509_free);
    if (s != NULL)
        free(s->crls);
    free(s);
    hub_ca_cert_list_free(list);
    return rc;
}

/* A ref to the cached snapshot if it is current, else NULL. */
static struct hub_registry_trust *snap_current(struct hub_registry *reg)
{
    struct hub_registry_trust *s = NULL;
    pthread_mutex_lock(&reg->snap_mu);
    if (reg->snap != NULL && reg->snap->generation == atomic_load(&reg->ca_epoch))
        s = snap_ref(reg->snap);
    pthread_mutex_unlock(&reg->snap_mu);
    return s;
}

int hub_registry_trust_get1(struct hub_registry *reg, struct hub_registry_trust **out_new,
                            struct hub_err *err)
{
    struct hub_registry_trust *s = snap_current(reg);
    if (s != NULL) {
        *out_new = s;
        return 0;
    }
    pthread_mutex_lock(&reg->rebuild_mu);
    /* Another thread may have rebuilt while we waited. */
    s = snap_current(reg);
    if (s != NULL) {
        pthread_mutex_unlock(&reg->rebuild_mu);
        *out_new = s;
        return 0;
    }
    uint64_t epoch = atomic_load(&reg->ca_epoch);
    int rc = snap_build(reg, epoch, &s, err);
    if (rc == 0) {
        pthread_mutex_lock(&reg->snap_mu);
        struct hub_registry_trust *old = reg->snap;
        reg->snap = snap_ref(s); /* the registry's reference; `s` keeps the caller's */
        pthread_mutex_unlock(&reg->snap_mu);
        hub_registry_trust_release(old);
        *out_new = s;
    }
    pthread_mutex_unlock(&reg->rebuild_mu);
    return rc;
}

void hub_registry__trust_drop(struct hub_registry *reg)
{
    pthread_mutex_lock(&reg->snap_mu);
    struct hub_registry_trust *old = reg->snap;
    reg->snap = NULL;
    pthread_mutex_unlock(&reg->snap_mu);
    hub_registry_trust_release(old);
}
