/* render_internal.h - what the render engine's files share: the actor
 * plumbing (render_stages.c) runs the stages' work (render_work.c) through
 * one context per stage run. */
#ifndef FENTA_RENDER_INTERNAL_H
#define FENTA_RENDER_INTERNAL_H
#include "actors/render/render.h"
#include "actors/render/render_spec.h"
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <stddef.h>

/* A stage running now, findable by render_cancel. */
typedef struct render_run {
    struct render_run *next;
    char id[65];         /* the render id */
    volatile int cancel; /* polled by the encoder */
} render_run_t;

struct render {
    render_config_t cfg;       /* strings below are owned copies */
    pthread_mutex_t runs_lock; /* guards runs */
    render_run_t *runs;        /* stages running now */
    char *kokoro_url, *kokoro_voice, *kokoro_api_key, *espeak_voice, *objects_dir, *schemas_dir,
        *asr_model_dir;
    behaviour_t beh[RENDER_NSTAGES]; /* one kind per stage; user = &stage[i] */
    struct render_stage_user {
        struct render *r;
        int index;
        char kind[32]; /* "render.<stage>" */
    } stage[RENDER_NSTAGES];
};

typedef struct render_ctx {
    const struct render *r;
    const char *id, *work, *out;
    int stage;
    render_spec_t spec; /* parsed from <work>/spec.json for this run */
    json_t *result;     /* what the stage records in <work>/<stage>.json (owned) */
    /* Reports progress within the stage (0..1). */
    void (*progress)(struct render_ctx *c, double fraction);
    void *progress_arg;
    const volatile int *cancel; /* set by render_cancel while the stage runs */
} render_ctx_t;

/* The stages' work, in order; each reads earlier stages' records, writes its
 * outputs, fills c->result; 0 or a FENTA_* code with errbuf. */
int render__ingest(render_ctx_t *c, char *errbuf, size_t errlen);
int render__script(render_ctx_t *c, char *errbuf, size_t errlen);
int render__tts(render_ctx_t *c, char *errbuf, size_t errlen);
int render__align(render_ctx_t *c, char *errbuf, size_t errlen);
int render__edit(render_ctx_t *c, char *errbuf, size_t errlen);
int render__export(render_ctx_t *c, char *errbuf, size_t errlen);
int render__deliver(render_ctx_t *c, char *errbuf, size_t errlen);

/* <dir>/<name> into buf (PATH_MAX). */
const char *render__path(char *buf, const char *dir, const char *name);
/* Reads <work>/<name>.json; NULL when absent or unreadable. */
json_t *render__record(const char *work, const char *name);
/* Writes JSON to path: temp file, fsync, rename, fsync of the folder. */
int render__write_json(const char *path, const json_t *j, char *errbuf, size_t errlen);
/* Parses <work>/spec.json into c->spec. */
int render__load_spec(render_ctx_t *c, char *errbuf, size_t errlen);

#endif
