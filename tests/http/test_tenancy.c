/* test_tenancy.c - an organisation names only its own objects, through the
 * real `fenta serve`: another organisation's upload (or job output) named
 * in a render spec, a template, a workflow's input.asset or montage params
 * is answered exactly like a key that does not exist, and nothing of it
 * reaches the job's output; server paths ("path" sources) and keys that
 * climb out of their folder are refused at the door on every route that
 * takes a spec (renders, templates, workflows, runs, schedules). */
#include "tests/support/api_fixture.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

FX_API_SERVER(NULL)

/* One timeout for the suite (Criterion 2.4 leaks with per-test ones). */
TestSuite(tenancy, .timeout = 240);

static void healthy(void)
{
    fx_resp_t r = fx_req("GET", "/healthz", NULL, NULL);
    cr_assert_eq(r.status, 200, "the server did not survive: %s", r.body ? r.body : "");
    fx_resp_free(&r);
}

/* A 3 s clip of one solid colour at objects/<key>. */
static void clip(const char *key, const char *colour)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "f='%s/objects/%s'; mkdir -p \"$(dirname \"$f\")\" && ffmpeg -v error -y -f lavfi "
             "-i color=c=%s:s=640x360:d=3 -pix_fmt yuv420p \"$f\"",
             fx_api_data_dir(), key, colour);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
}

/* The error of a job once it has failed (the caller's), or NULL when it
 * succeeded; *video_out is then the path of its video (or ""). */
static json_t *job_outcome(const json_t *who, const char *id, char *video, size_t cap)
{
    json_t *job = fx_wait_job(who, id, "succeeded failed cancelled", 200);
    video[0] = 0;
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(job, "artifacts"), i, a)
    {
        const char *name = json_string_value(json_object_get(a, "name"));
        if (name && strcmp(name, "video.mp4") == 0)
            snprintf(video, cap, "%s/objects/%s", fx_api_data_dir(),
                     json_string_value(json_object_get(a, "key")));
    }
    json_t *err = json_incref(json_object_get(job, "error"));
    json_decref(job);
    if (json_is_null(err)) {
        json_decref(err);
        return NULL;
    }
    return err;
}

/* How many of a video's sampled frames (2 a second, 8x8) are mostly pure
 * red: none of a clip the caller may not read may show. */
static int red_frames(const char *video)
{
    char cmd[4200];
    snprintf(cmd, sizeof cmd,
             "ffmpeg -v error -i '%s' -vf fps=2,scale=8:8 -f rawvideo -pix_fmt rgb24 -", video);
    FILE *p = popen(cmd, "r");
    cr_assert(p);
    unsigned char px[64 * 3];
    int red = 0;
    while (fread(px, 1, sizeof px, p) == sizeof px) {
        int n = 0;
        for (int i = 0; i < 64; i++)
            n += px[3 * i] > 180 && px[3 * i + 1] < 70 && px[3 * i + 2] < 70;
        red += n > 32;
    }
    pclose(p);
    return red;
}

/* s with every occurrence of what replaced by "KEY" (the caller frees). */
static char *masked(const char *s, const char *what)
{
    char *out = calloc(1, strlen(s) * 2 + 16);
    const char *at;
    char *o = out;
    while ((at = strstr(s, what))) {
        memcpy(o, s, (size_t)(at - s));
        o += at - s;
        o = stpcpy(o, "KEY");
        s = at + strlen(what);
    }
    strcpy(o, s);
    return out;
}

/* A direct render of who's naming key as its one clip; the whole answer. */
static fx_resp_t render_with(const json_t *who, const char *key, const char *template_extra)
{
    char body[2048];
    snprintf(body, sizeof body,
             "{\"spec\":{\"script\":\"A short test of who may read what.\",\"profile\":\"720p\","
             "\"media\":[{\"source\":{\"key\":\"%s\"}}]%s}}",
             key, template_extra ? template_extra : "");
    return fx_call("POST", "/v1/renders", body, who);
}

/* What who is told about a render naming key: the answer's status and code
 * and, when a job was made, how it ended; all with key masked. *video
 * names the job's video when it made one. */
typedef struct {
    long status;
    char *answer;  /* the 4xx error, masked; NULL on 202 */
    char *outcome; /* the job's error, masked; "succeeded" when it had none */
    char video[4096];
} told_t;

static told_t told(const json_t *who, fx_resp_t r, const char *key)
{
    told_t t = {.status = r.status};
    if (r.status != 202) {
        char *e = json_dumps(json_object_get(r.json, "error"), JSON_SORT_KEYS);
        t.answer = masked(e ? e : r.body, key);
        free(e);
        fx_resp_free(&r);
        return t;
    }
    char id[64];
    snprintf(id, sizeof id, "%s", json_string_value(json_object_get(r.json, "id")));
    fx_resp_free(&r);
    json_t *err = job_outcome(who, id, t.video, sizeof t.video);
    char *e = err ? json_dumps(err, JSON_SORT_KEYS) : strdup("succeeded");
    t.outcome = masked(e, key);
    free(e);
    json_decref(err);
    return t;
}

static void told_free(told_t *t)
{
    free(t->answer);
    free(t->outcome);
}

static void same(const told_t *a, const told_t *b)
{
    cr_assert_eq(a->status, b->status, "answered %ld for another's key, %ld for a missing one",
                 a->status, b->status);
    if (a->answer || b->answer)
        cr_assert_str_eq(a->answer ? a->answer : "", b->answer ? b->answer : "");
    if (a->outcome || b->outcome)
        cr_assert_str_eq(a->outcome ? a->outcome : "", b->outcome ? b->outcome : "");
}

Test(tenancy, another_orgs_upload_in_a_render_is_answered_like_a_missing_key)
{
    json_t *a = fx_register("ada"), *b = fx_register("bob");
    char akey[200], missing[200], bmissing[200];
    snprintf(akey, sizeof akey, "uploads/%s/private-clip.mp4", fx_org(a));
    snprintf(missing, sizeof missing, "uploads/%s/no-such-clip.mp4", fx_org(a));
    snprintf(bmissing, sizeof bmissing, "uploads/%s/no-such-clip.mp4", fx_org(b));
    clip(akey, "red");

    told_t foreign = told(b, render_with(b, akey, NULL), akey);
    told_t absent = told(b, render_with(b, missing, NULL), missing);
    told_t own_absent = told(b, render_with(b, bmissing, NULL), bmissing);
    if (foreign.video[0])
        cr_assert_eq(red_frames(foreign.video), 0, "B's video shows A's red clip");
    cr_assert_str_neq(foreign.outcome ? foreign.outcome : "", "succeeded",
                      "B's render of A's clip succeeded");
    same(&foreign, &absent);
    same(&foreign, &own_absent);
    told_free(&foreign);
    told_free(&absent);
    told_free(&own_absent);

    /* The same through an inline template's logo and music. */
    char tpl[600], bkey[200];
    snprintf(bkey, sizeof bkey, "uploads/%s/mine.mp4", fx_org(b));
    clip(bkey, "blue");
    snprintf(tpl, sizeof tpl,
             ",\"template\":{\"overlays\":{\"logo\":{\"source\":{\"key\":\"%s\"},\"position\":"
             "\"top-right\",\"opacity\":1,\"width\":200}}}",
             akey);
    told_t logo = told(b, render_with(b, bkey, tpl), akey);
    snprintf(tpl, sizeof tpl,
             ",\"template\":{\"overlays\":{\"logo\":{\"source\":{\"key\":\"%s\"},\"position\":"
             "\"top-right\",\"opacity\":1,\"width\":200}}}",
             missing);
    told_t logo_absent = told(b, render_with(b, bkey, tpl), missing);
    same(&logo, &logo_absent);
    told_free(&logo);
    told_free(&logo_absent);
    healthy();
    json_decref(a);
    json_decref(b);
}

/* Waits for the render answered by r to succeed; how many of its sampled
 * frames are red. Its job id into id[64]. */
static int renders(const json_t *who, fx_resp_t r, char *id)
{
    cr_assert_eq(r.status, 202, "%s", r.body);
    char video[4096];
    snprintf(id, 64, "%s", json_string_value(json_object_get(r.json, "id")));
    fx_resp_free(&r);
    json_t *err = job_outcome(who, id, video, sizeof video);
    char *e = err ? json_dumps(err, 0) : NULL;
    cr_assert_null(err, "the render failed: %s", e);
    cr_assert(video[0], "the render made no video");
    return red_frames(video);
}

Test(tenancy, an_org_reads_its_own_uploads_and_job_outputs)
{
    json_t *a = fx_register("ann"), *b = fx_register("ben");
    char akey[200], bkey[200];
    snprintf(akey, sizeof akey, "uploads/%s/own-clip.mp4", fx_org(a));
    snprintf(bkey, sizeof bkey, "uploads/%s/own-clip.mp4", fx_org(b));
    clip(akey, "red");
    clip(bkey, "blue");
    char job[64], out[300], gone[300];
    cr_assert_eq(renders(b, render_with(b, bkey, NULL), job), 0);
    /* A's own clip shows in A's render (so the red test can see it). */
    cr_assert_gt(renders(a, render_with(a, akey, NULL), job), 0);

    /* A job's outputs are its organisation's: A names them, B cannot. */
    snprintf(out, sizeof out, "jobs/%s/render/video.mp4", job);
    snprintf(gone, sizeof gone, "jobs/%s/render/never-made.mp4", job);
    cr_assert_gt(renders(a, render_with(a, out, NULL), job), 0);
    told_t foreign = told(b, render_with(b, out, NULL), out);
    told_t absent = told(b, render_with(b, gone, NULL), gone);
    same(&foreign, &absent);
    cr_assert_str_neq(foreign.outcome ? foreign.outcome : "", "succeeded");
    told_free(&foreign);
    told_free(&absent);
    healthy();
    json_decref(a);
    json_decref(b);
}

/* The details[0].path of a 400 answer ("" when there is none). */
static const char *refused_at(const fx_resp_t *r)
{
    json_t *d = json_array_get(json_object_get(json_object_get(r->json, "error"), "details"), 0);
    const char *p = json_string_value(json_object_get(d, "path"));
    return p ? p : "";
}

static void refused(fx_resp_t r, const char *where)
{
    cr_assert_eq(r.status, 400, "%s", r.body);
    cr_assert_str_eq(refused_at(&r), where, "%s", r.body);
    fx_resp_free(&r);
}

static const char LOGO_PATH[] =
    "{\"overlays\":{\"logo\":{\"source\":{\"path\":\"/etc/hostname\"},\"position\":\"top-right\","
    "\"opacity\":1,\"width\":200}}}";

Test(tenancy, templates_with_server_paths_are_refused_naming_the_field)
{
    json_t *s = fx_register("tia");
    char body[1024];
    snprintf(body, sizeof body, "{\"name\":\"mine\",\"template\":%s}", LOGO_PATH);
    refused(fx_call("POST", "/v1/templates", body, s), "$.template.overlays.logo.source.path");
    fx_resp_t r = fx_call("POST", "/v1/templates", "{\"name\":\"mine\",\"template\":{}}", s);
    cr_assert_eq(r.status, 201, "%s", r.body);
    char path[128];
    snprintf(path, sizeof path, "/v1/templates/%s",
             json_string_value(json_object_get(r.json, "id")));
    fx_resp_free(&r);
    snprintf(body, sizeof body, "{\"template\":%s}", LOGO_PATH);
    refused(fx_call("PATCH", path, body, s), "$.template.overlays.logo.source.path");
    /* The render route names the field too. */
    snprintf(body, sizeof body,
             "{\"spec\":{\"script\":\"Paths are the server's.\",\"template\":%s}}", LOGO_PATH);
    refused(fx_call("POST", "/v1/renders", body, s), "$.spec.template.overlays.logo.source.path");
    refused(
        fx_call("POST", "/v1/renders",
                "{\"spec\":{\"script\":\"x\",\"media\":[{\"source\":{\"path\":\"/etc/passwd\"}}]}}",
                s),
        "$.spec.media[0].source.path");
    healthy();
    json_decref(s);
}

Test(tenancy, keys_that_leave_their_folder_are_refused)
{
    json_t *a = fx_register("kim"), *b = fx_register("kai");
    const char *bad[] = {"uploads/%s/../%s/private-clip.mp4",
                         "uploads/%s//%s.mp4",
                         "uploads/%s/./%s.mp4",
                         "uploads/%s/%s/",
                         "/uploads/%s/%s.mp4",
                         "uploads/%s/%s\\\\..\\\\x.mp4",
                         "uploads/%s/%s/.."};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char key[300], body[1024];
        snprintf(key, sizeof key, bad[i], fx_org(b), fx_org(a));
        snprintf(body, sizeof body,
                 "{\"spec\":{\"script\":\"x\",\"media\":[{\"source\":{\"key\":\"%s\"}}]}}", key);
        refused(fx_call("POST", "/v1/renders", body, b), "$.spec.media[0].source.key");
        snprintf(body, sizeof body,
                 "{\"name\":\"k\",\"graph\":{\"nodes\":[{\"id\":\"clip\",\"type\":\"input.asset\","
                 "\"params\":{\"keys\":[\"%s\"]}}]}}",
                 key);
        refused(fx_call("POST", "/v1/workflows", body, b), "$.graph.nodes[0].params.keys[0]");
    }
    /* A name that merely starts with two dots stays in its folder. */
    char key[300];
    snprintf(key, sizeof key, "uploads/%s/..%s.mp4", fx_org(b), fx_org(a));
    fx_resp_t r = render_with(b, key, NULL);
    cr_assert_eq(r.status, 202, "%s", r.body);
    fx_resp_free(&r);
    healthy();
    json_decref(a);
    json_decref(b);
}

/* Runs workflow wid of who's with inputs; how it ended, key masked. */
static told_t run_told(const json_t *who, const char *wid, const char *inputs, const char *key)
{
    char path[128], body[2048];
    snprintf(path, sizeof path, "/v1/workflows/%s/run", wid);
    snprintf(body, sizeof body, "{\"max_credits\":1000,\"inputs\":%s}", inputs);
    return told(who, fx_call("POST", path, body, who), key);
}

/* A voice over a montage whose template is given by the run's inputs. */
static const char MONTAGE_DOC[] =
    "{\"name\":\"m\",\"graph\":{\"nodes\":[{\"id\":\"t\",\"type\":\"input.text\",\"params\":"
    "{\"text\":\"Whose logo is this?\"}},{\"id\":\"voice\",\"type\":\"tts\"},{\"id\":\"edit\","
    "\"type\":\"montage\",\"params\":{\"profile\":\"720p\",\"duration_s\":5}}],\"edges\":[{"
    "\"from\":\"t.text\",\"to\":\"voice.text\"},{\"from\":\"voice.audio\",\"to\":\"edit.audio\"},"
    "{\"from\":\"voice.words\",\"to\":\"edit.words\"}]}}";

Test(tenancy, workflows_name_another_orgs_keys_like_missing_ones)
{
    json_t *a = fx_register("amy"), *b = fx_register("bea");
    char akey[200], missing[200], inputs[1024], wid[64];
    snprintf(akey, sizeof akey, "uploads/%s/private-clip.mp4", fx_org(a));
    snprintf(missing, sizeof missing, "uploads/%s/no-such-clip.mp4", fx_org(a));
    clip(akey, "red");

    /* input.asset */
    fx_save_workflow(
        b,
        "{\"name\":\"a\",\"graph\":{\"nodes\":[{\"id\":\"clip\",\"type\":\"input.asset\","
        "\"params\":{\"keys\":[\"uploads/x/y.mp4\"]}}]}}",
        wid);
    snprintf(inputs, sizeof inputs, "{\"clip\":{\"keys\":[\"%s\"]}}", akey);
    told_t foreign = run_told(b, wid, inputs, akey);
    snprintf(inputs, sizeof inputs, "{\"clip\":{\"keys\":[\"%s\"]}}", missing);
    told_t absent = run_told(b, wid, inputs, missing);
    cr_assert_str_neq(foreign.outcome ? foreign.outcome : "", "succeeded",
                      "B's input.asset read A's upload");
    same(&foreign, &absent);
    told_free(&foreign);
    told_free(&absent);

    /* montage params: a template object, and an org template by name */
    fx_save_workflow(b, MONTAGE_DOC, wid);
    snprintf(inputs, sizeof inputs,
             "{\"edit\":{\"template\":{\"overlays\":{\"logo\":{\"source\":{\"key\":\"%s\"},"
             "\"position\":\"top-right\",\"opacity\":1,\"width\":200}}}}}",
             akey);
    foreign = run_told(b, wid, inputs, akey);
    snprintf(inputs, sizeof inputs,
             "{\"edit\":{\"template\":{\"overlays\":{\"logo\":{\"source\":{\"key\":\"%s\"},"
             "\"position\":\"top-right\",\"opacity\":1,\"width\":200}}}}}",
             missing);
    absent = run_told(b, wid, inputs, missing);
    if (foreign.video[0])
        cr_assert_eq(red_frames(foreign.video), 0, "B's video shows A's red clip");
    cr_assert_str_neq(foreign.outcome ? foreign.outcome : "", "succeeded");
    same(&foreign, &absent);
    told_free(&foreign);
    told_free(&absent);

    char body[1024];
    snprintf(body, sizeof body,
             "{\"name\":\"stolen\",\"template\":{\"overlays\":{\"logo\":{\"source\":{\"key\":"
             "\"%s\"},\"position\":\"top-right\",\"opacity\":1,\"width\":200}}}}",
             akey);
    fx_resp_t r = fx_call("POST", "/v1/templates", body, b);
    cr_assert_eq(r.status, 201, "%s", r.body);
    fx_resp_free(&r);
    snprintf(body, sizeof body,
             "{\"name\":\"lost\",\"template\":{\"overlays\":{\"logo\":{\"source\":{\"key\":"
             "\"%s\"},\"position\":\"top-right\",\"opacity\":1,\"width\":200}}}}",
             missing);
    fx_expect("POST", "/v1/templates", body, b, 201);
    foreign = run_told(b, wid, "{\"edit\":{\"template\":\"stolen\"}}", akey);
    absent = run_told(b, wid, "{\"edit\":{\"template\":\"lost\"}}", missing);
    cr_assert_str_neq(foreign.outcome ? foreign.outcome : "", "succeeded");
    same(&foreign, &absent);
    told_free(&foreign);
    told_free(&absent);
    healthy();
    json_decref(a);
    json_decref(b);
}

Test(tenancy, workflows_runs_and_schedules_refuse_server_paths)
{
    json_t *s = fx_register("pat");
    char body[2048], wid[64], path[160];
    /* A graph holding a path: POST and PATCH. */
    snprintf(body, sizeof body,
             "{\"name\":\"p\",\"graph\":{\"nodes\":[{\"id\":\"edit\",\"type\":\"montage\","
             "\"params\":{\"template\":%s}}]}}",
             LOGO_PATH);
    refused(fx_call("POST", "/v1/workflows", body, s),
            "$.graph.nodes[0].params.template.overlays.logo.source.path");
    fx_save_workflow(s, MONTAGE_DOC, wid);
    snprintf(path, sizeof path, "/v1/workflows/%s", wid);
    snprintf(body, sizeof body,
             "{\"graph\":{\"nodes\":[{\"id\":\"edit\",\"type\":\"montage\",\"params\":{"
             "\"template\":%s}}]}}",
             LOGO_PATH);
    refused(fx_call("PATCH", path, body, s),
            "$.graph.nodes[0].params.template.overlays.logo.source.path");
    /* Run inputs. */
    snprintf(path, sizeof path, "/v1/workflows/%s/run", wid);
    snprintf(body, sizeof body, "{\"max_credits\":100,\"inputs\":{\"edit\":{\"template\":%s}}}",
             LOGO_PATH);
    refused(fx_call("POST", path, body, s), "$.inputs.edit.template.overlays.logo.source.path");
    /* Schedule inputs: create and update. */
    snprintf(body, sizeof body,
             "{\"workflow_id\":\"%s\",\"cron\":\"@hourly\",\"inputs\":{\"edit\":{\"template\":%s}}"
             "}",
             wid, LOGO_PATH);
    refused(fx_call("POST", "/v1/schedules", body, s),
            "$.inputs.edit.template.overlays.logo.source.path");
    snprintf(body, sizeof body, "{\"workflow_id\":\"%s\",\"cron\":\"@hourly\"}", wid);
    fx_resp_t r = fx_call("POST", "/v1/schedules", body, s);
    cr_assert_eq(r.status, 201, "%s", r.body);
    snprintf(path, sizeof path, "/v1/schedules/%s",
             json_string_value(json_object_get(r.json, "id")));
    fx_resp_free(&r);
    snprintf(body, sizeof body, "{\"inputs\":{\"edit\":{\"template\":%s}}}", LOGO_PATH);
    refused(fx_call("PATCH", path, body, s), "$.inputs.edit.template.overlays.logo.source.path");
    healthy();
    json_decref(s);
}
