/* test_metrics.c - the metrics registry: counters, histograms and gauges rendered in the
 * Prometheus text format, label escaping, and counting from several threads at once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/metrics.h"

static const metric_def T_COUNTER = {"t_events_total", "Events\nwith a \\ in the help", METRIC_COUNTER,
                                     {"kind", "code"}, NULL, 0};
static const double t_buckets[] = {0.1, 1, 10};
static const metric_def T_HIST = {"t_latency_seconds", "Latency", METRIC_HISTOGRAM, {NULL}, t_buckets, 3};
static const metric_def T_GAUGE = {"t_depth", "Depth", METRIC_GAUGE, {"queue"}, NULL, 0};

static int reset(void **state)
{
    (void)state;
    metrics_reset();
    return 0;
}

/* render - the whole exposition text (caller frees). */
static char *render(void)
{
    strbuf out = {0};
    metrics_render(&out);
    return sb_steal(&out);
}

/* Counters: one line per label set, HELP escaped, label values escaped. */
static void test_counter(void **state)
{
    (void)state;
    metric_add(&T_COUNTER, (const char *const[]){"a", "5.1.1"}, 2);
    metric_add(&T_COUNTER, (const char *const[]){"a", "5.1.1"}, 3);
    metric_add(&T_COUNTER, (const char *const[]){"q\"uo\\te\nx", "4.0.0"}, 1);
    char *t = render();
    assert_string_equal(t, "# HELP t_events_total Events\\nwith a \\\\ in the help\n"
                           "# TYPE t_events_total counter\n"
                           "t_events_total{kind=\"a\",code=\"5.1.1\"} 5\n"
                           "t_events_total{kind=\"q\\\"uo\\\\te\\nx\",code=\"4.0.0\"} 1\n");
    free(t);
}

/* Histograms: cumulative buckets, +Inf equal to _count, the sum. */
static void test_histogram(void **state)
{
    (void)state;
    metric_observe(&T_HIST, NULL, 0.05);
    metric_observe(&T_HIST, NULL, 0.1); /* a bound is inclusive ("le") */
    metric_observe(&T_HIST, NULL, 5);
    metric_observe(&T_HIST, NULL, 50);
    char *t = render();
    assert_string_equal(t, "# HELP t_latency_seconds Latency\n"
                           "# TYPE t_latency_seconds histogram\n"
                           "t_latency_seconds_bucket{le=\"0.1\"} 2\n"
                           "t_latency_seconds_bucket{le=\"1\"} 2\n"
                           "t_latency_seconds_bucket{le=\"10\"} 3\n"
                           "t_latency_seconds_bucket{le=\"+Inf\"} 4\n"
                           "t_latency_seconds_sum 55.15\n"
                           "t_latency_seconds_count 4\n");
    free(t);
}

static void gauge_cb(void *arg, metric_emit *e)
{
    metric_emit_value(e, (const char *const[]){"x"}, *(double *)arg);
    metric_emit_value(e, (const char *const[]){"y"}, 0.25);
}

/* Gauges are computed at rendering; an unregistered owner is no longer asked. */
static void test_gauge(void **state)
{
    (void)state;
    double v = 7;
    metric_gauge_register(&T_GAUGE, gauge_cb, &v);
    char *t = render();
    assert_string_equal(t, "# HELP t_depth Depth\n# TYPE t_depth gauge\nt_depth{queue=\"x\"} 7\nt_depth{queue=\"y\"} 0.25\n");
    free(t);
    v = 8;
    t = render();
    assert_non_null(strstr(t, "t_depth{queue=\"x\"} 8\n"));
    free(t);
    metric_gauge_unregister(&v);
    t = render();
    assert_string_equal(t, "# HELP t_depth Depth\n# TYPE t_depth gauge\n");
    free(t);
}

/* The catalogue: every family present at once, unlabelled counters and histograms as zeros. */
static void test_catalogue(void **state)
{
    (void)state;
    metrics_declare_all();
    char *t = render();
    assert_non_null(strstr(t, "# TYPE sluice_sessions_total counter\n"));
    assert_non_null(strstr(t, "\nsluice_store_commit_batches_total 0\n"));
    assert_non_null(strstr(t, "\nsluice_store_flush_seconds_bucket{le=\"+Inf\"} 0\n"));
    assert_non_null(strstr(t, "\nsluice_store_flush_seconds_count 0\n"));
    assert_true(strstr(t, "sluice_build_info") < strstr(t, "sluice_sessions_total"));
    free(t);
}

static void *adder(void *arg)
{
    const char *kind = arg;
    for (int i = 0; i < 20000; i++) {
        metric_add(&T_COUNTER, (const char *const[]){kind, "2.0.0"}, 1);
        metric_observe(&T_HIST, NULL, 0.5);
    }
    return NULL;
}

/* Four threads counting at once lose nothing. */
static void test_threads(void **state)
{
    (void)state;
    pthread_t th[4];
    const char *kinds[] = {"a", "b", "a", "b"};
    for (int i = 0; i < 4; i++) pthread_create(&th[i], NULL, adder, (void *)kinds[i]);
    for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
    char *t = render();
    assert_non_null(strstr(t, "t_events_total{kind=\"a\",code=\"2.0.0\"} 40000\n"));
    assert_non_null(strstr(t, "t_events_total{kind=\"b\",code=\"2.0.0\"} 40000\n"));
    assert_non_null(strstr(t, "t_latency_seconds_count 80000\n"));
    assert_non_null(strstr(t, "t_latency_seconds_sum 40000\n"));
    free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_counter, reset),   cmocka_unit_test_setup(test_histogram, reset),
        cmocka_unit_test_setup(test_gauge, reset),     cmocka_unit_test_setup(test_catalogue, reset),
        cmocka_unit_test_setup(test_threads, reset),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    metrics_reset();
    return rc;
}
