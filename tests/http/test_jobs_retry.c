/* test_jobs_retry.c - a render stage failing on a provider outage, then
 * POST /v1/jobs/{id}/retry once the provider is back: the job resumes at
 * the failed stage (the speech), the stages before it and the nodes outside
 * the render are not run again, and the short is delivered. The server
 * speaks to Kokoro at a port where nothing listens until the test starts a
 * fake Kokoro there. Its own binary, because the server's TTS provider is
 * set when it starts. */
#include "tests/support/api_fixture.h"
#include "tests/support/fake_kokoro.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* A free port now, for KOKORO_URL: nothing listens there until the test
 * says so. Taken below the kernel's ephemeral range, which port-0 binds and
 * outbound connections draw from: a port from that range, released, was
 * taken by another suite running alongside before the fake Kokoro could
 * bind it again ("Address already in use"). */
static int free_port(void)
{
    int lo = 32768, hi = 60999;
    FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
    if (f) {
        if (fscanf(f, "%d %d", &lo, &hi) != 2)
            lo = 32768;
        fclose(f);
    }
    if (lo <= 10001)
        abort(); /* no room below the range: a machine set up unlike any we run on */
    srand((unsigned)getpid());
    for (int tries = 0; tries < 1000; tries++) {
        int port = 10000 + rand() % (lo - 10000);
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
                                .sin_port = htons((uint16_t)port)};
        if (fd < 0)
            abort();
        bool ok = bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
        close(fd);
        if (ok)
            return port;
    }
    abort();
}

ReportHook(PRE_ALL)(struct criterion_test_set *set)
{
    (void)set;
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", free_port());
    setenv("KOKORO_URL", url, 1); /* the server and the test workers inherit it */
    fx_api_start(NULL);
}

static const json_t *jnode(const json_t *job, const char *id)
{
    return json_object_get(json_object_get(job, "nodes"), id);
}

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

Test(jobs_retry, a_stage_failing_on_an_outage_resumes_there_on_retry, .timeout = 240)
{
    json_t *s = fx_register("ria");
    const char *doc =
        "{\"name\":\"retry\",\"graph\":{\"nodes\":["
        "{\"id\":\"script\",\"type\":\"script.generate\",\"params\":{\"topic\":\"tides\","
        "\"duration_s\":5}},"
        "{\"id\":\"voice\",\"type\":\"tts\"},"
        "{\"id\":\"edit\",\"type\":\"montage\",\"params\":{\"profile\":\"720p\",\"duration_s\":5,"
        "\"music\":\"none\"}},"
        "{\"id\":\"out\",\"type\":\"export\",\"params\":{\"preset\":\"ultrafast\"}}],\"edges\":["
        "{\"from\":\"script.text\",\"to\":\"voice.text\"},"
        "{\"from\":\"voice.audio\",\"to\":\"edit.audio\"},"
        "{\"from\":\"voice.words\",\"to\":\"edit.words\"},"
        "{\"from\":\"edit.timeline\",\"to\":\"out.timeline\"}]}}";
    char wid[64], id[64], path[160];
    fx_save_workflow(s, doc, wid);
    fx_start_run(s, wid, "{\"max_credits\": 50}", id);

    /* Kokoro is down: the speech stage is retried with backoff, then the job
     * fails, saying where and why, and keeps what it had done. */
    json_t *job = fx_wait_job(s, id, "failed succeeded", 120);
    cr_assert_str_eq(json_string_value(json_object_get(job, "status")), "failed");
    const json_t *err = json_object_get(job, "error");
    cr_assert_str_eq(json_string_value(json_object_get(err, "node")), "voice", "%s",
                     json_dumps(job, 0));
    cr_assert_str_eq(json_string_value(json_object_get(err, "stage")), "tts");
    cr_assert(strstr(json_string_value(json_object_get(err, "message")), "Kokoro"), "%s",
              json_string_value(json_object_get(err, "message")));
    cr_assert_str_eq(json_string_value(json_object_get(jnode(job, "script"), "status")),
                     "succeeded");
    cr_assert_eq(json_array_size(json_object_get(job, "artifacts")), 0);
    json_decref(job);

    /* Kokoro is back; retry. */
    int port = atoi(strrchr(getenv("KOKORO_URL"), ':') + 1);
    fake_kokoro_t *fk = fake_kokoro_start(&(fake_kokoro_opts_t){.port = port});
    snprintf(path, sizeof path, "/v1/jobs/%s/retry", id);
    fx_expect("POST", path, NULL, s, 202);
    job = fx_wait_job(s, id, "failed succeeded", 120);
    cr_assert_str_eq(json_string_value(json_object_get(job, "status")), "succeeded", "%s",
                     json_dumps(json_object_get(job, "error"), 0));
    cr_assert_gt(fake_kokoro_requests(fk), 0, "the speech came from Kokoro");
    cr_assert_eq(json_integer_value(json_object_get(job, "attempts")), 2);
    /* The script node ran once; the render resumed at the speech. */
    cr_assert_eq(json_integer_value(json_object_get(jnode(job, "script"), "attempt")), 1);
    cr_assert_geq(json_array_size(json_object_get(job, "artifacts")), 3);
    json_decref(job);

    snprintf(path, sizeof path, "/v1/jobs/%s/events", id);
    fx_resp_t ev = fx_call("GET", path, NULL, s);
    cr_assert_eq(ev.status, 200);
    /* Before the failure the render ran ingest and script once each and
     * tried the speech until it gave up; after the retry it ran the speech
     * and what follows only. */
    const char *ingest = "event: stage.started\ndata: {\"node\":\"edit\",\"stage\":\"ingest\"";
    const char *script = "event: stage.started\ndata: {\"node\":\"voice\",\"stage\":\"script\"";
    const char *tts = "event: stage.started\ndata: {\"node\":\"voice\",\"stage\":\"tts\"";
    char *after = strstr(ev.body, "\"status\":\"failed\"");
    cr_assert(after, "%s", ev.body);
    *after++ = '\0';
    cr_assert_eq(count(ev.body, ingest), 1, "%s", ev.body);
    cr_assert_eq(count(ev.body, script), 1);
    cr_assert_geq(count(ev.body, tts), 2, "the speech was tried more than once");
    cr_assert_eq(count(after, ingest), 0, "ingest not run again:\n%s", after);
    cr_assert_eq(count(after, script), 0, "the script stage not run again:\n%s", after);
    cr_assert_eq(count(after, tts), 1, "the speech once more:\n%s", after);
    cr_assert_eq(count(after, "event: node.started\ndata: {\"node\":\"script\""), 0);
    cr_assert_eq(count(after, "event: completed"), 1);
    fx_resp_free(&ev);
    fake_kokoro_stop(&fk);
    json_decref(s);
}
