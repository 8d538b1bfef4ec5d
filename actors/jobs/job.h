/* job.h - jobs: one run of a workflow (or of a render spec) as a durable
 * actor "job/<job id>" that walks the workflow's plan.
 *
 * A job exists as a row of PostgreSQL's jobs table (what clients read) and
 * as its actor (what runs). The API inserts the row first and then calls
 * job_start, which spawns the actor and sends it "job.start" in one durable
 * step; job_engine_recover (at start-up) spawns the actor of every queued or
 * running row that has none, so a crash between the two loses nothing and a
 * row never waits without an actor.
 *
 * Execution: the actor takes a running slot of its organisation (at most
 * the org's max_running_jobs, else the engine's default; queued jobs are
 * admitted by priority, then age), then starts every node whose inputs are
 * ready:
 *  - a node of a type without render_stages runs in its own actor
 *    "job.node/<job>:<step>:<attempt>" on its type's dispatcher and replies
 *    with its outputs, which the job stores in its state, committed with the
 *    reply's ack, before the node counts as done (so independent branches
 *    run in parallel and a replayed reply changes nothing);
 *  - each montage node, with the render nodes around it (tts, asr, captions
 *    before it; export and deliver after it), is one render (actors/render/render.h)
 *    whose stages report to the job; their outputs land in the object store
 *    under jobs/<job id>/<montage node id>/ (video.mp4, captions.srt,
 *    thumbnail.jpg, render.json).
 * Every change of status, progress or node is written to the job's row and
 * appended to job_events (seq counted in the actor's state, so a replayed
 * message inserts no event twice).
 *
 * job.cancel stops running renders promptly (render_cancel) and marks the
 * job cancelled; job.retry re-runs a failed or cancelled job from its failed
 * nodes (nodes already done are not run again; a render resumes at its
 * failed stage). */
#ifndef FENTA_JOB_H
#define FENTA_JOB_H
#include "actors/render/render.h"
#include "actors/workflow/workflow.h"
#include "runtime/runtime.h"
#include "storage/pg.h"

#include <stdbool.h>

typedef struct job_engine job_engine_t;

typedef struct {
    pg_pool_t *pool;               /* the system of record (borrowed) */
    render_t *render;              /* runs the montages (borrowed) */
    const workflow_types_t *types; /* node types (borrowed) */
    const char *objects_dir;       /* the object store's root: outputs go to jobs/<id>/... */
    const char *work_dir;          /* the renders' private files: <work_dir>/<job id>/... */
    const char *schemas_dir;       /* built-in templates; NULL = the default */
    int max_running_per_org;       /* default cap of running jobs per organisation; 0 = 4 */
    bool webhooks;                 /* emit job.* webhook events (webhooks/webhooks.h registered) */
    /* Optional: whether org wants events of type (webhooks_wanted); NULL = always. */
    bool (*webhooks_wanted)(void *arg, const char *org, const char *type);
    void *webhooks_arg;
} job_config_t;

/* The engine (strings copied), NULL on ENOMEM. */
job_engine_t *job_engine_new(const job_config_t *cfg);
void job_engine_destroy(job_engine_t **self_p);

/* Registers the kinds "job" and "job.node" (before runtime_start). */
int job_engine_register(job_engine_t *e, runtime_t *rt);

/* The render engine's event hook: pass it as render_config_t.on_event with
 * arg = the engine. Stage starts, ends and progress of a job's renders
 * become messages to the job's actor. */
void job_engine_on_render_event(void *arg, const render_event_t *ev);

/* Spawns job/<id> (EEXIST is fine) and sends it "job.start"; durable when it
 * returns 0. The row must exist. */
int job_start(runtime_t *rt, const char *job_id);
/* Sends "job.cancel" / "job.retry" to the job's actor. */
int job_cancel(runtime_t *rt, const char *job_id);
int job_retry(runtime_t *rt, const char *job_id);

/* Starts the actor of every queued or running job row that has none (after
 * a crash between a row's insert and its job_start). *started (may be NULL)
 * counts them. After runtime_start. */
int job_engine_recover(job_engine_t *e, runtime_t *rt, int *started);

/* ---- creating jobs (job_create.c) ------------------------------------------------ */

/* A run of a workflow to create. */
typedef struct {
    const char *org_id;      /* the organisation */
    const char *workflow_id; /* a workflow of that organisation */
    const char *version;     /* decimal version; NULL = the latest */
    const json_t *inputs; /* {node id: {param: value}} merged over the nodes' params; NULL = {} */
    const char *priority; /* "high", "normal" (NULL) or "low" */
    double max_credits;   /* refuse a run costing more; < 0 = no limit */
    const char *estimate_id; /* recorded with the job; NULL = none */
    const char *created_by;  /* the user; NULL = nobody (a schedule) */
    const char *schedule_id; /* recorded with the job; NULL = none */
    const char *job_id;      /* the job's id; NULL = a random one */
} job_new_t;

/* Inserts the job row for n (queued; nothing runs until job_start or the
 * caller spawns its actor). Returns 0 with id[] filled; FENTA_EEXIST (id
 * filled) when n->job_id is given and that job exists already, so a
 * replayed creation makes nothing twice; FENTA_ENOTFOUND when the workflow
 * or version does not exist (or is deleted); a refusal with *problem (a
 * new {"code", "message", "details"}, what the client is told: an API
 * error code, whose status schemas/errors.json gives, never picked here):
 * FENTA_EINVAL when the run is asked for wrongly: the inputs name unknown
 * nodes (invalid_inputs) or the merged graph names a server path or a
 * malformed key (malformed_workflow, details = each with its "$.graph..."
 * path: render_sources_check); FENTA_EREFUSED when it is well formed but
 * not carried out: the workflow is not valid (invalid_workflow, details =
 * its problems) or costs more than max_credits (over_budget); else a
 * database error. Whose keys the graph names is checked when its nodes
 * read them. */
int job_insert(pg_conn_t *c, const workflow_types_t *types, const job_new_t *n, char id[37],
               json_t **problem);

#endif
