/* db.h - what the table owner modules of storage/ share (db_ prefix): the
 * size of an id, the one timestamp format rows leave PostgreSQL in,
 * statements whose rows are not wanted, one row or "not found", one keyset
 * page of a list, the id check that turns a malformed id into "not found",
 * and cells as JSON values.
 *
 * An owner module (users_db, orgs_db, ...) holds every statement on its
 * table and maps rows to jansson objects or small structs; callers pass it
 * a pg_conn_t so that they can put several owners' statements in one
 * transaction (pg_tx). Owners answer with FENTA_E* codes only: what a code
 * means to a client (404, 409) is decided in http/. */
#ifndef FENTA_DB_H
#define FENTA_DB_H
#include "storage/pg.h"

#include <jansson.h>
#include <stdbool.h>

/* A uuid in its text form, without the terminating NUL. */
#define DB_ID_LEN 36

/* Timestamps leave PostgreSQL as RFC 3339 UTC with microseconds. */
#define DB_TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"

/* pg_exec for a statement that must touch a row (UPDATE or DELETE of one
 * row by its key): 0 when it touched some, FENTA_ENOTFOUND when none, or
 * the statement's error. */
int db_exec_some(pg_conn_t *c, const char *sql, int nparams, const char *const *params);
/* pg_exec without the row count: 0 or the statement's error. */
int db_exec(pg_conn_t *c, const char *sql, int nparams, const char *const *params);

/* Where a page of a list starts: keyset pagination over (created_at, id),
 * so rows inserted meanwhile never shift a page (no page repeats or skips a
 * row). Strings are borrowed for the call. */
typedef struct {
    int limit;            /* rows in the page (> 0) */
    const char *after_at; /* the previous page's next_at; NULL: the first page */
    const char *after_id; /* and its next_id */
    bool desc;            /* newest first */
} db_page_t;

/* A row of a result as an API object (a new reference). */
typedef json_t *(*db_row_fn)(const pg_result_t *r, int row);

/* One page read. */
typedef struct {
    json_t *items; /* the rows as API objects (owned; an array) */
    char *next_at; /* when more rows follow: the last item's created_at (raw, owned) */
    char *next_id; /* and its id (owned); both NULL on the last page */
} db_rows_t;

/* The list query tmpl for one sort order: {cmp} becomes the keyset
 * comparison (> or <) and {dir} the order (ASC or DESC). tmpl is our own
 * constant SQL, never input. A new string the caller frees, NULL without
 * memory. */
char *db_page_sql(const char *tmpl, bool desc);

/* Reads one page: runs db_page_sql(tmpl) with params[0..nparams-1] (at most
 * 5), then $n+1 the page size plus one, $n+2 and $n+3 the (created_at, id)
 * the page starts after (NULL for the first). The query returns a
 * raw_created column (created_at uncast) and the id column idcol; row()
 * makes each row's API object. 0 with *out filled (release it with
 * db_rows_clear), or a pg.h code with *out empty. */
int db_page_read(pg_conn_t *c, const char *tmpl, const char *const *params, int nparams,
                 const db_page_t *page, db_row_fn row, const char *idcol, db_rows_t *out);
/* Frees what a page holds and empties it; accepts an empty one. */
void db_rows_clear(db_rows_t *rows);

/* Runs sql, which returns one row or none; *out (may be NULL when only the
 * row's existence matters) gets row_json of it. 0, FENTA_ENOTFOUND when no
 * row, or a pg.h code. */
int db_one_row(pg_conn_t *c, const char *sql, int nparams, const char *const *params,
               db_row_fn row_json, json_t **out);

/* *out: an array of the first column of every row of sql (no parameters),
 * as strings. 0 or a pg.h code. */
int db_column(pg_conn_t *c, const char *sql, json_t **out);

/* Whether s is a uuid in its text form: an id that is not one names no row,
 * and is answered FENTA_ENOTFOUND before PostgreSQL refuses the cast. */
bool db_is_uuid(const char *s);

/* Cells as JSON (new references): a JSON text cell parsed (null when NULL
 * or malformed), a text cell, an integer cell; each null for SQL NULL. */
json_t *db_json_text(const char *cell);
json_t *db_str_or_null(const char *cell);
json_t *db_int_or_null(const char *cell);

#endif
