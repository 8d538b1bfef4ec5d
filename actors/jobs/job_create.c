/* job_create.c - the row of a new workflow job: the version asked for, the
 * run's inputs merged over its graph, its price checked against what the
 * caller allows, inserted queued. Shared by POST /v1/workflows/{id}/run and
 * the schedule actor, which gives the id itself so a replayed firing
 * inserts nothing twice. */
#include "actors/jobs/job.h"
#include "actors/render/render_spec.h"
#include "runtime/error.h"
#include "storage/jobs_db.h"
#include "storage/workflows_db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Fills *problem with what a client is told and returns rc: FENTA_EINVAL
 * for a run asked for wrongly, FENTA_EREFUSED for one that is well formed
 * but not carried out. Which HTTP status either is, is the API's choice. */
static int refuse(json_t **problem, int rc, const char *code, const char *message, json_t *details)
{
    if (problem)
        *problem = json_pack("{ss ss so}", "code", code, "message", message, "details",
                             details ? details : json_null());
    else
        json_decref(details);
    return rc;
}

int job_insert(pg_conn_t *c, const workflow_types_t *types, const job_new_t *n, char id[37],
               json_t **problem)
{
    if (problem)
        *problem = NULL;
    id[0] = 0;
    if (n->job_id) {
        /* A replay of a creation that already happened changes nothing. */
        int rc = jobs_db_exists(c, n->job_id, NULL);
        if (rc != FENTA_ENOTFOUND) {
            if (rc == 0)
                snprintf(id, 37, "%s", n->job_id);
            return rc == 0 ? FENTA_EEXIST : rc;
        }
    }
    json_t *w = NULL;
    int rc = workflows_db_get(c, n->workflow_id, n->org_id, n->version, &w);
    if (rc)
        return rc;
    json_t *graph = json_deep_copy(json_object_get(w, "graph")), *unknown = NULL, *est = NULL;
    rc = graph ? 0 : FENTA_ENOMEM;
    if (!rc && workflow_apply_inputs(graph, n->inputs, &unknown) != 0)
        rc = refuse(problem, FENTA_EINVAL, "invalid_inputs",
                    "inputs name nodes the workflow does not have", unknown);
    /* Server paths and keys that leave their folder are refused at the door
     * (templates, workflows, runs, schedules); this catches what was
     * stored before that, or came by a route that did not check. */
    json_t *sources = NULL;
    if (!rc && render_sources_check(graph, "$.graph", &sources) != 0)
        rc = refuse(problem, FENTA_EINVAL, "malformed_workflow",
                    "sources must be object-store keys (\"key\"), not server paths; see details",
                    sources);
    if (!rc && workflow_estimate(types, graph, &est) != 0) {
        json_t *problems = NULL;
        workflow_validate(types, graph, &problems);
        rc = refuse(problem, FENTA_EREFUSED, "invalid_workflow",
                    "the workflow is not valid; see details", problems);
    }
    double total = est ? json_number_value(json_object_get(est, "total")) : 0;
    if (!rc && n->max_credits >= 0 && total > n->max_credits + 0.005) {
        char msg[160];
        snprintf(msg, sizeof msg, "this run costs %.2f credits, more than the %.2f allowed", total,
                 n->max_credits);
        rc = refuse(problem, FENTA_EREFUSED, "over_budget", msg,
                    json_pack("{sf sf}", "credits", total, "allowed", n->max_credits));
    }
    if (!rc) {
        jobs_db_new_t j = {.id = n->job_id,
                           .org_id = n->org_id,
                           .workflow_id = n->workflow_id,
                           .workflow_version =
                               (int)json_integer_value(json_object_get(w, "version")),
                           .priority = n->priority,
                           .graph = graph,
                           .inputs = n->inputs,
                           .credits = total,
                           .estimate_id = n->estimate_id,
                           .created_by = n->created_by,
                           .schedule_id = n->schedule_id};
        rc = jobs_db_insert_workflow(c, &j, id);
    }
    json_decref(est);
    json_decref(graph);
    json_decref(w);
    return rc;
}
