/* test_jobs_crash.c - `fenta serve` SIGKILLed while 20 jobs run, then
 * restarted on the same data directory: every job succeeds, none stays
 * running, and no node's side effects are applied twice (one
 * node.finished per node, one completed per job, each artifact once, event
 * ids unique and increasing). Its own binary, because it kills its server. */
#include "tests/support/api_fixture.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NJOBS 20

FX_API_SERVER("{\"insecure_cookies\": true, \"cheap_passwords_for_tests\": true, "
              "\"max_running_jobs_per_org\": 20, \"rate_limits\": {\"ip\": {\"rate\": 10000, "
              "\"burst\": 20000}, \"user\": {\"rate\": 10000, \"burst\": 20000}}}")

/* Text in, uppercased, spoken, captioned, cut into a 5 s 720p video: every
 * kind of node (default, io and render dispatchers) has work in flight. */
static const char DOC[] =
    "{\"name\":\"crash\",\"graph\":{\"nodes\":["
    "{\"id\":\"t\",\"type\":\"input.text\",\"params\":{\"text\":\"Salt comes from rocks. Rivers "
    "carry it to the sea.\"}},"
    "{\"id\":\"u\",\"type\":\"script.transform\",\"params\":{\"op\":\"uppercase\"}},"
    "{\"id\":\"voice\",\"type\":\"tts\"},"
    "{\"id\":\"subs\",\"type\":\"captions\"},"
    "{\"id\":\"edit\",\"type\":\"montage\",\"params\":{\"profile\":\"720p\",\"duration_s\":5,"
    "\"music\":\"none\"}},"
    "{\"id\":\"out\",\"type\":\"export\",\"params\":{\"preset\":\"ultrafast\"}},"
    "{\"id\":\"send\",\"type\":\"deliver\"}],\"edges\":["
    "{\"from\":\"t.text\",\"to\":\"u.text\"},"
    "{\"from\":\"u.text\",\"to\":\"voice.text\"}," FX_RENDER_CHAIN_EDGES "]}}";
static const char *const NODES[] = {"t", "u", "voice", "subs", "edit", "out", "send"};
#define NNODES (sizeof NODES / sizeof NODES[0])

static int count_status(const json_t *who, const char *status)
{
    char path[96];
    snprintf(path, sizeof path, "/v1/jobs?status=%s&limit=100", status);
    fx_resp_t r = fx_call("GET", path, NULL, who);
    cr_assert_eq(r.status, 200, "%s", r.body);
    int n = (int)json_array_size(json_object_get(r.json, "data"));
    fx_resp_free(&r);
    return n;
}

/* Replays the job's event stream (it ends after the final event) and checks
 * each effect happened once. */
static void check_events_once(const json_t *who, const char *id)
{
    char path[128];
    snprintf(path, sizeof path, "/v1/jobs/%s/events", id);
    fx_resp_t ev = fx_call("GET", path, NULL, who);
    cr_assert_eq(ev.status, 200, "%s", ev.body);
    int completed = 0, finished[NNODES] = {0};
    long last_id = 0;
    char *save = NULL;
    for (char *frame = strtok_r(ev.body, "\n", &save); frame; frame = strtok_r(NULL, "\n", &save)) {
        if (strncmp(frame, "id: ", 4) == 0) {
            long n = atol(frame + 4);
            cr_assert_gt(n, last_id, "job %s: event ids must increase (%ld after %ld)", id, n,
                         last_id);
            last_id = n;
        } else if (strcmp(frame, "event: completed") == 0) {
            completed++;
        } else if (strcmp(frame, "event: node.finished") == 0) {
            char *data = strtok_r(NULL, "\n", &save);
            cr_assert(data && strncmp(data, "data: ", 6) == 0);
            json_t *d = json_loads(data + 6, 0, NULL);
            cr_assert_not_null(d, "%s", data);
            cr_assert_str_eq(json_string_value(json_object_get(d, "status")), "succeeded",
                             "job %s: %s", id, data);
            const char *node = json_string_value(json_object_get(d, "node"));
            for (size_t i = 0; i < NNODES; i++)
                finished[i] += strcmp(node, NODES[i]) == 0;
            json_decref(d);
        }
    }
    cr_assert_eq(completed, 1, "job %s: %d completed events", id, completed);
    for (size_t i = 0; i < NNODES; i++)
        cr_assert_eq(finished[i], 1, "job %s: node %s finished %d times", id, NODES[i],
                     finished[i]);
    fx_resp_free(&ev);
}

Test(jobs_crash, sigkill_with_20_jobs_running_then_restart, .timeout = 600)
{
    json_t *s = fx_register("kit");
    char wid[64];
    fx_save_workflow(s, DOC, wid);
    char *ids[NJOBS];
    for (int i = 0; i < NJOBS; i++) {
        char job[64];
        fx_start_run(s, wid, "{\"max_credits\": 100}", job);
        ids[i] = strdup(job);
    }
    /* Kill once every job is admitted (under a cap of 20) and rendering is
     * under way, while most are still running. */
    int queued = NJOBS, running = 0, done = 0;
    for (int i = 0; i < 300 && queued > 0; i++) {
        usleep(50000);
        queued = count_status(s, "queued");
    }
    cr_assert_eq(queued, 0, "all 20 should be admitted under a cap of 20");
    usleep(1000000);
    running = count_status(s, "running");
    done = count_status(s, "succeeded");
    cr_assert_gt(running, NJOBS / 2, "most jobs must still be running at the kill (%d of %d)",
                 running, NJOBS);
    fprintf(stderr, "jobs_crash: killed with %d running, %d succeeded\n", running, done);
    cr_assert(fx_api_kill_and_restart(), "fenta serve came back after SIGKILL");

    /* Sessions are in PostgreSQL: the same token works on the new process. */
    for (int i = 0; i < 2400 && done < NJOBS; i++) {
        usleep(100000);
        done = count_status(s, "succeeded");
        cr_assert_eq(count_status(s, "failed"), 0);
    }
    cr_assert_eq(done, NJOBS, "every job succeeds after the restart");
    cr_assert_eq(count_status(s, "running"), 0);
    cr_assert_eq(count_status(s, "queued"), 0);

    for (int i = 0; i < NJOBS; i++) {
        char jp[128];
        snprintf(jp, sizeof jp, "/v1/jobs/%s", ids[i]);
        fx_resp_t r = fx_call("GET", jp, NULL, s);
        cr_assert_eq(r.status, 200, "%s", r.body);
        json_t *arts = json_object_get(r.json, "artifacts");
        cr_assert_geq(json_array_size(arts), 3, "%s", r.body);
        for (size_t a = 0; a < json_array_size(arts); a++)
            for (size_t b = a + 1; b < json_array_size(arts); b++)
                cr_assert_str_neq(
                    json_string_value(json_object_get(json_array_get(arts, a), "name")),
                    json_string_value(json_object_get(json_array_get(arts, b), "name")),
                    "job %s lists an artifact twice", ids[i]);
        cr_assert_float_eq(json_number_value(json_object_get(r.json, "progress")), 100, 0.01);
        fx_resp_free(&r);
        check_events_once(s, ids[i]);
        free(ids[i]);
    }
    json_decref(s);
}
