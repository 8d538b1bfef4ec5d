/* test_render.c - `fenta render` end to end, checked the way a user would
 * check the result: ffprobe for codecs, size, rate, frame count and the
 * moov atom; the SRT against the voice's word times; EBU R128 loudness and
 * true peak of the mp4; the thumbnail decodes; every bad input fails with
 * its own message; a render SIGKILLed in the edit resumes there. */
#include "runtime/error.h"
#include "tests/support/fixtures.h"
#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <strings.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[512];

static void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sh(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    cr_assert_eq(fx_sh(dir, "%s", cmd), 0, "command failed in %s: %s", dir, cmd);
}

/* Runs a command in dir and returns its stdout (malloc'd) and exit status. */
static char *run(int *status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static char *run(int *status, const char *fmt, ...)
{
    char cmd[4096], full[4700];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    snprintf(full, sizeof full, "cd '%s' && %s", dir, cmd);
    FILE *p = popen(full, "r");
    cr_assert_not_null(p);
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    size_t n;
    while ((n = fread(buf + len, 1, cap - len - 1, p)) > 0) {
        len += n;
        if (cap - len < 4096)
            buf = realloc(buf, cap *= 2);
    }
    buf[len] = '\0';
    int st = pclose(p);
    *status = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
    return buf;
}

static void write_text(const char *name, const char *text)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
}

static void setup(void)
{
    char *d = fx_tmpdir("render");
    snprintf(dir, sizeof dir, "%s", d);
    free(d);
}

TestSuite(render, .init = setup, .timeout = 600);

#define SCRIPT                                                                                     \
    "Welcome to **Fenta**. This short was rendered in a test. It has three sources, a title "      \
    "and music. Every caption must start with its word!"

static void make_media(void)
{
    sh("ffmpeg -nostdin -y -loglevel error -f lavfi -i testsrc2=s=1280x720:r=25:d=6 -f lavfi -i "
       "sine=f=500:d=6 -c:v libx264 -preset ultrafast -pix_fmt yuv420p -c:a aac -shortest "
       "clip1.mp4");
    /* A phone clip recorded sideways: the display matrix says turn it. */
    sh("ffmpeg -nostdin -y -loglevel error -f lavfi -i mandelbrot=s=640x360:r=30 -t 5 -c:v "
       "libx264 -preset ultrafast -pix_fmt yuv420p -metadata:s:v rotate=90 clip2.mp4");
    sh("ffmpeg -nostdin -y -loglevel error -f lavfi -i testsrc=s=1600x1200 -frames:v 1 "
       "still.jpg");
}

static json_t *load(const char *name)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    cr_assert_not_null(j, "%s: %s", path, je.text);
    return j;
}

static double probe_num(const char *entries, const char *file)
{
    int st;
    char *out = run(&st, "ffprobe -v error %s -of default=nw=1:nk=1 '%s'", entries, file);
    cr_assert_eq(st, 0);
    double v = strtod(out, NULL);
    free(out);
    return v;
}

static char *probe_str(const char *entries, const char *file)
{
    int st;
    char *out = run(&st, "ffprobe -v error %s -of default=nw=1:nk=1 '%s'", entries, file);
    cr_assert_eq(st, 0);
    out[strcspn(out, "\n")] = '\0';
    return out;
}

static int64_t srt_ms(int h, int m, int s, int ms)
{
    return ((int64_t)h * 3600 + m * 60 + s) * 1000 + ms;
}

Test(render, a_script_and_three_sources_become_a_finished_short)
{
    make_media();
    write_text("spec.json", "{\"script\": \"" SCRIPT "\", \"title\": \"Test short\","
                            " \"media\": [{\"source\": {\"path\": \"clip1.mp4\"}},"
                            " {\"source\": {\"path\": \"still.jpg\"}},"
                            " {\"source\": {\"path\": \"clip2.mp4\"}}],"
                            " \"template\": \"bold\", \"profile\": \"720p\"}");
    int st;
    char *log = run(&st, "'%s' render spec.json --out out --progress json", FENTA_BINARY);
    cr_assert_eq(st, 0, "fenta render failed:\n%s", log);
    for (const char *s = "ingest\0script\0tts\0align\0edit\0export\0deliver\0"; *s;
         s += strlen(s) + 1) {
        char want[64];
        snprintf(want, sizeof want, "\"stage\":\"%s\"", s);
        cr_assert(strstr(log, want), "no progress for %s:\n%s", s, log);
    }
    cr_assert(strstr(log, "\"event\":\"succeeded\""), "%s", log);
    free(log);

    json_t *r = load("out/render.json");
    cr_assert_str_eq(json_string_value(json_object_get(r, "status")), "succeeded");
    json_t *speech = json_object_get(r, "speech");
    double voice_s = (double)json_integer_value(json_object_get(speech, "duration_ms")) / 1000;
    cr_assert_gt(voice_s, 3);

    /* What ffprobe says of the mp4. */
    char *vc = probe_str("-select_streams v -show_entries stream=codec_name,pix_fmt,width,height,"
                         "r_frame_rate",
                         "out/video.mp4");
    cr_assert_str_eq(vc, "h264");
    free(vc);
    cr_assert_eq(probe_num("-select_streams v -show_entries stream=width", "out/video.mp4"), 720);
    cr_assert_eq(probe_num("-select_streams v -show_entries stream=height", "out/video.mp4"), 1280);
    char *rate = probe_str("-select_streams v -show_entries stream=r_frame_rate", "out/video.mp4");
    cr_assert_str_eq(rate, "30/1");
    free(rate);
    char *pix = probe_str("-select_streams v -show_entries stream=pix_fmt", "out/video.mp4");
    cr_assert_str_eq(pix, "yuv420p");
    free(pix);
    char *ac = probe_str("-select_streams a -show_entries stream=codec_name", "out/video.mp4");
    cr_assert_str_eq(ac, "aac");
    free(ac);
    cr_assert_eq(probe_num("-select_streams a -show_entries stream=sample_rate", "out/video.mp4"),
                 48000);
    double frames = probe_num("-count_frames -select_streams v -show_entries stream=nb_read_frames",
                              "out/video.mp4");
    cr_assert_leq(fabs(frames - voice_s * 30), 1.0, "%.0f frames for %.3f s of voice", frames,
                  voice_s);

    /* moov before mdat: the index is at the start. */
    char path[1024];
    snprintf(path, sizeof path, "%s/out/video.mp4", dir);
    FILE *f = fopen(path, "rb");
    unsigned char box[8];
    int moov = -1, mdat = -1;
    for (int i = 0; i < 16 && fread(box, 1, 8, f) == 8; i++) {
        uint32_t size = (uint32_t)box[0] << 24 | box[1] << 16 | box[2] << 8 | box[3];
        if (!memcmp(box + 4, "moov", 4))
            moov = i;
        if (!memcmp(box + 4, "mdat", 4))
            mdat = i;
        if (size < 8 || fseek(f, size - 8, SEEK_CUR) != 0)
            break;
    }
    fclose(f);
    cr_assert(moov >= 0 && mdat >= 0 && moov < mdat, "moov %d, mdat %d", moov, mdat);

    /* Every SRT cue starts within 50 ms of its first word. */
    json_t *words = json_object_get(speech, "words");
    snprintf(path, sizeof path, "%s/out/captions.srt", dir);
    f = fopen(path, "r");
    cr_assert_not_null(f);
    char line[512];
    size_t w = 0, cues = 0;
    while (fgets(line, sizeof line, f)) {
        int h1, m1, s1, ms1, h2, m2, s2, ms2;
        if (sscanf(line, "%d:%d:%d,%d --> %d:%d:%d,%d", &h1, &m1, &s1, &ms1, &h2, &m2, &s2, &ms2) !=
            8)
            continue;
        cr_assert(fgets(line, sizeof line, f));
        line[strcspn(line, "\n")] = '\0';
        /* The cue's first word is the next word of the voice. */
        char first[128];
        snprintf(first, sizeof first, "%.*s", (int)strcspn(line, " "), line);
        json_t *word = json_array_get(words, w);
        cr_assert_not_null(word, "more cues than words");
        const char *text = json_string_value(json_object_get(word, "text"));
        cr_assert(strcasecmp(first, text) == 0, "cue word '%s' vs voice word '%s'", first, text);
        int64_t start = json_integer_value(json_object_get(word, "start_ms"));
        int64_t cue = srt_ms(h1, m1, s1, ms1);
        cr_assert_leq(llabs(cue - start), 50, "cue at %lld ms, word '%s' at %lld ms",
                      (long long)cue, first, (long long)start);
        cues++;
        for (char *t = line; *t; t++) /* one voice word per space-separated word */
            if (t == line || (t[-1] == ' ' && *t != ' '))
                w++;
    }
    fclose(f);
    cr_assert_geq(cues, 4);

    /* Loudness -14 LUFS +-1, true peak <= -1 dBTP, measured by ffmpeg's own meter. */
    char *meter =
        run(&st, "ffmpeg -nostdin -hide_banner -i out/video.mp4 -af ebur128=peak=true -f null "
                 "- 2>&1 | grep -A20 Summary");
    double I = NAN, peak = NAN;
    char *p = strstr(meter, "I:");
    if (p)
        I = strtod(p + 2, NULL);
    p = strstr(meter, "True peak:");
    if (p && (p = strstr(p, "Peak:")))
        peak = strtod(p + 5, NULL);
    cr_log_info("loudness %.1f LUFS, true peak %.1f dBTP", I, peak);
    cr_assert_leq(fabs(I + 14), 1.0, "integrated loudness %.1f LUFS\n%s", I, meter);
    cr_assert_leq(peak, -1.0, "true peak %.1f dBTP\n%s", peak, meter);
    free(meter);

    char *th = probe_str("-show_entries stream=codec_name", "out/thumbnail.jpg");
    cr_assert_str_eq(th, "mjpeg");
    free(th);
    cr_assert_eq(probe_num("-show_entries stream=width", "out/thumbnail.jpg"), 720);
    json_decref(r);
}

/* Renders a spec naming one bad source and expects failure with `want` in
 * the message. */
static void refused(const char *source_json, const char *want)
{
    char spec[2048];
    snprintf(spec, sizeof spec, "{\"script\": \"Hello there.\", \"profile\": \"720p\", %s}",
             source_json);
    write_text("bad.json", spec);
    int st;
    char *out = run(&st, "'%s' render bad.json --out badout --progress json 2>&1", FENTA_BINARY);
    cr_assert_neq(st, 0, "accepted: %s", spec);
    cr_assert(strstr(out, want), "for %s expected '%s' in:\n%s", source_json, want, out);
    free(out);
}

Test(render, each_bad_input_fails_with_its_own_clear_error)
{
    sh("ffmpeg -nostdin -y -loglevel error -f lavfi -i testsrc2=s=320x240:r=25:d=3 -c:v libx264 "
       "-preset ultrafast whole.mp4 && head -c 20000 whole.mp4 > truncated.mp4");
    sh(": > empty.wav && echo 'just some notes' > notes.mp4");
    sh("ffmpeg -nostdin -y -loglevel error -f lavfi -i color=c=red:s=8200x4000 -frames:v 1 "
       "huge.png");
    sh("ffmpeg -nostdin -y -loglevel error -f lavfi -i sine=f=440:d=2 song.m4a");
    refused("\"media\": [{\"source\": {\"path\": \"truncated.mp4\"}}]", "truncated.mp4");
    refused("\"media\": [{\"source\": {\"path\": \"truncated.mp4\"}}]", "truncated");
    refused("\"voice\": {\"source\": {\"path\": \"empty.wav\"}}", "empty");
    refused("\"media\": [{\"source\": {\"path\": \"notes.mp4\"}}]", "not a media file");
    refused("\"media\": [{\"source\": {\"path\": \"huge.png\"}}]", "8200");
    refused("\"media\": [{\"source\": {\"path\": \"song.m4a\"}}]", "audio-only");
    refused("\"media\": [{\"source\": {\"path\": \"missing.mp4\"}}]", "no such file");
    refused("\"template\": \"neon\"", "template 'neon' does not exist");
    refused("\"template\": {\"captions\": {\"effect\": \"sparkle\"}}", "effect");

    write_text("empty.json", "{\"script\": \"** ** [](https://example.com)\"}");
    int st;
    char *out = run(&st, "'%s' render empty.json --out eout 2>&1", FENTA_BINARY);
    cr_assert_neq(st, 0);
    cr_assert(strstr(out, "script is empty"), "%s", out);
    free(out);
    /* A failed render keeps its story. */
    json_t *r = load("eout/render.json");
    cr_assert_str_eq(json_string_value(json_object_get(r, "status")), "failed");
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(r, "error"), "stage")),
                     "script");
    json_decref(r);
}

Test(render, a_render_killed_in_the_edit_resumes_there)
{
    write_text("long.json", "{\"script\": \"" SCRIPT " " SCRIPT "\", \"profile\": \"720p\"}");
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "cd '%s' && exec '%s' render long.json --out kout --progress json",
             dir, FENTA_BINARY);
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    FILE *in = fdopen(fds[0], "r");
    char line[1024];
    bool in_edit = false;
    while (fgets(line, sizeof line, in))
        if (strstr(line, "\"progress\"") && strstr(line, "\"stage\":\"edit\"") &&
            strstr(line, "\"fraction\"")) {
            in_edit = true;
            break;
        }
    cr_assert(in_edit, "the render never reached the edit");
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    fclose(in);

    int st;
    char *out = run(&st, "'%s' render long.json --out kout --progress json", FENTA_BINARY);
    cr_assert_eq(st, 0, "%s", out);
    /* The stages before the edit are not run again; the edit is. */
    for (const char *s = "ingest\0script\0tts\0align\0"; *s; s += strlen(s) + 1) {
        char want[96];
        snprintf(want, sizeof want, "{\"event\":\"stage_started\",\"stage\":\"%s\"", s);
        cr_assert(!strstr(out, want), "%s ran again:\n%s", s, out);
    }
    cr_assert(strstr(out, "\"event\":\"stage_started\",\"stage\":\"edit\""), "%s", out);
    cr_assert(strstr(out, "\"event\":\"succeeded\""), "%s", out);
    free(out);
    char *fc = probe_str("-select_streams v -show_entries stream=codec_name", "kout/video.mp4");
    cr_assert_str_eq(fc, "h264");
    free(fc);
}

Test(render, a_voice_recording_is_aligned_to_its_script_or_transcribed)
{
    sh("espeak-ng -v en-us -w rec.wav 'Rain carries minerals to the sea. The salt stays behind.'");
    write_text("aligned.json", "{\"voice\": {\"source\": {\"path\": \"rec.wav\"}},"
                               " \"script\": \"Rain carries minerals to the sea. The salt stays "
                               "behind.\", \"profile\": \"720p\", \"music\": null}");
    int st;
    char *out = run(&st, "'%s' render aligned.json --out aout --progress json 2>&1", FENTA_BINARY);
    cr_assert_eq(st, 0, "%s", out);
    free(out);
    json_t *r = load("aout/render.json");
    json_t *speech = json_object_get(r, "speech");
    cr_assert_str_eq(json_string_value(json_object_get(speech, "engine")), "pocketsphinx-align");
    json_t *words = json_object_get(speech, "words");
    cr_assert_eq(json_array_size(words), 10);
    /* Every script word is placed, in order, and the words span the whole
     * recording (its precision is test_asr's business). */
    int64_t prev = 0, audio = json_integer_value(json_object_get(speech, "duration_ms"));
    for (size_t i = 0; i < json_array_size(words); i++) {
        json_t *w = json_array_get(words, i);
        int64_t a = json_integer_value(json_object_get(w, "start_ms"));
        int64_t b = json_integer_value(json_object_get(w, "end_ms"));
        cr_assert(a >= prev && b >= a && b <= audio, "word %zu at %lld-%lld ms", i, (long long)a,
                  (long long)b);
        prev = b;
    }
    cr_assert_gt(prev, audio - 800, "the last word ends at %lld of %lld ms", (long long)prev,
                 (long long)audio);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(words, 6), "text")), "The");
    json_decref(r);

    write_text("heard.json",
               "{\"voice\": {\"source\": {\"path\": \"rec.wav\"}}, \"profile\": \"720p\"}");
    out = run(&st, "'%s' render heard.json --out hout --progress json 2>&1", FENTA_BINARY);
    cr_assert_eq(st, 0, "%s", out);
    free(out);
    r = load("hout/render.json");
    speech = json_object_get(r, "speech");
    cr_assert_str_eq(json_string_value(json_object_get(speech, "engine")), "pocketsphinx");
    cr_assert_geq(json_array_size(json_object_get(speech, "words")), 5);
    json_decref(r);
}
