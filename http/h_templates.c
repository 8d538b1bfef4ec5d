/* h_templates.c - montage templates: the built-in starters (files in
 * schemas/templates, read-only, listed first) and an organisation's own
 * (rows, checked against the template schema merged over 'clean'). */
#include "actors/render/render_spec.h"
#include "http/app_internal.h"
#include "runtime/error.h"
#include "runtime/fsutil.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TPL_COLS                                                                                   \
    "id, name, description, doc::text AS doc, " APP_TS("created_at") " AS created_at, " APP_TS(    \
        "updated_at") " AS updated_at, created_at AS raw_created"

static const char *schemas(app_t *app)
{
    return fsutil_schemas_dir(app->schemas_dir);
}

static json_t *tpl_json(app_t *app, const pg_result_t *r, int row)
{
    json_t *doc = json_loads(pg_getn(r, row, "doc"), 0, NULL);
    json_t *resolved = doc ? render_template_merge(doc, app->schemas_dir, NULL, 0) : NULL;
    return json_pack("{ss ss ss sb so so ss ss}", "id", pg_getn(r, row, "id"), "name",
                     pg_getn(r, row, "name"), "description", pg_getn(r, row, "description"),
                     "builtin", 0, "template", doc ? doc : json_object(), "resolved",
                     resolved ? resolved : json_null(), "created_at", pg_getn(r, row, "created_at"),
                     "updated_at", pg_getn(r, row, "updated_at"));
}

/* A built-in template as the API shows it, or NULL when there is none. */
static json_t *builtin_json(app_t *app, const char *name)
{
    char err[256];
    json_t *resolved = render_template_builtin(name, app->schemas_dir, err, sizeof err);
    if (!resolved)
        return NULL;
    char path[4096];
    snprintf(path, sizeof path, "%s/templates/%s.json", schemas(app), name);
    json_t *own = json_load_file(path, 0, NULL);
    const char *desc = json_string_value(json_object_get(own, "description"));
    json_t *o = json_pack("{ss ss ss sb sO so sn sn}", "id", name, "name", name, "description",
                          desc ? desc : "", "builtin", 1, "template", own ? own : json_object(),
                          "resolved", resolved, "created_at", "updated_at");
    json_decref(own);
    return o;
}

static bool is_builtin(app_t *app, const char *name)
{
    json_t *b = name ? builtin_json(app, name) : NULL;
    json_decref(b);
    return b != NULL;
}

void h_templates_list(http_req_t *req)
{
    caller_t *cl = app__caller(req);
    app_t *app = app__of(req);
    const char *cur = http_query(req, "cursor");
    if (!cur || !*cur) {
        /* The first page starts with the starters, in name order; the
         * organisation's own follow, page after page. */
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/templates", schemas(app));
        struct dirent **names = NULL;
        int n = scandir(dir, &names, NULL, alphasort);
        json_t *built = json_array();
        for (int i = 0; i < n; i++) {
            char name[256];
            snprintf(name, sizeof name, "%s", names[i]->d_name);
            char *dot = strrchr(name, '.');
            if (dot && strcmp(dot, ".json") == 0) {
                *dot = 0;
                json_t *b = builtin_json(app, name);
                if (b)
                    json_array_append_new(built, b);
            }
            free(names[i]);
        }
        free(names);
        json_decref(app__caller(req)->list_prefix);
        app__caller(req)->list_prefix = built;
    }
    const char *p[] = {cl->org_id};
    app__list_page(req,
                   "SELECT " TPL_COLS " FROM templates WHERE org_id = $1 AND deleted_at IS NULL "
                   "AND ($3::timestamptz IS NULL OR (created_at, id) {cmp} ($3::timestamptz, "
                   "$4::uuid)) ORDER BY created_at {dir}, id {dir} LIMIT $2::int",
                   p, 1, tpl_json, "id");
}

/* Checks a template document; the merged whole, or NULL after answering. */
static json_t *checked(http_req_t *req, const json_t *doc)
{
    char err[1024] = "";
    json_t *t = render_template_merge(doc, app__of(req)->schemas_dir, err, sizeof err);
    if (!t)
        app__fail(req, "invalid_template", err, NULL);
    return t;
}

void h_templates_create(http_req_t *req)
{
    caller_t *cl = app__caller(req);
    json_t *b = http_json_body(req, NULL);
    const char *name = json_string_value(json_object_get(b, "name"));
    json_t *doc = json_object_get(b, "template");
    if (is_builtin(app__of(req), name)) {
        app__fail(req, "conflict", "that name belongs to a built-in template", NULL);
        return;
    }
    if (!app__sources_ok(req, doc, "$.template", "invalid_template"))
        return;
    json_t *t = checked(req, doc);
    if (!t)
        return;
    json_decref(t);
    pg_conn_t *c = app__db(req);
    if (!c)
        return;
    char *d = json_dumps(doc, JSON_COMPACT);
    const char *desc = json_string_value(json_object_get(b, "description"));
    const char *p[] = {cl->org_id, name, desc ? desc : "", d, cl->user_id};
    int err = 0;
    pg_result_t *r = pg_query(c,
                              "INSERT INTO templates (org_id, name, description, doc, created_by) "
                              "VALUES ($1, $2, $3, $4::jsonb, $5) RETURNING " TPL_COLS,
                              5, p, &err);
    free(d);
    app__reply_row(req, c, &r, err, 201, tpl_json, "no such template");
    app__db_done(req, &c);
}

void h_templates_get(http_req_t *req)
{
    caller_t *cl = app__caller(req);
    const char *id = http_param(req, "id");
    if (!app__is_uuid(id)) {
        json_t *b = builtin_json(app__of(req), id);
        if (b)
            app__reply(req, 200, b);
        else
            app__fail(req, "not_found", "no such template", NULL);
        return;
    }
    pg_conn_t *c = app__db(req);
    if (!c)
        return;
    const char *p[] = {id, cl->org_id};
    int err = 0;
    pg_result_t *r = pg_query(c,
                              "SELECT " TPL_COLS " FROM templates WHERE id = $1 AND org_id = $2 "
                              "AND deleted_at IS NULL",
                              2, p, &err);
    app__reply_row(req, c, &r, err, 200, tpl_json, "no such template");
    app__db_done(req, &c);
}

void h_templates_update(http_req_t *req)
{
    caller_t *cl = app__caller(req);
    const char *id = http_param(req, "id");
    if (!app__is_uuid(id)) {
        bool b = is_builtin(app__of(req), id);
        app__fail(req, b ? "forbidden" : "not_found",
                  b ? "built-in templates cannot be changed; save a copy" : "no such template",
                  NULL);
        return;
    }
    json_t *b = http_json_body(req, NULL);
    json_t *doc = json_object_get(b, "template");
    if (doc) {
        if (!app__sources_ok(req, doc, "$.template", "invalid_template"))
            return;
        json_t *t = checked(req, doc);
        if (!t)
            return;
        json_decref(t);
    }
    pg_conn_t *c = app__db(req);
    if (!c)
        return;
    char *d = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    const char *p[] = {id, cl->org_id, json_string_value(json_object_get(b, "description")), d};
    int err = 0;
    pg_result_t *r = pg_query(c,
                              "UPDATE templates SET description = COALESCE($3, description), doc "
                              "= COALESCE($4::jsonb, doc), updated_at = now() WHERE id = $1 AND "
                              "org_id = $2 AND deleted_at IS NULL RETURNING " TPL_COLS,
                              4, p, &err);
    free(d);
    app__reply_row(req, c, &r, err, 200, tpl_json, "no such template");
    app__db_done(req, &c);
}

void h_templates_delete(http_req_t *req)
{
    const char *id = http_param(req, "id");
    if (!app__is_uuid(id)) {
        bool b = is_builtin(app__of(req), id);
        app__fail(req, b ? "forbidden" : "not_found",
                  b ? "built-in templates cannot be deleted" : "no such template", NULL);
        return;
    }
    app__soft_delete(req, "templates", id, "no such template");
}
