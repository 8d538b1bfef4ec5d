/* tts_espeak.c - the offline engine of tts.h: espeak-ng speaks the text into
 * memory and reports where each word starts in its audio.
 *
 * The only file that includes espeak-ng. espeak-ng is one global synthesiser
 * (voice, rate, callback, buffers are process-wide), so it is initialised
 * once and every use is serialised by one mutex; only the synthesis runs
 * under it, the marks and the WAV file are made after it is released.
 *
 * What espeak-ng 1.51's events mean (read in speech.c, MarkerEvent and
 * Synthesize, and checked on the Debian 1.51 package):
 *  - event->sample is the ABSOLUTE sample index, from the start of this
 *    espeak_Synth call's audio, where the event happens: MarkerEvent sets it
 *    to count_samples (the samples already handed to the callback; reset to
 *    0 at the start of each Synthesize) plus the position inside the buffer
 *    being filled. It always falls inside the buffer the event arrives with.
 *  - event->audio_position is the same point in ms, truncated to an int
 *    (sample * 1000 / rate); we use sample for sub-millisecond precision.
 *  - text_position is a 1-based CHARACTER (code point) index into the
 *    input, and length a count of characters, neither of them bytes; for
 *    numbers and abbreviations espeak emits several word events whose
 *    positions step one character at a time through the written token, and
 *    an event can point at the space before a word. tts__marks_build folds
 *    all of that into one mark per written token.
 *  - the first word of a sentence gets its event at the END of the pause
 *    before it (the pause belongs to the previous clause), so the event
 *    lines up with the onset of the voice; a word's end is therefore found
 *    in the audio, not taken as the next event. */
#include "actors/speech/tts.h"
#include "runtime/error.h"
#include "runtime/vec.h"

#include <espeak-ng/speak_lib.h>

#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t espeak_lock = PTHREAD_MUTEX_INITIALIZER;
static int espeak_rate;     /* espeak_Initialize's answer (22050); <= 0 when it failed */
static locale_t utf8_ctype; /* the LC_CTYPE espeak-ng needs, for this thread only */

/* espeak_Initialize calls setlocale(LC_CTYPE, "C.UTF-8") for the whole
 * process (its wctype calls misclassify non-ASCII letters in the "C"
 * locale). We give the process its locale back and instead switch only the
 * synthesising thread to a UTF-8 LC_CTYPE with uselocale() while espeak-ng
 * runs. */
static void espeak_init(void)
{
    const char *cur = setlocale(LC_CTYPE, NULL);
    char *saved = cur ? strdup(cur) : NULL;
    espeak_rate = espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, NULL, espeakINITIALIZE_DONT_EXIT);
    if (saved) {
        setlocale(LC_CTYPE, saved);
        free(saved);
    }
    utf8_ctype = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
    if (!utf8_ctype)
        utf8_ctype = newlocale(LC_CTYPE_MASK, "en_US.UTF-8", (locale_t)0);
}

typedef struct synth {
    int16_t *pcm;         /* the audio so far */
    size_t n, cap;        /* samples in it, and room */
    tts__timing_t *words; /* one per word event, in time order */
    size_t nwords, wcap;  /* how many, and room */
    const size_t *cp_off; /* byte offset of each code point of the text */
    size_t ncp;           /* code points in the text */
    size_t text_len;      /* bytes in the text */
    int rate;             /* Hz */
    bool nomem;           /* a growth failed: synthesis was stopped */
} synth_t;

/* espeak-ng's SynthCallback: called with each buffer of audio and the events
 * that happen inside it; wav is NULL once at the end. Returning 1 stops the
 * synthesis. The synth_t comes back in every event's user_data (the list's
 * terminator carries it too). */
static int on_audio(short *wav, int numsamples, espeak_EVENT *events)
{
    synth_t *s = events ? events->user_data : NULL;
    if (!s)
        return 1;
    size_t before = s->n;
    size_t len = wav && numsamples > 0 ? (size_t)numsamples : 0;
    for (espeak_EVENT *ev = events; ev->type != espeakEVENT_LIST_TERMINATED; ev++) {
        if (ev->type != espeakEVENT_WORD || ev->text_position < 1)
            continue;
        /* Defensive: an event is inside its buffer; never let a stray one
         * land outside the audio it came with. */
        size_t at = ev->sample < 0 ? before : (size_t)ev->sample;
        if (at < before)
            at = before;
        if (at > before + len)
            at = before + len;
        size_t cp = (size_t)ev->text_position - 1; /* 1-based code point index */
        size_t off = cp < s->ncp ? s->cp_off[cp] : s->text_len;
        if (vec_reserve(s->words, s->wcap, s->nwords + 1) != 0) {
            s->nomem = true;
            return 1;
        }
        s->words[s->nwords++] =
            (tts__timing_t){off, (int64_t)((uint64_t)at * 1000 / (uint64_t)s->rate), -1};
    }
    if (len > 0) {
        if (vec_reserve(s->pcm, s->cap, s->n + len) != 0) {
            s->nomem = true;
            return 1;
        }
        memcpy(s->pcm + s->n, wav, len * sizeof *wav);
        s->n += len;
    }
    return 0;
}

/* Byte offset of each code point of (valid UTF-8) text; *ncp set. */
static size_t *code_point_offsets(const char *text, size_t len, size_t *ncp)
{
    size_t *off = malloc((len + 1) * sizeof *off), n = 0;
    if (!off)
        return NULL;
    for (size_t i = 0; i < len; i++)
        if (((unsigned char)text[i] & 0xC0) != 0x80)
            off[n++] = i;
    *ncp = n;
    return off;
}

/* Runs espeak-ng under the lock; returns 0 or a Fenta code with errbuf set. */
static int speak(const tts_config_t *cfg, const char *text, synth_t *s, char *errbuf, size_t errlen)
{
    pthread_mutex_lock(&espeak_lock);
    locale_t prev = utf8_ctype ? uselocale(utf8_ctype) : (locale_t)0;
    int rc = 0;
    espeak_SetSynthCallback(on_audio);
    espeak_ERROR er = espeak_SetVoiceByName(cfg->espeak_voice);
    if (er != EE_OK) {
        rc =
            fenta_fail(errbuf, errlen, FENTA_EINVAL, "espeak-ng: no voice '%s'", cfg->espeak_voice);
        goto out;
    }
    /* espeakRATE_NORMAL (175 words per minute) is speed 1.0. */
    espeak_SetParameter(espeakRATE, (int)lround(espeakRATE_NORMAL * cfg->speed), 0);
    er = espeak_Synth(text, strlen(text) + 1, 0, POS_CHARACTER, 0, espeakCHARS_UTF8, NULL, s);
    if (s->nomem)
        rc = fenta_fail(errbuf, errlen, FENTA_ENOMEM, "espeak-ng: out of memory");
    else if (er != EE_OK)
        rc = fenta_fail(errbuf, errlen, FENTA_EIO, "espeak-ng: synthesis failed (error %d)",
                        (int)er);
out:
    if (utf8_ctype)
        uselocale(prev);
    pthread_mutex_unlock(&espeak_lock);
    return rc;
}

int tts__espeak_synth(const tts_config_t *cfg, const char *text, const char *wav_path,
                      tts_result_t *out, char *errbuf, size_t errlen)
{
    pthread_once(&init_once, espeak_init);
    if (espeak_rate <= 0)
        return fenta_fail(errbuf, errlen, FENTA_EUNAVAILABLE,
                          "espeak-ng: cannot initialise (is espeak-ng-data installed?)");
    synth_t s = {.rate = espeak_rate, .text_len = strlen(text)};
    size_t *cp_off = code_point_offsets(text, s.text_len, &s.ncp);
    if (!cp_off)
        return fenta_fail(errbuf, errlen, FENTA_ENOMEM, "espeak-ng: out of memory");
    s.cp_off = cp_off;
    int rc = speak(cfg, text, &s, errbuf, errlen);
    if (rc == 0 && s.n == 0)
        rc = fenta_fail(errbuf, errlen, FENTA_EIO, "espeak-ng: no audio for the text");
    if (rc == 0 && tts__marks_build(text, s.words, s.nwords, s.pcm, s.n, s.rate, out) != 0)
        rc = fenta_fail(errbuf, errlen, FENTA_ENOMEM, "espeak-ng: out of memory");
    if (rc == 0 && out->nmarks == 0) { /* audio but no word events: still time the words */
        tts_result_free(out);
        out->estimated_timing = true;
        if (tts__marks_spread(text, s.pcm, s.n, s.rate, out) != 0)
            rc = fenta_fail(errbuf, errlen, FENTA_ENOMEM, "espeak-ng: out of memory");
    }
    if (rc == 0)
        rc = tts__wav_write(wav_path, s.pcm, s.n, s.rate, errbuf, errlen);
    if (rc == 0) {
        out->duration_ms = (int64_t)((uint64_t)s.n * 1000 / (uint64_t)s.rate);
        out->sample_rate = s.rate;
        strcpy(out->engine, "espeak-ng");
    }
    free(cp_off);
    free(s.pcm);
    free(s.words);
    return rc;
}
