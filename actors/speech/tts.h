/* tts.h - text to speech: a script's text becomes a WAV file and the time
 * each of its written words is spoken.
 *
 * The voice half of the render engine's "tts" stage. Two engines sit behind
 * one call: espeak-ng, offline and the default (tts_espeak.c, the only file
 * that includes espeak-ng), and a Kokoro-FastAPI server when a URL is
 * configured (kokoro.c). Either way the caller gets a 16-bit mono PCM WAV
 * and one mark per written word carrying a BYTE OFFSET into the text it
 * passed, so the align stage maps the voice back to caption words by offset
 * and never has to re-tokenise the engine's idea of a word ("$1,234.56" is
 * one mark although espeak speaks five words for it). Times come from the
 * engine's own positions in the audio, never from counting buffers, and a
 * word's end is trimmed to its sound, so captions cannot drift from the
 * voice. */
#ifndef FENTA_TTS_H
#define FENTA_TTS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TTS_DEFAULT_KOKORO_VOICE "af_heart"
#define TTS_DEFAULT_ESPEAK_VOICE "en-us"
#define TTS_DEFAULT_TIMEOUT_MS 120000L
#define TTS_SPEED_MIN 0.5
#define TTS_SPEED_MAX 2.0
/* Longest text accepted, in bytes: a few minutes of script is a few KiB; a
 * megabyte would be an hour of voice and is a mistake upstream. */
#define TTS_MAX_TEXT_BYTES (1024 * 1024)

typedef struct tts_mark {
    size_t offset;    /* byte offset in the input text of the spoken word */
    size_t len;       /* its length in bytes (the whitespace-delimited token, without
                         leading or trailing punctuation) */
    int64_t start_ms; /* when the voice starts the word, ms from the start of the audio */
    int64_t end_ms;   /* when it ends (>= start_ms, <= the next mark's start_ms) */
} tts_mark_t;

typedef struct tts_config {
    const char *kokoro_url;     /* NULL/"" = offline espeak-ng; else e.g. "http://127.0.0.1:8880" */
    const char *kokoro_voice;   /* NULL = TTS_DEFAULT_KOKORO_VOICE */
    const char *kokoro_api_key; /* sent as "Authorization: Bearer ..."; NULL/"" = none */
    const char *espeak_voice;   /* NULL = TTS_DEFAULT_ESPEAK_VOICE */
    double speed;               /* 0 = 1.0; else TTS_SPEED_MIN..TTS_SPEED_MAX */
    long timeout_ms;            /* HTTP total timeout; 0 = TTS_DEFAULT_TIMEOUT_MS */
} tts_config_t;

typedef struct tts_result {
    tts_mark_t *marks;     /* one per written word, in time and text order, non-overlapping;
                              a word the engine gave no time of its own ("e.g." after
                              "U.S.A.") shares the previous word's span, split by length */
    size_t nmarks;         /* how many (punctuation-only tokens count only if voiced) */
    int64_t duration_ms;   /* length of the written audio */
    int sample_rate;       /* of the written WAV, Hz */
    bool estimated_timing; /* marks were spread over the voiced audio by word length (a Kokoro
                              server without /dev/captioned_speech), not the engine's own times */
    char engine[16];       /* "espeak-ng" or "kokoro" */
} tts_result_t;

/* Speaks text (UTF-8) into a 16-bit mono PCM WAV file at wav_path, written
 * to a temporary name beside it, fsync'd and renamed over it, so a reader
 * never sees half a file. cfg may be NULL for all defaults (espeak-ng). The
 * network is touched only when cfg->kokoro_url is set.
 *
 * Returns 0 with *out filled (release with tts_result_free), or:
 *   FENTA_EINVAL       empty or blank text, invalid UTF-8, a control
 *                      character, speed or timeout out of range, an unknown
 *                      voice, a kokoro_url that is not http(s), a request
 *                      the server refused as invalid (HTTP 400/422);
 *   FENTA_ETOOBIG      text over TTS_MAX_TEXT_BYTES, or the server's answer
 *                      over KOKORO_MAX_RESPONSE;
 *   FENTA_EUNAVAILABLE the server cannot be reached or answers 404/429/5xx;
 *   FENTA_ETIMEOUT     the server did not answer within timeout_ms;
 *   FENTA_EAUTH        the server refused the API key (HTTP 401/403);
 *   FENTA_EIO          the server's answer is not usable audio, the engine
 *                      failed, or the WAV cannot be written;
 *   FENTA_EDENIED      the WAV's directory may not be written;
 *   FENTA_ENOMEM       out of memory.
 * On failure *out is zeroed, errbuf (if errlen > 0) holds one line saying
 * what failed (for the server: its URL, the HTTP status or curl's error and
 * the start of its answer), and no file is left at wav_path or beside it.
 * Thread-safe: espeak-ng calls are serialised inside. */
int tts_synth(const tts_config_t *cfg, const char *text, const char *wav_path, tts_result_t *out,
              char *errbuf, size_t errlen);

/* Frees r's marks and zeroes *r; NULL is a no-op. */
void tts_result_free(tts_result_t *r);

/* ---- For the engines (tts_espeak.c, kokoro.c) only; callers use tts_synth. ----
 * These live here rather than in a *_internal.h only because the stage was
 * delivered as this file set; the double underscore marks them internal. */

/* Where an engine says it is in the text at a point of its audio. */
typedef struct tts__timing {
    size_t offset;    /* byte offset in the text (anywhere inside or just before a word) */
    int64_t start_ms; /* when the engine starts speaking there */
    int64_t end_ms;   /* when it stops, or -1 when the engine does not say */
} tts__timing_t;

/* The espeak-ng engine (tts_espeak.c). cfg is tts_synth's, defaults filled. */
int tts__espeak_synth(const tts_config_t *cfg, const char *text, const char *wav_path,
                      tts_result_t *out, char *errbuf, size_t errlen);

/* Turns an engine's timings (in time order) into out->marks: one mark per
 * whitespace-delimited token of text that some timing points into or just
 * before; later timings in the same token only extend it (numbers, split
 * words); a timing pointing back into an earlier token is folded into the
 * last mark; surplus timings of a token go to the untimed words right after
 * it (espeak-ng's dictionary phrases). A mark ends at its own end_ms if
 * known, else at the next mark's start pulled back over the silence in pcm;
 * the last one where its sound ends. Words still without a timing share the
 * previous mark's span. Returns 0 or FENTA_ENOMEM. */
int tts__marks_build(const char *text, const tts__timing_t *t, size_t n, const int16_t *pcm,
                     size_t nsamples, int rate, tts_result_t *out);

/* Marks for an engine that gives no times: the words of text spread over the
 * voiced regions of pcm in proportion to their lengths. Returns 0 or
 * FENTA_ENOMEM. */
int tts__marks_spread(const char *text, const int16_t *pcm, size_t nsamples, int rate,
                      tts_result_t *out);

/* Writes a 44-byte-header 16-bit mono PCM WAV: temp file, fsync, rename,
 * fsync of the directory. Returns 0, FENTA_ETOOBIG (over 4 GiB),
 * FENTA_EDENIED, FENTA_EIO or FENTA_ENOMEM with errbuf naming the path. */
int tts__wav_write(const char *path, const int16_t *pcm, size_t nsamples, int rate, char *errbuf,
                   size_t errlen);

#endif
