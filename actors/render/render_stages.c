/* render_stages.c - the render engine's actors: one kind per stage, each
 * running its stage's work once, recording it, and handing over to the
 * next stage in the same commit as its ack. See render.h. */
#include "actors/render/render_internal.h"
#include "runtime/clock.h"
#include "runtime/error.h"
#include "runtime/fsutil.h"
#include "runtime/log.h"
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef int (*stage_fn)(render_ctx_t *c, char *errbuf, size_t errlen);

static const struct {
    const char *name;
    stage_fn run;
    double weight; /* share of a typical render's time, for overall progress */
} STAGES[RENDER_NSTAGES] = {
    {"ingest", render__ingest, 2},   {"script", render__script, 1}, {"tts", render__tts, 6},
    {"align", render__align, 1},     {"edit", render__edit, 84},    {"export", render__export, 4},
    {"deliver", render__deliver, 2},
};

/* Passing causes are retried this many times in all before the render fails. */
static const backoff_policy_t STAGE_RETRY = {
    .base_ms = 1000, .factor = 4, .cap_ms = 60000, .max_attempts = 4};

const char *render_stage_name(int index)
{
    return index >= 0 && index < RENDER_NSTAGES ? STAGES[index].name : NULL;
}

static double overall(int stage, double fraction)
{
    double total = 0, done = 0;
    for (int i = 0; i < RENDER_NSTAGES; i++) {
        total += STAGES[i].weight;
        if (i < stage)
            done += STAGES[i].weight;
    }
    return 100.0 * (done + STAGES[stage].weight * fraction) / total;
}

static double now_s(void)
{
    return (double)clock_mono_us() / 1e6;
}

static void emit(const render_ctx_t *c, render_event_kind_t kind, double fraction, double seconds,
                 bool skipped, const char *error)
{
    const render_config_t *cfg = &c->r->cfg;
    if (!cfg->on_event)
        return;
    render_event_t ev = {.kind = kind,
                         .render_id = c->id,
                         .stage = STAGES[c->stage].name,
                         .stage_index = c->stage,
                         .fraction = fraction,
                         .progress =
                             kind == RENDER_EV_SUCCEEDED ? 100.0 : overall(c->stage, fraction),
                         .seconds = seconds,
                         .skipped = skipped,
                         .error = error,
                         .out_dir = c->out};
    cfg->on_event(cfg->arg, &ev);
}

static void on_progress(render_ctx_t *c, double fraction)
{
    emit(c, RENDER_EV_STAGE_PROGRESS, fraction, 0, false, NULL);
}

/* A cause that may pass: worth another attempt. Bad input never is. */
static bool passing(int rc)
{
    return rc == FENTA_EIO || rc == FENTA_EUNAVAILABLE || rc == FENTA_ETIMEOUT ||
           rc == FENTA_ENOMEM || rc == FENTA_ELIMIT;
}

/* The message every stage receives and forwards. */
static char *job_body(const render_job_t *job, size_t *len)
{
    json_t *b = json_pack("{ss ss ss ss?}", "id", job->id, "work", job->work_dir, "out",
                          job->out_dir, "notify", job->notify);
    char *s = b ? json_dumps(b, JSON_COMPACT) : NULL;
    json_decref(b);
    *len = s ? strlen(s) : 0;
    return s;
}

/* Fails the render: render.json in the out folder says where and why. */
static void fail_render(render_ctx_t *c, actor_ctx_t *ctx, const char *notify, int rc,
                        const char *why, uint32_t attempts)
{
    char path[PATH_MAX];
    json_t *r = json_pack("{ss ss s{ss ss si ss} si}", "id", c->id, "status", "failed", "error",
                          "stage", STAGES[c->stage].name, "code", fenta_strerror(rc), "attempts",
                          (int)attempts, "message", why, "failed_stage", c->stage);
    char err[256];
    if (r && render__write_json(render__path(path, c->out, "render.json"), r, err, sizeof err))
        log_msg(LOG_ERROR, NULL, "render %s: cannot record its failure: %s", c->id, err);
    json_decref(r);
    const char *kv[] = {"render", c->id, "stage", STAGES[c->stage].name, "error", why, NULL};
    log_kv(LOG_WARN, NULL, "render failed", kv);
    if (notify) {
        json_t *m = json_pack("{ss ss ss ss}", "id", c->id, "stage", STAGES[c->stage].name, "error",
                              why, "code", fenta_strerror(rc));
        char *s = m ? json_dumps(m, JSON_COMPACT) : NULL;
        if (s)
            actor_send(ctx, notify, "render.failed", s, strlen(s));
        free(s);
        json_decref(m);
    }
    emit(c, RENDER_EV_FAILED, 0, 0, false, why);
}

/* The running stages' list, so render_cancel reaches the encoder at once. */
static void run_add(const render_t *cr, render_run_t *run)
{
    render_t *r = (render_t *)cr;
    pthread_mutex_lock(&r->runs_lock);
    run->next = r->runs;
    r->runs = run;
    pthread_mutex_unlock(&r->runs_lock);
}

static void run_remove(const render_t *cr, render_run_t *run)
{
    render_t *r = (render_t *)cr;
    pthread_mutex_lock(&r->runs_lock);
    for (render_run_t **p = &r->runs; *p; p = &(*p)->next)
        if (*p == run) {
            *p = run->next;
            break;
        }
    pthread_mutex_unlock(&r->runs_lock);
}

static int on_message(actor_ctx_t *ctx, const envelope_t *msg)
{
    const struct render_stage_user *u = actor_kind_user(ctx);
    json_error_t je;
    json_t *body = json_loadb((const char *)msg->body, msg->body_len, 0, &je);
    const char *id = json_string_value(json_object_get(body, "id"));
    const char *work = json_string_value(json_object_get(body, "work"));
    const char *out = json_string_value(json_object_get(body, "out"));
    const char *notify = json_string_value(json_object_get(body, "notify"));
    if (!id || !work || !out) {
        json_decref(body);
        /* Not ours to repair: dead-letter it for an operator to look at. */
        return actor_fail(ctx, "malformed render message (%s)", je.text);
    }
    render_run_t run = {0};
    snprintf(run.id, sizeof run.id, "%s", id);
    render_ctx_t c = {.r = u->r,
                      .id = id,
                      .work = work,
                      .out = out,
                      .stage = u->index,
                      .progress = on_progress,
                      .cancel = &run.cancel};
    char path[PATH_MAX], err[1024] = "";
    render__path(path, work, STAGES[u->index].name);
    strncat(path, ".json", sizeof path - strlen(path) - 1);
    struct stat sb;
    int rc = 0;
    char marker[PATH_MAX];
    bool cancelled = stat(render__path(marker, work, "cancelled"), &sb) == 0;
    if (!cancelled)
        run_add(u->r, &run);
    if (cancelled || run.cancel) {
        rc = fenta_fail(err, sizeof err, FENTA_ECANCELLED, "render cancelled");
    } else if (stat(path, &sb) == 0) {
        /* Done before a crash that came between the record and the ack. */
        emit(&c, RENDER_EV_STAGE_FINISHED, 1, 0, true, NULL);
    } else {
        emit(&c, RENDER_EV_STAGE_STARTED, 0, 0, false, NULL);
        double t0 = now_s();
        c.result = json_object();
        rc = c.result ? render__load_spec(&c, err, sizeof err) : FENTA_ENOMEM;
        if (rc == 0)
            rc = STAGES[u->index].run(&c, err, sizeof err);
        double secs = now_s() - t0;
        if (rc == 0) {
            json_object_set_new(c.result, "stage", json_string(STAGES[u->index].name));
            json_object_set_new(c.result, "seconds", json_real(secs));
            json_object_set_new(c.result, "attempt", json_integer(msg->attempt + 1));
            rc = render__write_json(path, c.result, err, sizeof err);
        }
        json_decref(c.result);
        render_spec_free(&c.spec);
        if (rc == 0)
            emit(&c, RENDER_EV_STAGE_FINISHED, 1, secs, false, NULL);
    }
    if (!cancelled)
        run_remove(u->r, &run);
    if (rc != 0) {
        uint32_t max = u->r->beh[u->index].retry.max_attempts;
        if (passing(rc) && msg->attempt + 1 < max) {
            const char *kv[] = {"render", id, "stage", STAGES[u->index].name, "error", err, NULL};
            log_kv(LOG_WARN, NULL, "render stage will be retried", kv);
            json_decref(body);
            return actor_fail(ctx, "%s: %s", STAGES[u->index].name, err);
        }
        fail_render(&c, ctx, notify, rc, err[0] ? err : fenta_strerror(rc), msg->attempt + 1);
        json_decref(body);
        return 0;
    }
    if (u->index + 1 < RENDER_NSTAGES) {
        char to[ENVELOPE_ADDR_MAX + 1];
        snprintf(to, sizeof to, "render.%s/%s", STAGES[u->index + 1].name, id);
        rc = actor_send(ctx, to, "render.stage", msg->body, msg->body_len);
    } else {
        emit(&c, RENDER_EV_SUCCEEDED, 1, 0, false, NULL);
        if (notify) {
            json_t *m = json_pack("{ss ss}", "id", id, "out", out);
            char *s = m ? json_dumps(m, JSON_COMPACT) : NULL;
            rc = s ? actor_send(ctx, notify, "render.succeeded", s, strlen(s)) : FENTA_ENOMEM;
            free(s);
            json_decref(m);
        }
    }
    json_decref(body);
    return rc;
}

/* ---- the engine ------------------------------------------------------------- */

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

render_t *render_new(const render_config_t *cfg)
{
    render_t *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->cfg = *cfg;
    pthread_mutex_init(&r->runs_lock, NULL);
    r->kokoro_url = dup_or_null(cfg->tts.kokoro_url);
    r->kokoro_voice = dup_or_null(cfg->tts.kokoro_voice);
    r->kokoro_api_key = dup_or_null(cfg->tts.kokoro_api_key);
    r->espeak_voice = dup_or_null(cfg->tts.espeak_voice);
    r->objects_dir = dup_or_null(cfg->objects_dir);
    r->schemas_dir = dup_or_null(cfg->schemas_dir);
    r->asr_model_dir = dup_or_null(cfg->asr_model_dir);
    r->cfg.tts.kokoro_url = r->kokoro_url;
    r->cfg.tts.kokoro_voice = r->kokoro_voice;
    r->cfg.tts.kokoro_api_key = r->kokoro_api_key;
    r->cfg.tts.espeak_voice = r->espeak_voice;
    r->cfg.objects_dir = r->objects_dir;
    r->cfg.schemas_dir = r->schemas_dir;
    r->cfg.asr_model_dir = r->asr_model_dir;
    for (int i = 0; i < RENDER_NSTAGES; i++) {
        struct render_stage_user *u = &r->stage[i];
        u->r = r;
        u->index = i;
        snprintf(u->kind, sizeof u->kind, "render.%s", STAGES[i].name);
        r->beh[i] = (behaviour_t){.kind = u->kind,
                                  .dispatcher = "render",
                                  .on_message = on_message,
                                  .retry = STAGE_RETRY,
                                  .user = u};
    }
    return r;
}

void render_destroy(render_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    render_t *r = *self_p;
    free(r->kokoro_url);
    free(r->kokoro_voice);
    free(r->kokoro_api_key);
    free(r->espeak_voice);
    free(r->objects_dir);
    free(r->schemas_dir);
    free(r->asr_model_dir);
    pthread_mutex_destroy(&r->runs_lock);
    free(r);
    *self_p = NULL;
}

void render_set_event_arg(render_t *r, void *arg)
{
    r->cfg.arg = arg;
}

int render_register(render_t *r, runtime_t *rt)
{
    for (int i = 0; i < RENDER_NSTAGES; i++) {
        int rc = runtime_register(rt, &r->beh[i]);
        if (rc)
            return rc;
    }
    return 0;
}

static bool valid_id(const char *id)
{
    size_t n = 0;
    for (; id[n]; n++)
        if (!((id[n] >= 'a' && id[n] <= 'z') || (id[n] >= 'A' && id[n] <= 'Z') ||
              (id[n] >= '0' && id[n] <= '9') || id[n] == '_' || id[n] == '-'))
            return false;
    return n >= 1 && n <= 64;
}

int render_submit(render_t *r, runtime_t *rt, const render_job_t *job, const json_t *spec,
                  const char *base_dir, char *errbuf, size_t errlen)
{
    if (!job->id || !valid_id(job->id)) {
        snprintf(errbuf, errlen, "render id must be 1-64 of [A-Za-z0-9_-]");
        return FENTA_EINVAL;
    }
    /* <work>/submitted is written once the first message is durable; until
     * then a repeated submit spawns (EEXIST is fine) and sends again. A
     * duplicate first message would only find every stage recorded. */
    char addr[ENVELOPE_ADDR_MAX + 1], marker[PATH_MAX];
    struct stat sb;
    if (stat(render__path(marker, job->work_dir, "submitted"), &sb) == 0)
        return FENTA_EEXIST;
    /* Refuse a bad spec before anything exists. */
    char cwd[PATH_MAX];
    if (!base_dir)
        base_dir = getcwd(cwd, sizeof cwd);
    render_spec_opts_t o = {
        .base_dir = base_dir, .objects_dir = r->objects_dir, .schemas_dir = r->schemas_dir};
    render_spec_t parsed;
    int rc = render_spec_parse(spec, &o, &parsed, errbuf, errlen);
    if (rc)
        return rc;
    render_spec_free(&parsed);
    if (fsutil_mkdirs(job->work_dir, 0755) != 0 || fsutil_mkdirs(job->out_dir, 0755) != 0) {
        snprintf(errbuf, errlen, "cannot create '%s' or '%s': %s", job->work_dir, job->out_dir,
                 strerror(errno));
        return FENTA_EIO;
    }
    json_t *stored = json_pack("{sO ss ss?}", "spec", spec, "base_dir", base_dir ? base_dir : "/",
                               "objects_dir", r->objects_dir);
    char path[PATH_MAX];
    rc = stored ? render__write_json(render__path(path, job->work_dir, "spec.json"), stored, errbuf,
                                     errlen)
                : FENTA_ENOMEM;
    json_decref(stored);
    if (rc)
        return rc;
    for (int i = 0; i < RENDER_NSTAGES && rc == 0; i++) {
        snprintf(addr, sizeof addr, "render.%s/%s", STAGES[i].name, job->id);
        rc = runtime_spawn(rt, addr, NULL, NULL, 0);
        if (rc == FENTA_EEXIST)
            rc = 0;
    }
    size_t len = 0;
    char *body = rc == 0 ? job_body(job, &len) : NULL;
    if (rc == 0 && !body)
        rc = FENTA_ENOMEM;
    if (rc == 0) {
        snprintf(addr, sizeof addr, "render.ingest/%s", job->id);
        rc = runtime_send(rt, addr, "render.stage", job->id, body, len);
    }
    free(body);
    if (rc == 0) {
        json_t *when = json_pack("{sI}", "at_ms", (json_int_t)(clock_now_ms() / 1000 * 1000));
        rc = when ? render__write_json(marker, when, errbuf, errlen) : FENTA_ENOMEM;
        json_decref(when);
        if (rc)
            return rc;
    }
    if (rc)
        snprintf(errbuf, errlen, "cannot start render %s: %s", job->id, fenta_strerror(rc));
    return rc;
}

int render_cancel(render_t *r, const render_job_t *job)
{
    if (!job->id || !valid_id(job->id))
        return FENTA_EINVAL;
    /* The marker first: a stage that starts after this refuses to run, even
     * after a restart; then the stage running now is told. */
    char marker[PATH_MAX], err[256];
    json_t *when = json_pack("{sI}", "at_ms", (json_int_t)(clock_now_ms() / 1000 * 1000));
    int rc = when && fsutil_mkdirs(job->work_dir, 0755) == 0
                 ? render__write_json(render__path(marker, job->work_dir, "cancelled"), when, err,
                                      sizeof err)
                 : FENTA_EIO;
    json_decref(when);
    pthread_mutex_lock(&r->runs_lock);
    for (render_run_t *run = r->runs; run; run = run->next)
        if (strcmp(run->id, job->id) == 0)
            run->cancel = 1;
    pthread_mutex_unlock(&r->runs_lock);
    return rc;
}

int render_retry(render_t *r, runtime_t *rt, const render_job_t *job, char *errbuf, size_t errlen)
{
    (void)r;
    if (!job->id || !valid_id(job->id))
        return fenta_fail(errbuf, errlen, FENTA_EINVAL, "render id must be 1-64 of [A-Za-z0-9_-]");
    char path[PATH_MAX];
    struct stat sb;
    if (stat(render__path(path, job->work_dir, "submitted"), &sb) != 0)
        return fenta_fail(errbuf, errlen, FENTA_ENOTFOUND, "render %s was never submitted",
                          job->id);
    unlink(render__path(path, job->work_dir, "cancelled"));
    /* The first stage without its record is the one that failed (or never ran). */
    int stage = 0;
    for (; stage < RENDER_NSTAGES; stage++) {
        render__path(path, job->work_dir, STAGES[stage].name);
        strncat(path, ".json", sizeof path - strlen(path) - 1);
        if (stat(path, &sb) != 0)
            break;
    }
    if (stage == RENDER_NSTAGES)
        stage = RENDER_NSTAGES - 1; /* all recorded: deliver again (it is idempotent) */
    size_t len = 0;
    char *body = job_body(job, &len);
    if (!body)
        return fenta_fail(errbuf, errlen, FENTA_ENOMEM, "out of memory");
    char addr[ENVELOPE_ADDR_MAX + 1];
    snprintf(addr, sizeof addr, "render.%s/%s", STAGES[stage].name, job->id);
    int rc = runtime_spawn(rt, addr, NULL, NULL, 0);
    if (rc == FENTA_EEXIST)
        rc = 0;
    if (rc == 0)
        rc = runtime_send(rt, addr, "render.stage", job->id, body, len);
    free(body);
    if (rc)
        return fenta_fail(errbuf, errlen, rc, "cannot resume render %s: %s", job->id,
                          fenta_strerror(rc));
    return 0;
}
