/* job_internal.h - what the job engine's files share (job__ prefix): the
 * engine's settings, the executors of nodes that run outside renders
 * (job_nodes.c), and how a montage and its render nodes become one render
 * spec (job_render.c). */
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

#endif
