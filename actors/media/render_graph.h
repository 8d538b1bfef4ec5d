/* render_graph.h - runs a timeline's filtergraph in-process: encodes it to
 * an mp4, measures its loudness, reads its samples, takes a thumbnail.
 *
 * The graph's sources are movie/amovie/lavfi filters, so the graph pulls
 * its own input and the runner only drains the [vout] and [aout] sinks,
 * always the one that is behind, into libx264 and AAC - the same work the
 * ffmpeg command line does for the same graph, with no intermediate files.
 * The mp4 is written to a temporary name with the moov atom first
 * (faststart), fsync'd and renamed, so a crash never leaves a half file
 * under the final name. Like media_probe, nothing here returns an FFmpeg
 * type or error code. */
#ifndef FENTA_RENDER_GRAPH_H
#define FENTA_RENDER_GRAPH_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct render_encode_opts {
    int width, height, fps;
    int crf;              /* libx264 constant rate factor */
    const char *preset;   /* libx264 preset */
    int audio_kbps;       /* AAC bit rate */
    int64_t total_frames; /* for progress; 0 = unknown */
    /* Called from the encoding thread every ~half second of video. */
    void (*progress)(void *arg, int64_t frames, int64_t total);
    void *arg;
    /* Polled between frames: a non-zero value stops the encode with
     * FENTA_ECANCELLED (nothing is left under the final name). */
    const volatile int *cancel;
} render_encode_opts_t;

typedef struct render_encode_stats {
    int64_t frames;        /* video frames encoded */
    int64_t audio_samples; /* audio samples encoded (per channel) */
    double seconds;        /* wall time */
} render_encode_stats_t;

/* Encodes graph ([vout] + [aout]) into out_path: H.264 (yuv420p, the
 * given preset and CRF, GOP of 2 s) and AAC-LC 48 kHz stereo in mp4 with
 * +faststart. Returns 0, FENTA_EINVAL (the graph does not parse or a source
 * cannot be read: errbuf has FFmpeg's words), FENTA_EIO, FENTA_ECANCELLED,
 * FENTA_ENOMEM. */
int render_graph_encode(const char *graph, const char *out_path, const render_encode_opts_t *o,
                        render_encode_stats_t *st, char *errbuf, size_t errlen);

/* Runs an audio-only graph ([aout]) through an EBU R128 meter: integrated
 * loudness (LUFS; -70 for silence) and, when true_peak_db is not NULL, the
 * true peak (dBTP; finding it triples the meter's cost). */
int render_graph_loudness(const char *graph, double *lufs, double *true_peak_db, char *errbuf,
                          size_t errlen);

/* Runs an audio-only graph ([aout]) and returns its samples as mono float
 * (the channels averaged) at 48 kHz; *samples is malloc'd, the caller's. */
int render_graph_samples(const char *graph, float **samples, size_t *n, char *errbuf,
                         size_t errlen);

/* Decodes the frame of the video at t seconds (or the last one before it)
 * and writes it as a JPEG at most max_width wide (0 = full size). */
int render_thumbnail(const char *video_path, double t, int max_width, const char *jpg_path,
                     char *errbuf, size_t errlen);

#endif
