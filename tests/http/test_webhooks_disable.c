/* test_webhooks_disable.c - an endpoint failing for longer than
 * disable_after_ms is disabled, flagged, and the organisation's other
 * endpoint hears of it; enabling it again clears the flag. Its own binary:
 * its server disables endpoints after 2.5 s of failures. */
#include "tests/support/api_fixture.h"
#include "tests/support/webhook_receiver.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

FX_API_SERVER("{\"insecure_cookies\": true, \"cheap_passwords_for_tests\": true, "
              "\"rate_limits\": {\"ip\": {\"rate\": 10000, \"burst\": 20000}, \"user\": "
              "{\"rate\": 10000, \"burst\": 20000}}, \"webhooks\": {\"allow_loopback\": true, "
              "\"retry_ms\": [200, 400, 800, 1600, 3200], \"timeout_ms\": 3000, "
              "\"disable_after_ms\": 2500}}")

static const char *sget(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

Test(webhooks_disable, an_endpoint_failing_too_long_is_disabled_and_the_org_told, .timeout = 90)
{
    receiver_t *rv = receiver_start();
    json_t *s = fx_register("wcb");
    char id[64], secret[80], id2[64], secret2[80], path[160];
    receiver_hook(rv, s, "broken", "[\"job.failed\"]", "\"mode\":\"fail\",\"fail_times\":-1", id,
                  secret);
    receiver_hook(rv, s, "ops", "[\"webhook.disabled\"]", NULL, id2, secret2);
    snprintf(path, sizeof path, "/v1/webhooks/%s/test", id);
    fx_resp_t r = fx_call("POST", path, NULL, s);
    cr_assert_eq(r.status, 202, "%s", r.body);
    fx_resp_free(&r);
    /* Failing since the first attempt; past 2.5 s of failures it is off. */
    json_t *log = receiver_wait(rv, "ops", 1, 30);
    cr_assert_eq(json_array_size(log), 1, "the organisation hears of it");
    json_t *rec = json_array_get(log, 0);
    cr_assert(json_is_true(json_object_get(rec, "verified")));
    cr_assert_str_eq(sget(rec, "type"), "webhook.disabled");
    cr_assert_str_eq(sget(json_object_get(json_object_get(rec, "body"), "data"), "webhook_id"), id);
    json_decref(log);
    snprintf(path, sizeof path, "/v1/webhooks/%s", id);
    r = fx_call("GET", path, NULL, s);
    cr_assert(json_is_false(json_object_get(r.json, "enabled")), "%s", r.body);
    cr_assert(strstr(sget(r.json, "disabled_reason"), "failing since"), "%s", r.body);
    cr_assert_not_null(sget(r.json, "failing_since"));
    fx_resp_free(&r);
    /* Enabling it again clears the flag. */
    r = fx_call("PATCH", path, "{\"enabled\":true}", s);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert(json_is_null(json_object_get(r.json, "disabled_reason")), "%s", r.body);
    cr_assert(json_is_null(json_object_get(r.json, "failing_since")), "%s", r.body);
    fx_resp_free(&r);
    json_decref(s);
    receiver_stop(&rv);
}
