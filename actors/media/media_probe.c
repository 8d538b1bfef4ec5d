/* media_probe.c - probes one media file with libavformat and turns what it
 * finds (or why it cannot) into a media_info_t or a Fenta error code with a
 * message that names the file. */
#include "actors/media/media_probe.h"
#include "actors/media/media_internal.h"
#include "runtime/error.h"

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/display.h>
#include <libavutil/pixdesc.h>

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static void copy_name(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
}

/* Clockwise degrees to turn the picture upright, snapped to a quarter turn.
 * av_display_rotation_get() returns the angle the matrix rotates by
 * counter-clockwise, which is the opposite of the turn a player applies: a
 * portrait phone clip reads back as -90 and ffmpeg's autorotate shows it with
 * transpose=clock, so we negate and report 90. That is the number the edit
 * stage needs (90 -> transpose=clock, 270 -> transpose=cclock). */
static int stream_rotation(const AVStream *st)
{
    const uint8_t *m = av_stream_get_side_data(st, AV_PKT_DATA_DISPLAYMATRIX, NULL);
    if (!m)
        return 0;
    double ccw = av_display_rotation_get((const int32_t *)m);
    if (isnan(ccw))
        return 0;
    long q = lround(-ccw / 90.0); /* nearest quarter turn */
    int deg = (int)(((q % 4) + 4) % 4) * 90;
    return deg;
}

static double rational_or_zero(AVRational r)
{
    return (r.num > 0 && r.den > 0) ? av_q2d(r) : 0.0;
}

/* A picture, not a moving video: an image demuxer ("image2", "png_pipe",
 * "jpeg_pipe", ...), or one frame of an intra-only image codec. */
static bool is_still(const AVFormatContext *fc, const AVStream *vs)
{
    const char *name = fc->iformat->name;
    size_t len = strlen(name);
    if (strcmp(name, "image2") == 0 || (len > 5 && strcmp(name + len - 5, "_pipe") == 0))
        return true;
    switch (vs->codecpar->codec_id) {
    case AV_CODEC_ID_PNG:
    case AV_CODEC_ID_MJPEG:
    case AV_CODEC_ID_BMP:
    case AV_CODEC_ID_TIFF:
    case AV_CODEC_ID_WEBP:
    case AV_CODEC_ID_GIF:
        return vs->nb_frames == 1;
    default:
        return false;
    }
}

/* Duration in seconds: the container's, else the longest stream's. */
static double duration_of(const AVFormatContext *fc)
{
    if (fc->duration != AV_NOPTS_VALUE && fc->duration > 0)
        return (double)fc->duration / AV_TIME_BASE;
    double best = 0.0;
    for (unsigned i = 0; i < fc->nb_streams; i++) {
        const AVStream *st = fc->streams[i];
        if (st->duration != AV_NOPTS_VALUE && st->duration > 0) {
            double d = (double)st->duration * av_q2d(st->time_base);
            if (d > best)
                best = d;
        }
    }
    return best;
}

/* Opens and reads stream info. The format is probed on our own AVIOContext
 * first so that "no demuxer recognises these bytes" (unsupported) can be told
 * apart from "a demuxer recognised them but could not read them" (truncated
 * or corrupt: an mp4 cut before its moov atom). */
static int open_media(const char *path, AVFormatContext **fc_out, AVIOContext **pb_out,
                      char *errbuf, size_t errlen)
{
    AVIOContext *pb = NULL;
    int rc = avio_open2(&pb, path, AVIO_FLAG_READ, NULL, NULL);
    if (rc < 0)
        return media__fail(errbuf, errlen, path, rc == AVERROR(ENOMEM) ? FENTA_ENOMEM : FENTA_EIO,
                           "cannot be read (%s)", av_err2str(rc));
    const AVInputFormat *ifmt = NULL;
    /* The score is how sure the demuxer is. At end of file FFmpeg accepts any
     * score above 0, and a name ending in .mp4 alone scores 1 for mov; below
     * AVPROBE_SCORE_RETRY nothing in the bytes was recognised. */
    rc = av_probe_input_buffer2(pb, &ifmt, path, NULL, 0, 0);
    if (rc < AVPROBE_SCORE_RETRY || !ifmt) {
        avio_closep(&pb);
        return media__fail(errbuf, errlen, path, FENTA_EINVAL,
                           "not a media file or unsupported format");
    }
    AVFormatContext *fc = avformat_alloc_context();
    if (!fc) {
        avio_closep(&pb);
        return media__fail(errbuf, errlen, path, FENTA_ENOMEM, "out of memory");
    }
    fc->pb = pb; /* custom I/O: we close pb ourselves, on every path */
    rc = avformat_open_input(&fc, path, ifmt, NULL); /* frees fc on failure */
    if (rc < 0) {
        avio_closep(&pb);
        if (rc == AVERROR(ENOMEM))
            return media__fail(errbuf, errlen, path, FENTA_ENOMEM, "out of memory");
        return media__fail(errbuf, errlen, path, FENTA_EINVAL, "truncated or corrupt (%s: %s)",
                           ifmt->name, av_err2str(rc));
    }
    rc = avformat_find_stream_info(fc, NULL);
    if (rc < 0) {
        avformat_close_input(&fc);
        avio_closep(&pb);
        return media__fail(errbuf, errlen, path, FENTA_EINVAL, "truncated or corrupt (%s: %s)",
                           ifmt->name, av_err2str(rc));
    }
    *fc_out = fc;
    *pb_out = pb;
    return 0;
}

static int fill_info(const char *path, AVFormatContext *fc, media_info_t *out, char *errbuf,
                     size_t errlen)
{
    copy_name(out->format, sizeof out->format, fc->iformat->name);
    int vi = av_find_best_stream(fc, AVMEDIA_TYPE_VIDEO, -1, -1, NULL, 0);
    int ai = av_find_best_stream(fc, AVMEDIA_TYPE_AUDIO, -1, -1, NULL, 0);
    /* Cover art in an audio file is an attached picture, not a video. */
    if (vi >= 0 && (fc->streams[vi]->disposition & AV_DISPOSITION_ATTACHED_PIC))
        vi = -1;
    if (vi < 0 && ai < 0)
        return media__fail(errbuf, errlen, path, FENTA_EINVAL, "no audio or video stream (%s)",
                           out->format);

    if (vi >= 0) {
        const AVStream *vs = fc->streams[vi];
        const AVCodecParameters *cp = vs->codecpar;
        out->has_video = true;
        copy_name(out->video.codec, sizeof out->video.codec, avcodec_get_name(cp->codec_id));
        out->video.width = cp->width;
        out->video.height = cp->height;
        copy_name(out->video.pix_fmt, sizeof out->video.pix_fmt,
                  av_get_pix_fmt_name((enum AVPixelFormat)cp->format));
        out->video.rotation = stream_rotation(vs);
        out->is_still_image = is_still(fc, vs);
        if (!out->is_still_image) {
            out->video.fps = rational_or_zero(vs->avg_frame_rate);
            if (out->video.fps <= 0.0)
                out->video.fps = rational_or_zero(vs->r_frame_rate);
        }
        if (cp->width > MEDIA_PROBE_MAX_SIDE || cp->height > MEDIA_PROBE_MAX_SIDE)
            return media__fail(errbuf, errlen, path, FENTA_ETOOBIG,
                               "image too large (%dx%d); the limit is %d", cp->width, cp->height,
                               MEDIA_PROBE_MAX_SIDE);
        if (cp->width <= 0 || cp->height <= 0)
            return media__fail(errbuf, errlen, path, FENTA_EINVAL,
                               "video stream has no dimensions (%s); truncated or corrupt",
                               out->video.codec);
    }
    if (ai >= 0) {
        const AVCodecParameters *cp = fc->streams[ai]->codecpar;
        out->has_audio = true;
        copy_name(out->audio.codec, sizeof out->audio.codec, avcodec_get_name(cp->codec_id));
        out->audio.sample_rate = cp->sample_rate;
        out->audio.channels = cp->ch_layout.nb_channels;
    }

    if (out->is_still_image) {
        out->duration_s = 0.0; /* a picture lasts as long as the edit says */
    } else {
        out->duration_s = duration_of(fc);
        if (!(out->duration_s > 0.0))
            return media__fail(errbuf, errlen, path, FENTA_EINVAL, "zero duration (%s)",
                               out->format);
    }
    return 0;
}

int media_probe(const char *path, media_info_t *out, char *errbuf, size_t errlen)
{
    if (errbuf && errlen > 0)
        errbuf[0] = '\0';
    if (out)
        memset(out, 0, sizeof *out);
    if (!path || !*path || !out)
        return media__fail(errbuf, errlen, path ? path : "(null)", FENTA_EINVAL, "no path given");
    media__log_init();

    /* Checked before FFmpeg sees the path: a FIFO or device would block it,
     * and "missing" and "empty" deserve their own words. */
    struct stat sb;
    if (stat(path, &sb) != 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return media__fail(errbuf, errlen, path, FENTA_ENOTFOUND, "no such file");
        int err = errno;
        char why[128];
        /* GNU strerror_r (we build with _GNU_SOURCE): thread-safe, may ignore why. */
        const char *text = strerror_r(err, why, sizeof why);
        return media__fail(errbuf, errlen, path, err == EACCES ? FENTA_EDENIED : FENTA_EIO,
                           "cannot be read (%s)", text);
    }
    if (!S_ISREG(sb.st_mode))
        return media__fail(errbuf, errlen, path, FENTA_EINVAL, "not a regular file");
    if (sb.st_size == 0)
        return media__fail(errbuf, errlen, path, FENTA_EINVAL, "empty file");
    out->size_bytes = (int64_t)sb.st_size;

    AVFormatContext *fc = NULL;
    AVIOContext *pb = NULL;
    int rc = open_media(path, &fc, &pb, errbuf, errlen);
    if (rc == 0) {
        rc = fill_info(path, fc, out, errbuf, errlen);
        avformat_close_input(&fc);
        avio_closep(&pb);
    }
    if (rc != 0) {
        int64_t size = out->size_bytes;
        memset(out, 0, sizeof *out);
        out->size_bytes = size;
    }
    return rc;
}
