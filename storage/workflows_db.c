/* workflows_db.c - the workflows and workflow_versions tables; see workflows_db.h. */
#include "storage/workflows_db.h"
#include "runtime/error.h"

#include <stdlib.h>

/* A workflow with one version: w and v are the two tables (or the CTEs
 * that wrote them). */
#define WF_COLS                                                                                    \
    "w.id, w.org_id, w.name, w.description, v.version, v.graph::text AS graph, " DB_TS(            \
        "w.created_at") " AS created_at, " DB_TS("w.updated_at") " AS updated_at, w.created_at "   \
                                                                 "AS raw_created"

static json_t *wf_row(const pg_result_t *r, int row, void *arg)
{
    (void)arg;
    return json_pack("{ss ss ss ss si so ss ss}", "id", pg_getn(r, row, "id"), "org_id",
                     pg_getn(r, row, "org_id"), "name", pg_getn(r, row, "name"), "description",
                     pg_getn(r, row, "description"), "version", atoi(pg_getn(r, row, "version")),
                     "graph", db_json(pg_getn(r, row, "graph"), json_object()), "created_at",
                     pg_getn(r, row, "created_at"), "updated_at", pg_getn(r, row, "updated_at"));
}

static json_t *version_row(const pg_result_t *r, int row, void *arg)
{
    (void)arg;
    return json_pack("{si so so ss}", "version", atoi(pg_getn(r, row, "version")), "graph",
                     db_json(pg_getn(r, row, "graph"), json_object()), "created_by",
                     db_str(pg_getn(r, row, "created_by")), "created_at",
                     pg_getn(r, row, "created_at"));
}

int workflows_db_create(pg_conn_t *c, const char *org_id, const char *name, const char *description,
                        const char *created_by, const json_t *graph, json_t **row)
{
    *row = NULL;
    char *g = json_dumps(graph, JSON_COMPACT);
    if (!g)
        return FENTA_ENOMEM;
    const char *p[] = {org_id, name, description ? description : "", created_by, g};
    /* No row back is "not found", as it always answered. */
    int err = db_one_row(c,
                         "WITH w AS (INSERT INTO workflows (org_id, name, description, "
                         "created_by) VALUES ($1, $2, $3, $4) RETURNING *), v AS (INSERT INTO "
                         "workflow_versions (workflow_id, version, graph, created_by) SELECT "
                         "id, 1, $5::jsonb, $4 FROM w RETURNING *) SELECT " WF_COLS
                         " FROM w JOIN v ON v.workflow_id = w.id",
                         5, p, wf_row, row);
    free(g);
    return err;
}

int workflows_db_get(pg_conn_t *c, const char *id, const char *org_id, const char *version,
                     json_t **row)
{
    const char *p[] = {id, org_id, version};
    return db_one_row(c,
                      "SELECT " WF_COLS " FROM workflows w JOIN workflow_versions v ON "
                      "v.workflow_id = w.id AND v.version = COALESCE($3::int, w.version) "
                      "WHERE w.id = $1 AND w.org_id = $2 AND w.deleted_at IS NULL",
                      3, p, wf_row, row);
}

int workflows_db_exists(pg_conn_t *c, const char *id, const char *org_id)
{
    const char *p[] = {id, org_id};
    return db_one_row(
        c, "SELECT 1 FROM workflows WHERE id = $1 AND org_id = $2 AND deleted_at IS NULL", 2, p,
        NULL, NULL);
}

int workflows_db_update(pg_conn_t *c, const char *id, const char *org_id, const char *name,
                        const char *description, const json_t *graph, const char *updated_by)
{
    char *g = graph ? json_dumps(graph, JSON_COMPACT) : NULL;
    if (graph && !g)
        return FENTA_ENOMEM;
    const char *p[] = {id, org_id, name, description, g, updated_by};
    /* One statement: the version number comes from the row it updates, so
     * two saves at once get two versions, never the same one. */
    int rc = db_exec_some(
        c,
        "WITH w AS (UPDATE workflows SET name = COALESCE($3, name), description = "
        "COALESCE($4, description), version = version + CASE WHEN $5::jsonb IS NULL THEN 0 ELSE "
        "1 END, updated_at = now() WHERE id = $1 AND org_id = $2 AND deleted_at IS NULL "
        "RETURNING *), v AS (INSERT INTO workflow_versions (workflow_id, version, graph, "
        "created_by) SELECT id, version, $5::jsonb, $6 FROM w WHERE $5::jsonb IS NOT NULL) "
        "SELECT w.id FROM w",
        6, p);
    free(g);
    return rc;
}

int workflows_db_delete(pg_conn_t *c, const char *id, const char *org_id)
{
    const char *p[] = {id, org_id};
    return db_exec_some(c,
                        "UPDATE workflows SET deleted_at = now() WHERE id = $1 AND org_id = $2 AND "
                        "deleted_at IS NULL",
                        2, p);
}

int workflows_db_list(pg_conn_t *c, const char *org_id, const db_page_t *page, db_page_rows_t *out)
{
    const char *p[] = {org_id};
    return db_page_run(c,
                       "SELECT " WF_COLS " FROM workflows w JOIN workflow_versions v ON "
                       "v.workflow_id = w.id AND v.version = w.version WHERE w.org_id = $1 AND "
                       "w.deleted_at IS NULL AND ($3::timestamptz IS NULL OR (w.created_at, w.id) "
                       "{cmp} ($3::timestamptz, $4::uuid)) ORDER BY w.created_at {dir}, w.id "
                       "{dir} LIMIT $2::int",
                       p, 1, page, wf_row, NULL, "id", out);
}

int workflows_db_versions(pg_conn_t *c, const char *id, const char *org_id, const db_page_t *page,
                          db_page_rows_t *out)
{
    const char *p[] = {id, org_id};
    /* Keyset on (created_at, version as text) would do, but versions are
     * unique per workflow: the version number is the id column. */
    return db_page_run(
        c,
        "SELECT v.version, v.version::text AS vid, v.graph::text AS graph, v.created_by, " DB_TS(
            "v.created_at") " AS created_at, v.created_at AS raw_created FROM workflow_versions v "
                            "JOIN workflows w ON w.id = v.workflow_id WHERE v.workflow_id = $1 AND "
                            "w.org_id = $2 AND w.deleted_at IS NULL AND ($4::timestamptz IS NULL "
                            "OR (v.created_at, v.version) {cmp} ($4::timestamptz, $5::text::int)) "
                            "ORDER BY v.created_at {dir}, v.version {dir} LIMIT $3::int",
        p, 2, page, version_row, NULL, "vid", out);
}
