/* job_internal.h - what the job engine's files share (job__ prefix): the
 * engine's settings, the executors of nodes that run outside renders
 * (job_nodes.c), how a montage and its render nodes become one render
 * spec (job_render.c), and one message's work on a job, which job.c
 * dispatches, job_walk.c applies and job_row.c records. */
#ifndef FENTA_JOB_INTERNAL_H
#define FENTA_JOB_INTERNAL_H
#include "actors/jobs/job.h"
#include "actors/render/render_spec.h"
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct job_engine {
    job_config_t cfg;   /* strings below are owned copies */
    char *objects_dir;  /* the object store's root */
    char *work_dir;     /* renders' private files */
    char *schemas_dir;  /* NULL = default */
    runtime_t *rt;      /* set by job_engine_register */
    behaviour_t beh[4]; /* job, job.node, job.node.io, job.node.render */
};

/* What a node executor is given (all borrowed). */
typedef struct {
    const job_engine_t *e;
    const char *job_id, *org_id, *node_id, *type;
    const json_t *params; /* the node's params ({} when none) */
    const json_t *inputs; /* {"<port>": value of the output feeding it} */
} job_node_args_t;

/* Runs a node of a type without render stages: *outputs is a new object
 * {"<output port>": value}. 0; FENTA_EINVAL (bad input: the node fails,
 * errbuf says why), FENTA_EINVAL also for a type without an executor, or a passing
 * cause (FENTA_EIO, FENTA_EUNAVAILABLE, ...) worth another attempt. */
int job__run_node(const job_node_args_t *a, json_t **outputs, char *errbuf, size_t errlen);

/* A montage with the render nodes around it, as planned. */
typedef struct {
    size_t montage;  /* plan index of the montage step */
    size_t *members; /* plan indices of the steps this render does (montage included) */
    size_t n;
} job_group_t;

/* Groups every step whose type has render_stages around its montage: its
 * render ancestors (tts, asr, captions) and descendants (export, deliver).
 * *groups is a new array of *ngroups (free with job__groups_free). A render
 * step outside any group is FENTA_EINVAL with errbuf naming it. */
int job__groups(const job_engine_t *e, const workflow_plan_t *plan, job_group_t **groups,
                size_t *ngroups, char *errbuf, size_t errlen);
void job__groups_free(job_group_t *groups, size_t n);

/* The render spec of a group: the script, voice, media, template (with the
 * captions and export nodes' settings) from the group's nodes and the
 * outputs of the steps feeding it (outputs: {"<node id>": {"<port>": v}}).
 * Template names that are not built in are looked up in the organisation's
 * templates. A new object, or NULL with errbuf. */
json_t *job__render_spec(const job_engine_t *e, pg_conn_t *conn, const char *org_id,
                         const workflow_plan_t *plan, const job_group_t *g, const json_t *outputs,
                         char *errbuf, size_t errlen);

/* An organisation as a render_tenant_t (actors/render/render_spec.h): its
 * uploads, and the outputs of its jobs, looked up through conn or, when
 * conn is NULL, a connection of the engine's pool taken for the look-up. */
typedef struct {
    render_tenant_t t; /* pass &t */
    const job_engine_t *e;
    pg_conn_t *conn; /* borrowed; NULL = take one from e's pool when needed */
} job_tenant_t;
void job__tenant(job_tenant_t *jt, const job_engine_t *e, pg_conn_t *conn, const char *org_id);

/* Checks a render spec (a direct render's, or one job__render_spec built)
 * as org_id's, right before the render is submitted, whatever checks it
 * passed at the door: no paths, and every key one of the organisation's
 * existing objects. 0; FENTA_ENOTFOUND or FENTA_EINVAL with errbuf (the
 * job fails); or a passing error (the message is retried). */
int job__check_spec(const job_engine_t *e, pg_conn_t *conn, const char *org_id, const json_t *spec,
                    char *errbuf, size_t errlen);

/* The render stages a node type claims (its "render_stages"), NULL if none. */
const json_t *job__type_stages(const job_engine_t *e, const char *type);

/* Render jobs (POST /v1/renders) have one node of this name. */
#define JOB_RENDER_NODE "render"
/* The kind of node actors: job.node[.<dispatcher>]/<job>:<step>:<attempt>. */
#define JOB_NODE_KIND "job.node"

/* One message's work on a job: job.c makes it for each message of the
 * actor job/<id>, job_walk.c changes the state and queues events, and
 * job_row.c writes them. */
typedef struct {
    job_engine_t *e;
    actor_ctx_t *ctx;
    const char *id; /* the job id */
    json_t *st;     /* the state being changed (owned; its shape: job.c) */
    json_t *events; /* [{"seq","type","data"}] to append */
    workflow_plan_t plan;
    job_group_t *groups;
    size_t ngroups;
    bool planned;
    pg_conn_t *conn; /* taken on first need, released by job.c */
    bool wake_queue; /* a slot came free: the next queued jobs should try now */
} job_msg_t;

static inline const char *job__str(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}
static inline const char *job__status(job_msg_t *x)
{
    return job__str(x->st, "status");
}
static inline json_t *job__nodes(job_msg_t *x)
{
    return json_object_get(x->st, "nodes");
}

/* The message's connection of the engine's pool, taken on first need
 * (job_row.c); NULL with *err. */
pg_conn_t *job__db(job_msg_t *x, int *err);

/* The walk (job_walk.c). Each returns 0, or an error that fails the
 * message (it is retried with the old state). */
/* job.start, job.admit: takes a running slot, or sets a timer to try again. */
int job__admit(job_msg_t *x);
/* node.done (ok) and node.failed from a node actor. */
int job__on_node_reply(job_msg_t *x, const json_t *b, bool ok);
/* render.event, render.succeeded, render.failed of one of the job's renders. */
int job__on_render(job_msg_t *x, const char *type, const json_t *b, char *errbuf, size_t errlen);
int job__on_cancel(job_msg_t *x, char *errbuf, size_t errlen);
int job__on_retry(job_msg_t *x);
/* Starts every ready node and render; settles the job when all are done. */
int job__advance(job_msg_t *x, char *errbuf, size_t errlen);
/* Progress and the current node from the nodes' states. */
void job__progress(job_msg_t *x);

/* The row (job_row.c). */
/* The state from the job's row, on the actor's first message;
 * FENTA_ENOTFOUND when there is no row. */
int job__row_load(job_msg_t *x, char *errbuf, size_t errlen);
/* The row and the message's new events, in one statement. */
int job__row_write(job_msg_t *x);
/* The webhook events among the message's events, sent with its ack. */
int job__emit_webhooks(job_msg_t *x);
/* Nudges the next queued jobs of the organisation (a slot came free). */
void job__wake_queued(job_msg_t *x);

#endif
