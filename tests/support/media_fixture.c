/* media_fixture.c - see media_fixture.h. */
#include "tests/support/media_fixture.h"
#include "tests/support/api_fixture.h"
#include "tests/support/fixtures.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Writes who's media where its uploads live: a clip with sound, a portrait
 * clip without, a PNG and a JPEG still and a voice recording (espeak-ng). */
void fx_media_uploads(const json_t *who)
{
    cr_assert_eq(
        fx_sh(fx_api_data_dir(),
              "d=objects/uploads/%s && mkdir -p $d && "
              "ffmpeg -v error -y -f lavfi -i testsrc2=s=640x360:d=3:r=30 -f lavfi -i "
              "sine=f=440:d=3 -pix_fmt yuv420p -c:v libx264 -preset ultrafast -c:a aac -shortest "
              "$d/with-audio.mp4 && "
              "ffmpeg -v error -y -f lavfi -i testsrc2=s=360x640:d=3:r=25 -pix_fmt yuv420p "
              "-c:v libx264 -preset ultrafast $d/no-audio.mp4 && "
              "ffmpeg -v error -y -f lavfi -i testsrc2=s=800x600 -frames:v 1 $d/still.png && "
              "ffmpeg -v error -y -f lavfi -i testsrc2=s=800x600 -frames:v 1 $d/still.jpg && "
              "espeak-ng -w $d/voice.wav 'This is my own voice reading a short script.'",
              fx_org(who)),
        0);
}

/* The URL of the job's artifact called name, or NULL. */
const char *fx_artifact(const json_t *job, const char *name)
{
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(job, "artifacts"), i,
                       a) if (strcmp(json_string_value(json_object_get(a, "name")), name) ==
                              0) return json_string_value(json_object_get(a, "url"));
    return NULL;
}

/* Downloads the job's video through its presigned URL and checks what
 * ffprobe says of it: H.264 at 720x1280 and an AAC track, so the mp4 is
 * whole (moov read, both streams decodable headers). Also the captions. */
void fx_media_check(const json_t *job, const char *srt_word)
{
    const char *url = fx_artifact(job, "video.mp4");
    cr_assert(url, "no video.mp4 in %s", json_dumps(json_object_get(job, "artifacts"), 0));
    char file[600], cmd[1600];
    snprintf(file, sizeof file, "%s/dl-%s.mp4", fx_api_data_dir(),
             json_string_value(json_object_get(job, "id")));
    snprintf(cmd, sizeof cmd,
             "curl -sf -o '%s' '%s%s' && ffprobe -v error -show_entries "
             "stream=codec_name,width,height -of csv=p=0 '%s' | tr '\\n' ' '",
             file, fx_api_url(), url, file);
    FILE *p = popen(cmd, "r");
    char out[256] = "";
    cr_assert(fgets(out, sizeof out, p), "ffprobe said nothing of %s", file);
    pclose(p);
    cr_assert(strstr(out, "h264,720,1280"), "video stream: %s", out);
    cr_assert(strstr(out, "aac"), "audio stream: %s", out);
    unlink(file);
    if (srt_word) {
        url = fx_artifact(job, "captions.srt");
        cr_assert(url);
        fx_resp_t r = fx_req("GET", url, NULL, &(fx_opts_t){.http2 = true});
        cr_assert_eq(r.status, 200);
        cr_assert(strcasestr(r.body, srt_word), "captions without '%s':\n%s", srt_word, r.body);
        fx_resp_free(&r);
    }
}
