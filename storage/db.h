/* db.h - what the table owner modules (storage/<table>_db.c) share: one
 * page of a keyset list, one row as an object or "not found", the id check
 * that turns a malformed id into "not found", and cells as JSON values.
 *
 * Owner modules return 0 or a negative FENTA_E* code (runtime/error.h) and
 * never pick an HTTP status: FENTA_ENOTFOUND means no such live row in the
 * caller's organisation (another organisation's row reads as a missing one),
 * the rest are pg.h's codes. */
#ifndef FENTA_DB_H
#define FENTA_DB_H
#include "storage/pg.h"

#include <jansson.h>
#include <stdbool.h>

/* Which page of a list to read: keyset pages over (created_at, id), so rows
 * inserted meanwhile never shift a page and no page repeats or skips a row. */
typedef struct {
    int limit;            /* rows in a page, >= 1 */
    bool desc;            /* newest first (?sort=-created_at) */
    const char *after_at; /* the raw created_at of the row the page starts after (borrowed); */
    const char *after_id; /* and its id; both NULL for the first page */
} db_page_t;

/* One page read by db_list_page; the caller clears it with db_list_clear. */
typedef struct {
    json_t *rows;  /* up to limit objects (owned) */
    char *next_at; /* the last row's key when more rows follow (owned), */
    char *next_id; /* NULL on the last page */
} db_list_t;

/* A row of a result as an object (a new reference). */
typedef json_t *(*db_row_fn)(const pg_result_t *r, int row);

/* The list query of tmpl for one order: {cmp} becomes the keyset comparison
 * and {dir} the order (the caller frees it; NULL when out of memory). */
char *db_page_sql(const char *tmpl, bool desc);
/* Reads one page into *out. tmpl is a constant query that writes {cmp} for
 * the keyset comparison and {dir} for the order; it takes the nparams
 * (<= 5) params, then $n+1 the page size plus one, $n+2 and $n+3 the key the
 * page starts after, and returns rows with a raw_created column and the id
 * column idcol. 0 or a pg.h code (*out is then empty). */
int db_list_page(pg_conn_t *c, const char *tmpl, const char *const *params, int nparams,
                 const db_page_t *page, db_row_fn row_json, const char *idcol, db_list_t *out);
/* Frees what a page holds and zeroes it; accepts an empty one. */
void db_list_clear(db_list_t *list);

/* Runs sql, which returns one row or none; *out (may be NULL when only the
 * row's existence matters) gets row_json of it. 0, FENTA_ENOTFOUND when no
 * row, or a pg.h code. */
int db_one_row(pg_conn_t *c, const char *sql, int nparams, const char *const *params,
               db_row_fn row_json, json_t **out);

/* Runs a statement that changes one row (an UPDATE of a live row of an
 * organisation): 0, FENTA_ENOTFOUND when it changed none, or a pg.h code. */
int db_exec_one(pg_conn_t *c, const char *sql, int nparams, const char *const *params);

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

/* Timestamps leave PostgreSQL as RFC 3339 UTC with microseconds. */
#define DB_TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"

#endif
