/* test_openapi.c - the OpenAPI document: built from the same route table and
 * JSON Schemas the server uses, committed as schemas/openapi.json, and linted
 * with zero errors by @redocly/cli (installed by ops/setup in ops/node). */
#include "http/openapi.h"

#include <criterion/criterion.h>
#include <stdbool.h>
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
    json_t *api = load("api.json"), *models = load("models.json"), *errors = load("errors.json");
    char err[256] = "";
    json_t *doc = openapi_build(api, models, errors, err, sizeof err);
    cr_assert_not_null(doc, "%s", err);
    json_decref(api);
    json_decref(models);
    json_decref(errors);
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
    json_t *models = json_pack("{s:{}}", "$defs"), *errors = load("errors.json");
    char err[256] = "";
    cr_assert_null(openapi_build(api, models, errors, err, sizeof err));
    cr_assert_neq(err[0], 0);
    json_decref(api);
    json_decref(models);
    json_decref(errors);
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

static json_t *op_of(json_t *doc, const char *path, const char *method)
{
    json_t *op = json_object_get(json_object_get(json_object_get(doc, "paths"), path), method);
    cr_assert_not_null(op, "%s %s is not in the document", method, path);
    return op;
}

/* The codes a status of an operation lists (its error body's code enum). */
static json_t *codes_of(json_t *op, const char *status)
{
    json_t *r = json_object_get(json_object_get(op, "responses"), status);
    cr_assert_not_null(r, "no %s response", status);
    json_t *all = json_object_get(
        json_object_get(json_object_get(json_object_get(r, "content"), "application/json"),
                        "schema"),
        "allOf");
    return json_object_get(
        json_object_get(
            json_object_get(
                json_object_get(json_object_get(json_array_get(all, 1), "properties"), "error"),
                "properties"),
            "code"),
        "enum");
}

static bool lists(json_t *codes, const char *code)
{
    size_t i;
    json_t *c;
    json_array_foreach(codes, i, c) if (strcmp(json_string_value(c), code) == 0) return true;
    return false;
}

/* What real traffic through `prism proxy` found the document missing (the
 * statuses, the operations outside the API application, a named template). */
Test(openapi, the_document_lists_the_answers_the_server_gives)
{
    json_t *doc = build();
    struct {
        const char *method, *path, *status, *code;
    } want[] = {
        {"post", "/v1/auth/register", "409", "email_taken"},
        {"post", "/v1/auth/login", "401", "invalid_credentials"},
        {"post", "/v1/auth/refresh", "401", "refresh_token_reused"},
        {"post", "/v1/workflows/{id}/estimate", "422", "invalid_workflow"},
        {"post", "/v1/workflows/{id}/run", "422", "over_budget"},
        {"post", "/v1/workflows/{id}/run", "400", "malformed_workflow"},
        {"post", "/v1/jobs/{id}/cancel", "409", "invalid_state"},
        {"post", "/v1/jobs/{id}/retry", "409", "invalid_state"},
        {"get", "/v1/jobs", "400", "invalid_cursor"},
        {"get", "/v1/jobs/{id}", "404", "not_found"},
        {"post", "/v1/orgs", "415", "unsupported_media_type"},
        {"get", "/v1/me", "401", "unauthorized"},
        {"get", "/v1/me", "429", "rate_limited"},
        {"get", "/readyz", "503", "not_ready"},
        {"get", "/v1/objects/{key}", "416", "range_not_satisfiable"},
        {"get", "/v1/objects/{key}", "403", "forbidden"},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        cr_expect(
            lists(codes_of(op_of(doc, want[i].path, want[i].method), want[i].status), want[i].code),
            "%s %s: %s does not list %s", want[i].method, want[i].path, want[i].status,
            want[i].code);
    /* The operations the server answers apart from the API application. */
    const char *ops[] = {"/healthz", "/readyz", "/metrics", "/openapi.json"};
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        cr_expect_not_null(
            json_object_get(json_object_get(op_of(doc, ops[i], "get"), "responses"), "200"));
    cr_expect_not_null(json_object_get(
        json_object_get(op_of(doc, "/v1/objects/{key}", "get"), "responses"), "206"));
    /* Built-in templates are named (bold), not uuids. */
    json_t *p =
        json_array_get(json_object_get(op_of(doc, "/v1/templates/{id}", "get"), "parameters"), 0);
    cr_expect_null(json_object_get(json_object_get(p, "schema"), "format"));
    json_decref(doc);
}

Test(openapi, a_route_naming_an_unknown_error_code_is_refused)
{
    json_t *api = load("api.json"), *models = load("models.json"), *errors = load("errors.json");
    json_t *r = json_array_get(json_object_get(api, "routes"), 0);
    json_array_append_new(json_object_get(r, "errors"), json_string("no_such_code"));
    char err[256] = "";
    cr_assert_null(openapi_build(api, models, errors, err, sizeof err));
    cr_expect(strstr(err, "no_such_code") != NULL, "%s", err);
    json_object_del(r, "errors");
    cr_assert_null(openapi_build(api, models, errors, err, sizeof err));
    cr_expect(strstr(err, "errors") != NULL, "%s", err);
    json_decref(api);
    json_decref(models);
    json_decref(errors);
}
