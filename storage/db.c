/* db.c - keyset pages and cell helpers shared by the table owners; see db.h. */
#include "storage/db.h"
#include "runtime/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Expands a list query template: {cmp} is the keyset comparison and {dir}
 * the order for the chosen sort. The templates are our own constants. */
static char *expand(const char *tmpl, bool desc)
{
    size_t cap = strlen(tmpl) + 64;
    char *out = malloc(cap);
    if (!out)
        return NULL;
    size_t o = 0;
    for (const char *p = tmpl; *p;) {
        const char *rep = NULL;
        size_t skip = 0;
        if (strncmp(p, "{cmp}", 5) == 0)
            rep = desc ? "<" : ">", skip = 5;
        else if (strncmp(p, "{dir}", 5) == 0)
            rep = desc ? "DESC" : "ASC", skip = 5;
        size_t rl = rep ? strlen(rep) : 1;
        if (o + rl + 1 >= cap) {
            char *bigger = realloc(out, cap *= 2);
            if (!bigger) {
                free(out);
                return NULL;
            }
            out = bigger;
        }
        if (rep) {
            memcpy(out + o, rep, rl);
            o += rl;
            p += skip;
        } else {
            out[o++] = *p++;
        }
    }
    out[o] = 0;
    return out;
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
    char *q = expand(sql, page->desc);
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
