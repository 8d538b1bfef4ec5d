/* test_media_probe.c - media_probe reads what a user would check with
 * ffprobe (container, duration, size, codecs, dimensions, fps, rotation,
 * audio layout, still or moving) from real files made by the ffmpeg CLI, and
 * refuses every file a render cannot use with a message naming the file. */
#include "actors/media/media_probe.h"
#include "runtime/error.h"
#include "tests/support/fixtures.h"
#include <criterion/criterion.h>
#include <criterion/hooks.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* The fixtures are made once, in the runner, before any test process starts;
 * tests find the directory through the environment (inherited by them). */
#define ENV_DIR "FENTA_TEST_PROBE_DIR"
static const char *fixture_dir;

#define VIDEO_IN "-f lavfi -i testsrc2=size=320x240:rate=25:duration=2"
#define AUDIO_IN "-f lavfi -i sine=frequency=440:duration=2"
#define X264 "-c:v libx264 -pix_fmt yuv420p -preset ultrafast"

/* Runs `ffmpeg -y -loglevel error ARGS` with cwd = the fixture dir, so every
 * output name is a plain file name we chose. */
static void ffmpeg(const char *args)
{
    int rc = fx_sh(fixture_dir, "ffmpeg -nostdin -y -loglevel error %s", args);
    if (rc != 0) {
        fprintf(stderr, "fixture command failed (%d): ffmpeg %s\n", rc, args);
        exit(1);
    }
}

static void write_file(const char *name, const void *data, size_t len)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", fixture_dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || (len && fwrite(data, 1, len, f) != len) || fclose(f) != 0) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
}

/* The first half of src's bytes, as dst: an upload cut off mid-way. */
static void truncate_copy(const char *src, const char *dst)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", fixture_dir, src);
    FILE *f = fopen(path, "rb");
    if (!f)
        exit(1);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    char *buf = malloc((size_t)n);
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n)
        exit(1);
    fclose(f);
    write_file(dst, buf, (size_t)n / 2);
    free(buf);
}

/* A WAV header announcing zero samples: a valid file with nothing in it. */
static void write_empty_wav(const char *name)
{
    unsigned char h[44] = {'R', 'I', 'F',  'F',  36,  0,   0,    0,    'W', 'A', 'V',
                           'E', 'f', 'm',  't',  ' ', 16,  0,    0,    0,   1,   0,
                           1,   0,   0x44, 0xAC, 0,   0,   0x88, 0x58, 1,   0,   2,
                           0,   16,  0,    'd',  'a', 't', 'a',  0,    0,   0,   0};
    write_file(name, h, sizeof h);
}

ReportHook(PRE_ALL)(struct criterion_test_set *set)
{
    (void)set;
    fixture_dir = fx_shared_dir_make(ENV_DIR, "probe");
    ffmpeg(VIDEO_IN " " AUDIO_IN " " X264 " -c:a aac -shortest av.mp4");
    ffmpeg(AUDIO_IN " -c:a aac audio.m4a");
    ffmpeg(AUDIO_IN " -c:a pcm_s16le audio.wav");
    ffmpeg("-f lavfi -i testsrc2=size=64x48 -frames:v 1 still.png");
    /* ffmpeg 5.1 has no -display_rotation; when stream-copying, its CLI
     * turns "-metadata:s:v:0 rotate=N" into a display matrix rotating N
     * degrees counter-clockwise (ffprobe shows rotation=N). */
    ffmpeg(VIDEO_IN " " X264 " unrotated.mp4");
    ffmpeg("-i unrotated.mp4 -c copy -metadata:s:v:0 rotate=90 rotated.mp4");
    ffmpeg("-f lavfi -i color=c=red:size=9000x100 -frames:v 1 huge.png");
    const char text[] = "This is a shopping list, not a video.\nmilk\neggs\n";
    write_file("text.mp4", text, sizeof text - 1);
    write_file("empty.mp4", "", 0);
    truncate_copy("av.mp4", "truncated.mp4");
    write_empty_wav("silent.wav");
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

static off_t file_size(const char *path)
{
    struct stat sb;
    cr_assert_eq(stat(path, &sb), 0);
    return sb.st_size;
}

/* Probing a file that must be refused: checks the code and that the message
 * names the file and contains the reason. */
static void expect_refused(const char *name, int code, const char *reason)
{
    const char *path = fixture(name);
    media_info_t info;
    char err[512];
    int rc = media_probe(path, &info, err, sizeof err);
    cr_assert_eq(rc, code, "%s: got %d (%s), want %d", name, rc, err, code);
    cr_assert_not_null(strstr(err, path), "message does not name the file: %s", err);
    cr_assert_not_null(strstr(err, reason), "message lacks '%s': %s", reason, err);
    cr_assert_not(info.has_video || info.has_audio, "a refused file reports streams");
}

Test(media_probe, mp4_with_video_and_audio)
{
    const char *path = fixture("av.mp4");
    media_info_t info;
    char err[512];
    cr_assert_eq(media_probe(path, &info, err, sizeof err), 0, "%s", err);
    cr_expect_not_null(strstr(info.format, "mp4"), "format %s", info.format);
    cr_expect(fabs(info.duration_s - 2.0) <= 0.1, "duration %f", info.duration_s);
    cr_expect_eq(info.size_bytes, (int64_t)file_size(path));
    cr_expect(info.has_video && info.has_audio);
    cr_expect_not(info.is_still_image);
    cr_expect_str_eq(info.video.codec, "h264");
    cr_expect_eq(info.video.width, 320);
    cr_expect_eq(info.video.height, 240);
    cr_expect(fabs(info.video.fps - 25.0) < 0.01, "fps %f", info.video.fps);
    cr_expect_eq(info.video.rotation, 0);
    cr_expect_str_eq(info.video.pix_fmt, "yuv420p");
    cr_expect_str_eq(info.audio.codec, "aac");
    cr_expect_eq(info.audio.sample_rate, 44100);
    cr_expect_eq(info.audio.channels, 1);
}

Test(media_probe, audio_only)
{
    media_info_t info;
    char err[512];
    cr_assert_eq(media_probe(fixture("audio.m4a"), &info, err, sizeof err), 0, "%s", err);
    cr_expect(info.has_audio);
    cr_expect_not(info.has_video);
    cr_expect_str_eq(info.audio.codec, "aac");
    cr_expect(fabs(info.duration_s - 2.0) <= 0.1, "duration %f", info.duration_s);

    cr_assert_eq(media_probe(fixture("audio.wav"), &info, err, sizeof err), 0, "%s", err);
    cr_expect_str_eq(info.format, "wav");
    cr_expect(info.has_audio && !info.has_video);
    cr_expect_str_eq(info.audio.codec, "pcm_s16le");
    cr_expect_eq(info.audio.sample_rate, 44100);
    cr_expect_eq(info.audio.channels, 1);
    cr_expect(fabs(info.duration_s - 2.0) <= 0.01, "duration %f", info.duration_s);
}

Test(media_probe, png_is_a_still_image)
{
    media_info_t info;
    char err[512];
    cr_assert_eq(media_probe(fixture("still.png"), &info, err, sizeof err), 0, "%s", err);
    cr_expect(info.is_still_image, "format %s", info.format);
    cr_expect(info.has_video && !info.has_audio);
    cr_expect_str_eq(info.video.codec, "png");
    cr_expect_eq(info.video.width, 64);
    cr_expect_eq(info.video.height, 48);
    cr_expect_eq(info.duration_s, 0.0);
}

/* rotated.mp4 carries a matrix of 90 degrees counter-clockwise; ffmpeg's own
 * autorotate shows it with transpose=cclock (checked by hand: the first frame
 * of `ffmpeg -i rotated.mp4` equals `-vf transpose=cclock` of unrotated.mp4).
 * We report the clockwise turn that makes the picture upright, so 270. */
Test(media_probe, rotation_from_display_matrix)
{
    media_info_t info;
    char err[512];
    cr_assert_eq(media_probe(fixture("rotated.mp4"), &info, err, sizeof err), 0, "%s", err);
    cr_expect_eq(info.video.rotation, 270);
    cr_expect_eq(media_probe(fixture("unrotated.mp4"), &info, err, sizeof err), 0, "%s", err);
    cr_expect_eq(info.video.rotation, 0);
    cr_expect_eq(info.video.width, 320, "dimensions are the coded ones, before rotation");
    cr_expect_eq(info.video.height, 240);
}

Test(media_probe, refuses_too_large_image)
{
    expect_refused("huge.png", FENTA_ETOOBIG, "image too large (9000x100); the limit is 8192");
}

Test(media_probe, refuses_text_named_mp4)
{
    expect_refused("text.mp4", FENTA_EINVAL, "not a media file or unsupported format");
}

Test(media_probe, refuses_empty_file)
{
    expect_refused("empty.mp4", FENTA_EINVAL, "empty file");
}

Test(media_probe, refuses_truncated_mp4)
{
    expect_refused("truncated.mp4", FENTA_EINVAL, "truncated or corrupt");
}

Test(media_probe, refuses_zero_duration_audio)
{
    expect_refused("silent.wav", FENTA_EINVAL, "zero duration");
}

Test(media_probe, refuses_missing_file)
{
    expect_refused("no-such-file.mp4", FENTA_ENOTFOUND, "no such file");
}

Test(media_probe, refuses_directory_and_bad_arguments)
{
    expect_refused("", FENTA_EINVAL, "not a regular file"); /* the fixture dir itself */
    media_info_t info;
    char err[64];
    cr_expect_eq(media_probe(NULL, &info, err, sizeof err), FENTA_EINVAL);
    cr_expect_eq(media_probe(fixture("av.mp4"), NULL, err, sizeof err), FENTA_EINVAL);
    /* No buffer, or a tiny one, is not a crash. */
    cr_expect_eq(media_probe(fixture("empty.mp4"), &info, NULL, 0), FENTA_EINVAL);
    char tiny[4];
    cr_expect_eq(media_probe(fixture("empty.mp4"), &info, tiny, sizeof tiny), FENTA_EINVAL);
    cr_expect_eq(strlen(tiny), 3u);
}
