/* templates_db.h - the owner of the templates table: an organisation's own
 * montage templates (the built-in ones are files in schemas/templates and
 * have no row). Every statement on the table and the mapping of its rows.
 *
 * A template row as an object: {"id", "name", "description", "template"
 * (the document as stored), "created_at", "updated_at"} (RFC 3339). Rows of
 * another organisation and deleted rows are not found. Ids are uuids: a
 * malformed one is FENTA_EINVAL (callers check the shape first). Errors are
 * FENTA_E* codes (storage/pg.h's table); never an HTTP status. */
#ifndef FENTA_TEMPLATES_DB_H
#define FENTA_TEMPLATES_DB_H
#include "storage/db.h"
#include "storage/pg.h"

#include <jansson.h>

/* Inserts org_id's template name (description NULL = ""), *row the new
 * row. FENTA_EEXIST when the organisation has a live template of that name. */
int templates_db_create(pg_conn_t *c, const char *org_id, const char *name, const char *description,
                        const json_t *doc, const char *created_by, json_t **row);
/* Template id of org_id into *row; FENTA_ENOTFOUND when there is none. */
int templates_db_get(pg_conn_t *c, const char *id, const char *org_id, json_t **row);
/* The document of org_id's template called name (a new reference), as a
 * render uses it; FENTA_ENOTFOUND when there is none. */
int templates_db_doc(pg_conn_t *c, const char *org_id, const char *name, json_t **doc);
/* Changes the description and/or document (NULL = unchanged), *row the
 * row after; FENTA_ENOTFOUND. */
int templates_db_update(pg_conn_t *c, const char *id, const char *org_id, const char *description,
                        const json_t *doc, json_t **row);
/* Soft-deletes it; FENTA_ENOTFOUND when there is no such live row. */
int templates_db_delete(pg_conn_t *c, const char *id, const char *org_id);
/* One page of org_id's live templates, oldest first unless page->desc. */
int templates_db_list(pg_conn_t *c, const char *org_id, const db_page_t *page, db_page_rows_t *out);

#endif
