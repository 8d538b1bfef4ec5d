/* fake_kokoro.h - a local stand-in for a Kokoro-FastAPI server, for the TTS
 * tests: plain HTTP/1.1 on 127.0.0.1 at a random port, served by a
 * background thread, one connection at a time.
 *
 * It speaks the real server's wire format (see actors/speech/kokoro.c):
 * POST /dev/captioned_speech answers {"audio": base64 WAV, "audio_format":
 * "audio/wav", "timestamps": [{"word", "start_time", "end_time"}, ...]} and
 * POST /v1/audio/speech the WAV bytes. It checks the request JSON the way
 * the server's pydantic schema does and answers 422 when a field is wrong.
 * The audio is predictable so tests can check times exactly: 50 ms of
 * silence, then for each whitespace-separated word of the input a 250 ms
 * 440 Hz tone and 100 ms of silence; word i is at 50 + 350 i ms. Like the
 * real server it returns trailing punctuation as its own timestamp entry
 * (zero length, at the end of the word), and a hyphenated word as one
 * entry per part, sharing the word's burst. */
#ifndef FENTA_TEST_FAKE_KOKORO_H
#define FENTA_TEST_FAKE_KOKORO_H
#include <stdbool.h>
#include <stddef.h>

#define FAKE_KOKORO_LEAD_MS 50
#define FAKE_KOKORO_TONE_MS 250
#define FAKE_KOKORO_GAP_MS 100

typedef enum fake_kokoro_mode {
    FAKE_KOKORO_OK,          /* both endpoints work */
    FAKE_KOKORO_NO_CAPTIONS, /* /dev/captioned_speech answers 404, as on a server without it */
    FAKE_KOKORO_FAIL,        /* every request answers 500 with a JSON error body */
    FAKE_KOKORO_HANG,        /* reads the request and never answers */
} fake_kokoro_mode_t;

typedef struct fake_kokoro_opts {
    fake_kokoro_mode_t mode;
    int sample_rate;   /* of the audio it answers; 0 = 24000 (Kokoro's) */
    bool float_audio;  /* 32-bit float stereo WAV (with a fact chunk) instead of 16-bit mono */
    bool spell_digits; /* a word of digits comes back spelt out ("3" -> "three"), as
                          Kokoro's normaliser does */
    int port;          /* listen on this port; 0 = any free one */
} fake_kokoro_opts_t;

typedef struct fake_kokoro fake_kokoro_t;

/* Starts a server (o may be NULL for FAKE_KOKORO_OK defaults); asserts
 * success. */
fake_kokoro_t *fake_kokoro_start(const fake_kokoro_opts_t *o);
/* "http://127.0.0.1:PORT"; borrowed, valid until stop. */
const char *fake_kokoro_url(const fake_kokoro_t *fk);
int fake_kokoro_port(const fake_kokoro_t *fk);
/* Requests received so far (complete or not). */
size_t fake_kokoro_requests(fake_kokoro_t *fk);
/* The last request's path, body and Authorization header value, as copies
 * the caller frees; NULL when there was none (or no such header). */
char *fake_kokoro_last_path(fake_kokoro_t *fk);
char *fake_kokoro_last_body(fake_kokoro_t *fk);
char *fake_kokoro_last_auth(fake_kokoro_t *fk);
/* Stops the thread, closes the socket, frees; NULLs *fk. NULL is a no-op. */
void fake_kokoro_stop(fake_kokoro_t **fk);

#endif
