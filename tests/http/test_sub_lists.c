/* test_sub_lists.c - lists under another resource (GET
 * /v1/workflows/{id}/versions, /v1/schedules/{id}/runs,
 * /v1/webhooks/{id}/deliveries) through the real `fenta serve`: another
 * organisation, a missing id and a malformed one get the very 404 a GET of
 * the parent gives (never an empty page that says the id exists), while
 * the owner still gets its rows. */
#include "tests/support/api_fixture.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

FX_API_SERVER(NULL)

TestSuite(sub_lists, .timeout = 150);

#define NO_SUCH_ID "3f2e1d0c-9b8a-4765-8432-10fedcba9876"

/* As who, GET /v1/<coll>/<id>/<sub> answers 404 with the body of GET
 * /v1/<coll>/<id>. */
static void assert_hidden(const json_t *who, const char *coll, const char *id, const char *sub)
{
    char parent[256], path[300];
    snprintf(parent, sizeof parent, "/v1/%s/%s", coll, id);
    snprintf(path, sizeof path, "%s/%s", parent, sub);
    fx_resp_t p = fx_call("GET", parent, NULL, who);
    cr_assert_eq(p.status, 404, "GET %s: %ld %s", parent, p.status, p.body);
    fx_resp_t r = fx_call("GET", path, NULL, who);
    cr_assert_eq(r.status, 404, "GET %s: %ld %s", path, r.status, r.body);
    cr_assert_str_eq(r.body, p.body, "GET %s answers as GET %s does", path, parent);
    fx_resp_free(&r);
    fx_resp_free(&p);
}

/* The three ways of not being the caller's: another organisation's id, an
 * id nobody has, and one that is not a uuid. */
static void assert_hidden_all_ways(const json_t *owner, const char *coll, const char *id,
                                   const char *sub)
{
    json_t *other = fx_register("sub-other");
    assert_hidden(other, coll, id, sub);
    assert_hidden(owner, coll, NO_SUCH_ID, sub);
    assert_hidden(owner, coll, "not-a-uuid", sub);
    json_decref(other);
}

/* GET path as who until its page holds at least one row (seconds at most);
 * the page (the caller's), NULL when it stayed empty. */
static json_t *try_rows(const json_t *who, const char *path, int seconds)
{
    for (int i = 0; i < seconds * 4; i++) {
        fx_resp_t r = fx_call("GET", path, NULL, who);
        cr_assert_eq(r.status, 200, "GET %s: %s", path, r.body);
        if (json_array_size(json_object_get(r.json, "data")) > 0) {
            json_t *page = json_incref(r.json);
            fx_resp_free(&r);
            return page;
        }
        fx_resp_free(&r);
        usleep(250000);
    }
    return NULL;
}

/* try_rows, failing the test when the page stayed empty. */
static json_t *wait_rows(const json_t *who, const char *path, int seconds)
{
    json_t *page = try_rows(who, path, seconds);
    cr_assert_not_null(page, "GET %s stayed empty for %d s", path, seconds);
    return page;
}

static void create(const json_t *who, const char *path, const char *body, char id[64])
{
    fx_resp_t r = fx_call("POST", path, body, who);
    cr_assert_eq(r.status, 201, "POST %s: %s", path, r.body);
    snprintf(id, 64, "%s", json_string_value(json_object_get(r.json, "id")));
    fx_resp_free(&r);
}

Test(sub_lists, workflow_versions_are_the_owners_alone)
{
    json_t *a = fx_register("sub-wf");
    char wf[64], path[160];
    fx_save_workflow(a, FX_TEXT_WORKFLOW, wf);
    assert_hidden_all_ways(a, "workflows", wf, "versions");
    snprintf(path, sizeof path, "/v1/workflows/%s/versions", wf);
    json_t *page = wait_rows(a, path, 1);
    cr_assert_eq(json_integer_value(
                     json_object_get(json_array_get(json_object_get(page, "data"), 0), "version")),
                 1);
    json_decref(page);
    /* a deleted workflow's versions go with it */
    snprintf(path, sizeof path, "/v1/workflows/%s", wf);
    fx_resp_t r = fx_call("DELETE", path, NULL, a);
    cr_assert_eq(r.status, 204, "%s", r.body);
    fx_resp_free(&r);
    assert_hidden(a, "workflows", wf, "versions");
    json_decref(a);
}

Test(sub_lists, webhook_deliveries_are_the_owners_alone)
{
    json_t *a = fx_register("sub-wh");
    char wh[64], path[160];
    create(a, "/v1/webhooks",
           "{\"url\":\"https://hooks.example.com/fenta\",\"event_types\":[\"job.succeeded\"]}", wh);
    snprintf(path, sizeof path, "/v1/webhooks/%s/test", wh);
    fx_resp_t r = fx_call("POST", path, NULL, a);
    cr_assert_eq(r.status, 202, "%s", r.body);
    fx_resp_free(&r);
    snprintf(path, sizeof path, "/v1/webhooks/%s/deliveries", wh);
    json_decref(wait_rows(a, path, 10));
    assert_hidden_all_ways(a, "webhooks", wh, "deliveries");
    json_decref(a);
}

Test(sub_lists, schedule_runs_are_the_owners_alone)
{
    json_t *a = fx_register("sub-sc");
    char wf[64], sc[64], path[160], body[256];
    fx_save_workflow(a, FX_TEXT_WORKFLOW, wf);
    snprintf(body, sizeof body, "{\"workflow_id\":\"%s\",\"cron\":\"* * * * *\"}", wf);
    create(a, "/v1/schedules", body, sc);
    assert_hidden_all_ways(a, "schedules", sc, "runs");
    /* the owner sees its firing once the minute turns (on the server's test
     * clock: moved there, not waited for). The actor arms its timer when it
     * handles the create's sync message; on a loaded machine that can come
     * after the clock has moved, and it then arms the minute after, which
     * real time would take a minute to reach (75 s seen). So each round
     * turns the next minute on the test clock until a run shows. */
    snprintf(path, sizeof path, "/v1/schedules/%s/runs", sc);
    json_t *page = NULL;
    for (int round = 0; round < 15 && !page; round++) {
        fx_clock_advance_to((fx_clock_now_s() / 60 + 1) * 60 * 1000);
        page = try_rows(a, path, 5);
    }
    cr_assert_not_null(page, "GET %s stayed empty through 15 minute turns", path);
    json_decref(page);
    snprintf(path, sizeof path, "/v1/schedules/%s", sc);
    fx_resp_t r = fx_call("DELETE", path, NULL, a);
    cr_assert_eq(r.status, 204, "%s", r.body);
    fx_resp_free(&r);
    json_decref(a);
}
