/* test_timeline.c - the edit stage's plan and graph, measured on real
 * output: clips fitted to the voice in whole frames, the video exactly as
 * long as the voice, music ducked under speech by at least 6 dB, a still
 * with Ken Burns moving, a transition's midpoint unlike both neighbours,
 * and any file name read back through the graph's escaping. */
#include "actors/media/render_graph.h"
#include "actors/render/render_spec.h"
#include "actors/render/timeline.h"
#include "runtime/error.h"
#include "tests/support/fixtures.h"
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char dir[512];

static void sh(const char *fmt, const char *arg)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, fmt, arg);
    cr_assert_eq(fx_sh(dir, "%s", cmd), 0, "command failed in %s: %s", dir, cmd);
}

static void setup(void)
{
    char *d = fx_tmpdir("timeline");
    snprintf(dir, sizeof dir, "%s", d);
    free(d);
}

TestSuite(timeline, .init = setup, .timeout = 120);

/* A spec with the given template overrides, 720p. */
static void spec_with(render_spec_t *s, const char *tpl_json)
{
    char text[2048], err[512];
    snprintf(text, sizeof text, "{\"script\": \"x\", \"profile\": \"720p\", \"template\": %s}",
             tpl_json ? tpl_json : "\"clean\"");
    json_error_t je;
    json_t *j = json_loads(text, 0, &je);
    cr_assert_not_null(j, "%s", je.text);
    cr_assert_eq(render_spec_parse(j, NULL, s, err, sizeof err), 0, "%s", err);
    json_decref(j);
}

static char *path_of(const char *name)
{
    static char p[8][1024];
    static int k;
    k = (k + 1) % 8;
    snprintf(p[k], sizeof p[k], "%s/%s", dir, name);
    return p[k];
}

Test(timeline, clips_fill_the_voice_exactly_within_the_template_limits)
{
    render_spec_t s;
    spec_with(&s, NULL); /* clean: 1.5..6 s, fade 0.4 s, 30 fps */
    timeline_source_t src[4];
    for (int i = 0; i < 4; i++)
        src[i] = (timeline_source_t){.path = "/x.mp4", .duration_s = 20};
    timeline_in_t in = {
        .spec = &s, .sources = src, .nsources = 4, .voice_path = "/v.wav", .voice_s = 10.01};
    timeline_t tl;
    char err[256];
    cr_assert_eq(timeline_build(&in, &tl, err, sizeof err), 0, "%s", err);
    cr_assert_eq(tl.frames, 300);
    cr_assert_eq(tl.audio_samples, 480000);
    cr_assert_eq(tl.nclips, 4);
    cr_assert_eq(tl.transition_frames, 12);
    int64_t sum = 0;
    for (size_t i = 0; i < tl.nclips; i++) {
        sum += tl.clips[i].frames;
        cr_assert_eq(tl.clips[i].source, (int)i);
        cr_assert_geq(tl.clips[i].frames, 45);
        cr_assert_leq(tl.clips[i].frames, 180);
    }
    cr_assert_eq(sum - 3 * tl.transition_frames, tl.frames);
    timeline_free(&tl);

    /* A 50 s voice and two clips: the clips are cycled, each at most 6 s. */
    in.nsources = 2;
    in.voice_s = 50;
    cr_assert_eq(timeline_build(&in, &tl, err, sizeof err), 0, "%s", err);
    cr_assert_geq(tl.nclips, 9);
    for (size_t i = 0; i < tl.nclips; i++) {
        cr_assert_leq(tl.clips[i].frames, 180);
        cr_assert_eq(tl.clips[i].source, (int)(i % 2));
    }
    /* The second showing of a clip continues where the first stopped. */
    cr_assert_gt(tl.clips[2].start_s, 0);
    timeline_free(&tl);

    /* Twenty clips and a 4 s voice: only as many as fit at 1.5 s each. */
    timeline_source_t many[20];
    for (int i = 0; i < 20; i++)
        many[i] = (timeline_source_t){.path = "/x.jpg", .still = true};
    in.sources = many;
    in.nsources = 20;
    in.voice_s = 4;
    cr_assert_eq(timeline_build(&in, &tl, err, sizeof err), 0, "%s", err);
    cr_assert_leq(tl.nclips, 3);
    cr_assert_geq(tl.nclips, 2);
    timeline_free(&tl);

    /* No media: procedural backgrounds. */
    in.nsources = 0;
    in.voice_s = 30;
    cr_assert_eq(timeline_build(&in, &tl, err, sizeof err), 0, "%s", err);
    cr_assert_geq(tl.nclips, 5);
    cr_assert_eq(tl.clips[0].source, -1);
    cr_assert(strstr(tl.graph, "gradients=") != NULL);
    timeline_free(&tl);
    render_spec_free(&s);
}

Test(timeline, a_short_clip_loops_and_bad_voices_are_refused)
{
    render_spec_t s;
    spec_with(&s, NULL);
    timeline_source_t src = {.path = "/x.mp4", .duration_s = 1.0};
    timeline_in_t in = {
        .spec = &s, .sources = &src, .nsources = 1, .voice_path = "/v.wav", .voice_s = 5};
    timeline_t tl;
    char err[256];
    cr_assert_eq(timeline_build(&in, &tl, err, sizeof err), 0, "%s", err);
    cr_assert(tl.clips[0].loop);
    cr_assert(strstr(tl.graph, ":loop=0") != NULL);
    timeline_free(&tl);
    in.voice_s = 0.01;
    cr_assert_eq(timeline_build(&in, &tl, err, sizeof err), FENTA_EINVAL);
    cr_assert(strstr(err, "shorter than one frame"), "%s", err);
    in.voice_s = 601;
    cr_assert_eq(timeline_build(&in, &tl, err, sizeof err), FENTA_EINVAL);
    cr_assert(strstr(err, "at most"), "%s", err);
    render_spec_free(&s);
}

/* RMS in dB of samples [a, b) at 48 kHz. */
static double rms_db(const float *x, size_t n, double a_s, double b_s)
{
    size_t a = (size_t)(a_s * 48000), b = (size_t)(b_s * 48000);
    if (b > n)
        b = n;
    double sum = 0;
    for (size_t i = a; i < b; i++)
        sum += (double)x[i] * x[i];
    return 10 * log10(sum / (double)(b - a) + 1e-20);
}

Test(timeline, music_drops_at_least_6_db_under_speech)
{
    /* "Speech" for 2 s, silence for 2 s, twice; a steady music tone. */
    sh("ffmpeg -nostdin -y -loglevel error -f lavfi -i "
       "\"sine=f=300:d=8,volume='if(lt(mod(t,4),2),0.3,0)':eval=frame\" %s",
       "voice.wav");
    sh("ffmpeg -nostdin -y -loglevel error -f lavfi -i sine=f=880:d=8 %s", "music.wav");
    render_spec_t s;
    spec_with(&s, NULL); /* duck 12 dB, attack 30 ms, release 400 ms */
    timeline_in_t in = {.spec = &s,
                        .voice_path = path_of("voice.wav"),
                        .voice_s = 8,
                        .music_path = path_of("music.wav"),
                        .mode = TIMELINE_VOICE_LEVEL};
    timeline_t tl;
    char err[512];
    double lufs, peak;
    cr_assert_eq(timeline_build(&in, &tl, err, sizeof err), 0, "%s", err);
    cr_assert_eq(render_graph_loudness(tl.graph, &lufs, &peak, err, sizeof err), 0, "%s", err);
    timeline_free(&tl);
    in.voice_lufs = lufs;
    in.mode = TIMELINE_DUCKED_MUSIC;
    cr_assert_eq(timeline_build(&in, &tl, err, sizeof err), 0, "%s", err);
    float *x = NULL;
    size_t n = 0;
    cr_assert_eq(render_graph_samples(tl.graph, &x, &n, err, sizeof err), 0, "%s\n%s", err,
                 tl.graph);
    cr_assert_eq(n, 8 * 48000);
    /* Away from the edges, where attack and release are still moving. */
    double speech = rms_db(x, n, 4.5, 5.8), pause = rms_db(x, n, 6.8, 7.3);
    cr_log_info("music under speech %.1f dB, in the pause %.1f dB", speech, pause);
    cr_assert_geq(pause - speech, 6.0, "ducked by only %.1f dB", pause - speech);
    free(x);
    timeline_free(&tl);
    render_spec_free(&s);
}

/* Mean absolute difference of two grey frames n1 and n2 of the video. */
static double frame_diff(const char *video, int n1, int n2, int w, int h)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "ffmpeg -nostdin -loglevel error -i '%s' -vf \"select='eq(n\\,%d)+eq(n\\,%d)'\" "
             "-vsync 0 -f rawvideo -pix_fmt gray -",
             video, n1, n2);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    size_t sz = (size_t)w * h;
    unsigned char *buf = malloc(2 * sz);
    size_t got = fread(buf, 1, 2 * sz, p);
    pclose(p);
    cr_assert_eq(got, 2 * sz, "expected two frames of %dx%d from %s", w, h, video);
    double d = 0;
    for (size_t i = 0; i < sz; i++)
        d += abs((int)buf[i] - (int)buf[sz + i]);
    free(buf);
    return d / (double)sz;
}

static void encode(const timeline_in_t *in, const char *out, timeline_t *tl)
{
    char err[512];
    cr_assert_eq(timeline_build(in, tl, err, sizeof err), 0, "%s", err);
    const render_spec_t *s = in->spec;
    render_encode_opts_t o = {.width = s->width,
                              .height = s->height,
                              .fps = s->fps,
                              .crf = 23,
                              .preset = "ultrafast",
                              .audio_kbps = 128};
    render_encode_stats_t st;
    cr_assert_eq(render_graph_encode(tl->graph, out, &o, &st, err, sizeof err), 0, "%s\n%s", err,
                 tl->graph);
    cr_assert_eq(st.frames, tl->frames);
}

Test(timeline, a_still_moves_and_a_transition_midpoint_is_its_own_frame)
{
    sh("ffmpeg -nostdin -y -loglevel error -f lavfi -i testsrc2=s=1600x1200 -frames:v 1 %s",
       "still.png");
    sh("ffmpeg -nostdin -y -loglevel error -f lavfi -i mandelbrot=s=1200x1600 -frames:v 1 %s",
       "still2.png");
    sh("ffmpeg -nostdin -y -loglevel error -f lavfi -i anullsrc=r=24000:cl=mono -t 3 %s",
       "quiet.wav");
    render_spec_t s;
    spec_with(&s, "{\"clips\": {\"transition\": \"fade\", \"transition_s\": 0.5, \"min_s\": 1.5}}");
    timeline_source_t src[2] = {{.path = path_of("still.png"), .still = true},
                                {.path = path_of("still2.png"), .still = true}};
    timeline_in_t in = {.spec = &s,
                        .sources = src,
                        .nsources = 1,
                        .voice_path = path_of("quiet.wav"),
                        .voice_s = 3,
                        .mode = TIMELINE_FULL};
    timeline_t tl;
    encode(&in, path_of("kb.mp4"), &tl);
    cr_assert_eq(tl.nclips, 1);
    double moved = frame_diff(path_of("kb.mp4"), 5, 80, s.width, s.height);
    cr_log_info("Ken Burns: frames 5 and 80 differ by %.2f grey levels", moved);
    cr_assert_gt(moved, 2.0);
    timeline_free(&tl);

    in.nsources = 2;
    encode(&in, path_of("fade.mp4"), &tl);
    cr_assert_eq(tl.nclips, 2);
    int64_t mid = tl.clips[0].frames - tl.transition_frames / 2;
    int64_t before = tl.clips[0].frames - tl.transition_frames - 1;
    int64_t after = tl.clips[0].frames + 1;
    double d1 = frame_diff(path_of("fade.mp4"), (int)before, (int)mid, s.width, s.height);
    double d2 = frame_diff(path_of("fade.mp4"), (int)mid, (int)after, s.width, s.height);
    cr_log_info("transition midpoint differs by %.2f and %.2f", d1, d2);
    cr_assert_gt(d1, 2.0);
    cr_assert_gt(d2, 2.0);
    timeline_free(&tl);
    render_spec_free(&s);
}

Test(timeline, any_file_name_survives_the_graph)
{
    const char *name = "it's: a [test], ok; 50% \\ done.wav";
    sh("ffmpeg -nostdin -y -loglevel error -f lavfi -i sine=f=440:d=1 \"%s\"", name);
    render_spec_t s;
    spec_with(&s, NULL);
    timeline_in_t in = {
        .spec = &s, .voice_path = path_of(name), .voice_s = 1, .mode = TIMELINE_VOICE_LEVEL};
    timeline_t tl;
    char err[512];
    double lufs, peak;
    cr_assert_eq(timeline_build(&in, &tl, err, sizeof err), 0, "%s", err);
    cr_assert_eq(render_graph_loudness(tl.graph, &lufs, &peak, err, sizeof err), 0, "%s\n%s", err,
                 tl.graph);
    cr_assert_gt(lufs, -30, "the tone was not read: %.1f LUFS", lufs);
    timeline_free(&tl);
    render_spec_free(&s);
}
