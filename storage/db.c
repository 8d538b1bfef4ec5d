/* db.c - what the table owner modules share: statements whose rows are not
 * wanted, and the keyset page of a list. */
#include "storage/db.h"
#include "runtime/error.h"

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
                 const db_page_t *page, json_t *(*row)(const pg_result_t *r, int i),
                 const char *idcol, db_rows_t *out)
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
