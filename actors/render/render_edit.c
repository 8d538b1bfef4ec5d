/* render_edit.c - the last three render stages: edit (the timeline and its
 * one filtergraph, encoded), export (outputs into place, thumbnail, checks)
 * and deliver (render.json). */
#include "actors/media/media_probe.h"
#include "actors/render/music_bed.h"
#include "actors/media/render_graph.h"
#include "actors/render/render_internal.h"
#include "actors/render/timeline.h"
#include "runtime/error.h"
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- edit --------------------------------------------------------------------- */

typedef struct edit_in {
    timeline_source_t *sources;
    size_t nsources;
    timeline_in_t tl;
    char voice[PATH_MAX], music[PATH_MAX], ass[PATH_MAX];
} edit_in_t;

static int gather(render_ctx_t *c, json_t *ingest, json_t *tts, edit_in_t *e, char *errbuf,
                  size_t errlen)
{
    json_t *src = json_object_get(ingest, "sources");
    e->nsources = json_array_size(src);
    e->sources = e->nsources ? calloc(e->nsources, sizeof *e->sources) : NULL;
    if (e->nsources && !e->sources)
        return fenta_fail(errbuf, errlen, FENTA_ENOMEM, "out of memory");
    for (size_t i = 0; i < e->nsources; i++) {
        json_t *p = json_array_get(src, i);
        e->sources[i] = (timeline_source_t){
            .path = json_string_value(json_object_get(p, "path")),
            .still = json_is_true(json_object_get(p, "still")),
            .duration_s = json_number_value(json_object_get(p, "duration_s")),
            .start_s = json_number_value(json_object_get(p, "start_s")),
            .rotation =
                (int)json_integer_value(json_object_get(json_object_get(p, "video"), "rotation")),
        };
    }
    snprintf(e->voice, sizeof e->voice, "%s",
             json_string_value(json_object_get(tts, "voice_path")));
    double voice_s = (double)json_integer_value(json_object_get(tts, "duration_ms")) / 1000.0;
    const render_spec_t *s = &c->spec;
    const char *music = NULL;
    bool loop = false;
    if (s->music == RENDER_MUSIC_GENERATED) {
        render__path(e->music, c->work, "music.wav");
        struct stat sb;
        if (stat(e->music, &sb) != 0) {
            /* Half a second longer than the voice: the timeline cuts it exactly. */
            music_bed_opts_t mo = {.seed = s->seed, .duration_s = voice_s + 0.5};
            char err[512];
            int rc = music_bed_write(&mo, e->music, err, sizeof err);
            if (rc)
                return fenta_fail(errbuf, errlen, rc, "music bed: %s", err);
        }
        music = e->music;
    } else if (s->music == RENDER_MUSIC_FILE) {
        music = s->music_path;
        loop = true;
    }
    render__path(e->ass, c->work, "captions.ass");
    e->tl = (timeline_in_t){.spec = s,
                            .sources = e->sources,
                            .nsources = e->nsources,
                            .voice_path = e->voice,
                            .voice_s = voice_s,
                            .music_path = music,
                            .music_loop = loop,
                            .ass_path = e->ass};
    return 0;
}

/* Builds the graph for one mode and meters it. */
static int meter(edit_in_t *e, timeline_mode_t mode, double *lufs, double *peak, char *errbuf,
                 size_t errlen)
{
    timeline_t tl;
    e->tl.mode = mode;
    int rc = timeline_build(&e->tl, &tl, errbuf, errlen);
    if (rc == 0)
        rc = render_graph_loudness(tl.graph, lufs, peak, errbuf, errlen);
    timeline_free(&tl);
    return rc;
}

static void encode_progress(void *arg, int64_t frames, int64_t total)
{
    render_ctx_t *c = arg;
    if (c->progress && total > 0)
        c->progress(c, (double)frames / (double)total);
}

int render__edit(render_ctx_t *c, char *errbuf, size_t errlen)
{
    json_t *ingest = render__record(c->work, "ingest"), *tts = render__record(c->work, "tts");
    edit_in_t e = {0};
    timeline_t tl = {0};
    int rc = ingest && tts
                 ? gather(c, ingest, tts, &e, errbuf, errlen)
                 : fenta_fail(errbuf, errlen, FENTA_EIO, "an earlier stage's record is missing");
    const render_template_t *t = &c->spec.tpl;
    double voice_lufs = 0, final_lufs = 0, peak = 0;
    /* Loudness: the voice's level sets the ducking key and a first gain (the
     * ducked music adds little to speech), the finished audio is metered
     * through the limiter, and a correction or two converge (each pass
     * decodes the whole audio, so stop within 0.3 LU). */
    if (rc == 0)
        rc = meter(&e, TIMELINE_VOICE_LEVEL, &voice_lufs, NULL, errbuf, errlen);
    if (rc == 0 && voice_lufs <= -69)
        rc = fenta_fail(errbuf, errlen, FENTA_EINVAL, "voice: '%s' is silent", e.voice);
    e.tl.voice_lufs = voice_lufs;
    e.tl.gain_db = t->audio.loudness_lufs - (voice_lufs + t->audio.voice_db);
    if (rc == 0)
        rc = meter(&e, TIMELINE_AUDIO, &final_lufs, &peak, errbuf, errlen);
    for (int i = 0; i < 2 && rc == 0 && fabs(final_lufs - t->audio.loudness_lufs) > 0.3; i++) {
        e.tl.gain_db += t->audio.loudness_lufs - final_lufs;
        rc = meter(&e, TIMELINE_AUDIO, &final_lufs, &peak, errbuf, errlen);
    }
    e.tl.mode = TIMELINE_FULL;
    if (rc == 0)
        rc = timeline_build(&e.tl, &tl, errbuf, errlen);
    char path[PATH_MAX];
    if (rc == 0) {
        FILE *f = fopen(render__path(path, c->work, "graph.txt"), "w");
        if (f) {
            fputs(tl.graph, f);
            fclose(f);
        }
    }
    render_encode_stats_t st = {0};
    if (rc == 0) {
        const render_spec_t *s = &c->spec;
        render_encode_opts_t o = {.width = s->width,
                                  .height = s->height,
                                  .fps = s->fps,
                                  .crf = s->crf,
                                  .preset = s->preset,
                                  .audio_kbps = s->audio_kbps,
                                  .total_frames = tl.frames,
                                  .progress = encode_progress,
                                  .arg = c,
                                  .cancel = c->cancel};
        rc = render_graph_encode(tl.graph, render__path(path, c->work, "video.mp4"), &o, &st,
                                 errbuf, errlen);
    }
    if (rc == 0) {
        json_t *clips = json_array();
        for (size_t i = 0; i < tl.nclips; i++) {
            const timeline_clip_t *k = &tl.clips[i];
            json_array_append_new(clips, json_pack("{si sI sf sb}", "source", k->source, "frames",
                                                   (json_int_t)k->frames, "start_s", k->start_s,
                                                   "loop", k->loop));
        }
        json_object_set_new(c->result, "clips", clips);
        json_object_set_new(c->result, "frames", json_integer(tl.frames));
        json_object_set_new(c->result, "fps", json_integer(c->spec.fps));
        json_object_set_new(c->result, "duration_s", json_real((double)tl.frames / c->spec.fps));
        json_object_set_new(c->result, "transition_frames", json_integer(tl.transition_frames));
        json_object_set_new(c->result, "loudness",
                            json_pack("{sf sf sf sf}", "voice_lufs", voice_lufs, "gain_db",
                                      e.tl.gain_db, "lufs", final_lufs, "true_peak_db", peak));
        json_object_set_new(
            c->result, "encode",
            json_pack("{sf sf si ss si}", "seconds", st.seconds, "realtime_factor",
                      st.seconds > 0 ? (double)st.frames / c->spec.fps / st.seconds : 0, "crf",
                      c->spec.crf, "preset", c->spec.preset, "audio_kbps", c->spec.audio_kbps));
    }
    timeline_free(&tl);
    free(e.sources);
    json_decref(ingest);
    json_decref(tts);
    return rc;
}

/* ---- export ------------------------------------------------------------------- */

/* Hard-links src to dst (replacing dst); copies when they are on different
 * file systems. */
static int place(const char *src, const char *dst, char *errbuf, size_t errlen)
{
    unlink(dst);
    if (link(src, dst) == 0)
        return 0;
    if (errno != EXDEV && errno != EPERM)
        return fenta_fail(errbuf, errlen, FENTA_EIO, "cannot place '%s': %s", dst, strerror(errno));
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s.part", dst);
    int in = open(src, O_RDONLY), out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    bool ok = in >= 0 && out >= 0;
    char buf[1 << 16];
    ssize_t n;
    while (ok && (n = read(in, buf, sizeof buf)) > 0)
        ok = write(out, buf, (size_t)n) == n;
    ok = ok && fsync(out) == 0;
    if (in >= 0)
        close(in);
    if (out >= 0)
        close(out);
    if (!ok || rename(tmp, dst) != 0) {
        unlink(tmp);
        return fenta_fail(errbuf, errlen, FENTA_EIO, "cannot copy to '%s': %s", dst,
                          strerror(errno));
    }
    return 0;
}

/* True when the file's top-level "moov" box comes before its "mdat". */
static bool moov_first(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return false;
    uint8_t h[16];
    bool result = false;
    for (int i = 0; i < 64 && fread(h, 1, 8, f) == 8; i++) {
        uint64_t size = (uint64_t)h[0] << 24 | (uint64_t)h[1] << 16 | (uint64_t)h[2] << 8 | h[3];
        long skip;
        if (size == 1) {
            if (fread(h + 8, 1, 8, f) != 8)
                break;
            size = 0;
            for (int k = 8; k < 16; k++)
                size = size << 8 | h[k];
            skip = (long)size - 16;
        } else {
            skip = (long)size - 8;
        }
        if (memcmp(h + 4, "moov", 4) == 0) {
            result = true;
            break;
        }
        if (memcmp(h + 4, "mdat", 4) == 0 || size < 8 || fseek(f, skip, SEEK_CUR) != 0)
            break;
    }
    fclose(f);
    return result;
}

/* A moment with a caption on screen (after the title): the middle of the
 * first line shown for long enough, else of the first line. */
static double thumbnail_time(const json_t *align, double title_s)
{
    json_t *lines = json_object_get(align, "lines");
    double best = -1;
    size_t i;
    json_t *l;
    json_array_foreach(lines, i, l)
    {
        double a = (double)json_integer_value(json_object_get(l, "start_ms")) / 1000;
        double b = (double)json_integer_value(json_object_get(l, "end_ms")) / 1000;
        if (best < 0)
            best = a + (b - a) / 2;
        if (a >= title_s && b - a >= 0.4)
            return a + fmin(0.5, (b - a) / 2);
    }
    return best < 0 ? 0 : best;
}

int render__export(render_ctx_t *c, char *errbuf, size_t errlen)
{
    json_t *align = render__record(c->work, "align");
    if (!align)
        return fenta_fail(errbuf, errlen, FENTA_EIO, "the align stage's record is missing");
    char src[PATH_MAX], dst[PATH_MAX];
    double t = thumbnail_time(align, c->spec.title ? c->spec.tpl.overlays.title_duration_s : 0);
    json_decref(align);
    int rc = render_thumbnail(render__path(src, c->work, "video.mp4"), t, 720,
                              render__path(dst, c->work, "thumbnail.jpg"), errbuf, errlen);
    static const char *const files[] = {"video.mp4", "captions.srt", "thumbnail.jpg"};
    static const char *const keys[] = {"video", "srt", "thumbnail"};
    json_t *outputs = json_object();
    json_object_set_new(c->result, "outputs", outputs);
    for (size_t i = 0; rc == 0 && i < 3; i++) {
        rc = place(render__path(src, c->work, files[i]), render__path(dst, c->out, files[i]),
                   errbuf, errlen);
        struct stat sb;
        if (rc == 0 && stat(dst, &sb) == 0)
            json_object_set_new(outputs, keys[i],
                                json_pack("{ss sI}", "path", dst, "bytes", (json_int_t)sb.st_size));
    }
    if (rc)
        return rc;
    /* The checks a user would make of the file they get. */
    media_info_t m;
    char err[512];
    render__path(dst, c->out, "video.mp4");
    if ((rc = media_probe(dst, &m, err, sizeof err)))
        return fenta_fail(errbuf, errlen, FENTA_EIO, "the rendered video does not probe: %s", err);
    if (strcmp(m.video.codec, "h264") != 0 || strcmp(m.audio.codec, "aac") != 0 ||
        m.video.width != c->spec.width || m.video.height != c->spec.height)
        return fenta_fail(errbuf, errlen, FENTA_EIO,
                          "the rendered video is %s/%s %dx%d, not h264/aac %dx%d", m.video.codec,
                          m.audio.codec, m.video.width, m.video.height, c->spec.width,
                          c->spec.height);
    bool fast = moov_first(dst);
    if (!fast)
        return fenta_fail(errbuf, errlen, FENTA_EIO,
                          "the rendered video's index is not at its start");
    json_object_set_new(c->result, "video",
                        json_pack("{ss ss si si sf sf si sb}", "video_codec", m.video.codec,
                                  "audio_codec", m.audio.codec, "width", m.video.width, "height",
                                  m.video.height, "fps", m.video.fps, "duration_s", m.duration_s,
                                  "sample_rate", m.audio.sample_rate, "faststart", fast));
    json_object_set_new(c->result, "thumbnail_at_s", json_real(t));
    return 0;
}

/* ---- deliver ------------------------------------------------------------------- */

int render__deliver(render_ctx_t *c, char *errbuf, size_t errlen)
{
    json_t *stages = json_object(), *rec[RENDER_NSTAGES - 1] = {0};
    for (int i = 0; i < RENDER_NSTAGES - 1; i++) {
        rec[i] = render__record(c->work, render_stage_name(i));
        if (!rec[i]) {
            for (int k = 0; k < i; k++)
                json_decref(rec[k]);
            json_decref(stages);
            return fenta_fail(errbuf, errlen, FENTA_EIO, "the %s stage's record is missing",
                              render_stage_name(i));
        }
        json_object_set_new(stages, render_stage_name(i),
                            json_pack("{sO sO}", "seconds", json_object_get(rec[i], "seconds"),
                                      "attempt", json_object_get(rec[i], "attempt")));
    }
    json_t *ingest = rec[0], *tts = rec[2], *align = rec[3], *edit = rec[4], *exp = rec[5];
    json_t *r = json_pack(
        "{ss ss ss ss ss sO sO s{sO sO sO sO} sO sO s{sO sO sO} sO sI sI s{sO sO? sO?}}", "id",
        c->id, "status", "succeeded", "out_dir", c->out, "profile", c->spec.profile, "template",
        c->spec.tpl.name, "outputs", json_object_get(exp, "outputs"), "video",
        json_object_get(exp, "video"), "timeline", "frames", json_object_get(edit, "frames"), "fps",
        json_object_get(edit, "fps"), "clips", json_object_get(edit, "clips"), "transition_frames",
        json_object_get(edit, "transition_frames"), "loudness", json_object_get(edit, "loudness"),
        "encode", json_object_get(edit, "encode"), "speech", "engine",
        json_object_get(tts, "engine"), "duration_ms", json_object_get(tts, "duration_ms"), "words",
        json_object_get(tts, "words"), "thumbnail_at_s", json_object_get(exp, "thumbnail_at_s"),
        "caption_lines", (json_int_t)json_array_size(json_object_get(align, "lines")), "seed",
        (json_int_t)c->spec.seed, "probe", "sources", json_object_get(ingest, "sources"), "voice",
        json_object_get(ingest, "voice"), "music", json_object_get(ingest, "music"));
    int rc;
    if (!r) {
        rc = fenta_fail(errbuf, errlen, FENTA_ENOMEM, "out of memory");
    } else {
        json_object_set_new(r, "stages", stages);
        stages = NULL;
        char path[PATH_MAX];
        rc = render__write_json(render__path(path, c->out, "render.json"), r, errbuf, errlen);
    }
    json_decref(r);
    json_decref(stages);
    for (int i = 0; i < RENDER_NSTAGES - 1; i++)
        json_decref(rec[i]);
    return rc;
}
