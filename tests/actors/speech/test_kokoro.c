/* test_kokoro.c - the Kokoro engine against a local fake of Kokoro-FastAPI
 * (tests/support/fake_kokoro.c): marks come from the server's timestamps
 * mapped back to byte offsets (through punctuation entries, spelt-out
 * numbers and split words), the request carries the documented fields, a
 * server without /dev/captioned_speech still gives timed words (estimated),
 * float and other-rate audio is converted, server errors, hangs and refused
 * connections give clear errors within the timeout, and no request is made
 * when no URL is configured. */
#include "actors/speech/kokoro.h"
#include "actors/speech/tts.h"
#include "runtime/error.h"
#include "tests/support/fake_kokoro.h"
#include "tests/support/fixtures.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char *dir, *wav;

static void setup(void)
{
    dir = fx_tmpdir("kokoro");
    cr_assert(asprintf(&wav, "%s/voice.wav", dir) > 0);
    unsetenv("KOKORO_API_KEY");
}

static void teardown(void)
{
    free(wav);
    fx_rmdir(dir);
}

TestSuite(kokoro, .init = setup, .fini = teardown);

static const char *word(const char *text, const tts_mark_t *m)
{
    static char buf[256];
    cr_assert_leq(m->offset + m->len, strlen(text));
    snprintf(buf, sizeof buf, "%.*s", (int)m->len, text + m->offset);
    return buf;
}

/* Start of the fake's burst for word i, and its end. */
static int64_t burst(size_t i)
{
    return FAKE_KOKORO_LEAD_MS + (int64_t)i * (FAKE_KOKORO_TONE_MS + FAKE_KOKORO_GAP_MS);
}

static void synth_ok(const tts_config_t *c, const char *text, tts_result_t *r)
{
    char err[512] = "";
    int rc = tts_synth(c, text, wav, r, err, sizeof err);
    cr_assert_eq(rc, 0, "tts_synth: %d %s", rc, err);
}

/* Marks name the words and sit exactly on the fake's bursts. */
static void expect_bursts(const char *text, const tts_result_t *r, const char *const *want,
                          size_t n, int64_t slack_ms)
{
    cr_assert_eq(r->nmarks, n, "%zu marks for '%s'", r->nmarks, text);
    for (size_t i = 0; i < n; i++) {
        cr_expect_str_eq(word(text, &r->marks[i]), want[i], "mark %zu", i);
        cr_expect_leq(llabs(r->marks[i].start_ms - burst(i)), slack_ms, "mark %zu starts %lld", i,
                      (long long)r->marks[i].start_ms);
        cr_expect_leq(llabs(r->marks[i].end_ms - (burst(i) + FAKE_KOKORO_TONE_MS)), slack_ms,
                      "mark %zu ends %lld", i, (long long)r->marks[i].end_ms);
        if (i + 1 < n)
            cr_expect_leq(r->marks[i].end_ms, r->marks[i + 1].start_ms);
    }
}

/* The WAV as a player sees it: "codec,rate" from ffprobe, plus the peak. */
static void expect_wav(int rate, int64_t duration_ms)
{
    char *cmd = NULL, line[128] = "", want[64];
    cr_assert(asprintf(&cmd,
                       "ffprobe -v error -show_entries stream=codec_name,sample_rate,channels "
                       "-of csv=p=0 '%s' 2>&1",
                       wav) > 0);
    FILE *p = popen(cmd, "r");
    if (!fgets(line, sizeof line, p))
        line[0] = '\0';
    pclose(p);
    free(cmd);
    line[strcspn(line, "\r\n")] = '\0';
    snprintf(want, sizeof want, "pcm_s16le,%d,1", rate);
    cr_expect_str_eq(line, want);
    FILE *f = fopen(wav, "rb");
    cr_assert_not_null(f);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 44, SEEK_SET);
    size_t n = (size_t)(size - 44) / 2;
    int16_t *s = malloc(n * sizeof *s);
    cr_assert_eq(fread(s, 2, n, f), n);
    fclose(f);
    int peak = 0;
    for (size_t i = 0; i < n; i++)
        peak = abs(s[i]) > peak ? abs(s[i]) : peak;
    cr_expect(peak > 15000 && peak < 17500, "the tone (half scale) survived decoding: %d", peak);
    cr_expect_eq((int64_t)(n * 1000 / (size_t)rate), duration_ms);
    free(s);
}

Test(kokoro, timestamps_become_marks_on_byte_offsets)
{
    fake_kokoro_t *fk = fake_kokoro_start(NULL);
    const char *text = "Hello world, this is Fenta.";
    const char *want[] = {"Hello", "world", "this", "is", "Fenta"};
    tts_result_t r;
    synth_ok(&(tts_config_t){.kokoro_url = fake_kokoro_url(fk)}, text, &r);
    expect_bursts(text, &r, want, 5, 1);
    cr_expect_str_eq(r.engine, "kokoro");
    cr_expect_not(r.estimated_timing);
    cr_expect_eq(r.sample_rate, 24000);
    cr_expect_eq(r.duration_ms, burst(5));
    expect_wav(24000, r.duration_ms);

    char *path = fake_kokoro_last_path(fk), *body = fake_kokoro_last_body(fk);
    cr_expect_str_eq(path, "/dev/captioned_speech");
    json_t *req = json_loads(body, 0, NULL);
    cr_assert_not_null(req, "%s", body);
    cr_expect_str_eq(json_string_value(json_object_get(req, "model")), "kokoro");
    cr_expect_str_eq(json_string_value(json_object_get(req, "input")), text);
    cr_expect_str_eq(json_string_value(json_object_get(req, "voice")), "af_heart");
    cr_expect_str_eq(json_string_value(json_object_get(req, "response_format")), "wav");
    cr_expect_float_eq(json_number_value(json_object_get(req, "speed")), 1.0, 1e-9);
    cr_expect(json_is_false(json_object_get(req, "stream")));
    cr_expect(json_is_true(json_object_get(req, "return_timestamps")));
    cr_expect_eq(fake_kokoro_requests(fk), 1);
    json_decref(req);
    free(path), free(body);
    tts_result_free(&r);
    fake_kokoro_stop(&fk);
    cr_expect_null(fk);
}

Test(kokoro, voice_speed_and_api_key_are_sent)
{
    fake_kokoro_t *fk = fake_kokoro_start(NULL);
    tts_result_t r;
    tts_config_t c = {.kokoro_url = fake_kokoro_url(fk), .kokoro_voice = "am_adam", .speed = 1.5};
    synth_ok(&c, "Quick test.", &r);
    tts_result_free(&r);
    char *auth = fake_kokoro_last_auth(fk), *body = fake_kokoro_last_body(fk);
    cr_expect_null(auth, "no key in the options, no Authorization header");
    json_t *req = json_loads(body, 0, NULL);
    cr_expect_str_eq(json_string_value(json_object_get(req, "voice")), "am_adam");
    cr_expect_float_eq(json_number_value(json_object_get(req, "speed")), 1.5, 1e-9);
    json_decref(req);
    free(body), free(auth);

    /* The key is an option (cli/ reads KOKORO_API_KEY): the engine itself
     * no longer looks at the environment. */
    setenv("KOKORO_API_KEY", "sk-from-the-environment", 1);
    synth_ok(&c, "Quick test.", &r);
    tts_result_free(&r);
    auth = fake_kokoro_last_auth(fk);
    cr_expect_null(auth, "the environment is not read: %s", auth ? auth : "");
    free(auth);

    c.kokoro_api_key = "sk-test-123";
    synth_ok(&c, "Quick test.", &r);
    tts_result_free(&r);
    auth = fake_kokoro_last_auth(fk);
    cr_expect_str_eq(auth, "Bearer sk-test-123");
    free(auth);
    fake_kokoro_stop(&fk);
}

Test(kokoro, spelt_out_numbers_and_split_words_keep_their_times)
{
    fake_kokoro_t *fk = fake_kokoro_start(&(fake_kokoro_opts_t){.spell_digits = true});
    tts_config_t c = {.kokoro_url = fake_kokoro_url(fk)};
    const char *t1 = "I have 3 apples";
    const char *w1[] = {"I", "have", "3", "apples"};
    const char *t2 = "A well-known fact, (quoted) here.";
    const char *w2[] = {"A", "well-known", "fact", "quoted", "here"};
    const char *t3 = "Room 7 is free";
    const char *w3[] = {"Room", "7", "is", "free"};
    tts_result_t r;
    synth_ok(&c, t1, &r); /* the server says "three" for "3" */
    expect_bursts(t1, &r, w1, 4, 1);
    tts_result_free(&r);
    synth_ok(&c, t2, &r); /* the server says "well" and "known" */
    expect_bursts(t2, &r, w2, 5, 1);
    tts_result_free(&r);
    synth_ok(&c, t3, &r);
    expect_bursts(t3, &r, w3, 4, 1);
    tts_result_free(&r);
    fake_kokoro_stop(&fk);
}

Test(kokoro, float_stereo_audio_at_another_rate_is_converted)
{
    fake_kokoro_t *fk =
        fake_kokoro_start(&(fake_kokoro_opts_t){.float_audio = true, .sample_rate = 48000});
    const char *text = "Float audio works";
    const char *want[] = {"Float", "audio", "works"};
    tts_result_t r;
    synth_ok(&(tts_config_t){.kokoro_url = fake_kokoro_url(fk)}, text, &r);
    expect_bursts(text, &r, want, 3, 1);
    cr_expect_eq(r.sample_rate, 48000);
    expect_wav(48000, r.duration_ms);
    tts_result_free(&r);
    fake_kokoro_stop(&fk);
}

Test(kokoro, server_without_captions_falls_back_to_estimated_timing)
{
    fake_kokoro_t *fk = fake_kokoro_start(&(fake_kokoro_opts_t){.mode = FAKE_KOKORO_NO_CAPTIONS});
    const char *text = "alpha bravo delta gamma";
    const char *want[] = {"alpha", "bravo", "delta", "gamma"};
    tts_result_t r;
    /* An OpenAI-style base URL is accepted too. */
    char *url = NULL;
    cr_assert(asprintf(&url, "%s/v1/", fake_kokoro_url(fk)) > 0);
    synth_ok(&(tts_config_t){.kokoro_url = url}, text, &r);
    cr_expect(r.estimated_timing);
    cr_expect_str_eq(r.engine, "kokoro");
    /* Equal-length words over equal bursts: the spread lands on them. */
    expect_bursts(text, &r, want, 4, 20);
    expect_wav(24000, r.duration_ms);
    cr_expect_eq(fake_kokoro_requests(fk), 2);
    char *path = fake_kokoro_last_path(fk), *body = fake_kokoro_last_body(fk);
    cr_expect_str_eq(path, "/v1/audio/speech");
    json_t *req = json_loads(body, 0, NULL);
    cr_expect_str_eq(json_string_value(json_object_get(req, "input")), text);
    cr_expect_str_eq(json_string_value(json_object_get(req, "response_format")), "wav");
    cr_expect_null(json_object_get(req, "return_timestamps"));
    json_decref(req);
    free(path), free(body), free(url);
    tts_result_free(&r);
    fake_kokoro_stop(&fk);
}

static void expect_fails(const tts_config_t *c, int code, const char *const *needles)
{
    tts_result_t r;
    char err[512] = "";
    int rc = tts_synth(c, "Hello world", wav, &r, err, sizeof err);
    cr_expect_eq(rc, code, "rc %d: %s", rc, err);
    for (; *needles; needles++)
        cr_expect(strstr(err, *needles) != NULL, "'%s' should mention '%s'", err, *needles);
    cr_expect_null(r.marks);
    cr_expect_neq(access(wav, F_OK), 0, "no WAV is written");
}

Test(kokoro, server_error_names_url_status_and_body)
{
    fake_kokoro_t *fk = fake_kokoro_start(&(fake_kokoro_opts_t){.mode = FAKE_KOKORO_FAIL});
    const char *needles[] = {fake_kokoro_url(fk), "HTTP 500", "model exploded", NULL};
    expect_fails(&(tts_config_t){.kokoro_url = fake_kokoro_url(fk)}, FENTA_EUNAVAILABLE, needles);
    fake_kokoro_stop(&fk);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

Test(kokoro, hanging_server_times_out_within_timeout_ms)
{
    fake_kokoro_t *fk = fake_kokoro_start(&(fake_kokoro_opts_t){.mode = FAKE_KOKORO_HANG});
    const char *needles[] = {fake_kokoro_url(fk), "500 ms", NULL};
    double t0 = now_ms();
    expect_fails(&(tts_config_t){.kokoro_url = fake_kokoro_url(fk), .timeout_ms = 500},
                 FENTA_ETIMEOUT, needles);
    double took = now_ms() - t0;
    cr_expect(took >= 450 && took < 3000, "gave up after %.0f ms for a 500 ms timeout", took);
    cr_expect_eq(fake_kokoro_requests(fk), 1);
    fake_kokoro_stop(&fk);
}

Test(kokoro, unreachable_server_is_unavailable)
{
    fake_kokoro_t *fk = fake_kokoro_start(NULL);
    char url[64];
    snprintf(url, sizeof url, "%s", fake_kokoro_url(fk));
    fake_kokoro_stop(&fk); /* nothing listens on the port any more */
    const char *needles[] = {url, NULL};
    expect_fails(&(tts_config_t){.kokoro_url = url}, FENTA_EUNAVAILABLE, needles);
}

Test(kokoro, bad_urls_are_refused_before_any_request)
{
    const char *n1[] = {"ftp://127.0.0.1/", NULL}, *n2[] = {"not a url", NULL};
    expect_fails(&(tts_config_t){.kokoro_url = "ftp://127.0.0.1/"}, FENTA_EINVAL, n1);
    expect_fails(&(tts_config_t){.kokoro_url = "not a url"}, FENTA_EINVAL, n2);
}

Test(kokoro, no_request_when_no_url_is_set)
{
    fake_kokoro_t *fk = fake_kokoro_start(NULL);
    tts_result_t r;
    synth_ok(&(tts_config_t){.kokoro_url = ""}, "Offline please", &r);
    cr_expect_str_eq(r.engine, "espeak-ng");
    tts_result_free(&r);
    synth_ok(&(tts_config_t){.kokoro_url = NULL, .kokoro_voice = "af_heart"}, "Offline", &r);
    cr_expect_str_eq(r.engine, "espeak-ng");
    tts_result_free(&r);
    cr_expect_eq(fake_kokoro_requests(fk), 0);
    fake_kokoro_stop(&fk);
}

Test(kokoro, direct_call_needs_a_url)
{
    tts_result_t r = {0};
    char err[128] = "";
    cr_expect_eq(kokoro_synth(&(tts_config_t){0}, "Hi", wav, &r, err, sizeof err), FENTA_EINVAL);
    cr_expect_neq(err[0], '\0');
}

typedef struct job {
    tts_config_t cfg;
    const char *text;
    char *path;
    tts_result_t r;
    int rc;
    char err[256];
} job_t;

static void *run_job(void *arg)
{
    job_t *j = arg;
    j->rc = tts_synth(&j->cfg, j->text, j->path, &j->r, j->err, sizeof j->err);
    return NULL;
}

Test(kokoro, remote_and_offline_speak_at_once)
{
    fake_kokoro_t *fk = fake_kokoro_start(NULL);
    job_t j[3] = {{.cfg = {.kokoro_url = fake_kokoro_url(fk)}, .text = "one two three"},
                  {.cfg = {.kokoro_url = fake_kokoro_url(fk)}, .text = "four five"},
                  {.text = "six seven eight nine"}};
    pthread_t t[3];
    for (int i = 0; i < 3; i++) {
        cr_assert(asprintf(&j[i].path, "%s/job%d.wav", dir, i) > 0);
        cr_assert_eq(pthread_create(&t[i], NULL, run_job, &j[i]), 0);
    }
    for (int i = 0; i < 3; i++)
        pthread_join(t[i], NULL);
    size_t words[] = {3, 2, 4};
    for (int i = 0; i < 3; i++) {
        cr_expect_eq(j[i].rc, 0, "job %d: %s", i, j[i].err);
        cr_expect_eq(j[i].r.nmarks, words[i], "job %d", i);
        cr_expect_str_eq(j[i].r.engine, i < 2 ? "kokoro" : "espeak-ng");
        tts_result_free(&j[i].r);
        free(j[i].path);
    }
    fake_kokoro_stop(&fk);
}
