/* asr.h - speech recognition: the words in a voice recording, with times.
 *
 * The render engine's "asr" path: a user uploads a voice recording instead of
 * letting us synthesise one, and the captions need to know when each word is
 * said. This module runs pocketsphinx (the en-us acoustic model, language
 * model and dictionary) over the recording and returns the recognised words
 * with their times; asr_align then pins the user's script to them. It is the
 * only module that includes pocketsphinx/sphinxbase headers; nothing it
 * returns carries a pocketsphinx type or error code.
 *
 * Loading the model takes about a second and some 120 MB, so one decoder is
 * loaded on first use and kept for the life of the process (asr_unload
 * frees it). A pocketsphinx decoder is not thread-safe: a mutex guards it,
 * so transcriptions in one process run one at a time (decoding the file's
 * audio happens before the lock is taken). Recognition runs at roughly a
 * quarter of real time on one core: a 30-minute recording holds the lock
 * for several minutes. */
#ifndef FENTA_ASR_H
#define FENTA_ASR_H
#include <stddef.h>
#include <stdint.h>

/* Where the model is looked for unless asr_transcribe is given another
 * directory with the same layout: en-us/ (the acoustic model), en-us.lm.bin
 * and cmudict-en-us.dict. */
#define ASR_DEFAULT_MODEL_DIR "/usr/share/pocketsphinx/model/en-us"

typedef struct asr_word {
    char *text;       /* the word as the dictionary spells it, lower case, e.g. "don't"; owned */
    int64_t start_ms; /* when it starts, ms from the start of the audio */
    int64_t end_ms;   /* when it ends; > start_ms, <= the next word's start_ms */
} asr_word_t;

/* Transcribes the first audio stream of the file at path (any format
 * libavformat reads, up to AUDIO_PCM_MAX_SECONDS long). The audio is split
 * into utterances at pauses and each is decoded with pocketsphinx; times
 * are exact to the 10 ms frame (no frames are dropped before decoding). The
 * same file gives the same words and times every time, whatever the
 * process transcribed before.
 *
 * Returns 0 with *words (malloc'd, the caller's: asr_words_free), *n and
 * *audio_ms (the audio's length) set. The words are in time order without
 * fillers (<s>, </s>, <sil>, [NOISE], [SPEECH]) and with pronunciation
 * variants ("read(2)") reduced to the word. Audio with no speech in it
 * (silence, a hum) succeeds with *n = 0 and *words NULL. On failure *words
 * is NULL, *n and *audio_ms 0, errbuf (if errlen > 0) holds one line naming
 * the file (or the model file) and the reason, and the code is one of
 * audio_pcm_decode's (a missing, empty, non-media, video-only, zero-length
 * or too long file), or
 *   FENTA_EUNAVAILABLE  the model is missing or cannot be loaded;
 *   FENTA_EIO           the decoder failed on this audio;
 *   FENTA_ENOMEM        out of memory.
 * model_dir is the model's folder (NULL or empty: ASR_DEFAULT_MODEL_DIR);
 * the loaded model is kept while later calls name the same folder.
 * Thread-safe (serialised, see above). Model problems are logged nowhere:
 * pocketsphinx's own log is silenced and the message says what is wrong. */
int asr_transcribe(const char *model_dir, const char *path, asr_word_t **words, size_t *n,
                   int64_t *audio_ms, char *errbuf, size_t errlen);

/* Frees n words from asr_transcribe and NULLs *words; NULL or *words NULL is
 * a no-op. */
void asr_words_free(asr_word_t **words, size_t n);

/* Frees the cached model, if any (the next transcription loads it again,
 * from the folder it names). For orderly shutdown and tests;
 * waits for a transcription in progress. */
void asr_unload(void);

#endif
