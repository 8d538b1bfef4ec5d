/* test_tts.c - the offline voice (espeak-ng) through tts_synth: every
 * written word gets a mark whose byte offset points at it, the first word of
 * each sentence starts when the voice does (measured in the audio, not taken
 * from the engine), pauses are not part of words, the WAV is one that
 * ffprobe reads, bad input is refused without touching the file, and two
 * threads can speak at once. */
#include "actors/speech/tts.h"
#include "runtime/error.h"
#include "tests/support/fixtures.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *dir;

static void setup(void)
{
    dir = fx_tmpdir("tts");
}

static void teardown(void)
{
    fx_rmdir(dir);
}

TestSuite(tts, .init = setup, .fini = teardown);

static char *path_in(const char *name)
{
    char *p = NULL;
    cr_assert(asprintf(&p, "%s/%s", dir, name) > 0);
    return p;
}

/* The text a mark points at, as a string (static buffer). */
static const char *word(const char *text, const tts_mark_t *m)
{
    static char buf[256];
    cr_assert_leq(m->offset + m->len, strlen(text));
    snprintf(buf, sizeof buf, "%.*s", (int)m->len, text + m->offset);
    return buf;
}

typedef struct wav {
    int16_t *pcm;
    size_t n;
    int rate;
} wav_t;

static uint32_t le(const unsigned char *p, int bytes)
{
    uint32_t v = 0;
    for (int i = bytes - 1; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* Reads a WAV file and checks the header a player relies on. */
static wav_t read_wav(const char *path)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "open %s", path);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    rewind(f);
    cr_assert_geq(size, 44);
    unsigned char *b = malloc((size_t)size);
    cr_assert_eq(fread(b, 1, (size_t)size, f), (size_t)size);
    fclose(f);
    cr_expect_eq(memcmp(b, "RIFF", 4), 0);
    cr_expect_eq(le(b + 4, 4), (uint32_t)size - 8);
    cr_expect_eq(memcmp(b + 8, "WAVEfmt ", 8), 0);
    cr_expect_eq(le(b + 16, 4), 16);
    cr_expect_eq(le(b + 20, 2), 1, "PCM");
    cr_expect_eq(le(b + 22, 2), 1, "mono");
    wav_t w = {.rate = (int)le(b + 24, 4)};
    cr_expect_eq(le(b + 28, 4), (uint32_t)w.rate * 2, "byte rate");
    cr_expect_eq(le(b + 32, 2), 2, "block align");
    cr_expect_eq(le(b + 34, 2), 16, "bits");
    cr_expect_eq(memcmp(b + 36, "data", 4), 0);
    cr_expect_eq(le(b + 40, 4), (uint32_t)size - 44);
    w.n = ((size_t)size - 44) / 2;
    w.pcm = malloc(w.n * sizeof *w.pcm + 1);
    for (size_t i = 0; i < w.n; i++)
        w.pcm[i] = (int16_t)le(b + 44 + 2 * i, 2);
    free(b);
    return w;
}

/* What ffprobe says the stream is: "codec,rate". */
static char *ffprobe(const char *path)
{
    char *cmd = NULL, line[128] = "";
    cr_assert(asprintf(&cmd,
                       "ffprobe -v error -show_entries stream=codec_name,sample_rate -of "
                       "csv=p=0 '%s' 2>&1",
                       path) > 0);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    if (!fgets(line, sizeof line, p))
        line[0] = '\0';
    pclose(p);
    free(cmd);
    line[strcspn(line, "\r\n")] = '\0';
    return strdup(line);
}

static void synth_ok(const tts_config_t *c, const char *text, const char *path, tts_result_t *r)
{
    char err[512] = "";
    int rc = tts_synth(c, text, path, r, err, sizeof err);
    cr_assert_eq(rc, 0, "tts_synth: %d %s", rc, err);
}

/* Marks in time order, not overlapping, inside the audio. */
static void expect_well_formed(const tts_result_t *r)
{
    for (size_t i = 0; i < r->nmarks; i++) {
        const tts_mark_t *m = &r->marks[i];
        cr_expect_geq(m->start_ms, 0);
        cr_expect_geq(m->end_ms, m->start_ms, "mark %zu", i);
        cr_expect_leq(m->end_ms, r->duration_ms, "mark %zu", i);
        if (i + 1 < r->nmarks) {
            cr_expect_gt(r->marks[i + 1].start_ms, m->start_ms, "mark %zu", i + 1);
            cr_expect_leq(m->end_ms, r->marks[i + 1].start_ms, "mark %zu", i);
            cr_expect_gt(r->marks[i + 1].offset, m->offset, "mark %zu", i + 1);
        }
    }
}

static void expect_words(const char *text, const tts_result_t *r, const char *const *want, size_t n)
{
    cr_assert_eq(r->nmarks, n, "%zu marks for %zu words in '%s'", r->nmarks, n, text);
    for (size_t i = 0; i < n; i++)
        cr_expect_str_eq(word(text, &r->marks[i]), want[i], "mark %zu", i);
    expect_well_formed(r);
}

Test(tts, espeak_marks_every_word_and_writes_a_wav)
{
    const char *text = "Hello world. This is Fenta.";
    const char *want[] = {"Hello", "world", "This", "is", "Fenta"};
    char *path = path_in("hello.wav");
    tts_result_t r;
    synth_ok(NULL, text, path, &r);
    expect_words(text, &r, want, 5);
    cr_expect_str_eq(r.engine, "espeak-ng");
    cr_expect_not(r.estimated_timing);
    cr_expect_eq(r.sample_rate, 22050);
    cr_expect_gt(r.duration_ms, 1000);
    wav_t w = read_wav(path);
    cr_expect_eq(w.rate, 22050);
    cr_expect_eq((int64_t)(w.n * 1000 / 22050), r.duration_ms);
    char *probe = ffprobe(path);
    cr_expect_str_eq(probe, "pcm_s16le,22050");
    free(probe), free(w.pcm), free(path);
    tts_result_free(&r);
    cr_expect_null(r.marks);
    cr_expect_eq(r.nmarks, 0);
}

/* Onsets of speech measured in the PCM alone: a 10 ms window whose RMS rises
 * above the threshold after at least 150 ms of windows below it (the start
 * of the audio counts as silence). */
static size_t onsets(const wav_t *w, int64_t *out, size_t cap)
{
    size_t win = (size_t)w->rate / 100, nwin = w->n / win, n = 0, quiet = 1000;
    double *r = malloc(nwin * sizeof *r), peak = 0;
    for (size_t i = 0; i < nwin; i++) {
        double acc = 0;
        for (size_t k = 0; k < win; k++)
            acc += (double)w->pcm[i * win + k] * w->pcm[i * win + k];
        r[i] = sqrt(acc / (double)win);
        peak = fmax(peak, r[i]);
    }
    double thr = fmax(200.0, 0.04 * peak);
    for (size_t i = 0; i < nwin; i++) {
        if (r[i] < thr) {
            quiet++;
            continue;
        }
        if (quiet >= 15 && n < cap)
            out[n++] = (int64_t)(i * 10);
        quiet = 0;
    }
    free(r);
    return n;
}

Test(tts, sentence_starts_match_the_voice_onsets)
{
    const char *text = "The weather is lovely today. We walked down to the river. "
                       "Birds were singing in the old trees. Then it started to rain.";
    char *path = path_in("sync.wav");
    tts_result_t r;
    synth_ok(NULL, text, path, &r);
    wav_t w = read_wav(path);
    int64_t on[64];
    size_t non = onsets(&w, on, 64);
    size_t starts[] = {0, 0, 0, 0}, ns = 0; /* byte offsets of the sentences */
    for (const char *p = text; *p; p++)
        if (p == text || (p[-1] == ' ' && p[-2] == '.'))
            starts[ns++] = (size_t)(p - text);
    cr_assert_eq(ns, 4);
    cr_expect_eq(non, ns, "the voice pauses only between sentences: %zu onsets", non);
    for (size_t s = 0; s < ns; s++) {
        const tts_mark_t *m = NULL;
        for (size_t i = 0; i < r.nmarks; i++)
            if (r.marks[i].offset == starts[s])
                m = &r.marks[i];
        cr_assert_not_null(m, "no mark for sentence %zu", s);
        int64_t best = INT64_MAX;
        for (size_t k = 0; k < non; k++)
            if (llabs(on[k] - m->start_ms) < llabs(best))
                best = on[k] - m->start_ms;
        cr_expect_leq(llabs(best), 50, "sentence %zu ('%s' at %lld ms) is %lld ms from an onset", s,
                      word(text, m), (long long)m->start_ms, (long long)best);
    }
    free(w.pcm), free(path);
    tts_result_free(&r);
}

Test(tts, pauses_are_not_part_of_words)
{
    const char *text = "Hello world. This is Fenta.";
    char *path = path_in("pause.wav");
    tts_result_t r;
    synth_ok(NULL, text, path, &r);
    cr_assert_eq(r.nmarks, 5);
    wav_t w = read_wav(path);
    /* "world" ends where its sound ends, well before "This" starts after the
     * sentence pause, and the audio between the two is quiet. */
    const tts_mark_t *world = &r.marks[1], *this = &r.marks[2], *last = &r.marks[4];
    cr_expect_gt(this->start_ms - world->end_ms, 100, "world ends %lld, This starts %lld",
                 (long long)world->end_ms, (long long)this->start_ms);
    double acc = 0;
    size_t a = (size_t)(world->end_ms + 10) * 22050 / 1000,
           b = (size_t)this->start_ms * 22050 / 1000;
    for (size_t i = a; i < b; i++)
        acc += (double)w.pcm[i] * w.pcm[i];
    cr_expect_lt(sqrt(acc / (double)(b - a)), 100.0, "the gap between sentences is silent");
    /* The last word ends with its sound, not at the end of the file's tail. */
    cr_expect_gt(last->end_ms, last->start_ms + 100);
    cr_expect_leq(last->end_ms, r.duration_ms);
    free(w.pcm), free(path);
    tts_result_free(&r);
}

Test(tts, numbers_and_symbols_give_one_mark_per_written_word)
{
    const char *t1 = "I have 3 apples";
    const char *w1[] = {"I", "have", "3", "apples"};
    const char *t2 = "It costs $1,234.56 on 2024-01-05.";
    const char *w2[] = {"It", "costs", "$1,234.56", "on", "2024-01-05"};
    char *path = path_in("numbers.wav");
    tts_result_t r;
    synth_ok(NULL, t1, path, &r);
    expect_words(t1, &r, w1, 4);
    tts_result_free(&r);
    synth_ok(NULL, t2, path, &r);
    expect_words(t2, &r, w2, 5);
    tts_result_free(&r);
    free(path);
}

/* espeak-ng's events for phrases, abbreviations and emoji do not line up with
 * written words (see tts_espeak.c); the marks still do, one per word. */
Test(tts, engine_quirks_still_give_one_mark_per_word)
{
    const char *t1 = "It was ad hoc and per se a priori, et cetera.";
    const char *w1[] = {"It", "was", "ad",     "hoc", "and",   "per",
                        "se", "a",   "priori", "et",  "cetera"};
    const char *t2 = "a cappella déjà vu vice versa";
    const char *w2[] = {"a", "cappella", "déjà", "vu", "vice", "versa"};
    const char *t3 = "U.S.A. e.g. i.e. etc.";
    const char *w3[] = {"U.S.A", "e.g", "i.e", "etc"};
    const char *t4 = "Hello \xF0\x9F\x99\x82 world";
    const char *w4[] = {"Hello", "\xF0\x9F\x99\x82", "world"};
    char *path = path_in("quirks.wav");
    tts_result_t r;
    synth_ok(NULL, t1, path, &r);
    expect_words(t1, &r, w1, 11);
    tts_result_free(&r);
    synth_ok(NULL, t2, path, &r);
    expect_words(t2, &r, w2, 6);
    tts_result_free(&r);
    synth_ok(NULL, t3, path, &r);
    expect_words(t3, &r, w3, 4);
    tts_result_free(&r);
    synth_ok(NULL, t4, path, &r);
    expect_words(t4, &r, w4, 3);
    /* The emoji is read out as several words; "world" comes after them. */
    cr_expect_gt(r.marks[2].start_ms - r.marks[1].start_ms, 500);
    tts_result_free(&r);
    free(path);
}

Test(tts, offsets_are_bytes_in_multibyte_text)
{
    const char *text = "Café naïve résumé, déjà vu.";
    const char *want[] = {"Café", "naïve", "résumé", "déjà", "vu"};
    char *path = path_in("utf8.wav");
    tts_result_t r;
    synth_ok(NULL, text, path, &r);
    expect_words(text, &r, want, 5);
    cr_expect_eq(r.marks[1].offset, (size_t)(strstr(text, "naïve") - text));
    cr_expect_eq(r.marks[4].offset, (size_t)(strstr(text, "vu") - text));
    tts_result_free(&r);
    free(path);
}

Test(tts, faster_speech_is_shorter)
{
    const char *text = "A sentence of moderate length, spoken twice at two speeds.";
    char *path = path_in("speed.wav");
    tts_result_t slow, fast;
    synth_ok(&(tts_config_t){.speed = 1.0}, text, path, &slow);
    synth_ok(&(tts_config_t){.speed = 2.0}, text, path, &fast);
    cr_expect_lt(fast.duration_ms, slow.duration_ms * 3 / 4, "%lld vs %lld",
                 (long long)fast.duration_ms, (long long)slow.duration_ms);
    cr_expect_eq(fast.nmarks, slow.nmarks);
    tts_result_free(&slow), tts_result_free(&fast);
    free(path);
}

static void expect_refused(const tts_config_t *c, const char *text, int code, const char *needle)
{
    char *path = path_in("keep.wav");
    FILE *f = fopen(path, "w");
    fputs("keep", f);
    fclose(f);
    tts_result_t r = {.nmarks = 99};
    char err[256] = "";
    cr_expect_eq(tts_synth(c, text, path, &r, err, sizeof err), code, "%s", err);
    cr_expect(strstr(err, needle) != NULL, "'%s' should mention '%s'", err, needle);
    cr_expect_null(r.marks);
    cr_expect_eq(r.nmarks, 0);
    char buf[16] = "";
    f = fopen(path, "r");
    cr_expect(fgets(buf, sizeof buf, f) && strcmp(buf, "keep") == 0, "the file is untouched");
    fclose(f);
    free(path);
}

Test(tts, bad_input_is_refused_with_a_message)
{
    expect_refused(NULL, "", FENTA_EINVAL, "empty");
    expect_refused(NULL, NULL, FENTA_EINVAL, "empty");
    expect_refused(NULL, "Hello \xff world", FENTA_EINVAL, "UTF-8");
    expect_refused(NULL, "over\xc0\xaflong", FENTA_EINVAL, "UTF-8");
    expect_refused(NULL, "cut \xe2\x82", FENTA_EINVAL, "UTF-8");
    expect_refused(NULL, "bell\x07", FENTA_EINVAL, "control");
    expect_refused(NULL, "  \n\t ", FENTA_EINVAL, "no words");
    expect_refused(NULL, "... !!", FENTA_EINVAL, "no words");
    expect_refused(&(tts_config_t){.speed = 3.0}, "Hello", FENTA_EINVAL, "speed");
    expect_refused(&(tts_config_t){.speed = NAN}, "Hello", FENTA_EINVAL, "speed");
    expect_refused(&(tts_config_t){.timeout_ms = -1}, "Hello", FENTA_EINVAL, "timeout");
    expect_refused(&(tts_config_t){.espeak_voice = "xx-nowhere"}, "Hello", FENTA_EINVAL,
                   "xx-nowhere");
    char *big = malloc(TTS_MAX_TEXT_BYTES + 2);
    memset(big, 'a', TTS_MAX_TEXT_BYTES + 1);
    big[TTS_MAX_TEXT_BYTES + 1] = '\0';
    expect_refused(NULL, big, FENTA_ETOOBIG, "bytes");
    free(big);
}

Test(tts, unwritable_path_names_the_file_and_leaves_nothing)
{
    tts_result_t r;
    char err[256] = "";
    int rc = tts_synth(NULL, "Hello", "/nonexistent-fenta-dir/out.wav", &r, err, sizeof err);
    cr_expect_eq(rc, FENTA_EIO, "%d %s", rc, err);
    cr_expect(strstr(err, "/nonexistent-fenta-dir/out.wav") != NULL, "%s", err);
    cr_expect_null(r.marks);
    /* A success leaves exactly the WAV in the directory: no temporary file. */
    char *path = path_in("only.wav");
    synth_ok(NULL, "Hello", path, &r);
    tts_result_free(&r);
    DIR *d = opendir(dir);
    struct dirent *e;
    int files = 0;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') {
            files++;
            cr_expect_str_eq(e->d_name, "only.wav");
        }
    closedir(d);
    cr_expect_eq(files, 1);
    free(path);
    tts_result_free(NULL);
}

typedef struct job {
    const char *text;
    char *path;
    tts_result_t r;
    int rc;
    char err[256];
} job_t;

static void *run_job(void *arg)
{
    job_t *j = arg;
    j->rc = tts_synth(NULL, j->text, j->path, &j->r, j->err, sizeof j->err);
    return NULL;
}

Test(tts, two_threads_speak_at_once)
{
    job_t j[2] = {
        {.text = "The first thread speaks this sentence.", .path = path_in("a.wav")},
        {.text = "And the second one says something else entirely.", .path = path_in("b.wav")}};
    pthread_t t[2];
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < 2; i++)
            cr_assert_eq(pthread_create(&t[i], NULL, run_job, &j[i]), 0);
        for (int i = 0; i < 2; i++)
            pthread_join(t[i], NULL);
        for (int i = 0; i < 2; i++) {
            cr_expect_eq(j[i].rc, 0, "thread %d: %s", i, j[i].err);
            tts_result_t alone;
            synth_ok(NULL, j[i].text, j[i].path, &alone); /* the same text, alone */
            cr_expect_eq(j[i].r.nmarks, alone.nmarks, "thread %d", i);
            for (size_t k = 0; k < alone.nmarks && k < j[i].r.nmarks; k++)
                cr_expect_eq(j[i].r.marks[k].offset, alone.marks[k].offset);
            tts_result_free(&alone);
            tts_result_free(&j[i].r);
        }
    }
    free(j[0].path), free(j[1].path);
}
