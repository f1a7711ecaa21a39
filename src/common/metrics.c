/*
 * metrics: registry and Prometheus text rendering (see metrics.h). Families
 * and series are singly linked lists appended under the registry's mutex
 * and never unlinked before hub_metrics_free, so a series pointer handed
 * out stays valid and its updates need no lock.
 */
#include "common/metrics.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const double hub_metrics_latency_bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                             0.25,  0.5,    1,     2.5,  5,     10};
const size_t hub_metrics_latency_bound_count =
    sizeof(hub_metrics_latency_bounds) / sizeof(hub_metrics_latency_bounds[0]);

struct hub_metrics_counter {
    _Atomic uint64_t value;
};

struct hub_metrics_gauge {
    _Atomic int64_t value;
};

struct hub_metrics_histogram {
    size_t bound_count;
    double bounds[HUB_METRICS_BUCKETS_MAX];
    /* Per bucket, not cumulative (the last one is +Inf); rendering sums. */
    _Atomic uint64_t counts[HUB_METRICS_BUCKETS_MAX + 1];
    _Atomic uint64_t sum_bits; /* a double, updated by compare-and-swap */
};

struct series {
    struct series *next;
    char labels[HUB_METRICS_LABELS_MAX + 1];
    union {
        struct hub_metrics_counter counter;
        struct hub_metrics_gauge gauge;
        struct hub_metrics_histogram histogram;
    } u;
};

struct family {
    struct family *next;
    char name[HUB_METRICS_NAME_MAX + 1];
    char *help;
    enum hub_metrics_type type;
    struct series *head, *tail;
};

struct hub_metrics {
    pthread_mutex_t mu; /* guards the lists, not the values */
    struct family *head, *tail;
};

int hub_metrics_new(struct hub_metrics **out_new, struct hub_err *err)
{
    struct hub_metrics *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return HUB_ERR(err, HUB_E_NOMEM, "no memory for the metrics registry");
    pthread_mutex_init(&m->mu, NULL);
    *out_new = m;
    return 0;
}

void hub_metrics_free(struct hub_metrics *m)
{
    if (m == NULL)
        return;
    for (struct family *f = m->head, *fnext; f != NULL; f = fnext) {
        fnext = f->next;
        for (struct series *s = f->head, *snext; s != NULL; s = snext) {
            snext = s->next;
            free(s);
        }
        free(f->help);
        free(f);
    }
    pthread_mutex_destroy(&m->mu);
    free(m);
}

static struct hub_metrics *g_default;
static pthread_once_t g_default_once = PTHREAD_ONCE_INIT;

static void default_init(void)
{
    if (hub_metrics_new(&g_default, NULL) != 0)
        g_default = NULL;
}

struct hub_metrics *hub_metrics_default(void)
{
    pthread_once(&g_default_once, default_init);
    return g_default;
}

/* ---- registration --------------------------------------------------------- */

static int name_valid(const char *name)
{
    size_t len = name != NULL ? strlen(name) : 0;
    if (len == 0 || len > HUB_METRICS_NAME_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        int alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
        if (!alpha && (i == 0 || c < '0' || c > '9'))
            return 0;
    }
    return 1;
}

/* Label text is ours, but a newline or a brace in it would break every line
 * after it: refuse those. */
static int labels_valid(const char *labels)
{
    if (strlen(labels) > HUB_METRICS_LABELS_MAX)
        return 0;
    return strpbrk(labels, "\n{}") == NULL;
}

static int bounds_equal(const struct hub_metrics_histogram *h, const double *bounds, size_t n)
{
    if (h->bound_count != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (h->bounds[i] != bounds[i])
            return 0;
    return 1;
}

static int bounds_valid(const double *bounds, size_t n)
{
    if (bounds == NULL || n == 0 || n > HUB_METRICS_BUCKETS_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isfinite(bounds[i]) || (i > 0 && bounds[i] <= bounds[i - 1]))
            return 0;
    return 1;
}

static struct series *series_get(struct hub_metrics *m, const char *name, const char *help,
                                 const char *labels, enum hub_metrics_type type,
                                 const double *bounds, size_t bound_count)
{
    if (m == NULL || !name_valid(name))
        return NULL;
    if (labels == NULL)
        labels = "";
    if (!labels_valid(labels))
        return NULL;
    if (type == HUB_METRICS_HISTOGRAM && !bounds_valid(bounds, bound_count))
        return NULL;
    struct series *found = NULL;
    pthread_mutex_lock(&m->mu);
    struct family *f = m->head;
    while (f != NULL && strcmp(f->name, name) != 0)
        f = f->next;
    if (f != NULL && f->type != type)
        goto out;
    if (f == NULL) {
        f = calloc(1, sizeof(*f));
        char *help_copy = strdup(help != NULL ? help : "");
        if (f == NULL || help_copy == NULL) {
            free(f);
            free(help_copy);
            goto out;
        }
        snprintf(f->name, sizeof(f->name), "%s", name);
        f->help = help_copy;
        f->type = type;
        if (m->tail != NULL)
            m->tail->next = f;
        else
            m->head = f;
        m->tail = f;
    }
    for (struct series *s = f->head; s != NULL; s = s->next) {
        if (strcmp(s->labels, labels) == 0) {
            if (type != HUB_METRICS_HISTOGRAM || bounds_equal(&s->u.histogram, bounds, bound_count))
                found = s;
            goto out;
        }
    }
    /* One family, one set of bounds: buckets of different series must line up. */
    if (type == HUB_METRICS_HISTOGRAM && f->head != NULL &&
        !bounds_equal(&f->head->u.histogram, bounds, bound_count))
        goto out;
    struct series *s = calloc(1, sizeof(*s));
    if (s == NULL)
        goto out;
    snprintf(s->labels, sizeof(s->labels), "%s", labels);
    switch (type) {
    case HUB_METRICS_COUNTER:
        atomic_init(&s->u.counter.value, 0);
        break;
    case HUB_METRICS_GAUGE:
        atomic_init(&s->u.gauge.value, 0);
        break;
    case HUB_METRICS_HISTOGRAM: {
        struct hub_metrics_histogram *h = &s->u.histogram;
        h->bound_count = bound_count;
        memcpy(h->bounds, bounds, bound_count * sizeof(*bounds));
        for (size_t i = 0; i <= HUB_METRICS_BUCKETS_MAX; i++)
            atomic_init(&h->counts[i], 0);
        double zero = 0.0;
        uint64_t bits;
        memcpy(&bits, &zero, sizeof(bits));
        atomic_init(&h->sum_bits, bits);
        break;
    }
    }
    if (f->tail != NULL)
        f->tail->next = s;
    else
        f->head = s;
    f->tail = s;
    found = s;
out:
    pthread_mutex_unlock(&m->mu);
    return found;
}

struct hub_metrics_counter *hub_metrics_counter_get0(struct hub_metrics *m, const char *name,
                                                     const char *help, const char *labels)
{
    struct series *s = series_get(m, name, help, labels, HUB_METRICS_COUNTER, NULL, 0);
    return s != NULL ? &s->u.counter : NULL;
}

struct hub_metrics_gauge *hub_metrics_gauge_get0(struct hub_metrics *m, const char *name,
                                                 const char *help, const char *labels)
{
    struct series *s = series_get(m, name, help, labels, HUB_METRICS_GAUGE, NULL, 0);
    return s != NULL ? &s->u.gauge : NULL;
}

struct hub_metrics_histogram *hub_metrics_histogram_get0(struct hub_metrics *m, const char *name,
                                                         const char *help, const char *labels,
                                                         const double *bounds, size_t bound_count)
{
    struct series *s =
        series_get(m, name, help, labels, HUB_METRICS_HISTOGRAM, bounds, bound_count);
    return s != NULL ? &s->u.histogram : NULL;
}

/* ---- updates -------------------------------------------------------------- */

void hub_metrics_counter_add(struct hub_metrics_counter *c, uint64_t n)
{
    if (c != NULL)
        atomic_fetch_add_explicit(&c->value, n, memory_order_relaxed);
}

uint64_t hub_metrics_counter_value(const struct hub_metrics_counter *c)
{
    if (c == NULL)
        return 0;
    return atomic_load_explicit(&((struct hub_metrics_counter *)c)->value, memory_order_relaxed);
}

void hub_metrics_gauge_add(struct hub_metrics_gauge *g, int64_t delta)
{
    if (g != NULL)
        atomic_fetch_add_explicit(&g->value, delta, memory_order_relaxed);
}

void hub_metrics_gauge_set(struct hub_metrics_gauge *g, int64_t value)
{
    if (g != NULL)
        atomic_store_explicit(&g->value, value, memory_order_relaxed);
}

int64_t hub_metrics_gauge_value(const struct hub_metrics_gauge *g)
{
    if (g == NULL)
        return 0;
    return atomic_load_explicit(&((struct hub_metrics_gauge *)g)->value, memory_order_relaxed);
}

void hub_metrics_histogram_observe(struct hub_metrics_histogram *h, double value)
{
    if (h == NULL || isnan(value))
        return;
    size_t i = 0;
    while (i < h->bound_count && value > h->bounds[i])
        i++;
    atomic_fetch_add_explicit(&h->counts[i], 1, memory_order_relaxed);
    uint64_t old_bits = atomic_load_explicit(&h->sum_bits, memory_order_relaxed), new_bits;
    do {
        double sum;
        memcpy(&sum, &old_bits, sizeof(sum));
        sum += value;
        memcpy(&new_bits, &sum, sizeof(new_bits));
    } while (!atomic_compare_exchange_weak_explicit(&h->sum_bits, &old_bits, new_bits,
                                                    memory_order_relaxed, memory_order_relaxed));
}

uint64_t hub_metrics_histogram_count(const struct hub_metrics_histogram *h)
{
    uint64_t n = 0;
    if (h == NULL)
        return 0;
    for (size_t i = 0; i <= h->bound_count; i++)
        n += atomic_load_explicit(&((struct hub_metrics_histogram *)h)->counts[i],
                                  memory_order_relaxed);
    return n;
}

/* ---- text ----------------------------------------------------------------- */

void hub_metrics_text_free(struct hub_metrics_text *t)
{
    free(t->buf);
    memset(t, 0, sizeof(*t));
}

static void text_printf(struct hub_metrics_text *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void text_printf(struct hub_metrics_text *t, const char *fmt, ...)
{
    if (t->failed)
        return;
    for (;;) {
        size_t room = t->cap - t->len;
        va_list ap;
        va_start(ap, fmt);
        int n = room > 0 ? vsnprintf(t->buf + t->len, room, fmt, ap) : -2;
        va_end(ap);
        if (n == -1) {
            t->failed = 1;
            return;
        }
        if (n >= 0 && (size_t)n < room) {
            t->len += (size_t)n;
            return;
        }
        size_t want = t->len + (n > 0 ? (size_t)n : 0) + 1;
        size_t cap = t->cap > 0 ? t->cap : 4096;
        while (cap < want)
            cap *= 2;
        char *grown = realloc(t->buf, cap);
        if (grown == NULL) {
            t->failed = 1;
            return;
        }
        t->buf = grown;
        t->cap = cap;
    }
}

static const char *type_name(enum hub_metrics_type type)
{
    switch (type) {
    case HUB_METRICS_COUNTER:
        return "counter";
    case HUB_METRICS_GAUGE:
        return "gauge";
    case HUB_METRICS_HISTOGRAM:
        return "histogram";
    }
    return "untyped";
}

void hub_metrics_text_family(struct hub_metrics_text *t, const char *name, const char *help,
                             enum hub_metrics_type type)
{
    /* HELP text escapes backslash and newline (format 0.0.4). */
    text_printf(t, "# HELP %s ", name);
    for (const char *p = help != NULL ? help : ""; *p != '\0'; p++) {
        if (*p == '\\')
            text_printf(t, "\\\\");
        else if (*p == '\n')
            text_printf(t, "\\n");
        else
            text_printf(t, "%c", *p);
    }
    text_printf(t, "\n# TYPE %s %s\n", name, type_name(type));
}

static void sample_head(struct hub_metrics_text *t, const char *name, const char *labels)
{
    if (labels != NULL && labels[0] != '\0')
        text_printf(t, "%s{%s} ", name, labels);
    else
        text_printf(t, "%s ", name);
}

void hub_metrics_text_uint(struct hub_metrics_text *t, const char *name, const char *labels,
                           uint64_t value)
{
    sample_head(t, name, labels);
    text_printf(t, "%" PRIu64 "\n", value);
}

void hub_metrics_text_int(struct hub_metrics_text *t, const char *name, const char *labels,
                          int64_t value)
{
    sample_head(t, name, labels);
    text_printf(t, "%" PRId64 "\n", value);
}

void hub_metrics_text_double(struct hub_metrics_text *t, const char *name, const char *labels,
                             double value)
{
    sample_head(t, name, labels);
    if (isnan(value))
        text_printf(t, "NaN\n");
    else if (isinf(value))
        text_printf(t, "%sInf\n", value > 0 ? "+" : "-");
    else
        text_printf(t, "%.15g\n", value);
}

static void render_histogram(struct hub_metrics_text *t, const char *family, const struct series *s)
{
    const struct hub_metrics_histogram *h = &s->u.histogram;
    char name[HUB_METRICS_NAME_MAX + 16];
    char labels[HUB_METRICS_LABELS_MAX + 48];
    const char *sep = s->labels[0] != '\0' ? "," : "";
    uint64_t cumulative = 0;
    snprintf(name, sizeof(name), "%s_bucket", family);
    for (size_t i = 0; i <= h->bound_count; i++) {
        cumulative += atomic_load_explicit(&((struct hub_metrics_histogram *)h)->counts[i],
                                           memory_order_relaxed);
        if (i < h->bound_count)
            snprintf(labels, sizeof(labels), "%s%sle=\"%g\"", s->labels, sep, h->bounds[i]);
        else
            snprintf(labels, sizeof(labels), "%s%sle=\"+Inf\"", s->labels, sep);
        hub_metrics_text_uint(t, name, labels, cumulative);
    }
    uint64_t bits =
        atomic_load_explicit(&((struct hub_metrics_histogram *)h)->sum_bits, memory_order_relaxed);
    double sum;
    memcpy(&sum, &bits, sizeof(sum));
    snprintf(name, sizeof(name), "%s_sum", family);
    hub_metrics_text_double(t, name, s->labels, sum);
    /* The count is the +Inf bucket as read above, so the two always agree
     * even while observations land during the render. */
    snprintf(name, sizeof(name), "%s_count", family);
    hub_metrics_text_uint(t, name, s->labels, cumulative);
}

int hub_metrics_render(struct hub_metrics *m, struct hub_metrics_text *t, struct hub_err *err)
{
    if (m != NULL) {
        pthread_mutex_lock(&m->mu);
        for (const struct family *f = m->head; f != NULL; f = f->next) {
            hub_metrics_text_family(t, f->name, f->help, f->type);
            for (const struct series *s = f->head; s != NULL; s = s->next) {
                switch (f->type) {
                case HUB_METRICS_COUNTER:
                    hub_metrics_text_uint(t, f->name, s->labels,
                                          hub_metrics_counter_value(&s->u.counter));
                    break;
                case HUB_METRICS_GAUGE:
                    hub_metrics_text_int(t, f->name, s->labels,
                                         hub_metrics_gauge_value(&s->u.gauge));
                    break;
                case HUB_METRICS_HISTOGRAM:
                    render_histogram(t, f->name, s);
                    break;
                }
            }
        }
        pthread_mutex_unlock(&m->mu);
    }
    if (t->failed)
        return HUB_ERR(err, HUB_E_NOMEM, "no memory to render metrics");
    return 0;
}
