/* job_create.c - the row of a new workflow job: the version asked for, the
 * run's inputs merged over its graph, its price checked against what the
 * caller allows, inserted queued. Shared by POST /v1/workflows/{id}/run and
 * the schedule actor, which gives the id itself so a replayed firing
 * inserts nothing twice. */
#include "actors/jobs/job.h"
#include "actors/render/render_spec.h"
#include "runtime/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int refuse(json_t **problem, const char *code, const char *message, json_t *details)
{
    if (problem)
        *problem = json_pack("{ss ss so}", "code", code, "message", message, "details",
                             details ? details : json_null());
    else
        json_decref(details);
    return FENTA_EINVAL;
}

int job_insert(pg_conn_t *c, const workflow_types_t *types, const job_new_t *n, char id[37],
               json_t **problem)
{
    if (problem)
        *problem = NULL;
    id[0] = 0;
    int err = 0;
    if (n->job_id) {
        /* A replay of a creation that already happened changes nothing. */
        const char *p[] = {n->job_id};
        pg_result_t *r = pg_query(c, "SELECT 1 FROM jobs WHERE id = $1", 1, p, &err);
        if (!r)
            return err;
        bool there = pg_nrows(r) > 0;
        pg_result_free(&r);
        if (there) {
            snprintf(id, 37, "%s", n->job_id);
            return FENTA_EEXIST;
        }
    }
    const char *pw[] = {n->workflow_id, n->org_id, n->version};
    pg_result_t *w = pg_query(c,
                              "SELECT v.version, v.graph::text FROM workflows w JOIN "
                              "workflow_versions v ON v.workflow_id = w.id AND v.version = "
                              "COALESCE($3::int, w.version) WHERE w.id = $1 AND w.org_id = $2 AND "
                              "w.deleted_at IS NULL",
                              3, pw, &err);
    if (!w)
        return err;
    if (pg_nrows(w) != 1) {
        pg_result_free(&w);
        return FENTA_ENOTFOUND;
    }
    json_t *graph = json_loads(pg_get(w, 0, 1), 0, NULL), *unknown = NULL, *est = NULL;
    int rc = graph ? 0 : FENTA_EDECODE;
    if (!rc && workflow_apply_inputs(graph, n->inputs, &unknown) != 0)
        rc = refuse(problem, "invalid_inputs", "inputs name nodes the workflow does not have",
                    unknown);
    /* Server paths and keys that leave their folder are refused at the door
     * (templates, workflows, runs, schedules); this catches what was
     * stored before that, or came by a route that did not check. */
    json_t *sources = NULL;
    if (!rc && render_sources_check(graph, "$.graph", &sources) != 0)
        rc = refuse(problem, "malformed_workflow",
                    "sources must be object-store keys (\"key\"), not server paths; see details",
                    sources);
    if (!rc && workflow_estimate(types, graph, &est) != 0) {
        json_t *problems = NULL;
        workflow_validate(types, graph, &problems);
        rc =
            refuse(problem, "invalid_workflow", "the workflow is not valid; see details", problems);
    }
    double total = est ? json_number_value(json_object_get(est, "total")) : 0;
    if (!rc && n->max_credits >= 0 && total > n->max_credits + 0.005) {
        char msg[160];
        snprintf(msg, sizeof msg, "this run costs %.2f credits, more than the %.2f allowed", total,
                 n->max_credits);
        rc = refuse(problem, "over_budget", msg,
                    json_pack("{sf sf}", "credits", total, "allowed", n->max_credits));
    }
    if (!rc) {
        char *g = json_dumps(graph, JSON_COMPACT);
        char *in = json_dumps(n->inputs ? n->inputs : json_object(), JSON_COMPACT);
        char credits[32];
        snprintf(credits, sizeof credits, "%.2f", total);
        const char *p[] = {n->job_id,
                           n->org_id,
                           n->workflow_id,
                           pg_get(w, 0, 0),
                           n->priority ? n->priority : "normal",
                           g,
                           in,
                           credits,
                           n->estimate_id,
                           n->created_by,
                           n->schedule_id};
        pg_result_t *r =
            g && in ? pg_query(c,
                               "INSERT INTO jobs (id, org_id, kind, workflow_id, workflow_version, "
                               "priority, priority_rank, graph, inputs, credits, estimate_id, "
                               "created_by, schedule_id) VALUES (COALESCE($1::uuid, "
                               "gen_random_uuid()), $2, 'workflow', $3, $4::int, $5, CASE $5 "
                               "WHEN 'high' THEN 0 WHEN 'low' THEN 2 ELSE 1 END, $6::jsonb, "
                               "$7::jsonb, $8::numeric, $9::uuid, $10, $11) ON CONFLICT (id) DO "
                               "NOTHING RETURNING id",
                               11, p, &err)
                    : NULL;
        rc = !g || !in ? FENTA_ENOMEM : r ? 0 : err;
        if (r && pg_nrows(r) == 1)
            snprintf(id, 37, "%s", pg_get(r, 0, 0));
        else if (r) {
            snprintf(id, 37, "%s", n->job_id);
            rc = FENTA_EEXIST; /* inserted meanwhile by another node */
        }
        pg_result_free(&r);
        free(g);
        free(in);
    }
    json_decref(est);
    json_decref(graph);
    pg_result_free(&w);
    return rc;
}
