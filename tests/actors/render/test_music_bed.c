/* test_music_bed.c - the music bed is a WAV that players and ffprobe read,
 * exactly as long as asked, reproducible from its seed, at a sane level with
 * no clipping, no clicks and no silent stretch, faded at both ends, and its
 * harmony follows the chords its plan names; bad options and unwritable paths
 * are refused with a message that says which. Prints how long a minute of
 * 48 kHz audio takes to make. */
#include "actors/render/music_bed.h"
#include "runtime/error.h"
#include "tests/support/fixtures.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* A parsed 16-bit stereo WAV. */
typedef struct wav {
    int rate;             /* from the fmt chunk */
    int64_t frames;       /* from the data chunk's size */
    int16_t *pcm;         /* interleaved left, right */
    unsigned char *bytes; /* the whole file */
    size_t size;          /* its length */
} wav_t;

static uint32_t le(const unsigned char *p, int n)
{
    uint32_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* Reads path and checks every field of the header a player relies on. */
static wav_t load(const char *path)
{
    wav_t w = {0};
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    w.size = (size_t)ftell(f);
    rewind(f);
    w.bytes = malloc(w.size);
    cr_assert_eq(fread(w.bytes, 1, w.size, f), w.size);
    fclose(f);
    const unsigned char *h = w.bytes;
    cr_assert_geq(w.size, 44);
    cr_assert(memcmp(h, "RIFF", 4) == 0 && memcmp(h + 8, "WAVEfmt ", 8) == 0);
    cr_assert_eq(le(h + 4, 4), w.size - 8, "RIFF size");
    cr_assert_eq(le(h + 16, 4), 16, "fmt chunk size");
    cr_assert_eq(le(h + 20, 2), 1, "PCM");
    cr_assert_eq(le(h + 22, 2), 2, "stereo");
    w.rate = (int)le(h + 24, 4);
    cr_assert_eq(le(h + 28, 4), (uint32_t)w.rate * 4, "byte rate");
    cr_assert_eq(le(h + 32, 2), 4, "block align");
    cr_assert_eq(le(h + 34, 2), 16, "bits");
    cr_assert(memcmp(h + 36, "data", 4) == 0);
    cr_assert_eq(le(h + 40, 4), w.size - 44, "data size");
    w.frames = (int64_t)(w.size - 44) / 4;
    w.pcm = malloc(w.size - 44 + 1);
    for (int64_t i = 0; i < w.frames * 2; i++)
        w.pcm[i] = (int16_t)le(h + 44 + 2 * i, 2);
    return w;
}

static void unload(wav_t *w)
{
    free(w->pcm), free(w->bytes);
    *w = (wav_t){0};
}

/* Writes a bed into a fresh directory and loads it; *dir is the caller's. */
static wav_t make(const music_bed_opts_t *o, char **dir)
{
    *dir = fx_tmpdir("music-bed");
    char path[512], err[256] = "";
    snprintf(path, sizeof path, "%s/bed.wav", *dir);
    cr_assert_eq(music_bed_write(o, path, err, sizeof err), 0, "%s", err);
    return load(path);
}

static int peak(const wav_t *w, int64_t from, int64_t to)
{
    int p = 0;
    for (int64_t i = 2 * from; i < 2 * to; i++)
        p = abs(w->pcm[i]) > p ? abs(w->pcm[i]) : p;
    return p;
}

static double dbfs(double x)
{
    return 20 * log10(x / 32768.0);
}

Test(music_bed, writes_a_stereo_wav_of_exactly_the_asked_length)
{
    static const struct {
        double s;
        int rate;
    } cases[] = {{7.3, 0}, {1.23456, 44100}, {0.05, 22050}, {2.0, 8000}, {0.5, 192000}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *dir;
        music_bed_opts_t o = {.seed = 7, .duration_s = cases[i].s, .sample_rate = cases[i].rate};
        wav_t w = make(&o, &dir);
        int rate = cases[i].rate ? cases[i].rate : 48000;
        cr_expect_eq(w.rate, rate);
        cr_expect_eq(w.frames, llround(cases[i].s * rate), "%g s at %d Hz: %lld frames", cases[i].s,
                     rate, (long long)w.frames);
        cr_expect_lt(peak(&w, 0, w.frames), 32767, "clipped at %d Hz", rate);
        unload(&w);
        fx_rmdir(dir);
    }
}

Test(music_bed, ffprobe_reads_it_as_pcm_stereo_of_that_duration)
{
    char *dir;
    wav_t w = make(&(music_bed_opts_t){.seed = 3, .duration_s = 7.3}, &dir);
    unload(&w);
    char cmd[1024], out[4096] = "";
    snprintf(cmd, sizeof cmd,
             "ffprobe -v error -show_entries stream=codec_name,sample_rate,channels "
             "-show_entries format=duration -of json '%s/bed.wav'",
             dir);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    cr_assert_eq(pclose(p), 0, "ffprobe failed: %s", out);
    cr_expect_not_null(strstr(out, "\"codec_name\": \"pcm_s16le\""), "%s", out);
    cr_expect_not_null(strstr(out, "\"sample_rate\": \"48000\""), "%s", out);
    cr_expect_not_null(strstr(out, "\"channels\": 2"), "%s", out);
    const char *d = strstr(out, "\"duration\": \"");
    cr_assert_not_null(d, "%s", out);
    cr_expect_float_eq(strtod(d + 13, NULL), 7.3, 1e-4, "%s", out);
    fx_rmdir(dir);
}

Test(music_bed, same_seed_gives_the_same_bytes_another_seed_other_music)
{
    char *d1, *d2, *d3;
    wav_t a = make(&(music_bed_opts_t){.seed = 42, .duration_s = 6}, &d1);
    wav_t b = make(&(music_bed_opts_t){.seed = 42, .duration_s = 6}, &d2);
    wav_t c = make(&(music_bed_opts_t){.seed = 43, .duration_s = 6}, &d3);
    cr_assert_eq(a.size, b.size);
    cr_expect(memcmp(a.bytes, b.bytes, a.size) == 0, "same seed, different bytes");
    cr_assert_eq(a.size, c.size);
    cr_expect(memcmp(a.bytes, c.bytes, a.size) != 0, "seeds 42 and 43 gave the same bed");
    unload(&a), unload(&b), unload(&c);
    fx_rmdir(d1), fx_rmdir(d2), fx_rmdir(d3);
}

/* Level, loudness over time and fades, over several seeds and tempos. */
Test(music_bed, peaks_near_minus_6_dbfs_never_silent_and_faded_at_both_ends)
{
    for (uint32_t seed = 0; seed < 8; seed++) {
        char *dir;
        music_bed_opts_t o = {.seed = seed, .duration_s = 20};
        wav_t w = make(&o, &dir);
        int p = peak(&w, 0, w.frames);
        cr_expect_lt(p, 32767, "seed %u clips", seed);
        cr_expect(dbfs(p) > -12 && dbfs(p) < -3, "seed %u: peak %.1f dBFS", seed, dbfs(p));
        /* Every whole second between the fades has sound in it. */
        for (int64_t s = 1; s + 2 < 20; s++) {
            double sum = 0;
            for (int64_t i = 2 * s * w.rate; i < 2 * (s + 1) * w.rate; i++)
                sum += (double)w.pcm[i] * w.pcm[i];
            double rms = dbfs(sqrt(sum / (2.0 * w.rate)));
            cr_expect_gt(rms, -35, "seed %u: second %lld at %.1f dBFS", seed, (long long)s, rms);
        }
        /* The first and last 10 ms are all but silent, and the very ends are. */
        int64_t ten = w.rate / 100;
        cr_expect_lt(dbfs(peak(&w, 0, ten)), -60, "seed %u fades in too fast", seed);
        cr_expect_lt(dbfs(peak(&w, w.frames - ten, w.frames)), -60, "seed %u fades out late", seed);
        cr_expect(w.pcm[0] == 0 && w.pcm[1] == 0, "seed %u starts with a click", seed);
        cr_expect(w.pcm[2 * w.frames - 1] == 0 && w.pcm[2 * w.frames - 2] == 0,
                  "seed %u ends with a click", seed);
        /* Loud once the fade-in is over. */
        cr_expect_gt(peak(&w, w.rate, 2 * w.rate), 8 * peak(&w, 0, ten));
        unload(&w);
        fx_rmdir(dir);
    }
}

/* Largest second difference of one channel over the peak: a step (a note
 * starting or ending off zero) shows up whole here, while the bed's own
 * content, all below ~3 kHz, stays small. */
static double roughness(const int16_t *pcm, int64_t frames, int ch, int pk)
{
    int worst = 0;
    for (int64_t i = 2; i < frames; i++) {
        int d = pcm[2 * i + ch] - 2 * pcm[2 * (i - 1) + ch] + pcm[2 * (i - 2) + ch];
        worst = abs(d) > worst ? abs(d) : worst;
    }
    return (double)worst / pk;
}

/* Measured: at most 0.014 over 64 beds; a click a tenth of the peak reads 0.1. */
#define CLICK_LIMIT 0.05

Test(music_bed, has_no_clicks)
{
    double worst = 0;
    for (uint32_t seed = 0; seed < 16; seed++) {
        char *dir;
        music_bed_opts_t o = {.seed = seed, .duration_s = 12, .bpm = seed % 2 ? 0 : 60 + seed * 9};
        wav_t w = make(&o, &dir);
        int pk = peak(&w, 0, w.frames);
        for (int ch = 0; ch < 2; ch++) {
            double r = roughness(w.pcm, w.frames, ch, pk);
            worst = fmax(worst, r);
            cr_expect_lt(r, CLICK_LIMIT, "seed %u channel %d: jump %.3f of the peak", seed, ch, r);
        }
        if (seed == 0) { /* the detector sees a click a tenth of the peak high */
            for (int64_t i = w.frames / 2; i < w.frames; i++)
                w.pcm[2 * i] = (int16_t)(w.pcm[2 * i] + pk / 10);
            cr_expect_gt(roughness(w.pcm, w.frames, 0, pk), CLICK_LIMIT);
        }
        unload(&w);
        fx_rmdir(dir);
    }
    fprintf(stderr, "music bed: worst jump %.4f of the peak (limit %.2f)\n", worst, CLICK_LIMIT);
}

/* Energy at frequency f of x[0..n) under a Hann window w (Goertzel). */
static double goertzel(const float *x, const float *w, int64_t n, double f, int rate)
{
    double k = 2 * cos(2 * M_PI * f / rate), s1 = 0, s2 = 0;
    for (int64_t i = 0; i < n; i++) {
        double s0 = x[i] * w[i] + k * s1 - s2;
        s2 = s1, s1 = s0;
    }
    return s1 * s1 + s2 * s2 - k * s1 * s2;
}

/* Energy per pitch class (0 = C) over MIDI 36..83 in [from, to), summed over
 * quarter-second windows: short enough that the pad's detuned voices (a few
 * cents off the note) still fall in the note's bin. */
static void chroma(const float *x, int64_t from, int64_t to, int rate, double e[12])
{
    int64_t n = rate / 4;
    float *w = malloc((size_t)n * sizeof *w);
    for (int64_t i = 0; i < n; i++)
        w[i] = (float)(0.5 - 0.5 * cos(2 * M_PI * (double)i / (double)(n - 1)));
    memset(e, 0, 12 * sizeof *e);
    for (int64_t a = from; a + n <= to; a += n)
        for (int m = 36; m < 84; m++)
            e[m % 12] += goertzel(x + a, w, n, 440 * pow(2, (m - 69) / 12.0), rate);
    free(w);
}

static const int scale[7] = {0, 2, 4, 5, 7, 9, 11};

Test(music_bed, harmony_follows_the_chords_of_its_plan)
{
    int changes = 0;
    for (uint32_t seed = 0; seed < 6; seed++) {
        char *dir;
        music_bed_opts_t o = {.seed = seed, .duration_s = 16, .sample_rate = 16000, .bpm = 90};
        music_bed_plan_t plan;
        cr_assert_eq(music_bed_plan(&o, &plan, NULL, 0), 0);
        wav_t w = make(&o, &dir);
        float *mono = malloc((size_t)w.frames * sizeof *mono);
        for (int64_t i = 0; i < w.frames; i++)
            mono[i] = (float)(w.pcm[2 * i] + w.pcm[2 * i + 1]);
        int64_t bar = llround(4 * 60.0 / 90 * w.rate), edge = w.rate / 4;
        int dominant[5];
        for (int b = 0; b < 5; b++) { /* bar 0 fades in, so bars 1..4 are the loop */
            double e[12];
            chroma(mono, b * bar + edge, (b + 1) * bar - edge, w.rate, e);
            dominant[b] = 0;
            for (int pc = 1; pc < 12; pc++)
                dominant[b] = e[pc] > e[dominant[b]] ? pc : dominant[b];
            if (b == 0)
                continue;
            int deg = plan.degrees[b % 4], root = plan.roots[b % 4];
            cr_expect_eq(dominant[b], root, "seed %u (%s) bar %d: loudest pitch class %d", seed,
                         plan.name, b, dominant[b]);
            /* And of the 24 major and minor triads, the chord's own sounds most. */
            int third = (scale[(deg + 2) % 7] - scale[deg] + 12) % 12, best = -1;
            double best_e = -1;
            for (int t = 0; t < 24; t++) {
                double te = e[t / 2] + e[(t / 2 + (t % 2 ? 3 : 4)) % 12] + e[(t / 2 + 7) % 12];
                best = te > best_e ? t : best, best_e = fmax(te, best_e);
            }
            cr_expect_eq(best, root * 2 + (third == 3), "seed %u (%s) bar %d: heard triad %d%s",
                         seed, plan.name, b, best / 2, best % 2 ? "m" : "");
        }
        changes += dominant[0] != dominant[1];
        free(mono);
        unload(&w);
        fx_rmdir(dir);
    }
    cr_expect_gt(changes, 0, "the first chord change is never heard");
}

Test(music_bed, plan_comes_from_the_seed)
{
    int keys = 0, progs = 0, first_key = -1, first_deg = -1;
    for (uint32_t seed = 0; seed < 20; seed++) {
        music_bed_plan_t p;
        char err[128] = "";
        cr_assert_eq(music_bed_plan(&(music_bed_opts_t){.seed = seed, .duration_s = 10}, &p, err,
                                    sizeof err),
                     0, "%s", err);
        cr_expect(p.bpm >= 84 && p.bpm <= 110, "seed %u: %g bpm", seed, p.bpm);
        cr_expect(p.key >= 0 && p.key <= 9);
        cr_expect_neq(p.name[0], '\0');
        for (int i = 0; i < 4; i++)
            cr_expect_eq(p.roots[i], (p.key + scale[p.degrees[i]]) % 12);
        first_key = first_key < 0 ? p.key : first_key;
        first_deg = first_deg < 0 ? p.degrees[0] * 10 + p.degrees[1] : first_deg;
        keys += p.key != first_key;
        progs += p.degrees[0] * 10 + p.degrees[1] != first_deg;
    }
    cr_expect_gt(keys, 0, "every seed is in the same key");
    cr_expect_gt(progs, 0, "every seed plays the same progression");
    music_bed_plan_t p;
    music_bed_plan(&(music_bed_opts_t){.seed = 1, .duration_s = 10, .bpm = 72.5}, &p, NULL, 0);
    cr_expect_float_eq(p.bpm, 72.5, 1e-9);
}

/* Files in dir (".", ".." excluded). */
static int count_files(const char *dir)
{
    DIR *d = opendir(dir);
    cr_assert_not_null(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return n;
}

Test(music_bed, bad_options_are_refused_naming_the_field)
{
    static const struct {
        music_bed_opts_t o;
        const char *field;
    } cases[] = {
        {{.duration_s = 0}, "duration_s"},
        {{.duration_s = -1}, "duration_s"},
        {{.duration_s = 3600.5}, "duration_s"},
        {{.duration_s = NAN}, "duration_s"},
        {{.duration_s = INFINITY}, "duration_s"},
        {{.duration_s = 1e-6}, "duration_s"}, /* under one sample */
        {{.duration_s = 1, .sample_rate = 7999}, "sample_rate"},
        {{.duration_s = 1, .sample_rate = 192001}, "sample_rate"},
        {{.duration_s = 1, .sample_rate = -48000}, "sample_rate"},
        {{.duration_s = 1, .bpm = 39}, "bpm"},
        {{.duration_s = 1, .bpm = 201}, "bpm"},
        {{.duration_s = 1, .bpm = NAN}, "bpm"},
        {{.duration_s = 1, .bpm = -90}, "bpm"},
    };
    char *dir = fx_tmpdir("music-bed"), path[512];
    snprintf(path, sizeof path, "%s/bed.wav", dir);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char err[256] = "";
        cr_expect_eq(music_bed_write(&cases[i].o, path, err, sizeof err), FENTA_EINVAL, "case %zu",
                     i);
        cr_expect_not_null(strstr(err, cases[i].field), "case %zu: '%s'", i, err);
        music_bed_plan_t p;
        cr_expect_eq(music_bed_plan(&cases[i].o, &p, NULL, 0), FENTA_EINVAL);
    }
    char err[256] = "";
    music_bed_opts_t ok = {.duration_s = 1};
    cr_expect_eq(music_bed_write(NULL, path, err, sizeof err), FENTA_EINVAL);
    cr_expect_neq(err[0], '\0');
    cr_expect_eq(music_bed_write(&ok, NULL, err, sizeof err), FENTA_EINVAL);
    cr_expect_eq(music_bed_write(&ok, "", err, sizeof err), FENTA_EINVAL);
    cr_expect_not_null(strstr(err, "path"), "'%s'", err);
    cr_expect_eq(music_bed_plan(&ok, NULL, NULL, 0), FENTA_EINVAL);
    cr_expect_eq(count_files(dir), 0, "a refused bed left a file");
    fx_rmdir(dir);
}

Test(music_bed, unwritable_path_is_eio_naming_it_and_leaves_nothing)
{
    music_bed_opts_t o = {.seed = 1, .duration_s = 2};
    char err[512] = "";
    const char *missing = "/nonexistent-fenta-dir/sub/bed.wav";
    cr_expect_eq(music_bed_write(&o, missing, err, sizeof err), FENTA_EIO);
    cr_expect_not_null(strstr(err, missing), "'%s'", err);
    cr_expect_not_null(strstr(err, "No such file or directory"), "'%s'", err);

    /* The path is a directory: everything succeeds until the rename. */
    char *dir = fx_tmpdir("music-bed"), target[512];
    snprintf(target, sizeof target, "%s/taken", dir);
    cr_assert_eq(mkdir(target, 0755), 0);
    err[0] = '\0';
    cr_expect_eq(music_bed_write(&o, target, err, sizeof err), FENTA_EIO);
    cr_expect_not_null(strstr(err, target), "'%s'", err);
    cr_expect_eq(count_files(dir), 1, "the temporary file was left behind");
    fx_rmdir(dir);
}

Test(music_bed, replaces_an_existing_file_whole)
{
    char *dir = fx_tmpdir("music-bed"), path[512], err[256] = "";
    snprintf(path, sizeof path, "%s/bed.wav", dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    for (int i = 0; i < 100000; i++) /* longer than the bed: no tail may survive */
        fputs("stale ", f);
    fclose(f);
    cr_assert_eq(
        music_bed_write(&(music_bed_opts_t){.seed = 5, .duration_s = 1}, path, err, sizeof err), 0,
        "%s", err);
    wav_t w = load(path);
    cr_expect_eq(w.frames, 48000);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_expect_eq(st.st_mode & 0777, 0644);
    cr_expect_eq(count_files(dir), 1);
    unload(&w);
    fx_rmdir(dir);
}

Test(music_bed, a_minute_at_48_khz_is_quick)
{
    char *dir = fx_tmpdir("music-bed"), path[512], err[256] = "";
    snprintf(path, sizeof path, "%s/bed.wav", dir);
    double wall = 1e9, cpu = 1e9;
    for (int i = 0; i < 3; i++) {
        struct timespec w0, w1, c0, c1;
        clock_gettime(CLOCK_MONOTONIC, &w0), clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
        cr_assert_eq(music_bed_write(&(music_bed_opts_t){.seed = (uint32_t)i, .duration_s = 60},
                                     path, err, sizeof err),
                     0, "%s", err);
        clock_gettime(CLOCK_MONOTONIC, &w1), clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
        wall = fmin(wall, (double)(w1.tv_sec - w0.tv_sec) * 1e3 + (w1.tv_nsec - w0.tv_nsec) / 1e6);
        cpu = fmin(cpu, (double)(c1.tv_sec - c0.tv_sec) * 1e3 + (c1.tv_nsec - c0.tv_nsec) / 1e6);
    }
    wav_t w = load(path);
    cr_expect_eq(w.frames, 60 * 48000);
    fprintf(stderr,
            "music bed: 60 s at 48 kHz in %.1f ms of CPU, %.1f ms wall with fsync "
            "(best of 3)\n",
            cpu, wall);
    unload(&w);
    fx_rmdir(dir);
}
