/* music_bed.h - the offline music bed: a quiet, finished-sounding background
 * track synthesised in C when the user gives no music.
 *
 * A render with a voice but no music sounds unfinished, and fetching stock
 * music would make the render depend on a network and a licence. So the mix
 * stage asks for a bed instead: a key and a four-chord loop picked from a
 * seed, a slow pad, a soft bass on beats 1 and 3, a plucked arpeggio on the
 * eighth notes and a barely-there thump on every beat, faded in and out. The
 * seed makes it reproducible (a re-render sounds the same; another project
 * sounds different). Pure C and libm; no third-party headers. The bed is
 * rendered in four-second blocks, so memory does not grow with the duration.
 *
 * Determinism: the same options give the same bytes on the same build and
 * libm (the pitches and envelopes go through sin/exp/pow once per note). */
#ifndef FENTA_MUSIC_BED_H
#define FENTA_MUSIC_BED_H
#include <stddef.h>
#include <stdint.h>

#define MUSIC_BED_DEFAULT_RATE 48000
#define MUSIC_BED_MIN_RATE 8000
#define MUSIC_BED_MAX_RATE 192000
#define MUSIC_BED_MAX_SECONDS 3600.0
#define MUSIC_BED_MIN_BPM 40.0  /* bpm accepted when given explicitly */
#define MUSIC_BED_MAX_BPM 200.0 /* (the seed alone picks 84..110) */

typedef struct music_bed_opts {
    uint32_t seed;     /* picks key, progression, tempo, patterns and detune */
    double duration_s; /* length of the bed, (0, MUSIC_BED_MAX_SECONDS] */
    int sample_rate;   /* Hz; 0 = MUSIC_BED_DEFAULT_RATE; else MIN_RATE..MAX_RATE */
    double bpm;        /* 0 = from the seed (84..110); else MIN_BPM..MAX_BPM */
} music_bed_opts_t;

/* What a set of options will play, for logs and for tests that check the
 * music follows its chords. */
typedef struct music_bed_plan {
    double bpm;     /* beats per minute actually used; 4 beats to the bar */
    int key;        /* tonic pitch class of the major key: 0 = C .. 9 = A */
    int degrees[4]; /* chord of bars 1-4 of the loop as scale degree: 0 = I .. 5 = vi */
    int roots[4];   /* pitch class (0 = C) of each of those chords' root */
    char name[64];  /* e.g. "D major, vi-IV-I-V, 96 bpm" */
} music_bed_plan_t;

/* Fills *plan for the options (bar b of the bed plays chord b % 4). Returns 0,
 * or FENTA_EINVAL with errbuf (if errlen > 0) naming the bad field. */
int music_bed_plan(const music_bed_opts_t *o, music_bed_plan_t *plan, char *errbuf, size_t errlen);

/* Writes the bed as a 16-bit little-endian stereo PCM WAV of exactly
 * round(duration_s * rate) frames to path: into a temporary file beside it,
 * fsync'd, then renamed over path, so a reader never sees half a file. Peaks
 * sit near -6 dBFS and never above -3 dBFS; the first second fades in and the
 * last two fade out (shorter for short beds). Returns 0, or
 *   FENTA_EINVAL  o or path NULL/empty, duration not in (0, 3600] or under one
 *                 frame, rate or bpm out of range (errbuf names the field);
 *   FENTA_EIO     the file cannot be created, written, synced or renamed
 *                 (errbuf names the path and the system's reason; no
 *                 temporary file is left behind);
 *   FENTA_ENOMEM  out of memory.
 * Thread-safe; about 30 ms of CPU per minute of 48 kHz audio, and about
 * 7 MB of memory at 48 kHz whatever the duration (the current block and one
 * copy of each pluck; proportional to the rate). */
int music_bed_write(const music_bed_opts_t *o, const char *path, char *errbuf, size_t errlen);

#endif
