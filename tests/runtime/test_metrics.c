/* test_metrics.c - runtime/metrics: exact concurrent updates, histogram
 * buckets, get-or-create, validation, and the Prometheus text output line by
 * line. Criterion runs each test in its own process; the fini still resets
 * the registry so leaks show under ASan. */
#include "runtime/metrics.h"

#include <criterion/criterion.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void teardown(void)
{
    metrics_reset();
}

TestSuite(metrics, .fini = teardown);

/* Asserts that the rendered registry is exactly the given lines, naming the
 * first line that differs. */
static void check_render(const char *const *want, size_t nwant)
{
    char *text = metrics_render();
    cr_assert_not_null(text);
    char *p = text;
    for (size_t i = 0; i < nwant; i++) {
        char *nl = strchr(p, '\n');
        cr_assert_not_null(nl, "output ends before line %zu (%s):\n%s", i + 1, want[i], text);
        *nl = '\0';
        cr_assert_str_eq(p, want[i], "line %zu differs", i + 1);
        p = nl + 1;
    }
    cr_assert_str_eq(p, "", "output goes on after the expected lines");
    free(text);
}

#define CHECK_RENDER(...)                                                                          \
    do {                                                                                           \
        static const char *const want_[] = {__VA_ARGS__};                                          \
        check_render(want_, sizeof want_ / sizeof want_[0]);                                       \
    } while (0)

/* ---- concurrency ---------------------------------------------------------- */

#define THREADS 4
#define PER_THREAD 100000

/* Workers wait at the barrier so they really overlap: started one by one,
 * 100k quick updates can finish before the next thread exists. */
typedef struct {
    metric_t *m;          /* the metric all threads update */
    pthread_barrier_t go; /* released once every thread is up */
} race_t;

static void *inc_many(void *arg)
{
    race_t *r = arg;
    pthread_barrier_wait(&r->go);
    for (int i = 0; i < PER_THREAD; i++)
        metric_inc(r->m);
    return NULL;
}

static void *observe_many(void *arg)
{
    race_t *r = arg;
    pthread_barrier_wait(&r->go);
    for (int i = 0; i < PER_THREAD; i++)
        metric_observe(r->m, (i % 2) ? 0.5 : 2.0);
    return NULL;
}

static void run_threads(void *(*fn)(void *), metric_t *m)
{
    race_t r = {.m = m};
    pthread_t t[THREADS];
    cr_assert_eq(pthread_barrier_init(&r.go, NULL, THREADS), 0);
    for (int i = 0; i < THREADS; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, fn, &r), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    pthread_barrier_destroy(&r.go);
}

Test(metrics, concurrent_counter_increments_are_exact)
{
    metric_t *c = metrics_counter("fenta_jobs_total", "Jobs run.", NULL);
    cr_assert_not_null(c);
    run_threads(inc_many, c);
    cr_assert_eq(metric_value(c), THREADS * PER_THREAD);
    CHECK_RENDER("# HELP fenta_jobs_total Jobs run.", "# TYPE fenta_jobs_total counter",
                 "fenta_jobs_total 400000");
}

Test(metrics, concurrent_observations_are_exact)
{
    const double b[] = {1};
    metric_t *h = metrics_histogram("lat", NULL, NULL, b, 1);
    run_threads(observe_many, h);
    cr_assert_eq(metric_value(h), THREADS * PER_THREAD);
    /* Half are 0.5, half 2.0: 4 * 100000 * 1.25, exact in a double. */
    CHECK_RENDER("# TYPE lat histogram", "lat_bucket{le=\"1\"} 200000",
                 "lat_bucket{le=\"+Inf\"} 400000", "lat_sum 500000", "lat_count 400000");
}

/* ---- values ------------------------------------------------------------- */

Test(metrics, gauge_set_add_inc)
{
    metric_t *g = metrics_gauge("queue_depth", "Depth.", "queue=\"io\"");
    cr_assert_not_null(g);
    cr_assert_eq(metric_value(g), 0);
    metric_set(g, 5);
    metric_add(g, -2.5);
    metric_inc(g);
    cr_assert_eq(metric_value(g), 3.5);
    metric_add(g, -10);
    cr_assert_eq(metric_value(g), -6.5);
    CHECK_RENDER("# HELP queue_depth Depth.", "# TYPE queue_depth gauge",
                 "queue_depth{queue=\"io\"} -6.5");
}

Test(metrics, counter_refuses_what_a_counter_cannot_do)
{
    metric_t *c = metrics_counter("c_total", NULL, NULL);
    metric_add(c, 2.5);
    metric_add(c, -1);
    metric_add(c, NAN);
    metric_set(c, 100);
    metric_observe(c, 1);
    cr_assert_eq(metric_value(c), 2.5);

    metric_t *h = metrics_histogram("h", NULL, NULL, NULL, 0);
    metric_inc(h);
    metric_add(h, 1);
    metric_set(h, 1);
    cr_assert_eq(metric_value(h), 0);
    metric_t *g = metrics_gauge("g", NULL, NULL);
    metric_observe(g, 3);
    cr_assert_eq(metric_value(g), 0);
}

Test(metrics, null_metric_is_a_no_op)
{
    metric_inc(NULL);
    metric_add(NULL, 1);
    metric_set(NULL, 1);
    metric_observe(NULL, 1);
    cr_assert_eq(metric_value(NULL), 0);
}

Test(metrics, numbers_print_shortest_round_trip)
{
    static const struct {
        double v;
        const char *text;
    } cases[] = {
        {0.1, "0.1"},
        {1e-7, "1e-07"},
        {123456789012.0, "123456789012"},
        {-2.5, "-2.5"},
        {INFINITY, "+Inf"},
        {-INFINITY, "-Inf"},
        {NAN, "NaN"},
        {1.0 / 3, "0.33333333333333331"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        metrics_reset();
        metric_set(metrics_gauge("g", NULL, NULL), cases[i].v);
        char want[64];
        snprintf(want, sizeof want, "g %s", cases[i].text);
        const char *lines[] = {"# TYPE g gauge", want};
        check_render(lines, 2);
    }
}

/* ---- histograms ----------------------------------------------------------- */

Test(metrics, histogram_buckets_are_cumulative)
{
    const double b[] = {0.125, 1, 5};
    metric_t *h = metrics_histogram("fenta_job_seconds", "Job time.", "kind=\"job\"", b, 3);
    cr_assert_not_null(h);
    const double obs[] = {0.0625, 0.125, 0.5, 1, 3, 7, 100}; /* bounds are inclusive */
    for (size_t i = 0; i < sizeof obs / sizeof obs[0]; i++)
        metric_observe(h, obs[i]);
    cr_assert_eq(metric_value(h), 7);
    CHECK_RENDER("# HELP fenta_job_seconds Job time.", "# TYPE fenta_job_seconds histogram",
                 "fenta_job_seconds_bucket{kind=\"job\",le=\"0.125\"} 2",
                 "fenta_job_seconds_bucket{kind=\"job\",le=\"1\"} 4",
                 "fenta_job_seconds_bucket{kind=\"job\",le=\"5\"} 5",
                 "fenta_job_seconds_bucket{kind=\"job\",le=\"+Inf\"} 7",
                 "fenta_job_seconds_sum{kind=\"job\"} 111.6875",
                 "fenta_job_seconds_count{kind=\"job\"} 7");
}

Test(metrics, histogram_default_buckets)
{
    metric_t *h = metrics_histogram("d", NULL, NULL, NULL, 0);
    metric_observe(h, 0.0005);
    metric_observe(h, 0.003);
    metric_observe(h, 11);
    CHECK_RENDER("# TYPE d histogram", "d_bucket{le=\"0.0005\"} 1", "d_bucket{le=\"0.001\"} 1",
                 "d_bucket{le=\"0.0025\"} 1", "d_bucket{le=\"0.005\"} 2", "d_bucket{le=\"0.01\"} 2",
                 "d_bucket{le=\"0.025\"} 2", "d_bucket{le=\"0.05\"} 2", "d_bucket{le=\"0.1\"} 2",
                 "d_bucket{le=\"0.25\"} 2", "d_bucket{le=\"0.5\"} 2", "d_bucket{le=\"1\"} 2",
                 "d_bucket{le=\"2.5\"} 2", "d_bucket{le=\"5\"} 2", "d_bucket{le=\"10\"} 2",
                 "d_bucket{le=\"+Inf\"} 3", "d_sum 11.0035", "d_count 3");
}

Test(metrics, histogram_refuses_bad_buckets_and_le_label)
{
    const double same[] = {1, 1}, down[] = {2, 1}, nan[] = {NAN}, inf[] = {1, INFINITY};
    cr_assert_null(metrics_histogram("h", NULL, NULL, same, 2));
    cr_assert_null(metrics_histogram("h", NULL, NULL, down, 2));
    cr_assert_null(metrics_histogram("h", NULL, NULL, nan, 1));
    cr_assert_null(metrics_histogram("h", NULL, NULL, inf, 2));
    cr_assert_null(metrics_histogram("h", NULL, "le=\"1\"", NULL, 0));
    cr_assert_null(metrics_histogram("h", NULL, "a=\"x\",le=\"1\"", NULL, 0));
    cr_assert_not_null(metrics_histogram("h", NULL, "lex=\"1\"", NULL, 0));
    cr_assert_not_null(metrics_counter("c", NULL, "le=\"1\""), "le is only reserved in histograms");
}

/* ---- registration -------------------------------------------------------- */

Test(metrics, get_or_create_returns_the_same_series)
{
    metric_t *a = metrics_counter("req_total", "Requests.", "code=\"200\"");
    metric_t *b = metrics_counter("req_total", "Other help.", "code=\"200\"");
    metric_t *c = metrics_counter("req_total", NULL, "code=\"500\"");
    cr_assert_not_null(a);
    cr_assert_eq(a, b);
    cr_assert_neq(a, c);
    cr_assert_eq(metrics_gauge("plain", NULL, NULL), metrics_gauge("plain", NULL, ""));
    const double bk[] = {1, 2};
    metric_t *h = metrics_histogram("hh", NULL, NULL, bk, 2);
    cr_assert_eq(metrics_histogram("hh", NULL, NULL, NULL, 0), h, "buckets stay the first ones");
    metric_inc(a);
    metric_add(c, 3);
    CHECK_RENDER("# HELP req_total Requests.", "# TYPE req_total counter",
                 "req_total{code=\"200\"} 1", "req_total{code=\"500\"} 3", "# TYPE plain gauge",
                 "plain 0", "# TYPE hh histogram", "hh_bucket{le=\"1\"} 0", "hh_bucket{le=\"2\"} 0",
                 "hh_bucket{le=\"+Inf\"} 0", "hh_sum 0", "hh_count 0");
}

Test(metrics, first_help_given_wins)
{
    metrics_counter("x_total", NULL, NULL);
    metrics_counter("x_total", "First.", "a=\"1\"");
    metrics_counter("x_total", "Second.", "a=\"2\"");
    CHECK_RENDER("# HELP x_total First.", "# TYPE x_total counter", "x_total 0",
                 "x_total{a=\"1\"} 0", "x_total{a=\"2\"} 0");
}

Test(metrics, help_is_escaped)
{
    metrics_gauge("g", "back\\slash\nnew \"line\"", NULL);
    CHECK_RENDER("# HELP g back\\\\slash\\nnew \"line\"", "# TYPE g gauge", "g 0");
}

Test(metrics, type_mismatch_returns_null)
{
    cr_assert_not_null(metrics_counter("m", NULL, NULL));
    cr_assert_null(metrics_gauge("m", NULL, NULL));
    cr_assert_null(metrics_gauge("m", NULL, "other=\"series\""));
    cr_assert_null(metrics_histogram("m", NULL, NULL, NULL, 0));
    cr_assert_not_null(metrics_histogram("n", NULL, NULL, NULL, 0));
    cr_assert_null(metrics_counter("n", NULL, NULL));
    CHECK_RENDER("# TYPE m counter", "m 0", "# TYPE n histogram", "n_bucket{le=\"0.0005\"} 0",
                 "n_bucket{le=\"0.001\"} 0", "n_bucket{le=\"0.0025\"} 0",
                 "n_bucket{le=\"0.005\"} 0", "n_bucket{le=\"0.01\"} 0", "n_bucket{le=\"0.025\"} 0",
                 "n_bucket{le=\"0.05\"} 0", "n_bucket{le=\"0.1\"} 0", "n_bucket{le=\"0.25\"} 0",
                 "n_bucket{le=\"0.5\"} 0", "n_bucket{le=\"1\"} 0", "n_bucket{le=\"2.5\"} 0",
                 "n_bucket{le=\"5\"} 0", "n_bucket{le=\"10\"} 0", "n_bucket{le=\"+Inf\"} 0",
                 "n_sum 0", "n_count 0");
}

Test(metrics, names_are_validated)
{
    static const char *const bad[] = {"", "1abc", "a-b", "a b", "caf\xc3\xa9", "a.b", "a{b}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_assert_null(metrics_counter(bad[i], NULL, NULL), "accepted \"%s\"", bad[i]);
        cr_assert_null(metrics_gauge(bad[i], NULL, NULL));
        cr_assert_null(metrics_histogram(bad[i], NULL, NULL, NULL, 0));
    }
    cr_assert_null(metrics_counter(NULL, NULL, NULL));
    static const char *const good[] = {"a", "_x", ":rule:total", "fenta_job_9_seconds", "A_Z"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        cr_assert_not_null(metrics_gauge(good[i], NULL, NULL), "refused \"%s\"", good[i]);
}

Test(metrics, label_sets_are_validated)
{
    static const char *const bad[] = {
        "kind=job",  "kind=\"a\"b", "kind=\"a\nb\"", "kind=\"a\",", "1k=\"v\"", "k=\"v",
        "k=\"\\x\"", "k:x=\"v\"",   ",k=\"v\"",      "k =\"v\"",    "=\"v\"",   "k=\"v\"\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_null(metrics_counter("c", NULL, bad[i]), "accepted label set %zu", i);
    metric_t *ok = metrics_counter("c", NULL, "k=\"a\\\"b\\\\c\\nd\",_x2=\"\"");
    cr_assert_not_null(ok);
    CHECK_RENDER("# TYPE c counter", "c{k=\"a\\\"b\\\\c\\nd\",_x2=\"\"} 0");
}

Test(metrics, reset_drops_everything)
{
    metric_inc(metrics_counter("a_total", "A.", NULL));
    metrics_gauge("b", NULL, NULL);
    metrics_reset();
    char *text = metrics_render();
    cr_assert_not_null(text);
    cr_assert_str_eq(text, "");
    free(text);
    /* A name may come back with another type once the registry is empty. */
    metric_t *g = metrics_gauge("a_total", NULL, NULL);
    cr_assert_not_null(g);
    cr_assert_eq(metric_value(g), 0);
}
