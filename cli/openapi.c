/* openapi.c - `fenta openapi [--check FILE]`: print the OpenAPI document built
 * from schemas/api.json, schemas/models.json and schemas/errors.json, or
 * check that FILE (the committed schemas/openapi.json) is exactly that
 * document. */
#include "cli/commands.h"
#include "cli/config.h"
#include "http/openapi.h"
#include "runtime/log.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

json_t *cli_load_json(const char *dir, const char *name)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    json_error_t e;
    json_t *j = json_load_file(path, JSON_REJECT_DUPLICATES, &e);
    if (!j)
        fprintf(stderr, "fenta: %s:%d: %s\n", path, e.line, e.text);
    return j;
}

int cmd_openapi(int argc, char **argv)
{
    if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        printf("usage: fenta openapi [--check FILE] [options]\n\n"
               "Prints the OpenAPI 3.1 document built from api.json, models.json and\n"
               "errors.json in the schemas directory. --check FILE exits 1 when FILE differs\n"
               "from it.\n\n");
        fenta_config_usage(stdout, CONFIG_OPENAPI);
        return 0;
    }
    fenta_config_t c;
    char why[1024];
    if (fenta_config_load(&c, CONFIG_OPENAPI, &argc, argv, why, sizeof why) != 0) {
        fprintf(stderr, "fenta: %s\n", why);
        fenta_config_free(&c);
        return 2;
    }
    log_set_level((log_level_t)c.log_level);
    json_t *api = cli_load_json(c.schemas_dir, "api.json"),
           *models = cli_load_json(c.schemas_dir, "models.json"),
           *errors = cli_load_json(c.schemas_dir, "errors.json");
    fenta_config_free(&c);
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
