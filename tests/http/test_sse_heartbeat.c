/* test_sse_heartbeat.c - the sse_heartbeat_ms setting reaches the SSE hub
 * of a real `fenta serve`: the config file asks for a heartbeat a minute,
 * the environment (which wins) for one every 200 ms, and an open event
 * stream gets a ": ping" comment about that often. With the hub's own 15 s
 * default, or the file's minute, the stream would get none in two seconds. */
#include "tests/support/api_fixture.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

ReportHook(PRE_ALL)(struct criterion_test_set *set)
{
    (void)set;
    setenv("FENTA_SSE_HEARTBEAT_MS", "200", 1); /* the server inherits it */
    fx_api_start("{\"insecure_cookies\": true, \"cheap_passwords_for_tests\": true, "
                 "\"sse_heartbeat_ms\": 60000, \"rate_limits\": {\"ip\": {\"rate\": 10000, "
                 "\"burst\": 20000}, \"user\": {\"rate\": 10000, \"burst\": 20000}}}");
}

Test(sse_heartbeat, stream_gets_the_configured_heartbeat, .timeout = 120)
{
    json_t *s = fx_register("beat");
    /* The stream never ends by itself: the client gives up after 2 s and
     * keeps what it got. */
    fx_resp_t r =
        fx_req("GET", "/v1/events", NULL, &(fx_opts_t){.bearer = fx_token(s), .timeout_s = 2});
    cr_assert(strstr(r.body, "retry: 3000"), "not an event stream: %s", r.body);
    int pings = 0;
    for (const char *p = strstr(r.body, ": ping\n\n"); p; p = strstr(p + 1, ": ping\n\n"))
        pings++;
    cr_expect_geq(pings, 3, "%d pings in 2 s:\n%s", pings, r.body);
    fx_resp_free(&r);
    json_decref(s);
}
