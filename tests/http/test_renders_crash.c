/* test_renders_crash.c - direct renders (POST /v1/renders) across a SIGKILL
 * of `fenta serve`: the job actor's messages are replayed at the restart
 * into the direct-render path that once released a reference twice and took
 * the server down at every start. Renders with the user's own media, killed
 * while they run, must all succeed after the restart with whole outputs, and
 * the server must come back and stay up. Its own binary, because it kills
 * its server. */
#include "tests/support/api_fixture.h"
#include "tests/support/media_fixture.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

FX_API_SERVER("{\"insecure_cookies\": true, \"cheap_passwords_for_tests\": true, "
              "\"max_running_jobs_per_org\": 4, \"rate_limits\": {\"ip\": {\"rate\": 10000, "
              "\"burst\": 20000}, \"user\": {\"rate\": 10000, \"burst\": 20000}}}")

#define NRENDERS 4

Test(renders_crash, killed_mid_render_then_restarted_every_render_succeeds, .timeout = 400)
{
    json_t *s = fx_register("kim");
    fx_media_uploads(s);
    const char *o = fx_org(s);
    char spec[NRENDERS][1400];
    snprintf(spec[0], sizeof spec[0],
             "{\"script\":\"hi there\",\"profile\":\"720p\",\"music\":null}");
    snprintf(spec[1], sizeof spec[1],
             "{\"script\":\"This is my own voice reading a short script.\",\"profile\":\"720p\","
             "\"voice\":{\"source\":{\"key\":\"uploads/%s/voice.wav\"}},\"media\":["
             "{\"source\":{\"key\":\"uploads/%s/with-audio.mp4\"}},"
             "{\"source\":{\"key\":\"uploads/%s/still.png\"}}]}",
             o, o, o);
    snprintf(spec[2], sizeof spec[2],
             "{\"script\":\"A clip without sound and a picture.\",\"profile\":\"720p\","
             "\"media\":[{\"source\":{\"key\":\"uploads/%s/no-audio.mp4\"}},"
             "{\"source\":{\"key\":\"uploads/%s/still.jpg\"}}]}",
             o, o);
    snprintf(spec[3], sizeof spec[3],
             "{\"profile\":\"720p\",\"template\":\"pop\",\"voice\":{\"source\":{\"key\":"
             "\"uploads/%s/voice.wav\"}}}",
             o);
    char ids[NRENDERS][64];
    for (int i = 0; i < NRENDERS; i++) {
        char *body = NULL;
        cr_assert(asprintf(&body, "{\"spec\":%s}", spec[i]) > 0);
        fx_resp_t r =
            fx_req("POST", "/v1/renders", body, &(fx_opts_t){.bearer = fx_token(s), .http2 = true});
        free(body);
        cr_assert_eq(r.status, 202, "%s", r.body);
        snprintf(ids[i], sizeof ids[i], "%s", json_string_value(json_object_get(r.json, "id")));
        fx_resp_free(&r);
    }
    /* Kill once the renders are under way (some running, none done). */
    json_decref(fx_wait_job(s, ids[1], "running", 60));
    cr_assert(fx_api_kill_and_restart(), "the server did not come back after the SIGKILL");
    for (int i = 0; i < NRENDERS; i++) {
        json_t *job = fx_wait_job(s, ids[i], "succeeded failed", 300);
        cr_assert_str_eq(json_string_value(json_object_get(job, "status")), "succeeded",
                         "render %d: %s", i, json_dumps(json_object_get(job, "error"), 0));
        fx_media_check(job, NULL);
        json_decref(job);
    }
    /* And once more: a restart with nothing in flight comes up too. */
    cr_assert(fx_api_kill_and_restart(), "the server did not come back the second time");
    fx_resp_t r = fx_req("GET", "/healthz", NULL, NULL);
    cr_assert_eq(r.status, 200);
    fx_resp_free(&r);
    json_decref(s);
}
