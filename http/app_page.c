/* app_page.c - cursor pagination of list routes: the limit, sort and cursor
 * query parameters, the next cursor, and the answer with one page, read by
 * a table's owner module (app__list_rows, app__list_org, app__reply_list)
 * or by a keyset query given here (app__list_page, under a parent row when
 * the list belongs to one). */
#include "http/app_internal.h"
#include "runtime/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ?sort: "created_at" (oldest first, the default) or "-created_at". */
static int page_sort(http_req_t *req, bool *desc)
{
    const char *sort = http_query(req, "sort");
    *desc = sort && strcmp(sort, "-created_at") == 0;
    if (sort && *sort && strcmp(sort, "created_at") != 0 && !*desc) {
        app__error(req, 400, "invalid_sort", "sort must be created_at or -created_at",
                   json_pack("[{s:s, s:s}]", "path", "$query.sort", "message",
                             "must be created_at or -created_at"));
        return FENTA_EINVAL;
    }
    return 0;
}

int app__page(http_req_t *req, int *limit, json_t **after)
{
    *after = NULL;
    bool desc;
    if (page_sort(req, &desc))
        return FENTA_EINVAL;
    if (cursor_limit(http_query(req, "limit"), 20, CURSOR_LIMIT_MAX, limit) != 0) {
        app__error(req, 400, "invalid_limit", "limit must be a whole number from 1 to 100",
                   json_pack("[{s:s, s:s}]", "path", "$query.limit", "message", "must be 1..100"));
        return FENTA_EINVAL;
    }
    const char *cur = http_query(req, "cursor");
    if (cur && *cur) {
        int err = 0;
        json_t *pos = cursor_decode(app__of(req)->cursor_key, cur, &err);
        json_t *route = pos ? json_object_get(pos, "r") : NULL;
        json_t *last = pos ? json_object_get(pos, "a") : NULL;
        /* A cursor belongs to one list, in one order. */
        if (!pos || !json_is_string(route) ||
            strcmp(json_string_value(route), app__route(req)->key) != 0 ||
            json_is_true(json_object_get(pos, "d")) != desc || json_array_size(last) != 2) {
            json_decref(pos);
            app__error(req, 400, "invalid_cursor",
                       "the cursor is not one this list gave out in this order (or was altered)",
                       NULL);
            return FENTA_EINVAL;
        }
        *after = json_incref(last);
        json_decref(pos);
    }
    return 0;
}

json_t *app__next_cursor(http_req_t *req, const char *created_at, const char *id)
{
    bool desc = false;
    const char *sort = http_query(req, "sort");
    desc = sort && strcmp(sort, "-created_at") == 0;
    json_t *pos =
        json_pack("{s:s, s:[s,s], s:b}", "r", app__route(req)->key, "a", created_at, id, "d", desc);
    char *c = pos ? cursor_encode(app__of(req)->cursor_key, pos) : NULL;
    json_decref(pos);
    json_t *v = c ? json_string(c) : json_null();
    free(c);
    return v;
}

/* Keyset pages over (created_at, id), ascending: rows inserted meanwhile
 * land after the cursor, so no page repeats or skips a row. */
void app__list_page(http_req_t *req, const char *sql, const char *const *params, int nparams,
                    app_row_fn row_json, const char *idcol)
{
    int limit;
    json_t *after;
    if (app__page(req, &limit, &after))
        return;
    pg_conn_t *c = app__db(req);
    if (!c) {
        json_decref(after);
        return;
    }
    char lim[16];
    snprintf(lim, sizeof lim, "%d", limit + 1);
    const char *p[8];
    for (int i = 0; i < nparams; i++)
        p[i] = params[i];
    p[nparams] = lim;
    p[nparams + 1] = after ? json_string_value(json_array_get(after, 0)) : NULL;
    p[nparams + 2] = after ? json_string_value(json_array_get(after, 1)) : NULL;
    int err = 0;
    const char *sort = http_query(req, "sort");
    char *q = db_page_sql(sql, sort && strcmp(sort, "-created_at") == 0);
    pg_result_t *r = q ? pg_query(c, q, nparams + 3, p, &err) : NULL;
    free(q);
    json_decref(after);
    if (!r) {
        app__db_error(req, err, c);
    } else {
        caller_t *cl = app__caller(req);
        json_t *data =
            cl && cl->list_prefix && !p[nparams + 1] ? json_incref(cl->list_prefix) : json_array();
        int n = pg_nrows(r) < limit ? pg_nrows(r) : limit;
        for (int i = 0; i < n; i++)
            json_array_append_new(data, row_json(app__of(req), r, i));
        json_t *next = pg_nrows(r) > limit ? app__next_cursor(req, pg_getn(r, n - 1, "raw_created"),
                                                              pg_getn(r, n - 1, idcol))
                                           : json_null();
        app__reply(req, 200, json_pack("{s:o, s:o}", "data", data, "next_cursor", next));
    }
    pg_result_free(&r);
    app__db_done(req, &c);
}

void app__list_page_under(http_req_t *req, const char *parent_table, const char *missing,
                          const char *sql, const char *const *params, int nparams,
                          app_row_fn row_json, const char *idcol)
{
    pg_conn_t *c = app__db(req);
    if (!c)
        return;
    char q[160];
    snprintf(q, sizeof q, "SELECT id FROM %s WHERE id = $1 AND org_id = $2 AND deleted_at IS NULL",
             parent_table);
    pg_result_t *parent = app__load(req, c, q, missing);
    app__db_done(req, &c);
    if (!parent)
        return; /* answered: 404 or the database's error */
    pg_result_free(&parent);
    app__list_page(req, sql, params, nparams, row_json, idcol);
}

int app__page_args(http_req_t *req, db_page_t *page, json_t **keep)
{
    *page = (db_page_t){0};
    if (app__page(req, &page->limit, keep))
        return FENTA_EINVAL;
    const char *sort = http_query(req, "sort");
    page->desc = sort && strcmp(sort, "-created_at") == 0;
    page->after_at = *keep ? json_string_value(json_array_get(*keep, 0)) : NULL;
    page->after_id = *keep ? json_string_value(json_array_get(*keep, 1)) : NULL;
    return 0;
}

void app__list_rows(http_req_t *req, app_list_fn read, const void *arg)
{
    db_page_t page;
    json_t *keep = NULL;
    if (app__page_args(req, &page, &keep))
        return;
    pg_conn_t *c = app__db(req);
    if (c) {
        db_rows_t rows;
        int rc = read(c, &page, arg, &rows);
        app__reply_list(req, c, rc, &rows);
    }
    json_decref(keep);
    app__db_done(req, &c);
}

/* app__list_org's reader: the owner's list of the organisation in arg. */
struct org_list {
    app_org_list_fn fn;
    const char *org_id;
};

static int org_list_read(pg_conn_t *c, const db_page_t *page, const void *arg, db_rows_t *out)
{
    const struct org_list *l = arg;
    return l->fn(c, l->org_id, page, out);
}

void app__list_org(http_req_t *req, app_org_list_fn list_fn)
{
    struct org_list l = {list_fn, app__caller(req)->org_id};
    app__list_rows(req, org_list_read, &l);
}

void app__reply_list(http_req_t *req, pg_conn_t *c, int rc, db_rows_t *rows)
{
    if (rc) {
        app__db_error(req, rc, c);
    } else {
        json_t *next =
            rows->next_at ? app__next_cursor(req, rows->next_at, rows->next_id) : json_null();
        app__reply(req, 200, json_pack("{s:O, s:o}", "data", rows->items, "next_cursor", next));
    }
    db_rows_clear(rows);
}
