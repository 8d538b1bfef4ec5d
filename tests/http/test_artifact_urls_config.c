/* test_artifact_urls_config.c - the config file's presign_ttl_s reaches
 * the API through the real `fenta serve`: it is the most ?expires_in may
 * ask for (a server of its own, started with presign_ttl_s 600). */
#include "tests/support/api_fixture.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

FX_API_SERVER("{\"insecure_cookies\": true, \"cheap_passwords_for_tests\": true, "
              "\"presign_ttl_s\": 600}")

Test(artifact_urls_config, presign_ttl_s_bounds_expires_in)
{
    json_t *s = fx_register("urlc");
    const fx_opts_t o = {.bearer = fx_token(s), .http2 = true};
    /* checked before the job is looked up: any id will do */
    fx_resp_t r =
        fx_req("GET", "/v1/jobs/0b6a3f1e-5d4c-4b3a-9f8e-7d6c5b4a3f2e?expires_in=601", NULL, &o);
    cr_assert_eq(r.status, 400, "%s", r.body);
    const char *msg =
        json_string_value(json_object_get(json_object_get(r.json, "error"), "message"));
    cr_assert(msg && strstr(msg, "expires_in") && strstr(msg, "600"), "%s", r.body);
    fx_resp_free(&r);
    r = fx_req("GET", "/v1/jobs/0b6a3f1e-5d4c-4b3a-9f8e-7d6c5b4a3f2e?expires_in=600", NULL, &o);
    cr_assert_eq(r.status, 404, "600 is allowed: %s", r.body);
    fx_resp_free(&r);
    json_decref(s);
}
