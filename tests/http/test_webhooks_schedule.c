/* test_webhooks_schedule.c - a schedule's firing announced to a webhook
 * (schedule.fired, signed and verified by the receiver of
 * tests/support/webhook_receiver.h), against a server of its own: the test
 * turns that server's test clock to each next minute instead of waiting a
 * real one, which it could not do beside test_webhooks.c's retry and
 * backoff tests on a shared server. */
#include "tests/support/api_fixture.h"
#include "tests/support/webhook_receiver.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

FX_API_SERVER("{\"insecure_cookies\": true, \"cheap_passwords_for_tests\": true, "
              "\"rate_limits\": {\"ip\": {\"rate\": 10000, \"burst\": 20000}, \"user\": "
              "{\"rate\": 10000, \"burst\": 20000}}, \"webhooks\": {\"allow_loopback\": true, "
              "\"retry_ms\": [300, 600, 1200], \"timeout_ms\": 1500, \"connect_timeout_ms\": "
              "1000}}")

TestSuite(webhooks_schedule, .timeout = 150);

static fx_resp_t call(const char *method, const char *path, const char *body, const json_t *who)
{
    return fx_req(method, path, body, &(fx_opts_t){.bearer = fx_token(who), .http2 = true});
}

static const char *sget(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static const char TEXT_DOC[] =
    "{\"name\":\"text\",\"graph\":{\"nodes\":[{\"id\":\"t\",\"type\":"
    "\"input.text\",\"params\":{\"text\":\"Hello there.\"}},{\"id\":\"u\","
    "\"type\":\"script.transform\",\"params\":{\"op\":\"uppercase\"}}],"
    "\"edges\":[{\"from\":\"t.text\",\"to\":\"u.text\"}]}}";

Test(webhooks_schedule, a_schedule_firing_is_announced)
{
    receiver_t *rv = receiver_start();
    json_t *s = fx_register("whk");
    char id[64], secret[80], body[256], sid[64];
    receiver_hook(rv, s, "sched", "[\"schedule.fired\"]", NULL, id, secret);
    fx_resp_t r = call("POST", "/v1/workflows", TEXT_DOC, s);
    cr_assert_eq(r.status, 201, "%s", r.body);
    snprintf(body, sizeof body, "{\"workflow_id\":\"%s\",\"cron\":\"* * * * *\"}",
             sget(r.json, "id"));
    fx_resp_free(&r);
    r = call("POST", "/v1/schedules", body, s);
    cr_assert_eq(r.status, 201, "%s", r.body);
    snprintf(sid, sizeof sid, "%s", sget(r.json, "id"));
    fx_resp_free(&r);
    /* The actor arms its timer when it handles the create's sync message;
     * on a loaded machine that can come after the clock has moved, and it
     * then arms the minute after. So each round turns the next minute on
     * the test clock and gives the firing's delivery a few seconds (a real
     * minute and 75 s of waiting were not always enough with suites side by
     * side). */
    json_t *log = NULL;
    for (int round = 0; round < 15 && json_array_size(log) < 1; round++) {
        json_decref(log);
        fx_clock_advance_to((fx_clock_now_s() / 60 + 1) * 60 * 1000);
        log = receiver_wait(rv, "sched", 1, 5);
    }
    cr_assert_geq(json_array_size(log), 1, "no schedule.fired through 15 minute turns");
    json_t *rec = json_array_get(log, 0);
    cr_assert(json_is_true(json_object_get(rec, "verified")));
    cr_assert_str_eq(sget(rec, "type"), "schedule.fired");
    const json_t *data = json_object_get(json_object_get(rec, "body"), "data");
    cr_assert_str_eq(sget(data, "schedule_id"), sid);
    cr_assert_str_eq(sget(data, "outcome"), "started");
    cr_assert_not_null(sget(data, "job_id"));
    cr_assert_not_null(sget(data, "due_at"));
    char path[128];
    snprintf(path, sizeof path, "/v1/schedules/%s", sid);
    r = call("DELETE", path, NULL, s);
    cr_assert_eq(r.status, 204);
    fx_resp_free(&r);
    json_decref(log);
    json_decref(s);
    receiver_stop(&rv);
}
