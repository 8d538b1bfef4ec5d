/* render_work.c - what each render stage does, on files in the render's
 * work folder. The actor plumbing around it is render_stages.c.
 *
 * Records (<work>/<stage>.json) carry what later stages need: ingest the
 * probes, script the caption words and the text to speak, tts the words'
 * times and the voice file, align the caption files, edit the timeline and
 * loudness, export the checks of the outputs. */
#include "actors/speech/asr.h"
#include "actors/speech/asr_align.h"
#include "actors/text/ass_script.h"
#include "actors/text/captions.h"
#include "actors/media/media_probe.h"
#include "actors/render/music_bed.h"
#include "actors/media/render_graph.h"
#include "actors/render/render_internal.h"
#include "actors/text/script_text.h"
#include "actors/render/timeline.h"
#include "actors/speech/tts.h"
#include "runtime/error.h"
#include "runtime/fsutil.h"
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- files -------------------------------------------------------------------- */

const char *render__path(char *buf, const char *dir, const char *name)
{
    snprintf(buf, PATH_MAX, "%s/%s", dir, name);
    return buf;
}

json_t *render__record(const char *work, const char *name)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s.json", work, name);
    return json_load_file(path, 0, NULL);
}

int render__write_json(const char *path, const json_t *j, char *errbuf, size_t errlen)
{
    char *text = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
    if (!text)
        return fenta_fail(errbuf, errlen, FENTA_ENOMEM, "out of memory");
    size_t len = strlen(text);
    text[len] = '\n'; /* json_dumps leaves room for its NUL: the newline takes it */
    int rc = fsutil_write_file(path, text, len + 1, 0644);
    int e = errno;
    free(text);
    return rc ? fenta_fail(errbuf, errlen, FENTA_EIO, "cannot write '%s': %s", path, strerror(e))
              : 0;
}

int render__load_spec(render_ctx_t *c, char *errbuf, size_t errlen)
{
    json_t *stored = render__record(c->work, "spec");
    if (!stored)
        return fenta_fail(errbuf, errlen, FENTA_EIO, "the render's spec.json is missing in %s",
                          c->work);
    render_spec_opts_t o = {
        .base_dir = json_string_value(json_object_get(stored, "base_dir")),
        .objects_dir = json_string_value(json_object_get(stored, "objects_dir")),
        .schemas_dir = c->r->cfg.schemas_dir,
    };
    int rc = render_spec_parse(json_object_get(stored, "spec"), &o, &c->spec, errbuf, errlen);
    json_decref(stored);
    return rc;
}

/* ---- ingest ------------------------------------------------------------------- */

static json_t *probe_json(const media_info_t *m)
{
    json_t *j = json_pack("{ss sf sI sb sb sb}", "format", m->format, "duration_s", m->duration_s,
                          "size_bytes", (json_int_t)m->size_bytes, "has_video", m->has_video,
                          "has_audio", m->has_audio, "still", m->is_still_image);
    if (j && m->has_video)
        json_object_set_new(j, "video",
                            json_pack("{ss si si sf si ss}", "codec", m->video.codec, "width",
                                      m->video.width, "height", m->video.height, "fps",
                                      m->video.fps, "rotation", m->video.rotation, "pix_fmt",
                                      m->video.pix_fmt));
    if (j && m->has_audio)
        json_object_set_new(j, "audio",
                            json_pack("{ss si si}", "codec", m->audio.codec, "sample_rate",
                                      m->audio.sample_rate, "channels", m->audio.channels));
    return j;
}

/* Integrated loudness of a file's audio, by the same R128 meter as the mix. */
static double file_loudness(const char *path)
{
    char *graph = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&graph, &len);
    if (!f)
        return NAN;
    fputs("amovie=filename='", f);
    for (const char *p = path; *p; p++) {
        if (*p == '\'' || *p == '\\')
            fputs("'\\\\\\''", f); /* close quote, escaped quote, reopen */
        else
            fputc(*p, f);
    }
    fputs("',aformat=sample_fmts=fltp:sample_rates=48000[aout]", f);
    fclose(f);
    double lufs = NAN;
    char err[256];
    if (!graph || render_graph_loudness(graph, &lufs, NULL, err, sizeof err) != 0)
        lufs = NAN;
    free(graph);
    return lufs;
}

/* Probes one source; what is wrong with it names the file and the use. */
static int probe_source(const char *path, const char *role, bool need_video, bool need_audio,
                        json_t **out, char *errbuf, size_t errlen)
{
    media_info_t m;
    char err[512];
    int rc = media_probe(path, &m, err, sizeof err);
    if (rc)
        return fenta_fail(errbuf, errlen, rc == FENTA_ENOMEM ? rc : FENTA_EINVAL, "%s: %s", role,
                          err);
    if (need_video && !m.has_video)
        return fenta_fail(
            errbuf, errlen, FENTA_EINVAL,
            "%s: media file '%s' has no picture (an audio-only file cannot be a clip)", role, path);
    if (need_audio && !m.has_audio)
        return fenta_fail(errbuf, errlen, FENTA_EINVAL, "%s: media file '%s' has no audio", role,
                          path);
    *out = probe_json(&m);
    if (!*out)
        return fenta_fail(errbuf, errlen, FENTA_ENOMEM, "out of memory");
    json_object_set_new(*out, "path", json_string(path));
    if (m.has_audio) {
        double lufs = file_loudness(path);
        if (isfinite(lufs))
            json_object_set_new(*out, "loudness_lufs", json_real(lufs));
    }
    return 0;
}

int render__ingest(render_ctx_t *c, char *errbuf, size_t errlen)
{
    const render_spec_t *s = &c->spec;
    json_t *sources = json_array();
    json_object_set_new(c->result, "sources", sources);
    for (size_t i = 0; i < s->nmedia; i++) {
        char role[48];
        snprintf(role, sizeof role, "media[%zu]", i);
        json_t *p = NULL;
        int rc = probe_source(s->media[i].path, role, true, false, &p, errbuf, errlen);
        if (rc)
            return rc;
        json_object_set_new(p, "start_s", json_real(s->media[i].start_s));
        if (!json_is_true(json_object_get(p, "still")) &&
            s->media[i].start_s >= json_number_value(json_object_get(p, "duration_s")))
            return fenta_fail(errbuf, errlen, FENTA_EINVAL,
                              "media[%zu]: start_s %.2f is past the end of '%s' (%.2f s)", i,
                              s->media[i].start_s, s->media[i].path,
                              json_number_value(json_object_get(p, "duration_s")));
        json_array_append_new(sources, p);
        if (c->progress)
            c->progress(c, (double)(i + 1) / (double)(s->nmedia + 2));
    }
    json_t *p = NULL;
    int rc;
    if (s->voice_path) {
        if ((rc = probe_source(s->voice_path, "voice", false, true, &p, errbuf, errlen)))
            return rc;
        json_object_set_new(c->result, "voice", p);
    }
    if (s->music == RENDER_MUSIC_FILE) {
        if ((rc = probe_source(s->music_path, "music", false, true, &p, errbuf, errlen)))
            return rc;
        json_object_set_new(c->result, "music", p);
    }
    if (s->tpl.overlays.logo_path) {
        if ((rc = probe_source(s->tpl.overlays.logo_path, "logo", true, false, &p, errbuf, errlen)))
            return rc;
        json_object_set_new(c->result, "logo", p);
    }
    return 0;
}

/* ---- script ------------------------------------------------------------------- */

int render__script(render_ctx_t *c, char *errbuf, size_t errlen)
{
    const render_spec_t *s = &c->spec;
    if (!s->script) {
        /* A recording without its script: the words come from recognition. */
        json_object_set_new(c->result, "mode", json_string("transcribe"));
        return 0;
    }
    script_text_t t;
    char err[256];
    int rc = script_text_normalise(s->script, strlen(s->script), &t, err, sizeof err);
    if (rc)
        return fenta_fail(errbuf, errlen, rc, "script: %s", err);
    /* Each caption word is spoken as its own normalised text ("$5" as "five
     * dollars"), so a spoken word's byte offset tells which caption word it
     * belongs to: that is what keeps captions on the voice. */
    json_t *words = json_array();
    char *speech = NULL;
    size_t slen = 0;
    FILE *sp = open_memstream(&speech, &slen);
    if (!words || !sp) {
        json_decref(words);
        if (sp)
            fclose(sp);
        free(speech);
        script_text_free(&t);
        return fenta_fail(errbuf, errlen, FENTA_ENOMEM, "out of memory");
    }
    char *save = NULL;
    for (char *tok = strtok_r(t.captions, " ", &save); tok && rc == 0;
         tok = strtok_r(NULL, " ", &save)) {
        script_text_t one;
        if (script_text_normalise(tok, strlen(tok), &one, err, sizeof err) != 0) {
            /* Nothing to say (a dash, a lone symbol): shown with the word before. */
            json_t *prev = json_array_get(words, json_array_size(words) - 1);
            if (prev) {
                char joined[512];
                snprintf(joined, sizeof joined, "%s %s",
                         json_string_value(json_object_get(prev, "text")), tok);
                json_object_set_new(prev, "text", json_string(joined));
            }
            continue;
        }
        fflush(sp);
        size_t start = slen + (slen > 0 ? 1 : 0);
        fprintf(sp, "%s%s", slen > 0 ? " " : "", one.speech);
        fflush(sp);
        json_array_append_new(words, json_pack("{ss sI sI}", "text", tok, "speech_start",
                                               (json_int_t)start, "speech_end", (json_int_t)slen));
        script_text_free(&one);
    }
    fclose(sp);
    script_text_free(&t);
    if (json_array_size(words) == 0) {
        json_decref(words);
        free(speech);
        return fenta_fail(errbuf, errlen, FENTA_EINVAL, "script: nothing in it can be spoken");
    }
    json_object_set_new(c->result, "mode", json_string(s->voice_path ? "align" : "speak"));
    json_object_set_new(c->result, "speech", json_string(speech));
    json_object_set_new(c->result, "words", words);
    free(speech);
    return 0;
}

/* ---- tts / asr ------------------------------------------------------------------- */

/* Caption words' times from the engine's marks: a word spans the marks that
 * fall in its stretch of the spoken text; one the engine did not voice
 * takes the moment between its neighbours. */
static void times_from_marks(json_t *words, const tts_result_t *r)
{
    size_t n = json_array_size(words), m = 0;
    int64_t prev_end = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *w = json_array_get(words, i);
        size_t a = (size_t)json_integer_value(json_object_get(w, "speech_start"));
        size_t b = (size_t)json_integer_value(json_object_get(w, "speech_end"));
        int64_t start = -1, end = -1;
        while (m < r->nmarks && r->marks[m].offset < b) {
            if (r->marks[m].offset >= a) {
                if (start < 0)
                    start = r->marks[m].start_ms;
                end = r->marks[m].end_ms;
            }
            m++;
        }
        if (start < 0)
            start = end = prev_end;
        if (start < prev_end)
            start = prev_end;
        if (end < start)
            end = start;
        json_object_set_new(w, "start_ms", json_integer(start));
        json_object_set_new(w, "end_ms", json_integer(end));
        prev_end = end;
    }
}

static int recognise(render_ctx_t *c, json_t *words, json_t *script, char *errbuf, size_t errlen)
{
    asr_word_t *heard = NULL;
    size_t nheard = 0;
    int64_t audio_ms = 0;
    char err[512];
    int rc = asr_transcribe(c->r->cfg.asr_model_dir, c->spec.voice_path, &heard, &nheard, &audio_ms,
                            err, sizeof err);
    if (rc)
        return fenta_fail(errbuf, errlen, rc, "voice: %s", err);
    json_object_set_new(c->result, "duration_ms", json_integer(audio_ms));
    json_object_set_new(c->result, "heard_words", json_integer((json_int_t)nheard));
    if (!json_is_array(json_object_get(script, "words"))) {
        if (nheard == 0) {
            asr_words_free(&heard, nheard);
            return fenta_fail(errbuf, errlen, FENTA_EINVAL,
                              "voice: no speech was recognised in '%s'; give its script",
                              c->spec.voice_path);
        }
        for (size_t i = 0; i < nheard; i++)
            json_array_append_new(words, json_pack("{ss sI sI}", "text", heard[i].text, "start_ms",
                                                   (json_int_t)heard[i].start_ms, "end_ms",
                                                   (json_int_t)heard[i].end_ms));
        asr_words_free(&heard, nheard);
        json_object_set_new(c->result, "engine", json_string("pocketsphinx"));
        return 0;
    }
    json_t *sw = json_object_get(script, "words");
    size_t n = json_array_size(sw);
    const char **texts = calloc(n, sizeof *texts);
    int64_t *st = calloc(n, sizeof *st), *en = calloc(n, sizeof *en);
    if (!texts || !st || !en) {
        rc = fenta_fail(errbuf, errlen, FENTA_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        texts[i] = json_string_value(json_object_get(json_array_get(sw, i), "text"));
    if ((rc = asr_align(texts, n, heard, nheard, audio_ms, st, en, err, sizeof err))) {
        rc = fenta_fail(errbuf, errlen, rc, "voice: aligning the script: %s", err);
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        json_array_append_new(words, json_pack("{ss sI sI}", "text", texts[i], "start_ms",
                                               (json_int_t)st[i], "end_ms", (json_int_t)en[i]));
    json_object_set_new(c->result, "engine", json_string("pocketsphinx-align"));
out:
    free(texts);
    free(st);
    free(en);
    asr_words_free(&heard, nheard);
    return rc;
}

int render__tts(render_ctx_t *c, char *errbuf, size_t errlen)
{
    json_t *script = render__record(c->work, "script");
    if (!script)
        return fenta_fail(errbuf, errlen, FENTA_EIO, "the script stage's record is missing");
    json_t *words = json_array();
    json_object_set_new(c->result, "words", words);
    int rc;
    if (c->spec.voice_path) {
        json_object_set_new(c->result, "voice_path", json_string(c->spec.voice_path));
        rc = recognise(c, words, script, errbuf, errlen);
        json_decref(script);
        return rc;
    }
    char wav[PATH_MAX];
    render__path(wav, c->work, "voice.wav");
    tts_config_t cfg = c->r->cfg.tts;
    if (c->spec.tts_voice[0]) {
        if (cfg.kokoro_url && cfg.kokoro_url[0])
            cfg.kokoro_voice = c->spec.tts_voice;
        else
            cfg.espeak_voice = c->spec.tts_voice;
    }
    cfg.speed = c->spec.tts_speed;
    tts_result_t r;
    char err[512];
    const char *speech = json_string_value(json_object_get(script, "speech"));
    rc = tts_synth(&cfg, speech ? speech : "", wav, &r, err, sizeof err);
    if (rc) {
        json_decref(script);
        return fenta_fail(errbuf, errlen, rc, "speech: %s", err);
    }
    json_t *sw = json_object_get(script, "words");
    json_array_extend(words, sw);
    times_from_marks(words, &r);
    json_object_set_new(c->result, "voice_path", json_string(wav));
    json_object_set_new(c->result, "duration_ms", json_integer(r.duration_ms));
    json_object_set_new(c->result, "engine", json_string(r.engine));
    json_object_set_new(c->result, "estimated_timing", json_boolean(r.estimated_timing));
    tts_result_free(&r);
    json_decref(script);
    return 0;
}

/* ---- align ------------------------------------------------------------------------ */

static ass_script_fx_t effect_of(const char *e)
{
    return strcmp(e, "karaoke") == 0     ? ASS_SCRIPT_FX_KARAOKE
           : strcmp(e, "highlight") == 0 ? ASS_SCRIPT_FX_HIGHLIGHT
           : strcmp(e, "pop") == 0       ? ASS_SCRIPT_FX_POP
                                         : ASS_SCRIPT_FX_NONE;
}

static int write_text(const char *path, const char *text, char *errbuf, size_t errlen)
{
    if (fsutil_write_file(path, text, strlen(text), 0644) != 0)
        return fenta_fail(errbuf, errlen, FENTA_EIO, "cannot write '%s': %s", path,
                          strerror(errno));
    return 0;
}

int render__align(render_ctx_t *c, char *errbuf, size_t errlen)
{
    const render_spec_t *s = &c->spec;
    const render_caption_style_t *cs = &s->tpl.captions;
    json_t *tts = render__record(c->work, "tts");
    json_t *jw = json_object_get(tts, "words");
    size_t n = json_array_size(jw);
    if (!tts || n == 0) {
        json_decref(tts);
        return fenta_fail(errbuf, errlen, FENTA_EIO, "the tts stage's record is missing");
    }
    captions_word_t *w = calloc(n, sizeof *w);
    captions_line_t *lines = NULL;
    size_t nlines = 0;
    char *srt = NULL, *ass = NULL, err[512];
    int rc = w ? 0 : FENTA_ENOMEM;
    for (size_t i = 0; w && i < n; i++) {
        json_t *x = json_array_get(jw, i);
        w[i] = (captions_word_t){json_string_value(json_object_get(x, "text")),
                                 json_integer_value(json_object_get(x, "start_ms")),
                                 json_integer_value(json_object_get(x, "end_ms"))};
    }
    captions_opts_t co = {.max_words = cs->max_words,
                          .max_chars = cs->max_chars,
                          .min_display_ms = cs->min_display_ms,
                          .uppercase = cs->uppercase};
    if (rc == 0 && (rc = captions_lines(w, n, &co, &lines, &nlines, err, sizeof err)))
        fenta_fail(errbuf, errlen, rc, "captions: %s", err);
    if (rc == 0 && !(srt = captions_srt(lines, nlines, w)))
        rc = fenta_fail(errbuf, errlen, FENTA_ENOMEM, "out of memory");
    ass_script_opts_t ao = {
        .width = s->width,
        .height = s->height,
        .font = cs->font,
        .font_size = cs->size,
        .bold = cs->bold,
        .primary = cs->primary,
        .highlight = cs->highlight,
        .outline = cs->outline,
        .back = cs->outline & 0xffffff00u ? (cs->outline & 0xffffff00u) | 0x80 : 0x00000080,
        .outline_px = cs->outline_width,
        .shadow_px = cs->shadow,
        .position = strcmp(cs->position, "top") == 0      ? ASS_SCRIPT_POS_TOP
                    : strcmp(cs->position, "center") == 0 ? ASS_SCRIPT_POS_CENTER
                                                          : ASS_SCRIPT_POS_BOTTOM,
        .margin_l = s->tpl.safe_left,
        .margin_r = s->tpl.safe_right,
        .margin_v = strcmp(cs->position, "top") == 0 ? s->tpl.safe_top : s->tpl.safe_bottom,
        .effect = effect_of(cs->effect),
        .title = s->title,
        .title_ms = (int64_t)llround(s->tpl.overlays.title_duration_s * 1000),
        .title_size = s->tpl.overlays.title_size,
    };
    if (ao.title && ao.title_ms <= 0)
        ao.title = NULL;
    if (rc == 0 && (rc = ass_script_build(lines, nlines, w, n, &ao, &ass, err, sizeof err)))
        fenta_fail(errbuf, errlen, rc, "captions: %s", err);
    char path[PATH_MAX];
    if (rc == 0)
        rc = write_text(render__path(path, c->work, "captions.srt"), srt, errbuf, errlen);
    if (rc == 0)
        rc = write_text(render__path(path, c->work, "captions.ass"), ass, errbuf, errlen);
    if (rc == 0) {
        json_t *jl = json_array();
        for (size_t i = 0; i < nlines; i++)
            json_array_append_new(
                jl, json_pack("{sI sI sI sI}", "first", (json_int_t)lines[i].first, "count",
                              (json_int_t)lines[i].count, "start_ms", (json_int_t)lines[i].start_ms,
                              "end_ms", (json_int_t)lines[i].end_ms));
        json_object_set_new(c->result, "lines", jl);
        json_object_set_new(c->result, "words", json_integer((json_int_t)n));
    }
    free(srt);
    free(ass);
    captions_lines_free(&lines, nlines);
    free(w);
    json_decref(tts);
    return rc;
}
