/* audio_pcm.h - the first audio stream of any media file, decoded to 16 kHz
 * mono signed 16-bit PCM in memory.
 *
 * The speech recogniser (asr) wants exactly this format, and uploads come as
 * wav, mp3, m4a, mp4, webm... This module turns one into the other with
 * libavformat/libavcodec/libswresample, so nothing above it sees an FFmpeg
 * type or error code. The whole signal is held in memory, so the length is
 * bounded: AUDIO_PCM_MAX_SECONDS of audio is 57.6 MB. */
#ifndef FENTA_AUDIO_PCM_H
#define FENTA_AUDIO_PCM_H
#include <stddef.h>
#include <stdint.h>

#define AUDIO_PCM_RATE 16000       /* output samples per second */
#define AUDIO_PCM_MAX_SECONDS 1800 /* longest audio accepted: 30 minutes */

/* Decodes the first (best) audio stream of the file at path into 16 kHz mono
 * int16 PCM (channels are mixed down, the rate is converted). Returns 0 with
 * *samples (malloc'd, the caller's: audio_pcm_free) and *n set, n > 0; or
 *   FENTA_ENOTFOUND  the file does not exist;
 *   FENTA_EIO        it exists but cannot be read;
 *   FENTA_EDENIED    it exists but we may not read it;
 *   FENTA_EINVAL     not a regular file, empty, not a media file, truncated
 *                    or corrupt, no audio stream (a video without sound),
 *                    zero-length audio, or no packet could be decoded;
 *   FENTA_ETOOBIG    more than AUDIO_PCM_MAX_SECONDS of audio, give or take
 *                    half a second of codec padding (checked on the
 *                    container's duration first, then while decoding, so a
 *                    lying header cannot make us hold more);
 *   FENTA_ENOMEM     out of memory.
 * On failure errbuf (if errlen > 0) holds one line naming the file and the
 * reason, e.g. "media file 'a.mp4': no audio stream (video only)", and
 * *samples is NULL, *n 0. Thread-safe. */
int audio_pcm_decode(const char *path, int16_t **samples, size_t *n, char *errbuf, size_t errlen);

/* Frees samples from audio_pcm_decode and NULLs *samples; NULL or *samples
 * NULL is a no-op. */
void audio_pcm_free(int16_t **samples);

#endif
