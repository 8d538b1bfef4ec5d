/* timeline.c - clips fitted to the voice, and the one filtergraph that
 * renders them. See timeline.h. */
#include "actors/render/timeline.h"
#include "runtime/error.h"
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AUDIO_RATE 48000
#define MAX_VOICE_S 600.0
/* Procedural backgrounds are drawn at a quarter of the output size and
 * scaled up: gradients are smooth, and drawing them at 1080x1920 costs more
 * than encoding the frame. */
#define BG_DIVISOR 4
/* The sidechain is brought to this loudness so that the compressor's
 * threshold and ratio give the template's ducking depth whatever the voice's
 * own level. */
#define SIDECHAIN_LUFS -23.0
#define DUCK_THRESHOLD_DB -43.0

/* ---- the plan -------------------------------------------------------------- */

/* How many slots of length within [min, max] cover L seconds with n-1
 * overlaps of T, starting from `want` slots. */
static size_t slot_count(double L, double T, double min_s, double max_s, size_t want)
{
    size_t n = want < 1 ? 1 : want;
    while ((L + (double)(n - 1) * T) / (double)n > max_s && n < 10000)
        n++;
    while (n > 1 && (L + (double)(n - 1) * T) / (double)n < min_s)
        n--;
    return n;
}

static int plan(const timeline_in_t *in, timeline_t *out, char *errbuf, size_t errlen)
{
    const render_spec_t *s = in->spec;
    const render_template_t *t = &s->tpl;
    if (!(in->voice_s * s->fps >= 1.0))
        return fenta_fail(errbuf, errlen, FENTA_EINVAL,
                          "the voice is shorter than one frame (%.3f s)", in->voice_s);
    if (in->voice_s > MAX_VOICE_S)
        return fenta_fail(errbuf, errlen, FENTA_EINVAL,
                          "the voice lasts %.0f s; a short may last at most %.0f s", in->voice_s,
                          MAX_VOICE_S);
    out->frames = llround(in->voice_s * s->fps);
    out->audio_samples = out->frames * AUDIO_RATE / s->fps;
    double L = (double)out->frames / s->fps;
    bool cuts = strcmp(t->clips.transition, "none") == 0 || t->clips.transition_s <= 0;
    double T = cuts ? 0 : t->clips.transition_s;
    size_t want = in->nsources;
    if (want == 0)
        want = (size_t)lround(L / ((t->clips.min_s + t->clips.max_s) / 2));
    size_t n = slot_count(L, T, t->clips.min_s, t->clips.max_s, want);
    int64_t tf = n > 1 ? llround(T * s->fps) : 0;
    /* A transition needs frames on both sides of it in every clip. */
    while (n > 1 && (out->frames + (int64_t)(n - 1) * tf) / (int64_t)n < 2 * tf + 1)
        n--;
    if (n == 1)
        tf = 0;
    out->transition_frames = tf;
    out->clips = calloc(n, sizeof *out->clips);
    if (!out->clips)
        return fenta_fail(errbuf, errlen, FENTA_ENOMEM, "out of memory");
    out->nclips = n;
    int64_t total = out->frames + (int64_t)(n - 1) * tf;
    double *used = in->nsources ? calloc(in->nsources, sizeof *used) : NULL;
    if (in->nsources && !used)
        return fenta_fail(errbuf, errlen, FENTA_ENOMEM, "out of memory");
    for (size_t k = 0; k < n; k++) {
        timeline_clip_t *c = &out->clips[k];
        c->frames = total / (int64_t)n + ((int64_t)k < total % (int64_t)n ? 1 : 0);
        c->motion = (int)((s->seed + k) % 4);
        if (in->nsources == 0) {
            c->source = -1;
            continue;
        }
        size_t i = k % in->nsources;
        const timeline_source_t *src = &in->sources[i];
        c->source = (int)i;
        if (src->still)
            continue;
        /* A video shown again continues where it left off, while it lasts. */
        double d = (double)c->frames / s->fps;
        double start = src->start_s + used[i];
        if (start + d > src->duration_s)
            start = src->start_s < src->duration_s ? src->start_s : 0;
        c->start_s = start;
        c->loop = start + d > src->duration_s;
        used[i] = start + d - src->start_s;
    }
    free(used);
    return 0;
}

/* ---- the graph ------------------------------------------------------------- */

/* Writes a path as a filter option value inside a filtergraph: quoted for
 * the option parser (\ ' :) and again for the graph parser (\ ' [ ] , ;),
 * so any file name is read back byte for byte. */
static void put_path(FILE *f, const char *p)
{
    for (; *p; p++) {
        char lvl1[3] = {0};
        size_t n = 0;
        if (*p == '\\' || *p == '\'' || *p == ':')
            lvl1[n++] = '\\';
        lvl1[n++] = *p;
        for (size_t i = 0; i < n; i++) {
            char c = lvl1[i];
            if (c == '\\' || c == '\'' || c == '[' || c == ']' || c == ',' || c == ';')
                fputc('\\', f);
            fputc(c, f);
        }
    }
}

static void put_rgb(FILE *f, uint32_t rgba)
{
    fprintf(f, "0x%06X", (unsigned)(rgba >> 8));
}

/* Turns a picture upright, as players do from the display matrix. */
static void put_rotation(FILE *f, int rotation)
{
    if (rotation == 90)
        fputs(",transpose=clock", f);
    else if (rotation == 180)
        fputs(",hflip,vflip", f);
    else if (rotation == 270)
        fputs(",transpose=cclock", f);
}

/* Fills the canvas: the largest centred window of the canvas's shape is cut
 * from the picture first, then scaled - scaling the whole picture and then
 * cropping would scale (and throw away) up to three times the pixels. */
static void put_cover(FILE *f, int w, int h)
{
    fprintf(f,
            ",crop=w='min(iw,trunc(ih*%d/%d/2)*2)':h='min(ih,trunc(iw*%d/%d/2)*2)',"
            "scale=%d:%d:flags=bicubic,setsar=1",
            w, h, h, w, w, h);
}

static void put_still(FILE *f, const timeline_in_t *in, const timeline_source_t *src,
                      const timeline_clip_t *c)
{
    const render_spec_t *s = in->spec;
    int w = s->width, h = s->height;
    fputs("movie=filename=", f);
    put_path(f, src->path);
    put_rotation(f, src->rotation);
    put_cover(f, w, h);
    double z = s->tpl.clips.ken_burns_zoom;
    if (!s->tpl.clips.ken_burns || z <= 1.0) {
        fprintf(f, ",loop=loop=%" PRId64 ":size=1:start=0,setpts=N/(%d*TB)", c->frames - 1, s->fps);
        return;
    }
    /* zoompan turns the one decoded picture into c->frames frames. Its
     * window moves in whole input pixels; upscaling the picture first would
     * smooth that but doubles the cost of every frame. */
    const char *zoom, *x, *y;
    switch (c->motion) {
    case 0:
        zoom = "1+(%.4f-1)*on/%" PRId64;
        x = "(iw-iw/zoom)/2";
        y = "(ih-ih/zoom)/2";
        break;
    case 1:
        zoom = "%.4f-(%.4f-1)*on/%" PRId64;
        x = "(iw-iw/zoom)/2";
        y = "(ih-ih/zoom)/2";
        break;
    case 2:
        zoom = "%.4f";
        x = "(iw-iw/zoom)*on/%" PRId64;
        y = "(ih-ih/zoom)/2";
        break;
    default:
        zoom = "%.4f";
        x = "(iw-iw/zoom)/2";
        y = "(ih-ih/zoom)*on/%" PRId64;
        break;
    }
    fputs(",zoompan=z='", f);
    if (c->motion == 0)
        fprintf(f, zoom, z, c->frames);
    else if (c->motion == 1)
        fprintf(f, zoom, z, z, c->frames);
    else
        fprintf(f, zoom, z);
    fputs("':x='", f);
    fprintf(f, x, c->frames);
    fputs("':y='", f);
    fprintf(f, y, c->frames);
    fprintf(f, "':d=%" PRId64 ":s=%dx%d:fps=%d", c->frames, w, h, s->fps);
}

static void put_video(FILE *f, const timeline_in_t *in, const timeline_source_t *src,
                      const timeline_clip_t *c)
{
    const render_spec_t *s = in->spec;
    fputs("movie=filename=", f);
    put_path(f, src->path);
    if (c->start_s > 0)
        fprintf(f, ":sp=%.6f", c->start_s);
    if (c->loop)
        fputs(":loop=0", f);
    /* Two decoding threads: every clip's decoder stays open for the whole
     * graph, and frame threading's per-thread frame buffers at 1080p would
     * otherwise cost tens of MB per clip. */
    fprintf(f, ":dec_threads=2,fps=%d", s->fps);
    put_rotation(f, src->rotation);
    put_cover(f, s->width, s->height);
}

static void put_background(FILE *f, const timeline_in_t *in, size_t k, const timeline_clip_t *c)
{
    const render_spec_t *s = in->spec;
    const render_template_t *t = &s->tpl;
    double d = (double)(c->frames + 1) / s->fps;
    if (strcmp(t->background.style, "solid") == 0) {
        fputs("color=c=", f);
        put_rgb(f, t->background.colors[k % (size_t)t->background.ncolors]);
        fprintf(f, ":s=%dx%d:r=%d:d=%.6f", s->width, s->height, s->fps, d);
        return;
    }
    bool plasma = strcmp(t->background.style, "plasma") == 0;
    fprintf(f, "gradients=s=%dx%d:r=%d:d=%.6f:seed=%u:speed=%s:type=%s:nb_colors=%d",
            s->width / BG_DIVISOR, s->height / BG_DIVISOR, s->fps, d, s->seed + (unsigned)k,
            plasma ? "0.04" : "0.015", plasma ? "spiral" : (k % 2 ? "radial" : "linear"),
            t->background.ncolors);
    for (int i = 0; i < t->background.ncolors; i++) {
        /* Each clip starts from another colour, so cuts between backgrounds show. */
        fprintf(f, ":c%d=", i);
        put_rgb(f, t->background.colors[(i + k) % (size_t)t->background.ncolors]);
    }
    fprintf(f, ",scale=%d:%d:flags=bilinear,setsar=1", s->width, s->height);
}

static void put_video_chain(FILE *f, const timeline_in_t *in, const timeline_t *tl)
{
    const render_spec_t *s = in->spec;
    for (size_t k = 0; k < tl->nclips; k++) {
        const timeline_clip_t *c = &tl->clips[k];
        if (c->source < 0)
            put_background(f, in, k, c);
        else if (in->sources[c->source].still)
            put_still(f, in, &in->sources[c->source], c);
        else
            put_video(f, in, &in->sources[c->source], c);
        /* The explicit length: exactly c->frames frames, whatever the source. */
        fprintf(f, ",format=yuv420p,trim=end_frame=%" PRId64 ",setpts=PTS-STARTPTS[c%zu];\n",
                c->frames, k);
    }
    char prev[32] = "c0";
    if (tl->nclips > 1 && tl->transition_frames == 0) {
        for (size_t k = 0; k < tl->nclips; k++)
            fprintf(f, "[c%zu]", k);
        fprintf(f, "concat=n=%zu:v=1:a=0[vcat];\n", tl->nclips);
        snprintf(prev, sizeof prev, "vcat");
    } else {
        int64_t end = tl->clips[0].frames;
        for (size_t k = 1; k < tl->nclips; k++) {
            int64_t offset = end - tl->transition_frames;
            fprintf(f, "[%s][c%zu]xfade=transition=%s:duration=%.6f:offset=%.6f[x%zu];\n", prev, k,
                    s->tpl.clips.transition, (double)tl->transition_frames / s->fps,
                    (double)offset / s->fps, k);
            end = offset + tl->clips[k].frames;
            snprintf(prev, sizeof prev, "x%zu", k);
        }
    }
    fprintf(f, "[%s]", prev);
    if (in->ass_path) {
        fputs("ass=filename=", f);
        put_path(f, in->ass_path);
        fputs(",", f);
    }
    const render_template_t *t = &s->tpl;
    if (t->overlays.logo_path) {
        fputs("format=yuv420p[base];\nmovie=filename=", f);
        put_path(f, t->overlays.logo_path);
        fprintf(f, ",scale=%d:-2,format=rgba,colorchannelmixer=aa=%.3f[logo];\n",
                t->overlays.logo_width, t->overlays.logo_opacity);
        const char *pos = t->overlays.logo_position;
        bool right = strstr(pos, "right") != NULL, bottom = strncmp(pos, "bottom", 6) == 0;
        fputs("[base][logo]overlay=x=", f);
        if (right)
            fprintf(f, "W-w-%d", t->safe_right);
        else
            fprintf(f, "%d", t->safe_left);
        fputs(":y=", f);
        if (bottom)
            fprintf(f, "H-h-%d", t->safe_bottom);
        else
            fprintf(f, "%d", t->safe_top);
        fputs(":eof_action=repeat:format=auto,", f);
    }
    fprintf(f, "format=yuv420p,trim=end_frame=%" PRId64 "[vout];\n", tl->frames);
}

/* Stereo float at 48 kHz with exactly n samples: padded with silence, then
 * cut, so no source ends early or runs on. */
static void put_audio_tail(FILE *f, int64_t n)
{
    fprintf(f,
            ",aformat=sample_fmts=fltp:sample_rates=%d:channel_layouts=stereo,apad,atrim=end_"
            "sample=%" PRId64 ",asetpts=N/SR/TB",
            AUDIO_RATE, n);
}

static void put_audio_chain(FILE *f, const timeline_in_t *in, const timeline_t *tl)
{
    const render_template_t *t = &in->spec->tpl;
    double L = (double)tl->audio_samples / AUDIO_RATE;
    fputs("amovie=filename=", f);
    put_path(f, in->voice_path);
    put_audio_tail(f, tl->audio_samples);
    if (in->mode == TIMELINE_VOICE_LEVEL) {
        fputs("[aout];\n", f);
        return;
    }
    fprintf(f, ",volume=%.2fdB", t->audio.voice_db);
    if (!in->music_path) {
        if (in->mode == TIMELINE_DUCKED_MUSIC)
            fputs(",volume=0", f);
        else if (in->mode == TIMELINE_FULL || in->mode == TIMELINE_AUDIO)
            fprintf(f, ",volume=%.3fdB", in->gain_db);
        goto limiter;
    }
    fputs(",asplit=2[voice][key];\namovie=filename=", f);
    put_path(f, in->music_path);
    if (in->music_loop)
        fputs(":loop=0", f);
    put_audio_tail(f, tl->audio_samples);
    double fade = t->audio.music_fade_s < L / 3 ? t->audio.music_fade_s : L / 3;
    fprintf(f, ",volume=%.2fdB", t->audio.music_db);
    if (fade > 0)
        fprintf(f, ",afade=t=in:d=%.3f,afade=t=out:st=%.3f:d=%.3f", fade / 3, L - fade, fade);
    fputs("[music];\n", f);
    /* The key (the voice) is brought to SIDECHAIN_LUFS, so a voice at that
     * level overshoots the threshold by 20 dB and the ratio turns that into
     * the template's ducking depth. */
    double voice_lufs = in->voice_lufs < -0.5 && in->voice_lufs > -70 ? in->voice_lufs : -23.0;
    double level_sc = pow(10.0, (SIDECHAIN_LUFS - voice_lufs - t->audio.voice_db) / 20.0);
    if (level_sc > 64)
        level_sc = 64;
    if (level_sc < 0.015625)
        level_sc = 0.015625;
    double over = SIDECHAIN_LUFS - DUCK_THRESHOLD_DB;
    double duck = t->audio.duck_db < over - 1 ? t->audio.duck_db : over - 1;
    double ratio = duck <= 0 ? 1.0 : over / (over - duck);
    fprintf(f,
            "[music][key]sidechaincompress=threshold=%.6f:ratio=%.3f:attack=%.1f:release=%.1f:"
            "level_sc=%.5f:detection=rms:knee=2:makeup=1",
            pow(10.0, DUCK_THRESHOLD_DB / 20.0), ratio, t->audio.duck_attack_ms,
            t->audio.duck_release_ms, level_sc);
    if (in->mode == TIMELINE_DUCKED_MUSIC) {
        fputs(",aformat=sample_fmts=fltp[aout];\n[voice]anullsink;\n", f);
        return;
    }
    fputs("[ducked];\n[voice][ducked]amix=inputs=2:duration=first:normalize=0", f);
    fprintf(f, ",volume=%.3fdB", in->gain_db);
limiter:
    if (in->mode != TIMELINE_FULL && in->mode != TIMELINE_AUDIO) {
        fputs("[aout];\n", f);
        return;
    }
    /* asetnsamples: AAC takes frames of exactly 1024 samples, and the ffmpeg
     * command line does not cut a complex graph's frames to size for it.
     * alimiter looks at samples, not the true (inter-sample) peak: keep
     * 1.5 dB of room below the true-peak target for what lies between them. */
    fprintf(
        f,
        ",alimiter=limit=%.5f:attack=5:release=60:level=0:latency=1,"
        "aformat=sample_fmts=fltp:sample_rates=%d:channel_layouts=stereo,atrim=end_sample=%" PRId64
        ",asetnsamples=n=1024:p=0[aout];\n",
        pow(10.0, (t->audio.true_peak_db - 1.5) / 20.0), AUDIO_RATE, tl->audio_samples);
}

int timeline_build(const timeline_in_t *in, timeline_t *out, char *errbuf, size_t errlen)
{
    memset(out, 0, sizeof *out);
    int rc = plan(in, out, errbuf, errlen);
    if (rc) {
        timeline_free(out);
        return rc;
    }
    size_t len = 0;
    FILE *f = open_memstream(&out->graph, &len);
    if (!f) {
        timeline_free(out);
        return fenta_fail(errbuf, errlen, FENTA_ENOMEM, "out of memory");
    }
    if (in->mode == TIMELINE_FULL)
        put_video_chain(f, in, out);
    put_audio_chain(f, in, out);
    if (fclose(f) != 0 || !out->graph) {
        timeline_free(out);
        return fenta_fail(errbuf, errlen, FENTA_ENOMEM, "out of memory");
    }
    /* No trailing separator: the graph parser reads ";\n" at the end as an
     * empty filter chain. */
    while (len > 0 && (out->graph[len - 1] == '\n' || out->graph[len - 1] == ';'))
        out->graph[--len] = '\0';
    return 0;
}

void timeline_free(timeline_t *t)
{
    if (!t)
        return;
    free(t->clips);
    free(t->graph);
    memset(t, 0, sizeof *t);
}
