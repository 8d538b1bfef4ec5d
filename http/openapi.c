/* openapi.c - OpenAPI 3.1 from the route table, the models and the error
 * codes (see openapi.h).
 *
 * Models become components/schemas with "#/$defs/x" references rewritten to
 * "#/components/schemas/x"; each route (api.json's routes, and
 * routes_outside_app: the endpoints the server answers apart from the API
 * application) becomes an operation with its path and query parameters, its
 * request body, its success response, and one response per error status:
 * the route's own codes ("errors") and the ones every route of its kind
 * answers (api.json's shared_errors), each status listing its codes with
 * their meaning (errors.json) and narrowing the error body's code to them,
 * so a validating proxy catches a code the document does not list. */
#include "http/openapi.h"
#include "http/errcodes.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Deep copy with $ref rewritten to components. */
static json_t *rewrite_refs(const json_t *v)
{
    if (json_is_object(v)) {
        json_t *o = json_object();
        const char *k;
        json_t *x;
        json_object_foreach((json_t *)v, k, x)
        {
            if (strcmp(k, "$ref") == 0 && json_is_string(x) &&
                strncmp(json_string_value(x), "#/$defs/", 8) == 0) {
                char ref[256];
                snprintf(ref, sizeof ref, "#/components/schemas/%s", json_string_value(x) + 8);
                json_object_set_new(o, k, json_string(ref));
            } else {
                json_object_set_new(o, k, rewrite_refs(x));
            }
        }
        return o;
    }
    if (json_is_array(v)) {
        json_t *a = json_array();
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x) json_array_append_new(a, rewrite_refs(x));
        return a;
    }
    return json_deep_copy(v);
}

static json_t *schema_ref(const char *name)
{
    char ref[256];
    snprintf(ref, sizeof ref, "#/components/schemas/%s", name);
    return json_pack("{s:s}", "$ref", ref);
}

/* Path parameters named in "{...}" segments: a uuid unless the route's
 * path_params says otherwise (a template is also named by a built-in's
 * name; an object key is any string). */
static json_t *path_params(const char *path, const json_t *overrides)
{
    json_t *ps = json_array();
    for (const char *p = strchr(path, '{'); p; p = strchr(p + 1, '{')) {
        const char *e = strchr(p, '}');
        if (!e)
            break;
        char name[64];
        snprintf(name, sizeof name, "%.*s", (int)(e - p - 1), p + 1);
        const json_t *o = json_object_get(overrides, name);
        json_t *schema =
            o ? json_deep_copy(o) : json_pack("{s:s, s:s}", "type", "string", "format", "uuid");
        json_t *prm = json_pack("{s:s, s:s, s:b, s:o}", "name", name, "in", "path", "required", 1,
                                "schema", schema);
        if (json_object_get(schema, "description")) {
            json_object_set(prm, "description", json_object_get(schema, "description"));
            json_object_del(schema, "description");
        }
        json_array_append_new(ps, prm);
    }
    return ps;
}

static void lower(char *s)
{
    for (; *s; s++)
        if (*s >= 'A' && *s <= 'Z')
            *s = (char)(*s - 'A' + 'a');
}

/* Appends the codes of list (an array of strings) to codes, once each. */
static void add_codes(json_t *codes, const json_t *list)
{
    size_t i;
    json_t *c;
    json_array_foreach(list, i, c)
    {
        bool seen = false;
        size_t j;
        json_t *d;
        json_array_foreach(codes, j, d) seen |= json_equal(c, d);
        if (!seen && json_is_string(c))
            json_array_append(codes, c);
    }
}

/* The codes route r answers: its own, then the shared ones of its kind. */
static json_t *route_codes(const json_t *api, const json_t *r, const char *method, const char *path,
                           bool auth)
{
    json_t *codes = json_array();
    add_codes(codes, json_object_get(r, "errors"));
    if (json_is_false(json_object_get(r, "shared_errors")))
        return codes;
    const json_t *shared = json_object_get(api, "shared_errors");
    add_codes(codes, json_object_get(shared, "every_route"));
    if (auth)
        add_codes(codes, json_object_get(shared, "authenticated"));
    const char *perm = json_string_value(json_object_get(r, "permission"));
    const json_t *pd = perm ? json_object_get(json_object_get(api, "permissions"), perm) : NULL;
    if (json_array_size(json_object_get(pd, "roles")) || json_object_get(r, "org_param"))
        add_codes(codes, json_object_get(shared, "organisation"));
    if (strchr(path, '{'))
        add_codes(codes, json_object_get(shared, "path_parameter"));
    if (json_object_get(r, "request"))
        add_codes(codes, json_object_get(shared, "body"));
    if (json_is_true(json_object_get(r, "idempotent")))
        add_codes(codes, json_object_get(shared, "idempotent"));
    if (json_is_true(json_object_get(r, "list")))
        add_codes(codes, json_object_get(shared, "list"));
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        add_codes(codes, json_object_get(shared, "write"));
    return codes;
}

/* One response per status of codes: a description listing each code with
 * its meaning, and the error body with its code narrowed to those. 0, or -1
 * with a message when a code is not in errors.json. */
static int error_responses(json_t *responses, const json_t *codes, const errcodes_t *table,
                           const char *route, json_int_t max_body, char *errbuf, size_t errlen)
{
    size_t i;
    json_t *c;
    json_array_foreach(codes, i, c)
    {
        const char *code = json_string_value(c);
        int status = errcodes_status(table, code);
        if (!status) {
            snprintf(errbuf, errlen, "%s: error code '%s' is not in errors.json", route, code);
            return -1;
        }
        char st[8];
        snprintf(st, sizeof st, "%d", status);
        json_t *resp = json_object_get(responses, st);
        if (!resp) {
            json_t *narrow = json_pack("{s:{s:{s:{s:{s:[]}}}}}", "properties", "error",
                                       "properties", "code", "enum");
            resp = json_pack("{s:s, s:{s:{s:{s:[o, o]}}}}", "description", "", "content",
                             "application/json", "schema", "allOf", schema_ref("error"), narrow);
            json_object_set_new(responses, st, resp);
        }
        json_t *schema = json_object_get(
            json_object_get(json_object_get(resp, "content"), "application/json"), "schema");
        json_t *en = json_object_get(
            json_object_get(
                json_object_get(
                    json_object_get(
                        json_object_get(json_array_get(json_object_get(schema, "allOf"), 1),
                                        "properties"),
                        "error"),
                    "properties"),
                "code"),
            "enum");
        json_array_append(en, c);
        const char *meaning = errcodes_meaning(table, code);
        char extra[96] = "";
        if (strcmp(code, "payload_too_large") == 0 && max_body > 0)
            snprintf(extra, sizeof extra, " (this route: %lld bytes)", (long long)max_body);
        const char *was = json_string_value(json_object_get(resp, "description"));
        size_t len = strlen(was) + strlen(code) + strlen(meaning) + strlen(extra) + 16;
        char *d = malloc(len);
        if (!d) {
            snprintf(errbuf, errlen, "out of memory");
            return -1;
        }
        snprintf(d, len, "%s%s- `%s`: %s%s", was, *was ? "\n" : "", code, meaning, extra);
        json_object_set_new(resp, "description", json_string(d));
        free(d);
    }
    return 0;
}

/* One operation for route r; -1 with a message when r is malformed. */
static int add_operation(json_t *paths, json_t *tags, const json_t *api, const json_t *defs,
                         const errcodes_t *table, const json_t *r, size_t i, char *errbuf,
                         size_t errlen)
{
    const char *method = json_string_value(json_object_get(r, "method"));
    const char *path = json_string_value(json_object_get(r, "path"));
    const char *op = json_string_value(json_object_get(r, "operation"));
    const char *tag = json_string_value(json_object_get(r, "tag"));
    const char *auth = json_string_value(json_object_get(r, "auth"));
    if (!method || !path || !op || !auth) {
        snprintf(errbuf, errlen, "route %zu needs method, path, operation and auth", i);
        return -1;
    }
    if (!json_is_array(json_object_get(r, "errors"))) {
        snprintf(errbuf, errlen,
                 "route %s %s needs \"errors\": the codes it answers beyond the shared ones ([] "
                 "for none)",
                 method, path);
        return -1;
    }
    const char *req = json_string_value(json_object_get(r, "request"));
    const char *resp = json_string_value(json_object_get(r, "response"));
    if ((req && !json_object_get(defs, req)) || (resp && !json_object_get(defs, resp))) {
        snprintf(errbuf, errlen, "route %s %s: no model '%s'", method, path,
                 req && !json_object_get(defs, req) ? req : resp);
        return -1;
    }
    json_t *item = json_object_get(paths, path);
    if (!item) {
        item = json_object();
        json_object_set_new(paths, path, item);
    }
    json_t *o = json_object();
    json_object_set_new(o, "operationId", json_string(op));
    const char *summary = json_string_value(json_object_get(r, "summary"));
    json_object_set_new(o, "summary", json_string(summary ? summary : op));
    json_object_set_new(o, "tags", json_pack("[s]", tag ? tag : "misc"));
    bool seen = false;
    size_t t;
    json_t *tv;
    json_array_foreach(tags, t, tv) seen |= strcmp(json_string_value(tv), tag ? tag : "misc") == 0;
    if (!seen)
        json_array_append_new(tags, json_string(tag ? tag : "misc"));
    json_t *params = path_params(path, json_object_get(r, "path_params"));
    if (json_is_true(json_object_get(r, "list"))) {
        json_array_append_new(params,
                              json_pack("{s:s, s:s, s:s, s:{s:s, s:i, s:i}}", "name", "limit", "in",
                                        "query", "description", "Page size (1-100, default 20)",
                                        "schema", "type", "integer", "minimum", 1, "maximum", 100));
        json_array_append_new(params, json_pack("{s:s, s:s, s:s, s:{s:s, s:[s,s]}}", "name", "sort",
                                                "in", "query", "description",
                                                "Order: created_at (oldest first, default) or "
                                                "-created_at",
                                                "schema", "type", "string", "enum", "created_at",
                                                "-created_at"));
        json_array_append_new(params,
                              json_pack("{s:s, s:s, s:s, s:{s:s}}", "name", "cursor", "in", "query",
                                        "description", "Opaque cursor from next_cursor", "schema",
                                        "type", "string"));
    }
    const char *where[] = {"query", "headers"};
    for (int w = 0; w < 2; w++) {
        size_t qi;
        json_t *q;
        json_array_foreach(json_object_get(r, where[w]), qi, q)
        {
            json_t *prm =
                json_pack("{s:O, s:s, s:O, s:O}", "name", json_object_get(q, "name"), "in",
                          w ? "header" : "query", "description", json_object_get(q, "description"),
                          "schema", json_object_get(q, "schema"));
            if (json_is_true(json_object_get(q, "required")))
                json_object_set_new(prm, "required", json_true());
            json_array_append_new(params, prm);
        }
    }
    if (json_is_true(json_object_get(r, "stream")))
        json_array_append_new(params,
                              json_pack("{s:s, s:s, s:s, s:{s:s}}", "name", "Last-Event-ID", "in",
                                        "header", "description", "Resume after this event id",
                                        "schema", "type", "string"));
    if (json_is_true(json_object_get(r, "idempotent")))
        json_array_append_new(params, json_pack("{s:s, s:s, s:s, s:{s:s, s:i}}", "name",
                                                "Idempotency-Key", "in", "header", "description",
                                                "Same key, same response (24 h)", "schema", "type",
                                                "string", "maxLength", 255));
    if (json_array_size(params))
        json_object_set_new(o, "parameters", params);
    else
        json_decref(params);
    if (req)
        json_object_set_new(o, "requestBody",
                            json_pack("{s:b, s:{s:{s:o}}}", "required", 1, "content",
                                      "application/json", "schema", schema_ref(req)));
    json_t *responses = json_object();
    json_int_t status = json_integer_value(json_object_get(r, "status"));
    char code[8];
    snprintf(code, sizeof code, "%d", status ? (int)status : 200);
    const char *ctype = json_string_value(json_object_get(r, "content_type"));
    const char *note = json_string_value(json_object_get(r, "content_note"));
    if (json_is_true(json_object_get(r, "stream")))
        json_object_set_new(
            responses, code,
            json_pack("{s:s, s:{s:{s:{s:s, s:s}}}}", "description",
                      "text/event-stream: id, event (status, progress, node.started, "
                      "node.finished, stage.started, stage.finished, render.started, "
                      "completed) and data (JSON)",
                      "content", "text/event-stream", "schema", "type", "string", "description",
                      "Server-Sent Events"));
    else if (resp)
        json_object_set_new(responses, code,
                            json_pack("{s:s, s:{s:{s:o}}}", "description", "Success", "content",
                                      "application/json", "schema", schema_ref(resp)));
    else if (ctype)
        /* Not one of our models: a document or bytes the route serves as they are. */
        json_object_set_new(
            responses, code,
            json_pack("{s:s, s:{s:{s:o}}}", "description", note ? note : "Success", "content",
                      ctype, "schema",
                      strcmp(ctype, "application/json") == 0
                          ? json_pack("{s:s}", "type", "object")
                          : json_pack("{s:s, s:s}", "type", "string", "format", "binary")));
    else
        json_object_set_new(responses, code, json_pack("{s:s}", "description", "Success"));
    if (json_is_true(json_object_get(r, "partial")))
        json_object_set_new(
            responses, "206",
            json_pack("{s:s, s:{s:{s:{s:s, s:s}}}}", "description",
                      "The byte range the Range header asked for, with Content-Range", "content",
                      ctype ? ctype : "application/octet-stream", "schema", "type", "string",
                      "format", "binary"));
    if (strcmp(auth, "none") != 0)
        json_object_set_new(o, "security",
                            json_pack("[{s:[]}, {s:[]}, {s:[]}]", "bearer", "pat", "cookie"));
    else
        json_object_set_new(o, "security", json_array());
    json_int_t max_body = json_integer_value(json_object_get(r, "max_body_bytes"));
    if (max_body <= 0 && req)
        max_body = json_integer_value(json_object_get(api, "max_body_bytes"));
    char key[200];
    snprintf(key, sizeof key, "route %s %s", method, path);
    json_t *codes = route_codes(api, r, method, path, strcmp(auth, "none") != 0);
    int rc = error_responses(responses, codes, table, key, max_body, errbuf, errlen);
    json_decref(codes);
    json_object_set_new(o, "responses", responses);
    char m[16];
    snprintf(m, sizeof m, "%s", method);
    lower(m);
    json_object_set_new(item, m, o);
    return rc;
}

json_t *openapi_build(const json_t *api, const json_t *models, const json_t *errors, char *errbuf,
                      size_t errlen)
{
    const json_t *routes = json_object_get(api, "routes");
    const json_t *defs = json_object_get(models, "$defs");
    const json_t *info = json_object_get(api, "info");
    if (!json_is_array(routes) || !json_is_object(defs) || !json_is_object(info)) {
        snprintf(errbuf, errlen, "api.json needs info and routes, models.json needs $defs");
        return NULL;
    }
    errcodes_t *table = errcodes_new(errors, errbuf, errlen);
    if (!table)
        return NULL;
    json_t *doc = json_object();
    json_object_set_new(doc, "x-generated-by",
                        json_string("build/fenta openapi, from schemas/api.json, "
                                    "schemas/models.json and schemas/errors.json: do not edit by "
                                    "hand"));
    json_object_set_new(doc, "openapi", json_string("3.1.0"));
    json_t *inf = json_deep_copy(info);
    json_object_set_new(
        inf, "license",
        json_pack("{s:s, s:s}", "name", "Proprietary", "identifier", "LicenseRef-Fenta"));
    json_object_set_new(doc, "info", inf);
    json_object_set_new(doc, "servers", json_pack("[{s:s}]", "url", "/"));
    json_t *paths = json_object();
    json_t *tags = json_array();
    const json_t *lists[] = {routes, json_object_get(api, "routes_outside_app")};
    for (int l = 0; l < 2; l++) {
        size_t i;
        json_t *r;
        json_array_foreach(lists[l], i, r)
        {
            if (add_operation(paths, tags, api, defs, table, r, i, errbuf, errlen)) {
                json_decref(doc);
                json_decref(tags);
                json_decref(paths);
                errcodes_destroy(&table);
                return NULL;
            }
        }
    }
    errcodes_destroy(&table);
    json_t *tag_objs = json_array();
    size_t t;
    json_t *tv;
    json_array_foreach(tags, t, tv)
        json_array_append_new(tag_objs, json_pack("{s:s, s:s}", "name", json_string_value(tv),
                                                  "description", json_string_value(tv)));
    json_decref(tags);
    json_object_set_new(doc, "tags", tag_objs);
    json_object_set_new(doc, "paths", paths);
    json_t *schemas = json_object();
    const char *k;
    json_t *d;
    json_object_foreach((json_t *)defs, k, d) json_object_set_new(schemas, k, rewrite_refs(d));
    json_t *sec =
        json_pack("{s:{s:s, s:s, s:s}, s:{s:s, s:s, s:s}, s:{s:s, s:s, s:s}}", "bearer", "type",
                  "http", "scheme", "bearer", "bearerFormat", "JWT", "pat", "type", "http",
                  "scheme", "bearer", "description", "Personal access token (fenta_pat_...)",
                  "cookie", "type", "apiKey", "in", "cookie", "name", "fenta_access");
    json_object_set_new(doc, "components",
                        json_pack("{s:o, s:o}", "schemas", schemas, "securitySchemes", sec));
    return doc;
}
