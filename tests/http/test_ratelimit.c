/* test_ratelimit.c - token buckets: a burst then refusal with the right
 * Retry-After, refill over simulated time, independent keys, many threads on
 * one key never getting more than burst + rate * elapsed, memory bounded
 * under a million distinct keys (without forgetting a hot key), the header
 * values, and the configuration parser's refusals. */
#include "http/ratelimit.h"
#include "runtime/error.h"
#include <criterion/criterion.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define SEC 1000000LL /* microseconds */

static ratelimit_result_t take(ratelimit_t *rl, const char *key, double rate, double burst,
                               int64_t now)
{
    ratelimit_result_t r;
    cr_assert_eq(ratelimit_take_at(rl, key, rate, burst, now, &r), 0);
    return r;
}

Test(ratelimit, burst_then_refusal_with_retry_after)
{
    ratelimit_t *rl = ratelimit_new(0);
    cr_assert_not_null(rl);
    int64_t t0 = 1000 * SEC;
    for (long i = 0; i < 5; i++) {
        ratelimit_result_t r = take(rl, "ip:1.2.3.4", 1, 5, t0);
        cr_assert(r.allowed, "request %ld of the burst refused", i);
        cr_assert_eq(r.limit, 5);
        cr_assert_eq(r.remaining, 4 - i);
        cr_assert_eq(r.retry_after, 0);
        cr_assert_eq(r.reset, i + 1, "reset after %ld takes: %ld", i + 1, r.reset);
    }
    ratelimit_result_t r = take(rl, "ip:1.2.3.4", 1, 5, t0);
    cr_assert_not(r.allowed);
    cr_assert_eq(r.remaining, 0);
    cr_assert_eq(r.retry_after, 1);
    cr_assert_eq(r.reset, 5);

    /* the login limit: 0.2/s, burst 5 */
    for (int i = 0; i < 5; i++)
        cr_assert(take(rl, "route:POST /v1/auth/login|ip:1.2.3.4", 0.2, 5, t0).allowed);
    r = take(rl, "route:POST /v1/auth/login|ip:1.2.3.4", 0.2, 5, t0);
    cr_assert_not(r.allowed);
    cr_assert_eq(r.retry_after, 5);
    cr_assert_eq(r.reset, 25);
    /* 2.5 s later half a token is back: still refused, 3 s to go (rounded up) */
    r = take(rl, "route:POST /v1/auth/login|ip:1.2.3.4", 0.2, 5, t0 + 5 * SEC / 2);
    cr_assert_not(r.allowed);
    cr_assert_eq(r.retry_after, 3);
    /* and after Retry-After it is allowed */
    cr_assert(take(rl, "route:POST /v1/auth/login|ip:1.2.3.4", 0.2, 5, t0 + 5 * SEC).allowed);
    ratelimit_destroy(&rl);
    cr_assert_null(rl);
    ratelimit_destroy(&rl);
}

Test(ratelimit, retry_after_is_at_least_one_second)
{
    ratelimit_t *rl = ratelimit_new(0);
    int64_t t = 5 * SEC;
    for (int i = 0; i < 100; i++)
        take(rl, "k", 1000, 100, t);
    ratelimit_result_t r = take(rl, "k", 1000, 100, t);
    cr_assert_not(r.allowed);
    cr_assert_eq(r.retry_after, 1, "a 1 ms wait is still announced as 1 s");
    ratelimit_destroy(&rl);
}

Test(ratelimit, refill_over_simulated_time)
{
    ratelimit_t *rl = ratelimit_new(0);
    int64_t t = 50 * SEC;
    for (int i = 0; i < 4; i++)
        cr_assert(take(rl, "user:7", 2, 4, t).allowed);
    cr_assert_not(take(rl, "user:7", 2, 4, t).allowed);
    cr_assert_not(take(rl, "user:7", 2, 4, t + 400000).allowed, "0.8 tokens after 0.4 s");
    ratelimit_result_t r = take(rl, "user:7", 2, 4, t + 500000);
    cr_assert(r.allowed, "one token after 0.5 s");
    cr_assert_eq(r.remaining, 0);
    cr_assert_not(take(rl, "user:7", 2, 4, t + 500000).allowed);
    cr_assert(take(rl, "user:7", 2, 4, t + 1000000).allowed);

    /* a long idle time refills to burst, not beyond */
    int64_t later = t + 3600 * SEC;
    for (int i = 0; i < 4; i++) {
        r = take(rl, "user:7", 2, 4, later);
        cr_assert(r.allowed);
        cr_assert_eq(r.remaining, 3 - i);
    }
    cr_assert_not(take(rl, "user:7", 2, 4, later).allowed);

    /* time that goes backwards gives nothing back and breaks nothing */
    cr_assert_not(take(rl, "user:7", 2, 4, later - 10 * SEC).allowed);
    cr_assert_not(take(rl, "user:7", 2, 4, later + 400000).allowed);
    cr_assert(take(rl, "user:7", 2, 4, later + 500000).allowed);
    ratelimit_destroy(&rl);
}

Test(ratelimit, keys_are_independent)
{
    ratelimit_t *rl = ratelimit_new(0);
    int64_t t = 9 * SEC;
    for (int i = 0; i < 3; i++)
        take(rl, "ip:10.0.0.1", 1, 3, t);
    cr_assert_not(take(rl, "ip:10.0.0.1", 1, 3, t).allowed);
    cr_assert(take(rl, "ip:10.0.0.2", 1, 3, t).allowed);
    cr_assert(take(rl, "user:10.0.0.1", 1, 3, t).allowed);
    cr_assert(take(rl, "ip:10.0.0.1 ", 1, 3, t).allowed, "keys compare exactly");
    ratelimit_result_t r = take(rl, "ip:10.0.0.2", 1, 3, t);
    cr_assert_eq(r.remaining, 1, "the other key's bucket is its own");
    cr_assert_not(take(rl, "ip:10.0.0.1", 1, 3, t).allowed);
    ratelimit_destroy(&rl);
}

Test(ratelimit, bad_arguments)
{
    ratelimit_t *rl = ratelimit_new(0);
    ratelimit_result_t r;
    cr_assert_eq(ratelimit_take_at(rl, "k", 0, 5, 0, &r), FENTA_EINVAL);
    cr_assert_eq(ratelimit_take_at(rl, "k", -1, 5, 0, &r), FENTA_EINVAL);
    cr_assert_eq(ratelimit_take_at(rl, "k", NAN, 5, 0, &r), FENTA_EINVAL);
    cr_assert_eq(ratelimit_take_at(rl, "k", INFINITY, 5, 0, &r), FENTA_EINVAL);
    cr_assert_eq(ratelimit_take_at(rl, "k", 1, 0.5, 0, &r), FENTA_EINVAL);
    cr_assert_eq(ratelimit_take_at(rl, NULL, 1, 5, 0, &r), FENTA_EINVAL);
    char longkey[RATELIMIT_MAX_KEY + 2];
    memset(longkey, 'k', sizeof longkey - 1);
    longkey[sizeof longkey - 1] = '\0';
    cr_assert_eq(ratelimit_take_at(rl, longkey, 1, 5, 0, &r), FENTA_EINVAL);
    longkey[RATELIMIT_MAX_KEY] = '\0';
    cr_assert_eq(ratelimit_take_at(rl, longkey, 1, 5, 0, &r), 0);
    cr_assert_eq(ratelimit_take(rl, "clock", 1, 5, &r), 0);
    cr_assert(r.allowed);
    ratelimit_destroy(&rl);
}

/* ---- threads -------------------------------------------------------------- */

typedef struct {
    ratelimit_t *rl;      /* shared limiter */
    _Atomic int64_t *now; /* shared simulated clock, or NULL for the real one */
    int64_t step;         /* simulated microseconds per take */
    int takes;            /* takes per thread */
    double rate, burst;   /* the limit */
    long allowed;         /* out: takes allowed */
    int errors;           /* out: takes that failed */
} hammer_t;

static void *hammer(void *arg)
{
    hammer_t *h = arg;
    for (int i = 0; i < h->takes; i++) {
        ratelimit_result_t r;
        int rc;
        if (h->now)
            rc = ratelimit_take_at(h->rl, "ip:hot", h->rate, h->burst,
                                   atomic_fetch_add(h->now, h->step) + h->step, &r);
        else
            rc = ratelimit_take(h->rl, "ip:hot", h->rate, h->burst, &r);
        if (rc != 0)
            h->errors++;
        else if (r.allowed)
            h->allowed++;
    }
    return NULL;
}

static long run_threads(hammer_t *tmpl, int nthreads)
{
    pthread_t th[16];
    hammer_t hs[16];
    for (int i = 0; i < nthreads; i++) {
        hs[i] = *tmpl;
        cr_assert_eq(pthread_create(&th[i], NULL, hammer, &hs[i]), 0);
    }
    long allowed = 0;
    for (int i = 0; i < nthreads; i++) {
        pthread_join(th[i], NULL);
        cr_assert_eq(hs[i].errors, 0);
        allowed += hs[i].allowed;
    }
    return allowed;
}

Test(ratelimit, eight_threads_at_one_instant_get_exactly_the_burst)
{
    ratelimit_t *rl = ratelimit_new(0);
    _Atomic int64_t now = 77 * SEC;
    hammer_t h = {.rl = rl, .now = &now, .step = 0, .takes = 20000, .rate = 1, .burst = 1000};
    long allowed = run_threads(&h, 8);
    cr_assert_eq(allowed, 1000, "8 threads got %ld tokens from a bucket of 1000", allowed);
    ratelimit_destroy(&rl);
}

Test(ratelimit, eight_threads_over_simulated_time_never_exceed_the_limit)
{
    ratelimit_t *rl = ratelimit_new(0);
    int64_t start = 3 * SEC;
    _Atomic int64_t now = start;
    /* 8 x 20000 takes, 10 us of simulated time each: 1.6 s at 1000/s */
    hammer_t h = {.rl = rl, .now = &now, .step = 10, .takes = 20000, .rate = 1000, .burst = 10};
    long allowed = run_threads(&h, 8);
    double elapsed = (double)(atomic_load(&now) - start) / 1e6;
    double bound = 10 + 1000 * elapsed;
    cr_assert_leq(allowed, (long)floor(bound + 1e-6), "allowed %ld > %.1f", allowed, bound);
    /* threads reach the lock out of clock order, which must not lose refill either */
    cr_assert_geq(allowed, (long)bound - 2, "allowed %ld, expected about %.1f", allowed, bound);
    ratelimit_destroy(&rl);
}

static int64_t real_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * SEC + ts.tv_nsec / 1000;
}

Test(ratelimit, eight_threads_on_the_real_clock_never_exceed_the_limit)
{
    ratelimit_t *rl = ratelimit_new(0);
    hammer_t h = {.rl = rl, .now = NULL, .takes = 50000, .rate = 2000, .burst = 50};
    int64_t t0 = real_us();
    long allowed = run_threads(&h, 8);
    double elapsed = (double)(real_us() - t0) / 1e6;
    double bound = 50 + 2000 * elapsed;
    cr_assert_leq(allowed, (long)floor(bound + 1e-6), "allowed %ld in %.3f s > %.1f", allowed,
                  elapsed, bound);
    cr_assert_geq(allowed, 50, "at least the burst");
    ratelimit_destroy(&rl);
}

/* ---- memory bounds -------------------------------------------------------- */

Test(ratelimit, a_million_keys_stay_within_the_bound, .timeout = 60)
{
    ratelimit_t *rl = ratelimit_new(10000);
    ratelimit_stats_t st;
    ratelimit_stats(rl, &st);
    cr_assert_eq(st.max_entries, 9984, "10000 rounded down to 64 shards: %zu", st.max_entries);
    char key[32];
    int64_t t = 10 * SEC;
    for (int i = 0; i < 1000000; i++) {
        snprintf(key, sizeof key, "ip:%d", i);
        /* 1 token per 100 s: no bucket refills during the run */
        ratelimit_result_t r = take(rl, key, 0.01, 10, t + i);
        cr_assert(r.allowed && r.remaining == 9, "key %d: a new key gets a full bucket", i);
        if (i % 100000 == 0) {
            ratelimit_stats(rl, &st);
            cr_assert_leq(st.entries, st.max_entries);
        }
    }
    ratelimit_stats(rl, &st);
    cr_assert_leq(st.entries, 9984);
    cr_assert_geq(st.entries, 9000, "the table is used, not emptied: %zu", st.entries);
    cr_assert_eq(st.evicted_cap, 1000000 - st.entries);
    /* all of them refill after 100 s; a sweep then drops every one */
    cr_assert_eq(ratelimit_sweep(rl, t + 1000 * SEC), st.entries);
    ratelimit_stats(rl, &st);
    cr_assert_eq(st.entries, 0);
    ratelimit_destroy(&rl);
}

Test(ratelimit, idle_full_buckets_are_dropped_on_the_way, .timeout = 60)
{
    ratelimit_t *rl = ratelimit_new(100000);
    char key[32];
    /* 1 token per ms, burst 1: every bucket is full again 1 ms later */
    for (int i = 0; i < 1000000; i++) {
        snprintf(key, sizeof key, "user:%d", i);
        take(rl, key, 1000, 1, (int64_t)i * 1000);
    }
    ratelimit_stats_t st;
    ratelimit_stats(rl, &st);
    cr_assert_lt(st.entries, 1000, "full buckets pile up: %zu", st.entries);
    cr_assert_eq(st.evicted_cap, 0, "no bucket with state was dropped");
    cr_assert_eq(st.evicted_idle + st.entries, 1000000);
    ratelimit_destroy(&rl);
}

Test(ratelimit, a_hot_key_survives_a_flood_of_new_keys)
{
    ratelimit_t *rl = ratelimit_new(256); /* 4 per shard */
    int64_t t = SEC;
    for (int i = 0; i < 5; i++)
        take(rl, "ip:attacker", 0.001, 5, t);
    char key[32];
    for (int i = 0; i < 200000; i++) {
        snprintf(key, sizeof key, "ip:spoof-%d", i);
        take(rl, key, 0.001, 5, t);
        cr_assert_not(take(rl, "ip:attacker", 0.001, 5, t).allowed,
                      "the hot key was evicted after %d new keys", i);
    }
    ratelimit_stats_t st;
    ratelimit_stats(rl, &st);
    cr_assert_leq(st.entries, 256);
    ratelimit_destroy(&rl);
}

/* ---- results and headers -------------------------------------------------- */

Test(ratelimit, headers)
{
    ratelimit_headers_t h;
    ratelimit_result_t ok = {.allowed = true, .limit = 40, .remaining = 39, .reset = 1};
    ratelimit_headers(&ok, &h);
    cr_assert_str_eq(h.limit, "40");
    cr_assert_str_eq(h.remaining, "39");
    cr_assert_str_eq(h.reset, "1");
    cr_assert_str_eq(h.retry_after, "");
    ratelimit_result_t no = {
        .allowed = false, .limit = 5, .remaining = 0, .reset = 25, .retry_after = 5};
    ratelimit_headers(&no, &h);
    cr_assert_str_eq(h.retry_after, "5");
    cr_assert_str_eq(h.reset, "25");
    cr_assert_str_eq(h.remaining, "0");
}

Test(ratelimit, merging_several_limits)
{
    ratelimit_result_t ip = {.allowed = true, .limit = 40, .remaining = 30, .reset = 1};
    ratelimit_result_t user = {.allowed = true, .limit = 20, .remaining = 2, .reset = 3};
    ratelimit_result_t route = {
        .allowed = false, .limit = 5, .remaining = 0, .reset = 25, .retry_after = 5};
    ratelimit_result_t route2 = {
        .allowed = false, .limit = 5, .remaining = 0, .reset = 9, .retry_after = 9};
    ratelimit_result_t acc = ip;
    ratelimit_result_merge(&acc, &user);
    cr_assert(acc.allowed);
    cr_assert_eq(acc.remaining, 2, "the least remaining binds");
    cr_assert_eq(acc.limit, 20);
    ratelimit_result_merge(&acc, &route);
    cr_assert_not(acc.allowed);
    cr_assert_eq(acc.retry_after, 5);
    ratelimit_result_merge(&acc, &ip);
    cr_assert_not(acc.allowed, "an allowed limit does not undo a refusal");
    ratelimit_result_merge(&acc, &route2);
    cr_assert_eq(acc.retry_after, 9, "the longest wait binds");
}

/* ---- configuration -------------------------------------------------------- */

static int parse(const char *text, ratelimit_config_t **out, char *err, size_t errlen)
{
    json_error_t je;
    json_t *j = json_loads(text, JSON_DECODE_ANY, &je);
    cr_assert_not_null(j, "bad test JSON: %s", je.text);
    int rc = ratelimit_config_parse(j, out, err, errlen);
    json_decref(j);
    return rc;
}

Test(ratelimit, config_parses)
{
    ratelimit_config_t *c = NULL;
    char err[256];
    int rc = parse("{\"ip\":{\"rate\":20,\"burst\":40},\"user\":{\"rate\":10.5,\"burst\":20.0},"
                   "\"routes\":{\"POST /v1/auth/login\":{\"rate\":0.2,\"burst\":5},"
                   "\"POST /v1/auth/register\":{\"rate\":0.05,\"burst\":3}},\"max_keys\":50000}",
                   &c, err, sizeof err);
    cr_assert_eq(rc, 0, "%s", err);
    cr_assert(c->has_ip && c->has_user);
    cr_assert_float_eq(c->ip.rate, 20, 1e-12);
    cr_assert_float_eq(c->ip.burst, 40, 1e-12);
    cr_assert_float_eq(c->user.rate, 10.5, 1e-12);
    cr_assert_eq(c->nroutes, 2);
    cr_assert_eq(c->max_entries, 50000);
    const ratelimit_limit_t *l = ratelimit_config_route(c, "POST /v1/auth/login");
    cr_assert_not_null(l);
    cr_assert_float_eq(l->rate, 0.2, 1e-12);
    cr_assert_float_eq(l->burst, 5, 1e-12);
    cr_assert_not_null(ratelimit_config_route(c, "POST /v1/auth/register"));
    cr_assert_null(ratelimit_config_route(c, "GET /v1/auth/login"));
    cr_assert_null(ratelimit_config_route(c, "POST /v1/auth/login/"));
    ratelimit_config_destroy(&c);
    cr_assert_null(c);

    /* everything is optional */
    cr_assert_eq(parse("{}", &c, err, sizeof err), 0);
    cr_assert(!c->has_ip && !c->has_user && c->nroutes == 0 && c->max_entries == 0);
    ratelimit_config_destroy(&c);
}

Test(ratelimit, config_errors_name_the_member)
{
    static const struct {
        const char *text;
        const char *in_message;
    } cases[] = {
        {"[]", "must be an object"},
        {"{\"ips\":{\"rate\":1,\"burst\":1}}", "unknown member \"ips\""},
        {"{\"ip\":{\"rate\":1}}", "ip: needs both rate and burst"},
        {"{\"ip\":5}", "ip: must be an object"},
        {"{\"ip\":{\"rate\":0,\"burst\":5}}", "ip.rate"},
        {"{\"ip\":{\"rate\":-2,\"burst\":5}}", "ip.rate"},
        {"{\"user\":{\"rate\":\"20\",\"burst\":5}}", "user.rate"},
        {"{\"user\":{\"rate\":1,\"burst\":0}}", "user.burst"},
        {"{\"user\":{\"rate\":1,\"burst\":2.5}}", "user.burst"},
        {"{\"user\":{\"rate\":1,\"burst\":5,\"window\":60}}", "unknown member \"window\""},
        {"{\"routes\":[]}", "routes: must be an object"},
        {"{\"routes\":{\"post /v1/x\":{\"rate\":1,\"burst\":1}}}", "routes[\"post /v1/x\"]"},
        {"{\"routes\":{\"POST v1/x\":{\"rate\":1,\"burst\":1}}}", "METHOD /path"},
        {"{\"routes\":{\"POST  /v1/x\":{\"rate\":1,\"burst\":1}}}", "METHOD /path"},
        {"{\"routes\":{\"FETCH /v1/x\":{\"rate\":1,\"burst\":1}}}", "METHOD /path"},
        {"{\"routes\":{\"POST /v1/x y\":{\"rate\":1,\"burst\":1}}}", "METHOD /path"},
        {"{\"routes\":{\"/v1/x\":{\"rate\":1,\"burst\":1}}}", "METHOD /path"},
        {"{\"routes\":{\"GET /ok\":{\"rate\":1,\"burst\":1},\"GET "
         "/bad\":{\"rate\":0,\"burst\":1}}}",
         "routes[\"GET /bad\"].rate"},
        {"{\"max_keys\":0}", "max_keys"},
        {"{\"max_keys\":\"many\"}", "max_keys"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ratelimit_config_t *c = (ratelimit_config_t *)1;
        char err[256] = "";
        cr_assert_eq(parse(cases[i].text, &c, err, sizeof err), FENTA_EINVAL, "%s was accepted",
                     cases[i].text);
        cr_assert_null(c);
        cr_assert(strstr(err, cases[i].in_message), "%s: message \"%s\" lacks \"%s\"",
                  cases[i].text, err, cases[i].in_message);
    }
}
