/*
 * metrics: a small registry of counters, gauges and histograms and their
 * Prometheus text rendering (exposition format 0.0.4, served by GET /metrics).
 *
 * Model: a *family* is a metric name with its HELP text and TYPE; a *series*
 * is one family plus one fixed label set, written by the caller as Prometheus
 * label text without braces (`transport="mqtt",reason="CONN_RATE_PER_IP"`,
 * or NULL / "" for none). Label values come from code (reason names,
 * transports), never from peers, so cardinality stays bounded: never put a
 * device id or an address in a label.
 *
 * Cost: updating a series is one relaxed atomic add (a histogram: a short
 * scan of its bounds, two atomic adds and a CAS loop for the sum); no lock,
 * no allocation, so hot paths may count freely. Registering a series (get0)
 * and rendering take the registry's mutex; callers look a series up once
 * (at start-up or lazily) and keep the pointer.
 *
 * Ownership: series belong to the registry and live until hub_metrics_free;
 * the pointers get0 returns are borrowed for that long. The default registry
 * (hub_metrics_default) lives for the whole process.
 *
 * Thread rules: every function may be called from any thread.
 *
 * Rendering: families in the order they were first registered, each as
 *   # HELP name help
 *   # TYPE name counter|gauge|histogram
 *   name{labels} value              (series in registration order)
 * Histograms write cumulative `name_bucket{labels,le="B"}` lines for every
 * bound and le="+Inf", then `name_sum{labels}` and `name_count{labels}`.
 * Integers are written in decimal, doubles with "%.15g", bounds with "%g".
 */
#ifndef HUB_COMMON_METRICS_H
#define HUB_COMMON_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

enum hub_metrics_type {
    HUB_METRICS_COUNTER,
    HUB_METRICS_GAUGE,
    HUB_METRICS_HISTOGRAM,
};

/* A histogram has at most this many finite bucket bounds. */
#define HUB_METRICS_BUCKETS_MAX 24
/* Longest metric name and label text accepted at registration. */
#define HUB_METRICS_NAME_MAX   96
#define HUB_METRICS_LABELS_MAX 160

/* Bounds for latencies in seconds (1 ms .. 10 s), for callers that have no
 * better idea: Prometheus' defaults with 1 ms added below. */
extern const double hub_metrics_latency_bounds[];
extern const size_t hub_metrics_latency_bound_count;

struct hub_metrics;
struct hub_metrics_counter;
struct hub_metrics_gauge;
struct hub_metrics_histogram;

/* An empty registry. *out_new: hub_metrics_free. HUB_E_NOMEM. */
int hub_metrics_new(struct hub_metrics **out_new, struct hub_err *err);
/* Frees the registry and every series in it. NULL ok. No other call on it
 * may be running or follow. */
void hub_metrics_free(struct hub_metrics *m);

/* The process-wide registry GET /metrics renders, for code that has no
 * registry handed to it (created on first use, never freed; NULL only if
 * that first allocation failed, and every function here accepts NULL). */
struct hub_metrics *hub_metrics_default(void);

/*
 * The series (name, labels), created on first call and returned again on
 * later calls with the same name and labels (so two objects counting the
 * same thing share it). `help` is kept from the first registration of the
 * name. NULL when: m is NULL, out of memory, name is not a valid metric name
 * ([a-zA-Z_:][a-zA-Z0-9_:]*), the text is too long, or the name was
 * registered with another type (or, for histograms, other bounds): a bug the
 * caller's unit test should catch. Updating a NULL series does nothing.
 * `bounds` must be strictly increasing and finite, 1..HUB_METRICS_BUCKETS_MAX
 * of them; copied.
 */
struct hub_metrics_counter *hub_metrics_counter_get0(struct hub_metrics *m, const char *name,
                                                     const char *help, const char *labels);
struct hub_metrics_gauge *hub_metrics_gauge_get0(struct hub_metrics *m, const char *name,
                                                 const char *help, const char *labels);
struct hub_metrics_histogram *hub_metrics_histogram_get0(struct hub_metrics *m, const char *name,
                                                         const char *help, const char *labels,
                                                         const double *bounds, size_t bound_count);

void hub_metrics_counter_add(struct hub_metrics_counter *c, uint64_t n);
uint64_t hub_metrics_counter_value(const struct hub_metrics_counter *c);
void hub_metrics_gauge_add(struct hub_metrics_gauge *g, int64_t delta);
void hub_metrics_gauge_set(struct hub_metrics_gauge *g, int64_t value);
int64_t hub_metrics_gauge_value(const struct hub_metrics_gauge *g);
/* Counts `value` in the first bucket whose bound is >= value (+Inf beyond). */
void hub_metrics_histogram_observe(struct hub_metrics_histogram *h, double value);
uint64_t hub_metrics_histogram_count(const struct hub_metrics_histogram *h);

/* ---- text output ---------------------------------------------------------- */

/* A growing text buffer, for rendering and for families computed on demand
 * (from a layer's stats struct) that a caller appends after the registry.
 * A zeroed struct is empty and valid. After an allocation failure `failed`
 * is set and further writes do nothing. */
struct hub_metrics_text {
    char *buf; /* NUL-terminated when len > 0; owned */
    size_t len, cap;
    int failed;
};

/* Releases the buffer and zeroes the struct. */
void hub_metrics_text_free(struct hub_metrics_text *t);
/* # HELP and # TYPE lines of a family. */
void hub_metrics_text_family(struct hub_metrics_text *t, const char *name, const char *help,
                             enum hub_metrics_type type);
/* One sample line: name{labels} value (labels NULL or "" writes no braces). */
void hub_metrics_text_uint(struct hub_metrics_text *t, const char *name, const char *labels,
                           uint64_t value);
void hub_metrics_text_int(struct hub_metrics_text *t, const char *name, const char *labels,
                          int64_t value);
void hub_metrics_text_double(struct hub_metrics_text *t, const char *name, const char *labels,
                             double value);

/* Appends the whole registry to t. HUB_E_NOMEM if t could not grow (t is then
 * marked failed). A NULL registry appends nothing. */
int hub_metrics_render(struct hub_metrics *m, struct hub_metrics_text *t, struct hub_err *err);

#endif
