/* test_artifact_urls.c - the presigned URLs of a job's artifacts through the
 * real `fenta serve`: an hour by default, shortened with ?expires_in (and
 * refused after it), bounded by the platform's lifetime (400 naming the
 * parameter), and bound to the asking address with ?bind_ip=true (another
 * source address, a changed or dropped ip parameter: 403, the answer a
 * forged URL gets). Requests from 127.0.0.2 leave through CURLOPT_INTERFACE
 * (all of 127.0.0.0/8 is loopback on Linux). */
#include "tests/support/api_fixture.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

FX_API_SERVER("{\"insecure_cookies\": true, \"cheap_passwords_for_tests\": true, "
              "\"rate_limits\": {\"ip\": {\"rate\": 10000, \"burst\": 20000}, \"user\": "
              "{\"rate\": 10000, \"burst\": 20000}}}")

/* GET path (an object URL) from source (NULL: 127.0.0.1). */
static fx_resp_t fetch_from(const char *path, const char *source)
{
    return fx_req("GET", path, NULL, &(fx_opts_t){.http2 = true, .source_ip = source});
}

/* A short 720p render (script, voice, captions, montage, export, deliver),
 * run to success; returns the job id (the caller's). */
static char *rendered_job(const json_t *who)
{
    const char *doc =
        "{\"name\":\"urls\",\"graph\":{\"nodes\":["
        "{\"id\":\"script\",\"type\":\"script.generate\",\"params\":{\"topic\":\"why the sky "
        "is blue\",\"duration_s\":5}},"
        "{\"id\":\"voice\",\"type\":\"tts\"},"
        "{\"id\":\"subs\",\"type\":\"captions\"},"
        "{\"id\":\"edit\",\"type\":\"montage\",\"params\":{\"template\":\"clean\","
        "\"profile\":\"720p\",\"duration_s\":5}},"
        "{\"id\":\"out\",\"type\":\"export\",\"params\":{\"preset\":\"ultrafast\"}},"
        "{\"id\":\"send\",\"type\":\"deliver\"}],\"edges\":["
        "{\"from\":\"script.text\",\"to\":\"voice.text\"}," FX_RENDER_CHAIN_EDGES "]}}";
    char id[64];
    json_t *job = fx_run_workflow(who, doc, "{\"max_credits\":1000}", id, 150);
    cr_assert_str_eq(json_string_value(json_object_get(job, "status")), "succeeded");
    json_decref(job);
    return strdup(id);
}

/* The URL of the artifact named name in a job document (borrowed). */
static const char *artifact_url(const json_t *job, const char *name)
{
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(job, "artifacts"), i, a)
    {
        const char *n = json_string_value(json_object_get(a, "name"));
        if (n && strcmp(n, name) == 0)
            return json_string_value(json_object_get(a, "url"));
    }
    cr_assert_fail("no artifact %s", name);
    return NULL;
}

/* The expires= of a presigned URL. */
static long long url_expires(const char *url)
{
    const char *e = strstr(url, "?expires=");
    cr_assert_not_null(e, "%s", url);
    return atoll(e + 9);
}

/* GET /v1/jobs/{id}<query> as who; the document (the caller's). */
static json_t *job_with(const json_t *who, const char *id, const char *query, long want_status)
{
    char path[256];
    snprintf(path, sizeof path, "/v1/jobs/%s%s", id, query);
    fx_resp_t r = fx_call("GET", path, NULL, who);
    cr_assert_eq(r.status, want_status, "%s: %s", path, r.body);
    json_t *doc = json_incref(r.json);
    fx_resp_free(&r);
    return doc;
}

static void assert_forbidden_like_a_forgery(const fx_resp_t *r, const char *forged_body,
                                            const char *what)
{
    cr_assert_eq(r->status, 403, "%s: %ld %s", what, r->status, r->body);
    cr_assert_str_eq(r->body, forged_body, "%s answers as a forged URL does", what);
}

Test(artifact_urls, expiry_default_short_and_ip_bound_through_the_server, .timeout = 240)
{
    json_t *s = fx_register("urla");
    char *id = rendered_job(s);

    /* The platform default: an hour from now (not a day). */
    long long now = (long long)time(NULL);
    json_t *job = job_with(s, id, "", 200);
    const char *url = artifact_url(job, "captions.srt");
    cr_assert_null(strstr(url, "ip="), "%s", url);
    long long exp = url_expires(url);
    cr_assert(exp >= now + 3600 - 5 && exp <= now + 3600 + 5, "expires %lld, now %lld", exp, now);
    fx_resp_t r = fetch_from(url, NULL);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_gt(r.body_len, 0);
    fx_resp_free(&r);
    /* an unbound URL works from any address */
    r = fetch_from(url, "127.0.0.2");
    cr_assert_eq(r.status, 200, "%s", r.body);
    fx_resp_free(&r);
    /* what a forged URL gets: the body every refusal below must match */
    char forged[2048];
    snprintf(forged, sizeof forged, "%s", url);
    char *sig = strstr(forged, "sig=") + 4;
    sig[0] = sig[0] == 'A' ? 'B' : 'A';
    r = fetch_from(forged, NULL);
    cr_assert_eq(r.status, 403, "%s", r.body);
    char *forged_body = strdup(r.body);
    cr_assert(strstr(forged_body, "\"forbidden\""), "%s", forged_body);
    fx_resp_free(&r);
    json_decref(job);

    /* The list hands out the same kind of URLs, shortened on request. */
    now = (long long)time(NULL);
    fx_resp_t l = fx_call("GET", "/v1/jobs?expires_in=300", NULL, s);
    cr_assert_eq(l.status, 200, "%s", l.body);
    exp =
        url_expires(artifact_url(json_array_get(json_object_get(l.json, "data"), 0), "video.mp4"));
    cr_assert(exp >= now + 300 - 5 && exp <= now + 300 + 5, "expires %lld, now %lld", exp, now);
    fx_resp_free(&l);

    /* expires_in=2: works at once, refused once it has passed. */
    now = (long long)time(NULL);
    job = job_with(s, id, "?expires_in=2", 200);
    url = artifact_url(job, "captions.srt");
    exp = url_expires(url);
    cr_assert(exp >= now + 2 && exp <= now + 4, "expires %lld, now %lld", exp, now);
    r = fetch_from(url, NULL);
    cr_assert_eq(r.status, 200, "%s", r.body);
    fx_resp_free(&r);
    while ((long long)time(NULL) <= exp)
        usleep(100000);
    r = fetch_from(url, NULL);
    cr_assert_eq(r.status, 403, "%s", r.body);
    cr_assert(strstr(r.body, "expired"), "%s", r.body);
    fx_resp_free(&r);
    json_decref(job);

    /* bind_ip=true: the asking address (127.0.0.1) only. */
    job = job_with(s, id, "?bind_ip=true&expires_in=600", 200);
    url = artifact_url(job, "video.mp4");
    cr_assert(strstr(url, "&ip=127.0.0.1&"), "%s", url);
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(job, "artifacts"), i, a)
        cr_assert_str_eq(json_string_value(json_object_get(a, "ip")), "127.0.0.1");
    r = fetch_from(url, NULL);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_gt(r.body_len, 1000);
    fx_resp_free(&r);
    r = fetch_from(url, "127.0.0.2");
    assert_forbidden_like_a_forgery(&r, forged_body, "another source address");
    fx_resp_free(&r);
    /* the ip parameter changed to the other address, asked from there */
    char bad[2048];
    snprintf(bad, sizeof bad, "%s", url);
    char *ip = strstr(bad, "ip=127.0.0.1");
    ip[11] = '2';
    r = fetch_from(bad, "127.0.0.2");
    assert_forbidden_like_a_forgery(&r, forged_body, "a tampered ip parameter");
    fx_resp_free(&r);
    /* or dropped, to make it an unbound URL */
    snprintf(bad, sizeof bad, "%s", url);
    ip = strstr(bad, "&ip=");
    memmove(ip, strstr(ip + 1, "&"), strlen(strstr(ip + 1, "&")) + 1);
    cr_assert_null(strstr(bad, "ip="), "%s", bad);
    r = fetch_from(bad, "127.0.0.2");
    assert_forbidden_like_a_forgery(&r, forged_body, "a dropped ip parameter");
    fx_resp_free(&r);
    r = fetch_from(bad, NULL);
    assert_forbidden_like_a_forgery(&r, forged_body, "a dropped ip parameter, right address");
    fx_resp_free(&r);
    json_decref(job);

    /* Asked from 127.0.0.2, the URLs are bound to 127.0.0.2. */
    char path[256];
    snprintf(path, sizeof path, "/v1/jobs/%s?bind_ip=true", id);
    fx_resp_t j =
        fx_req("GET", path, NULL,
               &(fx_opts_t){.bearer = fx_token(s), .http2 = true, .source_ip = "127.0.0.2"});
    cr_assert_eq(j.status, 200, "%s", j.body);
    url = artifact_url(j.json, "captions.srt");
    cr_assert(strstr(url, "&ip=127.0.0.2&"), "%s", url);
    r = fetch_from(url, "127.0.0.2");
    cr_assert_eq(r.status, 200, "%s", r.body);
    fx_resp_free(&r);
    r = fetch_from(url, NULL);
    assert_forbidden_like_a_forgery(&r, forged_body, "127.0.0.1 for a URL bound to 127.0.0.2");
    fx_resp_free(&r);
    fx_resp_free(&j);

    free(forged_body);
    free(id);
    json_decref(s);
}

Test(artifact_urls, expires_in_past_the_platform_lifetime_and_bad_values_are_400)
{
    json_t *s = fx_register("urlb");
    /* The parameters are checked before the job is looked up: any id. */
    const char *id = "0b6a3f1e-5d4c-4b3a-9f8e-7d6c5b4a3f2e";
    const char *bad[] = {"3601", "0", "-5", "abc", "", "1.5", "60s", "99999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char q[64];
        snprintf(q, sizeof q, "?expires_in=%s", bad[i]);
        json_t *e = job_with(s, id, q, 400);
        json_t *err = json_object_get(e, "error");
        cr_assert_str_eq(json_string_value(json_object_get(err, "code")), "invalid_expires_in",
                         "%s", q);
        cr_assert(strstr(json_string_value(json_object_get(err, "message")), "expires_in"), "%s",
                  q);
        cr_assert(strstr(json_string_value(json_object_get(err, "message")), "3600"), "%s", q);
        cr_assert_str_eq(json_string_value(json_object_get(
                             json_array_get(json_object_get(err, "details"), 0), "path")),
                         "$query.expires_in");
        json_decref(e);
    }
    json_t *e = job_with(s, id, "?bind_ip=yes", 400);
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(e, "error"), "code")),
                     "invalid_bind_ip");
    json_decref(e);
    /* the list checks them too */
    fx_resp_t l = fx_call("GET", "/v1/jobs?expires_in=7200", NULL, s);
    cr_assert_eq(l.status, 400, "%s", l.body);
    fx_resp_free(&l);
    /* the bounds themselves are fine: the job is then simply not there */
    json_decref(job_with(s, id, "?expires_in=3600&bind_ip=false", 404));
    json_decref(job_with(s, id, "?expires_in=1&bind_ip=true", 404));
    json_decref(s);
}
