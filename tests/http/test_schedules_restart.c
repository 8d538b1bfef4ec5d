/* test_schedules_restart.c - schedules through crashes of `fenta serve`:
 * killed just before a due time and back within the misfire grace, each
 * schedule fires once for it; down for longer than the grace, a "skip"
 * schedule records the missed time as skipped and a "run_once" schedule
 * runs it once. Every firing's job id is derived from its due time, so the
 * jobs of a schedule are exactly its firings. Its own binary: it kills its
 * server (misfire grace 15 s). Time is the server's test clock
 * (fx_clock_advance): the test moves it to each due time and through each
 * outage instead of sleeping to real minute boundaries. */
#include "actors/schedules/schedule.h"
#include "tests/support/api_fixture.h"
#include "tests/support/fixtures.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

FX_API_SERVER("{\"insecure_cookies\": true, \"cheap_passwords_for_tests\": true, "
              "\"schedule_misfire_grace_s\": 15, \"rate_limits\": {\"ip\": {\"rate\": 10000, "
              "\"burst\": 20000}, \"user\": {\"rate\": 10000, \"burst\": 20000}}}")

typedef struct {
    char wf[64], id[64];
} sched_t;

static void make(const json_t *who, const char *misfire, sched_t *out)
{
    fx_save_workflow(who, FX_TEXT_WORKFLOW, out->wf);
    char body[256];
    snprintf(body, sizeof body,
             "{\"workflow_id\":\"%s\",\"cron\":\"* * * * *\",\"misfire\":\"%s\"}", out->wf,
             misfire);
    fx_resp_t r = fx_call("POST", "/v1/schedules", body, who);
    cr_assert_eq(r.status, 201, "%s", r.body);
    snprintf(out->id, sizeof out->id, "%s", json_string_value(json_object_get(r.json, "id")));
    fx_resp_free(&r);
}

static json_t *get(const json_t *who, const sched_t *sc)
{
    char path[128];
    snprintf(path, sizeof path, "/v1/schedules/%s", sc->id);
    fx_resp_t r = fx_call("GET", path, NULL, who);
    cr_assert_eq(r.status, 200, "%s", r.body);
    json_t *o = json_incref(r.json);
    fx_resp_free(&r);
    return o;
}

/* Moves the server's clock on to the next time whose second within the
 * minute is `second` (at least a second away, so nothing made just before
 * is due at once). */
static int64_t until_second(int second)
{
    int64_t now = fx_clock_now_s();
    int64_t target = now - now % 60 + second;
    if (target <= now + 1)
        target += 60;
    fx_clock_advance_to(target * 1000);
    return target;
}

/* Waits until the schedule's last firing is the one due at `due`. */
static json_t *wait_fired(const json_t *who, const sched_t *sc, int64_t due, int seconds)
{
    char want[24];
    time_t t = (time_t)due;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(want, sizeof want, "%Y-%m-%dT%H:%M:%S", &tm);
    for (int i = 0; i < seconds * 4; i++) {
        json_t *o = get(who, sc);
        const char *last = json_string_value(json_object_get(o, "last_fired_at"));
        if (last && strncmp(last, want, strlen(want)) == 0)
            return o;
        json_decref(o);
        usleep(250000);
    }
    cr_assert_fail("schedule %s did not fire for %s", sc->id, want);
    return NULL;
}

/* The workflow's jobs: exactly the schedule's started firings, each with
 * the id derived from one due time. */
static void jobs_are_firings(const json_t *who, const sched_t *sc, int64_t *dues, int ndues)
{
    char path[160];
    snprintf(path, sizeof path, "/v1/jobs?workflow_id=%s&limit=100", sc->wf);
    fx_resp_t r = fx_call("GET", path, NULL, who);
    cr_assert_eq(r.status, 200, "%s", r.body);
    json_t *data = json_object_get(r.json, "data");
    cr_assert_eq((int)json_array_size(data), ndues, "jobs of %s: %s", sc->id, r.body);
    for (int i = 0; i < ndues; i++) {
        char want[37];
        schedule_job_id(sc->id, dues[i], want);
        bool found = false;
        for (size_t k = 0; k < json_array_size(data); k++)
            found |= strcmp(json_string_value(json_object_get(json_array_get(data, k), "id")),
                            want) == 0;
        cr_assert(found, "no job for the firing due at %lld", (long long)dues[i]);
    }
    fx_resp_free(&r);
}

Test(schedules_restart, fires_once_through_a_crash_and_follows_its_misfire_policy, .timeout = 300)
{
    json_t *s = fx_register("sra");
    sched_t skip, once;
    /* Made at second 50, so the first time they are due is after the kill. */
    until_second(50);
    make(s, "skip", &skip);
    make(s, "run_once", &once);

    /* Killed 3 s before a due time and started again at once: back within
     * the grace, so each fires for it, once. */
    int64_t kill_at = until_second(57);
    int64_t due1 = kill_at + 3;
    cr_assert(fx_api_kill_and_restart(), "the server did not come back");
    /* Its clock reaches the due time with the server up (the restart took
     * real seconds: it may be there already). */
    fx_clock_advance_to(due1 * 1000);
    json_t *a = wait_fired(s, &skip, due1, 60), *b = wait_fired(s, &once, due1, 60);
    cr_assert_str_eq(
        json_string_value(json_object_get(json_object_get(a, "last_outcome"), "outcome")),
        "started");
    cr_assert_eq(json_integer_value(json_object_get(a, "fire_count")), 1, "%s", json_dumps(a, 0));
    cr_assert_eq(json_integer_value(json_object_get(b, "fire_count")), 1, "%s", json_dumps(b, 0));
    json_decref(a);
    json_decref(b);

    /* Killed again 3 s before the next due time and down for 25 s of its
     * clock: that time is missed by more than the grace. */
    kill_at = until_second(57);
    int64_t due2 = kill_at + 3;
    cr_assert(fx_api_kill_and_restart_after(25000), "the server did not come back");
    a = wait_fired(s, &skip, due2, 40);
    b = wait_fired(s, &once, due2, 40);
    cr_assert_str_eq(
        json_string_value(json_object_get(json_object_get(a, "last_outcome"), "outcome")),
        "skipped", "%s", json_dumps(a, 0));
    cr_assert_eq(json_integer_value(json_object_get(a, "fire_count")), 1, "%s", json_dumps(a, 0));
    cr_assert_str_eq(
        json_string_value(json_object_get(json_object_get(b, "last_outcome"), "outcome")),
        "started", "%s", json_dumps(b, 0));
    cr_assert_eq(json_integer_value(json_object_get(b, "fire_count")), 2, "%s", json_dumps(b, 0));
    /* Both are armed for the next minute after now, not for missed ones. */
    char at[24];
    snprintf(at, sizeof at, "%.19sZ", json_string_value(json_object_get(a, "next_fire_at")));
    cr_assert_gt(fx_utc(at), fx_clock_now_s() - 1);
    json_decref(a);
    json_decref(b);

    /* Pause both so nothing fires while the jobs are counted. */
    char path[128];
    snprintf(path, sizeof path, "/v1/schedules/%s/pause", skip.id);
    fx_resp_t r = fx_call("POST", path, NULL, s);
    fx_resp_free(&r);
    snprintf(path, sizeof path, "/v1/schedules/%s/pause", once.id);
    r = fx_call("POST", path, NULL, s);
    fx_resp_free(&r);
    int64_t d_skip[] = {due1}, d_once[] = {due1, due2};
    jobs_are_firings(s, &skip, d_skip, 1);
    jobs_are_firings(s, &once, d_once, 2);
    json_decref(s);
}
