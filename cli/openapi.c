/* openapi.c - `fenta openapi [--check FILE]`: print the OpenAPI document built
 * from schemas/api.json, schemas/models.json and schemas/errors.json, or check that FILE (the
 * committed schemas/openapi.json) is exactly that document. */
#include "cli/commands.h"
#include "runtime/fsutil.h"
#include "http/openapi.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

json_t *cli_load_json(const char *name)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", fsutil_schemas_dir(NULL), name);
    json_error_t e;
    json_t *j = json_load_file(path, JSON_REJECT_DUPLICATES, &e);
    if (!j)
        fprintf(stderr, "fenta: %s:%d: %s\n", path, e.line, e.text);
    return j;
}

int cmd_openapi(int argc, char **argv)
{
    if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        printf("usage: fenta openapi [--check FILE]\n\n"
               "Prints the OpenAPI 3.1 document built from api.json, models.json and\n"
               "errors.json in the schemas directory (FENTA_SCHEMAS_DIR, default: the\n"
               "source tree's schemas/).\n"
               "--check FILE exits 1 when FILE differs from it.\n");
        return 0;
    }
    json_t *api = cli_load_json("api.json"), *models = cli_load_json("models.json"),
           *errors = cli_load_json("errors.json");
    json_t *doc = NULL;
    char err[256] = "";
    if (api && models && errors)
        doc = openapi_build(api, models, errors, err, sizeof err);
    json_decref(api);
    json_decref(models);
    json_decref(errors);
    if (!doc && !err[0])
        return 1; /* cli_load_json said why */
    if (!doc) {
        fprintf(stderr, "fenta openapi: %s\n", err);
        return 1;
    }
    int rc = 0;
    if (argc > 2 && strcmp(argv[1], "--check") == 0) {
        json_error_t e;
        json_t *committed = json_load_file(argv[2], 0, &e);
        rc = committed && json_equal(committed, doc) ? 0 : 1;
        if (rc)
            fprintf(stderr,
                    "fenta openapi: %s is out of date; regenerate it with "
                    "'build/fenta openapi > %s'\n",
                    argv[2], argv[2]);
        json_decref(committed);
    } else {
        char *text = json_dumps(doc, JSON_INDENT(2) | JSON_ENSURE_ASCII);
        if (text) {
            printf("%s\n", text);
            free(text);
        } else {
            rc = 1;
        }
    }
    json_decref(doc);
    return rc;
}
