/* db.c - what the table owner modules share (see db.h). */
#include "storage/db.h"
#include "runtime/error.h"

#include <ctype.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

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

char *db_page_sql(const char *tmpl, bool desc)
{
    size_t cap = strlen(tmpl) + 64;
    char *out = malloc(cap);
    if (!out)
        return NULL;
    size_t o = 0;
    for (const char *p = tmpl; *p;) {
        const char *rep = NULL;
        if (strncmp(p, "{cmp}", 5) == 0)
            rep = desc ? "<" : ">";
        else if (strncmp(p, "{dir}", 5) == 0)
            rep = desc ? "DESC" : "ASC";
        size_t need = rep ? strlen(rep) : 1;
        if (o + need + 1 > cap) {
            char *grown = realloc(out, cap * 2 + need);
            if (!grown) {
                free(out);
                return NULL;
            }
            out = grown;
            cap = cap * 2 + need;
        }
        if (rep) {
            memcpy(out + o, rep, need);
            o += need;
            p += 5;
        } else {
            out[o++] = *p++;
        }
    }
    out[o] = 0;
    return out;
}

void db_rows_clear(db_rows_t *rows)
{
    json_decref(rows->items);
    free(rows->next_at);
    free(rows->next_id);
    *rows = (db_rows_t){0};
}

int db_page_read(pg_conn_t *c, const char *tmpl, const char *const *params, int nparams,
                 const db_page_t *page, db_row_fn row, const char *idcol, db_rows_t *out)
{
    *out = (db_rows_t){0};
    const char *p[8];
    if (nparams < 0 || nparams > 5 || page->limit < 1)
        return FENTA_EINVAL;
    for (int i = 0; i < nparams; i++)
        p[i] = params[i];
    /* One row more than the page: whether it comes back says whether a next
     * page exists, without a count. */
    char lim[16];
    snprintf(lim, sizeof lim, "%d", page->limit + 1);
    p[nparams] = lim;
    p[nparams + 1] = page->after_at;
    p[nparams + 2] = page->after_id;
    char *sql = db_page_sql(tmpl, page->desc);
    if (!sql)
        return FENTA_ENOMEM;
    int err = 0;
    pg_result_t *r = pg_query(c, sql, nparams + 3, p, &err);
    free(sql);
    if (!r)
        return err;
    int n = pg_nrows(r) < page->limit ? pg_nrows(r) : page->limit;
    int rc = (out->items = json_array()) ? 0 : FENTA_ENOMEM;
    for (int i = 0; !rc && i < n; i++)
        if (json_array_append_new(out->items, row(r, i)) != 0)
            rc = FENTA_ENOMEM;
    if (!rc && pg_nrows(r) > page->limit) {
        const char *at = pg_getn(r, n - 1, "raw_created"), *id = pg_getn(r, n - 1, idcol);
        if (!at || !id)
            rc = FENTA_EINVAL; /* the query lacks the columns: our bug */
        else if (!(out->next_at = strdup(at)) || !(out->next_id = strdup(id)))
            rc = FENTA_ENOMEM;
    }
    pg_result_free(&r);
    if (rc)
        db_rows_clear(out);
    return rc;
}

int db_one_row(pg_conn_t *c, const char *sql, int nparams, const char *const *params,
               db_row_fn row_json, json_t **out)
{
    if (out)
        *out = NULL;
    int err = 0;
    pg_result_t *r = pg_query(c, sql, nparams, params, &err);
    if (!r)
        return err ? err : FENTA_ENOMEM;
    int rc = 0;
    if (pg_nrows(r) != 1)
        rc = FENTA_ENOTFOUND;
    else if (out && !(*out = row_json(r, 0)))
        rc = FENTA_ENOMEM;
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
    if (!s || strlen(s) != 36)
        return false;
    for (int i = 0; i < 36; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : !isxdigit((unsigned char)s[i]))
            return false;
    }
    return true;
}

json_t *db_json_text(const char *cell)
{
    json_t *v = cell ? json_loads(cell, JSON_DECODE_ANY, NULL) : NULL;
    return v ? v : json_null();
}

json_t *db_str_or_null(const char *cell)
{
    return cell ? json_string(cell) : json_null();
}

json_t *db_int_or_null(const char *cell)
{
    return cell ? json_integer(atoll(cell)) : json_null();
}
