/* db.c - keyset pages and cell helpers shared by the table owners; see db.h. */
#include "storage/db.h"
#include "runtime/error.h"
#include "runtime/strbuf.h"
#include "runtime/strutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *db_page_sql(const char *tmpl, bool desc)
{
    strbuf_t b = STRBUF_INIT;
    for (const char *p = tmpl; *p;) {
        if (strncmp(p, "{cmp}", 5) == 0)
            strbuf_append(&b, desc ? "<" : ">"), p += 5;
        else if (strncmp(p, "{dir}", 5) == 0)
            strbuf_append(&b, desc ? "DESC" : "ASC"), p += 5;
        else
            strbuf_appendc(&b, *p++);
    }
    return strbuf_take(&b, NULL);
}

int db_page_run(pg_conn_t *c, const char *sql, const char *const *params, int nparams,
                const db_page_t *page, db_row_fn row, void *arg, const char *idcol,
                db_page_rows_t *out)
{
    *out = (db_page_rows_t){0};
    if (nparams < 0 || nparams > DB_PAGE_MAX_PARAMS || page->limit < 1)
        return FENTA_EINVAL;
    /* One row more than asked: whether it comes back says if a next page exists. */
    char lim[16];
    snprintf(lim, sizeof lim, "%d", page->limit + 1);
    const char *p[DB_PAGE_MAX_PARAMS + 3];
    for (int i = 0; i < nparams; i++)
        p[i] = params[i];
    p[nparams] = lim;
    p[nparams + 1] = page->after_at;
    p[nparams + 2] = page->after_id;
    char *q = db_page_sql(sql, page->desc);
    if (!q)
        return FENTA_ENOMEM;
    int err = 0;
    pg_result_t *r = pg_query(c, q, nparams + 3, p, &err);
    free(q);
    if (!r)
        return err;
    int n = pg_nrows(r) < page->limit ? pg_nrows(r) : page->limit;
    int rc = (out->rows = json_array()) ? 0 : FENTA_ENOMEM;
    for (int i = 0; i < n && rc == 0; i++) {
        json_t *o = row(r, i, arg);
        rc = o && json_array_append_new(out->rows, o) == 0 ? 0 : FENTA_ENOMEM;
    }
    if (rc == 0 && pg_nrows(r) > page->limit) {
        out->next_at = strdup(pg_getn(r, n - 1, "raw_created"));
        out->next_id = strdup(pg_getn(r, n - 1, idcol));
        rc = out->next_at && out->next_id ? 0 : FENTA_ENOMEM;
    }
    pg_result_free(&r);
    if (rc)
        db_page_rows_free(out);
    return rc;
}

void db_page_rows_free(db_page_rows_t *rows)
{
    if (!rows)
        return;
    json_decref(rows->rows);
    free(rows->next_at);
    free(rows->next_id);
    *rows = (db_page_rows_t){0};
}

json_t *db_json(const char *text, json_t *dflt)
{
    json_t *v = text ? json_loads(text, JSON_DECODE_ANY, NULL) : NULL;
    if (!v)
        return dflt;
    json_decref(dflt);
    return v;
}

json_t *db_str(const char *text)
{
    return text ? json_string(text) : json_null();
}

json_t *db_int(const char *text)
{
    return text ? json_integer(atoll(text)) : json_null();
}

int db_exec_some(pg_conn_t *c, const char *sql, int nparams, const char *const *params)
{
    int rc = pg_exec(c, sql, nparams, params);
    return rc < 0 ? rc : rc == 0 ? FENTA_ENOTFOUND : 0;
}

int db_exec(pg_conn_t *c, const char *sql, int nparams, const char *const *params)
{
    int rc = pg_exec(c, sql, nparams, params);
    return rc < 0 ? rc : 0;
}

/* The one row of sql into *r, or `none` when it has not exactly one. */
static int query_row(pg_conn_t *c, const char *sql, int nparams, const char *const *params,
                     int none, pg_result_t **r)
{
    int err = 0;
    *r = pg_query(c, sql, nparams, params, &err);
    if (!*r)
        return err ? err : FENTA_ENOMEM;
    if (pg_nrows(*r) == 1)
        return 0;
    pg_result_free(r);
    return none;
}

int db_query_row(pg_conn_t *c, const char *sql, int nparams, const char *const *params,
                 pg_result_t **r)
{
    return query_row(c, sql, nparams, params, FENTA_ENOTFOUND, r);
}

int db_insert_row(pg_conn_t *c, const char *sql, int nparams, const char *const *params,
                  pg_result_t **r)
{
    return query_row(c, sql, nparams, params, FENTA_EIO, r);
}

/* row(r, 0) of the one row of sql into *out (when out is not NULL), or
 * `none` when sql has not exactly one. */
static int one_json(pg_conn_t *c, const char *sql, int nparams, const char *const *params, int none,
                    db_row_fn row, json_t **out)
{
    if (out)
        *out = NULL;
    pg_result_t *r = NULL;
    int rc = query_row(c, sql, nparams, params, none, &r);
    if (rc == 0 && out && !(*out = row(r, 0, NULL)))
        rc = FENTA_ENOMEM;
    pg_result_free(&r);
    return rc;
}

int db_one_row(pg_conn_t *c, const char *sql, int nparams, const char *const *params, db_row_fn row,
               json_t **out)
{
    return one_json(c, sql, nparams, params, FENTA_ENOTFOUND, row, out);
}

int db_insert_one(pg_conn_t *c, const char *sql, int nparams, const char *const *params,
                  db_row_fn row, json_t **out)
{
    return one_json(c, sql, nparams, params, FENTA_EIO, row, out);
}

int db_insert_id(pg_conn_t *c, const char *sql, int nparams, const char *const *params,
                 char id[DB_ID_LEN + 1])
{
    pg_result_t *r = NULL;
    int rc = db_insert_row(c, sql, nparams, params, &r);
    if (rc == 0)
        snprintf(id, DB_ID_LEN + 1, "%s", pg_get(r, 0, 0));
    pg_result_free(&r);
    return rc;
}

int db_column(pg_conn_t *c, const char *sql, json_t **out)
{
    *out = NULL;
    int err = 0;
    pg_result_t *r = pg_query(c, sql, 0, NULL, &err);
    if (!r)
        return err ? err : FENTA_ENOMEM;
    json_t *a = json_array();
    for (int i = 0; a && i < pg_nrows(r); i++)
        if (json_array_append_new(a, json_string(pg_get(r, i, 0))) != 0)
            json_decref(a), a = NULL;
    pg_result_free(&r);
    *out = a;
    return a ? 0 : FENTA_ENOMEM;
}

bool db_is_uuid(const char *s)
{
    return s && strutil_is_uuid(s, strlen(s));
}
