/* test_tz.c - zones load from /usr/share/zoneinfo and give the offsets and
 * local-time answers Python's zoneinfo gives (the expected values in the
 * tables were computed with it, not with this code), including times ruled
 * only by a file's POSIX TZ footer; bad names and bad files are refused. */
#include "actors/schedules/tz.h"
#include "tests/support/fixtures.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static tz_t *load(const char *name)
{
    char err[256] = "";
    tz_t *z = tz_load(name, err, sizeof err);
    cr_assert_not_null(z, "tz_load(%s): %s", name, err);
    return z;
}

/* ---- offsets ------------------------------------------------------------------ */

static const struct {
    const char *zone;
    const char *utc;
    int64_t offset;
} offsets[] = {
    /* EU 2026: CET->CEST at 01:00Z on 29 March, back at 01:00Z on 25 October */
    {"Europe/Berlin", "2026-03-29T00:59:59Z", 3600},
    {"Europe/Berlin", "2026-03-29T01:00:00Z", 7200},
    {"Europe/Berlin", "2026-10-25T00:59:59Z", 7200},
    {"Europe/Berlin", "2026-10-25T01:00:00Z", 3600},
    /* US 2026: 8 March 02:00 EST -> 03:00 EDT, 1 November 02:00 EDT -> 01:00 EST */
    {"America/New_York", "2026-03-08T06:59:59Z", -18000},
    {"America/New_York", "2026-03-08T07:00:00Z", -14400},
    {"America/New_York", "2026-11-01T05:59:59Z", -14400},
    {"America/New_York", "2026-11-01T06:00:00Z", -18000},
    /* past the file's table (2037): the footer rule decides */
    {"Europe/Berlin", "2040-03-25T00:59:59Z", 3600},
    {"Europe/Berlin", "2040-03-25T01:00:00Z", 7200},
    {"Europe/Berlin", "2040-10-28T00:59:59Z", 7200},
    {"Europe/Berlin", "2040-10-28T01:00:00Z", 3600},
    {"America/New_York", "2100-07-01T12:00:00Z", -14400},
    {"Australia/Sydney", "2045-01-15T00:00:00Z", 39600},
    /* southern hemisphere, half and quarter hours, odd histories */
    {"Australia/Sydney", "2026-01-15T00:00:00Z", 39600},
    {"Australia/Sydney", "2026-07-01T00:00:00Z", 36000},
    {"Asia/Kolkata", "2026-05-04T00:00:00Z", 19800},
    {"Asia/Kathmandu", "2026-05-04T00:00:00Z", 20700},
    {"America/St_Johns", "2026-01-10T00:00:00Z", -12600},
    {"America/St_Johns", "2026-07-10T00:00:00Z", -9000},
    {"Europe/Amsterdam", "1935-01-01T00:00:00Z", 1172},
    {"Europe/Berlin", "1945-06-01T00:00:00Z", 10800},
    {"Europe/Berlin", "1970-01-01T00:00:00Z", 3600},
    {"Asia/Tokyo", "1900-01-01T00:00:00Z", 32400},
    {"Europe/London", "2026-07-01T00:00:00Z", 3600},
    {"Europe/Dublin", "2026-01-15T00:00:00Z", 0},
    {"Europe/Dublin", "2026-07-15T00:00:00Z", 3600},
    {"Pacific/Apia", "2026-01-01T00:00:00Z", 46800},
    {"America/Sao_Paulo", "2026-01-01T00:00:00Z", -10800},
    {"Etc/GMT+5", "2026-01-01T00:00:00Z", -18000},
    {"UTC", "2026-07-01T00:00:00Z", 0},
    {"Etc/UTC", "2040-07-01T00:00:00Z", 0},
    {"posix/Europe/Berlin", "2026-07-01T00:00:00Z", 7200},
};

Test(tz, offset_at_known_instants)
{
    for (size_t i = 0; i < sizeof offsets / sizeof offsets[0]; i++) {
        tz_t *z = load(offsets[i].zone);
        cr_expect_eq(tz_offset_at(z, fx_utc(offsets[i].utc)), offsets[i].offset, "%s at %s: %lld",
                     offsets[i].zone, offsets[i].utc,
                     (long long)tz_offset_at(z, fx_utc(offsets[i].utc)));
        tz_destroy(&z);
        cr_assert_null(z);
    }
}

/* ---- local wall time to instants ---------------------------------------------------- */

static const struct {
    const char *zone;
    const char *local;
    int count;
    const char *utc[2]; /* the instants; for count 0, utc[0] is where the gap ends */
} locals[] = {
    {"Europe/Berlin", "2026-03-29T02:30:00", 0, {"2026-03-29T01:00:00Z"}},
    {"Europe/Berlin", "2026-03-29T01:59:59", 1, {"2026-03-29T00:59:59Z"}},
    {"Europe/Berlin", "2026-03-29T03:00:00", 1, {"2026-03-29T01:00:00Z"}},
    {"Europe/Berlin", "2026-10-25T02:30:00", 2, {"2026-10-25T00:30:00Z", "2026-10-25T01:30:00Z"}},
    {"Europe/Berlin", "2026-10-25T01:59:59", 1, {"2026-10-24T23:59:59Z"}},
    {"Europe/Berlin", "2026-10-25T03:00:00", 1, {"2026-10-25T02:00:00Z"}},
    {"America/New_York", "2026-03-08T02:30:00", 0, {"2026-03-08T07:00:00Z"}},
    {"America/New_York",
     "2026-11-01T01:30:00",
     2,
     {"2026-11-01T05:30:00Z", "2026-11-01T06:30:00Z"}},
    {"America/New_York", "2026-11-01T02:00:00", 1, {"2026-11-01T07:00:00Z"}},
    {"Europe/Berlin", "2040-03-25T02:00:00", 0, {"2040-03-25T01:00:00Z"}},
    {"Europe/Berlin", "2040-10-28T02:59:59", 2, {"2040-10-28T00:59:59Z", "2040-10-28T01:59:59Z"}},
    /* Lord Howe moves its clocks by half an hour */
    {"Australia/Lord_Howe", "2026-10-04T02:15:00", 0, {"2026-10-03T15:30:00Z"}},
    {"Australia/Lord_Howe",
     "2026-04-05T01:45:00",
     2,
     {"2026-04-04T14:45:00Z", "2026-04-04T15:15:00Z"}},
    {"Australia/Sydney",
     "2026-04-05T02:30:00",
     2,
     {"2026-04-04T15:30:00Z", "2026-04-04T16:30:00Z"}},
    {"Australia/Sydney", "2026-10-04T02:30:00", 0, {"2026-10-03T16:00:00Z"}},
    /* Samoa skipped 30 December 2011 entirely */
    {"Pacific/Apia", "2011-12-30T12:00:00", 0, {"2011-12-30T10:00:00Z"}},
    {"UTC", "2026-03-29T02:30:00", 1, {"2026-03-29T02:30:00Z"}},
};

Test(tz, local_to_utc_gaps_and_overlaps)
{
    for (size_t i = 0; i < sizeof locals / sizeof locals[0]; i++) {
        tz_t *z = load(locals[i].zone);
        int64_t out[2] = {0, 0};
        int n = tz_local_to_utc(z, fx_utc(locals[i].local), out);
        cr_expect_eq(n, locals[i].count, "%s %s: %d instants", locals[i].zone, locals[i].local, n);
        cr_expect_eq(out[0], fx_utc(locals[i].utc[0]), "%s %s: first %lld", locals[i].zone,
                     locals[i].local, (long long)out[0]);
        if (locals[i].count == 2)
            cr_expect_eq(out[1], fx_utc(locals[i].utc[1]), "%s %s: second %lld", locals[i].zone,
                         locals[i].local, (long long)out[1]);
        tz_destroy(&z);
    }
}

Test(tz, every_instant_round_trips_across_a_dst_year)
{
    tz_t *z = load("America/New_York");
    for (int64_t t = fx_utc("2026-01-01T00:00:00"); t < fx_utc("2027-01-01T00:00:00"); t += 599) {
        int64_t out[2];
        int n = tz_local_to_utc(z, t + tz_offset_at(z, t), out);
        cr_assert(n >= 1 && (out[0] == t || (n == 2 && out[1] == t)), "t=%lld", (long long)t);
    }
    tz_destroy(&z);
}

/* ---- footer-only zones (what a "slim" TZif file relies on) --------------------------- */

static size_t put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24), p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8), p[3] = (unsigned char)v;
    return 4;
}

/* A version 2 TZif image with no transitions, one time type and footer. */
static size_t tzif(unsigned char *buf, int32_t utoff, const char *footer, uint32_t leapcnt)
{
    size_t n = 0;
    for (int part = 0; part < 2; part++) {
        memcpy(buf + n, "TZif2", 5);
        memset(buf + n + 5, 0, 15);
        n += 20;
        uint32_t counts[6] = {0, 0, leapcnt, 0, 1, 4};
        for (int i = 0; i < 6; i++)
            n += put32(buf + n, counts[i]);
        n += put32(buf + n, (uint32_t)utoff);
        buf[n++] = 0, buf[n++] = 0;
        memcpy(buf + n, "XYZ", 4);
        n += 4;
        for (uint32_t i = 0; i < leapcnt; i++) {
            memset(buf + n, 0, part ? 12 : 8);
            n += part ? 12 : 8;
        }
    }
    n += (size_t)sprintf((char *)buf + n, "\n%s\n", footer);
    return n;
}

Test(tz, footer_rule_alone_matches_the_full_file)
{
    static const struct {
        const char *zone;
        int32_t utoff;
        const char *footer;
    } rules[] = {
        {"Europe/Berlin", 3600, "CET-1CEST,M3.5.0,M10.5.0/3"},
        {"America/New_York", -18000, "EST5EDT,M3.2.0,M11.1.0"},
        {"Australia/Sydney", 36000, "AEST-10AEDT,M10.1.0,M4.1.0/3"},
        {"Australia/Lord_Howe", 37800, "<+1030>-10:30<+11>-11,M10.1.0,M4.1.0"},
        {"America/Nuuk", -7200, "<-02>2<-01>,M3.5.0/-1,M10.5.0/0"},
        {"Asia/Kolkata", 19800, "IST-5:30"},
    };
    for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++) {
        unsigned char buf[512];
        size_t len = tzif(buf, rules[i].utoff, rules[i].footer, 0);
        char err[256] = "";
        tz_t *slim = tz_parse("slim", buf, len, err, sizeof err);
        cr_assert_not_null(slim, "%s: %s", rules[i].footer, err);
        tz_t *full = load(rules[i].zone);
        /* every 13 hours 7 minutes from 2030 to 2060 */
        for (int64_t t = fx_utc("2030-01-01T00:00:00"); t < fx_utc("2060-01-01T00:00:00");
             t += 47220)
            cr_assert_eq(tz_offset_at(slim, t), tz_offset_at(full, t), "%s at %lld: %lld vs %lld",
                         rules[i].zone, (long long)t, (long long)tz_offset_at(slim, t),
                         (long long)tz_offset_at(full, t));
        tz_destroy(&slim);
        tz_destroy(&full);
    }
}

Test(tz, footer_rule_gap_and_overlap_in_2040)
{
    unsigned char buf[512];
    size_t len = tzif(buf, 3600, "CET-1CEST,M3.5.0,M10.5.0/3", 0);
    tz_t *z = tz_parse("Europe/Berlin", buf, len, NULL, 0);
    cr_assert_not_null(z);
    cr_expect_str_eq(tz_name(z), "Europe/Berlin");
    int64_t out[2];
    cr_expect_eq(tz_local_to_utc(z, fx_utc("2040-03-25T02:30:00"), out), 0);
    cr_expect_eq(out[0], fx_utc("2040-03-25T01:00:00"));
    cr_expect_eq(tz_local_to_utc(z, fx_utc("2040-10-28T02:30:00"), out), 2);
    cr_expect_eq(out[0], fx_utc("2040-10-28T00:30:00"));
    cr_expect_eq(out[1], fx_utc("2040-10-28T01:30:00"));
    tz_destroy(&z);
}

/* ---- refusals ------------------------------------------------------------------- */

static const struct {
    const char *name;
    const char *message;
} bad_names[] = {
    {"", "time zone name is empty"},
    {"../etc/passwd", "time zone name \"../etc/passwd\" is not a zone name (empty component or one "
                      "starting with \".\")"},
    {"/etc/passwd", "time zone name \"/etc/passwd\" is not a zone name (empty component or one "
                    "starting with \".\")"},
    {"Europe/../../etc/passwd", "time zone name \"Europe/../../etc/passwd\" is not a zone name "
                                "(empty component or one starting with \".\")"},
    {"Europe//Berlin", "time zone name \"Europe//Berlin\" is not a zone name (empty component or "
                       "one starting with \".\")"},
    {"Europe/Berlin/", "time zone name \"Europe/Berlin/\" is not a zone name (empty component or "
                       "one starting with \".\")"},
    {"Europe/.Berlin", "time zone name \"Europe/.Berlin\" is not a zone name (empty component or "
                       "one starting with \".\")"},
    {"Europe/Berlin;ls", "time zone name \"Europe/Berlin;ls\" has a character other than letters, "
                         "digits and / _ - + ."},
    {"Europe Berlin",
     "time zone name \"Europe Berlin\" has a character other than letters, digits and / _ - + ."},
    {"Europe/Nowhere", "unknown time zone \"Europe/Nowhere\""},
    {"Europe", "unknown time zone \"Europe\""},
    {"Europe/Berlin/x", "unknown time zone \"Europe/Berlin/x\""},
    {"utc", "unknown time zone \"utc\""},
    {"zone.tab", "time zone zone.tab: not a TZif file"},
    {"right/Europe/Berlin",
     "time zone right/Europe/Berlin has leap seconds, which are not supported"},
};

Test(tz, bad_names_are_refused_with_a_reason)
{
    for (size_t i = 0; i < sizeof bad_names / sizeof bad_names[0]; i++) {
        char err[256] = "";
        tz_t *z = tz_load(bad_names[i].name, err, sizeof err);
        cr_expect_null(z, "%s loaded", bad_names[i].name);
        cr_expect_str_eq(err, bad_names[i].message, "%s", bad_names[i].name);
        tz_destroy(&z);
    }
    char long_name[300];
    memset(long_name, 'A', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    char err[256] = "";
    cr_expect_null(tz_load(long_name, err, sizeof err));
    cr_expect_str_eq(err, "time zone name is longer than 255 characters");
    cr_expect_null(tz_load(NULL, NULL, 0));
}

Test(tz, malformed_images_are_refused)
{
    unsigned char buf[512];
    size_t len = tzif(buf, 3600, "CET-1CEST,M3.5.0,M10.5.0/3", 0);
    char err[256];
    struct {
        size_t len;
        const char *message;
    } cuts[] = {
        {0, "time zone t: not a TZif file"},
        {43, "time zone t: not a TZif file"},
        {60, "time zone t: truncated TZif file"},
        {len - 30, "time zone t: truncated TZif file"},
        {len - 28, "time zone t: missing TZif footer"},
        {len - 1, "time zone t: malformed TZif footer"},
    };
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        err[0] = '\0';
        cr_expect_null(tz_parse("t", buf, cuts[i].len, err, sizeof err), "cut at %zu", cuts[i].len);
        cr_expect_str_eq(err, cuts[i].message, "cut at %zu", cuts[i].len);
    }
    len = tzif(buf, 3600, "CET-1CEST,M13.5.0,M10.5.0/3", 0);
    cr_expect_null(tz_parse("t", buf, len, err, sizeof err));
    cr_expect_str_eq(err, "time zone t: unsupported TZ rule \"CET-1CEST,M13.5.0,M10.5.0/3\"");
    len = tzif(buf, 3600, "CET-1", 1);
    cr_expect_null(tz_parse("t", buf, len, err, sizeof err));
    cr_expect_str_eq(err, "time zone t has leap seconds, which are not supported");
    len = tzif(buf, 100000, "", 0);
    cr_expect_null(tz_parse("t", buf, len, err, sizeof err));
    cr_expect_str_eq(err, "time zone t: malformed local time type");
    /* an empty footer is allowed: time type 0 rules all time */
    len = tzif(buf, -3600, "", 0);
    tz_t *z = tz_parse("t", buf, len, err, sizeof err);
    cr_assert_not_null(z, "%s", err);
    cr_expect_eq(tz_offset_at(z, fx_utc("2050-06-01T00:00:00")), -3600);
    tz_destroy(&z);
}

Test(tz, null_zone_is_utc)
{
    int64_t out[2];
    cr_expect_eq(tz_offset_at(NULL, 123456789), 0);
    cr_expect_eq(tz_local_to_utc(NULL, 123456789, out), 1);
    cr_expect_eq(out[0], 123456789);
    cr_expect_str_eq(tz_name(NULL), "UTC");
    tz_destroy(NULL);
    tz_t *none = NULL;
    tz_destroy(&none);
}

/* ---- civil calendar -------------------------------------------------------------- */

static const struct {
    tz_civil_t c;
    const char *iso;
} civils[] = {
    {{1970, 1, 1, 0, 0, 0, 4}, "1970-01-01T00:00:00"},
    {{1969, 12, 31, 23, 59, 59, 3}, "1969-12-31T23:59:59"},
    {{2000, 2, 29, 12, 0, 0, 2}, "2000-02-29T12:00:00"},
    {{2026, 3, 29, 1, 0, 0, 0}, "2026-03-29T01:00:00"},
    {{2100, 3, 1, 0, 0, 0, 1}, "2100-03-01T00:00:00"},
    {{1, 1, 1, 0, 0, 0, 1}, "0001-01-01T00:00:00"},
    {{9999, 12, 31, 23, 59, 59, 5}, "9999-12-31T23:59:59"},
};

Test(tz, civil_fields_and_seconds)
{
    for (size_t i = 0; i < sizeof civils / sizeof civils[0]; i++) {
        cr_expect_eq(tz_civil_to_seconds(&civils[i].c), fx_utc(civils[i].iso), "%s", civils[i].iso);
        tz_civil_t c;
        tz_civil_from_seconds(fx_utc(civils[i].iso), &c);
        cr_expect(memcmp(&c, &civils[i].c, sizeof c) == 0,
                  "%s -> %04d-%02d-%02d %02d:%02d:%02d wd %d", civils[i].iso, c.year, c.month,
                  c.day, c.hour, c.minute, c.second, c.weekday);
    }
    /* every day from 1900 to 2100 agrees with glibc's gmtime_r */
    for (int64_t d = -25567; d < 47482; d++) {
        time_t t = (time_t)(d * 86400);
        struct tm tm;
        gmtime_r(&t, &tm);
        int64_t y;
        int m, dd;
        tz_civil_from_days(d, &y, &m, &dd);
        cr_assert(y == tm.tm_year + 1900 && m == tm.tm_mon + 1 && dd == tm.tm_mday, "day %lld",
                  (long long)d);
        cr_assert_eq(tz_days_from_civil(y, m, dd), d);
    }
    tz_civil_t carry = {2026, 13, 1, 0, 0, 0, 0}; /* month 13 is January next year */
    cr_expect_eq(tz_civil_to_seconds(&carry), fx_utc("2027-01-01T00:00:00"));
}

/* ---- threads ------------------------------------------------------------------- */

static tz_t *shared_zone;
static int64_t hammer_from, hammer_to;

static void *hammer(void *arg)
{
    long bad = 0;
    for (int64_t t = hammer_from; t < hammer_to; t += 86399) {
        int64_t out[2];
        int64_t off = tz_offset_at(shared_zone, t);
        int n = tz_local_to_utc(shared_zone, t + off, out);
        if (off != 3600 && off != 7200)
            bad++;
        if (n < 1 || (out[0] != t && (n < 2 || out[1] != t)))
            bad++;
    }
    return (void *)bad;
}

Test(tz, one_zone_is_shared_by_threads)
{
    shared_zone = load("Europe/Berlin");
    hammer_from = fx_utc("2020-01-01T00:00:00");
    hammer_to = fx_utc("2045-01-01T00:00:00");
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        cr_assert_eq(pthread_create(&th[i], NULL, hammer, NULL), 0);
    for (int i = 0; i < 4; i++) {
        void *bad;
        pthread_join(th[i], &bad);
        cr_expect_null(bad, "thread %d saw %ld wrong answers", i, (long)bad);
    }
    tz_destroy(&shared_zone);
}
