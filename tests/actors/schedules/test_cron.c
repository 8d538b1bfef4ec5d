/* test_cron.c - cron expressions parse or are refused naming the field at
 * fault, and fire when a user expects them to, in UTC and across the 2026
 * daylight-saving changes of Berlin and New York. The expected fire times
 * come from a separate minute-by-minute reference over Python's zoneinfo,
 * not from this code. */
#include "actors/schedules/cron.h"
#include "actors/schedules/tz.h"
#include "runtime/error.h"
#include "tests/support/fixtures.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static const char *iso(int64_t t, char *buf, size_t len)
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

/* ---- refusals ------------------------------------------------------------------- */

static const struct {
    const char *expr;
    const char *field;
    const char *message;
} bad[] = {
    {"", "expression", "expression: the expression is empty"},
    {" \t ", "expression", "expression: the expression is empty"},
    {"* * * *", "expression",
     "expression: expected 5 fields (minute hour day_of_month month day_of_week), found 4"},
    {"* * * * * *", "expression",
     "expression: expected 5 fields (minute hour day_of_month month day_of_week), found 6"},
    {"0 0 * * * extra", "expression",
     "expression: expected 5 fields (minute hour day_of_month month day_of_week), found 6"},
    {"@reboot", "expression",
     "expression: unknown macro \"@reboot\" (known: @yearly, @annually, @monthly, @weekly, "
     "@daily, @midnight, @hourly)"},
    {"@daily 5", "expression", "expression: @daily takes no fields, found \"5\" after it"},
    {"61 * * * *", "minute", "minute: 61 is out of range 0-59"},
    {"99999999999 * * * *", "minute", "minute: 99999999999 is out of range 0-59"},
    {"* 24 * * *", "hour", "hour: 24 is out of range 0-23"},
    {"* * 0 * *", "day_of_month", "day_of_month: 0 is out of range 1-31"},
    {"* * 32 * *", "day_of_month", "day_of_month: 32 is out of range 1-31"},
    {"* * * 0 *", "month", "month: 0 is out of range 1-12"},
    {"* * * 13 *", "month", "month: 13 is out of range 1-12"},
    {"* * * * 8", "day_of_week", "day_of_week: 8 is out of range 0-7"},
    {"*/0 * * * *", "minute", "minute: step 0 is out of range 1-60"},
    {"* 1-5/0 * * *", "hour", "hour: step 0 is out of range 1-24"},
    {"* */25 * * *", "hour", "hour: step 25 is out of range 1-24"},
    {"* * 20-10 * *", "day_of_month",
     "day_of_month: range 20-10 is reversed; write the smaller end first"},
    {"* * * DEC-JAN *", "month", "month: range DEC-JAN is reversed; write the smaller end first"},
    {"* * * * FRI-MON", "day_of_week",
     "day_of_week: range FRI-MON is reversed; write the smaller end first"},
    {"5x * * * *", "minute", "minute: unexpected \"x\" in \"5x\""},
    {"-1 * * * *", "minute", "minute: unexpected \"-1\" in \"-1\""},
    {"** * * * *", "minute", "minute: unexpected \"*\" in \"**\""},
    {"1-5/2/3 * * * *", "minute", "minute: unexpected \"/3\" in \"1-5/2/3\""},
    {"1,,2 * * * *", "minute", "minute: empty item in list \"1,,2\""},
    {"* 1, * * *", "hour", "hour: empty item in list \"1,\""},
    {"1- * * * *", "minute", "minute: \"1-\" ends where a value was expected"},
    {"*/ * * * *", "minute", "minute: \"*/\" has no step after \"/\""},
    {"*/x * * * *", "minute", "minute: step \"x\" is not a number"},
    {"* * * * */MON", "day_of_week", "day_of_week: step \"MON\" is not a number"},
    {"MON * * * *", "minute", "minute: \"MON\" is not a number"},
    {"* * JAN * *", "day_of_month", "day_of_month: \"JAN\" is not a number"},
    {"* * * FOO *", "month", "month: \"FOO\" is not a month name (JAN-DEC)"},
    {"* * * * MONDAY", "day_of_week", "day_of_week: \"MONDAY\" is not a day name (SUN-SAT)"},
    {"* * * * 1-8", "day_of_week", "day_of_week: 8 is out of range 0-7"},
};

Test(cron, bad_expressions_name_the_field)
{
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cron_error_t err;
        cron_t *c = cron_parse(bad[i].expr, &err);
        cr_expect_null(c, "'%s' parsed", bad[i].expr);
        cron_destroy(&c);
        cr_expect_str_eq(err.field, bad[i].field, "'%s'", bad[i].expr);
        cr_expect_str_eq(err.message, bad[i].message, "'%s'", bad[i].expr);
    }
    cron_error_t err;
    cr_expect_null(cron_parse(NULL, &err));
    cr_expect_str_eq(err.field, "expression");
    cr_expect_null(cron_parse("61 * * * *", NULL)); /* no error struct is fine */
}

/* ---- fire times ----------------------------------------------------------------- */

/* From after, the next fire times in order (up to 8). */
typedef struct run {
    const char *expr;
    const char *zone;
    const char *after;
    const char *next[8];
} run_t;

static const run_t runs_utc[] = {
    /* UTC: syntax */
    {"* * * * *", "UTC", "2026-05-04T10:00:30Z", {"2026-05-04T10:01:00Z", "2026-05-04T10:02:00Z"}},
    {"* * * * *", "UTC", "2026-05-04T10:00:00Z", {"2026-05-04T10:01:00Z"}},
    {"0 * * * *", "UTC", "2026-05-04T10:00:00Z", {"2026-05-04T11:00:00Z", "2026-05-04T12:00:00Z"}},
    {"*/15 * * * *",
     "UTC",
     "2026-05-04T10:07:00Z",
     {"2026-05-04T10:15:00Z", "2026-05-04T10:30:00Z", "2026-05-04T10:45:00Z"}},
    {"5/20 * * * *",
     "UTC",
     "2026-05-04T10:07:00Z",
     {"2026-05-04T10:25:00Z", "2026-05-04T10:45:00Z", "2026-05-04T11:05:00Z"}},
    {"10-40/15 9-10 * * *",
     "UTC",
     "2026-05-04T10:07:00Z",
     {"2026-05-04T10:10:00Z", "2026-05-04T10:25:00Z", "2026-05-04T10:40:00Z",
      "2026-05-05T09:10:00Z"}},
    {"0 9 * JAN,jul mon-fri",
     "UTC",
     "2026-05-04T10:07:00Z",
     {"2026-07-01T09:00:00Z", "2026-07-02T09:00:00Z", "2026-07-03T09:00:00Z"}},
    {"0 12 * * 7", "UTC", "2026-05-04T10:07:00Z", {"2026-05-10T12:00:00Z", "2026-05-17T12:00:00Z"}},
    {"0 12 * * 0", "UTC", "2026-05-04T10:07:00Z", {"2026-05-10T12:00:00Z", "2026-05-17T12:00:00Z"}},
    {"0 0 * * 5-7",
     "UTC",
     "2026-05-04T10:07:00Z",
     {"2026-05-08T00:00:00Z", "2026-05-09T00:00:00Z", "2026-05-10T00:00:00Z",
      "2026-05-15T00:00:00Z"}},
    {"0 0 1,15 * *",
     "UTC",
     "2026-03-10T00:00:00Z",
     {"2026-03-15T00:00:00Z", "2026-04-01T00:00:00Z", "2026-04-15T00:00:00Z"}},
    {"0 0 31 * *",
     "UTC",
     "2026-03-31T00:00:00Z",
     {"2026-05-31T00:00:00Z", "2026-07-31T00:00:00Z", "2026-08-31T00:00:00Z"}},
    {"0 0 29 2 *", "UTC", "2026-03-01T00:00:00Z", {"2028-02-29T00:00:00Z"}},
    {"0 0 29 2 *",
     "UTC",
     "2097-03-01T00:00:00Z",
     {"2104-02-29T00:00:00Z"}}, /* 2100 is no leap year */
    {"0 0 1 1 *", "UTC", "1960-06-01T00:00:00Z", {"1961-01-01T00:00:00Z"}},
    /* UTC: day of month OR day of week when both are restricted, AND otherwise */
    {"0 0 13 * 5",
     "UTC",
     "2026-03-01T00:00:00Z",
     {"2026-03-06T00:00:00Z", "2026-03-13T00:00:00Z", "2026-03-20T00:00:00Z",
      "2026-03-27T00:00:00Z"}},
    {"0 0 */2 * 1",
     "UTC",
     "2026-03-01T00:00:00Z",
     {"2026-03-09T00:00:00Z", "2026-03-23T00:00:00Z", "2026-04-13T00:00:00Z"}},
    /* UTC: macros */
    {"@hourly", "UTC", "2026-05-04T10:20:00Z", {"2026-05-04T11:00:00Z", "2026-05-04T12:00:00Z"}},
    {"@daily", "UTC", "2026-05-04T10:20:00Z", {"2026-05-05T00:00:00Z", "2026-05-06T00:00:00Z"}},
    {"@midnight", "UTC", "2026-05-04T10:20:00Z", {"2026-05-05T00:00:00Z"}},
    {"@weekly", "UTC", "2026-05-04T10:20:00Z", {"2026-05-10T00:00:00Z", "2026-05-17T00:00:00Z"}},
    {"@monthly", "UTC", "2026-05-04T10:20:00Z", {"2026-06-01T00:00:00Z", "2026-07-01T00:00:00Z"}},
    {"@yearly", "UTC", "2026-05-04T10:20:00Z", {"2027-01-01T00:00:00Z", "2028-01-01T00:00:00Z"}},
    {" @ANNUALLY ", "UTC", "2026-05-04T10:20:00Z", {"2027-01-01T00:00:00Z"}},
    {"0 0 * * *", "Asia/Kolkata", "2026-05-04T10:20:00Z", {"2026-05-04T18:30:00Z"}},
};

static const run_t runs_berlin[] = {
    /* Berlin, spring forward 29 March 2026: 02:30 does not exist, fires at 03:00 CEST */
    {"30 2 * * *",
     "Europe/Berlin",
     "2026-03-28T12:00:00Z",
     {"2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z", "2026-03-31T00:30:00Z"}},
    {"*/15 * * * *",
     "Europe/Berlin",
     "2026-03-29T00:30:00Z",
     {"2026-03-29T00:45:00Z", "2026-03-29T01:00:00Z", "2026-03-29T01:15:00Z",
      "2026-03-29T01:30:00Z", "2026-03-29T01:45:00Z"}},
    {"0 2,3 * * *", /* 02:00 (gap) and 03:00 are the same instant: one fire */
     "Europe/Berlin",
     "2026-03-28T12:00:00Z",
     {"2026-03-29T01:00:00Z", "2026-03-30T00:00:00Z", "2026-03-30T01:00:00Z"}},
    {"59 1 * * *",
     "Europe/Berlin",
     "2026-03-28T12:00:00Z",
     {"2026-03-29T00:59:00Z", "2026-03-29T23:59:00Z"}},
    /* Berlin, fall back 25 October 2026: 02:00-02:59 happen twice, fire the first time */
    {"30 2 * * *",
     "Europe/Berlin",
     "2026-10-24T12:00:00Z",
     {"2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z", "2026-10-27T01:30:00Z"}},
    {"30 2 * * *", "Europe/Berlin", "2026-10-25T00:30:00Z", {"2026-10-26T01:30:00Z"}},
    {"30 2 * * *", "Europe/Berlin", "2026-10-25T01:10:00Z", {"2026-10-26T01:30:00Z"}},
    {"*/15 * * * *",
     "Europe/Berlin",
     "2026-10-24T23:30:00Z",
     {"2026-10-24T23:45:00Z", "2026-10-25T00:00:00Z", "2026-10-25T00:15:00Z",
      "2026-10-25T00:30:00Z", "2026-10-25T00:45:00Z", "2026-10-25T02:00:00Z",
      "2026-10-25T02:15:00Z", "2026-10-25T02:30:00Z"}},
    {"0 * * * *",
     "Europe/Berlin",
     "2026-10-24T22:30:00Z",
     {"2026-10-24T23:00:00Z", "2026-10-25T00:00:00Z", "2026-10-25T02:00:00Z",
      "2026-10-25T03:00:00Z"}},
    {"0 3 * * *",
     "Europe/Berlin",
     "2026-10-24T12:00:00Z",
     {"2026-10-25T02:00:00Z", "2026-10-26T02:00:00Z"}},
    /* Berlin 2040: past the file's table, the footer rule */
    {"30 2 * * *",
     "Europe/Berlin",
     "2040-03-24T12:00:00Z",
     {"2040-03-25T01:00:00Z", "2040-03-26T00:30:00Z"}},
    {"30 2 * * *",
     "Europe/Berlin",
     "2040-10-27T12:00:00Z",
     {"2040-10-28T00:30:00Z", "2040-10-29T01:30:00Z"}},
    {"0 9 * * *", "Europe/Berlin", "2040-07-01T00:00:00Z", {"2040-07-01T07:00:00Z"}},
};

static const run_t runs_elsewhere[] = {
    /* New York: 8 March and 1 November 2026 */
    {"30 2 * * *",
     "America/New_York",
     "2026-03-07T12:00:00Z",
     {"2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z", "2026-03-10T06:30:00Z"}},
    {"0 2,3 * * *",
     "America/New_York",
     "2026-03-07T12:00:00Z",
     {"2026-03-08T07:00:00Z", "2026-03-09T06:00:00Z", "2026-03-09T07:00:00Z"}},
    {"*/30 * * * *",
     "America/New_York",
     "2026-03-08T06:00:00Z",
     {"2026-03-08T06:30:00Z", "2026-03-08T07:00:00Z", "2026-03-08T07:30:00Z",
      "2026-03-08T08:00:00Z", "2026-03-08T08:30:00Z"}},
    {"30 1 * * *",
     "America/New_York",
     "2026-10-31T12:00:00Z",
     {"2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z", "2026-11-03T06:30:00Z"}},
    {"0 * * * *",
     "America/New_York",
     "2026-11-01T03:30:00Z",
     {"2026-11-01T04:00:00Z", "2026-11-01T05:00:00Z", "2026-11-01T07:00:00Z",
      "2026-11-01T08:00:00Z"}},
    /* Lord Howe skips half an hour: 02:15 fires when 02:00 becomes 02:30 */
    {"15 2 * * *",
     "Australia/Lord_Howe",
     "2026-10-03T00:00:00Z",
     {"2026-10-03T15:30:00Z", "2026-10-04T15:15:00Z"}},
};

static void check_runs(const run_t *runs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        cron_error_t err;
        cron_t *c = cron_parse(runs[i].expr, &err);
        cr_assert_not_null(c, "'%s': %s", runs[i].expr, err.message);
        char zerr[256] = "";
        tz_t *z = tz_load(runs[i].zone, zerr, sizeof zerr);
        cr_assert_not_null(z, "%s: %s", runs[i].zone, zerr);
        int64_t t = fx_utc(runs[i].after);
        for (size_t k = 0; k < 8 && runs[i].next[k]; k++) {
            int64_t next = 0;
            char got[32];
            cr_assert_eq(cron_next(c, z, t, &next), 0, "'%s' %s after %s", runs[i].expr,
                         runs[i].zone, iso(t, got, sizeof got));
            cr_expect_eq(next, fx_utc(runs[i].next[k]), "'%s' %s fire %zu: %s, expected %s",
                         runs[i].expr, runs[i].zone, k, iso(next, got, sizeof got),
                         runs[i].next[k]);
            t = fx_utc(runs[i].next[k]);
        }
        tz_destroy(&z);
        cron_destroy(&c);
        cr_assert_null(c);
    }
}

Test(cron, fire_times_in_utc)
{
    check_runs(runs_utc, sizeof runs_utc / sizeof runs_utc[0]);
}

Test(cron, fire_times_in_berlin_across_dst_2026_and_2040)
{
    check_runs(runs_berlin, sizeof runs_berlin / sizeof runs_berlin[0]);
}

Test(cron, fire_times_in_new_york_and_lord_howe_across_dst)
{
    check_runs(runs_elsewhere, sizeof runs_elsewhere / sizeof runs_elsewhere[0]);
}

/* Pairs of expressions that must fire at the same times: names and
 * numbers, 7 and 0 for Sunday, steps and lists, macros and what they
 * stand for, and the Vixie day rule (a restricted day of month ORs with a
 * restricted day of week, a starred one ANDs). */
static const struct {
    const char *a, *b;
} same[] = {
    {"@yearly", "0 0 1 1 *"},
    {"@annually", "0 0 1 1 *"},
    {"@monthly", "0 0 1 * *"},
    {"@weekly", "0 0 * * 0"},
    {"@daily", "0 0 * * *"},
    {"@midnight", "0 0 * * *"},
    {"@hourly", "0 * * * *"},
    {"0 12 * jan-Mar Sun,SAT", "0 12 * 1-3 0,6"},
    {"0 12 * * MON-FRI", "0 12 * * 1-5"},
    {"0 12 * * 7", "0 12 * * 0"},
    {"0 12 * * 5-7", "0 12 * * 0,5,6"},
    {"0 12 * * 0-7", "0 12 * * *"},
    {"0 12 * * 1-5/2", "0 12 * * 1,3,5"},
    {"*/20 */6 * * *", "0,20,40 0,6,12,18 * * *"},
    {"5/20 * * * *", "5,25,45 * * * *"},
    {"0 0 1-31 * 1", "0 0 * * *"},      /* both restricted: every day is day 1-31 */
    {"0 0 */1 * 1", "0 0 * * MON"},     /* starred day of month: Mondays only */
    {"0 0 1 * */1", "0 0 1 * *"},       /* starred day of week: the 1st only */
    {"0 0 1,15 * *,3", "0 0 1,15 * *"}, /* a list starting with * counts as starred */
};

Test(cron, equivalent_spellings_fire_together)
{
    tz_t *z = tz_load("Europe/Berlin", NULL, 0);
    cr_assert_not_null(z);
    for (size_t i = 0; i < sizeof same / sizeof same[0]; i++) {
        cron_t *a = cron_parse(same[i].a, NULL), *b = cron_parse(same[i].b, NULL);
        cr_assert(a && b, "'%s' / '%s'", same[i].a, same[i].b);
        int64_t ta = fx_utc("2026-01-01T00:00:00Z"), tb = ta;
        for (int k = 0; k < 200; k++) {
            cr_assert_eq(cron_next(a, z, ta, &ta), 0);
            cr_assert_eq(cron_next(b, z, tb, &tb), 0);
            cr_assert_eq(ta, tb, "'%s' and '%s' part at fire %d", same[i].a, same[i].b, k);
        }
        cron_destroy(&a);
        cron_destroy(&b);
    }
    tz_destroy(&z);
}

Test(cron, quarter_hours_across_the_gap_skip_only_the_gap)
{
    /* Over the whole of 29 March 2026 in Berlin, a quarter-hour schedule
     * fires every 15 minutes of UTC: the four gap slots 02:00-02:45 collapse onto 03:00
     * CEST, which fires once, and nothing else is lost or repeated. */
    cron_t *c = cron_parse("*/15 * * * *", NULL);
    tz_t *z = tz_load("Europe/Berlin", NULL, 0);
    cr_assert(c && z);
    int64_t t = fx_utc("2026-03-28T23:00:00Z"), prev = t;
    int fires = 0;
    while (cron_next(c, z, t, &t) == 0 && t < fx_utc("2026-03-29T22:00:00Z")) {
        cr_assert_eq(t - prev, 900, "gap of %lld s before %lld", (long long)(t - prev),
                     (long long)t);
        prev = t;
        fires++;
    }
    cr_expect_eq(fires, 23 * 4 - 1); /* 23 hours of wall clock that day; 23:00Z itself excluded */
    tz_destroy(&z);
    cron_destroy(&c);
}

Test(cron, never_matching_expressions_give_up_quickly)
{
    static const char *never[] = {"0 0 31 2 *", "0 0 30 2 *", "* * 31 4,6,9,11 *"};
    for (size_t i = 0; i < sizeof never / sizeof never[0]; i++) {
        cron_t *c = cron_parse(never[i], NULL);
        cr_assert_not_null(c, "%s", never[i]);
        tz_t *z = tz_load("Europe/Berlin", NULL, 0);
        int64_t next = 42;
        /* CPU time, not wall time: the bound is on the work (a search that
         * gives up), and a loaded machine must not fail it by preempting us. */
        struct timespec a, b;
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &a);
        cr_expect_eq(cron_next(c, z, fx_utc("2026-01-01T00:00:00Z"), &next), FENTA_ENOTFOUND, "%s",
                     never[i]);
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &b);
        cr_expect_eq(next, 42, "next untouched");
        double ms = (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
        cr_expect_lt(ms, 200.0, "%s took %.1f ms", never[i], ms);
        tz_destroy(&z);
        cron_destroy(&c);
    }
}

Test(cron, bad_arguments)
{
    cron_t *c = cron_parse("* * * * *", NULL);
    int64_t next;
    cr_expect_eq(cron_next(NULL, NULL, 0, &next), FENTA_EINVAL);
    cr_expect_eq(cron_next(c, NULL, 0, NULL), FENTA_EINVAL);
    cr_expect_eq(cron_next(c, NULL, fx_utc("9999-12-31T23:59:59Z") + 1, &next), FENTA_EINVAL);
    cr_expect_eq(cron_next(c, NULL, fx_utc("0001-01-01T00:00:00Z") - 1, &next), FENTA_EINVAL);
    cr_expect_eq(cron_next(c, NULL, -1, &next), 0, "before 1970 is fine");
    cr_expect_eq(next, 0);
    cron_destroy(&c);
    cron_destroy(&c);
    cron_destroy(NULL);
}
