/* test_asr.c - asr_transcribe (and audio_pcm under it) on real speech: ten
 * espeak-ng sentences laid end to end with known pauses, so we know where
 * each sentence starts. Checks what a user of the asr path would: most words
 * are recognised, the script aligned to them starts each sentence where it
 * was said, compressed and video inputs work, silence gives no words, and
 * every file we cannot use is refused with a message naming it.
 *
 * Measured with pocketsphinx 5prealpha (en-us) on the en-us+klatt2 voice at
 * 175 wpm: 84 of 98 words recognised (86%), sentence starts 1 to 84 ms off
 * (21 on average); the en-us+f2 voice gave 80 of 98 and at most 100 ms. The
 * thresholds below sit well under that: synthetic speech is not what the
 * model was trained on, and a new espeak-ng may sound different.
 * These tests take a few seconds each (the model loads in every test
 * process, and decoding runs at about a third of real time). No test sets
 * .timeout: Criterion 2.4.1 leaks a timer record in its runner when tests
 * with timeouts run in parallel, which LeakSanitizer reports. */
#include "actors/speech/asr.h"
#include "actors/speech/asr_align.h"
#include "actors/media/audio_pcm.h"
#include "runtime/error.h"
#include "tests/support/fixtures.h"
#include <criterion/criterion.h>
#include <criterion/hooks.h>
#include <criterion/logging.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ENV_DIR "FENTA_TEST_ASR_DIR"
#define VOICE "en-us+klatt2" /* of espeak-ng's voices, the one pocketsphinx hears best */
#define NSENT 10

static const char *const SENTENCES[NSENT] = {
    "The quick brown fox jumps over the lazy dog.",
    "Please call me tomorrow morning at the office.",
    "We are going to the market to buy some fresh vegetables.",
    "The weather today is sunny with a light breeze.",
    "I would like to order a large pizza with extra cheese.",
    "Our team will present the new design at the meeting next week.",
    "She opened the window and looked at the garden.",
    "The train leaves the station every hour on weekdays.",
    "My brother works as a doctor in a small hospital.",
    "Thank you very much for your help with this project."};
/* Silence before each sentence, ms: short and long pauses, as people make. */
static const int PAUSE_MS[NSENT] = {1000, 500, 1500, 400, 2000, 700, 1200, 600, 3000, 800};
#define TAIL_MS 1000

static const char *fixture_dir;

/* Runs a shell command in the fixture dir; any failure stops the run. */
static void sh(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    if (fx_sh(fixture_dir, "%s", cmd) != 0) {
        fprintf(stderr, "fixture command failed: %s\n", cmd);
        exit(1);
    }
}

/* The samples of a 16-bit PCM WAV file (any rate, mono), walking its
 * chunks; exits on anything else, since we made the file ourselves. */
static int16_t *read_wav(const char *path, size_t *n, int *rate)
{
    FILE *f = fopen(path, "rb");
    unsigned char h[12], ch[8];
    if (!f || fread(h, 1, 12, f) != 12 || memcmp(h, "RIFF", 4) || memcmp(h + 8, "WAVE", 4))
        exit(1);
    *rate = 0;
    while (fread(ch, 1, 8, f) == 8) {
        uint32_t len = ch[4] | ch[5] << 8 | ch[6] << 16 | (uint32_t)ch[7] << 24;
        if (memcmp(ch, "fmt ", 4) == 0) {
            unsigned char fmt[16];
            if (len < 16 || fread(fmt, 1, 16, f) != 16 || fmt[2] != 1 || fmt[14] != 16)
                exit(1); /* mono, 16 bits */
            *rate = fmt[4] | fmt[5] << 8 | fmt[6] << 16;
            fseek(f, (long)(len - 16 + (len & 1)), SEEK_CUR);
        } else if (memcmp(ch, "data", 4) == 0) {
            int16_t *s = malloc(len + 2);
            *n = fread(s, 2, len / 2, f);
            fclose(f);
            return s;
        } else {
            fseek(f, (long)(len + (len & 1)), SEEK_CUR);
        }
    }
    exit(1);
}

static void write_wav(const char *path, const int16_t *s, size_t n, int rate)
{
    uint32_t data = (uint32_t)(n * 2), riff = 36 + data, br = (uint32_t)rate * 2;
    unsigned char h[44] = {'R', 'I', 'F', 'F', 0,  0, 0,   0,   'W', 'A', 'V', 'E', 'f', 'm', 't',
                           ' ', 16,  0,   0,   0,  1, 0,   1,   0,   0,   0,   0,   0,   0,   0,
                           0,   0,   2,   0,   16, 0, 'd', 'a', 't', 'a', 0,   0,   0,   0};
    for (int i = 0; i < 4; i++) {
        h[4 + i] = (unsigned char)(riff >> (8 * i));
        h[24 + i] = (unsigned char)((uint32_t)rate >> (8 * i));
        h[28 + i] = (unsigned char)(br >> (8 * i));
        h[40 + i] = (unsigned char)(data >> (8 * i));
    }
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(h, 1, 44, f) != 44 || fwrite(s, 2, n, f) != n || fclose(f) != 0)
        exit(1);
}

/* speech.wav: the sentences, each after its pause; starts.txt: where each
 * one starts, ms. */
static void make_speech(void)
{
    int16_t *all = NULL;
    size_t len = 0;
    int rate = 0;
    FILE *starts = fopen("starts.txt", "w");
    for (int i = 0; i < NSENT; i++) {
        sh("espeak-ng -v %s -s 175 -w s%d.wav '%s'", VOICE, i, SENTENCES[i]);
        char name[64];
        snprintf(name, sizeof name, "%s/s%d.wav", fixture_dir, i);
        size_t n;
        int16_t *s = read_wav(name, &n, &rate);
        size_t gap = (size_t)PAUSE_MS[i] * (size_t)rate / 1000;
        all = realloc(all, (len + gap + n + (size_t)rate) * sizeof *all);
        memset(all + len, 0, gap * sizeof *all);
        len += gap;
        fprintf(starts, "%lld\n", (long long)len * 1000 / rate);
        memcpy(all + len, s, n * sizeof *all);
        len += n;
        free(s);
    }
    memset(all + len, 0, (size_t)rate * TAIL_MS / 1000 * sizeof *all);
    len += (size_t)rate * TAIL_MS / 1000;
    fclose(starts);
    char path[1024];
    snprintf(path, sizeof path, "%s/speech.wav", fixture_dir);
    write_wav(path, all, len, rate);
    free(all);
}

ReportHook(PRE_ALL)(struct criterion_test_set *set)
{
    (void)set;
    fixture_dir = fx_shared_dir_make(ENV_DIR, "asr");
    char cwd[1024];
    if (!getcwd(cwd, sizeof cwd) || chdir(fixture_dir) != 0)
        exit(1);
    make_speech();
    if (chdir(cwd) != 0)
        exit(1);
#define FF "ffmpeg -nostdin -y -loglevel error "
    sh(FF "-i s1.wav -c:a libmp3lame -b:a 64k s1.mp3");
    sh(FF "-i s1.wav -c:a aac s1.m4a");
    sh(FF "-f lavfi -i testsrc2=size=160x120:rate=10 -i s1.wav -c:v libx264 -pix_fmt yuv420p "
          "-preset ultrafast -c:a aac -shortest s1.mp4");
    sh(FF "-i s1.wav -ac 2 -ar 48000 s1_stereo48k.wav");
    sh(FF "-f lavfi -i testsrc2=size=160x120:rate=10:duration=1 -c:v libx264 -pix_fmt yuv420p "
          "-preset ultrafast mute.mp4");
    sh(FF "-f lavfi -i anullsrc=r=16000:cl=mono -t 3 silence.wav");
    sh(FF "-f lavfi -i anoisesrc=color=white:amplitude=0.002:duration=3:seed=7 -ar 16000 "
          "hiss.wav");
    sh(FF "-f lavfi -i anullsrc=r=8000:cl=mono -t 1860 -c:a libmp3lame -b:a 8k long.mp3");
    sh("printf 'These are my notes, not a recording.\\n' > notes.wav && : > empty.wav");
    /* A WAV header announcing no samples: valid, and nothing in it. */
    static const int16_t none[1];
    char path[1024];
    snprintf(path, sizeof path, "%s/nothing.wav", fixture_dir);
    write_wav(path, none, 0, 16000);
}

ReportHook(POST_ALL)(struct criterion_global_stats *stats)
{
    (void)stats;
    fx_shared_dir_remove();
}

static const char *fixture(const char *name)
{
    return fx_shared_path(ENV_DIR, name);
}

/* ---- helpers ---------------------------------------------------------------------- */

typedef struct script {
    char *words[256];    /* the sentences' words as written, punctuation kept */
    size_t n;            /* how many */
    size_t first[NSENT]; /* index of each sentence's first word */
} script_t;

static void script_of(const char *const *sentences, int nsent, script_t *s)
{
    s->n = 0;
    for (int i = 0; i < nsent; i++) {
        s->first[i] = s->n;
        char *copy = strdup(sentences[i]), *save = NULL;
        for (char *t = strtok_r(copy, " ", &save); t; t = strtok_r(NULL, " ", &save))
            s->words[s->n++] = strdup(t);
        free(copy);
    }
}

static void script_free(script_t *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->words[i]);
}

/* Lower case, letters and apostrophes: how the recogniser spells words. */
static void lower(const char *w, char *out, size_t cap)
{
    size_t k = 0;
    for (; *w && k + 1 < cap; w++)
        if ((*w >= 'a' && *w <= 'z') || *w == '\'')
            out[k++] = *w;
        else if (*w >= 'A' && *w <= 'Z')
            out[k++] = (char)(*w - 'A' + 'a');
    out[k] = '\0';
}

/* How many script words were recognised: the longest common subsequence of
 * the script's words and the heard ones. */
static size_t recognised(const script_t *s, const asr_word_t *w, size_t n)
{
    size_t *prev = calloc(n + 1, sizeof *prev), *cur = calloc(n + 1, sizeof *cur);
    for (size_t i = 1; i <= s->n; i++) {
        char a[64];
        lower(s->words[i - 1], a, sizeof a);
        for (size_t j = 1; j <= n; j++) {
            size_t best = prev[j] > cur[j - 1] ? prev[j] : cur[j - 1];
            if (strcmp(a, w[j - 1].text) == 0 && prev[j - 1] + 1 > best)
                best = prev[j - 1] + 1;
            cur[j] = best;
        }
        size_t *t = prev;
        prev = cur, cur = t;
    }
    size_t r = prev[n];
    free(prev);
    free(cur);
    return r;
}

/* Time order, no overlap, inside the audio, no fillers or "(2)" variants. */
static void expect_well_formed(const asr_word_t *w, size_t n, int64_t audio_ms)
{
    int64_t prev = 0;
    for (size_t i = 0; i < n; i++) {
        cr_expect(w[i].start_ms >= prev && w[i].end_ms > w[i].start_ms && w[i].end_ms <= audio_ms,
                  "word %zu '%s' [%lld, %lld) after %lld", i, w[i].text, (long long)w[i].start_ms,
                  (long long)w[i].end_ms, (long long)prev);
        cr_expect(w[i].text[0] && !strpbrk(w[i].text, "<>[]()+"), "filler or variant: %s",
                  w[i].text);
        prev = w[i].end_ms;
    }
}

static void transcribe(const char *name, asr_word_t **w, size_t *n, int64_t *ms)
{
    char err[512];
    int rc = asr_transcribe(NULL, fixture(name), w, n, ms, err, sizeof err);
    cr_assert_eq(rc, 0, "%s: %d %s", name, rc, err);
}

/* ---- tests ------------------------------------------------------------------------- */

Test(asr, recognises_most_words_of_clear_speech)
{
    asr_word_t *w;
    size_t n;
    int64_t ms;
    transcribe("speech.wav", &w, &n, &ms);
    script_t s;
    script_of(SENTENCES, NSENT, &s);
    size_t hit = recognised(&s, w, n);
    cr_log_info("recognised %zu of %zu script words (%zu heard)", hit, s.n, n);
    cr_expect_geq(hit * 100, s.n * 60, "only %zu of %zu words recognised", hit, s.n);
    cr_expect_leq(n, s.n * 3 / 2, "%zu words heard for %zu said", n, s.n);
    expect_well_formed(w, n, ms);
    int64_t total = TAIL_MS;
    for (int i = 0; i < NSENT; i++)
        total += PAUSE_MS[i];
    cr_expect_gt(ms, total + 20000, "audio_ms %lld", (long long)ms); /* 10 sentences > 20 s */
    asr_words_free(&w, n);
    cr_expect_null(w);
    script_free(&s);
    asr_unload();
}

Test(asr, aligned_script_starts_each_sentence_where_it_was_said)
{
    asr_word_t *w;
    size_t n;
    int64_t ms;
    transcribe("speech.wav", &w, &n, &ms);
    script_t s;
    script_of(SENTENCES, NSENT, &s);
    int64_t st[256], en[256];
    char err[256];
    cr_assert_eq(asr_align((const char *const *)s.words, s.n, w, n, ms, st, en, err, sizeof err), 0,
                 "%s", err);
    FILE *f = fopen(fixture("starts.txt"), "r");
    cr_assert_not_null(f);
    int64_t worst = 0, sum = 0;
    for (int i = 0; i < NSENT; i++) {
        long long want;
        cr_assert_eq(fscanf(f, "%lld", &want), 1);
        int64_t got = st[s.first[i]], e = got > want ? got - want : want - got;
        cr_expect_leq(e, 150, "sentence %d '%s' starts at %lld, said at %lld", i,
                      s.words[s.first[i]], (long long)got, want);
        worst = e > worst ? e : worst;
        sum += e;
    }
    fclose(f);
    cr_log_info("sentence starts off by %lld ms on average, %lld at worst",
                (long long)(sum / NSENT), (long long)worst);
    for (size_t i = 0; i < s.n; i++)
        cr_expect(en[i] > st[i] && (i == 0 || st[i] >= en[i - 1]) && en[i] <= ms);
    asr_words_free(&w, n);
    script_free(&s);
    asr_unload();
}

/* mp3 and AAC pad and prime the signal; audio_pcm must still give the same
 * length, and the recogniser the same words, as from the WAV. */
Test(asr, decodes_mp3_aac_mp4_and_stereo_48k)
{
    static const char *const names[] = {"s1.wav", "s1.mp3", "s1.m4a", "s1.mp4", "s1_stereo48k.wav"};
    script_t s;
    script_of(&SENTENCES[1], 1, &s);
    int64_t wav_ms = 0;
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        int16_t *pcm;
        size_t ns;
        char err[512];
        cr_assert_eq(audio_pcm_decode(fixture(names[k]), &pcm, &ns, err, sizeof err), 0, "%s", err);
        int64_t pcm_ms = (int64_t)ns * 1000 / AUDIO_PCM_RATE;
        audio_pcm_free(&pcm);
        cr_expect_null(pcm);
        asr_word_t *w;
        size_t n;
        int64_t ms;
        transcribe(names[k], &w, &n, &ms);
        cr_expect_eq(ms, pcm_ms);
        if (k == 0)
            wav_ms = ms;
        cr_expect(ms >= wav_ms - 30 && ms <= wav_ms + 100, "%s lasts %lld ms, the WAV %lld",
                  names[k], (long long)ms, (long long)wav_ms);
        size_t hit = recognised(&s, w, n);
        cr_log_info("%s: %zu of %zu words", names[k], hit, s.n);
        cr_expect_geq(hit * 2, s.n, "%s: %zu of %zu words recognised", names[k], hit, s.n);
        expect_well_formed(w, n, ms);
        asr_words_free(&w, n);
    }
    script_free(&s);
}

Test(asr, silence_and_a_quiet_hiss_give_no_words)
{
    static const char *const names[] = {"silence.wav", "hiss.wav"};
    for (size_t k = 0; k < 2; k++) {
        asr_word_t *w = (asr_word_t *)1;
        size_t n = 99;
        int64_t ms;
        transcribe(names[k], &w, &n, &ms);
        cr_expect_eq(n, 0u, "%s: %zu words", names[k], n);
        cr_expect_null(w);
        cr_expect(ms >= 2990 && ms <= 3010, "%s: %lld ms", names[k], (long long)ms);
    }
}

/* The cached decoder must not carry anything from one recording to the next. */
Test(asr, same_file_twice_gives_the_same_words)
{
    asr_word_t *a, *b;
    size_t na, nb;
    int64_t ms;
    transcribe("s1.wav", &a, &na, &ms);
    transcribe("s3.wav", &b, &nb, &ms);
    asr_words_free(&b, nb);
    transcribe("s1.wav", &b, &nb, &ms);
    cr_assert_eq(na, nb);
    for (size_t i = 0; i < na; i++) {
        cr_expect_str_eq(a[i].text, b[i].text);
        cr_expect_eq(a[i].start_ms, b[i].start_ms);
        cr_expect_eq(a[i].end_ms, b[i].end_ms);
    }
    asr_words_free(&a, na);
    asr_words_free(&b, nb);
    asr_unload();
}

/* A file that must be refused: the code, the file named, the reason given,
 * nothing returned. */
static void expect_refused(const char *name, int code, const char *reason)
{
    const char *path = fixture(name);
    asr_word_t *w = (asr_word_t *)1;
    size_t n = 99;
    int64_t ms = 99;
    char err[512];
    int rc = asr_transcribe(NULL, path, &w, &n, &ms, err, sizeof err);
    cr_assert_eq(rc, code, "%s: got %d (%s), want %d", name, rc, err, code);
    cr_expect_not_null(strstr(err, path), "message does not name the file: %s", err);
    cr_expect_not_null(strstr(err, reason), "message lacks '%s': %s", reason, err);
    cr_expect(w == NULL && n == 0 && ms == 0);
}

Test(asr, refuses_text_file)
{
    expect_refused("notes.wav", FENTA_EINVAL, "not a media file");
}

Test(asr, refuses_empty_file)
{
    expect_refused("empty.wav", FENTA_EINVAL, "empty file");
}

Test(asr, refuses_video_without_audio)
{
    expect_refused("mute.mp4", FENTA_EINVAL, "no audio stream");
}

Test(asr, refuses_zero_length_audio)
{
    expect_refused("nothing.wav", FENTA_EINVAL, "zero duration");
}

Test(asr, refuses_missing_file)
{
    expect_refused("no-such.wav", FENTA_ENOTFOUND, "no such file");
}

Test(asr, refuses_more_than_30_minutes)
{
    expect_refused("long.mp3", FENTA_ETOOBIG, "longer than 30 minutes");
}

Test(asr, missing_model_is_named)
{
    const char *models = "/nonexistent/asr-model"; /* the asr_model_dir setting */
    asr_word_t *w;
    size_t n;
    int64_t ms;
    char err[512];
    int rc = asr_transcribe(models, fixture("s1.wav"), &w, &n, &ms, err, sizeof err);
    cr_expect_eq(rc, FENTA_EUNAVAILABLE, "%d %s", rc, err);
    cr_expect_not_null(strstr(err, "/nonexistent/asr-model/en-us"), "%s", err);
    cr_expect_not_null(strstr(err, "missing"), "%s", err);
    /* Silence needs no model, so it still succeeds. */
    cr_expect_eq(asr_transcribe(models, fixture("silence.wav"), &w, &n, &ms, err, sizeof err), 0,
                 "%s", err);
}

Test(asr, bad_arguments)
{
    asr_word_t *w;
    size_t n;
    int64_t ms;
    char err[64];
    cr_expect_eq(asr_transcribe(NULL, NULL, &w, &n, &ms, err, sizeof err), FENTA_EINVAL);
    cr_expect_eq(asr_transcribe(NULL, fixture("s1.wav"), NULL, &n, &ms, err, sizeof err),
                 FENTA_EINVAL);
    cr_expect_eq(asr_transcribe(NULL, fixture("empty.wav"), &w, &n, &ms, NULL, 0), FENTA_EINVAL);
    asr_words_free(NULL, 3);
    w = NULL;
    asr_words_free(&w, 0);
    asr_unload(); /* nothing loaded: a no-op */
}
