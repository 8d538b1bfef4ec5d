/* h_workflows.c - workflows: node types, CRUD with a new version on every
 * saved graph, validation (every problem at once), credit estimates, and
 * runs (a job row, then its actor: actors/jobs/job.h). */
#include "actors/jobs/job.h"
#include "http/app_internal.h"
#include "runtime/error.h"
#include "storage/estimates_db.h"
#include "storage/workflows_db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The problems of a graph ([] when valid), as the validator gives them;
 * NULL when memory ran out. */
static json_t *problems_of(app_t *app, const json_t *graph)
{
    json_t *problems = NULL;
    int rc = workflow_validate(app->types, graph, &problems);
    if (rc == 0)
        return json_array();
    return problems;
}

/* A workflow (a workflows_db row, taken) as GET shows it: with every
 * problem of its graph. Lists leave the problems out (GET one or validate
 * for them): their rows are the workflows_db rows as they are. */
static json_t *wf_json(app_t *app, json_t *row)
{
    const json_t *graph = json_object_get(row, "graph");
    json_t *problems = problems_of(app, graph);
    json_t *o = json_pack(
        "{sO sO sO sO sO sO sb so sO sO}", "id", json_object_get(row, "id"), "org_id",
        json_object_get(row, "org_id"), "name", json_object_get(row, "name"), "description",
        json_object_get(row, "description"), "version", json_object_get(row, "version"), "graph",
        graph, "valid", json_array_size(problems) == 0, "problems",
        problems ? problems : json_array(), "created_at", json_object_get(row, "created_at"),
        "updated_at", json_object_get(row, "updated_at"));
    json_decref(row);
    return o;
}

/* The shape of a graph must be a workflow document before it is stored;
 * its wiring may still be wrong (a draft). 0, or 1 after answering 400. */
static int check_shape(http_req_t *req, const json_t *graph)
{
    json_t *problems = NULL;
    if (workflow_validate(app__of(req)->types, graph, &problems) == 0)
        return 0;
    json_t *shape = json_array();
    size_t i;
    json_t *p;
    json_array_foreach(problems, i, p) if (strcmp(json_string_value(json_object_get(p, "code")),
                                                  "invalid_document") == 0)
        json_array_append(shape, p);
    json_decref(problems);
    if (json_array_size(shape) == 0) {
        json_decref(shape);
        return 0;
    }
    app__fail(req, "malformed_workflow", "the graph is not a workflow document", shape);
    return 1;
}

void h_node_types_list(http_req_t *req)
{
    json_t *list = workflow_types_list(app__of(req)->types);
    if (!list) {
        app__fail(req, "internal", "out of memory", NULL);
        return;
    }
    app__reply(req, 200, json_pack("{so}", "data", list));
}

void h_workflows_create(http_req_t *req)
{
    caller_t *cl = app__caller(req);
    json_t *b = http_json_body(req, NULL);
    json_t *graph = json_object_get(b, "graph");
    if (!app__sources_ok(req, graph, "$.graph", "malformed_workflow") || check_shape(req, graph))
        return;
    pg_conn_t *c = app__db(req);
    if (!c)
        return;
    json_t *row = NULL;
    int rc = workflows_db_create(c, cl->org_id, json_string_value(json_object_get(b, "name")),
                                 json_string_value(json_object_get(b, "description")), cl->user_id,
                                 graph, &row);
    if (rc)
        app__db_error(req, rc, c);
    else
        app__reply(req, 201, wf_json(app__of(req), row));
    app__db_done(req, &c);
}

/* app_list_fn: a page of the organisation's (arg) workflows. */
static int list_workflows(http_req_t *req, pg_conn_t *c, void *arg, const db_page_t *page,
                          db_page_rows_t *out)
{
    (void)req;
    return workflows_db_list(c, arg, page, out);
}

void h_workflows_list(http_req_t *req)
{
    app__list(req, list_workflows, app__caller(req)->org_id);
}

/* The workflow of the {id} parameter at version (NULL = latest) as a
 * workflows_db row, or NULL after answering. */
static json_t *load(http_req_t *req, pg_conn_t *c, const char *version)
{
    caller_t *cl = app__caller(req);
    const char *id = http_param(req, "id");
    if (!app__is_uuid(id)) {
        app__fail(req, "not_found", "no such workflow", NULL);
        return NULL;
    }
    json_t *row = NULL;
    int rc = workflows_db_get(c, id, cl->org_id, version, &row);
    if (rc == FENTA_ENOTFOUND)
        app__fail(req, "not_found", version ? "no such workflow version" : "no such workflow",
                  NULL);
    else if (rc)
        app__db_error(req, rc, c);
    return row;
}

void h_workflows_get(http_req_t *req)
{
    pg_conn_t *c = app__db(req);
    if (!c)
        return;
    json_t *row = load(req, c, NULL);
    if (row)
        app__reply(req, 200, wf_json(app__of(req), row));
    app__db_done(req, &c);
}

void h_workflows_update(http_req_t *req)
{
    caller_t *cl = app__caller(req);
    json_t *b = http_json_body(req, NULL);
    json_t *graph = json_object_get(b, "graph");
    if (graph &&
        (!app__sources_ok(req, graph, "$.graph", "malformed_workflow") || check_shape(req, graph)))
        return;
    const char *id = http_param(req, "id");
    if (!app__is_uuid(id)) {
        app__fail(req, "not_found", "no such workflow", NULL);
        return;
    }
    pg_conn_t *c = app__db(req);
    if (!c)
        return;
    int rc = workflows_db_update(c, id, cl->org_id, json_string_value(json_object_get(b, "name")),
                                 json_string_value(json_object_get(b, "description")), graph,
                                 cl->user_id);
    json_t *row = rc ? NULL : load(req, c, NULL);
    if (rc)
        app__reply_owned(req, c, rc, 200, NULL, "no such workflow");
    else if (row)
        app__reply(req, 200, wf_json(app__of(req), row));
    app__db_done(req, &c);
}

void h_workflows_delete(http_req_t *req)
{
    const char *id = http_param(req, "id");
    if (!app__is_uuid(id)) {
        app__fail(req, "not_found", "no such workflow", NULL);
        return;
    }
    pg_conn_t *c = app__db(req);
    if (!c)
        return;
    int rc = workflows_db_delete(c, id, app__caller(req)->org_id);
    app__reply_owned(req, c, rc, 204, NULL, "no such workflow");
    app__db_done(req, &c);
}

/* app_list_fn: a page of the versions of workflow {id} (arg: the caller). */
static int list_versions(http_req_t *req, pg_conn_t *c, void *arg, const db_page_t *page,
                         db_page_rows_t *out)
{
    caller_t *cl = arg;
    return workflows_db_versions(c, http_param(req, "id"), cl->org_id, page, out);
}

/* Another organisation's workflow, a deleted one, a missing one and a
 * non-uuid id all answer the 404 a GET of the workflow gives, never an
 * empty page that says the id exists. */
void h_workflow_versions_list(http_req_t *req)
{
    caller_t *cl = app__caller(req);
    const char *id = http_param(req, "id");
    pg_conn_t *c = app__db(req);
    if (!c)
        return;
    int rc = app__is_uuid(id) ? workflows_db_exists(c, id, cl->org_id) : FENTA_ENOTFOUND;
    if (rc)
        app__reply_owned(req, c, rc, 200, NULL, "no such workflow");
    app__db_done(req, &c);
    if (rc == 0)
        app__list(req, list_versions, cl);
}

/* The graph of the version asked for, with the run's input values merged
 * over its nodes' params. A new reference, or NULL after answering. */
static json_t *graph_for_run(http_req_t *req, const json_t *w, const json_t *inputs)
{
    json_t *graph = json_deep_copy(json_object_get(w, "graph"));
    if (!graph) {
        app__fail(req, "internal", "out of memory", NULL);
        return NULL;
    }
    json_t *unknown = NULL;
    if (workflow_apply_inputs(graph, inputs, &unknown) != 0) {
        json_decref(graph);
        app__fail(req, "invalid_inputs", "inputs name nodes the workflow does not have", unknown);
        return NULL;
    }
    return graph;
}

static const char *version_param(const json_t *b, char *buf, size_t cap)
{
    json_t *v = json_object_get(b, "version");
    if (!json_is_integer(v))
        return NULL;
    snprintf(buf, cap, "%lld", (long long)json_integer_value(v));
    return buf;
}

void h_workflows_validate(http_req_t *req)
{
    json_t *b = http_json_body(req, NULL);
    char vb[24];
    pg_conn_t *c = app__db(req);
    if (!c)
        return;
    json_t *w = load(req, c, version_param(b, vb, sizeof vb));
    json_t *graph = w ? graph_for_run(req, w, json_object_get(b, "inputs")) : NULL;
    if (graph) {
        json_t *problems = problems_of(app__of(req), graph);
        app__reply(req, 200,
                   json_pack("{sb sO so}", "valid", json_array_size(problems) == 0, "version",
                             json_object_get(w, "version"), "problems",
                             problems ? problems : json_array()));
    }
    json_decref(graph);
    json_decref(w);
    app__db_done(req, &c);
}

void h_workflows_estimate(http_req_t *req)
{
    caller_t *cl = app__caller(req);
    json_t *b = http_json_body(req, NULL);
    char vb[24];
    if (!app__sources_ok(req, json_object_get(b, "inputs"), "$.inputs", "invalid_inputs"))
        return;
    pg_conn_t *c = app__db(req);
    if (!c)
        return;
    json_t *w = load(req, c, version_param(b, vb, sizeof vb));
    json_t *graph = w ? graph_for_run(req, w, json_object_get(b, "inputs")) : NULL;
    json_t *est = NULL;
    if (graph && workflow_estimate(app__of(req)->types, graph, &est) != 0) {
        app__fail(req, "invalid_workflow", "the workflow is not valid; see details",
                  problems_of(app__of(req), graph));
    } else if (graph) {
        /* The stored detail keeps the inputs, which a run by this estimate
         * uses when it names none of its own. */
        json_t *d = json_deep_copy(est);
        json_t *in = json_object_get(b, "inputs");
        json_object_set_new(d, "inputs", in ? json_incref(in) : json_object());
        const char *wid = json_string_value(json_object_get(w, "id"));
        int version = (int)json_integer_value(json_object_get(w, "version"));
        char id[37], expires[40];
        int rc =
            estimates_db_create(c, cl->org_id, wid, version,
                                json_number_value(json_object_get(est, "total")), d, id, expires);
        json_decref(d);
        if (rc) {
            app__db_error(req, rc, c);
        } else {
            json_object_set_new(est, "id", json_string(id));
            json_object_set_new(est, "workflow_id", json_string(wid));
            json_object_set_new(est, "version", json_integer(version));
            json_object_set_new(est, "expires_at", json_string(expires));
            app__reply(req, 201, json_incref(est));
        }
    }
    json_decref(est);
    json_decref(graph);
    json_decref(w);
    app__db_done(req, &c);
}

void h_workflows_run(http_req_t *req)
{
    caller_t *cl = app__caller(req);
    app_t *app = app__of(req);
    json_t *b = http_json_body(req, NULL);
    const char *estimate = json_string_value(json_object_get(b, "estimate_id"));
    json_t *max = json_object_get(b, "max_credits");
    if (!estimate && !max) {
        app__fail(req, "estimate_required",
                  "give estimate_id (from POST .../estimate) or max_credits",
                  json_pack("[{ss ss}]", "path", "$.estimate_id", "message", "required"));
        return;
    }
    if (!app__sources_ok(req, json_object_get(b, "inputs"), "$.inputs", "invalid_inputs"))
        return;
    if (!app->rt) {
        app__fail(req, "unavailable", "this node runs no jobs", NULL);
        return;
    }
    pg_conn_t *c = app__db(req);
    if (!c)
        return;
    char vb[24];
    const char *version = version_param(b, vb, sizeof vb);
    int err = 0;
    double limit = max ? json_number_value(max) : 0;
    if (estimate) {
        /* The estimate fixes the version and what the client agreed to pay. */
        estimates_db_row_t e;
        err = app__is_uuid(estimate)
                  ? estimates_db_get(c, estimate, http_param(req, "id"), cl->org_id, &e)
                  : FENTA_ENOTFOUND;
        if (err && err != FENTA_ENOTFOUND) {
            app__db_error(req, err, c);
            app__db_done(req, &c);
            return;
        }
        if (err || e.expired) {
            bool expired = !err;
            estimates_db_row_free(&e);
            app__fail(req, expired ? "estimate_expired" : "unknown_estimate",
                      expired ? "the estimate has expired; ask for a new one"
                              : "no such estimate for this workflow",
                      NULL);
            app__db_done(req, &c);
            return;
        }
        snprintf(vb, sizeof vb, "%d", e.version);
        version = vb;
        limit = e.credits;
        if (!json_object_get(b, "inputs") && e.inputs)
            json_object_set(b, "inputs", e.inputs);
        estimates_db_row_free(&e);
    }
    job_new_t n = {.org_id = cl->org_id,
                   .workflow_id = http_param(req, "id"),
                   .version = version,
                   .inputs = json_object_get(b, "inputs"),
                   .priority = json_string_value(json_object_get(b, "priority")),
                   .max_credits = limit,
                   .estimate_id = app__is_uuid(estimate) ? estimate : NULL,
                   .created_by = cl->user_id};
    char id[37];
    json_t *problem = NULL;
    err =
        app__is_uuid(n.workflow_id) ? job_insert(c, app->types, &n, id, &problem) : FENTA_ENOTFOUND;
    if (err == FENTA_ENOTFOUND)
        app__fail(req, "not_found", version ? "no such workflow version" : "no such workflow",
                  NULL);
    else if ((err == FENTA_EINVAL || err == FENTA_EREFUSED) && problem)
        /* The problem's code says the status (schemas/errors.json): asked
         * for wrongly is 400, well formed but refused (an invalid workflow,
         * over budget) is 422. */
        app__fail(req, json_string_value(json_object_get(problem, "code")),
                  json_string_value(json_object_get(problem, "message")),
                  json_incref(json_object_get(problem, "details")));
    else if (err)
        app__db_error(req, err, c);
    else
        app__job_started(req, c, id);
    json_decref(problem);
    app__db_done(req, &c);
}
