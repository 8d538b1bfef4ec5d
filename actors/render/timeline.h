/* timeline.h - the edit stage's plan: which picture is on screen when, and
 * the single libavfilter graph that renders the whole short.
 *
 * The plan fits the clips to the voice: the video lasts exactly as long as
 * the voice (in whole frames), each clip lasts between the template's
 * min_s and max_s (sources are cycled when there are too few, dropped when
 * there are too many, and procedural backgrounds stand in when there are
 * none), and transitions overlap neighbours by transition_s.
 *
 * The graph is text in FFmpeg's filtergraph syntax with movie/amovie and
 * lavfi sources, so it runs unchanged in-process (render_graph.h) and in the
 * ffmpeg command line (ops/bench/render compares the two). It ends in two
 * open outputs, [vout] (yuv420p at the output size and rate) and [aout]
 * (48 kHz stereo float). Every source gets an explicit length - an endless
 * source feeding a "shortest" mix is how other renderers hang forever.
 * Pure text building: no libav headers here. */
#ifndef FENTA_TIMELINE_H
#define FENTA_TIMELINE_H
#include "actors/render/render_spec.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct timeline_source {
    const char *path;  /* absolute path of a probed picture or video */
    bool still;        /* a picture */
    double duration_s; /* of a video; 0 for a still */
    double start_s;    /* where to start in a video */
    int rotation;      /* clockwise degrees to turn it upright: 0, 90, 180, 270 */
} timeline_source_t;

typedef enum {
    TIMELINE_FULL,         /* the short: [vout] and [aout] */
    TIMELINE_AUDIO,        /* the short's finished audio alone as [aout] (loudness check) */
    TIMELINE_VOICE_LEVEL,  /* the voice alone as [aout], for measuring its loudness */
    TIMELINE_DUCKED_MUSIC, /* the ducked music alone as [aout] (tests: ducking depth) */
} timeline_mode_t;

typedef struct timeline_in {
    const render_spec_t *spec;        /* template, output size and rate, seed */
    const timeline_source_t *sources; /* in the user's order; may be empty */
    size_t nsources;
    const char *voice_path; /* the voice track */
    double voice_s;         /* its length */
    double voice_lufs;      /* its integrated loudness (TIMELINE_VOICE_LEVEL); 0 = assume -23 */
    const char *music_path; /* NULL = no music */
    bool music_loop;        /* a user's track, looped when shorter than the voice */
    const char *ass_path;   /* the captions; NULL = none */
    double gain_db;         /* the loudness gain, found by metering TIMELINE_AUDIO */
    timeline_mode_t mode;
} timeline_in_t;

typedef struct timeline_clip {
    int source;     /* index into sources, or -1 for a procedural background */
    int64_t frames; /* length on the timeline, transitions included */
    double start_s; /* where in the source it starts */
    bool loop;      /* the video is shorter than its slot and loops */
    int motion; /* Ken Burns variant for stills (0 zoom in, 1 zoom out, 2 pan right, 3 pan down) */
} timeline_clip_t;

typedef struct timeline {
    timeline_clip_t *clips; /* owned */
    size_t nclips;
    int64_t frames;            /* the video's length in frames (= the voice, rounded) */
    int64_t transition_frames; /* overlap between neighbours; 0 = cuts */
    int64_t audio_samples;     /* the audio's length at 48 kHz (= frames exactly) */
    char *graph;               /* the filtergraph; owned */
} timeline_t;

/* Plans the clips and writes the graph for in->mode. Returns 0, or
 * FENTA_EINVAL with errbuf (a voice shorter than one frame, a voice longer
 * than 10 minutes, a still given no Ken Burns room), FENTA_ENOMEM. On
 * failure *out owns nothing. */
int timeline_build(const timeline_in_t *in, timeline_t *out, char *errbuf, size_t errlen);

/* Frees what *t owns and zeroes it; a zeroed struct is a no-op. */
void timeline_free(timeline_t *t);

#endif
