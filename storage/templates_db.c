/* templates_db.c - the templates table; see templates_db.h. */
#include "storage/templates_db.h"
#include "runtime/error.h"

#include <stdlib.h>

#define TPL_COLS                                                                                   \
    "id, name, description, doc::text AS doc, " DB_TS("created_at") " AS created_at, " DB_TS(      \
        "updated_at") " AS updated_at, created_at AS raw_created"

static json_t *tpl_row(const pg_result_t *r, int row, void *arg)
{
    (void)arg;
    return json_pack("{ss ss ss so ss ss}", "id", pg_getn(r, row, "id"), "name",
                     pg_getn(r, row, "name"), "description", pg_getn(r, row, "description"),
                     "template", db_json(pg_getn(r, row, "doc"), json_object()), "created_at",
                     pg_getn(r, row, "created_at"), "updated_at", pg_getn(r, row, "updated_at"));
}

int templates_db_create(pg_conn_t *c, const char *org_id, const char *name, const char *description,
                        const json_t *doc, const char *created_by, json_t **row)
{
    *row = NULL;
    char *d = json_dumps(doc, JSON_COMPACT);
    if (!d)
        return FENTA_ENOMEM;
    const char *p[] = {org_id, name, description ? description : "", d, created_by};
    /* No row back is "not found", as it always answered. */
    int err = db_one_row(c,
                         "INSERT INTO templates (org_id, name, description, doc, created_by) "
                         "VALUES ($1, $2, $3, $4::jsonb, $5) RETURNING " TPL_COLS,
                         5, p, tpl_row, row);
    free(d);
    return err;
}

int templates_db_get(pg_conn_t *c, const char *id, const char *org_id, json_t **row)
{
    const char *p[] = {id, org_id};
    return db_one_row(c,
                      "SELECT " TPL_COLS " FROM templates WHERE id = $1 AND org_id = $2 "
                      "AND deleted_at IS NULL",
                      2, p, tpl_row, row);
}

int templates_db_doc(pg_conn_t *c, const char *org_id, const char *name, json_t **doc)
{
    *doc = NULL;
    const char *p[] = {org_id, name};
    pg_result_t *r = NULL;
    int rc = db_query_row(c,
                          "SELECT doc::text FROM templates WHERE org_id = $1 AND name = $2 "
                          "AND deleted_at IS NULL",
                          2, p, &r);
    if (rc == 0 && !(*doc = json_loads(pg_get(r, 0, 0), 0, NULL)))
        rc = FENTA_EDECODE;
    pg_result_free(&r);
    return rc;
}

int templates_db_update(pg_conn_t *c, const char *id, const char *org_id, const char *description,
                        const json_t *doc, json_t **row)
{
    *row = NULL;
    char *d = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    if (doc && !d)
        return FENTA_ENOMEM;
    const char *p[] = {id, org_id, description, d};
    int err = db_one_row(c,
                         "UPDATE templates SET description = COALESCE($3, description), doc "
                         "= COALESCE($4::jsonb, doc), updated_at = now() WHERE id = $1 AND "
                         "org_id = $2 AND deleted_at IS NULL RETURNING " TPL_COLS,
                         4, p, tpl_row, row);
    free(d);
    return err;
}

int templates_db_delete(pg_conn_t *c, const char *id, const char *org_id)
{
    const char *p[] = {id, org_id};
    return db_exec_some(c,
                        "UPDATE templates SET deleted_at = now() WHERE id = $1 AND org_id = $2 AND "
                        "deleted_at IS NULL",
                        2, p);
}

int templates_db_list(pg_conn_t *c, const char *org_id, const db_page_t *page, db_page_rows_t *out)
{
    const char *p[] = {org_id};
    return db_page_run(c,
                       "SELECT " TPL_COLS " FROM templates WHERE org_id = $1 AND deleted_at IS "
                       "NULL AND ($3::timestamptz IS NULL OR (created_at, id) {cmp} "
                       "($3::timestamptz, $4::uuid)) ORDER BY created_at {dir}, id {dir} LIMIT "
                       "$2::int",
                       p, 1, page, tpl_row, NULL, "id", out);
}
