/* db.c - the shapes every table owner module shares: keyset pages, one row
 * or "not found", id checks and cells as JSON (see db.h). */
#include "storage/db.h"
#include "runtime/error.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The templates are our own constants. */
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
        if (o + need + 1 >= cap) {
            char *grown = realloc(out, cap *= 2);
            if (!grown) {
                free(out);
                return NULL;
            }
            out = grown;
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

int db_list_page(pg_conn_t *c, const char *tmpl, const char *const *params, int nparams,
                 const db_page_t *page, db_row_fn row_json, const char *idcol, db_list_t *out)
{
    *out = (db_list_t){0};
    if (nparams < 0 || nparams > 5 || page->limit < 1)
        return FENTA_EINVAL;
    char lim[16];
    snprintf(lim, sizeof lim, "%d", page->limit + 1);
    const char *p[8];
    for (int i = 0; i < nparams; i++)
        p[i] = params[i];
    p[nparams] = lim;
    p[nparams + 1] = page->after_at;
    p[nparams + 2] = page->after_id;
    int err = 0;
    char *q = db_page_sql(tmpl, page->desc);
    pg_result_t *r = q ? pg_query(c, q, nparams + 3, p, &err) : NULL;
    free(q);
    if (!r)
        return err ? err : FENTA_ENOMEM;
    out->rows = json_array();
    int n = pg_nrows(r) < page->limit ? pg_nrows(r) : page->limit;
    for (int i = 0; i < n; i++)
        json_array_append_new(out->rows, row_json(r, i));
    bool more = pg_nrows(r) > page->limit;
    if (more) {
        out->next_at = strdup(pg_getn(r, n - 1, "raw_created"));
        out->next_id = strdup(pg_getn(r, n - 1, idcol));
    }
    pg_result_free(&r);
    if (!out->rows || (more && (!out->next_at || !out->next_id))) {
        db_list_clear(out);
        return FENTA_ENOMEM;
    }
    return 0;
}

void db_list_clear(db_list_t *list)
{
    json_decref(list->rows);
    free(list->next_at);
    free(list->next_id);
    *list = (db_list_t){0};
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

int db_exec_one(pg_conn_t *c, const char *sql, int nparams, const char *const *params)
{
    int n = pg_exec(c, sql, nparams, params);
    return n < 0 ? n : n == 0 ? FENTA_ENOTFOUND : 0;
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
