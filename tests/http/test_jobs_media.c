/* test_jobs_media.c - jobs of every kind through the real `fenta serve`
 * with the media users bring: direct renders (POST /v1/renders) with and
 * without media, a workflow over the user's own voice recording with clips
 * with and without sound and stills, a schedule firing that workflow and a
 * webhook told of its job. Every output is checked with ffprobe, the server
 * must still answer after each case, and no message may end in the
 * dead-letter queue. ops/test runs it a second time under ASan+UBSan: the
 * class of bug it hunts (the job actor releasing a reference twice on the
 * direct-render path, which took the server down) shows there first. */
#include "tests/support/api_fixture.h"
#include "tests/support/fixtures.h"
#include "tests/support/media_fixture.h"
#include "tests/support/webhook_receiver.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

FX_API_SERVER("{\"insecure_cookies\": true, \"cheap_passwords_for_tests\": true, "
              "\"max_running_jobs_per_org\": 2, \"rate_limits\": {\"ip\": {\"rate\": 10000, "
              "\"burst\": 20000}, \"user\": {\"rate\": 10000, \"burst\": 20000}}, "
              "\"webhooks\": {\"allow_loopback\": true}}")

/* One timeout for the suite: Criterion 2.4 leaks a little when tests
 * running side by side have timeouts of their own (LeakSanitizer sees it). */
TestSuite(jobs_media, .timeout = 300);

/* The server still answers. */
static void alive(void)
{
    fx_resp_t r = fx_req("GET", "/healthz", NULL, NULL);
    cr_assert_eq(r.status, 200, "the server no longer answers");
    fx_resp_free(&r);
}

/* Sum of fenta_messages_dead_lettered_total over every kind. */
static long dead_letters(void)
{
    fx_resp_t r = fx_req("GET", "/metrics", NULL, NULL);
    cr_assert_eq(r.status, 200);
    long n = 0;
    const char *name = "fenta_messages_dead_lettered_total{";
    for (const char *at = strstr(r.body, name); at; at = strstr(at + 1, name)) {
        const char *v = strchr(at, ' ');
        if (v)
            n += atol(v + 1);
    }
    fx_resp_free(&r);
    return n;
}

/* POST /v1/renders with spec (a JSON object's text); the job's id. */
static char *render(const json_t *who, const char *spec)
{
    char *body = NULL;
    cr_assert(asprintf(&body, "{\"spec\":%s}", spec) > 0);
    fx_resp_t r = fx_call("POST", "/v1/renders", body, who);
    cr_assert_eq(r.status, 202, "%s", r.body);
    char *id = strdup(json_string_value(json_object_get(r.json, "id")));
    fx_resp_free(&r);
    free(body);
    return id;
}

/* The plain spec that crashed the server two runs out of three. */
Test(jobs_media, a_direct_render_without_media_succeeds_every_time)
{
    json_t *s = fx_register("dora");
    char *ids[3];
    for (int i = 0; i < 3; i++)
        ids[i] = render(s, "{\"script\":\"hi there\",\"profile\":\"720p\",\"music\":null}");
    for (int i = 0; i < 3; i++) {
        json_t *job = fx_wait_job(s, ids[i], "succeeded failed", 120);
        cr_assert_str_eq(json_string_value(json_object_get(job, "status")), "succeeded", "%s",
                         json_dumps(json_object_get(job, "error"), 0));
        cr_assert_eq(json_integer_value(json_object_get(job, "attempts")), 1);
        fx_media_check(job, "there");
        json_decref(job);
        free(ids[i]);
    }
    alive();
    json_decref(s);
}

Test(jobs_media, a_direct_render_of_clips_stills_and_a_voice_recording)
{
    json_t *s = fx_register("remy");
    fx_media_uploads(s);
    const char *o = fx_org(s);
    char spec[2048];
    snprintf(spec, sizeof spec,
             "{\"script\":\"This is my own voice reading a short script.\",\"profile\":\"720p\","
             "\"template\":\"bold\",\"voice\":{\"source\":{\"key\":\"uploads/%s/voice.wav\"}},"
             "\"media\":[{\"source\":{\"key\":\"uploads/%s/with-audio.mp4\"}},"
             "{\"source\":{\"key\":\"uploads/%s/no-audio.mp4\"}},"
             "{\"source\":{\"key\":\"uploads/%s/still.png\"}},"
             "{\"source\":{\"key\":\"uploads/%s/still.jpg\"}}]}",
             o, o, o, o, o);
    char *id = render(s, spec);
    json_t *job = fx_wait_job(s, id, "succeeded failed", 180);
    cr_assert_str_eq(json_string_value(json_object_get(job, "status")), "succeeded", "%s",
                     json_dumps(json_object_get(job, "error"), 0));
    fx_media_check(job, "voice");
    json_decref(job);
    /* Music from the user's own clip, a recording without its script
     * (transcribed), no media: the other branches of the spec. */
    snprintf(spec, sizeof spec,
             "{\"profile\":\"720p\",\"music\":{\"source\":{\"key\":\"uploads/%s/with-audio.mp4\"}},"
             "\"voice\":{\"source\":{\"key\":\"uploads/%s/voice.wav\"}}}",
             o, o);
    free(id);
    id = render(s, spec);
    job = fx_wait_job(s, id, "succeeded failed", 180);
    cr_assert_str_eq(json_string_value(json_object_get(job, "status")), "succeeded", "%s",
                     json_dumps(json_object_get(job, "error"), 0));
    fx_media_check(job, NULL);
    json_decref(job);
    free(id);
    alive();
    json_decref(s);
}

/* Bad media fails the job with the reason and keeps the server up. */
Test(jobs_media, bad_media_fails_the_job_not_the_server)
{
    json_t *s = fx_register("bea");
    cr_assert_eq(fx_sh(fx_api_data_dir(),
                       "d=objects/uploads/%s && mkdir -p $d && echo 'not a video' > $d/text.mp4 && "
                       ": > $d/empty.mp4 && ffmpeg -v error -y -f lavfi -i "
                       "testsrc2=s=640x360:d=3:r=30 -pix_fmt yuv420p -c:v libx264 -preset "
                       "ultrafast $d/whole.mp4 && head -c 20000 $d/whole.mp4 > $d/truncated.mp4",
                       fx_org(s)),
                 0);
    const char *names[] = {"text.mp4", "empty.mp4", "truncated.mp4", "missing.mp4"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char spec[600];
        snprintf(spec, sizeof spec,
                 "{\"script\":\"Bad media here.\",\"profile\":\"720p\",\"media\":[{\"source\":"
                 "{\"key\":\"uploads/%s/%s\"}}]}",
                 fx_org(s), names[i]);
        char *body = NULL;
        cr_assert(asprintf(&body, "{\"spec\":%s}", spec) > 0);
        fx_resp_t r = fx_call("POST", "/v1/renders", body, s);
        free(body);
        if (r.status == 202) {
            /* Accepted: the job fails at ingest, naming the file. */
            char id[64];
            snprintf(id, sizeof id, "%s", json_string_value(json_object_get(r.json, "id")));
            json_t *job = fx_wait_job(s, id, "succeeded failed", 120);
            cr_assert_str_eq(json_string_value(json_object_get(job, "status")), "failed",
                             "%s rendered", names[i]);
            const char *msg =
                json_string_value(json_object_get(json_object_get(job, "error"), "message"));
            cr_assert(msg && strstr(msg, names[i]), "%s: %s", names[i],
                      json_dumps(json_object_get(job, "error"), 0));
            json_decref(job);
        } else {
            cr_assert(r.status >= 400 && r.status < 500, "%s: %ld %s", names[i], r.status, r.body);
            cr_assert(json_object_get(r.json, "error"), "%s: %s", names[i], r.body);
        }
        fx_resp_free(&r);
        alive();
    }
    json_decref(s);
}

/* The user's own recording aligned to its script, their clips and stills
 * through input.asset, captions, montage, export and deliver. */
static char *media_workflow(const json_t *who)
{
    const char *o = fx_org(who);
    char *doc = NULL;
    cr_assert(
        asprintf(&doc,
                 "{\"name\":\"my media\",\"graph\":{\"nodes\":["
                 "{\"id\":\"t\",\"type\":\"input.text\",\"params\":{\"text\":\"This is my own "
                 "voice reading a short script.\"}},"
                 "{\"id\":\"rec\",\"type\":\"input.asset\",\"params\":{\"kind\":\"audio\","
                 "\"keys\":[\"uploads/%s/voice.wav\"]}},"
                 "{\"id\":\"clips\",\"type\":\"input.asset\",\"params\":{\"kind\":\"media\","
                 "\"keys\":[\"uploads/%s/no-audio.mp4\",\"uploads/%s/still.jpg\","
                 "\"uploads/%s/with-audio.mp4\"]}},"
                 "{\"id\":\"words\",\"type\":\"asr\"},"
                 "{\"id\":\"subs\",\"type\":\"captions\",\"params\":{\"template\":\"pop\"}},"
                 "{\"id\":\"edit\",\"type\":\"montage\",\"params\":{\"template\":\"clean\","
                 "\"profile\":\"720p\",\"music\":\"none\"}},"
                 "{\"id\":\"out\",\"type\":\"export\",\"params\":{\"preset\":\"ultrafast\"}},"
                 "{\"id\":\"send\",\"type\":\"deliver\"}],\"edges\":["
                 "{\"from\":\"rec.asset\",\"to\":\"words.audio\"},"
                 "{\"from\":\"t.text\",\"to\":\"words.text\"},"
                 "{\"from\":\"t.text\",\"to\":\"edit.text\"},"
                 "{\"from\":\"rec.asset\",\"to\":\"edit.audio\"},"
                 "{\"from\":\"words.words\",\"to\":\"edit.words\"},"
                 "{\"from\":\"words.words\",\"to\":\"subs.words\"},"
                 "{\"from\":\"subs.captions\",\"to\":\"edit.captions\"},"
                 "{\"from\":\"clips.asset\",\"to\":\"edit.media\"},"
                 "{\"from\":\"edit.timeline\",\"to\":\"out.timeline\"},"
                 "{\"from\":\"out.artifacts\",\"to\":\"send.artifacts\"}]}}",
                 o, o, o, o) > 0);
    char id[64];
    fx_save_workflow(who, doc, id);
    free(doc);
    return strdup(id);
}

Test(jobs_media, a_workflow_over_my_recording_clips_and_stills)
{
    json_t *s = fx_register("wim");
    fx_media_uploads(s);
    char *wf = media_workflow(s);
    char id[64];
    fx_start_run(s, wf, "{\"max_credits\": 1000}", id);
    json_t *job = fx_wait_job(s, id, "succeeded failed", 240);
    cr_assert_str_eq(json_string_value(json_object_get(job, "status")), "succeeded", "%s",
                     json_dumps(json_object_get(job, "error"), 0));
    fx_media_check(job, "voice");
    json_decref(job);
    free(wf);
    alive();
    json_decref(s);
}

/* A schedule fires the media workflow; a webhook hears the job succeed. */
Test(jobs_media, a_schedule_runs_my_media_workflow_and_a_webhook_is_told)
{
    json_t *s = fx_register("sal");
    fx_media_uploads(s);
    receiver_t *rv = receiver_start();
    char hid[64], secret[80];
    receiver_hook(rv, s, "media", "[\"job.succeeded\",\"schedule.fired\"]", NULL, hid, secret);
    char *wf = media_workflow(s);
    char body[256];
    snprintf(body, sizeof body, "{\"workflow_id\":\"%s\",\"cron\":\"* * * * *\"}", wf);
    fx_resp_t r = fx_call("POST", "/v1/schedules", body, s);
    cr_assert_eq(r.status, 201, "%s", r.body);
    char sid[64], path[160];
    snprintf(sid, sizeof sid, "%s", json_string_value(json_object_get(r.json, "id")));
    fx_resp_free(&r);
    /* The first firing's job: the one named in the schedule.fired event,
     * once the server's test clock is moved to the next minute. The actor
     * arms its timer when it handles the create's sync message; on a loaded
     * machine that came after the clock had moved, so it armed the minute
     * after, which took a real minute to come (78 s runs). So each round
     * turns the next minute until the schedule has fired. */
    snprintf(path, sizeof path, "/v1/schedules/%s", sid);
    bool fired = false;
    for (int round = 0; round < 15 && !fired; round++) {
        fx_clock_advance_to((fx_clock_now_s() / 60 + 1) * 60 * 1000);
        for (int t = 0; t < 25 && !fired; t++) {
            r = fx_call("GET", path, NULL, s);
            fired = json_integer_value(json_object_get(r.json, "fire_count")) >= 1;
            fx_resp_free(&r);
            if (!fired)
                usleep(200000);
        }
    }
    cr_assert(fired, "the schedule did not fire through 15 minute turns");
    json_t *log = receiver_wait(rv, "media", 1, 90);
    const char *job_id = NULL;
    size_t i;
    json_t *rec;
    json_array_foreach(log, i, rec) if (strcmp(json_string_value(json_object_get(rec, "type")),
                                               "schedule.fired") == 0) job_id =
        json_string_value(
            json_object_get(json_object_get(json_object_get(rec, "body"), "data"), "job_id"));
    cr_assert(job_id, "no schedule.fired: %s", json_dumps(log, 0));
    char jid[64];
    snprintf(jid, sizeof jid, "%s", job_id);
    json_decref(log);
    snprintf(path, sizeof path, "/v1/schedules/%s/pause", sid);
    fx_expect("POST", path, NULL, s, 200);
    json_t *job = fx_wait_job(s, jid, "succeeded failed", 240);
    cr_assert_str_eq(json_string_value(json_object_get(job, "status")), "succeeded", "%s",
                     json_dumps(json_object_get(job, "error"), 0));
    fx_media_check(job, NULL);
    json_decref(job);
    /* The webhook: a verified job.succeeded for that job. */
    bool told = false;
    for (int t = 0; t < 100 && !told; t++) {
        log = receiver_log(rv, "media");
        json_array_foreach(log, i, rec)
        {
            const json_t *d = json_object_get(json_object_get(rec, "body"), "data");
            if (strcmp(json_string_value(json_object_get(rec, "type")), "job.succeeded") == 0 &&
                strcmp(json_string_value(json_object_get(d, "job_id")), jid) == 0) {
                cr_assert(json_is_true(json_object_get(rec, "verified")));
                told = true;
            }
        }
        json_decref(log);
        if (!told)
            usleep(100000);
    }
    cr_assert(told, "no job.succeeded webhook for %s", jid);
    receiver_stop(&rv);
    free(wf);
    alive();
    json_decref(s);
}

/* A job finishing wakes the queued ones of its organisation. A queued row
 * whose actor is not spawned yet (the API commits the row, then spawns; a
 * crash between the two leaves it for the next start's recovery) must not
 * be sent a wake-up: it was dead-lettered as "no such actor", 110 false
 * dead letters in a 5-minute soak. The row is made here as the API leaves
 * it in that window. */
Test(jobs_media, admission_wake_ups_leave_no_dead_letters)
{
    json_t *s = fx_register("quinn");
    fx_sql("INSERT INTO jobs (org_id, kind, graph) VALUES ($1::uuid, 'workflow', '{}')", fx_org(s));
    char wid[64];
    fx_save_workflow(s, FX_TEXT_WORKFLOW, wid);
    for (int i = 0; i < 3; i++) {
        char job[64];
        fx_start_run(s, wid, "{\"max_credits\": 100}", job);
        json_decref(fx_wait_job(s, job, "succeeded", 60));
    }
    /* The wake-ups reach the actors by commit; give them time to land. */
    usleep(500000);
    cr_assert_eq(dead_letters(), 0, "a wake-up was dead-lettered");
    fx_sql("UPDATE jobs SET status = 'cancelled' WHERE org_id = $1::uuid AND status = 'queued'",
           fx_org(s));
    json_decref(s);
}
