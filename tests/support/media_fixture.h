/* media_fixture.h - the media a user brings, for integration tests against
 * the real `fenta serve` (api_fixture): clips, stills and a voice recording
 * written where an organisation's uploads live, and the checks a user makes
 * of a job's outputs (ffprobe of the downloaded mp4, words in the srt).
 * Every function asserts (cr_assert) instead of returning errors. */
#ifndef FENTA_TEST_MEDIA_FIXTURE_H
#define FENTA_TEST_MEDIA_FIXTURE_H
#include <jansson.h>

/* Writes into DATA_DIR/objects/uploads/<who's org>/: with-audio.mp4
 * (640x360, a 440 Hz tone), no-audio.mp4 (360x640, silent), still.png,
 * still.jpg and voice.wav (espeak-ng saying "This is my own voice reading a
 * short script."). */
void fx_media_uploads(const json_t *who);
/* The presigned URL of the job's artifact called name (borrowed), or NULL. */
const char *fx_artifact(const json_t *job, const char *name);
/* Downloads the job's video.mp4 through its presigned URL: ffprobe must see
 * H.264 at 720x1280 and an AAC track; and when srt_word is not NULL, its
 * captions.srt must contain that word (case-insensitive). */
void fx_media_check(const json_t *job, const char *srt_word);

#endif
