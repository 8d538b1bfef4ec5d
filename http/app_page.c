/* app_page.c - cursor pagination of list routes: the limit, sort and cursor
 * query parameters, the next cursor, and the keyset query that reads one
 * page (under a parent row when the list belongs to one). */
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
        app__fail(req, "invalid_sort", "sort must be created_at or -created_at",
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
        app__fail(req, "invalid_limit", "limit must be a whole number from 1 to 100",
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
            app__fail(req, "invalid_cursor",
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
        if (rep) {
            size_t rl = strlen(rep);
            if (o + rl + 1 >= cap && !(out = realloc(out, cap *= 2)))
                return NULL;
            memcpy(out + o, rep, rl);
            o += rl;
            p += skip;
        } else {
            if (o + 2 >= cap && !(out = realloc(out, cap *= 2)))
                return NULL;
            out[o++] = *p++;
        }
    }
    out[o] = 0;
    return out;
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
    char *q = expand(sql, sort && strcmp(sort, "-created_at") == 0);
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
