/* test_webhooks_crash.c - `fenta serve` SIGKILLed with 100 webhook
 * deliveries pending: after the restart every event is delivered, and a
 * consumer that deduplicates by webhook-id sees each exactly once. Its own
 * binary: it kills its server. */
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
              "\"max_per_endpoint\": 4}}")

static const char *sget(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static json_int_t stat_of(receiver_t *rv, const char *name, const char *what)
{
    json_t *st = receiver_stats(rv);
    json_int_t v = json_integer_value(json_object_get(json_object_get(st, name), what));
    json_decref(st);
    return v;
}

Test(webhooks_crash, a_kill_with_100_pending_loses_none_and_dedup_sees_each_once, .timeout = 180)
{
    receiver_t *rv = receiver_start();
    json_t *s = fx_register("wca");
    char id[64], secret[80], path[160];
    /* The endpoint holds every delivery unanswered until the kill, so the
     * kill finds all but those in flight pending however slow the machine
     * is (a 250 ms answer let a loaded machine deliver 60 of them first). */
    receiver_hook(rv, s, "slow", "[\"job.failed\"]", "\"mode\":\"hang\"", id, secret);
    snprintf(path, sizeof path, "/v1/webhooks/%s/test", id);
    char *events[100];
    for (int i = 0; i < 100; i++) {
        fx_resp_t r = fx_call("POST", path, NULL, s);
        cr_assert_eq(r.status, 202, "%s", r.body);
        events[i] = strdup(sget(r.json, "event_id"));
        fx_resp_free(&r);
    }
    for (int i = 0; i < 100 && stat_of(rv, "slow", "received") < 1; i++)
        usleep(100000);
    json_int_t before = stat_of(rv, "slow", "unique_ids");
    cr_assert_lt(before, 60, "most deliveries should still be pending at the kill (%lld done)",
                 (long long)before);
    /* From now on the endpoint answers: what the restarted server sends
     * again is delivered. */
    char cfg[160];
    snprintf(cfg, sizeof cfg, "{\"secrets\":[\"%s\"]}", secret);
    receiver_config(rv, "slow", cfg);
    cr_assert(fx_api_kill_and_restart(), "the server did not come back");

    for (int i = 0; i < 600 && stat_of(rv, "slow", "unique_ids") < 100; i++)
        usleep(100000);
    cr_assert_eq(stat_of(rv, "slow", "unique_ids"), 100, "every event is delivered");
    json_t *log = receiver_log(rv, "slow");
    for (size_t i = 0; i < json_array_size(log); i++)
        cr_assert(json_is_true(json_object_get(json_array_get(log, i), "verified")));
    for (int i = 0; i < 100; i++) {
        bool seen = false;
        for (size_t k = 0; k < json_array_size(log) && !seen; k++)
            seen = strcmp(sget(json_array_get(log, k), "webhook_id"), events[i]) == 0;
        cr_assert(seen, "event %s was never delivered", events[i]);
        free(events[i]);
    }
    json_decref(log);
    /* And the record agrees: every delivery succeeded. */
    snprintf(path, sizeof path, "/v1/webhooks/%s/deliveries?status=succeeded&limit=100", id);
    int ok = 0;
    for (int i = 0; i < 50 && ok < 100; i++) {
        fx_resp_t r = fx_call("GET", path, NULL, s);
        ok = (int)json_array_size(json_object_get(r.json, "data"));
        fx_resp_free(&r);
        if (ok < 100)
            usleep(200000);
    }
    cr_assert_eq(ok, 100);
    json_decref(s);
    receiver_stop(&rv);
}
