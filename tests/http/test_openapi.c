/* test_openapi.c - the OpenAPI document: built from the same route table and
 * JSON Schemas the server uses, committed as schemas/openapi.json, and linted
 * with zero errors by @redocly/cli (installed by ops/setup in ops/node). */
#include "http/openapi.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static json_t *load(const char *name)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", FENTA_SOURCE_SCHEMAS, name);
    json_error_t e;
    json_t *j = json_load_file(path, JSON_REJECT_DUPLICATES, &e);
    cr_assert_not_null(j, "%s:%d: %s", path, e.line, e.text);
    return j;
}

static json_t *build(void)
{
    json_t *api = load("api.json"), *models = load("models.json");
    char err[256] = "";
    json_t *doc = openapi_build(api, models, err, sizeof err);
    cr_assert_not_null(doc, "%s", err);
    json_decref(api);
    json_decref(models);
    return doc;
}

Test(openapi, committed_document_is_current)
{
    json_t *doc = build();
    json_t *committed = load("openapi.json");
    cr_assert(json_equal(doc, committed),
              "schemas/openapi.json is stale: run 'build/fenta openapi > schemas/openapi.json'");
    json_decref(doc);
    json_decref(committed);
}

Test(openapi, every_route_is_an_operation_with_errors_described)
{
    json_t *doc = build(), *api = load("api.json");
    json_t *paths = json_object_get(doc, "paths");
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(api, "routes"), i, r)
    {
        char m[16];
        snprintf(m, sizeof m, "%s", json_string_value(json_object_get(r, "method")));
        for (char *p = m; *p; p++)
            *p = (char)(*p - 'A' + 'a');
        json_t *op = json_object_get(
            json_object_get(paths, json_string_value(json_object_get(r, "path"))), m);
        cr_assert_not_null(op, "%s %s missing", m, json_string_value(json_object_get(r, "path")));
        json_t *responses = json_object_get(op, "responses");
        cr_assert_not_null(json_object_get(responses, "400"));
        cr_assert_not_null(json_object_get(responses, "429"));
    }
    json_decref(doc);
    json_decref(api);
}

Test(openapi, bad_input_is_refused_with_a_message)
{
    json_t *api = json_pack("{s:{s:s,s:s}, s:[{s:s}]}", "info", "title", "x", "version", "1",
                            "routes", "method", "GET");
    json_t *models = json_pack("{s:{}}", "$defs");
    char err[256] = "";
    cr_assert_null(openapi_build(api, models, err, sizeof err));
    cr_assert_neq(err[0], 0);
    json_decref(api);
    json_decref(models);
}

Test(openapi, redocly_lint_finds_no_errors, .timeout = 120)
{
    const char *lint = FENTA_SOURCE_SCHEMAS "/../ops/node/node_modules/.bin/redocly";
    FILE *f = fopen(lint, "r");
    cr_assert_not_null(f, "redocly is not installed: run ops/setup");
    fclose(f);
    char cmd[8192];
    snprintf(cmd, sizeof cmd,
             "'%s' lint --format=stylish '%s/openapi.json' > /tmp/fenta-redocly-%d.log 2>&1", lint,
             FENTA_SOURCE_SCHEMAS, (int)getpid());
    int rc = system(cmd);
    if (rc != 0) {
        snprintf(cmd, sizeof cmd, "cat /tmp/fenta-redocly-%d.log >&2", (int)getpid());
        cr_log_error("redocly lint failed");
        (void)!system(cmd);
    }
    snprintf(cmd, sizeof cmd, "/tmp/fenta-redocly-%d.log", (int)getpid());
    remove(cmd);
    cr_assert_eq(rc, 0, "redocly lint reported errors");
}
