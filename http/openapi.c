/* openapi.c - OpenAPI 3.1 from the route table and the models (see openapi.h).
 *
 * Models become components/schemas with "#/$defs/x" references rewritten to
 * "#/components/schemas/x"; each route becomes an operation with its path
 * parameters, its request body, its success response, the error responses
 * every route can give, and the security it needs. */
#include "http/openapi.h"

#include <stdbool.h>
#include <stdio.h>
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

static json_t *error_response(const char *description)
{
    return json_pack("{s:s, s:{s:{s:o}}}", "description", description, "content",
                     "application/json", "schema", schema_ref("error"));
}

/* Path parameters named in "{...}" segments. */
static json_t *path_params(const char *path)
{
    json_t *ps = json_array();
    for (const char *p = strchr(path, '{'); p; p = strchr(p + 1, '{')) {
        const char *e = strchr(p, '}');
        if (!e)
            break;
        char name[64];
        snprintf(name, sizeof name, "%.*s", (int)(e - p - 1), p + 1);
        json_array_append_new(ps, json_pack("{s:s, s:s, s:b, s:{s:s, s:s}}", "name", name, "in",
                                            "path", "required", 1, "schema", "type", "string",
                                            "format", "uuid"));
    }
    return ps;
}

static void lower(char *s)
{
    for (; *s; s++)
        if (*s >= 'A' && *s <= 'Z')
            *s = (char)(*s - 'A' + 'a');
}

json_t *openapi_build(const json_t *api, const json_t *models, char *errbuf, size_t errlen)
{
    const json_t *routes = json_object_get(api, "routes");
    const json_t *defs = json_object_get(models, "$defs");
    const json_t *info = json_object_get(api, "info");
    if (!json_is_array(routes) || !json_is_object(defs) || !json_is_object(info)) {
        snprintf(errbuf, errlen, "api.json needs info and routes, models.json needs $defs");
        return NULL;
    }
    json_t *doc = json_object();
    json_object_set_new(doc, "x-generated-by",
                        json_string("build/fenta openapi, from schemas/api.json and "
                                    "schemas/models.json: do not edit by hand"));
    json_object_set_new(doc, "openapi", json_string("3.1.0"));
    json_t *inf = json_deep_copy(info);
    json_object_set_new(
        inf, "license",
        json_pack("{s:s, s:s}", "name", "Proprietary", "identifier", "LicenseRef-Fenta"));
    json_object_set_new(doc, "info", inf);
    json_object_set_new(doc, "servers", json_pack("[{s:s}]", "url", "/"));
    json_t *paths = json_object();
    json_t *tags = json_array();
    size_t i;
    json_t *r;
    json_array_foreach(routes, i, r)
    {
        const char *method = json_string_value(json_object_get(r, "method"));
        const char *path = json_string_value(json_object_get(r, "path"));
        const char *op = json_string_value(json_object_get(r, "operation"));
        const char *tag = json_string_value(json_object_get(r, "tag"));
        const char *auth = json_string_value(json_object_get(r, "auth"));
        if (!method || !path || !op || !auth) {
            snprintf(errbuf, errlen, "route %zu needs method, path, operation and auth", i);
            json_decref(doc);
            json_decref(tags);
            json_decref(paths);
            return NULL;
        }
        json_t *item = json_object_get(paths, path);
        if (!item) {
            item = json_object();
            json_object_set_new(paths, path, item);
        }
        json_t *o = json_object();
        json_object_set_new(o, "operationId", json_string(op));
        json_object_set_new(o, "summary",
                            json_string(json_string_value(json_object_get(r, "summary"))
                                            ? json_string_value(json_object_get(r, "summary"))
                                            : op));
        json_object_set_new(o, "tags", json_pack("[s]", tag ? tag : "misc"));
        bool seen = false;
        size_t t;
        json_t *tv;
        json_array_foreach(tags, t, tv) seen |=
            strcmp(json_string_value(tv), tag ? tag : "misc") == 0;
        if (!seen)
            json_array_append_new(tags, json_string(tag ? tag : "misc"));
        json_t *params = path_params(path);
        if (json_is_true(json_object_get(r, "list"))) {
            json_array_append_new(
                params, json_pack("{s:s, s:s, s:s, s:{s:s, s:i, s:i}}", "name", "limit", "in",
                                  "query", "description", "Page size (1-100, default 20)", "schema",
                                  "type", "integer", "minimum", 1, "maximum", 100));
            json_array_append_new(params, json_pack("{s:s, s:s, s:s, s:{s:s, s:[s,s]}}", "name",
                                                    "sort", "in", "query", "description",
                                                    "Order: created_at (oldest first, default) or "
                                                    "-created_at",
                                                    "schema", "type", "string", "enum",
                                                    "created_at", "-created_at"));
            json_array_append_new(params, json_pack("{s:s, s:s, s:s, s:{s:s}}", "name", "cursor",
                                                    "in", "query", "description",
                                                    "Opaque cursor from next_cursor", "schema",
                                                    "type", "string"));
        }
        size_t qi;
        json_t *q;
        json_array_foreach(json_object_get(r, "query"), qi, q) json_array_append_new(
            params, json_pack("{s:O, s:s, s:O, s:O}", "name", json_object_get(q, "name"), "in",
                              "query", "description", json_object_get(q, "description"), "schema",
                              json_object_get(q, "schema")));
        if (json_is_true(json_object_get(r, "stream")))
            json_array_append_new(params, json_pack("{s:s, s:s, s:s, s:{s:s}}", "name",
                                                    "Last-Event-ID", "in", "header", "description",
                                                    "Resume after this event id", "schema", "type",
                                                    "string"));
        if (json_is_true(json_object_get(r, "idempotent")))
            json_array_append_new(params, json_pack("{s:s, s:s, s:s, s:{s:s, s:i}}", "name",
                                                    "Idempotency-Key", "in", "header",
                                                    "description", "Same key, same response (24 h)",
                                                    "schema", "type", "string", "maxLength", 255));
        if (json_array_size(params))
            json_object_set_new(o, "parameters", params);
        else
            json_decref(params);
        const char *req = json_string_value(json_object_get(r, "request"));
        if (req) {
            if (!json_object_get(defs, req)) {
                snprintf(errbuf, errlen, "route %s %s: no model '%s'", method, path, req);
                json_decref(o);
                json_decref(doc);
                json_decref(tags);
                json_decref(paths);
                return NULL;
            }
            json_object_set_new(o, "requestBody",
                                json_pack("{s:b, s:{s:{s:o}}}", "required", 1, "content",
                                          "application/json", "schema", schema_ref(req)));
        }
        json_t *responses = json_object();
        json_int_t status = json_integer_value(json_object_get(r, "status"));
        char code[8];
        snprintf(code, sizeof code, "%d", status ? (int)status : 200);
        const char *resp = json_string_value(json_object_get(r, "response"));
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
        else
            json_object_set_new(responses, code, json_pack("{s:s}", "description", "Success"));
        json_object_set_new(responses, "400",
                            error_response("Invalid request; details lists every problem"));
        if (strcmp(auth, "none") != 0) {
            json_object_set_new(responses, "401", error_response("Missing or invalid credentials"));
            json_object_set_new(responses, "403",
                                error_response("Not allowed for this role or token scope"));
            json_object_set_new(o, "security",
                                json_pack("[{s:[]}, {s:[]}, {s:[]}]", "bearer", "pat", "cookie"));
        } else {
            json_object_set_new(o, "security", json_array());
        }
        if (strchr(path, '{'))
            json_object_set_new(responses, "404", error_response("Not found (or not yours)"));
        json_int_t max_body = json_integer_value(json_object_get(r, "max_body_bytes"));
        if (max_body <= 0)
            max_body = json_integer_value(json_object_get(api, "max_body_bytes"));
        char too_large[96] = "Body too large";
        if (max_body > 0)
            snprintf(too_large, sizeof too_large, "Body larger than %lld bytes",
                     (long long)max_body);
        json_object_set_new(responses, "413", error_response(too_large));
        json_object_set_new(responses, "429", error_response("Rate limited; see Retry-After"));
        json_object_set_new(responses, "503",
                            error_response("Temporarily unavailable; see Retry-After"));
        json_object_set_new(o, "responses", responses);
        char m[16];
        snprintf(m, sizeof m, "%s", method);
        lower(m);
        json_object_set_new(item, m, o);
    }
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
