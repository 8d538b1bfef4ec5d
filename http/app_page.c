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

int app__page_of(http_req_t *req, db_page_t *page, json_t **hold)
{
    int limit;
    json_t *after;
    *hold = NULL;
    if (app__page(req, &limit, &after))
        return FENTA_EINVAL;
    const char *sort = http_query(req, "sort");
    *page = (db_page_t){.limit = limit,
                        .desc = sort && strcmp(sort, "-created_at") == 0,
                        .after_at = after ? json_string_value(json_array_get(after, 0)) : NULL,
                        .after_id = after ? json_string_value(json_array_get(after, 1)) : NULL};
    *hold = after;
    return 0;
}

void app__reply_page(http_req_t *req, const db_page_t *page, db_page_rows_t *rows)
{
    caller_t *cl = app__caller(req);
    json_t *data =
        cl && cl->list_prefix && !page->after_at ? json_incref(cl->list_prefix) : json_array();
    json_array_extend(data, rows->rows);
    json_t *next =
        rows->next_id ? app__next_cursor(req, rows->next_at, rows->next_id) : json_null();
    db_page_rows_free(rows);
    app__reply(req, 200, json_pack("{s:o, s:o}", "data", data, "next_cursor", next));
}

void app__list(http_req_t *req, app_list_fn list, void *arg)
{
    db_page_t page;
    json_t *hold;
    if (app__page_of(req, &page, &hold))
        return;
    pg_conn_t *c = app__db(req);
    if (!c) {
        json_decref(hold);
        return;
    }
    db_page_rows_t rows;
    int rc = list(req, c, arg, &page, &rows);
    app__reply_list(req, c, rc, &page, &rows);
    json_decref(hold);
    app__db_done(req, &c);
}

void app__reply_list(http_req_t *req, pg_conn_t *c, int rc, const db_page_t *page,
                     db_page_rows_t *rows)
{
    if (rc)
        app__db_error(req, rc, c);
    else
        app__reply_page(req, page, rows);
}

static int org_list(http_req_t *req, pg_conn_t *c, void *arg, const db_page_t *page,
                    db_page_rows_t *out)
{
    app_org_list_fn *fn = arg;
    return (*fn)(c, app__caller(req)->org_id, page, out);
}

void app__list_org(http_req_t *req, app_org_list_fn list_fn)
{
    app__list(req, org_list, &list_fn);
}
