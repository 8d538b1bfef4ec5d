/* test_schedules.c - /v1/schedules against the real server: definitions
 * refused with the field at fault, CRUD with pause and resume, previews
 * across a DST change, and a schedule firing on time, once, into a job
 * whose id is derived from the schedule and the due time. */
#include "actors/schedules/schedule.h"
#include "tests/support/api_fixture.h"
#include "tests/support/fixtures.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

FX_API_SERVER(NULL)

/* One timeout for the suite: Criterion 2.4 leaks a little when tests
 * running side by side have timeouts of their own (LeakSanitizer sees it). */
TestSuite(schedules, .timeout = 200);

static fx_resp_t create(const json_t *who, const char *wf, const char *extra)
{
    char body[1024];
    snprintf(body, sizeof body, "{\"workflow_id\":\"%s\"%s%s}", wf, extra[0] ? "," : "", extra);
    return fx_call("POST", "/v1/schedules", body, who);
}

static const char *detail(const fx_resp_t *r, const char *key)
{
    json_t *d = json_array_get(json_object_get(json_object_get(r->json, "error"), "details"), 0);
    return json_string_value(json_object_get(d, key));
}

Test(schedules, bad_definitions_are_refused_naming_the_field)
{
    json_t *s = fx_register("sca");
    char wf[64];
    fx_save_workflow(s, FX_TEXT_WORKFLOW, wf);
    static const struct {
        const char *extra, *code, *path, *field, *says;
    } cases[] = {
        {"\"cron\":\"61 * * * *\"", "invalid_schedule", "$.cron", "minute", "61"},
        {"\"cron\":\"0 25 * * *\"", "invalid_schedule", "$.cron", "hour", "25"},
        {"\"cron\":\"0 0 * FOO *\"", "invalid_schedule", "$.cron", "month", "FOO"},
        {"\"cron\":\"0 0 * * 1-9\"", "invalid_schedule", "$.cron", "day_of_week", "9"},
        {"\"cron\":\"0 0 31 2 *\"", "invalid_schedule", "$.cron", "expression", "never"},
        {"\"cron\":\"* * *\"", "invalid_schedule", "$.cron", "expression", "5"},
        {"\"cron\":\"@daily\",\"timezone\":\"Mars/Olympus\"", "invalid_schedule", "$.timezone",
         NULL, "Mars/Olympus"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fx_resp_t r = create(s, wf, cases[i].extra);
        cr_assert_eq(r.status, 400, "%s: %s", cases[i].extra, r.body);
        cr_assert_str_eq(
            json_string_value(json_object_get(json_object_get(r.json, "error"), "code")),
            cases[i].code);
        cr_assert_str_eq(detail(&r, "path"), cases[i].path, "%s", r.body);
        if (cases[i].field)
            cr_assert_str_eq(detail(&r, "field"), cases[i].field, "%s", r.body);
        cr_assert(strstr(r.body, cases[i].says), "%s should mention %s", r.body, cases[i].says);
        fx_resp_free(&r);
    }
    /* A workflow that is not there, a version that is not, and inputs
     * for a node the workflow lacks. */
    fx_resp_t r = create(s, "00000000-0000-4000-8000-000000000000", "\"cron\":\"@hourly\"");
    cr_assert_eq(r.status, 422, "%s", r.body);
    fx_resp_free(&r);
    r = create(s, wf, "\"cron\":\"@hourly\",\"version\":9");
    cr_assert_eq(r.status, 422, "%s", r.body);
    fx_resp_free(&r);
    r = create(s, wf, "\"cron\":\"@hourly\",\"inputs\":{\"nope\":{\"text\":\"x\"}}");
    cr_assert_eq(r.status, 400, "%s", r.body);
    cr_assert(strstr(r.body, "invalid_inputs"), "%s", r.body);
    fx_resp_free(&r);
    json_decref(s);
}

Test(schedules, crud_pause_resume_and_delete)
{
    json_t *s = fx_register("scb"), *o = fx_register("scc");
    char wf[64], path[160];
    fx_save_workflow(s, FX_TEXT_WORKFLOW, wf);
    fx_resp_t r = create(s, wf,
                         "\"name\":\"morning\",\"cron\":\"0 9 * * MON-FRI\",\"timezone\":"
                         "\"Europe/Berlin\",\"misfire\":\"run_once\"");
    cr_assert_eq(r.status, 201, "%s", r.body);
    char id[64];
    snprintf(id, sizeof id, "%s", json_string_value(json_object_get(r.json, "id")));
    cr_assert_str_eq(json_string_value(json_object_get(r.json, "version")), "latest");
    cr_assert_str_eq(json_string_value(json_object_get(r.json, "misfire")), "run_once");
    const char *next = json_string_value(json_object_get(r.json, "next_fire_at"));
    cr_assert_not_null(next, "%s", r.body);
    /* 09:00 in Berlin in winter is 08:00 UTC. */
    cr_assert(strstr(next, "T08:00:00"), "%s", next);
    fx_resp_free(&r);

    snprintf(path, sizeof path, "/v1/schedules/%s", id);
    r = fx_call("GET", path, NULL, o);
    cr_assert_eq(r.status, 404, "another organisation sees nothing: %s", r.body);
    fx_resp_free(&r);

    r = fx_call("PATCH", path, "{\"cron\":\"30 6 * * *\",\"timezone\":\"UTC\"}", s);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert(strstr(json_string_value(json_object_get(r.json, "next_fire_at")), "T06:30:00"), "%s",
              r.body);
    cr_assert_str_eq(json_string_value(json_object_get(r.json, "name")), "morning");
    fx_resp_free(&r);
    r = fx_call("PATCH", path, "{\"cron\":\"30 6 * *\"}", s);
    cr_assert_eq(r.status, 400, "a bad edit is refused: %s", r.body);
    fx_resp_free(&r);

    snprintf(path, sizeof path, "/v1/schedules/%s/pause", id);
    r = fx_call("POST", path, NULL, s);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert(json_is_true(json_object_get(r.json, "paused")));
    cr_assert(json_is_null(json_object_get(r.json, "next_fire_at")), "%s", r.body);
    fx_resp_free(&r);
    snprintf(path, sizeof path, "/v1/schedules/%s/resume", id);
    r = fx_call("POST", path, NULL, s);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert(json_is_false(json_object_get(r.json, "paused")));
    cr_assert_not_null(json_string_value(json_object_get(r.json, "next_fire_at")));
    fx_resp_free(&r);

    r = fx_call("GET", "/v1/schedules", NULL, s);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_eq(json_array_size(json_object_get(r.json, "data")), 1, "%s", r.body);
    fx_resp_free(&r);

    snprintf(path, sizeof path, "/v1/schedules/%s", id);
    fx_expect("DELETE", path, NULL, s, 204);
    fx_expect("GET", path, NULL, s, 404);
    json_decref(s);
    json_decref(o);
}

Test(schedules, preview_crosses_daylight_saving_in_berlin_and_new_york)
{
    json_t *s = fx_register("scd");
    char wf[64], path[200];
    fx_save_workflow(s, FX_TEXT_WORKFLOW, wf);
    /* Sundays at 02:30: on 2027-03-28 Berlin skips 02:00-03:00, so that
     * Sunday fires once, at the transition (03:00 CEST = 01:00 UTC). */
    fx_resp_t r = create(s, wf, "\"cron\":\"30 2 * * SUN\",\"timezone\":\"Europe/Berlin\"");
    cr_assert_eq(r.status, 201, "%s", r.body);
    snprintf(path, sizeof path, "/v1/schedules/%s/preview?count=30",
             json_string_value(json_object_get(r.json, "id")));
    fx_resp_free(&r);
    r = fx_call("GET", path, NULL, s);
    cr_assert_eq(r.status, 200, "%s", r.body);
    json_t *times = json_object_get(r.json, "fire_times");
    cr_assert_eq(json_array_size(times), 30);
    bool before = false, gap = false, after = false;
    for (size_t i = 0; i < json_array_size(times); i++) {
        const char *at = json_string_value(json_object_get(json_array_get(times, i), "at"));
        const char *local = json_string_value(json_object_get(json_array_get(times, i), "local"));
        if (strcmp(at, "2027-03-21T01:30:00Z") == 0)
            before = strcmp(local, "2027-03-21T02:30:00+01:00") == 0;
        if (strcmp(at, "2027-03-28T01:00:00Z") == 0)
            gap = strcmp(local, "2027-03-28T03:00:00+02:00") == 0;
        if (strcmp(at, "2027-04-04T00:30:00Z") == 0)
            after = strcmp(local, "2027-04-04T02:30:00+02:00") == 0;
        if (i)
            cr_assert_gt(
                strcmp(at, json_string_value(json_object_get(json_array_get(times, i - 1), "at"))),
                0, "fire times only go forward");
    }
    cr_assert(before && gap && after, "%s", r.body);
    fx_resp_free(&r);

    /* New York falls back on 2027-11-07: 01:30 happens twice and fires
     * once, at the first (EDT, 05:30 UTC). */
    r = create(s, wf, "\"cron\":\"30 1 7 11 *\",\"timezone\":\"America/New_York\"");
    cr_assert_eq(r.status, 201, "%s", r.body);
    snprintf(path, sizeof path, "/v1/schedules/%s/preview?count=2",
             json_string_value(json_object_get(r.json, "id")));
    fx_resp_free(&r);
    r = fx_call("GET", path, NULL, s);
    cr_assert_eq(r.status, 200, "%s", r.body);
    times = json_object_get(r.json, "fire_times");
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(times, 0), "at")),
                     "2027-11-07T05:30:00Z", "%s", r.body);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(times, 0), "local")),
                     "2027-11-07T01:30:00-04:00", "%s", r.body);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(times, 1), "at")),
                     "2028-11-07T06:30:00Z", "%s", r.body);
    fx_resp_free(&r);
    snprintf(strstr(path, "?"), 16, "?count=0");
    fx_expect("GET", path, NULL, s, 400);
    json_decref(s);
}

Test(schedules, fires_on_time_once_into_a_job_named_after_the_due_time)
{
    json_t *s = fx_register("sce");
    char wf[64], path[160], id[64];
    fx_save_workflow(s, FX_TEXT_WORKFLOW, wf);
    fx_resp_t r = create(s, wf, "\"cron\":\"* * * * *\",\"inputs\":{\"t\":{\"text\":\"tick\"}}");
    cr_assert_eq(r.status, 201, "%s", r.body);
    snprintf(id, sizeof id, "%s", json_string_value(json_object_get(r.json, "id")));
    char at[24];
    snprintf(at, sizeof at, "%.19sZ", json_string_value(json_object_get(r.json, "next_fire_at")));
    int64_t due = fx_utc(at);
    fx_resp_free(&r);
    snprintf(path, sizeof path, "/v1/schedules/%s", id);
    /* Not fired a second before its time; then the server's clock is moved
     * to the due time instead of the test waiting for the minute to turn. */
    if (fx_clock_now_ms() < (due - 1) * 1000) {
        fx_clock_advance_to((due - 1) * 1000);
        r = fx_call("GET", path, NULL, s);
        cr_assert_eq(json_integer_value(json_object_get(r.json, "fire_count")), 0,
                     "it fired before its time: %s", r.body);
        fx_resp_free(&r);
    }
    fx_clock_advance_to(due * 1000);
    json_t *got = NULL;
    for (int i = 0; i < 150 && !got; i++) {
        r = fx_call("GET", path, NULL, s);
        if (json_integer_value(json_object_get(r.json, "fire_count")) >= 1)
            got = json_incref(r.json);
        fx_resp_free(&r);
        if (!got)
            usleep(500000);
    }
    cr_assert_not_null(got, "the schedule did not fire within 75 s");
    int64_t now = fx_clock_now_s();
    cr_assert_geq(now, due, "it fired before its time");
    const json_t *out = json_object_get(got, "last_outcome");
    cr_assert_str_eq(json_string_value(json_object_get(out, "outcome")), "started");
    char want[37];
    schedule_job_id(id, due, want);
    cr_assert_str_eq(json_string_value(json_object_get(got, "last_job_id")), want,
                     "the job id is derived from the schedule and its due time");
    json_t *job = fx_wait_job(s, want, "succeeded failed", 60);
    cr_assert_str_eq(json_string_value(json_object_get(job, "status")), "succeeded");
    cr_assert_str_eq(
        json_string_value(json_object_get(
            json_object_get(json_object_get(json_object_get(job, "nodes"), "u"), "outputs"),
            "text")),
        "TICK", "the schedule's inputs reached the run");
    json_decref(job);
    /* The firing is in the schedule's history, with its job. */
    snprintf(path, sizeof path, "/v1/schedules/%s/runs?sort=-created_at", id);
    r = fx_call("GET", path, NULL, s);
    cr_assert_eq(r.status, 200, "%s", r.body);
    json_t *run = json_array_get(json_object_get(r.json, "data"), 0);
    cr_assert_str_eq(json_string_value(json_object_get(run, "outcome")), "started", "%s", r.body);
    cr_assert_str_eq(json_string_value(json_object_get(run, "job_id")), want, "%s", r.body);
    cr_assert(strncmp(json_string_value(json_object_get(run, "due_at")), at, 19) == 0, "%s",
              r.body);
    fx_resp_free(&r);
    /* One job per due time: pause, then count this workflow's jobs. */
    snprintf(path, sizeof path, "/v1/schedules/%s/pause", id);
    r = fx_call("POST", path, NULL, s);
    cr_assert_eq(r.status, 200);
    int fired = (int)json_integer_value(json_object_get(r.json, "fire_count"));
    fx_resp_free(&r);
    snprintf(path, sizeof path, "/v1/jobs?workflow_id=%s&limit=100", wf);
    r = fx_call("GET", path, NULL, s);
    cr_assert_eq((int)json_array_size(json_object_get(r.json, "data")), fired, "%s", r.body);
    fx_resp_free(&r);
    json_decref(got);
    json_decref(s);
}
