/* db.h - what the owner modules of tables (storage/<table>_db.c) share:
 * keyset pages of a list, how a timestamp leaves PostgreSQL, statements
 * whose rows are not wanted, one row or "not found", the id check that
 * turns a malformed id into "not found", and cells as JSON values.
 *
 * Each table has one owner module holding every statement on it and the
 * mapping of its rows (to jansson objects or small structs). Owners take
 * the caller's pg_conn_t, so a caller still composes several owners'
 * calls in one transaction (pg_tx), and answer with FENTA_E* codes only:
 * which HTTP status a code becomes is http/'s business. */
#ifndef FENTA_DB_H
#define FENTA_DB_H
#include "storage/pg.h"

#include <jansson.h>
#include <stdbool.h>

/* A uuid in its text form, without the terminating NUL. */
#define DB_ID_LEN 36

/* Timestamps leave PostgreSQL as RFC 3339 UTC with microseconds, the form
 * every API object shows. */
#define DB_TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"

/* The most parameters a list query takes before the page's own three. */
#define DB_PAGE_MAX_PARAMS 8

/* One page of a list, keyset over (created_at, id): rows inserted
 * meanwhile never shift a page, so no page repeats or skips a row. */
typedef struct {
    int limit;            /* rows wanted (>= 1) */
    bool desc;            /* newest first */
    const char *after_at; /* the page starts after this raw created_at... (NULL: first page) */
    const char *after_id; /* ...and this id: the last row of the page before (borrowed) */
} db_page_t;

/* A page read: its rows and, when more follow, where the next page starts. */
typedef struct {
    json_t *rows;  /* the rows as objects, at most limit (owned) */
    char *next_at; /* the last row's raw created_at when more rows follow, else NULL (owned) */
    char *next_id; /* and its id column (owned) */
} db_page_rows_t;

/* Maps row `row` of r to a new object; NULL when memory ran out. */
typedef json_t *(*db_row_fn)(const pg_result_t *r, int row, void *arg);

/* The list query tmpl for one sort order: {cmp} becomes the keyset
 * comparison (> or <) and {dir} the order (ASC or DESC). tmpl is our own
 * constant SQL, never input. A new string the caller frees; NULL without
 * memory. */
char *db_page_sql(const char *tmpl, bool desc);

/* Runs a list query for one page. sql is a constant template: {cmp} stands
 * for the keyset comparison and {dir} for the order the page's sort asks;
 * it takes the nparams (<= DB_PAGE_MAX_PARAMS) params, then $n+1 the page
 * size plus one, $n+2 and $n+3 the (created_at, id) the page starts after
 * (NULL for the first), and returns a raw_created column and the id column
 * idcol. 0 with *out filled (free with db_page_rows_free), or an error code
 * with *out empty. */
int db_page_run(pg_conn_t *c, const char *sql, const char *const *params, int nparams,
                const db_page_t *page, db_row_fn row, void *arg, const char *idcol,
                db_page_rows_t *out);
/* Frees what a page holds and empties it; accepts NULL. */
void db_page_rows_free(db_page_rows_t *rows);

/* A json/jsonb column's text parsed (a new reference), or dflt when the
 * cell is NULL or does not parse; dflt is taken either way. */
json_t *db_json(const char *text, json_t *dflt);
/* A text cell as a JSON string, null for SQL NULL. */
json_t *db_str(const char *text);

/* An integer cell as a JSON integer, null for SQL NULL. */
json_t *db_int(const char *text);

/* pg_exec for a statement that must touch a row (UPDATE or DELETE of one
 * row by its key): 0 when it touched some, FENTA_ENOTFOUND when none, or
 * the statement's error. */
int db_exec_some(pg_conn_t *c, const char *sql, int nparams, const char *const *params);
/* pg_exec without the row count: 0 or the statement's error. */
int db_exec(pg_conn_t *c, const char *sql, int nparams, const char *const *params);

/* Runs sql, which names one row: 0 with *r holding exactly that row (the
 * caller reads it and frees it with pg_result_free), FENTA_ENOTFOUND with
 * *r NULL when sql returned no row or more than one, or the statement's
 * error (a pg.h code) with *r NULL. */
int db_query_row(pg_conn_t *c, const char *sql, int nparams, const char *const *params,
                 pg_result_t **r);
/* db_query_row for an INSERT (or UPDATE) ... RETURNING that must return its
 * row: no row is FENTA_EIO, not "not found", since nothing was looked up;
 * a conflict the statement skips is the caller's to tell apart. */
int db_insert_row(pg_conn_t *c, const char *sql, int nparams, const char *const *params,
                  pg_result_t **r);

/* Runs sql, which returns one row or none; *out (may be NULL when only the
 * row's existence matters) gets row(r, 0, NULL) of it. 0, FENTA_ENOTFOUND
 * when no row, or a pg.h code. */
int db_one_row(pg_conn_t *c, const char *sql, int nparams, const char *const *params, db_row_fn row,
               json_t **out);

/* db_one_row for an INSERT ... RETURNING that must return its row: no row
 * is FENTA_EIO (as db_insert_row). */
int db_insert_one(pg_conn_t *c, const char *sql, int nparams, const char *const *params,
                  db_row_fn row, json_t **out);

/* Runs an INSERT ... RETURNING id and copies the new row's id into id:
 * 0, FENTA_EIO when no row came back (a conflict the statement skips is
 * the caller's to tell apart), or a pg.h code (FENTA_EEXIST for a unique
 * violation). */
int db_insert_id(pg_conn_t *c, const char *sql, int nparams, const char *const *params,
                 char id[DB_ID_LEN + 1]);

/* *out: an array of the first column of every row of sql (no parameters),
 * as strings. 0 or a pg.h code. */
int db_column(pg_conn_t *c, const char *sql, json_t **out);

/* Whether s is a uuid in its text form: an id that is not one names no row,
 * and is answered FENTA_ENOTFOUND before PostgreSQL refuses the cast. */
bool db_is_uuid(const char *s);

#endif
