/* h_workflows.c - workflows: node types, CRUD with a new version on every
 * saved graph, validation (every problem at once), credit estimates, and
 * runs (a job row, then its actor: actors/jobs/job.h). */
#include "actors/jobs/job.h"
#include "http/app_internal.h"
#include "runtime/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WF_COLS                                                                                    \
    "w.id, w.org_id, w.name, w.description, w.version, v.graph::text AS graph, " APP_TS(           \
        "w.created_at") " AS created_at, " APP_TS("w.updated_at") " AS updated_at, w.created_at "  \
                                                                  "AS raw_created"

#define WF_FROM                                                                                    \
    " FROM workflows w JOIN workflow_versions v ON v.workflow_id = w.id AND v.version = "          \
    "w.version "

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

static json_t *wf_json(app_t *app, const pg_result_t *r, int row)
{
    json_t *graph = json_loads(pg_getn(r, row, "graph"), 0, NULL);
    json_t *problems = graph ? problems_of(app, graph) : json_array();
    json_t *o =
        json_pack("{ss ss ss ss si so sb so ss ss}", "id", pg_getn(r, row, "id"), "org_id",
                  pg_getn(r, row, "org_id"), "name", pg_getn(r, row, "name"), "description",
                  pg_getn(r, row, "description"), "version", atoi(pg_getn(r, row, "version")),
                  "graph", graph ? graph : json_object(), "valid", json_array_size(problems) == 0,
                  "problems", problems ? problems : json_array(), "created_at",
                  pg_getn(r, row, "created_at"), "updated_at", pg_getn(r, row, "updated_at"));
    return o;
}

static json_t *wf_json_list(app_t *app, const pg_result_t *r, int row)
{
    (void)app;
    /* Lists leave out the problems (GET one or validate for them). */
    json_t *graph = json_loads(pg_getn(r, row, "graph"), 0, NULL);
    return json_pack("{ss ss ss ss si so ss ss}", "id", pg_getn(r, row, "id"), "org_id",
                     pg_getn(r, row, "org_id"), "name", pg_getn(r, row, "name"), "description",
                     pg_getn(r, row, "description"), "version", atoi(pg_getn(r, row, "version")),
                     "graph", graph ? graph : json_object(), "created_at",
                     pg_getn(r, row, "created_at"), "updated_at", pg_getn(r, row, "updated_at"));
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
    char *g = json_dumps(graph, JSON_COMPACT);
    const char *desc = json_string_value(json_object_get(b, "description"));
    const char *p[] = {cl->org_id, json_string_value(json_object_get(b, "name")), desc ? desc : "",
                       cl->user_id, g};
    int err = 0;
    pg_result_t *r = pg_query(c,
                              "WITH w AS (INSERT INTO workflows (org_id, name, description, "
                              "created_by) VALUES ($1, $2, $3, $4) RETURNING *), v AS (INSERT INTO "
                              "workflow_versions (workflow_id, version, graph, created_by) SELECT "
                              "id, 1, $5::jsonb, $4 FROM w RETURNING *) SELECT " WF_COLS
                              " FROM w JOIN v ON v.workflow_id = w.id",
                              5, p, &err);
    free(g);
    if (!r)
        app__db_error(req, err, c);
    else
        app__reply(req, 201, wf_json(app__of(req), r, 0));
    pg_result_free(&r);
    app__db_done(req, &c);
}

void h_workflows_list(http_req_t *req)
{
    caller_t *cl = app__caller(req);
    const char *p[] = {cl->org_id};
    app__list_page(req,
                   "SELECT " WF_COLS WF_FROM "WHERE w.org_id = $1 AND w.deleted_at IS NULL AND "
                   "($3::timestamptz IS NULL OR (w.created_at, w.id) {cmp} ($3::timestamptz, "
                   "$4::uuid)) ORDER BY w.created_at {dir}, w.id {dir} LIMIT $2::int",
                   p, 1, wf_json_list, "id");
}

/* The workflow row (latest version) or NULL after answering. */
static pg_result_t *load(http_req_t *req, pg_conn_t *c, const char *version)
{
    caller_t *cl = app__caller(req);
    const char *id = http_param(req, "id");
    if (!app__is_uuid(id)) {
        app__fail(req, "not_found", "no such workflow", NULL);
        return NULL;
    }
    const char *p[] = {id, cl->org_id, version};
    int err = 0;
    pg_result_t *r = pg_query(
        c,
        "SELECT w.id, w.org_id, w.name, w.description, v.version, "
        "v.graph::text AS graph, " APP_TS("w.created_at") " AS created_at, " APP_TS(
            "w.updated_at") " AS updated_at FROM workflows w JOIN "
                            "workflow_versions v ON v.workflow_id = w.id AND v.version = "
                            "COALESCE($3::int, w.version) WHERE w.id = $1 AND w.org_id = $2 AND "
                            "w.deleted_at IS NULL",
        3, p, &err);
    if (!r) {
        app__db_error(req, err, c);
    } else if (pg_nrows(r) != 1) {
        app__fail(req, "not_found", version ? "no such workflow version" : "no such workflow",
                  NULL);
        pg_result_free(&r);
    }
    return r;
}

void h_workflows_get(http_req_t *req)
{
    pg_conn_t *c = app__db(req);
    if (!c)
        return;
    pg_result_t *r = load(req, c, NULL);
    if (r)
        app__reply(req, 200, wf_json(app__of(req), r, 0));
    pg_result_free(&r);
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
    char *g = graph ? json_dumps(graph, JSON_COMPACT) : NULL;
    const char *p[] = {id,
                       cl->org_id,
                       json_string_value(json_object_get(b, "name")),
                       json_string_value(json_object_get(b, "description")),
                       g,
                       cl->user_id};
    int err = 0;
    /* One statement: the version number comes from the row it updates, so
     * two saves at once get two versions, never the same one. */
    pg_result_t *r = pg_query(
        c,
        "WITH w AS (UPDATE workflows SET name = COALESCE($3, name), description = "
        "COALESCE($4, description), version = version + CASE WHEN $5::jsonb IS NULL THEN 0 ELSE "
        "1 END, updated_at = now() WHERE id = $1 AND org_id = $2 AND deleted_at IS NULL "
        "RETURNING *), v AS (INSERT INTO workflow_versions (workflow_id, version, graph, "
        "created_by) SELECT id, version, $5::jsonb, $6 FROM w WHERE $5::jsonb IS NOT NULL) "
        "SELECT w.id FROM w",
        6, p, &err);
    free(g);
    if (!r) {
        app__db_error(req, err, c);
    } else if (pg_nrows(r) != 1) {
        app__fail(req, "not_found", "no such workflow", NULL);
    } else {
        pg_result_t *w = load(req, c, NULL);
        if (w)
            app__reply(req, 200, wf_json(app__of(req), w, 0));
        pg_result_free(&w);
    }
    pg_result_free(&r);
    app__db_done(req, &c);
}

void h_workflows_delete(http_req_t *req)
{
    app__soft_delete(req, "workflows", http_param(req, "id"), "no such workflow");
}

static json_t *version_json(app_t *app, const pg_result_t *r, int row)
{
    (void)app;
    json_t *graph = json_loads(pg_getn(r, row, "graph"), 0, NULL);
    const char *by = pg_getn(r, row, "created_by");
    return json_pack("{si so so ss}", "version", atoi(pg_getn(r, row, "version")), "graph",
                     graph ? graph : json_object(), "created_by",
                     by ? json_string(by) : json_null(), "created_at",
                     pg_getn(r, row, "created_at"));
}

void h_workflow_versions_list(http_req_t *req)
{
    const char *p[] = {http_param(req, "id"), app__caller(req)->org_id};
    /* Keyset on (created_at, version as text) would do, but versions are
     * unique per workflow: the version number is the id column. */
    app__list_page_under(
        req, "workflows", "no such workflow",
        "SELECT v.version, v.version::text AS vid, v.graph::text AS graph, v.created_by, " APP_TS(
            "v.created_at") " AS created_at, v.created_at AS raw_created FROM "
                            "workflow_versions v JOIN workflows w ON w.id = "
                            "v.workflow_id WHERE v.workflow_id = $1 AND w.org_id = $2 "
                            "AND w.deleted_at IS NULL AND ($4::timestamptz IS NULL OR "
                            "(v.created_at, v.version) {cmp} ($4::timestamptz, "
                            "$5::text::int)) ORDER BY v.created_at {dir}, v.version "
                            "{dir} LIMIT $3::int",
        p, 2, version_json, "vid");
}

/* The graph of the version asked for, with the run's input values merged
 * over its nodes' params. A new reference, or NULL after answering. */
static json_t *graph_for_run(http_req_t *req, const pg_result_t *w, const json_t *inputs)
{
    json_t *graph = json_loads(pg_getn(w, 0, "graph"), 0, NULL);
    if (!graph) {
        app__fail(req, "internal", "a stored workflow does not parse", NULL);
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
    pg_result_t *w = load(req, c, version_param(b, vb, sizeof vb));
    json_t *graph = w ? graph_for_run(req, w, json_object_get(b, "inputs")) : NULL;
    if (graph) {
        json_t *problems = problems_of(app__of(req), graph);
        app__reply(req, 200,
                   json_pack("{sb si so}", "valid", json_array_size(problems) == 0, "version",
                             atoi(pg_getn(w, 0, "version")), "problems",
                             problems ? problems : json_array()));
    }
    json_decref(graph);
    pg_result_free(&w);
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
    pg_result_t *w = load(req, c, version_param(b, vb, sizeof vb));
    json_t *graph = w ? graph_for_run(req, w, json_object_get(b, "inputs")) : NULL;
    json_t *est = NULL;
    if (graph && workflow_estimate(app__of(req)->types, graph, &est) != 0) {
        app__fail(req, "invalid_workflow", "the workflow is not valid; see details",
                  problems_of(app__of(req), graph));
    } else if (graph) {
        /* The stored detail keeps the inputs, which a run by this estimate
         * uses when it names none of its own. */
        json_t *d = json_deep_copy(est);
        json_object_set(d, "inputs",
                        json_object_get(b, "inputs") ? json_object_get(b, "inputs")
                                                     : json_object());
        char *detail = json_dumps(d, JSON_COMPACT);
        json_decref(d);
        char credits[32];
        snprintf(credits, sizeof credits, "%.2f", json_number_value(json_object_get(est, "total")));
        const char *p[] = {cl->org_id, pg_getn(w, 0, "id"), pg_getn(w, 0, "version"), credits,
                           detail};
        int err = 0;
        pg_result_t *r = pg_query(c,
                                  "INSERT INTO estimates (org_id, workflow_id, version, credits, "
                                  "detail, expires_at) VALUES ($1, $2, $3::int, $4::numeric, "
                                  "$5::jsonb, now() + interval '1 hour') RETURNING id, " APP_TS(
                                      "expires_at") " AS expires_at",
                                  5, p, &err);
        free(detail);
        if (!r) {
            app__db_error(req, err, c);
        } else {
            json_object_set_new(est, "id", json_string(pg_get(r, 0, 0)));
            json_object_set_new(est, "workflow_id", json_string(pg_getn(w, 0, "id")));
            json_object_set_new(est, "version", json_integer(atoi(pg_getn(w, 0, "version"))));
            json_object_set_new(est, "expires_at", json_string(pg_get(r, 0, 1)));
            app__reply(req, 201, json_incref(est));
        }
        pg_result_free(&r);
    }
    json_decref(est);
    json_decref(graph);
    pg_result_free(&w);
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
        const char *pe[] = {estimate, http_param(req, "id"), cl->org_id};
        pg_result_t *e =
            app__is_uuid(estimate)
                ? pg_query(c,
                           "SELECT version, credits, expires_at < now(), detail->'inputs' FROM "
                           "estimates WHERE id = $1 AND workflow_id = $2 AND org_id = $3",
                           3, pe, &err)
                : NULL;
        if (!e && err) {
            app__db_error(req, err, c);
            app__db_done(req, &c);
            return;
        }
        if (!e || pg_nrows(e) != 1 || strcmp(pg_get(e, 0, 2), "t") == 0) {
            bool expired = e && pg_nrows(e) == 1;
            pg_result_free(&e);
            app__fail(req, expired ? "estimate_expired" : "unknown_estimate",
                      expired ? "the estimate has expired; ask for a new one"
                              : "no such estimate for this workflow",
                      NULL);
            app__db_done(req, &c);
            return;
        }
        snprintf(vb, sizeof vb, "%s", pg_get(e, 0, 0));
        version = vb;
        limit = atof(pg_get(e, 0, 1));
        if (!json_object_get(b, "inputs") && pg_get(e, 0, 3))
            json_object_set_new(b, "inputs", json_loads(pg_get(e, 0, 3), 0, NULL));
        pg_result_free(&e);
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
    else if (err == FENTA_EINVAL && problem)
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
