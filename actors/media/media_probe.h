/* media_probe.h - what a media file holds, read with libavformat.
 *
 * The ingest stage's first step: before a render touches a source it learns
 * its container, duration, streams, size and orientation here, and any file
 * that cannot be rendered (missing, empty, not media, truncated, no streams,
 * absurd dimensions, zero length) is refused with a message that names the
 * file and the reason. This is the only module that includes libav* headers;
 * nothing it returns carries an FFmpeg type or error code. */
#ifndef FENTA_MEDIA_PROBE_H
#define FENTA_MEDIA_PROBE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Largest width or height accepted, in pixels (8K is 7680; one side above
 * this is almost always a hostile or broken file, and would blow up memory). */
#define MEDIA_PROBE_MAX_SIDE 8192

typedef struct media_info {
    char format[64];     /* demuxer short name(s), e.g. "mov,mp4,m4a,3gp,3g2,mj2", "png_pipe" */
    double duration_s;   /* container duration in seconds; 0 for a still image */
    int64_t size_bytes;  /* file size on disk */
    bool has_video;      /* a video stream (or a still image) was found */
    bool has_audio;      /* an audio stream was found */
    bool is_still_image; /* a single picture (png, jpeg, ...), not a moving video */
    struct {
        char codec[32];   /* codec short name, e.g. "h264", "png" */
        int width;        /* coded width in pixels, before rotation */
        int height;       /* coded height in pixels, before rotation */
        double fps;       /* avg_frame_rate, else r_frame_rate; 0 for a still or unknown */
        int rotation;     /* clockwise degrees to turn the picture upright: 0, 90, 180, 270 */
        char pix_fmt[32]; /* pixel format name, e.g. "yuv420p"; "" when unknown */
    } video;              /* the first (best) video stream; zeroed when has_video is false */
    struct {
        char codec[32];  /* codec short name, e.g. "aac", "pcm_s16le" */
        int sample_rate; /* Hz */
        int channels;    /* channel count */
    } audio;             /* the first (best) audio stream; zeroed when has_audio is false */
} media_info_t;

/* Probes the file at path and fills *out (zeroed first). Returns 0, or:
 *   FENTA_ENOTFOUND  the file does not exist;
 *   FENTA_EIO        it exists but cannot be read;
 *   FENTA_EDENIED    it exists but we may not read it;
 *   FENTA_ETOOBIG    a picture side is larger than MEDIA_PROBE_MAX_SIDE;
 *   FENTA_EINVAL     not a regular file, empty, not a media file or an
 *                    unsupported format, truncated or corrupt, no audio or
 *                    video stream, zero duration;
 *   FENTA_ENOMEM     out of memory.
 * On failure errbuf (if errlen > 0) holds one line naming the file and the
 * reason, e.g. "media file 'a.mp4': truncated or corrupt (mov,mp4,...)",
 * and *out is zeroed except size_bytes (when the file could be stat'ed).
 * Thread-safe; FFmpeg's own logging is silenced on first use. */
int media_probe(const char *path, media_info_t *out, char *errbuf, size_t errlen);

#endif
