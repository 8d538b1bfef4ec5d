/* music_bed.c - synthesises the offline music bed (see music_bed.h) and
 * writes it as a WAV.
 *
 * The bed is notes on a grid of eighth notes: per bar one pad chord, two bass
 * notes, four thumps and eight arpeggio plucks. A note is added whole into a
 * pair of accumulators that start at the current block and reach one longest
 * note past it; it belongs to the block holding its first sample, so each is
 * added once and a block is final when its notes are in. Every envelope
 * starts and ends at zero, so no note can click however the notes overlap.
 *
 * Speed (60 s at 48 kHz in ~30 ms): sin() per sample per partial would cost
 * most of a second, so a partial is a phasor, four samples per SIMD step,
 * with its harmonics derived from it (sin 2x = 2 s c). A pluck or bass note
 * starts at phase zero, so it is the same every time it is played: it is
 * synthesised once per pitch and then only scaled and added. The pad cannot
 * be cached, as its phases follow absolute time (see render_pad). */
#include "actors/render/music_bed.h"
#include "actors/media/wav.h"
#include "runtime/error.h"
#include "runtime/fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TWO_PI 6.283185307179586

/* ---- what is played ------------------------------------------------------ */

static const int major_scale[7] = {0, 2, 4, 5, 7, 9, 11};
static const char *const key_names[10] = {"C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A"};
static const char *const degree_names[7] = {"I", "ii", "iii", "IV", "V", "vi", "vii"};

/* Four-chord loops of pop and lo-fi, as scale degrees. */
static const int progressions[][4] = {
    {0, 4, 5, 3}, /* I-V-vi-IV */
    {5, 3, 0, 4}, /* vi-IV-I-V */
    {0, 5, 3, 4}, /* I-vi-IV-V */
    {0, 3, 5, 4}, /* I-IV-vi-V */
    {3, 0, 4, 5}, /* IV-I-V-vi */
};
#define NPROGRESSIONS (sizeof progressions / sizeof progressions[0])

/* Arpeggio figures, a chord tone per eighth note: 0 root, 1 third, 2 fifth,
 * 3 root an octave up. Each starts on the root so the downbeat names the
 * chord; a bed alternates two of them every four bars. */
static const int arp_figures[][8] = {
    {0, 1, 2, 3, 2, 1, 2, 1},
    {0, 2, 1, 3, 0, 2, 1, 2},
    {0, 1, 2, 1, 3, 2, 1, 2},
    {0, 2, 3, 2, 1, 2, 3, 2},
};
#define NFIGURES (sizeof arp_figures / sizeof arp_figures[0])

/* A struck voice: harmonics 1-3, the upper ones decaying faster (which is
 * what makes a pluck sound plucked), under a short linear attack and release. */
typedef struct voice {
    double amp[3];    /* starting level of each harmonic */
    double tau_s[3];  /* its exponential decay time constant */
    double attack_s;  /* linear rise from zero */
    double release_s; /* linear fall to zero at the end of the note */
} voice_t;

enum { BASS, PLUCK, NVOICES };
static const voice_t voices[NVOICES] = {
    [BASS] = {{1, 0.3, 0.08}, {0.5, 0.25, 0.12}, 0.008, 0.06},
    [PLUCK] = {{1, 0.35, 0.1}, {0.35, 0.12, 0.06}, 0.003, 0.04},
};

/* Levels: the pad carries the bed, the arpeggio sits under it, the thump is
 * felt more than heard; MASTER puts the peaks near -6 dBFS. */
#define MASTER 2.2
#define GAIN_PAD (MASTER * 0.060)
#define GAIN_BASS (MASTER * 0.085)
#define GAIN_ARP (MASTER * 0.050)
#define GAIN_KICK (MASTER * 0.080)
#define PAD_XFADE_S 0.45 /* a pad chord starts this long before its bar and ends as long after */
#define ARP_LEN_S 1.0    /* a pluck rings this long (it is below -25 dB by then) */
#define KICK_LEN_S 0.080
#define LIMIT_KNEE 0.5f /* -6 dBFS: below it the limiter does nothing */
#define LIMIT_CEIL 0.7f /* -3.1 dBFS: it never lets a sample past this */
#define FADE_IN_S 1.0
#define FADE_OUT_S 2.0

/* ---- the seed ------------------------------------------------------------ */

/* splitmix64's finaliser. */
static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30, x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27, x *= 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

enum { R_KEY = 1, R_PROG, R_BPM, R_FIGURE_A, R_FIGURE_B, R_DETUNE, R_VELOCITY };

/* A random value for decision what (of note index): each decision has its
 * own stream, so a note never depends on the order notes are rendered in. */
static uint64_t rnd(uint32_t seed, int what, uint64_t index)
{
    return mix64(mix64(((uint64_t)seed << 8 | (uint64_t)what) + 0x9e3779b97f4a7c15ULL) ^ index);
}

static double rnd01(uint32_t seed, int what, uint64_t index)
{
    return (double)(rnd(seed, what, index) >> 11) * 0x1p-53;
}

/* ---- options and plan ---------------------------------------------------- */

static int check_opts(const music_bed_opts_t *o, char *errbuf, size_t errlen)
{
    if (!o)
        return fenta_fail(errbuf, errlen, FENTA_EINVAL, "music bed: no options given");
    /* Written so that NaN fails every test. */
    if (!(o->duration_s > 0 && o->duration_s <= MUSIC_BED_MAX_SECONDS))
        return fenta_fail(errbuf, errlen, FENTA_EINVAL,
                          "music bed: duration_s %g is not in (0, %g]", o->duration_s,
                          MUSIC_BED_MAX_SECONDS);
    if (o->sample_rate != 0 &&
        (o->sample_rate < MUSIC_BED_MIN_RATE || o->sample_rate > MUSIC_BED_MAX_RATE))
        return fenta_fail(errbuf, errlen, FENTA_EINVAL,
                          "music bed: sample_rate %d is not 0 or %d..%d", o->sample_rate,
                          MUSIC_BED_MIN_RATE, MUSIC_BED_MAX_RATE);
    if (o->bpm != 0 && !(o->bpm >= MUSIC_BED_MIN_BPM && o->bpm <= MUSIC_BED_MAX_BPM))
        return fenta_fail(errbuf, errlen, FENTA_EINVAL, "music bed: bpm %g is not 0 or %g..%g",
                          o->bpm, MUSIC_BED_MIN_BPM, MUSIC_BED_MAX_BPM);
    int rate = o->sample_rate ? o->sample_rate : MUSIC_BED_DEFAULT_RATE;
    if (llround(o->duration_s * rate) < 1)
        return fenta_fail(errbuf, errlen, FENTA_EINVAL,
                          "music bed: duration_s %g is shorter than one sample at %d Hz",
                          o->duration_s, rate);
    return 0;
}

int music_bed_plan(const music_bed_opts_t *o, music_bed_plan_t *plan, char *errbuf, size_t errlen)
{
    int rc = check_opts(o, errbuf, errlen);
    if (rc != 0)
        return rc;
    if (!plan)
        return fenta_fail(errbuf, errlen, FENTA_EINVAL, "music bed: no plan to fill");
    memset(plan, 0, sizeof *plan);
    plan->bpm = o->bpm != 0 ? o->bpm : 84 + (double)(rnd(o->seed, R_BPM, 0) % 27);
    plan->key = (int)(rnd(o->seed, R_KEY, 0) % 10);
    const int *prog = progressions[rnd(o->seed, R_PROG, 0) % NPROGRESSIONS];
    for (int i = 0; i < 4; i++) {
        plan->degrees[i] = prog[i];
        plan->roots[i] = (plan->key + major_scale[prog[i]]) % 12;
    }
    snprintf(plan->name, sizeof plan->name, "%s major, %s-%s-%s-%s, %g bpm", key_names[plan->key],
             degree_names[prog[0]], degree_names[prog[1]], degree_names[prog[2]],
             degree_names[prog[3]], plan->bpm);
    return 0;
}

/* ---- four samples at a time ---------------------------------------------- */

/* GCC/Clang vector extensions: SSE on x86-64, NEON on arm64, scalar code
 * elsewhere. Lane i is sample j + i; the lanes are independent, which is what
 * makes the phasors fast (a scalar phasor is one long chain of dependent
 * multiplies). */
typedef float v4 __attribute__((vector_size(16)));
#define LANES 4

static v4 splat(double x)
{
    return (v4){(float)x, (float)x, (float)x, (float)x};
}

/* Unaligned, like the notes: memcpy compiles to one load and one store. */
static void add4(float *p, v4 v)
{
    v4 a;
    memcpy(&a, p, sizeof a);
    a += v;
    memcpy(p, &a, sizeof a);
}

/* A sinusoid, lane i at phase + w i, turned by LANES samples per step. The
 * angles come from double once; float then drifts by under 1% over a note. */
typedef struct phasor {
    v4 c, s;   /* cosine and sine of each lane's phase */
    v4 cr, sr; /* cosine and sine of one step */
} phasor_t;

static phasor_t phasor_at(double phase, double w)
{
    phasor_t p;
    for (int i = 0; i < LANES; i++)
        p.c[i] = (float)cos(phase + w * i), p.s[i] = (float)sin(phase + w * i);
    p.cr = splat(cos(w * LANES)), p.sr = splat(sin(w * LANES));
    return p;
}

static void phasor_step(phasor_t *p)
{
    v4 c = p->c;
    p->c = c * p->cr - p->s * p->sr;
    p->s = p->s * p->cr + c * p->sr;
}

/* Per lane clamp(min(a, b), 0, 1), by masks: C has no vector ?:, and fmin
 * is a libm call. 0.0f is all zero bits. */
static v4 min_clamp01(v4 a, v4 b)
{
    typedef int32_t v4i __attribute__((vector_size(16))); /* a comparison: -1 or 0 per lane */
    v4i m = a < b;
    v4 t = (v4)(((v4i)a & m) | ((v4i)b & ~m));
    t = (v4)((v4i)t & ~(t < 0));
    return (v4)(((v4i)t & ~(t > 1)) | ((v4i)splat(1) & (t > 1)));
}

/* Lanes j .. j + 3 of a note len long: rising over att samples from 0 at
 * j = 0, falling over rel samples to 0 at j = len - 1, 0 past the end. */
static v4 envelope(int64_t j, int64_t len, double att, double rel)
{
    v4 jv = splat((double)j) + (v4){0, 1, 2, 3}; /* exact: notes are far below 2^24 */
    return min_clamp01(jv * splat(1 / att), (splat((double)(len - 1)) - jv) * splat(1 / rel));
}

/* 0 at t <= 0, 1 at t >= 1, smooth between. */
static double smoothstep(double t)
{
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    return t * t * (3 - 2 * t);
}

/* ---- the notes ----------------------------------------------------------- */

/* One render: the timeline, the cached notes and the current block. */
typedef struct bed {
    uint32_t seed;
    music_bed_plan_t plan;
    int rate;                  /* samples per second */
    int64_t frames;            /* length of the bed */
    double beat;               /* samples per beat, not rounded */
    double detune;             /* frequency ratio between a pad tone's two voices */
    int figure[2];             /* arpeggio figures of even and odd 4-bar phrases */
    int64_t pad_x;             /* PAD_XFADE_S in samples */
    int64_t len[NVOICES];      /* length of a bass note (two beats less a breath), a pluck */
    float *wave[NVOICES][128]; /* struck notes by MIDI number, made on first use */
    float *kick;               /* the thump, kick_len samples */
    int64_t kick_len;          /* KICK_LEN_S in samples */
    int64_t c0;                /* first sample of the current block */
    int64_t acc_len;           /* samples in each accumulator: a block and the longest note */
    float *l, *r;              /* left and right accumulators from c0, LANES to spare */
} bed_t;

/* Sample where eighth note e of the bed starts: one formula for all notes,
 * so no part drifts from another. */
static int64_t eighth_at(const bed_t *b, int64_t e)
{
    return llround((double)e * b->beat / 2);
}

static double midi_hz(int m)
{
    return 440.0 * pow(2.0, (m - 69) / 12.0);
}

/* MIDI note of pitch class pc in [lo, lo + 12). */
static int place(int pc, int lo)
{
    return lo + ((pc - lo) % 12 + 12) % 12;
}

/* Pitch classes of bar's chord: root, third, fifth. */
static void chord_of(const bed_t *b, int64_t bar, int pc[3])
{
    int d = b->plan.degrees[bar % 4];
    for (int i = 0; i < 3; i++)
        pc[i] = (b->plan.key + major_scale[(d + 2 * i) % 7]) % 12;
}

/* Left and right gains of a constant-power pan in [-1, 1]. */
static void pan_gains(double pan, double g, v4 *gl, v4 *gr)
{
    *gl = splat(g * cos((pan + 1) * TWO_PI / 8));
    *gr = splat(g * sin((pan + 1) * TWO_PI / 8));
}

/* The note [start, start + len) clipped to the accumulators, which cover
 * [c0, c0 + acc_len), and to the bed: sets the part to render, [j0, j1) of
 * the note, and returns the note's offset in the accumulators. Rendering runs
 * on in whole steps past j1; the accumulators have room and the envelopes are
 * zero past the note's end, so that adds nothing. */
static int64_t clip(const bed_t *b, int64_t start, int64_t len, int64_t *j0, int64_t *j1)
{
    int64_t off = start - b->c0;
    int64_t end = b->acc_len < b->frames - b->c0 ? b->acc_len : b->frames - b->c0;
    *j0 = off < 0 ? -off : 0;
    *j1 = end - off < len ? end - off : len;
    return off;
}

/* MIDI notes of bar's pad chord: its root an octave under, then the triad in
 * close position around middle C (so the voices move by steps, not leaps). */
static void pad_notes(const bed_t *b, int64_t bar, int m[4])
{
    int pc[3];
    chord_of(b, bar, pc);
    m[0] = place(pc[0], 48);
    for (int i = 0; i < 3; i++)
        m[i + 1] = place(pc[i], 55);
}

static bool has_note(const int m[4], int note)
{
    return m[0] == note || m[1] == note || m[2] == note || m[3] == note;
}

/* The pad chord of bar: each tone as two voices detuned and panned apart (the
 * slow beating between them is the pad's movement), each voice with a quiet
 * octave for warmth. Phases follow absolute time, so a tone the neighbouring
 * chord shares is the same wave in both: across the bar line it crossfades
 * linearly (the sum stays exactly 1), while the tones that change crossfade
 * at equal power, so the pad neither dips nor swells at a chord change. */
static void render_pad(bed_t *b, int64_t bar)
{
    enum { NV = 8 };
    static const double tone_amp[4] = {0.7, 1.0, 0.85, 0.9};
    int64_t start = eighth_at(b, bar * 8) - b->pad_x;
    int64_t len = eighth_at(b, bar * 8 + 8) + b->pad_x - start;
    int64_t ramp = 2 * b->pad_x, j0, j1;
    int64_t off = clip(b, start, len, &j0, &j1);
    int m[4], prev[4], next[4];
    bool held_in[4], held_out[4];
    pad_notes(b, bar, m), pad_notes(b, bar + 1, next);
    pad_notes(b, bar > 0 ? bar - 1 : 0, prev);
    for (int t = 0; t < 4; t++)
        held_in[t] = bar > 0 && has_note(prev, m[t]), held_out[t] = has_note(next, m[t]);
    phasor_t ph[NV];
    v4 amp[NV], oct[NV], gl[2], gr[2];
    for (int v = 0; v < NV; v++) {
        double f = midi_hz(m[v / 2]) * (v % 2 ? b->detune : 1 / b->detune);
        double x = f * (double)(start + j0) / b->rate;
        ph[v] = phasor_at(TWO_PI * (x - floor(x)), TWO_PI * f / b->rate);
        amp[v] = splat(tone_amp[v / 2] * 0.5);
        oct[v] = splat(2 * f < 0.45 * b->rate ? tone_amp[v / 2] * 0.5 * 2 * 0.24 : 0);
    }
    pan_gains(-0.6, GAIN_PAD, &gl[0], &gr[0]); /* even voices left of centre */
    pan_gains(0.6, GAIN_PAD, &gl[1], &gr[1]);  /* odd voices right */
    for (int64_t j = j0; j < j1; j += LANES) {
        v4 lo[4], hi[4]; /* each tone's left and right voice */
#pragma GCC unroll 4
        for (int t = 0; t < 4; t++) {
            int v = 2 * t;
            lo[t] = ph[v].s * (amp[v] + oct[v] * ph[v].c); /* s + 0.24 sin 2x */
            hi[t] = ph[v + 1].s * (amp[v + 1] + oct[v + 1] * ph[v + 1].c);
            phasor_step(&ph[v]), phasor_step(&ph[v + 1]);
        }
        if (j < ramp || j + LANES > len - ramp) { /* attack or release */
            v4 e = envelope(j, len, (double)ramp, (double)ramp), ep;
            e = e * e * (3 - 2 * e); /* smoothstep, and its root for equal power */
            for (int i = 0; i < LANES; i++)
                ep[i] = sqrtf(e[i]);
            const bool *held = j < ramp ? held_in : held_out;
            for (int t = 0; t < 4; t++)
                lo[t] *= held[t] ? e : ep, hi[t] *= held[t] ? e : ep;
        }
        v4 sl = lo[0] + lo[1] + lo[2] + lo[3], sh = hi[0] + hi[1] + hi[2] + hi[3];
        add4(b->l + off + j, sl * gl[0] + sh * gl[1]);
        add4(b->r + off + j, sl * gr[0] + sh * gr[1]);
    }
}

/* Struck voice which at MIDI note m, at unit gain: synthesised on first use
 * (NULL when out of memory). Harmonics 2 and 3 come from the fundamental's
 * phasor: sin 2x = 2 s c, sin 3x = s (3 - 4 s^2). */
static const float *struck(bed_t *b, int which, int m)
{
    if (b->wave[which][m])
        return b->wave[which][m];
    const voice_t *v = &voices[which];
    int64_t len = b->len[which];
    float *w = calloc((size_t)(len + LANES), sizeof *w);
    if (!w)
        return NULL;
    double f = midi_hz(m);
    phasor_t ph = phasor_at(0, TWO_PI * f / b->rate);
    v4 d[3], k[3];
    for (int p = 0; p < 3; p++) {
        bool audible = (p + 1) * f < 0.45 * b->rate;
        double tau = v->tau_s[p] * b->rate;
        for (int i = 0; i < LANES; i++)
            d[p][i] = audible ? (float)(v->amp[p] * exp(-i / tau)) : 0.f;
        k[p] = splat(exp(-LANES / tau));
    }
    double att = v->attack_s * b->rate, rel = v->release_s * b->rate;
    for (int64_t j = 0; j < len; j += LANES) {
        v4 s = ph.s, c = ph.c;
        v4 y = d[0] * s + d[1] * (2 * s * c) + d[2] * (s * (3 - 4 * s * s));
        if (j < att || j + LANES > len - rel) /* attack or release */
            y *= envelope(j, len, att, rel);
        memcpy(w + j, &y, sizeof y);
        d[0] *= k[0], d[1] *= k[1], d[2] *= k[2];
        phasor_step(&ph);
    }
    return b->wave[which][m] = w;
}

/* Adds wave (len samples, LANES more readable) at start, panned. */
static void mix(bed_t *b, const float *w, int64_t len, int64_t start, double gain, double pan)
{
    int64_t j0, j1;
    int64_t off = clip(b, start, len, &j0, &j1);
    v4 gl, gr, y;
    pan_gains(pan, gain, &gl, &gr);
    for (int64_t j = j0; j < j1; j += LANES) {
        memcpy(&y, w + j, sizeof y);
        add4(b->l + off + j, y * gl);
        add4(b->r + off + j, y * gr);
    }
}

/* The thump: a sine gliding from ~130 Hz down to 48 Hz under a fast decay. */
static void make_kick(bed_t *b)
{
    double ph = 0, rate = b->rate;
    for (int64_t j = 0; j < b->kick_len + LANES; j++) {
        double t = j / rate;
        double e = fmin(1.0, t / 0.002) * exp(-t / 0.035);
        double tail = fmax(0.0, (double)(b->kick_len - 1 - j) / (0.015 * rate));
        b->kick[j] = (float)(e * fmin(1.0, tail) * sin(ph));
        ph += TWO_PI * (48 + 80 * exp(-t / 0.018)) / rate;
    }
}

/* Whether a note starting at s belongs to the block [c0, c1): the first pad
 * chord starts before the bed and goes to the first block. */
static bool in_block(const bed_t *b, int64_t s, int64_t c1)
{
    return s < c1 && s < b->frames && (s >= b->c0 || (b->c0 == 0 && s < 0));
}

/* Adds every note of bar that starts in the block [c0, c1). */
static int render_bar(bed_t *b, int64_t bar, int64_t c1)
{
    int64_t e0 = bar * 8;
    if (in_block(b, eighth_at(b, e0) - b->pad_x, c1))
        render_pad(b, bar);
    int pc[3];
    chord_of(b, bar, pc);
    for (int q = 0; q < 4; q++) {
        int64_t s = eighth_at(b, e0 + 2 * q);
        if (!in_block(b, s, c1))
            continue;
        mix(b, b->kick, b->kick_len, s, GAIN_KICK * (q == 0 ? 1.0 : 0.7), 0);
        if (q % 2) /* the bass plays beats 1 and 3 */
            continue;
        const float *w = struck(b, BASS, place(pc[0], 36));
        if (!w)
            return FENTA_ENOMEM;
        mix(b, w, b->len[BASS], s, GAIN_BASS * (q == 0 ? 1.0 : 0.8), 0);
    }
    int root = place(pc[0], 62);
    int tones[4] = {root, root + (pc[1] - pc[0] + 12) % 12, root + (pc[2] - pc[0] + 12) % 12,
                    root + 12};
    const int *fig = arp_figures[b->figure[(bar / 4) % 2]];
    for (int i = 0; i < 8; i++) {
        int64_t s = eighth_at(b, e0 + i);
        if (!in_block(b, s, c1))
            continue;
        const float *w = struck(b, PLUCK, tones[fig[i]]);
        if (!w)
            return FENTA_ENOMEM;
        static const double accent[8] = {1.1, 0.85, 1, 0.85, 1, 0.85, 1, 0.85};
        double vel = accent[i] * (0.85 + 0.15 * rnd01(b->seed, R_VELOCITY, (uint64_t)(e0 + i)));
        mix(b, w, b->len[PLUCK], s, GAIN_ARP * vel, -0.45 + 0.3 * fig[i]); /* low left */
    }
    return 0;
}

/* ---- the output ---------------------------------------------------------- */

/* A sample past LIMIT_KNEE, bent by a soft knee that can never pass
 * LIMIT_CEIL (tanh keeps the slope continuous, so no corner is heard). */
static float limit(float x)
{
    double room = LIMIT_CEIL - LIMIT_KNEE;
    double a = LIMIT_KNEE + room * tanh((fabs(x) - LIMIT_KNEE) / room);
    return (float)(x < 0 ? -a : a);
}

/* The block's first n frames as 16-bit little-endian stereo, through the
 * limiter and the fades. */
static void emit(const bed_t *b, int64_t n, int64_t fade_in, int64_t fade_out, unsigned char *out)
{
    for (int64_t i = 0; i < n; i++) {
        int64_t t = b->c0 + i, left = b->frames - 1 - t;
        float g = 1;
        if (t < fade_in || left < fade_out)
            g = (float)(smoothstep((double)t / fade_in) * smoothstep((double)left / fade_out));
        for (int c = 0; c < 2; c++) {
            float x = (c ? b->r : b->l)[i];
            x = fabsf(x) > LIMIT_KNEE ? limit(x) : x;
            /* Round half up: the sum is positive, so truncation is floor. */
            int32_t q = (int32_t)(x * g * 32767 + 32768.5f) - 32768;
            out[4 * i + 2 * c] = (unsigned char)q;
            out[4 * i + 2 * c + 1] = (unsigned char)((uint32_t)q >> 8);
        }
    }
}

/* Renders the bed block by block into f after its header. Returns 0,
 * FENTA_ENOMEM, or FENTA_EIO with errno set. */
static int render_to(bed_t *b, FILE *f, unsigned char *out, int64_t block)
{
    unsigned char h[WAV_HEADER_BYTES];
    uint32_t data = (uint32_t)(b->frames * 4); /* < 2^32: 3600 s at 192 kHz is 2.8 GB */
    wav_header(h, b->rate, 2, data);
    if (fwrite(h, sizeof h, 1, f) != 1)
        return FENTA_EIO;
    double bar_len = 4 * b->beat;
    int64_t fade_in = llround(fmin(FADE_IN_S, b->frames / (8.0 * b->rate)) * b->rate);
    int64_t fade_out = llround(fmin(FADE_OUT_S, b->frames / (4.0 * b->rate)) * b->rate);
    for (b->c0 = 0; b->c0 < b->frames; b->c0 += block) {
        int64_t c1 = b->c0 + block < b->frames ? b->c0 + block : b->frames;
        int64_t bar = (int64_t)floor(b->c0 / bar_len) - 1;
        for (bar = bar < 0 ? 0 : bar; bar <= (int64_t)floor((c1 + b->pad_x) / bar_len) + 1; bar++)
            if (render_bar(b, bar, c1) != 0)
                return FENTA_ENOMEM;
        emit(b, c1 - b->c0, fade_in > 0 ? fade_in : 1, fade_out > 0 ? fade_out : 1, out);
        if (fwrite(out, 4, (size_t)(c1 - b->c0), f) != (size_t)(c1 - b->c0))
            return FENTA_EIO;
        size_t keep = (size_t)(b->acc_len - block), clear = (size_t)block + LANES;
        memmove(b->l, b->l + block, keep * sizeof *b->l);
        memmove(b->r, b->r + block, keep * sizeof *b->r);
        memset(b->l + keep, 0, clear * sizeof *b->l);
        memset(b->r + keep, 0, clear * sizeof *b->r);
    }
    return 0;
}

/* Creates the temporary file, renders into it, syncs and renames it. */
static int write_file(bed_t *b, const char *path, unsigned char *out, int64_t block, char *errbuf,
                      size_t errlen)
{
    char why[128], *tmp = NULL;
    if (asprintf(&tmp, "%s.XXXXXX", path) < 0)
        return fenta_fail(errbuf, errlen, FENTA_ENOMEM, "music bed '%s': out of memory", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        free(tmp);
        return fenta_fail(errbuf, errlen, FENTA_EIO,
                          "music bed '%s': cannot create a file beside it: %s", path,
                          strerror_r(errno, why, sizeof why));
    }
    (void)fchmod(fd, 0644); /* mkstemp makes 0600; the mix stage may run as another user */
    FILE *f = fdopen(fd, "wb");
    int rc = f ? render_to(b, f, out, block) : FENTA_EIO;
    if (rc == 0 && (fflush(f) != 0 || fsync(fd) != 0))
        rc = FENTA_EIO;
    int err = errno;
    if ((f ? fclose(f) : close(fd)) != 0 && rc == 0)
        rc = FENTA_EIO, err = errno;
    if (rc == 0 && rename(tmp, path) != 0)
        rc = FENTA_EIO, err = errno;
    if (rc != 0)
        unlink(tmp);
    free(tmp);
    if (rc == FENTA_ENOMEM)
        return fenta_fail(errbuf, errlen, rc, "music bed '%s': out of memory", path);
    if (rc != 0)
        return fenta_fail(errbuf, errlen, rc, "music bed '%s': cannot write it: %s", path,
                          strerror_r(err, why, sizeof why));
    /* Best effort: some file systems refuse fsync on a folder, and the data
     * is already safe. */
    (void)fsutil_sync_dir_of(path);
    return 0;
}

int music_bed_write(const music_bed_opts_t *o, const char *path, char *errbuf, size_t errlen)
{
    int rc = check_opts(o, errbuf, errlen);
    if (rc != 0)
        return rc;
    if (!path || !*path)
        return fenta_fail(errbuf, errlen, FENTA_EINVAL, "music bed: no path given");
    bed_t b = {.seed = o->seed, .rate = o->sample_rate ? o->sample_rate : MUSIC_BED_DEFAULT_RATE};
    music_bed_plan(o, &b.plan, NULL, 0);
    b.frames = llround(o->duration_s * b.rate);
    b.beat = 60.0 * b.rate / b.plan.bpm;
    /* 4..8 cents each way: enough to shimmer, not enough to sound out of tune. */
    b.detune = pow(2.0, (4 + 4 * rnd01(o->seed, R_DETUNE, 0)) / 1200);
    b.figure[0] = (int)(rnd(o->seed, R_FIGURE_A, 0) % NFIGURES);
    b.figure[1] =
        (int)((b.figure[0] + 1 + rnd(o->seed, R_FIGURE_B, 0) % (NFIGURES - 1)) % NFIGURES);
    b.pad_x = llround(PAD_XFADE_S * b.rate);
    b.len[BASS] = llround(2 * b.beat * 0.95);
    b.len[PLUCK] = llround(ARP_LEN_S * b.rate);
    b.kick_len = llround(KICK_LEN_S * b.rate);
    /* Four-second blocks: the longest note (a pad chord, ~3.6 s at 84 bpm)
     * is carried from block to block, so a longer block moves it less. */
    int64_t block = 4 * (int64_t)b.rate, longest = llround(4 * b.beat) + 2 * b.pad_x + 2;
    longest = longest > b.len[PLUCK] ? longest : b.len[PLUCK];
    b.acc_len = block + longest;
    b.l = calloc((size_t)(b.acc_len + LANES), sizeof *b.l);
    b.r = calloc((size_t)(b.acc_len + LANES), sizeof *b.r);
    b.kick = malloc((size_t)(b.kick_len + LANES) * sizeof *b.kick);
    unsigned char *out = malloc((size_t)block * 4);
    if (!b.l || !b.r || !b.kick || !out) {
        rc = fenta_fail(errbuf, errlen, FENTA_ENOMEM, "music bed '%s': out of memory", path);
    } else {
        make_kick(&b);
        rc = write_file(&b, path, out, block, errbuf, errlen);
    }
    for (int v = 0; v < NVOICES; v++)
        for (int m = 0; m < 128; m++)
            free(b.wave[v][m]);
    free(out), free(b.kick), free(b.l), free(b.r);
    return rc;
}
