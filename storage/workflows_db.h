/* workflows_db.h - the owner of the workflows table and of its
 * workflow_versions: every statement on them and the mapping of their rows.
 * One module for the two because a version is meaningless without its
 * workflow, and each save writes both in one statement (the version number
 * comes from the workflow row it updates, so two saves at once never get
 * the same number).
 *
 * A workflow as an object: {"id", "org_id", "name", "description",
 * "version", "graph" (of that version), "created_at", "updated_at"}. A
 * version as an object: {"version", "graph", "created_by" (or null),
 * "created_at"}. Rows of another organisation and deleted workflows are
 * not found; ids are uuids (a malformed one is FENTA_EINVAL: callers check
 * the shape first). FENTA_E* codes only, never an HTTP status. */
#ifndef FENTA_WORKFLOWS_DB_H
#define FENTA_WORKFLOWS_DB_H
#include "storage/db.h"
#include "storage/pg.h"

#include <jansson.h>

/* A new workflow of org_id with graph as its version 1 (description NULL =
 * ""), *row the new workflow. */
int workflows_db_create(pg_conn_t *c, const char *org_id, const char *name, const char *description,
                        const char *created_by, const json_t *graph, json_t **row);
/* Workflow id of org_id at version (decimal text; NULL = its latest) into
 * *row; FENTA_ENOTFOUND when the workflow or that version does not exist. */
int workflows_db_get(pg_conn_t *c, const char *id, const char *org_id, const char *version,
                     json_t **row);
/* 0 when org_id has live workflow id, else FENTA_ENOTFOUND. */
int workflows_db_exists(pg_conn_t *c, const char *id, const char *org_id);
/* Renames and/or describes it (NULL = unchanged) and, when graph is given,
 * saves it as the next version (by updated_by). FENTA_ENOTFOUND. */
int workflows_db_update(pg_conn_t *c, const char *id, const char *org_id, const char *name,
                        const char *description, const json_t *graph, const char *updated_by);
/* Soft-deletes it (its versions stay for the jobs that ran them); FENTA_ENOTFOUND. */
int workflows_db_delete(pg_conn_t *c, const char *id, const char *org_id);
/* One page of org_id's live workflows (at their latest version). */
int workflows_db_list(pg_conn_t *c, const char *org_id, const db_page_t *page, db_page_rows_t *out);
/* One page of the versions of workflow id (org_id's, live): an empty page
 * when it has none, so look the workflow up first to tell a missing one. */
int workflows_db_versions(pg_conn_t *c, const char *id, const char *org_id, const db_page_t *page,
                          db_page_rows_t *out);

#endif
