/* h_templates.c - montage templates: the built-in starters (files in
 * schemas/templates, read-only, listed first) and an organisation's own
 * (rows, checked against the template schema merged over 'clean'). */
#include "actors/render/render_spec.h"
#include "http/app_internal.h"
#include "runtime/error.h"
#include "runtime/fsutil.h"
#include "storage/templates_db.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *schemas(app_t *app)
{
    return fsutil_schemas_dir(app->schemas_dir);
}

/* An organisation's template (a templates_db row, taken) as the API shows
 * it: not built in, and resolved over its base. */
static json_t *tpl_json(app_t *app, json_t *row)
{
    const json_t *doc = json_object_get(row, "template");
    json_t *resolved = render_template_merge(doc, app->schemas_dir, NULL, 0);
    json_t *o = json_pack(
        "{sO sO sO sb sO so sO sO}", "id", json_object_get(row, "id"), "name",
        json_object_get(row, "name"), "description", json_object_get(row, "description"), "builtin",
        0, "template", doc, "resolved", resolved ? resolved : json_null(), "created_at",
        json_object_get(row, "created_at"), "updated_at", json_object_get(row, "updated_at"));
    json_decref(row);
    return o;
}

/* Answers the outcome of a templates_db call that gave one row. */
static void reply_tpl(http_req_t *req, pg_conn_t *c, int rc, int status, json_t *row)
{
    app__reply_owned(req, c, rc, status, rc ? NULL : tpl_json(app__of(req), row),
                     "no such template");
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

/* app_list_fn: a page of the organisation's own templates (arg). */
static int list_own(http_req_t *req, pg_conn_t *c, void *arg, const db_page_t *page,
                    db_page_rows_t *out)
{
    int rc = templates_db_list(c, arg, page, out);
    size_t i;
    json_t *row;
    json_array_foreach(out->rows, i, row)
        json_array_set_new(out->rows, i, tpl_json(app__of(req), json_incref(row)));
    return rc;
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
    app__list(req, list_own, cl->org_id);
}

/* Whether a template document may be stored: its sources are the
 * organisation's own keys, and merged over the defaults it is a template;
 * false after answering 400 invalid_template. */
static bool doc_ok(http_req_t *req, const json_t *doc)
{
    if (!app__sources_ok(req, doc, "$.template", "invalid_template"))
        return false;
    char err[1024] = "";
    json_t *t = render_template_merge(doc, app__of(req)->schemas_dir, err, sizeof err);
    if (!t)
        app__fail(req, "invalid_template", err, NULL);
    json_decref(t);
    return t != NULL;
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
    if (!doc_ok(req, doc))
        return;
    pg_conn_t *c = app__db(req);
    if (!c)
        return;
    json_t *row = NULL;
    int rc = templates_db_create(c, cl->org_id, name,
                                 json_string_value(json_object_get(b, "description")), doc,
                                 cl->user_id, &row);
    reply_tpl(req, c, rc, 201, row);
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
    json_t *row = NULL;
    int rc = templates_db_get(c, id, cl->org_id, &row);
    reply_tpl(req, c, rc, 200, row);
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
    if (doc && !doc_ok(req, doc))
        return;
    pg_conn_t *c = app__db(req);
    if (!c)
        return;
    json_t *row = NULL;
    int rc = templates_db_update(c, id, cl->org_id,
                                 json_string_value(json_object_get(b, "description")), doc, &row);
    reply_tpl(req, c, rc, 200, row);
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
    pg_conn_t *c = app__db(req);
    if (!c)
        return;
    int rc = templates_db_delete(c, id, app__caller(req)->org_id);
    app__reply_owned(req, c, rc, 204, NULL, "no such template");
    app__db_done(req, &c);
}
