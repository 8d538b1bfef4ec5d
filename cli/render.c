/* render.c - `fenta render SPEC.json --out DIR`: one short rendered by the
 * same stage actors the server runs, on a private runtime in DIR/.fenta.
 *
 * Killed (Ctrl-C, SIGKILL, power loss) and run again with the same spec
 * and folder, the render resumes at the stage it was in; a finished render
 * or a changed spec starts afresh. Progress is a bar on a terminal and JSON
 * lines otherwise, so scripts and CI can follow it. */
#include "actors/render/render.h"
#include "cli/commands.h"
#include "cli/config.h"
#include "runtime/clock.h"
#include "runtime/error.h"
#include "runtime/fsutil.h"
#include "runtime/id.h"
#include "runtime/log.h"
#include "runtime/runtime.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef struct watch {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    const char *id;
    bool bar;  /* a progress bar on stderr (a terminal) */
    bool json; /* JSON lines on stdout */
    bool done; /* succeeded or failed */
    bool failed;
    char error[1024];
    char stage[16];
    double progress; /* last reported, 0..100 */
    double started;
} watch_t;

static double now_s(void)
{
    return (double)clock_mono_us() / 1e6;
}

/* <a>/<b> into out (PATH_MAX); false when it does not fit. */
__attribute__((noinline)) static bool join(char *out, const char *a, const char *b)
{
    int n = snprintf(out, PATH_MAX, "%s/%s", a, b);
    return n >= 0 && n < PATH_MAX;
}

static void draw_bar(watch_t *w, double progress, const char *stage)
{
    char bar[31];
    int fill = (int)(progress * 30 / 100 + 0.5);
    for (int i = 0; i < 30; i++)
        bar[i] = i < fill ? '#' : '-';
    bar[30] = '\0';
    fprintf(stderr, "\r[%s] %5.1f%%  %-8s %6.1fs", bar, progress, stage, now_s() - w->started);
    fflush(stderr);
}

static void on_event(void *arg, const render_event_t *ev)
{
    watch_t *w = arg;
    if (strcmp(ev->render_id, w->id) != 0)
        return;
    pthread_mutex_lock(&w->lock);
    static const char *const names[] = {"stage_started", "progress", "stage_finished", "succeeded",
                                        "failed"};
    if (w->json) {
        json_t *j = json_pack("{ss ss sf}", "event", names[ev->kind], "stage", ev->stage,
                              "progress", ev->progress);
        if (ev->kind == RENDER_EV_STAGE_PROGRESS)
            json_object_set_new(j, "fraction", json_real(ev->fraction));
        if (ev->kind == RENDER_EV_STAGE_FINISHED) {
            json_object_set_new(j, "seconds", json_real(ev->seconds));
            if (ev->skipped)
                json_object_set_new(j, "resumed", json_true());
        }
        if (ev->error)
            json_object_set_new(j, "error", json_string(ev->error));
        if (ev->kind == RENDER_EV_SUCCEEDED) {
            char p[PATH_MAX];
            static const char *const files[] = {"video",        "video.mp4",  "srt",
                                                "captions.srt", "thumbnail",  "thumbnail.jpg",
                                                "details",      "render.json"};
            for (size_t i = 0; i < 8; i += 2) {
                snprintf(p, sizeof p, "%s/%s", ev->out_dir, files[i + 1]);
                json_object_set_new(j, files[i], json_string(p));
            }
        }
        char *s = json_dumps(j, JSON_COMPACT);
        if (s)
            printf("%s\n", s);
        fflush(stdout);
        free(s);
        json_decref(j);
    }
    if (w->bar)
        draw_bar(w, ev->progress, ev->stage);
    snprintf(w->stage, sizeof w->stage, "%s", ev->stage);
    w->progress = ev->progress;
    if (ev->kind == RENDER_EV_SUCCEEDED || ev->kind == RENDER_EV_FAILED) {
        w->done = true;
        w->failed = ev->kind == RENDER_EV_FAILED;
        if (ev->error)
            snprintf(w->error, sizeof w->error, "%s", ev->error);
        pthread_cond_broadcast(&w->cond);
    }
    pthread_mutex_unlock(&w->lock);
}

/* Whether DIR/.fenta holds an unfinished render of this same spec. */
static bool resumable(const char *state, const char *out, const json_t *spec, char *id, size_t cap)
{
    char path[PATH_MAX];
    join(path, state, "id");
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    bool ok = fgets(id, (int)cap, f) != NULL;
    fclose(f);
    id[strcspn(id, "\n")] = '\0';
    if (!ok || !id[0])
        return false;
    join(path, out, "render.json");
    json_t *done = json_load_file(path, 0, NULL);
    bool finished = done && strcmp(json_string_value(json_object_get(done, "id")) ?: "", id) == 0;
    json_decref(done);
    if (finished)
        return false;
    join(path, state, "work/spec.json");
    json_t *stored = json_load_file(path, 0, NULL);
    bool same = stored && json_equal(json_object_get(stored, "spec"), (json_t *)spec);
    json_decref(stored);
    return same;
}

static int render_main(const fenta_config_t *c, int argc, char **argv);

static void usage(FILE *out)
{
    fprintf(out, "usage: fenta render SPEC.json --out DIR [--progress auto|bar|json|none]\n\n"
                 "Renders the short a render spec describes (schemas/render/spec.json) into DIR:\n"
                 "video.mp4 (H.264/AAC, faststart), captions.srt, thumbnail.jpg and render.json\n"
                 "(stage timings, probes, loudness). Works offline: espeak-ng speaks the script\n"
                 "unless KOKORO_URL is set. Run again after an interruption to resume.\n\n");
    fenta_config_usage(out, CONFIG_RENDER);
}

int cmd_render(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        }
    /* The settings' flags are taken out of argv; what is left is ours. */
    fenta_config_t c;
    char why[1024] = "";
    if (fenta_config_load(&c, CONFIG_RENDER, &argc, argv, why, sizeof why) != 0) {
        fprintf(stderr, "fenta render: %s\n", why[0] ? why : "out of memory");
        fenta_config_free(&c);
        return 2;
    }
    /* A render's progress is its own output: the log says only what goes
     * wrong unless a level is asked for. */
    log_set_level(fenta_config_source(&c, "log_level") == CONFIG_FROM_DEFAULT
                      ? LOG_WARN
                      : (log_level_t)c.log_level);
    int rc = render_main(&c, argc, argv);
    fenta_config_free(&c);
    return rc;
}

static int render_main(const fenta_config_t *c, int argc, char **argv)
{
    const char *spec_path = NULL, *out = NULL, *progress = "auto";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--out") == 0 && i + 1 < argc) {
            out = argv[++i];
        } else if (strcmp(argv[i], "--progress") == 0 && i + 1 < argc) {
            progress = argv[++i];
        } else if (argv[i][0] != '-' && !spec_path) {
            spec_path = argv[i];
        } else {
            fprintf(stderr, "fenta render: unexpected argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (!spec_path || !out) {
        usage(stderr);
        return 2;
    }
    json_error_t je;
    json_t *spec = json_load_file(spec_path, JSON_REJECT_DUPLICATES, &je);
    if (!spec) {
        fprintf(stderr, "fenta render: %s: %s (line %d)\n", spec_path, je.text, je.line);
        return 2;
    }
    char base[PATH_MAX], abs_out[PATH_MAX], state[PATH_MAX], work[PATH_MAX], rtdir[PATH_MAX];
    if (!realpath(spec_path, base)) {
        fprintf(stderr, "fenta render: %s: %s\n", spec_path, strerror(errno));
        json_decref(spec);
        return 2;
    }
    *strrchr(base, '/') = '\0';
    if (fsutil_mkdirs(out, 0755) != 0 || !realpath(out, abs_out)) {
        fprintf(stderr, "fenta render: cannot create '%s': %s\n", out, strerror(errno));
        json_decref(spec);
        return 2;
    }
    join(state, abs_out, ".fenta");
    join(work, state, "work");
    join(rtdir, state, "runtime");

    char id[64] = "";
    bool resume = resumable(state, abs_out, spec, id, sizeof id);
    if (!resume) {
        fsutil_remove_tree(state);
        fenta_id_t fid;
        id_new(&fid);
        id_to_str(&fid, id);
        char path[PATH_MAX];
        join(path, state, "id");
        FILE *f = fsutil_mkdirs(state, 0755) == 0 ? fopen(path, "w") : NULL;
        if (!f || fprintf(f, "%s\n", id) < 0 || fclose(f) != 0) {
            fprintf(stderr, "fenta render: cannot write '%s'\n", path);
            json_decref(spec);
            return 1;
        }
    }

    watch_t w = {.id = id, .started = now_s()};
    pthread_mutex_init(&w.lock, NULL);
    pthread_cond_init(&w.cond, NULL);
    bool tty = isatty(STDERR_FILENO);
    w.bar = strcmp(progress, "bar") == 0 || (strcmp(progress, "auto") == 0 && tty);
    w.json = strcmp(progress, "json") == 0 || (strcmp(progress, "auto") == 0 && !tty);

    render_config_t cfg = {.tts = {.kokoro_url = c->kokoro_url,
                                   .kokoro_voice = c->kokoro_voice,
                                   .kokoro_api_key = c->kokoro_api_key},
                           .schemas_dir = c->schemas_dir,
                           .asr_model_dir = c->asr_model_dir,
                           .on_event = on_event,
                           .arg = &w};
    render_t *r = render_new(&cfg);
    static const dispatcher_spec_t disp[] = {{"default", 1}, {"io", 1}, {"render", 1}};
    runtime_opts_t ro = {.data_dir = rtdir, .dispatchers = disp, .ndispatchers = 3};
    int err = 0;
    runtime_t *rt = r ? runtime_new(&ro, &err) : NULL;
    int rc = !r ? FENTA_ENOMEM : !rt ? err : render_register(r, rt);
    if (rc == 0)
        rc = runtime_start(rt);
    char msg[2048] = "";
    if (rc == 0) {
        render_job_t job = {.id = id, .work_dir = work, .out_dir = abs_out};
        rc = render_submit(r, rt, &job, spec, base, msg, sizeof msg);
        if (rc == FENTA_EEXIST)
            rc = 0; /* submitted before: its stages carry on */
    }
    if (rc != 0) {
        fprintf(stderr, "fenta render: %s\n", msg[0] ? msg : fenta_strerror(rc));
        runtime_destroy(&rt);
        render_destroy(&r);
        json_decref(spec);
        return rc == FENTA_EINVAL ? 2 : 1;
    }
    /* Wait for the verdict; a runtime with nothing left to do and no verdict
     * means the render's message was dead-lettered (it should never be). */
    pthread_mutex_lock(&w.lock);
    while (!w.done) {
        struct timespec until;
        clock_deadline(1000, &until);
        pthread_cond_timedwait(&w.cond, &w.lock, &until);
        if (w.bar)
            draw_bar(&w, w.progress, w.stage[0] ? w.stage : "starting");
        if (!w.done) {
            pthread_mutex_unlock(&w.lock);
            bool idle = runtime_quiesce(rt, 24LL * 3600 * 1000, 0) == 0;
            pthread_mutex_lock(&w.lock);
            if (idle && !w.done) {
                w.done = w.failed = true;
                snprintf(w.error, sizeof w.error, "%s",
                         "the render stopped without a result (see the dead-letter queue)");
            }
        }
    }
    pthread_mutex_unlock(&w.lock);
    runtime_stop(rt, 5000);
    runtime_destroy(&rt);
    render_destroy(&r);
    json_decref(spec);
    if (w.bar)
        fputc('\n', stderr);
    if (w.failed) {
        fprintf(stderr, "fenta render: failed: %s\n", w.error);
        return 1;
    }
    if (!w.json)
        printf("video:     %s/video.mp4\ncaptions:  %s/captions.srt\nthumbnail: %s/thumbnail.jpg\n"
               "details:   %s/render.json\n",
               abs_out, abs_out, abs_out, abs_out);
    return 0;
}
