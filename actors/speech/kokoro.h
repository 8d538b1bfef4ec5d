/* kokoro.h - speech from a Kokoro-FastAPI server
 * (github.com/remsky/Kokoro-FastAPI), the remote engine behind tts_synth.
 *
 * One HTTP POST per text: /dev/captioned_speech, which answers the audio and
 * word timestamps together; against a server without it (404) the
 * OpenAI-compatible /v1/audio/speech, whose audio comes without times, so the
 * words are spread over the voiced audio and the result says
 * estimated_timing. The audio is decoded here (16/24/32-bit integer or
 * 32/64-bit float WAV, any channel count, any rate) and written as 16-bit
 * mono at the server's own rate. The requests go through the outbound
 * client (runtime/outbound.h), called synchronously on the render thread;
 * nothing this returns carries an HTTP type. cfg->kokoro_api_key, when
 * set, is sent as "Authorization: Bearer ...". */
#ifndef FENTA_KOKORO_H
#define FENTA_KOKORO_H
#include "actors/speech/tts.h"

#include <stddef.h>

/* Largest answer read from the server (base64 audio of a long script is
 * large, but a quarter of a gigabyte is a broken or hostile server). */
#define KOKORO_MAX_RESPONSE (256L * 1024 * 1024)
/* Longest wait for the TCP (and TLS) connection, within cfg->timeout_ms. */
#define KOKORO_CONNECT_TIMEOUT_MS 10000L

/* Speaks text through the server at cfg->kokoro_url (a trailing "/" or
 * "/v1" is ignored), with cfg->kokoro_voice, cfg->speed and cfg->timeout_ms,
 * into the WAV at wav_path. timeout_ms bounds the whole call, the fallback
 * request included. Redirects are not followed. Called by tts_synth
 * once it has checked the text and filled cfg's defaults (speed 1.0, voice
 * af_heart, timeout 120 s); same results and error codes as tts_synth. */
int kokoro_synth(const tts_config_t *cfg, const char *text, const char *wav_path, tts_result_t *out,
                 char *errbuf, size_t errlen);

#endif
