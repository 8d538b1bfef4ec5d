/* render.h - the render engine: seven stage actors that turn a render spec
 * into video.mp4, captions.srt, thumbnail.jpg and render.json.
 *
 * Stages, each an actor kind on the "render" dispatcher, addressed
 * "render.<stage>/<render id>": ingest (probe every source), script
 * (normalise the text), tts (speak it, or align/transcribe a recording),
 * align (caption lines, ASS and SRT), edit (the one filtergraph, encoded),
 * export (outputs into place, thumbnail, checks), deliver (render.json and
 * the notification).
 *
 * Durability: a stage writes its outputs and then <work>/<stage>.json
 * (fsync'd, renamed) before it acks and sends the next stage's message in
 * the same commit. A crash replays the unacknowledged stage only: one whose
 * <stage>.json exists is skipped, so a render killed mid-edit resumes at the
 * edit and never re-runs the speech. A stage failing on bad input fails the
 * render at once (render.json says which stage, which file, why); one
 * failing on a passing cause (a provider down, I/O) is retried with backoff
 * and fails the render after its last attempt - it never vanishes into the
 * dead-letter queue with the client left waiting. */
#ifndef FENTA_RENDER_H
#define FENTA_RENDER_H
#include "actors/speech/tts.h"
#include "runtime/runtime.h"
#include <jansson.h>

#define RENDER_NSTAGES 7

typedef enum {
    RENDER_EV_STAGE_STARTED,
    RENDER_EV_STAGE_PROGRESS, /* within a long stage (the edit) */
    RENDER_EV_STAGE_FINISHED,
    RENDER_EV_SUCCEEDED,
    RENDER_EV_FAILED,
} render_event_kind_t;

typedef struct render_event {
    render_event_kind_t kind;
    const char *render_id;
    const char *stage;   /* "ingest" ... "deliver" */
    int stage_index;     /* 0 .. RENDER_NSTAGES-1 */
    double fraction;     /* of the stage done, 0..1 */
    double progress;     /* of the whole render, 0..100 */
    double seconds;      /* the stage's wall time (STAGE_FINISHED) */
    bool skipped;        /* STAGE_FINISHED: done before a restart, not run again */
    const char *error;   /* RENDER_EV_FAILED: what went wrong */
    const char *out_dir; /* where the outputs are */
} render_event_t;

typedef struct render_config {
    tts_config_t tts;          /* Kokoro when tts.kokoro_url is set, else espeak-ng */
    const char *objects_dir;   /* object-store keys in specs resolve here; NULL = refused */
    const char *schemas_dir;   /* NULL = the source tree's (fsutil_schemas_dir) */
    const char *asr_model_dir; /* a recording without its words is transcribed with this
                                  pocketsphinx model; NULL = ASR_DEFAULT_MODEL_DIR */
    /* Called on the stage's dispatcher thread; keep it short. */
    void (*on_event)(void *arg, const render_event_t *ev);
    void *arg;
} render_config_t;

typedef struct render render_t;

/* The engine with its settings (strings copied). NULL on ENOMEM. */
render_t *render_new(const render_config_t *cfg);
void render_destroy(render_t **self_p);

/* Sets the on_event hook's arg (when the hook's owner is made after the
 * engine); before render_register. */
void render_set_event_arg(render_t *r, void *arg);

/* Registers the seven stage kinds with rt (before runtime_start); r must
 * outlive rt. */
int render_register(render_t *r, runtime_t *rt);

typedef struct render_job {
    const char *id;       /* the render's id: [A-Za-z0-9_-]{1,64} */
    const char *work_dir; /* the stages' private files (created) */
    const char *out_dir;  /* video.mp4, captions.srt, thumbnail.jpg, render.json (created) */
    const char *notify;   /* an actor told "render.succeeded" / "render.failed"; NULL = none */
} render_job_t;

/* Checks the spec (FENTA_EINVAL with errbuf saying what is wrong, before
 * anything is created), stores it in the work folder, spawns the stage
 * actors and sends the first stage its message. base_dir resolves relative
 * paths in the spec (NULL = the current directory). FENTA_EEXIST when this
 * render was submitted before (its stages carry on from where they are). */
int render_submit(render_t *r, runtime_t *rt, const render_job_t *job, const json_t *spec,
                  const char *base_dir, char *errbuf, size_t errlen);

/* Stops a render: the stage running now stops promptly (the encoder polls
 * a flag between frames), later stages refuse to run (a "cancelled" marker
 * in the work folder, so this holds across restarts), and the notify actor
 * gets "render.failed" with code "cancelled". 0, FENTA_EINVAL, FENTA_EIO. */
int render_cancel(render_t *r, const render_job_t *job);

/* Runs a failed or cancelled render again from its first stage without a
 * record (the one that failed): the stages before it are not run again.
 * FENTA_ENOTFOUND when it was never submitted. */
int render_retry(render_t *r, runtime_t *rt, const render_job_t *job, char *errbuf, size_t errlen);

/* The stage names, in order. */
const char *render_stage_name(int index);

#endif
