/* metrics: registration rules, lock-free updates, exact Prometheus text. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>

#include "common/metrics.h"

static struct hub_metrics *new_registry(void)
{
    struct hub_metrics *m = NULL;
    assert_int_equal(hub_metrics_new(&m, NULL), 0);
    return m;
}

static char *render(struct hub_metrics *m, struct hub_metrics_text *t)
{
    memset(t, 0, sizeof(*t));
    assert_int_equal(hub_metrics_render(m, t, NULL), 0);
    return t->len > 0 ? t->buf : "";
}

static void test_render_exact_text(void **state)
{
    (void)state;
    struct hub_metrics *m = new_registry();
    struct hub_metrics_counter *ok =
        hub_metrics_counter_get0(m, "t_requests_total", "Requests.", "code=\"2xx\"");
    struct hub_metrics_counter *bad =
        hub_metrics_counter_get0(m, "t_requests_total", "ignored later help", "code=\"5xx\"");
    struct hub_metrics_gauge *open = hub_metrics_gauge_get0(m, "t_open", "Open things.", NULL);
    static const double bounds[] = {0.1, 1};
    struct hub_metrics_histogram *lat =
        hub_metrics_histogram_get0(m, "t_latency_seconds", "Latency.", "op=\"a\"", bounds, 2);
    assert_non_null(ok);
    assert_non_null(bad);
    assert_non_null(open);
    assert_non_null(lat);
    hub_metrics_counter_add(ok, 2);
    hub_metrics_counter_add(ok, 1);
    hub_metrics_counter_add(bad, 1);
    hub_metrics_gauge_add(open, 3);
    hub_metrics_gauge_add(open, -5);
    hub_metrics_histogram_observe(lat, 0.0625);
    hub_metrics_histogram_observe(lat, 1.0); /* on the bound: counts in le="1" */
    hub_metrics_histogram_observe(lat, 5);

    struct hub_metrics_text t;
    assert_string_equal(render(m, &t), "# HELP t_requests_total Requests.\n"
                                       "# TYPE t_requests_total counter\n"
                                       "t_requests_total{code=\"2xx\"} 3\n"
                                       "t_requests_total{code=\"5xx\"} 1\n"
                                       "# HELP t_open Open things.\n"
                                       "# TYPE t_open gauge\n"
                                       "t_open -2\n"
                                       "# HELP t_latency_seconds Latency.\n"
                                       "# TYPE t_latency_seconds histogram\n"
                                       "t_latency_seconds_bucket{op=\"a\",le=\"0.1\"} 1\n"
                                       "t_latency_seconds_bucket{op=\"a\",le=\"1\"} 2\n"
                                       "t_latency_seconds_bucket{op=\"a\",le=\"+Inf\"} 3\n"
                                       "t_latency_seconds_sum{op=\"a\"} 6.0625\n"
                                       "t_latency_seconds_count{op=\"a\"} 3\n");
    hub_metrics_text_free(&t);
    hub_metrics_free(m);
}

static void test_histogram_without_labels_and_empty(void **state)
{
    (void)state;
    struct hub_metrics *m = new_registry();
    static const double bounds[] = {0.5};
    assert_non_null(hub_metrics_histogram_get0(m, "h", "H.", NULL, bounds, 1));
    struct hub_metrics_text t;
    assert_string_equal(render(m, &t), "# HELP h H.\n"
                                       "# TYPE h histogram\n"
                                       "h_bucket{le=\"0.5\"} 0\n"
                                       "h_bucket{le=\"+Inf\"} 0\n"
                                       "h_sum 0\n"
                                       "h_count 0\n");
    hub_metrics_text_free(&t);
    hub_metrics_free(m);
}

static void test_get0_returns_the_same_series(void **state)
{
    (void)state;
    struct hub_metrics *m = new_registry();
    struct hub_metrics_counter *a = hub_metrics_counter_get0(m, "c_total", "C.", "x=\"1\"");
    assert_ptr_equal(hub_metrics_counter_get0(m, "c_total", "C.", "x=\"1\""), a);
    assert_ptr_not_equal(hub_metrics_counter_get0(m, "c_total", "C.", "x=\"2\""), a);
    /* NULL and "" are the same (no labels) */
    struct hub_metrics_gauge *g = hub_metrics_gauge_get0(m, "g", "G.", NULL);
    assert_ptr_equal(hub_metrics_gauge_get0(m, "g", "G.", ""), g);
    hub_metrics_free(m);
}

static void test_registration_refusals(void **state)
{
    (void)state;
    struct hub_metrics *m = new_registry();
    static const double bounds[] = {1, 2}, other[] = {1, 3}, unsorted[] = {2, 1};
    assert_non_null(hub_metrics_counter_get0(m, "dual", "D.", NULL));
    /* same name, other type */
    assert_null(hub_metrics_gauge_get0(m, "dual", "D.", NULL));
    assert_null(hub_metrics_histogram_get0(m, "dual", "D.", NULL, bounds, 2));
    /* names and labels that would break the format */
    assert_null(hub_metrics_counter_get0(m, "9starts_with_digit", "X.", NULL));
    assert_null(hub_metrics_counter_get0(m, "has-dash", "X.", NULL));
    assert_null(hub_metrics_counter_get0(m, "", "X.", NULL));
    assert_null(hub_metrics_counter_get0(m, "ok", "X.", "a=\"1\"\nb=\"2\""));
    assert_null(hub_metrics_counter_get0(m, "ok2", "X.", "a=\"}\""));
    /* histogram bounds: sorted, finite, and one set per family */
    assert_null(hub_metrics_histogram_get0(m, "h1", "H.", NULL, unsorted, 2));
    assert_null(hub_metrics_histogram_get0(m, "h1", "H.", NULL, bounds, 0));
    assert_non_null(hub_metrics_histogram_get0(m, "h2", "H.", "a=\"1\"", bounds, 2));
    assert_null(hub_metrics_histogram_get0(m, "h2", "H.", "a=\"2\"", other, 2));
    assert_null(hub_metrics_histogram_get0(m, "h2", "H.", "a=\"1\"", other, 2));
    /* a NULL registry gives NULL series, and NULL series take updates quietly */
    assert_null(hub_metrics_counter_get0(NULL, "x", "X.", NULL));
    hub_metrics_counter_add(NULL, 1);
    hub_metrics_gauge_add(NULL, 1);
    hub_metrics_histogram_observe(NULL, 1);
    assert_int_equal(hub_metrics_counter_value(NULL), 0);
    hub_metrics_free(m);
}

static void test_help_escaping_and_special_values(void **state)
{
    (void)state;
    struct hub_metrics_text t = {0};
    hub_metrics_text_family(&t, "x", "line one\nback\\slash", HUB_METRICS_GAUGE);
    hub_metrics_text_double(&t, "x", "k=\"v\"", INFINITY);
    hub_metrics_text_double(&t, "x", NULL, 0.25);
    hub_metrics_text_int(&t, "x", NULL, -7);
    assert_string_equal(t.buf, "# HELP x line one\\nback\\\\slash\n"
                               "# TYPE x gauge\n"
                               "x{k=\"v\"} +Inf\n"
                               "x 0.25\n"
                               "x -7\n");
    hub_metrics_text_free(&t);
    assert_null(t.buf);
}

static void test_text_grows_past_first_block(void **state)
{
    (void)state;
    struct hub_metrics *m = new_registry();
    char labels[32];
    for (int i = 0; i < 500; i++) {
        snprintf(labels, sizeof(labels), "i=\"%d\"", i);
        hub_metrics_counter_add(hub_metrics_counter_get0(m, "many_total", "Many.", labels),
                                (uint64_t)i);
    }
    struct hub_metrics_text t;
    const char *text = render(m, &t);
    assert_true(t.len > 8192);
    assert_int_equal(strlen(text), t.len);
    assert_non_null(strstr(text, "many_total{i=\"0\"} 0\n"));
    assert_non_null(strstr(text, "many_total{i=\"499\"} 499\n"));
    hub_metrics_text_free(&t);
    hub_metrics_free(m);
}

#define THREADS 8
#define ROUNDS  20000

struct race {
    struct hub_metrics_counter *c;
    struct hub_metrics_gauge *g;
    struct hub_metrics_histogram *h;
};

static void *racer(void *arg)
{
    struct race *r = arg;
    for (int i = 0; i < ROUNDS; i++) {
        hub_metrics_counter_add(r->c, 1);
        hub_metrics_gauge_add(r->g, 1);
        hub_metrics_gauge_add(r->g, -1);
        hub_metrics_histogram_observe(r->h, 0.5);
    }
    return NULL;
}

static void test_updates_from_threads_lose_nothing(void **state)
{
    (void)state;
    struct hub_metrics *m = new_registry();
    static const double bounds[] = {1};
    struct race r = {
        .c = hub_metrics_counter_get0(m, "race_total", "R.", NULL),
        .g = hub_metrics_gauge_get0(m, "race_open", "R.", NULL),
        .h = hub_metrics_histogram_get0(m, "race_seconds", "R.", NULL, bounds, 1),
    };
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, racer, &r), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(hub_metrics_counter_value(r.c), THREADS * ROUNDS);
    assert_int_equal(hub_metrics_gauge_value(r.g), 0);
    assert_int_equal(hub_metrics_histogram_count(r.h), THREADS * ROUNDS);
    struct hub_metrics_text t;
    char want[64];
    snprintf(want, sizeof(want), "race_seconds_sum %d\n", THREADS * ROUNDS / 2);
    assert_non_null(strstr(render(m, &t), want));
    hub_metrics_text_free(&t);
    hub_metrics_free(m);
}

static void test_default_registry_is_shared(void **state)
{
    (void)state;
    struct hub_metrics *d = hub_metrics_default();
    assert_non_null(d);
    assert_ptr_equal(hub_metrics_default(), d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_render_exact_text),
        cmocka_unit_test(test_histogram_without_labels_and_empty),
        cmocka_unit_test(test_get0_returns_the_same_series),
        cmocka_unit_test(test_registration_refusals),
        cmocka_unit_test(test_help_escaping_and_special_values),
        cmocka_unit_test(test_text_grows_past_first_block),
        cmocka_unit_test(test_updates_from_threads_lose_nothing),
        cmocka_unit_test(test_default_registry_is_shared),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
